//! An instance's network interface and metadata options: `DescribeNetworkInterfaces`,
//! `ModifyInstanceMetadataOptions`.

use gureum_types::model::{Filter, NetworkInterface, PublicAssociation};
use gureum_types::{ApiError, HttpEndpoint, HttpTokens};

use crate::action::{one_of_enum, take_page, Page};
use crate::ops::{Op, Resource};
use crate::render::tag_set;
use crate::xml::Xml;

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    DescribeNetworkInterfaces {
        ids: Vec<String>,
        filters: Vec<Filter>,
        page: Page,
    },
    ModifyInstanceMetadataOptions {
        instance_id: String,
        http_tokens: Option<HttpTokens>,
        http_endpoint: Option<HttpEndpoint>,
        hop_limit: Option<u32>,
    },
}

#[derive(Debug, Clone)]
pub enum Response {
    DescribeNetworkInterfaces {
        interfaces: Vec<NetworkInterface>,
        next_token: Option<String>,
    },
    ModifyInstanceMetadataOptions {
        instance_id: String,
        http_tokens: HttpTokens,
        http_endpoint: HttpEndpoint,
        hop_limit: u32,
    },
}

impl Resource for Action {
    type Response = Response;

    const OPS: &'static [Op<Action>] = &[
        Op::read("DescribeNetworkInterfaces", |p| {
            Ok(Action::DescribeNetworkInterfaces {
                ids: p.take_list("NetworkInterfaceId")?,
                filters: p.take_filters()?,
                page: take_page(p, 5, 1000)?,
            })
        }),
        Op::write("ModifyInstanceMetadataOptions", |p| {
            let instance_id = p.required("InstanceId")?;
            let http_tokens = p
                .take("HttpTokens")
                .map(|v| one_of_enum("HttpTokens", &v))
                .transpose()?;
            let http_endpoint = p
                .take("HttpEndpoint")
                .map(|v| one_of_enum("HttpEndpoint", &v))
                .transpose()?;
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
            Ok(Action::ModifyInstanceMetadataOptions {
                instance_id,
                http_tokens,
                http_endpoint,
                hop_limit,
            })
        }),
    ];

    fn name(&self) -> &'static str {
        match self {
            Action::DescribeNetworkInterfaces { .. } => "DescribeNetworkInterfaces",
            Action::ModifyInstanceMetadataOptions { .. } => "ModifyInstanceMetadataOptions",
        }
    }
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

impl Response {
    pub(crate) fn write(&self, x: &mut Xml) {
        match self {
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
                    .leaf("httpTokens", http_tokens.as_str())
                    .leaf("httpPutResponseHopLimit", &hop_limit.to_string())
                    .leaf("httpEndpoint", http_endpoint.as_str())
                    .leaf("httpProtocolIpv6", "disabled")
                    .leaf("instanceMetadataTags", "disabled")
                    .close("instanceMetadataOptions");
            }
        }
    }
}
