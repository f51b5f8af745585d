//! Elastic IP addresses: allocations from the public pool, and their association with an
//! instance. The instance's effective public address is `instances.public_ip`; while an
//! Elastic IP is associated, that column holds the Elastic IP's address.

use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::Millis;

aggregate! {
    pub trait Addresses {
        fn insert(&self, a: &AddressRow) -> ();
        fn by_account(&self, account_id: &str) -> Vec<AddressRow>;
        fn of_instance(&self, instance_id: &str) -> Option<AddressRow>;
        /// Point the allocation at an instance (or at nothing). Its metering follows: an associated
        /// address is `in-use`, an unassociated one `idle` (AWS's two usage types).
        fn set_association(&self, allocation_id: &str, instance_id: Option<&str>, association_id: Option<&str>, now: Millis) -> ();
        /// Every public address in use, auto-assigned or allocated (the pool's taken set).
        fn public_ips_in_use(&self) -> std::collections::HashSet<u32>;
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressRow {
    pub allocation_id: String,
    pub account_id: String,
    pub public_ip: String,
    pub instance_id: Option<String>,
    pub association_id: Option<String>,
    pub created_at: Millis,
}

const COLS: &str = "allocation_id, account_id, public_ip, instance_id, association_id, created_at";

fn row(r: &Row) -> rusqlite::Result<AddressRow> {
    Ok(AddressRow {
        allocation_id: r.get(0)?,
        account_id: r.get(1)?,
        public_ip: r.get(2)?,
        instance_id: r.get(3)?,
        association_id: r.get(4)?,
        created_at: r.get(5)?,
    })
}

pub(crate) fn insert(c: &Connection, a: &AddressRow) -> rusqlite::Result<()> {
    c.execute(
        &format!("INSERT INTO addresses ({COLS}) VALUES (?1,?2,?3,?4,?5,?6)"),
        params![
            a.allocation_id,
            a.account_id,
            a.public_ip,
            a.instance_id,
            a.association_id,
            a.created_at
        ],
    )?;
    crate::usage::open(
        c,
        &a.account_id,
        &a.allocation_id,
        crate::usage::ELASTIC_IP,
        if a.instance_id.is_some() {
            "in-use"
        } else {
            "idle"
        },
        1.0,
        a.created_at,
    )?;
    Ok(())
}

pub(crate) fn by_account(c: &Connection, account_id: &str) -> rusqlite::Result<Vec<AddressRow>> {
    let mut st = c.prepare_cached(&format!(
        "SELECT {COLS} FROM addresses WHERE account_id = ?1 ORDER BY allocation_id"
    ))?;
    let rows = st.query_map([account_id], row)?;
    rows.collect()
}

pub(crate) fn of_instance(
    c: &Connection,
    instance_id: &str,
) -> rusqlite::Result<Option<AddressRow>> {
    c.prepare_cached(&format!(
        "SELECT {COLS} FROM addresses WHERE instance_id = ?1"
    ))?
    .query_row([instance_id], row)
    .optional()
}

pub(crate) fn set_association(
    c: &Connection,
    allocation_id: &str,
    instance_id: Option<&str>,
    association_id: Option<&str>,
    now: Millis,
) -> rusqlite::Result<()> {
    let n = c.execute(
        "UPDATE addresses SET instance_id = ?2, association_id = ?3 WHERE allocation_id = ?1",
        params![allocation_id, instance_id, association_id],
    )?;
    if n == 0 {
        return Ok(());
    }
    let detail = if instance_id.is_some() {
        "in-use"
    } else {
        "idle"
    };
    let open = crate::usage::open_interval(c, allocation_id, crate::usage::ELASTIC_IP)?;
    if let Some(o) = open.filter(|o| o.detail != detail) {
        crate::usage::close(c, allocation_id, crate::usage::ELASTIC_IP, now)?;
        crate::usage::open(
            c,
            &o.account_id,
            allocation_id,
            crate::usage::ELASTIC_IP,
            detail,
            1.0,
            now,
        )?;
    }
    Ok(())
}

pub(crate) fn public_ips_in_use(
    c: &Connection,
) -> rusqlite::Result<std::collections::HashSet<u32>> {
    let mut st = c.prepare_cached(
        "SELECT public_ip FROM instances WHERE public_ip IS NOT NULL \
         UNION SELECT public_ip FROM addresses",
    )?;
    let rows = st.query_map([], |r| r.get::<_, String>(0))?;
    Ok(rows
        .filter_map(|r| r.ok())
        .filter_map(|s| s.parse::<std::net::Ipv4Addr>().ok())
        .map(u32::from)
        .collect())
}
