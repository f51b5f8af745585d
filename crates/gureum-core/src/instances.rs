//! Instances: the API side of the lifecycle. Every call validates everything first, then
//! records the user's intent in one transaction (a `pending`, `stopping` or `shutting-down`
//! row) before anything touches the host, and wakes the host agent ([`crate::agent`]), which
//! converges the host to the record. So the API answers fast (the boot continues
//! asynchronously, as on AWS), and a crash at any point leaves a record the agent finishes.

use std::collections::HashSet;
use std::net::Ipv4Addr;

use base64::Engine;
use gureum_ec2::ops::instances::{
    Action, InstanceAttributeValue, InstanceStatus, Reservation, Response, StateChange,
};
use gureum_ec2::ops::instances::{InstanceAttributeChange, RunInstances};
use gureum_ec2::Page;
use gureum_store::instances::{InstanceField, InstanceRow};
use gureum_store::volumes::VolumeRow;
use gureum_types::instance_types::{self, CATALOGUE};
use gureum_types::model::{Filter, Instance, Tag};
use gureum_types::{
    ApiError, ErrorCode, Hypervisor, InstanceId, InstanceState, ResourceId, ResourceKind,
    StateReason, Tenancy,
};
use ipnet::Ipv4Net;
use rand::Rng;

use crate::describe::{self, Describable};
use crate::vpcs::usable_range;
use crate::{aws_time, tags, Cloud, CoreError, CoreResult, Ctx};

/// The instance type of a launch that names none. AWS still defaults to `m1.small`, which
/// gureum does not offer; the free-tier type is the useful default.
pub const DEFAULT_INSTANCE_TYPE: &str = "t2.micro";
/// Seconds after reaching `running` during which status checks say `initializing`.
pub const STATUS_INITIALIZING_MS: i64 = 3_000;
/// How long a terminated instance stays visible.
pub const TERMINATED_VISIBLE_MS: i64 = 60 * 60 * 1000;

const INSTANCE_FILTERS: &[&str] = &[
    "instance-id",
    "instance-state-name",
    "instance-state-code",
    "instance-type",
    "image-id",
    "key-name",
    "availability-zone",
    "private-ip-address",
    "private-dns-name",
    "ip-address",
    "vpc-id",
    "subnet-id",
    "reservation-id",
    "architecture",
    "root-device-type",
    "root-device-name",
    "launch-index",
    "owner-id",
    "hypervisor",
    "client-token",
    "network-interface.mac-address",
    "network-interface.network-interface-id",
    "block-device-mapping.volume-id",
    "block-device-mapping.device-name",
    "block-device-mapping.status",
    "block-device-mapping.attach-time",
    "block-device-mapping.delete-on-termination",
    "virtualization-type",
    "platform-details",
];

struct View<'a>(&'a Instance, &'a str);

impl Describable for View<'_> {
    fn filter_values(&self, name: &str) -> Option<Vec<String>> {
        let i = self.0;
        let one = |s: &str| Some(vec![s.to_string()]);
        let bdm = |f: &dyn Fn(&gureum_types::model::VolumeAttachment) -> String| -> Vec<String> {
            i.block_devices.iter().map(f).collect()
        };
        match name {
            "instance-id" => one(&i.id),
            "instance-state-name" => one(i.state.as_str()),
            "instance-state-code" => one(&i.state.code().to_string()),
            "instance-type" => one(&i.instance_type),
            "image-id" => one(&i.image_id),
            "key-name" => Some(i.key_name.iter().cloned().collect()),
            "availability-zone" => one(&i.availability_zone),
            "private-ip-address" => one(&i.private_ip),
            "private-dns-name" => one(&i.private_dns_name(self.1)),
            "ip-address" => Some(i.public_ip.iter().cloned().collect()),
            "vpc-id" => one(&i.vpc_id),
            "subnet-id" => one(&i.subnet_id),
            "reservation-id" => one(&i.reservation_id),
            "architecture" => one(i.architecture.as_str()),
            "root-device-type" => one(i.root_device_type.as_str()),
            "root-device-name" => one("/dev/xvda"),
            "launch-index" => one(&i.launch_index.to_string()),
            "owner-id" => one(&i.owner_id),
            "hypervisor" => one(i.hypervisor.as_str()),
            "client-token" => Some(i.client_token.iter().cloned().collect()),
            "network-interface.mac-address" => one(&i.mac),
            "network-interface.network-interface-id" => one(&i.network_interface_id),
            "block-device-mapping.volume-id" => Some(bdm(&|a| a.volume_id.clone())),
            "block-device-mapping.device-name" => Some(bdm(&|a| a.device.clone())),
            "block-device-mapping.status" => Some(bdm(&|a| a.state.as_str().into())),
            "block-device-mapping.attach-time" => Some(bdm(&|a| a.attach_time.clone())),
            "block-device-mapping.delete-on-termination" => {
                Some(bdm(&|a| a.delete_on_termination.to_string()))
            }
            "virtualization-type" => one(i.virtualization_type.as_str()),
            "platform-details" => one("Linux/UNIX"),
            _ => None,
        }
    }
    fn tags(&self) -> &[Tag] {
        &self.0.tags
    }
}

/// `User initiated (2026-11-26 06:21:41 GMT)`, AWS's `StateTransitionReason`.
pub fn user_initiated(millis: i64) -> String {
    let t = aws_time(millis);
    format!("User initiated ({} {} GMT)", &t[..10], &t[11..19])
}

fn mac_string(mac: &str) -> String {
    mac.to_string()
}

fn new_mac() -> String {
    // AWS hands out locally administered unicast MACs; 0a: is the prefix seen most.
    let b: [u8; 5] = rand::thread_rng().gen();
    format!(
        "0a:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        b[0], b[1], b[2], b[3], b[4]
    )
}

pub(crate) fn instance_model(r: &InstanceRow, tags: Vec<Tag>) -> Instance {
    let t = instance_types::lookup(&r.instance_type);
    Instance {
        id: r.id.clone(),
        owner_id: r.account_id.clone(),
        reservation_id: r.reservation_id.clone(),
        image_id: r.image_id.clone(),
        instance_type: r.instance_type.clone(),
        key_name: r.key_name.clone(),
        state: r.state,
        state_transition_reason: r.transition_reason.clone(),
        state_reason: r.state_reason.clone(),
        launch_time: aws_time(r.launch_time),
        launch_index: r.launch_index,
        availability_zone: r.az.clone(),
        vpc_id: r.vpc_id.clone(),
        subnet_id: r.subnet_id.clone(),
        private_ip: r.private_ip.clone(),
        mac: mac_string(&r.mac),
        network_interface_id: r.eni_id.clone(),
        public_ip: r.public_ip.clone(),
        root_volume_id: r.root_volume_id.clone(),
        root_volume_gib: r.root_volume_gib,
        delete_on_termination: r.delete_on_termination,
        // Replaced by its volume records where it has them (see `with_volumes`).
        block_devices: vec![crate::root_volumes::legacy_root(
            &r.id,
            &r.root_volume_id,
            r.launch_time,
            r.delete_on_termination,
        )],
        shutdown_behavior: r.shutdown_behavior,
        disable_api_termination: r.disable_api_termination,
        client_token: r.client_token.clone(),
        vcpus: t.map(|t| t.default_vcpus).unwrap_or(1),
        cores: t.map(|t| t.default_cores).unwrap_or(1),
        threads_per_core: t.map(|t| t.default_threads_per_core).unwrap_or(1),
        hypervisor: r.hypervisor,
        architecture: crate::images::ARCHITECTURE,
        virtualization_type: crate::images::VIRTUALIZATION_TYPE,
        root_device_type: crate::images::ROOT_DEVICE_TYPE,
        // Every instance shares this host, whatever its VPC's tenancy says (as the API has
        // always answered).
        tenancy: Tenancy::Default,
        metadata_http_tokens: r.md_http_tokens,
        metadata_http_endpoint: r.md_http_endpoint,
        metadata_hop_limit: r.md_hop_limit,
        security_groups: vec![],
        tags,
    }
}

/// The instance's block device mappings from its volume records, if it has any (instances
/// launched before root volumes were records keep the one `instance_model` made).
fn with_volumes(
    mut i: Instance,
    volumes: &std::collections::HashMap<String, Vec<VolumeRow>>,
) -> Instance {
    if let Some(v) = volumes.get(&i.id).filter(|v| v.iter().any(|v| v.root)) {
        i.block_devices = crate::root_volumes::block_devices(v);
    }
    i
}

fn with_groups(mut i: Instance, groups: &[(String, String)]) -> Instance {
    // Terminated instances leave their groups, as on AWS.
    if !i.state.is_gone() {
        i.security_groups = groups.to_vec();
    }
    i
}

pub(crate) fn check_instance_id(id: &str) -> CoreResult<()> {
    if InstanceId::parse(id).is_none() {
        return Err(ApiError::new(
            ErrorCode::InvalidInstanceIDMalformed,
            format!("Invalid id: \"{id}\" (expecting \"i-...\")"),
        )
        .into());
    }
    Ok(())
}

/// The ids a call names, checked in order: the first malformed one is EC2's
/// `InvalidInstanceID.Malformed`.
fn instance_ids(ids: &[String]) -> CoreResult<Vec<InstanceId>> {
    ids.iter()
        .map(|id| {
            InstanceId::parse(id).ok_or_else(|| {
                ApiError::new(
                    ErrorCode::InvalidInstanceIDMalformed,
                    format!("Invalid id: \"{id}\" (expecting \"i-...\")"),
                )
                .into()
            })
        })
        .collect()
}

fn has(ids: &[InstanceId], id: &str) -> bool {
    ids.iter().any(|i| i.as_str() == id)
}

pub(crate) fn not_found(ids: &[&str]) -> CoreError {
    let msg = if ids.len() == 1 {
        format!("The instance ID '{}' does not exist", ids[0])
    } else {
        format!("The instance IDs '{}' do not exist", ids.join(", "))
    };
    ApiError::new(ErrorCode::InvalidInstanceIDNotFound, msg).into()
}

fn incorrect_state(id: &str, what: &str) -> CoreError {
    ApiError::new(
        ErrorCode::IncorrectInstanceState,
        format!("The instance '{id}' is not in a state from which it can be {what}."),
    )
    .into()
}

impl Cloud {
    /// The account's instances (terminated ones included while visible), with tags.
    pub(crate) async fn instance_rows(
        &self,
        account: &str,
    ) -> CoreResult<Vec<(InstanceRow, Vec<Tag>)>> {
        Ok(self
            .instance_rows_with_groups(account)
            .await?
            .into_iter()
            .map(|(r, t, _)| (r, t))
            .collect())
    }

    /// The account's instances with their tags and security groups.
    pub(crate) async fn instance_rows_with_groups(
        &self,
        account: &str,
    ) -> CoreResult<Vec<(InstanceRow, Vec<Tag>, Vec<(String, String)>)>> {
        let account = account.to_string();
        self.blocking(move |s| {
            s.read(|c| {
                let mut groups = Cloud::instance_groups_tx(c, &account)?;
                let mut tags = c.tags().all_by_resource(&account)?;
                Ok(c.instances()
                    .of_account(&account)?
                    .into_iter()
                    .map(|r| {
                        let t = tags.remove(&r.id).unwrap_or_default();
                        let g = groups.remove(&r.id).unwrap_or_default();
                        (r, t, g)
                    })
                    .collect())
            })
        })
        .await
    }

    /// The account's volumes attached to its instances, by instance.
    pub(crate) async fn instance_volumes(
        &self,
        account: &str,
    ) -> CoreResult<std::collections::HashMap<String, Vec<VolumeRow>>> {
        let account = account.to_string();
        let rows = self
            .blocking(move |s| s.read(|c| Ok(c.volumes().of_account(&account)?)))
            .await?;
        let mut out: std::collections::HashMap<String, Vec<VolumeRow>> = Default::default();
        for v in rows {
            if let Some(a) = &v.attachment {
                out.entry(a.instance_id.clone()).or_default().push(v);
            }
        }
        Ok(out)
    }

    /// Resolve ids (checked by [`instance_ids`]) to the account's rows, in the order given
    /// without repeats; `InvalidInstanceID.NotFound` naming every missing one.
    async fn resolve(&self, account: &str, ids: &[InstanceId]) -> CoreResult<Vec<InstanceRow>> {
        let rows = self.instance_rows(account).await?;
        let missing: Vec<&str> = ids
            .iter()
            .map(InstanceId::as_str)
            .filter(|id| !rows.iter().any(|(r, _)| r.id == *id))
            .collect();
        if !missing.is_empty() {
            return Err(not_found(&missing));
        }
        let mut seen = HashSet::new();
        Ok(ids
            .iter()
            .filter(|id| seen.insert(id.as_str()))
            .filter_map(|id| {
                rows.iter()
                    .find(|(r, _)| r.id == id.as_str())
                    .map(|(r, _)| r.clone())
            })
            .collect())
    }

    /// [`Cloud::resolve`] of the one instance a call names.
    async fn resolve_one(&self, account: &str, id: &str) -> CoreResult<InstanceRow> {
        let ids = instance_ids(&[id.to_string()])?;
        let mut rows = self.resolve(account, &ids).await?;
        Ok(rows.remove(0))
    }

    pub(crate) async fn run_instances(
        &self,
        account: String,
        req: RunInstances,
    ) -> CoreResult<Response> {
        // Idempotency first: a replayed token returns the original reservation.
        if let Some(token) = &req.client_token {
            if token.len() > 64 {
                return Err(ApiError::invalid_value(
                    "ClientToken",
                    token,
                    "Length exceeds maximum of 64 characters.",
                )
                .into());
            }
            let (a, t) = (account.clone(), token.clone());
            let existing = self
                .blocking(move |s| s.read(|c| Ok(c.instances().by_client_token(&a, &t)?)))
                .await?;
            if let Some(first) = existing.first() {
                if first.request_hash.as_deref() != Some(req.fingerprint.as_str()) {
                    return Err(ApiError::new(
                        ErrorCode::IdempotentParameterMismatch,
                        "Arguments on this idempotent request are inconsistent with arguments used in previous request(s).",
                    )
                    .into());
                }
                return self
                    .reservation_response(&account, &first.reservation_id)
                    .await;
            }
        }

        let instance_type = req
            .instance_type
            .clone()
            .unwrap_or_else(|| DEFAULT_INSTANCE_TYPE.into());
        let Some(itype) = instance_types::lookup(&instance_type) else {
            return Err(ApiError::new(
                ErrorCode::InvalidParameterValue,
                format!("Invalid value '{instance_type}' for InstanceType."),
            )
            .into());
        };
        let mut instance_tags = Vec::new();
        let mut volume_tags = Vec::new();
        for spec in &req.tag_specifications {
            match spec.resource_type.as_str() {
                "instance" => instance_tags.extend(spec.tags.iter().cloned()),
                "volume" => volume_tags.extend(spec.tags.iter().cloned()),
                "network-interface" => {}
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
        tags::validate(&instance_tags)?;
        tags::validate(&volume_tags)?;
        let hypervisor = choose_hypervisor(&mut instance_tags, self.default_hypervisor)?;
        let shutdown_behavior = req.shutdown_behavior.unwrap_or_default();

        let (image, rootfs) = self.launchable_image(&account, &req.image_id).await?;

        // Its volumes: the root volume's size, type and DeleteOnTermination, and the extra
        // EBS volumes the mappings ask for.
        let volume_plan =
            crate::root_volumes::plan(&req.block_devices, &image.id, image.root_size_gib)?;
        let volume_gib = volume_plan.root_gib;
        let delete_on_termination = volume_plan.root.delete_on_termination;
        if !volume_plan.extra.is_empty() && !self.volumes_enabled() {
            return Err(ApiError::new(
                ErrorCode::InsufficientVolumeCapacity,
                "There is currently insufficient capacity to create the volume: this host has \
                 no volume storage.",
            )
            .into());
        }

        // Key pair: its public key is copied into the instance, as on AWS.
        let public_key = match &req.key_name {
            None => None,
            Some(name) => {
                let (a, n) = (account.clone(), name.clone());
                let key = self
                    .blocking(move |s| {
                        s.read(|c| Ok(c.key_pairs().list(&a)?.into_iter().find(|k| k.name == n)))
                    })
                    .await?;
                match key {
                    Some(k) => Some(k.public_key),
                    None => {
                        return Err(ApiError::new(
                            ErrorCode::InvalidKeyPairNotFound,
                            format!("The key pair '{name}' does not exist"),
                        )
                        .into())
                    }
                }
            }
        };

        if req.private_ip_address.is_some() && req.max_count > 1 {
            return Err(ApiError::new(
                ErrorCode::InvalidParameterCombination,
                "Cannot specify a private IP address when launching more than one instance",
            )
            .into());
        }

        // A host that cannot run this hypervisor answers at once, not with an instance left
        // `pending` that nothing will ever start.
        if let Some(why) = self.unavailable.reason(hypervisor) {
            return Err(no_capacity_here(why).into());
        }
        self.ensure_default_vpc(&account).await?;
        let now = self.clock.now_millis();
        let limits = self.limits.clone();
        let region = self.region.clone();
        let reservation_id = ResourceId::generate(ResourceKind::Reservation).to_string();
        let rid = reservation_id.clone();
        let acct = account.clone();
        let warm = match hypervisor {
            Hypervisor::Container => self.agent.clone(),
            Hypervisor::Vm => None,
        };
        if let Some(agent) = &self.agent {
            agent.note_launch();
        }
        self.blocking(move |s| {
            s.write(|tx| {
                // Subnet: the one asked for, or the default subnet of the asked zone (first
                // zone otherwise).
                let subnets = tx.vpcs().subnets(&acct)?;
                let subnet = match (&req.subnet_id, &req.availability_zone) {
                    (Some(sid), _) => subnets.iter().find(|s| &s.id == sid).ok_or_else(|| {
                        CoreError::Api(ApiError::new(
                            ErrorCode::InvalidSubnetIDNotFound,
                            format!("The subnet ID '{sid}' does not exist"),
                        ))
                    })?,
                    (None, Some(az)) => {
                        if !region.zones.iter().any(|z| &z.name == az) {
                            return Err(ApiError::new(
                                ErrorCode::InvalidParameterValue,
                                format!("Invalid availability zone: [{az}]"),
                            )
                            .into());
                        }
                        subnets.iter().find(|s| &s.az == az && s.default_for_az).ok_or_else(|| {
                            CoreError::missing("default subnet of zone", az)
                        })?
                    }
                    (None, None) => subnets
                        .iter()
                        .filter(|s| s.default_for_az)
                        .min_by(|a, b| a.az.cmp(&b.az))
                        .ok_or_else(|| CoreError::Invariant("a default VPC without default subnets"))?,
                };
                if let (Some(sid), Some(az)) = (&req.subnet_id, &req.availability_zone) {
                    if &subnet.az != az {
                        return Err(ApiError::new(
                            ErrorCode::InvalidParameterCombination,
                            format!("The subnet {sid} is not in availability zone {az}"),
                        )
                        .into());
                    }
                }
                let groups = Cloud::launch_groups_tx(
                    tx,
                    &acct,
                    &subnet.vpc_id,
                    &subnet.id,
                    &req.security_group_ids,
                    &req.security_groups,
                )?;
                // A non-default VPC gets its own bridge on this host, with the host routing to
                // it: its address range may not overlap another VPC's that has live instances.
                let vpc = tx.vpcs().vpcs(&acct)?
                    .into_iter()
                    .find(|v| v.id == subnet.vpc_id)
                    .ok_or_else(|| CoreError::missing("vpc of subnet", &subnet.id))?;
                {
                    let mine: Ipv4Net = vpc
                        .cidr
                        .parse()
                        .map_err(|_| CoreError::corrupt("vpc cidr", &vpc.cidr))?;
                    for (other, other_cidr, other_default) in tx.instances().live_vpc_cidrs()? {
                        if other_default && vpc.is_default {
                            // Default VPCs share one host network and address space.
                            continue;
                        }
                        let Ok(theirs) = other_cidr.parse::<Ipv4Net>() else {
                            continue;
                        };
                        let overlap =
                            mine.contains(&theirs.network()) || theirs.contains(&mine.network());
                        if other != vpc.id && overlap {
                            return Err(ApiError::new(
                                ErrorCode::InsufficientInstanceCapacity,
                                format!(
                                    "This host already runs instances of another VPC whose address range ({theirs}) overlaps {mine}; gureum routes every VPC of a host, so overlapping VPCs cannot run at the same time. Use another CIDR block."
                                ),
                            )
                            .into());
                        }
                    }
                }
                let cidr: Ipv4Net = subnet
                    .cidr
                    .parse()
                    .map_err(|_| CoreError::corrupt("subnet cidr", &subnet.cidr))?;

                // Capacity: the account's limit, then the host's.
                let all = tx.instances().all()?;
                let live = |r: &&InstanceRow| r.state != InstanceState::Terminated;
                let mine = all.iter().filter(live).filter(|r| r.account_id == acct).count();
                let on_host = all.iter().filter(live).count();
                let room = limits.instances_per_account.saturating_sub(mine);
                if (req.min_count as usize) > room {
                    return Err(ApiError::new(
                        ErrorCode::InstanceLimitExceeded,
                        format!(
                            "You have requested more instances ({}) than your current instance limit of {} allows for the specified instance type. Please visit http://aws.amazon.com/contact-us/ec2-request to request an adjustment to this limit.",
                            req.min_count, limits.instances_per_account
                        ),
                    )
                    .into());
                }
                let host_room = limits.instances_per_host.saturating_sub(on_host);
                if (req.min_count as usize) > host_room {
                    return Err(ApiError::new(
                        ErrorCode::InsufficientInstanceCapacity,
                        format!("We currently do not have sufficient {instance_type} capacity in the Availability Zone you requested ({}). Our system will be working on provisioning additional capacity.", subnet.az),
                    )
                    .into());
                }
                let count = (req.max_count as usize).min(room).min(host_room);

                // Addresses: the one asked for, or the lowest free ones of the subnet.
                let in_use: HashSet<u32> = tx.instances().ips_in_use()?
                    .iter()
                    .filter_map(|ip| ip.parse::<Ipv4Addr>().ok())
                    .map(u32::from)
                    .collect();
                let mut used: HashSet<u32> = tx.instances().ips_recently_used()?
                    .iter()
                    .filter_map(|ip| ip.parse::<Ipv4Addr>().ok())
                    .map(u32::from)
                    .collect();
                let (lo, hi) = usable_range(&cidr);
                let mut ips = Vec::new();
                if let Some(ip) = &req.private_ip_address {
                    let addr: Ipv4Addr = ip.parse().map_err(|_| {
                        CoreError::Api(ApiError::invalid_value("PrivateIpAddress", ip, "Expected an IPv4 address."))
                    })?;
                    let n = u32::from(addr);
                    if !(lo..=hi).contains(&n) {
                        return Err(ApiError::new(
                            ErrorCode::InvalidParameterValue,
                            format!("Address {ip} does not fall within the subnet's address range"),
                        )
                        .into());
                    }
                    if in_use.contains(&n) {
                        return Err(ApiError::new(
                            ErrorCode::InvalidIPAddressInUse,
                            format!("Address {ip} is in use."),
                        )
                        .into());
                    }
                    ips.push(addr);
                } else {
                    let mut n = lo;
                    while ips.len() < count && n <= hi {
                        if used.insert(n) {
                            ips.push(Ipv4Addr::from(n));
                        }
                        n += 1;
                    }
                    // A subnet that has been through all its addresses: reuse the ones only
                    // terminated instances still list.
                    let mut n = lo;
                    while ips.len() < count && n <= hi {
                        let ip = Ipv4Addr::from(n);
                        if !in_use.contains(&n) && !ips.contains(&ip) {
                            ips.push(ip);
                        }
                        n += 1;
                    }
                    if ips.len() < req.min_count as usize {
                        return Err(ApiError::new(
                            ErrorCode::InsufficientInstanceCapacity,
                            format!("There are not enough free addresses in subnet '{}' to satisfy the requested number of instances.", subnet.id),
                        )
                        .into());
                    }
                }

                for (index, ip) in ips.into_iter().enumerate() {
                    // A warm guest of this image, if one is ready: its id becomes the instance's.
                    let id = warm
                        .as_ref()
                        .and_then(|w| w.take_warm_guest(&rootfs, volume_gib))
                        .unwrap_or_else(|| ResourceId::generate(ResourceKind::Instance).to_string());
                    let eni = ResourceId::generate(ResourceKind::NetworkInterface).to_string();
                    let vol = ResourceId::generate(ResourceKind::Volume).to_string();
                    tx.resources().insert(&id, &acct, "instance", now)?;
                    tx.resources().insert(&eni, &acct, "network-interface", now)?;
                    tx.resources().insert(&vol, &acct, "volume", now)?;
                    tx.instances().insert(&InstanceRow {
                            id: id.clone(),
                            account_id: acct.clone(),
                            reservation_id: rid.clone(),
                            image_id: image.id.clone(),
                            rootfs: rootfs.clone(),
                            instance_type: itype.name.to_string(),
                            key_name: req.key_name.clone(),
                            public_key: public_key.clone(),
                            login_user: image.login_user.clone(),
                            state: InstanceState::Pending,
                            generation: 0,
                            state_since: now,
                            transition_reason: String::new(),
                            state_reason: None,
                            launch_time: now,
                            launch_index: index as u32,
                            subnet_id: subnet.id.clone(),
                            vpc_id: subnet.vpc_id.clone(),
                            az: subnet.az.clone(),
                            private_ip: ip.to_string(),
                            mac: new_mac(),
                            eni_id: eni,
                            root_volume_id: vol.clone(),
                            root_volume_gib: volume_gib,
                            delete_on_termination,
                            shutdown_behavior,
                            disable_api_termination: req.disable_api_termination,
                            user_data: req.user_data.clone(),
                            client_token: req.client_token.clone(),
                            request_hash: Some(req.fingerprint.clone()),
                            hypervisor,
                            md_http_tokens: req.metadata_http_tokens.unwrap_or_default(),
                            md_http_endpoint: req.metadata_http_endpoint.unwrap_or_default(),
                            md_hop_limit: req.metadata_hop_limit.unwrap_or(1),
                            reboot_requested: false,
                            force_stop: false,
                            first_boot_done: false,
                            ended_at: None,
                            public_ip: None,
                            auto_public_ip: req.associate_public_ip.unwrap_or(subnet.map_public_ip),
                        },
                    )?;
                    tx.tags().put(&acct, &id, &instance_tags)?;
                    crate::root_volumes::record(
                        tx,
                        &acct,
                        &subnet.az,
                        &id,
                        &vol,
                        &volume_plan,
                        &volume_tags,
                        now,
                    )?;
                    tx.security_groups().set_instance_groups(&id, &groups)?;
                }
                Ok(())
            })
        })
        .await?;
        self.wake_agent();
        self.reservation_response(&account, &reservation_id).await
    }

    async fn reservation_response(
        &self,
        account: &str,
        reservation_id: &str,
    ) -> CoreResult<Response> {
        let rows = self.instance_rows_with_groups(account).await?;
        let volumes = self.instance_volumes(account).await?;
        let instances = rows
            .iter()
            .filter(|(r, _, _)| r.reservation_id == reservation_id)
            .map(|(r, t, g)| with_volumes(with_groups(instance_model(r, t.clone()), g), &volumes))
            .collect();
        Ok(Response::RunInstances {
            reservation: Reservation {
                id: reservation_id.to_string(),
                owner_id: account.to_string(),
                instances,
            },
            region: self.region.name.clone(),
        })
    }

    pub(crate) async fn describe_instances(
        &self,
        account: String,
        ids: Vec<String>,
        filters: Vec<Filter>,
        page: Page,
    ) -> CoreResult<Response> {
        describe::validate_filters(&filters, INSTANCE_FILTERS, true)?;
        let ids = instance_ids(&ids)?;
        if !ids.is_empty() {
            self.resolve(&account, &ids).await?;
        }
        let rows = self.instance_rows_with_groups(&account).await?;
        let volumes = self.instance_volumes(&account).await?;
        let region = self.region.name.clone();
        let items: Vec<Instance> = rows
            .iter()
            .filter(|(r, _, _)| ids.is_empty() || has(&ids, &r.id))
            .map(|(r, t, g)| with_volumes(with_groups(instance_model(r, t.clone()), g), &volumes))
            .filter(|i| describe::matches(&View(i, &region), &filters))
            .collect();
        let (page_items, next_token) = describe::paginate(items, |i| i.id.clone(), &page)?;
        // Group by reservation, in the order reservations first appear.
        let mut reservations: Vec<Reservation> = Vec::new();
        for i in page_items {
            match reservations.iter_mut().find(|r| r.id == i.reservation_id) {
                Some(r) => r.instances.push(i),
                None => reservations.push(Reservation {
                    id: i.reservation_id.clone(),
                    owner_id: i.owner_id.clone(),
                    instances: vec![i],
                }),
            }
        }
        Ok(Response::DescribeInstances {
            reservations,
            region,
            next_token,
        })
    }

    /// Apply a user transition to several instances atomically: every instance is checked
    /// first, then all change in one transaction.
    async fn transition_all(
        &self,
        account: String,
        ids: Vec<String>,
        plan: impl Fn(&InstanceRow, InstanceState) -> CoreResult<InstanceState> + Send + 'static,
        extra: Option<InstanceField<'static>>,
        reason: Option<StateReason>,
    ) -> CoreResult<Vec<StateChange>> {
        let rows = self.resolve(&account, &instance_ids(&ids)?).await?;
        let now = self.clock.now_millis();
        let mut planned = Vec::new();
        for r in &rows {
            let cur = r.state;
            planned.push((r.clone(), cur, plan(r, cur)?));
        }
        let changes = self
            .blocking(move |s| {
                s.write(|tx| {
                    let mut out = Vec::new();
                    for (r, cur, next) in &planned {
                        if next != cur {
                            let ok = tx.instances().transition(&r.id,
                                r.generation,
                                *next,
                                Some(&user_initiated(now)),
                                reason.as_ref(),
                                None,
                                now,
                            )?;
                            if !ok {
                                // Someone changed it since we read it: ask the caller to retry,
                                // as AWS does under concurrent modification.
                                return Err(ApiError::new(
                                    ErrorCode::IncorrectInstanceState,
                                    format!("The instance '{}' changed state during the request; try again.", r.id),
                                )
                                .into());
                            }
                            if let Some(field) = extra {
                                tx.instances().set_field(&r.id, field)?;
                            }
                        }
                        out.push(StateChange {
                            instance_id: r.id.clone(),
                            previous: *cur,
                            current: *next,
                        });
                    }
                    Ok(out)
                })
            })
            .await?;
        self.wake_agent();
        Ok(changes)
    }

    pub(crate) async fn start_instances(
        &self,
        account: String,
        ids: Vec<String>,
    ) -> CoreResult<Response> {
        let unavailable = self.unavailable.clone();
        let changes = self
            .transition_all(
                account,
                ids,
                move |r, cur| {
                    let next = cur
                        .on_start()
                        .ok_or_else(|| incorrect_state(&r.id, "started"))?;
                    match unavailable.reason(r.hypervisor) {
                        Some(why) if next != cur => Err(no_capacity_here(why).into()),
                        _ => Ok(next),
                    }
                },
                None,
                None,
            )
            .await?;
        Ok(Response::StateChanges(changes))
    }

    pub(crate) async fn stop_instances(
        &self,
        account: String,
        ids: Vec<String>,
        force: bool,
    ) -> CoreResult<Response> {
        let changes = self
            .transition_all(
                account,
                ids,
                |r, cur| {
                    cur.on_stop()
                        .ok_or_else(|| incorrect_state(&r.id, "stopped"))
                },
                force.then_some(InstanceField::ForceStop(true)),
                Some(StateReason::user_initiated_shutdown()),
            )
            .await?;
        Ok(Response::StateChanges(changes))
    }

    pub(crate) async fn terminate_instances(
        &self,
        account: String,
        ids: Vec<String>,
    ) -> CoreResult<Response> {
        let changes = self
            .transition_all(
                account,
                ids,
                |r, cur| {
                    if r.disable_api_termination && cur != InstanceState::Terminated {
                        return Err(ApiError::new(
                            ErrorCode::OperationNotPermitted,
                            format!("The instance '{}' may not be terminated. Modify its 'disableApiTermination' instance attribute and try again.", r.id),
                        )
                        .into());
                    }
                    Ok(cur.on_terminate())
                },
                None,
                Some(StateReason::user_initiated_shutdown()),
            )
            .await?;
        Ok(Response::StateChanges(changes))
    }

    pub(crate) async fn reboot_instances(
        &self,
        account: String,
        ids: Vec<String>,
    ) -> CoreResult<Response> {
        let rows = self.resolve(&account, &instance_ids(&ids)?).await?;
        for r in &rows {
            let cur = r.state;
            if !cur.can_reboot() {
                return Err(incorrect_state(&r.id, "rebooted"));
            }
        }
        self.blocking(move |s| {
            s.write(|tx| {
                for r in &rows {
                    tx.instances()
                        .set_field(&r.id, InstanceField::RebootRequested(true))?;
                }
                Ok(())
            })
        })
        .await?;
        self.wake_agent();
        Ok(Response::Return)
    }

    pub(crate) async fn describe_instance_status(
        &self,
        account: String,
        ids: Vec<String>,
        filters: Vec<Filter>,
        include_all: bool,
        page: Page,
    ) -> CoreResult<Response> {
        describe::validate_filters(
            &filters,
            &[
                "instance-id",
                "instance-state-name",
                "instance-state-code",
                "availability-zone",
                "instance-status.status",
                "system-status.status",
                "instance-status.reachability",
                "system-status.reachability",
            ],
            false,
        )?;
        let ids = instance_ids(&ids)?;
        if !ids.is_empty() {
            self.resolve(&account, &ids).await?;
        }
        let now = self.clock.now_millis();
        let rows = self.instance_rows(&account).await?;
        let zones = self.region.zones.clone();
        struct S(InstanceStatus);
        impl Describable for S {
            fn filter_values(&self, name: &str) -> Option<Vec<String>> {
                let s = &self.0;
                Some(vec![match name {
                    "instance-id" => s.instance_id.clone(),
                    "instance-state-name" => s.state.as_str().into(),
                    "instance-state-code" => s.state.code().to_string(),
                    "availability-zone" => s.availability_zone.clone(),
                    "instance-status.status" => s.instance_status.clone(),
                    "system-status.status" => s.system_status.clone(),
                    "instance-status.reachability" | "system-status.reachability" => {
                        if s.instance_status == "ok" {
                            "passed".into()
                        } else {
                            "initializing".into()
                        }
                    }
                    _ => return None,
                }])
            }
        }
        let items: Vec<S> = rows
            .iter()
            .filter(|(r, _)| ids.is_empty() || has(&ids, &r.id))
            .filter(|(r, _)| r.state != InstanceState::Terminated || has(&ids, &r.id))
            .filter(|(r, _)| include_all || r.state == InstanceState::Running)
            .map(|(r, _)| {
                let state = r.state;
                let status = if state != InstanceState::Running {
                    "not-applicable"
                } else if now - r.state_since < STATUS_INITIALIZING_MS {
                    "initializing"
                } else {
                    "ok"
                };
                S(InstanceStatus {
                    instance_id: r.id.clone(),
                    availability_zone: r.az.clone(),
                    availability_zone_id: zones
                        .iter()
                        .find(|z| z.name == r.az)
                        .map(|z| z.id.clone())
                        .unwrap_or_default(),
                    state,
                    instance_status: status.into(),
                    system_status: status.into(),
                })
            })
            .filter(|s| describe::matches(s, &filters))
            .collect();
        let (items, next_token) = describe::paginate(items, |s| s.0.instance_id.clone(), &page)?;
        Ok(Response::DescribeInstanceStatus {
            statuses: items.into_iter().map(|s| s.0).collect(),
            next_token,
        })
    }

    pub(crate) async fn get_console_output(
        &self,
        account: String,
        id: String,
    ) -> CoreResult<Response> {
        let r = &self.resolve_one(&account, &id).await?;
        let output = match &self.agent {
            Some(a) => a.console_output(&r.id, 64 * 1024).await,
            None => Vec::new(),
        };
        Ok(Response::GetConsoleOutput {
            instance_id: id,
            timestamp: aws_time(self.clock.now_millis()),
            output: base64::engine::general_purpose::STANDARD.encode(output),
        })
    }

    pub(crate) async fn modify_instance_attribute(
        &self,
        account: String,
        id: String,
        change: InstanceAttributeChange,
    ) -> CoreResult<Response> {
        let r = self.resolve_one(&account, &id).await?;
        let must_be_stopped = || -> CoreResult<()> {
            if r.state != InstanceState::Stopped {
                return Err(ApiError::new(
                    ErrorCode::IncorrectInstanceState,
                    format!("The instance '{}' is not in the 'stopped' state.", r.id),
                )
                .into());
            }
            Ok(())
        };
        match change {
            InstanceAttributeChange::InstanceType(t) => {
                must_be_stopped()?;
                if !CATALOGUE.iter().any(|c| c.name == t) {
                    return Err(ApiError::new(
                        ErrorCode::InvalidInstanceAttributeValue,
                        format!("The instanceType '{t}' is invalid."),
                    )
                    .into());
                }
                self.blocking(move |s| {
                    s.write(|tx| {
                        Ok(tx
                            .instances()
                            .set_field(&id, InstanceField::InstanceType(&t))?)
                    })
                })
                .await?;
            }
            InstanceAttributeChange::UserData(d) => {
                must_be_stopped()?;
                if d.len() > gureum_ec2::ops::instances::MAX_USER_DATA {
                    return Err(ApiError::new(
                        ErrorCode::InvalidParameterValue,
                        "User data is limited to 16384 bytes",
                    )
                    .into());
                }
                let v = (!d.is_empty()).then_some(d);
                self.blocking(move |s| {
                    s.write(|tx| {
                        Ok(tx
                            .instances()
                            .set_field(&id, InstanceField::UserData(v.as_deref()))?)
                    })
                })
                .await?;
            }
            InstanceAttributeChange::DisableApiTermination(b) => {
                self.blocking(move |s| {
                    s.write(|tx| {
                        Ok(tx
                            .instances()
                            .set_field(&id, InstanceField::DisableApiTermination(b))?)
                    })
                })
                .await?;
            }
            InstanceAttributeChange::InstanceInitiatedShutdownBehavior(b) => {
                self.blocking(move |s| {
                    s.write(|tx| {
                        Ok(tx
                            .instances()
                            .set_field(&id, InstanceField::ShutdownBehavior(b))?)
                    })
                })
                .await?;
            }
            InstanceAttributeChange::DeleteOnTermination(devices) => {
                let (acct, now) = (account.clone(), self.clock.now_millis());
                self.blocking(move |s| {
                    s.write(|tx| {
                        crate::root_volumes::set_delete_on_termination(
                            tx, &acct, &id, &devices, now,
                        )
                    })
                })
                .await?;
            }
            InstanceAttributeChange::Groups(groups) => {
                let acct = account.clone();
                self.blocking(move |s| {
                    s.write(|tx| {
                        let row = tx
                            .instances()
                            .get(&id)?
                            .ok_or_else(|| CoreError::missing("instance", &id))?;
                        let ids = Cloud::launch_groups_tx(
                            tx,
                            &acct,
                            &row.vpc_id,
                            &row.subnet_id,
                            &groups,
                            &[],
                        )?;
                        tx.security_groups().set_instance_groups(&id, &ids)?;
                        Ok(())
                    })
                })
                .await?;
            }
        }
        self.wake_agent();
        Ok(Response::Return)
    }

    pub(crate) async fn describe_instance_attribute(
        &self,
        account: String,
        id: String,
        attribute: String,
    ) -> CoreResult<Response> {
        let r = &self.resolve_one(&account, &id).await?;
        let value = match attribute.as_str() {
            "instanceType" => InstanceAttributeValue::Value(Some(r.instance_type.clone())),
            "userData" => InstanceAttributeValue::Value(
                r.user_data
                    .as_ref()
                    .map(|d| base64::engine::general_purpose::STANDARD.encode(d)),
            ),
            "disableApiTermination" => InstanceAttributeValue::Bool(r.disable_api_termination),
            "instanceInitiatedShutdownBehavior" => {
                InstanceAttributeValue::Value(Some(r.shutdown_behavior.as_str().into()))
            }
            "rootDeviceName" => InstanceAttributeValue::Value(Some("/dev/xvda".into())),
            "sourceDestCheck" | "enaSupport" => InstanceAttributeValue::Bool(true),
            "ebsOptimized" | "disableApiStop" => InstanceAttributeValue::Bool(false),
            "groupSet" => {
                let rows = self.instance_rows_with_groups(&account).await?;
                InstanceAttributeValue::Groups(
                    rows.into_iter()
                        .find(|(x, _, _)| x.id == r.id)
                        .map(|(_, _, g)| g)
                        .unwrap_or_default(),
                )
            }
            "blockDeviceMapping" => InstanceAttributeValue::BlockDevices(with_volumes(
                instance_model(r, vec![]),
                &self.instance_volumes(&account).await?,
            )),
            _ => InstanceAttributeValue::Value(None),
        };
        Ok(Response::DescribeInstanceAttribute {
            instance_id: id,
            attribute,
            value,
        })
    }
}

/// The instance-type figures a driver enforces.
pub fn limits_of(instance_type: &str) -> (u32, u64) {
    instance_types::lookup(instance_type)
        .map(|t| (t.default_vcpus, t.memory_mib))
        .unwrap_or((1, 1024))
}

/// EC2's answer when no host can take an instance, with the reason this host gave.
fn no_capacity_here(why: &str) -> ApiError {
    ApiError::new(
        ErrorCode::InsufficientInstanceCapacity,
        format!("There is no capacity to run instances on this host: {why}."),
    )
}

/// The tag that asks for a hypervisor at launch, and shows the one an instance runs on.
pub const HYPERVISOR_TAG: &str = "gureum:hypervisor";
/// The launch's hypervisor: the `gureum:hypervisor` tag's value if given, else the host's
/// default. A VM always carries the tag (added when the default chose it), so tag filters find
/// VMs; a container carries it only when asked for, so container instances' tags stay exactly
/// what the user gave (DescribeInstances' `hypervisor` shows either).
pub(crate) fn choose_hypervisor(
    tags: &mut Vec<Tag>,
    default: Hypervisor,
) -> Result<Hypervisor, ApiError> {
    if let Some(t) = tags.iter().find(|t| t.key == HYPERVISOR_TAG) {
        return Hypervisor::parse(&t.value).ok_or_else(|| {
            ApiError::new(
                ErrorCode::InvalidParameterValue,
                format!(
                    "Invalid value '{}' for tag {HYPERVISOR_TAG}: use container or vm.",
                    t.value
                ),
            )
        });
    }
    match default {
        Hypervisor::Container => {}
        Hypervisor::Vm => tags.push(Tag {
            key: HYPERVISOR_TAG.into(),
            value: default.as_str().into(),
        }),
    }
    Ok(default)
}

impl Cloud {
    /// Run one instance action for the calling account (the dry-run check is
    /// [`Cloud::dispatch`]'s).
    pub(crate) async fn dispatch_instances(
        &self,
        ctx: &Ctx,
        action: Action,
    ) -> CoreResult<Response> {
        let acct = ctx.account_id.clone();
        Ok(match action {
            Action::RunInstances(req) => self.run_instances(acct, *req).await?,
            Action::DescribeInstances {
                instance_ids,
                filters,
                page,
            } => {
                self.describe_instances(acct, instance_ids, filters, page)
                    .await?
            }
            Action::StartInstances { instance_ids } => {
                self.start_instances(acct, instance_ids).await?
            }
            Action::StopInstances {
                instance_ids,
                force,
            } => self.stop_instances(acct, instance_ids, force).await?,
            Action::RebootInstances { instance_ids } => {
                self.reboot_instances(acct, instance_ids).await?
            }
            Action::TerminateInstances { instance_ids } => {
                self.terminate_instances(acct, instance_ids).await?
            }
            Action::DescribeInstanceStatus {
                instance_ids,
                filters,
                include_all_instances,
                page,
            } => {
                self.describe_instance_status(
                    acct,
                    instance_ids,
                    filters,
                    include_all_instances,
                    page,
                )
                .await?
            }
            Action::GetConsoleOutput { instance_id, .. } => {
                self.get_console_output(acct, instance_id).await?
            }
            Action::ModifyInstanceAttribute {
                instance_id,
                change,
            } => {
                self.modify_instance_attribute(acct, instance_id, change)
                    .await?
            }
            Action::DescribeInstanceAttribute {
                instance_id,
                attribute,
            } => {
                self.describe_instance_attribute(acct, instance_id, attribute)
                    .await?
            }
        })
    }
}

#[cfg(test)]
mod hypervisor_tests {
    use super::*;

    fn tag(k: &str, v: &str) -> Tag {
        Tag {
            key: k.into(),
            value: v.into(),
        }
    }

    #[test]
    fn the_tag_chooses_and_a_vm_always_carries_it() {
        let mut tags = vec![tag("Name", "a")];
        assert_eq!(
            choose_hypervisor(&mut tags, Hypervisor::Container).unwrap(),
            Hypervisor::Container
        );
        assert_eq!(tags.len(), 1, "a container keeps exactly its tags");
        let mut tags = vec![tag(HYPERVISOR_TAG, "vm")];
        assert_eq!(
            choose_hypervisor(&mut tags, Hypervisor::Container).unwrap(),
            Hypervisor::Vm
        );
        assert_eq!(tags.len(), 1);
        let mut tags = vec![];
        assert_eq!(
            choose_hypervisor(&mut tags, Hypervisor::Vm).unwrap(),
            Hypervisor::Vm
        );
        assert_eq!(tags, vec![tag(HYPERVISOR_TAG, "vm")]);
        let mut tags = vec![tag(HYPERVISOR_TAG, "xen")];
        let e = choose_hypervisor(&mut tags, Hypervisor::Vm).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidParameterValue);
    }
}
