//! Test helpers: temporary files and running the reference tools (OpenSSH's
//! `ssh-keygen`, `openssl`, PuTTY's `puttygen`), skipping when a tool is absent.

#![allow(dead_code)]

use std::io::ErrorKind;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};

/// A directory removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new() -> Self {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let dir = std::env::temp_dir().join(format!(
            "gureum-keys-test-{}-{n}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// Writes `contents` with mode 0600 (OpenSSH refuses readable private keys).
    pub fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, contents).expect("write temp file");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
            .expect("chmod temp file");
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Output of a tool run.
pub struct Output {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `tool args...` with no stdin. Returns `None` (after printing a skip notice)
/// when the tool is not installed.
pub fn run(tool: &str, args: &[&str]) -> Option<Output> {
    match Command::new(tool).args(args).stdin(Stdio::null()).output() {
        Ok(out) => Some(Output {
            ok: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }),
        Err(e) if e.kind() == ErrorKind::NotFound => {
            println!("skipped: {tool} not found");
            None
        }
        Err(e) => panic!("running {tool}: {e}"),
    }
}

/// Like [`run`] but panics with the tool's stderr when it fails.
pub fn run_ok(tool: &str, args: &[&str]) -> Option<String> {
    let out = run(tool, args)?;
    assert!(
        out.ok,
        "{tool} {args:?} failed:\nstdout: {}\nstderr: {}",
        out.stdout, out.stderr
    );
    Some(out.stdout)
}

pub fn p(path: &Path) -> &str {
    path.to_str().expect("utf-8 temp path")
}

/// `"<algorithm> <base64>"` of an OpenSSH public key line (comment dropped).
pub fn key_fields(line: &str) -> String {
    let mut it = line.split_whitespace();
    format!(
        "{} {}",
        it.next().expect("algorithm"),
        it.next().expect("base64")
    )
}

/// The digest from `openssl dgst` output such as `SHA1(file)= aa:bb:...`.
pub fn openssl_digest(output: &str) -> String {
    output
        .trim()
        .rsplit("= ")
        .next()
        .expect("openssl digest output")
        .to_string()
}

/// AWS's rendering of `ssh-keygen -l -E sha256` output (`256 SHA256:X comment
/// (TYPE)`): the base64 digest with its `=` padding restored and no prefix.
pub fn aws_sha256_from_ssh_keygen(output: &str) -> String {
    let field = output
        .split_whitespace()
        .nth(1)
        .expect("ssh-keygen -l output has a fingerprint field");
    let digest = field.strip_prefix("SHA256:").expect("SHA256: prefix");
    let mut padded = digest.to_string();
    while padded.len() % 4 != 0 {
        padded.push('=');
    }
    padded
}
