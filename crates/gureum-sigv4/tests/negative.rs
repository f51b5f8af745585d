//! The negative matrix: each way a request can be wrong, and the exact AWS
//! error kind (and, where AWS words it, the message) it must produce.

mod common;

use gureum_sigv4::{
    canonical_request, credential_scope, parse, presign_url, sign_parts, signature, signing_key,
    string_to_sign, verify, ErrorKind, ParsedAuth, SigV4Error, SigningParams, UNSIGNED_PAYLOAD,
};
use http::request::Parts;
use http::{HeaderMap, HeaderValue, Method, Request, Uri};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

const AK: &str = "AKIAGUREUMEXAMPLE";
const SK: &str = "gureum/secret+key/for/tests/only0000000000";
const REGION: &str = "us-east-1";
const SERVICE: &str = "ec2";
const T0: OffsetDateTime = datetime!(2024-05-17 09:30:12 UTC);
const BODY: &[u8] = b"Action=DescribeKeyPairs&Version=2016-11-15";

fn params() -> SigningParams<'static> {
    SigningParams::new(AK, SK, REGION, SERVICE, T0)
}

/// A POST as botocore sends EC2 calls, signed at `T0`.
fn signed_post_with(p: &SigningParams<'_>, extra: &[(&str, &str)]) -> (Parts, Vec<u8>) {
    let mut builder = Request::post("/")
        .header("host", "ec2.us-east-1.amazonaws.com")
        .header(
            "content-type",
            "application/x-www-form-urlencoded; charset=utf-8",
        );
    for (n, v) in extra {
        builder = builder.header(*n, *v);
    }
    let (mut parts, body) = builder.body(BODY.to_vec()).unwrap().into_parts();
    sign_parts(&mut parts, &body, p).unwrap();
    (parts, body)
}

fn signed_post() -> (Parts, Vec<u8>) {
    signed_post_with(&params(), &[])
}

fn check_at(parts: &Parts, body: &[u8], now: OffsetDateTime) -> Result<(), SigV4Error> {
    let auth = parse(parts)?;
    verify(parts, body, &auth, SK, REGION, SERVICE, now)
}

fn check(parts: &Parts, body: &[u8]) -> Result<(), SigV4Error> {
    check_at(parts, body, T0)
}

fn kind(r: Result<(), SigV4Error>) -> ErrorKind {
    r.expect_err("expected an error").kind
}

fn set(parts: &mut Parts, name: &'static str, value: &str) {
    parts
        .headers
        .insert(name, HeaderValue::from_str(value).unwrap());
}

fn authorization(parts: &Parts) -> String {
    parts.headers["authorization"].to_str().unwrap().to_owned()
}

#[test]
fn baseline_passes() {
    let (parts, body) = signed_post();
    check(&parts, &body).unwrap();
}

#[test]
fn wrong_secret() {
    let (parts, body) = signed_post();
    let auth = parse(&parts).unwrap();
    let e = verify(&parts, &body, &auth, "wrong", REGION, SERVICE, T0).unwrap_err();
    assert_eq!(e, SigV4Error::signature_does_not_match());
    assert_eq!(e.kind.http_status(), 403);
    assert_eq!(
        e.message,
        "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
    );
}

#[test]
fn signed_header_altered_after_signing() {
    let (mut parts, body) = signed_post();
    set(&mut parts, "content-type", "application/json");
    assert_eq!(kind(check(&parts, &body)), ErrorKind::SignatureDoesNotMatch);

    let (mut parts, body) = signed_post();
    set(&mut parts, "host", "ec2.us-west-2.amazonaws.com");
    assert_eq!(kind(check(&parts, &body)), ErrorKind::SignatureDoesNotMatch);
}

#[test]
fn unsigned_header_added_is_ignored() {
    let (mut parts, body) = signed_post();
    set(&mut parts, "x-forwarded-for", "203.0.113.7");
    set(&mut parts, "user-agent", "something-else/1.0");
    check(&parts, &body).unwrap();
}

#[test]
fn signed_header_missing() {
    let (mut parts, body) = signed_post_with(&params(), &[("x-gureum-trace", "abc")]);
    assert!(authorization(&parts).contains("x-gureum-trace"));
    check(&parts, &body).unwrap();
    parts.headers.remove("x-gureum-trace");
    assert_eq!(kind(check(&parts, &body)), ErrorKind::SignatureDoesNotMatch);
}

#[test]
fn wrong_scope_date() {
    // Signed consistently, but with a scope date that is not X-Amz-Date's day.
    let (mut parts, body) = signed_post();
    let auth = authorization(&parts).replace("/20240517/", "/20240516/");
    set(&mut parts, "authorization", &auth);
    let e = check(&parts, &body).unwrap_err();
    assert_eq!(e.kind, ErrorKind::SignatureDoesNotMatch);
    assert_eq!(
        e.message,
        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '20240516' != '20240517', from '20240517T093012Z'."
    );
}

#[test]
fn wrong_scope_region() {
    let mut p = params();
    p.region = "us-west-2";
    let (parts, body) = signed_post_with(&p, &[]);
    let e = check(&parts, &body).unwrap_err();
    assert_eq!(e.kind, ErrorKind::SignatureDoesNotMatch);
    assert_eq!(
        e.message,
        "Credential should be scoped to a valid region, not 'us-west-2'."
    );
}

#[test]
fn wrong_scope_service() {
    let mut p = params();
    p.service = "ce";
    let (parts, body) = signed_post_with(&p, &[]);
    let e = check(&parts, &body).unwrap_err();
    assert_eq!(e.kind, ErrorKind::SignatureDoesNotMatch);
    assert_eq!(
        e.message,
        "Credential should be scoped to correct service: 'ec2'."
    );
}

#[test]
fn wrong_terminator_and_several_scope_errors_at_once() {
    let (mut parts, body) = signed_post();
    let auth =
        authorization(&parts).replace("/us-east-1/ec2/aws4_request", "/eu-west-1/s3/aws5_request");
    set(&mut parts, "authorization", &auth);
    let e = check(&parts, &body).unwrap_err();
    assert_eq!(e.kind, ErrorKind::SignatureDoesNotMatch);
    assert_eq!(
        e.message,
        "Credential should be scoped to a valid region, not 'eu-west-1'. \
         Credential should be scoped to correct service: 'ec2'. \
         Credential should be scoped with a valid terminator: 'aws4_request', not 'aws5_request'."
    );
}

#[test]
fn clock_skew() {
    let (parts, body) = signed_post();
    for minutes in [16, -16, 60 * 24] {
        let e = check_at(&parts, &body, T0 + Duration::minutes(minutes)).unwrap_err();
        assert_eq!(e, SigV4Error::request_expired(), "{minutes}");
        assert_eq!(e.kind.http_status(), 400);
        assert_eq!(e.message, "Request has expired.");
    }
    for minutes in [14, -14, 15, -15] {
        check_at(&parts, &body, T0 + Duration::minutes(minutes)).unwrap();
    }
    let just_over = Duration::minutes(15) + Duration::seconds(1);
    assert_eq!(
        kind(check_at(&parts, &body, T0 + just_over)),
        ErrorKind::RequestExpired
    );
    assert_eq!(
        kind(check_at(&parts, &body, T0 - just_over)),
        ErrorKind::RequestExpired
    );
}

#[test]
fn body_changed_after_signing() {
    let (parts, _) = signed_post();
    let e = check(
        &parts,
        b"Action=DeleteKeyPair&Version=2016-11-15&KeyName=prod",
    )
    .unwrap_err();
    assert_eq!(e.kind, ErrorKind::SignatureDoesNotMatch);
}

#[test]
fn content_sha256_header() {
    let mut p = params();
    p.content_sha256_header = true;
    let (parts, body) = signed_post_with(&p, &[]);
    check(&parts, &body).unwrap();
    // The declared hash was signed, but the body no longer matches it.
    let e = check(&parts, b"Action=Other").unwrap_err();
    assert_eq!(e.kind, ErrorKind::SignatureDoesNotMatch);

    // UNSIGNED-PAYLOAD is for presigned URLs only.
    let (mut parts, body) = signed_post_with(&p, &[]);
    set(&mut parts, "x-amz-content-sha256", UNSIGNED_PAYLOAD);
    assert_eq!(kind(check(&parts, &body)), ErrorKind::IncompleteSignature);
}

#[test]
fn no_authentication_at_all() {
    let (mut parts, body) = signed_post();
    parts.headers.remove("authorization");
    let e = check(&parts, &body).unwrap_err();
    assert_eq!(e.kind, ErrorKind::MissingParameter);
    assert_eq!(e.kind.code(), "MissingParameter");
    assert_eq!(e.kind.http_status(), 400);
    assert_eq!(
        e.message,
        "The request must contain the parameter AWSAccessKeyId"
    );
}

#[test]
fn unknown_algorithm() {
    let (mut parts, body) = signed_post();
    let auth = authorization(&parts).replace("AWS4-HMAC-SHA256", "AWS4-HMAC-SHA512");
    set(&mut parts, "authorization", &auth);
    let e = check(&parts, &body).unwrap_err();
    assert_eq!(e.kind, ErrorKind::IncompleteSignature);
    assert_eq!(e.message, "Unsupported AWS 'algorithm': 'AWS4-HMAC-SHA512'");

    let (mut parts, body) = signed_post();
    set(&mut parts, "authorization", "Bearer abc");
    assert_eq!(kind(check(&parts, &body)), ErrorKind::IncompleteSignature);
}

#[test]
fn malformed_authorization() {
    for bad in [
        "AWS4-HMAC-SHA256",
        "AWS4-HMAC-SHA256 Credential",
        "AWS4-HMAC-SHA256 Credential=AKIAGUREUMEXAMPLE/20240517/us-east-1/ec2/aws4_request",
        "AWS4-HMAC-SHA256 Credential=AKIAGUREUMEXAMPLE/20240517/us-east-1/ec2, SignedHeaders=host, Signature=00",
        "AWS4-HMAC-SHA256 Credential=AKIAGUREUMEXAMPLE/20240517/us-east-1/ec2/aws4_request/x, SignedHeaders=host, Signature=00",
        "AWS4-HMAC-SHA256 Credential=AKIAGUREUMEXAMPLE /20240517/us-east-1/ec2/aws4_request, SignedHeaders=host, Signature=00",
        "AWS4-HMAC-SHA256 Credential=AKIAGUREUMEXAMPLE/20240517/us-east-1/ec2/aws4_request, SignedHeaders=, Signature=00",
    ] {
        let (mut parts, body) = signed_post();
        set(&mut parts, "authorization", bad);
        let e = check(&parts, &body).unwrap_err();
        assert_eq!(e.kind, ErrorKind::IncompleteSignature, "{bad}: {e}");
        assert_eq!(e.kind.http_status(), 400);
    }
}

#[test]
fn empty_or_missing_signature() {
    let (parts, body) = signed_post();
    let original = authorization(&parts);
    let (head, _sig) = original.rsplit_once("Signature=").unwrap();

    let mut empty = parts.clone();
    set(&mut empty, "authorization", &format!("{head}Signature="));
    let e = check(&empty, &body).unwrap_err();
    assert_eq!(e.kind, ErrorKind::IncompleteSignature);
    assert!(e
        .message
        .starts_with("Authorization header requires 'Signature' parameter."));

    let mut missing = parts.clone();
    set(
        &mut missing,
        "authorization",
        head.trim_end().trim_end_matches(','),
    );
    assert_eq!(kind(check(&missing, &body)), ErrorKind::IncompleteSignature);

    // Present but not 64 hex digits: it cannot match.
    for sig in ["abc", "zz", &"0".repeat(64), &"g".repeat(64)] {
        let mut wrong = parts.clone();
        set(
            &mut wrong,
            "authorization",
            &format!("{head}Signature={sig}"),
        );
        assert_eq!(
            kind(check(&wrong, &body)),
            ErrorKind::SignatureDoesNotMatch,
            "{sig}"
        );
    }
}

#[test]
fn host_and_date_must_be_signed() {
    // A request whose client chose to sign neither host nor x-amz-date.
    let (parts, body) = Request::post("/")
        .header("host", "ec2.us-east-1.amazonaws.com")
        .header("x-amz-date", "20240517T093012Z")
        .body(BODY.to_vec())
        .unwrap()
        .into_parts();
    let sign_only = |signed: &[&str]| -> Parts {
        let creq = canonical_request(&parts, signed, &sha256_hex(&body), false).unwrap();
        let scope = credential_scope("20240517", REGION, SERVICE);
        let sts = string_to_sign("20240517T093012Z", &scope, &creq);
        let sig = signature(&signing_key(SK, "20240517", REGION, SERVICE), &sts);
        let mut p = parts.clone();
        set(
            &mut p,
            "authorization",
            &format!(
                "AWS4-HMAC-SHA256 Credential={AK}/{scope}, SignedHeaders={}, Signature={sig}",
                signed.join(";")
            ),
        );
        p
    };
    check(&sign_only(&["host", "x-amz-date"]), &body).unwrap();
    let e = check(&sign_only(&["x-amz-date"]), &body).unwrap_err();
    assert_eq!(e.kind, ErrorKind::IncompleteSignature);
    assert_eq!(
        e.message,
        "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."
    );
    let e = check(&sign_only(&["host"]), &body).unwrap_err();
    assert_eq!(e.kind, ErrorKind::IncompleteSignature);
}

fn sha256_hex(body: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(body))
}

// ---- presigned URLs ----

fn presigned(expires: u32) -> Parts {
    let url: Uri = "https://ec2.us-east-1.amazonaws.com/?Action=DescribeRegions&Version=2016-11-15"
        .parse()
        .unwrap();
    let signed = presign_url(&Method::GET, &url, &HeaderMap::new(), &params(), expires).unwrap();
    Request::get(signed.path_and_query().unwrap().as_str())
        .header("host", "ec2.us-east-1.amazonaws.com")
        .body(())
        .unwrap()
        .into_parts()
        .0
}

#[test]
fn presigned_url_expiry() {
    let parts = presigned(300);
    check_at(&parts, b"", T0).unwrap();
    check_at(&parts, b"", T0 + Duration::seconds(300)).unwrap();
    let e = check_at(&parts, b"", T0 + Duration::seconds(301)).unwrap_err();
    assert_eq!(e, SigV4Error::request_expired());

    // A long-lived URL is good for its whole life, beyond the 15-minute skew.
    let parts = presigned(7 * 24 * 3600);
    check_at(&parts, b"", T0 + Duration::days(6)).unwrap();
    assert_eq!(
        kind(check_at(
            &parts,
            b"",
            T0 + Duration::days(7) + Duration::seconds(1)
        )),
        ErrorKind::RequestExpired
    );
}

#[test]
fn presigned_url_from_the_future() {
    let parts = presigned(3600);
    check_at(&parts, b"", T0 - Duration::minutes(14)).unwrap();
    assert_eq!(
        kind(check_at(&parts, b"", T0 - Duration::minutes(16))),
        ErrorKind::RequestExpired
    );
}

#[test]
fn presigned_url_with_expires_over_a_week() {
    let parts = presigned(600);
    let q = parts
        .uri
        .path_and_query()
        .unwrap()
        .as_str()
        .replace("X-Amz-Expires=600", "X-Amz-Expires=604801");
    let tampered = Request::get(q.as_str())
        .header("host", "ec2.us-east-1.amazonaws.com")
        .body(())
        .unwrap()
        .into_parts()
        .0;
    let e = check(&tampered, b"").unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidParameterValue);
    assert_eq!(e.kind.code(), "InvalidParameterValue");
    assert_eq!(e.kind.http_status(), 400);

    // `verify` refuses it too when the ParsedAuth was made by hand.
    let mut auth: ParsedAuth = parse(&parts).unwrap();
    auth.expires = Some(604_801);
    let e = verify(&parts, b"", &auth, SK, REGION, SERVICE, T0).unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidParameterValue);
}

#[test]
fn presigned_url_tampered() {
    let parts = presigned(600);
    let pq = parts.uri.path_and_query().unwrap().as_str();
    for (from, to) in [
        ("Action=DescribeRegions", "Action=DeleteVpc"),
        ("X-Amz-Expires=600", "X-Amz-Expires=601"),
    ] {
        let q = pq.replace(from, to);
        let tampered = Request::get(q.as_str())
            .header("host", "ec2.us-east-1.amazonaws.com")
            .body(())
            .unwrap()
            .into_parts()
            .0;
        assert_eq!(
            kind(check(&tampered, b"")),
            ErrorKind::SignatureDoesNotMatch,
            "{to}"
        );
    }
    // A body the URL did not sign.
    assert_eq!(
        kind(check(&parts, b"Action=Other")),
        ErrorKind::SignatureDoesNotMatch
    );
}

#[test]
fn presigned_url_with_unsigned_payload() {
    // Sign by hand with UNSIGNED-PAYLOAD, as S3-style presigners do.
    let base = "/?Action=DescribeRegions&X-Amz-Algorithm=AWS4-HMAC-SHA256\
                &X-Amz-Credential=AKIAGUREUMEXAMPLE%2F20240517%2Fus-east-1%2Fec2%2Faws4_request\
                &X-Amz-Date=20240517T093012Z&X-Amz-Expires=60&X-Amz-SignedHeaders=host";
    let unsigned = Request::post(base)
        .header("host", "ec2.us-east-1.amazonaws.com")
        .header("x-amz-content-sha256", UNSIGNED_PAYLOAD)
        .body(())
        .unwrap()
        .into_parts()
        .0;
    let creq = canonical_request(&unsigned, &["host"], UNSIGNED_PAYLOAD, true).unwrap();
    let scope = credential_scope("20240517", REGION, SERVICE);
    let sts = string_to_sign("20240517T093012Z", &scope, &creq);
    let sig = signature(&signing_key(SK, "20240517", REGION, SERVICE), &sts);
    let parts = Request::post(format!("{base}&X-Amz-Signature={sig}").as_str())
        .header("host", "ec2.us-east-1.amazonaws.com")
        .header("x-amz-content-sha256", UNSIGNED_PAYLOAD)
        .body(())
        .unwrap()
        .into_parts()
        .0;
    check(&parts, b"").unwrap();
    // The body is not signed, so it must not carry anything: on the Query API
    // it would be parameters nobody signed.
    assert_eq!(
        kind(check(&parts, b"any body at all")),
        ErrorKind::IncompleteSignature
    );
    // Undeclared, an empty body may have been signed either way.
    let mut without = parts.clone();
    without.headers.remove("x-amz-content-sha256");
    check(&without, b"").unwrap();
    // With a body, only its hash is a candidate, which was not what was signed.
    assert_eq!(
        kind(check(&without, b"any body at all")),
        ErrorKind::SignatureDoesNotMatch
    );
}

#[test]
fn presigned_url_missing_parameters() {
    let parts = presigned(600);
    let pq = parts.uri.path_and_query().unwrap().as_str().to_owned();
    for param in [
        "X-Amz-Credential",
        "X-Amz-Date",
        "X-Amz-SignedHeaders",
        "X-Amz-Signature",
    ] {
        let start = pq.find(&format!("&{param}=")).unwrap();
        let end = pq[start + 1..]
            .find('&')
            .map_or(pq.len(), |i| start + 1 + i);
        let q = format!("{}{}", &pq[..start], &pq[end..]);
        let p = Request::get(q.as_str())
            .header("host", "ec2.us-east-1.amazonaws.com")
            .body(())
            .unwrap()
            .into_parts()
            .0;
        assert_eq!(
            kind(check(&p, b"")),
            ErrorKind::IncompleteSignature,
            "{param}"
        );
    }
    let q = pq.replace(
        "X-Amz-Algorithm=AWS4-HMAC-SHA256",
        "X-Amz-Algorithm=AWS4-ECDSA-P256-SHA256",
    );
    let p = Request::get(q.as_str()).body(()).unwrap().into_parts().0;
    let e = check(&p, b"").unwrap_err();
    assert_eq!(e.kind, ErrorKind::IncompleteSignature);
    assert_eq!(
        e.message,
        "Unsupported AWS 'algorithm': 'AWS4-ECDSA-P256-SHA256'"
    );
}

#[test]
fn unknown_access_key_is_the_callers_auth_failure() {
    // Looking the key up is the caller's job; this is what it answers.
    let e = SigV4Error::auth_failure();
    assert_eq!(e.kind, ErrorKind::AuthFailure);
    assert_eq!(e.kind.code(), "AuthFailure");
    assert_eq!(e.kind.http_status(), 401);
    assert_eq!(
        e.message,
        "AWS was not able to validate the provided access credentials"
    );
    let (parts, _) = signed_post();
    assert_eq!(parse(&parts).unwrap().credential.access_key_id, AK);
}
