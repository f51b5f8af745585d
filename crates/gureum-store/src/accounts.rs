//! Accounts and their access keys.

use gureum_types::model::{AccessKey, Account};
use rusqlite::{params, Connection, OptionalExtension};

use crate::Millis;

aggregate! {
    pub trait Accounts {
        fn insert(&self, id: &str, name: &str, now: Millis) -> ();
        fn list(&self) -> Vec<AccountRow>;
        /// Find an account by id or by name.
        fn find(&self, id_or_name: &str) -> Option<AccountRow>;
        fn insert_access_key(&self, key: &AccessKey, now: Millis) -> ();
        fn find_access_key(&self, access_key_id: &str) -> Option<AccessKey>;
        fn access_keys_of(&self, account_id: &str) -> Vec<AccessKey>;
    }
}

fn account_row(r: &rusqlite::Row) -> rusqlite::Result<(String, String, Millis)> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
}

/// An account row with its creation time in milliseconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountRow {
    pub id: String,
    pub name: String,
    pub created_at: Millis,
}

impl AccountRow {
    pub fn to_model(&self, fmt_time: impl Fn(Millis) -> String) -> Account {
        Account {
            id: self.id.clone(),
            name: self.name.clone(),
            create_time: fmt_time(self.created_at),
        }
    }
}

pub(crate) fn insert(c: &Connection, id: &str, name: &str, now: Millis) -> rusqlite::Result<()> {
    c.execute(
        "INSERT INTO accounts (id, name, created_at) VALUES (?1, ?2, ?3)",
        params![id, name, now],
    )?;
    Ok(())
}

pub(crate) fn list(c: &Connection) -> rusqlite::Result<Vec<AccountRow>> {
    let mut st =
        c.prepare_cached("SELECT id, name, created_at FROM accounts ORDER BY created_at, id")?;
    let rows = st.query_map([], account_row)?;
    rows.map(|r| {
        r.map(|(id, name, created_at)| AccountRow {
            id,
            name,
            created_at,
        })
    })
    .collect()
}

pub(crate) fn find(c: &Connection, id_or_name: &str) -> rusqlite::Result<Option<AccountRow>> {
    c.prepare_cached("SELECT id, name, created_at FROM accounts WHERE id = ?1 OR name = ?1")?
        .query_row([id_or_name], account_row)
        .optional()
        .map(|o| {
            o.map(|(id, name, created_at)| AccountRow {
                id,
                name,
                created_at,
            })
        })
}

pub(crate) fn insert_access_key(
    c: &Connection,
    key: &AccessKey,
    now: Millis,
) -> rusqlite::Result<()> {
    c.execute(
        "INSERT INTO access_keys (access_key_id, secret_access_key, account_id, created_at) \
         VALUES (?1, ?2, ?3, ?4)",
        params![
            key.access_key_id,
            key.secret_access_key,
            key.account_id,
            now
        ],
    )?;
    Ok(())
}

pub(crate) fn find_access_key(
    c: &Connection,
    access_key_id: &str,
) -> rusqlite::Result<Option<AccessKey>> {
    c.prepare_cached(
        "SELECT access_key_id, secret_access_key, account_id FROM access_keys WHERE access_key_id = ?1",
    )?
    .query_row([access_key_id], |r| {
        Ok(AccessKey {
            access_key_id: r.get(0)?,
            secret_access_key: r.get(1)?,
            account_id: r.get(2)?,
        })
    })
    .optional()
}

pub(crate) fn access_keys_of(c: &Connection, account_id: &str) -> rusqlite::Result<Vec<AccessKey>> {
    let mut st = c.prepare_cached(
        "SELECT access_key_id, secret_access_key, account_id FROM access_keys \
         WHERE account_id = ?1 ORDER BY created_at",
    )?;
    let rows = st.query_map([account_id], |r| {
        Ok(AccessKey {
            access_key_id: r.get(0)?,
            secret_access_key: r.get(1)?,
            account_id: r.get(2)?,
        })
    })?;
    rows.collect()
}
