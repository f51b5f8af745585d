//! Internet gateways, route tables, their routes and subnet associations (migration 4).
//!
//! A subnet uses the route table explicitly associated with it, else its VPC's main table.
//! A route table's local route (the VPC's CIDR) is implied, never stored.

use std::collections::HashSet;

use rusqlite::{params, Connection, OptionalExtension};

use crate::Millis;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InternetGatewayRow {
    pub id: String,
    pub account_id: String,
    pub vpc_id: Option<String>,
    pub created_at: Millis,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteTableRow {
    pub id: String,
    pub account_id: String,
    pub vpc_id: String,
    pub is_main: bool,
    pub created_at: Millis,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteRow {
    pub route_table_id: String,
    pub destination: String,
    pub gateway_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssociationRow {
    pub id: String,
    pub route_table_id: String,
    pub subnet_id: String,
}

pub fn insert_internet_gateway(c: &Connection, g: &InternetGatewayRow) -> rusqlite::Result<()> {
    c.execute(
        "INSERT INTO internet_gateways (id, account_id, vpc_id, created_at) VALUES (?1,?2,?3,?4)",
        params![g.id, g.account_id, g.vpc_id, g.created_at],
    )?;
    Ok(())
}

pub fn insert_route_table(c: &Connection, t: &RouteTableRow) -> rusqlite::Result<()> {
    c.execute(
        "INSERT INTO route_tables (id, account_id, vpc_id, is_main, created_at) VALUES (?1,?2,?3,?4,?5)",
        params![t.id, t.account_id, t.vpc_id, t.is_main, t.created_at],
    )?;
    Ok(())
}

pub fn insert_route(c: &Connection, r: &RouteRow) -> rusqlite::Result<()> {
    c.execute(
        "INSERT INTO routes (route_table_id, destination, gateway_id) VALUES (?1,?2,?3)",
        params![r.route_table_id, r.destination, r.gateway_id],
    )?;
    Ok(())
}

/// The main route table of a VPC.
pub fn main_route_table(c: &Connection, vpc_id: &str) -> rusqlite::Result<Option<String>> {
    c.prepare_cached("SELECT id FROM route_tables WHERE vpc_id = ?1 AND is_main")?
        .query_row([vpc_id], |r| r.get(0))
        .optional()
}

/// Every subnet (of every account) whose route table sends `0.0.0.0/0` to an internet gateway
/// attached to the subnet's VPC: the subnets whose public addresses work.
pub fn internet_routed_subnets(c: &Connection) -> rusqlite::Result<HashSet<String>> {
    let mut st = c.prepare_cached(
        "SELECT s.id FROM subnets s \
         JOIN route_tables t ON t.id = COALESCE( \
             (SELECT a.route_table_id FROM route_table_associations a WHERE a.subnet_id = s.id), \
             (SELECT m.id FROM route_tables m WHERE m.vpc_id = s.vpc_id AND m.is_main)) \
         JOIN routes r ON r.route_table_id = t.id AND r.destination = '0.0.0.0/0' \
         JOIN internet_gateways g ON g.id = r.gateway_id AND g.vpc_id = s.vpc_id",
    )?;
    let rows = st.query_map([], |r| r.get::<_, String>(0))?;
    rows.collect()
}
