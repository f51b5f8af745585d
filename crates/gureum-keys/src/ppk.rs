//! PuTTY private key files (`.ppk`) for `CreateKeyPair KeyFormat=ppk`.
//!
//! AWS documents only "an unencrypted PPK formatted private key for use with PuTTY";
//! it does not say which PPK version. We emit **version 2**, unencrypted: every PuTTY
//! since 0.52 (and WinSCP, FileZilla, ...) reads it, while version 3 needs PuTTY
//! 0.75+, and for an unencrypted file v3 adds nothing (no key derivation runs). The
//! `Comment:` is the key-pair name, matching the comment AWS puts on the public key.
//!
//! Layout (PuTTY manual, Appendix C), LF line endings as PuTTY itself writes:
//!
//! ```text
//! PuTTY-User-Key-File-2: <algorithm>
//! Encryption: none
//! Comment: <key name>
//! Public-Lines: <n>
//! <base64 public blob, 64 characters per line>
//! Private-Lines: <m>
//! <base64 private blob, 64 characters per line>
//! Private-MAC: <40 lower-case hex digits>
//! ```
//!
//! The v2 MAC is HMAC-SHA-1 keyed with `SHA-1("putty-private-key-file-mac-key" ||
//! passphrase)` (empty passphrase here) over the SSH `string`s of the algorithm
//! name, the encryption name, the comment, the public blob and the private blob.
//! Private blobs: `ssh-rsa` = `mpint d, mpint p, mpint q, mpint iqmp` with
//! iqmp = q⁻¹ mod p; `ssh-ed25519` = `string` holding the 32-byte secret seed.

use hmac::{Hmac, Mac};
use sha1::{Digest, Sha1};

use crate::wire::{b64_lines, put_string};

/// Characters per base64 line in a PPK file.
pub const LINE_WIDTH: usize = 64;

/// First-line prefix of the format we write.
pub const HEADER_V2: &str = "PuTTY-User-Key-File-2";

/// The v2 `Private-MAC` (lower-case hex) of an unencrypted key file.
pub fn mac_v2(algorithm: &str, comment: &str, public_blob: &[u8], private_blob: &[u8]) -> String {
    let mac_key = Sha1::digest(b"putty-private-key-file-mac-key");
    let mut data = Vec::with_capacity(public_blob.len() + private_blob.len() + 64);
    put_string(&mut data, algorithm.as_bytes());
    put_string(&mut data, b"none");
    put_string(&mut data, comment.as_bytes());
    put_string(&mut data, public_blob);
    put_string(&mut data, private_blob);
    // HMAC accepts keys of any length, so construction cannot fail.
    let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(&mac_key)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(&data);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Serialises an unencrypted version-2 PPK file (ends with a newline, as PuTTYgen's
/// files do).
pub fn encode_v2(
    algorithm: &str,
    comment: &str,
    public_blob: &[u8],
    private_blob: &[u8],
) -> String {
    let public_lines = b64_lines(public_blob, LINE_WIDTH);
    let private_lines = b64_lines(private_blob, LINE_WIDTH);
    let mut out = String::with_capacity(256 + 2 * (public_blob.len() + private_blob.len()));
    out.push_str(&format!("{HEADER_V2}: {algorithm}\n"));
    out.push_str("Encryption: none\n");
    out.push_str(&format!("Comment: {comment}\n"));
    out.push_str(&format!("Public-Lines: {}\n", public_lines.len()));
    for line in &public_lines {
        out.push_str(line);
        out.push('\n');
    }
    out.push_str(&format!("Private-Lines: {}\n", private_lines.len()));
    for line in &private_lines {
        out.push_str(line);
        out.push('\n');
    }
    out.push_str(&format!(
        "Private-MAC: {}\n",
        mac_v2(algorithm, comment, public_blob, private_blob)
    ));
    out
}
