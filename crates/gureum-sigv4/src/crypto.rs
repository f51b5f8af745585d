//! The cryptographic half of SigV4: deriving the signing key from the secret,
//! the string to sign, and the HMAC-SHA256 signature over it.
//!
//! ```text
//! kDate    = HMAC("AWS4" + secret, YYYYMMDD)
//! kRegion  = HMAC(kDate, region)
//! kService = HMAC(kRegion, service)
//! kSigning = HMAC(kService, "aws4_request")
//! string to sign = "AWS4-HMAC-SHA256\n" + amz-date + "\n" + scope + "\n" + hex(SHA256(canonical request))
//! signature = hex(HMAC(kSigning, string to sign))
//! ```

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::{ALGORITHM, TERMINATOR};

type HmacSha256 = Hmac<Sha256>;

pub(crate) fn hmac_parts(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <HmacSha256 as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

/// The signing key for one day, region and service.
///
/// It depends on neither the request nor the time of day, so a caller
/// verifying many requests may cache it per (access key, date, region, service).
pub fn signing_key(secret_access_key: &str, date: &str, region: &str, service: &str) -> [u8; 32] {
    let k_date = hmac_parts(
        &[b"AWS4".as_slice(), secret_access_key.as_bytes()].concat(),
        &[date.as_bytes()],
    );
    let k_region = hmac_parts(&k_date, &[region.as_bytes()]);
    let k_service = hmac_parts(&k_region, &[service.as_bytes()]);
    hmac_parts(&k_service, &[TERMINATOR.as_bytes()])
}

/// `date/region/service/aws4_request`.
pub fn credential_scope(date: &str, region: &str, service: &str) -> String {
    format!("{date}/{region}/{service}/{TERMINATOR}")
}

pub(crate) fn hex32(bytes: &[u8; 32]) -> [u8; 64] {
    let mut out = [0u8; 64];
    // A 64-byte buffer is exactly large enough for 32 bytes of hex.
    if hex::encode_to_slice(bytes, &mut out).is_err() {
        unreachable!()
    }
    out
}

/// The string to sign for a canonical request made at `amz_date`
/// (`YYYYMMDDTHHMMSSZ`) under `scope` (see [`credential_scope`]).
pub fn string_to_sign(amz_date: &str, scope: &str, canonical_request: &str) -> String {
    let hash: [u8; 32] = Sha256::digest(canonical_request.as_bytes()).into();
    let hash_hex = hex32(&hash);
    let mut s = String::with_capacity(ALGORITHM.len() + amz_date.len() + scope.len() + 67);
    s.push_str(ALGORITHM);
    s.push('\n');
    s.push_str(amz_date);
    s.push('\n');
    s.push_str(scope);
    s.push('\n');
    // Hex digits are ASCII.
    s.push_str(std::str::from_utf8(&hash_hex).unwrap_or_default());
    s
}

/// Raw signature bytes for a canonical request already hashed to `creq_hash`.
///
/// Feeds the string to sign into the HMAC piece by piece instead of building it.
pub(crate) fn signature_bytes(
    key: &[u8; 32],
    amz_date: &str,
    date: &str,
    region: &str,
    service: &str,
    creq_hash: &[u8; 32],
) -> [u8; 32] {
    let hash_hex = hex32(creq_hash);
    hmac_parts(
        key,
        &[
            ALGORITHM.as_bytes(),
            b"\n",
            amz_date.as_bytes(),
            b"\n",
            date.as_bytes(),
            b"/",
            region.as_bytes(),
            b"/",
            service.as_bytes(),
            b"/",
            TERMINATOR.as_bytes(),
            b"\n",
            &hash_hex,
        ],
    )
}

/// The hex signature of `string_to_sign` under `signing_key`.
pub fn signature(signing_key: &[u8; 32], string_to_sign: &str) -> String {
    hex::encode(hmac_parts(signing_key, &[string_to_sign.as_bytes()]))
}

#[cfg(test)]
mod tests {
    use super::*;

    // The example from AWS's SigV4 documentation and test suite.
    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

    #[test]
    fn signing_key_matches_aws_example() {
        // "Deriving the signing key" example in AWS's SigV4 documentation.
        let key = signing_key(SECRET, "20150830", "us-east-1", "iam");
        assert_eq!(
            hex::encode(key),
            "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9"
        );
    }

    #[test]
    fn get_vanilla_by_hand() {
        let creq = "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\n\
                    host;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let scope = credential_scope("20150830", "us-east-1", "service");
        let sts = string_to_sign("20150830T123600Z", &scope, creq);
        assert_eq!(
            sts,
            "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n\
             bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63"
        );
        let key = signing_key(SECRET, "20150830", "us-east-1", "service");
        assert_eq!(
            signature(&key, &sts),
            "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
        );
        let hash: [u8; 32] = Sha256::digest(creq.as_bytes()).into();
        let raw = signature_bytes(
            &key,
            "20150830T123600Z",
            "20150830",
            "us-east-1",
            "service",
            &hash,
        );
        assert_eq!(hex::encode(raw), signature(&key, &sts));
    }
}
