//! The pool on a real host: an XFS image loop-mounted in a temporary data dir (this host's
//! root file system has no reflinks), volumes written and snapshotted, the server restarted
//! and the host "rebooted" (close, then open), a process killed mid-operation. Each test
//! needs root, `losetup` and `mkfs.xfs`; without them it prints `SKIP <test>: <why>` and
//! returns. Every test ends by checking that nothing stays mounted or attached.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gureum_ebs::{Backing, EbsPool, PoolOptions, IMAGE_NAME};
use gureum_host_api::{HostError, Volumes};

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|d| d.join(program).is_file()))
}

/// Why these tests cannot run here, if they cannot.
fn skip(test: &str) -> bool {
    let why = if !rustix::process::geteuid().is_root() {
        Some("needs root".to_string())
    } else {
        ["mkfs.xfs", "losetup"]
            .into_iter()
            .find(|p| !on_path(p))
            .map(|p| format!("{p} is not installed"))
    };
    if let Some(why) = &why {
        eprintln!("SKIP {test}: {why}");
    }
    why.is_some()
}

/// A small image: the tests write a few hundred MiB at most.
fn opts() -> PoolOptions {
    PoolOptions {
        image_size: Some(8 * GIB),
    }
}

/// A temporary data dir; dropping it unmounts and detaches whatever a failed test left.
struct DataDir {
    dir: tempfile::TempDir,
}

impl DataDir {
    fn new() -> DataDir {
        DataDir {
            dir: tempfile::Builder::new()
                .prefix("gureum-ebs-test.")
                .tempdir()
                .unwrap(),
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn image(&self) -> PathBuf {
        self.path().canonicalize().unwrap().join(IMAGE_NAME)
    }

    fn open(&self) -> EbsPool {
        EbsPool::open(self.path(), &opts()).unwrap()
    }

    /// Mounts under the data dir.
    fn mounts(&self) -> Vec<String> {
        let dir = self.path().canonicalize().unwrap();
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .filter(|m| Path::new(m).starts_with(&dir))
            .map(String::from)
            .collect()
    }

    /// Loop devices of the data dir's image.
    fn loops(&self) -> Vec<String> {
        let out = Command::new("losetup")
            .args(["--list", "--noheadings", "--output", "NAME", "--associated"])
            .arg(self.image())
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| l.trim().to_string())
            .filter(|l| !l.is_empty())
            .collect()
    }

    fn assert_clean(&self) {
        assert_eq!(self.mounts(), Vec::<String>::new(), "mounts left");
        assert_eq!(self.loops(), Vec::<String>::new(), "loop devices left");
    }
}

impl Drop for DataDir {
    fn drop(&mut self) {
        for m in self.mounts().into_iter().rev() {
            let _ = Command::new("umount").arg(&m).status();
        }
        for l in self.loops() {
            let _ = Command::new("losetup").arg("-d").arg(&l).status();
        }
    }
}

/// `len` bytes of `byte`.
fn fill(byte: u8, len: u64) -> Vec<u8> {
    vec![byte; len as usize]
}

fn write_at(path: &Path, offset: u64, data: &[u8]) {
    let f = File::options().write(true).open(path).unwrap();
    f.write_all_at(data, offset).unwrap();
    f.sync_all().unwrap();
}

fn read_at(path: &Path, offset: u64, len: u64) -> Vec<u8> {
    let mut buf = vec![0; len as usize];
    File::open(path)
        .unwrap()
        .read_exact_at(&mut buf, offset)
        .unwrap();
    buf
}

fn len(path: &Path) -> u64 {
    std::fs::metadata(path).unwrap().len()
}

/// Whether `bytes` are all `byte` (without printing megabytes on failure).
fn all(bytes: &[u8], byte: u8) -> bool {
    bytes.iter().all(|b| *b == byte)
}

fn temps_in(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".tmp-"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_keep_the_old_bytes_and_volumes_grow_from_them() {
    if skip("snapshots_keep_the_old_bytes_and_volumes_grow_from_them") {
        return;
    }
    let data = DataDir::new();
    let pool = data.open();
    let Backing::Image {
        image, direct_io, ..
    } = pool.backing().clone()
    else {
        panic!("an ext4 data dir needs the xfs image: {:?}", pool.backing())
    };
    assert_eq!(image, data.image());
    assert!(direct_io, "the loop device should do direct I/O");

    pool.create("vol-a", 1, None).await.unwrap();
    let vol = pool.path("vol-a");
    assert_eq!(len(&vol), GIB);
    // Sparse: a new volume takes no space.
    assert_eq!(
        std::os::unix::fs::MetadataExt::blocks(&std::fs::metadata(&vol).unwrap()),
        0
    );
    assert_eq!(read_at(&vol, 0, 4096), fill(0, 4096));
    write_at(&vol, 0, &fill(0xa1, 4 * MIB));
    write_at(&vol, 512 * MIB, &fill(0xa2, MIB));

    pool.snapshot("vol-a", "snap-a").await.unwrap();
    let snap = pool.snapshot_path("snap-a");
    assert_eq!(len(&snap), GIB);
    // Writing the volume after the snapshot leaves the snapshot's bytes alone.
    write_at(&vol, MIB, &fill(0xb1, MIB));
    assert!(all(&read_at(&vol, MIB, MIB), 0xb1));
    assert!(all(&read_at(&snap, MIB, MIB), 0xa1));
    assert!(all(&read_at(&snap, 0, MIB), 0xa1));
    assert!(all(&read_at(&snap, 512 * MIB, MIB), 0xa2));
    // Idempotent: a repeated snapshot keeps the first one's bytes.
    pool.snapshot("vol-a", "snap-a").await.unwrap();
    assert!(all(&read_at(&snap, MIB, MIB), 0xa1));

    // A volume from the snapshot, larger: the snapshot's bytes, then zeros.
    pool.create("vol-b", 2, Some("snap-a")).await.unwrap();
    let b = pool.path("vol-b");
    assert_eq!(len(&b), 2 * GIB);
    assert!(all(&read_at(&b, 0, 4 * MIB), 0xa1));
    assert!(all(&read_at(&b, 512 * MIB, MIB), 0xa2));
    assert!(all(&read_at(&b, 3 * GIB / 2, MIB), 0));
    write_at(&b, 0, &fill(0xc1, MIB));
    assert!(all(&read_at(&snap, 0, MIB), 0xa1), "the snapshot changed");
    assert!(all(&read_at(&vol, 0, MIB), 0xa1), "the volume changed");

    // Create is idempotent: an existing volume is left as it is.
    pool.create("vol-a", 5, None).await.unwrap();
    assert_eq!(len(&vol), GIB);
    assert!(all(&read_at(&vol, MIB, MIB), 0xb1));

    // Grow, never shrink.
    pool.grow("vol-b", 3).await.unwrap();
    pool.grow("vol-b", 3).await.unwrap();
    assert_eq!(len(&b), 3 * GIB);
    assert!(all(&read_at(&b, 0, MIB), 0xc1));
    let e = pool.grow("vol-b", 2).await.unwrap_err();
    assert!(matches!(e, HostError::Invalid { .. }), "{e}");
    assert_eq!(len(&b), 3 * GIB);

    // What is not there, and what is malformed.
    for e in [
        pool.grow("vol-none", 2).await.unwrap_err(),
        pool.snapshot("vol-none", "snap-x").await.unwrap_err(),
        pool.create("vol-x", 1, Some("snap-none"))
            .await
            .unwrap_err(),
    ] {
        assert!(matches!(e, HostError::NotFound(_)), "{e}");
    }
    let e = pool.create("vol-y", 0, None).await.unwrap_err();
    assert!(matches!(e, HostError::Invalid { .. }), "{e}");
    let e = pool.create("vol-../../x", 1, None).await.unwrap_err();
    assert!(matches!(e, HostError::Invalid { .. }), "{e}");
    pool.create("vol-big", 3, None).await.unwrap();
    pool.snapshot("vol-big", "snap-big").await.unwrap();
    let e = pool
        .create("vol-small", 2, Some("snap-big"))
        .await
        .unwrap_err();
    assert!(matches!(e, HostError::Invalid { .. }), "{e}");
    // Failed operations leave no file, under a final or a temporary name.
    assert!(temps_in(&pool.root().join("volumes")).is_empty());
    assert!(temps_in(&pool.root().join("snapshots")).is_empty());

    let (volumes, snapshots) = pool.list().await.unwrap();
    assert_eq!(volumes, ["vol-a", "vol-b", "vol-big"]);
    assert_eq!(snapshots, ["snap-a", "snap-big"]);

    // Delete, twice (idempotent); the clones made from what is deleted keep their bytes.
    pool.delete("vol-a").await.unwrap();
    pool.delete("vol-a").await.unwrap();
    pool.delete_snapshot("snap-a").await.unwrap();
    pool.delete_snapshot("snap-a").await.unwrap();
    assert!(!vol.exists() && !snap.exists());
    assert!(all(&read_at(&b, 512 * MIB, MIB), 0xa2));
    for id in ["vol-b", "vol-big"] {
        pool.delete(id).await.unwrap();
    }
    pool.delete_snapshot("snap-big").await.unwrap();
    assert_eq!(pool.list().await.unwrap(), (vec![], vec![]));

    pool.close().unwrap();
    data.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pool_survives_restarts_and_reboots() {
    if skip("the_pool_survives_restarts_and_reboots") {
        return;
    }
    let data = DataDir::new();
    let pool = data.open();
    let Backing::Image { device, .. } = pool.backing().clone() else {
        panic!("{:?}", pool.backing())
    };
    pool.create("vol-r", 1, None).await.unwrap();
    write_at(&pool.path("vol-r"), 0, &fill(0x42, MIB));
    pool.snapshot("vol-r", "snap-r").await.unwrap();

    // A server restart: the mount stays, the next open reuses it (not a second mount).
    drop(pool);
    assert_eq!(data.mounts().len(), 1);
    let pool = data.open();
    assert_eq!(data.mounts().len(), 1, "mounted twice");
    assert_eq!(data.loops(), std::slice::from_ref(&device));
    assert!(matches!(pool.backing(), Backing::Image { device: d, .. } if *d == device));
    assert!(all(&read_at(&pool.path("vol-r"), 0, MIB), 0x42));

    // A host reboot: nothing mounted or attached, the image alone; open mounts it again.
    pool.close().unwrap();
    data.assert_clean();
    let pool = data.open();
    assert_eq!(data.mounts().len(), 1);
    assert_eq!(
        pool.list().await.unwrap(),
        (vec!["vol-r".to_string()], vec!["snap-r".to_string()])
    );
    assert!(all(&read_at(&pool.path("vol-r"), 0, MIB), 0x42));
    assert!(all(&read_at(&pool.snapshot_path("snap-r"), 0, MIB), 0x42));

    // Close refuses while a volume is open, and changes nothing.
    let held = File::open(pool.path("vol-r")).unwrap();
    let again = data.open();
    let e = again.close().unwrap_err();
    assert!(matches!(e, HostError::Busy(_)), "{e}");
    assert_eq!(data.mounts().len(), 1);
    drop(held);
    pool.close().unwrap();
    data.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_mounted_elsewhere_is_never_mounted_twice() {
    if skip("an_image_mounted_elsewhere_is_never_mounted_twice") {
        return;
    }
    let data = DataDir::new();
    data.open().close().unwrap();
    // Someone mounts the image by hand somewhere else.
    let elsewhere = data.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    let out = Command::new("losetup")
        .args(["--find", "--show"])
        .arg(data.image())
        .output()
        .unwrap();
    let device = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(device.starts_with("/dev/loop"), "{device}");
    assert!(Command::new("mount")
        .arg(&device)
        .arg(&elsewhere)
        .status()
        .unwrap()
        .success());
    let e = EbsPool::open(data.path(), &opts())
        .err()
        .expect("opened twice");
    assert!(matches!(e, HostError::Busy(_)), "{e}");
    assert_eq!(data.mounts().len(), 1);
    assert!(Command::new("umount")
        .arg(&elsewhere)
        .status()
        .unwrap()
        .success());
    // A loop device left attached (as by an open interrupted before it mounted) is reused.
    let pool = data.open();
    assert!(matches!(pool.backing(), Backing::Image { device: d, .. } if *d == device));
    pool.close().unwrap();
    data.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_on_a_file_system_with_reflinks_is_used_as_is() {
    if skip("a_pool_on_a_file_system_with_reflinks_is_used_as_is") {
        return;
    }
    let data = DataDir::new();
    let outer = data.open();
    // A data dir inside the XFS pool: its file system clones files, so no image is made.
    let nested = outer.root().join("nested");
    let pool = EbsPool::open(&nested, &opts()).unwrap();
    assert_eq!(pool.backing(), &Backing::Native);
    assert!(!nested.join(IMAGE_NAME).exists());
    pool.create("vol-n", 1, None).await.unwrap();
    write_at(&pool.path("vol-n"), 0, &fill(7, MIB));
    pool.snapshot("vol-n", "snap-n").await.unwrap();
    write_at(&pool.path("vol-n"), 0, &fill(8, MIB));
    assert!(all(&read_at(&pool.snapshot_path("snap-n"), 0, MIB), 7));
    pool.close().unwrap();
    assert_eq!(
        data.mounts().len(),
        1,
        "closing a native pool unmounts nothing"
    );
    outer.close().unwrap();
    data.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_of_a_volume_being_written_is_consistent() {
    if skip("a_snapshot_of_a_volume_being_written_is_consistent") {
        return;
    }
    let data = DataDir::new();
    let pool = data.open();
    pool.create("vol-busy", 1, None).await.unwrap();
    let path = pool.path("vol-busy");
    // A writer rewrites 64 MiB in 4 MiB chunks, each chunk all one generation's byte, through
    // the page cache (dirty pages the snapshot has to write back first).
    const CHUNK: u64 = 4 * MIB;
    let stop = Arc::new(AtomicBool::new(false));
    let (first_pass, wait_first_pass) = std::sync::mpsc::channel();
    let writer = {
        let (stop, path) = (stop.clone(), path.clone());
        std::thread::spawn(move || {
            let f = File::options().write(true).open(&path).unwrap();
            let mut generation: u8 = 1;
            while !stop.load(Ordering::Relaxed) {
                for i in 0..16 {
                    f.write_all_at(&fill(generation, CHUNK), i * CHUNK).unwrap();
                }
                let _ = first_pass.send(());
                generation = generation % 250 + 1;
            }
            generation
        })
    };
    // Every chunk written once (so none may be zero in a snapshot), and more being written.
    wait_first_pass.recv().unwrap();
    let started = Instant::now();
    for n in 0..3 {
        pool.snapshot("vol-busy", &format!("snap-busy{n}"))
            .await
            .unwrap();
    }
    let took = started.elapsed();
    std::thread::sleep(Duration::from_millis(100));
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    eprintln!("three snapshots of a busy volume took {took:?}");
    for n in 0..3 {
        let snap = pool.snapshot_path(&format!("snap-busy{n}"));
        for i in 0..16 {
            let chunk = read_at(&snap, i * CHUNK, CHUNK);
            // Each write is either wholly in the snapshot or not at all.
            assert!(all(&chunk, chunk[0]), "snapshot {n}: chunk {i} is torn");
            assert_ne!(
                chunk[0], 0,
                "snapshot {n}: chunk {i} lost a write made before it"
            );
        }
    }
    pool.close().unwrap();
    data.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_volume_gives_its_space_back_to_the_host() {
    if skip("deleting_a_volume_gives_its_space_back_to_the_host") {
        return;
    }
    let data = DataDir::new();
    let pool = data.open();
    let allocated = || {
        std::fs::metadata(data.image()).map(|m| {
            use std::os::unix::fs::MetadataExt;
            m.blocks() * 512
        })
    };
    pool.create("vol-space", 1, None).await.unwrap();
    let before = allocated().unwrap();
    let path = pool.path("vol-space");
    for i in 0..16 {
        write_at(&path, i * 16 * MIB, &fill(0x33, 16 * MIB));
    }
    let written = allocated().unwrap();
    assert!(written >= before + 200 * MIB, "{before} -> {written}");
    pool.delete("vol-space").await.unwrap();
    // The pool is mounted with `discard`: XFS discards the freed blocks once its log commits,
    // and the loop device punches them out of the image.
    let deadline = Instant::now() + Duration::from_secs(20);
    let root = File::open(pool.root()).unwrap();
    loop {
        rustix::fs::syncfs(&root).unwrap();
        let now = allocated().unwrap();
        if now < written - 200 * MIB {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the image kept its space: {written} -> {now}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    drop(root);
    pool.close().unwrap();
    data.assert_clean();
}

/// With `GUREUM_EBS_KILL_DIR` set (by the test below, in a child process), snapshot and clone
/// a volume in a loop until killed; otherwise nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_for_the_kill_test() {
    let Some(dir) = std::env::var_os("GUREUM_EBS_KILL_DIR") else {
        return;
    };
    let pool = EbsPool::open(Path::new(&dir), &opts()).unwrap();
    for n in 0.. {
        pool.snapshot("vol-src", &format!("snap-k{n}"))
            .await
            .unwrap();
        pool.create(&format!("vol-k{n}"), 2, Some(&format!("snap-k{n}")))
            .await
            .unwrap();
        pool.grow(&format!("vol-k{n}"), 3).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_operation_leaves_no_half_file() {
    if skip("a_killed_operation_leaves_no_half_file") {
        return;
    }
    let data = DataDir::new();
    let pool = data.open();
    pool.create("vol-src", 1, None).await.unwrap();
    // Many extents, so that a clone takes a moment.
    let src = pool.path("vol-src");
    for i in 0..256 {
        write_at(&src, i * 2 * MIB, &fill(0x5c, 64 * 1024));
    }
    let volumes = pool.root().join("volumes");
    let snapshots = pool.root().join("snapshots");
    let mut saw_temp = false;
    for round in 0..5 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "child_for_the_kill_test", "--nocapture"])
            .env("GUREUM_EBS_KILL_DIR", data.path())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(400 + 150 * round));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        saw_temp |= !temps_in(&volumes).is_empty() || !temps_in(&snapshots).is_empty();
    }
    let (vols, snaps) = pool.list().await.unwrap();
    assert!(
        snaps.len() >= 3,
        "the child made too little progress: {snaps:?}"
    );
    eprintln!(
        "killed 5 times: {} volumes, {} snapshots, a temporary file caught: {saw_temp}",
        vols.len(),
        snaps.len()
    );
    // An interrupted mkfs and interrupted operations, as a kill at the worst moment leaves.
    std::fs::write(data.path().join(".tmp-ebs.xfs.1.1"), b"half an image").unwrap();
    std::fs::write(volumes.join(".tmp-vol-k999.img.1.2"), b"half").unwrap();
    std::fs::write(snapshots.join(".tmp-snap-k999.img.1.3"), b"half").unwrap();
    drop(pool);
    let pool = data.open();
    assert!(temps_in(&volumes).is_empty(), "{:?}", temps_in(&volumes));
    assert!(temps_in(&snapshots).is_empty());
    assert!(temps_in(data.path()).is_empty());
    let (vols, snaps) = pool.list().await.unwrap();
    assert!(!vols.contains(&"vol-k999".to_string()));
    // Everything under a final name is whole: its full size and the source's bytes.
    for id in &snaps {
        let p = pool.snapshot_path(id);
        assert_eq!(len(&p), GIB, "{id}");
        assert!(all(&read_at(&p, 100 * 2 * MIB, 64 * 1024), 0x5c), "{id}");
    }
    for id in vols.iter().filter(|v| *v != "vol-src") {
        let p = pool.path(id);
        // Made at 2 GiB, grown to 3 GiB: one of the two, never anything else.
        assert!([2 * GIB, 3 * GIB].contains(&len(&p)), "{id}: {}", len(&p));
        assert!(all(&read_at(&p, 100 * 2 * MIB, 64 * 1024), 0x5c), "{id}");
    }
    pool.close().unwrap();
    data.assert_clean();
}
