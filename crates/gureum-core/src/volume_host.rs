//! The host agent's half of EBS: it asks the control plane which volume, snapshot and image
//! steps the records want ([`ControlPlane::volume_jobs`], [`ControlPlane::snapshot_jobs`],
//! `image_jobs`), runs them with this host's volume pool, compute driver and image store
//! (an image registered from a snapshot is made from the snapshot's file), and hands back how
//! each ended (`volume_done`, `snapshot_done`, `image_done`), which the control plane records
//! by compare-and-swap.
//! Every step is idempotent, so after a crash the next pass simply runs it again; at most one
//! step per volume or snapshot runs at a time (the agent's in-flight set).
//!
//! [`ControlPlane::volume_jobs`]: crate::control::ControlPlane::volume_jobs
//! [`ControlPlane::snapshot_jobs`]: crate::control::ControlPlane::snapshot_jobs

use std::sync::Arc;

use crate::agent::Agent;
use crate::host::{HostError, HostImages, HostResult, VolumeAttachment, Volumes};
use crate::image_snapshots::{ImageJob, ImageOutcome, ImageStep};
use crate::snapshots::{SnapshotJob, SnapshotStep, COPY_VOLUME_ID};
use crate::volumes::{VolumeOutcome, VolumeStep};
use crate::CoreResult;

impl Agent {
    /// This host's volume pool, if it keeps volumes.
    pub(crate) fn volume_pool(&self) -> Option<Arc<dyn Volumes>> {
        self.host.volumes.clone()
    }

    /// One pass: start the host step of every volume and snapshot that needs one and wait
    /// for them. Does nothing on a host without a volume pool.
    pub async fn converge_volumes(&self) -> CoreResult<()> {
        let Some(pool) = self.volume_pool() else {
            return Ok(());
        };
        let volume_jobs = self.control.volume_jobs().await?;
        let snapshot_jobs = self.control.snapshot_jobs().await?;
        let mut steps = tokio::task::JoinSet::new();
        for job in volume_jobs {
            if !self.in_flight.try_claim(&job.volume_id) {
                continue;
            }
            let (agent, pool) = (self.clone(), pool.clone());
            steps.spawn(async move {
                let id = job.volume_id.clone();
                let outcome = match agent.volume_step(&*pool, &id, &job.step).await {
                    Ok(()) => VolumeOutcome::Done,
                    Err(HostError::Busy(why)) => VolumeOutcome::Busy(why),
                    Err(e) => VolumeOutcome::Failed(e.to_string()),
                };
                if let Err(e) = agent.control.volume_done(job, outcome).await {
                    tracing::warn!(volume = %id, error = %e, "recording a volume step failed");
                }
                agent.in_flight.release(&id);
            });
        }
        for job in snapshot_jobs {
            if !self.in_flight.try_claim(&job.snapshot_id) {
                continue;
            }
            let (agent, pool) = (self.clone(), pool.clone());
            steps.spawn(async move {
                let id = job.snapshot_id.clone();
                let outcome = snapshot_step(&*pool, &job).await.map_err(|e| e.to_string());
                if let Err(e) = agent.control.snapshot_done(job, outcome).await {
                    tracing::warn!(snapshot = %id, error = %e, "recording a snapshot step failed");
                }
                agent.in_flight.release(&id);
            });
        }
        // Images from snapshots: made from a snapshot's bytes, so with the pool's steps.
        for job in self.control.image_jobs().await? {
            if !self.in_flight.try_claim(&job.image_id) {
                continue;
            }
            let (agent, pool) = (self.clone(), pool.clone());
            steps.spawn(async move {
                let id = job.image_id.clone();
                let outcome = image_step(agent.host.images.as_deref(), &*pool, &job).await;
                if let Err(e) = agent.control.image_done(job, outcome).await {
                    tracing::warn!(image = %id, error = %e, "recording an image step failed");
                }
                agent.in_flight.release(&id);
            });
        }
        while steps.join_next().await.is_some() {}
        Ok(())
    }

    async fn volume_step(&self, pool: &dyn Volumes, id: &str, step: &VolumeStep) -> HostResult<()> {
        match step {
            VolumeStep::Create {
                size_gib,
                from_snapshot,
            } => pool.create(id, *size_gib, from_snapshot.as_deref()).await,
            VolumeStep::Grow { size_gib } => pool.grow(id, *size_gib).await,
            VolumeStep::Attach {
                instance_id,
                device,
            } => {
                let plug = VolumeAttachment {
                    volume_id: id.to_string(),
                    device: device.clone(),
                    path: pool.path(id),
                    read_only: false,
                };
                self.host.compute.attach_volume(instance_id, &plug).await
            }
            VolumeStep::Detach { instance_id, force } => {
                self.host
                    .compute
                    .detach_volume(instance_id, id, *force)
                    .await
            }
            VolumeStep::MarkAttached | VolumeStep::MarkDetached | VolumeStep::Release => Ok(()),
            VolumeStep::Delete { root: true } => Ok(()),
            VolumeStep::Delete { root: false } => pool.delete(id).await,
        }
    }

    /// The volumes `instance_id`'s guest shows from its start, with their files here.
    pub(crate) async fn guest_volumes(
        &self,
        instance_id: &str,
    ) -> CoreResult<Vec<VolumeAttachment>> {
        let Some(pool) = self.volume_pool() else {
            return Ok(Vec::new());
        };
        Ok(self
            .control
            .guest_volumes(instance_id)
            .await?
            .into_iter()
            .map(|(volume_id, device)| VolumeAttachment {
                path: pool.path(&volume_id),
                volume_id,
                device,
                read_only: false,
            })
            .collect())
    }
}

async fn snapshot_step(pool: &dyn Volumes, job: &SnapshotJob) -> HostResult<()> {
    match &job.step {
        SnapshotStep::Take { volume_id } => pool.snapshot(volume_id, &job.snapshot_id).await,
        SnapshotStep::Copy {
            source_snapshot_id,
            size_gib,
        } => {
            let scratch = format!("{COPY_VOLUME_ID}-{}", job.snapshot_id);
            let r = async {
                pool.create(&scratch, *size_gib, Some(source_snapshot_id))
                    .await?;
                pool.snapshot(&scratch, &job.snapshot_id).await
            }
            .await;
            let cleanup = pool.delete(&scratch).await;
            r.and(cleanup)
        }
        SnapshotStep::Remove => pool.delete_snapshot(&job.snapshot_id).await,
    }
}

async fn image_step(
    images: Option<&dyn HostImages>,
    pool: &dyn Volumes,
    job: &ImageJob,
) -> ImageOutcome {
    let Some(images) = images else {
        return ImageOutcome::Failed("this host cannot make images from snapshots".into());
    };
    let done = match &job.step {
        ImageStep::Import { snapshot_id } => images
            .import_disk(&job.image_id, &pool.snapshot_path(snapshot_id))
            .await
            .map(ImageOutcome::Imported),
        ImageStep::Remove => images
            .remove(&job.image_id)
            .await
            .map(|()| ImageOutcome::Removed),
    };
    done.unwrap_or_else(|e| ImageOutcome::Failed(e.to_string()))
}
