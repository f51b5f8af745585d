//! Typed EC2 actions: every supported operation, named exactly as AWS names it, parsed from
//! [`Params`] before anything runs. A variant's fields are the request's parameters after
//! syntactic validation; semantic checks (does the key exist, is the name taken) are the
//! core's. Parsing consumes every parameter it knows, so leftovers become `UnknownParameter`.

use base64::Engine;
use gureum_types::model::{Filter, Tag, TagSpecification};
use gureum_types::{ApiError, ErrorCode, IpProtocol};

use crate::params::Params;

/// A parsed request: the action and whether it is a dry run.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub action: Action,
    pub dry_run: bool,
}

/// Pagination parameters of a Describe call that supports them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Page {
    pub max_results: Option<u32>,
    pub next_token: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Only the configured region exists; `AllRegions` changes nothing.
    DescribeRegions {
        region_names: Vec<String>,
        filters: Vec<Filter>,
    },
    DescribeAvailabilityZones {
        zone_names: Vec<String>,
        zone_ids: Vec<String>,
        filters: Vec<Filter>,
    },
    DescribeAccountAttributes {
        attribute_names: Vec<String>,
    },
    DescribeInstanceTypes {
        instance_types: Vec<String>,
        filters: Vec<Filter>,
        page: Page,
    },
    DescribeInstanceTypeOfferings {
        /// `region`, `availability-zone` or `availability-zone-id`.
        location_type: String,
        filters: Vec<Filter>,
        page: Page,
    },
    CreateKeyPair {
        key_name: String,
        /// `rsa` (default) or `ed25519`.
        key_type: String,
        /// `pem` (default) or `ppk`.
        key_format: String,
        tag_specifications: Vec<TagSpecification>,
    },
    ImportKeyPair {
        key_name: String,
        /// The public key file's bytes (the transport's base64 already removed).
        public_key_material: Vec<u8>,
        tag_specifications: Vec<TagSpecification>,
    },
    DescribeKeyPairs {
        key_names: Vec<String>,
        key_pair_ids: Vec<String>,
        filters: Vec<Filter>,
        include_public_key: bool,
    },
    /// Exactly one of the two is given; the core checks which one matches.
    DeleteKeyPair {
        key_name: Option<String>,
        key_pair_id: Option<String>,
    },
    CreateTags {
        resources: Vec<String>,
        tags: Vec<Tag>,
    },
    /// A tag with no value deletes the key whatever its value; with a value, only if it matches.
    DeleteTags {
        resources: Vec<String>,
        tags: Vec<DeleteTag>,
    },
    DescribeTags {
        filters: Vec<Filter>,
        page: Page,
    },
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
    DescribeVpcs {
        vpc_ids: Vec<String>,
        filters: Vec<Filter>,
        page: Page,
    },
    DescribeSubnets {
        subnet_ids: Vec<String>,
        filters: Vec<Filter>,
        page: Page,
    },
    // VPCs, subnets, internet gateways and route tables.
    CreateVpc {
        cidr_block: String,
        /// `default` or `dedicated`.
        instance_tenancy: String,
        tag_specifications: Vec<TagSpecification>,
    },
    DeleteVpc {
        vpc_id: String,
    },
    /// Exactly one attribute per call, as AWS requires.
    ModifyVpcAttribute {
        vpc_id: String,
        attribute: VpcAttribute,
        value: bool,
    },
    DescribeVpcAttribute {
        vpc_id: String,
        attribute: VpcAttribute,
    },
    CreateSubnet {
        vpc_id: String,
        cidr_block: String,
        availability_zone: Option<String>,
        availability_zone_id: Option<String>,
        tag_specifications: Vec<TagSpecification>,
    },
    DeleteSubnet {
        subnet_id: String,
    },
    ModifySubnetAttribute {
        subnet_id: String,
        /// `None` when the call only set other attributes to their (only supported) defaults.
        map_public_ip_on_launch: Option<bool>,
    },
    CreateInternetGateway {
        tag_specifications: Vec<TagSpecification>,
    },
    DeleteInternetGateway {
        internet_gateway_id: String,
    },
    AttachInternetGateway {
        internet_gateway_id: String,
        vpc_id: String,
    },
    DetachInternetGateway {
        internet_gateway_id: String,
        vpc_id: String,
    },
    DescribeInternetGateways {
        internet_gateway_ids: Vec<String>,
        filters: Vec<Filter>,
        page: Page,
    },
    CreateRouteTable {
        vpc_id: String,
        client_token: Option<String>,
        tag_specifications: Vec<TagSpecification>,
    },
    DeleteRouteTable {
        route_table_id: String,
    },
    DescribeRouteTables {
        route_table_ids: Vec<String>,
        filters: Vec<Filter>,
        page: Page,
    },
    /// `CreateRoute` and `ReplaceRoute`: an IPv4 destination to an internet gateway (the only
    /// target gureum routes to).
    PutRoute {
        replace: bool,
        route_table_id: String,
        destination_cidr_block: String,
        gateway_id: String,
    },
    DeleteRoute {
        route_table_id: String,
        destination_cidr_block: String,
    },
    AssociateRouteTable {
        route_table_id: String,
        subnet_id: String,
    },
    DisassociateRouteTable {
        association_id: String,
    },
    ReplaceRouteTableAssociation {
        association_id: String,
        route_table_id: String,
    },
    CreateSecurityGroup {
        group_name: String,
        description: String,
        vpc_id: Option<String>,
        tag_specifications: Vec<TagSpecification>,
    },
    /// By id or name (a name means the default VPC's group of that name).
    DeleteSecurityGroup {
        group_id: Option<String>,
        group_name: Option<String>,
    },
    DescribeSecurityGroups {
        group_ids: Vec<String>,
        group_names: Vec<String>,
        filters: Vec<Filter>,
        page: Page,
    },
    /// `AuthorizeSecurityGroupIngress` / `AuthorizeSecurityGroupEgress`.
    AuthorizeSecurityGroup {
        egress: bool,
        group_id: Option<String>,
        group_name: Option<String>,
        permissions: Vec<Permission>,
        tag_specifications: Vec<TagSpecification>,
    },
    /// `RevokeSecurityGroupIngress` / `RevokeSecurityGroupEgress`.
    RevokeSecurityGroup {
        egress: bool,
        group_id: Option<String>,
        group_name: Option<String>,
        permissions: Vec<Permission>,
        rule_ids: Vec<String>,
    },
    DescribeSecurityGroupRules {
        rule_ids: Vec<String>,
        filters: Vec<Filter>,
        page: Page,
    },
    /// Change rules in place, by id.
    ModifySecurityGroupRules {
        group_id: String,
        rules: Vec<(String, RuleUpdate)>,
    },
    // Elastic IPs, interfaces and metadata options (networking issue).
    AllocateAddress {
        /// A specific address of the pool.
        address: Option<String>,
        tag_specifications: Vec<TagSpecification>,
    },
    AssociateAddress {
        allocation_id: Option<String>,
        public_ip: Option<String>,
        instance_id: Option<String>,
        network_interface_id: Option<String>,
        private_ip: Option<String>,
        allow_reassociation: bool,
    },
    DisassociateAddress {
        association_id: Option<String>,
        public_ip: Option<String>,
    },
    ReleaseAddress {
        allocation_id: Option<String>,
        public_ip: Option<String>,
    },
    DescribeAddresses {
        public_ips: Vec<String>,
        allocation_ids: Vec<String>,
        filters: Vec<Filter>,
    },
    DescribeNetworkInterfaces {
        ids: Vec<String>,
        filters: Vec<Filter>,
        page: Page,
    },
    ModifyInstanceMetadataOptions {
        instance_id: String,
        http_tokens: Option<String>,
        http_endpoint: Option<String>,
        hop_limit: Option<u32>,
    },
}

/// `ModifySecurityGroupRules`' new definition of one rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleUpdate {
    /// As in [`Permission`].
    pub protocol: IpProtocol,
    pub from_port: Option<i32>,
    pub to_port: Option<i32>,
    pub cidr_ipv4: Option<String>,
    pub cidr_ipv6: Option<String>,
    pub referenced_group_id: Option<String>,
    pub description: Option<String>,
}

/// One IP permission of an authorize or revoke call, normalised: the protocol parsed, ports
/// absent for `-1` and other protocol numbers (every port).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permission {
    pub protocol: IpProtocol,
    pub from_port: Option<i32>,
    pub to_port: Option<i32>,
    /// (CIDR, description)
    pub ipv4_ranges: Vec<(String, Option<String>)>,
    pub ipv6_ranges: Vec<(String, Option<String>)>,
    pub groups: Vec<GroupRef>,
}

/// A security group named by a rule, by id or (in the default VPC) by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupRef {
    pub group_id: Option<String>,
    pub group_name: Option<String>,
    pub description: Option<String>,
}
/// The attributes of `ModifyVpcAttribute` / `DescribeVpcAttribute`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VpcAttribute {
    EnableDnsSupport,
    EnableDnsHostnames,
    EnableNetworkAddressUsageMetrics,
}

impl VpcAttribute {
    /// The name as the API spells it (`enableDnsSupport`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            VpcAttribute::EnableDnsSupport => "enableDnsSupport",
            VpcAttribute::EnableDnsHostnames => "enableDnsHostnames",
            VpcAttribute::EnableNetworkAddressUsageMetrics => "enableNetworkAddressUsageMetrics",
        }
    }
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

/// `ModifyInstanceAttribute`'s change (one attribute per call, as AWS requires).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InstanceAttributeChange {
    InstanceType(String),
    UserData(Vec<u8>),
    DisableApiTermination(bool),
    InstanceInitiatedShutdownBehavior(String),
    Groups(Vec<String>),
}

/// One `BlockDeviceMapping.N` of a launch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlockDevice {
    pub device_name: String,
    pub volume_size: Option<u32>,
    pub delete_on_termination: Option<bool>,
    pub volume_type: Option<String>,
    pub no_device: bool,
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
    pub shutdown_behavior: Option<String>,
    pub disable_api_termination: bool,
    pub security_group_ids: Vec<String>,
    pub security_groups: Vec<String>,
    pub metadata_http_tokens: Option<String>,
    pub metadata_http_endpoint: Option<String>,
    pub metadata_hop_limit: Option<u32>,
    /// `NetworkInterface.1.AssociatePublicIpAddress`: overrides the subnet's
    /// `MapPublicIpOnLaunch`.
    pub associate_public_ip: Option<bool>,
    /// A canonical rendering of every parameter, to detect `ClientToken` reuse with other
    /// parameters (`IdempotentParameterMismatch`).
    pub fingerprint: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteTag {
    pub key: String,
    pub value: Option<String>,
}

impl Action {
    /// The AWS operation name.
    pub fn name(&self) -> &'static str {
        match self {
            Action::DescribeRegions { .. } => "DescribeRegions",
            Action::DescribeAvailabilityZones { .. } => "DescribeAvailabilityZones",
            Action::DescribeAccountAttributes { .. } => "DescribeAccountAttributes",
            Action::DescribeInstanceTypes { .. } => "DescribeInstanceTypes",
            Action::DescribeInstanceTypeOfferings { .. } => "DescribeInstanceTypeOfferings",
            Action::CreateKeyPair { .. } => "CreateKeyPair",
            Action::ImportKeyPair { .. } => "ImportKeyPair",
            Action::DescribeKeyPairs { .. } => "DescribeKeyPairs",
            Action::DeleteKeyPair { .. } => "DeleteKeyPair",
            Action::CreateTags { .. } => "CreateTags",
            Action::DeleteTags { .. } => "DeleteTags",
            Action::DescribeTags { .. } => "DescribeTags",
            Action::DescribeImages { .. } => "DescribeImages",
            Action::DeregisterImage { .. } => "DeregisterImage",
            Action::CopyImage { .. } => "CopyImage",
            Action::CreateImage { .. } => "CreateImage",
            Action::ModifyImageAttribute { .. } => "ModifyImageAttribute",
            Action::DescribeImageAttribute { .. } => "DescribeImageAttribute",
            Action::ResetImageAttribute { .. } => "ResetImageAttribute",
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
            Action::DescribeVpcs { .. } => "DescribeVpcs",
            Action::DescribeSubnets { .. } => "DescribeSubnets",
            Action::CreateVpc { .. } => "CreateVpc",
            Action::DeleteVpc { .. } => "DeleteVpc",
            Action::ModifyVpcAttribute { .. } => "ModifyVpcAttribute",
            Action::DescribeVpcAttribute { .. } => "DescribeVpcAttribute",
            Action::CreateSubnet { .. } => "CreateSubnet",
            Action::DeleteSubnet { .. } => "DeleteSubnet",
            Action::ModifySubnetAttribute { .. } => "ModifySubnetAttribute",
            Action::CreateInternetGateway { .. } => "CreateInternetGateway",
            Action::DeleteInternetGateway { .. } => "DeleteInternetGateway",
            Action::AttachInternetGateway { .. } => "AttachInternetGateway",
            Action::DetachInternetGateway { .. } => "DetachInternetGateway",
            Action::DescribeInternetGateways { .. } => "DescribeInternetGateways",
            Action::CreateRouteTable { .. } => "CreateRouteTable",
            Action::DeleteRouteTable { .. } => "DeleteRouteTable",
            Action::DescribeRouteTables { .. } => "DescribeRouteTables",
            Action::PutRoute { replace: false, .. } => "CreateRoute",
            Action::PutRoute { replace: true, .. } => "ReplaceRoute",
            Action::DeleteRoute { .. } => "DeleteRoute",
            Action::AssociateRouteTable { .. } => "AssociateRouteTable",
            Action::DisassociateRouteTable { .. } => "DisassociateRouteTable",
            Action::ReplaceRouteTableAssociation { .. } => "ReplaceRouteTableAssociation",
            Action::CreateSecurityGroup { .. } => "CreateSecurityGroup",
            Action::DeleteSecurityGroup { .. } => "DeleteSecurityGroup",
            Action::DescribeSecurityGroups { .. } => "DescribeSecurityGroups",
            Action::AuthorizeSecurityGroup { egress: false, .. } => "AuthorizeSecurityGroupIngress",
            Action::AuthorizeSecurityGroup { egress: true, .. } => "AuthorizeSecurityGroupEgress",
            Action::RevokeSecurityGroup { egress: false, .. } => "RevokeSecurityGroupIngress",
            Action::RevokeSecurityGroup { egress: true, .. } => "RevokeSecurityGroupEgress",
            Action::DescribeSecurityGroupRules { .. } => "DescribeSecurityGroupRules",
            Action::ModifySecurityGroupRules { .. } => "ModifySecurityGroupRules",
            Action::AllocateAddress { .. } => "AllocateAddress",
            Action::AssociateAddress { .. } => "AssociateAddress",
            Action::DisassociateAddress { .. } => "DisassociateAddress",
            Action::ReleaseAddress { .. } => "ReleaseAddress",
            Action::DescribeAddresses { .. } => "DescribeAddresses",
            Action::DescribeNetworkInterfaces { .. } => "DescribeNetworkInterfaces",
            Action::ModifyInstanceMetadataOptions { .. } => "ModifyInstanceMetadataOptions",
        }
    }

    /// Whether the action changes state (and so must never run on a dry run).
    pub fn is_mutating(&self) -> bool {
        matches!(
            self,
            Action::CreateKeyPair { .. }
                | Action::ImportKeyPair { .. }
                | Action::DeleteKeyPair { .. }
                | Action::CreateTags { .. }
                | Action::DeleteTags { .. }
                | Action::DeregisterImage { .. }
                | Action::CopyImage { .. }
                | Action::CreateImage { .. }
                | Action::ModifyImageAttribute { .. }
                | Action::ResetImageAttribute { .. }
                | Action::RunInstances(_)
                | Action::StartInstances { .. }
                | Action::StopInstances { .. }
                | Action::RebootInstances { .. }
                | Action::TerminateInstances { .. }
                | Action::ModifyInstanceAttribute { .. }
                | Action::CreateVpc { .. }
                | Action::DeleteVpc { .. }
                | Action::ModifyVpcAttribute { .. }
                | Action::CreateSubnet { .. }
                | Action::DeleteSubnet { .. }
                | Action::ModifySubnetAttribute { .. }
                | Action::CreateInternetGateway { .. }
                | Action::DeleteInternetGateway { .. }
                | Action::AttachInternetGateway { .. }
                | Action::DetachInternetGateway { .. }
                | Action::CreateRouteTable { .. }
                | Action::DeleteRouteTable { .. }
                | Action::PutRoute { .. }
                | Action::DeleteRoute { .. }
                | Action::AssociateRouteTable { .. }
                | Action::DisassociateRouteTable { .. }
                | Action::ReplaceRouteTableAssociation { .. }
                | Action::CreateSecurityGroup { .. }
                | Action::DeleteSecurityGroup { .. }
                | Action::AuthorizeSecurityGroup { .. }
                | Action::RevokeSecurityGroup { .. }
                | Action::ModifySecurityGroupRules { .. }
                | Action::AllocateAddress { .. }
                | Action::AssociateAddress { .. }
                | Action::DisassociateAddress { .. }
                | Action::ReleaseAddress { .. }
                | Action::ModifyInstanceMetadataOptions { .. }
        )
    }
}

/// Every action name gureum implements, for `docs/COMPATIBILITY.md` and its test.
pub const SUPPORTED_ACTIONS: &[&str] = &[
    "AllocateAddress",
    "AssociateAddress",
    "DescribeAddresses",
    "DescribeNetworkInterfaces",
    "DisassociateAddress",
    "ModifyInstanceMetadataOptions",
    "ModifySecurityGroupRules",
    "ReleaseAddress",
    "AuthorizeSecurityGroupEgress",
    "AuthorizeSecurityGroupIngress",
    "CopyImage",
    "CreateImage",
    "CreateKeyPair",
    "CreateSecurityGroup",
    "CreateTags",
    "DeleteKeyPair",
    "DeleteSecurityGroup",
    "DeleteTags",
    "DeregisterImage",
    "DescribeAccountAttributes",
    "DescribeAvailabilityZones",
    "DescribeImageAttribute",
    "DescribeImages",
    "DescribeInstanceAttribute",
    "DescribeInstanceStatus",
    "DescribeInstanceTypeOfferings",
    "DescribeInstanceTypes",
    "DescribeInstances",
    "DescribeKeyPairs",
    "DescribeRegions",
    "DescribeSecurityGroupRules",
    "DescribeSecurityGroups",
    "DescribeSubnets",
    "DescribeTags",
    "DescribeVpcs",
    "GetConsoleOutput",
    "ImportKeyPair",
    "ModifyImageAttribute",
    "ModifyInstanceAttribute",
    "RebootInstances",
    "ResetImageAttribute",
    "RevokeSecurityGroupEgress",
    "RevokeSecurityGroupIngress",
    "RunInstances",
    "StartInstances",
    "StopInstances",
    "TerminateInstances",
    // VPCs, subnets, internet gateways and route tables.
    "AssociateRouteTable",
    "AttachInternetGateway",
    "CreateInternetGateway",
    "CreateRoute",
    "CreateRouteTable",
    "CreateSubnet",
    "CreateVpc",
    "DeleteInternetGateway",
    "DeleteRoute",
    "DeleteRouteTable",
    "DeleteSubnet",
    "DeleteVpc",
    "DescribeInternetGateways",
    "DescribeRouteTables",
    "DescribeVpcAttribute",
    "DetachInternetGateway",
    "DisassociateRouteTable",
    "ModifySubnetAttribute",
    "ModifyVpcAttribute",
    "ReplaceRoute",
    "ReplaceRouteTableAssociation",
];

fn take_page(p: &mut Params, min: i64, max: i64) -> Result<Page, ApiError> {
    let max_results = match p.take_i64("MaxResults")? {
        None => None,
        Some(n) if (min..=max).contains(&n) => Some(n as u32),
        Some(n) => {
            return Err(ApiError::new(
                ErrorCode::InvalidParameterValue,
                format!(
                    "Value ( {n} ) for parameter maxResults is invalid. \
                     Parameter must be between {min} and {max}."
                ),
            ))
        }
    };
    Ok(Page {
        max_results,
        next_token: p.take("NextToken").filter(|t| !t.is_empty()),
    })
}

fn one_of(name: &str, value: String, allowed: &[&str]) -> Result<String, ApiError> {
    if allowed.contains(&value.as_str()) {
        Ok(value)
    } else {
        Err(ApiError::new(
            ErrorCode::InvalidParameterValue,
            format!(
                "Value ({value}) for parameter {name} is invalid. Valid values are: {}",
                allowed.join(", ")
            ),
        ))
    }
}

fn required_list(p: &mut Params, name: &str) -> Result<Vec<String>, ApiError> {
    let v = p.take_list(name)?;
    if v.is_empty() {
        return Err(ApiError::missing_parameter(&format!("{name}s")));
    }
    Ok(v)
}

fn positive(name: &str, v: Option<i64>) -> Result<Option<u32>, ApiError> {
    match v {
        None => Ok(None),
        Some(n) if n >= 0 && n <= u32::MAX as i64 => Ok(Some(n as u32)),
        Some(n) => Err(ApiError::invalid_value(
            name,
            &n.to_string(),
            "Expected a non-negative integer.",
        )),
    }
}

fn decode_base64(name: &str, v: &str) -> Result<Vec<u8>, ApiError> {
    // AWS accepts user data with or without padding and with line breaks.
    let cleaned: String = v.chars().filter(|c| !c.is_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(&cleaned)
        .or_else(|_| {
            base64::engine::general_purpose::STANDARD_NO_PAD.decode(cleaned.trim_end_matches('='))
        })
        .map_err(|_| {
            ApiError::new(
                ErrorCode::InvalidParameterValue,
                format!("Invalid BASE64 encoding of user data for parameter {name}"),
            )
        })
}

/// The largest user data AWS accepts, decoded.
pub const MAX_USER_DATA: usize = 16 * 1024;

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
                volume_type: b.take("Ebs.VolumeType"),
                no_device: b.take("NoDevice").is_some(),
            };
            // Accepted and ignored: gureum volumes have no IOPS or encryption settings.
            for k in [
                "Ebs.Iops",
                "Ebs.Throughput",
                "Ebs.Encrypted",
                "Ebs.KmsKeyId",
                "Ebs.SnapshotId",
                "VirtualName",
            ] {
                b.take(k);
            }
            b.finish()?;
            Ok(d)
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    let shutdown_behavior = match p.take("InstanceInitiatedShutdownBehavior") {
        None => None,
        Some(v) => Some(one_of(
            "InstanceInitiatedShutdownBehavior",
            v,
            &["stop", "terminate"],
        )?),
    };
    let metadata_http_tokens = match p.take("MetadataOptions.HttpTokens") {
        None => None,
        Some(v) => Some(one_of("HttpTokens", v, &["optional", "required"])?),
    };
    let metadata_http_endpoint = match p.take("MetadataOptions.HttpEndpoint") {
        None => None,
        Some(v) => Some(one_of("HttpEndpoint", v, &["enabled", "disabled"])?),
    };
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
            one_of(
                "InstanceInitiatedShutdownBehavior",
                v,
                &["stop", "terminate"],
            )?,
        ));
    }
    let groups = p.take_list("GroupId")?;
    if !groups.is_empty() {
        changes.push(InstanceAttributeChange::Groups(groups));
    }
    if let (Some(a), Some(v)) = (&attribute, &value) {
        changes.push(match a.as_str() {
            "instanceType" => InstanceAttributeChange::InstanceType(v.clone()),
            "userData" => InstanceAttributeChange::UserData(decode_base64("UserData", v)?),
            "disableApiTermination" => {
                InstanceAttributeChange::DisableApiTermination(v.eq_ignore_ascii_case("true"))
            }
            "instanceInitiatedShutdownBehavior" => {
                InstanceAttributeChange::InstanceInitiatedShutdownBehavior(one_of(
                    "InstanceInitiatedShutdownBehavior",
                    v.clone(),
                    &["stop", "terminate"],
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

fn take_group(p: &mut Params, egress: bool) -> Result<(Option<String>, Option<String>), ApiError> {
    let id = p.take("GroupId").filter(|v| !v.is_empty());
    // Egress rules exist only in VPCs, where groups are named by id.
    let name = if egress {
        None
    } else {
        p.take("GroupName").filter(|v| !v.is_empty())
    };
    if id.is_none() && name.is_none() {
        return Err(ApiError::new(
            ErrorCode::MissingParameter,
            "The request must contain the parameter groupName or groupId",
        ));
    }
    Ok((id, name))
}

fn port(name: &str, v: Option<i64>) -> Result<Option<i32>, ApiError> {
    match v {
        None => Ok(None),
        Some(n) if (-1..=65535).contains(&n) => Ok(Some(n as i32)),
        Some(n) => Err(ApiError::invalid_value(
            name,
            &n.to_string(),
            "Ports must be between -1 and 65535.",
        )),
    }
}

/// A permission's protocol and ports as AWS keeps them: tcp and udp need both ports (`-1`
/// and `-1` meaning every port); icmp and icmpv6 take a type and code, each `-1` (every one)
/// when absent; `-1` and any other protocol number cover every port, whatever was given.
fn finish_permission(
    raw: &str,
    from: Option<i32>,
    to: Option<i32>,
) -> Result<(IpProtocol, Option<i32>, Option<i32>), ApiError> {
    let protocol: IpProtocol = raw.parse()?;
    match protocol {
        IpProtocol::All | IpProtocol::Other(_) => Ok((protocol, None, None)),
        IpProtocol::Tcp | IpProtocol::Udp => match (from, to) {
            (Some(f), Some(t)) if f >= 0 && t >= f => Ok((protocol, Some(f), Some(t))),
            (Some(-1), Some(-1)) => Ok((protocol, Some(0), Some(65535))),
            _ => Err(ApiError::new(
                ErrorCode::InvalidParameterValue,
                "Invalid value 'Must specify both from and to ports with TCP/UDP.' for portRange",
            )),
        },
        IpProtocol::Icmp | IpProtocol::Icmpv6 => {
            Ok((protocol, Some(from.unwrap_or(-1)), Some(to.unwrap_or(-1))))
        }
    }
}

/// Both forms of an authorize/revoke call: `IpPermissions.N.*`, and the shorthand
/// (`IpProtocol`, `FromPort`, `ToPort`, `CidrIp`, `SourceSecurityGroupName`).
fn take_permissions(p: &mut Params) -> Result<Vec<Permission>, ApiError> {
    let mut out = Vec::new();
    for mut perm in p.take_struct_list("IpPermissions")? {
        let raw = perm
            .take("IpProtocol")
            .ok_or_else(|| ApiError::missing_parameter("IpProtocol"))?;
        let from = port("FromPort", perm.take_i64("FromPort")?)?;
        let to = port("ToPort", perm.take_i64("ToPort")?)?;
        let (protocol, from_port, to_port) = finish_permission(&raw, from, to)?;
        let mut ipv4_ranges = Vec::new();
        for mut r in perm.take_struct_list("IpRanges")? {
            let cidr = r
                .take("CidrIp")
                .ok_or_else(|| ApiError::missing_parameter("CidrIp"))?;
            ipv4_ranges.push((cidr, r.take("Description")));
            r.finish()?;
        }
        let mut ipv6_ranges = Vec::new();
        for mut r in perm.take_struct_list("Ipv6Ranges")? {
            let cidr = r
                .take("CidrIpv6")
                .ok_or_else(|| ApiError::missing_parameter("CidrIpv6"))?;
            ipv6_ranges.push((cidr, r.take("Description")));
            r.finish()?;
        }
        let mut groups = Vec::new();
        for mut g in perm.take_struct_list("Groups")? {
            groups.push(GroupRef {
                group_id: g.take("GroupId"),
                group_name: g.take("GroupName"),
                description: g.take("Description"),
            });
            g.take("UserId");
            g.take("VpcId");
            g.finish()?;
        }
        perm.take_struct_list("PrefixListIds")?;
        perm.finish()?;
        out.push(Permission {
            protocol,
            from_port,
            to_port,
            ipv4_ranges,
            ipv6_ranges,
            groups,
        });
    }
    let proto = p.take("IpProtocol");
    let cidr = p.take("CidrIp");
    let source = p.take("SourceSecurityGroupName");
    p.take("SourceSecurityGroupOwnerId");
    let from = port("FromPort", p.take_i64("FromPort")?)?;
    let to = port("ToPort", p.take_i64("ToPort")?)?;
    if proto.is_some() || cidr.is_some() || source.is_some() {
        if !out.is_empty() {
            return Err(ApiError::new(
                ErrorCode::InvalidParameterCombination,
                "The parameter 'ipPermissions' may not be used in combination with 'ipProtocol'",
            ));
        }
        // The shorthand: a group name alone means all traffic from that group.
        let raw = proto.unwrap_or_else(|| "-1".into());
        let (protocol, from_port, to_port) = finish_permission(&raw, from, to)?;
        out.push(Permission {
            protocol,
            from_port,
            to_port,
            ipv4_ranges: cidr.into_iter().map(|c| (c, None)).collect(),
            ipv6_ranges: vec![],
            groups: source
                .into_iter()
                .map(|n| GroupRef {
                    group_name: Some(n),
                    ..Default::default()
                })
                .collect(),
        });
    }
    Ok(out)
}

/// `Name.Value` of an `AttributeBooleanValue` parameter (`EnableDnsSupport.Value=true`).
fn take_attribute_bool(p: &mut Params, name: &str) -> Result<Option<bool>, ApiError> {
    let v = p.take_bool(&format!("{name}.Value"))?;
    if let Some(k) = p.iter().map(|(k, _)| k.to_string()).find(|k| {
        k.strip_prefix(name)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
    }) {
        return Err(ApiError::unknown_parameter(&k));
    }
    Ok(v)
}

fn parse_modify_vpc_attribute(p: &mut Params) -> Result<Action, ApiError> {
    let vpc_id = p.required("VpcId")?;
    let mut given = Vec::new();
    for attr in [
        VpcAttribute::EnableDnsSupport,
        VpcAttribute::EnableDnsHostnames,
        VpcAttribute::EnableNetworkAddressUsageMetrics,
    ] {
        let mut name = attr.as_str().to_string();
        name[..1].make_ascii_uppercase();
        if let Some(v) = take_attribute_bool(p, &name)? {
            given.push((attr, v));
        }
    }
    match given.as_slice() {
        [] => Err(ApiError::new(
            ErrorCode::MissingParameter,
            "The request must contain exactly one of the parameters enableDnsSupport, \
             enableDnsHostnames or enableNetworkAddressUsageMetrics",
        )),
        [(attribute, value)] => Ok(Action::ModifyVpcAttribute {
            vpc_id,
            attribute: *attribute,
            value: *value,
        }),
        many => Err(ApiError::new(
            ErrorCode::InvalidParameterCombination,
            format!(
                "Fields for multiple attribute types specified: {}",
                many.iter()
                    .map(|(a, _)| a.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
    }
}

fn parse_modify_subnet_attribute(p: &mut Params) -> Result<Action, ApiError> {
    let subnet_id = p.required("SubnetId")?;
    let map_public_ip_on_launch = take_attribute_bool(p, "MapPublicIpOnLaunch")?;
    let mut any = map_public_ip_on_launch.is_some();
    // Attributes of features gureum lacks (IPv6, DNS64, customer-owned IPs, resource-name
    // DNS records): their defaults are accepted, anything else is unsupported.
    for name in [
        "AssignIpv6AddressOnCreation",
        "MapCustomerOwnedIpOnLaunch",
        "EnableDns64",
        "EnableResourceNameDnsARecordOnLaunch",
        "EnableResourceNameDnsAAAARecordOnLaunch",
        "DisableLniAtDeviceIndex",
    ] {
        if let Some(v) = take_attribute_bool(p, name)? {
            any = true;
            if v {
                return Err(ApiError::new(
                    ErrorCode::UnsupportedOperation,
                    format!("gureum does not support {name}=true"),
                ));
            }
        }
    }
    if let Some(t) = p.take("PrivateDnsHostnameTypeOnLaunch") {
        any = true;
        if t != "ip-name" {
            return Err(ApiError::new(
                ErrorCode::UnsupportedOperation,
                format!("gureum supports only PrivateDnsHostnameTypeOnLaunch=ip-name, not {t}"),
            ));
        }
    }
    for name in ["CustomerOwnedIpv4Pool", "EnableLniAtDeviceIndex"] {
        if p.take(name).is_some() {
            return Err(ApiError::new(
                ErrorCode::UnsupportedOperation,
                format!("gureum does not support {name}"),
            ));
        }
    }
    if !any {
        return Err(ApiError::new(
            ErrorCode::MissingParameter,
            "The request must contain the parameter MapPublicIpOnLaunch",
        ));
    }
    Ok(Action::ModifySubnetAttribute {
        subnet_id,
        map_public_ip_on_launch,
    })
}

/// The route targets of `CreateRoute`/`ReplaceRoute` besides `GatewayId`, none of which gureum
/// has.
const OTHER_ROUTE_TARGETS: &[&str] = &[
    "NatGatewayId",
    "InstanceId",
    "NetworkInterfaceId",
    "VpcPeeringConnectionId",
    "TransitGatewayId",
    "EgressOnlyInternetGatewayId",
    "LocalGatewayId",
    "CarrierGatewayId",
    "VpcEndpointId",
    "CoreNetworkArn",
    "OdbNetworkArn",
];

fn parse_put_route(p: &mut Params, replace: bool) -> Result<Action, ApiError> {
    let route_table_id = p.required("RouteTableId")?;
    for name in ["DestinationIpv6CidrBlock", "DestinationPrefixListId"] {
        if p.take(name).is_some() {
            return Err(ApiError::new(
                ErrorCode::UnsupportedOperation,
                format!("gureum routes IPv4 CIDR destinations only ({name} is not supported)"),
            ));
        }
    }
    let destination_cidr_block = p.required("DestinationCidrBlock")?;
    for name in OTHER_ROUTE_TARGETS {
        if p.take(name).is_some() {
            return Err(ApiError::new(
                ErrorCode::UnsupportedOperation,
                format!(
                    "gureum routes only to internet gateways (GatewayId); {name} is not supported"
                ),
            ));
        }
    }
    if replace && p.take_bool("LocalTarget")? == Some(true) {
        return Err(ApiError::new(
            ErrorCode::UnsupportedOperation,
            "gureum does not support LocalTarget: the local route cannot be changed",
        ));
    }
    let gateway_id = p
        .take("GatewayId")
        .filter(|g| !g.is_empty())
        .ok_or_else(|| {
            ApiError::new(
            ErrorCode::MissingParameter,
            "The request must contain exactly one of gatewayId, natGatewayId, networkInterfaceId, \
             vpcPeeringConnectionId, egressOnlyInternetGatewayId, transitGatewayId, \
             localGatewayId, carrierGatewayId, coreNetworkArn or instanceId",
        )
        })?;
    Ok(Action::PutRoute {
        replace,
        route_table_id,
        destination_cidr_block,
        gateway_id,
    })
}

fn vpc_attribute(name: &str) -> Result<VpcAttribute, ApiError> {
    match name {
        "enableDnsSupport" => Ok(VpcAttribute::EnableDnsSupport),
        "enableDnsHostnames" => Ok(VpcAttribute::EnableDnsHostnames),
        "enableNetworkAddressUsageMetrics" => Ok(VpcAttribute::EnableNetworkAddressUsageMetrics),
        other => Err(ApiError::invalid_value(
            "Attribute",
            other,
            "Valid values: enableDnsSupport, enableDnsHostnames, enableNetworkAddressUsageMetrics",
        )),
    }
}

/// The VPC, subnet, internet gateway and route table actions (`None`: not one of them).
fn parse_vpc_action(action: &str, p: &mut Params) -> Result<Option<Action>, ApiError> {
    Ok(Some(match action {
        "CreateVpc" => {
            if p.take_bool("AmazonProvidedIpv6CidrBlock")? == Some(true) {
                return Err(ApiError::new(
                    ErrorCode::UnsupportedOperation,
                    "gureum VPCs are IPv4 only (AmazonProvidedIpv6CidrBlock is not supported)",
                ));
            }
            for name in [
                "Ipv6Pool",
                "Ipv6CidrBlock",
                "Ipv4IpamPoolId",
                "Ipv4NetmaskLength",
                "Ipv6IpamPoolId",
                "Ipv6NetmaskLength",
                "Ipv6CidrBlockNetworkBorderGroup",
            ] {
                if p.take(name).is_some() {
                    return Err(ApiError::new(
                        ErrorCode::UnsupportedOperation,
                        format!("gureum does not support {name}: give CidrBlock"),
                    ));
                }
            }
            let cidr_block = p.required("CidrBlock")?;
            let instance_tenancy = match p.take("InstanceTenancy") {
                None => "default".to_string(),
                Some(t) if t == "default" || t == "dedicated" => t,
                Some(t) => {
                    return Err(ApiError::invalid_value(
                        "InstanceTenancy",
                        &t,
                        "Valid values: default, dedicated",
                    ))
                }
            };
            Action::CreateVpc {
                cidr_block,
                instance_tenancy,
                tag_specifications: p.take_tag_specifications()?,
            }
        }
        "DeleteVpc" => Action::DeleteVpc {
            vpc_id: p.required("VpcId")?,
        },
        "ModifyVpcAttribute" => parse_modify_vpc_attribute(p)?,
        "DescribeVpcAttribute" => Action::DescribeVpcAttribute {
            vpc_id: p.required("VpcId")?,
            attribute: vpc_attribute(&p.required("Attribute")?)?,
        },
        "CreateSubnet" => {
            for name in [
                "Ipv6CidrBlock",
                "Ipv4IpamPoolId",
                "Ipv4NetmaskLength",
                "Ipv6IpamPoolId",
                "Ipv6NetmaskLength",
                "OutpostArn",
            ] {
                if p.take(name).is_some() {
                    return Err(ApiError::new(
                        ErrorCode::UnsupportedOperation,
                        format!("gureum does not support {name}: give CidrBlock"),
                    ));
                }
            }
            if p.take_bool("Ipv6Native")? == Some(true) {
                return Err(ApiError::new(
                    ErrorCode::UnsupportedOperation,
                    "gureum subnets are IPv4 only (Ipv6Native is not supported)",
                ));
            }
            Action::CreateSubnet {
                vpc_id: p.required("VpcId")?,
                cidr_block: p.required("CidrBlock")?,
                availability_zone: p.take("AvailabilityZone").filter(|v| !v.is_empty()),
                availability_zone_id: p.take("AvailabilityZoneId").filter(|v| !v.is_empty()),
                tag_specifications: p.take_tag_specifications()?,
            }
        }
        "DeleteSubnet" => Action::DeleteSubnet {
            subnet_id: p.required("SubnetId")?,
        },
        "ModifySubnetAttribute" => parse_modify_subnet_attribute(p)?,
        "CreateInternetGateway" => Action::CreateInternetGateway {
            tag_specifications: p.take_tag_specifications()?,
        },
        "DeleteInternetGateway" => Action::DeleteInternetGateway {
            internet_gateway_id: p.required("InternetGatewayId")?,
        },
        "AttachInternetGateway" | "DetachInternetGateway" => {
            let internet_gateway_id = p.required("InternetGatewayId")?;
            let vpc_id = p.required("VpcId")?;
            if action == "AttachInternetGateway" {
                Action::AttachInternetGateway {
                    internet_gateway_id,
                    vpc_id,
                }
            } else {
                Action::DetachInternetGateway {
                    internet_gateway_id,
                    vpc_id,
                }
            }
        }
        "DescribeInternetGateways" => Action::DescribeInternetGateways {
            internet_gateway_ids: p.take_list("InternetGatewayId")?,
            filters: p.take_filters()?,
            page: take_page(p, 5, 1000)?,
        },
        "CreateRouteTable" => Action::CreateRouteTable {
            vpc_id: p.required("VpcId")?,
            client_token: p.take("ClientToken"),
            tag_specifications: p.take_tag_specifications()?,
        },
        "DeleteRouteTable" => Action::DeleteRouteTable {
            route_table_id: p.required("RouteTableId")?,
        },
        "DescribeRouteTables" => Action::DescribeRouteTables {
            route_table_ids: p.take_list("RouteTableId")?,
            filters: p.take_filters()?,
            page: take_page(p, 5, 100)?,
        },
        "CreateRoute" => parse_put_route(p, false)?,
        "ReplaceRoute" => parse_put_route(p, true)?,
        "DeleteRoute" => {
            let route_table_id = p.required("RouteTableId")?;
            for name in ["DestinationIpv6CidrBlock", "DestinationPrefixListId"] {
                if p.take(name).is_some() {
                    return Err(ApiError::new(
                        ErrorCode::UnsupportedOperation,
                        format!(
                            "gureum routes IPv4 CIDR destinations only ({name} is not supported)"
                        ),
                    ));
                }
            }
            Action::DeleteRoute {
                route_table_id,
                destination_cidr_block: p.required("DestinationCidrBlock")?,
            }
        }
        "AssociateRouteTable" => {
            let route_table_id = p.required("RouteTableId")?;
            if p.take("GatewayId").is_some() || p.take("PublicIpv4Pool").is_some() {
                return Err(ApiError::new(
                    ErrorCode::UnsupportedOperation,
                    "gureum associates route tables with subnets only (no gateway route tables)",
                ));
            }
            Action::AssociateRouteTable {
                route_table_id,
                subnet_id: p.required("SubnetId")?,
            }
        }
        "DisassociateRouteTable" => Action::DisassociateRouteTable {
            association_id: p.required("AssociationId")?,
        },
        "ReplaceRouteTableAssociation" => Action::ReplaceRouteTableAssociation {
            association_id: p.required("AssociationId")?,
            route_table_id: p.required("RouteTableId")?,
        },
        _ => return Ok(None),
    }))
}

/// Parse a request's parameters (without `Action` and `Version`) into a typed [`Request`].
pub fn parse(action: &str, mut p: Params) -> Result<Request, ApiError> {
    let dry_run = p.take_dry_run()?;
    if let Some(action) = parse_vpc_action(action, &mut p)? {
        p.finish()?;
        return Ok(Request { action, dry_run });
    }
    let action = match action {
        "DescribeRegions" => {
            let region_names = p.take_list("RegionName")?;
            let filters = p.take_filters()?;
            p.take_bool("AllRegions")?;
            Action::DescribeRegions {
                region_names,
                filters,
            }
        }
        "DescribeAvailabilityZones" => {
            let zone_names = p.take_list("ZoneName")?;
            let zone_ids = p.take_list("ZoneId")?;
            let filters = p.take_filters()?;
            p.take_bool("AllAvailabilityZones")?;
            Action::DescribeAvailabilityZones {
                zone_names,
                zone_ids,
                filters,
            }
        }
        "DescribeAccountAttributes" => Action::DescribeAccountAttributes {
            attribute_names: p.take_list("AttributeName")?,
        },
        "DescribeInstanceTypes" => {
            let instance_types = p.take_list("InstanceType")?;
            let filters = p.take_filters()?;
            let page = take_page(&mut p, 5, 100)?;
            p.take_bool("IncludeUnsupportedInRegion")?;
            Action::DescribeInstanceTypes {
                instance_types,
                filters,
                page,
            }
        }
        "DescribeInstanceTypeOfferings" => {
            let location_type = one_of(
                "LocationType",
                p.take("LocationType").unwrap_or_else(|| "region".into()),
                &["region", "availability-zone", "availability-zone-id"],
            )?;
            let filters = p.take_filters()?;
            let page = take_page(&mut p, 5, 1000)?;
            Action::DescribeInstanceTypeOfferings {
                location_type,
                filters,
                page,
            }
        }
        "CreateKeyPair" => {
            let key_name = p.required("KeyName")?;
            let key_type = one_of(
                "KeyType",
                p.take("KeyType").unwrap_or_else(|| "rsa".into()),
                &["rsa", "ed25519"],
            )?;
            let key_format = one_of(
                "KeyFormat",
                p.take("KeyFormat").unwrap_or_else(|| "pem".into()),
                &["pem", "ppk"],
            )?;
            Action::CreateKeyPair {
                key_name,
                key_type,
                key_format,
                tag_specifications: p.take_tag_specifications()?,
            }
        }
        "ImportKeyPair" => {
            let key_name = p.required("KeyName")?;
            let material = p.required("PublicKeyMaterial")?;
            let public_key_material = base64::engine::general_purpose::STANDARD
                .decode(material.trim())
                .map_err(|_| {
                    ApiError::new(
                        ErrorCode::InvalidParameterValue,
                        "Value for parameter PublicKeyMaterial is invalid. Invalid base64 encoding",
                    )
                })?;
            Action::ImportKeyPair {
                key_name,
                public_key_material,
                tag_specifications: p.take_tag_specifications()?,
            }
        }
        "DescribeKeyPairs" => Action::DescribeKeyPairs {
            key_names: p.take_list("KeyName")?,
            key_pair_ids: p.take_list("KeyPairId")?,
            filters: p.take_filters()?,
            include_public_key: p.take_bool("IncludePublicKey")?.unwrap_or(false),
        },
        "DeleteKeyPair" => {
            let key_name = p.take("KeyName").filter(|s| !s.is_empty());
            let key_pair_id = p.take("KeyPairId").filter(|s| !s.is_empty());
            if key_name.is_none() && key_pair_id.is_none() {
                return Err(ApiError::new(
                    ErrorCode::MissingParameter,
                    "The request must contain the parameter KeyName or KeyPairId",
                ));
            }
            Action::DeleteKeyPair {
                key_name,
                key_pair_id,
            }
        }
        "CreateTags" => {
            let resources = p.take_list("ResourceId")?;
            if resources.is_empty() {
                return Err(ApiError::missing_parameter("ResourceId"));
            }
            let tags = p.take_tags("Tag")?;
            if tags.is_empty() {
                return Err(ApiError::missing_parameter("Tag"));
            }
            Action::CreateTags { resources, tags }
        }
        "DeleteTags" => {
            let resources = p.take_list("ResourceId")?;
            if resources.is_empty() {
                return Err(ApiError::missing_parameter("ResourceId"));
            }
            let tags = p
                .take_struct_list("Tag")?
                .into_iter()
                .map(|mut t| {
                    let key = t.take("Key").unwrap_or_default();
                    let value = t.take("Value");
                    t.finish()?;
                    Ok(DeleteTag { key, value })
                })
                .collect::<Result<_, ApiError>>()?;
            Action::DeleteTags { resources, tags }
        }
        "DescribeTags" => Action::DescribeTags {
            filters: p.take_filters()?,
            page: take_page(&mut p, 5, 1000)?,
        },
        "DescribeImages" => {
            let image_ids = p.take_list("ImageId")?;
            let owners = p.take_list("Owner")?;
            let executable_users = p.take_list("ExecutableBy")?;
            let filters = p.take_filters()?;
            let page = take_page(&mut p, 5, 1000)?;
            p.take_bool("IncludeDeprecated")?;
            p.take_bool("IncludeDisabled")?;
            Action::DescribeImages {
                image_ids,
                owners,
                executable_users,
                filters,
                page,
            }
        }
        "DeregisterImage" => {
            let image_id = p.required("ImageId")?;
            p.take_bool("DeleteAssociatedSnapshots")?;
            Action::DeregisterImage { image_id }
        }
        "CopyImage" => Action::CopyImage {
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
        },
        "CreateImage" => {
            let instance_id = p.required("InstanceId")?;
            let name = p.required("Name")?;
            let description = p.take("Description");
            let no_reboot = p.take_bool("NoReboot")?.unwrap_or(false);
            let tag_specifications = p.take_tag_specifications()?;
            Action::CreateImage {
                instance_id,
                name,
                description,
                no_reboot,
                tag_specifications,
            }
        }
        "ModifyImageAttribute" => parse_modify_image_attribute(&mut p)?,
        "DescribeImageAttribute" => Action::DescribeImageAttribute {
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
        },
        "ResetImageAttribute" => Action::ResetImageAttribute {
            image_id: p.required("ImageId")?,
            attribute: one_of("Attribute", p.required("Attribute")?, &["launchPermission"])?,
        },
        "RunInstances" => Action::RunInstances(Box::new(parse_run_instances(&mut p)?)),
        "DescribeInstances" => Action::DescribeInstances {
            instance_ids: p.take_list("InstanceId")?,
            filters: p.take_filters()?,
            page: take_page(&mut p, 5, 1000)?,
        },
        "StartInstances" => {
            let instance_ids = required_list(&mut p, "InstanceId")?;
            p.take("AdditionalInfo");
            Action::StartInstances { instance_ids }
        }
        "StopInstances" => {
            let instance_ids = required_list(&mut p, "InstanceId")?;
            let force = p.take_bool("Force")?.unwrap_or(false);
            p.take_bool("Hibernate")?;
            Action::StopInstances {
                instance_ids,
                force,
            }
        }
        "RebootInstances" => Action::RebootInstances {
            instance_ids: required_list(&mut p, "InstanceId")?,
        },
        "TerminateInstances" => Action::TerminateInstances {
            instance_ids: required_list(&mut p, "InstanceId")?,
        },
        "DescribeInstanceStatus" => Action::DescribeInstanceStatus {
            instance_ids: p.take_list("InstanceId")?,
            filters: p.take_filters()?,
            include_all_instances: p.take_bool("IncludeAllInstances")?.unwrap_or(false),
            page: take_page(&mut p, 5, 1000)?,
        },
        "GetConsoleOutput" => Action::GetConsoleOutput {
            instance_id: p.required("InstanceId")?,
            latest: p.take_bool("Latest")?.unwrap_or(false),
        },
        "ModifyInstanceAttribute" => parse_modify_instance_attribute(&mut p)?,
        "DescribeInstanceAttribute" => Action::DescribeInstanceAttribute {
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
        },
        "DescribeVpcs" => Action::DescribeVpcs {
            vpc_ids: p.take_list("VpcId")?,
            filters: p.take_filters()?,
            page: take_page(&mut p, 5, 1000)?,
        },
        "DescribeSubnets" => Action::DescribeSubnets {
            subnet_ids: p.take_list("SubnetId")?,
            filters: p.take_filters()?,
            page: take_page(&mut p, 5, 1000)?,
        },
        "CreateSecurityGroup" => Action::CreateSecurityGroup {
            group_name: p.required("GroupName")?,
            description: p.required("GroupDescription")?,
            vpc_id: p.take("VpcId").filter(|v| !v.is_empty()),
            tag_specifications: p.take_tag_specifications()?,
        },
        "DeleteSecurityGroup" => {
            let group_id = p.take("GroupId").filter(|v| !v.is_empty());
            let group_name = p.take("GroupName").filter(|v| !v.is_empty());
            if group_id.is_none() && group_name.is_none() {
                return Err(ApiError::new(
                    ErrorCode::MissingParameter,
                    "The request must contain the parameter groupName or groupId",
                ));
            }
            Action::DeleteSecurityGroup {
                group_id,
                group_name,
            }
        }
        "DescribeSecurityGroups" => Action::DescribeSecurityGroups {
            group_ids: p.take_list("GroupId")?,
            group_names: p.take_list("GroupName")?,
            filters: p.take_filters()?,
            page: take_page(&mut p, 5, 1000)?,
        },
        "AuthorizeSecurityGroupIngress" | "AuthorizeSecurityGroupEgress" => {
            let egress = action.ends_with("Egress");
            let (group_id, group_name) = take_group(&mut p, egress)?;
            let permissions = take_permissions(&mut p)?;
            Action::AuthorizeSecurityGroup {
                egress,
                group_id,
                group_name,
                permissions,
                tag_specifications: p.take_tag_specifications()?,
            }
        }
        "RevokeSecurityGroupIngress" | "RevokeSecurityGroupEgress" => {
            let egress = action.ends_with("Egress");
            let (group_id, group_name) = take_group(&mut p, egress)?;
            let rule_ids = p.take_list("SecurityGroupRuleId")?;
            let permissions = take_permissions(&mut p)?;
            if permissions.is_empty() && rule_ids.is_empty() {
                return Err(ApiError::missing_parameter("IpPermissions"));
            }
            Action::RevokeSecurityGroup {
                egress,
                group_id,
                group_name,
                permissions,
                rule_ids,
            }
        }
        "DescribeSecurityGroupRules" => Action::DescribeSecurityGroupRules {
            rule_ids: p.take_list("SecurityGroupRuleId")?,
            filters: p.take_filters()?,
            page: take_page(&mut p, 5, 1000)?,
        },
        "ModifySecurityGroupRules" => {
            let group_id = p.required("GroupId")?;
            let mut rules = Vec::new();
            for mut r in p.take_struct_list("SecurityGroupRule")? {
                let id = r
                    .take("SecurityGroupRuleId")
                    .ok_or_else(|| ApiError::missing_parameter("SecurityGroupRuleId"))?;
                let mut def = r.take_struct("SecurityGroupRule");
                let raw = def
                    .take("IpProtocol")
                    .ok_or_else(|| ApiError::missing_parameter("IpProtocol"))?;
                let from = port("FromPort", def.take_i64("FromPort")?)?;
                let to = port("ToPort", def.take_i64("ToPort")?)?;
                let (protocol, from_port, to_port) = finish_permission(&raw, from, to)?;
                let update = RuleUpdate {
                    protocol,
                    from_port,
                    to_port,
                    cidr_ipv4: def.take("CidrIpv4"),
                    cidr_ipv6: def.take("CidrIpv6"),
                    referenced_group_id: def.take("ReferencedGroupId"),
                    description: def.take("Description"),
                };
                def.take("PrefixListId");
                def.finish()?;
                r.finish()?;
                let peers = [
                    update.cidr_ipv4.is_some(),
                    update.cidr_ipv6.is_some(),
                    update.referenced_group_id.is_some(),
                ];
                if peers.iter().filter(|b| **b).count() != 1 {
                    return Err(ApiError::new(
                        ErrorCode::InvalidParameterCombination,
                        "Exactly one of CidrIpv4, CidrIpv6, PrefixListId or ReferencedGroupId must be specified",
                    ));
                }
                rules.push((id, update));
            }
            if rules.is_empty() {
                return Err(ApiError::missing_parameter("SecurityGroupRule"));
            }
            Action::ModifySecurityGroupRules { group_id, rules }
        }
        "AllocateAddress" => {
            if let Some(d) = p.take("Domain") {
                one_of("Domain", d, &["vpc", "standard"])?;
            }
            for k in [
                "NetworkBorderGroup",
                "PublicIpv4Pool",
                "CustomerOwnedIpv4Pool",
                "IpamPoolId",
            ] {
                p.take(k);
            }
            Action::AllocateAddress {
                address: p.take("Address").filter(|a| !a.is_empty()),
                tag_specifications: p.take_tag_specifications()?,
            }
        }
        "AssociateAddress" => {
            let allocation_id = p.take("AllocationId").filter(|v| !v.is_empty());
            let public_ip = p.take("PublicIp").filter(|v| !v.is_empty());
            if allocation_id.is_none() && public_ip.is_none() {
                return Err(ApiError::missing_parameter("AllocationId"));
            }
            let instance_id = p.take("InstanceId").filter(|v| !v.is_empty());
            let network_interface_id = p.take("NetworkInterfaceId").filter(|v| !v.is_empty());
            if instance_id.is_none() && network_interface_id.is_none() {
                return Err(ApiError::new(
                    ErrorCode::MissingParameter,
                    "Either instance ID or network interface ID must be specified",
                ));
            }
            Action::AssociateAddress {
                allocation_id,
                public_ip,
                instance_id,
                network_interface_id,
                private_ip: p.take("PrivateIpAddress").filter(|v| !v.is_empty()),
                allow_reassociation: p.take_bool("AllowReassociation")?.unwrap_or(false),
            }
        }
        "DisassociateAddress" => {
            let association_id = p.take("AssociationId").filter(|v| !v.is_empty());
            let public_ip = p.take("PublicIp").filter(|v| !v.is_empty());
            if association_id.is_none() && public_ip.is_none() {
                return Err(ApiError::missing_parameter("AssociationId"));
            }
            Action::DisassociateAddress {
                association_id,
                public_ip,
            }
        }
        "ReleaseAddress" => {
            let allocation_id = p.take("AllocationId").filter(|v| !v.is_empty());
            let public_ip = p.take("PublicIp").filter(|v| !v.is_empty());
            if allocation_id.is_none() && public_ip.is_none() {
                return Err(ApiError::missing_parameter("AllocationId"));
            }
            p.take("NetworkBorderGroup");
            Action::ReleaseAddress {
                allocation_id,
                public_ip,
            }
        }
        "DescribeAddresses" => Action::DescribeAddresses {
            public_ips: p.take_list("PublicIp")?,
            allocation_ids: p.take_list("AllocationId")?,
            filters: p.take_filters()?,
        },
        "DescribeNetworkInterfaces" => Action::DescribeNetworkInterfaces {
            ids: p.take_list("NetworkInterfaceId")?,
            filters: p.take_filters()?,
            page: take_page(&mut p, 5, 1000)?,
        },
        "ModifyInstanceMetadataOptions" => {
            let instance_id = p.required("InstanceId")?;
            let http_tokens = match p.take("HttpTokens") {
                None => None,
                Some(v) => Some(one_of("HttpTokens", v, &["optional", "required"])?),
            };
            let http_endpoint = match p.take("HttpEndpoint") {
                None => None,
                Some(v) => Some(one_of("HttpEndpoint", v, &["enabled", "disabled"])?),
            };
            let hop_limit = match p.take_i64("HttpPutResponseHopLimit")? {
                None | Some(-1) => None,
                Some(n) if (1..=64).contains(&n) => Some(n as u32),
                Some(n) => {
                    return Err(ApiError::invalid_value(
                        "HttpPutResponseHopLimit",
                        &n.to_string(),
                        "Must be between 1 and 64.",
                    ))
                }
            };
            for k in ["HttpProtocolIpv6", "InstanceMetadataTags"] {
                p.take(k);
            }
            Action::ModifyInstanceMetadataOptions {
                instance_id,
                http_tokens,
                http_endpoint,
                hop_limit,
            }
        }
        other => {
            return Err(ApiError::new(
                ErrorCode::InvalidAction,
                format!("The action {other} is not valid for this web service."),
            ))
        }
    };
    p.finish()?;
    Ok(Request { action, dry_run })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_form(form: &str) -> Result<Request, ApiError> {
        let mut p = Params::from_form(form.as_bytes()).unwrap();
        let action = p.take("Action").unwrap();
        p.take("Version");
        parse(&action, p)
    }

    #[test]
    fn describe_key_pairs_as_the_cli_sends_it() {
        let r = parse_form(
            "Action=DescribeKeyPairs&Version=2016-11-15&KeyName.1=a&KeyName.2=b\
             &Filter.1.Name=key-type&Filter.1.Value.1=rsa&IncludePublicKey=true",
        )
        .unwrap();
        assert!(!r.dry_run);
        let Action::DescribeKeyPairs {
            key_names,
            filters,
            include_public_key,
            ..
        } = r.action
        else {
            panic!("wrong action")
        };
        assert_eq!(key_names, vec!["a", "b"]);
        assert_eq!(filters[0].name, "key-type");
        assert!(include_public_key);
    }

    #[test]
    fn unknown_actions_and_parameters() {
        assert_eq!(
            parse_form("Action=LaunchRockets").unwrap_err().code,
            ErrorCode::InvalidAction
        );
        let e = parse_form("Action=DescribeKeyPairs&Bogus=1").unwrap_err();
        assert_eq!(e.code, ErrorCode::UnknownParameter);
        assert_eq!(e.message, "The parameter Bogus is not recognized");
    }

    #[test]
    fn create_key_pair_validates_enums_and_required_names() {
        assert_eq!(
            parse_form("Action=CreateKeyPair").unwrap_err().code,
            ErrorCode::MissingParameter
        );
        assert_eq!(
            parse_form("Action=CreateKeyPair&KeyName=k&KeyType=dsa")
                .unwrap_err()
                .code,
            ErrorCode::InvalidParameterValue
        );
        let r = parse_form("Action=CreateKeyPair&KeyName=k&DryRun=true").unwrap();
        assert!(r.dry_run);
        assert!(r.action.is_mutating());
    }

    #[test]
    fn max_results_bounds() {
        let e = parse_form("Action=DescribeInstanceTypes&MaxResults=4").unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidParameterValue);
        parse_form("Action=DescribeInstanceTypes&MaxResults=5").unwrap();
    }

    #[test]
    fn import_key_pair_decodes_base64() {
        let r = parse_form("Action=ImportKeyPair&KeyName=k&PublicKeyMaterial=c3NoLXJzYQ%3D%3D")
            .unwrap();
        let Action::ImportKeyPair {
            public_key_material,
            ..
        } = r.action
        else {
            panic!()
        };
        assert_eq!(public_key_material, b"ssh-rsa");
        assert_eq!(
            parse_form("Action=ImportKeyPair&KeyName=k&PublicKeyMaterial=!!")
                .unwrap_err()
                .code,
            ErrorCode::InvalidParameterValue
        );
    }

    #[test]
    fn vpc_actions_parse_as_the_cli_sends_them() {
        let r = parse_form("Action=ModifyVpcAttribute&VpcId=vpc-1&EnableDnsHostnames.Value=true")
            .unwrap();
        assert_eq!(
            r.action,
            Action::ModifyVpcAttribute {
                vpc_id: "vpc-1".into(),
                attribute: VpcAttribute::EnableDnsHostnames,
                value: true
            }
        );
        let e = parse_form(
            "Action=ModifyVpcAttribute&VpcId=v&EnableDnsHostnames.Value=true&EnableDnsSupport.Value=true",
        )
        .unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidParameterCombination);
        assert_eq!(
            parse_form("Action=ModifyVpcAttribute&VpcId=v")
                .unwrap_err()
                .code,
            ErrorCode::MissingParameter
        );
        let r = parse_form(
            "Action=CreateRoute&RouteTableId=rtb-1&DestinationCidrBlock=0.0.0.0/0&GatewayId=igw-1",
        )
        .unwrap();
        assert!(matches!(r.action, Action::PutRoute { replace: false, .. }));
        assert_eq!(r.action.name(), "CreateRoute");
        let e = parse_form(
            "Action=CreateRoute&RouteTableId=rtb-1&DestinationCidrBlock=0.0.0.0/0&NatGatewayId=nat-1",
        )
        .unwrap_err();
        assert_eq!(e.code, ErrorCode::UnsupportedOperation);
        assert_eq!(
            parse_form("Action=CreateRoute&RouteTableId=rtb-1&DestinationCidrBlock=0.0.0.0/0")
                .unwrap_err()
                .code,
            ErrorCode::MissingParameter
        );
        let r = parse_form(
            "Action=ReplaceRoute&RouteTableId=r&DestinationCidrBlock=0.0.0.0/0&GatewayId=g",
        )
        .unwrap();
        assert!(r.action.is_mutating());
        assert_eq!(r.action.name(), "ReplaceRoute");
        assert_eq!(
            parse_form("Action=CreateVpc&CidrBlock=10.0.0.0/16&AmazonProvidedIpv6CidrBlock=true")
                .unwrap_err()
                .code,
            ErrorCode::UnsupportedOperation
        );
        assert_eq!(
            parse_form("Action=CreateVpc&CidrBlock=10.0.0.0/16&InstanceTenancy=host")
                .unwrap_err()
                .code,
            ErrorCode::InvalidParameterValue
        );
        let r =
            parse_form("Action=ModifySubnetAttribute&SubnetId=s&MapPublicIpOnLaunch.Value=true")
                .unwrap();
        assert_eq!(
            r.action,
            Action::ModifySubnetAttribute {
                subnet_id: "s".into(),
                map_public_ip_on_launch: Some(true)
            }
        );
        assert_eq!(
            parse_form("Action=ModifySubnetAttribute&SubnetId=s&EnableDns64.Value=true")
                .unwrap_err()
                .code,
            ErrorCode::UnsupportedOperation
        );
        let r = parse_form("Action=DescribeInternetGateways&InternetGatewayId.1=igw-1&Filter.1.Name=attachment.vpc-id&Filter.1.Value.1=v").unwrap();
        assert!(
            matches!(r.action, Action::DescribeInternetGateways { ref internet_gateway_ids, .. } if internet_gateway_ids == &["igw-1"])
        );
        assert_eq!(
            parse_form("Action=DeleteVpc&VpcId=v&Bogus=1")
                .unwrap_err()
                .code,
            ErrorCode::UnknownParameter
        );
    }

    #[test]
    fn supported_actions_all_parse() {
        for name in SUPPORTED_ACTIONS {
            let e = parse(name, Params::default());
            if let Err(e) = e {
                assert_ne!(e.code, ErrorCode::InvalidAction, "{name}");
            }
        }
    }

    /// The one permission of an `AuthorizeSecurityGroupIngress` with `perm` appended.
    fn authorize(perm: &str) -> Result<(IpProtocol, Option<i32>, Option<i32>), ApiError> {
        let r = parse_form(&format!(
            "Action=AuthorizeSecurityGroupIngress&GroupId=sg-1\
             &IpPermissions.1.IpRanges.1.CidrIp=10.0.0.0/8{perm}"
        ))?;
        match r.action {
            Action::AuthorizeSecurityGroup { permissions, .. } => {
                assert_eq!(permissions.len(), 1);
                let p = &permissions[0];
                Ok((p.protocol, p.from_port, p.to_port))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn permission_protocols_parse_into_their_type() {
        let cases = [
            (
                "tcp&IpPermissions.1.FromPort=22&IpPermissions.1.ToPort=22",
                IpProtocol::Tcp,
                Some(22),
                Some(22),
            ),
            (
                "6&IpPermissions.1.FromPort=22&IpPermissions.1.ToPort=23",
                IpProtocol::Tcp,
                Some(22),
                Some(23),
            ),
            (
                "UDP&IpPermissions.1.FromPort=-1&IpPermissions.1.ToPort=-1",
                IpProtocol::Udp,
                Some(0),
                Some(65535),
            ),
            (
                "icmp&IpPermissions.1.FromPort=8&IpPermissions.1.ToPort=-1",
                IpProtocol::Icmp,
                Some(8),
                Some(-1),
            ),
            ("1", IpProtocol::Icmp, Some(-1), Some(-1)),
            // ICMPv6's type and code are optional: absent, every one.
            ("icmpv6", IpProtocol::Icmpv6, Some(-1), Some(-1)),
            (
                "58&IpPermissions.1.FromPort=128&IpPermissions.1.ToPort=0",
                IpProtocol::Icmpv6,
                Some(128),
                Some(0),
            ),
            (
                "-1&IpPermissions.1.FromPort=22&IpPermissions.1.ToPort=22",
                IpProtocol::All,
                None,
                None,
            ),
            ("all", IpProtocol::All, None, None),
            // Another number: that protocol on every port, whatever ports were given.
            (
                "47&IpPermissions.1.FromPort=22&IpPermissions.1.ToPort=22",
                IpProtocol::Other(47),
                None,
                None,
            ),
            ("0", IpProtocol::Other(0), None, None),
            ("255", IpProtocol::Other(255), None, None),
        ];
        for (proto, want, from, to) in cases {
            let got = authorize(&format!("&IpPermissions.1.IpProtocol={proto}"));
            assert_eq!(got, Ok((want, from, to)), "{proto}");
        }
        // The shorthand form parses the same way.
        let r = parse_form(
            "Action=AuthorizeSecurityGroupIngress&GroupName=web&IpProtocol=58&CidrIp=0.0.0.0/0",
        )
        .unwrap();
        let Action::AuthorizeSecurityGroup { permissions, .. } = r.action else {
            panic!("not an authorize")
        };
        assert_eq!(permissions[0].protocol, IpProtocol::Icmpv6);
    }

    #[test]
    fn unknown_permission_protocols_get_aws_error() {
        for proto in ["256", "-2", "tcp6", "ipv6-icmp", "gre", "", "6.0"] {
            let e = authorize(&format!(
                "&IpPermissions.1.IpProtocol={proto}&IpPermissions.1.FromPort=1&IpPermissions.1.ToPort=2"
            ))
            .unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidParameterValue, "{proto}");
            assert_eq!(
                e.message,
                format!("Invalid value '{proto}' for IP protocol. Unknown protocol."),
            );
        }
        let e = parse_form(
            "Action=ModifySecurityGroupRules&GroupId=sg-1&SecurityGroupRule.1.SecurityGroupRuleId=sgr-1\
             &SecurityGroupRule.1.SecurityGroupRule.IpProtocol=icmp7\
             &SecurityGroupRule.1.SecurityGroupRule.CidrIpv4=10.0.0.0/8",
        )
        .unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidParameterValue);
    }
}

#[cfg(test)]
mod compatibility_doc {
    /// docs/COMPATIBILITY.md must list every supported action.
    #[test]
    fn every_supported_action_is_documented() {
        let doc = include_str!("../../../docs/COMPATIBILITY.md");
        for a in super::SUPPORTED_ACTIONS {
            assert!(
                doc.contains(&format!("| `{a}` |")),
                "{a} missing from docs/COMPATIBILITY.md"
            );
        }
    }
}
