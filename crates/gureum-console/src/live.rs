//! Live updates. One watcher task reads every instance's, volume's and snapshot's version (a
//! cheap indexed scan each, four times a second while any console page listens, once a second
//! otherwise) and broadcasts which records of which kind of which account changed. Each open
//! page holds one server-sent-events stream (`GET /console/events`): when its account's
//! records of a kind it shows change, the page's task asks the core for them (Describe…, as
//! the account) and pushes the re-rendered rows or panels. So a state change reaches an open
//! page within about a quarter of a second, with one long-lived request per page and nothing
//! when nothing changes.
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
use gureum_core::console_support::{EbsKind, EbsVersion, InstanceVersion};
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

/// The kinds of record a page can show live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Instance,
    Volume,
    Snapshot,
}

/// Records of one kind of one account that changed (or disappeared).
#[derive(Debug, Clone)]
pub struct Change {
    pub account_id: String,
    pub kind: Kind,
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

/// What tells one version of a record from the next: an instance's state, generation and
/// public address; a volume's or snapshot's generation (bumped by every recorded change).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Version {
    Instance(InstanceState, i64, Option<String>),
    Volume(i64),
    Snapshot(i64),
}

impl Version {
    fn kind(&self) -> Kind {
        match self {
            Version::Instance(..) => Kind::Instance,
            Version::Volume(_) => Kind::Volume,
            Version::Snapshot(_) => Kind::Snapshot,
        }
    }
}

/// Every record's account and version, by id.
pub(crate) type Versions = HashMap<String, (String, Version)>;

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

    /// Compare a fresh snapshot with the previous one and broadcast the differences, one
    /// change per account and kind.
    pub(crate) fn publish(&self, prev: &Versions, now: &Versions) {
        type Ids = (Vec<String>, Vec<String>);
        let mut by_account: HashMap<(&str, Kind), Ids> = HashMap::new();
        for (id, (acct, version)) in now {
            if prev.get(id).map(|(_, v)| v) != Some(version) {
                let e = by_account.entry((acct, version.kind())).or_default();
                e.0.push(id.clone());
            }
        }
        for (id, (acct, version)) in prev {
            if !now.contains_key(id) {
                let e = by_account.entry((acct, version.kind())).or_default();
                e.1.push(id.clone());
            }
        }
        for ((acct, kind), (changed, removed)) in by_account {
            let seq = self.seq.fetch_add(1, Ordering::SeqCst) + 1;
            self.last
                .lock()
                .expect("live poisoned")
                .insert(acct.to_string(), seq);
            let _ = self.tx.send(Arc::new(Change {
                account_id: acct.to_string(),
                kind,
                changed,
                removed,
            }));
        }
    }
}

fn snapshot(instances: Vec<InstanceVersion>, ebs: Vec<EbsVersion>) -> Versions {
    let instances = instances.into_iter().map(|i| {
        let v = Version::Instance(i.state, i.generation, i.public_ip);
        (i.id, (i.account_id, v))
    });
    let ebs = ebs.into_iter().map(|e| {
        let v = match e.kind {
            EbsKind::Volume => Version::Volume(e.generation),
            EbsKind::Snapshot => Version::Snapshot(e.generation),
        };
        (e.id, (e.account_id, v))
    });
    instances.chain(ebs).collect()
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
        let mut prev: Option<Versions> = None;
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
            // Both or neither: a snapshot without the volumes would read as all deleted.
            let ebs = match c.cloud().ebs_versions().await {
                Ok(v) => v,
                Err(e) => {
                    tracing::warn!(error = %e, "console: reading volume versions");
                    continue;
                }
            };
            let running: HashSet<String> = versions
                .iter()
                .filter(|v| v.state == InstanceState::Running)
                .map(|v| v.id.clone())
                .collect();
            let now = snapshot(versions, ebs);
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
    Volumes,
    Volume(String),
    /// `all`: every snapshot the account may use, not only its own.
    Snapshots {
        all: bool,
    },
}

impl View {
    /// Whether a change of `kind` can change what the page shows.
    fn shows(&self, kind: Kind) -> bool {
        match self {
            View::Instances => kind == Kind::Instance,
            // The dashboard counts volumes; an instance's page lists its volumes.
            View::Dashboard | View::Instance(_) => kind != Kind::Snapshot,
            View::Volumes | View::Volume(_) => kind == Kind::Volume,
            View::Snapshots { .. } => kind == Kind::Snapshot,
        }
    }
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

/// The operations that bring `table`'s rows up to date with `ch`: the rows `found` for the
/// changed ids (`(id, html)`) replace theirs or join the table; changed or removed ids not
/// found leave it.
fn row_ops(table: &str, ch: &Change, found: Vec<(String, String)>) -> Vec<serde_json::Value> {
    use serde_json::json;
    let seen: HashSet<String> = found.iter().map(|(id, _)| id.clone()).collect();
    let mut ops: Vec<_> = found
        .into_iter()
        .map(|(id, html)| json!({ "op": "row", "table": table, "id": id, "html": html }))
        .collect();
    for id in ch.changed.iter().chain(&ch.removed) {
        if !seen.contains(id) {
            ops.push(json!({ "op": "remove", "table": table, "id": id }));
        }
    }
    ops
}

fn rows_op(table: &str, html: maud::Markup) -> Vec<serde_json::Value> {
    vec![serde_json::json!({ "op": "rows", "table": table, "html": html.into_string() })]
}

fn replace_op(sel: &str, html: maud::Markup) -> serde_json::Value {
    serde_json::json!({ "op": "replace", "sel": sel, "html": html.into_string() })
}

/// The changed ids of `ch` (none: `None`, the whole table is asked for).
fn ids(ch: &Change) -> Vec<&str> {
    ch.changed.iter().map(String::as_str).collect()
}

/// The operations that bring a page of `view` up to date with a change (`None`: with
/// everything).
async fn render(
    c: &Console,
    s: &Session,
    view: &View,
    change: Option<&Change>,
) -> Vec<serde_json::Value> {
    use crate::data::filter;
    let region = c.cloud().region().name.clone();
    match view {
        View::Instances => match change {
            Some(ch) => {
                let found = if ch.changed.is_empty() {
                    vec![]
                } else {
                    c.instances(s, vec![], vec![filter("instance-id", &ids(ch))])
                        .await
                        .unwrap_or_default()
                };
                let found = found
                    .iter()
                    .map(|i| {
                        (
                            i.id.clone(),
                            pages::instances::row(i, &region).into_string(),
                        )
                    })
                    .collect();
                row_ops("#instances", ch, found)
            }
            None => match c.instances(s, vec![], vec![]).await {
                Ok(list) => rows_op("#instances", pages::instances::rows(&list, &region)),
                Err(_) => vec![],
            },
        },
        View::Dashboard => match pages::dashboard::counts(c, s).await {
            Ok(m) => vec![replace_op("#counts", m)],
            Err(_) => vec![],
        },
        View::Instance(id) => {
            let summary =
                change.is_none_or(|ch| ch.kind == Kind::Instance && ch.changed.contains(id));
            let volumes = change.is_none_or(|ch| ch.kind == Kind::Volume);
            if !summary && !volumes {
                return vec![];
            }
            let Some(i) = c
                .instances(s, vec![], vec![filter("instance-id", &[id])])
                .await
                .ok()
                .and_then(|l| l.into_iter().next())
            else {
                return vec![];
            };
            let mut ops = Vec::new();
            if summary {
                ops.push(replace_op(
                    "#summary",
                    pages::instance::summary(&i, &region),
                ));
            }
            if volumes {
                if let Ok(vols) = c
                    .volumes(s, vec![filter("attachment.instance-id", &[id])])
                    .await
                {
                    ops.push(replace_op(
                        "#instance-volumes",
                        pages::instance::volumes_table(&i, &vols),
                    ));
                }
            }
            ops
        }
        View::Volumes => {
            // Every volume: a row's attach dialog offers each instance's next free device.
            let Ok(all) = c.volumes(s, vec![]).await else {
                return vec![];
            };
            let targets = pages::volumes::Targets::load(c, s, &all).await;
            match change {
                Some(ch) => {
                    let found = all
                        .iter()
                        .filter(|v| ch.changed.contains(&v.id))
                        .map(|v| {
                            (
                                v.id.clone(),
                                pages::volumes::row(s, v, &targets).into_string(),
                            )
                        })
                        .collect();
                    row_ops("#volumes", ch, found)
                }
                None => rows_op("#volumes", pages::volumes::rows(s, &all, &targets)),
            }
        }
        View::Volume(id) => {
            if change.is_some_and(|ch| !ch.changed.contains(id) && !ch.removed.contains(id)) {
                return vec![];
            }
            let Ok(all) = c.volumes(s, vec![]).await else {
                return vec![];
            };
            match all.iter().find(|v| &v.id == id) {
                Some(v) => {
                    let targets = pages::volumes::Targets::load(c, s, &all).await;
                    vec![replace_op(
                        "#summary",
                        pages::volumes::summary(s, v, &targets),
                    )]
                }
                None => vec![replace_op("#summary", pages::volumes::gone(id))],
            }
        }
        View::Snapshots { all } => {
            let owners = pages::snapshots::owners(*all);
            let zones = c.zones(s).await.unwrap_or_default();
            match change {
                Some(ch) => {
                    let found = if ch.changed.is_empty() {
                        vec![]
                    } else {
                        c.snapshots(s, owners, vec![filter("snapshot-id", &ids(ch))])
                            .await
                            .unwrap_or_default()
                    };
                    let found = found
                        .iter()
                        .map(|sn| {
                            (
                                sn.id.clone(),
                                pages::snapshots::row(s, sn, &zones).into_string(),
                            )
                        })
                        .collect();
                    row_ops("#snapshots", ch, found)
                }
                None => match c.snapshots(s, owners, vec![]).await {
                    Ok(list) => rows_op("#snapshots", pages::snapshots::rows(s, &list, &zones)),
                    Err(_) => vec![],
                },
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
        (Some("volumes"), _) => View::Volumes,
        (Some("volume"), Some(id)) => View::Volume(id.clone()),
        (Some("snapshots"), _) => View::Snapshots {
            all: q.get("show").is_some_and(|v| v == "all"),
        },
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
                    Ok(ch) if ch.account_id == s.account_id && view.shows(ch.kind) => patch(render(&c, &s, &view, Some(&ch)).await),
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

    fn snap(rows: &[(&str, &str, &str, i64)]) -> Versions {
        rows.iter()
            .map(|(acct, id, state, generation)| {
                let v = Version::Instance(state.parse().unwrap(), *generation, None);
                (id.to_string(), (acct.to_string(), v))
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

    fn ebs(kind: EbsKind, acct: &str, id: &str, generation: i64) -> EbsVersion {
        EbsVersion {
            kind,
            account_id: acct.into(),
            id: id.into(),
            generation,
        }
    }

    #[tokio::test]
    async fn volumes_and_snapshots_are_published_as_their_own_kinds() {
        let live = Live::default();
        let mut rx = live.tx.subscribe();
        let before = snapshot(
            vec![],
            vec![
                ebs(EbsKind::Volume, "a", "vol-1", 0),
                ebs(EbsKind::Volume, "a", "vol-2", 4),
                ebs(EbsKind::Snapshot, "a", "snap-1", 0),
            ],
        );
        // vol-1 became available, vol-2 was deleted, snap-1 completed.
        let after = snapshot(
            vec![],
            vec![
                ebs(EbsKind::Volume, "a", "vol-1", 1),
                ebs(EbsKind::Snapshot, "a", "snap-1", 1),
            ],
        );
        live.publish(&before, &after);
        let mut got: Vec<Arc<Change>> = vec![rx.recv().await.unwrap(), rx.recv().await.unwrap()];
        got.sort_by_key(|c| c.kind == Kind::Snapshot);
        assert_eq!(
            (got[0].kind, &got[0].changed[..], &got[0].removed[..]),
            (
                Kind::Volume,
                &["vol-1".to_string()][..],
                &["vol-2".to_string()][..]
            )
        );
        assert_eq!(
            (got[1].kind, &got[1].changed[..]),
            (Kind::Snapshot, &["snap-1".to_string()][..])
        );
        assert!(rx.try_recv().is_err());
        // Each page listens to the kinds it shows.
        assert!(View::Volumes.shows(Kind::Volume) && !View::Volumes.shows(Kind::Instance));
        assert!(!View::Instances.shows(Kind::Volume));
        assert!(View::Instance("i-1".into()).shows(Kind::Volume));
        assert!(View::Snapshots { all: false }.shows(Kind::Snapshot));
        assert!(!View::Snapshots { all: false }.shows(Kind::Volume));
    }
}
