//! Monitoring: real counters of running instances, sampled every few seconds into a short
//! in-memory history per instance (the graphs of the Monitoring tab). CPU and memory come
//! from the instance's cgroup (v1 or v2), network bytes from its host-side veth. The history
//! lives only in memory: a server restart starts the graphs afresh.

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Cumulative counters of one instance at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RawSample {
    /// CPU time used by every process of the instance.
    pub cpu_ns: u64,
    /// Memory in use, page cache that can be dropped excluded.
    pub mem_bytes: u64,
    /// The instance's memory limit.
    pub mem_limit: u64,
    /// Bytes the instance received.
    pub net_in: u64,
    /// Bytes the instance sent.
    pub net_out: u64,
}

/// Where samples come from (the binary plugs in [`LinuxMetrics`]; tests plug in fakes).
pub trait HostMetrics: Send + Sync + 'static {
    fn sample(&self, instance_id: &str) -> Option<RawSample>;
}

/// The real host: cgroup files under `/sys/fs/cgroup` and `/sys/class/net/<veth>/statistics`.
pub struct LinuxMetrics {
    cgroup_parent: String,
    veth_of: Box<dyn Fn(&str) -> String + Send + Sync>,
}

impl LinuxMetrics {
    /// `cgroup_parent`: where the compute driver puts instances' cgroups (`gureum`);
    /// `veth_of`: the network driver's host-side interface name of an instance.
    pub fn new(
        cgroup_parent: &str,
        veth_of: impl Fn(&str) -> String + Send + Sync + 'static,
    ) -> LinuxMetrics {
        LinuxMetrics {
            cgroup_parent: cgroup_parent.to_string(),
            veth_of: Box::new(veth_of),
        }
    }
}

fn read_u64(p: &Path) -> Option<u64> {
    std::fs::read_to_string(p).ok()?.trim().parse().ok()
}

/// A `key value` line of a stat file (`memory.stat`, `cpu.stat`).
fn stat_field(p: &Path, key: &str) -> Option<u64> {
    std::fs::read_to_string(p)
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(' ')?.trim().parse().ok())
}

const CGROUP_ROOT: &str = "/sys/fs/cgroup";

impl HostMetrics for LinuxMetrics {
    fn sample(&self, id: &str) -> Option<RawSample> {
        if id.contains('/') || id.contains("..") {
            return None;
        }
        let root = Path::new(CGROUP_ROOT);
        let mut s = RawSample::default();
        if root.join("cgroup.controllers").exists() {
            // Unified (v2).
            let d = root.join(&self.cgroup_parent).join(id);
            s.cpu_ns = stat_field(&d.join("cpu.stat"), "usage_usec")? * 1000;
            let cur = read_u64(&d.join("memory.current")).unwrap_or(0);
            let inactive = stat_field(&d.join("memory.stat"), "inactive_file").unwrap_or(0);
            s.mem_bytes = cur.saturating_sub(inactive);
            s.mem_limit = read_u64(&d.join("memory.max")).unwrap_or(0);
        } else {
            let cpu_dir: Option<PathBuf> = ["cpuacct", "cpu,cpuacct", "cpu"]
                .iter()
                .map(|h| root.join(h).join(&self.cgroup_parent).join(id))
                .find(|d| d.join("cpuacct.usage").exists());
            s.cpu_ns = read_u64(&cpu_dir?.join("cpuacct.usage"))?;
            let m = root.join("memory").join(&self.cgroup_parent).join(id);
            let usage = read_u64(&m.join("memory.usage_in_bytes")).unwrap_or(0);
            let inactive = stat_field(&m.join("memory.stat"), "total_inactive_file").unwrap_or(0);
            s.mem_bytes = usage.saturating_sub(inactive);
            s.mem_limit = read_u64(&m.join("memory.limit_in_bytes")).unwrap_or(0);
        }
        // The host side of the veth: what it receives, the instance sent.
        let stats = Path::new("/sys/class/net")
            .join((self.veth_of)(id))
            .join("statistics");
        s.net_out = read_u64(&stats.join("rx_bytes")).unwrap_or(0);
        s.net_in = read_u64(&stats.join("tx_bytes")).unwrap_or(0);
        Some(s)
    }
}

/// How often running instances are sampled.
pub const SAMPLE_EVERY_MS: i64 = 5_000;
/// How many samples are kept per instance (ten minutes).
pub const KEEP: usize = 120;

/// One point of the graphs, as rates over the interval before it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    /// Milliseconds since the epoch.
    pub t: i64,
    /// Percent of the instance's vCPUs.
    pub cpu: f64,
    pub mem_mib: f64,
    pub mem_limit_mib: f64,
    /// Bytes per second.
    pub net_in: f64,
    pub net_out: f64,
}

impl Point {
    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "t": self.t,
            "cpu": (self.cpu * 10.0).round() / 10.0,
            "mem": (self.mem_mib * 10.0).round() / 10.0,
            "memLimit": self.mem_limit_mib.round(),
            "netIn": self.net_in.round(),
            "netOut": self.net_out.round(),
        })
    }
}

/// The recent samples of every running instance.
#[derive(Default)]
pub struct History {
    samples: Mutex<HashMap<String, VecDeque<(i64, RawSample)>>>,
}

impl History {
    /// Record a sample of each of `running`; forget instances no longer running.
    pub fn record(&self, source: &dyn HostMetrics, running: &HashSet<String>, now_ms: i64) {
        let fresh: Vec<(String, RawSample)> = running
            .iter()
            .filter_map(|id| source.sample(id).map(|s| (id.clone(), s)))
            .collect();
        let mut m = self.samples.lock().expect("history poisoned");
        m.retain(|id, _| running.contains(id));
        for (id, s) in fresh {
            let q = m.entry(id).or_default();
            // A counter that went back: the guest restarted; the history before it is moot.
            if q.back().is_some_and(|(_, b)| b.cpu_ns > s.cpu_ns) {
                q.clear();
            }
            q.push_back((now_ms, s));
            while q.len() > KEEP + 1 {
                q.pop_front();
            }
        }
    }

    /// The instance's graph points (one fewer than its samples).
    pub fn points(&self, id: &str, vcpus: u32) -> Vec<Point> {
        let m = self.samples.lock().expect("history poisoned");
        let Some(q) = m.get(id) else {
            return Vec::new();
        };
        q.iter()
            .zip(q.iter().skip(1))
            .map(|((t0, a), (t1, b))| rate(*t0, a, *t1, b, vcpus))
            .collect()
    }
}

fn rate(t0: i64, a: &RawSample, t1: i64, b: &RawSample, vcpus: u32) -> Point {
    let dt = ((t1 - t0).max(1)) as f64 / 1000.0;
    let mib = |x: u64| x as f64 / (1024.0 * 1024.0);
    Point {
        t: t1,
        cpu: (b.cpu_ns.saturating_sub(a.cpu_ns) as f64 / 1e9 / dt / vcpus.max(1) as f64 * 100.0)
            .min(100.0),
        mem_mib: mib(b.mem_bytes),
        // An unlimited v1 cgroup reports a huge number; no limit line then.
        mem_limit_mib: if b.mem_limit > (1 << 50) {
            0.0
        } else {
            mib(b.mem_limit)
        },
        net_in: b.net_in.saturating_sub(a.net_in) as f64 / dt,
        net_out: b.net_out.saturating_sub(a.net_out) as f64 / dt,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fake(Mutex<u64>);
    impl HostMetrics for Fake {
        fn sample(&self, id: &str) -> Option<RawSample> {
            if id != "i-1" {
                return None;
            }
            let mut n = self.0.lock().unwrap();
            *n += 1;
            Some(RawSample {
                cpu_ns: *n * 2_500_000_000,
                mem_bytes: 512 << 20,
                mem_limit: 1 << 30,
                net_in: *n * 5000,
                net_out: *n * 1000,
            })
        }
    }

    #[test]
    fn rates_from_counters() {
        let h = History::default();
        let f = Fake(Mutex::new(0));
        let running: HashSet<String> = ["i-1".to_string(), "i-2".to_string()].into();
        h.record(&f, &running, 0);
        h.record(&f, &running, 5000);
        let p = h.points("i-1", 1);
        assert_eq!(p.len(), 1);
        // 2.5 s of CPU in 5 s on one vCPU.
        assert!((p[0].cpu - 50.0).abs() < 0.01, "{p:?}");
        assert_eq!(p[0].mem_mib, 512.0);
        assert_eq!(p[0].net_in, 1000.0);
        assert!(h.points("i-2", 1).is_empty());
        h.record(&f, &HashSet::new(), 10_000);
        assert!(h.points("i-1", 1).is_empty(), "forgotten once not running");
    }

    #[test]
    fn stat_fields_parse() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("cpu.stat");
        std::fs::write(&p, "usage_usec 1234\nuser_usec 1000\n").unwrap();
        assert_eq!(stat_field(&p, "usage_usec"), Some(1234));
        assert_eq!(stat_field(&p, "usage"), None);
    }
}
