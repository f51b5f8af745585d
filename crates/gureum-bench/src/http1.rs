//! A minimal HTTP/1.1 client for load generation: one persistent keep-alive connection over
//! tokio's `TcpStream`, one request in flight at a time, responses framed by
//! `Content-Length`, chunked transfer coding or (HTTP/1.0 style) the end of the connection.
//!
//! It allocates nothing per request once its buffers have grown: the response body is
//! handed back as a slice of the read buffer, released when the next request is sent.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};

use anyhow::Context;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Split `http://HOST:PORT/PATH` into the socket address, the `Host` header value and the
/// path (default `/`).
pub fn parse_url(url: &str) -> anyhow::Result<(SocketAddr, String, String)> {
    let rest = url
        .strip_prefix("http://")
        .with_context(|| format!("{url}: only http:// URLs are supported"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    anyhow::ensure!(!authority.is_empty(), "{url}: no host");
    let with_port = if authority
        .rsplit_once(':')
        .is_some_and(|(_, p)| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
    {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    let addr = with_port
        .to_socket_addrs()
        .with_context(|| format!("resolving {authority}"))?
        .next()
        .with_context(|| format!("{authority} has no address"))?;
    Ok((addr, authority.to_string(), path.to_string()))
}

/// What the status line and headers said.
struct Head {
    status: u16,
    len: usize,
    content_length: Option<usize>,
    chunked: bool,
    keep_alive: bool,
}

fn invalid(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

fn parse_head(buf: &[u8]) -> io::Result<Option<Head>> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut resp = httparse::Response::new(&mut headers);
    let len = match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(invalid(format!("bad response head: {e}"))),
    };
    let status = resp.code.unwrap_or(0);
    let http10 = resp.version == Some(0);
    let mut content_length = None;
    let mut chunked = false;
    let mut keep_alive = !http10;
    for h in resp.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            let v = std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.trim().parse().ok())
                .ok_or_else(|| invalid("bad content-length"))?;
            content_length = Some(v);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = h
                .value
                .split(|&b| b == b',')
                .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        } else if h.name.eq_ignore_ascii_case("connection") {
            for t in h.value.split(|&b| b == b',').map(<[u8]>::trim_ascii) {
                if t.eq_ignore_ascii_case(b"close") {
                    keep_alive = false;
                } else if t.eq_ignore_ascii_case(b"keep-alive") {
                    keep_alive = true;
                }
            }
        }
    }
    Ok(Some(Head {
        status,
        len,
        content_length,
        chunked,
        keep_alive,
    }))
}

/// One response: its status, whether the connection may be reused, and its body.
pub struct Response<'a> {
    pub status: u16,
    pub keep_alive: bool,
    pub body: &'a [u8],
}

/// A keep-alive connection.
pub struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    /// Bytes of `buf` that belong to the last response.
    consumed: usize,
    /// Decoded body of a chunked response.
    dechunked: Vec<u8>,
}

impl Conn {
    pub async fn connect(addr: SocketAddr) -> io::Result<Conn> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            stream,
            buf: Vec::with_capacity(64 * 1024),
            consumed: 0,
            dechunked: Vec::new(),
        })
    }

    /// Read more bytes into the buffer; `Ok(0)` at the end of the stream.
    async fn fill(&mut self) -> io::Result<usize> {
        if self.buf.capacity() - self.buf.len() < 16 * 1024 {
            self.buf.reserve(64 * 1024);
        }
        self.stream.read_buf(&mut self.buf).await
    }

    async fn fill_to(&mut self, len: usize) -> io::Result<()> {
        while self.buf.len() < len {
            if self.fill().await? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
        Ok(())
    }

    /// Send `request` (a complete HTTP/1.1 request) and read its response.
    pub async fn round_trip(&mut self, request: &[u8]) -> io::Result<Response<'_>> {
        self.buf.drain(..self.consumed);
        self.consumed = 0;
        self.stream.write_all(request).await?;
        let head = loop {
            if let Some(h) = parse_head(&self.buf)? {
                break h;
            }
            if self.fill().await? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        };
        if head.chunked {
            self.read_chunked(head.len).await?;
            return Ok(Response {
                status: head.status,
                keep_alive: head.keep_alive,
                body: &self.dechunked,
            });
        }
        let (end, keep_alive) = match head.content_length {
            Some(n) => {
                self.fill_to(head.len + n).await?;
                (head.len + n, head.keep_alive)
            }
            None if head.status == 204 || head.status == 304 || head.status < 200 => {
                (head.len, head.keep_alive)
            }
            None => {
                // Delimited by the end of the connection.
                while self.fill().await? > 0 {}
                (self.buf.len(), false)
            }
        };
        self.consumed = end;
        Ok(Response {
            status: head.status,
            keep_alive,
            body: &self.buf[head.len..end],
        })
    }

    async fn read_chunked(&mut self, mut pos: usize) -> io::Result<()> {
        self.dechunked.clear();
        loop {
            let line_end = loop {
                if let Some(i) = find_crlf(&self.buf[pos..]) {
                    break pos + i;
                }
                if self.fill().await? == 0 {
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
            };
            let line = &self.buf[pos..line_end];
            let hex = line.split(|&b| b == b';').next().unwrap_or_default();
            let size = std::str::from_utf8(hex)
                .ok()
                .and_then(|s| usize::from_str_radix(s.trim(), 16).ok())
                .ok_or_else(|| invalid("bad chunk size"))?;
            pos = line_end + 2;
            if size == 0 {
                // Trailers, up to an empty line.
                loop {
                    let end = loop {
                        if let Some(i) = find_crlf(&self.buf[pos..]) {
                            break pos + i;
                        }
                        if self.fill().await? == 0 {
                            return Err(io::ErrorKind::UnexpectedEof.into());
                        }
                    };
                    let empty = end == pos;
                    pos = end + 2;
                    if empty {
                        self.consumed = pos;
                        return Ok(());
                    }
                }
            }
            self.fill_to(pos + size + 2).await?;
            self.dechunked.extend_from_slice(&self.buf[pos..pos + size]);
            pos += size + 2;
        }
    }
}

fn find_crlf(b: &[u8]) -> Option<usize> {
    b.windows(2).position(|w| w == b"\r\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    #[test]
    fn urls() {
        let (a, h, p) = parse_url("http://127.0.0.1:8773").unwrap();
        assert_eq!(a.port(), 8773);
        assert_eq!(h, "127.0.0.1:8773");
        assert_eq!(p, "/");
        let (a, h, p) = parse_url("http://127.0.0.1/x/y").unwrap();
        assert_eq!(
            (a.port(), h.as_str(), p.as_str()),
            (80, "127.0.0.1", "/x/y")
        );
        assert!(parse_url("https://127.0.0.1/").is_err());
    }

    /// Serve `answers` in turn on one connection, each after reading one request head.
    async fn server(answers: Vec<&'static [u8]>) -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let mut buf = vec![0u8; 4096];
            for a in answers {
                let mut got = Vec::new();
                while find_crlf_crlf(&got).is_none() {
                    let n = s.read(&mut buf).await.unwrap();
                    got.extend_from_slice(&buf[..n]);
                }
                s.write_all(a).await.unwrap();
            }
        });
        addr
    }

    fn find_crlf_crlf(b: &[u8]) -> Option<usize> {
        b.windows(4).position(|w| w == b"\r\n\r\n")
    }

    #[tokio::test]
    async fn frames_length_chunked_and_close() {
        let addr = server(vec![
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
            b"HTTP/1.1 400 Bad\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n2\r\nde\r\n0\r\nT: 1\r\n\r\n",
            b"HTTP/1.0 200 OK\r\n\r\nuntil close",
        ])
        .await;
        let mut c = Conn::connect(addr).await.unwrap();
        let req = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        let r = c.round_trip(req).await.unwrap();
        assert_eq!((r.status, r.keep_alive, r.body), (200, true, &b"hello"[..]));
        let r = c.round_trip(req).await.unwrap();
        assert_eq!((r.status, r.keep_alive, r.body), (400, true, &b"abcde"[..]));
        let r = c.round_trip(req).await.unwrap();
        assert_eq!(
            (r.status, r.keep_alive, r.body),
            (200, false, &b"until close"[..])
        );
    }
}
