//! The host agent: converges the host to the instance records, level-triggered. It runs on
//! start-up (finishing or undoing whatever a crash interrupted), whenever the API records a
//! change, and periodically (to notice guests that shut themselves down or were killed from
//! outside). Every host step is idempotent, so running any of them twice is harmless, and every
//! state change is compare-and-swap, so a user's newer intent always wins over a slow host step.
//!
//! | recorded state  | host work                                  | then                    |
//! |-----------------|--------------------------------------------|-------------------------|
//! | pending         | network attach, volume prepare, guest start | running (CAS)           |
//! | running         | reboot if asked; if the guest is gone:      | stopped or terminated   |
//! |                 | its shutdown behaviour                      |                         |
//! | stopping        | guest stop (graceful or forced), detach     | stopped                 |
//! | shutting-down   | guest destroy (volume too), detach          | terminated              |
//! | stopped         | make sure no guest runs                     | –                       |
//! | terminated      | nothing; forgotten after an hour            | –                       |
//!
//! Host resources that belong to no live instance (a crash between a host step and its
//! record) are destroyed by the leak sweep.
//!
//! The [`Agent`] is the host's side of the seam with the control plane (`control.rs`): it
//! owns the host drivers and what it knows of the host (work in flight, the firewalls and
//! public addresses it applied, the networks it made, launch slots, the warm pool) and
//! reaches the records only through an `Arc<dyn ControlPlane>`. `gureum up` runs it in the
//! API's process ([`crate::Cloud::with_local_agent`]); a cluster's host runs it alone, with
//! a network client as its control plane.

use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use gureum_types::{InstanceState, ShutdownBehavior, StateReason, StateReasonCode};
use tokio::sync::{Notify, Semaphore};

use crate::clock::Clock;
use crate::control::{ControlPlane, HostAgent, HostInstance, PublicIp, Transition, WarmImage};
use crate::host::{Firewall, GuestFile, GuestSpec, GuestState, HostNet, Nic};
use crate::instances::{limits_of, TERMINATED_VISIBLE_MS};
use crate::tasks::{Task, TaskStatus, Tasks};
use crate::warm::WarmPool;
use crate::{CoreError, CoreResult};

/// How often the agent looks at every instance even when nothing woke it.
pub const SWEEP_EVERY: Duration = Duration::from_secs(2);
/// How often leaked host resources are looked for.
pub const LEAK_SWEEP_EVERY: Duration = Duration::from_secs(30);

/// Instances with host work in progress, so one sweep does not start a second task for them.
#[derive(Default)]
pub struct InFlight(Mutex<HashSet<String>>);

impl InFlight {
    pub(crate) fn try_claim(&self, id: &str) -> bool {
        self.0
            .lock()
            .expect("in-flight poisoned")
            .insert(id.to_string())
    }
    pub(crate) fn release(&self, id: &str) {
        self.0.lock().expect("in-flight poisoned").remove(id);
    }
}

fn parse_mac(mac: &str) -> [u8; 6] {
    let mut out = [0u8; 6];
    for (i, p) in mac.split(':').take(6).enumerate() {
        out[i] = u8::from_str_radix(p, 16).unwrap_or(0);
    }
    out
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// The host agent: the host's drivers and what it keeps of the host's state, converging the
/// host to the records it reads through its [`ControlPlane`]. Cheap to clone (its parts are
/// shared), as every task it spawns holds one.
///
/// Adding a background task: a variant in [`Task`] (with its name and its place in
/// `Task::ALL`), a method here doing one activation (records through `self.control`, the host
/// through `self.host`; a read or write the control plane does not offer yet is a new method
/// on [`ControlPlane`] with plain-data arguments, implemented by
/// [`crate::control::LocalControlPlane`]), and one `self.tasks.run(Task::…, …)` line: in
/// [`Agent::sweep`] if it runs on every pass (every wake-up and every [`SWEEP_EVERY`]), or in
/// [`Agent::spawn`]'s loop behind its own period, as the leak sweep is.
#[derive(Clone)]
pub struct Agent {
    pub(crate) control: Arc<dyn ControlPlane>,
    pub(crate) host: Arc<Host>,
    pub(crate) clock: Arc<dyn Clock>,
    /// Notified when the records changed (by the API in one process, by the agent itself
    /// after each transition it records).
    pub(crate) wake: Arc<Notify>,
    /// Its background tasks and their status.
    pub(crate) tasks: Arc<Tasks>,
    pub(crate) in_flight: Arc<InFlight>,
    /// The firewall last pushed to the network driver per instance.
    pub(crate) applied_firewalls: Arc<Mutex<HashMap<String, Firewall>>>,
    /// The public address last mapped per instance (`None`: mapped to nothing).
    pub(crate) applied_public: Arc<Mutex<HashMap<String, Option<Ipv4Addr>>>>,
    /// Host networks the agent made (non-default ones are removed when unused).
    pub(crate) ensured_nets: Arc<Mutex<HashSet<String>>>,
    /// Launches setting up on the host at once: one per CPU. A burst of launches then starts
    /// its first guests at once instead of every guest late, behind ten `runc` processes that
    /// outweigh all the guests together (host processes are not in the guests' cgroups).
    pub(crate) launch_slots: Arc<Semaphore>,
    /// Image copies (`CreateImage`) running at once: one. Each reads and writes a whole
    /// root volume; a burst of them from one account then queues (its images stay `pending`)
    /// instead of taking the host's disk from every instance.
    pub(crate) image_copies: Arc<Semaphore>,
    /// Guests booted ahead of launches (see `warm.rs`); none unless asked for.
    pub(crate) warm: Arc<WarmPool>,
}

impl Agent {
    /// An agent for `host`'s drivers over `control`'s records, with its own wake-up, its own
    /// task status and no warm pool.
    pub fn new(control: Arc<dyn ControlPlane>, host: Host, clock: Arc<dyn Clock>) -> Agent {
        Agent {
            control,
            host: Arc::new(host),
            tasks: Arc::new(Tasks::new(clock.clone())),
            clock,
            wake: Arc::default(),
            in_flight: Arc::default(),
            applied_firewalls: Arc::default(),
            applied_public: Arc::default(),
            ensured_nets: Arc::default(),
            launch_slots: Arc::new(Semaphore::new(
                std::thread::available_parallelism().map_or(2, |n| n.get()),
            )),
            image_copies: Arc::new(Semaphore::new(1)),
            warm: Arc::new(WarmPool::new(0)),
        }
    }

    /// Wake up on `wake` (shared with whoever records changes) instead of its own.
    pub fn with_wake(mut self, wake: Arc<Notify>) -> Agent {
        self.wake = wake;
        self
    }

    /// Report into `tasks` (shared with the control plane's own tasks in one process).
    pub fn with_tasks(mut self, tasks: Arc<Tasks>) -> Agent {
        self.tasks = tasks;
        self
    }

    /// Keep `guests` of the warm image booted ahead of launches (see `warm.rs`).
    pub fn with_warm_pool(mut self, guests: usize) -> Agent {
        self.warm = Arc::new(WarmPool::new(guests));
        self
    }

    /// Wake the agent: something changed.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// The status of the agent's background tasks (see `tasks.rs`).
    pub fn status(&self) -> Vec<TaskStatus> {
        self.tasks.snapshot()
    }

    /// Run the agent until the process ends.
    pub fn spawn(&self) -> tokio::task::JoinHandle<()> {
        let agent = self.clone();
        tokio::spawn(async move {
            let tasks = agent.tasks.clone();
            // The default VPCs' network exists while the server runs, so a client's first
            // packets to a new instance's private address go to its bridge (held there until
            // the instance is plugged in), never out of the host's default route.
            let a = agent.clone();
            tasks
                .run(
                    Task::DefaultNetwork,
                    async move { a.ensure_default_net().await },
                )
                .await;
            agent.spawn_warm_pool();
            let mut last_leak_sweep = std::time::Instant::now() - LEAK_SWEEP_EVERY;
            loop {
                if last_leak_sweep.elapsed() >= LEAK_SWEEP_EVERY {
                    let a = agent.clone();
                    tasks
                        .run(Task::LeakSweep, async move { a.sweep_leaks().await })
                        .await;
                    last_leak_sweep = std::time::Instant::now();
                }
                agent.sweep().await;
                tokio::select! {
                    _ = agent.wake.notified() => {}
                    _ = tokio::time::sleep(SWEEP_EVERY) => {}
                }
            }
        })
    }

    /// One pass of the agent: start a convergence task for each instance that needs work,
    /// then bring firewalls, public addresses and networks in line and forget old
    /// terminated instances, each step a supervised task (see `tasks.rs`): one that fails
    /// or panics is recorded and the others still run.
    pub async fn sweep(&self) {
        let a = self.clone();
        let purge = self
            .tasks
            .run(Task::Converge, async move { a.converge_all().await })
            .await;
        let a = self.clone();
        self.tasks
            .run(Task::Firewalls, async move { a.sync_firewalls().await })
            .await;
        let a = self.clone();
        self.tasks
            .run(Task::PublicIps, async move { a.sync_public_ips().await })
            .await;
        let a = self.clone();
        self.tasks
            .run(Task::Networks, async move { a.release_unused_nets().await })
            .await;
        // Volume steps (copies of whole volumes among them) run on their own, never holding
        // up the instances' sweep; a volume with a step in flight is skipped meanwhile.
        let c = self.clone();
        tokio::spawn(async move {
            let tasks = c.tasks.clone();
            tasks
                .run(Task::Volumes, async move { c.converge_volumes().await })
                .await;
        });
        if let Some(Some(before)) = purge {
            let a = self.clone();
            self.tasks
                .run(Task::Purge, async move {
                    a.control.purge_terminated(before).await
                })
                .await;
        }
    }

    /// Start a convergence task for each instance that needs work. Returns the time before
    /// which terminated instances may be forgotten, if any is that old.
    async fn converge_all(&self) -> CoreResult<Option<i64>> {
        let mut rows = self.control.instances().await?;
        // Oldest launch first: launches take the host's launch slots in the order they came.
        rows.sort_by(|a, b| (a.launch_time, &a.id).cmp(&(b.launch_time, &b.id)));
        let now = self.clock.now_millis();
        let mut purge = false;
        for r in rows {
            if r.state == InstanceState::Terminated {
                purge |= r.ended_at.is_some_and(|t| now - t > TERMINATED_VISIBLE_MS);
                continue;
            }
            if r.state == InstanceState::Stopped {
                continue;
            }
            if !self.in_flight.try_claim(&r.id) {
                continue;
            }
            let agent = self.clone();
            tokio::spawn(async move {
                let id = r.id.clone();
                if let Err(e) = agent.converge(r).await {
                    tracing::warn!(instance = %id, error = %e, "converging failed");
                }
                agent.in_flight.release(&id);
            });
        }
        Ok(purge.then_some(now - TERMINATED_VISIBLE_MS))
    }

    /// Destroy host resources that no live instance owns. Returns how many leaked guests were
    /// left alone because other host work holds them (a destroy already under way).
    pub async fn sweep_leaks(&self) -> CoreResult<usize> {
        let host = &self.host;
        // The host's guests first, then the records: a warm guest or an instance created in
        // between is then known by the time it is judged.
        let guests = host.compute.list().await?;
        let rows = self.control.instances().await?;
        let recorded: HashSet<String> = rows.iter().map(|r| r.id.clone()).collect();
        let mut live: HashSet<String> = rows
            .iter()
            .filter(|r| r.state != InstanceState::Terminated)
            .map(|r| r.id.clone())
            .collect();
        live.extend(self.warm_ids(&recorded));
        let has_guest: HashSet<String> = rows
            .iter()
            .filter(|r| r.state != InstanceState::Terminated && r.state != InstanceState::Stopped)
            .map(|r| r.id.clone())
            .collect();
        let mut busy = 0;
        for id in guests.into_iter().filter(|id| !live.contains(id)) {
            if !self.in_flight.try_claim(&id) {
                busy += 1;
                continue;
            }
            tracing::info!(instance = %id, "destroying leaked guest");
            let r = host.compute.destroy(&id).await;
            self.in_flight.release(&id);
            r?;
        }
        // The network driver's attachments are host-wide; only those of instances this
        // store knows are ours to judge (an attachment is always recorded before it is made).
        for id in host.network.list().await? {
            if recorded.contains(&id) && !has_guest.contains(&id) && self.in_flight.try_claim(&id) {
                tracing::info!(instance = %id, "removing leaked network attachment");
                let r = host.network.detach(&id).await;
                self.in_flight.release(&id);
                r?;
            }
        }
        Ok(busy)
    }

    /// The files the guest agent reads at boot.
    fn guest_files(&self, r: &HostInstance) -> Vec<GuestFile> {
        let hostname = format!("ip-{}", r.private_ip.replace('.', "-"));
        let env = [
            ("INSTANCE_ID", r.id.as_str()),
            ("HOSTNAME", hostname.as_str()),
            ("LOGIN_USER", r.login_user.as_str()),
            ("LOCAL_IPV4", r.private_ip.as_str()),
            ("MAC", r.mac.as_str()),
            ("AVAILABILITY_ZONE", r.az.as_str()),
            ("REGION", r.region.as_str()),
            ("INSTANCE_TYPE", r.instance_type.as_str()),
            ("AMI_ID", r.image_id.as_str()),
            ("RESERVATION_ID", r.reservation_id.as_str()),
        ]
        .iter()
        .map(|(k, v)| format!("{k}={}\n", shell_quote(v)))
        .collect::<String>();
        let mut files = vec![GuestFile {
            path: PathBuf::from("/var/lib/gureum/authorized_keys"),
            contents: r
                .public_key
                .as_ref()
                .map(|k| format!("{k}\n").into_bytes())
                .unwrap_or_default(),
            mode: 0o600,
        }];
        if let Some(ud) = &r.user_data {
            files.push(GuestFile {
                path: PathBuf::from("/var/lib/gureum/user-data"),
                contents: ud.clone(),
                mode: 0o600,
            });
        }
        let h = &self.host;
        files.extend(h.guest_files.iter().cloned());
        // The first boot only (the launch's own `pending`): host keys made ahead of time,
        // so the guest does not spend a second of CPU on them while others boot. The
        // fingerprint file names the instance, so a copy inherited through an image is
        // not taken for this instance's own.
        let first_boot = r.state == InstanceState::Pending && r.state_since == r.launch_time;
        if let Some(set) = h
            .host_keys
            .as_ref()
            .filter(|_| first_boot)
            .and_then(|k| k.take())
        {
            let dir = PathBuf::from("/var/lib/gureum");
            for (name, private, public) in set.keys {
                files.push(GuestFile {
                    path: dir.join(format!("{name}.pub")),
                    contents: public,
                    mode: 0o644,
                });
                files.push(GuestFile {
                    path: dir.join(name),
                    contents: private,
                    mode: 0o600,
                });
            }
            let mut block = format!("# {}\n", r.id).into_bytes();
            block.extend(set.fingerprints);
            files.push(GuestFile {
                path: dir.join("host-key-fingerprints"),
                contents: block,
                mode: 0o644,
            });
        }
        // Last: a warm guest's agent starts on the instance once this file is there, so
        // everything else must be in place before it.
        files.push(GuestFile {
            path: PathBuf::from("/var/lib/gureum/instance.env"),
            contents: env.into_bytes(),
            mode: 0o644,
        });
        files
    }

    fn guest_spec_with_nic(&self, r: &HostInstance, netns: Option<PathBuf>, nic: Nic) -> GuestSpec {
        let mut spec = self.guest_spec(r, netns);
        spec.nic = Some(nic);
        spec
    }

    fn guest_spec(&self, r: &HostInstance, netns: Option<PathBuf>) -> GuestSpec {
        let (vcpus, memory_mib) = limits_of(&r.instance_type);
        GuestSpec {
            instance_id: r.id.clone(),
            image_rootfs: PathBuf::from(&r.rootfs),
            volume_gib: r.root_volume_gib,
            hostname: format!("ip-{}", r.private_ip.replace('.', "-")),
            vcpus,
            memory_mib,
            pids_max: 4096 * vcpus as u64,
            netns,
            files: self.guest_files(r),
            hypervisor: r.hypervisor,
            nic: None,
            warm: false,
            volumes: Vec::new(),
        }
    }

    /// The host network of the instance's VPC (the shared one for default VPCs, its own bridge
    /// for any other) and the instance's interface on it.
    async fn nic(&self, r: &HostInstance) -> CoreResult<(HostNet, Nic)> {
        let ip: Ipv4Addr = r
            .private_ip
            .parse()
            .map_err(|_| CoreError::corrupt("ip", &r.private_ip))?;
        let net = self.control.host_net(&r.account_id, &r.vpc_id).await?;
        let (cidr, gw) = net
            .subnets
            .iter()
            .find(|(c, _)| c.contains(&ip))
            .copied()
            .ok_or(CoreError::NoHostSubnet(ip))?;
        let nic = Nic {
            instance_id: r.id.clone(),
            net_id: net.id.clone(),
            mac: parse_mac(&r.mac),
            ip,
            prefix_len: cidr.prefix_len(),
            gateway: gw,
            tap: match r.hypervisor {
                gureum_types::Hypervisor::Vm => true,
                gureum_types::Hypervisor::Container => false,
            },
            netns_of: None,
        };
        Ok((net, nic))
    }

    /// Record a transition the host made happen. `false` if the user changed the record in
    /// the meantime (the next sweep handles the newer state).
    pub(crate) async fn record(
        &self,
        r: &HostInstance,
        to: InstanceState,
        reason: Option<StateReason>,
    ) -> CoreResult<bool> {
        let ok = self
            .control
            .transition(Transition {
                instance_id: r.id.clone(),
                generation: r.generation,
                to,
                reason,
            })
            .await?;
        if ok {
            tracing::info!(instance = %r.id, from = %r.state, to = %to, "state");
            self.wake();
        }
        Ok(ok)
    }

    /// Every running or pending instance's security groups, pushed where they changed.
    pub async fn sync_firewalls(&self) -> CoreResult<()> {
        let wanted = self.control.firewalls().await?;
        let changed: Vec<(String, Firewall)> = {
            let mut applied = self.applied_firewalls.lock().expect("poisoned");
            applied.retain(|id, _| wanted.contains_key(id));
            wanted
                .into_iter()
                .filter(|(id, fw)| applied.get(id) != Some(fw))
                .collect()
        };
        for (id, fw) in changed {
            self.host.network.set_firewall(&id, &fw).await?;
            self.applied_firewalls
                .lock()
                .expect("poisoned")
                .insert(id, fw);
        }
        Ok(())
    }

    /// Every running instance's public address, mapped in the kernel where it changed: an
    /// Elastic IP associated or moved, an auto-assigned address given back after a
    /// disassociation, a route to an internet gateway added or removed.
    pub async fn sync_public_ips(&self) -> CoreResult<()> {
        let host = &self.host;
        let wanted = self.control.public_ips().await?;
        let changed: Vec<PublicIp> = {
            let applied = self.applied_public.lock().expect("poisoned");
            wanted
                .into_iter()
                .filter(|p| applied.get(&p.instance_id) != Some(&p.public))
                .collect()
        };
        // Unmap first, then map: an address moving from one instance to another (an Elastic
        // IP reassociated) must leave the first before the kernel gives it to the second.
        // One failure does not hold up the others; the next sweep retries it.
        let mut failed = None;
        for pass_maps in [false, true] {
            for PublicIp {
                instance_id: id,
                private_ip: private,
                public,
            } in &changed
            {
                let result = match (public, private.parse::<Ipv4Addr>()) {
                    (Some(p), Ok(private)) if pass_maps => {
                        host.network.map_public_ip(id, *p, private).await
                    }
                    (Some(_), Ok(_)) => host.network.unmap_public_ip(id).await,
                    _ if pass_maps => continue,
                    _ => host.network.unmap_public_ip(id).await,
                };
                match result {
                    Ok(()) => {
                        let now_applied = if pass_maps { *public } else { None };
                        self.applied_public
                            .lock()
                            .expect("poisoned")
                            .insert(id.clone(), now_applied);
                    }
                    Err(e) => {
                        tracing::warn!(instance = %id, error = %e, "public address mapping");
                        failed = Some(e);
                    }
                }
            }
        }
        match failed {
            Some(e) => Err(e.into()),
            None => Ok(()),
        }
    }

    /// Bring up the default VPCs' host network.
    async fn ensure_default_net(&self) -> Result<(), crate::host::HostError> {
        self.host
            .network
            .ensure_net(&crate::vpcs::default_host_net())
            .await?;
        self.ensured_nets
            .lock()
            .expect("poisoned")
            .insert(crate::vpcs::DEFAULT_NET.to_string());
        Ok(())
    }

    /// Remove the bridge of every non-default VPC network this agent made once no live
    /// instance uses it (the VPC was deleted, or its last instance stopped).
    async fn release_unused_nets(&self) -> CoreResult<()> {
        let ensured: Vec<String> = self
            .ensured_nets
            .lock()
            .expect("poisoned")
            .iter()
            .filter(|n| n.as_str() != crate::vpcs::DEFAULT_NET)
            .cloned()
            .collect();
        if ensured.is_empty() {
            return Ok(());
        }
        let live: HashSet<String> = self
            .control
            .instances()
            .await?
            .into_iter()
            .filter(|r| r.state != InstanceState::Terminated && r.state != InstanceState::Stopped)
            .map(|r| r.vpc_id)
            .collect();
        for net in ensured.into_iter().filter(|n| !live.contains(n)) {
            self.host.network.remove_net(&net).await?;
            self.ensured_nets.lock().expect("poisoned").remove(&net);
        }
        Ok(())
    }

    /// [`Self::bring_up`] once a launch slot is free (see `launch_slots`).
    async fn bring_up_in_turn(&self, r: &HostInstance) -> Result<(), LaunchError> {
        let _slot = self.launch_slots.acquire().await;
        self.bring_up(r).await
    }

    async fn bring_up(&self, r: &HostInstance) -> Result<(), LaunchError> {
        let host = &self.host;
        let (net, mut nic) = self.nic(r).await?;
        // A warm guest taken for this launch: its interface goes into the namespace it runs in.
        nic.netns_of = host.compute.warm_guest(&r.id).await?.map(|g| g.pid);
        host.network.ensure_net(&net).await?;
        self.ensured_nets
            .lock()
            .expect("poisoned")
            .insert(net.id.clone());
        let netns = host.network.attach(&nic).await?;
        // Security groups apply before the guest runs.
        let fw = self
            .control
            .firewall(&r.id)
            .await
            .map_err(CoreError::from)?;
        host.network.set_firewall(&r.id, &fw).await?;
        self.applied_firewalls
            .lock()
            .expect("poisoned")
            .insert(r.id.clone(), fw);
        // Its public address (an Elastic IP, or one from the pool when it takes one), recorded
        // before the kernel maps it; mapped only when the subnet routes to an internet gateway.
        let mapped = self
            .control
            .public_ip(&r.id)
            .await
            .map_err(CoreError::from)?;
        match mapped {
            Some(p) => host.network.map_public_ip(&r.id, p, nic.ip).await?,
            None => host.network.unmap_public_ip(&r.id).await?,
        }
        self.applied_public
            .lock()
            .expect("poisoned")
            .insert(r.id.clone(), mapped);
        let mut spec = self.guest_spec(r, netns);
        spec.nic = Some(nic);
        spec.volumes = self.guest_volumes(&r.id).await?;
        host.compute.prepare(&spec).await?;
        host.compute.start(&spec).await?;
        Ok(())
    }

    /// Converge one instance (its claim is held by the caller).
    async fn converge(&self, r: HostInstance) -> CoreResult<()> {
        let host = &self.host;
        match r.state {
            InstanceState::Pending => match self.bring_up_in_turn(&r).await {
                Ok(()) => {
                    if self.record(&r, InstanceState::Running, None).await? && r.reboot_requested {
                        self.control.clear_reboot(&r.id).await?;
                    }
                }
                Err(e) => {
                    // A launch that cannot boot ends as EC2's do: terminated, with the reason.
                    tracing::error!(instance = %r.id, error = %e, "launch failed");
                    let _ = host.compute.destroy(&r.id).await;
                    let _ = host.network.detach(&r.id).await;
                    self.record(
                        &r,
                        InstanceState::Terminated,
                        Some(StateReason::internal_error(e)),
                    )
                    .await?;
                }
            },
            InstanceState::Running => {
                match host.compute.state(&r.id).await? {
                    GuestState::Running => {
                        if r.reboot_requested {
                            let nic = self.nic(&r).await?.1;
                            let netns = host.network.attach(&nic).await?;
                            host.compute
                                .reboot(&self.guest_spec_with_nic(&r, netns, nic))
                                .await?;
                            self.control.clear_reboot(&r.id).await?;
                        }
                    }
                    GuestState::Stopped | GuestState::Absent
                        if guest_rebooted(&*host.compute, &r.id) =>
                    {
                        // `sudo reboot` inside: systemd in a container exits instead of
                        // rebooting, so the host boots it again; the instance stays running.
                        tracing::info!(instance = %r.id, "guest rebooted itself");
                        let nic = self.nic(&r).await?.1;
                        let netns = host.network.attach(&nic).await?;
                        host.compute
                            .start(&self.guest_spec_with_nic(&r, netns, nic))
                            .await?;
                    }
                    GuestState::Stopped | GuestState::Absent => {
                        // The guest shut itself down (`sudo poweroff`) or was killed from outside.
                        let reason = StateReason::instance_initiated_shutdown();
                        let to = match r.shutdown_behavior {
                            ShutdownBehavior::Terminate => InstanceState::ShuttingDown,
                            ShutdownBehavior::Stop => InstanceState::Stopping,
                        };
                        self.record(&r, to, Some(reason)).await?;
                    }
                }
            }
            InstanceState::Stopping => {
                host.compute.stop(&r.id, r.force_stop).await?;
                host.network.detach(&r.id).await?;
                // As on AWS, an auto-assigned public address is released on stop.
                self.release_public_ip(&r.id).await?;
                let reason = shutdown_reason(&r);
                self.record(&r, InstanceState::Stopped, reason).await?;
            }
            InstanceState::ShuttingDown => {
                host.compute.destroy(&r.id).await?;
                host.network.detach(&r.id).await?;
                // As on AWS, a terminated instance's Elastic IP is disassociated.
                self.control.disassociate_elastic_ip(&r.id).await?;
                self.release_public_ip(&r.id).await?;
                let reason = shutdown_reason(&r);
                self.record(&r, InstanceState::Terminated, reason).await?;
            }
            InstanceState::Stopped | InstanceState::Terminated => {}
        }
        Ok(())
    }

    /// On a clean shutdown with no guest left to serve, remove the host network too, so a
    /// stopped cloud leaves no bridge or firewall table behind. Guests keep running across a
    /// restart otherwise.
    pub async fn release_idle_host(&self) -> CoreResult<bool> {
        let rows = self.control.instances().await?;
        if rows
            .iter()
            .any(|r| r.state != InstanceState::Terminated && r.state != InstanceState::Stopped)
        {
            return Ok(false);
        }
        // Another cloud on this host (a second data dir) may still have guests on the network.
        if !self.host.network.list().await?.is_empty() {
            return Ok(false);
        }
        self.host.network.teardown().await?;
        Ok(true)
    }

    async fn release_public_ip(&self, id: &str) -> CoreResult<()> {
        self.applied_firewalls.lock().expect("poisoned").remove(id);
        self.applied_public.lock().expect("poisoned").remove(id);
        Ok(self.control.release_public_ip(id).await?)
    }

    /// `CreateImage`'s copy of an instance's root volume, in its turn (see `image_copies`)
    /// and with the instance held against the agent's own work while its guest is down.
    async fn copy_instance(
        &self,
        instance_id: &str,
        image_id: &str,
        no_reboot: bool,
    ) -> Result<PathBuf, CopyError> {
        // One copy at a time host-wide, waited for before the instance is touched.
        let _copy = self.image_copies.clone().acquire_owned().await;
        let mut claimed = false;
        for _ in 0..600 {
            if self.in_flight.try_claim(instance_id) {
                claimed = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if !claimed {
            return Err(CopyError::Busy);
        }
        let r = self
            .snapshot_instance(instance_id, image_id, no_reboot)
            .await;
        self.in_flight.release(instance_id);
        r
    }

    async fn snapshot_instance(
        &self,
        instance_id: &str,
        image_id: &str,
        no_reboot: bool,
    ) -> Result<PathBuf, CopyError> {
        let host = &self.host;
        let row = self
            .control
            .instance(instance_id)
            .await
            .map_err(CoreError::from)?
            .ok_or(CopyError::Gone)?;
        let running = row.state == InstanceState::Running;
        let (netns, nic) = if running {
            let nic = self.nic(&row).await?.1;
            (host.network.attach(&nic).await?, Some(nic))
        } else {
            (None, None)
        };
        let mut spec = self.guest_spec(&row, netns);
        spec.nic = nic;
        if running && !no_reboot {
            host.compute.stop(instance_id, false).await?;
        }
        let snap = host.compute.snapshot(&spec, image_id).await;
        if running && !no_reboot {
            host.compute.start(&spec).await?;
        }
        Ok(snap?)
    }
}

#[async_trait]
impl HostAgent for Agent {
    async fn console_output(&self, instance_id: &str, max_bytes: usize) -> Vec<u8> {
        self.host
            .compute
            .console_output(instance_id, max_bytes)
            .unwrap_or_default()
    }

    async fn image_instance(
        &self,
        instance_id: &str,
        image_id: &str,
        no_reboot: bool,
    ) -> Result<String, String> {
        self.copy_instance(instance_id, image_id, no_reboot)
            .await
            .map(|p| p.display().to_string())
            .map_err(|e| e.to_string())
    }

    fn set_warm_image(&self, image: WarmImage) {
        self.warm.set_image(image);
    }

    fn note_launch(&self) {
        self.warm.note_launch();
    }

    fn take_warm_guest(&self, rootfs: &str, volume_gib: u32) -> Option<String> {
        self.warm.take(rootfs, volume_gib)
    }
    fn has_volume_pool(&self) -> bool {
        self.host.volumes.is_some()
    }
}

/// Why `CreateImage`'s copy failed; its text becomes the image's `StateReason`.
#[derive(Debug, thiserror::Error)]
enum CopyError {
    #[error("the instance stayed busy")]
    Busy,
    #[error("the instance is gone")]
    Gone,
    /// A host step, in the driver's words.
    #[error(transparent)]
    Host(#[from] crate::host::HostError),
    /// The core's own work between the steps (the records they need).
    #[error(transparent)]
    Core(#[from] CoreError),
}

/// Why a launch failed: a host step, or the core's own work between the steps (the records
/// they need). Its text, either's own, becomes the instance's `StateReason`.
#[derive(Debug, thiserror::Error)]
enum LaunchError {
    #[error(transparent)]
    Host(#[from] crate::host::HostError),
    #[error(transparent)]
    Core(#[from] CoreError),
}

/// The reason a stop or termination ends with: the one it began with (its message kept),
/// the guest's own shutdown or else the user's.
fn shutdown_reason(r: &HostInstance) -> Option<StateReason> {
    r.state_reason.as_ref().map(|began| StateReason {
        code: if began.code == StateReasonCode::ClientInstanceInitiatedShutdown {
            StateReasonCode::ClientInstanceInitiatedShutdown
        } else {
            StateReasonCode::ClientUserInitiatedShutdown
        },
        message: began.message.clone(),
    })
}

/// Whether a guest that is no longer running ended with a reboot (systemd's last console
/// words) rather than a power-off or a kill.
fn guest_rebooted(compute: &dyn crate::host::Compute, id: &str) -> bool {
    let tail = compute.console_output(id, 4096).unwrap_or_default();
    let text = String::from_utf8_lossy(&tail);
    let last = text
        .rfind("Reached target")
        .map(|i| &text[i..])
        .unwrap_or("");
    last.contains("System Reboot")
        || last.contains("reboot.target")
        || text.trim_end().ends_with("Rebooting.")
}

/// Real drivers plus what the agent injects into every guest.
pub struct Host {
    pub compute: Arc<dyn crate::host::Compute>,
    pub network: Arc<dyn crate::host::Network>,
    /// The guest agent's files (installed into every instance, so imported images get it).
    pub guest_files: Vec<GuestFile>,
    /// Ready-made RSA host keys for first boots, if the host keeps a pool.
    pub host_keys: Option<Arc<dyn crate::host::HostKeys>>,
    /// Where EBS volumes and snapshots keep their bytes; without it `CreateVolume` answers
    /// `InsufficientVolumeCapacity` (see `volumes.rs`).
    pub volumes: Option<Arc<dyn crate::host::Volumes>>,
    /// Where images made on this host (from snapshots) keep their root filesystems; without
    /// it an image registered from a snapshot fails (see `image_snapshots.rs`).
    pub images: Option<Arc<dyn crate::host::HostImages>>,
}
