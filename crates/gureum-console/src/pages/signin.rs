//! Sign-in (an access key id and secret, or an account's console password), sign-out.
//!
//! Every attempt goes through the sign-in throttle ([`crate::throttle`]) before anything is
//! checked, and a password is checked on the bounded pool ([`crate::password::Hashers`]): an
//! attempt the throttle holds back, or one the pool has no room for, is answered at once with
//! 429 and `Retry-After`, without hashing.

use std::collections::HashMap;
use std::time::Instant;

use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{html, Markup};

use crate::html::{bare, html_response, logo};
use crate::session::{
    cookie, ct_eq, random_token, set_cookie, Posted, SignInPost, SESSION_COOKIE, SIGNIN_COOKIE,
};
use crate::Console;

/// The sign-in tabs are links too (they work without the script).
fn tab_href(method: &str, next: &str) -> String {
    let next: String = form_urlencoded::byte_serialize(next.as_bytes()).collect();
    format!("?method={method}&next={next}")
}

fn form_page(token: &str, next: &str, error: Option<&str>, method: &str, account: &str) -> Markup {
    bare(
        "Sign in",
        html! {
            div.signin {
                div.signin-brand { (logo()) span { "gureum" } }
                h1 { "Sign in to the console" }
                @if let Some(e) = error {
                    div.alert.err role="alert" { (e) }
                }
                div.tabs role="tablist" {
                    a role="tab" href=(tab_href("key", next)) aria-selected=(if method == "key" { "true" } else { "false" }) data-tab="key" { "Access key" }
                    a role="tab" href=(tab_href("password", next)) aria-selected=(if method == "password" { "true" } else { "false" }) data-tab="password" { "Console password" }
                }
                form #key .card.tabpanel method="post" action="/console/signin" hidden[method != "key"] {
                    input type="hidden" name="_csrf" value=(token);
                    input type="hidden" name="method" value="key";
                    input type="hidden" name="next" value=(next);
                    label for="access_key_id" { "Access key ID" }
                    input #access_key_id name="access_key_id" autocomplete="username" required spellcheck="false" autofocus[method == "key"];
                    label for="secret_access_key" { "Secret access key" }
                    input #secret_access_key type="password" name="secret_access_key" autocomplete="current-password" required;
                    button.primary type="submit" { "Sign in" }
                    p.hint { "The keys are in the credentials file " code { "gureum up" } " writes into its data dir, or printed by " code { "gureum account create" } "." }
                }
                form #password .card.tabpanel method="post" action="/console/signin" hidden[method != "password"] {
                    input type="hidden" name="_csrf" value=(token);
                    input type="hidden" name="method" value="password";
                    input type="hidden" name="next" value=(next);
                    label for="account" { "Account (name or 12-digit id)" }
                    input #account name="account" value=(account) autocomplete="username" required spellcheck="false" autofocus[method == "password"];
                    label for="pw" { "Password" }
                    input #pw type="password" name="password" autocomplete="current-password" required;
                    button.primary type="submit" { "Sign in" }
                    p.hint { "Set a console password with " code { "gureum account passwd ACCOUNT" } "." }
                }
            }
        },
    )
}

fn with_token(status: StatusCode, token: &str, m: Markup) -> Response {
    let mut r = html_response(m);
    *r.status_mut() = status;
    if let Ok(v) = set_cookie(SIGNIN_COOKIE, token, Some(3600)).parse() {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

pub async fn form(
    State(c): State<Console>,
    headers: axum::http::HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let next = super::safe_next(q.get("next").map(String::as_str));
    if cookie(&headers, SESSION_COOKIE)
        .and_then(|t| c.sessions().get(t))
        .is_some()
    {
        return Redirect::to(&next).into_response();
    }
    let token = random_token();
    with_token(
        StatusCode::OK,
        &token,
        form_page(&token, &next, None, "key", ""),
    )
}

/// A sign-in form with an error, and a fresh form token.
fn failed(status: StatusCode, form: &crate::forms::FormData, next: &str, msg: &str) -> Response {
    let token = random_token();
    let method = if form.text("method") == "password" {
        "password"
    } else {
        "key"
    };
    with_token(
        status,
        &token,
        form_page(&token, next, Some(msg), method, &form.text("account")),
    )
}

/// An attempt answered without being checked: 429, and when to try again.
fn held_back(form: &crate::forms::FormData, next: &str, retry_after: u64) -> Response {
    let msg = if retry_after <= 1 {
        "Too many sign-in attempts right now. Try again in a moment.".to_string()
    } else {
        format!("Too many failed sign-in attempts. Try again in {retry_after} seconds.")
    };
    let mut r = failed(StatusCode::TOO_MANY_REQUESTS, form, next, &msg);
    r.headers_mut()
        .insert(header::RETRY_AFTER, header::HeaderValue::from(retry_after));
    r
}

pub async fn submit(State(c): State<Console>, SignInPost { form, peer }: SignInPost) -> Response {
    let next = super::safe_next(form.get("next"));
    let method = form.text("method");
    let who = match method.as_str() {
        "password" => {
            if let Err(r) = c.throttle().admits(peer, Instant::now()) {
                return held_back(&form, &next, r.retry_after_secs());
            }
            let typed = form.text("account");
            let found = {
                // A few store reads at a time: a flood from many addresses does not become a
                // thread per attempt.
                let Ok(_turn) = c.lookups().acquire().await else {
                    return held_back(&form, &next, 1);
                };
                let (cloud, typed) = (c.cloud().clone(), typed.clone());
                tokio::task::spawn_blocking(move || crate::password::lookup(&cloud, &typed)).await
            };
            let found = match found {
                Ok(Ok(found)) => found,
                _ => {
                    return failed(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        &form,
                        &next,
                        "Signing in failed: try again.",
                    )
                }
            };
            // Failures count against the account, however it was named; against what was
            // typed if no such account exists.
            let key = found.as_ref().map_or(typed.as_str(), |(id, _, _)| id);
            let attempt = match c.throttle().begin(peer, Some(key), Instant::now()) {
                Ok(a) => a,
                Err(r) => return held_back(&form, &next, r.retry_after_secs()),
            };
            let (phc, who) = match found {
                Some((id, name, phc)) => (phc, Some((id, name))),
                None => (None, None),
            };
            let password = form.get("password").unwrap_or("").to_string();
            match c.hashers().verify(password, phc).await {
                Err(crate::password::Busy) => return held_back(&form, &next, 1),
                Ok(true) => {
                    attempt.succeeded(Instant::now());
                    who
                }
                Ok(false) => {
                    attempt.failed(Instant::now());
                    None
                }
            }
        }
        _ => {
            let attempt = match c.throttle().begin(peer, None, Instant::now()) {
                Ok(a) => a,
                Err(r) => return held_back(&form, &next, r.retry_after_secs()),
            };
            let id = form.text("access_key_id");
            let secret = form
                .get("secret_access_key")
                .unwrap_or("")
                .trim()
                .to_string();
            let who = match c.cloud().find_access_key(&id).await {
                Ok(Some(k)) if ct_eq(&k.secret_access_key, &secret) => {
                    let cloud = c.cloud().clone();
                    let acct = k.account_id.clone();
                    let name = tokio::task::spawn_blocking(move || {
                        cloud.store().read(|conn| conn.accounts().find(&acct))
                    })
                    .await
                    .ok()
                    .and_then(|r| r.ok())
                    .flatten()
                    .map(|a| a.name)
                    .unwrap_or_default();
                    Some((k.account_id, name))
                }
                _ => None,
            };
            match &who {
                Some(_) => attempt.succeeded(Instant::now()),
                None => attempt.failed(Instant::now()),
            }
            who
        }
    };
    let Some((account_id, name)) = who else {
        let msg = if method == "password" {
            "The account or password is incorrect."
        } else {
            "The access key ID or secret access key is incorrect."
        };
        return failed(StatusCode::UNAUTHORIZED, &form, &next, msg);
    };
    let s = c.sessions().create(&account_id, &name);
    tracing::info!(account = %account_id, "console sign-in");
    let mut r = Redirect::to(&next).into_response();
    if let Ok(v) = set_cookie(SESSION_COOKIE, &s.token, None).parse() {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    if let Ok(v) = set_cookie(SIGNIN_COOKIE, "", Some(0)).parse() {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

pub async fn signout(State(c): State<Console>, Posted { session, .. }: Posted) -> Response {
    c.sessions().remove(&session.token);
    let mut r = Redirect::to("/console/signin").into_response();
    if let Ok(v) = set_cookie(SESSION_COOKIE, "", Some(0)).parse() {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::super::safe_next;

    #[test]
    fn next_is_a_path_of_this_console_or_ignored() {
        for ok in [
            "/console",
            "/console/instances",
            "/console/instances/i-0123?tab=monitoring",
            "/console?x=1",
        ] {
            assert_eq!(safe_next(Some(ok)), ok);
        }
        for bad in [
            "//evil.example/console",
            "/\\evil.example/console",
            "/console\\..\\",
            "https://evil.example",
            "javascript:alert(1)",
            "http:/console",
            "console/instances",
            "/consoleevil",
            "/",
            "",
            "/console/\r\nSet-Cookie: x=1",
            "/console/\u{0}",
            "/console/\u{7f}",
            "/console/\t",
            "/console/a b",
            "/console/\u{e9}",
            "/console/\u{2028}",
        ] {
            assert_eq!(safe_next(Some(bad)), "/console", "{bad:?}");
        }
        assert_eq!(safe_next(None), "/console");
    }
}
