//! The network driver trait ([`Network`]) and what crosses it: a host network, an instance's
//! interface, its effective security-group rules.

use std::net::Ipv4Addr;
use std::path::PathBuf;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::HostResult;

/// Where a VM's port is named: the network driver's `attach` of a tap answers `<TAP_DIR>/<tap>`
/// (the tap's sysfs directory), which the compute driver reads back from
/// [`GuestSpec::netns`](crate::GuestSpec::netns).
pub const TAP_DIR: &str = "/sys/class/net";

/// An instance's effective security-group rules: the union of its groups', with group
/// references resolved to their members' private addresses.
///
/// Plain data (serde), so a control plane can send it to a host agent over the network.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Firewall {
    pub ingress: Vec<FirewallRule>,
    pub egress: Vec<FirewallRule>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FirewallRule {
    #[serde(with = "crate::wire::text")]
    pub protocol: gureum_types::IpProtocol,
    /// tcp/udp: the port range; icmp/icmpv6: (type, code), `u16::MAX` as the code for every
    /// code; `None`: every port (or every ICMP type). Always `None` for `All` and `Other`.
    pub ports: Option<(u16, u16)>,
    pub peer: FirewallPeer,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum FirewallPeer {
    Cidr(ipnet::Ipv4Net),
    Members(Vec<Ipv4Addr>),
}

/// One L2 network on the host (all default VPCs share one, see ARCHITECTURE.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostNet {
    pub id: String,
    /// (subnet cidr, gateway) pairs.
    pub subnets: Vec<(ipnet::Ipv4Net, Ipv4Addr)>,
}

/// An instance's network interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nic {
    pub instance_id: String,
    pub net_id: String,
    pub mac: [u8; 6],
    pub ip: Ipv4Addr,
    pub prefix_len: u8,
    pub gateway: Ipv4Addr,
    /// A VM's port: a tap device for QEMU instead of a veth into a network namespace.
    pub tap: bool,
    /// A process whose network namespace becomes the instance's when it has none yet (a
    /// warm guest's PID 1).
    pub netns_of: Option<i32>,
}

/// A network driver: host networks, instances' interfaces on them, security groups and
/// public addresses. Every step is idempotent.
#[async_trait]
pub trait Network: Send + Sync + 'static {
    async fn ensure_net(&self, net: &HostNet) -> HostResult<()>;
    /// Remove a host network no instance is attached to any more. Idempotent.
    async fn remove_net(&self, net_id: &str) -> HostResult<()>;
    /// Plumb the interface; returns the network namespace for the compute driver.
    async fn attach(&self, nic: &Nic) -> HostResult<Option<PathBuf>>;
    async fn detach(&self, instance_id: &str) -> HostResult<()>;
    async fn list(&self) -> HostResult<Vec<String>>;
    /// Replace the instance's effective security-group rules, live.
    async fn set_firewall(&self, instance_id: &str, firewall: &Firewall) -> HostResult<()>;
    /// Make `public` reach the instance's `private` address on every port (in the kernel).
    async fn map_public_ip(
        &self,
        instance_id: &str,
        public: Ipv4Addr,
        private: Ipv4Addr,
    ) -> HostResult<()>;
    async fn unmap_public_ip(&self, instance_id: &str) -> HostResult<()>;
    /// Remove the host networks and firewall table (when no guest is left).
    async fn teardown(&self) -> HostResult<()>;
}
