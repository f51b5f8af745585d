//! Root volumes as volumes, against fake drivers: a launch records its root volume (visible in
//! DescribeVolumes and in the instance's block device mappings) and its extra mappings'
//! volumes in its own transaction (a failed launch records none); the extra volumes are
//! created and hot-plugged once the instance runs; `DeleteOnTermination` both ways (a kept
//! root volume is exported before the guest is destroyed, then is an ordinary volume); a
//! snapshot of a root volume; `ModifyInstanceAttribute`'s `DeleteOnTermination`; the root
//! volume metered once.

use gureum_ec2::ops as ec2;
use gureum_ec2::ops::instances::{BlockDevice, DeviceDeleteOnTermination, InstanceAttributeChange};
use gureum_ec2::ops::snapshots::{Action as S, Response as SR};
use gureum_ec2::ops::volumes::{Action as V, Response as VR};
use gureum_types::model::Filter;
use gureum_types::{
    ErrorCode, InstanceState, SnapshotState, VolumeAttachmentState, VolumeState, VolumeType,
};

use crate::host::Volumes;
use crate::lifecycle_tests::{run, World};
use crate::volume_tests::{attach, converge, rows, running, snapshots, volume, world};

fn mapping(device: &str, size: Option<u32>, delete_on_termination: Option<bool>) -> BlockDevice {
    BlockDevice {
        device_name: device.into(),
        volume_size: size,
        delete_on_termination,
        ..Default::default()
    }
}

async fn launch_with(w: &World, mappings: Vec<BlockDevice>) -> Result<String, ErrorCode> {
    let mut req = run(&w.image, 1);
    req.block_devices = mappings;
    match w
        .call(ec2::instances::Action::RunInstances(Box::new(req)))
        .await?
    {
        ec2::instances::Response::RunInstances { reservation, .. } => {
            Ok(reservation.instances[0].id.clone())
        }
        r => panic!("{r:?}"),
    }
}

async fn terminate(w: &World, id: &str) {
    w.call(ec2::instances::Action::TerminateInstances {
        instance_ids: vec![id.into()],
    })
    .await
    .unwrap();
    w.settle().await;
    for _ in 0..3 {
        converge(w).await;
    }
}

async fn volumes_of(w: &World, instance: &str) -> Vec<String> {
    match w
        .call(V::DescribeVolumes {
            volume_ids: vec![],
            filters: vec![Filter {
                name: "attachment.instance-id".into(),
                values: vec![instance.into()],
            }],
            page: Default::default(),
        })
        .await
        .unwrap()
    {
        VR::DescribeVolumes { volumes, .. } => volumes.into_iter().map(|v| v.id).collect(),
        r => panic!("{r:?}"),
    }
}

#[tokio::test]
async fn a_launch_records_its_root_volume() {
    let (w, pool) = world();
    let id = launch_with(&w, vec![]).await.unwrap();
    let i = w.describe(&id).await;
    assert_eq!(i.block_devices.len(), 1);
    let root = &i.block_devices[0];
    assert_eq!(
        (root.device.as_str(), root.state, root.delete_on_termination),
        ("/dev/xvda", VolumeAttachmentState::Attached, true)
    );
    assert_eq!(root.volume_id, i.root_volume_id);
    assert_eq!(root.attach_time, i.launch_time);
    let v = volume(&w, &root.volume_id).await;
    assert_eq!(
        (v.state, v.size_gib, v.volume_type, v.iops, v.throughput),
        (
            VolumeState::InUse,
            8,
            VolumeType::Gp3,
            Some(3000),
            Some(125)
        ),
        "the image's root volume as DescribeImages shows it"
    );
    assert_eq!(v.availability_zone, i.availability_zone);
    assert_eq!(v.attachments[0].instance_id, id);
    assert_eq!(volumes_of(&w, &id).await, vec![root.volume_id.clone()]);
    // In use: not deleted, not detached.
    let vid = root.volume_id.clone();
    assert_eq!(
        w.call(V::DeleteVolume {
            volume_id: vid.clone()
        })
        .await
        .unwrap_err(),
        ErrorCode::VolumeInUse
    );
    assert_eq!(
        w.call(V::DetachVolume {
            volume_id: vid.clone(),
            instance_id: None,
            device: None,
            force: true,
        })
        .await
        .unwrap_err(),
        ErrorCode::OperationNotPermitted
    );
    // DeleteOnTermination: gone with the instance; the pool never held its bytes.
    w.settle().await;
    terminate(&w, &id).await;
    assert!(rows(&w).iter().all(|r| r.id != vid), "{:?}", rows(&w));
    assert!(pool.log.lock().unwrap().is_empty(), "{:?}", pool.log);
    assert!(w.compute.exported.lock().unwrap().is_empty());
}

#[tokio::test]
async fn mappings_size_the_root_and_add_volumes_attached_once_running() {
    let (w, pool) = world();
    let id = launch_with(
        &w,
        vec![
            BlockDevice {
                volume_type: Some(VolumeType::Gp2),
                ..mapping("/dev/xvda", Some(12), None)
            },
            mapping("/dev/sdf", Some(5), None),
            mapping("/dev/sdg", Some(1), Some(false)),
        ],
    )
    .await
    .unwrap();
    let vols = rows(&w);
    assert_eq!(vols.len(), 3);
    let root = vols.iter().find(|v| v.root).unwrap();
    assert_eq!((root.size_gib, root.volume_type), (12, VolumeType::Gp2));
    let sdf = vols
        .iter()
        .find(|v| v.attachment.as_ref().unwrap().device == "/dev/sdf")
        .unwrap()
        .clone();
    assert_eq!(
        (
            sdf.state,
            sdf.attachment.as_ref().unwrap().state,
            sdf.size_gib
        ),
        (VolumeState::Creating, VolumeAttachmentState::Attaching, 5)
    );
    assert_eq!(w.compute.spec_of(&id), None, "nothing on the host yet");
    // The guest boots without them (they are not made yet), then gets them hot-plugged.
    w.settle().await;
    for _ in 0..3 {
        converge(&w).await;
    }
    assert_eq!(w.describe(&id).await.state, InstanceState::Running);
    assert!(w.compute.spec_of(&id).unwrap().volumes.is_empty());
    assert_eq!(pool.volumes.lock().unwrap().get(&sdf.id), Some(&5));
    let plugged = w.compute.plugged.lock().unwrap().clone();
    assert_eq!(
        plugged.get(&(id.clone(), sdf.id.clone())),
        Some(&"/dev/sdf".into())
    );
    assert_eq!(plugged.len(), 2);
    let i = w.describe(&id).await;
    let shown: Vec<(&str, VolumeAttachmentState, bool)> = i
        .block_devices
        .iter()
        .map(|a| (a.device.as_str(), a.state, a.delete_on_termination))
        .collect();
    assert_eq!(
        shown,
        vec![
            ("/dev/xvda", VolumeAttachmentState::Attached, true),
            ("/dev/sdf", VolumeAttachmentState::Attached, true),
            ("/dev/sdg", VolumeAttachmentState::Attached, false),
        ]
    );
    assert_eq!(volume(&w, &sdf.id).await.state, VolumeState::InUse);

    // Termination: the extra volume that is not to be deleted stays, available.
    terminate(&w, &id).await;
    let left = rows(&w);
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(
        (
            left[0].attachment.is_none(),
            left[0].state,
            left[0].size_gib
        ),
        (true, VolumeState::Available, 1)
    );
    assert!(!pool.volumes.lock().unwrap().contains_key(&sdf.id));
}

#[tokio::test]
async fn a_failed_launch_records_no_volume() {
    let (w, _pool) = world();
    let bad = |m: Vec<BlockDevice>| launch_with(&w, m);
    assert_eq!(
        bad(vec![BlockDevice {
            snapshot_id: Some("snap-0123456789abcdef0".into()),
            ..mapping("/dev/sdf", None, None)
        }])
        .await
        .unwrap_err(),
        ErrorCode::InvalidSnapshotNotFound
    );
    assert_eq!(
        bad(vec![mapping("/dev/sdf", Some(20000), None)])
            .await
            .unwrap_err(),
        ErrorCode::InvalidParameterValue
    );
    assert_eq!(
        bad(vec![mapping("/dev/foo", Some(1), None)])
            .await
            .unwrap_err(),
        ErrorCode::InvalidBlockDeviceMapping
    );
    assert!(rows(&w).is_empty());
    assert!(w
        .cloud
        .store()
        .read(|tx| tx.instances().all())
        .unwrap()
        .is_empty());
    // Without a volume pool the root volume is still recorded, but no extra one can be.
    let w = crate::lifecycle_tests::world();
    assert_eq!(
        launch_with(&w, vec![mapping("/dev/sdf", Some(1), None)])
            .await
            .unwrap_err(),
        ErrorCode::InsufficientVolumeCapacity
    );
    let id = launch_with(&w, vec![]).await.unwrap();
    assert_eq!(rows(&w).len(), 1);
    w.settle().await;
    terminate(&w, &id).await;
    assert!(rows(&w).is_empty(), "released without a pool too");
}

#[tokio::test]
async fn a_root_volume_kept_past_its_instance_is_exported_before_the_guest_goes() {
    let (w, pool) = world();
    let id = launch_with(&w, vec![mapping("/dev/xvda", Some(10), Some(false))])
        .await
        .unwrap();
    w.settle().await;
    let vid = w.describe(&id).await.root_volume_id;
    assert!(!volume(&w, &vid).await.attachments[0].delete_on_termination);
    w.compute.log.lock().unwrap().clear();
    terminate(&w, &id).await;
    assert_eq!(w.describe(&id).await.state, InstanceState::Terminated);
    // The guest was shut down, exported into the pool, and only then destroyed.
    let log = w.compute.log.lock().unwrap().clone();
    let at = |what: &str| {
        log.iter()
            .position(|l| l.starts_with(what))
            .unwrap_or_else(|| panic!("no {what} in {log:?}"))
    };
    assert!(
        at("stop") < at("export") && at("export") < at("destroy"),
        "{log:?}"
    );
    assert_eq!(
        *w.compute.exported.lock().unwrap(),
        vec![(id.clone(), pool.path(&vid))]
    );
    // Now an ordinary volume: available, attachable elsewhere, deletable from the pool.
    let v = volume(&w, &vid).await;
    assert_eq!(
        (v.state, v.size_gib, v.attachments.len()),
        (VolumeState::Available, 10, 0)
    );
    let row = rows(&w).into_iter().find(|r| r.id == vid).unwrap();
    assert!(!row.root);
    // It outlives the instance's record.
    w.cloud
        .store()
        .write(|tx| tx.instances().purge_terminated(i64::MAX))
        .unwrap();
    assert_eq!(volume(&w, &vid).await.state, VolumeState::Available);
    let other = running(&w).await;
    attach(&w, &vid, &other, "/dev/sdf").await.unwrap();
    converge(&w).await;
    assert_eq!(
        w.compute
            .plugged
            .lock()
            .unwrap()
            .get(&(other.clone(), vid.clone())),
        Some(&"/dev/sdf".to_string())
    );
}

#[tokio::test]
async fn a_root_volume_that_cannot_be_kept_is_an_error_and_the_instance_still_ends() {
    let (w, _pool) = world();
    // Terminated before it ever booted: its guest has no files to export.
    let id = launch_with(&w, vec![mapping("/dev/xvda", None, Some(false))])
        .await
        .unwrap();
    let vid = w.describe(&id).await.root_volume_id;
    terminate(&w, &id).await;
    assert_eq!(w.describe(&id).await.state, InstanceState::Terminated);
    let v = volume(&w, &vid).await;
    assert_eq!((v.state, v.attachments.len()), (VolumeState::Error, 0));
}

#[tokio::test]
async fn modify_instance_attribute_changes_delete_on_termination() {
    let (w, _pool) = world();
    let id = running(&w).await;
    let vid = w.describe(&id).await.root_volume_id;
    let change =
        |device: &str, volume_id: Option<&str>| ec2::instances::Action::ModifyInstanceAttribute {
            instance_id: id.clone(),
            change: InstanceAttributeChange::DeleteOnTermination(vec![DeviceDeleteOnTermination {
                device_name: device.into(),
                volume_id: volume_id.map(String::from),
                delete_on_termination: false,
            }]),
        };
    assert_eq!(
        w.call(change("/dev/sdz", None)).await.unwrap_err(),
        ErrorCode::InvalidInstanceAttributeValue
    );
    assert_eq!(
        w.call(change("/dev/xvda", Some("vol-0123456789abcdef0")))
            .await
            .unwrap_err(),
        ErrorCode::InvalidInstanceAttributeValue
    );
    assert!(w.describe(&id).await.block_devices[0].delete_on_termination);
    w.call(change("/dev/xvda", Some(&vid))).await.unwrap();
    let i = w.describe(&id).await;
    assert!(!i.block_devices[0].delete_on_termination);
    assert!(!i.delete_on_termination);
    terminate(&w, &id).await;
    assert_eq!(volume(&w, &vid).await.state, VolumeState::Available);
}

#[tokio::test]
async fn a_snapshot_of_a_root_volume_is_an_export() {
    let (w, _pool) = world();
    let id = running(&w).await;
    let vid = w.describe(&id).await.root_volume_id;
    let SR::Snapshot(s) = w
        .call(S::CreateSnapshot {
            volume_id: vid.clone(),
            description: "root".into(),
            tag_specifications: vec![],
        })
        .await
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(s.volume_size, 8);
    converge(&w).await;
    assert_eq!(snapshots(&w).await[0].state, SnapshotState::Completed);
    assert_eq!(
        *w.compute.exported.lock().unwrap(),
        vec![(id.clone(), format!("/snapshots/{}", s.id).into())]
    );
    // CreateSnapshots takes the boot volume unless told not to.
    let SR::CreateSnapshots(all) = w
        .call(S::CreateSnapshots {
            instance_id: id.clone(),
            exclude_boot_volume: false,
            exclude_data_volume_ids: vec![],
            description: String::new(),
            tag_specifications: vec![],
            copy_tags: false,
        })
        .await
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(all.len(), 1);
    let SR::CreateSnapshots(none) = w
        .call(S::CreateSnapshots {
            instance_id: id,
            exclude_boot_volume: true,
            exclude_data_volume_ids: vec![],
            description: String::new(),
            tag_specifications: vec![],
            copy_tags: false,
        })
        .await
        .unwrap()
    else {
        panic!()
    };
    assert!(none.is_empty());
}

#[tokio::test]
async fn an_older_data_dirs_storage_interval_still_closes() {
    use gureum_store::usage;
    let (w, _pool) = world();
    let id = running(&w).await;
    let acct = w.ctx.account_id.clone();
    // As a launch before root volumes were records left it.
    w.cloud
        .store()
        .write(|tx| tx.usage().open(&acct, &id, usage::STORAGE, "gp3", 8.0, 1))
        .unwrap();
    terminate(&w, &id).await;
    let open: Vec<_> = w
        .cloud
        .store()
        .read(|tx| tx.usage().overlapping(None, 0, i64::MAX))
        .unwrap()
        .into_iter()
        .filter(|r| r.end_ms.is_none() && r.kind != usage::ELASTIC_IP)
        .collect();
    assert!(open.is_empty(), "{open:?}");
}
