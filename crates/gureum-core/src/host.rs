//! What the core needs from a host, as traits: a compute driver that runs guests (system
//! containers now, VMs later) and a network driver that gives them their private network.
//! The binary plugs in the real drivers (`gureum-runtime`, `gureum-net`); tests plug in fakes.

use std::net::Ipv4Addr;
use std::path::PathBuf;

use async_trait::async_trait;

/// A host failure, with enough words to log. The API answers it as `InternalError` or records
/// it as the instance's `StateReason`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct HostError(pub String);

pub type HostResult<T> = Result<T, HostError>;

/// A file the host writes into a guest's root volume before each start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestFile {
    pub path: PathBuf,
    pub contents: Vec<u8>,
    pub mode: u32,
}

/// Everything a compute driver needs to run one instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestSpec {
    pub instance_id: String,
    /// The AMI's read-only root filesystem.
    pub image_rootfs: PathBuf,
    pub volume_gib: u32,
    pub hostname: String,
    pub vcpus: u32,
    pub memory_mib: u64,
    pub pids_max: u64,
    /// Where the network driver plumbed the instance: a network namespace (containers) or a
    /// tap device's `/sys/class/net/<tap>` directory (VMs), if any.
    pub netns: Option<PathBuf>,
    pub files: Vec<GuestFile>,
    /// `container` or `vm` (the instance record's hypervisor).
    pub hypervisor: String,
    /// The instance's interface (VMs configure their own address from it).
    pub nic: Option<Nic>,
    /// A warm guest: booted ahead of its launch (see `warm.rs`); its agent waits for the
    /// instance's files, which a later `start` of the same id without `warm` hands over.
    pub warm: bool,
}

/// A warm guest as the compute driver sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WarmGuest {
    /// Its PID 1 on the host: the instance's interface goes into this process's network
    /// namespace.
    pub pid: i32,
    /// Whether it is done booting (its agent waits for an instance).
    pub waiting: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuestState {
    Running,
    /// Exists on the host (volume, maybe a dead container) but is not running.
    Stopped,
    Absent,
}

#[async_trait]
pub trait Compute: Send + Sync + 'static {
    /// Make the root volume ready. Idempotent.
    async fn prepare(&self, spec: &GuestSpec) -> HostResult<()>;
    /// Boot the guest (running stays running). Idempotent.
    async fn start(&self, spec: &GuestSpec) -> HostResult<()>;
    /// Shut the guest down (gracefully unless `force`), keeping its volume. Idempotent.
    async fn stop(&self, instance_id: &str, force: bool) -> HostResult<()>;
    async fn reboot(&self, spec: &GuestSpec) -> HostResult<()>;
    /// Remove every host trace of the guest, volume included. Idempotent.
    async fn destroy(&self, instance_id: &str) -> HostResult<()>;
    async fn state(&self, instance_id: &str) -> HostResult<GuestState>;
    /// Every instance id with any host resource.
    async fn list(&self) -> HostResult<Vec<String>>;
    /// The tail of the guest's console.
    fn console_output(&self, instance_id: &str, max_bytes: usize) -> HostResult<Vec<u8>>;
    /// Copy the guest's root filesystem into a new read-only image root for `image_id`;
    /// returns its path.
    async fn snapshot(&self, spec: &GuestSpec, image_id: &str) -> HostResult<PathBuf>;
    /// The running warm guest `instance_id`, if it is one that has not been handed its
    /// instance yet. Drivers without warm guests have none.
    async fn warm_guest(&self, _instance_id: &str) -> HostResult<Option<WarmGuest>> {
        Ok(None)
    }
}

/// An instance's effective security-group rules: the union of its groups', with group
/// references resolved to their members' private addresses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Firewall {
    pub ingress: Vec<FirewallRule>,
    pub egress: Vec<FirewallRule>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirewallRule {
    pub protocol: gureum_types::IpProtocol,
    /// tcp/udp: the port range; icmp/icmpv6: (type, code), `u16::MAX` as the code for every
    /// code; `None`: every port (or every ICMP type). Always `None` for `All` and `Other`.
    pub ports: Option<(u16, u16)>,
    pub peer: FirewallPeer,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FirewallPeer {
    Cidr(ipnet::Ipv4Net),
    Members(Vec<Ipv4Addr>),
}

/// One L2 network on the host (all default VPCs share one, see ARCHITECTURE.md).
#[derive(Debug, Clone, PartialEq, Eq)]
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

/// A source of ready-made SSH host keys (made ahead of time, each handed out once).
pub trait HostKeys: Send + Sync + 'static {
    /// A set of host keys, if one is ready.
    fn take(&self) -> Option<HostKeySet>;
}

/// The SSH host keys of one instance, as its first boot installs them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostKeySet {
    /// (file name in /etc/ssh such as `ssh_host_ed25519_key`, OpenSSH private key, public key
    /// line).
    pub keys: Vec<(String, Vec<u8>, Vec<u8>)>,
    /// `ssh-keygen -l` of each public key, one line each: the console's fingerprint block.
    pub fingerprints: Vec<u8>,
}
