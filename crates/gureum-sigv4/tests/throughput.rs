//! A rough single-core measure of parse + verify on botocore's EC2 request.
//! Ignored by default; run with
//! `cargo test -p gureum-sigv4 --release --test throughput -- --ignored --nocapture`.

mod common;

use std::time::Instant;

use common::{data_dir, RawRequest, SECRET};
use gureum_sigv4::{parse, verify};
use time::macros::datetime;

#[test]
#[ignore = "timing, not a correctness check"]
fn verify_throughput() {
    let raw = RawRequest::read(&data_dir().join("botocore/ec2-describe-key-pairs.http"));
    let (parts, body) = raw.to_parts().unwrap();
    let now = datetime!(2024-05-17 09:31:00 UTC);
    let n = 50_000u32;
    let start = Instant::now();
    for _ in 0..n {
        let auth = parse(&parts).unwrap();
        verify(&parts, &body, &auth, SECRET, "us-east-1", "ec2", now).unwrap();
    }
    let elapsed = start.elapsed();
    println!(
        "{n} parse+verify in {elapsed:?}: {:.0} requests/s on one core, {:.2} µs each",
        f64::from(n) / elapsed.as_secs_f64(),
        elapsed.as_secs_f64() * 1e6 / f64::from(n)
    );
}
