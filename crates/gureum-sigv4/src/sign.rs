//! The client side: signing requests the way the AWS SDKs do, for our tests,
//! examples and load generator.
//!
//! [`sign_request`] adds `x-amz-date` (and `host` when the request has none),
//! signs every header except the hop-by-hop and tracing ones botocore also
//! leaves out, and sets `authorization`. [`presign_url`] moves the
//! authentication into the query string, as botocore's `SigV4QueryAuth` does
//! for non-S3 services: the payload hash is that of an empty body.

use http::header::{AUTHORIZATION, HOST};
use http::request::Parts;
use http::uri::{PathAndQuery, Scheme};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Uri};
use percent_encoding::utf8_percent_encode;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::canonical::{write_canonical_request, RequestView, ENCODE};
use crate::crypto::{credential_scope, hex32, signature_bytes, signing_key};
use crate::error::{ErrorKind, SigV4Error};
use crate::parse::invalid_expires;
use crate::timefmt::{amz_date_str, format_amz_date};
use crate::{ALGORITHM, EMPTY_SHA256, MAX_EXPIRES_SECS};

/// Who signs, for where, and when.
#[derive(Debug, Clone, Copy)]
pub struct SigningParams<'a> {
    /// Access key ID, e.g. `AKIDEXAMPLE`.
    pub access_key_id: &'a str,
    /// The matching secret.
    pub secret_access_key: &'a str,
    /// Region of the credential scope.
    pub region: &'a str,
    /// Service of the credential scope (`ec2`, `ce`, …).
    pub service: &'a str,
    /// Signing time; becomes `X-Amz-Date`.
    pub time: OffsetDateTime,
    /// Session token of temporary credentials, sent (and signed) as
    /// `x-amz-security-token`.
    pub session_token: Option<&'a str>,
    /// Also send (and sign) `x-amz-content-sha256`, as S3 clients do.
    pub content_sha256_header: bool,
}

impl<'a> SigningParams<'a> {
    /// Long-term credentials, no extra headers.
    pub fn new(
        access_key_id: &'a str,
        secret_access_key: &'a str,
        region: &'a str,
        service: &'a str,
        time: OffsetDateTime,
    ) -> Self {
        SigningParams {
            access_key_id,
            secret_access_key,
            region,
            service,
            time,
            session_token: None,
            content_sha256_header: false,
        }
    }
}

/// Headers botocore never signs: hop-by-hop ones a proxy may rewrite, and
/// tracing ones added after signing.
const UNSIGNED_HEADERS: &[&str] = &[
    "authorization",
    "baggage",
    "connection",
    "expect",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "traceparent",
    "tracestate",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "user-agent",
    "x-amzn-trace-id",
];

fn invalid(message: impl Into<String>) -> SigV4Error {
    SigV4Error::new(ErrorKind::InvalidParameterValue, message)
}

/// `host[:port]` of `uri`, leaving out the port its scheme implies.
fn host_of(uri: &Uri) -> Option<String> {
    let authority = uri.authority()?;
    let default_port = match uri.scheme() {
        Some(s) if *s == Scheme::HTTPS => Some(443),
        Some(s) if *s == Scheme::HTTP => Some(80),
        _ => None,
    };
    match authority.port_u16() {
        Some(p) if Some(p) != default_port => Some(format!("{}:{p}", authority.host())),
        _ => Some(authority.host().to_owned()),
    }
}

fn header_value(name: &str, value: &str) -> Result<HeaderValue, SigV4Error> {
    HeaderValue::from_str(value).map_err(|_| invalid(format!("{name} is not a valid header value")))
}

/// Signed header names: every header present, lower-case and sorted, minus
/// [`UNSIGNED_HEADERS`].
fn names_to_sign(headers: &HeaderMap) -> Vec<String> {
    let mut names: Vec<String> = headers
        .keys()
        .map(HeaderName::as_str)
        .filter(|n| !UNSIGNED_HEADERS.contains(n))
        .map(str::to_owned)
        .collect();
    names.sort_unstable();
    names
}

fn sign_canonical(
    req: &RequestView<'_>,
    signed: &[String],
    payload_hash: &str,
    presigned: bool,
    params: &SigningParams<'_>,
    amz_date: &str,
) -> Result<String, SigV4Error> {
    let mut hasher = Sha256::new();
    write_canonical_request(&mut hasher, req, signed, payload_hash, presigned)?;
    let creq_hash: [u8; 32] = hasher.finalize().into();
    let date = &amz_date[..8];
    let key = signing_key(
        params.secret_access_key,
        date,
        params.region,
        params.service,
    );
    let sig = signature_bytes(
        &key,
        amz_date,
        date,
        params.region,
        params.service,
        &creq_hash,
    );
    Ok(hex::encode(sig))
}

/// Sign a request given as head and body, in place.
///
/// Adds `x-amz-date`, `host` (from the URI, if missing), the optional
/// `x-amz-security-token` and `x-amz-content-sha256`, and finally
/// `authorization`; an existing `authorization` is replaced.
pub fn sign_parts(
    parts: &mut Parts,
    body: &[u8],
    params: &SigningParams<'_>,
) -> Result<(), SigV4Error> {
    let amz_date_buf = format_amz_date(params.time);
    let amz_date = amz_date_str(&amz_date_buf);
    let headers = &mut parts.headers;
    headers.remove(AUTHORIZATION);
    headers.insert("x-amz-date", header_value("x-amz-date", amz_date)?);
    if !headers.contains_key(HOST) {
        let host = host_of(&parts.uri)
            .ok_or_else(|| invalid("the request has neither a host header nor an absolute URI"))?;
        headers.insert(HOST, header_value("host", &host)?);
    }
    if let Some(token) = params.session_token {
        headers.insert(
            "x-amz-security-token",
            header_value("session token", token)?,
        );
    }
    let body_hash = hex32(&Sha256::digest(body).into());
    let payload_hash = std::str::from_utf8(&body_hash).unwrap_or_default();
    if params.content_sha256_header {
        headers.insert(
            "x-amz-content-sha256",
            header_value("x-amz-content-sha256", payload_hash)?,
        );
    }

    let signed = names_to_sign(&parts.headers);
    let sig = sign_canonical(
        &RequestView::from_parts(parts),
        &signed,
        payload_hash,
        false,
        params,
        amz_date,
    )?;
    let authorization = format!(
        "{ALGORITHM} Credential={}/{}, SignedHeaders={}, Signature={sig}",
        params.access_key_id,
        credential_scope(&amz_date[..8], params.region, params.service),
        signed.join(";"),
    );
    parts.headers.insert(
        AUTHORIZATION,
        header_value("authorization", &authorization)?,
    );
    Ok(())
}

/// Sign `req` in place (see [`sign_parts`]).
pub fn sign_request(
    req: &mut Request<Vec<u8>>,
    params: &SigningParams<'_>,
) -> Result<(), SigV4Error> {
    // `Parts` cannot be borrowed out of a `Request`; rebuild it around the body.
    let taken = std::mem::take(req);
    let (mut parts, body) = taken.into_parts();
    let result = sign_parts(&mut parts, &body, params);
    *req = Request::from_parts(parts, body);
    result
}

/// Build a presigned URL for `method` on `url` (absolute, may carry a query),
/// valid for `expires_secs` (1..=604800) from `params.time`.
///
/// `headers_to_sign` are headers the eventual request will carry and that the
/// URL should bind (usually none); `host` is always signed, taken from
/// `headers_to_sign` or else from `url`. The request must have an empty body.
pub fn presign_url(
    method: &Method,
    url: &Uri,
    headers_to_sign: &HeaderMap,
    params: &SigningParams<'_>,
    expires_secs: u32,
) -> Result<Uri, SigV4Error> {
    if !(1..=MAX_EXPIRES_SECS).contains(&expires_secs) {
        return Err(invalid_expires(expires_secs));
    }
    let amz_date_buf = format_amz_date(params.time);
    let amz_date = amz_date_str(&amz_date_buf);

    let mut headers = headers_to_sign.clone();
    if !headers.contains_key(HOST) {
        let host = host_of(url).ok_or_else(|| invalid("the URL to presign is not absolute"))?;
        headers.insert(HOST, header_value("host", &host)?);
    }
    let signed = names_to_sign(&headers);

    let enc = |s: &str| utf8_percent_encode(s, ENCODE).to_string();
    let credential = format!(
        "{}/{}",
        params.access_key_id,
        credential_scope(&amz_date[..8], params.region, params.service)
    );
    let mut query = String::new();
    if let Some(q) = url.query().filter(|q| !q.is_empty()) {
        query.push_str(q);
        query.push('&');
    }
    query.push_str(&format!(
        "X-Amz-Algorithm={ALGORITHM}&X-Amz-Credential={}&X-Amz-Date={amz_date}&X-Amz-Expires={expires_secs}&X-Amz-SignedHeaders={}",
        enc(&credential),
        enc(&signed.join(";")),
    ));
    if let Some(token) = params.session_token {
        query.push_str("&X-Amz-Security-Token=");
        query.push_str(&enc(token));
    }

    let view = RequestView {
        method: method.as_str(),
        path: url.path(),
        query: &query,
        headers: &headers,
        authority: None,
    };
    let sig = sign_canonical(&view, &signed, EMPTY_SHA256, true, params, amz_date)?;
    query.push_str("&X-Amz-Signature=");
    query.push_str(&sig);

    let path_and_query: PathAndQuery = format!("{}?{query}", url.path())
        .parse()
        .map_err(|_| invalid("the presigned URL is not a valid URI"))?;
    let mut uri_parts = url.clone().into_parts();
    uri_parts.path_and_query = Some(path_and_query);
    Uri::from_parts(uri_parts).map_err(|_| invalid("the presigned URL is not a valid URI"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn host_leaves_out_default_ports() {
        let h = |s: &str| host_of(&s.parse::<Uri>().unwrap());
        assert_eq!(h("https://ec2.local/"), Some("ec2.local".into()));
        assert_eq!(h("https://ec2.local:443/"), Some("ec2.local".into()));
        assert_eq!(h("http://ec2.local:80/"), Some("ec2.local".into()));
        assert_eq!(h("http://ec2.local:8773/"), Some("ec2.local:8773".into()));
        assert_eq!(h("/relative"), None);
    }

    #[test]
    fn signs_like_the_test_suite() {
        // get-vanilla from AWS's test suite, signed from scratch.
        let mut req = Request::get("/")
            .header("host", "example.amazonaws.com")
            .body(Vec::new())
            .unwrap();
        let params = SigningParams::new(
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            "us-east-1",
            "service",
            datetime!(2015-08-30 12:36:00 UTC),
        );
        sign_request(&mut req, &params).unwrap();
        assert_eq!(req.headers()["x-amz-date"], "20150830T123600Z");
        assert_eq!(
            req.headers()["authorization"],
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
        );
    }

    #[test]
    fn user_agent_is_not_signed_and_host_is_added() {
        let mut req = Request::post("https://ec2.local:8773/")
            .header("user-agent", "gureum-test")
            .header(
                "content-type",
                "application/x-www-form-urlencoded; charset=utf-8",
            )
            .body(b"Action=DescribeRegions&Version=2016-11-15".to_vec())
            .unwrap();
        let mut params = SigningParams::new("AK", "SK", "r", "ec2", datetime!(2024-01-01 0:00 UTC));
        params.content_sha256_header = true;
        params.session_token = Some("token");
        sign_request(&mut req, &params).unwrap();
        assert_eq!(req.headers()["host"], "ec2.local:8773");
        let auth = req.headers()["authorization"].to_str().unwrap();
        assert!(
            auth.contains("SignedHeaders=content-type;host;x-amz-content-sha256;x-amz-date;x-amz-security-token,"),
            "{auth}"
        );
    }

    #[test]
    fn presign_rejects_bad_expiry() {
        let params = SigningParams::new("AK", "SK", "r", "ec2", datetime!(2024-01-01 0:00 UTC));
        let url: Uri = "https://ec2.local/".parse().unwrap();
        for bad in [0, MAX_EXPIRES_SECS + 1] {
            let e = presign_url(&Method::GET, &url, &HeaderMap::new(), &params, bad).unwrap_err();
            assert_eq!(e.kind, ErrorKind::InvalidParameterValue);
        }
        let relative: Uri = "/".parse().unwrap();
        assert!(presign_url(&Method::GET, &relative, &HeaderMap::new(), &params, 60).is_err());
    }

    #[test]
    fn presigned_url_shape() {
        let params = SigningParams::new(
            "AKID",
            "SK",
            "us-east-1",
            "ec2",
            datetime!(2024-01-01 0:00 UTC),
        );
        let url: Uri = "https://ec2.local/?Action=DescribeRegions".parse().unwrap();
        let signed = presign_url(&Method::GET, &url, &HeaderMap::new(), &params, 300).unwrap();
        let q = signed.query().unwrap();
        assert!(q.starts_with(
            "Action=DescribeRegions&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKID%2F20240101%2Fus-east-1%2Fec2%2Faws4_request&X-Amz-Date=20240101T000000Z&X-Amz-Expires=300&X-Amz-SignedHeaders=host&X-Amz-Signature="
        ), "{q}");
        assert_eq!(signed.host(), Some("ec2.local"));
        assert_eq!(signed.scheme_str(), Some("https"));
    }
}
