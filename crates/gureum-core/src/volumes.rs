//! EBS volumes: `CreateVolume`, `DescribeVolumes`, `AttachVolume`, `DetachVolume`,
//! `DeleteVolume`, `ModifyVolume`, `DescribeVolumesModifications`, `DescribeVolumeStatus`,
//! `Describe/ModifyVolumeAttribute`, with AWS's ranges, states and errors; and their
//! convergence: the control plane's half here ([`Cloud::volume_jobs`], [`Cloud::volume_done`]),
//! the host agent's in `volume_host.rs`.
//!
//! Intent first, as for instances: every call validates everything and records the user's
//! intent in one transaction (`creating`, an attachment `attaching` or `detaching`,
//! `deleting`, a modification `modifying`, a snapshot `pending`), then wakes the agent. The
//! agent reads the records and runs the idempotent host steps (the volume pool's create, grow,
//! snapshot and delete; the compute driver's attach and detach for a running instance), then
//! records the outcome by compare-and-swap on the volume's generation:
//!
//! | recorded                         | host step                                   | then                       |
//! |----------------------------------|---------------------------------------------|----------------------------|
//! | `creating`                       | pool create (zeroed, or from the snapshot)  | `available` (or `error`)   |
//! | modification `modifying`         | pool grow                                   | modification `completed`   |
//! | `in-use`, `attaching`            | running instance: hot-plug; stopped: none   | `attached`                 |
//! | `in-use`, `detaching` or `busy`  | running instance: detach (forced if asked)  | `available`; `busy` if held|
//! | `in-use`, instance terminated    | none (the guest is gone)                    | `deleting` or `available` by `DeleteOnTermination` |
//! | root, instance `shutting-down`, not `DeleteOnTermination` | export the root file system into the pool (the terminate path, before destroy) | `available`, no longer root (`error` if it failed) |
//! | `deleting`                       | pool delete                                 | forgotten                  |
//!
//! A host without a volume pool (no host at all, or a driver set without block storage)
//! cannot make volumes: `CreateVolume` answers `InsufficientVolumeCapacity`, as EC2 does when a
//! zone has no capacity, rather than recording a volume nothing would ever create.

use serde::{Deserialize, Serialize};

use gureum_ec2::ops::volumes::{
    Action, CreateVolume, ModifyVolume, Response, VolumeAttribute, VolumeStatus,
};
use gureum_ec2::Page;
use gureum_store::volumes::{AttachmentRow, ModificationRow, VolumeRow};
use gureum_store::Tx;
use gureum_types::model::{Filter, Tag, Volume, VolumeAttachment, VolumeModification};
use gureum_types::{
    ApiError, ErrorCode, InstanceState, ResourceId, ResourceKind, SnapshotState,
    VolumeAttachmentState, VolumeModificationState, VolumeState, VolumeType,
};

use crate::describe::{self, Describable};
use crate::{aws_time, tags, Cloud, CoreError, CoreResult, Ctx};

/// The device name of every instance's root volume.
pub const ROOT_DEVICE: &str = "/dev/xvda";

/// AWS's default per-account storage quota of each volume type, in GiB: 50 TiB, and 20 TiB
/// for io2 (the Service Quotas defaults of a new account).
pub fn storage_quota_gib(t: VolumeType) -> u64 {
    match t {
        VolumeType::Io2 => 20 * 1024,
        VolumeType::Standard
        | VolumeType::Io1
        | VolumeType::Gp2
        | VolumeType::Sc1
        | VolumeType::St1
        | VolumeType::Gp3 => 50 * 1024,
    }
}

const VOLUME_FILTERS: &[&str] = &[
    "volume-id",
    "status",
    "size",
    "volume-type",
    "availability-zone",
    "create-time",
    "attachment.instance-id",
    "attachment.device",
    "attachment.status",
    "attachment.attach-time",
    "attachment.delete-on-termination",
    "snapshot-id",
    "encrypted",
    "multi-attach-enabled",
    "fast-restored",
];

const MODIFICATION_FILTERS: &[&str] = &[
    "volume-id",
    "modification-state",
    "target-size",
    "target-volume-type",
    "target-iops",
    "target-throughput",
    "original-size",
    "original-volume-type",
    "original-iops",
    "original-throughput",
    "start-time",
];

const STATUS_FILTERS: &[&str] = &["volume-id", "availability-zone", "volume-status.status"];

impl Describable for Volume {
    fn filter_values(&self, name: &str) -> Option<Vec<String>> {
        let att = |f: &dyn Fn(&VolumeAttachment) -> String| -> Vec<String> {
            self.attachments.iter().map(f).collect()
        };
        Some(match name {
            "volume-id" => vec![self.id.clone()],
            "status" => vec![self.state.as_str().into()],
            "size" => vec![self.size_gib.to_string()],
            "volume-type" => vec![self.volume_type.as_str().into()],
            "availability-zone" => vec![self.availability_zone.clone()],
            "create-time" => vec![self.create_time.clone()],
            "attachment.instance-id" => att(&|a| a.instance_id.clone()),
            "attachment.device" => att(&|a| a.device.clone()),
            "attachment.status" => att(&|a| a.state.as_str().into()),
            "attachment.attach-time" => att(&|a| a.attach_time.clone()),
            "attachment.delete-on-termination" => att(&|a| a.delete_on_termination.to_string()),
            "snapshot-id" => self.snapshot_id.iter().cloned().collect(),
            "encrypted" => vec![self.encrypted.to_string()],
            "multi-attach-enabled" | "fast-restored" => vec!["false".into()],
            _ => return None,
        })
    }
    fn tags(&self) -> &[Tag] {
        &self.tags
    }
}

impl Describable for VolumeModification {
    fn filter_values(&self, name: &str) -> Option<Vec<String>> {
        let opt = |v: Option<u32>| v.iter().map(|v| v.to_string()).collect();
        Some(match name {
            "volume-id" => vec![self.volume_id.clone()],
            "modification-state" => vec![self.state.as_str().into()],
            "target-size" => vec![self.target_size.to_string()],
            "target-volume-type" => vec![self.target_volume_type.as_str().into()],
            "target-iops" => opt(self.target_iops),
            "target-throughput" => opt(self.target_throughput),
            "original-size" => vec![self.original_size.to_string()],
            "original-volume-type" => vec![self.original_volume_type.as_str().into()],
            "original-iops" => opt(self.original_iops),
            "original-throughput" => opt(self.original_throughput),
            "start-time" => vec![self.start_time.clone()],
            _ => return None,
        })
    }
}

impl Describable for VolumeStatus {
    fn filter_values(&self, name: &str) -> Option<Vec<String>> {
        Some(match name {
            "volume-id" => vec![self.volume_id.clone()],
            "availability-zone" => vec![self.availability_zone.clone()],
            "volume-status.status" => vec![if self.ok { "ok" } else { "impaired" }.into()],
            _ => return None,
        })
    }
}

/// `InvalidVolumeID.Malformed` unless `id` is a volume id.
pub(crate) fn check_volume_id(id: &str) -> CoreResult<()> {
    if ResourceId::parse(ResourceKind::Volume, id).is_none() {
        return Err(ApiError::new(
            ErrorCode::InvalidVolumeIDMalformed,
            format!("Invalid id: \"{id}\" (expecting \"vol-...\")"),
        )
        .into());
    }
    Ok(())
}

/// Write `next` back within the transaction that read it (it cannot have changed meanwhile).
fn update_in(tx: &dyn Tx, next: &VolumeRow, now: i64) -> CoreResult<()> {
    if tx.volumes().update(next, now)? {
        Ok(())
    } else {
        Err(CoreError::Invariant(
            "a volume changed within its transaction",
        ))
    }
}

pub(crate) fn volume_not_found(id: &str) -> CoreError {
    ApiError::new(
        ErrorCode::InvalidVolumeNotFound,
        format!("The volume '{id}' does not exist."),
    )
    .into()
}

/// The account's volume `id`: malformed and unknown ids (another account's included) answer
/// as AWS does.
pub(crate) fn find(tx: &dyn Tx, account: &str, id: &str) -> CoreResult<VolumeRow> {
    check_volume_id(id)?;
    tx.volumes()
        .get(account, id)?
        .filter(|v| v.state != VolumeState::Deleted)
        .ok_or_else(|| volume_not_found(id))
}

fn invalid(message: String) -> ApiError {
    ApiError::new(ErrorCode::InvalidParameterValue, message)
}

fn combination(message: String) -> ApiError {
    ApiError::new(ErrorCode::InvalidParameterCombination, message)
}

/// An IOPS range and the most IOPS per GiB.
type IopsLimits = (u32, u32, u32);

/// What a volume of a type may be: its size range, and its IOPS limits (`None`: IOPS cannot
/// be chosen).
fn limits(t: VolumeType) -> ((u32, u32), Option<IopsLimits>) {
    match t {
        VolumeType::Gp2 => ((1, 16384), None),
        VolumeType::Gp3 => ((1, 16384), Some((3000, 16000, 500))),
        VolumeType::Io1 => ((4, 16384), Some((100, 64000, 50))),
        VolumeType::Io2 => ((4, 16384), Some((100, 64000, 500))),
        VolumeType::St1 | VolumeType::Sc1 => ((125, 16384), None),
        VolumeType::Standard => ((1, 1024), None),
    }
}

/// A volume's size, IOPS and throughput checked against its type's ranges, with AWS's
/// defaults filled in (gp3: 3000 IOPS and 125 MiB/s). The IOPS AWS shows for gp2 (3 per GiB,
/// 100 to 16000) is derived, not chosen.
pub(crate) fn check_spec(
    t: VolumeType,
    size: u32,
    iops: Option<u32>,
    throughput: Option<u32>,
) -> Result<(Option<u32>, Option<u32>), ApiError> {
    let ((min, max), iops_range) = limits(t);
    if size < min {
        return Err(invalid(format!(
            "Volume of {size}GiB is too small; minimum is {min}GiB."
        )));
    }
    if size > max {
        return Err(invalid(format!(
            "Volume of {size}GiB is too large; maximum is {max}GiB."
        )));
    }
    let iops = match (iops_range, iops) {
        (None, Some(_)) => {
            return Err(combination(format!(
                "The parameter iops is not supported for {t} volumes."
            )))
        }
        (None, None) => (t == VolumeType::Gp2).then(|| (size * 3).clamp(100, 16000)),
        (Some(_), None) if t != VolumeType::Gp3 => {
            return Err(ApiError::missing_parameter("iops"));
        }
        (Some((lo, hi, per_gib)), iops) => {
            let iops = iops.unwrap_or(lo);
            if iops < lo {
                return Err(invalid(format!(
                    "Volume iops of {iops} is too low; minimum is {lo}."
                )));
            }
            if iops > hi {
                return Err(invalid(format!(
                    "Volume iops of {iops} is too high; maximum is {hi}."
                )));
            }
            // gp3's baseline 3000 IOPS is allowed on any size.
            if iops > lo.max(per_gib * size) {
                return Err(invalid(format!(
                    "Iops to volume size ratio of {:.1} is too high; maximum is {per_gib}.",
                    iops as f64 / size as f64
                )));
            }
            Some(iops)
        }
    };
    let throughput = match (t, throughput) {
        (VolumeType::Gp3, t) => {
            let t = t.unwrap_or(125);
            if !(125..=1000).contains(&t) {
                return Err(invalid(format!(
                    "Throughput of {t}MiBps is invalid; it must be between 125 and 1000 MiBps."
                )));
            }
            let iops = iops.unwrap_or(3000);
            if t as u64 * 4 > iops as u64 {
                return Err(invalid(format!(
                    "Throughput (MiBps) to iops ratio of {:.6} is too high; maximum is 0.250000 \
                     MiBps per iops.",
                    t as f64 / iops as f64
                )));
            }
            Some(t)
        }
        (_, Some(_)) => {
            return Err(combination(
                "The parameter throughput can only be specified for volumeType gp3.".into(),
            ))
        }
        (_, None) => None,
    };
    Ok((iops, throughput))
}

/// AWS's device names for EBS volumes on Linux: `/dev/sd[a-z]` (optionally with a partition
/// number 1 to 15), `/dev/xvd[a-z]` and `/dev/xvd[a-z][a-z]`, `/dev/hd[a-z]`.
pub(crate) fn check_device(d: &str) -> Result<(), ApiError> {
    let ok = match d.strip_prefix("/dev/") {
        Some(rest) => {
            let letters = |s: &str| s.bytes().all(|b| b.is_ascii_lowercase());
            if let Some(r) = rest.strip_prefix("xvd") {
                (r.len() == 1 || r.len() == 2) && letters(r)
            } else if let Some(r) = rest.strip_prefix("sd").or_else(|| rest.strip_prefix("hd")) {
                let (letter, part) = r.split_at(r.len().min(1));
                letter.len() == 1
                    && letters(letter)
                    && (part.is_empty()
                        || (rest.starts_with("sd")
                            && part.parse::<u32>().is_ok_and(|n| (1..=15).contains(&n))
                            && !part.starts_with('0')))
            } else {
                false
            }
        }
        None => false,
    };
    if ok {
        Ok(())
    } else {
        Err(invalid(format!(
            "Value ({d}) for parameter device is invalid. {d} is not a valid EBS device name."
        )))
    }
}

/// The attachment point a device name takes: `/dev/sdf` and `/dev/xvdf` are the same one
/// (Xen and Nitro instances rename one to the other).
pub(crate) fn attachment_point(d: &str) -> String {
    let base = d.strip_prefix("/dev/").unwrap_or(d);
    let base = base
        .strip_prefix("xvd")
        .or_else(|| base.strip_prefix("sd"))
        .unwrap_or(base);
    base.trim_end_matches(|c: char| c.is_ascii_digit())
        .to_string()
}

pub(crate) fn attachment_model(v: &VolumeRow, a: &AttachmentRow) -> VolumeAttachment {
    VolumeAttachment {
        volume_id: v.id.clone(),
        instance_id: a.instance_id.clone(),
        device: a.device.clone(),
        state: a.state,
        attach_time: aws_time(a.attach_time),
        delete_on_termination: a.delete_on_termination,
    }
}

pub(crate) fn volume_model(v: &VolumeRow, tags: Vec<Tag>) -> Volume {
    Volume {
        id: v.id.clone(),
        size_gib: v.size_gib,
        snapshot_id: v.snapshot_id.clone(),
        availability_zone: v.az.clone(),
        state: v.state,
        create_time: aws_time(v.created_at),
        attachments: v
            .attachment
            .iter()
            .map(|a| attachment_model(v, a))
            .collect(),
        volume_type: v.volume_type,
        iops: v.iops,
        throughput: v.throughput,
        encrypted: v.encrypted,
        tags,
    }
}

fn modification_model(v: &VolumeRow, m: &ModificationRow) -> VolumeModification {
    VolumeModification {
        volume_id: v.id.clone(),
        state: m.state,
        target_size: v.size_gib,
        target_volume_type: v.volume_type,
        target_iops: v.iops,
        target_throughput: v.throughput,
        original_size: m.original_size,
        original_volume_type: m.original_type,
        original_iops: m.original_iops,
        original_throughput: m.original_throughput,
        progress: match m.state {
            VolumeModificationState::Completed => 100,
            VolumeModificationState::Modifying
            | VolumeModificationState::Optimizing
            | VolumeModificationState::Failed => 0,
        },
        start_time: aws_time(m.start_time),
        end_time: m.end_time.map(aws_time),
    }
}

/// `VolumeLimitExceeded` if the account's volumes of type `t` would exceed its quota with
/// `extra` more GiB.
pub(crate) fn check_quota(tx: &dyn Tx, account: &str, t: VolumeType, extra: u64) -> CoreResult<()> {
    let used: u64 = tx
        .volumes()
        .of_account(account)?
        .iter()
        .filter(|v| v.volume_type == t && v.state != VolumeState::Deleting)
        .map(|v| v.size_gib as u64)
        .sum();
    let quota = storage_quota_gib(t);
    if used + extra > quota {
        return Err(ApiError::new(
            ErrorCode::VolumeLimitExceeded,
            format!(
                "You have exceeded your maximum {t} storage limit of {quota} GiB in this region."
            ),
        )
        .into());
    }
    Ok(())
}

impl Cloud {
    async fn create_volume(&self, account: String, req: CreateVolume) -> CoreResult<Response> {
        let tags = tags::from_specifications(&req.tag_specifications, ResourceKind::Volume)?;
        let az = match (&req.availability_zone, &req.availability_zone_id) {
            (Some(name), _) => self
                .region
                .zones
                .iter()
                .find(|z| &z.name == name)
                .ok_or_else(|| invalid(format!("Invalid availability zone: [{name}]")))?,
            (None, Some(id)) => self
                .region
                .zones
                .iter()
                .find(|z| &z.id == id)
                .ok_or_else(|| invalid(format!("Invalid availability zone id: [{id}]")))?,
            (None, None) => return Err(ApiError::missing_parameter("AvailabilityZone").into()),
        }
        .name
        .clone();
        if req.multi_attach {
            return Err(combination(
                "Multi-Attach is not supported by this cloud's volumes.".into(),
            )
            .into());
        }
        if let Some(s) = &req.snapshot_id {
            crate::snapshots::check_snapshot_id(s)?;
        } else if req.size.is_none() {
            return Err(ApiError::missing_parameter("size/snapshot").into());
        }
        let t = req.volume_type.unwrap_or(VolumeType::Gp2);
        // The ranges are checked before anything is read (a size is needed: the snapshot's
        // stands in once it is known).
        if let Some(size) = req.size {
            check_spec(t, size, req.iops, req.throughput)?;
        }
        let pool_missing = !self.volumes_enabled();
        let now = self.clock.now_millis();
        let row = self
            .blocking(move |s| {
                s.write(|tx| {
                    let mut size = req.size;
                    if let Some(snap_id) = &req.snapshot_id {
                        let snap = crate::snapshots::find_visible(tx, &account, snap_id)?;
                        if snap.state != SnapshotState::Completed {
                            return Err(ApiError::new(
                                ErrorCode::IncorrectState,
                                format!("Snapshot is in invalid state - {}", snap.state),
                            )
                            .into());
                        }
                        match size {
                            Some(n) if n < snap.volume_size => {
                                return Err(invalid(format!(
                                    "Volume of size {n}GiB is smaller than snapshot '{snap_id}', \
                                     expect size >= {}GiB",
                                    snap.volume_size
                                ))
                                .into())
                            }
                            Some(_) => {}
                            None => size = Some(snap.volume_size),
                        }
                    }
                    let size = size.unwrap_or(1);
                    let (iops, throughput) = check_spec(t, size, req.iops, req.throughput)?;
                    check_quota(tx, &account, t, size as u64)?;
                    if pool_missing {
                        return Err(ApiError::new(
                            ErrorCode::InsufficientVolumeCapacity,
                            "There is currently insufficient capacity to create the volume: \
                             this host has no volume storage.",
                        )
                        .into());
                    }
                    let row = VolumeRow {
                        id: ResourceId::generate(ResourceKind::Volume).to_string(),
                        account_id: account.clone(),
                        az,
                        size_gib: size,
                        volume_type: t,
                        iops,
                        throughput,
                        snapshot_id: req.snapshot_id.clone(),
                        encrypted: req.encrypted,
                        auto_enable_io: false,
                        state: VolumeState::Creating,
                        generation: 0,
                        created_at: now,
                        root: false,
                        attachment: None,
                        modification: None,
                    };
                    tx.resources().insert(&row.id, &account, "volume", now)?;
                    tx.volumes().insert(&row)?;
                    tx.tags().put(&account, &row.id, &tags)?;
                    Ok(volume_model(&row, tags))
                })
            })
            .await?;
        self.wake_agent();
        Ok(Response::Volume(row))
    }

    async fn describe_volumes(
        &self,
        account: String,
        ids: Vec<String>,
        filters: Vec<Filter>,
        page: Page,
    ) -> CoreResult<Response> {
        describe::validate_filters(&filters, VOLUME_FILTERS, true)?;
        for id in &ids {
            check_volume_id(id)?;
        }
        let volumes = self
            .blocking(move |s| {
                s.read(|tx| {
                    let mut tags = tx.tags().all_by_resource(&account)?;
                    Ok(tx
                        .volumes()
                        .of_account(&account)?
                        .into_iter()
                        .map(|v| {
                            let t = tags.remove(&v.id).unwrap_or_default();
                            volume_model(&v, t)
                        })
                        .collect::<Vec<_>>())
                })
            })
            .await?;
        if let Some(missing) = ids.iter().find(|id| !volumes.iter().any(|v| &v.id == *id)) {
            return Err(volume_not_found(missing));
        }
        let volumes: Vec<Volume> = volumes
            .into_iter()
            .filter(|v| ids.is_empty() || ids.contains(&v.id))
            .filter(|v| describe::matches(v, &filters))
            .collect();
        let (volumes, next_token) = describe::paginate(volumes, |v| v.id.clone(), &page)?;
        Ok(Response::DescribeVolumes {
            volumes,
            next_token,
        })
    }

    async fn attach_volume(
        &self,
        account: String,
        volume_id: String,
        instance_id: String,
        device: String,
    ) -> CoreResult<Response> {
        check_device(&device)?;
        crate::instances::check_instance_id(&instance_id)?;
        let now = self.clock.now_millis();
        let out = self
            .blocking(move |s| {
                s.write(|tx| {
                    let v = find(tx, &account, &volume_id)?;
                    let inst = tx
                        .instances()
                        .get(&instance_id)?
                        .filter(|i| i.account_id == account)
                        .ok_or_else(|| crate::instances::not_found(&[&instance_id]))?;
                    if let Some(a) = &v.attachment {
                        return Err(ApiError::new(
                            ErrorCode::VolumeInUse,
                            format!(
                                "{volume_id} is already attached to an instance ({})",
                                a.instance_id
                            ),
                        )
                        .into());
                    }
                    if v.state != VolumeState::Available {
                        return Err(ApiError::new(
                            ErrorCode::IncorrectState,
                            format!("vol '{volume_id}' is not 'available'."),
                        )
                        .into());
                    }
                    if !matches!(inst.state, InstanceState::Running | InstanceState::Stopped) {
                        return Err(ApiError::new(
                            ErrorCode::IncorrectState,
                            format!("Instance '{instance_id}' is not 'running'."),
                        )
                        .into());
                    }
                    if inst.az != v.az {
                        return Err(ApiError::new(
                            ErrorCode::InvalidVolumeZoneMismatch,
                            format!(
                                "The volume '{volume_id}' is not in the same availability zone \
                                 as instance '{instance_id}'"
                            ),
                        )
                        .into());
                    }
                    let point = attachment_point(&device);
                    let taken = attachment_point(ROOT_DEVICE) == point
                        || tx.volumes().of_instance(&instance_id)?.iter().any(|o| {
                            o.attachment
                                .as_ref()
                                .is_some_and(|a| attachment_point(&a.device) == point)
                        });
                    if taken {
                        return Err(invalid(format!(
                            "Invalid value '{device}' for unixDevice. Attachment point {device} \
                             is already in use"
                        ))
                        .into());
                    }
                    let mut next = v.clone();
                    next.state = VolumeState::InUse;
                    next.attachment = Some(AttachmentRow {
                        instance_id: instance_id.clone(),
                        device: device.clone(),
                        state: VolumeAttachmentState::Attaching,
                        attach_time: now,
                        delete_on_termination: false,
                        force: false,
                    });
                    update_in(tx, &next, now)?;
                    Ok(attachment_model(
                        &next,
                        next.attachment.as_ref().expect("set"),
                    ))
                })
            })
            .await?;
        self.wake_agent();
        Ok(Response::Attachment(out))
    }

    async fn detach_volume(
        &self,
        account: String,
        volume_id: String,
        instance_id: Option<String>,
        device: Option<String>,
        force: bool,
    ) -> CoreResult<Response> {
        if let Some(i) = &instance_id {
            crate::instances::check_instance_id(i)?;
        }
        let now = self.clock.now_millis();
        let out = self
            .blocking(move |s| {
                s.write(|tx| {
                    let v = find(tx, &account, &volume_id)?;
                    let Some(a) = v.attachment.clone() else {
                        return Err(ApiError::new(
                            ErrorCode::IncorrectState,
                            format!("Volume '{volume_id}' is in the '{}' state.", v.state),
                        )
                        .into());
                    };
                    let other_instance = instance_id.as_ref().is_some_and(|i| *i != a.instance_id);
                    let other_device = device.as_ref().is_some_and(|d| *d != a.device);
                    if other_instance || other_device {
                        return Err(ApiError::new(
                            ErrorCode::InvalidAttachmentNotFound,
                            format!(
                                "The volume {volume_id} is not attached to instance {}",
                                instance_id.as_deref().unwrap_or(&a.instance_id)
                            ),
                        )
                        .into());
                    }
                    if v.root {
                        return Err(ApiError::new(
                            ErrorCode::OperationNotPermitted,
                            format!(
                                "The volume {volume_id} is the root device of instance {}; \
                                 it cannot be detached",
                                a.instance_id
                            ),
                        )
                        .into());
                    }
                    let mut next = v.clone();
                    let att = next.attachment.as_mut().expect("attached");
                    if att.state != VolumeAttachmentState::Busy {
                        att.state = VolumeAttachmentState::Detaching;
                    }
                    att.force |= force;
                    update_in(tx, &next, now)?;
                    let mut shown = attachment_model(&next, next.attachment.as_ref().expect("set"));
                    shown.state = VolumeAttachmentState::Detaching;
                    Ok(shown)
                })
            })
            .await?;
        self.wake_agent();
        Ok(Response::Attachment(out))
    }

    async fn delete_volume(&self, account: String, volume_id: String) -> CoreResult<Response> {
        let now = self.clock.now_millis();
        self.blocking(move |s| {
            s.write(|tx| {
                let v = find(tx, &account, &volume_id)?;
                if let Some(a) = &v.attachment {
                    return Err(ApiError::new(
                        ErrorCode::VolumeInUse,
                        format!(
                            "Volume {volume_id} is currently attached to {}",
                            a.instance_id
                        ),
                    )
                    .into());
                }
                if v.state == VolumeState::Deleting {
                    return Ok(());
                }
                let mut next = v.clone();
                next.state = VolumeState::Deleting;
                update_in(tx, &next, now)?;
                Ok(())
            })
        })
        .await?;
        self.wake_agent();
        Ok(Response::Return)
    }

    async fn modify_volume(
        &self,
        account: String,
        volume_id: String,
        change: ModifyVolume,
    ) -> CoreResult<Response> {
        let now = self.clock.now_millis();
        let m = self
            .blocking(move |s| {
                s.write(|tx| {
                    let v = find(tx, &account, &volume_id)?;
                    if !matches!(v.state, VolumeState::Available | VolumeState::InUse) {
                        return Err(ApiError::new(
                            ErrorCode::IncorrectState,
                            format!("Volume '{volume_id}' is in the '{}' state.", v.state),
                        )
                        .into());
                    }
                    if v.root {
                        return Err(ApiError::new(
                            ErrorCode::UnsupportedOperation,
                            "Modifying a root volume is not supported yet.",
                        )
                        .into());
                    }
                    if v.modification.as_ref().is_some_and(|m| {
                        matches!(
                            m.state,
                            VolumeModificationState::Modifying
                                | VolumeModificationState::Optimizing
                        )
                    }) {
                        return Err(ApiError::new(
                            ErrorCode::IncorrectModificationState,
                            format!("Modification is already in progress for volume {volume_id}."),
                        )
                        .into());
                    }
                    let t = change.volume_type.unwrap_or(v.volume_type);
                    let size = change.size.unwrap_or(v.size_gib);
                    if size < v.size_gib {
                        return Err(invalid(format!(
                            "New size cannot be smaller than existing size: {} GiB",
                            v.size_gib
                        ))
                        .into());
                    }
                    // IOPS and throughput carry over while the type keeps them.
                    let same_kind = t == v.volume_type;
                    let iops = change.iops.or(if same_kind && t != VolumeType::Gp2 {
                        v.iops
                    } else {
                        None
                    });
                    let throughput =
                        change
                            .throughput
                            .or(if same_kind { v.throughput } else { None });
                    let (iops, throughput) = check_spec(t, size, iops, throughput)?;
                    if (t, size, iops, throughput)
                        == (v.volume_type, v.size_gib, v.iops, v.throughput)
                    {
                        return Err(combination(
                            "New parameters must be different from existing".into(),
                        )
                        .into());
                    }
                    if t != v.volume_type || size > v.size_gib {
                        check_quota(
                            tx,
                            &account,
                            t,
                            if t == v.volume_type {
                                (size - v.size_gib) as u64
                            } else {
                                size as u64
                            },
                        )?;
                    }
                    let mut next = v.clone();
                    next.volume_type = t;
                    next.size_gib = size;
                    next.iops = iops;
                    next.throughput = throughput;
                    next.modification = Some(ModificationRow {
                        state: VolumeModificationState::Modifying,
                        original_size: v.size_gib,
                        original_type: v.volume_type,
                        original_iops: v.iops,
                        original_throughput: v.throughput,
                        start_time: now,
                        end_time: None,
                    });
                    update_in(tx, &next, now)?;
                    Ok(modification_model(
                        &next,
                        next.modification.as_ref().expect("set"),
                    ))
                })
            })
            .await?;
        self.wake_agent();
        Ok(Response::ModifyVolume(m))
    }

    async fn account_volumes(&self, account: String) -> CoreResult<Vec<VolumeRow>> {
        self.blocking(move |s| s.read(|tx| Ok(tx.volumes().of_account(&account)?)))
            .await
    }

    /// The account's volumes a Describe call names (all without ids), after checking its
    /// filter names and ids: a malformed id or one the account lacks is AWS's error.
    async fn named_volumes(
        &self,
        account: String,
        ids: &[String],
        known_filters: &[&str],
        filters: &[Filter],
    ) -> CoreResult<Vec<VolumeRow>> {
        describe::validate_filters(filters, known_filters, false)?;
        for id in ids {
            check_volume_id(id)?;
        }
        let rows = self.account_volumes(account).await?;
        if let Some(missing) = ids.iter().find(|id| !rows.iter().any(|v| &v.id == *id)) {
            return Err(volume_not_found(missing));
        }
        Ok(rows
            .into_iter()
            .filter(|v| ids.is_empty() || ids.contains(&v.id))
            .collect())
    }

    async fn describe_volumes_modifications(
        &self,
        account: String,
        ids: Vec<String>,
        filters: Vec<Filter>,
        page: Page,
    ) -> CoreResult<Response> {
        let rows = self
            .named_volumes(account, &ids, MODIFICATION_FILTERS, &filters)
            .await?;
        let mods: Vec<VolumeModification> = rows
            .iter()
            .filter_map(|v| v.modification.as_ref().map(|m| modification_model(v, m)))
            .filter(|m| describe::matches(m, &filters))
            .collect();
        let (modifications, next_token) = describe::paginate(mods, |m| m.volume_id.clone(), &page)?;
        Ok(Response::DescribeVolumesModifications {
            modifications,
            next_token,
        })
    }

    async fn describe_volume_status(
        &self,
        account: String,
        ids: Vec<String>,
        filters: Vec<Filter>,
        page: Page,
    ) -> CoreResult<Response> {
        let rows = self
            .named_volumes(account, &ids, STATUS_FILTERS, &filters)
            .await?;
        let statuses: Vec<VolumeStatus> = rows
            .iter()
            .filter(|v| !matches!(v.state, VolumeState::Creating | VolumeState::Deleting))
            .map(|v| VolumeStatus {
                volume_id: v.id.clone(),
                availability_zone: v.az.clone(),
                ok: v.state != VolumeState::Error,
            })
            .filter(|s| describe::matches(s, &filters))
            .collect();
        let (statuses, next_token) = describe::paginate(statuses, |s| s.volume_id.clone(), &page)?;
        Ok(Response::DescribeVolumeStatus {
            statuses,
            next_token,
        })
    }

    async fn volume_attribute(
        &self,
        account: String,
        volume_id: String,
        set_auto_enable_io: Option<bool>,
    ) -> CoreResult<VolumeRow> {
        let now = self.clock.now_millis();
        self.blocking(move |s| {
            s.write(|tx| {
                let v = find(tx, &account, &volume_id)?;
                if let Some(on) = set_auto_enable_io {
                    let mut next = v.clone();
                    next.auto_enable_io = on;
                    tx.volumes().update(&next, now)?;
                    return Ok(next);
                }
                Ok(v)
            })
        })
        .await
    }

    /// Run one volume action for the calling account.
    pub(crate) async fn dispatch_volumes(&self, ctx: &Ctx, action: Action) -> CoreResult<Response> {
        let acct = ctx.account_id.clone();
        match action {
            Action::CreateVolume(req) => self.create_volume(acct, req).await,
            Action::DescribeVolumes {
                volume_ids,
                filters,
                page,
            } => self.describe_volumes(acct, volume_ids, filters, page).await,
            Action::AttachVolume {
                volume_id,
                instance_id,
                device,
            } => {
                self.attach_volume(acct, volume_id, instance_id, device)
                    .await
            }
            Action::DetachVolume {
                volume_id,
                instance_id,
                device,
                force,
            } => {
                self.detach_volume(acct, volume_id, instance_id, device, force)
                    .await
            }
            Action::DeleteVolume { volume_id } => self.delete_volume(acct, volume_id).await,
            Action::ModifyVolume { volume_id, change } => {
                self.modify_volume(acct, volume_id, change).await
            }
            Action::DescribeVolumesModifications {
                volume_ids,
                filters,
                page,
            } => {
                self.describe_volumes_modifications(acct, volume_ids, filters, page)
                    .await
            }
            Action::DescribeVolumeStatus {
                volume_ids,
                filters,
                page,
            } => {
                self.describe_volume_status(acct, volume_ids, filters, page)
                    .await
            }
            Action::DescribeVolumeAttribute {
                volume_id,
                attribute,
            } => {
                let v = self.volume_attribute(acct, volume_id, None).await?;
                Ok(Response::DescribeVolumeAttribute {
                    volume_id: v.id,
                    auto_enable_io: (attribute == VolumeAttribute::AutoEnableIo)
                        .then_some(v.auto_enable_io),
                })
            }
            Action::ModifyVolumeAttribute {
                volume_id,
                auto_enable_io,
            } => {
                self.volume_attribute(acct, volume_id, Some(auto_enable_io))
                    .await?;
                Ok(Response::Return)
            }
        }
    }
}

// ---- convergence ----------------------------------------------------------------------------

/// What the host must do for one volume record, if anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Create,
    Grow,
    Attach,
    Detach,
    /// The instance it was attached to is gone.
    Release,
    /// A root volume to keep past its instance, which is being terminated.
    ExportRoot,
    Delete,
}

fn step_of(v: &VolumeRow, instance: Option<InstanceState>) -> Option<Step> {
    match v.state {
        VolumeState::Creating => return Some(Step::Create),
        VolumeState::Deleting => return Some(Step::Delete),
        VolumeState::Deleted | VolumeState::Error => return None,
        VolumeState::Available | VolumeState::InUse => {}
    }
    if let Some(a) = &v.attachment {
        let gone = matches!(instance, None | Some(InstanceState::Terminated));
        if gone {
            return Some(Step::Release);
        }
        if v.root && !a.delete_on_termination && instance == Some(InstanceState::ShuttingDown) {
            return Some(Step::ExportRoot);
        }
        match a.state {
            VolumeAttachmentState::Attaching => return Some(Step::Attach),
            VolumeAttachmentState::Detaching | VolumeAttachmentState::Busy => {
                return Some(Step::Detach)
            }
            VolumeAttachmentState::Attached | VolumeAttachmentState::Detached => {}
        }
    }
    v.modification
        .as_ref()
        .filter(|m| m.state == VolumeModificationState::Modifying)
        .map(|_| Step::Grow)
}

/// What a host agent must do for one volume: the control plane's half of the convergence
/// hands these out ([`crate::control::ControlPlane::volume_jobs`]) and records their outcome
/// ([`Cloud::volume_done`]); the agent's half runs them (`volume_host.rs`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeJob {
    pub volume_id: String,
    pub account_id: String,
    /// The record's generation when the job was handed out: the outcome is recorded only if
    /// nothing changed the volume since (compare-and-swap).
    pub generation: i64,
    pub step: VolumeStep,
}

/// One host step for a volume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum VolumeStep {
    /// Make its bytes: zeroed, or from a snapshot.
    Create {
        size_gib: u32,
        from_snapshot: Option<String>,
    },
    Grow {
        size_gib: u32,
    },
    /// Hot-plug it into a running instance.
    Attach {
        instance_id: String,
        device: String,
    },
    /// Nothing to do on the host: the stopped instance gets it at its next start.
    MarkAttached,
    /// Take it from a running instance (`busy` while the guest holds it, unless forced).
    Detach {
        instance_id: String,
        force: bool,
    },
    /// Nothing to do on the host: the instance does not run.
    MarkDetached,
    /// Its instance is gone: kept or deleted by `DeleteOnTermination`.
    Release,
    /// Write the root file system of `instance_id` (being terminated) into the pool as this
    /// volume's bytes, so it outlives the instance (`DeleteOnTermination` false). Run by the
    /// agent's terminate path before the guest is destroyed, never by the volume pass.
    ExportRoot {
        instance_id: String,
    },
    /// Remove its bytes (a root volume's are the compute driver's, removed with the guest).
    Delete {
        root: bool,
    },
}

/// How a host step ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum VolumeOutcome {
    Done,
    /// The guest still uses the volume (a detach not forced).
    Busy(String),
    Failed(String),
}

fn job_of(v: &VolumeRow, instance: Option<InstanceState>) -> Option<VolumeStep> {
    let attachment = || v.attachment.as_ref();
    Some(match step_of(v, instance)? {
        Step::Create => VolumeStep::Create {
            size_gib: v.size_gib,
            from_snapshot: v.snapshot_id.clone(),
        },
        Step::Grow => VolumeStep::Grow {
            size_gib: v.size_gib,
        },
        Step::Attach => match instance {
            Some(InstanceState::Running) => VolumeStep::Attach {
                instance_id: attachment()?.instance_id.clone(),
                device: attachment()?.device.clone(),
            },
            Some(InstanceState::Stopped) => VolumeStep::MarkAttached,
            // Starting or stopping: the next pass, once it settles.
            Some(
                InstanceState::Pending
                | InstanceState::Stopping
                | InstanceState::ShuttingDown
                | InstanceState::Terminated,
            )
            | None => return None,
        },
        Step::Detach => match instance {
            Some(InstanceState::Running) => VolumeStep::Detach {
                instance_id: attachment()?.instance_id.clone(),
                force: attachment()?.force,
            },
            Some(InstanceState::Pending | InstanceState::Stopping) => return None,
            Some(
                InstanceState::Stopped | InstanceState::ShuttingDown | InstanceState::Terminated,
            )
            | None => VolumeStep::MarkDetached,
        },
        Step::Release => VolumeStep::Release,
        Step::ExportRoot => VolumeStep::ExportRoot {
            instance_id: attachment()?.instance_id.clone(),
        },
        Step::Delete => VolumeStep::Delete { root: v.root },
    })
}

impl Cloud {
    /// The host steps the volume records ask for, one per volume (see [`VolumeJob`]).
    pub(crate) async fn volume_jobs(&self) -> CoreResult<Vec<VolumeJob>> {
        let (volumes, instances) = self
            .blocking(|s| {
                s.read(|tx| {
                    let states: std::collections::HashMap<String, InstanceState> = tx
                        .instances()
                        .all()?
                        .into_iter()
                        .map(|i| (i.id, i.state))
                        .collect();
                    Ok((tx.volumes().all()?, states))
                })
            })
            .await?;
        Ok(volumes
            .into_iter()
            .filter_map(|v| {
                let inst = v
                    .attachment
                    .as_ref()
                    .and_then(|a| instances.get(&a.instance_id).copied());
                let step = job_of(&v, inst)?;
                Some(VolumeJob {
                    volume_id: v.id,
                    account_id: v.account_id,
                    generation: v.generation,
                    step,
                })
            })
            .collect())
    }

    /// Record how a host step for a volume ended, if the volume is still at the generation
    /// the step was handed out for.
    pub(crate) async fn volume_done(
        &self,
        job: VolumeJob,
        outcome: VolumeOutcome,
    ) -> CoreResult<()> {
        let (account, id) = (job.account_id.clone(), job.volume_id.clone());
        let current = self
            .blocking(move |s| s.read(|tx| Ok(tx.volumes().get(&account, &id)?)))
            .await?;
        let Some(v) = current.filter(|v| v.generation == job.generation) else {
            return Ok(());
        };
        let failed = |what: &str, why: &str| {
            tracing::error!(volume = %v.id, error = %why, "{what} failed");
        };
        let mut next = v.clone();
        match (&job.step, outcome) {
            // A launch's volume is in use by its instance from the start.
            (VolumeStep::Create { .. }, VolumeOutcome::Done) => {
                next.state = if next.attachment.is_some() {
                    VolumeState::InUse
                } else {
                    VolumeState::Available
                }
            }
            (VolumeStep::Create { .. }, VolumeOutcome::Busy(e) | VolumeOutcome::Failed(e)) => {
                failed("creating the volume", &e);
                next.state = VolumeState::Error;
            }
            (VolumeStep::Grow { .. }, outcome) => {
                let Some(m) = next.modification.as_mut() else {
                    return Ok(());
                };
                m.state = match outcome {
                    VolumeOutcome::Done => VolumeModificationState::Completed,
                    VolumeOutcome::Busy(e) | VolumeOutcome::Failed(e) => {
                        failed("growing the volume", &e);
                        VolumeModificationState::Failed
                    }
                };
                m.end_time = Some(self.clock.now_millis());
            }
            (VolumeStep::Attach { .. } | VolumeStep::MarkAttached, VolumeOutcome::Done) => {
                if let Some(a) = next.attachment.as_mut() {
                    a.state = VolumeAttachmentState::Attached;
                }
            }
            (
                VolumeStep::Attach { .. } | VolumeStep::MarkAttached,
                VolumeOutcome::Busy(e) | VolumeOutcome::Failed(e),
            ) => {
                // As on EC2, a failed attachment leaves the volume available.
                failed("attaching the volume", &e);
                next.attachment = None;
                next.state = VolumeState::Available;
            }
            (VolumeStep::Detach { .. } | VolumeStep::MarkDetached, VolumeOutcome::Done) => {
                next.attachment = None;
                next.state = VolumeState::Available;
            }
            (VolumeStep::Detach { .. } | VolumeStep::MarkDetached, VolumeOutcome::Busy(why)) => {
                // The guest still has it mounted: `busy`, retried every pass until it lets go
                // or a forced detach is asked for.
                match next.attachment.as_mut() {
                    Some(a) if a.state != VolumeAttachmentState::Busy => {
                        tracing::info!(volume = %v.id, %why, "detach held up by the guest");
                        a.state = VolumeAttachmentState::Busy;
                    }
                    _ => return Ok(()),
                }
            }
            (VolumeStep::Detach { .. } | VolumeStep::MarkDetached, VolumeOutcome::Failed(e)) => {
                // Retried on the next pass.
                failed("detaching the volume", &e);
                return Ok(());
            }
            (VolumeStep::Release, _) => {
                let Some(a) = next.attachment.take() else {
                    return Ok(());
                };
                if v.root && !a.delete_on_termination {
                    // Not exported before its guest went (a launch that never booted): its
                    // bytes went with the guest.
                    tracing::warn!(volume = %v.id, "a root volume to keep has no bytes left");
                }
                next.state = if a.delete_on_termination || v.root {
                    VolumeState::Deleting
                } else {
                    VolumeState::Available
                };
            }
            (VolumeStep::ExportRoot { .. }, outcome) => {
                // From now on an ordinary volume whose bytes are the pool's.
                next.root = false;
                next.attachment = None;
                next.state = match outcome {
                    VolumeOutcome::Done => VolumeState::Available,
                    VolumeOutcome::Busy(e) | VolumeOutcome::Failed(e) => {
                        failed("keeping the root volume", &e);
                        VolumeState::Error
                    }
                };
            }
            (VolumeStep::Delete { .. }, VolumeOutcome::Done) => {
                let (account, id, now) =
                    (v.account_id.clone(), v.id.clone(), self.clock.now_millis());
                let generation = v.generation;
                self.blocking(move |s| {
                    s.write(|tx| {
                        // Only if nothing changed it meanwhile.
                        if tx.volumes().get(&account, &id)?.map(|r| r.generation)
                            == Some(generation)
                        {
                            tx.volumes().remove(&account, &id, now)?;
                        }
                        Ok(())
                    })
                })
                .await?;
                return Ok(());
            }
            (VolumeStep::Delete { .. }, VolumeOutcome::Busy(e) | VolumeOutcome::Failed(e)) => {
                failed("deleting the volume", &e);
                next.state = VolumeState::Error;
            }
        }
        self.record_volume(next).await?;
        Ok(())
    }

    /// Record `next` if the volume is still at the generation it was read at.
    async fn record_volume(&self, next: VolumeRow) -> CoreResult<bool> {
        let now = self.clock.now_millis();
        let ok = self
            .blocking(move |s| s.write(|tx| Ok(tx.volumes().update(&next, now)?)))
            .await?;
        if ok {
            self.wake_agent();
        }
        Ok(ok)
    }

    /// The volumes an instance's guest must show from its start (volume id, device): those
    /// attached to it, or being attached while it was stopped. Root volumes are the compute
    /// driver's own.
    pub(crate) async fn guest_volumes(
        &self,
        instance_id: &str,
    ) -> CoreResult<Vec<(String, String)>> {
        let id = instance_id.to_string();
        let rows = self
            .blocking(move |s| s.read(|tx| Ok(tx.volumes().of_instance(&id)?)))
            .await?;
        Ok(rows
            .into_iter()
            .filter(|v| !v.root)
            .filter_map(|v| {
                let a = v.attachment.as_ref()?;
                (a.state == VolumeAttachmentState::Attached)
                    .then(|| (v.id.clone(), a.device.clone()))
            })
            .collect())
    }

    /// Whether this cloud's host keeps volumes (a host agent with a volume pool).
    pub(crate) fn volumes_enabled(&self) -> bool {
        self.agent.as_ref().is_some_and(|a| a.has_volume_pool())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_per_type() {
        assert_eq!(
            check_spec(VolumeType::Gp3, 8, None, None),
            Ok((Some(3000), Some(125)))
        );
        assert_eq!(
            check_spec(VolumeType::Gp2, 10, None, None),
            Ok((Some(100), None))
        );
        assert_eq!(
            check_spec(VolumeType::Gp2, 100, None, None),
            Ok((Some(300), None))
        );
        assert_eq!(
            check_spec(VolumeType::St1, 125, None, None),
            Ok((None, None))
        );
        let e = check_spec(VolumeType::Gp3, 16385, None, None).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidParameterValue);
        assert_eq!(
            e.message,
            "Volume of 16385GiB is too large; maximum is 16384GiB."
        );
        let e = check_spec(VolumeType::St1, 100, None, None).unwrap_err();
        assert_eq!(
            e.message,
            "Volume of 100GiB is too small; minimum is 125GiB."
        );
        assert!(check_spec(VolumeType::Standard, 1025, None, None).is_err());
        assert!(check_spec(VolumeType::Io1, 3, Some(100), None).is_err());
        // IOPS: not for gp2; required for io1/io2; per-GiB ratios.
        let e = check_spec(VolumeType::Gp2, 10, Some(100), None).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidParameterCombination);
        assert_eq!(
            check_spec(VolumeType::Io1, 10, None, None)
                .unwrap_err()
                .code,
            ErrorCode::MissingParameter
        );
        assert!(check_spec(VolumeType::Io1, 10, Some(500), None).is_ok());
        assert!(check_spec(VolumeType::Io1, 10, Some(501), None).is_err());
        assert!(check_spec(VolumeType::Io2, 10, Some(5000), None).is_ok());
        assert!(
            check_spec(VolumeType::Gp3, 1, Some(3000), None).is_ok(),
            "baseline"
        );
        assert!(check_spec(VolumeType::Gp3, 10, Some(5001), None).is_err());
        assert!(check_spec(VolumeType::Gp3, 100, Some(16001), None).is_err());
        assert!(check_spec(VolumeType::Gp3, 100, Some(2999), None).is_err());
        // Throughput: gp3 only, 125 to 1000, at most IOPS / 4.
        let e = check_spec(VolumeType::Io1, 10, Some(100), Some(200)).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidParameterCombination);
        assert!(check_spec(VolumeType::Gp3, 10, None, Some(750)).is_ok());
        assert!(check_spec(VolumeType::Gp3, 10, None, Some(751)).is_err());
        assert!(check_spec(VolumeType::Gp3, 100, Some(16000), Some(1001)).is_err());
        assert!(check_spec(VolumeType::Gp3, 100, None, Some(124)).is_err());
    }

    #[test]
    fn device_names() {
        for ok in [
            "/dev/sdf",
            "/dev/sdp",
            "/dev/xvdf",
            "/dev/xvdba",
            "/dev/sda1",
            "/dev/sdb15",
        ] {
            check_device(ok).unwrap_or_else(|e| panic!("{ok}: {e:?}"));
        }
        for bad in [
            "/dev/foo",
            "sdf",
            "/dev/sdf16",
            "/dev/sdf0",
            "/dev/xvd",
            "/dev/SDF",
            "/dev/xvdabc",
        ] {
            let e = check_device(bad).unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidParameterValue, "{bad}");
        }
        assert_eq!(attachment_point("/dev/sdf"), attachment_point("/dev/xvdf"));
        assert_ne!(attachment_point("/dev/sdf"), attachment_point("/dev/sdg"));
    }
}
