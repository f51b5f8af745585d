//! lxcfs, the FUSE file system that makes /proc/meminfo, /proc/cpuinfo, /proc/stat,
//! /proc/uptime, ... and /sys/devices/system/cpu/online reflect the reading process's cgroup,
//! so `free -m` in a guest shows its memory limit and `uptime` its own boot.
//!
//! lxcfs is a host daemon shared by every instance, not owned by the driver: if one is already
//! mounted (Debian's lxcfs.service, or one we started earlier) it is used as is; otherwise the
//! driver starts `lxcfs -l <dir>` in its own session (`setsid -f`), detached from the gureum
//! process, so it outlives a gureum restart. If lxcfs dies, the guests' bind mounts of it go
//! stale ("transport endpoint is not connected") until the instance is restarted; `ensure`
//! remounts a dead mount point so that new starts work again.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::fcntl::{Flock, FlockArg};
use nix::mount::{umount2, MntFlags};

use crate::error::RuntimeError;
use crate::mounts;

/// The default mount point, the one Debian's lxcfs.service uses.
pub const DEFAULT_LXCFS_DIR: &str = "/var/lib/lxcfs";

/// Serialises lxcfs start-up between drivers (and processes) on one host.
const LOCK_FILE: &str = "/run/gureum-lxcfs.lock";

/// Whether an lxcfs mount answers.
pub(crate) fn healthy(dir: &Path) -> bool {
    std::fs::metadata(dir.join("proc/meminfo")).is_ok()
}

/// Finds a working lxcfs mount, or starts lxcfs at `dir`. Returns its mount point.
pub(crate) fn ensure(dir: &Path) -> Result<PathBuf, RuntimeError> {
    let lock_file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(LOCK_FILE)
        .map_err(|e| RuntimeError::io("open", LOCK_FILE, e))?;
    let _lock = Flock::lock(lock_file, FlockArg::LockExclusive)
        .map_err(|(_, e)| RuntimeError::io("lock", LOCK_FILE, e.into()))?;

    let table = mounts::mount_table()?;
    let lxcfs_mounts: Vec<PathBuf> = table
        .iter()
        .filter(|m| m.fs_type == "fuse.lxcfs")
        .map(|m| m.mount_point.clone())
        .collect();
    if let Some(found) = lxcfs_mounts.iter().find(|m| healthy(m)) {
        return Ok(found.clone());
    }
    // A dead lxcfs leaves its mount behind; clear it before mounting a new one there.
    for stale in lxcfs_mounts.iter().filter(|m| m.as_path() == dir) {
        tracing::warn!(path = %stale.display(), "unmounting a dead lxcfs mount");
        umount2(stale, MntFlags::MNT_DETACH)
            .map_err(|e| RuntimeError::io("unmount stale lxcfs", stale, e.into()))?;
    }
    std::fs::create_dir_all(dir).map_err(|e| RuntimeError::io("create", dir, e))?;
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open("/var/log/gureum-lxcfs.log")
        .map(Stdio::from)
        .unwrap_or_else(|_| Stdio::null());
    // `setsid -f`: lxcfs (which stays in the foreground) runs in a new session, reparented
    // away from us, so neither our exit nor a signal to our process group reaches it.
    let status = Command::new("setsid")
        .args(["-f", "lxcfs", "-l"])
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .status()
        .map_err(|source| RuntimeError::MissingTool {
            program: "setsid".into(),
            source,
        })?;
    if !status.success() {
        return Err(RuntimeError::Lxcfs(format!(
            "setsid -f lxcfs exited {status}"
        )));
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if mounts::mount_table()?
            .iter()
            .any(|m| m.fs_type == "fuse.lxcfs" && m.mount_point == dir)
            && healthy(dir)
        {
            tracing::info!(path = %dir.display(), "started lxcfs");
            return Ok(dir.to_path_buf());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Err(RuntimeError::Lxcfs(format!(
        "lxcfs did not mount {} within 10 s (see /var/log/gureum-lxcfs.log)",
        dir.display()
    )))
}

/// Whether the lxcfs binary is installed.
pub(crate) fn installed() -> bool {
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|p| p.join("lxcfs").is_file()))
        .unwrap_or(false)
}
