//! Images registered from EBS snapshots (`RegisterImage`), following the volumes' pattern
//! (see `volumes.rs`): the call validates everything and records the image `pending` with its
//! block device mappings in one transaction; the host agent then makes the image's root
//! filesystem from the root snapshot's bytes ([`ImageStep::Import`], through the host's
//! [`HostImages`](crate::host::HostImages)) and the outcome is recorded by compare-and-swap
//! on the image's state: `available` with the root filesystem, or `failed` with the host's
//! words. A crash mid-import leaves the image `pending`, and the next pass imports again.
//!
//! The snapshots stay the image's: `DeleteSnapshot` of one answers `InvalidSnapshot.InUse`
//! until the image is deregistered (`snapshots.rs`). Deregistering records the image in the
//! trash, and its root filesystem is removed ([`ImageStep::Remove`]) once no image (a copy
//! shares it) and no instance that is not terminated uses it.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use gureum_ec2::ops::images::{ImageBlockDeviceRequest, RegisterImage, Response};
use gureum_store::images::BlockDeviceRow;
use gureum_types::{
    ApiError, Architecture, ErrorCode, ImageState, InstanceState, ResourceId, ResourceKind,
    SnapshotState, VirtualizationType, VolumeType,
};

use crate::host::ImportedImage;
use crate::images::{check_name, insert_image, NewImage};
use crate::snapshots::find_visible;
use crate::volumes::{check_device, check_spec};
use crate::{tags, Cloud, CoreResult};

/// `ImageRow::source` of an image registered from snapshots.
pub const SOURCE: &str = "snapshot";

/// The login user an image gets until its root filesystem says otherwise.
const DEFAULT_LOGIN_USER: &str = "admin";

fn bad_mapping(message: String) -> ApiError {
    ApiError::new(ErrorCode::InvalidBlockDeviceMapping, message)
}

/// An EBS mapping as requested, checked for what needs no records.
struct Mapping {
    device_name: String,
    snapshot_id: Option<String>,
    volume_size: Option<u32>,
    volume_type: VolumeType,
    iops: Option<u32>,
    throughput: Option<u32>,
    delete_on_termination: bool,
}

/// The request's EBS mappings and the root device's name. Instance-store (`VirtualName`) and
/// `NoDevice` mappings are dropped: gureum has no instance store.
fn mappings(
    root_device_name: Option<String>,
    requested: Vec<ImageBlockDeviceRequest>,
) -> CoreResult<(String, Vec<Mapping>)> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for m in requested {
        check_device(&m.device_name)?;
        if !seen.insert(m.device_name.clone()) {
            return Err(bad_mapping(format!(
                "The device name {} is used more than once.",
                m.device_name
            ))
            .into());
        }
        if m.no_device || m.virtual_name.is_some() {
            continue;
        }
        if m.snapshot_id.is_none() && m.volume_size.is_none() {
            return Err(ApiError::new(
                ErrorCode::MissingParameter,
                "The request must contain the parameter size or snapshotId",
            )
            .into());
        }
        out.push(Mapping {
            device_name: m.device_name,
            snapshot_id: m.snapshot_id,
            volume_size: m.volume_size,
            volume_type: m.volume_type.unwrap_or(VolumeType::Gp2),
            iops: m.iops,
            throughput: m.throughput,
            delete_on_termination: m.delete_on_termination.unwrap_or(true),
        });
    }
    // Without a RootDeviceName the first mapping of a snapshot is the root.
    let root = root_device_name
        .or_else(|| {
            out.iter()
                .find(|m| m.snapshot_id.is_some())
                .map(|m| m.device_name.clone())
        })
        .ok_or_else(|| {
            bad_mapping(
                "An image needs a root device: a BlockDeviceMapping with an Ebs.SnapshotId.".into(),
            )
        })?;
    match out.iter().find(|m| m.device_name == root) {
        Some(m) if m.snapshot_id.is_some() => Ok((root, out)),
        Some(_) => Err(bad_mapping(format!(
            "The root device {root} must be made from a snapshot (Ebs.SnapshotId)."
        ))
        .into()),
        None => Err(bad_mapping(format!(
            "The root device {root} is not in the block device mapping."
        ))
        .into()),
    }
}

impl Cloud {
    /// `RegisterImage`: an EBS-backed image from snapshots, `pending` until the host has made
    /// its root filesystem.
    pub(crate) async fn register_image(
        &self,
        account: String,
        req: RegisterImage,
    ) -> CoreResult<Response> {
        check_name(&req.name)?;
        if req.image_location.is_some() {
            return Err(ApiError::new(
                ErrorCode::UnsupportedOperation,
                "Instance store-backed AMIs (ImageLocation) are not supported; register an \
                 EBS-backed AMI from a snapshot with BlockDeviceMapping.",
            )
            .into());
        }
        if let Some(a) = req.architecture.filter(|a| *a != Architecture::X86_64) {
            return Err(ApiError::invalid_value(
                "architecture",
                a.as_str(),
                "Only x86_64 images are supported.",
            )
            .into());
        }
        if let Some(v) = req
            .virtualization_type
            .filter(|v| *v != VirtualizationType::Hvm)
        {
            return Err(ApiError::invalid_value(
                "virtualizationType",
                v.as_str(),
                "Only hvm images are supported.",
            )
            .into());
        }
        let image_tags = tags::from_specifications(&req.tag_specifications, ResourceKind::Image)?;
        let (root, maps) = mappings(req.root_device_name, req.block_device_mappings)?;
        let now = self.clock.now_millis();
        let id = ResourceId::generate(ResourceKind::Image).to_string();
        let (name, description) = (req.name, req.description.unwrap_or_default());
        let image_id = id.clone();
        self.blocking(move |s| {
            s.write(|tx| {
                let mut rows = Vec::new();
                for m in maps {
                    let mut size = m.volume_size;
                    if let Some(snap_id) = &m.snapshot_id {
                        let snap = find_visible(tx, &account, snap_id)?;
                        if snap.state != SnapshotState::Completed {
                            return Err(ApiError::new(
                                ErrorCode::IncorrectState,
                                format!("Snapshot {snap_id} is not 'completed'."),
                            )
                            .into());
                        }
                        let wanted = *size.get_or_insert(snap.volume_size);
                        if wanted < snap.volume_size {
                            return Err(bad_mapping(format!(
                                "Volume of size {wanted}GB is smaller than snapshot \
                                 '{snap_id}', expect size >= {}GB",
                                snap.volume_size
                            ))
                            .into());
                        }
                    }
                    let size = size.unwrap_or_default();
                    check_spec(m.volume_type, size, m.iops, m.throughput)?;
                    rows.push(BlockDeviceRow {
                        image_id: id.clone(),
                        root: m.device_name == root,
                        device_name: m.device_name,
                        snapshot_id: m.snapshot_id,
                        volume_size: size,
                        volume_type: m.volume_type,
                        delete_on_termination: m.delete_on_termination,
                    });
                }
                let root_size_gib = rows.iter().find(|r| r.root).map_or(8, |r| r.volume_size);
                let image = NewImage {
                    name,
                    description,
                    login_user: DEFAULT_LOGIN_USER.into(),
                    root_size_gib,
                    rootfs: None,
                    state: ImageState::Pending,
                    public: false,
                    owner_alias: None,
                    source: SOURCE.into(),
                    source_instance_id: None,
                    source_image_id: None,
                    tags: image_tags,
                };
                insert_image(tx, &account, &id, image, now)?;
                for r in &rows {
                    tx.images().add_block_device(r)?;
                }
                Ok(())
            })
        })
        .await?;
        self.wake_agent();
        Ok(Response::ImageId(image_id))
    }

    /// The host steps the image records ask for: the root filesystem of each pending image
    /// registered from a snapshot, and the removal of deregistered ones' files that nothing
    /// uses any more.
    pub(crate) async fn image_jobs(&self) -> CoreResult<Vec<ImageJob>> {
        self.blocking(|s| {
            s.read(|tx| {
                let images = tx.images().all()?;
                let devices = tx.images().block_devices()?;
                let instances = tx.instances().all()?;
                let mut jobs: Vec<ImageJob> = images
                    .iter()
                    .filter(|i| i.source == SOURCE && i.state == ImageState::Pending)
                    .filter_map(|i| {
                        let root = devices.iter().find(|d| d.image_id == i.id && d.root)?;
                        Some(ImageJob {
                            image_id: i.id.clone(),
                            step: ImageStep::Import {
                                snapshot_id: root.snapshot_id.clone()?,
                            },
                        })
                    })
                    .collect();
                for (id, rootfs) in tx.images().trashed()? {
                    let used = rootfs.as_deref().is_some_and(|p| {
                        images.iter().any(|i| i.rootfs.as_deref() == Some(p))
                            || instances
                                .iter()
                                .any(|r| r.state != InstanceState::Terminated && r.rootfs == p)
                    });
                    if !used {
                        jobs.push(ImageJob {
                            image_id: id,
                            step: ImageStep::Remove,
                        });
                    }
                }
                Ok(jobs)
            })
        })
        .await
    }

    /// Record how an image's host step ended: an import only if the image is still `pending`
    /// (a root filesystem made for an image deregistered meanwhile goes to the trash).
    pub(crate) async fn image_done(&self, job: ImageJob, outcome: ImageOutcome) -> CoreResult<()> {
        let id = job.image_id;
        if let ImageOutcome::Failed(why) = &outcome {
            tracing::error!(image = %id, error = %why, "making the image failed");
        }
        let changed = self
            .blocking(move |s| {
                s.write(|tx| {
                    let pending = tx
                        .images()
                        .get(&id)?
                        .filter(|r| r.state == ImageState::Pending);
                    match (job.step, outcome) {
                        (ImageStep::Remove, ImageOutcome::Removed) => {
                            tx.images().empty_trash(&id)?;
                            Ok(false)
                        }
                        (ImageStep::Import { .. }, ImageOutcome::Imported(made)) => {
                            let rootfs = made.rootfs.display().to_string();
                            if pending.is_none() {
                                if tx.images().get(&id)?.is_none() {
                                    tx.images().trash(&id, Some(&rootfs))?;
                                }
                                return Ok(true);
                            }
                            tx.images()
                                .set_state(&id, ImageState::Available, None, Some(&rootfs))?;
                            tx.images().set_login_user(&id, &made.login_user)?;
                            Ok(true)
                        }
                        (ImageStep::Import { .. }, ImageOutcome::Failed(why)) => {
                            if pending.is_some() {
                                tx.images()
                                    .set_state(&id, ImageState::Failed, Some(&why), None)?;
                            }
                            Ok(false)
                        }
                        (_, ImageOutcome::Failed(why)) => {
                            tracing::warn!(image = %id, error = %why, "removing an image's files failed");
                            Ok(false)
                        }
                        (_, _) => Err(crate::CoreError::Invariant(
                            "an image step reported another step's outcome",
                        )),
                    }
                })
            })
            .await?;
        if changed {
            self.wake_agent();
        }
        Ok(())
    }
}

/// What a host agent must do for one image (see [`Cloud::image_jobs`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageJob {
    pub image_id: String,
    pub step: ImageStep,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ImageStep {
    /// Make the image's root filesystem from the bytes of its root snapshot.
    Import { snapshot_id: String },
    /// The image was deregistered and nothing uses its files: remove them.
    Remove,
}

/// How an image's host step ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ImageOutcome {
    Imported(ImportedImage),
    Removed,
    /// The host's words.
    Failed(String),
}
