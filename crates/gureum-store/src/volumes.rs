//! EBS volumes and snapshots. A volume's row is the durable record of what the user asked
//! for (its state, its attachment, its last modification); the host agent converges the
//! volume pool and the compute driver to it. Changes the agent records are compare-and-swap
//! on `generation`, as instances' are, so a slow host step never overwrites a newer intent.
//!
//! Metering follows the rows inside the same transaction (see [`crate::usage`]): a volume's
//! `volume` interval (its type in `detail`, GiB in `quantity`) is open from its insert until it
//! enters `deleting`, and is closed and reopened when a modification changes its size or type;
//! provisioned IOPS of `io1`/`io2`/`gp3` have their own `volume-iops` interval and gp3's
//! provisioned throughput its `volume-throughput` one (all of it: what the type includes is
//! billing's business); a snapshot's `snapshot` interval (its volume's GiB) runs from its
//! insert to its deletion.
//!
//! Deleting a snapshot removes its registry row at once (its row, tags and permissions go by
//! cascade) and leaves its id in `ebs_trash` until the agent has removed its bytes.

use rusqlite::{params, Connection, OptionalExtension, Row};

use gureum_types::{
    SnapshotState, VolumeAttachmentState, VolumeModificationState, VolumeState, VolumeType,
};

use crate::instances::text_enum;
use crate::usage::{self, SNAPSHOT, VOLUME, VOLUME_IOPS, VOLUME_THROUGHPUT};
use crate::Millis;

aggregate! {
    /// Volumes, snapshots, snapshot permissions and the trash of deleted snapshots.
    pub trait Volumes {
        /// Record a new volume (its registry row must exist) and open its usage.
        fn insert(&self, v: &VolumeRow) -> ();
        /// The account's volumes, ordered by id.
        fn of_account(&self, account_id: &str) -> Vec<VolumeRow>;
        /// The account's volume `id`, if it has it.
        fn get(&self, account_id: &str, id: &str) -> Option<VolumeRow>;
        /// Every volume of every account (the host agent's view), ordered by id.
        fn all(&self) -> Vec<VolumeRow>;
        /// The volumes attached (in any attachment state) to an instance, ordered by device.
        fn of_instance(&self, instance_id: &str) -> Vec<VolumeRow>;
        /// Compare-and-swap: write `v`'s mutable fields (`root` among them: a root volume kept
        /// past its instance becomes an ordinary volume) only if the row is still at
        /// `v.generation`; bumps the generation and brings the volume's usage in line as of
        /// `now`. Returns whether it changed.
        fn update(&self, v: &VolumeRow, now: Millis) -> bool;
        /// Forget a volume (its registry row, tags and usage end with it). Returns whether it
        /// existed.
        fn remove(&self, account_id: &str, id: &str, now: Millis) -> bool;
        /// Record a new snapshot (its registry row must exist) and open its usage.
        fn insert_snapshot(&self, s: &SnapshotRow) -> ();
        /// The snapshots `account_id` may see: its own, and others' shared with it or with
        /// everyone, ordered by id.
        fn visible_snapshots(&self, account_id: &str) -> Vec<SnapshotRow>;
        /// Snapshot `id` if `account_id` may see it (see [`Volumes::visible_snapshots`]).
        fn visible_snapshot(&self, account_id: &str, id: &str) -> Option<SnapshotRow>;
        /// Every snapshot of every account (the host agent's view), ordered by id.
        fn all_snapshots(&self) -> Vec<SnapshotRow>;
        /// Compare-and-swap on the snapshot's generation (state, progress, message).
        fn update_snapshot(&self, s: &SnapshotRow) -> bool;
        /// Delete the account's snapshot: registry row, tags and permissions go, its id waits
        /// in the trash for the agent. Returns whether it existed.
        fn delete_snapshot(&self, account_id: &str, id: &str, now: Millis) -> bool;
        /// Who may create volumes from the snapshot: account ids, and `all` for everyone.
        fn permissions(&self, snapshot_id: &str) -> Vec<String>;
        /// Grant (`add`) or revoke a permission (`all` for everyone).
        fn set_permission(&self, snapshot_id: &str, who: &str, add: bool) -> ();
        /// Revoke every permission of the snapshot.
        fn reset_permissions(&self, snapshot_id: &str) -> ();
        /// Ids of deleted snapshots whose bytes may still be on the host.
        fn trash(&self) -> Vec<String>;
        /// The agent removed the bytes of a trashed snapshot.
        fn empty_trash(&self, id: &str) -> ();
        /// Every volume's and snapshot's version (all accounts), for the console's live
        /// updates.
        fn versions(&self) -> Vec<EbsVersion>;
    }
}

/// Which EBS record an [`EbsVersion`] is of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EbsKind {
    Volume,
    Snapshot,
}

/// A volume's or snapshot's version: its generation moves with every recorded change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EbsVersion {
    pub kind: EbsKind,
    pub account_id: String,
    pub id: String,
    pub generation: i64,
}

/// A volume as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeRow {
    pub id: String,
    pub account_id: String,
    pub az: String,
    pub size_gib: u32,
    pub volume_type: VolumeType,
    pub iops: Option<u32>,
    pub throughput: Option<u32>,
    pub snapshot_id: Option<String>,
    pub encrypted: bool,
    pub auto_enable_io: bool,
    pub state: VolumeState,
    pub generation: i64,
    pub created_at: Millis,
    /// An instance's root volume: its bytes are the compute driver's, not the pool's.
    pub root: bool,
    pub attachment: Option<AttachmentRow>,
    /// The last `ModifyVolume`, if any.
    pub modification: Option<ModificationRow>,
}

/// A volume's attachment to an instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachmentRow {
    pub instance_id: String,
    pub device: String,
    pub state: VolumeAttachmentState,
    pub attach_time: Millis,
    pub delete_on_termination: bool,
    /// A forced detach was asked for.
    pub force: bool,
}

/// A volume's last modification: its state and what the volume was before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModificationRow {
    pub state: VolumeModificationState,
    pub original_size: u32,
    pub original_type: VolumeType,
    pub original_iops: Option<u32>,
    pub original_throughput: Option<u32>,
    pub start_time: Millis,
    pub end_time: Option<Millis>,
}

/// A snapshot as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotRow {
    pub id: String,
    pub account_id: String,
    pub volume_id: String,
    pub volume_size: u32,
    pub description: String,
    pub state: SnapshotState,
    pub state_message: Option<String>,
    pub progress: u32,
    pub encrypted: bool,
    pub generation: i64,
    pub created_at: Millis,
    /// `CopySnapshot`: the snapshot whose bytes this one copies (else the volume's).
    pub source_snapshot_id: Option<String>,
}

const COLS: &str = "id, account_id, az, size_gib, volume_type, iops, throughput, snapshot_id, \
    encrypted, auto_enable_io, state, generation, created_at, root, instance_id, device, \
    attach_state, attach_time, delete_on_termination, force_detach, mod_state, mod_original_size, \
    mod_original_type, mod_original_iops, mod_original_throughput, mod_start, mod_end";

fn row(r: &Row) -> rusqlite::Result<VolumeRow> {
    let instance_id: Option<String> = r.get(14)?;
    let attachment = match instance_id {
        None => None,
        Some(instance_id) => Some(AttachmentRow {
            instance_id,
            device: r.get(15)?,
            state: text_enum(r, 16)?,
            attach_time: r.get(17)?,
            delete_on_termination: r.get(18)?,
            force: r.get(19)?,
        }),
    };
    let mod_state: Option<String> = r.get(20)?;
    let modification = match mod_state {
        None => None,
        Some(_) => Some(ModificationRow {
            state: text_enum(r, 20)?,
            original_size: r.get(21)?,
            original_type: text_enum(r, 22)?,
            original_iops: r.get(23)?,
            original_throughput: r.get(24)?,
            start_time: r.get(25)?,
            end_time: r.get(26)?,
        }),
    };
    Ok(VolumeRow {
        id: r.get(0)?,
        account_id: r.get(1)?,
        az: r.get(2)?,
        size_gib: r.get(3)?,
        volume_type: text_enum(r, 4)?,
        iops: r.get(5)?,
        throughput: r.get(6)?,
        snapshot_id: r.get(7)?,
        encrypted: r.get(8)?,
        auto_enable_io: r.get(9)?,
        state: text_enum(r, 10)?,
        generation: r.get(11)?,
        created_at: r.get(12)?,
        root: r.get(13)?,
        attachment,
        modification,
    })
}

pub(crate) fn insert(c: &Connection, v: &VolumeRow) -> rusqlite::Result<()> {
    let a = v.attachment.as_ref();
    let m = v.modification.as_ref();
    let placeholders: Vec<String> = (1..=27).map(|n| format!("?{n}")).collect();
    c.execute(
        &format!(
            "INSERT INTO volumes ({COLS}) VALUES ({})",
            placeholders.join(",")
        ),
        params![
            v.id,
            v.account_id,
            v.az,
            v.size_gib,
            v.volume_type.as_str(),
            v.iops,
            v.throughput,
            v.snapshot_id,
            v.encrypted,
            v.auto_enable_io,
            v.state.as_str(),
            v.generation,
            v.created_at,
            v.root,
            a.map(|a| &a.instance_id),
            a.map(|a| &a.device),
            a.map(|a| a.state.as_str()),
            a.map(|a| a.attach_time),
            a.is_some_and(|a| a.delete_on_termination),
            a.is_some_and(|a| a.force),
            m.map(|m| m.state.as_str()),
            m.map(|m| m.original_size),
            m.map(|m| m.original_type.as_str()),
            m.and_then(|m| m.original_iops),
            m.and_then(|m| m.original_throughput),
            m.map(|m| m.start_time),
            m.and_then(|m| m.end_time),
        ],
    )?;
    meter(c, v, v.created_at)
}

/// Make the volume's open usage match the row: closed once it is `deleting` (or gone), and
/// reopened at `now` when its type, size, IOPS or throughput changed.
fn meter(c: &Connection, v: &VolumeRow, now: Millis) -> rusqlite::Result<()> {
    let billed = !matches!(v.state, VolumeState::Deleting | VolumeState::Deleted);
    let t = v.volume_type;
    let want_volume = billed.then(|| (t.as_str(), v.size_gib as f64));
    // gp2's IOPS come from its size; only the chosen ones are metered.
    let want_iops = billed
        .then_some(v.iops)
        .flatten()
        .filter(|_| matches!(t, VolumeType::Io1 | VolumeType::Io2 | VolumeType::Gp3))
        .map(|iops| (t.as_str(), iops as f64));
    let want_throughput = billed
        .then_some(v.throughput)
        .flatten()
        .filter(|_| t == VolumeType::Gp3)
        .map(|mibps| (t.as_str(), mibps as f64));
    for (kind, want) in [
        (VOLUME, want_volume),
        (VOLUME_IOPS, want_iops),
        (VOLUME_THROUGHPUT, want_throughput),
    ] {
        let open = usage::open_interval(c, &v.id, kind)?;
        let same = match (&open, want) {
            (Some(o), Some((detail, q))) => o.detail == detail && o.quantity == q,
            (None, None) => true,
            _ => false,
        };
        if same {
            continue;
        }
        usage::close(c, &v.id, kind, now)?;
        if let Some((detail, quantity)) = want {
            usage::open(c, &v.account_id, &v.id, kind, detail, quantity, now)?;
        }
    }
    Ok(())
}

pub(crate) fn of_account(c: &Connection, account_id: &str) -> rusqlite::Result<Vec<VolumeRow>> {
    let mut st = c.prepare_cached(&format!(
        "SELECT {COLS} FROM volumes WHERE account_id = ?1 ORDER BY id"
    ))?;
    let rows = st.query_map([account_id], row)?;
    rows.collect()
}

pub(crate) fn get(
    c: &Connection,
    account_id: &str,
    id: &str,
) -> rusqlite::Result<Option<VolumeRow>> {
    c.prepare_cached(&format!(
        "SELECT {COLS} FROM volumes WHERE account_id = ?1 AND id = ?2"
    ))?
    .query_row([account_id, id], row)
    .optional()
}

pub(crate) fn all(c: &Connection) -> rusqlite::Result<Vec<VolumeRow>> {
    let mut st = c.prepare_cached(&format!("SELECT {COLS} FROM volumes ORDER BY id"))?;
    let rows = st.query_map([], row)?;
    rows.collect()
}

pub(crate) fn of_instance(c: &Connection, instance_id: &str) -> rusqlite::Result<Vec<VolumeRow>> {
    let mut st = c.prepare_cached(&format!(
        "SELECT {COLS} FROM volumes WHERE instance_id = ?1 ORDER BY device"
    ))?;
    let rows = st.query_map([instance_id], row)?;
    rows.collect()
}

pub(crate) fn update(c: &Connection, v: &VolumeRow, now: Millis) -> rusqlite::Result<bool> {
    let a = v.attachment.as_ref();
    let m = v.modification.as_ref();
    let n = c.execute(
        "UPDATE volumes SET size_gib = ?3, volume_type = ?4, iops = ?5, throughput = ?6, \
         auto_enable_io = ?7, state = ?8, instance_id = ?9, device = ?10, attach_state = ?11, \
         attach_time = ?12, delete_on_termination = ?13, force_detach = ?14, mod_state = ?15, \
         mod_original_size = ?16, mod_original_type = ?17, mod_original_iops = ?18, \
         mod_original_throughput = ?19, mod_start = ?20, mod_end = ?21, root = ?22, \
         generation = generation + 1 WHERE id = ?1 AND generation = ?2",
        params![
            v.id,
            v.generation,
            v.size_gib,
            v.volume_type.as_str(),
            v.iops,
            v.throughput,
            v.auto_enable_io,
            v.state.as_str(),
            a.map(|a| &a.instance_id),
            a.map(|a| &a.device),
            a.map(|a| a.state.as_str()),
            a.map(|a| a.attach_time),
            a.is_some_and(|a| a.delete_on_termination),
            a.is_some_and(|a| a.force),
            m.map(|m| m.state.as_str()),
            m.map(|m| m.original_size),
            m.map(|m| m.original_type.as_str()),
            m.and_then(|m| m.original_iops),
            m.and_then(|m| m.original_throughput),
            m.map(|m| m.start_time),
            m.and_then(|m| m.end_time),
            v.root,
        ],
    )?;
    if n == 1 {
        meter(c, v, now)?;
    }
    Ok(n == 1)
}

pub(crate) fn remove(
    c: &Connection,
    account_id: &str,
    id: &str,
    now: Millis,
) -> rusqlite::Result<bool> {
    for kind in [VOLUME, VOLUME_IOPS, VOLUME_THROUGHPUT] {
        usage::close(c, id, kind, now)?;
    }
    crate::resources::delete(c, account_id, id)
}

const SNAP_COLS: &str = "s.id, s.account_id, s.volume_id, s.volume_size, s.description, s.state, \
    s.state_message, s.progress, s.encrypted, s.generation, s.created_at, s.source_snapshot_id";

fn snap_row(r: &Row) -> rusqlite::Result<SnapshotRow> {
    Ok(SnapshotRow {
        id: r.get(0)?,
        account_id: r.get(1)?,
        volume_id: r.get(2)?,
        volume_size: r.get(3)?,
        description: r.get(4)?,
        state: text_enum(r, 5)?,
        state_message: r.get(6)?,
        progress: r.get(7)?,
        encrypted: r.get(8)?,
        generation: r.get(9)?,
        created_at: r.get(10)?,
        source_snapshot_id: r.get(11)?,
    })
}

pub(crate) fn insert_snapshot(c: &Connection, s: &SnapshotRow) -> rusqlite::Result<()> {
    c.execute(
        "INSERT INTO snapshots (id, account_id, volume_id, volume_size, description, state, \
         state_message, progress, encrypted, generation, created_at, source_snapshot_id) \
         VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12)",
        params![
            s.id,
            s.account_id,
            s.volume_id,
            s.volume_size,
            s.description,
            s.state.as_str(),
            s.state_message,
            s.progress,
            s.encrypted,
            s.generation,
            s.created_at,
            s.source_snapshot_id
        ],
    )?;
    usage::open(
        c,
        &s.account_id,
        &s.id,
        SNAPSHOT,
        "standard",
        s.volume_size as f64,
        s.created_at,
    )
}

/// Own snapshots, and those shared with the account or with everyone.
const VISIBLE: &str = "s.account_id = ?1 OR EXISTS (SELECT 1 FROM snapshot_permissions p \
    WHERE p.snapshot_id = s.id AND p.who IN (?1, 'all'))";

pub(crate) fn visible_snapshots(
    c: &Connection,
    account_id: &str,
) -> rusqlite::Result<Vec<SnapshotRow>> {
    let mut st = c.prepare_cached(&format!(
        "SELECT {SNAP_COLS} FROM snapshots s WHERE {VISIBLE} ORDER BY s.id"
    ))?;
    let rows = st.query_map([account_id], snap_row)?;
    rows.collect()
}

pub(crate) fn visible_snapshot(
    c: &Connection,
    account_id: &str,
    id: &str,
) -> rusqlite::Result<Option<SnapshotRow>> {
    c.prepare_cached(&format!(
        "SELECT {SNAP_COLS} FROM snapshots s WHERE s.id = ?2 AND ({VISIBLE})"
    ))?
    .query_row([account_id, id], snap_row)
    .optional()
}

pub(crate) fn all_snapshots(c: &Connection) -> rusqlite::Result<Vec<SnapshotRow>> {
    let mut st = c.prepare_cached(&format!(
        "SELECT {SNAP_COLS} FROM snapshots s ORDER BY s.id"
    ))?;
    let rows = st.query_map([], snap_row)?;
    rows.collect()
}

pub(crate) fn update_snapshot(c: &Connection, s: &SnapshotRow) -> rusqlite::Result<bool> {
    Ok(c.execute(
        "UPDATE snapshots SET state = ?3, state_message = ?4, progress = ?5, description = ?6, \
         generation = generation + 1 WHERE id = ?1 AND generation = ?2",
        params![
            s.id,
            s.generation,
            s.state.as_str(),
            s.state_message,
            s.progress,
            s.description
        ],
    )? == 1)
}

pub(crate) fn delete_snapshot(
    c: &Connection,
    account_id: &str,
    id: &str,
    now: Millis,
) -> rusqlite::Result<bool> {
    let owned: bool = c
        .prepare_cached("SELECT 1 FROM snapshots WHERE id = ?1 AND account_id = ?2")?
        .query_row([id, account_id], |_| Ok(()))
        .optional()?
        .is_some();
    if !owned {
        return Ok(false);
    }
    c.execute("INSERT OR IGNORE INTO ebs_trash (id) VALUES (?1)", [id])?;
    usage::close(c, id, SNAPSHOT, now)?;
    crate::resources::delete(c, account_id, id)
}

pub(crate) fn permissions(c: &Connection, snapshot_id: &str) -> rusqlite::Result<Vec<String>> {
    let mut st = c.prepare_cached(
        "SELECT who FROM snapshot_permissions WHERE snapshot_id = ?1 ORDER BY who",
    )?;
    let rows = st.query_map([snapshot_id], |r| r.get(0))?;
    rows.collect()
}

pub(crate) fn set_permission(
    c: &Connection,
    snapshot_id: &str,
    who: &str,
    add: bool,
) -> rusqlite::Result<()> {
    if add {
        c.execute(
            "INSERT OR IGNORE INTO snapshot_permissions (snapshot_id, who) VALUES (?1, ?2)",
            [snapshot_id, who],
        )?;
    } else {
        c.execute(
            "DELETE FROM snapshot_permissions WHERE snapshot_id = ?1 AND who = ?2",
            [snapshot_id, who],
        )?;
    }
    Ok(())
}

pub(crate) fn reset_permissions(c: &Connection, snapshot_id: &str) -> rusqlite::Result<()> {
    c.execute(
        "DELETE FROM snapshot_permissions WHERE snapshot_id = ?1",
        [snapshot_id],
    )?;
    Ok(())
}

pub(crate) fn trash(c: &Connection) -> rusqlite::Result<Vec<String>> {
    let mut st = c.prepare_cached("SELECT id FROM ebs_trash ORDER BY id")?;
    let rows = st.query_map([], |r| r.get(0))?;
    rows.collect()
}

pub(crate) fn empty_trash(c: &Connection, id: &str) -> rusqlite::Result<()> {
    c.execute("DELETE FROM ebs_trash WHERE id = ?1", [id])?;
    Ok(())
}

pub(crate) fn versions(c: &Connection) -> rusqlite::Result<Vec<EbsVersion>> {
    let mut st = c.prepare_cached(
        "SELECT 0, account_id, id, generation FROM volumes \
         UNION ALL SELECT 1, account_id, id, generation FROM snapshots",
    )?;
    let rows = st.query_map([], |r| {
        Ok(EbsVersion {
            kind: if r.get::<_, i64>(0)? == 0 {
                EbsKind::Volume
            } else {
                EbsKind::Snapshot
            },
            account_id: r.get(1)?,
            id: r.get(2)?,
            generation: r.get(3)?,
        })
    })?;
    rows.collect()
}
