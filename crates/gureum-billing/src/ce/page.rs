//! Cost Explorer's paging: what one page may hold, and the `NextPageToken` that says where
//! the next one starts.
//!
//! AWS documents that a token comes back "when the response from a previous call has more
//! results than the maximum page size", not the size. gureum's sizes, chosen so that a page
//! is at most a few megabytes of JSON and so that what AWS is seen to answer in one page
//! (a year of days, or a month of days grouped by service) still is one page:
//! - `GetCostAndUsage`: at most [`MAX_RESULTS_PER_PAGE`] `ResultsByTime` and at most
//!   [`MAX_GROUPS_PER_PAGE`] groups over all of them; a period whose groups do not all fit
//!   continues, same `TimePeriod`, on the next page;
//! - `GetDimensionValues` and `GetTags`: at most [`MAX_VALUES_PER_PAGE`] values (AWS's
//!   `MaxResults` ceiling; with `SortBy` there is no token, as on AWS).
//!
//! A token is `<version>.<position>.<fingerprint>`: the position is where the next page starts
//! (period and group, or value), the fingerprint a hash of every other member of the request.
//! A token that does not parse is `InvalidNextTokenException`; one from a request with other
//! members is `RequestChangedException`, as on AWS. The position is recomputed from the
//! records on each call (nothing is kept between pages), so usage recorded between two pages
//! can shift the current period's groups by one.

use std::hash::{Hash, Hasher};

use serde::Serialize;

use super::error::{CeError, CeErrorCode};

/// `ResultsByTime` in one `GetCostAndUsage` page (a leap year of days).
pub const MAX_RESULTS_PER_PAGE: usize = 366;
/// Groups in one `GetCostAndUsage` page, over all its periods.
pub const MAX_GROUPS_PER_PAGE: usize = 5_000;
/// Values in one `GetDimensionValues` or `GetTags` page.
pub const MAX_VALUES_PER_PAGE: usize = 1_000;

const VERSION: &str = "1";

/// A hash of the request's members other than its token. `DefaultHasher::new()` has fixed
/// keys, so the same request hashes the same in every call of this build.
pub fn fingerprint<T: Serialize>(request: &T) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    serde_json::to_string(request)
        .unwrap_or_default()
        .hash(&mut h);
    h.finish()
}

fn invalid() -> CeError {
    CeError::new(
        CeErrorCode::InvalidNextTokenException,
        "The NextPageToken is invalid. Try again without a pagination token.",
    )
}

/// The token of the page starting at `position`.
pub fn token(position: &[usize], fingerprint: u64) -> String {
    let pos: Vec<String> = position.iter().map(usize::to_string).collect();
    format!("{VERSION}.{}.{fingerprint:016x}", pos.join("-"))
}

/// Where the page `token` asks for starts (`n` numbers; all zero without a token).
pub fn position<const N: usize>(
    token: Option<&str>,
    fingerprint: u64,
) -> Result<[usize; N], CeError> {
    let Some(token) = token.filter(|t| !t.is_empty()) else {
        return Ok([0; N]);
    };
    let mut parts = token.split('.');
    let (Some(VERSION), Some(pos), Some(fp), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid());
    };
    let fp = u64::from_str_radix(fp, 16).map_err(|_| invalid())?;
    let mut out = [0; N];
    let mut nums = pos.split('-');
    for slot in &mut out {
        *slot = nums
            .next()
            .and_then(|n| n.parse().ok())
            .ok_or_else(invalid)?;
    }
    if nums.next().is_some() {
        return Err(invalid());
    }
    if fp != fingerprint {
        return Err(CeError::new(
            CeErrorCode::RequestChangedException,
            "Your request parameters changed between pages. Try again with the old parameters or without a pagination token.",
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_are_checked() {
        let t = token(&[12, 3], 0xabc);
        assert_eq!(t, "1.12-3.0000000000000abc");
        assert_eq!(position::<2>(Some(&t), 0xabc), Ok([12, 3]));
        assert_eq!(position::<2>(None, 1), Ok([0, 0]));
        assert_eq!(position::<2>(Some(""), 1), Ok([0, 0]));
        assert_eq!(
            position::<2>(Some(&t), 0xabd).unwrap_err().code,
            CeErrorCode::RequestChangedException
        );
        for bad in [
            "abc",
            "2.12-3.0abc",
            "1.12.0abc",
            "1.12-3-4.0abc",
            "1.12-x.0abc",
            "1.12-3.zz",
            "1.12-3.0abc.x",
        ] {
            assert_eq!(
                position::<2>(Some(bad), 0xabc).unwrap_err().code,
                CeErrorCode::InvalidNextTokenException,
                "{bad}"
            );
        }
    }

    #[test]
    fn the_fingerprint_follows_the_request() {
        let a = serde_json::json!({"Granularity": "DAILY"});
        let b = serde_json::json!({"Granularity": "HOURLY"});
        assert_eq!(fingerprint(&a), fingerprint(&a.clone()));
        assert_ne!(fingerprint(&a), fingerprint(&b));
    }
}
