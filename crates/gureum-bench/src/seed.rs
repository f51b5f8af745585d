//! Seeding and one-off calls: `ImportKeyPair` for every `NAME.pub` of a directory (over
//! one keep-alive connection, each request signed like any other), and a single request
//! whose body is handed back.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use base64::Engine;
use serde_json::{json, Value};

use crate::http1::Conn;
use crate::signer::RequestTemplate;

/// Percent-encode a form value (everything but RFC 3986's unreserved characters).
fn form_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3 / 2);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The `ImportKeyPair` body for key `name` with OpenSSH public key line `pub_line`.
fn import_body(name: &str, pub_line: &str) -> String {
    let material = base64::engine::general_purpose::STANDARD.encode(pub_line.trim().as_bytes());
    format!(
        "Action=ImportKeyPair&Version=2016-11-15&KeyName={}&PublicKeyMaterial={}",
        form_encode(name),
        form_encode(&material)
    )
}

/// Import every `*.pub` in `dir` (sorted by name); a key pair that already exists
/// (`InvalidKeyPair.Duplicate`) counts as present, any other failure stops the seeding.
pub async fn run(
    addr: SocketAddr,
    template: RequestTemplate,
    dir: &Path,
    label: &str,
) -> anyhow::Result<Value> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "pub"))
        .collect();
    files.sort();
    anyhow::ensure!(!files.is_empty(), "no *.pub files in {}", dir.display());
    let started = Instant::now();
    let mut conn = Conn::connect(addr).await?;
    let (mut imported, mut present) = (0u64, 0u64);
    let mut req = Vec::new();
    for f in &files {
        let name = f
            .file_stem()
            .and_then(|s| s.to_str())
            .context("key file name is not UTF-8")?;
        let line = std::fs::read_to_string(f)?;
        template
            .with_body(import_body(name, &line).into_bytes())
            .build(&mut req)?;
        let r = conn.round_trip(&req).await?;
        let body = String::from_utf8_lossy(r.body);
        match r.status {
            200 => imported += 1,
            _ if body.contains("InvalidKeyPair.Duplicate") => present += 1,
            s => anyhow::bail!("importing {name}: HTTP {s}: {body}"),
        }
        if !r.keep_alive {
            conn = Conn::connect(addr).await?;
        }
    }
    let ms = started.elapsed().as_secs_f64() * 1e3;
    eprintln!("{label}: imported {imported} key pairs ({present} already there) in {ms:.0} ms");
    Ok(json!({
        "kind": "seed",
        "target": label,
        "imported": imported,
        "already_present": present,
        "ms": (ms * 10.0).round() / 10.0,
    }))
}

/// Send one request; return its status and body.
pub async fn call(addr: SocketAddr, template: &RequestTemplate) -> anyhow::Result<(u16, Vec<u8>)> {
    let mut conn = Conn::connect(addr).await?;
    let mut req = Vec::new();
    template.build(&mut req)?;
    let r = conn.round_trip(&req).await?;
    Ok((r.status, r.body.to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn import_body_is_form_encoded() {
        let b = import_body("k 1", "ssh-ed25519 AAAA x@y\n");
        assert!(b.starts_with(
            "Action=ImportKeyPair&Version=2016-11-15&KeyName=k%201&PublicKeyMaterial="
        ));
        // base64 of the line: '+', '/' and '=' must be escaped.
        let material = b.rsplit('=').next().unwrap();
        assert!(!material.contains('+') && !material.contains('/'));
        assert_eq!(form_encode("a+b/c=d"), "a%2Bb%2Fc%3Dd");
    }
}
