//! What the web console needs from the core beyond the API's actions: a cheap snapshot of
//! every instance's version (to notice state changes and push them to open pages), and an
//! instance's login user (for the Connect tab's `ssh` command). Everything the console shows
//! still goes through [`Cloud::dispatch`]; these only tell it when and what to ask.

use crate::{Cloud, CoreResult};

/// One instance's version: it changes whenever anything the instances page shows of it
/// changes state (the generation moves on every compare-and-swap).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceVersion {
    pub account_id: String,
    pub id: String,
    pub state: String,
    pub generation: i64,
    pub public_ip: Option<String>,
}

impl Cloud {
    /// Whether host drivers are attached (instances really run here).
    pub fn has_host(&self) -> bool {
        self.host.is_some()
    }

    /// Every instance record's version, all accounts (one indexed scan; cheap enough to run
    /// a few times a second while a console page is open).
    pub async fn instance_versions(&self) -> CoreResult<Vec<InstanceVersion>> {
        self.blocking(|s| {
            s.read(|c| {
                let mut st = c.prepare_cached(
                    "SELECT account_id, id, state, generation, public_ip FROM instances",
                )?;
                let rows = st.query_map([], |r| {
                    Ok(InstanceVersion {
                        account_id: r.get(0)?,
                        id: r.get(1)?,
                        state: r.get(2)?,
                        generation: r.get(3)?,
                        public_ip: r.get(4)?,
                    })
                })?;
                Ok(rows.collect::<Result<Vec<_>, _>>()?)
            })
        })
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
        self.blocking(move |s| {
            s.read(|c| {
                use gureum_store::rusqlite::OptionalExtension;
                Ok(c.prepare_cached(
                    "SELECT login_user FROM instances WHERE account_id = ?1 AND id = ?2",
                )?
                .query_row([&a, &i], |r| r.get(0))
                .optional()?)
            })
        })
        .await
    }
}
