//! A real EC2 request as botocore signs it (captured once by
//! tests/data/botocore/generate.py with a frozen clock; this test does not run
//! Python).

mod common;

use common::{data_dir, RawRequest, SECRET};
use gureum_sigv4::{parse, verify, ErrorKind};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

const SIGNED_AT: OffsetDateTime = datetime!(2024-05-17 09:30:12 UTC);

fn request() -> (http::request::Parts, Vec<u8>) {
    let raw = RawRequest::read(&data_dir().join("botocore/ec2-describe-key-pairs.http"));
    raw.to_parts().unwrap()
}

#[test]
fn botocore_ec2_post_verifies() {
    let (parts, body) = request();
    assert_eq!(body, b"Action=DescribeKeyPairs&Version=2016-11-15");
    let auth = parse(&parts).unwrap();
    assert_eq!(auth.credential.access_key_id, "AKIDEXAMPLE");
    assert_eq!(auth.credential.region, "us-east-1");
    assert_eq!(auth.credential.service, "ec2");
    assert_eq!(auth.signed_headers, ["content-type", "host", "x-amz-date"]);
    assert_eq!(auth.amz_date, SIGNED_AT);
    verify(&parts, &body, &auth, SECRET, "us-east-1", "ec2", SIGNED_AT).unwrap();
    verify(
        &parts,
        &body,
        &auth,
        SECRET,
        "us-east-1",
        "ec2",
        SIGNED_AT + Duration::minutes(14),
    )
    .unwrap();
}

#[test]
fn botocore_ec2_post_refused_when_late_or_elsewhere() {
    let (parts, body) = request();
    let auth = parse(&parts).unwrap();
    let late = verify(
        &parts,
        &body,
        &auth,
        SECRET,
        "us-east-1",
        "ec2",
        SIGNED_AT + Duration::minutes(16),
    );
    assert_eq!(late.unwrap_err().kind, ErrorKind::RequestExpired);
    let elsewhere = verify(&parts, &body, &auth, SECRET, "eu-west-1", "ec2", SIGNED_AT);
    assert_eq!(
        elsewhere.unwrap_err().kind,
        ErrorKind::SignatureDoesNotMatch
    );
    let tampered = verify(
        &parts,
        b"Action=DescribeKeyPairs&Version=2016-11-16",
        &auth,
        SECRET,
        "us-east-1",
        "ec2",
        SIGNED_AT,
    );
    assert_eq!(tampered.unwrap_err().kind, ErrorKind::SignatureDoesNotMatch);
}

/// A request for the URL in `file` (one of the botocore fixtures), made with
/// `method` and no body.
fn url_parts(file: &str, method: http::Method) -> http::request::Parts {
    let url = std::fs::read_to_string(data_dir().join("botocore").join(file)).unwrap();
    let url: http::Uri = url.trim().parse().unwrap();
    http::Request::builder()
        .method(method)
        .uri(url.path_and_query().unwrap().as_str())
        .header("host", url.host().unwrap())
        .body(())
        .unwrap()
        .into_parts()
        .0
}

/// botocore's `generate_presigned_url` signs the operation's own HTTP method,
/// which for EC2 (Query protocol) is POST, with an empty body.
fn presigned_parts(method: http::Method) -> http::request::Parts {
    url_parts("ec2-presigned.url", method)
}

fn check(parts: &http::request::Parts, body: &[u8], at: OffsetDateTime) -> Result<(), ErrorKind> {
    let auth = parse(parts).map_err(|e| e.kind)?;
    verify(parts, body, &auth, SECRET, "us-east-1", "ec2", at).map_err(|e| e.kind)
}

#[test]
fn botocore_presigned_url_verifies() {
    let parts = presigned_parts(http::Method::POST);
    let auth = parse(&parts).unwrap();
    assert!(auth.presigned);
    assert_eq!(auth.expires, Some(600));
    assert_eq!(auth.signed_headers, ["host"]);
    verify(&parts, b"", &auth, SECRET, "us-east-1", "ec2", SIGNED_AT).unwrap();
    verify(
        &parts,
        b"",
        &auth,
        SECRET,
        "us-east-1",
        "ec2",
        SIGNED_AT + Duration::seconds(600),
    )
    .unwrap();
    let expired = verify(
        &parts,
        b"",
        &auth,
        SECRET,
        "us-east-1",
        "ec2",
        SIGNED_AT + Duration::seconds(601),
    );
    assert_eq!(expired.unwrap_err().kind, ErrorKind::RequestExpired);

    // Opened as a link, i.e. fetched with GET, the POST-signed URL verifies too
    // (a deliberate deviation, see the verify module); no other method does.
    let get = presigned_parts(http::Method::GET);
    check(&get, b"", SIGNED_AT).unwrap();
    for method in [http::Method::PUT, http::Method::DELETE, http::Method::HEAD] {
        let other = presigned_parts(method);
        assert_eq!(
            check(&other, b"", SIGNED_AT),
            Err(ErrorKind::SignatureDoesNotMatch)
        );
    }
    // A body is not covered by a presigned URL's signature: with one, the
    // method is no longer interchangeable and the body hash no longer matches.
    assert_eq!(
        check(&parts, b"KeyName.2=other", SIGNED_AT),
        Err(ErrorKind::SignatureDoesNotMatch)
    );
}

/// Every presigned fixture: (file, method it was signed for, lifetime in seconds).
const PRESIGNED: [(&str, &str, u32); 4] = [
    ("ec2-presigned-describe-instances.url", "POST", 300),
    ("ec2-presigned-get.url", "GET", 300),
    ("ec2-presigned-unsigned.url", "GET", 300),
    ("ec2-presigned-unsigned-declared.url", "GET", 300),
];

#[test]
fn botocore_presigned_urls_verify_by_get_and_post() {
    for (file, _, expires) in PRESIGNED {
        for method in [http::Method::GET, http::Method::POST] {
            let parts = url_parts(file, method.clone());
            let auth = parse(&parts).unwrap();
            assert!(auth.presigned, "{file}");
            assert_eq!(auth.expires, Some(expires), "{file}");
            assert_eq!(check(&parts, b"", SIGNED_AT), Ok(()), "{file} {method}");
            let last = SIGNED_AT + Duration::seconds(i64::from(expires));
            assert_eq!(check(&parts, b"", last), Ok(()), "{file} {method}");
            assert_eq!(
                check(&parts, b"", last + Duration::seconds(1)),
                Err(ErrorKind::RequestExpired),
                "{file} {method}"
            );
        }
    }
}

/// The URL in `file` with `from` replaced by `to` in its query string.
fn tampered(file: &str, from: &str, to: &str) -> http::request::Parts {
    let mut parts = url_parts(file, http::Method::GET);
    let pq = parts.uri.path_and_query().unwrap().as_str();
    assert!(pq.contains(from), "{file} has no {from}");
    parts.uri = pq.replacen(from, to, 1).parse().unwrap();
    parts
}

#[test]
fn tampered_presigned_urls_are_refused() {
    let cases = [
        (
            "ec2-presigned-describe-instances.url",
            "i-0123456789abcdef0",
            "i-0123456789abcdef1",
        ),
        (
            "ec2-presigned-describe-instances.url",
            "X-Amz-Expires=300",
            "X-Amz-Expires=3000",
        ),
        (
            "ec2-presigned-get.url",
            "web%20server%2A",
            "web%20server%3F",
        ),
        ("ec2-presigned-get.url", "&Filter.1.Name=tag%3AName", ""),
        (
            "ec2-presigned-unsigned.url",
            "DescribeRegions",
            "DescribeVpcs",
        ),
        // Dropping the declaration changes the signed query string.
        (
            "ec2-presigned-unsigned-declared.url",
            "&X-Amz-Content-Sha256=UNSIGNED-PAYLOAD",
            "",
        ),
        // Declaring a payload hash on a URL signed without one.
        (
            "ec2-presigned-unsigned.url",
            "&X-Amz-Algorithm",
            "&X-Amz-Content-Sha256=UNSIGNED-PAYLOAD&X-Amz-Algorithm",
        ),
    ];
    for (file, from, to) in cases {
        let parts = tampered(file, from, to);
        assert_eq!(
            check(&parts, b"", SIGNED_AT),
            Err(ErrorKind::SignatureDoesNotMatch),
            "{file}: {from} -> {to}"
        );
    }
}

#[test]
fn unsigned_payload_urls_carry_no_body() {
    // A URL signed with UNSIGNED-PAYLOAD does not cover a body: parameters
    // posted with it would be parameters nobody signed.
    for file in [
        "ec2-presigned-unsigned.url",
        "ec2-presigned-unsigned-declared.url",
    ] {
        let parts = url_parts(file, http::Method::POST);
        let e = check(
            &parts,
            b"Action=TerminateInstances&InstanceId.1=i-1",
            SIGNED_AT,
        );
        assert!(
            matches!(
                e,
                Err(ErrorKind::SignatureDoesNotMatch | ErrorKind::IncompleteSignature)
            ),
            "{file}: {e:?}"
        );
    }
    // Declared in a header, the same: refused before any signature is computed.
    let mut parts = url_parts("ec2-presigned-unsigned.url", http::Method::POST);
    parts
        .headers
        .insert("x-amz-content-sha256", "UNSIGNED-PAYLOAD".parse().unwrap());
    assert_eq!(
        check(&parts, b"Action=X", SIGNED_AT),
        Err(ErrorKind::IncompleteSignature)
    );
    // ... and accepted without a body.
    assert_eq!(check(&parts, b"", SIGNED_AT), Ok(()));
}
