//! Domain records shared by the core (which produces them) and the protocol layer (which
//! renders them): what an account owns, as the API shows it.

/// A 12-digit AWS account id.
pub type AccountId = String;

/// A tag on a resource.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tag {
    pub key: String,
    pub value: String,
}

/// One `Filter.N` of a Describe call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    pub name: String,
    pub values: Vec<String>,
}

/// One `TagSpecification.N` of a create call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagSpecification {
    pub resource_type: String,
    pub tags: Vec<Tag>,
}

/// A key pair as `DescribeKeyPairs` shows it. The private key is never stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPair {
    pub id: String,
    pub name: String,
    pub fingerprint: String,
    /// `rsa` or `ed25519` (`ecdsa` for imported ECDSA keys, a gureum extension).
    pub key_type: String,
    pub public_key: String,
    /// RFC 3339 with milliseconds, UTC, as AWS renders `CreateTime`.
    pub create_time: String,
    pub tags: Vec<Tag>,
}

/// A row of `DescribeTags`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagDescription {
    pub resource_id: String,
    pub resource_type: String,
    pub key: String,
    pub value: String,
}

/// An account: the owner of every resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: AccountId,
    pub name: String,
    pub create_time: String,
}

/// An access key pair of an account. The secret is needed to verify signatures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessKey {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub account_id: AccountId,
}

/// An AMI as `DescribeImages` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    pub id: String,
    pub owner_id: AccountId,
    /// `gureum` for built-in images (as AWS shows `amazon`), absent otherwise.
    pub owner_alias: Option<String>,
    pub name: String,
    pub description: String,
    /// `pending`, `available`, `failed` (deregistered images are gone from the record).
    pub state: crate::ImageState,
    pub state_reason: Option<String>,
    pub public: bool,
    pub creation_date: String,
    pub login_user: String,
    /// The root volume size the image needs at least, in GiB (the default for launches).
    pub root_size_gib: u32,
    /// `machine`
    pub image_type: String,
    pub architecture: crate::Architecture,
    pub virtualization_type: crate::VirtualizationType,
    pub root_device_type: crate::DeviceType,
    /// `/dev/xvda` unless the image was registered with another.
    pub root_device_name: String,
    /// The volumes an instance of the image gets, the root device's first.
    pub block_devices: Vec<ImageBlockDevice>,
    pub source_instance_id: Option<String>,
    pub source_image_id: Option<String>,
    pub tags: Vec<Tag>,
}

/// One EBS entry of an image's `blockDeviceMapping`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageBlockDevice {
    pub device_name: String,
    /// The snapshot the volume is made from (an image registered from snapshots).
    pub snapshot_id: Option<String>,
    pub volume_size: u32,
    pub volume_type: crate::VolumeType,
    pub delete_on_termination: bool,
}

/// A VPC as `DescribeVpcs` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vpc {
    pub id: String,
    pub owner_id: AccountId,
    pub cidr: String,
    pub is_default: bool,
    pub state: String,
    /// `default` or `dedicated` (recorded; every instance runs on this host either way).
    pub instance_tenancy: crate::Tenancy,
    pub tags: Vec<Tag>,
}

/// A subnet as `DescribeSubnets` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subnet {
    pub id: String,
    pub owner_id: AccountId,
    pub vpc_id: String,
    pub cidr: String,
    pub availability_zone: String,
    pub availability_zone_id: String,
    pub default_for_az: bool,
    pub map_public_ip_on_launch: bool,
    pub available_ip_address_count: u32,
    pub state: String,
    pub tags: Vec<Tag>,
}

/// An internet gateway as `DescribeInternetGateways` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InternetGateway {
    pub id: String,
    pub owner_id: AccountId,
    /// The VPC it is attached to, if any.
    pub vpc_id: Option<String>,
    pub tags: Vec<Tag>,
}

/// One route of a route table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub destination_cidr_block: String,
    /// `local` for the VPC's implied route, else an internet gateway id.
    pub gateway_id: String,
    /// `CreateRouteTable` (the local route) or `CreateRoute`.
    pub origin: String,
    /// `active`, or `blackhole` when the gateway is no longer attached to the VPC.
    pub state: String,
}

/// A route table's association: with a subnet, or the VPC's main association.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteTableAssociation {
    pub id: String,
    pub route_table_id: String,
    pub subnet_id: Option<String>,
    pub main: bool,
}

/// A route table as `DescribeRouteTables` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteTable {
    pub id: String,
    pub owner_id: AccountId,
    pub vpc_id: String,
    pub routes: Vec<Route>,
    pub associations: Vec<RouteTableAssociation>,
    pub tags: Vec<Tag>,
}

/// An instance as `DescribeInstances` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    pub id: String,
    pub owner_id: AccountId,
    pub reservation_id: String,
    pub image_id: String,
    pub instance_type: String,
    pub key_name: Option<String>,
    pub state: crate::InstanceState,
    /// `StateTransitionReason`, e.g. `User initiated (2026-11-26 06:00:00 GMT)`.
    pub state_transition_reason: String,
    /// `StateReason`, e.g. `Client.UserInitiatedShutdown`.
    pub state_reason: Option<crate::StateReason>,
    pub launch_time: String,
    pub launch_index: u32,
    pub availability_zone: String,
    pub vpc_id: String,
    pub subnet_id: String,
    pub private_ip: String,
    pub mac: String,
    pub network_interface_id: String,
    pub public_ip: Option<String>,
    pub root_volume_id: String,
    pub root_volume_gib: u32,
    pub delete_on_termination: bool,
    pub shutdown_behavior: crate::ShutdownBehavior,
    pub disable_api_termination: bool,
    pub client_token: Option<String>,
    pub vcpus: u32,
    pub cores: u32,
    pub threads_per_core: u32,
    /// Which driver runs it (`container` or `vm` in the API's `hypervisor`).
    pub hypervisor: crate::Hypervisor,
    pub architecture: crate::Architecture,
    pub virtualization_type: crate::VirtualizationType,
    pub root_device_type: crate::DeviceType,
    /// `Placement.Tenancy`.
    pub tenancy: crate::Tenancy,
    pub metadata_http_tokens: crate::HttpTokens,
    pub metadata_http_endpoint: crate::HttpEndpoint,
    pub metadata_hop_limit: u32,
    /// (group id, group name), in launch order.
    pub security_groups: Vec<(String, String)>,
    pub tags: Vec<Tag>,
}

impl Instance {
    /// `ec2-127-100-0-5.compute-1.amazonaws.com` (us-east-1) or
    /// `ec2-….<region>.compute.amazonaws.com`, as AWS names public addresses; empty without one.
    pub fn public_dns_name(&self, region: &str) -> String {
        let Some(ip) = &self.public_ip else {
            return String::new();
        };
        let host = format!("ec2-{}", ip.replace('.', "-"));
        if region == "us-east-1" {
            format!("{host}.compute-1.amazonaws.com")
        } else {
            format!("{host}.{region}.compute.amazonaws.com")
        }
    }

    /// `ip-172-31-5-10.ec2.internal` (us-east-1) or `ip-….<region>.compute.internal`.
    pub fn private_dns_name(&self, region: &str) -> String {
        if self.private_ip.is_empty() {
            return String::new();
        }
        let host = format!("ip-{}", self.private_ip.replace('.', "-"));
        if region == "us-east-1" {
            format!("{host}.ec2.internal")
        } else {
            format!("{host}.{region}.compute.internal")
        }
    }
}

/// A security group as `DescribeSecurityGroups` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityGroup {
    pub id: String,
    pub owner_id: AccountId,
    pub vpc_id: String,
    pub name: String,
    pub description: String,
    pub rules: Vec<SecurityGroupRule>,
    pub tags: Vec<Tag>,
}

/// One rule of a security group (`DescribeSecurityGroupRules`' shape).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityGroupRule {
    pub id: String,
    pub group_id: String,
    pub owner_id: AccountId,
    pub is_egress: bool,
    pub protocol: crate::IpProtocol,
    /// For tcp/udp the port range; for icmp/icmpv6 the type and code (-1 = all); absent for
    /// `-1` and other protocol numbers (every port).
    pub from_port: Option<i32>,
    pub to_port: Option<i32>,
    pub cidr_ipv4: Option<String>,
    pub cidr_ipv6: Option<String>,
    /// Another group of the same account whose members the rule admits.
    pub referenced_group_id: Option<String>,
    pub description: Option<String>,
}

impl SecurityGroupRule {
    /// Two rules are the same permission (AWS's duplicate test) when everything but the id
    /// and the description matches.
    pub fn same_permission(&self, o: &SecurityGroupRule) -> bool {
        self.is_egress == o.is_egress
            && self.protocol == o.protocol
            && self.from_port == o.from_port
            && self.to_port == o.to_port
            && self.cidr_ipv4 == o.cidr_ipv4
            && self.cidr_ipv6 == o.cidr_ipv6
            && self.referenced_group_id == o.referenced_group_id
    }
}

/// An Elastic IP address as `DescribeAddresses` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    pub public_ip: String,
    pub allocation_id: String,
    pub association_id: Option<String>,
    pub instance_id: Option<String>,
    pub network_interface_id: Option<String>,
    pub network_interface_owner_id: Option<AccountId>,
    pub private_ip: Option<String>,
    pub tags: Vec<Tag>,
}

/// An instance's network interface as `DescribeNetworkInterfaces` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkInterface {
    pub id: String,
    pub owner_id: AccountId,
    pub subnet_id: String,
    pub vpc_id: String,
    pub availability_zone: String,
    pub mac: String,
    pub private_ip: String,
    pub private_dns_name: String,
    /// `in-use` while attached to a live instance.
    pub status: String,
    pub instance_id: String,
    /// `attached`, `detaching`, …
    pub attachment_status: String,
    pub attach_time: String,
    pub delete_on_termination: bool,
    /// (group id, group name)
    pub groups: Vec<(String, String)>,
    /// (public ip, public dns name, Elastic IP allocation and association, if one)
    pub association: Option<PublicAssociation>,
    pub tags: Vec<Tag>,
}

/// The public address of an interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicAssociation {
    pub public_ip: String,
    pub public_dns_name: String,
    /// `amazon` for an auto-assigned address, the owner account for an Elastic IP.
    pub ip_owner_id: String,
    pub allocation_id: Option<String>,
    pub association_id: Option<String>,
}

/// A volume's attachment to an instance (`VolumeAttachment`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeAttachment {
    pub volume_id: String,
    pub instance_id: String,
    pub device: String,
    pub state: crate::VolumeAttachmentState,
    pub attach_time: String,
    pub delete_on_termination: bool,
}

/// An EBS volume as `DescribeVolumes` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
    pub id: String,
    pub size_gib: u32,
    pub snapshot_id: Option<String>,
    pub availability_zone: String,
    pub state: crate::VolumeState,
    pub create_time: String,
    pub attachments: Vec<VolumeAttachment>,
    pub volume_type: crate::VolumeType,
    pub iops: Option<u32>,
    pub throughput: Option<u32>,
    pub encrypted: bool,
    pub tags: Vec<Tag>,
}

/// A `ModifyVolume` and how far it got (`VolumeModification`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeModification {
    pub volume_id: String,
    pub state: crate::VolumeModificationState,
    pub target_size: u32,
    pub target_volume_type: crate::VolumeType,
    pub target_iops: Option<u32>,
    pub target_throughput: Option<u32>,
    pub original_size: u32,
    pub original_volume_type: crate::VolumeType,
    pub original_iops: Option<u32>,
    pub original_throughput: Option<u32>,
    pub progress: u32,
    pub start_time: String,
    pub end_time: Option<String>,
}

/// An EBS snapshot as `DescribeSnapshots` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub id: String,
    pub volume_id: String,
    pub state: crate::SnapshotState,
    pub state_message: Option<String>,
    pub start_time: String,
    pub progress: String,
    pub owner_id: AccountId,
    pub description: String,
    pub volume_size: u32,
    pub encrypted: bool,
    pub tags: Vec<Tag>,
}
