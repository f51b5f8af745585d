//! Where and in which order instances get the host's CPUs.
//!
//! **Placement.** An instance is pinned to `vcpus` host CPUs (its cpuset), so that `nproc` in
//! the guest shows its vCPU count; its quota caps it at `vcpus` CPUs' worth of time as well.
//! The driver pins a new instance to the CPUs the fewest of its running instances are pinned
//! to, so a burst of launches spreads evenly over the host (with pins chosen by hash, ten
//! launches on two CPUs would typically put six or seven on one of them, and that CPU would
//! set the pace of the whole burst).
//!
//! **Boot order.** Instances launched together boot in launch order instead of all at the
//! same slow pace: during its first [`BOOT_WINDOW`], an instance's CPU weight is halved for
//! every instance launched before it that is still in its own window (the first keeps the
//! default weight, so a boot never outranks a running workload). The scheduler then serves
//! the earlier boots first and lets the later ones use what is left, so the first instances
//! are up (and their first SSH logins done) sooner while the last are ready no later than
//! before: the work is the same, its order is not. When a window ends, the weights of the
//! instances still in theirs are raised one step.
//!
//! A warm guest (booted ahead of any launch) boots at the smallest weight, so it only takes
//! CPU nobody else wants; once it becomes an instance it is ranked like a boot.
//!
//! The placement and weight rules are pure functions ([`pick_cpus`], [`boot_weights`]);
//! [`Scheduler`] keeps the bookkeeping and writes the cgroup files.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::cgroups::{self, CgroupMode, CGROUP_ROOT};

/// How long after its start an instance counts as booting for [`boot_weights`]: long enough
/// for a burst of boots and their first logins on a small host.
pub const BOOT_WINDOW: Duration = Duration::from_secs(10);

/// The default CPU weight of a cgroup (v1 `cpu.shares`, v2 `cpu.weight`) and the smallest.
fn weight_scale(mode: CgroupMode) -> (u64, u64) {
    match mode {
        CgroupMode::V2 => (100, 1),
        CgroupMode::V1 | CgroupMode::Hybrid => (1024, 2),
    }
}

/// The `want` CPUs (at least one, at most all) with the fewest instances pinned to them; ties
/// go round-robin from a hash of the id, so equal hosts still spread.
pub(crate) fn pick_cpus(
    online: &[u32],
    vcpus: u32,
    load: &BTreeMap<u32, usize>,
    id: &str,
) -> Vec<u32> {
    let n = online.len();
    if n == 0 {
        return vec![0];
    }
    let want = (vcpus as usize).clamp(1, n);
    let start = (fnv1a(id.as_bytes()) % n as u64) as usize;
    let mut order: Vec<(usize, usize, u32)> = online
        .iter()
        .enumerate()
        .map(|(i, &cpu)| {
            let busy = load.get(&cpu).copied().unwrap_or(0);
            (busy, (i + n - start) % n, cpu)
        })
        .collect();
    order.sort_unstable();
    let mut chosen: Vec<u32> = order.into_iter().take(want).map(|(_, _, c)| c).collect();
    chosen.sort_unstable();
    chosen
}

/// The CPU weight of each instance still in its boot window, in launch order: the default
/// halved once per earlier instance still booting, never below `min`. Instances whose window
/// has ended are returned with the default (to restore) in the second list.
pub(crate) fn boot_weights(
    started: &[(String, Instant)],
    now: Instant,
    window: Duration,
    (default, min): (u64, u64),
) -> (Vec<(String, u64)>, Vec<String>) {
    let mut booting: Vec<&(String, Instant)> = started
        .iter()
        .filter(|(_, t)| now.duration_since(*t) < window)
        .collect();
    booting.sort_by_key(|(id, t)| (*t, id.clone()));
    let weights = booting
        .iter()
        .enumerate()
        .map(|(rank, (id, _))| {
            let w = default.checked_shr(rank as u32).unwrap_or(0).max(min);
            (id.clone(), w)
        })
        .collect();
    let ended = started
        .iter()
        .filter(|(_, t)| now.duration_since(*t) >= window)
        .map(|(id, _)| id.clone())
        .collect();
    (weights, ended)
}

/// FNV-1a: a tiny stable hash (std's hasher is randomly seeded per process).
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

#[derive(Default)]
struct State {
    /// Instance -> the CPUs it is pinned to; `None` until read from the cgroups once (the
    /// instances of an earlier server keep running).
    pinned: Option<HashMap<String, Vec<u32>>>,
    /// Instances in (or just past) their boot window, with their start time.
    booting: Vec<(String, Instant)>,
    /// The weight last written for each booting instance.
    written: HashMap<String, u64>,
}

/// CPU placement and boot-order weights of one driver's instances.
pub(crate) struct Scheduler {
    mode: CgroupMode,
    parent: String,
    online: Vec<u32>,
    state: Mutex<State>,
}

impl Scheduler {
    pub fn new(mode: CgroupMode, parent: &str) -> Scheduler {
        Scheduler {
            mode,
            parent: parent.to_string(),
            online: cgroups::online_cpus(),
            state: Mutex::new(State::default()),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The cpuset (kernel list syntax) for a new boot of `id`, recorded as its placement.
    pub fn place(&self, id: &str, vcpus: u32) -> String {
        let mut state = self.state();
        let pinned = state.pinned.get_or_insert_with(|| self.read_pins());
        let mut load = BTreeMap::new();
        for (other, cpus) in pinned.iter() {
            if other != id {
                for cpu in cpus {
                    *load.entry(*cpu).or_insert(0) += 1;
                }
            }
        }
        let chosen = pick_cpus(&self.online, vcpus, &load, id);
        pinned.insert(id.to_string(), chosen.clone());
        chosen
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// `id` started booting now: rank it behind the instances still booting, and re-rank when
    /// its window ends.
    pub fn booted(self: &std::sync::Arc<Self>, id: &str) {
        {
            let mut state = self.state();
            state.booting.retain(|(other, _)| other != id);
            state.booting.push((id.to_string(), Instant::now()));
        }
        self.apply();
        let me = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(BOOT_WINDOW).await;
            me.apply();
        });
    }

    /// `id` boots in the background (a warm guest): the smallest weight, behind every
    /// instance, until [`Self::booted`] ranks it as one.
    pub fn background(&self, id: &str) {
        {
            let mut state = self.state();
            state.booting.retain(|(other, _)| other != id);
            state.written.remove(id);
        }
        self.write_weight(id, weight_scale(self.mode).1);
        self.apply();
    }

    /// `id` no longer runs: forget its placement and rank.
    pub fn forget(&self, id: &str) {
        let mut state = self.state();
        if let Some(p) = state.pinned.as_mut() {
            p.remove(id);
        }
        state.booting.retain(|(other, _)| other != id);
        state.written.remove(id);
        drop(state);
        self.apply();
    }

    /// Writes the weights [`boot_weights`] gives now (only those that changed).
    fn apply(&self) {
        let scale = weight_scale(self.mode);
        let mut state = self.state();
        let (weights, ended) = boot_weights(&state.booting, Instant::now(), BOOT_WINDOW, scale);
        for id in &ended {
            self.write_weight(id, scale.0);
            state.written.remove(id);
        }
        state.booting.retain(|(id, _)| !ended.contains(id));
        for (id, w) in weights {
            if state.written.get(&id) != Some(&w) {
                self.write_weight(&id, w);
                state.written.insert(id, w);
            }
        }
    }

    fn cgroup(&self, controller: &str, id: &str) -> PathBuf {
        let root = Path::new(CGROUP_ROOT);
        match self.mode {
            CgroupMode::V2 => root.join(&self.parent).join(id),
            CgroupMode::V1 | CgroupMode::Hybrid => {
                root.join(controller).join(&self.parent).join(id)
            }
        }
    }

    fn write_weight(&self, id: &str, weight: u64) {
        let file = match self.mode {
            CgroupMode::V2 => self.cgroup("cpu", id).join("cpu.weight"),
            CgroupMode::V1 | CgroupMode::Hybrid => self.cgroup("cpu", id).join("cpu.shares"),
        };
        // Gone already (stopped) is fine: there is nothing left to weigh.
        if let Err(e) = std::fs::write(&file, weight.to_string()) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::debug!(file = %file.display(), error = %e, "boot weight not set");
            }
        }
    }

    /// The pins of the instances already running (started by an earlier server).
    fn read_pins(&self) -> HashMap<String, Vec<u32>> {
        let dir = match self.mode {
            CgroupMode::V2 => Path::new(CGROUP_ROOT).join(&self.parent),
            CgroupMode::V1 | CgroupMode::Hybrid => {
                Path::new(CGROUP_ROOT).join("cpuset").join(&self.parent)
            }
        };
        let mut pins = HashMap::new();
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path().join("cpuset.cpus");
            if let (Some(name), Ok(text)) = (
                entry.file_name().to_str().map(str::to_string),
                std::fs::read_to_string(&path),
            ) {
                let cpus = cgroups::parse_cpu_list(&text);
                if !cpus.is_empty() && name.starts_with("i-") {
                    pins.insert(name, cpus);
                }
            }
        }
        pins
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(pairs: &[(u32, usize)]) -> BTreeMap<u32, usize> {
        pairs.iter().copied().collect()
    }

    #[test]
    fn picks_the_least_loaded_cpus() {
        let online = [0, 1, 2, 3];
        assert_eq!(pick_cpus(&online, 4, &load(&[]), "i-1"), vec![0, 1, 2, 3]);
        assert_eq!(pick_cpus(&online, 9, &load(&[]), "i-1"), vec![0, 1, 2, 3]);
        assert_eq!(pick_cpus(&online, 0, &load(&[]), "i-1").len(), 1);
        assert_eq!(
            pick_cpus(&online, 1, &load(&[(0, 2), (1, 1), (2, 0), (3, 1)]), "i-x"),
            vec![2]
        );
        assert_eq!(
            pick_cpus(&online, 2, &load(&[(0, 2), (1, 1), (2, 0), (3, 3)]), "i-x"),
            vec![1, 2]
        );
    }

    #[test]
    fn a_burst_spreads_evenly() {
        let online = [0, 1];
        let mut l = BTreeMap::new();
        for k in 0..10 {
            let cpu = pick_cpus(&online, 1, &l, &format!("i-{k:017x}"))[0];
            *l.entry(cpu).or_insert(0) += 1;
        }
        assert_eq!(l, load(&[(0, 5), (1, 5)]));
    }

    #[test]
    fn boots_are_weighted_in_launch_order() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let started = vec![
            ("i-b".to_string(), t0 + ms(10)),
            ("i-a".to_string(), t0),
            ("i-c".to_string(), t0 + ms(20)),
        ];
        let (w, ended) = boot_weights(&started, t0 + ms(30), ms(1000), (1024, 2));
        assert_eq!(
            w,
            vec![
                ("i-a".to_string(), 1024),
                ("i-b".to_string(), 512),
                ("i-c".to_string(), 256)
            ]
        );
        assert!(ended.is_empty());
        // The first one's window ends: the others move up, the first gets the default back.
        let (w, ended) = boot_weights(&started, t0 + ms(1005), ms(1000), (1024, 2));
        assert_eq!(w, vec![("i-b".to_string(), 1024), ("i-c".to_string(), 512)]);
        assert_eq!(ended, vec!["i-a".to_string()]);
        // Never below the minimum.
        let many: Vec<_> = (0..20).map(|k| (format!("i-{k:02}"), t0 + ms(k))).collect();
        let (w, _) = boot_weights(&many, t0 + ms(30), ms(1000), (100, 1));
        assert_eq!(w.last().unwrap().1, 1);
        assert_eq!(w[1].1, 50);
    }
}
