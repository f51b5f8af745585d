//! The launch wizard, on one page as in the AWS console today: name and tags, the AMI
//! (quick-start tiles and a searchable list), the instance type (vCPU, memory, price, free
//! tier), the key pair (with "Create new key pair"), network settings (VPC, subnet, public IP,
//! a new or existing security group with the SSH/HTTP/HTTPS shortcuts), storage, advanced
//! details (user data), and the summary with the number of instances.
//!
//! Launching runs the same actions a client would: CreateSecurityGroup and
//! AuthorizeSecurityGroupIngress for a new group, then RunInstances built from Query
//! parameters and parsed by the protocol layer (so the API's own validation and messages
//! apply). An error is shown next to the section it belongs to, with the form as it was; a
//! group created for a launch that failed is deleted again.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::response::Response;
use base64::Engine;
use gureum_ec2::ops as ec2;
use gureum_ec2::ops::security_groups::{GroupRef, Permission};
use gureum_ec2::Params;
use gureum_types::instance_types::{InstanceTypeInfo, CATALOGUE};
use gureum_types::model::{Image, Instance};
use gureum_types::{ApiError, ImageState};
use maud::{html, Markup};

use crate::html::{api_error, csrf, field_error, layout};
use crate::session::{random_token, Posted, Session, Signed};
use crate::{ClientIp, Console};

/// On-demand Linux prices in us-east-1 (USD per hour), as AWS publishes them: what the
/// wizard shows when the cloud's price list (the metering's, with the operator's overrides)
/// has no price for a type.
pub fn hourly_price(t: &str) -> Option<f64> {
    Some(match t {
        "t2.nano" => 0.0058,
        "t2.micro" => 0.0116,
        "t2.small" => 0.023,
        "t2.medium" => 0.0464,
        "t2.large" => 0.0928,
        "t2.xlarge" => 0.1856,
        "t2.2xlarge" => 0.3712,
        "t3.nano" => 0.0052,
        "t3.micro" => 0.0104,
        "t3.small" => 0.0208,
        "t3.medium" => 0.0416,
        "t3.large" => 0.0832,
        "t3.xlarge" => 0.1664,
        "t3.2xlarge" => 0.3328,
        "t3a.nano" => 0.0047,
        "t3a.micro" => 0.0094,
        "t3a.small" => 0.0188,
        "t3a.medium" => 0.0376,
        "t3a.large" => 0.0752,
        "t3a.xlarge" => 0.1504,
        "t3a.2xlarge" => 0.3008,
        "m5.large" => 0.096,
        "m5.xlarge" => 0.192,
        "m5.2xlarge" => 0.384,
        "c5.large" => 0.085,
        "c5.xlarge" => 0.17,
        "c5.2xlarge" => 0.34,
        "r5.large" => 0.126,
        "r5.xlarge" => 0.252,
        "r5.2xlarge" => 0.504,
        _ => return None,
    })
}

/// Everything the form says, to render it again as it was.
#[derive(Debug, Clone)]
struct Choice {
    name: String,
    tags: Vec<(String, String)>,
    image_id: String,
    instance_type: String,
    key_name: String,
    vpc_id: String,
    subnet_id: String,
    public_ip: bool,
    sg_mode: String,
    sg_ids: Vec<String>,
    allow_ssh: bool,
    ssh_source: String,
    allow_https: bool,
    allow_http: bool,
    volume: String,
    user_data: String,
    shutdown: String,
    protect: bool,
    imds: String,
    count: String,
    client_token: String,
}

impl Choice {
    fn defaults() -> Choice {
        Choice {
            name: String::new(),
            tags: vec![],
            image_id: String::new(),
            instance_type: "t2.micro".into(),
            key_name: String::new(),
            vpc_id: String::new(),
            subnet_id: String::new(),
            public_ip: true,
            sg_mode: "create".into(),
            sg_ids: vec![],
            allow_ssh: true,
            ssh_source: "anywhere".into(),
            allow_https: false,
            allow_http: false,
            volume: String::new(),
            user_data: String::new(),
            shutdown: "stop".into(),
            protect: false,
            imds: "required".into(),
            count: "1".into(),
            client_token: random_token(),
        }
    }

    fn from_form(f: &crate::forms::FormData) -> Choice {
        let keys = f.all("tag_key");
        let values = f.all("tag_value");
        Choice {
            name: f.text("name"),
            tags: keys
                .into_iter()
                .zip(values)
                .filter(|(k, _)| !k.trim().is_empty())
                .map(|(k, v)| (k.trim().to_string(), v))
                .collect(),
            image_id: f.text("image_id"),
            instance_type: f.text("instance_type"),
            key_name: f.text("key_name"),
            vpc_id: f.text("vpc_id"),
            subnet_id: f.text("subnet_id"),
            public_ip: f.get("public_ip") != Some("disable"),
            sg_mode: if f.get("sg_mode") == Some("select") {
                "select".into()
            } else {
                "create".into()
            },
            sg_ids: f.all("sg_id"),
            allow_ssh: f.checked("allow_ssh"),
            ssh_source: f.text("ssh_source"),
            allow_https: f.checked("allow_https"),
            allow_http: f.checked("allow_http"),
            volume: f.text("volume_size"),
            user_data: f.get("user_data").unwrap_or("").to_string(),
            shutdown: Some(f.text("shutdown"))
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| "stop".into()),
            protect: f.checked("protect"),
            imds: Some(f.text("imds"))
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| "required".into()),
            count: f.text("count"),
            client_token: f.text("client_token"),
        }
    }
}

/// Quick-start families: (tile label, the image name prefix it picks).
const QUICK_START: &[(&str, &str)] = &[("Debian", "debian"), ("Ubuntu", "ubuntu")];

fn type_rows(selected: &str, prices: &gureum_billing::PriceList) -> Markup {
    let price = |t: &str| -> Option<String> {
        prices
            .instance_hour(t)
            .map(|p| p.to_string())
            .or_else(|| hourly_price(t).map(|p| format!("{p}")))
    };
    let mut types: Vec<&InstanceTypeInfo> =
        CATALOGUE.iter().filter(|t| !t.name.is_empty()).collect();
    types.sort_by(|a, b| {
        b.free_tier_eligible.cmp(&a.free_tier_eligible).then(
            hourly_price(a.name)
                .partial_cmp(&hourly_price(b.name))
                .unwrap_or(std::cmp::Ordering::Equal),
        )
    });
    html! {
        @for t in types {
            tr data-search=(t.name) {
                td.sel { input type="radio" name="instance_type" value=(t.name) id={ "type-" (t.name) } checked[t.name == selected]
                    data-summary="type" data-label=(t.name); }
                td { label for={ "type-" (t.name) } { strong { (t.name) } }
                     @if t.free_tier_eligible { " " span.badge.free { "Free tier eligible" } } }
                td.num { (t.default_vcpus) }
                td.num { (format!("{}", t.memory_mib as f64 / 1024.0)) " GiB" }
                td.num { @match price(t.name) { Some(p) => { "$" (p) }, None => { "–" } } }
                td { (t.network_performance) }
            }
        }
    }
}

fn image_label(im: &Image) -> String {
    if im.description.is_empty() {
        im.name.clone()
    } else {
        format!("{} – {}", im.name, im.description)
    }
}

async fn render(
    c: &Console,
    s: &Session,
    ch: &Choice,
    errors: &HashMap<&'static str, String>,
    my_ip: &str,
) -> Response {
    let images: Vec<Image> = c
        .images(s, vec![], vec![], vec![])
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|i| i.state == ImageState::Available)
        .collect();
    let keys = c.key_pairs(s).await.unwrap_or_default();
    let vpcs = c.vpcs(s).await.unwrap_or_default();
    let subnets = c.subnets(s).await.unwrap_or_default();
    let groups = c.security_groups(s, vec![]).await.unwrap_or_default();
    let image_id = if ch.image_id.is_empty() {
        images
            .iter()
            .find(|i| i.owner_alias.as_deref() == Some("gureum") && i.name.starts_with("debian-12"))
            .or_else(|| images.iter().find(|i| i.owner_alias.is_some()))
            .or(images.first())
            .map(|i| i.id.clone())
            .unwrap_or_default()
    } else {
        ch.image_id.clone()
    };
    let vpc_id = if ch.vpc_id.is_empty() {
        vpcs.iter()
            .find(|v| v.is_default)
            .or(vpcs.first())
            .map(|v| v.id.clone())
            .unwrap_or_default()
    } else {
        ch.vpc_id.clone()
    };
    let tiles: Vec<(&str, Option<&Image>)> = QUICK_START
        .iter()
        .map(|(label, prefix)| {
            let im = images
                .iter()
                .filter(|i| i.public && i.name.starts_with(prefix))
                .max_by(|a, b| a.name.cmp(&b.name));
            (*label, im)
        })
        .collect();
    let selected_image = images.iter().find(|i| i.id == image_id);
    // An image shown as a tile is checked there (one radio group: the list's row follows).
    let on_tile = tiles
        .iter()
        .any(|(_, im)| im.is_some_and(|im| im.id == image_id));
    let err = |k: &str| errors.get(k).map(String::as_str);
    layout(
        super::frame(c, s, "Launch an instance", "launch"),
        html! {
            nav.crumbs aria-label="Breadcrumb" { a href="/console/instances" { "Instances" } " › Launch an instance" }
            h1 { "Launch an instance" }
            p.hint { "gureum lets you create virtual machines, or instances, that run on this host. Get started by following the simple steps below." }
            @if let Some(e) = err("summary") { div.alert.err role="alert" { (e) } }
            form #launch .wizard method="post" action="/console/launch" novalidate {
                (csrf(s))
                input type="hidden" name="client_token" value=(ch.client_token);
                div.wizard-main {
                    section.card #sec-name aria-labelledby="h-name" {
                        h2 #h-name { "Name and tags" }
                        label for="name" { "Name" }
                        input #name name="name" value=(ch.name) placeholder="e.g. My Web Server" maxlength="256" data-summary="name";
                        details.tags open[!ch.tags.is_empty()] {
                            summary { "Add additional tags" }
                            div #tag-rows {
                                @for (k, v) in ch.tags.iter().chain(std::iter::once(&(String::new(), String::new()))) {
                                    div.tag-row {
                                        input name="tag_key" value=(k) placeholder="Key" aria-label="Tag key" maxlength="128";
                                        input name="tag_value" value=(v) placeholder="Value" aria-label="Tag value" maxlength="256";
                                    }
                                }
                            }
                            button type="button" data-add-tag="#tag-rows" { "Add tag" }
                        }
                        (field_error("name", err("name")))
                    }
                    section.card #sec-ami aria-labelledby="h-ami" {
                        h2 #h-ami { "Application and OS Images (Amazon Machine Image)" }
                        p.hint { "An AMI is a template that contains the software configuration (operating system, packages) required to launch your instance." }
                        label.sr for="ami-search" { "Search AMIs" }
                        input #ami-search type="search" placeholder="Search our full catalog of AMIs by name or id" data-filter="#ami-list" autocomplete="off";
                        h3 { "Quick Start" }
                        div.qs role="radiogroup" aria-label="Quick Start" {
                            @for (label, im) in &tiles {
                                @if let Some(im) = im {
                                    label.qs-tile {
                                        input type="radio" name="image_id" value=(im.id) checked[im.id == image_id] data-summary="image" data-label=(im.name);
                                        span.qs-name { (label) }
                                        span.qs-sub { (im.name) }
                                    }
                                } @else {
                                    span.qs-tile.disabled title="No image of this family yet: gureum image build" { span.qs-name { (label) } span.qs-sub { "not built" } }
                                }
                            }
                        }
                        div.ami-list-wrap {
                            table #ami-list .grid.compact {
                                caption.sr { "All AMIs you can launch" }
                                thead { tr { th { span.sr { "Choose" } } th { "AMI" } th { "ID" } th { "Owner" } th { "Root" } } }
                                tbody {
                                    @if images.is_empty() { tr { td colspan="5" .muted { "No images are available yet (the default image builds on first start)." } } }
                                    @for im in &images {
                                        tr data-search=(format!("{} {} {}", im.name, im.id, im.description).to_lowercase()) {
                                            td.sel { input type="radio" name="image_id" value=(im.id) id={ "ami-" (im.id) } checked[im.id == image_id && !on_tile] data-summary="image" data-label=(im.name); }
                                            td { label for={ "ami-" (im.id) } { (image_label(im)) } }
                                            td { code { (im.id) } }
                                            td { (im.owner_alias.clone().unwrap_or_else(|| im.owner_id.clone())) }
                                            td { (im.root_size_gib) " GiB" }
                                        }
                                    }
                                }
                            }
                        }
                        (field_error("image", err("image")))
                    }
                    section.card #sec-type aria-labelledby="h-type" {
                        h2 #h-type { "Instance type" }
                        div.ami-list-wrap {
                            table.grid.compact #type-list {
                                caption.sr { "Instance types" }
                                thead { tr { th { span.sr { "Choose" } } th { "Instance type" } th.num { "vCPU" } th.num { "Memory" } th.num { "On-demand Linux /hr" } th { "Network" } } }
                                tbody { (type_rows(&ch.instance_type, c.cloud().prices())) }
                            }
                        }
                        (field_error("type", err("type")))
                    }
                    section.card #sec-key aria-labelledby="h-key" {
                        h2 #h-key { "Key pair (login)" }
                        p.hint { "You can use a key pair to securely connect to your instance. Ensure that you have access to the selected key pair before you launch the instance." }
                        label for="key_name" { "Key pair name" }
                        div.inline-field {
                            select #key_name name="key_name" data-summary="key" aria-invalid=[err("key").map(|_| "true")] {
                                option value="" selected[ch.key_name.is_empty()] { "Proceed without a key pair (Not recommended)" }
                                @for k in &keys { option value=(k.name) selected[k.name == ch.key_name] { (k.name) " (" (k.key_type) ")" } }
                            }
                            button type="button" data-open="#key-dialog" { "Create new key pair" }
                        }
                        (field_error("key", err("key")))
                    }
                    section.card #sec-net aria-labelledby="h-net" {
                        h2 #h-net { "Network settings" }
                        div.grid2 {
                            div {
                                label for="vpc_id" { "VPC" }
                                select #vpc_id name="vpc_id" {
                                    @for v in &vpcs { option value=(v.id) selected[v.id == vpc_id] { (v.id) " (" (v.cidr) ")" @if v.is_default { " (default)" } } }
                                }
                            }
                            div {
                                label for="subnet_id" { "Subnet" }
                                select #subnet_id name="subnet_id" {
                                    option value="" selected[ch.subnet_id.is_empty()] { "No preference" }
                                    @for sn in &subnets {
                                        option value=(sn.id) data-vpc=(sn.vpc_id) selected[sn.id == ch.subnet_id] {
                                            (sn.id) " – " (sn.availability_zone) " (" (sn.cidr) ")"
                                        }
                                    }
                                }
                            }
                            div {
                                label for="public_ip" { "Auto-assign public IP" }
                                select #public_ip name="public_ip" {
                                    option value="enable" selected[ch.public_ip] { "Enable" }
                                    option value="disable" selected[!ch.public_ip] { "Disable" }
                                }
                            }
                        }
                        fieldset {
                            legend { "Firewall (security groups)" }
                            label.check { input type="radio" name="sg_mode" value="create" checked[ch.sg_mode == "create"] data-summary="sg"; " Create security group" }
                            label.check { input type="radio" name="sg_mode" value="select" checked[ch.sg_mode == "select"] data-summary="sg"; " Select existing security group" }
                        }
                        div.sg-create data-when="sg_mode=create" {
                            p.hint { "We'll create a new security group called " strong { "launch-wizard-N" } " with the following rules:" }
                            div.check-row {
                                label.check { input type="checkbox" name="allow_ssh" checked[ch.allow_ssh] data-summary="sg"; " Allow SSH traffic from" }
                                label.sr for="ssh_source" { "SSH source" }
                                select #ssh_source name="ssh_source" {
                                    option value="anywhere" selected[ch.ssh_source != "myip"] { "Anywhere (0.0.0.0/0)" }
                                    @if !my_ip.is_empty() { option value="myip" selected[ch.ssh_source == "myip"] { "My IP (" (my_ip) "/32)" } }
                                }
                            }
                            label.check { input type="checkbox" name="allow_https" checked[ch.allow_https] data-summary="sg"; " Allow HTTPS traffic from the internet" }
                            label.check { input type="checkbox" name="allow_http" checked[ch.allow_http] data-summary="sg"; " Allow HTTP traffic from the internet" }
                        }
                        div.sg-select data-when="sg_mode=select" {
                            p.hint { "Choose one or more groups of the selected VPC." }
                            @for g in &groups {
                                label.check data-vpc=(g.vpc_id) {
                                    input type="checkbox" name="sg_id" value=(g.id) checked[ch.sg_ids.contains(&g.id)] data-summary="sg";
                                    " " (g.name) " " code.small { (g.id) }
                                }
                            }
                        }
                        (field_error("network", err("network")))
                    }
                    section.card #sec-storage aria-labelledby="h-storage" {
                        h2 #h-storage { "Configure storage" }
                        div.inline-field {
                            label for="volume_size" { "1x" }
                            input #volume_size type="number" name="volume_size" min="1" max="16384"
                                value=(if ch.volume.is_empty() { selected_image.map(|i| i.root_size_gib.to_string()).unwrap_or_else(|| "8".into()) } else { ch.volume.clone() })
                                data-summary="storage" aria-describedby="volume-hint";
                            span { "GiB gp2 root volume" }
                        }
                        p.hint #volume-hint { "At least the image's root size. A sparse file on the host: only what the instance writes takes space." }
                        (field_error("storage", err("storage")))
                    }
                    details.card #sec-advanced open[err("advanced").is_some()] {
                        summary { h2 { "Advanced details" } }
                        div.grid2 {
                            div {
                                label for="shutdown" { "Shutdown behavior" }
                                select #shutdown name="shutdown" {
                                    option value="stop" selected[ch.shutdown != "terminate"] { "Stop" }
                                    option value="terminate" selected[ch.shutdown == "terminate"] { "Terminate" }
                                }
                            }
                            div {
                                label for="imds" { "Metadata version" }
                                select #imds name="imds" {
                                    option value="required" selected[ch.imds != "optional"] { "V2 only (token required)" }
                                    option value="optional" selected[ch.imds == "optional"] { "V1 and V2 (token optional)" }
                                }
                            }
                        }
                        label.check { input type="checkbox" name="protect" checked[ch.protect]; " Termination protection" }
                        label for="user_data" { "User data – optional" }
                        textarea #user_data name="user_data" rows="6" spellcheck="false" placeholder="#!/bin/bash\necho hello > /tmp/hello" { (ch.user_data) }
                        p.hint { "A shell script or cloud-config; runs once, as root, on first boot." }
                        (field_error("advanced", err("advanced")))
                    }
                }
                aside.wizard-summary aria-labelledby="h-summary" {
                    div.card {
                        h2 #h-summary { "Summary" }
                        label for="count" { "Number of instances" }
                        input #count type="number" name="count" min="1" max="20" value=(ch.count) data-summary="count";
                        (field_error("count", err("count")))
                        dl.sum {
                            dt { "Software Image (AMI)" } dd #sum-image { (selected_image.map(|i| i.name.clone()).unwrap_or_default()) }
                            dt { "Virtual server type (instance type)" } dd #sum-type { (ch.instance_type) }
                            dt { "Firewall (security group)" } dd #sum-sg { (if ch.sg_mode == "create" { "New security group" } else { "Existing groups" }) }
                            dt { "Storage (volumes)" } dd #sum-storage { "1 volume(s)" }
                        }
                        div.buttons.stack {
                            button.primary.big type="submit" { "Launch instance" }
                            a.button href="/console/instances" { "Cancel" }
                        }
                    }
                }
            }
            dialog #key-dialog aria-labelledby="key-dialog-title" {
                h2 #key-dialog-title { "Create key pair" }
                p.hint { "The private key file downloads at once; gureum does not keep it." }
                (crate::pages::keys::create_form(s, None, ""))
            }
        },
    )
}

pub async fn page(
    State(c): State<Console>,
    Signed(s): Signed,
    ClientIp(ip): ClientIp,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let mut ch = Choice::defaults();
    if let Some(im) = q.get("image") {
        ch.image_id = im.clone();
    }
    render(&c, &s, &ch, &HashMap::new(), &ip).await
}

/// Which section of the wizard an API error belongs to.
fn section_of(e: &ApiError) -> &'static str {
    let code = e.code.to_string();
    let m = e.message.to_lowercase();
    if code.starts_with("InvalidAMIID") || m.contains("image") && !m.contains("instance type") {
        "image"
    } else if code.starts_with("InvalidKeyPair") || m.contains("key pair") {
        "key"
    } else if code.starts_with("InvalidInstanceType") || m.contains("instance type") {
        "type"
    } else if code.starts_with("InvalidSubnet")
        || code.starts_with("InvalidVpc")
        || code.starts_with("InvalidGroup")
        || code.starts_with("InvalidSecurityGroup")
        || m.contains("subnet")
        || m.contains("security group")
        || m.contains("address")
    {
        "network"
    } else if m.contains("volume") || m.contains("blockdevice") || m.contains("block device") {
        "storage"
    } else if m.contains("userdata") || m.contains("user data") || m.contains("shutdown") {
        "advanced"
    } else if m.contains("count") || code == "InstanceLimitExceeded" {
        "count"
    } else if m.contains("tag") {
        "name"
    } else {
        "summary"
    }
}

fn run_params(ch: &Choice, groups: &[String]) -> Vec<(String, String)> {
    let mut p: Vec<(String, String)> = vec![
        ("ImageId".into(), ch.image_id.clone()),
        ("InstanceType".into(), ch.instance_type.clone()),
        ("MinCount".into(), ch.count.clone()),
        ("MaxCount".into(), ch.count.clone()),
        ("ClientToken".into(), ch.client_token.clone()),
        (
            "InstanceInitiatedShutdownBehavior".into(),
            ch.shutdown.clone(),
        ),
        ("MetadataOptions.HttpTokens".into(), ch.imds.clone()),
        ("NetworkInterface.1.DeviceIndex".into(), "0".into()),
        (
            "NetworkInterface.1.AssociatePublicIpAddress".into(),
            ch.public_ip.to_string(),
        ),
    ];
    if !ch.key_name.is_empty() {
        p.push(("KeyName".into(), ch.key_name.clone()));
    }
    if !ch.subnet_id.is_empty() {
        p.push(("NetworkInterface.1.SubnetId".into(), ch.subnet_id.clone()));
    }
    for (n, g) in groups.iter().enumerate() {
        p.push((
            format!("NetworkInterface.1.SecurityGroupId.{}", n + 1),
            g.clone(),
        ));
    }
    if ch.protect {
        p.push(("DisableApiTermination".into(), "true".into()));
    }
    if !ch.volume.is_empty() {
        p.push(("BlockDeviceMapping.1.DeviceName".into(), "/dev/xvda".into()));
        p.push((
            "BlockDeviceMapping.1.Ebs.VolumeSize".into(),
            ch.volume.clone(),
        ));
    }
    if !ch.user_data.trim().is_empty() {
        p.push((
            "UserData".into(),
            base64::engine::general_purpose::STANDARD.encode(ch.user_data.replace("\r\n", "\n")),
        ));
    }
    let mut tags: Vec<(String, String)> = Vec::new();
    if !ch.name.is_empty() {
        tags.push(("Name".into(), ch.name.clone()));
    }
    tags.extend(ch.tags.iter().filter(|(k, _)| k != "Name").cloned());
    if !tags.is_empty() {
        p.push(("TagSpecification.1.ResourceType".into(), "instance".into()));
        for (n, (k, v)) in tags.iter().enumerate() {
            p.push((format!("TagSpecification.1.Tag.{}.Key", n + 1), k.clone()));
            p.push((format!("TagSpecification.1.Tag.{}.Value", n + 1), v.clone()));
        }
    }
    p
}

/// A new `launch-wizard-N` group with the chosen shortcuts; returns its id.
async fn create_group(
    c: &Console,
    s: &Session,
    ch: &Choice,
    vpc_id: &str,
    my_ip: &str,
) -> Result<String, ApiError> {
    let taken: Vec<String> = c
        .security_groups(s, vec![])
        .await?
        .into_iter()
        .map(|g| g.name)
        .collect();
    let name = (1..)
        .map(|n| format!("launch-wizard-{n}"))
        .find(|n| !taken.contains(n))
        .unwrap_or_default();
    let id = match c
        .call(
            s,
            ec2::security_groups::Action::CreateSecurityGroup {
                group_name: name.clone(),
                description: format!("{name} created by the gureum console"),
                vpc_id: Some(vpc_id.to_string()).filter(|v| !v.is_empty()),
                tag_specifications: vec![],
            },
        )
        .await?
    {
        ec2::security_groups::Response::CreateSecurityGroup { group_id, .. } => group_id,
        _ => return Err(ApiError::internal()),
    };
    let tcp = |port: i32, cidr: &str, desc: &str| Permission {
        protocol: gureum_types::IpProtocol::Tcp,
        from_port: Some(port),
        to_port: Some(port),
        ipv4_ranges: vec![(cidr.to_string(), Some(desc.to_string()))],
        ipv6_ranges: vec![],
        groups: Vec::<GroupRef>::new(),
    };
    let mut perms = Vec::new();
    if ch.allow_ssh {
        let src = if ch.ssh_source == "myip" && !my_ip.is_empty() {
            format!("{my_ip}/32")
        } else {
            "0.0.0.0/0".into()
        };
        perms.push(tcp(22, &src, "SSH"));
    }
    if ch.allow_https {
        perms.push(tcp(443, "0.0.0.0/0", "HTTPS"));
    }
    if ch.allow_http {
        perms.push(tcp(80, "0.0.0.0/0", "HTTP"));
    }
    if !perms.is_empty() {
        if let Err(e) = c
            .call(
                s,
                ec2::security_groups::Action::AuthorizeSecurityGroup {
                    egress: false,
                    group_id: Some(id.clone()),
                    group_name: None,
                    permissions: perms,
                    tag_specifications: vec![],
                },
            )
            .await
        {
            delete_group(c, s, &id).await;
            return Err(e);
        }
    }
    Ok(id)
}

async fn delete_group(c: &Console, s: &Session, id: &str) {
    let _ = c
        .call(
            s,
            ec2::security_groups::Action::DeleteSecurityGroup {
                group_id: Some(id.to_string()),
                group_name: None,
            },
        )
        .await;
}

pub async fn submit(State(c): State<Console>, ClientIp(ip): ClientIp, p: Posted) -> Response {
    let s = &p.session;
    let mut ch = Choice::from_form(&p.form);
    if ch.client_token.is_empty() {
        ch.client_token = random_token();
    }
    let mut errors: HashMap<&'static str, String> = HashMap::new();
    if ch.image_id.is_empty() {
        errors.insert("image", "Choose an AMI".into());
    }
    if ch.instance_type.is_empty() {
        errors.insert("type", "Choose an instance type".into());
    }
    if ch.count.parse::<u32>().map_or(true, |n| n == 0) {
        errors.insert("count", "Enter a number of instances of at least 1".into());
    }
    if ch.sg_mode == "select" && ch.sg_ids.is_empty() {
        errors.insert("network", "Choose at least one security group".into());
    }
    if !errors.is_empty() {
        return render(&c, s, &ch, &errors, &ip).await;
    }
    // Resolve the VPC as the launch will (the subnet's, else the chosen one).
    let subnet_vpc = if ch.subnet_id.is_empty() {
        None
    } else {
        c.subnets(s).await.ok().and_then(|l| {
            l.into_iter()
                .find(|x| x.id == ch.subnet_id)
                .map(|x| x.vpc_id)
        })
    };
    let vpc_id = subnet_vpc.unwrap_or_else(|| ch.vpc_id.clone());
    let (groups, created) = if ch.sg_mode == "create" {
        match create_group(&c, s, &ch, &vpc_id, &ip).await {
            Ok(id) => (vec![id.clone()], Some(id)),
            Err(e) => {
                errors.insert("network", format!("{}: {}", e.code, e.message));
                return render(&c, s, &ch, &errors, &ip).await;
            }
        }
    } else {
        (ch.sg_ids.clone(), None)
    };
    let pairs = run_params(&ch, &groups);
    let body: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs.iter())
        .finish();
    let mut params = Params::default();
    let parsed = params
        .extend_from_form(body.as_bytes())
        .and_then(|_| gureum_ec2::parse("RunInstances", params));
    let result = match parsed {
        Ok(req) => c.dispatch(s, req.action).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(gureum_ec2::Response::Instances(ec2::instances::Response::RunInstances {
            reservation,
            ..
        })) => success(&c, s, &reservation.instances),
        Ok(_) => success(&c, s, &[]),
        Err(e) => {
            if let Some(g) = created {
                delete_group(&c, s, &g).await;
            }
            let sec = section_of(&e);
            errors.insert(sec, format!("{}: {}", e.code, e.message));
            if sec != "summary" {
                errors.insert("summary", format!("The launch failed: {}", e.message));
            }
            render(&c, s, &ch, &errors, &ip).await
        }
    }
}

fn success(c: &Console, s: &Session, list: &[Instance]) -> Response {
    layout(
        super::frame(c, s, "Launch an instance", "launch"),
        html! {
            nav.crumbs aria-label="Breadcrumb" { a href="/console/instances" { "Instances" } " › Launch an instance" }
            div.card.success {
                h1 { span.ok-mark aria-hidden="true" { "✓" } " Success" }
                p { "Successfully initiated launch of "
                    @for (n, i) in list.iter().enumerate() {
                        @if n > 0 { ", " }
                        "instance " a.instance-link href={ "/console/instances/" (i.id) } { code { (i.id) } }
                    }
                }
                @if list.is_empty() { (api_error(&ApiError::internal())) }
                div.buttons {
                    @if let Some(i) = list.first() {
                        a.button href={ "/console/instances/" (i.id) "?tab=connect" } { "Connect to your instance" }
                    }
                    a.button.primary href="/console/instances" { "View all instances" }
                }
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wizard_speaks_the_query_protocol() {
        let mut ch = Choice::defaults();
        ch.image_id = "ami-0123456789abcdef0".into();
        ch.name = "web".into();
        ch.key_name = "demo".into();
        ch.volume = "10".into();
        ch.user_data = "#!/bin/sh\r\necho hi\r\n".into();
        let pairs = run_params(&ch, &["sg-1".into()]);
        let body: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs.iter())
            .finish();
        let mut params = Params::default();
        params.extend_from_form(body.as_bytes()).unwrap();
        let req = gureum_ec2::parse("RunInstances", params).unwrap();
        let gureum_ec2::Action::Instances(ec2::instances::Action::RunInstances(r)) = req.action
        else {
            panic!()
        };
        assert_eq!(r.image_id, "ami-0123456789abcdef0");
        assert_eq!(r.key_name.as_deref(), Some("demo"));
        assert_eq!(r.security_group_ids, vec!["sg-1"]);
        assert_eq!(r.user_data.as_deref(), Some(&b"#!/bin/sh\necho hi\n"[..]));
        assert_eq!(r.tag_specifications[0].tags[0].value, "web");
        assert_eq!(r.associate_public_ip, Some(true));
    }

    #[test]
    fn free_tier_types_have_prices() {
        assert!(hourly_price("t2.micro").is_some());
        for t in CATALOGUE.iter().filter(|t| !t.name.is_empty()) {
            assert!(hourly_price(t.name).is_some(), "{}", t.name);
        }
    }

    #[test]
    fn errors_land_in_their_section() {
        use gureum_types::ErrorCode;
        let e = |code, m: &str| section_of(&ApiError::new(code, m));
        assert_eq!(
            e(
                ErrorCode::InvalidAMIIDNotFound,
                "The image id '[ami-1]' does not exist"
            ),
            "image"
        );
        assert_eq!(
            e(
                ErrorCode::InvalidKeyPairNotFound,
                "The key pair 'x' does not exist"
            ),
            "key"
        );
        assert_eq!(
            e(
                ErrorCode::InstanceLimitExceeded,
                "You have requested more instances"
            ),
            "count"
        );
        assert_eq!(
            e(ErrorCode::InternalError, "An internal error has occurred"),
            "summary"
        );
    }
}
