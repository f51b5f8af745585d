//! The system packages gureum needs, in groups that install on their own: the core (what
//! container instances and EBS volumes need) and VMs (QEMU). A group that cannot be installed says why in
//! one line and turns off only its own feature; it never blocks another group.
//!
//! Why groups: one `apt-get install` of everything once failed as a whole on a machine whose
//! qemu-utils came from backports (Debian's qemu-system-x86 cannot sit next to it), which
//! left the core uninstalled and every instance `pending`. The VM group therefore never
//! replaces a qemu-utils of another version on its own: it installs the qemu-system-x86 of
//! the same version when a configured source has it, and otherwise leaves VMs off with the
//! command that would fix it (`gureum install --replace-qemu-utils`).
//!
//! The decisions are pure functions over an [`Apt`] (the real one runs `dpkg-query`,
//! `apt-cache` and `apt-get`), so they are tested with a fake package database.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::{Deserialize, Serialize};

/// A command gureum runs and the Debian package that provides it.
#[derive(Debug, Clone, Copy)]
pub struct Need {
    pub command: &'static str,
    pub package: &'static str,
}

const fn need(command: &'static str, package: &'static str) -> Need {
    Need { command, package }
}

/// The package groups, each installed on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Group {
    /// Container instances: the runtime, networking, root volumes, image builds, SSH keys;
    /// and EBS volumes (`mkfs.xfs` makes the pool's XFS image when the data dir's file system
    /// cannot clone files, as ext4 cannot).
    Core,
    /// VM instances: QEMU and its image tools.
    Vms,
}

impl Group {
    pub const ALL: [Group; 2] = [Group::Core, Group::Vms];

    pub fn name(self) -> &'static str {
        match self {
            Group::Core => "core",
            Group::Vms => "vms",
        }
    }

    /// What the group is for, as said to the operator.
    pub fn feature(self) -> &'static str {
        match self {
            Group::Core => "instances",
            Group::Vms => "VM instances",
        }
    }

    pub fn needs(self) -> &'static [Need] {
        const CORE: &[Need] = &[
            need("runc", "runc"),
            need("nft", "nftables"),
            need("lxcfs", "lxcfs"),
            need("ip", "iproute2"),
            need("mkfs.ext4", "e2fsprogs"),
            need("losetup", "mount"),
            need("mkfs.xfs", "xfsprogs"),
            need("setpriv", "util-linux"),
            need("ssh-keygen", "openssh-client"),
            need("mmdebstrap", "mmdebstrap"),
        ];
        const VMS: &[Need] = &[
            need("qemu-system-x86_64", "qemu-system-x86"),
            need("qemu-img", "qemu-utils"),
        ];
        match self {
            Group::Core => CORE,
            Group::Vms => VMS,
        }
    }
}

/// Where a group stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum State {
    /// Everything it needs is there.
    Ready,
    /// It was missing packages and this run installed them.
    Installed { packages: Vec<String> },
    /// Its feature is off: why, in one line, and the command that would fix it.
    Unavailable { why: String, fix: String },
}

impl State {
    pub fn is_usable(&self) -> bool {
        !matches!(self, State::Unavailable { .. })
    }
}

/// The package database and installer, as the decisions need them.
pub trait Apt {
    /// Whether `command` is on this host.
    fn has_command(&self, command: &str) -> bool;
    /// The installed version of `package`, if it is installed.
    fn installed(&self, package: &str) -> Option<String>;
    /// The versions of `package` the configured sources offer, each with the release (suite)
    /// that offers it, candidate first.
    fn available(&self, package: &str) -> Vec<Offer>;
    /// Refresh the package lists (once per run at most).
    fn update(&mut self) -> Result<(), String>;
    /// `apt-get install` these arguments (package names, `name=version`, options).
    fn install(&mut self, args: &[String]) -> Result<(), String>;
}

/// One version of a package a source offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    pub version: String,
    /// The releases (suites) that offer it, such as `bookworm-backports`.
    pub releases: Vec<String>,
}

/// What may be done about a group.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Install missing packages (needs root); `false` only reports.
    pub install: bool,
    /// VMs: install Debian's qemu-system-x86 with the qemu-utils of its own release, even if
    /// that replaces an installed qemu-utils of another version.
    pub replace_qemu_utils: bool,
}

fn missing(apt: &dyn Apt, group: Group) -> Vec<Need> {
    group
        .needs()
        .iter()
        .filter(|n| !apt.has_command(n.command))
        .copied()
        .collect()
}

fn packages_of(needs: &[Need]) -> Vec<String> {
    let mut p: Vec<String> = needs.iter().map(|n| n.package.to_string()).collect();
    p.dedup();
    p
}

/// Bring `group` to a usable state if `opts` allow it, and say where it stands.
pub fn ensure(apt: &mut dyn Apt, group: Group, opts: Options) -> State {
    let missing = missing(apt, group);
    if missing.is_empty() {
        return State::Ready;
    }
    let plan = match group {
        Group::Core => Ok(packages_of(&missing)),
        Group::Vms => {
            let mut offers = apt.available("qemu-system-x86");
            if offers.is_empty() && opts.install {
                // No offer may only mean package lists never fetched (a fresh machine):
                // fetch them once. Other answers need no refresh, so a start on a host whose
                // VMs stay off costs two queries, not an `apt-get update`.
                let _ = apt.update();
                offers = apt.available("qemu-system-x86");
            }
            vm_plan(apt, &missing, &offers, opts.replace_qemu_utils)
        }
    };
    let args = match plan {
        Ok(args) => args,
        Err(unavailable) => return unavailable,
    };
    let fix = format!("apt-get install {}", args.join(" "));
    if !opts.install {
        return State::Unavailable {
            why: format!(
                "missing {}",
                missing
                    .iter()
                    .map(|n| n.command)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            fix: format!("gureum install (or: {fix})"),
        };
    }
    if let Err(e) = apt.update() {
        return State::Unavailable {
            why: format!("apt-get update failed: {e}"),
            fix,
        };
    }
    if let Err(e) = apt.install(&args) {
        // Name the package that cannot be installed when one alone is at fault.
        let culprit = if args.len() > 1 && group == Group::Core {
            args.iter()
                .find(|p| apt.install(std::slice::from_ref(p)).is_err())
                .cloned()
        } else {
            None
        };
        let why = match culprit {
            Some(p) => format!("apt-get install {p} failed: {e}"),
            None => format!("apt-get install {} failed: {e}", args.join(" ")),
        };
        return State::Unavailable { why, fix };
    }
    let still = missing_commands(apt, group);
    if !still.is_empty() {
        return State::Unavailable {
            why: format!("still missing after install: {}", still.join(", ")),
            fix,
        };
    }
    State::Installed {
        packages: args.into_iter().filter(|a| !a.starts_with('-')).collect(),
    }
}

fn missing_commands(apt: &dyn Apt, group: Group) -> Vec<&'static str> {
    missing(apt, group).iter().map(|n| n.command).collect()
}

/// The `apt-get install` arguments for QEMU, or why VMs stay off. Debian's qemu-system-x86
/// depends on a qemu-utils-compatible set of the same version: with a qemu-utils of another
/// version installed, only a qemu-system-x86 of that version fits.
fn vm_plan(
    apt: &dyn Apt,
    missing: &[Need],
    offers: &[Offer],
    replace: bool,
) -> Result<Vec<String>, State> {
    let needs_system = missing.iter().any(|n| n.package == "qemu-system-x86");
    let utils = apt.installed("qemu-utils");
    let (Some(utils), true) = (utils, needs_system) else {
        // Nothing of QEMU's is installed (both come from one release), or only qemu-utils
        // is missing next to an installed qemu-system-x86 (apt picks the matching one).
        return Ok(packages_of(missing));
    };
    if let Some(offer) = offers.iter().find(|o| o.version == utils) {
        let mut args = Vec::new();
        if let Some(release) = offer.releases.first() {
            // Its dependencies (qemu-system-common, -data) come from the same release.
            args.extend(["-t".to_string(), release.clone()]);
        }
        args.push(format!("qemu-system-x86={utils}"));
        return Ok(args);
    }
    let Some(candidate) = offers.first() else {
        return Err(State::Unavailable {
            why: "no source offers qemu-system-x86".into(),
            fix: "add a Debian or Ubuntu source that has qemu-system-x86, then gureum install"
                .into(),
        });
    };
    if replace {
        return Ok(vec![
            "--allow-downgrades".into(),
            "qemu-system-x86".into(),
            format!("qemu-utils={}", candidate.version),
        ]);
    }
    Err(State::Unavailable {
        why: format!(
            "qemu-utils {utils} is installed and no source offers a qemu-system-x86 of that \
             version (offered: {}); gureum leaves it alone",
            offers
                .iter()
                .map(|o| o.version.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        fix: format!(
            "gureum install --replace-qemu-utils (installs qemu-system-x86 {v} with qemu-utils \
             {v}), or add the source of qemu-utils {utils} and run gureum install",
            v = candidate.version
        ),
    })
}

/// Parse `apt-cache policy PACKAGE`'s version table into offers, candidate first. Versions
/// only installed (from `/var/lib/dpkg/status`) are not offers.
pub fn parse_policy(text: &str) -> Vec<Offer> {
    let mut candidate = None;
    let mut offers: Vec<Offer> = Vec::new();
    let mut in_table = false;
    for line in text.lines() {
        let trimmed = line.trim();
        if let Some(c) = trimmed.strip_prefix("Candidate:") {
            candidate = Some(c.trim().to_string()).filter(|c| c != "(none)");
            continue;
        }
        if trimmed == "Version table:" {
            in_table = true;
            continue;
        }
        if !in_table || trimmed.is_empty() {
            continue;
        }
        let indent = line.len() - line.trim_start().len();
        let fields: Vec<&str> = trimmed.split_whitespace().collect();
        // A version line: 5 spaces (or " *** "), the version, its priority.
        if indent <= 5 || trimmed.starts_with("***") {
            let fields: Vec<&str> = fields.into_iter().filter(|f| *f != "***").collect();
            if let Some(v) = fields.first() {
                offers.push(Offer {
                    version: v.to_string(),
                    releases: vec![],
                });
            }
        } else if let (Some(last), Some(source)) = (offers.last_mut(), fields.get(1)) {
            // A source line: priority, then the URI and "suite/component arch Packages", or
            // /var/lib/dpkg/status.
            if *source != "/var/lib/dpkg/status" {
                if let Some(suite) = fields.get(2).and_then(|s| s.split('/').next()) {
                    last.releases.push(suite.to_string());
                }
            }
        }
    }
    offers.retain(|o| !o.releases.is_empty());
    if let Some(c) = candidate {
        if let Some(i) = offers.iter().position(|o| o.version == c) {
            let o = offers.remove(i);
            offers.insert(0, o);
        }
    }
    offers
}

/// The real package database: dpkg, apt-cache and apt-get, on Debian and Ubuntu.
pub struct SystemApt {
    updated: Option<Result<(), String>>,
}

impl SystemApt {
    pub fn new() -> SystemApt {
        SystemApt { updated: None }
    }
}

/// The last line apt printed that says what went wrong (`E: …`), else its last line.
fn apt_error(output: &std::process::Output) -> String {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    lines
        .iter()
        .rev()
        .find(|l| l.starts_with("E:"))
        .or(lines.last())
        .map(|l| l.to_string())
        .unwrap_or_else(|| format!("exit status {}", output.status))
}

fn apt_get() -> Command {
    let mut c = Command::new("apt-get");
    c.env("DEBIAN_FRONTEND", "noninteractive")
        // Another apt (unattended upgrades, a second gureum) may hold the lock for a while.
        .args(["-o", "DPkg::Lock::Timeout=300", "-q"]);
    c
}

impl Apt for SystemApt {
    fn has_command(&self, command: &str) -> bool {
        which(command).is_some()
    }

    fn installed(&self, package: &str) -> Option<String> {
        let out = Command::new("dpkg-query")
            .args(["-W", "-f", "${db:Status-Abbrev} ${Version}", package])
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&out.stdout);
        let (status, version) = text.trim().split_once(' ')?;
        (out.status.success() && status.starts_with("ii")).then(|| version.trim().to_string())
    }

    fn available(&self, package: &str) -> Vec<Offer> {
        Command::new("apt-cache")
            .args(["policy", package])
            .env("LC_ALL", "C")
            .output()
            .map(|o| parse_policy(&String::from_utf8_lossy(&o.stdout)))
            .unwrap_or_default()
    }

    fn update(&mut self) -> Result<(), String> {
        if let Some(done) = &self.updated {
            return done.clone();
        }
        let result = match apt_get().arg("update").output() {
            Ok(o) if o.status.success() => Ok(()),
            Ok(o) => Err(apt_error(&o)),
            Err(e) => Err(format!("apt-get: {e}")),
        };
        self.updated = Some(result.clone());
        result
    }

    fn install(&mut self, args: &[String]) -> Result<(), String> {
        println!(
            "installing system packages: apt-get install {}",
            args.join(" ")
        );
        match apt_get().args(["install", "-y"]).args(args).output() {
            Ok(o) if o.status.success() => Ok(()),
            Ok(o) => Err(apt_error(&o)),
            Err(e) => Err(format!("apt-get: {e}")),
        }
    }
}

pub use gureum_image::{is_root, which};

/// Every group's state after one install run, as `gureum up` and `gureum install` leave it
/// for `gureum doctor`, host-wide like the packages: `<cache dir>/packages.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub at: String,
    pub groups: Vec<(Group, State)>,
    /// What the VM group's decision was made from (see [`vm_inputs`]).
    #[serde(default)]
    pub vm_inputs: Option<String>,
}

/// What decides whether VMs can be installed: QEMU's commands, the installed qemu-utils and
/// the package lists' age. While they are unchanged, a start reuses the last decision
/// instead of asking `apt-cache` again (two seconds on hosts that keep no package cache).
fn vm_inputs(apt: &dyn Apt) -> String {
    let lists = std::fs::metadata("/var/lib/apt/lists")
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    let commands: Vec<bool> = Group::Vms
        .needs()
        .iter()
        .map(|n| apt.has_command(n.command))
        .collect();
    format!(
        "{commands:?} qemu-utils={:?} lists={lists}",
        apt.installed("qemu-utils")
    )
}

impl Report {
    pub fn state(&self, group: Group) -> Option<&State> {
        self.groups
            .iter()
            .find(|(g, _)| *g == group)
            .map(|(_, s)| s)
    }

    pub fn path(dir: &Path) -> PathBuf {
        dir.join("packages.json")
    }

    pub fn load(dir: &Path) -> Option<Report> {
        serde_json::from_slice(&std::fs::read(Report::path(dir)).ok()?).ok()
    }

    fn save(&self, dir: &Path) {
        if std::fs::create_dir_all(dir).is_ok() {
            let _ = std::fs::write(
                Report::path(dir),
                serde_json::to_vec_pretty(self).unwrap_or_default(),
            );
        }
    }
}

/// Install every group that is missing something, each on its own, printing one line per
/// group, and keep the result for `gureum doctor`. Without root nothing is installed.
pub fn install_all(cache_dir: Option<&Path>, replace_qemu_utils: bool) -> Report {
    let root = is_root();
    let mut apt = SystemApt::new();
    let mut groups = Vec::new();
    let last = cache_dir.and_then(Report::load);
    let mut inputs = None;
    for group in Group::ALL {
        if group == Group::Vms && !replace_qemu_utils {
            let now = vm_inputs(&apt);
            let known = last.as_ref().filter(|r| r.vm_inputs.as_ref() == Some(&now));
            inputs = Some(now);
            if let Some(state @ State::Unavailable { .. }) = known.and_then(|r| r.state(group)) {
                say(group, state);
                groups.push((group, state.clone()));
                continue;
            }
        }
        let state = if !root && !missing(&apt, group).is_empty() {
            State::Unavailable {
                why: format!(
                    "not running as root, so missing packages cannot be installed: {}",
                    packages_of(&missing(&apt, group)).join(" ")
                ),
                fix: "run gureum as root (sudo gureum up)".into(),
            }
        } else {
            ensure(
                &mut apt,
                group,
                Options {
                    install: true,
                    replace_qemu_utils,
                },
            )
        };
        say(group, &state);
        groups.push((group, state));
    }
    let report = Report {
        at: time::OffsetDateTime::now_utc().to_string(),
        groups,
        vm_inputs: inputs,
    };
    if let Some(d) = cache_dir {
        report.save(d);
    }
    report
}

/// One line for the operator about a group that is not simply ready.
fn say(group: Group, state: &State) {
    match state {
        State::Ready => {}
        State::Installed { packages } => {
            println!("{}: installed {}", group.name(), packages.join(" "))
        }
        State::Unavailable { why, fix } => println!(
            "{}: {} are off: {why} (fix: {fix})",
            group.name(),
            group.feature()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{HashMap, HashSet};

    /// A package database: what is installed, what sources offer, what installs would do.
    #[derive(Default)]
    struct FakeApt {
        commands: HashSet<String>,
        installed: HashMap<String, String>,
        offers: HashMap<String, Vec<Offer>>,
        /// Packages whose install fails, with apt's message.
        broken: HashMap<String, String>,
        /// The commands each package brings.
        provides: HashMap<String, Vec<String>>,
        calls: Vec<Vec<String>>,
        updates: usize,
    }

    impl Apt for FakeApt {
        fn has_command(&self, command: &str) -> bool {
            self.commands.contains(command)
        }
        fn installed(&self, package: &str) -> Option<String> {
            self.installed.get(package).cloned()
        }
        fn available(&self, package: &str) -> Vec<Offer> {
            self.offers.get(package).cloned().unwrap_or_default()
        }
        fn update(&mut self) -> Result<(), String> {
            self.updates += 1;
            Ok(())
        }
        fn install(&mut self, args: &[String]) -> Result<(), String> {
            self.calls.push(args.to_vec());
            let names: Vec<&str> = args
                .iter()
                .filter(|a| !a.starts_with('-') && !a.starts_with("bookworm"))
                .map(|a| a.split('=').next().unwrap())
                .collect();
            for n in &names {
                if let Some(e) = self.broken.get(*n) {
                    return Err(e.clone());
                }
            }
            for n in names {
                for c in self.provides.get(n).cloned().unwrap_or_default() {
                    self.commands.insert(c);
                }
            }
            Ok(())
        }
    }

    fn fresh() -> FakeApt {
        let mut apt = FakeApt::default();
        for g in Group::ALL {
            for n in g.needs() {
                apt.provides
                    .entry(n.package.into())
                    .or_default()
                    .push(n.command.into());
            }
        }
        apt
    }

    fn offer(v: &str, release: &str) -> Offer {
        Offer {
            version: v.into(),
            releases: vec![release.into()],
        }
    }

    /// The machine that broke the old installer: qemu-utils 10 from backports, no backports
    /// source (Debian's qemu-system-x86 is 7.2), nothing else of gureum's installed.
    fn backports_qemu_utils() -> FakeApt {
        let mut apt = fresh();
        apt.commands.insert("qemu-img".into());
        apt.installed
            .insert("qemu-utils".into(), "1:10.0.2+ds-2+deb13u1~bpo12+1".into());
        apt.offers.insert(
            "qemu-system-x86".into(),
            vec![offer("1:7.2+dfsg-7+deb12u18+b3", "bookworm")],
        );
        apt
    }

    const INSTALL: Options = Options {
        install: true,
        replace_qemu_utils: false,
    };

    /// On the machine that broke the old installer the core installs; VMs stay off and say
    /// how to fix it.
    #[test]
    fn a_conflicting_qemu_utils_turns_off_only_vms() {
        let mut apt = backports_qemu_utils();
        apt.broken.insert(
            "qemu-system-x86".into(),
            "E: Unable to correct problems, you have held broken packages.".into(),
        );
        let core = ensure(&mut apt, Group::Core, INSTALL);
        assert!(matches!(core, State::Installed { .. }), "{core:?}");
        assert!(apt.has_command("runc"));
        let vms = ensure(&mut apt, Group::Vms, INSTALL);
        let State::Unavailable { why, fix } = vms else {
            panic!("{vms:?}")
        };
        assert!(why.contains("qemu-utils 1:10.0.2"), "{why}");
        assert!(fix.contains("--replace-qemu-utils"), "{fix}");
        // apt was never asked for qemu-system-x86 (it would refuse or downgrade).
        assert!(apt
            .calls
            .iter()
            .all(|c| !c.iter().any(|a| a.contains("qemu"))));
    }

    #[test]
    fn the_matching_qemu_system_is_installed_from_its_release() {
        let mut apt = fresh();
        apt.commands.insert("qemu-img".into());
        let v = "1:10.0.2+ds-2+deb13u1~bpo12+1";
        apt.installed.insert("qemu-utils".into(), v.into());
        apt.offers.insert(
            "qemu-system-x86".into(),
            vec![
                offer("1:7.2+dfsg-7+deb12u18+b3", "bookworm"),
                offer(v, "bookworm-backports"),
            ],
        );
        let vms = ensure(&mut apt, Group::Vms, INSTALL);
        assert!(matches!(vms, State::Installed { .. }), "{vms:?}");
        assert_eq!(
            apt.calls.last().unwrap(),
            &vec![
                "-t".to_string(),
                "bookworm-backports".into(),
                format!("qemu-system-x86={v}")
            ]
        );
    }

    #[test]
    fn replacing_qemu_utils_is_only_on_request() {
        let mut apt = backports_qemu_utils();
        let vms = ensure(
            &mut apt,
            Group::Vms,
            Options {
                install: true,
                replace_qemu_utils: true,
            },
        );
        assert!(matches!(vms, State::Installed { .. }), "{vms:?}");
        assert!(apt.calls[0].contains(&"qemu-utils=1:7.2+dfsg-7+deb12u18+b3".to_string()));
    }

    #[test]
    fn a_fresh_machine_gets_both_groups() {
        let mut apt = fresh();
        apt.offers.insert(
            "qemu-system-x86".into(),
            vec![offer("1:7.2+dfsg-7+deb12u18+b3", "bookworm")],
        );
        assert!(ensure(&mut apt, Group::Core, INSTALL).is_usable());
        assert!(ensure(&mut apt, Group::Vms, INSTALL).is_usable());
        // EBS volumes are on the core path: their pool's XFS comes with the core.
        assert!(
            apt.calls[0].contains(&"xfsprogs".to_string()),
            "{:?}",
            apt.calls[0]
        );
        assert!(apt.has_command("mkfs.xfs"));
        assert_eq!(
            apt.calls[1],
            vec!["qemu-system-x86".to_string(), "qemu-utils".into()]
        );
        // Nothing left to do: a second run installs nothing.
        let calls = apt.calls.len();
        assert_eq!(ensure(&mut apt, Group::Core, INSTALL), State::Ready);
        assert_eq!(ensure(&mut apt, Group::Vms, INSTALL), State::Ready);
        assert_eq!(apt.calls.len(), calls);
    }

    /// A host set up before EBS volumes: the core installs only what it lacks, xfsprogs.
    #[test]
    fn a_host_without_mkfs_xfs_gets_xfsprogs_alone() {
        let mut apt = fresh();
        for n in Group::Core
            .needs()
            .iter()
            .filter(|n| n.command != "mkfs.xfs")
        {
            apt.commands.insert(n.command.into());
        }
        let core = ensure(&mut apt, Group::Core, INSTALL);
        assert_eq!(
            core,
            State::Installed {
                packages: vec!["xfsprogs".into()]
            }
        );
        assert_eq!(apt.calls, vec![vec!["xfsprogs".to_string()]]);
        let mut report_only = fresh();
        report_only.commands = apt.commands.clone();
        report_only.commands.remove("mkfs.xfs");
        let State::Unavailable { why, .. } =
            ensure(&mut report_only, Group::Core, Options::default())
        else {
            panic!()
        };
        assert_eq!(why, "missing mkfs.xfs");
    }

    #[test]
    fn a_broken_core_package_is_named() {
        let mut apt = fresh();
        apt.broken.insert(
            "lxcfs".into(),
            "E: Package 'lxcfs' has no installation candidate".into(),
        );
        let State::Unavailable { why, .. } = ensure(&mut apt, Group::Core, INSTALL) else {
            panic!()
        };
        assert!(why.starts_with("apt-get install lxcfs failed"), "{why}");
    }

    #[test]
    fn without_install_it_only_reports() {
        let mut apt = fresh();
        let State::Unavailable { why, fix } = ensure(&mut apt, Group::Core, Options::default())
        else {
            panic!()
        };
        assert!(why.contains("runc"), "{why}");
        assert!(fix.starts_with("gureum install"), "{fix}");
        assert!(apt.calls.is_empty());
    }

    #[test]
    fn policy_tables_are_parsed() {
        let text = "qemu-system-x86:
  Installed: (none)
  Candidate: 1:7.2+dfsg-7+deb12u18+b3
  Version table:
     1:10.0.2+ds-2+deb13u1~bpo12+1 100
        100 http://deb.debian.org/debian bookworm-backports/main amd64 Packages
     1:7.2+dfsg-7+deb12u18+b3 500
        500 http://deb.debian.org/debian bookworm/main amd64 Packages
     1:7.2+dfsg-7+deb12u15 500
        500 http://deb.debian.org/debian-security bookworm-security/main amd64 Packages
";
        let offers = parse_policy(text);
        assert_eq!(offers.len(), 3);
        assert_eq!(offers[0], offer("1:7.2+dfsg-7+deb12u18+b3", "bookworm"));
        assert_eq!(
            offers[1],
            offer("1:10.0.2+ds-2+deb13u1~bpo12+1", "bookworm-backports")
        );
        let installed_only = "qemu-utils:
  Installed: 1:10.0.2+ds-2+deb13u1~bpo12+1
  Candidate: 1:10.0.2+ds-2+deb13u1~bpo12+1
  Version table:
 *** 1:10.0.2+ds-2+deb13u1~bpo12+1 100
        100 /var/lib/dpkg/status
     1:7.2+dfsg-7+deb12u18+b3 500
        500 http://deb.debian.org/debian bookworm/main amd64 Packages
";
        assert_eq!(
            parse_policy(installed_only),
            vec![offer("1:7.2+dfsg-7+deb12u18+b3", "bookworm")]
        );
    }
}
