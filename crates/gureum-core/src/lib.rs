//! gureum's control plane: the services behind every action, independent of HTTP and of the
//! host. [`Cloud`] owns the store, the region and the clock; [`Cloud::dispatch`] runs one
//! parsed [`gureum_ec2::Request`] for one account and returns a [`gureum_ec2::Response`].
//!
//! Modules own one resource each ([`key_pairs`], [`tags`], [`catalogue`], [`accounts`], …);
//! each resource's module also runs that resource's actions (`dispatch_<resource>`, called
//! by [`Cloud::dispatch`] with the resource's own `gureum_ec2::ops::<resource>::Action`, and
//! returning its typed result). [`describe`] is the shared filter and pagination machinery.

pub mod accounts;
pub mod addresses;
pub mod agent;
#[cfg(test)]
mod agent_tests;
pub mod catalogue;
pub mod clock;
pub mod console_support;
pub mod control;
pub mod describe;
#[cfg(test)]
mod ebs_billing_tests;
mod error;
#[cfg(test)]
pub(crate) mod fake;
pub mod firewall;
pub mod host;
#[cfg(test)]
mod image_snapshot_tests;
pub mod image_snapshots;
pub mod images;
pub mod instances;
pub mod interfaces;
pub mod key_pairs;
#[cfg(test)]
mod lifecycle_tests;
pub mod metadata;
pub mod metering;
pub mod routing;
pub mod security_groups;
pub mod snapshots;
pub mod tags;
pub mod tasks;
pub mod volume_host;
#[cfg(test)]
mod volume_tests;
pub mod volumes;
#[cfg(test)]
mod vpc_tests;
pub mod vpcs;
pub mod warm;

use std::sync::Arc;

use gureum_ec2::{Action, Request, Response};
use gureum_store::Store;
use gureum_types::{ApiError, Region};

pub use agent::{Agent, Host};
pub use clock::{Clock, SystemClock};
pub use error::{CoreError, CoreResult};

/// The default public pool: loopback addresses of this host, so public IPs work anywhere and
/// nothing leaves the machine.
pub const DEFAULT_PUBLIC_POOL: &str = "127.100.0.0/16";

/// The usable addresses of a pool (network and broadcast addresses excluded for pools larger
/// than a /31).
pub fn pool_bounds(pool: &ipnet::Ipv4Net) -> (u32, u32) {
    let (lo, hi) = (u32::from(pool.network()), u32::from(pool.broadcast()));
    if pool.prefix_len() >= 31 {
        (lo, hi)
    } else {
        (lo + 1, hi - 1)
    }
}

/// Quotas.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Live instances per account (AWS's classic default: 20).
    pub instances_per_account: usize,
    /// Live instances on this host; beyond it launches answer `InsufficientInstanceCapacity`.
    pub instances_per_host: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            instances_per_account: 20,
            instances_per_host: 200,
        }
    }
}

/// Who is calling and under which request id (for logs).
#[derive(Debug, Clone)]
pub struct Ctx {
    pub account_id: String,
    pub request_id: String,
}

/// The cloud's control plane.
#[derive(Clone)]
pub struct Cloud {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) region: Arc<Region>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) auth_cache: Arc<accounts::AuthCache>,
    /// The host agent that runs this cloud's instances, if any (see `control.rs`).
    pub(crate) agent: Option<Arc<dyn control::HostAgent>>,
    /// Wakes the host agent when a record changes.
    pub(crate) notify: Arc<tokio::sync::Notify>,
    /// The background tasks' status: the host agent's and the control plane's own (budget
    /// checks), one table in one process.
    pub(crate) tasks: Arc<tasks::Tasks>,
    pub(crate) limits: Limits,
    pub(crate) default_hypervisor: gureum_types::Hypervisor,
    pub(crate) key_cache: Arc<AccountCache<Vec<gureum_types::model::KeyPair>>>,
    /// The public IPv4 pool, as inclusive `u32` bounds.
    pub(crate) public_pool: (u32, u32),
    /// The prices usage is rated with.
    pub(crate) prices: Arc<gureum_billing::PriceList>,
    /// Per account, the usage intervals that can no longer change, converted once.
    pub(crate) usage_cache:
        Arc<std::sync::Mutex<std::collections::HashMap<String, metering::SettledUsage>>>,
    /// CPU-heavy request work (RSA key generation) running at once: half the CPUs, at least
    /// one. A flood of such requests from one account then queues here, and the other CPUs
    /// stay free for everyone else's requests (the blocking pool alone would run 512 at once).
    pub(crate) cpu_heavy: Arc<tokio::sync::Semaphore>,
    /// Why a hypervisor cannot run instances on this host (not root, a runtime that failed
    /// to install, no QEMU): launches for it are refused at once instead of left `pending`.
    pub(crate) unavailable: Arc<Unavailable>,
}

/// Why each hypervisor cannot run instances here, if it cannot (`None`: it can, or nobody
/// said otherwise, as in tests that run without a host).
#[derive(Debug, Default, Clone)]
pub struct Unavailable {
    pub containers: Option<String>,
    pub vms: Option<String>,
}

impl Unavailable {
    /// The reason `hypervisor` cannot run instances, if it cannot.
    pub fn reason(&self, hypervisor: gureum_types::Hypervisor) -> Option<&str> {
        use gureum_types::Hypervisor;
        match hypervisor {
            Hypervisor::Vm => self.vms.as_deref().or(self.containers.as_deref()),
            Hypervisor::Container => self.containers.as_deref(),
        }
    }
}

/// An account's cached view and the epoch it belongs to.
type CacheSlot<T> = (u64, Option<Arc<T>>);

/// A per-account cache of a derived view, invalidated by writes. A reader that computed its
/// value before an invalidation does not store it (the epoch moved on), so a stale view is
/// never cached.
pub struct AccountCache<T> {
    inner: std::sync::Mutex<std::collections::HashMap<String, CacheSlot<T>>>,
}

impl<T> Default for AccountCache<T> {
    fn default() -> Self {
        AccountCache {
            inner: Default::default(),
        }
    }
}

impl<T> AccountCache<T> {
    /// The cached value, if any, and the epoch to store a fresh one under.
    pub fn get(&self, account: &str) -> (Option<Arc<T>>, u64) {
        let m = self.inner.lock().expect("cache poisoned");
        match m.get(account) {
            Some((epoch, v)) => (v.clone(), *epoch),
            None => (None, 0),
        }
    }

    pub fn put(&self, account: &str, epoch: u64, value: T) {
        let mut m = self.inner.lock().expect("cache poisoned");
        let e = m.entry(account.to_string()).or_insert((0, None));
        if e.0 == epoch {
            e.1 = Some(Arc::new(value));
        }
    }

    pub fn invalidate(&self, account: &str) {
        let mut m = self.inner.lock().expect("cache poisoned");
        let e = m.entry(account.to_string()).or_insert((0, None));
        e.0 += 1;
        e.1 = None;
    }
}

impl Cloud {
    pub fn new(store: Arc<dyn Store>, region: Region, clock: Arc<dyn Clock>) -> Cloud {
        Cloud {
            store,
            region: Arc::new(region),
            tasks: Arc::new(tasks::Tasks::new(clock.clone())),
            clock,
            auth_cache: Arc::default(),
            agent: None,
            notify: Arc::default(),
            limits: Limits::default(),
            default_hypervisor: gureum_types::Hypervisor::Container,
            key_cache: Arc::default(),
            public_pool: pool_bounds(&DEFAULT_PUBLIC_POOL.parse().expect("valid")),
            prices: Arc::new(gureum_billing::PriceList::aws_default()),
            usage_cache: Arc::default(),
            cpu_heavy: Arc::new(tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1)),
            )),
            unavailable: Arc::default(),
        }
    }

    /// Say which hypervisors cannot run instances here and why: their launches and starts
    /// are refused at once with `InsufficientInstanceCapacity` and the reason.
    pub fn with_unavailable(mut self, unavailable: Unavailable) -> Cloud {
        self.unavailable = Arc::new(unavailable);
        self
    }

    /// Why `hypervisor` cannot run instances on this host, if it cannot.
    pub fn unavailable_reason(&self, hypervisor: gureum_types::Hypervisor) -> Option<String> {
        self.unavailable.reason(hypervisor).map(str::to_string)
    }

    /// Where auto-assigned public IPv4 addresses come from.
    pub fn with_public_pool(mut self, pool: ipnet::Ipv4Net) -> Cloud {
        self.public_pool = pool_bounds(&pool);
        self
    }

    /// The hypervisor launches use unless their `gureum:hypervisor` tag asks for another.
    pub fn with_default_hypervisor(mut self, hypervisor: gureum_types::Hypervisor) -> Cloud {
        self.default_hypervisor = hypervisor;
        self
    }

    pub fn with_limits(mut self, limits: Limits) -> Cloud {
        self.limits = limits;
        self
    }

    pub fn region(&self) -> &Region {
        &self.region
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Run blocking store work off the async executor.
    pub(crate) async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn Store) -> CoreResult<T> + Send + 'static,
    ) -> CoreResult<T> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || f(&*store))
            .await
            .map_err(|source| CoreError::TaskFailed {
                what: "blocking task",
                source,
            })?
    }

    /// Run CPU-heavy work of a request (see `cpu_heavy`) off the async executor, waiting for
    /// a slot first.
    pub(crate) async fn cpu_bound<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> CoreResult<T> {
        let _slot = self
            .cpu_heavy
            .acquire()
            .await
            .map_err(|_| CoreError::Closed("cpu pool"))?;
        tokio::task::spawn_blocking(f)
            .await
            .map_err(|source| CoreError::TaskFailed {
                what: "cpu-bound task",
                source,
            })
    }

    /// Run one request for the calling account. A dry run checks the request (and the
    /// caller's permission) and answers `DryRunOperation` without acting.
    pub async fn dispatch(&self, ctx: &Ctx, req: Request) -> CoreResult<Response> {
        if req.dry_run {
            // Every account may call every action on its own resources, so the permission
            // check always passes; the answer is AWS's "would have succeeded".
            return Err(ApiError::dry_run_ok().into());
        }
        Ok(match req.action {
            Action::Catalogue(a) => self.dispatch_catalogue(a)?.into(),
            Action::KeyPairs(a) => self.dispatch_key_pairs(ctx, a).await?.into(),
            Action::Tags(a) => self.dispatch_tags(ctx, a).await?.into(),
            Action::Images(a) => self.dispatch_images(ctx, a).await?.into(),
            Action::Instances(a) => self.dispatch_instances(ctx, a).await?.into(),
            Action::Vpcs(a) => self.dispatch_vpcs(ctx, a).await?.into(),
            Action::Routing(a) => self.dispatch_routing(ctx, a).await?.into(),
            Action::SecurityGroups(a) => self.dispatch_security_groups(ctx, a).await?.into(),
            Action::Addresses(a) => self.dispatch_addresses(ctx, a).await?.into(),
            Action::Interfaces(a) => self.dispatch_interfaces(ctx, a).await?.into(),
            Action::Volumes(a) => self.dispatch_volumes(ctx, a).await?.into(),
            Action::Snapshots(a) => self.dispatch_snapshots(ctx, a).await?.into(),
        })
    }
}

/// Render milliseconds since the epoch as AWS renders timestamps: `2026-11-26T06:21:41.000Z`.
pub fn aws_time(millis: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(millis as i128 * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    t.format(time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    ))
    .unwrap_or_default()
}

#[cfg(test)]
pub(crate) mod testing {
    use super::*;

    /// A cloud on a temporary database with a fixed clock and one account `111111111111`.
    pub fn cloud() -> (tempfile::TempDir, Cloud, Ctx) {
        cloud_with_clock(Arc::new(clock::FixedClock::new(1_764_000_000_000)))
    }

    /// A cloud whose clock the test drives.
    pub fn cloud_with_clock(clock: Arc<clock::FixedClock>) -> (tempfile::TempDir, Cloud, Ctx) {
        let dir = tempfile::tempdir().unwrap();
        let store =
            Arc::new(gureum_store::SqliteStore::open(&dir.path().join("state.db")).unwrap());
        let cloud = Cloud::new(store, Region::new("us-east-1").unwrap(), clock);
        let ctx = Ctx {
            account_id: cloud.create_account_sync("alice").unwrap().0.id,
            request_id: "test".into(),
        };
        (dir, cloud, ctx)
    }

    pub fn other(cloud: &Cloud, name: &str) -> Ctx {
        Ctx {
            account_id: cloud.create_account_sync(name).unwrap().0.id,
            request_id: "test".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    /// CPU-heavy work never runs on more than its slots, however many requests ask at once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn cpu_bound_work_runs_on_a_bounded_pool() {
        let (_dir, cloud, _ctx) = super::testing::cloud();
        let slots = cloud.cpu_heavy.available_permits();
        assert!(slots >= 1);
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..(slots * 4 + 4) {
            let (cloud, running, most) = (cloud.clone(), running.clone(), most.clone());
            tasks.push(tokio::spawn(async move {
                cloud
                    .cpu_bound(move || {
                        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        std::thread::sleep(std::time::Duration::from_millis(20));
                        running.fetch_sub(1, Ordering::SeqCst);
                    })
                    .await
                    .unwrap()
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(most.load(Ordering::SeqCst), slots);
    }

    #[test]
    fn aws_time_format() {
        assert_eq!(super::aws_time(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            super::aws_time(1_764_138_101_123),
            "2025-11-26T06:21:41.123Z"
        );
    }
}
