//! AWS Signature Version 4 for gureum: verifying what clients send, and signing
//! for our own tests and load generator.
//!
//! The crate is pure: no files, no network, no clock. The caller passes the
//! request head, the (already bounded) body, the secret it looked up and the
//! current time, so every decision here is reproducible in a test.
//!
//! A server uses it in three steps:
//!
//! 1. [`parse()`] reads the `Authorization` header (or the `X-Amz-*` query
//!    parameters of a presigned URL) into a [`ParsedAuth`]; its
//!    [`Credential`] names the access key to look up.
//! 2. The caller looks the key up. An unknown key is answered with
//!    [`SigV4Error::auth_failure`], as EC2 does.
//! 3. [`verify()`] checks scope, clock, signed headers, payload hash and the
//!    signature itself (in constant time).
//!
//! Canonicalisation follows the rules for every service except S3: the URI
//! path is normalised and each segment encoded a second time. The building
//! blocks are public ([`canonical_request`], [`canonical_uri`],
//! [`canonical_query_string`], [`canonical_headers`], [`string_to_sign`],
//! [`signing_key`], [`signature`]) so that tests can compare each stage with
//! AWS's published test suite.
//!
//! Modules:
//! * [`error`]: the AWS error codes, messages and HTTP statuses we answer with.
//! * [`canonical`]: canonical URI, query string, headers and request.
//! * [`crypto`]: signing key derivation, string to sign, signature.
//! * [`mod@parse`]: reading the authentication parts out of a request.
//! * [`mod@verify`]: the server-side checks.
//! * [`sign`]: the client side (header signing and presigned URLs).
//! * `timefmt` (private): the two date formats SigV4 uses.

pub mod canonical;
pub mod crypto;
pub mod error;
pub mod parse;
pub mod sign;
mod timefmt;
pub mod verify;

pub use canonical::{
    canonical_header_value, canonical_headers, canonical_query_string, canonical_request,
    canonical_uri,
};
pub use crypto::{credential_scope, signature, signing_key, string_to_sign};
pub use error::{ErrorKind, SigV4Error};
pub use parse::{parse, Credential, ParsedAuth};
pub use sign::{presign_url, sign_parts, sign_request, SigningParams};
pub use verify::verify;

/// The only algorithm SigV4 defines, as it appears in headers and queries.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// The fixed last element of every credential scope.
pub const TERMINATOR: &str = "aws4_request";

/// Payload hash a presigned request may declare instead of hashing its body.
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";

/// Hex SHA-256 of the empty string, the payload hash of every bodiless request.
pub const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// How far the request time may be from the server clock (either way) for
/// header authentication, and how far in the future a presigned URL may start.
pub const MAX_SKEW: time::Duration = time::Duration::minutes(15);

/// Longest lifetime a presigned URL may ask for (seven days), per SigV4.
pub const MAX_EXPIRES_SECS: u32 = 604_800;
