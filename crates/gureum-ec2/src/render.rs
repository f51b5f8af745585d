//! Rendering of results as EC2 XML: one [`Response`] variant per action, and the error
//! envelope. Element names follow botocore's EC2 model (`locationName`s), with the
//! `requestId` first as AWS writes it.

use gureum_types::instance_types::InstanceTypeInfo;
use gureum_types::model::{
    Address, Image, Instance, InternetGateway, KeyPair, NetworkInterface, PublicAssociation,
    RouteTable, SecurityGroup, SecurityGroupRule, Subnet, Tag, TagDescription, Vpc,
};
use gureum_types::region::{Region, Zone};
use gureum_types::InstanceState;
use gureum_types::{ApiError, IpProtocol};

use crate::xml::{Xml, EC2_NS};

/// The result of an action, ready to render.
// One value per request, rendered once and dropped: the size of the largest variant costs
// nothing worth boxing for.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Response {
    DescribeRegions(Vec<Region>),
    DescribeAvailabilityZones {
        region: String,
        zones: Vec<Zone>,
    },
    DescribeAccountAttributes(Vec<(String, Vec<String>)>),
    DescribeInstanceTypes {
        types: Vec<&'static InstanceTypeInfo>,
        next_token: Option<String>,
    },
    DescribeInstanceTypeOfferings {
        /// (instance type, location type, location)
        offerings: Vec<(&'static str, String, String)>,
        next_token: Option<String>,
    },
    CreateKeyPair {
        key: KeyPair,
        key_material: String,
    },
    ImportKeyPair(KeyPair),
    DescribeKeyPairs {
        keys: Vec<KeyPair>,
        include_public_key: bool,
    },
    DeleteKeyPair {
        key_pair_id: Option<String>,
    },
    CreateTags,
    DeleteTags,
    DescribeTags {
        tags: Vec<TagDescription>,
        next_token: Option<String>,
    },
    DescribeImages {
        images: Vec<Image>,
        next_token: Option<String>,
    },
    /// `DeregisterImage`, `ModifyImageAttribute`, `ResetImageAttribute`, `RebootInstances`,
    /// `ModifyInstanceAttribute`: `<return>true</return>`.
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
    DescribeVpcs {
        vpcs: Vec<Vpc>,
        next_token: Option<String>,
    },
    DescribeSubnets {
        subnets: Vec<Subnet>,
        next_token: Option<String>,
    },
    // VPCs, subnets, internet gateways and route tables. Their deletes, attaches, detaches,
    // modifies, `CreateRoute`, `ReplaceRoute`, `DeleteRoute` and `DisassociateRouteTable`
    // answer [`Response::Return`].
    CreateVpc(Vpc),
    DescribeVpcAttribute {
        vpc_id: String,
        /// `enableDnsSupport`, `enableDnsHostnames` or `enableNetworkAddressUsageMetrics`.
        attribute: &'static str,
        value: bool,
    },
    CreateSubnet(Subnet),
    CreateInternetGateway(InternetGateway),
    DescribeInternetGateways {
        gateways: Vec<InternetGateway>,
        next_token: Option<String>,
    },
    CreateRouteTable {
        table: RouteTable,
        client_token: Option<String>,
    },
    DescribeRouteTables {
        tables: Vec<RouteTable>,
        next_token: Option<String>,
    },
    /// `AssociateRouteTable` (`associationId`) and `ReplaceRouteTableAssociation`
    /// (`newAssociationId`).
    RouteTableAssociated {
        association_id: String,
        replaced: bool,
    },
    CreateSecurityGroup {
        group_id: String,
        owner_id: String,
        region: String,
        tags: Vec<Tag>,
    },
    DeleteSecurityGroup {
        group_id: String,
    },
    DescribeSecurityGroups {
        groups: Vec<SecurityGroup>,
        region: String,
        next_token: Option<String>,
    },
    /// `AuthorizeSecurityGroup*`: the rules added.
    RulesAdded(Vec<SecurityGroupRule>),
    DescribeSecurityGroupRules {
        rules: Vec<SecurityGroupRule>,
        next_token: Option<String>,
    },
    AllocateAddress {
        public_ip: String,
        allocation_id: String,
        region: String,
    },
    AssociateAddress {
        association_id: String,
    },
    DescribeAddresses {
        addresses: Vec<Address>,
        region: String,
    },
    DescribeNetworkInterfaces {
        interfaces: Vec<NetworkInterface>,
        next_token: Option<String>,
    },
    ModifyInstanceMetadataOptions {
        instance_id: String,
        http_tokens: String,
        http_endpoint: String,
        hop_limit: u32,
    },
}

fn public_association_xml(x: &mut Xml, a: &PublicAssociation) {
    x.open("association")
        .leaf_opt("allocationId", a.allocation_id.as_deref())
        .leaf_opt("associationId", a.association_id.as_deref())
        .leaf("ipOwnerId", &a.ip_owner_id)
        .leaf("publicDnsName", &a.public_dns_name)
        .leaf("publicIp", &a.public_ip)
        .close("association");
}

fn network_interface_xml(x: &mut Xml, n: &NetworkInterface) {
    x.leaf("networkInterfaceId", &n.id)
        .leaf("subnetId", &n.subnet_id)
        .leaf("vpcId", &n.vpc_id)
        .leaf("availabilityZone", &n.availability_zone)
        .leaf("description", "")
        .leaf("ownerId", &n.owner_id)
        .bool("requesterManaged", false)
        .leaf("status", &n.status)
        .leaf("macAddress", &n.mac)
        .leaf("privateIpAddress", &n.private_ip)
        .leaf("privateDnsName", &n.private_dns_name)
        .bool("sourceDestCheck", true)
        .leaf("interfaceType", "interface");
    x.set("groupSet", &n.groups, |x, (id, name)| {
        x.leaf("groupId", id).leaf("groupName", name);
    });
    x.open("attachment")
        .leaf("attachmentId", &n.id.replacen("eni-", "eni-attach-", 1))
        .leaf("instanceId", &n.instance_id)
        .leaf("instanceOwnerId", &n.owner_id)
        .leaf("deviceIndex", "0")
        .leaf("networkCardIndex", "0")
        .leaf("status", &n.attachment_status)
        .leaf("attachTime", &n.attach_time)
        .bool("deleteOnTermination", n.delete_on_termination)
        .close("attachment");
    if let Some(a) = &n.association {
        public_association_xml(x, a);
    }
    x.set("privateIpAddressesSet", std::slice::from_ref(n), |x, n| {
        x.leaf("privateIpAddress", &n.private_ip)
            .leaf("privateDnsName", &n.private_dns_name)
            .bool("primary", true);
        if let Some(a) = &n.association {
            public_association_xml(x, a);
        }
    });
    x.set("ipv6AddressesSet", &[] as &[String], |_, _| {});
    tag_set(x, &n.tags);
}

fn vpc_xml(x: &mut Xml, v: &Vpc) {
    x.leaf("vpcId", &v.id)
        .leaf("ownerId", &v.owner_id)
        .leaf("state", &v.state)
        .leaf("cidrBlock", &v.cidr)
        .open("cidrBlockAssociationSet")
        .open("item")
        .leaf(
            "associationId",
            &v.id.replacen("vpc-", "vpc-cidr-assoc-", 1),
        )
        .leaf("cidrBlock", &v.cidr)
        .open("cidrBlockState")
        .leaf("state", "associated")
        .close("cidrBlockState")
        .close("item")
        .close("cidrBlockAssociationSet")
        .open("ipv6CidrBlockAssociationSet")
        .close("ipv6CidrBlockAssociationSet")
        .leaf("dhcpOptionsId", "default")
        .leaf("instanceTenancy", &v.instance_tenancy)
        .bool("isDefault", v.is_default);
    tag_set(x, &v.tags);
}

fn subnet_xml(x: &mut Xml, s: &Subnet) {
    x.leaf("subnetId", &s.id)
        .leaf(
            "subnetArn",
            &format!(
                "arn:aws:ec2:{}:{}:subnet/{}",
                &s.availability_zone[..s.availability_zone.len().saturating_sub(1)],
                s.owner_id,
                s.id
            ),
        )
        .leaf("state", &s.state)
        .leaf("ownerId", &s.owner_id)
        .leaf("vpcId", &s.vpc_id)
        .leaf("cidrBlock", &s.cidr)
        .open("ipv6CidrBlockAssociationSet")
        .close("ipv6CidrBlockAssociationSet")
        .leaf_display("availableIpAddressCount", s.available_ip_address_count)
        .leaf("availabilityZone", &s.availability_zone)
        .leaf("availabilityZoneId", &s.availability_zone_id)
        .bool("defaultForAz", s.default_for_az)
        .bool("mapPublicIpOnLaunch", s.map_public_ip_on_launch)
        .bool("assignIpv6AddressOnCreation", false)
        .bool("ipv6Native", false)
        .bool("mapCustomerOwnedIpOnLaunch", false)
        .bool("enableDns64", false)
        .open("privateDnsNameOptionsOnLaunch")
        .leaf("hostnameType", "ip-name")
        .bool("enableResourceNameDnsARecord", false)
        .bool("enableResourceNameDnsAAAARecord", false)
        .close("privateDnsNameOptionsOnLaunch");
    tag_set(x, &s.tags);
}

/// An internet gateway. An attachment's state is `available`, as AWS shows an attached
/// gateway (not `attached`).
fn internet_gateway_xml(x: &mut Xml, g: &InternetGateway) {
    x.leaf("internetGatewayId", &g.id)
        .leaf("ownerId", &g.owner_id)
        .open("attachmentSet");
    if let Some(v) = &g.vpc_id {
        x.open("item")
            .leaf("vpcId", v)
            .leaf("state", "available")
            .close("item");
    }
    x.close("attachmentSet");
    tag_set(x, &g.tags);
}

fn route_table_xml(x: &mut Xml, t: &RouteTable) {
    x.leaf("routeTableId", &t.id)
        .leaf("vpcId", &t.vpc_id)
        .leaf("ownerId", &t.owner_id)
        .set("routeSet", &t.routes, |x, r| {
            x.leaf("destinationCidrBlock", &r.destination_cidr_block)
                .leaf("gatewayId", &r.gateway_id)
                .leaf("state", &r.state)
                .leaf("origin", &r.origin);
        })
        .set("associationSet", &t.associations, |x, a| {
            x.bool("main", a.main)
                .leaf("routeTableAssociationId", &a.id)
                .leaf("routeTableId", &a.route_table_id)
                .leaf_opt("subnetId", a.subnet_id.as_deref())
                .open("associationState")
                .leaf("state", "associated")
                .close("associationState");
        })
        .open("propagatingVgwSet")
        .close("propagatingVgwSet");
    tag_set(x, &t.tags);
}

fn sg_arn(region: &str, owner: &str, id: &str) -> String {
    format!("arn:aws:ec2:{region}:{owner}:security-group/{id}")
}

fn rule_xml(x: &mut Xml, r: &SecurityGroupRule) {
    x.leaf("securityGroupRuleId", &r.id)
        .leaf("groupId", &r.group_id)
        .leaf("groupOwnerId", &r.owner_id)
        .bool("isEgress", r.is_egress)
        .leaf_display("ipProtocol", r.protocol)
        .leaf_display("fromPort", r.from_port.unwrap_or(-1))
        .leaf_display("toPort", r.to_port.unwrap_or(-1));
    x.leaf_opt("cidrIpv4", r.cidr_ipv4.as_deref())
        .leaf_opt("cidrIpv6", r.cidr_ipv6.as_deref());
    if let Some(g) = &r.referenced_group_id {
        x.open("referencedGroupInfo")
            .leaf("groupId", g)
            .leaf("userId", &r.owner_id)
            .close("referencedGroupInfo");
    }
    x.leaf_opt("description", r.description.as_deref());
    x.open("tagSet").close("tagSet");
}

/// `ipPermissions` / `ipPermissionsEgress`: rules grouped by protocol and ports, as AWS
/// shows them.
fn permissions_xml(x: &mut Xml, tag: &str, rules: &[&SecurityGroupRule]) {
    let mut keys: Vec<(IpProtocol, Option<i32>, Option<i32>)> = Vec::new();
    for r in rules {
        let k = (r.protocol, r.from_port, r.to_port);
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    x.set(tag, &keys, |x, (proto, from, to)| {
        let same: Vec<&&SecurityGroupRule> = rules
            .iter()
            .filter(|r| r.protocol == *proto && r.from_port == *from && r.to_port == *to)
            .collect();
        x.leaf_display("ipProtocol", proto);
        if let (Some(f), Some(t)) = (from, to) {
            x.leaf_display("fromPort", f).leaf_display("toPort", t);
        }
        x.open("groups");
        for r in same.iter().filter(|r| r.referenced_group_id.is_some()) {
            x.open("item")
                .leaf("userId", &r.owner_id)
                .leaf("groupId", r.referenced_group_id.as_deref().unwrap_or(""));
            x.leaf_opt("description", r.description.as_deref());
            x.close("item");
        }
        x.close("groups").open("ipRanges");
        for r in same.iter().filter(|r| r.cidr_ipv4.is_some()) {
            x.open("item")
                .leaf("cidrIp", r.cidr_ipv4.as_deref().unwrap_or(""));
            x.leaf_opt("description", r.description.as_deref());
            x.close("item");
        }
        x.close("ipRanges").open("ipv6Ranges");
        for r in same.iter().filter(|r| r.cidr_ipv6.is_some()) {
            x.open("item")
                .leaf("cidrIpv6", r.cidr_ipv6.as_deref().unwrap_or(""));
            x.leaf_opt("description", r.description.as_deref());
            x.close("item");
        }
        x.close("ipv6Ranges")
            .open("prefixListIds")
            .close("prefixListIds");
    });
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

fn state_xml(x: &mut Xml, tag: &str, s: InstanceState) {
    x.open(tag)
        .leaf_display("code", s.code())
        .leaf("name", s.as_str())
        .close(tag);
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
        .leaf("tenancy", "default")
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
    if let Some((code, message)) = &i.state_reason {
        x.open("stateReason")
            .leaf("code", code)
            .leaf("message", message)
            .close("stateReason");
    }
    x.leaf("architecture", "x86_64")
        .leaf("rootDeviceType", "ebs")
        .leaf("rootDeviceName", "/dev/xvda");
    x.open("blockDeviceMapping");
    if !i.state.is_gone() {
        x.open("item")
            .leaf("deviceName", "/dev/xvda")
            .open("ebs")
            .leaf("volumeId", &i.root_volume_id)
            .leaf("status", "attached")
            .leaf("attachTime", &i.launch_time)
            .bool("deleteOnTermination", i.delete_on_termination)
            .close("ebs")
            .close("item");
    }
    x.close("blockDeviceMapping");
    x.leaf("virtualizationType", "hvm");
    x.leaf_opt("clientToken", i.client_token.as_deref());
    tag_set(x, &i.tags);
    x.leaf("hypervisor", &i.hypervisor);
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
        .leaf("httpTokens", &i.metadata_http_tokens)
        .leaf_display("httpPutResponseHopLimit", i.metadata_hop_limit)
        .leaf("httpEndpoint", &i.metadata_http_endpoint)
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
        .leaf("imageState", &i.state)
        .leaf("imageOwnerId", &i.owner_id)
        .leaf("creationDate", &i.creation_date)
        .bool("isPublic", i.public)
        .leaf("architecture", "x86_64")
        .leaf("imageType", &i.image_type)
        .leaf("name", &i.name)
        .leaf("description", &i.description)
        .leaf_opt("imageOwnerAlias", i.owner_alias.as_deref())
        .leaf("rootDeviceType", "ebs")
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
        .leaf("virtualizationType", "hvm")
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
                if i.state == "failed" {
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

fn tag_set(x: &mut Xml, tags: &[Tag]) {
    x.set("tagSet", tags, |x, t| {
        x.leaf("key", &t.key).leaf("value", &t.value);
    });
}

fn instance_type(x: &mut Xml, t: &InstanceTypeInfo) {
    x.leaf("instanceType", t.name)
        .bool("currentGeneration", t.current_generation)
        .bool("freeTierEligible", t.free_tier_eligible)
        .values("supportedUsageClasses", t.supported_usage_classes)
        .values("supportedRootDeviceTypes", t.supported_root_device_types)
        .values(
            "supportedVirtualizationTypes",
            t.supported_virtualization_types,
        )
        .bool("bareMetal", t.bare_metal)
        .leaf("hypervisor", t.hypervisor);
    x.open("processorInfo")
        .values("supportedArchitectures", t.architectures)
        .leaf_display("sustainedClockSpeedInGhz", t.sustained_clock_speed_ghz)
        .leaf("manufacturer", t.processor_manufacturer)
        .close("processorInfo");
    x.open("vCpuInfo")
        .leaf_display("defaultVCpus", t.default_vcpus)
        .leaf_display("defaultCores", t.default_cores)
        .leaf_display("defaultThreadsPerCore", t.default_threads_per_core)
        .values("validCores", t.valid_cores)
        .values("validThreadsPerCore", t.valid_threads_per_core)
        .close("vCpuInfo");
    x.open("memoryInfo")
        .leaf_display("sizeInMiB", t.memory_mib)
        .close("memoryInfo");
    x.bool("instanceStorageSupported", false);
    x.open("ebsInfo")
        .leaf("ebsOptimizedSupport", t.ebs_optimized_support)
        .leaf("encryptionSupport", t.ebs_encryption_support)
        .leaf("nvmeSupport", t.ebs_nvme_support)
        .close("ebsInfo");
    x.open("networkInfo")
        .leaf("networkPerformance", t.network_performance)
        .leaf_display("maximumNetworkInterfaces", t.maximum_network_interfaces)
        .leaf_display("maximumNetworkCards", 1)
        .leaf_display("defaultNetworkCardIndex", 0);
    x.open("networkCards")
        .open("item")
        .leaf_display("networkCardIndex", 0)
        .leaf("networkPerformance", t.network_performance)
        .leaf_display("maximumNetworkInterfaces", t.maximum_network_interfaces)
        .close("item")
        .close("networkCards");
    x.leaf_display("ipv4AddressesPerInterface", t.ipv4_addresses_per_interface)
        .leaf_display("ipv6AddressesPerInterface", t.ipv6_addresses_per_interface)
        .bool("ipv6Supported", t.ipv6_supported)
        .leaf("enaSupport", t.ena_support)
        .bool("efaSupported", false)
        .bool("encryptionInTransitSupported", false)
        .bool("enaSrdSupported", false)
        .close("networkInfo");
    x.open("placementGroupInfo")
        .values("supportedStrategies", t.placement_group_strategies)
        .close("placementGroupInfo");
    x.bool("hibernationSupported", t.hibernation_supported)
        .bool(
            "burstablePerformanceSupported",
            t.burstable_performance_supported,
        )
        .bool("dedicatedHostsSupported", t.dedicated_hosts_supported)
        .bool("autoRecoverySupported", t.auto_recovery_supported)
        .values("supportedBootModes", t.supported_boot_modes);
}

impl Response {
    /// The response document for `action`, with `request_id`.
    pub fn render(&self, action: &str, request_id: &str) -> String {
        let root = format!("{action}Response");
        let mut x = Xml::document(&root, EC2_NS);
        x.leaf("requestId", request_id);
        match self {
            Response::DescribeRegions(regions) => {
                x.set("regionInfo", regions, |x, r| {
                    x.leaf("regionName", &r.name)
                        .leaf("regionEndpoint", &r.endpoint())
                        .leaf("optInStatus", "opt-in-not-required");
                });
            }
            Response::DescribeAvailabilityZones { region, zones } => {
                x.set("availabilityZoneInfo", zones, |x, z| {
                    x.leaf("zoneName", &z.name)
                        .leaf("zoneState", "available")
                        .leaf("regionName", region)
                        .leaf("zoneId", &z.id)
                        .leaf("groupName", region)
                        .leaf("networkBorderGroup", region)
                        .leaf("zoneType", "availability-zone")
                        .leaf("optInStatus", "opt-in-not-required")
                        .open("messageSet")
                        .close("messageSet");
                });
            }
            Response::DescribeAccountAttributes(attrs) => {
                x.set("accountAttributeSet", attrs, |x, (name, values)| {
                    x.leaf("attributeName", name)
                        .set("attributeValueSet", values, |x, v| {
                            x.leaf("attributeValue", v);
                        });
                });
            }
            Response::DescribeInstanceTypes { types, next_token } => {
                x.set("instanceTypeSet", types, |x, t| instance_type(x, t));
                x.leaf_opt("nextToken", next_token.as_deref());
            }
            Response::DescribeInstanceTypeOfferings {
                offerings,
                next_token,
            } => {
                x.set("instanceTypeOfferingSet", offerings, |x, (t, lt, l)| {
                    x.leaf("instanceType", t)
                        .leaf("locationType", lt)
                        .leaf("location", l);
                });
                x.leaf_opt("nextToken", next_token.as_deref());
            }
            Response::CreateKeyPair { key, key_material } => {
                x.leaf("keyName", &key.name)
                    .leaf("keyFingerprint", &key.fingerprint)
                    .leaf("keyMaterial", key_material)
                    .leaf("keyPairId", &key.id);
                tag_set(&mut x, &key.tags);
            }
            Response::ImportKeyPair(key) => {
                x.leaf("keyFingerprint", &key.fingerprint)
                    .leaf("keyName", &key.name)
                    .leaf("keyPairId", &key.id);
                tag_set(&mut x, &key.tags);
            }
            Response::DescribeKeyPairs {
                keys,
                include_public_key,
            } => {
                x.set("keySet", keys, |x, k| {
                    x.leaf("keyPairId", &k.id)
                        .leaf("keyName", &k.name)
                        .leaf("keyFingerprint", &k.fingerprint)
                        .leaf("keyType", &k.key_type);
                    tag_set(x, &k.tags);
                    if *include_public_key {
                        x.leaf("publicKey", &k.public_key);
                    }
                    x.leaf("createTime", &k.create_time);
                });
            }
            Response::DeleteKeyPair { key_pair_id } => {
                x.bool("return", true);
                x.leaf_opt("keyPairId", key_pair_id.as_deref());
            }
            Response::CreateTags | Response::DeleteTags => {
                x.bool("return", true);
            }
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
            Response::RunInstances {
                reservation,
                region,
            } => reservation_xml(&mut x, reservation, region),
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
                    InstanceAttributeValue::BlockDevices(i) => {
                        x.open("blockDeviceMapping")
                            .open("item")
                            .leaf("deviceName", "/dev/xvda")
                            .open("ebs")
                            .leaf("volumeId", &i.root_volume_id)
                            .leaf("status", "attached")
                            .leaf("attachTime", &i.launch_time)
                            .bool("deleteOnTermination", i.delete_on_termination)
                            .close("ebs")
                            .close("item")
                            .close("blockDeviceMapping");
                    }
                }
            }
            Response::DescribeVpcs { vpcs, next_token } => {
                x.set("vpcSet", vpcs, vpc_xml);
                x.leaf_opt("nextToken", next_token.as_deref());
            }
            Response::DescribeSubnets {
                subnets,
                next_token,
            } => {
                x.set("subnetSet", subnets, subnet_xml);
                x.leaf_opt("nextToken", next_token.as_deref());
            }
            Response::CreateVpc(v) => {
                x.open("vpc");
                vpc_xml(&mut x, v);
                x.close("vpc");
            }
            Response::DescribeVpcAttribute {
                vpc_id,
                attribute,
                value,
            } => {
                x.leaf("vpcId", vpc_id)
                    .open(attribute)
                    .bool("value", *value)
                    .close(attribute);
            }
            Response::CreateSubnet(sub) => {
                x.open("subnet");
                subnet_xml(&mut x, sub);
                x.close("subnet");
            }
            Response::CreateInternetGateway(g) => {
                x.open("internetGateway");
                internet_gateway_xml(&mut x, g);
                x.close("internetGateway");
            }
            Response::DescribeInternetGateways {
                gateways,
                next_token,
            } => {
                x.set("internetGatewaySet", gateways, internet_gateway_xml);
                x.leaf_opt("nextToken", next_token.as_deref());
            }
            Response::CreateRouteTable {
                table,
                client_token,
            } => {
                x.open("routeTable");
                route_table_xml(&mut x, table);
                x.close("routeTable");
                x.leaf_opt("clientToken", client_token.as_deref());
            }
            Response::DescribeRouteTables { tables, next_token } => {
                x.set("routeTableSet", tables, route_table_xml);
                x.leaf_opt("nextToken", next_token.as_deref());
            }
            Response::RouteTableAssociated {
                association_id,
                replaced,
            } => {
                let tag = if *replaced {
                    "newAssociationId"
                } else {
                    "associationId"
                };
                x.leaf(tag, association_id)
                    .open("associationState")
                    .leaf("state", "associated")
                    .close("associationState");
            }
            Response::CreateSecurityGroup {
                group_id,
                owner_id,
                region,
                tags,
            } => {
                x.bool("return", true).leaf("groupId", group_id);
                tag_set(&mut x, tags);
                x.leaf("securityGroupArn", &sg_arn(region, owner_id, group_id));
            }
            Response::DeleteSecurityGroup { group_id } => {
                x.bool("return", true).leaf("groupId", group_id);
            }
            Response::DescribeSecurityGroups {
                groups,
                region,
                next_token,
            } => {
                x.set("securityGroupInfo", groups, |x, g| {
                    x.leaf("ownerId", &g.owner_id)
                        .leaf("groupId", &g.id)
                        .leaf("groupName", &g.name)
                        .leaf("groupDescription", &g.description)
                        .leaf("vpcId", &g.vpc_id);
                    let ingress: Vec<&SecurityGroupRule> =
                        g.rules.iter().filter(|r| !r.is_egress).collect();
                    let egress: Vec<&SecurityGroupRule> =
                        g.rules.iter().filter(|r| r.is_egress).collect();
                    permissions_xml(x, "ipPermissions", &ingress);
                    permissions_xml(x, "ipPermissionsEgress", &egress);
                    tag_set(x, &g.tags);
                    x.leaf("securityGroupArn", &sg_arn(region, &g.owner_id, &g.id));
                });
                x.leaf_opt("nextToken", next_token.as_deref());
            }
            Response::RulesAdded(rules) => {
                x.bool("return", true);
                x.set("securityGroupRuleSet", rules, rule_xml);
            }
            Response::DescribeSecurityGroupRules { rules, next_token } => {
                x.set("securityGroupRuleSet", rules, rule_xml);
                x.leaf_opt("nextToken", next_token.as_deref());
            }
            Response::AllocateAddress {
                public_ip,
                allocation_id,
                region,
            } => {
                x.leaf("publicIp", public_ip)
                    .leaf("domain", "vpc")
                    .leaf("allocationId", allocation_id)
                    .leaf("publicIpv4Pool", "amazon")
                    .leaf("networkBorderGroup", region);
            }
            Response::AssociateAddress { association_id } => {
                x.bool("return", true).leaf("associationId", association_id);
            }
            Response::DescribeAddresses { addresses, region } => {
                x.set("addressesSet", addresses, |x, a| {
                    x.leaf("publicIp", &a.public_ip)
                        .leaf("allocationId", &a.allocation_id)
                        .leaf("domain", "vpc")
                        .leaf_opt("instanceId", a.instance_id.as_deref())
                        .leaf_opt("associationId", a.association_id.as_deref())
                        .leaf_opt("networkInterfaceId", a.network_interface_id.as_deref())
                        .leaf_opt(
                            "networkInterfaceOwnerId",
                            a.network_interface_owner_id.as_deref(),
                        )
                        .leaf_opt("privateIpAddress", a.private_ip.as_deref())
                        .leaf("publicIpv4Pool", "amazon")
                        .leaf("networkBorderGroup", region);
                    tag_set(x, &a.tags);
                });
            }
            Response::DescribeNetworkInterfaces {
                interfaces,
                next_token,
            } => {
                x.set("networkInterfaceSet", interfaces, network_interface_xml);
                x.leaf_opt("nextToken", next_token.as_deref());
            }
            Response::ModifyInstanceMetadataOptions {
                instance_id,
                http_tokens,
                http_endpoint,
                hop_limit,
            } => {
                x.leaf("instanceId", instance_id)
                    .open("instanceMetadataOptions")
                    .leaf("state", "pending")
                    .leaf("httpTokens", http_tokens)
                    .leaf("httpPutResponseHopLimit", &hop_limit.to_string())
                    .leaf("httpEndpoint", http_endpoint)
                    .leaf("httpProtocolIpv6", "disabled")
                    .leaf("instanceMetadataTags", "disabled")
                    .close("instanceMetadataOptions");
            }
            Response::DescribeTags { tags, next_token } => {
                x.set("tagSet", tags, |x, t| {
                    x.leaf("resourceId", &t.resource_id)
                        .leaf("resourceType", &t.resource_type)
                        .leaf("key", &t.key)
                        .leaf("value", &t.value);
                });
                x.leaf_opt("nextToken", next_token.as_deref());
            }
        }
        x.finish(&root)
    }
}

/// EC2's error envelope: `Response/Errors/Error/{Code,Message}` and `RequestID`.
pub fn error_document(err: &ApiError, request_id: &str) -> String {
    let mut x = Xml::fragment();
    x.open("Response")
        .open("Errors")
        .open("Error")
        .leaf("Code", err.code.as_str())
        .leaf("Message", &err.message)
        .close("Error")
        .close("Errors")
        .leaf("RequestID", request_id)
        .close("Response");
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{}",
        x.into_string()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use gureum_types::ErrorCode;

    /// fuzz/query's first crash: `PublicI\0p.1` is an unknown parameter, and its name, NUL
    /// included, went into the error message and made the document unparseable.
    #[test]
    fn error_documents_carry_no_control_characters() {
        let form = b"Action=DescribeAddresses&Version=2016-11-15&PublicI\0p.1=203.0.113.10";
        let mut p = crate::Params::from_form(form).unwrap();
        let action = p.take("Action").unwrap();
        p.take("Version");
        let err = crate::parse(&action, p).unwrap_err();
        assert_eq!(err.code, ErrorCode::UnknownParameter);
        let doc = error_document(&err, "r");
        assert!(!doc.contains('\0'), "{doc:?}");
        assert!(
            doc.contains("<Message>The parameter PublicI\u{FFFD}p.1 is not recognized</Message>")
        );
    }

    #[test]
    fn golden_delete_key_pair() {
        let doc = Response::DeleteKeyPair {
            key_pair_id: Some("key-0123456789abcdef0".into()),
        }
        .render("DeleteKeyPair", "req-1");
        assert_eq!(
            doc,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
             <DeleteKeyPairResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\">\
             <requestId>req-1</requestId><return>true</return>\
             <keyPairId>key-0123456789abcdef0</keyPairId></DeleteKeyPairResponse>"
        );
    }

    #[test]
    fn golden_describe_key_pairs() {
        let key = KeyPair {
            id: "key-0123456789abcdef0".into(),
            name: "demo".into(),
            fingerprint: "aa:bb".into(),
            key_type: "rsa".into(),
            public_key: "ssh-rsa AAAA demo".into(),
            create_time: "2026-11-26T06:00:00.000Z".into(),
            tags: vec![Tag {
                key: "env".into(),
                value: "a&b".into(),
            }],
        };
        let doc = Response::DescribeKeyPairs {
            keys: vec![key],
            include_public_key: false,
        }
        .render("DescribeKeyPairs", "r");
        assert!(doc.contains(
            "<keySet><item><keyPairId>key-0123456789abcdef0</keyPairId><keyName>demo</keyName>\
             <keyFingerprint>aa:bb</keyFingerprint><keyType>rsa</keyType>\
             <tagSet><item><key>env</key><value>a&amp;b</value></item></tagSet>\
             <createTime>2026-11-26T06:00:00.000Z</createTime></item></keySet>"
        ));
        assert!(!doc.contains("publicKey"));
    }

    #[test]
    fn golden_route_table_and_gateway() {
        use gureum_types::model::{Route, RouteTableAssociation};
        let t = RouteTable {
            id: "rtb-1".into(),
            owner_id: "111".into(),
            vpc_id: "vpc-1".into(),
            routes: vec![Route {
                destination_cidr_block: "10.0.0.0/16".into(),
                gateway_id: "local".into(),
                origin: "CreateRouteTable".into(),
                state: "active".into(),
            }],
            associations: vec![RouteTableAssociation {
                id: "rtbassoc-1".into(),
                route_table_id: "rtb-1".into(),
                subnet_id: None,
                main: true,
            }],
            tags: vec![],
        };
        let doc = Response::DescribeRouteTables {
            tables: vec![t],
            next_token: None,
        }
        .render("DescribeRouteTables", "r");
        assert!(doc.contains(
            "<routeTableSet><item><routeTableId>rtb-1</routeTableId><vpcId>vpc-1</vpcId>\
             <ownerId>111</ownerId><routeSet><item><destinationCidrBlock>10.0.0.0/16</destinationCidrBlock>\
             <gatewayId>local</gatewayId><state>active</state><origin>CreateRouteTable</origin></item></routeSet>\
             <associationSet><item><main>true</main><routeTableAssociationId>rtbassoc-1</routeTableAssociationId>\
             <routeTableId>rtb-1</routeTableId><associationState><state>associated</state></associationState>\
             </item></associationSet><propagatingVgwSet></propagatingVgwSet><tagSet></tagSet></item></routeTableSet>"
        ), "{doc}");
        let doc = Response::DescribeInternetGateways {
            gateways: vec![InternetGateway {
                id: "igw-1".into(),
                owner_id: "111".into(),
                vpc_id: Some("vpc-1".into()),
                tags: vec![],
            }],
            next_token: None,
        }
        .render("DescribeInternetGateways", "r");
        assert!(doc.contains(
            "<internetGatewaySet><item><internetGatewayId>igw-1</internetGatewayId><ownerId>111</ownerId>\
             <attachmentSet><item><vpcId>vpc-1</vpcId><state>available</state></item></attachmentSet>"
        ), "{doc}");
        let doc = Response::RouteTableAssociated {
            association_id: "rtbassoc-2".into(),
            replaced: true,
        }
        .render("ReplaceRouteTableAssociation", "r");
        assert!(doc.contains("<newAssociationId>rtbassoc-2</newAssociationId><associationState><state>associated</state></associationState>"));
    }

    #[test]
    fn golden_error_envelope() {
        let e = ApiError::new(
            ErrorCode::InvalidKeyPairNotFound,
            "The key pair 'x' does not exist",
        );
        assert_eq!(
            error_document(&e, "rid"),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error>\
             <Code>InvalidKeyPair.NotFound</Code><Message>The key pair &apos;x&apos; does not exist</Message>\
             </Error></Errors><RequestID>rid</RequestID></Response>"
        );
    }
}
