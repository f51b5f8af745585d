//! The single error type of this crate, shaped like an EC2 API error (code plus
//! message) so the API layer can pass it through unchanged.

/// An EC2-style error: `code` is the AWS error code, `message` its text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct KeyError {
    /// AWS error code, e.g. `InvalidKey.Format`.
    pub code: &'static str,
    /// Human-readable message, in AWS's wording where AWS's wording is known.
    pub message: String,
}

impl KeyError {
    /// Code AWS returns from `ImportKeyPair` for anything it cannot use as a key.
    pub const INVALID_KEY_FORMAT: &'static str = "InvalidKey.Format";
    /// Code for a parameter value that is syntactically unacceptable.
    pub const INVALID_PARAMETER_VALUE: &'static str = "InvalidParameterValue";
    /// Code AWS uses for server-side failures (HTTP 500).
    pub const INTERNAL_ERROR: &'static str = "InternalError";

    /// The one rejection AWS gives for unusable `ImportKeyPair` material.
    ///
    /// AWS answers garbage, unsupported key types (DSA, and ECDSA on real AWS) and
    /// wrong encodings alike with `InvalidKey.Format` / "Key is not in valid OpenSSH
    /// public key format" (observed in aws-sdk-js#314, aws-sdk-go#176, streisand#1171
    /// for ECDSA, algo#376 for ED25519 before AWS supported it). We use the same pair
    /// for every import rejection, including RSA keys below 1024 bits, where AWS's
    /// exact wording is not documented.
    pub fn invalid_key_format() -> Self {
        KeyError {
            code: Self::INVALID_KEY_FORMAT,
            message: "Key is not in valid OpenSSH public key format".to_string(),
        }
    }

    pub(crate) fn invalid_parameter(message: impl Into<String>) -> Self {
        KeyError {
            code: Self::INVALID_PARAMETER_VALUE,
            message: message.into(),
        }
    }

    pub(crate) fn internal(message: impl Into<String>) -> Self {
        KeyError {
            code: Self::INTERNAL_ERROR,
            message: message.into(),
        }
    }
}
