//! gureum's metering and billing core. Pure: no I/O, no clock, no database, no server.
//!
//! The store records [`UsageRecord`]s (intervals of running instances, root volumes, EBS
//! volumes and snapshots, and public IPv4 addresses) in the same transaction as the state
//! change that causes them;
//! this crate turns them into money and reports. Every function takes `now` (epoch
//! milliseconds) from the caller, so a test can drive a month of usage in a moment.
//!
//! Modules, and what each owns:
//! - [`calendar`]: UTC calendar arithmetic on epoch milliseconds, [`Month`], Cost
//!   Explorer's date forms;
//! - [`amount`]: exact fixed-point money and quantities ([`Usd`], [`Quantity`],
//!   [`Price`]); rounding happens only when rendering;
//! - [`prices`]: the price list shipped with gureum (AWS us-east-1 on-demand Linux) and
//!   the operator's overrides, the free tier's allowances;
//! - [`usage`]: the records and accounts billing reads, and AWS's names for usage
//!   (services, usage types, Cost Explorer dimensions);
//! - [`rating`]: [`Ledger`], the billing rules (per-second, 60-second minimums, GB-months
//!   and IOPS-months, free tier in time order) and the engine behind every report;
//! - [`bill`]: monthly bills per account and their text table;
//! - [`ce`]: the Cost Explorer API (JSON 1.1): `GetCostAndUsage`, `GetCostForecast`,
//!   `GetDimensionValues`, `GetTags`, with Cost Explorer's error shapes.
//!
//! What the store records, and when (each in the transaction of the state change):
//! - [`UsageKind::Compute`]: opened when an instance enters `running`, closed when it
//!   leaves it (`stopping`, `shutting-down`, or a crash the agent notices); one record per
//!   start, so each start gets its 60-second minimum;
//! - [`UsageKind::Storage`]: the root volume, opened at launch (`pending`), closed at
//!   `terminated`;
//! - [`UsageKind::PublicIpv4`]: the auto-assigned address, opened when the instance gets
//!   it and closed when it loses it (stop, terminate, or an Elastic IP taking its place);
//! - [`UsageKind::ElasticIp`]: opened at allocation (idle), and closed and reopened with
//!   the other `in_use` whenever it starts or stops being associated with a running
//!   instance; closed at release;
//! - [`UsageKind::Volume`], [`UsageKind::VolumeIops`], [`UsageKind::VolumeThroughput`]: an
//!   EBS volume's size of one type, its billed provisioned IOPS and gp3 throughput, opened
//!   at `CreateVolume`, closed and reopened by a modification that changes them, closed at
//!   `DeleteVolume`;
//! - [`UsageKind::Snapshot`]: opened at `CreateSnapshot`/`CopySnapshot`, closed at
//!   `DeleteSnapshot`.
//!
//! An open record (no end) is rated up to `now`, so a `kill -9` loses nothing: the record
//! stays open until the restarted server closes it at the next state change.
//!
//! ```
//! use gureum_billing::{calendar::utc, Account, Ledger, Month, PriceList, UsageRecord};
//!
//! let prices = PriceList::aws_default();
//! let accounts = [Account { id: "111122223333".into(), name: "demo".into(), created_ms: 0 }];
//! let start = utc(2024, 5, 1, 0, 0, 0);
//! let records = [UsageRecord::compute("111122223333", "i-1", "m5.large", start, Some(start + 3_600_000))];
//! let ledger = Ledger::new(&records, &accounts, &prices, "us-east-1").unwrap();
//! let bill = ledger.monthly_bill("111122223333", Month::of(start), utc(2024, 6, 1, 0, 0, 0)).unwrap();
//! assert_eq!(bill.total.to_fixed(3), "0.096");
//! ```

pub mod amount;
pub mod bill;
pub mod calendar;
pub mod ce;
pub mod prices;
pub mod rating;
pub mod usage;

pub use amount::{Price, Quantity, Usd};
pub use bill::{Bill, BillError, BillLine};
pub use calendar::Month;
pub use prices::{FreeTier, PriceError, PriceList};
pub use rating::{Ledger, LedgerError, MINIMUM_COMPUTE_MS};
pub use usage::{Account, Dimension, UsageKind, UsageRecord};

#[cfg(test)]
mod tests;
