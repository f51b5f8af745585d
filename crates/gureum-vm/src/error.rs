//! The driver's error type: what failed, on which path or command, and why.

use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum VmError {
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: String,
        source: std::io::Error,
    },
    #[error("{command} failed: {detail}")]
    Command { command: String, detail: String },
    #[error("qmp: {0}")]
    Qmp(String),
    #[error("{0}")]
    Image(String),
    #[error("no instance {0} on this host")]
    NotFound(String),
    #[error("invalid {what}: {why}")]
    Invalid { what: &'static str, why: String },
    /// The guest still uses it (a volume's file system mounted).
    #[error("{0} is busy")]
    Busy(String),
    #[error("timed out: {0}")]
    Timeout(String),
}

impl VmError {
    pub(crate) fn io(what: &'static str, path: &Path, source: std::io::Error) -> VmError {
        VmError::Io {
            what,
            path: path.display().to_string(),
            source,
        }
    }
}

pub type VmResult<T> = Result<T, VmError>;

/// Runs a command to completion; its stderr (or stdout) becomes the error's detail.
pub(crate) async fn run(cmd: &mut tokio::process::Command, what: &str) -> VmResult<String> {
    let out = cmd
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .map_err(|e| VmError::Command {
            command: what.to_string(),
            detail: e.to_string(),
        })?;
    if !out.status.success() {
        let mut detail = String::from_utf8_lossy(&out.stderr).trim().to_string();
        if detail.is_empty() {
            detail = String::from_utf8_lossy(&out.stdout).trim().to_string();
        }
        if detail.is_empty() {
            detail = out.status.to_string();
        }
        return Err(VmError::Command {
            command: what.to_string(),
            detail,
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
