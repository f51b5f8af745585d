//! Host tests: they really boot QEMU under TCG, so they need root, qemu-system-x86_64 and a
//! built VM image (`debian-12-vm` in the shared image cache, or GUREUM_VM_TEST_ROOTFS); without
//! them each test says it is skipped and passes.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use gureum_vm::{Accel, SeedFile, VmDriver, VmOptions, VmSpec, VmState};

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

fn have_qemu() -> bool {
    Path::new("/usr/bin/qemu-system-x86_64").exists()
}

fn vm_rootfs() -> Option<PathBuf> {
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

fn skip(why: &str) -> bool {
    eprintln!("skipped: {why}");
    true
}

fn unusable() -> bool {
    if !is_root() {
        return skip("not root");
    }
    if !have_qemu() {
        return skip("no qemu-system-x86_64");
    }
    false
}

#[tokio::test(flavor = "multi_thread")]
async fn probe_boots_the_stub_and_the_kernel_under_tcg() {
    if unusable() {
        return;
    }
    let qemu = Path::new("/usr/bin/qemu-system-x86_64");
    let stub = gureum_vm::probe::boot_test(qemu, Accel::Tcg, None, Duration::from_secs(20)).await;
    assert!(stub.is_ok(), "{stub:?}");
    let Some(rootfs) = vm_rootfs() else {
        skip("no debian-12-vm image built");
        return;
    };
    let (kernel, _) = gureum_vm::disk::find_kernel(&rootfs).expect("a kernel");
    let report = gureum_vm::probe(qemu, Some(&kernel), Duration::from_secs(20)).await;
    eprintln!("probe: {report:?}");
    assert!(report.tcg.is_ok(), "{report:?}");
    assert!(report.with_kernel);
}

fn wait_console(d: &VmDriver, id: &str, needle: &str, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        let out = d.console_output(id, 1 << 20).unwrap();
        if String::from_utf8_lossy(&out).contains(needle) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    false
}

#[tokio::test(flavor = "multi_thread")]
async fn a_vm_boots_stops_restarts_reattaches_and_is_destroyed() {
    if unusable() {
        return;
    }
    let Some(rootfs) = vm_rootfs() else {
        skip("no debian-12-vm image built");
        return;
    };
    let state = std::env::temp_dir().join(format!("gureum-vm-test-{}", std::process::id()));
    let id = "i-0fa1afa1afa1afa10";
    let d = VmDriver::new(VmOptions::new(&state, Accel::Tcg)).unwrap();
    let spec = VmSpec {
        id: id.into(),
        image_rootfs: rootfs,
        volume_gib: 2,
        vcpus: 1,
        memory_mib: 512,
        net: None,
        files: vec![SeedFile {
            path: "/var/lib/gureum/instance.env".into(),
            contents: format!("INSTANCE_ID='{id}'\nHOSTNAME='vm-host-test'\n").into_bytes(),
            mode: 0o644,
        }],
    };
    // Whatever happens, leave no process, user or cgroup behind.
    struct Cleanup(&'static str, PathBuf);
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
    let _cleanup = Cleanup(id, state.clone());
    let result = async {
        d.prepare(&spec).await.unwrap();
        assert_eq!(d.state(id).await.unwrap(), VmState::Stopped);
        let t = Instant::now();
        d.start(&spec).await.unwrap();
        assert_eq!(d.state(id).await.unwrap(), VmState::Running);
        assert_eq!(d.status(id).await.unwrap().as_deref(), Some("running"));
        // Confined: its own user, its own cgroup.
        let pid = d.pid(id).unwrap();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let uid_line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
        assert!(!uid_line.contains("\t0\t"), "qemu runs as root: {uid_line}");
        let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
        assert!(cg.contains(&format!("gureum-vm/{id}")), "{cg}");
        // The guest's own kernel boots and the seed reaches it (gureum-init sets the hostname).
        assert!(
            wait_console(&d, id, "vm-host-test login:", Duration::from_secs(120)),
            "no login prompt:\n{}",
            String::from_utf8_lossy(&d.console_output(id, 4000).unwrap())
        );
        eprintln!("boot to login prompt: {:.1} s", t.elapsed().as_secs_f64());
        // A new driver (a gureum restart) finds the running guest.
        let d2 = VmDriver::new(VmOptions::new(&state, Accel::Tcg)).unwrap();
        assert_eq!(d2.state(id).await.unwrap(), VmState::Running);
        assert_eq!(d2.list().await.unwrap(), vec![id.to_string()]);
        // Graceful stop through ACPI.
        let t = Instant::now();
        d2.stop(id, Duration::from_secs(60), false).await.unwrap();
        eprintln!("graceful stop: {:.1} s", t.elapsed().as_secs_f64());
        assert_eq!(d2.state(id).await.unwrap(), VmState::Stopped);
        let console =
            String::from_utf8_lossy(&d2.console_output(id, 1 << 20).unwrap()).into_owned();
        assert!(
            console.contains("reboot: Power down"),
            "not a clean power-off"
        );
        // Resize while stopped, start again, force stop.
        let mut bigger = spec.clone();
        bigger.volume_gib = 3;
        d2.prepare(&bigger).await.unwrap();
        assert_eq!(
            gureum_vm::disk::virtual_size(&d2.root_disk(id))
                .await
                .unwrap(),
            3 << 30
        );
        d2.start(&bigger).await.unwrap();
        assert_eq!(d2.state(id).await.unwrap(), VmState::Running);
        d2.stop(id, Duration::ZERO, true).await.unwrap();
        assert_eq!(d2.state(id).await.unwrap(), VmState::Stopped);
    }
    .await;
    d.destroy(id).await.unwrap();
    assert_eq!(d.state(id).await.unwrap(), VmState::Absent);
    assert!(!gureum_vm::sandbox::cgroup_dirs(id)
        .iter()
        .any(|p| p.exists()));
    let user = std::process::Command::new("id")
        .args(["-u", &gureum_vm::sandbox::user_name(id)])
        .output()
        .unwrap();
    assert!(!user.status.success(), "the instance's user is left");
    let _ = std::fs::remove_dir_all(&state);
    result
}
