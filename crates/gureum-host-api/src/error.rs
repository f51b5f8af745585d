//! [`HostError`]: how a host step fails, in the kinds a caller can tell apart.
//!
//! The core logs a host failure and records its text as an instance's `StateReason` (after
//! `Server.InternalError: `), so every variant's text names what failed; the drivers map their
//! own richer errors onto these (`From` impls in each driver crate).

use std::io;

/// A failed host step.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// The instance has nothing on this host, for a step that needs it to exist.
    #[error("instance {0} does not exist")]
    NotFound(String),
    /// This host cannot do it at all: the driver it needs is not there, or cannot run here
    /// (no QEMU for a VM, not root).
    #[error("{0}")]
    Unavailable(String),
    /// The driver does not do this for this kind of guest.
    #[error("{0}")]
    Unsupported(String),
    /// What the core handed the driver is unusable (an id, address, path or limit).
    #[error("invalid {what}: {why}")]
    Invalid { what: String, why: String },
    /// A host program the driver needs could not be run.
    #[error("{program} is not available: {source}")]
    MissingTool {
        program: String,
        #[source]
        source: io::Error,
    },
    /// A host program ran and failed: its command line, exit status (when it has one to
    /// report) and what it said.
    #[error("`{command}` failed{}: {stderr}", status_text(.status))]
    Command {
        command: String,
        status: Option<String>,
        stderr: String,
    },
    /// A file-system operation or system call failed; `op` says which, on what.
    #[error("{op}: {source}")]
    Io {
        op: String,
        #[source]
        source: io::Error,
    },
    /// The guest still uses it (a volume mounted in the guest): not done, try again later or
    /// force it.
    #[error("{0} is busy")]
    Busy(String),
    /// Something did not happen within its deadline.
    #[error("timed out: {0}")]
    Timeout(String),
    /// A step failed and undoing its partial work failed too; both are kept so neither the
    /// cause nor the leak is lost.
    #[error("{error}; cleaning up after it also failed: {cleanup}")]
    Cleanup {
        error: Box<HostError>,
        cleanup: Box<HostError>,
    },
    /// Independent steps that each failed (a destroy removes what it can, then reports every
    /// failure).
    #[error("{}", join(.0))]
    Multiple(Vec<HostError>),
    /// Any other driver failure, in the driver's words (an answer it did not expect, a host
    /// set-up it cannot use, a name taken by someone else, ...).
    #[error("{0}")]
    Driver(String),
}

pub type HostResult<T> = Result<T, HostError>;

fn status_text(status: &Option<String>) -> String {
    status
        .as_ref()
        .map(|s| format!(" ({s})"))
        .unwrap_or_default()
}

fn join(errors: &[HostError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

impl HostError {
    /// A failed file operation `op` (such as `creating /var/lib/x`).
    pub fn io(op: impl Into<String>, source: io::Error) -> HostError {
        HostError::Io {
            op: op.into(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_name_what_failed() {
        let cmd = HostError::Command {
            command: "runc start i-1".into(),
            status: Some("exit status: 1".into()),
            stderr: "no such container".into(),
        };
        assert_eq!(
            cmd.to_string(),
            "`runc start i-1` failed (exit status: 1): no such container"
        );
        let qemu = HostError::Command {
            command: "qemu".into(),
            status: None,
            stderr: "could not open disk".into(),
        };
        assert_eq!(qemu.to_string(), "`qemu` failed: could not open disk");
        let io = HostError::io("creating /x", io::Error::from(io::ErrorKind::NotFound));
        assert!(io.to_string().starts_with("creating /x: "), "{io}");
        let both = HostError::Cleanup {
            error: Box::new(HostError::Timeout("boot".into())),
            cleanup: Box::new(HostError::NotFound("i-1".into())),
        };
        assert_eq!(
            both.to_string(),
            "timed out: boot; cleaning up after it also failed: instance i-1 does not exist"
        );
        let many = HostError::Multiple(vec![
            HostError::NotFound("i-1".into()),
            HostError::Driver("qmp: closed".into()),
        ]);
        assert_eq!(many.to_string(), "instance i-1 does not exist; qmp: closed");
    }
}
