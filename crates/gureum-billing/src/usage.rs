//! The facts billing is computed from, and what AWS calls them.
//!
//! Owned here: [`UsageRecord`] (one interval of one billable thing, as the store persists
//! it), [`Account`], and the naming of usage as Cost Explorer and the bill show it: the
//! service, the usage type (`BoxUsage:t2.micro`, `EBS:VolumeUsage.gp3`,
//! `USE1-PublicIPv4:InUseAddress`), the operation, the unit, and the value of every Cost
//! Explorer dimension for a record ([`Dimension`]).
//!
//! EBS usage types are AWS's (the EBS user guide's "codes for Amazon EBS in billing and usage
//! reports"): `EBS:VolumeUsage.<type>` per GB-month of a volume type (`EBS:VolumeUsage` for
//! magnetic, `.piops` for io1), `EBS:VolumeP-IOPS.<type>` per provisioned IOPS-month (io1
//! `.piops`, io2 in three tiers, gp3 beyond its 3,000 included), `EBS:VolumeP-Throughput.gp3`
//! per MiB/s-month beyond 125, and `EBS:SnapshotUsage` per GB-month of snapshots.

use std::borrow::Cow;

use gureum_types::VolumeType;
use serde::{Deserialize, Serialize};

/// An account as billing needs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// The 12-digit account id (`LINKED_ACCOUNT`).
    pub id: String,
    /// Its name (the `description` attribute of `LINKED_ACCOUNT`, `LINKED_ACCOUNT_NAME`).
    pub name: String,
    /// When it was created (epoch ms): the free tier lasts 12 months from here.
    pub created_ms: i64,
}

/// One interval of one billable thing, written by the store in the same transaction as the
/// state change that starts it and closed (`end_ms` set) by the one that ends it.
///
/// A record without an end is open: it is still accruing and is rated up to the `now` the
/// caller passes. Each compute record is one start (one `running` interval), and is billed
/// at least 60 seconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageRecord {
    pub account_id: String,
    /// The instance id (`Compute`, `Storage`, `PublicIpv4`) or the Elastic IP's allocation
    /// id (`ElasticIp`).
    pub resource_id: String,
    pub kind: UsageKind,
    /// Epoch milliseconds, inclusive.
    pub start_ms: i64,
    /// Epoch milliseconds, exclusive; `None` while the interval is open.
    pub end_ms: Option<i64>,
    /// `us-east-1a`; the `AZ` dimension (`NoAZ` when absent).
    #[serde(default)]
    pub availability_zone: Option<String>,
    /// The resource's tags, for `TAG` grouping and filtering.
    #[serde(default)]
    pub tags: Vec<(String, String)>,
}

/// What a record measures.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum UsageKind {
    /// An instance in the `running` state (the only state EC2 bills compute for).
    Compute { instance_type: String },
    /// The instance's gp3 root volume, from launch until termination (stopped included).
    Storage { gib: u32 },
    /// The auto-assigned public IPv4 address, while the instance holds it (in use).
    PublicIpv4,
    /// An Elastic IP address: in use while associated with a running instance, idle
    /// otherwise. Each change of `in_use` closes one record and opens the next.
    ElasticIp { in_use: bool },
    /// An EBS volume's provisioned storage while it has this type and size: from its
    /// creation (or the modification that gave it them) to its deletion (or the next
    /// modification).
    Volume {
        #[serde(with = "volume_type_text")]
        volume_type: VolumeType,
        gib: u32,
    },
    /// The billed part of a volume's provisioned IOPS (see [`UsageRecord::volume_iops`]):
    /// `tier` is io2's price tier (1 up to 32,000 IOPS, 2 up to 64,000, 3 beyond), 1 otherwise.
    VolumeIops {
        #[serde(with = "volume_type_text")]
        volume_type: VolumeType,
        tier: u8,
        iops: u32,
    },
    /// A gp3 volume's provisioned throughput beyond the 125 MiB/s it includes, in MiB/s.
    VolumeThroughput { mibps: u32 },
    /// An EBS snapshot, measured by its volume's size (gureum keeps no incremental blocks
    /// count), from its creation to its deletion.
    Snapshot { gib: u32 },
}

/// The IOPS a gp3 volume includes in its storage price.
pub const GP3_INCLUDED_IOPS: u32 = 3_000;
/// The throughput (MiB/s) a gp3 volume includes in its storage price.
pub const GP3_INCLUDED_MIBPS: u32 = 125;
/// The width of io2's first two IOPS price tiers.
pub const IO2_TIER_IOPS: u32 = 32_000;

/// A [`VolumeType`] as its API text in JSON.
mod volume_type_text {
    use gureum_types::VolumeType;
    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &VolumeType, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(t.as_str())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<VolumeType, D::Error> {
        let text = String::deserialize(d)?;
        gureum_types::enums::parse_wire::<VolumeType>(&text).map_err(D::Error::custom)
    }
}

/// What a record's class is keyed by: its kind without its quantity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum ClassKey<'a> {
    Compute(&'a str),
    Storage,
    PublicIpv4,
    ElasticIp(bool),
    Volume(VolumeType),
    VolumeIops(VolumeType, u8),
    VolumeThroughput,
    Snapshot,
}

impl UsageKind {
    pub(crate) fn class_key(&self) -> ClassKey<'_> {
        match self {
            UsageKind::Compute { instance_type } => ClassKey::Compute(instance_type),
            UsageKind::Storage { .. } => ClassKey::Storage,
            UsageKind::PublicIpv4 => ClassKey::PublicIpv4,
            UsageKind::ElasticIp { in_use } => ClassKey::ElasticIp(*in_use),
            UsageKind::Volume { volume_type, .. } => ClassKey::Volume(*volume_type),
            UsageKind::VolumeIops {
                volume_type, tier, ..
            } => ClassKey::VolumeIops(*volume_type, *tier),
            UsageKind::VolumeThroughput { .. } => ClassKey::VolumeThroughput,
            UsageKind::Snapshot { .. } => ClassKey::Snapshot,
        }
    }

    /// How many units (GiB, IOPS, MiB/s) a monthly-priced kind provisions; 0 for the
    /// hourly ones.
    pub(crate) fn units(&self) -> u32 {
        match self {
            UsageKind::Storage { gib }
            | UsageKind::Volume { gib, .. }
            | UsageKind::Snapshot { gib } => *gib,
            UsageKind::VolumeIops { iops, .. } => *iops,
            UsageKind::VolumeThroughput { mibps } => *mibps,
            UsageKind::Compute { .. } | UsageKind::PublicIpv4 | UsageKind::ElasticIp { .. } => 0,
        }
    }
}

impl UsageRecord {
    fn new(
        account: &str,
        resource: &str,
        kind: UsageKind,
        start_ms: i64,
        end_ms: Option<i64>,
    ) -> UsageRecord {
        UsageRecord {
            account_id: account.to_string(),
            resource_id: resource.to_string(),
            kind,
            start_ms,
            end_ms,
            availability_zone: None,
            tags: Vec::new(),
        }
    }

    /// One `running` interval of an instance.
    pub fn compute(
        account: &str,
        instance: &str,
        instance_type: &str,
        start_ms: i64,
        end_ms: Option<i64>,
    ) -> UsageRecord {
        let kind = UsageKind::Compute {
            instance_type: instance_type.to_string(),
        };
        UsageRecord::new(account, instance, kind, start_ms, end_ms)
    }

    /// An instance's root volume of `gib` GiB, from launch to termination.
    pub fn storage(
        account: &str,
        instance: &str,
        gib: u32,
        start_ms: i64,
        end_ms: Option<i64>,
    ) -> UsageRecord {
        UsageRecord::new(
            account,
            instance,
            UsageKind::Storage { gib },
            start_ms,
            end_ms,
        )
    }

    /// An instance's auto-assigned public IPv4 address.
    pub fn public_ipv4(
        account: &str,
        instance: &str,
        start_ms: i64,
        end_ms: Option<i64>,
    ) -> UsageRecord {
        UsageRecord::new(account, instance, UsageKind::PublicIpv4, start_ms, end_ms)
    }

    /// An Elastic IP address, in use or idle.
    pub fn elastic_ip(
        account: &str,
        allocation: &str,
        in_use: bool,
        start_ms: i64,
        end_ms: Option<i64>,
    ) -> UsageRecord {
        UsageRecord::new(
            account,
            allocation,
            UsageKind::ElasticIp { in_use },
            start_ms,
            end_ms,
        )
    }

    /// An EBS volume of `gib` GiB of one type.
    pub fn volume(
        account: &str,
        volume: &str,
        volume_type: VolumeType,
        gib: u32,
        start_ms: i64,
        end_ms: Option<i64>,
    ) -> UsageRecord {
        let kind = UsageKind::Volume { volume_type, gib };
        UsageRecord::new(account, volume, kind, start_ms, end_ms)
    }

    /// The billed parts of a volume's `provisioned` IOPS over one interval: all of io1's,
    /// io2's split into its price tiers, gp3's beyond the [`GP3_INCLUDED_IOPS`]; none for
    /// the types whose IOPS come with their storage (or are not chosen). Parts with nothing
    /// to bill are left out, so a gp3 volume at its baseline has no IOPS records.
    pub fn volume_iops(
        account: &str,
        volume: &str,
        volume_type: VolumeType,
        provisioned: u32,
        start_ms: i64,
        end_ms: Option<i64>,
    ) -> Vec<UsageRecord> {
        let parts: Vec<(u8, u32)> = match volume_type {
            VolumeType::Io1 => vec![(1, provisioned)],
            VolumeType::Io2 => vec![
                (1, provisioned.min(IO2_TIER_IOPS)),
                (
                    2,
                    provisioned.saturating_sub(IO2_TIER_IOPS).min(IO2_TIER_IOPS),
                ),
                (3, provisioned.saturating_sub(2 * IO2_TIER_IOPS)),
            ],
            VolumeType::Gp3 => vec![(1, provisioned.saturating_sub(GP3_INCLUDED_IOPS))],
            VolumeType::Gp2 | VolumeType::St1 | VolumeType::Sc1 | VolumeType::Standard => {
                vec![]
            }
        };
        parts
            .into_iter()
            .filter(|(_, iops)| *iops > 0)
            .map(|(tier, iops)| {
                let kind = UsageKind::VolumeIops {
                    volume_type,
                    tier,
                    iops,
                };
                UsageRecord::new(account, volume, kind, start_ms, end_ms)
            })
            .collect()
    }

    /// A gp3 volume's `provisioned` throughput (MiB/s) over one interval, if it is beyond
    /// the [`GP3_INCLUDED_MIBPS`] (only that part is billed).
    pub fn volume_throughput(
        account: &str,
        volume: &str,
        provisioned: u32,
        start_ms: i64,
        end_ms: Option<i64>,
    ) -> Option<UsageRecord> {
        let mibps = provisioned
            .checked_sub(GP3_INCLUDED_MIBPS)
            .filter(|m| *m > 0)?;
        let kind = UsageKind::VolumeThroughput { mibps };
        Some(UsageRecord::new(account, volume, kind, start_ms, end_ms))
    }

    /// An EBS snapshot of a `gib` GiB volume.
    pub fn snapshot(
        account: &str,
        snapshot: &str,
        gib: u32,
        start_ms: i64,
        end_ms: Option<i64>,
    ) -> UsageRecord {
        UsageRecord::new(
            account,
            snapshot,
            UsageKind::Snapshot { gib },
            start_ms,
            end_ms,
        )
    }

    pub fn with_tags<K: Into<String>, V: Into<String>>(
        mut self,
        tags: impl IntoIterator<Item = (K, V)>,
    ) -> UsageRecord {
        self.tags = tags
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        self
    }

    pub fn in_zone(mut self, zone: &str) -> UsageRecord {
        self.availability_zone = Some(zone.to_string());
        self
    }

    /// The value of tag `key`, if the record carries it.
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// The Cost Explorer `SERVICE` of instance hours.
pub const SERVICE_EC2_COMPUTE: &str = "Amazon Elastic Compute Cloud - Compute";
/// The Cost Explorer `SERVICE` of EBS volumes (and other EC2 extras).
pub const SERVICE_EC2_OTHER: &str = "EC2 - Other";
/// The Cost Explorer `SERVICE` of public IPv4 addresses (since February 2024).
pub const SERVICE_VPC: &str = "Amazon Virtual Private Cloud";

/// How a class of usage is named and measured: one per distinct usage type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UsageClass {
    pub service: &'static str,
    pub service_code: &'static str,
    /// With the region's billing prefix where AWS uses one.
    pub usage_type: String,
    pub usage_type_group: &'static str,
    pub operation: &'static str,
    /// `Hrs`, `GB-Mo`, `IOPS-Mo` or `MiBps-Mo`, as bills and `GetDimensionValues` show it.
    pub unit: &'static str,
    pub instance_type: Option<String>,
    pub family: Option<String>,
    pub measure: Measure,
    /// What one unit is, for a bill line's description of a monthly class ("GB-month of
    /// General Purpose (gp3) provisioned storage"); empty for the others.
    pub per: &'static str,
}

/// How a class is measured and which free-tier pool, if any, covers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Measure {
    /// Instance-hours; `normalization` is the size factor in quarters (nano = 1, micro = 2,
    /// small = 4, …), as `NormalizedUsageAmount` counts.
    Compute { normalization: u32, free_tier: bool },
    /// Units (GiB, IOPS, MiB/s) provisioned for a month: GB-months and the like, pro-rated
    /// over the seconds of the calendar month. `minimum`: each resource is billed at least
    /// 60 seconds of it over its life, as EBS bills provisioned volumes.
    Monthly { pool: Option<Pool>, minimum: bool },
    /// Address-hours; in-use addresses are covered by the free tier, idle ones are not.
    Ipv4 { in_use: bool },
}

/// The free-tier allowance a class draws on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Pool {
    Compute,
    /// EBS storage: gp2, gp3 and magnetic volumes (root volumes included).
    Storage,
    Snapshot,
    Ipv4,
}

impl Pool {
    /// How many pools there are (they index per-account tables).
    pub const COUNT: u64 = 4;
}

impl Measure {
    pub fn pool(self) -> Option<Pool> {
        match self {
            Measure::Compute {
                free_tier: true, ..
            } => Some(Pool::Compute),
            Measure::Compute { .. } => None,
            Measure::Monthly { pool, .. } => pool,
            Measure::Ipv4 { in_use: true } => Some(Pool::Ipv4),
            Measure::Ipv4 { .. } => None,
        }
    }
}

/// AWS's billing prefix for a region (`USW2`, `EU`, …). Usage types carry it as
/// `USW2-BoxUsage:t2.micro`; us-east-1's older usage types (instances, EBS) carry none, its
/// newer ones (public IPv4) carry `USE1-`.
pub fn region_billing_code(region: &str) -> Option<&'static str> {
    Some(match region {
        "us-east-1" => "USE1",
        "us-east-2" => "USE2",
        "us-west-1" => "USW1",
        "us-west-2" => "USW2",
        "ca-central-1" => "CAN1",
        "sa-east-1" => "SAE1",
        "eu-west-1" => "EU",
        "eu-west-2" => "EUW2",
        "eu-west-3" => "EUW3",
        "eu-central-1" => "EUC1",
        "eu-north-1" => "EUN1",
        "eu-south-1" => "EUS1",
        "ap-northeast-1" => "APN1",
        "ap-northeast-2" => "APN2",
        "ap-northeast-3" => "APN3",
        "ap-southeast-1" => "APS1",
        "ap-southeast-2" => "APS2",
        "ap-south-1" => "APS3",
        "ap-east-1" => "APE1",
        "me-south-1" => "MES1",
        "af-south-1" => "AFS1",
        _ => return None,
    })
}

fn prefixed(region: &str, legacy_unprefixed: bool, name: &str) -> String {
    match region_billing_code(region) {
        Some(_) if region == "us-east-1" && legacy_unprefixed => name.to_string(),
        Some(code) => format!("{code}-{name}"),
        None => name.to_string(),
    }
}

/// Size factors of EC2's normalization table, in quarters.
fn normalization_quarters(instance_type: &str) -> u32 {
    match instance_type.split_once('.').map_or("", |(_, size)| size) {
        "nano" => 1,
        "micro" => 2,
        "small" => 4,
        "medium" => 8,
        "large" => 16,
        "xlarge" => 32,
        "2xlarge" => 64,
        "4xlarge" => 128,
        "8xlarge" => 256,
        _ => 4,
    }
}

impl UsageClass {
    pub fn of(kind: &UsageKind, region: &str, free_tier_types: &[String]) -> UsageClass {
        match kind {
            UsageKind::Compute { instance_type } => UsageClass {
                service: SERVICE_EC2_COMPUTE,
                service_code: "AmazonEC2",
                usage_type: prefixed(region, true, &format!("BoxUsage:{instance_type}")),
                usage_type_group: "EC2: Running Hours",
                operation: "RunInstances",
                unit: "Hrs",
                family: Some(
                    instance_type
                        .split_once('.')
                        .map_or(instance_type.as_str(), |(f, _)| f)
                        .to_string(),
                ),
                instance_type: Some(instance_type.clone()),
                measure: Measure::Compute {
                    normalization: normalization_quarters(instance_type),
                    free_tier: free_tier_types.iter().any(|t| t == instance_type),
                },
                per: "",
            },
            // The root volume of the instance records: gp3, without the volumes' minimum.
            UsageKind::Storage { .. } => UsageClass {
                measure: Measure::Monthly {
                    pool: Some(Pool::Storage),
                    minimum: false,
                },
                ..ebs_class(region, Some(VolumeType::Gp3), EbsPart::Storage)
            },
            UsageKind::Volume { volume_type, .. } => {
                ebs_class(region, Some(*volume_type), EbsPart::Storage)
            }
            UsageKind::VolumeIops {
                volume_type, tier, ..
            } => ebs_class(region, Some(*volume_type), EbsPart::Iops(*tier)),
            UsageKind::VolumeThroughput { .. } => {
                ebs_class(region, Some(VolumeType::Gp3), EbsPart::Throughput)
            }
            UsageKind::Snapshot { .. } => ebs_class(region, None, EbsPart::Storage),
            UsageKind::PublicIpv4 | UsageKind::ElasticIp { in_use: true } => UsageClass {
                service: SERVICE_VPC,
                service_code: "AmazonVPC",
                usage_type: prefixed(region, false, "PublicIPv4:InUseAddress"),
                usage_type_group: "VPC: Public IPv4 In-use Address",
                operation: if matches!(kind, UsageKind::PublicIpv4) {
                    "RunInstances"
                } else {
                    "AssociateAddressVPC"
                },
                unit: "Hrs",
                instance_type: None,
                family: None,
                measure: Measure::Ipv4 { in_use: true },
                per: "",
            },
            UsageKind::ElasticIp { in_use: false } => UsageClass {
                service: SERVICE_VPC,
                service_code: "AmazonVPC",
                usage_type: prefixed(region, false, "PublicIPv4:IdleAddress"),
                usage_type_group: "VPC: Public IPv4 Idle Address",
                operation: "AllocateAddressVPC",
                unit: "Hrs",
                instance_type: None,
                family: None,
                measure: Measure::Ipv4 { in_use: false },
                per: "",
            },
        }
    }
}

/// Which part of an EBS volume a class bills.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EbsPart {
    Storage,
    /// Provisioned IOPS, in io2's price tier (1 for the other types).
    Iops(u8),
    Throughput,
}

/// An EBS class (`volume_type` `None`: snapshots). Names are AWS's: usage types from the EBS
/// user guide's billing codes, operations and usage type groups as Cost Explorer shows them.
fn ebs_class(region: &str, volume_type: Option<VolumeType>, part: EbsPart) -> UsageClass {
    use VolumeType::*;
    let free = Some(Pool::Storage);
    // (usage type, usage type group, operation, unit, what one unit is, free-tier pool)
    let (usage_type, group, operation, unit, per, pool) = match (volume_type, part) {
        (None, _) => (
            "EBS:SnapshotUsage",
            "EC2: EBS - Snapshots",
            "CreateSnapshot",
            "GB-Mo",
            "GB-Month of snapshot data stored",
            Some(Pool::Snapshot),
        ),
        (Some(_), EbsPart::Throughput) => (
            "EBS:VolumeP-Throughput.gp3",
            "EC2: EBS - SSD(gp3) Throughput",
            "CreateVolume-Gp3",
            "MiBps-Mo",
            "MiBps-month provisioned (gp3) above 125 MiBps",
            None,
        ),
        (Some(Gp2), _) => (
            "EBS:VolumeUsage.gp2",
            "EC2: EBS - SSD(gp2)",
            "CreateVolume-Gp2",
            "GB-Mo",
            "GB-month of General Purpose SSD (gp2) provisioned storage",
            free,
        ),
        (Some(Gp3), EbsPart::Storage) => (
            "EBS:VolumeUsage.gp3",
            "EC2: EBS - SSD(gp3)",
            "CreateVolume-Gp3",
            "GB-Mo",
            "GB-month of General Purpose (gp3) provisioned storage",
            free,
        ),
        (Some(Gp3), EbsPart::Iops(_)) => (
            "EBS:VolumeP-IOPS.gp3",
            "EC2: EBS - SSD(gp3) IOPS",
            "CreateVolume-Gp3",
            "IOPS-Mo",
            "IOPS-month provisioned (gp3) above 3,000",
            None,
        ),
        (Some(Io1), EbsPart::Storage) => (
            "EBS:VolumeUsage.piops",
            "EC2: EBS - SSD(io1)",
            "CreateVolume-P-IOPS",
            "GB-Mo",
            "GB-month of Provisioned IOPS SSD (io1) provisioned storage",
            None,
        ),
        (Some(Io1), EbsPart::Iops(_)) => (
            "EBS:VolumeP-IOPS.piops",
            "EC2: EBS - SSD(io1) IOPS",
            "CreateVolume-P-IOPS",
            "IOPS-Mo",
            "IOPS-month provisioned (io1)",
            None,
        ),
        (Some(Io2), EbsPart::Storage) => (
            "EBS:VolumeUsage.io2",
            "EC2: EBS - SSD(io2)",
            "CreateVolume-io2",
            "GB-Mo",
            "GB-month of Provisioned IOPS SSD (io2) provisioned storage",
            None,
        ),
        (Some(Io2), EbsPart::Iops(tier)) => match tier {
            1 => (
                "EBS:VolumeP-IOPS.io2",
                "EC2: EBS - SSD(io2) IOPS",
                "CreateVolume-io2",
                "IOPS-Mo",
                "IOPS-month provisioned (io2) up to 32,000 IOPS",
                None,
            ),
            2 => (
                "EBS:VolumeP-IOPS.io2.tier2",
                "EC2: EBS - SSD(io2) IOPS",
                "CreateVolume-io2",
                "IOPS-Mo",
                "IOPS-month provisioned (io2) from 32,001 to 64,000 IOPS",
                None,
            ),
            _ => (
                "EBS:VolumeP-IOPS.io2.tier3",
                "EC2: EBS - SSD(io2) IOPS",
                "CreateVolume-io2",
                "IOPS-Mo",
                "IOPS-month provisioned (io2) above 64,000 IOPS",
                None,
            ),
        },
        (Some(St1), _) => (
            "EBS:VolumeUsage.st1",
            "EC2: EBS - HDD(st1)",
            "CreateVolume-Throughput",
            "GB-Mo",
            "GB-month of Throughput Optimized HDD (st1) provisioned storage",
            None,
        ),
        (Some(Sc1), _) => (
            "EBS:VolumeUsage.sc1",
            "EC2: EBS - HDD(sc1)",
            "CreateVolume-sc1",
            "GB-Mo",
            "GB-month of Cold HDD (sc1) provisioned storage",
            None,
        ),
        (Some(Standard), _) => (
            "EBS:VolumeUsage",
            "EC2: EBS - Magnetic",
            "CreateVolume",
            "GB-Mo",
            "GB-month of Magnetic provisioned storage",
            free,
        ),
    };
    UsageClass {
        service: SERVICE_EC2_OTHER,
        service_code: "AmazonEC2",
        usage_type: prefixed(region, true, usage_type),
        usage_type_group: group,
        operation,
        unit,
        instance_type: None,
        family: None,
        // Snapshots and root volumes (the `storage` kind) keep no minimum.
        measure: Measure::Monthly {
            pool,
            minimum: volume_type.is_some(),
        },
        per,
    }
}

/// A Cost Explorer dimension: every value of botocore's `Dimension` enum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dimension {
    Az,
    InstanceType,
    LinkedAccount,
    LinkedAccountName,
    Operation,
    PurchaseType,
    Region,
    Service,
    ServiceCode,
    UsageType,
    UsageTypeGroup,
    RecordType,
    OperatingSystem,
    Tenancy,
    Scope,
    Platform,
    SubscriptionId,
    LegalEntityName,
    DeploymentOption,
    DatabaseEngine,
    CacheEngine,
    InstanceTypeFamily,
    BillingEntity,
    ReservationId,
    ResourceId,
    RightsizingType,
    SavingsPlansType,
    SavingsPlanArn,
    PaymentOption,
    AgreementEndDateTimeAfter,
    AgreementEndDateTimeBefore,
    InvoicingEntity,
    AnomalyTotalImpactAbsolute,
    AnomalyTotalImpactPercentage,
}

/// `(dimension, API name, the value of usage it does not apply to)`.
const DIMENSIONS: &[(Dimension, &str, &str)] = &[
    (Dimension::Az, "AZ", "NoAZ"),
    (Dimension::InstanceType, "INSTANCE_TYPE", "NoInstanceType"),
    (
        Dimension::LinkedAccount,
        "LINKED_ACCOUNT",
        "NoLinkedAccount",
    ),
    (
        Dimension::LinkedAccountName,
        "LINKED_ACCOUNT_NAME",
        "NoLinkedAccountName",
    ),
    (Dimension::Operation, "OPERATION", "NoOperation"),
    (Dimension::PurchaseType, "PURCHASE_TYPE", "NoPurchaseType"),
    (Dimension::Region, "REGION", "NoRegion"),
    (Dimension::Service, "SERVICE", "NoService"),
    (Dimension::ServiceCode, "SERVICE_CODE", "NoServiceCode"),
    (Dimension::UsageType, "USAGE_TYPE", "NoUsageType"),
    (
        Dimension::UsageTypeGroup,
        "USAGE_TYPE_GROUP",
        "NoUsageTypeGroup",
    ),
    (Dimension::RecordType, "RECORD_TYPE", "NoRecordType"),
    (
        Dimension::OperatingSystem,
        "OPERATING_SYSTEM",
        "NoOperatingSystem",
    ),
    (Dimension::Tenancy, "TENANCY", "NoTenancy"),
    (Dimension::Scope, "SCOPE", "NoScope"),
    (Dimension::Platform, "PLATFORM", "NoPlatform"),
    (
        Dimension::SubscriptionId,
        "SUBSCRIPTION_ID",
        "NoSubscriptionId",
    ),
    (
        Dimension::LegalEntityName,
        "LEGAL_ENTITY_NAME",
        "NoLegalEntityName",
    ),
    (
        Dimension::DeploymentOption,
        "DEPLOYMENT_OPTION",
        "NoDeploymentOption",
    ),
    (
        Dimension::DatabaseEngine,
        "DATABASE_ENGINE",
        "NoDatabaseEngine",
    ),
    (Dimension::CacheEngine, "CACHE_ENGINE", "NoCacheEngine"),
    (
        Dimension::InstanceTypeFamily,
        "INSTANCE_TYPE_FAMILY",
        "NoInstanceTypeFamily",
    ),
    (
        Dimension::BillingEntity,
        "BILLING_ENTITY",
        "NoBillingEntity",
    ),
    (
        Dimension::ReservationId,
        "RESERVATION_ID",
        "NoReservationId",
    ),
    (Dimension::ResourceId, "RESOURCE_ID", "NoResourceId"),
    (
        Dimension::RightsizingType,
        "RIGHTSIZING_TYPE",
        "NoRightsizingType",
    ),
    (
        Dimension::SavingsPlansType,
        "SAVINGS_PLANS_TYPE",
        "NoSavingsPlansType",
    ),
    (
        Dimension::SavingsPlanArn,
        "SAVINGS_PLAN_ARN",
        "NoSavingsPlanArn",
    ),
    (
        Dimension::PaymentOption,
        "PAYMENT_OPTION",
        "NoPaymentOption",
    ),
    (
        Dimension::AgreementEndDateTimeAfter,
        "AGREEMENT_END_DATE_TIME_AFTER",
        "NoAgreementEndDateTimeAfter",
    ),
    (
        Dimension::AgreementEndDateTimeBefore,
        "AGREEMENT_END_DATE_TIME_BEFORE",
        "NoAgreementEndDateTimeBefore",
    ),
    (
        Dimension::InvoicingEntity,
        "INVOICING_ENTITY",
        "NoInvoicingEntity",
    ),
    (
        Dimension::AnomalyTotalImpactAbsolute,
        "ANOMALY_TOTAL_IMPACT_ABSOLUTE",
        "NoAnomalyTotalImpactAbsolute",
    ),
    (
        Dimension::AnomalyTotalImpactPercentage,
        "ANOMALY_TOTAL_IMPACT_PERCENTAGE",
        "NoAnomalyTotalImpactPercentage",
    ),
];

/// The dimensions `GetCostAndUsage` groups by, in the order AWS lists them in its error.
pub const GROUP_BY_DIMENSIONS: &[Dimension] = &[
    Dimension::Az,
    Dimension::InstanceType,
    Dimension::LinkedAccount,
    Dimension::Operation,
    Dimension::PurchaseType,
    Dimension::Service,
    Dimension::UsageType,
    Dimension::Platform,
    Dimension::Tenancy,
    Dimension::RecordType,
    Dimension::LegalEntityName,
    Dimension::InvoicingEntity,
    Dimension::DeploymentOption,
    Dimension::DatabaseEngine,
    Dimension::CacheEngine,
    Dimension::InstanceTypeFamily,
    Dimension::Region,
    Dimension::BillingEntity,
    Dimension::ReservationId,
    Dimension::SavingsPlansType,
    Dimension::SavingsPlanArn,
    Dimension::OperatingSystem,
];

/// The legal entity that "sells" gureum's usage, as AWS names itself on US bills.
pub const LEGAL_ENTITY: &str = "Amazon Web Services, Inc.";

impl Dimension {
    /// The dimension an API name (`"INSTANCE_TYPE"`) denotes.
    pub fn parse(name: &str) -> Option<Dimension> {
        DIMENSIONS
            .iter()
            .find(|(_, n, _)| *n == name)
            .map(|(d, _, _)| *d)
    }

    pub fn name(self) -> &'static str {
        DIMENSIONS
            .iter()
            .find(|(d, _, _)| *d == self)
            .map_or("", |(_, n, _)| n)
    }

    /// What Cost Explorer shows for usage the dimension does not apply to (`NoInstanceType`).
    pub fn placeholder(self) -> &'static str {
        DIMENSIONS
            .iter()
            .find(|(d, _, _)| *d == self)
            .map_or("", |(_, _, p)| p)
    }

    pub fn groupable(self) -> bool {
        GROUP_BY_DIMENSIONS.contains(&self)
    }

    /// The value for one record, `None` where the dimension does not apply to it.
    pub(crate) fn value<'a>(self, r: &RecordView<'a>) -> Option<Cow<'a, str>> {
        let compute = matches!(r.class.measure, Measure::Compute { .. });
        let b = |s: &'a str| Some(Cow::Borrowed(s));
        match self {
            Dimension::Az => r.record.availability_zone.as_deref().and_then(b),
            Dimension::InstanceType => r.class.instance_type.as_deref().and_then(b),
            Dimension::InstanceTypeFamily => r.class.family.as_deref().and_then(b),
            Dimension::LinkedAccount => b(&r.account.id),
            Dimension::LinkedAccountName => b(&r.account.name),
            Dimension::Operation => b(r.class.operation),
            Dimension::PurchaseType => b("On Demand Instances"),
            Dimension::Region => b(r.region),
            Dimension::Service => b(r.class.service),
            Dimension::ServiceCode => b(r.class.service_code),
            Dimension::UsageType => b(&r.class.usage_type),
            Dimension::UsageTypeGroup => b(r.class.usage_type_group),
            Dimension::RecordType => b("Usage"),
            Dimension::OperatingSystem if compute => b("Linux"),
            Dimension::Tenancy if compute => b("Shared"),
            Dimension::Platform if compute => b("Linux/UNIX"),
            Dimension::LegalEntityName | Dimension::InvoicingEntity => b(LEGAL_ENTITY),
            Dimension::BillingEntity => b("AWS"),
            Dimension::ResourceId => b(&r.record.resource_id),
            _ => None,
        }
    }

    /// The value for one record, the placeholder where the dimension does not apply.
    pub(crate) fn value_or_placeholder<'a>(self, r: &RecordView<'a>) -> Cow<'a, str> {
        self.value(r).unwrap_or(Cow::Borrowed(self.placeholder()))
    }
}

/// A record with what its dimensions are derived from.
pub(crate) struct RecordView<'a> {
    pub record: &'a UsageRecord,
    pub class: &'a UsageClass,
    pub account: &'a Account,
    pub region: &'a str,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_types_carry_the_region_prefix_aws_uses() {
        let ft = vec!["t2.micro".to_string()];
        let c = UsageClass::of(
            &UsageKind::Compute {
                instance_type: "t2.micro".into(),
            },
            "us-east-1",
            &ft,
        );
        assert_eq!(c.usage_type, "BoxUsage:t2.micro");
        assert_eq!(c.measure.pool(), Some(Pool::Compute));
        let c = UsageClass::of(
            &UsageKind::Compute {
                instance_type: "m5.large".into(),
            },
            "us-west-2",
            &ft,
        );
        assert_eq!(c.usage_type, "USW2-BoxUsage:m5.large");
        assert_eq!(c.measure.pool(), None);
        assert_eq!(c.family.as_deref(), Some("m5"));
        assert_eq!(
            c.measure,
            Measure::Compute {
                normalization: 16,
                free_tier: false
            }
        );
        let s = UsageClass::of(&UsageKind::Storage { gib: 8 }, "us-east-1", &ft);
        assert_eq!(
            (s.service, s.usage_type.as_str(), s.unit),
            (SERVICE_EC2_OTHER, "EBS:VolumeUsage.gp3", "GB-Mo")
        );
        let s = UsageClass::of(&UsageKind::Storage { gib: 8 }, "eu-west-1", &ft);
        assert_eq!(s.usage_type, "EU-EBS:VolumeUsage.gp3");
        let ip = UsageClass::of(&UsageKind::PublicIpv4, "us-east-1", &ft);
        assert_eq!(
            (ip.service, ip.usage_type.as_str()),
            (SERVICE_VPC, "USE1-PublicIPv4:InUseAddress")
        );
        let idle = UsageClass::of(&UsageKind::ElasticIp { in_use: false }, "us-east-1", &ft);
        assert_eq!(idle.usage_type, "USE1-PublicIPv4:IdleAddress");
        assert_eq!(idle.measure.pool(), None);
        let unknown = UsageClass::of(&UsageKind::PublicIpv4, "xx-moon-1", &ft);
        assert_eq!(unknown.usage_type, "PublicIPv4:InUseAddress");
    }

    #[test]
    fn dimension_names_round_trip() {
        for (d, name, placeholder) in DIMENSIONS {
            assert_eq!(Dimension::parse(name), Some(*d));
            assert_eq!(d.name(), *name);
            assert!(placeholder.starts_with("No"));
        }
        assert_eq!(DIMENSIONS.len(), 34);
        assert_eq!(Dimension::parse("instance_type"), None);
        assert!(Dimension::Service.groupable());
        assert!(!Dimension::ResourceId.groupable());
    }
}
