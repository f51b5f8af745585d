//! Key pairs: name, fingerprint, type and public key. The private key is never stored.

use rusqlite::{params, Connection};

use crate::Millis;

aggregate! {
    pub trait KeyPairs {
        /// Insert a key pair (its registry row must exist). `Ok(false)` when the name is taken.
        fn insert(&self, account_id: &str, k: &KeyPairRow) -> bool;
        /// Every key pair of the account, ordered by id.
        fn list(&self, account_id: &str) -> Vec<KeyPairRow>;
        fn name_taken(&self, account_id: &str, name: &str) -> bool;
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPairRow {
    pub id: String,
    pub name: String,
    pub fingerprint: String,
    pub key_type: String,
    pub public_key: String,
    pub created_at: Millis,
}

pub(crate) fn insert(c: &Connection, account_id: &str, k: &KeyPairRow) -> rusqlite::Result<bool> {
    let res = c.execute(
        "INSERT INTO key_pairs (id, account_id, name, fingerprint, key_type, public_key, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![k.id, account_id, k.name, k.fingerprint, k.key_type, k.public_key, k.created_at],
    );
    crate::sqlite::inserted(res)
}

pub(crate) fn list(c: &Connection, account_id: &str) -> rusqlite::Result<Vec<KeyPairRow>> {
    let mut st = c.prepare_cached(
        "SELECT id, name, fingerprint, key_type, public_key, created_at FROM key_pairs \
         WHERE account_id = ?1 ORDER BY id",
    )?;
    let rows = st.query_map([account_id], |r| {
        Ok(KeyPairRow {
            id: r.get(0)?,
            name: r.get(1)?,
            fingerprint: r.get(2)?,
            key_type: r.get(3)?,
            public_key: r.get(4)?,
            created_at: r.get(5)?,
        })
    })?;
    rows.collect()
}

pub(crate) fn name_taken(c: &Connection, account_id: &str, name: &str) -> rusqlite::Result<bool> {
    c.prepare_cached("SELECT 1 FROM key_pairs WHERE account_id = ?1 AND name = ?2")?
        .exists(params![account_id, name])
}
