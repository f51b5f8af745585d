//! mountd: lets a container instance mount and unmount its attached EBS volumes, as a user
//! does on EC2 (`mkfs -t ext4 /dev/xvdf && mount /dev/xvdf /data`), although the guest has
//! no CAP_SYS_ADMIN (see oci.rs).
//!
//! How: the guest's seccomp profile answers `mount` and `umount2` with `SCMP_ACT_NOTIFY` and
//! names mountd's socket as its `listenerPath`. runc connects to it at each `runc run` and
//! `runc exec` and hands over the filter's notification fd (SCM_RIGHTS) with the container's
//! state (id, init pid, bundle = the instance directory). mountd keeps one thread per fd; for
//! each intercepted call it reads the arguments from the caller's memory, checks them against
//! the rules in [`policy`] and the instance's `volumes.json`, and either performs the call in
//! the guest's mount namespace ([`perform`]) and answers its result, or answers "continue",
//! so the kernel runs the call with the guest's own credentials and fails it exactly as
//! without interception (EPERM).
//!
//! Why a process of its own: the notification fd must outlive `gureum up`, because guests
//! keep running across server restarts, and once the fd's last holder closes it every
//! intercepted call in that filter fails with ENOSYS until the container restarts. So mountd
//! is a small detached process (`setsid`, like the console relay), one per state directory,
//! started by the driver before a `runc run` or `runc exec` when its socket does not answer,
//! and never restarted while it answers. It lives in a mount namespace of its own (a slave of
//! the host's, so it sees the host's mounts) holding a private tmpfs for the device nodes it
//! mounts from. It exits once its socket is gone (the state directory was removed) and no
//! container's fd is left.
//!
//! Layout: `<state>/.mountd/sock` (the listener, root only), `lock` (one daemon per state
//! directory), `log` (one line per decision that is not "continue"), `stage/` (mount point of
//! the private tmpfs, empty as the host sees it).

mod notify;
pub(crate) mod perform;
pub(crate) mod policy;

use std::ffi::OsString;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use notify::Answer;
use perform::{Caller, Host, Outcome};
use policy::{Attached, MountArgs, Refusal};

/// The daemon's directory under a driver's state directory.
pub(crate) fn dir(state_dir: &Path) -> PathBuf {
    state_dir.join(".mountd")
}

/// The listener socket runc connects to.
pub(crate) fn socket(state_dir: &Path) -> PathBuf {
    dir(state_dir).join("sock")
}

/// The volumes attached to an instance, from `<instance dir>/volumes.json` (written by the
/// attach code, `blockdev.rs`; none when the file is missing).
pub(crate) fn attached_volumes(instance_dir: &Path) -> std::io::Result<Vec<Attached>> {
    crate::blockdev::attached_volumes(instance_dir).map_err(std::io::Error::other)
}

/// Lazily unmount, in this process's mount namespace, every mount but the ones the daemon
/// uses: `/`, `/proc`, `/sys`, `/dev` and the mounts holding `state_dir` (deepest first).
/// Best effort: what cannot be unmounted is logged and kept.
fn detach_unneeded_mounts(state_dir: &Path) {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let needed = |p: &Path| {
        p == Path::new("/")
            || ["/proc", "/sys", "/dev"].iter().any(|k| p.starts_with(k))
            || state_dir.starts_with(p)
    };
    let mut points: Vec<PathBuf> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(p.replace("\\040", " ")))
        .filter(|p| !needed(p))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    points.dedup();
    for p in points {
        match nix::mount::umount2(&p, nix::mount::MntFlags::MNT_DETACH) {
            // Gone with a parent detached before it.
            Ok(()) | Err(nix::errno::Errno::EINVAL | nix::errno::Errno::ENOENT) => {}
            Err(e) => eprintln!("mountd: detaching {}: {e}", p.display()),
        }
    }
}

/// Whether this host can intercept mounts: runc must know `SCMP_ACT_NOTIFY` (`runc features`,
/// runc 1.1+ with libseccomp 2.5+) and the kernel must be 5.9 or later (the notification
/// ioctls with `ID_VALID` at its final number, `SECCOMP_USER_NOTIF_FLAG_CONTINUE`, `openat2`,
/// `STATX_MNT_ID`, the new mount API). `Ok` says what was found, `Err` why not.
pub fn host_support(runc: &Path) -> Result<String, String> {
    let release = nix::sys::utsname::uname()
        .map_err(|e| format!("uname: {e}"))?
        .release()
        .to_string_lossy()
        .into_owned();
    let mut nums = release
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse::<u32>().ok());
    let version = (nums.next().unwrap_or(0), nums.next().unwrap_or(0));
    if version < (5, 9) {
        return Err(format!("kernel {release} is older than 5.9"));
    }
    let out = std::process::Command::new(runc)
        .arg("features")
        .output()
        .map_err(|e| format!("{}: {e}", runc.display()))?;
    let features: serde_json::Value = serde_json::from_slice(&out.stdout)
        .map_err(|_| format!("{} has no `features` command (runc < 1.1)", runc.display()))?;
    let notify = features["linux"]["seccomp"]["actions"]
        .as_array()
        .is_some_and(|a| a.iter().any(|v| v == "SCMP_ACT_NOTIFY"));
    if !notify {
        return Err(format!("{} cannot use SCMP_ACT_NOTIFY", runc.display()));
    }
    Ok(format!("seccomp notify (kernel {release})"))
}

/// Makes sure a mountd answers on `state_dir`'s socket, starting `program args… <state_dir>`
/// detached if none does, and waits up to 5 s for it.
pub(crate) async fn ensure(
    program: &Path,
    args: &[OsString],
    state_dir: &Path,
) -> Result<(), String> {
    let sock = socket(state_dir);
    if ping(&sock).await {
        return Ok(());
    }
    let status = tokio::process::Command::new("setsid")
        .arg("-f")
        .arg(program)
        .args(args)
        .arg(state_dir)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .await
        .map_err(|e| format!("setsid {}: {e}", program.display()))?;
    if !status.success() {
        return Err(format!("setsid {}: {status}", program.display()));
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if ping(&sock).await {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Err(format!("mountd did not answer on {}", sock.display()))
}

/// Whether a mountd answers on `sock`.
async fn ping(sock: &Path) -> bool {
    let sock = sock.to_path_buf();
    tokio::task::spawn_blocking(move || ping_blocking(&sock))
        .await
        .unwrap_or(false)
}

fn ping_blocking(sock: &Path) -> bool {
    let Ok(mut s) = UnixStream::connect(sock) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"ping").is_err() || s.shutdown(std::net::Shutdown::Write).is_err() {
        return false;
    }
    let mut reply = Vec::new();
    s.read_to_end(&mut reply).is_ok() && reply == b"pong"
}

/// mountd's `main`: `gureum-mountd <state dir>`. Returns the exit code.
pub fn mountd_main(args: &[OsString]) -> i32 {
    let [state_dir] = args else {
        eprintln!("usage: gureum-mountd <state dir>");
        return 2;
    };
    // Its own name (not the binary's, which may be `gureum`), for ps and for the scripts
    // that look for a still-running gureum.
    let _ = nix::sys::prctl::set_name(c"gureum-mountd");
    match run(Path::new(state_dir)) {
        Ok(()) => 0,
        Err(e) => {
            log(&format!("exiting: {e}"));
            1
        }
    }
}

fn log(msg: &str) {
    eprintln!("gureum-mountd[{}]: {msg}", std::process::id());
}

/// What every connection's threads share.
struct Daemon {
    state_dir: PathBuf,
    own_ns: File,
    proc: OwnedFd,
    stage: PathBuf,
    /// Live notification fds (the daemon exits only at 0).
    live: AtomicUsize,
    /// Names per-request staging directories.
    seq: AtomicUsize,
}

fn run(state_dir: &Path) -> std::io::Result<()> {
    use nix::mount::{mount, MsFlags};
    let dir = dir(state_dir);
    std::fs::create_dir_all(&dir)?;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
    let lock = File::create(dir.join("lock"))?;
    let _lock = match nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusiveNonblock) {
        Ok(l) => l,
        // Another mountd serves this directory.
        Err(_) => return Ok(()),
    };
    let logf = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("log"))?;
    // Our stderr (the log) for the decisions worth reading later.
    nix::unistd::dup2(logf.as_raw_fd(), 2)?;
    let stage = dir.join("stage");
    std::fs::create_dir_all(&stage)?;
    // A mount namespace of our own, still receiving the host's mounts, with a tmpfs (device
    // nodes allowed, unlike /run's) that no one else sees.
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)?;
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_SLAVE,
        None::<&str>,
    )?;
    // The copies of the host's mounts this daemon does not need are not its to keep: held
    // here, the file systems of instances' root volumes, an EBS pool or anything else mounted
    // on the host would stay mounted and their loop devices busy after the host unmounts
    // them (an unmount under a private parent does not propagate to this copy). Detached in
    // this namespace only.
    detach_unneeded_mounts(state_dir);
    mount(
        Some("mountd"),
        &stage,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some("mode=0700,size=1m"),
    )?;
    std::env::set_current_dir("/")?;
    let sock = socket(state_dir);
    let _ = std::fs::remove_file(&sock);
    let listener = UnixListener::bind(&sock)?;
    std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o600))?;
    let ours = std::fs::metadata(&sock)?.ino();
    let daemon = Arc::new(Daemon {
        state_dir: state_dir.to_path_buf(),
        own_ns: File::open("/proc/self/ns/mnt")?,
        proc: rustix::fs::open(
            "/proc",
            rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )?,
        stage,
        live: AtomicUsize::new(0),
        seq: AtomicUsize::new(0),
    });
    log(&format!("serving {}", sock.display()));
    listener.set_nonblocking(true)?;
    loop {
        match listener.accept() {
            Ok((conn, _)) => {
                if let Err(e) = connection(&daemon, conn) {
                    log(&format!("connection: {e}"));
                }
                continue;
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
        let still_ours = std::fs::metadata(&sock).is_ok_and(|m| m.ino() == ours);
        if !still_ours && daemon.live.load(Ordering::SeqCst) == 0 {
            log("socket gone and no container left: exiting");
            return Ok(());
        }
        let mut fds = [nix::poll::PollFd::new(
            listener.as_fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        let _ = nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(1000u16));
    }
}

/// The part of runc's container process state mountd uses.
#[derive(serde::Deserialize)]
struct ProcessState {
    pid: i32,
    state: ContainerState,
}

#[derive(serde::Deserialize)]
struct ContainerState {
    id: String,
    #[serde(default)]
    pid: i32,
    bundle: PathBuf,
}

/// One connection: a health check (`ping`) or runc handing over a notification fd.
fn connection(daemon: &Arc<Daemon>, conn: UnixStream) -> std::io::Result<()> {
    use rustix::net::{recvmsg, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
    use std::mem::MaybeUninit;
    conn.set_nonblocking(false)?;
    conn.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut buf = vec![0u8; 64 * 1024];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(4))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let n = {
        let mut iov = [std::io::IoSliceMut::new(&mut buf)];
        recvmsg(&conn, &mut iov, &mut control, RecvFlags::CMSG_CLOEXEC)?.bytes
    };
    let mut fds: Vec<OwnedFd> = Vec::new();
    for msg in control.drain() {
        if let RecvAncillaryMessage::ScmRights(r) = msg {
            fds.extend(r);
        }
    }
    let mut data = buf[..n].to_vec();
    if fds.is_empty() {
        let mut conn = conn;
        if data.starts_with(b"ping") {
            conn.write_all(b"pong")?;
        }
        return Ok(());
    }
    // The state is one JSON document; runc may keep the connection open after it, so read
    // until it parses rather than to the end.
    let mut conn = conn;
    let state: ProcessState = loop {
        match serde_json::from_slice(&data) {
            Ok(s) => break s,
            Err(e) if e.is_eof() => {
                let mut more = [0u8; 4096];
                match conn.read(&mut more)? {
                    0 => return Err(std::io::Error::other(e)),
                    n => data.extend_from_slice(&more[..n]),
                }
            }
            Err(e) => return Err(std::io::Error::other(e)),
        }
    };
    // Only instances of our own state directory.
    if state.state.bundle.parent() != Some(daemon.state_dir.as_path()) {
        return Err(std::io::Error::other(format!(
            "bundle {} is not under {}",
            state.state.bundle.display(),
            daemon.state_dir.display()
        )));
    }
    let init = if state.state.pid > 0 {
        state.state.pid
    } else {
        state.pid
    };
    // The capabilities a caller needs are the container's bounding set, read when each call
    // comes rather than now: runc installs the filter (and connects here) before it drops the
    // container's capabilities, so the set read at this moment may still be the host's.
    log(&format!(
        "{}: serving the filter of pid {} ({} fd)",
        state.state.id,
        state.pid,
        fds.len()
    ));
    for fd in fds {
        let d = Arc::clone(daemon);
        let id = state.state.id.clone();
        let bundle = state.state.bundle.clone();
        d.live.fetch_add(1, Ordering::SeqCst);
        std::thread::spawn(move || {
            serve(&d, &fd, &id, &bundle, init);
            d.live.fetch_sub(1, Ordering::SeqCst);
        });
    }
    Ok(())
}

/// A process's capability bounding set (`CapBnd` in its status).
fn bounding_set(pid: i32) -> std::io::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .ok_or_else(|| std::io::Error::other(format!("no CapBnd for {pid}")))
}

/// Answers one filter's notifications until every process under it is gone.
fn serve(daemon: &Daemon, fd: &OwnedFd, id: &str, bundle: &Path, init: i32) {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    loop {
        let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {}
            Err(nix::Error::EINTR) => continue,
            Err(_) => return,
        }
        let revents = fds[0].revents().unwrap_or(PollFlags::empty());
        if !revents.contains(PollFlags::POLLIN) {
            // POLLHUP: no process is left under this filter.
            log(&format!("{id}: filter done ({revents:?})"));
            return;
        }
        let n = match notify::recv(fd.as_fd()) {
            Ok(n) => n,
            // The caller went away between poll and recv.
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
            Err(e) => {
                log(&format!("{id}: recv: {e}"));
                return;
            }
        };
        let started = Instant::now();
        let answer = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            handle(daemon, fd, &n, bundle, init)
        }))
        .unwrap_or_else(|_| {
            log(&format!("{id}: handling syscall {} panicked", n.nr));
            Answer::Error(libc::EIO)
        });
        if answer != Answer::Continue {
            log(&format!(
                "{id}: pid {} syscall {} -> {answer:?} in {} us",
                n.pid,
                n.nr,
                started.elapsed().as_micros()
            ));
        }
        // ENOENT: the caller was killed meanwhile; nothing to answer.
        let _ = notify::respond(fd.as_fd(), n.id, answer);
    }
}

#[cfg(target_arch = "x86_64")]
const NATIVE_ARCH: u32 = 0xc000_003e; // AUDIT_ARCH_X86_64
#[cfg(target_arch = "aarch64")]
const NATIVE_ARCH: u32 = 0xc000_00b7; // AUDIT_ARCH_AARCH64
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
const NATIVE_ARCH: u32 = 0;

/// The answer to one notification.
fn handle(
    daemon: &Daemon,
    fd: &OwnedFd,
    n: &notify::Notification,
    bundle: &Path,
    init: i32,
) -> Answer {
    // Compat-ABI calls (32-bit) lay their arguments out differently: the kernel answers them
    // as it always did.
    let mount = i64::from(n.nr) == libc::SYS_mount;
    let umount = i64::from(n.nr) == libc::SYS_umount2;
    if n.arch != NATIVE_ARCH || !(mount || umount) {
        return Answer::Continue;
    }
    let Ok(caller) = Caller::open(n.pid) else {
        return Answer::Continue;
    };
    // The descriptors above are the caller's only if the notification is still pending.
    if !notify::id_valid(fd.as_fd(), n.id) {
        return Answer::Continue;
    }
    let Ok(required) = bounding_set(init) else {
        return Answer::Continue;
    };
    if !caller.is_full_root(required) {
        log(&format!(
            "pid {}: left to the kernel: not the guest's full root",
            n.pid
        ));
        return Answer::Continue;
    }
    let attached = match attached_volumes(bundle) {
        Ok(a) if !a.is_empty() => a,
        Ok(_) => return Answer::Continue,
        Err(e) => {
            log(&format!("{}: {e}", bundle.join("volumes.json").display()));
            return Answer::Continue;
        }
    };
    let stage = daemon
        .stage
        .join(daemon.seq.fetch_add(1, Ordering::SeqCst).to_string());
    let host = Host {
        own_ns: &daemon.own_ns,
        stage: &stage,
        proc: &daemon.proc,
    };
    let outcome = if mount {
        let read = |i: usize| caller.string(n.args[i]);
        let args = match (read(0), read(1), read(2), read(4)) {
            (Ok(source), Ok(Some(target)), Ok(fstype), data) => MountArgs {
                source,
                target,
                fstype,
                flags: n.args[3],
                // Binary data (some file systems take it) is not for us.
                data: data.unwrap_or(Some("\u{0}".into())),
            },
            _ => return Answer::Continue,
        };
        let outcome = perform::mount(&caller, &host, &args, &attached);
        let _ = std::fs::remove_dir_all(&stage);
        if matches!(outcome, Outcome::Done) {
            log(&format!(
                "mounted {:?} on {:?} for pid {}",
                args.source, args.target, n.pid
            ));
        }
        outcome
    } else {
        let Ok(Some(target)) = caller.string(n.args[0]) else {
            return Answer::Continue;
        };
        perform::umount(&caller, &host, &target, n.args[1], &attached)
    };
    match outcome {
        Outcome::Done => Answer::Success,
        Outcome::Failed(errno) => Answer::Error(errno),
        Outcome::Refused(Refusal::NotOurs(why)) => {
            if mount || umount {
                log(&format!("pid {}: left to the kernel: {why}", n.pid));
            }
            Answer::Continue
        }
        Outcome::Refused(Refusal::Denied(why)) => {
            log(&format!("pid {}: denied: {why}", n.pid));
            Answer::Error(libc::EPERM)
        }
    }
}
