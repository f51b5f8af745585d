//! The block-storage seam: [`Volumes`], where an EBS volume's and snapshot's bytes live on a
//! host, and [`VolumeAttachment`], a volume handed to a compute driver to show to a guest as a
//! block device (see [`crate::Compute::attach_volume`]).
//!
//! A volume's bytes are one raw file (sparse: unwritten blocks take no space) that the pool
//! names; a snapshot is a copy-on-write clone of it. Every step is idempotent, keyed by the
//! volume or snapshot id, so the core's agent can repeat any of them after a crash.

use std::path::PathBuf;

use async_trait::async_trait;

use crate::HostResult;

/// A volume as a compute driver shows it to one guest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeAttachment {
    /// `vol-…`: the guest sees it as the device's serial number (NVMe) or in
    /// `/dev/disk/by-id`, as on AWS's Nitro instances.
    pub volume_id: String,
    /// The device name the attachment was asked for, as AWS spells it (`/dev/sdf`,
    /// `/dev/xvdf`).
    pub device: String,
    /// The volume's raw file on this host ([`Volumes::path`]).
    pub path: PathBuf,
    pub read_only: bool,
}

/// Where volumes and snapshots keep their bytes on this host.
#[async_trait]
pub trait Volumes: Send + Sync + 'static {
    /// Make volume `volume_id` of `size_gib` GiB: zeroed, or a copy-on-write clone of snapshot
    /// `from` grown to `size_gib`. Idempotent (an existing volume is left as it is).
    async fn create(&self, volume_id: &str, size_gib: u32, from: Option<&str>) -> HostResult<()>;
    /// Grow a volume to `size_gib` (never shrinks). Idempotent.
    async fn grow(&self, volume_id: &str, size_gib: u32) -> HostResult<()>;
    /// Remove a volume's bytes. Idempotent (an absent volume is fine).
    async fn delete(&self, volume_id: &str) -> HostResult<()>;
    /// Take a crash-consistent, copy-on-write snapshot of a volume (attached and busy or
    /// not). Idempotent.
    async fn snapshot(&self, volume_id: &str, snapshot_id: &str) -> HostResult<()>;
    /// Remove a snapshot's bytes. Idempotent.
    async fn delete_snapshot(&self, snapshot_id: &str) -> HostResult<()>;
    /// Every volume id and every snapshot id with bytes on this host (for the leak sweep).
    async fn list(&self) -> HostResult<(Vec<String>, Vec<String>)>;
    /// The raw file holding a volume's bytes.
    fn path(&self, volume_id: &str) -> PathBuf;
    /// The raw file holding a snapshot's bytes (read-only: images are made from it).
    fn snapshot_path(&self, snapshot_id: &str) -> PathBuf;
}
