//! Root volumes: each instance's writable layer is a sparse file of `volume_gib` GiB holding
//! an ext4 file system (loop-mounted), with the overlay `upper/` and `work/` directories in it.
//! The container's rootfs is overlayfs(lower = AMI rootfs, upper, work), so the AMI is never
//! written, `df /` in the guest reports the ext4 (overlayfs reports its upper file system), and
//! writing past the volume fails with ENOSPC.
//!
//! Speed: `mkfs.ext4` on a fresh 8 GiB sparse file costs ~20 ms and a loop mount another
//! ~20 ms. `prepare` instead copies a per-size template made once by mkfs (lazy inode-table and
//! journal init, so the template holds ~4 MiB of data) by its data extents only (SEEK_DATA /
//! SEEK_HOLE: a few ms, independent of the image and of the volume size), and leaves mounting
//! to `start`. The template already contains `upper/` and `work/` (`mkfs -d`), so
//! nothing has to be mounted to create them.

use std::path::{Path, PathBuf};

use crate::cmd::{self, args};
use crate::error::RuntimeError;
use crate::mounts;

/// Paths of one instance's volume and rootfs.
#[derive(Debug, Clone)]
pub(crate) struct VolumePaths {
    /// The sparse ext4 image.
    pub image: PathBuf,
    /// Where the ext4 is mounted; holds `upper/` and `work/`.
    pub mount: PathBuf,
    /// Where the overlay (the container's rootfs) is mounted.
    pub rootfs: PathBuf,
}

impl VolumePaths {
    pub fn new(instance_dir: &Path) -> Self {
        VolumePaths {
            image: instance_dir.join("volume.img"),
            mount: instance_dir.join("volume"),
            rootfs: instance_dir.join("rootfs"),
        }
    }
}

/// The template for a volume size.
pub(crate) fn template_path(templates: &Path, gib: u64) -> PathBuf {
    templates.join(format!("ext4-{gib}g.img"))
}

/// Creates the template for `gib` GiB if missing: a sparse file with a fresh ext4 holding
/// empty `upper/` and `work/` directories. Blocking (runs `mkfs.ext4`); called once per size.
pub(crate) fn ensure_template(templates: &Path, gib: u64) -> Result<PathBuf, RuntimeError> {
    let path = template_path(templates, gib);
    if path.exists() {
        return Ok(path);
    }
    std::fs::create_dir_all(templates).map_err(|e| RuntimeError::io("create", templates, e))?;
    let tmp = templates.join(format!(".ext4-{gib}g.img.{}", std::process::id()));
    let skel = templates.join(format!(".skel.{}", std::process::id()));
    let result = (|| {
        for d in ["upper", "work"] {
            let p = skel.join(d);
            std::fs::create_dir_all(&p).map_err(|e| RuntimeError::io("create", &p, e))?;
        }
        let f = std::fs::File::create(&tmp).map_err(|e| RuntimeError::io("create", &tmp, e))?;
        f.set_len(gib * 1024 * 1024 * 1024)
            .map_err(|e| RuntimeError::io("size", &tmp, e))?;
        drop(f);
        // -m 0: no blocks reserved for root (the guest's root would otherwise see a volume
        // that fills "early" for users and late for root). Lazy init keeps the file sparse.
        let out = std::process::Command::new("mkfs.ext4")
            .args(["-q", "-F", "-m", "0", "-L", "gureum-root", "-E"])
            .arg("lazy_itable_init=1,lazy_journal_init=1,nodiscard")
            .arg("-d")
            .arg(&skel)
            .arg(&tmp)
            .output()
            .map_err(|source| RuntimeError::MissingTool {
                program: "mkfs.ext4".into(),
                source,
            })?;
        if !out.status.success() {
            return Err(RuntimeError::Command {
                command: format!("mkfs.ext4 {}", tmp.display()),
                status: out.status.to_string(),
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
        // Flush it now, or the first volume copied from it pays for this in its fsync.
        std::fs::File::open(&tmp)
            .and_then(|f| f.sync_all())
            .map_err(|e| RuntimeError::io("sync", &tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| RuntimeError::io("rename", &tmp, e))
    })();
    let _ = std::fs::remove_dir_all(&skel);
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map(|()| path)
}

/// Materialises the instance's volume from the template (idempotent: an existing volume is
/// kept, whatever its size; volumes are not resized).
pub(crate) async fn create(paths: &VolumePaths, template: &Path) -> Result<(), RuntimeError> {
    for d in [&paths.mount, &paths.rootfs] {
        std::fs::create_dir_all(d).map_err(|e| RuntimeError::io("create", d, e))?;
    }
    if paths.image.exists() {
        return Ok(());
    }
    let tmp = paths.image.with_extension("img.tmp");
    let (template, tmp2) = (template.to_path_buf(), tmp.clone());
    tokio::task::spawn_blocking(move || sparse_copy(&template, &tmp2))
        .await
        .map_err(|e| RuntimeError::io("copy", &tmp, std::io::Error::other(e)))??;
    std::fs::rename(&tmp, &paths.image).map_err(|e| RuntimeError::io("rename", &tmp, e))
}

/// Copies a sparse file's data extents only (SEEK_DATA/SEEK_HOLE), keeping its holes: what
/// `cp --sparse=always` does for a template, without spawning a process. (`std::fs::copy`
/// would use copy_file_range, which fills holes with zeros on file systems without reflink.)
pub(crate) fn sparse_copy(from: &Path, to: &Path) -> Result<(), RuntimeError> {
    use nix::unistd::{lseek, Whence};
    use std::io::{Read, Seek, SeekFrom, Write};
    use std::os::fd::AsRawFd;

    let mut src = std::fs::File::open(from).map_err(|e| RuntimeError::io("open", from, e))?;
    let len = src
        .metadata()
        .map_err(|e| RuntimeError::io("stat", from, e))?
        .len();
    let mut dst = std::fs::File::create(to).map_err(|e| RuntimeError::io("create", to, e))?;
    dst.set_len(len)
        .map_err(|e| RuntimeError::io("size", to, e))?;
    let mut buf = vec![0u8; 1 << 20];
    let mut pos: i64 = 0;
    let end = i64::try_from(len).unwrap_or(i64::MAX);
    while pos < end {
        let data = match lseek(src.as_raw_fd(), pos, Whence::SeekData) {
            Ok(d) => d,
            Err(nix::Error::ENXIO) => break, // only a hole is left
            Err(e) => return Err(RuntimeError::io("seek", from, e.into())),
        };
        let hole = lseek(src.as_raw_fd(), data, Whence::SeekHole)
            .map_err(|e| RuntimeError::io("seek", from, e.into()))?;
        let mut off = data;
        src.seek(SeekFrom::Start(off as u64))
            .map_err(|e| RuntimeError::io("seek", from, e))?;
        dst.seek(SeekFrom::Start(off as u64))
            .map_err(|e| RuntimeError::io("seek", to, e))?;
        while off < hole {
            let n = ((hole - off) as usize).min(buf.len());
            src.read_exact(&mut buf[..n])
                .map_err(|e| RuntimeError::io("read", from, e))?;
            dst.write_all(&buf[..n])
                .map_err(|e| RuntimeError::io("write", to, e))?;
            off += n as i64;
        }
        pos = hole;
    }
    // Durable before the rename makes it the instance's volume.
    dst.sync_all().map_err(|e| RuntimeError::io("sync", to, e))
}

/// Loop-mounts the volume (idempotent). `mount -o loop` sets the loop device to auto-clear,
/// so unmounting frees it; `discard` punches holes in the sparse file when the guest deletes.
pub(crate) async fn mount_volume(paths: &VolumePaths) -> Result<(), RuntimeError> {
    if mounts::is_mountpoint(&paths.mount)? {
        return Ok(());
    }
    if !paths.image.exists() {
        return Err(RuntimeError::io(
            "mount",
            &paths.image,
            std::io::Error::from(std::io::ErrorKind::NotFound),
        ));
    }
    cmd::run(
        "mount",
        args![
            "-t",
            "ext4",
            "-o",
            "loop,noatime,discard",
            paths.image,
            paths.mount
        ],
    )
    .await?;
    Ok(())
}

/// Mounts the overlay rootfs over the AMI (idempotent).
///
/// The layers are named by file descriptor (`/proc/self/fd/N`), not by path: overlayfs shows
/// its options as given in every mount table, the guest's `/proc/self/mountinfo` included,
/// and the host paths there (the data dir, the image cache) are none of the guest's business.
/// The kernel resolves the descriptors at mount time; they are closed once it returns. (Paths
/// with a ',' or ':', which the option string could not carry, work too.)
pub(crate) fn mount_overlay(paths: &VolumePaths, image_rootfs: &Path) -> Result<(), RuntimeError> {
    if mounts::is_mountpoint(&paths.rootfs)? {
        return Ok(());
    }
    let open = |p: &Path| std::fs::File::open(p).map_err(|e| RuntimeError::io("open", p, e));
    let lower = open(image_rootfs)?;
    let upper = open(&paths.mount.join("upper"))?;
    let work = open(&paths.mount.join("work"))?;
    use std::os::fd::AsRawFd;
    let data = overlay_options(lower.as_raw_fd(), upper.as_raw_fd(), work.as_raw_fd());
    use nix::mount::{mount, MsFlags};
    mount(
        Some("overlay"),
        &paths.rootfs,
        Some("overlay"),
        MsFlags::empty(),
        Some(data.as_str()),
    )
    .map_err(|e| RuntimeError::io("mount overlay at", &paths.rootfs, e.into()))
}

/// The overlay's options for layers open as these descriptors.
fn overlay_options(lower: i32, upper: i32, work: i32) -> String {
    format!("lowerdir=/proc/self/fd/{lower},upperdir=/proc/self/fd/{upper},workdir=/proc/self/fd/{work}")
}

/// Mounts a stopped instance's root file system read-only at `root` for an export: an overlay
/// of two lower layers (the volume's `upper/` over the AMI) and no upper one, which the kernel
/// makes read-only. Whiteouts and opaque directories of `upper/` hide the AMI's files as they
/// do in the guest. The volume is used where it is still mounted, else mounted at `volume`.
/// Idempotent.
pub(crate) async fn mount_read_only(
    paths: &VolumePaths,
    image_rootfs: &Path,
    volume: &Path,
    root: &Path,
) -> Result<(), RuntimeError> {
    for d in [volume, root] {
        std::fs::create_dir_all(d).map_err(|e| RuntimeError::io("create", d, e))?;
    }
    let volume = if mounts::is_mountpoint(&paths.mount)? {
        paths.mount.as_path()
    } else {
        volume
    };
    if !mounts::is_mountpoint(volume)? {
        cmd::run(
            "mount",
            // Not `ro`: the file system may still be mounted read-write in another mount
            // namespace (the mount helper's copy of the host's), and a read-only mount of a
            // superblock mounted read-write is refused. Nothing writes through it: the overlay
            // above it is read-only.
            args!["-t", "ext4", "-o", "loop,noatime", paths.image, volume],
        )
        .await?;
    }
    if mounts::is_mountpoint(root)? {
        return Ok(());
    }
    let open = |p: &Path| std::fs::File::open(p).map_err(|e| RuntimeError::io("open", p, e));
    let upper = open(&volume.join("upper"))?;
    let lower = open(image_rootfs)?;
    use nix::mount::{mount, MsFlags};
    use std::os::fd::AsRawFd;
    let data = format!(
        "lowerdir=/proc/self/fd/{}:/proc/self/fd/{}",
        upper.as_raw_fd(),
        lower.as_raw_fd()
    );
    mount(
        Some("overlay"),
        root,
        Some("overlay"),
        MsFlags::MS_RDONLY,
        Some(data.as_str()),
    )
    .map_err(|e| RuntimeError::io("mount overlay at", root, e.into()))
}

/// Writes the file tree at `source` into `dest` as a raw disk of `gib` GiB holding one ext4
/// file system (`mkfs.ext4 -d`: no loop device or mount, so a crash leaves at most the
/// temporary file; within 10-25% of `cp -a` onto a loop-mounted ext4, see docs/BENCHMARKS.md,
/// "Root volume export"). The
/// file is made under `.tmp-<name>.export` beside `dest` (the volume pool's prefix for
/// unfinished files, removed when the pool opens), synced, then renamed over `dest`.
pub(crate) async fn export_tree(source: &Path, dest: &Path, gib: u64) -> Result<(), RuntimeError> {
    let name = dest
        .file_name()
        .ok_or_else(|| RuntimeError::InvalidSpec(format!("{} names no file", dest.display())))?;
    let tmp = dest.with_file_name(format!(".tmp-{}.export", name.to_string_lossy()));
    let _ = std::fs::remove_file(&tmp);
    let result = async {
        let f = std::fs::File::create(&tmp).map_err(|e| RuntimeError::io("create", &tmp, e))?;
        f.set_len(gib * 1024 * 1024 * 1024)
            .map_err(|e| RuntimeError::io("size", &tmp, e))?;
        drop(f);
        cmd::run(
            "mkfs.ext4",
            args![
                "-q",
                "-F",
                "-m",
                "0",
                "-E",
                "lazy_itable_init=1,lazy_journal_init=1,nodiscard",
                "-d",
                source,
                &tmp
            ],
        )
        .await?;
        let t = tmp.clone();
        tokio::task::spawn_blocking(move || {
            std::fs::File::open(&t)
                .and_then(|f| f.sync_all())
                .map_err(|e| RuntimeError::io("sync", &t, e))
        })
        .await
        .map_err(|e| RuntimeError::io("sync", &tmp, std::io::Error::other(e)))??;
        std::fs::rename(&tmp, dest).map_err(|e| RuntimeError::io("rename", &tmp, e))
    }
    .await;
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Loop devices still bound to the volume file (normally none once it is unmounted).
pub(crate) async fn loop_devices(image: &Path) -> Result<Vec<String>, RuntimeError> {
    if !image.exists() {
        return Ok(Vec::new());
    }
    let out = cmd::run("losetup", args!["-j", image]).await?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once(':').map(|(dev, _)| dev.trim().to_string()))
        .filter(|d| d.starts_with("/dev/loop"))
        .collect())
}

/// Unmounts the overlay and the volume and frees the loop device (idempotent).
pub(crate) async fn unmount(paths: &VolumePaths) -> Result<(), RuntimeError> {
    mounts::unmount_all(&paths.rootfs)?;
    mounts::unmount_all(&paths.mount)?;
    for dev in loop_devices(&paths.image).await? {
        cmd::run("losetup", args!["-d", dev]).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Seek, SeekFrom, Write};
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn overlay_options_name_no_path() {
        assert_eq!(
            overlay_options(7, 8, 9),
            "lowerdir=/proc/self/fd/7,upperdir=/proc/self/fd/8,workdir=/proc/self/fd/9"
        );
    }

    #[test]
    fn sparse_copy_keeps_holes_and_data() {
        let dir = std::env::temp_dir().join(format!("gureum-sparse-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let from = dir.join("from");
        let to = dir.join("to");
        let mut f = std::fs::File::create(&from).unwrap();
        f.set_len(64 << 20).unwrap();
        f.write_all(b"head").unwrap();
        f.seek(SeekFrom::Start(40 << 20)).unwrap();
        f.write_all(&[7u8; 3 << 20]).unwrap();
        f.sync_all().unwrap();
        drop(f);
        sparse_copy(&from, &to).unwrap();
        assert_eq!(std::fs::read(&from).unwrap(), std::fs::read(&to).unwrap());
        let meta = std::fs::metadata(&to).unwrap();
        assert_eq!(meta.len(), 64 << 20);
        assert!(meta.blocks() * 512 < 8 << 20, "copy is not sparse");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
