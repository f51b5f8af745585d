//! The `runc` command line, with the driver's own `--root` so that its containers are apart
//! from any other runc user on the host. runc keeps each container's state there; together
//! with the driver's state directory that is all a new driver process needs to rediscover
//! running instances.

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

use serde::Deserialize;
use tokio::process::Command;

use crate::cmd::{self, args};
use crate::error::RuntimeError;

/// One container as `runc state` / `runc list` report it.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct RuncContainer {
    pub id: String,
    pub pid: i32,
    /// "created", "running", "paused" or "stopped".
    pub status: String,
}

/// The part of runc's `<root>/<id>/state.json` that says whether the container runs.
#[derive(Deserialize)]
struct StateFile {
    init_process_pid: i32,
    init_process_start: u64,
}

/// A container's status the way `runc state` works it out, without running runc (a Go program
/// that costs ~20 ms of CPU, which the agent's sweeps would pay for every instance every few
/// seconds): its init process is alive if a process with its pid and start time exists, and
/// still `created` (not yet `running`) while runc's exec FIFO is there. Freezing (`paused`) is
/// never used by gureum. `None` when the state file cannot be read: ask runc then.
pub(crate) fn read_state(root: &Path, id: &str) -> Option<RuncContainer> {
    let dir = root.join(id);
    let state: StateFile =
        serde_json::from_slice(&std::fs::read(dir.join("state.json")).ok()?).ok()?;
    // A zombie (killed, not yet reaped) is stopped, as runc reports it.
    let alive = state.init_process_pid > 0
        && crate::process_state(state.init_process_pid)
            .is_some_and(|(s, start)| start == state.init_process_start && s != 'Z' && s != 'X');
    let status = if !alive {
        "stopped"
    } else if dir.join("exec.fifo").exists() {
        "created"
    } else {
        "running"
    };
    Some(RuncContainer {
        id: id.to_string(),
        pid: state.init_process_pid,
        status: status.to_string(),
    })
}

#[derive(Debug, Clone)]
pub(crate) struct Runc {
    pub bin: PathBuf,
    pub root: PathBuf,
}

/// runc's message for an unknown container (1.0 and later).
fn does_not_exist(stderr: &[u8]) -> bool {
    String::from_utf8_lossy(stderr).contains("does not exist")
}

impl Runc {
    fn program(&self) -> String {
        self.bin.to_string_lossy().into_owned()
    }

    /// `runc --version` (checks that runc runs at all).
    pub fn version(bin: &Path) -> Result<String, RuntimeError> {
        let out = std::process::Command::new(bin)
            .arg("--version")
            .output()
            .map_err(|source| RuntimeError::MissingTool {
                program: bin.display().to_string(),
                source,
            })?;
        if !out.status.success() {
            return Err(RuntimeError::Command {
                command: format!("{} --version", bin.display()),
                status: out.status.to_string(),
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()
            .unwrap_or("")
            .to_string())
    }

    /// The container's state, or None when runc does not know it.
    pub async fn state(&self, id: &str) -> Result<Option<RuncContainer>, RuntimeError> {
        // runc keeps a container's state in `<root>/<id>/`: without it there is no container,
        // and no need to run runc (a Go program: ~20 ms of CPU) to be told so.
        if !self.root.join(id).exists() {
            return Ok(None);
        }
        if let Some(c) = read_state(&self.root, id) {
            return Ok(Some(c));
        }
        let a = args!["--root", self.root, "state", id];
        let out = cmd::output(&self.program(), a).await?;
        if out.status.success() {
            return Ok(Some(serde_json::from_slice(&out.stdout)?));
        }
        if does_not_exist(&out.stderr) {
            return Ok(None);
        }
        Err(cmd::failure(&self.program(), a, &out))
    }

    /// Every container under our root.
    pub async fn list(&self) -> Result<Vec<RuncContainer>, RuntimeError> {
        if !self.root.exists() {
            return Ok(Vec::new());
        }
        let out = cmd::run(
            &self.program(),
            args!["--root", self.root, "list", "--format", "json"],
        )
        .await?;
        // runc prints `null` when there are none.
        let list: Option<Vec<RuncContainer>> = serde_json::from_slice(&out.stdout)?;
        Ok(list.unwrap_or_default())
    }

    /// `runc run -d`: creates and starts the container detached from us. Its PID 1 gets
    /// `stdio` (the console log) directly, not a pipe to this process, so the guest keeps
    /// running, and logging, after gureum exits. runc's own error messages land in the same
    /// file (runc hands the container its stdio) and in `log`, from which errors are reported.
    pub async fn run_detached(
        &self,
        bundle: &Path,
        id: &str,
        stdio: &std::fs::File,
        log: &Path,
    ) -> Result<(), RuntimeError> {
        let out_file = stdio
            .try_clone()
            .map_err(|e| RuntimeError::io("dup", bundle, e))?;
        let err_file = stdio
            .try_clone()
            .map_err(|e| RuntimeError::io("dup", bundle, e))?;
        let a = args![
            "--root",
            self.root,
            "--log",
            log,
            "--log-format",
            "json",
            "run",
            "--detach",
            "--bundle",
            bundle,
            id
        ];
        let status = Command::new(&self.bin)
            .args(a)
            .stdin(Stdio::null())
            .stdout(Stdio::from(out_file))
            .stderr(Stdio::from(err_file))
            .status()
            .await
            .map_err(|source| RuntimeError::MissingTool {
                program: self.program(),
                source,
            })?;
        if status.success() {
            return Ok(());
        }
        Err(RuntimeError::Command {
            command: format!("runc run --detach {id}"),
            status: status.to_string(),
            stderr: last_error(log),
        })
    }

    /// Sends a signal to the container's PID 1 (SIGKILL to PID 1 of a PID namespace ends every
    /// process in it).
    pub async fn kill(&self, id: &str, signal: &str) -> Result<(), RuntimeError> {
        let a = args!["--root", self.root, "kill", id, signal];
        let out = cmd::output(&self.program(), a).await?;
        if out.status.success() || does_not_exist(&out.stderr) {
            return Ok(());
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        // Killing a container that just stopped is not an error.
        if stderr.contains("not running") || stderr.contains("process already finished") {
            return Ok(());
        }
        Err(cmd::failure(&self.program(), a, &out))
    }

    /// Thaws a paused container.
    pub async fn resume(&self, id: &str) -> Result<(), RuntimeError> {
        let a = args!["--root", self.root, "resume", id];
        let out = cmd::output(&self.program(), a).await?;
        if out.status.success() || does_not_exist(&out.stderr) {
            return Ok(());
        }
        Err(cmd::failure(&self.program(), a, &out))
    }

    /// Deletes the container's runc state and cgroups (`force`: kills it first).
    pub async fn delete(&self, id: &str, force: bool) -> Result<(), RuntimeError> {
        let mut a: Vec<&std::ffi::OsStr> = args!["--root", self.root, "delete"].to_vec();
        if force {
            a.push("--force".as_ref());
        }
        a.push(id.as_ref());
        let out = cmd::output(&self.program(), &a).await?;
        if out.status.success() || does_not_exist(&out.stderr) {
            return Ok(());
        }
        Err(cmd::failure(&self.program(), &a, &out))
    }

    /// `runc update`: new cgroup limits for a running container (`flags` are runc's, such as
    /// `--memory`).
    pub async fn update(&self, id: &str, flags: &[String]) -> Result<(), RuntimeError> {
        let mut a: Vec<&std::ffi::OsStr> = args!["--root", self.root, "update"].to_vec();
        a.extend(flags.iter().map(|f| std::ffi::OsStr::new(f.as_str())));
        a.push(id.as_ref());
        let out = cmd::output(&self.program(), &a).await?;
        if out.status.success() {
            return Ok(());
        }
        Err(cmd::failure(&self.program(), &a, &out))
    }

    /// `runc exec` of a command in the running container.
    pub async fn exec(&self, id: &str, argv: &[&str]) -> Result<Output, RuntimeError> {
        Command::new(&self.bin)
            .arg("--root")
            .arg(&self.root)
            .args(["exec", id])
            .args(argv)
            .stdin(Stdio::null())
            .output()
            .await
            .map_err(|source| RuntimeError::MissingTool {
                program: self.program(),
                source,
            })
    }
}

/// The last error runc logged (its `--log` file is JSON lines with a `msg`).
fn last_error(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    for line in text.lines().rev() {
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(line) {
            if v["level"] == "error" || v["level"] == "fatal" {
                if let Some(m) = v["msg"].as_str() {
                    return m.to_string();
                }
            }
        } else if !line.trim().is_empty() {
            return line.trim().to_string();
        }
    }
    "runc reported no error message".to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_state_and_list() {
        let s: RuncContainer = serde_json::from_str(
            r#"{"ociVersion":"1.0.2-dev","id":"i-1","pid":42,"status":"running","bundle":"/x","rootfs":"/x/rootfs","created":"2026-01-01T00:00:00Z","owner":""}"#,
        )
        .unwrap();
        assert_eq!(
            (s.id.as_str(), s.pid, s.status.as_str()),
            ("i-1", 42, "running")
        );
        let none: Option<Vec<RuncContainer>> = serde_json::from_str("null").unwrap();
        assert!(none.is_none());
    }

    #[test]
    fn recognises_missing_containers() {
        assert!(does_not_exist(b"container does not exist"));
        assert!(!does_not_exist(b"permission denied"));
    }

    #[test]
    fn reads_the_last_logged_error() {
        let p = std::env::temp_dir().join(format!("gureum-runc-log-{}", std::process::id()));
        std::fs::write(
            &p,
            "{\"level\":\"info\",\"msg\":\"a\"}\n{\"level\":\"error\",\"msg\":\"runc run failed: boom\"}\n",
        )
        .unwrap();
        assert_eq!(last_error(&p), "runc run failed: boom");
        std::fs::remove_file(&p).unwrap();
    }

    #[test]
    fn reads_the_state_runc_would_report() {
        let root = std::env::temp_dir().join(format!("gureum-runc-state-{}", std::process::id()));
        let dir = root.join("i-1");
        std::fs::create_dir_all(&dir).unwrap();
        let me = std::process::id() as i32;
        let start = crate::process_start_time(me).unwrap();
        let write = |pid: i32, start: u64| {
            let json = format!(
                r#"{{"id":"i-1","init_process_pid":{pid},"init_process_start":{start},"config":{{}}}}"#
            );
            std::fs::write(dir.join("state.json"), json).unwrap();
        };
        write(me, start);
        assert_eq!(read_state(&root, "i-1").unwrap().status, "running");
        std::fs::write(dir.join("exec.fifo"), "").unwrap();
        assert_eq!(read_state(&root, "i-1").unwrap().status, "created");
        std::fs::remove_file(dir.join("exec.fifo")).unwrap();
        assert_eq!(crate::process_state(me).map(|p| p.1), Some(start));
        // The pid was reused by another process: the container's init is gone.
        write(me, start + 1);
        assert_eq!(read_state(&root, "i-1").unwrap().status, "stopped");
        // Killed but not yet reaped (a zombie): stopped too.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id() as i32;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while crate::process_state(pid).map(|p| p.0) != Some('Z') {
            assert!(std::time::Instant::now() < deadline, "no zombie");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        write(pid, crate::process_start_time(pid).unwrap());
        assert_eq!(read_state(&root, "i-1").unwrap().status, "stopped");
        child.wait().unwrap();
        std::fs::write(dir.join("state.json"), "not json").unwrap();
        assert!(read_state(&root, "i-1").is_none(), "runc is asked then");
        assert!(read_state(&root, "i-2").is_none());
        std::fs::remove_dir_all(&root).unwrap();
    }
}
