//! EBS snapshots: `CreateSnapshot`, `CreateSnapshots`, `DescribeSnapshots`, `DeleteSnapshot`,
//! `CopySnapshot`, and the `createVolumePermission` attribute (`ModifySnapshotAttribute`,
//! `DescribeSnapshotAttribute`, `ResetSnapshotAttribute`).

use gureum_types::model::{Filter, Snapshot, Tag, TagSpecification};
use gureum_types::{ApiError, ErrorCode};

use crate::action::{one_of, take_page_clamped, Page};
use crate::ops::{Op, Resource};
use crate::render::tag_set;
use crate::xml::Xml;

/// Who a `createVolumePermission` names: one account, or everyone (`Group=all`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Permission {
    User(String),
    All,
}

/// A snapshot attribute (`SnapshotAttributeName`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotAttribute {
    CreateVolumePermission,
    ProductCodes,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    CreateSnapshot {
        volume_id: String,
        description: String,
        tag_specifications: Vec<TagSpecification>,
    },
    CreateSnapshots {
        instance_id: String,
        exclude_boot_volume: bool,
        exclude_data_volume_ids: Vec<String>,
        description: String,
        tag_specifications: Vec<TagSpecification>,
        copy_tags: bool,
    },
    DescribeSnapshots {
        snapshot_ids: Vec<String>,
        owner_ids: Vec<String>,
        restorable_by: Vec<String>,
        filters: Vec<Filter>,
        page: Page,
    },
    DeleteSnapshot {
        snapshot_id: String,
    },
    CopySnapshot {
        source_region: String,
        source_snapshot_id: String,
        description: String,
        tag_specifications: Vec<TagSpecification>,
    },
    ModifySnapshotAttribute {
        snapshot_id: String,
        add: Vec<Permission>,
        remove: Vec<Permission>,
    },
    DescribeSnapshotAttribute {
        snapshot_id: String,
        attribute: SnapshotAttribute,
    },
    ResetSnapshotAttribute {
        snapshot_id: String,
    },
}

#[derive(Debug, Clone)]
pub enum Response {
    /// `CreateSnapshot`: the snapshot's elements at the top level.
    Snapshot(Snapshot),
    CreateSnapshots(Vec<Snapshot>),
    DescribeSnapshots {
        snapshots: Vec<Snapshot>,
        next_token: Option<String>,
    },
    CopySnapshot {
        snapshot_id: String,
        tags: Vec<Tag>,
    },
    DescribeSnapshotAttribute {
        snapshot_id: String,
        /// `None`: the attribute asked for was `productCodes` (none).
        permissions: Option<Vec<Permission>>,
    },
    /// `DeleteSnapshot`, `ModifySnapshotAttribute`, `ResetSnapshotAttribute`.
    Return,
}

fn required(p: &mut crate::Params, name: &str) -> Result<String, ApiError> {
    p.take(name)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| ApiError::missing_parameter(name))
}

fn attribute(p: &mut crate::Params) -> Result<SnapshotAttribute, ApiError> {
    let a = one_of(
        "Attribute",
        required(p, "Attribute")?,
        &["productCodes", "createVolumePermission"],
    )?;
    Ok(if a == "createVolumePermission" {
        SnapshotAttribute::CreateVolumePermission
    } else {
        SnapshotAttribute::ProductCodes
    })
}

fn group(g: &str) -> Result<Permission, ApiError> {
    if g == "all" {
        Ok(Permission::All)
    } else {
        Err(ApiError::new(
            ErrorCode::InvalidParameterValue,
            format!("Value ({g}) for parameter group is invalid. Valid values are: all"),
        ))
    }
}

/// `CreateVolumePermission.Add.N` / `.Remove.N` (`UserId` or `Group`).
fn permissions(p: &mut crate::Params, prefix: &str) -> Result<Vec<Permission>, ApiError> {
    let mut out = Vec::new();
    for mut item in p.take_struct_list(prefix)? {
        if let Some(u) = item.take("UserId").filter(|v| !v.is_empty()) {
            out.push(Permission::User(u));
        }
        if let Some(g) = item.take("Group") {
            out.push(group(&g)?);
        }
        item.finish()?;
    }
    Ok(out)
}

impl Resource for Action {
    type Response = Response;

    const OPS: &'static [Op<Action>] = &[
        Op::write("CreateSnapshot", |p| {
            p.take("OutpostArn");
            p.take("Location");
            Ok(Action::CreateSnapshot {
                volume_id: required(p, "VolumeId")?,
                description: p.take("Description").unwrap_or_default(),
                tag_specifications: p.take_tag_specifications()?,
            })
        }),
        Op::write("CreateSnapshots", |p| {
            p.take("OutpostArn");
            p.take("Location");
            let instance_id = p
                .take("InstanceSpecification.InstanceId")
                .filter(|v| !v.is_empty())
                .ok_or_else(|| ApiError::missing_parameter("InstanceSpecification"))?;
            let copy_tags = match p.take("CopyTagsFromSource") {
                None => false,
                Some(v) => one_of("CopyTagsFromSource", v, &["volume"]).map(|_| true)?,
            };
            Ok(Action::CreateSnapshots {
                instance_id,
                exclude_boot_volume: p
                    .take_bool("InstanceSpecification.ExcludeBootVolume")?
                    .unwrap_or(false),
                exclude_data_volume_ids: p
                    .take_list("InstanceSpecification.ExcludeDataVolumeId")?,
                description: p.take("Description").unwrap_or_default(),
                tag_specifications: p.take_tag_specifications()?,
                copy_tags,
            })
        }),
        Op::read("DescribeSnapshots", |p| {
            Ok(Action::DescribeSnapshots {
                snapshot_ids: p.take_list("SnapshotId")?,
                owner_ids: p.take_list("Owner")?,
                restorable_by: p.take_list("RestorableBy")?,
                filters: p.take_filters()?,
                page: take_page_clamped(p, 5, 1000)?,
            })
        }),
        Op::write("DeleteSnapshot", |p| {
            Ok(Action::DeleteSnapshot {
                snapshot_id: required(p, "SnapshotId")?,
            })
        }),
        Op::write("CopySnapshot", |p| {
            for k in [
                "DestinationRegion",
                "Encrypted",
                "KmsKeyId",
                "PresignedUrl",
                "DestinationOutpostArn",
                "CompletionDurationMinutes",
                "DestinationAvailabilityZone",
            ] {
                p.take(k);
            }
            Ok(Action::CopySnapshot {
                source_region: required(p, "SourceRegion")?,
                source_snapshot_id: required(p, "SourceSnapshotId")?,
                description: p.take("Description").unwrap_or_default(),
                tag_specifications: p.take_tag_specifications()?,
            })
        }),
        Op::write("ModifySnapshotAttribute", |p| {
            let snapshot_id = required(p, "SnapshotId")?;
            if let Some(a) = p.take("Attribute") {
                one_of("Attribute", a, &["createVolumePermission"])?;
            }
            let mut add = permissions(p, "CreateVolumePermission.Add")?;
            let mut remove = permissions(p, "CreateVolumePermission.Remove")?;
            // The older form: `OperationType` with `UserId.N` and `UserGroup.N`.
            let users = p.take_list("UserId")?;
            let groups = p.take_list("UserGroup")?;
            if let Some(op) = p.take("OperationType") {
                let op = one_of("OperationType", op, &["add", "remove"])?;
                let target = if op == "add" { &mut add } else { &mut remove };
                target.extend(users.into_iter().map(Permission::User));
                for g in groups {
                    target.push(group(&g)?);
                }
            } else if !users.is_empty() || !groups.is_empty() {
                return Err(ApiError::missing_parameter("OperationType"));
            }
            if add.is_empty() && remove.is_empty() {
                return Err(ApiError::new(
                    ErrorCode::MissingParameter,
                    "No operation specified for createVolumePermission attribute.",
                ));
            }
            Ok(Action::ModifySnapshotAttribute {
                snapshot_id,
                add,
                remove,
            })
        }),
        Op::read("DescribeSnapshotAttribute", |p| {
            Ok(Action::DescribeSnapshotAttribute {
                attribute: attribute(p)?,
                snapshot_id: required(p, "SnapshotId")?,
            })
        }),
        Op::write("ResetSnapshotAttribute", |p| {
            let a = attribute(p)?;
            if a != SnapshotAttribute::CreateVolumePermission {
                return Err(ApiError::new(
                    ErrorCode::InvalidParameterValue,
                    "Value (productCodes) for parameter attribute is invalid. \
                     Only createVolumePermission can be reset",
                ));
            }
            Ok(Action::ResetSnapshotAttribute {
                snapshot_id: required(p, "SnapshotId")?,
            })
        }),
    ];

    fn name(&self) -> &'static str {
        match self {
            Action::CreateSnapshot { .. } => "CreateSnapshot",
            Action::CreateSnapshots { .. } => "CreateSnapshots",
            Action::DescribeSnapshots { .. } => "DescribeSnapshots",
            Action::DeleteSnapshot { .. } => "DeleteSnapshot",
            Action::CopySnapshot { .. } => "CopySnapshot",
            Action::ModifySnapshotAttribute { .. } => "ModifySnapshotAttribute",
            Action::DescribeSnapshotAttribute { .. } => "DescribeSnapshotAttribute",
            Action::ResetSnapshotAttribute { .. } => "ResetSnapshotAttribute",
        }
    }
}

fn snapshot(x: &mut Xml, s: &Snapshot) {
    x.leaf("snapshotId", &s.id)
        .leaf("volumeId", &s.volume_id)
        .leaf("status", s.state.as_str())
        .leaf_opt("statusMessage", s.state_message.as_deref())
        .leaf("startTime", &s.start_time)
        .leaf("progress", &s.progress)
        .leaf("ownerId", &s.owner_id)
        .leaf_display("volumeSize", s.volume_size)
        .leaf("description", &s.description)
        .bool("encrypted", s.encrypted)
        .leaf("storageTier", "standard");
    // Always, empty too: EC2's CreateSnapshot answers a `tagSet` (Ansible's ec2_snapshot reads
    // `Tags` from it unconditionally).
    tag_set(x, &s.tags);
}

impl Response {
    pub(crate) fn write(&self, x: &mut Xml) {
        match self {
            Response::Snapshot(s) => snapshot(x, s),
            Response::CreateSnapshots(snaps) => {
                // `SnapshotInfo`: its state element is `state`, not `status`.
                x.set("snapshotSet", snaps, |x, s| {
                    x.leaf("snapshotId", &s.id)
                        .leaf("volumeId", &s.volume_id)
                        .leaf("state", s.state.as_str())
                        .leaf("startTime", &s.start_time)
                        .leaf("progress", &s.progress)
                        .leaf("ownerId", &s.owner_id)
                        .leaf_display("volumeSize", s.volume_size)
                        .leaf("description", &s.description)
                        .bool("encrypted", s.encrypted);
                    if !s.tags.is_empty() {
                        tag_set(x, &s.tags);
                    }
                });
            }
            Response::DescribeSnapshots {
                snapshots,
                next_token,
            } => {
                x.set("snapshotSet", snapshots, snapshot);
                x.leaf_opt("nextToken", next_token.as_deref());
            }
            Response::CopySnapshot { snapshot_id, tags } => {
                x.leaf("snapshotId", snapshot_id);
                if !tags.is_empty() {
                    tag_set(x, tags);
                }
            }
            Response::DescribeSnapshotAttribute {
                snapshot_id,
                permissions,
            } => {
                x.leaf("snapshotId", snapshot_id);
                match permissions {
                    Some(perms) => {
                        x.set("createVolumePermission", perms, |x, p| match p {
                            Permission::User(u) => {
                                x.leaf("userId", u);
                            }
                            Permission::All => {
                                x.leaf("group", "all");
                            }
                        });
                    }
                    None => {
                        x.open("productCodes").close("productCodes");
                    }
                }
            }
            Response::Return => {
                x.bool("return", true);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::action::parse_form;
    use crate::ops::Action as Top;
    use gureum_types::ErrorCode;

    use super::*;

    #[test]
    fn permissions_in_both_forms() {
        let r = parse_form(
            "Action=ModifySnapshotAttribute&SnapshotId=snap-1&Attribute=createVolumePermission\
             &CreateVolumePermission.Add.1.UserId=222222222222\
             &CreateVolumePermission.Remove.1.Group=all",
        )
        .unwrap();
        let Top::Snapshots(Action::ModifySnapshotAttribute { add, remove, .. }) = r.action else {
            panic!()
        };
        assert_eq!(add, [Permission::User("222222222222".into())]);
        assert_eq!(remove, [Permission::All]);
        let r = parse_form(
            "Action=ModifySnapshotAttribute&SnapshotId=snap-1&Attribute=createVolumePermission\
             &OperationType=add&UserGroup.1=all",
        )
        .unwrap();
        let Top::Snapshots(Action::ModifySnapshotAttribute { add, .. }) = r.action else {
            panic!()
        };
        assert_eq!(add, [Permission::All]);
        let e = parse_form(
            "Action=ModifySnapshotAttribute&SnapshotId=snap-1&OperationType=add&UserGroup.1=some",
        )
        .unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidParameterValue);
        let e = parse_form("Action=ModifySnapshotAttribute&SnapshotId=snap-1").unwrap_err();
        assert_eq!(e.code, ErrorCode::MissingParameter);
    }
}
