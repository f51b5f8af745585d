//! gureum's compute driver for system containers: each EC2 instance is a runc container whose
//! PID 1 is the image's own systemd, over a root volume of its own.
//!
//! Host layout, all under the driver's state directory (e.g. `<data-dir>/instances`):
//!
//! ```text
//! <state>/.runc/                runc --root: runc's record of every container
//! <state>/.templates/ext4-8g.img   per-size ext4 templates the volumes are copied from
//! <state>/<id>/volume.img       the root volume: sparse file, ext4
//! <state>/<id>/volume/          its loop mount: upper/ and work/ of the overlay
//! <state>/<id>/rootfs/          overlayfs(AMI rootfs, upper, work): the container's /
//! <state>/<id>/config.json      the OCI config of the last start
//! <state>/<id>/console.log      PID 1's stdout/stderr and /dev/console, appended across restarts
//! <state>/<id>/console.pty      the console relay's pty slave (the guest's /dev/console)
//! <state>/<id>/runc.log         runc's own log
//! <state>/<id>/warm             only while a warm guest waits for its instance
//! <state>/<id>/volumes.json     EBS volumes shown to the running guest (see blockdev.rs)
//! <state>/<id>/volume-files.json  their raw files, while they may hold loop devices
//! ```
//!
//! A warm guest ([`ContainerSpec::warm`]) is booted under an instance id before that instance
//! exists; a later `start` of the id hands it the instance in place (`runc update`, hostname,
//! files, a line on [`WARM_FIFO`]) instead of booting it again.
//!
//! cgroups live at `/sys/fs/cgroup/<hierarchy>/gureum/<id>`; the parent `gureum` holds at most
//! three quarters of the host's process ids, whatever the instances' own limits add up to.
//! Containers run detached from the
//! driver's process (`runc run --detach`, the console log as their stdio), so a new driver
//! (after a gureum restart) finds them through `runc list` and the state directory, and
//! nothing in this process has to stay alive for them. Every operation is idempotent and
//! converges from whatever a crash left behind.
//!
//! Stopped instances hold no mount, loop device, cgroup or process: `stop` tears them down and
//! `start` rebuilds them, so only the volume file remains (like a detached EBS root volume).
//! That includes attached EBS volumes' loop devices: the core's start hands their list again
//! (see blockdev.rs).
//!
//! Per instance, the host runs the container's processes and one small console relay (see
//! the console module; the `gureum-console-relay` binary of this crate, or
//! [`console_relay_main`] wired into another binary). Per host, one lxcfs daemon, shared and
//! left running. One driver at a time per state directory: operations on an instance are
//! serialised within a driver, not across processes.
//!
//! Known gaps: a reboot started inside the guest (`reboot`) ends the container like a
//! poweroff (systemd in a PID namespace exits instead of rebooting, and a detached runc
//! container reports no exit cause), so it shows as Stopped until someone starts it; cgroup v2
//! and pure v1 hosts follow the same code paths as the hybrid host these tests run on, but only
//! hybrid has been exercised here.

mod blockdev;
mod cgroups;
mod cmd;
mod compute;
mod console;
mod error;
mod inject;
mod lxcfs;
mod mountd;
mod mounts;
mod oci;
mod runc;
mod sched;
mod volume;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use blockdev::{attached_volumes, AttachedVolume};
pub use cgroups::{existing_instance_dirs, move_to_idle_group, remove_idle_group, CgroupMode};
pub use console::console_relay_main;
pub use error::RuntimeError;
pub use lxcfs::DEFAULT_LXCFS_DIR;
pub use mountd::{host_support as mount_interception_support, mountd_main};

use runc::Runc;
use volume::VolumePaths;

/// systemd's "halt" request: SIGRTMIN+3 (glibc's SIGRTMIN is 34).
const SIGRTMIN_PLUS_3: &str = "37";
/// How long a reboot waits for the guest to shut down before killing it.
pub const REBOOT_STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// How long to wait for a SIGKILLed container to be reported stopped.
const KILL_WAIT: Duration = Duration::from_secs(10);
/// How long a graceful stop through the [`gureum_host_api::Compute`] trait waits for the
/// guest's systemd before killing it.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(20);
/// Default root volume size (EC2's default for Debian AMIs).
pub const DEFAULT_VOLUME_GIB: u64 = 8;
/// Default parent cgroup of all instances.
pub const DEFAULT_CGROUP_PARENT: &str = "gureum";

/// A file written into an instance's writable layer before each start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InjectFile {
    /// Absolute path inside the guest.
    pub path: PathBuf,
    pub contents: Vec<u8>,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// Everything the driver needs to run one instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerSpec {
    /// The instance id ("i-0123456789abcdef0"): container name and cgroup name.
    pub id: String,
    /// The AMI's rootfs directory: the overlay's read-only lower layer, never written.
    pub image_rootfs: PathBuf,
    /// Root volume size in GiB (fixed when the volume is created).
    pub volume_gib: u64,
    /// The guest's hostname ("ip-172-31-5-10"); also written to /etc/hostname.
    pub hostname: String,
    pub vcpus: u32,
    pub memory_mib: u64,
    pub pids_max: u64,
    /// An existing network namespace (from the network driver); None: a fresh one with only
    /// loopback.
    pub netns: Option<PathBuf>,
    /// Files written into the writable layer before each start.
    pub inject: Vec<InjectFile>,
    /// Boot a warm guest: one booted ahead of time for an instance not launched yet, whose
    /// guest agent waits on [`WARM_FIFO`] for its identity. A later [`RuncDriver::start`] of
    /// the same id without `warm` hands the identity over (limits, hostname, files) instead of
    /// booting again.
    pub warm: bool,
}

/// A warm guest as the host sees it (see [`ContainerSpec::warm`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WarmGuest {
    /// Host pid of its PID 1 (whose network namespace the instance's interface goes into).
    pub pid: i32,
    /// Whether its agent is waiting for the identity (done booting).
    pub waiting: bool,
}

/// The FIFO (guest path) a warm guest's agent creates and waits on; the host writes a line to
/// it once the identity files are in place.
pub const WARM_FIFO: &str = "/var/lib/gureum/claim";
/// In a warm guest's state directory while it has no instance yet.
const WARM_MARKER: &str = "warm";
/// Replaces [`WARM_MARKER`] once the instance's files are in, until the guest is woken: a
/// hand-over a crash cut short after that point only wakes the guest (whose files may be its
/// user's by then) and writes nothing.
const HANDED_MARKER: &str = "handed";

/// What the host has of an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerState {
    /// The container's PID 1 is alive.
    Running,
    /// The instance exists (volume, state) but nothing runs.
    Stopped,
    /// Nothing of it is on this host.
    Absent,
}

/// Whether and where to use lxcfs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LxcfsMode {
    /// Use a mounted lxcfs, or start one at this directory.
    Auto(PathBuf),
    /// No lxcfs: /proc shows the host's memory and CPUs (nproc still shows the cpuset).
    Disabled,
}

/// How to start the console relay (see the console module): `program args… <log> <pty-file>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayCommand {
    pub program: PathBuf,
    /// Arguments before the two the driver appends (e.g. a hidden subcommand's name).
    pub args: Vec<std::ffi::OsString>,
}

impl RelayCommand {
    /// This crate's `gureum-console-relay` binary, looked for beside the running executable
    /// (and one directory up, where cargo puts binaries for tests), then on PATH.
    pub fn find() -> Option<RelayCommand> {
        Self::find_named("gureum-console-relay")
    }

    /// A helper binary of this crate by name (`gureum-mountd`), looked for as [`Self::find`]
    /// does.
    pub fn find_named(name: &str) -> Option<RelayCommand> {
        let mut candidates = Vec::new();
        if let Ok(exe) = std::env::current_exe() {
            if let Some(dir) = exe.parent() {
                candidates.push(dir.join(name));
                if let Some(up) = dir.parent() {
                    candidates.push(up.join(name));
                }
            }
        }
        if let Some(paths) = std::env::var_os("PATH") {
            candidates.extend(std::env::split_paths(&paths).map(|p| p.join(name)));
        }
        candidates
            .into_iter()
            .find(|p| p.is_file())
            .map(|program| RelayCommand {
                program,
                args: Vec::new(),
            })
    }
}

/// Driver settings; [`DriverOptions::new`] gives the defaults.
#[derive(Debug, Clone)]
pub struct DriverOptions {
    pub state_dir: PathBuf,
    /// runc's state root (default `<state_dir>/.runc`).
    pub runc_root: PathBuf,
    /// The runc binary (default `runc` from PATH).
    pub runc: PathBuf,
    /// Parent cgroup for all instances (default "gureum").
    pub cgroup_parent: String,
    pub lxcfs: LxcfsMode,
    /// The console relay; None: the guest has no /dev/console, and the console log gets only
    /// PID 1's stdout/stderr (systemd writes nothing there in a container).
    pub console_relay: Option<RelayCommand>,
    /// Let guests keep CAP_SYS_ADMIN (default off): systemd's unit sandboxing, mounts,
    /// namespaces and hostname changes work inside, and the guest's root can take the host
    /// over. Only for trusted guests; see `oci.rs`.
    pub guest_sys_admin: bool,
    /// Where [`Compute::snapshot`](gureum_host_api::Compute::snapshot) puts images made from
    /// instances (`CreateImage`), one directory per image; `None`: it refuses.
    pub images_dir: Option<PathBuf>,
    /// How long [`Compute::stop`](gureum_host_api::Compute::stop) waits for the guest's
    /// systemd before killing it (default [`STOP_TIMEOUT`]).
    pub stop_timeout: Duration,
    /// The mount interception daemon (`gureum-mountd`, started as `program args…
    /// <state_dir>`): lets guests mount their attached volumes (see the mountd module). None:
    /// guests cannot mount at all, as without CAP_SYS_ADMIN.
    pub mount_daemon: Option<RelayCommand>,
}

impl DriverOptions {
    pub fn new(state_dir: &Path) -> Self {
        DriverOptions {
            state_dir: state_dir.to_path_buf(),
            runc_root: state_dir.join(".runc"),
            runc: PathBuf::from("runc"),
            cgroup_parent: DEFAULT_CGROUP_PARENT.to_string(),
            lxcfs: LxcfsMode::Auto(PathBuf::from(DEFAULT_LXCFS_DIR)),
            console_relay: RelayCommand::find(),
            guest_sys_admin: false,
            images_dir: None,
            stop_timeout: STOP_TIMEOUT,
            mount_daemon: RelayCommand::find_named("gureum-mountd"),
        }
    }
}

/// The runc compute driver. Cheap to clone (shared state behind an `Arc`).
#[derive(Clone)]
pub struct RuncDriver {
    inner: Arc<Inner>,
}

struct Inner {
    opts: DriverOptions,
    runc: Runc,
    cgroup_mode: CgroupMode,
    swap_accounting: bool,
    cap_bounding: u64,
    /// CPU placement and boot-order weights.
    sched: Arc<sched::Scheduler>,
    lxcfs_dir: Option<PathBuf>,
    /// Whether guests' mounts are intercepted, or why not (see the mountd module).
    mount_interception: Result<(), String>,
    /// One lock per instance: operations on one instance are serialised.
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Serialises template creation.
    template_lock: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for RuncDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuncDriver")
            .field("state_dir", &self.inner.opts.state_dir)
            .field("cgroup_mode", &self.inner.cgroup_mode)
            .field("lxcfs", &self.inner.lxcfs_dir)
            .finish()
    }
}

/// Instance ids become directory and cgroup names: keep them to a safe alphabet.
fn validate_id(id: &str) -> Result<(), RuntimeError> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id.as_bytes()[0].is_ascii_alphanumeric()
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(RuntimeError::InvalidSpec(format!(
            "instance id {id:?} must be 1-64 of [A-Za-z0-9_-], starting alphanumeric"
        )))
    }
}

fn validate_spec(spec: &ContainerSpec) -> Result<(), RuntimeError> {
    validate_id(&spec.id)?;
    let bad = |what: &str| Err(RuntimeError::InvalidSpec(what.to_string()));
    if spec.vcpus == 0 {
        return bad("vcpus must be at least 1");
    }
    if spec.memory_mib < 16 {
        return bad("memory_mib must be at least 16");
    }
    if spec.pids_max < 16 {
        return bad("pids_max must be at least 16");
    }
    if spec.volume_gib == 0 || spec.volume_gib > 16 * 1024 {
        return bad("volume_gib must be between 1 and 16384");
    }
    let hn = &spec.hostname;
    if hn.is_empty()
        || hn.len() > 64
        || !hn
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
    {
        return bad("hostname must be 1-64 of [A-Za-z0-9.-]");
    }
    if !spec.image_rootfs.is_absolute() {
        return bad("image_rootfs must be an absolute path");
    }
    for f in &spec.inject {
        inject::validate(&f.path)?;
    }
    Ok(())
}

/// The capability bounding set of this process (what runc can grant).
fn cap_bounding() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapBnd:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .unwrap_or(u64::MAX)
}

/// systemd's hard RLIMIT_NOFILE for PID 1 (512 Ki), if this process may raise its own hard
/// limit that far (CAP_SYS_RESOURCE); otherwise the hard limit it has.
fn nofile_hard(cap_bounding: u64) -> u64 {
    const SYSTEMD_HARD: u64 = 524_288;
    let current = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .map(|(_, hard)| hard)
        .unwrap_or(SYSTEMD_HARD);
    if cap_bounding & (1 << 24) != 0 {
        SYSTEMD_HARD.max(current)
    } else {
        SYSTEMD_HARD.min(current)
    }
}

/// Start time of a host process, in clock ticks since boot (field 22 of `/proc/<pid>/stat`):
/// with the pid, it identifies a process across pid reuse.
pub fn process_start_time(pid: i32) -> Option<u64> {
    process_state(pid).map(|(_, start)| start)
}

/// A host process's state letter (`R`, `S`, `Z`, …) and start time: fields 3 and 22 of
/// `/proc/<pid>/stat`.
pub(crate) fn process_state(pid: i32) -> Option<(char, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces; fields after the last ')' are plain.
    let mut rest = stat[stat.rfind(')')? + 2..].split(' ');
    let state = rest.next()?.chars().next()?;
    Some((state, rest.nth(18)?.parse().ok()?))
}

impl RuncDriver {
    /// A driver with default options over `state_dir`: checks root and runc, detects the
    /// cgroup mode, starts lxcfs if none is mounted, and makes the default volume template.
    pub fn new(state_dir: &Path) -> Result<RuncDriver, RuntimeError> {
        Self::with_options(DriverOptions::new(state_dir))
    }

    pub fn with_options(opts: DriverOptions) -> Result<RuncDriver, RuntimeError> {
        let euid = nix::unistd::geteuid().as_raw();
        if euid != 0 {
            return Err(RuntimeError::NotRoot(euid));
        }
        let version = Runc::version(&opts.runc)?;
        let root = Path::new(cgroups::CGROUP_ROOT);
        let cgroup_mode = cgroups::detect(root)?;
        if cgroup_mode != CgroupMode::V2 {
            cgroups::ensure_systemd_hierarchy(root)?;
        }
        let pids_limit = match cgroups::limit_parent_pids(root, cgroup_mode, &opts.cgroup_parent) {
            Ok(limit) => Some(limit),
            Err(e) => {
                tracing::warn!(
                    error = %e,
                    "cannot limit the instances' process ids: a fork bomb may exhaust the host's"
                );
                None
            }
        };
        for d in [&opts.state_dir, &opts.runc_root] {
            std::fs::create_dir_all(d).map_err(|e| RuntimeError::io("create", d, e))?;
        }
        let lxcfs_dir = match &opts.lxcfs {
            LxcfsMode::Disabled => None,
            LxcfsMode::Auto(dir) if !lxcfs::installed() => {
                tracing::warn!(
                    dir = %dir.display(),
                    "lxcfs is not installed: guests will see the host's memory in /proc"
                );
                None
            }
            LxcfsMode::Auto(dir) => Some(lxcfs::ensure(dir)?),
        };
        volume::ensure_template(&opts.state_dir.join(".templates"), DEFAULT_VOLUME_GIB)?;
        let mount_interception = if opts.guest_sys_admin {
            Err("guests keep CAP_SYS_ADMIN and mount by themselves".to_string())
        } else if opts.mount_daemon.is_none() {
            Err("no gureum-mountd binary".to_string())
        } else {
            mountd::host_support(&opts.runc).map(|_| ())
        };
        if let Err(why) = &mount_interception {
            tracing::warn!(why, "guests cannot mount their attached volumes");
        }
        tracing::info!(
            runc = %version,
            mode = ?cgroup_mode,
            lxcfs = ?lxcfs_dir,
            pids_limit = ?pids_limit,
            state_dir = %opts.state_dir.display(),
            "runc driver ready"
        );
        Ok(RuncDriver {
            inner: Arc::new(Inner {
                runc: Runc {
                    bin: opts.runc.clone(),
                    root: opts.runc_root.clone(),
                },
                swap_accounting: cgroups::swap_accounting(root, cgroup_mode),
                cap_bounding: cap_bounding(),
                sched: Arc::new(sched::Scheduler::new(cgroup_mode, &opts.cgroup_parent)),
                cgroup_mode,
                lxcfs_dir,
                mount_interception,
                opts,
                locks: Mutex::new(HashMap::new()),
                template_lock: tokio::sync::Mutex::new(()),
            }),
        })
    }

    /// The host's cgroup mode.
    pub fn cgroup_mode(&self) -> CgroupMode {
        self.inner.cgroup_mode
    }

    /// The parent cgroup of every instance.
    pub fn cgroup_parent(&self) -> &str {
        &self.inner.opts.cgroup_parent
    }

    /// Where lxcfs is mounted, if it is used.
    pub fn lxcfs_dir(&self) -> Option<&Path> {
        self.inner.lxcfs_dir.as_deref()
    }

    /// Whether guests can mount their attached volumes (mount interception), or why not.
    pub fn mount_interception(&self) -> Result<(), &str> {
        self.inner
            .mount_interception
            .as_ref()
            .map(|_| ())
            .map_err(String::as_str)
    }

    /// Makes sure the mount daemon answers before runc starts a process under a profile that
    /// names its socket (runc fails the start when it cannot connect). The socket's path when
    /// it does; None (with a warning) when interception is off or the daemon cannot start:
    /// the guest then boots without it and cannot mount, rather than not booting.
    async fn ensure_mountd(&self) -> Option<PathBuf> {
        self.inner.mount_interception.as_ref().ok()?;
        let cmd = self.inner.opts.mount_daemon.as_ref()?;
        let state_dir = &self.inner.opts.state_dir;
        match mountd::ensure(&cmd.program, &cmd.args, state_dir).await {
            Ok(()) => Some(mountd::socket(state_dir)),
            Err(why) => {
                tracing::warn!(
                    why,
                    "mount daemon unavailable: this guest cannot mount volumes"
                );
                None
            }
        }
    }

    /// runc's state root.
    pub fn runc_root(&self) -> &Path {
        &self.inner.opts.runc_root
    }

    /// The instance's state directory.
    pub fn instance_dir(&self, id: &str) -> PathBuf {
        self.inner.opts.state_dir.join(id)
    }

    fn lock_for(&self, id: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.inner.locks.lock().unwrap_or_else(|p| p.into_inner());
        locks.entry(id.to_string()).or_default().clone()
    }

    /// Makes the root volume ready (idempotent; the volume is kept if it exists).
    pub async fn prepare(&self, spec: &ContainerSpec) -> Result<(), RuntimeError> {
        validate_spec(spec)?;
        let lock = self.lock_for(&spec.id);
        let _g = lock.lock().await;
        self.prepare_locked(spec).await
    }

    async fn prepare_locked(&self, spec: &ContainerSpec) -> Result<(), RuntimeError> {
        let dir = self.instance_dir(&spec.id);
        let paths = VolumePaths::new(&dir);
        if paths.image.exists() {
            return Ok(());
        }
        std::fs::create_dir_all(&dir).map_err(|e| RuntimeError::io("create", &dir, e))?;
        let templates = self.inner.opts.state_dir.join(".templates");
        let mut template = volume::template_path(&templates, spec.volume_gib);
        if !template.exists() {
            let _g = self.inner.template_lock.lock().await;
            let gib = spec.volume_gib;
            template =
                tokio::task::spawn_blocking(move || volume::ensure_template(&templates, gib))
                    .await
                    .map_err(|e| RuntimeError::Io {
                        op: "join template task",
                        path: PathBuf::new(),
                        source: std::io::Error::other(e),
                    })??;
        }
        volume::create(&paths, &template).await
    }

    /// The instance's state as the host sees it.
    pub async fn state(&self, id: &str) -> Result<ContainerState, RuntimeError> {
        validate_id(id)?;
        match self.inner.runc.state(id).await? {
            Some(c) if c.status == "running" || c.status == "paused" => Ok(ContainerState::Running),
            Some(_) => Ok(ContainerState::Stopped),
            None if self.instance_dir(id).exists() => Ok(ContainerState::Stopped),
            None => Ok(ContainerState::Absent),
        }
    }

    /// Host pid of the instance's PID 1 while it runs.
    pub async fn init_pid(&self, id: &str) -> Result<Option<i32>, RuntimeError> {
        validate_id(id)?;
        Ok(self
            .inner
            .runc
            .state(id)
            .await?
            .filter(|c| c.status == "running" || c.status == "paused")
            .map(|c| c.pid))
    }

    /// Boots the instance (idempotent: a running instance is left alone). The spec's limits,
    /// hostname and files apply to this boot, which is how a resize takes effect.
    pub async fn start(&self, spec: &ContainerSpec) -> Result<(), RuntimeError> {
        validate_spec(spec)?;
        let lock = self.lock_for(&spec.id);
        let _g = lock.lock().await;
        self.start_locked(spec).await
    }

    async fn start_locked(&self, spec: &ContainerSpec) -> Result<(), RuntimeError> {
        let id = &spec.id;
        let runc = &self.inner.runc;
        match runc.state(id).await? {
            Some(c) if c.status == "running" || c.status == "paused" => {
                let dir = self.instance_dir(id);
                if !spec.warm && dir.join(WARM_MARKER).exists() {
                    return self.adopt(spec, c.pid).await;
                }
                if dir.join(HANDED_MARKER).exists() {
                    return finish_hand_over(&dir);
                }
                return Ok(());
            }
            // A container that stopped on its own, was killed from outside, or was left
            // "created" by a crash: clear runc's record before booting anew.
            Some(_) => runc.delete(id, true).await?,
            None => {}
        }
        self.prepare_locked(spec).await?;
        let started = Instant::now();
        match self.boot(spec).await {
            Ok(()) => {
                tracing::info!(
                    id,
                    ms = started.elapsed().as_millis() as u64,
                    "instance started"
                );
                Ok(())
            }
            Err(e) => {
                let cleanup = self.teardown(id).await;
                Err(e.with_cleanup(cleanup))
            }
        }
    }

    /// Mounts, writes the config and files, and runs the container.
    async fn boot(&self, spec: &ContainerSpec) -> Result<(), RuntimeError> {
        if !spec.image_rootfs.is_dir() {
            return Err(RuntimeError::InvalidSpec(format!(
                "image rootfs {} is not a directory",
                spec.image_rootfs.display()
            )));
        }
        let dir = self.instance_dir(&spec.id);
        let paths = VolumePaths::new(&dir);
        // What a crash or a host reboot left of attached volumes: the guest about to boot has
        // none yet (they are attached once it runs), and the record must not claim any.
        blockdev::release_all(&dir).await?;
        volume::mount_volume(&paths).await?;
        volume::mount_overlay(&paths, &spec.image_rootfs)?;
        write_files(spec, &paths.rootfs)?;
        // Marked before runc runs, so a crash in between still leaves a known warm guest.
        let marker = dir.join(WARM_MARKER);
        if spec.warm {
            std::fs::write(&marker, b"").map_err(|e| RuntimeError::io("write", &marker, e))?;
        } else {
            // A warm guest that died before (or during) its hand-over boots as the instance
            // it became.
            for m in [marker, dir.join(HANDED_MARKER)] {
                remove_if_exists(&m)?;
            }
        }

        let lxcfs = match &self.inner.lxcfs_dir {
            Some(d) if lxcfs::healthy(d) => Some(d.clone()),
            Some(d) => {
                // lxcfs died since the driver started: bring it back for this guest.
                let d = d.clone();
                Some(
                    tokio::task::spawn_blocking(move || lxcfs::ensure(&d))
                        .await
                        .map_err(|e| RuntimeError::Lxcfs(e.to_string()))??,
                )
            }
            None => None,
        };
        if self.inner.cgroup_mode != CgroupMode::V2 {
            // The guest's systemd gets this directory writable (see oci.rs); it must exist
            // before runc bind-mounts it.
            let own = Path::new(cgroups::CGROUP_ROOT)
                .join("systemd")
                .join(&self.inner.opts.cgroup_parent)
                .join(&spec.id);
            std::fs::create_dir_all(&own).map_err(|e| RuntimeError::io("create", &own, e))?;
        }
        let log_path = dir.join("console.log");
        console::trim(&log_path)?;
        let console_pty = self.start_relay(&dir).await;
        let facts = oci::HostFacts {
            cgroup_mode: self.inner.cgroup_mode,
            cgroup_parent: self.inner.opts.cgroup_parent.clone(),
            lxcfs,
            cpus: self.inner.sched.place(&spec.id, spec.vcpus),
            swap_accounting: self.inner.swap_accounting,
            cap_bounding: self.inner.cap_bounding,
            console_pty,
            nofile_hard: nofile_hard(self.inner.cap_bounding),
            sys_admin: self.inner.opts.guest_sys_admin,
            mount_listener: self.ensure_mountd().await,
        };
        let config = oci::build(spec, &facts)?;
        let config_path = dir.join("config.json");
        let tmp = dir.join("config.json.tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(&config)?)
            .map_err(|e| RuntimeError::io("write", &tmp, e))?;
        std::fs::rename(&tmp, &config_path)
            .map_err(|e| RuntimeError::io("rename", &config_path, e))?;

        let log = console::open_append(&log_path)?;
        self.inner
            .runc
            .run_detached(&dir, &spec.id, &log, &dir.join("runc.log"))
            .await?;
        if spec.warm {
            self.inner.sched.background(&spec.id);
        } else {
            self.inner.sched.booted(&spec.id);
        }
        Ok(())
    }

    /// Hands a warm guest its instance: the instance type's limits, CPUs and memory-sized
    /// tmpfs mounts, its hostname and files, then wakes its agent. Every step is idempotent
    /// until the files are in; from then on a retry only wakes the guest (see
    /// [`HANDED_MARKER`]).
    async fn adopt(&self, spec: &ContainerSpec, pid: i32) -> Result<(), RuntimeError> {
        let started = Instant::now();
        let dir = self.instance_dir(&spec.id);
        let cpus = self.inner.sched.place(&spec.id, spec.vcpus);
        let flags = oci::update_flags(spec, &cpus, self.inner.swap_accounting);
        self.inner.runc.update(&spec.id, &flags).await?;
        resize_tmpfs(pid, spec.memory_mib).await?;
        let (hostname, id) = (spec.hostname.clone(), spec.id.clone());
        tokio::task::spawn_blocking(move || set_uts_hostname(pid, &hostname))
            .await
            .map_err(|e| RuntimeError::io("join", Path::new(""), std::io::Error::other(e)))?
            .map_err(|e| RuntimeError::io("sethostname", Path::new(&format!("/proc/{pid}")), e))?;
        let rootfs = VolumePaths::new(&dir).rootfs;
        write_files(spec, &rootfs)?;
        let (warm, handed) = (dir.join(WARM_MARKER), dir.join(HANDED_MARKER));
        std::fs::rename(&warm, &handed).map_err(|e| RuntimeError::io("rename", &warm, e))?;
        finish_hand_over(&dir)?;
        self.inner.sched.booted(&spec.id);
        tracing::info!(
            id,
            ms = started.elapsed().as_millis() as u64,
            "warm guest handed its instance"
        );
        Ok(())
    }

    /// The warm guest `id`, if it is one and runs (see [`ContainerSpec::warm`]).
    pub async fn warm_guest(&self, id: &str) -> Result<Option<WarmGuest>, RuntimeError> {
        validate_id(id)?;
        let dir = self.instance_dir(id);
        if !dir.join(WARM_MARKER).exists() {
            return Ok(None);
        }
        let Some(pid) = self.init_pid(id).await? else {
            return Ok(None);
        };
        let rootfs = VolumePaths::new(&dir).rootfs;
        let waiting = inject::resolve_existing(&rootfs, Path::new(WARM_FIFO))
            .map(|fifo| fifo.exists())
            .unwrap_or(false);
        Ok(Some(WarmGuest { pid, waiting }))
    }

    /// Starts a console relay for the instance and returns its pty slave; None (with a
    /// warning) if there is no relay or it fails: a missing console must not stop a boot.
    async fn start_relay(&self, dir: &Path) -> Option<PathBuf> {
        let relay = self.inner.opts.console_relay.as_ref()?;
        let pty_file = console::pty_file(dir);
        // An older relay sees its file gone (or replaced) and exits.
        let _ = std::fs::remove_file(&pty_file);
        // `setsid -f`: the relay runs in its own session, reparented away from gureum.
        let status = tokio::process::Command::new("setsid")
            .arg("-f")
            .arg(&relay.program)
            .args(&relay.args)
            .arg(dir.join("console.log"))
            .arg(&pty_file)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .await;
        if !matches!(&status, Ok(s) if s.success()) {
            tracing::warn!(?status, program = %relay.program.display(), "console relay failed to start");
            return None;
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(path) = std::fs::read_to_string(&pty_file) {
                return Some(PathBuf::from(path));
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        tracing::warn!(dir = %dir.display(), "console relay did not publish its pty");
        None
    }

    /// Undoes a boot: container, console relay, mounts, loop device, cgroups. Keeps the
    /// volume and files.
    async fn teardown(&self, id: &str) -> Result<(), RuntimeError> {
        let mut errors = Vec::new();
        if let Err(e) = self.inner.runc.delete(id, true).await {
            errors.push(e);
        }
        // The relay exits once its pty file is gone.
        let _ = std::fs::remove_file(console::pty_file(&self.instance_dir(id)));
        let paths = VolumePaths::new(&self.instance_dir(id));
        if let Err(e) = volume::unmount(&paths).await {
            errors.push(e);
        }
        if let Err(e) = blockdev::release_all(&self.instance_dir(id)).await {
            errors.push(e);
        }
        if let Err(e) = self.remove_cgroups(id).await {
            errors.push(e);
        }
        RuntimeError::collect(errors)
    }

    async fn remove_cgroups(&self, id: &str) -> Result<(), RuntimeError> {
        self.inner.sched.forget(id);
        let mut errors = Vec::new();
        for d in cgroups::instance_dirs(&self.inner.opts.cgroup_parent, id)? {
            if let Err(e) = cgroups::remove_tree(&d).await {
                errors.push(e);
            }
        }
        RuntimeError::collect(errors)
    }

    /// Waits until runc no longer reports the container running.
    async fn wait_stopped(&self, id: &str, timeout: Duration) -> Result<bool, RuntimeError> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.inner.runc.state(id).await? {
                Some(c) if c.status == "running" || c.status == "paused" => {}
                _ => return Ok(true),
            }
            if Instant::now() >= deadline {
                return Ok(false);
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Stops the instance: graceful is systemd's halt (SIGRTMIN+3 to PID 1), then SIGKILL once
    /// `timeout` has passed; `force` kills at once. The root volume is kept. Idempotent.
    pub async fn stop(&self, id: &str, timeout: Duration, force: bool) -> Result<(), RuntimeError> {
        validate_id(id)?;
        let lock = self.lock_for(id);
        let _g = lock.lock().await;
        self.stop_locked(id, timeout, force).await
    }

    async fn stop_locked(
        &self,
        id: &str,
        timeout: Duration,
        force: bool,
    ) -> Result<(), RuntimeError> {
        let runc = &self.inner.runc;
        let started = Instant::now();
        if let Some(c) = runc.state(id).await? {
            if c.status == "running" || c.status == "paused" {
                if c.status == "paused" {
                    // A frozen guest can neither halt nor die: thaw it first.
                    runc.resume(id).await?;
                }
                let graceful = !force;
                if graceful {
                    runc.kill(id, SIGRTMIN_PLUS_3).await?;
                }
                if !graceful || !self.wait_stopped(id, timeout).await? {
                    if graceful {
                        tracing::warn!(id, ?timeout, "guest did not halt in time; killing it");
                    }
                    runc.kill(id, "KILL").await?;
                    if !self.wait_stopped(id, KILL_WAIT).await? {
                        return Err(RuntimeError::Timeout(format!(
                            "{id} still running {KILL_WAIT:?} after SIGKILL"
                        )));
                    }
                }
            }
        }
        self.teardown(id).await?;
        tracing::info!(
            id,
            ms = started.elapsed().as_millis() as u64,
            "instance stopped"
        );
        Ok(())
    }

    /// Graceful stop (up to [`REBOOT_STOP_TIMEOUT`]) and start with `spec`.
    pub async fn reboot(&self, spec: &ContainerSpec) -> Result<(), RuntimeError> {
        validate_spec(spec)?;
        let lock = self.lock_for(&spec.id);
        let _g = lock.lock().await;
        self.stop_locked(&spec.id, REBOOT_STOP_TIMEOUT, false)
            .await?;
        self.start_locked(spec).await
    }

    /// Removes every trace of the instance: container, mounts, loop devices (its volumes' too),
    /// cgroups in every hierarchy, volume and state directory. Idempotent (an absent instance is fine). Keeps
    /// going after a failed step and reports all failures.
    pub async fn destroy(&self, id: &str) -> Result<(), RuntimeError> {
        validate_id(id)?;
        let lock = self.lock_for(id);
        let guard = lock.lock().await;
        let runc = &self.inner.runc;
        let mut errors = Vec::new();
        match runc.state(id).await {
            Ok(Some(c)) => {
                if c.status == "running" || c.status == "paused" {
                    if c.status == "paused" {
                        if let Err(e) = runc.resume(id).await {
                            errors.push(e);
                        }
                    }
                    if let Err(e) = runc.kill(id, "KILL").await {
                        errors.push(e);
                    }
                    match self.wait_stopped(id, KILL_WAIT).await {
                        Ok(true) => {}
                        Ok(false) => errors.push(RuntimeError::Timeout(format!(
                            "{id} still running {KILL_WAIT:?} after SIGKILL"
                        ))),
                        Err(e) => errors.push(e),
                    }
                }
                if let Err(e) = runc.delete(id, true).await {
                    errors.push(e);
                }
            }
            Ok(None) => {}
            Err(e) => errors.push(e),
        }
        let dir = self.instance_dir(id);
        // Every mount under the instance directory, deepest first.
        match mounts::mounts_under(&dir) {
            Ok(mut ms) => {
                ms.sort_by_key(|m| std::cmp::Reverse(m.mount_point.components().count()));
                for m in ms {
                    if let Err(e) = mounts::unmount_all(&m.mount_point) {
                        errors.push(e);
                    }
                }
            }
            Err(e) => errors.push(e),
        }
        let paths = VolumePaths::new(&dir);
        match volume::loop_devices(&paths.image).await {
            Ok(devs) => {
                for dev in devs {
                    if let Err(e) = cmd::run("losetup", cmd::args!["-d", dev]).await {
                        errors.push(e);
                    }
                }
            }
            Err(e) => errors.push(e),
        }
        if let Err(e) = blockdev::release_all(&dir).await {
            errors.push(e);
        }
        if let Err(e) = self.remove_cgroups(id).await {
            errors.push(e);
        }
        if errors.is_empty() {
            match std::fs::remove_dir_all(&dir) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => errors.push(RuntimeError::io("remove", &dir, e)),
            }
        }
        drop(guard);
        if errors.is_empty() {
            self.inner
                .locks
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(id);
            tracing::info!(id, "instance destroyed");
        }
        RuntimeError::collect(errors)
    }

    /// Every instance id with any host resource: a runc container, a state directory (volume,
    /// logs) or a mount under the state directory. For leak detection.
    pub async fn list(&self) -> Result<Vec<String>, RuntimeError> {
        let mut ids = std::collections::BTreeSet::new();
        for c in self.inner.runc.list().await? {
            ids.insert(c.id);
        }
        let state_dir = &self.inner.opts.state_dir;
        let entries =
            std::fs::read_dir(state_dir).map_err(|e| RuntimeError::io("read", state_dir, e))?;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
            if is_dir && !name.starts_with('.') && validate_id(&name).is_ok() {
                ids.insert(name);
            }
        }
        for m in mounts::mounts_under(state_dir)? {
            if let Ok(rest) = m.mount_point.strip_prefix(state_dir) {
                if let Some(first) = rest.components().next() {
                    let name = first.as_os_str().to_string_lossy().into_owned();
                    if !name.starts_with('.') {
                        ids.insert(name);
                    }
                }
            }
        }
        Ok(ids.into_iter().collect())
    }

    /// Copies the instance's root filesystem — the AMI plus everything written since — into
    /// `dest` (a new directory), for `CreateImage`. A stopped instance's volume is mounted for
    /// the copy and unmounted again; a running one is copied live (AWS's `NoReboot`: not
    /// crash-consistent; the caller stops the guest first for a consistent copy). What makes a
    /// machine one particular instance is removed from the copy: SSH host keys, the machine id
    /// and the data the host injected, so instances of the new image get a first boot of their
    /// own.
    pub async fn snapshot(&self, spec: &ContainerSpec, dest: &Path) -> Result<(), RuntimeError> {
        validate_spec(spec)?;
        let lock = self.lock_for(&spec.id);
        let _g = lock.lock().await;
        let paths = VolumePaths::new(&self.instance_dir(&spec.id));
        let was_mounted = mounts::is_mountpoint(&paths.rootfs)?;
        if !was_mounted {
            std::fs::create_dir_all(&paths.mount)
                .map_err(|e| RuntimeError::io("create", &paths.mount, e))?;
            std::fs::create_dir_all(&paths.rootfs)
                .map_err(|e| RuntimeError::io("create", &paths.rootfs, e))?;
            volume::mount_volume(&paths).await?;
            volume::mount_overlay(&paths, &spec.image_rootfs)?;
        }
        let partial = dest.with_extension("partial");
        let _ = std::fs::remove_dir_all(&partial);
        std::fs::create_dir_all(&partial).map_err(|e| RuntimeError::io("create", &partial, e))?;
        let copied = cmd::run(
            "cp",
            cmd::args![
                "-a",
                "--reflink=auto",
                format!("{}/.", paths.rootfs.display()),
                &partial
            ],
        )
        .await;
        let unmounted = if was_mounted {
            Ok(())
        } else {
            volume::unmount(&paths).await
        };
        copied?;
        unmounted?;
        for rel in [
            "var/lib/gureum/instance.env",
            "var/lib/gureum/authorized_keys",
            "var/lib/gureum/user-data",
            "var/lib/gureum/first-boot.done",
            "var/lib/gureum/warm",
            "var/lib/gureum/claim",
        ] {
            let _ = std::fs::remove_file(partial.join(rel));
        }
        if let Ok(entries) = std::fs::read_dir(partial.join("etc/ssh")) {
            for e in entries.flatten() {
                if e.file_name().to_string_lossy().starts_with("ssh_host_") {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        let _ = std::fs::write(partial.join("etc/machine-id"), b"");
        std::fs::rename(&partial, dest).map_err(|e| RuntimeError::io("rename", dest, e))?;
        Ok(())
    }

    /// Writes the instance's root file system (the AMI plus everything written since) into
    /// `dest` as a raw disk of the volume's size holding an ext4 (see [`volume::export_tree`]),
    /// so the root volume can live on as an ordinary EBS volume. A running instance is read
    /// live through its mounted root; a stopped one is mounted read-only for the export (under
    /// `<instance dir>/export/`) and unmounted again. Idempotent.
    pub async fn export_root_volume(
        &self,
        spec: &ContainerSpec,
        dest: &Path,
    ) -> Result<(), RuntimeError> {
        validate_spec(spec)?;
        let lock = self.lock_for(&spec.id);
        let _g = lock.lock().await;
        let dir = self.instance_dir(&spec.id);
        let paths = VolumePaths::new(&dir);
        if !paths.image.exists() {
            return Err(RuntimeError::NotFound(spec.id.clone()));
        }
        if mounts::is_mountpoint(&paths.rootfs)? {
            return volume::export_tree(&paths.rootfs, dest, spec.volume_gib).await;
        }
        let (vol, root) = (dir.join("export/volume"), dir.join("export/root"));
        let mounted = volume::mount_read_only(&paths, &spec.image_rootfs, &vol, &root).await;
        let exported = match mounted {
            Ok(()) => volume::export_tree(&root, dest, spec.volume_gib).await,
            Err(e) => Err(e),
        };
        let unmounted = mounts::unmount_all(&root).and_then(|()| mounts::unmount_all(&vol));
        exported?;
        unmounted?;
        let _ = std::fs::remove_dir_all(dir.join("export"));
        Ok(())
    }

    /// The last `max_bytes` of the instance's console log.
    pub fn console_output(&self, id: &str, max_bytes: usize) -> Result<Vec<u8>, RuntimeError> {
        validate_id(id)?;
        let dir = self.instance_dir(id);
        if !dir.exists() {
            return Err(RuntimeError::NotFound(id.to_string()));
        }
        console::tail(&dir.join("console.log"), max_bytes)
    }

    /// Runs a command in the running instance (`runc exec`), for tests and diagnostics.
    pub async fn exec(
        &self,
        id: &str,
        argv: &[&str],
    ) -> Result<std::process::Output, RuntimeError> {
        validate_id(id)?;
        if argv.is_empty() {
            return Err(RuntimeError::InvalidSpec("exec needs a command".into()));
        }
        // A guest booted with mount interception makes runc connect to mountd for every
        // process it execs too.
        if self.instance_config_has_listener(id) {
            self.ensure_mountd().await;
        }
        self.inner.runc.exec(id, argv).await
    }
}

impl RuncDriver {
    /// Whether the instance's last config names a seccomp listener.
    fn instance_config_has_listener(&self, id: &str) -> bool {
        std::fs::read(self.instance_dir(id).join("config.json"))
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .is_some_and(|c| c["linux"]["seccomp"]["listenerPath"].is_string())
    }
}

/// Writes `/etc/hostname` (unless the spec brings its own) and the spec's files into the
/// guest's root.
fn write_files(spec: &ContainerSpec, rootfs: &Path) -> Result<(), RuntimeError> {
    if !spec
        .inject
        .iter()
        .any(|f| f.path == Path::new("/etc/hostname"))
    {
        // systemd sets the hostname from /etc/hostname at boot, over the one runc set.
        inject::write(
            rootfs,
            &InjectFile {
                path: "/etc/hostname".into(),
                contents: format!("{}\n", spec.hostname).into_bytes(),
                mode: 0o644,
                uid: 0,
                gid: 0,
            },
        )?;
    }
    for f in &spec.inject {
        inject::write(rootfs, f)?;
    }
    Ok(())
}

fn remove_if_exists(path: &Path) -> Result<(), RuntimeError> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(RuntimeError::io("remove", path, e))
        }
        _ => Ok(()),
    }
}

/// The last of a hand-over: wake the guest's agent, then drop the marker.
fn finish_hand_over(dir: &Path) -> Result<(), RuntimeError> {
    wake(&VolumePaths::new(dir).rootfs);
    remove_if_exists(&dir.join(HANDED_MARKER))
}

/// Gives `pid`'s memory-sized tmpfs mounts (/dev/shm, /run, /tmp) the sizes a guest of
/// `memory_mib` boots with: their size is fixed when mounted, `runc update` leaves them. The
/// host's `mount` does it inside the guest's mount namespace (`--namespace`).
async fn resize_tmpfs(pid: i32, memory_mib: u64) -> Result<(), RuntimeError> {
    let ns = format!("/proc/{pid}/ns/mnt");
    let mut tasks = tokio::task::JoinSet::new();
    for (dest, size) in oci::memory_sized_tmpfs(memory_mib) {
        let ns = ns.clone();
        tasks.spawn(async move {
            let opts = format!("remount,{size}");
            cmd::run("mount", cmd::args!["--namespace", ns, "-o", opts, dest]).await
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.map_err(|e| RuntimeError::io("join", Path::new(""), std::io::Error::other(e)))??;
    }
    Ok(())
}

/// Sets the hostname of `pid`'s UTS namespace (from a throwaway thread: a namespace switch
/// applies to the calling thread only). Refuses the host's own namespace (a pid reused by a
/// host process).
fn set_uts_hostname(pid: i32, hostname: &str) -> std::io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let ns = std::fs::File::open(format!("/proc/{pid}/ns/uts"))?;
    let own = std::fs::metadata("/proc/self/ns/uts")?;
    let theirs = ns.metadata()?;
    if (own.dev(), own.ino()) == (theirs.dev(), theirs.ino()) {
        return Err(std::io::Error::other(format!(
            "process {pid} is in the host's UTS namespace"
        )));
    }
    let hostname = hostname.to_string();
    std::thread::spawn(move || -> std::io::Result<()> {
        nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWUTS)?;
        nix::unistd::sethostname(&hostname)?;
        Ok(())
    })
    .join()
    .map_err(|_| std::io::Error::other("hostname thread panicked"))?
}

/// Writes a line to the FIFO a waiting guest agent reads ([`WARM_FIFO`] in the guest
/// `rootfs`); nothing if nobody waits (the agent looks for its identity before it starts
/// waiting). Resolved inside the guest's root as the injected files are, never through a
/// symlink, and never blocks.
fn wake(rootfs: &Path) {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let Ok(fifo) = inject::resolve_existing(rootfs, Path::new(WARM_FIFO)) else {
        return;
    };
    let flags = nix::fcntl::OFlag::O_NONBLOCK | nix::fcntl::OFlag::O_NOFOLLOW;
    let is_fifo = std::fs::symlink_metadata(&fifo)
        .map(|m| std::os::unix::fs::FileTypeExt::is_fifo(&m.file_type()))
        .unwrap_or(false);
    if !is_fifo {
        return;
    }
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(flags.bits())
        .open(&fifo)
    {
        let _ = f.write_all(b"\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_checked() {
        assert!(validate_id("i-0123456789abcdef0").is_ok());
        for bad in ["", ".runc", "../x", "a/b", "i 1", &"x".repeat(65)] {
            assert!(validate_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn specs_are_checked() {
        let ok = ContainerSpec {
            id: "i-1".into(),
            image_rootfs: "/img".into(),
            volume_gib: 8,
            hostname: "ip-10-0-0-1".into(),
            vcpus: 1,
            memory_mib: 512,
            pids_max: 1024,
            netns: None,
            inject: vec![],
            warm: false,
        };
        assert!(validate_spec(&ok).is_ok());
        let mut s = ok.clone();
        s.vcpus = 0;
        assert!(validate_spec(&s).is_err());
        let mut s = ok.clone();
        s.hostname = "bad host".into();
        assert!(validate_spec(&s).is_err());
        let mut s = ok.clone();
        s.image_rootfs = "relative".into();
        assert!(validate_spec(&s).is_err());
        let mut s = ok;
        s.inject.push(InjectFile {
            path: "etc/x".into(),
            contents: vec![],
            mode: 0o644,
            uid: 0,
            gid: 0,
        });
        assert!(validate_spec(&s).is_err());
    }

    #[test]
    fn reads_process_start_time() {
        let me = std::process::id() as i32;
        assert!(process_start_time(me).is_some());
        assert!(process_start_time(i32::MAX).is_none());
    }

    #[test]
    fn reads_bounding_set() {
        assert_ne!(cap_bounding(), 0);
    }
}
