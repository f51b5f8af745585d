//! Key pairs: creating them (the private key is returned once and never stored), importing
//! public keys, describing and deleting them. The cryptography is `gureum-keys`'.

use gureum_ec2::ops::key_pairs::{Action, Response};
use gureum_store::key_pairs as db;
use gureum_types::model::{Filter, KeyPair, Tag, TagSpecification};
use gureum_types::{ApiError, ErrorCode, ResourceId, ResourceKind};

use crate::describe::{self, Describable};
use crate::tags::{self, not_found};
use crate::{aws_time, Cloud, CoreError, CoreResult, Ctx};

const KEY_PAIR_FILTERS: &[&str] = &["key-pair-id", "key-name", "fingerprint", "key-type"];

impl Describable for KeyPair {
    fn filter_values(&self, name: &str) -> Option<Vec<String>> {
        Some(vec![match name {
            "key-pair-id" => self.id.clone(),
            "key-name" => self.name.clone(),
            "fingerprint" => self.fingerprint.clone(),
            "key-type" => self.key_type.clone(),
            _ => return None,
        }])
    }
    fn tags(&self) -> &[Tag] {
        &self.tags
    }
}

/// AWS: up to 255 ASCII characters.
fn validate_name(name: &str) -> Result<(), ApiError> {
    if name.len() > 255 || !name.is_ascii() || name.chars().any(|c| c.is_ascii_control()) {
        return Err(ApiError::new(
            ErrorCode::InvalidParameterValue,
            format!(
                "Value ({name}) for parameter KeyName is invalid. \
                 Key names must be at most 255 ASCII characters"
            ),
        ));
    }
    Ok(())
}

fn duplicate(name: &str) -> CoreError {
    ApiError::new(
        ErrorCode::InvalidKeyPairDuplicate,
        format!("The keypair '{name}' already exists."),
    )
    .into()
}

fn key_error(e: gureum_keys::KeyError) -> CoreError {
    let code = match e.code {
        "InvalidKey.Format" => ErrorCode::InvalidKeyFormat,
        "InvalidKeyPair.Format" => ErrorCode::InvalidKeyPairFormat,
        "InvalidParameterValue" => ErrorCode::InvalidParameterValue,
        _ => return CoreError::Keys(e),
    };
    ApiError::new(code, e.message).into()
}

struct NewKey {
    name: String,
    fingerprint: String,
    key_type: String,
    public_key: String,
    tags: Vec<Tag>,
}

impl Cloud {
    /// Record a new key pair with its tags in one transaction.
    async fn insert_key_pair(&self, account: String, k: NewKey) -> CoreResult<KeyPair> {
        let now = self.clock.now_millis();
        let id = ResourceId::generate(ResourceKind::KeyPair).to_string();
        let acct = account.clone();
        let out = self
            .blocking(move |s| {
                s.write(|tx| {
                    if tx.key_pairs().name_taken(&account, &k.name)? {
                        return Err(duplicate(&k.name));
                    }
                    tx.resources().insert(&id, &account, "key-pair", now)?;
                    let row = db::KeyPairRow {
                        id: id.clone(),
                        name: k.name.clone(),
                        fingerprint: k.fingerprint.clone(),
                        key_type: k.key_type.clone(),
                        public_key: k.public_key.clone(),
                        created_at: now,
                    };
                    if !tx.key_pairs().insert(&account, &row)? {
                        return Err(duplicate(&k.name));
                    }
                    tx.tags().put(&account, &id, &k.tags)?;
                    Ok(KeyPair {
                        id,
                        name: k.name,
                        fingerprint: k.fingerprint,
                        key_type: k.key_type,
                        public_key: k.public_key,
                        create_time: aws_time(now),
                        tags: k.tags,
                    })
                })
            })
            .await;
        self.key_cache.invalidate(&acct);
        out
    }

    async fn ensure_name_free(&self, account: &str, name: &str) -> CoreResult<()> {
        let (a, n) = (account.to_string(), name.to_string());
        let taken = self
            .blocking(move |s| s.read(|c| Ok(c.key_pairs().name_taken(&a, &n)?)))
            .await?;
        if taken {
            return Err(duplicate(name));
        }
        Ok(())
    }

    pub(crate) async fn create_key_pair(
        &self,
        account: String,
        name: String,
        key_type: String,
        key_format: String,
        specs: Vec<TagSpecification>,
    ) -> CoreResult<Response> {
        validate_name(&name)?;
        let tags = tags::from_specifications(&specs, ResourceKind::KeyPair)?;
        // Fail fast on a taken name before spending time on key generation; the insert
        // checks again inside its transaction.
        self.ensure_name_free(&account, &name).await?;
        let kt = if key_type == "ed25519" {
            gureum_keys::KeyType::Ed25519
        } else {
            gureum_keys::KeyType::Rsa
        };
        let kf = if key_format == "ppk" {
            gureum_keys::KeyFormat::Ppk
        } else {
            gureum_keys::KeyFormat::Pem
        };
        let n = name.clone();
        let created = self
            .cpu_bound(move || gureum_keys::create(kt, kf, &n))
            .await?
            .map_err(key_error)?;
        let key = self
            .insert_key_pair(
                account,
                NewKey {
                    name,
                    fingerprint: created.fingerprint,
                    key_type: key_type.clone(),
                    public_key: created.public_key_openssh,
                    tags,
                },
            )
            .await?;
        Ok(Response::CreateKeyPair {
            key,
            key_material: created.key_material,
        })
    }

    pub(crate) async fn import_key_pair(
        &self,
        account: String,
        name: String,
        material: Vec<u8>,
        specs: Vec<TagSpecification>,
    ) -> CoreResult<Response> {
        validate_name(&name)?;
        let tags = tags::from_specifications(&specs, ResourceKind::KeyPair)?;
        let imported = gureum_keys::import(&material).map_err(key_error)?;
        // AWS shows an imported key with the key name as its comment.
        let public_key = imported.described_public_key(&name);
        let key = self
            .insert_key_pair(
                account,
                NewKey {
                    name,
                    fingerprint: imported.fingerprint,
                    key_type: imported.key_type.as_str().to_string(),
                    public_key,
                    tags,
                },
            )
            .await?;
        Ok(Response::ImportKeyPair(key))
    }

    /// Every key pair of the account with its tags, ordered by id. Served from memory:
    /// `DescribeKeyPairs` is the hottest read of scripts and SDKs, and key pairs change only
    /// through this process's API, which invalidates the cache on every key pair or tag write.
    pub async fn key_pairs(&self, account: &str) -> CoreResult<Vec<KeyPair>> {
        let (cached, epoch) = self.key_cache.get(account);
        if let Some(list) = cached {
            return Ok(list.as_ref().clone());
        }
        let fresh = self.key_pairs_from_store(account).await?;
        self.key_cache.put(account, epoch, fresh.clone());
        Ok(fresh)
    }

    async fn key_pairs_from_store(&self, account: &str) -> CoreResult<Vec<KeyPair>> {
        let account = account.to_string();
        self.blocking(move |s| {
            s.read(|c| {
                let rows = c.key_pairs().list(&account)?;
                let mut tags = c.tags().all_by_resource(&account)?;
                Ok(rows
                    .into_iter()
                    .map(|r| KeyPair {
                        tags: tags.remove(&r.id).unwrap_or_default(),
                        id: r.id,
                        name: r.name,
                        fingerprint: r.fingerprint,
                        key_type: r.key_type,
                        public_key: r.public_key,
                        create_time: aws_time(r.created_at),
                    })
                    .collect())
            })
        })
        .await
    }

    pub(crate) async fn describe_key_pairs(
        &self,
        account: String,
        names: Vec<String>,
        ids: Vec<String>,
        filters: Vec<Filter>,
        include_public_key: bool,
    ) -> CoreResult<Response> {
        describe::validate_filters(&filters, KEY_PAIR_FILTERS, true)?;
        let all = self.key_pairs(&account).await?;
        if let Some(missing) = names.iter().find(|n| !all.iter().any(|k| &k.name == *n)) {
            return Err(not_found(ResourceKind::KeyPair, missing).into());
        }
        if let Some(missing) = ids.iter().find(|i| !all.iter().any(|k| &k.id == *i)) {
            return Err(not_found(ResourceKind::KeyPair, missing).into());
        }
        let keys = all
            .into_iter()
            .filter(|k| names.is_empty() || names.contains(&k.name))
            .filter(|k| ids.is_empty() || ids.contains(&k.id))
            .filter(|k| describe::matches(k, &filters))
            .collect();
        Ok(Response::DescribeKeyPairs {
            keys,
            include_public_key,
        })
    }

    pub(crate) async fn delete_key_pair(
        &self,
        account: String,
        name: Option<String>,
        id: Option<String>,
    ) -> CoreResult<Response> {
        let keys = self.key_pairs(&account).await?;
        let target = match (&id, &name) {
            (Some(id), _) => match keys.iter().find(|k| &k.id == id) {
                Some(k) => Some(k.id.clone()),
                None => return Err(not_found(ResourceKind::KeyPair, id).into()),
            },
            // Deleting a name that does not exist succeeds, as on AWS (the call is idempotent).
            (None, Some(name)) => keys.iter().find(|k| &k.name == name).map(|k| k.id.clone()),
            (None, None) => None,
        };
        if let Some(kid) = &target {
            let kid = kid.clone();
            let acct = account.clone();
            self.blocking(move |s| s.write(|tx| Ok(tx.resources().delete(&acct, &kid)?)))
                .await?;
            self.key_cache.invalidate(&account);
        }
        Ok(Response::DeleteKeyPair {
            key_pair_id: target,
        })
    }
}

impl Cloud {
    /// Run one key pair action for the calling account (the dry-run check is
    /// [`Cloud::dispatch`]'s).
    pub(crate) async fn dispatch_key_pairs(
        &self,
        ctx: &Ctx,
        action: Action,
    ) -> CoreResult<Response> {
        let acct = ctx.account_id.clone();
        Ok(match action {
            Action::CreateKeyPair {
                key_name,
                key_type,
                key_format,
                tag_specifications,
            } => {
                self.create_key_pair(acct, key_name, key_type, key_format, tag_specifications)
                    .await?
            }
            Action::ImportKeyPair {
                key_name,
                public_key_material,
                tag_specifications,
            } => {
                self.import_key_pair(acct, key_name, public_key_material, tag_specifications)
                    .await?
            }
            Action::DescribeKeyPairs {
                key_names,
                key_pair_ids,
                filters,
                include_public_key,
            } => {
                self.describe_key_pairs(acct, key_names, key_pair_ids, filters, include_public_key)
                    .await?
            }
            Action::DeleteKeyPair {
                key_name,
                key_pair_id,
            } => self.delete_key_pair(acct, key_name, key_pair_id).await?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing;
    use gureum_ec2::Request;

    fn req(action: Action) -> Request {
        Request {
            action: action.into(),
            dry_run: false,
        }
    }

    fn create(name: &str, kt: &str) -> Request {
        req(Action::CreateKeyPair {
            key_name: name.into(),
            key_type: kt.into(),
            key_format: "pem".into(),
            tag_specifications: vec![TagSpecification {
                resource_type: "key-pair".into(),
                tags: vec![Tag {
                    key: "env".into(),
                    value: name.into(),
                }],
            }],
        })
    }

    fn describe_all() -> Request {
        req(Action::DescribeKeyPairs {
            key_names: vec![],
            key_pair_ids: vec![],
            filters: vec![],
            include_public_key: true,
        })
    }

    async fn count(cloud: &crate::Cloud, ctx: &crate::Ctx) -> usize {
        match cloud.dispatch(ctx, describe_all()).await.unwrap() {
            gureum_ec2::Response::KeyPairs(Response::DescribeKeyPairs { keys, .. }) => keys.len(),
            _ => panic!(),
        }
    }

    #[tokio::test]
    async fn create_describe_delete_and_isolation() {
        let (_d, cloud, ctx) = testing::cloud();
        let gureum_ec2::Response::KeyPairs(Response::CreateKeyPair { key, key_material }) = cloud
            .dispatch(&ctx, create("demo", "ed25519"))
            .await
            .unwrap()
        else {
            panic!()
        };
        assert!(key_material.contains("PRIVATE KEY"));
        assert_eq!(key.tags.len(), 1);
        let e = cloud
            .dispatch(&ctx, create("demo", "rsa"))
            .await
            .unwrap_err();
        assert_eq!(e.to_api().code, ErrorCode::InvalidKeyPairDuplicate);
        assert_eq!(count(&cloud, &ctx).await, 1);

        // Another account sees nothing and may reuse the name.
        let bob = testing::other(&cloud, "bob");
        assert_eq!(count(&cloud, &bob).await, 0);
        let e = cloud
            .dispatch(
                &bob,
                req(Action::DescribeKeyPairs {
                    key_names: vec![],
                    key_pair_ids: vec![key.id.clone()],
                    filters: vec![],
                    include_public_key: false,
                }),
            )
            .await
            .unwrap_err();
        assert_eq!(e.to_api().code, ErrorCode::InvalidKeyPairNotFound);
        cloud
            .dispatch(&bob, create("demo", "ed25519"))
            .await
            .unwrap();
        let e = cloud
            .dispatch(
                &bob,
                req(Action::DeleteKeyPair {
                    key_name: None,
                    key_pair_id: Some(key.id.clone()),
                }),
            )
            .await
            .unwrap_err();
        assert_eq!(e.to_api().code, ErrorCode::InvalidKeyPairNotFound);

        // Delete by name; deleting again is a success that names no key.
        let gureum_ec2::Response::KeyPairs(Response::DeleteKeyPair { key_pair_id }) = cloud
            .dispatch(
                &ctx,
                req(Action::DeleteKeyPair {
                    key_name: Some("demo".into()),
                    key_pair_id: None,
                }),
            )
            .await
            .unwrap()
        else {
            panic!()
        };
        assert_eq!(key_pair_id, Some(key.id));
        assert_eq!(count(&cloud, &ctx).await, 0);
        assert_eq!(count(&cloud, &bob).await, 1);
    }

    #[tokio::test]
    async fn dry_run_changes_nothing() {
        let (_d, cloud, ctx) = testing::cloud();
        let mut r = create("demo", "ed25519");
        r.dry_run = true;
        let e = cloud.dispatch(&ctx, r).await.unwrap_err();
        assert_eq!(e.to_api().code, ErrorCode::DryRunOperation);
        assert_eq!(count(&cloud, &ctx).await, 0);
    }

    #[tokio::test]
    async fn bad_tag_specification_changes_nothing() {
        let (_d, cloud, ctx) = testing::cloud();
        let r = req(Action::CreateKeyPair {
            key_name: "k".into(),
            key_type: "ed25519".into(),
            key_format: "pem".into(),
            tag_specifications: vec![TagSpecification {
                resource_type: "instance".into(),
                tags: vec![],
            }],
        });
        assert_eq!(
            cloud.dispatch(&ctx, r).await.unwrap_err().to_api().code,
            ErrorCode::InvalidParameterValue
        );
        assert_eq!(count(&cloud, &ctx).await, 0);
    }
}
