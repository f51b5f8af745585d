//! EBS volumes on a VM: each attached volume is its own NVMe controller in the guest, with the
//! volume id without its dash as the serial number (`vol0123456789abcdef0`), the way AWS's
//! Nitro instances show EBS volumes.
//!
//! A volume is a raw file of the volume pool. At a start QEMU opens the spec's volumes from
//! its command line (as root, before it drops to its user and chroot: [`qemu`]); once it runs
//! it can open nothing by path, so a hot-plug opens the file here and hands QEMU the
//! descriptor over the monitor (`add-fd`, SCM_RIGHTS) into an fdset tagged with the volume id,
//! then `blockdev-add` (`/dev/fdset/N`) and `device_add`. Every step is first looked up
//! (`qom-list /machine/peripheral` for the device `vol-…`, `query-named-block-nodes` for its
//! node `node-vol-…`, `query-fdsets` for the tag), so a repeated attach or detach finishes what
//! an earlier one started.
//!
//! A detach asks the guest to release the device (`device_del`, an ACPI unplug request) and
//! waits for QEMU's `DEVICE_DELETED`. Linux guests release an NVMe device even with a file
//! system mounted on it, so whether the guest still uses it is read from the volume itself
//! first: a journaled ext2/3/4 file system mounted read-write carries the `needs_recovery` flag
//! in its superblock until it is unmounted cleanly; if the flag is set and the file system was
//! mounted since the attach (its mount count changed: a flag left by an earlier crash is not
//! this guest's doing), the detach answers busy, as AWS's does, unless forced. Other file
//! systems (XFS, btrfs, unjournaled ext2) cannot be seen from the host this way: they are
//! detached under the guest, as a forced detach would.
//!
//! `<vm dir>/volumes.json` records the volumes the instance has (written atomically), so a new
//! gureum process knows their files and mount-count baselines.

use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::error::{VmError, VmResult};
use crate::qmp::Qmp;
use crate::VmDriver;

/// How long a detach waits for the guest to release the device.
pub const DETACH_WAIT: Duration = Duration::from_secs(10);
/// How long a detach waits for QEMU to let go of an unplugged volume's block node.
const RELEASE_WAIT: Duration = Duration::from_secs(5);

/// One volume attached to an instance, as the record keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Volume {
    /// `vol-…`: also the QEMU device's id.
    pub volume_id: String,
    /// The device name the attachment asked for (`/dev/sdf`); the guest names NVMe devices
    /// itself (`/dev/nvmeXn1`), as on Nitro.
    pub device: String,
    /// The volume's raw file.
    pub path: PathBuf,
    pub read_only: bool,
    /// The ext2/3/4 mount count when it was attached (`None`: no such file system then).
    #[serde(default)]
    pub mounts_at_attach: Option<u16>,
}

impl Volume {
    pub fn new(volume_id: &str, device: &str, path: &Path, read_only: bool) -> Volume {
        Volume {
            volume_id: volume_id.to_string(),
            device: device.to_string(),
            path: path.to_path_buf(),
            read_only,
            mounts_at_attach: None,
        }
    }

    /// The block node's name in QEMU.
    pub fn node_name(&self) -> String {
        node_name(&self.volume_id)
    }

    /// The NVMe serial number: the id without its dash, as Nitro shows it (20 characters, the
    /// field's size).
    pub fn serial(&self) -> String {
        self.volume_id.replacen('-', "", 1)
    }

    /// `blockdev-add`'s (and `-blockdev`'s) options, the raw node over a `file` node named
    /// `filename` (a path, or `/dev/fdset/N`).
    pub(crate) fn blockdev(&self, filename: &str, direct: bool) -> Value {
        json!({
            "driver": "raw",
            "node-name": self.node_name(),
            "read-only": self.read_only,
            "discard": "unmap",
            "cache": { "direct": direct },
            "file": {
                "driver": "file",
                "filename": filename,
                "cache": { "direct": direct },
            },
        })
    }

    /// `device_add`'s (and `-device`'s) options: one NVMe controller whose namespace 1 is the
    /// volume.
    pub(crate) fn device(&self) -> Value {
        json!({
            "driver": "nvme",
            "id": self.volume_id,
            "drive": self.node_name(),
            "serial": self.serial(),
        })
    }
}

fn node_name(volume_id: &str) -> String {
    format!("node-{volume_id}")
}

/// Whether `volume_id` is an id QEMU takes as a device id and whose serial fits NVMe's
/// 20 characters (`vol-` and hex digits).
pub fn valid_id(volume_id: &str) -> bool {
    volume_id
        .strip_prefix("vol-")
        .is_some_and(|h| !h.is_empty() && h.len() <= 17 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Opens a volume's file for QEMU: `O_DIRECT` (the guest's writes then reach the file as the
/// guest flushes them, never sitting in the host's page cache) where the file system allows it,
/// else buffered. Returns the file and whether it is direct.
pub(crate) fn open(path: &Path, read_only: bool) -> VmResult<(std::fs::File, bool)> {
    let open = |direct: bool| {
        let mut o = std::fs::OpenOptions::new();
        o.read(true).write(!read_only);
        if direct {
            o.custom_flags(nix::fcntl::OFlag::O_DIRECT.bits());
        }
        o.open(path)
    };
    match open(true) {
        Ok(f) => Ok((f, true)),
        // tmpfs (before Linux 6.6) and some others refuse O_DIRECT.
        Err(e) if e.raw_os_error() == Some(nix::libc::EINVAL) => open(false)
            .map(|f| (f, false))
            .map_err(|e| VmError::io("opening", path, e)),
        Err(e) => Err(VmError::io("opening", path, e)),
    }
}

/// What the host can tell of an ext2/3/4 file system on a volume.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ExtState {
    pub mounts: u16,
    /// Journaled and not cleanly unmounted: mounted read-write now (or crashed while it was).
    pub needs_recovery: bool,
}

/// Reads the ext2/3/4 superblock (1024 bytes at offset 1024), if there is one.
pub(crate) fn ext_state(path: &Path) -> Option<ExtState> {
    use std::os::unix::fs::FileExt;
    let f = std::fs::File::open(path).ok()?;
    let mut sb = [0u8; 1024];
    f.read_exact_at(&mut sb, 1024).ok()?;
    parse_ext_superblock(&sb)
}

fn parse_ext_superblock(sb: &[u8; 1024]) -> Option<ExtState> {
    let le16 = |o: usize| u16::from_le_bytes([sb[o], sb[o + 1]]);
    let le32 = |o: usize| u32::from_le_bytes([sb[o], sb[o + 1], sb[o + 2], sb[o + 3]]);
    // s_magic, s_mnt_count, s_feature_compat (HAS_JOURNAL), s_feature_incompat (RECOVER).
    if le16(0x38) != 0xef53 {
        return None;
    }
    let journal = le32(0x5c) & 0x4 != 0;
    let recover = le32(0x60) & 0x4 != 0;
    Some(ExtState {
        mounts: le16(0x34),
        needs_recovery: journal && recover,
    })
}

impl Volume {
    /// Whether the guest has the volume's file system mounted (see the module's docs).
    pub(crate) fn in_use(&self) -> bool {
        match ext_state(&self.path) {
            Some(s) => s.needs_recovery && Some(s.mounts) != self.mounts_at_attach,
            None => false,
        }
    }

    /// Takes the mount-count baseline of an attach.
    pub(crate) fn baseline(mut self) -> Volume {
        self.mounts_at_attach = ext_state(&self.path).map(|s| s.mounts);
        self
    }
}

/// The instance's record of its volumes.
pub(crate) fn record(dir: &Path) -> VmResult<Vec<Volume>> {
    let path = dir.join("volumes.json");
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map_err(|e| VmError::Image(format!("{}: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(VmError::io("reading", &path, e)),
    }
}

/// Replaces the record (a temporary file renamed over it, so a crash leaves the old or the new
/// one).
pub(crate) fn write_record(dir: &Path, volumes: &[Volume]) -> VmResult<()> {
    let path = dir.join("volumes.json");
    let tmp = dir.join("volumes.json.tmp");
    let text = serde_json::to_vec_pretty(volumes).expect("volumes serialise");
    std::fs::write(&tmp, text).map_err(|e| VmError::io("writing", &tmp, e))?;
    std::fs::rename(&tmp, &path).map_err(|e| VmError::io("renaming", &tmp, e))
}

/// The record with `volume` in it (replacing one of the same id).
pub(crate) fn with(mut volumes: Vec<Volume>, volume: Volume) -> Vec<Volume> {
    volumes.retain(|v| v.volume_id != volume.volume_id);
    volumes.push(volume);
    volumes
}

/// The ids of the devices the user added (`qom-list /machine/peripheral`).
async fn devices(q: &mut Qmp) -> VmResult<Vec<String>> {
    let list = q
        .execute("qom-list", Some(json!({ "path": "/machine/peripheral" })))
        .await?;
    Ok(list
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["type"].as_str().is_some_and(|t| t.starts_with("child<")))
        .filter_map(|p| p["name"].as_str().map(str::to_string))
        .collect())
}

async fn has_node(q: &mut Qmp, node: &str) -> VmResult<bool> {
    let nodes = q
        .execute("query-named-block-nodes", Some(json!({ "flat": true })))
        .await?;
    Ok(nodes
        .as_array()
        .into_iter()
        .flatten()
        .any(|n| n["node-name"] == node))
}

/// The fdsets tagged with `volume_id`.
async fn fdsets(q: &mut Qmp, volume_id: &str) -> VmResult<Vec<u64>> {
    let sets = q.execute("query-fdsets", None).await?;
    Ok(sets
        .as_array()
        .into_iter()
        .flatten()
        .filter(|s| {
            s["fds"]
                .as_array()
                .is_some_and(|fds| fds.iter().any(|f| f["opaque"] == volume_id))
        })
        .filter_map(|s| s["fdset-id"].as_u64())
        .collect())
}

/// Whether the running QEMU has `volume_id` plugged in.
pub(crate) async fn plugged(q: &mut Qmp, volume_id: &str) -> VmResult<bool> {
    Ok(devices(q).await?.iter().any(|d| d == volume_id))
}

/// Hot-plugs `volume` into the running QEMU behind `q`. Idempotent.
pub(crate) async fn plug(q: &mut Qmp, volume: &Volume) -> VmResult<()> {
    if plugged(q, &volume.volume_id).await? {
        return Ok(());
    }
    let node = volume.node_name();
    if !has_node(q, &node).await? {
        let (file, direct) = open(&volume.path, volume.read_only)?;
        let set = match fdsets(q, &volume.volume_id).await?.first() {
            Some(&set) => set,
            None => {
                let added = q
                    .execute_with_fd(
                        "add-fd",
                        Some(json!({ "opaque": volume.volume_id })),
                        file.as_fd(),
                    )
                    .await?;
                added["fdset-id"]
                    .as_u64()
                    .ok_or_else(|| VmError::Qmp(format!("add-fd: no fdset-id in {added}")))?
            }
        };
        drop(file);
        let filename = format!("/dev/fdset/{set}");
        q.execute("blockdev-add", Some(volume.blockdev(&filename, direct)))
            .await?;
    }
    if let Err(e) = q.execute("device_add", Some(volume.device())).await {
        // Leave nothing half-plugged: the node and the descriptor go with the failure.
        let _ = release(q, &volume.volume_id).await;
        return Err(e);
    }
    Ok(())
}

/// Asks the guest to release `volume_id` and waits up to `wait` for it; returns whether the
/// device is gone. Idempotent (a device not plugged is gone; one whose unplug is pending is
/// waited for).
pub(crate) async fn unplug(q: &mut Qmp, volume_id: &str, wait: Duration) -> VmResult<bool> {
    if !plugged(q, volume_id).await? {
        return Ok(true);
    }
    match q
        .execute("device_del", Some(json!({ "id": volume_id })))
        .await
    {
        Ok(_) => {}
        // An earlier detach asked already: keep waiting for the guest.
        Err(VmError::Qmp(why)) if why.contains("in the process of unplug") => {}
        Err(e) => return Err(e),
    }
    let deadline = Instant::now() + wait;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        // The event says it at once; the device list says it for an event sent to an earlier
        // connection.
        let slice = left.min(Duration::from_millis(500));
        if q.wait_event("DEVICE_DELETED", |d| d["device"] == volume_id, slice)
            .await?
            || !plugged(q, volume_id).await?
        {
            return Ok(true);
        }
        if left.is_zero() {
            return Ok(false);
        }
    }
}

/// Removes the block node and the descriptor of an unplugged volume. Idempotent.
pub(crate) async fn release(q: &mut Qmp, volume_id: &str) -> VmResult<()> {
    let node = node_name(volume_id);
    // QEMU lets go of the node when the unplugged device is finalised, which can come a moment
    // after DEVICE_DELETED (its memory regions are freed after an RCU grace period).
    let deadline = Instant::now() + RELEASE_WAIT;
    while has_node(q, &node).await? {
        match q
            .execute("blockdev-del", Some(json!({ "node-name": node })))
            .await
        {
            Ok(_) => break,
            Err(VmError::Qmp(why)) if why.contains("in use") && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => return Err(e),
        }
    }
    for set in fdsets(q, volume_id).await? {
        q.execute("remove-fd", Some(json!({ "fdset-id": set })))
            .await?;
    }
    Ok(())
}

/// The QEMU arguments that give a starting guest `volumes` (files opened by QEMU itself, as
/// root, before it drops privileges). `direct` says, per volume, whether its file takes
/// `O_DIRECT`.
pub(crate) fn args(volumes: &[(Volume, bool)]) -> Vec<String> {
    let mut a = Vec::new();
    for (v, direct) in volumes {
        a.push("-blockdev".to_string());
        a.push(
            v.blockdev(&v.path.display().to_string(), *direct)
                .to_string(),
        );
        a.push("-device".to_string());
        a.push(v.device().to_string());
    }
    a
}

/// A start's volumes: each checked (its id, its file opened to see whether it takes
/// `O_DIRECT`) with its mount-count baseline, and recorded as the instance's.
pub(crate) fn for_start(dir: &Path, volumes: &[Volume]) -> VmResult<Vec<(Volume, bool)>> {
    let mut out = Vec::new();
    for v in volumes {
        check_id(&v.volume_id)?;
        let (_, direct) = open(&v.path, v.read_only)?;
        out.push((v.clone().baseline(), direct));
    }
    let record: Vec<Volume> = out.iter().map(|(v, _)| v.clone()).collect();
    write_record(dir, &record)?;
    Ok(out)
}

fn check_id(volume_id: &str) -> VmResult<()> {
    if valid_id(volume_id) {
        return Ok(());
    }
    Err(VmError::Invalid {
        what: "volume id",
        why: format!("{volume_id:?} is not vol- and up to 17 hex digits"),
    })
}

impl VmDriver {
    /// The volumes the instance has (its record).
    pub fn volumes(&self, id: &str) -> VmResult<Vec<Volume>> {
        record(&self.dir(id))
    }

    /// The volumes plugged into the instance's running QEMU, by id (none if it is not
    /// running).
    pub async fn plugged_volumes(&self, id: &str) -> VmResult<Vec<String>> {
        if self.pid(id).is_none() {
            return Ok(Vec::new());
        }
        let mut q = Qmp::connect(&self.dir(id).join("qmp.sock")).await?;
        let mut ids = devices(&mut q).await?;
        ids.retain(|d| d.starts_with("vol-"));
        ids.sort();
        Ok(ids)
    }

    /// Shows `volume` to the guest: hot-plugged at once if it runs, else recorded (the next
    /// start's spec carries it). Idempotent.
    pub async fn attach_volume(&self, id: &str, volume: &Volume) -> VmResult<()> {
        check_id(&volume.volume_id)?;
        let lock = self.lock(id);
        let _g = lock.lock().await;
        let dir = self.dir(id);
        if !dir.is_dir() {
            return Err(VmError::NotFound(id.to_string()));
        }
        let recorded = record(&dir)?;
        // A repeated attach keeps the first one's baseline.
        let volume = match recorded.iter().find(|v| v.volume_id == volume.volume_id) {
            Some(old) => Volume {
                mounts_at_attach: old.mounts_at_attach,
                ..volume.clone()
            },
            None => volume.clone().baseline(),
        };
        if self.pid(id).is_some() {
            let t = Instant::now();
            let mut q = Qmp::connect(&dir.join("qmp.sock")).await?;
            plug(&mut q, &volume).await?;
            tracing::info!(
                instance = %id,
                volume = %volume.volume_id,
                ms = t.elapsed().as_millis() as u64,
                "volume hot-plugged"
            );
        }
        write_record(&dir, &with(recorded, volume))
    }

    /// Takes `volume_id` away from the guest. A running guest must release it (see the
    /// module's docs): unless `force`, one whose file system is still mounted is left attached
    /// and the answer is busy. A guest that does not release it within [`DETACH_WAIT`] keeps
    /// it for now (busy, or a timeout if forced); a repeated detach goes on waiting.
    /// Idempotent.
    pub async fn detach_volume(&self, id: &str, volume_id: &str, force: bool) -> VmResult<()> {
        let lock = self.lock(id);
        let _g = lock.lock().await;
        let dir = self.dir(id);
        if !dir.is_dir() {
            return Ok(());
        }
        let mut recorded = record(&dir)?;
        if self.pid(id).is_some() {
            let t = Instant::now();
            let mut q = Qmp::connect(&dir.join("qmp.sock")).await?;
            let mounted = recorded
                .iter()
                .any(|v| v.volume_id == volume_id && v.in_use());
            if !force && mounted && plugged(&mut q, volume_id).await? {
                return Err(VmError::Busy(format!("volume {volume_id}")));
            }
            if !unplug(&mut q, volume_id, DETACH_WAIT).await? {
                return Err(if force {
                    VmError::Timeout(format!(
                        "the guest did not release volume {volume_id} within {} s",
                        DETACH_WAIT.as_secs()
                    ))
                } else {
                    VmError::Busy(format!("volume {volume_id}"))
                });
            }
            release(&mut q, volume_id).await?;
            tracing::info!(
                instance = %id,
                volume = %volume_id,
                ms = t.elapsed().as_millis() as u64,
                "volume unplugged"
            );
        }
        recorded.retain(|v| v.volume_id != volume_id);
        write_record(&dir, &recorded)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn superblock(mounts: u16, journal: bool, recover: bool) -> [u8; 1024] {
        let mut sb = [0u8; 1024];
        sb[0x38..0x3a].copy_from_slice(&0xef53u16.to_le_bytes());
        sb[0x34..0x36].copy_from_slice(&mounts.to_le_bytes());
        sb[0x5c] = if journal { 0x4 } else { 0 };
        sb[0x60] = if recover { 0x4 | 0x40 } else { 0x40 };
        sb
    }

    #[test]
    fn the_superblock_tells_a_mounted_journaled_file_system() {
        assert_eq!(parse_ext_superblock(&[0u8; 1024]), None);
        let s = parse_ext_superblock(&superblock(3, true, true)).unwrap();
        assert_eq!(
            s,
            ExtState {
                mounts: 3,
                needs_recovery: true
            }
        );
        assert!(
            !parse_ext_superblock(&superblock(3, true, false))
                .unwrap()
                .needs_recovery
        );
        // Without a journal the flag means nothing.
        assert!(
            !parse_ext_superblock(&superblock(3, false, true))
                .unwrap()
                .needs_recovery
        );
    }

    #[test]
    fn in_use_needs_a_mount_since_the_attach() {
        let dir = std::env::temp_dir().join(format!("gureum-vm-vols-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("vol.raw");
        let write = |sb: [u8; 1024]| {
            let mut bytes = vec![0u8; 4096];
            bytes[1024..2048].copy_from_slice(&sb);
            std::fs::write(&path, bytes).unwrap();
        };
        write([0u8; 1024]);
        let v = Volume::new("vol-0123456789abcdef0", "/dev/sdf", &path, false).baseline();
        assert_eq!(v.mounts_at_attach, None);
        assert!(!v.in_use());
        // Formatted and mounted in the guest.
        write(superblock(1, true, true));
        assert!(v.in_use());
        write(superblock(1, true, false));
        assert!(!v.in_use());
        // A flag left by a crash elsewhere, not mounted here since: not busy.
        write(superblock(4, true, true));
        let v = v.baseline();
        assert_eq!(v.mounts_at_attach, Some(4));
        assert!(!v.in_use());
        write(superblock(5, true, true));
        assert!(v.in_use());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn names_follow_nitro_and_qemu_rules() {
        let v = Volume::new(
            "vol-0123456789abcdef0",
            "/dev/sdf",
            Path::new("/p/v"),
            false,
        );
        assert_eq!(v.serial(), "vol0123456789abcdef0");
        assert_eq!(v.serial().len(), 20);
        assert_eq!(v.node_name(), "node-vol-0123456789abcdef0");
        assert_eq!(v.device()["id"], "vol-0123456789abcdef0");
        assert_eq!(
            v.blockdev("/dev/fdset/3", true)["file"]["filename"],
            "/dev/fdset/3"
        );
        assert!(valid_id("vol-0123456789abcdef0"));
        assert!(valid_id("vol-12345678"));
        for bad in [
            "vol-",
            "vol-0123456789abcdef01",
            "vol-xyz",
            "i-0123",
            "vol-0,id=x",
        ] {
            assert!(!valid_id(bad), "{bad}");
        }
    }

    #[test]
    fn the_record_round_trips_and_replaces_by_id() {
        let dir = std::env::temp_dir().join(format!("gureum-vm-rec-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert!(record(&dir).unwrap().is_empty());
        let a = Volume::new("vol-0a", "/dev/sdf", Path::new("/p/a"), false);
        let mut b = Volume::new("vol-0b", "/dev/sdg", Path::new("/p/b"), true);
        let list = with(with(Vec::new(), a.clone()), b.clone());
        write_record(&dir, &list).unwrap();
        assert_eq!(record(&dir).unwrap(), vec![a.clone(), b.clone()]);
        b.device = "/dev/sdh".into();
        let list = with(record(&dir).unwrap(), b.clone());
        assert_eq!(list, vec![a, b]);
        assert!(!dir.join("volumes.json.tmp").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
