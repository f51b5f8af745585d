//! Metering: billable intervals, opened and closed by the store functions that make the state
//! changes causing them, inside the caller's transaction, so a crash can neither lose nor
//! duplicate one. At most one interval of a kind is open per resource (a unique index), so
//! opening twice is harmless.
//!
//! | kind          | opened                                  | closed                          |
//! |---------------|-----------------------------------------|---------------------------------|
//! | `compute`     | the instance enters `running`           | it leaves `running`             |
//! | `storage`     | the instance is launched (root volume)  | it is `terminated`              |
//! | `public-ipv4` | an auto-assigned public address is set  | it is released or replaced      |
//! | `elastic-ip`  | `AllocateAddress`, (dis)association     | (dis)association, `ReleaseAddress` |
//! | `volume`      | `CreateVolume`, a modification          | a modification, `DeleteVolume`  |
//! | `volume-iops` | the same, for `io1`/`io2`/`gp3` IOPS    | the same                        |
//! | `volume-throughput` | the same, for `gp3` throughput    | the same                        |
//! | `snapshot`    | `CreateSnapshot`, `CopySnapshot`        | `DeleteSnapshot`                |
//!
//! An Elastic IP's interval says `in-use` (associated) or `idle` in `detail`; each change of
//! association closes one and opens the next.

use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::Millis;

aggregate! {
    pub trait Usage {
        /// Open an interval unless one of this kind is already open for the resource.
        fn open(&self, account_id: &str, resource_id: &str, kind: &str, detail: &str, quantity: f64, now: Millis) -> ();
        /// Close the resource's open interval of this kind, if any.
        fn close(&self, resource_id: &str, kind: &str, now: Millis) -> ();
        /// The open interval of this kind for the resource.
        fn open_interval(&self, resource_id: &str, kind: &str) -> Option<UsageRow>;
        /// Every interval overlapping `[from, to)`, of one account or of all, by start time.
        fn overlapping(&self, account_id: Option<&str>, from: Millis, to: Millis) -> Vec<UsageRow>;
        /// Make the instance's `public-ipv4` interval match its record: open (for its address) while it
        /// has a public address that is not an Elastic IP (those are metered as `elastic-ip`), closed
        /// otherwise.
        fn sync_public_ip(&self, instance_id: &str, now: Millis) -> ();
        /// The account's intervals that are open or ended at or after `since` (the ones that can still
        /// change, or changed recently), by start time.
        fn recent(&self, account_id: &str, since: Millis) -> Vec<UsageRow>;
    }
}

pub const COMPUTE: &str = "compute";
pub const STORAGE: &str = "storage";
pub const PUBLIC_IPV4: &str = "public-ipv4";
pub const ELASTIC_IP: &str = "elastic-ip";
/// An EBS volume: `detail` its type, `quantity` its GiB.
pub const VOLUME: &str = "volume";
/// Provisioned IOPS of an `io1`/`io2`/`gp3` volume: `detail` its type, `quantity` the IOPS
/// (all of them; gp3 rows before EBS billing existed are absent until the next change).
pub const VOLUME_IOPS: &str = "volume-iops";
/// Provisioned throughput of a `gp3` volume: `detail` its type, `quantity` the MiB/s.
pub const VOLUME_THROUGHPUT: &str = "volume-throughput";
/// An EBS snapshot: `quantity` its volume's GiB.
pub const SNAPSHOT: &str = "snapshot";

#[derive(Debug, Clone, PartialEq)]
pub struct UsageRow {
    pub id: i64,
    pub account_id: String,
    pub resource_id: String,
    pub kind: String,
    pub detail: String,
    pub quantity: f64,
    pub start_ms: Millis,
    pub end_ms: Option<Millis>,
}

fn row(r: &Row) -> rusqlite::Result<UsageRow> {
    Ok(UsageRow {
        id: r.get(0)?,
        account_id: r.get(1)?,
        resource_id: r.get(2)?,
        kind: r.get(3)?,
        detail: r.get(4)?,
        quantity: r.get(5)?,
        start_ms: r.get(6)?,
        end_ms: r.get(7)?,
    })
}

pub(crate) fn open(
    c: &Connection,
    account_id: &str,
    resource_id: &str,
    kind: &str,
    detail: &str,
    quantity: f64,
    now: Millis,
) -> rusqlite::Result<()> {
    c.prepare_cached(
        "INSERT OR IGNORE INTO usage (account_id, resource_id, kind, detail, quantity, start_ms) \
         VALUES (?1,?2,?3,?4,?5,?6)",
    )?
    .execute(params![
        account_id,
        resource_id,
        kind,
        detail,
        quantity,
        now
    ])?;
    Ok(())
}

pub(crate) fn close(
    c: &Connection,
    resource_id: &str,
    kind: &str,
    now: Millis,
) -> rusqlite::Result<()> {
    c.prepare_cached(
        "UPDATE usage SET end_ms = MAX(?3, start_ms) WHERE resource_id = ?1 AND kind = ?2 AND end_ms IS NULL",
    )?
    .execute(params![resource_id, kind, now])?;
    Ok(())
}

pub(crate) fn open_interval(
    c: &Connection,
    resource_id: &str,
    kind: &str,
) -> rusqlite::Result<Option<UsageRow>> {
    c.prepare_cached(
        "SELECT id, account_id, resource_id, kind, detail, quantity, start_ms, end_ms FROM usage \
         WHERE resource_id = ?1 AND kind = ?2 AND end_ms IS NULL",
    )?
    .query_row(params![resource_id, kind], row)
    .optional()
}

pub(crate) fn overlapping(
    c: &Connection,
    account_id: Option<&str>,
    from: Millis,
    to: Millis,
) -> rusqlite::Result<Vec<UsageRow>> {
    const COLS: &str = "id, account_id, resource_id, kind, detail, quantity, start_ms, end_ms";
    // Two statements rather than `?1 IS NULL OR …`, which would keep SQLite from using the
    // account index.
    let rows = match account_id {
        Some(a) => {
            let mut st = c.prepare_cached(&format!(
                "SELECT {COLS} FROM usage WHERE account_id = ?1 AND start_ms < ?3 \
                 AND (end_ms IS NULL OR end_ms > ?2) ORDER BY start_ms"
            ))?;
            let rows = st.query_map(params![a, from, to], row)?;
            rows.collect()
        }
        None => {
            let mut st = c.prepare_cached(&format!(
                "SELECT {COLS} FROM usage WHERE start_ms < ?2 AND (end_ms IS NULL OR end_ms > ?1) \
                 ORDER BY account_id, start_ms"
            ))?;
            let rows = st.query_map(params![from, to], row)?;
            rows.collect()
        }
    };
    rows
}

pub(crate) fn sync_public_ip(
    c: &Connection,
    instance_id: &str,
    now: Millis,
) -> rusqlite::Result<()> {
    let current: Option<(String, Option<String>)> = c
        .prepare_cached("SELECT account_id, public_ip FROM instances WHERE id = ?1")?
        .query_row([instance_id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let Some((account, ip)) = current else {
        return Ok(());
    };
    let eip = crate::addresses::of_instance(c, instance_id)?.map(|a| a.public_ip);
    let billable = ip.filter(|ip| Some(ip) != eip.as_ref());
    let open = open_interval(c, instance_id, PUBLIC_IPV4)?;
    if open.as_ref().map(|o| &o.detail) == billable.as_ref() {
        return Ok(());
    }
    close(c, instance_id, PUBLIC_IPV4, now)?;
    if let Some(ip) = billable {
        self::open(c, &account, instance_id, PUBLIC_IPV4, &ip, 1.0, now)?;
    }
    Ok(())
}

pub(crate) fn recent(
    c: &Connection,
    account_id: &str,
    since: Millis,
) -> rusqlite::Result<Vec<UsageRow>> {
    let mut st = c.prepare_cached(
        "SELECT id, account_id, resource_id, kind, detail, quantity, start_ms, end_ms FROM usage \
         WHERE account_id = ?1 AND (end_ms IS NULL OR end_ms >= ?2) ORDER BY start_ms",
    )?;
    let rows = st.query_map(params![account_id, since], row)?;
    rows.collect()
}
