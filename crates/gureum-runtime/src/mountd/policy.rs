//! The pure half of mount interception: what a guest's `mount(2)` or `umount2(2)` arguments
//! ask for, and whether mountd does it. No I/O here, so every rule is unit-tested.
//!
//! The rules, and why (the full reasoning is in docs/SECURITY.md):
//! * Only a **block device attached to this instance** is mounted, and only with a file
//!   system type from [`FS_TYPES`]: the guest controls every byte of the volume, so each type
//!   is kernel parser code a guest can feed. ext2/3/4, xfs and vfat are the types EC2 users
//!   make on data volumes. btrfs is left out on purpose: it assembles multi-device file
//!   systems from a host-wide registry keyed by the fsid in the superblock, and host btrfs
//!   fsids are visible in the guest's /sys/fs/btrfs, so a crafted volume could pull a host
//!   device into the guest's mount.
//! * **Flags** only from the per-mount and per-superblock set a data volume needs (ro,
//!   nosuid, noexec, atime modes, sync, lazytime...); bind, move, remount and propagation
//!   changes are not ours and go on to the kernel, which refuses them (no CAP_SYS_ADMIN).
//! * **nodev is forced**: the device cgroup already keeps the guest from opening any device
//!   but its own, and a volume's device nodes would only be a second way to name one; forcing
//!   nodev keeps a device-cgroup mistake from turning into raw host disk access through nodes
//!   the guest wrote into its own file system. nosuid is not forced: a set-uid binary on the
//!   volume gives a guest user the guest's root, which only the guest's root could have put
//!   there (as on EC2).
//! * **File-system options** (the data string) only from a per-type allow-list: some options
//!   name host paths or devices (`journal_path=`, `journal_dev=`, xfs `logdev=`/`rtdev=`)
//!   that the kernel would look up in mountd's namespace, i.e. the host's.
//! * Anything else is answered "continue": the kernel runs the call with the guest's own
//!   credentials and fails it exactly as without interception (EPERM, or ENOENT for a missing
//!   target first). A request that names an attached volume but breaks a rule gets EPERM.

/// File system types mountd mounts; with no type given they are tried in this order.
pub(crate) const FS_TYPES: &[&str] = &["ext4", "xfs", "vfat", "ext3", "ext2"];

// mount(2) flags (linux/mount.h); the numbers are the ABI.
pub(crate) const MS_RDONLY: u64 = 1;
pub(crate) const MS_NOSUID: u64 = 2;
pub(crate) const MS_NODEV: u64 = 4;
pub(crate) const MS_NOEXEC: u64 = 8;
pub(crate) const MS_SYNCHRONOUS: u64 = 16;
pub(crate) const MS_REMOUNT: u64 = 32;
pub(crate) const MS_DIRSYNC: u64 = 128;
pub(crate) const MS_NOSYMFOLLOW: u64 = 256;
pub(crate) const MS_NOATIME: u64 = 1024;
pub(crate) const MS_NODIRATIME: u64 = 2048;
pub(crate) const MS_BIND: u64 = 4096;
pub(crate) const MS_SILENT: u64 = 32768;
pub(crate) const MS_RELATIME: u64 = 1 << 21;
pub(crate) const MS_STRICTATIME: u64 = 1 << 24;
pub(crate) const MS_LAZYTIME: u64 = 1 << 25;
/// The "magic" old programs put in the top 16 bits (the kernel drops it).
const MS_MGC_MSK: u64 = 0xffff_0000;
const MS_MGC_VAL: u64 = 0xc0ed_0000;

/// Flags a data-volume mount may carry.
const MOUNT_FLAGS: u64 = MS_RDONLY
    | MS_NOSUID
    | MS_NODEV
    | MS_NOEXEC
    | MS_SYNCHRONOUS
    | MS_DIRSYNC
    | MS_NOSYMFOLLOW
    | MS_NOATIME
    | MS_NODIRATIME
    | MS_SILENT
    | MS_RELATIME
    | MS_STRICTATIME
    | MS_LAZYTIME;

// umount2(2) flags.
pub(crate) const MNT_FORCE: u64 = 1;
pub(crate) const MNT_DETACH: u64 = 2;
pub(crate) const UMOUNT_NOFOLLOW: u64 = 8;

/// What the guest passed to `mount(2)`, read from its memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MountArgs {
    pub source: Option<String>,
    pub target: String,
    pub fstype: Option<String>,
    pub flags: u64,
    pub data: Option<String>,
}

/// One volume attached to the instance (a line of `volumes.json`, which `blockdev.rs` writes).
pub(crate) type Attached = crate::blockdev::AttachedVolume;

impl Attached {
    /// The name the mount shows in the guest's mount table: the guest's own node when it is a
    /// plain `/dev/<name>`, so `umount /dev/xvdf` and `df` read as on EC2.
    pub fn mount_source(&self) -> String {
        match self.node.strip_prefix("/dev/") {
            Some(name) if plain_name(name) => self.node.clone(),
            _ => format!("/dev/{}", self.volume_id),
        }
    }
}

fn plain_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A per-mount attribute of the new mount (`MOUNT_ATTR_*`, kept abstract so that this module
/// does no syscalls).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Attr {
    ReadOnly,
    NoSuid,
    NoDev,
    NoExec,
    NoSymFollow,
    NoDirAtime,
    /// The atime mode (relatime is the default).
    NoAtime,
    StrictAtime,
}

/// What mountd does for an allowed mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MountPlan {
    /// Types to try, in order (one unless the guest gave none).
    pub fstypes: Vec<&'static str>,
    /// Superblock flags and options for `fsconfig`: `(key, None)` is a flag, `(key,
    /// Some(value))` a string.
    pub options: Vec<(String, Option<String>)>,
    pub attrs: Vec<Attr>,
}

/// Why a request is not done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Not a request mountd serves: the kernel answers it as without interception.
    NotOurs(&'static str),
    /// A request for an attached volume that breaks a rule: EPERM, with the reason logged.
    Denied(String),
}

/// The flags part of the decision, before the source is looked at: `NotOurs` for flags only
/// a privileged mount could carry (bind, move, remount, propagation).
pub(crate) fn mount_flags(flags: u64) -> Result<u64, Refusal> {
    let flags = if flags & MS_MGC_MSK == MS_MGC_VAL {
        flags & !MS_MGC_MSK
    } else {
        flags
    };
    if flags & MS_REMOUNT != 0 {
        return Err(Refusal::NotOurs("remount"));
    }
    if flags & MS_BIND != 0 {
        return Err(Refusal::NotOurs("bind mount"));
    }
    if flags & !MOUNT_FLAGS != 0 {
        return Err(Refusal::NotOurs("flags other than a new mount's"));
    }
    Ok(flags)
}

/// The decision for a mount whose source is the attached volume `_vol` (the caller has
/// checked that and the caller's privileges).
pub(crate) fn plan_mount(args: &MountArgs) -> Result<MountPlan, Refusal> {
    let flags = mount_flags(args.flags)?;
    let fstypes: Vec<&'static str> = match args.fstype.as_deref() {
        None | Some("") | Some("auto") => FS_TYPES.to_vec(),
        Some(t) => match FS_TYPES.iter().find(|a| **a == t) {
            Some(a) => vec![*a],
            None => {
                return Err(Refusal::Denied(format!(
                    "file system type {t:?} is not allowed"
                )))
            }
        },
    };
    let mut options: Vec<(String, Option<String>)> = Vec::new();
    let mut flags = flags;
    for opt in args.data.as_deref().unwrap_or("").split(',') {
        let opt = opt.trim();
        if opt.is_empty() {
            continue;
        }
        let (key, value) = match opt.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (opt, None),
        };
        // Generic flags may come in the string too.
        match (key, value) {
            ("ro", None) => {
                flags |= MS_RDONLY;
                continue;
            }
            ("rw" | "defaults", None) => continue,
            _ => {}
        }
        if !fstypes.iter().all(|t| option_allowed(t, key, value)) {
            return Err(Refusal::Denied(format!("option {key:?} is not allowed")));
        }
        options.push((key.to_string(), value.map(str::to_string)));
    }
    for (bit, key) in [
        (MS_RDONLY, "ro"),
        (MS_SYNCHRONOUS, "sync"),
        (MS_DIRSYNC, "dirsync"),
        (MS_LAZYTIME, "lazytime"),
        (MS_SILENT, "silent"),
    ] {
        if flags & bit != 0 {
            options.push((key.to_string(), None));
        }
    }
    let mut attrs = vec![Attr::NoDev];
    for (bit, attr) in [
        (MS_RDONLY, Attr::ReadOnly),
        (MS_NOSUID, Attr::NoSuid),
        (MS_NOEXEC, Attr::NoExec),
        (MS_NOSYMFOLLOW, Attr::NoSymFollow),
        (MS_NODIRATIME, Attr::NoDirAtime),
    ] {
        if flags & bit != 0 {
            attrs.push(attr);
        }
    }
    match (flags & MS_NOATIME != 0, flags & MS_STRICTATIME != 0) {
        (true, true) => return Err(Refusal::Denied("noatime and strictatime".into())),
        (true, false) => attrs.push(Attr::NoAtime),
        (false, true) => attrs.push(Attr::StrictAtime),
        (false, false) => {}
    }
    Ok(MountPlan {
        fstypes,
        options,
        attrs,
    })
}

/// Options that take no host path or device, per type (the kernel's names).
fn option_allowed(fstype: &str, key: &str, value: Option<&str>) -> bool {
    const EXT4: &[&str] = &[
        "acl",
        "noacl",
        "user_xattr",
        "nouser_xattr",
        "barrier",
        "nobarrier",
        "commit",
        "data",
        "data_err",
        "errors",
        "discard",
        "nodiscard",
        "delalloc",
        "nodelalloc",
        "auto_da_alloc",
        "noauto_da_alloc",
        "init_itable",
        "noinit_itable",
        "journal_checksum",
        "nojournal_checksum",
        "journal_async_commit",
        "max_batch_time",
        "min_batch_time",
        "journal_ioprio",
        "dioread_lock",
        "dioread_nolock",
        "nombcache",
        "block_validity",
        "noblock_validity",
        "stripe",
        "resgid",
        "resuid",
        "sb",
        "grpid",
        "bsdgroups",
        "nogrpid",
        "sysvgroups",
        "norecovery",
        "noload",
        "i_version",
        "mb_optimize_scan",
        "lazytime",
        "nolazytime",
    ];
    const XFS: &[&str] = &[
        "allocsize",
        "discard",
        "nodiscard",
        "grpid",
        "bsdgroups",
        "nogrpid",
        "sysvgroups",
        "filestreams",
        "ikeep",
        "noikeep",
        "inode32",
        "inode64",
        "largeio",
        "nolargeio",
        "logbufs",
        "logbsize",
        "noalign",
        "norecovery",
        "nouuid",
        "swalloc",
        "sunit",
        "swidth",
        "wsync",
        "lazytime",
        "nolazytime",
    ];
    const VFAT: &[&str] = &[
        "uid",
        "gid",
        "umask",
        "dmask",
        "fmask",
        "allow_utime",
        "codepage",
        "iocharset",
        "shortname",
        "utf8",
        "uni_xlate",
        "nonumtail",
        "flush",
        "tz",
        "time_offset",
        "quiet",
        "showexec",
        "sys_immutable",
        "errors",
        "discard",
        "rodir",
        "dos1xfloppy",
        "check",
    ];
    let list = match fstype {
        "ext2" | "ext3" | "ext4" => EXT4,
        "xfs" => XFS,
        "vfat" => VFAT,
        _ => return false,
    };
    // A value never carries a path (the denied options are the ones that take one) nor a
    // separator the kernel would split on.
    let value_ok = value.is_none_or(|v| !v.contains('/') && v.len() <= 64);
    list.contains(&key) && value_ok
}

/// umount2's flags mountd honours (force, detach, nofollow); `NotOurs` for expire.
pub(crate) fn umount_flags(flags: u64) -> Result<u64, Refusal> {
    if flags & !(MNT_FORCE | MNT_DETACH | UMOUNT_NOFOLLOW) != 0 {
        return Err(Refusal::NotOurs(
            "umount flags other than force, detach, nofollow",
        ));
    }
    Ok(flags)
}

/// The volume a mount belongs to, from its mountinfo line's `major:minor` and source: only
/// mounts mountd made carry an attached volume's device and source name (the guest cannot
/// mount), so both must match.
pub(crate) fn volume_of_mount<'a>(
    attached: &'a [Attached],
    dev: (u32, u32),
    source: &str,
    fstype: &str,
) -> Option<&'a Attached> {
    if !FS_TYPES.contains(&fstype) {
        return None;
    }
    attached
        .iter()
        .find(|a| (a.major, a.minor) == dev && a.mount_source() == source)
}

/// One line of /proc/<pid>/mountinfo: mount id, `major:minor`, fs type, source.
pub(crate) fn parse_mountinfo_line(line: &str) -> Option<(u64, (u32, u32), String, String)> {
    let mut fields = line.split(' ');
    let id = fields.next()?.parse().ok()?;
    let _parent = fields.next()?;
    let (maj, min) = fields.next()?.split_once(':')?;
    let dev = (maj.parse().ok()?, min.parse().ok()?);
    let rest = line.split_once(" - ")?.1;
    let mut rest = rest.split(' ');
    let fstype = rest.next()?.to_string();
    let source = rest.next()?.replace("\\040", " ");
    Some((id, dev, fstype, source))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(fstype: Option<&str>, flags: u64, data: Option<&str>) -> MountArgs {
        MountArgs {
            source: Some("/dev/xvdf".into()),
            target: "/data".into(),
            fstype: fstype.map(str::to_string),
            flags,
            data: data.map(str::to_string),
        }
    }

    fn vol() -> Attached {
        Attached {
            volume_id: "vol-0123456789abcdef0".into(),
            device: "/dev/sdf".into(),
            node: "/dev/xvdf".into(),
            loop_device: "/dev/loop7".into(),
            major: 7,
            minor: 7,
        }
    }

    #[test]
    fn a_plain_ext4_mount_is_planned_with_nodev_forced() {
        let p = plan_mount(&args(Some("ext4"), MS_MGC_VAL, None)).unwrap();
        assert_eq!(p.fstypes, vec!["ext4"]);
        assert!(p.options.is_empty());
        assert_eq!(p.attrs, vec![Attr::NoDev]);
    }

    #[test]
    fn flags_become_attributes_and_superblock_flags() {
        let p = plan_mount(&args(
            Some("xfs"),
            MS_RDONLY | MS_NOSUID | MS_NOEXEC | MS_NOATIME | MS_SILENT | MS_LAZYTIME,
            Some("nouuid,logbufs=8"),
        ))
        .unwrap();
        assert_eq!(
            p.attrs,
            vec![
                Attr::NoDev,
                Attr::ReadOnly,
                Attr::NoSuid,
                Attr::NoExec,
                Attr::NoAtime
            ]
        );
        let keys: Vec<&str> = p.options.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["nouuid", "logbufs", "ro", "lazytime", "silent"]);
        assert_eq!(p.options[1].1.as_deref(), Some("8"));
    }

    #[test]
    fn no_type_tries_the_allowed_list() {
        for t in [None, Some(""), Some("auto")] {
            assert_eq!(plan_mount(&args(t, 0, None)).unwrap().fstypes, FS_TYPES);
        }
        // An option must suit every type that may be tried.
        assert!(matches!(
            plan_mount(&args(None, 0, Some("nouuid"))),
            Err(Refusal::Denied(_))
        ));
        assert!(plan_mount(&args(None, 0, Some("ro,rw,discard"))).is_ok());
    }

    #[test]
    fn other_types_and_host_path_options_are_denied() {
        for t in [
            "btrfs", "tmpfs", "proc", "squashfs", "overlay", "sysfs", "nfs",
        ] {
            assert!(
                matches!(plan_mount(&args(Some(t), 0, None)), Err(Refusal::Denied(_))),
                "{t}"
            );
        }
        for (t, data) in [
            ("ext4", "journal_path=/dev/vda"),
            ("ext4", "journal_dev=2049"),
            ("ext4", "errors=continue,journal_path=/x"),
            ("xfs", "logdev=/dev/vda"),
            ("xfs", "rtdev=/dev/vda"),
            ("ext4", "dax"),
            ("ext4", "context=system_u:object_r:x"),
            ("vfat", "iocharset=../../x"),
        ] {
            assert!(
                matches!(
                    plan_mount(&args(Some(t), 0, Some(data))),
                    Err(Refusal::Denied(_))
                ),
                "{t} {data}"
            );
        }
    }

    #[test]
    fn privileged_flags_are_not_ours() {
        for f in [
            MS_REMOUNT,
            MS_BIND,
            MS_BIND | (1 << 14), // MS_REC
            1 << 13,             // MS_MOVE
            1 << 20,             // MS_SHARED
            1 << 18,             // MS_PRIVATE
            64,                  // MS_MANDLOCK
        ] {
            assert!(
                matches!(
                    plan_mount(&args(Some("ext4"), f, None)),
                    Err(Refusal::NotOurs(_))
                ),
                "{f:#x}"
            );
        }
        assert!(matches!(
            plan_mount(&args(Some("ext4"), MS_NOATIME | MS_STRICTATIME, None)),
            Err(Refusal::Denied(_))
        ));
    }

    #[test]
    fn umount_flags_are_checked() {
        assert_eq!(umount_flags(0), Ok(0));
        assert_eq!(
            umount_flags(MNT_DETACH | UMOUNT_NOFOLLOW),
            Ok(MNT_DETACH | UMOUNT_NOFOLLOW)
        );
        assert!(matches!(umount_flags(4), Err(Refusal::NotOurs(_)))); // MNT_EXPIRE
    }

    #[test]
    fn mounts_are_matched_to_volumes_by_device_and_source() {
        let vols = [vol()];
        assert_eq!(
            volume_of_mount(&vols, (7, 7), "/dev/xvdf", "ext4"),
            Some(&vols[0])
        );
        assert_eq!(volume_of_mount(&vols, (7, 8), "/dev/xvdf", "ext4"), None);
        assert_eq!(volume_of_mount(&vols, (7, 7), "tmpfs", "ext4"), None);
        assert_eq!(volume_of_mount(&vols, (7, 7), "/dev/xvdf", "tmpfs"), None);
        let line = "612 580 7:7 / /data rw,nodev,relatime shared:1 - ext4 /dev/xvdf rw";
        assert_eq!(
            parse_mountinfo_line(line),
            Some((612, (7, 7), "ext4".into(), "/dev/xvdf".into()))
        );
        assert_eq!(parse_mountinfo_line("garbage"), None);
    }

    #[test]
    fn the_mount_source_is_the_guest_node_when_plain() {
        assert_eq!(vol().mount_source(), "/dev/xvdf");
        let mut v = vol();
        v.node = "/dev/../etc/x".into();
        assert_eq!(v.mount_source(), "/dev/vol-0123456789abcdef0");
    }
}
