//! Web console data: each account's console sign-in password, as an argon2 PHC string (the
//! console crate hashes and verifies; the store only keeps the string).

use rusqlite::{params, Connection, OptionalExtension};

use crate::Millis;

aggregate! {
    pub trait Console {
        /// Set (or replace) the account's console password hash.
        fn set_password(&self, account_id: &str, hash: &str, now: Millis) -> ();
        /// The account's console password hash, if one was set.
        fn password_hash(&self, account_id: &str) -> Option<String>;
    }
}

pub(crate) fn set_password(
    c: &Connection,
    account_id: &str,
    hash: &str,
    now: Millis,
) -> rusqlite::Result<()> {
    c.execute(
        "INSERT INTO console_passwords (account_id, hash, updated_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (account_id) DO UPDATE SET hash = excluded.hash, updated_at = excluded.updated_at",
        params![account_id, hash, now],
    )?;
    Ok(())
}

pub(crate) fn password_hash(c: &Connection, account_id: &str) -> rusqlite::Result<Option<String>> {
    c.prepare_cached("SELECT hash FROM console_passwords WHERE account_id = ?1")?
        .query_row([account_id], |r| r.get(0))
        .optional()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StoreError;

    #[test]
    fn set_replace_and_read() {
        let (_dir, store) = crate::sqlite::test_store();
        store
            .sql_write(|tx| {
                crate::accounts::insert(tx, "111111111111", "alice", 1)?;
                assert_eq!(password_hash(tx, "111111111111")?, None);
                set_password(tx, "111111111111", "$argon2id$a", 2)?;
                set_password(tx, "111111111111", "$argon2id$b", 3)?;
                assert_eq!(
                    password_hash(tx, "111111111111")?.as_deref(),
                    Some("$argon2id$b")
                );
                Ok::<_, StoreError>(())
            })
            .unwrap();
    }
}
