//! Metering into money: the store's usage intervals (see `gureum_store::usage`) as
//! `gureum_billing` records, rated with the cloud's price list for one account at a time, for
//! Cost Explorer requests and monthly bills. Another account's usage never enters a ledger.

use std::sync::Arc;

use gureum_billing::bill::Bill;
use gureum_billing::ce::CeReply;
use gureum_billing::{Account, Ledger, Month, PriceList, UsageRecord};
use gureum_store::{accounts as acct_db, instances as inst_db, tags as tag_db, usage};

use crate::{Cloud, CoreError, CoreResult};

/// One account's billing inputs.
struct Inputs {
    account: Account,
    records: Vec<UsageRecord>,
}

fn record(
    r: usage::UsageRow,
    tags: Vec<(String, String)>,
    az: Option<String>,
) -> Option<UsageRecord> {
    let rec = match r.kind.as_str() {
        usage::COMPUTE => UsageRecord::compute(
            &r.account_id,
            &r.resource_id,
            &r.detail,
            r.start_ms,
            r.end_ms,
        ),
        usage::STORAGE => UsageRecord::storage(
            &r.account_id,
            &r.resource_id,
            r.quantity.round() as u32,
            r.start_ms,
            r.end_ms,
        ),
        usage::PUBLIC_IPV4 => {
            UsageRecord::public_ipv4(&r.account_id, &r.resource_id, r.start_ms, r.end_ms)
        }
        usage::ELASTIC_IP => UsageRecord::elastic_ip(
            &r.account_id,
            &r.resource_id,
            r.detail == "in-use",
            r.start_ms,
            r.end_ms,
        ),
        _ => return None,
    };
    let rec = rec.with_tags(tags);
    Some(match az {
        Some(z) => rec.in_zone(&z),
        None => rec,
    })
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
        self.blocking(move |s| {
            s.read(|c| {
                let row = acct_db::find(c, &account)?
                    .ok_or_else(|| CoreError::Internal(format!("no account {account}")))?;
                let tags = tag_db::all_by_resource(c, &row.id)?;
                let zones: std::collections::HashMap<String, String> =
                    inst_db::of_account(c, &row.id)?
                        .into_iter()
                        .map(|i| (i.id, i.az))
                        .collect();
                let records = usage::overlapping(c, Some(&row.id), 0, i64::MAX)?
                    .into_iter()
                    .filter_map(|u| {
                        let t = tags
                            .get(&u.resource_id)
                            .map(|t| t.iter().map(|t| (t.key.clone(), t.value.clone())).collect())
                            .unwrap_or_default();
                        let az = zones.get(&u.resource_id).cloned();
                        record(u, t, az)
                    })
                    .collect();
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
        let inputs = self.billing_inputs(account).await?;
        let accounts = [inputs.account];
        let ledger = Ledger::new(&inputs.records, &accounts, &self.prices, &self.region.name)
            .map_err(|e| CoreError::Internal(format!("usage records: {e}")))?;
        Ok(gureum_billing::ce::handle(
            &ledger,
            target,
            body,
            self.clock.now_millis(),
        ))
    }

    /// The account's bill for `month` (month to date for the current month). `account` is an
    /// id or a name.
    pub async fn monthly_bill(&self, account: &str, month: Option<Month>) -> CoreResult<Bill> {
        let inputs = self.billing_inputs(account).await?;
        let now = self.clock.now_millis();
        let month = month.unwrap_or_else(|| Month::of(now));
        let id = inputs.account.id.clone();
        let accounts = [inputs.account];
        let ledger = Ledger::new(&inputs.records, &accounts, &self.prices, &self.region.name)
            .map_err(|e| CoreError::Internal(format!("usage records: {e}")))?;
        ledger
            .monthly_bill(&id, month, now)
            .map_err(|e| CoreError::Internal(e.to_string()))
    }
}
