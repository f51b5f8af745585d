//! The one STS action clients call on any endpoint before they start: `GetCallerIdentity`
//! (Terraform's AWS provider and Ansible's `amazon.aws` do). STS speaks the same Query
//! protocol with its own namespace and error envelope.

use gureum_types::ApiError;

use crate::xml::Xml;

pub const STS_NS: &str = "https://sts.amazonaws.com/doc/2011-06-15/";
pub const STS_VERSION: &str = "2011-06-15";

/// `GetCallerIdentity` for an account's root credentials.
pub fn caller_identity(account_id: &str, request_id: &str) -> String {
    let root = "GetCallerIdentityResponse";
    let mut x = Xml::document(root, STS_NS);
    x.open("GetCallerIdentityResult")
        .leaf("Arn", &format!("arn:aws:iam::{account_id}:root"))
        .leaf("UserId", account_id)
        .leaf("Account", account_id)
        .close("GetCallerIdentityResult")
        .open("ResponseMetadata")
        .leaf("RequestId", request_id)
        .close("ResponseMetadata");
    x.finish(root)
}

/// STS's error envelope: `ErrorResponse/Error/{Type,Code,Message}` and `RequestId`.
pub fn error_document(err: &ApiError, request_id: &str) -> String {
    let root = "ErrorResponse";
    let mut x = Xml::document(root, STS_NS);
    let kind = if err.code.http_status() >= 500 {
        "Receiver"
    } else {
        "Sender"
    };
    x.open("Error")
        .leaf("Type", kind)
        .leaf("Code", err.code.as_str())
        .leaf("Message", &err.message)
        .close("Error")
        .leaf("RequestId", request_id);
    x.finish(root)
}

#[cfg(test)]
mod tests {
    #[test]
    fn golden_caller_identity() {
        assert_eq!(
            super::caller_identity("123456789012", "r"),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<GetCallerIdentityResponse \
             xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><GetCallerIdentityResult>\
             <Arn>arn:aws:iam::123456789012:root</Arn><UserId>123456789012</UserId>\
             <Account>123456789012</Account></GetCallerIdentityResult><ResponseMetadata>\
             <RequestId>r</RequestId></ResponseMetadata></GetCallerIdentityResponse>"
        );
    }
}
