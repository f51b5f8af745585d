//! Integration tests with real runc containers booting a real Debian rootfs with systemd.
//!
//! Need root, runc and a bootable rootfs: `$GUREUM_TEST_ROOTFS`, or
//! /var/cache/gureum-test/rootfs, built once with mmdebstrap when missing. Without them each
//! test prints `skipped: <why>` and returns. Container tests run one at a time (a global lock)
//! so that the timings they print are not skewed by each other. Every test destroys what it
//! made even when it fails (a Drop guard) and then checks that nothing is left on the host.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use gureum_host_api::{Compute, GuestSpec, HostError, VolumeAttachment};
use gureum_runtime::{
    attached_volumes, existing_instance_dirs, process_start_time, ContainerSpec, ContainerState,
    DriverOptions, InjectFile, RelayCommand, RuncDriver,
};

const ROOTFS_CACHE: &str = "/var/cache/gureum-test/rootfs";
const BOOT_TIMEOUT: Duration = Duration::from_secs(60);

/// One container test at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

fn have(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// The rootfs to boot, or why the tests cannot run.
fn environment() -> Result<PathBuf, String> {
    if !nix::unistd::geteuid().is_root() {
        return Err("not running as root".into());
    }
    if !have("runc") {
        return Err("runc is not installed".into());
    }
    if let Some(p) = std::env::var_os("GUREUM_TEST_ROOTFS") {
        let p = PathBuf::from(p);
        return if p.join("sbin/init").exists() {
            Ok(p)
        } else {
            Err(format!(
                "GUREUM_TEST_ROOTFS={} has no /sbin/init",
                p.display()
            ))
        };
    }
    static BUILD: Mutex<()> = Mutex::new(());
    let _g = BUILD.lock().unwrap_or_else(|p| p.into_inner());
    let cache = PathBuf::from(ROOTFS_CACHE);
    if cache.join("sbin/init").exists() {
        return Ok(cache);
    }
    if !Path::new("/usr/bin/mmdebstrap").exists() {
        return Err(format!(
            "{ROOTFS_CACHE} is missing and mmdebstrap is not installed"
        ));
    }
    let tmp = PathBuf::from(format!("{ROOTFS_CACHE}.tmp"));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(cache.parent().unwrap()).map_err(|e| e.to_string())?;
    eprintln!("building the test rootfs with mmdebstrap (once) ...");
    let out = Command::new("mmdebstrap")
        .args([
            "--variant=apt",
            "--include=systemd,systemd-sysv,openssh-server,sudo,iproute2,procps,e2fsprogs",
            "bookworm",
        ])
        .arg(&tmp)
        .arg("http://deb.debian.org/debian")
        .output()
        .map_err(|e| format!("mmdebstrap: {e}"))?;
    if !out.status.success() {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(format!(
            "mmdebstrap failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    std::fs::rename(&tmp, &cache).map_err(|e| e.to_string())?;
    Ok(cache)
}

macro_rules! require_env {
    () => {
        match environment() {
            Ok(rootfs) => rootfs,
            Err(why) => {
                println!("skipped: {why}");
                return;
            }
        }
    };
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn random_id() -> String {
    let mut bytes = [0u8; 8];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))
        .unwrap();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("i-{}", &hex[..17.min(hex.len())])
}

/// A state directory of the test's own; removed, with every instance in it, on drop.
struct Fixture {
    state_dir: PathBuf,
    ids: Vec<String>,
    netns: Vec<String>,
}

impl Fixture {
    fn new(name: &str) -> Fixture {
        let state_dir = PathBuf::from(format!("/tmp/gureum-rt-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&state_dir);
        Fixture {
            state_dir,
            ids: Vec::new(),
            netns: Vec::new(),
        }
    }

    fn driver(&self) -> RuncDriver {
        let mut opts = DriverOptions::new(&self.state_dir);
        opts.console_relay = Some(RelayCommand {
            program: env!("CARGO_BIN_EXE_gureum-console-relay").into(),
            args: vec![],
        });
        opts.mount_daemon = Some(RelayCommand {
            program: env!("CARGO_BIN_EXE_gureum-mountd").into(),
            args: vec![],
        });
        RuncDriver::with_options(opts).expect("driver")
    }

    fn spec(&mut self, rootfs: &Path) -> ContainerSpec {
        let id = random_id();
        self.ids.push(id.clone());
        ContainerSpec {
            id,
            image_rootfs: rootfs.to_path_buf(),
            volume_gib: 8,
            hostname: "ip-172-31-5-10".into(),
            vcpus: 1,
            memory_mib: 512,
            pids_max: 1024,
            netns: None,
            inject: vec![],
            warm: false,
        }
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let state_dir = self.state_dir.clone();
        let ids = self.ids.clone();
        // Drop may run inside a test's runtime: destroy on a thread with its own.
        let _ = std::thread::spawn(move || {
            if !state_dir.exists() {
                return;
            }
            let rt = runtime();
            if let Ok(d) = RuncDriver::new(&state_dir) {
                for id in ids {
                    if let Err(e) = rt.block_on(d.destroy(&id)) {
                        eprintln!("cleanup of {id} failed: {e}");
                    }
                }
            }
            let _ = std::fs::remove_dir_all(&state_dir);
        })
        .join();
        for ns in &self.netns {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

/// Runs a command in the guest; returns (success, stdout, stderr).
async fn exec(d: &RuncDriver, id: &str, argv: &[&str]) -> (bool, String, String) {
    let out = d.exec(id, argv).await.expect("runc exec");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
        String::from_utf8_lossy(&out.stderr).trim().to_string(),
    )
}

async fn exec_ok(d: &RuncDriver, id: &str, argv: &[&str]) -> String {
    let (ok, out, err) = exec(d, id, argv).await;
    assert!(ok, "{argv:?} failed: {out} {err}");
    out
}

/// Waits until systemd reports running or degraded; returns the time it took.
async fn wait_booted(d: &RuncDriver, id: &str) -> Duration {
    let started = Instant::now();
    loop {
        if let Ok(out) = d.exec(id, &["systemctl", "is-system-running"]).await {
            let s = String::from_utf8_lossy(&out.stdout).trim().to_string();
            if s == "running" {
                return started.elapsed();
            }
            if s == "degraded" {
                let failed = exec(d, id, &["systemctl", "--failed", "--no-legend"]).await;
                println!("note: {id} is degraded: {}", failed.1);
                return started.elapsed();
            }
        }
        assert!(
            started.elapsed() < BOOT_TIMEOUT,
            "{id} did not boot within {BOOT_TIMEOUT:?}; console: {}",
            String::from_utf8_lossy(&d.console_output(id, 4096).unwrap_or_default())
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Asserts that nothing of the instance is left on the host.
async fn assert_no_traces(d: &RuncDriver, id: &str) {
    assert_eq!(d.state(id).await.unwrap(), ContainerState::Absent);
    assert!(!d.list().await.unwrap().contains(&id.to_string()));
    let runc_list = Command::new("runc")
        .arg("--root")
        .arg(d.runc_root())
        .arg("list")
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&runc_list.stdout).contains(id));
    let dir = d.instance_dir(id);
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(dir.to_str().unwrap()),
        "a mount is left under {}",
        dir.display()
    );
    let loops = Command::new("losetup").arg("-a").output().unwrap();
    assert!(
        !String::from_utf8_lossy(&loops.stdout).contains(dir.to_str().unwrap()),
        "a loop device is left"
    );
    let cgroups = existing_instance_dirs(d.cgroup_parent(), id).unwrap();
    assert!(cgroups.is_empty(), "cgroup dirs left: {cgroups:?}");
    assert!(!dir.exists(), "{} is left", dir.display());
    // The console relay notices and exits on its own.
    let t = Instant::now();
    while let Some(pid) = process_mentioning(dir.to_str().unwrap()) {
        assert!(
            t.elapsed() < Duration::from_secs(3),
            "process {pid} still refers to {}",
            dir.display()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A second id derived from a test's id (destroyed by the test itself).
fn fx_extra_id(id: &str) -> String {
    format!("{id}-b")
}

/// A process whose command line contains `needle`.
fn process_mentioning(needle: &str) -> Option<u32> {
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
        String::from_utf8_lossy(&cmdline)
            .contains(needle)
            .then_some(pid)
    })
}

fn cgroup_file(d: &RuncDriver, id: &str, v1: &str, v2: &str) -> Option<String> {
    let p = match d.cgroup_mode() {
        gureum_runtime::CgroupMode::V2 => {
            PathBuf::from(format!("/sys/fs/cgroup/{}/{id}/{v2}", d.cgroup_parent()))
        }
        _ => PathBuf::from(format!(
            "/sys/fs/cgroup/{v1}",
            v1 = v1.replace("{}", &format!("{}/{id}", d.cgroup_parent()))
        )),
    };
    std::fs::read_to_string(p)
        .ok()
        .map(|s| s.trim().to_string())
}

#[test]
fn lifecycle_of_a_systemd_instance() {
    let rootfs = require_env!();
    let _serial = serial();
    let mut fx = Fixture::new("lifecycle");
    let mut spec = fx.spec(&rootfs);
    spec.inject = vec![
        InjectFile {
            path: "/root/injected.txt".into(),
            contents: b"hello from gureum\n".to_vec(),
            mode: 0o640,
            uid: 0,
            gid: 0,
        },
        InjectFile {
            path: "/home/tester/.ssh/authorized_keys".into(),
            contents: b"ssh-ed25519 AAAA test\n".to_vec(),
            mode: 0o600,
            uid: 1000,
            gid: 1000,
        },
    ];
    let id = spec.id.clone();
    let d = fx.driver();
    runtime().block_on(async {
        let t = Instant::now();
        d.prepare(&spec).await.unwrap();
        let prepare_ms = t.elapsed().as_secs_f64() * 1e3;
        d.prepare(&spec).await.unwrap(); // idempotent
        assert_eq!(d.state(&id).await.unwrap(), ContainerState::Stopped);

        let t = Instant::now();
        d.start(&spec).await.unwrap();
        let start_ms = t.elapsed().as_secs_f64() * 1e3;
        let boot = wait_booted(&d, &id).await;
        let boot_ms = start_ms + boot.as_secs_f64() * 1e3;
        assert_eq!(d.state(&id).await.unwrap(), ContainerState::Running);
        d.start(&spec).await.unwrap(); // idempotent: stays running
        let pid1 = d.init_pid(&id).await.unwrap().unwrap();
        let pid1_start = process_start_time(pid1).unwrap();
        let analyze = exec(&d, &id, &["systemd-analyze", "time"]).await;
        println!("systemd-analyze time (first boot): {}", analyze.1);
        let blame = exec(&d, &id, &["systemd-analyze", "blame"]).await.1;
        println!(
            "systemd-analyze blame (first boot, top 5):\n{}",
            blame.lines().take(5).collect::<Vec<_>>().join("\n")
        );

        // The console shows systemd's boot and the console getty's login prompt.
        let t = Instant::now();
        let console = loop {
            let c = String::from_utf8_lossy(&d.console_output(&id, 64 * 1024).unwrap()).into_owned();
            if c.contains("login:") || t.elapsed() > Duration::from_secs(10) {
                break c;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert!(console.contains("Welcome to"), "console: {console}");
        assert!(console.contains("Started"), "console: {console}");
        assert!(console.contains("ip-172-31-5-10 login:"), "console: {console}");
        assert_eq!(d.console_output(&id, 10).unwrap().len(), 10);
        exec_ok(&d, &id, &["sh", "-c", "echo hello-console > /dev/console"]).await;

        // Identity, limits as the guest sees them.
        assert_eq!(exec_ok(&d, &id, &["hostname"]).await, "ip-172-31-5-10");
        assert_eq!(exec_ok(&d, &id, &["cat", "/etc/hostname"]).await, "ip-172-31-5-10");
        assert_eq!(exec_ok(&d, &id, &["nproc"]).await, "1");
        let free = exec_ok(&d, &id, &["free", "-m"]).await;
        let total: i64 = free
            .lines()
            .find(|l| l.starts_with("Mem:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("free -m: {free}"));
        assert!((total - 512).abs() <= 4, "free -m total {total}, want ~512");
        let size: f64 = exec_ok(&d, &id, &["df", "-B1", "--output=size", "/"])
            .await
            .lines()
            .last()
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let gib = size / (1u64 << 30) as f64;
        assert!((7.5..=8.0).contains(&gib), "df / shows {gib:.2} GiB, want ~8");
        let df_h = exec_ok(&d, &id, &["df", "-h", "/"]).await;
        println!("df -h / (8 GiB volume):\n{df_h}");

        // Injected files, with their modes and owners.
        assert_eq!(
            exec_ok(&d, &id, &["cat", "/root/injected.txt"]).await,
            "hello from gureum"
        );
        assert_eq!(
            exec_ok(&d, &id, &["stat", "-c", "%a %u %g", "/root/injected.txt"]).await,
            "640 0 0"
        );
        assert_eq!(
            exec_ok(
                &d,
                &id,
                &["stat", "-c", "%a %u", "/home/tester/.ssh/authorized_keys", "/home/tester/.ssh"]
            )
            .await,
            "600 1000\n755 1000"
        );

        // No host devices.
        let blocks = exec_ok(&d, &id, &["find", "/dev", "-type", "b"]).await;
        assert!(blocks.is_empty(), "block devices in /dev: {blocks}");
        let devs = exec_ok(&d, &id, &["ls", "/dev"]).await;
        for bad in ["sda", "vda", "loop0", "nvme0", "mem", "kmsg"] {
            assert!(!devs.lines().any(|l| l == bad), "/dev/{bad} visible: {devs}");
        }

        // No host path in the guest's mount table: the overlay's layers (the image's rootfs,
        // the volume in the state directory) are named by descriptor.
        let mountinfo = exec_ok(&d, &id, &["cat", "/proc/self/mountinfo"]).await;
        for host_path in [fx.state_dir.as_path(), rootfs.as_path()] {
            let host_path = host_path.to_str().unwrap();
            assert!(
                !mountinfo.contains(host_path),
                "the guest's mountinfo names {host_path}:\n{mountinfo}"
            );
        }
        assert!(mountinfo.contains("lowerdir=/proc/self/fd/"), "{mountinfo}");

        // Seccomp: denied syscalls fail with EPERM.
        let (ok, _, err) = exec(&d, &id, &["dmesg"]).await;
        assert!(!ok && err.contains("Operation not permitted"), "dmesg: {err}");
        // swapoff(2) on a non-swap file fails with EINVAL for root; EPERM ("Not superuser"
        // in util-linux's words) can only come from the filter.
        let (ok, _, err) = exec(&d, &id, &["swapoff", "/dev/null"]).await;
        assert!(
            !ok && (err.contains("Not superuser") || err.contains("Operation not permitted")),
            "swapoff: {err}"
        );
        // ... and dropped capabilities: the clock, and (no CAP_SYS_ADMIN) the classic escapes
        // through a fresh procfs or a read-write /proc/sys or cgroup.
        let (ok, _, _) = exec(&d, &id, &["date", "-s", "2001-01-01"]).await;
        assert!(!ok, "date -s must fail");
        for argv in [
            &["mount", "-t", "proc", "proc", "/mnt"][..],
            &["mount", "-o", "remount,rw", "/proc/sys/kernel"],
            &["mount", "-o", "remount,rw", "/sys/fs/cgroup/memory"],
            &["sh", "-c", "echo 1 > /proc/sys/kernel/sysrq"],
        ] {
            let (ok, _, _) = exec(&d, &id, argv).await;
            assert!(!ok, "{argv:?} must fail");
        }
        // The guest owns its network namespace: net sysctls and links.
        exec_ok(&d, &id, &["sysctl", "-w", "net.ipv4.ip_forward=1"]).await;
        exec_ok(&d, &id, &["ip", "link", "add", "v0", "type", "veth", "peer", "name", "v1"]).await;
        // systemd runs a sandboxed unit (the sandboxing it cannot set up is skipped).
        exec_ok(
            &d,
            &id,
            &[
                "sh",
                "-c",
                "printf '[Service]\nType=oneshot\nPrivateTmp=yes\nProtectSystem=strict\n\
                 ExecStart=/bin/true\n' > /etc/systemd/system/sbx.service \
                 && systemctl daemon-reload && systemctl start sbx.service",
            ],
        )
        .await;
        // sudo works (noNewPrivileges is off).
        exec_ok(&d, &id, &["useradd", "-m", "-u", "1001", "alice"]).await;
        exec_ok(&d, &id, &["sh", "-c", "echo 'alice ALL=(ALL) NOPASSWD:ALL' > /etc/sudoers.d/alice"]).await;
        assert_eq!(
            exec_ok(&d, &id, &["su", "alice", "-c", "sudo -n id -u"]).await,
            "0"
        );

        // Graceful stop keeps the volume; the next start sees the file.
        exec_ok(&d, &id, &["sh", "-c", "echo persisted > /root/persist.txt && sync"]).await;
        let t = Instant::now();
        d.stop(&id, Duration::from_secs(20), false).await.unwrap();
        let stop_ms = t.elapsed().as_secs_f64() * 1e3;
        assert_eq!(d.state(&id).await.unwrap(), ContainerState::Stopped);
        d.stop(&id, Duration::from_secs(1), false).await.unwrap(); // idempotent
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(!mounts.contains(d.instance_dir(&id).to_str().unwrap()));
        assert!(existing_instance_dirs(d.cgroup_parent(), &id).unwrap().is_empty());
        let t = Instant::now();
        d.start(&spec).await.unwrap();
        let reboot_ms = t.elapsed().as_millis() + wait_booted(&d, &id).await.as_millis();
        println!("timing: second_boot_to_running_ms={reboot_ms}");
        println!(
            "systemd-analyze time (second boot): {}",
            exec(&d, &id, &["systemd-analyze", "time"]).await.1
        );
        assert_eq!(
            exec_ok(&d, &id, &["cat", "/root/persist.txt"]).await,
            "persisted"
        );
        // The console log is appended across restarts.
        let console = String::from_utf8_lossy(&d.console_output(&id, 1 << 20).unwrap()).into_owned();
        assert!(console.contains("hello-console"), "console lost across restart");
        assert!(console.matches("Welcome to").count() >= 2, "second boot not logged");
        let pid1 = d.init_pid(&id).await.unwrap().unwrap();
        let pid1_start = process_start_time(pid1).unwrap().max(pid1_start);

        // A new driver (a gureum restart) sees it running, without restarting it.
        let d2 = RuncDriver::new(&fx.state_dir).unwrap();
        assert_eq!(d2.state(&id).await.unwrap(), ContainerState::Running);
        assert!(d2.list().await.unwrap().contains(&id));
        d2.start(&spec).await.unwrap();
        let pid1_again = d2.init_pid(&id).await.unwrap().unwrap();
        assert_eq!(pid1_again, pid1);
        assert_eq!(process_start_time(pid1_again).unwrap(), pid1_start);
        assert_eq!(exec_ok(&d2, &id, &["cat", "/root/persist.txt"]).await, "persisted");

        // Killed from outside: Stopped.
        let st = Command::new("runc")
            .arg("--root")
            .arg(d.runc_root())
            .args(["kill", &id, "KILL"])
            .status()
            .unwrap();
        assert!(st.success());
        let t = Instant::now();
        while d.state(&id).await.unwrap() != ContainerState::Stopped {
            assert!(t.elapsed() < Duration::from_secs(10), "still running after KILL");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // It starts again from there.
        d.start(&spec).await.unwrap();
        wait_booted(&d, &id).await;
        // A missing AMI is a clear error, and the instance is still fine afterwards.
        let mut broken = spec.clone();
        broken.id = fx_extra_id(&id);
        broken.image_rootfs = "/nonexistent/rootfs".into();
        let err = d.start(&broken).await.unwrap_err();
        assert!(err.to_string().contains("is not a directory"), "{err}");
        d.destroy(&broken.id).await.unwrap();
        assert_no_traces(&d, &broken.id).await;
        // A paused (frozen) guest still stops.
        let st = Command::new("runc")
            .arg("--root")
            .arg(d.runc_root())
            .args(["pause", &id])
            .status()
            .unwrap();
        assert!(st.success());
        assert_eq!(d.state(&id).await.unwrap(), ContainerState::Running);
        d.stop(&id, Duration::from_secs(10), false).await.unwrap();
        assert_eq!(d.state(&id).await.unwrap(), ContainerState::Stopped);
        d.start(&spec).await.unwrap();

        let t = Instant::now();
        d.destroy(&id).await.unwrap();
        let destroy_ms = t.elapsed().as_secs_f64() * 1e3;
        assert_no_traces(&d, &id).await;
        d.destroy(&id).await.unwrap(); // idempotent
        println!(
            "timing: prepare_ms={prepare_ms:.1} start_ms={start_ms:.0} boot_to_running_ms={boot_ms:.0} \
             stop_graceful_ms={stop_ms:.0} destroy_ms={destroy_ms:.0}"
        );
    });
}

#[test]
fn limits_resize_pids_enospc_and_netns() {
    let rootfs = require_env!();
    let _serial = serial();
    let mut fx = Fixture::new("limits");
    let mut spec = fx.spec(&rootfs);
    spec.vcpus = 2;
    spec.memory_mib = 256;
    spec.volume_gib = 2;
    spec.pids_max = 64;
    // A network namespace made beforehand, as the network driver would.
    let ns = format!("gureum-test-{}", &spec.id[2..10]);
    assert!(Command::new("ip")
        .args(["netns", "add", &ns])
        .status()
        .unwrap()
        .success());
    fx.netns.push(ns.clone());
    assert!(Command::new("ip")
        .args([
            "-n",
            &ns,
            "link",
            "add",
            "gureumtest0",
            "type",
            "veth",
            "peer",
            "name",
            "gureumtest1"
        ])
        .status()
        .unwrap()
        .success());
    spec.netns = Some(PathBuf::from(format!("/run/netns/{ns}")));
    let id = spec.id.clone();
    let d = fx.driver();
    runtime().block_on(async {
        d.start(&spec).await.unwrap();
        let boot = wait_booted(&d, &id).await;
        println!("timing: boot_2vcpu_ms={}", boot.as_millis());

        let host_cpus = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        assert_eq!(
            exec_ok(&d, &id, &["nproc"]).await,
            host_cpus.min(2).to_string()
        );
        let links = exec_ok(&d, &id, &["ip", "-o", "link"]).await;
        assert!(links.contains("gureumtest0"), "netns not joined: {links}");

        // Host-side limits.
        if d.cgroup_mode() != gureum_runtime::CgroupMode::V2 {
            assert_eq!(
                cgroup_file(&d, &id, "memory/{}/memory.limit_in_bytes", "").as_deref(),
                Some("268435456")
            );
            assert_eq!(
                cgroup_file(&d, &id, "cpu/{}/cpu.cfs_quota_us", "").as_deref(),
                Some("200000")
            );
            assert_eq!(
                cgroup_file(&d, &id, "pids/{}/pids.max", "").as_deref(),
                Some("64")
            );
        } else {
            assert_eq!(
                cgroup_file(&d, &id, "", "memory.max").as_deref(),
                Some("268435456")
            );
            assert_eq!(cgroup_file(&d, &id, "", "pids.max").as_deref(), Some("64"));
        }

        // All instances together hold at most three quarters of the host's process ids.
        let pid_max: u64 = std::fs::read_to_string("/proc/sys/kernel/pid_max")
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let parent = match d.cgroup_mode() {
            gureum_runtime::CgroupMode::V2 => format!("/sys/fs/cgroup/{}", d.cgroup_parent()),
            _ => format!("/sys/fs/cgroup/pids/{}", d.cgroup_parent()),
        };
        let parent_max: u64 = std::fs::read_to_string(format!("{parent}/pids.max"))
            .unwrap()
            .trim()
            .parse()
            .expect("the instances' parent cgroup has a pids limit");
        assert!(parent_max <= pid_max / 4 * 3, "{parent_max} of {pid_max}");

        // 2 GiB volume: df shows it, and writing past it fails with ENOSPC.
        let size: f64 = exec_ok(&d, &id, &["df", "-B1", "--output=size", "/"])
            .await
            .lines()
            .last()
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let gib = size / (1u64 << 30) as f64;
        assert!(
            (1.8..=2.0).contains(&gib),
            "df / shows {gib:.2} GiB, want ~2"
        );
        let (ok, _, err) = exec(
            &d,
            &id,
            &[
                "dd",
                "if=/dev/zero",
                "of=/root/fill",
                "bs=1M",
                "count=2600",
                "status=none",
            ],
        )
        .await;
        assert!(!ok && err.contains("No space left on device"), "dd: {err}");
        exec_ok(&d, &id, &["rm", "-f", "/root/fill"]).await;

        // pids: a bounded fork loop hits the limit instead of the host's.
        let (ok, out, err) = exec(
            &d,
            &id,
            &[
                "sh",
                "-c",
                "i=0; while [ $i -lt 200 ]; do sleep 30 & i=$((i+1)); done; echo spawned $i",
            ],
        )
        .await;
        assert!(
            !ok || !out.contains("spawned 200"),
            "200 processes fit under pids.max=64: {out} {err}"
        );
        let current = cgroup_file(&d, &id, "pids/{}/pids.current", "pids.current")
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap();
        assert!(current <= 64, "pids.current {current} > 64");
        let _ = exec(&d, &id, &["pkill", "-x", "sleep"]).await;

        // Resize: stop (forced, measured), start with new limits.
        let t = Instant::now();
        d.stop(&id, Duration::from_secs(5), true).await.unwrap();
        println!("timing: stop_force_ms={}", t.elapsed().as_millis());
        spec.vcpus = 1;
        spec.memory_mib = 384;
        d.start(&spec).await.unwrap();
        wait_booted(&d, &id).await;
        assert_eq!(exec_ok(&d, &id, &["nproc"]).await, "1");
        let free = exec_ok(&d, &id, &["free", "-m"]).await;
        assert!(free.contains(" 384 "), "free -m after resize: {free}");

        // Reboot: a new PID 1, same volume.
        let before = d.init_pid(&id).await.unwrap().unwrap();
        let before_start = process_start_time(before).unwrap();
        exec_ok(&d, &id, &["sh", "-c", "echo kept > /root/kept && sync"]).await;
        let t = Instant::now();
        d.reboot(&spec).await.unwrap();
        wait_booted(&d, &id).await;
        println!("timing: reboot_to_running_ms={}", t.elapsed().as_millis());
        let after = d.init_pid(&id).await.unwrap().unwrap();
        assert!(after != before || process_start_time(after).unwrap() != before_start);
        assert_eq!(exec_ok(&d, &id, &["cat", "/root/kept"]).await, "kept");

        d.destroy(&id).await.unwrap();
        assert_no_traces(&d, &id).await;
    });
}

#[test]
fn prepare_is_fast() {
    let rootfs = require_env!();
    let _serial = serial();
    let mut fx = Fixture::new("prepare");
    let d = fx.driver();
    runtime().block_on(async {
        let mut times = Vec::new();
        let mut specs = Vec::new();
        for _ in 0..7 {
            let spec = fx.spec(&rootfs);
            let t = Instant::now();
            d.prepare(&spec).await.unwrap();
            times.push(t.elapsed().as_secs_f64() * 1e3);
            specs.push(spec);
        }
        // A non-default size makes its template once; later volumes of that size are fast.
        let mut small = fx.spec(&rootfs);
        small.volume_gib = 2;
        let t = Instant::now();
        d.prepare(&small).await.unwrap();
        let first_2g = t.elapsed().as_secs_f64() * 1e3;
        let mut small2 = fx.spec(&rootfs);
        small2.volume_gib = 2;
        let t = Instant::now();
        d.prepare(&small2).await.unwrap();
        let second_2g = t.elapsed().as_secs_f64() * 1e3;
        let times_in_order = times.clone();
        times.sort_by(|a, b| a.partial_cmp(b).unwrap());
        println!(
            "timing: prepare_ms first={:.1} median={:.1} max={:.1} (8 GiB); 2 GiB first={first_2g:.1} then={second_2g:.1}",
            times_in_order[0],
            times[times.len() / 2],
            times[times.len() - 1]
        );
        assert!(times[times.len() / 2] < 50.0, "prepare is slow: {times:?}");
        // The volume is sparse: a few MiB on disk for 8 GiB.
        let img = d.instance_dir(&specs[0].id).join("volume.img");
        let meta = std::fs::metadata(&img).unwrap();
        assert_eq!(meta.len(), 8 << 30);
        assert!(std::os::unix::fs::MetadataExt::blocks(&meta) * 512 < 64 << 20);
        for s in specs.iter().chain([&small, &small2]) {
            d.destroy(&s.id).await.unwrap();
            assert_no_traces(&d, &s.id).await;
        }
    });
}

#[test]
fn absent_instances() {
    if !nix::unistd::geteuid().is_root() || !have("runc") {
        println!("skipped: needs root and runc");
        return;
    }
    let fx = Fixture::new("absent");
    let d = fx.driver();
    runtime().block_on(async {
        let id = "i-00000000000000000";
        assert_eq!(d.state(id).await.unwrap(), ContainerState::Absent);
        d.stop(id, Duration::from_secs(1), false).await.unwrap();
        d.destroy(id).await.unwrap();
        assert!(matches!(
            d.console_output(id, 100),
            Err(gureum_runtime::RuntimeError::NotFound(_))
        ));
        assert!(d.list().await.unwrap().is_empty());
        assert!(d.state("../etc").await.is_err());
    });
}

/// A warm guest: booted before its instance exists, with a stand-in for the guest agent that
/// waits on the FIFO; a later start of the same id without `warm` hands it the instance
/// (limits, hostname, files, the FIFO's line) without booting it again.
#[test]
fn a_warm_guest_is_handed_its_instance() {
    let rootfs = require_env!();
    let _serial = serial();
    let mut fx = Fixture::new("warm");
    let mut spec = fx.spec(&rootfs);
    let waiter = "[Unit]\nDescription=stands in for gureum-init\n[Service]\nType=oneshot\n\
        ExecStart=/bin/sh -c 'mkfifo /var/lib/gureum/claim && exec 3<>/var/lib/gureum/claim && \
        read x <&3 && cat /var/lib/gureum/instance.env > /var/lib/gureum/woken'\n";
    let file = |path: &str, contents: &str| InjectFile {
        path: path.into(),
        contents: contents.as_bytes().to_vec(),
        mode: 0o644,
        uid: 0,
        gid: 0,
    };
    spec.warm = true;
    spec.hostname = "localhost".into();
    spec.inject = vec![
        file("/etc/systemd/system/waiter.service", waiter),
        file(
            "/etc/systemd/system/multi-user.target.d/waiter.conf",
            "[Unit]\nWants=waiter.service\n",
        ),
        file("/var/lib/gureum/warm", "1\n"),
    ];
    let id = spec.id.clone();
    let d = fx.driver();
    runtime().block_on(async {
        d.start(&spec).await.unwrap();
        let pid = d.init_pid(&id).await.unwrap().expect("running");
        let t = Instant::now();
        loop {
            let w = d.warm_guest(&id).await.unwrap().expect("a warm guest");
            assert_eq!(w.pid, pid);
            if w.waiting {
                break;
            }
            assert!(t.elapsed() < BOOT_TIMEOUT, "the waiter never waited");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }

        // The hand-over: another type, the instance's hostname and files.
        let mut instance = spec.clone();
        instance.warm = false;
        instance.memory_mib = 1024;
        instance.pids_max = 2048;
        instance.hostname = "ip-172-31-9-9".into();
        instance.inject = vec![file("/var/lib/gureum/instance.env", "INSTANCE_ID='x'\n")];
        d.start(&instance).await.unwrap();
        assert_eq!(
            d.init_pid(&id).await.unwrap(),
            Some(pid),
            "not booted again"
        );
        assert_eq!(d.warm_guest(&id).await.unwrap(), None, "no longer warm");
        assert_eq!(exec_ok(&d, &id, &["hostname"]).await, "ip-172-31-9-9");
        assert_eq!(
            exec_ok(&d, &id, &["cat", "/etc/hostname"]).await,
            "ip-172-31-9-9"
        );
        let limit = cgroup_file(&d, &id, "memory/{}/memory.limit_in_bytes", "memory.max");
        assert_eq!(limit.as_deref(), Some("1073741824"));
        let pids = cgroup_file(&d, &id, "pids/{}/pids.max", "pids.max");
        assert_eq!(pids.as_deref(), Some("2048"));
        // The memory-sized tmpfs mounts follow: /dev/shm is half of 1 GiB, not of 512 MiB.
        let shm = exec_ok(&d, &id, &["df", "-m", "--output=size", "/dev/shm"]).await;
        assert_eq!(shm.lines().last().map(str::trim), Some("512"), "{shm}");
        let t = Instant::now();
        while exec(&d, &id, &["cat", "/var/lib/gureum/woken"]).await.1 != "INSTANCE_ID='x'" {
            assert!(
                t.elapsed() < Duration::from_secs(5),
                "the waiter was not woken"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // Starting it again is a no-op, as for any running instance.
        d.start(&instance).await.unwrap();
        assert_eq!(d.init_pid(&id).await.unwrap(), Some(pid));
        d.destroy(&id).await.unwrap();
        assert_no_traces(&d, &id).await;
    });
}

/// Runs a host command that must succeed; returns its stdout.
fn host(program: &str, args: &[&str]) -> String {
    let out = Command::new(program).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A volume attached to a running instance the way the attach code does it: a loop device
/// over a sparse file, its node in the guest's /dev, allowed in the device cgroup, recorded
/// in `<instance dir>/volumes.json` (when `record`). Detached (loop device freed) on drop.
struct TestVolume {
    file: PathBuf,
    loop_dev: String,
}

impl TestVolume {
    fn attach(d: &RuncDriver, id: &str, pid: i32, node: &str, record: bool) -> TestVolume {
        use std::os::unix::fs::MetadataExt;
        let file = d
            .instance_dir(id)
            .with_extension(node.replace('/', "-") + ".img");
        std::fs::File::create(&file)
            .unwrap()
            .set_len(64 << 20)
            .unwrap();
        let loop_dev = host("losetup", &["--find", "--show", file.to_str().unwrap()]);
        let rdev = std::fs::metadata(&loop_dev).unwrap().rdev();
        let (major, minor) = (
            nix::sys::stat::major(rdev) as u32,
            nix::sys::stat::minor(rdev) as u32,
        );
        let v = TestVolume { file, loop_dev };
        let in_guest = format!("/proc/{pid}/root{node}");
        host(
            "mknod",
            &[&in_guest, "b", &major.to_string(), &minor.to_string()],
        );
        let allow = format!(
            "/sys/fs/cgroup/devices/{}/{id}/devices.allow",
            d.cgroup_parent()
        );
        std::fs::write(&allow, format!("b {major}:{minor} rwm")).unwrap();
        if record {
            let path = d.instance_dir(id).join("volumes.json");
            let mut list: Vec<serde_json::Value> = std::fs::read(&path)
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
                .unwrap_or_default();
            list.push(serde_json::json!({
                "volume_id": format!("vol-{minor:017}"),
                "device": "/dev/sdf",
                "node": node,
                "loop": v.loop_dev,
                "major": major,
                "minor": minor,
            }));
            std::fs::write(&path, serde_json::to_vec(&list).unwrap()).unwrap();
        }
        v
    }
}

impl Drop for TestVolume {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.loop_dev).output();
        let _ = Command::new("losetup")
            .args(["-d", &self.loop_dev])
            .output();
        let _ = std::fs::remove_file(&self.file);
    }
}

/// Gives the guest mkfs.ext4 from the host (same Debian release) when its image lacks it.
async fn ensure_guest_mkfs(d: &RuncDriver, id: &str) {
    if exec(d, id, &["sh", "-c", "command -v mkfs.ext4"]).await.0 {
        return;
    }
    let root = d.instance_dir(id).join("rootfs");
    let copy = |from: &str, to: &str| {
        std::fs::copy(from, root.join(to.trim_start_matches('/'))).unwrap();
    };
    copy("/sbin/mke2fs", "/usr/sbin/mkfs.ext4");
    for lib in ["libext2fs.so.2", "libe2p.so.2", "libcom_err.so.2"] {
        let path = format!("/lib/x86_64-linux-gnu/{lib}");
        if !root.join(path.trim_start_matches('/')).exists() {
            let real = std::fs::canonicalize(&path).unwrap();
            copy(real.to_str().unwrap(), &path);
        }
    }
}

/// Runs a shell command as a oneshot service of the guest's systemd, so under PID 1's seccomp
/// filter (what an SSH session gets) rather than the one runc gives each exec; returns
/// (success, output).
async fn via_init(d: &RuncDriver, id: &str, cmd: &str) -> (bool, String) {
    let unit =
        format!("[Service]\nType=oneshot\nExecStart=/bin/sh -c '{cmd} >/run/via-init.out 2>&1'\n");
    let write = format!("cat > /run/systemd/system/via-init.service <<'EOF'\n{unit}EOF");
    exec_ok(d, id, &["sh", "-c", &write]).await;
    exec_ok(d, id, &["systemctl", "daemon-reload"]).await;
    let ok = exec(d, id, &["systemctl", "start", "via-init"]).await.0;
    (ok, exec(d, id, &["cat", "/run/via-init.out"]).await.1)
}

/// The pid of the mount daemon serving `state_dir`.
fn mountd_pid(state_dir: &Path) -> Option<u32> {
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
        let cmdline = String::from_utf8_lossy(&cmdline);
        (cmdline.contains("gureum-mountd") && cmdline.contains(state_dir.to_str()?)).then_some(pid)
    })
}

#[test]
fn a_guest_mounts_its_attached_volume() {
    let rootfs = require_env!();
    let on_path = |p: &str| {
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
            .any(|d| d.join(p).is_file())
    };
    if !on_path("losetup") || !on_path("mkfs.ext4") {
        println!("skipped: losetup or mkfs.ext4 missing on the host");
        return;
    }
    if !Path::new("/sys/fs/cgroup/devices").is_dir() {
        println!("skipped: no v1 devices cgroup to allow the volume in (cgroup v2 host)");
        return;
    }
    let _serial = serial();
    let mut fx = Fixture::new("mountd");
    let spec = fx.spec(&rootfs);
    let id = spec.id.clone();
    let d = fx.driver();
    if let Err(why) = d.mount_interception() {
        println!("skipped: no mount interception on this host: {why}");
        return;
    }
    runtime().block_on(async {
        d.start(&spec).await.unwrap();
        wait_booted(&d, &id).await;
        let pid = d.init_pid(&id).await.unwrap().unwrap();
        ensure_guest_mkfs(&d, &id).await;
        let vol = TestVolume::attach(&d, &id, pid, "/dev/xvdf", true);
        let other = TestVolume::attach(&d, &id, pid, "/dev/xvdg", false);
        host("mkfs.ext4", &["-q", &other.loop_dev]);

        // As on EC2.
        exec_ok(&d, &id, &["mkfs.ext4", "-q", "/dev/xvdf"]).await;
        exec_ok(&d, &id, &["mkdir", "/data"]).await;
        exec_ok(&d, &id, &["mount", "/dev/xvdf", "/data"]).await;
        let shown = exec_ok(&d, &id, &["findmnt", "-n", "-r", "-o", "SOURCE,FSTYPE,OPTIONS", "/data"]).await;
        assert!(shown.starts_with("/dev/xvdf ext4 rw,nodev"), "findmnt: {shown}");
        exec_ok(&d, &id, &["sh", "-c", "echo hello-volume > /data/f && sync"]).await;
        let df = exec_ok(&d, &id, &["df", "-h", "/data"]).await;
        println!("df -h /data in the guest:\n{df}");
        exec_ok(&d, &id, &["umount", "/data"]).await;
        assert!(!exec(&d, &id, &["test", "-e", "/data/f"]).await.0);

        // Through systemd (PID 1's filter: what an SSH session uses), by device name.
        let (ok, out) = via_init(&d, &id, "mount -o ro,noexec /dev/xvdf /data").await;
        assert!(ok, "mount through PID 1's filter: {out}");
        let shown = exec_ok(&d, &id, &["findmnt", "-n", "-r", "-o", "OPTIONS", "/data"]).await;
        assert!(shown.starts_with("ro,nodev,noexec"), "findmnt: {shown}");
        exec_ok(&d, &id, &["umount", "/dev/xvdf"]).await;

        // Everything else fails as without interception.
        let denied = [
            vec!["mount", "-t", "tmpfs", "none", "/mnt"],
            vec!["mount", "-t", "proc", "proc", "/mnt"],
            vec!["mount", "--bind", "/etc", "/mnt"],
            vec!["mount", "/dev/xvdg", "/mnt"],
            vec!["mount", "-t", "btrfs", "/dev/xvdf", "/mnt"],
            vec!["mount", "-o", "journal_path=/dev/vda", "/dev/xvdf", "/mnt"],
            vec!["mount", "-o", "remount,rw", "/"],
            // root without all of its capabilities (a sandboxed service)
            vec!["setpriv", "--bounding-set=-sys_chroot", "mount", "/dev/xvdf", "/mnt"],
            vec!["umount", "/sys/fs/cgroup"],
            vec!["umount", "/proc/sys/kernel"],
        ];
        for argv in &denied {
            let (ok, out, err) = exec(&d, &id, argv).await;
            assert!(!ok, "{argv:?} succeeded: {out}");
            assert!(err.contains("ermission denied") || err.contains("must be superuser"), "{argv:?}: {err}");
        }
        let mounts = exec_ok(&d, &id, &["cat", "/proc/self/mountinfo"]).await;
        assert!(!mounts.contains(" /mnt "), "{mounts}");

        // Paths resolve in the guest: relative to its cwd, `..` stopping at its root, and a
        // symlink to /etc is the guest's /etc, never the host's.
        exec_ok(&d, &id, &["sh", "-c", "cd /tmp && mount -c /dev/xvdf ../../../data && findmnt -n /data && umount -c ../data"]).await;
        exec_ok(&d, &id, &["ln", "-s", "/etc", "/esc"]).await;
        exec_ok(&d, &id, &["mount", "-c", "/dev/xvdf", "/esc"]).await;
        assert_eq!(exec_ok(&d, &id, &["cat", "/etc/f"]).await, "hello-volume");
        let host_mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(!host_mounts.lines().any(|l| l.split(' ').nth(4) == Some("/etc")));
        assert!(!Path::new("/etc/f").exists());
        exec_ok(&d, &id, &["umount", "-c", "/esc"]).await;
        assert!(exec(&d, &id, &["test", "-e", "/etc/hostname"]).await.0);

        // A mountd that dies takes the filters it served with it: the running guest's calls
        // through them fail with ENOSYS until it restarts. A new process started by runc
        // (which starts a new mountd) gets a filter of its own and can mount.
        let old = mountd_pid(&fx.state_dir).expect("mountd runs");
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(old as i32), nix::sys::signal::SIGKILL).unwrap();
        let t = Instant::now();
        while mountd_pid(&fx.state_dir) == Some(old) {
            assert!(t.elapsed() < Duration::from_secs(5));
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let (ok, out) = via_init(&d, &id, "mount /dev/xvdf /data").await;
        assert!(!ok);
        assert!(out.contains("Function not implemented"), "{out}");
        println!("after mountd died, through PID 1's filter: {out}");
        exec_ok(&d, &id, &["mount", "/dev/xvdf", "/data"]).await;
        assert_ne!(mountd_pid(&fx.state_dir), Some(old));
        exec_ok(&d, &id, &["umount", "/data"]).await;

        // The data is on the volume: the host reads it once the guest let go.
        let mnt = fx.state_dir.join("check");
        std::fs::create_dir_all(&mnt).unwrap();
        host("mount", &["-o", "ro", &vol.loop_dev, mnt.to_str().unwrap()]);
        let read = std::fs::read_to_string(mnt.join("f"));
        host("umount", &[mnt.to_str().unwrap()]);
        assert_eq!(read.unwrap(), "hello-volume\n");

        drop((vol, other));
        d.destroy(&id).await.unwrap();
        assert_no_traces(&d, &id).await;
    });
    let state_dir = fx.state_dir.clone();
    drop(fx);
    // The daemon exits by itself once its state directory is gone.
    let t = Instant::now();
    while mountd_pid(&state_dir).is_some() {
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "mountd outlived its state directory"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `scripts/bench-mount`: what interception adds to a mount. Prints a table.
#[test]
#[ignore = "benchmark: run through scripts/bench-mount"]
fn bench_mount_interception() {
    let rootfs = require_env!();
    if !Path::new("/sys/fs/cgroup/devices").is_dir() {
        println!("skipped: no v1 devices cgroup (cgroup v2 host)");
        return;
    }
    let _serial = serial();
    let mut fx = Fixture::new("mountd-bench");
    let spec = fx.spec(&rootfs);
    let id = spec.id.clone();
    let d = fx.driver();
    const N: u32 = 20;
    runtime().block_on(async {
        d.start(&spec).await.unwrap();
        wait_booted(&d, &id).await;
        let pid = d.init_pid(&id).await.unwrap().unwrap();
        let vol = TestVolume::attach(&d, &id, pid, "/dev/xvdf", true);
        host("mkfs.ext4", &["-q", &vol.loop_dev]);
        exec_ok(&d, &id, &["mkdir", "-p", "/data"]).await;
        // Each figure: N runs of mount(8) in one shell, mean per run.
        let timed = |body: &str| {
            format!(
                "s=$(date +%s%N); i=0; while [ $i -lt {N} ]; do {body}; i=$((i+1)); done; \
                 echo $(( ($(date +%s%N) - s) / {N} / 1000 ))"
            )
        };
        let us = |s: String| -> f64 { s.trim().parse().unwrap() };
        let guest_cycle = us(exec_ok(
            &d,
            &id,
            &["sh", "-c", &timed("mount /dev/xvdf /data && umount /data")],
        )
        .await);
        let guest_denied = us(exec_ok(
            &d,
            &id,
            &["sh", "-c", &timed("mount -t tmpfs none /mnt 2>/dev/null; true")],
        )
        .await);
        let mnt = fx.state_dir.join("bench-mnt");
        std::fs::create_dir_all(&mnt).unwrap();
        let host_cycle = us(host(
            "sh",
            &[
                "-c",
                &timed(&format!(
                    "mount {} {m} && umount {m}",
                    vol.loop_dev,
                    m = mnt.display()
                )),
            ],
        ));
        let log = std::fs::read_to_string(fx.state_dir.join(".mountd/log")).unwrap();
        let handled: Vec<f64> = log
            .lines()
            .filter(|l| l.contains("-> Success in "))
            .filter_map(|l| l.rsplit(" in ").next()?.strip_suffix(" us")?.parse().ok())
            .collect();
        let mean = handled.iter().sum::<f64>() / handled.len().max(1) as f64;
        println!("| what ({N} runs each, mean) | µs |");
        println!("| --- | ---: |");
        println!("| host: `mount` + `umount` of the ext4 volume (no container) | {host_cycle:.0} |");
        println!("| guest: `mount` + `umount` through mountd | {guest_cycle:.0} |");
        println!(
            "| added by interception, per mount + umount pair | {:.0} |",
            guest_cycle - host_cycle
        );
        println!(
            "| mountd's own handling of one call (mount or umount, from its log, {} calls) | {mean:.0} |",
            handled.len()
        );
        println!("| guest: a refused `mount -t tmpfs` (continued to the kernel's EPERM) | {guest_denied:.0} |");
        drop(vol);
        d.destroy(&id).await.unwrap();
    });
}

// EBS volumes on running containers (issue 17).

/// The loop devices over `file` on the host.
fn loops_over(file: &Path) -> Vec<String> {
    let out = Command::new("losetup")
        .arg("-j")
        .arg(file)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once(':').map(|(dev, _)| dev.to_string()))
        .collect()
}

/// A loop device over `file`, set up outside the driver.
fn loop_by_hand(file: &Path) -> String {
    let out = Command::new("losetup")
        .args(["--find", "--show"])
        .arg(file)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn minor_of(node: &str) -> u64 {
    use std::os::unix::fs::MetadataExt;
    nix::sys::stat::minor(std::fs::metadata(node).unwrap().rdev())
}

/// The core's spec of a container the test made, with `volumes`.
fn guest_spec(c: &ContainerSpec, volumes: Vec<VolumeAttachment>) -> GuestSpec {
    GuestSpec {
        instance_id: c.id.clone(),
        image_rootfs: c.image_rootfs.clone(),
        volume_gib: c.volume_gib as u32,
        hostname: c.hostname.clone(),
        vcpus: c.vcpus,
        memory_mib: c.memory_mib,
        pids_max: c.pids_max,
        netns: None,
        files: Vec::new(),
        hypervisor: gureum_host_api::Hypervisor::Container,
        nic: None,
        warm: false,
        volumes,
    }
}

/// Runs `argv` in the mount namespace of the instance's PID 1, from the host (a guest without
/// CAP_SYS_ADMIN cannot mount; the mount helper of issue 17 does it for it).
async fn in_guest_ns(d: &RuncDriver, id: &str, argv: &[&str]) {
    let pid = d.init_pid(id).await.unwrap().unwrap().to_string();
    let out = Command::new("nsenter")
        .args(["-t", &pid, "-m", "--"])
        .args(argv)
        .output()
        .unwrap();
    assert!(out.status.success(), "{argv:?}: {out:?}");
}

/// An EBS volume attached to a running container: a block device at its Xen name at once,
/// writable through to the volume's file, no other loop device reachable, idempotent, grown
/// online, repaired by attaching again, busy while mounted unless forced, gone on detach, its
/// data moving with it to another instance, across stop and start, and nothing left after
/// destroy.
#[test]
fn volumes_attach_to_running_containers() {
    let rootfs = require_env!();
    let _serial = serial();
    let mut fx = Fixture::new("volumes");
    let spec = fx.spec(&rootfs);
    let spec_b = fx.spec(&rootfs);
    let (id, id_b) = (spec.id.clone(), spec_b.id.clone());
    let d = fx.driver();
    let files = fx.state_dir.join(".volumes");
    std::fs::create_dir_all(&files).unwrap();
    let vol = files.join("vol-0a1b2c3d4e5f60718.img");
    std::fs::File::create(&vol)
        .unwrap()
        .set_len(64 << 20)
        .unwrap();
    let att = VolumeAttachment {
        volume_id: "vol-0a1b2c3d4e5f60718".into(),
        device: "/dev/sdf".into(),
        path: vol.clone(),
        read_only: false,
    };
    let rules = |id: &str| cgroup_file(&d, id, "devices/{}/devices.list", "").unwrap_or_default();
    runtime().block_on(async {
        d.prepare(&spec).await.unwrap();
        if d.cgroup_mode() == gureum_runtime::CgroupMode::V2 {
            let e = Compute::attach_volume(&d, &id, &att).await.unwrap_err();
            assert!(matches!(e, HostError::Unsupported(_)), "{e}");
            println!("skipped: volumes on containers need cgroup v1 devices ({e})");
            return;
        }
        // A stopped instance gets it from its next start: nothing on the host until then.
        Compute::attach_volume(&d, &id, &att).await.unwrap();
        assert!(loops_over(&vol).is_empty());
        d.start(&spec).await.unwrap();
        wait_booted(&d, &id).await;

        let t = Instant::now();
        Compute::attach_volume(&d, &id, &att).await.unwrap();
        println!("attach: {:.1} ms", t.elapsed().as_secs_f64() * 1e3);
        exec_ok(&d, &id, &["test", "-b", "/dev/xvdf"]).await;
        assert_eq!(exec_ok(&d, &id, &["readlink", "/dev/sdf"]).await, "xvdf");
        let by_id = "/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_vol0a1b2c3d4e5f60718";
        assert_eq!(exec_ok(&d, &id, &["readlink", by_id]).await, "../../xvdf");
        let loops = loops_over(&vol);
        assert_eq!(loops.len(), 1, "{loops:?}");
        let minor = minor_of(&loops[0]);
        assert_eq!(
            exec_ok(&d, &id, &["stat", "-c", "%t %T %a %G", "/dev/xvdf"]).await,
            format!("7 {minor:x} 660 disk")
        );
        let record = attached_volumes(&d.instance_dir(&id)).unwrap();
        assert_eq!(record.len(), 1);
        assert_eq!(
            (
                record[0].node.as_str(),
                record[0].device.as_str(),
                record[0].loop_device.as_str(),
                record[0].major,
                u64::from(record[0].minor)
            ),
            ("/dev/xvdf", "/dev/sdf", loops[0].as_str(), 7, minor)
        );
        assert!(rules(&id).contains(&format!("b 7:{minor} rw")), "{}", rules(&id));
        // The rule covers the guest's services too: systemd gives them cgroups of their own in
        // its hierarchy only, and every one of its processes is in the instance's devices
        // cgroup.
        let procs = |dir: &Path| -> Vec<String> {
            let out = Command::new("find")
                .arg(dir)
                .args(["-name", "cgroup.procs", "-exec", "cat", "{}", "+"])
                .output()
                .unwrap();
            String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect()
        };
        let parent = d.cgroup_parent();
        let services = procs(Path::new(&format!("/sys/fs/cgroup/systemd/{parent}/{id}")));
        let allowed =
            std::fs::read_to_string(format!("/sys/fs/cgroup/devices/{parent}/{id}/cgroup.procs"))
                .unwrap();
        let allowed: Vec<String> = allowed.lines().map(str::to_string).collect();
        assert!(services.len() > 3, "{services:?}");
        assert!(services.iter().all(|p| allowed.contains(p)), "{services:?} {allowed:?}");
        // Only that device: the guest's /dev has no other block device.
        assert_eq!(
            exec_ok(&d, &id, &["find", "/dev", "-type", "b"]).await,
            "/dev/xvdf"
        );

        // Written in the guest, read on the host from the volume's file.
        exec_ok(
            &d,
            &id,
            &[
                "sh",
                "-c",
                "printf gureum-ebs-pattern | dd of=/dev/xvdf bs=1M seek=1 conv=fsync,notrunc status=none",
            ],
        )
        .await;
        let bytes = std::fs::read(&vol).unwrap();
        assert_eq!(&bytes[1 << 20..(1 << 20) + 18], b"gureum-ebs-pattern");

        // Attaching again changes nothing.
        Compute::attach_volume(&d, &id, &att).await.unwrap();
        assert_eq!(loops_over(&vol), loops);
        assert_eq!(attached_volumes(&d.instance_dir(&id)).unwrap(), record);

        // Another loop device is out of reach, even through a node the guest makes itself.
        let stray = files.join("stray.img");
        std::fs::File::create(&stray).unwrap().set_len(1 << 20).unwrap();
        let stray_loop = loop_by_hand(&stray);
        let probe = format!(
            "mknod /dev/probe b 7 {} && dd if=/dev/probe of=/dev/null count=1",
            minor_of(&stray_loop)
        );
        let (ok, _, err) = exec(&d, &id, &["sh", "-c", &probe]).await;
        let _ = Command::new("losetup").args(["-d", &stray_loop]).status();
        assert!(!ok && err.contains("Operation not permitted"), "{err}");
        exec_ok(&d, &id, &["rm", "/dev/probe"]).await;

        // A volume grown on the host grows in the guest when attached again.
        std::fs::OpenOptions::new()
            .write(true)
            .open(&vol)
            .unwrap()
            .set_len(128 << 20)
            .unwrap();
        Compute::attach_volume(&d, &id, &att).await.unwrap();
        assert_eq!(
            exec_ok(&d, &id, &["blockdev", "--getsize64", "/dev/xvdf"]).await,
            (128u64 << 20).to_string()
        );

        // What a crash would leave half done is finished by attaching again: node and rule
        // gone, ...
        exec_ok(&d, &id, &["rm", "/dev/xvdf", "/dev/sdf"]).await;
        let deny = format!(
            "/sys/fs/cgroup/devices/{}/{id}/devices.deny",
            d.cgroup_parent()
        );
        std::fs::write(&deny, format!("b 7:{minor} rw")).unwrap();
        Compute::attach_volume(&d, &id, &att).await.unwrap();
        exec_ok(&d, &id, &["test", "-b", "/dev/xvdf"]).await;
        assert_eq!(exec_ok(&d, &id, &["readlink", "/dev/sdf"]).await, "xvdf");
        assert!(rules(&id).contains(&format!("b 7:{minor} rw")));
        // ... or a loop device set up before the record was written: adopted, not doubled.
        Compute::detach_volume(&d, &id, &att.volume_id, false)
            .await
            .unwrap();
        assert!(loops_over(&vol).is_empty());
        let left = loop_by_hand(&vol);
        Compute::attach_volume(&d, &id, &att).await.unwrap();
        assert_eq!(loops_over(&vol), vec![left.clone()]);
        assert_eq!(
            attached_volumes(&d.instance_dir(&id)).unwrap()[0].loop_device,
            left
        );

        // Busy while mounted in the guest; a forced detach takes it anyway.
        let out = Command::new("mkfs.ext4")
            .args(["-q", "-F", &left])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        in_guest_ns(&d, &id, &["mount", "/dev/xvdf", "/mnt"]).await;
        exec_ok(&d, &id, &["sh", "-c", "echo kept > /mnt/data && sync"]).await;
        let e = Compute::detach_volume(&d, &id, &att.volume_id, false)
            .await
            .unwrap_err();
        assert!(matches!(e, HostError::Busy(_)), "{e}");
        assert!(e.to_string().contains("is busy"), "{e}");
        exec_ok(&d, &id, &["test", "-b", "/dev/xvdf"]).await;
        Compute::detach_volume(&d, &id, &att.volume_id, true)
            .await
            .unwrap();
        let (ok, _, _) = exec(&d, &id, &["test", "-e", "/dev/xvdf"]).await;
        assert!(!ok, "/dev/xvdf is left");
        let minor = minor_of(&left);
        assert!(!rules(&id).contains(&format!("b 7:{minor} ")), "{}", rules(&id));
        assert!(attached_volumes(&d.instance_dir(&id)).unwrap().is_empty());
        // The kernel frees the loop device once the guest's mount goes.
        in_guest_ns(&d, &id, &["umount", "/mnt"]).await;
        let t = Instant::now();
        while !loops_over(&vol).is_empty() {
            assert!(t.elapsed() < Duration::from_secs(5), "{:?}", loops_over(&vol));
            tokio::time::sleep(Duration::from_millis(20)).await;
        }

        // Detach of an unmounted volume removes it.
        Compute::attach_volume(&d, &id, &att).await.unwrap();
        exec_ok(&d, &id, &["test", "-b", "/dev/xvdf"]).await;
        Compute::detach_volume(&d, &id, &att.volume_id, false)
            .await
            .unwrap();
        for gone in ["/dev/xvdf", "/dev/sdf", by_id] {
            let (ok, _, _) = exec(&d, &id, &["test", "-e", gone]).await;
            assert!(!ok, "{gone} is left");
        }
        assert!(loops_over(&vol).is_empty());
        assert!(!rules(&id).contains("b 7:"), "{}", rules(&id));
        Compute::detach_volume(&d, &id, &att.volume_id, false)
            .await
            .unwrap(); // idempotent

        // The data moves with the volume to another instance, attached from its start.
        d.prepare(&spec_b).await.unwrap();
        let gspec_b = guest_spec(&spec_b, vec![att.clone()]);
        Compute::start(&d, &gspec_b).await.unwrap();
        exec_ok(&d, &id_b, &["test", "-b", "/dev/xvdf"]).await;
        in_guest_ns(&d, &id_b, &["mount", "/dev/xvdf", "/mnt"]).await;
        assert_eq!(exec_ok(&d, &id_b, &["cat", "/mnt/data"]).await, "kept");
        in_guest_ns(&d, &id_b, &["umount", "/mnt"]).await;

        // Stopped, it holds no loop device; started, it has the volume again.
        Compute::stop(&d, &id_b, true).await.unwrap();
        assert!(loops_over(&vol).is_empty());
        assert!(attached_volumes(&d.instance_dir(&id_b)).unwrap().is_empty());
        Compute::start(&d, &gspec_b).await.unwrap();
        exec_ok(&d, &id_b, &["test", "-b", "/dev/xvdf"]).await;
        assert_eq!(loops_over(&vol).len(), 1);

        // Destroy leaves nothing: no loop device, rule or record.
        for i in [&id, &id_b] {
            d.destroy(i).await.unwrap();
            assert_no_traces(&d, i).await;
        }
        assert!(loops_over(&vol).is_empty());
    });
}

/// Mounts a raw disk read-only on the host and returns what `probe` says of its files.
fn read_disk(
    img: &Path,
    probe: impl FnOnce(&Path) -> (bool, String, bool),
) -> (bool, String, bool) {
    let mnt = img.with_extension("mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    host(
        "mount",
        &[
            "-o",
            "ro,loop",
            img.to_str().unwrap(),
            mnt.to_str().unwrap(),
        ],
    );
    let seen = probe(&mnt);
    host("umount", &[mnt.to_str().unwrap()]);
    std::fs::remove_dir(&mnt).unwrap();
    seen
}

/// A root volume exported as a standalone disk (a root volume kept past its instance, or a
/// snapshot of one): an ext4 of the volume's size holding the whole root file system, the
/// image's files and the guest's own writes and deletions; live from a running instance and
/// from a stopped one (mounted read-only for it, and unmounted again).
#[test]
fn a_root_volume_exports_as_a_standalone_disk() {
    let rootfs = require_env!();
    let _s = serial();
    let mut fx = Fixture::new("export");
    let d = fx.driver();
    let spec = fx.spec(&rootfs);
    let id = spec.id.clone();
    let probe = |m: &Path| {
        (
            m.join("etc/os-release").is_file(),
            std::fs::read_to_string(m.join("root/marker")).unwrap_or_default(),
            m.join("etc/motd").exists(),
        )
    };
    runtime().block_on(async {
        d.prepare(&spec).await.unwrap();
        d.start(&spec).await.unwrap();
        wait_booted(&d, &id).await;
        exec_ok(
            &d,
            &id,
            &[
                "sh",
                "-c",
                "echo written-in-the-guest > /root/marker && rm /etc/motd && sync",
            ],
        )
        .await;
        let live = fx.state_dir.join("vol-live.img");
        let t = Instant::now();
        d.export_root_volume(&spec, &live).await.unwrap();
        println!("export of a running instance: {:?}", t.elapsed());
        assert_eq!(std::fs::metadata(&live).unwrap().len(), 8 << 30);
        assert_eq!(
            read_disk(&live, probe),
            (true, "written-in-the-guest\n".into(), false)
        );

        d.stop(&id, Duration::from_secs(30), false).await.unwrap();
        let dir = d.instance_dir(&id);
        let loops_before = loops_over(&dir.join("volume.img"));
        println!("loop devices over the stopped volume: {loops_before:?}");
        let kept = fx.state_dir.join("vol-kept.img");
        d.export_root_volume(&spec, &kept).await.unwrap();
        // Again (after a crash, say): the same disk.
        d.export_root_volume(&spec, &kept).await.unwrap();
        assert_eq!(
            read_disk(&kept, probe),
            (true, "written-in-the-guest\n".into(), false)
        );
        let mounted = host("findmnt", &["-rn", "-o", "TARGET"]);
        assert!(
            !mounted.contains(dir.to_str().unwrap()),
            "left mounted: {mounted}"
        );
        assert_eq!(loops_over(&dir.join("volume.img")), loops_before);
        assert!(std::fs::read_dir(&fx.state_dir)
            .unwrap()
            .flatten()
            .all(|e| !e.file_name().to_string_lossy().starts_with(".tmp-")));
        d.destroy(&id).await.unwrap();
        assert_no_traces(&d, &id).await;
        // An instance with nothing on the host has nothing to export.
        assert!(d.export_root_volume(&spec, &kept).await.is_err());
    });
}
