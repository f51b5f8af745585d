//! Benchmark: EBS volume hot-plug on a VM (`scripts/bench-vm-volumes` runs it as root).
//!
//! Boots one VM of the given image under the given accelerator with a user-data script that
//! reports on the serial console each time an NVMe disk appears or goes, then attaches and
//! detaches a 64 MiB sparse volume `rounds` times and prints a table: the attach's QMP work,
//! attach until the guest has the disk in /sys/block (its report on the console), and detach
//! until the guest has released it.
//!
//! Usage: bench_volumes [rounds] [kvm|tcg] (the image: as the host tests find it)

use std::time::{Duration, Instant};

use gureum_vm::{Accel, VmDriver, VmOptions, Volume};

#[path = "../tests/common/mod.rs"]
mod common;

const SCRIPT: &str = r#"#!/bin/sh
exec >/dev/ttyS0 2>&1
n=1
echo "BENCH-VOL ready"
while :; do
	while :; do set -- /sys/block/nvme*; [ -e "$1" ] && break; sleep 0.01; done
	echo "BENCH-VOL seen $n end at $(cut -d' ' -f1 /proc/uptime)"
	while :; do set -- /sys/block/nvme*; [ -e "$1" ] || break; sleep 0.01; done
	echo "BENCH-VOL gone $n end"
	n=$((n + 1))
done
"#;

async fn wait_console(d: &VmDriver, id: &str, needle: &str, timeout: Duration) -> Duration {
    let t = Instant::now();
    loop {
        let out = d.console_output(id, 64 << 10).expect("console");
        if String::from_utf8_lossy(&out).contains(needle) {
            return t.elapsed();
        }
        assert!(t.elapsed() < timeout, "no {needle:?} on the console");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

fn row(name: &str, mut v: Vec<Duration>) -> String {
    v.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    format!(
        "| {name} | {:.0} ms | {:.0} ms | {} |",
        ms(v[v.len() / 2]),
        ms(*v.last().expect("rounds")),
        v.len()
    )
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let Some(rootfs) = common::bootable_image() else {
        std::process::exit(1);
    };
    let rounds: usize = args
        .next()
        .map(|r| r.parse().expect("rounds"))
        .unwrap_or(10);
    let accel = match args.next().as_deref() {
        Some("kvm") => Accel::Kvm,
        _ => Accel::Tcg,
    };
    let state = std::env::temp_dir().join(format!("gureum-bench-vol-{}", std::process::id()));
    let id = "i-0be4c4be4c4be4c40";
    let vol_id = "vol-0be4c4be4c4be4c40";
    let _cleanup = common::Cleanup(id, state.clone());
    let d = VmDriver::new(VmOptions::new(&state, accel)).expect("driver");
    let vol_path = state.join(format!("{vol_id}.raw"));
    std::fs::File::create(&vol_path)
        .and_then(|f| f.set_len(64 << 20))
        .expect("volume file");
    let volume = Volume::new(vol_id, "/dev/sdf", &vol_path, false);
    let spec = common::spec(id, rootfs, "bench-vol", Some(SCRIPT));
    let result = async {
        d.start(&spec).await.expect("start");
        let boot = wait_console(&d, id, "BENCH-VOL ready", Duration::from_secs(900)).await;
        eprintln!("booted in {:.1} s", boot.as_secs_f64());
        let (mut qmp, mut visible, mut detach) = (vec![], vec![], vec![]);
        for n in 1..=rounds {
            let t = Instant::now();
            d.attach_volume(id, &volume).await.expect("attach");
            qmp.push(t.elapsed());
            wait_console(&d, id, &format!("seen {n} end"), Duration::from_secs(60)).await;
            visible.push(t.elapsed());
            let t = Instant::now();
            d.detach_volume(id, vol_id, false).await.expect("detach");
            detach.push(t.elapsed());
            wait_console(&d, id, &format!("gone {n} end"), Duration::from_secs(60)).await;
        }
        println!("accelerator: {}, rounds: {rounds}", accel.as_str());
        println!("| figure | p50 | max | n |");
        println!("| --- | --- | --- | --- |");
        println!(
            "{}",
            row("attach: QMP (add-fd, blockdev-add, device_add)", qmp)
        );
        println!("{}", row("attach until in the guest's /sys/block", visible));
        println!("{}", row("detach until the guest released it", detach));
        // The guest kernel's own account of the last hot-plug, for reading the figures.
        let console = String::from_utf8_lossy(&d.console_output(id, 16 << 10).unwrap_or_default())
            .into_owned();
        for line in console
            .lines()
            .filter(|l| l.contains("nvme") || l.contains("BENCH-VOL"))
        {
            eprintln!("guest: {}", line.trim());
        }
    }
    .await;
    let _ = d.destroy(id).await;
    let _ = std::fs::remove_dir_all(&state);
    result
}
