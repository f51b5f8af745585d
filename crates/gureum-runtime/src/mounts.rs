//! The host's mount table, read from `/proc/self/mountinfo`: which of our paths are mount
//! points (volume, overlay rootfs, lxcfs), so that every operation can be re-run after a crash
//! or a host reboot and find out what is still mounted.

use std::path::{Path, PathBuf};

use nix::mount::{umount2, MntFlags};

use crate::error::RuntimeError;

/// One line of mountinfo, the fields the driver uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MountEntry {
    pub mount_point: PathBuf,
    pub fs_type: String,
    pub source: String,
}

/// Undoes mountinfo's octal escapes (`\040` for a space, `\134` for a backslash, ...).
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 4 <= bytes.len() {
            let oct = &bytes[i + 1..i + 4];
            if oct.iter().all(|b| (b'0'..=b'7').contains(b)) {
                let v = oct
                    .iter()
                    .fold(0u32, |acc, b| acc * 8 + u32::from(b - b'0'));
                if let Ok(v) = u8::try_from(v) {
                    out.push(v);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses the text of a mountinfo file.
pub(crate) fn parse_mountinfo(text: &str) -> Vec<MountEntry> {
    text.lines()
        .filter_map(|line| {
            // id parent major:minor root mount_point options [optional...] - fstype source super
            let (left, right) = line.split_once(" - ")?;
            let mount_point = left.split(' ').nth(4)?;
            let mut r = right.split(' ');
            let fs_type = r.next()?;
            let source = r.next().unwrap_or("");
            Some(MountEntry {
                mount_point: PathBuf::from(unescape(mount_point)),
                fs_type: fs_type.to_string(),
                source: unescape(source),
            })
        })
        .collect()
}

/// The current mount table of this process's mount namespace.
pub(crate) fn mount_table() -> Result<Vec<MountEntry>, RuntimeError> {
    let path = "/proc/self/mountinfo";
    let text = std::fs::read_to_string(path).map_err(|e| RuntimeError::io("read", path, e))?;
    Ok(parse_mountinfo(&text))
}

/// Whether `path` is currently a mount point (of any file system).
pub(crate) fn is_mountpoint(path: &Path) -> Result<bool, RuntimeError> {
    Ok(mount_table()?.iter().any(|m| m.mount_point == path))
}

/// Every mount point at or below `dir` (deepest last in mount order).
pub(crate) fn mounts_under(dir: &Path) -> Result<Vec<MountEntry>, RuntimeError> {
    Ok(mount_table()?
        .into_iter()
        .filter(|m| m.mount_point.starts_with(dir))
        .collect())
}

/// Unmounts every mount stacked on `path` (a path may be mounted over more than once after
/// a crash in the middle of a mount). Not mounted is fine.
pub(crate) fn unmount_all(path: &Path) -> Result<(), RuntimeError> {
    for _ in 0..16 {
        if !is_mountpoint(path)? {
            return Ok(());
        }
        umount2(path, MntFlags::empty())
            .map_err(|e| RuntimeError::io("unmount", path, std::io::Error::from(e)))?;
    }
    Err(RuntimeError::io(
        "unmount",
        path,
        std::io::Error::other("still mounted after 16 unmounts"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_mountinfo_lines() {
        let text = "\
22 1 0:21 / /proc rw,nosuid shared:12 - proc proc rw
71 47 0:39 / /var/lib/gureum/i-1/rootfs rw,relatime - overlay overlay rw,lowerdir=/a,upperdir=/b
90 22 0:50 / /var/lib/lxcfs rw,nosuid,nodev,relatime - fuse.lxcfs lxcfs rw,user_id=0
91 22 7:0 / /tmp/with\\040space rw - ext4 /dev/loop0 rw
";
        let m = parse_mountinfo(text);
        assert_eq!(m.len(), 4);
        assert_eq!(m[0].mount_point, PathBuf::from("/proc"));
        assert_eq!(m[0].fs_type, "proc");
        assert_eq!(m[1].fs_type, "overlay");
        assert_eq!(m[2].fs_type, "fuse.lxcfs");
        assert_eq!(m[3].mount_point, PathBuf::from("/tmp/with space"));
        assert_eq!(m[3].source, "/dev/loop0");
    }

    #[test]
    fn unescapes_octal() {
        assert_eq!(unescape("a\\040b"), "a b");
        assert_eq!(unescape("a\\134b"), "a\\b");
        assert_eq!(unescape("trailing\\04"), "trailing\\04");
        assert_eq!(unescape("plain"), "plain");
    }
}
