//! VPCs and subnets: `CreateVpc`, `DeleteVpc`, `DescribeVpcs`, `ModifyVpcAttribute`,
//! `DescribeVpcAttribute`, `CreateSubnet`, `DeleteSubnet`, `DescribeSubnets`,
//! `ModifySubnetAttribute`.

use gureum_types::model::{Filter, Subnet, TagSpecification, Vpc};
use gureum_types::{ApiError, ErrorCode, Tenancy, WireEnum};

use crate::action::{take_page, Page};
use crate::ops::{Op, Resource};
use crate::params::Params;
use crate::render::tag_set;
use crate::xml::Xml;

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
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
    CreateVpc {
        cidr_block: String,
        /// `default` or `dedicated` (`host` is for instances only).
        instance_tenancy: Tenancy,
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

// One value per request, rendered once and dropped: the size of the largest variant costs
// nothing worth boxing for.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Response {
    DescribeVpcs {
        vpcs: Vec<Vpc>,
        next_token: Option<String>,
    },
    DescribeSubnets {
        subnets: Vec<Subnet>,
        next_token: Option<String>,
    },
    CreateVpc(Vpc),
    DescribeVpcAttribute {
        vpc_id: String,
        /// `enableDnsSupport`, `enableDnsHostnames` or `enableNetworkAddressUsageMetrics`.
        attribute: &'static str,
        value: bool,
    },
    CreateSubnet(Subnet),
    /// The deletes and modifies: `<return>true</return>`.
    Return,
}

impl Resource for Action {
    type Response = Response;

    const OPS: &'static [Op<Action>] = &[
        Op::read("DescribeVpcs", |p| {
            Ok(Action::DescribeVpcs {
                vpc_ids: p.take_list("VpcId")?,
                filters: p.take_filters()?,
                page: take_page(p, 5, 1000)?,
            })
        }),
        Op::read("DescribeSubnets", |p| {
            Ok(Action::DescribeSubnets {
                subnet_ids: p.take_list("SubnetId")?,
                filters: p.take_filters()?,
                page: take_page(p, 5, 1000)?,
            })
        }),
        Op::write("CreateVpc", |p| {
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
                None => Tenancy::Default,
                Some(t) => match Tenancy::parse(&t) {
                    Some(v @ (Tenancy::Default | Tenancy::Dedicated)) => v,
                    // A VPC cannot have host tenancy (EC2 refuses it too); the message is
                    // the one this call has always given, so not `one_of_enum`'s.
                    Some(Tenancy::Host) | None => {
                        return Err(ApiError::invalid_value(
                            "InstanceTenancy",
                            &t,
                            "Valid values: default, dedicated",
                        ))
                    }
                },
            };
            Ok(Action::CreateVpc {
                cidr_block,
                instance_tenancy,
                tag_specifications: p.take_tag_specifications()?,
            })
        }),
        Op::write("DeleteVpc", |p| {
            Ok(Action::DeleteVpc {
                vpc_id: p.required("VpcId")?,
            })
        }),
        Op::write("ModifyVpcAttribute", parse_modify_vpc_attribute),
        Op::read("DescribeVpcAttribute", |p| {
            Ok(Action::DescribeVpcAttribute {
                vpc_id: p.required("VpcId")?,
                attribute: vpc_attribute(&p.required("Attribute")?)?,
            })
        }),
        Op::write("CreateSubnet", |p| {
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
            Ok(Action::CreateSubnet {
                vpc_id: p.required("VpcId")?,
                cidr_block: p.required("CidrBlock")?,
                availability_zone: p.take("AvailabilityZone").filter(|v| !v.is_empty()),
                availability_zone_id: p.take("AvailabilityZoneId").filter(|v| !v.is_empty()),
                tag_specifications: p.take_tag_specifications()?,
            })
        }),
        Op::write("DeleteSubnet", |p| {
            Ok(Action::DeleteSubnet {
                subnet_id: p.required("SubnetId")?,
            })
        }),
        Op::write("ModifySubnetAttribute", parse_modify_subnet_attribute),
    ];

    fn name(&self) -> &'static str {
        match self {
            Action::DescribeVpcs { .. } => "DescribeVpcs",
            Action::DescribeSubnets { .. } => "DescribeSubnets",
            Action::CreateVpc { .. } => "CreateVpc",
            Action::DeleteVpc { .. } => "DeleteVpc",
            Action::ModifyVpcAttribute { .. } => "ModifyVpcAttribute",
            Action::DescribeVpcAttribute { .. } => "DescribeVpcAttribute",
            Action::CreateSubnet { .. } => "CreateSubnet",
            Action::DeleteSubnet { .. } => "DeleteSubnet",
            Action::ModifySubnetAttribute { .. } => "ModifySubnetAttribute",
        }
    }
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
        .leaf("instanceTenancy", v.instance_tenancy.as_str())
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

impl Response {
    pub(crate) fn write(&self, x: &mut Xml) {
        match self {
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
                vpc_xml(x, v);
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
                subnet_xml(x, sub);
                x.close("subnet");
            }
            Response::Return => {
                x.bool("return", true);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::action::parse_form;

    #[test]
    fn vpc_actions_parse_as_the_cli_sends_them() {
        let r = parse_form("Action=ModifyVpcAttribute&VpcId=vpc-1&EnableDnsHostnames.Value=true")
            .unwrap();
        assert_eq!(
            r.action,
            crate::Action::from(Action::ModifyVpcAttribute {
                vpc_id: "vpc-1".into(),
                attribute: VpcAttribute::EnableDnsHostnames,
                value: true
            })
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
        assert_eq!(
            parse_form("Action=CreateVpc&CidrBlock=10.0.0.0/16&AmazonProvidedIpv6CidrBlock=true")
                .unwrap_err()
                .code,
            ErrorCode::UnsupportedOperation
        );
        for bad in ["host", "Dedicated", ""] {
            assert_eq!(
                parse_form(&format!(
                    "Action=CreateVpc&CidrBlock=10.0.0.0/16&InstanceTenancy={bad}"
                ))
                .unwrap_err()
                .message,
                format!(
                    "Value ({bad}) for parameter InstanceTenancy is invalid. \
                     Valid values: default, dedicated"
                ),
            );
        }
        for (query, tenancy) in [
            ("", Tenancy::Default),
            ("&InstanceTenancy=default", Tenancy::Default),
            ("&InstanceTenancy=dedicated", Tenancy::Dedicated),
        ] {
            let r = parse_form(&format!("Action=CreateVpc&CidrBlock=10.0.0.0/16{query}")).unwrap();
            assert_eq!(
                r.action,
                crate::Action::from(Action::CreateVpc {
                    cidr_block: "10.0.0.0/16".into(),
                    instance_tenancy: tenancy,
                    tag_specifications: vec![],
                })
            );
        }
        let r =
            parse_form("Action=ModifySubnetAttribute&SubnetId=s&MapPublicIpOnLaunch.Value=true")
                .unwrap();
        assert_eq!(
            r.action,
            crate::Action::from(Action::ModifySubnetAttribute {
                subnet_id: "s".into(),
                map_public_ip_on_launch: Some(true)
            })
        );
        assert_eq!(
            parse_form("Action=ModifySubnetAttribute&SubnetId=s&EnableDns64.Value=true")
                .unwrap_err()
                .code,
            ErrorCode::UnsupportedOperation
        );
        assert_eq!(
            parse_form("Action=DeleteVpc&VpcId=v&Bogus=1")
                .unwrap_err()
                .code,
            ErrorCode::UnknownParameter
        );
    }
}
