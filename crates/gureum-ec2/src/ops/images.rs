//! Images: `DescribeImages`, `RegisterImage`, `DeregisterImage`, `CopyImage`, `CreateImage`,
//! and the `ModifyImageAttribute` / `DescribeImageAttribute` / `ResetImageAttribute` trio.

use gureum_types::model::{Filter, Image, TagSpecification};
use gureum_types::{ApiError, Architecture, ImageState, VirtualizationType, VolumeType};

use crate::action::{one_of, one_of_enum, positive, take_page, Page};
use crate::ops::{Op, Resource};
use crate::params::Params;
use crate::render::tag_set;
use crate::xml::Xml;

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    DescribeImages {
        image_ids: Vec<String>,
        owners: Vec<String>,
        executable_users: Vec<String>,
        filters: Vec<Filter>,
        page: Page,
    },
    RegisterImage(Box<RegisterImage>),
    DeregisterImage {
        image_id: String,
    },
    CopyImage {
        source_image_id: String,
        source_region: String,
        name: String,
        description: Option<String>,
        copy_image_tags: bool,
        tag_specifications: Vec<TagSpecification>,
    },
    CreateImage {
        instance_id: String,
        name: String,
        description: Option<String>,
        no_reboot: bool,
        tag_specifications: Vec<TagSpecification>,
    },
    ModifyImageAttribute {
        image_id: String,
        change: ImageAttributeChange,
    },
    DescribeImageAttribute {
        image_id: String,
        /// `launchPermission` or `description` (others answer as AWS would for an unset attribute).
        attribute: String,
    },
    ResetImageAttribute {
        image_id: String,
        attribute: String,
    },
}

/// `RegisterImage`'s parameters (the ones gureum acts on; `EnaSupport`, `SriovNetSupport`,
/// `BootMode`, `TpmSupport`, `ImdsSupport`, `UefiData`, `KernelId`, `RamdiskId` and
/// `BillingProduct.N` are checked where they have values to check, and dropped).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RegisterImage {
    pub name: String,
    pub description: Option<String>,
    pub architecture: Option<Architecture>,
    pub virtualization_type: Option<VirtualizationType>,
    pub root_device_name: Option<String>,
    /// An instance-store AMI's manifest in S3.
    pub image_location: Option<String>,
    pub block_device_mappings: Vec<ImageBlockDeviceRequest>,
    pub tag_specifications: Vec<TagSpecification>,
}

/// One `BlockDeviceMapping.N` of `RegisterImage`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ImageBlockDeviceRequest {
    pub device_name: String,
    pub snapshot_id: Option<String>,
    pub volume_size: Option<u32>,
    pub volume_type: Option<VolumeType>,
    pub delete_on_termination: Option<bool>,
    pub iops: Option<u32>,
    pub throughput: Option<u32>,
    /// `NoDevice`: the mapping suppresses a device.
    pub no_device: bool,
    /// `VirtualName` (`ephemeralN`): an instance store volume.
    pub virtual_name: Option<String>,
}

/// `ModifyImageAttribute`'s change: launch permissions or the description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageAttributeChange {
    LaunchPermission {
        add_users: Vec<String>,
        remove_users: Vec<String>,
        /// `Some(true)` adds group `all` (public), `Some(false)` removes it.
        public: Option<bool>,
    },
    Description(String),
}

#[derive(Debug, Clone)]
pub enum Response {
    DescribeImages {
        images: Vec<Image>,
        next_token: Option<String>,
    },
    /// `DeregisterImage`, `ModifyImageAttribute`, `ResetImageAttribute`:
    /// `<return>true</return>`.
    Return,
    /// `CopyImage`, `CreateImage`.
    ImageId(String),
    DescribeImageAttribute {
        image_id: String,
        attribute: String,
        launch_permission_users: Vec<String>,
        public: bool,
        description: String,
    },
}

impl Resource for Action {
    type Response = Response;

    const OPS: &'static [Op<Action>] = &[
        Op::read("DescribeImages", |p| {
            let image_ids = p.take_list("ImageId")?;
            let owners = p.take_list("Owner")?;
            let executable_users = p.take_list("ExecutableBy")?;
            let filters = p.take_filters()?;
            let page = take_page(p, 5, 1000)?;
            p.take_bool("IncludeDeprecated")?;
            p.take_bool("IncludeDisabled")?;
            Ok(Action::DescribeImages {
                image_ids,
                owners,
                executable_users,
                filters,
                page,
            })
        }),
        Op::write("RegisterImage", parse_register_image),
        Op::write("DeregisterImage", |p| {
            let image_id = p.required("ImageId")?;
            p.take_bool("DeleteAssociatedSnapshots")?;
            Ok(Action::DeregisterImage { image_id })
        }),
        Op::write("CopyImage", |p| {
            Ok(Action::CopyImage {
                source_image_id: p.required("SourceImageId")?,
                source_region: p.required("SourceRegion")?,
                name: p.required("Name")?,
                description: p.take("Description"),
                copy_image_tags: {
                    p.take("ClientToken");
                    p.take_bool("Encrypted")?;
                    p.take_bool("CopyImageTags")?.unwrap_or(false)
                },
                tag_specifications: p.take_tag_specifications()?,
            })
        }),
        Op::write("CreateImage", |p| {
            let instance_id = p.required("InstanceId")?;
            let name = p.required("Name")?;
            let description = p.take("Description");
            let no_reboot = p.take_bool("NoReboot")?.unwrap_or(false);
            let tag_specifications = p.take_tag_specifications()?;
            Ok(Action::CreateImage {
                instance_id,
                name,
                description,
                no_reboot,
                tag_specifications,
            })
        }),
        Op::write("ModifyImageAttribute", parse_modify_image_attribute),
        Op::read("DescribeImageAttribute", |p| {
            Ok(Action::DescribeImageAttribute {
                image_id: p.required("ImageId")?,
                attribute: one_of(
                    "Attribute",
                    p.required("Attribute")?,
                    &[
                        "description",
                        "kernel",
                        "ramdisk",
                        "launchPermission",
                        "productCodes",
                        "blockDeviceMapping",
                        "sriovNetSupport",
                        "bootMode",
                        "tpmSupport",
                        "uefiData",
                        "lastLaunchedTime",
                        "imdsSupport",
                        "deregistrationProtection",
                    ],
                )?,
            })
        }),
        Op::write("ResetImageAttribute", |p| {
            Ok(Action::ResetImageAttribute {
                image_id: p.required("ImageId")?,
                attribute: one_of("Attribute", p.required("Attribute")?, &["launchPermission"])?,
            })
        }),
    ];

    fn name(&self) -> &'static str {
        match self {
            Action::DescribeImages { .. } => "DescribeImages",
            Action::RegisterImage(_) => "RegisterImage",
            Action::DeregisterImage { .. } => "DeregisterImage",
            Action::CopyImage { .. } => "CopyImage",
            Action::CreateImage { .. } => "CreateImage",
            Action::ModifyImageAttribute { .. } => "ModifyImageAttribute",
            Action::DescribeImageAttribute { .. } => "DescribeImageAttribute",
            Action::ResetImageAttribute { .. } => "ResetImageAttribute",
        }
    }
}

fn parse_register_image(p: &mut Params) -> Result<Action, ApiError> {
    let name = p.required("Name")?;
    let description = p.take("Description");
    let architecture = p
        .take("Architecture")
        .map(|v| one_of_enum("Architecture", &v))
        .transpose()?;
    let virtualization_type = p
        .take("VirtualizationType")
        .map(|v| one_of_enum("VirtualizationType", &v))
        .transpose()?;
    let root_device_name = p.take("RootDeviceName");
    let image_location = p.take("ImageLocation");
    let block_device_mappings = p
        .take_struct_list("BlockDeviceMapping")?
        .into_iter()
        .map(|mut b| {
            let d = ImageBlockDeviceRequest {
                device_name: b
                    .take("DeviceName")
                    .ok_or_else(|| ApiError::missing_parameter("BlockDeviceMapping.DeviceName"))?,
                snapshot_id: b.take("Ebs.SnapshotId"),
                volume_size: positive("VolumeSize", b.take_i64("Ebs.VolumeSize")?)?,
                volume_type: b
                    .take("Ebs.VolumeType")
                    .map(|v| one_of_enum("VolumeType", &v))
                    .transpose()?,
                delete_on_termination: b.take_bool("Ebs.DeleteOnTermination")?,
                iops: positive("Iops", b.take_i64("Ebs.Iops")?)?,
                throughput: positive("Throughput", b.take_i64("Ebs.Throughput")?)?,
                no_device: b.take("NoDevice").is_some(),
                virtual_name: b.take("VirtualName"),
            };
            // A snapshot's volume keeps the snapshot's encryption; gureum's are unencrypted.
            b.take_bool("Ebs.Encrypted")?;
            b.take("Ebs.KmsKeyId");
            b.finish()?;
            Ok(d)
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    let tag_specifications = p.take_tag_specifications()?;
    // Accepted: what they choose is what every gureum image is, or means nothing here.
    p.take_bool("EnaSupport")?;
    p.take("SriovNetSupport");
    if let Some(m) = p.take("BootMode") {
        one_of("BootMode", m, &["legacy-bios", "uefi", "uefi-preferred"])?;
    }
    if let Some(t) = p.take("TpmSupport") {
        one_of("TpmSupport", t, &["v2.0"])?;
    }
    if let Some(i) = p.take("ImdsSupport") {
        one_of("ImdsSupport", i, &["v2.0"])?;
    }
    p.take("UefiData");
    p.take("KernelId");
    p.take("RamdiskId");
    p.take_list("BillingProduct")?;
    Ok(Action::RegisterImage(Box::new(RegisterImage {
        name,
        description,
        architecture,
        virtualization_type,
        root_device_name,
        image_location,
        block_device_mappings,
        tag_specifications,
    })))
}

fn parse_modify_image_attribute(p: &mut Params) -> Result<Action, ApiError> {
    let image_id = p.required("ImageId")?;
    let attribute = p.take("Attribute");
    let operation = p.take("OperationType");
    let user_ids = p.take_list("UserId")?;
    let groups = p.take_list("UserGroup")?;
    let value = p.take("Value");
    let description = p.take("Description.Value");
    let mut add_users = Vec::new();
    let mut remove_users = Vec::new();
    let mut public = None;
    for (which, list) in [("Add", true), ("Remove", false)] {
        for mut perm in p.take_struct_list(&format!("LaunchPermission.{which}"))? {
            if let Some(u) = perm.take("UserId") {
                if list {
                    add_users.push(u)
                } else {
                    remove_users.push(u)
                }
            }
            if let Some(g) = perm.take("Group") {
                if g != "all" {
                    return Err(ApiError::invalid_value(
                        "Group",
                        &g,
                        "Only 'all' is supported.",
                    ));
                }
                public = Some(list);
            }
            perm.finish()?;
        }
    }
    let is_perm = attribute.as_deref() == Some("launchPermission")
        || !add_users.is_empty()
        || !remove_users.is_empty()
        || public.is_some()
        || !user_ids.is_empty()
        || !groups.is_empty();
    if is_perm {
        let add = match operation.as_deref() {
            None | Some("add") => true,
            Some("remove") => false,
            Some(o) => {
                return Err(ApiError::invalid_value(
                    "OperationType",
                    o,
                    "Expected add or remove.",
                ))
            }
        };
        for u in user_ids {
            if add {
                add_users.push(u)
            } else {
                remove_users.push(u)
            }
        }
        for g in groups {
            if g != "all" {
                return Err(ApiError::invalid_value(
                    "UserGroup",
                    &g,
                    "Only 'all' is supported.",
                ));
            }
            public = Some(add);
        }
        return Ok(Action::ModifyImageAttribute {
            image_id,
            change: ImageAttributeChange::LaunchPermission {
                add_users,
                remove_users,
                public,
            },
        });
    }
    match (attribute.as_deref(), description.or(value)) {
        (None | Some("description"), Some(d)) => Ok(Action::ModifyImageAttribute {
            image_id,
            change: ImageAttributeChange::Description(d),
        }),
        (Some(a), _) if a != "description" => Err(ApiError::invalid_value(
            "Attribute",
            a,
            "Supported attributes are launchPermission and description.",
        )),
        _ => Err(ApiError::missing_parameter("LaunchPermission")),
    }
}

fn image_xml(x: &mut Xml, i: &Image) {
    x.leaf("imageId", &i.id)
        .leaf(
            "imageLocation",
            &format!(
                "{}/{}",
                i.owner_alias.as_deref().unwrap_or(&i.owner_id),
                i.name
            ),
        )
        .leaf("imageState", i.state.as_str())
        .leaf("imageOwnerId", &i.owner_id)
        .leaf("creationDate", &i.creation_date)
        .bool("isPublic", i.public)
        .leaf("architecture", i.architecture.as_str())
        .leaf("imageType", &i.image_type)
        .leaf("name", &i.name)
        .leaf("description", &i.description)
        .leaf_opt("imageOwnerAlias", i.owner_alias.as_deref())
        .leaf("rootDeviceType", i.root_device_type.as_str())
        .leaf("rootDeviceName", &i.root_device_name);
    x.set("blockDeviceMapping", &i.block_devices, |x, d| {
        x.leaf("deviceName", &d.device_name).open("ebs");
        x.leaf_opt("snapshotId", d.snapshot_id.as_deref());
        x.leaf_display("volumeSize", d.volume_size)
            .bool("deleteOnTermination", d.delete_on_termination)
            .leaf("volumeType", d.volume_type.as_str())
            .bool("encrypted", false)
            .close("ebs");
    });
    x.leaf("virtualizationType", i.virtualization_type.as_str())
        .leaf("hypervisor", "xen")
        .bool("enaSupport", true)
        .leaf("platformDetails", "Linux/UNIX")
        .leaf("usageOperation", "RunInstances")
        .leaf("bootMode", "legacy-bios")
        .leaf("imdsSupport", "v2.0");
    x.leaf_opt("sourceInstanceId", i.source_instance_id.as_deref());
    x.leaf_opt("sourceImageId", i.source_image_id.as_deref());
    if let Some(r) = &i.state_reason {
        x.open("stateReason")
            .leaf(
                "code",
                if i.state == ImageState::Failed {
                    "Client.ImageBuildFailed"
                } else {
                    ""
                },
            )
            .leaf("message", r)
            .close("stateReason");
    }
    tag_set(x, &i.tags);
}

impl Response {
    pub(crate) fn write(&self, x: &mut Xml) {
        match self {
            Response::DescribeImages { images, next_token } => {
                x.set("imagesSet", images, image_xml);
                x.leaf_opt("nextToken", next_token.as_deref());
            }
            Response::Return => {
                x.bool("return", true);
            }
            Response::ImageId(id) => {
                x.leaf("imageId", id);
            }
            Response::DescribeImageAttribute {
                image_id,
                attribute,
                launch_permission_users,
                public,
                description,
            } => {
                x.leaf("imageId", image_id);
                match attribute.as_str() {
                    "launchPermission" => {
                        x.open("launchPermission");
                        if *public {
                            x.open("item").leaf("group", "all").close("item");
                        }
                        for u in launch_permission_users {
                            x.open("item").leaf("userId", u).close("item");
                        }
                        x.close("launchPermission");
                    }
                    "description" => {
                        x.open("description")
                            .leaf("value", description)
                            .close("description");
                    }
                    "blockDeviceMapping" | "productCodes" => {
                        x.open(attribute).close(attribute);
                    }
                    other => {
                        x.open(other).close(other);
                    }
                }
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

    fn register(form: &str) -> Result<RegisterImage, ApiError> {
        match parse_form(&format!("Action=RegisterImage&{form}"))?.action {
            Top::Images(Action::RegisterImage(r)) => Ok(*r),
            other => panic!("{other:?}"),
        }
    }

    /// What boto3's `register_image` sends for an image from a snapshot.
    #[test]
    fn register_image_parses_botocores_shape() {
        let r = register(
            "Name=from-snapshot&Description=d&Architecture=x86_64&VirtualizationType=hvm\
             &RootDeviceName=%2Fdev%2Fxvda&EnaSupport=true&SriovNetSupport=simple\
             &BootMode=uefi-preferred&ImdsSupport=v2.0\
             &BlockDeviceMapping.1.DeviceName=%2Fdev%2Fxvda\
             &BlockDeviceMapping.1.Ebs.SnapshotId=snap-1&BlockDeviceMapping.1.Ebs.VolumeSize=10\
             &BlockDeviceMapping.1.Ebs.VolumeType=gp3\
             &BlockDeviceMapping.1.Ebs.DeleteOnTermination=false\
             &BlockDeviceMapping.2.DeviceName=%2Fdev%2Fsdb&BlockDeviceMapping.2.VirtualName=ephemeral0\
             &TagSpecification.1.ResourceType=image&TagSpecification.1.Tag.1.Key=k\
             &TagSpecification.1.Tag.1.Value=v",
        )
        .unwrap();
        assert_eq!(r.name, "from-snapshot");
        assert_eq!(r.architecture, Some(Architecture::X86_64));
        assert_eq!(r.virtualization_type, Some(VirtualizationType::Hvm));
        assert_eq!(r.root_device_name.as_deref(), Some("/dev/xvda"));
        assert_eq!(
            r.block_device_mappings[0],
            ImageBlockDeviceRequest {
                device_name: "/dev/xvda".into(),
                snapshot_id: Some("snap-1".into()),
                volume_size: Some(10),
                volume_type: Some(VolumeType::Gp3),
                delete_on_termination: Some(false),
                ..Default::default()
            }
        );
        assert_eq!(
            r.block_device_mappings[1].virtual_name.as_deref(),
            Some("ephemeral0")
        );
        assert_eq!(r.tag_specifications.len(), 1);
    }

    #[test]
    fn register_image_refuses_bad_values() {
        let e = parse_form("Action=RegisterImage").unwrap_err();
        assert_eq!(e.code, ErrorCode::MissingParameter);
        let e = register("Name=n&Architecture=sparc").unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidParameterValue);
        assert!(e.message.contains("x86_64"), "{}", e.message);
        let e = register(
            "Name=n&BlockDeviceMapping.1.DeviceName=%2Fdev%2Fxvda\
             &BlockDeviceMapping.1.Ebs.VolumeType=gp4",
        )
        .unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidParameterValue);
        let e = register("Name=n&BootMode=bios").unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidParameterValue);
        let e = register("Name=n&BlockDeviceMapping.1.Ebs.SnapshotId=snap-1").unwrap_err();
        assert_eq!(e.code, ErrorCode::MissingParameter);
        let e =
            register("Name=n&BlockDeviceMapping.1.DeviceName=x&BlockDeviceMapping.1.Ebs.Bogus=1")
                .unwrap_err();
        assert_eq!(e.code, ErrorCode::UnknownParameter);
    }
}
