//! Host tests: they really boot QEMU under TCG, so they need root, qemu-system-x86_64 and a
//! built VM image (`debian-12-vm` in the shared image cache, or GUREUM_VM_TEST_ROOTFS); without
//! them each test says it is skipped and passes.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{bootable_image, skip, spec, unusable, vm_rootfs, Cleanup};
use gureum_vm::{Accel, VmDriver, VmOptions, VmState, Volume};

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
    let Some(rootfs) = bootable_image() else {
        return;
    };
    let state = std::env::temp_dir().join(format!("gureum-vm-test-{}", std::process::id()));
    let id = "i-0fa1afa1afa1afa10";
    let d = VmDriver::new(VmOptions::new(&state, Accel::Tcg)).unwrap();
    let spec = spec(id, rootfs, "vm-host-test", None);
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

/// The guest side of the volume test (user-data, run as root at first boot): it reports on the
/// serial console what it sees of the NVMe volume, formats and mounts it, keeps it mounted a
/// few seconds (the host's plain detach must answer busy then), unmounts it, and after the
/// detach and the second attach reads back what it wrote.
const VOLUME_SCRIPT: &str = r#"#!/bin/sh
exec >/dev/ttyS0 2>&1
say() { echo "GUREUM-VOL $*"; }
wait_dev() { while :; do set -- /sys/block/nvme*; [ -e "$1" ] && break; sleep 0.01; done; D=/dev/${1##*/}; }
wait_gone() { while :; do set -- /sys/block/nvme*; [ -e "$1" ] || break; sleep 0.01; done; }
say ready
wait_dev
say seen $(cat /sys/class/nvme/nvme*/serial)
mkfs.ext4 -q -F "$D" && mkdir -p /mnt/v && mount "$D" /mnt/v && echo kept-across-detach >/mnt/v/data && sync && say mounted
sleep 5
umount /mnt/v && say unmounted
wait_gone
say gone
wait_dev
mount "$D" /mnt/v && say read $(cat /mnt/v/data) && umount /mnt/v && say unmounted-again
"#;

fn console_has(d: &VmDriver, id: &str, needle: &str) -> bool {
    String::from_utf8_lossy(&d.console_output(id, 1 << 20).unwrap()).contains(needle)
}

async fn wait_for(d: &VmDriver, id: &str, needle: &str, timeout: Duration) -> Option<Duration> {
    let t = Instant::now();
    while t.elapsed() < timeout {
        if console_has(d, id, needle) {
            return Some(t.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    None
}

#[tokio::test(flavor = "multi_thread")]
async fn a_volume_is_hot_plugged_used_detached_and_kept() {
    let Some(rootfs) = bootable_image() else {
        return;
    };
    let state = std::env::temp_dir().join(format!("gureum-vm-vol-{}", std::process::id()));
    let id = "i-0fa1afa1afa1afa11";
    let vol_id = "vol-0fa1afa1afa1afa11";
    let _cleanup = Cleanup(id, state.clone());
    let d = VmDriver::new(VmOptions::new(&state, Accel::Tcg)).unwrap();
    // A 64 MiB sparse volume file, outside the VM's directory as the pool keeps them.
    let vol_path = state.join("pool").join(format!("{vol_id}.raw"));
    std::fs::create_dir_all(vol_path.parent().unwrap()).unwrap();
    std::fs::File::create(&vol_path)
        .unwrap()
        .set_len(64 << 20)
        .unwrap();
    let volume = Volume::new(vol_id, "/dev/sdf", &vol_path, false);
    let mut spec = spec(id, rootfs, "vm-vol-test", Some(VOLUME_SCRIPT));
    // Not there yet: attaching to an unknown instance fails, detaching is a no-op.
    assert!(d.attach_volume(id, &volume).await.is_err());
    d.detach_volume(id, vol_id, false).await.unwrap();
    d.start(&spec).await.unwrap();
    assert!(
        wait_for(&d, id, "GUREUM-VOL ready", Duration::from_secs(600))
            .await
            .is_some(),
        "the guest's script did not start:\n{}",
        String::from_utf8_lossy(&d.console_output(id, 4000).unwrap())
    );
    assert!(d.plugged_volumes(id).await.unwrap().is_empty());

    // Hot-plug: QEMU (unprivileged, chrooted) gets the file as a descriptor.
    let t = Instant::now();
    d.attach_volume(id, &volume).await.unwrap();
    let qmp = t.elapsed();
    let seen = wait_for(&d, id, "GUREUM-VOL seen", Duration::from_secs(120)).await;
    let seen = seen.map(|s| s + qmp);
    eprintln!("attach: qmp {qmp:?}, visible in the guest after {seen:?}");
    assert!(seen.is_some(), "the guest never saw the volume");
    assert!(
        console_has(&d, id, "GUREUM-VOL seen vol0fa1afa1afa1afa11"),
        "the NVMe serial is not the volume id"
    );
    assert_eq!(d.plugged_volumes(id).await.unwrap(), vec![vol_id]);
    assert_eq!(d.volumes(id).unwrap()[0].volume_id, vol_id);
    // Idempotent, also from a new driver (a restarted gureum).
    let d2 = VmDriver::new(VmOptions::new(&state, Accel::Tcg)).unwrap();
    d2.attach_volume(id, &volume).await.unwrap();
    assert_eq!(d2.plugged_volumes(id).await.unwrap(), vec![vol_id]);

    // Mounted in the guest: a plain detach is busy and changes nothing.
    assert!(
        wait_for(&d, id, "GUREUM-VOL mounted", Duration::from_secs(120))
            .await
            .is_some(),
        "mkfs or mount failed in the guest:\n{}",
        String::from_utf8_lossy(&d.console_output(id, 4000).unwrap())
    );
    let busy = d.detach_volume(id, vol_id, false).await.unwrap_err();
    assert!(
        matches!(busy, gureum_vm::VmError::Busy(_)),
        "{busy}: a mounted volume must be busy"
    );
    assert_eq!(d.plugged_volumes(id).await.unwrap(), vec![vol_id]);

    // Unmounted: the detach takes it away in the guest too.
    assert!(
        wait_for(&d, id, "GUREUM-VOL unmounted", Duration::from_secs(120))
            .await
            .is_some()
    );
    let t = Instant::now();
    d.detach_volume(id, vol_id, false).await.unwrap();
    eprintln!("detach: {:?}", t.elapsed());
    assert!(
        wait_for(&d, id, "GUREUM-VOL gone", Duration::from_secs(120))
            .await
            .is_some()
    );
    assert!(d.plugged_volumes(id).await.unwrap().is_empty());
    assert!(d.volumes(id).unwrap().is_empty());
    d.detach_volume(id, vol_id, false).await.unwrap();
    // The data is in the file.
    let out = std::process::Command::new("debugfs")
        .args(["-R", "cat /data"])
        .arg(&vol_path)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "kept-across-detach\n");

    // Attached again, the guest reads it back.
    d.attach_volume(id, &volume).await.unwrap();
    assert!(
        wait_for(
            &d,
            id,
            "GUREUM-VOL read kept-across-detach",
            Duration::from_secs(120)
        )
        .await
        .is_some(),
        "{}",
        String::from_utf8_lossy(&d.console_output(id, 4000).unwrap())
    );
    assert!(wait_for(
        &d,
        id,
        "GUREUM-VOL unmounted-again",
        Duration::from_secs(120)
    )
    .await
    .is_some());

    // A start gives the spec's volumes from the boot (the command line).
    d.stop(id, Duration::ZERO, true).await.unwrap();
    assert!(d.plugged_volumes(id).await.unwrap().is_empty());
    spec.volumes = vec![volume.clone()];
    d.start(&spec).await.unwrap();
    assert_eq!(d.plugged_volumes(id).await.unwrap(), vec![vol_id]);
    assert_eq!(d.volumes(id).unwrap().len(), 1);
    d.destroy(id).await.unwrap();
    assert!(vol_path.is_file(), "destroy must leave the volume's file");
    let _ = std::fs::remove_dir_all(&state);
}
