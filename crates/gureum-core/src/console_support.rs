//! What the web console needs from the core beyond the API's actions: a cheap snapshot of
//! every instance's, volume's and snapshot's version (to notice state changes and push them
//! to open pages), and an instance's login user (for the Connect tab's `ssh` command).
//! Everything the console shows still goes through [`Cloud::dispatch`]; these only tell it
//! when and what to ask.

use crate::{Cloud, CoreResult};

pub use gureum_store::instances::InstanceVersion;
pub use gureum_store::volumes::{EbsKind, EbsVersion};

impl Cloud {
    /// Whether a host agent runs this cloud's instances (instances really run here).
    pub fn has_host(&self) -> bool {
        self.agent.is_some()
    }

    /// Every instance record's version, all accounts (one indexed scan; cheap enough to run
    /// a few times a second while a console page is open).
    pub async fn instance_versions(&self) -> CoreResult<Vec<InstanceVersion>> {
        self.blocking(|s| s.read(|c| Ok(c.instances().versions()?)))
            .await
    }

    /// Whether this cloud can make volumes (a host agent with a volume pool); without one
    /// `CreateVolume` answers `InsufficientVolumeCapacity`.
    pub fn has_volume_pool(&self) -> bool {
        self.volumes_enabled()
    }

    /// Every volume's and snapshot's version, all accounts (two small scans, like
    /// [`Cloud::instance_versions`]).
    pub async fn ebs_versions(&self) -> CoreResult<Vec<EbsVersion>> {
        self.blocking(|s| s.read(|c| Ok(c.volumes().versions()?)))
            .await
    }

    /// The login user of the account's instance (fixed at launch from its image), if the
    /// account has that instance.
    pub async fn instance_login_user(
        &self,
        account_id: &str,
        instance_id: &str,
    ) -> CoreResult<Option<String>> {
        let (a, i) = (account_id.to_string(), instance_id.to_string());
        self.blocking(move |s| s.read(|c| Ok(c.instances().login_user(&a, &i)?)))
            .await
    }
}
