//! `CreateKeyPair`: generate a key pair and serialise the private key the way EC2
//! returns it in `keyMaterial`.
//!
//! Sources: API reference `CreateKeyPair` ("Creates an ED25519 or 2048-bit RSA key
//! pair ... The private key is returned as an unencrypted PEM encoded PKCS#1 private
//! key or an unencrypted PPK formatted private key for use with PuTTY"), EC2 User
//! Guide "Describe your key pairs" (the stored public key is
//! `ssh-ed25519 AAAA... my-key-pair`, i.e. the key name is the comment).
//!
//! `keyMaterial` per type and format:
//!
//! * RSA + pem: PKCS#1 `-----BEGIN RSA PRIVATE KEY-----`, 64-character base64
//!   lines, LF, and no newline after the END line (as in the AWS CLI
//!   `create-key-pair` example output, `"...\n-----END RSA PRIVATE KEY-----"`).
//! * ED25519 + pem: the OpenSSH container `-----BEGIN OPENSSH PRIVATE KEY-----`
//!   (there is no PKCS#1 for Ed25519, and the user guide verifies these keys with
//!   `ssh-keygen -l -f`). Unlike the RSA case it keeps OpenSSH's final newline:
//!   OpenSSH 9.x refuses to load this container without it ("invalid format"),
//!   which would make the material unusable when written to a file verbatim.
//!   The key's comment is the key-pair name.
//! * either + ppk: unencrypted PuTTY v2 file, comment = key-pair name ([`crate::ppk`]).

use ed25519_dalek::SigningKey;
use rand_core::OsRng;
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::pkcs8::EncodePrivateKey;
use rsa::traits::{PrivateKeyParts, PublicKeyParts};
use rsa::RsaPrivateKey;
use ssh_key::private::{Ed25519Keypair, KeypairData};
use ssh_key::LineEnding;

use crate::wire::{b64, ed25519_public_blob, put_mpint, put_string, rsa_public_blob};
use crate::{fingerprint, ppk, KeyError, KeyFormat, KeyType};

/// Modulus size of EC2-created RSA keys.
pub const RSA_BITS: usize = 2048;

/// Longest key-pair name EC2 accepts ("Up to 255 ASCII characters").
pub const MAX_KEY_NAME_LEN: usize = 255;

/// Result of `CreateKeyPair`.
#[derive(Clone, PartialEq, Eq)]
pub struct CreatedKey {
    /// The private key, exactly as `keyMaterial` carries it for the type and format.
    pub key_material: String,
    /// `"<algorithm> <base64 blob> <key name>"`, as `DescribeKeyPairs
    /// IncludePublicKey=true` reports it (and as it lands in `authorized_keys`).
    pub public_key_openssh: String,
    /// `keyFingerprint` (see [`crate::fingerprint`]).
    pub fingerprint: String,
    /// `keyType`.
    pub key_type: KeyType,
}

impl std::fmt::Debug for CreatedKey {
    // The private key must not end up in logs through `{:?}`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedKey")
            .field("key_material", &"<redacted>")
            .field("public_key_openssh", &self.public_key_openssh)
            .field("fingerprint", &self.fingerprint)
            .field("key_type", &self.key_type)
            .finish()
    }
}

/// Generates a key pair of `key_type` and returns its private key in `format`.
///
/// `key_name` becomes the comment of the public key and of the private key file. It
/// must be 1–255 printable ASCII characters (EC2: "Up to 255 ASCII characters"); we
/// additionally refuse control characters because a line break in the name would
/// corrupt the PPK and `authorized_keys` lines (`InvalidParameterValue`).
pub fn create(
    key_type: KeyType,
    format: KeyFormat,
    key_name: &str,
) -> Result<CreatedKey, KeyError> {
    validate_key_name(key_name)?;
    match key_type {
        KeyType::Rsa => create_rsa(format, key_name),
        KeyType::Ed25519 => create_ed25519(format, key_name),
    }
}

fn validate_key_name(key_name: &str) -> Result<(), KeyError> {
    let printable = key_name.bytes().all(|b| (0x20..=0x7e).contains(&b));
    if key_name.is_empty() || key_name.len() > MAX_KEY_NAME_LEN || !printable {
        return Err(KeyError::invalid_parameter(format!(
            "Value ({key_name}) for parameter keyName is invalid. \
             Key pair names must be 1 to {MAX_KEY_NAME_LEN} printable ASCII characters."
        )));
    }
    Ok(())
}

fn create_rsa(format: KeyFormat, key_name: &str) -> Result<CreatedKey, KeyError> {
    // `RsaPrivateKey::new` uses e = 65537 and precomputes the CRT values.
    let key = RsaPrivateKey::new(&mut OsRng, RSA_BITS)
        .map_err(|e| KeyError::internal(format!("RSA key generation failed: {e}")))?;

    let pkcs8 = key
        .to_pkcs8_der()
        .map_err(|e| KeyError::internal(format!("PKCS#8 encoding failed: {e}")))?;
    let fingerprint = fingerprint::created_rsa(pkcs8.as_bytes());

    let public_blob = rsa_public_blob(&key.e().to_bytes_be(), &key.n().to_bytes_be());
    let public_key_openssh = format!("ssh-rsa {} {key_name}", b64(&public_blob));

    let key_material = match format {
        KeyFormat::Pem => {
            let pem = key
                .to_pkcs1_pem(rsa::pkcs1::LineEnding::LF)
                .map_err(|e| KeyError::internal(format!("PKCS#1 encoding failed: {e}")))?;
            pem.trim_end_matches('\n').to_string()
        }
        KeyFormat::Ppk => {
            let [p, q] = key.primes() else {
                return Err(KeyError::internal("generated RSA key is not two-prime"));
            };
            // The PKCS#1 `coefficient` and PuTTY's `iqmp` are both q⁻¹ mod p.
            let iqmp = key
                .crt_coefficient()
                .ok_or_else(|| KeyError::internal("RSA CRT coefficient missing"))?;
            let mut private_blob = Vec::with_capacity(1024);
            put_mpint(&mut private_blob, &key.d().to_bytes_be());
            put_mpint(&mut private_blob, &p.to_bytes_be());
            put_mpint(&mut private_blob, &q.to_bytes_be());
            put_mpint(&mut private_blob, &iqmp.to_bytes_be());
            ppk::encode_v2("ssh-rsa", key_name, &public_blob, &private_blob)
        }
    };

    Ok(CreatedKey {
        key_material,
        public_key_openssh,
        fingerprint,
        key_type: KeyType::Rsa,
    })
}

fn create_ed25519(format: KeyFormat, key_name: &str) -> Result<CreatedKey, KeyError> {
    let signing = SigningKey::generate(&mut OsRng);
    let seed = signing.to_bytes();
    let point = signing.verifying_key().to_bytes();

    let public_blob = ed25519_public_blob(&point);
    let fingerprint = fingerprint::sha256_base64(&public_blob);
    let public_key_openssh = format!("ssh-ed25519 {} {key_name}", b64(&public_blob));

    let key_material = match format {
        KeyFormat::Pem => {
            let keypair = KeypairData::Ed25519(Ed25519Keypair::from_seed(&seed));
            let private = ssh_key::PrivateKey::new(keypair, key_name)
                .map_err(|e| KeyError::internal(format!("OpenSSH key encoding failed: {e}")))?;
            let pem = private
                .to_openssh(LineEnding::LF)
                .map_err(|e| KeyError::internal(format!("OpenSSH key encoding failed: {e}")))?;
            pem.to_string()
        }
        KeyFormat::Ppk => {
            let mut private_blob = Vec::with_capacity(36);
            put_string(&mut private_blob, &seed);
            ppk::encode_v2("ssh-ed25519", key_name, &public_blob, &private_blob)
        }
    };

    Ok(CreatedKey {
        key_material,
        public_key_openssh,
        fingerprint,
        key_type: KeyType::Ed25519,
    })
}
