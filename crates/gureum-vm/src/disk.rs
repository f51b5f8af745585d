//! Disks: an image's VM form (a qcow2 base disk made from its root filesystem with
//! `mkfs.ext4 -d`, plus the kernel and initramfs from its `/boot`), per-instance qcow2
//! overlays on it, and the small ext4 seed disk that carries the per-instance files.
//!
//! The VM form lives beside the image's rootfs (`<rootfs>/../vm/`), made on first use under a
//! lock and published by rename, so every data dir and every instance of an image shares one
//! base disk. The base is read-only for ever after; instances write only to their overlay.

use std::path::{Path, PathBuf};

use tokio::process::Command;

use crate::error::{run, VmError, VmResult};

/// Free space left in a base disk above what the root filesystem holds (the guest grows the
/// file system to its volume's size at boot; this only has to get it there).
const BASE_SLACK_MIB: u64 = 256;

/// An image's VM form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseDisk {
    pub disk: PathBuf,
    pub kernel: PathBuf,
    pub initrd: Option<PathBuf>,
}

/// The newest `prefix-*` file in `boot` (e.g. `vmlinuz-6.1.0-26-cloud-amd64`), by version.
fn newest(boot: &Path, prefix: &str) -> Option<PathBuf> {
    let mut found: Vec<String> = std::fs::read_dir(boot)
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(prefix))
        .collect();
    found.sort_by_key(|a| version_key(a));
    found.pop().map(|n| boot.join(n))
}

fn version_key(name: &str) -> Vec<u64> {
    name.split(|c: char| !c.is_ascii_digit())
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// Where the image's kernel is, if it has one (`None`: the image cannot boot as a VM).
pub fn find_kernel(rootfs: &Path) -> Option<(PathBuf, Option<PathBuf>)> {
    let boot = rootfs.join("boot");
    let kernel = newest(&boot, "vmlinuz-")?;
    let version = kernel
        .file_name()?
        .to_string_lossy()
        .trim_start_matches("vmlinuz-")
        .to_string();
    let initrd = boot.join(format!("initrd.img-{version}"));
    Some((kernel, initrd.is_file().then_some(initrd)))
}

fn dir_size(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut total = 0;
    let mut stack = vec![path.to_path_buf()];
    while let Some(p) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&p) else {
            continue;
        };
        for e in rd.flatten() {
            if let Ok(m) = e.metadata() {
                // Allocated size, plus an inode's worth per entry.
                total += m.blocks() * 512 + 256;
                if m.is_dir() {
                    stack.push(e.path());
                }
            }
        }
    }
    total
}

/// The image's VM form, made if missing. Blocking work runs on tokio's blocking pool.
pub async fn ensure_base(rootfs: &Path) -> VmResult<BaseDisk> {
    let (kernel, initrd) = find_kernel(rootfs).ok_or_else(|| {
        VmError::Image(format!(
            "the image at {} has no kernel in /boot: it cannot boot as a VM",
            rootfs.display()
        ))
    })?;
    let vm_dir = rootfs
        .parent()
        .map(|p| p.join("vm"))
        .ok_or_else(|| VmError::Image(format!("{} has no parent", rootfs.display())))?;
    let disk = vm_dir.join("disk.qcow2");
    let base = BaseDisk {
        disk: disk.clone(),
        kernel,
        initrd,
    };
    if disk.is_file() {
        return Ok(base);
    }
    std::fs::create_dir_all(&vm_dir).map_err(|e| VmError::io("creating", &vm_dir, e))?;
    // One maker at a time per image (another instance, another gureum).
    let lock = vm_dir.join(".lock");
    let _guard = crate::sandbox::FileLock::acquire(&lock).await?;
    if disk.is_file() {
        return Ok(base);
    }
    let t = std::time::Instant::now();
    let raw = vm_dir.join("disk.raw.tmp");
    let tmp = vm_dir.join("disk.qcow2.tmp");
    let size_mib = dir_size(rootfs) * 5 / 4 / (1024 * 1024) + BASE_SLACK_MIB;
    let _ = std::fs::remove_file(&raw);
    run(
        Command::new("mkfs.ext4")
            .args([
                "-q",
                "-F",
                "-L",
                "gureum-root",
                "-E",
                "root_owner=0:0",
                "-d",
            ])
            .arg(rootfs)
            .arg(&raw)
            .arg(format!("{size_mib}M")),
        "mkfs.ext4 -d (the image's base disk)",
    )
    .await?;
    let r = run(
        Command::new("qemu-img")
            .args(["convert", "-q", "-f", "raw", "-O", "qcow2"])
            .arg(&raw)
            .arg(&tmp),
        "qemu-img convert (the image's base disk)",
    )
    .await;
    let _ = std::fs::remove_file(&raw);
    r?;
    std::fs::rename(&tmp, &disk).map_err(|e| VmError::io("publishing", &disk, e))?;
    tracing::info!(
        disk = %disk.display(),
        size_mib,
        secs = t.elapsed().as_secs_f64(),
        "made an image's VM base disk"
    );
    Ok(base)
}

/// The virtual size of a qcow2 file in bytes.
pub async fn virtual_size(path: &Path) -> VmResult<u64> {
    let out = run(
        Command::new("qemu-img")
            .args(["info", "--output=json", "-U"])
            .arg(path),
        "qemu-img info",
    )
    .await?;
    let v: serde_json::Value =
        serde_json::from_str(&out).map_err(|e| VmError::Image(format!("qemu-img info: {e}")))?;
    v["virtual-size"]
        .as_u64()
        .ok_or_else(|| VmError::Image("qemu-img info: no virtual-size".into()))
}

/// Makes the instance's overlay if missing, and grows it to `gib` if it is smaller (a resize
/// while stopped; the guest grows its file system at the next boot).
pub async fn ensure_overlay(base: &Path, overlay: &Path, gib: u64) -> VmResult<()> {
    let want = gib * 1024 * 1024 * 1024;
    if !overlay.is_file() {
        let tmp = overlay.with_extension("qcow2.tmp");
        run(
            Command::new("qemu-img")
                .args(["create", "-q", "-f", "qcow2", "-F", "qcow2", "-b"])
                .arg(base)
                .arg(&tmp)
                .arg(want.to_string()),
            "qemu-img create (the instance's overlay)",
        )
        .await?;
        std::fs::rename(&tmp, overlay).map_err(|e| VmError::io("publishing", overlay, e))?;
        return Ok(());
    }
    if virtual_size(overlay).await? < want {
        run(
            Command::new("qemu-img")
                .arg("resize")
                .arg("-q")
                .arg(overlay)
                .arg(want.to_string()),
            "qemu-img resize",
        )
        .await?;
    }
    Ok(())
}

/// Writes an instance's root volume as a standalone raw disk at `dest` (`qemu-img convert`:
/// the overlay and the image's base disk below it flattened into one ext4 disk of the
/// volume's size, sparse where nothing was written). `-U` reads a running guest's overlay
/// live. Made under `.tmp-<name>.export` beside `dest` (the volume pool's prefix for
/// unfinished files), then renamed over it. Idempotent.
pub async fn export_raw(overlay: &Path, dest: &Path) -> VmResult<()> {
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| VmError::Image(format!("{} names no file", dest.display())))?;
    let tmp = dest.with_file_name(format!(".tmp-{name}.export"));
    let _ = std::fs::remove_file(&tmp);
    let result = async {
        run(
            Command::new("qemu-img")
                .args(["convert", "-U", "-q", "-O", "raw"])
                .arg(overlay)
                .arg(&tmp),
            "qemu-img convert (exporting the root volume)",
        )
        .await?;
        std::fs::File::open(&tmp)
            .and_then(|f| f.sync_all())
            .map_err(|e| VmError::io("syncing", &tmp, e))?;
        std::fs::rename(&tmp, dest).map_err(|e| VmError::io("publishing", dest, e))
    }
    .await;
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// A file for the seed disk: an absolute path in the guest, its bytes and mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedFile {
    pub path: PathBuf,
    pub contents: Vec<u8>,
    pub mode: u32,
}

/// Writes the seed disk (ext4, label `gureum-seed`) whose `root/` mirrors the guest paths.
pub async fn write_seed(dir: &Path, files: &[SeedFile], image: &Path) -> VmResult<()> {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::remove_dir_all(dir);
    let root = dir.join("root");
    for f in files {
        let rel = f.path.strip_prefix("/").unwrap_or(&f.path);
        if rel
            .components()
            .any(|c| !matches!(c, std::path::Component::Normal(_)))
        {
            return Err(VmError::Image(format!(
                "seed path {} is not a plain absolute path",
                f.path.display()
            )));
        }
        let p = root.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).map_err(|e| VmError::io("creating", parent, e))?;
        }
        std::fs::write(&p, &f.contents).map_err(|e| VmError::io("writing", &p, e))?;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(f.mode))
            .map_err(|e| VmError::io("chmod", &p, e))?;
    }
    std::fs::create_dir_all(&root).map_err(|e| VmError::io("creating", &root, e))?;
    let _ = std::fs::remove_file(image);
    let r = run(
        Command::new("mkfs.ext4")
            .args([
                "-q",
                "-F",
                "-L",
                "gureum-seed",
                "-O",
                "^has_journal",
                "-E",
                "root_owner=0:0",
                "-d",
            ])
            .arg(dir)
            .arg(image)
            .arg("8M"),
        "mkfs.ext4 -d (the seed disk)",
    )
    .await;
    let _ = std::fs::remove_dir_all(dir);
    r.map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newest_kernel_by_version() {
        let d = std::env::temp_dir().join(format!("gureum-vm-boot-{}", std::process::id()));
        let boot = d.join("boot");
        std::fs::create_dir_all(&boot).unwrap();
        for n in [
            "vmlinuz-6.1.0-9-cloud-amd64",
            "vmlinuz-6.1.0-26-cloud-amd64",
            "initrd.img-6.1.0-26-cloud-amd64",
            "config-6.1.0-26-cloud-amd64",
        ] {
            std::fs::write(boot.join(n), b"x").unwrap();
        }
        let (k, i) = find_kernel(&d).unwrap();
        assert!(k.ends_with("vmlinuz-6.1.0-26-cloud-amd64"));
        assert!(i.unwrap().ends_with("initrd.img-6.1.0-26-cloud-amd64"));
        std::fs::remove_dir_all(&d).unwrap();
        assert!(find_kernel(&d).is_none());
    }
}
