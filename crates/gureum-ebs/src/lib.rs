//! gureum's EBS driver: [`EbsPool`], where EBS volumes' and snapshots' bytes live on a host
//! ([`Volumes`]).
//!
//! A volume is a sparse raw file `volumes/vol-….img` of exactly its size; a snapshot is a
//! reflink clone (FICLONE) of a volume, `snapshots/snap-….img`, and a volume made from a
//! snapshot is a clone of it grown to its size. Clones share their blocks until either side
//! writes (copy-on-write), so a snapshot of a written 8 GiB volume costs a metadata change,
//! not a copy, and takes well under a second. FICLONE first writes back the source's dirty
//! page-cache pages and then swaps extents with both files' I/O locks held, so a snapshot of
//! an attached volume that a guest is writing to holds every write that completed before it
//! and none that started after: crash-consistent.
//!
//! The pool directory `<data dir>/ebs` has to be on a file system that clones files. If it
//! already is (XFS with reflinks, btrfs), it is used as it is ([`Backing::Native`]).
//! Otherwise (ext4, the usual root file system) the pool is an XFS file system with reflinks
//! in a sparse image file `<data dir>/ebs.xfs`, loop-mounted at `<data dir>/ebs` with the
//! loop device doing direct I/O on the image ([`Backing::Image`]): made once, mounted again
//! by [`EbsPool::open`] after a host reboot, reused as it is after a server restart (the
//! mount outlives the server), and never mounted twice. [`EbsPool::close`] unmounts it and
//! frees its loop device when nothing uses it.
//!
//! Crash safety: a file appears under its final name only complete: it is made under a
//! temporary name (`.tmp-…`), synced, then linked to its final name (a link never replaces a
//! file already there, so two racing creates cannot swap a volume under a guest) and the
//! temporary name removed. A `kill -9` or a power loss mid-operation leaves at most a
//! temporary file, which the next `open` removes. Every operation is idempotent, keyed by
//! its id, so the core can repeat it after a crash.
//!
//! `open` and `close` block (they run `losetup`, `mkfs.xfs`, mount(2)); the [`Volumes`]
//! methods run their file work on tokio's blocking pool.

mod host;
mod names;

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use gureum_host_api::{HostError, HostResult, Volumes};

use names::Kind;

/// The pool directory's name in the data dir.
const POOL_DIR: &str = "ebs";
/// The XFS image's name in the data dir, when the pool needs one.
pub const IMAGE_NAME: &str = "ebs.xfs";
/// The lock file that keeps two `open`/`close` calls on one data dir apart.
const LOCK_NAME: &str = "ebs.lock";
/// The image's size when [`PoolOptions::image_size`] does not say: at least this, or the
/// host file system's size if that is larger. The image is sparse, so its size is only a
/// ceiling: it takes the space its volumes have written, nothing more.
pub const MIN_DEFAULT_IMAGE_SIZE: u64 = 1 << 40;
/// XFS refuses smaller file systems.
const MIN_IMAGE_SIZE: u64 = 512 << 20;

const GIB: u64 = 1 << 30;

/// How to open a pool.
#[derive(Debug, Clone, Default)]
pub struct PoolOptions {
    /// The size of a new XFS image in bytes (sparse); `None`: the larger of 1 TiB and the
    /// size of the file system holding the data dir. An existing image keeps its size.
    pub image_size: Option<u64>,
}

/// What holds the pool's files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backing {
    /// The pool directory's own file system clones files: it is used as it is.
    Native,
    /// An XFS image loop-mounted at the pool directory.
    Image {
        image: PathBuf,
        /// The loop device (`/dev/loop3`).
        device: String,
        /// Whether the loop device does direct I/O on the image (no second page cache).
        direct_io: bool,
    },
}

/// The EBS pool of one data dir: `<data dir>/ebs/{volumes,snapshots}`.
#[derive(Clone)]
pub struct EbsPool {
    inner: Arc<Inner>,
}

struct Inner {
    data_dir: PathBuf,
    root: PathBuf,
    volumes: PathBuf,
    snapshots: PathBuf,
    backing: Backing,
    /// Tells apart the temporary names of one process's operations.
    seq: AtomicU64,
}

/// An exclusive `flock` on the data dir's lock file, released when dropped.
struct Lock(#[allow(dead_code)] File);

fn lock(data_dir: &Path) -> HostResult<Lock> {
    let path = data_dir.join(LOCK_NAME);
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| HostError::io(format!("opening {}", path.display()), e))?;
    rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive)
        .map_err(|e| HostError::io(format!("locking {}", path.display()), e.into()))?;
    Ok(Lock(file))
}

fn create_dir(path: &Path) -> HostResult<()> {
    std::fs::create_dir_all(path)
        .map_err(|e| HostError::io(format!("creating {}", path.display()), e))
}

/// Remove the temporary files (`.tmp-…`) an interrupted operation left in `dir`.
fn remove_temps(dir: &Path) -> HostResult<()> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| HostError::io(format!("reading {}", dir.display()), e))?;
    for entry in entries.flatten() {
        let name = entry.file_name();
        if names::is_temp(&name.to_string_lossy()) {
            let path = entry.path();
            tracing::info!(path = %path.display(), "removing a leftover of an interrupted ebs operation");
            std::fs::remove_file(&path)
                .map_err(|e| HostError::io(format!("removing {}", path.display()), e))?;
        }
    }
    Ok(())
}

fn gib(size_gib: u32) -> u64 {
    u64::from(size_gib) * GIB
}

impl EbsPool {
    /// Open the pool of data dir `dir`, making it (and its XFS image, when the data dir's file
    /// system cannot clone files) on first use, mounting the image again after a reboot and
    /// reusing a mount a previous server left. Removes what interrupted operations left.
    /// Blocking.
    pub fn open(dir: &Path, opts: &PoolOptions) -> HostResult<EbsPool> {
        create_dir(dir)?;
        let data_dir = dir
            .canonicalize()
            .map_err(|e| HostError::io(format!("resolving {}", dir.display()), e))?;
        let _lock = lock(&data_dir)?;
        let root = data_dir.join(POOL_DIR);
        create_dir(&root)?;
        let seq = AtomicU64::new(0);
        let temp = |name: &str| {
            let n = names::temp_name(
                name,
                std::process::id(),
                seq.fetch_add(1, Ordering::Relaxed),
            );
            (data_dir.join(&n), root.join(&n))
        };
        // Before mounting too: a probe interrupted before the image was mounted left its
        // files in the directory the image mounts over.
        remove_temps(&data_dir)?;
        remove_temps(&root)?;
        let backing = settle(&data_dir, &root, opts, &temp)?;
        let volumes = root.join("volumes");
        let snapshots = root.join("snapshots");
        for dir in [&root, &volumes, &snapshots] {
            create_dir(dir)?;
            remove_temps(dir)?;
        }
        tracing::info!(pool = %root.display(), ?backing, "ebs pool open");
        Ok(EbsPool {
            inner: Arc::new(Inner {
                data_dir,
                root,
                volumes,
                snapshots,
                backing,
                seq,
            }),
        })
    }

    /// Unmount the pool's image and free its loop device, if the pool has one; `Busy` (and
    /// nothing changed) while something still uses it (an open volume file, a shell in it).
    /// The next `open` mounts it again. Blocking.
    pub fn close(self) -> HostResult<()> {
        let _lock = lock(&self.inner.data_dir)?;
        let Backing::Image { image, .. } = &self.inner.backing else {
            return Ok(());
        };
        host::unmount(&self.inner.root)?;
        // Every loop device of the image: the one just unmounted, and any an interrupted open
        // left attached.
        for device in host::loops_of(image)? {
            host::detach_loop(&device)?;
        }
        // A device someone still has open (udev probing it after the unmount) is only marked
        // to go away when they close it: wait for that, so "closed" means nothing is left.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            let left = host::loops_of(image)?;
            if left.is_empty() {
                break;
            }
            if std::time::Instant::now() >= deadline {
                return Err(HostError::Busy(format!(
                    "loop device {} of {}",
                    left.join(", "),
                    image.display()
                )));
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        tracing::info!(pool = %self.inner.root.display(), "ebs pool closed");
        Ok(())
    }

    /// What holds the pool's files.
    pub fn backing(&self) -> &Backing {
        &self.inner.backing
    }

    /// The pool directory (`<data dir>/ebs`).
    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    /// Run `f` on tokio's blocking pool (the operations do file I/O and ioctls that can take
    /// a moment on a large volume).
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Inner) -> HostResult<T> + Send + 'static,
    ) -> HostResult<T> {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || f(&inner))
            .await
            .map_err(|e| HostError::Driver(format!("ebs pool task failed: {e}")))?
    }
}

/// Find or make what holds the pool at `root`, mounting the image if it must.
fn settle(
    data_dir: &Path,
    root: &Path,
    opts: &PoolOptions,
    temp: &dyn Fn(&str) -> (PathBuf, PathBuf),
) -> HostResult<Backing> {
    let image = data_dir.join(IMAGE_NAME);
    let image_exists = image.exists();
    let loops = if image_exists {
        host::loops_of(&image)?
    } else {
        Vec::new()
    };
    let mounts = host::mounts()?;
    let backing = |device: &str| Backing::Image {
        image: image.clone(),
        device: device.to_string(),
        direct_io: host::loop_direct_io(device),
    };
    if let Some(m) = mounts.iter().rev().find(|m| m.mount_point == root) {
        if loops.contains(&m.source) {
            // A previous server's mount (a restart): reuse it.
            return Ok(backing(&m.source));
        }
        if image_exists {
            return Err(HostError::Driver(format!(
                "{} is mounted over by {} ({}), but the ebs pool lives in {}",
                root.display(),
                m.source,
                m.fstype,
                image.display()
            )));
        }
        if host::supports_reflink(root, |n| temp(n).1)? {
            return Ok(Backing::Native);
        }
        return Err(HostError::Driver(format!(
            "{} is a mount of {} ({}), which cannot clone files",
            root.display(),
            m.source,
            m.fstype
        )));
    }
    if !image_exists {
        if host::supports_reflink(root, |n| temp(n).1)? {
            return Ok(Backing::Native);
        }
        let size = match opts.image_size {
            Some(size) => size,
            None => MIN_DEFAULT_IMAGE_SIZE.max(host::fs_size(data_dir)?),
        };
        make_image(&image, size, &temp(IMAGE_NAME).0)?;
    }
    // The image is the pool: mount it, but never a second time.
    if let Some(m) = mounts.iter().find(|m| loops.contains(&m.source)) {
        return Err(HostError::Busy(format!(
            "{} (already mounted at {})",
            image.display(),
            m.mount_point.display()
        )));
    }
    let hidden = std::fs::read_dir(root)
        .map_err(|e| HostError::io(format!("reading {}", root.display()), e))?
        .next()
        .is_some();
    if hidden {
        return Err(HostError::Driver(format!(
            "{} is not empty; mounting {} there would hide its files",
            root.display(),
            image.display()
        )));
    }
    // An open interrupted between losetup and mount left a device: use it, free any other.
    let (device, made) = match loops.first() {
        Some(device) => (device.clone(), false),
        None => (host::attach_loop(&image)?, true),
    };
    for extra in loops.iter().skip(1) {
        host::detach_loop(extra)?;
    }
    if let Err(error) = host::mount_xfs(&device, root) {
        if made {
            if let Err(cleanup) = host::detach_loop(&device) {
                return Err(HostError::Cleanup {
                    error: Box::new(error),
                    cleanup: Box::new(cleanup),
                });
            }
        }
        return Err(error);
    }
    Ok(backing(&device))
}

/// Make the XFS image under a temporary name, then rename it into place.
fn make_image(image: &Path, size: u64, tmp: &Path) -> HostResult<()> {
    if size < MIN_IMAGE_SIZE {
        return Err(HostError::Invalid {
            what: "ebs image size".into(),
            why: format!("{size} bytes is below XFS's minimum ({MIN_IMAGE_SIZE})"),
        });
    }
    // Whole MiBs (mkfs.xfs wants whole blocks).
    let size = size.div_ceil(1 << 20) << 20;
    let result = (|| {
        let file = host::create_new(tmp)?;
        file.set_len(size)
            .map_err(|e| HostError::io(format!("sizing {}", tmp.display()), e))?;
        drop(file);
        host::mkfs_xfs(tmp)?;
        File::open(tmp)
            .and_then(|f| f.sync_all())
            .map_err(|e| HostError::io(format!("syncing {}", tmp.display()), e))?;
        std::fs::rename(tmp, image)
            .map_err(|e| HostError::io(format!("renaming {} into place", tmp.display()), e))?;
        host::sync_dir(image.parent().unwrap_or(Path::new("/")))
    })();
    match &result {
        Ok(()) => tracing::info!(image = %image.display(), size, "made the ebs pool's xfs image"),
        Err(_) => {
            let _ = std::fs::remove_file(tmp);
        }
    }
    result
}

fn not_found_is_none(r: io::Result<File>) -> io::Result<Option<File>> {
    match r {
        Ok(f) => Ok(Some(f)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

impl Inner {
    fn file(&self, kind: Kind, id: &str) -> PathBuf {
        let dir = match kind {
            Kind::Volume => &self.volumes,
            Kind::Snapshot => &self.snapshots,
        };
        dir.join(names::file_name(id))
    }

    /// Open an existing volume or snapshot (`NotFound` if it has no file).
    fn open_existing(&self, kind: Kind, id: &str, write: bool) -> HostResult<File> {
        let path = self.file(kind, id);
        not_found_is_none(File::options().read(true).write(write).open(&path))
            .map_err(|e| HostError::io(format!("opening {}", path.display()), e))?
            .ok_or_else(|| HostError::NotFound(id.to_string()))
    }

    /// Make `target` if it does not exist: `fill` writes a new file under a temporary name,
    /// which is synced and then linked to `target`.
    fn make(&self, target: &Path, fill: impl FnOnce(&File) -> HostResult<()>) -> HostResult<()> {
        if target.exists() {
            return Ok(());
        }
        let dir = target.parent().expect("pool files are in a directory");
        let final_name = target
            .file_name()
            .expect("pool files have names")
            .to_string_lossy();
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let tmp = dir.join(names::temp_name(&final_name, std::process::id(), seq));
        let result = (|| {
            let file = host::create_new(&tmp)?;
            fill(&file)?;
            file.sync_all()
                .map_err(|e| HostError::io(format!("syncing {}", tmp.display()), e))?;
            // A link, not a rename: it never replaces a file already published under the name
            // (a racing second create of the same volume would otherwise swap the volume a
            // guest already writes to). Someone else's file there is the idempotent success.
            match std::fs::hard_link(&tmp, target) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => {
                    return Err(HostError::io(
                        format!("linking {} to {}", tmp.display(), target.display()),
                        e,
                    ))
                }
            }
            std::fs::remove_file(&tmp)
                .map_err(|e| HostError::io(format!("removing {}", tmp.display()), e))?;
            host::sync_dir(dir)
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result
    }

    /// Remove a volume's or snapshot's file; an absent one is fine.
    fn remove(&self, kind: Kind, id: &str) -> HostResult<()> {
        names::check(kind, id)?;
        let path = self.file(kind, id);
        match std::fs::remove_file(&path) {
            Ok(()) => host::sync_dir(path.parent().expect("pool files are in a directory")),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(HostError::io(format!("removing {}", path.display()), e)),
        }
    }

    fn create(&self, volume_id: &str, size_gib: u32, from: Option<&str>) -> HostResult<()> {
        names::check(Kind::Volume, volume_id)?;
        if let Some(snapshot_id) = from {
            names::check(Kind::Snapshot, snapshot_id)?;
        }
        if size_gib == 0 {
            return Err(HostError::Invalid {
                what: format!("size of {volume_id}"),
                why: "a volume has at least 1 GiB".into(),
            });
        }
        let size = gib(size_gib);
        self.make(&self.file(Kind::Volume, volume_id), |file| {
            if let Some(snapshot_id) = from {
                let source = self.open_existing(Kind::Snapshot, snapshot_id, false)?;
                let len = source
                    .metadata()
                    .map_err(|e| HostError::io(format!("reading {snapshot_id}'s size"), e))?
                    .len();
                if len > size {
                    return Err(HostError::Invalid {
                        what: format!("size of {volume_id}"),
                        why: format!(
                            "{size_gib} GiB is smaller than snapshot {snapshot_id} ({} GiB)",
                            len.div_ceil(GIB)
                        ),
                    });
                }
                rustix::fs::ioctl_ficlone(file, &source).map_err(|e| {
                    HostError::io(format!("cloning {snapshot_id} into {volume_id}"), e.into())
                })?;
            }
            file.set_len(size)
                .map_err(|e| HostError::io(format!("sizing {volume_id}"), e))
        })
    }

    fn grow(&self, volume_id: &str, size_gib: u32) -> HostResult<()> {
        names::check(Kind::Volume, volume_id)?;
        let file = self.open_existing(Kind::Volume, volume_id, true)?;
        let len = file
            .metadata()
            .map_err(|e| HostError::io(format!("reading {volume_id}'s size"), e))?
            .len();
        let size = gib(size_gib);
        if size < len {
            return Err(HostError::Invalid {
                what: format!("size of {volume_id}"),
                why: format!(
                    "{size_gib} GiB is smaller than its {} GiB: volumes never shrink",
                    len.div_ceil(GIB)
                ),
            });
        }
        if size > len {
            // One truncate: the volume has either its old size or its new one.
            file.set_len(size)
                .and_then(|()| file.sync_all())
                .map_err(|e| HostError::io(format!("growing {volume_id}"), e))?;
        }
        Ok(())
    }

    fn snapshot(&self, volume_id: &str, snapshot_id: &str) -> HostResult<()> {
        names::check(Kind::Volume, volume_id)?;
        names::check(Kind::Snapshot, snapshot_id)?;
        self.make(&self.file(Kind::Snapshot, snapshot_id), |file| {
            let source = self.open_existing(Kind::Volume, volume_id, false)?;
            // The file system writes back the volume's dirty pages first and holds both
            // files' I/O locks while it shares the extents: a crash-consistent copy.
            rustix::fs::ioctl_ficlone(file, &source).map_err(|e| {
                HostError::io(format!("cloning {volume_id} into {snapshot_id}"), e.into())
            })
        })
    }

    fn list(&self) -> HostResult<(Vec<String>, Vec<String>)> {
        let ids = |kind: Kind, dir: &Path| -> HostResult<Vec<String>> {
            let entries = std::fs::read_dir(dir)
                .map_err(|e| HostError::io(format!("reading {}", dir.display()), e))?;
            let mut ids: Vec<String> = entries
                .flatten()
                .filter_map(|e| {
                    names::id_of(kind, &e.file_name().to_string_lossy()).map(String::from)
                })
                .collect();
            ids.sort();
            Ok(ids)
        };
        Ok((
            ids(Kind::Volume, &self.volumes)?,
            ids(Kind::Snapshot, &self.snapshots)?,
        ))
    }
}

#[async_trait]
impl Volumes for EbsPool {
    async fn create(&self, volume_id: &str, size_gib: u32, from: Option<&str>) -> HostResult<()> {
        let (id, from) = (volume_id.to_string(), from.map(String::from));
        self.blocking(move |p| p.create(&id, size_gib, from.as_deref()))
            .await
    }

    async fn grow(&self, volume_id: &str, size_gib: u32) -> HostResult<()> {
        let id = volume_id.to_string();
        self.blocking(move |p| p.grow(&id, size_gib)).await
    }

    async fn delete(&self, volume_id: &str) -> HostResult<()> {
        let id = volume_id.to_string();
        self.blocking(move |p| p.remove(Kind::Volume, &id)).await
    }

    async fn snapshot(&self, volume_id: &str, snapshot_id: &str) -> HostResult<()> {
        let (volume, snapshot) = (volume_id.to_string(), snapshot_id.to_string());
        self.blocking(move |p| p.snapshot(&volume, &snapshot)).await
    }

    async fn delete_snapshot(&self, snapshot_id: &str) -> HostResult<()> {
        let id = snapshot_id.to_string();
        self.blocking(move |p| p.remove(Kind::Snapshot, &id)).await
    }

    async fn list(&self) -> HostResult<(Vec<String>, Vec<String>)> {
        self.blocking(|p| p.list()).await
    }

    fn path(&self, volume_id: &str) -> PathBuf {
        self.inner.file(Kind::Volume, volume_id)
    }

    fn snapshot_path(&self, snapshot_id: &str) -> PathBuf {
        self.inner.file(Kind::Snapshot, snapshot_id)
    }
}
