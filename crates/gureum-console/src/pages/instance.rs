//! One instance: a live summary, the state actions, and the tabs (details, security,
//! networking, storage, monitoring, console output, connect).

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::response::Response;
use gureum_ec2::ops as ec2;
use gureum_types::model::{Instance, SecurityGroupRule, Volume};
use gureum_types::{HttpTokens, Hypervisor};
use maud::{html, Markup, PreEscaped};

use crate::data::{filter, name_of};
use crate::html::{attachment_badge, csrf, dl, fmt_time, layout, or_dash, state_badge};
use crate::session::{Posted, Signed};
use crate::Console;

const TABS: &[(&str, &str)] = &[
    ("details", "Details"),
    ("security", "Security"),
    ("networking", "Networking"),
    ("storage", "Storage"),
    ("monitoring", "Monitoring"),
    ("console", "Console output"),
    ("connect", "Connect"),
];

/// The summary panel (also pushed live).
pub fn summary(i: &Instance, region: &str) -> Markup {
    let dns = i.public_dns_name(region);
    html! {
        section #summary .card.summary data-state=(i.state.as_str()) {
            dl.kv.cols4 {
                div { dt { "Instance ID" } dd { code { (i.id) } } }
                div { dt { "Instance state" } dd { (state_badge(i.state)) } }
                div { dt { "Public IPv4 address" } dd.ip #public-ip { (or_dash(i.public_ip.as_deref().unwrap_or(""))) } }
                div { dt { "Private IPv4 address" } dd.ip { (or_dash(if i.state.is_gone() { "" } else { &i.private_ip })) } }
                div { dt { "Instance type" } dd { (i.instance_type) } }
                div { dt { "Public DNS" } dd { (or_dash(&dns)) } }
                div { dt { "Availability Zone" } dd { (i.availability_zone) } }
                div { dt { "State reason" } dd { (or_dash(&i.state_transition_reason))
                    @if let Some(reason) = &i.state_reason { br; span.muted title=(reason.code.as_str()) { (reason.message) } } } }
            }
        }
    }
}

fn rule_rows(rules: &[&SecurityGroupRule]) -> Markup {
    html! {
        @if rules.is_empty() {
            tr { td colspan="5" .muted { "No rules" } }
        }
        @for r in rules {
            tr {
                td { (crate::pages::groups::type_label(r)) }
                td { (crate::pages::groups::protocol_label(r.protocol)) }
                td { (crate::pages::groups::port_label(r)) }
                td { code { (crate::pages::groups::peer_label(r)) } }
                td { (or_dash(r.description.as_deref().unwrap_or(""))) }
            }
        }
    }
}

pub async fn page(
    State(c): State<Console>,
    Signed(s): Signed,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let since = c.live().seq();
    let tab = q
        .get("tab")
        .map(String::as_str)
        .filter(|t| TABS.iter().any(|(k, _)| k == t))
        .unwrap_or("details")
        .to_string();
    let i = match c.instance(&s, &id).await {
        Ok(i) => i,
        Err(e) => return super::failed(&c, &s, "Instance", "instances", &e),
    };
    let region = c.cloud().region().name.clone();
    let name = name_of(&i.tags).to_string();
    let title = if name.is_empty() {
        i.id.clone()
    } else {
        format!("{name} ({})", i.id)
    };
    let body = match tab.as_str() {
        "security" => security_tab(&c, &s, &i).await,
        "networking" => networking_tab(&c, &s, &i, &region).await,
        "storage" => storage_tab(&c, &s, &i).await,
        "monitoring" => monitoring_tab(&c, &i),
        "console" => console_tab(&c, &s, &i).await,
        "connect" => connect_tab(&c, &s, &i).await,
        _ => details_tab(&c, &s, &i).await,
    };
    let mut f = super::frame(&c, &s, &title, "instances");
    f.live = Some(format!("view=instance&id={}&since={since}", i.id));
    let back = format!("/console/instances/{}?tab={tab}", i.id);
    layout(
        f,
        html! {
            nav.crumbs aria-label="Breadcrumb" { a href="/console/instances" { "Instances" } " › " (i.id) }
            div.head {
                h1 { "Instance summary for " (title) }
                form #instance-actions .actions method="post" action="/console/instances/action" data-async data-selection="single" {
                    (csrf(&s))
                    input type="hidden" name="id" value=(i.id);
                    input type="hidden" name="back" value=(back);
                    button type="submit" name="action" value="start" data-needs="stopped" { "Start" }
                    button type="submit" name="action" value="stop" data-needs="running pending" { "Stop" }
                    button type="submit" name="action" value="reboot" data-needs="running" { "Reboot" }
                    button.danger type="submit" name="action" value="terminate" data-needs="pending running stopping stopped"
                        data-confirm={ "Terminate " (i.id) "? Its root volume is deleted; this cannot be undone." } { "Terminate" }
                    button type="button" data-open="#image-dialog" data-needs="running stopped" { "Create image" }
                }
            }
            (summary(&i, &region))
            dialog #image-dialog aria-labelledby="image-dialog-title" {
                form method="post" action={ "/console/instances/" (i.id) "/image" } {
                    h2 #image-dialog-title { "Create image from " (i.id) }
                    (csrf(&s))
                    label for="image-name" { "Image name" }
                    input #image-name name="name" required maxlength="128";
                    label for="image-desc" { "Image description" }
                    input #image-desc name="description" maxlength="255";
                    label.check { input type="checkbox" name="no_reboot"; " No reboot" }
                    div.buttons {
                        button type="button" data-close { "Cancel" }
                        button.primary type="submit" { "Create image" }
                    }
                }
            }
            div.tabs role="tablist" aria-label="Instance details" {
                @for (k, label) in TABS {
                    a role="tab" href={ "/console/instances/" (i.id) "?tab=" (k) } aria-selected=(if *k == tab { "true" } else { "false" }) { (label) }
                }
            }
            section.card.tabpanel role="tabpanel" { (body) }
        },
    )
}

async fn details_tab(c: &Console, s: &crate::session::Session, i: &Instance) -> Markup {
    let image_name = c
        .images(s, vec![i.image_id.clone()], vec![], vec![])
        .await
        .ok()
        .and_then(|v| v.into_iter().next())
        .map(|im| im.name)
        .unwrap_or_default();
    html! {
        (dl(&[
            ("Instance ID", html! { code { (i.id) } }),
            ("AMI ID", html! { code { (i.image_id) } @if !image_name.is_empty() { " (" (image_name) ")" } }),
            ("Key pair", or_dash(i.key_name.as_deref().unwrap_or(""))),
            ("Launch time", html! { (fmt_time(&i.launch_time)) }),
            ("vCPUs", html! { (i.vcpus) }),
            ("Platform", html! { "Linux/UNIX" }),
            ("Virtualization", html! { (match i.hypervisor { Hypervisor::Vm => "VM", Hypervisor::Container => "system container" }) }),
            ("VPC ID", html! { code { (i.vpc_id) } }),
            ("Subnet ID", html! { code { (i.subnet_id) } }),
            ("Shutdown behavior", html! { (i.shutdown_behavior) }),
            ("Termination protection", html! { (if i.disable_api_termination { "Enabled" } else { "Disabled" }) }),
            ("IMDSv2", html! { (match i.metadata_http_tokens { HttpTokens::Required => "Required", HttpTokens::Optional => "Optional" }) }),
            ("Reservation", html! { code { (i.reservation_id) } }),
        ]))
        h3 { "Tags" }
        table.plain {
            thead { tr { th { "Key" } th { "Value" } } }
            tbody {
                @if i.tags.is_empty() { tr { td colspan="2" .muted { "No tags" } } }
                @for t in &i.tags { tr { td { (t.key) } td { (t.value) } } }
            }
        }
    }
}

async fn security_tab(c: &Console, s: &crate::session::Session, i: &Instance) -> Markup {
    let ids: Vec<String> = i.security_groups.iter().map(|(id, _)| id.clone()).collect();
    let groups = if ids.is_empty() {
        Ok(vec![])
    } else {
        c.security_groups(s, ids).await
    };
    match groups {
        Err(e) => crate::html::api_error(&e),
        Ok(groups) => html! {
            @for g in &groups {
                h3 { a href={ "/console/security-groups/" (g.id) } { (g.id) } " (" (g.name) ")" }
                @for (title, egress) in [("Inbound rules", false), ("Outbound rules", true)] {
                    h4 { (title) }
                    table.plain {
                        thead { tr { th { "Type" } th { "Protocol" } th { "Port range" } th { (if egress { "Destination" } else { "Source" }) } th { "Description" } } }
                        tbody { (rule_rows(&g.rules.iter().filter(|r| r.is_egress == egress).collect::<Vec<_>>())) }
                    }
                }
                p { a.button href={ "/console/security-groups/" (g.id) "/rules?dir=in" } { "Edit inbound rules" } }
            }
        },
    }
}

async fn networking_tab(
    c: &Console,
    s: &crate::session::Session,
    i: &Instance,
    region: &str,
) -> Markup {
    let eip = match c
        .call(
            s,
            ec2::addresses::Action::DescribeAddresses {
                public_ips: vec![],
                allocation_ids: vec![],
                filters: vec![filter("instance-id", &[&i.id])],
            },
        )
        .await
    {
        Ok(ec2::addresses::Response::DescribeAddresses { addresses, .. }) => {
            addresses.into_iter().next()
        }
        _ => None,
    };
    html! {
        (dl(&[
            ("Public IPv4 address", or_dash(i.public_ip.as_deref().unwrap_or(""))),
            ("Public DNS", or_dash(&i.public_dns_name(region))),
            ("Elastic IP", match &eip { Some(a) => html! { (a.public_ip) " " code { (a.allocation_id) } }, None => or_dash("") }),
            ("Private IPv4 address", or_dash(if i.state.is_gone() { "" } else { &i.private_ip })),
            ("Private DNS", or_dash(&i.private_dns_name(region))),
            ("VPC ID", html! { code { (i.vpc_id) } }),
            ("Subnet ID", html! { code { (i.subnet_id) } }),
            ("Network interface", html! { code { (i.network_interface_id) } }),
            ("MAC address", html! { code { (i.mac) } }),
        ]))
    }
}

async fn storage_tab(c: &Console, s: &crate::session::Session, i: &Instance) -> Markup {
    let volumes = c
        .volumes(s, vec![filter("attachment.instance-id", &[&i.id])])
        .await;
    html! {
        (dl(&[
            ("Root device name", html! { code { "/dev/xvda" } }),
            ("Root device type", html! { "EBS" }),
        ]))
        h3 { "Block devices" }
        @match volumes {
            Ok(v) => (volumes_table(i, &v)),
            Err(e) => (crate::html::api_error(&e)),
        }
        p { a.button href="/console/volumes" { "Attach a volume" } }
    }
}

/// The instance's block devices: its root volume, then the EBS volumes attached to it (also
/// pushed live as they attach and detach).
pub fn volumes_table(i: &Instance, volumes: &[Volume]) -> Markup {
    html! {
        table #instance-volumes .plain {
            thead { tr { th { "Volume ID" } th { "Device name" } th { "Volume size (GiB)" } th { "Attachment status" } th { "Attachment time" } th { "Delete on termination" } } }
            tbody {
                @if i.state.is_gone() {
                    tr { td colspan="6" .muted { "The volume was deleted with the instance." } }
                } @else {
                    tr {
                        td { code { (i.root_volume_id) } }
                        td { "/dev/xvda" }
                        td { (i.root_volume_gib) }
                        td { "attached" }
                        td { (fmt_time(&i.launch_time)) }
                        td { (if i.delete_on_termination { "Yes" } else { "No" }) }
                    }
                }
                @for v in volumes {
                    @for a in v.attachments.iter().filter(|a| a.instance_id == i.id) {
                        tr data-id=(v.id) {
                            td { a href={ "/console/volumes/" (v.id) } { code { (v.id) } } }
                            td { (a.device) }
                            td { (v.size_gib) }
                            td { (attachment_badge(a.state)) }
                            td { (fmt_time(&a.attach_time)) }
                            td { (if a.delete_on_termination { "Yes" } else { "No" }) }
                        }
                    }
                }
            }
        }
    }
}

fn monitoring_tab(c: &Console, i: &Instance) -> Markup {
    let points: Vec<serde_json::Value> = c
        .history()
        .points(&i.id, i.vcpus)
        .iter()
        .map(|p| p.json())
        .collect();
    let data = serde_json::Value::Array(points)
        .to_string()
        .replace('<', "\\u003c");
    let available = c.metrics_source().is_some();
    html! {
        p.hint {
            "Measured on the host every " (crate::metrics::SAMPLE_EVERY_MS / 1000) " s from the instance's cgroup and its network interface; the last ten minutes, updated live."
            @if !available { " (Monitoring is not available on this host.)" }
        }
        script #metrics-data type="application/json" { (PreEscaped(data)) }
        div.graphs #graphs {
            figure.graph data-metric="cpu" data-unit="%" data-max="100" { figcaption { "CPU utilization (%)" } svg role="img" aria-label="CPU utilization graph" {} }
            figure.graph data-metric="mem" data-unit="MiB" data-limit="memLimit" { figcaption { "Memory used (MiB)" } svg role="img" aria-label="Memory graph" {} }
            figure.graph data-metric="netIn" data-unit="B/s" { figcaption { "Network in (bytes/s)" } svg role="img" aria-label="Network in graph" {} }
            figure.graph data-metric="netOut" data-unit="B/s" { figcaption { "Network out (bytes/s)" } svg role="img" aria-label="Network out graph" {} }
        }
    }
}

async fn console_tab(c: &Console, s: &crate::session::Session, i: &Instance) -> Markup {
    match c.console_output(s, &i.id).await {
        Err(e) => crate::html::api_error(&e),
        Ok(out) => html! {
            p { a.button href={ "/console/instances/" (i.id) "?tab=console" } { "Refresh" } }
            @if out.is_empty() { p.muted { "No console output yet." } }
            @else { pre.console tabindex="0" aria-label="Console output" { (out) } }
        },
    }
}

async fn connect_tab(c: &Console, s: &crate::session::Session, i: &Instance) -> Markup {
    let user = c
        .cloud()
        .instance_login_user(&s.account_id, &i.id)
        .await
        .ok()
        .flatten()
        .unwrap_or_else(|| "admin".into());
    let key = i.key_name.clone();
    html! {
        h3 { "SSH client" }
        @match (&key, &i.public_ip) {
            (Some(k), Some(ip)) => {
                ol.steps {
                    li { "Open a terminal where your private key file " code { (k) ".pem" } " is." }
                    li { "Make sure the key is not publicly viewable:" pre.cmd { code { "chmod 400 " (k) ".pem" } } }
                    li { "Connect to your instance using its public IP " code { (ip) } ":" }
                }
                div.copy {
                    pre.cmd #ssh-command { code { "ssh -i " (k) ".pem " (user) "@" (ip) } }
                    button type="button" data-copy="#ssh-command" { "Copy" }
                }
                p.hint { "The login user of this instance's image is " code { (user) } ". Port 22 must be open in one of its security groups." }
            }
            (None, _) => { p { "This instance was launched without a key pair: SSH with a key is not possible." } }
            (_, None) => { p { "This instance has no public IPv4 address now (it is " (i.state.as_str()) "). Start it, or associate an Elastic IP." } }
        }
    }
}

pub async fn create_image(State(c): State<Console>, Path(id): Path<String>, p: Posted) -> Response {
    let back = format!("/console/instances/{id}");
    let r = c
        .call(
            &p.session,
            ec2::images::Action::CreateImage {
                instance_id: id.clone(),
                name: p.form.text("name"),
                description: Some(p.form.text("description")).filter(|d| !d.is_empty()),
                no_reboot: p.form.checked("no_reboot"),
                tag_specifications: vec![],
            },
        )
        .await
        .map(|r| match r {
            ec2::images::Response::ImageId(ami) => format!("Creating image {ami} from {id}"),
            _ => "Image requested".into(),
        });
    super::back(&c, &p, &back, r)
}
