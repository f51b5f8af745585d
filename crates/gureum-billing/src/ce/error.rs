//! Cost Explorer's errors and their JSON 1.1 envelope.
//!
//! Owned here: the error codes botocore's `ce` model declares (plus the protocol-level
//! ones every JSON service answers with), their HTTP status, and the body
//! `{"__type":"ValidationException","message":"..."}`. AWS's Cost Explorer spells the
//! member `message` in lower case on the wire (botocore reads either spelling).

use std::fmt;

/// A Cost Explorer error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CeErrorCode {
    /// A request member is missing, malformed or out of range.
    ValidationException,
    /// There is not enough data (a forecast without history).
    DataUnavailableException,
    /// A `NextPageToken` gureum did not issue.
    InvalidNextTokenException,
    LimitExceededException,
    BillExpirationException,
    RequestChangedException,
    /// The body is not JSON of the operation's shape.
    SerializationException,
    /// `X-Amz-Target` names no operation gureum serves.
    UnknownOperationException,
}

impl CeErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            CeErrorCode::ValidationException => "ValidationException",
            CeErrorCode::DataUnavailableException => "DataUnavailableException",
            CeErrorCode::InvalidNextTokenException => "InvalidNextTokenException",
            CeErrorCode::LimitExceededException => "LimitExceededException",
            CeErrorCode::BillExpirationException => "BillExpirationException",
            CeErrorCode::RequestChangedException => "RequestChangedException",
            CeErrorCode::SerializationException => "SerializationException",
            CeErrorCode::UnknownOperationException => "UnknownOperationException",
        }
    }

    /// Every Cost Explorer error is a client error: 400.
    pub fn http_status(self) -> u16 {
        400
    }
}

/// An error to answer a Cost Explorer request with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CeError {
    pub code: CeErrorCode,
    pub message: String,
}

impl CeError {
    pub fn new(code: CeErrorCode, message: impl Into<String>) -> CeError {
        CeError {
            code,
            message: message.into(),
        }
    }

    pub fn validation(message: impl Into<String>) -> CeError {
        CeError::new(CeErrorCode::ValidationException, message)
    }

    /// The "1 validation error detected" message AWS's request validation produces for a
    /// missing required member.
    pub fn missing(member: &str) -> CeError {
        CeError::validation(format!(
            "1 validation error detected: Value null at '{member}' failed to satisfy constraint: Member must not be null"
        ))
    }

    /// The same, for a value outside an enum.
    pub fn not_in_enum(member: &str, value: &str, allowed: &[&str]) -> CeError {
        CeError::validation(format!(
            "1 validation error detected: Value '{value}' at '{member}' failed to satisfy constraint: Member must satisfy enum value set: [{}]",
            allowed.join(", ")
        ))
    }

    pub fn http_status(&self) -> u16 {
        self.code.http_status()
    }

    /// The JSON 1.1 error body.
    pub fn to_json(&self) -> String {
        serde_json::json!({ "__type": self.code.as_str(), "message": self.message }).to_string()
    }
}

impl fmt::Display for CeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

impl std::error::Error for CeError {}
