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

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gureum_store::instances::{InstanceField, InstanceRow};
use gureum_types::{InstanceState, ShutdownBehavior, StateReason, StateReasonCode};

use crate::host::{GuestFile, GuestSpec, GuestState, HostNet, Nic};
use crate::instances::{limits_of, TERMINATED_VISIBLE_MS};
use crate::tasks::{Task, TaskStatus};
use crate::vpcs::{default_host_net, gateway};
use crate::{Cloud, CoreError, CoreResult};

/// How often the agent looks at every instance even when nothing woke it.
pub const SWEEP_EVERY: Duration = Duration::from_secs(2);
/// How often leaked host resources are looked for.
pub const LEAK_SWEEP_EVERY: Duration = Duration::from_secs(30);
/// How often budgets are checked against the month's cost.
pub const BUDGET_CHECK_EVERY: Duration = Duration::from_secs(60);

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

impl Cloud {
    /// Wake the agent: something changed.
    pub fn wake_agent(&self) {
        self.notify.notify_one();
    }

    /// Run the agent until the process ends. Does nothing without a host.
    pub fn spawn_agent(&self) -> Option<tokio::task::JoinHandle<()>> {
        self.host.as_ref()?;
        let cloud = self.clone();
        Some(tokio::spawn(async move {
            let tasks = cloud.tasks.clone();
            // The default VPCs' network exists while the server runs, so a client's first
            // packets to a new instance's private address go to its bridge (held there until
            // the instance is plugged in), never out of the host's default route.
            let c = cloud.clone();
            tasks
                .run(
                    Task::DefaultNetwork,
                    async move { c.ensure_default_net().await },
                )
                .await;
            cloud.spawn_warm_pool();
            let mut last_leak_sweep = std::time::Instant::now() - LEAK_SWEEP_EVERY;
            let mut last_budget_check = std::time::Instant::now() - BUDGET_CHECK_EVERY;
            loop {
                if last_budget_check.elapsed() >= BUDGET_CHECK_EVERY {
                    let c = cloud.clone();
                    tasks
                        .run(Task::Budgets, async move { c.check_budgets().await })
                        .await;
                    last_budget_check = std::time::Instant::now();
                }
                if last_leak_sweep.elapsed() >= LEAK_SWEEP_EVERY {
                    let c = cloud.clone();
                    tasks
                        .run(Task::LeakSweep, async move { c.sweep_leaks().await })
                        .await;
                    last_leak_sweep = std::time::Instant::now();
                }
                cloud.sweep().await;
                tokio::select! {
                    _ = cloud.notify.notified() => {}
                    _ = tokio::time::sleep(SWEEP_EVERY) => {}
                }
            }
        }))
    }

    /// The status of the host agent's background tasks (see `tasks.rs`).
    pub fn agent_status(&self) -> Vec<TaskStatus> {
        self.tasks.snapshot()
    }

    /// Launches recorded for a hypervisor this host cannot run (left `pending` by an earlier
    /// server that could, or one that died mid-launch) end as EC2's failed launches do:
    /// `terminated`, with `Server.InternalError` and the reason. Returns how many.
    pub async fn fail_stranded_launches(&self) -> CoreResult<usize> {
        let rows = self
            .blocking(|s| s.read(|c| Ok(c.instances().all()?)))
            .await?;
        let mut failed = 0;
        for r in rows.iter().filter(|r| r.state == InstanceState::Pending) {
            let Some(why) = self.unavailable.reason(r.hypervisor) else {
                continue;
            };
            let reason =
                StateReason::internal_error(format!("the host cannot run instances: {why}"));
            if self
                .record(r, InstanceState::Terminated, Some(reason))
                .await?
            {
                failed += 1;
            }
        }
        Ok(failed)
    }

    /// One pass of the agent: start a convergence task for each instance that needs work,
    /// then bring firewalls, public addresses and networks in line and forget old
    /// terminated instances, each step a supervised task (see `tasks.rs`): one that fails
    /// or panics is recorded and the others still run.
    pub async fn sweep(&self) {
        let c = self.clone();
        let purge = self
            .tasks
            .run(Task::Converge, async move { c.converge_all().await })
            .await;
        let c = self.clone();
        self.tasks
            .run(Task::Firewalls, async move { c.sync_firewalls().await })
            .await;
        let c = self.clone();
        self.tasks
            .run(Task::PublicIps, async move { c.sync_public_ips().await })
            .await;
        let c = self.clone();
        self.tasks
            .run(Task::Networks, async move { c.release_unused_nets().await })
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
            let c = self.clone();
            self.tasks
                .run(Task::Purge, async move {
                    c.blocking(move |s| {
                        s.write(|tx| Ok(tx.instances().purge_terminated(before)?))
                    })
                    .await
                })
                .await;
        }
    }

    /// Start a convergence task for each instance that needs work. Returns the time before
    /// which terminated instances may be forgotten, if any is that old.
    async fn converge_all(&self) -> CoreResult<Option<i64>> {
        let mut rows = self
            .blocking(|s| s.read(|c| Ok(c.instances().all()?)))
            .await?;
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
            let cloud = self.clone();
            tokio::spawn(async move {
                let id = r.id.clone();
                if let Err(e) = cloud.converge(r).await {
                    tracing::warn!(instance = %id, error = %e, "converging failed");
                }
                cloud.in_flight.release(&id);
            });
        }
        Ok(purge.then_some(now - TERMINATED_VISIBLE_MS))
    }

    /// Destroy host resources that no live instance owns. Returns how many leaked guests were
    /// left alone because other host work holds them (a destroy already under way).
    pub async fn sweep_leaks(&self) -> CoreResult<usize> {
        let Some(host) = self.host.clone() else {
            return Ok(0);
        };
        // The host's guests first, then the records: a warm guest or an instance created in
        // between is then known by the time it is judged.
        let guests = host.compute.list().await?;
        let rows = self
            .blocking(|s| s.read(|c| Ok(c.instances().all()?)))
            .await?;
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
    fn guest_files(&self, r: &InstanceRow) -> Vec<GuestFile> {
        let hostname = format!("ip-{}", r.private_ip.replace('.', "-"));
        let env = [
            ("INSTANCE_ID", r.id.as_str()),
            ("HOSTNAME", hostname.as_str()),
            ("LOGIN_USER", r.login_user.as_str()),
            ("LOCAL_IPV4", r.private_ip.as_str()),
            ("MAC", r.mac.as_str()),
            ("AVAILABILITY_ZONE", r.az.as_str()),
            ("REGION", self.region.name.as_str()),
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
        if let Some(h) = &self.host {
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

    pub(crate) fn spec_of(&self, r: &InstanceRow, netns: Option<PathBuf>) -> GuestSpec {
        self.guest_spec(r, netns)
    }

    pub(crate) async fn nic_of(&self, r: &InstanceRow) -> CoreResult<Nic> {
        Ok(self.nic(r).await?.1)
    }

    fn guest_spec_with_nic(&self, r: &InstanceRow, netns: Option<PathBuf>, nic: Nic) -> GuestSpec {
        let mut spec = self.guest_spec(r, netns);
        spec.nic = Some(nic);
        spec
    }

    fn guest_spec(&self, r: &InstanceRow, netns: Option<PathBuf>) -> GuestSpec {
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
    async fn nic(&self, r: &InstanceRow) -> CoreResult<(HostNet, Nic)> {
        let ip: std::net::Ipv4Addr = r
            .private_ip
            .parse()
            .map_err(|_| CoreError::corrupt("ip", &r.private_ip))?;
        let net = self.host_net_of(&r.account_id, &r.vpc_id).await?;
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

    async fn host_net_of(&self, account: &str, vpc_id: &str) -> CoreResult<HostNet> {
        let (account, vpc) = (account.to_string(), vpc_id.to_string());
        let (is_default, subnets) = self
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

    /// Record a transition the host made happen. `false` if the user changed the record in
    /// the meantime (the next sweep handles the newer state).
    async fn record(
        &self,
        r: &InstanceRow,
        to: InstanceState,
        reason: Option<StateReason>,
    ) -> CoreResult<bool> {
        let now = self.clock.now_millis();
        let (id, gen) = (r.id.clone(), r.generation);
        let ended = (to == InstanceState::Terminated).then_some(now);
        let ok = self
            .blocking(move |s| {
                s.write(|tx| {
                    Ok(tx.instances().transition(
                        &id,
                        gen,
                        to,
                        None,
                        reason.as_ref(),
                        ended,
                        now,
                    )?)
                })
            })
            .await?;
        if ok {
            tracing::info!(instance = %r.id, from = %r.state, to = %to, "state");
            self.wake_agent();
        }
        Ok(ok)
    }

    /// Every running or pending instance's security groups, pushed where they changed.
    pub async fn sync_firewalls(&self) -> CoreResult<()> {
        let Some(host) = self.host.clone() else {
            return Ok(());
        };
        let wanted = self
            .blocking(|s| {
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
            .await?;
        let changed: Vec<(String, crate::host::Firewall)> = {
            let mut applied = self.applied_firewalls.lock().expect("poisoned");
            applied.retain(|id, _| wanted.contains_key(id));
            wanted
                .into_iter()
                .filter(|(id, fw)| applied.get(id) != Some(fw))
                .collect()
        };
        for (id, fw) in changed {
            host.network.set_firewall(&id, &fw).await?;
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
        let Some(host) = self.host.clone() else {
            return Ok(());
        };
        let pool = self.public_pool;
        let now = self.clock.now_millis();
        let wanted = self
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
                            .and_then(|p| p.parse::<std::net::Ipv4Addr>().ok())
                            .filter(|_| routed.contains(&r.subnet_id));
                        out.push((r.id, r.private_ip, public));
                    }
                    Ok(out)
                })
            })
            .await?;
        let changed: Vec<_> = {
            let applied = self.applied_public.lock().expect("poisoned");
            wanted
                .into_iter()
                .filter(|(id, _, public)| applied.get(id) != Some(public))
                .collect()
        };
        // Unmap first, then map: an address moving from one instance to another (an Elastic
        // IP reassociated) must leave the first before the kernel gives it to the second.
        // One failure does not hold up the others; the next sweep retries it.
        let mut failed = None;
        for pass_maps in [false, true] {
            for (id, private, public) in &changed {
                let result = match (public, private.parse::<std::net::Ipv4Addr>()) {
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

    /// Remove the bridge of every non-default VPC network this agent made once no live
    /// instance uses it (the VPC was deleted, or its last instance stopped).
    async fn ensure_default_net(&self) -> Result<(), crate::host::HostError> {
        let Some(host) = self.host.clone() else {
            return Ok(());
        };
        host.network
            .ensure_net(&crate::vpcs::default_host_net())
            .await?;
        self.ensured_nets
            .lock()
            .expect("poisoned")
            .insert(crate::vpcs::DEFAULT_NET.to_string());
        Ok(())
    }

    async fn release_unused_nets(&self) -> CoreResult<()> {
        let Some(host) = self.host.clone() else {
            return Ok(());
        };
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
            .blocking(|s| {
                s.read(|c| {
                    Ok(c.instances()
                        .all()?
                        .into_iter()
                        .filter(|r| {
                            r.state != InstanceState::Terminated
                                && r.state != InstanceState::Stopped
                        })
                        .map(|r| r.vpc_id)
                        .collect())
                })
            })
            .await?;
        for net in ensured.into_iter().filter(|n| !live.contains(n)) {
            host.network.remove_net(&net).await?;
            self.ensured_nets.lock().expect("poisoned").remove(&net);
        }
        Ok(())
    }

    /// The instance's firewall as the records say now (for its first push, before the boot).
    async fn firewall_of(&self, id: &str) -> CoreResult<crate::host::Firewall> {
        let id = id.to_string();
        self.blocking(move |s| {
            s.read(|c| {
                let rows = c.instances().all()?;
                let rules = c.security_groups().all_rules()?;
                let members = c.security_groups().memberships()?;
                Ok(crate::firewall::firewalls(
                    &rows,
                    &rules,
                    &members,
                    &c.vpcs().default_vpc_ids()?,
                )
                .remove(&id)
                .unwrap_or_default())
            })
        })
        .await
    }

    /// [`Self::bring_up`] once a launch slot is free (see `launch_slots`).
    async fn bring_up_in_turn(&self, r: &InstanceRow) -> Result<(), LaunchError> {
        let _slot = self.launch_slots.acquire().await;
        self.bring_up(r).await
    }

    async fn bring_up(&self, r: &InstanceRow) -> Result<(), LaunchError> {
        let host = self.host.clone().expect("agent runs with a host");
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
        let fw = self.firewall_of(&r.id).await?;
        host.network.set_firewall(&r.id, &fw).await?;
        self.applied_firewalls
            .lock()
            .expect("poisoned")
            .insert(r.id.clone(), fw);
        // Its public address (an Elastic IP, or one from the pool when it takes one), recorded
        // before the kernel maps it; mapped only when the subnet routes to an internet gateway.
        let (id, pool, subnet) = (r.id.clone(), self.public_pool, r.subnet_id.clone());
        let now = self.clock.now_millis();
        let (public, routed) = self
            .blocking(move |s| {
                s.write(|tx| {
                    let ip = tx.instances().assign_public_ip(&id, pool, now)?;
                    let routed = tx.routing().internet_routed_subnets()?.contains(&subnet);
                    Ok((ip, routed))
                })
            })
            .await?;
        let mapped = public.and_then(|p| p.parse().ok()).filter(|_| routed);
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
    async fn converge(&self, r: InstanceRow) -> CoreResult<()> {
        let host = self.host.clone().expect("agent runs with a host");
        let state = r.state;
        match state {
            InstanceState::Pending => match self.bring_up_in_turn(&r).await {
                Ok(()) => {
                    if self.record(&r, InstanceState::Running, None).await? && r.reboot_requested {
                        self.clear_reboot(&r.id).await?;
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
                            self.clear_reboot(&r.id).await?;
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
                let (id, now) = (r.id.clone(), self.clock.now_millis());
                self.blocking(move |s| {
                    s.write(|tx| crate::addresses::release_for_terminated(tx, &id, now))
                })
                .await?;
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
        let Some(host) = self.host.clone() else {
            return Ok(false);
        };
        let rows = self
            .blocking(|s| s.read(|c| Ok(c.instances().all()?)))
            .await?;
        if rows
            .iter()
            .any(|r| r.state != InstanceState::Terminated && r.state != InstanceState::Stopped)
        {
            return Ok(false);
        }
        // Another cloud on this host (a second data dir) may still have guests on the network.
        if !host.network.list().await?.is_empty() {
            return Ok(false);
        }
        host.network.teardown().await?;
        Ok(true)
    }

    async fn release_public_ip(&self, id: &str) -> CoreResult<()> {
        let id = id.to_string();
        self.applied_firewalls.lock().expect("poisoned").remove(&id);
        self.applied_public.lock().expect("poisoned").remove(&id);
        let now = self.clock.now_millis();
        self.blocking(move |s| s.write(|tx| Ok(tx.instances().release_public_ip(&id, now)?)))
            .await
    }

    async fn clear_reboot(&self, id: &str) -> CoreResult<()> {
        let id = id.to_string();
        self.blocking(move |s| {
            s.write(|tx| {
                Ok(tx
                    .instances()
                    .set_field(&id, InstanceField::RebootRequested(false))?)
            })
        })
        .await
    }
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
fn shutdown_reason(r: &InstanceRow) -> Option<StateReason> {
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
}
