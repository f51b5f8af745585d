//! Billing at the edges: the Cost Explorer endpoint (AWS JSON 1.1, SigV4 service `ce`, on the
//! same port as the EC2 API, recognised by its `X-Amz-Target`) and `gureum bill`.

use std::path::Path;

use axum::body::{to_bytes, Body};
use axum::http::{HeaderMap, Request};
use axum::response::Response;
use gureum_billing::Month;
use gureum_core::Cloud;
use gureum_types::ErrorCode;

use crate::setup;

/// Is this request for Cost Explorer?
pub fn is_cost_explorer(headers: &HeaderMap) -> bool {
    headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with(gureum_billing::ce::TARGET_PREFIX))
}

fn json(status: u16, body: String, request_id: &str) -> Response {
    crate::api::api_response(status, body, gureum_billing::ce::CONTENT_TYPE, request_id)
}

/// An authentication failure in the JSON protocol's shape.
fn auth_error(code: ErrorCode, message: &str, request_id: &str) -> Response {
    let (kind, status) = match code {
        ErrorCode::SignatureDoesNotMatch => ("InvalidSignatureException", 403),
        ErrorCode::RequestExpired => ("InvalidSignatureException", 403),
        ErrorCode::MissingAuthenticationToken => ("MissingAuthenticationTokenException", 403),
        ErrorCode::InternalError => ("InternalServerException", 500),
        ErrorCode::AuthFailure => ("UnrecognizedClientException", 403),
        _ => ("IncompleteSignatureException", 400),
    };
    let body = serde_json::json!({ "__type": kind, "message": message }).to_string();
    json(status, body, request_id)
}

pub async fn serve_cost_explorer(cloud: &Cloud, req: Request<Body>, request_id: &str) -> Response {
    let (parts, body) = req.into_parts();
    let Ok(body) = to_bytes(body, gureum_ec2::params::MAX_REQUEST_BYTES).await else {
        return auth_error(ErrorCode::InvalidRequest, "Request too large", request_id);
    };
    let auth = match gureum_sigv4::parse(&parts) {
        Ok(a) => a,
        Err(e) => {
            let e = crate::api::sigv4_error(e);
            return auth_error(e.code, &e.message, request_id);
        }
    };
    let key = match crate::api::verify_signature(
        cloud,
        &parts,
        &body,
        &auth,
        gureum_billing::ce::SIGNING_NAME,
    )
    .await
    {
        Ok(k) => k,
        Err(e) => return auth_error(e.code, &e.message, request_id),
    };
    let target = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    tracing::debug!(target, account = %key.account_id, "cost explorer request");
    match cloud.cost_explorer(&key.account_id, target, &body).await {
        Ok(reply) => json(reply.status, reply.body, request_id),
        Err(e) => {
            tracing::error!(error = %e, "cost explorer request failed");
            auth_error(ErrorCode::InternalError, "Internal error", request_id)
        }
    }
}

/// The price list: AWS's, with `<data dir>/prices.toml` (same format, any subset) over it.
pub fn prices(data_dir: &Path) -> anyhow::Result<gureum_billing::PriceList> {
    let base = gureum_billing::PriceList::aws_default();
    let path = data_dir.join("prices.toml");
    match std::fs::read_to_string(&path) {
        Ok(text) => base
            .with_override(&text)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(base),
        Err(e) => Err(anyhow::anyhow!("reading {}: {e}", path.display())),
    }
}

/// `gureum bill`: one account's bill for a month, as a table.
pub fn bill(
    data_dir: &Path,
    account: &str,
    month: Option<&str>,
    region: &str,
) -> anyhow::Result<()> {
    let month = match month {
        Some(m) => Some(
            Month::parse(m).ok_or_else(|| anyhow::anyhow!("--month {m:?}: expected YYYY-MM"))?,
        ),
        None => None,
    };
    let cloud = setup::open_cloud(data_dir, region)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let bill = rt
        .block_on(cloud.monthly_bill(account, month))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    print!("{}", bill.render_table());
    Ok(())
}

/// `gureum budget set|show|delete`.
pub fn budget(data_dir: &Path, cmd: crate::cli::BudgetCmd) -> anyhow::Result<()> {
    use crate::cli::BudgetCmd;
    let cloud = setup::open_cloud(data_dir, "us-east-1")?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let err = |e: gureum_core::CoreError| anyhow::anyhow!("{e}");
    match cmd {
        BudgetCmd::Set {
            account,
            monthly_usd,
            stop_instances,
        } => {
            rt.block_on(cloud.set_budget(&account, monthly_usd, stop_instances))
                .map_err(err)?;
            println!(
                "budget of {account}: ${monthly_usd:.2} a month{}",
                if stop_instances {
                    "; its instances stop when the month's cost reaches it"
                } else {
                    ""
                }
            );
        }
        BudgetCmd::Show { account } => match rt
            .block_on(cloud.budget_status(&account))
            .map_err(err)?
        {
            None => println!("{account} has no budget"),
            Some(s) => {
                println!(
                    "limit     ${:.2} a month{}",
                    s.limit_usd,
                    if s.stop_instances {
                        " (stops instances)"
                    } else {
                        ""
                    }
                );
                println!("actual    ${:.4} this month so far", s.actual_usd);
                println!("forecast  ${:.4} by the end of the month", s.forecast_usd);
                if let Some((month, kind, _, amount)) = s.alert {
                    println!("alert     {month}: the {kind} cost (${amount}) crossed the budget");
                }
            }
        },
        BudgetCmd::Delete { account } => {
            if rt.block_on(cloud.delete_budget(&account)).map_err(err)? {
                println!("budget of {account} deleted");
            } else {
                println!("{account} had no budget");
            }
        }
    }
    Ok(())
}
