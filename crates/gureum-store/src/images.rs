//! Images (AMIs) and their launch permissions.

use rusqlite::{params, Connection, OptionalExtension, Row};

use gureum_types::{ImageState, VolumeType};

use crate::Millis;

aggregate! {
    pub trait Images {
        /// Insert an image (its registry row must exist). `Ok(false)` if the account already has an
        /// image of that name.
        fn insert(&self, i: &ImageRow) -> bool;
        /// Images `account_id` may see: its own, and public ones and those shared with it unless
        /// they failed; ordered by id.
        ///
        /// A failed image is its owner's business: it cannot be launched, and a failed build of the
        /// built-in image (owned by the system account, public) would otherwise be listed to every
        /// account as a public AMI in state `failed`. Its owner (and the operator's `gureum image
        /// list`, which reads [`all`]) still sees it with its reason.
        fn visible_to(&self, account_id: &str) -> Vec<ImageRow>;
        fn all(&self) -> Vec<ImageRow>;
        fn get(&self, id: &str) -> Option<ImageRow>;
        fn find_by_source(&self, source: &str) -> Option<ImageRow>;
        fn set_state(&self, id: &str, state: ImageState, reason: Option<&str>, rootfs: Option<&str>) -> ();
        fn set_public(&self, id: &str, public: bool) -> ();
        fn set_description(&self, id: &str, d: &str) -> ();
        fn launch_permissions(&self, id: &str) -> Vec<String>;
        fn add_permission(&self, id: &str, account: &str) -> ();
        fn remove_permission(&self, id: &str, account: &str) -> ();
        fn clear_permissions(&self, id: &str) -> ();
        /// Rename the image unless another image has the name. Returns whether it was renamed.
        fn set_name_if_free(&self, id: &str, name: &str) -> bool;
        fn set_login_user(&self, id: &str, user: &str) -> ();
        /// Record one EBS entry of an image's block device mapping.
        fn add_block_device(&self, d: &BlockDeviceRow) -> ();
        /// Every image's recorded block device mappings, by image id then device name.
        fn block_devices(&self) -> Vec<BlockDeviceRow>;
        /// The images (of any account) whose block device mappings name `snapshot_id`.
        fn using_snapshot(&self, snapshot_id: &str) -> Vec<String>;
        /// The image's files (root filesystem `rootfs`, if it had one yet) are to be removed
        /// once nothing uses them.
        fn trash(&self, id: &str, rootfs: Option<&str>) -> ();
        /// The images whose files are to be removed, with their root filesystems.
        fn trashed(&self) -> Vec<(String, Option<String>)>;
        /// The image's files are gone.
        fn empty_trash(&self, id: &str) -> ();
    }
}

/// One EBS entry of an image's block device mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockDeviceRow {
    pub image_id: String,
    pub device_name: String,
    /// The image's root device.
    pub root: bool,
    pub snapshot_id: Option<String>,
    pub volume_size: u32,
    pub volume_type: VolumeType,
    pub delete_on_termination: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRow {
    pub id: String,
    pub account_id: String,
    pub name: String,
    pub description: String,
    pub state: ImageState,
    pub state_reason: Option<String>,
    pub public: bool,
    pub owner_alias: Option<String>,
    pub login_user: String,
    pub root_size_gib: u32,
    /// Host path of the read-only root filesystem, once it exists.
    pub rootfs: Option<String>,
    /// `recipe:debian-12`, `import`, `create-image`, `copy`.
    pub source: String,
    pub source_instance_id: Option<String>,
    pub source_image_id: Option<String>,
    pub created_at: Millis,
}

const COLS: &str = "id, account_id, name, description, state, state_reason, public, owner_alias, \
                    login_user, root_size_gib, rootfs, source, source_instance_id, source_image_id, created_at";

fn row(r: &Row) -> rusqlite::Result<ImageRow> {
    Ok(ImageRow {
        id: r.get(0)?,
        account_id: r.get(1)?,
        name: r.get(2)?,
        description: r.get(3)?,
        state: crate::instances::text_enum(r, 4)?,
        state_reason: r.get(5)?,
        public: r.get(6)?,
        owner_alias: r.get(7)?,
        login_user: r.get(8)?,
        root_size_gib: r.get(9)?,
        rootfs: r.get(10)?,
        source: r.get(11)?,
        source_instance_id: r.get(12)?,
        source_image_id: r.get(13)?,
        created_at: r.get(14)?,
    })
}

pub(crate) fn insert(c: &Connection, i: &ImageRow) -> rusqlite::Result<bool> {
    let res = c.execute(
        &format!("INSERT INTO images ({COLS}) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15)"),
        params![
            i.id,
            i.account_id,
            i.name,
            i.description,
            i.state.as_str(),
            i.state_reason,
            i.public,
            i.owner_alias,
            i.login_user,
            i.root_size_gib,
            i.rootfs,
            i.source,
            i.source_instance_id,
            i.source_image_id,
            i.created_at
        ],
    );
    crate::sqlite::inserted(res)
}

pub(crate) fn visible_to(c: &Connection, account_id: &str) -> rusqlite::Result<Vec<ImageRow>> {
    let mut st = c.prepare_cached(&format!(
        "SELECT {COLS} FROM images i WHERE account_id = ?1 OR (state != 'failed' AND (public = 1 \
         OR EXISTS (SELECT 1 FROM image_launch_permissions p \
                    WHERE p.image_id = i.id AND p.account_id = ?1))) \
         ORDER BY id"
    ))?;
    let rows = st.query_map([account_id], row)?;
    rows.collect()
}

pub(crate) fn all(c: &Connection) -> rusqlite::Result<Vec<ImageRow>> {
    let mut st = c.prepare_cached(&format!("SELECT {COLS} FROM images ORDER BY id"))?;
    let rows = st.query_map([], row)?;
    rows.collect()
}

pub(crate) fn get(c: &Connection, id: &str) -> rusqlite::Result<Option<ImageRow>> {
    c.prepare_cached(&format!("SELECT {COLS} FROM images WHERE id = ?1"))?
        .query_row([id], row)
        .optional()
}

pub(crate) fn find_by_source(c: &Connection, source: &str) -> rusqlite::Result<Option<ImageRow>> {
    c.prepare_cached(&format!(
        "SELECT {COLS} FROM images WHERE source = ?1 ORDER BY created_at DESC LIMIT 1"
    ))?
    .query_row([source], row)
    .optional()
}

pub(crate) fn set_state(
    c: &Connection,
    id: &str,
    state: ImageState,
    reason: Option<&str>,
    rootfs: Option<&str>,
) -> rusqlite::Result<()> {
    c.execute(
        "UPDATE images SET state = ?2, state_reason = ?3, rootfs = COALESCE(?4, rootfs) WHERE id = ?1",
        params![id, state.as_str(), reason, rootfs],
    )?;
    Ok(())
}

pub(crate) fn set_public(c: &Connection, id: &str, public: bool) -> rusqlite::Result<()> {
    c.execute(
        "UPDATE images SET public = ?2 WHERE id = ?1",
        params![id, public],
    )?;
    Ok(())
}

pub(crate) fn set_description(c: &Connection, id: &str, d: &str) -> rusqlite::Result<()> {
    c.execute(
        "UPDATE images SET description = ?2 WHERE id = ?1",
        params![id, d],
    )?;
    Ok(())
}

pub(crate) fn launch_permissions(c: &Connection, id: &str) -> rusqlite::Result<Vec<String>> {
    let mut st = c.prepare_cached(
        "SELECT account_id FROM image_launch_permissions WHERE image_id = ?1 ORDER BY account_id",
    )?;
    let rows = st.query_map([id], |r| r.get(0))?;
    rows.collect()
}

pub(crate) fn add_permission(c: &Connection, id: &str, account: &str) -> rusqlite::Result<()> {
    c.execute(
        "INSERT OR IGNORE INTO image_launch_permissions (image_id, account_id) VALUES (?1, ?2)",
        params![id, account],
    )?;
    Ok(())
}

pub(crate) fn remove_permission(c: &Connection, id: &str, account: &str) -> rusqlite::Result<()> {
    c.execute(
        "DELETE FROM image_launch_permissions WHERE image_id = ?1 AND account_id = ?2",
        params![id, account],
    )?;
    Ok(())
}

pub(crate) fn clear_permissions(c: &Connection, id: &str) -> rusqlite::Result<()> {
    c.execute(
        "DELETE FROM image_launch_permissions WHERE image_id = ?1",
        [id],
    )?;
    Ok(())
}

pub(crate) fn set_name_if_free(c: &Connection, id: &str, name: &str) -> rusqlite::Result<bool> {
    let n = c.execute(
        "UPDATE OR IGNORE images SET name = ?2 WHERE id = ?1",
        params![id, name],
    )?;
    Ok(n > 0)
}

pub(crate) fn set_login_user(c: &Connection, id: &str, user: &str) -> rusqlite::Result<()> {
    c.execute(
        "UPDATE images SET login_user = ?2 WHERE id = ?1",
        params![id, user],
    )?;
    Ok(())
}

pub(crate) fn add_block_device(c: &Connection, d: &BlockDeviceRow) -> rusqlite::Result<()> {
    c.execute(
        "INSERT INTO image_block_devices (image_id, device_name, root, snapshot_id, volume_size, \
         volume_type, delete_on_termination) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            d.image_id,
            d.device_name,
            d.root,
            d.snapshot_id,
            d.volume_size,
            d.volume_type.as_str(),
            d.delete_on_termination
        ],
    )?;
    Ok(())
}

pub(crate) fn block_devices(c: &Connection) -> rusqlite::Result<Vec<BlockDeviceRow>> {
    let mut st = c.prepare_cached(
        "SELECT image_id, device_name, root, snapshot_id, volume_size, volume_type, \
         delete_on_termination FROM image_block_devices ORDER BY image_id, device_name",
    )?;
    let rows = st.query_map([], |r| {
        Ok(BlockDeviceRow {
            image_id: r.get(0)?,
            device_name: r.get(1)?,
            root: r.get(2)?,
            snapshot_id: r.get(3)?,
            volume_size: r.get(4)?,
            volume_type: crate::instances::text_enum(r, 5)?,
            delete_on_termination: r.get(6)?,
        })
    })?;
    rows.collect()
}

pub(crate) fn using_snapshot(c: &Connection, snapshot_id: &str) -> rusqlite::Result<Vec<String>> {
    let mut st = c.prepare_cached(
        "SELECT DISTINCT image_id FROM image_block_devices WHERE snapshot_id = ?1 ORDER BY image_id",
    )?;
    let rows = st.query_map([snapshot_id], |r| r.get(0))?;
    rows.collect()
}

pub(crate) fn trash(c: &Connection, id: &str, rootfs: Option<&str>) -> rusqlite::Result<()> {
    c.execute(
        "INSERT INTO image_trash (id, rootfs) VALUES (?1, ?2) \
         ON CONFLICT (id) DO UPDATE SET rootfs = COALESCE(excluded.rootfs, rootfs)",
        params![id, rootfs],
    )?;
    Ok(())
}

pub(crate) fn trashed(c: &Connection) -> rusqlite::Result<Vec<(String, Option<String>)>> {
    let mut st = c.prepare_cached("SELECT id, rootfs FROM image_trash ORDER BY id")?;
    let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    rows.collect()
}

pub(crate) fn empty_trash(c: &Connection, id: &str) -> rusqlite::Result<()> {
    c.execute("DELETE FROM image_trash WHERE id = ?1", [id])?;
    Ok(())
}
