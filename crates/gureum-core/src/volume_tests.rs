//! EBS volumes and snapshots against fake drivers: the state machine (create, attach to a
//! running and a stopped instance, a detach the guest holds up then a forced one, delete,
//! snapshot, a volume from a snapshot, a copy, sharing), termination with
//! `DeleteOnTermination` both ways, convergence resumed from every intermediate record, and
//! failing requests that change nothing.

use std::sync::Arc;

use gureum_ec2::ops as ec2;
use gureum_ec2::ops::snapshots::Permission;
use gureum_ec2::ops::snapshots::{Action as S, Response as SR};
use gureum_ec2::ops::volumes::{Action as V, CreateVolume, ModifyVolume, Response as VR};
use gureum_store::volumes::VolumeRow;
use gureum_types::model::{Snapshot, Volume};
use gureum_types::{
    ErrorCode, SnapshotState, VolumeAttachmentState, VolumeModificationState, VolumeState,
    VolumeType,
};

use crate::fake::FakeVolumes;
use crate::lifecycle_tests::{run, world_with_volumes, World};
use crate::testing;

pub(crate) fn new(az: &str, size: u32) -> CreateVolume {
    CreateVolume {
        availability_zone: Some(az.into()),
        size: Some(size),
        ..Default::default()
    }
}

pub(crate) async fn create(w: &World, req: CreateVolume) -> Result<Volume, ErrorCode> {
    match w.call(V::CreateVolume(req)).await? {
        VR::Volume(v) => Ok(v),
        r => panic!("{r:?}"),
    }
}

pub(crate) async fn volume(w: &World, id: &str) -> Volume {
    match w
        .call(V::DescribeVolumes {
            volume_ids: vec![id.into()],
            filters: vec![],
            page: Default::default(),
        })
        .await
        .unwrap()
    {
        VR::DescribeVolumes { mut volumes, .. } => volumes.remove(0),
        r => panic!("{r:?}"),
    }
}

pub(crate) async fn snapshots(w: &World) -> Vec<Snapshot> {
    match w
        .call(S::DescribeSnapshots {
            snapshot_ids: vec![],
            owner_ids: vec![],
            restorable_by: vec![],
            filters: vec![],
            page: Default::default(),
        })
        .await
        .unwrap()
    {
        SR::DescribeSnapshots { snapshots, .. } => snapshots,
        r => panic!("{r:?}"),
    }
}

pub(crate) async fn converge(w: &World) {
    w.agent.converge_volumes().await.unwrap();
}

pub(crate) async fn attach(
    w: &World,
    vol: &str,
    inst: &str,
    device: &str,
) -> Result<VR, ErrorCode> {
    w.call(V::AttachVolume {
        volume_id: vol.into(),
        instance_id: inst.into(),
        device: device.into(),
    })
    .await
}

async fn detach(w: &World, vol: &str, force: bool) -> Result<VR, ErrorCode> {
    w.call(V::DetachVolume {
        volume_id: vol.into(),
        instance_id: None,
        device: None,
        force,
    })
    .await
}

pub(crate) fn world() -> (World, Arc<FakeVolumes>) {
    let pool = Arc::new(FakeVolumes::default());
    (world_with_volumes(pool.clone()), pool)
}

/// A running instance in us-east-1a.
pub(crate) async fn running(w: &World) -> String {
    let id = w.launch(run(&w.image, 1)).await.remove(0).id;
    w.settle().await;
    id
}

/// Every volume's stored record (the agent's view).
pub(crate) fn rows(w: &World) -> Vec<VolumeRow> {
    w.cloud.store().read(|tx| tx.volumes().all()).unwrap()
}

#[tokio::test]
async fn create_attach_detach_delete() {
    let (w, pool) = world();
    let inst = running(&w).await;
    let v = create(&w, new("us-east-1a", 10)).await.unwrap();
    assert_eq!(v.state, VolumeState::Creating);
    assert_eq!(
        (v.volume_type, v.iops, v.throughput),
        (VolumeType::Gp2, Some(100), None)
    );
    converge(&w).await;
    assert_eq!(volume(&w, &v.id).await.state, VolumeState::Available);
    assert_eq!(pool.volumes.lock().unwrap().get(&v.id), Some(&10));

    // Attach: in-use at once, attaching until the host hot-plugs it.
    let VR::Attachment(a) = attach(&w, &v.id, &inst, "/dev/sdf").await.unwrap() else {
        panic!()
    };
    assert_eq!(a.state, VolumeAttachmentState::Attaching);
    let now = volume(&w, &v.id).await;
    assert_eq!(now.state, VolumeState::InUse);
    converge(&w).await;
    let now = volume(&w, &v.id).await;
    assert_eq!(now.attachments[0].state, VolumeAttachmentState::Attached);
    assert_eq!(
        w.compute
            .plugged
            .lock()
            .unwrap()
            .get(&(inst.clone(), v.id.clone())),
        Some(&"/dev/sdf".to_string())
    );

    // In use: it cannot be deleted or attached again, and its device is taken.
    assert_eq!(
        w.call(V::DeleteVolume {
            volume_id: v.id.clone()
        })
        .await
        .unwrap_err(),
        ErrorCode::VolumeInUse
    );
    assert_eq!(
        attach(&w, &v.id, &inst, "/dev/sdg").await.unwrap_err(),
        ErrorCode::VolumeInUse
    );
    let other = create(&w, new("us-east-1a", 1)).await.unwrap();
    converge(&w).await;
    assert_eq!(
        attach(&w, &other.id, &inst, "/dev/xvdf").await.unwrap_err(),
        ErrorCode::InvalidParameterValue,
        "/dev/xvdf is /dev/sdf's attachment point"
    );
    assert_eq!(
        attach(&w, &other.id, &inst, "/dev/xvda").await.unwrap_err(),
        ErrorCode::InvalidParameterValue,
        "the root device"
    );

    // The guest has it mounted: detach is held up (busy), retried, then forced.
    w.compute.mounted.lock().unwrap().insert(v.id.clone());
    detach(&w, &v.id, false).await.unwrap();
    converge(&w).await;
    assert_eq!(
        volume(&w, &v.id).await.attachments[0].state,
        VolumeAttachmentState::Busy
    );
    converge(&w).await;
    assert_eq!(volume(&w, &v.id).await.state, VolumeState::InUse);
    detach(&w, &v.id, true).await.unwrap();
    converge(&w).await;
    let now = volume(&w, &v.id).await;
    assert_eq!(
        (now.state, now.attachments.len()),
        (VolumeState::Available, 0)
    );
    assert!(w.compute.plugged.lock().unwrap().is_empty());

    w.call(V::DeleteVolume {
        volume_id: v.id.clone(),
    })
    .await
    .unwrap();
    assert_eq!(volume(&w, &v.id).await.state, VolumeState::Deleting);
    converge(&w).await;
    assert_eq!(
        w.call(V::DescribeVolumes {
            volume_ids: vec![v.id.clone()],
            filters: vec![],
            page: Default::default()
        })
        .await
        .unwrap_err(),
        ErrorCode::InvalidVolumeNotFound
    );
    assert!(!pool.volumes.lock().unwrap().contains_key(&v.id));
}

#[tokio::test]
async fn a_stopped_instance_gets_its_volumes_at_start() {
    let (w, _pool) = world();
    let inst = running(&w).await;
    w.stop(&inst).await;
    let v = create(&w, new("us-east-1a", 2)).await.unwrap();
    converge(&w).await;
    attach(&w, &v.id, &inst, "/dev/sdh").await.unwrap();
    converge(&w).await;
    assert_eq!(
        volume(&w, &v.id).await.attachments[0].state,
        VolumeAttachmentState::Attached
    );
    assert!(
        w.compute.plugged.lock().unwrap().is_empty(),
        "no hot-plug while stopped"
    );
    w.start(&inst).await;
    let spec = w.compute.spec_of(&inst).unwrap();
    assert_eq!(spec.volumes.len(), 1);
    assert_eq!(
        (
            spec.volumes[0].volume_id.as_str(),
            spec.volumes[0].device.as_str()
        ),
        (v.id.as_str(), "/dev/sdh")
    );
    assert_eq!(
        spec.volumes[0].path,
        std::path::PathBuf::from(format!("/volumes/{}", v.id))
    );
}

#[tokio::test]
async fn termination_honours_delete_on_termination() {
    let (w, pool) = world();
    let inst = running(&w).await;
    let kept = create(&w, new("us-east-1a", 1)).await.unwrap();
    let gone = create(&w, new("us-east-1a", 1)).await.unwrap();
    converge(&w).await;
    attach(&w, &kept.id, &inst, "/dev/sdf").await.unwrap();
    attach(&w, &gone.id, &inst, "/dev/sdg").await.unwrap();
    converge(&w).await;
    // Volumes attached later default to DeleteOnTermination false (as AWS); mark one true.
    let mut row = rows(&w).into_iter().find(|r| r.id == gone.id).unwrap();
    row.attachment.as_mut().unwrap().delete_on_termination = true;
    w.cloud
        .store()
        .write(|tx| tx.volumes().update(&row, 1))
        .unwrap();
    w.call(ec2::instances::Action::TerminateInstances {
        instance_ids: vec![inst.clone()],
    })
    .await
    .unwrap();
    w.settle().await;
    for _ in 0..3 {
        converge(&w).await;
    }
    assert_eq!(volume(&w, &kept.id).await.state, VolumeState::Available);
    assert!(rows(&w).iter().all(|r| r.id != gone.id));
    assert!(!pool.volumes.lock().unwrap().contains_key(&gone.id));
}

#[tokio::test]
async fn snapshots_volumes_from_them_copies_and_sharing() {
    let (w, pool) = world();
    let v = create(&w, new("us-east-1a", 4)).await.unwrap();
    converge(&w).await;
    let SR::Snapshot(s) = w
        .call(S::CreateSnapshot {
            volume_id: v.id.clone(),
            description: "nightly".into(),
            tag_specifications: vec![],
        })
        .await
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(
        (s.state, s.progress.as_str(), s.volume_size),
        (SnapshotState::Pending, "0%", 4)
    );
    // A pending snapshot cannot make a volume yet.
    let mut from = new("us-east-1b", 4);
    from.size = None;
    from.snapshot_id = Some(s.id.clone());
    assert_eq!(
        create(&w, from.clone()).await.unwrap_err(),
        ErrorCode::IncorrectState
    );
    converge(&w).await;
    let snaps = snapshots(&w).await;
    assert_eq!(
        (snaps[0].state, snaps[0].progress.as_str()),
        (SnapshotState::Completed, "100%")
    );
    assert!(pool.snapshots.lock().unwrap().contains_key(&s.id));

    // A volume from it takes its size; a smaller one is refused.
    let restored = create(&w, from.clone()).await.unwrap();
    assert_eq!(
        (restored.size_gib, restored.snapshot_id.as_deref()),
        (4, Some(s.id.as_str()))
    );
    from.size = Some(3);
    assert_eq!(
        create(&w, from).await.unwrap_err(),
        ErrorCode::InvalidParameterValue
    );
    // Deleting the snapshot while a volume is still being made from it is refused.
    assert_eq!(
        w.call(S::DeleteSnapshot {
            snapshot_id: s.id.clone()
        })
        .await
        .unwrap_err(),
        ErrorCode::InvalidSnapshotInUse
    );
    converge(&w).await;
    assert_eq!(volume(&w, &restored.id).await.state, VolumeState::Available);
    assert!(pool
        .log
        .lock()
        .unwrap()
        .contains(&format!("create {} 4 Some(\"{}\")", restored.id, s.id)));

    // A copy: pending, then completed, through a scratch volume that is gone after.
    let SR::CopySnapshot {
        snapshot_id: copy, ..
    } = w
        .call(S::CopySnapshot {
            source_region: "us-east-1".into(),
            source_snapshot_id: s.id.clone(),
            description: String::new(),
            tag_specifications: vec![],
        })
        .await
        .unwrap()
    else {
        panic!()
    };
    converge(&w).await;
    let c = snapshots(&w)
        .await
        .into_iter()
        .find(|x| x.id == copy)
        .unwrap();
    assert_eq!(
        (c.state, c.volume_id.as_str()),
        (SnapshotState::Completed, "vol-ffffffff")
    );
    assert!(pool
        .volumes
        .lock()
        .unwrap()
        .keys()
        .all(|k| !k.contains("ffffffff")));

    // Shared with bob: he sees it and can make a volume from it, but not delete it.
    let bob = testing::other(&w.cloud, "bob");
    let as_bob = |a: S| {
        w.cloud.dispatch(
            &bob,
            gureum_ec2::Request {
                action: a.into(),
                dry_run: false,
            },
        )
    };
    let bob_sees = |r: gureum_ec2::Response| match r {
        gureum_ec2::Response::Snapshots(SR::DescribeSnapshots { snapshots, .. }) => snapshots.len(),
        r => panic!("{r:?}"),
    };
    let describe = || S::DescribeSnapshots {
        snapshot_ids: vec![],
        owner_ids: vec![],
        restorable_by: vec![],
        filters: vec![],
        page: Default::default(),
    };
    assert_eq!(bob_sees(as_bob(describe()).await.unwrap()), 0);
    w.call(S::ModifySnapshotAttribute {
        snapshot_id: s.id.clone(),
        add: vec![Permission::User(bob.account_id.clone())],
        remove: vec![],
    })
    .await
    .unwrap();
    assert_eq!(bob_sees(as_bob(describe()).await.unwrap()), 1);
    let e = as_bob(S::DeleteSnapshot {
        snapshot_id: s.id.clone(),
    })
    .await
    .unwrap_err();
    assert_eq!(e.to_api().code, ErrorCode::InvalidSnapshotNotFound);
    let mut bobs = new("us-east-1a", 8);
    bobs.snapshot_id = Some(s.id.clone());
    w.cloud
        .dispatch(
            &bob,
            gureum_ec2::Request {
                action: V::CreateVolume(bobs).into(),
                dry_run: false,
            },
        )
        .await
        .unwrap();
    // Deleted: gone from the API at once, its bytes at the next pass.
    w.call(S::ResetSnapshotAttribute {
        snapshot_id: copy.clone(),
    })
    .await
    .unwrap();
    w.call(S::DeleteSnapshot {
        snapshot_id: copy.clone(),
    })
    .await
    .unwrap();
    assert!(snapshots(&w).await.iter().all(|x| x.id != copy));
    converge(&w).await;
    assert!(!pool.snapshots.lock().unwrap().contains_key(&copy));
}

#[tokio::test]
async fn modify_grows_and_changes_type() {
    let (w, pool) = world();
    let v = create(&w, new("us-east-1a", 10)).await.unwrap();
    converge(&w).await;
    let VR::ModifyVolume(m) = w
        .call(V::ModifyVolume {
            volume_id: v.id.clone(),
            change: ModifyVolume {
                size: Some(20),
                volume_type: Some(VolumeType::Gp3),
                ..Default::default()
            },
        })
        .await
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(m.state, VolumeModificationState::Modifying);
    assert_eq!((m.original_size, m.target_size), (10, 20));
    assert_eq!(
        (m.target_iops, m.target_throughput),
        (Some(3000), Some(125))
    );
    converge(&w).await;
    assert_eq!(pool.volumes.lock().unwrap().get(&v.id), Some(&20));
    let VR::DescribeVolumesModifications { modifications, .. } = w
        .call(V::DescribeVolumesModifications {
            volume_ids: vec![],
            filters: vec![],
            page: Default::default(),
        })
        .await
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(modifications[0].state, VolumeModificationState::Completed);
    // Never smaller; something must change.
    for change in [
        ModifyVolume {
            size: Some(19),
            ..Default::default()
        },
        ModifyVolume {
            size: Some(20),
            ..Default::default()
        },
    ] {
        let e = w
            .call(V::ModifyVolume {
                volume_id: v.id.clone(),
                change,
            })
            .await
            .unwrap_err();
        assert!(
            matches!(
                e,
                ErrorCode::InvalidParameterValue | ErrorCode::InvalidParameterCombination
            ),
            "{e:?}"
        );
    }
}

/// Each intermediate record a crash can leave is finished by the next pass, and a step the
/// pool fails leaves `error`.
#[tokio::test]
async fn convergence_resumes_from_every_record() {
    let (w, pool) = world();
    let inst = running(&w).await;
    let v = create(&w, new("us-east-1a", 1)).await.unwrap();
    // Crash after the record, before the host step: the pool has nothing yet.
    assert!(pool.volumes.lock().unwrap().is_empty());
    converge(&w).await;
    // Crash after the host step, before the record: the step runs again, harmlessly.
    let mut row = rows(&w).remove(0);
    row.state = VolumeState::Creating;
    w.cloud
        .store()
        .write(|tx| tx.volumes().update(&row, 1))
        .unwrap();
    converge(&w).await;
    assert_eq!(volume(&w, &v.id).await.state, VolumeState::Available);
    attach(&w, &v.id, &inst, "/dev/sdf").await.unwrap();
    converge(&w).await;
    let mut row = rows(&w).remove(0);
    row.attachment.as_mut().unwrap().state = VolumeAttachmentState::Attaching;
    w.cloud
        .store()
        .write(|tx| tx.volumes().update(&row, 1))
        .unwrap();
    converge(&w).await;
    assert_eq!(
        volume(&w, &v.id).await.attachments[0].state,
        VolumeAttachmentState::Attached
    );
    detach(&w, &v.id, false).await.unwrap();
    converge(&w).await;
    converge(&w).await;
    assert_eq!(volume(&w, &v.id).await.state, VolumeState::Available);
    // A pool failure: error, with the volume kept for the user to delete.
    let bad = create(&w, new("us-east-1a", 1)).await.unwrap();
    pool.fail.lock().unwrap().insert(bad.id.clone());
    converge(&w).await;
    assert_eq!(volume(&w, &bad.id).await.state, VolumeState::Error);
    pool.fail.lock().unwrap().clear();
    w.call(V::DeleteVolume {
        volume_id: bad.id.clone(),
    })
    .await
    .unwrap();
    converge(&w).await;
    assert!(rows(&w).iter().all(|r| r.id != bad.id));
}

#[tokio::test]
async fn bad_requests_change_nothing() {
    let (w, _pool) = world();
    let inst = running(&w).await;
    let v = create(&w, new("us-east-1a", 1)).await.unwrap();
    converge(&w).await;
    let before = rows(&w);
    let cases: Vec<(CreateVolume, ErrorCode)> = vec![
        (new("us-east-1z", 1), ErrorCode::InvalidParameterValue),
        (
            CreateVolume {
                size: Some(1),
                ..Default::default()
            },
            ErrorCode::MissingParameter,
        ),
        (
            CreateVolume {
                availability_zone: Some("us-east-1a".into()),
                ..Default::default()
            },
            ErrorCode::MissingParameter,
        ),
        (new("us-east-1a", 16385), ErrorCode::InvalidParameterValue),
        (
            CreateVolume {
                volume_type: Some(VolumeType::Gp2),
                iops: Some(100),
                ..new("us-east-1a", 1)
            },
            ErrorCode::InvalidParameterCombination,
        ),
        (
            CreateVolume {
                volume_type: Some(VolumeType::St1),
                ..new("us-east-1a", 1)
            },
            ErrorCode::InvalidParameterValue,
        ),
        (
            CreateVolume {
                snapshot_id: Some("snap-bad".into()),
                ..new("us-east-1a", 1)
            },
            ErrorCode::InvalidSnapshotIDMalformed,
        ),
        (
            CreateVolume {
                snapshot_id: Some("snap-0123456789abcdef0".into()),
                ..new("us-east-1a", 1)
            },
            ErrorCode::InvalidSnapshotNotFound,
        ),
        (new("us-east-1a", 60000), ErrorCode::InvalidParameterValue),
    ];
    for (req, code) in cases {
        assert_eq!(create(&w, req.clone()).await.unwrap_err(), code, "{req:?}");
    }
    // The quota: 50 TiB of gp2.
    for _ in 0..3 {
        create(&w, new("us-east-1a", 16384)).await.unwrap();
    }
    assert_eq!(
        create(&w, new("us-east-1a", 16384)).await.unwrap_err(),
        ErrorCode::VolumeLimitExceeded
    );
    let before_attach = rows(&w);
    let other_az = create(&w, new("us-east-1b", 1)).await.unwrap();
    converge(&w).await;
    assert_eq!(
        attach(&w, &other_az.id, &inst, "/dev/sdf")
            .await
            .unwrap_err(),
        ErrorCode::InvalidVolumeZoneMismatch
    );
    assert_eq!(
        attach(&w, &v.id, &inst, "/dev/foo").await.unwrap_err(),
        ErrorCode::InvalidParameterValue
    );
    assert_eq!(
        attach(&w, "vol-nope", &inst, "/dev/sdf").await.unwrap_err(),
        ErrorCode::InvalidVolumeIDMalformed
    );
    assert_eq!(
        attach(&w, "vol-0123456789abcdef0", &inst, "/dev/sdf")
            .await
            .unwrap_err(),
        ErrorCode::InvalidVolumeNotFound
    );
    assert_eq!(
        attach(&w, &v.id, "i-0123456789abcdef0", "/dev/sdf")
            .await
            .unwrap_err(),
        ErrorCode::InvalidInstanceIDNotFound
    );
    assert_eq!(
        detach(&w, &v.id, false).await.unwrap_err(),
        ErrorCode::IncorrectState
    );
    let after: Vec<VolumeRow> = rows(&w)
        .into_iter()
        .filter(|r| r.id != other_az.id)
        .collect();
    assert_eq!(after.len(), before_attach.len());
    assert!(before.iter().all(|b| after.contains(b)), "nothing changed");
    // Another account's volume does not exist for bob.
    let bob = testing::other(&w.cloud, "bob");
    let e = w
        .cloud
        .dispatch(
            &bob,
            gureum_ec2::Request {
                action: V::DeleteVolume {
                    volume_id: v.id.clone(),
                }
                .into(),
                dry_run: false,
            },
        )
        .await
        .unwrap_err();
    assert_eq!(e.to_api().code, ErrorCode::InvalidVolumeNotFound);
    assert_eq!(volume(&w, &v.id).await.state, VolumeState::Available);
}

/// Without a volume pool (a host without block storage, or no host), volumes cannot be made:
/// EC2's `InsufficientVolumeCapacity`, and nothing is recorded.
#[tokio::test]
async fn no_pool_no_volumes() {
    let (_dir, cloud, ctx) = testing::cloud();
    let e = cloud
        .dispatch(
            &ctx,
            gureum_ec2::Request {
                action: V::CreateVolume(new("us-east-1a", 1)).into(),
                dry_run: false,
            },
        )
        .await
        .unwrap_err();
    assert_eq!(e.to_api().code, ErrorCode::InsufficientVolumeCapacity);
    assert!(cloud
        .store()
        .read(|tx| tx.volumes().all())
        .unwrap()
        .is_empty());
}
