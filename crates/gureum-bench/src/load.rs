//! The closed-loop load generator: `connections` tasks, each owning one keep-alive
//! connection and sending one request after another (a new one as soon as the previous
//! answer is read), for a warm-up and then a measured window.
//!
//! Every request is signed just before it is sent (the signing time is kept out of the
//! latency and reported on its own). Latency is measured from just before the request is
//! written (or the connection opened, when the server closed the previous one) to the last
//! byte of the response, in microseconds, into one HDR histogram per connection, merged at
//! the end. Every response completed inside the measured window counts (also one whose
//! request went out during the warm-up: against a server slower than the warm-up, nothing
//! else would); a request still in flight when the window closes is abandoned, so a run
//! never outlasts warm-up + duration. The CPU time of this process (and optionally of the
//! server) is sampled at both ends of the window.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde_json::{json, Value};
use tokio::task::JoinSet;

use crate::cpu;
use crate::http1::Conn;
use crate::signer::RequestTemplate;

/// One run's settings.
pub struct LoadOpts {
    pub addr: SocketAddr,
    pub template: RequestTemplate,
    pub connections: usize,
    pub warmup: Duration,
    pub duration: Duration,
    pub server_pid: Option<u32>,
}

/// Longest latency the histograms hold, in microseconds (a minute).
const MAX_LATENCY_US: u64 = 60_000_000;

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).expect("valid histogram bounds")
}

/// What one connection (or, merged, the whole run) saw in the measured window.
struct Stats {
    latency_us: Histogram<u64>,
    statuses: BTreeMap<u16, u64>,
    io_errors: u64,
    reconnects: u64,
    body_bytes: u64,
    sign_ns: u64,
    first_error: Option<String>,
}

impl Stats {
    fn new() -> Self {
        Stats {
            latency_us: histogram(),
            statuses: BTreeMap::new(),
            io_errors: 0,
            reconnects: 0,
            body_bytes: 0,
            sign_ns: 0,
            first_error: None,
        }
    }

    fn merge(&mut self, o: Stats) {
        // Same bounds on both sides: adding cannot fail.
        let _ = self.latency_us.add(&o.latency_us);
        for (s, n) in o.statuses {
            *self.statuses.entry(s).or_default() += n;
        }
        self.io_errors += o.io_errors;
        self.reconnects += o.reconnects;
        self.body_bytes += o.body_bytes;
        self.sign_ns += o.sign_ns;
        if self.first_error.is_none() {
            self.first_error = o.first_error;
        }
    }

    fn note_error(&mut self, e: impl FnOnce() -> String) {
        if self.first_error.is_none() {
            self.first_error = Some(e());
        }
    }
}

async fn worker(
    addr: SocketAddr,
    template: Arc<RequestTemplate>,
    measure_from: Instant,
    end: Instant,
) -> anyhow::Result<Stats> {
    let mut st = Stats::new();
    let mut req = Vec::with_capacity(2048);
    let mut conn: Option<Conn> = None;
    loop {
        let s0 = Instant::now();
        if s0 >= end {
            break;
        }
        template.build(&mut req)?;
        let t0 = Instant::now();
        if conn.is_none() {
            match tokio::time::timeout_at(end.into(), Conn::connect(addr)).await {
                Err(_) => break,
                Ok(Ok(c)) => conn = Some(c),
                Ok(Err(e)) => {
                    if Instant::now() >= measure_from {
                        st.io_errors += 1;
                    }
                    st.note_error(|| format!("connect {addr}: {e}"));
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            }
        }
        let Some(c) = conn.as_mut() else { continue };
        // A request still in flight at the end is abandoned: neither counted nor an error.
        let outcome = match tokio::time::timeout_at(end.into(), c.round_trip(&req)).await {
            Err(_) => break,
            Ok(Ok(r)) => {
                if r.status != 200 {
                    st.note_error(|| {
                        let b = String::from_utf8_lossy(&r.body[..r.body.len().min(400)]);
                        format!("HTTP {}: {b}", r.status)
                    });
                }
                Ok((r.status, r.keep_alive, r.body.len()))
            }
            Ok(Err(e)) => Err(e),
        };
        let done = Instant::now();
        let measuring = done >= measure_from;
        match outcome {
            Ok((status, keep_alive, len)) => {
                if measuring {
                    let us = ((done - t0).as_micros() as u64).clamp(1, MAX_LATENCY_US);
                    st.latency_us.saturating_record(us);
                    *st.statuses.entry(status).or_default() += 1;
                    st.body_bytes += len as u64;
                    st.sign_ns += (t0 - s0).as_nanos() as u64;
                }
                if !keep_alive {
                    conn = None;
                    if measuring {
                        st.reconnects += 1;
                    }
                }
            }
            Err(e) => {
                if measuring {
                    st.io_errors += 1;
                }
                st.note_error(|| format!("request: {e}"));
                conn = None;
            }
        }
    }
    Ok(st)
}

/// What a run measured.
pub struct LoadResult {
    connections: usize,
    warmup: Duration,
    wall: Duration,
    stats: Stats,
    gen_cpu_s: f64,
    server_cpu_s: Option<f64>,
    machine_busy_s: f64,
    cores: usize,
}

/// Run the load and return what it measured.
pub async fn run(opts: LoadOpts) -> anyhow::Result<LoadResult> {
    let template = Arc::new(opts.template);
    let start = Instant::now();
    let measure_from = start + opts.warmup;
    let end = measure_from + opts.duration;
    let mut tasks = JoinSet::new();
    for _ in 0..opts.connections {
        tasks.spawn(worker(opts.addr, template.clone(), measure_from, end));
    }
    tokio::time::sleep_until(measure_from.into()).await;
    let sample = || -> anyhow::Result<(f64, Option<f64>, f64, Instant)> {
        Ok((
            cpu::cpu_seconds(None)?,
            opts.server_pid
                .map(|p| cpu::cpu_seconds(Some(p)))
                .transpose()?,
            cpu::machine_busy_seconds()?,
            Instant::now(),
        ))
    };
    let (cpu0, srv0, all0, w0) = sample()?;
    tokio::time::sleep_until(end.into()).await;
    let (cpu1, srv1, all1, w1) = sample()?;
    let mut stats = Stats::new();
    while let Some(r) = tasks.join_next().await {
        stats.merge(r??);
    }
    Ok(LoadResult {
        connections: opts.connections,
        warmup: opts.warmup,
        wall: w1 - w0,
        stats,
        gen_cpu_s: cpu1 - cpu0,
        server_cpu_s: srv0.zip(srv1).map(|(a, b)| b - a),
        machine_busy_s: all1 - all0,
        cores: cpu::cores(),
    })
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

fn round(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f
}

impl LoadResult {
    fn responses(&self) -> u64 {
        self.stats.statuses.values().sum()
    }

    fn non_200(&self) -> u64 {
        self.stats
            .statuses
            .iter()
            .filter(|(s, _)| **s != 200)
            .map(|(_, n)| n)
            .sum()
    }

    fn errors(&self) -> u64 {
        self.non_200() + self.stats.io_errors
    }

    fn rps(&self) -> f64 {
        self.responses() as f64 / self.wall.as_secs_f64()
    }

    fn gen_share(&self) -> f64 {
        self.gen_cpu_s / (self.wall.as_secs_f64() * self.cores as f64)
    }

    /// Cores busy with anything but this generator and the server (other processes, the
    /// kernel's work for other processes, steal), over the window.
    fn other_cores(&self) -> f64 {
        let own = self.gen_cpu_s + self.server_cpu_s.unwrap_or(0.0);
        ((self.machine_busy_s - own) / self.wall.as_secs_f64()).max(0.0)
    }

    fn pct(&self, q: f64) -> f64 {
        ms(self.stats.latency_us.value_at_quantile(q))
    }

    /// The machine-readable record (one JSON line).
    pub fn to_json(&self, target: &str, action: &str, signed: bool, threads: usize) -> Value {
        let wall = self.wall.as_secs_f64();
        let n = self.responses().max(1) as f64;
        let h = &self.stats.latency_us;
        json!({
            "kind": "load",
            "target": target,
            "action": action,
            "connections": self.connections,
            "signed": signed,
            "generator_threads": threads,
            "warmup_s": self.warmup.as_secs_f64(),
            "duration_s": round(wall, 3),
            "requests": self.responses(),
            "rps": round(self.rps(), 1),
            // No response in the window: no latency to speak of (not zero).
            "latency_ms": (self.responses() > 0).then(|| json!({
                "p50": self.pct(0.50),
                "p90": self.pct(0.90),
                "p99": self.pct(0.99),
                "p999": self.pct(0.999),
                "max": ms(h.max()),
                "mean": round(h.mean() / 1000.0, 3),
            })),
            "errors": self.errors(),
            "non_200": self.non_200(),
            "io_errors": self.stats.io_errors,
            "reconnects": self.stats.reconnects,
            "statuses": self.stats.statuses.iter().map(|(s, c)| (s.to_string(), json!(c))).collect::<serde_json::Map<_, _>>(),
            "response_bytes_mean": round(self.stats.body_bytes as f64 / n, 0),
            "sign_us_mean": round(self.stats.sign_ns as f64 / n / 1000.0, 2),
            "cores": self.cores,
            "gen_cpu_s": round(self.gen_cpu_s, 2),
            "gen_cpu_share": round(self.gen_share(), 4),
            "server_cpu_cores": self.server_cpu_s.map(|s| round(s / wall, 3)),
            "machine_busy_cores": round(self.machine_busy_s / wall, 3),
            "other_cpu_cores": round(self.other_cores(), 3),
            "first_error": self.stats.first_error,
        })
    }

    /// The human line.
    pub fn human(&self, target: &str, action: &str) -> String {
        if self.responses() == 0 {
            return format!(
                "{target} {action} c={}: no response completed in the window, {} errors{}",
                self.connections,
                self.errors(),
                self.stats
                    .first_error
                    .as_ref()
                    .map_or(String::new(), |e| format!("\n  first error: {e}"))
            );
        }
        let mut s = format!(
            "{target} {action} c={}: {:.0} req/s, p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms, {} errors, generator CPU {:.1}% of {} cores",
            self.connections,
            self.rps(),
            self.pct(0.5),
            self.pct(0.9),
            self.pct(0.99),
            ms(self.stats.latency_us.max()),
            self.errors(),
            self.gen_share() * 100.0,
            self.cores,
        );
        if let Some(srv) = self.server_cpu_s {
            s.push_str(&format!(
                ", server {:.2} cores",
                srv / self.wall.as_secs_f64()
            ));
        }
        s.push_str(&format!(", others {:.2} cores", self.other_cores()));
        if self.stats.reconnects > 0 {
            s.push_str(&format!(", {} reconnects", self.stats.reconnects));
        }
        if let Some(e) = &self.stats.first_error {
            s.push_str(&format!("\n  first error: {e}"));
        }
        s
    }
}
