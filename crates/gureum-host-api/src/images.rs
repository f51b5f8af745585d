//! The image seam: [`HostImages`], where images made on a host keep their root filesystems.
//! The core asks for one when an AMI is registered from an EBS snapshot (the snapshot's raw
//! file is a disk holding a root file system) and for its removal once the AMI is
//! deregistered and no instance uses it. Every step is keyed by the image id and idempotent,
//! so the core's agent can repeat it after a crash.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::HostResult;

/// A root filesystem made for an image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportedImage {
    /// The read-only root filesystem instances of the image boot (an overlay's lower layer
    /// for containers; a VM's base disk is made from it).
    pub rootfs: PathBuf,
    /// The user the image's key goes to, from its `/etc/os-release` (`admin` on Debian).
    pub login_user: String,
}

/// Root filesystems of images made on this host.
#[async_trait]
pub trait HostImages: Send + Sync + 'static {
    /// Make image `image_id`'s root filesystem from the raw disk `disk` (a file system, or a
    /// partitioned disk with one), which is only read. Idempotent: a root an interrupted call
    /// left is made again; on failure nothing is left.
    async fn import_disk(&self, image_id: &str, disk: &Path) -> HostResult<ImportedImage>;
    /// Remove everything made for image `image_id` (its root filesystem, and a VM base disk
    /// made from it). Idempotent.
    async fn remove(&self, image_id: &str) -> HostResult<()>;
}
