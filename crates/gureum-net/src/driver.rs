//! This driver behind the host seam: [`Network`] for [`NetDriver`] (host networks, interfaces
//! and rules in the core's terms become the driver's), and the driver's errors as
//! [`HostError`]s.
//!
//! The trait's methods share names with the driver's own, which take the driver's types; the
//! impl calls those by path so it is plain which one runs.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use gureum_host_api::{
    Firewall, FirewallPeer, FirewallRule, HostError, HostNet, HostResult, IpProtocol, Network, Nic,
    TAP_DIR,
};

use crate::{NetDriver, NetError, NicSpec, Peer, Proto, Rule, SubnetNet, VpcNet};

/// The protocol a core rule admits, in this driver's terms: one variant for one meaning,
/// matched exhaustively so that a new protocol cannot fall into "every protocol".
fn net_proto(p: IpProtocol) -> Proto {
    match p {
        IpProtocol::Tcp => Proto::Tcp,
        IpProtocol::Udp => Proto::Udp,
        IpProtocol::Icmp => Proto::Icmp,
        IpProtocol::Icmpv6 => Proto::Icmpv6,
        IpProtocol::Other(n) => Proto::Number(n),
        IpProtocol::All => Proto::All,
    }
}

/// The core's effective rules in this driver's terms.
pub fn net_firewall(fw: &Firewall) -> crate::Firewall {
    let conv = |r: &FirewallRule| Rule {
        proto: net_proto(r.protocol),
        // Only protocols with ports or ICMP types carry them (the driver refuses the rest).
        ports: if r.protocol.has_ports() {
            r.ports
        } else {
            None
        },
        peer: match &r.peer {
            FirewallPeer::Cidr(net) => Peer::Cidr(*net),
            FirewallPeer::Members(ips) => Peer::Group(ips.clone()),
        },
    };
    crate::Firewall {
        ingress: fw.ingress.iter().map(conv).collect(),
        egress: fw.egress.iter().map(conv).collect(),
    }
}

/// A host network as a VPC's bridge: its subnets are named after it (they only appear in
/// error messages).
fn vpc_net(net: &HostNet) -> VpcNet {
    VpcNet {
        vpc_id: net.id.clone(),
        subnets: net
            .subnets
            .iter()
            .enumerate()
            .map(|(i, (cidr, gw))| SubnetNet {
                subnet_id: format!("{}-{i}", net.id),
                cidr: *cidr,
                gateway: *gw,
            })
            .collect(),
    }
}

fn nic_spec(nic: &Nic) -> NicSpec {
    NicSpec {
        instance_id: nic.instance_id.clone(),
        vpc_id: nic.net_id.clone(),
        mac: nic.mac,
        ip: nic.ip,
        prefix_len: nic.prefix_len,
        gateway: nic.gateway,
        netns_of: nic.netns_of,
    }
}

#[async_trait]
impl Network for NetDriver {
    async fn ensure_net(&self, net: &HostNet) -> HostResult<()> {
        Ok(self.ensure_vpc(&vpc_net(net)).await?)
    }
    async fn remove_net(&self, net_id: &str) -> HostResult<()> {
        Ok(self.remove_vpc(net_id).await?)
    }
    async fn attach(&self, nic: &Nic) -> HostResult<Option<PathBuf>> {
        let spec = nic_spec(nic);
        if nic.tap {
            // A VM's port: the tap's sysfs directory tells the compute driver its name.
            let tap = self.attach_tap(&spec).await?;
            return Ok(Some(Path::new(TAP_DIR).join(tap)));
        }
        Ok(Some(NetDriver::attach(self, &spec).await?))
    }
    async fn detach(&self, id: &str) -> HostResult<()> {
        Ok(NetDriver::detach(self, id).await?)
    }
    async fn list(&self) -> HostResult<Vec<String>> {
        Ok(self.list_attachments().await?)
    }
    async fn set_firewall(&self, id: &str, fw: &Firewall) -> HostResult<()> {
        Ok(self.set_instance_firewall(id, &net_firewall(fw)).await?)
    }
    async fn map_public_ip(&self, id: &str, public: Ipv4Addr, private: Ipv4Addr) -> HostResult<()> {
        Ok(NetDriver::map_public_ip(self, id, public, private).await?)
    }
    async fn unmap_public_ip(&self, id: &str) -> HostResult<()> {
        Ok(NetDriver::unmap_public_ip(self, id).await?)
    }
    async fn teardown(&self) -> HostResult<()> {
        Ok(self.teardown_all().await?)
    }
}

/// Each failure as the seam's kind of it, in the driver's words.
impl From<NetError> for HostError {
    fn from(e: NetError) -> HostError {
        match e {
            NetError::InvalidPrefix { prefix, why } => HostError::Invalid {
                what: format!("name prefix {prefix:?}"),
                why: why.into(),
            },
            NetError::Invalid { what, why } => HostError::Invalid { what, why },
            NetError::NotAttached { instance_id } => HostError::NotFound(instance_id),
            NetError::Command {
                program,
                status,
                stderr,
            } => HostError::Command {
                command: program,
                status: Some(status),
                stderr,
            },
            NetError::Io { context, source } => HostError::Io {
                op: context,
                source,
            },
            NetError::CleanupFailed { error, cleanup } => HostError::Cleanup {
                error: Box::new((*error).into()),
                cleanup: Box::new((*cleanup).into()),
            },
            NetError::VpcNotFound { .. }
            | NetError::VpcInUse { .. }
            | NetError::CidrConflict { .. }
            | NetError::NameCollision { .. }
            | NetError::PublicIpInUse { .. }
            | NetError::Parse { .. } => HostError::Driver(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Only `-1` becomes "every protocol": ICMPv6 and protocol numbers keep their meaning
    /// (a protocol this layer did not know once fell through to `Proto::All`).
    #[test]
    fn only_all_means_every_protocol() {
        let rule = |protocol, ports| FirewallRule {
            protocol,
            ports,
            peer: FirewallPeer::Cidr("0.0.0.0/0".parse().unwrap()),
        };
        let fw = Firewall {
            ingress: vec![
                rule(IpProtocol::Icmpv6, Some((128, 0))),
                rule(IpProtocol::Other(47), None),
                rule(IpProtocol::Icmp, Some((8, u16::MAX))),
                rule(IpProtocol::Tcp, Some((22, 22))),
                rule(IpProtocol::All, None),
            ],
            egress: vec![],
        };
        let net = net_firewall(&fw);
        let got: Vec<(Proto, Option<(u16, u16)>)> =
            net.ingress.iter().map(|r| (r.proto, r.ports)).collect();
        assert_eq!(
            got,
            [
                (Proto::Icmpv6, Some((128, 0))),
                (Proto::Number(47), None),
                (Proto::Icmp, Some((8, u16::MAX))),
                (Proto::Tcp, Some((22, 22))),
                (Proto::All, None),
            ]
        );
        crate::firewall::validate(&net).unwrap();
        for n in 0..=255u8 {
            let p = net_proto(IpProtocol::from_number(n));
            assert_ne!(p, Proto::All, "protocol {n}");
        }
    }

    #[test]
    fn a_host_network_is_a_vpc_bridge_and_a_nic_its_port() {
        let net = HostNet {
            id: "vpc-1".into(),
            subnets: vec![(
                "172.31.0.0/20".parse().unwrap(),
                "172.31.0.1".parse().unwrap(),
            )],
        };
        let vpc = vpc_net(&net);
        assert_eq!(vpc.vpc_id, "vpc-1");
        assert_eq!(vpc.subnets[0].subnet_id, "vpc-1-0");
        assert_eq!(vpc.subnets[0].gateway.to_string(), "172.31.0.1");
        let nic = Nic {
            instance_id: "i-1".into(),
            net_id: "vpc-1".into(),
            mac: [2, 0, 0, 0, 0, 1],
            ip: "172.31.0.10".parse().unwrap(),
            prefix_len: 20,
            gateway: "172.31.0.1".parse().unwrap(),
            tap: true,
            netns_of: Some(42),
        };
        let spec = nic_spec(&nic);
        assert_eq!((spec.vpc_id.as_str(), spec.netns_of), ("vpc-1", Some(42)));
    }

    #[test]
    fn errors_get_their_kind() {
        let e = HostError::from(NetError::Command {
            program: "ip link add x".into(),
            status: "exit status: 2".into(),
            stderr: "File exists".into(),
        });
        assert!(matches!(
            e,
            HostError::Command {
                status: Some(_),
                ..
            }
        ));
        assert_eq!(
            e.to_string(),
            "`ip link add x` failed (exit status: 2): File exists"
        );
        let invalid = NetError::invalid("mac", "multicast");
        let text = invalid.to_string();
        let invalid = HostError::from(invalid);
        assert!(matches!(invalid, HostError::Invalid { .. }));
        assert_eq!(invalid.to_string(), text);
        let busy = NetError::VpcInUse {
            vpc_id: "vpc-1".into(),
            ports: vec!["gr-a".into()],
        };
        let text = busy.to_string();
        assert_eq!(HostError::from(busy).to_string(), text);
        let prefix = NetError::InvalidPrefix {
            prefix: "toolongprefix".into(),
            why: "too long",
        };
        let text = prefix.to_string();
        assert_eq!(HostError::from(prefix).to_string(), text);
    }
}
