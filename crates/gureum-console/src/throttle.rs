//! Sign-in throttling: failure counting per source address and per account, exponential
//! backoff, and a temporary account lockout that does not lock the owner out.
//!
//! Owned here: the policy and its state, all in memory, in maps of bounded size whose entries
//! expire. Time is passed in (`now`), so the rules are tested with a fake clock. The sign-in
//! handler asks [`Throttle::begin`] before it checks anything, and reports the outcome on the
//! returned [`Attempt`].
//!
//! The rules, and why:
//! - an address may fail [`ADDR_FREE_FAILURES`] times; each failure after that makes it wait
//!   twice as long as the one before (1 s, 2 s, 4 s, … up to [`MAX_BACKOFF`]) before its next
//!   attempt is even looked at. Refused attempts are not counted: a client hammering through
//!   its backoff only keeps itself out, and a refused attempt costs no password hash;
//! - an address may have at most [`MAX_IN_FLIGHT_PER_ADDR`] attempts being checked at once, so
//!   one client firing in parallel cannot queue up hashes past its backoff;
//! - an account that fails [`ACCOUNT_FREE_FAILURES`] times (from any addresses) is locked, with
//!   the same doubling backoff, but the lock only refuses addresses that have already failed
//!   and have not signed in to that account before. An address with no failures still gets
//!   its attempt, and an address that signed in to the account before (within
//!   [`KNOWN_FOR`]) is never held back by the account's lock. This is the shape Okta calls
//!   lockout prevention for unknown devices, and the reason AWS's console answers a stream of
//!   wrong passwords with a CAPTCHA rather than a lockout: a lockout anyone can trigger is a
//!   way to lock the owner out. The lock ends by itself; nothing here is permanent;
//! - entries are forgotten [`FORGET_AFTER`] after their last failure (once no backoff or
//!   attempt is pending), and each map holds at most [`MAX_ENTRIES`] entries: when one is full,
//!   expired entries go first, then the one whose last failure is oldest.
//!
//! A source address is the TCP peer's address (an IPv6 peer counts by its /64, which one
//! client usually holds whole): gureum serves the console itself, so there is no proxy whose
//! `X-Forwarded-For` could be trusted.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Failures an address may make before it has to wait.
pub const ADDR_FREE_FAILURES: u32 = 5;
/// Failures an account may see (from every address) before it is locked.
pub const ACCOUNT_FREE_FAILURES: u32 = 20;
/// The first wait; each further failure doubles it.
pub const BASE_BACKOFF: Duration = Duration::from_secs(1);
/// The longest wait.
pub const MAX_BACKOFF: Duration = Duration::from_secs(15 * 60);
/// A failure is forgotten this long after the last one.
pub const FORGET_AFTER: Duration = Duration::from_secs(15 * 60);
/// How long a successful sign-in makes an address known to the account.
pub const KNOWN_FOR: Duration = Duration::from_secs(30 * 24 * 3600);
/// Attempts one address may have being checked at the same time.
pub const MAX_IN_FLIGHT_PER_ADDR: u32 = 2;
/// The most entries each map holds.
pub const MAX_ENTRIES: usize = 10_000;
/// Account names longer than this are cut (they are keys of a map the client fills).
const MAX_ACCOUNT_KEY: usize = 64;

/// The wait after `failures` failures, `free` of which are free.
fn backoff(failures: u32, free: u32) -> Option<Duration> {
    let over = failures.checked_sub(free)?;
    // 2^(over) seconds, capped: shifting past the cap's width would overflow.
    let secs = BASE_BACKOFF.as_secs().saturating_mul(1u64 << over.min(20));
    Some(Duration::from_secs(secs).min(MAX_BACKOFF))
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
    /// No attempt is looked at before this.
    until: Instant,
}

impl Failures {
    fn new(now: Instant) -> Failures {
        Failures {
            count: 0,
            last: now,
            until: now,
        }
    }

    fn fail(&mut self, now: Instant, free: u32) {
        self.count = self.count.saturating_add(1);
        self.last = now;
        if let Some(wait) = backoff(self.count, free) {
            self.until = now + wait;
        }
    }

    /// Whether everything about this entry is over.
    fn expired(&self, now: Instant) -> bool {
        now >= self.until && now.saturating_duration_since(self.last) >= FORGET_AFTER
    }
}

#[derive(Debug, Clone, Copy)]
struct Addr {
    failures: Failures,
    in_flight: u32,
}

#[derive(Default)]
struct State {
    addrs: HashMap<IpAddr, Addr>,
    accounts: HashMap<String, Failures>,
    /// (address, account) pairs that signed in, and when.
    known: HashMap<(IpAddr, String), Instant>,
}

/// Make room for one more key in `map`: drop expired entries, then, if it is still full,
/// the entry `age` says is oldest.
fn make_room<K: Clone + Eq + std::hash::Hash, V>(
    map: &mut HashMap<K, V>,
    expired: impl Fn(&V) -> bool,
    age: impl Fn(&V) -> Instant,
) {
    if map.len() < MAX_ENTRIES {
        return;
    }
    map.retain(|_, v| !expired(v));
    if map.len() >= MAX_ENTRIES {
        if let Some(k) = map
            .iter()
            .min_by_key(|(_, v)| age(v))
            .map(|(k, _)| k.clone())
        {
            map.remove(&k);
        }
    }
}

/// The sign-in throttle (see the module's documentation).
#[derive(Clone, Default)]
pub struct Throttle(Arc<Mutex<State>>);

/// Why an attempt is not looked at now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// This address (or, for an address that already failed, the account) has to wait.
    Backoff(Duration),
    /// This address already has attempts being checked.
    Busy,
}

impl Refusal {
    /// Seconds to put in `Retry-After` (at least 1).
    pub fn retry_after_secs(self) -> u64 {
        match self {
            Refusal::Backoff(d) => d.as_secs() + u64::from(d.subsec_nanos() > 0),
            Refusal::Busy => 1,
        }
        .max(1)
    }
}

/// What an address counts as: itself, or for IPv6 its /64.
fn source(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
        },
        v4 => v4,
    }
}

/// The account key of what the client typed, or of the account it names.
pub fn account_key(account: &str) -> String {
    account
        .chars()
        .take(MAX_ACCOUNT_KEY)
        .collect::<String>()
        .to_lowercase()
}

impl Throttle {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.0.lock().expect("sign-in throttle poisoned")
    }

    /// Whether `addr` may try at all now (its own backoff and attempts in flight only): a
    /// cheap look before any work, [`Throttle::begin`] decides.
    pub fn admits(&self, addr: IpAddr, now: Instant) -> Result<(), Refusal> {
        match self.state().addrs.get(&source(addr)) {
            Some(a) if now < a.failures.until => Err(Refusal::Backoff(a.failures.until - now)),
            Some(a) if a.in_flight >= MAX_IN_FLIGHT_PER_ADDR => Err(Refusal::Busy),
            _ => Ok(()),
        }
    }

    /// May `addr` try to sign in (to `account`, for a password) now? On yes, the attempt counts
    /// as in flight until the returned [`Attempt`] is resolved or dropped.
    pub fn begin(
        &self,
        addr: IpAddr,
        account: Option<&str>,
        now: Instant,
    ) -> Result<Attempt, Refusal> {
        let addr = source(addr);
        let mut s = self.state();
        let a = s.addrs.get(&addr).copied();
        if let Some(a) = a {
            if now < a.failures.until {
                return Err(Refusal::Backoff(a.failures.until - now));
            }
            if a.in_flight >= MAX_IN_FLIGHT_PER_ADDR {
                return Err(Refusal::Busy);
            }
        }
        let account = account.map(account_key);
        if let Some(acct) = &account {
            let failed_before = a.is_some_and(|a| a.failures.count > 0);
            let known = s
                .known
                .get(&(addr, acct.clone()))
                .is_some_and(|t| now.saturating_duration_since(*t) < KNOWN_FOR);
            if let Some(f) = s.accounts.get(acct) {
                if now < f.until && failed_before && !known {
                    return Err(Refusal::Backoff(f.until - now));
                }
            }
        }
        make_room(
            &mut s.addrs,
            |a| a.in_flight == 0 && a.failures.expired(now),
            |a| a.failures.last,
        );
        s.addrs
            .entry(addr)
            .or_insert(Addr {
                failures: Failures::new(now),
                in_flight: 0,
            })
            .in_flight += 1;
        Ok(Attempt {
            throttle: self.clone(),
            addr,
            account,
            done: false,
        })
    }

    fn resolve(&self, addr: IpAddr, account: Option<&str>, ok: Option<bool>, now: Instant) {
        let mut s = self.state();
        if let Some(a) = s.addrs.get_mut(&addr) {
            a.in_flight = a.in_flight.saturating_sub(1);
            if ok == Some(false) {
                a.failures.fail(now, ADDR_FREE_FAILURES);
            }
        }
        let Some(acct) = account else { return };
        match ok {
            Some(false) => {
                make_room(&mut s.accounts, |f| f.expired(now), |f| f.last);
                s.accounts
                    .entry(acct.to_string())
                    .or_insert_with(|| Failures::new(now))
                    .fail(now, ACCOUNT_FREE_FAILURES);
            }
            Some(true) => {
                make_room(
                    &mut s.known,
                    |t| now.saturating_duration_since(*t) >= KNOWN_FOR,
                    |t| *t,
                );
                s.known.insert((addr, acct.to_string()), now);
            }
            None => {}
        }
    }

    /// Drop every entry that has expired (the maps also make room on their own when full).
    pub fn sweep(&self, now: Instant) {
        let mut s = self.state();
        s.addrs
            .retain(|_, a| a.in_flight > 0 || !a.failures.expired(now));
        s.accounts.retain(|_, f| !f.expired(now));
        s.known
            .retain(|_, t| now.saturating_duration_since(*t) < KNOWN_FOR);
    }

    /// How many entries the maps hold (addresses, accounts, known pairs).
    pub fn sizes(&self) -> (usize, usize, usize) {
        let s = self.state();
        (s.addrs.len(), s.accounts.len(), s.known.len())
    }
}

/// One attempt being checked. Resolve it with [`Attempt::failed`] or
/// [`Attempt::succeeded`]; dropping it unresolved (the client went away, or the check could
/// not be made) only ends it, counting nothing.
pub struct Attempt {
    throttle: Throttle,
    addr: IpAddr,
    account: Option<String>,
    done: bool,
}

impl Attempt {
    /// Count the account as `account` from now on (the id the typed name resolved to).
    pub fn for_account(mut self, account: &str) -> Attempt {
        if self.account.is_some() {
            self.account = Some(account_key(account));
        }
        self
    }

    pub fn failed(mut self, now: Instant) {
        self.done = true;
        self.throttle
            .resolve(self.addr, self.account.as_deref(), Some(false), now);
    }

    pub fn succeeded(mut self, now: Instant) {
        self.done = true;
        self.throttle
            .resolve(self.addr, self.account.as_deref(), Some(true), now);
    }
}

impl Drop for Attempt {
    fn drop(&mut self) {
        if !self.done {
            self.throttle
                .resolve(self.addr, self.account.as_deref(), None, Instant::now());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    /// One failed password attempt at `now`; panics if it was refused.
    fn fail(t: &Throttle, addr: &str, account: &str, now: Instant) {
        t.begin(ip(addr), Some(account), now)
            .unwrap_or_else(|r| panic!("{addr} refused: {r:?}"))
            .failed(now);
    }

    #[test]
    fn backoff_doubles_after_the_free_failures_and_is_capped() {
        assert_eq!(backoff(4, 5), None);
        assert_eq!(backoff(5, 5), Some(secs(1)));
        assert_eq!(backoff(6, 5), Some(secs(2)));
        assert_eq!(backoff(9, 5), Some(secs(16)));
        assert_eq!(backoff(30, 5), Some(MAX_BACKOFF));
        assert_eq!(backoff(u32::MAX, 0), Some(MAX_BACKOFF));
    }

    #[test]
    fn an_address_waits_longer_after_each_failure_past_the_free_ones() {
        let t = Throttle::default();
        let t0 = Instant::now();
        for _ in 0..ADDR_FREE_FAILURES - 1 {
            fail(&t, "10.0.0.1", "alice", t0);
        }
        // The fifth failure starts the backoff: one second.
        fail(&t, "10.0.0.1", "alice", t0);
        assert_eq!(
            t.begin(
                ip("10.0.0.1"),
                Some("alice"),
                t0 + Duration::from_millis(500)
            )
            .err(),
            Some(Refusal::Backoff(Duration::from_millis(500)))
        );
        // Refusals count nothing: after the second it may try again, and another failure
        // makes it wait two.
        let t1 = t0 + secs(1);
        fail(&t, "10.0.0.1", "alice", t1);
        assert_eq!(
            t.begin(ip("10.0.0.1"), Some("alice"), t1).err(),
            Some(Refusal::Backoff(secs(2)))
        );
        let t2 = t1 + secs(2);
        fail(&t, "10.0.0.1", "alice", t2);
        assert_eq!(
            t.begin(ip("10.0.0.1"), None, t2).err(),
            Some(Refusal::Backoff(secs(4)))
        );
        // Another address is not held back by it.
        t.begin(ip("10.0.0.2"), Some("alice"), t2)
            .unwrap()
            .succeeded(t2);
        // The failures are forgotten after a quiet while.
        let later = t2 + FORGET_AFTER;
        t.sweep(later);
        assert_eq!(t.sizes().0, 0);
        fail(&t, "10.0.0.1", "alice", later);
        assert!(t.begin(ip("10.0.0.1"), Some("alice"), later).is_ok());
    }

    #[test]
    fn an_address_has_at_most_two_attempts_in_flight() {
        let t = Throttle::default();
        let now = Instant::now();
        let a = t.begin(ip("10.0.0.1"), Some("alice"), now).unwrap();
        let b = t.begin(ip("10.0.0.1"), Some("alice"), now).unwrap();
        assert_eq!(
            t.begin(ip("10.0.0.1"), Some("alice"), now).err(),
            Some(Refusal::Busy)
        );
        assert_eq!(t.admits(ip("10.0.0.1"), now), Err(Refusal::Busy));
        assert_eq!(t.admits(ip("10.0.0.2"), now), Ok(()));
        assert!(t.begin(ip("10.0.0.2"), Some("alice"), now).is_ok());
        // An attempt dropped unresolved (the client went away) ends without counting.
        drop(a);
        let c = t.begin(ip("10.0.0.1"), Some("alice"), now).unwrap();
        b.failed(now);
        c.failed(now);
        assert_eq!(t.state().addrs[&ip("10.0.0.1")].failures.count, 2);
        assert_eq!(t.state().addrs[&ip("10.0.0.1")].in_flight, 0);
    }

    #[test]
    fn a_locked_account_still_lets_fresh_and_known_addresses_try() {
        let t = Throttle::default();
        let t0 = Instant::now();
        // The owner signed in from 10.9.9.9 earlier.
        t.begin(ip("10.9.9.9"), Some("alice"), t0)
            .unwrap()
            .succeeded(t0);
        // Four failures more than the account's free ones, each from a new address (none is
        // held back on its own, and a fresh address may try even once the account is locked).
        for i in 0..ACCOUNT_FREE_FAILURES + 4 {
            fail(&t, &format!("10.0.{i}.1"), "Alice", t0);
        }
        let now = t0 + secs(1);
        // The account is locked for the addresses that failed ...
        assert_eq!(
            t.begin(ip("10.0.3.1"), Some("alice"), now).err(),
            Some(Refusal::Backoff(secs(15)))
        );
        // ... and for nobody else: a fresh address gets its attempt, the owner's known
        // address too, and a failed address may still sign in to another account.
        let fresh = t.begin(ip("10.5.5.5"), Some("alice"), now).unwrap();
        t.begin(ip("10.9.9.9"), Some("alice"), now)
            .unwrap()
            .succeeded(now);
        t.begin(ip("10.0.3.1"), Some("bob"), now).unwrap();
        // A fresh address that fails is held back like the others.
        fresh.failed(now);
        assert!(matches!(
            t.begin(ip("10.5.5.5"), Some("alice"), now),
            Err(Refusal::Backoff(_))
        ));
        // The lock ends by itself.
        let end = now + MAX_BACKOFF + FORGET_AFTER;
        assert!(t.begin(ip("10.0.3.1"), Some("alice"), end).is_ok());
        t.sweep(end);
        assert_eq!(t.sizes().1, 0);
    }

    #[test]
    fn the_lock_grows_with_each_failure_and_is_capped() {
        let t = Throttle::default();
        let t0 = Instant::now();
        for i in 0..ACCOUNT_FREE_FAILURES + 12 {
            // A new address each time: the account's lock is what grows.
            fail(&t, &format!("10.1.{}.{}", i / 200, i % 200), "alice", t0);
        }
        let f = t.state().accounts["alice"];
        assert_eq!(f.until - t0, MAX_BACKOFF.min(secs(1 << 12)));
    }

    #[test]
    fn the_maps_stay_bounded() {
        let t = Throttle::default();
        let now = Instant::now();
        for i in 0..(MAX_ENTRIES as u32 + 50) {
            let addr = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            t.begin(addr, Some(&format!("user{i}")), now)
                .unwrap()
                .failed(now);
        }
        let (addrs, accounts, _) = t.sizes();
        assert!(
            addrs <= MAX_ENTRIES && accounts <= MAX_ENTRIES,
            "{addrs} {accounts}"
        );
        // Account names are cut before they become keys.
        let long = "x".repeat(10_000);
        assert_eq!(account_key(&long).len(), MAX_ACCOUNT_KEY);
    }

    #[test]
    fn an_ipv6_client_counts_by_its_slash_64() {
        let t = Throttle::default();
        let now = Instant::now();
        for i in 0..ADDR_FREE_FAILURES {
            fail(&t, &format!("2001:db8:1:2::{i:x}"), "alice", now);
        }
        assert!(t.begin(ip("2001:db8:1:2:ffff::1"), None, now).is_err());
        assert!(t.begin(ip("2001:db8:1:3::1"), None, now).is_ok());
        assert_eq!(source(ip("::ffff:10.0.0.1")), ip("10.0.0.1"));
    }

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(
            Refusal::Backoff(Duration::from_millis(1500)).retry_after_secs(),
            2
        );
        assert_eq!(Refusal::Backoff(Duration::ZERO).retry_after_secs(), 1);
        assert_eq!(Refusal::Busy.retry_after_secs(), 1);
    }
}
