//! The host's cgroup layout as the driver sees it: which mode (v1, hybrid, v2) is in force,
//! where each instance's cgroup directories live in every hierarchy, which CPUs an instance
//! is pinned to, and removing an instance's cgroup trees (the guest's systemd creates
//! sub-cgroups under them, which `runc delete` normally removes, but a crash may not).
//!
//! runc (cgroupfs driver) creates `<hierarchy>/<parent>/<id>` in every mounted hierarchy;
//! on a hybrid host that includes the `name=systemd` v1 hierarchy and the v2 `unified` one.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::statfs::{statfs, CGROUP2_SUPER_MAGIC, CGROUP_SUPER_MAGIC, TMPFS_MAGIC};

use crate::error::RuntimeError;
use crate::mounts;

/// The host's cgroup set-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupMode {
    /// Only v1 hierarchies (a tmpfs on /sys/fs/cgroup with one mount per controller).
    V1,
    /// v1 controllers plus a v2 hierarchy at /sys/fs/cgroup/unified (systemd's "hybrid").
    Hybrid,
    /// The unified v2 hierarchy at /sys/fs/cgroup.
    V2,
}

/// Where cgroup file systems are mounted on every Linux host we support.
pub(crate) const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// Detects the mode the way systemd does: by the file system type of /sys/fs/cgroup and of
/// /sys/fs/cgroup/unified.
pub(crate) fn detect(root: &Path) -> Result<CgroupMode, RuntimeError> {
    let fs = statfs(root).map_err(|e| RuntimeError::io("statfs", root, e.into()))?;
    if fs.filesystem_type() == CGROUP2_SUPER_MAGIC {
        return Ok(CgroupMode::V2);
    }
    if fs.filesystem_type() != TMPFS_MAGIC {
        return Err(RuntimeError::Cgroup(format!(
            "{} is neither cgroup2 nor a tmpfs of v1 hierarchies",
            root.display()
        )));
    }
    let unified = root.join("unified");
    match statfs(&unified) {
        Ok(u) if u.filesystem_type() == CGROUP2_SUPER_MAGIC => Ok(CgroupMode::Hybrid),
        _ => Ok(CgroupMode::V1),
    }
}

/// On v1 and hybrid hosts, systemd in the guest needs the named `name=systemd` hierarchy (it
/// tracks its units there). A host not run by systemd may lack it; mount it then, as LXC does.
pub(crate) fn ensure_systemd_hierarchy(root: &Path) -> Result<(), RuntimeError> {
    let dir = root.join("systemd");
    if let Ok(fs) = statfs(&dir) {
        if fs.filesystem_type() == CGROUP_SUPER_MAGIC {
            return Ok(());
        }
    }
    std::fs::create_dir_all(&dir).map_err(|e| RuntimeError::io("create", &dir, e))?;
    use nix::mount::{mount, MsFlags};
    mount(
        Some("cgroup"),
        &dir,
        Some("cgroup"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some("none,name=systemd"),
    )
    .map_err(|e| RuntimeError::io("mount name=systemd cgroup at", &dir, e.into()))?;
    tracing::info!(path = %dir.display(), "mounted the name=systemd cgroup hierarchy");
    Ok(())
}

/// The process ids all instances together may hold: three quarters of the host's
/// `kernel.pid_max`, so that fork bombs, in one instance or in many at once, always leave the
/// host a quarter to fork with. Each instance's own limit (4096 per vCPU) cannot promise that:
/// with the kernel's default pid_max of 32768 (a host whose init does not raise it, as
/// systemd does to 4194304) one t2.2xlarge, or eight one-vCPU instances, could take them all.
pub(crate) fn parent_pids_limit(pid_max: u64) -> u64 {
    pid_max / 4 * 3
}

/// Caps the pids of the instances' parent cgroup `parent` (made if missing) at
/// [`parent_pids_limit`] of the host's pid_max; a lower limit already there (an operator's)
/// stays. Returns the limit in force.
pub(crate) fn limit_parent_pids(
    root: &Path,
    mode: CgroupMode,
    parent: &str,
) -> Result<u64, RuntimeError> {
    let pid_max_file = Path::new("/proc/sys/kernel/pid_max");
    let pid_max: u64 = std::fs::read_to_string(pid_max_file)
        .map_err(|e| RuntimeError::io("read", pid_max_file, e))?
        .trim()
        .parse()
        .map_err(|_| RuntimeError::Cgroup("kernel.pid_max is not a number".into()))?;
    let dir = match mode {
        CgroupMode::V2 => {
            // The controller must be on in the root for the parent to have pids.max (runc
            // would turn it on anyway, for the instances below it).
            let control = root.join("cgroup.subtree_control");
            std::fs::write(&control, "+pids")
                .map_err(|e| RuntimeError::io("enable pids in", &control, e))?;
            root.join(parent)
        }
        CgroupMode::V1 | CgroupMode::Hybrid => root.join("pids").join(parent),
    };
    std::fs::create_dir_all(&dir).map_err(|e| RuntimeError::io("create", &dir, e))?;
    let file = dir.join("pids.max");
    let current = std::fs::read_to_string(&file).map_err(|e| RuntimeError::io("read", &file, e))?;
    let limit = parent_pids_limit(pid_max);
    match current.trim().parse::<u64>() {
        Ok(lower) if lower <= limit => Ok(lower),
        _ => {
            std::fs::write(&file, limit.to_string())
                .map_err(|e| RuntimeError::io("write", &file, e))?;
            Ok(limit)
        }
    }
}

/// Whether memory+swap can be limited (v1 needs swap accounting, `memory.memsw.*`).
pub(crate) fn swap_accounting(root: &Path, mode: CgroupMode) -> bool {
    match mode {
        CgroupMode::V2 => true,
        CgroupMode::V1 | CgroupMode::Hybrid => {
            root.join("memory/memory.memsw.limit_in_bytes").exists()
        }
    }
}

/// Every mount point of a cgroup hierarchy (v1 or v2) on the host.
fn hierarchy_roots() -> Result<Vec<PathBuf>, RuntimeError> {
    let set: BTreeSet<PathBuf> = mounts::mount_table()?
        .into_iter()
        .filter(|m| m.fs_type == "cgroup" || m.fs_type == "cgroup2")
        .map(|m| m.mount_point)
        .collect();
    Ok(set.into_iter().collect())
}

/// The instance's cgroup directory in every hierarchy, existing or not.
pub(crate) fn instance_dirs(parent: &str, id: &str) -> Result<Vec<PathBuf>, RuntimeError> {
    Ok(hierarchy_roots()?
        .into_iter()
        .map(|root| root.join(parent).join(id))
        .collect())
}

/// The instance's cgroup directories that exist now (leak detection, tests).
pub fn existing_instance_dirs(parent: &str, id: &str) -> Result<Vec<PathBuf>, RuntimeError> {
    Ok(instance_dirs(parent, id)?
        .into_iter()
        .filter(|d| d.is_dir())
        .collect())
}

/// Runs `pid` at idle priority against everything else on the host: moves it into a top-level
/// cpu cgroup `name` with `cpu.idle` set, which the scheduler serves only when no other task
/// wants a CPU. Niceness alone cannot do this (it only ranks tasks within one cgroup), and
/// neither can an idle group under the instances' parent (it would be idle against the
/// instances only, and take its parent's full share from the host's own processes). On
/// kernels without `cpu.idle` (before 5.15) the group gets the smallest weight instead.
/// [`remove_idle_group`] removes the group once it is empty.
pub fn move_to_idle_group(name: &str, pid: u32) -> Result<(), RuntimeError> {
    let root = Path::new(CGROUP_ROOT);
    let mode = detect(root)?;
    if mode == CgroupMode::V2 {
        let control = root.join("cgroup.subtree_control");
        std::fs::write(&control, "+cpu")
            .map_err(|e| RuntimeError::io("enable cpu in", &control, e))?;
    }
    let dir = idle_group_dir(mode, name);
    std::fs::create_dir_all(&dir).map_err(|e| RuntimeError::io("create", &dir, e))?;
    if std::fs::write(dir.join("cpu.idle"), "1").is_err() {
        let (file, weight) = match mode {
            CgroupMode::V2 => ("cpu.weight", "1"),
            CgroupMode::V1 | CgroupMode::Hybrid => ("cpu.shares", "2"),
        };
        let file = dir.join(file);
        std::fs::write(&file, weight).map_err(|e| RuntimeError::io("write", &file, e))?;
    }
    let procs = dir.join("cgroup.procs");
    std::fs::write(&procs, pid.to_string()).map_err(|e| RuntimeError::io("write", &procs, e))?;
    Ok(())
}

/// Removes the group `name` made by [`move_to_idle_group`] if no process is left in it (the
/// kernel refuses otherwise, and that is fine: the next call removes it). Whether it is gone.
pub fn remove_idle_group(name: &str) -> bool {
    let Ok(mode) = detect(Path::new(CGROUP_ROOT)) else {
        return true;
    };
    let dir = idle_group_dir(mode, name);
    let _ = std::fs::remove_dir(&dir);
    !dir.exists()
}

fn idle_group_dir(mode: CgroupMode, name: &str) -> PathBuf {
    let root = Path::new(CGROUP_ROOT);
    match mode {
        CgroupMode::V2 => root.join(name),
        CgroupMode::V1 | CgroupMode::Hybrid => root.join("cpu").join(name),
    }
}

/// Removes a cgroup directory and every sub-cgroup below it, deepest first. A cgroup can be
/// removed only once it has no processes; the kernel may take a moment after the last one
/// exits, so busy directories are retried briefly.
pub(crate) async fn remove_tree(dir: &Path) -> Result<(), RuntimeError> {
    if !dir.is_dir() {
        return Ok(());
    }
    let mut dirs = Vec::new();
    collect_dirs(dir, &mut dirs)?;
    // Deepest first: children were pushed after their parents.
    for d in dirs.iter().rev() {
        let mut attempt = 0;
        loop {
            match std::fs::remove_dir(d) {
                Ok(()) => break,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
                Err(e) if attempt < 50 && e.raw_os_error() == Some(nix::libc::EBUSY) => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => return Err(RuntimeError::io("remove cgroup", d, e)),
            }
        }
    }
    Ok(())
}

fn collect_dirs(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), RuntimeError> {
    out.push(dir.to_path_buf());
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(RuntimeError::io("read cgroup", dir, e)),
    };
    for entry in entries.flatten() {
        if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            collect_dirs(&entry.path(), out)?;
        }
    }
    Ok(())
}

/// Parses a kernel CPU list ("0-3,8,10-11").
pub(crate) fn parse_cpu_list(text: &str) -> Vec<u32> {
    let mut cpus = Vec::new();
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.trim().parse::<u32>(), b.trim().parse::<u32>()) {
                    cpus.extend(a..=b);
                }
            }
            None => {
                if let Ok(c) = part.trim().parse() {
                    cpus.push(c);
                }
            }
        }
    }
    cpus
}

/// The host's online CPUs.
pub(crate) fn online_cpus() -> Vec<u32> {
    let cpus = std::fs::read_to_string("/sys/devices/system/cpu/online")
        .map(|t| parse_cpu_list(&t))
        .unwrap_or_default();
    if cpus.is_empty() {
        vec![0]
    } else {
        cpus
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_keeps_a_quarter_of_its_pids() {
        assert_eq!(parent_pids_limit(32768), 24576);
        assert_eq!(parent_pids_limit(4_194_304), 3_145_728);
        // Always below pid_max, so no set of instances can exhaust the host.
        for pid_max in [301, 32768, 4_194_304] {
            assert!(pid_max - parent_pids_limit(pid_max) >= pid_max / 4);
        }
    }

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("0-3,8,10-11\n"), vec![0, 1, 2, 3, 8, 10, 11]);
        assert_eq!(parse_cpu_list("0"), vec![0]);
        assert_eq!(parse_cpu_list(""), Vec::<u32>::new());
    }
}
