//! The host agent against a fake control plane: no store and no `Cloud`, only the
//! [`ControlPlane`] trait, whose every argument and answer goes through JSON on the way, as
//! it would to a remote control plane. What the agent does here it can do for a cluster.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use gureum_types::{Hypervisor, InstanceState, ShutdownBehavior, StateReason};
use serde::{de::DeserializeOwned, Serialize};

use crate::control::{ControlPlane, ControlResult, HostInstance, PublicIp, Transition};
use crate::fake::{FakeCompute, FakeNetwork};
use crate::host::{Firewall, FirewallPeer, FirewallRule, GuestState, HostNet};
use crate::snapshots::SnapshotJob;
use crate::volumes::{VolumeJob, VolumeOutcome};
use crate::{Agent, Host};

/// A value as the other side of a network seam would see it.
fn wire<T: Serialize + DeserializeOwned>(v: &T) -> T {
    serde_json::from_str(&serde_json::to_string(v).unwrap()).unwrap()
}

/// Records in memory, with the control plane's rules the agent relies on: compare-and-swap
/// transitions, firewalls and public addresses of live instances only.
#[derive(Default)]
struct FakeControl {
    records: Mutex<Vec<HostInstance>>,
    firewalls: Mutex<HashMap<String, Firewall>>,
    public: Mutex<HashMap<String, Ipv4Addr>>,
    /// The writes the agent made, in order.
    writes: Mutex<Vec<String>>,
}

impl FakeControl {
    fn note(&self, s: String) {
        self.writes.lock().unwrap().push(s);
    }

    fn state_of(&self, id: &str) -> InstanceState {
        self.records
            .lock()
            .unwrap()
            .iter()
            .find(|r| r.id == id)
            .unwrap()
            .state
    }

    /// The user's newer intent, as an API call records it.
    fn intend(&self, id: &str, to: InstanceState) {
        let mut records = self.records.lock().unwrap();
        let r = records.iter_mut().find(|r| r.id == id).unwrap();
        r.state = to;
        r.generation += 1;
        r.state_reason = Some(StateReason::user_initiated_shutdown());
    }

    fn live(&self, id: &str, running_only: bool) -> bool {
        self.records.lock().unwrap().iter().any(|r| {
            r.id == id
                && (r.state == InstanceState::Running
                    || (!running_only && r.state == InstanceState::Pending))
        })
    }
}

#[async_trait]
impl ControlPlane for FakeControl {
    async fn instances(&self) -> ControlResult<Vec<HostInstance>> {
        Ok(wire(&*self.records.lock().unwrap()))
    }

    async fn instance(&self, id: &str) -> ControlResult<Option<HostInstance>> {
        let records = self.records.lock().unwrap();
        Ok(wire(&records.iter().find(|r| r.id == id).cloned()))
    }

    async fn transition(&self, t: Transition) -> ControlResult<bool> {
        let t = wire(&t);
        let mut records = self.records.lock().unwrap();
        let Some(r) = records
            .iter_mut()
            .find(|r| r.id == t.instance_id && r.generation == t.generation)
        else {
            return Ok(false);
        };
        r.state = t.to;
        r.state_reason = t.reason;
        r.generation += 1;
        drop(records);
        self.note(format!("{} -> {}", t.instance_id, t.to));
        Ok(true)
    }

    async fn clear_reboot(&self, id: &str) -> ControlResult<()> {
        self.note(format!("clear reboot {id}"));
        Ok(())
    }

    async fn host_net(&self, _account_id: &str, vpc_id: &str) -> ControlResult<HostNet> {
        Ok(wire(&HostNet {
            id: vpc_id.to_string(),
            subnets: vec![("10.0.1.0/24".parse().unwrap(), "10.0.1.1".parse().unwrap())],
        }))
    }

    async fn firewalls(&self) -> ControlResult<HashMap<String, Firewall>> {
        let mut all = self.firewalls.lock().unwrap().clone();
        all.retain(|id, _| self.live(id, false));
        Ok(wire(&all))
    }

    async fn firewall(&self, id: &str) -> ControlResult<Firewall> {
        Ok(wire(
            &self
                .firewalls
                .lock()
                .unwrap()
                .get(id)
                .cloned()
                .unwrap_or_default(),
        ))
    }

    async fn public_ips(&self) -> ControlResult<Vec<PublicIp>> {
        let records = self.records.lock().unwrap().clone();
        Ok(wire(
            &records
                .into_iter()
                .filter(|r| r.state == InstanceState::Running)
                .map(|r| PublicIp {
                    public: self.public.lock().unwrap().get(&r.id).copied(),
                    instance_id: r.id,
                    private_ip: r.private_ip,
                })
                .collect::<Vec<_>>(),
        ))
    }

    async fn public_ip(&self, id: &str) -> ControlResult<Option<Ipv4Addr>> {
        Ok(self.public.lock().unwrap().get(id).copied())
    }

    async fn release_public_ip(&self, id: &str) -> ControlResult<()> {
        self.public.lock().unwrap().remove(id);
        self.note(format!("release public {id}"));
        Ok(())
    }

    async fn disassociate_elastic_ip(&self, id: &str) -> ControlResult<()> {
        self.note(format!("disassociate {id}"));
        Ok(())
    }

    // No volumes on this fake host (`volume_tests.rs` covers them through the local plane).
    async fn volume_jobs(&self) -> ControlResult<Vec<VolumeJob>> {
        Ok(Vec::new())
    }
    async fn volume_done(&self, _: VolumeJob, _: VolumeOutcome) -> ControlResult<()> {
        Ok(())
    }
    async fn snapshot_jobs(&self) -> ControlResult<Vec<SnapshotJob>> {
        Ok(Vec::new())
    }
    async fn snapshot_done(&self, _: SnapshotJob, _: Result<(), String>) -> ControlResult<()> {
        Ok(())
    }
    async fn guest_volumes(&self, _: &str) -> ControlResult<Vec<(String, String)>> {
        Ok(Vec::new())
    }
    async fn image_jobs(&self) -> ControlResult<Vec<crate::image_snapshots::ImageJob>> {
        Ok(Vec::new())
    }
    async fn image_done(
        &self,
        _: crate::image_snapshots::ImageJob,
        _: crate::image_snapshots::ImageOutcome,
    ) -> ControlResult<()> {
        Ok(())
    }

    async fn purge_terminated(&self, ended_before_ms: i64) -> ControlResult<Vec<String>> {
        let mut records = self.records.lock().unwrap();
        let gone: Vec<String> = records
            .iter()
            .filter(|r| r.ended_at.is_some_and(|t| t < ended_before_ms))
            .map(|r| r.id.clone())
            .collect();
        records.retain(|r| !gone.contains(&r.id));
        Ok(gone)
    }
}

fn pending(id: &str) -> HostInstance {
    HostInstance {
        id: id.into(),
        account_id: "111111111111".into(),
        reservation_id: "r-0123456789abcdef0".into(),
        image_id: "ami-0123456789abcdef0".into(),
        rootfs: "/images/debian-12".into(),
        instance_type: "t3.small".into(),
        public_key: Some("ssh-ed25519 AAAA alice".into()),
        login_user: "admin".into(),
        state: InstanceState::Pending,
        generation: 1,
        state_since: 1_764_000_000_000,
        state_reason: None,
        launch_time: 1_764_000_000_000,
        region: "eu-west-1".into(),
        az: "eu-west-1a".into(),
        subnet_id: "subnet-1".into(),
        vpc_id: "vpc-1".into(),
        private_ip: "10.0.1.5".into(),
        mac: "02:00:0a:00:01:05".into(),
        root_volume_gib: 8,
        shutdown_behavior: ShutdownBehavior::Stop,
        user_data: None,
        hypervisor: Hypervisor::Container,
        reboot_requested: false,
        force_stop: false,
        ended_at: None,
    }
}

async fn until(what: &str, within: Duration, ok: impl Fn() -> bool) {
    let started = Instant::now();
    while !ok() {
        assert!(started.elapsed() < within, "{what} within {within:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The agent launches, secures, maps and stops an instance knowing the records only through
/// the trait, and a wake-up reaches it at once rather than at its next periodic sweep.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_runs_an_instance_through_the_control_plane_trait_alone() {
    let id = "i-0123456789abcdef0";
    let control = Arc::new(FakeControl::default());
    control.records.lock().unwrap().push(pending(id));
    let ssh = Firewall {
        ingress: vec![FirewallRule {
            protocol: gureum_types::IpProtocol::Tcp,
            ports: Some((22, 22)),
            peer: FirewallPeer::Cidr("0.0.0.0/0".parse().unwrap()),
        }],
        egress: vec![],
    };
    control
        .firewalls
        .lock()
        .unwrap()
        .insert(id.into(), ssh.clone());
    let public: Ipv4Addr = "127.100.0.9".parse().unwrap();
    control.public.lock().unwrap().insert(id.into(), public);
    let (compute, network) = (
        Arc::new(FakeCompute::default()),
        Arc::new(FakeNetwork::default()),
    );
    let agent = Agent::new(
        control.clone(),
        Host {
            compute: compute.clone(),
            network: network.clone(),
            guest_files: vec![],
            host_keys: None,
            volumes: None,
            images: None,
        },
        Arc::new(crate::clock::SystemClock),
    );
    let wake = agent.wake.clone();
    let running = agent.spawn();

    until("the launch", Duration::from_secs(1), || {
        control.state_of(id) == InstanceState::Running
    })
    .await;
    assert_eq!(compute.state_of(id), GuestState::Running);
    let spec = compute.spec_of(id).unwrap();
    assert_eq!((spec.vcpus, spec.memory_mib), (2, 2048), "t3.small");
    assert_eq!(spec.hostname, "ip-10-0-1-5");
    let env = String::from_utf8(spec.files.last().unwrap().contents.clone()).unwrap();
    assert!(env.contains("REGION='eu-west-1'"), "{env}");
    let nic = spec.nic.unwrap();
    assert_eq!(
        (nic.net_id.as_str(), nic.gateway),
        ("vpc-1", "10.0.1.1".parse().unwrap())
    );
    assert_eq!(network.firewalls.lock().unwrap()[id], ssh);
    assert_eq!(
        network.public.lock().unwrap()[id],
        (public, "10.0.1.5".parse().unwrap())
    );
    assert!(network.nets.lock().unwrap().iter().any(|n| n.id == "vpc-1"));

    // The API records a stop and wakes the agent: handled well before the next periodic
    // sweep would have noticed it.
    tokio::time::sleep(Duration::from_millis(100)).await;
    control.intend(id, InstanceState::Stopping);
    let asked = Instant::now();
    wake.notify_one();
    until("the stop", Duration::from_secs(1), || {
        control.state_of(id) == InstanceState::Stopped
    })
    .await;
    assert!(asked.elapsed() < crate::agent::SWEEP_EVERY / 2);
    assert_eq!(compute.state_of(id), GuestState::Stopped);
    assert!(!network.attached.lock().unwrap().contains_key(id));
    // The VPC's network goes once no instance runs in it (the default one stays).
    until("the network released", Duration::from_secs(3), || {
        !network.nets.lock().unwrap().iter().any(|n| n.id == "vpc-1")
    })
    .await;
    assert_eq!(
        *control.writes.lock().unwrap(),
        [
            format!("{id} -> running"),
            format!("release public {id}"),
            format!("{id} -> stopped"),
        ]
    );
    // The stop kept the reason it began with (the user's).
    let stopped = control.instance(id).await.unwrap().unwrap();
    assert_eq!(
        stopped.state_reason,
        Some(StateReason::user_initiated_shutdown())
    );
    let status = agent.status();
    let converge = status
        .iter()
        .find(|s| s.task == crate::tasks::Task::Converge)
        .unwrap();
    assert!(converge.runs >= 2 && converge.failures == 0, "{converge:?}");
    running.abort();
}

/// A host step that loses the race with the user's newer intent is not recorded: the
/// transition names the generation the agent acted on.
#[tokio::test]
async fn a_stale_transition_is_refused_and_the_newer_intent_wins() {
    let id = "i-0123456789abcdef1";
    let control = Arc::new(FakeControl::default());
    let mut r = pending(id);
    r.state = InstanceState::Running;
    control.records.lock().unwrap().push(r.clone());
    control.intend(id, InstanceState::ShuttingDown);
    let (compute, network) = (
        Arc::new(FakeCompute::default()),
        Arc::new(FakeNetwork::default()),
    );
    let agent = Agent::new(
        control.clone(),
        Host {
            compute: compute.clone(),
            network: network.clone(),
            guest_files: vec![],
            host_keys: None,
            volumes: None,
            images: None,
        },
        Arc::new(crate::clock::SystemClock),
    );
    // What the agent saw before the user's terminate: a running instance with no guest.
    assert!(!agent
        .record(&r, InstanceState::Stopping, None)
        .await
        .unwrap());
    assert_eq!(control.state_of(id), InstanceState::ShuttingDown);
    for _ in 0..4 {
        agent.sweep().await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(control.state_of(id), InstanceState::Terminated);
    assert_eq!(
        *control.writes.lock().unwrap(),
        [
            format!("disassociate {id}"),
            format!("release public {id}"),
            format!("{id} -> terminated"),
        ]
    );
}
