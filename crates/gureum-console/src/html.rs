//! The page frame (top bar, navigation, flash message) and the small pieces every page uses:
//! state badges, times, field errors. Pages are server-rendered with `maud`, which escapes
//! every interpolated value.

use axum::http::header;
use axum::response::{IntoResponse, Response};
use gureum_types::{ApiError, InstanceState, SnapshotState, VolumeAttachmentState, VolumeState};
use maud::{html, Markup, PreEscaped, DOCTYPE};

use crate::assets;
use crate::session::{Flash, Session};

/// A navigation entry: (key, label, path).
pub type NavEntry = (&'static str, &'static str, &'static str);

/// The navigation, in order: groups of entries (key, label, path), a group under its heading
/// (none: the entries stand alone), as the AWS console groups EC2's resources.
pub const NAV: &[(Option<&str>, &[NavEntry])] = &[
    (None, &[("dashboard", "Dashboard", "/console")]),
    (
        Some("Instances"),
        &[
            ("instances", "Instances", "/console/instances"),
            ("launch", "Launch instance", "/console/launch"),
        ],
    ),
    (Some("Images"), &[("images", "AMIs", "/console/images")]),
    (
        Some("Elastic Block Store"),
        &[
            ("volumes", "Volumes", "/console/volumes"),
            ("snapshots", "Snapshots", "/console/snapshots"),
        ],
    ),
    (
        Some("Network & Security"),
        &[
            ("groups", "Security groups", "/console/security-groups"),
            ("addresses", "Elastic IPs", "/console/addresses"),
            ("keys", "Key pairs", "/console/key-pairs"),
        ],
    ),
    (None, &[("billing", "Billing", "/console/billing")]),
];

pub struct Frame<'a> {
    pub title: &'a str,
    pub nav: &'a str,
    pub session: &'a Session,
    pub flash: Option<Flash>,
    /// `data-live` of the body: which live view the page subscribes to, if any.
    pub live: Option<String>,
    pub region: &'a str,
}

fn head(title: &str, csrf: Option<&str>) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            @if let Some(token) = csrf { meta name="csrf" content=(token); }
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " | gureum console" }
            link rel="icon" href=(assets::path("favicon.svg")) type="image/svg+xml";
            link rel="stylesheet" href=(assets::path("console.css"));
            script src=(assets::path("console.js")) defer {}
        }
    }
}

pub fn logo() -> Markup {
    html! {
        span.logo aria-hidden="true" { (PreEscaped(assets::LOGO_SVG)) }
    }
}

/// A full console page.
pub fn layout(f: Frame, body: Markup) -> Response {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            (head(f.title, Some(&f.session.csrf)))
            body data-live=[f.live.as_deref()] {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    button.menu type="button" aria-label="Menu" aria-controls="side" aria-expanded="false" { "☰" }
                    a.brand href="/console" { (logo()) span { "gureum" } }
                    span.region title="Region" { (f.region) }
                    span.spacer {}
                    span.account title=(format!("Account {}", f.session.account_id)) {
                        (f.session.account_name) " "
                        span.muted { "(" (f.session.account_id) ")" }
                    }
                    form.signout method="post" action="/console/signout" {
                        input type="hidden" name="_csrf" value=(f.session.csrf);
                        button.link type="submit" { "Sign out" }
                    }
                }
                div.shell {
                    nav #side .side aria-label="Console" {
                        @for (heading, entries) in NAV {
                            @if let Some(h) = heading { h2.nav-group { (h) } }
                            ul {
                                @for (key, label, path) in *entries {
                                    li {
                                        a href=(path) class=[(*key == f.nav).then_some("active")]
                                            aria-current=[(*key == f.nav).then_some("page")] { (label) }
                                    }
                                }
                            }
                        }
                    }
                    main #main tabindex="-1" {
                        @if let Some(fl) = &f.flash {
                            div class=(if fl.ok { "flash ok" } else { "flash err" }) role="status" {
                                (fl.message)
                            }
                        }
                        (body)
                    }
                }
                div #toast role="status" aria-live="polite" {}
            }
        }
    };
    html_response(markup)
}

/// A page outside the signed-in frame (sign-in).
pub fn bare(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title, None))
            body.bare { main #main { (body) } }
        }
    }
}

pub fn html_response(m: Markup) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        m.into_string(),
    )
        .into_response()
}

/// An instance state as a coloured badge, spinning while the state is on its way to another.
pub fn state_badge(state: InstanceState) -> Markup {
    let busy = match state {
        InstanceState::Pending | InstanceState::Stopping | InstanceState::ShuttingDown => true,
        InstanceState::Running | InstanceState::Stopped | InstanceState::Terminated => false,
    };
    badge(state.as_str(), busy)
}

/// A volume state as a badge, spinning on the way to another.
pub fn volume_badge(state: VolumeState) -> Markup {
    let busy = matches!(state, VolumeState::Creating | VolumeState::Deleting);
    badge(state.as_str(), busy)
}

/// An attachment state as a badge, spinning on the way to another (`busy`: a detach the
/// guest holds up).
pub fn attachment_badge(state: VolumeAttachmentState) -> Markup {
    let busy = !matches!(
        state,
        VolumeAttachmentState::Attached | VolumeAttachmentState::Detached
    );
    badge(state.as_str(), busy)
}

/// A snapshot state as a badge; a pending one shows its progress (`pending 40%`).
pub fn snapshot_badge(state: SnapshotState, progress: &str) -> Markup {
    let pending = state == SnapshotState::Pending;
    html! {
        span class={ "badge st-" (state.as_str()) } data-state=(state.as_str()) {
            @if pending { i.spin aria-hidden="true" {} } @else { i.dot aria-hidden="true" {} }
            (state.as_str())
            @if pending && !progress.is_empty() { " " span.progress { (progress) } }
        }
    }
}

fn badge(state: &str, busy: bool) -> Markup {
    html! {
        span class={ "badge st-" (state) } data-state=(state) {
            @if busy { i.spin aria-hidden="true" {} } @else { i.dot aria-hidden="true" {} }
            (state)
        }
    }
}

/// `2026-11-26T06:21:41.000Z` as `2026-11-26 06:21:41 UTC`.
pub fn fmt_time(aws: &str) -> String {
    match aws.split_once('T') {
        Some((d, t)) => format!("{d} {} UTC", t.get(..8).unwrap_or(t)),
        None => aws.to_string(),
    }
}

/// `2026-11-26T06:21:41.000Z` as `2026-11-26 06:21 UTC`, for tables (detail pages have the
/// seconds).
pub fn short_time(aws: &str) -> String {
    let t = fmt_time(aws);
    match (t.get(..16), t.ends_with(" UTC")) {
        (Some(head), true) if t.len() > 20 => format!("{head} UTC"),
        _ => t,
    }
}

/// An API error as the API words it.
pub fn api_error(e: &ApiError) -> Markup {
    html! {
        div.alert.err role="alert" {
            strong { (e.code.to_string()) } ": " (e.message)
        }
    }
}

/// The error under a field (or nothing).
pub fn field_error(id: &str, e: Option<&str>) -> Markup {
    html! {
        @if let Some(msg) = e {
            p.field-error id=(format!("{id}-error")) role="alert" { (msg) }
        }
    }
}

/// A hidden CSRF field for a form.
pub fn csrf(s: &Session) -> Markup {
    html! { input type="hidden" name="_csrf" value=(s.csrf); }
}

/// A key/value list.
pub fn dl(rows: &[(&str, Markup)]) -> Markup {
    html! {
        dl.kv {
            @for (k, v) in rows {
                div { dt { (k) } dd { (v) } }
            }
        }
    }
}

pub fn or_dash(s: &str) -> Markup {
    html! { @if s.is_empty() { span.muted { "–" } } @else { (s) } }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_like_the_console() {
        assert_eq!(
            fmt_time("2026-11-26T06:21:41.000Z"),
            "2026-11-26 06:21:41 UTC"
        );
    }

    #[test]
    fn badges_escape_and_spin_while_busy() {
        let b = state_badge(InstanceState::Pending).into_string();
        assert!(b.contains("st-pending") && b.contains("spin"));
        let b = volume_badge(VolumeState::Creating).into_string();
        assert!(b.contains("st-creating") && b.contains("spin"));
        let b = volume_badge(VolumeState::InUse).into_string();
        assert!(b.contains("st-in-use") && !b.contains("spin"));
        let b = attachment_badge(VolumeAttachmentState::Busy).into_string();
        assert!(b.contains("st-busy") && b.contains("spin"));
        let b = snapshot_badge(SnapshotState::Pending, "40%").into_string();
        assert!(b.contains("st-pending") && b.contains("40%"), "{b}");
        let b = snapshot_badge(SnapshotState::Completed, "100%").into_string();
        assert!(b.contains("st-completed") && !b.contains("100%"), "{b}");
        let b = badge("<x>", false).into_string();
        assert!(!b.contains("<x>"));
    }
}
