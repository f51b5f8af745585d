//! What the pool asks of the host besides files: the mount table, loop devices, `mkfs.xfs`,
//! mount(2)/umount(2) and the reflink probe.
//!
//! Loop devices are set up with `losetup` and file systems made with `mkfs.xfs` (programs):
//! attaching a loop device takes the `LOOP_CTL_GET_FREE`/`LOOP_CONFIGURE` ioctls, which have
//! no safe wrapper (the workspace forbids `unsafe`), and `losetup --find` already retries when
//! another process takes the free device first. Mounting and unmounting are system calls
//! (rustix): their errno says "busy" without parsing a message, and nothing depends on
//! `mount(8)`'s helpers or `/run/mount/utab`.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use gureum_host_api::{HostError, HostResult};
use rustix::io::Errno;

/// One line of `/proc/self/mountinfo`, the parts the pool needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mount {
    pub mount_point: PathBuf,
    pub fstype: String,
    /// The mount source (`/dev/loop3` for a loop-mounted image).
    pub source: String,
}

/// Parse mountinfo text (see proc(5)): `id parent major:minor root mount-point options
/// [optional fields] - fstype source super-options`, paths with `\NNN` octal escapes.
pub(crate) fn parse_mountinfo(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let mount_point = left.split(' ').nth(4)?;
            let mut right = right.split(' ');
            let fstype = right.next()?;
            let source = right.next()?;
            Some(Mount {
                mount_point: PathBuf::from(unescape(mount_point)),
                fstype: unescape(fstype),
                source: unescape(source),
            })
        })
        .collect()
}

/// Undo mountinfo's octal escapes (`\040` is a space, `\011` a tab, `\012` a newline,
/// `\134` a backslash).
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|b| (b'0'..=b'7').contains(b)));
        match (bytes[i], octal) {
            (b'\\', Some(d)) => {
                out.push(d.iter().fold(0u8, |n, b| n.wrapping_mul(8) + (b - b'0')));
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The mount table as this process sees it.
pub(crate) fn mounts() -> HostResult<Vec<Mount>> {
    let path = "/proc/self/mountinfo";
    std::fs::read_to_string(path)
        .map(|t| parse_mountinfo(&t))
        .map_err(|e| HostError::io(format!("reading {path}"), e))
}

/// Run `program args`; its standard output when it exits with 0.
pub(crate) fn run(program: &str, args: &[&std::ffi::OsStr]) -> HostResult<String> {
    let output = Command::new(program)
        .args(args)
        // Messages are shown verbatim: keep them in the C locale.
        .env("LC_ALL", "C")
        .stdin(Stdio::null())
        .output()
        .map_err(|source| HostError::MissingTool {
            program: program.into(),
            source,
        })?;
    if !output.status.success() {
        let mut command = program.to_string();
        for a in args {
            command.push(' ');
            command.push_str(&a.to_string_lossy());
        }
        return Err(HostError::Command {
            command,
            status: Some(output.status.to_string()),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// The loop devices backed by `image` (`/dev/loop3`, ...), as `losetup` finds them (by the
/// file's device and inode, so a renamed path still matches).
pub(crate) fn loops_of(image: &Path) -> HostResult<Vec<String>> {
    let out = run(
        "losetup",
        &[
            "--list".as_ref(),
            "--noheadings".as_ref(),
            "--output".as_ref(),
            "NAME".as_ref(),
            "--associated".as_ref(),
            image.as_os_str(),
        ],
    )?;
    Ok(parse_names(&out))
}

fn parse_names(out: &str) -> Vec<String> {
    out.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect()
}

/// Attach `image` to a free loop device with direct I/O on; the device's path.
pub(crate) fn attach_loop(image: &Path) -> HostResult<String> {
    let out = run(
        "losetup",
        &[
            "--find".as_ref(),
            "--show".as_ref(),
            "--direct-io=on".as_ref(),
            // The host file system's block size: every direct write the loop device passes
            // on is whole, aligned blocks (no read-modify-write under a 512-byte write).
            "--sector-size=4096".as_ref(),
            image.as_os_str(),
        ],
    )?;
    out.lines()
        .next()
        .map(|l| l.trim().to_string())
        .filter(|l| l.starts_with("/dev/"))
        .ok_or_else(|| {
            HostError::Driver(format!("losetup printed no device for {}", image.display()))
        })
}

/// Detach a loop device.
pub(crate) fn detach_loop(device: &str) -> HostResult<()> {
    run("losetup", &["--detach".as_ref(), device.as_ref()]).map(drop)
}

/// Whether a loop device does direct I/O on its backing file (its `dio` attribute).
pub(crate) fn loop_direct_io(device: &str) -> bool {
    let name = device.trim_start_matches("/dev/");
    std::fs::read_to_string(format!("/sys/block/{name}/loop/dio")).is_ok_and(|s| s.trim() == "1")
}

/// Make an XFS file system with reflinks in the (sparse, sized) file `image`.
pub(crate) fn mkfs_xfs(image: &Path) -> HostResult<()> {
    // -K: don't discard the file's blocks first (a new sparse file has none to discard).
    run(
        "mkfs.xfs",
        &[
            "-q".as_ref(),
            "-K".as_ref(),
            "-m".as_ref(),
            "reflink=1,crc=1".as_ref(),
            // 4 KiB sectors, to match the loop device's (see `attach_loop`).
            "-s".as_ref(),
            "size=4096".as_ref(),
            "-L".as_ref(),
            "gureum-ebs".as_ref(),
            image.as_os_str(),
        ],
    )
    .map(drop)
}

/// Mount the XFS on `device` at `target`.
pub(crate) fn mount_xfs(device: &str, target: &Path) -> HostResult<()> {
    // discard: a deleted volume's blocks are punched out of the image file (the loop driver
    // turns discards into hole punches), so the host gets its space back. noatime: reads of
    // a volume never cost a metadata write.
    rustix::mount::mount(
        device,
        target,
        "xfs",
        rustix::mount::MountFlags::NOATIME,
        Some(c"discard"),
    )
    .map_err(|e| {
        HostError::io(
            format!("mounting {device} (xfs) at {}", target.display()),
            e.into(),
        )
    })
}

/// Unmount `target`; `Busy` when something still uses it (never a lazy unmount: that would
/// leave the image attached with nobody to see it). `Ok(false)` if nothing was mounted there.
pub(crate) fn unmount(target: &Path) -> HostResult<bool> {
    match rustix::mount::unmount(target, rustix::mount::UnmountFlags::empty()) {
        Ok(()) => Ok(true),
        Err(Errno::BUSY) => Err(HostError::Busy(format!(
            "the ebs pool at {}",
            target.display()
        ))),
        Err(Errno::INVAL) => Ok(false),
        Err(e) => Err(HostError::io(
            format!("unmounting {}", target.display()),
            e.into(),
        )),
    }
}

/// Whether the file system holding `dir` clones files (FICLONE): two temporary files are
/// made in `dir`, one cloned into the other, and both removed.
pub(crate) fn supports_reflink(dir: &Path, temp: impl Fn(&str) -> PathBuf) -> HostResult<bool> {
    let src_path = temp("probe-src");
    let dst_path = temp("probe-dst");
    let result = (|| {
        let mut src = create_new(&src_path)?;
        src.write_all(&[0x5a; 4096])
            .map_err(|e| HostError::io(format!("writing {}", src_path.display()), e))?;
        let dst = create_new(&dst_path)?;
        match rustix::fs::ioctl_ficlone(&dst, &src) {
            Ok(()) => Ok(true),
            // What file systems without clones answer (ext4: EOPNOTSUPP; some: ENOTTY,
            // EINVAL; across file systems: EXDEV).
            Err(Errno::OPNOTSUPP | Errno::NOTTY | Errno::INVAL | Errno::XDEV | Errno::NOSYS) => {
                Ok(false)
            }
            Err(e) => Err(HostError::io(
                format!("cloning a probe file in {}", dir.display()),
                e.into(),
            )),
        }
    })();
    let _ = std::fs::remove_file(&src_path);
    let _ = std::fs::remove_file(&dst_path);
    result
}

/// A new file, readable and writable by root only (a volume holds a guest's data).
pub(crate) fn create_new(path: &Path) -> HostResult<File> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| HostError::io(format!("creating {}", path.display()), e))
}

/// fsync a directory, so the names made or removed in it survive a power loss.
pub(crate) fn sync_dir(dir: &Path) -> HostResult<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| HostError::io(format!("syncing {}", dir.display()), e))
}

/// The size of the file system holding `path`, in bytes.
pub(crate) fn fs_size(path: &Path) -> HostResult<u64> {
    let st = rustix::fs::statvfs(path)
        .map_err(|e| HostError::io(format!("statvfs {}", path.display()), e.into()))?;
    Ok(st.f_blocks.saturating_mul(st.f_frsize))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_lines_give_mount_point_type_and_source() {
        let text = "\
22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
45 27 7:0 / /var/tmp/data\\040dir/ebs rw,noatime shared:9 master:2 - xfs /dev/loop0 rw,discard
46 27 0:50 / /proc rw - proc proc rw
broken line
";
        let m = parse_mountinfo(text);
        assert_eq!(m.len(), 3);
        assert_eq!(
            m[1],
            Mount {
                mount_point: "/var/tmp/data dir/ebs".into(),
                fstype: "xfs".into(),
                source: "/dev/loop0".into(),
            }
        );
        assert_eq!(m[0].mount_point, PathBuf::from("/"));
    }

    #[test]
    fn escapes_are_undone_and_lone_backslashes_kept() {
        assert_eq!(unescape("a\\011b\\134c\\012"), "a\tb\\c\n");
        assert_eq!(unescape("a\\0"), "a\\0");
        assert_eq!(unescape("x\\9zz"), "x\\9zz");
    }

    #[test]
    fn losetup_names_one_a_line() {
        assert_eq!(
            parse_names("/dev/loop3\n/dev/loop12\n\n"),
            vec!["/dev/loop3".to_string(), "/dev/loop12".into()]
        );
        assert!(parse_names("").is_empty());
    }
}
