//! EBS usage into money through the whole core: a volume created, modified (gp2 to a larger
//! gp3 with IOPS and throughput beyond what gp3 includes) and deleted, a snapshot of it, and
//! the month's bill and Cost Explorer figures they make, with a driven clock.

use std::sync::Arc;

use gureum_ec2::ops::snapshots::{Action as S, Response as SR};
use gureum_ec2::ops::volumes::{Action as V, CreateVolume, ModifyVolume, Response as VR};
use gureum_types::VolumeType;

use crate::clock::FixedClock;
use crate::fake::FakeVolumes;
use crate::lifecycle_tests::world_with_pool;

const HOUR: i64 = 3_600_000;

#[tokio::test]
async fn a_volume_and_a_snapshot_on_the_bill_and_in_cost_explorer() {
    // 2025-11-24 16:00 UTC: November has 30 days, 720 hours. The account is new, so the
    // free tier covers the storage (gp2, gp3, snapshots) but not gp3's extra performance.
    let clock = Arc::new(FixedClock::new(1_764_000_000_000));
    let w = world_with_pool(
        clock.clone(),
        None,
        0,
        Some(Arc::new(FakeVolumes::default())),
    );
    let converge = || async { w.agent.converge_volumes().await.unwrap() };
    let VR::Volume(v) = w
        .call(V::CreateVolume(CreateVolume {
            availability_zone: Some("us-east-1a".into()),
            size: Some(10),
            volume_type: Some(VolumeType::Gp2),
            ..Default::default()
        }))
        .await
        .unwrap()
    else {
        panic!()
    };
    converge().await;
    clock.advance(HOUR);
    w.call(V::ModifyVolume {
        volume_id: v.id.clone(),
        change: ModifyVolume {
            size: Some(20),
            volume_type: Some(VolumeType::Gp3),
            iops: Some(4000),
            throughput: Some(250),
        },
    })
    .await
    .unwrap();
    converge().await;
    clock.advance(2 * HOUR);
    let SR::Snapshot(s) = w
        .call(S::CreateSnapshot {
            volume_id: v.id.clone(),
            description: String::new(),
            tag_specifications: vec![],
        })
        .await
        .unwrap()
    else {
        panic!()
    };
    converge().await;
    clock.advance(HOUR);
    w.call(S::DeleteSnapshot {
        snapshot_id: s.id.clone(),
    })
    .await
    .unwrap();
    w.call(V::DeleteVolume {
        volume_id: v.id.clone(),
    })
    .await
    .unwrap();
    converge().await;
    clock.advance(HOUR);

    let bill = w.cloud.monthly_bill(&w.ctx.account_id, None).await.unwrap();
    let lines: Vec<(&str, &str, bool, String, String)> = bill
        .lines
        .iter()
        .map(|l| {
            (
                l.service.as_str(),
                l.usage_type.as_str(),
                l.free_tier,
                l.quantity.to_decimal(6),
                l.amount.to_decimal(10),
            )
        })
        .collect();
    let other = "EC2 - Other";
    assert_eq!(
        lines,
        vec![
            // 20 GiB for an hour of 720.
            (
                other,
                "EBS:SnapshotUsage",
                true,
                "0.027778".into(),
                "0".into()
            ),
            // 1,000 IOPS beyond 3,000 for 3 hours: 1000 × 3/720 IOPS-months at $0.005.
            (
                other,
                "EBS:VolumeP-IOPS.gp3",
                false,
                "4.166667".into(),
                "0.0208333333".into()
            ),
            // 125 MiB/s beyond 125 for 3 hours at $0.04.
            (
                other,
                "EBS:VolumeP-Throughput.gp3",
                false,
                "0.520833".into(),
                "0.0208333333".into()
            ),
            // 10 GiB for an hour, then 20 GiB for 3 hours.
            (
                other,
                "EBS:VolumeUsage.gp2",
                true,
                "0.013889".into(),
                "0".into()
            ),
            (
                other,
                "EBS:VolumeUsage.gp3",
                true,
                "0.083333".into(),
                "0".into()
            ),
        ]
    );
    assert_eq!(bill.total.to_decimal(10), "0.0416666667");

    // Cost Explorer shows the same, by service and usage type.
    let body = serde_json::json!({
        "TimePeriod": {"Start": "2025-11-01", "End": "2025-12-01"},
        "Granularity": "MONTHLY",
        "Metrics": ["UnblendedCost"],
        "GroupBy": [
            {"Type": "DIMENSION", "Key": "SERVICE"},
            {"Type": "DIMENSION", "Key": "USAGE_TYPE"}
        ],
    });
    let reply = w
        .cloud
        .cost_explorer(
            &w.ctx.account_id,
            "AWSInsightsIndexService.GetCostAndUsage",
            body.to_string().as_bytes(),
        )
        .await
        .unwrap();
    assert_eq!(reply.status, 200, "{}", reply.body);
    let v: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
    let groups: Vec<(String, String)> = v["ResultsByTime"][0]["Groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                format!(
                    "{} | {}",
                    g["Keys"][0].as_str().unwrap(),
                    g["Keys"][1].as_str().unwrap()
                ),
                g["Metrics"]["UnblendedCost"]["Amount"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            )
        })
        .collect();
    let g = |k: &str, usd: &str| (format!("EC2 - Other | {k}"), usd.to_string());
    assert_eq!(
        groups,
        vec![
            g("EBS:SnapshotUsage", "0"),
            g("EBS:VolumeP-IOPS.gp3", "0.0208333333"),
            g("EBS:VolumeP-Throughput.gp3", "0.0208333333"),
            g("EBS:VolumeUsage.gp2", "0"),
            g("EBS:VolumeUsage.gp3", "0"),
        ]
    );
    // Nothing of it is another account's.
    let other = crate::testing::other(&w.cloud, "other");
    let bill = w.cloud.monthly_bill(&other.account_id, None).await.unwrap();
    assert!(bill.lines.is_empty());
}
