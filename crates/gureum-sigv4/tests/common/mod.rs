//! Shared helpers for the integration tests: reading the raw HTTP request files
//! of AWS's test suite (and our botocore capture) into `http` types.

#![allow(dead_code)] // each test binary uses a different subset

use std::path::{Path, PathBuf};

use http::request::Parts;
use http::{HeaderName, HeaderValue, Request};

/// The test suite's example credentials and scope.
pub const ACCESS_KEY: &str = "AKIDEXAMPLE";
pub const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
pub const REGION: &str = "us-east-1";
pub const SERVICE: &str = "service";

pub fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

/// A request as written in a `.req`/`.sreq` file, before `http` sees it.
#[derive(Debug, Clone)]
pub struct RawRequest {
    pub method: String,
    /// Request target exactly as in the file (path and query, possibly raw UTF-8).
    pub target: String,
    /// Header lines in order, names as written, values with surrounding
    /// whitespace removed the way an HTTP parser removes it.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawRequest {
    pub fn parse(text: &str) -> RawRequest {
        let (head, body) = match text.split_once("\n\n") {
            Some((h, b)) => (h, b),
            None => (text.trim_end_matches('\n'), ""),
        };
        let mut lines = head.lines();
        let request_line = lines.next().expect("request line");
        let (method, rest) = request_line.split_once(' ').expect("method");
        // Targets may contain spaces (get-space), so cut the version off the end.
        let target = rest.strip_suffix(" HTTP/1.1").expect("HTTP/1.1");
        let mut headers: Vec<(String, String)> = Vec::new();
        for line in lines {
            if line.starts_with([' ', '\t']) {
                // obs-fold: RFC 7230 §3.2.4 lets a recipient replace it with SP,
                // which is what a proxy in front of us would hand on.
                let last = headers.last_mut().expect("continuation without header");
                last.1.push(' ');
                last.1.push_str(line.trim());
                continue;
            }
            let (name, value) = line.split_once(':').expect("header line");
            headers.push((name.to_owned(), value.trim().to_owned()));
        }
        RawRequest {
            method: method.to_owned(),
            target: target.to_owned(),
            headers,
            body: body.as_bytes().to_vec(),
        }
    }

    pub fn read(path: &Path) -> RawRequest {
        let text = std::fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        RawRequest::parse(&text)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The request as our HTTP front end would hand it over, with `target`
    /// replaced by `uri` (for targets `http::Uri` cannot hold).
    pub fn to_parts_with_uri(&self, uri: &str) -> Result<(Parts, Vec<u8>), String> {
        let mut builder = Request::builder().method(self.method.as_str()).uri(uri);
        for (name, value) in &self.headers {
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|e| e.to_string())?;
            let value = HeaderValue::from_str(value).map_err(|e| e.to_string())?;
            builder = builder.header(name, value);
        }
        let req = builder.body(self.body.clone()).map_err(|e| e.to_string())?;
        Ok(req.into_parts())
    }

    pub fn to_parts(&self) -> Result<(Parts, Vec<u8>), String> {
        self.to_parts_with_uri(&self.target)
    }
}
