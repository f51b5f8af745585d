//! The console's static files, embedded in the binary: one stylesheet, one script, the
//! favicon. No CDN and no web fonts (system font stack), so the console works offline. URLs
//! carry a content hash, so they can be cached for good.

use std::sync::OnceLock;

use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

pub const CSS: &str = include_str!("../assets/console.css");
pub const JS: &str = include_str!("../assets/console.js");
pub const FAVICON_SVG: &str = include_str!("../assets/favicon.svg");
/// The cloud mark used in the top bar (the favicon's drawing).
pub const LOGO_SVG: &str = include_str!("../assets/favicon.svg");

const FILES: &[(&str, &str, &str)] = &[
    ("console.css", "text/css; charset=utf-8", CSS),
    ("console.js", "text/javascript; charset=utf-8", JS),
    ("favicon.svg", "image/svg+xml", FAVICON_SVG),
];

fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100000001b3)
    })
}

/// The versioned URL of an asset.
pub fn path(name: &str) -> String {
    static VERSION: OnceLock<String> = OnceLock::new();
    let v = VERSION.get_or_init(|| {
        format!(
            "{:x}",
            FILES
                .iter()
                .fold(0u64, |h, (_, _, c)| h.rotate_left(7) ^ fnv(c))
        )
    });
    format!("/console/assets/{name}?v={}", &v[..v.len().min(10)])
}

pub async fn serve(Path(name): Path<String>) -> Response {
    match FILES.iter().find(|(n, _, _)| *n == name) {
        Some((_, mime, body)) => (
            [
                (header::CONTENT_TYPE, *mime),
                (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
            ],
            *body,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "not found\n").into_response(),
    }
}

pub async fn favicon() -> Response {
    (
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        FAVICON_SVG,
    )
        .into_response()
}
