//! The warm pool: guests of the default image booted ahead of any launch, each under an
//! instance id of its own, waiting for an instance. A `RunInstances` of that image (container
//! hypervisor, default volume size) takes one: the new instance simply gets the waiting
//! guest's id, and its launch then does what any launch does (network attach, security
//! groups, public address, `start`), except that the compute driver, finding the guest already
//! running, hands it the instance (instance type limits, hostname, files) instead of booting.
//! The guest agent, which was waiting for exactly those files, carries on with the instance's
//! first boot: login user and key, host keys, then sshd and user-data.
//!
//! What it saves is the boot itself (systemd and everything before the agent, about 0.3
//! CPU-seconds) and the container's creation, which is most of a launch's work: a burst of
//! launches is then limited by the network set-up and the first SSH logins only.
//!
//! The pool refills one guest at a time and only while no launch has come for [`QUIET`]: its
//! guests boot at the smallest CPU weight (see the runtime's scheduler), so a refill takes
//! only CPU nobody else wants. Its guests belong to no account and hold nothing of one. They
//! are host resources the store does not know: a pool guest is never recorded, so after a
//! crash the next server's leak sweep destroys it like any other leftover, and a clean stop
//! destroys the pool and, with a last leak sweep, any such leftover
//! ([`Agent::release_spare_guests`]). The pool is the host agent's; the API takes a guest
//! through [`crate::control::HostAgent::take_warm_guest`]. Until a taken guest's instance is in the
//! store, the pool keeps its id as live, so the leak sweep does not take it for a leftover.
//!
//! Deviations a user can see, recorded in COMPATIBILITY.md: the guest's uptime and the console
//! log start when the pool booted it, not at the launch.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use gureum_types::{ResourceId, ResourceKind};

use crate::agent::Agent;
pub use crate::control::WarmImage;
use crate::host::{GuestFile, GuestSpec};
use crate::tasks::Task;
use crate::{Cloud, CoreError, CoreResult};

/// How long no launch must have come before the pool boots a guest.
pub const QUIET: Duration = Duration::from_secs(3);
/// How long a taken guest's id stays live without its instance in the store (a failed
/// `RunInstances` transaction): then the leak sweep may destroy it.
const TAKEN_GRACE: Duration = Duration::from_secs(60);
/// How long a refill waits for a new guest to be done booting before it boots the next.
const BOOT_WAIT: Duration = Duration::from_secs(20);
/// How often the pool checks that its ready guests still run.
const CHECK_EVERY: Duration = Duration::from_secs(10);
/// After a failed boot, how long the pool waits before it tries again.
const RETRY_AFTER: Duration = Duration::from_secs(30);
/// The marker file that tells the guest agent it boots warm (and must wait for its
/// `instance.env`).
pub const GUEST_MARKER: &str = "/var/lib/gureum/warm";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Booting,
    Ready,
    Taken(Instant),
}

#[derive(Debug, Clone)]
struct Entry {
    id: String,
    rootfs: String,
    volume_gib: u32,
    stage: Stage,
}

#[derive(Default)]
struct PoolState {
    image: Option<WarmImage>,
    entries: Vec<Entry>,
    last_launch: Option<Instant>,
    retry_at: Option<Instant>,
    closed: bool,
}

/// The pool's bookkeeping (the guests themselves are the compute driver's).
pub struct WarmPool {
    target: usize,
    state: Mutex<PoolState>,
}

impl WarmPool {
    pub fn new(target: usize) -> WarmPool {
        WarmPool {
            target,
            state: Mutex::new(PoolState::default()),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, PoolState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The image the pool boots from now on (guests of another are retired).
    pub fn set_image(&self, image: WarmImage) {
        self.state().image = Some(image);
    }

    /// A launch is being recorded: the pool holds back its refills for a while.
    pub fn note_launch(&self) {
        self.state().last_launch = Some(Instant::now());
    }

    /// A ready guest for an instance of `rootfs` with a `volume_gib` root volume, if the pool
    /// has one: its id becomes the instance's.
    pub fn take(&self, rootfs: &str, volume_gib: u32) -> Option<String> {
        let mut state = self.state();
        let now = Instant::now();
        let entry = state.entries.iter_mut().find(|e| {
            e.stage == Stage::Ready && e.rootfs == rootfs && e.volume_gib == volume_gib
        })?;
        entry.stage = Stage::Taken(now);
        Some(entry.id.clone())
    }

    fn ready_ids(&self) -> Vec<String> {
        let state = self.state();
        state
            .entries
            .iter()
            .filter(|e| e.stage == Stage::Ready)
            .map(|e| e.id.clone())
            .collect()
    }

    /// Removes `id` if it is still a ready (untaken) guest; whether it did.
    fn forget_ready(&self, id: &str) -> bool {
        let mut state = self.state();
        let before = state.entries.len();
        state
            .entries
            .retain(|e| !(e.id == id && e.stage == Stage::Ready));
        state.entries.len() < before
    }

    /// Every id the pool holds (booting, ready, or taken and not yet recorded).
    pub fn ids(&self) -> HashSet<String> {
        self.state().entries.iter().map(|e| e.id.clone()).collect()
    }

    /// (ready, booting) guests.
    pub fn counts(&self) -> (usize, usize) {
        let state = self.state();
        let count = |s: Stage| state.entries.iter().filter(|e| e.stage == s).count();
        (count(Stage::Ready), count(Stage::Booting))
    }

    /// Forget taken guests whose instance is recorded (or that waited too long for it).
    fn settle(&self, recorded: &HashSet<String>) {
        let now = Instant::now();
        self.state().entries.retain(|e| match e.stage {
            Stage::Taken(at) => !recorded.contains(&e.id) && now.duration_since(at) < TAKEN_GRACE,
            _ => true,
        });
    }

    /// What a refill should do now: boot a new guest (its id and image), retire a guest of
    /// an image the pool no longer boots, or nothing.
    fn next_step(&self) -> Step {
        let mut state = self.state();
        let now = Instant::now();
        let Some(image) = state.image.clone() else {
            return Step::Idle;
        };
        if state.closed
            || self.target == 0
            || state.retry_at.is_some_and(|t| now < t)
            || state
                .last_launch
                .is_some_and(|t| now.duration_since(t) < QUIET)
            || state.entries.iter().any(|e| e.stage == Stage::Booting)
        {
            return Step::Idle;
        }
        if let Some(i) = state.entries.iter().position(|e| {
            e.stage == Stage::Ready
                && (e.rootfs != image.rootfs || e.volume_gib != image.volume_gib)
        }) {
            return Step::Retire(state.entries.remove(i).id);
        }
        let spare = state
            .entries
            .iter()
            .filter(|e| e.stage == Stage::Ready)
            .count();
        if spare >= self.target {
            return Step::Idle;
        }
        let id = ResourceId::generate(ResourceKind::Instance).to_string();
        state.entries.push(Entry {
            id: id.clone(),
            rootfs: image.rootfs.clone(),
            volume_gib: image.volume_gib,
            stage: Stage::Booting,
        });
        Step::Boot(id, image)
    }

    fn booted(&self, id: &str, ok: bool) {
        let mut state = self.state();
        if ok {
            if let Some(e) = state.entries.iter_mut().find(|e| e.id == id) {
                e.stage = Stage::Ready;
            }
        } else {
            state.entries.retain(|e| e.id != id);
            state.retry_at = Some(Instant::now() + RETRY_AFTER);
        }
    }

    fn forget(&self, id: &str) {
        self.state().entries.retain(|e| e.id != id);
    }

    /// Stop refilling; whether a guest is still booting (its boot finishes first).
    fn close(&self) -> bool {
        let mut state = self.state();
        state.closed = true;
        state.entries.iter().any(|e| e.stage == Stage::Booting)
    }

    /// The ready guests, removed from the pool (to destroy). A guest still booting is its
    /// refill's to destroy, once the boot is done.
    fn remove_spare(&self) -> Vec<String> {
        let mut state = self.state();
        let (spare, kept): (Vec<Entry>, Vec<Entry>) = state
            .entries
            .drain(..)
            .partition(|e| e.stage == Stage::Ready);
        state.entries = kept;
        spare.into_iter().map(|e| e.id).collect()
    }
}

enum Step {
    Idle,
    Boot(String, WarmImage),
    Retire(String),
}

impl Cloud {
    /// The image the warm pool boots (the default image, once it is available). Blocking.
    pub fn set_warm_image_sync(&self, image_id: &str) -> CoreResult<()> {
        let iid = image_id.to_string();
        let row = self
            .store
            .read(|c| Ok::<_, CoreError>(c.images().get(&iid)?))?;
        let Some(row) = row else {
            return Err(CoreError::missing("image", image_id));
        };
        let Some(rootfs) = row
            .rootfs
            .clone()
            .filter(|_| row.state == gureum_types::ImageState::Available)
        else {
            return Err(CoreError::ImageNotAvailable(image_id.to_string()));
        };
        if let Some(agent) = &self.agent {
            agent.set_warm_image(WarmImage {
                rootfs,
                volume_gib: row.root_size_gib.max(1),
            });
        }
        Ok(())
    }
}

impl Agent {
    /// The warm pool's (ready, booting) guests.
    pub fn warm_pool_counts(&self) -> (usize, usize) {
        self.warm.counts()
    }

    /// Keep the warm pool full, one guest at a time, until the pool is closed.
    pub(crate) fn spawn_warm_pool(&self) {
        if self.warm.target == 0 {
            return;
        }
        let agent = self.clone();
        tokio::spawn(async move {
            let mut last_check = Instant::now();
            loop {
                let a = agent.clone();
                let acted = agent
                    .tasks
                    .run(Task::WarmPool, async move {
                        Ok::<_, std::convert::Infallible>(a.refill_warm_pool().await)
                    })
                    .await
                    .unwrap_or(false);
                if agent.warm.state().closed {
                    return;
                }
                if last_check.elapsed() >= CHECK_EVERY {
                    agent.prune_dead_warm_guests().await;
                    last_check = Instant::now();
                }
                if !acted {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        });
    }

    /// Forget (and clear away) ready guests that no longer run: killed from outside, or out
    /// of memory. (One taken meanwhile is left to its launch, which boots it anew.)
    async fn prune_dead_warm_guests(&self) {
        let host = &self.host;
        for id in self.warm.ready_ids() {
            if let Ok(None) = host.compute.warm_guest(&id).await {
                if self.warm.forget_ready(&id) {
                    tracing::info!(guest = %id, "a warm guest stopped running");
                    if let Err(e) = host.compute.destroy(&id).await {
                        tracing::warn!(guest = %id, error = %e, "clearing a dead warm guest");
                    }
                }
            }
        }
    }

    /// One step of the refill; whether it did anything.
    pub(crate) async fn refill_warm_pool(&self) -> bool {
        let host = &self.host;
        match self.warm.next_step() {
            Step::Idle => false,
            Step::Retire(id) => {
                if let Err(e) = host.compute.destroy(&id).await {
                    tracing::warn!(guest = %id, error = %e, "retiring a warm guest");
                }
                true
            }
            Step::Boot(id, image) => {
                let started = Instant::now();
                let spec = self.warm_spec(&id, &image);
                let mut result = host.compute.prepare(&spec).await;
                if result.is_ok() {
                    result = host.compute.start(&spec).await;
                }
                if let Err(e) = &result {
                    tracing::warn!(guest = %id, error = %e, "booting a warm guest failed");
                    let _ = host.compute.destroy(&id).await;
                    self.warm.booted(&id, false);
                    return true;
                }
                if self.warm.state().closed {
                    // The server is stopping: this guest goes with the rest of the pool.
                    let _ = host.compute.destroy(&id).await;
                    self.warm.forget(&id);
                    return true;
                }
                // Ready for a launch from here on; the next boots once this one is done.
                self.warm.booted(&id, true);
                let deadline = Instant::now() + BOOT_WAIT;
                while Instant::now() < deadline {
                    match host.compute.warm_guest(&id).await {
                        Ok(Some(g)) if !g.waiting => {}
                        _ => break,
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                tracing::debug!(guest = %id, ms = started.elapsed().as_millis() as u64, "warm guest booted");
                true
            }
        }
    }

    /// A pool guest: the default image with the guest agent, as small as the smallest
    /// instance type, no network interface yet, and the marker that makes its agent wait.
    fn warm_spec(&self, id: &str, image: &WarmImage) -> GuestSpec {
        let mut files: Vec<GuestFile> = self.host.guest_files.clone();
        files.push(GuestFile {
            path: PathBuf::from(GUEST_MARKER),
            contents: b"1\n".to_vec(),
            mode: 0o644,
        });
        GuestSpec {
            instance_id: id.to_string(),
            image_rootfs: PathBuf::from(&image.rootfs),
            volume_gib: image.volume_gib,
            hostname: "localhost".into(),
            vcpus: 1,
            memory_mib: 512,
            pids_max: 4096,
            netns: None,
            files,
            hypervisor: gureum_types::Hypervisor::Container,
            nic: None,
            warm: true,
            volumes: Vec::new(),
        }
    }

    /// Ids the leak sweep must spare: the pool's, after forgetting the taken guests whose
    /// instances are now in `recorded`.
    pub(crate) fn warm_ids(&self, recorded: &HashSet<String>) -> HashSet<String> {
        self.warm.settle(recorded);
        self.warm.ids()
    }

    /// A clean stop: no more refills, and the pool's guests destroyed (at most `limit`).
    async fn drain_warm_pool(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        // A boot in progress is let finish (its refill then destroys the guest).
        while self.warm.close() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let ids = self.warm.remove_spare();
        let host = self.host.clone();
        if ids.is_empty() {
            return;
        }
        let mut tasks = tokio::task::JoinSet::new();
        for id in ids {
            let host = host.clone();
            tasks.spawn(async move {
                if let Err(e) = host.compute.destroy(&id).await {
                    tracing::warn!(guest = %id, error = %e, "destroying a warm guest");
                }
            });
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if tokio::time::timeout(left, async { while tasks.join_next().await.is_some() {} })
            .await
            .is_err()
        {
            tracing::warn!("the warm pool was not destroyed in time; the next start removes it");
        }
    }

    /// The last of a clean stop: the warm pool destroyed, and any other guest no record owns
    /// (such as a pool left by a server killed before this one, if this one's leak sweep has
    /// not come round to it yet), so a stopped cloud leaves no guest of nobody's behind.
    /// Each of the two stages may take up to `limit`.
    pub async fn release_spare_guests(&self, limit: Duration) {
        self.drain_warm_pool(limit).await;
        let started = Instant::now();
        // Until no leftover is held by a destroy still under way (the agent's own sweep).
        while started.elapsed() < limit {
            let left = limit.saturating_sub(started.elapsed());
            match tokio::time::timeout(left, self.sweep_leaks()).await {
                Ok(Ok(0)) => return,
                Ok(Ok(_busy)) => tokio::time::sleep(Duration::from_millis(50)).await,
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "the last leak sweep failed");
                    return;
                }
                Err(_) => break,
            }
        }
        tracing::warn!("the last leak sweep did not finish in time");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One refill boot step, run to success: the new guest's id.
    fn boot_ready(p: &WarmPool) -> String {
        let Step::Boot(id, _) = p.next_step() else {
            panic!("expected a boot")
        };
        p.booted(&id, true);
        id
    }

    fn pool_with(target: usize) -> WarmPool {
        let p = WarmPool::new(target);
        p.state().image = Some(WarmImage {
            rootfs: "/img".into(),
            volume_gib: 8,
        });
        p
    }

    #[test]
    fn boots_one_at_a_time_up_to_the_target() {
        let p = pool_with(2);
        let Step::Boot(a, _) = p.next_step() else {
            panic!("expected a boot")
        };
        assert!(matches!(p.next_step(), Step::Idle), "one boot at a time");
        p.booted(&a, true);
        boot_ready(&p);
        assert!(matches!(p.next_step(), Step::Idle), "full");
        assert_eq!(p.counts(), (2, 0));
    }

    #[test]
    fn takes_only_matching_ready_guests_and_holds_back_after_a_launch() {
        let p = pool_with(1);
        let Step::Boot(a, _) = p.next_step() else {
            panic!()
        };
        p.note_launch(); // as RunInstances does before it takes
        assert_eq!(p.take("/img", 8), None, "still booting");
        p.booted(&a, true);
        assert_eq!(p.take("/img", 16), None, "another volume size");
        assert_eq!(p.take("/other", 8), None, "another image");
        assert_eq!(p.take("/img", 8), Some(a.clone()));
        assert_eq!(p.take("/img", 8), None, "each guest once");
        assert!(matches!(p.next_step(), Step::Idle), "quiet after a launch");
        // Taken and not yet recorded: still live; recorded: forgotten.
        assert!(p.ids().contains(&a));
        p.settle(&HashSet::from([a.clone()]));
        assert!(!p.ids().contains(&a));
    }

    #[test]
    fn a_failed_boot_backs_off_and_close_returns_the_spare_guests() {
        let p = pool_with(3);
        let Step::Boot(a, _) = p.next_step() else {
            panic!()
        };
        p.booted(&a, false);
        assert!(matches!(p.next_step(), Step::Idle), "backing off");
        p.state().retry_at = None;
        let b = boot_ready(&p);
        let c = boot_ready(&p);
        p.state().last_launch = None;
        let taken = p.take("/img", 8).unwrap();
        assert!(!p.close(), "nothing booting");
        let mut spare = p.remove_spare();
        spare.sort();
        let mut want: Vec<String> = [b, c].into_iter().filter(|x| *x != taken).collect();
        want.sort();
        assert_eq!(spare, want);
        assert!(p.ids().contains(&taken), "taken guests are instances now");
        assert!(matches!(p.next_step(), Step::Idle), "closed");
    }

    #[test]
    fn guests_of_an_old_image_are_retired() {
        let p = pool_with(1);
        let a = boot_ready(&p);
        p.state().image.as_mut().unwrap().rootfs = "/new".into();
        match p.next_step() {
            Step::Retire(id) => assert_eq!(id, a),
            _ => panic!("expected a retirement"),
        }
    }
}
