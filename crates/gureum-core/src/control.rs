//! The seam between the control plane and a host agent, both ways, as traits whose arguments
//! and results are plain data.
//!
//! [`ControlPlane`] is everything the host agent ([`crate::agent::Agent`]) reads from or
//! writes to the records: the instances it runs, compare-and-swap state changes with their
//! reasons, what each running instance's firewall, public address and host network should
//! be, and the clean-up of records (public addresses given back, terminated instances
//! forgotten). The agent reaches the records through nothing else. Every argument and result
//! is serde data ([`HostInstance`], [`Transition`], [`PublicIp`], the host seam's `Firewall`
//! and `HostNet`, [`ControlError`]), so a cluster's host agent can reach a remote control
//! plane through an HTTP/JSON client implementing the same trait. [`LocalControlPlane`] is
//! the implementation over this process's [`Cloud`] (its store).
//!
//! [`HostAgent`] is the other way: what the API needs from the host that runs an instance
//! (its console, a copy of its root volume for `CreateImage`, a warm guest for a launch).
//! The local [`crate::agent::Agent`] implements it; [`Cloud::with_local_agent`] wires the
//! two together in one process, as `gureum up` runs them.
//!
//! What is not here: budget checks. They read accounts' usage and prices and stop an
//! account's instances by recording the intent; none of it touches a host, and a cluster
//! checks each budget once rather than once per host, so they run beside the control plane
//! ([`Cloud::spawn_budget_checks`]), not in the agent.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use gureum_host_api::wire::text;
use gureum_store::instances::{InstanceField, InstanceRow};
use gureum_types::{Hypervisor, InstanceState, ShutdownBehavior, StateReason};
use serde::{Deserialize, Serialize};

use crate::host::{Firewall, HostNet};
use crate::image_snapshots::{ImageJob, ImageOutcome};
use crate::snapshots::SnapshotJob;
use crate::tasks::{Task, TaskStatus};
use crate::volumes::{VolumeJob, VolumeOutcome};
use crate::vpcs::{default_host_net, gateway};
use crate::{Cloud, CoreError, CoreResult};

/// A failure of the control plane as the agent sees it: its text (the log, the task status
/// and a failed launch's `StateReason` show exactly this).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct ControlError {
    pub message: String,
}

impl From<CoreError> for ControlError {
    fn from(e: CoreError) -> Self {
        ControlError {
            message: e.to_string(),
        }
    }
}

pub type ControlResult<T> = Result<T, ControlError>;

/// How often budgets are checked against the month's cost.
pub const BUDGET_CHECK_EVERY: Duration = Duration::from_secs(60);

/// What the host agent knows of an instance: the parts of its record that say what should
/// run on the host and how (not its API-only attributes, such as its client token or
/// metadata options).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostInstance {
    pub id: String,
    pub account_id: String,
    pub reservation_id: String,
    pub image_id: String,
    /// The image's root filesystem, fixed at launch.
    pub rootfs: String,
    pub instance_type: String,
    pub public_key: Option<String>,
    pub login_user: String,
    #[serde(with = "text")]
    pub state: InstanceState,
    /// The record's version: a [`Transition`] names it, so a newer intent wins.
    pub generation: i64,
    /// When the current state began (milliseconds since the epoch).
    pub state_since: i64,
    #[serde(with = "reason")]
    pub state_reason: Option<StateReason>,
    pub launch_time: i64,
    pub region: String,
    pub az: String,
    pub subnet_id: String,
    pub vpc_id: String,
    pub private_ip: String,
    pub mac: String,
    pub root_volume_gib: u32,
    #[serde(with = "text")]
    pub shutdown_behavior: ShutdownBehavior,
    pub user_data: Option<Vec<u8>>,
    #[serde(with = "text")]
    pub hypervisor: Hypervisor,
    pub reboot_requested: bool,
    pub force_stop: bool,
    pub ended_at: Option<i64>,
}

impl HostInstance {
    fn of(r: InstanceRow, region: &str) -> HostInstance {
        HostInstance {
            id: r.id,
            account_id: r.account_id,
            reservation_id: r.reservation_id,
            image_id: r.image_id,
            rootfs: r.rootfs,
            instance_type: r.instance_type,
            public_key: r.public_key,
            login_user: r.login_user,
            state: r.state,
            generation: r.generation,
            state_since: r.state_since,
            state_reason: r.state_reason,
            launch_time: r.launch_time,
            region: region.to_string(),
            az: r.az,
            subnet_id: r.subnet_id,
            vpc_id: r.vpc_id,
            private_ip: r.private_ip,
            mac: r.mac,
            root_volume_gib: r.root_volume_gib,
            shutdown_behavior: r.shutdown_behavior,
            user_data: r.user_data,
            hypervisor: r.hypervisor,
            reboot_requested: r.reboot_requested,
            force_stop: r.force_stop,
            ended_at: r.ended_at,
        }
    }
}

/// A state change the host made happen, recorded only if the record is still at
/// `generation` (compare-and-swap).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transition {
    pub instance_id: String,
    pub generation: i64,
    #[serde(with = "text")]
    pub to: InstanceState,
    #[serde(with = "reason")]
    pub reason: Option<StateReason>,
}

/// A running instance's public address as the records want it mapped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicIp {
    pub instance_id: String,
    /// The recorded private address (as recorded: one that does not parse is unmapped).
    pub private_ip: String,
    /// `None`: mapped to nothing (no address, or its subnet has no route to an internet
    /// gateway).
    pub public: Option<Ipv4Addr>,
}

/// What the host agent reads from and writes to the records. Object-safe, so the agent holds
/// an `Arc<dyn ControlPlane>`; see the module docs.
#[async_trait]
pub trait ControlPlane: Send + Sync {
    /// Every instance record this host runs, terminated ones included until they are
    /// purged (one host holds them all in single-machine mode).
    async fn instances(&self) -> ControlResult<Vec<HostInstance>>;
    /// One instance's record, if it still exists.
    async fn instance(&self, id: &str) -> ControlResult<Option<HostInstance>>;
    /// Record a state change the host made; `false` if the record moved on meanwhile.
    async fn transition(&self, t: Transition) -> ControlResult<bool>;
    /// The reboot the record asked for is done.
    async fn clear_reboot(&self, id: &str) -> ControlResult<()>;
    /// The host network of an account's VPC: the shared one for default VPCs, its own with
    /// its subnets and their gateways for any other.
    async fn host_net(&self, account_id: &str, vpc_id: &str) -> ControlResult<HostNet>;
    /// Every pending or running instance's firewall, from its security groups.
    async fn firewalls(&self) -> ControlResult<HashMap<String, Firewall>>;
    /// One instance's firewall as the records say now (empty if it has none).
    async fn firewall(&self, id: &str) -> ControlResult<Firewall>;
    /// Every running instance's public address, an auto-assigned one taken from the pool
    /// where the instance should have one and has none yet.
    async fn public_ips(&self) -> ControlResult<Vec<PublicIp>>;
    /// One instance's public address for its launch (assigned as for [`Self::public_ips`]).
    async fn public_ip(&self, id: &str) -> ControlResult<Option<Ipv4Addr>>;
    /// The instance stopped or ended: its auto-assigned public address goes back.
    async fn release_public_ip(&self, id: &str) -> ControlResult<()>;
    /// The instance ended: its Elastic IP is disassociated.
    async fn disassociate_elastic_ip(&self, id: &str) -> ControlResult<()>;
    /// Forget terminated instances that ended before `ended_before_ms`; the ids forgotten.
    async fn purge_terminated(&self, ended_before_ms: i64) -> ControlResult<Vec<String>>;
    /// The host steps the volume records ask for (see `volumes.rs`).
    async fn volume_jobs(&self) -> ControlResult<Vec<VolumeJob>>;
    /// How a volume's host step ended; recorded only if the volume is unchanged since.
    async fn volume_done(&self, job: VolumeJob, outcome: VolumeOutcome) -> ControlResult<()>;
    /// The host steps the snapshot records ask for.
    async fn snapshot_jobs(&self) -> ControlResult<Vec<SnapshotJob>>;
    /// How a snapshot's host step ended (`Err`: the host's words).
    async fn snapshot_done(
        &self,
        job: SnapshotJob,
        outcome: Result<(), String>,
    ) -> ControlResult<()>;
    /// The data volumes (id, device) an instance's guest shows from its start.
    async fn guest_volumes(&self, instance_id: &str) -> ControlResult<Vec<(String, String)>>;
    /// The host steps the image records ask for (see `image_snapshots.rs`).
    async fn image_jobs(&self) -> ControlResult<Vec<ImageJob>>;
    /// How an image's host step ended; an import is recorded only if the image is still
    /// `pending`.
    async fn image_done(&self, job: ImageJob, outcome: ImageOutcome) -> ControlResult<()>;
}

/// The image the warm pool boots: its root filesystem and root volume size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WarmImage {
    pub rootfs: String,
    pub volume_gib: u32,
}

/// What the control plane asks of the host agent that runs an instance.
///
/// The warm pool's three calls are synchronous because a launch takes its guest inside the
/// store transaction that records the instance; in one process they are calls on the pool's
/// bookkeeping. A cluster's scheduler would reserve a remote host's guest before that
/// transaction instead.
#[async_trait]
pub trait HostAgent: Send + Sync {
    /// The tail of an instance's console (at most `max_bytes`; empty if it has none).
    async fn console_output(&self, instance_id: &str, max_bytes: usize) -> Vec<u8>;
    /// Copy an instance's root volume into image `image_id` (stopping the guest for the
    /// copy unless `no_reboot`): the copy's root filesystem, or why it failed.
    async fn image_instance(
        &self,
        instance_id: &str,
        image_id: &str,
        no_reboot: bool,
    ) -> Result<String, String>;
    /// The image the warm pool boots from now on.
    fn set_warm_image(&self, image: WarmImage);
    /// A launch is being recorded: the pool holds back its refills for a while.
    fn note_launch(&self);
    /// A ready warm guest for an instance of `rootfs` with a `volume_gib` root volume, if
    /// there is one: its id becomes the instance's.
    fn take_warm_guest(&self, rootfs: &str, volume_gib: u32) -> Option<String>;
    /// Whether the host keeps EBS volumes (has a volume pool).
    fn has_volume_pool(&self) -> bool;
}

/// The control plane of this process, over its store.
pub struct LocalControlPlane {
    cloud: Cloud,
}

impl LocalControlPlane {
    /// The records of `cloud`. The cloud is kept as it is now: configure it first.
    pub fn new(cloud: Cloud) -> LocalControlPlane {
        LocalControlPlane { cloud }
    }
}

impl Cloud {
    /// Run a host agent with `host`'s drivers in this process, beside this control plane:
    /// the agent reaches the records through a [`LocalControlPlane`] over this cloud, wakes
    /// on the API's changes at once (one shared `Notify`), reports into this cloud's task
    /// status ([`Cloud::agent_status`]), and keeps `warm_guests` guests booted ahead of
    /// launches. Call it last, once the cloud is configured. The agent still has to be
    /// started ([`crate::agent::Agent::spawn`]).
    pub fn with_local_agent(
        mut self,
        host: crate::Host,
        warm_guests: usize,
    ) -> (Cloud, crate::agent::Agent) {
        let control = Arc::new(LocalControlPlane::new(self.clone()));
        let agent = crate::agent::Agent::new(control, host, self.clock.clone())
            .with_wake(self.notify.clone())
            .with_tasks(self.tasks.clone())
            .with_warm_pool(warm_guests);
        self.agent = Some(Arc::new(agent.clone()));
        (self, agent)
    }

    /// Wake the host agent: a record changed.
    pub fn wake_agent(&self) {
        self.notify.notify_one();
    }

    /// The status of the background tasks: the host agent's and the budget checks (see
    /// `tasks.rs`).
    pub fn agent_status(&self) -> Vec<TaskStatus> {
        self.tasks.snapshot()
    }

    /// Check budgets against the month's cost every [`BUDGET_CHECK_EVERY`], the first time
    /// at once, until the process ends; each check a supervised task (`budgets`).
    pub fn spawn_budget_checks(&self) -> tokio::task::JoinHandle<()> {
        let cloud = self.clone();
        tokio::spawn(async move {
            loop {
                let c = cloud.clone();
                cloud
                    .tasks
                    .run(Task::Budgets, async move { c.check_budgets().await })
                    .await;
                tokio::time::sleep(BUDGET_CHECK_EVERY).await;
            }
        })
    }

    /// Launches recorded for a hypervisor this host cannot run (left `pending` by an earlier
    /// server that could, or one that died mid-launch) end as EC2's failed launches do:
    /// `terminated`, with `Server.InternalError` and the reason. Returns how many.
    pub async fn fail_stranded_launches(&self) -> CoreResult<usize> {
        let rows = self.all_instances().await?;
        let mut failed = 0;
        for r in rows.iter().filter(|r| r.state == InstanceState::Pending) {
            let Some(why) = self.unavailable.reason(r.hypervisor) else {
                continue;
            };
            let reason =
                StateReason::internal_error(format!("the host cannot run instances: {why}"));
            let to = InstanceState::Terminated;
            if self
                .record_transition(&r.id, r.generation, to, Some(reason))
                .await?
            {
                tracing::info!(instance = %r.id, from = %r.state, to = %to, "state");
                self.wake_agent();
                failed += 1;
            }
        }
        Ok(failed)
    }

    /// Every instance record.
    async fn all_instances(&self) -> CoreResult<Vec<InstanceRow>> {
        self.blocking(|s| s.read(|c| Ok(c.instances().all()?)))
            .await
    }

    /// Record a state change if the record is still at `generation`.
    pub(crate) async fn record_transition(
        &self,
        id: &str,
        generation: i64,
        to: InstanceState,
        reason: Option<StateReason>,
    ) -> CoreResult<bool> {
        let now = self.clock.now_millis();
        let id = id.to_string();
        let ended = (to == InstanceState::Terminated).then_some(now);
        self.blocking(move |s| {
            s.write(|tx| {
                Ok(tx.instances().transition(
                    &id,
                    generation,
                    to,
                    None,
                    reason.as_ref(),
                    ended,
                    now,
                )?)
            })
        })
        .await
    }

    /// Every pending or running instance's firewall.
    async fn all_firewalls(&self) -> CoreResult<HashMap<String, Firewall>> {
        self.blocking(|s| {
            s.read(|c| {
                let rows = c.instances().all()?;
                let rules = c.security_groups().all_rules()?;
                let members = c.security_groups().memberships()?;
                Ok(crate::firewall::firewalls(
                    &rows,
                    &rules,
                    &members,
                    &c.vpcs().default_vpc_ids()?,
                ))
            })
        })
        .await
    }
}

#[async_trait]
impl ControlPlane for LocalControlPlane {
    async fn instances(&self) -> ControlResult<Vec<HostInstance>> {
        let region = &self.cloud.region.name;
        Ok(self
            .cloud
            .all_instances()
            .await?
            .into_iter()
            .map(|r| HostInstance::of(r, region))
            .collect())
    }

    async fn instance(&self, id: &str) -> ControlResult<Option<HostInstance>> {
        let id = id.to_string();
        let row = self
            .cloud
            .blocking(move |s| s.read(|c| Ok(c.instances().get(&id)?)))
            .await?;
        Ok(row.map(|r| HostInstance::of(r, &self.cloud.region.name)))
    }

    async fn transition(&self, t: Transition) -> ControlResult<bool> {
        Ok(self
            .cloud
            .record_transition(&t.instance_id, t.generation, t.to, t.reason)
            .await?)
    }

    async fn clear_reboot(&self, id: &str) -> ControlResult<()> {
        let id = id.to_string();
        Ok(self
            .cloud
            .blocking(move |s| {
                s.write(|tx| {
                    Ok(tx
                        .instances()
                        .set_field(&id, InstanceField::RebootRequested(false))?)
                })
            })
            .await?)
    }

    async fn host_net(&self, account_id: &str, vpc_id: &str) -> ControlResult<HostNet> {
        let (account, vpc) = (account_id.to_string(), vpc_id.to_string());
        let (is_default, subnets) = self
            .cloud
            .blocking(move |s| {
                s.read(|c| {
                    let is_default = c
                        .vpcs()
                        .vpcs(&account)?
                        .iter()
                        .any(|v| v.id == vpc && v.is_default);
                    let subnets: Vec<String> = c
                        .vpcs()
                        .subnets(&account)?
                        .into_iter()
                        .filter(|s| s.vpc_id == vpc)
                        .map(|s| s.cidr)
                        .collect();
                    Ok((is_default, subnets))
                })
            })
            .await?;
        if is_default {
            return Ok(default_host_net());
        }
        Ok(HostNet {
            id: vpc_id.to_string(),
            subnets: subnets
                .iter()
                .filter_map(|c| c.parse::<ipnet::Ipv4Net>().ok())
                .map(|c| (c, gateway(&c)))
                .collect(),
        })
    }

    async fn firewalls(&self) -> ControlResult<HashMap<String, Firewall>> {
        Ok(self.cloud.all_firewalls().await?)
    }

    async fn firewall(&self, id: &str) -> ControlResult<Firewall> {
        Ok(self
            .cloud
            .all_firewalls()
            .await?
            .remove(id)
            .unwrap_or_default())
    }

    async fn public_ips(&self) -> ControlResult<Vec<PublicIp>> {
        let pool = self.cloud.public_pool;
        let now = self.cloud.clock.now_millis();
        Ok(self
            .cloud
            .blocking(move |s| {
                s.write(|tx| {
                    let routed = tx.routing().internet_routed_subnets()?;
                    let mut out = Vec::new();
                    for r in tx.instances().all()? {
                        if r.state != InstanceState::Running {
                            continue;
                        }
                        let ip = tx.instances().assign_public_ip(&r.id, pool, now)?;
                        let public = ip
                            .and_then(|p| p.parse::<Ipv4Addr>().ok())
                            .filter(|_| routed.contains(&r.subnet_id));
                        out.push(PublicIp {
                            instance_id: r.id,
                            private_ip: r.private_ip,
                            public,
                        });
                    }
                    Ok(out)
                })
            })
            .await?)
    }

    async fn public_ip(&self, id: &str) -> ControlResult<Option<Ipv4Addr>> {
        let pool = self.cloud.public_pool;
        let now = self.cloud.clock.now_millis();
        let id = id.to_string();
        let (public, routed) = self
            .cloud
            .blocking(move |s| {
                s.write(|tx| {
                    let subnet = tx.instances().get(&id)?.map(|r| r.subnet_id);
                    let ip = tx.instances().assign_public_ip(&id, pool, now)?;
                    let routed = tx.routing().internet_routed_subnets()?;
                    Ok((ip, subnet.is_some_and(|s| routed.contains(&s))))
                })
            })
            .await?;
        Ok(public.and_then(|p| p.parse().ok()).filter(|_| routed))
    }

    async fn release_public_ip(&self, id: &str) -> ControlResult<()> {
        let id = id.to_string();
        let now = self.cloud.clock.now_millis();
        Ok(self
            .cloud
            .blocking(move |s| s.write(|tx| Ok(tx.instances().release_public_ip(&id, now)?)))
            .await?)
    }

    async fn disassociate_elastic_ip(&self, id: &str) -> ControlResult<()> {
        let (id, now) = (id.to_string(), self.cloud.clock.now_millis());
        Ok(self
            .cloud
            .blocking(move |s| s.write(|tx| crate::addresses::release_for_terminated(tx, &id, now)))
            .await?)
    }

    async fn volume_jobs(&self) -> ControlResult<Vec<VolumeJob>> {
        Ok(self.cloud.volume_jobs().await?)
    }
    async fn volume_done(&self, job: VolumeJob, outcome: VolumeOutcome) -> ControlResult<()> {
        Ok(self.cloud.volume_done(job, outcome).await?)
    }
    async fn snapshot_jobs(&self) -> ControlResult<Vec<SnapshotJob>> {
        Ok(self.cloud.snapshot_jobs().await?)
    }
    async fn snapshot_done(
        &self,
        job: SnapshotJob,
        outcome: Result<(), String>,
    ) -> ControlResult<()> {
        Ok(self.cloud.snapshot_done(job, outcome).await?)
    }
    async fn guest_volumes(&self, instance_id: &str) -> ControlResult<Vec<(String, String)>> {
        Ok(self.cloud.guest_volumes(instance_id).await?)
    }
    async fn image_jobs(&self) -> ControlResult<Vec<ImageJob>> {
        Ok(self.cloud.image_jobs().await?)
    }
    async fn image_done(&self, job: ImageJob, outcome: ImageOutcome) -> ControlResult<()> {
        Ok(self.cloud.image_done(job, outcome).await?)
    }
    async fn purge_terminated(&self, ended_before_ms: i64) -> ControlResult<Vec<String>> {
        Ok(self
            .cloud
            .blocking(move |s| {
                s.write(|tx| Ok(tx.instances().purge_terminated(ended_before_ms)?))
            })
            .await?)
    }
}

/// `#[serde(with = "reason")]` for an `Option<StateReason>`: `{"code": …, "message": …}`
/// with the code as EC2 writes it.
mod reason {
    use gureum_types::{StateReason, StateReasonCode};
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize)]
    struct Wire {
        #[serde(with = "gureum_host_api::wire::text")]
        code: StateReasonCode,
        message: String,
    }

    pub fn serialize<S: Serializer>(v: &Option<StateReason>, s: S) -> Result<S::Ok, S::Error> {
        v.as_ref()
            .map(|r| Wire {
                code: r.code,
                message: r.message.clone(),
            })
            .serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<StateReason>, D::Error> {
        Ok(Option::<Wire>::deserialize(d)?.map(|w| StateReason {
            code: w.code,
            message: w.message,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instance() -> HostInstance {
        HostInstance {
            id: "i-0123456789abcdef0".into(),
            account_id: "111111111111".into(),
            reservation_id: "r-0123456789abcdef0".into(),
            image_id: "ami-0123456789abcdef0".into(),
            rootfs: "/images/debian-12".into(),
            instance_type: "t3.micro".into(),
            public_key: Some("ssh-ed25519 AAAA alice".into()),
            login_user: "admin".into(),
            state: InstanceState::ShuttingDown,
            generation: 7,
            state_since: 1_764_000_000_000,
            state_reason: Some(StateReason::instance_initiated_shutdown()),
            launch_time: 1_763_000_000_000,
            region: "us-east-1".into(),
            az: "us-east-1a".into(),
            subnet_id: "subnet-1".into(),
            vpc_id: "vpc-1".into(),
            private_ip: "172.31.0.4".into(),
            mac: "02:00:ac:1f:00:04".into(),
            root_volume_gib: 8,
            shutdown_behavior: ShutdownBehavior::Terminate,
            user_data: Some(b"#!/bin/sh\n\xff".to_vec()),
            hypervisor: Hypervisor::Vm,
            reboot_requested: true,
            force_stop: false,
            ended_at: None,
        }
    }

    fn round_trip<T: Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug>(
        v: &T,
    ) -> String {
        let text = serde_json::to_string(v).unwrap();
        assert_eq!(&serde_json::from_str::<T>(&text).unwrap(), v, "{text}");
        text
    }

    /// Everything that crosses the seam survives JSON unchanged, with the vocabulary's own
    /// texts, so an HTTP client can implement the traits.
    #[test]
    fn the_interface_types_round_trip_through_json() {
        let text = round_trip(&instance());
        assert!(text.contains(r#""state":"shutting-down""#), "{text}");
        assert!(text.contains(r#""hypervisor":"vm""#), "{text}");
        assert!(
            text.contains(r#""code":"Client.InstanceInitiatedShutdown""#),
            "{text}"
        );
        round_trip(&HostInstance {
            state_reason: None,
            user_data: None,
            public_key: None,
            ..instance()
        });
        round_trip(&Transition {
            instance_id: "i-1".into(),
            generation: 3,
            to: InstanceState::Terminated,
            reason: Some(StateReason::internal_error(
                "internal: the guest did not boot",
            )),
        });
        round_trip(&PublicIp {
            instance_id: "i-1".into(),
            private_ip: "172.31.0.4".into(),
            public: Some("127.100.0.1".parse().unwrap()),
        });
        round_trip(&WarmImage {
            rootfs: "/images/debian-12".into(),
            volume_gib: 8,
        });
        round_trip(&ControlError::from(CoreError::Invariant("a rule")));
        round_trip(&crate::image_snapshots::ImageJob {
            image_id: "ami-1".into(),
            step: crate::image_snapshots::ImageStep::Import {
                snapshot_id: "snap-1".into(),
            },
        });
        round_trip(&ImageOutcome::Imported(crate::host::ImportedImage {
            rootfs: "/images/ami-1/rootfs".into(),
            login_user: "admin".into(),
        }));
        let mut firewalls = HashMap::new();
        firewalls.insert("i-1".to_string(), Firewall::default());
        round_trip(&firewalls);
        // A state this build does not know is refused, not taken for another.
        let bad = text.replace("shutting-down", "hibernating");
        assert!(serde_json::from_str::<HostInstance>(&bad).is_err());
    }
}
