//! Tags of every resource kind, in one table keyed by resource id and tag key.

use std::collections::HashMap;

use gureum_types::model::Tag;
use rusqlite::{params, Connection};

aggregate! {
    pub trait Tags {
        /// Create or overwrite tags on a resource.
        fn put(&self, account_id: &str, resource_id: &str, tags: &[Tag]) -> ();
        /// Delete a tag by key, and only if its value matches when `value` is given.
        fn delete(&self, account_id: &str, resource_id: &str, key: &str, value: Option<&str>) -> ();
        /// Delete every tag of a resource.
        fn delete_all(&self, account_id: &str, resource_id: &str) -> ();
        /// The keys a resource has now.
        fn keys_of(&self, account_id: &str, resource_id: &str) -> Vec<String>;
        /// Every tag of the account, grouped by resource id, each group sorted by key.
        fn all_by_resource(&self, account_id: &str) -> HashMap<String, Vec<Tag>>;
        /// A row of `DescribeTags` before filtering: (resource id, resource kind, key, value),
        /// ordered by resource id then key.
        fn describe(&self, account_id: &str) -> Vec<(String, String, String, String)>;
    }
}

pub(crate) fn put(
    c: &Connection,
    account_id: &str,
    resource_id: &str,
    tags: &[Tag],
) -> rusqlite::Result<()> {
    let mut st = c.prepare_cached(
        "INSERT INTO tags (resource_id, account_id, key, value) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT (resource_id, key) DO UPDATE SET value = excluded.value",
    )?;
    for t in tags {
        st.execute(params![resource_id, account_id, t.key, t.value])?;
    }
    Ok(())
}

pub(crate) fn delete(
    c: &Connection,
    account_id: &str,
    resource_id: &str,
    key: &str,
    value: Option<&str>,
) -> rusqlite::Result<()> {
    match value {
        None => c.execute(
            "DELETE FROM tags WHERE resource_id = ?1 AND account_id = ?2 AND key = ?3",
            params![resource_id, account_id, key],
        )?,
        Some(v) => c.execute(
            "DELETE FROM tags WHERE resource_id = ?1 AND account_id = ?2 AND key = ?3 AND value = ?4",
            params![resource_id, account_id, key, v],
        )?,
    };
    Ok(())
}

pub(crate) fn delete_all(
    c: &Connection,
    account_id: &str,
    resource_id: &str,
) -> rusqlite::Result<()> {
    c.execute(
        "DELETE FROM tags WHERE resource_id = ?1 AND account_id = ?2",
        params![resource_id, account_id],
    )?;
    Ok(())
}

pub(crate) fn keys_of(
    c: &Connection,
    account_id: &str,
    resource_id: &str,
) -> rusqlite::Result<Vec<String>> {
    let mut st =
        c.prepare_cached("SELECT key FROM tags WHERE resource_id = ?1 AND account_id = ?2")?;
    let rows = st.query_map(params![resource_id, account_id], |r| r.get(0))?;
    rows.collect()
}

pub(crate) fn all_by_resource(
    c: &Connection,
    account_id: &str,
) -> rusqlite::Result<HashMap<String, Vec<Tag>>> {
    let mut st = c.prepare_cached(
        "SELECT resource_id, key, value FROM tags WHERE account_id = ?1 ORDER BY resource_id, key",
    )?;
    let mut out: HashMap<String, Vec<Tag>> = HashMap::new();
    let mut rows = st.query([account_id])?;
    while let Some(r) = rows.next()? {
        out.entry(r.get(0)?).or_default().push(Tag {
            key: r.get(1)?,
            value: r.get(2)?,
        });
    }
    Ok(out)
}

pub(crate) fn describe(
    c: &Connection,
    account_id: &str,
) -> rusqlite::Result<Vec<(String, String, String, String)>> {
    let mut st = c.prepare_cached(
        "SELECT t.resource_id, r.kind, t.key, t.value FROM tags t JOIN resources r ON r.id = t.resource_id \
         WHERE t.account_id = ?1 ORDER BY t.resource_id, t.key",
    )?;
    let rows = st.query_map([account_id], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
    })?;
    rows.collect()
}
