//! Running `ip` and `nft`: one process per batch, the batch on standard input.
//!
//! iproute2 and nftables are driven through their command-line tools rather than netlink
//! libraries: `ip -batch -` applies many changes per process (an attach costs two `ip`
//! processes of ~3 ms each), `ip netns add` makes namespaces exactly as operators' tools expect
//! them, the batches are plain text an operator can read in the debug log and replay by hand,
//! and there is no netlink library API to track. The measured attach time stays well inside
//! the launch budget (see the crate's tests).

use std::process::Stdio;

use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use crate::NetError;

/// Run `program args`, feeding `stdin` if given; its standard output on success.
pub(crate) async fn run(
    program: &str,
    args: &[&str],
    stdin: Option<&str>,
) -> Result<String, NetError> {
    let mut command = Command::new(program);
    command
        .args(args)
        // Messages and JSON keys are parsed or shown verbatim: keep them in the C locale.
        .env("LC_ALL", "C")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // A cancelled operation must not leave a half-applied batch running on its own.
        .kill_on_drop(true);
    let mut child = command
        .spawn()
        .map_err(|e| NetError::io(format!("cannot run {program}"), e))?;
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("stdin is piped");
        pipe.write_all(input.as_bytes())
            .await
            .map_err(|e| NetError::io(format!("writing to {program}"), e))?;
        // Closing standard input ends the batch.
        drop(pipe);
    }
    let output = child
        .wait_with_output()
        .await
        .map_err(|e| NetError::io(format!("waiting for {program}"), e))?;
    if !output.status.success() {
        return Err(NetError::Command {
            program: format!("{program} {}", args.join(" ")),
            status: output.status.to_string(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        });
    }
    String::from_utf8(output.stdout)
        .map_err(|_| NetError::parse(program, "standard output is not UTF-8"))
}

/// `ip [global args] -batch -` with one command per line; nothing to do runs nothing.
pub(crate) async fn ip_batch(global: &[&str], lines: &[String]) -> Result<String, NetError> {
    if lines.is_empty() {
        return Ok(String::new());
    }
    let text = lines.join("\n") + "\n";
    tracing::debug!(args = ?global, batch = %text, "ip -batch -");
    let mut args: Vec<&str> = global.to_vec();
    args.extend(["-batch", "-"]);
    run("ip", &args, Some(&text)).await
}

/// Whether `program` is an executable on `PATH`.
pub(crate) fn on_path(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|dir| {
            std::fs::metadata(dir.join(program))
                .map(|m| m.is_file())
                .unwrap_or(false)
        })
    })
}
