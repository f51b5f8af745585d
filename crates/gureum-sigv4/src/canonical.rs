//! The canonical request: the exact byte string both sides hash before signing.
//!
//! ```text
//! METHOD \n CANONICAL-URI \n CANONICAL-QUERY \n CANONICAL-HEADERS \n SIGNED-HEADERS \n PAYLOAD-HASH
//! ```
//!
//! Rules (SigV4, every service but S3):
//! * URI: the path as it came over the wire, with empty and `.` segments
//!   removed and `..` segments applied, then every byte outside the RFC 3986
//!   unreserved set and `/` percent-encoded. The wire path is already encoded
//!   once, so its `%` become `%25`: this is the "encode each segment twice"
//!   AWS describes for non-S3 services.
//! * Query: each `name=value` pair percent-decoded and re-encoded with the
//!   unreserved set (upper-case hex), sorted by encoded name then value, joined
//!   with `&`; a name without `=` gets an empty value. Presigned requests leave
//!   out `X-Amz-Signature`.
//! * Headers: the signed names (lower-case), each followed by `:` and its
//!   values trimmed, runs of spaces collapsed, several values of one name
//!   joined with `,` in the order they came.
//!
//! Verification never builds the canonical request as a string: it streams
//! the pieces straight into SHA-256 through a `Sink`, so the common cases
//! (`POST /` with a form body, `GET /?…`) cost no allocation beyond the sorted
//! query pairs. The `String`-returning functions here exist for tests, debug
//! output and the signer.

use std::borrow::Cow;

use http::HeaderMap;
use percent_encoding::{percent_decode_str, percent_encode, AsciiSet, NON_ALPHANUMERIC};
use sha2::{Digest, Sha256};

use crate::error::SigV4Error;

/// Everything but the RFC 3986 unreserved characters `A-Z a-z 0-9 - . _ ~`.
pub(crate) const ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Where canonical bytes go: a buffer (for display) or a hasher (to verify).
pub(crate) trait Sink {
    fn put(&mut self, bytes: &[u8]);
}

impl Sink for Vec<u8> {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

impl Sink for Sha256 {
    fn put(&mut self, bytes: &[u8]) {
        self.update(bytes);
    }
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn put_encoded<S: Sink>(out: &mut S, bytes: &[u8]) {
    for chunk in percent_encode(bytes, ENCODE) {
        out.put(chunk.as_bytes());
    }
}

pub(crate) fn write_canonical_uri<S: Sink>(out: &mut S, path: &str) {
    // Fast path: the query APIs (EC2, Cost Explorer) always post to "/".
    if path.is_empty() || path == "/" {
        out.put(b"/");
        return;
    }
    let mut segments: Vec<&str> = Vec::with_capacity(8);
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    out.put(b"/");
    for (i, seg) in segments.iter().enumerate() {
        if i > 0 {
            out.put(b"/");
        }
        put_encoded(out, seg.as_bytes());
    }
    // A trailing slash survives normalisation unless nothing is left but the root.
    if path.ends_with('/') && !segments.is_empty() {
        out.put(b"/");
    }
}

/// The canonical URI of a (non-S3) request whose wire path is `path`.
///
/// `path` is the path exactly as received (still percent-encoded), e.g.
/// `http::Uri::path()`. Encoding it again is deliberate (see the module docs).
pub fn canonical_uri(path: &str) -> String {
    let mut out = Vec::with_capacity(path.len() + 8);
    write_canonical_uri(&mut out, path);
    into_string(out)
}

/// One query name or value, decoded and re-encoded with the unreserved set.
fn canonical_component(raw: &str) -> Cow<'_, str> {
    if raw.bytes().all(is_unreserved) {
        return Cow::Borrowed(raw);
    }
    let decoded: Cow<'_, [u8]> = percent_decode_str(raw).into();
    Cow::Owned(percent_encode(&decoded, ENCODE).to_string())
}

pub(crate) fn write_canonical_query<S: Sink>(
    out: &mut S,
    raw_query: &str,
    exclude_signature: bool,
) {
    if raw_query.is_empty() {
        return;
    }
    let mut pairs: Vec<(Cow<'_, str>, Cow<'_, str>)> = Vec::new();
    for part in raw_query.split('&') {
        if part.is_empty() {
            continue;
        }
        let (name, value) = part.split_once('=').unwrap_or((part, ""));
        let name = canonical_component(name);
        if exclude_signature && name == "X-Amz-Signature" {
            continue;
        }
        pairs.push((name, canonical_component(value)));
    }
    // Byte order of the encoded forms: name first, then value for repeated names.
    pairs.sort_unstable();
    for (i, (name, value)) in pairs.iter().enumerate() {
        if i > 0 {
            out.put(b"&");
        }
        out.put(name.as_bytes());
        out.put(b"=");
        out.put(value.as_bytes());
    }
}

/// The canonical query string of `raw_query` (the part after `?`, as received).
///
/// With `exclude_signature` (presigned URLs) the `X-Amz-Signature` parameter
/// is left out, since it cannot sign itself.
pub fn canonical_query_string(raw_query: &str, exclude_signature: bool) -> String {
    let mut out = Vec::with_capacity(raw_query.len() + 16);
    write_canonical_query(&mut out, raw_query, exclude_signature);
    into_string(out)
}

/// Writes `value` trimmed, with every run of spaces and tabs turned into one space.
fn write_header_value<S: Sink>(out: &mut S, value: &[u8]) {
    let is_ws = |b: &u8| *b == b' ' || *b == b'\t';
    let start = value.iter().position(|b| !is_ws(b)).unwrap_or(value.len());
    let end = value
        .iter()
        .rposition(|b| !is_ws(b))
        .map_or(start, |p| p + 1);
    let value = &value[start..end];
    // Write maximal runs without whitespace in one go rather than byte by byte.
    let mut run_start = 0;
    let mut i = 0;
    while i < value.len() {
        if is_ws(&value[i]) {
            out.put(&value[run_start..i]);
            out.put(b" ");
            while i < value.len() && is_ws(&value[i]) {
                i += 1;
            }
            run_start = i;
        } else {
            i += 1;
        }
    }
    out.put(&value[run_start..]);
}

/// One header value in canonical form: trimmed, inner runs of spaces collapsed.
pub fn canonical_header_value(value: &[u8]) -> String {
    let mut out = Vec::with_capacity(value.len());
    write_header_value(&mut out, value);
    into_string(out)
}

/// Writes the canonical header block. `authority` stands in for a missing
/// `host` header (HTTP/2 carries it as `:authority`, which `http` puts in the URI).
pub(crate) fn write_canonical_headers<S: Sink, H: AsRef<str>>(
    out: &mut S,
    headers: &HeaderMap,
    authority: Option<&str>,
    signed_headers: &[H],
) -> Result<(), SigV4Error> {
    for name in signed_headers {
        let name = name.as_ref();
        out.put(name.as_bytes());
        out.put(b":");
        let mut values = headers.get_all(name).iter();
        match values.next() {
            Some(first) => {
                write_header_value(out, first.as_bytes());
                for v in values {
                    out.put(b",");
                    write_header_value(out, v.as_bytes());
                }
            }
            None => match authority {
                Some(a) if name == "host" => write_header_value(out, a.as_bytes()),
                // The client signed a header we never received: the signature
                // cannot be reproduced, which is what AWS reports too.
                _ => return Err(SigV4Error::signature_does_not_match()),
            },
        }
        out.put(b"\n");
    }
    Ok(())
}

/// The canonical header block (each `name:value` line ends in `\n`).
///
/// Fails with `SignatureDoesNotMatch` if a signed header is absent.
pub fn canonical_headers<H: AsRef<str>>(
    headers: &HeaderMap,
    authority: Option<&str>,
    signed_headers: &[H],
) -> Result<String, SigV4Error> {
    let mut out = Vec::with_capacity(256);
    write_canonical_headers(&mut out, headers, authority, signed_headers)?;
    Ok(into_string(out))
}

/// The request pieces the canonical request is made of.
pub(crate) struct RequestView<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: &'a str,
    pub headers: &'a HeaderMap,
    pub authority: Option<&'a str>,
}

impl<'a> RequestView<'a> {
    pub(crate) fn from_parts(parts: &'a http::request::Parts) -> Self {
        RequestView {
            method: parts.method.as_str(),
            path: parts.uri.path(),
            query: parts.uri.query().unwrap_or(""),
            headers: &parts.headers,
            authority: parts.uri.authority().map(|a| a.as_str()),
        }
    }
}

pub(crate) fn write_canonical_request<S: Sink, H: AsRef<str>>(
    out: &mut S,
    req: &RequestView<'_>,
    signed_headers: &[H],
    payload_hash: &str,
    exclude_signature: bool,
) -> Result<(), SigV4Error> {
    out.put(req.method.as_bytes());
    out.put(b"\n");
    write_canonical_uri(out, req.path);
    out.put(b"\n");
    write_canonical_query(out, req.query, exclude_signature);
    out.put(b"\n");
    write_canonical_headers(out, req.headers, req.authority, signed_headers)?;
    out.put(b"\n");
    for (i, name) in signed_headers.iter().enumerate() {
        if i > 0 {
            out.put(b";");
        }
        out.put(name.as_ref().as_bytes());
    }
    out.put(b"\n");
    out.put(payload_hash.as_bytes());
    Ok(())
}

/// The canonical request of `parts`, signing `signed_headers` (lower-case, in
/// the order of the `SignedHeaders` list) with the given payload hash.
///
/// `exclude_signature` is for presigned URLs (see [`canonical_query_string`]).
/// Header bytes that are not UTF-8 are shown lossily; the verifier hashes the
/// raw bytes.
pub fn canonical_request<H: AsRef<str>>(
    parts: &http::request::Parts,
    signed_headers: &[H],
    payload_hash: &str,
    exclude_signature: bool,
) -> Result<String, SigV4Error> {
    let mut out = Vec::with_capacity(512);
    write_canonical_request(
        &mut out,
        &RequestView::from_parts(parts),
        signed_headers,
        payload_hash,
        exclude_signature,
    )?;
    Ok(into_string(out))
}

fn into_string(bytes: Vec<u8>) -> String {
    match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{HeaderValue, Request};

    #[test]
    fn uri_normalisation() {
        let cases = [
            ("", "/"),
            ("/", "/"),
            ("//", "/"),
            ("/example/..", "/"),
            ("/example1/example2/../..", "/"),
            ("/./", "/"),
            ("/./example", "/example"),
            ("//example//", "/example/"),
            ("/a/b/../c", "/a/c"),
            ("/a/b/..", "/a"),
            ("/../../a", "/a"),
            ("/a/./b/", "/a/b/"),
            ("/example/$delete", "/example/%24delete"),
        ];
        for (input, want) in cases {
            assert_eq!(canonical_uri(input), want, "{input}");
        }
    }

    #[test]
    fn uri_encodes_segments_twice() {
        // The wire path is already encoded once; AWS wants it encoded again.
        assert_eq!(canonical_uri("/example%20space/"), "/example%2520space/");
        assert_eq!(canonical_uri("/%E1%88%B4"), "/%25E1%2588%25B4");
        // Raw characters (as AWS's test suite feeds them) are encoded once.
        assert_eq!(canonical_uri("/example space/"), "/example%20space/");
        assert_eq!(canonical_uri("/ሴ"), "/%E1%88%B4");
        assert_eq!(canonical_uri("/-._~az09"), "/-._~az09");
    }

    #[test]
    fn query_sorting_and_encoding() {
        let cases = [
            ("", ""),
            ("Param2=value2&Param1=value1", "Param1=value1&Param2=value2"),
            ("Param1=value2&Param1=Value1", "Param1=Value1&Param1=value2"),
            ("Param1=value1", "Param1=value1"),
            ("Param1", "Param1="),
            ("b=&a", "a=&b="),
            (
                "Param-3=Value3&Param=Value2&%E1%88%B4=Value1",
                "%E1%88%B4=Value1&Param=Value2&Param-3=Value3",
            ),
            ("ሴ=bar", "%E1%88%B4=bar"),
            // lower-case hex and over-encoded unreserved characters normalise
            ("a=%2f%41", "a=%2FA"),
            // '+' is a literal plus in SigV4, not a space
            ("a=b+c&a=b%20c", "a=b%20c&a=b%2Bc"),
            ("a=1&&b=2", "a=1&b=2"),
            ("k=%", "k=%25"),
        ];
        for (input, want) in cases {
            assert_eq!(canonical_query_string(input, false), want, "{input}");
        }
    }

    #[test]
    fn query_excludes_signature_only_when_asked() {
        let q = "X-Amz-Signature=abc&Action=Describe&X-Amz-Date=20150830T123600Z";
        assert_eq!(
            canonical_query_string(q, true),
            "Action=Describe&X-Amz-Date=20150830T123600Z"
        );
        assert_eq!(
            canonical_query_string(q, false),
            "Action=Describe&X-Amz-Date=20150830T123600Z&X-Amz-Signature=abc"
        );
    }

    #[test]
    fn header_values() {
        assert_eq!(canonical_header_value(b"  value1 "), "value1");
        assert_eq!(canonical_header_value(b"\"a   b   c\""), "\"a b c\"");
        assert_eq!(canonical_header_value(b"a\t \tb"), "a b");
        assert_eq!(canonical_header_value(b"   "), "");
        assert_eq!(canonical_header_value(b""), "");
        assert_eq!(canonical_header_value(b"x"), "x");
    }

    #[test]
    fn headers_join_repeated_values_in_order() {
        let mut h = HeaderMap::new();
        h.insert("host", HeaderValue::from_static("example.amazonaws.com"));
        for v in ["value4", " value1", "value3 ", "value2"] {
            h.append("my-header1", HeaderValue::from_static(v));
        }
        let got = canonical_headers(&h, None, &["host", "my-header1"]).unwrap();
        assert_eq!(
            got,
            "host:example.amazonaws.com\nmy-header1:value4,value1,value3,value2\n"
        );
    }

    #[test]
    fn host_falls_back_to_authority() {
        let h = HeaderMap::new();
        assert_eq!(
            canonical_headers(&h, Some("ec2.local:8773"), &["host"]).unwrap(),
            "host:ec2.local:8773\n"
        );
        let err = canonical_headers(&h, None, &["host"]).unwrap_err();
        assert_eq!(err.kind, crate::ErrorKind::SignatureDoesNotMatch);
        let err = canonical_headers(&h, Some("a"), &["host", "x-missing"]).unwrap_err();
        assert_eq!(err.kind, crate::ErrorKind::SignatureDoesNotMatch);
    }

    #[test]
    fn whole_request() {
        let (parts, ()) = Request::get("/?Param2=value2&Param1=value1")
            .header("Host", "example.amazonaws.com")
            .header("X-Amz-Date", "20150830T123600Z")
            .body(())
            .unwrap()
            .into_parts();
        let creq =
            canonical_request(&parts, &["host", "x-amz-date"], crate::EMPTY_SHA256, false).unwrap();
        assert_eq!(
            creq,
            "GET\n/\nParam1=value1&Param2=value2\nhost:example.amazonaws.com\n\
             x-amz-date:20150830T123600Z\n\nhost;x-amz-date\n\
             e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
