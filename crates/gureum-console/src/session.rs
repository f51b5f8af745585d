//! Sessions and CSRF. A session is a random 256-bit token in an `HttpOnly; SameSite=Strict`
//! cookie, mapped in memory to the signed-in account (a server restart signs everyone out).
//! Every session has its own CSRF token, which every form carries (`_csrf`) and every script
//! request sends (`X-CSRF-Token`); the sign-in form, before there is a session, uses a
//! double-submit token in its own cookie. Requests whose `Origin` is another site are refused
//! as well.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use rand::RngCore;
use subtle::ConstantTimeEq;

use crate::forms::FormData;
use crate::Console;

pub const SESSION_COOKIE: &str = "gureum_session";
pub const SIGNIN_COOKIE: &str = "gureum_signin";
/// A session unused for this long is forgotten.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(12 * 3600);
/// The largest form the console accepts (user data is at most 16 KiB, base64 more).
pub const MAX_FORM_BYTES: usize = 256 * 1024;

/// A signed-in user.
#[derive(Debug, Clone)]
pub struct Session {
    pub token: String,
    pub account_id: String,
    pub account_name: String,
    pub csrf: String,
}

/// A one-shot message shown on the next page (the result of a form post).
#[derive(Debug, Clone)]
pub struct Flash {
    pub ok: bool,
    pub message: String,
}

struct Entry {
    session: Session,
    last_seen: Instant,
    flash: Option<Flash>,
}

#[derive(Default)]
pub struct Sessions {
    map: Mutex<HashMap<String, Entry>>,
}

/// 32 random bytes from the OS, hex.
pub fn random_token() -> String {
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Constant-time string comparison (tokens, secrets).
pub fn ct_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// A cookie's value from the request's `Cookie` headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// `Set-Cookie` for a console cookie (the session, or the sign-in form's token).
pub fn set_cookie(name: &str, value: &str, max_age: Option<u64>) -> String {
    let mut c = format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict");
    if let Some(a) = max_age {
        c.push_str(&format!("; Max-Age={a}"));
    }
    c
}

impl Sessions {
    pub fn create(&self, account_id: &str, account_name: &str) -> Session {
        let s = Session {
            token: random_token(),
            account_id: account_id.to_string(),
            account_name: account_name.to_string(),
            csrf: random_token(),
        };
        let mut m = self.map.lock().expect("sessions poisoned");
        m.retain(|_, e| e.last_seen.elapsed() < IDLE_TIMEOUT);
        m.insert(
            s.token.clone(),
            Entry {
                session: s.clone(),
                last_seen: Instant::now(),
                flash: None,
            },
        );
        s
    }

    pub fn get(&self, token: &str) -> Option<Session> {
        let mut m = self.map.lock().expect("sessions poisoned");
        let e = m.get_mut(token)?;
        if e.last_seen.elapsed() >= IDLE_TIMEOUT {
            m.remove(token);
            return None;
        }
        e.last_seen = Instant::now();
        Some(e.session.clone())
    }

    pub fn remove(&self, token: &str) {
        self.map.lock().expect("sessions poisoned").remove(token);
    }

    pub fn flash(&self, token: &str, ok: bool, message: impl Into<String>) {
        if let Some(e) = self.map.lock().expect("sessions poisoned").get_mut(token) {
            e.flash = Some(Flash {
                ok,
                message: message.into(),
            });
        }
    }

    pub fn take_flash(&self, token: &str) -> Option<Flash> {
        self.map
            .lock()
            .expect("sessions poisoned")
            .get_mut(token)
            .and_then(|e| e.flash.take())
    }
}

/// Refusals: plain, short, and never a page with data on it.
pub fn refuse(status: StatusCode, why: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{why}\n"),
    )
        .into_response()
}

/// Whether a request's `Origin` (when the browser sent one) is this site.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let origin_host = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .unwrap_or("");
    !host.is_empty() && origin_host == host
}

/// The signed-in user of a page request. Signed out: a page is redirected to the sign-in
/// form, anything else is refused with 401.
pub struct Signed(pub Session);

impl FromRequestParts<Console> for Signed {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, c: &Console) -> Result<Self, Response> {
        if let Some(s) = cookie(&parts.headers, SESSION_COOKIE).and_then(|t| c.sessions().get(t)) {
            return Ok(Signed(s));
        }
        // A page (anything but the live stream and script requests) goes to the sign-in form.
        let wants_page = parts.method == Method::GET
            && parts.uri.path() != "/console/events"
            && !parts.headers.contains_key("x-requested-with");
        if wants_page {
            let next = parts
                .uri
                .path_and_query()
                .map(|p| p.as_str())
                .unwrap_or("/console");
            let next: String = form_urlencoded::byte_serialize(next.as_bytes()).collect();
            return Err(Redirect::to(&format!("/console/signin?next={next}")).into_response());
        }
        Err(refuse(
            StatusCode::UNAUTHORIZED,
            "signed out: sign in to the console first",
        ))
    }
}

/// A form post of a signed-in user whose CSRF token checked out.
pub struct Posted {
    pub session: Session,
    pub form: FormData,
    /// Sent by the console's script (`X-Requested-With: fetch`): answer JSON, not a redirect.
    pub json: bool,
}

impl FromRequest<Console> for Posted {
    type Rejection = Response;

    async fn from_request(req: Request, c: &Console) -> Result<Self, Response> {
        let (parts, body) = req.into_parts();
        let Some(session) =
            cookie(&parts.headers, SESSION_COOKIE).and_then(|t| c.sessions().get(t))
        else {
            return Err(refuse(
                StatusCode::UNAUTHORIZED,
                "signed out: sign in to the console first",
            ));
        };
        if !same_origin(&parts.headers) {
            return Err(refuse(StatusCode::FORBIDDEN, "cross-site request refused"));
        }
        let body = axum::body::to_bytes(body, MAX_FORM_BYTES)
            .await
            .map_err(|_| refuse(StatusCode::PAYLOAD_TOO_LARGE, "form too large"))?;
        let form = FormData::parse(&body);
        let sent = form
            .get("_csrf")
            .map(str::to_string)
            .or_else(|| {
                parts
                    .headers
                    .get("x-csrf-token")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string)
            })
            .unwrap_or_default();
        if !ct_eq(&sent, &session.csrf) {
            return Err(refuse(
                StatusCode::FORBIDDEN,
                "invalid or missing CSRF token: reload the page and try again",
            ));
        }
        let json = parts
            .headers
            .get("x-requested-with")
            .is_some_and(|v| v == "fetch");
        Ok(Posted {
            session,
            form,
            json,
        })
    }
}

/// The sign-in form's post: no session yet, so the token is double-submitted (cookie and
/// field must match).
pub struct SignInPost {
    pub form: FormData,
    /// The TCP peer's address (what sign-in throttling counts by); unspecified when the
    /// server does not record peers (the router driven directly, in tests).
    pub peer: std::net::IpAddr,
}

impl FromRequest<Console> for SignInPost {
    type Rejection = Response;

    async fn from_request(req: Request, _c: &Console) -> Result<Self, Response> {
        let (parts, body) = req.into_parts();
        if !same_origin(&parts.headers) {
            return Err(refuse(StatusCode::FORBIDDEN, "cross-site request refused"));
        }
        let body = axum::body::to_bytes(body, MAX_FORM_BYTES)
            .await
            .map_err(|_| refuse(StatusCode::PAYLOAD_TOO_LARGE, "form too large"))?;
        let form = FormData::parse(&body);
        let cookie_token = cookie(&parts.headers, SIGNIN_COOKIE).unwrap_or("");
        let sent = form.get("_csrf").unwrap_or("");
        if cookie_token.is_empty() || !ct_eq(sent, cookie_token) {
            return Err(refuse(
                StatusCode::FORBIDDEN,
                "invalid or missing CSRF token: reload the sign-in page and try again",
            ));
        }
        let peer = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|ci| ci.0.ip().to_canonical())
            .unwrap_or(std::net::Ipv4Addr::UNSPECIFIED.into());
        Ok(SignInPost { form, peer })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            "a=1; gureum_session=abc; b=2".parse().unwrap(),
        );
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("abc"));
        assert_eq!(cookie(&h, "c"), None);
    }

    #[test]
    fn sessions_expire_and_flash_once() {
        let s = Sessions::default();
        let a = s.create("111111111111", "alice");
        assert_eq!(s.get(&a.token).unwrap().account_id, "111111111111");
        s.flash(&a.token, true, "done");
        assert_eq!(s.take_flash(&a.token).unwrap().message, "done");
        assert!(s.take_flash(&a.token).is_none());
        s.remove(&a.token);
        assert!(s.get(&a.token).is_none());
        assert_ne!(a.csrf, a.token);
        assert_eq!(a.csrf.len(), 64);
    }

    #[test]
    fn origin_must_be_this_host() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, "127.0.0.1:8773".parse().unwrap());
        assert!(same_origin(&h));
        h.insert(header::ORIGIN, "http://127.0.0.1:8773".parse().unwrap());
        assert!(same_origin(&h));
        h.insert(header::ORIGIN, "http://evil.example".parse().unwrap());
        assert!(!same_origin(&h));
    }
}
