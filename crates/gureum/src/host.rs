//! The real host, wired: the runc and QEMU compute drivers behind one
//! [`ByHypervisor`] and the bridge/netns/tap network driver, handed to the core (the drivers
//! implement the core's traits themselves, see `gureum-host-api`); the system packages they
//! need; and the default image built on first start.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use gureum_core::host::ByHypervisor;
use gureum_core::images::{NewImage, BUILTIN_ALIAS};
use gureum_core::{Cloud, Host, Unavailable};

use crate::packages::{Group, State};
use gureum_image::{BuildOptions, ImageCache, ProgressMode};
use gureum_net::NetDriver;
use gureum_runtime::{DriverOptions, RelayCommand, RuncDriver};
use gureum_vm::{Accel, VmDriver, VmOptions};

/// The default image's recipe.
pub const DEFAULT_RECIPE: &str = "debian-12";
/// The network driver's name prefix on this host.
pub const NET_PREFIX: &str = "gr";

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
    opts.mount_daemon = Some(RelayCommand {
        program: std::env::current_exe().map_err(|e| e.to_string())?,
        args: vec![crate::MOUNTD_ARG.into()],
    });
    opts.images_dir = Some(data_dir.join("images"));
    let containers = RuncDriver::with_options(opts).map_err(|e| e.to_string())?;
    let net = NetDriver::new(NET_PREFIX).map_err(|e| e.to_string())?;
    // TCG until the first VM start's probe shows that KVM really boots that image's kernel.
    let mut vm_opts = VmOptions::new(&data_dir.join("vms"), Accel::Tcg);
    vm_opts.probe_accel = true;
    let vms = match VmDriver::new(vm_opts) {
        Ok(vm) if with_vms => Some(vm),
        Ok(_) => None,
        Err(why) => {
            tracing::warn!(%why, "VM instances are unavailable");
            None
        }
    };
    Ok(Host {
        compute: Arc::new(ByHypervisor::new(containers, vms)),
        network: Arc::new(net),
        guest_files: vec![],
        host_keys: Some(crate::host_keys::HostKeyPool::spawn(
            &cache_dir.join("host-keys"),
        )),
        volumes: volume_pool(data_dir),
        images: Some(Arc::new(crate::host_images::ImageStore::for_data_dir(
            data_dir,
        ))),
    })
}

/// Where EBS volumes keep their bytes on this host: the data dir's pool (`ebs.rs`), or none
/// where it cannot be made (`CreateVolume` then answers `InsufficientVolumeCapacity`).
fn volume_pool(data_dir: &Path) -> Option<Arc<dyn gureum_core::host::Volumes>> {
    crate::ebs::LazyPool::for_data_dir(data_dir)
        .map(|p| Arc::new(crate::ebs::Pool(p)) as Arc<dyn gureum_core::host::Volumes>)
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
        if img.state == gureum_types::ImageState::Available {
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
                    state: gureum_types::ImageState::Pending,
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
