//! The console's reads and writes, each one typed [`Action`] run through
//! [`gureum_core::Cloud::dispatch`] for the signed-in account: the API's own services and
//! permission checks, so the console can never show or touch what the API would not.

use gureum_core::Ctx;
use gureum_ec2::ops as ec2;
use gureum_ec2::{Action, Request, Resource, Response};
use gureum_types::model::{
    Filter, Image, Instance, KeyPair, SecurityGroup, Snapshot, Subnet, Tag, TagSpecification,
    Volume, Vpc,
};
use gureum_types::ApiError;

use crate::session::Session;
use crate::Console;

pub fn filter(name: &str, values: &[&str]) -> Filter {
    Filter {
        name: name.to_string(),
        values: values.iter().map(|v| v.to_string()).collect(),
    }
}

pub fn tag_spec(resource_type: &str, tags: Vec<Tag>) -> Vec<TagSpecification> {
    if tags.is_empty() {
        return Vec::new();
    }
    vec![TagSpecification {
        resource_type: resource_type.to_string(),
        tags,
    }]
}

/// The value of the `Name` tag.
pub fn name_of(tags: &[Tag]) -> &str {
    tags.iter()
        .find(|t| t.key == "Name")
        .map(|t| t.value.as_str())
        .unwrap_or("")
}

fn unexpected(action: &str) -> ApiError {
    tracing::error!(action, "console: unexpected response variant");
    ApiError::internal()
}

impl Console {
    /// Run one resource's action as the session's account; that resource's result back.
    pub async fn call<A: Resource>(&self, s: &Session, action: A) -> Result<A::Response, ApiError> {
        let name = action.name();
        let r = self.dispatch(s, action.into()).await?;
        A::Response::try_from(r).map_err(|_| unexpected(name))
    }

    /// Run one action as the session's account.
    pub async fn dispatch(&self, s: &Session, action: Action) -> Result<Response, ApiError> {
        let name = action.name();
        let ctx = Ctx {
            account_id: s.account_id.clone(),
            request_id: format!("console-{}", &crate::session::random_token()[..16]),
        };
        match self
            .cloud()
            .dispatch(
                &ctx,
                Request {
                    action,
                    dry_run: false,
                },
            )
            .await
        {
            Ok(r) => Ok(r),
            Err(e) => {
                if !e.is_internal() {
                    tracing::debug!(error = %e, action = name, "console action refused");
                }
                Err(e.into_api(name))
            }
        }
    }

    pub async fn instances(
        &self,
        s: &Session,
        instance_ids: Vec<String>,
        filters: Vec<Filter>,
    ) -> Result<Vec<Instance>, ApiError> {
        match self
            .call(
                s,
                ec2::instances::Action::DescribeInstances {
                    instance_ids,
                    filters,
                    page: Default::default(),
                },
            )
            .await?
        {
            ec2::instances::Response::DescribeInstances { reservations, .. } => {
                Ok(reservations.into_iter().flat_map(|r| r.instances).collect())
            }
            _ => Err(unexpected("DescribeInstances")),
        }
    }

    pub async fn instance(&self, s: &Session, id: &str) -> Result<Instance, ApiError> {
        self.instances(s, vec![id.to_string()], vec![])
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| unexpected("DescribeInstances"))
    }

    pub async fn images(
        &self,
        s: &Session,
        image_ids: Vec<String>,
        owners: Vec<String>,
        executable_users: Vec<String>,
    ) -> Result<Vec<Image>, ApiError> {
        match self
            .call(
                s,
                ec2::images::Action::DescribeImages {
                    image_ids,
                    owners,
                    executable_users,
                    filters: vec![],
                    page: Default::default(),
                },
            )
            .await?
        {
            ec2::images::Response::DescribeImages { images, .. } => Ok(images),
            _ => Err(unexpected("DescribeImages")),
        }
    }

    /// The account's volumes matching `filters` (all: none); newest first.
    pub async fn volumes(
        &self,
        s: &Session,
        filters: Vec<Filter>,
    ) -> Result<Vec<Volume>, ApiError> {
        match self
            .call(
                s,
                ec2::volumes::Action::DescribeVolumes {
                    volume_ids: vec![],
                    filters,
                    page: Default::default(),
                },
            )
            .await?
        {
            ec2::volumes::Response::DescribeVolumes { mut volumes, .. } => {
                volumes.sort_by(|a, b| b.create_time.cmp(&a.create_time).then(a.id.cmp(&b.id)));
                Ok(volumes)
            }
            _ => Err(unexpected("DescribeVolumes")),
        }
    }

    /// The snapshots of `owners` (`self`; none: every snapshot the account may see) matching
    /// `filters`; newest first.
    pub async fn snapshots(
        &self,
        s: &Session,
        owners: Vec<String>,
        filters: Vec<Filter>,
    ) -> Result<Vec<Snapshot>, ApiError> {
        match self
            .call(
                s,
                ec2::snapshots::Action::DescribeSnapshots {
                    snapshot_ids: vec![],
                    owner_ids: owners,
                    restorable_by: vec![],
                    filters,
                    page: Default::default(),
                },
            )
            .await?
        {
            ec2::snapshots::Response::DescribeSnapshots { mut snapshots, .. } => {
                snapshots.sort_by(|a, b| b.start_time.cmp(&a.start_time).then(a.id.cmp(&b.id)));
                Ok(snapshots)
            }
            _ => Err(unexpected("DescribeSnapshots")),
        }
    }

    pub async fn key_pairs(&self, s: &Session) -> Result<Vec<KeyPair>, ApiError> {
        match self
            .call(
                s,
                ec2::key_pairs::Action::DescribeKeyPairs {
                    key_names: vec![],
                    key_pair_ids: vec![],
                    filters: vec![],
                    include_public_key: false,
                },
            )
            .await?
        {
            ec2::key_pairs::Response::DescribeKeyPairs { keys, .. } => Ok(keys),
            _ => Err(unexpected("DescribeKeyPairs")),
        }
    }

    pub async fn security_groups(
        &self,
        s: &Session,
        group_ids: Vec<String>,
    ) -> Result<Vec<SecurityGroup>, ApiError> {
        match self
            .call(
                s,
                ec2::security_groups::Action::DescribeSecurityGroups {
                    group_ids,
                    group_names: vec![],
                    filters: vec![],
                    page: Default::default(),
                },
            )
            .await?
        {
            ec2::security_groups::Response::DescribeSecurityGroups { groups, .. } => Ok(groups),
            _ => Err(unexpected("DescribeSecurityGroups")),
        }
    }

    pub async fn vpcs(&self, s: &Session) -> Result<Vec<Vpc>, ApiError> {
        match self
            .call(
                s,
                ec2::vpcs::Action::DescribeVpcs {
                    vpc_ids: vec![],
                    filters: vec![],
                    page: Default::default(),
                },
            )
            .await?
        {
            ec2::vpcs::Response::DescribeVpcs { vpcs, .. } => Ok(vpcs),
            _ => Err(unexpected("DescribeVpcs")),
        }
    }

    pub async fn subnets(&self, s: &Session) -> Result<Vec<Subnet>, ApiError> {
        match self
            .call(
                s,
                ec2::vpcs::Action::DescribeSubnets {
                    subnet_ids: vec![],
                    filters: vec![],
                    page: Default::default(),
                },
            )
            .await?
        {
            ec2::vpcs::Response::DescribeSubnets { subnets, .. } => Ok(subnets),
            _ => Err(unexpected("DescribeSubnets")),
        }
    }

    /// (zone name, zone id)
    pub async fn zones(&self, s: &Session) -> Result<Vec<(String, String)>, ApiError> {
        match self
            .call(
                s,
                ec2::catalogue::Action::DescribeAvailabilityZones {
                    zone_names: vec![],
                    zone_ids: vec![],
                    filters: vec![],
                },
            )
            .await?
        {
            ec2::catalogue::Response::DescribeAvailabilityZones { zones, .. } => Ok(zones
                .into_iter()
                .map(|z| (z.name.clone(), z.id.clone()))
                .collect()),
            _ => Err(unexpected("DescribeAvailabilityZones")),
        }
    }

    pub async fn console_output(&self, s: &Session, id: &str) -> Result<String, ApiError> {
        match self
            .call(
                s,
                ec2::instances::Action::GetConsoleOutput {
                    instance_id: id.to_string(),
                    latest: true,
                },
            )
            .await?
        {
            ec2::instances::Response::GetConsoleOutput { output, .. } => {
                use base64::Engine;
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(output.as_bytes())
                    .unwrap_or_default();
                // The console relay records the guest's terminal: CR LF line ends.
                Ok(String::from_utf8_lossy(&bytes).replace('\r', ""))
            }
            _ => Err(unexpected("GetConsoleOutput")),
        }
    }

    pub async fn image_shares(
        &self,
        s: &Session,
        image_id: &str,
    ) -> Result<(Vec<String>, bool), ApiError> {
        match self
            .call(
                s,
                ec2::images::Action::DescribeImageAttribute {
                    image_id: image_id.to_string(),
                    attribute: "launchPermission".into(),
                },
            )
            .await?
        {
            ec2::images::Response::DescribeImageAttribute {
                launch_permission_users,
                public,
                ..
            } => Ok((launch_permission_users, public)),
            _ => Err(unexpected("DescribeImageAttribute")),
        }
    }
}
