//! Versioned schema migrations. `PRAGMA user_version` records how many of [`MIGRATIONS`] have
//! run; each runs in its own transaction with the version bump, so a crash mid-migration
//! leaves the previous version intact. Migrations are append-only: never edit a shipped one.

use rusqlite::Connection;

use crate::{StoreError, StoreResult};

pub(crate) const MIGRATIONS: &[&str] = &[
    // 1: accounts, credentials, key pairs, tags and the resource registry.
    r#"
    CREATE TABLE accounts (
        id          TEXT PRIMARY KEY,
        name        TEXT NOT NULL UNIQUE,
        created_at  INTEGER NOT NULL
    );
    CREATE TABLE access_keys (
        access_key_id     TEXT PRIMARY KEY,
        secret_access_key TEXT NOT NULL,
        account_id        TEXT NOT NULL REFERENCES accounts(id),
        created_at        INTEGER NOT NULL
    );
    CREATE INDEX access_keys_by_account ON access_keys(account_id);

    -- Every taggable resource of every kind, so tags and ids can be checked generically.
    CREATE TABLE resources (
        id          TEXT PRIMARY KEY,
        account_id  TEXT NOT NULL REFERENCES accounts(id),
        kind        TEXT NOT NULL,
        created_at  INTEGER NOT NULL
    );
    CREATE INDEX resources_by_account ON resources(account_id, kind, id);

    CREATE TABLE key_pairs (
        id           TEXT PRIMARY KEY REFERENCES resources(id) ON DELETE CASCADE,
        account_id   TEXT NOT NULL,
        name         TEXT NOT NULL,
        fingerprint  TEXT NOT NULL,
        key_type     TEXT NOT NULL,
        public_key   TEXT NOT NULL,
        created_at   INTEGER NOT NULL,
        UNIQUE (account_id, name)
    );

    CREATE TABLE tags (
        resource_id  TEXT NOT NULL REFERENCES resources(id) ON DELETE CASCADE,
        account_id   TEXT NOT NULL,
        key          TEXT NOT NULL,
        value        TEXT NOT NULL,
        PRIMARY KEY (resource_id, key)
    );
    CREATE INDEX tags_by_account ON tags(account_id, resource_id, key);
    "#,
];

pub(crate) fn migrate(conn: &mut Connection) -> StoreResult<()> {
    let known = MIGRATIONS.len() as i64;
    let found: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if found > known {
        return Err(StoreError::TooNew { found, known });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
    }
    Ok(())
}
