//! Root volumes and a launch's block device mappings: every instance's root device is an EBS
//! volume record (`vol-…`, `root` set) written in the launch's own transaction, and each extra
//! `BlockDeviceMapping.N.Ebs` becomes a volume `creating` with an attachment `attaching` to the
//! new instance, which the volume convergence then creates and hot-plugs like any other (see
//! `volumes.rs`).
//!
//! A root volume's bytes are the compute driver's (the runc driver's sparse ext4 under the
//! overlay, the VM driver's qcow2 overlay), removed with the guest. So:
//!
//! - `DeleteOnTermination` true: once the instance is terminated its record goes `deleting`
//!   and is forgotten; the pool has nothing to remove.
//! - `DeleteOnTermination` false: before the guest is destroyed, the agent exports its root
//!   file system into the volume pool as a standalone raw disk (`Compute::export_root_volume`,
//!   step [`crate::volumes::VolumeStep::ExportRoot`]); the record then becomes an ordinary
//!   `available` volume (`root` cleared) that attaches and mounts anywhere.
//! - A snapshot of a root volume is the same export into the snapshot's file: a complete
//!   disk, not a copy-on-write clone.

use gureum_ec2::ops::instances::{BlockDevice, DeviceDeleteOnTermination};
use gureum_store::instances::InstanceField;
use gureum_store::volumes::{AttachmentRow, VolumeRow};
use gureum_store::Tx;
use gureum_types::model::{Tag, VolumeAttachment};
use gureum_types::{
    ApiError, ErrorCode, ResourceId, ResourceKind, SnapshotState, VolumeAttachmentState,
    VolumeState, VolumeType,
};

use crate::volumes::{attachment_model, attachment_point, check_device, check_spec, ROOT_DEVICE};
use crate::{aws_time, CoreResult};

/// The names a launch may give the root device (Nitro's and Xen's spelling of it).
const ROOT_NAMES: [&str; 2] = [ROOT_DEVICE, "/dev/sda1"];
/// The root volume's type unless the launch asks for another: what DescribeImages shows in
/// every image's block device mapping.
pub const ROOT_VOLUME_TYPE: VolumeType = VolumeType::Gp3;
/// An extra volume's type unless the mapping names one (CreateVolume's default).
const DATA_VOLUME_TYPE: VolumeType = VolumeType::Gp2;

/// One volume a launch makes for each instance (an extra one's IOPS and throughput as asked;
/// the root's with the defaults filled in).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LaunchVolume {
    pub device: String,
    /// `None`: the snapshot's size (known once the snapshot is looked up).
    pub size_gib: Option<u32>,
    pub volume_type: VolumeType,
    pub iops: Option<u32>,
    pub throughput: Option<u32>,
    pub snapshot_id: Option<String>,
    pub encrypted: bool,
    pub delete_on_termination: bool,
}

/// The volumes of a launch: the root and the extra ones, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LaunchPlan {
    pub root: LaunchVolume,
    pub root_gib: u32,
    pub extra: Vec<LaunchVolume>,
}

fn mapping_error(message: String) -> ApiError {
    ApiError::new(ErrorCode::InvalidBlockDeviceMapping, message)
}

/// Check a launch's `BlockDeviceMapping`s against the image (its root size) as EC2 does, and
/// say which volumes each instance gets. `NoDevice` and instance-store (`VirtualName`)
/// mappings of other devices are accepted and ignored, as EC2 does for instance types without
/// instance store (none of gureum's have any).
pub(crate) fn plan(
    mappings: &[BlockDevice],
    image_id: &str,
    image_gib: u32,
) -> Result<LaunchPlan, ApiError> {
    let mut root_gib = image_gib.max(1);
    let mut root = LaunchVolume {
        device: ROOT_DEVICE.into(),
        size_gib: None,
        volume_type: ROOT_VOLUME_TYPE,
        iops: None,
        throughput: None,
        snapshot_id: None,
        encrypted: false,
        delete_on_termination: true,
    };
    let mut root_asked = (None, None);
    let mut extra = Vec::new();
    let mut points: Vec<String> = Vec::new();
    for b in mappings {
        let d = b.device_name.as_str();
        if d.is_empty() {
            return Err(mapping_error("Missing device name".into()));
        }
        let is_root = ROOT_NAMES.contains(&d);
        if !is_root && check_device(d).is_err() {
            return Err(mapping_error(format!("Invalid device name {d}")));
        }
        let point = attachment_point(d);
        if points.contains(&point) {
            return Err(mapping_error(format!(
                "The device '{}' is used in more than one block-device mapping",
                d.trim_start_matches("/dev/")
            )));
        }
        points.push(point);
        if b.no_device || b.virtual_name.is_some() {
            if is_root {
                return Err(mapping_error(format!(
                    "The root device {d} must be an EBS volume"
                )));
            }
            continue;
        }
        if is_root {
            if let Some(size) = b.volume_size {
                if size < image_gib {
                    return Err(mapping_error(format!(
                        "Volume of size {size}GB is smaller than snapshot '{image_id}', expect \
                         size >= {image_gib}GB"
                    )));
                }
                root_gib = size;
            }
            root.volume_type = b.volume_type.unwrap_or(ROOT_VOLUME_TYPE);
            root.encrypted = b.encrypted.unwrap_or(false);
            root.delete_on_termination = b.delete_on_termination.unwrap_or(true);
            root_asked = (b.iops, b.throughput);
            continue;
        }
        if !b.has_ebs() {
            return Err(mapping_error(format!(
                "The block device mapping for {d} must have Ebs, VirtualName or NoDevice"
            )));
        }
        if let Some(s) = &b.snapshot_id {
            crate::snapshots::check_snapshot_id(s).map_err(|e| match e {
                crate::CoreError::Api(e) => e,
                other => mapping_error(other.to_string()),
            })?;
        } else if b.volume_size.is_none() {
            return Err(ApiError::missing_parameter("size/snapshot"));
        }
        let t = b.volume_type.unwrap_or(DATA_VOLUME_TYPE);
        // Checked now when the size is known, else with the snapshot's in the launch's
        // transaction, which also fills in the defaults.
        if let Some(size) = b.volume_size {
            check_spec(t, size, b.iops, b.throughput)?;
        }
        extra.push(LaunchVolume {
            device: d.to_string(),
            size_gib: b.volume_size,
            volume_type: t,
            iops: b.iops,
            throughput: b.throughput,
            snapshot_id: b.snapshot_id.clone(),
            encrypted: b.encrypted.unwrap_or(false),
            // EC2's default for a launch's mappings (CreateVolume's attachments: false).
            delete_on_termination: b.delete_on_termination.unwrap_or(true),
        });
    }
    let (iops, throughput) = check_spec(root.volume_type, root_gib, root_asked.0, root_asked.1)?;
    root.iops = iops;
    root.throughput = throughput;
    root.size_gib = Some(root_gib);
    Ok(LaunchPlan {
        root,
        root_gib,
        extra,
    })
}

/// Record instance `instance_id`'s volumes in the launch's transaction: its root volume
/// `root_id` (`in-use`, attached since `now`; its registry row is the caller's) and one new
/// volume per extra mapping (`creating`, attachment `attaching`), each with `tags`. Quotas
/// and snapshots are checked here, so a launch that cannot have its volumes records nothing.
#[allow(clippy::too_many_arguments)]
pub(crate) fn record(
    tx: &dyn Tx,
    account: &str,
    az: &str,
    instance_id: &str,
    root_id: &str,
    plan: &LaunchPlan,
    tags: &[Tag],
    now: i64,
) -> CoreResult<()> {
    let row = |id: String, v: &LaunchVolume, size: u32, root: bool| VolumeRow {
        id,
        account_id: account.to_string(),
        az: az.to_string(),
        size_gib: size,
        volume_type: v.volume_type,
        iops: v.iops,
        throughput: v.throughput,
        snapshot_id: v.snapshot_id.clone(),
        encrypted: v.encrypted,
        auto_enable_io: false,
        state: if root {
            VolumeState::InUse
        } else {
            VolumeState::Creating
        },
        generation: 0,
        created_at: now,
        root,
        attachment: Some(AttachmentRow {
            instance_id: instance_id.to_string(),
            device: v.device.clone(),
            state: if root {
                VolumeAttachmentState::Attached
            } else {
                VolumeAttachmentState::Attaching
            },
            attach_time: now,
            delete_on_termination: v.delete_on_termination,
            force: false,
        }),
        modification: None,
    };
    tx.volumes()
        .insert(&row(root_id.to_string(), &plan.root, plan.root_gib, true))?;
    tx.tags().put(account, root_id, tags)?;
    let mut types = vec![plan.root.volume_type];
    for v in &plan.extra {
        let mut v = v.clone();
        let mut size = v.size_gib;
        if let Some(snap_id) = &v.snapshot_id {
            let snap = crate::snapshots::find_visible(tx, account, snap_id)?;
            if snap.state != SnapshotState::Completed {
                return Err(ApiError::new(
                    ErrorCode::IncorrectState,
                    format!("Snapshot is in invalid state - {}", snap.state),
                )
                .into());
            }
            match size {
                Some(n) if n < snap.volume_size => {
                    return Err(mapping_error(format!(
                        "Volume of size {n}GB is smaller than snapshot '{snap_id}', expect size \
                         >= {}GB",
                        snap.volume_size
                    ))
                    .into())
                }
                Some(_) => {}
                None => size = Some(snap.volume_size),
            }
        }
        let size = size.unwrap_or(1);
        (v.iops, v.throughput) = check_spec(v.volume_type, size, v.iops, v.throughput)?;
        let id = ResourceId::generate(ResourceKind::Volume).to_string();
        tx.resources().insert(&id, account, "volume", now)?;
        tx.volumes().insert(&row(id.clone(), &v, size, false))?;
        tx.tags().put(account, &id, tags)?;
        types.push(v.volume_type);
    }
    types.dedup();
    for t in types {
        crate::volumes::check_quota(tx, account, t, 0)?;
    }
    Ok(())
}

/// `ModifyInstanceAttribute`'s `BlockDeviceMapping.N.Ebs.DeleteOnTermination`: the volumes
/// attached to the instance at those devices keep or lose theirs (the root volume's is also
/// the instance record's). A device with no volume of the instance, or another volume than
/// the one named, changes nothing.
pub(crate) fn set_delete_on_termination(
    tx: &dyn Tx,
    account: &str,
    instance_id: &str,
    devices: &[DeviceDeleteOnTermination],
    now: i64,
) -> CoreResult<()> {
    let attached = tx.volumes().of_instance(instance_id)?;
    for d in devices {
        let v = attached
            .iter()
            .filter(|v| v.account_id == account)
            .find(|v| {
                v.attachment.as_ref().is_some_and(|a| {
                    a.device == d.device_name
                        || (v.root && ROOT_NAMES.contains(&d.device_name.as_str()))
                })
            })
            .filter(|v| d.volume_id.as_ref().is_none_or(|id| *id == v.id))
            .ok_or_else(|| {
                ApiError::new(
                    ErrorCode::InvalidInstanceAttributeValue,
                    format!(
                        "No device named {} is mapped to instance {instance_id}",
                        d.device_name
                    ),
                )
            })?;
        let mut next = v.clone();
        if let Some(a) = next.attachment.as_mut() {
            a.delete_on_termination = d.delete_on_termination;
        }
        if !tx.volumes().update(&next, now)? {
            return Err(crate::CoreError::Invariant(
                "a volume changed within its transaction",
            ));
        }
        if v.root {
            tx.instances().set_field(
                instance_id,
                InstanceField::DeleteOnTermination(d.delete_on_termination),
            )?;
        }
    }
    Ok(())
}

/// An instance's `BlockDeviceMappings` from its volume records: the root volume first, then
/// the others by device.
pub(crate) fn block_devices(volumes: &[VolumeRow]) -> Vec<VolumeAttachment> {
    let mut out: Vec<(bool, VolumeAttachment)> = volumes
        .iter()
        .filter_map(|v| {
            v.attachment
                .as_ref()
                .map(|a| (v.root, attachment_model(v, a)))
        })
        .collect();
    out.sort_by(|a, b| (!a.0, &a.1.device).cmp(&(!b.0, &b.1.device)));
    out.into_iter().map(|(_, a)| a).collect()
}

/// The root mapping of an instance launched before root volumes were records (its data dir
/// has no volume row for it): attached since launch, as DescribeInstances always showed it.
pub(crate) fn legacy_root(
    instance_id: &str,
    volume_id: &str,
    launch_time: i64,
    delete_on_termination: bool,
) -> VolumeAttachment {
    VolumeAttachment {
        volume_id: volume_id.to_string(),
        instance_id: instance_id.to_string(),
        device: ROOT_DEVICE.into(),
        state: VolumeAttachmentState::Attached,
        attach_time: aws_time(launch_time),
        delete_on_termination,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(d: &str) -> BlockDevice {
        BlockDevice {
            device_name: d.into(),
            ..Default::default()
        }
    }

    #[test]
    fn the_root_takes_the_image_size_and_gp3_unless_asked() {
        let p = plan(&[], "ami-1", 8).unwrap();
        assert_eq!(p.root_gib, 8);
        assert_eq!(
            (p.root.volume_type, p.root.iops, p.root.throughput),
            (VolumeType::Gp3, Some(3000), Some(125))
        );
        assert!(p.root.delete_on_termination && p.extra.is_empty());
        let p = plan(
            &[BlockDevice {
                volume_size: Some(20),
                volume_type: Some(VolumeType::Io1),
                iops: Some(1000),
                delete_on_termination: Some(false),
                ..map("/dev/sda1")
            }],
            "ami-1",
            8,
        )
        .unwrap();
        assert_eq!(
            (
                p.root_gib,
                p.root.volume_type,
                p.root.iops,
                p.root.throughput
            ),
            (20, VolumeType::Io1, Some(1000), None)
        );
        assert!(!p.root.delete_on_termination);
        assert_eq!(p.root.device, "/dev/xvda");
    }

    #[test]
    fn extra_mappings_become_volumes() {
        let p = plan(
            &[
                BlockDevice {
                    volume_size: Some(5),
                    ..map("/dev/sdf")
                },
                BlockDevice {
                    virtual_name: Some("ephemeral0".into()),
                    ..map("/dev/sdb")
                },
                BlockDevice {
                    no_device: true,
                    ..map("/dev/sdc")
                },
            ],
            "ami-1",
            8,
        )
        .unwrap();
        assert_eq!(p.extra.len(), 1, "instance store and NoDevice are ignored");
        let v = &p.extra[0];
        assert_eq!(
            (v.device.as_str(), v.size_gib, v.volume_type, v.iops),
            ("/dev/sdf", Some(5), VolumeType::Gp2, None)
        );
        assert!(v.delete_on_termination, "EC2's default for launch mappings");
    }

    #[test]
    fn bad_mappings_answer_ec2s_errors() {
        let code = |m: Vec<BlockDevice>| plan(&m, "ami-1", 8).unwrap_err();
        let e = code(vec![map("/dev/foo")]);
        assert_eq!(e.code, ErrorCode::InvalidBlockDeviceMapping);
        assert_eq!(e.message, "Invalid device name /dev/foo");
        let sized = |d: &str| BlockDevice {
            volume_size: Some(1),
            ..map(d)
        };
        let e = code(vec![sized("/dev/sdf"), sized("/dev/xvdf")]);
        assert_eq!(
            e.message,
            "The device 'xvdf' is used in more than one block-device mapping"
        );
        let e = code(vec![sized("/dev/xvda"), sized("/dev/sda1")]);
        assert_eq!(e.code, ErrorCode::InvalidBlockDeviceMapping);
        assert_eq!(
            code(vec![map("")]).code,
            ErrorCode::InvalidBlockDeviceMapping
        );
        assert_eq!(
            code(vec![BlockDevice {
                volume_size: Some(2),
                ..map("/dev/xvda")
            }])
            .code,
            ErrorCode::InvalidBlockDeviceMapping
        );
        assert_eq!(
            code(vec![BlockDevice {
                volume_size: Some(20000),
                ..map("/dev/sdf")
            }])
            .code,
            ErrorCode::InvalidParameterValue
        );
        assert_eq!(
            code(vec![BlockDevice {
                volume_type: Some(VolumeType::Io1),
                volume_size: Some(10),
                ..map("/dev/sdf")
            }])
            .code,
            ErrorCode::MissingParameter,
            "io1 needs its IOPS"
        );
        assert_eq!(
            code(vec![BlockDevice {
                delete_on_termination: Some(true),
                ..map("/dev/sdf")
            }])
            .code,
            ErrorCode::MissingParameter
        );
        assert_eq!(
            code(vec![map("/dev/sdf")]).code,
            ErrorCode::InvalidBlockDeviceMapping
        );
        assert_eq!(
            code(vec![BlockDevice {
                no_device: true,
                ..map("/dev/xvda")
            }])
            .code,
            ErrorCode::InvalidBlockDeviceMapping
        );
    }
}
