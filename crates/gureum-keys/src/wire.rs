//! SSH wire encoding (RFC 4251 §5 `string` and `mpint`) and base64 line wrapping,
//! shared by the PPK writer and the public-key blobs.

use base64::Engine as _;

/// Appends an RFC 4251 `string`: u32 big-endian length, then the bytes.
pub(crate) fn put_string(out: &mut Vec<u8>, data: &[u8]) {
    // Key material is at most a few kilobytes; a u32 overflow is impossible here.
    let len = u32::try_from(data.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(data);
}

/// Appends an RFC 4251 `mpint` for a non-negative integer given as big-endian
/// magnitude bytes: leading zeros stripped, one zero byte prepended when the top bit
/// is set (so it does not read as negative), and zero encoded as the empty string.
pub(crate) fn put_mpint(out: &mut Vec<u8>, magnitude_be: &[u8]) {
    let first = magnitude_be
        .iter()
        .position(|&b| b != 0)
        .unwrap_or(magnitude_be.len());
    let digits = &magnitude_be[first..];
    if digits.first().is_some_and(|&b| b & 0x80 != 0) {
        let mut padded = Vec::with_capacity(digits.len() + 1);
        padded.push(0);
        padded.extend_from_slice(digits);
        put_string(out, &padded);
    } else {
        put_string(out, digits);
    }
}

/// Standard (padded) base64 of `data`.
pub(crate) fn b64(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// Standard base64 of `data`, cut into lines of at most `width` characters.
pub(crate) fn b64_lines(data: &[u8], width: usize) -> Vec<String> {
    let encoded = b64(data);
    encoded
        .as_bytes()
        .chunks(width)
        // Base64 output is ASCII, so every chunk boundary is a char boundary.
        .map(|chunk| String::from_utf8_lossy(chunk).into_owned())
        .collect()
}

/// SSH public-key blob for RSA: `string "ssh-rsa"`, `mpint e`, `mpint n`.
pub(crate) fn rsa_public_blob(e_be: &[u8], n_be: &[u8]) -> Vec<u8> {
    let mut blob = Vec::with_capacity(n_be.len() + 32);
    put_string(&mut blob, b"ssh-rsa");
    put_mpint(&mut blob, e_be);
    put_mpint(&mut blob, n_be);
    blob
}

/// SSH public-key blob for Ed25519: `string "ssh-ed25519"`, `string point`.
pub(crate) fn ed25519_public_blob(point: &[u8; 32]) -> Vec<u8> {
    let mut blob = Vec::with_capacity(51);
    put_string(&mut blob, b"ssh-ed25519");
    put_string(&mut blob, point);
    blob
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mpint_follows_rfc4251_examples() {
        // RFC 4251 §5 examples.
        let mut out = Vec::new();
        put_mpint(&mut out, &[]);
        assert_eq!(out, [0, 0, 0, 0]);
        let mut out = Vec::new();
        put_mpint(&mut out, &[0x00, 0x80]);
        assert_eq!(out, [0, 0, 0, 2, 0x00, 0x80]);
        let mut out = Vec::new();
        put_mpint(&mut out, &[0x09, 0xa3, 0x78, 0xf9, 0xb2, 0xe3, 0x32, 0xa7]);
        assert_eq!(
            out,
            [0, 0, 0, 8, 0x09, 0xa3, 0x78, 0xf9, 0xb2, 0xe3, 0x32, 0xa7]
        );
    }

    #[test]
    fn b64_lines_wrap_exactly() {
        let lines = b64_lines(&[0u8; 100], 64);
        assert_eq!(lines.len(), 3);
        assert!(lines[..2].iter().all(|l| l.len() == 64));
        assert_eq!(lines.concat(), b64(&[0u8; 100]));
    }
}
