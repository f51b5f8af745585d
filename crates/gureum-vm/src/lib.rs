//! gureum's compute driver for virtual machines: each EC2 instance is a QEMU process booting
//! the image's own kernel (KVM where a test guest really boots under it, TCG otherwise, see
//! [`probe`]) from a virtio-blk root disk that is a qcow2 overlay on the image's base disk.
//!
//! Host layout, under the driver's state directory (e.g. `<data-dir>/vms`, mode 0700):
//!
//! ```text
//! <state>/<id>/root.qcow2     the root volume: qcow2 overlay on the image's base disk
//! <state>/<id>/seed.img       the seed disk (ext4, read-only in the guest): instance files and
//!                             network configuration, rewritten before each start
//! <state>/<id>/console.log    the serial console, appended across starts (GetConsoleOutput)
//! <state>/<id>/qmp.sock       QEMU's monitor (QMP): graceful stop, reboot, status
//! <state>/<id>/qemu.pid       QEMU's pid (checked against its command line before use)
//! <state>/<id>/qemu.log       QEMU's own errors
//! <state>/<id>/chroot/        the empty directory QEMU chroots into once its files are open
//! <state>/<id>/volumes.json   the EBS volumes attached to it ([`volumes`])
//! ```
//!
//! QEMU runs detached (`setsid -f`; not `-daemonize`, see [`qemu`]), so a gureum restart finds running guests by pidfile and
//! QMP and leaves them running. Each QEMU opens its disks, tap, console and socket as root and
//! then drops to its own system user (`gureum-<id>`) inside an empty chroot, in its own cgroup
//! limited to the instance type's vCPUs and memory, with `-sandbox on` ([`sandbox`], [`qemu`]).
//!
//! The image's VM form (base disk, kernel, initramfs) is made from its root filesystem on
//! first use and shared by every instance of it ([`disk`]).
//!
//! A stopped instance holds no process, cgroup or socket, only its directory; `destroy` removes
//! that and the user. Operations on one instance are serialised within a driver.

mod compute;
pub mod disk;
mod error;
pub mod probe;
pub mod qemu;
mod qmp;
pub mod sandbox;
pub mod volumes;

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use compute::vm_spec;
pub use disk::{BaseDisk, SeedFile};
pub use error::{VmError, VmResult};
pub use probe::{probe, ProbeReport};
pub use qemu::Accel;
pub use volumes::Volume;

/// How long a stop waits for QEMU to be gone after SIGKILL.
const KILL_WAIT: Duration = Duration::from_secs(10);
/// How long a graceful stop through the [`gureum_host_api::Compute`] trait waits for the
/// guest to power off after the ACPI power button.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a start waits for QEMU's monitor to answer.
const START_WAIT: Duration = Duration::from_secs(30);

/// The guest's network configuration (there is no DHCP in a gureum VPC: the seed carries it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestNet {
    /// The tap device on the VPC bridge, made by the network driver.
    pub tap: String,
    pub mac: [u8; 6],
    pub ip: Ipv4Addr,
    pub prefix_len: u8,
    pub gateway: Ipv4Addr,
}

/// Everything the driver needs to run one instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmSpec {
    /// The instance id: directory, user and QEMU `-name`.
    pub id: String,
    /// The image's root filesystem (its VM form is made beside it).
    pub image_rootfs: PathBuf,
    /// Root volume size in GiB (grown, never shrunk, at each prepare).
    pub volume_gib: u64,
    pub vcpus: u32,
    pub memory_mib: u64,
    pub net: Option<GuestNet>,
    /// Files put on the seed disk (absolute guest paths), copied into the root at each boot.
    pub files: Vec<SeedFile>,
    /// EBS volumes the guest has from its boot ([`volumes`]).
    pub volumes: Vec<Volume>,
}

/// What the host has of an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VmState {
    Running,
    Stopped,
    Absent,
}

#[derive(Debug, Clone)]
pub struct VmOptions {
    pub state_dir: PathBuf,
    pub qemu: PathBuf,
    pub accel: Accel,
    /// Run each QEMU as its own user in a chroot and a limited cgroup (root only).
    pub confine: bool,
    /// Probe the accelerator at the first start through the [`gureum_host_api::Compute`]
    /// trait, with that image's kernel as the test guest ([`probe`]), instead of keeping
    /// `accel` (default off).
    pub probe_accel: bool,
    /// How long [`gureum_host_api::Compute::stop`] and `reboot` wait for the guest to power
    /// off (default [`STOP_TIMEOUT`]).
    pub stop_timeout: Duration,
}

impl VmOptions {
    pub fn new(state_dir: &Path, accel: Accel) -> VmOptions {
        VmOptions {
            state_dir: state_dir.to_path_buf(),
            qemu: PathBuf::from("qemu-system-x86_64"),
            accel,
            confine: true,
            probe_accel: false,
            stop_timeout: STOP_TIMEOUT,
        }
    }
}

pub struct VmDriver {
    opts: VmOptions,
    /// The accelerator new starts use (settable after a probe).
    accel: Mutex<Accel>,
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// The accelerator the first start's probe chose (see [`VmOptions::probe_accel`]).
    probed: tokio::sync::OnceCell<Accel>,
}

fn is_zombie_or_gone(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(s) => s
            .rsplit_once(')')
            .map(|(_, rest)| rest.trim_start().starts_with('Z'))
            .unwrap_or(true),
    }
}

impl VmDriver {
    pub fn new(opts: VmOptions) -> VmResult<VmDriver> {
        use std::os::unix::fs::PermissionsExt;
        std::fs::create_dir_all(&opts.state_dir)
            .map_err(|e| VmError::io("creating", &opts.state_dir, e))?;
        std::fs::set_permissions(&opts.state_dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| VmError::io("chmod", &opts.state_dir, e))?;
        Ok(VmDriver {
            accel: Mutex::new(opts.accel),
            opts,
            locks: Mutex::default(),
            probed: tokio::sync::OnceCell::new(),
        })
    }

    pub fn accel(&self) -> Accel {
        *self.accel.lock().expect("accel poisoned")
    }

    /// Use `accel` for the guests started from now on (running ones keep theirs).
    pub fn set_accel(&self, accel: Accel) {
        *self.accel.lock().expect("accel poisoned") = accel;
    }

    fn lock(&self, id: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.locks
            .lock()
            .expect("locks poisoned")
            .entry(id.to_string())
            .or_default()
            .clone()
    }

    /// The instance's directory.
    pub fn dir(&self, id: &str) -> PathBuf {
        self.opts.state_dir.join(id)
    }

    fn qemu_name(id: &str) -> String {
        format!("gureum-{id}")
    }

    /// The pid of the instance's live QEMU, if it runs (pidfile checked against the process's
    /// command line, so a recycled pid is never mistaken for it).
    pub fn pid(&self, id: &str) -> Option<i32> {
        let text = std::fs::read_to_string(self.dir(id).join("qemu.pid")).ok()?;
        let pid: i32 = text.trim().parse().ok()?;
        if is_zombie_or_gone(pid) {
            return None;
        }
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        let want = format!("{},process=", Self::qemu_name(id));
        cmdline
            .split(|b| *b == 0)
            .any(|a| a.starts_with(want.as_bytes()))
            .then_some(pid)
    }

    pub async fn state(&self, id: &str) -> VmResult<VmState> {
        if self.pid(id).is_some() {
            Ok(VmState::Running)
        } else if self.dir(id).is_dir() {
            Ok(VmState::Stopped)
        } else {
            Ok(VmState::Absent)
        }
    }

    /// Every instance with a directory here.
    pub async fn list(&self) -> VmResult<Vec<String>> {
        let mut out = Vec::new();
        let rd = match std::fs::read_dir(&self.opts.state_dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(VmError::io("listing", &self.opts.state_dir, e)),
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with("i-") && e.path().is_dir() {
                out.push(name);
            }
        }
        out.sort();
        Ok(out)
    }

    /// Makes the root volume (overlay) ready, growing it if the spec asks for more. Idempotent.
    pub async fn prepare(&self, spec: &VmSpec) -> VmResult<()> {
        let lock = self.lock(&spec.id);
        let _g = lock.lock().await;
        self.prepare_locked(spec).await.map(|_| ())
    }

    async fn prepare_locked(&self, spec: &VmSpec) -> VmResult<BaseDisk> {
        let base = disk::ensure_base(&spec.image_rootfs).await?;
        let dir = self.dir(&spec.id);
        std::fs::create_dir_all(&dir).map_err(|e| VmError::io("creating", &dir, e))?;
        if self.pid(&spec.id).is_none() {
            disk::ensure_overlay(&base.disk, &dir.join("root.qcow2"), spec.volume_gib).await?;
        }
        Ok(base)
    }

    /// Boots the guest (a running one stays running). Idempotent.
    pub async fn start(&self, spec: &VmSpec) -> VmResult<()> {
        let lock = self.lock(&spec.id);
        let _g = lock.lock().await;
        if self.pid(&spec.id).is_some() {
            return Ok(());
        }
        let base = self.prepare_locked(spec).await?;
        let dir = self.dir(&spec.id);
        let mut files = spec.files.clone();
        if let Some(net) = &spec.net {
            files.push(SeedFile {
                path: "/etc/systemd/network/10-gureum.network".into(),
                contents: network_file(net).into_bytes(),
                mode: 0o644,
            });
        }
        disk::write_seed(&dir.join("seed"), &files, &dir.join("seed.img")).await?;
        for stale in ["qmp.sock", "qemu.pid"] {
            let _ = std::fs::remove_file(dir.join(stale));
        }
        let chroot = dir.join("chroot");
        std::fs::create_dir_all(&chroot).map_err(|e| VmError::io("creating", &chroot, e))?;
        let volumes = volumes::for_start(&dir, &spec.volumes)?;
        let (user, procs) = if self.opts.confine {
            let user = sandbox::ensure_user(&spec.id).await?;
            let procs = sandbox::ensure_cgroup(&spec.id, spec.vcpus, spec.memory_mib)?;
            (Some(user), procs)
        } else {
            (None, vec![])
        };
        let args = qemu::QemuArgs {
            name: Self::qemu_name(&spec.id),
            accel: self.accel(),
            vcpus: spec.vcpus,
            memory_mib: spec.memory_mib,
            kernel: base.kernel.clone(),
            initrd: base.initrd.clone(),
            cmdline: qemu::kernel_cmdline(),
            root_disk: dir.join("root.qcow2"),
            seed_disk: dir.join("seed.img"),
            volumes,
            tap: spec.net.as_ref().map(|n| n.tap.clone()),
            mac: spec
                .net
                .as_ref()
                .map(|n| n.mac)
                .unwrap_or([0x02, 0, 0, 0, 0, 1]),
            console_log: dir.join("console.log"),
            qmp_socket: dir.join("qmp.sock"),
            pidfile: dir.join("qemu.pid"),
            user: user.clone(),
            chroot: self.opts.confine.then_some(chroot),
        };
        // The shell joins the cgroups and then becomes QEMU in a session of its own, detached
        // from gureum (`setsid -f` forks, so QEMU is re-parented and survives a restart), so
        // every QEMU thread is confined from its first instruction.
        let mut script = String::new();
        for p in &procs {
            script.push_str(&format!("echo $$ > '{}' && ", p.display()));
        }
        script.push_str("exec setsid -f \"$@\"");
        let log_path = dir.join("qemu.log");
        let log =
            std::fs::File::create(&log_path).map_err(|e| VmError::io("creating", &log_path, e))?;
        let log2 = log
            .try_clone()
            .map_err(|e| VmError::io("opening", &log_path, e))?;
        let t = Instant::now();
        let status = tokio::process::Command::new("sh")
            .arg("-c")
            .arg(&script)
            .arg("sh")
            .arg(&self.opts.qemu)
            .args(args.to_args())
            .stdin(std::process::Stdio::null())
            .stdout(log)
            .stderr(log2)
            .status()
            .await
            .map_err(|e| VmError::Command {
                command: "qemu".into(),
                detail: e.to_string(),
            })?;
        // A failed start leaves its cgroup to the stop or destroy that follows it.
        let failed = |detail: String| {
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            VmError::Command {
                command: "qemu".into(),
                detail: format!("{detail}: {}", log.trim()),
            }
        };
        if !status.success() {
            return Err(failed(format!("the launcher exited with {status}")));
        }
        // The monitor answers once QEMU is up; a QEMU that exits first failed to start.
        let deadline = Instant::now() + START_WAIT;
        loop {
            if let Ok(mut q) = qmp::Qmp::connect(&dir.join("qmp.sock")).await {
                if q.execute("query-status", None).await.is_ok() && self.pid(&spec.id).is_some() {
                    break;
                }
            }
            let pidfile_written = dir.join("qemu.pid").is_file();
            if pidfile_written && self.pid(&spec.id).is_none() {
                return Err(failed("qemu exited while starting".into()));
            }
            if Instant::now() > deadline {
                if let Some(pid) = self.pid(&spec.id) {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
                return Err(failed("qemu did not answer on its monitor".into()));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tracing::info!(
            instance = %spec.id,
            accel = self.accel().as_str(),
            user = user.as_deref().unwrap_or("root"),
            ms = t.elapsed().as_millis() as u64,
            "vm started"
        );
        Ok(())
    }

    /// QEMU's view of the guest (`running`, `paused`, `shutdown`, …), or `None` if it is not
    /// running.
    pub async fn status(&self, id: &str) -> VmResult<Option<String>> {
        if self.pid(id).is_none() {
            return Ok(None);
        }
        let mut q = qmp::Qmp::connect(&self.dir(id).join("qmp.sock")).await?;
        let s = q.execute("query-status", None).await?;
        Ok(s["status"].as_str().map(str::to_string))
    }

    /// Shuts the guest down: ACPI power button (unless `force`), then after `timeout` a kill.
    /// Keeps the volume. Idempotent.
    pub async fn stop(&self, id: &str, timeout: Duration, force: bool) -> VmResult<()> {
        let lock = self.lock(id);
        let _g = lock.lock().await;
        self.stop_locked(id, timeout, force).await
    }

    async fn stop_locked(&self, id: &str, timeout: Duration, force: bool) -> VmResult<()> {
        if let Some(pid) = self.pid(id) {
            let mut gone = false;
            if !force {
                match qmp::Qmp::connect(&self.dir(id).join("qmp.sock")).await {
                    Ok(mut q) => {
                        if let Err(e) = q.execute("system_powerdown", None).await {
                            tracing::warn!(instance = %id, error = %e, "system_powerdown failed");
                        }
                        gone = wait_gone(pid, timeout).await;
                        if !gone {
                            tracing::warn!(instance = %id, "guest ignored the power button; killing it");
                        }
                    }
                    Err(e) => tracing::warn!(instance = %id, error = %e, "no monitor; killing"),
                }
            }
            if !gone {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
                if !wait_gone(pid, KILL_WAIT).await {
                    return Err(VmError::Command {
                        command: "kill".into(),
                        detail: format!("qemu {pid} of {id} survived SIGKILL"),
                    });
                }
            }
        }
        let dir = self.dir(id);
        for f in ["qmp.sock", "qemu.pid"] {
            let _ = std::fs::remove_file(dir.join(f));
        }
        if self.opts.confine {
            sandbox::remove_cgroup(id).await;
        }
        Ok(())
    }

    /// A graceful reboot: power down (killed after `timeout`) and boot again with a fresh seed.
    pub async fn reboot(&self, spec: &VmSpec, timeout: Duration) -> VmResult<()> {
        {
            let lock = self.lock(&spec.id);
            let _g = lock.lock().await;
            self.stop_locked(&spec.id, timeout, false).await?;
        }
        self.start(spec).await
    }

    /// Removes every trace of the instance: process, overlay, directory, user, cgroup.
    pub async fn destroy(&self, id: &str) -> VmResult<()> {
        let lock = self.lock(id);
        let _g = lock.lock().await;
        self.stop_locked(id, Duration::ZERO, true).await?;
        let dir = self.dir(id);
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(VmError::io("removing", &dir, e)),
        }
        if self.opts.confine {
            sandbox::remove_user(id).await?;
        }
        Ok(())
    }

    /// The last `max_bytes` of the serial console.
    pub fn console_output(&self, id: &str, max_bytes: usize) -> VmResult<Vec<u8>> {
        use std::io::{Read, Seek, SeekFrom};
        let path = self.dir(id).join("console.log");
        let mut f = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
            Err(e) => return Err(VmError::io("opening", &path, e)),
        };
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        let start = len.saturating_sub(max_bytes as u64);
        f.seek(SeekFrom::Start(start))
            .map_err(|e| VmError::io("reading", &path, e))?;
        let mut out = Vec::new();
        f.read_to_end(&mut out)
            .map_err(|e| VmError::io("reading", &path, e))?;
        Ok(out)
    }

    /// The instance's root volume file (for snapshots).
    pub fn root_disk(&self, id: &str) -> PathBuf {
        self.dir(id).join("root.qcow2")
    }
}

async fn wait_gone(pid: i32, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if is_zombie_or_gone(pid) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// systemd-networkd's configuration of the instance's interface.
pub fn network_file(net: &GuestNet) -> String {
    format!(
        "# Written by gureum (the instance's address in its VPC subnet).\n\
         [Match]\nMACAddress={}\n\n[Network]\nAddress={}/{}\nGateway={}\n\
         LinkLocalAddressing=no\nIPv6AcceptRA=no\n",
        qemu::mac_string(&net.mac),
        net.ip,
        net.prefix_len,
        net.gateway
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_file_is_static() {
        let n = GuestNet {
            tap: "t".into(),
            mac: [2, 0, 0xac, 0x1f, 0, 5],
            ip: "172.31.0.5".parse().unwrap(),
            prefix_len: 20,
            gateway: "172.31.0.1".parse().unwrap(),
        };
        let f = network_file(&n);
        assert!(f.contains("MACAddress=02:00:ac:1f:00:05\n"));
        assert!(f.contains("Address=172.31.0.5/20\nGateway=172.31.0.1\n"));
    }
}
