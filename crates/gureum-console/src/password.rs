//! Console passwords: argon2id hashes (PHC strings with their own random salt) kept in the
//! store, one per account. `gureum account passwd` sets them; the sign-in form checks them on
//! [`Hashers`], a small fixed pool.
//!
//! Why a pool of its own rather than `spawn_blocking`: each argon2id check with the default
//! parameters (m = 19456 KiB) needs 19 MiB. The library allocates it per check; on tokio's
//! blocking pool every concurrent check is another thread and another 19 MiB, and glibc keeps
//! a freed block of that size in the arena of whichever thread freed it (its mmap threshold
//! rises to it after the first free), where other threads' small allocations then split it,
//! so a flood of 150 parallel attempts left the server at 2.9 GB for good. Here at most
//! [`WORKERS`] checks run at once, each worker thread hashing into its own block memory,
//! allocated once and reused (the library's `hash_password_into_with_memory`), with at most
//! [`QUEUE`] more waiting; past that an attempt is refused at once, without hashing.

use argon2::password_hash::Output;
use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use gureum_core::Cloud;
use gureum_store::StoreError;

/// Password checks running at once (each holds 19 MiB while it runs).
pub const WORKERS: usize = 2;
/// Checks that may wait for a worker; more are refused.
pub const QUEUE: usize = 8;

/// The shortest password accepted.
pub const MIN_LEN: usize = 8;

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("the password must be at least {MIN_LEN} characters long")]
    TooShort,
    #[error("no account {0}")]
    NoAccount(String),
    #[error("hashing the password: {0}")]
    Hash(#[source] argon2::password_hash::Error),
    #[error("{0}")]
    Store(#[from] StoreError),
}

pub fn hash(password: &str) -> Result<String, PasswordError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(PasswordError::Hash)
}

pub fn verify(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).ok().is_some_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

/// The most block memory a worker keeps for reuse (in 1 KiB blocks): twice the default
/// parameters'. A hash with more (set by hand in the store) is checked the library's way.
const MAX_REUSED_BLOCKS: usize = 2 * 19_456;

/// [`verify`], hashing into `blocks` (grown to the hash's memory cost and kept) instead of
/// memory allocated for this one check.
fn verify_reusing(password: &str, phc: &str, blocks: &mut Vec<Block>) -> bool {
    let Ok(hash) = PasswordHash::new(phc) else {
        return false;
    };
    let (Some(expected), Some(salt)) = (hash.hash, hash.salt) else {
        return false;
    };
    let (Ok(algorithm), Ok(params)) =
        (Algorithm::try_from(hash.algorithm), Params::try_from(&hash))
    else {
        return false;
    };
    let Ok(version) = hash
        .version
        .map_or(Ok(Version::default()), Version::try_from)
    else {
        return false;
    };
    let n = params.block_count();
    if n > MAX_REUSED_BLOCKS {
        return verify(password, phc);
    }
    if blocks.len() < n {
        blocks.resize(n, Block::default());
    }
    let mut salt_buf = [0u8; argon2::password_hash::Salt::MAX_LENGTH];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    let mut out = [0u8; Output::MAX_LENGTH];
    let out = &mut out[..expected.len()];
    Argon2::new(algorithm, version, params)
        .hash_password_into_with_memory(password.as_bytes(), salt, out, &mut blocks[..n])
        .is_ok()
        // `Output`'s equality is constant-time.
        && Output::new(out).is_ok_and(|o| o == expected)
}

/// Set the console password of an account (by id or name); returns the account id. Blocking.
pub fn set(cloud: &Cloud, account: &str, password: &str) -> Result<String, PasswordError> {
    if password.chars().count() < MIN_LEN {
        return Err(PasswordError::TooShort);
    }
    let phc = hash(password)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    cloud.store().write(|tx| {
        let Some(acct) = tx.accounts().find(account)? else {
            return Err(PasswordError::NoAccount(account.to_string()));
        };
        tx.console().set_password(&acct.id, &phc, now)?;
        Ok(acct.id)
    })
}

/// An account as the sign-in form names it (by name or id): its id, name and password
/// hash (`None`: it has no console password). Blocking (a store read).
pub fn lookup(
    cloud: &Cloud,
    account: &str,
) -> Result<Option<(String, String, Option<String>)>, StoreError> {
    cloud.store().read(|c| {
        let Some(acct) = c.accounts().find(account)? else {
            return Ok::<_, StoreError>(None);
        };
        let phc = c.console().password_hash(&acct.id)?;
        Ok(Some((acct.id, acct.name, phc)))
    })
}

/// The pool is full: the attempt was not checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Busy;

struct Job {
    password: String,
    phc: Option<String>,
    reply: tokio::sync::oneshot::Sender<bool>,
}

/// A fixed pool of password checkers (see the module's documentation). Its threads end when
/// it is dropped.
pub struct Hashers {
    jobs: std::sync::mpsc::SyncSender<Job>,
    /// Kept so that the queue exists even if no worker could be started.
    _queue: std::sync::Arc<std::sync::Mutex<std::sync::mpsc::Receiver<Job>>>,
}

impl Hashers {
    /// `workers` threads, `queue` checks waiting at most.
    pub fn new(workers: usize, queue: usize) -> Hashers {
        let (jobs, rx) = std::sync::mpsc::sync_channel::<Job>(queue);
        let rx = std::sync::Arc::new(std::sync::Mutex::new(rx));
        for i in 0..workers {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("gureum-pwcheck-{i}"))
                .spawn(move || {
                    let mut blocks = Vec::new();
                    loop {
                        let job = match rx.lock() {
                            Ok(rx) => rx.recv(),
                            Err(_) => return,
                        };
                        let Ok(job) = job else { return };
                        // Same work whether or not the account exists or has a password, so the
                        // time taken does not tell which accounts do.
                        let ok = match &job.phc {
                            Some(phc) => verify_reusing(&job.password, phc, &mut blocks),
                            None => {
                                let _ = verify_reusing(&job.password, DUMMY, &mut blocks);
                                false
                            }
                        };
                        let _ = job.reply.send(ok);
                    }
                });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "starting a password checker");
            }
        }
        Hashers { jobs, _queue: rx }
    }

    /// Whether `password` matches `phc` (`None`: never, after the same work). [`Busy`] at
    /// once if the pool and its queue are full.
    pub async fn verify(&self, password: String, phc: Option<String>) -> Result<bool, Busy> {
        self.submit(password, phc)?.await.map_err(|_| Busy)
    }

    fn submit(
        &self,
        password: String,
        phc: Option<String>,
    ) -> Result<tokio::sync::oneshot::Receiver<bool>, Busy> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.jobs
            .try_send(Job {
                password,
                phc,
                reply,
            })
            .map_err(|_| Busy)?;
        Ok(answer)
    }
}

impl Default for Hashers {
    fn default() -> Hashers {
        Hashers::new(WORKERS, QUEUE)
    }
}

/// A hash of a random password, verified against when there is nothing to verify.
const DUMMY: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$e0H3vbXLXk4r1sF1Rrq1TnSx1L9Mxq+8iPZQcA4e7gU";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_differ() {
        let a = hash("correct horse").unwrap();
        let b = hash("correct horse").unwrap();
        assert_ne!(a, b, "salted");
        assert!(a.starts_with("$argon2id$"));
        assert!(verify("correct horse", &a));
        assert!(!verify("wrong horse", &a));
        assert!(!verify("x", "not a hash"));
        assert!(!verify("x", DUMMY));
    }

    #[test]
    fn reusing_memory_agrees_with_the_library() {
        let a = hash("correct horse").unwrap();
        let mut blocks = Vec::new();
        assert!(verify_reusing("correct horse", &a, &mut blocks));
        assert_eq!(blocks.len(), 19_456);
        assert!(!verify_reusing("wrong horse", &a, &mut blocks));
        assert!(verify_reusing("correct horse", &a, &mut blocks));
        assert!(!verify_reusing("x", DUMMY, &mut blocks));
        assert!(!verify_reusing("x", "not a hash", &mut blocks));
        // Other parameters and variants, as the library hashes them.
        for (alg, m) in [
            (Algorithm::Argon2id, 8),
            (Algorithm::Argon2i, 64),
            (Algorithm::Argon2d, 4096),
        ] {
            let params = Params::new(m, 1, 1, Some(24)).unwrap();
            let salt = SaltString::generate(&mut OsRng);
            let phc = Argon2::new(alg, Version::V0x13, params)
                .hash_password(b"pw", &salt)
                .unwrap()
                .to_string();
            assert!(verify_reusing("pw", &phc, &mut blocks), "{phc}");
            assert!(!verify_reusing("pv", &phc, &mut blocks), "{phc}");
        }
        // A hash with a larger memory cost than is kept is checked the library's way.
        let big = Params::new(3 * 19_456, 1, 1, None).unwrap();
        let salt = SaltString::generate(&mut OsRng);
        let phc = Argon2::new(Algorithm::Argon2id, Version::V0x13, big)
            .hash_password(b"pw", &salt)
            .unwrap()
            .to_string();
        assert!(verify_reusing("pw", &phc, &mut blocks));
        assert_eq!(blocks.len(), 19_456);
    }

    #[tokio::test]
    async fn the_pool_checks_passwords() {
        let phc = hash("correct horse").unwrap();
        let pool = Hashers::new(1, 1);
        assert_eq!(
            pool.verify("correct horse".into(), Some(phc.clone())).await,
            Ok(true)
        );
        assert_eq!(
            pool.verify("wrong horse".into(), Some(phc.clone())).await,
            Ok(false)
        );
        assert_eq!(pool.verify("correct horse".into(), None).await, Ok(false));
    }

    #[test]
    fn past_its_queue_the_pool_refuses_at_once() {
        // No workers: whatever is sent waits, and the queue holds two.
        let pool = Hashers::new(0, 2);
        let a = pool.submit("a".into(), None).unwrap();
        let _b = pool.submit("b".into(), None).unwrap();
        assert_eq!(pool.submit("c".into(), None).err(), Some(Busy));
        // A pool that goes away answers nobody; its waiters see it.
        drop(pool);
        assert!(a.blocking_recv().is_err());
    }
}
