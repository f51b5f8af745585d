//! The console over a real core and store (no host): sign-in, sessions, CSRF, isolation
//! between accounts, and the forms' error paths, through the router as a browser uses it.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use gureum_core::{Cloud, SystemClock};
use gureum_store::SqliteStore;
use gureum_types::Region;
use http_body_util::BodyExt;
use tower::ServiceExt;

use crate::Console;

struct T {
    _dir: tempfile::TempDir,
    cloud: Cloud,
    console: Console,
    app: Router,
}

fn setup() -> T {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("state.db")).unwrap());
    let cloud = Cloud::new(
        store,
        Region::new("us-east-1").unwrap(),
        Arc::new(SystemClock),
    );
    let console = Console::new(cloud.clone(), None);
    T {
        _dir: dir,
        app: console.router(),
        console,
        cloud,
    }
}

#[derive(Debug)]
struct Resp {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: String,
}

async fn send(app: &Router, req: Request<Body>) -> Resp {
    let r = app.clone().oneshot(req).await.unwrap();
    let status = r.status();
    let headers = r.headers().clone();
    let body =
        String::from_utf8_lossy(&r.into_body().collect().await.unwrap().to_bytes()).into_owned();
    Resp {
        status,
        headers,
        body,
    }
}

fn get(path: &str, cookie: &str) -> Request<Body> {
    Request::get(path)
        .header(header::ACCEPT, "text/html")
        .header(header::COOKIE, cookie)
        .body(Body::empty())
        .unwrap()
}

fn post(path: &str, cookie: &str, form: &[(&str, &str)]) -> Request<Body> {
    let body: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    Request::post(path)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::COOKIE, cookie)
        .header(header::HOST, "127.0.0.1:8773")
        .body(Body::from(body))
        .unwrap()
}

fn set_cookie(r: &Resp, name: &str) -> Option<String> {
    r.headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(str::to_string)
}

fn between<'a>(s: &'a str, start: &str, end: &str) -> &'a str {
    let i = s
        .find(start)
        .unwrap_or_else(|| panic!("{start} not in page"))
        + start.len();
    &s[i..i + s[i..].find(end).unwrap()]
}

/// Sign in through the form; returns the session cookie and the page's CSRF token.
async fn sign_in(app: &Router, fields: &[(&str, &str)]) -> Result<(String, String), Resp> {
    let form = send(app, get("/console/signin", "")).await;
    let token = set_cookie(&form, "gureum_signin").unwrap();
    let token = between(&token, "gureum_signin=", ";").to_string();
    let mut all = vec![("_csrf", token.as_str())];
    all.extend_from_slice(fields);
    let r = send(
        app,
        post("/console/signin", &format!("gureum_signin={token}"), &all),
    )
    .await;
    if r.status != StatusCode::SEE_OTHER {
        return Err(r);
    }
    let c = set_cookie(&r, "gureum_session").unwrap();
    assert!(
        c.contains("HttpOnly") && c.contains("SameSite=Strict"),
        "{c}"
    );
    let cookie = between(&c, "", ";").to_string();
    let page = send(app, get("/console", &cookie)).await;
    assert_eq!(page.status, StatusCode::OK);
    let csrf = between(&page.body, "name=\"csrf\" content=\"", "\"").to_string();
    Ok((cookie, csrf))
}

async fn key_sign_in(t: &T, name: &str) -> (String, String, String) {
    let (acct, key) = t.cloud.create_account_sync(name).unwrap();
    let (cookie, csrf) = sign_in(
        &t.app,
        &[
            ("method", "key"),
            ("access_key_id", &key.access_key_id),
            ("secret_access_key", &key.secret_access_key),
        ],
    )
    .await
    .unwrap_or_else(|r| panic!("sign-in refused: {} {}", r.status, r.body));
    (acct.id, cookie, csrf)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_out_users_see_nothing() {
    let t = setup();
    let r = send(&t.app, get("/console/instances", "")).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(r.headers[header::LOCATION]
        .to_str()
        .unwrap()
        .starts_with("/console/signin?next="));
    let events = Request::get("/console/events?view=instances")
        .header(header::ACCEPT, "text/event-stream")
        .body(Body::empty())
        .unwrap();
    assert_eq!(send(&t.app, events).await.status, StatusCode::UNAUTHORIZED);
    let r = send(
        &t.app,
        post("/console/instances/action", "", &[("action", "stop")]),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = send(&t.app, get("/console/instances", "gureum_session=forged")).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    // The assets are public (the sign-in page needs them).
    let r = send(&t.app, get("/console/assets/console.css", "")).await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_needs_the_right_secret_and_the_form_token() {
    let t = setup();
    let (_, key) = t.cloud.create_account_sync("alice").unwrap();
    let r = sign_in(
        &t.app,
        &[
            ("method", "key"),
            ("access_key_id", &key.access_key_id),
            ("secret_access_key", "nope"),
        ],
    )
    .await
    .unwrap_err();
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.body.contains("incorrect"));
    // Without the double-submitted token.
    let r = send(
        &t.app,
        post(
            "/console/signin",
            "",
            &[
                ("method", "key"),
                ("access_key_id", &key.access_key_id),
                ("secret_access_key", &key.secret_access_key),
            ],
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_passwords_sign_in() {
    let t = setup();
    let (acct, _) = t.cloud.create_account_sync("bob").unwrap();
    assert!(crate::password::set(&t.cloud, "bob", "short").is_err());
    assert_eq!(
        crate::password::set(&t.cloud, "bob", "correct horse").unwrap(),
        acct.id
    );
    let fields =
        |pw: &'static str| vec![("method", "password"), ("account", "bob"), ("password", pw)];
    assert_eq!(
        sign_in(&t.app, &fields("wrong horse"))
            .await
            .unwrap_err()
            .status,
        StatusCode::UNAUTHORIZED
    );
    let (cookie, csrf) = sign_in(&t.app, &fields("correct horse")).await.unwrap();
    // By id as well as by name.
    let by_id = vec![
        ("method", "password"),
        ("account", acct.id.as_str()),
        ("password", "correct horse"),
    ];
    sign_in(&t.app, &by_id).await.unwrap();
    // Signing out ends the session.
    let r = send(
        &t.app,
        post("/console/signout", &cookie, &[("_csrf", &csrf)]),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(
        send(&t.app, get("/console", &cookie)).await.status,
        StatusCode::SEE_OTHER
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_passwords_are_held_back_without_hashing() {
    let t = setup();
    t.cloud.create_account_sync("bob").unwrap();
    crate::password::set(&t.cloud, "bob", "correct horse").unwrap();
    let fields =
        |pw: &'static str| vec![("method", "password"), ("account", "bob"), ("password", pw)];
    for _ in 0..crate::throttle::ADDR_FREE_FAILURES {
        let r = sign_in(&t.app, &fields("wrong horse")).await.unwrap_err();
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    // Now the address waits, and even the right password is not looked at.
    let started = std::time::Instant::now();
    let r = sign_in(&t.app, &fields("correct horse")).await.unwrap_err();
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.body);
    assert_eq!(r.headers[header::RETRY_AFTER], "1");
    assert!(r.body.contains("Too many"), "{}", r.body);
    assert!(started.elapsed() < std::time::Duration::from_millis(300));
    // The same holds for access keys from that address.
    let r = sign_in(
        &t.app,
        &[
            ("method", "key"),
            ("access_key_id", "AKIA"),
            ("secret_access_key", "x"),
        ],
    )
    .await
    .unwrap_err();
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    // After the wait, the right password signs in.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    sign_in(&t.app, &fields("correct horse")).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_next_that_is_not_a_console_path_is_ignored() {
    let t = setup();
    let (_, key) = t.cloud.create_account_sync("alice").unwrap();
    for next in [
        "/console/\u{1}x",
        "/console/\r\nSet-Cookie: a=b",
        "//evil.example",
        "/console/\u{e9}",
    ] {
        let form = send(&t.app, get("/console/signin", "")).await;
        let token = set_cookie(&form, "gureum_signin").unwrap();
        let token = between(&token, "gureum_signin=", ";").to_string();
        let r = send(
            &t.app,
            post(
                "/console/signin",
                &format!("gureum_signin={token}"),
                &[
                    ("_csrf", &token),
                    ("method", "key"),
                    ("access_key_id", &key.access_key_id),
                    ("secret_access_key", &key.secret_access_key),
                    ("next", next),
                ],
            ),
        )
        .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{next:?}");
        assert_eq!(r.headers[header::LOCATION], "/console", "{next:?}");
        // Signed in, the form sends the browser on to the same place.
        let cookie = between(&set_cookie(&r, "gureum_session").unwrap(), "", ";").to_string();
        let q: String = form_urlencoded::byte_serialize(next.as_bytes()).collect();
        let r = send(&t.app, get(&format!("/console/signin?next={q}"), &cookie)).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{next:?}");
        assert_eq!(r.headers[header::LOCATION], "/console", "{next:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forms_need_the_csrf_token_and_this_origin() {
    let t = setup();
    let (_, cookie, csrf) = key_sign_in(&t, "alice").await;
    let r = send(
        &t.app,
        post("/console/key-pairs/create", &cookie, &[("key_name", "k")]),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = send(
        &t.app,
        post(
            "/console/key-pairs/create",
            &cookie,
            &[("key_name", "k"), ("_csrf", "x")],
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let mut req = post(
        "/console/key-pairs/create",
        &cookie,
        &[("key_name", "k"), ("_csrf", &csrf)],
    );
    req.headers_mut()
        .insert(header::ORIGIN, "http://evil.example".parse().unwrap());
    assert_eq!(send(&t.app, req).await.status, StatusCode::FORBIDDEN);
    // Nothing was created.
    let page = send(&t.app, get("/console/key-pairs", &cookie)).await;
    assert!(page.body.contains("No key pairs."));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_pair_downloads_once_and_errors_land_next_to_the_field() {
    let t = setup();
    let (_, cookie, csrf) = key_sign_in(&t, "alice").await;
    let form = [
        ("key_name", "demo"),
        ("key_type", "ed25519"),
        ("key_format", "pem"),
        ("_csrf", csrf.as_str()),
    ];
    let r = send(&t.app, post("/console/key-pairs/create", &cookie, &form)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.headers[header::CONTENT_DISPOSITION],
        "attachment; filename=\"demo.pem\""
    );
    assert!(
        r.body.starts_with("-----BEGIN OPENSSH PRIVATE KEY-----"),
        "{}",
        r.body
    );
    // The same name again: the API's error, next to the name field.
    let r = send(&t.app, post("/console/key-pairs/create", &cookie, &form)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let err = between(&r.body, "id=\"key-name-error\"", "</p>");
    assert!(err.contains("InvalidKeyPair.Duplicate"), "{err}");
    let page = send(&t.app, get("/console/key-pairs", &cookie)).await;
    assert!(page.body.contains(">demo<"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_accounts_resources_never_appear() {
    let t = setup();
    let (_, a_cookie, a_csrf) = key_sign_in(&t, "alice").await;
    let (_, b_cookie, b_csrf) = key_sign_in(&t, "bob").await;
    let r = send(
        &t.app,
        post(
            "/console/security-groups/create",
            &a_cookie,
            &[
                ("name", "alice-web"),
                ("description", "web"),
                ("_csrf", &a_csrf),
            ],
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let sg = r.headers[header::LOCATION]
        .to_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    assert!(sg.starts_with("sg-"));
    let a = send(&t.app, get("/console/security-groups", &a_cookie)).await;
    assert!(a.body.contains("alice-web"));
    let b = send(&t.app, get("/console/security-groups", &b_cookie)).await;
    assert!(!b.body.contains("alice-web") && !b.body.contains(&sg));
    let b = send(
        &t.app,
        get(&format!("/console/security-groups/{sg}"), &b_cookie),
    )
    .await;
    assert!(b.body.contains("InvalidGroup.NotFound"), "{}", b.body);
    // Bob cannot delete it either (the API's own answer).
    let r = send(
        &t.app,
        post(
            "/console/security-groups/delete",
            &b_cookie,
            &[("group_id", &sg), ("_csrf", &b_csrf)],
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let b = send(&t.app, get("/console/security-groups", &b_cookie)).await;
    assert!(
        b.body.contains("InvalidGroup.NotFound"),
        "the refusal is shown"
    );
    assert!(send(&t.app, get("/console/security-groups", &a_cookie))
        .await
        .body
        .contains("alice-web"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wizard_shows_api_errors_in_their_section_and_keeps_the_form() {
    let t = setup();
    let (_, cookie, csrf) = key_sign_in(&t, "alice").await;
    let r = send(
        &t.app,
        post(
            "/console/launch",
            &cookie,
            &[
                ("_csrf", &csrf),
                ("name", "my-web"),
                ("image_id", "ami-00000000000000000"),
                ("instance_type", "t2.micro"),
                ("count", "1"),
                ("sg_mode", "create"),
                ("allow_ssh", "on"),
            ],
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.body.contains("id=\"image-error\""),
        "{}",
        between(&r.body, "<main", "<form")
    );
    let err = between(&r.body, "id=\"image-error\"", "</p>");
    assert!(err.contains("InvalidAMIID"), "{err}");
    assert!(
        r.body.contains("value=\"my-web\""),
        "the form keeps what was typed"
    );
    // The group made for the failed launch was deleted again.
    let groups = send(&t.app, get("/console/security-groups", &cookie)).await;
    assert!(!groups.body.contains("launch-wizard-1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rule_editor_adds_and_removes_rules() {
    let t = setup();
    let (_, cookie, csrf) = key_sign_in(&t, "alice").await;
    let r = send(
        &t.app,
        post(
            "/console/security-groups/create",
            &cookie,
            &[("name", "web"), ("description", "web"), ("_csrf", &csrf)],
        ),
    )
    .await;
    let sg = r.headers[header::LOCATION]
        .to_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    let path = format!("/console/security-groups/{sg}/rules");
    let rows = [
        ("_csrf", csrf.as_str()),
        ("dir", "in"),
        ("rule_id", ""),
        ("type", "SSH"),
        ("port", "22"),
        ("source", "0.0.0.0/0"),
        ("desc", ""),
        ("rule_id", ""),
        ("type", "Custom TCP"),
        ("port", "8000-8080"),
        ("source", "10.0.0.0/8"),
        ("desc", "app"),
    ];
    let r = send(&t.app, post(&path, &cookie, &rows)).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let page = send(
        &t.app,
        get(&format!("/console/security-groups/{sg}"), &cookie),
    )
    .await;
    assert!(
        page.body.contains("Saved the inbound rules") && page.body.contains("2 added"),
        "{}",
        page.body
    );
    assert!(page.body.contains("8000 - 8080") && page.body.contains(">SSH<"));
    // A bad CIDR: the API's message next to the row, and nothing changed.
    let editor = send(&t.app, get(&format!("{path}?dir=in"), &cookie)).await;
    let ids: Vec<&str> = editor
        .body
        .match_indices("name=\"rule_id\" value=\"sgr-")
        .map(|(i, _)| &editor.body[i + 22..i + 22 + 21])
        .collect();
    assert_eq!(ids.len(), 2, "{ids:?}");
    let bad = [
        ("_csrf", csrf.as_str()),
        ("dir", "in"),
        ("rule_id", ids[0]),
        ("type", "SSH"),
        ("port", "22"),
        ("source", "0.0.0.0/0"),
        ("desc", ""),
        ("rule_id", ""),
        ("type", "HTTP"),
        ("port", "80"),
        ("source", "not-a-cidr"),
        ("desc", ""),
    ];
    let r = send(&t.app, post(&path, &cookie, &bad)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("class=\"field-error\""), "{}", r.body);
    assert!(r.body.contains("not-a-cidr"));
    let page = send(
        &t.app,
        get(&format!("/console/security-groups/{sg}"), &cookie),
    )
    .await;
    assert!(
        page.body.contains("8000 - 8080"),
        "the removed rule was restored"
    );
    // Removing a row revokes its rule.
    let keep = [
        ("_csrf", csrf.as_str()),
        ("dir", "in"),
        ("rule_id", ids[0]),
        ("type", "SSH"),
        ("port", "22"),
        ("source", "0.0.0.0/0"),
        ("desc", ""),
    ];
    let r = send(&t.app, post(&path, &cookie, &keep)).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let page = send(
        &t.app,
        get(&format!("/console/security-groups/{sg}"), &cookie),
    )
    .await;
    assert!(!page.body.contains("8000 - 8080"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_streams_carry_only_the_accounts_own_changes() {
    let t = setup();
    let (alice, cookie, _) = key_sign_in(&t, "alice").await;
    let req = Request::get("/console/events?view=instances&since=999999")
        .header(header::COOKIE, &cookie)
        .body(Body::empty())
        .unwrap();
    let r = t.app.clone().oneshot(req).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()[header::CONTENT_TYPE], "text/event-stream");
    let mut body = r.into_body();
    async fn next(body: &mut Body) -> Option<String> {
        tokio::time::timeout(std::time::Duration::from_millis(500), body.frame())
            .await
            .ok()
            .flatten()
            .and_then(|f| f.ok())
            .and_then(|f| f.into_data().ok())
            .map(|d| String::from_utf8_lossy(&d).into_owned())
    }
    use crate::live::{Version, Versions};
    let one = |acct: &str, id: &str| -> Versions {
        let v = Version::Instance("running".parse().unwrap(), 1, None);
        [(id.to_string(), (acct.to_string(), v))].into()
    };
    let empty = Versions::new();
    // Another account's change: nothing on alice's stream.
    t.console
        .live()
        .publish(&empty, &one("999999999999", "i-0b0b0b0b0b0b0b0b0"));
    assert_eq!(next(&mut body).await, None);
    // Alice's (an instance the core does not know for her: the page drops its row).
    t.console
        .live()
        .publish(&empty, &one(&alice, "i-0a0a0a0a0a0a0a0a0"));
    let ev = next(&mut body).await.expect("an event");
    assert!(ev.starts_with("event: patch"), "{ev}");
    assert!(ev.contains(r#""op":"remove""#), "{ev}");
    assert!(ev.contains("i-0a0a0a0a0a0a0a0a0"), "{ev}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_pairs_import_and_delete() {
    let t = setup();
    let (acct, cookie, csrf) = key_sign_in(&t, "alice").await;
    let form = [
        ("key_name", "made"),
        ("key_type", "ed25519"),
        ("_csrf", csrf.as_str()),
    ];
    assert_eq!(
        send(&t.app, post("/console/key-pairs/create", &cookie, &form))
            .await
            .status,
        StatusCode::OK
    );
    // Its public key, as the API shows it.
    let s = crate::session::Session {
        token: String::new(),
        account_id: acct,
        account_name: "alice".into(),
        csrf: String::new(),
    };
    let public = match t
        .console
        .call(
            &s,
            gureum_ec2::ops::key_pairs::Action::DescribeKeyPairs {
                key_names: vec!["made".into()],
                key_pair_ids: vec![],
                filters: vec![],
                include_public_key: true,
            },
        )
        .await
        .unwrap()
    {
        gureum_ec2::ops::key_pairs::Response::DescribeKeyPairs { keys, .. } => {
            keys[0].public_key.clone()
        }
        _ => unreachable!(),
    };
    let bad = [
        ("key_name", "imported"),
        ("public_key", "not a key"),
        ("_csrf", csrf.as_str()),
    ];
    let r = send(&t.app, post("/console/key-pairs/import", &cookie, &bad)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        between(&r.body, "id=\"import-material-error\"", "</p>").contains("InvalidKey.Format"),
        "{}",
        r.body
    );
    let good = [
        ("key_name", "imported"),
        ("public_key", public.as_str()),
        ("_csrf", csrf.as_str()),
    ];
    assert_eq!(
        send(&t.app, post("/console/key-pairs/import", &cookie, &good))
            .await
            .status,
        StatusCode::SEE_OTHER
    );
    let page = send(&t.app, get("/console/key-pairs", &cookie)).await;
    assert!(page.body.contains("Imported key pair imported") && page.body.contains(">imported<"));
    let del = [("key_name", "made"), ("_csrf", csrf.as_str())];
    assert_eq!(
        send(&t.app, post("/console/key-pairs/delete", &cookie, &del))
            .await
            .status,
        StatusCode::SEE_OTHER
    );
    let page = send(&t.app, get("/console/key-pairs", &cookie)).await;
    assert!(page.body.contains("Deleted key pair made") && !page.body.contains(">made<"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_billing_page_shows_forecast_budget_days_and_free_tier() {
    let t = setup();
    let (acct, cookie, _) = key_sign_in(&t, "payer").await;
    let page = send(&t.app, get("/console/billing", &cookie)).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    for part in [
        "Forecast for the month",
        "Cost per day",
        "Free tier this month",
        "<progress",
    ] {
        assert!(page.body.contains(part), "missing {part}");
    }
    assert!(!page.body.contains("Budget exceeded"));
    t.cloud.set_budget(&acct, 5.0, false).await.unwrap();
    let page = send(&t.app, get("/console/billing", &cookie)).await;
    assert!(page.body.contains("Monthly budget"), "{}", page.body);
    assert!(!page.body.contains("Budget exceeded"));
    // The agent's alert, as it records one, shows on the page.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let month = gureum_billing::Month::of(now).to_string();
    t.cloud
        .store()
        .write(|tx| {
            tx.budgets()
                .record_alert(&acct, &month, "actual", "6.0000", now)
        })
        .unwrap();
    let page = send(&t.app, get("/console/billing", &cookie)).await;
    assert!(page.body.contains("Budget exceeded"), "{}", page.body);
}

/// A volume of `account` recorded as the API would (`creating`, no attachment).
fn store_volume(t: &T, account: &str, id: &str) -> gureum_store::volumes::VolumeRow {
    let v = gureum_store::volumes::VolumeRow {
        id: id.into(),
        account_id: account.into(),
        az: "us-east-1a".into(),
        size_gib: 8,
        volume_type: gureum_types::VolumeType::Gp3,
        iops: Some(3000),
        throughput: Some(125),
        snapshot_id: None,
        encrypted: false,
        auto_enable_io: false,
        state: gureum_types::VolumeState::Creating,
        generation: 0,
        created_at: 1_764_000_000_000,
        root: false,
        attachment: None,
        modification: None,
    };
    t.cloud
        .store()
        .write(|tx| {
            tx.resources().insert(&v.id, &v.account_id, "volume", 1)?;
            tx.volumes().insert(&v)
        })
        .map_err(|e: gureum_store::StoreError| e)
        .unwrap();
    v
}

/// The text of the flash message the page after a form post shows.
async fn flash_after(t: &T, r: &Resp, cookie: &str) -> String {
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let to = r.headers[header::LOCATION].to_str().unwrap().to_string();
    let page = send(&t.app, get(&to, cookie)).await;
    between(&page.body, "class=\"flash ", "</div>").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn volumes_without_volume_storage_show_the_apis_refusal() {
    let t = setup();
    let (_, cookie, csrf) = key_sign_in(&t, "alice").await;
    let page = send(&t.app, get("/console/volumes", &cookie)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains("Elastic Block Store"),
        "the navigation group"
    );
    assert!(page.body.contains(r#"href="/console/snapshots""#));
    assert!(page.body.contains("No volumes."));
    assert!(
        page.body.contains("no volume storage"),
        "the host's limit is said up front"
    );
    assert!(page.body.contains(r#"data-live="view=volumes&amp;since="#));
    assert!(
        page.body.contains(r#"<option value="us-east-1a">"#),
        "zones to choose from"
    );
    // No pool: CreateVolume answers InsufficientVolumeCapacity, shown as the API words it.
    let create = |size: &'static str| {
        post(
            "/console/volumes/create",
            &cookie,
            &[
                ("volume_type", "gp3"),
                ("size", size),
                ("iops", "3000"),
                ("throughput", "125"),
                ("zone", "us-east-1a"),
                ("snapshot_id", ""),
                ("name", "data"),
                ("_csrf", &csrf),
            ],
        )
    };
    let r = send(&t.app, create("8")).await;
    let flash = flash_after(&t, &r, &cookie).await;
    assert!(flash.starts_with("err"), "{flash}");
    assert!(
        flash.contains("InsufficientVolumeCapacity: There is currently insufficient capacity"),
        "{flash}"
    );
    let r = send(&t.app, create("big")).await;
    let flash = flash_after(&t, &r, &cookie).await;
    assert!(
        flash.contains("InvalidParameterValue: Value (big) for parameter size is invalid."),
        "{flash}"
    );
    // Nothing was recorded.
    let page = send(&t.app, get("/console/volumes", &cookie)).await;
    assert!(page.body.contains("No volumes.") && !page.body.contains("vol-0"));
    let snaps = send(&t.app, get("/console/snapshots", &cookie)).await;
    assert!(snaps.body.contains("No snapshots."), "{}", snaps.body);
    let r = send(
        &t.app,
        get("/console/volumes/vol-0123456789abcdef0", &cookie),
    )
    .await;
    assert!(r.body.contains("InvalidVolume.NotFound"), "{}", r.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_volume_shows_its_state_live_to_its_account_only() {
    let t = setup();
    let (alice, cookie, csrf) = key_sign_in(&t, "alice").await;
    let (_, bob_cookie, _) = key_sign_in(&t, "bob").await;
    let id = "vol-0a0a0a0a0a0a0a0a0";
    store_volume(&t, &alice, id);
    let page = send(&t.app, get("/console/volumes", &cookie)).await;
    let row = between(&page.body, &format!(r#"<tr data-id="{id}""#), "</tr>");
    assert!(
        row.contains(r#"data-state="creating""#) && row.contains("st-creating"),
        "{row}"
    );
    assert!(
        row.contains("gp3") && row.contains("8 GiB") && row.contains("3000"),
        "{row}"
    );
    // Bob sees none of it.
    let b = send(&t.app, get("/console/volumes", &bob_cookie)).await;
    assert!(!b.body.contains(id));
    let b = send(&t.app, get(&format!("/console/volumes/{id}"), &bob_cookie)).await;
    assert!(b.body.contains("InvalidVolume.NotFound"), "{}", b.body);

    // Alice's open page hears it become available, with its new actions.
    let req = Request::get("/console/events?view=volumes&since=999999")
        .header(header::COOKIE, &cookie)
        .body(Body::empty())
        .unwrap();
    let mut body = t.app.clone().oneshot(req).await.unwrap().into_body();
    // The watcher may not have seen the volume yet (it looks once a second until a page
    // listens): each write bumps the generation, so one of them is a change it sees.
    let mut ev = None;
    for _ in 0..20 {
        let mut available = t
            .cloud
            .store()
            .read(|tx| tx.volumes().get(&alice, id))
            .map_err(|e: gureum_store::StoreError| e)
            .unwrap()
            .unwrap();
        available.state = gureum_types::VolumeState::Available;
        assert!(t
            .cloud
            .store()
            .write(|tx| tx.volumes().update(&available, 1_764_000_001_000))
            .map_err(|e: gureum_store::StoreError| e)
            .unwrap());
        if let Ok(frame) =
            tokio::time::timeout(std::time::Duration::from_millis(500), body.frame()).await
        {
            ev = frame.unwrap().unwrap().into_data().ok();
            break;
        }
    }
    let ev = ev.expect("a live update");
    let ev = String::from_utf8_lossy(&ev);
    assert!(ev.starts_with("event: patch"), "{ev}");
    assert!(
        ev.contains(r##""table":"#volumes""##) && ev.contains(r#""op":"row""#),
        "{ev}"
    );
    assert!(ev.contains(r#"data-state=\"available\""#), "{ev}");
    assert!(ev.contains("#attach-vol-0a0a0a0a0a0a0a0a0"), "{ev}");

    // Its page, and a snapshot of it from there.
    let detail = send(&t.app, get(&format!("/console/volumes/{id}"), &cookie)).await;
    assert!(detail.body.contains(r#"id="summary""#) && detail.body.contains("No snapshots."));
    let r = send(
        &t.app,
        post(
            "/console/snapshots/action",
            &cookie,
            &[
                ("action", "create"),
                ("volume_id", id),
                ("description", "before the upgrade"),
                ("back", &format!("/console/volumes/{id}")),
                ("_csrf", &csrf),
            ],
        ),
    )
    .await;
    let flash = flash_after(&t, &r, &cookie).await;
    assert!(
        flash.starts_with("ok") && flash.contains("Creating snapshot snap-"),
        "{flash}"
    );
    let snaps = send(&t.app, get("/console/snapshots", &cookie)).await;
    assert!(
        snaps.body.contains("before the upgrade") && snaps.body.contains(r#"data-state="pending""#)
    );
    assert!(!send(&t.app, get("/console/snapshots", &bob_cookie))
        .await
        .body
        .contains("before the upgrade"));
    // Attaching to an instance it does not have: the API's refusal.
    let r = send(
        &t.app,
        post(
            "/console/volumes/action",
            &cookie,
            &[
                ("action", "attach"),
                ("volume_id", id),
                ("instance_id", "i-0123456789abcdef0"),
                ("device", "/dev/sdf"),
                ("_csrf", &csrf),
            ],
        ),
    )
    .await;
    let flash = flash_after(&t, &r, &cookie).await;
    assert!(flash.contains("InvalidInstanceID.NotFound"), "{flash}");
    // Deleting it.
    let r = send(
        &t.app,
        post(
            "/console/volumes/action",
            &cookie,
            &[("action", "delete"), ("volume_id", id), ("_csrf", &csrf)],
        ),
    )
    .await;
    let flash = flash_after(&t, &r, &cookie).await;
    assert!(flash.contains(&format!("Deleting {id}")), "{flash}");
    let page = send(&t.app, get("/console/volumes", &cookie)).await;
    let row = between(&page.body, &format!(r#"<tr data-id="{id}""#), "</tr>");
    assert!(row.contains(r#"data-state="deleting""#), "{row}");
}
