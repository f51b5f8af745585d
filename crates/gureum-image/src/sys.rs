//! Host plumbing shared by builds and imports: running commands with useful errors, the
//! namespace "sandbox" that makes mounts and child processes die with us, installing missing
//! tools with apt-get, process liveness for stale-directory cleanup, and safe tree removal.

use crate::{ImageError, IoContext};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

/// Whether this process runs with effective uid 0 (read from /proc: no libc, no unsafe).
pub fn is_root() -> bool {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return false;
    };
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|rest| rest.split_whitespace().nth(1))
        .is_some_and(|euid| euid == "0")
}

/// Finds `name` on PATH (plus the sbin directories, which a non-login root shell may lack).
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/local/sbin", "/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// A command that runs inside a private mount and PID namespace which dies with the calling
/// thread: `setpriv --pdeathsig KILL` makes `unshare` die with us, `--kill-child` kills the
/// namespace's first process with `unshare`, and the kernel then kills the rest of the PID
/// namespace and drops its mounts (and so the loop devices behind them). This is what makes a
/// `kill -9` of the caller leave no mount, loop device or half-finished mmdebstrap behind.
pub(crate) fn sandboxed<S: AsRef<OsStr>>(program: S) -> Command {
    let mut cmd = Command::new("setpriv");
    cmd.args(["--pdeathsig", "KILL", "unshare"])
        .args(["--mount", "--propagation", "private", "--pid", "--fork"])
        .args(["--kill-child", "--"])
        .arg(program);
    cmd
}

/// Runs a command to completion, capturing its output; a non-zero exit becomes
/// [`ImageError::Command`] carrying the end of what it printed.
pub(crate) fn run(cmd: &mut Command, what: &str) -> Result<Output, ImageError> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .ctx(|| format!("cannot run {what}"))?;
    if out.status.success() {
        Ok(out)
    } else {
        let mut text = String::from_utf8_lossy(&out.stderr).into_owned();
        if text.trim().is_empty() {
            text = String::from_utf8_lossy(&out.stdout).into_owned();
        }
        Err(ImageError::Command {
            what: what.to_string(),
            status: out.status.to_string(),
            detail: tail(&text, 12),
        })
    }
}

/// The last `n` non-empty lines of `text`, joined with " | " so an error stays one line.
pub(crate) fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.trim().is_empty())
        .collect();
    let start = lines.len().saturating_sub(n);
    let joined = lines[start..].join(" | ");
    if joined.is_empty() {
        "no output".to_string()
    } else {
        joined
    }
}

/// Makes sure `tool` is installed, installing `package` with apt-get when it is not (retrying
/// after `apt-get update`, because a fresh machine's package lists may be stale or absent).
pub(crate) fn ensure_tool(tool: &str, package: &str) -> Result<PathBuf, ImageError> {
    if let Some(p) = which(tool) {
        return Ok(p);
    }
    ensure_package(package).map_err(|detail| ImageError::ToolMissing {
        tool: tool.to_string(),
        package: package.to_string(),
        detail,
    })?;
    which(tool).ok_or_else(|| ImageError::ToolMissing {
        tool: tool.to_string(),
        package: package.to_string(),
        detail: format!("{package} installed but {tool} is still not on PATH"),
    })
}

/// Installs a host package with apt-get (used for tools and keyrings).
pub(crate) fn ensure_package(package: &str) -> Result<(), String> {
    if which("apt-get").is_none() {
        return Err("apt-get is not available on this host".to_string());
    }
    let install = || {
        let mut cmd = Command::new("apt-get");
        cmd.args(["install", "-y", "--no-install-recommends", package])
            .env("DEBIAN_FRONTEND", "noninteractive");
        run(&mut cmd, &format!("apt-get install {package}"))
    };
    if install().is_ok() {
        return Ok(());
    }
    let mut update = Command::new("apt-get");
    update
        .arg("update")
        .env("DEBIAN_FRONTEND", "noninteractive");
    run(&mut update, "apt-get update").map_err(|e| e.to_string())?;
    install().map(|_| ()).map_err(|e| e.to_string())
}

/// The start time of a process (field 22 of /proc/<pid>/stat, in clock ticks since boot).
/// Together with the pid it names a process uniquely, so a recycled pid is not mistaken for
/// the builder that left a temporary directory behind.
pub(crate) fn process_start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces and parentheses; fields resume after
    // the last ')'. Field 3 is then the first one, so field 22 is the 20th.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// A tag unique to this process for naming temporary directories: `<pid>.<start time>`.
pub(crate) fn owner_tag() -> String {
    let pid = std::process::id();
    format!("{pid}.{}", process_start_time(pid).unwrap_or(0))
}

/// Whether the process that wrote `tag` (see [`owner_tag`]) is still running.
pub(crate) fn owner_alive(tag: &str) -> bool {
    let mut parts = tag.rsplitn(2, '.');
    let (Some(start), Some(pid)) = (parts.next(), parts.next()) else {
        return false;
    };
    let (Ok(pid), Ok(start)) = (pid.parse::<u32>(), start.parse::<u64>()) else {
        return false;
    };
    process_start_time(pid) == Some(start)
}

/// Mount points at or below `dir`, deepest first (from /proc/self/mountinfo; octal escapes
/// such as `\040` for spaces are decoded).
pub(crate) fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    let mut found: Vec<PathBuf> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|m| PathBuf::from(unescape_mountinfo(m)))
        .filter(|m| m.starts_with(dir))
        .collect();
    found.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    found.dedup();
    found
}

fn unescape_mountinfo(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 4 <= bytes.len() {
            let digits = &bytes[i + 1..i + 4];
            let value = digits.iter().try_fold(0u32, |acc, d| {
                (b'0'..=b'7')
                    .contains(d)
                    .then(|| acc * 8 + u32::from(d - b'0'))
            });
            if let Some(v) = value.and_then(|v| u8::try_from(v).ok()) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Removes a directory tree that may have been left by a killed build or import. Anything
/// still mounted below it is unmounted first (builds run in their own mount namespace, so
/// normally nothing is), and `rm --one-file-system` refuses to descend into a mount that could
/// not be removed: a leftover bind mount of /dev or /proc must never be emptied.
pub(crate) fn remove_tree(dir: &Path) -> Result<(), ImageError> {
    if std::fs::symlink_metadata(dir).is_err() {
        return Ok(());
    }
    for m in mounts_under(dir) {
        let _ = Command::new("umount")
            .arg("--lazy")
            .arg(&m)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
    let mut cmd = Command::new("rm");
    cmd.args(["-rf", "--one-file-system", "--"]).arg(dir);
    run(&mut cmd, &format!("removing {}", dir.display()))?;
    Ok(())
}

/// Seconds since the Unix epoch.
pub(crate) fn unix_seconds(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The UTC calendar date of a time as `YYYYMMDD` (Howard Hinnant's days-to-civil algorithm;
/// avoids a date crate for one line of output).
pub(crate) fn yyyymmdd(t: SystemTime) -> String {
    let days = (unix_seconds(t) / 86_400) as i64;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}{month:02}{day:02}")
}

/// The Debian name of the architecture this binary runs on (builds are native only).
pub(crate) fn debian_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "i386",
        "arm" => "armhf",
        "powerpc64" => "ppc64el",
        "riscv64" => "riscv64",
        "s390x" => "s390x",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn dates_are_utc_calendar_days() {
        assert_eq!(yyyymmdd(UNIX_EPOCH), "19700101");
        // 2026-11-26 00:00:00 UTC and one second before it.
        let t = UNIX_EPOCH + Duration::from_secs(1_795_651_200);
        assert_eq!(yyyymmdd(t), "20261126");
        assert_eq!(yyyymmdd(t - Duration::from_secs(1)), "20261125");
        // A leap day.
        assert_eq!(
            yyyymmdd(UNIX_EPOCH + Duration::from_secs(951_782_400)),
            "20000229"
        );
    }

    #[test]
    fn tail_keeps_the_last_lines() {
        assert_eq!(tail("a\n\nb\nc\n", 2), "b | c");
        assert_eq!(tail("  \n", 2), "no output");
    }

    #[test]
    fn this_process_is_alive_and_a_made_up_one_is_not() {
        assert!(owner_alive(&owner_tag()));
        assert!(!owner_alive("999999999.1"));
        assert!(!owner_alive("garbage"));
        let pid = std::process::id();
        assert!(
            !owner_alive(&format!("{pid}.1")),
            "same pid, other start time"
        );
    }

    #[test]
    fn mountinfo_escapes_are_decoded() {
        assert_eq!(unescape_mountinfo("/a\\040b"), "/a b");
        assert_eq!(unescape_mountinfo("/plain"), "/plain");
        assert_eq!(unescape_mountinfo("/x\\"), "/x\\");
    }
}
