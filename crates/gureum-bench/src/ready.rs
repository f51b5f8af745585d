//! Readiness: polling `GET /healthz` in a tight loop (a fresh connection every 200 µs until
//! one answers 200), and timing a server's start-up from `spawn` to that first 200, run
//! after run, stopping it with SIGTERM in between.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::{json, Value};

/// The readiness path of gureum.
const HEALTHZ: &str = "/healthz";

/// One `GET path`; true if it answered 200.
fn probe(addr: SocketAddr, host: &str, path: &str) -> bool {
    let attempt = || -> std::io::Result<bool> {
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(1))?;
        s.set_read_timeout(Some(Duration::from_secs(2)))?;
        s.set_nodelay(true)?;
        write!(
            s,
            "GET {path} HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\n\r\n"
        )?;
        let mut head = [0u8; 12];
        s.read_exact(&mut head)?;
        Ok(head.starts_with(b"HTTP/1.1 200") || head.starts_with(b"HTTP/1.0 200"))
    };
    attempt().unwrap_or(false)
}

/// Poll until `GET path` answers 200; `check` runs between attempts and may give up
/// (e.g. when the server process has exited). Returns the time spent polling.
pub fn wait_ready(
    addr: SocketAddr,
    host: &str,
    path: &str,
    timeout: Duration,
    mut check: impl FnMut() -> anyhow::Result<()>,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    loop {
        if probe(addr, host, path) {
            return Ok(started.elapsed());
        }
        check()?;
        anyhow::ensure!(
            started.elapsed() < timeout,
            "{addr} not ready after {timeout:?}"
        );
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// Resident set size of `pid`, KiB (`VmRSS` of `/proc/PID/status`).
pub fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmRSS")
}

/// SIGTERM `child` and wait (up to 10 s, then SIGKILL); returns the time it took to exit.
fn stop(child: &mut Child) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .context("running kill")?;
    anyhow::ensure!(status.success(), "kill -TERM {} failed", child.id());
    while child.try_wait()?.is_none() {
        if started.elapsed() > Duration::from_secs(10) {
            child.kill()?;
            child.wait()?;
            anyhow::bail!("server did not stop within 10 s of SIGTERM; killed it");
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok(started.elapsed())
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// Start `command` `runs` times; each time measure spawn → first 200 from `/healthz`,
/// read the RSS right then, and stop it with SIGTERM.
pub fn startup(
    addr: SocketAddr,
    host: &str,
    command: &[String],
    runs: usize,
    timeout: Duration,
    label: &str,
    pid_file: Option<&Path>,
) -> anyhow::Result<Value> {
    let (program, args) = command.split_first().context("no command")?;
    let (mut ready_ms, mut stop_ms, mut rss) = (Vec::new(), Vec::new(), Vec::new());
    for run in 0..runs {
        anyhow::ensure!(
            !probe(addr, host, HEALTHZ),
            "something already answers on {addr} before start {run}"
        );
        let t0 = Instant::now();
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {program}"))?;
        if let Some(f) = pid_file {
            std::fs::write(f, format!("{}\n", child.id()))?;
        }
        let waited = wait_ready(addr, host, HEALTHZ, timeout, || match child.try_wait()? {
            Some(status) => anyhow::bail!("{program} exited ({status}) before it was ready"),
            None => Ok(()),
        });
        let ready = t0.elapsed();
        if let Err(e) = waited {
            let _ = child.kill();
            let _ = child.wait();
            return Err(e);
        }
        rss.push(rss_kib(child.id()).unwrap_or(0) as f64);
        stop_ms.push(stop(&mut child)?.as_secs_f64() * 1e3);
        if let Some(f) = pid_file {
            let _ = std::fs::remove_file(f);
        }
        let ms = ready.as_secs_f64() * 1e3;
        eprintln!("{label}: start {} ready in {ms:.1} ms", run + 1);
        ready_ms.push(ms);
    }
    let max = ready_ms.iter().copied().fold(f64::NAN, f64::max);
    let min = ready_ms.iter().copied().fold(f64::NAN, f64::min);
    Ok(json!({
        "kind": "startup",
        "target": label,
        "runs": runs,
        "ready_ms": ready_ms.iter().map(|x| round1(*x)).collect::<Vec<_>>(),
        "median_ms": round1(median(&ready_ms)),
        "min_ms": round1(min),
        "max_ms": round1(max),
        "stop_ms_median": round1(median(&stop_ms)),
        "rss_at_ready_kib_median": median(&rss),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(rss_kib(std::process::id()).unwrap() > 0);
    }
}
