//! What the host tests and the volume benchmark (`examples/bench_volumes.rs`, which includes
//! this file) share: whether this host can run them, the VM image they boot, a spec, and the
//! clean-up of an instance.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use gureum_vm::{SeedFile, VmSpec};

pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

pub fn have_qemu() -> bool {
    Path::new("/usr/bin/qemu-system-x86_64").exists()
}

pub fn vm_rootfs() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("GUREUM_VM_TEST_ROOTFS") {
        return Some(PathBuf::from(p));
    }
    let builds = Path::new("/var/cache/gureum/builds");
    let mut found: Vec<PathBuf> = std::fs::read_dir(builds)
        .ok()?
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("debian-12-vm-amd64-")
        })
        .map(|e| e.path().join("current/rootfs"))
        .filter(|p| p.join("boot").is_dir())
        .collect();
    found.sort();
    found.pop()
}

pub fn skip(why: &str) -> bool {
    eprintln!("skipped: {why}");
    true
}

pub fn unusable() -> bool {
    if !is_root() {
        return skip("not root");
    }
    if !have_qemu() {
        return skip("no qemu-system-x86_64");
    }
    false
}

/// The VM image to boot, if this host can run the tests that boot one (else each reason is
/// printed as a skip).
pub fn bootable_image() -> Option<PathBuf> {
    if unusable() {
        return None;
    }
    let found = vm_rootfs();
    if found.is_none() {
        skip("no debian-12-vm image built (or set GUREUM_VM_TEST_ROOTFS)");
    }
    found
}

/// Whatever happens, leave no process, user, cgroup or state directory behind.
pub struct Cleanup(pub &'static str, pub PathBuf);

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Ok(pid) = std::fs::read_to_string(self.1.join(self.0).join("qemu.pid")) {
            let _ = std::process::Command::new("kill")
                .args(["-9", pid.trim()])
                .status();
            std::thread::sleep(Duration::from_millis(500));
        }
        for d in gureum_vm::sandbox::cgroup_dirs(self.0) {
            let _ = std::fs::remove_dir(d);
        }
        let _ = std::process::Command::new("userdel")
            .arg(gureum_vm::sandbox::user_name(self.0))
            .stderr(std::process::Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.1);
    }
}

/// A small VM of `rootfs` named `id` with hostname `hostname`, running `user_data` (a script)
/// at its first boot if given.
pub fn spec(id: &str, rootfs: PathBuf, hostname: &str, user_data: Option<&str>) -> VmSpec {
    let mut files = vec![SeedFile {
        path: "/var/lib/gureum/instance.env".into(),
        contents: format!("INSTANCE_ID='{id}'\nHOSTNAME='{hostname}'\n").into_bytes(),
        mode: 0o644,
    }];
    if let Some(script) = user_data {
        files.push(SeedFile {
            path: "/var/lib/gureum/user-data".into(),
            contents: script.as_bytes().to_vec(),
            mode: 0o600,
        });
    }
    VmSpec {
        id: id.into(),
        image_rootfs: rootfs,
        volume_gib: 2,
        vcpus: 1,
        memory_mib: 512,
        net: None,
        files,
        volumes: vec![],
    }
}
