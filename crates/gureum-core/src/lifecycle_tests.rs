//! The instance lifecycle against fake drivers: every transition, the agent's convergence,
//! crash recovery, idempotency and the error cases.

use std::sync::Arc;

use gureum_ec2::ops as ec2;
use gureum_ec2::ops::instances::RunInstances;
use gureum_ec2::{Request, Resource};
use gureum_types::model::{Instance, Tag, TagSpecification};
use gureum_types::{ErrorCode, InstanceState};

use crate::fake::{FakeCompute, FakeNetwork};
use crate::host::GuestState;
use crate::images::NewImage;
use crate::{testing, Agent, Cloud, Ctx, Host, Limits};

pub(crate) struct World {
    _dir: tempfile::TempDir,
    pub(crate) cloud: Cloud,
    /// The host agent beside `cloud`, as `gureum up` runs it (not spawned: tests sweep).
    pub(crate) agent: Agent,
    pub(crate) ctx: Ctx,
    pub(crate) compute: Arc<FakeCompute>,
    network: Arc<FakeNetwork>,
    pub(crate) image: String,
}

pub(crate) fn world() -> World {
    world_with_clock(Arc::new(crate::clock::FixedClock::new(1_764_000_000_000)))
}

fn world_with_clock(clock: Arc<crate::clock::FixedClock>) -> World {
    world_with(clock, None)
}

fn world_with(
    clock: Arc<crate::clock::FixedClock>,
    host_keys: Option<Arc<dyn crate::host::HostKeys>>,
) -> World {
    world_with_pool(clock, host_keys, 0, None)
}

/// A world whose host has a volume pool (see `volume_tests.rs`).
pub(crate) fn world_with_volumes(volumes: Arc<dyn crate::host::Volumes>) -> World {
    world_with_pool(
        Arc::new(crate::clock::FixedClock::new(1_764_000_000_000)),
        None,
        0,
        Some(volumes),
    )
}

/// A world whose host has a volume pool and makes images from snapshots (see
/// `image_snapshot_tests.rs`).
pub(crate) fn world_with_images(
    volumes: Arc<dyn crate::host::Volumes>,
    images: Arc<dyn crate::host::HostImages>,
) -> World {
    world_with_host(
        Arc::new(crate::clock::FixedClock::new(1_764_000_000_000)),
        None,
        0,
        (Some(volumes), Some(images)),
    )
}

pub(crate) fn world_with_pool(
    clock: Arc<crate::clock::FixedClock>,
    host_keys: Option<Arc<dyn crate::host::HostKeys>>,
    warm_guests: usize,
    volumes: Option<Arc<dyn crate::host::Volumes>>,
) -> World {
    world_with_host(clock, host_keys, warm_guests, (volumes, None))
}

type Storage = (
    Option<Arc<dyn crate::host::Volumes>>,
    Option<Arc<dyn crate::host::HostImages>>,
);

fn world_with_host(
    clock: Arc<crate::clock::FixedClock>,
    host_keys: Option<Arc<dyn crate::host::HostKeys>>,
    warm_guests: usize,
    (volumes, images): Storage,
) -> World {
    let (dir, cloud, ctx) = testing::cloud_with_clock(clock);
    let compute = Arc::new(FakeCompute::default());
    let network = Arc::new(FakeNetwork::default());
    let (cloud, agent) = cloud
        .with_limits(Limits {
            instances_per_account: 5,
            instances_per_host: 8,
        })
        .with_local_agent(
            Host {
                compute: compute.clone(),
                network: network.clone(),
                guest_files: vec![],
                host_keys,
                volumes,
                images,
            },
            warm_guests,
        );
    let sys = cloud.system_account_sync().unwrap();
    let image = cloud
        .register_image_sync(
            &sys,
            NewImage {
                name: "debian-12-amd64-test".into(),
                description: "test image; login user: admin".into(),
                login_user: "admin".into(),
                root_size_gib: 8,
                rootfs: Some("/images/debian-12".into()),
                state: "available".parse().unwrap(),
                public: true,
                owner_alias: Some("gureum".into()),
                source: "recipe:debian-12".into(),
                source_instance_id: None,
                source_image_id: None,
                tags: vec![],
            },
        )
        .unwrap();
    World {
        _dir: dir,
        cloud,
        agent,
        ctx,
        compute,
        network,
        image,
    }
}

pub(crate) fn run(image: &str, count: u32) -> RunInstances {
    RunInstances {
        image_id: image.into(),
        instance_type: Some("t2.micro".into()),
        min_count: count,
        max_count: count,
        fingerprint: format!("ImageId={image}&Count={count}"),
        ..Default::default()
    }
}

impl World {
    /// Run one resource's action; its own result back.
    pub(crate) async fn call<A: Resource>(&self, action: A) -> Result<A::Response, ErrorCode> {
        self.cloud
            .dispatch(
                &self.ctx,
                Request {
                    action: action.into(),
                    dry_run: false,
                },
            )
            .await
            .map(|r| A::Response::try_from(r).expect("a result of the action's resource"))
            .map_err(|e| e.to_api().code)
    }

    pub(crate) async fn launch(&self, req: RunInstances) -> Vec<Instance> {
        match self
            .call(ec2::instances::Action::RunInstances(Box::new(req)))
            .await
            .unwrap()
        {
            ec2::instances::Response::RunInstances { reservation, .. } => reservation.instances,
            _ => panic!(),
        }
    }

    pub(crate) async fn describe(&self, id: &str) -> Instance {
        match self
            .call(ec2::instances::Action::DescribeInstances {
                instance_ids: vec![id.into()],
                filters: vec![],
                page: Default::default(),
            })
            .await
            .unwrap()
        {
            ec2::instances::Response::DescribeInstances { reservations, .. } => {
                reservations[0].instances[0].clone()
            }
            _ => panic!(),
        }
    }

    /// StopInstances (graceful) for one instance, then let the agent converge.
    pub(crate) async fn stop(&self, id: &str) {
        self.call(ec2::instances::Action::StopInstances {
            instance_ids: vec![id.into()],
            force: false,
        })
        .await
        .unwrap();
        self.settle().await;
    }

    /// StartInstances for one instance, then let the agent converge.
    pub(crate) async fn start(&self, id: &str) {
        self.call(ec2::instances::Action::StartInstances {
            instance_ids: vec![id.into()],
        })
        .await
        .unwrap();
        self.settle().await;
    }

    /// Let the agent converge (the fakes are instant; each sweep advances one step).
    pub(crate) async fn settle(&self) {
        for _ in 0..6 {
            self.agent.sweep().await;
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
}

#[tokio::test]
async fn launch_stop_start_terminate() {
    let w = world();
    let mut req = run(&w.image, 1);
    req.key_name = None;
    req.user_data = Some(b"#!/bin/sh\necho hi\n".to_vec());
    req.tag_specifications = vec![TagSpecification {
        resource_type: "instance".into(),
        tags: vec![Tag {
            key: "Name".into(),
            value: "web".into(),
        }],
    }];
    let inst = w.launch(req).await;
    assert_eq!(inst.len(), 1);
    let i = &inst[0];
    assert_eq!(i.state, InstanceState::Pending);
    assert_eq!(i.private_ip, "172.31.0.4");
    assert_eq!(
        i.private_dns_name("us-east-1"),
        "ip-172-31-0-4.ec2.internal"
    );
    assert_eq!(i.tags[0].value, "web");
    assert_eq!(i.availability_zone, "us-east-1a");

    w.settle().await;
    let running = w.describe(&i.id).await;
    assert_eq!(running.state, InstanceState::Running);
    assert_eq!(w.compute.state_of(&i.id), GuestState::Running);
    // A public address from the pool, mapped in the kernel; the default group's rules applied.
    assert_eq!(running.public_ip.as_deref(), Some("127.100.0.1"));
    assert_eq!(
        running.public_dns_name("us-east-1"),
        "ec2-127-100-0-1.compute-1.amazonaws.com"
    );
    assert_eq!(running.security_groups[0].1, "default");
    assert!(w.network.public.lock().unwrap().contains_key(&i.id));
    let fw = w
        .network
        .firewalls
        .lock()
        .unwrap()
        .get(&i.id)
        .cloned()
        .unwrap();
    assert_eq!(fw.egress.len(), 1, "all egress");
    assert!(matches!(&fw.ingress[0].peer, crate::host::FirewallPeer::Members(m) if m.len() == 1));
    let spec = w.compute.spec_of(&i.id).unwrap();
    assert_eq!((spec.vcpus, spec.memory_mib, spec.volume_gib), (1, 1024, 8));
    assert_eq!(spec.hostname, "ip-172-31-0-4");
    assert!(spec
        .files
        .iter()
        .any(|f| f.path.ends_with("user-data") && f.contents.starts_with(b"#!")));
    assert!(w.network.attached.lock().unwrap().contains_key(&i.id));

    // Stop: stopping, then stopped with the network detached; the volume stays.
    let ec2::instances::Response::StateChanges(ch) = w
        .call(ec2::instances::Action::StopInstances {
            instance_ids: vec![i.id.clone()],
            force: false,
        })
        .await
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(
        (ch[0].previous, ch[0].current),
        (InstanceState::Running, InstanceState::Stopping)
    );
    w.settle().await;
    let d = w.describe(&i.id).await;
    assert_eq!(d.state, InstanceState::Stopped);
    assert_eq!(
        d.state_reason.unwrap().code.as_str(),
        "Client.UserInitiatedShutdown"
    );
    assert!(d.state_transition_reason.starts_with("User initiated ("));
    assert!(!w.network.attached.lock().unwrap().contains_key(&i.id));
    assert_eq!(w.compute.state_of(&i.id), GuestState::Stopped);
    assert_eq!(d.public_ip, None, "released on stop");

    // Resize while stopped, then start.
    assert_eq!(
        w.call(ec2::instances::Action::ModifyInstanceAttribute {
            instance_id: i.id.clone(),
            change: gureum_ec2::ops::instances::InstanceAttributeChange::InstanceType(
                "t9.nope".into()
            )
        })
        .await
        .unwrap_err(),
        ErrorCode::InvalidInstanceAttributeValue
    );
    w.call(ec2::instances::Action::ModifyInstanceAttribute {
        instance_id: i.id.clone(),
        change: gureum_ec2::ops::instances::InstanceAttributeChange::InstanceType(
            "t2.small".into(),
        ),
    })
    .await
    .unwrap();
    w.start(&i.id).await;
    assert_eq!(w.describe(&i.id).await.state, InstanceState::Running);
    assert_eq!(w.compute.spec_of(&i.id).unwrap().memory_mib, 2048);
    // Resizing a running instance is refused.
    assert_eq!(
        w.call(ec2::instances::Action::ModifyInstanceAttribute {
            instance_id: i.id.clone(),
            change: gureum_ec2::ops::instances::InstanceAttributeChange::InstanceType(
                "t2.micro".into()
            )
        })
        .await
        .unwrap_err(),
        ErrorCode::IncorrectInstanceState
    );

    // Terminate: shutting-down, then terminated; everything on the host is gone.
    w.call(ec2::instances::Action::TerminateInstances {
        instance_ids: vec![i.id.clone()],
    })
    .await
    .unwrap();
    w.settle().await;
    let d = w.describe(&i.id).await;
    assert_eq!(d.state, InstanceState::Terminated);
    assert_eq!(w.compute.state_of(&i.id), GuestState::Absent);
    assert!(w.network.attached.lock().unwrap().is_empty());
    // Terminating again is a no-op; starting is refused.
    w.call(ec2::instances::Action::TerminateInstances {
        instance_ids: vec![i.id.clone()],
    })
    .await
    .unwrap();
    assert_eq!(
        w.call(ec2::instances::Action::StartInstances {
            instance_ids: vec![i.id.clone()]
        })
        .await
        .unwrap_err(),
        ErrorCode::IncorrectInstanceState
    );
    // Its address is not handed out again while the terminated instance is still listed.
    let again = w.launch(run(&w.image, 1)).await;
    assert_eq!(again[0].private_ip, "172.31.0.5");
}

/// Hands out numbered key sets.
#[derive(Default)]
struct CountingKeys(std::sync::atomic::AtomicU32);

impl crate::host::HostKeys for CountingKeys {
    fn take(&self) -> Option<crate::host::HostKeySet> {
        let n = self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Some(crate::host::HostKeySet {
            keys: vec![(
                "ssh_host_ed25519_key".into(),
                format!("private {n}").into_bytes(),
                format!("ssh-ed25519 AAAA{n}").into_bytes(),
            )],
            fingerprints: format!("256 SHA256:{n} no comment (ED25519)\n").into_bytes(),
        })
    }
}

#[tokio::test]
async fn the_first_boot_gets_host_keys_made_ahead_and_later_boots_keep_theirs() {
    let keys = Arc::new(CountingKeys::default());
    let clock = Arc::new(crate::clock::FixedClock::new(1_764_000_000_000));
    let w = world_with(clock.clone(), Some(keys.clone()));
    let i = w.launch(run(&w.image, 1)).await.remove(0);
    w.settle().await;
    let file = |name: &str| {
        w.compute
            .spec_of(&i.id)
            .unwrap()
            .files
            .iter()
            .find(|f| f.path == std::path::Path::new("/var/lib/gureum").join(name))
            .map(|f| (String::from_utf8_lossy(&f.contents).to_string(), f.mode))
    };
    assert_eq!(
        file("ssh_host_ed25519_key"),
        Some(("private 0".into(), 0o600))
    );
    assert_eq!(
        file("ssh_host_ed25519_key.pub"),
        Some(("ssh-ed25519 AAAA0".into(), 0o644))
    );
    // The fingerprint block names the instance it was made for.
    assert_eq!(
        file("host-key-fingerprints").unwrap().0,
        format!("# {}\n256 SHA256:0 no comment (ED25519)\n", i.id)
    );

    // Stop and start: the guest keeps the keys it installed; no new set is taken.
    w.stop(&i.id).await;
    clock.advance(60_000);
    w.start(&i.id).await;
    assert_eq!(w.describe(&i.id).await.state, InstanceState::Running);
    assert_eq!(file("ssh_host_ed25519_key"), None);
    assert_eq!(keys.0.load(std::sync::atomic::Ordering::SeqCst), 1);
}

#[tokio::test]
async fn guest_initiated_shutdown_follows_the_shutdown_behaviour() {
    let w = world();
    let a = w.launch(run(&w.image, 1)).await.remove(0);
    let mut req = run(&w.image, 1);
    req.shutdown_behavior = Some("terminate".parse().unwrap());
    req.fingerprint.push_str("&terminate");
    let b = w.launch(req).await.remove(0);
    w.settle().await;
    w.compute.kill(&a.id);
    w.compute.kill(&b.id);
    w.settle().await;
    let a = w.describe(&a.id).await;
    assert_eq!(a.state, InstanceState::Stopped);
    assert_eq!(
        a.state_reason.unwrap().code.as_str(),
        "Client.InstanceInitiatedShutdown"
    );
    assert_eq!(w.describe(&b.id).await.state, InstanceState::Terminated);
}

#[tokio::test]
async fn failed_boot_terminates_with_the_reason_and_cleans_up() {
    let w = world();
    let i = w.launch(run(&w.image, 1)).await.remove(0);
    w.compute.fail_start.lock().unwrap().insert(i.id.clone());
    w.settle().await;
    let d = w.describe(&i.id).await;
    assert_eq!(d.state, InstanceState::Terminated);
    assert_eq!(
        d.state_reason.unwrap().code.as_str(),
        "Server.InternalError"
    );
    assert_eq!(w.compute.state_of(&i.id), GuestState::Absent);
    assert!(w.network.attached.lock().unwrap().is_empty());
}

#[tokio::test]
async fn client_token_is_idempotent() {
    let w = world();
    let mut req = run(&w.image, 2);
    req.client_token = Some("tok-1".into());
    let first = w.launch(req.clone()).await;
    let second = w.launch(req.clone()).await;
    assert_eq!(first.len(), 2);
    assert_eq!(
        first.iter().map(|i| &i.id).collect::<Vec<_>>(),
        second.iter().map(|i| &i.id).collect::<Vec<_>>()
    );
    req.fingerprint.push_str("&InstanceType=t2.small");
    assert_eq!(
        w.call(ec2::instances::Action::RunInstances(Box::new(req)))
            .await
            .unwrap_err(),
        ErrorCode::IdempotentParameterMismatch
    );
}

#[tokio::test]
async fn errors_change_nothing() {
    let w = world();
    let bad = |f: fn(&mut RunInstances)| {
        let mut r = run(&w.image, 1);
        f(&mut r);
        r
    };
    let cases: Vec<(RunInstances, ErrorCode)> = vec![
        (
            bad(|r| r.image_id = "ami-0123456789abcdef0".into()),
            ErrorCode::InvalidAMIIDNotFound,
        ),
        (
            bad(|r| r.image_id = "ami-zz".into()),
            ErrorCode::InvalidAMIIDMalformed,
        ),
        (
            bad(|r| r.instance_type = Some("t9.huge".into())),
            ErrorCode::InvalidParameterValue,
        ),
        (
            bad(|r| r.key_name = Some("nope".into())),
            ErrorCode::InvalidKeyPairNotFound,
        ),
        (
            bad(|r| {
                r.min_count = 6;
                r.max_count = 6
            }),
            ErrorCode::InstanceLimitExceeded,
        ),
        (
            bad(|r| r.subnet_id = Some("subnet-0123456789abcdef0".into())),
            ErrorCode::InvalidSubnetIDNotFound,
        ),
        (
            bad(|r| r.private_ip_address = Some("10.0.0.5".into())),
            ErrorCode::InvalidParameterValue,
        ),
        (
            bad(|r| r.security_groups = vec!["web".into()]),
            ErrorCode::InvalidGroupNotFound,
        ),
        (
            bad(|r| {
                r.block_devices = vec![gureum_ec2::ops::instances::BlockDevice {
                    device_name: "/dev/xvda".into(),
                    volume_size: Some(2),
                    ..Default::default()
                }]
            }),
            ErrorCode::InvalidBlockDeviceMapping,
        ),
    ];
    for (req, code) in cases {
        assert_eq!(
            w.call(ec2::instances::Action::RunInstances(Box::new(req)))
                .await
                .unwrap_err(),
            code
        );
    }
    let ec2::instances::Response::DescribeInstances { reservations, .. } = w
        .call(ec2::instances::Action::DescribeInstances {
            instance_ids: vec![],
            filters: vec![],
            page: Default::default(),
        })
        .await
        .unwrap()
    else {
        panic!()
    };
    assert!(reservations.is_empty());

    // Ids: malformed and missing; a batch with one bad id changes nothing.
    let i = w.launch(run(&w.image, 1)).await.remove(0);
    assert_eq!(
        w.call(ec2::instances::Action::StopInstances {
            instance_ids: vec![i.id.clone(), "i-nope".into()],
            force: false
        })
        .await
        .unwrap_err(),
        ErrorCode::InvalidInstanceIDMalformed
    );
    assert_eq!(
        w.call(ec2::instances::Action::StopInstances {
            instance_ids: vec![i.id.clone(), "i-0123456789abcdef0".into()],
            force: false
        })
        .await
        .unwrap_err(),
        ErrorCode::InvalidInstanceIDNotFound
    );
    assert_eq!(w.describe(&i.id).await.state, InstanceState::Pending);

    // DisableApiTermination.
    w.call(ec2::instances::Action::ModifyInstanceAttribute {
        instance_id: i.id.clone(),
        change: gureum_ec2::ops::instances::InstanceAttributeChange::DisableApiTermination(true),
    })
    .await
    .unwrap();
    assert_eq!(
        w.call(ec2::instances::Action::TerminateInstances {
            instance_ids: vec![i.id.clone()]
        })
        .await
        .unwrap_err(),
        ErrorCode::OperationNotPermitted
    );

    // Another account sees none of it.
    let bob = testing::other(&w.cloud, "bob");
    let e = w
        .cloud
        .dispatch(
            &bob,
            Request {
                action: ec2::instances::Action::TerminateInstances {
                    instance_ids: vec![i.id.clone()],
                }
                .into(),
                dry_run: false,
            },
        )
        .await
        .unwrap_err();
    assert_eq!(e.to_api().code, ErrorCode::InvalidInstanceIDNotFound);
}

#[tokio::test]
async fn host_capacity_and_partial_launches() {
    let w = world();
    // MinCount 1, MaxCount 9 on an account limit of 5: five are launched.
    let mut req = run(&w.image, 1);
    req.max_count = 9;
    assert_eq!(w.launch(req).await.len(), 5);
    let bob = testing::other(&w.cloud, "bob");
    // The host (limit 8) has room for 3 more.
    let mut req = run(&w.image, 4);
    req.fingerprint.push('x');
    let e = w
        .cloud
        .dispatch(
            &bob,
            Request {
                action: ec2::instances::Action::RunInstances(Box::new(req)).into(),
                dry_run: false,
            },
        )
        .await
        .unwrap_err();
    assert_eq!(e.to_api().code, ErrorCode::InsufficientInstanceCapacity);
}

#[tokio::test]
async fn the_agent_finishes_what_a_crash_interrupted_and_sweeps_leaks() {
    let w = world();
    // A launch recorded but never started (the server died right after the API call).
    let i = w.launch(run(&w.image, 1)).await.remove(0);
    // A guest on the host that no record owns (died between a host step and its record).
    let leaked = w
        .compute
        .spec_of(&i.id)
        .unwrap_or_else(|| crate::host::GuestSpec {
            instance_id: "i-0123456789abcdef0".into(),
            image_rootfs: "/x".into(),
            volume_gib: 8,
            hostname: "x".into(),
            vcpus: 1,
            memory_mib: 512,
            pids_max: 100,
            netns: None,
            hypervisor: gureum_types::Hypervisor::Container,
            nic: None,
            files: vec![],
            warm: false,
            volumes: Vec::new(),
        });
    w.compute
        .guests
        .lock()
        .unwrap()
        .insert("i-0123456789abcdef0".into(), (GuestState::Running, leaked));
    // "Restart": a new Cloud and agent over the same store and the same host.
    let (_cloud2, agent2) = Cloud::new(
        w.cloud.store().clone(),
        w.cloud.region().clone(),
        Arc::new(crate::clock::SystemClock),
    )
    .with_local_agent(
        Host {
            compute: w.compute.clone(),
            network: w.network.clone(),
            guest_files: vec![],
            host_keys: None,
            volumes: None,
            images: None,
        },
        0,
    );
    agent2.sweep_leaks().await.unwrap();
    for _ in 0..4 {
        agent2.sweep().await;
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(w.describe(&i.id).await.state, InstanceState::Running);
    assert_eq!(
        w.compute.state_of("i-0123456789abcdef0"),
        GuestState::Absent
    );
    // A reboot request is carried out once.
    w.call(ec2::instances::Action::RebootInstances {
        instance_ids: vec![i.id.clone()],
    })
    .await
    .unwrap();
    w.settle().await;
    let reboots = w
        .compute
        .log
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.starts_with("reboot"))
        .count();
    assert_eq!(reboots, 1);
}

// ---- Elastic IPs, interfaces, metadata options (networking issue) ----

impl World {
    async fn allocate(&self) -> (String, String) {
        match self
            .call(ec2::addresses::Action::AllocateAddress {
                address: None,
                tag_specifications: vec![],
            })
            .await
            .unwrap()
        {
            ec2::addresses::Response::AllocateAddress {
                public_ip,
                allocation_id,
                ..
            } => (public_ip, allocation_id),
            _ => panic!(),
        }
    }

    async fn associate(
        &self,
        alloc: &str,
        instance: &str,
        allow_reassociation: bool,
    ) -> Result<String, ErrorCode> {
        match self
            .call(ec2::addresses::Action::AssociateAddress {
                allocation_id: Some(alloc.into()),
                public_ip: None,
                instance_id: Some(instance.into()),
                network_interface_id: None,
                private_ip: None,
                allow_reassociation,
            })
            .await?
        {
            ec2::addresses::Response::AssociateAddress { association_id } => Ok(association_id),
            _ => panic!(),
        }
    }

    fn mapped(&self, id: &str) -> Option<std::net::Ipv4Addr> {
        self.network.public.lock().unwrap().get(id).map(|m| m.0)
    }

    async fn addresses(&self) -> Vec<gureum_types::model::Address> {
        match self
            .call(ec2::addresses::Action::DescribeAddresses {
                public_ips: vec![],
                allocation_ids: vec![],
                filters: vec![],
            })
            .await
            .unwrap()
        {
            ec2::addresses::Response::DescribeAddresses { addresses, .. } => addresses,
            _ => panic!(),
        }
    }
}

#[tokio::test]
async fn elastic_ip_moves_between_instances_and_survives_stop() {
    let w = world();
    let ids: Vec<String> = w
        .launch(run(&w.image, 2))
        .await
        .into_iter()
        .map(|i| i.id)
        .collect();
    w.settle().await;
    let (a, b) = (&ids[0], &ids[1]);
    let auto_a = w.describe(a).await.public_ip.unwrap();
    assert_eq!(w.mapped(a).unwrap().to_string(), auto_a);

    let (eip, alloc) = w.allocate().await;
    assert_ne!(
        eip, auto_a,
        "Elastic IPs and auto-assigned addresses share one pool"
    );
    let assoc = w.associate(&alloc, a, false).await.unwrap();
    assert!(assoc.starts_with("eipassoc-"));
    w.settle().await;
    assert_eq!(w.describe(a).await.public_ip.as_deref(), Some(eip.as_str()));
    assert_eq!(w.mapped(a).unwrap().to_string(), eip, "mapped live");

    // Moving it needs AllowReassociation.
    assert_eq!(
        w.associate(&alloc, b, false).await.unwrap_err(),
        ErrorCode::ResourceAlreadyAssociated
    );
    w.associate(&alloc, b, true).await.unwrap();
    w.settle().await;
    assert_eq!(w.mapped(b).unwrap().to_string(), eip);
    // `a` gets an auto-assigned address again.
    let again = w.describe(a).await.public_ip.unwrap();
    assert_ne!(again, eip);
    assert_eq!(w.mapped(a).unwrap().to_string(), again);

    // Released only when not associated.
    assert_eq!(
        w.call(ec2::addresses::Action::ReleaseAddress {
            allocation_id: Some(alloc.clone()),
            public_ip: None
        })
        .await
        .unwrap_err(),
        ErrorCode::InvalidIPAddressInUse
    );

    // Stop and start keep the Elastic IP.
    w.stop(b).await;
    let stopped = w.describe(b).await;
    assert_eq!(stopped.state, InstanceState::Stopped);
    assert_eq!(stopped.public_ip.as_deref(), Some(eip.as_str()));
    w.start(b).await;
    assert_eq!(w.mapped(b).unwrap().to_string(), eip);

    // DescribeAddresses shows the association; filters work.
    let addrs = w.addresses().await;
    assert_eq!(addrs.len(), 1);
    assert_eq!(addrs[0].instance_id.as_deref(), Some(b.as_str()));
    assert!(addrs[0].private_ip.is_some());

    // Terminating disassociates; then it can be released.
    w.call(ec2::instances::Action::TerminateInstances {
        instance_ids: vec![b.clone()],
    })
    .await
    .unwrap();
    w.settle().await;
    assert_eq!(w.addresses().await[0].instance_id, None);
    w.call(ec2::addresses::Action::ReleaseAddress {
        allocation_id: Some(alloc.clone()),
        public_ip: None,
    })
    .await
    .unwrap();
    assert!(w.addresses().await.is_empty());
    assert_eq!(
        w.call(ec2::addresses::Action::ReleaseAddress {
            allocation_id: Some(alloc),
            public_ip: None
        })
        .await
        .unwrap_err(),
        ErrorCode::InvalidAllocationIDNotFound
    );
}

#[tokio::test]
async fn elastic_ip_errors_and_isolation() {
    let w = world();
    for _ in 0..crate::addresses::MAX_ADDRESSES {
        w.allocate().await;
    }
    assert_eq!(
        w.call(ec2::addresses::Action::AllocateAddress {
            address: None,
            tag_specifications: vec![]
        })
        .await
        .unwrap_err(),
        ErrorCode::AddressLimitExceeded
    );
    let alloc = w.addresses().await[0].allocation_id.clone();
    assert_eq!(
        w.associate(&alloc, "i-0123456789abcdef0", false)
            .await
            .unwrap_err(),
        ErrorCode::InvalidInstanceIDNotFound
    );
    assert_eq!(
        w.associate("eipalloc-zz", "i-0123456789abcdef0", false)
            .await
            .unwrap_err(),
        ErrorCode::InvalidAllocationIDMalformed
    );
    assert_eq!(
        w.call(ec2::addresses::Action::DisassociateAddress {
            association_id: Some("eipassoc-0123456789abcdef0".into()),
            public_ip: None
        })
        .await
        .unwrap_err(),
        ErrorCode::InvalidAssociationIDNotFound
    );
    // Another account sees none of them and can't touch them.
    let other = testing::other(&w.cloud, "other");
    let r = w
        .cloud
        .dispatch(
            &other,
            Request {
                action: ec2::addresses::Action::ReleaseAddress {
                    allocation_id: Some(alloc),
                    public_ip: None,
                }
                .into(),
                dry_run: false,
            },
        )
        .await
        .map_err(|e| e.to_api().code);
    assert_eq!(r.unwrap_err(), ErrorCode::InvalidAllocationIDNotFound);
    match w
        .cloud
        .dispatch(
            &other,
            Request {
                action: ec2::addresses::Action::DescribeAddresses {
                    public_ips: vec![],
                    allocation_ids: vec![],
                    filters: vec![],
                }
                .into(),
                dry_run: false,
            },
        )
        .await
        .unwrap()
    {
        gureum_ec2::Response::Addresses(ec2::addresses::Response::DescribeAddresses {
            addresses,
            ..
        }) => {
            assert!(addresses.is_empty())
        }
        _ => panic!(),
    }
}

#[tokio::test]
async fn no_public_ip_when_launch_declines_it() {
    let w = world();
    let mut req = run(&w.image, 1);
    req.associate_public_ip = Some(false);
    let i = w.launch(req).await.remove(0);
    w.settle().await;
    let d = w.describe(&i.id).await;
    assert_eq!(d.state, InstanceState::Running);
    assert_eq!(d.public_ip, None);
    assert_eq!(w.mapped(&i.id), None);
}

#[tokio::test]
async fn network_interfaces_and_metadata_options() {
    let w = world();
    let i = w.launch(run(&w.image, 1)).await.remove(0);
    w.settle().await;
    let nics = match w
        .call(ec2::interfaces::Action::DescribeNetworkInterfaces {
            ids: vec![],
            filters: vec![gureum_types::model::Filter {
                name: "attachment.instance-id".into(),
                values: vec![i.id.clone()],
            }],
            page: Default::default(),
        })
        .await
        .unwrap()
    {
        ec2::interfaces::Response::DescribeNetworkInterfaces { interfaces, .. } => interfaces,
        _ => panic!(),
    };
    assert_eq!(nics.len(), 1);
    assert_eq!(nics[0].id, i.network_interface_id);
    assert_eq!(nics[0].private_ip, i.private_ip);
    assert_eq!(nics[0].groups[0].1, "default");
    assert!(nics[0].association.is_some());
    assert_eq!(
        w.call(ec2::interfaces::Action::DescribeNetworkInterfaces {
            ids: vec!["eni-0123456789abcdef0".into()],
            filters: vec![],
            page: Default::default(),
        })
        .await
        .unwrap_err(),
        ErrorCode::InvalidNetworkInterfaceIDNotFound
    );

    match w
        .call(ec2::interfaces::Action::ModifyInstanceMetadataOptions {
            instance_id: i.id.clone(),
            http_tokens: Some("required".parse().unwrap()),
            http_endpoint: None,
            hop_limit: Some(2),
        })
        .await
        .unwrap()
    {
        ec2::interfaces::Response::ModifyInstanceMetadataOptions {
            http_tokens,
            http_endpoint,
            hop_limit,
            ..
        } => {
            assert_eq!(http_tokens.as_str(), "required");
            assert_eq!(http_endpoint.as_str(), "enabled");
            assert_eq!(hop_limit, 2);
        }
        _ => panic!(),
    }
    let d = w.describe(&i.id).await;
    assert_eq!(d.metadata_http_tokens.as_str(), "required");
    assert_eq!(d.metadata_hop_limit, 2);
}

// ---- metering ----

#[tokio::test]
async fn usage_follows_state_changes() {
    use gureum_store::usage;
    let w = world();
    let i = w.launch(run(&w.image, 1)).await.remove(0);
    let rows = |w: &World| {
        w.cloud
            .store()
            .read(|c| c.usage().overlapping(None, 0, i64::MAX))
            .unwrap()
    };
    let open = |w: &World, kind: &str| {
        rows(w)
            .iter()
            .filter(|r| r.kind == kind && r.end_ms.is_none())
            .count()
    };
    // Pending: the root volume exists, nothing computes yet. It is metered once, as the
    // volume it is (never also as the instance's `storage`).
    assert_eq!(open(&w, usage::VOLUME), 1);
    assert_eq!(open(&w, usage::STORAGE), 0);
    let root = rows(&w)
        .into_iter()
        .find(|r| r.kind == usage::VOLUME)
        .unwrap();
    assert_eq!(
        (
            root.resource_id.as_str(),
            root.detail.as_str(),
            root.quantity
        ),
        (i.root_volume_id.as_str(), "gp3", 8.0)
    );
    assert_eq!(open(&w, usage::COMPUTE), 0);
    w.settle().await;
    assert_eq!(open(&w, usage::COMPUTE), 1);
    assert_eq!(open(&w, usage::PUBLIC_IPV4), 1);
    // Settling again (every sweep re-checks addresses) opens nothing twice: compute, the
    // address, and the gp3 root volume's GiB, IOPS and throughput.
    w.settle().await;
    assert_eq!(rows(&w).len(), 5);
    assert_eq!(open(&w, usage::VOLUME_IOPS), 1);
    assert_eq!(open(&w, usage::VOLUME_THROUGHPUT), 1);

    w.stop(&i.id).await;
    assert_eq!(
        open(&w, usage::COMPUTE),
        0,
        "a stopped instance computes nothing"
    );
    assert_eq!(
        open(&w, usage::PUBLIC_IPV4),
        0,
        "its public address was released"
    );
    assert_eq!(open(&w, usage::VOLUME), 1, "its volume is still billed");
    w.start(&i.id).await;
    let compute: Vec<_> = rows(&w)
        .into_iter()
        .filter(|r| r.kind == usage::COMPUTE)
        .collect();
    assert_eq!(compute.len(), 2, "one interval per start");
    assert_eq!(compute[0].detail, "t2.micro");

    // An Elastic IP replaces the auto-assigned address's metering with its own.
    let (_, alloc) = w.allocate().await;
    w.associate(&alloc, &i.id, false).await.unwrap();
    w.settle().await;
    assert_eq!(open(&w, usage::PUBLIC_IPV4), 0);
    assert_eq!(open(&w, usage::ELASTIC_IP), 1);

    w.call(ec2::instances::Action::TerminateInstances {
        instance_ids: vec![i.id.clone()],
    })
    .await
    .unwrap();
    w.settle().await;
    for kind in [usage::COMPUTE, usage::VOLUME, usage::PUBLIC_IPV4] {
        assert_eq!(open(&w, kind), 0, "{kind} closed on terminate");
    }
    w.call(ec2::addresses::Action::ReleaseAddress {
        allocation_id: Some(alloc),
        public_ip: None,
    })
    .await
    .unwrap();
    assert_eq!(open(&w, usage::ELASTIC_IP), 0);
}

#[tokio::test]
async fn a_crossed_budget_alerts_once_and_stops_instances() {
    let clock = Arc::new(crate::clock::FixedClock::new(1_764_000_000_000));
    let w = world_with_clock(clock.clone());
    w.cloud
        .set_budget(&w.ctx.account_id, 0.05, true)
        .await
        .unwrap();
    let mut req = run(&w.image, 1);
    req.instance_type = Some("m5.large".into()); // $0.096 an hour, no free tier
    let i = w.launch(req).await.remove(0);
    w.settle().await;
    w.cloud.check_budgets().await.unwrap();
    let s = w
        .cloud
        .budget_status(&w.ctx.account_id)
        .await
        .unwrap()
        .unwrap();
    assert!(s.actual_usd < 0.05, "{s:?}");
    assert!(s.forecast_usd > 0.05, "running all month crosses it: {s:?}");
    assert_eq!(s.alert.as_ref().map(|a| a.1.as_str()), Some("forecast"));
    assert_eq!(
        w.describe(&i.id).await.state,
        InstanceState::Running,
        "a forecast only warns"
    );

    clock.advance(3_600_000); // an hour of m5.large: $0.096
    w.cloud.check_budgets().await.unwrap();
    let s = w
        .cloud
        .budget_status(&w.ctx.account_id)
        .await
        .unwrap()
        .unwrap();
    assert!((s.actual_usd - 0.096).abs() < 0.001, "{s:?}");
    assert_eq!(s.alert.as_ref().map(|a| a.1.as_str()), Some("actual"));
    w.settle().await;
    assert_eq!(
        w.describe(&i.id).await.state,
        InstanceState::Stopped,
        "stopped by the budget"
    );
    // Once a month: checking again changes nothing.
    let at = s.alert.unwrap().2;
    clock.advance(60_000);
    w.cloud.check_budgets().await.unwrap();
    let s = w
        .cloud
        .budget_status(&w.ctx.account_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(s.alert.unwrap().2, at);
    // Another account's budget is its own.
    let other = testing::other(&w.cloud, "other");
    assert!(w
        .cloud
        .budget_status(&other.account_id)
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn bills_stay_exact_across_the_settled_usage_cache() {
    let clock = Arc::new(crate::clock::FixedClock::new(1_764_000_000_000));
    let w = world_with_clock(clock.clone());
    let acct = w.ctx.account_id.clone();
    let mut req = run(&w.image, 1);
    req.instance_type = Some("m5.large".into()); // $0.096 an hour
    let i = w.launch(req).await.remove(0);
    w.settle().await;
    let total = |w: &World| {
        let (c, a) = (w.cloud.clone(), acct.clone());
        async move {
            let b = c.monthly_bill(&a, None).await.unwrap();
            b.lines
                .iter()
                .filter(|l| l.usage_type.starts_with("BoxUsage"))
                .map(|l| l.amount.to_decimal(6).parse::<f64>().unwrap())
                .sum::<f64>()
        }
    };
    assert!(total(&w).await < 0.01); // builds the cache
    clock.advance(2 * 3_600_000);
    w.stop(&i.id).await;
    assert!(
        (total(&w).await - 0.192).abs() < 0.001,
        "two hours, closed after the cache was built"
    );
    clock.advance(3 * 3_600_000); // the interval is now settled; a rebuild would cache it
    *w.cloud.usage_cache.lock().unwrap() = Default::default();
    assert!((total(&w).await - 0.192).abs() < 0.001, "rebuilt");
    w.start(&i.id).await;
    clock.advance(3_600_000);
    assert!(
        (total(&w).await - 0.288).abs() < 0.001,
        "cached + a new open interval"
    );
}

#[tokio::test]
async fn a_launch_takes_a_warm_guest_and_the_pool_is_nobodys() {
    let w = world_with_pool(
        Arc::new(crate::clock::FixedClock::new(1_764_000_000_000)),
        None,
        2,
        None,
    );
    w.cloud.set_warm_image_sync(&w.image).unwrap();
    // The refill's steps, by hand: one guest each, until the pool is full.
    while w.agent.refill_warm_pool().await {}
    assert_eq!(w.agent.warm_pool_counts(), (2, 0));
    let pool: std::collections::HashSet<String> = w.agent.warm.ids();
    for id in &pool {
        let spec = w.compute.spec_of(id).unwrap();
        assert!(spec.warm && spec.nic.is_none() && spec.netns.is_none());
        assert!(spec
            .files
            .iter()
            .any(|f| f.path == std::path::Path::new(crate::warm::GUEST_MARKER)));
    }
    // No record owns them, and the leak sweep leaves them alone.
    assert_eq!(w.agent.sweep_leaks().await.unwrap(), 0);
    assert!(pool
        .iter()
        .all(|id| w.compute.state_of(id) == GuestState::Running));

    let i = w.launch(run(&w.image, 1)).await.remove(0);
    assert!(pool.contains(&i.id), "the instance is a waiting guest");
    w.settle().await;
    assert_eq!(w.describe(&i.id).await.state, InstanceState::Running);
    // Plugged into the guest's own namespace, then handed the instance rather than booted.
    let nic = w.network.attached.lock().unwrap()[&i.id].clone();
    assert_eq!(nic.netns_of, Some(crate::fake::WARM_PID));
    let spec = w.compute.spec_of(&i.id).unwrap();
    assert!(!spec.warm);
    assert_eq!(spec.hostname, "ip-172-31-0-4");
    assert_eq!(
        spec.files.last().unwrap().path,
        std::path::Path::new("/var/lib/gureum/instance.env"),
        "instance.env comes last: a warm guest starts on it"
    );
    assert!(w
        .compute
        .log
        .lock()
        .unwrap()
        .contains(&format!("hand over {}", i.id)));

    // Another root volume size boots its own guest.
    let mut big = run(&w.image, 1);
    big.block_devices = vec![gureum_ec2::ops::instances::BlockDevice {
        device_name: "/dev/xvda".into(),
        volume_size: Some(9),
        ..Default::default()
    }];
    let j = w.launch(big).await.remove(0);
    assert!(!pool.contains(&j.id));

    // A clean stop destroys the spare guest, and no instance.
    w.agent
        .release_spare_guests(std::time::Duration::from_secs(2))
        .await;
    let spare: Vec<&String> = pool.iter().filter(|id| **id != i.id).collect();
    assert_eq!(w.compute.state_of(spare[0]), GuestState::Absent);
    assert_eq!(w.compute.state_of(&i.id), GuestState::Running);
}

#[tokio::test]
async fn a_host_that_cannot_run_instances_refuses_launches_and_ends_stranded_ones() {
    let w = world();
    let mut req = run(&w.image, 1);
    req.fingerprint.push_str("&stopped");
    let stopped = w.launch(req).await.remove(0);
    w.settle().await;
    w.stop(&stopped.id).await;
    // A launch recorded but never started: the agent is not running in this world until
    // `settle`, so it stays `pending`, as when a server died mid-launch.
    let stranded = w.launch(run(&w.image, 1)).await.remove(0);
    assert_eq!(w.describe(&stranded.id).await.state, InstanceState::Pending);
    // The next server finds no working runtime on the host.
    let cloud = w.cloud.clone().with_unavailable(crate::Unavailable {
        containers: Some("runc is not installed".into()),
        vms: None,
    });
    let w = World { cloud, ..w };
    // New launches and starts are refused at once, and nothing is recorded.
    let count = |r: ec2::instances::Response| match r {
        ec2::instances::Response::DescribeInstances { reservations, .. } => reservations.len(),
        _ => panic!(),
    };
    let all = || ec2::instances::Action::DescribeInstances {
        instance_ids: vec![],
        filters: vec![],
        page: Default::default(),
    };
    let before = count(w.call(all()).await.unwrap());
    let e = w
        .call(ec2::instances::Action::RunInstances(Box::new(run(
            &w.image, 1,
        ))))
        .await
        .unwrap_err();
    assert_eq!(e, ErrorCode::InsufficientInstanceCapacity);
    let e = w
        .call(ec2::instances::Action::StartInstances {
            instance_ids: vec![stopped.id.clone()],
        })
        .await
        .unwrap_err();
    assert_eq!(e, ErrorCode::InsufficientInstanceCapacity);
    assert_eq!(count(w.call(all()).await.unwrap()), before);
    assert_eq!(w.describe(&stopped.id).await.state, InstanceState::Stopped);
    // The stranded launch ends as a failed launch does on EC2, with the reason.
    assert_eq!(w.cloud.fail_stranded_launches().await.unwrap(), 1);
    let d = w.describe(&stranded.id).await;
    assert_eq!(d.state, InstanceState::Terminated);
    let gureum_types::StateReason { code, message } = d.state_reason.unwrap();
    assert_eq!(code.as_str(), "Server.InternalError");
    assert!(message.contains("runc is not installed"), "{message}");
    assert_eq!(w.describe(&stopped.id).await.state, InstanceState::Stopped);
}

/// (id, state) of the images DescribeImages lists to the world's account for `owners`.
async fn image_ids(w: &World, owners: &[&str]) -> Vec<(String, String)> {
    match w
        .call(ec2::images::Action::DescribeImages {
            image_ids: vec![],
            owners: owners.iter().map(|o| o.to_string()).collect(),
            executable_users: vec![],
            filters: vec![],
            page: Default::default(),
        })
        .await
        .unwrap()
    {
        ec2::images::Response::DescribeImages { images, .. } => images
            .into_iter()
            .map(|i| (i.id, i.state.as_str().to_string()))
            .collect(),
        other => panic!("{other:?}"),
    }
}

/// A failed build of the built-in image (system account, public) is nobody's AMI but its
/// owner's: no other account lists it, finds it by id or launches it; the operator still sees
/// it with its reason. While it builds (pending) everyone sees it, as before.
#[tokio::test]
async fn a_failed_builtin_image_is_listed_to_nobody_else() {
    let w = world();
    let sys = w.cloud.system_account_sync().unwrap();
    let builtin = |name: &str| NewImage {
        name: name.into(),
        description: "debian-12, building…".into(),
        login_user: "admin".into(),
        root_size_gib: 8,
        rootfs: None,
        state: "pending".parse().unwrap(),
        public: true,
        owner_alias: Some("gureum".into()),
        source: format!("recipe:{name}"),
        source_instance_id: None,
        source_image_id: None,
        tags: vec![],
    };
    let id = w
        .cloud
        .register_image_sync(&sys, builtin("broken"))
        .unwrap();
    assert!(image_ids(&w, &["gureum"])
        .await
        .contains(&(id.clone(), "pending".into())));

    w.cloud
        .finish_image_sync(&id, Err("mmdebstrap failed".into()))
        .unwrap();
    for owners in [&[][..], &["gureum"], &["all"], &[sys.as_str()]] {
        let listed = image_ids(&w, owners).await;
        assert!(
            listed.iter().all(|(i, _)| *i != id),
            "{owners:?}: {listed:?}"
        );
        assert!(
            listed.iter().all(|(_, s)| s != "failed"),
            "{owners:?}: {listed:?}"
        );
    }
    let by_id = w
        .call(ec2::images::Action::DescribeImages {
            image_ids: vec![id.clone()],
            owners: vec![],
            executable_users: vec![],
            filters: vec![],
            page: Default::default(),
        })
        .await;
    assert_eq!(by_id.unwrap_err(), ErrorCode::InvalidAMIIDNotFound);
    let launch = w
        .call(ec2::instances::Action::RunInstances(Box::new(run(&id, 1))))
        .await;
    assert_eq!(launch.unwrap_err(), ErrorCode::InvalidAMIIDNotFound);

    // The same for an image shared with the account by launch permission.
    let shared = w
        .cloud
        .register_image_sync(&sys, builtin("shared"))
        .unwrap();
    w.cloud
        .store
        .write(|tx| {
            tx.images().set_public(&shared, false)?;
            tx.images().add_permission(&shared, &w.ctx.account_id)?;
            Ok::<_, crate::CoreError>(())
        })
        .unwrap();
    assert!(image_ids(&w, &[]).await.iter().any(|(i, _)| *i == shared));
    w.cloud
        .finish_image_sync(&shared, Err("no".into()))
        .unwrap();
    assert!(image_ids(&w, &[]).await.iter().all(|(i, _)| *i != shared));

    // The operator's list has both, failed.
    let all = w.cloud.all_images_sync().unwrap();
    for failed in [&id, &shared] {
        let img = all.iter().find(|i| &i.id == failed).unwrap();
        assert_eq!(img.state.as_str(), "failed");
    }
    // The working image is still everyone's.
    assert!(image_ids(&w, &["gureum"])
        .await
        .iter()
        .any(|(i, s)| *i == w.image && s == "available"));
}

/// Image copies run one at a time host-wide: a CreateImage waiting for its turn leaves its
/// instance alone (no stop, no snapshot) and its image `pending`; it goes ahead once the copy
/// before it is done.
#[tokio::test]
async fn image_copies_wait_their_turn() {
    let w = world();
    let i = w.launch(run(&w.image, 1)).await.remove(0);
    w.settle().await;
    let busy = w.agent.image_copies.clone().acquire_owned().await.unwrap();
    let image = match w
        .call(ec2::images::Action::CreateImage {
            instance_id: i.id.clone(),
            name: "queued".into(),
            description: None,
            no_reboot: false,
            tag_specifications: vec![],
        })
        .await
        .unwrap()
    {
        ec2::images::Response::ImageId(id) => id,
        other => panic!("{other:?}"),
    };
    let snapshots = || {
        w.compute
            .log
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.starts_with(&format!("snapshot {}", i.id)))
            .count()
    };
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(snapshots(), 0, "the copy waits for the one before it");
    assert_eq!(image_state(&w, &image).await.as_deref(), Some("pending"));
    assert_eq!(w.describe(&i.id).await.state, InstanceState::Running);
    drop(busy);
    for _ in 0..50 {
        if image_state(&w, &image).await.as_deref() == Some("available") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(image_state(&w, &image).await.as_deref(), Some("available"));
    assert_eq!(snapshots(), 1);
}

async fn image_state(w: &World, image: &str) -> Option<String> {
    image_ids(w, &["self"])
        .await
        .into_iter()
        .find(|(id, _)| id == image)
        .map(|(_, s)| s)
}
