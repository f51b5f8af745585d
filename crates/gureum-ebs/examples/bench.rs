//! The EBS pool's figures (root; run by `scripts/bench-ebs`): in a fresh data dir on the disk
//! of `BENCH_EBS_DIR` (default `target/bench-ebs`), open a pool with the default options,
//! create an 8 GiB volume and fill it with `BENCH_EBS_FILL_GIB` (default 8) GiB by
//! `dd oflag=direct`, then time a snapshot of it, a volume from that snapshot and a snapshot
//! while `dd` writes to the volume; then the same for a volume of 131072 scattered 4 KiB
//! writes (as many extents, the snapshot's worst case); then sequential direct writes of
//! `BENCH_EBS_WRITE_MIB` (default 1024) MiB to a plain file next to the data dir and to a
//! fresh pool volume, alternated `BENCH_EBS_ROUNDS` (default 2) times. Prints a Markdown
//! section; with `BENCH_DOC=docs/BENCHMARKS.md` also rewrites its `bench:ebs` section there.
//! Removes everything it made, also the pool's mount and loop device; gives up (and cleans
//! up) rather than let the host disk's free space fall under 1.5 GiB.

use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use gureum_ebs::{Backing, EbsPool, PoolOptions};
use gureum_host_api::{HostResult, Volumes};

/// The free space the benchmark never eats into, for everyone else on the disk.
const RESERVE: u64 = 3 << 29;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn free_bytes(path: &Path) -> u64 {
    let st = rustix::fs::statvfs(path).expect("statvfs");
    st.f_bavail * st.f_frsize
}

/// `dd` of `mib` MiB of zeros to `of` with direct I/O, synced.
fn dd(of: &Path, mib: u64) -> Child {
    Command::new("dd")
        .arg("if=/dev/zero")
        .arg(format!("of={}", of.display()))
        .args(["bs=4M", "oflag=direct", "conv=notrunc,fsync"])
        .arg(format!("count={}", mib / 4))
        .stderr(Stdio::null())
        .spawn()
        .expect("dd runs")
}

/// Wait for a `dd`, killing it if the disk's free space falls under [`RESERVE`].
fn wait(mut child: Child, of: &Path, disk: &Path) -> Result<(), String> {
    loop {
        if let Some(status) = child.try_wait().expect("dd") {
            return if status.success() {
                Ok(())
            } else {
                Err(format!("dd failed: {status}"))
            };
        }
        if free_bytes(disk) < RESERVE {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "the host disk is nearly full ({} MiB free) while writing {}",
                free_bytes(disk) >> 20,
                of.display()
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Time a `dd` of `mib` MiB to `of`; MiB/s.
fn write_speed(of: &Path, mib: u64, disk: &Path) -> Result<(Duration, f64), String> {
    let started = Instant::now();
    wait(dd(of, mib), of, disk)?;
    let took = started.elapsed();
    Ok((took, mib as f64 / took.as_secs_f64()))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

async fn timed(f: impl std::future::Future<Output = HostResult<()>>) -> Duration {
    let started = Instant::now();
    f.await.expect("pool operation");
    started.elapsed()
}

/// The extent count `filefrag` reports for a file.
fn extents(path: &Path) -> String {
    let out = Command::new("filefrag").arg(path).output();
    out.ok()
        .and_then(|o| {
            let text = String::from_utf8_lossy(&o.stdout).into_owned();
            let (_, tail) = text.rsplit_once(": ")?;
            tail.split_whitespace().next().map(String::from)
        })
        .unwrap_or_else(|| "?".into())
}

/// `writes` 4 KiB direct writes spread evenly over the file's first 8 GiB.
fn scatter(path: &Path, writes: u64) {
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::File::options()
        .write(true)
        .custom_flags(rustix::fs::OFlags::DIRECT.bits() as i32)
        .open(path)
        .expect("open");
    // O_DIRECT wants an aligned buffer: a 4 KiB-aligned window of a larger one.
    let buf = vec![0x5au8; 8192];
    let skip = buf.as_ptr().align_offset(4096);
    let block = &buf[skip..skip + 4096];
    let stride = (8u64 << 30) / writes;
    for i in 0..writes {
        f.write_all_at(block, i * stride).expect("write");
    }
    f.sync_all().expect("sync");
}

struct Report {
    rows: Vec<(String, String, String)>,
}

impl Report {
    fn row(&mut self, what: &str, measured: String, target: &str) {
        println!("{what}: {measured}");
        self.rows.push((what.into(), measured, target.into()));
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let base = PathBuf::from(std::env::var("BENCH_EBS_DIR").unwrap_or("target/bench-ebs".into()));
    std::fs::create_dir_all(&base).expect("bench dir");
    let fill_gib = env_u64("BENCH_EBS_FILL_GIB", 8).clamp(1, 8);
    let write_mib = env_u64("BENCH_EBS_WRITE_MIB", 1024).max(4);
    let rounds = env_u64("BENCH_EBS_ROUNDS", 2).max(1);
    // The fill (the pool's log besides) and the reserve must fit.
    let need = (fill_gib << 30) + (1 << 30) + RESERVE;
    if free_bytes(&base) < need {
        eprintln!(
            "{} has {} MiB free; the benchmark needs {} MiB (BENCH_EBS_FILL_GIB fills less)",
            base.display(),
            free_bytes(&base) >> 20,
            need >> 20
        );
        std::process::exit(2);
    }
    let data = tempfile::Builder::new()
        .prefix("data.")
        .tempdir_in(&base)
        .expect("data dir");
    let mut report = Report { rows: Vec::new() };
    let started = Instant::now();
    let pool = EbsPool::open(data.path(), &PoolOptions::default()).expect("pool opens");
    let backing = match pool.backing() {
        Backing::Native => "the data dir's own file system (reflinks)".to_string(),
        Backing::Image {
            device, direct_io, ..
        } => format!(
            "an XFS image on {device} (direct I/O {})",
            if *direct_io { "on" } else { "off" }
        ),
    };
    report.row(
        "open a new pool (mkfs.xfs, losetup, mount)",
        ms(started.elapsed()),
        "–",
    );
    let result = run(&pool, &base, fill_gib, write_mib, rounds, &mut report).await;
    // Whatever happened: nothing of the benchmark's stays.
    let (volumes, snapshots) = pool.list().await.expect("list");
    for id in volumes {
        pool.delete(&id).await.expect("delete");
    }
    for id in snapshots {
        pool.delete_snapshot(&id).await.expect("delete snapshot");
    }
    let _ = std::fs::remove_file(base.join("plain.img"));
    let started = Instant::now();
    pool.close().expect("pool closes");
    report.row(
        "close the pool (umount, losetup -d)",
        ms(started.elapsed()),
        "–",
    );
    drop(data);
    if let Err(why) = result {
        eprintln!("gave up: {why}");
        std::process::exit(1);
    }

    let mut section = String::from("## EBS pool (`scripts/bench-ebs`)\n\n");
    section.push_str(&format!(
        "Measured {} on this machine (2 cores, one virtual disk), release build, as root; the \
         pool is {backing}, in a fresh data dir on the same disk as the plain file. Writes \
         are of zeros with `dd bs=4M oflag=direct conv=fsync`.\n\n\
         | figure | measured | target |\n| --- | --- | --- |\n",
        today()
    ));
    for (what, measured, target) in &report.rows {
        section.push_str(&format!("| {what} | {measured} | {target} |\n"));
    }
    println!("\n{section}");
    if let Some(doc) = std::env::var_os("BENCH_DOC").filter(|d| !d.is_empty()) {
        splice(Path::new(&doc), "ebs", &section);
        println!("updated {}", Path::new(&doc).display());
    }
}

async fn run(
    pool: &EbsPool,
    base: &Path,
    fill_gib: u64,
    write_mib: u64,
    rounds: u64,
    report: &mut Report,
) -> Result<(), String> {
    let within = |took: Duration| {
        if took <= Duration::from_secs(1) {
            ""
        } else {
            " (over)"
        }
    };
    let took = timed(pool.create("vol-bench", 8, None)).await;
    report.row("create an 8 GiB volume", ms(took), "–");
    let vol = pool.path("vol-bench");
    let (took, speed) = write_speed(&vol, fill_gib * 1024, base)?;
    report.row(
        &format!("fill it: {fill_gib} GiB, dd oflag=direct"),
        format!("{:.1} s ({speed:.0} MiB/s)", took.as_secs_f64()),
        "–",
    );
    let took = timed(pool.snapshot("vol-bench", "snap-bench")).await;
    report.row(
        &format!(
            "snapshot of the written 8 GiB volume ({} extents)",
            extents(&vol)
        ),
        format!("{}{}", ms(took), within(took)),
        "≤ 1 s",
    );
    let took = timed(pool.create("vol-fromsnap", 8, Some("snap-bench"))).await;
    report.row("volume from that snapshot (8 GiB)", ms(took), "–");

    // A snapshot while the volume is being written (copy-on-write against the first
    // snapshot, as a guest would write after it).
    // 512 MiB: a few seconds of writing, and little copy-on-write space on a full disk.
    let writer = dd(&vol, 512);
    std::thread::sleep(Duration::from_millis(1000));
    let took = timed(pool.snapshot("vol-bench", "snap-busy")).await;
    wait(writer, &vol, base)?;
    report.row(
        "snapshot of the 8 GiB volume while dd writes to it",
        format!("{}{}", ms(took), within(took)),
        "≤ 1 s",
    );
    for id in ["vol-fromsnap", "vol-bench"] {
        pool.delete(id).await.expect("delete");
    }
    for id in ["snap-bench", "snap-busy"] {
        pool.delete_snapshot(id).await.expect("delete snapshot");
    }

    // Scattered writes make as many extents as writes (a guest's random writes through
    // direct I/O, as QEMU with cache=none or a direct-I/O loop device issue them); a clone
    // costs per extent.
    for writes in [16_384u64, 131_072] {
        pool.create("vol-frag", 8, None).await.expect("create");
        let frag = pool.path("vol-frag");
        scatter(&frag, writes);
        let took = timed(pool.snapshot("vol-frag", "snap-frag")).await;
        report.row(
            &format!(
                "snapshot of an 8 GiB volume of {writes} scattered 4 KiB direct writes ({} extents)",
                extents(&frag)
            ),
            format!("{}{}", ms(took), within(took)),
            "≤ 1 s",
        );
        let took = timed(pool.create("vol-fragclone", 8, Some("snap-frag"))).await;
        report.row("volume from that snapshot", ms(took), "–");
        pool.delete("vol-frag").await.expect("delete");
        pool.delete("vol-fragclone").await.expect("delete");
        pool.delete_snapshot("snap-frag").await.expect("delete");
    }

    // Sequential direct writes, plain file against pool volume, alternated.
    let plain = base.join("plain.img");
    let (mut host, mut in_pool) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let _ = std::fs::remove_file(&plain);
        host.push(write_speed(&plain, write_mib, base)?.1);
        std::fs::remove_file(&plain).expect("remove plain file");
        pool.create("vol-speed", 8, None).await.expect("create");
        in_pool.push(write_speed(&pool.path("vol-speed"), write_mib, base)?.1);
        pool.delete("vol-speed").await.expect("delete");
    }
    let (host, in_pool) = (median(host), median(in_pool));
    report.row(
        &format!("sequential write, {write_mib} MiB, to a plain file on the host's disk"),
        format!("{host:.0} MiB/s (median of {rounds})"),
        "–",
    );
    report.row(
        "the same into a new pool volume",
        format!(
            "{in_pool:.0} MiB/s (median of {rounds}): {:.0} % of the host's",
            100.0 * in_pool / host
        ),
        "≥ 90 %",
    );
    Ok(())
}

fn today() -> String {
    let out = Command::new("date")
        .arg("+%Y-%m-%d")
        .output()
        .expect("date");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Replace the section between `<!-- bench:NAME:start -->` and `<!-- bench:NAME:end -->` in
/// `doc` with `body`, or append it.
fn splice(doc: &Path, name: &str, body: &str) {
    let text = std::fs::read_to_string(doc).unwrap_or_default();
    let (start, end) = (
        format!("<!-- bench:{name}:start -->"),
        format!("<!-- bench:{name}:end -->"),
    );
    let block = format!("{start}\n{body}{end}");
    let new = match (text.find(&start), text.find(&end)) {
        (Some(a), Some(b)) if a < b => format!("{}{block}{}", &text[..a], &text[b + end.len()..]),
        _ => format!("{}\n\n{block}\n", text.trim_end()),
    };
    std::fs::write(doc, new).expect("write the benchmarks doc");
}
