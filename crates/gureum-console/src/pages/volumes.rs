//! EBS volumes: the table (live), a volume's page (live), and their actions: create (empty
//! or from a snapshot), attach to an instance of the volume's zone, detach (and force
//! detach), snapshot, modify (size, type, IOPS, throughput) and delete.
//!
//! A row offers only what the volume's state allows (an `available` volume attaches, an
//! `in-use` one detaches, …); each action that needs more than a click has its dialog in the
//! row, rendered with it, so a row pushed live brings its own. What the core refuses comes
//! back as AWS words it, like every other page's errors.

use std::collections::{HashMap, HashSet};

use axum::extract::{Path, State};
use axum::response::Response;
use gureum_ec2::ops as ec2;
use gureum_types::model::{Instance, Snapshot, Tag, Volume};
use gureum_types::{
    ApiError, ErrorCode, InstanceState, SnapshotState, VolumeState, VolumeType, WireEnum,
};
use maud::{html, Markup};

use crate::data::{filter, name_of, tag_spec};
use crate::forms::FormData;
use crate::html::{
    attachment_badge, csrf, dl, fmt_time, layout, or_dash, short_time, volume_badge,
};
use crate::session::{Posted, Session, Signed};
use crate::Console;

const LIST: &str = "/console/volumes";

/// The device names the console offers for a new attachment, as the AWS console does.
const DEVICE_LETTERS: std::ops::RangeInclusive<char> = 'f'..='p';

/// The attachment point a device name takes (`/dev/sdf` and `/dev/xvdf` are the same one).
fn attachment_point(device: &str) -> &str {
    let d = device.strip_prefix("/dev/").unwrap_or(device);
    d.strip_prefix("xvd")
        .or_else(|| d.strip_prefix("sd"))
        .unwrap_or(d)
        .trim_end_matches(|c: char| c.is_ascii_digit())
}

/// The first of `/dev/sdf` … `/dev/sdp` whose attachment point none of `used` takes.
pub fn next_device<'a>(used: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let taken: HashSet<&str> = used.into_iter().map(attachment_point).collect();
    DEVICE_LETTERS
        .map(|c| c.to_string())
        .find(|c| !taken.contains(c.as_str()))
        .map(|c| format!("/dev/sd{c}"))
}

/// An instance a volume can attach to.
pub struct Target {
    pub id: String,
    pub name: String,
    pub zone: String,
    pub state: &'static str,
    /// The next free device of `/dev/sdf` … `/dev/sdp` (none: all taken).
    pub device: Option<String>,
}

/// What [`Targets`] needs of an instance.
struct Candidate<'a> {
    id: &'a str,
    name: &'a str,
    zone: &'a str,
    state: InstanceState,
}

/// The account's instances a volume may attach to (every one not shutting down or gone),
/// with the device each would take next.
#[derive(Default)]
pub struct Targets(pub Vec<Target>);

impl Targets {
    pub fn new(instances: &[Instance], volumes: &[Volume]) -> Targets {
        Targets::of(
            instances.iter().map(|i| Candidate {
                id: &i.id,
                name: name_of(&i.tags),
                zone: &i.availability_zone,
                state: i.state,
            }),
            volumes,
        )
    }

    fn of<'a>(candidates: impl Iterator<Item = Candidate<'a>>, volumes: &[Volume]) -> Targets {
        let mut used: HashMap<&str, Vec<&str>> = HashMap::new();
        for a in volumes.iter().flat_map(|v| &v.attachments) {
            used.entry(&a.instance_id).or_default().push(&a.device);
        }
        Targets(
            candidates
                .filter(|i| !i.state.is_gone() && i.state != InstanceState::ShuttingDown)
                .map(|i| Target {
                    id: i.id.to_string(),
                    name: i.name.to_string(),
                    zone: i.zone.to_string(),
                    state: i.state.as_str(),
                    device: next_device(used.get(i.id).into_iter().flatten().copied()),
                })
                .collect(),
        )
    }

    /// Read what [`Targets::new`] needs (an error leaves the attach dialog without choices).
    pub async fn load(c: &Console, s: &Session, volumes: &[Volume]) -> Targets {
        let instances = c.instances(s, vec![], vec![]).await.unwrap_or_default();
        Targets::new(&instances, volumes)
    }

    fn in_zone<'a>(&'a self, zone: &'a str) -> impl Iterator<Item = &'a Target> + 'a {
        self.0.iter().filter(move |t| t.zone == zone)
    }
}

/// "100 GiB"
fn gib(n: u32) -> String {
    format!("{n} GiB")
}

fn num(n: Option<u32>) -> Markup {
    match n {
        Some(n) => html! { (n) },
        None => or_dash(""),
    }
}

/// The volume types with what each takes, for the type selects (AWS's order and names).
const TYPES: [(VolumeType, &str); 7] = [
    (VolumeType::Gp3, "General Purpose SSD (gp3)"),
    (VolumeType::Gp2, "General Purpose SSD (gp2)"),
    (VolumeType::Io1, "Provisioned IOPS SSD (io1)"),
    (VolumeType::Io2, "Provisioned IOPS SSD (io2)"),
    (VolumeType::St1, "Throughput Optimized HDD (st1)"),
    (VolumeType::Sc1, "Cold HDD (sc1)"),
    (VolumeType::Standard, "Magnetic (standard)"),
];

/// The types whose IOPS the user sets, and the one whose throughput.
const IOPS_TYPES: &str = "gp3 io1 io2";
const THROUGHPUT_TYPES: &str = "gp3";

/// Type, size, IOPS and throughput fields (create and modify); the script shows IOPS and
/// throughput only for the types that take them (and does not post them otherwise).
fn spec_fields(
    prefix: &str,
    t: VolumeType,
    size: Option<u32>,
    min_size: u32,
    iops: Option<u32>,
    throughput: Option<u32>,
) -> Markup {
    let shown = |types: &str| types.split(' ').any(|x| x == t.as_str());
    html! {
        label for={ (prefix) "-type" } { "Volume type" }
        select id={ (prefix) "-type" } name="volume_type" data-volume-type {
            @for (vt, label) in TYPES { option value=(vt.as_str()) selected[vt == t] { (label) } }
        }
        label for={ (prefix) "-size" } { "Size (GiB)" }
        input id={ (prefix) "-size" } name="size" type="number" min=(min_size) max="65536" value=[size];
        div data-for-types=(IOPS_TYPES) hidden[!shown(IOPS_TYPES)] {
            label for={ (prefix) "-iops" } { "IOPS" }
            input id={ (prefix) "-iops" } name="iops" type="number" min="100" max="256000" value=[iops] disabled[!shown(IOPS_TYPES)];
        }
        div data-for-types=(THROUGHPUT_TYPES) hidden[!shown(THROUGHPUT_TYPES)] {
            label for={ (prefix) "-throughput" } { "Throughput (MiB/s)" }
            input id={ (prefix) "-throughput" } name="throughput" type="number" min="125" max="2000" value=[throughput] disabled[!shown(THROUGHPUT_TYPES)];
        }
    }
}

/// A dialog holding one form: its title, hidden fields, the fields in the body, and Cancel and
/// a submit button. Each row action that needs input has one, inside the row (see the module
/// docs); the page-level create dialogs are the same.
pub struct Dialog<'a> {
    /// The dialog's element id (`attach-vol-…`); its fields' ids start with it.
    pub id: &'a str,
    pub title: Markup,
    /// Where the form posts.
    pub to: &'a str,
    pub hidden: &'a [(&'a str, &'a str)],
    pub submit: &'a str,
    /// Whether the submit button works (an attach with no instance to choose: no).
    pub enabled: bool,
}

impl Dialog<'_> {
    pub fn render(&self, s: &Session, body: Markup) -> Markup {
        html! {
            dialog id=(self.id) aria-labelledby={ (self.id) "-title" } {
                form method="post" action=(self.to) {
                    h2 id={ (self.id) "-title" } { (self.title) }
                    (csrf(s))
                    @for (name, value) in self.hidden { input type="hidden" name=(name) value=(value); }
                    (body)
                    div.buttons {
                        button type="button" data-close { "Cancel" }
                        button.primary type="submit" disabled[!self.enabled] { (self.submit) }
                    }
                }
            }
        }
    }
}

/// The Description and Name tag fields of a snapshot's create and copy dialogs.
pub fn snapshot_fields(prefix: &str, description: &str) -> Markup {
    html! {
        label for={ (prefix) "-desc" } { "Description" }
        input id={ (prefix) "-desc" } name="description" maxlength="255" value=(description);
        label for={ (prefix) "-name" } { "Name tag" }
        input id={ (prefix) "-name" } name="name" maxlength="256";
    }
}

/// The create dialog: a zeroed volume, or one from a snapshot (`from`: that snapshot, fixed;
/// else a choice of `snapshots`). `id` keeps the ids of several such dialogs on one page apart.
pub fn create_dialog(
    s: &Session,
    id: &str,
    zones: &[(String, String)],
    snapshots: &[Snapshot],
    from: Option<&Snapshot>,
) -> Markup {
    let size = from.map(|f| f.volume_size).unwrap_or(100);
    let hidden: Vec<(&str, &str)> = from
        .map(|f| ("snapshot_id", f.id.as_str()))
        .into_iter()
        .collect();
    let dialog = Dialog {
        id,
        title: match from {
            Some(f) => html! { "Create volume from " (f.id) },
            None => html! { "Create volume" },
        },
        to: "/console/volumes/create",
        hidden: &hidden,
        submit: "Create volume",
        enabled: true,
    };
    dialog.render(
        s,
        html! {
            (spec_fields(id, VolumeType::Gp3, Some(size), from.map(|f| f.volume_size).unwrap_or(1), Some(3000), Some(125)))
            label for={ (id) "-zone" } { "Availability Zone" }
            select id={ (id) "-zone" } name="zone" required {
                @for (name, _) in zones { option value=(name) { (name) } }
            }
            @if from.is_none() {
                label for={ (id) "-snapshot" } { "Snapshot ID" }
                select id={ (id) "-snapshot" } name="snapshot_id" {
                    option value="" { "Don't create volume from a snapshot" }
                    @for sn in snapshots.iter().filter(|sn| sn.state == SnapshotState::Completed) {
                        option value=(sn.id) { (sn.id) @let n = name_of(&sn.tags); @if !n.is_empty() { " (" (n) ")" } " – " (gib(sn.volume_size)) }
                    }
                }
            }
            label for={ (id) "-name" } { "Name tag" }
            input id={ (id) "-name" } name="name" maxlength="256";
        },
    )
}

/// The actions a volume's state allows, each with its dialog or confirmation; `back` is the
/// page to return to.
pub fn actions(s: &Session, v: &Volume, targets: &Targets, back: &str) -> Markup {
    let id = &v.id;
    let attached = v.attachments.first();
    html! {
        @match v.state {
            VolumeState::Available => {
                button.small type="button" data-open={ "#attach-" (id) } { "Attach" }
                " "
                button.small type="button" data-open={ "#snapshot-" (id) } title="Create snapshot" { "Snapshot" }
                " "
                button.small type="button" data-open={ "#modify-" (id) } { "Modify" }
                (simple(s, id, "delete", "Delete", &format!("Delete {id}? Its data is gone for good; snapshots of it stay."), LIST))
                (attach_dialog(s, v, targets, back))
                (snapshot_dialog(s, v, back))
                (modify_dialog(s, v, back))
            }
            VolumeState::InUse => {
                @let from = attached.map(|a| a.instance_id.as_str()).unwrap_or("its instance");
                (simple(s, id, "detach", "Detach", &format!("Detach {id} from {from}? Unmount it in the instance first."), back))
                (simple(s, id, "force-detach", "Force detach", &format!("Force {id} off {from}? The instance may lose data it has not written; use this only if a detach does not finish."), back))
                " "
                button.small type="button" data-open={ "#snapshot-" (id) } title="Create snapshot" { "Snapshot" }
                " "
                button.small type="button" data-open={ "#modify-" (id) } { "Modify" }
                (snapshot_dialog(s, v, back))
                (modify_dialog(s, v, back))
            }
            VolumeState::Error => {
                (simple(s, id, "delete", "Delete", &format!("Delete {id}?"), LIST))
            }
            VolumeState::Creating | VolumeState::Deleting | VolumeState::Deleted => { span.muted { "–" } }
        }
    }
}

/// A one-button action with a confirmation (posted by the script; a plain form without it).
fn simple(s: &Session, id: &str, action: &str, label: &str, confirm: &str, back: &str) -> Markup {
    let danger = action != "detach";
    html! {
        form.inline method="post" action="/console/volumes/action" data-async data-confirm=(confirm) {
            (csrf(s))
            input type="hidden" name="action" value=(action);
            input type="hidden" name="volume_id" value=(id);
            input type="hidden" name="back" value=(back);
            button.small.danger[danger] type="submit" { (label) }
        }
    }
}

fn attach_dialog(s: &Session, v: &Volume, targets: &Targets, back: &str) -> Markup {
    let id = format!("attach-{}", v.id);
    let choices: Vec<&Target> = targets.in_zone(&v.availability_zone).collect();
    let first = choices.first().and_then(|t| t.device.clone());
    let dialog = Dialog {
        id: &id,
        title: html! { "Attach volume " (v.id) },
        to: "/console/volumes/action",
        hidden: &[("action", "attach"), ("volume_id", &v.id), ("back", back)],
        submit: "Attach volume",
        enabled: !choices.is_empty(),
    };
    dialog.render(
        s,
        html! {
            @if choices.is_empty() {
                p.muted { "No instance in " (v.availability_zone) " to attach to: a volume attaches only to instances of its own Availability Zone." }
            } @else {
                label for={ (id) "-instance" } { "Instance" }
                select id={ (id) "-instance" } name="instance_id" required data-device-into={ "#" (id) "-device" } {
                    @for t in &choices {
                        option value=(t.id) data-device=[t.device.as_deref()] {
                            (t.id) @if !t.name.is_empty() { " (" (t.name) ")" } " – " (t.state)
                        }
                    }
                }
                label for={ (id) "-device" } { "Device name" }
                input id={ (id) "-device" } name="device" value=[first] placeholder="/dev/sdf" required;
                p.hint { "Only instances in " (v.availability_zone) " are listed. The instance sees " code { "/dev/sdf" } " as " code { "/dev/xvdf" } "." }
            }
        },
    )
}

fn snapshot_dialog(s: &Session, v: &Volume, back: &str) -> Markup {
    let id = format!("snapshot-{}", v.id);
    let dialog = Dialog {
        id: &id,
        title: html! { "Create snapshot of " (v.id) },
        to: "/console/snapshots/action",
        hidden: &[("action", "create"), ("volume_id", &v.id), ("back", back)],
        submit: "Create snapshot",
        enabled: true,
    };
    dialog.render(s, snapshot_fields(&id, ""))
}

fn modify_dialog(s: &Session, v: &Volume, back: &str) -> Markup {
    let id = format!("modify-{}", v.id);
    let dialog = Dialog {
        id: &id,
        title: html! { "Modify volume " (v.id) },
        to: "/console/volumes/action",
        hidden: &[("action", "modify"), ("volume_id", &v.id), ("back", back)],
        submit: "Modify",
        enabled: true,
    };
    dialog.render(
        s,
        html! {
            (spec_fields(&id, v.volume_type, Some(v.size_gib), v.size_gib, v.iops.or(Some(3000)), v.throughput.or(Some(125))))
            p.hint { "A volume only grows. After the change, grow the file system inside the instance (e.g. " code { "resize2fs" } ")." }
        },
    )
}

/// Where a volume is attached: the instance, its device, and the attachment's state unless
/// it is plainly `attached`.
fn attachment_cell(v: &Volume) -> Markup {
    html! {
        @if v.attachments.is_empty() { span.muted { "–" } }
        @for a in &v.attachments {
            div.nowrap {
                a href={ "/console/instances/" (a.instance_id) } { code { (a.instance_id) } }
                br;
                code { (a.device) }
                @if a.state != gureum_types::VolumeAttachmentState::Attached { " " (attachment_badge(a.state)) }
            }
        }
    }
}

/// A time on two lines (date, then time of day), to keep a wide table narrow.
pub fn when(aws: &str) -> Markup {
    let t = short_time(aws);
    match t.split_once(' ') {
        Some((date, time)) => html! { span.nowrap { (date) } br; span.nowrap.muted { (time) } },
        None => html! { (t) },
    }
}

/// One row of the table (also pushed live).
pub fn row(s: &Session, v: &Volume, targets: &Targets) -> Markup {
    let name = name_of(&v.tags);
    html! {
        tr data-id=(v.id) data-state=(v.state.as_str()) {
            td.name { (or_dash(name)) }
            td { a href={ "/console/volumes/" (v.id) } { code { (v.id) } } }
            td { (v.volume_type.as_str()) }
            td.nowrap { (gib(v.size_gib)) }
            td.wide { (num(v.iops)) }
            td.wide { (num(v.throughput)) }
            td { (volume_badge(v.state)) }
            td.opt { (v.availability_zone) }
            td { (attachment_cell(v)) }
            td.wide { (when(&v.create_time)) }
            td { div.row-actions { (actions(s, v, targets, LIST)) } }
        }
    }
}

pub fn rows(s: &Session, list: &[Volume], targets: &Targets) -> Markup {
    html! {
        tbody {
            @for v in list { (row(s, v, targets)) }
            tr.empty hidden[!list.is_empty()] { td colspan="11" { "No volumes." } }
        }
    }
}

pub async fn page(State(c): State<Console>, Signed(s): Signed) -> Response {
    let since = c.live().seq();
    let list = match c.volumes(&s, vec![]).await {
        Ok(l) => l,
        Err(e) => return super::failed(&c, &s, "Volumes", "volumes", &e),
    };
    let targets = Targets::load(&c, &s, &list).await;
    let zones = c.zones(&s).await.unwrap_or_default();
    let snapshots = c.snapshots(&s, vec![], vec![]).await.unwrap_or_default();
    let mut f = super::frame(&c, &s, "Volumes", "volumes");
    f.live = Some(format!("view=volumes&since={since}"));
    layout(
        f,
        html! {
            div.head {
                h1 { "Volumes " span.count { "(" (list.len()) ")" } }
                button.primary type="button" data-open="#volume-create" { "Create volume" }
            }
            @if !c.cloud().has_volume_pool() {
                p.alert.warn role="note" { "This host has no volume storage: creating a volume answers InsufficientVolumeCapacity." }
            }
            p.hint { "A volume is a block device that outlives instances: attach it to an instance of its own Availability Zone, snapshot it, grow it." }
            (create_dialog(&s, "volume-create", &zones, &snapshots, None))
            div.table-wrap {
                table #volumes .grid {
                    thead {
                        tr {
                            th { "Name" } th { "Volume ID" } th { "Type" } th { "Size" } th.wide { "IOPS" } th.wide { "Throughput" }
                            th { "Volume state" } th.opt { "Availability Zone" } th { "Attached resources" } th.wide { "Created" } th { span.sr { "Actions" } }
                        }
                    }
                    (rows(&s, &list, &targets))
                }
            }
        },
    )
}

/// The summary of a volume's page (also pushed live): what it is, where it is attached, and
/// its actions.
pub fn summary(s: &Session, v: &Volume, targets: &Targets) -> Markup {
    let back = format!("/console/volumes/{}", v.id);
    html! {
        section #summary .card.summary data-state=(v.state.as_str()) {
            div.head { h2 { "Details" } div.actions { (actions(s, v, targets, &back)) } }
            (dl(&[
                ("Volume ID", html! { code { (v.id) } }),
                ("Volume state", volume_badge(v.state)),
                ("Size", html! { (gib(v.size_gib)) }),
                ("Type", html! { (v.volume_type.as_str()) }),
                ("IOPS", num(v.iops)),
                ("Throughput (MiB/s)", num(v.throughput)),
                ("Availability Zone", html! { (v.availability_zone) }),
                ("Snapshot", match &v.snapshot_id { Some(sn) => html! { code { (sn) } }, None => or_dash("") }),
                ("Created", html! { (fmt_time(&v.create_time)) }),
                ("Encryption", html! { (if v.encrypted { "Encrypted" } else { "Not encrypted" }) }),
                ("Attached resources", attachment_cell(v)),
                ("Delete on termination", match v.attachments.first() { Some(a) => html! { (if a.delete_on_termination { "Yes" } else { "No" }) }, None => or_dash("") }),
            ]))
        }
    }
}

/// What a volume's page shows once the volume is gone (pushed live when it is deleted).
pub fn gone(id: &str) -> Markup {
    html! {
        section #summary .card.summary data-state="deleted" {
            p { "Volume " code { (id) } " was deleted. " a href=(LIST) { "Back to volumes" } }
        }
    }
}

pub async fn detail(
    State(c): State<Console>,
    Signed(s): Signed,
    Path(id): Path<String>,
) -> Response {
    let since = c.live().seq();
    let v = match c
        .call(
            &s,
            ec2::volumes::Action::DescribeVolumes {
                volume_ids: vec![id.clone()],
                filters: vec![],
                page: Default::default(),
            },
        )
        .await
    {
        Ok(ec2::volumes::Response::DescribeVolumes { volumes, .. }) if !volumes.is_empty() => {
            volumes.into_iter().next().expect("not empty")
        }
        Ok(_) => {
            let e = ApiError::new(
                ErrorCode::InvalidVolumeNotFound,
                format!("The volume '{id}' does not exist."),
            );
            return super::failed(&c, &s, "Volume", "volumes", &e);
        }
        Err(e) => return super::failed(&c, &s, "Volume", "volumes", &e),
    };
    let all = c.volumes(&s, vec![]).await.unwrap_or_default();
    let targets = Targets::load(&c, &s, &all).await;
    let modification = match c
        .call(
            &s,
            ec2::volumes::Action::DescribeVolumesModifications {
                volume_ids: vec![v.id.clone()],
                filters: vec![],
                page: Default::default(),
            },
        )
        .await
    {
        Ok(ec2::volumes::Response::DescribeVolumesModifications { modifications, .. }) => {
            modifications.into_iter().next()
        }
        _ => None,
    };
    let snapshots = c
        .snapshots(&s, vec!["self".into()], vec![filter("volume-id", &[&v.id])])
        .await
        .unwrap_or_default();
    let name = name_of(&v.tags);
    let title = if name.is_empty() {
        v.id.clone()
    } else {
        format!("{name} ({})", v.id)
    };
    let mut f = super::frame(&c, &s, &title, "volumes");
    f.live = Some(format!("view=volume&id={}&since={since}", v.id));
    layout(
        f,
        html! {
            nav.crumbs aria-label="Breadcrumb" { a href=(LIST) { "Volumes" } " › " (v.id) }
            h1 { "Volume " (title) }
            (summary(&s, &v, &targets))
            @if let Some(m) = &modification {
                section.card {
                    h2 { "Last modification" }
                    (dl(&[
                        ("State", html! { span class={ "badge st-" (m.state.as_str()) } { i.dot aria-hidden="true" {} (m.state.as_str()) } " " (m.progress) "%" }),
                        ("Size", html! { (gib(m.original_size)) " → " (gib(m.target_size)) }),
                        ("Type", html! { (m.original_volume_type.as_str()) " → " (m.target_volume_type.as_str()) }),
                        ("IOPS", html! { (num(m.original_iops)) " → " (num(m.target_iops)) }),
                        ("Throughput", html! { (num(m.original_throughput)) " → " (num(m.target_throughput)) }),
                        ("Started", html! { (fmt_time(&m.start_time)) }),
                        ("Ended", or_dash(&m.end_time.as_deref().map(fmt_time).unwrap_or_default())),
                    ]))
                }
            }
            section.card {
                h2 { "Snapshots of this volume (" (snapshots.len()) ")" }
                (crate::pages::snapshots::mini_table(&snapshots))
            }
            section.card {
                h2 { "Tags" }
                (tags_table(&v.tags))
            }
        },
    )
}

pub fn tags_table(tags: &[Tag]) -> Markup {
    html! {
        table.plain {
            thead { tr { th { "Key" } th { "Value" } } }
            tbody {
                @if tags.is_empty() { tr { td colspan="2" .muted { "No tags" } } }
                @for t in tags { tr { td { (t.key) } td { (t.value) } } }
            }
        }
    }
}

/// A number field: empty is absent, anything else must be a whole number (AWS's words
/// otherwise).
pub fn number(f: &FormData, name: &str, param: &str) -> Result<Option<u32>, ApiError> {
    let v = f.text(name);
    if v.is_empty() {
        return Ok(None);
    }
    v.parse().map(Some).map_err(|_| {
        ApiError::new(
            ErrorCode::InvalidParameterValue,
            format!("Value ({v}) for parameter {param} is invalid."),
        )
    })
}

fn volume_type(f: &FormData) -> Result<Option<VolumeType>, ApiError> {
    let v = f.text("volume_type");
    if v.is_empty() {
        return Ok(None);
    }
    VolumeType::parse(&v).map(Some).ok_or_else(|| {
        ApiError::new(
            ErrorCode::InvalidParameterValue,
            format!("Value ({v}) for parameter volumeType is invalid."),
        )
    })
}

/// The `Name` tag a form asked for (none if empty).
pub fn name_tag(f: &FormData, resource_type: &str) -> Vec<gureum_types::model::TagSpecification> {
    let name = f.text("name");
    let tags = if name.is_empty() {
        vec![]
    } else {
        vec![Tag {
            key: "Name".into(),
            value: name,
        }]
    };
    tag_spec(resource_type, tags)
}

pub async fn create(State(c): State<Console>, p: Posted) -> Response {
    let f = &p.form;
    let some = |k: &str| Some(f.text(k)).filter(|v| !v.is_empty());
    let spec = (|| {
        Ok::<_, ApiError>(ec2::volumes::CreateVolume {
            availability_zone: some("zone"),
            size: number(f, "size", "size")?,
            snapshot_id: some("snapshot_id"),
            volume_type: volume_type(f)?,
            iops: number(f, "iops", "iops")?,
            throughput: number(f, "throughput", "throughput")?,
            tag_specifications: name_tag(f, "volume"),
            ..Default::default()
        })
    })();
    let r = match spec {
        Ok(spec) => c
            .call(&p.session, ec2::volumes::Action::CreateVolume(spec))
            .await
            .map(|r| match r {
                ec2::volumes::Response::Volume(v) => match &v.snapshot_id {
                    Some(sn) => format!("Creating volume {} from {sn}", v.id),
                    None => format!("Creating volume {}", v.id),
                },
                _ => "Creating the volume".into(),
            }),
        Err(e) => Err(e),
    };
    super::back(&c, &p, LIST, r)
}

pub async fn action(State(c): State<Console>, p: Posted) -> Response {
    let f = &p.form;
    let back = match f.get("back") {
        Some(b) => super::safe_next(Some(b)),
        None => LIST.to_string(),
    };
    let id = f.text("volume_id");
    let r = match f.get("action") {
        Some("attach") => attach(&c, &p, &id).await,
        Some(what @ ("detach" | "force-detach")) => c
            .call(
                &p.session,
                ec2::volumes::Action::DetachVolume {
                    volume_id: id.clone(),
                    instance_id: None,
                    device: None,
                    force: what == "force-detach",
                },
            )
            .await
            .map(|r| match r {
                ec2::volumes::Response::Attachment(a) => {
                    format!("Detaching {id} from {} ({})", a.instance_id, a.device)
                }
                _ => format!("Detaching {id}"),
            }),
        Some("modify") => modify(&c, &p, &id).await,
        Some("delete") => c
            .call(
                &p.session,
                ec2::volumes::Action::DeleteVolume {
                    volume_id: id.clone(),
                },
            )
            .await
            .map(|_| format!("Deleting {id}")),
        _ => Err(ApiError::new(
            ErrorCode::InvalidParameterValue,
            "Unknown action",
        )),
    };
    super::back(&c, &p, &back, r)
}

async fn attach(c: &Console, p: &Posted, id: &str) -> Result<String, ApiError> {
    let instance_id = p.form.text("instance_id");
    let mut device = p.form.text("device");
    if device.is_empty() && !instance_id.is_empty() {
        // No device asked for (no script): the instance's next free one.
        let on = c
            .volumes(
                &p.session,
                vec![filter("attachment.instance-id", &[&instance_id])],
            )
            .await?;
        device = next_device(
            on.iter()
                .flat_map(|v| &v.attachments)
                .map(|a| a.device.as_str()),
        )
        .unwrap_or_default();
    }
    c.call(
        &p.session,
        ec2::volumes::Action::AttachVolume {
            volume_id: id.to_string(),
            instance_id: instance_id.clone(),
            device,
        },
    )
    .await
    .map(|r| match r {
        ec2::volumes::Response::Attachment(a) => {
            format!("Attaching {id} to {} as {}", a.instance_id, a.device)
        }
        _ => format!("Attaching {id} to {instance_id}"),
    })
}

async fn modify(c: &Console, p: &Posted, id: &str) -> Result<String, ApiError> {
    let f = &p.form;
    let change = ec2::volumes::ModifyVolume {
        size: number(f, "size", "size")?,
        volume_type: volume_type(f)?,
        iops: number(f, "iops", "iops")?,
        throughput: number(f, "throughput", "throughput")?,
    };
    match c
        .call(
            &p.session,
            ec2::volumes::Action::ModifyVolume {
                volume_id: id.to_string(),
                change,
            },
        )
        .await?
    {
        ec2::volumes::Response::ModifyVolume(m) => Ok(format!(
            "Modifying {id}: {} {} → {} {}",
            gib(m.original_size),
            m.original_volume_type.as_str(),
            gib(m.target_size),
            m.target_volume_type.as_str()
        )),
        _ => Ok(format!("Modifying {id}")),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use gureum_types::model::VolumeAttachment;
    use gureum_types::VolumeAttachmentState;

    pub(crate) fn session() -> Session {
        Session {
            token: "t".into(),
            account_id: "111111111111".into(),
            account_name: "alice".into(),
            csrf: "c".into(),
        }
    }

    pub(crate) fn volume(id: &str, state: VolumeState) -> Volume {
        Volume {
            id: id.into(),
            size_gib: 8,
            snapshot_id: None,
            availability_zone: "us-east-1a".into(),
            state,
            create_time: "2026-12-07T04:00:00.000Z".into(),
            attachments: vec![],
            volume_type: VolumeType::Gp3,
            iops: Some(3000),
            throughput: Some(125),
            encrypted: false,
            tags: vec![Tag {
                key: "Name".into(),
                value: "<data>".into(),
            }],
        }
    }

    fn instance<'a>(id: &'a str, zone: &'a str, state: InstanceState) -> Candidate<'a> {
        Candidate {
            id,
            name: "",
            zone,
            state,
        }
    }

    fn attached(v: &mut Volume, instance: &str, device: &str, state: VolumeAttachmentState) {
        v.state = VolumeState::InUse;
        v.attachments = vec![VolumeAttachment {
            volume_id: v.id.clone(),
            instance_id: instance.into(),
            device: device.into(),
            state,
            attach_time: "2026-12-07T04:01:00.000Z".into(),
            delete_on_termination: false,
        }];
    }

    #[test]
    fn the_next_device_skips_taken_attachment_points() {
        assert_eq!(next_device([]), Some("/dev/sdf".into()));
        assert_eq!(
            next_device(["/dev/sdf", "/dev/xvdg", "/dev/xvda"]),
            Some("/dev/sdh".into())
        );
        let all: Vec<String> = ('f'..='p').map(|c| format!("/dev/xvd{c}")).collect();
        assert_eq!(next_device(all.iter().map(String::as_str)), None);
    }

    #[test]
    fn attach_offers_instances_of_the_volumes_zone_with_their_next_device() {
        let s = session();
        let mut busy = volume("vol-1", VolumeState::InUse);
        attached(
            &mut busy,
            "i-a",
            "/dev/sdf",
            VolumeAttachmentState::Attached,
        );
        let free = volume("vol-2", VolumeState::Available);
        let instances = [
            instance("i-a", "us-east-1a", InstanceState::Running),
            instance("i-b", "us-east-1b", InstanceState::Running),
            instance("i-c", "us-east-1a", InstanceState::Terminated),
            instance("i-d", "us-east-1a", InstanceState::Stopped),
        ];
        let targets = Targets::of(instances.into_iter(), &[busy.clone(), free.clone()]);
        let html = row(&s, &free, &targets).into_string();
        assert!(
            html.contains(r#"<option value="i-a" data-device="/dev/sdg">"#),
            "{html}"
        );
        assert!(
            html.contains(r#"<option value="i-d" data-device="/dev/sdf">"#),
            "{html}"
        );
        assert!(
            !html.contains("i-b") && !html.contains("i-c"),
            "other zone, gone"
        );
        // The device field starts at the first choice's next device.
        assert!(html.contains(r#"name="device" value="/dev/sdg""#), "{html}");
        // An available volume attaches, snapshots, modifies and deletes; no detach.
        for a in [
            "#attach-vol-2",
            "#snapshot-vol-2",
            "#modify-vol-2",
            r#"value="delete""#,
        ] {
            assert!(html.contains(a), "{a} missing");
        }
        assert!(!html.contains("detach"));
        // The Name tag is escaped.
        assert!(html.contains("&lt;data&gt;") && !html.contains("<data>"));
    }

    #[test]
    fn an_in_use_row_shows_its_instance_and_offers_detach() {
        let s = session();
        let mut v = volume("vol-1", VolumeState::InUse);
        attached(&mut v, "i-a", "/dev/sdf", VolumeAttachmentState::Busy);
        let html = row(&s, &v, &Targets::default()).into_string();
        assert!(html.contains(r#"data-state="in-use""#));
        assert!(html.contains(r#"href="/console/instances/i-a""#) && html.contains("/dev/sdf"));
        // A detach the guest holds up shows as busy.
        assert!(html.contains("st-busy"), "{html}");
        assert!(html.contains(r#"value="detach""#) && html.contains(r#"value="force-detach""#));
        assert!(!html.contains("#attach-vol-1") && !html.contains(r#"value="delete""#));
    }

    #[test]
    fn volumes_on_their_way_offer_nothing() {
        let s = session();
        for st in [VolumeState::Creating, VolumeState::Deleting] {
            let html = row(&s, &volume("vol-1", st), &Targets::default()).into_string();
            assert!(html.contains("spin") && !html.contains("<form"), "{html}");
        }
        let html = row(
            &s,
            &volume("vol-1", VolumeState::Error),
            &Targets::default(),
        )
        .into_string();
        assert!(html.contains(r#"value="delete""#) && !html.contains("#attach"));
    }

    #[test]
    fn iops_and_throughput_fields_follow_the_type() {
        let io1 = spec_fields("x", VolumeType::Io1, Some(100), 1, Some(3000), None).into_string();
        let (iops, tput) = io1.split_at(io1.find(r#"data-for-types="gp3""#).unwrap());
        assert!(!iops.contains("hidden") && tput.contains("hidden") && tput.contains("disabled"));
        let gp2 = spec_fields("x", VolumeType::Gp2, Some(100), 1, None, None).into_string();
        assert_eq!(gp2.matches("hidden").count(), 2, "{gp2}");
        assert_eq!(gp2.matches("disabled").count(), 2, "{gp2}");
    }

    #[test]
    fn numbers_are_whole_or_refused_as_aws_words_it() {
        let f = FormData::parse(b"size=12&iops=&throughput=fast");
        assert_eq!(number(&f, "size", "size").unwrap(), Some(12));
        assert_eq!(number(&f, "iops", "iops").unwrap(), None);
        let e = number(&f, "throughput", "throughput").unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidParameterValue);
        assert!(e.message.contains("(fast) for parameter throughput"));
    }
}
