//! Internet gateways and route tables, with AWS's semantics: a gateway attaches to at most one
//! VPC and a VPC has at most one gateway; every VPC has one main route table (with a `Main`
//! association of its own id) used by the subnets without an explicit association; a route
//! table's local route (the VPC's CIDR) is implied; other routes send an IPv4 destination to an
//! internet gateway attached to the table's VPC, and turn `blackhole` when it is detached.
//!
//! gureum routes only to internet gateways: other targets (NAT gateways, instances, network
//! interfaces, peering connections, …) answer `UnsupportedOperation`. What a route table does
//! on the host is the agent's business: a subnet's public addresses work when its table sends
//! `0.0.0.0/0` to the VPC's attached gateway (`gureum_store::routing::internet_routed_subnets`).

use std::collections::HashMap;

use gureum_ec2::ops::routing::{Action, Response};
use gureum_ec2::Page;
use gureum_store::routing::{self as db, AssociationRow, RouteRow, RouteTableRow};
use gureum_store::vpcs as vpc_db;
use gureum_store::Tx;
use gureum_types::model::{
    Filter, InternetGateway, Route, RouteTable, RouteTableAssociation, Tag, TagSpecification,
};
use gureum_types::{ApiError, ErrorCode, ResourceId, ResourceKind};
use ipnet::Ipv4Net;

use crate::describe::{self, Describable};
use crate::vpcs::{check_id, find_subnet, find_vpc, parse_cidr, select, IdErrors};
use crate::{tags, Cloud, CoreError, CoreResult, Ctx};

/// AWS's default quotas.
pub const MAX_INTERNET_GATEWAYS: usize = 5;
pub const MAX_ROUTE_TABLES_PER_VPC: usize = 200;
pub const MAX_ROUTES_PER_TABLE: usize = 50;

pub(crate) const IGW_IDS: IdErrors = IdErrors {
    kind: ResourceKind::InternetGateway,
    malformed: ErrorCode::InvalidInternetGatewayIdMalformed,
    not_found: ErrorCode::InvalidInternetGatewayIDNotFound,
    noun: "internetGateway",
};
pub(crate) const RTB_IDS: IdErrors = IdErrors {
    kind: ResourceKind::RouteTable,
    malformed: ErrorCode::InvalidRouteTableIdMalformed,
    not_found: ErrorCode::InvalidRouteTableIDNotFound,
    noun: "routeTable",
};

const RTB_KIND: &str = "route-table";
const ASSOC_KIND: &str = "route-table-association";
const IGW_KIND: &str = "internet-gateway";

fn new_association_id(tx: &dyn Tx, account: &str, now: i64) -> CoreResult<String> {
    let id = ResourceId::generate(ResourceKind::RouteTableAssociation).to_string();
    tx.resources().insert(&id, account, ASSOC_KIND, now)?;
    Ok(id)
}

/// A VPC's main route table, with its main association. Blocking.
pub(crate) fn create_main_route_table_tx(
    tx: &dyn Tx,
    account: &str,
    vpc_id: &str,
    now: i64,
) -> CoreResult<String> {
    let id = ResourceId::generate(ResourceKind::RouteTable).to_string();
    tx.resources().insert(&id, account, RTB_KIND, now)?;
    tx.routing().insert_route_table(&RouteTableRow {
        id: id.clone(),
        account_id: account.to_string(),
        vpc_id: vpc_id.to_string(),
        is_main: false,
        created_at: now,
    })?;
    let assoc = new_association_id(tx, account, now)?;
    tx.routing().set_main(vpc_id, &id, &assoc)?;
    Ok(id)
}

/// What a default VPC has on AWS besides its subnets: an attached internet gateway, a main
/// route table sending `0.0.0.0/0` to it, and `enableDnsHostnames`. Creates whatever is missing, then marks the VPC
/// ready, so this runs once per default VPC. Blocking.
pub(crate) fn default_vpc_internet_tx(
    tx: &dyn Tx,
    account: &str,
    vpc_id: &str,
    now: i64,
) -> CoreResult<()> {
    let main = match tx.routing().main_route_table(vpc_id)? {
        Some(t) => {
            let view = tx
                .routing()
                .route_tables(account)?
                .into_iter()
                .find(|v| v.table.id == t);
            if view.is_some_and(|v| v.main_association_id.is_none()) {
                let assoc = new_association_id(tx, account, now)?;
                tx.routing().set_main(vpc_id, &t, &assoc)?;
            }
            t
        }
        None => create_main_route_table_tx(tx, account, vpc_id, now)?,
    };
    let igw = match tx.routing().gateway_of_vpc(vpc_id)? {
        Some(g) => g,
        None => {
            let id = ResourceId::generate(ResourceKind::InternetGateway).to_string();
            tx.resources().insert(&id, account, IGW_KIND, now)?;
            tx.routing()
                .insert_internet_gateway(&db::InternetGatewayRow {
                    id: id.clone(),
                    account_id: account.to_string(),
                    vpc_id: Some(vpc_id.to_string()),
                    created_at: now,
                })?;
            id
        }
    };
    let has_default_route = tx
        .routing()
        .routes(account)?
        .iter()
        .any(|r| r.route_table_id == main && r.destination == "0.0.0.0/0");
    if !has_default_route {
        tx.routing().insert_route(&RouteRow {
            route_table_id: main,
            destination: "0.0.0.0/0".into(),
            gateway_id: igw,
        })?;
    }
    // AWS's default VPCs also resolve DNS hostnames (recorded only, as for any VPC).
    tx.vpcs()
        .set_vpc_flag(vpc_id, vpc_db::VpcFlag::DnsHostnames, true)?;
    tx.vpcs()
        .set_vpc_flag(vpc_id, vpc_db::VpcFlag::InternetReady, true)?;
    Ok(())
}

impl Describable for InternetGateway {
    fn filter_values(&self, name: &str) -> Option<Vec<String>> {
        Some(match name {
            "internet-gateway-id" => vec![self.id.clone()],
            "owner-id" => vec![self.owner_id.clone()],
            "attachment.vpc-id" => self.vpc_id.iter().cloned().collect(),
            "attachment.state" => self.vpc_id.iter().map(|_| "available".into()).collect(),
            _ => return None,
        })
    }
    fn tags(&self) -> &[Tag] {
        &self.tags
    }
}

const IGW_FILTERS: &[&str] = &[
    "internet-gateway-id",
    "owner-id",
    "attachment.vpc-id",
    "attachment.state",
];

impl Describable for RouteTable {
    fn filter_values(&self, name: &str) -> Option<Vec<String>> {
        let assoc = |f: &dyn Fn(&RouteTableAssociation) -> Option<String>| -> Vec<String> {
            self.associations.iter().filter_map(f).collect()
        };
        let route =
            |f: &dyn Fn(&Route) -> String| -> Vec<String> { self.routes.iter().map(f).collect() };
        Some(match name {
            "route-table-id" => vec![self.id.clone()],
            "vpc-id" => vec![self.vpc_id.clone()],
            "owner-id" => vec![self.owner_id.clone()],
            "association.subnet-id" => assoc(&|a| a.subnet_id.clone()),
            "association.main" => assoc(&|a| Some(a.main.to_string())),
            "association.route-table-association-id" => assoc(&|a| Some(a.id.clone())),
            "association.route-table-id" => assoc(&|a| Some(a.route_table_id.clone())),
            "association.association-state" => assoc(&|_| Some("associated".into())),
            "route.gateway-id" => route(&|r| r.gateway_id.clone()),
            "route.destination-cidr-block" => route(&|r| r.destination_cidr_block.clone()),
            "route.origin" => route(&|r| r.origin.clone()),
            "route.state" => route(&|r| r.state.clone()),
            _ => return None,
        })
    }
    fn tags(&self) -> &[Tag] {
        &self.tags
    }
}

const RTB_FILTERS: &[&str] = &[
    "route-table-id",
    "vpc-id",
    "owner-id",
    "association.subnet-id",
    "association.main",
    "association.route-table-association-id",
    "association.route-table-id",
    "association.association-state",
    "route.gateway-id",
    "route.destination-cidr-block",
    "route.origin",
    "route.state",
];

/// The account's internet gateways and route tables as the API shows them. Blocking.
fn models(c: &dyn Tx, account: &str) -> CoreResult<(Vec<InternetGateway>, Vec<RouteTable>)> {
    let mut tags = c.tags().all_by_resource(account)?;
    let gateways: Vec<InternetGateway> = c
        .routing()
        .internet_gateways(account)?
        .into_iter()
        .map(|g| InternetGateway {
            tags: tags.remove(&g.id).unwrap_or_default(),
            id: g.id,
            owner_id: g.account_id,
            vpc_id: g.vpc_id,
        })
        .collect();
    let attached: HashMap<&str, &str> = gateways
        .iter()
        .filter_map(|g| Some((g.id.as_str(), g.vpc_id.as_deref()?)))
        .collect();
    let vpc_cidrs: HashMap<String, String> = c
        .vpcs()
        .vpcs(account)?
        .into_iter()
        .map(|v| (v.id, v.cidr))
        .collect();
    let mut routes: HashMap<String, Vec<RouteRow>> = HashMap::new();
    for r in c.routing().routes(account)? {
        routes.entry(r.route_table_id.clone()).or_default().push(r);
    }
    let mut assocs: HashMap<String, Vec<AssociationRow>> = HashMap::new();
    for a in c.routing().associations(account)? {
        assocs.entry(a.route_table_id.clone()).or_default().push(a);
    }
    let tables =
        c.routing()
            .route_tables(account)?
            .into_iter()
            .map(|v| {
                let t = v.table;
                let mut rs = vec![Route {
                    destination_cidr_block: vpc_cidrs.get(&t.vpc_id).cloned().unwrap_or_default(),
                    gateway_id: "local".into(),
                    origin: "CreateRouteTable".into(),
                    state: "active".into(),
                }];
                rs.extend(
                    routes
                        .remove(&t.id)
                        .unwrap_or_default()
                        .into_iter()
                        .map(|r| {
                            let live =
                                attached.get(r.gateway_id.as_str()) == Some(&t.vpc_id.as_str());
                            Route {
                                destination_cidr_block: r.destination,
                                gateway_id: r.gateway_id,
                                origin: "CreateRoute".into(),
                                state: if live { "active" } else { "blackhole" }.into(),
                            }
                        }),
                );
                let mut associations: Vec<RouteTableAssociation> = v
                    .main_association_id
                    .filter(|_| t.is_main)
                    .map(|id| RouteTableAssociation {
                        id,
                        route_table_id: t.id.clone(),
                        subnet_id: None,
                        main: true,
                    })
                    .into_iter()
                    .collect();
                associations.extend(assocs.remove(&t.id).unwrap_or_default().into_iter().map(
                    |a| RouteTableAssociation {
                        id: a.id,
                        route_table_id: a.route_table_id,
                        subnet_id: Some(a.subnet_id),
                        main: false,
                    },
                ));
                RouteTable {
                    tags: tags.remove(&t.id).unwrap_or_default(),
                    id: t.id,
                    owner_id: t.account_id,
                    vpc_id: t.vpc_id,
                    routes: rs,
                    associations,
                }
            })
            .collect();
    Ok((gateways, tables))
}

fn find_gateway(c: &dyn Tx, account: &str, id: &str) -> CoreResult<db::InternetGatewayRow> {
    check_id(c, account, id, &IGW_IDS)?;
    c.routing()
        .internet_gateways(account)?
        .into_iter()
        .find(|g| g.id == id)
        .ok_or_else(|| CoreError::missing("internet gateway", id))
}

fn find_table(c: &dyn Tx, account: &str, id: &str) -> CoreResult<db::RouteTableView> {
    check_id(c, account, id, &RTB_IDS)?;
    c.routing()
        .route_tables(account)?
        .into_iter()
        .find(|t| t.table.id == id)
        .ok_or_else(|| CoreError::missing("route table", id))
}

fn table_model(c: &dyn Tx, account: &str, id: &str) -> CoreResult<RouteTable> {
    models(c, account)?
        .1
        .into_iter()
        .find(|t| t.id == id)
        .ok_or_else(|| CoreError::missing("route table", id))
}

fn association_not_found(id: &str) -> CoreError {
    ApiError::new(
        ErrorCode::InvalidAssociationIDNotFound,
        format!("The association ID '{id}' does not exist"),
    )
    .into()
}

fn invalid(message: String) -> CoreError {
    ApiError::new(ErrorCode::InvalidParameterValue, message).into()
}

/// An association of the account's route tables: explicit (with its subnet) or main.
enum Assoc {
    Subnet(AssociationRow),
    Main { table: RouteTableRow },
}

fn find_association(c: &dyn Tx, account: &str, id: &str) -> CoreResult<Assoc> {
    if ResourceId::parse(ResourceKind::RouteTableAssociation, id).is_none() {
        return Err(association_not_found(id));
    }
    if let Some(a) = c
        .routing()
        .associations(account)?
        .into_iter()
        .find(|a| a.id == id)
    {
        return Ok(Assoc::Subnet(a));
    }
    c.routing()
        .route_tables(account)?
        .into_iter()
        .find(|t| t.table.is_main && t.main_association_id.as_deref() == Some(id))
        .map(|t| Assoc::Main { table: t.table })
        .ok_or_else(|| association_not_found(id))
}

impl Cloud {
    pub(crate) async fn create_internet_gateway(
        &self,
        account: String,
        specs: Vec<TagSpecification>,
    ) -> CoreResult<Response> {
        let tags = tags::from_specifications(&specs, ResourceKind::InternetGateway)?;
        self.ensure_default_vpc(&account).await?;
        let now = self.clock.now_millis();
        let gw = self
            .blocking(move |s| {
                s.write(|tx| {
                    if tx.routing().internet_gateways(&account)?.len() >= MAX_INTERNET_GATEWAYS {
                        return Err(ApiError::new(
                            ErrorCode::InternetGatewayLimitExceeded,
                            "The maximum number of internet gateways has been reached.",
                        )
                        .into());
                    }
                    let id = ResourceId::generate(ResourceKind::InternetGateway).to_string();
                    tx.resources().insert(&id, &account, IGW_KIND, now)?;
                    tx.routing()
                        .insert_internet_gateway(&db::InternetGatewayRow {
                            id: id.clone(),
                            account_id: account.clone(),
                            vpc_id: None,
                            created_at: now,
                        })?;
                    tx.tags().put(&account, &id, &tags)?;
                    Ok::<_, CoreError>(InternetGateway {
                        id,
                        owner_id: account.clone(),
                        vpc_id: None,
                        tags,
                    })
                })
            })
            .await?;
        Ok(Response::CreateInternetGateway(gw))
    }

    pub(crate) async fn delete_internet_gateway(
        &self,
        account: String,
        id: String,
    ) -> CoreResult<Response> {
        self.ensure_default_vpc(&account).await?;
        self.blocking(move |s| {
            s.write(|tx| {
                let g = find_gateway(tx, &account, &id)?;
                if g.vpc_id.is_some() {
                    return Err(ApiError::new(
                        ErrorCode::DependencyViolation,
                        format!(
                            "The internetGateway '{id}' has dependencies and cannot be deleted."
                        ),
                    )
                    .into());
                }
                // Routes to it stay, as `blackhole`, as on AWS.
                tx.resources().delete(&account, &id)?;
                Ok::<_, CoreError>(())
            })
        })
        .await?;
        Ok(Response::Return)
    }

    pub(crate) async fn attach_internet_gateway(
        &self,
        account: String,
        id: String,
        vpc_id: String,
    ) -> CoreResult<Response> {
        self.ensure_default_vpc(&account).await?;
        self.blocking(move |s| {
            s.write(|tx| {
                let g = find_gateway(tx, &account, &id)?;
                find_vpc(tx, &account, &vpc_id)?;
                if let Some(v) = &g.vpc_id {
                    return Err(ApiError::new(
                        ErrorCode::ResourceAlreadyAssociated,
                        format!("resource {id} is already attached to network {v}"),
                    )
                    .into());
                }
                if let Some(other) = tx.routing().gateway_of_vpc(&vpc_id)? {
                    return Err(ApiError::new(
                        ErrorCode::ResourceAlreadyAssociated,
                        format!(
                            "resource {vpc_id} is already attached to internet gateway {other}"
                        ),
                    )
                    .into());
                }
                tx.routing().set_gateway_vpc(&id, Some(&vpc_id))?;
                Ok::<_, CoreError>(())
            })
        })
        .await?;
        self.notify.notify_one();
        Ok(Response::Return)
    }

    pub(crate) async fn detach_internet_gateway(
        &self,
        account: String,
        id: String,
        vpc_id: String,
    ) -> CoreResult<Response> {
        self.ensure_default_vpc(&account).await?;
        self.blocking(move |s| {
            s.write(|tx| {
                let g = find_gateway(tx, &account, &id)?;
                find_vpc(tx, &account, &vpc_id)?;
                if g.vpc_id.as_deref() != Some(vpc_id.as_str()) {
                    return Err(ApiError::new(
                        ErrorCode::GatewayNotAttached,
                        format!("resource {id} is not attached to network {vpc_id}"),
                    )
                    .into());
                }
                // AWS refuses while public addresses are mapped in the VPC.
                if tx.routing().mapped_public_addresses_in_vpc(&vpc_id)? > 0 {
                    return Err(ApiError::new(
                        ErrorCode::DependencyViolation,
                        format!(
                            "Network {vpc_id} has some mapped public address(es). Please unmap those public address(es) before detaching the gateway."
                        ),
                    )
                    .into());
                }
                tx.routing().set_gateway_vpc(&id, None)?;
                Ok::<_, CoreError>(())
            })
        })
        .await?;
        self.notify.notify_one();
        Ok(Response::Return)
    }

    pub(crate) async fn describe_internet_gateways(
        &self,
        account: String,
        ids: Vec<String>,
        filters: Vec<Filter>,
        page: Page,
    ) -> CoreResult<Response> {
        describe::validate_filters(&filters, IGW_FILTERS, true)?;
        self.ensure_default_vpc(&account).await?;
        let (gateways, _) = self
            .blocking(move |s| s.read(|c| models(c, &account)))
            .await?;
        let (gateways, next_token) = select(gateways, |g| &g.id, &ids, &filters, &page, IGW_IDS)?;
        Ok(Response::DescribeInternetGateways {
            gateways,
            next_token,
        })
    }

    pub(crate) async fn create_route_table(
        &self,
        account: String,
        vpc_id: String,
        client_token: Option<String>,
        specs: Vec<TagSpecification>,
    ) -> CoreResult<Response> {
        let tags = tags::from_specifications(&specs, ResourceKind::RouteTable)?;
        self.ensure_default_vpc(&account).await?;
        let now = self.clock.now_millis();
        let table = self
            .blocking(move |s| {
                s.write(|tx| {
                    find_vpc(tx, &account, &vpc_id)?;
                    let in_vpc = tx
                        .routing()
                        .route_tables(&account)?
                        .iter()
                        .filter(|t| t.table.vpc_id == vpc_id)
                        .count();
                    if in_vpc >= MAX_ROUTE_TABLES_PER_VPC {
                        return Err(ApiError::new(
                            ErrorCode::RouteTableLimitExceeded,
                            "The maximum number of route tables has been reached.",
                        )
                        .into());
                    }
                    let id = ResourceId::generate(ResourceKind::RouteTable).to_string();
                    tx.resources().insert(&id, &account, RTB_KIND, now)?;
                    tx.routing().insert_route_table(&RouteTableRow {
                        id: id.clone(),
                        account_id: account.clone(),
                        vpc_id: vpc_id.clone(),
                        is_main: false,
                        created_at: now,
                    })?;
                    tx.tags().put(&account, &id, &tags)?;
                    table_model(tx, &account, &id)
                })
            })
            .await?;
        Ok(Response::CreateRouteTable {
            table,
            client_token,
        })
    }

    pub(crate) async fn delete_route_table(
        &self,
        account: String,
        id: String,
    ) -> CoreResult<Response> {
        self.ensure_default_vpc(&account).await?;
        self.blocking(move |s| {
            s.write(|tx| {
                let t = find_table(tx, &account, &id)?;
                let associated = tx
                    .routing()
                    .associations(&account)?
                    .iter()
                    .any(|a| a.route_table_id == id);
                if t.table.is_main || associated {
                    return Err(ApiError::new(
                        ErrorCode::DependencyViolation,
                        format!("The routeTable '{id}' has dependencies and cannot be deleted."),
                    )
                    .into());
                }
                tx.resources().delete(&account, &id)?;
                Ok::<_, CoreError>(())
            })
        })
        .await?;
        Ok(Response::Return)
    }

    pub(crate) async fn describe_route_tables(
        &self,
        account: String,
        ids: Vec<String>,
        filters: Vec<Filter>,
        page: Page,
    ) -> CoreResult<Response> {
        describe::validate_filters(&filters, RTB_FILTERS, true)?;
        self.ensure_default_vpc(&account).await?;
        let (_, tables) = self
            .blocking(move |s| s.read(|c| models(c, &account)))
            .await?;
        let (tables, next_token) = select(tables, |t| &t.id, &ids, &filters, &page, RTB_IDS)?;
        Ok(Response::DescribeRouteTables { tables, next_token })
    }

    /// `CreateRoute` (`replace` false) and `ReplaceRoute`.
    pub(crate) async fn put_route(
        &self,
        account: String,
        replace: bool,
        table_id: String,
        destination: String,
        gateway_id: String,
    ) -> CoreResult<Response> {
        let dest = parse_cidr("destinationCidrBlock", &destination)?;
        self.ensure_default_vpc(&account).await?;
        self.blocking(move |s| {
            s.write(|tx| {
                let t = find_table(tx, &account, &table_id)?.table;
                let vpc = find_vpc(tx, &account, &t.vpc_id)?;
                check_not_local(&vpc.cidr, &dest)?;
                let gateway_missing = || -> CoreError {
                    ApiError::new(
                        ErrorCode::InvalidGatewayIDNotFound,
                        format!("The gateway ID '{gateway_id}' does not exist"),
                    )
                    .into()
                };
                if ResourceId::parse(ResourceKind::InternetGateway, &gateway_id).is_none() {
                    return Err(gateway_missing());
                }
                let g = tx.routing().internet_gateways(&account)?
                    .into_iter()
                    .find(|g| g.id == gateway_id)
                    .ok_or_else(gateway_missing)?;
                if g.vpc_id.as_deref() != Some(t.vpc_id.as_str()) {
                    return Err(invalid(format!(
                        "route table {table_id} and network gateway {gateway_id} belong to different networks"
                    )));
                }
                let routes: Vec<RouteRow> = tx.routing().routes(&account)?
                    .into_iter()
                    .filter(|r| r.route_table_id == table_id)
                    .collect();
                let row = RouteRow {
                    route_table_id: table_id.clone(),
                    destination: dest.to_string(),
                    gateway_id: gateway_id.clone(),
                };
                let exists = routes.iter().any(|r| r.destination == row.destination);
                if replace {
                    if !exists {
                        return Err(invalid(format!(
                            "There is no route defined for '{dest}' in the route table. Use CreateRoute instead."
                        )));
                    }
                    tx.routing().replace_route(&row)?;
                } else {
                    if exists {
                        return Err(ApiError::new(
                            ErrorCode::RouteAlreadyExists,
                            format!("The route identified by {dest} already exists."),
                        )
                        .into());
                    }
                    // The local route counts towards the quota.
                    if routes.len() + 1 >= MAX_ROUTES_PER_TABLE {
                        return Err(ApiError::new(
                            ErrorCode::RouteLimitExceeded,
                            "The maximum number of routes has been reached.",
                        )
                        .into());
                    }
                    tx.routing().insert_route(&row)?;
                }
                Ok::<_, CoreError>(())
            })
        })
        .await?;
        self.notify.notify_one();
        Ok(Response::Return)
    }

    pub(crate) async fn delete_route(
        &self,
        account: String,
        table_id: String,
        destination: String,
    ) -> CoreResult<Response> {
        let dest = parse_cidr("destinationCidrBlock", &destination)?;
        self.ensure_default_vpc(&account).await?;
        self.blocking(move |s| {
            s.write(|tx| {
                let t = find_table(tx, &account, &table_id)?.table;
                let vpc = find_vpc(tx, &account, &t.vpc_id)?;
                if vpc.cidr == dest.to_string() {
                    return Err(invalid(format!(
                        "cannot remove local route {dest} in route table {table_id}"
                    )));
                }
                if !tx.routing().delete_route(&table_id, &dest.to_string())? {
                    return Err(ApiError::new(
                        ErrorCode::InvalidRouteNotFound,
                        format!(
                            "no route with destination-cidr-block {dest} in route table {table_id}"
                        ),
                    )
                    .into());
                }
                Ok::<_, CoreError>(())
            })
        })
        .await?;
        self.notify.notify_one();
        Ok(Response::Return)
    }

    pub(crate) async fn associate_route_table(
        &self,
        account: String,
        table_id: String,
        subnet_id: String,
    ) -> CoreResult<Response> {
        self.ensure_default_vpc(&account).await?;
        let now = self.clock.now_millis();
        let id = self
            .blocking(move |s| {
                s.write(|tx| {
                    let t = find_table(tx, &account, &table_id)?.table;
                    let subnet = find_subnet(tx, &account, &subnet_id)?;
                    if subnet.vpc_id != t.vpc_id {
                        return Err(invalid(format!(
                            "route table {table_id} and subnet {subnet_id} belong to different networks"
                        )));
                    }
                    if tx.routing().associations(&account)?
                        .iter()
                        .any(|a| a.subnet_id == subnet_id)
                    {
                        return Err(ApiError::new(
                            ErrorCode::ResourceAlreadyAssociated,
                            format!(
                                "the specified association for route table {table_id} conflicts with an existing association"
                            ),
                        )
                        .into());
                    }
                    let id = new_association_id(tx, &account, now)?;
                    tx.routing().insert_association(&AssociationRow {
                            id: id.clone(),
                            route_table_id: table_id.clone(),
                            subnet_id: subnet_id.clone(),
                        },
                    )?;
                    Ok::<_, CoreError>(id)
                })
            })
            .await?;
        self.notify.notify_one();
        Ok(Response::RouteTableAssociated {
            association_id: id,
            replaced: false,
        })
    }

    pub(crate) async fn disassociate_route_table(
        &self,
        account: String,
        association_id: String,
    ) -> CoreResult<Response> {
        self.ensure_default_vpc(&account).await?;
        self.blocking(move |s| {
            s.write(|tx| {
                match find_association(tx, &account, &association_id)? {
                    Assoc::Main { .. } => {
                        return Err(invalid(format!(
                            "cannot disassociate the main route table association {association_id}"
                        )))
                    }
                    Assoc::Subnet(a) => {
                        tx.routing().delete_association(&a.id)?;
                        tx.resources().delete(&account, &a.id)?;
                    }
                }
                Ok::<_, CoreError>(())
            })
        })
        .await?;
        self.notify.notify_one();
        Ok(Response::Return)
    }

    /// Point a subnet's association at another table, or (given the main association) make
    /// another table the VPC's main one. Either way the association gets a new id.
    pub(crate) async fn replace_route_table_association(
        &self,
        account: String,
        association_id: String,
        table_id: String,
    ) -> CoreResult<Response> {
        self.ensure_default_vpc(&account).await?;
        let now = self.clock.now_millis();
        let id = self
            .blocking(move |s| {
                s.write(|tx| {
                    let old = find_association(tx, &account, &association_id)?;
                    let t = find_table(tx, &account, &table_id)?.table;
                    let vpc_of_old = match &old {
                        Assoc::Main { table } => table.vpc_id.clone(),
                        Assoc::Subnet(a) => find_table(tx, &account, &a.route_table_id)?.table.vpc_id,
                    };
                    if vpc_of_old != t.vpc_id {
                        return Err(invalid(format!(
                            "route table {table_id} and association {association_id} belong to different networks"
                        )));
                    }
                    let id = new_association_id(tx, &account, now)?;
                    match old {
                        Assoc::Main { .. } => tx.routing().set_main(&t.vpc_id, &table_id, &id)?,
                        Assoc::Subnet(a) => {
                            tx.routing().delete_association(&a.id)?;
                            tx.routing().insert_association(&AssociationRow {
                                    id: id.clone(),
                                    route_table_id: table_id.clone(),
                                    subnet_id: a.subnet_id,
                                },
                            )?;
                        }
                    }
                    tx.resources().delete(&account, &association_id)?;
                    Ok::<_, CoreError>(id)
                })
            })
            .await?;
        self.notify.notify_one();
        Ok(Response::RouteTableAssociated {
            association_id: id,
            replaced: true,
        })
    }
}

/// A route's destination may not be the VPC's CIDR or inside it (that is the local route's).
fn check_not_local(vpc_cidr: &str, dest: &Ipv4Net) -> CoreResult<()> {
    let Ok(vpc) = vpc_cidr.parse::<Ipv4Net>() else {
        return Ok(());
    };
    if vpc.contains(dest) {
        return Err(invalid(format!(
            "The destination CIDR block {dest} is equal to or more specific than one of this VPC's CIDR blocks. This route can target only an interface or an instance."
        )));
    }
    Ok(())
}

impl Cloud {
    /// Run one internet gateway or route table action for the calling account (the dry-run check is
    /// [`Cloud::dispatch`]'s).
    pub(crate) async fn dispatch_routing(&self, ctx: &Ctx, action: Action) -> CoreResult<Response> {
        let acct = ctx.account_id.clone();
        Ok(match action {
            Action::CreateInternetGateway { tag_specifications } => {
                self.create_internet_gateway(acct, tag_specifications)
                    .await?
            }
            Action::DeleteInternetGateway {
                internet_gateway_id,
            } => {
                self.delete_internet_gateway(acct, internet_gateway_id)
                    .await?
            }
            Action::AttachInternetGateway {
                internet_gateway_id,
                vpc_id,
            } => {
                self.attach_internet_gateway(acct, internet_gateway_id, vpc_id)
                    .await?
            }
            Action::DetachInternetGateway {
                internet_gateway_id,
                vpc_id,
            } => {
                self.detach_internet_gateway(acct, internet_gateway_id, vpc_id)
                    .await?
            }
            Action::DescribeInternetGateways {
                internet_gateway_ids,
                filters,
                page,
            } => {
                self.describe_internet_gateways(acct, internet_gateway_ids, filters, page)
                    .await?
            }
            Action::CreateRouteTable {
                vpc_id,
                client_token,
                tag_specifications,
            } => {
                self.create_route_table(acct, vpc_id, client_token, tag_specifications)
                    .await?
            }
            Action::DeleteRouteTable { route_table_id } => {
                self.delete_route_table(acct, route_table_id).await?
            }
            Action::DescribeRouteTables {
                route_table_ids,
                filters,
                page,
            } => {
                self.describe_route_tables(acct, route_table_ids, filters, page)
                    .await?
            }
            Action::PutRoute {
                replace,
                route_table_id,
                destination_cidr_block,
                gateway_id,
            } => {
                self.put_route(
                    acct,
                    replace,
                    route_table_id,
                    destination_cidr_block,
                    gateway_id,
                )
                .await?
            }
            Action::DeleteRoute {
                route_table_id,
                destination_cidr_block,
            } => {
                self.delete_route(acct, route_table_id, destination_cidr_block)
                    .await?
            }
            Action::AssociateRouteTable {
                route_table_id,
                subnet_id,
            } => {
                self.associate_route_table(acct, route_table_id, subnet_id)
                    .await?
            }
            Action::DisassociateRouteTable { association_id } => {
                self.disassociate_route_table(acct, association_id).await?
            }
            Action::ReplaceRouteTableAssociation {
                association_id,
                route_table_id,
            } => {
                self.replace_route_table_association(acct, association_id, route_table_id)
                    .await?
            }
        })
    }
}
