//! A minimal QMP client: connect to a QEMU's monitor socket, negotiate capabilities, run one
//! command at a time and return its `return` value, optionally handing QEMU a file descriptor
//! with it (SCM_RIGHTS, for `add-fd`). Events that arrive on the way are kept for
//! [`Qmp::wait_event`].

use std::io::IoSlice;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Interest};
use tokio::net::UnixStream;

use crate::error::{VmError, VmResult};

/// How long one QMP exchange may take before the QEMU is judged unresponsive.
const QMP_TIMEOUT: Duration = Duration::from_secs(5);

pub struct Qmp {
    reader: BufReader<tokio::net::unix::OwnedReadHalf>,
    writer: tokio::net::unix::OwnedWriteHalf,
    /// Events read while waiting for an answer, oldest first.
    events: Vec<Value>,
    /// The line being read: a read cut short by its timeout keeps what it got here.
    line: Vec<u8>,
}

impl Qmp {
    /// Connects and leaves capabilities negotiation mode.
    pub async fn connect(socket: &Path) -> VmResult<Qmp> {
        let stream = tokio::time::timeout(QMP_TIMEOUT, UnixStream::connect(socket))
            .await
            .map_err(|_| VmError::Qmp(format!("connecting to {}: timed out", socket.display())))?
            .map_err(|e| VmError::Qmp(format!("connecting to {}: {e}", socket.display())))?;
        let (r, w) = stream.into_split();
        let mut qmp = Qmp {
            reader: BufReader::new(r),
            writer: w,
            events: Vec::new(),
            line: Vec::new(),
        };
        let greeting = qmp.read_message(QMP_TIMEOUT).await?;
        if greeting.get("QMP").is_none() {
            return Err(VmError::Qmp(format!("unexpected greeting {greeting}")));
        }
        qmp.execute("qmp_capabilities", None).await?;
        Ok(qmp)
    }

    async fn read_message(&mut self, timeout: Duration) -> VmResult<Value> {
        // `read_until` keeps what it read in `self.line` if the timeout cuts it short, so the
        // next read carries on from there.
        tokio::time::timeout(timeout, self.reader.read_until(b'\n', &mut self.line))
            .await
            .map_err(|_| VmError::Qmp("reading: timed out".into()))?
            .map_err(|e| VmError::Qmp(format!("reading: {e}")))?;
        let line = std::mem::take(&mut self.line);
        if !line.ends_with(b"\n") {
            return Err(VmError::Qmp("connection closed".into()));
        }
        serde_json::from_slice(&line).map_err(|e| {
            let text = String::from_utf8_lossy(&line);
            VmError::Qmp(format!("bad message {text:?}: {e}"))
        })
    }

    fn message(command: &str, arguments: Option<Value>) -> String {
        let mut msg = serde_json::json!({ "execute": command });
        if let Some(a) = arguments {
            msg["arguments"] = a;
        }
        msg.to_string() + "\n"
    }

    /// Runs `command` and returns its `return` value.
    pub async fn execute(&mut self, command: &str, arguments: Option<Value>) -> VmResult<Value> {
        let text = Self::message(command, arguments);
        self.writer
            .write_all(text.as_bytes())
            .await
            .map_err(|e| VmError::Qmp(format!("writing {command}: {e}")))?;
        self.answer(command).await
    }

    /// Runs `command` with `fd` passed alongside it (QEMU takes it as the command's file
    /// descriptor, as `add-fd` and `getfd` expect). QEMU gets its own copy; the caller may close
    /// `fd` afterwards.
    pub async fn execute_with_fd(
        &mut self,
        command: &str,
        arguments: Option<Value>,
        fd: BorrowedFd<'_>,
    ) -> VmResult<Value> {
        let text = Self::message(command, arguments);
        let stream: &UnixStream = self.writer.as_ref();
        let fds = [fd.as_raw_fd()];
        let send = stream.async_io(Interest::WRITABLE, || {
            sendmsg::<()>(
                stream.as_raw_fd(),
                &[IoSlice::new(text.as_bytes())],
                &[ControlMessage::ScmRights(&fds)],
                MsgFlags::MSG_NOSIGNAL,
                None,
            )
            .map_err(std::io::Error::from)
        });
        let sent = tokio::time::timeout(QMP_TIMEOUT, send)
            .await
            .map_err(|_| VmError::Qmp(format!("writing {command}: timed out")))?
            .map_err(|e| VmError::Qmp(format!("writing {command}: {e}")))?;
        // The descriptor went with the first byte; the rest (if the socket took only part) is
        // plain text.
        self.writer
            .write_all(&text.as_bytes()[sent..])
            .await
            .map_err(|e| VmError::Qmp(format!("writing {command}: {e}")))?;
        self.answer(command).await
    }

    async fn answer(&mut self, command: &str) -> VmResult<Value> {
        loop {
            let m = self.read_message(QMP_TIMEOUT).await?;
            if let Some(r) = m.get("return") {
                return Ok(r.clone());
            }
            if let Some(e) = m.get("error") {
                let desc = e["desc"].as_str().map(str::to_string);
                return Err(VmError::Qmp(format!(
                    "{command}: {}",
                    desc.unwrap_or_else(|| e.to_string())
                )));
            }
            if m.get("event").is_some() {
                self.events.push(m);
            }
        }
    }

    /// Waits up to `timeout` for an event named `name` whose `data` satisfies `matches` (one
    /// already read counts); returns whether it came.
    pub async fn wait_event(
        &mut self,
        name: &str,
        matches: impl Fn(&Value) -> bool,
        timeout: Duration,
    ) -> VmResult<bool> {
        let is_it = |m: &Value| m["event"] == name && matches(&m["data"]);
        if let Some(i) = self.events.iter().position(is_it) {
            self.events.remove(i);
            return Ok(true);
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(false);
            }
            match self.read_message(left).await {
                Ok(m) if is_it(&m) => return Ok(true),
                Ok(m) if m.get("event").is_some() => self.events.push(m),
                Ok(m) => return Err(VmError::Qmp(format!("unexpected message {m}"))),
                Err(VmError::Qmp(why)) if why == "reading: timed out" => return Ok(false),
                Err(e) => return Err(e),
            }
        }
    }
}
