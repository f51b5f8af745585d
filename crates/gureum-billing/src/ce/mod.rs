//! The Cost Explorer API (`ce`), AWS JSON 1.1 protocol.
//!
//! Owned here: the request/response shapes ([`model`]), the errors and their envelope
//! ([`error`]), filter expressions, paging ([`page`]), the operations (methods on
//! [`Ledger`]: `get_cost_and_usage`, `get_cost_forecast`, `get_dimension_values`,
//! `get_tags`), and [`handle`], which maps one HTTP request body to one HTTP response body.
//! What one request may cost is bounded here (how far back it reaches, how much one page
//! holds); how many run at once is the caller's to bound ([`limit_exceeded`] is its answer
//! past that).
//!
//! The HTTP layer's part: requests are `POST /` signed with SigV4 for service `ce`, with
//! `X-Amz-Target: AWSInsightsIndexService.<Operation>` and
//! `Content-Type: application/x-amz-json-1.1`; answer with [`handle`]'s status and body
//! and the same content type.

pub mod error;
mod filter;
pub mod model;
mod ops;
pub mod page;

pub use error::{CeError, CeErrorCode};
pub use model::*;
pub use ops::{CELL_BUDGET, DAILY_MONTHS, HOURLY_DAYS, METRICS, MONTHLY_MONTHS};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::rating::Ledger;

/// The `X-Amz-Target` prefix of Cost Explorer operations.
pub const TARGET_PREFIX: &str = "AWSInsightsIndexService";
/// The content type of requests and responses.
pub const CONTENT_TYPE: &str = "application/x-amz-json-1.1";
/// The SigV4 signing name (the credential scope's service).
pub const SIGNING_NAME: &str = "ce";

/// The operations [`handle`] serves.
pub const OPERATIONS: &[&str] = &[
    "GetCostAndUsage",
    "GetCostForecast",
    "GetDimensionValues",
    "GetTags",
];

/// An HTTP answer: status and JSON body (content type [`CONTENT_TYPE`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CeReply {
    pub status: u16,
    pub body: String,
}

impl CeReply {
    fn ok<T: Serialize>(value: &T) -> CeReply {
        CeReply {
            status: 200,
            // Serializing these plain structs cannot fail.
            body: serde_json::to_string(value).unwrap_or_else(|_| "{}".to_string()),
        }
    }

    fn error(e: &CeError) -> CeReply {
        CeReply {
            status: e.http_status(),
            body: e.to_json(),
        }
    }
}

/// The answer to a request the caller will not compute now (too many are running or
/// waiting): `LimitExceededException`, in AWS's words.
pub fn limit_exceeded() -> CeReply {
    CeReply::error(&CeError::new(
        CeErrorCode::LimitExceededException,
        "You made too many calls in a short period of time. Try again later.",
    ))
}

/// Answer one Cost Explorer request: `target` is the `X-Amz-Target` header, `body` the
/// request body, `now_ms` the current time (epoch ms) of the caller's clock.
pub fn handle(ledger: &Ledger<'_>, target: &str, body: &[u8], now_ms: i64) -> CeReply {
    match dispatch(ledger, target, body, now_ms) {
        Ok(reply) => reply,
        Err(e) => CeReply::error(&e),
    }
}

/// The operation an `X-Amz-Target` names, if it is one gureum serves.
pub fn operation(target: &str) -> Option<&'static str> {
    let op = target.strip_prefix(TARGET_PREFIX)?.strip_prefix('.')?;
    OPERATIONS.iter().copied().find(|o| *o == op)
}

fn dispatch(ledger: &Ledger<'_>, target: &str, body: &[u8], now: i64) -> Result<CeReply, CeError> {
    let Some(op) = operation(target) else {
        return Err(CeError::new(
            CeErrorCode::UnknownOperationException,
            format!("Operation {target} is not supported"),
        ));
    };
    Ok(match op {
        "GetCostAndUsage" => CeReply::ok(&ledger.get_cost_and_usage(&parse(body)?, now)?),
        "GetCostForecast" => CeReply::ok(&ledger.get_cost_forecast(&parse(body)?, now)?),
        "GetDimensionValues" => CeReply::ok(&ledger.get_dimension_values(&parse(body)?, now)?),
        _ => CeReply::ok(&ledger.get_tags(&parse(body)?, now)?),
    })
}

fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, CeError> {
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        &b"{}"[..]
    } else {
        body
    };
    serde_json::from_slice(body)
        .map_err(|e| CeError::new(CeErrorCode::SerializationException, e.to_string()))
}

#[cfg(test)]
mod tests;
