//! Reading the authentication parts out of a request, before any secret is known.
//!
//! Two carriers exist:
//! * the `Authorization` header:
//!   `AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/ec2/aws4_request,
//!   SignedHeaders=host;x-amz-date, Signature=<64 hex>`, with the time in
//!   `X-Amz-Date` (or, failing that, `Date`);
//! * the query string of a presigned URL: `X-Amz-Algorithm`,
//!   `X-Amz-Credential`, `X-Amz-Date`, `X-Amz-SignedHeaders`,
//!   `X-Amz-Signature` and optionally `X-Amz-Expires`.
//!
//! Only the shape is checked here; whether the scope, time and signature are
//! acceptable is [`crate::verify()`]'s business.

use http::header::{AUTHORIZATION, DATE};
use http::request::Parts;
use percent_encoding::percent_decode_str;
use time::OffsetDateTime;

use crate::error::{ErrorKind, SigV4Error};
use crate::timefmt::{parse_amz_date, parse_http_date};
use crate::{ALGORITHM, MAX_EXPIRES_SECS};

/// What the server learnt from the request's Authorization header or
/// presigned query, before looking up the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    /// The access key ID to look the secret up by.
    pub access_key_id: String,
    /// Scope date, `YYYYMMDD`.
    pub date: String,
    /// Scope region, e.g. `us-east-1`.
    pub region: String,
    /// Scope service, e.g. `ec2`.
    pub service: String,
    /// Scope terminator; must be `aws4_request` (checked by [`crate::verify()`]).
    pub terminator: String,
}

/// Everything [`crate::verify()`] needs besides the request and the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedAuth {
    /// The credential and its scope.
    pub credential: Credential,
    /// The signed header names, lower-case, in the order the client listed them.
    pub signed_headers: Vec<String>,
    /// The signature as sent (expected: 64 lower-case hex digits).
    pub signature: String,
    /// When the client signed (`X-Amz-Date`, or the `Date` header).
    pub amz_date: OffsetDateTime,
    /// Whether the authentication came in the query string.
    pub presigned: bool,
    /// `X-Amz-Expires` of a presigned URL, in seconds.
    pub expires: Option<u32>,
}

const X_AMZ_DATE: &str = "x-amz-date";

fn bad_date(value: &str) -> SigV4Error {
    SigV4Error::incomplete(format!(
        "Date must be in ISO-8601 'basic format'. Got '{value}'. See http://en.wikipedia.org/wiki/ISO_8601"
    ))
}

fn unsupported_algorithm(alg: &str) -> SigV4Error {
    SigV4Error::incomplete(format!("Unsupported AWS 'algorithm': '{alg}'"))
}

/// Splits `AKID/date/region/service/terminator`.
fn parse_credential(raw: &str) -> Result<Credential, SigV4Error> {
    let mut it = raw.split('/');
    let parts: [Option<&str>; 5] = [it.next(), it.next(), it.next(), it.next(), it.next()];
    match (parts, it.next()) {
        ([Some(a), Some(d), Some(r), Some(s), Some(t)], None) => Ok(Credential {
            access_key_id: a.to_owned(),
            date: d.to_owned(),
            region: r.to_owned(),
            service: s.to_owned(),
            terminator: t.to_owned(),
        }),
        _ => Err(SigV4Error::incomplete(format!(
            "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '{raw}'"
        ))),
    }
}

/// `host;x-amz-date` into lower-case names. Empty names are dropped: they
/// cannot be reproduced, so the signature check will fail on them anyway.
fn parse_signed_headers(raw: &str) -> Vec<String> {
    raw.split(';')
        .filter(|s| !s.is_empty())
        .map(str::to_ascii_lowercase)
        .collect()
}

/// The error for an `X-Amz-Expires` outside 1..=604800 seconds.
pub(crate) fn invalid_expires(raw: impl std::fmt::Display) -> SigV4Error {
    SigV4Error::new(
        ErrorKind::InvalidParameterValue,
        format!(
            "value ({raw}) for parameter X-Amz-Expires is invalid: must be a whole number of seconds from 1 to {MAX_EXPIRES_SECS}"
        ),
    )
}

/// The lifetime a presigned URL asks for, validated.
fn check_expires(raw: &str) -> Result<u32, SigV4Error> {
    match raw.parse::<u32>() {
        Ok(n) if (1..=MAX_EXPIRES_SECS).contains(&n) => Ok(n),
        _ => Err(invalid_expires(raw)),
    }
}

/// Parse the auth parts of a request: the `Authorization` header if there is
/// one, otherwise presigned-URL query parameters.
///
/// A request carrying neither fails with EC2's `MissingParameter`
/// ([`SigV4Error::missing_authentication`]).
pub fn parse(parts: &Parts) -> Result<ParsedAuth, SigV4Error> {
    let mut auth_headers = parts.headers.get_all(AUTHORIZATION).iter();
    if let Some(header) = auth_headers.next() {
        if auth_headers.next().is_some() {
            // Which one would a proxy in front of us have looked at?
            return Err(SigV4Error::incomplete(
                "the request carries more than one authorization header",
            ));
        }
        return parse_header(header, parts);
    }
    if let Some(query) = parts.uri.query() {
        if let Some(auth) = parse_query(query)? {
            return Ok(auth);
        }
    }
    Err(SigV4Error::missing_authentication())
}

fn parse_header(header: &http::HeaderValue, parts: &Parts) -> Result<ParsedAuth, SigV4Error> {
    let raw = header
        .to_str()
        .map_err(|_| SigV4Error::incomplete("the authorization header is not visible ASCII"))?;
    let raw = raw.trim();
    let (alg, rest) = raw.split_once([' ', '\t']).unwrap_or((raw, ""));

    let mut credential = None;
    let mut signed_headers = None;
    let mut signature = None;
    if alg == ALGORITHM {
        // AWS splits the parameters on commas and whitespace alike, which is
        // why a stray space inside a credential reports a missing '='.
        for token in rest.split([',', ' ', '\t']).filter(|t| !t.is_empty()) {
            let Some((key, value)) = token.split_once('=') else {
                return Err(SigV4Error::incomplete(format!(
                    "'{token}' not a valid key=value pair (missing equal-sign) in Authorization header: '{raw}'."
                )));
            };
            match key {
                "Credential" => credential = Some(value),
                "SignedHeaders" => signed_headers = Some(value),
                "Signature" => signature = Some(value),
                _ => {}
            }
        }
    } else if alg.starts_with("AWS4-") {
        return Err(unsupported_algorithm(alg));
    }
    // Any other scheme ("Basic …", "Bearer …") falls through with every
    // parameter missing, which is how AWS words it too.

    let x_amz_date = parts.headers.get(X_AMZ_DATE);
    let date = parts.headers.get(DATE);

    let mut missing = String::new();
    if credential.is_none_or(str::is_empty) {
        missing.push_str("Authorization header requires 'Credential' parameter. ");
    }
    if signature.is_none_or(str::is_empty) {
        missing.push_str("Authorization header requires 'Signature' parameter. ");
    }
    if signed_headers.is_none_or(str::is_empty) {
        missing.push_str("Authorization header requires 'SignedHeaders' parameter. ");
    }
    if x_amz_date.is_none() && date.is_none() {
        missing.push_str(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. ",
        );
    }
    if !missing.is_empty() {
        missing.push_str("Authorization=");
        missing.push_str(raw);
        return Err(SigV4Error::incomplete(missing));
    }

    let amz_date = match (x_amz_date, date) {
        (Some(v), _) => {
            let s = v.to_str().unwrap_or("");
            parse_amz_date(s.trim()).ok_or_else(|| bad_date(s))?
        }
        (None, Some(v)) => {
            let s = v.to_str().unwrap_or("");
            parse_http_date(s).ok_or_else(|| bad_date(s))?
        }
        (None, None) => unreachable!("checked above"),
    };

    Ok(ParsedAuth {
        credential: parse_credential(credential.unwrap_or_default())?,
        signed_headers: parse_signed_headers(signed_headers.unwrap_or_default()),
        signature: signature.unwrap_or_default().to_owned(),
        amz_date,
        presigned: false,
        expires: None,
    })
}

const Q_ALGORITHM: &str = "X-Amz-Algorithm";
const Q_CREDENTIAL: &str = "X-Amz-Credential";
const Q_DATE: &str = "X-Amz-Date";
const Q_SIGNED_HEADERS: &str = "X-Amz-SignedHeaders";
const Q_SIGNATURE: &str = "X-Amz-Signature";
const Q_EXPIRES: &str = "X-Amz-Expires";

/// Presigned-URL parameters, or `None` if the query carries no SigV4 at all.
fn parse_query(query: &str) -> Result<Option<ParsedAuth>, SigV4Error> {
    // Decoded values of the six parameters, in the order of the names above.
    let names = [
        Q_ALGORITHM,
        Q_CREDENTIAL,
        Q_DATE,
        Q_SIGNED_HEADERS,
        Q_SIGNATURE,
        Q_EXPIRES,
    ];
    let mut values: [Option<String>; 6] = Default::default();
    for pair in query.split('&') {
        let (raw_name, raw_value) = pair.split_once('=').unwrap_or((pair, ""));
        // Parameter names are plain ASCII; a name needing decoding is not ours.
        let Some(slot) = names.iter().position(|n| *n == raw_name) else {
            continue;
        };
        if values[slot].is_some() {
            return Err(SigV4Error::incomplete(format!(
                "the query parameter '{raw_name}' appears more than once"
            )));
        }
        let decoded = percent_decode_str(raw_value)
            .decode_utf8()
            .map_err(|_| {
                SigV4Error::incomplete(format!(
                    "the query parameter '{raw_name}' is not valid UTF-8 once decoded"
                ))
            })?
            .into_owned();
        values[slot] = Some(decoded);
    }
    let [algorithm, credential, date, signed_headers, signature, expires] = values;
    if algorithm.is_none() && credential.is_none() && signature.is_none() {
        return Ok(None);
    }
    if let Some(alg) = &algorithm {
        if alg != ALGORITHM {
            return Err(unsupported_algorithm(alg));
        }
    }
    let required = [
        (Q_ALGORITHM, &algorithm),
        (Q_CREDENTIAL, &credential),
        (Q_DATE, &date),
        (Q_SIGNED_HEADERS, &signed_headers),
        (Q_SIGNATURE, &signature),
    ];
    let missing: Vec<&str> = required
        .iter()
        .filter(|(_, v)| v.as_deref().is_none_or(str::is_empty))
        .map(|(n, _)| *n)
        .collect();
    if !missing.is_empty() {
        return Err(SigV4Error::incomplete(format!(
            "query-string authentication requires the parameters 'X-Amz-Algorithm', 'X-Amz-Credential', 'X-Amz-Date', 'X-Amz-SignedHeaders' and 'X-Amz-Signature'; missing: {}",
            missing.join(", ")
        )));
    }
    let date = date.unwrap_or_default();
    let amz_date = parse_amz_date(&date).ok_or_else(|| bad_date(&date))?;
    let expires = expires.as_deref().map(check_expires).transpose()?;
    Ok(Some(ParsedAuth {
        credential: parse_credential(&credential.unwrap_or_default())?,
        signed_headers: parse_signed_headers(&signed_headers.unwrap_or_default()),
        signature: signature.unwrap_or_default(),
        amz_date,
        presigned: true,
        expires,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::Request;
    use time::macros::datetime;

    fn parts(req: http::request::Builder) -> Parts {
        req.body(()).unwrap().into_parts().0
    }

    const GOOD: &str = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31";

    #[test]
    fn header_auth() {
        let p = parts(
            Request::get("/")
                .header("host", "example.amazonaws.com")
                .header("x-amz-date", "20150830T123600Z")
                .header("authorization", GOOD),
        );
        let a = parse(&p).unwrap();
        assert_eq!(
            a.credential,
            Credential {
                access_key_id: "AKIDEXAMPLE".into(),
                date: "20150830".into(),
                region: "us-east-1".into(),
                service: "service".into(),
                terminator: "aws4_request".into(),
            }
        );
        assert_eq!(a.signed_headers, ["host", "x-amz-date"]);
        assert_eq!(
            a.signature,
            "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
        );
        assert_eq!(a.amz_date, datetime!(2015-08-30 12:36:00 UTC));
        assert!(!a.presigned);
        assert_eq!(a.expires, None);
    }

    #[test]
    fn header_auth_without_spaces_and_with_date_header() {
        let p = parts(
            Request::post("/")
                .header("date", "Sun, 30 Aug 2015 12:36:00 GMT")
                .header(
                    "authorization",
                    "AWS4-HMAC-SHA256 Credential=AK/20150830/r/s/aws4_request,SignedHeaders=Date;Host,Signature=00",
                ),
        );
        let a = parse(&p).unwrap();
        assert_eq!(a.signed_headers, ["date", "host"]);
        assert_eq!(a.amz_date, datetime!(2015-08-30 12:36:00 UTC));
    }

    #[test]
    fn no_auth_is_missing_parameter() {
        let e = parse(&parts(Request::get("/?Action=DescribeRegions"))).unwrap_err();
        assert_eq!(e, SigV4Error::missing_authentication());
        let e = parse(&parts(Request::get("/"))).unwrap_err();
        assert_eq!(e.kind, ErrorKind::MissingParameter);
        assert_eq!(
            e.message,
            "The request must contain the parameter AWSAccessKeyId"
        );
    }

    #[test]
    fn malformed_headers() {
        let cases = [
            (
                "AWS4-HMAC-SHA256 Credential=AKID /20150830/us-east-1/service/aws4_request, SignedHeaders=host, Signature=ab",
                "'/20150830/us-east-1/service/aws4_request' not a valid key=value pair (missing equal-sign) in Authorization header: 'AWS4-HMAC-SHA256 Credential=AKID /20150830/us-east-1/service/aws4_request, SignedHeaders=host, Signature=ab'.",
            ),
            (
                "AWS4-HMAC-SHA256 SignedHeaders=host, Signature=ab",
                "Authorization header requires 'Credential' parameter. Authorization=AWS4-HMAC-SHA256 SignedHeaders=host, Signature=ab",
            ),
            (
                "AWS4-HMAC-SHA256 Credential=a/b/c/d/e, SignedHeaders=host, Signature=",
                "Authorization header requires 'Signature' parameter. Authorization=AWS4-HMAC-SHA256 Credential=a/b/c/d/e, SignedHeaders=host, Signature=",
            ),
            (
                "Basic dXNlcjpwYXNz",
                "Authorization header requires 'Credential' parameter. Authorization header requires 'Signature' parameter. Authorization header requires 'SignedHeaders' parameter. Authorization=Basic dXNlcjpwYXNz",
            ),
            (
                "AWS4-HMAC-SHA512 Credential=a/b/c/d/e, SignedHeaders=host, Signature=ab",
                "Unsupported AWS 'algorithm': 'AWS4-HMAC-SHA512'",
            ),
            (
                "AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/aws4_request, SignedHeaders=host, Signature=ab",
                "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got 'AKID/20150830/us-east-1/aws4_request'",
            ),
        ];
        for (header, message) in cases {
            let p = parts(
                Request::get("/")
                    .header("x-amz-date", "20150830T123600Z")
                    .header("authorization", header),
            );
            let e = parse(&p).unwrap_err();
            assert_eq!(e.kind, ErrorKind::IncompleteSignature, "{header}");
            assert_eq!(e.message, message, "{header}");
        }
    }

    #[test]
    fn header_auth_needs_a_date() {
        let p = parts(Request::get("/").header("authorization", GOOD));
        let e = parse(&p).unwrap_err();
        assert_eq!(e.kind, ErrorKind::IncompleteSignature);
        assert!(e.message.starts_with(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. Authorization=AWS4-HMAC-SHA256"
        ));

        let p = parts(
            Request::get("/")
                .header("x-amz-date", "2015-08-30T12:36:00Z")
                .header("authorization", GOOD),
        );
        let e = parse(&p).unwrap_err();
        assert_eq!(e.kind, ErrorKind::IncompleteSignature);
        assert_eq!(
            e.message,
            "Date must be in ISO-8601 'basic format'. Got '2015-08-30T12:36:00Z'. See http://en.wikipedia.org/wiki/ISO_8601"
        );
    }

    #[test]
    fn two_authorization_headers_are_refused() {
        let p = parts(
            Request::get("/")
                .header("x-amz-date", "20150830T123600Z")
                .header("authorization", GOOD)
                .header("authorization", GOOD),
        );
        assert_eq!(parse(&p).unwrap_err().kind, ErrorKind::IncompleteSignature);
    }

    const PRESIGNED: &str = "/?Action=DescribeRegions&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20150830%2Fus-east-1%2Fec2%2Faws4_request&X-Amz-Date=20150830T123600Z&X-Amz-Expires=300&X-Amz-SignedHeaders=host&X-Amz-Signature=abcd";

    #[test]
    fn query_auth() {
        let a = parse(&parts(Request::get(PRESIGNED))).unwrap();
        assert!(a.presigned);
        assert_eq!(a.expires, Some(300));
        assert_eq!(a.credential.access_key_id, "AKIDEXAMPLE");
        assert_eq!(a.credential.service, "ec2");
        assert_eq!(a.signed_headers, ["host"]);
        assert_eq!(a.signature, "abcd");
        assert_eq!(a.amz_date, datetime!(2015-08-30 12:36:00 UTC));

        let without_expiry = PRESIGNED.replace("&X-Amz-Expires=300", "");
        let a = parse(&parts(Request::get(without_expiry.as_str()))).unwrap();
        assert_eq!(a.expires, None);
    }

    #[test]
    fn query_auth_errors() {
        let cases = [
            (
                PRESIGNED.replace("X-Amz-Expires=300", "X-Amz-Expires=604801"),
                ErrorKind::InvalidParameterValue,
            ),
            (
                PRESIGNED.replace("X-Amz-Expires=300", "X-Amz-Expires=0"),
                ErrorKind::InvalidParameterValue,
            ),
            (
                PRESIGNED.replace("X-Amz-Expires=300", "X-Amz-Expires=soon"),
                ErrorKind::InvalidParameterValue,
            ),
            (
                PRESIGNED.replace("AWS4-HMAC-SHA256", "AWS4-HMAC-SHA1"),
                ErrorKind::IncompleteSignature,
            ),
            (
                PRESIGNED.replace("&X-Amz-Signature=abcd", ""),
                ErrorKind::IncompleteSignature,
            ),
            (
                PRESIGNED.replace("X-Amz-Signature=abcd", "X-Amz-Signature="),
                ErrorKind::IncompleteSignature,
            ),
            (
                PRESIGNED.replace("&X-Amz-Date=20150830T123600Z", ""),
                ErrorKind::IncompleteSignature,
            ),
            (
                format!("{PRESIGNED}&X-Amz-Signature=ef01"),
                ErrorKind::IncompleteSignature,
            ),
        ];
        for (uri, kind) in cases {
            let e = parse(&parts(Request::get(uri.as_str()))).unwrap_err();
            assert_eq!(e.kind, kind, "{uri}: {e}");
        }
    }

    #[test]
    fn header_wins_over_query() {
        let p = parts(
            Request::get(PRESIGNED)
                .header("x-amz-date", "20150830T123600Z")
                .header("authorization", GOOD),
        );
        assert!(!parse(&p).unwrap().presigned);
    }
}
