//! Images: `DescribeImages`, `DeregisterImage`, `CopyImage`, `CreateImage`, and the
//! `ModifyImageAttribute` / `DescribeImageAttribute` / `ResetImageAttribute` trio.

use gureum_types::model::{Filter, Image, TagSpecification};
use gureum_types::{ApiError, ImageState};

use crate::action::{one_of, take_page, Page};
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
            Action::DeregisterImage { .. } => "DeregisterImage",
            Action::CopyImage { .. } => "CopyImage",
            Action::CreateImage { .. } => "CreateImage",
            Action::ModifyImageAttribute { .. } => "ModifyImageAttribute",
            Action::DescribeImageAttribute { .. } => "DescribeImageAttribute",
            Action::ResetImageAttribute { .. } => "ResetImageAttribute",
        }
    }
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
        .leaf("rootDeviceName", "/dev/xvda")
        .open("blockDeviceMapping")
        .open("item")
        .leaf("deviceName", "/dev/xvda")
        .open("ebs")
        .leaf_display("volumeSize", i.root_size_gib)
        .bool("deleteOnTermination", true)
        .leaf("volumeType", "gp3")
        .bool("encrypted", false)
        .close("ebs")
        .close("item")
        .close("blockDeviceMapping")
        .leaf("virtualizationType", i.virtualization_type.as_str())
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
