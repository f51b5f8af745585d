//! The driver's one error type. A failed operation that then fails to clean up keeps both
//! errors (`WithCleanup`), as youki does, so neither the cause nor the leak is lost.

use std::path::PathBuf;

/// Every way a runtime operation can fail.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The driver needs a program that is not installed (or not executable).
    #[error("{program} is not available: {source}")]
    MissingTool {
        program: String,
        #[source]
        source: std::io::Error,
    },
    /// The driver runs containers as real root; it was started as another user.
    #[error("the runc driver must run as root (euid {0})")]
    NotRoot(u32),
    /// An external command ran and failed.
    #[error("`{command}` failed ({status}): {stderr}")]
    Command {
        command: String,
        status: String,
        stderr: String,
    },
    /// A file system operation on the host failed.
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The container spec is unusable (bad id, bad inject path, zero limits, ...).
    #[error("invalid container spec: {0}")]
    InvalidSpec(String),
    /// The instance has no container, volume or state on this host.
    #[error("instance {0} does not exist")]
    NotFound(String),
    /// Something did not happen within its deadline.
    #[error("timed out: {0}")]
    Timeout(String),
    /// The OCI config could not be built.
    #[error("building the oci config: {0}")]
    OciSpec(#[from] oci_spec::OciSpecError),
    /// JSON from or for runc was malformed.
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
    /// lxcfs could not be found, started or reached.
    #[error("lxcfs: {0}")]
    Lxcfs(String),
    /// The host's cgroup set-up is not one the driver can use.
    #[error("cgroups: {0}")]
    Cgroup(String),
    /// The guest still uses it (a volume mounted inside): not done.
    #[error("{0} is busy")]
    Busy(String),
    /// This host cannot do it at all (e.g. widen a cgroup v2 device program from outside).
    #[error("{0}")]
    Unsupported(String),
    /// An operation failed, and undoing its partial work failed too.
    #[error("{source}; cleaning up after it also failed: {cleanup}")]
    WithCleanup {
        #[source]
        source: Box<RuntimeError>,
        cleanup: Box<RuntimeError>,
    },
    /// Several independent steps failed (destroy keeps going after a failure so that it
    /// removes as much as it can, then reports every failure).
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Multiple(Vec<RuntimeError>),
}

impl RuntimeError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        RuntimeError::Io {
            op,
            path: path.into(),
            source,
        }
    }

    /// Combines an operation's error with the error of the clean-up that followed it.
    pub(crate) fn with_cleanup(self, cleanup: Result<(), RuntimeError>) -> Self {
        match cleanup {
            Ok(()) => self,
            Err(cleanup) => RuntimeError::WithCleanup {
                source: Box::new(self),
                cleanup: Box::new(cleanup),
            },
        }
    }

    /// Folds a list of step errors into one result.
    pub(crate) fn collect(mut errors: Vec<RuntimeError>) -> Result<(), RuntimeError> {
        match errors.len() {
            0 => Ok(()),
            1 => Err(errors.remove(0)),
            _ => Err(RuntimeError::Multiple(errors)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleanup_keeps_both_errors() {
        let e = RuntimeError::Timeout("boot".into())
            .with_cleanup(Err(RuntimeError::InvalidSpec("x".into())));
        let text = e.to_string();
        assert!(text.contains("timed out: boot"), "{text}");
        assert!(text.contains("invalid container spec: x"), "{text}");
        let e = RuntimeError::Timeout("boot".into()).with_cleanup(Ok(()));
        assert!(matches!(e, RuntimeError::Timeout(_)));
    }

    #[test]
    fn collect_errors() {
        assert!(RuntimeError::collect(vec![]).is_ok());
        let one = RuntimeError::collect(vec![RuntimeError::NotFound("i-1".into())]);
        assert!(matches!(one, Err(RuntimeError::NotFound(_))));
        let two = RuntimeError::collect(vec![
            RuntimeError::NotFound("i-1".into()),
            RuntimeError::NotFound("i-2".into()),
        ])
        .unwrap_err();
        assert_eq!(
            two.to_string(),
            "instance i-1 does not exist; instance i-2 does not exist"
        );
    }
}
