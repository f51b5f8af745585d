//! The EBS pool as the binary hands it to the host agent: `gureum-ebs`'s pool of the data
//! dir, opened on first use rather than at every start. Opening a new pool makes an XFS image
//! and a loop mount (where the data dir's file system cannot clone files), which a server that
//! never sees a volume should not leave on the host; a data dir whose pool exists already (a
//! restart, a reboot) opens it at once, so volumes attached before keep their files. A clean
//! stop closes the pool (unmounts the image) unless a volume is still in use.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use async_trait::async_trait;
use gureum_core::host::{HostError, HostResult, Volumes};
use gureum_ebs::{EbsPool, PoolOptions};

/// The pool of one data dir, opened when first needed.
pub struct LazyPool {
    data_dir: PathBuf,
    pool: OnceLock<EbsPool>,
    opening: Mutex<()>,
}

/// The pool this process opened, kept to close it at a clean stop.
static OPENED: OnceLock<Arc<LazyPool>> = OnceLock::new();

impl LazyPool {
    /// The pool of `data_dir`: opened now if it exists already, else on first use. `None` if
    /// this host cannot keep volumes (no `mkfs.xfs` where the data dir cannot clone files),
    /// said once in the log; `CreateVolume` then answers `InsufficientVolumeCapacity`.
    pub fn for_data_dir(data_dir: &Path) -> Option<Arc<LazyPool>> {
        let lazy = Arc::new(LazyPool {
            data_dir: data_dir.to_path_buf(),
            pool: OnceLock::new(),
            opening: Mutex::new(()),
        });
        if Self::exists(data_dir) {
            if let Err(e) = lazy.open() {
                tracing::warn!(error = %e, "the EBS pool of this data dir cannot be opened: volumes are unavailable");
                return None;
            }
        } else if let Some(why) = unavailable_reason() {
            tracing::warn!(%why, "EBS volumes are unavailable");
            return None;
        }
        let _ = OPENED.set(lazy.clone());
        Some(lazy)
    }

    fn exists(data_dir: &Path) -> bool {
        data_dir.join("ebs").is_dir() || data_dir.join(gureum_ebs::IMAGE_NAME).exists()
    }

    /// The open pool, opening it first if needed. Blocking.
    fn open(&self) -> HostResult<&EbsPool> {
        if let Some(p) = self.pool.get() {
            return Ok(p);
        }
        let _one = self.opening.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(p) = self.pool.get() {
            return Ok(p);
        }
        let pool = EbsPool::open(&self.data_dir, &PoolOptions::default())?;
        Ok(self.pool.get_or_init(|| pool))
    }

    async fn pool(self: &Arc<Self>) -> HostResult<&EbsPool> {
        if let Some(p) = self.pool.get() {
            return Ok(p);
        }
        let me = self.clone();
        tokio::task::spawn_blocking(move || me.open().map(|_| ()))
            .await
            .map_err(|e| HostError::Driver(format!("opening the EBS pool: {e}")))??;
        Ok(self.pool.get().expect("opened"))
    }
}

/// Why a new pool could not be made here, if it could not: its XFS image needs `mkfs.xfs`
/// (xfsprogs, in the core package group).
fn unavailable_reason() -> Option<String> {
    let found = ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
        .iter()
        .any(|d| Path::new(d).join("mkfs.xfs").exists());
    (!found).then(|| "mkfs.xfs (xfsprogs) is not installed".to_string())
}

/// Close the pool this process opened, if any and if nothing uses it (a volume attached to an
/// instance keeps its file open: the pool then stays mounted for the next server).
pub async fn close() {
    let Some(lazy) = OPENED.get() else {
        return;
    };
    let Some(pool) = lazy.pool.get().cloned() else {
        return;
    };
    match tokio::task::spawn_blocking(move || pool.close()).await {
        Ok(Ok(())) => tracing::info!("EBS pool closed"),
        Ok(Err(HostError::Busy(why))) => tracing::info!(%why, "EBS pool stays open: in use"),
        Ok(Err(e)) => tracing::warn!(error = %e, "closing the EBS pool"),
        Err(e) => tracing::warn!(error = %e, "closing the EBS pool"),
    }
}

/// A thin newtype so the trait can be implemented on `Arc<LazyPool>` (the async methods open
/// the pool through a clone of the `Arc`).
pub struct Pool(pub Arc<LazyPool>);

#[async_trait]
impl Volumes for Pool {
    async fn create(&self, volume_id: &str, size_gib: u32, from: Option<&str>) -> HostResult<()> {
        self.0.pool().await?.create(volume_id, size_gib, from).await
    }
    async fn grow(&self, volume_id: &str, size_gib: u32) -> HostResult<()> {
        self.0.pool().await?.grow(volume_id, size_gib).await
    }
    async fn delete(&self, volume_id: &str) -> HostResult<()> {
        self.0.pool().await?.delete(volume_id).await
    }
    async fn snapshot(&self, volume_id: &str, snapshot_id: &str) -> HostResult<()> {
        self.0.pool().await?.snapshot(volume_id, snapshot_id).await
    }
    async fn delete_snapshot(&self, snapshot_id: &str) -> HostResult<()> {
        self.0.pool().await?.delete_snapshot(snapshot_id).await
    }
    async fn list(&self) -> HostResult<(Vec<String>, Vec<String>)> {
        // A pool never opened holds nothing.
        match self.0.pool.get() {
            Some(p) => p.list().await,
            None => Ok((Vec::new(), Vec::new())),
        }
    }
    fn path(&self, volume_id: &str) -> PathBuf {
        match self.0.open() {
            Ok(p) => p.path(volume_id),
            Err(e) => {
                tracing::error!(error = %e, "opening the EBS pool");
                self.0.data_dir.join("ebs/unavailable").join(volume_id)
            }
        }
    }
    fn snapshot_path(&self, snapshot_id: &str) -> PathBuf {
        match self.0.open() {
            Ok(p) => p.snapshot_path(snapshot_id),
            Err(e) => {
                tracing::error!(error = %e, "opening the EBS pool");
                self.0.data_dir.join("ebs/unavailable").join(snapshot_id)
            }
        }
    }
}
