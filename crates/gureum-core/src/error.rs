//! The core's error, [`CoreError`], and its one mapping to what a client sees
//! ([`CoreError::to_api`], [`CoreError::into_api`]).
//!
//! A `CoreError` is either an [`ApiError`] the client is meant to see (an AWS code and AWS's
//! message) or an internal failure of a kind that says what failed: the store, a host driver,
//! a task the work was handed to, a stored value, a record another one names, a rule of the
//! core's own. Every internal kind answers `InternalError` (HTTP 500) with AWS's generic
//! message, as Omicron's `InternalError { internal_message }` does: the detail goes to the
//! log, never to the client.
//!
//! Each internal kind displays as `internal: <what failed>` (a store failure as `store: …`),
//! the text the log, the background tasks' status and a failed launch's `StateReason` carried
//! when all of them were one string variant; keep it so.

use gureum_host_api::HostError;
use gureum_store::StoreError;
use gureum_types::ApiError;

/// The errors of the core.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    /// An error for the client, with its AWS code and message.
    #[error("{0}")]
    Api(ApiError),
    /// The store failed (a backend error, a lock held too long, a constraint).
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// A host driver failed a step the core asked for.
    #[error("internal: {0}")]
    Host(#[from] HostError),
    /// Work handed to another task did not finish: it panicked or was cancelled.
    #[error("internal: {what} failed: {source}")]
    TaskFailed {
        what: &'static str,
        #[source]
        source: tokio::task::JoinError,
    },
    /// A pool or gate the work waits on was closed (only when the runtime shuts down).
    #[error("internal: {0} closed")]
    Closed(&'static str),
    /// A stored value that does not parse as what it should be.
    #[error("internal: bad {what} {value}")]
    Corrupt { what: &'static str, value: String },
    /// An account named by a caller of the core or by a record is not in the store.
    #[error("internal: no account {0}")]
    NoAccount(String),
    /// A record the store should hold is not there: the registry (or another record read in
    /// the same transaction) names it, or the core keeps it for as long as its owner lives.
    #[error("internal: {what} {id} has no record")]
    Missing { what: &'static str, id: String },
    /// An instance's recorded address lies in none of its VPC's subnets.
    #[error("internal: {0} is in no host subnet")]
    NoHostSubnet(std::net::Ipv4Addr),
    /// An image the core was told to use has no root file system yet.
    #[error("internal: {0} is not available")]
    ImageNotAvailable(String),
    /// Something the core's own rules guarantee did not hold (a default VPC without default
    /// subnets, a region without zones, ...).
    #[error("internal: {0}")]
    Invariant(&'static str),
    /// Key generation failed for a reason that is not the caller's (`gureum-keys` reports
    /// the caller's as AWS codes, which become [`CoreError::Api`]).
    #[error("internal: key generation: {}", .0.message)]
    Keys(gureum_keys::KeyError),
    /// An account's usage records cannot be rated (each is a bug in whoever wrote them).
    #[error("internal: usage records: {0}")]
    Ledger(#[from] gureum_billing::LedgerError),
    /// A bill cannot be made from the rated records.
    #[error("internal: {0}")]
    Bill(#[from] gureum_billing::BillError),
    /// The control plane failed what the host agent asked of it, in its own words (the
    /// text is the control plane's error's, so it reads as it did in one process).
    #[error(transparent)]
    Control(#[from] crate::control::ControlError),
    /// A budget that is not a positive amount (from the CLI; no API action sets budgets).
    #[error("internal: a budget is a positive amount of USD, not {0}")]
    InvalidBudget(f64),
}

impl From<ApiError> for CoreError {
    fn from(e: ApiError) -> Self {
        CoreError::Api(e)
    }
}

impl CoreError {
    /// A stored value that does not parse as `what`.
    pub(crate) fn corrupt(what: &'static str, value: &str) -> CoreError {
        CoreError::Corrupt {
            what,
            value: value.to_string(),
        }
    }

    /// A record of `what` named `id` missing from the store.
    pub(crate) fn missing(what: &'static str, id: &str) -> CoreError {
        CoreError::Missing {
            what,
            id: id.to_string(),
        }
    }

    /// Whether this is a failure of gureum's rather than an answer meant for the client.
    pub fn is_internal(&self) -> bool {
        !matches!(self, CoreError::Api(_))
    }

    /// What the client sees: the error's own `ApiError`, or for every internal kind AWS's
    /// `InternalError` (500) with its generic message. The one mapping of the core's errors
    /// to AWS codes.
    pub fn to_api(&self) -> ApiError {
        // Every kind is named (no `_`), so a new one has to be placed here.
        match self {
            CoreError::Api(e) => e.clone(),
            CoreError::Store(_)
            | CoreError::Host(_)
            | CoreError::TaskFailed { .. }
            | CoreError::Closed(_)
            | CoreError::Corrupt { .. }
            | CoreError::NoAccount(_)
            | CoreError::Missing { .. }
            | CoreError::NoHostSubnet(_)
            | CoreError::ImageNotAvailable(_)
            | CoreError::Invariant(_)
            | CoreError::Keys(_)
            | CoreError::Ledger(_)
            | CoreError::Bill(_)
            | CoreError::Control(_)
            | CoreError::InvalidBudget(_) => ApiError::internal(),
        }
    }

    /// The client's answer at an edge (the API, the console): [`Self::to_api`], with an
    /// internal failure logged with its detail first (`action` says what the client asked
    /// for). An answer meant for the client is not logged here.
    pub fn into_api(self, action: &str) -> ApiError {
        if self.is_internal() {
            tracing::error!(error = %self, action, "action failed");
        }
        self.to_api()
    }
}

impl From<CoreError> for ApiError {
    /// [`CoreError::into_api`] without an action's name.
    fn from(e: CoreError) -> ApiError {
        e.into_api("")
    }
}

pub type CoreResult<T> = Result<T, CoreError>;

#[cfg(test)]
mod tests {
    use gureum_types::ErrorCode;

    use super::*;

    /// One of each internal kind, with a detail no client may see.
    fn internal_kinds() -> Vec<CoreError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let join_error = rt.block_on(async {
            tokio::spawn(async { panic!("secret-panic") })
                .await
                .expect_err("the task panics")
        });
        vec![
            CoreError::Store(StoreError::Backend {
                backend: "sqlite",
                source: "secret-backend".into(),
            }),
            CoreError::Store(StoreError::Busy("secret-busy".into())),
            CoreError::Host(HostError::Driver("secret-driver".into())),
            CoreError::TaskFailed {
                what: "blocking task",
                source: join_error,
            },
            CoreError::Closed("secret pool"),
            CoreError::corrupt("ip", "secret-ip"),
            CoreError::NoAccount("secret-account".into()),
            CoreError::missing("vpc", "secret-vpc"),
            CoreError::NoHostSubnet("10.99.99.99".parse().unwrap()),
            CoreError::ImageNotAvailable("secret-image".into()),
            CoreError::Invariant("secret invariant"),
            CoreError::Keys(gureum_keys::KeyError {
                code: "Secret",
                message: "secret-keys".into(),
            }),
            CoreError::Ledger(gureum_billing::LedgerError::DuplicateAccount(
                "secret-ledger".into(),
            )),
            CoreError::Bill(gureum_billing::BillError::UnknownAccount(
                "secret-bill".into(),
            )),
            CoreError::InvalidBudget(-12345.0),
        ]
    }

    #[test]
    fn internal_kinds_answer_internal_error_without_their_detail() {
        for e in internal_kinds() {
            let detail = e.to_string();
            assert!(e.is_internal(), "{detail}");
            let api = e.into_api("TestAction");
            assert_eq!(api.code, ErrorCode::InternalError, "{detail}");
            assert_eq!(api.code.as_str(), "InternalError");
            assert_eq!(api.code.http_status(), 500);
            // Exactly the text clients saw before the kinds existed.
            assert_eq!(api.message, "An internal error has occurred", "{detail}");
            for secret in ["secret", "10.99", "12345"] {
                assert!(!api.to_string().contains(secret), "{detail} leaks: {api}");
            }
        }
    }

    #[test]
    fn internal_kinds_keep_their_detail_for_the_log() {
        let texts: Vec<String> = internal_kinds().iter().map(|e| e.to_string()).collect();
        assert_eq!(texts[0], "store: sqlite: secret-backend");
        assert_eq!(texts[2], "internal: secret-driver");
        assert!(texts[3].starts_with("internal: blocking task failed: task "));
        assert!(texts[3].contains("panicked"), "{}", texts[3]);
        assert_eq!(texts[5], "internal: bad ip secret-ip");
        assert_eq!(texts[6], "internal: no account secret-account");
        assert_eq!(texts[8], "internal: 10.99.99.99 is in no host subnet");
        assert_eq!(texts[11], "internal: key generation: secret-keys");
        assert_eq!(
            texts[12],
            "internal: usage records: account secret-ledger is listed twice"
        );
        assert_eq!(
            texts[14],
            "internal: a budget is a positive amount of USD, not -12345"
        );
    }

    #[test]
    fn api_errors_reach_the_client_as_they_are() {
        for (code, status) in [
            (ErrorCode::InvalidKeyPairNotFound, 400),
            (ErrorCode::AuthFailure, 401),
            (ErrorCode::UnauthorizedOperation, 403),
            (ErrorCode::DryRunOperation, 412),
            (ErrorCode::RequestLimitExceeded, 503),
            (ErrorCode::InsufficientInstanceCapacity, 500),
        ] {
            let sent = ApiError::new(code, "The key pair 'k' does not exist");
            let e = CoreError::from(sent.clone());
            assert!(!e.is_internal());
            assert_eq!(e.to_string(), sent.to_string());
            let api = ApiError::from(e);
            assert_eq!(api, sent);
            assert_eq!(api.code.http_status(), status, "{code}");
        }
    }

    /// A backend whose every transaction fails, with words no client may see.
    struct BrokenStore;

    impl gureum_store::Store for BrokenStore {
        fn read_dyn(&self, _: &mut dyn FnMut(&dyn gureum_store::Tx)) -> Result<(), StoreError> {
            Err(StoreError::Busy("secret-lock on /var/lib/secret".into()))
        }
        fn write_dyn(
            &self,
            _: &mut dyn FnMut(&dyn gureum_store::Tx) -> gureum_store::Outcome,
        ) -> Result<(), StoreError> {
            Err(StoreError::Busy("secret-lock on /var/lib/secret".into()))
        }
    }

    #[tokio::test]
    async fn a_failing_store_answers_a_request_with_internal_error_only() {
        let cloud = crate::Cloud::new(
            std::sync::Arc::new(BrokenStore),
            gureum_types::Region::new("us-east-1").unwrap(),
            std::sync::Arc::new(crate::clock::FixedClock::new(1_764_000_000_000)),
        );
        let ctx = crate::Ctx {
            account_id: "111111111111".into(),
            request_id: "test".into(),
        };
        let req = gureum_ec2::Request {
            action: gureum_ec2::ops::key_pairs::Action::DescribeKeyPairs {
                key_names: vec![],
                key_pair_ids: vec![],
                filters: vec![],
                include_public_key: false,
            }
            .into(),
            dry_run: false,
        };
        let e = cloud.dispatch(&ctx, req).await.unwrap_err();
        assert!(matches!(e, CoreError::Store(StoreError::Busy(_))), "{e}");
        assert!(
            e.to_string().contains("secret-lock"),
            "the log keeps the cause"
        );
        let api = e.into_api("DescribeKeyPairs");
        assert_eq!(
            api,
            ApiError::new(ErrorCode::InternalError, "An internal error has occurred")
        );
    }
}
