//! gureum's durable state, behind the [`Store`] trait so the core never sees a database.
//!
//! A [`Store`] runs closures over a transaction ([`Tx`]); the transaction hands out one trait
//! per aggregate ([`Accounts`], [`KeyPairs`], [`Instances`], …), each method one typed query
//! or change. The core composes several aggregates in one transaction (a launch writes the
//! registry, the instance, its tags and its groups, or none of them) and runs it on a blocking
//! thread; nothing in a signature names the backend.
//!
//! The SQLite backend ([`SqliteStore`], `sqlite.rs`) owns the database of a data dir: WAL
//! journal, `synchronous=FULL` (a committed change survives power loss), versioned migrations,
//! one writer connection and a small pool of readers. Each aggregate's module holds its row
//! types, its trait and the SQLite SQL behind it. [`conformance`] checks any backend against
//! the traits; a second backend (PostgreSQL) implements the same traits and runs the same
//! suite.
//!
//! Every row carries its owning account, and every account-facing query is scoped by it:
//! another account's resources cannot be read by mistake.

/// Declares one aggregate's trait and implements it for the SQLite transaction by calling
/// the module's function of the same name with the connection first. The trait is what other
/// backends implement; the free functions stay the SQLite SQL, tested on their own.
macro_rules! aggregate {
    (
        $(#[$doc:meta])*
        pub trait $name:ident {
            $(
                $(#[$m:meta])*
                fn $f:ident(&self $(, $a:ident: $t:ty)*) -> $r:ty;
            )*
        }
    ) => {
        $(#[$doc])*
        pub trait $name {
            $( $(#[$m])* fn $f(&self $(, $a: $t)*) -> $crate::StoreResult<$r>; )*
        }

        impl $name for $crate::sqlite::SqliteTx<'_> {
            $(
                $(#[$m])*
                fn $f(&self $(, $a: $t)*) -> $crate::StoreResult<$r> {
                    Ok($f(self.conn $(, $a)*)?)
                }
            )*
        }
    };
}

pub mod accounts;
pub mod addresses;
pub mod budgets;
pub mod conformance;
pub mod console;
pub mod images;
pub mod instances;
pub mod key_pairs;
mod migrations;
pub mod resources;
pub mod routing;
pub mod security_groups;
mod sqlite;
pub mod tags;
pub mod usage;
pub mod volumes;
pub mod vpcs;

use std::path::PathBuf;

pub use accounts::Accounts;
pub use addresses::Addresses;
pub use budgets::Budgets;
pub use console::Console;
pub use images::Images;
pub use instances::Instances;
pub use key_pairs::KeyPairs;
pub use resources::Resources;
pub use routing::Routing;
pub use security_groups::SecurityGroups;
pub use sqlite::{SqliteStore, SqliteTx};
pub use tags::Tags;
pub use usage::Usage;
pub use volumes::Volumes;
pub use vpcs::Vpcs;

/// A backend's own error, kept as the cause of [`StoreError::Backend`] and `Open`.
pub type BackendError = Box<dyn std::error::Error + Send + Sync>;

/// What can go wrong in the store, whatever the backend. The core maps it once to its own
/// error (an `InternalError` for the client, logged with its cause).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database {path}: {source}")]
    Open { path: PathBuf, source: BackendError },
    #[error("database schema version {found} is newer than this gureum knows ({known})")]
    TooNew { found: i64, known: i64 },
    /// A change or lookup that needs a row found none.
    #[error("not found: {0}")]
    NotFound(String),
    /// A uniqueness or reference constraint refused the change (where a method does not
    /// answer that itself, as the inserts returning `false` for a taken name do).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The database stayed locked by another writer past the backend's wait.
    #[error("database busy: {0}")]
    Busy(String),
    #[error("{backend}: {source}")]
    Backend {
        backend: &'static str,
        source: BackendError,
    },
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Milliseconds since the Unix epoch, the time unit of every stored timestamp.
pub type Millis = i64;

/// One transaction's view of every aggregate. A closure given to [`Store::write`] sees its
/// own changes; all of them commit together or none does.
pub trait Tx {
    fn accounts(&self) -> &dyn Accounts;
    fn addresses(&self) -> &dyn Addresses;
    fn budgets(&self) -> &dyn Budgets;
    fn console(&self) -> &dyn Console;
    fn images(&self) -> &dyn Images;
    fn instances(&self) -> &dyn Instances;
    fn key_pairs(&self) -> &dyn KeyPairs;
    fn resources(&self) -> &dyn Resources;
    fn routing(&self) -> &dyn Routing;
    fn security_groups(&self) -> &dyn SecurityGroups;
    fn tags(&self) -> &dyn Tags;
    fn usage(&self) -> &dyn Usage;
    fn volumes(&self) -> &dyn Volumes;
    fn vpcs(&self) -> &dyn Vpcs;
}

/// Whether a write closure's transaction commits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Commit,
    Rollback,
}

/// A backend: runs closures over transactions. Object-safe (the core holds an
/// `Arc<dyn Store>`); the generic [`read`](#method.read) and [`write`](#method.write) on
/// `dyn Store` are what callers use. Every call blocks its thread, so async callers run it on
/// a blocking thread. The closure runs exactly once.
pub trait Store: Send + Sync {
    /// Run `f` over a read-only transaction. A backend may see each statement's own committed
    /// snapshot (SQLite's readers do) or one snapshot for the whole closure (PostgreSQL's
    /// repeatable read); callers must not depend on either. A change attempted here fails.
    fn read_dyn(&self, f: &mut dyn FnMut(&dyn Tx)) -> StoreResult<()>;

    /// Run `f` in one write transaction, committed if it answers [`Outcome::Commit`] and
    /// rolled back otherwise (or if it panics). Writers are serialised.
    fn write_dyn(&self, f: &mut dyn FnMut(&dyn Tx) -> Outcome) -> StoreResult<()>;
}

impl dyn Store + '_ {
    /// Run `f` over a read-only transaction (see [`Store::read_dyn`]). Blocking.
    pub fn read<T, E: From<StoreError>>(
        &self,
        f: impl FnOnce(&dyn Tx) -> Result<T, E>,
    ) -> Result<T, E> {
        let mut f = Some(f);
        let mut out = None;
        let ran = self.read_dyn(&mut |tx| {
            if let Some(f) = f.take() {
                out = Some(f(tx));
            }
        });
        finish(out, ran)
    }

    /// Run `f` in one write transaction, committed if `f` succeeds and rolled back
    /// otherwise. Blocking.
    pub fn write<T, E: From<StoreError>>(
        &self,
        f: impl FnOnce(&dyn Tx) -> Result<T, E>,
    ) -> Result<T, E> {
        let mut f = Some(f);
        let mut out = None;
        let ran = self.write_dyn(&mut |tx| {
            let Some(f) = f.take() else {
                return Outcome::Rollback;
            };
            let r = f(tx);
            let outcome = if r.is_ok() {
                Outcome::Commit
            } else {
                Outcome::Rollback
            };
            out = Some(r);
            outcome
        });
        finish(out, ran)
    }
}

/// The closure's answer, unless the backend failed around it: the closure's own error wins
/// (it is why a write rolled back), then the backend's.
fn finish<T, E: From<StoreError>>(out: Option<Result<T, E>>, ran: StoreResult<()>) -> Result<T, E> {
    match (out, ran) {
        (Some(Err(e)), _) => Err(e),
        (_, Err(e)) => Err(e.into()),
        (Some(Ok(v)), Ok(())) => Ok(v),
        (None, Ok(())) => Err(StoreError::Backend {
            backend: "store",
            source: "the backend did not run the closure".into(),
        }
        .into()),
    }
}
