//! Request bytes: `POST` of a form body, signed with SigV4 by `gureum_sigv4::sign_request`
//! at the moment it is built, so every request carries a fresh signature and the current
//! `X-Amz-Date`, as an SDK's would.

use std::io::Write;

use anyhow::Context;
use gureum_sigv4::{sign_request, SigningParams};
use http::header::{CONTENT_TYPE, HOST};
use time::OffsetDateTime;

use crate::creds::Credentials;

/// The form content type the AWS SDKs send for Query protocols.
pub const FORM: &str = "application/x-www-form-urlencoded; charset=utf-8";

/// Everything but the signature of the requests one run sends.
#[derive(Debug, Clone)]
pub struct RequestTemplate {
    host: String,
    path: String,
    body: Vec<u8>,
    credentials: Option<Credentials>,
    region: String,
    service: String,
}

impl RequestTemplate {
    pub fn new(
        host: String,
        path: String,
        body: Vec<u8>,
        credentials: Option<Credentials>,
        region: String,
        service: String,
    ) -> Self {
        RequestTemplate {
            host,
            path,
            body,
            credentials,
            region,
            service,
        }
    }

    /// The same request with another body.
    pub fn with_body(&self, body: Vec<u8>) -> Self {
        RequestTemplate {
            body,
            ..self.clone()
        }
    }

    /// Write the complete request into `out` (cleared first), signed now if the template
    /// has credentials.
    pub fn build(&self, out: &mut Vec<u8>) -> anyhow::Result<()> {
        out.clear();
        write!(out, "POST {} HTTP/1.1\r\n", self.path)?;
        match &self.credentials {
            Some(c) => {
                let mut req = http::Request::post(self.path.as_str())
                    .header(HOST, self.host.as_str())
                    .header(CONTENT_TYPE, FORM)
                    .body(self.body.clone())
                    .context("building the request")?;
                let params = SigningParams::new(
                    &c.access_key_id,
                    &c.secret_access_key,
                    &self.region,
                    &self.service,
                    OffsetDateTime::now_utc(),
                );
                sign_request(&mut req, &params).context("signing")?;
                for (name, value) in req.headers() {
                    out.extend_from_slice(name.as_str().as_bytes());
                    out.extend_from_slice(b": ");
                    out.extend_from_slice(value.as_bytes());
                    out.extend_from_slice(b"\r\n");
                }
            }
            None => {
                write!(out, "host: {}\r\ncontent-type: {FORM}\r\n", self.host)?;
            }
        }
        write!(
            out,
            "user-agent: gureum-bench\r\ncontent-length: {}\r\n\r\n",
            self.body.len()
        )?;
        out.extend_from_slice(&self.body);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_request_has_the_auth_headers() {
        let t = RequestTemplate::new(
            "127.0.0.1:1".into(),
            "/".into(),
            b"Action=DescribeKeyPairs&Version=2016-11-15".to_vec(),
            Some(Credentials {
                access_key_id: "AKID".into(),
                secret_access_key: "SECRET".into(),
            }),
            "us-east-1".into(),
            "ec2".into(),
        );
        let mut out = Vec::new();
        t.build(&mut out).unwrap();
        let s = String::from_utf8(out).unwrap();
        assert!(s.starts_with("POST / HTTP/1.1\r\n"), "{s}");
        assert!(s.contains("\r\nhost: 127.0.0.1:1\r\n"), "{s}");
        assert!(s.contains("x-amz-date: "), "{s}");
        assert!(
            s.contains("authorization: AWS4-HMAC-SHA256 Credential=AKID/"),
            "{s}"
        );
        assert!(s.contains("/us-east-1/ec2/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature="), "{s}");
        assert!(s.ends_with("\r\n\r\nAction=DescribeKeyPairs&Version=2016-11-15"));
    }
}
