//! The real host: the runc compute driver and the bridge/netns network driver behind the
//! core's traits, the system packages they need, and the default image built on first start.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use gureum_core::host::{
    Compute, Firewall, FirewallPeer, FirewallRule, GuestSpec, GuestState, HostError, HostNet,
    HostResult, Network, Nic,
};
use gureum_core::images::{NewImage, BUILTIN_ALIAS};
use gureum_core::{Cloud, Host};
use gureum_image::{BuildOptions, ImageCache, ProgressMode};
use gureum_net::{NetDriver, NicSpec, SubnetNet, VpcNet};
use gureum_runtime::{
    ContainerSpec, ContainerState, DriverOptions, InjectFile, RelayCommand, RuncDriver,
};

/// How long a graceful stop waits for the guest's systemd before killing it.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(20);
/// The default image's recipe.
pub const DEFAULT_RECIPE: &str = "debian-12";
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
        };
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

/// The core's effective rules in the network driver's terms.
fn net_firewall(fw: &Firewall) -> gureum_net::Firewall {
    use gureum_net::{Peer, Proto, Rule};
    let conv = |r: &FirewallRule| Rule {
        proto: match r.protocol.as_str() {
            "tcp" => Proto::Tcp,
            "udp" => Proto::Udp,
            "icmp" => Proto::Icmp,
            _ => Proto::All,
        },
        ports: if r.protocol == "all" { None } else { r.ports },
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

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

fn have(cmd: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(cmd).is_file()))
        .unwrap_or(false)
        || ["/usr/sbin", "/sbin"]
            .iter()
            .any(|d| Path::new(d).join(cmd).is_file())
}

/// The system packages instances need: `(command, Debian package)`.
pub const PACKAGES: &[(&str, &str)] = &[
    ("runc", "runc"),
    ("mmdebstrap", "mmdebstrap"),
    ("nft", "nftables"),
    ("lxcfs", "lxcfs"),
    ("ip", "iproute2"),
    ("mkfs.ext4", "e2fsprogs"),
    ("losetup", "mount"),
    ("ssh-keygen", "openssh-client"),
];

/// Install whatever of [`PACKAGES`] is missing (root only).
pub fn ensure_packages() -> anyhow::Result<()> {
    let missing: Vec<&str> = PACKAGES
        .iter()
        .filter(|(cmd, _)| !have(cmd))
        .map(|(_, pkg)| *pkg)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    println!("installing system packages: {}", missing.join(" "));
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq {} >/dev/null",
            missing.join(" ")
        ))
        .status()
        .context("running apt-get")?;
    anyhow::ensure!(
        status.success(),
        "apt-get install {} failed",
        missing.join(" ")
    );
    Ok(())
}

/// The host drivers, or `None` (with the reason) where instances cannot run.
pub fn host(data_dir: &Path, cache_dir: &Path) -> Result<Host, String> {
    if !is_root() {
        return Err("not running as root: instances need root (runc, network namespaces)".into());
    }
    ensure_packages().map_err(|e| e.to_string())?;
    gureum_net::preflight()?;
    let mut opts = DriverOptions::new(&data_dir.join("instances"));
    opts.console_relay = Some(RelayCommand {
        program: std::env::current_exe().map_err(|e| e.to_string())?,
        args: vec![crate::CONSOLE_RELAY_ARG.into()],
    });
    let compute = RuncDriver::with_options(opts).map_err(|e| e.to_string())?;
    let net = NetDriver::new(NET_PREFIX).map_err(|e| e.to_string())?;
    Ok(Host {
        compute: Arc::new(RuncCompute {
            driver: compute,
            images_dir: data_dir.join("images"),
        }),
        network: Arc::new(BridgeNetwork(net)),
        guest_files: vec![],
        host_keys: Some(crate::host_keys::RsaKeyPool::spawn(
            &cache_dir.join("host-keys"),
        )),
    })
}

/// Build (or take from the cache) the default image and register it as a public AMI of the
/// system account, in the background: the API serves meanwhile and shows it `pending`.
pub fn spawn_default_image(cloud: Cloud, cache_dir: PathBuf) {
    tokio::task::spawn_blocking(move || {
        if let Err(e) = provide_recipe_image(&cloud, &cache_dir, DEFAULT_RECIPE, None) {
            tracing::error!(error = %e, "the default image could not be built");
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
