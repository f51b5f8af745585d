//! The resource registry: one row per resource of any kind, with its owner. Kind tables
//! reference it, so deleting a registry row deletes the resource's row and its tags.

use rusqlite::{params, Connection, OptionalExtension};

use crate::Millis;

pub fn insert(
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

/// The kind of `id` if it exists and belongs to `account_id`; `None` otherwise, including
/// when another account owns it.
pub fn kind_of(c: &Connection, account_id: &str, id: &str) -> rusqlite::Result<Option<String>> {
    c.prepare_cached("SELECT kind FROM resources WHERE id = ?1 AND account_id = ?2")?
        .query_row(params![id, account_id], |r| r.get(0))
        .optional()
}

/// Delete a resource (and, by cascade, its kind row and tags). Returns whether it existed.
pub fn delete(c: &Connection, account_id: &str, id: &str) -> rusqlite::Result<bool> {
    Ok(c.execute(
        "DELETE FROM resources WHERE id = ?1 AND account_id = ?2",
        params![id, account_id],
    )? > 0)
}
