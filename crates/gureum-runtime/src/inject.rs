//! Writing files into a stopped instance's rootfs (hostname, SSH keys, user data, ...).
//!
//! Files are written through the mounted overlay, so overlayfs copies parent directories up
//! with their real owners and modes. The rootfs is guest-controlled: a guest may have replaced
//! `/home/admin/.ssh` by a symlink to `/etc/shadow` or `../../../../host`. Paths are therefore
//! resolved the way a chroot would (every symlink, absolute or relative, is followed inside the
//! rootfs, `..` stops at its root) and the final component is replaced by `rename`, which never
//! follows a symlink. The guest is not running while this happens, so nothing races it.
//!
//! Missing parent directories are created with mode 0755, owned by the file's uid and gid
//! (so an injected `/home/admin/.ssh/authorized_keys` gets a `.ssh` its owner can use).

use std::collections::VecDeque;
use std::ffi::OsString;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use crate::error::RuntimeError;
use crate::InjectFile;

/// Most symlinks followed while resolving one path (Linux's own limit is 40).
const MAX_SYMLINKS: usize = 40;

/// Checks an inject path: absolute, valid UTF-8 not required, not the root itself.
pub(crate) fn validate(path: &Path) -> Result<(), RuntimeError> {
    if !path.is_absolute() {
        return Err(RuntimeError::InvalidSpec(format!(
            "inject path {} is not absolute",
            path.display()
        )));
    }
    if path.file_name().is_none() {
        return Err(RuntimeError::InvalidSpec(format!(
            "inject path {} names no file",
            path.display()
        )));
    }
    Ok(())
}

/// The host path of `guest_path` inside `root`, its parents resolved as the guest would
/// (symlinks kept inside `root`) and none created; the last component is not followed.
pub(crate) fn resolve_existing(root: &Path, guest_path: &Path) -> Result<PathBuf, RuntimeError> {
    let (dir, name) = resolve_parent(root, guest_path, None)?;
    Ok(dir.join(name))
}

/// Resolves the parent directory of `guest_path` inside `root`, creating missing directories
/// owned by `owner` (uid, gid) or failing without one, and returns (host path of the parent,
/// final file name).
fn resolve_parent(
    root: &Path,
    guest_path: &Path,
    owner: Option<(u32, u32)>,
) -> Result<(PathBuf, OsString), RuntimeError> {
    let name = guest_path
        .file_name()
        .ok_or_else(|| {
            RuntimeError::InvalidSpec(format!("{} names no file", guest_path.display()))
        })?
        .to_os_string();
    let parent = guest_path.parent().unwrap_or(Path::new("/"));
    // Components still to walk, and the resolved guest location so far.
    let mut todo: VecDeque<OsString> = components(parent);
    let mut at: Vec<OsString> = Vec::new();
    let mut followed = 0;
    while let Some(comp) = todo.pop_front() {
        if comp == ".." {
            at.pop();
            continue;
        }
        let host = host_path(root, &at).join(&comp);
        match std::fs::symlink_metadata(&host) {
            Ok(meta) if meta.file_type().is_symlink() => {
                followed += 1;
                if followed > MAX_SYMLINKS {
                    return Err(RuntimeError::InvalidSpec(format!(
                        "too many symlinks resolving {}",
                        guest_path.display()
                    )));
                }
                let target = std::fs::read_link(&host)
                    .map_err(|e| RuntimeError::io("readlink", &host, e))?;
                if target.is_absolute() {
                    at.clear();
                }
                let mut next = components(&target);
                next.extend(todo);
                todo = next;
            }
            Ok(meta) if meta.is_dir() => at.push(comp),
            Ok(_) => {
                return Err(RuntimeError::InvalidSpec(format!(
                    "cannot inject {}: a parent is not a directory",
                    guest_path.display()
                )))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let Some((uid, gid)) = owner else {
                    return Err(RuntimeError::io("stat", &host, e));
                };
                std::fs::DirBuilder::new()
                    .mode(0o755)
                    .create(&host)
                    .map_err(|e| RuntimeError::io("create", &host, e))?;
                std::os::unix::fs::lchown(&host, Some(uid), Some(gid))
                    .map_err(|e| RuntimeError::io("chown", &host, e))?;
                at.push(comp);
            }
            Err(e) => return Err(RuntimeError::io("stat", &host, e)),
        }
    }
    Ok((host_path(root, &at), name))
}

/// A path's normal components and `..`s (the root and `.` dropped).
fn components(p: &Path) -> VecDeque<OsString> {
    p.components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some(OsString::from("..")),
            _ => None,
        })
        .collect()
}

fn host_path(root: &Path, at: &[OsString]) -> PathBuf {
    let mut p = root.to_path_buf();
    for c in at {
        p.push(c);
    }
    p
}

/// Writes one file into the rootfs mounted at `root`.
pub(crate) fn write(root: &Path, file: &InjectFile) -> Result<(), RuntimeError> {
    validate(&file.path)?;
    let (dir, name) = resolve_parent(root, &file.path, Some((file.uid, file.gid)))?;
    let target = dir.join(&name);
    if std::fs::symlink_metadata(&target)
        .map(|m| m.is_dir())
        .unwrap_or(false)
    {
        return Err(RuntimeError::InvalidSpec(format!(
            "cannot inject {}: it is a directory in the image",
            file.path.display()
        )));
    }
    let mut tmp_name = OsString::from(".");
    tmp_name.push(&name);
    tmp_name.push(".gureum-tmp");
    let tmp = dir.join(tmp_name);
    let _ = std::fs::remove_file(&tmp);
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(|e| RuntimeError::io("create", &tmp, e))?;
        f.write_all(&file.contents)
            .map_err(|e| RuntimeError::io("write", &tmp, e))?;
        std::os::unix::fs::fchown(&f, Some(file.uid), Some(file.gid))
            .map_err(|e| RuntimeError::io("chown", &tmp, e))?;
        // After chown: chown clears setuid/setgid bits.
        f.set_permissions(std::fs::Permissions::from_mode(file.mode & 0o7777))
            .map_err(|e| RuntimeError::io("chmod", &tmp, e))?;
        f.sync_all()
            .map_err(|e| RuntimeError::io("sync", &tmp, e))?;
        // rename replaces a symlink at `target` instead of following it.
        std::fs::rename(&tmp, &target).map_err(|e| RuntimeError::io("rename", &target, e))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    struct TempDir(PathBuf);
    impl TempDir {
        fn new(tag: &str) -> Self {
            let p = std::env::temp_dir().join(format!(
                "gureum-inject-{tag}-{}-{:?}",
                std::process::id(),
                std::thread::current().id()
            ));
            let _ = std::fs::remove_dir_all(&p);
            std::fs::create_dir_all(&p).unwrap();
            TempDir(p)
        }
    }
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn file(path: &str, contents: &str) -> InjectFile {
        InjectFile {
            path: path.into(),
            contents: contents.as_bytes().to_vec(),
            mode: 0o600,
            uid: nix::unistd::geteuid().as_raw(),
            gid: nix::unistd::getegid().as_raw(),
        }
    }

    #[test]
    fn writes_with_mode_and_creates_parents() {
        let t = TempDir::new("plain");
        let root = t.0.join("root");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        write(&root, &file("/etc/hostname", "ip-1\n")).unwrap();
        write(
            &root,
            &file("/home/admin/.ssh/authorized_keys", "ssh-ed25519 x"),
        )
        .unwrap();
        assert_eq!(
            std::fs::read_to_string(root.join("etc/hostname")).unwrap(),
            "ip-1\n"
        );
        let meta = std::fs::metadata(root.join("home/admin/.ssh/authorized_keys")).unwrap();
        assert_eq!(meta.mode() & 0o7777, 0o600);
        assert!(root.join("home/admin/.ssh").is_dir());
        // Rewriting replaces.
        write(&root, &file("/etc/hostname", "ip-2\n")).unwrap();
        assert_eq!(
            std::fs::read_to_string(root.join("etc/hostname")).unwrap(),
            "ip-2\n"
        );
    }

    #[test]
    fn symlinks_stay_inside_the_root() {
        let t = TempDir::new("links");
        let root = t.0.join("root");
        let outside = t.0.join("outside");
        std::fs::create_dir_all(root.join("home/admin")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        // An absolute symlink pointing at a host path resolves inside the root.
        std::os::unix::fs::symlink(&outside, root.join("home/admin/.ssh")).unwrap();
        // A relative one climbing out stops at the root.
        std::os::unix::fs::symlink("../../../../../..", root.join("up")).unwrap();
        write(&root, &file("/home/admin/.ssh/authorized_keys", "k")).unwrap();
        write(&root, &file("/up/escape", "e")).unwrap();
        assert!(std::fs::read_dir(&outside).unwrap().next().is_none());
        assert!(root
            .join(outside.strip_prefix("/").unwrap())
            .join("authorized_keys")
            .is_file());
        assert!(root.join("escape").is_file());
        // A final-component symlink is replaced, not followed.
        let victim = t.0.join("victim");
        std::fs::write(&victim, "keep").unwrap();
        std::os::unix::fs::symlink(&victim, root.join("target")).unwrap();
        write(&root, &file("/target", "new")).unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
        assert_eq!(std::fs::read_to_string(root.join("target")).unwrap(), "new");
        // Symlink loops end.
        std::os::unix::fs::symlink("/loop", root.join("loop")).unwrap();
        assert!(write(&root, &file("/loop/x", "x")).is_err());
    }

    #[test]
    fn rejects_bad_paths() {
        assert!(validate(Path::new("etc/x")).is_err());
        assert!(validate(Path::new("/")).is_err());
        assert!(validate(Path::new("/etc/x")).is_ok());
    }
}
