//! Running host tools (`runc`, `mount`, `umount`, `losetup`, `mkfs.ext4`, `cp`): one place that
//! turns a non-zero exit into a `RuntimeError::Command` carrying the command line and stderr.
//! The workspace forbids `unsafe`, so privileged operations go through these tools.

use std::ffi::OsStr;
use std::process::{Output, Stdio};

use tokio::process::Command;

use crate::error::RuntimeError;

/// Renders a command line for error messages.
fn render(program: &str, args: &[&OsStr]) -> String {
    let mut s = program.to_string();
    for a in args {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Runs `program args…` with no stdin and captured output; any exit status is returned.
pub(crate) async fn output(program: &str, args: &[&OsStr]) -> Result<Output, RuntimeError> {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|source| RuntimeError::MissingTool {
            program: program.to_string(),
            source,
        })
}

/// Runs `program args…` and fails unless it exits with 0.
pub(crate) async fn run(program: &str, args: &[&OsStr]) -> Result<Output, RuntimeError> {
    let out = output(program, args).await?;
    if out.status.success() {
        Ok(out)
    } else {
        Err(failure(program, args, &out))
    }
}

/// The error for a command that exited non-zero.
pub(crate) fn failure(program: &str, args: &[&OsStr], out: &Output) -> RuntimeError {
    RuntimeError::Command {
        command: render(program, args),
        status: out.status.to_string(),
        stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
    }
}

/// Shorthand for building `&[&OsStr]` argument lists from mixed strings and paths.
macro_rules! args {
    ($($a:expr),* $(,)?) => { &[$(::std::convert::AsRef::<::std::ffi::OsStr>::as_ref(&$a)),*] };
}
pub(crate) use args;
