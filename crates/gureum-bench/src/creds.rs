//! Access keys for signing: given on the command line or read from an AWS
//! shared-credentials file (`[profile]` sections of `key = value` lines), the format gureum
//! writes to `DATA_DIR/credentials`.

use std::path::Path;

use anyhow::Context;

/// A long-term access key.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl Credentials {
    /// Read `profile` of the shared-credentials file at `path`.
    pub fn from_file(path: &Path, profile: &str) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading credentials {}", path.display()))?;
        Self::parse(&text, profile)
            .with_context(|| format!("profile [{profile}] of {}", path.display()))
    }

    fn parse(text: &str, profile: &str) -> anyhow::Result<Self> {
        let mut in_profile = false;
        let (mut id, mut secret) = (None, None);
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            if let Some(section) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                in_profile = section.trim() == profile;
                continue;
            }
            if !in_profile {
                continue;
            }
            if let Some((k, v)) = line.split_once('=') {
                match k.trim() {
                    "aws_access_key_id" => id = Some(v.trim().to_string()),
                    "aws_secret_access_key" => secret = Some(v.trim().to_string()),
                    _ => {}
                }
            }
        }
        Ok(Credentials {
            access_key_id: id.context("no aws_access_key_id")?,
            secret_access_key: secret.context("no aws_secret_access_key")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_named_profile() {
        let text = "[default]\naws_access_key_id = A\naws_secret_access_key = B\n\n\
                    [gureum]\naws_access_key_id = AKID\naws_secret_access_key=SECRET/+x\n";
        let c = Credentials::parse(text, "gureum").unwrap();
        assert_eq!(c.access_key_id, "AKID");
        assert_eq!(c.secret_access_key, "SECRET/+x");
        assert!(Credentials::parse(text, "other").is_err());
    }
}
