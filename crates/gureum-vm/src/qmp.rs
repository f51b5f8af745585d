//! A minimal QMP client: connect to a QEMU's monitor socket, negotiate capabilities, run one
//! command at a time and return its `return` value (events on the way are skipped).

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

use crate::error::{VmError, VmResult};

/// How long one QMP exchange may take before the QEMU is judged unresponsive.
const QMP_TIMEOUT: Duration = Duration::from_secs(5);

pub struct Qmp {
    reader: BufReader<tokio::net::unix::OwnedReadHalf>,
    writer: tokio::net::unix::OwnedWriteHalf,
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
        };
        let greeting = qmp.read_message().await?;
        if greeting.get("QMP").is_none() {
            return Err(VmError::Qmp(format!("unexpected greeting {greeting}")));
        }
        qmp.execute("qmp_capabilities", None).await?;
        Ok(qmp)
    }

    async fn read_message(&mut self) -> VmResult<Value> {
        let mut line = String::new();
        let n = tokio::time::timeout(QMP_TIMEOUT, self.reader.read_line(&mut line))
            .await
            .map_err(|_| VmError::Qmp("reading: timed out".into()))?
            .map_err(|e| VmError::Qmp(format!("reading: {e}")))?;
        if n == 0 {
            return Err(VmError::Qmp("connection closed".into()));
        }
        serde_json::from_str(&line).map_err(|e| VmError::Qmp(format!("bad message {line:?}: {e}")))
    }

    /// Runs `command` and returns its `return` value.
    pub async fn execute(&mut self, command: &str, arguments: Option<Value>) -> VmResult<Value> {
        let mut msg = serde_json::json!({ "execute": command });
        if let Some(a) = arguments {
            msg["arguments"] = a;
        }
        let mut text = msg.to_string();
        text.push('\n');
        self.writer
            .write_all(text.as_bytes())
            .await
            .map_err(|e| VmError::Qmp(format!("writing {command}: {e}")))?;
        loop {
            let m = self.read_message().await?;
            if let Some(r) = m.get("return") {
                return Ok(r.clone());
            }
            if let Some(e) = m.get("error") {
                return Err(VmError::Qmp(format!("{command}: {e}")));
            }
            // An asynchronous event ({"event": …}): not our answer.
        }
    }
}
