//! Monthly bills.
//!
//! Owned here: the bill of one account for one calendar month ([`Bill`]), with a line per
//! service, usage type and rate, and its plain-text rendering for `gureum bill`. As on an
//! AWS bill, usage the free tier covers is a line of its own at $0.00, next to the line
//! charged at the on-demand rate.

use std::fmt::Write as _;

use serde::Serialize;

use crate::amount::{Price, Quantity, Usd};
use crate::calendar::Month;
use crate::rating::{Ledger, Periods};
use crate::usage::{Measure, UsageClass};

/// One account's charges for one month.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Bill {
    pub account_id: String,
    pub account_name: String,
    pub month: Month,
    /// The month was not over at `now`: figures will still grow.
    pub estimated: bool,
    /// Ordered by service, usage type, then the free-tier line before the charged one.
    pub lines: Vec<BillLine>,
    pub total: Usd,
}

/// One line: usage of one type at one rate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BillLine {
    pub service: String,
    pub usage_type: String,
    /// AWS-style: `$0.0116 per On Demand Linux t2.micro Instance Hour`.
    pub description: String,
    /// Covered by the free tier (then `rate` and `amount` are zero).
    pub free_tier: bool,
    /// USD per unit.
    pub rate: Price,
    pub quantity: Quantity,
    /// `Hrs`, `GB-Mo`, `IOPS-Mo` or `MiBps-Mo`.
    pub unit: String,
    pub amount: Usd,
}

/// Why a bill cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BillError {
    #[error("unknown account {0}")]
    UnknownAccount(String),
}

impl Ledger<'_> {
    /// The bill of `account_id` for `month`, open usage rated up to `now`.
    pub fn monthly_bill(
        &self,
        account_id: &str,
        month: Month,
        now: i64,
    ) -> Result<Bill, BillError> {
        let account = self
            .accounts
            .iter()
            .position(|a| a.id == account_id)
            .ok_or_else(|| BillError::UnknownAccount(account_id.to_string()))?
            as u32;
        let cells = self.rate(
            month.start_ms(),
            month.end_ms(),
            Periods::Whole,
            now,
            &mut |i| {
                let r = &self.resolved[i];
                (r.account == account).then_some(r.class)
            },
        );
        let mut lines = Vec::new();
        for (class, cell) in cells
            .per_group()
            .into_iter()
            .enumerate()
            .filter(|(_, c)| c.used)
        {
            let c = &self.classes[class];
            let rate = self.class_prices[class];
            let mut line = |free: bool, quantity: Quantity, amount: Usd| {
                lines.push(BillLine {
                    service: c.service.to_string(),
                    usage_type: c.usage_type.clone(),
                    description: describe(c, free, rate),
                    free_tier: free,
                    rate: if free { Price::ZERO } else { rate },
                    quantity,
                    unit: c.unit.to_string(),
                    amount,
                });
            };
            if !cell.free_quantity.is_zero() {
                line(true, cell.free_quantity, Usd::ZERO);
            }
            let charged = cell.quantity - cell.free_quantity;
            if !charged.is_zero() {
                line(false, charged, cell.cost);
            }
        }
        lines.sort_by(|a, b| {
            (&a.service, &a.usage_type, !a.free_tier, &a.description).cmp(&(
                &b.service,
                &b.usage_type,
                !b.free_tier,
                &b.description,
            ))
        });
        // Auto-assigned and Elastic in-use addresses are one usage type at one rate: one line.
        lines.dedup_by(|next, kept| {
            let same = (&next.usage_type, next.free_tier, &next.description)
                == (&kept.usage_type, kept.free_tier, &kept.description);
            if same {
                kept.quantity += next.quantity;
                kept.amount += next.amount;
            }
            same
        });
        let a = &self.accounts[account as usize];
        Ok(Bill {
            account_id: a.id.clone(),
            account_name: a.name.clone(),
            month,
            estimated: now < month.end_ms(),
            total: lines.iter().map(|l| l.amount).sum(),
            lines,
        })
    }
}

fn describe(class: &UsageClass, free: bool, rate: Price) -> String {
    let t = class.instance_type.as_deref().unwrap_or("");
    let per = class.per;
    match (class.measure, free) {
        (Measure::Compute { .. }, true) => {
            format!("$0.00 per Linux {t} instance-hour (or partial hour) under monthly free tier")
        }
        (Measure::Compute { .. }, false) => {
            format!("${rate} per On Demand Linux {t} Instance Hour")
        }
        (Measure::Monthly { .. }, true) => format!("$0.00 per {per} under monthly free tier"),
        (Measure::Monthly { .. }, false) => format!("${rate} per {per}"),
        (Measure::Ipv4 { .. }, true) => {
            "$0.00 per In-use public IPv4 address per hour under monthly free tier".to_string()
        }
        (Measure::Ipv4 { in_use: true }, false) => {
            format!("${rate} per In-use public IPv4 address per hour")
        }
        (Measure::Ipv4 { in_use: false }, false) => {
            format!("${rate} per Idle public IPv4 address per hour")
        }
    }
}

impl Bill {
    /// Each service with the sum of its lines, in line order.
    pub fn service_totals(&self) -> Vec<(String, Usd)> {
        let mut out: Vec<(String, Usd)> = Vec::new();
        for l in &self.lines {
            match out.last_mut() {
                Some((s, total)) if *s == l.service => *total += l.amount,
                _ => out.push((l.service.clone(), l.amount)),
            }
        }
        out
    }

    /// The bill as a plain-text table: services with their subtotals, each line with its
    /// quantity and amount. Totals are shown to the cent, line amounts to 1/100 cent.
    pub fn render_table(&self) -> String {
        let mut out = String::new();
        let status = if self.estimated {
            " (estimated: month in progress)"
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "Bill for account {} ({}), {}{status}",
            self.account_id, self.account_name, self.month
        );
        out.push('\n');
        let rows: Vec<[String; 4]> = self
            .lines
            .iter()
            .map(|l| {
                [
                    format!("  {}", l.usage_type),
                    l.description.clone(),
                    format!("{} {}", l.quantity.to_decimal(6), l.unit),
                    format!("${}", l.amount.to_fixed(4)),
                ]
            })
            .collect();
        let headers = ["SERVICE / USAGE TYPE", "DESCRIPTION", "QUANTITY", "AMOUNT"];
        let mut widths = headers.map(str::len);
        for row in &rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let totals = self.service_totals();
        let money = |u: Usd| format!("${}", u.to_fixed(2));
        for (_, total) in &totals {
            widths[3] = widths[3].max(money(*total).len());
        }
        widths[3] = widths[3].max(money(self.total).len());
        let [w0, w1, w2, w3] = widths;
        // Service and total rows span the first three columns.
        let mut span = w0 + w1 + w2 + 4;
        for (service, _) in &totals {
            span = span.max(service.chars().count());
        }
        let _ = writeln!(
            out,
            "{:<w0$}  {:<w1$}  {:>w2$}  {:>w3$}",
            headers[0], headers[1], headers[2], headers[3]
        );
        if self.lines.is_empty() {
            let _ = writeln!(out, "(no usage)");
        }
        let mut services = totals.iter();
        let mut current: Option<&str> = None;
        for (line, [a, b, c, d]) in self.lines.iter().zip(&rows) {
            if current != Some(line.service.as_str()) {
                current = Some(&line.service);
                if let Some((service, total)) = services.next() {
                    let _ = writeln!(out, "{service:<span$}  {:>w3$}", money(*total));
                }
            }
            let _ = writeln!(out, "{a:<w0$}  {b:<w1$}  {c:>w2$}  {d:>w3$}");
        }
        let _ = writeln!(out, "{:<span$}  {:>w3$}", "TOTAL", money(self.total));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calendar::{utc, MS_PER_DAY, MS_PER_HOUR};
    use crate::prices::PriceList;
    use crate::usage::{Account, UsageRecord};

    #[test]
    fn a_bill_splits_free_tier_from_charged_usage() {
        let prices = PriceList::aws_default();
        let accounts = vec![Account {
            id: "111111111111".into(),
            name: "alice".into(),
            created_ms: utc(2024, 1, 10, 0, 0, 0),
        }];
        let start = utc(2024, 3, 1, 0, 0, 0);
        // Two t2.micro instances running all of March (744 h each): 750 h free, 738 h charged.
        let records = vec![
            UsageRecord::compute(
                "111111111111",
                "i-1",
                "t2.micro",
                start,
                Some(start + 744 * MS_PER_HOUR),
            ),
            UsageRecord::compute(
                "111111111111",
                "i-2",
                "t2.micro",
                start,
                Some(start + 744 * MS_PER_HOUR),
            ),
            UsageRecord::storage("111111111111", "i-1", 8, start, None),
            UsageRecord::storage("111111111111", "i-2", 8, start, None),
        ];
        let ledger = Ledger::new(&records, &accounts, &prices, "us-east-1").unwrap();
        let now = utc(2024, 4, 2, 0, 0, 0);
        let bill = ledger
            .monthly_bill("111111111111", Month::new(2024, 3).unwrap(), now)
            .unwrap();
        assert!(!bill.estimated);
        let summary: Vec<(&str, bool, String, String)> = bill
            .lines
            .iter()
            .map(|l| {
                (
                    l.usage_type.as_str(),
                    l.free_tier,
                    l.quantity.to_decimal(6),
                    l.amount.to_decimal(10),
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                (
                    "BoxUsage:t2.micro",
                    true,
                    "750".to_string(),
                    "0".to_string()
                ),
                (
                    "BoxUsage:t2.micro",
                    false,
                    "738".to_string(),
                    "8.5608".to_string()
                ),
                (
                    "EBS:VolumeUsage.gp3",
                    true,
                    "16".to_string(),
                    "0".to_string()
                ),
            ]
        );
        assert_eq!(bill.total.to_fixed(2), "8.56");
        let table = bill.render_table();
        assert!(
            table.contains("Bill for account 111111111111 (alice), 2024-03\n"),
            "{table}"
        );
        assert!(
            table.contains("$0.0116 per On Demand Linux t2.micro Instance Hour"),
            "{table}"
        );
        assert!(table.contains("738 Hrs"), "{table}");
        assert!(
            table.lines().last().unwrap().starts_with("TOTAL"),
            "{table}"
        );
        assert!(table.lines().last().unwrap().ends_with("$8.56"), "{table}");
        let err = ledger
            .monthly_bill("999", Month::new(2024, 3).unwrap(), now)
            .unwrap_err();
        assert_eq!(err.to_string(), "unknown account 999");
    }

    #[test]
    fn in_use_addresses_make_one_line() {
        let prices = PriceList::aws_default();
        let accounts = vec![Account {
            id: "1".into(),
            name: "n".into(),
            created_ms: 0,
        }];
        let s = utc(2024, 3, 1, 0, 0, 0);
        let records = vec![
            UsageRecord::public_ipv4("1", "i-1", s, Some(s + 10 * MS_PER_HOUR)),
            UsageRecord::elastic_ip("1", "eipalloc-1", true, s, Some(s + 10 * MS_PER_HOUR)),
            UsageRecord::elastic_ip(
                "1",
                "eipalloc-1",
                false,
                s + 10 * MS_PER_HOUR,
                Some(s + 20 * MS_PER_HOUR),
            ),
        ];
        let ledger = Ledger::new(&records, &accounts, &prices, "us-east-1").unwrap();
        let bill = ledger
            .monthly_bill("1", Month::new(2024, 3).unwrap(), s + 40 * MS_PER_DAY)
            .unwrap();
        let lines: Vec<(&str, String, String)> = bill
            .lines
            .iter()
            .map(|l| {
                (
                    l.usage_type.as_str(),
                    l.quantity.to_decimal(6),
                    l.amount.to_decimal(10),
                )
            })
            .collect();
        assert_eq!(
            lines,
            vec![
                (
                    "USE1-PublicIPv4:IdleAddress",
                    "10".to_string(),
                    "0.05".to_string()
                ),
                (
                    "USE1-PublicIPv4:InUseAddress",
                    "20".to_string(),
                    "0.1".to_string()
                ),
            ]
        );
        assert_eq!(
            bill.service_totals(),
            vec![("Amazon Virtual Private Cloud".to_string(), Usd::cents(15))]
        );
    }

    #[test]
    fn an_empty_bill_renders() {
        let prices = PriceList::aws_default();
        let accounts = vec![Account {
            id: "1".into(),
            name: "n".into(),
            created_ms: 0,
        }];
        let ledger = Ledger::new(&[], &accounts, &prices, "us-east-1").unwrap();
        let month = Month::new(2024, 3).unwrap();
        let bill = ledger
            .monthly_bill("1", month, month.start_ms() + 5)
            .unwrap();
        assert!(bill.estimated);
        assert_eq!(bill.total, Usd::ZERO);
        let table = bill.render_table();
        assert!(
            table.contains("(no usage)") && table.contains("$0.00"),
            "{table}"
        );
    }
}
