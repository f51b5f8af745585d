//! Looking inside a root filesystem directory without trusting it: resolving paths the way the
//! guest would (symlinks are followed *within* the root, never onto the host), reading
//! os-release, recognising a bootable root (os-release plus an init), and measuring disk usage.

use std::collections::{HashMap, HashSet};
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

/// Resolves `path` (absolute or relative to the root, as the guest sees it) inside `root`,
/// following symlinks as if `root` were `/`. Returns `None` if any component is missing or a
/// symlink loop is found. An absolute link such as `/etc/os-release -> /usr/lib/os-release`
/// therefore stays inside the image instead of reaching the host's file.
pub(crate) fn resolve(root: &Path, path: &str) -> Option<PathBuf> {
    let mut pending: Vec<String> = path
        .split('/')
        .rev()
        .filter(|c| !c.is_empty())
        .map(str::to_string)
        .collect();
    let mut current: Vec<String> = Vec::new();
    let mut hops = 0;
    while let Some(part) = pending.pop() {
        match part.as_str() {
            "." => continue,
            ".." => {
                current.pop();
                continue;
            }
            _ => {}
        }
        current.push(part);
        let host_path = join(root, &current);
        let meta = std::fs::symlink_metadata(&host_path).ok()?;
        if meta.file_type().is_symlink() {
            hops += 1;
            if hops > 40 {
                return None;
            }
            let target = std::fs::read_link(&host_path).ok()?;
            current.pop();
            if target.is_absolute() {
                current.clear();
            }
            for c in target.components().rev() {
                match c {
                    Component::Normal(s) => pending.push(s.to_string_lossy().into_owned()),
                    Component::ParentDir => pending.push("..".to_string()),
                    Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
                }
            }
        }
    }
    Some(join(root, &current))
}

fn join(root: &Path, parts: &[String]) -> PathBuf {
    let mut p = root.to_path_buf();
    for part in parts {
        p.push(part);
    }
    p
}

/// The parsed os-release of a root filesystem (`/etc/os-release`, else `/usr/lib/os-release`).
pub(crate) fn os_release(root: &Path) -> Option<HashMap<String, String>> {
    ["etc/os-release", "usr/lib/os-release"]
        .iter()
        .find_map(|p| {
            let file = resolve(root, p)?;
            if !file.is_file() {
                return None;
            }
            // An os-release is a few hundred bytes; refuse anything absurd from an untrusted image.
            if std::fs::metadata(&file).ok()?.len() > 64 * 1024 {
                return None;
            }
            Some(parse_os_release(&std::fs::read_to_string(file).ok()?))
        })
}

/// Parses os-release's shell-like `KEY=value` / `KEY="value"` lines.
pub(crate) fn parse_os_release(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter_map(|line| {
            let line = line.trim();
            if line.starts_with('#') {
                return None;
            }
            let (k, v) = line.split_once('=')?;
            let v = v.trim();
            let v = if v.len() >= 2
                && ((v.starts_with('"') && v.ends_with('"'))
                    || (v.starts_with('\'') && v.ends_with('\'')))
            {
                v[1..v.len() - 1]
                    .replace("\\\"", "\"")
                    .replace("\\\\", "\\")
            } else {
                v.to_string()
            };
            Some((k.trim().to_string(), v))
        })
        .collect()
}

/// The human name of an os-release: PRETTY_NAME, else NAME VERSION, else "Linux".
pub(crate) fn pretty_name(os: &HashMap<String, String>) -> String {
    if let Some(p) = os.get("PRETTY_NAME").filter(|p| !p.is_empty()) {
        return p.clone();
    }
    match (os.get("NAME"), os.get("VERSION")) {
        (Some(n), Some(v)) => format!("{n} {v}"),
        (Some(n), None) => n.clone(),
        _ => "Linux".to_string(),
    }
}

/// Where an init lives in the images we accept (sysvinit-style `/sbin/init` is usually a link
/// to systemd; merged-/usr images resolve `/sbin` and `/lib` through symlinks).
const INIT_PATHS: &[&str] = &[
    "sbin/init",
    "usr/sbin/init",
    "lib/systemd/systemd",
    "usr/lib/systemd/systemd",
];

/// Whether the root has an executable init.
pub(crate) fn has_init(root: &Path) -> bool {
    INIT_PATHS.iter().any(|p| {
        resolve(root, p)
            .and_then(|f| std::fs::metadata(f).ok())
            .is_some_and(|m| m.is_file() && m.mode() & 0o111 != 0)
    })
}

/// Checks that `root` looks like a bootable root filesystem; the error says what is missing.
pub(crate) fn check_root(root: &Path) -> Result<HashMap<String, String>, String> {
    let os = os_release(root);
    let init = has_init(root);
    match (os, init) {
        (Some(os), true) => Ok(os),
        (None, true) => Err("no /etc/os-release".to_string()),
        (Some(_), false) => Err("no init (/sbin/init or systemd)".to_string()),
        (None, false) => Err("no /etc/os-release and no init".to_string()),
    }
}

/// Disk usage of a tree in bytes, like `du -sx -B1`: allocated blocks, hard links counted once,
/// symlinks not followed, other filesystems not entered.
pub(crate) fn disk_usage(root: &Path) -> std::io::Result<u64> {
    let top = std::fs::symlink_metadata(root)?;
    let dev = top.dev();
    let mut seen: HashSet<(u64, u64)> = HashSet::new();
    let mut total = top.blocks() * 512;
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let meta = entry.metadata()?;
            if meta.dev() != dev {
                continue;
            }
            if meta.nlink() > 1 && !meta.is_dir() && !seen.insert((meta.dev(), meta.ino())) {
                continue;
            }
            total += meta.blocks() * 512;
            if meta.is_dir() {
                stack.push(entry.path());
            }
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, PermissionsExt};

    fn fake_root() -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        for d in ["usr/lib/systemd", "usr/sbin", "usr/bin", "etc"] {
            std::fs::create_dir_all(r.join(d)).unwrap();
        }
        symlink("usr/lib", r.join("lib")).unwrap();
        symlink("usr/sbin", r.join("sbin")).unwrap();
        std::fs::write(
            r.join("usr/lib/os-release"),
            "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nID=debian\n",
        )
        .unwrap();
        // The absolute form Debian uses: must resolve inside the root, not on the host.
        symlink("/usr/lib/os-release", r.join("etc/os-release")).unwrap();
        let systemd = r.join("usr/lib/systemd/systemd");
        std::fs::write(&systemd, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&systemd, std::fs::Permissions::from_mode(0o755)).unwrap();
        symlink("/lib/systemd/systemd", r.join("usr/sbin/init")).unwrap();
        t
    }

    #[test]
    fn absolute_links_resolve_inside_the_root() {
        let t = fake_root();
        let r = t.path();
        assert_eq!(
            resolve(r, "/etc/os-release").unwrap(),
            r.join("usr/lib/os-release")
        );
        assert_eq!(
            resolve(r, "sbin/init").unwrap(),
            r.join("usr/lib/systemd/systemd")
        );
        assert!(resolve(r, "etc/missing").is_none());
        // A link pointing at the host's /etc/passwd must not find the host's file.
        symlink("/etc/passwd", r.join("etc/escape")).unwrap();
        assert!(resolve(r, "etc/escape").is_none());
        // ".." cannot climb above the root either.
        symlink("../../../../../etc/hostname", r.join("etc/climb")).unwrap();
        assert!(resolve(r, "etc/climb").is_none());
        symlink("loop2", r.join("etc/loop1")).unwrap();
        symlink("loop1", r.join("etc/loop2")).unwrap();
        assert!(resolve(r, "etc/loop1").is_none());
    }

    #[test]
    fn a_root_needs_os_release_and_init() {
        let t = fake_root();
        let os = check_root(t.path()).unwrap();
        assert_eq!(pretty_name(&os), "Debian GNU/Linux 12 (bookworm)");
        assert_eq!(os["ID"], "debian");
        std::fs::remove_file(t.path().join("usr/lib/systemd/systemd")).unwrap();
        assert_eq!(
            check_root(t.path()).unwrap_err(),
            "no init (/sbin/init or systemd)"
        );
        let empty = tempfile::tempdir().unwrap();
        assert!(check_root(empty.path()).is_err());
    }

    #[test]
    fn os_release_quoting() {
        let os = parse_os_release("# c\nNAME='Foo'\nVERSION=\"1 \\\"x\\\"\"\nID=foo\n");
        assert_eq!(os["NAME"], "Foo");
        assert_eq!(os["VERSION"], "1 \"x\"");
        assert_eq!(pretty_name(&os), "Foo 1 \"x\"");
    }

    #[test]
    fn disk_usage_counts_hard_links_once() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("a"), vec![1u8; 64 * 1024]).unwrap();
        let before = disk_usage(t.path()).unwrap();
        std::fs::hard_link(t.path().join("a"), t.path().join("b")).unwrap();
        assert_eq!(disk_usage(t.path()).unwrap(), before);
        assert!(before >= 64 * 1024);
    }
}
