//! gureum's host network driver: the host side of instance networking on one Linux host.
//!
//! It owns, under one name prefix (see [`names`] for the exact mapping):
//! - one Linux bridge per VPC, carrying the host's gateway address of each of the VPC's
//!   subnets, so the host reaches every instance's private IP directly (`ssh admin@172.31.x.y`
//!   from the host) and instances of different subnets of one VPC are routed by the host;
//! - per instance, a network namespace (`/run/netns/<prefix>-<instance id>`, made by
//!   `ip netns add`) holding `eth0`, one end of a veth pair whose other end is a port of the
//!   VPC's bridge; `eth0` has the instance's MAC, private IP and a default route via the
//!   subnet's gateway; the container runtime joins that namespace;
//! - gureum's own nftables tables ([`nft`], `inet` and `bridge`): each VPC confined to its
//!   bridge (no forwarding between VPCs, nothing routed off the host, nothing routed in except
//!   to a public address), stateful security groups per instance ([`NetDriver::set_instance_firewall`]),
//!   anti-spoofing per bridge port, public addresses mapped to private ones in the kernel
//!   ([`NetDriver::map_public_ip`]), and guests kept away from every host service except the
//!   instance metadata address ([`METADATA_ADDRESS`], on every VPC bridge).
//!
//! # Public addresses
//!
//! The pool is the caller's: it hands [`NetDriver::map_public_ip`] an address and the driver
//! maps it. The default pool is loopback addresses of this host ([`default_public_pool`],
//! 127.100.0.0/16): `ssh admin@127.100.0.5` from the host reaches the instance's port 22, and
//! nothing is reachable from elsewhere. An operator can give routable addresses instead; they
//! are configured on no interface and the deployment routes them to this host (see [`nft`],
//! "Public addresses").
//!
//! # Security groups
//!
//! An attached instance has no security group (everything allowed, as before security groups
//! existed) until [`NetDriver::set_instance_firewall`] gives it one; the caller sets it between
//! `attach` and starting the guest. `attach` never resets it (a reboot re-attaches), `detach`
//! removes it with the rest of the instance's rules.
//!
//! Host changes are confined to these resources: the only host-wide effects are the connected
//! routes of the gateway addresses (refused when they would overlap an existing route on
//! another interface) and per-interface sysctls on our bridges and veths. Global `ip_forward`
//! is never touched; intra-VPC routing uses the bridge's own `forwarding` sysctl.
//!
//! Concurrency: `attach`/`detach` of different instances run in parallel (one lock per instance
//! id); VPC changes and `teardown_all` exclude instance operations (a read/write lock), so a
//! bridge cannot vanish under an attach.

mod cmd;
mod driver;
mod error;
pub mod firewall;
mod host;
pub mod names;
pub mod nft;
mod state;

use std::collections::{BTreeSet, HashMap};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex as StdMutex, Weak};
use std::time::Instant;

use ipnet::Ipv4Net;
use tokio::sync::{Mutex, RwLock};

pub use driver::net_firewall;
pub use error::NetError;
pub use firewall::{Firewall, Peer, Proto, Rule, ICMP_ANY_CODE};
pub use names::{Names, DEFAULT_PREFIX, DEFAULT_TABLE};

/// The instance metadata service's address (IMDS): on every VPC bridge as a /32, the one host
/// address guests may reach (TCP port 80). The metadata server listens here; the source address
/// of a request identifies the instance (anti-spoofing pins every port's address).
///
/// Note that the address is then local to this host: the host's own requests to
/// 169.254.169.254 (say, a cloud agent of the machine gureum runs on) reach gureum's metadata
/// server, not the provider's.
pub const METADATA_ADDRESS: Ipv4Addr = Ipv4Addr::new(169, 254, 169, 254);

/// [`METADATA_ADDRESS`].
pub fn metadata_address() -> Ipv4Addr {
    METADATA_ADDRESS
}

/// The default pool of public addresses: loopback addresses of this host, so nothing leaves
/// the machine and nothing from outside reaches an instance.
pub fn default_public_pool() -> Ipv4Net {
    Ipv4Net::new(Ipv4Addr::new(127, 100, 0, 0), 16).expect("valid")
}

/// A VPC as the host needs it: its bridge carries one gateway address per subnet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VpcNet {
    /// `vpc-0123…`
    pub vpc_id: String,
    pub subnets: Vec<SubnetNet>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubnetNet {
    /// Informational (error messages); nothing on the host is named after it.
    pub subnet_id: String,
    /// e.g. 172.31.0.0/20
    pub cidr: Ipv4Net,
    /// The first host address (172.31.0.1): the host's address on the bridge for this subnet
    /// and the instances' default gateway.
    pub gateway: Ipv4Addr,
}

/// One instance's interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NicSpec {
    pub instance_id: String,
    pub vpc_id: String,
    /// AWS-style `0a:xx:xx:xx:xx:xx`, chosen by the caller.
    pub mac: [u8; 6],
    pub ip: Ipv4Addr,
    pub prefix_len: u8,
    pub gateway: Ipv4Addr,
    /// A process whose network namespace becomes the instance's when it has none yet (a warm
    /// guest's PID 1, booted before its instance existed); None: a new namespace.
    pub netns_of: Option<i32>,
}

/// Counters of the instance's host-side veth, as the host sees them: `rx_*` is what the
/// instance sent, `tx_*` what was delivered to it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    pub rx_bytes: u64,
    pub rx_packets: u64,
    pub tx_bytes: u64,
    pub tx_packets: u64,
}

/// Whether this host can run the driver: root, and `ip` and `nft` on `PATH`. The reason
/// otherwise, for `gureum doctor` and for tests to print `skipped: <why>`.
pub fn preflight() -> Result<(), String> {
    if !rustix::process::geteuid().is_root() {
        return Err("not root (the network driver needs CAP_NET_ADMIN and CAP_SYS_ADMIN)".into());
    }
    for tool in ["ip", "nft"] {
        if !cmd::on_path(tool) {
            return Err(format!("{tool} is not installed"));
        }
    }
    if !std::path::Path::new("/proc/sys/net/bridge").exists() {
        // The driver switches br_netfilter on per bridge and never loads the module itself:
        // loading it turns `net.bridge.bridge-nf-call-iptables` on for every bridge of the host.
        return Err(
            "br_netfilter is not loaded (`modprobe br_netfilter`; note that loading it \
             makes the host's firewall see the traffic of every bridge by default): security \
             groups need it to track connections of bridged traffic"
                .into(),
        );
    }
    Ok(())
}

/// The network driver of one host, for one name prefix. Cheap to clone (shared state).
#[derive(Clone, Debug)]
pub struct NetDriver {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    names: Names,
    /// Write: VPC changes and teardown. Read: instance operations.
    vpcs: RwLock<()>,
    /// One lock per instance id; weak so that finished instances' entries can be pruned.
    instances: StdMutex<HashMap<String, Weak<Mutex<()>>>>,
    /// The elements of the instance-owned nftables sets and maps (see [`state`]); `None`
    /// until loaded. Held for the whole of every per-instance transaction.
    tracked: Mutex<Option<state::Tracked>>,
    /// The VPCs `ensure_vpc` converged, with their bridge's ifindex then: asked again for the
    /// same VPC while that bridge and our tables still exist, it has nothing to do (a launch
    /// calls it every time; converging costs three processes).
    converged: StdMutex<HashMap<String, (VpcNet, u32)>>,
}

/// Per-interface sysctls of our bridges: no IPv6 on the host side at all (so no autoconf,
/// router advertisements or link-local chatter); IPv4 forwarding on this interface only, for
/// routing between the VPC's subnets (the nft `forward` chain confines it to the bridge);
/// strict reverse-path filtering so an instance cannot send with another network's source
/// address; ARP answered only for addresses of this bridge, not for the host's other ones;
/// `route_localnet`, so the host's own connections to a loopback public address can be
/// DNATed out of this bridge (the nft `guard` chain drops guests' packets to 127/8, which this
/// would otherwise let in).
///
/// ARP for an instance is retried every 100 ms (30 times) instead of every second (3 times):
/// a client that connects while the instance's interface is still being plugged in (a user's
/// `ssh` right after RunInstances returns) has its SYN held in the neighbour queue and sent the
/// moment the instance answers ARP, instead of waiting out a one-second ARP retry and then a
/// one-second SYN retransmission.
fn bridge_sysctls(bridge: &str) -> Vec<(String, &'static str)> {
    vec![
        (format!("ipv6/conf/{bridge}/accept_ra"), "0"),
        (format!("ipv6/conf/{bridge}/autoconf"), "0"),
        (format!("ipv6/conf/{bridge}/disable_ipv6"), "1"),
        (format!("ipv4/conf/{bridge}/forwarding"), "1"),
        (format!("ipv4/conf/{bridge}/rp_filter"), "1"),
        (format!("ipv4/conf/{bridge}/arp_ignore"), "1"),
        (format!("ipv4/conf/{bridge}/route_localnet"), "1"),
        (format!("ipv4/neigh/{bridge}/retrans_time_ms"), "100"),
        (format!("ipv4/neigh/{bridge}/mcast_solicit"), "30"),
    ]
}

/// The host-side veth is a bridge port and needs no IPv6 of its own.
fn veth_sysctls(veth: &str) -> Vec<(String, &'static str)> {
    vec![
        (format!("ipv6/conf/{veth}/accept_ra"), "0"),
        (format!("ipv6/conf/{veth}/autoconf"), "0"),
        (format!("ipv6/conf/{veth}/disable_ipv6"), "1"),
    ]
}

/// The instance's `eth0`: no SLAAC and no router advertisements (gureum VPCs are IPv4-only
/// for now); its link-local address is also off (`addrgenmode none`, set with `ip`).
fn eth0_sysctls() -> Vec<(String, &'static str)> {
    vec![
        ("ipv6/conf/eth0/accept_ra".to_string(), "0"),
        ("ipv6/conf/eth0/autoconf".to_string(), "0"),
    ]
}

impl NetDriver {
    /// A driver for the resources named with `prefix` (`gr` in production). Touches nothing.
    pub fn new(prefix: &str) -> Result<NetDriver, NetError> {
        Ok(NetDriver {
            inner: Arc::new(Inner {
                names: Names::new(prefix)?,
                vpcs: RwLock::new(()),
                instances: StdMutex::new(HashMap::new()),
                tracked: Mutex::new(None),
                converged: StdMutex::new(HashMap::new()),
            }),
        })
    }

    pub fn names(&self) -> &Names {
        &self.inner.names
    }

    /// The name of the nftables tables this driver owns (`inet <name>` and `bridge <name>`).
    pub fn table(&self) -> String {
        self.inner.names.table()
    }

    /// The namespace handle an attached instance's container joins.
    pub fn netns_path(&self, instance_id: &str) -> PathBuf {
        host::netns_path(&self.inner.names.netns(instance_id))
    }

    /// Bridge for the VPC up, with the host's gateway address of every subnet on it and the
    /// metadata address (and no other address); idempotent. Also (re)writes the shared part of
    /// the nftables tables, before the bridge can forward anything, and switches br_netfilter
    /// on for this bridge (see [`nft`]).
    pub async fn ensure_vpc(&self, vpc: &VpcNet) -> Result<(), NetError> {
        names::validate_id("vpc id", &vpc.vpc_id)?;
        let desired = desired_gateways(vpc)?;
        let _vpcs = self.inner.vpcs.write().await;
        let started = Instant::now();
        let bridge = self.inner.names.bridge(&vpc.vpc_id);
        let index = host::ifindex(&bridge);
        let converged = index.is_some_and(|index| {
            self.inner.converged.lock().unwrap().get(&vpc.vpc_id) == Some(&(vpc.clone(), index))
        });
        if converged
            && self
                .inner
                .tracked
                .lock()
                .await
                .as_ref()
                .is_some_and(|t| t.exists)
        {
            return Ok(());
        }
        self.inner.converged.lock().unwrap().remove(&vpc.vpc_id);
        let existed = host::link_exists(&bridge);
        if existed {
            self.check_owner(&bridge, &vpc.vpc_id)?;
        }

        // Refuse before changing anything: an overlapping address would hijack host routes.
        let routes = host::parse_routes(
            &cmd::ip_batch(
                &["-4", "-j"],
                &[
                    "route show table main".to_string(),
                    "route show table local".to_string(),
                ],
            )
            .await?,
        )?;
        for subnet in &vpc.subnets {
            if let Some(route) = host::find_conflict(subnet.cidr, &routes, &bridge) {
                return Err(NetError::CidrConflict {
                    cidr: subnet.cidr,
                    route: route.dst,
                    dev: route.dev.clone(),
                });
            }
        }

        let result = self.converge_bridge(vpc, &bridge, existed, &desired).await;
        let result = match result {
            Err(error) if !existed => {
                // Leave nothing half-made behind a failed creation.
                let cleanup = cmd::ip_batch(&[], &[format!("link del dev {bridge}")]).await;
                Err(with_cleanup(error, cleanup.map(|_| ())))
            }
            other => other,
        };
        tracing::debug!(vpc = %vpc.vpc_id, %bridge, elapsed = ?started.elapsed(), "ensure_vpc");
        if result.is_ok() {
            if let Some(index) = host::ifindex(&bridge) {
                let mut converged = self.inner.converged.lock().unwrap();
                converged.insert(vpc.vpc_id.clone(), (vpc.clone(), index));
            }
        }
        result
    }

    async fn converge_bridge(
        &self,
        vpc: &VpcNet,
        bridge: &str,
        existed: bool,
        desired: &BTreeSet<Ipv4Net>,
    ) -> Result<(), NetError> {
        if !existed {
            // STP off: a bridge of veths has no loops, and STP would hold new ports in
            // listening/learning for seconds. nf_call_iptables: IPv4 crossing the bridge goes
            // through the inet hooks (conntrack, security groups), whatever the host-wide
            // default.
            let mac = host::format_mac(self.inner.names.bridge_mac(&vpc.vpc_id));
            cmd::ip_batch(
                &[],
                &[
                    format!("link add name {bridge} type bridge stp_state 0 nf_call_iptables 1"),
                    format!("link set dev {bridge} addrgenmode none"),
                    format!("link set dev {bridge} address {mac} alias {}", vpc.vpc_id),
                ],
            )
            .await?;
        }
        // The drop rules must be in place before the bridge forwards (sysctl below) or is up.
        self.apply_ruleset().await?;
        if existed && !host::bridge_calls_iptables(bridge) {
            cmd::ip_batch(
                &[],
                &[format!(
                    "link set dev {bridge} type bridge nf_call_iptables 1"
                )],
            )
            .await?;
        }
        host::host_sysctls(&bridge_sysctls(bridge))?;
        let mut desired = desired.clone();
        desired.insert(Ipv4Net::from(METADATA_ADDRESS));
        let desired = &desired;

        let current = if existed {
            host::parse_link_addrs(
                &cmd::run("ip", &["-4", "-j", "addr", "show", "dev", bridge], None).await?,
            )?
        } else {
            BTreeSet::new()
        };
        let mut lines = Vec::new();
        for stale in current.difference(desired) {
            lines.push(format!("addr del {stale} dev {bridge}"));
        }
        // The metadata address last: the kernel picks the first address of the bridge as the
        // source where no route names one, and that must be a gateway.
        let (imds, gateways): (Vec<&Ipv4Net>, Vec<&Ipv4Net>) = desired
            .difference(&current)
            .partition(|net| net.addr() == METADATA_ADDRESS);
        for missing in gateways {
            lines.push(format!("addr add {missing} brd + dev {bridge}"));
        }
        for missing in imds {
            lines.push(format!("addr add {missing} dev {bridge}"));
        }
        if !host::is_up(bridge) {
            lines.push(format!("link set dev {bridge} up"));
        }
        cmd::ip_batch(&[], &lines).await?;
        Ok(())
    }

    /// Remove the VPC's bridge (and with it its gateway addresses and routes) and drop it from
    /// the nftables tables. Idempotent; refused while instances are still attached to it.
    pub async fn remove_vpc(&self, vpc_id: &str) -> Result<(), NetError> {
        names::validate_id("vpc id", vpc_id)?;
        let _vpcs = self.inner.vpcs.write().await;
        let bridge = self.inner.names.bridge(vpc_id);
        if !host::link_exists(&bridge) {
            return Ok(());
        }
        self.check_owner(&bridge, vpc_id)?;
        let ports = host::bridge_ports(&bridge)?;
        if !ports.is_empty() {
            return Err(NetError::VpcInUse {
                vpc_id: vpc_id.to_string(),
                ports,
            });
        }
        self.inner.converged.lock().unwrap().remove(vpc_id);
        cmd::ip_batch(&[], &[format!("link del dev {bridge}")]).await?;
        self.apply_ruleset().await
    }

    /// A network namespace for the instance with `eth0` configured per `nic`, its veth peer on
    /// the VPC's bridge; returns the namespace path for the container runtime. The port's
    /// anti-spoofing elements (its MAC and IP) are in place before the veth exists; its
    /// security groups and public address are left as they are (none for a new instance); the
    /// security groups follow a changed address by themselves.
    ///
    /// Idempotent: with the same spec it only reads state (one `ip` process); with a changed
    /// spec (IP, MAC, gateway, VPC) it changes what differs in place, so the namespace and any
    /// container in it survive. A fresh attach is two `ip` processes and one `nft` transaction
    /// that only adds elements (about 7 ms).
    ///
    /// The public address is the caller's: after changing an instance's private IP, map its
    /// public address to the new one.
    pub async fn attach(&self, nic: &NicSpec) -> Result<PathBuf, NetError> {
        validate_nic(nic)?;
        let _vpcs = self.inner.vpcs.read().await;
        let lock = self.instance_lock(&nic.instance_id);
        let _instance = lock.lock().await;
        let started = Instant::now();
        let names = &self.inner.names;
        let (bridge, veth, veth_exists) = self.claim_port(nic).await?;
        host::ensure_netns_dir(&format!("{}_scratch", names.prefix())).await?;
        let netns = names.netns(&nic.instance_id);
        let netns_path = host::netns_path(&netns);
        let netns_existed = netns_path.exists();

        if netns_existed && veth_exists {
            match self.reconcile(nic, &netns, &veth, &bridge).await {
                Ok(changed) => {
                    tracing::debug!(instance = %nic.instance_id, changed, elapsed = ?started.elapsed(), "attach (existing)");
                    return Ok(netns_path);
                }
                Err(error) => {
                    // eth0 is missing or unreadable: rebuild the pair below.
                    tracing::warn!(instance = %nic.instance_id, %error, "attach: rebuilding the veth pair");
                }
            }
        }

        let result = self
            .create(nic, &netns, &veth, &bridge, netns_existed, veth_exists)
            .await;
        if let Err(error) = result {
            let mut lines = Vec::new();
            if host::link_exists(&veth) {
                lines.push(format!("link del dev {veth}"));
            }
            if !netns_existed && netns_path.exists() {
                lines.push(format!("netns del {netns}"));
            }
            let cleanup = cmd::ip_batch(&[], &lines).await.map(|_| ());
            return Err(with_cleanup(error, cleanup));
        }
        tracing::debug!(instance = %nic.instance_id, %veth, elapsed = ?started.elapsed(), "attach");
        Ok(netns_path)
    }

    /// Plumb a VM instance's port: a persistent tap device on the VPC bridge (named as the
    /// veth of a container instance would be, so every per-port rule, the public-address
    /// mapping, leak listing and [`detach`](Self::detach) apply unchanged), with the same
    /// anti-spoofing by MAC and IP. The guest configures its own address; QEMU opens the tap
    /// by name (`-netdev tap,ifname=…`) while still root, so the tap stays root's. Returns the
    /// tap's name. Idempotent; a veth pair left from an earlier attach is replaced.
    pub async fn attach_tap(&self, nic: &NicSpec) -> Result<String, NetError> {
        validate_nic(nic)?;
        let _vpcs = self.inner.vpcs.read().await;
        let lock = self.instance_lock(&nic.instance_id);
        let _instance = lock.lock().await;
        let started = Instant::now();
        let names = &self.inner.names;
        let (bridge, tap, exists) = self.claim_port(nic).await?;
        let is_tap = Path::new("/sys/class/net")
            .join(&tap)
            .join("tun_flags")
            .exists();
        let mut lines = Vec::new();
        if exists && !is_tap {
            lines.push(format!("link del dev {tap}"));
        }
        let netns = names.netns(&nic.instance_id);
        if host::netns_path(&netns).exists() {
            lines.push(format!("netns del {netns}"));
        }
        if !exists || !is_tap {
            lines.extend([
                format!("tuntap add dev {tap} mode tap"),
                format!("link set dev {tap} addrgenmode none"),
                format!("link set dev {tap} alias {}", nic.instance_id),
            ]);
        }
        if host::master(&tap).as_deref() != Some(bridge.as_str()) || !host::is_up(&tap) {
            lines.push(format!("link set dev {tap} master {bridge} up"));
        }
        if !lines.is_empty() {
            if let Err(error) = cmd::ip_batch(&[], &lines).await {
                let cleanup = if !exists && host::link_exists(&tap) {
                    cmd::ip_batch(&[], &[format!("link del dev {tap}")])
                        .await
                        .map(|_| ())
                } else {
                    Ok(())
                };
                return Err(with_cleanup(error, cleanup));
            }
            host::host_sysctls(&veth_sysctls(&tap))?;
        }
        tracing::debug!(instance = %nic.instance_id, %tap, elapsed = ?started.elapsed(), "attach tap");
        Ok(tap)
    }

    /// The start of every attach (the caller holds the instance's lock): the VPC's bridge must
    /// exist; the port's name is the instance's, refused if another instance owns a link of
    /// that name; and the port's anti-spoofing elements go in before the port exists, so its
    /// first frame already meets them. Returns (bridge, port name, whether the link exists).
    async fn claim_port(&self, nic: &NicSpec) -> Result<(String, String, bool), NetError> {
        let names = &self.inner.names;
        let bridge = names.bridge(&nic.vpc_id);
        if !host::link_exists(&bridge) {
            return Err(NetError::VpcNotFound {
                vpc_id: nic.vpc_id.clone(),
                bridge,
            });
        }
        let port_name = names.veth(&nic.instance_id);
        let exists = host::link_exists(&port_name);
        if exists {
            self.check_owner(&port_name, &nic.instance_id)?;
        }
        let port = state::PortFacts {
            bridge: bridge.clone(),
            mac: nic.mac,
            ip: nic.ip,
        };
        let table = names.table();
        self.transact(|tracked| {
            let facts = state::Facts {
                port: Some(port.clone()),
                ..tracked.facts_of(&port_name)
            };
            tracked.plan(&table, &port_name, &facts, "", "")
        })
        .await?;
        Ok((bridge, port_name, exists))
    }

    async fn create(
        &self,
        nic: &NicSpec,
        netns: &str,
        veth: &str,
        bridge: &str,
        netns_existed: bool,
        veth_exists: bool,
    ) -> Result<(), NetError> {
        let mac = host::format_mac(nic.mac);
        let mut host_lines = Vec::new();
        if veth_exists {
            // A stale half (its namespace is gone or its peer is not our eth0).
            host_lines.push(format!("link del dev {veth}"));
        }
        if !netns_existed {
            // `ip netns add` (or `attach`, naming a running guest's namespace) in a batch
            // returns to the host namespace after creating it.
            host_lines.push(match nic.netns_of {
                Some(pid) => format!("netns attach {netns} {pid}"),
                None => format!("netns add {netns}"),
            });
        }
        host_lines.extend([
            // The peer is created directly inside the namespace with its final name and MAC,
            // so it never appears in the host namespace.
            format!("link add name {veth} type veth peer name eth0 netns {netns} address {mac}"),
            format!("link set dev {veth} addrgenmode none"),
            format!(
                "link set dev {veth} alias {} master {bridge} up",
                nic.instance_id
            ),
        ]);
        cmd::ip_batch(&[], &host_lines).await?;
        host::host_sysctls(&veth_sysctls(veth))?;
        host::netns_sysctls(&host::netns_path(netns), eth0_sysctls()).await?;
        let address = Ipv4Net::new(nic.ip, nic.prefix_len).expect("validated");
        let ns_lines = vec![
            "link set dev lo up".to_string(),
            "link set dev eth0 addrgenmode none".to_string(),
            format!("addr add {address} brd + dev eth0"),
            "link set dev eth0 up".to_string(),
            format!("route add default via {} dev eth0", nic.gateway),
        ];
        cmd::ip_batch(&["-n", netns], &ns_lines).await?;
        Ok(())
    }

    /// Bring an existing attachment to `nic`; whether anything had to change.
    async fn reconcile(
        &self,
        nic: &NicSpec,
        netns: &str,
        veth: &str,
        bridge: &str,
    ) -> Result<bool, NetError> {
        let observed = host::parse_ns_state(
            &cmd::ip_batch(
                &["-4", "-j", "-n", netns],
                &[
                    "addr show dev eth0".to_string(),
                    "link show dev lo".to_string(),
                    "route show default".to_string(),
                ],
            )
            .await?,
        )?;
        let mut host_lines = Vec::new();
        if host::master(veth).as_deref() != Some(bridge) {
            host_lines.push(format!("link set dev {veth} master {bridge}"));
        }
        if !host::is_up(veth) {
            host_lines.push(format!("link set dev {veth} up"));
        }

        let address = Ipv4Net::new(nic.ip, nic.prefix_len).expect("validated");
        let mut ns_lines = Vec::new();
        if !observed.lo_up {
            ns_lines.push("link set dev lo up".to_string());
        }
        if observed.mac != Some(nic.mac) {
            ns_lines.push(format!(
                "link set dev eth0 address {}",
                host::format_mac(nic.mac)
            ));
        }
        let mut addresses_changed = false;
        for stale in observed.addrs.iter().filter(|a| **a != address) {
            ns_lines.push(format!("addr del {stale} dev eth0"));
            addresses_changed = true;
        }
        if !observed.addrs.contains(&address) {
            ns_lines.push(format!("addr add {address} brd + dev eth0"));
            addresses_changed = true;
        }
        if !observed.eth0_up {
            ns_lines.push("link set dev eth0 up".to_string());
        }
        // Removing an address can take the default route with it: restate it after any change.
        if addresses_changed || !observed.eth0_up || observed.default_gw != Some(nic.gateway) {
            ns_lines.push(format!(
                "route replace default via {} dev eth0",
                nic.gateway
            ));
        }
        let changed = !host_lines.is_empty() || !ns_lines.is_empty();
        cmd::ip_batch(&[], &host_lines).await?;
        cmd::ip_batch(&["-n", netns], &ns_lines).await?;
        Ok(changed)
    }

    /// Remove the instance's veth pair and namespace, then all its rules (anti-spoofing,
    /// security groups, public address). Idempotent.
    pub async fn detach(&self, instance_id: &str) -> Result<(), NetError> {
        names::validate_id("instance id", instance_id)?;
        let _vpcs = self.inner.vpcs.read().await;
        let lock = self.instance_lock(instance_id);
        let _instance = lock.lock().await;
        let started = Instant::now();
        let names = &self.inner.names;
        let veth = names.veth(instance_id);
        let netns = names.netns(instance_id);
        let mut lines = Vec::new();
        if host::link_exists(&veth) {
            self.check_owner(&veth, instance_id)?;
            // Deleting one end deletes the pair, eth0 included; done first so the instance is
            // off the bridge even if its namespace lives on (a process still inside it).
            lines.push(format!("link del dev {veth}"));
        }
        if host::netns_path(&netns).exists() {
            lines.push(format!("netns del {netns}"));
        }
        cmd::ip_batch(&[], &lines).await?;
        let table = names.table();
        self.transact(|tracked| {
            if !tracked.exists {
                return Ok(None);
            }
            let post = if tracked.facts_of(&veth).firewalled {
                nft::render_remove_firewall(&table, &veth)
            } else {
                String::new()
            };
            tracked.plan(&table, &veth, &state::Facts::default(), "", &post)
        })
        .await?;
        tracing::debug!(instance = %instance_id, elapsed = ?started.elapsed(), "detach");
        Ok(())
    }

    /// Instance ids with any host network resource under this prefix (namespace or veth), for
    /// leak detection. A veth whose alias is missing (a crash between creating and naming it)
    /// is reported by its interface name.
    pub async fn list_attachments(&self) -> Result<Vec<String>, NetError> {
        let names = &self.inner.names;
        let mut ids = BTreeSet::new();
        for netns in host::netns_names()? {
            if let Some(id) = names.instance_of_netns(&netns) {
                ids.insert(id.to_string());
            }
        }
        for link in host::links()? {
            if names.is_veth(&link) {
                match host::ifalias(&link).filter(|a| !a.is_empty()) {
                    Some(alias) => ids.insert(alias),
                    None => ids.insert(link),
                };
            }
        }
        Ok(ids.into_iter().collect())
    }

    /// Remove everything under this prefix: namespaces, veths, bridges and both nftables
    /// tables. For tests and `gureum down`.
    pub async fn teardown_all(&self) -> Result<(), NetError> {
        let _vpcs = self.inner.vpcs.write().await;
        let mut tracked = self.inner.tracked.lock().await;
        *tracked = None;
        self.inner.converged.lock().unwrap().clear();
        let names = &self.inner.names;
        let scratch = format!("{}_scratch", names.prefix());
        let links = host::links()?;
        let mut lines = Vec::new();
        for link in links.iter().filter(|l| names.is_veth(l)) {
            lines.push(format!("link del dev {link}"));
        }
        for netns in host::netns_names()? {
            if names.instance_of_netns(&netns).is_some() || netns == scratch {
                lines.push(format!("netns del {netns}"));
            }
        }
        for link in links.iter().filter(|l| names.is_bridge(l)) {
            lines.push(format!("link del dev {link}"));
        }
        // -force: carry on past one failure (say, a pair already gone with its peer) and judge
        // by what is left afterwards.
        let removed = cmd::ip_batch(&["-force"], &lines).await;
        nft::apply(&nft::render_delete(&names.table())).await?;
        let left: Vec<String> = host::links()?
            .into_iter()
            .filter(|l| names.is_veth(l) || names.is_bridge(l))
            .chain(
                host::netns_names()?
                    .into_iter()
                    .filter(|n| names.instance_of_netns(n).is_some()),
            )
            .collect();
        match (removed, left.is_empty()) {
            (_, true) => Ok(()),
            (Err(error), false) => Err(error),
            (Ok(_), false) => Err(NetError::invalid(
                "teardown",
                format!("resources remain: {left:?}"),
            )),
        }
    }

    /// Counters of the instance's host-side veth.
    pub async fn counters(&self, instance_id: &str) -> Result<Counters, NetError> {
        names::validate_id("instance id", instance_id)?;
        let veth = self.inner.names.veth(instance_id);
        if !host::link_exists(&veth) {
            return Err(NetError::NotAttached {
                instance_id: instance_id.to_string(),
            });
        }
        host::counters(&veth)
    }

    /// Map `public` to the instance's `private` address in the kernel (DNAT for this host's own
    /// connections and for traffic arriving from anywhere else, including other instances);
    /// replaces the instance's previous public address. Idempotent, and cheap when nothing
    /// changes (no process at all). Refused if another instance has `public`, and for
    /// addresses that would hijack this host's own traffic: 127.0.0.0/16 (localhost, Debian's
    /// 127.0.1.1), addresses of this host's interfaces other than `lo`, and non-unicast ones.
    ///
    /// The instance need not be attached yet; `detach` removes the mapping.
    pub async fn map_public_ip(
        &self,
        instance_id: &str,
        public: Ipv4Addr,
        private: Ipv4Addr,
    ) -> Result<(), NetError> {
        names::validate_id("instance id", instance_id)?;
        validate_public(public, private)?;
        let _vpcs = self.inner.vpcs.read().await;
        let lock = self.instance_lock(instance_id);
        let _instance = lock.lock().await;
        let veth = self.inner.names.veth(instance_id);
        let mapping = nft::Mapping { public, private };
        if self.public_of(&veth).await? == Some(mapping) {
            return Ok(());
        }
        if !public.is_loopback() {
            // A routable public must be configured on no interface (but `lo`, see `nft`).
            let routes = host::parse_routes(
                &cmd::run("ip", &["-4", "-j", "route", "show", "table", "local"], None).await?,
            )?;
            if let Some(route) = routes
                .iter()
                .find(|r| r.dev != "lo" && r.dst.contains(&public))
            {
                return Err(NetError::invalid(
                    format!("public address {public}"),
                    format!(
                        "it is an address of this host ({} on {})",
                        route.dst, route.dev
                    ),
                ));
            }
        }
        self.set_public(&veth, Some(mapping)).await
    }

    async fn set_public(&self, veth: &str, public: Option<nft::Mapping>) -> Result<(), NetError> {
        let table = self.inner.names.table();
        self.transact(|tracked| {
            let facts = state::Facts {
                public,
                ..tracked.facts_of(veth)
            };
            tracked.plan(&table, veth, &facts, "", "")
        })
        .await
    }

    /// Remove the instance's public address, if it has one. Idempotent. Connections already
    /// established through it live on until conntrack forgets them.
    pub async fn unmap_public_ip(&self, instance_id: &str) -> Result<(), NetError> {
        names::validate_id("instance id", instance_id)?;
        let _vpcs = self.inner.vpcs.read().await;
        let lock = self.instance_lock(instance_id);
        let _instance = lock.lock().await;
        let veth = self.inner.names.veth(instance_id);
        self.set_public(&veth, None).await
    }

    /// The instance's public address, if it has one.
    pub async fn public_ip(&self, instance_id: &str) -> Result<Option<Ipv4Addr>, NetError> {
        names::validate_id("instance id", instance_id)?;
        let veth = self.inner.names.veth(instance_id);
        Ok(self.public_of(&veth).await?.map(|m| m.public))
    }

    async fn public_of(&self, veth: &str) -> Result<Option<nft::Mapping>, NetError> {
        let mut guard = self.inner.tracked.lock().await;
        if guard.is_none() {
            *guard = Some(state::Tracked::load(&self.inner.names.table()).await?);
        }
        Ok(guard.as_ref().expect("loaded").facts_of(veth).public)
    }

    /// Replace the instance's security groups (the union of its groups' rules) in one
    /// transaction that touches only the instance's own chains and sets: live for the next new
    /// connection, established ones are left alone. The instance need not be attached yet;
    /// `detach` removes them.
    pub async fn set_instance_firewall(
        &self,
        instance_id: &str,
        firewall: &Firewall,
    ) -> Result<(), NetError> {
        names::validate_id("instance id", instance_id)?;
        firewall::validate(firewall)?;
        let ingress = firewall::compile(&firewall.ingress);
        let egress = firewall::compile(&firewall.egress);
        let _vpcs = self.inner.vpcs.read().await;
        let lock = self.instance_lock(instance_id);
        let _instance = lock.lock().await;
        let started = Instant::now();
        let veth = self.inner.names.veth(instance_id);
        let table = self.inner.names.table();
        let chains = nft::render_firewall(&table, instance_id, &veth, &ingress, &egress);
        self.transact(|tracked| {
            let facts = state::Facts {
                firewalled: true,
                ..tracked.facts_of(&veth)
            };
            tracked.plan(&table, &veth, &facts, &chains, "")
        })
        .await?;
        tracing::debug!(
            instance = %instance_id,
            rules = firewall.ingress.len() + firewall.egress.len(),
            elements = ingress.len() + egress.len(),
            elapsed = ?started.elapsed(),
            "set_instance_firewall"
        );
        Ok(())
    }

    /// Rewrite the shared part of the nftables tables from the bridges that exist now.
    async fn apply_ruleset(&self) -> Result<(), NetError> {
        let names = &self.inner.names;
        let bridges = host::links()?
            .into_iter()
            .filter(|l| names.is_bridge(l))
            .collect();
        let mut tracked = self.inner.tracked.lock().await;
        let result = nft::apply(&nft::render(&nft::Ruleset {
            table: names.table(),
            bridges,
        }))
        .await;
        match (&result, tracked.as_mut()) {
            (Ok(()), Some(tracked)) => tracked.exists = true,
            (Err(_), _) => *tracked = None,
            _ => {}
        }
        result
    }

    /// Run one transaction planned from the mirror of the shared maps (see [`state`]): load
    /// the mirror if needed, plan, apply, keep the planned mirror. On failure the mirror is
    /// reloaded and the plan retried once (the tables may have changed under us).
    async fn transact<F>(&self, plan: F) -> Result<(), NetError>
    where
        F: Fn(&state::Tracked) -> Result<Option<(String, state::Tracked)>, NetError>,
    {
        let table = self.inner.names.table();
        let mut guard = self.inner.tracked.lock().await;
        let mut retried = false;
        loop {
            let current = match guard.take() {
                Some(current) if !retried => current,
                _ => state::Tracked::load(&table).await?,
            };
            let planned = match plan(&current) {
                Ok(planned) => planned,
                Err(error) => {
                    *guard = Some(current);
                    return Err(error);
                }
            };
            let Some((text, next)) = planned else {
                *guard = Some(current);
                return Ok(());
            };
            match nft::apply(&text).await {
                Ok(()) => {
                    *guard = Some(next);
                    return Ok(());
                }
                Err(error) if !retried => {
                    tracing::warn!(%error, "nft transaction failed; reloading the tables' state and retrying");
                    retried = true;
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// A name is ours for `owner` if its alias says so (or is empty: created, not yet named).
    fn check_owner(&self, ifname: &str, owner: &str) -> Result<(), NetError> {
        match host::ifalias(ifname) {
            Some(alias) if !alias.is_empty() && alias != owner => Err(NetError::NameCollision {
                ifname: ifname.to_string(),
                wanted: owner.to_string(),
                found: alias,
            }),
            _ => Ok(()),
        }
    }

    fn instance_lock(&self, instance_id: &str) -> Arc<Mutex<()>> {
        let mut map = self
            .inner
            .instances
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(lock) = map.get(instance_id).and_then(Weak::upgrade) {
            return lock;
        }
        if map.len() >= 1024 {
            map.retain(|_, lock| lock.strong_count() > 0);
        }
        let lock = Arc::new(Mutex::new(()));
        map.insert(instance_id.to_string(), Arc::downgrade(&lock));
        lock
    }
}

/// The gateway addresses the VPC's bridge must carry, after checking the subnets.
fn desired_gateways(vpc: &VpcNet) -> Result<BTreeSet<Ipv4Net>, NetError> {
    let mut desired = BTreeSet::new();
    for (i, subnet) in vpc.subnets.iter().enumerate() {
        let what = format!("subnet {}", subnet.subnet_id);
        if subnet.cidr.prefix_len() > 30 {
            return Err(NetError::invalid(what, "prefix longer than /30"));
        }
        error::check_host_addr(&what, subnet.gateway, subnet.cidr.trunc())?;
        for other in &vpc.subnets[..i] {
            if other.cidr.contains(&subnet.cidr.network())
                || subnet.cidr.contains(&other.cidr.network())
            {
                return Err(NetError::invalid(
                    what,
                    format!("{} overlaps {}", subnet.cidr, other.cidr),
                ));
            }
        }
        desired.insert(Ipv4Net::new(subnet.gateway, subnet.cidr.prefix_len()).expect("valid"));
    }
    Ok(desired)
}

fn validate_nic(nic: &NicSpec) -> Result<(), NetError> {
    names::validate_id("instance id", &nic.instance_id)?;
    names::validate_id("vpc id", &nic.vpc_id)?;
    let what = format!("interface of {}", nic.instance_id);
    let net = Ipv4Net::new(nic.ip, nic.prefix_len)
        .map_err(|_| NetError::invalid(&what, format!("bad prefix length {}", nic.prefix_len)))?;
    if nic.prefix_len > 30 {
        return Err(NetError::invalid(&what, "prefix longer than /30"));
    }
    error::check_host_addr(&what, nic.ip, net.trunc())?;
    error::check_host_addr(&what, nic.gateway, net.trunc())?;
    if nic.ip == nic.gateway {
        return Err(NetError::invalid(&what, "the address is the gateway's"));
    }
    if nic.mac[0] & 1 != 0 || nic.mac == [0; 6] {
        return Err(NetError::invalid(
            &what,
            "the MAC must be unicast and non-zero",
        ));
    }
    Ok(())
}

/// A public address must be unicast, not one the host itself uses for loopback traffic, and
/// differ from the private one.
fn validate_public(public: Ipv4Addr, private: Ipv4Addr) -> Result<(), NetError> {
    let what = format!("public address {public}");
    let localhost = Ipv4Net::new(Ipv4Addr::new(127, 0, 0, 0), 16).expect("valid");
    let this_network = Ipv4Net::new(Ipv4Addr::UNSPECIFIED, 8).expect("valid");
    let reserved = Ipv4Net::new(Ipv4Addr::new(240, 0, 0, 0), 4).expect("valid");
    if localhost.contains(&public) {
        return Err(NetError::invalid(
            what,
            "127.0.0.0/16 is this host's own loopback traffic (127.0.0.1, 127.0.1.1, …)",
        ));
    }
    if this_network.contains(&public)
        || public.is_multicast()
        || public.is_link_local()
        || reserved.contains(&public)
    {
        return Err(NetError::invalid(what, "not a unicast address"));
    }
    if private.is_loopback()
        || private.is_unspecified()
        || private.is_multicast()
        || private.is_broadcast()
        || private == public
    {
        return Err(NetError::invalid(
            what,
            format!("{private} is not a usable private address"),
        ));
    }
    Ok(())
}

/// Keep both the failure and a failed cleanup's error.
fn with_cleanup(error: NetError, cleanup: Result<(), NetError>) -> NetError {
    match cleanup {
        Ok(()) => error,
        Err(cleanup) => NetError::CleanupFailed {
            error: Box::new(error),
            cleanup: Box::new(cleanup),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nic() -> NicSpec {
        NicSpec {
            instance_id: "i-0123456789abcdef0".into(),
            vpc_id: "vpc-1".into(),
            mac: [0x0a, 1, 2, 3, 4, 5],
            ip: Ipv4Addr::new(172, 31, 0, 5),
            prefix_len: 20,
            gateway: Ipv4Addr::new(172, 31, 0, 1),
            netns_of: None,
        }
    }

    #[test]
    fn nic_validation() {
        validate_nic(&nic()).unwrap();
        let bad = [
            NicSpec {
                ip: Ipv4Addr::new(172, 31, 0, 1),
                ..nic()
            },
            NicSpec {
                ip: Ipv4Addr::new(172, 31, 0, 0),
                ..nic()
            },
            NicSpec {
                ip: Ipv4Addr::new(172, 31, 15, 255),
                ..nic()
            },
            NicSpec {
                gateway: Ipv4Addr::new(172, 31, 16, 1),
                ..nic()
            },
            NicSpec {
                prefix_len: 33,
                ..nic()
            },
            NicSpec {
                prefix_len: 31,
                ..nic()
            },
            NicSpec {
                mac: [1, 0, 0, 0, 0, 0],
                ..nic()
            },
            NicSpec {
                mac: [0; 6],
                ..nic()
            },
            NicSpec {
                instance_id: "i/1".into(),
                ..nic()
            },
        ];
        for spec in bad {
            assert!(validate_nic(&spec).is_err(), "{spec:?}");
        }
    }

    #[test]
    fn vpc_validation() {
        let subnet = |id: &str, cidr: &str, gw: [u8; 4]| SubnetNet {
            subnet_id: id.into(),
            cidr: cidr.parse().unwrap(),
            gateway: gw.into(),
        };
        let vpc = VpcNet {
            vpc_id: "vpc-1".into(),
            subnets: vec![
                subnet("subnet-a", "172.31.0.0/20", [172, 31, 0, 1]),
                subnet("subnet-b", "172.31.16.0/20", [172, 31, 16, 1]),
            ],
        };
        let gateways = desired_gateways(&vpc).unwrap();
        assert_eq!(
            gateways
                .into_iter()
                .map(|g| g.to_string())
                .collect::<Vec<_>>(),
            ["172.31.0.1/20", "172.31.16.1/20"]
        );
        let overlapping = VpcNet {
            subnets: vec![
                subnet("subnet-a", "172.31.0.0/16", [172, 31, 0, 1]),
                subnet("subnet-b", "172.31.16.0/20", [172, 31, 16, 1]),
            ],
            ..vpc.clone()
        };
        assert!(desired_gateways(&overlapping).is_err());
        let outside = VpcNet {
            subnets: vec![subnet("subnet-a", "172.31.0.0/20", [172, 31, 16, 1])],
            ..vpc
        };
        assert!(desired_gateways(&outside).is_err());
    }

    #[test]
    fn driver_rejects_bad_prefix() {
        assert!(NetDriver::new("gureum").is_err());
        let driver = NetDriver::new("gr").unwrap();
        assert_eq!(driver.table(), "gureum");
        assert_eq!(driver.netns_path("i-1"), PathBuf::from("/run/netns/gr-i-1"));
    }
}
