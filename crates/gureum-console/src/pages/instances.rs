//! The instances table: search and state filter, live state changes, and start, stop, reboot
//! and terminate (with confirmation) on the selected rows.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::response::Response;
use gureum_ec2::ops as ec2;
use gureum_types::model::Instance;
use gureum_types::InstanceState;
use maud::{html, Markup};

use crate::data::name_of;
use crate::html::{csrf, layout, or_dash, short_time, state_badge};
use crate::session::{Posted, Signed};
use crate::Console;

/// The state filter's choices, in the order of an instance's life.
const STATES: [InstanceState; 6] = [
    InstanceState::Pending,
    InstanceState::Running,
    InstanceState::Stopping,
    InstanceState::Stopped,
    InstanceState::ShuttingDown,
    InstanceState::Terminated,
];

/// The words the search box matches (the script matches a row's text the same way).
fn search_text(i: &Instance) -> String {
    format!(
        "{} {} {} {} {} {} {} {}",
        name_of(&i.tags),
        i.id,
        i.instance_type,
        i.availability_zone,
        i.public_ip.as_deref().unwrap_or(""),
        i.private_ip,
        i.key_name.as_deref().unwrap_or(""),
        i.image_id
    )
    .to_lowercase()
}

/// One row of the table (also pushed live).
pub fn row(i: &Instance, _region: &str) -> Markup {
    let name = name_of(&i.tags);
    html! {
        tr data-id=(i.id) data-state=(i.state.as_str()) {
            td.sel { input type="checkbox" name="id" value=(i.id) form="instance-actions" aria-label={ "Select " (i.id) }; }
            td.name { @if name.is_empty() { span.muted { "–" } } @else { (name) } }
            td { a href={ "/console/instances/" (i.id) } { code { (i.id) } } }
            td { (state_badge(i.state)) }
            td { (i.instance_type) }
            td.opt { (i.availability_zone) }
            td.ip { (or_dash(i.public_ip.as_deref().unwrap_or(""))) }
            td.ip.opt { @if i.state.is_gone() { span.muted { "–" } } @else { (i.private_ip) } }
            td.opt { (or_dash(i.key_name.as_deref().unwrap_or(""))) }
            td.time.opt { (short_time(&i.launch_time)) }
        }
    }
}

pub fn rows(list: &[Instance], region: &str) -> Markup {
    html! {
        tbody {
            @for i in list { (row(i, region)) }
            tr.empty hidden[!list.is_empty()] { td colspan="10" { "No instances. " a href="/console/launch" { "Launch an instance" } } }
        }
    }
}

pub async fn page(
    State(c): State<Console>,
    Signed(s): Signed,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let since = c.live().seq();
    let search = q.get("q").cloned().unwrap_or_default();
    let state = q.get("state").cloned().unwrap_or_default();
    let mut list = match c.instances(&s, vec![], vec![]).await {
        Ok(l) => l,
        Err(e) => return super::failed(&c, &s, "Instances", "instances", &e),
    };
    // Newest first, as the AWS console sorts by launch time.
    list.sort_by(|a, b| b.launch_time.cmp(&a.launch_time).then(a.id.cmp(&b.id)));
    let needle = search.to_lowercase();
    list.retain(|i| {
        (state.is_empty() || i.state.as_str() == state)
            && (needle.is_empty() || search_text(i).contains(&needle))
    });
    let region = c.cloud().region().name.clone();
    let mut f = super::frame(&c, &s, "Instances", "instances");
    f.live = Some(format!("view=instances&since={since}"));
    layout(
        f,
        html! {
            div.head {
                h1 { "Instances " span.count #instance-count { "(" (list.len()) ")" } }
                a.button.primary href="/console/launch" { "Launch instances" }
            }
            form #instance-actions .toolbar method="post" action="/console/instances/action" data-async data-selection="instances" {
                (csrf(&s))
                input type="hidden" name="back" value="/console/instances";
                div.actions role="group" aria-label="Instance state" {
                    button type="submit" name="action" value="start" data-needs="stopped" { "Start" }
                    button type="submit" name="action" value="stop" data-needs="running pending" { "Stop" }
                    button type="submit" name="action" value="reboot" data-needs="running" { "Reboot" }
                    button.danger type="submit" name="action" value="terminate" data-needs="pending running stopping stopped"
                        data-confirm="Terminate the selected instances? Their root volumes are deleted; this cannot be undone." { "Terminate" }
                }
                span.selinfo aria-live="polite" {}
            }
            form.filters method="get" action="/console/instances" role="search" {
                label.sr for="filter" { "Search instances" }
                input #filter type="search" name="q" value=(search) placeholder="Find instance by name, id, type, IP, key…" data-filter="#instances" autocomplete="off";
                label.sr for="state-filter" { "Instance state" }
                select #state-filter name="state" data-state-filter="#instances" {
                    option value="" { "All states" }
                    @for st in STATES { option value=(st.as_str()) selected[st.as_str() == state] { (st.as_str()) } }
                }
                noscript { button type="submit" { "Filter" } }
            }
            div.table-wrap {
                table #instances .grid {
                    thead {
                        tr {
                            th.sel { input type="checkbox" data-select-all="#instances" aria-label="Select all instances"; }
                            th { "Name" } th { "Instance ID" } th { "Instance state" } th { "Instance type" }
                            th.opt { "Availability Zone" } th { "Public IPv4" } th.opt { "Private IPv4" } th.opt { "Key name" } th.opt { "Launch time" }
                        }
                    }
                    (rows(&list, &region))
                }
            }
        },
    )
}

fn ids_word(n: usize) -> &'static str {
    if n == 1 {
        "instance"
    } else {
        "instances"
    }
}

pub async fn action(State(c): State<Console>, p: Posted) -> Response {
    let ids = p.form.all("id");
    let back = super::safe_next(p.form.get("back"));
    let what = p.form.text("action");
    if ids.is_empty() {
        return super::back(
            &c,
            &p,
            &back,
            Err(gureum_types::ApiError::new(
                gureum_types::ErrorCode::MissingParameter,
                "Select at least one instance",
            )),
        );
    }
    let n = ids.len();
    let action = match what.as_str() {
        "start" => ec2::instances::Action::StartInstances { instance_ids: ids },
        "stop" => ec2::instances::Action::StopInstances {
            instance_ids: ids,
            force: false,
        },
        "reboot" => ec2::instances::Action::RebootInstances { instance_ids: ids },
        "terminate" => ec2::instances::Action::TerminateInstances { instance_ids: ids },
        _ => {
            return super::back(
                &c,
                &p,
                &back,
                Err(gureum_types::ApiError::new(
                    gureum_types::ErrorCode::InvalidParameterValue,
                    "Unknown action",
                )),
            )
        }
    };
    let result = c.call(&p.session, action).await.map(|r| match r {
        ec2::instances::Response::StateChanges(ch) => {
            let parts: Vec<String> = ch
                .iter()
                .map(|x| {
                    format!(
                        "{} ({} → {})",
                        x.instance_id,
                        x.previous.as_str(),
                        x.current.as_str()
                    )
                })
                .collect();
            format!("{}: {}", verb(&what), parts.join(", "))
        }
        _ => format!("{} {n} {}", verb(&what), ids_word(n)),
    });
    super::back(&c, &p, &back, result)
}

fn verb(what: &str) -> &'static str {
    match what {
        "start" => "Starting",
        "stop" => "Stopping",
        "reboot" => "Rebooting",
        _ => "Terminating",
    }
}
