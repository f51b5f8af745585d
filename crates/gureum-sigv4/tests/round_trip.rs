//! Signing with this crate, then verifying with it: GET with a query, POST with
//! a form body as botocore sends EC2 calls, JSON as the Cost Explorer SDKs send
//! it, temporary credentials, and presigned URLs.

use gureum_sigv4::{parse, presign_url, sign_request, verify, SigningParams};
use http::{HeaderMap, HeaderValue, Method, Request, Uri};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

const AK: &str = "AKIAGUREUMROUNDTRIP";
const SK: &str = "round/trip+secret/0123456789abcdefghijklmn";
const T0: OffsetDateTime = datetime!(2025-02-03 04:05:06 UTC);

fn roundtrip(mut req: Request<Vec<u8>>, params: &SigningParams<'_>, now: OffsetDateTime) {
    sign_request(&mut req, params).unwrap();
    let (parts, body) = req.into_parts();
    let auth = parse(&parts).unwrap();
    assert!(!auth.presigned);
    assert_eq!(auth.credential.access_key_id, params.access_key_id);
    verify(&parts, &body, &auth, SK, params.region, params.service, now).unwrap();
}

#[test]
fn get_with_query() {
    let req = Request::get(
        "https://ec2.gureum.test/?Action=DescribeInstances&Version=2016-11-15\
         &Filter.1.Name=tag%3AName&Filter.1.Value.1=web%20server&Filter.1.Value.2=%E2%9C%93\
         &InstanceId.2=i-2&InstanceId.1=i-1&Empty=",
    )
    .body(Vec::new())
    .unwrap();
    let params = SigningParams::new(AK, SK, "us-east-1", "ec2", T0);
    roundtrip(req, &params, T0 + Duration::minutes(3));
}

#[test]
fn post_form_body_as_botocore_sends_it() {
    let req = Request::post("https://ec2.gureum.test:8773/")
        .header(
            "content-type",
            "application/x-www-form-urlencoded; charset=utf-8",
        )
        .header("user-agent", "gureum-loadgen/0.1")
        .body(
            b"Action=RunInstances&Version=2016-11-15&ImageId=ami-12345678&MinCount=1&MaxCount=1\
              &TagSpecification.1.Tag.1.Value=a%20b%2Bc"
                .to_vec(),
        )
        .unwrap();
    let params = SigningParams::new(AK, SK, "gureum-1", "ec2", T0);
    roundtrip(req, &params, T0 - Duration::minutes(10));
}

#[test]
fn json_body_for_cost_explorer() {
    let req = Request::post("https://ce.gureum.test/")
        .header("content-type", "application/x-amz-json-1.1")
        .header("x-amz-target", "AWSInsightsIndexService.GetCostAndUsage")
        .body(
            br#"{"TimePeriod":{"Start":"2025-01-01","End":"2025-02-01"},"Granularity":"MONTHLY"}"#
                .to_vec(),
        )
        .unwrap();
    let mut params = SigningParams::new(AK, SK, "us-east-1", "ce", T0);
    params.content_sha256_header = true;
    roundtrip(req, &params, T0);
}

#[test]
fn temporary_credentials() {
    let req = Request::post("https://ec2.gureum.test/")
        .header(
            "content-type",
            "application/x-www-form-urlencoded; charset=utf-8",
        )
        .body(b"Action=DescribeRegions&Version=2016-11-15".to_vec())
        .unwrap();
    let mut params = SigningParams::new(AK, SK, "us-east-1", "ec2", T0);
    params.session_token = Some("FwoGZXIvYXdzEXAMPLE//token+with/odd=chars");
    let mut signed = req;
    sign_request(&mut signed, &params).unwrap();
    assert!(signed.headers()["authorization"]
        .to_str()
        .unwrap()
        .contains("x-amz-security-token"));
    let (parts, body) = signed.into_parts();
    let auth = parse(&parts).unwrap();
    verify(&parts, &body, &auth, SK, "us-east-1", "ec2", T0).unwrap();
}

#[test]
fn http2_style_request_without_host_header() {
    // Over HTTP/2 the host arrives as :authority, which `http` keeps in the URI.
    let mut req =
        Request::get("https://ec2.gureum.test/?Action=DescribeRegions&Version=2016-11-15")
            .body(Vec::new())
            .unwrap();
    let params = SigningParams::new(AK, SK, "us-east-1", "ec2", T0);
    sign_request(&mut req, &params).unwrap();
    let (mut parts, body) = req.into_parts();
    parts.headers.remove("host");
    let auth = parse(&parts).unwrap();
    verify(&parts, &body, &auth, SK, "us-east-1", "ec2", T0).unwrap();
}

fn presigned_request(url: &Uri, host: Option<&str>) -> http::request::Parts {
    // What the server sees: origin-form target plus a Host header, or (HTTP/2)
    // the absolute URI and no Host header.
    let builder = match host {
        Some(h) => Request::get(url.path_and_query().unwrap().as_str()).header("host", h),
        None => Request::get(url.clone()),
    };
    builder.body(()).unwrap().into_parts().0
}

#[test]
fn presigned_url() {
    let url: Uri = "https://ec2.gureum.test/?Action=CopySnapshot&SourceRegion=us-west-2\
                    &SourceSnapshotId=snap-0123&DestinationRegion=us-east-1&Version=2016-11-15"
        .parse()
        .unwrap();
    let params = SigningParams::new(AK, SK, "us-west-2", "ec2", T0);
    let signed = presign_url(&Method::GET, &url, &HeaderMap::new(), &params, 3600).unwrap();

    for host in [Some("ec2.gureum.test"), None] {
        let parts = presigned_request(&signed, host);
        let auth = parse(&parts).unwrap();
        assert!(auth.presigned);
        assert_eq!(auth.expires, Some(3600));
        verify(
            &parts,
            b"",
            &auth,
            SK,
            "us-west-2",
            "ec2",
            T0 + Duration::minutes(59),
        )
        .unwrap();
    }
}

#[test]
fn presigned_url_with_extra_signed_header_and_token() {
    let url: Uri = "http://ec2.gureum.test:8773/".parse().unwrap();
    let mut headers = HeaderMap::new();
    headers.insert("x-gureum-tenant", HeaderValue::from_static("acme"));
    let mut params = SigningParams::new(AK, SK, "us-east-1", "ec2", T0);
    params.session_token = Some("tok/en+=");
    let signed = presign_url(&Method::GET, &url, &headers, &params, 60).unwrap();
    assert!(signed
        .query()
        .unwrap()
        .contains("X-Amz-SignedHeaders=host%3Bx-gureum-tenant"));
    assert!(signed
        .query()
        .unwrap()
        .contains("X-Amz-Security-Token=tok%2Fen%2B%3D"));

    let mut parts = presigned_request(&signed, Some("ec2.gureum.test:8773"));
    parts
        .headers
        .insert("x-gureum-tenant", HeaderValue::from_static("acme"));
    let auth = parse(&parts).unwrap();
    verify(&parts, b"", &auth, SK, "us-east-1", "ec2", T0).unwrap();

    parts
        .headers
        .insert("x-gureum-tenant", HeaderValue::from_static("evil"));
    assert!(verify(&parts, b"", &auth, SK, "us-east-1", "ec2", T0).is_err());
}
