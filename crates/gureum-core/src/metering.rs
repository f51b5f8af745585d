//! Metering into money: the store's usage intervals (see `gureum_store::usage`) as
//! `gureum_billing` records, rated with the cloud's price list for one account at a time, for
//! Cost Explorer requests and monthly bills. Another account's usage never enters a ledger.
//!
//! Cost Explorer requests are CPU work over an account's whole usage: at most
//! [`CE_RUNNING`] run at once, on the blocking pool (never on the executor, where they would
//! stall every other request), with at most [`CE_WAITING`] more waiting their turn; past that
//! the answer is `LimitExceededException` at once. What one request may compute is bounded
//! by `gureum_billing::ce` (its history limits and page sizes).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock};

use gureum_billing::bill::Bill;
use gureum_billing::ce::CeReply;
use gureum_billing::{Account, Ledger, Month, PriceList, UsageRecord};
use gureum_store::usage;
use gureum_types::{InstanceState, VolumeType};

use crate::{Cloud, CoreError, CoreResult};

/// How far back an interval's end must lie before it is cached: ends come from the clock at the
/// moment of closing, so anything that ends later than this cannot already be in the cache.
const SETTLED_MS: i64 = 60_000;
/// Past this many recent intervals the cache is rebuilt with a later cut-off.
const REBUILD_AFTER: usize = 2_000;

/// Cost Explorer requests computing at once (one core's worth).
pub const CE_RUNNING: usize = 1;
/// Cost Explorer requests that may wait for their turn; more are refused.
pub const CE_WAITING: usize = 32;

/// The gate every Cost Explorer request passes, process-wide (the CPU it guards is too).
struct Gate {
    running: tokio::sync::Semaphore,
    /// Requests admitted and not yet finished (running or waiting).
    admitted: AtomicUsize,
}

static CE_GATE: LazyLock<Gate> = LazyLock::new(|| Gate {
    running: tokio::sync::Semaphore::new(CE_RUNNING),
    admitted: AtomicUsize::new(0),
});

/// One admitted request; leaving (finished, or the client gone) makes room.
struct Admitted;

impl Admitted {
    fn enter() -> Option<Admitted> {
        let before = CE_GATE.admitted.fetch_add(1, Ordering::AcqRel);
        if before >= CE_RUNNING + CE_WAITING {
            CE_GATE.admitted.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(Admitted)
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        CE_GATE.admitted.fetch_sub(1, Ordering::AcqRel);
    }
}

/// One account's closed intervals that ended before `cutoff`, converted once: they never change
/// again, so a request reads only the open and recent ones from the store.
#[derive(Default)]
pub(crate) struct SettledUsage {
    cutoff: i64,
    records: Vec<(UsageRecord, String)>,
}

/// One account's billing inputs.
struct Inputs {
    account: Account,
    records: Vec<UsageRecord>,
}

/// The billing records of one usage interval: none for a kind billing does not know (or an
/// unreadable one), several for provisioned IOPS split into price tiers.
fn records(r: usage::UsageRow, az: Option<&String>) -> Vec<UsageRecord> {
    let (a, id, s, e) = (&r.account_id, &r.resource_id, r.start_ms, r.end_ms);
    // Quantities are whole GiB, IOPS and MiB/s, stored as REAL.
    let units = r.quantity.round() as u32;
    let volume_type = || gureum_types::enums::parse_wire::<VolumeType>(&r.detail).ok();
    let recs = match r.kind.as_str() {
        usage::COMPUTE => vec![UsageRecord::compute(a, id, &r.detail, s, e)],
        usage::STORAGE => vec![UsageRecord::storage(a, id, units, s, e)],
        usage::PUBLIC_IPV4 => vec![UsageRecord::public_ipv4(a, id, s, e)],
        usage::ELASTIC_IP => vec![UsageRecord::elastic_ip(a, id, r.detail == "in-use", s, e)],
        usage::VOLUME => volume_type()
            .map(|t| UsageRecord::volume(a, id, t, units, s, e))
            .into_iter()
            .collect(),
        usage::VOLUME_IOPS => volume_type()
            .map(|t| UsageRecord::volume_iops(a, id, t, units, s, e))
            .unwrap_or_default(),
        usage::VOLUME_THROUGHPUT => UsageRecord::volume_throughput(a, id, units, s, e)
            .into_iter()
            .collect(),
        usage::SNAPSHOT => vec![UsageRecord::snapshot(a, id, units, s, e)],
        _ => vec![],
    };
    recs.into_iter()
        .map(|rec| match az {
            Some(z) => rec.in_zone(z),
            None => rec,
        })
        .collect()
}

impl Cloud {
    /// Rate with this price list instead of AWS's (the operator's override).
    pub fn with_prices(mut self, prices: PriceList) -> Cloud {
        self.prices = Arc::new(prices);
        self
    }

    pub fn prices(&self) -> &PriceList {
        &self.prices
    }

    async fn billing_inputs(&self, account: &str) -> CoreResult<Inputs> {
        let account = account.to_string();
        let cache = self.usage_cache.clone();
        let now = self.clock.now_millis();
        self.blocking(move |s| {
            s.read(|c| {
                let row = c
                    .accounts()
                    .find(&account)?
                    .ok_or_else(|| CoreError::NoAccount(account.clone()))?;
                let tags = c.tags().all_by_resource(&row.id)?;
                let zones = c.instances().zones_of_account(&row.id)?;
                let convert = |u: usage::UsageRow| {
                    let id = u.resource_id.clone();
                    let az = zones.get(&u.resource_id);
                    records(u, az).into_iter().map(move |r| (r, id.clone()))
                };
                let mut guard = cache.lock().expect("usage cache poisoned");
                let settled = guard.entry(row.id.clone()).or_default();
                let mut recent: Vec<(UsageRecord, String)> = c
                    .usage()
                    .recent(&row.id, settled.cutoff)?
                    .into_iter()
                    .flat_map(convert)
                    .collect();
                if settled.cutoff == 0 || recent.len() > REBUILD_AFTER {
                    // (Re)build: everything that ended well before now is settled.
                    let cutoff = now - SETTLED_MS;
                    let all: Vec<(UsageRecord, String)> = c
                        .usage()
                        .overlapping(Some(&row.id), 0, i64::MAX)?
                        .into_iter()
                        .flat_map(convert)
                        .collect();
                    let (old, new): (Vec<_>, Vec<_>) = all
                        .into_iter()
                        .partition(|(r, _)| r.end_ms.is_some_and(|e| e < cutoff));
                    *settled = SettledUsage {
                        cutoff,
                        records: old,
                    };
                    recent = new;
                }
                let with_tags = |(mut r, id): (UsageRecord, String)| {
                    if let Some(t) = tags.get(&id) {
                        r.tags = t.iter().map(|t| (t.key.clone(), t.value.clone())).collect();
                    }
                    r
                };
                let mut records: Vec<UsageRecord> = settled
                    .records
                    .iter()
                    .cloned()
                    .chain(recent)
                    .map(with_tags)
                    .collect();
                records.sort_by_key(|r| r.start_ms);
                Ok(Inputs {
                    account: Account {
                        id: row.id,
                        name: row.name,
                        created_ms: row.created_at,
                    },
                    records,
                })
            })
        })
        .await
    }

    /// Answer one Cost Explorer request (`X-Amz-Target`, JSON body) for the account.
    pub async fn cost_explorer(
        &self,
        account: &str,
        target: &str,
        body: &[u8],
    ) -> CoreResult<CeReply> {
        let Some(admitted) = Admitted::enter() else {
            tracing::warn!(account, "cost explorer: too many requests waiting");
            return Ok(gureum_billing::ce::limit_exceeded());
        };
        let permit = CE_GATE
            .running
            .acquire()
            .await
            .map_err(|_| CoreError::Closed("cost explorer gate"))?;
        let started = std::time::Instant::now();
        let inputs = self.billing_inputs(account).await?;
        let read = started.elapsed();
        let (prices, region, now) = (
            self.prices.clone(),
            self.region.name.clone(),
            self.clock.now_millis(),
        );
        let (target, body) = (target.to_string(), body.to_vec());
        // The work keeps its permit (and its place) until it ends, even if the client goes
        // away meanwhile: the permits bound the CPU actually in use.
        let reply = tokio::task::spawn_blocking(move || {
            let _held = (permit, admitted);
            let records = inputs.records.len();
            let accounts = [inputs.account];
            let ledger = Ledger::new(&inputs.records, &accounts, &prices, &region)?;
            Ok::<_, CoreError>((
                gureum_billing::ce::handle(&ledger, &target, &body, now),
                records,
            ))
        })
        .await
        .map_err(|source| CoreError::TaskFailed {
            what: "cost explorer task",
            source,
        })?;
        let (reply, records) = reply?;
        tracing::debug!(
            records,
            read_us = read.as_micros() as u64,
            total_us = started.elapsed().as_micros() as u64,
            "cost explorer"
        );
        Ok(reply)
    }

    /// The account's bill for `month` (month to date for the current month). `account` is an
    /// id or a name.
    pub async fn monthly_bill(&self, account: &str, month: Option<Month>) -> CoreResult<Bill> {
        let inputs = self.billing_inputs(account).await?;
        let now = self.clock.now_millis();
        let month = month.unwrap_or_else(|| Month::of(now));
        let id = inputs.account.id.clone();
        let accounts = [inputs.account];
        let ledger = Ledger::new(&inputs.records, &accounts, &self.prices, &self.region.name)?;
        ledger
            .monthly_bill(&id, month, now)
            .map_err(CoreError::from)
    }
}

/// An account's budget against its month so far.
#[derive(Debug, Clone, PartialEq)]
pub struct BudgetStatus {
    pub limit_usd: f64,
    pub actual_usd: f64,
    /// Month-end cost if what runs now keeps running.
    pub forecast_usd: f64,
    pub stop_instances: bool,
    /// The last alert: (month, `actual` or `forecast`, when, amount then).
    pub alert: Option<(String, String, i64, String)>,
}

impl BudgetStatus {
    /// What crossed the limit now, if anything.
    pub fn crossed(&self) -> Option<&'static str> {
        if self.actual_usd >= self.limit_usd {
            Some("actual")
        } else if self.forecast_usd >= self.limit_usd {
            Some("forecast")
        } else {
            None
        }
    }
}

fn usd(s: &str) -> f64 {
    s.parse().unwrap_or(0.0)
}

impl Cloud {
    /// Set the account's monthly budget (USD); `stop_instances` stops its instances once the
    /// actual cost crosses it.
    pub async fn set_budget(
        &self,
        account: &str,
        limit_usd: f64,
        stop_instances: bool,
    ) -> CoreResult<()> {
        if !(limit_usd.is_finite() && limit_usd > 0.0) {
            return Err(CoreError::InvalidBudget(limit_usd));
        }
        let account = account.to_string();
        self.blocking(move |s| {
            s.write(|tx| {
                let row = tx
                    .accounts()
                    .find(&account)?
                    .ok_or_else(|| CoreError::NoAccount(account.clone()))?;
                tx.budgets()
                    .set(&row.id, &limit_usd.to_string(), stop_instances)?;
                Ok(())
            })
        })
        .await
    }

    pub async fn delete_budget(&self, account: &str) -> CoreResult<bool> {
        let account = account.to_string();
        self.blocking(move |s| {
            s.write(|tx| {
                let row = tx
                    .accounts()
                    .find(&account)?
                    .ok_or_else(|| CoreError::NoAccount(account.clone()))?;
                Ok(tx.budgets().delete(&row.id)?)
            })
        })
        .await
    }

    /// The account's budget and where its month stands, if it has one.
    pub async fn budget_status(&self, account: &str) -> CoreResult<Option<BudgetStatus>> {
        let acct = account.to_string();
        let budget = self
            .blocking(move |s| {
                s.read(|c| {
                    let Some(row) = c.accounts().find(&acct)? else {
                        return Ok(None);
                    };
                    Ok(c.budgets().get(&row.id)?)
                })
            })
            .await?;
        let Some(b) = budget else {
            return Ok(None);
        };
        let (actual_usd, forecast_usd) = self.month_to_date(&b.account_id).await?;
        Ok(Some(BudgetStatus {
            limit_usd: usd(&b.limit_usd),
            actual_usd,
            forecast_usd,
            stop_instances: b.stop_instances,
            alert: match (b.alert_month, b.alert_kind, b.alert_at, b.alert_amount) {
                (Some(m), Some(k), Some(at), Some(a)) => Some((m, k, at, a)),
                _ => None,
            },
        }))
    }

    /// The account's cost this month so far and its month-end forecast (if what runs now keeps
    /// running), in USD.
    pub async fn month_to_date(&self, account: &str) -> CoreResult<(f64, f64)> {
        let inputs = self.billing_inputs(account).await?;
        let now = self.clock.now_millis();
        let month = Month::of(now);
        let id = inputs.account.id.clone();
        let accounts = [inputs.account];
        let ledger = Ledger::new(&inputs.records, &accounts, &self.prices, &self.region.name)?;
        let actual = ledger
            .monthly_bill(&id, month, now)
            .map_err(CoreError::from)?
            .total;
        let actual_usd = usd(&actual.to_decimal(6));
        let req = gureum_billing::ce::model::GetCostForecastRequest {
            time_period: Some(gureum_billing::ce::model::DateInterval {
                start: Some(gureum_billing::calendar::format_date(now)),
                end: Some(gureum_billing::calendar::format_date(month.end_ms())),
            }),
            metric: Some("UNBLENDED_COST".into()),
            granularity: Some("MONTHLY".into()),
            filter: None,
            prediction_interval_level: None,
        };
        // Nothing left to forecast (or no history): the month ends where it stands.
        let rest = ledger
            .get_cost_forecast(&req, now)
            .map(|f| usd(&f.total.amount))
            .unwrap_or(0.0);
        Ok((actual_usd, actual_usd + rest))
    }

    /// Look at every budget: raise an alert (the log, and the record the console shows) the
    /// first time in a month the actual or forecast cost crosses it, and stop the account's
    /// instances when the actual cost did and the budget says so. Run beside the control plane
    /// ([`Cloud::spawn_budget_checks`]).
    pub async fn check_budgets(&self) -> CoreResult<()> {
        let budgets = self
            .blocking(|s| s.read(|c| Ok(c.budgets().all()?)))
            .await?;
        let now = self.clock.now_millis();
        let month = Month::of(now).to_string();
        for b in budgets {
            let Some(status) = self.budget_status(&b.account_id).await? else {
                continue;
            };
            let Some(kind) = status.crossed() else {
                continue;
            };
            let already = status
                .alert
                .as_ref()
                .is_some_and(|(m, k, _, _)| m == &month && (k == kind || k == "actual"));
            if already {
                continue;
            }
            let amount = if kind == "actual" {
                status.actual_usd
            } else {
                status.forecast_usd
            };
            tracing::warn!(
                account = %b.account_id,
                kind,
                amount = format!("{amount:.2}"),
                limit = format!("{:.2}", status.limit_usd),
                "budget exceeded"
            );
            let (acct, m, k, a) = (
                b.account_id.clone(),
                month.clone(),
                kind.to_string(),
                format!("{amount:.4}"),
            );
            self.blocking(move |s| {
                s.write(|tx| Ok(tx.budgets().record_alert(&acct, &m, &k, &a, now)?))
            })
            .await?;
            if kind == "actual" && status.stop_instances {
                let live: Vec<String> = self
                    .instance_rows(&b.account_id)
                    .await?
                    .into_iter()
                    .filter(|(r, _)| {
                        r.state == InstanceState::Running || r.state == InstanceState::Pending
                    })
                    .map(|(r, _)| r.id)
                    .collect();
                if !live.is_empty() {
                    tracing::warn!(account = %b.account_id, instances = live.len(), "budget: stopping the account's instances");
                    self.stop_instances(b.account_id.clone(), live, false)
                        .await?;
                }
            }
        }
        Ok(())
    }
}
