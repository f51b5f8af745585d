//! EBS snapshots: the table (live: a snapshot goes from `pending` with its progress to
//! `completed`), and create (from a volume), copy, delete, and create a volume from one.
//! "Owned by me" by default; "All I can use" adds snapshots other accounts shared.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::response::Response;
use gureum_ec2::ops as ec2;
use gureum_types::model::{Snapshot, Volume};
use gureum_types::{ApiError, ErrorCode, SnapshotState, VolumeState};
use maud::{html, Markup};

use crate::data::name_of;
use crate::html::{csrf, layout, or_dash, short_time, snapshot_badge};
use crate::pages::volumes::{create_dialog, name_tag, snapshot_fields, when, Dialog};
use crate::session::{Posted, Session, Signed};
use crate::Console;

const LIST: &str = "/console/snapshots";

/// Which snapshots a page lists: the account's own, or every one it may use.
pub fn owners(all: bool) -> Vec<String> {
    if all {
        vec![]
    } else {
        vec!["self".into()]
    }
}

/// One row of the table (also pushed live). `zones` are for the create-volume dialog.
pub fn row(s: &Session, sn: &Snapshot, zones: &[(String, String)]) -> Markup {
    let mine = sn.owner_id == s.account_id;
    let id = &sn.id;
    html! {
        tr data-id=(id) data-state=(sn.state.as_str()) {
            td.name { (or_dash(name_of(&sn.tags))) }
            td { code { (id) } }
            td { a href={ "/console/volumes/" (sn.volume_id) } { code { (sn.volume_id) } } }
            td.nowrap { (sn.volume_size) " GiB" }
            td { (snapshot_badge(sn.state, &sn.progress))
                 @if let Some(m) = &sn.state_message { br; span.muted { (m) } } }
            td.opt { (when(&sn.start_time)) }
            td.opt { (or_dash(&sn.description)) }
            td.opt { (if mine { "self".to_string() } else { sn.owner_id.clone() }) }
            td { div.row-actions {
                @if sn.state == SnapshotState::Completed {
                    button.small type="button" data-open={ "#volume-from-" (id) } title="Create volume from snapshot" { "Create volume" }
                    (create_dialog(s, &format!("volume-from-{id}"), zones, &[], Some(sn)))
                }
                @if mine && sn.state == SnapshotState::Completed {
                    button.small type="button" data-open={ "#copy-" (id) } { "Copy" }
                    (copy_dialog(s, sn))
                }
                @if mine && sn.state != SnapshotState::Pending {
                    form.inline method="post" action="/console/snapshots/action" data-async data-confirm={ "Delete " (id) "? Volumes made from it keep their data." } {
                        (csrf(s))
                        input type="hidden" name="action" value="delete";
                        input type="hidden" name="snapshot_id" value=(id);
                        button.small.danger type="submit" { "Delete" }
                    }
                }
            } }
        }
    }
}

fn copy_dialog(s: &Session, sn: &Snapshot) -> Markup {
    let id = format!("copy-{}", sn.id);
    let dialog = Dialog {
        id: &id,
        title: html! { "Copy snapshot " (sn.id) },
        to: "/console/snapshots/action",
        hidden: &[("action", "copy"), ("snapshot_id", &sn.id)],
        submit: "Copy snapshot",
        enabled: true,
    };
    let description = format!("[Copied {}] {}", sn.id, sn.description);
    dialog.render(s, snapshot_fields(&id, description.trim_end()))
}

pub fn rows(s: &Session, list: &[Snapshot], zones: &[(String, String)]) -> Markup {
    html! {
        tbody {
            @for sn in list { (row(s, sn, zones)) }
            tr.empty hidden[!list.is_empty()] { td colspan="9" { "No snapshots." } }
        }
    }
}

/// A volume's snapshots, for its page.
pub fn mini_table(list: &[Snapshot]) -> Markup {
    html! {
        table.plain {
            thead { tr { th { "Snapshot ID" } th { "State" } th { "Started" } th { "Description" } } }
            tbody {
                @if list.is_empty() { tr { td colspan="4" .muted { "No snapshots. " } } }
                @for sn in list {
                    tr {
                        td { a href=(LIST) { code { (sn.id) } } }
                        td { (snapshot_badge(sn.state, &sn.progress)) }
                        td.time { (short_time(&sn.start_time)) }
                        td { (or_dash(&sn.description)) }
                    }
                }
            }
        }
    }
}

/// The create dialog's volume choice: the account's volumes a snapshot can be taken of.
fn snapshottable(v: &Volume) -> bool {
    matches!(v.state, VolumeState::Available | VolumeState::InUse)
}

pub async fn page(
    State(c): State<Console>,
    Signed(s): Signed,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let since = c.live().seq();
    let all = q.get("show").is_some_and(|v| v == "all");
    let list = match c.snapshots(&s, owners(all), vec![]).await {
        Ok(l) => l,
        Err(e) => return super::failed(&c, &s, "Snapshots", "snapshots", &e),
    };
    let zones = c.zones(&s).await.unwrap_or_default();
    let volumes = c.volumes(&s, vec![]).await.unwrap_or_default();
    let mut f = super::frame(&c, &s, "Snapshots", "snapshots");
    f.live = Some(format!(
        "view=snapshots{}&since={since}",
        if all { "&show=all" } else { "" }
    ));
    layout(
        f,
        html! {
            div.head {
                h1 { "Snapshots " span.count { "(" (list.len()) ")" } }
                button.primary type="button" data-open="#snapshot-create" { "Create snapshot" }
            }
            div.tabs role="tablist" aria-label="Which snapshots" {
                a role="tab" href=(LIST) aria-selected=(if all { "false" } else { "true" }) { "Owned by me" }
                a role="tab" href={ (LIST) "?show=all" } aria-selected=(if all { "true" } else { "false" }) { "All I can use" }
            }
            p.hint { "A snapshot is a point-in-time copy of a volume: make volumes from it in any zone, copy it, or keep it when the volume is gone." }
            (Dialog {
                id: "snapshot-create",
                title: html! { "Create snapshot" },
                to: "/console/snapshots/action",
                hidden: &[("action", "create")],
                submit: "Create snapshot",
                enabled: true,
            }
            .render(&s, html! {
                label for="snapshot-create-volume" { "Volume" }
                select #snapshot-create-volume name="volume_id" required {
                    @for v in volumes.iter().filter(|v| snapshottable(v)) {
                        option value=(v.id) { (v.id) @let n = name_of(&v.tags); @if !n.is_empty() { " (" (n) ")" } " – " (v.size_gib) " GiB, " (v.state.as_str()) }
                    }
                }
                (snapshot_fields("snapshot-create", ""))
            }))
            div.table-wrap {
                table #snapshots .grid {
                    thead {
                        tr {
                            th { "Name" } th { "Snapshot ID" } th { "Volume ID" } th { "Volume size" } th { "Snapshot status" }
                            th.opt { "Started" } th.opt { "Description" } th.opt { "Owner" } th { span.sr { "Actions" } }
                        }
                    }
                    (rows(&s, &list, &zones))
                }
            }
        },
    )
}

pub async fn action(State(c): State<Console>, p: Posted) -> Response {
    let f = &p.form;
    let back = match f.get("back") {
        Some(b) => super::safe_next(Some(b)),
        None => LIST.to_string(),
    };
    let r = match f.get("action") {
        Some("create") => {
            let volume_id = f.text("volume_id");
            c.call(
                &p.session,
                ec2::snapshots::Action::CreateSnapshot {
                    volume_id: volume_id.clone(),
                    description: f.text("description"),
                    tag_specifications: name_tag(f, "snapshot"),
                },
            )
            .await
            .map(|r| match r {
                ec2::snapshots::Response::Snapshot(sn) => {
                    format!("Creating snapshot {} of {volume_id}", sn.id)
                }
                _ => format!("Creating a snapshot of {volume_id}"),
            })
        }
        Some("copy") => {
            let source = f.text("snapshot_id");
            c.call(
                &p.session,
                ec2::snapshots::Action::CopySnapshot {
                    source_region: c.cloud().region().name.clone(),
                    source_snapshot_id: source.clone(),
                    description: f.text("description"),
                    tag_specifications: name_tag(f, "snapshot"),
                },
            )
            .await
            .map(|r| match r {
                ec2::snapshots::Response::CopySnapshot { snapshot_id, .. } => {
                    format!("Copying {source} to {snapshot_id}")
                }
                _ => format!("Copying {source}"),
            })
        }
        Some("delete") => {
            let id = f.text("snapshot_id");
            c.call(
                &p.session,
                ec2::snapshots::Action::DeleteSnapshot {
                    snapshot_id: id.clone(),
                },
            )
            .await
            .map(|_| format!("Deleted snapshot {id}"))
        }
        _ => Err(ApiError::new(
            ErrorCode::InvalidParameterValue,
            "Unknown action",
        )),
    };
    super::back(&c, &p, &back, r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pages::volumes::tests::session;

    fn snapshot(id: &str, owner: &str, state: SnapshotState, progress: &str) -> Snapshot {
        Snapshot {
            id: id.into(),
            volume_id: "vol-1".into(),
            state,
            state_message: None,
            start_time: "2026-12-07T04:00:00.000Z".into(),
            progress: progress.into(),
            owner_id: owner.into(),
            description: "nightly".into(),
            volume_size: 8,
            encrypted: false,
            tags: vec![],
        }
    }

    #[test]
    fn a_pending_snapshot_shows_its_progress_and_no_actions() {
        let s = session();
        let html = row(
            &s,
            &snapshot("snap-1", &s.account_id, SnapshotState::Pending, "40%"),
            &[],
        )
        .into_string();
        assert!(html.contains(r#"data-state="pending""#) && html.contains("40%"));
        assert!(
            !html.contains("<form") && !html.contains("data-open"),
            "{html}"
        );
    }

    #[test]
    fn a_completed_snapshot_of_mine_copies_deletes_and_makes_volumes() {
        let s = session();
        let zones = [("us-east-1a".to_string(), "use1-az1".to_string())];
        let html = row(
            &s,
            &snapshot("snap-1", &s.account_id, SnapshotState::Completed, "100%"),
            &zones,
        )
        .into_string();
        assert!(html.contains("#volume-from-snap-1") && html.contains("#copy-snap-1"));
        assert!(html.contains(r#"value="delete""#));
        // The create-volume dialog starts from the snapshot: its id and size.
        assert!(
            html.contains(r#"name="snapshot_id" value="snap-1""#),
            "{html}"
        );
        assert!(
            html.contains(r#"name="size" type="number" min="8" max="65536" value="8""#),
            "{html}"
        );
        assert!(html.contains(r#"<option value="us-east-1a">"#));
        assert!(html.contains(">self<"));
    }

    #[test]
    fn a_shared_snapshot_only_makes_volumes() {
        let s = session();
        let html = row(
            &s,
            &snapshot("snap-1", "222222222222", SnapshotState::Completed, "100%"),
            &[],
        )
        .into_string();
        assert!(html.contains("#volume-from-snap-1") && html.contains("222222222222"));
        assert!(!html.contains("#copy-") && !html.contains(r#"value="delete""#));
    }
}
