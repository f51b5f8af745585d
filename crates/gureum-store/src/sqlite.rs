//! The SQLite backend: one database file per data dir in WAL mode with `synchronous=FULL`,
//! migrated on open, one writer connection and a small pool of readers. The SQL itself lives
//! in each aggregate's module; this file owns the connections, the transactions and the
//! mapping of SQLite's errors to [`StoreError`].

use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};

use crate::{
    migrations, Accounts, Addresses, Budgets, Console, Images, Instances, KeyPairs, Outcome,
    Resources, Routing, SecurityGroups, Store, StoreError, StoreResult, Tags, Tx, Usage, Volumes,
    Vpcs,
};

const READERS: usize = 4;

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        use rusqlite::ErrorCode::{ConstraintViolation, DatabaseBusy, DatabaseLocked};
        match &e {
            rusqlite::Error::SqliteFailure(f, _) if f.code == ConstraintViolation => {
                StoreError::Conflict(e.to_string())
            }
            rusqlite::Error::SqliteFailure(f, _)
                if f.code == DatabaseBusy || f.code == DatabaseLocked =>
            {
                StoreError::Busy(e.to_string())
            }
            rusqlite::Error::QueryReturnedNoRows => StoreError::NotFound(e.to_string()),
            _ => StoreError::Backend {
                backend: "sqlite",
                source: Box::new(e),
            },
        }
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

/// The database of one data dir.
pub struct SqliteStore {
    path: PathBuf,
    /// A panic while a lock is held (a bug in a request's closure) must not break every later
    /// request: the locks are taken back from poisoning. That is sound because a panicking
    /// write transaction is rolled back as it unwinds (rusqlite's drop behaviour), and a
    /// reader's connection is never left in a transaction.
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
}

/// One SQLite transaction (or a reader connection) seen as every aggregate's trait.
pub struct SqliteTx<'a> {
    pub(crate) conn: &'a Connection,
}

impl<'a> SqliteTx<'a> {
    /// The aggregates over `conn`, for the store's own benchmarks and tests that mix them
    /// with raw SQL.
    #[doc(hidden)]
    pub fn new(conn: &'a Connection) -> Self {
        SqliteTx { conn }
    }
}

impl Tx for SqliteTx<'_> {
    fn accounts(&self) -> &dyn Accounts {
        self
    }
    fn addresses(&self) -> &dyn Addresses {
        self
    }
    fn budgets(&self) -> &dyn Budgets {
        self
    }
    fn console(&self) -> &dyn Console {
        self
    }
    fn images(&self) -> &dyn Images {
        self
    }
    fn instances(&self) -> &dyn Instances {
        self
    }
    fn key_pairs(&self) -> &dyn KeyPairs {
        self
    }
    fn resources(&self) -> &dyn Resources {
        self
    }
    fn routing(&self) -> &dyn Routing {
        self
    }
    fn security_groups(&self) -> &dyn SecurityGroups {
        self
    }
    fn tags(&self) -> &dyn Tags {
        self
    }
    fn usage(&self) -> &dyn Usage {
        self
    }
    fn volumes(&self) -> &dyn Volumes {
        self
    }
    fn vpcs(&self) -> &dyn Vpcs {
        self
    }
}

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(())
}

impl SqliteStore {
    /// Open (creating if needed) and migrate the database at `path`.
    pub fn open(path: &Path) -> StoreResult<SqliteStore> {
        let open = |flags| {
            let c =
                Connection::open_with_flags(path, flags).map_err(|source| StoreError::Open {
                    path: path.to_owned(),
                    source: Box::new(source),
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
        Ok(SqliteStore {
            path: path.to_owned(),
            writer: Mutex::new(writer),
            readers: Mutex::new(readers),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Run `f` on a reader connection. Blocking. Raw SQL, for this crate's tests and benches.
    #[doc(hidden)]
    pub fn sql_read<T, E: From<StoreError>>(
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
    /// otherwise. Blocking. Raw SQL, for this crate's tests and benches.
    #[doc(hidden)]
    pub fn sql_write<T, E: From<StoreError>>(
        &self,
        f: impl FnOnce(&Transaction) -> Result<T, E>,
    ) -> Result<T, E> {
        let mut w = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let tx = w
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(StoreError::from)?;
        let out = f(&tx)?;
        tx.commit().map_err(StoreError::from)?;
        Ok(out)
    }

    /// The single integer `sql` answers: other crates' tests that check the database's
    /// integrity (no orphaned registry rows) beyond what the traits expose.
    #[doc(hidden)]
    pub fn count_for_tests(&self, sql: &str) -> i64 {
        self.sql_read(|c| c.query_row(sql, [], |r| r.get(0)).map_err(StoreError::from))
            .expect("a test's counting query")
    }
}

impl Store for SqliteStore {
    fn read_dyn(&self, f: &mut dyn FnMut(&dyn Tx)) -> StoreResult<()> {
        self.sql_read(|conn| {
            f(&SqliteTx { conn });
            Ok(())
        })
    }

    fn write_dyn(&self, f: &mut dyn FnMut(&dyn Tx) -> Outcome) -> StoreResult<()> {
        let mut w = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let tx = w.transaction_with_behavior(TransactionBehavior::Immediate)?;
        match f(&SqliteTx { conn: &tx }) {
            Outcome::Commit => tx.commit()?,
            Outcome::Rollback => tx.rollback()?,
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) fn test_store() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("state.db")).unwrap();
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
        store.sql_write(create).unwrap();
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _: Result<(), StoreError> = store.sql_write(|c| {
                c.execute("INSERT INTO t VALUES (1)", [])?;
                panic!("a bug in a request");
            });
        }));
        assert!(caught.is_err());
        store
            .sql_write(|c| {
                c.execute("INSERT INTO t VALUES (2)", [])
                    .map_err(StoreError::from)
            })
            .unwrap();
        let values: Vec<i64> = store
            .sql_read(|c| {
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
            .sql_read(|c| {
                c.query_row("PRAGMA journal_mode", [], |r| r.get(0))
                    .map_err(StoreError::from)
            })
            .unwrap();
        assert_eq!(mode, "wal");
        let sync: i64 = store
            .sql_write(|c| {
                c.query_row("PRAGMA synchronous", [], |r| r.get(0))
                    .map_err(StoreError::from)
            })
            .unwrap();
        assert_eq!(sync, 2, "synchronous=FULL");
        drop(store);
        let again = SqliteStore::open(&dir.path().join("state.db")).unwrap();
        let v: i64 = again
            .sql_read(|c| {
                c.query_row("PRAGMA user_version", [], |r| r.get(0))
                    .map_err(StoreError::from)
            })
            .unwrap();
        assert_eq!(v, migrations::MIGRATIONS.len() as i64);
    }

    /// SQLite's failures reach callers as the store's own kinds.
    #[test]
    fn sqlite_errors_map_to_store_error_kinds() {
        let (_dir, store) = test_store();
        let e = store
            .sql_write(|c| {
                c.execute("INSERT INTO accounts VALUES ('1', 'a', 0)", [])?;
                c.execute("INSERT INTO accounts VALUES ('2', 'a', 0)", [])?;
                Ok::<_, StoreError>(())
            })
            .unwrap_err();
        assert!(matches!(e, StoreError::Conflict(_)), "{e:?}");
        let e = store
            .sql_read(|c| {
                c.query_row("SELECT id FROM accounts", [], |r| r.get::<_, String>(0))
                    .map_err(StoreError::from)
            })
            .unwrap_err();
        assert!(matches!(e, StoreError::NotFound(_)), "{e:?}");
    }

    #[test]
    fn sqlite_backend_passes_the_conformance_suite() {
        let dirs = std::sync::Mutex::new(Vec::new());
        crate::conformance::run_all(|| {
            let (dir, store) = test_store();
            dirs.lock().unwrap().push(dir);
            std::sync::Arc::new(store)
        });
    }
}
