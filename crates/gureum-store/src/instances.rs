//! Instances. The row is the durable record of what the user asked for; the host agent
//! converges the host to it. State changes are compare-and-swap on `generation`, so a host
//! operation that finishes after the user changed their mind cannot overwrite the newer state.

use rusqlite::{params, Connection, OptionalExtension, Row};

use gureum_types::{
    HttpEndpoint, HttpTokens, Hypervisor, InstanceState, ShutdownBehavior, StateReason,
};

use crate::Millis;

aggregate! {
    pub trait Instances {
        fn insert(&self, i: &InstanceRow) -> ();
        /// The account's instances, ordered by id.
        fn of_account(&self, account_id: &str) -> Vec<InstanceRow>;
        /// Every instance of every account (the host agent's view).
        fn all(&self) -> Vec<InstanceRow>;
        fn get(&self, id: &str) -> Option<InstanceRow>;
        fn by_client_token(&self, account_id: &str, token: &str) -> Vec<InstanceRow>;
        /// Private addresses of every instance still on record, terminated ones included (they stay
        /// listed for an hour): new launches avoid them, so an address is not handed out again while
        /// the host's neighbour and connection-tracking tables may still remember its previous owner.
        fn ips_recently_used(&self) -> Vec<String>;
        /// Private addresses in use by live instances.
        fn ips_in_use(&self) -> Vec<String>;
        /// Compare-and-swap the state: only if the row is still at `generation`. Returns whether it
        /// changed. Bumps the generation.
        #[allow(clippy::too_many_arguments)]
        fn transition(&self, id: &str, generation: i64, state: InstanceState, transition_reason: Option<&str>, reason: Option<&StateReason>, ended_at: Option<Millis>, now: Millis) -> bool;
        /// Forget terminated instances that ended before `cutoff` (their registry rows, tags and
        /// volumes' rows go with them).
        fn purge_terminated(&self, cutoff: Millis) -> Vec<String>;
        /// The live (not terminated) instance with this private address, if any.
        fn by_private_ip(&self, ip: &str) -> Option<InstanceRow>;
        /// Give the instance the public address it should have while it runs: its Elastic IP's if
        /// one is associated, else (when it takes one) the lowest free address of `pool` (as `u32`
        /// bounds, inclusive), else none. Returns the address it has now.
        fn assign_public_ip(&self, id: &str, pool: (u32, u32), now: Millis) -> Option<String>;
        /// Release the instance's auto-assigned public address (an associated Elastic IP stays).
        fn release_public_ip(&self, id: &str, now: Millis) -> ();
        /// Set the instance's public address (an Elastic IP being associated).
        fn set_public_ip(&self, id: &str, ip: &str, now: Millis) -> ();
        /// Clear the instance's public address if it is `ip` (an Elastic IP leaving it).
        fn clear_public_ip_if(&self, id: &str, ip: &str, now: Millis) -> ();
        /// The instance's metadata service options.
        fn set_metadata_options(&self, id: &str, http_tokens: HttpTokens, http_endpoint: HttpEndpoint, hop_limit: u32) -> ();
        /// (VPC id, VPC CIDR, is default) of every VPC with a live (not terminated) instance, any
        /// account.
        fn live_vpc_cidrs(&self) -> Vec<(String, String, bool)>;
        /// (instance id, availability zone) of the account's instances, without the rest of the row.
        fn zones_of_account(&self, account_id: &str) -> std::collections::HashMap<String, String>;
        /// Change one attribute without a state change (bumps the generation so the agent
        /// notices).
        fn set_field(&self, id: &str, field: InstanceField<'_>) -> ();
        /// Every instance's version (all accounts), for the console's live updates.
        fn versions(&self) -> Vec<InstanceVersion>;
        /// The login user of the account's instance, if the account has that instance.
        fn login_user(&self, account_id: &str, id: &str) -> Option<String>;
    }
}

/// A column that holds an enumeration's text (the `hypervisor` column's `container` or `vm`,
/// the `state` column's `running`, …: the text every data dir has stored). Text that names
/// no value is an error, never a guess.
pub(crate) fn text_enum<T>(r: &Row, idx: usize) -> rusqlite::Result<T>
where
    T: std::str::FromStr,
    T::Err: std::error::Error + Send + Sync + 'static,
{
    let text: String = r.get(idx)?;
    parse_column(idx, &text)
}

fn parse_column<T>(idx: usize, text: &str) -> rusqlite::Result<T>
where
    T: std::str::FromStr,
    T::Err: std::error::Error + Send + Sync + 'static,
{
    text.parse().map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Text, Box::new(e))
    })
}

/// The `reason_code` and `reason_message` columns: a state reason, or none.
fn state_reason(r: &Row, idx: usize) -> rusqlite::Result<Option<StateReason>> {
    let code: Option<String> = r.get(idx)?;
    let Some(code) = code else {
        return Ok(None);
    };
    let message: Option<String> = r.get(idx + 1)?;
    Ok(Some(StateReason {
        code: parse_column(idx, &code)?,
        message: message.unwrap_or_default(),
    }))
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InstanceRow {
    pub id: String,
    pub account_id: String,
    pub reservation_id: String,
    pub image_id: String,
    /// The image's root filesystem, fixed at launch (the image may be deregistered later).
    pub rootfs: String,
    pub instance_type: String,
    pub key_name: Option<String>,
    pub public_key: Option<String>,
    pub login_user: String,
    pub state: InstanceState,
    pub generation: i64,
    /// When the current state began.
    pub state_since: Millis,
    pub transition_reason: String,
    /// The `reason_code` and `reason_message` columns.
    pub state_reason: Option<StateReason>,
    pub launch_time: Millis,
    pub launch_index: u32,
    pub subnet_id: String,
    pub vpc_id: String,
    pub az: String,
    pub private_ip: String,
    pub mac: String,
    pub eni_id: String,
    pub root_volume_id: String,
    pub root_volume_gib: u32,
    pub delete_on_termination: bool,
    pub shutdown_behavior: ShutdownBehavior,
    pub disable_api_termination: bool,
    pub user_data: Option<Vec<u8>>,
    pub client_token: Option<String>,
    pub request_hash: Option<String>,
    pub hypervisor: Hypervisor,
    pub md_http_tokens: HttpTokens,
    pub md_http_endpoint: HttpEndpoint,
    pub md_hop_limit: u32,
    pub reboot_requested: bool,
    pub force_stop: bool,
    pub first_boot_done: bool,
    pub ended_at: Option<Millis>,
    /// The public IPv4 address, while the instance has one: an associated Elastic IP's, else
    /// an auto-assigned one.
    pub public_ip: Option<String>,
    /// Whether the instance gets an auto-assigned public address when it runs.
    pub auto_public_ip: bool,
}

const COLS: &str = "id, account_id, reservation_id, image_id, rootfs, instance_type, key_name, public_key, \
    login_user, state, generation, state_since, transition_reason, reason_code, reason_message, launch_time, \
    launch_index, subnet_id, vpc_id, az, private_ip, mac, eni_id, root_volume_id, root_volume_gib, \
    delete_on_termination, shutdown_behavior, disable_api_termination, user_data, client_token, \
    request_hash, hypervisor, md_http_tokens, md_http_endpoint, md_hop_limit, reboot_requested, \
    force_stop, first_boot_done, ended_at, public_ip, auto_public_ip";

fn row(r: &Row) -> rusqlite::Result<InstanceRow> {
    Ok(InstanceRow {
        id: r.get(0)?,
        account_id: r.get(1)?,
        reservation_id: r.get(2)?,
        image_id: r.get(3)?,
        rootfs: r.get(4)?,
        instance_type: r.get(5)?,
        key_name: r.get(6)?,
        public_key: r.get(7)?,
        login_user: r.get(8)?,
        state: text_enum(r, 9)?,
        generation: r.get(10)?,
        state_since: r.get(11)?,
        transition_reason: r.get(12)?,
        state_reason: state_reason(r, 13)?,
        launch_time: r.get(15)?,
        launch_index: r.get(16)?,
        subnet_id: r.get(17)?,
        vpc_id: r.get(18)?,
        az: r.get(19)?,
        private_ip: r.get(20)?,
        mac: r.get(21)?,
        eni_id: r.get(22)?,
        root_volume_id: r.get(23)?,
        root_volume_gib: r.get(24)?,
        delete_on_termination: r.get(25)?,
        shutdown_behavior: text_enum(r, 26)?,
        disable_api_termination: r.get(27)?,
        user_data: r.get(28)?,
        client_token: r.get(29)?,
        request_hash: r.get(30)?,
        hypervisor: text_enum(r, 31)?,
        md_http_tokens: text_enum(r, 32)?,
        md_http_endpoint: text_enum(r, 33)?,
        md_hop_limit: r.get(34)?,
        reboot_requested: r.get(35)?,
        force_stop: r.get(36)?,
        first_boot_done: r.get(37)?,
        ended_at: r.get(38)?,
        public_ip: r.get(39)?,
        auto_public_ip: r.get(40)?,
    })
}

pub(crate) fn insert(c: &Connection, i: &InstanceRow) -> rusqlite::Result<()> {
    let placeholders: Vec<String> = (1..=41).map(|n| format!("?{n}")).collect();
    c.execute(
        &format!(
            "INSERT INTO instances ({COLS}) VALUES ({})",
            placeholders.join(",")
        ),
        params![
            i.id,
            i.account_id,
            i.reservation_id,
            i.image_id,
            i.rootfs,
            i.instance_type,
            i.key_name,
            i.public_key,
            i.login_user,
            i.state.as_str(),
            i.generation,
            i.state_since,
            i.transition_reason,
            i.state_reason.as_ref().map(|r| r.code.as_str()),
            i.state_reason.as_ref().map(|r| r.message.as_str()),
            i.launch_time,
            i.launch_index,
            i.subnet_id,
            i.vpc_id,
            i.az,
            i.private_ip,
            i.mac,
            i.eni_id,
            i.root_volume_id,
            i.root_volume_gib,
            i.delete_on_termination,
            i.shutdown_behavior.as_str(),
            i.disable_api_termination,
            i.user_data,
            i.client_token,
            i.request_hash,
            i.hypervisor.as_str(),
            i.md_http_tokens.as_str(),
            i.md_http_endpoint.as_str(),
            i.md_hop_limit,
            i.reboot_requested,
            i.force_stop,
            i.first_boot_done,
            i.ended_at,
            i.public_ip,
            i.auto_public_ip
        ],
    )?;
    // The root volume is metered as the volume it is (its `volume` interval, opened by its
    // record in the same transaction); `storage` intervals are only closed now, for instances
    // launched before root volumes were records.
    Ok(())
}

pub(crate) fn of_account(c: &Connection, account_id: &str) -> rusqlite::Result<Vec<InstanceRow>> {
    let mut st = c.prepare_cached(&format!(
        "SELECT {COLS} FROM instances WHERE account_id = ?1 ORDER BY id"
    ))?;
    let rows = st.query_map([account_id], row)?;
    rows.collect()
}

pub(crate) fn all(c: &Connection) -> rusqlite::Result<Vec<InstanceRow>> {
    let mut st = c.prepare_cached(&format!("SELECT {COLS} FROM instances ORDER BY id"))?;
    let rows = st.query_map([], row)?;
    rows.collect()
}

pub(crate) fn get(c: &Connection, id: &str) -> rusqlite::Result<Option<InstanceRow>> {
    c.prepare_cached(&format!("SELECT {COLS} FROM instances WHERE id = ?1"))?
        .query_row([id], row)
        .optional()
}

pub(crate) fn by_client_token(
    c: &Connection,
    account_id: &str,
    token: &str,
) -> rusqlite::Result<Vec<InstanceRow>> {
    let mut st = c.prepare_cached(&format!(
        "SELECT {COLS} FROM instances WHERE account_id = ?1 AND client_token = ?2 ORDER BY launch_index"
    ))?;
    let rows = st.query_map(params![account_id, token], row)?;
    rows.collect()
}

pub(crate) fn ips_recently_used(c: &Connection) -> rusqlite::Result<Vec<String>> {
    let mut st = c.prepare_cached("SELECT private_ip FROM instances")?;
    let rows = st.query_map([], |r| r.get(0))?;
    rows.collect()
}

pub(crate) fn ips_in_use(c: &Connection) -> rusqlite::Result<Vec<String>> {
    let mut st =
        c.prepare_cached("SELECT private_ip FROM instances WHERE state != 'terminated'")?;
    let rows = st.query_map([], |r| r.get(0))?;
    rows.collect()
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn transition(
    c: &Connection,
    id: &str,
    generation: i64,
    state: InstanceState,
    transition_reason: Option<&str>,
    reason: Option<&StateReason>,
    ended_at: Option<Millis>,
    now: Millis,
) -> rusqlite::Result<bool> {
    let n = c.execute(
        "UPDATE instances SET state = ?3, generation = generation + 1, state_since = ?8, \
         transition_reason = COALESCE(?4, transition_reason), \
         reason_code = ?5, reason_message = ?6, ended_at = COALESCE(?7, ended_at), \
         reboot_requested = CASE WHEN ?3 IN ('running','pending') THEN reboot_requested ELSE 0 END, \
         force_stop = CASE WHEN ?3 = 'stopping' THEN force_stop ELSE 0 END \
         WHERE id = ?1 AND generation = ?2",
        params![
            id,
            generation,
            state.as_str(),
            transition_reason,
            reason.map(|r| r.code.as_str()),
            reason.map(|r| r.message.as_str()),
            ended_at,
            now
        ],
    )?;
    if n == 1 {
        meter_transition(c, id, state, now)?;
    }
    Ok(n == 1)
}

/// The usage a state change opens or closes (see [`crate::usage`]).
fn meter_transition(
    c: &Connection,
    id: &str,
    state: InstanceState,
    now: Millis,
) -> rusqlite::Result<()> {
    use crate::usage::{self, COMPUTE, PUBLIC_IPV4, STORAGE};
    if state == InstanceState::Running {
        let row: Option<(String, String)> = c
            .prepare_cached("SELECT account_id, instance_type FROM instances WHERE id = ?1")?
            .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        if let Some((account, instance_type)) = row {
            usage::open(c, &account, id, COMPUTE, &instance_type, 1.0, now)?;
        }
    } else {
        usage::close(c, id, COMPUTE, now)?;
    }
    if state == InstanceState::Terminated {
        usage::close(c, id, STORAGE, now)?;
        usage::close(c, id, PUBLIC_IPV4, now)?;
    }
    Ok(())
}

/// An attribute [`Instances::set_field`] changes on its own, outside a state change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstanceField<'a> {
    InstanceType(&'a str),
    UserData(Option<&'a [u8]>),
    DisableApiTermination(bool),
    ShutdownBehavior(ShutdownBehavior),
    RebootRequested(bool),
    ForceStop(bool),
    /// The root volume's `DeleteOnTermination` (its volume record holds it too).
    DeleteOnTermination(bool),
}

pub(crate) fn set_field(
    c: &Connection,
    id: &str,
    field: InstanceField<'_>,
) -> rusqlite::Result<()> {
    match field {
        InstanceField::InstanceType(v) => set_column(c, id, "instance_type", &v),
        InstanceField::UserData(v) => set_column(c, id, "user_data", &v),
        InstanceField::DisableApiTermination(v) => set_column(c, id, "disable_api_termination", &v),
        InstanceField::ShutdownBehavior(v) => set_column(c, id, "shutdown_behavior", &v.as_str()),
        InstanceField::RebootRequested(v) => set_column(c, id, "reboot_requested", &v),
        InstanceField::ForceStop(v) => set_column(c, id, "force_stop", &v),
        InstanceField::DeleteOnTermination(v) => set_column(c, id, "delete_on_termination", &v),
    }
}

/// One instance's version: it changes whenever anything the instances page shows of it
/// changes state (the generation moves on every compare-and-swap).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceVersion {
    pub account_id: String,
    pub id: String,
    pub state: InstanceState,
    pub generation: i64,
    pub public_ip: Option<String>,
}

pub(crate) fn versions(c: &Connection) -> rusqlite::Result<Vec<InstanceVersion>> {
    let mut st =
        c.prepare_cached("SELECT account_id, id, state, generation, public_ip FROM instances")?;
    let rows = st.query_map([], |r| {
        Ok(InstanceVersion {
            account_id: r.get(0)?,
            id: r.get(1)?,
            state: text_enum(r, 2)?,
            generation: r.get(3)?,
            public_ip: r.get(4)?,
        })
    })?;
    rows.collect()
}

pub(crate) fn login_user(
    c: &Connection,
    account_id: &str,
    id: &str,
) -> rusqlite::Result<Option<String>> {
    c.prepare_cached("SELECT login_user FROM instances WHERE account_id = ?1 AND id = ?2")?
        .query_row([account_id, id], |r| r.get(0))
        .optional()
}

/// Set a flag or attribute column without a state change (bumps the generation so the agent
/// notices). `column` is one of a fixed set chosen by the caller, never user input.
fn set_column(
    c: &Connection,
    id: &str,
    column: &'static str,
    value: &dyn rusqlite::ToSql,
) -> rusqlite::Result<()> {
    c.execute(
        &format!("UPDATE instances SET {column} = ?2, generation = generation + 1 WHERE id = ?1"),
        params![id, value],
    )?;
    Ok(())
}

pub(crate) fn purge_terminated(c: &Connection, cutoff: Millis) -> rusqlite::Result<Vec<String>> {
    let ids: Vec<String> = {
        let mut st = c.prepare_cached(
            "SELECT id FROM instances WHERE state = 'terminated' AND ended_at < ?1",
        )?;
        let rows = st.query_map([cutoff], |r| r.get(0))?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    for id in &ids {
        if let Some(i) = get(c, id)? {
            c.execute("DELETE FROM resources WHERE id = ?1", [&i.eni_id])?;
            // A root volume kept past its instance (`DeleteOnTermination` false) is a volume
            // of its own now; one still recorded goes when its record does.
            c.execute(
                "DELETE FROM resources WHERE id = ?1 \
                 AND NOT EXISTS (SELECT 1 FROM volumes WHERE id = ?1)",
                [&i.root_volume_id],
            )?;
        }
        c.execute("DELETE FROM resources WHERE id = ?1", [id])?;
    }
    Ok(ids)
}

pub(crate) fn by_private_ip(c: &Connection, ip: &str) -> rusqlite::Result<Option<InstanceRow>> {
    c.prepare_cached(&format!(
        "SELECT {COLS} FROM instances WHERE private_ip = ?1 AND state != 'terminated'"
    ))?
    .query_row([ip], row)
    .optional()
}

pub(crate) fn assign_public_ip(
    c: &Connection,
    id: &str,
    pool: (u32, u32),
    now: Millis,
) -> rusqlite::Result<Option<String>> {
    let Some(inst) = get(c, id)? else {
        return Ok(None);
    };
    let wanted = match crate::addresses::of_instance(c, id)? {
        Some(eip) => Some(eip.public_ip),
        None if inst.public_ip.is_some() => return Ok(inst.public_ip),
        None if !inst.auto_public_ip => None,
        None => {
            let used = crate::addresses::public_ips_in_use(c)?;
            (pool.0..=pool.1)
                .find(|n| !used.contains(n))
                .map(|n| std::net::Ipv4Addr::from(n).to_string())
        }
    };
    if wanted != inst.public_ip {
        c.execute(
            "UPDATE instances SET public_ip = ?2 WHERE id = ?1",
            params![id, wanted],
        )?;
        crate::usage::sync_public_ip(c, id, now)?;
    }
    Ok(wanted)
}

pub(crate) fn release_public_ip(c: &Connection, id: &str, now: Millis) -> rusqlite::Result<()> {
    c.execute(
        "UPDATE instances SET public_ip = NULL WHERE id = ?1 \
         AND NOT EXISTS (SELECT 1 FROM addresses a WHERE a.instance_id = ?1)",
        [id],
    )?;
    crate::usage::sync_public_ip(c, id, now)
}

pub(crate) fn set_public_ip(
    c: &Connection,
    id: &str,
    ip: &str,
    now: Millis,
) -> rusqlite::Result<()> {
    c.execute(
        "UPDATE instances SET public_ip = ?2 WHERE id = ?1",
        params![id, ip],
    )?;
    crate::usage::sync_public_ip(c, id, now)
}

pub(crate) fn clear_public_ip_if(
    c: &Connection,
    id: &str,
    ip: &str,
    now: Millis,
) -> rusqlite::Result<()> {
    c.execute(
        "UPDATE instances SET public_ip = NULL WHERE id = ?1 AND public_ip = ?2",
        params![id, ip],
    )?;
    crate::usage::sync_public_ip(c, id, now)
}

pub(crate) fn set_metadata_options(
    c: &Connection,
    id: &str,
    http_tokens: HttpTokens,
    http_endpoint: HttpEndpoint,
    hop_limit: u32,
) -> rusqlite::Result<()> {
    c.execute(
        "UPDATE instances SET md_http_tokens = ?2, md_http_endpoint = ?3, md_hop_limit = ?4 \
         WHERE id = ?1",
        params![id, http_tokens.as_str(), http_endpoint.as_str(), hop_limit],
    )?;
    Ok(())
}

pub(crate) fn live_vpc_cidrs(c: &Connection) -> rusqlite::Result<Vec<(String, String, bool)>> {
    let mut st = c.prepare_cached(
        "SELECT DISTINCT v.id, v.cidr, v.is_default FROM vpcs v JOIN instances i ON i.vpc_id = v.id \
         WHERE i.state != 'terminated'",
    )?;
    let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    rows.collect()
}

pub(crate) fn zones_of_account(
    c: &Connection,
    account_id: &str,
) -> rusqlite::Result<std::collections::HashMap<String, String>> {
    let mut st = c.prepare_cached("SELECT id, az FROM instances WHERE account_id = ?1")?;
    let rows = st.query_map([account_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
    rows.collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StoreError;

    /// The column keeps the text older data dirs hold (`container`, `vm`), and a row with any
    /// other text is an error rather than a container.
    #[test]
    fn hypervisor_column_keeps_its_text() {
        let (_dir, store) = crate::sqlite::test_store();
        store
            .sql_write(|tx| {
                crate::accounts::insert(tx, "123456789012", "a", 0)?;
                for (id, ip, h) in [
                    ("i-1", "10.0.0.4", Hypervisor::Container),
                    ("i-2", "10.0.0.5", Hypervisor::Vm),
                ] {
                    crate::resources::insert(tx, id, "123456789012", "instance", 0)?;
                    insert(
                        tx,
                        &InstanceRow {
                            id: id.into(),
                            account_id: "123456789012".into(),
                            private_ip: ip.into(),
                            hypervisor: h,
                            ..Default::default()
                        },
                    )?;
                }
                Ok::<_, StoreError>(())
            })
            .unwrap();
        let read = |sql: &str| {
            store
                .sql_read(|c| {
                    let text: Vec<String> = c
                        .prepare(sql)?
                        .query_map([], |r| r.get(0))?
                        .collect::<Result<_, _>>()?;
                    Ok::<_, StoreError>(text)
                })
                .unwrap()
        };
        assert_eq!(
            read("SELECT hypervisor FROM instances ORDER BY id"),
            ["container", "vm"]
        );
        let rows = store.sql_read(|c| Ok::<_, StoreError>(all(c)?)).unwrap();
        let got: Vec<_> = rows.iter().map(|r| r.hypervisor).collect();
        assert_eq!(got, [Hypervisor::Container, Hypervisor::Vm]);
        store
            .sql_write(|tx| {
                tx.execute(
                    "UPDATE instances SET hypervisor = 'xen' WHERE id = 'i-2'",
                    [],
                )?;
                Ok::<_, StoreError>(())
            })
            .unwrap();
        assert!(store
            .sql_read(|c| Ok::<_, StoreError>(get(c, "i-2")?))
            .is_err());
    }

    /// The state, state reason, shutdown behaviour and metadata option columns keep the text
    /// AWS names them by (what older data dirs hold), and read back as the same values; text
    /// that names no value is an error rather than a guess.
    #[test]
    fn enum_columns_keep_their_text() {
        let (_dir, store) = crate::sqlite::test_store();
        store
            .sql_write(|tx| {
                crate::accounts::insert(tx, "123456789012", "a", 0)?;
                crate::resources::insert(tx, "i-1", "123456789012", "instance", 0)?;
                insert(
                    tx,
                    &InstanceRow {
                        id: "i-1".into(),
                        account_id: "123456789012".into(),
                        private_ip: "10.0.0.4".into(),
                        shutdown_behavior: ShutdownBehavior::Terminate,
                        md_http_tokens: HttpTokens::Required,
                        md_http_endpoint: HttpEndpoint::Disabled,
                        ..Default::default()
                    },
                )?;
                transition(
                    tx,
                    "i-1",
                    0,
                    InstanceState::ShuttingDown,
                    None,
                    Some(&StateReason::user_initiated_shutdown()),
                    None,
                    1,
                )?;
                Ok::<_, StoreError>(())
            })
            .unwrap();
        let text = |sql: &str| {
            store
                .sql_read(|c| {
                    let row: Vec<String> = c.query_row(sql, [], |r| {
                        (0..r.as_ref().column_count())
                            .map(|i| r.get(i))
                            .collect::<Result<_, _>>()
                    })?;
                    Ok::<_, StoreError>(row)
                })
                .unwrap()
        };
        assert_eq!(
            text(
                "SELECT state, reason_code, reason_message, shutdown_behavior, md_http_tokens, \
                 md_http_endpoint FROM instances"
            ),
            [
                "shutting-down",
                "Client.UserInitiatedShutdown",
                "Client.UserInitiatedShutdown: User initiated shutdown",
                "terminate",
                "required",
                "disabled"
            ]
        );
        let got = store
            .sql_read(|c| Ok::<_, StoreError>(get(c, "i-1")?))
            .unwrap()
            .unwrap();
        assert_eq!(got.state, InstanceState::ShuttingDown);
        assert_eq!(
            got.state_reason,
            Some(StateReason::user_initiated_shutdown())
        );
        assert_eq!(
            (
                got.shutdown_behavior,
                got.md_http_tokens,
                got.md_http_endpoint
            ),
            (
                ShutdownBehavior::Terminate,
                HttpTokens::Required,
                HttpEndpoint::Disabled
            )
        );
        for bad in [
            "UPDATE instances SET state = 'paused'",
            "UPDATE instances SET state = 'shutting-down', reason_code = 'Client.Whim'",
            "UPDATE instances SET reason_code = NULL, shutdown_behavior = 'Stop'",
            "UPDATE instances SET shutdown_behavior = 'stop', md_http_tokens = 'maybe'",
        ] {
            store
                .sql_write(|tx| {
                    tx.execute(bad, [])?;
                    Ok::<_, StoreError>(())
                })
                .unwrap();
            assert!(
                store
                    .sql_read(|c| Ok::<_, StoreError>(get(c, "i-1")?))
                    .is_err(),
                "{bad}"
            );
        }
    }
}
