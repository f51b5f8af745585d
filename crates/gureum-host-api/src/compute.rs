//! The compute driver trait ([`Compute`]) and what crosses it: the spec of one guest, its
//! state, a warm guest.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use gureum_types::Hypervisor;

use crate::{HostError, HostResult, Nic, VolumeAttachment};

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
    /// tap device's `<TAP_DIR>/<tap>` directory (VMs, see [`crate::TAP_DIR`]), if any.
    pub netns: Option<PathBuf>,
    pub files: Vec<GuestFile>,
    /// What runs the guest (the instance record's hypervisor).
    pub hypervisor: Hypervisor,
    /// The instance's interface (VMs configure their own address from it).
    pub nic: Option<Nic>,
    /// A warm guest: booted ahead of its launch (see the core's `warm.rs`); its agent waits
    /// for the instance's files, which a later `start` of the same id without `warm` hands
    /// over.
    pub warm: bool,
    /// The EBS volumes attached besides the root volume, shown to the guest from its boot.
    pub volumes: Vec<VolumeAttachment>,
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

/// A compute driver: runs guests. Every step is idempotent, so the core's agent can repeat
/// any of them after a crash.
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
    /// Whether this driver has anything of `instance_id` on the host (cheap: a directory
    /// looked at, no process run). It tells which driver an id-only step belongs to.
    fn has_guest(&self, instance_id: &str) -> bool;
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
    /// Show a volume to a guest as a block device at `attachment.device`, at once if it runs
    /// (hot-plug, no restart); a guest that is not running gets it from its next start (its
    /// spec's `volumes`). Idempotent.
    async fn attach_volume(
        &self,
        instance_id: &str,
        _attachment: &VolumeAttachment,
    ) -> HostResult<()> {
        Err(HostError::Unsupported(format!(
            "{instance_id}: this driver cannot attach volumes"
        )))
    }
    /// Write the guest's root file system (the image with everything written since) to `dest`
    /// as a standalone raw disk of `spec.volume_gib` GiB holding one file system, so the root
    /// volume can outlive the guest as an ordinary volume (`DeleteOnTermination` false) or be
    /// snapshotted. Written under a temporary name beside `dest` that starts with `.tmp-`,
    /// then renamed, so `dest` is whole or absent. A guest that runs is read live (as
    /// `CreateImage` with `NoReboot` is); stop it first for a consistent copy. Idempotent (an
    /// existing `dest` is replaced).
    async fn export_root_volume(&self, spec: &GuestSpec, _dest: &Path) -> HostResult<()> {
        Err(HostError::Unsupported(format!(
            "{}: this driver cannot export root volumes",
            spec.instance_id
        )))
    }
    /// Take a volume away from a guest. Unless `force`, a volume the guest still uses (a
    /// mounted file system) is left attached and the answer is [`HostError::Busy`]; `force`
    /// removes it regardless, as AWS's forced detach does. Idempotent (a volume not attached is
    /// fine).
    async fn detach_volume(
        &self,
        instance_id: &str,
        _volume_id: &str,
        _force: bool,
    ) -> HostResult<()> {
        Err(HostError::Unsupported(format!(
            "{instance_id}: this driver cannot detach volumes"
        )))
    }
}
