//! The resource registry: one row per resource of any kind, with its owner. Kind tables
//! reference it, so deleting a registry row deletes the resource's row and its tags.

use rusqlite::{params, Connection, OptionalExtension};

use crate::Millis;

aggregate! {
    pub trait Resources {
        fn insert(&self, id: &str, account_id: &str, kind: &str, now: Millis) -> ();
        /// The kind of `id` if it exists and belongs to `account_id`; `None` otherwise, including
        /// when another account owns it.
        fn kind_of(&self, account_id: &str, id: &str) -> Option<String>;
        /// Delete a resource (and, by cascade, its kind row and tags). Returns whether it existed.
        fn delete(&self, account_id: &str, id: &str) -> bool;
    }
}

pub(crate) fn insert(
    c: &Connection,
    id: &str,
    account_id: &str,
    kind: &str,
    now: Millis,
) -> rusqlite::Result<()> {
    c.execute(
        "INSERT INTO resources (id, account_id, kind, created_at) VALUES (?1, ?2, ?3, ?4)",
        params![id, account_id, kind, now],
    )?;
    Ok(())
}

pub(crate) fn kind_of(
    c: &Connection,
    account_id: &str,
    id: &str,
) -> rusqlite::Result<Option<String>> {
    c.prepare_cached("SELECT kind FROM resources WHERE id = ?1 AND account_id = ?2")?
        .query_row(params![id, account_id], |r| r.get(0))
        .optional()
}

pub(crate) fn delete(c: &Connection, account_id: &str, id: &str) -> rusqlite::Result<bool> {
    Ok(c.execute(
        "DELETE FROM resources WHERE id = ?1 AND account_id = ?2",
        params![id, account_id],
    )? > 0)
}
