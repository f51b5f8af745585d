//! AMIs: the account's own images and the ones it may launch, deregister, share with other
//! accounts or make public. Images are made from instances on the instance page.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::response::Response;
use gureum_ec2::ops as ec2;
use gureum_ec2::ops::images::ImageAttributeChange;
use gureum_types::ImageState;
use maud::html;

use crate::html::{csrf, fmt_time, layout, or_dash};
use crate::session::{Posted, Signed};
use crate::Console;

/// The instance badge colour an image state borrows: usable, on its way, or not usable.
fn badge_class(state: ImageState) -> &'static str {
    match state {
        ImageState::Available => "running",
        ImageState::Pending => "pending",
        ImageState::Invalid
        | ImageState::Deregistered
        | ImageState::Transient
        | ImageState::Failed
        | ImageState::Error
        | ImageState::Disabled => "stopped",
    }
}

pub async fn page(
    State(c): State<Console>,
    Signed(s): Signed,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let public = q.get("show").is_some_and(|v| v == "all");
    let owners = if public {
        vec![]
    } else {
        vec!["self".to_string()]
    };
    let images = match c.images(&s, vec![], owners, vec![]).await {
        Ok(i) => i,
        Err(e) => return super::failed(&c, &s, "AMIs", "images", &e),
    };
    layout(
        super::frame(&c, &s, "AMIs", "images"),
        html! {
            div.head {
                h1 { "Amazon Machine Images (AMIs) " span.count { "(" (images.len()) ")" } }
            }
            div.tabs role="tablist" aria-label="Which images" {
                a role="tab" href="/console/images" aria-selected=(if public { "false" } else { "true" }) { "Owned by me" }
                a role="tab" href="/console/images?show=all" aria-selected=(if public { "true" } else { "false" }) { "All I can launch" }
            }
            p.hint { "To create an image, open a running or stopped instance and choose " em { "Create image" } "." }
            div.table-wrap {
                table.grid {
                    thead { tr { th { "Name" } th { "AMI ID" } th { "Owner" } th { "Visibility" } th { "Status" } th { "Creation date" } th { "Source" } th { span.sr { "Actions" } } } }
                    tbody {
                        @if images.is_empty() { tr { td colspan="8" .muted { "No images." } } }
                        @for im in &images {
                            @let mine = im.owner_id == s.account_id;
                            tr {
                                td { (im.name) }
                                td { code { (im.id) } }
                                td { (im.owner_alias.clone().unwrap_or_else(|| im.owner_id.clone())) }
                                td { (if im.public { "Public" } else { "Private" }) }
                                td { span class={ "badge st-" (badge_class(im.state)) } { i.dot {} (im.state) } }
                                td.time { (fmt_time(&im.creation_date)) }
                                td { (or_dash(im.source_instance_id.as_deref().or(im.source_image_id.as_deref()).unwrap_or(""))) }
                                td.nowrap {
                                    a.button.small href={ "/console/launch?image=" (im.id) } { "Launch" }
                                    @if mine {
                                        " "
                                        button.small type="button" data-open={ "#share-" (im.id) } { "Share" }
                                        form.inline method="post" action="/console/images/deregister" data-async data-confirm={ "Deregister " (im.id) "? Instances launched from it keep running." } {
                                            (csrf(&s))
                                            input type="hidden" name="image_id" value=(im.id);
                                            button.small.danger type="submit" { "Deregister" }
                                        }
                                        dialog id={ "share-" (im.id) } aria-label={ "Share " (im.id) } {
                                            form method="post" action="/console/images/share" {
                                                h2 { "Share " (im.id) }
                                                (csrf(&s))
                                                input type="hidden" name="image_id" value=(im.id);
                                                label for={ "share-acct-" (im.id) } { "AWS account ID to add" }
                                                input id={ "share-acct-" (im.id) } name="add_account" pattern="[0-9]{12}" placeholder="123456789012" inputmode="numeric";
                                                label for={ "unshare-acct-" (im.id) } { "AWS account ID to remove" }
                                                input id={ "unshare-acct-" (im.id) } name="remove_account" pattern="[0-9]{12}" inputmode="numeric";
                                                fieldset {
                                                    legend { "Visibility" }
                                                    label.check { input type="radio" name="visibility" value="keep" checked; " Keep (" (if im.public { "public" } else { "private" }) ")" }
                                                    label.check { input type="radio" name="visibility" value="public"; " Public" }
                                                    label.check { input type="radio" name="visibility" value="private"; " Private" }
                                                }
                                                div.buttons {
                                                    button type="button" data-close { "Cancel" }
                                                    button.primary type="submit" { "Save" }
                                                }
                                            }
                                        }
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

pub async fn deregister(State(c): State<Console>, p: Posted) -> Response {
    let id = p.form.text("image_id");
    let r = c
        .call(
            &p.session,
            ec2::images::Action::DeregisterImage {
                image_id: id.clone(),
            },
        )
        .await
        .map(|_| format!("Deregistered {id}"));
    super::back(&c, &p, "/console/images", r)
}

pub async fn share(State(c): State<Console>, p: Posted) -> Response {
    let id = p.form.text("image_id");
    let add: Vec<String> = Some(p.form.text("add_account"))
        .filter(|a| !a.is_empty())
        .into_iter()
        .collect();
    let remove: Vec<String> = Some(p.form.text("remove_account"))
        .filter(|a| !a.is_empty())
        .into_iter()
        .collect();
    let public = match p.form.get("visibility") {
        Some("public") => Some(true),
        Some("private") => Some(false),
        _ => None,
    };
    let r = c
        .call(
            &p.session,
            ec2::images::Action::ModifyImageAttribute {
                image_id: id.clone(),
                change: ImageAttributeChange::LaunchPermission {
                    add_users: add,
                    remove_users: remove,
                    public,
                },
            },
        )
        .await;
    let r = match r {
        Ok(_) => c
            .image_shares(&p.session, &id)
            .await
            .map(|(users, public)| {
                format!(
                    "{id} is {}{}",
                    if public { "public" } else { "private" },
                    if users.is_empty() {
                        String::new()
                    } else {
                        format!(", shared with {}", users.join(", "))
                    }
                )
            }),
        Err(e) => Err(e),
    };
    super::back(&c, &p, "/console/images", r)
}
