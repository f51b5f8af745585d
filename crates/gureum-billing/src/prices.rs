//! The price list: what every unit of usage costs, and the free tier.
//!
//! Owned here: the file format (TOML, `prices.toml` shipped inside the crate), its
//! validation against gureum's instance-type catalogue, and the operator's partial
//! override. The list holds AWS's us-east-1 on-demand Linux prices; how usage is turned into
//! money with it is [`crate::rating`]'s business.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::amount::{AmountError, Price};
use gureum_types::instance_types::CATALOGUE;
use gureum_types::VolumeType;

/// The price list gureum ships (AWS us-east-1, on demand, Linux).
pub const DEFAULT_PRICES_TOML: &str = include_str!("../prices.toml");

/// Prices and free-tier allowances. Build it with [`PriceList::aws_default`], then apply an
/// operator's file with [`PriceList::with_override`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriceList {
    /// The region the prices are for (informational; `"us-east-1"`).
    pub region: String,
    /// USD per instance-hour, keyed by instance type. Covers every catalogue type.
    pub compute: BTreeMap<String, Price>,
    /// USD per GB-month of gp3 storage (root volumes and gp3 volumes).
    pub gp3_gb_month: Price,
    /// The other EBS prices (the `[storage]` section's other keys).
    pub ebs: EbsPrices,
    /// USD per hour of a public IPv4 address (in use or idle).
    pub public_ipv4_hour: Price,
    pub free_tier: FreeTier,
}

/// EBS prices other than gp3 storage, USD per unit-month.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EbsPrices {
    pub gp2_gb_month: Price,
    pub io1_gb_month: Price,
    pub io2_gb_month: Price,
    pub st1_gb_month: Price,
    pub sc1_gb_month: Price,
    pub standard_gb_month: Price,
    pub snapshot_gb_month: Price,
    /// Per IOPS-month beyond gp3's included 3,000.
    pub gp3_iops_month: Price,
    /// Per MiB/s-month beyond gp3's included 125 MiB/s.
    pub gp3_throughput_month: Price,
    pub io1_iops_month: Price,
    /// io2's IOPS tiers: up to 32,000, from 32,001 to 64,000, beyond.
    pub io2_iops_month: [Price; 3],
}

/// Where one `[storage]` key (other than `gp3_gb_month`) is read from and kept.
type EbsKey = (
    &'static str,
    fn(&mut StorageSection) -> &mut Option<PriceValue>,
    fn(&mut EbsPrices) -> &mut Price,
);

/// The `[storage]` keys besides `gp3_gb_month`.
const EBS_KEYS: &[EbsKey] = &[
    (
        "storage.gp2_gb_month",
        |s| &mut s.gp2_gb_month,
        |e| &mut e.gp2_gb_month,
    ),
    (
        "storage.io1_gb_month",
        |s| &mut s.io1_gb_month,
        |e| &mut e.io1_gb_month,
    ),
    (
        "storage.io2_gb_month",
        |s| &mut s.io2_gb_month,
        |e| &mut e.io2_gb_month,
    ),
    (
        "storage.st1_gb_month",
        |s| &mut s.st1_gb_month,
        |e| &mut e.st1_gb_month,
    ),
    (
        "storage.sc1_gb_month",
        |s| &mut s.sc1_gb_month,
        |e| &mut e.sc1_gb_month,
    ),
    (
        "storage.standard_gb_month",
        |s| &mut s.standard_gb_month,
        |e| &mut e.standard_gb_month,
    ),
    (
        "storage.snapshot_gb_month",
        |s| &mut s.snapshot_gb_month,
        |e| &mut e.snapshot_gb_month,
    ),
    (
        "storage.gp3_iops_month",
        |s| &mut s.gp3_iops_month,
        |e| &mut e.gp3_iops_month,
    ),
    (
        "storage.gp3_throughput_month",
        |s| &mut s.gp3_throughput_month,
        |e| &mut e.gp3_throughput_month,
    ),
    (
        "storage.io1_iops_month",
        |s| &mut s.io1_iops_month,
        |e| &mut e.io1_iops_month,
    ),
    (
        "storage.io2_iops_month",
        |s| &mut s.io2_iops_month,
        |e| &mut e.io2_iops_month[0],
    ),
    (
        "storage.io2_iops_month_tier2",
        |s| &mut s.io2_iops_month_tier2,
        |e| &mut e.io2_iops_month[1],
    ),
    (
        "storage.io2_iops_month_tier3",
        |s| &mut s.io2_iops_month_tier3,
        |e| &mut e.io2_iops_month[2],
    ),
];

/// The 12-month free tier's monthly allowances.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FreeTier {
    /// How long after the account's creation the free tier lasts, in calendar months.
    pub months: u32,
    /// Instance-hours a month, shared by all `compute_types`.
    pub compute_hours: u32,
    pub compute_types: Vec<String>,
    /// GB-months of EBS storage a month, shared by gp2, gp3 and magnetic volumes.
    pub storage_gb_months: u32,
    /// GB-months of EBS snapshots a month.
    pub snapshot_gb_months: u32,
    /// Hours of in-use public IPv4 addresses a month.
    pub public_ipv4_hours: u32,
}

/// What is wrong with a price file. Messages name the key and say what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PriceError {
    #[error("price list is not valid TOML of the expected shape: {0}")]
    Syntax(String),
    #[error(
        "unknown instance type {name:?} in the price list: gureum offers {known} (see `gureum types`)"
    )]
    UnknownInstanceType { name: String, known: String },
    #[error("the price list has no price for instance type {0:?}")]
    MissingInstanceType(String),
    #[error("the price list has no {0}")]
    Missing(&'static str),
    #[error("invalid price for {key}: {value:?} is {reason}")]
    InvalidPrice {
        key: String,
        value: String,
        reason: AmountError,
    },
    #[error("unsupported currency {0:?}: gureum bills in USD")]
    Currency(String),
    #[error("free_tier.months must be between 0 and 1200, not {0}")]
    FreeTierMonths(u32),
}

impl PriceList {
    /// The list gureum ships. It is checked by this crate's tests, so it always parses.
    pub fn aws_default() -> PriceList {
        PriceList::from_toml(DEFAULT_PRICES_TOML)
            .unwrap_or_else(|e| panic!("the shipped prices.toml is invalid: {e}"))
    }

    /// A complete price list: every section present, every catalogue type priced.
    pub fn from_toml(text: &str) -> Result<PriceList, PriceError> {
        let mut file = parse(text)?;
        let region = file.meta.as_ref().and_then(|m| m.region.clone());
        let empty = PriceList {
            region: region.unwrap_or_else(|| "us-east-1".to_string()),
            compute: BTreeMap::new(),
            gp3_gb_month: Price::ZERO,
            ebs: EbsPrices::default(),
            public_ipv4_hour: Price::ZERO,
            free_tier: FreeTier {
                months: 0,
                compute_hours: 0,
                compute_types: Vec::new(),
                storage_gb_months: 0,
                snapshot_gb_months: 0,
                public_ipv4_hours: 0,
            },
        };
        let Some(mut storage) = file.storage.take() else {
            return Err(PriceError::Missing("storage.gp3_gb_month"));
        };
        let ipv4 = file.public_ipv4.as_ref().and_then(|s| s.hourly.as_ref());
        if storage.gp3_gb_month.is_none() {
            return Err(PriceError::Missing("storage.gp3_gb_month"));
        }
        for (key, read, _) in EBS_KEYS {
            if read(&mut storage).is_none() {
                return Err(PriceError::Missing(key));
            }
        }
        file.storage = Some(storage);
        if ipv4.is_none() {
            return Err(PriceError::Missing("public_ipv4.hourly"));
        }
        let ft = file.free_tier.as_ref();
        for (present, name) in [
            (ft.and_then(|f| f.months).is_some(), "free_tier.months"),
            (
                ft.and_then(|f| f.compute_hours).is_some(),
                "free_tier.compute_hours",
            ),
            (
                ft.and_then(|f| f.compute_types.as_ref()).is_some(),
                "free_tier.compute_types",
            ),
            (
                ft.and_then(|f| f.storage_gb_months).is_some(),
                "free_tier.storage_gb_months",
            ),
            (
                ft.and_then(|f| f.snapshot_gb_months).is_some(),
                "free_tier.snapshot_gb_months",
            ),
            (
                ft.and_then(|f| f.public_ipv4_hours).is_some(),
                "free_tier.public_ipv4_hours",
            ),
        ] {
            if !present {
                return Err(PriceError::Missing(name));
            }
        }
        let list = empty.merge(file)?;
        for t in CATALOGUE {
            if !list.compute.contains_key(t.name) {
                return Err(PriceError::MissingInstanceType(t.name.to_string()));
            }
        }
        Ok(list)
    }

    /// This list with an operator's partial file applied on top: any subset of the sections
    /// and keys of `prices.toml`. Instance types must be ones gureum offers.
    pub fn with_override(self, text: &str) -> Result<PriceList, PriceError> {
        self.merge(parse(text)?)
    }

    /// USD per GB-month of a volume type's storage.
    pub fn volume_gb_month(&self, t: VolumeType) -> Price {
        let e = &self.ebs;
        match t {
            VolumeType::Gp3 => self.gp3_gb_month,
            VolumeType::Gp2 => e.gp2_gb_month,
            VolumeType::Io1 => e.io1_gb_month,
            VolumeType::Io2 => e.io2_gb_month,
            VolumeType::St1 => e.st1_gb_month,
            VolumeType::Sc1 => e.sc1_gb_month,
            VolumeType::Standard => e.standard_gb_month,
        }
    }

    /// USD per provisioned IOPS-month of a volume type in a price tier (io2's 1 to 3; 1
    /// otherwise); zero for types whose IOPS are not billed.
    pub fn iops_month(&self, t: VolumeType, tier: u8) -> Price {
        let e = &self.ebs;
        match t {
            VolumeType::Gp3 => e.gp3_iops_month,
            VolumeType::Io1 => e.io1_iops_month,
            VolumeType::Io2 => e.io2_iops_month[usize::from(tier.clamp(1, 3) - 1)],
            VolumeType::Gp2 | VolumeType::St1 | VolumeType::Sc1 | VolumeType::Standard => {
                Price::ZERO
            }
        }
    }

    /// The hourly price of an instance type, if the list has one.
    pub fn instance_hour(&self, instance_type: &str) -> Option<Price> {
        self.compute.get(instance_type).copied()
    }

    fn merge(mut self, file: PriceFile) -> Result<PriceList, PriceError> {
        if let Some(meta) = file.meta {
            if let Some(currency) = meta.currency {
                if currency != "USD" {
                    return Err(PriceError::Currency(currency));
                }
            }
            if let Some(region) = meta.region {
                self.region = region;
            }
        }
        for (name, value) in file.compute.unwrap_or_default() {
            check_type(&name)?;
            let price = value.to_price(&format!("compute.\"{name}\""))?;
            self.compute.insert(name, price);
        }
        if let Some(mut storage) = file.storage {
            if let Some(p) = storage.gp3_gb_month.take() {
                self.gp3_gb_month = p.to_price("storage.gp3_gb_month")?;
            }
            for (key, read, keep) in EBS_KEYS {
                if let Some(p) = read(&mut storage).take() {
                    *keep(&mut self.ebs) = p.to_price(key)?;
                }
            }
        }
        if let Some(p) = file.public_ipv4.and_then(|s| s.hourly) {
            self.public_ipv4_hour = p.to_price("public_ipv4.hourly")?;
        }
        if let Some(ft) = file.free_tier {
            if let Some(m) = ft.months {
                if m > 1200 {
                    return Err(PriceError::FreeTierMonths(m));
                }
                self.free_tier.months = m;
            }
            if let Some(h) = ft.compute_hours {
                self.free_tier.compute_hours = h;
            }
            if let Some(types) = ft.compute_types {
                for t in &types {
                    check_type(t)?;
                }
                self.free_tier.compute_types = types;
            }
            if let Some(g) = ft.storage_gb_months {
                self.free_tier.storage_gb_months = g;
            }
            if let Some(g) = ft.snapshot_gb_months {
                self.free_tier.snapshot_gb_months = g;
            }
            if let Some(h) = ft.public_ipv4_hours {
                self.free_tier.public_ipv4_hours = h;
            }
        }
        Ok(self)
    }
}

fn check_type(name: &str) -> Result<(), PriceError> {
    if CATALOGUE.iter().any(|t| t.name == name) {
        Ok(())
    } else {
        let known: Vec<&str> = CATALOGUE.iter().map(|t| t.name).collect();
        Err(PriceError::UnknownInstanceType {
            name: name.to_string(),
            known: known.join(", "),
        })
    }
}

fn parse(text: &str) -> Result<PriceFile, PriceError> {
    toml::from_str(text).map_err(|e| PriceError::Syntax(e.to_string().trim_end().to_string()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PriceFile {
    meta: Option<MetaSection>,
    compute: Option<BTreeMap<String, PriceValue>>,
    storage: Option<StorageSection>,
    public_ipv4: Option<Ipv4Section>,
    free_tier: Option<FreeTierSection>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MetaSection {
    region: Option<String>,
    currency: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StorageSection {
    gp3_gb_month: Option<PriceValue>,
    gp2_gb_month: Option<PriceValue>,
    io1_gb_month: Option<PriceValue>,
    io2_gb_month: Option<PriceValue>,
    st1_gb_month: Option<PriceValue>,
    sc1_gb_month: Option<PriceValue>,
    standard_gb_month: Option<PriceValue>,
    snapshot_gb_month: Option<PriceValue>,
    gp3_iops_month: Option<PriceValue>,
    gp3_throughput_month: Option<PriceValue>,
    io1_iops_month: Option<PriceValue>,
    io2_iops_month: Option<PriceValue>,
    io2_iops_month_tier2: Option<PriceValue>,
    io2_iops_month_tier3: Option<PriceValue>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Ipv4Section {
    hourly: Option<PriceValue>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FreeTierSection {
    months: Option<u32>,
    compute_hours: Option<u32>,
    compute_types: Option<Vec<String>>,
    storage_gb_months: Option<u32>,
    snapshot_gb_months: Option<u32>,
    public_ipv4_hours: Option<u32>,
}

/// A price as written: a decimal string (preferred) or a TOML number.
#[derive(Deserialize)]
#[serde(untagged)]
enum PriceValue {
    Text(String),
    Integer(i64),
    Float(f64),
}

impl PriceValue {
    fn to_price(&self, key: &str) -> Result<Price, PriceError> {
        // A float is read back through its shortest round-trip decimal, which is the
        // literal the operator wrote for any price with fewer than 16 significant digits.
        let text = match self {
            PriceValue::Text(s) => s.clone(),
            PriceValue::Integer(i) => i.to_string(),
            PriceValue::Float(f) => format!("{f}"),
        };
        Price::parse(&text).map_err(|reason| PriceError::InvalidPrice {
            key: key.to_string(),
            value: text,
            reason,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_list_prices_every_catalogue_type() {
        let list = PriceList::aws_default();
        assert_eq!(list.compute.len(), CATALOGUE.len());
        assert_eq!(
            list.instance_hour("t2.micro").unwrap().to_string(),
            "0.0116"
        );
        assert_eq!(
            list.instance_hour("t3.micro").unwrap().to_string(),
            "0.0104"
        );
        assert_eq!(list.instance_hour("t2.nano").unwrap().to_string(), "0.0058");
        assert_eq!(list.instance_hour("m5.large").unwrap().to_string(), "0.096");
        assert_eq!(list.gp3_gb_month.to_string(), "0.08");
        let gb: Vec<String> = [
            VolumeType::Gp2,
            VolumeType::Gp3,
            VolumeType::Io1,
            VolumeType::Io2,
            VolumeType::St1,
            VolumeType::Sc1,
            VolumeType::Standard,
        ]
        .map(|t| list.volume_gb_month(t).to_string())
        .into();
        assert_eq!(
            gb,
            ["0.1", "0.08", "0.125", "0.125", "0.045", "0.015", "0.05"]
        );
        assert_eq!(list.ebs.snapshot_gb_month.to_string(), "0.05");
        assert_eq!(list.iops_month(VolumeType::Gp3, 1).to_string(), "0.005");
        assert_eq!(list.ebs.gp3_throughput_month.to_string(), "0.04");
        assert_eq!(list.iops_month(VolumeType::Io1, 1).to_string(), "0.065");
        let io2: Vec<String> = (1..=3)
            .map(|t| list.iops_month(VolumeType::Io2, t).to_string())
            .collect();
        assert_eq!(io2, ["0.065", "0.0455", "0.03185"]);
        assert_eq!(list.iops_month(VolumeType::Gp2, 1), Price::ZERO);
        assert_eq!(list.free_tier.snapshot_gb_months, 1);
        assert_eq!(list.public_ipv4_hour.to_string(), "0.005");
        assert_eq!(list.free_tier.compute_hours, 750);
        assert_eq!(list.free_tier.compute_types, ["t2.micro", "t3.micro"]);
        assert_eq!(list.free_tier.storage_gb_months, 30);
        assert_eq!(list.free_tier.public_ipv4_hours, 750);
        assert_eq!(list.free_tier.months, 12);
        assert_eq!(list.region, "us-east-1");
    }

    #[test]
    fn shipped_prices_scale_with_size_within_a_family() {
        // Sizes double in price within every family: a cheap check against typos.
        let list = PriceList::aws_default();
        for family in ["t2", "t3", "t3a"] {
            let sizes = [
                "nano", "micro", "small", "medium", "large", "xlarge", "2xlarge",
            ];
            for pair in sizes.windows(2) {
                let a = list
                    .instance_hour(&format!("{family}.{}", pair[0]))
                    .unwrap();
                let b = list
                    .instance_hour(&format!("{family}.{}", pair[1]))
                    .unwrap();
                let ratio = b.tenth_nanos() as f64 / a.tenth_nanos() as f64;
                assert!((1.9..=2.1).contains(&ratio), "{family} {pair:?}: {ratio}");
            }
        }
        for family in ["m5", "c5", "r5"] {
            let l = list.instance_hour(&format!("{family}.large")).unwrap();
            let x = list.instance_hour(&format!("{family}.xlarge")).unwrap();
            let xx = list.instance_hour(&format!("{family}.2xlarge")).unwrap();
            assert_eq!(x.tenth_nanos(), 2 * l.tenth_nanos());
            assert_eq!(xx.tenth_nanos(), 2 * x.tenth_nanos());
        }
    }

    #[test]
    fn override_changes_only_what_it_names() {
        let base = PriceList::aws_default();
        let over = base
            .clone()
            .with_override(
                r#"
                [compute]
                "t2.micro" = "0.02"
                "m5.large" = 0.1
                [public_ipv4]
                hourly = 0
                [free_tier]
                months = 0
                "#,
            )
            .unwrap();
        assert_eq!(over.instance_hour("t2.micro").unwrap().to_string(), "0.02");
        assert_eq!(over.instance_hour("m5.large").unwrap().to_string(), "0.1");
        assert_eq!(
            over.instance_hour("t3.micro"),
            base.instance_hour("t3.micro")
        );
        assert_eq!(over.public_ipv4_hour, Price::ZERO);
        assert_eq!(over.gp3_gb_month, base.gp3_gb_month);
        assert_eq!(over.free_tier.months, 0);
        assert_eq!(over.free_tier.compute_hours, 750);
        // EBS prices override one key at a time too.
        let ebs = base
            .clone()
            .with_override("[storage]\nio2_iops_month_tier2 = \"0.04\"\ngp2_gb_month = 0.2\n[free_tier]\nsnapshot_gb_months = 5\n")
            .unwrap();
        assert_eq!(ebs.iops_month(VolumeType::Io2, 2).to_string(), "0.04");
        assert_eq!(ebs.volume_gb_month(VolumeType::Gp2).to_string(), "0.2");
        assert_eq!(
            ebs.iops_month(VolumeType::Io2, 1),
            base.iops_month(VolumeType::Io2, 1)
        );
        assert_eq!(ebs.gp3_gb_month, base.gp3_gb_month);
        assert_eq!(ebs.free_tier.snapshot_gb_months, 5);
        assert_eq!(ebs.free_tier.storage_gb_months, 30);
        // An empty override is the identity.
        assert_eq!(base.clone().with_override("").unwrap(), base);
    }

    #[test]
    fn override_rejects_unknown_types_and_keys() {
        let base = PriceList::aws_default();
        let err = base
            .clone()
            .with_override("[compute]\n\"x9.huge\" = \"1\"\n")
            .unwrap_err();
        assert!(matches!(&err, PriceError::UnknownInstanceType { name, .. } if name == "x9.huge"));
        let msg = err.to_string();
        assert!(
            msg.contains("\"x9.huge\"") && msg.contains("t2.micro"),
            "{msg}"
        );

        let err = base
            .clone()
            .with_override("[free_tier]\ncompute_types = [\"t9.micro\"]\n")
            .unwrap_err();
        assert!(matches!(err, PriceError::UnknownInstanceType { .. }));

        let err = base
            .clone()
            .with_override("[storage]\ngp9_gb_month = \"0.1\"\n")
            .unwrap_err();
        assert!(
            matches!(&err, PriceError::Syntax(m) if m.contains("gp9_gb_month")),
            "{err}"
        );

        let err = base
            .clone()
            .with_override("[compute]\n\"t2.micro\" = \"-1\"\n")
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid price for compute.\"t2.micro\": \"-1\" is negative"
        );
        let err = base
            .clone()
            .with_override("[meta]\ncurrency = \"EUR\"\n")
            .unwrap_err();
        assert_eq!(err, PriceError::Currency("EUR".into()));
        assert!(matches!(
            base.with_override("[compute"),
            Err(PriceError::Syntax(_))
        ));
    }

    #[test]
    fn a_complete_list_must_price_every_type() {
        let err = PriceList::from_toml(
            r#"
            [compute]
            "t2.micro" = "0.0116"
            [storage]
            gp3_gb_month = "0.08"
            gp2_gb_month = "0.10"
            io1_gb_month = "0.125"
            io2_gb_month = "0.125"
            st1_gb_month = "0.045"
            sc1_gb_month = "0.015"
            standard_gb_month = "0.05"
            snapshot_gb_month = "0.05"
            gp3_iops_month = "0.005"
            gp3_throughput_month = "0.04"
            io1_iops_month = "0.065"
            io2_iops_month = "0.065"
            io2_iops_month_tier2 = "0.0455"
            io2_iops_month_tier3 = "0.03185"
            [public_ipv4]
            hourly = "0.005"
            [free_tier]
            months = 12
            compute_hours = 750
            compute_types = ["t2.micro"]
            storage_gb_months = 30
            snapshot_gb_months = 1
            public_ipv4_hours = 750
            "#,
        )
        .unwrap_err();
        assert!(matches!(err, PriceError::MissingInstanceType(_)));
        // Every EBS price is required of a complete list.
        let without = DEFAULT_PRICES_TOML.replace("io2_iops_month_tier3 = \"0.03185\"\n", "");
        assert_eq!(
            PriceList::from_toml(&without).unwrap_err(),
            PriceError::Missing("storage.io2_iops_month_tier3")
        );
        let without = DEFAULT_PRICES_TOML.replace("snapshot_gb_months = 1\n", "");
        assert_eq!(
            PriceList::from_toml(&without).unwrap_err(),
            PriceError::Missing("free_tier.snapshot_gb_months")
        );
        let err = PriceList::from_toml("[compute]\n").unwrap_err();
        assert_eq!(err, PriceError::Missing("storage.gp3_gb_month"));
    }
}
