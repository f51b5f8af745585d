//! `gureum doctor`: what works on this host for instances — runc, cgroups, nftables, mount
//! interception, EBS volumes, KVM and TCG — each checked for real where that is cheap (KVM and TCG boot a test guest).

use std::path::{Path, PathBuf};
use std::process::Command;

fn check(name: &str, result: Result<String, String>) -> bool {
    match &result {
        Ok(what) => println!("ok    {name:<9} {what}"),
        Err(why) => println!("FAIL  {name:<9} {why}"),
    }
    result.is_ok()
}

fn version(program: &str, arg: &str) -> Result<String, String> {
    let out = Command::new(program)
        .arg(arg)
        .output()
        .map_err(|e| format!("{program}: {e}"))?;
    if !out.status.success() {
        return Err(format!("{program} {arg} failed"));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .unwrap_or("")
        .trim()
        .to_string())
}

fn cgroups() -> Result<String, String> {
    let root = Path::new("/sys/fs/cgroup");
    if root.join("cgroup.controllers").is_file() {
        return Ok("unified (v2)".into());
    }
    let v1: Vec<&str> = ["memory", "cpu", "pids", "cpuset"]
        .into_iter()
        .filter(|c| root.join(c).is_dir())
        .collect();
    if v1.len() < 3 {
        return Err(format!(
            "no memory/cpu/pids controllers under {}",
            root.display()
        ));
    }
    let hybrid = root.join("unified").is_dir();
    Ok(format!(
        "{} ({})",
        if hybrid { "hybrid" } else { "v1" },
        v1.join(", ")
    ))
}

/// A kernel to boot as the test guest: the newest VM image's in the shared cache.
fn cached_kernel() -> Option<PathBuf> {
    let builds = Path::new(gureum_image::DEFAULT_CACHE_DIR).join("builds");
    let mut kernels: Vec<PathBuf> = std::fs::read_dir(builds)
        .ok()?
        .flatten()
        .filter_map(|e| gureum_vm::disk::find_kernel(&e.path().join("current/rootfs")))
        .map(|(k, _)| k)
        .collect();
    kernels.sort();
    kernels.pop()
}

/// Each package group's state now, with the last install attempt's word where it failed.
fn groups(cache_dir: &Path) -> bool {
    use crate::packages::{ensure, Group, Options, Report, State, SystemApt};
    let last = Report::load(cache_dir);
    let mut apt = SystemApt::new();
    let mut core_ok = true;
    for group in Group::ALL {
        let now = ensure(&mut apt, group, Options::default());
        let label = format!("{} ({})", group.name(), group.feature());
        match (&now, last.as_ref().and_then(|r| r.state(group))) {
            (State::Unavailable { why, fix }, last) => {
                let tried = match last {
                    Some(State::Unavailable { why: lw, .. }) if lw != why => {
                        format!("; last install: {lw}")
                    }
                    _ => String::new(),
                };
                let word = if group == Group::Core { "FAIL" } else { "off " };
                println!("{word}  {label}: {why}{tried}\n      fix: {fix}");
                core_ok &= group != Group::Core;
            }
            _ => {
                let pkgs: Vec<&str> = group.needs().iter().map(|n| n.package).collect();
                println!("ok    {label}: {}", pkgs.join(", "));
            }
        }
    }
    if !crate::packages::is_root() {
        println!("FAIL  root: gureum up is not running as root, so instances cannot run");
        core_ok = false;
    }
    core_ok
}

pub fn run(cache_dir: &Path) -> anyhow::Result<()> {
    let mut all = groups(cache_dir);
    all &= check("runc", version("runc", "--version"));
    all &= check("cgroups", cgroups());
    all &= check("nftables", version("nft", "--version"));
    // Optional: without it guests cannot mount their attached volumes, and nothing else changes.
    check(
        "mounts",
        gureum_runtime::mount_interception_support(Path::new("runc")),
    );
    // Optional too: without it `CreateVolume` answers InsufficientVolumeCapacity.
    check(
        "volumes",
        version("mkfs.xfs", "-V")
            .map(|v| format!("EBS pool on an XFS image with reflinks ({v})"))
            .map_err(|why| format!("EBS volumes are unavailable: {why}")),
    );
    let qemu = Path::new("qemu-system-x86_64");
    match version("qemu-system-x86_64", "--version") {
        // VMs are optional: their group's line above says why they are off and how to fix it.
        Err(_) => {}
        Ok(v) => {
            check("qemu", Ok(v));
            let kernel = cached_kernel();
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let report = rt.block_on(gureum_vm::probe(
                qemu,
                kernel.as_deref(),
                gureum_vm::probe::PROBE_DEADLINE,
            ));
            let guest = match &kernel {
                Some(k) => format!("kernel {}", k.display()),
                None => "the multiboot stub (build debian-12-vm for a kernel test)".into(),
            };
            let kvm_ok = check(
                "kvm",
                report
                    .kvm
                    .clone()
                    .map(|t| format!("test guest ({guest}) booted in {:.1} s", t.as_secs_f64())),
            );
            all &= check(
                "tcg",
                report
                    .tcg
                    .clone()
                    .map(|t| format!("test guest ({guest}) booted in {:.1} s", t.as_secs_f64())),
            );
            if !kvm_ok {
                println!("warn  VMs run under TCG (software emulation): slower, but they work");
            }
        }
    }
    if !all {
        anyhow::bail!("some checks failed");
    }
    Ok(())
}
