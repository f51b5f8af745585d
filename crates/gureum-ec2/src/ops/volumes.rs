//! EBS volumes: `CreateVolume`, `DescribeVolumes`, `AttachVolume`, `DetachVolume`,
//! `DeleteVolume`, `ModifyVolume`, `DescribeVolumesModifications`, `DescribeVolumeStatus`,
//! `DescribeVolumeAttribute` and `ModifyVolumeAttribute`. The parsers check syntax and
//! enumerations; ranges that depend on the volume type (size, IOPS, throughput) are the
//! core's, since `ModifyVolume` combines them with the volume's current values.

use gureum_types::model::{Filter, TagSpecification, Volume, VolumeAttachment, VolumeModification};
use gureum_types::{ApiError, ErrorCode, VolumeType};

use crate::action::{one_of, one_of_enum, positive, take_page_clamped, Page};
use crate::ops::{Op, Resource};
use crate::render::tag_set;
use crate::xml::Xml;

/// `CreateVolume` after syntactic validation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CreateVolume {
    pub availability_zone: Option<String>,
    pub availability_zone_id: Option<String>,
    pub size: Option<u32>,
    pub snapshot_id: Option<String>,
    pub volume_type: Option<VolumeType>,
    pub iops: Option<u32>,
    pub throughput: Option<u32>,
    pub encrypted: bool,
    pub multi_attach: bool,
    pub tag_specifications: Vec<TagSpecification>,
    pub client_token: Option<String>,
}

/// What `ModifyVolume` asks to change.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModifyVolume {
    pub size: Option<u32>,
    pub volume_type: Option<VolumeType>,
    pub iops: Option<u32>,
    pub throughput: Option<u32>,
}

/// A volume attribute (`VolumeAttributeName`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VolumeAttribute {
    AutoEnableIo,
    ProductCodes,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    CreateVolume(CreateVolume),
    DescribeVolumes {
        volume_ids: Vec<String>,
        filters: Vec<Filter>,
        page: Page,
    },
    AttachVolume {
        volume_id: String,
        instance_id: String,
        device: String,
    },
    DetachVolume {
        volume_id: String,
        instance_id: Option<String>,
        device: Option<String>,
        force: bool,
    },
    DeleteVolume {
        volume_id: String,
    },
    ModifyVolume {
        volume_id: String,
        change: ModifyVolume,
    },
    DescribeVolumesModifications {
        volume_ids: Vec<String>,
        filters: Vec<Filter>,
        page: Page,
    },
    DescribeVolumeStatus {
        volume_ids: Vec<String>,
        filters: Vec<Filter>,
        page: Page,
    },
    DescribeVolumeAttribute {
        volume_id: String,
        attribute: VolumeAttribute,
    },
    ModifyVolumeAttribute {
        volume_id: String,
        auto_enable_io: bool,
    },
}

/// One item of `DescribeVolumeStatus`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeStatus {
    pub volume_id: String,
    pub availability_zone: String,
    /// `ok`, or `impaired` for a volume in `error`.
    pub ok: bool,
}

#[derive(Debug, Clone)]
pub enum Response {
    /// `CreateVolume`: the volume's elements at the top level.
    Volume(Volume),
    /// `AttachVolume`, `DetachVolume`: the attachment's elements at the top level.
    Attachment(VolumeAttachment),
    DescribeVolumes {
        volumes: Vec<Volume>,
        next_token: Option<String>,
    },
    ModifyVolume(VolumeModification),
    DescribeVolumesModifications {
        modifications: Vec<VolumeModification>,
        next_token: Option<String>,
    },
    DescribeVolumeStatus {
        statuses: Vec<VolumeStatus>,
        next_token: Option<String>,
    },
    DescribeVolumeAttribute {
        volume_id: String,
        /// `None`: the attribute asked for was `productCodes` (none).
        auto_enable_io: Option<bool>,
    },
    /// `DeleteVolume`, `ModifyVolumeAttribute`: `<return>true</return>`.
    Return,
}

fn required(p: &mut crate::Params, name: &str) -> Result<String, ApiError> {
    p.take(name)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| ApiError::missing_parameter(name))
}

/// A non-negative integer parameter.
fn count(p: &mut crate::Params, name: &str) -> Result<Option<u32>, ApiError> {
    positive(name, p.take_i64(name)?)
}

fn volume_type(p: &mut crate::Params) -> Result<Option<VolumeType>, ApiError> {
    p.take("VolumeType")
        .map(|t| one_of_enum::<VolumeType>("VolumeType", &t))
        .transpose()
}

impl Resource for Action {
    type Response = Response;

    const OPS: &'static [Op<Action>] = &[
        Op::write("CreateVolume", |p| {
            let encrypted = p.take_bool("Encrypted")?.unwrap_or(false);
            // Accepted and ignored: gureum volumes are not encrypted at rest by a key service.
            for k in [
                "KmsKeyId",
                "OutpostArn",
                "VolumeInitializationRate",
                "Operator.Principal",
            ] {
                p.take(k);
            }
            Ok(Action::CreateVolume(CreateVolume {
                availability_zone: p.take("AvailabilityZone").filter(|v| !v.is_empty()),
                availability_zone_id: p.take("AvailabilityZoneId").filter(|v| !v.is_empty()),
                size: count(p, "Size")?,
                snapshot_id: p.take("SnapshotId").filter(|v| !v.is_empty()),
                volume_type: volume_type(p)?,
                iops: count(p, "Iops")?,
                throughput: count(p, "Throughput")?,
                encrypted,
                multi_attach: p.take_bool("MultiAttachEnabled")?.unwrap_or(false),
                tag_specifications: p.take_tag_specifications()?,
                client_token: p.take("ClientToken").filter(|v| !v.is_empty()),
            }))
        }),
        Op::read("DescribeVolumes", |p| {
            p.take("IncludeManagedResources");
            Ok(Action::DescribeVolumes {
                volume_ids: p.take_list("VolumeId")?,
                filters: p.take_filters()?,
                page: take_page_clamped(p, 5, 500)?,
            })
        }),
        Op::write("AttachVolume", |p| {
            p.take("EbsCardIndex");
            Ok(Action::AttachVolume {
                device: required(p, "Device")?,
                instance_id: required(p, "InstanceId")?,
                volume_id: required(p, "VolumeId")?,
            })
        }),
        Op::write("DetachVolume", |p| {
            Ok(Action::DetachVolume {
                volume_id: required(p, "VolumeId")?,
                instance_id: p.take("InstanceId").filter(|v| !v.is_empty()),
                device: p.take("Device").filter(|v| !v.is_empty()),
                force: p.take_bool("Force")?.unwrap_or(false),
            })
        }),
        Op::write("DeleteVolume", |p| {
            Ok(Action::DeleteVolume {
                volume_id: required(p, "VolumeId")?,
            })
        }),
        Op::write("ModifyVolume", |p| {
            let volume_id = required(p, "VolumeId")?;
            if p.take_bool("MultiAttachEnabled")? == Some(true) {
                return Err(ApiError::new(
                    ErrorCode::InvalidParameterCombination,
                    "Multi-Attach is supported only for io1 and io2 volumes",
                ));
            }
            Ok(Action::ModifyVolume {
                volume_id,
                change: ModifyVolume {
                    size: count(p, "Size")?,
                    volume_type: volume_type(p)?,
                    iops: count(p, "Iops")?,
                    throughput: count(p, "Throughput")?,
                },
            })
        }),
        Op::read("DescribeVolumesModifications", |p| {
            Ok(Action::DescribeVolumesModifications {
                volume_ids: p.take_list("VolumeId")?,
                filters: p.take_filters()?,
                page: take_page_clamped(p, 5, 500)?,
            })
        }),
        Op::read("DescribeVolumeStatus", |p| {
            p.take("IncludeManagedResources");
            Ok(Action::DescribeVolumeStatus {
                volume_ids: p.take_list("VolumeId")?,
                filters: p.take_filters()?,
                page: take_page_clamped(p, 5, 1000)?,
            })
        }),
        Op::read("DescribeVolumeAttribute", |p| {
            let attribute = one_of(
                "Attribute",
                required(p, "Attribute")?,
                &["autoEnableIO", "productCodes"],
            )?;
            Ok(Action::DescribeVolumeAttribute {
                volume_id: required(p, "VolumeId")?,
                attribute: if attribute == "autoEnableIO" {
                    VolumeAttribute::AutoEnableIo
                } else {
                    VolumeAttribute::ProductCodes
                },
            })
        }),
        Op::write("ModifyVolumeAttribute", |p| {
            let volume_id = required(p, "VolumeId")?;
            let auto_enable_io = p
                .take_bool("AutoEnableIO.Value")?
                .ok_or_else(|| ApiError::missing_parameter("AutoEnableIO"))?;
            Ok(Action::ModifyVolumeAttribute {
                volume_id,
                auto_enable_io,
            })
        }),
    ];

    fn name(&self) -> &'static str {
        match self {
            Action::CreateVolume(_) => "CreateVolume",
            Action::DescribeVolumes { .. } => "DescribeVolumes",
            Action::AttachVolume { .. } => "AttachVolume",
            Action::DetachVolume { .. } => "DetachVolume",
            Action::DeleteVolume { .. } => "DeleteVolume",
            Action::ModifyVolume { .. } => "ModifyVolume",
            Action::DescribeVolumesModifications { .. } => "DescribeVolumesModifications",
            Action::DescribeVolumeStatus { .. } => "DescribeVolumeStatus",
            Action::DescribeVolumeAttribute { .. } => "DescribeVolumeAttribute",
            Action::ModifyVolumeAttribute { .. } => "ModifyVolumeAttribute",
        }
    }
}

fn attachment(x: &mut Xml, a: &VolumeAttachment) {
    x.leaf("volumeId", &a.volume_id)
        .leaf("instanceId", &a.instance_id)
        .leaf("device", &a.device)
        .leaf("status", a.state.as_str())
        .leaf("attachTime", &a.attach_time)
        .bool("deleteOnTermination", a.delete_on_termination);
}

fn volume(x: &mut Xml, v: &Volume) {
    x.leaf("volumeId", &v.id)
        .leaf_display("size", v.size_gib)
        .leaf("snapshotId", v.snapshot_id.as_deref().unwrap_or(""))
        .leaf("availabilityZone", &v.availability_zone)
        .leaf("status", v.state.as_str())
        .leaf("createTime", &v.create_time)
        .set("attachmentSet", &v.attachments, attachment)
        .leaf("volumeType", v.volume_type.as_str());
    if let Some(iops) = v.iops {
        x.leaf_display("iops", iops);
    }
    if let Some(t) = v.throughput {
        x.leaf_display("throughput", t);
    }
    x.bool("encrypted", v.encrypted)
        .bool("multiAttachEnabled", false)
        .bool("fastRestored", false);
    if !v.tags.is_empty() {
        tag_set(x, &v.tags);
    }
}

fn modification(x: &mut Xml, m: &VolumeModification) {
    let opt = |x: &mut Xml, tag: &str, v: Option<u32>| {
        if let Some(v) = v {
            x.leaf_display(tag, v);
        }
    };
    x.leaf("volumeId", &m.volume_id)
        .leaf("modificationState", m.state.as_str())
        .leaf_display("targetSize", m.target_size)
        .leaf("targetVolumeType", m.target_volume_type.as_str());
    opt(x, "targetIops", m.target_iops);
    opt(x, "targetThroughput", m.target_throughput);
    x.bool("targetMultiAttachEnabled", false)
        .leaf_display("originalSize", m.original_size)
        .leaf("originalVolumeType", m.original_volume_type.as_str());
    opt(x, "originalIops", m.original_iops);
    opt(x, "originalThroughput", m.original_throughput);
    x.bool("originalMultiAttachEnabled", false)
        .leaf_display("progress", m.progress)
        .leaf("startTime", &m.start_time)
        .leaf_opt("endTime", m.end_time.as_deref());
}

impl Response {
    pub(crate) fn write(&self, x: &mut Xml) {
        match self {
            Response::Volume(v) => volume(x, v),
            Response::Attachment(a) => {
                x.leaf("volumeId", &a.volume_id)
                    .leaf("instanceId", &a.instance_id)
                    .leaf("device", &a.device)
                    .leaf("status", a.state.as_str())
                    .leaf("attachTime", &a.attach_time);
            }
            Response::DescribeVolumes {
                volumes,
                next_token,
            } => {
                x.set("volumeSet", volumes, volume);
                x.leaf_opt("nextToken", next_token.as_deref());
            }
            Response::ModifyVolume(m) => {
                x.open("volumeModification");
                modification(x, m);
                x.close("volumeModification");
            }
            Response::DescribeVolumesModifications {
                modifications,
                next_token,
            } => {
                x.set("volumeModificationSet", modifications, modification);
                x.leaf_opt("nextToken", next_token.as_deref());
            }
            Response::DescribeVolumeStatus {
                statuses,
                next_token,
            } => {
                x.set("volumeStatusSet", statuses, |x, s| {
                    let status = if s.ok { "ok" } else { "impaired" };
                    let io = if s.ok { "passed" } else { "failed" };
                    x.leaf("volumeId", &s.volume_id)
                        .leaf("availabilityZone", &s.availability_zone)
                        .open("volumeStatus")
                        .leaf("status", status)
                        .open("details")
                        .open("item")
                        .leaf("name", "io-enabled")
                        .leaf("status", io)
                        .close("item")
                        .open("item")
                        .leaf("name", "io-performance")
                        .leaf("status", "not-applicable")
                        .close("item")
                        .close("details")
                        .close("volumeStatus")
                        .open("eventsSet")
                        .close("eventsSet")
                        .open("actionsSet")
                        .close("actionsSet");
                });
                x.leaf_opt("nextToken", next_token.as_deref());
            }
            Response::DescribeVolumeAttribute {
                volume_id,
                auto_enable_io,
            } => {
                x.leaf("volumeId", volume_id);
                match auto_enable_io {
                    Some(v) => {
                        x.open("autoEnableIO")
                            .bool("value", *v)
                            .close("autoEnableIO");
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
    use gureum_types::{ErrorCode, VolumeType};

    use super::*;

    #[test]
    fn create_volume_parses_its_parameters() {
        let r = parse_form(
            "Action=CreateVolume&AvailabilityZone=us-east-1a&Size=20&VolumeType=io1&Iops=500\
             &TagSpecification.1.ResourceType=volume&TagSpecification.1.Tag.1.Key=k\
             &TagSpecification.1.Tag.1.Value=v",
        )
        .unwrap();
        let Top::Volumes(Action::CreateVolume(c)) = r.action else {
            panic!("{r:?}")
        };
        assert_eq!(c.availability_zone.as_deref(), Some("us-east-1a"));
        assert_eq!(
            (c.size, c.volume_type, c.iops),
            (Some(20), Some(VolumeType::Io1), Some(500))
        );
        assert_eq!(c.tag_specifications.len(), 1);
    }

    #[test]
    fn bad_values_answer_aws_errors() {
        let e = parse_form("Action=CreateVolume&AvailabilityZone=us-east-1a&VolumeType=gp4")
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidParameterValue);
        assert_eq!(
            e.message,
            "Value (gp4) for parameter VolumeType is invalid. \
             Valid values are: standard, io1, io2, gp2, sc1, st1, gp3"
        );
        let e = parse_form("Action=AttachVolume&VolumeId=vol-1&InstanceId=i-1").unwrap_err();
        assert_eq!(e.code, ErrorCode::MissingParameter);
        // Below the minimum is an error; above the maximum returns the maximum (as AWS
        // documents, and the AWS CLI sends 1000).
        let e = parse_form("Action=DescribeVolumes&MaxResults=4").unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidParameterValue);
        match parse_form("Action=DescribeVolumes&MaxResults=1000")
            .unwrap()
            .action
        {
            crate::Action::Volumes(Action::DescribeVolumes { page, .. }) => {
                assert_eq!(page.max_results, Some(500))
            }
            a => panic!("{a:?}"),
        }
        let e =
            parse_form("Action=DescribeVolumeAttribute&VolumeId=vol-1&Attribute=size").unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidParameterValue);
    }
}
