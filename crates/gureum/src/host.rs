//! The real host: the runc and QEMU compute drivers (one [`HostCompute`] choosing per
//! instance) and the bridge/netns/tap network driver behind the core's traits, the system
//! packages they need, and the default image built on first start.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use gureum_core::host::{
    Compute, Firewall, FirewallPeer, FirewallRule, GuestSpec, GuestState, HostError, HostNet,
    HostResult, Network, Nic, WarmGuest,
};
use gureum_core::images::{NewImage, BUILTIN_ALIAS};
use gureum_core::{Cloud, Host, Unavailable};

use crate::packages::{Group, State};
use gureum_image::{BuildOptions, ImageCache, ProgressMode};
use gureum_net::{NetDriver, NicSpec, SubnetNet, VpcNet};
use gureum_runtime::{
    ContainerSpec, ContainerState, DriverOptions, InjectFile, RelayCommand, RuncDriver,
};
use gureum_types::IpProtocol;

/// How long a graceful stop waits for the guest's systemd before killing it.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(20);
/// The default image's recipe.
pub const DEFAULT_RECIPE: &str = "debian-12";
/// How long a VM's graceful stop waits for the guest to power off after the ACPI power button.
pub const VM_STOP_TIMEOUT: Duration = Duration::from_secs(60);
/// The network driver's name prefix on this host.
pub const NET_PREFIX: &str = "gr";

fn herr(e: impl std::fmt::Display) -> HostError {
    HostError(e.to_string())
}

pub struct RuncCompute {
    pub driver: RuncDriver,
    /// Where images made from instances (`CreateImage`) are kept: `<data-dir>/images`.
    pub images_dir: PathBuf,
}

fn container_spec(s: &GuestSpec) -> ContainerSpec {
    ContainerSpec {
        id: s.instance_id.clone(),
        image_rootfs: s.image_rootfs.clone(),
        volume_gib: s.volume_gib as u64,
        hostname: s.hostname.clone(),
        vcpus: s.vcpus,
        memory_mib: s.memory_mib,
        pids_max: s.pids_max,
        netns: s.netns.clone(),
        inject: s
            .files
            .iter()
            .map(|f| InjectFile {
                path: f.path.clone(),
                contents: f.contents.clone(),
                mode: f.mode,
                uid: 0,
                gid: 0,
            })
            .collect(),
        warm: s.warm,
    }
}

#[async_trait]
impl Compute for RuncCompute {
    async fn prepare(&self, spec: &GuestSpec) -> HostResult<()> {
        let t = std::time::Instant::now();
        self.driver
            .prepare(&container_spec(spec))
            .await
            .map_err(herr)?;
        tracing::debug!(
            instance = %spec.instance_id,
            ms = t.elapsed().as_secs_f64() * 1000.0,
            "volume prepared"
        );
        Ok(())
    }
    async fn start(&self, spec: &GuestSpec) -> HostResult<()> {
        self.driver.start(&container_spec(spec)).await.map_err(herr)
    }
    async fn stop(&self, id: &str, force: bool) -> HostResult<()> {
        self.driver
            .stop(id, STOP_TIMEOUT, force)
            .await
            .map_err(herr)
    }
    async fn reboot(&self, spec: &GuestSpec) -> HostResult<()> {
        self.driver
            .reboot(&container_spec(spec))
            .await
            .map_err(herr)
    }
    async fn destroy(&self, id: &str) -> HostResult<()> {
        self.driver.destroy(id).await.map_err(herr)
    }
    async fn state(&self, id: &str) -> HostResult<GuestState> {
        Ok(match self.driver.state(id).await.map_err(herr)? {
            ContainerState::Running => GuestState::Running,
            ContainerState::Stopped => GuestState::Stopped,
            ContainerState::Absent => GuestState::Absent,
        })
    }
    async fn list(&self) -> HostResult<Vec<String>> {
        self.driver.list().await.map_err(herr)
    }
    fn console_output(&self, id: &str, max_bytes: usize) -> HostResult<Vec<u8>> {
        self.driver.console_output(id, max_bytes).map_err(herr)
    }
    async fn snapshot(&self, spec: &GuestSpec, image_id: &str) -> HostResult<PathBuf> {
        let dir = self.images_dir.join(image_id);
        std::fs::create_dir_all(&dir).map_err(herr)?;
        let rootfs = dir.join("rootfs");
        self.driver
            .snapshot(&container_spec(spec), &rootfs)
            .await
            .map_err(herr)?;
        Ok(rootfs)
    }
    async fn warm_guest(&self, id: &str) -> HostResult<Option<WarmGuest>> {
        Ok(self
            .driver
            .warm_guest(id)
            .await
            .map_err(herr)?
            .map(|w| WarmGuest {
                pid: w.pid,
                waiting: w.waiting,
            }))
    }
}

/// The QEMU driver. The accelerator is probed once, at the first VM start, with that image's
/// kernel as the test guest (KVM only if it really boots under it; TCG otherwise, with a
/// warning).
pub struct VmCompute {
    pub driver: gureum_vm::VmDriver,
    probed: tokio::sync::OnceCell<gureum_vm::Accel>,
}

impl VmCompute {
    pub fn new(state_dir: &Path) -> Result<VmCompute, String> {
        let driver =
            gureum_vm::VmDriver::new(gureum_vm::VmOptions::new(state_dir, gureum_vm::Accel::Tcg))
                .map_err(|e| e.to_string())?;
        Ok(VmCompute {
            driver,
            probed: tokio::sync::OnceCell::new(),
        })
    }

    async fn probe_once(&self, rootfs: &Path) {
        self.probed
            .get_or_init(|| async {
                let kernel = gureum_vm::disk::find_kernel(rootfs).map(|(k, _)| k);
                let report = gureum_vm::probe(
                    Path::new("qemu-system-x86_64"),
                    kernel.as_deref(),
                    gureum_vm::probe::PROBE_DEADLINE,
                )
                .await;
                let accel = report.accel();
                match &report.kvm {
                    Ok(t) => tracing::info!(ms = t.as_millis() as u64, "VMs use KVM"),
                    Err(why) => tracing::warn!(
                        %why,
                        "KVM does not boot a test guest on this host: VMs use TCG (software emulation, slower)"
                    ),
                }
                self.driver.set_accel(accel);
                accel
            })
            .await;
    }

    fn vm_spec(spec: &GuestSpec) -> gureum_vm::VmSpec {
        let tap = spec
            .netns
            .as_ref()
            .filter(|p| p.starts_with("/sys/class/net"))
            .and_then(|p| p.file_name())
            .map(|n| n.to_string_lossy().into_owned());
        gureum_vm::VmSpec {
            id: spec.instance_id.clone(),
            image_rootfs: spec.image_rootfs.clone(),
            volume_gib: spec.volume_gib as u64,
            vcpus: spec.vcpus,
            memory_mib: spec.memory_mib,
            net: match (tap, &spec.nic) {
                (Some(tap), Some(nic)) => Some(gureum_vm::GuestNet {
                    tap,
                    mac: nic.mac,
                    ip: nic.ip,
                    prefix_len: nic.prefix_len,
                    gateway: nic.gateway,
                }),
                _ => None,
            },
            files: spec
                .files
                .iter()
                .map(|f| gureum_vm::SeedFile {
                    path: f.path.clone(),
                    contents: f.contents.clone(),
                    mode: f.mode,
                })
                .collect(),
        }
    }
}

/// Both compute drivers behind the core's one trait: a spec goes to the driver its instance
/// record names (`hypervisor`); an id goes to the QEMU driver if that has the instance (its
/// directory), else to runc.
pub struct HostCompute {
    pub runc: RuncCompute,
    pub vm: Option<VmCompute>,
}

impl HostCompute {
    fn vm_for(&self, spec: &GuestSpec) -> HostResult<Option<&VmCompute>> {
        if spec.hypervisor != "vm" {
            return Ok(None);
        }
        self.vm.as_ref().map(Some).ok_or_else(|| {
            HostError("VMs are unavailable on this host (no qemu-system-x86_64)".into())
        })
    }

    fn vm_has(&self, id: &str) -> Option<&VmCompute> {
        self.vm.as_ref().filter(|v| v.driver.dir(id).is_dir())
    }
}

#[async_trait]
impl Compute for HostCompute {
    async fn prepare(&self, spec: &GuestSpec) -> HostResult<()> {
        match self.vm_for(spec)? {
            Some(vm) => vm
                .driver
                .prepare(&VmCompute::vm_spec(spec))
                .await
                .map_err(herr),
            None => self.runc.prepare(spec).await,
        }
    }
    async fn start(&self, spec: &GuestSpec) -> HostResult<()> {
        match self.vm_for(spec)? {
            Some(vm) => {
                vm.probe_once(&spec.image_rootfs).await;
                vm.driver
                    .start(&VmCompute::vm_spec(spec))
                    .await
                    .map_err(herr)
            }
            None => self.runc.start(spec).await,
        }
    }
    async fn stop(&self, id: &str, force: bool) -> HostResult<()> {
        match self.vm_has(id) {
            Some(vm) => vm
                .driver
                .stop(id, VM_STOP_TIMEOUT, force)
                .await
                .map_err(herr),
            None => self.runc.stop(id, force).await,
        }
    }
    async fn reboot(&self, spec: &GuestSpec) -> HostResult<()> {
        match self.vm_for(spec)? {
            Some(vm) => vm
                .driver
                .reboot(&VmCompute::vm_spec(spec), VM_STOP_TIMEOUT)
                .await
                .map_err(herr),
            None => self.runc.reboot(spec).await,
        }
    }
    async fn destroy(&self, id: &str) -> HostResult<()> {
        if let Some(vm) = &self.vm {
            vm.driver.destroy(id).await.map_err(herr)?;
        }
        self.runc.destroy(id).await
    }
    async fn state(&self, id: &str) -> HostResult<GuestState> {
        match self.vm_has(id) {
            Some(vm) => Ok(match vm.driver.state(id).await.map_err(herr)? {
                gureum_vm::VmState::Running => GuestState::Running,
                gureum_vm::VmState::Stopped => GuestState::Stopped,
                gureum_vm::VmState::Absent => GuestState::Absent,
            }),
            None => self.runc.state(id).await,
        }
    }
    async fn list(&self) -> HostResult<Vec<String>> {
        let mut ids = self.runc.list().await?;
        if let Some(vm) = &self.vm {
            ids.extend(vm.driver.list().await.map_err(herr)?);
        }
        ids.sort();
        ids.dedup();
        Ok(ids)
    }
    fn console_output(&self, id: &str, max_bytes: usize) -> HostResult<Vec<u8>> {
        match self.vm_has(id) {
            Some(vm) => vm.driver.console_output(id, max_bytes).map_err(herr),
            None => self.runc.console_output(id, max_bytes),
        }
    }
    async fn snapshot(&self, spec: &GuestSpec, image_id: &str) -> HostResult<PathBuf> {
        if self.vm_for(spec)?.is_some() {
            return Err(HostError(
                "CreateImage of a VM instance is not supported yet".into(),
            ));
        }
        self.runc.snapshot(spec, image_id).await
    }
    async fn warm_guest(&self, id: &str) -> HostResult<Option<WarmGuest>> {
        match self.vm_has(id) {
            Some(_) => Ok(None),
            None => self.runc.warm_guest(id).await,
        }
    }
}

pub struct BridgeNetwork(pub NetDriver);

#[async_trait]
impl Network for BridgeNetwork {
    async fn ensure_net(&self, net: &HostNet) -> HostResult<()> {
        let vpc = VpcNet {
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
        };
        self.0.ensure_vpc(&vpc).await.map_err(herr)
    }
    async fn remove_net(&self, net_id: &str) -> HostResult<()> {
        self.0.remove_vpc(net_id).await.map_err(herr)
    }

    async fn attach(&self, nic: &Nic) -> HostResult<Option<PathBuf>> {
        let spec = NicSpec {
            instance_id: nic.instance_id.clone(),
            vpc_id: nic.net_id.clone(),
            mac: nic.mac,
            ip: nic.ip,
            prefix_len: nic.prefix_len,
            gateway: nic.gateway,
            netns_of: nic.netns_of,
        };
        if nic.tap {
            // A VM's port: the tap's sysfs directory tells the compute driver its name.
            let tap = self.0.attach_tap(&spec).await.map_err(herr)?;
            return Ok(Some(Path::new("/sys/class/net").join(tap)));
        }
        self.0.attach(&spec).await.map(Some).map_err(herr)
    }
    async fn detach(&self, id: &str) -> HostResult<()> {
        self.0.detach(id).await.map_err(herr)
    }
    async fn list(&self) -> HostResult<Vec<String>> {
        self.0.list_attachments().await.map_err(herr)
    }
    async fn teardown(&self) -> HostResult<()> {
        self.0.teardown_all().await.map_err(herr)
    }
    async fn set_firewall(&self, id: &str, fw: &Firewall) -> HostResult<()> {
        self.0
            .set_instance_firewall(id, &net_firewall(fw))
            .await
            .map_err(herr)
    }
    async fn map_public_ip(
        &self,
        id: &str,
        public: std::net::Ipv4Addr,
        private: std::net::Ipv4Addr,
    ) -> HostResult<()> {
        self.0
            .map_public_ip(id, public, private)
            .await
            .map_err(herr)
    }
    async fn unmap_public_ip(&self, id: &str) -> HostResult<()> {
        self.0.unmap_public_ip(id).await.map_err(herr)
    }
}

/// The protocol a core rule admits, in the network driver's terms: one variant for one
/// meaning, matched exhaustively so that a new protocol cannot fall into "every protocol".
fn net_proto(p: IpProtocol) -> gureum_net::Proto {
    use gureum_net::Proto;
    match p {
        IpProtocol::Tcp => Proto::Tcp,
        IpProtocol::Udp => Proto::Udp,
        IpProtocol::Icmp => Proto::Icmp,
        IpProtocol::Icmpv6 => Proto::Icmpv6,
        IpProtocol::Other(n) => Proto::Number(n),
        IpProtocol::All => Proto::All,
    }
}

/// The core's effective rules in the network driver's terms.
fn net_firewall(fw: &Firewall) -> gureum_net::Firewall {
    use gureum_net::{Peer, Rule};
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
    gureum_net::Firewall {
        ingress: fw.ingress.iter().map(conv).collect(),
        egress: fw.egress.iter().map(conv).collect(),
    }
}

/// The host drivers, or `None` where instances cannot run, and why each hypervisor cannot
/// run instances here. Installs the missing system packages first, each group on its own
/// (see `packages.rs`): a group that fails turns off only its own feature.
pub fn host(
    data_dir: &Path,
    cache_dir: &Path,
    replace_qemu_utils: bool,
) -> (Option<Host>, Unavailable) {
    let report = crate::packages::install_all(Some(cache_dir), replace_qemu_utils);
    let why = |g| match report.state(g) {
        Some(State::Unavailable { why, .. }) => Some(why.clone()),
        _ => None,
    };
    let vms = why(Group::Vms);
    let containers = if !crate::packages::is_root() {
        Some("gureum is not running as root (instances need runc and network namespaces)".into())
    } else {
        why(Group::Core)
    };
    let host = match containers {
        Some(_) => Err(String::new()),
        None => drivers(data_dir, cache_dir, vms.is_none()),
    };
    match host {
        Ok(h) => (
            Some(h),
            Unavailable {
                containers: None,
                vms,
            },
        ),
        Err(e) => {
            let containers = containers.unwrap_or(e);
            let vms = Some(vms.unwrap_or_else(|| containers.clone()));
            (
                None,
                Unavailable {
                    containers: Some(containers),
                    vms,
                },
            )
        }
    }
}

/// The drivers themselves, once the packages are there.
fn drivers(data_dir: &Path, cache_dir: &Path, with_vms: bool) -> Result<Host, String> {
    gureum_net::preflight()?;
    let mut opts = DriverOptions::new(&data_dir.join("instances"));
    opts.console_relay = Some(RelayCommand {
        program: std::env::current_exe().map_err(|e| e.to_string())?,
        args: vec![crate::CONSOLE_RELAY_ARG.into()],
    });
    let compute = RuncDriver::with_options(opts).map_err(|e| e.to_string())?;
    let net = NetDriver::new(NET_PREFIX).map_err(|e| e.to_string())?;
    let vm = match VmCompute::new(&data_dir.join("vms")) {
        Ok(vm) if with_vms => Some(vm),
        Ok(_) => None,
        Err(why) => {
            tracing::warn!(%why, "VM instances are unavailable");
            None
        }
    };
    Ok(Host {
        compute: Arc::new(HostCompute {
            runc: RuncCompute {
                driver: compute,
                images_dir: data_dir.join("images"),
            },
            vm,
        }),
        network: Arc::new(BridgeNetwork(net)),
        guest_files: vec![],
        host_keys: Some(crate::host_keys::HostKeyPool::spawn(
            &cache_dir.join("host-keys"),
        )),
    })
}

/// Build (or take from the cache) the default image and register it as a public AMI of the
/// system account, in the background: the API serves meanwhile and shows it `pending`.
pub fn spawn_default_image(cloud: Cloud, cache_dir: PathBuf) {
    tokio::task::spawn_blocking(move || {
        match provide_recipe_image(&cloud, &cache_dir, DEFAULT_RECIPE, None) {
            Ok(id) => {
                // The warm pool boots the default image.
                if let Err(e) = cloud.set_warm_image_sync(&id) {
                    tracing::warn!(error = %e, "the warm pool has no image");
                }
            }
            Err(e) => tracing::error!(error = %e, "the default image could not be built"),
        }
    });
}

/// Make sure the recipe's image is registered and available, building it if needed. Blocking.
pub fn provide_recipe_image(
    cloud: &Cloud,
    cache_dir: &Path,
    recipe_name: &str,
    mirror: Option<String>,
) -> anyhow::Result<String> {
    let recipe =
        gureum_image::recipe(recipe_name).with_context(|| format!("no recipe {recipe_name}"))?;
    let source = format!("recipe:{recipe_name}");
    let existing = cloud
        .image_by_source_sync(&source)
        .map_err(anyhow::Error::msg)?;
    let cache = ImageCache::open(cache_dir)?;
    let opts = BuildOptions {
        mirror,
        refresh: false,
        progress: ProgressMode::Auto,
    };
    if let Some(img) = &existing {
        if img.state == "available" {
            if let Some(built) = cache.lookup(recipe, &opts)? {
                if built.rootfs.exists() {
                    return Ok(img.id.clone());
                }
            }
        }
    }
    let sys = cloud.system_account_sync().map_err(anyhow::Error::msg)?;
    // Reuse a pending or failed record (a build interrupted by a crash, or a failed one).
    let id = match existing {
        Some(img) => img.id,
        None => cloud
            .register_image_sync(
                &sys,
                NewImage {
                    name: gureum_image::image_name(recipe, "amd64", std::time::SystemTime::now()),
                    description: format!("{recipe_name}, building…"),
                    login_user: recipe.login_user.to_string(),
                    root_size_gib: 8,
                    rootfs: None,
                    state: "pending".into(),
                    public: true,
                    owner_alias: Some(BUILTIN_ALIAS.into()),
                    source: source.clone(),
                    source_instance_id: None,
                    source_image_id: None,
                    tags: vec![],
                },
            )
            .map_err(anyhow::Error::msg)?,
    };
    let result = match cache.lookup(recipe, &opts)? {
        Some(b) => Ok(b),
        None => {
            tracing::info!(recipe = recipe_name, "building image");
            cache.build(recipe, &opts)
        }
    };
    match result {
        Ok(built) => {
            cloud
                .describe_built_image_sync(&id, &built.name, &built.description)
                .map_err(anyhow::Error::msg)?;
            cloud
                .finish_image_sync(&id, Ok(built.rootfs.display().to_string()))
                .map_err(anyhow::Error::msg)?;
            tracing::info!(image = %id, name = %built.name, "image available");
            Ok(id)
        }
        Err(e) => {
            cloud
                .finish_image_sync(&id, Err(e.to_string()))
                .map_err(anyhow::Error::msg)?;
            Err(e.into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gureum_net::Proto;

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
        gureum_net::firewall::validate(&net).unwrap();
        for n in 0..=255u8 {
            let p = net_proto(IpProtocol::from_number(n));
            assert_ne!(p, Proto::All, "protocol {n}");
        }
    }
}
