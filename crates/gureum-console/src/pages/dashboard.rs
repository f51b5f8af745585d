//! The dashboard: resource counts (live), the region and its zones, and "Launch instance".

use axum::extract::State;
use axum::response::Response;
use gureum_ec2::ops as ec2;
use gureum_types::{ApiError, InstanceState, VolumeState};
use maud::{html, Markup};

use crate::html::layout;
use crate::session::{Session, Signed};
use crate::Console;

/// The counts panel (also pushed live).
pub async fn counts(c: &Console, s: &Session) -> Result<Markup, ApiError> {
    let instances = c.instances(s, vec![], vec![]).await?;
    let running = instances
        .iter()
        .filter(|i| i.state == InstanceState::Running)
        .count();
    let live = instances.iter().filter(|i| !i.state.is_gone()).count();
    let keys = c.key_pairs(s).await?.len();
    let groups = c.security_groups(s, vec![]).await?.len();
    let addresses = match c
        .call(
            s,
            ec2::addresses::Action::DescribeAddresses {
                public_ips: vec![],
                allocation_ids: vec![],
                filters: vec![],
            },
        )
        .await
    {
        Ok(ec2::addresses::Response::DescribeAddresses { addresses, .. }) => Some(addresses.len()),
        _ => None,
    };
    let volumes = c.volumes(s, vec![]).await?;
    let in_use = volumes
        .iter()
        .filter(|v| v.state == VolumeState::InUse)
        .count();
    let cost = c
        .cloud()
        .monthly_bill(&s.account_id, None)
        .await
        .ok()
        .map(|b| format!("${}", b.total.to_fixed(2)));
    let images = c
        .images(s, vec![], vec!["self".into()], vec![])
        .await?
        .len();
    let tile = |n: String, label: &str, href: &str, sub: Option<String>| {
        html! {
            a.tile href=(href) {
                span.n { (n) }
                span.l { (label) }
                @if let Some(sub) = sub { span.sub { (sub) } }
            }
        }
    };
    Ok(html! {
        section #counts .tiles aria-label="Resources" {
            (tile(running.to_string(), "Running instances", "/console/instances?state=running",
                  Some(format!("{live} {} in all", if live == 1 { "instance" } else { "instances" }))))
            (tile(keys.to_string(), "Key pairs", "/console/key-pairs", None))
            (tile(groups.to_string(), "Security groups", "/console/security-groups", None))
            (tile(addresses.map(|n| n.to_string()).unwrap_or_else(|| "–".into()), "Elastic IPs", "/console/addresses", None))
            (tile(images.to_string(), "AMIs (owned)", "/console/images", None))
            (tile(volumes.len().to_string(), "Volumes", "/console/volumes", Some(format!("{in_use} in use"))))
            (tile(cost.unwrap_or_else(|| "–".into()), "Cost this month", "/console/billing", Some("month to date".into())))
        }
    })
}

pub async fn page(State(c): State<Console>, Signed(s): Signed) -> Response {
    let since = c.live().seq();
    let counts = match counts(&c, &s).await {
        Ok(m) => m,
        Err(e) => return super::failed(&c, &s, "Dashboard", "dashboard", &e),
    };
    let zones = c.zones(&s).await.unwrap_or_default();
    let region = c.cloud().region().name.clone();
    let mut f = super::frame(&c, &s, "Dashboard", "dashboard");
    f.live = Some(format!("view=dashboard&since={since}"));
    layout(
        f,
        html! {
            div.head {
                h1 { "EC2 Dashboard" }
                a.button.primary href="/console/launch" { "Launch instance" }
            }
            (counts)
            div.cols {
                section.card {
                    h2 { "Launch instance" }
                    p { "To get started, launch an instance: a real Linux machine with its own systemd, SSH with your key pair, and a public address that answers on the real ports." }
                    a.button.primary href="/console/launch" { "Launch instance" }
                    p.hint { "Instances launch in region " strong { (region) } "." }
                }
                section.card {
                    h2 { "Service health" }
                    p { "Region " strong { (region) } }
                    table.plain {
                        thead { tr { th { "Zone" } th { "Zone ID" } th { "Status" } } }
                        tbody {
                            @for (name, id) in &zones {
                                tr { td { (name) } td { code { (id) } } td { span.badge.st-running { i.dot {} "available" } } }
                            }
                        }
                    }
                }
            }
        },
    )
}
