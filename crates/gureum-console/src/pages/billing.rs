//! Billing: the account's bill for a month (month to date for the current one), from the
//! metering's ledger: the same figures as `gureum bill` and the Cost Explorer API.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::response::Response;
use gureum_billing::Month;
use gureum_types::{ApiError, ErrorCode};
use maud::html;

use crate::html::layout;
use crate::session::Signed;
use crate::Console;

/// The month before `m`.
fn previous(m: Month) -> Option<Month> {
    let s = m.to_string();
    let (y, mo) = s.split_once('-')?;
    let (y, mo): (i32, u32) = (y.parse().ok()?, mo.parse().ok()?);
    if mo == 1 {
        Month::new(y - 1, 12)
    } else {
        Month::new(y, mo - 1)
    }
}

pub async fn page(
    State(c): State<Console>,
    Signed(s): Signed,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let month = match q.get("month").filter(|m| !m.is_empty()) {
        Some(m) => match Month::parse(m) {
            Some(m) => Some(m),
            None => {
                let e = ApiError::new(
                    ErrorCode::InvalidParameterValue,
                    format!("Invalid month {m}: use YYYY-MM"),
                );
                return super::failed(&c, &s, "Billing", "billing", &e);
            }
        },
        None => None,
    };
    let bill = match c.cloud().monthly_bill(&s.account_id, month).await {
        Ok(b) => b,
        Err(e) => return super::failed(&c, &s, "Billing", "billing", &e.into_api("monthly_bill")),
    };
    let current = bill.month == Month::of(now_ms());
    let forecast = if current {
        c.cloud()
            .month_to_date(&s.account_id)
            .await
            .ok()
            .map(|f| f.1)
    } else {
        None
    };
    let budget = c.cloud().budget_status(&s.account_id).await.ok().flatten();
    let days = daily_costs(&c, &s.account_id, bill.month).await;
    let by_type = cost_by_instance_type(&bill);
    let free = free_tier_use(&bill, &c.cloud().prices().free_tier);
    let months: Vec<Month> = std::iter::successors(Some(Month::of(now_ms())), |m| previous(*m))
        .take(12)
        .collect();
    layout(
        super::frame(&c, &s, "Billing", "billing"),
        html! {
            div.head {
                h1 { "Bills" }
                form.filters method="get" action="/console/billing" {
                    label.sr for="month" { "Month" }
                    select #month name="month" data-autosubmit {
                        @for m in &months {
                            option value=(m.to_string()) selected[*m == bill.month] { (m.to_string()) }
                        }
                    }
                    noscript { button type="submit" { "Show" } }
                }
            }
            @if let Some(b) = &budget {
                @if let Some((m, kind, _, amount)) = &b.alert {
                    @if *m == bill.month.to_string() {
                        div.alert.err role="alert" {
                            strong { "Budget exceeded: " }
                            "the " (kind) " cost of this month ($" (amount) ") crossed your budget of $"
                            (format!("{:.2}", b.limit_usd)) "."
                            @if b.stop_instances && kind == "actual" { " Your instances were stopped." }
                        }
                    }
                }
            }
            div.tiles {
                div.tile {
                    span.n { "$" (bill.total.to_fixed(2)) }
                    span.l { "Total for " (bill.month.to_string()) }
                    span.sub { @if bill.estimated { "Month to date (estimated): usage is metered per second" } @else { "Final" } }
                }
                @if let Some(f) = forecast {
                    div.tile {
                        span.n { "$" (format!("{f:.2}")) }
                        span.l { "Forecast for the month" }
                        span.sub { "If what runs now keeps running" }
                    }
                }
                @if let Some(b) = &budget {
                    div.tile {
                        span.n { "$" (format!("{:.2}", b.limit_usd)) }
                        span.l { "Monthly budget" }
                        span.sub { (format!("{:.0} % used", 100.0 * b.actual_usd / b.limit_usd)) }
                    }
                }
            }
            @if !days.is_empty() {
                h2 { "Cost per day" }
                (bar_chart(&days))
            }
            div.split {
                @if !by_type.is_empty() {
                    section {
                        h2 { "Cost by instance type" }
                        table.grid {
                            thead { tr { th { "Instance type" } th.num { "Hours" } th.num { "Amount (USD)" } } }
                            tbody {
                                @for (t, hours, usd) in &by_type {
                                    tr { td { code.small { (t) } } td.num { (format!("{hours:.3}")) } td.num { "$" (format!("{usd:.2}")) } }
                                }
                            }
                        }
                    }
                }
                section {
                    h2 { "Free tier this month" }
                    @for (i, (label, used, allowance, unit)) in free.iter().enumerate() {
                        div.free-use {
                            label for=(format!("free-{i}")) { (label) ": " (format!("{used:.2}")) " of " (allowance) " " (unit) }
                            progress id=(format!("free-{i}")) value=(format!("{:.4}", used.min(*allowance as f64))) max=(allowance) {}
                        }
                    }
                }
            }
            div.table-wrap {
                table.grid {
                    thead { tr { th { "Service" } th { "Usage type" } th { "Description" } th.num { "Usage" } th.num { "Amount (USD)" } } }
                    tbody {
                        @if bill.lines.is_empty() { tr { td colspan="5" .muted { "No usage this month." } } }
                        @for l in &bill.lines {
                            tr {
                                td { (l.service) }
                                td { code.small { (l.usage_type) } }
                                td { (l.description) @if l.free_tier { " " span.badge.free { "Free tier" } } }
                                td.num { (l.quantity.to_decimal(3)) " " (l.unit) }
                                td.num { "$" (l.amount.to_fixed(2)) }
                            }
                        }
                    }
                    tfoot { tr { th colspan="4" { "Total" } th.num { "$" (bill.total.to_fixed(2)) } } }
                }
            }
            p.hint { "Only " strong { "running" } " instances bill compute, per second with a 60-second minimum, as on EC2; root volumes bill until terminated; EBS volumes per second (at least a minute) until deleted, by type, size and provisioned IOPS and throughput, snapshots until deleted; public IPv4 addresses and Elastic IPs by the hour. Prices are AWS's us-east-1 on-demand prices unless the operator set others." }
        },
    )
}

/// The month's cost per day, from the Cost Explorer engine (the API's own figures).
async fn daily_costs(c: &Console, account: &str, month: Month) -> Vec<(String, f64)> {
    let body = serde_json::json!({
        "TimePeriod": {
            "Start": gureum_billing::calendar::format_date(month.start_ms()),
            "End": gureum_billing::calendar::format_date(month.end_ms()),
        },
        "Granularity": "DAILY",
        "Metrics": ["UnblendedCost"],
    })
    .to_string();
    let Ok(reply) = c
        .cloud()
        .cost_explorer(
            account,
            "AWSInsightsIndexService.GetCostAndUsage",
            body.as_bytes(),
        )
        .await
    else {
        return vec![];
    };
    let Ok(v) = serde_json::from_str::<serde_json::Value>(&reply.body) else {
        return vec![];
    };
    v["ResultsByTime"]
        .as_array()
        .map(|days| {
            days.iter()
                .map(|d| {
                    let day = d["TimePeriod"]["Start"].as_str().unwrap_or("").to_string();
                    let usd = d["Total"]["UnblendedCost"]["Amount"]
                        .as_str()
                        .and_then(|a| a.parse().ok())
                        .unwrap_or(0.0);
                    (day, usd)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Bars as SVG (attributes, not inline styles: the console's CSP forbids those).
fn bar_chart(days: &[(String, f64)]) -> maud::Markup {
    let max = days.iter().map(|d| d.1).fold(0.0_f64, f64::max).max(0.01);
    let (w, h) = (24 * days.len().max(1), 120);
    html! {
        figure.chart {
            svg viewBox=(format!("0 0 {w} {}", h + 16)) role="img" aria-label="Cost per day" {
                @for (i, (day, usd)) in days.iter().enumerate() {
                    @let bh = ((usd / max) * h as f64).round() as i64;
                    rect.bar x=(i * 24 + 3) y=(h as i64 - bh) width="18" height=(bh.max(1)) {
                        title { (day) ": $" (format!("{usd:.4}")) }
                    }
                    @if i % 5 == 0 {
                        text x=(i * 24 + 3) y=(h + 12) font-size="9" { (day.get(8..10).unwrap_or("")) }
                    }
                }
            }
            figcaption.muted { "Highest day: $" (format!("{max:.4}")) }
        }
    }
}

fn as_f64(q: &gureum_billing::amount::Quantity) -> f64 {
    q.to_decimal(6).parse().unwrap_or(0.0)
}

/// (instance type, hours, USD) from the bill's compute lines.
fn cost_by_instance_type(bill: &gureum_billing::bill::Bill) -> Vec<(String, f64, f64)> {
    let mut out: Vec<(String, f64, f64)> = Vec::new();
    for l in &bill.lines {
        let Some(t) = l.usage_type.strip_prefix("BoxUsage:") else {
            continue;
        };
        let usd: f64 = l.amount.to_decimal(6).parse().unwrap_or(0.0);
        match out.iter_mut().find(|e| e.0 == t) {
            Some(e) => {
                e.1 += as_f64(&l.quantity);
                e.2 += usd;
            }
            None => out.push((t.to_string(), as_f64(&l.quantity), usd)),
        }
    }
    out
}

/// (what, used, allowance, unit) of each free-tier allowance this month.
fn free_tier_use(
    bill: &gureum_billing::bill::Bill,
    free: &gureum_billing::prices::FreeTier,
) -> Vec<(&'static str, f64, u32, &'static str)> {
    let sum = |f: &dyn Fn(&str) -> bool| -> f64 {
        bill.lines
            .iter()
            .filter(|l| f(&l.usage_type))
            .map(|l| as_f64(&l.quantity))
            .sum()
    };
    let compute = sum(&|u: &str| {
        u.strip_prefix("BoxUsage:")
            .is_some_and(|t| free.compute_types.iter().any(|f| f == t))
    });
    // The free tier's EBS storage is gp2, gp3 and magnetic (`EBS:VolumeUsage`), not io1,
    // io2, st1 or sc1.
    let storage = sum(&|u: &str| {
        [
            "EBS:VolumeUsage.gp2",
            "EBS:VolumeUsage.gp3",
            "EBS:VolumeUsage",
        ]
        .iter()
        .any(|t| u.ends_with(t))
    });
    let snapshots = sum(&|u: &str| u.ends_with("EBS:SnapshotUsage"));
    let ipv4 = sum(&|u: &str| u.ends_with("PublicIPv4:InUseAddress"));
    vec![
        (
            "Instance hours (t2.micro, t3.micro)",
            compute,
            free.compute_hours,
            "Hrs",
        ),
        (
            "EBS storage (gp2, gp3, magnetic)",
            storage,
            free.storage_gb_months,
            "GB-Mo",
        ),
        ("EBS snapshots", snapshots, free.snapshot_gb_months, "GB-Mo"),
        ("Public IPv4", ipv4, free.public_ipv4_hours, "Hrs"),
    ]
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn previous_months_wrap_the_year() {
        let m = gureum_billing::Month::parse("2026-01").unwrap();
        assert_eq!(super::previous(m).unwrap().to_string(), "2025-12");
    }

    #[test]
    fn the_free_tier_panel_counts_only_what_the_free_tier_covers() {
        use gureum_billing::{Account, Ledger, PriceList, UsageRecord};
        use gureum_types::VolumeType;
        let m = gureum_billing::Month::parse("2024-05").unwrap();
        let (s, e) = (m.start_ms(), Some(m.end_ms()));
        let records = [
            UsageRecord::volume("1", "vol-a", VolumeType::Gp2, 5, s, e),
            UsageRecord::volume("1", "vol-b", VolumeType::Standard, 2, s, e),
            UsageRecord::volume("1", "vol-c", VolumeType::Io1, 40, s, e),
            UsageRecord::volume("1", "vol-d", VolumeType::St1, 125, s, e),
            UsageRecord::snapshot("1", "snap-a", 3, s, e),
        ];
        let accounts = [Account {
            id: "1".into(),
            name: "n".into(),
            created_ms: 0,
        }];
        let prices = PriceList::aws_default();
        let ledger = Ledger::new(&records, &accounts, &prices, "us-east-1").unwrap();
        let bill = ledger.monthly_bill("1", m, m.end_ms()).unwrap();
        let used: Vec<(&str, f64, u32)> = super::free_tier_use(&bill, &prices.free_tier)
            .into_iter()
            .map(|(what, used, allowance, _)| (what, used, allowance))
            .collect();
        assert_eq!(
            used[1..3],
            [
                ("EBS storage (gp2, gp3, magnetic)", 7.0, 30),
                ("EBS snapshots", 3.0, 1)
            ]
        );
    }
}
