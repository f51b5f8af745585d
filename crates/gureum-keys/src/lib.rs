//! Pure cryptography behind EC2 key pairs: `CreateKeyPair`, `ImportKeyPair` and the
//! fingerprints `DescribeKeyPairs` reports.
//!
//! This crate owns key generation, private-key serialisation (PEM and PuTTY PPK),
//! public-key parsing for every format `ImportKeyPair` accepts, and the three
//! fingerprint algorithms AWS uses. It does no I/O and keeps no state: storing the
//! public key, the fingerprint and the key type is the caller's job.
//!
//! # Behaviour settled against AWS (sources in each module's docs)
//!
//! * `CreateKeyPair` RSA is 2048-bit, e = 65537. `KeyFormat=pem` returns PKCS#1
//!   (`-----BEGIN RSA PRIVATE KEY-----`); ED25519 `pem` returns the OpenSSH
//!   container (`-----BEGIN OPENSSH PRIVATE KEY-----`); `ppk` returns an
//!   unencrypted PuTTY key file (see [`ppk`]).
//! * Fingerprints: created RSA = SHA-1 of the DER PKCS#8 private key; imported RSA
//!   = MD5 of the DER SubjectPublicKeyInfo; ED25519 (created or imported) = padded
//!   base64 SHA-256 of the SSH wire blob, without OpenSSH's `SHA256:` prefix. All
//!   hex fingerprints are lower-case pairs joined by `:` (see [`fingerprint`]).
//! * `DescribeKeyPairs IncludePublicKey` reports `"<type> <base64> <key-name>"`:
//!   AWS replaces whatever comment an imported key carried with the key-pair name.

pub mod create;
pub mod error;
pub mod fingerprint;
pub mod import;
pub mod ppk;
mod wire;

pub use create::{create, CreatedKey};
pub use error::KeyError;
pub use import::{import, ImportedKey};

/// The `KeyType` of `CreateKeyPair`, which is also what `DescribeKeyPairs` reports
/// for a created key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyType {
    /// `rsa`: AWS creates 2048-bit keys only.
    Rsa,
    /// `ed25519`.
    Ed25519,
}

impl KeyType {
    /// The wire value, as sent in `KeyType=` and returned in `keyType`.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyType::Rsa => "rsa",
            KeyType::Ed25519 => "ed25519",
        }
    }

    /// Parses the wire value. AWS's enum values are case-sensitive lower case, so
    /// `"RSA"` is rejected (returns `None`); the caller produces the API error.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "rsa" => Some(KeyType::Rsa),
            "ed25519" => Some(KeyType::Ed25519),
            _ => None,
        }
    }
}

/// The `KeyFormat` of `CreateKeyPair`: the container of the returned private key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyFormat {
    /// `pem`: PKCS#1 PEM for RSA, OpenSSH container for ED25519.
    Pem,
    /// `ppk`: PuTTY private key file.
    Ppk,
}

impl KeyFormat {
    /// The wire value, as sent in `KeyFormat=`.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyFormat::Pem => "pem",
            KeyFormat::Ppk => "ppk",
        }
    }

    /// Parses the wire value (case-sensitive, like AWS's enum).
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "pem" => Some(KeyFormat::Pem),
            "ppk" => Some(KeyFormat::Ppk),
            _ => None,
        }
    }
}

/// The key type of an imported public key.
///
/// Deliberate deviation: AWS rejects ECDSA keys in `ImportKeyPair` with
/// `InvalidKey.Format` (its `KeyType` enum is only `rsa | ed25519`); gureum accepts
/// NIST P-256/384/521 ECDSA keys and reports them as `ecdsa`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ImportedKeyType {
    /// `ssh-rsa`, reported as `rsa`.
    Rsa,
    /// `ssh-ed25519`, reported as `ed25519`.
    Ed25519,
    /// `ecdsa-sha2-nistp256/384/521`, reported as `ecdsa` (gureum extension).
    Ecdsa,
}

impl ImportedKeyType {
    /// The `keyType` string `DescribeKeyPairs` reports for this key.
    pub fn as_str(self) -> &'static str {
        match self {
            ImportedKeyType::Rsa => "rsa",
            ImportedKeyType::Ed25519 => "ed25519",
            ImportedKeyType::Ecdsa => "ecdsa",
        }
    }
}

impl From<KeyType> for ImportedKeyType {
    fn from(value: KeyType) -> Self {
        match value {
            KeyType::Rsa => ImportedKeyType::Rsa,
            KeyType::Ed25519 => ImportedKeyType::Ed25519,
        }
    }
}
