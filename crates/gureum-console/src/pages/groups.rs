//! Security groups: list, create, delete, and the inbound/outbound rule editor with the AWS
//! console's rule types (SSH, HTTP, HTTPS, Custom TCP, …). Saving the editor revokes the
//! rules that went away and authorizes the new ones one by one, so an error lands next to the
//! row that caused it; on an error every change of that save is undone.
//!
//! Protocols are [`IpProtocol`]s throughout: a rule type names one, a row the editor cannot
//! express with a type of its own (a protocol number, an ICMP type and code) carries its
//! protocol in a hidden field that is parsed like the API parses `IpProtocol`, so saving a
//! group never turns such a rule into something else.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::response::Response;
use gureum_ec2::ops as ec2;
use gureum_ec2::ops::security_groups::{GroupRef, Permission};
use gureum_types::model::{SecurityGroup, SecurityGroupRule};
use gureum_types::{ApiError, ErrorCode, IpProtocol};
use maud::{html, Markup};

use crate::html::{api_error, csrf, layout, or_dash};
use crate::session::{Posted, Session, Signed};
use crate::{ClientIp, Console};

/// A rule type of the editor: (label, protocol, fixed port range; `None` = typed by the user:
/// a port range for TCP/UDP, `type` or `type-code` for ICMP).
pub type RuleType = (&'static str, IpProtocol, Option<(i32, i32)>);

use IpProtocol::{Icmp, Icmpv6, Tcp, Udp};

pub const RULE_TYPES: &[RuleType] = &[
    ("Custom TCP", Tcp, None),
    ("Custom UDP", Udp, None),
    ("Custom ICMP - IPv4", Icmp, None),
    ("All TCP", Tcp, Some((0, 65535))),
    ("All UDP", Udp, Some((0, 65535))),
    ("All ICMP - IPv4", Icmp, Some((-1, -1))),
    ("All ICMP - IPv6", Icmpv6, Some((-1, -1))),
    ("All traffic", IpProtocol::All, Some((-1, -1))),
    ("SSH", Tcp, Some((22, 22))),
    ("SMTP", Tcp, Some((25, 25))),
    ("DNS (UDP)", Udp, Some((53, 53))),
    ("DNS (TCP)", Tcp, Some((53, 53))),
    ("HTTP", Tcp, Some((80, 80))),
    ("POP3", Tcp, Some((110, 110))),
    ("IMAP", Tcp, Some((143, 143))),
    ("HTTPS", Tcp, Some((443, 443))),
    ("SMTPS", Tcp, Some((465, 465))),
    ("IMAPS", Tcp, Some((993, 993))),
    ("POP3S", Tcp, Some((995, 995))),
    ("MS SQL", Tcp, Some((1433, 1433))),
    ("NFS", Tcp, Some((2049, 2049))),
    ("MYSQL/Aurora", Tcp, Some((3306, 3306))),
    ("RDP", Tcp, Some((3389, 3389))),
    ("PostgreSQL", Tcp, Some((5432, 5432))),
];

/// The type of rules no entry of [`RULE_TYPES`] names: the protocol comes from the row.
pub const CUSTOM_PROTOCOL: &str = "Custom protocol";

/// The label of a rule type with a fixed protocol, or [`CUSTOM_PROTOCOL`].
pub fn type_label(r: &SecurityGroupRule) -> &'static str {
    let ports = (r.from_port.unwrap_or(-1), r.to_port.unwrap_or(-1));
    let ports = if r.protocol.has_ports() {
        Some(ports)
    } else {
        Some((-1, -1))
    };
    for (label, proto, fixed) in RULE_TYPES {
        if *proto == r.protocol && *fixed == ports {
            return label;
        }
    }
    match r.protocol {
        Tcp => "Custom TCP",
        Udp => "Custom UDP",
        Icmp => "Custom ICMP - IPv4",
        Icmpv6 | IpProtocol::All | IpProtocol::Other(_) => CUSTOM_PROTOCOL,
    }
}

pub fn protocol_label(p: IpProtocol) -> String {
    p.label()
}

pub fn port_label(r: &SecurityGroupRule) -> String {
    if !r.protocol.has_ports() {
        return "All".into();
    }
    match (r.protocol, r.from_port, r.to_port) {
        (Icmp | Icmpv6, Some(-1) | None, _) => "All".into(),
        (Icmp | Icmpv6, Some(t), Some(-1) | None) => format!("type {t}"),
        (Icmp | Icmpv6, Some(t), Some(c)) => format!("type {t} code {c}"),
        (_, Some(f), Some(t)) if f == t => f.to_string(),
        (_, Some(0), Some(65535)) => "0 - 65535".into(),
        (_, Some(f), Some(t)) => format!("{f} - {t}"),
        _ => "All".into(),
    }
}

pub fn peer_label(r: &SecurityGroupRule) -> String {
    r.cidr_ipv4
        .clone()
        .or_else(|| r.cidr_ipv6.clone())
        .or_else(|| r.referenced_group_id.clone())
        .unwrap_or_default()
}

pub async fn list(State(c): State<Console>, Signed(s): Signed) -> Response {
    let groups = match c.security_groups(&s, vec![]).await {
        Ok(g) => g,
        Err(e) => return super::failed(&c, &s, "Security groups", "groups", &e),
    };
    let vpcs = c.vpcs(&s).await.unwrap_or_default();
    layout(
        super::frame(&c, &s, "Security groups", "groups"),
        html! {
            div.head {
                h1 { "Security groups " span.count { "(" (groups.len()) ")" } }
                button.primary type="button" data-open="#sg-create" { "Create security group" }
            }
            dialog #sg-create aria-labelledby="sg-create-title" {
                form method="post" action="/console/security-groups/create" {
                    h2 #sg-create-title { "Create security group" }
                    (csrf(&s))
                    label for="sg-name" { "Security group name" }
                    input #sg-name name="name" required maxlength="255";
                    label for="sg-desc" { "Description" }
                    input #sg-desc name="description" required maxlength="255";
                    label for="sg-vpc" { "VPC" }
                    select #sg-vpc name="vpc_id" {
                        @for v in &vpcs { option value=(v.id) selected[v.is_default] { (v.id) " (" (v.cidr) ")" @if v.is_default { " – default" } } }
                    }
                    div.buttons {
                        button type="button" data-close { "Cancel" }
                        button.primary type="submit" { "Create security group" }
                    }
                }
            }
            div.table-wrap {
                table.grid {
                    thead { tr { th { "Security group ID" } th { "Name" } th { "VPC ID" } th { "Description" } th { "Inbound rules" } th { "Outbound rules" } th { span.sr { "Actions" } } } }
                    tbody {
                        @for g in &groups {
                            tr {
                                td { a href={ "/console/security-groups/" (g.id) } { code { (g.id) } } }
                                td { (g.name) }
                                td { code { (g.vpc_id) } }
                                td { (g.description) }
                                td { (g.rules.iter().filter(|r| !r.is_egress).count()) }
                                td { (g.rules.iter().filter(|r| r.is_egress).count()) }
                                td {
                                    @if g.name != "default" {
                                        form method="post" action="/console/security-groups/delete" data-async data-confirm={ "Delete security group " (g.name) "?" } {
                                            (csrf(&s))
                                            input type="hidden" name="group_id" value=(g.id);
                                            button.link.danger type="submit" { "Delete" }
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

pub async fn create(State(c): State<Console>, p: Posted) -> Response {
    let r = c
        .call(
            &p.session,
            ec2::security_groups::Action::CreateSecurityGroup {
                group_name: p.form.text("name"),
                description: p.form.text("description"),
                vpc_id: Some(p.form.text("vpc_id")).filter(|v| !v.is_empty()),
                tag_specifications: vec![],
            },
        )
        .await;
    match r {
        Ok(ec2::security_groups::Response::CreateSecurityGroup { group_id, .. }) => {
            let to = format!("/console/security-groups/{group_id}");
            super::back(
                &c,
                &p,
                &to,
                Ok(format!("Created security group {group_id}")),
            )
        }
        Ok(_) => super::back(&c, &p, "/console/security-groups", Ok("Created".into())),
        Err(e) => super::back(&c, &p, "/console/security-groups", Err(e)),
    }
}

pub async fn delete(State(c): State<Console>, p: Posted) -> Response {
    let id = p.form.text("group_id");
    let r = c
        .call(
            &p.session,
            ec2::security_groups::Action::DeleteSecurityGroup {
                group_id: Some(id.clone()),
                group_name: None,
            },
        )
        .await
        .map(|_| format!("Deleted security group {id}"));
    super::back(&c, &p, "/console/security-groups", r)
}

async fn group(c: &Console, s: &Session, id: &str) -> Result<SecurityGroup, ApiError> {
    c.security_groups(s, vec![id.to_string()])
        .await?
        .into_iter()
        .next()
        .ok_or_else(ApiError::internal)
}

fn rules_table(rules: &[&SecurityGroupRule], egress: bool) -> Markup {
    html! {
        table.plain {
            thead { tr { th { "Security group rule ID" } th { "Type" } th { "Protocol" } th { "Port range" } th { (if egress { "Destination" } else { "Source" }) } th { "Description" } } }
            tbody {
                @if rules.is_empty() { tr { td colspan="6" .muted { "No rules" } } }
                @for r in rules {
                    tr {
                        td { code { (r.id) } }
                        td { (type_label(r)) }
                        td { (protocol_label(r.protocol)) }
                        td { (port_label(r)) }
                        td { code { (peer_label(r)) } }
                        td { (or_dash(r.description.as_deref().unwrap_or(""))) }
                    }
                }
            }
        }
    }
}

pub async fn detail(
    State(c): State<Console>,
    Signed(s): Signed,
    Path(id): Path<String>,
) -> Response {
    let g = match group(&c, &s, &id).await {
        Ok(g) => g,
        Err(e) => return super::failed(&c, &s, "Security group", "groups", &e),
    };
    let inbound: Vec<&SecurityGroupRule> = g.rules.iter().filter(|r| !r.is_egress).collect();
    let outbound: Vec<&SecurityGroupRule> = g.rules.iter().filter(|r| r.is_egress).collect();
    layout(
        super::frame(&c, &s, &g.name, "groups"),
        html! {
            nav.crumbs aria-label="Breadcrumb" { a href="/console/security-groups" { "Security groups" } " › " (g.id) }
            h1 { (g.id) " – " (g.name) }
            section.card {
                (crate::html::dl(&[
                    ("Security group name", html! { (g.name) }),
                    ("Security group ID", html! { code { (g.id) } }),
                    ("Description", html! { (g.description) }),
                    ("VPC ID", html! { code { (g.vpc_id) } }),
                    ("Owner", html! { (g.owner_id) }),
                ]))
            }
            section.card {
                div.head { h2 { "Inbound rules (" (inbound.len()) ")" } a.button href={ "/console/security-groups/" (g.id) "/rules?dir=in" } { "Edit inbound rules" } }
                (rules_table(&inbound, false))
            }
            section.card {
                div.head { h2 { "Outbound rules (" (outbound.len()) ")" } a.button href={ "/console/security-groups/" (g.id) "/rules?dir=out" } { "Edit outbound rules" } }
                (rules_table(&outbound, true))
            }
        },
    )
}

/// One row of the editor as posted.
#[derive(Debug, Clone, Default)]
struct Row {
    rule_id: String,
    kind: String,
    /// The protocol of a [`CUSTOM_PROTOCOL`] row, as AWS spells it (ignored for other types).
    proto: String,
    port: String,
    source: String,
    desc: String,
}

impl Row {
    fn from_rule(r: &SecurityGroupRule) -> Row {
        let kind = type_label(r).to_string();
        let port = match (r.protocol, r.from_port, r.to_port) {
            _ if !r.protocol.has_ports() => "All".into(),
            (_, Some(-1), _) => "All".into(),
            // An ICMP type with every code: the type alone.
            (Icmp | Icmpv6, Some(t), Some(-1)) => t.to_string(),
            (_, Some(f), Some(t)) if f == t && !matches!(r.protocol, Icmp | Icmpv6) => {
                f.to_string()
            }
            (_, Some(f), Some(t)) => format!("{f}-{t}"),
            _ => String::new(),
        };
        Row {
            rule_id: r.id.clone(),
            proto: r.protocol.to_string(),
            kind,
            port,
            source: peer_label(r),
            desc: r.description.clone().unwrap_or_default(),
        }
    }

    fn blank(&self) -> bool {
        self.rule_id.is_empty() && self.port.is_empty() && self.source.is_empty()
    }

    /// The permission this row asks for, or the reason it is not one.
    fn permission(&self) -> Result<Permission, String> {
        let (proto, fixed) = if self.kind == CUSTOM_PROTOCOL {
            // Parsed as the API parses it, with its error.
            let proto: IpProtocol = self.proto.trim().parse().map_err(|e: ApiError| e.message)?;
            let fixed = match proto {
                Icmp | Icmpv6 => None,
                _ => Some((-1, -1)),
            };
            (proto, fixed)
        } else {
            let Some((_, proto, fixed)) = RULE_TYPES.iter().find(|(l, _, _)| *l == self.kind)
            else {
                return Err(format!("Unknown rule type {}", self.kind));
            };
            (*proto, *fixed)
        };
        let (from, to) = match (proto, fixed) {
            (_, Some(_)) if !proto.has_ports() => (None, None),
            (_, Some((f, t))) => (Some(f), Some(t)),
            (Icmp | Icmpv6, None) => {
                let p = self.port.replace(' ', "");
                if p.eq_ignore_ascii_case("all") {
                    (Some(-1), Some(-1))
                } else {
                    let (t, c) = p.split_once('-').unwrap_or((&p, "-1"));
                    match (t.parse::<i32>(), c.parse::<i32>()) {
                        (Ok(t), Ok(c)) if (0..=255).contains(&t) && (-1..=255).contains(&c) => {
                            (Some(t), Some(c))
                        }
                        _ => return Err("Enter an ICMP type (8) or a type and code (3-4)".into()),
                    }
                }
            }
            (_, None) => {
                let p = self.port.replace(' ', "");
                let (f, t) = p.split_once('-').unwrap_or((&p, &p));
                match (f.parse::<i32>(), t.parse::<i32>()) {
                    (Ok(f), Ok(t)) => (Some(f), Some(t)),
                    _ => return Err("Enter a port (22) or a port range (8000-8080)".into()),
                }
            }
        };
        let src = self.source.trim();
        if src.is_empty() {
            return Err("Enter a CIDR block (0.0.0.0/0) or a security group id".into());
        }
        let desc = Some(self.desc.trim().to_string()).filter(|d| !d.is_empty());
        let mut p = Permission {
            protocol: proto,
            from_port: from,
            to_port: to,
            ipv4_ranges: vec![],
            ipv6_ranges: vec![],
            groups: vec![],
        };
        if src.starts_with("sg-") {
            p.groups.push(GroupRef {
                group_id: Some(src.to_string()),
                group_name: None,
                description: desc,
            });
        } else if src.contains(':') {
            p.ipv6_ranges.push((src.to_string(), desc));
        } else {
            p.ipv4_ranges.push((src.to_string(), desc));
        }
        Ok(p)
    }
}

fn rule_permission(r: &SecurityGroupRule) -> Permission {
    let mut p = Permission {
        protocol: r.protocol,
        from_port: r.from_port,
        to_port: r.to_port,
        ipv4_ranges: vec![],
        ipv6_ranges: vec![],
        groups: vec![],
    };
    if let Some(c) = &r.cidr_ipv4 {
        p.ipv4_ranges.push((c.clone(), r.description.clone()));
    } else if let Some(c) = &r.cidr_ipv6 {
        p.ipv6_ranges.push((c.clone(), r.description.clone()));
    } else if let Some(g) = &r.referenced_group_id {
        p.groups.push(GroupRef {
            group_id: Some(g.clone()),
            group_name: None,
            description: r.description.clone(),
        });
    }
    p
}

fn type_select(selected: &str, idx: usize) -> Markup {
    html! {
        select name="type" id={ "type-" (idx) } aria-label="Type" data-rule-type {
            @for (label, proto, fixed) in RULE_TYPES {
                option value=(label) selected[*label == selected]
                    data-proto=(protocol_label(*proto))
                    data-port=(match fixed { None => String::new(), Some((-1, -1)) => "All".into(), Some((f, t)) if f == t => f.to_string(), Some((f, t)) => format!("{f}-{t}") }) { (label) }
            }
            // Only for a rule that is one already (made through the API): kept as it is.
            @if selected == CUSTOM_PROTOCOL {
                option value=(CUSTOM_PROTOCOL) selected data-proto="" data-port="" { (CUSTOM_PROTOCOL) }
            }
        }
    }
}

fn editor_row(r: &Row, idx: usize, error: Option<&str>, egress: bool, my_ip: &str) -> Markup {
    let custom = if r.kind == CUSTOM_PROTOCOL {
        r.proto
            .parse::<IpProtocol>()
            .is_ok_and(|p| matches!(p, Icmp | Icmpv6))
    } else {
        RULE_TYPES
            .iter()
            .find(|(l, _, _)| *l == r.kind)
            .is_none_or(|(_, _, f)| f.is_none())
    };
    let proto = if r.kind == CUSTOM_PROTOCOL {
        r.proto.parse().map(protocol_label).unwrap_or_default()
    } else {
        RULE_TYPES
            .iter()
            .find(|(l, _, _)| *l == r.kind)
            .map(|(_, p, _)| protocol_label(*p))
            .unwrap_or_else(|| "TCP".into())
    };
    html! {
        tr.rule-row data-row=(idx) {
            td {
                input type="hidden" name="rule_id" value=(r.rule_id);
                input type="hidden" name="proto" value=(r.proto);
                @if r.rule_id.is_empty() { span.muted { "–" } } @else { code.small { (r.rule_id) } }
            }
            td { (type_select(&r.kind, idx)) }
            td { span data-proto { (proto) } }
            td { input name="port" value=(r.port) aria-label="Port range" readonly[!custom] size="11" data-port-input; }
            td {
                div.source {
                    select aria-label="Source type" data-source-kind {
                        option value="custom" { "Custom" }
                        option value="0.0.0.0/0" selected[r.source == "0.0.0.0/0"] { "Anywhere-IPv4" }
                        option value="::/0" selected[r.source == "::/0"] { "Anywhere-IPv6" }
                        @if !my_ip.is_empty() {
                            @let mine = format!("{my_ip}/32");
                            option value=(mine) selected[r.source == mine] { "My IP" }
                        }
                    }
                    input name="source" value=(r.source) aria-label=(if egress { "Destination" } else { "Source" }) placeholder="CIDR or sg-…" size="18" aria-invalid=[error.map(|_| "true")];
                }
                @if let Some(e) = error { p.field-error role="alert" { (e) } }
            }
            td { input name="desc" value=(r.desc) aria-label="Description" maxlength="255"; }
            td { button.link.danger type="button" data-remove-row { "Delete" } }
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn editor_page(
    c: &Console,
    s: &Session,
    g: &SecurityGroup,
    egress: bool,
    rows: &[Row],
    errors: &HashMap<usize, String>,
    top: Option<&ApiError>,
    my_ip: &str,
) -> Response {
    let title = if egress {
        "Edit outbound rules"
    } else {
        "Edit inbound rules"
    };
    let blank = Row {
        kind: "Custom TCP".into(),
        ..Default::default()
    };
    layout(
        super::frame(c, s, title, "groups"),
        html! {
            nav.crumbs aria-label="Breadcrumb" { a href="/console/security-groups" { "Security groups" } " › " a href={ "/console/security-groups/" (g.id) } { (g.id) } " › " (title) }
            h1 { (title) }
            p.hint { (if egress { "Outbound rules control the traffic that is allowed to leave the instance." } else { "Inbound rules control the incoming traffic that is allowed to reach the instance." } ) " Changes apply to running instances at once." }
            @if let Some(e) = top { (api_error(e)) }
            form #rule-editor method="post" action={ "/console/security-groups/" (g.id) "/rules" } {
                (csrf(s))
                input type="hidden" name="dir" value=(if egress { "out" } else { "in" });
                div.table-wrap {
                    table.grid.editor {
                        thead { tr { th { "Rule ID" } th { "Type" } th { "Protocol" } th { "Port range" } th { (if egress { "Destination" } else { "Source" }) } th { "Description – optional" } th { span.sr { "Remove" } } } }
                        tbody #rules {
                            @for (i, r) in rows.iter().enumerate() { (editor_row(r, i, errors.get(&i).map(String::as_str), egress, my_ip)) }
                        }
                    }
                }
                template #rule-template { (editor_row(&blank, 999, None, egress, my_ip)) }
                div.buttons.spread {
                    button type="button" data-add-row="#rules" { "Add rule" }
                    span {
                        a.button href={ "/console/security-groups/" (g.id) } { "Cancel" }
                        " "
                        button.primary type="submit" { "Save rules" }
                    }
                }
            }
        },
    )
}

pub async fn editor(
    State(c): State<Console>,
    Signed(s): Signed,
    ClientIp(ip): ClientIp,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let egress = q.get("dir").is_some_and(|d| d == "out");
    let g = match group(&c, &s, &id).await {
        Ok(g) => g,
        Err(e) => return super::failed(&c, &s, "Security group", "groups", &e),
    };
    let rows: Vec<Row> = g
        .rules
        .iter()
        .filter(|r| r.is_egress == egress)
        .map(Row::from_rule)
        .collect();
    editor_page(&c, &s, &g, egress, &rows, &HashMap::new(), None, &ip)
}

pub async fn save_rules(
    State(c): State<Console>,
    ClientIp(ip): ClientIp,
    Path(id): Path<String>,
    p: Posted,
) -> Response {
    let s = &p.session;
    let egress = p.form.get("dir") == Some("out");
    let g = match group(&c, s, &id).await {
        Ok(g) => g,
        Err(e) => return super::failed(&c, s, "Security group", "groups", &e),
    };
    let f = &p.form;
    let (ids, protos, kinds, ports, sources, descs) = (
        f.all("rule_id"),
        f.all("proto"),
        f.all("type"),
        f.all("port"),
        f.all("source"),
        f.all("desc"),
    );
    let rows: Vec<Row> = (0..kinds.len())
        .map(|i| Row {
            rule_id: ids.get(i).cloned().unwrap_or_default(),
            proto: protos.get(i).cloned().unwrap_or_default(),
            kind: kinds[i].clone(),
            port: ports.get(i).cloned().unwrap_or_default(),
            source: sources.get(i).cloned().unwrap_or_default(),
            desc: descs.get(i).cloned().unwrap_or_default(),
        })
        .filter(|r| !r.blank())
        .collect();
    let current: Vec<&SecurityGroupRule> =
        g.rules.iter().filter(|r| r.is_egress == egress).collect();

    // Rows that still say exactly what their rule says are kept as they are.
    let mut errors = HashMap::new();
    let mut keep = Vec::new();
    let mut add: Vec<(usize, Permission)> = Vec::new();
    for (i, r) in rows.iter().enumerate() {
        let perm = match r.permission() {
            Ok(p) => p,
            Err(e) => {
                errors.insert(i, e);
                continue;
            }
        };
        let same = current
            .iter()
            .find(|x| x.id == r.rule_id)
            .is_some_and(|x| rule_permission(x) == perm);
        if same {
            keep.push(r.rule_id.clone());
        } else {
            add.push((i, perm));
        }
    }
    if !errors.is_empty() {
        return editor_page(&c, s, &g, egress, &rows, &errors, None, &ip);
    }
    let revoke: Vec<&SecurityGroupRule> = current
        .iter()
        .copied()
        .filter(|r| !keep.contains(&r.id))
        .collect();
    if !revoke.is_empty() {
        if let Err(e) = c
            .call(
                s,
                ec2::security_groups::Action::RevokeSecurityGroup {
                    egress,
                    group_id: Some(g.id.clone()),
                    group_name: None,
                    permissions: vec![],
                    rule_ids: revoke.iter().map(|r| r.id.clone()).collect(),
                },
            )
            .await
        {
            return editor_page(&c, s, &g, egress, &rows, &errors, Some(&e), &ip);
        }
    }
    let mut added: Vec<String> = Vec::new();
    for (i, perm) in &add {
        match c
            .call(
                s,
                ec2::security_groups::Action::AuthorizeSecurityGroup {
                    egress,
                    group_id: Some(g.id.clone()),
                    group_name: None,
                    permissions: vec![perm.clone()],
                    tag_specifications: vec![],
                },
            )
            .await
        {
            Ok(ec2::security_groups::Response::RulesAdded(rules)) => {
                added.extend(rules.into_iter().map(|r| r.id))
            }
            Ok(_) => {}
            Err(e) => {
                // Undo this save: remove what it added, restore what it revoked.
                if !added.is_empty() {
                    let _ = c
                        .call(
                            s,
                            ec2::security_groups::Action::RevokeSecurityGroup {
                                egress,
                                group_id: Some(g.id.clone()),
                                group_name: None,
                                permissions: vec![],
                                rule_ids: added.clone(),
                            },
                        )
                        .await;
                }
                if !revoke.is_empty() {
                    let _ = c
                        .call(
                            s,
                            ec2::security_groups::Action::AuthorizeSecurityGroup {
                                egress,
                                group_id: Some(g.id.clone()),
                                group_name: None,
                                permissions: revoke.iter().map(|r| rule_permission(r)).collect(),
                                tag_specifications: vec![],
                            },
                        )
                        .await;
                }
                errors.insert(*i, format!("{}: {}", e.code, e.message));
                let g = group(&c, s, &id).await.unwrap_or(g.clone());
                let top = ApiError::new(
                    ErrorCode::InvalidParameterValue,
                    "The rules were not saved; nothing was changed.",
                );
                return editor_page(&c, s, &g, egress, &rows, &errors, Some(&top), &ip);
            }
        }
    }
    let msg = format!(
        "Saved the {} rules of {}: {} added, {} removed",
        if egress { "outbound" } else { "inbound" },
        g.id,
        add.len(),
        revoke.len()
    );
    super::back(
        &c,
        &p,
        &format!("/console/security-groups/{}", g.id),
        Ok(msg),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(proto: &str, from: Option<i32>, to: Option<i32>) -> SecurityGroupRule {
        SecurityGroupRule {
            id: "sgr-1".into(),
            group_id: "sg-1".into(),
            owner_id: "1".into(),
            is_egress: false,
            protocol: proto.parse().unwrap(),
            from_port: from,
            to_port: to,
            cidr_ipv4: Some("0.0.0.0/0".into()),
            cidr_ipv6: None,
            referenced_group_id: None,
            description: None,
        }
    }

    #[test]
    fn types_are_named_as_aws_names_them() {
        assert_eq!(type_label(&rule("tcp", Some(22), Some(22))), "SSH");
        assert_eq!(type_label(&rule("tcp", Some(443), Some(443))), "HTTPS");
        assert_eq!(
            type_label(&rule("tcp", Some(8080), Some(8080))),
            "Custom TCP"
        );
        assert_eq!(type_label(&rule("-1", None, None)), "All traffic");
        assert_eq!(
            port_label(&rule("tcp", Some(8000), Some(8080))),
            "8000 - 8080"
        );
    }

    #[test]
    fn rows_become_permissions_and_round_trip() {
        let r = Row {
            kind: "Custom TCP".into(),
            port: "8080".into(),
            source: "0.0.0.0/0".into(),
            ..Default::default()
        };
        let p = r.permission().unwrap();
        assert_eq!(
            (p.protocol, p.from_port, p.to_port),
            (Tcp, Some(8080), Some(8080))
        );
        let ssh = rule("tcp", Some(22), Some(22));
        assert_eq!(
            Row::from_rule(&ssh).permission().unwrap(),
            rule_permission(&ssh)
        );
        let all = rule("-1", None, None);
        assert_eq!(
            Row::from_rule(&all).permission().unwrap(),
            rule_permission(&all)
        );
        let bad = Row {
            port: "x".into(),
            ..r
        };
        assert!(bad.permission().is_err());
    }

    /// Every protocol an API client can set survives a save of the editor unchanged: the row
    /// made from the rule asks for exactly the rule's permission.
    #[test]
    fn every_protocol_round_trips_through_the_editor() {
        for (proto, from, to, kind, label, ports) in [
            (
                "icmp",
                Some(8),
                Some(-1),
                "Custom ICMP - IPv4",
                "ICMP",
                "type 8",
            ),
            (
                "icmp",
                Some(3),
                Some(4),
                "Custom ICMP - IPv4",
                "ICMP",
                "type 3 code 4",
            ),
            ("icmp", Some(-1), Some(-1), "All ICMP - IPv4", "ICMP", "All"),
            (
                "icmpv6",
                Some(-1),
                Some(-1),
                "All ICMP - IPv6",
                "ICMPv6",
                "All",
            ),
            (
                "icmpv6",
                Some(128),
                Some(0),
                CUSTOM_PROTOCOL,
                "ICMPv6",
                "type 128 code 0",
            ),
            ("47", None, None, CUSTOM_PROTOCOL, "Protocol 47", "All"),
            ("udp", Some(53), Some(53), "DNS (UDP)", "UDP", "53"),
            ("tcp", Some(22), Some(22), "SSH", "TCP", "22"),
            ("-1", None, None, "All traffic", "All", "All"),
        ] {
            let r = rule(proto, from, to);
            assert_eq!(type_label(&r), kind, "{proto}");
            assert_eq!(protocol_label(r.protocol), label, "{proto}");
            assert_eq!(port_label(&r), ports, "{proto}");
            let row = Row::from_rule(&r);
            assert_eq!(row.permission(), Ok(rule_permission(&r)), "{proto} {row:?}");
        }
    }

    #[test]
    fn custom_protocol_rows_parse_like_the_api() {
        let row = |proto: &str| Row {
            kind: CUSTOM_PROTOCOL.into(),
            proto: proto.into(),
            port: "All".into(),
            source: "10.0.0.0/8".into(),
            ..Default::default()
        };
        assert_eq!(
            row("50").permission().unwrap().protocol,
            IpProtocol::Other(50)
        );
        assert_eq!(row("6").permission().unwrap().protocol, Tcp);
        assert_eq!(
            row("300").permission().unwrap_err(),
            "Invalid value '300' for IP protocol. Unknown protocol."
        );
        // An ICMP type out of range is refused here, before the API sees it.
        let icmp = Row {
            kind: "Custom ICMP - IPv4".into(),
            port: "256".into(),
            ..row("")
        };
        assert!(icmp.permission().is_err());
    }
}
