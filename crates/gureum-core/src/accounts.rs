//! Accounts and access keys: creating them, and finding the secret behind an access key id
//! for signature verification (cached, since every request asks).

use std::collections::HashMap;
use std::sync::RwLock;

use gureum_types::model::{AccessKey, Account};
use gureum_types::{ApiError, ErrorCode};
use rand::distributions::{Distribution, Uniform};
use rand::Rng;

use crate::{aws_time, Cloud, CoreError, CoreResult};

/// Access keys seen before. Keys are never deleted, so a cached key is never stale; a miss
/// goes to the database (a key created by `gureum access-key create` in another process).
#[derive(Default)]
pub struct AuthCache(RwLock<HashMap<String, AccessKey>>);

fn random_from(alphabet: &[u8], n: usize) -> String {
    let mut rng = rand::thread_rng();
    let d = Uniform::from(0..alphabet.len());
    (0..n)
        .map(|_| alphabet[d.sample(&mut rng)] as char)
        .collect()
}

fn new_access_key(account_id: &str) -> AccessKey {
    // AWS long-term access key ids are AKIA + 16 base32 characters; secrets are 40
    // characters of base64's alphabet.
    AccessKey {
        access_key_id: format!(
            "AKIA{}",
            random_from(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16)
        ),
        secret_access_key: random_from(
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
            40,
        ),
        account_id: account_id.to_string(),
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-@".contains(&b))
}

impl Cloud {
    /// Create an account with a first access key. Blocking.
    pub fn create_account_sync(&self, name: &str) -> CoreResult<(Account, AccessKey)> {
        if !valid_name(name) {
            return Err(ApiError::new(
                ErrorCode::InvalidParameterValue,
                format!("invalid account name {name:?}: use 1 to 64 letters, digits, '.', '_', '-', '@'"),
            )
            .into());
        }
        let now = self.clock.now_millis();
        self.store.write(|tx| {
            if tx.accounts().find(name)?.is_some() {
                return Err(CoreError::Api(ApiError::new(
                    ErrorCode::InvalidParameterValue,
                    format!("an account named {name} already exists"),
                )));
            }
            let id = loop {
                let id: String = (0..12)
                    .map(|_| char::from(b'0' + rand::thread_rng().gen_range(0..10u8)))
                    .collect();
                if tx.accounts().find(&id)?.is_none() {
                    break id;
                }
            };
            tx.accounts().insert(&id, name, now)?;
            let key = new_access_key(&id);
            tx.accounts().insert_access_key(&key, now)?;
            Ok((
                Account {
                    id,
                    name: name.to_string(),
                    create_time: aws_time(now),
                },
                key,
            ))
        })
    }

    /// Add an access key to an account given by id or name. Blocking.
    pub fn create_access_key_sync(&self, account: &str) -> CoreResult<AccessKey> {
        let now = self.clock.now_millis();
        self.store.write(|tx| {
            let acct = tx.accounts().find(account)?.ok_or_else(|| {
                CoreError::Api(ApiError::new(
                    ErrorCode::InvalidParameterValue,
                    format!("no account {account}"),
                ))
            })?;
            let key = new_access_key(&acct.id);
            tx.accounts().insert_access_key(&key, now)?;
            Ok(key)
        })
    }

    pub fn list_accounts_sync(&self) -> CoreResult<Vec<(Account, Vec<AccessKey>)>> {
        self.store.read(|c| {
            let mut out = Vec::new();
            for a in c.accounts().list()? {
                let keys = c.accounts().access_keys_of(&a.id)?;
                out.push((a.to_model(aws_time), keys));
            }
            Ok(out)
        })
    }

    /// The access key with this id, if any.
    pub async fn find_access_key(&self, access_key_id: &str) -> CoreResult<Option<AccessKey>> {
        if let Some(k) = self
            .auth_cache
            .0
            .read()
            .expect("auth cache poisoned")
            .get(access_key_id)
        {
            return Ok(Some(k.clone()));
        }
        let id = access_key_id.to_string();
        let found = self
            .blocking(move |s| s.read(|c| Ok(c.accounts().find_access_key(&id)?)))
            .await?;
        if let Some(k) = &found {
            self.auth_cache
                .0
                .write()
                .expect("auth cache poisoned")
                .insert(k.access_key_id.clone(), k.clone());
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use crate::testing;

    #[tokio::test]
    async fn accounts_and_keys() {
        let (_d, cloud, ctx) = testing::cloud();
        assert_eq!(ctx.account_id.len(), 12);
        let key = cloud.create_access_key_sync("alice").unwrap();
        assert!(key.access_key_id.starts_with("AKIA") && key.access_key_id.len() == 20);
        assert_eq!(key.secret_access_key.len(), 40);
        let found = cloud
            .find_access_key(&key.access_key_id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(found.account_id, ctx.account_id);
        assert!(cloud.find_access_key("AKIANOPE").await.unwrap().is_none());
        assert!(cloud.create_account_sync("alice").is_err());
        assert!(cloud.create_account_sync("bad name").is_err());
        assert_eq!(cloud.list_accounts_sync().unwrap()[0].1.len(), 2);
    }
}
