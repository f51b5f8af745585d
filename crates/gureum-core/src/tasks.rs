//! The host agent's background tasks, supervised. Each periodic activity of the agent (the
//! convergence sweep, security-group and public-address sync, network clean-up, the leak
//! sweep, budget checks, the warm pool) runs through [`Tasks::run`], which times it, records
//! its outcome and contains a panic to that one activation: a bug in one task neither stops
//! the agent's loop (which would leave every later launch `pending`) nor hides in a log line.
//! What the status records (runs, last start and duration, last success, last error, failures
//! in a row, panics) is what an operator asks first; `gureum up` serves it at
//! `GET /healthz/agent` to local callers. Omicron's background-task driver is the pattern.
//!
//! The tasks are the agent's side of the seam between control plane and host: they read what
//! the records want through `control::ControlPlane` and make the host match. The budget
//! checks are the control plane's own (`Cloud::spawn_budget_checks`); in one process both
//! report into one table, so `/healthz/agent` shows them all. How to add a task: see
//! `agent::Agent`.

use std::fmt::Display;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use crate::clock::Clock;

/// One background activity of the host agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Task {
    /// Bring up the default VPCs' network at start.
    DefaultNetwork,
    /// Start host work for every instance whose record asks for it.
    Converge,
    /// Push each instance's security groups to the firewall.
    Firewalls,
    /// Map public addresses (Elastic IPs and auto-assigned ones) to instances.
    PublicIps,
    /// Remove host networks of VPCs no instance uses.
    Networks,
    /// Forget terminated instances after they stop being listed.
    Purge,
    /// Destroy host resources no record owns.
    LeakSweep,
    /// Compare each budget with the month's cost (run by the control plane, not the agent).
    Budgets,
    /// Keep guests booted ahead of launches.
    WarmPool,
    /// Converge EBS volumes and snapshots (see `volumes.rs`).
    Volumes,
}

impl Task {
    pub const ALL: [Task; 10] = [
        Task::DefaultNetwork,
        Task::Converge,
        Task::Firewalls,
        Task::PublicIps,
        Task::Networks,
        Task::Purge,
        Task::LeakSweep,
        Task::Budgets,
        Task::WarmPool,
        Task::Volumes,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Task::DefaultNetwork => "default-network",
            Task::Converge => "converge",
            Task::Firewalls => "firewalls",
            Task::PublicIps => "public-ips",
            Task::Networks => "networks",
            Task::Purge => "purge",
            Task::LeakSweep => "leak-sweep",
            Task::Budgets => "budgets",
            Task::WarmPool => "warm-pool",
            Task::Volumes => "volumes",
        }
    }

    /// Its slot in the status table: the declaration order, which `ALL` follows.
    fn index(self) -> usize {
        self as usize
    }
}

/// What is known of one task. Times are the cloud clock's milliseconds since the epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskStatus {
    pub task: Task,
    /// Activations finished (successful or not).
    pub runs: u64,
    pub running: bool,
    pub last_started_ms: Option<i64>,
    pub last_duration_ms: Option<u64>,
    pub last_ok_ms: Option<i64>,
    pub last_error: Option<String>,
    pub last_error_ms: Option<i64>,
    /// Failed activations since the last success.
    pub failures_in_a_row: u32,
    pub failures: u64,
    pub panics: u64,
}

impl TaskStatus {
    fn new(task: Task) -> TaskStatus {
        TaskStatus {
            task,
            runs: 0,
            running: false,
            last_started_ms: None,
            last_duration_ms: None,
            last_ok_ms: None,
            last_error: None,
            last_error_ms: None,
            failures_in_a_row: 0,
            failures: 0,
            panics: 0,
        }
    }
}

/// The status of every task, and the runner that keeps it.
pub struct Tasks {
    clock: Arc<dyn Clock>,
    status: Mutex<Vec<TaskStatus>>,
}

impl Tasks {
    pub fn new(clock: Arc<dyn Clock>) -> Tasks {
        Tasks {
            clock,
            status: Mutex::new(Task::ALL.into_iter().map(TaskStatus::new).collect()),
        }
    }

    fn update(&self, task: Task, f: impl FnOnce(&mut TaskStatus)) {
        // Status is plain data written whole by each update: a panic elsewhere cannot leave
        // it half-written, so a poisoned lock is taken back.
        let mut all = self.status.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut all[task.index()]);
    }

    /// Run one activation of `task` on its own tokio task, recording how it went. Returns
    /// its value, or `None` if it failed or panicked (both recorded and logged).
    pub async fn run<T, E, F>(&self, task: Task, work: F) -> Option<T>
    where
        F: Future<Output = Result<T, E>> + Send + 'static,
        T: Send + 'static,
        E: Display + Send + 'static,
    {
        let started_ms = self.clock.now_millis();
        self.update(task, |s| {
            s.running = true;
            s.last_started_ms = Some(started_ms);
        });
        let started = Instant::now();
        let outcome = tokio::spawn(work).await;
        let took = started.elapsed().as_millis() as u64;
        let now = self.clock.now_millis();
        let (value, error, panicked) = match outcome {
            Ok(Ok(v)) => (Some(v), None, false),
            Ok(Err(e)) => (None, Some(e.to_string()), false),
            Err(join) if join.is_panic() => {
                let what = join.into_panic();
                let msg = what
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| what.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a panic".into());
                (None, Some(format!("panicked: {msg}")), true)
            }
            // Cancelled: the runtime is shutting down.
            Err(_) => (None, Some("cancelled".into()), false),
        };
        if let Some(e) = &error {
            tracing::warn!(task = task.name(), error = %e, "background task failed");
        }
        self.update(task, |s| {
            s.running = false;
            s.runs += 1;
            s.last_duration_ms = Some(took);
            match &error {
                None => {
                    s.last_ok_ms = Some(now);
                    s.failures_in_a_row = 0;
                }
                Some(e) => {
                    s.last_error = Some(e.clone());
                    s.last_error_ms = Some(now);
                    s.failures += 1;
                    s.failures_in_a_row += 1;
                    s.panics += u64::from(panicked);
                }
            }
        });
        value
    }

    /// Every task's status, in [`Task::ALL`]'s order.
    pub fn snapshot(&self) -> Vec<TaskStatus> {
        self.status
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::FixedClock;

    fn tasks() -> (Tasks, Arc<FixedClock>) {
        let clock = Arc::new(FixedClock::new(1_000));
        (Tasks::new(clock.clone()), clock)
    }

    fn status(t: &Tasks, task: Task) -> TaskStatus {
        t.snapshot().into_iter().find(|s| s.task == task).unwrap()
    }

    #[test]
    fn every_task_has_its_own_slot() {
        for (i, t) in Task::ALL.into_iter().enumerate() {
            assert_eq!(t.index(), i, "{}", t.name());
        }
    }

    #[tokio::test]
    async fn success_failure_and_panic_are_recorded() {
        let (t, clock) = tasks();
        assert_eq!(
            t.run(Task::Firewalls, async { Ok::<_, String>(7) }).await,
            Some(7)
        );
        let s = status(&t, Task::Firewalls);
        assert_eq!((s.runs, s.last_ok_ms, s.failures), (1, Some(1_000), 0));
        assert!(!s.running);

        clock.advance(500);
        assert_eq!(
            t.run(Task::Firewalls, async { Err::<(), _>("nft: busy") })
                .await,
            None
        );
        assert_eq!(
            t.run(Task::Firewalls, async {
                if true {
                    panic!("a bug");
                }
                Ok::<(), String>(())
            })
            .await,
            None
        );
        let s = status(&t, Task::Firewalls);
        assert_eq!(s.runs, 3);
        assert_eq!(s.failures_in_a_row, 2);
        assert_eq!(s.panics, 1);
        assert_eq!(s.last_ok_ms, Some(1_000));
        assert_eq!(s.last_error.as_deref(), Some("panicked: a bug"));
        assert_eq!(s.last_error_ms, Some(1_500));

        // A success clears the run of failures but keeps the last error for the operator.
        t.run(Task::Firewalls, async { Ok::<_, String>(()) }).await;
        let s = status(&t, Task::Firewalls);
        assert_eq!(s.failures_in_a_row, 0);
        assert_eq!(s.failures, 2);
        assert!(s.last_error.is_some());
        // Other tasks untouched.
        assert_eq!(status(&t, Task::LeakSweep).runs, 0);
    }
}
