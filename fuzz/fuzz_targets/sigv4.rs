//! SigV4 on whatever a client can put on the wire: the input is a raw HTTP/1.1 request, read
//! by httparse (hyper's parser) into `http::request::Parts` as the server sees them. `parse`
//! and `verify` must answer every such request without panicking, and a request gureum's own
//! signer signs must verify (signer and verifier agree on the canonical form).
#![no_main]

use gureum_sigv4::{parse, sign_parts, verify, SigningParams};
use libfuzzer_sys::fuzz_target;
use time::OffsetDateTime;

const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

/// The request `raw` holds, as hyper would hand it over, or `None` if hyper would refuse it.
fn request(raw: &[u8]) -> Option<(http::request::Parts, Vec<u8>)> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut req = httparse::Request::new(&mut headers);
    let httparse::Status::Complete(len) = req.parse(raw).ok()? else {
        return None;
    };
    let mut builder = http::Request::builder().method(req.method?).uri(req.path?);
    for h in req.headers.iter() {
        builder = builder.header(h.name, h.value);
    }
    let (parts, ()) = builder.body(()).ok()?.into_parts();
    Some((parts, raw[len..].to_vec()))
}

fuzz_target!(|data: &[u8]| {
    let Some((mut parts, body)) = request(data) else {
        return;
    };
    if let Ok(auth) = parse(&parts) {
        // At the time it claims, so the time check passes and the signature is compared.
        for service in ["ec2", "sts", &auth.credential.service] {
            let _ = verify(
                &parts,
                &body,
                &auth,
                SECRET,
                &auth.credential.region,
                service,
                auth.amz_date,
            );
        }
    }

    // Re-sign it with the key and check the verifier accepts the result.
    let time = OffsetDateTime::from_unix_timestamp(1_764_000_000).unwrap();
    let params = SigningParams {
        content_sha256_header: true,
        ..SigningParams::new("AKIDEXAMPLE", SECRET, "us-east-1", "ec2", time)
    };
    if sign_parts(&mut parts, &body, &params).is_err() {
        return;
    }
    let auth = parse(&parts).expect("a request gureum signed parses");
    if let Err(e) = verify(&parts, &body, &auth, SECRET, "us-east-1", "ec2", time) {
        panic!("a request gureum signed does not verify: {e:?}\n{parts:?}");
    }
});
