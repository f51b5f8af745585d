//! Monthly budgets: one per account, with the last alert it raised (so an alert is raised once
//! per month and kind, also across restarts).

use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::Millis;

aggregate! {
    pub trait Budgets {
        /// Set (or replace) the account's budget; a new limit clears the alert.
        fn set(&self, account_id: &str, limit_usd: &str, stop: bool) -> ();
        fn delete(&self, account_id: &str) -> bool;
        fn get(&self, account_id: &str) -> Option<BudgetRow>;
        fn all(&self) -> Vec<BudgetRow>;
        fn record_alert(&self, account_id: &str, month: &str, kind: &str, amount: &str, now: Millis) -> ();
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BudgetRow {
    pub account_id: String,
    /// USD, as entered (`"10"`, `"2.50"`).
    pub limit_usd: String,
    pub stop_instances: bool,
    pub alert_month: Option<String>,
    /// `actual` or `forecast`.
    pub alert_kind: Option<String>,
    pub alert_at: Option<Millis>,
    pub alert_amount: Option<String>,
}

const COLS: &str =
    "account_id, limit_usd, stop_instances, alert_month, alert_kind, alert_at, alert_amount";

fn row(r: &Row) -> rusqlite::Result<BudgetRow> {
    Ok(BudgetRow {
        account_id: r.get(0)?,
        limit_usd: r.get(1)?,
        stop_instances: r.get(2)?,
        alert_month: r.get(3)?,
        alert_kind: r.get(4)?,
        alert_at: r.get(5)?,
        alert_amount: r.get(6)?,
    })
}

pub(crate) fn set(
    c: &Connection,
    account_id: &str,
    limit_usd: &str,
    stop: bool,
) -> rusqlite::Result<()> {
    c.execute(
        "INSERT INTO budgets (account_id, limit_usd, stop_instances) VALUES (?1,?2,?3) \
         ON CONFLICT(account_id) DO UPDATE SET limit_usd = ?2, stop_instances = ?3, \
         alert_month = NULL, alert_kind = NULL, alert_at = NULL, alert_amount = NULL",
        params![account_id, limit_usd, stop],
    )?;
    Ok(())
}

pub(crate) fn delete(c: &Connection, account_id: &str) -> rusqlite::Result<bool> {
    Ok(c.execute("DELETE FROM budgets WHERE account_id = ?1", [account_id])? == 1)
}

pub(crate) fn get(c: &Connection, account_id: &str) -> rusqlite::Result<Option<BudgetRow>> {
    c.prepare_cached(&format!("SELECT {COLS} FROM budgets WHERE account_id = ?1"))?
        .query_row([account_id], row)
        .optional()
}

pub(crate) fn all(c: &Connection) -> rusqlite::Result<Vec<BudgetRow>> {
    let mut st = c.prepare_cached(&format!("SELECT {COLS} FROM budgets ORDER BY account_id"))?;
    let rows = st.query_map([], row)?;
    rows.collect()
}

pub(crate) fn record_alert(
    c: &Connection,
    account_id: &str,
    month: &str,
    kind: &str,
    amount: &str,
    now: Millis,
) -> rusqlite::Result<()> {
    c.execute(
        "UPDATE budgets SET alert_month = ?2, alert_kind = ?3, alert_amount = ?4, alert_at = ?5 \
         WHERE account_id = ?1",
        params![account_id, month, kind, amount, now],
    )?;
    Ok(())
}
