//! Elastic IP addresses: `AllocateAddress`, `AssociateAddress`, `DisassociateAddress`,
//! `ReleaseAddress`, `DescribeAddresses`.

use gureum_types::model::{Address, Filter, TagSpecification};
use gureum_types::{ApiError, DomainType, ErrorCode};

use crate::action::one_of_enum;
use crate::ops::{Op, Resource};
use crate::render::tag_set;
use crate::xml::Xml;

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
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
}

#[derive(Debug, Clone)]
pub enum Response {
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
    /// `DisassociateAddress`, `ReleaseAddress`: `<return>true</return>`.
    Return,
}

impl Resource for Action {
    type Response = Response;

    const OPS: &'static [Op<Action>] = &[
        Op::write("AllocateAddress", |p| {
            // Checked, then dropped: every address is a VPC address.
            if let Some(d) = p.take("Domain") {
                one_of_enum::<DomainType>("Domain", &d)?;
            }
            for k in [
                "NetworkBorderGroup",
                "PublicIpv4Pool",
                "CustomerOwnedIpv4Pool",
                "IpamPoolId",
            ] {
                p.take(k);
            }
            Ok(Action::AllocateAddress {
                address: p.take("Address").filter(|a| !a.is_empty()),
                tag_specifications: p.take_tag_specifications()?,
            })
        }),
        Op::write("AssociateAddress", |p| {
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
            Ok(Action::AssociateAddress {
                allocation_id,
                public_ip,
                instance_id,
                network_interface_id,
                private_ip: p.take("PrivateIpAddress").filter(|v| !v.is_empty()),
                allow_reassociation: p.take_bool("AllowReassociation")?.unwrap_or(false),
            })
        }),
        Op::write("DisassociateAddress", |p| {
            let association_id = p.take("AssociationId").filter(|v| !v.is_empty());
            let public_ip = p.take("PublicIp").filter(|v| !v.is_empty());
            if association_id.is_none() && public_ip.is_none() {
                return Err(ApiError::missing_parameter("AssociationId"));
            }
            Ok(Action::DisassociateAddress {
                association_id,
                public_ip,
            })
        }),
        Op::write("ReleaseAddress", |p| {
            let allocation_id = p.take("AllocationId").filter(|v| !v.is_empty());
            let public_ip = p.take("PublicIp").filter(|v| !v.is_empty());
            if allocation_id.is_none() && public_ip.is_none() {
                return Err(ApiError::missing_parameter("AllocationId"));
            }
            p.take("NetworkBorderGroup");
            Ok(Action::ReleaseAddress {
                allocation_id,
                public_ip,
            })
        }),
        Op::read("DescribeAddresses", |p| {
            Ok(Action::DescribeAddresses {
                public_ips: p.take_list("PublicIp")?,
                allocation_ids: p.take_list("AllocationId")?,
                filters: p.take_filters()?,
            })
        }),
    ];

    fn name(&self) -> &'static str {
        match self {
            Action::AllocateAddress { .. } => "AllocateAddress",
            Action::AssociateAddress { .. } => "AssociateAddress",
            Action::DisassociateAddress { .. } => "DisassociateAddress",
            Action::ReleaseAddress { .. } => "ReleaseAddress",
            Action::DescribeAddresses { .. } => "DescribeAddresses",
        }
    }
}

impl Response {
    pub(crate) fn write(&self, x: &mut Xml) {
        match self {
            Response::AllocateAddress {
                public_ip,
                allocation_id,
                region,
            } => {
                x.leaf("publicIp", public_ip)
                    .leaf("domain", DomainType::Vpc.as_str())
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
                        .leaf("domain", DomainType::Vpc.as_str())
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
            Response::Return => {
                x.bool("return", true);
            }
        }
    }
}
