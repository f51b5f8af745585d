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

/// botocore's `generate_presigned_url` signs the operation's own HTTP method,
/// which for EC2 (Query protocol) is POST, with an empty body.
fn presigned_parts(method: http::Method) -> http::request::Parts {
    let url = std::fs::read_to_string(data_dir().join("botocore/ec2-presigned.url")).unwrap();
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

    // The method is signed: the same URL fetched with GET does not verify.
    let get = presigned_parts(http::Method::GET);
    let e = verify(
        &get,
        b"",
        &parse(&get).unwrap(),
        SECRET,
        "us-east-1",
        "ec2",
        SIGNED_AT,
    );
    assert_eq!(e.unwrap_err().kind, ErrorKind::SignatureDoesNotMatch);
}
