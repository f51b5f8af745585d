//! gureum's durable state. [`Store`] owns the SQLite database of a data dir: WAL journal,
//! `synchronous=FULL` (a committed change survives power loss), versioned migrations, one
//! writer connection and a small pool of readers. The resource modules hold the SQL for
//! one resource each, as plain functions over a connection, so the core composes several of
//! them in one transaction.
//!
//! Every row carries its owning account, and every query is scoped by it: another account's
//! resources cannot be read by mistake.

pub mod accounts;
pub mod addresses;
pub mod budgets;
pub mod console;
pub mod images;
pub mod instances;
pub mod key_pairs;
mod migrations;
pub mod resources;
pub mod routing;
pub mod security_groups;
pub mod tags;
pub mod usage;
pub mod vpcs;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use rusqlite::{Connection, OpenFlags, Transaction};

pub use rusqlite;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database {path}: {source}")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("database schema version {found} is newer than this gureum knows ({known})")]
    TooNew { found: i64, known: i64 },
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
}

pub type StoreResult<T> = Result<T, StoreError>;

const READERS: usize = 4;

/// The database of one data dir.
pub struct Store {
    path: PathBuf,
    /// A panic while a lock is held (a bug in a request's closure) must not break every later
    /// request: the locks are taken back from poisoning. That is sound because a panicking
    /// write transaction is rolled back as it unwinds (rusqlite's drop behaviour), and a
    /// reader's connection is never left in a transaction.
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
}

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(())
}

impl Store {
    /// Open (creating if needed) and migrate the database at `path`.
    pub fn open(path: &Path) -> StoreResult<Store> {
        let open = |flags| {
            let c =
                Connection::open_with_flags(path, flags).map_err(|source| StoreError::Open {
                    path: path.to_owned(),
                    source,
                })?;
            configure(&c)?;
            Ok::<_, StoreError>(c)
        };
        let mut writer = open(
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        migrations::migrate(&mut writer)?;
        let readers = (0..READERS)
            .map(|_| open(OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX))
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(Store {
            path: path.to_owned(),
            writer: Mutex::new(writer),
            readers: Mutex::new(readers),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Run `f` on a reader connection (a consistent snapshot for its duration when it opens
    /// a transaction; single statements are atomic on their own). Blocking.
    pub fn read<T, E: From<StoreError>>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, E>,
    ) -> Result<T, E> {
        let conn = self
            .readers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        match conn {
            Some(conn) => {
                let out = f(&conn);
                self.readers
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(conn);
                out
            }
            // Every reader is busy: a read on the writer is still correct, just serialised.
            None => {
                let w = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
                f(&w)
            }
        }
    }

    /// Run `f` in one immediate write transaction, committed if `f` succeeds and rolled back
    /// otherwise. Writers are serialised. Blocking.
    pub fn write<T, E: From<StoreError>>(
        &self,
        f: impl FnOnce(&Transaction) -> Result<T, E>,
    ) -> Result<T, E> {
        let mut w = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let tx = w
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(StoreError::from)?;
        let out = f(&tx)?;
        tx.commit().map_err(StoreError::from)?;
        Ok(out)
    }
}

/// The outcome of an `INSERT` into a table with a uniqueness constraint: `Ok(false)` when the
/// constraint refused the row (a taken name), other errors as they are.
pub(crate) fn inserted(result: rusqlite::Result<usize>) -> rusqlite::Result<bool> {
    match result {
        Ok(_) => Ok(true),
        Err(rusqlite::Error::SqliteFailure(e, _))
            if e.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

/// Milliseconds since the Unix epoch, the time unit of every stored timestamp.
pub type Millis = i64;

#[cfg(test)]
pub(crate) fn test_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("state.db")).unwrap();
    (dir, store)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A write that panics half-way is rolled back, and the store goes on serving reads and
    /// writes (its lock is not left poisoned for good).
    #[test]
    fn a_panic_inside_a_write_leaves_the_store_usable() {
        let (_dir, store) = test_store();
        let create = |c: &Transaction| {
            c.execute("CREATE TABLE IF NOT EXISTS t (v INTEGER)", [])
                .map_err(StoreError::from)
        };
        store.write(create).unwrap();
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _: Result<(), StoreError> = store.write(|c| {
                c.execute("INSERT INTO t VALUES (1)", [])?;
                panic!("a bug in a request");
            });
        }));
        assert!(caught.is_err());
        store
            .write(|c| {
                c.execute("INSERT INTO t VALUES (2)", [])
                    .map_err(StoreError::from)
            })
            .unwrap();
        let values: Vec<i64> = store
            .read(|c| {
                let mut q = c.prepare("SELECT v FROM t ORDER BY v")?;
                let rows = q.query_map([], |r| r.get(0))?;
                rows.collect::<Result<_, _>>().map_err(StoreError::from)
            })
            .unwrap();
        assert_eq!(values, vec![2]);
    }

    #[test]
    fn opens_in_wal_mode_with_full_sync_and_reopens() {
        let (dir, store) = test_store();
        let mode: String = store
            .read(|c| {
                c.query_row("PRAGMA journal_mode", [], |r| r.get(0))
                    .map_err(StoreError::from)
            })
            .unwrap();
        assert_eq!(mode, "wal");
        let sync: i64 = store
            .write(|c| {
                c.query_row("PRAGMA synchronous", [], |r| r.get(0))
                    .map_err(StoreError::from)
            })
            .unwrap();
        assert_eq!(sync, 2, "synchronous=FULL");
        drop(store);
        let again = Store::open(&dir.path().join("state.db")).unwrap();
        let v: i64 = again
            .read(|c| {
                c.query_row("PRAGMA user_version", [], |r| r.get(0))
                    .map_err(StoreError::from)
            })
            .unwrap();
        assert_eq!(v, migrations::MIGRATIONS.len() as i64);
    }
}
