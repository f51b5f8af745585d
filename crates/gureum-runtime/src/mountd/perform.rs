//! The side effects of mount interception: reading the caller's arguments out of its memory,
//! and doing the mount or unmount inside its mount namespace.
//!
//! Paths are resolved exactly as the guest's own call would resolve them: a worker thread
//! unshares its `fs_struct` (so that it alone may switch mount namespace while the daemon's
//! other threads go on), enters the container's mount namespace, `chroot`s to the caller's
//! root and `chdir`s to its cwd. A symlink to `/etc` is the guest's `/etc`, `..` stops at the
//! guest's root, and a relative path starts at the guest's cwd. The source is never mounted by
//! the guest's path: once that path is found to be an attached volume's device, the file
//! system is created (`fsopen`/`fsconfig`/`fsmount`) from a node mountd makes itself on a
//! private tmpfs for that device number, so swapping `/dev/xvdf` for another device after the
//! check changes nothing. The new mount is then attached to the target directory already
//! opened in the guest's namespace (`move_mount` by descriptor), so the target cannot be
//! swapped either. An unmount names the checked mount by descriptor in the same way (see
//! [`umount`]).

use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use nix::sched::CloneFlags;
use rustix::fs::{AtFlags, FileType, Mode, OFlags, StatxAttributes, StatxFlags};
use rustix::mount::{FsMountFlags, FsOpenFlags, MountAttrFlags, MoveMountFlags, UnmountFlags};

use super::policy::{self, Attached, Attr, MountArgs, Refusal};

/// What came of a request.
#[derive(Debug)]
pub(crate) enum Outcome {
    Done,
    Refused(Refusal),
    /// The call fails with this errno (what the kernel said when mountd tried).
    Failed(i32),
}

impl From<io::Error> for Outcome {
    fn from(e: io::Error) -> Self {
        Outcome::Failed(e.raw_os_error().unwrap_or(libc::EIO))
    }
}

impl From<rustix::io::Errno> for Outcome {
    fn from(e: rustix::io::Errno) -> Self {
        Outcome::Failed(e.raw_os_error())
    }
}

impl From<nix::Error> for Outcome {
    fn from(e: nix::Error) -> Self {
        Outcome::Failed(e as i32)
    }
}

/// The caller, pinned by descriptors opened under its /proc directory (valid once
/// [`super::notify::id_valid`] has said the notification is still pending).
pub(crate) struct Caller {
    pub pid: u32,
    pub mem: File,
    pub root: OwnedFd,
    pub cwd: OwnedFd,
    pub mntns: File,
    pub status: String,
}

impl Caller {
    pub fn open(pid: u32) -> io::Result<Caller> {
        let dir = PathBuf::from(format!("/proc/{pid}"));
        let dirflags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let mut status = String::new();
        File::open(dir.join("status"))?.read_to_string(&mut status)?;
        Ok(Caller {
            pid,
            mem: File::open(dir.join("mem"))?,
            root: rustix::fs::open(dir.join("root"), dirflags, Mode::empty())?,
            cwd: rustix::fs::open(dir.join("cwd"), dirflags, Mode::empty())?,
            mntns: File::open(dir.join("ns/mnt"))?,
            status,
        })
    }

    /// Whether the caller is the guest's full root: effective uid 0 and every capability the
    /// container grants (`required`, its init's bounding set) effective. Without
    /// interception only CAP_SYS_ADMIN could mount; the guest's root stands in for it, and a
    /// root process that dropped capabilities (a sandboxed service) does not.
    pub fn is_full_root(&self, required: u64) -> bool {
        let field = |name: &str| {
            self.status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .map(str::trim)
        };
        let euid_root = field("Uid:")
            .and_then(|v| v.split_whitespace().nth(1))
            .is_some_and(|e| e == "0");
        let caps = field("CapEff:").and_then(|v| u64::from_str_radix(v, 16).ok());
        euid_root && caps.is_some_and(|c| c & required == required)
    }

    /// A NUL-terminated string at `addr` in the caller's memory (None for NULL; at most one
    /// page, as the kernel copies). Errors for unreadable memory or a non-UTF-8 string.
    pub fn string(&self, addr: u64) -> io::Result<Option<String>> {
        if addr == 0 {
            return Ok(None);
        }
        const MAX: usize = 4096;
        let mut out = Vec::new();
        let mut at = addr;
        while out.len() < MAX {
            // Read up to the page boundary: the next page may be unmapped.
            let chunk = (4096 - (at % 4096)) as usize;
            let mut buf = vec![0u8; chunk.min(MAX - out.len())];
            let n = self.mem.read_at(&mut buf, at)?;
            if n == 0 {
                return Err(io::Error::from_raw_os_error(libc::EFAULT));
            }
            if let Some(end) = buf[..n].iter().position(|b| *b == 0) {
                out.extend_from_slice(&buf[..end]);
                return String::from_utf8(out)
                    .map(Some)
                    .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL));
            }
            out.extend_from_slice(&buf[..n]);
            at += n as u64;
        }
        Err(io::Error::from_raw_os_error(libc::ENAMETOOLONG))
    }
}

/// Runs `f` on a fresh thread whose filesystem context (root, cwd, mount namespace) is its
/// own, so that it can enter the guest's namespace without touching the daemon's.
fn on_own_thread<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| {
        s.spawn(move || {
            nix::sched::unshare(CloneFlags::CLONE_FS).expect("unshare(CLONE_FS)");
            f()
        })
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p))
    })
}

/// Enters the caller's mount namespace, root and cwd (on a thread from [`on_own_thread`]).
fn enter(c: &Caller) -> Result<(), Outcome> {
    nix::sched::setns(&c.mntns, CloneFlags::CLONE_NEWNS)?;
    rustix::process::fchdir(&c.root)?;
    rustix::process::chroot(".")?;
    rustix::process::fchdir(&c.cwd)?;
    Ok(())
}

/// Everything a mount needs from the daemon.
pub(crate) struct Host<'a> {
    /// The daemon's own mount namespace (with the private staging tmpfs).
    pub own_ns: &'a File,
    /// A directory on that tmpfs for this request (created and removed by the caller).
    pub stage: &'a Path,
    /// The host's procfs, reachable while chrooted in a guest.
    pub proc: &'a OwnedFd,
}

/// A guest's `mount(2)` of an attached volume (see the module docs).
pub(crate) fn mount(
    c: &Caller,
    host: &Host<'_>,
    args: &MountArgs,
    attached: &[Attached],
) -> Outcome {
    if let Err(r) = policy::mount_flags(args.flags) {
        return Outcome::Refused(r);
    }
    let Some(source) = args.source.clone() else {
        return Outcome::Refused(Refusal::NotOurs("no source"));
    };
    let done = on_own_thread(|| -> Result<(), Outcome> {
        enter(c)?;
        let Ok(st) = rustix::fs::stat(source.as_str()) else {
            return Err(Outcome::Refused(Refusal::NotOurs(
                "source does not resolve",
            )));
        };
        if FileType::from_raw_mode(st.st_mode) != FileType::BlockDevice {
            return Err(Outcome::Refused(Refusal::NotOurs(
                "source is not a block device",
            )));
        }
        let dev = (rustix::fs::major(st.st_rdev), rustix::fs::minor(st.st_rdev));
        let Some(vol) = attached.iter().find(|a| (a.major, a.minor) == dev) else {
            return Err(Outcome::Refused(Refusal::NotOurs(
                "source is not an attached volume",
            )));
        };
        let plan = match policy::plan_mount(args) {
            Ok(p) => p,
            Err(r) => return Err(Outcome::Refused(r)),
        };
        let target = rustix::fs::open(
            args.target.as_str(),
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;

        // Back in the daemon's namespace: the device node mountd trusts, named as the guest
        // will see the mount's source.
        nix::sched::setns(host.own_ns, CloneFlags::CLONE_NEWNS)?;
        let name = vol.mount_source();
        let node = host.stage.join(name.trim_start_matches('/'));
        std::fs::create_dir_all(node.parent().unwrap_or(host.stage))?;
        nix::sys::stat::mknod(
            &node,
            nix::sys::stat::SFlag::S_IFBLK,
            nix::sys::stat::Mode::from_bits_truncate(0o600),
            nix::sys::stat::makedev(u64::from(vol.major), u64::from(vol.minor)),
        )?;
        rustix::process::chroot(host.stage)?;
        let mut last = Outcome::Failed(libc::EINVAL);
        let mut fs_mount = None;
        for fstype in &plan.fstypes {
            match create_fs(fstype, &name, &plan.options) {
                Ok(fs) => {
                    fs_mount = Some(rustix::mount::fsmount(
                        &fs,
                        FsMountFlags::FSMOUNT_CLOEXEC,
                        attr_flags(&plan.attrs),
                    )?);
                    break;
                }
                // Probing: a type that does not recognise the volume says EINVAL; keep the
                // most telling error of a named type.
                Err(e) => last = Outcome::Failed(e.raw_os_error()),
            }
        }
        let Some(fs_mount) = fs_mount else {
            return Err(last);
        };
        nix::sched::setns(&c.mntns, CloneFlags::CLONE_NEWNS)?;
        rustix::mount::move_mount(
            fs_mount.as_fd(),
            "",
            target.as_fd(),
            "",
            MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH | MoveMountFlags::MOVE_MOUNT_T_EMPTY_PATH,
        )?;
        Ok(())
    });
    done.err().unwrap_or(Outcome::Done)
}

fn create_fs(
    fstype: &str,
    source: &str,
    options: &[(String, Option<String>)],
) -> rustix::io::Result<OwnedFd> {
    let fs = rustix::mount::fsopen(fstype, FsOpenFlags::FSOPEN_CLOEXEC)?;
    rustix::mount::fsconfig_set_string(&fs, "source", source)?;
    for (key, value) in options {
        match value {
            Some(v) => rustix::mount::fsconfig_set_string(&fs, key.as_str(), v.as_str())?,
            None => rustix::mount::fsconfig_set_flag(&fs, key.as_str())?,
        }
    }
    rustix::mount::fsconfig_create(&fs)?;
    Ok(fs)
}

fn attr_flags(attrs: &[Attr]) -> MountAttrFlags {
    attrs.iter().fold(MountAttrFlags::empty(), |acc, a| {
        acc | match a {
            Attr::ReadOnly => MountAttrFlags::MOUNT_ATTR_RDONLY,
            Attr::NoSuid => MountAttrFlags::MOUNT_ATTR_NOSUID,
            Attr::NoDev => MountAttrFlags::MOUNT_ATTR_NODEV,
            Attr::NoExec => MountAttrFlags::MOUNT_ATTR_NOEXEC,
            Attr::NoSymFollow => MountAttrFlags::MOUNT_ATTR_NOSYMFOLLOW,
            Attr::NoDirAtime => MountAttrFlags::MOUNT_ATTR_NODIRATIME,
            Attr::NoAtime => MountAttrFlags::MOUNT_ATTR_NOATIME,
            Attr::StrictAtime => MountAttrFlags::MOUNT_ATTR_STRICTATIME,
        }
    })
}

/// A guest's `umount2(2)` of a mount of an attached volume. The target is opened and checked
/// (a mount root whose device and source are an attached volume's, which only mountd's own
/// mounts can be), then unmounted by its name in its parent directory, opened from the target
/// itself (`..` of a mount root is the mount point's parent): a mount point cannot be renamed
/// or removed while mounted, so that name still is the checked mount when it is unmounted.
pub(crate) fn umount(
    c: &Caller,
    host: &Host<'_>,
    target: &str,
    flags: u64,
    attached: &[Attached],
) -> Outcome {
    let flags = match policy::umount_flags(flags) {
        Ok(f) => f,
        Err(r) => return Outcome::Refused(r),
    };
    let done = on_own_thread(|| -> Result<(), Outcome> {
        enter(c)?;
        let mut oflags = OFlags::PATH | OFlags::CLOEXEC;
        if flags & policy::UMOUNT_NOFOLLOW != 0 {
            oflags |= OFlags::NOFOLLOW;
        }
        let Ok(fd) = rustix::fs::open(target, oflags, Mode::empty()) else {
            return Err(Outcome::Refused(Refusal::NotOurs(
                "target does not resolve",
            )));
        };
        let st = rustix::fs::statx(&fd, "", AtFlags::EMPTY_PATH, StatxFlags::MNT_ID)?;
        if !st.stx_attributes.contains(StatxAttributes::MOUNT_ROOT) {
            return Err(Outcome::Refused(Refusal::NotOurs("target is not a mount")));
        }
        let mnt_id = st.stx_mnt_id;
        let info = read_at(host.proc, &format!("{}/mountinfo", c.pid))?;
        let line = info
            .lines()
            .filter_map(policy::parse_mountinfo_line)
            .find(|(id, ..)| *id == mnt_id);
        let Some((_, dev, fstype, source)) = line else {
            return Err(Outcome::Refused(Refusal::NotOurs(
                "mount not in the caller's table",
            )));
        };
        if policy::volume_of_mount(attached, dev, &source, &fstype).is_none() {
            return Err(Outcome::Refused(Refusal::NotOurs(
                "not a mount of an attached volume",
            )));
        }
        let link = rustix::fs::readlinkat(
            host.proc,
            format!("thread-self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&fd)),
            Vec::new(),
        )?;
        let path = PathBuf::from(OsStr::from_bytes(link.as_bytes()));
        let Some(name) = path.file_name().map(|n| n.to_os_string()) else {
            return Err(Outcome::Refused(Refusal::NotOurs("the guest's root")));
        };
        let parent = rustix::fs::openat(
            &fd,
            "..",
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        let again = rustix::fs::statx(
            &parent,
            name.as_os_str(),
            AtFlags::SYMLINK_NOFOLLOW,
            StatxFlags::MNT_ID,
        )?;
        if again.stx_mnt_id != mnt_id {
            return Err(Outcome::Refused(Refusal::NotOurs(
                "mount moved while checked",
            )));
        }
        // Our own reference would keep the mount busy.
        drop(fd);
        rustix::process::fchdir(&parent)?;
        let uflags = UnmountFlags::from_bits_retain((flags | policy::UMOUNT_NOFOLLOW) as u32);
        rustix::mount::unmount(name.as_os_str(), uflags)?;
        Ok(())
    });
    done.err().unwrap_or(Outcome::Done)
}

/// Reads a file relative to a directory descriptor.
fn read_at(dir: &OwnedFd, path: &str) -> io::Result<String> {
    let fd = rustix::fs::openat(dir, path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())?;
    let mut s = String::new();
    File::from(fd).read_to_string(&mut s)?;
    Ok(s)
}
