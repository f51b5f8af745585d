//! From security-group records to each instance's effective firewall: the union of its
//! groups' rules, with group references resolved to the private addresses of the referenced
//! group's members. Pure; the agent pushes the result to the network driver whenever it
//! changes (rules, membership, or members' addresses).
//!
//! All default VPCs share one L2 network on the host (see `vpcs`), so a CIDR rule there must
//! not admit another VPC's instances, which AWS would never route to it: on that network a
//! CIDR peer is narrowed to the part of it outside `172.31.0.0/16`, plus the instance's own
//! VPC's members and the host's gateway addresses inside it.

use std::collections::HashMap;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use gureum_store::instances::InstanceRow;
use gureum_types::model::SecurityGroupRule;
use gureum_types::InstanceState;
use gureum_types::IpProtocol;

use crate::host::{Firewall, FirewallPeer, FirewallRule};

/// The rule's ports in the driver's terms (see [`FirewallRule::ports`]), or `Err` for ports
/// no rule of its protocol can have (the API never stores them; a hand-edited store could):
/// such a rule is left out, so it admits nothing rather than every port.
fn ports(r: &SecurityGroupRule) -> Result<Option<(u16, u16)>, ()> {
    let port = |p: i32| u16::try_from(p).map_err(|_| ());
    let icmp = |p: i32| u8::try_from(p).map(u16::from).map_err(|_| ());
    match r.protocol {
        IpProtocol::Tcp | IpProtocol::Udp => match (r.from_port, r.to_port) {
            (Some(f), Some(t)) if f <= t => Ok(Some((port(f)?, port(t)?))),
            _ => Err(()),
        },
        IpProtocol::Icmp | IpProtocol::Icmpv6 => match (r.from_port, r.to_port) {
            // Every type (and so every code).
            (None, _) | (Some(-1), _) => Ok(None),
            (Some(t), None | Some(-1)) => Ok(Some((icmp(t)?, u16::MAX))),
            (Some(t), Some(c)) => Ok(Some((icmp(t)?, icmp(c)?))),
        },
        IpProtocol::All | IpProtocol::Other(_) => Ok(None),
    }
}

/// `net` without `hole`: the CIDRs covering exactly the addresses of one but not the other.
pub fn subtract(net: Ipv4Net, hole: Ipv4Net) -> Vec<Ipv4Net> {
    if !net.contains(&hole.network()) && !hole.contains(&net.network()) {
        return vec![net];
    }
    if hole.contains(&net) {
        return vec![];
    }
    // `hole` lies strictly inside `net`: keep the half without it, split the other.
    net.subnets(net.prefix_len() + 1)
        .expect("a longer prefix exists: net is larger than hole")
        .flat_map(|half| subtract(half, hole))
        .collect()
}

/// The shared network of the default VPCs.
fn shared_net() -> Ipv4Net {
    crate::vpcs::DEFAULT_VPC_CIDR.parse().expect("valid")
}

/// A CIDR peer of an instance of `vpc` on the shared network, as the kernel must see it.
fn narrowed(
    cidr: Ipv4Net,
    vpc: &str,
    instances: &[InstanceRow],
    ip_of: &HashMap<&str, Ipv4Addr>,
) -> Vec<FirewallPeer> {
    let shared = shared_net();
    let mut peers: Vec<FirewallPeer> = subtract(cidr, shared)
        .into_iter()
        .map(FirewallPeer::Cidr)
        .collect();
    if cidr.contains(&shared.network()) || shared.contains(&cidr.network()) {
        let mut inside: Vec<Ipv4Addr> = instances
            .iter()
            .filter(|i| i.vpc_id == vpc)
            .filter_map(|i| ip_of.get(i.id.as_str()).copied())
            .chain(
                crate::vpcs::default_host_net()
                    .subnets
                    .iter()
                    .map(|(_, gw)| *gw),
            )
            .filter(|ip| cidr.contains(ip))
            .collect();
        inside.sort();
        inside.dedup();
        peers.push(FirewallPeer::Members(inside));
    }
    peers
}

/// The firewall of every instance that has (or is getting) a guest.
pub fn firewalls(
    instances: &[InstanceRow],
    rules: &[SecurityGroupRule],
    memberships: &[(String, String)],
    default_vpcs: &std::collections::HashSet<String>,
) -> HashMap<String, Firewall> {
    let ip_of: HashMap<&str, Ipv4Addr> = instances
        .iter()
        .filter(|i| i.state != InstanceState::Terminated)
        .filter_map(|i| Some((i.id.as_str(), i.private_ip.parse().ok()?)))
        .collect();
    let mut members: HashMap<&str, Vec<Ipv4Addr>> = HashMap::new();
    let mut groups_of: HashMap<&str, Vec<&str>> = HashMap::new();
    for (iid, gid) in memberships {
        if let Some(ip) = ip_of.get(iid.as_str()) {
            members.entry(gid.as_str()).or_default().push(*ip);
        }
        groups_of
            .entry(iid.as_str())
            .or_default()
            .push(gid.as_str());
    }
    for v in members.values_mut() {
        v.sort();
        v.dedup();
    }
    let mut out = HashMap::new();
    for i in instances
        .iter()
        .filter(|i| i.state == InstanceState::Pending || i.state == InstanceState::Running)
    {
        let mut fw = Firewall::default();
        let on_shared = default_vpcs.contains(&i.vpc_id);
        for gid in groups_of.get(i.id.as_str()).cloned().unwrap_or_default() {
            for r in rules.iter().filter(|r| r.group_id == gid) {
                let peers = if let Some(cidr) = &r.cidr_ipv4 {
                    match cidr.parse::<Ipv4Net>() {
                        Ok(net) if on_shared && !r.is_egress => {
                            narrowed(net, &i.vpc_id, instances, &ip_of)
                        }
                        Ok(net) => vec![FirewallPeer::Cidr(net)],
                        Err(_) => continue,
                    }
                } else if let Some(g) = &r.referenced_group_id {
                    vec![FirewallPeer::Members(
                        members.get(g.as_str()).cloned().unwrap_or_default(),
                    )]
                } else {
                    // IPv6 rules are recorded, not enforced (no IPv6 inside gureum yet).
                    continue;
                };
                let Ok(ports) = ports(r) else {
                    tracing::error!(
                        rule = %r.id,
                        protocol = %r.protocol,
                        from = ?r.from_port,
                        to = ?r.to_port,
                        "security group rule with impossible ports left out: it admits nothing"
                    );
                    continue;
                };
                for peer in peers {
                    let rule = FirewallRule {
                        protocol: r.protocol,
                        ports,
                        peer,
                    };
                    let dir = if r.is_egress {
                        &mut fw.egress
                    } else {
                        &mut fw.ingress
                    };
                    if !dir.contains(&rule) {
                        dir.push(rule);
                    }
                }
            }
        }
        out.insert(i.id.clone(), fw);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }

    #[test]
    fn subtract_covers_exactly_the_rest() {
        let rest = subtract(net("0.0.0.0/0"), net("172.31.0.0/16"));
        assert_eq!(rest.len(), 16);
        for probe in [
            "0.0.0.1",
            "172.30.255.255",
            "172.32.0.0",
            "255.255.255.255",
            "10.0.0.1",
        ] {
            let ip: Ipv4Addr = probe.parse().unwrap();
            assert_eq!(
                rest.iter().filter(|n| n.contains(&ip)).count(),
                1,
                "{probe}"
            );
        }
        for probe in ["172.31.0.0", "172.31.200.7", "172.31.255.255"] {
            let ip: Ipv4Addr = probe.parse().unwrap();
            assert!(!rest.iter().any(|n| n.contains(&ip)), "{probe}");
        }
        assert_eq!(
            subtract(net("10.0.0.0/8"), net("172.31.0.0/16")),
            vec![net("10.0.0.0/8")]
        );
        assert!(subtract(net("172.31.4.0/24"), net("172.31.0.0/16")).is_empty());
    }

    #[test]
    fn open_rules_on_the_shared_network_admit_only_the_own_vpc() {
        let inst = |id: &str, vpc: &str, ip: &str| InstanceRow {
            id: id.into(),
            vpc_id: vpc.into(),
            private_ip: ip.into(),
            state: InstanceState::Running,
            ..Default::default()
        };
        let rows = vec![
            inst("i-a", "vpc-a", "172.31.0.4"),
            inst("i-a2", "vpc-a", "172.31.0.5"),
            inst("i-b", "vpc-b", "172.31.0.6"),
        ];
        let rule = rule_clone();
        let members = vec![("i-a".to_string(), "sg-a".to_string())];
        let defaults = ["vpc-a".to_string(), "vpc-b".to_string()]
            .into_iter()
            .collect();
        let fw = firewalls(&rows, &[rule], &members, &defaults)
            .remove("i-a")
            .unwrap();
        let admitted = |ip: &str| {
            let ip: Ipv4Addr = ip.parse().unwrap();
            fw.ingress.iter().any(|r| match &r.peer {
                FirewallPeer::Cidr(n) => n.contains(&ip),
                FirewallPeer::Members(m) => m.contains(&ip),
            })
        };
        assert!(admitted("8.8.8.8"));
        assert!(admitted("172.31.0.5"), "its own VPC");
        assert!(admitted("172.31.0.1"), "the host's gateway");
        assert!(!admitted("172.31.0.6"), "another account's default VPC");
        // Outside the shared network a CIDR stays a CIDR.
        let none = std::collections::HashSet::new();
        let rule2 = firewalls(&rows, &[rule_clone()], &members, &none);
        assert_eq!(rule2["i-a"].ingress.len(), 1);
    }

    fn rule_clone() -> SecurityGroupRule {
        SecurityGroupRule {
            id: "sgr-1".into(),
            group_id: "sg-a".into(),
            owner_id: "1".into(),
            is_egress: false,
            protocol: IpProtocol::Tcp,
            from_port: Some(80),
            to_port: Some(80),
            cidr_ipv4: Some("0.0.0.0/0".into()),
            cidr_ipv6: None,
            referenced_group_id: None,
            description: None,
        }
    }

    #[test]
    fn each_protocol_keeps_its_own_meaning() {
        let rows = vec![InstanceRow {
            id: "i-a".into(),
            vpc_id: "vpc-a".into(),
            private_ip: "10.0.0.4".into(),
            state: InstanceState::Running,
            ..Default::default()
        }];
        let members = vec![("i-a".to_string(), "sg-a".to_string())];
        let none = std::collections::HashSet::new();
        let rule = |protocol, from, to| SecurityGroupRule {
            protocol,
            from_port: from,
            to_port: to,
            ..rule_clone()
        };
        let cases = [
            (
                rule(IpProtocol::Icmp, Some(8), Some(-1)),
                Some((8, u16::MAX)),
            ),
            (rule(IpProtocol::Icmp, Some(-1), Some(-1)), None),
            (rule(IpProtocol::Icmpv6, Some(128), Some(0)), Some((128, 0))),
            (rule(IpProtocol::Icmpv6, Some(-1), Some(-1)), None),
            (rule(IpProtocol::Other(47), None, None), None),
            (rule(IpProtocol::Udp, Some(53), Some(53)), Some((53, 53))),
            (rule(IpProtocol::All, None, None), None),
        ];
        for (r, ports) in cases {
            let fw = firewalls(&rows, std::slice::from_ref(&r), &members, &none)
                .remove("i-a")
                .unwrap();
            assert_eq!(fw.ingress.len(), 1, "{r:?}");
            // The protocol goes through unchanged: nothing becomes "every protocol".
            assert_eq!(fw.ingress[0].protocol, r.protocol);
            assert_eq!(fw.ingress[0].ports, ports, "{r:?}");
        }
        // Ports no rule of its protocol can have (a hand-edited store) admit nothing.
        for r in [
            rule(IpProtocol::Tcp, Some(-5), Some(80)),
            rule(IpProtocol::Tcp, None, None),
            rule(IpProtocol::Tcp, Some(90), Some(80)),
            rule(IpProtocol::Icmp, Some(300), Some(0)),
            rule(IpProtocol::Icmpv6, Some(3), Some(256)),
        ] {
            let fw = firewalls(&rows, std::slice::from_ref(&r), &members, &none)
                .remove("i-a")
                .unwrap_or_default();
            assert!(fw.ingress.is_empty(), "{r:?}: {fw:?}");
        }
    }
}
