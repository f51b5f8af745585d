//! Importing a user's image into a root filesystem directory: tarballs are extracted with GNU
//! tar; disk images (qcow2 is converted to a sparse raw file first) are searched partition by
//! partition, each candidate filesystem mounted read-only through a loop device inside a
//! throw-away mount namespace and copied out, until one holds `/etc/os-release` and an init.
//! Everything happens in a hidden staging directory next to `dest` that is renamed into place
//! only once the root has been validated, so a failure leaves `dest` absent.

use crate::cache::BuiltImage;
use crate::disk::{self, Compression, Filesystem, ImageFormat, Partition};
use crate::rootfs;
use crate::sys::{self, run, sandboxed};
use crate::{ImageError, IoContext};
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

/// Staging directories are named `.<dest name>.gureum-import.<owner tag>`.
const STAGING_MARK: &str = ".gureum-import.";

pub(crate) fn import(
    file: &Path,
    dest: &Path,
    login_user: Option<&str>,
) -> Result<BuiltImage, ImageError> {
    if std::fs::symlink_metadata(dest).is_ok() {
        return Err(ImageError::DestinationExists(dest.to_path_buf()));
    }
    if !sys::is_root() {
        return Err(ImageError::NeedsRoot("importing an image"));
    }
    let meta = std::fs::metadata(file).ctx(|| format!("cannot read {}", file.display()))?;
    if !meta.is_file() {
        return Err(ImageError::UnrecognizedFormat {
            path: file.to_path_buf(),
        });
    }
    let input = File::open(file).ctx(|| format!("cannot open {}", file.display()))?;
    let head = disk::read_at(&input, 0, disk::DETECT_BYTES)
        .ctx(|| format!("cannot read {}", file.display()))?;
    let format = disk::detect_format(&head, meta.len());
    if format == ImageFormat::Unknown {
        return Err(ImageError::UnrecognizedFormat {
            path: file.to_path_buf(),
        });
    }

    let dest_name = dest
        .file_name()
        .ok_or_else(|| ImageError::io("bad destination", std::io::Error::other("no file name")))?
        .to_string_lossy()
        .into_owned();
    let parent = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).ctx(|| format!("cannot create {}", parent.display()))?;
    clean_stale_staging(&parent)?;
    let staging = parent.join(format!(".{dest_name}{STAGING_MARK}{}", sys::owner_tag()));
    sys::remove_tree(&staging)?;
    std::fs::create_dir(&staging).ctx(|| format!("cannot create {}", staging.display()))?;

    let result = (|| {
        let root = match format {
            ImageFormat::Tar(c) => from_tar(file, c, &staging)?,
            ImageFormat::Qcow2 => from_qcow2(file, &staging)?,
            ImageFormat::Raw => from_disk(file, file, &staging)?,
            ImageFormat::Unknown => unreachable!("rejected above"),
        };
        sanitize(&root)?;
        std::fs::rename(&root, dest).ctx(|| format!("cannot move the root into {}", dest.display()))
    })();
    let cleanup = sys::remove_tree(&staging);
    result?;
    cleanup?;
    describe(file, dest, login_user)
}

/// Removes staging directories left next to a destination by imports that were killed.
fn clean_stale_staging(parent: &Path) -> Result<(), ImageError> {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(idx) = name.find(STAGING_MARK) {
            if name.starts_with('.') && !sys::owner_alive(&name[idx + STAGING_MARK.len()..]) {
                sys::remove_tree(&entry.path())?;
            }
        }
    }
    Ok(())
}

fn from_tar(file: &Path, compression: Compression, staging: &Path) -> Result<PathBuf, ImageError> {
    // GNU tar recognises the compression itself but runs an external decompressor for
    // zstd/xz/bzip2, which a minimal host may lack.
    match compression {
        Compression::Zstd => drop(sys::ensure_tool("zstd", "zstd")?),
        Compression::Xz => drop(sys::ensure_tool("xz", "xz-utils")?),
        Compression::Bzip2 => drop(sys::ensure_tool("bzip2", "bzip2")?),
        Compression::Gzip | Compression::None => {}
    }
    let root = staging.join("rootfs");
    std::fs::create_dir(&root).ctx(|| format!("cannot create {}", root.display()))?;
    // Numeric owners: the image's uids must not be remapped through the host's user names.
    // Extended attributes carry file capabilities (ping's cap_net_raw in Debian 12). GNU tar
    // refuses members with ".." and strips leading "/", and defers links pointing outside.
    let mut cmd = Command::new("tar");
    cmd.args([
        "--extract",
        "--numeric-owner",
        "--same-owner",
        "--preserve-permissions",
    ])
    .args(["--xattrs", "--xattrs-include=*"])
    .arg("--file")
    .arg(file)
    .arg("--directory")
    .arg(&root);
    if let Err(e) = run(&mut cmd, "tar") {
        let detail = match &e {
            ImageError::Command { detail, .. } => detail.clone(),
            other => other.to_string(),
        };
        let lower = detail.to_lowercase();
        if [
            "unexpected eof",
            "unexpected end of file",
            "premature end",
            "truncated",
        ]
        .iter()
        .any(|m| lower.contains(m))
        {
            return Err(ImageError::Truncated {
                path: file.to_path_buf(),
                detail,
            });
        }
        if lower.contains("does not look like a tar archive") {
            return Err(ImageError::UnrecognizedFormat {
                path: file.to_path_buf(),
            });
        }
        return Err(e);
    }
    match rootfs::check_root(&root) {
        Ok(_) => Ok(root),
        Err(why) => {
            // Some tarballs wrap the root in one top-level directory.
            let entries: Vec<_> = std::fs::read_dir(&root)
                .ctx(|| format!("cannot read {}", root.display()))?
                .flatten()
                .collect();
            if entries.is_empty() {
                return Err(ImageError::NoRootFilesystem {
                    path: file.to_path_buf(),
                    detail: "the archive is empty".to_string(),
                });
            }
            if let [only] = entries.as_slice() {
                let inner = only.path();
                let is_dir = std::fs::symlink_metadata(&inner).is_ok_and(|m| m.is_dir());
                if is_dir && rootfs::check_root(&inner).is_ok() {
                    return Ok(inner);
                }
            }
            Err(ImageError::NoRootFilesystem {
                path: file.to_path_buf(),
                detail: why,
            })
        }
    }
}

fn from_qcow2(file: &Path, staging: &Path) -> Result<PathBuf, ImageError> {
    sys::ensure_tool("qemu-img", "qemu-utils")?;
    let mut info = Command::new("qemu-img");
    info.args(["info", "--output=json", "-f", "qcow2"])
        .arg(file);
    let out = run(&mut info, "qemu-img info").map_err(|e| ImageError::Unsupported {
        path: file.to_path_buf(),
        detail: format!("qemu-img cannot read it: {e}"),
    })?;
    let info: serde_json::Value =
        serde_json::from_slice(&out.stdout).map_err(|e| ImageError::Unsupported {
            path: file.to_path_buf(),
            detail: format!("unexpected qemu-img info output: {e}"),
        })?;
    // A backing file or external data file is a path the image chooses: reading it would
    // import an arbitrary host file. Refuse them; users can `qemu-img convert` first.
    if info.get("backing-filename").is_some() || info.get("full-backing-filename").is_some() {
        return Err(ImageError::Unsupported {
            path: file.to_path_buf(),
            detail: "qcow2 images with a backing file are not imported (flatten it with qemu-img convert first)".to_string(),
        });
    }
    if info.pointer("/format-specific/data/data-file").is_some() {
        return Err(ImageError::Unsupported {
            path: file.to_path_buf(),
            detail: "qcow2 images with an external data file are not imported".to_string(),
        });
    }
    // qemu-img convert reads past the end of a truncated qcow2 as zeros without complaint;
    // check finds the clusters that lie beyond the end of the file.
    let check = Command::new("qemu-img")
        .args(["check", "--output=json", "-f", "qcow2"])
        .arg(file)
        .output()
        .ctx(|| "cannot run qemu-img check".to_string())?;
    let report: serde_json::Value = serde_json::from_slice(&check.stdout).unwrap_or_default();
    let corruptions = report
        .get("corruptions")
        .and_then(|v| v.as_u64())
        .unwrap_or(0);
    let file_len = std::fs::metadata(file).map(|m| m.len()).unwrap_or(0);
    let end = report
        .get("image-end-offset")
        .and_then(|v| v.as_u64())
        .unwrap_or(0);
    let stderr = String::from_utf8_lossy(&check.stderr);
    if stderr.contains("exceeding the end of the file") || (end > 0 && end > file_len + 65536) {
        return Err(ImageError::Truncated {
            path: file.to_path_buf(),
            detail: format!("qcow2 clusters lie beyond the end of the file ({corruptions} errors)"),
        });
    }
    if corruptions > 0 || (!check.status.success() && check.status.code() != Some(3)) {
        return Err(ImageError::Unsupported {
            path: file.to_path_buf(),
            detail: format!(
                "qemu-img check found a corrupt image: {}",
                sys::tail(&stderr, 3)
            ),
        });
    }
    let raw = staging.join("disk.raw");
    let mut convert = Command::new("qemu-img");
    convert
        .args(["convert", "-f", "qcow2", "-O", "raw"])
        .arg(file)
        .arg(&raw);
    run(&mut convert, "qemu-img convert")?;
    from_disk(file, &raw, staging)
}

/// Finds the root filesystem in a raw disk `disk` (which is `file` or its raw conversion).
fn from_disk(file: &Path, disk: &Path, staging: &Path) -> Result<PathBuf, ImageError> {
    sys::ensure_tool("setpriv", "util-linux")?;
    let f = File::open(disk).ctx(|| format!("cannot open {}", disk.display()))?;
    let len = f
        .metadata()
        .ctx(|| format!("cannot stat {}", disk.display()))?
        .len();
    let parts = disk::partitions(&f).ctx(|| format!("cannot read {}", disk.display()))?;
    let bare = parts.is_none();
    let parts = parts.unwrap_or_else(|| {
        vec![Partition {
            number: 0,
            start: 0,
            size: len,
        }]
    });
    let describe = |p: &Partition| {
        if bare {
            "the disk".to_string()
        } else {
            format!("partition {}", p.number)
        }
    };
    let mut candidates: Vec<(Partition, Filesystem)> = Vec::new();
    for p in &parts {
        if p.start >= len || p.start + p.size > len {
            return Err(ImageError::Truncated {
                path: file.to_path_buf(),
                detail: format!(
                    "{} ends at byte {} but the disk has only {len} bytes",
                    describe(p),
                    p.start + p.size
                ),
            });
        }
        let head = disk::read_at(&f, p.start, disk::DETECT_BYTES.min(p.size as usize))
            .ctx(|| format!("cannot read {}", disk.display()))?;
        if let Some(fs) = disk::filesystem(&head) {
            if fs.size().is_some_and(|s| s > p.size) {
                return Err(ImageError::Truncated {
                    path: file.to_path_buf(),
                    detail: format!(
                        "the {} filesystem on {} needs {} bytes but only {} are there",
                        fs.name(),
                        describe(p),
                        fs.size().unwrap_or(0),
                        p.size
                    ),
                });
            }
            candidates.push((*p, fs));
        }
    }
    if candidates.is_empty() {
        return Err(ImageError::NoRootFilesystem {
            path: file.to_path_buf(),
            detail: if bare {
                "no partition table and no ext4, xfs or btrfs filesystem".to_string()
            } else {
                format!(
                    "none of its {} partition(s) holds an ext4, xfs or btrfs filesystem",
                    parts.len()
                )
            },
        });
    }
    // The root is usually the largest Linux filesystem; /boot and friends are small.
    candidates.sort_by_key(|(p, _)| std::cmp::Reverse(p.size));
    let mut reasons = Vec::new();
    for (p, fs) in candidates {
        let root = staging.join(format!("part{}", p.number));
        let mnt = staging.join("mnt");
        std::fs::create_dir_all(&mnt).ctx(|| format!("cannot create {}", mnt.display()))?;
        std::fs::create_dir(&root).ctx(|| format!("cannot create {}", root.display()))?;
        match copy_out(disk, p, fs, &mnt, &root) {
            Ok(()) => match rootfs::check_root(&root) {
                Ok(_) => return Ok(root),
                Err(why) => reasons.push(format!("{} ({}): {why}", describe(&p), fs.name())),
            },
            Err(e) => reasons.push(format!("{} ({}): {e}", describe(&p), fs.name())),
        }
        sys::remove_tree(&root)?;
    }
    Err(ImageError::NoRootFilesystem {
        path: file.to_path_buf(),
        detail: reasons.join("; "),
    })
}

/// Mounts one filesystem read-only (a loop device with offset and size limit, released when
/// the private mount namespace goes away) and copies its whole tree into `to`.
fn copy_out(
    disk: &Path,
    p: Partition,
    fs: Filesystem,
    mnt: &Path,
    to: &Path,
) -> Result<(), ImageError> {
    let (fstype, opts) = fs.mount_args();
    let options = format!("{opts},loop,offset={},sizelimit={}", p.start, p.size);
    // cp -a keeps owners, modes, hard links, special files and extended attributes.
    let script = r#"mount -t "$1" -o "$2" -- "$3" "$4" || exit 64
cp -a -- "$4/." "$5/"
rc=$?
umount "$4"
exit $rc"#;
    let mut cmd = sandboxed("sh");
    cmd.args(["-c", script, "sh", fstype, &options])
        .arg(disk)
        .arg(mnt)
        .arg(to);
    run(&mut cmd, "mounting and copying the filesystem").map(|_| ())
}

/// Per-instance identity must not be shared by every instance of an imported image: host keys
/// are generated at first boot by the guest agent, machine-id by systemd.
fn sanitize(root: &Path) -> Result<(), ImageError> {
    if let Some(ssh) = rootfs::resolve(root, "etc/ssh") {
        if let Ok(entries) = std::fs::read_dir(&ssh) {
            for e in entries.flatten() {
                if e.file_name().to_string_lossy().starts_with("ssh_host_") {
                    std::fs::remove_file(e.path())
                        .ctx(|| format!("cannot remove {}", e.path().display()))?;
                }
            }
        }
    }
    let machine_id = root.join("etc/machine-id");
    if std::fs::symlink_metadata(&machine_id).is_ok_and(|m| m.is_file()) {
        std::fs::write(&machine_id, "").ctx(|| "cannot empty /etc/machine-id".to_string())?;
    }
    Ok(())
}

fn describe(file: &Path, dest: &Path, login_user: Option<&str>) -> Result<BuiltImage, ImageError> {
    let os = rootfs::check_root(dest).map_err(|detail| ImageError::NoRootFilesystem {
        path: file.to_path_buf(),
        detail,
    })?;
    let pretty = rootfs::pretty_name(&os);
    let id = os.get("ID").cloned().unwrap_or_else(|| "linux".to_string());
    let login_user = login_user
        .map(str::to_string)
        .unwrap_or_else(|| default_login_user(&id).to_string());
    let created = SystemTime::now();
    let version = os
        .get("VERSION_ID")
        .map(|v| format!("-{v}"))
        .unwrap_or_default();
    let file_name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(BuiltImage {
        key: format!("import-{}", &file_digest(file)?[..16]),
        rootfs: dest.to_path_buf(),
        dir: dest.to_path_buf(),
        name: format!(
            "{id}{version}-{}-imported-{}",
            sys::debian_arch(),
            sys::yyyymmdd(created)
        ),
        description: format!(
            "{pretty}, imported by gureum from {file_name}; login user: {login_user}"
        ),
        login_user,
        size_bytes: rootfs::disk_usage(dest)
            .ctx(|| format!("cannot measure {}", dest.display()))?,
        created,
        os_release: pretty,
        recipe: None,
    })
}

/// The login user an imported image gets when the caller names none: what the
/// distribution's cloud images use.
pub(crate) fn default_login_user(os_id: &str) -> &'static str {
    match os_id {
        "ubuntu" => "ubuntu",
        "fedora" => "fedora",
        "centos" | "rhel" | "rocky" | "almalinux" | "amzn" => "ec2-user",
        _ => "admin",
    }
}

fn file_digest(file: &Path) -> Result<String, ImageError> {
    let mut f = File::open(file).ctx(|| format!("cannot open {}", file.display()))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f
            .read(&mut buf)
            .ctx(|| format!("cannot read {}", file.display()))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_user_defaults_follow_the_distribution() {
        assert_eq!(default_login_user("debian"), "admin");
        assert_eq!(default_login_user("ubuntu"), "ubuntu");
        assert_eq!(default_login_user("amzn"), "ec2-user");
        assert_eq!(default_login_user("whatever"), "admin");
    }

    #[test]
    fn import_refuses_an_existing_destination_and_unknown_files() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("dest");
        std::fs::create_dir(&dest).unwrap();
        let junk = dir.path().join("junk");
        std::fs::write(&junk, b"hello, this is not an image\n").unwrap();
        assert!(matches!(
            import(&junk, &dest, None),
            Err(ImageError::DestinationExists(_))
        ));
        if sys::is_root() {
            let dest2 = dir.path().join("dest2");
            let err = import(&junk, &dest2, None).unwrap_err();
            assert!(
                matches!(err, ImageError::UnrecognizedFormat { .. }),
                "{err}"
            );
            assert!(!dest2.exists());
        }
    }
}
