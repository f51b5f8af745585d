//! A pool of ready-made SSH host key sets for new instances.
//!
//! A set is what `ssh-keygen -A` makes on a first boot (RSA-3072, ECDSA P-256 and Ed25519 key
//! pairs) plus the console block of their fingerprints (`ssh-keygen -l`). The RSA key alone
//! costs about a second of CPU and the rest about a dozen processes; made inside the guest at
//! first boot, all of it competes with every other guest booting at the same time. Made here,
//! at the lowest priority while the host is otherwise idle (in an idle cpu cgroup, not merely
//! niced), it costs a launch nothing. Each set is a directory claimed
//! by an atomic rename, so it is handed out once even with several servers sharing the pool
//! directory (it lives in the cache dir). Without `ssh-keygen` on the host the pool stays
//! empty and guests make their own keys, as before.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use gureum_core::host::{HostKeySet, HostKeys};

/// Sets kept ready: a burst of launches beyond this makes its own keys in the guests.
pub const POOL_SIZE: usize = 32;

/// The top-level cpu cgroup the key generators run in, at idle priority (there only while the
/// pool refills).
const GROUP: &str = "gureum-host-keys";

/// The key types of a set, as `ssh-keygen -t` names them, with their sizes.
const KEY_TYPES: [(&str, Option<&str>); 3] = [
    ("rsa", Some("3072")),
    ("ecdsa", Some("256")),
    ("ed25519", None),
];

/// How long after the last set was taken the pool waits before making more: a burst of
/// launches keeps the host busy for a few seconds, and even an idle-priority process takes
/// the CPU in every gap the booting guests leave.
const QUIET: Duration = Duration::from_secs(10);

pub struct HostKeyPool {
    dir: PathBuf,
    wake: Arc<tokio::sync::Notify>,
    last_take: std::sync::Mutex<Option<std::time::Instant>>,
    worker: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

/// This process's pool, for [`shutdown`].
static POOL: std::sync::OnceLock<Arc<HostKeyPool>> = std::sync::OnceLock::new();

/// Stops the refill (killing a key generator at work) and removes the idle cgroup: a server
/// that stops cleanly leaves neither behind.
pub async fn shutdown() {
    let Some(pool) = POOL.get() else {
        return;
    };
    let worker = pool.worker.lock().unwrap_or_else(|p| p.into_inner()).take();
    if let Some(worker) = worker {
        worker.abort();
        let _ = worker.await;
    }
    // The killed generator leaves the group a moment after the kill.
    for _ in 0..50 {
        if gureum_runtime::remove_idle_group(GROUP) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

impl HostKeyPool {
    /// The pool in `dir`, refilled in the background.
    pub fn spawn(dir: &Path) -> Arc<HostKeyPool> {
        let pool = Arc::new(HostKeyPool {
            dir: dir.to_path_buf(),
            wake: Arc::default(),
            last_take: std::sync::Mutex::new(None),
            worker: std::sync::Mutex::new(None),
        });
        let worker = pool.clone();
        let handle = tokio::spawn(async move {
            if std::fs::create_dir_all(&worker.dir).is_err() {
                return;
            }
            worker.remove_leftovers();
            let _ = gureum_runtime::remove_idle_group(GROUP);
            // Give start-up (and the default image build) the machine first.
            tokio::time::sleep(Duration::from_secs(5)).await;
            loop {
                while worker.ready().len() < POOL_SIZE {
                    worker.quiet().await;
                    if let Err(e) = worker.make_one().await {
                        tracing::debug!(error = %e, "no host key pool (guests make their own keys)");
                        let _ = gureum_runtime::remove_idle_group(GROUP);
                        return;
                    }
                }
                // Full: the idle cgroup is not needed until the next refill.
                let _ = gureum_runtime::remove_idle_group(GROUP);
                worker.wake.notified().await;
            }
        });
        *pool.worker.lock().unwrap_or_else(|p| p.into_inner()) = Some(handle);
        let _ = POOL.set(pool.clone());
        pool
    }

    /// Returns once no set has been taken for [`QUIET`].
    async fn quiet(&self) {
        loop {
            let since = self
                .last_take
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .map(|t| t.elapsed());
            match since {
                Some(since) if since < QUIET => tokio::time::sleep(QUIET - since).await,
                _ => return,
            }
        }
    }

    fn ready(&self) -> Vec<PathBuf> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return vec![];
        };
        let mut sets: Vec<PathBuf> = entries
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("set-"))
            })
            .collect();
        sets.sort();
        sets
    }

    /// Half-made sets of a server that died, and single RSA keys of older versions.
    fn remove_leftovers(&self) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        for path in entries.filter_map(|e| e.ok()).map(|e| e.path()) {
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            // Another server sharing the pool may be making a set right now: only an old
            // half-made one is left over.
            let stale = std::fs::metadata(&path)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > Duration::from_secs(600));
            if name.starts_with("rsa-")
                || name.starts_with("claimed-rsa-")
                || (name.starts_with("tmp-") && stale)
            {
                let _ = std::fs::remove_dir_all(&path).or_else(|_| std::fs::remove_file(&path));
            }
        }
    }

    async fn make_one(&self) -> std::io::Result<()> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let name = format!("set-{nanos:x}-{:x}", std::process::id());
        let tmp = self.dir.join(format!("tmp-{name}"));
        std::fs::create_dir_all(&tmp)?;
        let result = make_set(&tmp).await;
        if let Err(e) = result {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(e);
        }
        std::fs::rename(&tmp, self.dir.join(&name))
    }
}

/// Makes the keys of a set in `dir`, then their fingerprints.
async fn make_set(dir: &Path) -> std::io::Result<()> {
    let mut fingerprints = Vec::new();
    for (kind, bits) in KEY_TYPES {
        let key = dir.join(format!("ssh_host_{kind}_key"));
        let mut args = vec!["-q", "-t", kind, "-N", "", "-C", ""];
        if let Some(bits) = bits {
            args.extend(["-b", bits]);
        }
        args.push("-f");
        let out = idle_ssh_keygen(&args, &key).await?;
        if !out.status.success() {
            return Err(std::io::Error::other(format!(
                "ssh-keygen -t {kind} failed"
            )));
        }
        let out = idle_ssh_keygen(&["-l", "-f"], &key.with_extension("pub")).await?;
        if !out.status.success() {
            return Err(std::io::Error::other("ssh-keygen -l failed"));
        }
        fingerprints.extend_from_slice(&out.stdout);
    }
    std::fs::write(dir.join("fingerprints"), fingerprints)
}

/// Runs `ssh-keygen ARGS PATH` niced and in an idle cpu cgroup; its output.
async fn idle_ssh_keygen(args: &[&str], path: &Path) -> std::io::Result<std::process::Output> {
    let child = tokio::process::Command::new("nice")
        .args(["-n", "19", "ssh-keygen"])
        .args(args)
        .arg(path)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        // A server that exits leaves no key generator (nor, so, a busy cgroup) behind.
        .kill_on_drop(true)
        .spawn()?;
    // Idle against the instances too (niceness only ranks tasks within one cgroup).
    if let Some(pid) = child.id() {
        if let Err(e) = gureum_runtime::move_to_idle_group(GROUP, pid) {
            tracing::debug!(error = %e, "host key made outside an idle cgroup");
        }
    }
    child.wait_with_output().await
}

impl HostKeys for HostKeyPool {
    fn take(&self) -> Option<HostKeySet> {
        *self.last_take.lock().unwrap_or_else(|p| p.into_inner()) = Some(std::time::Instant::now());
        for set in self.ready() {
            let claimed =
                set.with_file_name(format!("claimed-{}", set.file_name()?.to_string_lossy()));
            if std::fs::rename(&set, &claimed).is_err() {
                continue; // another server took it
            }
            let read = || -> std::io::Result<HostKeySet> {
                let mut keys = Vec::new();
                for (kind, _) in KEY_TYPES {
                    let name = format!("ssh_host_{kind}_key");
                    let private = std::fs::read(claimed.join(&name))?;
                    let public = std::fs::read(claimed.join(format!("{name}.pub")))?;
                    keys.push((name, private, public));
                }
                Ok(HostKeySet {
                    keys,
                    fingerprints: std::fs::read(claimed.join("fingerprints"))?,
                })
            };
            let out = read();
            let _ = std::fs::remove_dir_all(&claimed);
            self.wake.notify_one();
            if let Ok(set) = out {
                return Some(set);
            }
        }
        self.wake.notify_one();
        None
    }
}
