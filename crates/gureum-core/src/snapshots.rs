//! EBS snapshots: `CreateSnapshot`, `CreateSnapshots`, `DescribeSnapshots`, `DeleteSnapshot`,
//! `CopySnapshot` and the `createVolumePermission` attribute, with AWS's semantics: a
//! snapshot is `pending` until the agent has taken it on the host (copy-on-write, through the
//! volume pool), then `completed`; sharing with an account (or `all`) lets it see the
//! snapshot in `DescribeSnapshots` and create volumes from it, never change or delete it.
//! A copy shows `vol-ffffffff` as its volume, as EC2's copies do.

use serde::{Deserialize, Serialize};

use gureum_ec2::ops::snapshots::{Action, Permission, Response, SnapshotAttribute};
use gureum_ec2::Page;
use gureum_store::volumes::SnapshotRow;
use gureum_store::Tx;
use gureum_types::model::{Filter, Snapshot, Tag, TagSpecification};
use gureum_types::{ApiError, ErrorCode, ResourceId, ResourceKind, SnapshotState, VolumeState};

use crate::describe::{self, Describable};
use crate::volumes::find as find_volume;
use crate::{aws_time, tags, Cloud, CoreError, CoreResult, Ctx};

/// AWS's default quota of snapshots per region.
pub const MAX_SNAPSHOTS: usize = 100_000;

/// The volume id EC2 shows for a copied snapshot.
pub const COPY_VOLUME_ID: &str = "vol-ffffffff";

const SNAPSHOT_FILTERS: &[&str] = &[
    "snapshot-id",
    "volume-id",
    "status",
    "owner-id",
    "owner-alias",
    "description",
    "progress",
    "start-time",
    "volume-size",
    "encrypted",
    "storage-tier",
];

impl Describable for Snapshot {
    fn filter_values(&self, name: &str) -> Option<Vec<String>> {
        Some(match name {
            "snapshot-id" => vec![self.id.clone()],
            "volume-id" => vec![self.volume_id.clone()],
            "status" => vec![self.state.as_str().into()],
            "owner-id" => vec![self.owner_id.clone()],
            "owner-alias" => vec![],
            "description" => vec![self.description.clone()],
            "progress" => vec![self.progress.clone()],
            "start-time" => vec![self.start_time.clone()],
            "volume-size" => vec![self.volume_size.to_string()],
            "encrypted" => vec![self.encrypted.to_string()],
            "storage-tier" => vec!["standard".into()],
            _ => return None,
        })
    }
    fn tags(&self) -> &[Tag] {
        &self.tags
    }
}

/// `InvalidSnapshotID.Malformed` unless `id` is a snapshot id.
pub(crate) fn check_snapshot_id(id: &str) -> CoreResult<()> {
    if ResourceId::parse(ResourceKind::Snapshot, id).is_none() {
        return Err(ApiError::new(
            ErrorCode::InvalidSnapshotIDMalformed,
            format!("Invalid id: \"{id}\" (expecting \"snap-...\")"),
        )
        .into());
    }
    Ok(())
}

fn snapshot_not_found(id: &str) -> CoreError {
    ApiError::new(
        ErrorCode::InvalidSnapshotNotFound,
        format!("The snapshot '{id}' does not exist."),
    )
    .into()
}

/// A snapshot the account may use (its own or shared with it).
pub(crate) fn find_visible(tx: &dyn Tx, account: &str, id: &str) -> CoreResult<SnapshotRow> {
    check_snapshot_id(id)?;
    tx.volumes()
        .visible_snapshot(account, id)?
        .ok_or_else(|| snapshot_not_found(id))
}

/// The account's own snapshot (sharing lets others see it, never change it).
fn find_own(tx: &dyn Tx, account: &str, id: &str) -> CoreResult<SnapshotRow> {
    let s = find_visible(tx, account, id)?;
    if s.account_id != account {
        return Err(snapshot_not_found(id));
    }
    Ok(s)
}

fn snapshot_model(s: &SnapshotRow, tags: Vec<Tag>) -> Snapshot {
    Snapshot {
        id: s.id.clone(),
        volume_id: s.volume_id.clone(),
        state: s.state,
        state_message: s.state_message.clone(),
        start_time: aws_time(s.created_at),
        progress: format!("{}%", s.progress),
        owner_id: s.account_id.clone(),
        description: s.description.clone(),
        volume_size: s.volume_size,
        encrypted: s.encrypted,
        tags,
    }
}

impl Cloud {
    /// Record pending snapshots of `volumes` (account, volume id, tags each) in one
    /// transaction.
    async fn record_snapshots(
        &self,
        account: String,
        volumes: Vec<(String, Vec<Tag>)>,
        description: String,
    ) -> CoreResult<Vec<Snapshot>> {
        let now = self.clock.now_millis();
        let out = self
            .blocking(move |s| {
                s.write(|tx| {
                    if tx.volumes().visible_snapshots(&account)?.len() + volumes.len()
                        > MAX_SNAPSHOTS
                    {
                        return Err(ApiError::new(
                            ErrorCode::SnapshotLimitExceeded,
                            "The maximum number of snapshots has been reached.",
                        )
                        .into());
                    }
                    let mut out = Vec::new();
                    for (volume_id, tags) in volumes {
                        let v = find_volume(tx, &account, &volume_id)?;
                        if !matches!(v.state, VolumeState::Available | VolumeState::InUse) {
                            return Err(ApiError::new(
                                ErrorCode::IncorrectState,
                                format!("The volume '{volume_id}' is in the '{}' state.", v.state),
                            )
                            .into());
                        }
                        if v.root {
                            return Err(ApiError::new(
                                ErrorCode::UnsupportedOperation,
                                "Snapshots of root volumes are not supported yet.",
                            )
                            .into());
                        }
                        let row = SnapshotRow {
                            id: ResourceId::generate(ResourceKind::Snapshot).to_string(),
                            account_id: account.clone(),
                            volume_id,
                            volume_size: v.size_gib,
                            description: description.clone(),
                            state: SnapshotState::Pending,
                            state_message: None,
                            progress: 0,
                            encrypted: v.encrypted,
                            generation: 0,
                            created_at: now,
                            source_snapshot_id: None,
                        };
                        tx.resources().insert(&row.id, &account, "snapshot", now)?;
                        tx.volumes().insert_snapshot(&row)?;
                        tx.tags().put(&account, &row.id, &tags)?;
                        out.push(snapshot_model(&row, tags));
                    }
                    Ok(out)
                })
            })
            .await?;
        self.wake_agent();
        Ok(out)
    }

    async fn create_snapshots(
        &self,
        account: String,
        instance_id: String,
        exclude: Vec<String>,
        description: String,
        specs: Vec<TagSpecification>,
        copy_tags: bool,
    ) -> CoreResult<Response> {
        let extra = tags::from_specifications(&specs, ResourceKind::Snapshot)?;
        crate::instances::check_instance_id(&instance_id)?;
        let acct = account.clone();
        let volumes = self
            .blocking(move |s| {
                s.read(|tx| {
                    tx.instances()
                        .get(&instance_id)?
                        .filter(|i| i.account_id == acct)
                        .ok_or_else(|| crate::instances::not_found(&[&instance_id]))?;
                    let mut own_tags = tx.tags().all_by_resource(&acct)?;
                    Ok(tx
                        .volumes()
                        .of_instance(&instance_id)?
                        .into_iter()
                        // Root volumes live in the compute driver's files, not the pool.
                        .filter(|v| !v.root && !exclude.contains(&v.id))
                        .map(|v| {
                            let mut t = if copy_tags {
                                own_tags.remove(&v.id).unwrap_or_default()
                            } else {
                                Vec::new()
                            };
                            t.retain(|t| !extra.iter().any(|e| e.key == t.key));
                            t.extend(extra.iter().cloned());
                            (v.id, t)
                        })
                        .collect::<Vec<_>>())
                })
            })
            .await?;
        let snaps = self.record_snapshots(account, volumes, description).await?;
        Ok(Response::CreateSnapshots(snaps))
    }

    async fn describe_snapshots(
        &self,
        account: String,
        ids: Vec<String>,
        owners: Vec<String>,
        restorable_by: Vec<String>,
        filters: Vec<Filter>,
        page: Page,
    ) -> CoreResult<Response> {
        describe::validate_filters(&filters, SNAPSHOT_FILTERS, true)?;
        for id in &ids {
            check_snapshot_id(id)?;
        }
        let me = account.clone();
        let self_or = move |who: &String| {
            if who == "self" {
                me.clone()
            } else {
                who.clone()
            }
        };
        let owners: Vec<String> = owners.iter().map(&self_or).collect();
        let restorable: Vec<String> = restorable_by.iter().map(&self_or).collect();
        let snaps = self
            .blocking(move |s| {
                s.read(|tx| {
                    let mut tags = tx.tags().all_by_resource(&account)?;
                    let mut out = Vec::new();
                    for r in tx.volumes().visible_snapshots(&account)? {
                        if !restorable.is_empty() && r.account_id != account {
                            let perms = tx.volumes().permissions(&r.id)?;
                            let can = restorable
                                .iter()
                                .any(|who| perms.contains(who) || perms.iter().any(|p| p == "all"));
                            if !can {
                                continue;
                            }
                        }
                        // Tags are the owner's: others see none.
                        let t = if r.account_id == account {
                            tags.remove(&r.id).unwrap_or_default()
                        } else {
                            Vec::new()
                        };
                        out.push(snapshot_model(&r, t));
                    }
                    Ok(out)
                })
            })
            .await?;
        if let Some(missing) = ids.iter().find(|id| !snaps.iter().any(|s| &s.id == *id)) {
            return Err(snapshot_not_found(missing));
        }
        let snaps: Vec<Snapshot> = snaps
            .into_iter()
            .filter(|s| ids.is_empty() || ids.contains(&s.id))
            .filter(|s| owners.is_empty() || owners.contains(&s.owner_id))
            .filter(|s| describe::matches(s, &filters))
            .collect();
        let (snapshots, next_token) = describe::paginate(snaps, |s| s.id.clone(), &page)?;
        Ok(Response::DescribeSnapshots {
            snapshots,
            next_token,
        })
    }

    async fn delete_snapshot(&self, account: String, id: String) -> CoreResult<Response> {
        let now = self.clock.now_millis();
        self.blocking(move |s| {
            s.write(|tx| {
                find_own(tx, &account, &id)?;
                // A volume still being made from it needs its bytes.
                let users: Vec<String> = tx
                    .volumes()
                    .all()?
                    .into_iter()
                    .filter(|v| {
                        v.state == VolumeState::Creating && v.snapshot_id.as_deref() == Some(&id)
                    })
                    .map(|v| v.id)
                    .collect();
                let copying = tx.volumes().all_snapshots()?.into_iter().any(|s| {
                    s.state == SnapshotState::Pending
                        && s.source_snapshot_id.as_deref() == Some(&id)
                });
                if let Some(v) = users.first() {
                    return Err(ApiError::new(
                        ErrorCode::InvalidSnapshotInUse,
                        format!("The snapshot {id} is currently in use by {v}"),
                    )
                    .into());
                }
                // The snapshot backs a registered image until it is deregistered.
                if let Some(image) = tx.images().using_snapshot(&id)?.first() {
                    return Err(ApiError::new(
                        ErrorCode::InvalidSnapshotInUse,
                        format!("The snapshot {id} is currently in use by {image}"),
                    )
                    .into());
                }
                if copying {
                    return Err(ApiError::new(
                        ErrorCode::InvalidSnapshotInUse,
                        format!("The snapshot {id} is currently being copied"),
                    )
                    .into());
                }
                tx.volumes().delete_snapshot(&account, &id, now)?;
                Ok(())
            })
        })
        .await?;
        self.wake_agent();
        Ok(Response::Return)
    }

    async fn copy_snapshot(
        &self,
        account: String,
        source_region: String,
        source: String,
        description: String,
        specs: Vec<TagSpecification>,
    ) -> CoreResult<Response> {
        if source_region != self.region.name {
            return Err(ApiError::invalid_value(
                "SourceRegion",
                &source_region,
                &format!("Only snapshots of {} can be copied here.", self.region.name),
            )
            .into());
        }
        let tags = tags::from_specifications(&specs, ResourceKind::Snapshot)?;
        let now = self.clock.now_millis();
        let (snapshot_id, tags) = self
            .blocking(move |s| {
                s.write(|tx| {
                    let src = find_visible(tx, &account, &source)?;
                    if src.state != SnapshotState::Completed {
                        return Err(ApiError::new(
                            ErrorCode::IncorrectState,
                            format!("Snapshot {source} is not 'completed'."),
                        )
                        .into());
                    }
                    let row = SnapshotRow {
                        id: ResourceId::generate(ResourceKind::Snapshot).to_string(),
                        account_id: account.clone(),
                        volume_id: COPY_VOLUME_ID.into(),
                        volume_size: src.volume_size,
                        description,
                        state: SnapshotState::Pending,
                        state_message: None,
                        progress: 0,
                        encrypted: src.encrypted,
                        generation: 0,
                        created_at: now,
                        source_snapshot_id: Some(src.id),
                    };
                    tx.resources().insert(&row.id, &account, "snapshot", now)?;
                    tx.volumes().insert_snapshot(&row)?;
                    tx.tags().put(&account, &row.id, &tags)?;
                    Ok((row.id, tags))
                })
            })
            .await?;
        self.wake_agent();
        Ok(Response::CopySnapshot { snapshot_id, tags })
    }

    async fn modify_snapshot_attribute(
        &self,
        account: String,
        id: String,
        add: Vec<Permission>,
        remove: Vec<Permission>,
    ) -> CoreResult<Response> {
        for p in add.iter().chain(&remove) {
            if let Permission::User(u) = p {
                if u.len() != 12 || !u.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(ApiError::new(
                        ErrorCode::InvalidUserIDMalformed,
                        format!("User ID '{u}' is not valid"),
                    )
                    .into());
                }
            }
        }
        let who = |p: &Permission| match p {
            Permission::User(u) => u.clone(),
            Permission::All => "all".to_string(),
        };
        self.blocking(move |s| {
            s.write(|tx| {
                find_own(tx, &account, &id)?;
                for p in &add {
                    tx.volumes().set_permission(&id, &who(p), true)?;
                }
                for p in &remove {
                    tx.volumes().set_permission(&id, &who(p), false)?;
                }
                Ok(())
            })
        })
        .await?;
        Ok(Response::Return)
    }

    async fn snapshot_permissions(
        &self,
        account: String,
        id: String,
        reset: bool,
    ) -> CoreResult<Vec<Permission>> {
        self.blocking(move |s| {
            s.write(|tx| {
                find_own(tx, &account, &id)?;
                if reset {
                    tx.volumes().reset_permissions(&id)?;
                }
                Ok(tx
                    .volumes()
                    .permissions(&id)?
                    .into_iter()
                    .map(|w| {
                        if w == "all" {
                            Permission::All
                        } else {
                            Permission::User(w)
                        }
                    })
                    .collect())
            })
        })
        .await
    }

    /// Run one snapshot action for the calling account.
    pub(crate) async fn dispatch_snapshots(
        &self,
        ctx: &Ctx,
        action: Action,
    ) -> CoreResult<Response> {
        let acct = ctx.account_id.clone();
        match action {
            Action::CreateSnapshot {
                volume_id,
                description,
                tag_specifications,
            } => {
                let tags = tags::from_specifications(&tag_specifications, ResourceKind::Snapshot)?;
                let mut snaps = self
                    .record_snapshots(acct, vec![(volume_id, tags)], description)
                    .await?;
                Ok(Response::Snapshot(snaps.remove(0)))
            }
            Action::CreateSnapshots {
                instance_id,
                exclude_boot_volume: _,
                exclude_data_volume_ids,
                description,
                tag_specifications,
                copy_tags,
            } => {
                self.create_snapshots(
                    acct,
                    instance_id,
                    exclude_data_volume_ids,
                    description,
                    tag_specifications,
                    copy_tags,
                )
                .await
            }
            Action::DescribeSnapshots {
                snapshot_ids,
                owner_ids,
                restorable_by,
                filters,
                page,
            } => {
                self.describe_snapshots(acct, snapshot_ids, owner_ids, restorable_by, filters, page)
                    .await
            }
            Action::DeleteSnapshot { snapshot_id } => self.delete_snapshot(acct, snapshot_id).await,
            Action::CopySnapshot {
                source_region,
                source_snapshot_id,
                description,
                tag_specifications,
            } => {
                self.copy_snapshot(
                    acct,
                    source_region,
                    source_snapshot_id,
                    description,
                    tag_specifications,
                )
                .await
            }
            Action::ModifySnapshotAttribute {
                snapshot_id,
                add,
                remove,
            } => {
                self.modify_snapshot_attribute(acct, snapshot_id, add, remove)
                    .await
            }
            Action::DescribeSnapshotAttribute {
                snapshot_id,
                attribute,
            } => {
                let perms = self
                    .snapshot_permissions(acct, snapshot_id.clone(), false)
                    .await?;
                Ok(Response::DescribeSnapshotAttribute {
                    snapshot_id,
                    permissions: (attribute == SnapshotAttribute::CreateVolumePermission)
                        .then_some(perms),
                })
            }
            Action::ResetSnapshotAttribute { snapshot_id } => {
                self.snapshot_permissions(acct, snapshot_id, true).await?;
                Ok(Response::Return)
            }
        }
    }

    /// The host steps the snapshot records ask for: a copy-on-write snapshot of a pending
    /// snapshot's volume (for a copy: of a scratch volume made from the source), and removing
    /// the bytes of deleted ones.
    pub(crate) async fn snapshot_jobs(&self) -> CoreResult<Vec<SnapshotJob>> {
        let (snaps, trash) = self
            .blocking(|s| s.read(|tx| Ok((tx.volumes().all_snapshots()?, tx.volumes().trash()?))))
            .await?;
        let pending = snaps
            .into_iter()
            .filter(|s| s.state == SnapshotState::Pending)
            .map(|s| SnapshotJob {
                step: match s.source_snapshot_id {
                    None => SnapshotStep::Take {
                        volume_id: s.volume_id,
                    },
                    Some(source_snapshot_id) => SnapshotStep::Copy {
                        source_snapshot_id,
                        size_gib: s.volume_size,
                    },
                },
                snapshot_id: s.id,
            });
        let removed = trash.into_iter().map(|snapshot_id| SnapshotJob {
            snapshot_id,
            step: SnapshotStep::Remove,
        });
        Ok(pending.chain(removed).collect())
    }

    /// Record how a snapshot's host step ended.
    pub(crate) async fn snapshot_done(
        &self,
        job: SnapshotJob,
        outcome: Result<(), String>,
    ) -> CoreResult<()> {
        if let SnapshotStep::Remove = job.step {
            return match outcome {
                Ok(()) => {
                    let id = job.snapshot_id;
                    self.blocking(move |s| s.write(|tx| Ok(tx.volumes().empty_trash(&id)?)))
                        .await
                }
                Err(e) => {
                    tracing::warn!(snapshot = %job.snapshot_id, error = %e, "removing a snapshot failed");
                    Ok(())
                }
            };
        }
        let id = job.snapshot_id.clone();
        let current = self
            .blocking(move |s| {
                s.read(|tx| {
                    Ok(tx
                        .volumes()
                        .all_snapshots()?
                        .into_iter()
                        .find(|s| s.id == id))
                })
            })
            .await?;
        let Some(s) = current.filter(|s| s.state == SnapshotState::Pending) else {
            return Ok(());
        };
        let mut next = s.clone();
        match outcome {
            Ok(()) => {
                next.state = SnapshotState::Completed;
                next.progress = 100;
            }
            Err(e) => {
                tracing::error!(snapshot = %s.id, error = %e, "taking the snapshot failed");
                next.state = SnapshotState::Error;
                next.state_message = Some("the snapshot could not be taken on the host".into());
            }
        }
        let ok = self
            .blocking(move |st| st.write(|tx| Ok(tx.volumes().update_snapshot(&next)?)))
            .await?;
        if ok {
            self.wake_agent();
        }
        Ok(())
    }
}

/// What a host agent must do for one snapshot (see [`Cloud::snapshot_jobs`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotJob {
    pub snapshot_id: String,
    pub step: SnapshotStep,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SnapshotStep {
    /// A copy-on-write snapshot of the volume.
    Take { volume_id: String },
    /// `CopySnapshot`: a scratch volume made from the source, snapshotted, removed.
    Copy {
        source_snapshot_id: String,
        size_gib: u32,
    },
    /// The snapshot was deleted: remove its bytes.
    Remove,
}
