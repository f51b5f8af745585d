//! EBS attach on containers, timed (issue 17's figure: attach until the device is visible in
//! the guest, p50 ≤ 200 ms). Boots one container from the test rootfs (`$GUREUM_TEST_ROOTFS`
//! or /var/cache/gureum-test/rootfs, see tests/runc.rs), then attaches a sparse 64 MiB volume
//! N times (default 20), each on a new loop device, timing from the call until the node is in
//! the guest's `/dev`; attaches it again (idempotent, size re-read) and detaches it. Prints a
//! table; with `--doc FILE` it also rewrites its section of that file. Needs root and runc;
//! `scripts/bench-attach` runs it.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use gureum_host_api::VolumeAttachment;
use gureum_runtime::{ContainerSpec, DriverOptions, RuncDriver};

const SECTION: &str = "ebs-attach";

fn pct(xs: &[f64], p: f64) -> f64 {
    let mut xs = xs.to_vec();
    xs.sort_by(f64::total_cmp);
    xs[((p / 100.0 * (xs.len() - 1) as f64).round() as usize).min(xs.len() - 1)]
}

fn main() {
    let mut args = std::env::args().skip(1);
    let (mut doc, mut n) = (None, 20usize);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--doc" => doc = args.next().map(PathBuf::from),
            other => n = other.parse().expect("usage: attach_bench [--doc FILE] [N]"),
        }
    }
    let rootfs = std::env::var_os("GUREUM_TEST_ROOTFS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/gureum-test/rootfs"));
    if !rootfs.join("sbin/init").exists() {
        eprintln!(
            "skipped: no test rootfs at {} (run the runtime's integration tests once)",
            rootfs.display()
        );
        return;
    }
    let state = PathBuf::from(format!("/tmp/gureum-attach-bench-{}", std::process::id()));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut opts = DriverOptions::new(&state);
    opts.console_relay = None;
    let d = RuncDriver::with_options(opts).expect("driver (root and runc needed)");
    let spec = ContainerSpec {
        id: "i-0a77ac4be4c400001".into(),
        image_rootfs: rootfs,
        volume_gib: 8,
        hostname: "ip-172-31-5-10".into(),
        vcpus: 1,
        memory_mib: 512,
        pids_max: 1024,
        netns: None,
        inject: vec![],
        warm: false,
    };
    let result = rt.block_on(run(&d, &spec, &state, n));
    let _ = rt.block_on(d.destroy(&spec.id));
    let _ = std::fs::remove_dir_all(&state);
    let rows = result.expect("benchmark");
    let table = [
        "| figure | measured | target |".to_string(),
        "| --- | --- | --- |".to_string(),
    ]
    .into_iter()
    .chain(rows.iter().map(|(a, b, c)| format!("| {a} | {b} | {c} |")))
    .collect::<Vec<_>>()
    .join("\n");
    println!("{table}");
    if let Some(doc) = doc {
        write_section(&doc, &table, n);
    }
}

type Row = (String, String, &'static str);

async fn run(
    d: &RuncDriver,
    spec: &ContainerSpec,
    state: &Path,
    n: usize,
) -> Result<Vec<Row>, String> {
    let e = |e: gureum_runtime::RuntimeError| e.to_string();
    d.start(spec).await.map_err(e)?;
    // Measured on a booted guest, not against its boot.
    let t = Instant::now();
    loop {
        let out = d
            .exec(&spec.id, &["systemctl", "is-system-running"])
            .await
            .map_err(e)?;
        let s = String::from_utf8_lossy(&out.stdout);
        if s.trim() == "running" || s.trim() == "degraded" {
            break;
        }
        if t.elapsed() > Duration::from_secs(60) {
            return Err(format!("guest did not boot: {s}"));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let pid = d
        .init_pid(&spec.id)
        .await
        .map_err(e)?
        .ok_or("not running")?;
    let file = state.join(".vol-0a77ac4be4c400001.img");
    std::fs::File::create(&file)
        .and_then(|f| f.set_len(64 << 20))
        .map_err(|e| e.to_string())?;
    let att = VolumeAttachment {
        volume_id: "vol-0a77ac4be4c400001".into(),
        device: "/dev/sdf".into(),
        path: file,
        read_only: false,
    };
    let node = PathBuf::from(format!("/proc/{pid}/root/dev/xvdf"));
    let visible = || {
        use std::os::unix::fs::FileTypeExt;
        std::fs::symlink_metadata(&node).is_ok_and(|m| m.file_type().is_block_device())
    };
    let (mut attach, mut again, mut detach) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..n {
        let t = Instant::now();
        d.attach_volume(&spec.id, &att).await.map_err(e)?;
        while !visible() {
            if t.elapsed() > Duration::from_secs(5) {
                return Err("the node never appeared".into());
            }
            tokio::task::yield_now().await;
        }
        attach.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        d.attach_volume(&spec.id, &att).await.map_err(e)?;
        again.push(t.elapsed().as_secs_f64() * 1e3);
        // Checked from inside too (outside the timing: `runc exec` alone takes ~50 ms).
        let out = d
            .exec(&spec.id, &["test", "-b", "/dev/xvdf"])
            .await
            .map_err(e)?;
        if !out.status.success() {
            return Err("not a block device in the guest".into());
        }
        let t = Instant::now();
        d.detach_volume(&spec.id, &att.volume_id, false)
            .await
            .map_err(e)?;
        detach.push(t.elapsed().as_secs_f64() * 1e3);
        if visible() {
            return Err("the node outlived the detach".into());
        }
    }
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let three = |xs: &[f64]| {
        format!(
            "{:.1} / {:.1} / {:.1} ms",
            pct(xs, 50.0),
            pct(xs, 90.0),
            pct(xs, 100.0)
        )
    };
    Ok(vec![
        (
            format!(
                "attach → node visible in the guest, new loop device (p50 / p90 / max, {n} runs)"
            ),
            three(&attach),
            "≤ 200 ms p50",
        ),
        (
            "attach again: idempotent, size re-read (p50 / p90 / max)".into(),
            three(&again),
            "–",
        ),
        (
            "detach, not mounted: node, rule and loop device gone (p50 / p90 / max)".into(),
            three(&detach),
            "–",
        ),
        (
            "load average during the run (other work on the machine)".into(),
            load.split(' ').next().unwrap_or("?").to_string(),
            "–",
        ),
    ])
}

/// Rewrites this benchmark's section of `doc` (between its markers), or appends it.
fn write_section(doc: &Path, table: &str, n: usize) {
    let (start, end) = (
        format!("<!-- bench:{SECTION}:start -->"),
        format!("<!-- bench:{SECTION}:end -->"),
    );
    let date = String::from_utf8(
        std::process::Command::new("date")
            .arg("+%Y-%m-%d")
            .output()
            .map(|o| o.stdout)
            .unwrap_or_default(),
    )
    .unwrap_or_default();
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let section = format!(
        "{start}\n## EBS attach (containers)\n\nMeasured {} on this machine ({cores} cores), release build, \
         `scripts/bench-attach`: the runc driver alone (no server), one booted Debian container, a \
         sparse 64 MiB volume attached and detached {n} times as `/dev/sdf` (node `/dev/xvdf`). \
         \"Visible\" is the node being a block device in the guest's `/dev`, seen through \
         `/proc/<pid>/root`; each run also checks it from inside with `runc exec test -b`, outside \
         the timing.\n\n{table}\n{end}",
        date.trim()
    );
    let old = std::fs::read_to_string(doc).unwrap_or_else(|_| "# Benchmarks\n".into());
    let new = match (old.find(&start), old.find(&end)) {
        (Some(a), Some(b)) => format!("{}{section}{}", &old[..a], &old[b + end.len()..]),
        _ => format!("{}\n\n{section}\n", old.trim_end()),
    };
    std::fs::write(doc, new).expect("write the benchmark doc");
}
