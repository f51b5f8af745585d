//! The pages, one module per console section.

pub mod addresses;
pub mod billing;
pub mod dashboard;
pub mod groups;
pub mod images;
pub mod instance;
pub mod instances;
pub mod keys;
pub mod launch;
pub mod signin;
pub mod snapshots;
pub mod volumes;

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use gureum_types::ApiError;
use maud::html;

use crate::html::Frame;
use crate::session::{Posted, Session};
use crate::Console;

pub fn frame<'a>(c: &'a Console, s: &'a Session, title: &'a str, nav: &'a str) -> Frame<'a> {
    Frame {
        title,
        nav,
        session: s,
        flash: c.sessions().take_flash(&s.token),
        live: None,
        region: &c.cloud().region().name,
    }
}

/// After a form post: from the script, the result as JSON (`{ok, message}`); from a plain
/// form, a message for the next page and a redirect to it (303, so a reload does not post
/// again).
pub fn back(c: &Console, p: &Posted, to: &str, result: Result<String, ApiError>) -> Response {
    let (ok, message) = match result {
        Ok(msg) => (true, msg),
        Err(e) => (false, format!("{}: {}", e.code, e.message)),
    };
    if p.json {
        let status = if ok {
            StatusCode::OK
        } else {
            StatusCode::BAD_REQUEST
        };
        return (
            status,
            [(header::CONTENT_TYPE, "application/json")],
            serde_json::json!({ "ok": ok, "message": message, "location": to }).to_string(),
        )
            .into_response();
    }
    c.sessions().flash(&p.session.token, ok, message);
    Redirect::to(to).into_response()
}

/// A page that could not be built because the core refused (e.g. an unknown id).
pub fn failed(c: &Console, s: &Session, title: &str, nav: &str, e: &ApiError) -> Response {
    crate::html::layout(
        frame(c, s, title, nav),
        html! {
            h1 { (title) }
            (crate::html::api_error(e))
        },
    )
}

/// Where to go after signing in: `next` if it is a path of this console, else the dashboard.
///
/// Accepted: a local path (one leading `/`, not `//` or `/\`, which browsers read as another
/// host) under `/console`, of visible ASCII only: no scheme, no control characters, spaces,
/// backslashes or anything a `Location` header cannot carry as it is. Anything else is
/// ignored, never an error: the value comes from a link anyone can make.
pub fn safe_next(next: Option<&str>) -> String {
    const HOME: &str = "/console";
    let Some(n) = next else {
        return HOME.to_string();
    };
    let in_console = n == HOME || n.starts_with("/console/") || n.starts_with("/console?");
    let plain = n.bytes().all(|b| b.is_ascii_graphic() && b != b'\\');
    if in_console && plain {
        n.to_string()
    } else {
        HOME.to_string()
    }
}
