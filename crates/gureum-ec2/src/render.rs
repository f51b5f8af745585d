//! Rendering results as EC2 XML: the document around a resource's result (each resource
//! writes its own elements, see [`crate::ops`]), and the error envelope. Element names follow
//! botocore's EC2 model (`locationName`s), with the `requestId` first as AWS writes it.

use gureum_types::model::Tag;
use gureum_types::ApiError;

pub use crate::ops::Response;
use crate::xml::{Xml, EC2_NS};

impl Response {
    /// The response document for `action`, with `request_id`.
    pub fn render(&self, action: &str, request_id: &str) -> String {
        let root = format!("{action}Response");
        let mut x = Xml::document(&root, EC2_NS);
        x.leaf("requestId", request_id);
        self.write(&mut x);
        x.finish(&root)
    }
}

/// A resource's `tagSet`.
pub(crate) fn tag_set(x: &mut Xml, tags: &[Tag]) {
    x.set("tagSet", tags, |x, t| {
        x.leaf("key", &t.key).leaf("value", &t.value);
    });
}

/// EC2's error envelope: `Response/Errors/Error/{Code,Message}` and `RequestID`.
pub fn error_document(err: &ApiError, request_id: &str) -> String {
    let mut x = Xml::fragment();
    x.open("Response")
        .open("Errors")
        .open("Error")
        .leaf("Code", err.code.as_str())
        .leaf("Message", &err.message)
        .close("Error")
        .close("Errors")
        .leaf("RequestID", request_id)
        .close("Response");
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{}",
        x.into_string()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use gureum_types::ErrorCode;

    /// fuzz/query's first crash: `PublicI\0p.1` is an unknown parameter, and its name, NUL
    /// included, went into the error message and made the document unparseable.
    #[test]
    fn error_documents_carry_no_control_characters() {
        let form = b"Action=DescribeAddresses&Version=2016-11-15&PublicI\0p.1=203.0.113.10";
        let mut p = crate::Params::from_form(form).unwrap();
        let action = p.take("Action").unwrap();
        p.take("Version");
        let err = crate::parse(&action, p).unwrap_err();
        assert_eq!(err.code, ErrorCode::UnknownParameter);
        let doc = error_document(&err, "r");
        assert!(!doc.contains('\0'), "{doc:?}");
        assert!(
            doc.contains("<Message>The parameter PublicI\u{FFFD}p.1 is not recognized</Message>")
        );
    }

    #[test]
    fn golden_error_envelope() {
        let e = ApiError::new(
            ErrorCode::InvalidKeyPairNotFound,
            "The key pair 'x' does not exist",
        );
        assert_eq!(
            error_document(&e, "rid"),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error>\
             <Code>InvalidKeyPair.NotFound</Code><Message>The key pair &apos;x&apos; does not exist</Message>\
             </Error></Errors><RequestID>rid</RequestID></Response>"
        );
    }
}
