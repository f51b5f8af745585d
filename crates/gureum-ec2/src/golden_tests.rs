//! Byte-for-byte checks of rendered responses against documents captured from the renderer
//! before it was split into one module per resource (`testdata/golden/*.xml`): a client sees
//! the same bytes whatever the code's shape. `GUREUM_GOLDEN_WRITE=1` rewrites the files (only
//! for an intended change of the wire format).

use gureum_types::instance_types::InstanceTypeInfo;
use gureum_types::model::{
    Address, Image, ImageBlockDevice, Instance, InternetGateway, KeyPair, NetworkInterface,
    PublicAssociation, Route, RouteTable, RouteTableAssociation, SecurityGroup, SecurityGroupRule,
    Subnet, Tag, TagDescription, Vpc,
};
use gureum_types::region::Region;
use gureum_types::{
    Architecture, DeviceType, Hypervisor, InstanceState, IpProtocol, Tenancy, VirtualizationType,
    VolumeType,
};

use crate::ops::instances::{InstanceAttributeValue, InstanceStatus, Reservation, StateChange};
use crate::ops::{
    addresses, catalogue, images, instances, interfaces, key_pairs, routing, security_groups, tags,
    vpcs,
};
use crate::Response;

fn tags() -> Vec<Tag> {
    vec![Tag {
        key: "Name".into(),
        value: "web <1> & \"co\"".into(),
    }]
}

fn instance(state: InstanceState, public_ip: Option<&str>) -> Instance {
    Instance {
        id: "i-0123456789abcdef0".into(),
        owner_id: "111111111111".into(),
        reservation_id: "r-0123456789abcdef0".into(),
        image_id: "ami-0123456789abcdef0".into(),
        instance_type: "t2.micro".into(),
        key_name: Some("demo".into()),
        state,
        state_transition_reason: "User initiated (2026-11-26 06:00:00 GMT)".into(),
        state_reason: Some(gureum_types::StateReason {
            code: "Client.UserInitiatedShutdown".parse().unwrap(),
            message: "Client.UserInitiatedShutdown: User initiated shutdown".into(),
        }),
        launch_time: "2026-11-26T06:00:00.000Z".into(),
        launch_index: 0,
        availability_zone: "us-east-1a".into(),
        vpc_id: "vpc-0000000000000000d".into(),
        subnet_id: "subnet-0123456789abcdef0".into(),
        private_ip: "172.31.0.5".into(),
        mac: "02:00:ac:1f:00:05".into(),
        network_interface_id: "eni-0123456789abcdef0".into(),
        public_ip: public_ip.map(str::to_string),
        root_volume_id: "vol-0123456789abcdef0".into(),
        root_volume_gib: 8,
        delete_on_termination: true,
        shutdown_behavior: "stop".parse().unwrap(),
        disable_api_termination: false,
        client_token: Some("tok".into()),
        vcpus: 1,
        cores: 1,
        threads_per_core: 1,
        hypervisor: Hypervisor::Container,
        architecture: Architecture::X86_64,
        virtualization_type: VirtualizationType::Hvm,
        root_device_type: DeviceType::Ebs,
        tenancy: Tenancy::Default,
        metadata_http_tokens: "required".parse().unwrap(),
        metadata_http_endpoint: "enabled".parse().unwrap(),
        metadata_hop_limit: 2,
        security_groups: vec![("sg-0123456789abcdef0".into(), "default".into())],
        tags: tags(),
    }
}

fn rule(
    id: &str,
    egress: bool,
    protocol: IpProtocol,
    ports: Option<(i32, i32)>,
) -> SecurityGroupRule {
    SecurityGroupRule {
        id: id.into(),
        group_id: "sg-0123456789abcdef0".into(),
        owner_id: "111111111111".into(),
        is_egress: egress,
        protocol,
        from_port: ports.map(|p| p.0),
        to_port: ports.map(|p| p.1),
        cidr_ipv4: Some("0.0.0.0/0".into()),
        cidr_ipv6: None,
        referenced_group_id: None,
        description: Some("ssh".into()),
    }
}

fn image() -> Image {
    Image {
        id: "ami-0123456789abcdef0".into(),
        owner_id: "111111111111".into(),
        owner_alias: Some("gureum".into()),
        name: "debian-12".into(),
        description: "Debian 12".into(),
        state: "failed".parse().unwrap(),
        state_reason: Some("mmdebstrap failed".into()),
        public: true,
        creation_date: "2026-11-26T06:00:00.000Z".into(),
        login_user: "admin".into(),
        root_size_gib: 8,
        image_type: "machine".into(),
        architecture: Architecture::X86_64,
        virtualization_type: VirtualizationType::Hvm,
        root_device_type: DeviceType::Ebs,
        root_device_name: "/dev/xvda".into(),
        block_devices: vec![ImageBlockDevice {
            device_name: "/dev/xvda".into(),
            snapshot_id: None,
            volume_size: 8,
            volume_type: VolumeType::Gp3,
            delete_on_termination: true,
        }],
        source_instance_id: Some("i-0123456789abcdef0".into()),
        source_image_id: None,
        tags: tags(),
    }
}

fn vpc() -> Vpc {
    Vpc {
        id: "vpc-0123456789abcdef0".into(),
        owner_id: "111111111111".into(),
        cidr: "10.0.0.0/16".into(),
        is_default: false,
        state: "available".parse().unwrap(),
        instance_tenancy: Tenancy::Default,
        tags: tags(),
    }
}

fn subnet() -> Subnet {
    Subnet {
        id: "subnet-0123456789abcdef0".into(),
        owner_id: "111111111111".into(),
        vpc_id: "vpc-0123456789abcdef0".into(),
        cidr: "10.0.1.0/24".into(),
        availability_zone: "us-east-1a".into(),
        availability_zone_id: "use1-az1".into(),
        default_for_az: false,
        map_public_ip_on_launch: true,
        available_ip_address_count: 251,
        state: "available".parse().unwrap(),
        tags: vec![],
    }
}

/// (file name, action, response): one or more of every kind of response.
fn cases() -> Vec<(&'static str, &'static str, Response)> {
    let region = Region::new("us-east-1").unwrap();
    let key = KeyPair {
        id: "key-0123456789abcdef0".into(),
        name: "demo".into(),
        fingerprint: "aa:bb".into(),
        key_type: "ed25519".into(),
        public_key: "ssh-ed25519 AAAA demo".into(),
        create_time: "2026-11-26T06:00:00.000Z".into(),
        tags: tags(),
    };
    let reservation = Reservation {
        id: "r-0123456789abcdef0".into(),
        owner_id: "111111111111".into(),
        instances: vec![
            instance(InstanceState::Running, Some("127.100.0.5")),
            instance(InstanceState::Terminated, None),
        ],
    };
    let t2: &'static InstanceTypeInfo = gureum_types::instance_types::CATALOGUE
        .iter()
        .find(|t| t.name == "t2.micro")
        .unwrap();
    let mut referencing = rule("sgr-2", false, IpProtocol::All, None);
    referencing.cidr_ipv4 = None;
    referencing.referenced_group_id = Some("sg-0123456789abcdef0".into());
    let rules = vec![
        rule("sgr-1", false, IpProtocol::Tcp, Some((22, 22))),
        referencing,
        rule("sgr-3", true, IpProtocol::All, None),
        rule("sgr-4", false, IpProtocol::Icmp, Some((8, -1))),
    ];
    let table = RouteTable {
        id: "rtb-1".into(),
        owner_id: "111".into(),
        vpc_id: "vpc-1".into(),
        routes: vec![Route {
            destination_cidr_block: "0.0.0.0/0".into(),
            gateway_id: "igw-1".into(),
            origin: "CreateRoute".into(),
            state: "blackhole".into(),
        }],
        associations: vec![RouteTableAssociation {
            id: "rtbassoc-1".into(),
            route_table_id: "rtb-1".into(),
            subnet_id: Some("subnet-1".into()),
            main: false,
        }],
        tags: tags(),
    };
    let association = PublicAssociation {
        public_ip: "127.100.0.9".into(),
        public_dns_name: "ec2-127-100-0-9.compute-1.amazonaws.com".into(),
        ip_owner_id: "111111111111".into(),
        allocation_id: Some("eipalloc-1".into()),
        association_id: Some("eipassoc-1".into()),
    };
    vec![
        (
            "describe_regions",
            "DescribeRegions",
            Response::from(catalogue::Response::DescribeRegions(vec![region.clone()])),
        ),
        (
            "describe_availability_zones",
            "DescribeAvailabilityZones",
            Response::from(catalogue::Response::DescribeAvailabilityZones {
                region: "us-east-1".into(),
                zones: region.zones.clone(),
            }),
        ),
        (
            "describe_account_attributes",
            "DescribeAccountAttributes",
            Response::from(catalogue::Response::DescribeAccountAttributes(vec![(
                "supported-platforms".into(),
                vec!["VPC".into()],
            )])),
        ),
        (
            "describe_instance_types",
            "DescribeInstanceTypes",
            Response::from(catalogue::Response::DescribeInstanceTypes {
                types: vec![t2],
                next_token: Some("t2.micro".into()),
            }),
        ),
        (
            "describe_instance_type_offerings",
            "DescribeInstanceTypeOfferings",
            Response::from(catalogue::Response::DescribeInstanceTypeOfferings {
                offerings: vec![("t2.micro", "region".into(), "us-east-1".into())],
                next_token: None,
            }),
        ),
        (
            "create_key_pair",
            "CreateKeyPair",
            Response::from(key_pairs::Response::CreateKeyPair {
                key: key.clone(),
                key_material: "-----BEGIN OPENSSH PRIVATE KEY-----\nx\n".into(),
            }),
        ),
        (
            "import_key_pair",
            "ImportKeyPair",
            Response::from(key_pairs::Response::ImportKeyPair(key.clone())),
        ),
        (
            "describe_key_pairs",
            "DescribeKeyPairs",
            Response::from(key_pairs::Response::DescribeKeyPairs {
                keys: vec![key],
                include_public_key: true,
            }),
        ),
        (
            "delete_key_pair",
            "DeleteKeyPair",
            Response::from(key_pairs::Response::DeleteKeyPair { key_pair_id: None }),
        ),
        (
            "create_tags",
            "CreateTags",
            Response::from(tags::Response::CreateTags),
        ),
        (
            "describe_tags",
            "DescribeTags",
            Response::from(tags::Response::DescribeTags {
                tags: vec![TagDescription {
                    resource_id: "i-1".into(),
                    resource_type: "instance".into(),
                    key: "k".into(),
                    value: "v".into(),
                }],
                next_token: Some("x".into()),
            }),
        ),
        (
            "describe_images",
            "DescribeImages",
            Response::from(images::Response::DescribeImages {
                images: vec![image()],
                next_token: None,
            }),
        ),
        (
            "describe_images_from_snapshots",
            "DescribeImages",
            Response::from(images::Response::DescribeImages {
                images: vec![Image {
                    state: "available".parse().unwrap(),
                    state_reason: None,
                    public: false,
                    owner_alias: None,
                    root_device_name: "/dev/sda1".into(),
                    block_devices: vec![
                        ImageBlockDevice {
                            device_name: "/dev/sda1".into(),
                            snapshot_id: Some("snap-0123456789abcdef0".into()),
                            volume_size: 10,
                            volume_type: VolumeType::Gp2,
                            delete_on_termination: false,
                        },
                        ImageBlockDevice {
                            device_name: "/dev/sdf".into(),
                            snapshot_id: Some("snap-0123456789abcdef1".into()),
                            volume_size: 4,
                            volume_type: VolumeType::Io1,
                            delete_on_termination: true,
                        },
                    ],
                    source_instance_id: None,
                    tags: vec![],
                    ..image()
                }],
                next_token: None,
            }),
        ),
        (
            "register_image",
            "RegisterImage",
            Response::from(images::Response::ImageId("ami-1".into())),
        ),
        (
            "deregister_image",
            "DeregisterImage",
            Response::from(images::Response::Return),
        ),
        (
            "create_image",
            "CreateImage",
            Response::from(images::Response::ImageId("ami-1".into())),
        ),
        (
            "describe_image_attribute",
            "DescribeImageAttribute",
            Response::from(images::Response::DescribeImageAttribute {
                image_id: "ami-1".into(),
                attribute: "launchPermission".into(),
                launch_permission_users: vec!["222222222222".into()],
                public: true,
                description: String::new(),
            }),
        ),
        (
            "run_instances",
            "RunInstances",
            Response::from(instances::Response::RunInstances {
                reservation: reservation.clone(),
                region: "us-east-1".into(),
            }),
        ),
        (
            "describe_instances",
            "DescribeInstances",
            Response::from(instances::Response::DescribeInstances {
                reservations: vec![reservation],
                region: "eu-west-1".into(),
                next_token: Some("i-1".into()),
            }),
        ),
        (
            "stop_instances",
            "StopInstances",
            Response::from(instances::Response::StateChanges(vec![StateChange {
                instance_id: "i-1".into(),
                previous: InstanceState::Running,
                current: InstanceState::Stopping,
            }])),
        ),
        (
            "describe_instance_status",
            "DescribeInstanceStatus",
            Response::from(instances::Response::DescribeInstanceStatus {
                statuses: vec![
                    InstanceStatus {
                        instance_id: "i-1".into(),
                        availability_zone: "us-east-1a".into(),
                        availability_zone_id: "use1-az1".into(),
                        state: InstanceState::Running,
                        instance_status: "ok".into(),
                        system_status: "initializing".into(),
                    },
                    InstanceStatus {
                        instance_id: "i-2".into(),
                        availability_zone: "us-east-1a".into(),
                        availability_zone_id: "use1-az1".into(),
                        state: InstanceState::Stopped,
                        instance_status: "not-applicable".into(),
                        system_status: "not-applicable".into(),
                    },
                ],
                next_token: None,
            }),
        ),
        (
            "get_console_output",
            "GetConsoleOutput",
            Response::from(instances::Response::GetConsoleOutput {
                instance_id: "i-1".into(),
                timestamp: "2026-11-26T06:00:00.000Z".into(),
                output: "aGk=".into(),
            }),
        ),
        (
            "describe_instance_attribute_groups",
            "DescribeInstanceAttribute",
            Response::from(instances::Response::DescribeInstanceAttribute {
                instance_id: "i-1".into(),
                attribute: "groupSet".into(),
                value: InstanceAttributeValue::Groups(vec![("sg-1".into(), "web".into())]),
            }),
        ),
        (
            "describe_instance_attribute_devices",
            "DescribeInstanceAttribute",
            Response::from(instances::Response::DescribeInstanceAttribute {
                instance_id: "i-1".into(),
                attribute: "blockDeviceMapping".into(),
                value: InstanceAttributeValue::BlockDevices(instance(InstanceState::Stopped, None)),
            }),
        ),
        (
            "describe_instance_attribute_value",
            "DescribeInstanceAttribute",
            Response::from(instances::Response::DescribeInstanceAttribute {
                instance_id: "i-1".into(),
                attribute: "userData".into(),
                value: InstanceAttributeValue::Value(None),
            }),
        ),
        (
            "describe_vpcs",
            "DescribeVpcs",
            Response::from(vpcs::Response::DescribeVpcs {
                vpcs: vec![vpc()],
                next_token: None,
            }),
        ),
        (
            "create_vpc",
            "CreateVpc",
            Response::from(vpcs::Response::CreateVpc(vpc())),
        ),
        (
            "describe_vpc_attribute",
            "DescribeVpcAttribute",
            Response::from(vpcs::Response::DescribeVpcAttribute {
                vpc_id: "vpc-1".into(),
                attribute: "enableDnsHostnames",
                value: false,
            }),
        ),
        (
            "describe_subnets",
            "DescribeSubnets",
            Response::from(vpcs::Response::DescribeSubnets {
                subnets: vec![subnet()],
                next_token: Some("subnet-1".into()),
            }),
        ),
        (
            "create_subnet",
            "CreateSubnet",
            Response::from(vpcs::Response::CreateSubnet(subnet())),
        ),
        (
            "create_internet_gateway",
            "CreateInternetGateway",
            Response::from(routing::Response::CreateInternetGateway(InternetGateway {
                id: "igw-1".into(),
                owner_id: "111".into(),
                vpc_id: None,
                tags: tags(),
            })),
        ),
        (
            "create_route_table",
            "CreateRouteTable",
            Response::from(routing::Response::CreateRouteTable {
                table: table.clone(),
                client_token: Some("tok".into()),
            }),
        ),
        (
            "describe_route_tables",
            "DescribeRouteTables",
            Response::from(routing::Response::DescribeRouteTables {
                tables: vec![table],
                next_token: None,
            }),
        ),
        (
            "associate_route_table",
            "AssociateRouteTable",
            Response::from(routing::Response::RouteTableAssociated {
                association_id: "rtbassoc-2".into(),
                replaced: false,
            }),
        ),
        (
            "create_route",
            "CreateRoute",
            Response::from(routing::Response::Return),
        ),
        (
            "create_security_group",
            "CreateSecurityGroup",
            Response::from(security_groups::Response::CreateSecurityGroup {
                group_id: "sg-1".into(),
                owner_id: "111".into(),
                region: "us-east-1".into(),
                tags: tags(),
            }),
        ),
        (
            "delete_security_group",
            "DeleteSecurityGroup",
            Response::from(security_groups::Response::DeleteSecurityGroup {
                group_id: "sg-1".into(),
            }),
        ),
        (
            "describe_security_groups",
            "DescribeSecurityGroups",
            Response::from(security_groups::Response::DescribeSecurityGroups {
                groups: vec![SecurityGroup {
                    id: "sg-0123456789abcdef0".into(),
                    owner_id: "111111111111".into(),
                    vpc_id: "vpc-1".into(),
                    name: "default".into(),
                    description: "default VPC security group".into(),
                    rules: rules.clone(),
                    tags: tags(),
                }],
                region: "us-east-1".into(),
                next_token: None,
            }),
        ),
        (
            "authorize_security_group_ingress",
            "AuthorizeSecurityGroupIngress",
            Response::from(security_groups::Response::RulesAdded(rules[..2].to_vec())),
        ),
        (
            "describe_security_group_rules",
            "DescribeSecurityGroupRules",
            Response::from(security_groups::Response::DescribeSecurityGroupRules {
                rules,
                next_token: Some("sgr-4".into()),
            }),
        ),
        (
            "allocate_address",
            "AllocateAddress",
            Response::from(addresses::Response::AllocateAddress {
                public_ip: "127.100.0.9".into(),
                allocation_id: "eipalloc-1".into(),
                region: "us-east-1".into(),
            }),
        ),
        (
            "associate_address",
            "AssociateAddress",
            Response::from(addresses::Response::AssociateAddress {
                association_id: "eipassoc-1".into(),
            }),
        ),
        (
            "release_address",
            "ReleaseAddress",
            Response::from(addresses::Response::Return),
        ),
        (
            "describe_addresses",
            "DescribeAddresses",
            Response::from(addresses::Response::DescribeAddresses {
                addresses: vec![
                    Address {
                        public_ip: "127.100.0.9".into(),
                        allocation_id: "eipalloc-1".into(),
                        association_id: Some("eipassoc-1".into()),
                        instance_id: Some("i-1".into()),
                        network_interface_id: Some("eni-1".into()),
                        network_interface_owner_id: Some("111".into()),
                        private_ip: Some("172.31.0.5".into()),
                        tags: tags(),
                    },
                    Address {
                        public_ip: "127.100.0.10".into(),
                        allocation_id: "eipalloc-2".into(),
                        association_id: None,
                        instance_id: None,
                        network_interface_id: None,
                        network_interface_owner_id: None,
                        private_ip: None,
                        tags: vec![],
                    },
                ],
                region: "us-east-1".into(),
            }),
        ),
        (
            "describe_network_interfaces",
            "DescribeNetworkInterfaces",
            Response::from(interfaces::Response::DescribeNetworkInterfaces {
                interfaces: vec![NetworkInterface {
                    id: "eni-0123456789abcdef0".into(),
                    owner_id: "111".into(),
                    subnet_id: "subnet-1".into(),
                    vpc_id: "vpc-1".into(),
                    availability_zone: "us-east-1a".into(),
                    mac: "02:00:00:00:00:01".into(),
                    private_ip: "10.0.1.5".into(),
                    private_dns_name: "ip-10-0-1-5.ec2.internal".into(),
                    status: "in-use".into(),
                    instance_id: "i-1".into(),
                    attachment_status: "attached".into(),
                    attach_time: "2026-11-26T06:00:00.000Z".into(),
                    delete_on_termination: true,
                    groups: vec![("sg-1".into(), "web".into())],
                    association: Some(association),
                    tags: tags(),
                }],
                next_token: None,
            }),
        ),
        (
            "modify_instance_metadata_options",
            "ModifyInstanceMetadataOptions",
            Response::from(interfaces::Response::ModifyInstanceMetadataOptions {
                instance_id: "i-1".into(),
                http_tokens: "required".parse().unwrap(),
                http_endpoint: "enabled".parse().unwrap(),
                hop_limit: 2,
            }),
        ),
    ]
}

#[test]
fn rendered_documents_match_the_captured_bytes() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/golden");
    let write = std::env::var_os("GUREUM_GOLDEN_WRITE").is_some();
    for (file, action, response) in cases() {
        let doc = response.render(action, "req-1");
        let path = dir.join(format!("{file}.xml"));
        if write {
            std::fs::write(&path, &doc).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(doc, want, "{file}");
    }
}
