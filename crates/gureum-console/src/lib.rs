//! gureum's web console, served by `gureum up` on the API's own port under `/console`.
//!
//! Server-rendered pages ([`maud`]) with one small embedded script for what needs it (live
//! updates over server-sent events, dialogs, the launch wizard's summary, the rule editor,
//! graphs); the stylesheet, script and favicon are compiled in, so nothing is fetched from
//! anywhere else and nothing is built with npm.
//!
//! Every read and write goes through [`gureum_core::Cloud::dispatch`] as the signed-in
//! account ([`data`]): the API's services and permission checks, so another account's
//! resources never appear. Sessions live in memory ([`session`]); console passwords are
//! argon2 hashes in the store ([`password`]), checked on a small bounded pool, and sign-in
//! attempts are throttled per source address and per account ([`throttle`]).
//!
//! | path | what |
//! |------|------|
//! | `/console/signin`, `/console/signout` | sign-in with an access key or a console password |
//! | `/console` | dashboard |
//! | `/console/instances[/<id>]` | instances table (live), instance detail with tabs |
//! | `/console/launch` | the launch wizard |
//! | `/console/images`, `/console/key-pairs`, `/console/security-groups`, `/console/addresses` | resources |
//! | `/console/volumes[/<id>]`, `/console/snapshots` | EBS: volumes table (live), volume detail (live), snapshots (live) |
//! | `/console/billing` | the month's bill (the metering's ledger, as `gureum bill` shows it) |
//! | `/console/events` | a page's live stream (server-sent events) |

mod assets;
pub mod data;
mod forms;
mod html;
mod live;
pub mod metrics;
mod pages;
pub mod password;
pub mod session;
#[cfg(test)]
mod tests;
pub mod throttle;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::response::Redirect;
use axum::routing::{get, post};
use axum::Router;
use gureum_core::Cloud;

pub use metrics::{HostMetrics, LinuxMetrics};

struct Inner {
    cloud: Cloud,
    sessions: session::Sessions,
    throttle: throttle::Throttle,
    hashers: password::Hashers,
    /// Sign-in's account look-ups running at once.
    lookups: tokio::sync::Semaphore,
    live: live::Live,
    history: metrics::History,
    metrics: Option<Arc<dyn HostMetrics>>,
    /// Set when the server shuts down: live streams end, so a graceful shutdown does not
    /// wait for open pages.
    closing: tokio::sync::watch::Sender<bool>,
}

/// The console: shared by every request handler.
#[derive(Clone)]
pub struct Console(Arc<Inner>);

impl Console {
    /// A console over `cloud`; `metrics` samples running instances for the Monitoring tab
    /// (none: no graphs). Starts the live-update watcher, so call it inside the runtime.
    pub fn new(cloud: Cloud, metrics: Option<Arc<dyn HostMetrics>>) -> Console {
        let c = Console(Arc::new(Inner {
            cloud,
            sessions: Default::default(),
            throttle: Default::default(),
            hashers: Default::default(),
            lookups: tokio::sync::Semaphore::new(2),
            live: Default::default(),
            history: Default::default(),
            metrics,
            closing: tokio::sync::watch::channel(false).0,
        }));
        live::spawn_watcher(c.clone());
        c
    }

    /// End every live stream (call when the server starts shutting down).
    pub fn shutdown(&self) {
        let _ = self.0.closing.send(true);
    }

    pub(crate) fn closing(&self) -> tokio::sync::watch::Receiver<bool> {
        self.0.closing.subscribe()
    }

    pub fn cloud(&self) -> &Cloud {
        &self.0.cloud
    }
    pub(crate) fn sessions(&self) -> &session::Sessions {
        &self.0.sessions
    }
    pub(crate) fn throttle(&self) -> &throttle::Throttle {
        &self.0.throttle
    }
    pub(crate) fn hashers(&self) -> &password::Hashers {
        &self.0.hashers
    }
    pub(crate) fn lookups(&self) -> &tokio::sync::Semaphore {
        &self.0.lookups
    }
    pub(crate) fn live(&self) -> &live::Live {
        &self.0.live
    }
    pub(crate) fn history(&self) -> &metrics::History {
        &self.0.history
    }
    pub(crate) fn metrics_source(&self) -> Option<Arc<dyn HostMetrics>> {
        self.0.metrics.clone()
    }

    /// The console's routes (`/console/…` and `/favicon.ico`), ready to merge into the
    /// server's router.
    pub fn router(&self) -> Router {
        use pages::*;
        Router::new()
            .route("/console", get(dashboard::page))
            .route("/console/", get(|| async { Redirect::to("/console") }))
            .route("/console/signin", get(signin::form).post(signin::submit))
            .route("/console/signout", post(signin::signout))
            .route("/console/events", get(live::events))
            .route("/console/instances", get(instances::page))
            .route("/console/instances/action", post(instances::action))
            .route("/console/instances/{id}", get(instance::page))
            .route(
                "/console/instances/{id}/image",
                post(instance::create_image),
            )
            .route("/console/launch", get(launch::page).post(launch::submit))
            .route("/console/images", get(images::page))
            .route("/console/images/deregister", post(images::deregister))
            .route("/console/images/share", post(images::share))
            .route("/console/key-pairs", get(keys::page))
            .route("/console/key-pairs/create", post(keys::create))
            .route("/console/key-pairs/import", post(keys::import))
            .route("/console/key-pairs/delete", post(keys::delete))
            .route("/console/security-groups", get(groups::list))
            .route("/console/security-groups/create", post(groups::create))
            .route("/console/security-groups/delete", post(groups::delete))
            .route("/console/security-groups/{id}", get(groups::detail))
            .route(
                "/console/security-groups/{id}/rules",
                get(groups::editor).post(groups::save_rules),
            )
            .route("/console/volumes", get(volumes::page))
            .route("/console/volumes/create", post(volumes::create))
            .route("/console/volumes/action", post(volumes::action))
            .route("/console/volumes/{id}", get(volumes::detail))
            .route("/console/snapshots", get(snapshots::page))
            .route("/console/snapshots/action", post(snapshots::action))
            .route("/console/billing", get(billing::page))
            .route("/console/addresses", get(addresses::page))
            .route("/console/addresses/action", post(addresses::action))
            .route("/console/assets/{name}", get(assets::serve))
            .route("/favicon.ico", get(assets::favicon))
            .layer(DefaultBodyLimit::max(session::MAX_FORM_BYTES))
            .layer(axum::middleware::from_fn(console_headers))
            .with_state(self.clone())
    }
}

/// Headers on every console answer: `Server-Timing: app;dur=…` (the time the server spent;
/// the benchmark and the browser's developer tools read it), and a strict content security
/// policy: the console's own script, styles and images only, no framing, forms posting only
/// here.
async fn console_headers(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::http::header::{self, HeaderValue};
    let started = std::time::Instant::now();
    let mut r = next.run(req).await;
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    let h = r.headers_mut();
    if let Ok(v) = format!("app;dur={ms:.2}").parse() {
        h.insert("server-timing", v);
    }
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; \
             connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    r
}

/// The browser's address as this server sees it (for "My IP"), when the server records
/// peers; empty otherwise.
pub struct ClientIp(pub String);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(
            parts
                .extensions
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .map(|ci| ci.0.ip().to_string())
                .unwrap_or_default(),
        ))
    }
}
