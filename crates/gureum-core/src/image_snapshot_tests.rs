//! Images registered from EBS snapshots against fake drivers: `pending` then `available` with
//! the root filesystem the host made from the snapshot's file, launches from it, a failed
//! import, a crash between the host's step and its record, bad requests that record nothing,
//! the snapshot held until the image is deregistered, and the image's files removed only once
//! nothing uses them.

use std::sync::Arc;

use gureum_ec2::ops::images::{
    Action as I, ImageBlockDeviceRequest, RegisterImage, Response as IR,
};
use gureum_ec2::ops::snapshots::{Action as S, Permission, Response as SR};
use gureum_ec2::ops::volumes::{Action as V, CreateVolume, Response as VR};
use gureum_types::model::{Image, ImageBlockDevice};
use gureum_types::{ErrorCode, ImageState, VolumeType};

use crate::fake::{FakeImages, FakeVolumes};
use crate::host::HostImages;
use crate::lifecycle_tests::{run, world_with_images, World};
use crate::testing;

fn world() -> (World, Arc<FakeImages>) {
    let images = Arc::new(FakeImages::default());
    let w = world_with_images(Arc::new(FakeVolumes::default()), images.clone());
    (w, images)
}

async fn converge(w: &World) {
    w.agent.converge_volumes().await.unwrap();
}

/// A completed snapshot of a new `size` GiB volume.
async fn snapshot(w: &World, size: u32) -> String {
    let VR::Volume(v) = w
        .call(V::CreateVolume(CreateVolume {
            availability_zone: Some("us-east-1a".into()),
            size: Some(size),
            ..Default::default()
        }))
        .await
        .unwrap()
    else {
        panic!()
    };
    converge(w).await;
    let SR::Snapshot(s) = w
        .call(S::CreateSnapshot {
            volume_id: v.id,
            description: String::new(),
            tag_specifications: vec![],
        })
        .await
        .unwrap()
    else {
        panic!()
    };
    converge(w).await;
    s.id
}

fn root(snapshot_id: &str) -> ImageBlockDeviceRequest {
    ImageBlockDeviceRequest {
        device_name: "/dev/xvda".into(),
        snapshot_id: Some(snapshot_id.into()),
        ..Default::default()
    }
}

fn request(name: &str, mappings: Vec<ImageBlockDeviceRequest>) -> RegisterImage {
    RegisterImage {
        name: name.into(),
        root_device_name: Some("/dev/xvda".into()),
        block_device_mappings: mappings,
        ..Default::default()
    }
}

async fn register(w: &World, req: RegisterImage) -> Result<String, ErrorCode> {
    match w.call(I::RegisterImage(Box::new(req))).await? {
        IR::ImageId(id) => Ok(id),
        r => panic!("{r:?}"),
    }
}

async fn own_images(w: &World) -> Vec<Image> {
    match w
        .call(I::DescribeImages {
            image_ids: vec![],
            owners: vec!["self".into()],
            executable_users: vec![],
            filters: vec![],
            page: Default::default(),
        })
        .await
        .unwrap()
    {
        IR::DescribeImages { images, .. } => images,
        r => panic!("{r:?}"),
    }
}

async fn image(w: &World, id: &str) -> Image {
    own_images(w)
        .await
        .into_iter()
        .find(|i| i.id == id)
        .expect("the image")
}

async fn delete_snapshot(w: &World, id: &str) -> Result<SR, ErrorCode> {
    w.call(S::DeleteSnapshot {
        snapshot_id: id.into(),
    })
    .await
}

#[tokio::test]
async fn an_image_from_a_snapshot_becomes_available_and_boots() {
    let (w, images) = world();
    let snap = snapshot(&w, 10).await;
    let mut req = request("from-snapshot", vec![root(&snap)]);
    req.description = Some("mine".into());
    req.block_device_mappings[0].volume_size = Some(12);
    req.block_device_mappings[0].delete_on_termination = Some(false);
    let id = register(&w, req).await.unwrap();

    let img = image(&w, &id).await;
    assert_eq!(img.state, ImageState::Pending);
    assert_eq!(img.description, "mine");
    assert_eq!(img.root_device_name, "/dev/xvda");
    assert_eq!(
        img.block_devices,
        [ImageBlockDevice {
            device_name: "/dev/xvda".into(),
            snapshot_id: Some(snap.clone()),
            volume_size: 12,
            volume_type: VolumeType::Gp2,
            delete_on_termination: false,
        }]
    );
    assert_eq!(img.root_size_gib, 12);
    // Not launchable until the host has made its root filesystem.
    assert!(images.made.lock().unwrap().is_empty());

    converge(&w).await;
    assert_eq!(
        images.made.lock().unwrap().get(&id),
        Some(&std::path::PathBuf::from(format!("/snapshots/{snap}")))
    );
    let img = image(&w, &id).await;
    assert_eq!(img.state, ImageState::Available);
    assert_eq!(img.login_user, "ubuntu", "the root filesystem's user");
    // Converging again imports nothing more.
    converge(&w).await;
    assert_eq!(images.log.lock().unwrap().len(), 1);

    // It boots: the guest's root is the image's root filesystem.
    let inst = w.launch(run(&id, 1)).await.remove(0).id;
    w.settle().await;
    let guests = w.compute.guests.lock().unwrap();
    let (_, spec) = guests.get(&inst).expect("the guest");
    assert_eq!(spec.image_rootfs, FakeImages::rootfs(&id));
    assert_eq!(spec.volume_gib, 12);
}

#[tokio::test]
async fn a_root_filesystem_the_host_cannot_make_fails_the_image() {
    let (w, images) = world();
    let snap = snapshot(&w, 4).await;
    let id = register(&w, request("not-a-root", vec![root(&snap)]))
        .await
        .unwrap();
    images.fail.lock().unwrap().insert(id.clone());
    converge(&w).await;
    let img = image(&w, &id).await;
    assert_eq!(img.state, ImageState::Failed);
    assert!(
        img.state_reason
            .as_deref()
            .is_some_and(|r| r.contains("no root filesystem")),
        "{:?}",
        img.state_reason
    );
    // A failed image is not tried again.
    converge(&w).await;
    assert_eq!(images.log.lock().unwrap().len(), 1);
}

/// A kill -9 after the host made the root filesystem but before it was recorded: the image is
/// still `pending`, and the next pass makes it again and records it.
#[tokio::test]
async fn an_import_interrupted_before_its_record_is_done_again() {
    let (w, images) = world();
    let snap = snapshot(&w, 4).await;
    let id = register(&w, request("crashed", vec![root(&snap)]))
        .await
        .unwrap();
    let jobs = w.cloud.image_jobs().await.unwrap();
    assert_eq!(jobs.len(), 1);
    images
        .import_disk(&id, std::path::Path::new("/snapshots/x"))
        .await
        .unwrap();
    assert_eq!(image(&w, &id).await.state, ImageState::Pending);
    converge(&w).await;
    assert_eq!(image(&w, &id).await.state, ImageState::Available);
    assert_eq!(images.log.lock().unwrap().len(), 2);
    assert!(w.cloud.image_jobs().await.unwrap().is_empty());
}

#[tokio::test]
async fn bad_requests_record_nothing() {
    let (w, _) = world();
    let snap = snapshot(&w, 8).await;
    let bad = [
        (
            request("x", vec![root(&snap)]),
            ErrorCode::InvalidAMINameMalformed,
        ),
        (
            RegisterImage {
                image_location: Some("my-bucket/image.manifest.xml".into()),
                ..request("from-s3", vec![])
            },
            ErrorCode::UnsupportedOperation,
        ),
        (
            RegisterImage {
                architecture: Some(gureum_types::Architecture::Arm64),
                ..request("arm", vec![root(&snap)])
            },
            ErrorCode::InvalidParameterValue,
        ),
        (
            request("no-root", vec![]),
            ErrorCode::InvalidBlockDeviceMapping,
        ),
        (
            RegisterImage {
                root_device_name: Some("/dev/sda1".into()),
                ..request("root-elsewhere", vec![root(&snap)])
            },
            ErrorCode::InvalidBlockDeviceMapping,
        ),
        (
            request("bad-device", {
                let mut m = root(&snap);
                m.device_name = "/dev/vda".into();
                vec![m]
            }),
            ErrorCode::InvalidParameterValue,
        ),
        (
            request("too-small", {
                let mut m = root(&snap);
                m.volume_size = Some(4);
                vec![m]
            }),
            ErrorCode::InvalidBlockDeviceMapping,
        ),
        (
            request("no-such-snapshot", vec![root("snap-0123456789abcdef0")]),
            ErrorCode::InvalidSnapshotNotFound,
        ),
        (
            request("malformed-snapshot", vec![root("snapshot-1")]),
            ErrorCode::InvalidSnapshotIDMalformed,
        ),
        (
            request(
                "twice",
                vec![root(&snap), {
                    let mut m = root(&snap);
                    m.snapshot_id = None;
                    m.volume_size = Some(1);
                    m
                }],
            ),
            ErrorCode::InvalidBlockDeviceMapping,
        ),
        (
            request(
                "data-without-size",
                vec![root(&snap), {
                    let mut m = root(&snap);
                    m.device_name = "/dev/sdf".into();
                    m.snapshot_id = None;
                    m
                }],
            ),
            ErrorCode::MissingParameter,
        ),
    ];
    for (req, code) in bad {
        let name = req.name.clone();
        assert_eq!(register(&w, req).await.unwrap_err(), code, "{name}");
    }
    assert!(own_images(&w).await.is_empty());

    // A pending snapshot is not usable yet.
    let VR::Volume(v) = w
        .call(V::CreateVolume(CreateVolume {
            availability_zone: Some("us-east-1a".into()),
            size: Some(1),
            ..Default::default()
        }))
        .await
        .unwrap()
    else {
        panic!()
    };
    converge(&w).await;
    let SR::Snapshot(pending) = w
        .call(S::CreateSnapshot {
            volume_id: v.id,
            description: String::new(),
            tag_specifications: vec![],
        })
        .await
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(
        register(&w, request("pending", vec![root(&pending.id)]))
            .await
            .unwrap_err(),
        ErrorCode::IncorrectState
    );

    // The name is the account's: a second image of the same name is refused.
    register(&w, request("taken", vec![root(&snap)]))
        .await
        .unwrap();
    assert_eq!(
        register(&w, request("taken", vec![root(&snap)]))
            .await
            .unwrap_err(),
        ErrorCode::InvalidAMINameDuplicate
    );
    assert_eq!(own_images(&w).await.len(), 1);
}

#[tokio::test]
async fn another_accounts_snapshot_needs_its_permission() {
    let (w, _) = world();
    let snap = snapshot(&w, 4).await;
    let bob = testing::other(&w.cloud, "bob");
    let as_bob = |req: RegisterImage| {
        w.cloud.dispatch(
            &bob,
            gureum_ec2::Request {
                action: I::RegisterImage(Box::new(req)).into(),
                dry_run: false,
            },
        )
    };
    let e = as_bob(request("bobs", vec![root(&snap)]))
        .await
        .unwrap_err();
    assert_eq!(e.to_api().code, ErrorCode::InvalidSnapshotNotFound);
    w.call(S::ModifySnapshotAttribute {
        snapshot_id: snap.clone(),
        add: vec![Permission::User(bob.account_id.clone())],
        remove: vec![],
    })
    .await
    .unwrap();
    as_bob(request("bobs", vec![root(&snap)])).await.unwrap();
    // Bob's image holds the owner's snapshot too.
    assert_eq!(
        delete_snapshot(&w, &snap).await.unwrap_err(),
        ErrorCode::InvalidSnapshotInUse
    );
}

#[tokio::test]
async fn the_snapshot_is_kept_until_the_image_is_deregistered_and_then_its_files_go() {
    let (w, images) = world();
    let snap = snapshot(&w, 4).await;
    let id = register(&w, request("held", vec![root(&snap)]))
        .await
        .unwrap();
    converge(&w).await;
    let e = w
        .cloud
        .dispatch(
            &w.ctx,
            gureum_ec2::Request {
                action: S::DeleteSnapshot {
                    snapshot_id: snap.clone(),
                }
                .into(),
                dry_run: false,
            },
        )
        .await
        .unwrap_err()
        .to_api();
    assert_eq!(e.code, ErrorCode::InvalidSnapshotInUse);
    assert_eq!(
        e.message,
        format!("The snapshot {snap} is currently in use by {id}")
    );

    // A copy shares the root filesystem; an instance runs from the image.
    let IR::ImageId(copy) = w
        .call(I::CopyImage {
            source_image_id: id.clone(),
            source_region: "us-east-1".into(),
            name: "copy".into(),
            description: None,
            copy_image_tags: false,
            tag_specifications: vec![],
        })
        .await
        .unwrap()
    else {
        panic!()
    };
    let inst = w.launch(run(&id, 1)).await.remove(0).id;
    w.settle().await;

    w.call(I::DeregisterImage {
        image_id: id.clone(),
    })
    .await
    .unwrap();
    // The image is gone, its snapshot is free, its files stay while something uses them.
    delete_snapshot(&w, &snap).await.unwrap();
    converge(&w).await;
    assert!(images.made.lock().unwrap().contains_key(&id));
    w.call(I::DeregisterImage { image_id: copy }).await.unwrap();
    converge(&w).await;
    assert!(
        images.made.lock().unwrap().contains_key(&id),
        "the instance uses it"
    );
    w.call(gureum_ec2::ops::instances::Action::TerminateInstances {
        instance_ids: vec![inst],
    })
    .await
    .unwrap();
    w.settle().await;
    converge(&w).await;
    assert!(!images.made.lock().unwrap().contains_key(&id));
    assert!(w.cloud.image_jobs().await.unwrap().is_empty());
}

/// Deregistered while the host was still making it: what the import made goes too.
#[tokio::test]
async fn an_image_deregistered_while_pending_leaves_nothing() {
    let (w, images) = world();
    let snap = snapshot(&w, 4).await;
    let id = register(&w, request("short-lived", vec![root(&snap)]))
        .await
        .unwrap();
    let jobs = w.cloud.image_jobs().await.unwrap();
    w.call(I::DeregisterImage {
        image_id: id.clone(),
    })
    .await
    .unwrap();
    // The import that was under way finishes after the deregistration.
    let made = images
        .import_disk(&id, std::path::Path::new("/snapshots/x"))
        .await
        .unwrap();
    w.cloud
        .image_done(
            jobs[0].clone(),
            crate::image_snapshots::ImageOutcome::Imported(made),
        )
        .await
        .unwrap();
    converge(&w).await;
    assert!(images.made.lock().unwrap().is_empty());
    assert!(w.cloud.image_jobs().await.unwrap().is_empty());
}
