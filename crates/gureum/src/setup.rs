//! Data-dir set-up: where it lives, opening the store, the admin account created on first
//! start, and the AWS credentials and config files written for it.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use gureum_core::{Cloud, SystemClock};
use gureum_store::SqliteStore;
use gureum_types::model::AccessKey;
use gureum_types::Region;

/// The admin account's name; the credentials file's profile.
pub const ADMIN: &str = "admin";
pub const PROFILE: &str = "gureum";

pub fn default_data_dir() -> anyhow::Result<PathBuf> {
    let is_root = gureum_image::is_root();
    if is_root {
        return Ok(PathBuf::from("/var/lib/gureum"));
    }
    let base = match std::env::var_os("XDG_DATA_HOME") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => {
            PathBuf::from(std::env::var_os("HOME").context("HOME is not set")?).join(".local/share")
        }
    };
    Ok(base.join("gureum"))
}

/// Open the data dir's store (creating the dir, private to its owner) and build the cloud.
pub fn open_cloud(data_dir: &Path, region: &str) -> anyhow::Result<Cloud> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating data dir {}", data_dir.display()))?;
    std::fs::set_permissions(data_dir, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("securing data dir {}", data_dir.display()))?;
    let store = SqliteStore::open(&data_dir.join("state.db"))?;
    let region = Region::new(region)
        .with_context(|| format!("{region:?} is not a region name like us-east-1"))?;
    let cloud = Cloud::new(Arc::new(store), region, Arc::new(SystemClock))
        .with_prices(crate::billing::prices(data_dir)?);
    // Default VPCs made before internet gateways existed get theirs now, before the host
    // agent decides which public addresses to map.
    cloud
        .repair_default_vpcs_sync()
        .map_err(|e| anyhow::anyhow!("repairing default VPCs: {e}"))?;
    Ok(cloud)
}

/// The admin's first access key, creating the admin account on first start.
pub fn ensure_admin(cloud: &Cloud) -> anyhow::Result<(String, AccessKey, bool)> {
    let accounts = cloud.list_accounts_sync().map_err(anyhow::Error::msg)?;
    if let Some((a, keys)) = accounts.into_iter().find(|(a, _)| a.name == ADMIN) {
        if let Some(k) = keys.into_iter().next() {
            return Ok((a.id, k, false));
        }
        let k = cloud
            .create_access_key_sync(&a.id)
            .map_err(anyhow::Error::msg)?;
        return Ok((a.id, k, false));
    }
    let (a, k) = cloud
        .create_account_sync(ADMIN)
        .map_err(anyhow::Error::msg)?;
    Ok((a.id, k, true))
}

fn write_private(path: &Path, contents: &str) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("writing {}", tmp.display()))?;
    f.write_all(contents.as_bytes())?;
    f.sync_all()?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// Files written for the admin: `credentials` (shared-credentials format, profile
/// `gureum`, mode 0600), `config` (region and endpoint for that profile) and `env` (the
/// environment variables, to `source`).
pub struct ClientFiles {
    pub credentials: PathBuf,
    pub config: PathBuf,
    pub env: PathBuf,
}

pub fn write_client_files(
    data_dir: &Path,
    key: &AccessKey,
    region: &str,
    endpoint: &str,
) -> anyhow::Result<ClientFiles> {
    let credentials = data_dir.join("credentials");
    let config = data_dir.join("config");
    let env = data_dir.join("env");
    write_private(
        &credentials,
        &format!(
            "[{PROFILE}]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
            key.access_key_id, key.secret_access_key
        ),
    )?;
    write_private(
        &config,
        &format!("[profile {PROFILE}]\nregion = {region}\nendpoint_url = {endpoint}\n"),
    )?;
    write_private(
        &env,
        &format!(
            "export AWS_SHARED_CREDENTIALS_FILE={}\nexport AWS_CONFIG_FILE={}\n\
             export AWS_PROFILE={PROFILE}\nexport AWS_DEFAULT_REGION={region}\n\
             export AWS_ENDPOINT_URL={endpoint}\n",
            credentials.display(),
            config.display()
        ),
    )?;
    Ok(ClientFiles {
        credentials,
        config,
        env,
    })
}
