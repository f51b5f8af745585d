//! The errors authentication can end in, with the code, message and HTTP status
//! Amazon EC2 answers for each.
//!
//! Messages that AWS itself sends are reproduced word for word (including
//! their capitals and full stops) so that SDKs and scripts matching on them
//! keep working; messages that are ours are lower-case.

use std::fmt;

/// Which AWS error a failed authentication maps to.
///
/// What EC2 answers, as found (sources in brackets):
///
/// | situation | code | status | message |
/// |---|---|---|---|
/// | no `Authorization` header and no `X-Amz-*` query authentication | `MissingParameter` | 400 | `The request must contain the parameter AWSAccessKeyId` |
/// | unknown access key | `AuthFailure` | 401 | `AWS was not able to validate the provided access credentials` |
/// | wrong signature (wrong secret, altered request, changed body) | `SignatureDoesNotMatch` | 403 | `The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.` |
/// | clock skew beyond 15 minutes, either way | `RequestExpired` | 400 | `Request has expired.` |
/// | presigned URL past `X-Amz-Date + X-Amz-Expires` | `RequestExpired` | 400 | `Request has expired.` |
/// | credential scoped to another region / service / date / terminator | `SignatureDoesNotMatch` | 403 | `Credential should be scoped to a valid region, not '<r>'.` and its siblings, see [`SigV4Error`]'s constructors |
/// | malformed `Authorization`, unknown algorithm, missing parts | `IncompleteSignature` | 400 | e.g. `Authorization header requires 'Credential' parameter. … Authorization=<header>` |
/// | `X-Amz-Expires` not in 1..=604800 | `InvalidParameterValue` | 400 | ours, lower-case |
///
/// Sources:
/// * Unsigned request: a live capture of
///   `GET https://ec2.us-east-1.amazonaws.com/?Action=DescribeInstances&Version=2016-11-15`
///   answered HTTP 400 `MissingParameter` / `The request must contain the
///   parameter AWSAccessKeyId` (captured 2026 in a public report; the same
///   body is quoted in proftpd's mod_aws `error.c` and in a blog post doing
///   `curl https://ec2.amazonaws.com?Action=DescribeInstances`). The generic
///   AWS "Common Errors" pages instead list `MissingAuthenticationToken` (403);
///   EC2's observed behaviour wins, and [`ErrorKind::MissingAuthenticationToken`]
///   is kept for front ends of JSON-protocol services that want the generic one.
/// * `AuthFailure`: listed first among EC2's "Common client error codes"
///   (docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html);
///   wire message and status from SDK logs, e.g. aws/aws-sdk-java#2508
///   (`Status Code: 401; Error Code: AuthFailure`) and aws/aws-sdk-java-v2#2981.
/// * `SignatureDoesNotMatch`: EC2 XML error bodies quoted in
///   mitchellh/vagrant-aws#138 (`403 Forbidden`) and aws/aws-cli#134.
/// * `RequestExpired`: EC2 "Common Error Types" page (400, "… more than 15
///   minutes after the date stamp … or after the request expiration date (such
///   as for pre-signed URLs), or the date stamp on the request is more than 15
///   minutes in the future"); wire message `Request has expired.` from
///   aws/aws-sdk-java#1443 and aws/aws-sdk-go-v2#1674 (`StatusCode: 400`).
///   Other services (and the IAM guide) answer skew with
///   `SignatureDoesNotMatch` / `Signature expired: …`, and a 2015 report
///   (aws/aws-sdk-java#519) saw EC2 answer `AuthFailure`; current EC2
///   behaviour (`RequestExpired`) is what we follow.
/// * Credential scope: the IAM User Guide page "Troubleshoot signed requests
///   for AWS APIs" gives the four scope messages under HTTP 403
///   `SignatureDoesNotMatch`; the exact wire wording (`…, not 'us-east-2'.`) is
///   from Query-protocol siblings of EC2 (IAM: JuliaCloud/AWS.jl#565, SES:
///   aws/aws-sdk-java#1097, SQS). No EC2-specific capture was found, so the
///   Query-protocol behaviour is used.
/// * `IncompleteSignature`: 400 on EC2's "Common Error Types" page (some other
///   services' pages say 403; EC2's wins). Message wording from AWS front ends
///   (`Authorization header requires 'Credential' parameter. …`, `'<x>' not a
///   valid key=value pair (missing equal-sign) in Authorization header: …`,
///   `Credential must have exactly 5 slash-delimited elements, …`,
///   `Unsupported AWS 'algorithm': …`, `Date must be in ISO-8601 'basic
///   format'. …`), e.g. aws/aws-sdk-go#289 and YumaInaura/YumaInaura#2416.
/// * `InvalidParameterValue`: 400 on EC2's "Common Error Types" page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// EC2's answer to a request carrying no authentication at all.
    MissingParameter,
    /// The generic AWS answer to a request without credentials (403); not what
    /// EC2 sends, kept for JSON-protocol front ends.
    MissingAuthenticationToken,
    /// The authentication parts are malformed or incomplete.
    IncompleteSignature,
    /// The access key is unknown (or disabled).
    AuthFailure,
    /// The signature, or the credential scope it was made for, does not match.
    SignatureDoesNotMatch,
    /// The request is too old, too far in the future, or past its presigned expiry.
    RequestExpired,
    /// A parameter of the authentication (such as `X-Amz-Expires`) is out of range.
    InvalidParameterValue,
}

impl ErrorKind {
    /// The AWS error code string, as it goes into `<Code>`.
    pub fn code(&self) -> &'static str {
        match self {
            ErrorKind::MissingParameter => "MissingParameter",
            ErrorKind::MissingAuthenticationToken => "MissingAuthenticationToken",
            ErrorKind::IncompleteSignature => "IncompleteSignature",
            ErrorKind::AuthFailure => "AuthFailure",
            ErrorKind::SignatureDoesNotMatch => "SignatureDoesNotMatch",
            ErrorKind::RequestExpired => "RequestExpired",
            ErrorKind::InvalidParameterValue => "InvalidParameterValue",
        }
    }

    /// The HTTP status EC2 answers this error with.
    pub fn http_status(&self) -> u16 {
        match self {
            ErrorKind::MissingParameter => 400,
            ErrorKind::MissingAuthenticationToken => 403,
            ErrorKind::IncompleteSignature => 400,
            ErrorKind::AuthFailure => 401,
            ErrorKind::SignatureDoesNotMatch => 403,
            ErrorKind::RequestExpired => 400,
            ErrorKind::InvalidParameterValue => 400,
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// Message EC2 sends with `MissingParameter` when a request has no authentication.
pub const MSG_MISSING_AUTH: &str = "The request must contain the parameter AWSAccessKeyId";
/// Message of the generic `MissingAuthenticationToken` error.
pub const MSG_MISSING_TOKEN: &str = "Request is missing Authentication Token";
/// Message EC2 sends with `AuthFailure`.
pub const MSG_AUTH_FAILURE: &str = "AWS was not able to validate the provided access credentials";
/// Message AWS sends with `SignatureDoesNotMatch` when the signature differs.
pub const MSG_SIGNATURE_DOES_NOT_MATCH: &str = "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.";
/// Message EC2 sends with `RequestExpired`.
pub const MSG_REQUEST_EXPIRED: &str = "Request has expired.";

/// A failed authentication: the AWS error kind plus the message to send.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {}", .kind.code(), .message)]
pub struct SigV4Error {
    /// Which AWS error this is; gives the code and HTTP status.
    pub kind: ErrorKind,
    /// The text for the error response's `<Message>`.
    pub message: String,
}

impl SigV4Error {
    /// An error of `kind` with `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        SigV4Error {
            kind,
            message: message.into(),
        }
    }

    /// EC2's answer to a request without any authentication.
    pub fn missing_authentication() -> Self {
        Self::new(ErrorKind::MissingParameter, MSG_MISSING_AUTH)
    }

    /// The generic AWS answer to a request without credentials, for
    /// front ends that are not EC2.
    pub fn missing_authentication_token() -> Self {
        Self::new(ErrorKind::MissingAuthenticationToken, MSG_MISSING_TOKEN)
    }

    /// What the caller answers when [`crate::Credential::access_key_id`] is unknown.
    pub fn auth_failure() -> Self {
        Self::new(ErrorKind::AuthFailure, MSG_AUTH_FAILURE)
    }

    /// The signature (or something it covers) does not match.
    pub fn signature_does_not_match() -> Self {
        Self::new(
            ErrorKind::SignatureDoesNotMatch,
            MSG_SIGNATURE_DOES_NOT_MATCH,
        )
    }

    /// The request is outside its validity window.
    pub fn request_expired() -> Self {
        Self::new(ErrorKind::RequestExpired, MSG_REQUEST_EXPIRED)
    }

    pub(crate) fn incomplete(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::IncompleteSignature, message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_statuses() {
        let table = [
            (ErrorKind::MissingParameter, "MissingParameter", 400),
            (
                ErrorKind::MissingAuthenticationToken,
                "MissingAuthenticationToken",
                403,
            ),
            (ErrorKind::IncompleteSignature, "IncompleteSignature", 400),
            (ErrorKind::AuthFailure, "AuthFailure", 401),
            (
                ErrorKind::SignatureDoesNotMatch,
                "SignatureDoesNotMatch",
                403,
            ),
            (ErrorKind::RequestExpired, "RequestExpired", 400),
            (
                ErrorKind::InvalidParameterValue,
                "InvalidParameterValue",
                400,
            ),
        ];
        for (kind, code, status) in table {
            assert_eq!(kind.code(), code);
            assert_eq!(kind.to_string(), code);
            assert_eq!(kind.http_status(), status);
        }
    }

    #[test]
    fn display_has_code_and_message() {
        let e = SigV4Error::auth_failure();
        assert_eq!(
            e.to_string(),
            "AuthFailure: AWS was not able to validate the provided access credentials"
        );
        assert_eq!(
            SigV4Error::missing_authentication().kind,
            ErrorKind::MissingParameter
        );
        assert_eq!(
            SigV4Error::request_expired().message,
            "Request has expired."
        );
    }
}
