//! Images (AMIs): registering built-in, imported and copied images, sharing them through
//! launch permissions, and the image actions. The root filesystems themselves are built or
//! imported by `gureum-image`; the core only records where they are.

use gureum_ec2::ops::images::ImageAttributeChange;
use gureum_ec2::ops::images::{Action, Response};
use gureum_ec2::Page;
use gureum_store::images as db;
use gureum_store::Tx;
use gureum_types::model::{Filter, Image, ImageBlockDevice, Tag, TagSpecification};
use gureum_types::{ApiError, ErrorCode, ImageId, ResourceId, ResourceKind};
use gureum_types::{
    Architecture, DeviceType, ImageState, InstanceState, VirtualizationType, VolumeType,
};

use crate::describe::{self, Describable};
use crate::{aws_time, tags, Cloud, CoreError, CoreResult, Ctx};

/// The owner alias of built-in images, as AWS shows `amazon`.
pub const BUILTIN_ALIAS: &str = "gureum";
/// The account that owns built-in images.
pub const SYSTEM_ACCOUNT: &str = "gureum";

/// What every image and instance is, as EC2 describes them: the API has always answered
/// x86_64, HVM and an EBS root device (a root filesystem on the host stands for the volume),
/// whatever runs the guest. Constant until images record their own.
pub(crate) const ARCHITECTURE: Architecture = Architecture::X86_64;
pub(crate) const VIRTUALIZATION_TYPE: VirtualizationType = VirtualizationType::Hvm;
pub(crate) const ROOT_DEVICE_TYPE: DeviceType = DeviceType::Ebs;

/// The root device of an image that names none.
pub(crate) const DEFAULT_ROOT_DEVICE: &str = "/dev/xvda";

const IMAGE_FILTERS: &[&str] = &[
    "name",
    "image-id",
    "architecture",
    "state",
    "owner-alias",
    "owner-id",
    "is-public",
    "root-device-type",
    "root-device-name",
    "image-type",
    "description",
    "virtualization-type",
    "hypervisor",
    "platform-details",
    "usage-operation",
    "block-device-mapping.device-name",
    "block-device-mapping.volume-size",
    "block-device-mapping.volume-type",
    "block-device-mapping.snapshot-id",
    "block-device-mapping.delete-on-termination",
];

impl Describable for Image {
    fn filter_values(&self, name: &str) -> Option<Vec<String>> {
        let devices = |f: fn(&ImageBlockDevice) -> Option<String>| {
            Some(self.block_devices.iter().filter_map(f).collect())
        };
        Some(vec![match name {
            "block-device-mapping.device-name" => return devices(|d| Some(d.device_name.clone())),
            "block-device-mapping.volume-size" => {
                return devices(|d| Some(d.volume_size.to_string()))
            }
            "block-device-mapping.volume-type" => {
                return devices(|d| Some(d.volume_type.as_str().into()))
            }
            "block-device-mapping.snapshot-id" => return devices(|d| d.snapshot_id.clone()),
            "block-device-mapping.delete-on-termination" => {
                return devices(|d| Some(d.delete_on_termination.to_string()))
            }
            "name" => self.name.clone(),
            "image-id" => self.id.clone(),
            "architecture" => self.architecture.as_str().into(),
            "state" => self.state.as_str().into(),
            "owner-alias" => return Some(self.owner_alias.iter().cloned().collect()),
            "owner-id" => self.owner_id.clone(),
            "is-public" => self.public.to_string(),
            "root-device-type" => self.root_device_type.as_str().into(),
            "root-device-name" => self.root_device_name.clone(),
            "image-type" => self.image_type.clone(),
            "description" => self.description.clone(),
            "virtualization-type" => self.virtualization_type.as_str().into(),
            "hypervisor" => "xen".into(),
            "platform-details" => "Linux/UNIX".into(),
            "usage-operation" => "RunInstances".into(),
            _ => return None,
        }])
    }
    fn tags(&self) -> &[Tag] {
        &self.tags
    }
}

pub(crate) fn not_found(id: &str) -> CoreError {
    ApiError::new(
        ErrorCode::InvalidAMIIDNotFound,
        format!("The image id '[{id}]' does not exist"),
    )
    .into()
}

/// `id` as an image id, or EC2's `InvalidAMIID.Malformed`.
pub(crate) fn image_id(id: &str) -> CoreResult<ImageId> {
    ImageId::parse(id).ok_or_else(|| {
        ApiError::new(
            ErrorCode::InvalidAMIIDMalformed,
            format!("Invalid id: \"{id}\" (expecting \"ami-...\")"),
        )
        .into()
    })
}

/// AWS: 3 to 128 characters of letters, digits, spaces and `()[]./-'@_`.
pub(crate) fn check_name(name: &str) -> CoreResult<()> {
    let ok = (3..=128).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || " ()[]./-'@_".contains(c));
    if !ok {
        return Err(ApiError::new(
            ErrorCode::InvalidAMINameMalformed,
            "AMI names must be between 3 and 128 characters long, and may contain letters, \
             numbers, '(', ')', '.', '-', '/' and '_'",
        )
        .into());
    }
    Ok(())
}

/// Record image `id` of account `account_id` (its registry row, the image, its tags);
/// `InvalidAMIName.Duplicate` if the account has an image of that name.
pub(crate) fn insert_image(
    tx: &dyn Tx,
    account_id: &str,
    id: &str,
    img: NewImage,
    now: i64,
) -> CoreResult<()> {
    tx.resources().insert(id, account_id, "image", now)?;
    let ok = tx.images().insert(&db::ImageRow {
        id: id.to_string(),
        account_id: account_id.to_string(),
        name: img.name.clone(),
        description: img.description,
        state: img.state,
        state_reason: None,
        public: img.public,
        owner_alias: img.owner_alias,
        login_user: img.login_user,
        root_size_gib: img.root_size_gib,
        rootfs: img.rootfs,
        source: img.source,
        source_instance_id: img.source_instance_id,
        source_image_id: img.source_image_id,
        created_at: now,
    })?;
    if !ok {
        return Err(ApiError::new(
            ErrorCode::InvalidAMINameDuplicate,
            format!("AMI name {} is already in use by AMI", img.name),
        )
        .into());
    }
    tx.tags().put(account_id, id, &img.tags)?;
    Ok(())
}

/// `CopyImage`'s parameters.
pub(crate) struct CopyRequest {
    pub source_id: String,
    pub source_region: String,
    pub name: String,
    pub description: Option<String>,
    pub copy_tags: bool,
    pub specs: Vec<TagSpecification>,
}

/// A new image to record.
#[derive(Debug, Clone)]
pub struct NewImage {
    pub name: String,
    pub description: String,
    pub login_user: String,
    pub root_size_gib: u32,
    pub rootfs: Option<String>,
    pub state: ImageState,
    pub public: bool,
    pub owner_alias: Option<String>,
    pub source: String,
    pub source_instance_id: Option<String>,
    pub source_image_id: Option<String>,
    pub tags: Vec<Tag>,
}

impl Cloud {
    /// The image as the API shows it, with its recorded block device mappings (`devices`, in
    /// any order; other images' are ignored). An image without any has the one root volume
    /// every image had before images recorded theirs: `/dev/xvda`, gp3, deleted on
    /// termination.
    pub(crate) fn image_model(
        r: db::ImageRow,
        tags: Vec<Tag>,
        devices: &[db::BlockDeviceRow],
    ) -> Image {
        let mut own: Vec<&db::BlockDeviceRow> =
            devices.iter().filter(|d| d.image_id == r.id).collect();
        own.sort_by_key(|d| (!d.root, d.device_name.clone()));
        let block_devices: Vec<ImageBlockDevice> = if own.is_empty() {
            vec![ImageBlockDevice {
                device_name: DEFAULT_ROOT_DEVICE.into(),
                snapshot_id: None,
                volume_size: r.root_size_gib,
                volume_type: VolumeType::Gp3,
                delete_on_termination: true,
            }]
        } else {
            own.iter()
                .map(|d| ImageBlockDevice {
                    device_name: d.device_name.clone(),
                    snapshot_id: d.snapshot_id.clone(),
                    volume_size: d.volume_size,
                    volume_type: d.volume_type,
                    delete_on_termination: d.delete_on_termination,
                })
                .collect()
        };
        let root_device_name = own
            .iter()
            .find(|d| d.root)
            .map_or(DEFAULT_ROOT_DEVICE.into(), |d| d.device_name.clone());
        Image {
            root_device_name,
            block_devices,
            id: r.id,
            owner_id: r.account_id,
            owner_alias: r.owner_alias,
            name: r.name,
            description: r.description,
            state: r.state,
            state_reason: r.state_reason,
            public: r.public,
            creation_date: aws_time(r.created_at),
            login_user: r.login_user,
            root_size_gib: r.root_size_gib,
            image_type: "machine".into(),
            architecture: ARCHITECTURE,
            virtualization_type: VIRTUALIZATION_TYPE,
            root_device_type: ROOT_DEVICE_TYPE,
            source_instance_id: r.source_instance_id,
            source_image_id: r.source_image_id,
            tags,
        }
    }

    /// Record an image for `account` (id or name). Blocking.
    pub fn register_image_sync(&self, account: &str, img: NewImage) -> CoreResult<String> {
        let now = self.clock.now_millis();
        let id = ResourceId::generate(ResourceKind::Image).to_string();
        self.store.write(|tx| {
            let acct = tx
                .accounts()
                .find(account)?
                .ok_or_else(|| CoreError::NoAccount(account.to_string()))?;
            insert_image(tx, &acct.id, &id, img, now)?;
            Ok(id.clone())
        })
    }

    /// Mark an image available (with its root filesystem) or failed. Blocking.
    pub fn finish_image_sync(&self, id: &str, result: Result<String, String>) -> CoreResult<()> {
        self.store.write(|tx| {
            match &result {
                Ok(rootfs) => {
                    tx.images()
                        .set_state(id, ImageState::Available, None, Some(rootfs))?
                }
                Err(why) => tx
                    .images()
                    .set_state(id, ImageState::Failed, Some(why), None)?,
            }
            Ok(())
        })
    }

    /// The newest image made from `source` (e.g. `recipe:debian-12`), if any. Blocking.
    pub fn image_by_source_sync(&self, source: &str) -> CoreResult<Option<Image>> {
        self.store.read(|c| {
            Ok(c.images()
                .find_by_source(source)?
                .map(|r| Self::image_model(r, vec![], &[])))
        })
    }

    /// The system account that owns built-in images, created on first use. Blocking.
    pub fn system_account_sync(&self) -> CoreResult<String> {
        let found: Option<_> = self
            .store
            .read(|c| Ok::<_, CoreError>(c.accounts().find(SYSTEM_ACCOUNT)?))?;
        if let Some(a) = found {
            return Ok(a.id);
        }
        Ok(self.create_account_sync(SYSTEM_ACCOUNT)?.0.id)
    }

    /// Images the account may see, with their tags.
    async fn visible_images(&self, account: &str) -> CoreResult<Vec<(Image, Vec<String>)>> {
        let account = account.to_string();
        self.blocking(move |s| {
            s.read(|c| {
                let mut out = Vec::new();
                let rows = c.images().visible_to(&account)?;
                let devices = c.images().block_devices()?;
                let mut own_tags = c.tags().all_by_resource(&account)?;
                for r in rows {
                    let perms = c.images().launch_permissions(&r.id)?;
                    // Tags are private to their owner, as on AWS.
                    let tags = if r.account_id == account {
                        own_tags.remove(&r.id).unwrap_or_default()
                    } else {
                        vec![]
                    };
                    out.push((Self::image_model(r, tags, &devices), perms));
                }
                Ok(out)
            })
        })
        .await
    }

    /// The image `id` as `account` may use it, with its root filesystem path.
    pub(crate) async fn launchable_image(
        &self,
        account: &str,
        id: &str,
    ) -> CoreResult<(Image, String)> {
        let (acct, iid) = (account.to_string(), image_id(id)?);
        let found = self
            .blocking(move |s| {
                s.read(|c| {
                    let Some(r) = c.images().get(iid.as_str())? else {
                        return Ok(None);
                    };
                    // As in `db::visible_to`: another account's failed image is not there.
                    let visible = r.account_id == acct
                        || (r.state != ImageState::Failed
                            && (r.public
                                || c.images().launch_permissions(iid.as_str())?.contains(&acct)));
                    let devices = c.images().block_devices()?;
                    Ok(visible.then_some((r, devices)))
                })
            })
            .await?;
        let Some((r, devices)) = found else {
            return Err(not_found(id));
        };
        if r.state != ImageState::Available || r.rootfs.is_none() {
            return Err(ApiError::new(
                ErrorCode::InvalidAMIIDUnavailable,
                format!("Image {id} is not available (state {})", r.state),
            )
            .into());
        }
        let rootfs = r.rootfs.clone().unwrap_or_default();
        Ok((Self::image_model(r, vec![], &devices), rootfs))
    }

    pub(crate) async fn describe_images(
        &self,
        account: String,
        ids: Vec<String>,
        owners: Vec<String>,
        executable_users: Vec<String>,
        filters: Vec<Filter>,
        page: Page,
    ) -> CoreResult<Response> {
        describe::validate_filters(&filters, IMAGE_FILTERS, true)?;
        let ids = ids
            .iter()
            .map(|id| image_id(id))
            .collect::<CoreResult<Vec<_>>>()?;
        let has = |id: &str| ids.iter().any(|i| i.as_str() == id);
        let all = self.visible_images(&account).await?;
        if let Some(missing) = ids
            .iter()
            .find(|id| !all.iter().any(|(i, _)| i.id == id.as_str()))
        {
            return Err(not_found(missing.as_str()));
        }
        let owner_ok = |i: &Image| {
            owners.is_empty()
                || owners.iter().any(|o| match o.as_str() {
                    "self" => i.owner_id == account,
                    "all" => true,
                    alias if !alias.chars().all(|c| c.is_ascii_digit()) => {
                        i.owner_alias.as_deref() == Some(alias)
                    }
                    id => i.owner_id == id,
                })
        };
        let exec_ok = |i: &Image, perms: &[String]| {
            executable_users.is_empty()
                || executable_users.iter().any(|u| match u.as_str() {
                    "all" => i.public,
                    "self" => i.owner_id == account || i.public || perms.contains(&account),
                    id => perms.iter().any(|p| p == id) || i.public,
                })
        };
        let items: Vec<Image> = all
            .into_iter()
            .filter(|(i, _)| ids.is_empty() || has(&i.id))
            .filter(|(i, _)| owner_ok(i))
            .filter(|(i, p)| exec_ok(i, p))
            .map(|(i, _)| i)
            .filter(|i| describe::matches(i, &filters))
            .collect();
        let (images, next_token) = describe::paginate(items, |i| i.id.clone(), &page)?;
        Ok(Response::DescribeImages { images, next_token })
    }

    /// The image `id` if `account` owns it; `AuthFailure` if it can see but not own it.
    async fn owned_image(&self, account: &str, id: &str) -> CoreResult<Image> {
        let id = image_id(id)?;
        let all = self.visible_images(account).await?;
        match all.into_iter().find(|(i, _)| i.id == id.as_str()) {
            None => Err(not_found(id.as_str())),
            Some((i, _)) if i.owner_id != account => Err(ApiError::new(
                ErrorCode::AuthFailure,
                format!("Not authorized for image:{id}"),
            )
            .into()),
            Some((i, _)) => Ok(i),
        }
    }

    pub(crate) async fn deregister_image(
        &self,
        account: String,
        id: String,
    ) -> CoreResult<Response> {
        self.owned_image(&account, &id).await?;
        self.blocking(move |s| {
            s.write(|tx| {
                let row = tx.images().get(&id)?;
                tx.resources().delete(&account, &id)?;
                // Its snapshots stay; the root filesystem made from them goes once unused.
                if let Some(r) = row.filter(|r| r.source == crate::image_snapshots::SOURCE) {
                    tx.images().trash(&id, r.rootfs.as_deref())?;
                }
                Ok(())
            })
        })
        .await?;
        self.wake_agent();
        Ok(Response::Return)
    }

    pub(crate) async fn copy_image(
        &self,
        account: String,
        req: CopyRequest,
    ) -> CoreResult<Response> {
        let CopyRequest {
            source_id,
            source_region,
            name,
            description,
            copy_tags,
            specs,
        } = req;
        if source_region != self.region.name {
            return Err(ApiError::new(
                ErrorCode::InvalidParameterValue,
                format!(
                    "Invalid region: {source_region} (this cloud has only {})",
                    self.region.name
                ),
            )
            .into());
        }
        check_name(&name)?;
        let mut new_tags = tags::from_specifications(&specs, ResourceKind::Image)?;
        let (src, rootfs) = self.launchable_image(&account, &source_id).await?;
        if copy_tags && src.owner_id == account {
            let all = self.visible_images(&account).await?;
            if let Some((i, _)) = all.into_iter().find(|(i, _)| i.id == source_id) {
                for t in i.tags {
                    if !new_tags.iter().any(|n| n.key == t.key) {
                        new_tags.push(t);
                    }
                }
            }
        }
        let cloud = self.clone();
        let id = self
            .blocking(move |_| {
                cloud.register_image_sync(
                    &account,
                    NewImage {
                        name,
                        description: description.unwrap_or(src.description),
                        login_user: src.login_user,
                        root_size_gib: src.root_size_gib,
                        rootfs: Some(rootfs),
                        state: ImageState::Available,
                        public: false,
                        owner_alias: None,
                        source: "copy".into(),
                        source_instance_id: None,
                        source_image_id: Some(source_id),
                        tags: new_tags,
                    },
                )
            })
            .await?;
        Ok(Response::ImageId(id))
    }

    pub(crate) async fn modify_image_attribute(
        &self,
        account: String,
        id: String,
        change: ImageAttributeChange,
    ) -> CoreResult<Response> {
        self.owned_image(&account, &id).await?;
        match change {
            ImageAttributeChange::Description(d) => {
                self.blocking(move |s| s.write(|tx| Ok(tx.images().set_description(&id, &d)?)))
                    .await?;
            }
            ImageAttributeChange::LaunchPermission {
                add_users,
                remove_users,
                public,
            } => {
                for u in add_users.iter().chain(&remove_users) {
                    if u.len() != 12 || !u.chars().all(|c| c.is_ascii_digit()) {
                        return Err(ApiError::new(
                            ErrorCode::InvalidUserIDMalformed,
                            format!("User ID '{u}' is invalid"),
                        )
                        .into());
                    }
                }
                self.blocking(move |s| {
                    s.write(|tx| {
                        for u in &add_users {
                            tx.images().add_permission(&id, u)?;
                        }
                        for u in &remove_users {
                            tx.images().remove_permission(&id, u)?;
                        }
                        if let Some(p) = public {
                            tx.images().set_public(&id, p)?;
                        }
                        Ok(())
                    })
                })
                .await?;
            }
        }
        Ok(Response::Return)
    }

    pub(crate) async fn describe_image_attribute(
        &self,
        account: String,
        id: String,
        attribute: String,
    ) -> CoreResult<Response> {
        let img = self.owned_image(&account, &id).await?;
        let iid = id.clone();
        let users = self
            .blocking(move |s| s.read(|c| Ok(c.images().launch_permissions(&iid)?)))
            .await?;
        Ok(Response::DescribeImageAttribute {
            image_id: id,
            attribute,
            launch_permission_users: users,
            public: img.public,
            description: img.description,
        })
    }

    pub(crate) async fn reset_image_attribute(
        &self,
        account: String,
        id: String,
    ) -> CoreResult<Response> {
        self.owned_image(&account, &id).await?;
        self.blocking(move |s| {
            s.write(|tx| {
                tx.images().clear_permissions(&id)?;
                tx.images().set_public(&id, false)?;
                Ok(())
            })
        })
        .await?;
        Ok(Response::Return)
    }
}

impl Cloud {
    /// Give a built image its build's name and description (kept if the name is taken).
    /// Blocking.
    pub fn describe_built_image_sync(
        &self,
        id: &str,
        name: &str,
        description: &str,
    ) -> CoreResult<()> {
        self.store.write(|tx| {
            tx.images().set_name_if_free(id, name)?;
            tx.images().set_description(id, description)?;
            Ok(())
        })
    }
}

impl Cloud {
    /// Every registered image (for `gureum image list`). Blocking.
    pub fn all_images_sync(&self) -> CoreResult<Vec<Image>> {
        self.store.read(|c| {
            let devices = c.images().block_devices()?;
            Ok(c.images()
                .all()?
                .into_iter()
                .map(|r| Self::image_model(r, vec![], &devices))
                .collect())
        })
    }
}

impl Cloud {
    /// `CreateImage`: record a pending image at once, then copy the instance's root volume in
    /// the background. Without `NoReboot` a running instance's guest is stopped for the copy
    /// and started again (AWS reboots it for a consistent snapshot); its recorded state stays
    /// `running`.
    pub(crate) async fn create_image(
        &self,
        account: String,
        instance_id: String,
        name: String,
        description: Option<String>,
        no_reboot: bool,
        specs: Vec<TagSpecification>,
    ) -> CoreResult<Response> {
        check_name(&name)?;
        let mut image_tags = Vec::new();
        for s in &specs {
            match s.resource_type.as_str() {
                "image" => image_tags.extend(s.tags.iter().cloned()),
                "snapshot" => {}
                other => {
                    return Err(ApiError::new(
                        ErrorCode::InvalidParameterValue,
                        format!(
                            "'{other}' is not a valid taggable resource type for this operation."
                        ),
                    )
                    .into())
                }
            }
        }
        tags::validate(&image_tags)?;
        let Some(agent) = self.agent.clone() else {
            return Err(ApiError::new(
                ErrorCode::UnsupportedOperation,
                "this host runs no instances, so it cannot image one",
            )
            .into());
        };
        let rows = self.instance_rows(&account).await?;
        let Some((row, _)) = rows.into_iter().find(|(r, _)| r.id == instance_id) else {
            if ResourceId::parse(ResourceKind::Instance, &instance_id).is_none() {
                return Err(ApiError::new(
                    ErrorCode::InvalidInstanceIDMalformed,
                    format!("Invalid id: \"{instance_id}\" (expecting \"i-...\")"),
                )
                .into());
            }
            return Err(ApiError::new(
                ErrorCode::InvalidInstanceIDNotFound,
                format!("The instance ID '{instance_id}' does not exist"),
            )
            .into());
        };
        if row.state != InstanceState::Running && row.state != InstanceState::Stopped {
            return Err(ApiError::new(
                ErrorCode::IncorrectInstanceState,
                format!("Instance '{instance_id}' is not in a state from which it can be imaged."),
            )
            .into());
        }
        let cloud = self.clone();
        let (acct, nm) = (account.clone(), name.clone());
        let source_image = row.image_id.clone();
        let login_user = row.login_user.clone();
        let root_size = row.root_volume_gib;
        let iid = instance_id.clone();
        let image_id = self
            .blocking(move |_| {
                cloud.register_image_sync(
                    &acct,
                    NewImage {
                        name: nm,
                        description: description.unwrap_or_else(|| {
                            format!("Created from {iid}; login user: {login_user}")
                        }),
                        login_user,
                        root_size_gib: root_size,
                        rootfs: None,
                        state: ImageState::Pending,
                        public: false,
                        owner_alias: None,
                        source: "create-image".into(),
                        source_instance_id: Some(iid),
                        source_image_id: Some(source_image),
                        tags: image_tags,
                    },
                )
            })
            .await?;
        let cloud = self.clone();
        let id = image_id.clone();
        tokio::spawn(async move {
            // The host copies in its turn, holding the instance against its other work.
            let result = agent.image_instance(&instance_id, &id, no_reboot).await;
            if let Err(e) = &result {
                tracing::error!(image = %id, error = %e, "CreateImage failed");
            }
            let c = cloud.clone();
            let _ = cloud
                .blocking(move |_| c.finish_image_sync(&id, result))
                .await;
        });
        Ok(Response::ImageId(image_id))
    }
}

impl Cloud {
    /// Run one image action for the calling account (the dry-run check is
    /// [`Cloud::dispatch`]'s).
    pub(crate) async fn dispatch_images(&self, ctx: &Ctx, action: Action) -> CoreResult<Response> {
        let acct = ctx.account_id.clone();
        Ok(match action {
            Action::DescribeImages {
                image_ids,
                owners,
                executable_users,
                filters,
                page,
            } => {
                self.describe_images(acct, image_ids, owners, executable_users, filters, page)
                    .await?
            }
            Action::RegisterImage(req) => self.register_image(acct, *req).await?,
            Action::DeregisterImage { image_id } => self.deregister_image(acct, image_id).await?,
            Action::CopyImage {
                source_image_id,
                source_region,
                name,
                description,
                copy_image_tags,
                tag_specifications,
            } => {
                self.copy_image(
                    acct,
                    CopyRequest {
                        source_id: source_image_id,
                        source_region,
                        name,
                        description,
                        copy_tags: copy_image_tags,
                        specs: tag_specifications,
                    },
                )
                .await?
            }
            Action::CreateImage {
                instance_id,
                name,
                description,
                no_reboot,
                tag_specifications,
            } => {
                self.create_image(
                    acct,
                    instance_id,
                    name,
                    description,
                    no_reboot,
                    tag_specifications,
                )
                .await?
            }
            Action::ModifyImageAttribute { image_id, change } => {
                self.modify_image_attribute(acct, image_id, change).await?
            }
            Action::DescribeImageAttribute {
                image_id,
                attribute,
            } => {
                self.describe_image_attribute(acct, image_id, attribute)
                    .await?
            }
            Action::ResetImageAttribute { image_id, .. } => {
                self.reset_image_attribute(acct, image_id).await?
            }
        })
    }
}
