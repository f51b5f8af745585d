//! VPCs and subnets.

use rusqlite::{params, Connection, Row};

use crate::Millis;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VpcRow {
    pub id: String,
    pub account_id: String,
    pub cidr: String,
    pub is_default: bool,
    pub created_at: Millis,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubnetRow {
    pub id: String,
    pub account_id: String,
    pub vpc_id: String,
    pub cidr: String,
    pub az: String,
    pub az_id: String,
    pub default_for_az: bool,
    pub map_public_ip: bool,
    pub created_at: Millis,
}

pub fn insert_vpc(c: &Connection, v: &VpcRow) -> rusqlite::Result<()> {
    c.execute(
        "INSERT INTO vpcs (id, account_id, cidr, is_default, created_at) VALUES (?1,?2,?3,?4,?5)",
        params![v.id, v.account_id, v.cidr, v.is_default, v.created_at],
    )?;
    Ok(())
}

pub fn insert_subnet(c: &Connection, s: &SubnetRow) -> rusqlite::Result<()> {
    c.execute(
        "INSERT INTO subnets (id, account_id, vpc_id, cidr, az, az_id, default_for_az, map_public_ip, created_at) \
         VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9)",
        params![s.id, s.account_id, s.vpc_id, s.cidr, s.az, s.az_id, s.default_for_az, s.map_public_ip, s.created_at],
    )?;
    Ok(())
}

fn vpc_row(r: &Row) -> rusqlite::Result<VpcRow> {
    Ok(VpcRow {
        id: r.get(0)?,
        account_id: r.get(1)?,
        cidr: r.get(2)?,
        is_default: r.get(3)?,
        created_at: r.get(4)?,
    })
}

fn subnet_row(r: &Row) -> rusqlite::Result<SubnetRow> {
    Ok(SubnetRow {
        id: r.get(0)?,
        account_id: r.get(1)?,
        vpc_id: r.get(2)?,
        cidr: r.get(3)?,
        az: r.get(4)?,
        az_id: r.get(5)?,
        default_for_az: r.get(6)?,
        map_public_ip: r.get(7)?,
        created_at: r.get(8)?,
    })
}

pub fn vpcs(c: &Connection, account_id: &str) -> rusqlite::Result<Vec<VpcRow>> {
    let mut st = c.prepare_cached(
        "SELECT id, account_id, cidr, is_default, created_at FROM vpcs WHERE account_id = ?1 ORDER BY id",
    )?;
    let rows = st.query_map([account_id], vpc_row)?;
    rows.collect()
}

pub fn subnets(c: &Connection, account_id: &str) -> rusqlite::Result<Vec<SubnetRow>> {
    let mut st = c.prepare_cached(
        "SELECT id, account_id, vpc_id, cidr, az, az_id, default_for_az, map_public_ip, created_at \
         FROM subnets WHERE account_id = ?1 ORDER BY id",
    )?;
    let rows = st.query_map([account_id], subnet_row)?;
    rows.collect()
}

pub fn all_subnets(c: &Connection) -> rusqlite::Result<Vec<SubnetRow>> {
    let mut st = c.prepare_cached(
        "SELECT id, account_id, vpc_id, cidr, az, az_id, default_for_az, map_public_ip, created_at \
         FROM subnets ORDER BY id",
    )?;
    let rows = st.query_map([], subnet_row)?;
    rows.collect()
}
