//! IMDSv2 session tokens and the TTL header.
//!
//! A token is stateless: `base64url(version ‖ expiry ‖ nonce ‖ tag)` where `expiry` is the
//! Unix time in milliseconds at which it stops working, `nonce` makes every token distinct, and
//! `tag` is HMAC-SHA256 (truncated to 192 bits) under a per-server secret over all of that *and
//! the instance id*. So a token cannot be forged or extended, and works only for the instance it
//! was issued to; nothing is stored per token. Tokens die with the secret (a restart of the
//! server unless the binary keeps the secret), which clients handle as EC2 tells them to: a 401
//! means "fetch a new token".

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The longest session EC2 grants: six hours.
pub const MAX_TOKEN_TTL_SECONDS: u32 = 21_600;

const VERSION: u8 = 1;
const NONCE_LEN: usize = 6;
const TAG_LEN: usize = 24;
const RAW_LEN: usize = 1 + 8 + NONCE_LEN + TAG_LEN;
/// `RAW_LEN` is a multiple of three, so the encoding has no padding and a fixed length.
const ENCODED_LEN: usize = RAW_LEN / 3 * 4;
/// Separates this MAC's inputs from any other use of the secret.
const DOMAIN: &[u8] = b"gureum-imds-token\0";

/// Parses `X-aws-ec2-metadata-token-ttl-seconds`: decimal digits only, 1..=21600.
///
/// Anything else (absent, empty, signed, spaced, fractional, 0, above six hours) is EC2's
/// `400 - Bad Request`.
pub fn parse_token_ttl(value: &[u8]) -> Option<u32> {
    // Ten digits cannot overflow a u64 and leading zeros stay legal.
    if value.is_empty() || value.len() > 10 || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = value.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
    (1..=u64::from(MAX_TOKEN_TTL_SECONDS))
        .contains(&n)
        .then_some(n as u32)
}

/// Why a presented token was refused; every case is answered `401 - Unauthorized`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TokenError {
    /// Not a token of ours at all (length, alphabet, version).
    Malformed,
    /// Altered, minted under another secret, or issued to another instance.
    BadTag,
    /// Past its expiry.
    Expired,
}

/// The per-server secret that signs tokens.
pub(crate) struct TokenKey {
    secret: [u8; 32],
}

impl TokenKey {
    pub(crate) fn new(secret: [u8; 32]) -> Self {
        Self { secret }
    }

    fn tag(&self, head: &[u8], instance_id: &str) -> Hmac<Sha256> {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.secret).expect("hmac accepts any key length");
        mac.update(DOMAIN);
        mac.update(head);
        mac.update(instance_id.as_bytes());
        mac
    }

    /// A token for `instance_id` that works until `expires_ms` (Unix milliseconds).
    pub(crate) fn mint(
        &self,
        instance_id: &str,
        expires_ms: u64,
        nonce: [u8; NONCE_LEN],
    ) -> String {
        let mut raw = [0u8; RAW_LEN];
        raw[0] = VERSION;
        raw[1..9].copy_from_slice(&expires_ms.to_be_bytes());
        raw[9..9 + NONCE_LEN].copy_from_slice(&nonce);
        let tag = self
            .tag(&raw[..9 + NONCE_LEN], instance_id)
            .finalize()
            .into_bytes();
        raw[9 + NONCE_LEN..].copy_from_slice(&tag[..TAG_LEN]);
        URL_SAFE_NO_PAD.encode(raw)
    }

    /// Checks `token` for `instance_id` at `now_ms`; returns its expiry (Unix milliseconds).
    pub(crate) fn verify(
        &self,
        token: &[u8],
        instance_id: &str,
        now_ms: u64,
    ) -> Result<u64, TokenError> {
        if token.len() != ENCODED_LEN {
            return Err(TokenError::Malformed);
        }
        let mut raw = [0u8; RAW_LEN];
        match URL_SAFE_NO_PAD.decode_slice(token, &mut raw) {
            Ok(RAW_LEN) => {}
            _ => return Err(TokenError::Malformed),
        }
        if raw[0] != VERSION {
            return Err(TokenError::Malformed);
        }
        // Constant-time comparison of the tag before anything in the token is believed.
        self.tag(&raw[..9 + NONCE_LEN], instance_id)
            .verify_truncated_left(&raw[9 + NONCE_LEN..])
            .map_err(|_| TokenError::BadTag)?;
        let expires_ms = u64::from_be_bytes(raw[1..9].try_into().expect("eight bytes"));
        if now_ms >= expires_ms {
            return Err(TokenError::Expired);
        }
        Ok(expires_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const I1: &str = "i-0123456789abcdef0";
    const I2: &str = "i-0fedcba9876543210";

    #[test]
    fn ttl_accepts_one_to_six_hours() {
        assert_eq!(parse_token_ttl(b"1"), Some(1));
        assert_eq!(parse_token_ttl(b"60"), Some(60));
        assert_eq!(parse_token_ttl(b"21600"), Some(21_600));
        assert_eq!(parse_token_ttl(b"0060"), Some(60));
    }

    #[test]
    fn ttl_rejects_everything_else() {
        for bad in [
            &b""[..],
            b"0",
            b"21601",
            b"-1",
            b"+60",
            b" 60",
            b"60 ",
            b"6.0",
            b"1e3",
            b"abc",
            b"99999999999999999999",
            b"4294967356",
        ] {
            assert_eq!(
                parse_token_ttl(bad),
                None,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn token_round_trips_until_expiry() {
        let key = TokenKey::new([7; 32]);
        let token = key.mint(I1, 10_000, [1, 2, 3, 4, 5, 6]);
        assert_eq!(token.len(), ENCODED_LEN);
        assert_eq!(key.verify(token.as_bytes(), I1, 0), Ok(10_000));
        assert_eq!(key.verify(token.as_bytes(), I1, 9_999), Ok(10_000));
        assert_eq!(
            key.verify(token.as_bytes(), I1, 10_000),
            Err(TokenError::Expired)
        );
        assert_eq!(
            key.verify(token.as_bytes(), I1, u64::MAX),
            Err(TokenError::Expired)
        );
    }

    #[test]
    fn token_is_bound_to_its_instance_and_secret() {
        let key = TokenKey::new([7; 32]);
        let token = key.mint(I1, 10_000, [0; 6]);
        assert_eq!(key.verify(token.as_bytes(), I2, 0), Err(TokenError::BadTag));
        let other = TokenKey::new([8; 32]);
        assert_eq!(
            other.verify(token.as_bytes(), I1, 0),
            Err(TokenError::BadTag)
        );
    }

    #[test]
    fn tampering_with_any_byte_is_refused() {
        let key = TokenKey::new([7; 32]);
        let token = key.mint(I1, 10_000, [9; 6]);
        let mut raw = URL_SAFE_NO_PAD.decode(&token).unwrap();
        for i in 0..raw.len() {
            raw[i] ^= 0x01;
            let forged = URL_SAFE_NO_PAD.encode(&raw);
            let err = key.verify(forged.as_bytes(), I1, 0).unwrap_err();
            assert!(
                matches!(err, TokenError::BadTag | TokenError::Malformed),
                "byte {i}: {err:?}"
            );
            raw[i] ^= 0x01;
        }
        // Extending the expiry is the tampering that matters most.
        raw[1..9].copy_from_slice(&u64::MAX.to_be_bytes());
        let extended = URL_SAFE_NO_PAD.encode(&raw);
        assert_eq!(
            key.verify(extended.as_bytes(), I1, 0),
            Err(TokenError::BadTag)
        );
    }

    #[test]
    fn garbage_is_malformed() {
        let key = TokenKey::new([7; 32]);
        let token = key.mint(I1, 10_000, [0; 6]);
        for bad in [
            "",
            "x",
            &token[1..],
            &format!("{token}A"),
            &"!".repeat(ENCODED_LEN),
        ] {
            assert_eq!(
                key.verify(bad.as_bytes(), I1, 0),
                Err(TokenError::Malformed),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn nonces_make_tokens_distinct() {
        let key = TokenKey::new([7; 32]);
        assert_ne!(key.mint(I1, 10_000, [0; 6]), key.mint(I1, 10_000, [1; 6]));
    }
}
