//! Instances: `RunInstances`, `DescribeInstances`, the lifecycle (`StartInstances`,
//! `StopInstances`, `RebootInstances`, `TerminateInstances`), `DescribeInstanceStatus`,
//! `GetConsoleOutput`, `ModifyInstanceAttribute`, `DescribeInstanceAttribute`.

use gureum_types::model::{Filter, Instance, TagSpecification};
use gureum_types::{
    ApiError, ErrorCode, HttpEndpoint, HttpTokens, InstanceState, ShutdownBehavior, VolumeType,
};

use crate::action::{decode_base64, one_of, one_of_enum, positive, required_list, take_page, Page};
use crate::ops::{Op, Resource};
use crate::params::Params;
use crate::render::tag_set;
use crate::xml::Xml;

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    RunInstances(Box<RunInstances>),
    DescribeInstances {
        instance_ids: Vec<String>,
        filters: Vec<Filter>,
        page: Page,
    },
    StartInstances {
        instance_ids: Vec<String>,
    },
    StopInstances {
        instance_ids: Vec<String>,
        force: bool,
    },
    RebootInstances {
        instance_ids: Vec<String>,
    },
    TerminateInstances {
        instance_ids: Vec<String>,
    },
    DescribeInstanceStatus {
        instance_ids: Vec<String>,
        filters: Vec<Filter>,
        include_all_instances: bool,
        page: Page,
    },
    GetConsoleOutput {
        instance_id: String,
        latest: bool,
    },
    ModifyInstanceAttribute {
        instance_id: String,
        change: InstanceAttributeChange,
    },
    DescribeInstanceAttribute {
        instance_id: String,
        attribute: String,
    },
}

/// `ModifyInstanceAttribute`'s change (one attribute per call, as AWS requires).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InstanceAttributeChange {
    InstanceType(String),
    UserData(Vec<u8>),
    DisableApiTermination(bool),
    InstanceInitiatedShutdownBehavior(ShutdownBehavior),
    Groups(Vec<String>),
    /// `BlockDeviceMapping.N`: `DeleteOnTermination` of the volumes at these devices.
    DeleteOnTermination(Vec<DeviceDeleteOnTermination>),
}

/// One `BlockDeviceMapping.N` of `ModifyInstanceAttribute` (`InstanceBlockDeviceMappingSpecification`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceDeleteOnTermination {
    pub device_name: String,
    /// `Ebs.VolumeId`, if given: it must be the volume at that device.
    pub volume_id: Option<String>,
    pub delete_on_termination: bool,
}

/// One `BlockDeviceMapping.N` of a launch: the root device's size, type and
/// `DeleteOnTermination`, or another EBS volume made and attached at launch (`Ebs.*`), or an
/// instance-store name (`VirtualName`) or a device left out (`NoDevice`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlockDevice {
    pub device_name: String,
    pub volume_size: Option<u32>,
    pub delete_on_termination: Option<bool>,
    pub volume_type: Option<VolumeType>,
    pub iops: Option<u32>,
    pub throughput: Option<u32>,
    pub snapshot_id: Option<String>,
    pub encrypted: Option<bool>,
    /// `ephemeralN`: an instance-store volume.
    pub virtual_name: Option<String>,
    pub no_device: bool,
}

impl BlockDevice {
    /// Whether the mapping says anything about an EBS volume (`Ebs.*`).
    pub fn has_ebs(&self) -> bool {
        self.volume_size.is_some()
            || self.delete_on_termination.is_some()
            || self.volume_type.is_some()
            || self.iops.is_some()
            || self.throughput.is_some()
            || self.snapshot_id.is_some()
            || self.encrypted.is_some()
    }
}

/// `RunInstances` after syntactic validation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunInstances {
    pub image_id: String,
    pub instance_type: Option<String>,
    pub min_count: u32,
    pub max_count: u32,
    pub key_name: Option<String>,
    /// Decoded user data (the request carries it base64-encoded).
    pub user_data: Option<Vec<u8>>,
    pub tag_specifications: Vec<TagSpecification>,
    pub client_token: Option<String>,
    pub availability_zone: Option<String>,
    pub subnet_id: Option<String>,
    pub private_ip_address: Option<String>,
    pub block_devices: Vec<BlockDevice>,
    /// `stop` (default) or `terminate`.
    pub shutdown_behavior: Option<ShutdownBehavior>,
    pub disable_api_termination: bool,
    pub security_group_ids: Vec<String>,
    pub security_groups: Vec<String>,
    pub metadata_http_tokens: Option<HttpTokens>,
    pub metadata_http_endpoint: Option<HttpEndpoint>,
    pub metadata_hop_limit: Option<u32>,
    /// `NetworkInterface.1.AssociatePublicIpAddress`: overrides the subnet's
    /// `MapPublicIpOnLaunch`.
    pub associate_public_ip: Option<bool>,
    /// A canonical rendering of every parameter, to detect `ClientToken` reuse with other
    /// parameters (`IdempotentParameterMismatch`).
    pub fingerprint: String,
}

/// The largest user data AWS accepts, decoded.
pub const MAX_USER_DATA: usize = 16 * 1024;

// One value per request, rendered once and dropped: the size of the largest variant costs
// nothing worth boxing for.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Response {
    RunInstances {
        reservation: Reservation,
        region: String,
    },
    DescribeInstances {
        reservations: Vec<Reservation>,
        region: String,
        next_token: Option<String>,
    },
    /// `StartInstances`, `StopInstances`, `TerminateInstances`.
    StateChanges(Vec<StateChange>),
    /// `RebootInstances`, `ModifyInstanceAttribute`: `<return>true</return>`.
    Return,
    DescribeInstanceStatus {
        statuses: Vec<InstanceStatus>,
        next_token: Option<String>,
    },
    GetConsoleOutput {
        instance_id: String,
        timestamp: String,
        /// Already base64-encoded, as AWS sends it.
        output: String,
    },
    DescribeInstanceAttribute {
        instance_id: String,
        attribute: String,
        value: InstanceAttributeValue,
    },
}

#[derive(Debug, Clone)]
pub struct Reservation {
    pub id: String,
    pub owner_id: String,
    pub instances: Vec<Instance>,
}

#[derive(Debug, Clone)]
pub struct StateChange {
    pub instance_id: String,
    pub previous: InstanceState,
    pub current: InstanceState,
}

#[derive(Debug, Clone)]
pub struct InstanceStatus {
    pub instance_id: String,
    pub availability_zone: String,
    pub availability_zone_id: String,
    pub state: InstanceState,
    /// `initializing`, `ok`, `impaired` or `not-applicable`.
    pub instance_status: String,
    pub system_status: String,
}

#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum InstanceAttributeValue {
    /// `<attribute><value>…</value></attribute>` (instanceType, userData, shutdown behaviour…).
    Value(Option<String>),
    Bool(bool),
    /// `groupSet`
    Groups(Vec<(String, String)>),
    /// `blockDeviceMapping`
    BlockDevices(Instance),
}

impl Resource for Action {
    type Response = Response;

    const OPS: &'static [Op<Action>] = &[
        Op::write("RunInstances", |p| {
            Ok(Action::RunInstances(Box::new(parse_run_instances(p)?)))
        }),
        Op::read("DescribeInstances", |p| {
            Ok(Action::DescribeInstances {
                instance_ids: p.take_list("InstanceId")?,
                filters: p.take_filters()?,
                page: take_page(p, 5, 1000)?,
            })
        }),
        Op::write("StartInstances", |p| {
            let instance_ids = required_list(p, "InstanceId")?;
            p.take("AdditionalInfo");
            Ok(Action::StartInstances { instance_ids })
        }),
        Op::write("StopInstances", |p| {
            let instance_ids = required_list(p, "InstanceId")?;
            let force = p.take_bool("Force")?.unwrap_or(false);
            p.take_bool("Hibernate")?;
            Ok(Action::StopInstances {
                instance_ids,
                force,
            })
        }),
        Op::write("RebootInstances", |p| {
            Ok(Action::RebootInstances {
                instance_ids: required_list(p, "InstanceId")?,
            })
        }),
        Op::write("TerminateInstances", |p| {
            Ok(Action::TerminateInstances {
                instance_ids: required_list(p, "InstanceId")?,
            })
        }),
        Op::read("DescribeInstanceStatus", |p| {
            Ok(Action::DescribeInstanceStatus {
                instance_ids: p.take_list("InstanceId")?,
                filters: p.take_filters()?,
                include_all_instances: p.take_bool("IncludeAllInstances")?.unwrap_or(false),
                page: take_page(p, 5, 1000)?,
            })
        }),
        Op::read("GetConsoleOutput", |p| {
            Ok(Action::GetConsoleOutput {
                instance_id: p.required("InstanceId")?,
                latest: p.take_bool("Latest")?.unwrap_or(false),
            })
        }),
        Op::write("ModifyInstanceAttribute", parse_modify_instance_attribute),
        Op::read("DescribeInstanceAttribute", |p| {
            Ok(Action::DescribeInstanceAttribute {
                instance_id: p.required("InstanceId")?,
                attribute: one_of(
                    "Attribute",
                    p.required("Attribute")?,
                    &[
                        "instanceType",
                        "kernel",
                        "ramdisk",
                        "userData",
                        "disableApiTermination",
                        "instanceInitiatedShutdownBehavior",
                        "rootDeviceName",
                        "blockDeviceMapping",
                        "productCodes",
                        "sourceDestCheck",
                        "groupSet",
                        "ebsOptimized",
                        "sriovNetSupport",
                        "enaSupport",
                        "enclaveOptions",
                        "disableApiStop",
                    ],
                )?,
            })
        }),
    ];

    fn name(&self) -> &'static str {
        match self {
            Action::RunInstances(_) => "RunInstances",
            Action::DescribeInstances { .. } => "DescribeInstances",
            Action::StartInstances { .. } => "StartInstances",
            Action::StopInstances { .. } => "StopInstances",
            Action::RebootInstances { .. } => "RebootInstances",
            Action::TerminateInstances { .. } => "TerminateInstances",
            Action::DescribeInstanceStatus { .. } => "DescribeInstanceStatus",
            Action::GetConsoleOutput { .. } => "GetConsoleOutput",
            Action::ModifyInstanceAttribute { .. } => "ModifyInstanceAttribute",
            Action::DescribeInstanceAttribute { .. } => "DescribeInstanceAttribute",
        }
    }
}

fn parse_run_instances(p: &mut Params) -> Result<RunInstances, ApiError> {
    let mut fp: Vec<String> = Vec::new();
    // The fingerprint is taken before parsing consumes the parameters: every parameter but
    // the ClientToken and DryRun.
    for (k, v) in p.iter() {
        if k != "ClientToken" && k != "DryRun" {
            fp.push(format!("{k}={v}"));
        }
    }
    let image_id = p.required("ImageId")?;
    let min_count = positive("MinCount", p.take_i64("MinCount")?)?
        .ok_or_else(|| ApiError::missing_parameter("MinCount"))?;
    let max_count = positive("MaxCount", p.take_i64("MaxCount")?)?
        .ok_or_else(|| ApiError::missing_parameter("MaxCount"))?;
    if min_count == 0 || max_count == 0 {
        return Err(ApiError::new(
            ErrorCode::InvalidParameterValue,
            "Value (0) for parameter minCount is invalid. Expected a positive integer.",
        ));
    }
    if min_count > max_count {
        return Err(ApiError::new(
            ErrorCode::InvalidParameterValue,
            format!(
                "Value ({min_count}) for parameter minCount is invalid. Must be less than or equal to maxCount ({max_count})"
            ),
        ));
    }
    let user_data = match p.take("UserData") {
        None => None,
        Some(v) if v.is_empty() => None,
        Some(v) => {
            let d = decode_base64("UserData", &v)?;
            if d.len() > MAX_USER_DATA {
                return Err(ApiError::new(
                    ErrorCode::InvalidParameterValue,
                    "User data is limited to 16384 bytes",
                ));
            }
            Some(d)
        }
    };
    let block_devices = p
        .take_struct_list("BlockDeviceMapping")?
        .into_iter()
        .map(|mut b| {
            let d = BlockDevice {
                device_name: b.take("DeviceName").unwrap_or_default(),
                volume_size: positive("VolumeSize", b.take_i64("Ebs.VolumeSize")?)?,
                delete_on_termination: b.take_bool("Ebs.DeleteOnTermination")?,
                volume_type: b
                    .take("Ebs.VolumeType")
                    .map(|t| one_of_enum::<VolumeType>("VolumeType", &t))
                    .transpose()?,
                iops: positive("Iops", b.take_i64("Ebs.Iops")?)?,
                throughput: positive("Throughput", b.take_i64("Ebs.Throughput")?)?,
                snapshot_id: b.take("Ebs.SnapshotId").filter(|s| !s.is_empty()),
                encrypted: b.take_bool("Ebs.Encrypted")?,
                virtual_name: b.take("VirtualName").filter(|s| !s.is_empty()),
                no_device: b.take("NoDevice").is_some(),
            };
            // Accepted and ignored: gureum volumes are not encrypted by a key service, and
            // live in this host's one zone and outpost.
            for k in [
                "Ebs.KmsKeyId",
                "Ebs.OutpostArn",
                "Ebs.AvailabilityZone",
                "Ebs.AvailabilityZoneId",
                "Ebs.VolumeInitializationRate",
                "Ebs.EbsCardIndex",
            ] {
                b.take(k);
            }
            b.finish()?;
            Ok(d)
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    let shutdown_behavior = p
        .take("InstanceInitiatedShutdownBehavior")
        .map(|v| one_of_enum("InstanceInitiatedShutdownBehavior", &v))
        .transpose()?;
    let metadata_http_tokens = p
        .take("MetadataOptions.HttpTokens")
        .map(|v| one_of_enum("HttpTokens", &v))
        .transpose()?;
    let metadata_http_endpoint = p
        .take("MetadataOptions.HttpEndpoint")
        .map(|v| one_of_enum("HttpEndpoint", &v))
        .transpose()?;
    let metadata_hop_limit = match positive(
        "HttpPutResponseHopLimit",
        p.take_i64("MetadataOptions.HttpPutResponseHopLimit")?,
    )? {
        Some(n) if !(1..=64).contains(&n) => {
            return Err(ApiError::invalid_value(
                "HttpPutResponseHopLimit",
                &n.to_string(),
                "Must be between 1 and 64.",
            ))
        }
        other => other,
    };
    // The primary interface, as the console wizard and Terraform send it: device 0 only.
    let mut subnet_id = p.take("SubnetId");
    let mut private_ip_address = p.take("PrivateIpAddress");
    let mut security_group_ids = p.take_list("SecurityGroupId")?;
    let mut associate_public_ip = None;
    for mut n in p.take_struct_list("NetworkInterface")? {
        let index = n.take_i64("DeviceIndex")?.unwrap_or(0);
        if index != 0 {
            return Err(ApiError::new(
                ErrorCode::UnsupportedOperation,
                "gureum instances have one network interface (DeviceIndex 0)",
            ));
        }
        subnet_id = n.take("SubnetId").or(subnet_id);
        private_ip_address = n.take("PrivateIpAddress").or(private_ip_address);
        let groups = n.take_list("SecurityGroupId")?;
        if !groups.is_empty() {
            security_group_ids = groups;
        }
        associate_public_ip = n.take_bool("AssociatePublicIpAddress")?;
        for k in ["DeleteOnTermination", "Description", "InterfaceType"] {
            n.take(k);
        }
        n.finish()?;
    }
    for k in [
        "MetadataOptions.HttpProtocolIpv6",
        "MetadataOptions.InstanceMetadataTags",
        "Monitoring.Enabled",
        "EbsOptimized",
    ] {
        p.take(k);
    }
    fp.sort();
    Ok(RunInstances {
        image_id,
        instance_type: p.take("InstanceType"),
        min_count,
        max_count,
        key_name: p.take("KeyName").filter(|k| !k.is_empty()),
        user_data,
        tag_specifications: p.take_tag_specifications()?,
        client_token: p.take("ClientToken").filter(|t| !t.is_empty()),
        availability_zone: p.take("Placement.AvailabilityZone"),
        subnet_id,
        private_ip_address,
        block_devices,
        shutdown_behavior,
        disable_api_termination: p.take_bool("DisableApiTermination")?.unwrap_or(false),
        security_group_ids,
        security_groups: p.take_list("SecurityGroup")?,
        metadata_http_tokens,
        metadata_http_endpoint,
        metadata_hop_limit,
        associate_public_ip,
        fingerprint: fp.join("&"),
    })
}

fn parse_modify_instance_attribute(p: &mut Params) -> Result<Action, ApiError> {
    let instance_id = p.required("InstanceId")?;
    let attribute = p.take("Attribute");
    let value = p.take("Value");
    let mut changes = Vec::new();
    if let Some(v) = p.take("InstanceType.Value") {
        changes.push(InstanceAttributeChange::InstanceType(v));
    }
    if let Some(v) = p.take("UserData.Value") {
        changes.push(InstanceAttributeChange::UserData(decode_base64(
            "UserData", &v,
        )?));
    }
    if let Some(v) = p.take_bool("DisableApiTermination.Value")? {
        changes.push(InstanceAttributeChange::DisableApiTermination(v));
    }
    if let Some(v) = p.take("InstanceInitiatedShutdownBehavior.Value") {
        changes.push(InstanceAttributeChange::InstanceInitiatedShutdownBehavior(
            one_of_enum("InstanceInitiatedShutdownBehavior", &v)?,
        ));
    }
    let groups = p.take_list("GroupId")?;
    if !groups.is_empty() {
        changes.push(InstanceAttributeChange::Groups(groups));
    }
    let devices = p
        .take_struct_list("BlockDeviceMapping")?
        .into_iter()
        .map(|mut b| {
            let device_name = b
                .take("DeviceName")
                .filter(|d| !d.is_empty())
                .ok_or_else(|| ApiError::missing_parameter("BlockDeviceMapping.DeviceName"))?;
            let d = DeviceDeleteOnTermination {
                device_name,
                volume_id: b.take("Ebs.VolumeId").filter(|v| !v.is_empty()),
                delete_on_termination: b.take_bool("Ebs.DeleteOnTermination")?.ok_or_else(
                    || ApiError::missing_parameter("BlockDeviceMapping.Ebs.DeleteOnTermination"),
                )?,
            };
            for k in ["VirtualName", "NoDevice"] {
                b.take(k);
            }
            b.finish()?;
            Ok(d)
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    if !devices.is_empty() {
        changes.push(InstanceAttributeChange::DeleteOnTermination(devices));
    }
    if let (Some(a), Some(v)) = (&attribute, &value) {
        changes.push(match a.as_str() {
            "instanceType" => InstanceAttributeChange::InstanceType(v.clone()),
            "userData" => InstanceAttributeChange::UserData(decode_base64("UserData", v)?),
            "disableApiTermination" => {
                InstanceAttributeChange::DisableApiTermination(v.eq_ignore_ascii_case("true"))
            }
            "instanceInitiatedShutdownBehavior" => {
                InstanceAttributeChange::InstanceInitiatedShutdownBehavior(one_of_enum(
                    "InstanceInitiatedShutdownBehavior",
                    v,
                )?)
            }
            other => {
                return Err(ApiError::new(
                    ErrorCode::InvalidParameterValue,
                    format!(
                        "Value ({other}) for parameter attribute is invalid. Unsupported attribute"
                    ),
                ))
            }
        });
    }
    for k in [
        "SourceDestCheck.Value",
        "EbsOptimized.Value",
        "EnaSupport.Value",
        "DisableApiStop.Value",
    ] {
        p.take(k);
    }
    match changes.len() {
        1 => Ok(Action::ModifyInstanceAttribute {
            instance_id,
            change: changes.pop().expect("one change"),
        }),
        0 => Err(ApiError::new(
            ErrorCode::MissingParameter,
            "The request must contain exactly one attribute to modify",
        )),
        _ => Err(ApiError::new(
            ErrorCode::InvalidParameterCombination,
            "Fields for multiple attribute types specified: only one attribute may be modified per call",
        )),
    }
}

fn state_xml(x: &mut Xml, tag: &str, s: InstanceState) {
    x.open(tag)
        .leaf_display("code", s.code())
        .leaf("name", s.as_str())
        .close(tag);
}

/// `blockDeviceMapping`: each EBS volume attached, as `InstanceBlockDeviceMapping`.
fn block_device_mapping(x: &mut Xml, i: &Instance) {
    x.open("blockDeviceMapping");
    for a in &i.block_devices {
        x.open("item")
            .leaf("deviceName", &a.device)
            .open("ebs")
            .leaf("volumeId", &a.volume_id)
            .leaf("status", a.state.as_str())
            .leaf("attachTime", &a.attach_time)
            .bool("deleteOnTermination", a.delete_on_termination)
            .close("ebs")
            .close("item");
    }
    x.close("blockDeviceMapping");
}

fn instance_xml(x: &mut Xml, i: &Instance, region: &str) {
    let dns = i.private_dns_name(region);
    x.leaf("instanceId", &i.id).leaf("imageId", &i.image_id);
    state_xml(x, "instanceState", i.state);
    x.leaf("privateDnsName", &dns)
        .leaf("dnsName", &i.public_dns_name(region))
        .leaf("reason", &i.state_transition_reason);
    x.leaf_opt("keyName", i.key_name.as_deref())
        .leaf_display("amiLaunchIndex", i.launch_index)
        .open("productCodes")
        .close("productCodes")
        .leaf("instanceType", &i.instance_type)
        .leaf("launchTime", &i.launch_time)
        .open("placement")
        .leaf("availabilityZone", &i.availability_zone)
        .leaf("groupName", "")
        .leaf("tenancy", i.tenancy.as_str())
        .close("placement")
        .open("monitoring")
        .leaf("state", "disabled")
        .close("monitoring");
    if !i.state.is_gone() {
        x.leaf("subnetId", &i.subnet_id)
            .leaf("vpcId", &i.vpc_id)
            .leaf("privateIpAddress", &i.private_ip);
    }
    x.leaf_opt("ipAddress", i.public_ip.as_deref())
        .bool("sourceDestCheck", true);
    group_set(x, &i.security_groups);
    if let Some(reason) = &i.state_reason {
        x.open("stateReason")
            .leaf("code", reason.code.as_str())
            .leaf("message", &reason.message)
            .close("stateReason");
    }
    x.leaf("architecture", i.architecture.as_str())
        .leaf("rootDeviceType", i.root_device_type.as_str())
        .leaf("rootDeviceName", "/dev/xvda");
    if i.state.is_gone() {
        x.open("blockDeviceMapping").close("blockDeviceMapping");
    } else {
        block_device_mapping(x, i);
    }
    x.leaf("virtualizationType", i.virtualization_type.as_str());
    x.leaf_opt("clientToken", i.client_token.as_deref());
    tag_set(x, &i.tags);
    x.leaf("hypervisor", i.hypervisor.as_str());
    x.open("networkInterfaceSet");
    if !i.state.is_gone() {
        x.open("item")
            .leaf("networkInterfaceId", &i.network_interface_id)
            .leaf("subnetId", &i.subnet_id)
            .leaf("vpcId", &i.vpc_id)
            .leaf("description", "")
            .leaf("ownerId", &i.owner_id)
            .leaf("status", "in-use")
            .leaf("macAddress", &i.mac)
            .leaf("privateIpAddress", &i.private_ip)
            .leaf("privateDnsName", &dns)
            .bool("sourceDestCheck", true);
        if let Some(ip) = &i.public_ip {
            x.open("association")
                .leaf("publicIp", ip)
                .leaf("publicDnsName", &i.public_dns_name(region))
                .leaf("ipOwnerId", "amazon")
                .close("association");
        }
        group_set(x, &i.security_groups);
        x.open("attachment")
            .leaf(
                "attachmentId",
                &i.network_interface_id.replacen("eni-", "eni-attach-", 1),
            )
            .leaf_display("deviceIndex", 0)
            .leaf("status", "attached")
            .leaf("attachTime", &i.launch_time)
            .bool("deleteOnTermination", true)
            .leaf_display("networkCardIndex", 0)
            .close("attachment")
            .open("privateIpAddressesSet")
            .open("item")
            .leaf("privateIpAddress", &i.private_ip)
            .leaf("privateDnsName", &dns)
            .bool("primary", true)
            .close("item")
            .close("privateIpAddressesSet")
            .open("ipv6AddressesSet")
            .close("ipv6AddressesSet")
            .leaf("interfaceType", "interface")
            .close("item");
    }
    x.close("networkInterfaceSet");
    x.bool("ebsOptimized", false)
        .bool("enaSupport", true)
        .open("cpuOptions")
        .leaf_display("coreCount", i.cores)
        .leaf_display("threadsPerCore", i.threads_per_core)
        .close("cpuOptions")
        .open("capacityReservationSpecification")
        .leaf("capacityReservationPreference", "open")
        .close("capacityReservationSpecification")
        .open("hibernationOptions")
        .bool("configured", false)
        .close("hibernationOptions")
        .open("metadataOptions")
        .leaf("state", "applied")
        .leaf("httpTokens", i.metadata_http_tokens.as_str())
        .leaf_display("httpPutResponseHopLimit", i.metadata_hop_limit)
        .leaf("httpEndpoint", i.metadata_http_endpoint.as_str())
        .leaf("httpProtocolIpv6", "disabled")
        .leaf("instanceMetadataTags", "disabled")
        .close("metadataOptions")
        .open("enclaveOptions")
        .bool("enabled", false)
        .close("enclaveOptions")
        .leaf("platformDetails", "Linux/UNIX")
        .leaf("usageOperation", "RunInstances")
        .leaf("usageOperationUpdateTime", &i.launch_time)
        .open("privateDnsNameOptions")
        .leaf("hostnameType", "ip-name")
        .bool("enableResourceNameDnsARecord", false)
        .bool("enableResourceNameDnsAAAARecord", false)
        .close("privateDnsNameOptions")
        .open("maintenanceOptions")
        .leaf("autoRecovery", "default")
        .close("maintenanceOptions")
        .leaf("currentInstanceBootMode", "legacy-bios");
}

fn group_set(x: &mut Xml, groups: &[(String, String)]) {
    x.set("groupSet", groups, |x, (id, name)| {
        x.leaf("groupId", id).leaf("groupName", name);
    });
}

fn reservation_xml(x: &mut Xml, r: &Reservation, region: &str) {
    x.leaf("reservationId", &r.id)
        .leaf("ownerId", &r.owner_id)
        .open("groupSet")
        .close("groupSet");
    x.set("instancesSet", &r.instances, |x, i| {
        instance_xml(x, i, region)
    });
}

impl Response {
    pub(crate) fn write(&self, x: &mut Xml) {
        match self {
            Response::RunInstances {
                reservation,
                region,
            } => reservation_xml(x, reservation, region),
            Response::DescribeInstances {
                reservations,
                region,
                next_token,
            } => {
                x.set("reservationSet", reservations, |x, r| {
                    reservation_xml(x, r, region)
                });
                x.leaf_opt("nextToken", next_token.as_deref());
            }
            Response::StateChanges(changes) => {
                x.set("instancesSet", changes, |x, c| {
                    x.leaf("instanceId", &c.instance_id);
                    state_xml(x, "currentState", c.current);
                    state_xml(x, "previousState", c.previous);
                });
            }
            Response::DescribeInstanceStatus {
                statuses,
                next_token,
            } => {
                x.set("instanceStatusSet", statuses, |x, st| {
                    x.leaf("instanceId", &st.instance_id)
                        .leaf("availabilityZone", &st.availability_zone)
                        .leaf("availabilityZoneId", &st.availability_zone_id);
                    state_xml(x, "instanceState", st.state);
                    for (tag, status) in [
                        ("systemStatus", &st.system_status),
                        ("instanceStatus", &st.instance_status),
                    ] {
                        x.open(tag).leaf("status", status).open("details");
                        if status != "not-applicable" {
                            x.open("item")
                                .leaf("name", "reachability")
                                .leaf(
                                    "status",
                                    if status == "ok" {
                                        "passed"
                                    } else {
                                        "initializing"
                                    },
                                )
                                .close("item");
                        }
                        x.close("details").close(tag);
                    }
                    x.open("eventsSet").close("eventsSet");
                });
                x.leaf_opt("nextToken", next_token.as_deref());
            }
            Response::GetConsoleOutput {
                instance_id,
                timestamp,
                output,
            } => {
                x.leaf("instanceId", instance_id)
                    .leaf("timestamp", timestamp)
                    .leaf("output", output);
            }
            Response::DescribeInstanceAttribute {
                instance_id,
                attribute,
                value,
            } => {
                x.leaf("instanceId", instance_id);
                match value {
                    InstanceAttributeValue::Value(v) => {
                        x.open(attribute);
                        x.leaf_opt("value", v.as_deref());
                        x.close(attribute);
                    }
                    InstanceAttributeValue::Bool(b) => {
                        x.open(attribute).bool("value", *b).close(attribute);
                    }
                    InstanceAttributeValue::Groups(groups) => {
                        x.set("groupSet", groups, |x, (id, name)| {
                            x.leaf("groupId", id).leaf("groupName", name);
                        });
                    }
                    InstanceAttributeValue::BlockDevices(i) => block_device_mapping(x, i),
                }
            }
            Response::Return => {
                x.bool("return", true);
            }
        }
    }
}
