//! EBS volumes in running containers: each attached volume is a loop device over the volume's
//! raw file, shown to the guest as a block device node in its `/dev` and let through the
//! container's device cgroup for exactly its major:minor. This module owns those loop devices,
//! nodes and rules, and the two files that say what an instance has of them:
//!
//! ```text
//! <instance dir>/volumes.json        what the running guest is shown (AttachedVolume list)
//! <instance dir>/volume-files.json   volume id → raw file, for every volume that may hold a
//!                                    loop device of this instance
//! ```
//!
//! `volumes.json` is the public record ([`attached_volumes`]): what decides which block devices
//! an instance may use (the mount helper reads it). It is written, atomically, before the
//! guest's node and cgroup rule appear and rewritten after they are gone, so it never claims
//! less than the guest can reach. `volume-files.json` is written before a loop device is set up
//! over a file: a crash between `losetup` and the record leaves a loop device that the file
//! names, which a repeated attach adopts and a stop or destroy frees. Loop devices are freed by
//! their file, never by a recorded number alone: once freed, a number may be reused by another
//! instance's volume.
//!
//! Names: AWS's Xen instances show a volume attached as `/dev/sdf` as `/dev/xvdf`. The node is
//! made at the `xvd` name, with a symlink at the requested name when it differs and one at
//! `/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_vol…` (the name udev gives the volume on
//! Nitro instances). There is no udev in the guest: nothing else appears.
//!
//! Stopped instances hold no loop device (as they hold no mount): stop frees them and clears
//! both files; start attaches the spec's volumes again after the boot, since the nodes live in
//! the container's `/dev` tmpfs anyway.
//!
//! Device rules need the cgroup v1 `devices` controller (v1 and hybrid hosts, which runc uses
//! there): `b 7:N rw` appended to the instance's `devices.allow`, and `devices.deny` on detach.
//! On a pure cgroup v2 host runc guards devices with an eBPF program attached to the
//! container's cgroup; programs attached beside it can only narrow what it allows, and `runc
//! update` rebuilds it from the container's original config, so a device cannot be let in from
//! outside: attaching answers `Unsupported` there. A later `runc update` (a warm guest's
//! hand-over, which precedes any attachment) would also reset v1 rules; attaching again
//! restores them.

use std::collections::BTreeMap;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use gureum_host_api::VolumeAttachment;
use serde::{Deserialize, Serialize};

use crate::cgroups::{CgroupMode, CGROUP_ROOT};
use crate::cmd::{self, args};
use crate::error::RuntimeError;
use crate::{validate_id, RuncDriver};

/// The record of what a running instance is shown, in its state directory.
pub const RECORD_FILE: &str = "volumes.json";
/// The raw file of every volume that may hold a loop device of the instance.
const FILES_FILE: &str = "volume-files.json";
/// The block major of loop devices.
const LOOP_MAJOR: u64 = 7;

/// One volume shown to a running instance, as `volumes.json` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachedVolume {
    pub volume_id: String,
    /// The device name the attachment asked for (`/dev/sdf`).
    pub device: String,
    /// The block device node in the guest (`/dev/xvdf`).
    pub node: String,
    /// The host's loop device over the volume's file (`/dev/loop5`).
    #[serde(rename = "loop")]
    pub loop_device: String,
    pub major: u32,
    pub minor: u32,
}

/// What the running instance with state directory `instance_dir` is shown: its
/// `volumes.json` (none when the file is missing).
pub fn attached_volumes(instance_dir: &Path) -> Result<Vec<AttachedVolume>, RuntimeError> {
    read_json(&instance_dir.join(RECORD_FILE))
}

fn read_json<T: serde::de::DeserializeOwned + Default>(path: &Path) -> Result<T, RuntimeError> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(serde_json::from_slice(&bytes)?),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(T::default()),
        Err(e) => Err(RuntimeError::io("read", path, e)),
    }
}

/// Replaces `path` by `value` as JSON all at once (temp file and rename): a reader, or a crash,
/// sees the old contents or the new, never a part.
fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), RuntimeError> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, serde_json::to_vec(value)?)
        .map_err(|e| RuntimeError::io("write", &tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| RuntimeError::io("rename", &tmp, e))
}

fn write_record(dir: &Path, record: &[AttachedVolume]) -> Result<(), RuntimeError> {
    write_json(&dir.join(RECORD_FILE), &record)
}

type Files = BTreeMap<String, PathBuf>;

fn read_files(dir: &Path) -> Result<Files, RuntimeError> {
    read_json(&dir.join(FILES_FILE))
}

fn write_files(dir: &Path, files: &Files) -> Result<(), RuntimeError> {
    write_json(&dir.join(FILES_FILE), files)
}

/// The names a volume attached as `device` has in the guest's `/dev`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GuestNames {
    /// The block device node, relative to `/dev` (`xvdf`).
    pub node: String,
    /// A symlink to it at the requested name, when that differs (`sdf`).
    pub alias: Option<String>,
    /// The symlink Nitro's udev rules would make (`disk/by-id/nvme-Amazon_Elastic_Block_Store_vol…`).
    pub by_id: String,
}

impl GuestNames {
    /// `device` as AWS spells it on Linux (`/dev/sdf`, `/dev/xvdf`, `/dev/xvdba`; the `/dev/`
    /// may be left out) for volume `volume_id`.
    pub fn new(device: &str, volume_id: &str) -> Result<GuestNames, RuntimeError> {
        let bad = || {
            RuntimeError::InvalidSpec(format!(
                "device name {device:?} is not /dev/sdX or /dev/xvdX"
            ))
        };
        let name = device.strip_prefix("/dev/").unwrap_or(device);
        let (letters, alias) = match (name.strip_prefix("xvd"), name.strip_prefix("sd")) {
            (Some(l), _) => (l, None),
            (None, Some(l)) => (l, Some(name.to_string())),
            (None, None) => return Err(bad()),
        };
        if letters.is_empty()
            || letters.len() > 2
            || !letters.bytes().all(|b| b.is_ascii_lowercase())
        {
            return Err(bad());
        }
        let serial = volume_id.strip_prefix("vol-").filter(|s| {
            !s.is_empty() && s.len() <= 32 && s.bytes().all(|b| b.is_ascii_alphanumeric())
        });
        let Some(serial) = serial else {
            return Err(RuntimeError::InvalidSpec(format!(
                "volume id {volume_id:?} is not vol-…"
            )));
        };
        Ok(GuestNames {
            node: format!("xvd{letters}"),
            alias,
            by_id: format!("disk/by-id/nvme-Amazon_Elastic_Block_Store_vol{serial}"),
        })
    }
}

/// One loop device as `losetup --json --list` shows it.
#[derive(Debug, Deserialize)]
struct LoopDevice {
    name: String,
    autoclear: bool,
}

#[derive(Debug, Deserialize)]
struct LoopList {
    loopdevices: Vec<LoopDevice>,
}

/// The loop devices over `file` (none if the file is gone).
async fn loops_over(file: &Path) -> Result<Vec<LoopDevice>, RuntimeError> {
    if !file.exists() {
        return Ok(Vec::new());
    }
    let out = cmd::run(
        "losetup",
        args!["--json", "--list", "-O", "NAME,AUTOCLEAR", "-j", file],
    )
    .await?;
    if out.stdout.iter().all(u8::is_ascii_whitespace) {
        return Ok(Vec::new());
    }
    Ok(serde_json::from_slice::<LoopList>(&out.stdout)?.loopdevices)
}

/// Detaches every loop device over `file`. One still open (a file system mounted from it in a
/// guest) is detached by the kernel once it is closed (`losetup -d` sets it to auto-clear).
async fn free_loops(file: &Path) -> Result<(), RuntimeError> {
    for l in loops_over(file).await? {
        cmd::run("losetup", args!["-d", l.name]).await?;
    }
    Ok(())
}

/// Major and minor of a block device node on the host.
fn device_numbers(node: &str) -> Result<(u32, u32), RuntimeError> {
    let meta = std::fs::metadata(node).map_err(|e| RuntimeError::io("stat", node, e))?;
    if !meta.file_type().is_block_device() {
        return Err(RuntimeError::io(
            "stat",
            node,
            io::Error::other("not a block device"),
        ));
    }
    let rdev = meta.rdev();
    Ok((
        nix::sys::stat::major(rdev) as u32,
        nix::sys::stat::minor(rdev) as u32,
    ))
}

/// Runs `f` in the mount namespace of host process `pid` (the guest's `/` is then `/`), on a
/// thread of its own: a namespace switch applies to the calling thread only, and a thread
/// must stop sharing its file-system context (root, cwd) with the process first. Refuses the
/// host's own namespace (a pid reused by a host process).
fn in_guest<T: Send + 'static>(
    pid: i32,
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> Result<T, RuntimeError> {
    let path = PathBuf::from(format!("/proc/{pid}/ns/mnt"));
    let run = || -> io::Result<T> {
        let ns = std::fs::File::open(&path)?;
        let own = std::fs::metadata("/proc/self/ns/mnt")?;
        let theirs = ns.metadata()?;
        if (own.dev(), own.ino()) == (theirs.dev(), theirs.ino()) {
            return Err(io::Error::other(format!(
                "process {pid} is in the host's mount namespace"
            )));
        }
        std::thread::spawn(move || -> io::Result<T> {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_FS)?;
            nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNS)?;
            // The umask went with the file-system context: nodes get the modes asked for.
            nix::sys::stat::umask(nix::sys::stat::Mode::empty());
            f()
        })
        .join()
        .map_err(|_| io::Error::other("guest namespace thread panicked"))?
    };
    run().map_err(|e| RuntimeError::io("in the mount namespace of", &path, e))
}

/// The guest's `disk` group (block devices are `root:disk 0660`, as udev makes them), or root.
fn disk_gid() -> u32 {
    std::fs::read_to_string("/etc/group")
        .ok()
        .and_then(|g| {
            g.lines().find_map(|l| {
                let mut f = l.split(':');
                (f.next() == Some("disk")).then(|| f.nth(1)?.parse().ok())?
            })
        })
        .unwrap_or(0)
}

/// Removes `path` unless it is a symlink to `target`; whether it is one now.
fn symlink_is(path: &Path, target: &Path) -> io::Result<bool> {
    match std::fs::read_link(path) {
        Ok(t) if t == target => return Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        _ => {}
    }
    remove_entry(path)?;
    Ok(false)
}

fn remove_entry(path: &Path) -> io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Makes (or repairs) the node and symlinks of `names` for device `major:minor`; run inside
/// the guest's mount namespace. Nothing is followed that the guest could point elsewhere but
/// `/dev/disk` itself, and that only within the guest's own root, where its root could write
/// anyway.
fn make_nodes(names: &GuestNames, major: u32, minor: u32, read_only: bool) -> io::Result<()> {
    use nix::sys::stat::{makedev, mknod, Mode, SFlag};
    let dev = Path::new("/dev");
    let node = dev.join(&names.node);
    let rdev = makedev(u64::from(major), u64::from(minor));
    let current = std::fs::symlink_metadata(&node);
    let ok = matches!(&current, Ok(m) if m.file_type().is_block_device() && m.rdev() == rdev);
    if !ok {
        remove_entry(&node)?;
        let mode = if read_only { 0o440 } else { 0o660 };
        mknod(&node, SFlag::S_IFBLK, Mode::from_bits_truncate(mode), rdev)?;
        std::os::unix::fs::lchown(&node, Some(0), Some(disk_gid()))?;
    }
    let target = PathBuf::from(&names.node);
    if let Some(alias) = &names.alias {
        let link = dev.join(alias);
        if !symlink_is(&link, &target)? {
            std::os::unix::fs::symlink(&target, &link)?;
        }
    }
    let by_id = dev.join(&names.by_id);
    if let Some(dir) = by_id.parent() {
        std::fs::DirBuilder::new().recursive(true).create(dir)?;
    }
    let target = Path::new("../..").join(&names.node);
    if !symlink_is(&by_id, &target)? {
        std::os::unix::fs::symlink(&target, &by_id)?;
    }
    Ok(())
}

/// Removes the node and symlinks of `names`; run inside the guest's mount namespace.
fn remove_nodes(names: &GuestNames) -> io::Result<()> {
    let dev = Path::new("/dev");
    for name in [Some(&names.node), names.alias.as_ref(), Some(&names.by_id)]
        .into_iter()
        .flatten()
    {
        remove_entry(&dev.join(name))?;
    }
    Ok(())
}

/// Whether block device `major:minor` is mounted in the mount namespace of any of `pids`.
fn mounted_in(pids: &[i32], major: u32, minor: u32) -> bool {
    let wanted = format!("{major}:{minor}");
    let mut seen = std::collections::HashSet::new();
    pids.iter().any(|pid| {
        let ns = std::fs::metadata(format!("/proc/{pid}/ns/mnt")).map(|m| (m.dev(), m.ino()));
        if !ns.is_ok_and(|ns| seen.insert(ns)) {
            return false;
        }
        std::fs::read_to_string(format!("/proc/{pid}/mountinfo"))
            .map(|info| mountinfo_has_device(&info, &wanted))
            .unwrap_or(false)
    })
}

/// Whether a `mountinfo` text has a mount of device `maj:min` (its third field).
fn mountinfo_has_device(info: &str, maj_min: &str) -> bool {
    info.lines().any(|l| l.split(' ').nth(2) == Some(maj_min))
}

/// The rule line for one block device in a v1 `devices.allow` / `devices.deny`.
fn device_rule(major: u32, minor: u32, access: &str) -> String {
    format!("b {major}:{minor} {access}")
}

impl RuncDriver {
    /// The instance's v1 `devices` cgroup directory.
    fn devices_cgroup(&self, id: &str) -> PathBuf {
        Path::new(CGROUP_ROOT)
            .join("devices")
            .join(&self.inner.opts.cgroup_parent)
            .join(id)
    }

    /// Shows the volume to the running instance `id` as a block device, at once (see the
    /// module docs); a stopped instance gets it from its next start, so only the file is
    /// checked then. Idempotent: attaching an attached volume again adopts its loop device,
    /// repairs its node and rule, and re-reads the file's size, so a volume grown on the host
    /// grows in the guest.
    pub async fn attach_volume(
        &self,
        id: &str,
        att: &VolumeAttachment,
    ) -> Result<(), RuntimeError> {
        validate_id(id)?;
        if self.inner.cgroup_mode == CgroupMode::V2 {
            return Err(RuntimeError::Unsupported(format!(
                "{id}: volumes cannot be attached to containers on a cgroup v2 host (runc's device \
                 program cannot be widened from outside)"
            )));
        }
        let names = GuestNames::new(&att.device, &att.volume_id)?;
        let lock = self.lock_for(id);
        let _g = lock.lock().await;
        let dir = self.instance_dir(id);
        if !dir.is_dir() {
            return Err(RuntimeError::NotFound(id.to_string()));
        }
        if !att.path.is_file() {
            return Err(RuntimeError::io(
                "attach",
                &att.path,
                io::Error::from(io::ErrorKind::NotFound),
            ));
        }
        let Some(pid) = self.init_pid(id).await? else {
            return Ok(());
        };
        let mut record = attached_volumes(&dir)?;
        let node = format!("/dev/{}", names.node);
        if let Some(other) = record
            .iter()
            .find(|r| r.node == node && r.volume_id != att.volume_id)
        {
            return Err(RuntimeError::InvalidSpec(format!(
                "{id}: {node} is already {} of {}",
                other.device, other.volume_id
            )));
        }
        let mut files = read_files(&dir)?;
        if files.get(&att.volume_id) != Some(&att.path) {
            files.insert(att.volume_id.clone(), att.path.clone());
            write_files(&dir, &files)?;
        }
        // The loop device: the recorded one, else one a crash left before the record, else a
        // new one. One set to auto-clear is on its way out (a forced detach from a guest that
        // still has it mounted) and is never reused.
        let loops: Vec<String> = loops_over(&att.path)
            .await?
            .into_iter()
            .filter(|l| !l.autoclear)
            .map(|l| l.name)
            .collect();
        let previous = record.iter().position(|r| r.volume_id == att.volume_id);
        let recorded = previous.map(|i| record[i].loop_device.clone());
        let existing = recorded
            .filter(|r| loops.contains(r))
            .or_else(|| loops.first().cloned());
        let loop_device = match existing {
            Some(l) => {
                // Picks up a file grown since (ModifyVolume).
                cmd::run("losetup", args!["-c", l]).await?;
                l
            }
            None => {
                let mut a: Vec<&std::ffi::OsStr> = vec![
                    "--find".as_ref(),
                    "--show".as_ref(),
                    "--direct-io=on".as_ref(),
                ];
                if att.read_only {
                    a.push("--read-only".as_ref());
                }
                a.push(att.path.as_os_str());
                let out = cmd::run("losetup", &a).await?;
                String::from_utf8_lossy(&out.stdout).trim().to_string()
            }
        };
        let (major, minor) = device_numbers(&loop_device)?;
        if u64::from(major) != LOOP_MAJOR {
            return Err(RuntimeError::io(
                "attach",
                &loop_device,
                io::Error::other("not a loop device"),
            ));
        }
        let entry = AttachedVolume {
            volume_id: att.volume_id.clone(),
            device: att.device.clone(),
            node,
            loop_device,
            major,
            minor,
        };
        let moved = match previous {
            Some(i) if record[i] == entry => None,
            Some(i) => Some(std::mem::replace(&mut record[i], entry.clone())),
            None => {
                record.push(entry.clone());
                None
            }
        };
        if previous.is_none() || moved.is_some() {
            write_record(&dir, &record)?;
        }
        if let Some(old) = moved {
            // Attached again at another name or through another loop device: the old node goes.
            self.hide(id, pid, &old).await?;
        }
        let (n, ro) = (names, att.read_only);
        in_guest(pid, move || make_nodes(&n, major, minor, ro))?;
        let allow = self.devices_cgroup(id).join("devices.allow");
        let access = if att.read_only { "r" } else { "rw" };
        std::fs::write(&allow, device_rule(major, minor, access))
            .map_err(|e| RuntimeError::io("write", &allow, e))?;
        Ok(())
    }

    /// Takes `old`'s rule and nodes away from the running guest `pid`.
    async fn hide(&self, id: &str, pid: i32, old: &AttachedVolume) -> Result<(), RuntimeError> {
        let deny = self.devices_cgroup(id).join("devices.deny");
        match std::fs::write(&deny, device_rule(old.major, old.minor, "rw")) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                return Err(RuntimeError::io("write", &deny, e))
            }
            _ => {}
        }
        let names = GuestNames::new(&old.device, &old.volume_id)?;
        in_guest(pid, move || remove_nodes(&names))
    }

    /// Takes the volume away from the instance (idempotent: one not attached is fine). Unless
    /// `force`, a volume mounted in the running guest stays and the answer is
    /// [`RuntimeError::Busy`]; with `force` it goes anyway, and its loop device lives on, out
    /// of the guest's reach, until the guest's mount goes.
    pub async fn detach_volume(
        &self,
        id: &str,
        volume_id: &str,
        force: bool,
    ) -> Result<(), RuntimeError> {
        validate_id(id)?;
        let lock = self.lock_for(id);
        let _g = lock.lock().await;
        let dir = self.instance_dir(id);
        if !dir.is_dir() {
            return Ok(());
        }
        let mut record = attached_volumes(&dir)?;
        let mut files = read_files(&dir)?;
        let entry = record.iter().position(|r| r.volume_id == volume_id);
        if let (Some(i), Some(pid)) = (entry, self.init_pid(id).await?) {
            let e = &record[i];
            if !force && mounted_in(&self.guest_pids(id, pid), e.major, e.minor) {
                return Err(RuntimeError::Busy(format!(
                    "volume {volume_id}, mounted in {id} from {},",
                    e.node
                )));
            }
            self.hide(id, pid, e).await?;
        }
        if let Some(file) = files.get(volume_id) {
            free_loops(file).await?;
        }
        if let Some(i) = entry {
            record.remove(i);
            write_record(&dir, &record)?;
        }
        if files.remove(volume_id).is_some() {
            write_files(&dir, &files)?;
        }
        Ok(())
    }

    /// The host pids of the guest's processes (its device cgroup's), `init` first.
    fn guest_pids(&self, id: &str, init: i32) -> Vec<i32> {
        let procs = self.devices_cgroup(id).join("cgroup.procs");
        let mut pids = vec![init];
        if let Ok(text) = std::fs::read_to_string(procs) {
            pids.extend(text.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
        }
        pids
    }
}

/// Frees every loop device over the instance's volumes and clears both files: for a guest that
/// no longer runs (stop, destroy, a boot that failed or that follows a crash or a host
/// reboot). Idempotent.
pub(crate) async fn release_all(dir: &Path) -> Result<(), RuntimeError> {
    let files = read_files(dir)?;
    for file in files.values() {
        free_loops(file).await?;
    }
    for name in [RECORD_FILE, FILES_FILE] {
        crate::remove_if_exists(&dir.join(name))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xen_names_for_aws_device_names() {
        let n = GuestNames::new("/dev/sdf", "vol-0123456789abcdef0").unwrap();
        assert_eq!(n.node, "xvdf");
        assert_eq!(n.alias.as_deref(), Some("sdf"));
        assert_eq!(
            n.by_id,
            "disk/by-id/nvme-Amazon_Elastic_Block_Store_vol0123456789abcdef0"
        );
        let n = GuestNames::new("/dev/xvdba", "vol-1").unwrap();
        assert_eq!((n.node.as_str(), n.alias), ("xvdba", None));
        assert_eq!(GuestNames::new("xvdg", "vol-1").unwrap().node, "xvdg");
        for bad in [
            "/dev/nvme1n1",
            "/dev/sd",
            "/dev/xvdabc",
            "/dev/sdF",
            "/dev/sdf1",
            "/dev/../sdf",
            "",
        ] {
            assert!(GuestNames::new(bad, "vol-1").is_err(), "{bad}");
        }
        for bad in ["vol-", "snap-1", "vol-../x", "vol-a/b"] {
            assert!(GuestNames::new("/dev/sdf", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_record_keeps_its_format() {
        let dir = std::env::temp_dir().join(format!("gureum-blockdev-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert_eq!(attached_volumes(&dir).unwrap(), vec![]);
        let v = AttachedVolume {
            volume_id: "vol-1".into(),
            device: "/dev/sdf".into(),
            node: "/dev/xvdf".into(),
            loop_device: "/dev/loop5".into(),
            major: 7,
            minor: 5,
        };
        write_record(&dir, std::slice::from_ref(&v)).unwrap();
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("volumes.json")).unwrap()).unwrap();
        assert_eq!(
            json,
            serde_json::json!([{"volume_id": "vol-1", "device": "/dev/sdf", "node": "/dev/xvdf",
                "loop": "/dev/loop5", "major": 7, "minor": 5}])
        );
        assert_eq!(attached_volumes(&dir).unwrap(), vec![v]);
        assert!(!dir.join("volumes.json.tmp").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn mounts_are_found_by_device_number() {
        let info = "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw\n\
                    40 36 7:5 / /data rw,relatime - ext4 /dev/xvdf rw\n";
        assert!(mountinfo_has_device(info, "7:5"));
        assert!(!mountinfo_has_device(info, "7:50"));
        assert!(!mountinfo_has_device(info, "98:1"));
    }
}
