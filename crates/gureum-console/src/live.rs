//! Live updates. One watcher task reads every instance's version (a cheap indexed scan, four
//! times a second while any console page listens, once a second otherwise) and broadcasts
//! which instances of which account changed. Each open page holds one server-sent-events
//! stream (`GET /console/events`): when its account's instances change, the page's task asks
//! the core for them (DescribeInstances, as the account) and pushes the re-rendered rows or
//! panels. So a state change reaches an open page within about a quarter of a second, with
//! one long-lived request per page and nothing when nothing changes.
//!
//! The same watcher samples running instances' counters every few seconds for the
//! Monitoring graphs, and the instance page's stream carries the new points.

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use gureum_core::console_support::InstanceVersion;
use gureum_types::InstanceState;
use tokio::sync::{broadcast, mpsc};

use crate::metrics::SAMPLE_EVERY_MS;
use crate::pages;
use crate::session::{Session, Signed};
use crate::Console;

/// How often versions are read while a page listens.
pub const WATCH_FAST: Duration = Duration::from_millis(250);
/// How often otherwise (to keep the monitoring history going).
pub const WATCH_IDLE: Duration = Duration::from_secs(1);

/// Instances of one account that changed (or disappeared).
#[derive(Debug, Clone)]
pub struct Change {
    pub account_id: String,
    pub changed: Vec<String>,
    pub removed: Vec<String>,
}

pub struct Live {
    tx: broadcast::Sender<Arc<Change>>,
    seq: AtomicU64,
    /// The sequence number of each account's last change.
    last: Mutex<HashMap<String, u64>>,
}

impl Default for Live {
    fn default() -> Self {
        Live {
            tx: broadcast::channel(256).0,
            seq: AtomicU64::new(1),
            last: Mutex::default(),
        }
    }
}

type Key = (InstanceState, i64, Option<String>);

impl Live {
    /// The current sequence number: a page rendered now has seen every change up to it.
    pub fn seq(&self) -> u64 {
        self.seq.load(Ordering::SeqCst)
    }

    fn last_change(&self, account: &str) -> u64 {
        *self
            .last
            .lock()
            .expect("live poisoned")
            .get(account)
            .unwrap_or(&0)
    }

    /// Compare a fresh snapshot with the previous one and broadcast the differences.
    pub(crate) fn publish(
        &self,
        prev: &HashMap<String, (String, Key)>,
        now: &HashMap<String, (String, Key)>,
    ) {
        let mut by_account: HashMap<&str, (Vec<String>, Vec<String>)> = HashMap::new();
        for (id, (acct, key)) in now {
            if prev.get(id).map(|(_, k)| k) != Some(key) {
                by_account.entry(acct).or_default().0.push(id.clone());
            }
        }
        for (id, (acct, _)) in prev {
            if !now.contains_key(id) {
                by_account.entry(acct).or_default().1.push(id.clone());
            }
        }
        for (acct, (changed, removed)) in by_account {
            let seq = self.seq.fetch_add(1, Ordering::SeqCst) + 1;
            self.last
                .lock()
                .expect("live poisoned")
                .insert(acct.to_string(), seq);
            let _ = self.tx.send(Arc::new(Change {
                account_id: acct.to_string(),
                changed,
                removed,
            }));
        }
    }
}

fn snapshot(v: Vec<InstanceVersion>) -> HashMap<String, (String, Key)> {
    v.into_iter()
        .map(|i| (i.id, (i.account_id, (i.state, i.generation, i.public_ip))))
        .collect()
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The watcher: runs until the process ends.
pub fn spawn_watcher(c: Console) {
    tokio::spawn(async move {
        let mut prev: Option<HashMap<String, (String, Key)>> = None;
        let mut last_sample = 0i64;
        loop {
            let listening = c.live().tx.receiver_count() > 0;
            tokio::time::sleep(if listening { WATCH_FAST } else { WATCH_IDLE }).await;
            let versions = match c.cloud().instance_versions().await {
                Ok(v) => v,
                Err(e) => {
                    tracing::warn!(error = %e, "console: reading instance versions");
                    continue;
                }
            };
            let running: HashSet<String> = versions
                .iter()
                .filter(|v| v.state == InstanceState::Running)
                .map(|v| v.id.clone())
                .collect();
            let now = snapshot(versions);
            if let Some(p) = &prev {
                c.live().publish(p, &now);
            }
            prev = Some(now);
            let t = now_ms();
            if t - last_sample >= SAMPLE_EVERY_MS {
                last_sample = t;
                if let Some(m) = c.metrics_source() {
                    let c2 = c.clone();
                    let _ = tokio::task::spawn_blocking(move || {
                        c2.history().record(m.as_ref(), &running, t)
                    })
                    .await;
                }
            }
        }
    });
}

/// What a page shows live.
#[derive(Debug, Clone, PartialEq)]
enum View {
    Instances,
    Dashboard,
    Instance(String),
}

fn patch(ops: Vec<serde_json::Value>) -> Option<Event> {
    if ops.is_empty() {
        return None;
    }
    Some(
        Event::default()
            .event("patch")
            .data(serde_json::json!({ "ops": ops }).to_string()),
    )
}

/// The operations that bring a page of `view` up to date with `changed`/`removed` (`None`:
/// everything).
async fn render(
    c: &Console,
    s: &Session,
    view: &View,
    change: Option<&Change>,
) -> Vec<serde_json::Value> {
    use serde_json::json;
    let region = c.cloud().region().name.clone();
    match view {
        View::Instances => match change {
            Some(ch) => {
                let mut ops = Vec::new();
                let mut seen = HashSet::new();
                if !ch.changed.is_empty() {
                    let ids: Vec<&str> = ch.changed.iter().map(String::as_str).collect();
                    if let Ok(list) = c
                        .instances(s, vec![], vec![crate::data::filter("instance-id", &ids)])
                        .await
                    {
                        for i in &list {
                            seen.insert(i.id.clone());
                            ops.push(json!({
                                "op": "row",
                                "id": i.id,
                                "html": pages::instances::row(i, &region).into_string(),
                            }));
                        }
                    }
                }
                for id in ch.changed.iter().chain(&ch.removed) {
                    if !seen.contains(id) {
                        ops.push(json!({ "op": "remove", "id": id }));
                    }
                }
                ops
            }
            None => match c.instances(s, vec![], vec![]).await {
                Ok(list) => vec![json!({
                    "op": "rows",
                    "html": pages::instances::rows(&list, &region).into_string(),
                })],
                Err(_) => vec![],
            },
        },
        View::Dashboard => match pages::dashboard::counts(c, s).await {
            Ok(m) => vec![json!({ "op": "replace", "sel": "#counts", "html": m.into_string() })],
            Err(_) => vec![],
        },
        View::Instance(id) => {
            if let Some(ch) = change {
                if !ch.changed.contains(id) {
                    return vec![];
                }
            }
            match c
                .instances(s, vec![], vec![crate::data::filter("instance-id", &[id])])
                .await
            {
                Ok(list) => match list.first() {
                    Some(i) => vec![json!({
                        "op": "replace",
                        "sel": "#summary",
                        "html": pages::instance::summary(i, &region).into_string(),
                    })],
                    None => vec![],
                },
                Err(_) => vec![],
            }
        }
    }
}

/// `GET /console/events?view=…&since=…`: the page's live stream.
pub async fn events(
    State(c): State<Console>,
    Signed(s): Signed,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let view = match (q.get("view").map(String::as_str), q.get("id")) {
        (Some("instances"), _) => View::Instances,
        (Some("dashboard"), _) => View::Dashboard,
        (Some("instance"), Some(id)) => View::Instance(id.clone()),
        _ => return crate::session::refuse(axum::http::StatusCode::BAD_REQUEST, "unknown view"),
    };
    let since: u64 = q.get("since").and_then(|v| v.parse().ok()).unwrap_or(0);
    let mut rx = c.live().tx.subscribe();
    let mut closing = c.closing();
    let (tx, out) = mpsc::channel::<Event>(16);
    tokio::spawn(async move {
        // A change between the page's rendering and this stream: bring it up to date.
        if c.live().last_change(&s.account_id) > since {
            if let Some(e) = patch(render(&c, &s, &view, None).await) {
                if tx.send(e).await.is_err() {
                    return;
                }
            }
        }
        let mut tick = tokio::time::interval(Duration::from_millis(SAMPLE_EVERY_MS as u64));
        let mut last_point = 0i64;
        loop {
            let event = tokio::select! {
                r = rx.recv() => match r {
                    Ok(ch) if ch.account_id == s.account_id => patch(render(&c, &s, &view, Some(&ch)).await),
                    Ok(_) => None,
                    Err(broadcast::error::RecvError::Lagged(_)) => patch(render(&c, &s, &view, None).await),
                    Err(broadcast::error::RecvError::Closed) => break,
                },
                _ = tick.tick(), if matches!(view, View::Instance(_)) => {
                    let View::Instance(id) = &view else { unreachable!() };
                    metrics_event(&c, &s, id, &mut last_point).await
                },
                _ = tx.closed() => break,
                _ = closing.changed() => break,
            };
            // Signed out (or expired) meanwhile: the stream ends.
            if c.sessions().get(&s.token).is_none() {
                break;
            }
            if let Some(e) = event {
                if tx.send(e).await.is_err() {
                    break;
                }
            }
        }
    });
    let stream = futures_util::stream::unfold(out, |mut out| async move {
        out.recv().await.map(|e| (Ok::<_, Infallible>(e), out))
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

async fn metrics_event(c: &Console, s: &Session, id: &str, last: &mut i64) -> Option<Event> {
    // The points are the account's only if the instance is (checked through the core).
    let i = c.instance(s, id).await.ok()?;
    let points = c.history().points(id, i.vcpus);
    let p = points.last()?;
    if p.t <= *last {
        return None;
    }
    *last = p.t;
    Some(Event::default().event("metrics").data(p.json().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(rows: &[(&str, &str, &str, i64)]) -> HashMap<String, (String, Key)> {
        rows.iter()
            .map(|(acct, id, state, generation)| {
                (
                    id.to_string(),
                    (
                        acct.to_string(),
                        (state.parse().unwrap(), *generation, None),
                    ),
                )
            })
            .collect()
    }

    #[tokio::test]
    async fn changes_are_published_per_account() {
        let live = Live::default();
        let mut rx = live.tx.subscribe();
        let before = snap(&[
            ("a", "i-1", "pending", 1),
            ("a", "i-2", "running", 3),
            ("b", "i-3", "running", 1),
        ]);
        let after = snap(&[
            ("a", "i-1", "running", 2),
            ("b", "i-3", "running", 1),
            ("b", "i-4", "pending", 1),
        ]);
        let seq = live.seq();
        live.publish(&before, &after);
        let mut got: Vec<Arc<Change>> = vec![rx.recv().await.unwrap(), rx.recv().await.unwrap()];
        got.sort_by(|x, y| x.account_id.cmp(&y.account_id));
        assert_eq!(got[0].account_id, "a");
        assert_eq!(got[0].changed, vec!["i-1"]);
        assert_eq!(got[0].removed, vec!["i-2"]);
        assert_eq!(got[1].account_id, "b");
        assert_eq!(got[1].changed, vec!["i-4"]);
        assert!(got[1].removed.is_empty());
        assert!(live.last_change("a") > seq && live.last_change("b") > seq);
        assert_eq!(live.last_change("c"), 0);
        // Nothing changed: nothing is sent.
        live.publish(&after, &after);
        assert!(rx.try_recv().is_err());
    }
}
