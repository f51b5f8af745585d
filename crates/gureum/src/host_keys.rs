//! A pool of ready-made RSA SSH host keys for new instances.
//!
//! An RSA-3072 host key costs about a second of CPU to make. Made inside the guest at first
//! boot, that second competes with every other guest booting at the same time; made here, at
//! the lowest priority while the host is otherwise idle (in an idle cpu cgroup beside the
//! instances', not merely niced), it costs a launch nothing. Each key is
//! claimed by an atomic rename, so it is handed out once even with several servers sharing the
//! pool directory (it lives in the cache dir). Without `ssh-keygen` on the host the pool stays
//! empty and guests make their own key, as before.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use gureum_core::host::HostKeys;

/// Keys kept ready: a burst of launches beyond this makes its own keys in the guests.
pub const POOL_SIZE: usize = 32;

pub struct RsaKeyPool {
    dir: PathBuf,
    wake: Arc<tokio::sync::Notify>,
}

impl RsaKeyPool {
    /// The pool in `dir`, refilled in the background.
    pub fn spawn(dir: &Path) -> Arc<RsaKeyPool> {
        let pool = Arc::new(RsaKeyPool {
            dir: dir.to_path_buf(),
            wake: Arc::default(),
        });
        let worker = pool.clone();
        tokio::spawn(async move {
            if std::fs::create_dir_all(&worker.dir).is_err() {
                return;
            }
            // Give start-up (and the default image build) the machine first.
            tokio::time::sleep(Duration::from_secs(5)).await;
            loop {
                while worker.ready().len() < POOL_SIZE {
                    if let Err(e) = worker.make_one().await {
                        tracing::debug!(error = %e, "no host key pool (guests make their own keys)");
                        return;
                    }
                }
                worker.wake.notified().await;
            }
        });
        pool
    }

    fn ready(&self) -> Vec<PathBuf> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return vec![];
        };
        let mut keys: Vec<PathBuf> = entries
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("rsa-") && !n.contains('.'))
                    && p.with_extension("pub").exists()
            })
            .collect();
        keys.sort();
        keys
    }

    async fn make_one(&self) -> std::io::Result<()> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let name = format!("rsa-{nanos:x}-{:x}", std::process::id());
        let tmp = self.dir.join(format!("tmp-{name}"));
        let mut child = tokio::process::Command::new("nice")
            .args([
                "-n",
                "19",
                "ssh-keygen",
                "-q",
                "-t",
                "rsa",
                "-b",
                "3072",
                "-N",
                "",
                "-C",
                "",
            ])
            .arg("-f")
            .arg(&tmp)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()?;
        // Idle against the instances too (niceness only ranks tasks within one cgroup).
        let group = child.id().and_then(|pid| {
            gureum_runtime::move_to_idle_group(gureum_runtime::DEFAULT_CGROUP_PARENT, pid)
                .map_err(|e| tracing::debug!(error = %e, "host key made outside an idle cgroup"))
                .ok()
        });
        let status = child.wait().await;
        if let Some(group) = group {
            let _ = gureum_runtime::remove_idle_group(&group).await;
        }
        let status = status?;
        if !status.success() {
            let _ = std::fs::remove_file(&tmp);
            return Err(std::io::Error::other("ssh-keygen failed"));
        }
        // The public half first: a private key without it is not offered.
        std::fs::rename(
            tmp.with_extension("pub"),
            self.dir.join(format!("{name}.pub")),
        )?;
        std::fs::rename(&tmp, self.dir.join(&name))?;
        Ok(())
    }
}

impl HostKeys for RsaKeyPool {
    fn take_rsa(&self) -> Option<(Vec<u8>, Vec<u8>)> {
        for key in self.ready() {
            let claimed =
                key.with_file_name(format!("claimed-{}", key.file_name()?.to_string_lossy()));
            if std::fs::rename(&key, &claimed).is_err() {
                continue; // another server took it
            }
            let public = key.with_extension("pub");
            let out = std::fs::read(&claimed)
                .ok()
                .zip(std::fs::read(&public).ok());
            let _ = std::fs::remove_file(&claimed);
            let _ = std::fs::remove_file(&public);
            self.wake.notify_one();
            if out.is_some() {
                return out;
            }
        }
        self.wake.notify_one();
        None
    }
}
