//! Integration tests that build, import and boot-test real images. They need root (mmdebstrap's
//! root mode, chroot, loop mounts, overlayfs) and, for builds, Debian's mirror; without them each
//! test prints `skipped: <why>` and returns (set GUREUM_IMAGE_REQUIRE=1 to make a skip fail).
//!
//! One debian-12 build is shared by the checks that need it: `debian_12_build_import_and_boot`
//! builds into a temporary cache (or GUREUM_IMAGE_TEST_CACHE, to reuse a build while iterating)
//! and then checks the rootfs, lookup timing, the guest agent in a chroot, and imports of a
//! tarball and a partitioned qcow2 made from it. Everything mounted runs in throw-away mount
//! namespaces; every file lives in a TempDir.

use gureum_image::{recipe, BuildOptions, BuiltImage, ImageCache, ImageError, ProgressMode};
use std::io::Write;
use std::net::{TcpStream, ToSocketAddrs};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------------
// Prerequisites

fn skip(why: &str) {
    println!("skipped: {why}");
    if std::env::var_os("GUREUM_IMAGE_REQUIRE").is_some() {
        panic!("GUREUM_IMAGE_REQUIRE is set but the test was skipped: {why}");
    }
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|r| r.split_whitespace().nth(1).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

fn have(tool: &str) -> bool {
    ["/usr/bin", "/usr/sbin", "/bin", "/sbin", "/usr/local/bin"]
        .iter()
        .any(|d| Path::new(d).join(tool).exists())
}

/// Why root-only tests cannot run here, if they cannot.
fn root_missing(tools: &[&str]) -> Option<String> {
    if !is_root() {
        return Some("needs root".into());
    }
    tools
        .iter()
        .find(|t| !have(t))
        .map(|t| format!("{t} is not installed"))
}

/// Why builds cannot run here, if they cannot: root, mmdebstrap (or apt-get to install it),
/// and a reachable mirror.
fn build_missing() -> Option<String> {
    if let Some(why) = root_missing(&["unshare", "setpriv", "chroot"]) {
        return Some(why);
    }
    if !have("mmdebstrap") && !have("apt-get") {
        return Some("mmdebstrap is not installed and apt-get is unavailable".into());
    }
    let reachable = ("deb.debian.org", 80)
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .is_some_and(|a| TcpStream::connect_timeout(&a, Duration::from_secs(5)).is_ok());
    (!reachable).then(|| "the Debian mirror deb.debian.org is unreachable".into())
}

fn sh(script: &str, args: &[&Path]) -> Output {
    let out = Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg("sh")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Loop devices backed by files under `dir` (other users of this machine may hold their own).
fn loop_devices(dir: &Path) -> Vec<String> {
    let out = Command::new("losetup")
        .arg("-a")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let dir = dir.to_string_lossy().into_owned();
    out.lines()
        .filter(|l| l.contains(&dir))
        .map(str::to_string)
        .collect()
}

/// Loop devices are detached when the import's mount namespace is torn down, which the kernel
/// may finish a moment after the process exits.
fn no_loop_devices_within(dir: &Path, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while !loop_devices(dir).is_empty() {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    true
}

fn mounts_under(dir: &Path) -> Vec<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|m| Path::new(m).starts_with(dir))
        .map(str::to_string)
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The shared build and its checks

/// Builds in this binary take turns: two at once on a 2-core machine would double the measured
/// build time and say nothing about the real one.
static BUILDS: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn build_turn() -> std::sync::MutexGuard<'static, ()> {
    BUILDS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[test]
fn debian_12_build_import_and_boot() {
    if let Some(why) = build_missing() {
        return skip(&why);
    }
    let temp = tempfile::tempdir().unwrap();
    let cache_root = std::env::var_os("GUREUM_IMAGE_TEST_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| temp.path().join("cache"));
    let cache = ImageCache::open(&cache_root).unwrap();
    let r = recipe("debian-12").unwrap();
    let opts = BuildOptions {
        progress: ProgressMode::Plain,
        ..BuildOptions::default()
    };

    let turn = build_turn();
    let start = Instant::now();
    let image = cache.build(r, &opts).unwrap();
    let build_time = start.elapsed();
    drop(turn);
    println!(
        "measured: debian-12 build {:.1}s, image {:.1} MiB (du), rootfs {}",
        build_time.as_secs_f64(),
        image.size_bytes as f64 / 1048576.0,
        image.rootfs.display()
    );
    if build_time > Duration::from_secs(60) {
        println!("warning: the build took longer than the 60 s target");
    }

    check_lookup(&cache_root, &image);
    check_rootfs(&image);
    let fingerprint = tree_fingerprint(&image.rootfs);
    check_agent(&image.rootfs, temp.path());
    check_imports(&cache, &image, temp.path());

    assert_eq!(
        tree_fingerprint(&image.rootfs),
        fingerprint,
        "the cached rootfs must never be modified (it is an overlayfs lowerdir)"
    );
    assert!(
        no_loop_devices_within(temp.path(), Duration::from_secs(5)),
        "imports left loop devices behind: {:?}",
        loop_devices(temp.path())
    );
    assert!(mounts_under(temp.path()).is_empty(), "mounts left behind");
    assert!(mounts_under(&cache_root).is_empty(), "mounts left behind");
}

fn check_lookup(cache_root: &Path, image: &BuiltImage) {
    let r = recipe("debian-12").unwrap();
    // A fresh process would open the cache anew: do the same.
    let start = Instant::now();
    let cache = ImageCache::open(cache_root).unwrap();
    let found = cache.lookup(r, &BuildOptions::default()).unwrap();
    let took = start.elapsed();
    println!(
        "measured: lookup of the cached build {:.3} ms",
        took.as_secs_f64() * 1000.0
    );
    assert_eq!(found.as_ref(), Some(image));
    assert!(took < Duration::from_secs(1), "lookup took {took:?}");
    // build() without refresh returns the cached build, just as fast.
    let start = Instant::now();
    let again = cache.build(r, &BuildOptions::default()).unwrap();
    assert!(start.elapsed() < Duration::from_secs(1));
    assert_eq!(&again, image);
    // Another mirror is another key: nothing cached.
    let other = BuildOptions {
        mirror: Some("http://127.0.0.1:9/debian".into()),
        ..BuildOptions::default()
    };
    assert_eq!(cache.lookup(r, &other).unwrap(), None);
    assert!(image.manifest().is_some_and(|m| m.is_file()));
}

fn check_rootfs(image: &BuiltImage) {
    let root = &image.rootfs;
    let date = image.name.rsplit('-').next().unwrap();
    assert_eq!(image.name, format!("debian-12-amd64-{date}"));
    assert_eq!(date.len(), 8);
    assert_eq!(image.login_user, "admin");
    assert!(
        image.description.contains("login user: admin"),
        "{}",
        image.description
    );
    assert!(image.description.starts_with("Debian 12 (bookworm) amd64"));
    assert!(
        image.os_release.starts_with("Debian GNU/Linux 12"),
        "{}",
        image.os_release
    );
    assert!(
        image.size_bytes < 300 * 1024 * 1024,
        "image is {} bytes",
        image.size_bytes
    );
    let du = sh("du -sx -B1 \"$1\" | cut -f1", &[root]);
    let du: u64 = String::from_utf8_lossy(&du.stdout).trim().parse().unwrap();
    assert!(du < 300 * 1024 * 1024, "du says {du}");
    println!(
        "measured: du -sx of the rootfs {:.1} MiB",
        du as f64 / 1048576.0
    );

    // systemd as init, the server tools.
    let exists = |p: &str| std::fs::symlink_metadata(root.join(p)).is_ok();
    assert!(root.join("usr/lib/systemd/systemd").is_file());
    assert_eq!(
        std::fs::read_link(root.join("usr/sbin/init")).unwrap(),
        Path::new("/lib/systemd/systemd")
    );
    for bin in [
        "usr/sbin/sshd",
        "usr/bin/sudo",
        "usr/bin/python3",
        "usr/bin/curl",
        "usr/bin/ping",
        "usr/bin/less",
        "usr/bin/vi",
        "usr/bin/apt-get",
        "usr/sbin/ip",
        "usr/sbin/useradd",
    ] {
        assert!(exists(bin), "{bin} missing");
    }
    let sudo_mode = std::fs::metadata(root.join("usr/bin/sudo")).unwrap().mode();
    assert_eq!(sudo_mode & 0o4000, 0o4000, "sudo must be setuid");
    assert!(root
        .join("usr/lib/python3/dist-packages/yaml/__init__.py")
        .is_file());

    // The login user: locked password, passwordless sudo.
    let passwd = std::fs::read_to_string(root.join("etc/passwd")).unwrap();
    let admin = passwd
        .lines()
        .find(|l| l.starts_with("admin:"))
        .expect("no admin user");
    assert!(admin.ends_with(":/home/admin:/bin/bash"), "{admin}");
    let shadow = std::fs::read_to_string(root.join("etc/shadow")).unwrap();
    let hash = shadow
        .lines()
        .find(|l| l.starts_with("admin:"))
        .unwrap()
        .split(':')
        .nth(1)
        .unwrap();
    assert!(
        hash.starts_with('!'),
        "admin must have no usable password: {hash}"
    );
    let sudoers = root.join("etc/sudoers.d/90-gureum");
    assert_eq!(
        std::fs::read_to_string(&sudoers).unwrap(),
        "admin ALL=(ALL) NOPASSWD:ALL\n"
    );
    assert_eq!(std::fs::metadata(&sudoers).unwrap().mode() & 0o777, 0o440);

    // Per-instance identity is not baked in.
    let host_keys: Vec<_> = std::fs::read_dir(root.join("etc/ssh"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("ssh_host_"))
        .collect();
    assert!(host_keys.is_empty(), "host keys baked in: {host_keys:?}");
    assert_eq!(
        std::fs::metadata(root.join("etc/machine-id"))
            .unwrap()
            .len(),
        0
    );

    // apt knows where the distribution lives.
    let sources =
        std::fs::read_to_string(root.join("etc/apt/sources.list.d/debian.sources")).unwrap();
    assert!(sources.contains("Suites: bookworm bookworm-updates"));
    assert!(sources.contains("bookworm-security"));

    // No DHCP/ifupdown, no pointless units; the agent is enabled.
    let manifest = std::fs::read_to_string(image.manifest().unwrap()).unwrap();
    for pkg in [
        "openssh-server",
        "systemd-sysv",
        "sudo",
        "python3-yaml",
        "vim-tiny",
    ] {
        assert!(
            manifest.lines().any(|l| l.starts_with(&format!("{pkg}\t"))),
            "{pkg} not in manifest"
        );
    }
    for pkg in ["ifupdown", "isc-dhcp-client", "usrmerge", "perl\t"] {
        assert!(
            !manifest.lines().any(|l| l.starts_with(pkg)),
            "{pkg} installed"
        );
    }
    for unit in [
        "systemd-networkd-wait-online.service",
        "systemd-timesyncd.service",
        "apt-daily.timer",
        "apt-daily-upgrade.timer",
        "e2scrub_all.timer",
        "networking.service",
    ] {
        let link = std::fs::read_link(root.join("etc/systemd/system").join(unit));
        assert_eq!(link.unwrap(), Path::new("/dev/null"), "{unit} not masked");
    }
    assert!(!exists(
        "etc/systemd/system/getty.target.wants/getty@tty1.service"
    ));
    for unit in ["gureum-init.service", "gureum-user-data.service"] {
        let link = root
            .join("etc/systemd/system/multi-user.target.wants")
            .join(unit);
        assert_eq!(
            std::fs::read_link(link).unwrap(),
            Path::new("/etc/systemd/system").join(unit)
        );
        assert!(root.join("etc/systemd/system").join(unit).is_file());
    }
    assert!(root.join("usr/local/lib/gureum/gureum-init").is_file());

    // Small: no docs but copyrights, no man pages, no apt lists.
    let docs = sh(
        "find \"$1/usr/share/doc\" -type f ! -name copyright | wc -l",
        &[root],
    );
    assert_eq!(String::from_utf8_lossy(&docs.stdout).trim(), "0");
    assert_eq!(
        std::fs::read_dir(root.join("usr/share/man"))
            .map(|d| d.count())
            .unwrap_or(0),
        0
    );
    let lists = std::fs::read_dir(root.join("var/lib/apt/lists")).unwrap();
    assert!(lists
        .flatten()
        .all(|e| e.file_name() == "partial" || e.file_name() == "lock"));
}

/// A cheap fingerprint of a tree: every path with its size, mode and mtime.
fn tree_fingerprint(root: &Path) -> String {
    let out = sh(
        "cd \"$1\" && find . -printf '%p %s %m %T@\\n' | sort | sha256sum",
        &[root],
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

// ---------------------------------------------------------------------------------------------
// The guest agent, run for real in a chroot of the built image

/// One instance: an overlay upper layer on the (read-only) image, with what the host writes
/// into /var/lib/gureum before boot.
struct Instance {
    lower: PathBuf,
    dir: PathBuf,
}

impl Instance {
    fn new(lower: &Path, base: &Path, name: &str, env: &str) -> Instance {
        let dir = base.join(name);
        for d in ["upper/var/lib/gureum", "work", "merged"] {
            std::fs::create_dir_all(dir.join(d)).unwrap();
        }
        let i = Instance {
            lower: lower.to_path_buf(),
            dir,
        };
        i.write("var/lib/gureum/instance.env", env.as_bytes());
        i
    }

    fn upper(&self) -> PathBuf {
        self.dir.join("upper")
    }

    fn write(&self, path: &str, content: &[u8]) {
        let p = self.upper().join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }

    fn read(&self, path: &str) -> String {
        std::fs::read_to_string(self.upper().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    /// Runs `argv` chrooted into the instance's merged view, in private mount, PID, UTS, IPC
    /// and network namespaces (so `hostname` and mounts stay inside, and apt fails fast).
    fn run(&self, argv: &[&str]) -> Output {
        let script = r#"set -e
L=$1 U=$2 W=$3 M=$4; shift 4
mount -t overlay overlay -o "lowerdir=$L,upperdir=$U,workdir=$W" "$M"
mount -t proc proc "$M/proc"
mount --rbind /dev "$M/dev"
mount -t tmpfs tmpfs "$M/run"
mount -t tmpfs tmpfs "$M/tmp"
exec chroot "$M" "$@""#;
        let out = Command::new("unshare")
            .args([
                "--mount",
                "--propagation",
                "private",
                "--pid",
                "--fork",
                "--kill-child",
            ])
            .args(["--uts", "--ipc", "--net", "sh", "-c", script, "sh"])
            .arg(&self.lower)
            .arg(self.upper())
            .arg(self.dir.join("work"))
            .arg(self.dir.join("merged"))
            .args(argv)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        out
    }

    /// Boots the agent the way the two units do (`boot`, then `final`), returning its output.
    fn boot(&self) -> String {
        let out = self.run(&["/usr/local/lib/gureum/gureum-init"]);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "gureum-init failed: {text}");
        text
    }
}

fn keypair(dir: &Path, name: &str) -> String {
    let path = dir.join(name);
    let _ = std::fs::remove_file(&path);
    let _ = std::fs::remove_file(path.with_extension("pub"));
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(out.status.success());
    std::fs::read_to_string(dir.join(format!("{name}.pub")))
        .unwrap()
        .trim()
        .to_string()
}

/// The fingerprint block the agent printed, checked for EC2's exact shape.
fn fingerprint_block(output: &str, host: &str) -> Vec<String> {
    let lines: Vec<&str> = output.lines().collect();
    let begin = lines
        .iter()
        .position(|l| *l == "-----BEGIN SSH HOST KEY FINGERPRINTS-----")
        .unwrap_or_else(|| panic!("no fingerprint block in:\n{output}"));
    let end = lines
        .iter()
        .position(|l| *l == "-----END SSH HOST KEY FINGERPRINTS-----")
        .unwrap();
    let fps: Vec<String> = lines[begin + 1..end]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(fps.len(), 3, "{fps:?}");
    for (fp, kind) in fps.iter().zip(["(ECDSA)", "(ED25519)", "(RSA)"]) {
        let parts: Vec<&str> = fp.split(' ').collect();
        assert_eq!(parts.len(), 4, "{fp}");
        assert!(parts[0].parse::<u32>().is_ok(), "{fp}");
        assert!(parts[1].starts_with("SHA256:"), "{fp}");
        assert_eq!(parts[2], format!("root@{host}"));
        assert_eq!(parts[3], kind);
    }
    assert_eq!(lines[end + 1], "-----BEGIN SSH HOST KEY KEYS-----");
    let kend = lines
        .iter()
        .position(|l| *l == "-----END SSH HOST KEY KEYS-----")
        .unwrap();
    let keys = &lines[end + 2..kend];
    assert_eq!(keys.len(), 3);
    for (k, t) in keys
        .iter()
        .zip(["ecdsa-sha2-nistp256 ", "ssh-ed25519 ", "ssh-rsa "])
    {
        assert!(
            k.starts_with(t) && k.ends_with(&format!(" root@{host}")),
            "{k}"
        );
    }
    fps
}

fn check_agent(rootfs: &Path, base: &Path) {
    let base = base.join("instances");
    std::fs::create_dir_all(&base).unwrap();
    let key1 = keypair(&base, "key1");
    let key2 = keypair(&base, "key2");

    // 1. A #! script: runs once, as root, from /; keys installed; fingerprints printed.
    let a = Instance::new(
        rootfs,
        &base,
        "script",
        "INSTANCE_ID='i-0aaaaaaaaaaaaaaa1'\nHOSTNAME='ip-10-0-0-5'\nLOGIN_USER='admin'\nLOCAL_IPV4='10.0.0.5'\n",
    );
    a.write(
        "var/lib/gureum/authorized_keys",
        format!("{key1}\r\n{key2}\n").as_bytes(),
    );
    // A key the user added earlier must survive; the pair's key must not be added twice.
    let pre = a.run(&[
        "su",
        "admin",
        "-c",
        &format!("mkdir -p ~/.ssh && printf %s '{key2}' > ~/.ssh/authorized_keys"),
    ]);
    assert!(
        pre.status.success(),
        "{}",
        String::from_utf8_lossy(&pre.stderr)
    );
    a.write(
        "var/lib/gureum/user-data",
        b"#!/bin/sh\necho hello-from-user-data\necho \"$(id -u) $(pwd)\" >> /root/ran.txt\n",
    );
    let first = a.boot();
    let fps = fingerprint_block(&first, "ip-10-0-0-5");
    assert!(first.contains("hello-from-user-data"), "{first}");
    let second = a.boot();
    assert!(
        !second.contains("BEGIN SSH HOST KEY"),
        "fingerprints again on a reboot:\n{second}"
    );
    assert!(
        !second.contains("hello-from-user-data"),
        "user-data ran twice:\n{second}"
    );
    assert_eq!(
        a.read("root/ran.txt"),
        "0 /\n",
        "the script ran exactly once, as root, from /"
    );
    let log = a.read("var/log/cloud-init-output.log");
    assert!(log.contains("hello-from-user-data"), "{log}");
    assert_eq!(
        a.read("var/lib/gureum/first-boot.done"),
        "i-0aaaaaaaaaaaaaaa1\n"
    );
    assert_eq!(a.read("etc/hostname"), "ip-10-0-0-5\n");
    assert!(a.read("etc/hosts").contains("127.0.1.1\tip-10-0-0-5"));
    let ssh_dir = a.upper().join("home/admin/.ssh");
    let ak = ssh_dir.join("authorized_keys");
    assert_eq!(std::fs::metadata(&ssh_dir).unwrap().mode() & 0o777, 0o700);
    assert_eq!(std::fs::metadata(&ak).unwrap().mode() & 0o777, 0o600);
    assert_eq!(
        std::fs::metadata(&ak).unwrap().uid(),
        1000,
        "owned by admin"
    );
    assert_eq!(std::fs::metadata(&ak).unwrap().gid(), 1000);
    assert_eq!(
        std::fs::read_to_string(&ak).unwrap(),
        format!("{key2}\n{key1}\n")
    );
    for t in ["ecdsa", "ed25519", "rsa"] {
        assert!(a
            .upper()
            .join(format!("etc/ssh/ssh_host_{t}_key"))
            .is_file());
    }
    // The login user really has passwordless sudo.
    let sudo = a.run(&["su", "admin", "-c", "sudo -n id -u"]);
    assert!(
        sudo.status.success(),
        "{}",
        String::from_utf8_lossy(&sudo.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&sudo.stdout).trim(), "0");

    // An image made from this instance, launched as a new instance: first boot again, with
    // new host keys and user-data run again.
    a.write(
        "var/lib/gureum/instance.env",
        b"INSTANCE_ID='i-0bbbbbbbbbbbbbbb2'\nHOSTNAME='ip-10-0-0-6'\nLOGIN_USER='admin'\n",
    );
    let cloned = a.boot();
    let fps2 = fingerprint_block(&cloned, "ip-10-0-0-6");
    assert_ne!(fps, fps2, "a new instance must get new host keys");
    assert_eq!(a.read("root/ran.txt"), "0 /\n0 /\n");

    // 2. #cloud-config on an image without the login user (imported images may lack it).
    let b = Instance::new(
        rootfs,
        &base,
        "cloud-config",
        "INSTANCE_ID='i-2'\nHOSTNAME='web1'\nLOGIN_USER='builder'\n",
    );
    b.write(
        "var/lib/gureum/authorized_keys",
        format!("{key1}\n").as_bytes(),
    );
    let b64 = "aGVsbG8gYjY0Cg=="; // "hello b64\n"
    b.write(
        "var/lib/gureum/user-data",
        format!(
            "#cloud-config
hostname: cfg-host
write_files:
  - path: /etc/demo/plain.txt
    content: |
      hello plain
    permissions: '0600'
    owner: builder:builder
  - path: /etc/demo/b64.txt
    encoding: b64
    content: {b64}
users:
  - default
  - name: alice
    sudo: ALL=(ALL) NOPASSWD:ALL
    shell: /bin/bash
    ssh_authorized_keys:
      - {key2}
ssh_authorized_keys:
  - {key2}
packages: [hello]
runcmd:
  - echo runcmd-string > /root/runcmd1.txt
  - [sh, -c, 'echo runcmd-list > /root/runcmd2.txt']
  - 'false'
  - echo after-a-failure > /root/runcmd3.txt
"
        )
        .as_bytes(),
    );
    let out = b.boot();
    assert!(out.contains("created login user builder"), "{out}");
    let passwd = b.read("etc/passwd");
    let builder = passwd
        .lines()
        .find(|l| l.starts_with("builder:"))
        .expect("builder created");
    assert!(builder.ends_with(":/home/builder:/bin/bash"), "{builder}");
    assert!(b
        .read("etc/sudoers.d/90-gureum")
        .contains("builder ALL=(ALL) NOPASSWD:ALL\n"));
    assert_eq!(
        b.read("home/builder/.ssh/authorized_keys"),
        format!("{key1}\n{key2}\n"),
        "pair key and cloud-config ssh_authorized_keys"
    );
    assert_eq!(b.read("etc/demo/plain.txt"), "hello plain\n");
    let plain = std::fs::metadata(b.upper().join("etc/demo/plain.txt")).unwrap();
    assert_eq!(plain.mode() & 0o777, 0o600);
    let builder_uid: u32 = builder.split(':').nth(2).unwrap().parse().unwrap();
    assert_eq!(plain.uid(), builder_uid);
    assert_eq!(b.read("etc/demo/b64.txt"), "hello b64\n");
    assert!(b
        .read("etc/passwd")
        .lines()
        .any(|l| l.starts_with("alice:") && l.ends_with("/bin/bash")));
    assert!(b
        .read("etc/sudoers.d/90-gureum-users")
        .contains("alice ALL=(ALL) NOPASSWD:ALL"));
    assert_eq!(
        b.read("home/alice/.ssh/authorized_keys"),
        format!("{key2}\n")
    );
    assert_eq!(b.read("root/runcmd1.txt"), "runcmd-string\n");
    assert_eq!(b.read("root/runcmd2.txt"), "runcmd-list\n");
    assert_eq!(b.read("root/runcmd3.txt"), "after-a-failure\n");
    assert_eq!(b.read("etc/hostname"), "cfg-host\n");
    let log = b.read("var/log/cloud-init-output.log");
    assert!(
        log.contains("apt-get install hello failed; continuing"),
        "{log}"
    );

    // 3. MIME multipart: a script part, a cloud-config part, and an #include part (logged as
    //    unsupported), the whole gzip-compressed.
    let c = Instance::new(
        rootfs,
        &base,
        "multipart",
        "INSTANCE_ID='i-3'\nHOSTNAME='mp'\nLOGIN_USER='admin'\n",
    );
    let multipart = "Content-Type: multipart/mixed; boundary=\"BOUNDARY\"
MIME-Version: 1.0

--BOUNDARY
Content-Type: text/cloud-config; charset=\"us-ascii\"
MIME-Version: 1.0
Content-Transfer-Encoding: 7bit
Content-Disposition: attachment; filename=\"cloud-config.txt\"

#cloud-config
write_files:
  - path: /etc/from-cloud-config
    content: cc-part
runcmd:
  - echo runcmd-in-multipart > /root/mp-runcmd.txt

--BOUNDARY
Content-Type: text/x-shellscript; charset=\"us-ascii\"
MIME-Version: 1.0
Content-Transfer-Encoding: base64
Content-Disposition: attachment; filename=\"userdata.sh\"

IyEvYmluL3NoCmVjaG8gc2NyaXB0LXBhcnQgPiAvcm9vdC9tcC1zY3JpcHQudHh0Cg==

--BOUNDARY
Content-Type: text/x-include-url; charset=\"us-ascii\"
MIME-Version: 1.0

#include
http://example.invalid/more-user-data

--BOUNDARY--
";
    c.write("var/lib/gureum/user-data", &gzip(multipart.as_bytes()));
    let out = c.boot();
    assert_eq!(c.read("etc/from-cloud-config"), "cc-part");
    // base64 of "#!/bin/sh\necho script-part > /root/mp-script.txt\n"
    assert_eq!(c.read("root/mp-script.txt"), "script-part\n");
    assert_eq!(c.read("root/mp-runcmd.txt"), "runcmd-in-multipart\n");
    assert!(out.contains("#include user-data is not supported"), "{out}");
    let log = c.read("var/log/cloud-init-output.log");
    assert!(log.contains("#include user-data is not supported"), "{log}");

    // 4. A gzip-compressed #! script needs no python: the sh path decompresses it.
    let d = Instance::new(
        rootfs,
        &base,
        "gzip-script",
        "INSTANCE_ID='i-4'\nLOGIN_USER='admin'\n",
    );
    d.write(
        "var/lib/gureum/user-data",
        &gzip(b"#!/bin/sh\necho gz > /root/gz.txt\n"),
    );
    d.boot();
    assert_eq!(d.read("root/gz.txt"), "gz\n");
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut child = Command::new("gzip")
        .arg("-c")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(data).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    out.stdout
}

// ---------------------------------------------------------------------------------------------
// Imports of the built image

/// Makes a GPT disk (a small BIOS-boot partition with no filesystem, then the root as ext4
/// populated with `mkfs.ext4 -d`, no mounting needed) and converts it to qcow2.
fn make_qcow2(rootfs: &Path, dir: &Path, size_bytes: u64) -> PathBuf {
    let raw = dir.join("disk.raw");
    let qcow = dir.join("disk.qcow2");
    let mib = size_bytes / 1048576 * 3 / 2 + 96;
    let script = r#"set -e
truncate -s "${4}M" "$1"
printf 'label: gpt\nstart=2048, size=16384, type=21686148-6449-6E6F-744E-656564454649\nstart=18432, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4\n' | sfdisk -q "$1"
sectors=$(sfdisk -d "$1" | sed -n 's/.*start= *18432, size= *\([0-9]*\).*/\1/p')
mkfs.ext4 -q -F -d "$2" -E offset=$((18432 * 512)) "$1" "$((sectors / 2))k"
qemu-img convert -O qcow2 "$1" "$3"
rm -f "$1""#;
    let out = Command::new("sh")
        .args(["-c", script, "sh"])
        .arg(&raw)
        .arg(rootfs)
        .arg(&qcow)
        .arg(mib.to_string())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    qcow
}

fn assert_same_root(imported: &BuiltImage, built: &BuiltImage) {
    let root = &imported.rootfs;
    assert!(root.join("usr/lib/systemd/systemd").is_file());
    assert_eq!(imported.os_release, built.os_release);
    assert_eq!(imported.login_user, "admin");
    assert!(
        imported.description.contains("login user: admin"),
        "{}",
        imported.description
    );
    assert!(
        imported.name.starts_with("debian-12-amd64-imported-"),
        "{}",
        imported.name
    );
    // Owners, modes and special bits survive.
    let sudo = std::fs::metadata(root.join("usr/bin/sudo")).unwrap();
    assert_eq!(sudo.mode() & 0o7777, 0o4755);
    let shadow = std::fs::metadata(root.join("etc/shadow")).unwrap();
    assert_eq!((shadow.mode() & 0o777, shadow.gid()), (0o640, 42));
    assert_eq!(
        std::fs::metadata(root.join("home/admin")).unwrap().uid(),
        1000
    );
    assert_eq!(
        std::fs::read_link(root.join("bin")).unwrap(),
        Path::new("usr/bin")
    );
    // The same tree (directory sizes aside, and ext4's lost+found).
    let listing = |r: &Path| {
        let out = sh(
            "cd \"$1\" && find . ! -name lost+found -printf '%p %m %U %G %y %l %s\\n' | grep -v ' d  ' | sort",
            &[r],
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(
        listing(root) == listing(&built.rootfs),
        "imported tree differs from the build"
    );
}

fn check_imports(cache: &ImageCache, built: &BuiltImage, base: &Path) {
    let dir = base.join("imports");
    std::fs::create_dir_all(&dir).unwrap();
    let tgz = dir.join("root.tar.gz");
    sh(
        "tar -C \"$1\" --numeric-owner --xattrs --xattrs-include='*' -cf - . | gzip -1 > \"$2\"",
        &[&built.rootfs, &tgz],
    );
    let start = Instant::now();
    let from_tar = cache.import(&tgz, &dir.join("from-tar"), None).unwrap();
    println!(
        "measured: import of a {} MiB tar.gz {:.1}s",
        std::fs::metadata(&tgz).unwrap().len() >> 20,
        start.elapsed().as_secs_f64()
    );
    assert_same_root(&from_tar, built);

    if let Some(why) = root_missing(&["qemu-img", "sfdisk", "mkfs.ext4", "losetup"]) {
        skip(&format!("qcow2 import: {why}"));
    } else {
        let qcow = make_qcow2(&built.rootfs, &dir, built.size_bytes);
        let start = Instant::now();
        let from_qcow = cache.import(&qcow, &dir.join("from-qcow2"), None).unwrap();
        println!(
            "measured: import of a partitioned qcow2 {:.1}s",
            start.elapsed().as_secs_f64()
        );
        assert_same_root(&from_qcow, built);

        // A truncated qcow2 is refused, and leaves nothing.
        let cut = dir.join("cut.qcow2");
        let len = std::fs::metadata(&qcow).unwrap().len();
        sh(
            "head -c \"$3\" \"$1\" > \"$2\"",
            &[&qcow, &cut, Path::new(&(len / 2).to_string())],
        );
        let dest = dir.join("from-cut-qcow2");
        let err = cache.import(&cut, &dest, None).unwrap_err();
        assert!(matches!(err, ImageError::Truncated { .. }), "{err}");
        assert!(!dest.exists());
    }

    // A truncated tar.gz of the real image.
    let cut = dir.join("cut.tar.gz");
    let len = std::fs::metadata(&tgz).unwrap().len();
    sh(
        "head -c \"$3\" \"$1\" > \"$2\"",
        &[&tgz, &cut, Path::new(&(len / 2).to_string())],
    );
    let dest = dir.join("from-cut-tar");
    let err = cache.import(&cut, &dest, None).unwrap_err();
    assert!(matches!(err, ImageError::Truncated { .. }), "{err}");
    assert!(err.to_string().contains("is truncated"), "{err}");
    assert!(!dest.exists());
    assert_no_staging(&dir);
}

fn assert_no_staging(dir: &Path) {
    let left: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("gureum-import"))
        .collect();
    assert!(left.is_empty(), "staging left behind: {left:?}");
}

// ---------------------------------------------------------------------------------------------
// Bad imports (root only, no network): small synthetic fixtures

/// A tiny fake root: os-release and an executable init, plus incompressible bulk so that a
/// truncated archive is cut inside a member.
fn fake_root(dir: &Path) -> PathBuf {
    let root = dir.join("fake-root");
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::create_dir_all(root.join("sbin")).unwrap();
    std::fs::write(
        root.join("etc/os-release"),
        "PRETTY_NAME=\"Fake Linux 1\"\nID=fake\n",
    )
    .unwrap();
    std::fs::write(root.join("sbin/init"), "#!/bin/sh\n").unwrap();
    std::fs::set_permissions(
        root.join("sbin/init"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let bulk: Vec<u8> = (0..2 << 20)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    std::fs::write(root.join("bulk"), bulk).unwrap();
    root
}

#[test]
fn bad_imports_fail_clearly_and_leave_nothing() {
    if let Some(why) = root_missing(&["tar", "gzip"]) {
        return skip(&why);
    }
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    let cache = ImageCache::open(&dir.join("cache")).unwrap();
    let import = |file: &Path, name: &str| {
        let dest = dir.join(name);
        let result = cache.import(file, &dest, None);
        if result.is_err() {
            assert!(!dest.exists(), "{name}: dest left behind");
        }
        result
    };

    // Random bytes: not an image at all.
    let random = dir.join("random.img");
    sh("head -c 1048576 /dev/urandom > \"$1\"", &[&random]);
    let err = import(&random, "d-random").unwrap_err();
    assert!(
        matches!(err, ImageError::UnrecognizedFormat { .. }),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("is not a rootfs tarball or a disk image"),
        "{err}"
    );

    // An empty tar archive.
    let empty = dir.join("empty.tar");
    sh("tar -cf \"$1\" -T /dev/null", &[&empty]);
    let err = import(&empty, "d-empty").unwrap_err();
    assert!(matches!(err, ImageError::NoRootFilesystem { .. }), "{err}");
    assert!(err.to_string().contains("the archive is empty"), "{err}");

    // A tarball of something that is not a root filesystem.
    let notroot = dir.join("notroot.tar.gz");
    sh(
        "mkdir -p \"$1.d/data\" && echo x > \"$1.d/data/x\" && tar -C \"$1.d\" -czf \"$1\" .",
        &[&notroot],
    );
    let err = import(&notroot, "d-notroot").unwrap_err();
    assert!(matches!(err, ImageError::NoRootFilesystem { .. }), "{err}");
    assert!(
        err.to_string().contains("no /etc/os-release and no init"),
        "{err}"
    );

    // A good tarball imports (zstd too), and its truncated copy does not.
    let root = fake_root(dir);
    let tgz = dir.join("fake.tar.gz");
    sh("tar -C \"$1\" -czf \"$2\" .", &[&root, &tgz]);
    let ok = import(&tgz, "d-ok").unwrap();
    assert_eq!(ok.os_release, "Fake Linux 1");
    assert_eq!(ok.login_user, "admin");
    let with_user = cache
        .import(&tgz, &dir.join("d-ok-user"), Some("debian"))
        .unwrap();
    assert_eq!(with_user.login_user, "debian");
    assert!(
        with_user.description.ends_with("login user: debian"),
        "{}",
        with_user.description
    );
    if have("zstd") {
        let tzst = dir.join("fake.tar.zst");
        sh("tar -C \"$1\" --zstd -cf \"$2\" .", &[&root, &tzst]);
        let ok = cache
            .import(&tzst, &dir.join("d-zst"), Some("ubuntu"))
            .unwrap();
        assert_eq!(ok.login_user, "ubuntu");
        assert!(ok.description.contains("login user: ubuntu"));
    }
    let cut = dir.join("cut.tar.gz");
    sh("head -c 1000000 \"$1\" > \"$2\"", &[&tgz, &cut]);
    let err = import(&cut, "d-cut").unwrap_err();
    assert!(matches!(err, ImageError::Truncated { .. }), "{err}");

    // An existing destination is refused without touching it.
    let err = cache.import(&tgz, &dir.join("d-ok"), None).unwrap_err();
    assert!(matches!(err, ImageError::DestinationExists(_)), "{err}");

    if let Some(why) = root_missing(&["sfdisk", "mkfs.ext4", "qemu-img", "losetup"]) {
        skip(&format!("disk fixtures: {why}"));
    } else {
        // A partitioned disk whose only filesystem is empty: no root filesystem.
        let disk = dir.join("noroot.raw");
        sh(
            "set -e; truncate -s 64M \"$1\"; printf 'label: dos\\nstart=2048, type=83\\n' | sfdisk -q \"$1\"; mkfs.ext4 -q -F -E offset=1048576 \"$1\" 63M",
            &[&disk],
        );
        let err = import(&disk, "d-noroot").unwrap_err();
        assert!(matches!(err, ImageError::NoRootFilesystem { .. }), "{err}");
        assert!(
            err.to_string()
                .contains("partition 1 (ext4): no /etc/os-release and no init"),
            "{err}"
        );
        // The same as qcow2.
        let q = dir.join("noroot.qcow2");
        sh("qemu-img convert -O qcow2 \"$1\" \"$2\"", &[&disk, &q]);
        let err = import(&q, "d-noroot-qcow2").unwrap_err();
        assert!(matches!(err, ImageError::NoRootFilesystem { .. }), "{err}");
        // A disk with a partition table but no Linux filesystem at all.
        let bare = dir.join("nofs.raw");
        sh("set -e; truncate -s 16M \"$1\"; printf 'label: gpt\\nstart=2048\\n' | sfdisk -q \"$1\"", &[&bare]);
        let err = import(&bare, "d-nofs").unwrap_err();
        assert!(matches!(err, ImageError::NoRootFilesystem { .. }), "{err}");
        assert!(
            err.to_string()
                .contains("holds an ext4, xfs or btrfs filesystem"),
            "{err}"
        );
        // A raw disk cut short inside its root partition.
        let good = dir.join("good.raw");
        sh(
            "set -e; truncate -s 64M \"$1\"; printf 'label: dos\\nstart=2048, type=83\\n' | sfdisk -q \"$1\"; mkfs.ext4 -q -F -d \"$2\" -E offset=1048576 \"$1\" 63M",
            &[&good, &root],
        );
        let ok = import(&good, "d-good-raw").unwrap();
        assert_eq!(ok.os_release, "Fake Linux 1");
        assert!(ok.rootfs.join("bulk").is_file());
        let cut = dir.join("cut.raw");
        sh("head -c 33554432 \"$1\" > \"$2\"", &[&good, &cut]);
        let err = import(&cut, "d-cut-raw").unwrap_err();
        assert!(matches!(err, ImageError::Truncated { .. }), "{err}");
        // And an unpartitioned filesystem image with a root is fine.
        let fs = dir.join("bare-fs.img");
        sh(
            "set -e; truncate -s 32M \"$1\"; mkfs.ext4 -q -F -d \"$2\" \"$1\"",
            &[&fs, &root],
        );
        let ok = import(&fs, "d-bare-fs").unwrap();
        assert_eq!(ok.os_release, "Fake Linux 1");
    }
    assert_no_staging(dir);
    assert!(
        no_loop_devices_within(dir, Duration::from_secs(5)),
        "loop devices left behind: {:?}",
        loop_devices(dir)
    );
    assert!(mounts_under(dir).is_empty());
}

// ---------------------------------------------------------------------------------------------
// A build killed with SIGKILL leaves nothing lookup() returns, no processes, no mounts; the next
// build's clean-up removes its temporary directory.

const CHILD_ENV: &str = "GUREUM_IMAGE_TEST_CHILD_CACHE";

/// Not a test of its own: the body of the child process `killed_build_leaves_nothing` kills.
#[test]
fn child_build_helper() {
    let Some(root) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let cache = ImageCache::open(Path::new(&root)).unwrap();
    let opts = BuildOptions {
        progress: ProgressMode::Quiet,
        ..BuildOptions::default()
    };
    let _ = cache.build(recipe("debian-12").unwrap(), &opts);
}

fn processes_mentioning(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        if let Ok(cmd) = std::fs::read(e.path().join("cmdline")) {
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            if cmd.contains(needle) {
                found.push(format!("{name}: {cmd}"));
            }
        }
    }
    found
}

#[test]
fn killed_build_leaves_nothing() {
    if let Some(why) = build_missing() {
        return skip(&why);
    }
    let _turn = build_turn();
    let temp = tempfile::tempdir().unwrap();
    let root = temp.path().join("cache");
    let cache = ImageCache::open(&root).unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "child_build_helper",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, &root)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until mmdebstrap is well into the install (packages extracted into the rootfs).
    let deadline = Instant::now() + Duration::from_secs(120);
    let in_progress = || {
        std::fs::read_dir(root.join("tmp"))
            .into_iter()
            .flatten()
            .flatten()
            .any(|e| e.path().join("rootfs/usr/bin/dpkg").is_file())
    };
    while !in_progress() {
        assert!(Instant::now() < deadline, "the child build never started");
        assert!(
            child.try_wait().unwrap().is_none(),
            "the child build ended early"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(2));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    // Everything the build started dies with it (pdeathsig + PID namespace).
    let needle = root.to_string_lossy().into_owned();
    let deadline = Instant::now() + Duration::from_secs(15);
    while !processes_mentioning(&needle).is_empty() {
        assert!(
            Instant::now() < deadline,
            "processes outlived the killed build: {:?}",
            processes_mentioning(&needle)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        mounts_under(&root).is_empty(),
        "mounts outlived the killed build: {:?}",
        mounts_under(&root)
    );
    let r = recipe("debian-12").unwrap();
    assert_eq!(cache.lookup(r, &BuildOptions::default()).unwrap(), None);
    assert_eq!(
        std::fs::read_dir(root.join("tmp")).unwrap().count(),
        1,
        "the unfinished build is in tmp/"
    );
    assert_eq!(cache.clean_stale_builds().unwrap(), 1);
    assert_eq!(std::fs::read_dir(root.join("tmp")).unwrap().count(), 0);
}
