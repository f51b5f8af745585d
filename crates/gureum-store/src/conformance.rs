//! The conformance suite: what every backend of [`Store`] must do, written against the traits
//! only, so the SQLite backend and a later PostgreSQL one run the same checks. A backend's
//! tests call [`run_all`] with a function that makes a fresh, empty, migrated store each time.
//!
//! It checks what the core relies on: transactions (commit, rollback on an error or a panic,
//! reads outside writes), account scoping (another account's rows are invisible), uniqueness
//! (taken names answer `false`, other constraints [`StoreError::Conflict`]), and the orders
//! the Describe pagination and the host agent depend on.

use std::collections::HashSet;
use std::sync::Arc;

use gureum_types::model::{AccessKey, SecurityGroupRule, Tag};
use gureum_types::{
    HttpEndpoint, HttpTokens, ImageState, InstanceState, IpProtocol, ShutdownBehavior,
    SnapshotState, Tenancy, VolumeAttachmentState, VolumeState, VolumeType,
};

use crate::addresses::AddressRow;
use crate::images::{BlockDeviceRow, ImageRow};
use crate::instances::{InstanceField, InstanceRow};
use crate::key_pairs::KeyPairRow;
use crate::routing::{AssociationRow, InternetGatewayRow, RouteRow, RouteTableRow};
use crate::security_groups::GroupRow;
use crate::volumes::{AttachmentRow, EbsKind, SnapshotRow, VolumeRow};
use crate::vpcs::{SubnetRow, VpcFlag, VpcRow};
use crate::{Store, StoreError, StoreResult, Tx};

const A: &str = "111111111111";
const B: &str = "222222222222";

type Check = fn(&dyn Store);

const CHECKS: &[(&str, Check)] = &[
    ("transactions", transactions),
    ("accounts", accounts),
    ("resources", resources),
    ("key_pairs", key_pairs),
    ("tags", tags),
    ("images", images),
    ("vpcs", vpcs),
    ("instances", instances),
    ("public_addresses", public_addresses),
    ("security_groups", security_groups),
    ("addresses", addresses),
    ("routing", routing),
    ("usage", usage),
    ("budgets_and_console", budgets_and_console),
    ("volumes", volumes),
    ("snapshots", snapshots),
    ("image_block_devices", image_block_devices),
];

/// Run every check, each on a fresh store from `make`. Panics on the first failure, naming
/// the check.
pub fn run_all(make: impl Fn() -> Arc<dyn Store>) {
    for (name, check) in CHECKS {
        let store = make();
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(&*store)));
        if let Err(e) = outcome {
            eprintln!("store conformance check `{name}` failed");
            std::panic::resume_unwind(e);
        }
    }
}

fn w<T>(s: &dyn Store, f: impl FnOnce(&dyn Tx) -> StoreResult<T>) -> T {
    s.write(f).expect("a write")
}

fn r<T>(s: &dyn Store, f: impl FnOnce(&dyn Tx) -> StoreResult<T>) -> T {
    s.read(f).expect("a read")
}

/// Accounts `A` and `B`.
fn two_accounts(s: &dyn Store) {
    w(s, |tx| {
        tx.accounts().insert(A, "alice", 1)?;
        tx.accounts().insert(B, "bob", 2)
    });
}

fn resource(s: &dyn Store, account: &str, id: &str, kind: &str) {
    w(s, |tx| tx.resources().insert(id, account, kind, 1));
}

fn transactions(s: &dyn Store) {
    two_accounts(s);
    // An error rolls back everything the closure did.
    let e = s
        .write(|tx| {
            tx.resources().insert("key-1", A, "key-pair", 1)?;
            Err::<(), _>(StoreError::NotFound("on purpose".into()))
        })
        .unwrap_err();
    assert!(matches!(e, StoreError::NotFound(_)));
    assert_eq!(r(s, |tx| tx.resources().kind_of(A, "key-1")), None);
    // A panic rolls back too, and the store keeps working.
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _ = s.write(|tx| {
            tx.resources().insert("key-2", A, "key-pair", 1)?;
            panic!("a bug in a request");
            #[allow(unreachable_code)]
            Ok::<_, StoreError>(())
        });
    }));
    assert!(caught.is_err());
    assert_eq!(r(s, |tx| tx.resources().kind_of(A, "key-2")), None);
    // A success commits every change together, and the closure's value comes back.
    let v = w(s, |tx| {
        tx.resources().insert("key-3", A, "key-pair", 1)?;
        tx.resources().insert("key-4", A, "key-pair", 1)?;
        Ok(7)
    });
    assert_eq!(v, 7);
    let kinds = r(s, |tx| {
        Ok((
            tx.resources().kind_of(A, "key-3")?,
            tx.resources().kind_of(A, "key-4")?,
        ))
    });
    assert_eq!(kinds, (Some("key-pair".into()), Some("key-pair".into())));
    // A write sees its own changes before it commits.
    w(s, |tx| {
        tx.resources().insert("key-5", A, "key-pair", 1)?;
        assert_eq!(tx.resources().kind_of(A, "key-5")?, Some("key-pair".into()));
        Ok(())
    });
    // A read cannot change anything.
    assert!(s
        .read(|tx| tx.resources().insert("key-6", A, "key-pair", 1))
        .is_err());
    assert_eq!(r(s, |tx| tx.resources().kind_of(A, "key-6")), None);
    // A broken constraint is a conflict, and rolls back the write.
    let e = s
        .write(|tx| {
            tx.resources().insert("key-7", A, "key-pair", 1)?;
            tx.resources().insert("key-3", A, "key-pair", 1)
        })
        .unwrap_err();
    assert!(matches!(e, StoreError::Conflict(_)), "{e:?}");
    assert_eq!(r(s, |tx| tx.resources().kind_of(A, "key-7")), None);
}

fn accounts(s: &dyn Store) {
    w(s, |tx| {
        tx.accounts().insert(B, "bob", 5)?;
        tx.accounts().insert(A, "alice", 5)?;
        tx.accounts().insert("000000000001", "first", 1)
    });
    // By creation time, then id.
    let ids: Vec<String> = r(s, |tx| tx.accounts().list())
        .into_iter()
        .map(|a| a.id)
        .collect();
    assert_eq!(ids, ["000000000001", A, B]);
    assert_eq!(r(s, |tx| tx.accounts().find("bob")).unwrap().id, B);
    assert_eq!(r(s, |tx| tx.accounts().find(B)).unwrap().name, "bob");
    assert_eq!(r(s, |tx| tx.accounts().find("carol")), None);
    let e = s.write(|tx| tx.accounts().insert("333333333333", "bob", 6));
    assert!(matches!(e, Err(StoreError::Conflict(_))), "{e:?}");
    let key = |id: &str, account: &str| AccessKey {
        access_key_id: id.into(),
        secret_access_key: format!("secret-{id}"),
        account_id: account.into(),
    };
    w(s, |tx| {
        tx.accounts().insert_access_key(&key("AKIA2", A), 2)?;
        tx.accounts().insert_access_key(&key("AKIA1", A), 3)?;
        tx.accounts().insert_access_key(&key("AKIA3", B), 1)
    });
    assert_eq!(
        r(s, |tx| tx.accounts().find_access_key("AKIA3")),
        Some(key("AKIA3", B))
    );
    assert_eq!(r(s, |tx| tx.accounts().find_access_key("AKIA9")), None);
    // The account's own keys, oldest first.
    assert_eq!(
        r(s, |tx| tx.accounts().access_keys_of(A)),
        vec![key("AKIA2", A), key("AKIA1", A)]
    );
}

fn resources(s: &dyn Store) {
    two_accounts(s);
    resource(s, A, "key-a", "key-pair");
    assert_eq!(
        r(s, |tx| tx.resources().kind_of(A, "key-a")),
        Some("key-pair".into())
    );
    // Another account's resource does not exist for it, and cannot be deleted by it.
    assert_eq!(r(s, |tx| tx.resources().kind_of(B, "key-a")), None);
    assert!(!w(s, |tx| tx.resources().delete(B, "key-a")));
    w(s, |tx| tx.tags().put(A, "key-a", &[tag("k", "v")]));
    assert!(w(s, |tx| tx.resources().delete(A, "key-a")));
    assert!(!w(s, |tx| tx.resources().delete(A, "key-a")));
    // Deleting the registry row takes the resource's tags with it.
    assert!(r(s, |tx| tx.tags().all_by_resource(A)).is_empty());
}

fn key_row(id: &str, name: &str) -> KeyPairRow {
    KeyPairRow {
        id: id.into(),
        name: name.into(),
        fingerprint: "fp".into(),
        key_type: "ed25519".into(),
        public_key: "ssh-ed25519 AAAA".into(),
        created_at: 1,
    }
}

fn key_pairs(s: &dyn Store) {
    two_accounts(s);
    for (acct, id) in [(A, "key-2"), (A, "key-1"), (A, "key-3"), (B, "key-4")] {
        resource(s, acct, id, "key-pair");
    }
    assert!(w(s, |tx| tx
        .key_pairs()
        .insert(A, &key_row("key-2", "one"))));
    assert!(w(s, |tx| tx
        .key_pairs()
        .insert(A, &key_row("key-1", "two"))));
    // A taken name answers false, and the other account may use it.
    assert!(!w(s, |tx| tx
        .key_pairs()
        .insert(A, &key_row("key-3", "one"))));
    assert!(w(s, |tx| tx
        .key_pairs()
        .insert(B, &key_row("key-4", "one"))));
    assert!(r(s, |tx| tx.key_pairs().name_taken(A, "one")));
    assert!(!r(s, |tx| tx.key_pairs().name_taken(A, "three")));
    // Only the account's own, by id.
    let ids: Vec<String> = r(s, |tx| tx.key_pairs().list(A))
        .into_iter()
        .map(|k| k.id)
        .collect();
    assert_eq!(ids, ["key-1", "key-2"]);
    assert_eq!(
        r(s, |tx| tx.key_pairs().list(B)),
        vec![key_row("key-4", "one")]
    );
    // Deleting the registry row deletes the key pair.
    w(s, |tx| tx.resources().delete(A, "key-1"));
    assert!(!r(s, |tx| tx.key_pairs().name_taken(A, "two")));
}

fn tag(k: &str, v: &str) -> Tag {
    Tag {
        key: k.into(),
        value: v.into(),
    }
}

fn tags(s: &dyn Store) {
    two_accounts(s);
    resource(s, A, "key-b", "key-pair");
    resource(s, A, "key-a", "key-pair");
    resource(s, B, "key-c", "key-pair");
    w(s, |tx| {
        tx.tags().put(A, "key-b", &[tag("z", "1"), tag("a", "2")])?;
        tx.tags().put(A, "key-a", &[tag("m", "3")])?;
        tx.tags().put(B, "key-c", &[tag("a", "other")])?;
        // Overwrites.
        tx.tags().put(A, "key-b", &[tag("z", "9")])
    });
    let by_resource = r(s, |tx| tx.tags().all_by_resource(A));
    assert_eq!(by_resource.len(), 2);
    assert_eq!(by_resource["key-b"], vec![tag("a", "2"), tag("z", "9")]);
    let mut keys = r(s, |tx| tx.tags().keys_of(A, "key-b"));
    keys.sort();
    assert_eq!(keys, ["a", "z"]);
    assert!(r(s, |tx| tx.tags().keys_of(B, "key-b")).is_empty());
    // DescribeTags' rows: by resource id, then key.
    let rows = r(s, |tx| tx.tags().describe(A));
    let want = |id: &str, k: &str, v: &str| (id.into(), "key-pair".into(), k.into(), v.into());
    assert_eq!(
        rows,
        vec![
            want("key-a", "m", "3"),
            want("key-b", "a", "2"),
            want("key-b", "z", "9")
        ]
    );
    // A value that does not match deletes nothing; a matching one or none deletes.
    w(s, |tx| tx.tags().delete(A, "key-b", "a", Some("wrong")));
    assert_eq!(r(s, |tx| tx.tags().keys_of(A, "key-b")).len(), 2);
    w(s, |tx| tx.tags().delete(A, "key-b", "a", Some("2")));
    w(s, |tx| tx.tags().delete(A, "key-b", "z", None));
    assert!(r(s, |tx| tx.tags().keys_of(A, "key-b")).is_empty());
    // Another account cannot delete them.
    w(s, |tx| tx.tags().delete_all(B, "key-a"));
    assert_eq!(r(s, |tx| tx.tags().keys_of(A, "key-a")), ["m"]);
    w(s, |tx| tx.tags().delete_all(A, "key-a"));
    assert!(r(s, |tx| tx.tags().describe(A)).is_empty());
    assert_eq!(r(s, |tx| tx.tags().describe(B)).len(), 1);
}

fn image_row(id: &str, account: &str, name: &str) -> ImageRow {
    ImageRow {
        id: id.into(),
        account_id: account.into(),
        name: name.into(),
        description: String::new(),
        state: ImageState::Available,
        state_reason: None,
        public: false,
        owner_alias: None,
        login_user: "admin".into(),
        root_size_gib: 8,
        rootfs: Some("/rootfs".into()),
        source: format!("source-{name}"),
        source_instance_id: None,
        source_image_id: None,
        created_at: 1,
    }
}

fn images(s: &dyn Store) {
    two_accounts(s);
    for (acct, id) in [
        (A, "ami-1"),
        (A, "ami-2"),
        (B, "ami-3"),
        (A, "ami-4"),
        (B, "ami-5"),
    ] {
        resource(s, acct, id, "image");
    }
    assert!(w(s, |tx| tx.images().insert(&image_row("ami-1", A, "one"))));
    assert!(w(s, |tx| tx.images().insert(&image_row("ami-2", A, "two"))));
    assert!(w(s, |tx| tx.images().insert(&image_row("ami-3", B, "one"))));
    // A taken name answers false.
    assert!(!w(s, |tx| tx
        .images()
        .insert(&image_row("ami-4", A, "one"))));
    let mut newer = image_row("ami-5", B, "newer");
    newer.source = "source-one".into();
    newer.created_at = 9;
    assert!(w(s, |tx| tx.images().insert(&newer)));
    let ids = |rows: Vec<ImageRow>| rows.into_iter().map(|i| i.id).collect::<Vec<_>>();
    assert_eq!(
        ids(r(s, |tx| tx.images().visible_to(A))),
        ["ami-1", "ami-2"]
    );
    assert_eq!(
        ids(r(s, |tx| tx.images().all())),
        ["ami-1", "ami-2", "ami-3", "ami-5"]
    );
    assert_eq!(
        r(s, |tx| tx.images().get("ami-3")),
        Some(image_row("ami-3", B, "one"))
    );
    // The latest image of a source.
    assert_eq!(
        r(s, |tx| tx.images().find_by_source("source-one")).map(|i| i.id),
        Some("ami-5".into())
    );
    // Public and shared images are visible to others, failed ones only to their owner.
    w(s, |tx| {
        tx.images().set_public("ami-3", true)?;
        tx.images().add_permission("ami-5", A)?;
        tx.images().add_permission("ami-5", "000000000009")
    });
    assert_eq!(
        ids(r(s, |tx| tx.images().visible_to(A))),
        ["ami-1", "ami-2", "ami-3", "ami-5"]
    );
    assert_eq!(
        r(s, |tx| tx.images().launch_permissions("ami-5")),
        ["000000000009", A]
    );
    w(s, |tx| {
        tx.images()
            .set_state("ami-3", ImageState::Failed, Some("broke"), None)
    });
    assert_eq!(
        ids(r(s, |tx| tx.images().visible_to(A))),
        ["ami-1", "ami-2", "ami-5"]
    );
    let failed = r(s, |tx| tx.images().get("ami-3")).unwrap();
    assert_eq!(
        (failed.state.as_str(), failed.state_reason.as_deref()),
        ("failed", Some("broke"))
    );
    assert_eq!(
        failed.rootfs.as_deref(),
        Some("/rootfs"),
        "kept when not given"
    );
    w(s, |tx| {
        tx.images()
            .set_state("ami-3", ImageState::Available, None, Some("/new"))
    });
    assert_eq!(
        r(s, |tx| tx.images().get("ami-3"))
            .unwrap()
            .rootfs
            .as_deref(),
        Some("/new")
    );
    w(s, |tx| tx.images().remove_permission("ami-5", A));
    assert_eq!(
        ids(r(s, |tx| tx.images().visible_to(A))),
        ["ami-1", "ami-2", "ami-3"]
    );
    w(s, |tx| tx.images().clear_permissions("ami-5"));
    assert!(r(s, |tx| tx.images().launch_permissions("ami-5")).is_empty());
    w(s, |tx| tx.images().set_description("ami-1", "described"));
    assert_eq!(
        r(s, |tx| tx.images().get("ami-1")).unwrap().description,
        "described"
    );
    // Renaming keeps the name unique per account.
    assert!(!w(s, |tx| tx.images().set_name_if_free("ami-1", "two")));
    assert!(w(s, |tx| tx.images().set_name_if_free("ami-1", "uno")));
    assert_eq!(r(s, |tx| tx.images().get("ami-1")).unwrap().name, "uno");
}

/// An image's block device mappings: listed, found by snapshot, gone with the image; the
/// trash of images whose files are to be removed.
fn image_block_devices(s: &dyn Store) {
    two_accounts(s);
    resource(s, A, "ami-1", "image");
    assert!(w(s, |tx| tx.images().insert(&image_row("ami-1", A, "one"))));
    let dev = |name: &str, root: bool, snap: Option<&str>| BlockDeviceRow {
        image_id: "ami-1".into(),
        device_name: name.into(),
        root,
        snapshot_id: snap.map(Into::into),
        volume_size: 8,
        volume_type: VolumeType::Gp3,
        delete_on_termination: true,
    };
    w(s, |tx| {
        tx.images()
            .add_block_device(&dev("/dev/xvdb", false, Some("snap-2")))?;
        tx.images()
            .add_block_device(&dev("/dev/xvda", true, Some("snap-1")))
    });
    assert_eq!(
        r(s, |tx| tx.images().block_devices()),
        [
            dev("/dev/xvda", true, Some("snap-1")),
            dev("/dev/xvdb", false, Some("snap-2"))
        ]
    );
    assert_eq!(r(s, |tx| tx.images().using_snapshot("snap-2")), ["ami-1"]);
    assert!(r(s, |tx| tx.images().using_snapshot("snap-3")).is_empty());
    // Deregistering (the registry row) takes the mappings with it.
    w(s, |tx| tx.resources().delete(A, "ami-1"));
    assert!(r(s, |tx| tx.images().block_devices()).is_empty());
    assert!(r(s, |tx| tx.images().using_snapshot("snap-1")).is_empty());
    // A later trash keeps a root filesystem an earlier one named.
    w(s, |tx| {
        tx.images().trash("ami-1", Some("/images/ami-1/rootfs"))
    });
    w(s, |tx| tx.images().trash("ami-1", None));
    w(s, |tx| tx.images().trash("ami-2", None));
    assert_eq!(
        r(s, |tx| tx.images().trashed()),
        [
            (
                "ami-1".to_string(),
                Some("/images/ami-1/rootfs".to_string())
            ),
            ("ami-2".to_string(), None)
        ]
    );
    w(s, |tx| tx.images().empty_trash("ami-1"));
    assert_eq!(r(s, |tx| tx.images().trashed()).len(), 1);
}

fn vpc_row(id: &str, account: &str, cidr: &str, is_default: bool) -> VpcRow {
    VpcRow {
        id: id.into(),
        account_id: account.into(),
        cidr: cidr.into(),
        is_default,
        created_at: 1,
    }
}

fn subnet_row(id: &str, account: &str, vpc: &str, cidr: &str) -> SubnetRow {
    SubnetRow {
        id: id.into(),
        account_id: account.into(),
        vpc_id: vpc.into(),
        cidr: cidr.into(),
        az: "us-east-1a".into(),
        az_id: "use1-az1".into(),
        default_for_az: false,
        map_public_ip: false,
        created_at: 1,
    }
}

/// Accounts `A` (default VPC `vpc-a`, subnet `subnet-a`) and `B` (`vpc-b`, `subnet-b`).
fn two_networks(s: &dyn Store) {
    two_accounts(s);
    for (acct, id, kind) in [
        (A, "vpc-a", "vpc"),
        (A, "subnet-a", "subnet"),
        (B, "vpc-b", "vpc"),
        (B, "subnet-b", "subnet"),
    ] {
        resource(s, acct, id, kind);
    }
    w(s, |tx| {
        tx.vpcs()
            .insert_vpc(&vpc_row("vpc-a", A, "172.31.0.0/16", true))?;
        tx.vpcs()
            .insert_subnet(&subnet_row("subnet-a", A, "vpc-a", "172.31.0.0/20"))?;
        tx.vpcs()
            .insert_vpc(&vpc_row("vpc-b", B, "10.0.0.0/16", false))?;
        tx.vpcs()
            .insert_subnet(&subnet_row("subnet-b", B, "vpc-b", "10.0.1.0/24"))
    });
}

fn vpcs(s: &dyn Store) {
    two_networks(s);
    assert_eq!(
        r(s, |tx| tx.vpcs().vpcs(A)),
        vec![vpc_row("vpc-a", A, "172.31.0.0/16", true)]
    );
    assert_eq!(
        r(s, |tx| tx.vpcs().subnets(B)),
        vec![subnet_row("subnet-b", B, "vpc-b", "10.0.1.0/24")]
    );
    assert_eq!(r(s, |tx| tx.vpcs().all_subnets()).len(), 2);
    // One default VPC per account.
    resource(s, A, "vpc-a2", "vpc");
    let e = s.write(|tx| {
        tx.vpcs()
            .insert_vpc(&vpc_row("vpc-a2", A, "10.9.0.0/16", true))
    });
    assert!(matches!(e, Err(StoreError::Conflict(_))), "{e:?}");
    assert_eq!(
        r(s, |tx| tx.vpcs().default_vpc_ids()),
        HashSet::from(["vpc-a".to_string()])
    );
    let attrs = r(s, |tx| tx.vpcs().vpc_attributes(A));
    assert_eq!(attrs.len(), 1);
    let a = &attrs["vpc-a"];
    assert!(!a.internet_ready);
    assert_eq!(
        r(s, |tx| tx.vpcs().default_vpcs_not_internet_ready()),
        vec![(A.to_string(), "vpc-a".to_string())]
    );
    w(s, |tx| {
        tx.vpcs()
            .set_vpc_flag("vpc-a", VpcFlag::InternetReady, true)?;
        tx.vpcs()
            .set_vpc_flag("vpc-a", VpcFlag::DnsHostnames, !a.dns_hostnames)?;
        tx.vpcs()
            .set_vpc_flag("vpc-a", VpcFlag::DnsSupport, !a.dns_support)?;
        tx.vpcs().set_vpc_tenancy("vpc-a", Tenancy::Dedicated)
    });
    let b = &r(s, |tx| tx.vpcs().vpc_attributes(A))["vpc-a"];
    assert!(b.internet_ready);
    assert_eq!(
        (b.dns_hostnames, b.dns_support, b.instance_tenancy),
        (!a.dns_hostnames, !a.dns_support, Tenancy::Dedicated)
    );
    assert!(r(s, |tx| tx.vpcs().default_vpcs_not_internet_ready()).is_empty());
    let states = r(s, |tx| tx.vpcs().subnet_states(A));
    assert_eq!(states.keys().collect::<Vec<_>>(), ["subnet-a"]);
    w(s, |tx| tx.vpcs().set_map_public_ip("subnet-a", true));
    assert!(r(s, |tx| tx.vpcs().subnets(A))[0].map_public_ip);
    // Live instances keep subnets and VPCs; terminated ones do not.
    instance(s, A, "i-2", "subnet-a", "vpc-a", "172.31.0.5");
    instance(s, A, "i-1", "subnet-a", "vpc-a", "172.31.0.4");
    terminate(s, "i-2", 5);
    assert_eq!(
        r(s, |tx| tx.vpcs().live_instances_in_subnet("subnet-a")),
        ["i-1"]
    );
    assert_eq!(r(s, |tx| tx.vpcs().live_instances_in_vpc("vpc-a")), ["i-1"]);
    assert!(r(s, |tx| tx.vpcs().live_instances_in_vpc("vpc-b")).is_empty());
}

fn instance_row(account: &str, id: &str, subnet: &str, vpc: &str, ip: &str) -> InstanceRow {
    InstanceRow {
        id: id.into(),
        account_id: account.into(),
        reservation_id: format!("r-{id}"),
        image_id: "ami-1".into(),
        rootfs: "/rootfs".into(),
        instance_type: "t3.micro".into(),
        login_user: "admin".into(),
        state: InstanceState::Pending,
        state_since: 1,
        launch_time: 1,
        subnet_id: subnet.into(),
        vpc_id: vpc.into(),
        az: "us-east-1a".into(),
        private_ip: ip.into(),
        root_volume_gib: 8,
        shutdown_behavior: ShutdownBehavior::Stop,
        hypervisor: gureum_types::Hypervisor::Container,
        md_http_tokens: HttpTokens::Optional,
        md_http_endpoint: HttpEndpoint::Enabled,
        md_hop_limit: 1,
        ..Default::default()
    }
}

fn instance(s: &dyn Store, account: &str, id: &str, subnet: &str, vpc: &str, ip: &str) {
    resource(s, account, id, "instance");
    w(s, |tx| {
        tx.instances()
            .insert(&instance_row(account, id, subnet, vpc, ip))
    });
}

/// Move the instance to `state` through the compare-and-swap, as the core does.
fn set_state(s: &dyn Store, id: &str, state: InstanceState, now: i64) {
    w(s, |tx| {
        let g = tx.instances().get(id)?.expect("the instance").generation;
        let ended = (state == InstanceState::Terminated).then_some(now);
        assert!(tx
            .instances()
            .transition(id, g, state, None, None, ended, now)?);
        Ok(())
    });
}

fn terminate(s: &dyn Store, id: &str, now: i64) {
    set_state(s, id, InstanceState::Terminated, now);
}

fn instances(s: &dyn Store) {
    two_networks(s);
    instance(s, A, "i-2", "subnet-a", "vpc-a", "172.31.0.5");
    instance(s, A, "i-1", "subnet-a", "vpc-a", "172.31.0.4");
    instance(s, B, "i-3", "subnet-b", "vpc-b", "10.0.1.4");
    let ids = |rows: Vec<InstanceRow>| rows.into_iter().map(|i| i.id).collect::<Vec<_>>();
    assert_eq!(ids(r(s, |tx| tx.instances().of_account(A))), ["i-1", "i-2"]);
    assert_eq!(ids(r(s, |tx| tx.instances().of_account(B))), ["i-3"]);
    assert_eq!(r(s, |tx| tx.instances().all()).len(), 3);
    assert_eq!(
        r(s, |tx| tx.instances().get("i-3")),
        Some(instance_row(B, "i-3", "subnet-b", "vpc-b", "10.0.1.4"))
    );
    // A live private address is unique.
    resource(s, B, "i-4", "instance");
    let e = s.write(|tx| {
        tx.instances()
            .insert(&instance_row(B, "i-4", "subnet-b", "vpc-b", "10.0.1.4"))
    });
    assert!(matches!(e, Err(StoreError::Conflict(_))), "{e:?}");
    // Compare-and-swap: a stale generation changes nothing.
    let g = r(s, |tx| tx.instances().get("i-1")).unwrap().generation;
    assert!(w(s, |tx| tx.instances().transition(
        "i-1",
        g,
        InstanceState::Running,
        Some("why"),
        None,
        None,
        2
    )));
    assert!(!w(s, |tx| tx.instances().transition(
        "i-1",
        g,
        InstanceState::Stopping,
        None,
        None,
        None,
        3
    )));
    let i1 = r(s, |tx| tx.instances().get("i-1")).unwrap();
    assert_eq!((i1.state.as_str(), i1.state_since), ("running", 2));
    assert!(i1.generation > g);
    // Attribute changes bump the generation too.
    w(s, |tx| {
        tx.instances()
            .set_field("i-1", InstanceField::InstanceType("t3.large"))?;
        tx.instances()
            .set_field("i-1", InstanceField::UserData(Some(b"#!/bin/sh")))?;
        tx.instances()
            .set_field("i-1", InstanceField::DisableApiTermination(true))?;
        tx.instances().set_field(
            "i-1",
            InstanceField::ShutdownBehavior(ShutdownBehavior::Terminate),
        )?;
        tx.instances()
            .set_field("i-1", InstanceField::RebootRequested(true))?;
        tx.instances()
            .set_field("i-1", InstanceField::ForceStop(true))?;
        tx.instances()
            .set_metadata_options("i-1", HttpTokens::Required, HttpEndpoint::Disabled, 3)
    });
    let i1b = r(s, |tx| tx.instances().get("i-1")).unwrap();
    assert!(i1b.generation > i1.generation);
    assert_eq!(i1b.instance_type, "t3.large");
    assert_eq!(i1b.user_data.as_deref(), Some(&b"#!/bin/sh"[..]));
    assert!(i1b.disable_api_termination && i1b.reboot_requested && i1b.force_stop);
    assert_eq!(i1b.shutdown_behavior.as_str(), "terminate");
    assert_eq!(
        (
            i1b.md_http_tokens.as_str(),
            i1b.md_http_endpoint.as_str(),
            i1b.md_hop_limit
        ),
        ("required", "disabled", 3)
    );
    w(s, |tx| {
        tx.instances()
            .set_field("i-1", InstanceField::UserData(None))
    });
    assert_eq!(
        r(s, |tx| tx.instances().get("i-1")).unwrap().user_data,
        None
    );
    // Client tokens are per account.
    resource(s, A, "i-5", "instance");
    let mut tokened = instance_row(A, "i-5", "subnet-a", "vpc-a", "172.31.0.6");
    tokened.client_token = Some("tok".into());
    w(s, |tx| tx.instances().insert(&tokened));
    assert_eq!(
        ids(r(s, |tx| tx.instances().by_client_token(A, "tok"))),
        ["i-5"]
    );
    assert!(r(s, |tx| tx.instances().by_client_token(B, "tok")).is_empty());
    // Addresses: live ones are in use; terminated ones only recently used.
    terminate(s, "i-2", 10);
    let mut in_use = r(s, |tx| tx.instances().ips_in_use());
    in_use.sort();
    assert_eq!(in_use, ["10.0.1.4", "172.31.0.4", "172.31.0.6"]);
    assert!(r(s, |tx| tx.instances().ips_recently_used()).contains(&"172.31.0.5".to_string()));
    assert_eq!(
        r(s, |tx| tx.instances().by_private_ip("172.31.0.4")).map(|i| i.id),
        Some("i-1".into())
    );
    assert_eq!(r(s, |tx| tx.instances().by_private_ip("172.31.0.5")), None);
    let mut cidrs = r(s, |tx| tx.instances().live_vpc_cidrs());
    cidrs.sort();
    assert_eq!(
        cidrs,
        vec![
            ("vpc-a".to_string(), "172.31.0.0/16".to_string(), true),
            ("vpc-b".to_string(), "10.0.0.0/16".to_string(), false)
        ]
    );
    let zones = r(s, |tx| tx.instances().zones_of_account(B));
    assert_eq!(zones.len(), 1);
    assert_eq!(zones["i-3"], "us-east-1a");
    // The console's views.
    let versions = r(s, |tx| tx.instances().versions());
    assert_eq!(versions.len(), 4);
    assert!(versions
        .iter()
        .any(|v| v.id == "i-2" && v.state.as_str() == "terminated" && v.account_id == A));
    assert_eq!(
        r(s, |tx| tx.instances().login_user(A, "i-1")),
        Some("admin".into())
    );
    assert_eq!(r(s, |tx| tx.instances().login_user(B, "i-1")), None);
    // Purging forgets terminated instances that ended before the cutoff, registry included.
    assert!(w(s, |tx| tx.instances().purge_terminated(10)).is_empty());
    assert_eq!(w(s, |tx| tx.instances().purge_terminated(11)), ["i-2"]);
    assert_eq!(r(s, |tx| tx.instances().get("i-2")), None);
    assert_eq!(r(s, |tx| tx.resources().kind_of(A, "i-2")), None);
}

fn public_addresses(s: &dyn Store) {
    two_networks(s);
    instance(s, A, "i-1", "subnet-a", "vpc-a", "172.31.0.4");
    instance(s, A, "i-2", "subnet-a", "vpc-a", "172.31.0.5");
    let pool = (0x7f64_0001, 0x7f64_0002); // 127.100.0.1 – 127.100.0.2
                                           // No auto-assigned address unless the instance takes one.
    assert_eq!(
        w(s, |tx| tx.instances().assign_public_ip("i-1", pool, 1)),
        None
    );
    w(s, |tx| {
        for id in ["i-1", "i-2"] {
            let mut row = tx.instances().get(id)?.unwrap();
            row.auto_public_ip = true;
            tx.resources().delete(A, id)?;
            tx.resources().insert(id, A, "instance", 1)?;
            tx.instances().insert(&row)?;
        }
        Ok(())
    });
    // The lowest free address of the pool; kept once assigned.
    let one = w(s, |tx| tx.instances().assign_public_ip("i-1", pool, 2));
    assert_eq!(one.as_deref(), Some("127.100.0.1"));
    assert_eq!(
        w(s, |tx| tx.instances().assign_public_ip("i-1", pool, 3)),
        one
    );
    assert_eq!(
        w(s, |tx| tx.instances().assign_public_ip("i-2", pool, 3)).as_deref(),
        Some("127.100.0.2")
    );
    assert_eq!(
        r(s, |tx| tx.addresses().public_ips_in_use()),
        HashSet::from([0x7f64_0001, 0x7f64_0002])
    );
    w(s, |tx| tx.instances().release_public_ip("i-2", 4));
    assert_eq!(
        r(s, |tx| tx.instances().get("i-2")).unwrap().public_ip,
        None
    );
    // An Elastic IP's address is set and cleared only if it is still the instance's.
    w(s, |tx| {
        tx.instances().set_public_ip("i-2", "198.51.100.7", 5)
    });
    w(s, |tx| {
        tx.instances().clear_public_ip_if("i-2", "198.51.100.8", 6)
    });
    assert_eq!(
        r(s, |tx| tx.instances().get("i-2"))
            .unwrap()
            .public_ip
            .as_deref(),
        Some("198.51.100.7")
    );
    w(s, |tx| {
        tx.instances().clear_public_ip_if("i-2", "198.51.100.7", 7)
    });
    assert_eq!(
        r(s, |tx| tx.instances().get("i-2")).unwrap().public_ip,
        None
    );
}

fn group(id: &str, account: &str, vpc: &str, name: &str) -> GroupRow {
    GroupRow {
        id: id.into(),
        account_id: account.into(),
        vpc_id: vpc.into(),
        name: name.into(),
        description: format!("{name} group"),
    }
}

fn rule(
    id: &str,
    group: &str,
    owner: &str,
    port: i32,
    referenced: Option<&str>,
) -> SecurityGroupRule {
    SecurityGroupRule {
        id: id.into(),
        group_id: group.into(),
        owner_id: owner.into(),
        is_egress: false,
        protocol: IpProtocol::Tcp,
        from_port: Some(port),
        to_port: Some(port),
        cidr_ipv4: referenced.is_none().then(|| "0.0.0.0/0".into()),
        cidr_ipv6: None,
        referenced_group_id: referenced.map(Into::into),
        description: None,
    }
}

fn security_groups(s: &dyn Store) {
    two_networks(s);
    for (acct, id, kind) in [
        (A, "sg-1", "security-group"),
        (A, "sg-2", "security-group"),
        (A, "sg-3", "security-group"),
        (B, "sg-4", "security-group"),
        (A, "sgr-2", "security-group-rule"),
        (A, "sgr-1", "security-group-rule"),
        (B, "sgr-3", "security-group-rule"),
    ] {
        resource(s, acct, id, kind);
    }
    assert!(w(s, |tx| tx
        .security_groups()
        .insert(&group("sg-1", A, "vpc-a", "default"), 1)));
    assert!(w(s, |tx| tx
        .security_groups()
        .insert(&group("sg-2", A, "vpc-a", "web"), 1)));
    // A name is unique within its VPC.
    assert!(!w(s, |tx| tx
        .security_groups()
        .insert(&group("sg-3", A, "vpc-a", "web"), 1)));
    assert!(w(s, |tx| tx
        .security_groups()
        .insert(&group("sg-4", B, "vpc-b", "web"), 1)));
    let mut names: Vec<String> = r(s, |tx| tx.security_groups().of_account(A))
        .into_iter()
        .map(|g| g.id)
        .collect();
    names.sort();
    assert_eq!(names, ["sg-1", "sg-2"]);
    w(s, |tx| {
        tx.security_groups()
            .insert_rule(&rule("sgr-2", "sg-2", A, 80, None), 1)?;
        tx.security_groups()
            .insert_rule(&rule("sgr-1", "sg-2", A, 22, Some("sg-1")), 2)?;
        tx.security_groups()
            .insert_rule(&rule("sgr-3", "sg-4", B, 443, None), 3)
    });
    // In creation order, the account's only.
    let ids = |rules: Vec<SecurityGroupRule>| rules.into_iter().map(|r| r.id).collect::<Vec<_>>();
    assert_eq!(
        ids(r(s, |tx| tx.security_groups().rules_of_account(A))),
        ["sgr-2", "sgr-1"]
    );
    assert_eq!(r(s, |tx| tx.security_groups().all_rules()).len(), 3);
    assert_eq!(
        r(s, |tx| tx.security_groups().rules_of_account(B)),
        vec![rule("sgr-3", "sg-4", B, 443, None)]
    );
    let mut changed = rule("sgr-2", "sg-2", A, 8080, None);
    changed.description = Some("moved".into());
    w(s, |tx| tx.security_groups().update_rule(&changed));
    assert_eq!(
        r(s, |tx| tx.security_groups().rules_of_account(A))[0],
        changed
    );
    assert_eq!(
        r(s, |tx| tx.security_groups().referencing_rules("sg-1")),
        ["sgr-1"]
    );
    // Membership, in the order given; terminated instances are not live members.
    instance(s, A, "i-1", "subnet-a", "vpc-a", "172.31.0.4");
    instance(s, A, "i-2", "subnet-a", "vpc-a", "172.31.0.5");
    w(s, |tx| {
        tx.security_groups()
            .set_instance_groups("i-1", &["sg-2".into(), "sg-1".into()])?;
        tx.security_groups()
            .set_instance_groups("i-2", &["sg-1".into()])
    });
    let of = |id: &str| {
        r(s, |tx| tx.security_groups().memberships())
            .into_iter()
            .filter(|(i, _)| i == id)
            .map(|(_, g)| g)
            .collect::<Vec<_>>()
    };
    assert_eq!(of("i-1"), ["sg-2", "sg-1"]);
    w(s, |tx| {
        tx.security_groups()
            .set_instance_groups("i-1", &["sg-1".into()])
    });
    assert_eq!(of("i-1"), ["sg-1"]);
    terminate(s, "i-2", 5);
    assert_eq!(
        r(s, |tx| tx.security_groups().live_members("sg-1")),
        ["i-1"]
    );
    assert!(r(s, |tx| tx.security_groups().live_members("sg-2")).is_empty());
    // Deleting a group's registry row takes its rules.
    w(s, |tx| tx.resources().delete(A, "sg-2"));
    assert!(r(s, |tx| tx.security_groups().rules_of_account(A)).is_empty());
}

fn address(id: &str, account: &str, ip: &str) -> AddressRow {
    AddressRow {
        allocation_id: id.into(),
        account_id: account.into(),
        public_ip: ip.into(),
        instance_id: None,
        association_id: None,
        created_at: 1,
    }
}

fn addresses(s: &dyn Store) {
    two_networks(s);
    instance(s, A, "i-1", "subnet-a", "vpc-a", "172.31.0.4");
    for (acct, id) in [
        (A, "eipalloc-2"),
        (A, "eipalloc-1"),
        (B, "eipalloc-3"),
        (B, "eipalloc-4"),
    ] {
        resource(s, acct, id, "elastic-ip");
    }
    w(s, |tx| {
        tx.addresses()
            .insert(&address("eipalloc-2", A, "127.100.0.2"))?;
        tx.addresses()
            .insert(&address("eipalloc-1", A, "127.100.0.1"))?;
        tx.addresses()
            .insert(&address("eipalloc-3", B, "127.100.0.3"))
    });
    // An address is allocated once.
    let e = s.write(|tx| {
        tx.addresses()
            .insert(&address("eipalloc-4", B, "127.100.0.1"))
    });
    assert!(matches!(e, Err(StoreError::Conflict(_))), "{e:?}");
    let ids: Vec<String> = r(s, |tx| tx.addresses().by_account(A))
        .into_iter()
        .map(|a| a.allocation_id)
        .collect();
    assert_eq!(ids, ["eipalloc-1", "eipalloc-2"]);
    assert_eq!(r(s, |tx| tx.addresses().by_account(B)).len(), 1);
    w(s, |tx| {
        tx.addresses()
            .set_association("eipalloc-2", Some("i-1"), Some("eipassoc-1"), 2)
    });
    let a = r(s, |tx| tx.addresses().of_instance("i-1")).unwrap();
    assert_eq!(
        (a.allocation_id.as_str(), a.association_id.as_deref()),
        ("eipalloc-2", Some("eipassoc-1"))
    );
    assert_eq!(
        r(s, |tx| tx.addresses().public_ips_in_use()),
        HashSet::from([0x7f64_0001, 0x7f64_0002, 0x7f64_0003])
    );
    w(s, |tx| {
        tx.addresses().set_association("eipalloc-2", None, None, 3)
    });
    assert_eq!(r(s, |tx| tx.addresses().of_instance("i-1")), None);
}

fn routing(s: &dyn Store) {
    two_networks(s);
    for (acct, id, kind) in [
        (A, "igw-1", "internet-gateway"),
        (B, "igw-2", "internet-gateway"),
        (A, "rtb-main", "route-table"),
        (A, "rtb-2", "route-table"),
        (A, "rtbassoc-main", "route-table-association"),
        (A, "rtbassoc-1", "route-table-association"),
    ] {
        resource(s, acct, id, kind);
    }
    let table = |id: &str| RouteTableRow {
        id: id.into(),
        account_id: A.into(),
        vpc_id: "vpc-a".into(),
        is_main: false,
        created_at: 1,
    };
    let route = |table: &str, gw: &str| RouteRow {
        route_table_id: table.into(),
        destination: "0.0.0.0/0".into(),
        gateway_id: gw.into(),
    };
    w(s, |tx| {
        tx.routing().insert_internet_gateway(&InternetGatewayRow {
            id: "igw-1".into(),
            account_id: A.into(),
            vpc_id: None,
            created_at: 1,
        })?;
        tx.routing().insert_internet_gateway(&InternetGatewayRow {
            id: "igw-2".into(),
            account_id: B.into(),
            vpc_id: None,
            created_at: 1,
        })?;
        tx.routing().insert_route_table(&table("rtb-main"))?;
        tx.routing().insert_route_table(&table("rtb-2"))?;
        tx.routing().set_main("vpc-a", "rtb-main", "rtbassoc-main")
    });
    assert_eq!(r(s, |tx| tx.routing().internet_gateways(A)).len(), 1);
    assert_eq!(
        r(s, |tx| tx.routing().main_route_table("vpc-a")).as_deref(),
        Some("rtb-main")
    );
    let views = r(s, |tx| tx.routing().route_tables(A));
    let ids: Vec<&str> = views.iter().map(|v| v.table.id.as_str()).collect();
    assert_eq!(ids, ["rtb-2", "rtb-main"]);
    assert_eq!(
        views[1].main_association_id.as_deref(),
        Some("rtbassoc-main")
    );
    assert!(views[1].table.is_main && !views[0].table.is_main);
    assert!(r(s, |tx| tx.routing().route_tables(B)).is_empty());
    // A subnet is internet-routed once its table routes 0.0.0.0/0 to its VPC's gateway.
    w(s, |tx| {
        tx.routing().insert_route(&route("rtb-main", "igw-1"))
    });
    assert!(r(s, |tx| tx.routing().internet_routed_subnets()).is_empty());
    w(s, |tx| tx.routing().set_gateway_vpc("igw-1", Some("vpc-a")));
    assert_eq!(
        r(s, |tx| tx.routing().gateway_of_vpc("vpc-a")).as_deref(),
        Some("igw-1")
    );
    assert_eq!(
        r(s, |tx| tx.routing().internet_routed_subnets()),
        HashSet::from(["subnet-a".to_string()])
    );
    // One gateway per VPC.
    let e = s.write(|tx| tx.routing().set_gateway_vpc("igw-2", Some("vpc-a")));
    assert!(matches!(e, Err(StoreError::Conflict(_))), "{e:?}");
    // An explicit association overrides the main table.
    w(s, |tx| {
        tx.routing().insert_association(&AssociationRow {
            id: "rtbassoc-1".into(),
            route_table_id: "rtb-2".into(),
            subnet_id: "subnet-a".into(),
        })
    });
    assert_eq!(r(s, |tx| tx.routing().associations(A)).len(), 1);
    assert!(r(s, |tx| tx.routing().internet_routed_subnets()).is_empty());
    assert!(w(s, |tx| tx.routing().delete_association("rtbassoc-1")));
    assert!(!w(s, |tx| tx.routing().delete_association("rtbassoc-1")));
    assert_eq!(r(s, |tx| tx.routing().internet_routed_subnets()).len(), 1);
    assert_eq!(
        r(s, |tx| tx.routing().routes(A)),
        vec![route("rtb-main", "igw-1")]
    );
    assert!(!w(s, |tx| tx
        .routing()
        .replace_route(&route("rtb-2", "igw-1"))));
    assert!(w(s, |tx| tx
        .routing()
        .replace_route(&route("rtb-main", "igw-2"))));
    assert!(r(s, |tx| tx.routing().internet_routed_subnets()).is_empty());
    assert!(w(s, |tx| tx
        .routing()
        .delete_route("rtb-main", "0.0.0.0/0")));
    assert!(!w(s, |tx| tx
        .routing()
        .delete_route("rtb-main", "0.0.0.0/0")));
    assert!(r(s, |tx| tx.routing().routes(A)).is_empty());
    // Public addresses mapped in the VPC: none until an instance has one.
    assert_eq!(
        r(s, |tx| tx.routing().mapped_public_addresses_in_vpc("vpc-a")),
        0
    );
    instance(s, A, "i-1", "subnet-a", "vpc-a", "172.31.0.4");
    w(s, |tx| {
        tx.instances().set_public_ip("i-1", "127.100.0.9", 1)
    });
    assert_eq!(
        r(s, |tx| tx.routing().mapped_public_addresses_in_vpc("vpc-a")),
        1
    );
    w(s, |tx| tx.routing().set_gateway_vpc("igw-1", None));
    assert_eq!(r(s, |tx| tx.routing().gateway_of_vpc("vpc-a")), None);
}

fn usage(s: &dyn Store) {
    two_networks(s);
    w(s, |tx| {
        tx.usage().open(A, "i-1", "compute", "t3.micro", 1.0, 10)?;
        // Already open: nothing changes.
        tx.usage().open(A, "i-1", "compute", "t3.large", 1.0, 15)?;
        tx.usage().open(B, "i-2", "compute", "t3.micro", 1.0, 5)
    });
    let open = r(s, |tx| tx.usage().open_interval("i-1", "compute")).unwrap();
    assert_eq!(
        (open.detail.as_str(), open.start_ms, open.end_ms),
        ("t3.micro", 10, None)
    );
    w(s, |tx| tx.usage().close("i-1", "compute", 20));
    assert_eq!(r(s, |tx| tx.usage().open_interval("i-1", "compute")), None);
    w(s, |tx| {
        tx.usage().open(A, "i-1", "compute", "t3.large", 1.0, 30)
    });
    // By start time; one account's or everyone's; only those overlapping [from, to).
    let spans = |rows: Vec<crate::usage::UsageRow>| {
        rows.into_iter()
            .map(|u| (u.resource_id, u.start_ms, u.end_ms))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        spans(r(s, |tx| tx.usage().overlapping(Some(A), 0, 100))),
        vec![("i-1".into(), 10, Some(20)), ("i-1".into(), 30, None)]
    );
    assert_eq!(
        spans(r(s, |tx| tx.usage().overlapping(Some(A), 20, 30))),
        vec![]
    );
    assert_eq!(r(s, |tx| tx.usage().overlapping(None, 0, 100)).len(), 3);
    assert_eq!(
        spans(r(s, |tx| tx.usage().recent(A, 21))),
        vec![("i-1".into(), 30, None)]
    );
    assert_eq!(r(s, |tx| tx.usage().recent(A, 20)).len(), 2);
    // A public address that is not an Elastic IP is metered while the instance has it.
    instance(s, A, "i-9", "subnet-a", "vpc-a", "172.31.0.9");
    w(s, |tx| {
        tx.instances().set_public_ip("i-9", "127.100.0.9", 40)
    });
    w(s, |tx| tx.usage().sync_public_ip("i-9", 41));
    assert!(r(s, |tx| tx
        .usage()
        .open_interval("i-9", crate::usage::PUBLIC_IPV4))
    .is_some());
    w(s, |tx| tx.instances().release_public_ip("i-9", 50));
    w(s, |tx| tx.usage().sync_public_ip("i-9", 51));
    assert_eq!(
        r(s, |tx| tx
            .usage()
            .open_interval("i-9", crate::usage::PUBLIC_IPV4)),
        None
    );
}

fn budgets_and_console(s: &dyn Store) {
    two_accounts(s);
    w(s, |tx| {
        tx.budgets().set(B, "10.00", true)?;
        tx.budgets().set(A, "5.00", false)
    });
    let all = r(s, |tx| tx.budgets().all());
    assert_eq!(
        all.iter()
            .map(|b| b.account_id.as_str())
            .collect::<Vec<_>>(),
        [A, B]
    );
    w(s, |tx| {
        tx.budgets().record_alert(A, "2025-11", "actual", "6.00", 9)
    });
    let a = r(s, |tx| tx.budgets().get(A)).unwrap();
    assert_eq!(
        (
            a.alert_month.as_deref(),
            a.alert_kind.as_deref(),
            a.alert_at
        ),
        (Some("2025-11"), Some("actual"), Some(9))
    );
    // A new limit clears the alert.
    w(s, |tx| tx.budgets().set(A, "7.00", true));
    let a = r(s, |tx| tx.budgets().get(A)).unwrap();
    assert_eq!(
        (a.limit_usd.as_str(), a.stop_instances, a.alert_month),
        ("7.00", true, None)
    );
    assert!(w(s, |tx| tx.budgets().delete(A)));
    assert!(!w(s, |tx| tx.budgets().delete(A)));
    assert_eq!(r(s, |tx| tx.budgets().get(A)), None);
    assert!(r(s, |tx| tx.budgets().get(B)).is_some());
    assert_eq!(r(s, |tx| tx.console().password_hash(A)), None);
    w(s, |tx| tx.console().set_password(A, "$argon2id$one", 1));
    w(s, |tx| tx.console().set_password(A, "$argon2id$two", 2));
    assert_eq!(
        r(s, |tx| tx.console().password_hash(A)).as_deref(),
        Some("$argon2id$two")
    );
    assert_eq!(r(s, |tx| tx.console().password_hash(B)), None);
}

fn volume_row(account: &str, id: &str) -> VolumeRow {
    VolumeRow {
        id: id.into(),
        account_id: account.into(),
        az: "us-east-1a".into(),
        size_gib: 8,
        volume_type: VolumeType::Gp3,
        iops: Some(3000),
        throughput: Some(125),
        snapshot_id: None,
        encrypted: false,
        auto_enable_io: false,
        state: VolumeState::Creating,
        generation: 0,
        created_at: 10,
        root: false,
        attachment: None,
        modification: None,
    }
}

fn new_volume(s: &dyn Store, v: &VolumeRow) {
    w(s, |tx| {
        tx.resources().insert(&v.id, &v.account_id, "volume", 1)?;
        tx.volumes().insert(v)
    });
}

fn attached(instance: &str, device: &str) -> Option<AttachmentRow> {
    Some(AttachmentRow {
        instance_id: instance.into(),
        device: device.into(),
        state: VolumeAttachmentState::Attaching,
        attach_time: 20,
        delete_on_termination: false,
        force: false,
    })
}

fn volumes(s: &dyn Store) {
    two_accounts(s);
    let v = volume_row(A, "vol-1");
    new_volume(s, &v);
    new_volume(s, &volume_row(B, "vol-2"));
    // Scoped by account; the agent sees all, by id.
    assert_eq!(r(s, |tx| tx.volumes().get(A, "vol-1")), Some(v.clone()));
    assert_eq!(r(s, |tx| tx.volumes().get(B, "vol-1")), None);
    assert_eq!(r(s, |tx| tx.volumes().of_account(B)).len(), 1);
    let all: Vec<String> = r(s, |tx| tx.volumes().all())
        .into_iter()
        .map(|v| v.id)
        .collect();
    assert_eq!(all, ["vol-1", "vol-2"]);
    // Its usage opened with it: type and GiB.
    let u = r(s, |tx| {
        tx.usage().open_interval("vol-1", crate::usage::VOLUME)
    })
    .unwrap();
    assert_eq!(
        (u.detail.as_str(), u.quantity, u.start_ms),
        ("gp3", 8.0, 10)
    );
    // gp3's provisioned IOPS and throughput too, all of them (billing knows what is included).
    let u = r(s, |tx| {
        tx.usage().open_interval("vol-1", crate::usage::VOLUME_IOPS)
    })
    .unwrap();
    assert_eq!((u.detail.as_str(), u.quantity), ("gp3", 3000.0));
    let u = r(s, |tx| {
        tx.usage()
            .open_interval("vol-1", crate::usage::VOLUME_THROUGHPUT)
    })
    .unwrap();
    assert_eq!((u.detail.as_str(), u.quantity), ("gp3", 125.0));
    // Compare-and-swap on the generation.
    let mut next = v.clone();
    next.state = VolumeState::InUse;
    next.attachment = attached("i-1", "/dev/sdf");
    assert!(w(s, |tx| tx.volumes().update(&next, 20)));
    assert!(
        !w(s, |tx| tx.volumes().update(&next, 21)),
        "a stale generation"
    );
    let now = r(s, |tx| tx.volumes().get(A, "vol-1")).unwrap();
    assert_eq!(now.generation, 1);
    // The console's versions: every account's volumes, generations as stored.
    let mut versions: Vec<_> = r(s, |tx| tx.volumes().versions())
        .into_iter()
        .map(|v| (v.kind, v.account_id, v.id, v.generation))
        .collect();
    versions.sort_by(|a, b| a.2.cmp(&b.2));
    let vol = EbsKind::Volume;
    assert_eq!(
        versions,
        [
            (vol, A.to_string(), "vol-1".to_string(), 1),
            (vol, B.to_string(), "vol-2".to_string(), 0)
        ]
    );
    assert_eq!(now.attachment, attached("i-1", "/dev/sdf"));
    assert_eq!(r(s, |tx| tx.volumes().of_instance("i-1")).len(), 1);
    // One volume per device of an instance.
    let mut other = volume_row(A, "vol-3");
    other.attachment = attached("i-1", "/dev/sdf");
    let taken = s.write(|tx| {
        tx.resources().insert("vol-3", A, "volume", 1)?;
        tx.volumes().insert(&other)
    });
    assert!(matches!(taken, Err(StoreError::Conflict(_))), "{taken:?}");
    // A larger io1 volume: the GiB interval is split and IOPS get their own.
    let mut grown = now.clone();
    grown.size_gib = 20;
    grown.volume_type = VolumeType::Io1;
    grown.iops = Some(1000);
    grown.throughput = None;
    assert!(w(s, |tx| tx.volumes().update(&grown, 30)));
    let rows = r(s, |tx| tx.usage().overlapping(Some(A), 0, 100));
    let spans: Vec<_> = rows
        .iter()
        .map(|u| {
            (
                u.kind.as_str(),
                u.detail.as_str(),
                u.quantity,
                u.start_ms,
                u.end_ms,
            )
        })
        .collect();
    assert_eq!(
        spans,
        [
            ("volume", "gp3", 8.0, 10, Some(30)),
            ("volume-iops", "gp3", 3000.0, 10, Some(30)),
            ("volume-throughput", "gp3", 125.0, 10, Some(30)),
            ("volume", "io1", 20.0, 30, None),
            ("volume-iops", "io1", 1000.0, 30, None),
        ]
    );
    // Deleting ends its usage; removing it ends the registry row and its tags.
    let mut deleting = r(s, |tx| tx.volumes().get(A, "vol-1")).unwrap();
    deleting.state = VolumeState::Deleting;
    deleting.attachment = None;
    assert!(w(s, |tx| tx.volumes().update(&deleting, 40)));
    assert!(r(s, |tx| tx
        .usage()
        .open_interval("vol-1", crate::usage::VOLUME))
    .is_none());
    assert!(r(s, |tx| tx
        .usage()
        .open_interval("vol-1", crate::usage::VOLUME_IOPS))
    .is_none());
    w(s, |tx| tx.tags().put(A, "vol-1", &[tag("k", "v")]));
    assert!(
        !w(s, |tx| tx.volumes().remove(B, "vol-1", 50)),
        "another account's"
    );
    assert!(w(s, |tx| tx.volumes().remove(A, "vol-1", 50)));
    assert_eq!(r(s, |tx| tx.volumes().get(A, "vol-1")), None);
    assert_eq!(r(s, |tx| tx.resources().kind_of(A, "vol-1")), None);
    assert!(r(s, |tx| tx.tags().all_by_resource(A)).is_empty());
}

fn snapshot_row(account: &str, id: &str) -> SnapshotRow {
    SnapshotRow {
        id: id.into(),
        account_id: account.into(),
        volume_id: "vol-1".into(),
        volume_size: 8,
        description: String::new(),
        state: SnapshotState::Pending,
        state_message: None,
        progress: 0,
        encrypted: false,
        generation: 0,
        created_at: 10,
        source_snapshot_id: None,
    }
}

fn snapshots(s: &dyn Store) {
    two_accounts(s);
    w(s, |tx| tx.accounts().insert("333333333333", "carol", 3));
    let snap = snapshot_row(A, "snap-1");
    w(s, |tx| {
        tx.resources().insert("snap-1", A, "snapshot", 1)?;
        tx.volumes().insert_snapshot(&snap)
    });
    assert_eq!(
        r(s, |tx| tx.volumes().visible_snapshot(A, "snap-1")),
        Some(snap.clone())
    );
    assert_eq!(r(s, |tx| tx.volumes().visible_snapshot(B, "snap-1")), None);
    assert!(r(s, |tx| tx
        .usage()
        .open_interval("snap-1", crate::usage::SNAPSHOT))
    .is_some());
    // Shared with B, then with everyone.
    w(s, |tx| tx.volumes().set_permission("snap-1", B, true));
    assert_eq!(r(s, |tx| tx.volumes().visible_snapshots(B)).len(), 1);
    assert!(r(s, |tx| tx.volumes().visible_snapshots("333333333333")).is_empty());
    w(s, |tx| tx.volumes().set_permission("snap-1", "all", true));
    assert_eq!(
        r(s, |tx| tx.volumes().visible_snapshots("333333333333")).len(),
        1
    );
    assert_eq!(r(s, |tx| tx.volumes().permissions("snap-1")), [B, "all"]);
    w(s, |tx| tx.volumes().set_permission("snap-1", "all", false));
    assert_eq!(r(s, |tx| tx.volumes().permissions("snap-1")), [B]);
    // Compare-and-swap.
    let mut done = snap.clone();
    done.state = SnapshotState::Completed;
    done.progress = 100;
    let version = |id: &str| {
        r(s, |tx| tx.volumes().versions())
            .into_iter()
            .find(|v| v.id == id)
            .map(|v| (v.kind, v.account_id, v.generation))
    };
    assert_eq!(
        version("snap-1"),
        Some((EbsKind::Snapshot, A.to_string(), 0))
    );
    assert!(w(s, |tx| tx.volumes().update_snapshot(&done)));
    assert!(!w(s, |tx| tx.volumes().update_snapshot(&done)));
    // The console's view of it moved with the change.
    assert_eq!(
        version("snap-1"),
        Some((EbsKind::Snapshot, A.to_string(), 1))
    );
    // Only the owner deletes; its bytes wait in the trash; permissions go with it.
    assert!(!w(s, |tx| tx.volumes().delete_snapshot(B, "snap-1", 20)));
    assert!(w(s, |tx| tx.volumes().delete_snapshot(A, "snap-1", 20)));
    assert_eq!(r(s, |tx| tx.volumes().visible_snapshot(A, "snap-1")), None);
    assert!(r(s, |tx| tx.volumes().permissions("snap-1")).is_empty());
    assert!(r(s, |tx| tx
        .usage()
        .open_interval("snap-1", crate::usage::SNAPSHOT))
    .is_none());
    assert_eq!(r(s, |tx| tx.volumes().trash()), ["snap-1"]);
    w(s, |tx| tx.volumes().empty_trash("snap-1"));
    assert!(r(s, |tx| tx.volumes().trash()).is_empty());
}
