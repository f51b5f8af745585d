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
        Err(e) => return super::failed(&c, &s, "Billing", "billing", &e.to_api()),
    };
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
            div.tiles {
                div.tile {
                    span.n { "$" (bill.total.to_fixed(2)) }
                    span.l { "Total for " (bill.month.to_string()) }
                    span.sub { @if bill.estimated { "Month to date (estimated): usage is metered per second" } @else { "Final" } }
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
            p.hint { "Only " strong { "running" } " instances bill compute, per second with a 60-second minimum, as on EC2; root volumes bill until terminated; public IPv4 addresses and Elastic IPs by the hour. Prices are AWS's us-east-1 on-demand prices unless the operator set others." }
        },
    )
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
}
