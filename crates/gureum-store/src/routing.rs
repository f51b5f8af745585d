//! Internet gateways, route tables, their routes and subnet associations (migration 4).
//!
//! A subnet uses the route table explicitly associated with it, else its VPC's main table.
//! A route table's local route (the VPC's CIDR) is implied, never stored.

use std::collections::HashSet;

use rusqlite::{params, Connection, OptionalExtension};

use crate::Millis;

aggregate! {
    pub trait Routing {
        fn insert_internet_gateway(&self, g: &InternetGatewayRow) -> ();
        fn insert_route_table(&self, t: &RouteTableRow) -> ();
        fn insert_route(&self, r: &RouteRow) -> ();
        /// The main route table of a VPC.
        fn main_route_table(&self, vpc_id: &str) -> Option<String>;
        /// Every subnet (of every account) whose route table sends `0.0.0.0/0` to an internet gateway
        /// attached to the subnet's VPC: the subnets whose public addresses work.
        fn internet_routed_subnets(&self) -> HashSet<String>;
        /// The account's internet gateways, by id.
        fn internet_gateways(&self, account_id: &str) -> Vec<InternetGatewayRow>;
        /// The internet gateway attached to a VPC, if any.
        fn gateway_of_vpc(&self, vpc_id: &str) -> Option<String>;
        /// Attach (`Some`) or detach (`None`) a gateway.
        fn set_gateway_vpc(&self, igw_id: &str, vpc_id: Option<&str>) -> ();
        /// The account's route tables, by id.
        fn route_tables(&self, account_id: &str) -> Vec<RouteTableView>;
        /// Make `table_id` its VPC's main table, with a fresh main association id (the previous main
        /// table of the VPC, if any, stops being main).
        fn set_main(&self, vpc_id: &str, table_id: &str, association_id: &str) -> ();
        /// The non-local routes of the account's route tables.
        fn routes(&self, account_id: &str) -> Vec<RouteRow>;
        /// Point an existing route at another gateway. Returns whether the route existed.
        fn replace_route(&self, r: &RouteRow) -> bool;
        /// Returns whether the route existed.
        fn delete_route(&self, table_id: &str, destination: &str) -> bool;
        /// The explicit subnet associations of the account's route tables.
        fn associations(&self, account_id: &str) -> Vec<AssociationRow>;
        fn insert_association(&self, a: &AssociationRow) -> ();
        fn delete_association(&self, id: &str) -> bool;
        /// How many public addresses are mapped to live instances of a VPC: auto-assigned ones and
        /// associated Elastic IPs (AWS refuses to detach the VPC's gateway while there are any).
        fn mapped_public_addresses_in_vpc(&self, vpc_id: &str) -> i64;
    }
}

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

pub(crate) fn insert_internet_gateway(
    c: &Connection,
    g: &InternetGatewayRow,
) -> rusqlite::Result<()> {
    c.execute(
        "INSERT INTO internet_gateways (id, account_id, vpc_id, created_at) VALUES (?1,?2,?3,?4)",
        params![g.id, g.account_id, g.vpc_id, g.created_at],
    )?;
    Ok(())
}

pub(crate) fn insert_route_table(c: &Connection, t: &RouteTableRow) -> rusqlite::Result<()> {
    c.execute(
        "INSERT INTO route_tables (id, account_id, vpc_id, is_main, created_at) VALUES (?1,?2,?3,?4,?5)",
        params![t.id, t.account_id, t.vpc_id, t.is_main, t.created_at],
    )?;
    Ok(())
}

pub(crate) fn insert_route(c: &Connection, r: &RouteRow) -> rusqlite::Result<()> {
    c.execute(
        "INSERT INTO routes (route_table_id, destination, gateway_id) VALUES (?1,?2,?3)",
        params![r.route_table_id, r.destination, r.gateway_id],
    )?;
    Ok(())
}

pub(crate) fn main_route_table(c: &Connection, vpc_id: &str) -> rusqlite::Result<Option<String>> {
    c.prepare_cached("SELECT id FROM route_tables WHERE vpc_id = ?1 AND is_main")?
        .query_row([vpc_id], |r| r.get(0))
        .optional()
}

pub(crate) fn internet_routed_subnets(c: &Connection) -> rusqlite::Result<HashSet<String>> {
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

fn igw_row(r: &rusqlite::Row) -> rusqlite::Result<InternetGatewayRow> {
    Ok(InternetGatewayRow {
        id: r.get(0)?,
        account_id: r.get(1)?,
        vpc_id: r.get(2)?,
        created_at: r.get(3)?,
    })
}

pub(crate) fn internet_gateways(
    c: &Connection,
    account_id: &str,
) -> rusqlite::Result<Vec<InternetGatewayRow>> {
    let mut st = c.prepare_cached(
        "SELECT id, account_id, vpc_id, created_at FROM internet_gateways \
         WHERE account_id = ?1 ORDER BY id",
    )?;
    let rows = st.query_map([account_id], igw_row)?;
    rows.collect()
}

pub(crate) fn gateway_of_vpc(c: &Connection, vpc_id: &str) -> rusqlite::Result<Option<String>> {
    c.prepare_cached("SELECT id FROM internet_gateways WHERE vpc_id = ?1")?
        .query_row([vpc_id], |r| r.get(0))
        .optional()
}

pub(crate) fn set_gateway_vpc(
    c: &Connection,
    igw_id: &str,
    vpc_id: Option<&str>,
) -> rusqlite::Result<()> {
    c.execute(
        "UPDATE internet_gateways SET vpc_id = ?2 WHERE id = ?1",
        params![igw_id, vpc_id],
    )?;
    Ok(())
}

/// A route table with its main association's id (set on the VPC's main table only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteTableView {
    pub table: RouteTableRow,
    pub main_association_id: Option<String>,
}

pub(crate) fn route_tables(
    c: &Connection,
    account_id: &str,
) -> rusqlite::Result<Vec<RouteTableView>> {
    let mut st = c.prepare_cached(
        "SELECT id, account_id, vpc_id, is_main, created_at, main_association_id \
         FROM route_tables WHERE account_id = ?1 ORDER BY id",
    )?;
    let rows = st.query_map([account_id], |r| {
        Ok(RouteTableView {
            table: RouteTableRow {
                id: r.get(0)?,
                account_id: r.get(1)?,
                vpc_id: r.get(2)?,
                is_main: r.get(3)?,
                created_at: r.get(4)?,
            },
            main_association_id: r.get(5)?,
        })
    })?;
    rows.collect()
}

pub(crate) fn set_main(
    c: &Connection,
    vpc_id: &str,
    table_id: &str,
    association_id: &str,
) -> rusqlite::Result<()> {
    c.execute(
        "UPDATE route_tables SET is_main = 0, main_association_id = NULL WHERE vpc_id = ?1 AND is_main",
        [vpc_id],
    )?;
    c.execute(
        "UPDATE route_tables SET is_main = 1, main_association_id = ?2 WHERE id = ?1",
        params![table_id, association_id],
    )?;
    Ok(())
}

pub(crate) fn routes(c: &Connection, account_id: &str) -> rusqlite::Result<Vec<RouteRow>> {
    let mut st = c.prepare_cached(
        "SELECT r.route_table_id, r.destination, r.gateway_id FROM routes r \
         JOIN route_tables t ON t.id = r.route_table_id WHERE t.account_id = ?1 \
         ORDER BY r.route_table_id, r.destination",
    )?;
    let rows = st.query_map([account_id], |r| {
        Ok(RouteRow {
            route_table_id: r.get(0)?,
            destination: r.get(1)?,
            gateway_id: r.get(2)?,
        })
    })?;
    rows.collect()
}

pub(crate) fn replace_route(c: &Connection, r: &RouteRow) -> rusqlite::Result<bool> {
    Ok(c.execute(
        "UPDATE routes SET gateway_id = ?3 WHERE route_table_id = ?1 AND destination = ?2",
        params![r.route_table_id, r.destination, r.gateway_id],
    )? > 0)
}

pub(crate) fn delete_route(
    c: &Connection,
    table_id: &str,
    destination: &str,
) -> rusqlite::Result<bool> {
    Ok(c.execute(
        "DELETE FROM routes WHERE route_table_id = ?1 AND destination = ?2",
        params![table_id, destination],
    )? > 0)
}

pub(crate) fn associations(
    c: &Connection,
    account_id: &str,
) -> rusqlite::Result<Vec<AssociationRow>> {
    let mut st = c.prepare_cached(
        "SELECT a.id, a.route_table_id, a.subnet_id FROM route_table_associations a \
         JOIN route_tables t ON t.id = a.route_table_id WHERE t.account_id = ?1 ORDER BY a.id",
    )?;
    let rows = st.query_map([account_id], |r| {
        Ok(AssociationRow {
            id: r.get(0)?,
            route_table_id: r.get(1)?,
            subnet_id: r.get(2)?,
        })
    })?;
    rows.collect()
}

pub(crate) fn insert_association(c: &Connection, a: &AssociationRow) -> rusqlite::Result<()> {
    c.execute(
        "INSERT INTO route_table_associations (id, route_table_id, subnet_id) VALUES (?1,?2,?3)",
        params![a.id, a.route_table_id, a.subnet_id],
    )?;
    Ok(())
}

pub(crate) fn delete_association(c: &Connection, id: &str) -> rusqlite::Result<bool> {
    Ok(c.execute("DELETE FROM route_table_associations WHERE id = ?1", [id])? > 0)
}

pub(crate) fn mapped_public_addresses_in_vpc(
    c: &Connection,
    vpc_id: &str,
) -> rusqlite::Result<i64> {
    c.prepare_cached(
        "SELECT (SELECT count(*) FROM instances WHERE vpc_id = ?1 AND state != 'terminated' \
                 AND public_ip IS NOT NULL) \
              + (SELECT count(*) FROM addresses a JOIN instances i ON i.id = a.instance_id \
                 WHERE i.vpc_id = ?1 AND i.state != 'terminated')",
    )?
    .query_row([vpc_id], |r| r.get(0))
}
