//! Rating: turning usage records into quantities and money.
//!
//! Owned here: [`Ledger`] (the records, accounts and price list of one query, checked and
//! resolved once), the billing rules, and the engine every report is built on.
//!
//! The rules, as EC2 bills Linux on demand:
//! - compute is billed per second while `running`, at least 60 seconds per start: a record
//!   shorter than a minute is billed as if it ran for one;
//! - storage is billed per second as a fraction of a GB-month, the fraction taken over the
//!   seconds of the calendar month the usage falls in (31 GB for one day of a 31-day month
//!   is one GB-month), as the EBS pricing page's examples compute it; provisioned IOPS and
//!   throughput likewise in IOPS-months and MiB/s-months. An EBS volume is billed at least
//!   60 seconds over its life (its storage, IOPS and throughput each): when all of a
//!   volume's records of one part end within a minute of its first start, the last is
//!   billed to that minute. A modification closing one record and opening the next is not
//!   a new start. Snapshots and root volumes (the instance's `storage` record) have no
//!   minimum;
//! - public IPv4 addresses are billed per second at an hourly price, in use or idle;
//! - the free tier gives each account, per UTC calendar month and while the account is in
//!   its first 12 months, 750 instance-hours shared by t2.micro and t3.micro, 30 GB-months
//!   of EBS gp2, gp3 and magnetic storage, 1 GB-month of snapshots and 750 hours of in-use
//!   public IPv4. It covers the month's earliest usage
//!   first: the allowance is consumed in time order by a sweep over the month, so it runs
//!   out at one instant, and everything after it is charged. Usage the free tier covers
//!   keeps its quantity and costs zero, as on an AWS bill.
//!
//! Usage is split at month boundaries (the free tier is monthly) and at the boundaries of
//! the report's periods (hours, days, months). Because the free tier is worked out per
//! record from the whole month before any splitting, a report's figures do not depend on
//! its granularity or on the window it asks for: the days of a month add up to the month.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use crate::amount::{Price, Quantity, Usd};
use crate::calendar::{
    add_months, floor_day, floor_hour, Month, MS_PER_DAY, MS_PER_HOUR, MS_PER_MINUTE,
};
use crate::prices::PriceList;
use crate::usage::{
    Account, ClassKey, Measure, Pool, RecordView, UsageClass, UsageKind, UsageRecord,
};

/// EC2's minimum charge per instance start.
pub const MINIMUM_COMPUTE_MS: i64 = MS_PER_MINUTE;
/// EBS's minimum charge per volume.
pub const MINIMUM_VOLUME_MS: i64 = MS_PER_MINUTE;

/// Why a set of records cannot be rated. Each is a bug in whoever wrote the records.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    #[error("usage record of {resource}: the price list has no price for instance type {instance_type:?}")]
    UnpricedInstanceType {
        resource: String,
        instance_type: String,
    },
    #[error("usage record of {resource}: ends ({end_ms}) before it starts ({start_ms})")]
    EndsBeforeStart {
        resource: String,
        start_ms: i64,
        end_ms: i64,
    },
    #[error("usage record of {resource}: unknown account {account}")]
    UnknownAccount { resource: String, account: String },
    #[error("account {0} is listed twice")]
    DuplicateAccount(String),
}

/// The usage records, accounts and prices one report is computed from.
///
/// Pass every record of every account the report may show that overlaps the calendar months
/// the report touches (whole months, because the free tier is worked out per month), open
/// records included. Records may be pre-filtered by time that way, never by kind or tag.
pub struct Ledger<'a> {
    pub(crate) records: &'a [UsageRecord],
    pub(crate) accounts: &'a [Account],
    pub(crate) prices: &'a PriceList,
    pub(crate) region: &'a str,
    pub(crate) classes: Vec<UsageClass>,
    /// Each class's unit price (one price per usage type).
    pub(crate) class_prices: Vec<Price>,
    pub(crate) resolved: Vec<Resolved>,
}

/// What rating needs of a record, resolved once.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Resolved {
    pub account: u32,
    pub class: u32,
    pub start: i64,
    pub end: Option<i64>,
    /// GiB, IOPS or MiB/s of a monthly-priced record.
    pub units: u32,
    pub price: Price,
    /// The record is billed at least to here (a volume's minimum); `i64::MIN` for none.
    pub min_end: i64,
}

/// The figures of one report cell (one period, one group).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Cell {
    /// What the usage costs after the free tier.
    pub cost: Usd,
    /// All the usage, free or not.
    pub quantity: Quantity,
    /// The part of `quantity` the free tier covered.
    pub free_quantity: Quantity,
    /// Instance-hours times EC2's size factor (zero for other usage).
    pub normalized: Quantity,
    /// Some usage fell in the cell (its figures may still be zero).
    pub used: bool,
}

impl std::ops::AddAssign for Cell {
    fn add_assign(&mut self, o: Cell) {
        self.cost += o.cost;
        self.quantity += o.quantity;
        self.free_quantity += o.free_quantity;
        self.normalized += o.normalized;
        self.used |= o.used;
    }
}

/// How a report's window is cut into periods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Periods {
    Hourly,
    Daily,
    Monthly,
    /// The whole window is one period.
    Whole,
}

impl Periods {
    /// The first period boundary after `t`.
    fn next_boundary(self, t: i64) -> i64 {
        match self {
            Periods::Hourly => floor_hour(t) + MS_PER_HOUR,
            Periods::Daily => floor_day(t) + MS_PER_DAY,
            Periods::Monthly => Month::of(t).end_ms(),
            Periods::Whole => i64::MAX,
        }
    }

    /// The index of the period containing `t` in a window starting at `start`.
    fn index(self, start: i64, t: i64) -> u32 {
        let i = match self {
            Periods::Hourly => (floor_hour(t) - floor_hour(start)) / MS_PER_HOUR,
            Periods::Daily => (floor_day(t) - floor_day(start)) / MS_PER_DAY,
            Periods::Monthly => Month::of(t).index() - Month::of(start).index(),
            Periods::Whole => 0,
        };
        i as u32
    }

    /// How many periods `[start, end)` is cut into.
    pub fn count(self, start: i64, end: i64) -> usize {
        if start >= end {
            0
        } else {
            self.index(start, end - 1) as usize + 1
        }
    }

    /// The periods of `[start, end)`, the first and last possibly partial.
    pub fn bounds(self, start: i64, end: i64) -> Vec<(i64, i64)> {
        let mut out = Vec::new();
        let mut t = start;
        while t < end {
            let next = self.next_boundary(t).min(end);
            out.push((t, next));
            t = next;
        }
        out
    }
}

/// A fast non-cryptographic hasher for the engine's internal maps, whose keys are short
/// (ids, indexes) and come from gureum's own store, not from a request.
#[derive(Default)]
pub(crate) struct IntHasher(u64);

impl Hasher for IntHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 =
                (self.0.rotate_left(5) ^ u64::from(*b)).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
    }
    fn write_u32(&mut self, n: u32) {
        self.0 = (self.0.rotate_left(5) ^ u64::from(n)).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
}

pub(crate) type IntMap<K, V> = HashMap<K, V, BuildHasherDefault<IntHasher>>;

impl<'a> Ledger<'a> {
    /// Check and resolve the records. `region` is the region gureum serves (the `REGION`
    /// dimension and the usage-type prefix); the prices are whatever the list says.
    pub fn new(
        records: &'a [UsageRecord],
        accounts: &'a [Account],
        prices: &'a PriceList,
        region: &'a str,
    ) -> Result<Ledger<'a>, LedgerError> {
        let mut account_index: IntMap<&str, u32> = IntMap::default();
        for (i, a) in accounts.iter().enumerate() {
            if account_index.insert(a.id.as_str(), i as u32).is_some() {
                return Err(LedgerError::DuplicateAccount(a.id.clone()));
            }
        }
        let mut classes: Vec<UsageClass> = Vec::new();
        let mut class_prices: Vec<Price> = Vec::new();
        let mut class_index: IntMap<ClassKey<'a>, u32> = IntMap::default();
        // Records come grouped by account: look the account up only when it changes.
        let mut last_account: Option<(&str, u32)> = None;
        let mut resolved = Vec::with_capacity(records.len());
        for r in records {
            let account = match last_account {
                Some((id, a)) if id == r.account_id => a,
                _ => {
                    let a = *account_index.get(r.account_id.as_str()).ok_or_else(|| {
                        LedgerError::UnknownAccount {
                            resource: r.resource_id.clone(),
                            account: r.account_id.clone(),
                        }
                    })?;
                    last_account = Some((&r.account_id, a));
                    a
                }
            };
            if let Some(end) = r.end_ms {
                if end < r.start_ms {
                    return Err(LedgerError::EndsBeforeStart {
                        resource: r.resource_id.clone(),
                        start_ms: r.start_ms,
                        end_ms: end,
                    });
                }
            }
            let price = match &r.kind {
                UsageKind::Compute { instance_type } => prices
                    .instance_hour(instance_type)
                    .ok_or_else(|| LedgerError::UnpricedInstanceType {
                        resource: r.resource_id.clone(),
                        instance_type: instance_type.clone(),
                    })?,
                UsageKind::Storage { .. } => prices.gp3_gb_month,
                UsageKind::PublicIpv4 | UsageKind::ElasticIp { .. } => prices.public_ipv4_hour,
                UsageKind::Volume { volume_type, .. } => prices.volume_gb_month(*volume_type),
                UsageKind::VolumeIops {
                    volume_type, tier, ..
                } => prices.iops_month(*volume_type, *tier),
                UsageKind::VolumeThroughput { .. } => prices.ebs.gp3_throughput_month,
                UsageKind::Snapshot { .. } => prices.ebs.snapshot_gb_month,
            };
            // Quantities differ per record but share a class.
            let key = r.kind.class_key();
            let class = *class_index.entry(key).or_insert_with(|| {
                classes.push(UsageClass::of(
                    &r.kind,
                    region,
                    &prices.free_tier.compute_types,
                ));
                class_prices.push(price);
                classes.len() as u32 - 1
            });
            resolved.push(Resolved {
                account,
                class,
                start: r.start_ms,
                end: r.end_ms,
                units: r.kind.units(),
                price,
                min_end: i64::MIN,
            });
        }
        apply_minimums(records, &classes, &mut resolved);
        Ok(Ledger {
            records,
            accounts,
            prices,
            region,
            classes,
            class_prices,
            resolved,
        })
    }

    pub fn records(&self) -> &'a [UsageRecord] {
        self.records
    }

    pub fn accounts(&self) -> &'a [Account] {
        self.accounts
    }

    pub fn prices(&self) -> &'a PriceList {
        self.prices
    }

    pub fn region(&self) -> &'a str {
        self.region
    }

    pub(crate) fn view(&self, i: usize) -> RecordView<'_> {
        let r = &self.resolved[i];
        RecordView {
            record: &self.records[i],
            class: &self.classes[r.class as usize],
            account: &self.accounts[r.account as usize],
            region: self.region,
        }
    }

    pub(crate) fn class_of(&self, i: usize) -> &UsageClass {
        &self.classes[self.resolved[i].class as usize]
    }

    /// The interval a record is billed for at `now`: open records run to `now`, and a
    /// compute record lasts at least [`MINIMUM_COMPUTE_MS`].
    pub(crate) fn billed_interval(&self, i: usize, now: i64) -> (i64, i64) {
        let r = &self.resolved[i];
        let end = r.end.unwrap_or(now.max(r.start));
        match self.classes[r.class as usize].measure {
            Measure::Compute { .. } => (r.start, end.max(r.start + MINIMUM_COMPUTE_MS)),
            _ => (r.start, end.max(r.min_end)),
        }
    }

    /// Quantity units a record accrues per millisecond in a month of `days` days.
    fn rate_per_ms(&self, i: usize, days: u32) -> i128 {
        let r = &self.resolved[i];
        match self.classes[r.class as usize].measure {
            Measure::Monthly { .. } => Quantity::gb_month_per_ms(r.units, days),
            _ => Quantity::PER_MS_HOURLY,
        }
    }

    /// When the account's free tier ends (`None`: it never had one).
    fn free_tier_end(&self, account: u32) -> Option<i64> {
        let months = self.prices.free_tier.months;
        (months > 0).then(|| {
            add_months(
                self.accounts[account as usize].created_ms,
                i64::from(months),
            )
        })
    }

    fn allowance(&self, pool: Pool) -> i128 {
        let ft = &self.prices.free_tier;
        let units = match pool {
            Pool::Compute => ft.compute_hours,
            Pool::Storage => ft.storage_gb_months,
            Pool::Snapshot => ft.snapshot_gb_months,
            Pool::Ipv4 => ft.public_ipv4_hours,
        };
        Quantity::whole(i64::from(units)).raw()
    }

    /// How much of each record's usage in `month` the free tier covers, in quantity units,
    /// indexed by record.
    pub(crate) fn free_tier_cover(&self, month: Month, now: i64) -> Vec<i128> {
        let (ms, me) = (month.start_ms(), month.end_ms());
        let mut pools: IntMap<u64, (Pool, Vec<Eligible>)> = IntMap::default();
        let mut expiry: Vec<Option<Option<i64>>> = vec![None; self.accounts.len()];
        for i in 0..self.resolved.len() {
            let Some(pool) = self.classes[self.resolved[i].class as usize].measure.pool() else {
                continue;
            };
            let account = self.resolved[i].account;
            let Some(ends) =
                *expiry[account as usize].get_or_insert_with(|| self.free_tier_end(account))
            else {
                continue;
            };
            let (s, e) = self.billed_interval(i, now);
            let (s, e) = (s.max(ms), e.min(me).min(ends));
            if s < e {
                let rate = self.rate_per_ms(i, month.days());
                pools
                    .entry(u64::from(account) * Pool::COUNT + pool as u64)
                    .or_insert_with(|| (pool, Vec::new()))
                    .1
                    .push((i as u32, s, e, rate));
            }
        }
        let mut cover = vec![0; self.resolved.len()];
        for (pool, intervals) in pools.into_values() {
            sweep(&intervals, self.allowance(pool), &mut cover);
        }
        cover
    }

    /// Rate the usage in `[start, end)` at `now`, cut into `periods`. `group_of` places a
    /// record in a report group (`None` leaves it out); it is asked only about records with
    /// usage in the window.
    pub(crate) fn rate(
        &self,
        start: i64,
        end: i64,
        periods: Periods,
        now: i64,
        group_of: &mut dyn FnMut(usize) -> Option<u32>,
    ) -> Rated {
        let n_periods = periods.count(start, end);
        let mut rated = Rated {
            periods: n_periods,
            groups: Vec::new(),
        };
        if start >= end {
            return rated;
        }
        let first_month = Month::of(start);
        let mut covers: Vec<Option<Vec<i128>>> = Vec::new();
        for i in 0..self.resolved.len() {
            let (es, ee) = self.billed_interval(i, now);
            let (a, b) = (es.max(start), ee.min(end));
            if a >= b {
                continue;
            }
            let Some(group) = group_of(i) else { continue };
            let group = group as usize;
            if rated.groups.len() <= group {
                rated.groups.resize_with(group + 1, Vec::new);
            }
            let cells = &mut rated.groups[group];
            if cells.is_empty() {
                cells.resize(n_periods, Cell::default());
            }
            let r = &self.resolved[i];
            let measure = self.classes[r.class as usize].measure;
            let normalization = match measure {
                Measure::Compute { normalization, .. } => i128::from(normalization),
                _ => 0,
            };
            let mut t = a;
            // One month at a time: the rate and the free-tier cover are the month's.
            while t < b {
                let month = Month::of(t);
                let (ms, me) = (month.start_ms(), month.end_ms());
                let month_end = b.min(me);
                let rate = self.rate_per_ms(i, month.days());
                let mut covered = 0;
                if measure.pool().is_some() {
                    let m = (month.index() - first_month.index()) as usize;
                    if covers.len() <= m {
                        covers.resize_with(m + 1, || None);
                    }
                    covered = covers[m].get_or_insert_with(|| self.free_tier_cover(month, now))[i];
                }
                // The cover is the earliest part of the record's usage in the month.
                let mut before = rate * i128::from(t - es.max(ms));
                let mut p = periods.index(start, t) as usize;
                while t < month_end {
                    let piece_end = month_end.min(periods.next_boundary(t));
                    let quantity = rate * i128::from(piece_end - t);
                    let free = (covered - before).clamp(0, quantity);
                    before += quantity;
                    let cell = &mut cells[p];
                    cell.cost += Usd::charge(r.price, Quantity::from_raw(quantity - free));
                    cell.quantity += Quantity::from_raw(quantity);
                    cell.free_quantity += Quantity::from_raw(free);
                    cell.normalized += Quantity::from_raw(quantity * normalization / 4);
                    cell.used = true;
                    p += 1;
                    t = piece_end;
                }
            }
        }
        rated
    }
}

/// Rated usage: the figures of every (period, group) cell.
pub(crate) struct Rated {
    periods: usize,
    /// Per group, one cell per period; empty for ids no record was placed in.
    groups: Vec<Vec<Cell>>,
}

impl Rated {
    /// `(period, group, cell)` of every cell with usage, by group, then period.
    pub fn cells(&self) -> impl Iterator<Item = (u32, u32, &Cell)> + '_ {
        self.groups.iter().enumerate().flat_map(|(g, cells)| {
            cells
                .iter()
                .enumerate()
                .filter(|(_, c)| c.used)
                .map(move |(p, c)| (p as u32, g as u32, c))
        })
    }

    /// The sum of each period's cells, whatever their group.
    pub fn per_period(&self) -> Vec<Cell> {
        let mut out = vec![Cell::default(); self.periods];
        for (p, _, c) in self.cells() {
            out[p as usize] += *c;
        }
        out
    }

    /// The sum of each group's cells over all periods, indexed by group.
    pub fn per_group(&self) -> Vec<Cell> {
        let mut out = vec![Cell::default(); self.groups.len()];
        for (_, g, c) in self.cells() {
            out[g as usize] += *c;
        }
        out
    }
}

/// Give each volume its minimum (see the module's rules): per volume and part (storage, or
/// provisioned IOPS of one tier, or throughput), the record that ends last is billed at
/// least [`MINIMUM_VOLUME_MS`] past the first one's start.
fn apply_minimums(records: &[UsageRecord], classes: &[UsageClass], resolved: &mut [Resolved]) {
    // (volume, part) → (first start, the record ending last, its end; open is last).
    let mut lives: HashMap<(&str, u8), (i64, usize, i64)> = HashMap::new();
    for (i, r) in resolved.iter().enumerate() {
        let Measure::Monthly { minimum: true, .. } = classes[r.class as usize].measure else {
            continue;
        };
        let rec = &records[i];
        let part = match rec.kind {
            UsageKind::VolumeIops { tier, .. } => tier,
            UsageKind::VolumeThroughput { .. } => 9,
            _ => 0,
        };
        let end = r.end.unwrap_or(i64::MAX);
        let life = lives
            .entry((rec.resource_id.as_str(), part))
            .or_insert((r.start, i, end));
        life.0 = life.0.min(r.start);
        if end >= life.2 {
            (life.1, life.2) = (i, end);
        }
    }
    for (first, last, _) in lives.into_values() {
        resolved[last].min_end = first + MINIMUM_VOLUME_MS;
    }
}

/// A record's usage the free tier may cover: `(record, start, end, quantity per ms)`.
type Eligible = (u32, i64, i64, i128);

/// Spend `allowance` on `intervals` (record, start, end, rate per ms) in time order: every
/// record is covered for its usage before the instant the allowance runs out, and nothing
/// after it. That instant falls in a stretch of time in which no record starts or ends;
/// what is left of the allowance there is shared among the records running in proportion
/// to their rates (as time would spend it), the last few indivisible units in record
/// order, so the cover adds up to the allowance exactly.
fn sweep(intervals: &[Eligible], allowance: i128, cover: &mut [i128]) {
    let total: i128 = intervals
        .iter()
        .map(|(_, s, e, r)| r * i128::from(e - s))
        .sum();
    if total <= allowance {
        for (i, s, e, r) in intervals {
            cover[*i as usize] += r * i128::from(e - s);
        }
        return;
    }
    let mut events: Vec<(i64, i128)> = Vec::with_capacity(intervals.len() * 2);
    for (_, s, e, r) in intervals {
        events.push((*s, *r));
        events.push((*e, -*r));
    }
    events.sort_unstable_by_key(|(t, _)| *t);
    let (mut used, mut rate, mut prev) = (0i128, 0i128, events[0].0);
    let (mut from, mut to, mut left) = (prev, prev, 0i128);
    for (t, delta) in events {
        let spent = rate * i128::from(t - prev);
        if used + spent >= allowance {
            (from, to, left) = (prev, t, allowance - used);
            break;
        }
        used += spent;
        rate += delta;
        prev = t;
    }
    let mut running: Vec<(u32, i128)> = Vec::new();
    for &(i, s, e, r) in intervals {
        let before = r * i128::from(e.min(from) - s).max(0);
        if before > 0 {
            cover[i as usize] += before;
        }
        if s <= from && e >= to && to > from {
            running.push((i, r));
        }
    }
    running.sort_unstable_by_key(|(i, _)| *i);
    let rates: i128 = running.iter().map(|(_, r)| r).sum();
    if rates == 0 {
        return;
    }
    let mut given = 0;
    for (i, r) in &running {
        let share = r * left / rates;
        cover[*i as usize] += share;
        given += share;
    }
    for (i, _) in running.iter().take((left - given) as usize) {
        cover[*i as usize] += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sweep_spends_the_allowance_in_time_order() {
        let h = Quantity::PER_MS_HOURLY;
        let hour = MS_PER_HOUR;
        // Record 1 runs hours 0..10, record 2 hours 5..20; 12 hours of allowance.
        let intervals = [(1, 0, 10 * hour, h), (2, 5 * hour, 20 * hour, h)];
        let mut cover = vec![0; 3];
        sweep(&intervals, Quantity::whole(12).raw(), &mut cover);
        // Hours 0..5: one record (5 h); 5..8.5: two records (7 h): runs out at 8.5 h.
        assert_eq!(Quantity::from_raw(cover[1]).to_decimal(6), "8.5");
        assert_eq!(Quantity::from_raw(cover[2]).to_decimal(6), "3.5");
        // Enough allowance: everything covered.
        let mut cover = vec![0; 3];
        sweep(&intervals, Quantity::whole(100).raw(), &mut cover);
        assert_eq!(Quantity::from_raw(cover[2]), Quantity::whole(15));
        // Two records running side by side share the allowance equally, and the cover adds
        // up to the allowance to the unit.
        let intervals = [(1, 0, 3, 7), (2, 0, 3, 7)];
        let mut cover = vec![0; 3];
        sweep(&intervals, 21, &mut cover);
        assert_eq!((cover[1], cover[2]), (11, 10));
        // Shares follow the rates (a 16 GiB volume spends twice as fast as an 8 GiB one).
        let intervals = [(1, 0, 100, 2), (2, 0, 100, 1)];
        let mut cover = vec![0; 3];
        sweep(&intervals, 90, &mut cover);
        assert_eq!((cover[1], cover[2]), (60, 30));
    }

    #[test]
    fn periods_cut_at_calendar_boundaries() {
        use crate::calendar::utc;
        let s = utc(2024, 1, 30, 12, 0, 0);
        let e = utc(2024, 2, 2, 0, 0, 0);
        let d = Periods::Daily.bounds(s, e);
        assert_eq!(d.len(), 3);
        assert_eq!(d[0], (s, utc(2024, 1, 31, 0, 0, 0)));
        assert_eq!(Periods::Daily.index(s, utc(2024, 2, 1, 5, 0, 0)), 2);
        let m = Periods::Monthly.bounds(s, e);
        assert_eq!(
            m,
            vec![(s, utc(2024, 2, 1, 0, 0, 0)), (utc(2024, 2, 1, 0, 0, 0), e)]
        );
        assert_eq!(Periods::Hourly.bounds(s, s + 3 * MS_PER_HOUR).len(), 3);
        assert_eq!(Periods::Whole.bounds(s, e), vec![(s, e)]);
        let year = (utc(2024, 1, 1, 0, 0, 0), utc(2025, 1, 1, 0, 0, 0));
        for p in [
            Periods::Hourly,
            Periods::Daily,
            Periods::Monthly,
            Periods::Whole,
        ] {
            for (a, b) in [(s, e), (s, s + 1), (s, s + 5 * MS_PER_DAY + 7), year] {
                assert_eq!(p.count(a, b), p.bounds(a, b).len(), "{p:?} {a} {b}");
            }
            assert_eq!(p.count(s, s), 0);
        }
    }
}
