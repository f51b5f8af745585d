//! Request-rate throttling of the EC2 Query API, as EC2 does it: a token bucket per account
//! and per action, sized by the action's kind; a request finding its bucket empty is answered
//! `RequestLimitExceeded` (HTTP 503, "Request limit exceeded.") before it runs, so it changes
//! nothing. The SDKs treat that answer as a throttle and retry with back-off.
//!
//! Buckets (capacity, refill per second) follow AWS's "Request throttling for the Amazon EC2
//! API": non-mutating actions (`Describe*`, `Get*`, `List*`, `Search*`) 100 and 20, every other
//! action (mutating) 50 and 5. One account's bucket for one action being empty affects
//! neither its other actions nor any other account. The buckets are GCRA cells of
//! `governor` (equivalent to a token bucket), a few dozen bytes per account and action used.

use std::num::NonZeroU32;

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use gureum_types::{ApiError, ErrorCode};

/// A bucket's size and refill rate.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bucket {
    pub capacity: u32,
    pub refill_per_second: u32,
}

/// AWS's non-mutating bucket.
pub const NON_MUTATING: Bucket = Bucket {
    capacity: 100,
    refill_per_second: 20,
};
/// AWS's mutating bucket.
pub const MUTATING: Bucket = Bucket {
    capacity: 50,
    refill_per_second: 5,
};

/// Whether an action only reads.
pub fn is_non_mutating(action: &str) -> bool {
    ["Describe", "Get", "List", "Search"]
        .iter()
        .any(|p| action.starts_with(p))
}

type Limiter = DefaultKeyedRateLimiter<(String, &'static str)>;

/// The buckets of every account.
pub struct Throttle {
    non_mutating: Limiter,
    mutating: Limiter,
}

impl Throttle {
    /// AWS's default buckets.
    pub fn aws_default() -> Self {
        Self::with_buckets(NON_MUTATING, MUTATING)
    }

    pub fn with_buckets(non_mutating: Bucket, mutating: Bucket) -> Self {
        Throttle {
            non_mutating: RateLimiter::keyed(quota(non_mutating)),
            mutating: RateLimiter::keyed(quota(mutating)),
        }
    }

    /// Takes a token from `account`'s bucket for `action`, or refuses as EC2 does.
    pub fn check(&self, account: &str, action: &'static str) -> Result<(), ApiError> {
        let limiter = if is_non_mutating(action) {
            &self.non_mutating
        } else {
            &self.mutating
        };
        limiter
            .check_key(&(account.to_string(), action))
            .map_err(|_| ApiError::new(ErrorCode::RequestLimitExceeded, "Request limit exceeded."))
    }
}

fn quota(b: Bucket) -> Quota {
    let nz = |n: u32| NonZeroU32::new(n.max(1)).unwrap_or(NonZeroU32::MIN);
    Quota::per_second(nz(b.refill_per_second)).allow_burst(nz(b.capacity))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn taken(t: &Throttle, account: &str, action: &'static str, n: usize) -> usize {
        (0..n).filter(|_| t.check(account, action).is_ok()).count()
    }

    #[test]
    fn a_burst_takes_the_bucket_then_is_refused_as_ec2_does() {
        let t = Throttle::aws_default();
        assert_eq!(taken(&t, "111111111111", "DescribeInstances", 150), 100);
        let err = t.check("111111111111", "DescribeInstances").unwrap_err();
        assert_eq!(err.code, ErrorCode::RequestLimitExceeded);
        assert_eq!(err.code.http_status(), 503);
        assert_eq!(err.message, "Request limit exceeded.");
        assert_eq!(taken(&t, "111111111111", "CreateKeyPair", 80), 50);
    }

    #[test]
    fn buckets_are_per_account_and_per_action() {
        let t = Throttle::aws_default();
        assert_eq!(taken(&t, "111111111111", "CreateKeyPair", 60), 50);
        // The same account's other actions, and every other account, are untouched.
        assert_eq!(taken(&t, "111111111111", "DeleteKeyPair", 50), 50);
        assert_eq!(taken(&t, "222222222222", "CreateKeyPair", 50), 50);
        assert_eq!(taken(&t, "111111111111", "DescribeKeyPairs", 100), 100);
    }

    #[test]
    fn the_bucket_refills() {
        let t = Throttle::with_buckets(
            Bucket {
                capacity: 5,
                refill_per_second: 50,
            },
            MUTATING,
        );
        assert_eq!(taken(&t, "a", "DescribeRegions", 10), 5);
        std::thread::sleep(std::time::Duration::from_millis(100));
        // 50 per second: about 5 tokens back after 100 ms (never more than the capacity).
        let back = taken(&t, "a", "DescribeRegions", 10);
        assert!((4..=5).contains(&back), "{back}");
    }

    #[test]
    fn kinds() {
        for a in [
            "DescribeInstances",
            "GetConsoleOutput",
            "ListImagesInRecycleBin",
        ] {
            assert!(is_non_mutating(a), "{a}");
        }
        for a in [
            "CreateKeyPair",
            "RunInstances",
            "TerminateInstances",
            "ImportKeyPair",
        ] {
            assert!(!is_non_mutating(a), "{a}");
        }
    }
}
