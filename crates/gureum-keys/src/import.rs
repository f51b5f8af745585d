//! `ImportKeyPair`: parse `PublicKeyMaterial` in every format EC2 accepts, validate
//! it, and derive the stored public key line and the fingerprint.
//!
//! Source: EC2 User Guide "Create a key pair using a third-party tool and import the
//! public key" — supported types RSA and ED25519 ("Amazon EC2 does not accept DSA
//! keys"); supported formats: OpenSSH public key format (the `authorized_keys`
//! format), "(RSA only) Base64 encoded DER format", "(RSA only) SSH public key file
//! format as specified in RFC 4716"; supported lengths "1024, 2048, and 4096".
//!
//! What we accept, and where we knowingly differ:
//!
//! * OpenSSH line `<algorithm> <base64> [comment]` for `ssh-rsa`, `ssh-ed25519` and
//!   (deviation: AWS rejects these with `InvalidKey.Format`)
//!   `ecdsa-sha2-nistp256/384/521`. One key per input; `authorized_keys` options
//!   before the algorithm are not accepted. The comment is dropped.
//! * RFC 4716 `---- BEGIN SSH2 PUBLIC KEY ----` with headers and `\` continuations.
//!   Deviation: AWS documents it as RSA-only; since it carries the same SSH blob as
//!   the OpenSSH line we accept the same key types there.
//! * DER `SubjectPublicKeyInfo` (RSA only, as AWS): base64 text with any line
//!   breaks, the same inside `-----BEGIN PUBLIC KEY-----` PEM armour, or raw DER
//!   bytes (what AWS receives when a user uploads a binary `.der` with `fileb://`).
//!   Extension: PKCS#1 `-----BEGIN RSA PUBLIC KEY-----` (what `ssh-keygen -e -m
//!   PEM` writes) is accepted too.
//! * RSA modulus length: at least 1024 bits, as AWS's smallest documented size.
//!   AWS's list says 1024/2048/4096, but 3072-bit keys (the `ssh-keygen` default
//!   since OpenSSH 8.0) import fine on AWS (aws-cli#5336 shows one), so we accept
//!   any length from 1024 up to OpenSSH's own maximum of 16384 bits.
//! * Rejected with `InvalidKey.Format` / "Key is not in valid OpenSSH public key
//!   format": empty input, garbage, broken base64, trailing bytes in a blob, DSA,
//!   security-key (`sk-*`) and certificate types, points not on their curve, RSA
//!   below 1024 bits, and private keys of any format given instead of a public one.
//!   (An absent `PublicKeyMaterial` parameter is the API layer's `MissingParameter`.)
//!
//! `DescribeKeyPairs IncludePublicKey` on AWS reports an imported key as
//! `<algorithm> <base64> <key-name>`: AWS replaces the uploaded comment with the key
//! pair's name (terraform-provider-aws PR #40075, "The API overrides the comment you
//! give to the name of the key pair name"). [`import`] does not know the name, so
//! [`ImportedKey::public_key_openssh`] has no comment and
//! [`ImportedKey::described_public_key`] appends the name.

use base64::Engine as _;
use rsa::pkcs8::der::Decode as _;
use rsa::pkcs8::spki::SubjectPublicKeyInfoRef;
use rsa::pkcs8::EncodePublicKey as _;
use rsa::traits::PublicKeyParts as _;
use rsa::{BigUint, RsaPublicKey};
use ssh_key::public::KeyData;

use crate::wire::{b64, rsa_public_blob};
use crate::{fingerprint, ImportedKeyType, KeyError};

/// Smallest RSA modulus accepted, in bits.
pub const MIN_RSA_BITS: usize = 1024;
/// Largest RSA modulus accepted, in bits (OpenSSH's `OPENSSL_RSA_MAX_MODULUS_BITS`).
pub const MAX_RSA_BITS: usize = 16384;

/// `rsaEncryption`, the only SubjectPublicKeyInfo algorithm accepted.
const RSA_ENCRYPTION_OID: &str = "1.2.840.113549.1.1.1";

/// Result of `ImportKeyPair`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedKey {
    /// `"<algorithm> <base64 blob>"`, the canonical OpenSSH encoding of the key,
    /// without a comment (see [`ImportedKey::described_public_key`]).
    pub public_key_openssh: String,
    /// `keyFingerprint` (see [`crate::fingerprint`]).
    pub fingerprint: String,
    /// `keyType`.
    pub key_type: ImportedKeyType,
}

impl ImportedKey {
    /// The `publicKey` `DescribeKeyPairs IncludePublicKey=true` reports for a key
    /// imported under `key_name`: the canonical line with the name as comment.
    pub fn described_public_key(&self, key_name: &str) -> String {
        format!("{} {key_name}", self.public_key_openssh)
    }
}

/// Parses and validates `PublicKeyMaterial`.
///
/// `material` is the parameter after the API's base64 transport decoding, i.e. the
/// bytes of the user's key file.
pub fn import(material: &[u8]) -> Result<ImportedKey, KeyError> {
    // Raw DER starts with a SEQUENCE tag (0x30, i.e. '0', which no text format
    // starts with). Checked before any trimming, which could eat DER bytes.
    let Ok(text) = std::str::from_utf8(material) else {
        return import_spki_der(material);
    };
    if material.first() == Some(&0x30) {
        return import_spki_der(material);
    }
    let text = text.trim_start_matches('\u{feff}').trim();
    if text.is_empty() {
        return Err(KeyError::invalid_key_format());
    }
    if text.starts_with("-----BEGIN PUBLIC KEY-----") {
        let der = pem_body(text, "PUBLIC KEY")?;
        return import_spki_der(&der);
    }
    if text.starts_with("-----BEGIN RSA PUBLIC KEY-----") {
        let der = pem_body(text, "RSA PUBLIC KEY")?;
        let key =
            rsa::pkcs1::RsaPublicKey::from_der(&der).map_err(|_| KeyError::invalid_key_format())?;
        return import_rsa_components(key.public_exponent.as_bytes(), key.modulus.as_bytes());
    }
    if text.starts_with("---- BEGIN SSH2 PUBLIC KEY ----") {
        let blob = rfc4716_body(text)?;
        return import_ssh_blob(&blob);
    }
    if text.starts_with("-----") || text.starts_with("---- ") || text.starts_with("PuTTY-") {
        // Private keys (PKCS#1/PKCS#8/OpenSSH/SSH2 private/PPK), certificates, ...
        return Err(KeyError::invalid_key_format());
    }
    let mut tokens = text.split_ascii_whitespace();
    match (tokens.next(), tokens.next()) {
        (Some(algorithm), Some(data)) if looks_like_ssh_algorithm(algorithm) => {
            if text.lines().filter(|l| !l.trim().is_empty()).count() != 1 {
                // Several keys (or a broken line): AWS imports exactly one key.
                return Err(KeyError::invalid_key_format());
            }
            import_openssh_line(algorithm, data)
        }
        _ => {
            // Base64 encoded DER, possibly wrapped over several lines.
            let der = decode_b64_ignoring_whitespace(text)?;
            import_spki_der(&der)
        }
    }
}

/// Whether `token` can be the algorithm field of an OpenSSH public key line. The
/// exact set is checked later against the blob; this only separates the OpenSSH
/// form from bare base64 (which never contains `-`).
fn looks_like_ssh_algorithm(token: &str) -> bool {
    token.contains('-')
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'@' || b == b'.')
}

fn import_openssh_line(algorithm: &str, data: &str) -> Result<ImportedKey, KeyError> {
    let blob = base64::engine::general_purpose::STANDARD
        .decode(data)
        .map_err(|_| KeyError::invalid_key_format())?;
    let imported = import_ssh_blob(&blob)?;
    // The text algorithm must name the key inside the blob (as OpenSSH insists).
    if !imported
        .public_key_openssh
        .starts_with(&format!("{algorithm} "))
    {
        return Err(KeyError::invalid_key_format());
    }
    Ok(imported)
}

/// Parses an SSH wire-format public key blob (RFC 4253 §6.6).
fn import_ssh_blob(blob: &[u8]) -> Result<ImportedKey, KeyError> {
    // `from_bytes` rejects trailing data after the key.
    let public =
        ssh_key::PublicKey::from_bytes(blob).map_err(|_| KeyError::invalid_key_format())?;
    match public.key_data() {
        KeyData::Rsa(rsa) => {
            // A negative mpint (top bit set without a zero pad) is not a valid key.
            let e = rsa
                .e
                .as_positive_bytes()
                .ok_or_else(KeyError::invalid_key_format)?;
            let n = rsa
                .n
                .as_positive_bytes()
                .ok_or_else(KeyError::invalid_key_format)?;
            import_rsa_components(e, n)
        }
        KeyData::Ed25519(point) => {
            // Refuse 32-byte strings that do not decode to a curve point.
            ed25519_dalek::VerifyingKey::from_bytes(&point.0)
                .map_err(|_| KeyError::invalid_key_format())?;
            Ok(ssh_keyed(
                ImportedKeyType::Ed25519,
                "ssh-ed25519",
                &crate::wire::ed25519_public_blob(&point.0),
            ))
        }
        KeyData::Ecdsa(ecdsa) => {
            let sec1 = ecdsa.as_sec1_bytes();
            let on_curve = match ecdsa {
                ssh_key::public::EcdsaPublicKey::NistP256(_) => {
                    p256::PublicKey::from_sec1_bytes(sec1).is_ok()
                }
                ssh_key::public::EcdsaPublicKey::NistP384(_) => {
                    p384::PublicKey::from_sec1_bytes(sec1).is_ok()
                }
                ssh_key::public::EcdsaPublicKey::NistP521(_) => {
                    p521::PublicKey::from_sec1_bytes(sec1).is_ok()
                }
            };
            if !on_curve {
                return Err(KeyError::invalid_key_format());
            }
            // Canonical re-encoding: string algorithm, string curve, string point.
            let canonical = public
                .to_bytes()
                .map_err(|_| KeyError::invalid_key_format())?;
            Ok(ssh_keyed(
                ImportedKeyType::Ecdsa,
                public.algorithm().as_str(),
                &canonical,
            ))
        }
        // DSA ("Amazon EC2 does not accept DSA keys"), FIDO sk-* keys, unknown types.
        _ => Err(KeyError::invalid_key_format()),
    }
}

/// Builds the result for key types fingerprinted with base64 SHA-256 of the blob.
fn ssh_keyed(key_type: ImportedKeyType, algorithm: &str, blob: &[u8]) -> ImportedKey {
    ImportedKey {
        public_key_openssh: format!("{algorithm} {}", b64(blob)),
        fingerprint: fingerprint::sha256_base64(blob),
        key_type,
    }
}

/// Validates an RSA public key given as big-endian `e` and `n` (leading zeros
/// allowed) and derives the canonical blob and the MD5-of-SPKI fingerprint.
fn import_rsa_components(e_be: &[u8], n_be: &[u8]) -> Result<ImportedKey, KeyError> {
    let n = BigUint::from_bytes_be(n_be);
    let e = BigUint::from_bytes_be(e_be);
    let bits = n.bits();
    if !(MIN_RSA_BITS..=MAX_RSA_BITS).contains(&bits) {
        return Err(KeyError::invalid_key_format());
    }
    // Checks 2 ≤ e < 2^33 and n's size; AWS would not accept nonsense exponents.
    let key = RsaPublicKey::new_with_max_size(n, e, MAX_RSA_BITS)
        .map_err(|_| KeyError::invalid_key_format())?;
    let spki = key
        .to_public_key_der()
        .map_err(|_| KeyError::invalid_key_format())?;
    let blob = rsa_public_blob(&key.e().to_bytes_be(), &key.n().to_bytes_be());
    Ok(ImportedKey {
        public_key_openssh: format!("ssh-rsa {}", b64(&blob)),
        fingerprint: fingerprint::imported_rsa(spki.as_bytes()),
        key_type: ImportedKeyType::Rsa,
    })
}

/// Parses a DER SubjectPublicKeyInfo; only `rsaEncryption` keys are accepted.
fn import_spki_der(der: &[u8]) -> Result<ImportedKey, KeyError> {
    let spki =
        SubjectPublicKeyInfoRef::from_der(der).map_err(|_| KeyError::invalid_key_format())?;
    if spki.algorithm.oid.to_string() != RSA_ENCRYPTION_OID {
        return Err(KeyError::invalid_key_format());
    }
    let key_bytes = spki
        .subject_public_key
        .as_bytes()
        .ok_or_else(KeyError::invalid_key_format)?;
    let key = rsa::pkcs1::RsaPublicKey::from_der(key_bytes)
        .map_err(|_| KeyError::invalid_key_format())?;
    import_rsa_components(key.public_exponent.as_bytes(), key.modulus.as_bytes())
}

/// Body of a single PEM block with the given label.
fn pem_body(text: &str, label: &str) -> Result<Vec<u8>, KeyError> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let rest = text
        .strip_prefix(begin.as_str())
        .ok_or_else(KeyError::invalid_key_format)?;
    let (body, tail) = rest
        .split_once(end.as_str())
        .ok_or_else(KeyError::invalid_key_format)?;
    if !tail.trim().is_empty() {
        return Err(KeyError::invalid_key_format());
    }
    decode_b64_ignoring_whitespace(body)
}

/// Key blob of an RFC 4716 public key file (headers, with `\` continuation lines,
/// are skipped; the header-tag/value pairs carry nothing the key needs).
fn rfc4716_body(text: &str) -> Result<Vec<u8>, KeyError> {
    let mut lines = text.lines().map(str::trim);
    if lines.next() != Some("---- BEGIN SSH2 PUBLIC KEY ----") {
        return Err(KeyError::invalid_key_format());
    }
    let mut body = String::new();
    let mut in_headers = true;
    let mut continuation = false;
    let mut ended = false;
    for line in lines.by_ref() {
        if line == "---- END SSH2 PUBLIC KEY ----" {
            ended = true;
            break;
        }
        if continuation {
            continuation = line.ends_with('\\');
            continue;
        }
        if in_headers && line.contains(':') {
            continuation = line.ends_with('\\');
            continue;
        }
        in_headers = false;
        body.push_str(line);
    }
    if !ended || lines.any(|l| !l.is_empty()) {
        return Err(KeyError::invalid_key_format());
    }
    decode_b64_ignoring_whitespace(&body)
}

fn decode_b64_ignoring_whitespace(text: &str) -> Result<Vec<u8>, KeyError> {
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    if compact.is_empty() {
        return Err(KeyError::invalid_key_format());
    }
    base64::engine::general_purpose::STANDARD
        .decode(compact)
        .map_err(|_| KeyError::invalid_key_format())
}
