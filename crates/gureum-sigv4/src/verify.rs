//! Server-side verification of a parsed request against the caller's secret.
//!
//! Checks, in the order a client most usefully hears about them:
//! 1. credential scope: date = date of `X-Amz-Date`, region and service as
//!    expected, terminator `aws4_request`;
//! 2. time: within ±15 minutes for header authentication (and for a presigned
//!    URL without `X-Amz-Expires`); a presigned URL may start at most 15
//!    minutes in the future and is good until `X-Amz-Date + X-Amz-Expires`;
//! 3. `host` is signed, and so is the header that carried the time;
//! 4. payload hash: `x-amz-content-sha256` when sent (it must agree with the
//!    body; `UNSIGNED-PAYLOAD` only on presigned URLs), otherwise SHA-256 of the body;
//! 5. the signature, compared in constant time.
//!
//! Unsigned headers play no part: a proxy may add them freely.
//!
//! # Presigned URLs
//!
//! Clients disagree on what a presigned URL signs, so a presigned request is
//! checked against each canonical request its URL may have been made for, and
//! passes if any one matches:
//!
//! * payload hash: botocore's `generate_presigned_url` for EC2 moves every
//!   parameter into the query string and signs the SHA-256 of the (now empty)
//!   body; S3-style signers sign the literal `UNSIGNED-PAYLOAD` instead, some
//!   declaring it as `X-Amz-Content-Sha256` in the query or a header. A declared
//!   value is the only candidate; undeclared, both are tried. An unsigned
//!   payload is accepted only with an empty body: on the Query API the body is
//!   parameters, and parameters nobody signed must not ride on a signed URL.
//! * method: botocore signs an EC2 operation's model method, POST, but a URL is
//!   made to be opened, i.e. fetched with GET. With an empty body the two are
//!   the same Query request (every parameter is in the signed query string), so
//!   either verifies either. This is a deliberate deviation: AWS computes the
//!   canonical request with the method it received and refuses a POST-signed
//!   URL fetched with GET (`SignatureDoesNotMatch`, e.g. boto/boto3#756 for
//!   STS), which breaks the obvious use of such a URL and protects nothing the
//!   signature does not already cover. Other methods are never substituted.

use http::header::DATE;
use http::request::Parts;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use time::{Duration, OffsetDateTime};

use crate::canonical::{write_canonical_request, RequestView};
use crate::crypto::{hex32, signature_bytes, signing_key};
use crate::error::{ErrorKind, SigV4Error};
use crate::parse::{invalid_expires, ParsedAuth};
use crate::timefmt::{amz_date_str, format_amz_date};
use crate::{MAX_EXPIRES_SECS, MAX_SKEW, TERMINATOR, UNSIGNED_PAYLOAD};

const X_AMZ_CONTENT_SHA256: &str = "x-amz-content-sha256";
const X_AMZ_DATE: &str = "x-amz-date";

/// Verify a parsed request. `body` is the raw request body (already bounded by
/// the caller); `now` is the server clock, injected to keep this pure.
///
/// `expected_region` and `expected_service` are what this endpoint serves
/// (e.g. `"us-east-1"` and `"ec2"`). Errors carry the code, message and status
/// EC2 would answer with (see [`ErrorKind`]).
pub fn verify(
    parts: &Parts,
    body: &[u8],
    auth: &ParsedAuth,
    secret_access_key: &str,
    expected_region: &str,
    expected_service: &str,
    now: OffsetDateTime,
) -> Result<(), SigV4Error> {
    let amz_date_buf = format_amz_date(auth.amz_date);
    let amz_date = amz_date_str(&amz_date_buf);

    check_scope(auth, &amz_date[..8], expected_region, expected_service)?;
    check_time(auth, now)?;
    check_signed_headers(parts, auth)?;

    let body_hash = hex32(&Sha256::digest(body).into());
    // Hex digits are ASCII.
    let body_hash = std::str::from_utf8(&body_hash).unwrap_or_default();
    let payloads = payload_hashes(parts, auth, body_hash, body.is_empty())?;
    let view = RequestView::from_parts(parts);
    let methods = methods(&view, auth, body.is_empty());

    let mut provided = [0u8; 32];
    if hex::decode_to_slice(&auth.signature, &mut provided).is_err() {
        return Err(SigV4Error::signature_does_not_match());
    }
    let c = &auth.credential;
    let key = signing_key(secret_access_key, &c.date, &c.region, &c.service);
    // Every candidate is computed and compared in full, so how many matched
    // (and which) does not show in the time taken.
    let mut matched = false;
    for method in methods.into_iter().flatten() {
        for payload in payloads.into_iter().flatten() {
            let mut hasher = Sha256::new();
            let view = RequestView { method, ..view };
            write_canonical_request(
                &mut hasher,
                &view,
                &auth.signed_headers,
                payload,
                auth.presigned,
            )?;
            let creq_hash: [u8; 32] = hasher.finalize().into();
            let expected =
                signature_bytes(&key, amz_date, &c.date, &c.region, &c.service, &creq_hash);
            matched |= bool::from(expected.ct_eq(&provided));
        }
    }
    if matched {
        Ok(())
    } else {
        Err(SigV4Error::signature_does_not_match())
    }
}

/// The methods a request may have been signed with: the one it came with and,
/// for a presigned URL with an empty body, its Query twin (GET for POST and
/// POST for GET; see the module docs for why).
fn methods<'a>(req: &RequestView<'a>, auth: &ParsedAuth, empty_body: bool) -> [Option<&'a str>; 2] {
    let twin = match req.method {
        "GET" if auth.presigned && empty_body => Some("POST"),
        "POST" if auth.presigned && empty_body => Some("GET"),
        _ => None,
    };
    [Some(req.method), twin]
}

/// All scope mismatches at once, joined the way AWS joins them.
fn check_scope(
    auth: &ParsedAuth,
    request_date: &str,
    region: &str,
    service: &str,
) -> Result<(), SigV4Error> {
    let c = &auth.credential;
    let mut msg = String::new();
    let mut add = |s: String| {
        if !msg.is_empty() {
            msg.push(' ');
        }
        msg.push_str(&s);
    };
    if c.region != region {
        add(format!(
            "Credential should be scoped to a valid region, not '{}'.",
            c.region
        ));
    }
    if c.service != service {
        add(format!(
            "Credential should be scoped to correct service: '{service}'."
        ));
    }
    if c.terminator != TERMINATOR {
        add(format!(
            "Credential should be scoped with a valid terminator: '{TERMINATOR}', not '{}'.",
            c.terminator
        ));
    }
    if c.date != request_date {
        let amz_date_buf = format_amz_date(auth.amz_date);
        add(format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{}' != '{request_date}', from '{}'.",
            c.date,
            amz_date_str(&amz_date_buf)
        ));
    }
    if msg.is_empty() {
        Ok(())
    } else {
        Err(SigV4Error::new(ErrorKind::SignatureDoesNotMatch, msg))
    }
}

fn check_time(auth: &ParsedAuth, now: OffsetDateTime) -> Result<(), SigV4Error> {
    let age = now - auth.amz_date;
    // Signed more than 15 minutes in the future: refused for both carriers.
    if age < -MAX_SKEW {
        return Err(SigV4Error::request_expired());
    }
    let limit = match (auth.presigned, auth.expires) {
        (true, Some(expires)) => {
            // Re-checked here in case the ParsedAuth did not come from `parse`.
            if !(1..=MAX_EXPIRES_SECS).contains(&expires) {
                return Err(invalid_expires(expires));
            }
            Duration::seconds(i64::from(expires))
        }
        _ => MAX_SKEW,
    };
    if age > limit {
        return Err(SigV4Error::request_expired());
    }
    Ok(())
}

fn is_signed(auth: &ParsedAuth, name: &str) -> bool {
    auth.signed_headers.iter().any(|h| h == name)
}

fn check_signed_headers(parts: &Parts, auth: &ParsedAuth) -> Result<(), SigV4Error> {
    if !is_signed(auth, "host") {
        return Err(SigV4Error::incomplete(
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.",
        ));
    }
    if !auth.presigned {
        // The header the time came from must be covered by the signature, or
        // a captured request could be replayed with a fresh date.
        let time_header = if parts.headers.contains_key(X_AMZ_DATE) {
            X_AMZ_DATE
        } else if parts.headers.contains_key(DATE) {
            "date"
        } else {
            // Nothing to protect: a hand-made ParsedAuth without either header.
            return Ok(());
        };
        if !is_signed(auth, time_header) {
            return Err(SigV4Error::incomplete(format!(
                "the '{time_header}' header must be listed in SignedHeaders"
            )));
        }
    }
    Ok(())
}

/// The payload hashes the client may have signed (one or two).
fn payload_hashes<'a>(
    parts: &'a Parts,
    auth: &ParsedAuth,
    body_hash: &'a str,
    empty_body: bool,
) -> Result<[Option<&'a str>; 2], SigV4Error> {
    let Some(declared) = declared_payload_hash(parts, auth)? else {
        // Undeclared: the body's hash, or for a bodiless presigned URL also the
        // constant S3-style signers use.
        let unsigned = (auth.presigned && empty_body).then_some(UNSIGNED_PAYLOAD);
        return Ok([Some(body_hash), unsigned]);
    };
    if declared == UNSIGNED_PAYLOAD {
        if !auth.presigned {
            return Err(SigV4Error::incomplete(
                "x-amz-content-sha256 'UNSIGNED-PAYLOAD' is only accepted on presigned URLs",
            ));
        }
        if !empty_body {
            return Err(SigV4Error::incomplete(
                "a request with an unsigned payload must have an empty body: put every parameter in the signed query string",
            ));
        }
        return Ok([Some(UNSIGNED_PAYLOAD), None]);
    }
    // The declared hash is what was signed, so it must also be the body's.
    if declared.eq_ignore_ascii_case(body_hash) {
        Ok([Some(declared), None])
    } else {
        Err(SigV4Error::signature_does_not_match())
    }
}

/// The payload hash a request declares: the `x-amz-content-sha256` header or,
/// on a presigned URL, the `X-Amz-Content-Sha256` query parameter (which the
/// signature covers as part of the canonical query). Both at once must agree.
fn declared_payload_hash<'a>(
    parts: &'a Parts,
    auth: &ParsedAuth,
) -> Result<Option<&'a str>, SigV4Error> {
    let header = match parts.headers.get(X_AMZ_CONTENT_SHA256) {
        Some(v) => Some(
            v.to_str()
                .map_err(|_| SigV4Error::signature_does_not_match())?,
        ),
        None => None,
    };
    let query = if auth.presigned {
        query_content_sha256(parts.uri.query().unwrap_or(""))
    } else {
        None
    };
    match (header, query) {
        (Some(h), Some(q)) if h != q => Err(SigV4Error::signature_does_not_match()),
        (Some(h), _) => Ok(Some(h)),
        (None, q) => Ok(q),
    }
}

/// `X-Amz-Content-Sha256` from a query string. Its values (a hex digest or
/// `UNSIGNED-PAYLOAD`) never need percent-decoding; anything encoded is not one
/// of them and is left for the signature to refuse.
fn query_content_sha256(query: &str) -> Option<&str> {
    query.split('&').find_map(|pair| {
        let (name, value) = pair.split_once('=')?;
        name.eq_ignore_ascii_case("X-Amz-Content-Sha256")
            .then_some(value)
    })
}
