//! Elastic IPs: allocate, associate with an instance, disassociate, release.

use axum::extract::State;
use axum::response::Response;
use gureum_ec2::ops as ec2;
use gureum_types::{ApiError, ErrorCode};
use maud::html;

use crate::data::name_of;
use crate::html::{csrf, layout, or_dash};
use crate::session::{Posted, Signed};
use crate::Console;

pub async fn page(State(c): State<Console>, Signed(s): Signed) -> Response {
    let addresses = match c
        .call(
            &s,
            ec2::addresses::Action::DescribeAddresses {
                public_ips: vec![],
                allocation_ids: vec![],
                filters: vec![],
            },
        )
        .await
    {
        Ok(ec2::addresses::Response::DescribeAddresses { addresses, .. }) => addresses,
        Ok(_) => vec![],
        Err(e) => return super::failed(&c, &s, "Elastic IP addresses", "addresses", &e),
    };
    let instances: Vec<_> = c
        .instances(&s, vec![], vec![])
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|i| !i.state.is_gone())
        .collect();
    layout(
        super::frame(&c, &s, "Elastic IP addresses", "addresses"),
        html! {
            div.head {
                h1 { "Elastic IP addresses " span.count { "(" (addresses.len()) ")" } }
                form method="post" action="/console/addresses/action" data-async {
                    (csrf(&s))
                    input type="hidden" name="action" value="allocate";
                    button.primary type="submit" { "Allocate Elastic IP address" }
                }
            }
            p.hint { "An Elastic IP stays yours until you release it; associated with an instance, it replaces the instance's automatic public address and survives stop and start." }
            div.table-wrap {
                table.grid {
                    thead { tr { th { "Allocated IPv4 address" } th { "Allocation ID" } th { "Associated instance" } th { "Private IP address" } th { "Association ID" } th { span.sr { "Actions" } } } }
                    tbody {
                        @if addresses.is_empty() { tr { td colspan="6" .muted { "No Elastic IP addresses." } } }
                        @for a in &addresses {
                            tr {
                                td.ip { (a.public_ip) }
                                td { code { (a.allocation_id) } }
                                td { @if let Some(i) = &a.instance_id { a href={ "/console/instances/" (i) } { code { (i) } } } @else { span.muted { "–" } } }
                                td.ip { (or_dash(a.private_ip.as_deref().unwrap_or(""))) }
                                td { (or_dash(a.association_id.as_deref().unwrap_or(""))) }
                                td.nowrap {
                                    @if a.association_id.is_some() {
                                        form.inline method="post" action="/console/addresses/action" data-async {
                                            (csrf(&s))
                                            input type="hidden" name="action" value="disassociate";
                                            input type="hidden" name="association_id" value=(a.association_id.clone().unwrap_or_default());
                                            button.small type="submit" { "Disassociate" }
                                        }
                                    } @else {
                                        form.inline method="post" action="/console/addresses/action" {
                                            (csrf(&s))
                                            input type="hidden" name="action" value="associate";
                                            input type="hidden" name="allocation_id" value=(a.allocation_id);
                                            label.sr for={ "assoc-" (a.allocation_id) } { "Instance" }
                                            select id={ "assoc-" (a.allocation_id) } name="instance_id" required {
                                                option value="" { "Choose an instance" }
                                                @for i in &instances {
                                                    option value=(i.id) { (i.id) @let n = name_of(&i.tags); @if !n.is_empty() { " (" (n) ")" } " – " (i.state.as_str()) }
                                                }
                                            }
                                            button.small type="submit" { "Associate" }
                                        }
                                    }
                                    form.inline method="post" action="/console/addresses/action" data-async data-confirm={ "Release " (a.public_ip) "?" } {
                                        (csrf(&s))
                                        input type="hidden" name="action" value="release";
                                        input type="hidden" name="allocation_id" value=(a.allocation_id);
                                        button.small.danger type="submit" { "Release" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        },
    )
}

pub async fn action(State(c): State<Console>, p: Posted) -> Response {
    let f = &p.form;
    let some = |k: &str| Some(f.text(k)).filter(|v| !v.is_empty());
    let r = match f.get("action") {
        Some("allocate") => c
            .call(
                &p.session,
                ec2::addresses::Action::AllocateAddress {
                    address: None,
                    tag_specifications: vec![],
                },
            )
            .await
            .map(|r| match r {
                ec2::addresses::Response::AllocateAddress {
                    public_ip,
                    allocation_id,
                    ..
                } => {
                    format!("Allocated {public_ip} ({allocation_id})")
                }
                _ => "Allocated".into(),
            }),
        Some("associate") => c
            .call(
                &p.session,
                ec2::addresses::Action::AssociateAddress {
                    allocation_id: some("allocation_id"),
                    public_ip: None,
                    instance_id: some("instance_id"),
                    network_interface_id: None,
                    private_ip: None,
                    allow_reassociation: false,
                },
            )
            .await
            .map(|_| {
                format!(
                    "Associated {} with {}",
                    f.text("allocation_id"),
                    f.text("instance_id")
                )
            }),
        Some("disassociate") => c
            .call(
                &p.session,
                ec2::addresses::Action::DisassociateAddress {
                    association_id: some("association_id"),
                    public_ip: None,
                },
            )
            .await
            .map(|_| format!("Disassociated {}", f.text("association_id"))),
        Some("release") => c
            .call(
                &p.session,
                ec2::addresses::Action::ReleaseAddress {
                    allocation_id: some("allocation_id"),
                    public_ip: None,
                },
            )
            .await
            .map(|_| format!("Released {}", f.text("allocation_id"))),
        _ => Err(ApiError::new(
            ErrorCode::InvalidParameterValue,
            "Unknown action",
        )),
    };
    super::back(&c, &p, "/console/addresses", r)
}
