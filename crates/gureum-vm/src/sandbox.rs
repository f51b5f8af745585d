//! Confinement of each QEMU: an unprivileged system user of its own (`gureum-<instance id>`),
//! a cgroup with the instance type's limits, and a file lock helper.
//!
//! cgroup layout: `/sys/fs/cgroup/<controller>/gureum-vm/<id>` for the memory, cpu and pids
//! controllers on v1 and hybrid hosts, `/sys/fs/cgroup/gureum-vm/<id>` on unified (v2) ones.
//! The memory limit is the guest's memory plus [`QEMU_OVERHEAD_MIB`] for QEMU itself (its TCG
//! translation cache, device emulation, I/O buffers); the CPU limit is the type's vCPUs.

use std::path::{Path, PathBuf};

use tokio::process::Command;

use crate::error::{run, VmError, VmResult};

/// Memory QEMU needs beyond the guest's RAM.
pub const QEMU_OVERHEAD_MIB: u64 = 384;
const CGROUP_ROOT: &str = "/sys/fs/cgroup";
const PARENT: &str = "gureum-vm";
const V1_CONTROLLERS: [&str; 3] = ["memory", "cpu", "pids"];

/// The system user an instance's QEMU runs as.
pub fn user_name(instance_id: &str) -> String {
    format!("gureum-{instance_id}")
}

/// Creates the instance's user (no home, no shell, its own group) if missing.
pub async fn ensure_user(instance_id: &str) -> VmResult<String> {
    let name = user_name(instance_id);
    if user_exists(&name).await {
        return Ok(name);
    }
    run(
        Command::new("useradd")
            .args([
                "--system",
                "--no-create-home",
                "--home-dir",
                "/nonexistent",
                "--shell",
                "/usr/sbin/nologin",
                "--user-group",
                "--comment",
                "gureum VM instance",
            ])
            .arg(&name),
        "useradd",
    )
    .await?;
    Ok(name)
}

async fn user_exists(name: &str) -> bool {
    Command::new("id")
        .args(["-u", name])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .await
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Removes the instance's user and group. Idempotent.
pub async fn remove_user(instance_id: &str) -> VmResult<()> {
    let name = user_name(instance_id);
    if user_exists(&name).await {
        run(Command::new("userdel").arg(&name), "userdel").await?;
    }
    Ok(())
}

fn unified() -> bool {
    Path::new(CGROUP_ROOT).join("cgroup.controllers").is_file()
}

/// The instance's cgroup directories (one per v1 controller, or the one v2 directory).
pub fn cgroup_dirs(instance_id: &str) -> Vec<PathBuf> {
    if unified() {
        vec![Path::new(CGROUP_ROOT).join(PARENT).join(instance_id)]
    } else {
        V1_CONTROLLERS
            .iter()
            .map(|c| {
                Path::new(CGROUP_ROOT)
                    .join(c)
                    .join(PARENT)
                    .join(instance_id)
            })
            .filter(|p| {
                p.parent()
                    .and_then(|q| q.parent())
                    .is_some_and(|q| q.is_dir())
            })
            .collect()
    }
}

fn write(path: &Path, value: &str) -> VmResult<()> {
    std::fs::write(path, value).map_err(|e| VmError::io("writing", path, e))
}

/// Creates the instance's cgroups with its limits; returns the `cgroup.procs` files the QEMU
/// process is put into before it starts.
pub fn ensure_cgroup(instance_id: &str, vcpus: u32, memory_mib: u64) -> VmResult<Vec<PathBuf>> {
    let memory = (memory_mib + QEMU_OVERHEAD_MIB) * 1024 * 1024;
    let period = 100_000u64;
    let quota = period * vcpus.max(1) as u64;
    let mut procs = Vec::new();
    if unified() {
        let parent = Path::new(CGROUP_ROOT).join(PARENT);
        std::fs::create_dir_all(&parent).map_err(|e| VmError::io("creating", &parent, e))?;
        let _ = write(
            &Path::new(CGROUP_ROOT).join("cgroup.subtree_control"),
            "+memory +cpu +pids",
        );
        let _ = write(&parent.join("cgroup.subtree_control"), "+memory +cpu +pids");
        let dir = parent.join(instance_id);
        std::fs::create_dir_all(&dir).map_err(|e| VmError::io("creating", &dir, e))?;
        write(&dir.join("memory.max"), &memory.to_string())?;
        write(&dir.join("cpu.max"), &format!("{quota} {period}"))?;
        write(&dir.join("pids.max"), "512")?;
        procs.push(dir.join("cgroup.procs"));
        return Ok(procs);
    }
    for c in V1_CONTROLLERS {
        let hier = Path::new(CGROUP_ROOT).join(c);
        if !hier.is_dir() {
            continue;
        }
        let dir = hier.join(PARENT).join(instance_id);
        std::fs::create_dir_all(&dir).map_err(|e| VmError::io("creating", &dir, e))?;
        match c {
            "memory" => write(&dir.join("memory.limit_in_bytes"), &memory.to_string())?,
            "cpu" => {
                write(&dir.join("cpu.cfs_period_us"), &period.to_string())?;
                write(&dir.join("cpu.cfs_quota_us"), &quota.to_string())?;
            }
            _ => write(&dir.join("pids.max"), "512")?,
        }
        procs.push(dir.join("cgroup.procs"));
    }
    Ok(procs)
}

/// Removes the instance's cgroups (once its QEMU is gone). Idempotent. A killed QEMU can
/// linger in its cgroup for a moment after it is gone from `/proc` (EBUSY), so this retries
/// for up to 5 s and then leaves the directory to the next stop or destroy.
pub async fn remove_cgroup(instance_id: &str) {
    for d in cgroup_dirs(instance_id) {
        for _ in 0..50 {
            match std::fs::remove_dir(&d) {
                Ok(()) => break,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
            }
        }
        if d.exists() {
            tracing::warn!(cgroup = %d.display(), "could not remove a VM's cgroup");
        }
    }
}

/// An exclusive `flock` on a file, released on drop.
pub struct FileLock(#[allow(dead_code)] nix::fcntl::Flock<std::fs::File>);

impl FileLock {
    pub async fn acquire(path: &Path) -> VmResult<FileLock> {
        let path = path.to_path_buf();
        tokio::task::spawn_blocking(move || {
            let f = std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)
                .map_err(|e| VmError::io("opening", &path, e))?;
            nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusive)
                .map(FileLock)
                .map_err(|(_, e)| VmError::io("locking", &path, e.into()))
        })
        .await
        .map_err(|e| VmError::Image(format!("lock task: {e}")))?
    }
}
