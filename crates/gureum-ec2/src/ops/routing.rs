//! Internet gateways and route tables: `CreateInternetGateway`, `DeleteInternetGateway`,
//! `AttachInternetGateway`, `DetachInternetGateway`, `DescribeInternetGateways`,
//! `CreateRouteTable`, `DeleteRouteTable`, `DescribeRouteTables`, `CreateRoute`,
//! `ReplaceRoute`, `DeleteRoute`, `AssociateRouteTable`, `DisassociateRouteTable`,
//! `ReplaceRouteTableAssociation`.

use gureum_types::model::{Filter, InternetGateway, RouteTable, TagSpecification};
use gureum_types::{ApiError, ErrorCode};

use crate::action::{take_page, Page};
use crate::ops::{Op, Resource};
use crate::params::Params;
use crate::render::tag_set;
use crate::xml::Xml;

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
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
}

#[derive(Debug, Clone)]
pub enum Response {
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
    /// The deletes, attaches and detaches, `CreateRoute`, `ReplaceRoute`, `DeleteRoute`
    /// and `DisassociateRouteTable`: `<return>true</return>`.
    Return,
}

impl Resource for Action {
    type Response = Response;

    const OPS: &'static [Op<Action>] = &[
        Op::write("CreateInternetGateway", |p| {
            Ok(Action::CreateInternetGateway {
                tag_specifications: p.take_tag_specifications()?,
            })
        }),
        Op::write("DeleteInternetGateway", |p| {
            Ok(Action::DeleteInternetGateway {
                internet_gateway_id: p.required("InternetGatewayId")?,
            })
        }),
        Op::write("AttachInternetGateway", |p| {
            Ok(Action::AttachInternetGateway {
                internet_gateway_id: p.required("InternetGatewayId")?,
                vpc_id: p.required("VpcId")?,
            })
        }),
        Op::write("DetachInternetGateway", |p| {
            Ok(Action::DetachInternetGateway {
                internet_gateway_id: p.required("InternetGatewayId")?,
                vpc_id: p.required("VpcId")?,
            })
        }),
        Op::read("DescribeInternetGateways", |p| {
            Ok(Action::DescribeInternetGateways {
                internet_gateway_ids: p.take_list("InternetGatewayId")?,
                filters: p.take_filters()?,
                page: take_page(p, 5, 1000)?,
            })
        }),
        Op::write("CreateRouteTable", |p| {
            Ok(Action::CreateRouteTable {
                vpc_id: p.required("VpcId")?,
                client_token: p.take("ClientToken"),
                tag_specifications: p.take_tag_specifications()?,
            })
        }),
        Op::write("DeleteRouteTable", |p| {
            Ok(Action::DeleteRouteTable {
                route_table_id: p.required("RouteTableId")?,
            })
        }),
        Op::read("DescribeRouteTables", |p| {
            Ok(Action::DescribeRouteTables {
                route_table_ids: p.take_list("RouteTableId")?,
                filters: p.take_filters()?,
                page: take_page(p, 5, 100)?,
            })
        }),
        Op::write("CreateRoute", |p| parse_put_route(p, false)),
        Op::write("ReplaceRoute", |p| parse_put_route(p, true)),
        Op::write("DeleteRoute", |p| {
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
            Ok(Action::DeleteRoute {
                route_table_id,
                destination_cidr_block: p.required("DestinationCidrBlock")?,
            })
        }),
        Op::write("AssociateRouteTable", |p| {
            let route_table_id = p.required("RouteTableId")?;
            if p.take("GatewayId").is_some() || p.take("PublicIpv4Pool").is_some() {
                return Err(ApiError::new(
                    ErrorCode::UnsupportedOperation,
                    "gureum associates route tables with subnets only (no gateway route tables)",
                ));
            }
            Ok(Action::AssociateRouteTable {
                route_table_id,
                subnet_id: p.required("SubnetId")?,
            })
        }),
        Op::write("DisassociateRouteTable", |p| {
            Ok(Action::DisassociateRouteTable {
                association_id: p.required("AssociationId")?,
            })
        }),
        Op::write("ReplaceRouteTableAssociation", |p| {
            Ok(Action::ReplaceRouteTableAssociation {
                association_id: p.required("AssociationId")?,
                route_table_id: p.required("RouteTableId")?,
            })
        }),
    ];

    fn name(&self) -> &'static str {
        match self {
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
        }
    }
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

impl Response {
    pub(crate) fn write(&self, x: &mut Xml) {
        match self {
            Response::CreateInternetGateway(g) => {
                x.open("internetGateway");
                internet_gateway_xml(x, g);
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
                route_table_xml(x, table);
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
    fn routing_actions_parse_as_the_cli_sends_them() {
        let r = parse_form(
            "Action=CreateRoute&RouteTableId=rtb-1&DestinationCidrBlock=0.0.0.0/0&GatewayId=igw-1",
        )
        .unwrap();
        assert!(matches!(
            r.action,
            crate::Action::Routing(Action::PutRoute { replace: false, .. })
        ));
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
        let r = parse_form("Action=DescribeInternetGateways&InternetGatewayId.1=igw-1&Filter.1.Name=attachment.vpc-id&Filter.1.Value.1=v").unwrap();
        assert!(
            matches!(r.action, crate::Action::Routing(Action::DescribeInternetGateways { ref internet_gateway_ids, .. }) if internet_gateway_ids == &["igw-1"])
        );
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
        let doc = crate::Response::from(Response::DescribeRouteTables {
            tables: vec![t],
            next_token: None,
        })
        .render("DescribeRouteTables", "r");
        assert!(doc.contains(
            "<routeTableSet><item><routeTableId>rtb-1</routeTableId><vpcId>vpc-1</vpcId>\
             <ownerId>111</ownerId><routeSet><item><destinationCidrBlock>10.0.0.0/16</destinationCidrBlock>\
             <gatewayId>local</gatewayId><state>active</state><origin>CreateRouteTable</origin></item></routeSet>\
             <associationSet><item><main>true</main><routeTableAssociationId>rtbassoc-1</routeTableAssociationId>\
             <routeTableId>rtb-1</routeTableId><associationState><state>associated</state></associationState>\
             </item></associationSet><propagatingVgwSet></propagatingVgwSet><tagSet></tagSet></item></routeTableSet>"
        ), "{doc}");
        let doc = crate::Response::from(Response::DescribeInternetGateways {
            gateways: vec![InternetGateway {
                id: "igw-1".into(),
                owner_id: "111".into(),
                vpc_id: Some("vpc-1".into()),
                tags: vec![],
            }],
            next_token: None,
        })
        .render("DescribeInternetGateways", "r");
        assert!(doc.contains(
            "<internetGatewaySet><item><internetGatewayId>igw-1</internetGatewayId><ownerId>111</ownerId>\
             <attachmentSet><item><vpcId>vpc-1</vpcId><state>available</state></item></attachmentSet>"
        ), "{doc}");
        let doc = crate::Response::from(Response::RouteTableAssociated {
            association_id: "rtbassoc-2".into(),
            replaced: true,
        })
        .render("ReplaceRouteTableAssociation", "r");
        assert!(doc.contains("<newAssociationId>rtbassoc-2</newAssociationId><associationState><state>associated</state></associationState>"));
    }
}
