//! Build progress: an indicatif bar on a terminal, `[image] …` lines otherwise, or nothing;
//! and the parser that turns mmdebstrap's `--verbose` output into progress events.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::time::{Duration, Instant};

/// How a build reports progress on stderr.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ProgressMode {
    /// A bar when stderr is a terminal, plain lines otherwise.
    #[default]
    Auto,
    /// One `[image] <phase> …` line per step (logs, CI, tests).
    Plain,
    /// Nothing.
    Quiet,
}

/// The phases of a build, in order, with the share of the bar each one covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    Resolving,
    Installing,
    Customizing,
    Finishing,
}

impl Phase {
    fn label(self) -> &'static str {
        match self {
            Phase::Resolving => "resolving",
            Phase::Installing => "downloading+installing",
            Phase::Customizing => "customizing",
            Phase::Finishing => "finishing",
        }
    }

    /// The bar range (out of 1000) this phase covers; measured on a debian-12 build, where
    /// installing is about 80% of the time.
    fn range(self) -> (u64, u64) {
        match self {
            Phase::Resolving => (0, 60),
            Phase::Installing => (60, 900),
            Phase::Customizing => (900, 960),
            Phase::Finishing => (960, 1000),
        }
    }
}

/// What one line of mmdebstrap output means for progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Event {
    /// An `I:` milestone: a new step of mmdebstrap began.
    Step(Step, String),
    /// apt announced how many packages it will install (`N newly installed`).
    Total(u32),
    /// apt fetched one package (`Get:N …` while downloading).
    Fetched,
    /// dpkg unpacked or configured one package.
    PackageStep,
    /// An `E:` line.
    Error(String),
    Other,
}

/// mmdebstrap's steps, in the order it runs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Step {
    Setup,
    Update,
    Download,
    Extract,
    Essential,
    Remaining,
    Cleanup,
    Done,
}

/// Classifies one line of `mmdebstrap --verbose` output.
pub(crate) fn parse_line(line: &str) -> Event {
    let line = line.trim_end();
    if let Some(msg) = line.strip_prefix("I: ") {
        let step = if msg.starts_with("running apt-get update") || msg.contains("apt-get update") {
            Step::Update
        } else if msg.starts_with("downloading packages") {
            Step::Download
        } else if msg.starts_with("extracting archives") {
            Step::Extract
        } else if msg.starts_with("installing essential packages") {
            Step::Essential
        } else if msg.starts_with("installing remaining packages") {
            Step::Remaining
        } else if msg.starts_with("cleaning package lists") {
            Step::Cleanup
        } else if msg.starts_with("success in") {
            Step::Done
        } else {
            Step::Setup
        };
        return Event::Step(step, msg.to_string());
    }
    if let Some(msg) = line.strip_prefix("E: ") {
        return Event::Error(msg.to_string());
    }
    if line.starts_with("Get:") {
        return Event::Fetched;
    }
    if line.starts_with("Unpacking ") || line.starts_with("Setting up ") {
        return Event::PackageStep;
    }
    if let Some(idx) = line.find(" newly installed") {
        let before = &line[..idx];
        if let Some(n) = before
            .rsplit(|c: char| !c.is_ascii_digit())
            .next()
            .and_then(|n| n.parse().ok())
        {
            return Event::Total(n);
        }
    }
    Event::Other
}

/// Where mmdebstrap is within the installing phase, as a fraction in 0..=1.
#[derive(Debug, Default)]
pub(crate) struct InstallTracker {
    step: Option<Step>,
    /// Packages fetched in the download step: the essential set, installed next.
    essential: u32,
    remaining: u32,
    done_in_step: u32,
}

impl InstallTracker {
    /// Feeds one event; returns the new fraction if it moved.
    pub(crate) fn feed(&mut self, event: &Event) -> Option<f64> {
        match event {
            Event::Step(step, _) => {
                self.step = Some(*step);
                self.done_in_step = 0;
            }
            Event::Total(n) if self.step == Some(Step::Remaining) => self.remaining = *n,
            Event::Fetched if self.step == Some(Step::Download) => self.essential += 1,
            Event::PackageStep => self.done_in_step += 1,
            _ => return None,
        }
        Some(self.fraction())
    }

    /// Step weights from a measured debian-12 build: update 5%, download 5%, extract 15%,
    /// essential 30%, remaining 40%, clean-up 5%. Within a package step, each package is
    /// unpacked and then set up, so two dpkg lines per package.
    pub(crate) fn fraction(&self) -> f64 {
        let within = |total: u32| {
            if total == 0 {
                0.0
            } else {
                (f64::from(self.done_in_step) / f64::from(total * 2)).min(1.0)
            }
        };
        match self.step {
            None | Some(Step::Setup) => 0.0,
            Some(Step::Update) => 0.02,
            Some(Step::Download) => 0.05 + 0.05 * (f64::from(self.essential) / 100.0).min(1.0),
            Some(Step::Extract) => 0.10,
            Some(Step::Essential) => 0.25 + 0.30 * within(self.essential),
            Some(Step::Remaining) => 0.55 + 0.40 * within(self.remaining),
            Some(Step::Cleanup) => 0.95,
            Some(Step::Done) => 1.0,
        }
    }
}

/// The reporter a build writes to.
pub(crate) struct Progress {
    kind: Kind,
    start: Instant,
    phase: Phase,
    label: String,
}

enum Kind {
    Bar(ProgressBar),
    Plain,
    Quiet,
}

impl Progress {
    pub(crate) fn new(mode: ProgressMode, label: &str) -> Progress {
        let kind = match mode {
            ProgressMode::Quiet => Kind::Quiet,
            ProgressMode::Plain => Kind::Plain,
            ProgressMode::Auto if std::io::stderr().is_terminal() => {
                let bar = ProgressBar::with_draw_target(Some(1000), ProgressDrawTarget::stderr());
                bar.set_style(
                    ProgressStyle::with_template(
                        "{spinner:.cyan} [{elapsed_precise}] {bar:30.cyan/blue} {prefix:.bold} {wide_msg}",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
                );
                bar.set_prefix(label.to_string());
                bar.enable_steady_tick(Duration::from_millis(120));
                Kind::Bar(bar)
            }
            ProgressMode::Auto => Kind::Plain,
        };
        Progress {
            kind,
            start: Instant::now(),
            phase: Phase::Resolving,
            label: label.to_string(),
        }
    }

    /// Enters a phase.
    pub(crate) fn phase(&mut self, phase: Phase, detail: &str) {
        self.phase = phase;
        let (from, _) = phase.range();
        match &self.kind {
            Kind::Bar(bar) => {
                bar.set_position(from);
                bar.set_message(format!("{}: {detail}", phase.label()));
            }
            Kind::Plain => self.line(detail),
            Kind::Quiet => {}
        }
    }

    /// A notable step inside the current phase (printed as a line in plain mode).
    pub(crate) fn step(&self, detail: &str) {
        match &self.kind {
            Kind::Bar(bar) => bar.set_message(format!("{}: {detail}", self.phase.label())),
            Kind::Plain => self.line(detail),
            Kind::Quiet => {}
        }
    }

    /// Moves the bar within the current phase (0..=1); plain mode stays quiet.
    pub(crate) fn fraction(&self, f: f64) {
        if let Kind::Bar(bar) = &self.kind {
            let (from, to) = self.phase.range();
            let pos = from + ((to - from) as f64 * f.clamp(0.0, 1.0)) as u64;
            if pos > bar.position() {
                bar.set_position(pos);
            }
        }
    }

    fn line(&self, detail: &str) {
        eprintln!(
            "[image] {} {}: {detail} ({:.1}s)",
            self.label,
            self.phase.label(),
            self.start.elapsed().as_secs_f64()
        );
    }

    /// Ends the report with a summary (or clears the bar on failure).
    pub(crate) fn finish(&self, summary: Option<&str>) {
        match (&self.kind, summary) {
            (Kind::Bar(bar), Some(s)) => {
                bar.set_position(1000);
                bar.finish_with_message(s.to_string());
            }
            (Kind::Bar(bar), None) => bar.abandon(),
            (Kind::Plain, Some(s)) => eprintln!(
                "[image] {} done: {s} ({:.1}s)",
                self.label,
                self.start.elapsed().as_secs_f64()
            ),
            (Kind::Plain, None) => eprintln!(
                "[image] {} failed after {:.1}s",
                self.label,
                self.start.elapsed().as_secs_f64()
            ),
            (Kind::Quiet, _) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mmdebstrap_lines_are_classified() {
        assert_eq!(
            parse_line("I: running apt-get update..."),
            Event::Step(Step::Update, "running apt-get update...".into())
        );
        assert!(matches!(
            parse_line("I: installing remaining packages inside the chroot..."),
            Event::Step(Step::Remaining, _)
        ));
        assert!(matches!(
            parse_line("I: success in 34.07 seconds"),
            Event::Step(Step::Done, _)
        ));
        assert!(matches!(
            parse_line("I: chroot architecture amd64 is equal to the host's architecture"),
            Event::Step(Step::Setup, _)
        ));
        assert_eq!(
            parse_line("0 upgraded, 117 newly installed, 0 to remove and 0 not upgraded."),
            Event::Total(117)
        );
        assert_eq!(
            parse_line("Get:12 http://deb.debian.org/debian bookworm/main amd64 libc6 [2,4 MB]"),
            Event::Fetched
        );
        assert_eq!(
            parse_line("Setting up sudo (1.9.13p3-1+deb12u1) ..."),
            Event::PackageStep
        );
        assert_eq!(
            parse_line("Unpacking systemd (252.39-1~deb12u2) ..."),
            Event::PackageStep
        );
        assert_eq!(
            parse_line("E: mmdebstrap failed: apt-get update failed"),
            Event::Error("mmdebstrap failed: apt-get update failed".into())
        );
        assert_eq!(parse_line("Reading package lists..."), Event::Other);
    }

    #[test]
    fn the_install_fraction_only_moves_forward_through_a_build() {
        let lines = [
            "I: running apt-get update...",
            "I: downloading packages with apt...",
            "Get:1 http://x a [1 kB]",
            "Get:2 http://x b [1 kB]",
            "I: extracting archives...",
            "I: installing essential packages...",
            "Unpacking a ...",
            "Setting up a ...",
            "Unpacking b ...",
            "Setting up b ...",
            "I: installing remaining packages inside the chroot...",
            "0 upgraded, 2 newly installed, 0 to remove and 0 not upgraded.",
            "Unpacking c ...",
            "Setting up c ...",
            "I: cleaning package lists and apt cache...",
            "I: success in 1 seconds",
        ];
        let mut t = InstallTracker::default();
        let mut last = 0.0;
        for l in lines {
            if let Some(f) = t.feed(&parse_line(l)) {
                assert!(f >= last, "{l}: {f} < {last}");
                last = f;
            }
        }
        assert_eq!(last, 1.0);
    }
}
