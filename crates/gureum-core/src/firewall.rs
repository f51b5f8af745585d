//! From security-group records to each instance's effective firewall: the union of its
//! groups' rules, with group references resolved to the private addresses of the referenced
//! group's members. Pure; the agent pushes the result to the network driver whenever it
//! changes (rules, membership, or members' addresses).

use std::collections::HashMap;
use std::net::Ipv4Addr;

use gureum_store::instances::InstanceRow;
use gureum_types::model::SecurityGroupRule;

use crate::host::{Firewall, FirewallPeer, FirewallRule};

fn ports(r: &SecurityGroupRule) -> Option<(u16, u16)> {
    match r.protocol.as_str() {
        "tcp" | "udp" => match (r.from_port, r.to_port) {
            (Some(f), Some(t)) if f >= 0 && t >= 0 => Some((f as u16, t as u16)),
            _ => None,
        },
        "icmp" => match (r.from_port, r.to_port) {
            (Some(t), _) if t < 0 => None,
            (Some(t), Some(c)) if c < 0 => Some((t as u16, u16::MAX)),
            (Some(t), Some(c)) => Some((t as u16, c as u16)),
            _ => None,
        },
        _ => None,
    }
}

/// The firewall of every instance that has (or is getting) a guest.
pub fn firewalls(
    instances: &[InstanceRow],
    rules: &[SecurityGroupRule],
    memberships: &[(String, String)],
) -> HashMap<String, Firewall> {
    let ip_of: HashMap<&str, Ipv4Addr> = instances
        .iter()
        .filter(|i| i.state != "terminated")
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
        .filter(|i| i.state == "pending" || i.state == "running")
    {
        let mut fw = Firewall::default();
        for gid in groups_of.get(i.id.as_str()).cloned().unwrap_or_default() {
            for r in rules.iter().filter(|r| r.group_id == gid) {
                let peer = if let Some(cidr) = &r.cidr_ipv4 {
                    match cidr.parse() {
                        Ok(net) => FirewallPeer::Cidr(net),
                        Err(_) => continue,
                    }
                } else if let Some(g) = &r.referenced_group_id {
                    FirewallPeer::Members(members.get(g.as_str()).cloned().unwrap_or_default())
                } else {
                    // IPv6 rules are recorded, not enforced (no IPv6 inside gureum yet).
                    continue;
                };
                let rule = FirewallRule {
                    protocol: if r.protocol == "-1" {
                        "all".into()
                    } else {
                        r.protocol.clone()
                    },
                    ports: ports(r),
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
        out.insert(i.id.clone(), fw);
    }
    out
}
