//! The HTTP/1.1 front end: connections, the access rules in front of the metadata tree, and the
//! IP TTL of token responses.
//!
//! Rules, in the order they apply to each request:
//! 1. The caller is the instance whose private address is the connection's source address. A
//!    source that is no instance is answered exactly as an instance whose endpoint is disabled
//!    (`403 - Forbidden`), so the answer reveals nothing, not even whether the address is known.
//!    Clients then stop quickly: cloud-init's EC2 datasource reads a 403 on the token `PUT` as
//!    "IMDS's HTTP endpoint is disabled" and gives up without retrying, botocore's
//!    `IMDSFetcher._fetch_metadata_token` returns no token on 403/404/405.
//! 2. `HttpEndpoint=disabled`: every request is `403 - Forbidden` (AWS knowledge center,
//!    "troubleshoot instance metadata": 403 "if the request isn't allowed or IMDS is turned off").
//!    (Refusing the connection instead is impossible per instance on a shared listener.)
//! 3. `/latest/api/token` takes `PUT` only (`405` otherwise). A `PUT` carrying `X-Forwarded-For`
//!    is refused with 403: IMDSv2 issues no token to a request that went through a proxy (AWS
//!    security blog introducing IMDSv2). The TTL header must be 1..=21600 (`400 - Bad Request`
//!    otherwise). The answer is the token as `text/plain` with
//!    `X-Aws-Ec2-Metadata-Token-Ttl-Seconds` (the AWS SDK for Rust fails without it), and its IP
//!    packets leave with TTL = the instance's `HttpPutResponseHopLimit`.
//! 4. Reads are `GET` or `HEAD` (`405` otherwise). A token that is sent must be valid for this
//!    instance and unexpired (`401 - Unauthorized` otherwise, even with `HttpTokens=optional`);
//!    with `HttpTokens=required` a read without one is 401.
//! 5. The metadata tree answers, or `404 - Not Found`.
//!
//! The 400, 401 and 404 bodies are EC2's XHTML pages as AWS's own metadata mock
//! (`aws/amazon-ec2-metadata-mock`) reproduces them; 403 and 405 follow the same layout.
//!
//! Neither the token nor the user data ever reaches a log line.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use gureum_serve::{Bounded, Limits};
use http::header::{HeaderName, HeaderValue, ALLOW, CONTENT_TYPE, SERVER};
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

use crate::routes::{self, Body, TOKEN_PATH};
use crate::token::{parse_token_ttl, TokenError, TokenKey};
use crate::{HttpEndpoint, HttpTokens, InstanceMetadata, MetadataSource};

const TOKEN: HeaderName = HeaderName::from_static("x-aws-ec2-metadata-token");
const TOKEN_TTL: HeaderName = HeaderName::from_static("x-aws-ec2-metadata-token-ttl-seconds");
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

const TEXT_PLAIN: HeaderValue = HeaderValue::from_static("text/plain");
const TEXT_HTML: HeaderValue = HeaderValue::from_static("text/html");
const OCTET_STREAM: HeaderValue = HeaderValue::from_static("application/octet-stream");
/// What EC2's metadata service calls itself.
const SERVER_NAME: HeaderValue = HeaderValue::from_static("EC2ws");

/// EC2's 404 body, byte for byte as AWS's own metadata mock (`amazon-ec2-metadata-mock`,
/// `pkg/server/httpserver.go`) reproduces it.
const NOT_FOUND_BODY: &str = "<?xml version=\"1.0\" encoding=\"iso-8859-1\"?>\n\
<!DOCTYPE html PUBLIC \"-//W3C//DTD XHTML 1.0 Transitional//EN\"\n\
\t\"http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd\">\n\
<html xmlns=\"http://www.w3.org/1999/xhtml\" xml:lang=\"en\" lang=\"en\">\n \
<head>\n  <title>404 - Not Found</title>\n </head>\n <body>\n  <h1>404 - Not Found</h1>\n \
</body>\n</html>";

/// EC2's IMDSv2 error bodies (400 and 401 as in AWS's mock; 403 and 405 in the same layout).
macro_rules! v2_error_body {
    ($title:literal) => {
        concat!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n",
            "<!DOCTYPE html PUBLIC \"-//W3C//DTD XHTML 1.0 Transitional//EN\" ",
            "\"http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd\">\n",
            "<html xmlns=\"http://www.w3.org/1999/xhtml\" xml:lang=\"en\" lang=\"en\">\n",
            "   <head>\n      <title>",
            $title,
            "</title>\n   </head>\n   <body>\n      <h1>",
            $title,
            "</h1>\n   </body>\n</html>"
        )
    };
}
const BAD_REQUEST_BODY: &str = v2_error_body!("400 - Bad Request");
const UNAUTHORIZED_BODY: &str = v2_error_body!("401 - Unauthorized");
const FORBIDDEN_BODY: &str = v2_error_body!("403 - Forbidden");
const METHOD_NOT_ALLOWED_BODY: &str = v2_error_body!("405 - Method Not Allowed");

/// The metadata service's bounds: an instance's clients make short, small requests, so 128
/// connections per instance is ample; past it its own longest-idle connection is closed.
fn default_limits() -> Limits {
    Limits {
        max_per_peer: 128,
        shutdown_grace: Duration::from_secs(2),
        ..Limits::default()
    }
}

/// Called with `(peer, ttl)` after a connection's IP TTL was set for a token response, `ttl`
/// read back from the socket: a hook for tests and diagnostics.
pub type TtlObserver = Arc<dyn Fn(SocketAddr, u32) + Send + Sync>;

type Clock = Arc<dyn Fn() -> SystemTime + Send + Sync>;

/// The metadata service. Build it with [`new`](Self::new), then [`serve`](Self::serve) a listener.
pub struct ImdsServer {
    source: Arc<dyn MetadataSource>,
    clock: Clock,
    key: TokenKey,
    ttl_observer: Option<TtlObserver>,
    limits: Limits,
}

impl ImdsServer {
    /// A server answering from `source`, telling time (token expiry) with `clock`
    /// (`std::time::SystemTime::now` in production). Tokens are signed with a fresh random
    /// secret, so they stop working when the server is dropped; see
    /// [`with_token_secret`](Self::with_token_secret).
    pub fn new(
        source: Arc<dyn MetadataSource>,
        clock: impl Fn() -> SystemTime + Send + Sync + 'static,
    ) -> Self {
        Self {
            source,
            clock: Arc::new(clock),
            key: TokenKey::new(rand::random()),
            ttl_observer: None,
            limits: default_limits(),
        }
    }

    /// Signs tokens with `secret` instead of a random one, so that tokens survive a restart of
    /// the server (the binary would keep the secret in its data directory, mode 0600).
    pub fn with_token_secret(mut self, secret: [u8; 32]) -> Self {
        self.key = TokenKey::new(secret);
        self
    }

    /// Reports every IP TTL set for a token response (see [`TtlObserver`]).
    pub fn with_ttl_observer(mut self, observer: TtlObserver) -> Self {
        self.ttl_observer = Some(observer);
        self
    }

    /// Bounds other than the defaults (see [`gureum_serve::Limits`]; the metadata service's
    /// default allows 128 connections per instance).
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Serves HTTP/1.1 (keep-alive) on an already-bound `listener` until `shutdown` completes
    /// (then lets open connections finish for up to two seconds) or the returned future is
    /// dropped (which closes every connection at once), within the server's connection
    /// bounds (`gureum-serve`: header-read and idle timeouts, caps in total and per source
    /// address that close the longest-idle connection first, so one instance cannot exhaust
    /// the host's file descriptors or the others' access).
    ///
    /// Accept errors (out of file descriptors, a connection reset before it was accepted) are
    /// logged and retried, never fatal; the only error is the listener's address being
    /// unreadable.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> io::Result<()> {
        let local = listener.local_addr()?;
        let shared = Arc::new(Shared {
            source: self.source,
            clock: self.clock,
            key: self.key,
        });
        let mut http = http1::Builder::new();
        http.keep_alive(true)
            // EC2 writes `X-Aws-Ec2-Metadata-Token-Ttl-Seconds`; naive clients match on case.
            .title_case_headers(true);
        let observer = self.ttl_observer;
        tracing::info!(%local, "imds: serving");
        let make = move |stream: TcpStream, peer: SocketAddr| {
            let conn = Arc::new(Conn {
                peer_v4: peer_ipv4(peer),
                local: stream.local_addr().unwrap_or(local),
                ttl: AtomicU8::new(0),
            });
            let io = TtlStream {
                inner: stream,
                conn: conn.clone(),
                applied: 0,
                peer,
                observer: observer.clone(),
            };
            let shared = shared.clone();
            let service = service_fn(move |req| {
                let shared = shared.clone();
                let conn = conn.clone();
                // Each request runs as its own task, so a panic in it (a bug) answers 500
                // to that request instead of dropping the connection; the server goes on.
                async move {
                    let answer =
                        tokio::spawn(async move { handle(&shared, &conn, req).await }).await;
                    Ok::<_, Infallible>(answer.unwrap_or_else(|e| {
                        tracing::error!(error = %e, "imds: a request handler panicked");
                        error(StatusCode::INTERNAL_SERVER_ERROR)
                    }))
                }
            });
            (io, service)
        };
        let served = Bounded::new(self.limits)
            .serve(listener, http, make, shutdown)
            .await;
        tracing::info!(%local, "imds: stopped");
        served
    }
}

/// What every connection shares.
struct Shared {
    source: Arc<dyn MetadataSource>,
    clock: Clock,
    key: TokenKey,
}

/// One connection's identity and its IP TTL request.
struct Conn {
    /// The source address, if IPv4 (or IPv4-mapped IPv6).
    peer_v4: Option<Ipv4Addr>,
    local: SocketAddr,
    /// The IP TTL the connection's next writes must carry; 0 leaves the system default.
    ttl: AtomicU8,
}

fn peer_ipv4(peer: SocketAddr) -> Option<Ipv4Addr> {
    match peer {
        SocketAddr::V4(v4) => Some(*v4.ip()),
        SocketAddr::V6(v6) => v6.ip().to_ipv4_mapped(),
    }
}

/// The socket, setting the IP TTL the handler asked for before the bytes that need it are
/// written. hyper writes a response only after the service returned it, so a TTL stored by the
/// handler applies to the whole token response. It then stays for the rest of the connection:
/// restoring the default could let a retransmission of the token travel further.
struct TtlStream {
    inner: TcpStream,
    conn: Arc<Conn>,
    applied: u8,
    peer: SocketAddr,
    observer: Option<TtlObserver>,
}

impl TtlStream {
    fn apply_ttl(&mut self) -> io::Result<()> {
        let want = self.conn.ttl.load(Ordering::Relaxed);
        if want != 0 && want != self.applied {
            // A failure fails the write: the token must not leave with a longer reach.
            self.inner.set_ttl(u32::from(want))?;
            self.applied = want;
            if let Some(observer) = &self.observer {
                observer(self.peer, self.inner.ttl()?);
            }
        }
        Ok(())
    }
}

impl AsyncRead for TtlStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for TtlStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if let Err(err) = self.apply_ttl() {
            return Poll::Ready(Err(err));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if let Err(err) = self.apply_ttl() {
            return Poll::Ready(Err(err));
        }
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

async fn handle<B>(shared: &Shared, conn: &Conn, req: Request<B>) -> Response<Full<Bytes>> {
    let path = req.uri().path();
    let md = match conn.peer_v4 {
        Some(peer) => {
            shared
                .source
                .instance_for_connection(peer, conn.local)
                .await
        }
        None => None,
    };
    let Some(md) = md else {
        tracing::debug!(
            peer = ?conn.peer_v4,
            method = %req.method(),
            path,
            status = 403,
            "imds: request from no instance"
        );
        return error(StatusCode::FORBIDDEN);
    };
    let now_ms = unix_ms((shared.clock)());
    let reply = respond(&md, &req, now_ms, &shared.key, rand::random);
    if let Some(ttl) = reply.ip_ttl {
        conn.ttl.store(ttl, Ordering::Relaxed);
    }
    // Debug, not info: a guest decides how often this runs. Never the token, never the body.
    tracing::debug!(
        instance_id = %md.instance_id,
        method = %req.method(),
        path,
        status = reply.response.status().as_u16(),
        "imds"
    );
    reply.response
}

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A response, and the IP TTL its packets must carry (token responses only).
struct Reply {
    response: Response<Full<Bytes>>,
    ip_ttl: Option<u8>,
}

impl From<Response<Full<Bytes>>> for Reply {
    fn from(response: Response<Full<Bytes>>) -> Self {
        Self {
            response,
            ip_ttl: None,
        }
    }
}

/// The access rules and the tree, for an identified instance (rules 2–5 of the module doc).
fn respond<B>(
    md: &InstanceMetadata,
    req: &Request<B>,
    now_ms: u64,
    key: &TokenKey,
    nonce: impl FnOnce() -> [u8; 6],
) -> Reply {
    match md.http_endpoint {
        HttpEndpoint::Disabled => return error(StatusCode::FORBIDDEN).into(),
        HttpEndpoint::Enabled => {}
    }
    let path = req.uri().path();
    let headers = req.headers();

    if path == TOKEN_PATH {
        if req.method() != Method::PUT {
            return method_not_allowed("PUT").into();
        }
        if headers.contains_key(X_FORWARDED_FOR) {
            return error(StatusCode::FORBIDDEN).into();
        }
        let mut values = headers.get_all(TOKEN_TTL).iter();
        let ttl = match (values.next(), values.next()) {
            (Some(value), None) => parse_token_ttl(value.as_bytes()),
            _ => None,
        };
        let Some(ttl) = ttl else {
            return error(StatusCode::BAD_REQUEST).into();
        };
        let expires_ms = now_ms.saturating_add(u64::from(ttl) * 1000);
        let token = key.mint(&md.instance_id, expires_ms, nonce());
        let mut response = ok(TEXT_PLAIN, Bytes::from(token));
        response
            .headers_mut()
            .insert(TOKEN_TTL, HeaderValue::from(ttl));
        return Reply {
            response,
            // EC2's range is 1..=64; 0 would mean "system default", so never send it.
            ip_ttl: Some(md.hop_limit.max(1)),
        };
    }

    if req.method() != Method::GET && req.method() != Method::HEAD {
        return method_not_allowed("GET, HEAD").into();
    }
    let mut values = headers.get_all(TOKEN).iter();
    let remaining = match (values.next(), values.next()) {
        (None, _) => match md.http_tokens {
            HttpTokens::Optional => None,
            HttpTokens::Required => return error(StatusCode::UNAUTHORIZED).into(),
        },
        (Some(token), None) => match key.verify(token.as_bytes(), &md.instance_id, now_ms) {
            Ok(expires_ms) => Some((expires_ms - now_ms).div_ceil(1000)),
            Err(TokenError::Malformed | TokenError::BadTag | TokenError::Expired) => {
                return error(StatusCode::UNAUTHORIZED).into()
            }
        },
        (Some(_), Some(_)) => return error(StatusCode::UNAUTHORIZED).into(),
    };

    let mut response = match routes::resolve(md, path) {
        Some(Body::Text(text)) => ok(TEXT_PLAIN, Bytes::from(text.into_owned())),
        Some(Body::Binary(bytes)) => ok(OCTET_STREAM, Bytes::copy_from_slice(bytes)),
        None => error(StatusCode::NOT_FOUND),
    };
    if let Some(remaining) = remaining {
        // EC2 tells a token's holder how long it has left on every answer.
        response
            .headers_mut()
            .insert(TOKEN_TTL, HeaderValue::from(remaining));
    }
    response.into()
}

fn ok(content_type: HeaderValue, body: Bytes) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body));
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, content_type);
    headers.insert(SERVER, SERVER_NAME);
    response
}

fn error(status: StatusCode) -> Response<Full<Bytes>> {
    let body = match status {
        StatusCode::BAD_REQUEST => BAD_REQUEST_BODY,
        StatusCode::UNAUTHORIZED => UNAUTHORIZED_BODY,
        StatusCode::FORBIDDEN => FORBIDDEN_BODY,
        StatusCode::METHOD_NOT_ALLOWED => METHOD_NOT_ALLOWED_BODY,
        _ => NOT_FOUND_BODY,
    };
    let mut response = ok(TEXT_HTML, Bytes::from_static(body.as_bytes()));
    *response.status_mut() = status;
    response
}

fn method_not_allowed(allow: &'static str) -> Response<Full<Bytes>> {
    let mut response = error(StatusCode::METHOD_NOT_ALLOWED);
    response
        .headers_mut()
        .insert(ALLOW, HeaderValue::from_static(allow));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routes::tests::sample;
    use http_body_util::BodyExt;

    const NOW: u64 = 1_700_000_000_000;

    fn key() -> TokenKey {
        TokenKey::new([3; 32])
    }

    fn req(method: &str, path: &str, headers: &[(&str, &str)]) -> Request<()> {
        let mut builder = Request::builder().method(method).uri(path);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(()).unwrap()
    }

    fn run(md: &InstanceMetadata, req: &Request<()>, now_ms: u64) -> (u16, Option<u8>, String) {
        let reply = respond(md, req, now_ms, &key(), || [5; 6]);
        let status = reply.response.status().as_u16();
        let body = futures_body(reply.response);
        (status, reply.ip_ttl, body)
    }

    fn futures_body(response: Response<Full<Bytes>>) -> String {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let bytes = rt
            .block_on(response.into_body().collect())
            .unwrap()
            .to_bytes();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    fn token(md: &InstanceMetadata, ttl: &str) -> String {
        let (status, hop, body) = run(
            md,
            &req(
                "PUT",
                TOKEN_PATH,
                &[("x-aws-ec2-metadata-token-ttl-seconds", ttl)],
            ),
            NOW,
        );
        assert_eq!((status, hop), (200, Some(md.hop_limit)));
        body
    }

    #[test]
    fn token_put_validates_ttl() {
        let md = sample();
        assert_eq!(token(&md, "60").len(), 52);
        for bad in ["0", "21601", "", "abc", "-5"] {
            let (status, hop, body) = run(
                &md,
                &req(
                    "PUT",
                    TOKEN_PATH,
                    &[("x-aws-ec2-metadata-token-ttl-seconds", bad)],
                ),
                NOW,
            );
            assert_eq!((status, hop), (400, None), "{bad:?}");
            assert!(body.contains("<h1>400 - Bad Request</h1>"));
        }
        let (status, ..) = run(&md, &req("PUT", TOKEN_PATH, &[]), NOW);
        assert_eq!(status, 400);
        let (status, ..) = run(
            &md,
            &req(
                "PUT",
                TOKEN_PATH,
                &[
                    ("x-aws-ec2-metadata-token-ttl-seconds", "60"),
                    ("x-aws-ec2-metadata-token-ttl-seconds", "60"),
                ],
            ),
            NOW,
        );
        assert_eq!(status, 400);
    }

    #[test]
    fn token_put_response_headers() {
        let md = sample();
        let reply = respond(
            &md,
            &req(
                "PUT",
                TOKEN_PATH,
                &[("X-aws-ec2-metadata-token-ttl-seconds", "21600")],
            ),
            NOW,
            &key(),
            || [0; 6],
        );
        let headers = reply.response.headers();
        assert_eq!(headers[CONTENT_TYPE], "text/plain");
        assert_eq!(headers[TOKEN_TTL], "21600");
        assert_eq!(headers[SERVER], "EC2ws");
    }

    #[test]
    fn forwarded_put_is_forbidden() {
        let md = sample();
        let (status, hop, body) = run(
            &md,
            &req(
                "PUT",
                TOKEN_PATH,
                &[
                    ("x-aws-ec2-metadata-token-ttl-seconds", "60"),
                    ("X-Forwarded-For", "203.0.113.9"),
                ],
            ),
            NOW,
        );
        assert_eq!((status, hop), (403, None));
        assert!(body.contains("403 - Forbidden"));
    }

    #[test]
    fn token_path_is_put_only_and_reads_are_get_or_head() {
        let md = sample();
        for method in ["GET", "POST", "DELETE", "HEAD"] {
            let (status, ..) = run(&md, &req(method, TOKEN_PATH, &[]), NOW);
            assert_eq!(status, 405, "{method}");
        }
        for method in ["PUT", "POST", "DELETE", "PATCH"] {
            let (status, ..) = run(&md, &req(method, "/latest/meta-data/", &[]), NOW);
            assert_eq!(status, 405, "{method}");
        }
        let (status, ..) = run(&md, &req("HEAD", "/latest/meta-data/", &[]), NOW);
        assert_eq!(status, 200);
    }

    #[test]
    fn optional_tokens_allow_v1_but_check_a_sent_token() {
        let md = sample();
        let (status, _, body) = run(&md, &req("GET", "/latest/meta-data/instance-id", &[]), NOW);
        assert_eq!((status, body.as_str()), (200, "i-0123456789abcdef0"));

        let t = token(&md, "60");
        let good = req(
            "GET",
            "/latest/meta-data/instance-id",
            &[("x-aws-ec2-metadata-token", &t)],
        );
        assert_eq!(run(&md, &good, NOW).0, 200);
        assert_eq!(run(&md, &good, NOW + 59_999).0, 200);
        assert_eq!(run(&md, &good, NOW + 60_000).0, 401);

        let bad = req(
            "GET",
            "/latest/meta-data/instance-id",
            &[("x-aws-ec2-metadata-token", "not-a-token")],
        );
        let (status, _, body) = run(&md, &bad, NOW);
        assert_eq!(status, 401);
        assert!(body.contains("<h1>401 - Unauthorized</h1>"));
    }

    #[test]
    fn remaining_ttl_is_reported_with_token_reads() {
        let md = sample();
        let t = token(&md, "60");
        let read = req(
            "GET",
            "/latest/meta-data/",
            &[("x-aws-ec2-metadata-token", &t)],
        );
        let reply = respond(&md, &read, NOW + 10_500, &key(), || [0; 6]);
        assert_eq!(reply.response.headers()[TOKEN_TTL], "50");
        let v1 = respond(
            &md,
            &req("GET", "/latest/meta-data/", &[]),
            NOW,
            &key(),
            || [0; 6],
        );
        assert!(v1.response.headers().get(TOKEN_TTL).is_none());
    }

    #[test]
    fn required_tokens_refuse_v1() {
        let md = InstanceMetadata {
            http_tokens: HttpTokens::Required,
            ..sample()
        };
        for path in ["/latest/meta-data/instance-id", "/", "/latest/nope"] {
            assert_eq!(run(&md, &req("GET", path, &[]), NOW).0, 401, "{path}");
        }
        let t = token(&md, "5");
        let with = |path| req("GET", path, &[("x-aws-ec2-metadata-token", &t)]);
        assert_eq!(run(&md, &with("/latest/meta-data/instance-id"), NOW).0, 200);
        assert_eq!(run(&md, &with("/latest/nope"), NOW).0, 404);
        assert_eq!(
            run(&md, &with("/latest/meta-data/instance-id"), NOW + 5_000).0,
            401
        );
    }

    #[test]
    fn token_of_another_instance_is_refused() {
        let md = sample();
        let t = token(&md, "60");
        let other = InstanceMetadata {
            instance_id: "i-0fedcba9876543210".into(),
            ..sample()
        };
        let read = req(
            "GET",
            "/latest/meta-data/",
            &[("x-aws-ec2-metadata-token", &t)],
        );
        assert_eq!(run(&other, &read, NOW).0, 401);
    }

    #[test]
    fn disabled_endpoint_forbids_everything() {
        let md = InstanceMetadata {
            http_endpoint: HttpEndpoint::Disabled,
            ..sample()
        };
        for (method, path, headers) in [
            ("GET", "/latest/meta-data/", &[][..]),
            ("GET", "/", &[][..]),
            (
                "PUT",
                TOKEN_PATH,
                &[("x-aws-ec2-metadata-token-ttl-seconds", "60")][..],
            ),
            ("GET", "/nope", &[][..]),
        ] {
            let (status, hop, body) = run(&md, &req(method, path, headers), NOW);
            assert_eq!((status, hop), (403, None), "{method} {path}");
            assert_eq!(body, FORBIDDEN_BODY);
        }
    }

    #[test]
    fn content_types() {
        let md = sample();
        let ct = |path: &str| {
            respond(&md, &req("GET", path, &[]), NOW, &key(), || [0; 6])
                .response
                .headers()[CONTENT_TYPE]
                .clone()
        };
        assert_eq!(ct("/latest/meta-data/"), "text/plain");
        assert_eq!(ct("/latest/user-data"), "application/octet-stream");
        assert_eq!(
            ct("/latest/dynamic/instance-identity/document"),
            "text/plain"
        );
        assert_eq!(ct("/latest/nope"), "text/html");
    }

    #[test]
    fn error_bodies_are_golden() {
        assert_eq!(
            NOT_FOUND_BODY,
            r#"<?xml version="1.0" encoding="iso-8859-1"?>
<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN"
	"http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">
<html xmlns="http://www.w3.org/1999/xhtml" xml:lang="en" lang="en">
 <head>
  <title>404 - Not Found</title>
 </head>
 <body>
  <h1>404 - Not Found</h1>
 </body>
</html>"#
        );
        assert_eq!(
            UNAUTHORIZED_BODY,
            r#"<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN" "http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">
<html xmlns="http://www.w3.org/1999/xhtml" xml:lang="en" lang="en">
   <head>
      <title>401 - Unauthorized</title>
   </head>
   <body>
      <h1>401 - Unauthorized</h1>
   </body>
</html>"#
        );
    }

    #[test]
    fn callers_are_ipv4_or_ipv4_mapped() {
        let v4: SocketAddr = "172.31.16.5:40000".parse().unwrap();
        let mapped: SocketAddr = "[::ffff:172.31.16.5]:40000".parse().unwrap();
        let v6: SocketAddr = "[fd00::5]:40000".parse().unwrap();
        assert_eq!(peer_ipv4(v4), Some(Ipv4Addr::new(172, 31, 16, 5)));
        assert_eq!(peer_ipv4(mapped), Some(Ipv4Addr::new(172, 31, 16, 5)));
        assert_eq!(peer_ipv4(v6), None);
    }

    #[test]
    fn hop_limit_zero_is_never_sent() {
        let md = InstanceMetadata {
            hop_limit: 0,
            ..sample()
        };
        let reply = respond(
            &md,
            &req(
                "PUT",
                TOKEN_PATH,
                &[("x-aws-ec2-metadata-token-ttl-seconds", "60")],
            ),
            NOW,
            &key(),
            || [0; 6],
        );
        assert_eq!(reply.ip_ttl, Some(1));
    }
}
