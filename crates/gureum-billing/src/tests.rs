//! Rating scenarios with a driven clock: each test states usage at fixed instants and the
//! `now` it is rated at, and checks the bill to the last digit.

use crate::calendar::{utc, MS_PER_DAY, MS_PER_HOUR, MS_PER_SECOND};
use crate::{Account, Ledger, Month, PriceList, UsageRecord};

const OLD: &str = "100000000001"; // created long ago: no free tier
const NEW: &str = "200000000002"; // created 2024-01-10: free tier through 2025-01-10
const NEW2: &str = "300000000003"; // created 2024-02-01

fn accounts() -> Vec<Account> {
    vec![
        Account {
            id: OLD.into(),
            name: "old".into(),
            created_ms: utc(2020, 1, 1, 0, 0, 0),
        },
        Account {
            id: NEW.into(),
            name: "new".into(),
            created_ms: utc(2024, 1, 10, 0, 0, 0),
        },
        Account {
            id: NEW2.into(),
            name: "new2".into(),
            created_ms: utc(2024, 2, 1, 0, 0, 0),
        },
    ]
}

fn month(y: i32, m: u32) -> Month {
    Month::new(y, m).unwrap()
}

/// The bill total of `account` for `m`, exact to 1e-10 USD.
fn total(records: &[UsageRecord], prices: &PriceList, account: &str, m: Month, now: i64) -> String {
    let accounts = accounts();
    let ledger = Ledger::new(records, &accounts, prices, "us-east-1").unwrap();
    ledger
        .monthly_bill(account, m, now)
        .unwrap()
        .total
        .to_decimal(10)
}

fn total_default(records: &[UsageRecord], account: &str, m: Month) -> String {
    total(
        records,
        &PriceList::aws_default(),
        account,
        m,
        m.end_ms() + MS_PER_DAY,
    )
}

/// Free and charged quantities of one usage type, as the bill shows them.
fn quantities(
    records: &[UsageRecord],
    account: &str,
    m: Month,
    usage_type: &str,
) -> (String, String) {
    let accounts = accounts();
    let prices = PriceList::aws_default();
    let ledger = Ledger::new(records, &accounts, &prices, "us-east-1").unwrap();
    let bill = ledger
        .monthly_bill(account, m, m.end_ms() + MS_PER_DAY)
        .unwrap();
    let pick = |free: bool| {
        bill.lines
            .iter()
            .find(|l| l.usage_type == usage_type && l.free_tier == free)
            .map_or("0".to_string(), |l| l.quantity.to_decimal(6))
    };
    (pick(true), pick(false))
}

#[test]
fn a_start_is_billed_at_least_sixty_seconds() {
    let t = utc(2024, 5, 10, 8, 0, 0);
    let m = month(2024, 5);
    // m5.large at $0.096/h: one minute is $0.0016.
    for secs in [1, 20, 59, 60] {
        let r = [UsageRecord::compute(
            OLD,
            "i-1",
            "m5.large",
            t,
            Some(t + secs * MS_PER_SECOND),
        )];
        assert_eq!(total_default(&r, OLD, m), "0.0016", "{secs} s");
    }
    // A start that never ran a millisecond is still a start.
    let r = [UsageRecord::compute(OLD, "i-1", "m5.large", t, Some(t))];
    assert_eq!(total_default(&r, OLD, m), "0.0016");
    // Each start has its own minimum: three 10-second runs cost three minutes.
    let r: Vec<UsageRecord> = (0..3)
        .map(|k| {
            let s = t + k * MS_PER_HOUR;
            UsageRecord::compute(OLD, "i-1", "m5.large", s, Some(s + 10 * MS_PER_SECOND))
        })
        .collect();
    assert_eq!(total_default(&r, OLD, m), "0.0048");
}

#[test]
fn after_the_minimum_billing_is_per_second() {
    let t = utc(2024, 5, 10, 8, 0, 0);
    let m = month(2024, 5);
    let cost = |secs: i64| {
        let r = [UsageRecord::compute(
            OLD,
            "i-1",
            "m5.large",
            t,
            Some(t + secs * MS_PER_SECOND),
        )];
        total_default(&r, OLD, m)
    };
    assert_eq!(cost(61), "0.0016266667"); // 0.096 × 61 / 3600
    assert_eq!(cost(90), "0.0024");
    assert_eq!(cost(3600), "0.096");
    assert_eq!(cost(3601), "0.0960266667");
    // Milliseconds are kept: 90.5 s.
    let r = [UsageRecord::compute(
        OLD,
        "i-1",
        "m5.large",
        t,
        Some(t + 90_500),
    )];
    assert_eq!(total_default(&r, OLD, m), "0.0024133333");
}

#[test]
fn open_records_are_rated_up_to_now() {
    let t = utc(2024, 5, 10, 8, 0, 0);
    let m = month(2024, 5);
    let prices = PriceList::aws_default();
    let r = [UsageRecord::compute(OLD, "i-1", "m5.large", t, None)];
    assert_eq!(total(&r, &prices, OLD, m, t + 2 * MS_PER_HOUR), "0.192");
    // Ten seconds in, the minimum already applies.
    assert_eq!(total(&r, &prices, OLD, m, t + 10 * MS_PER_SECOND), "0.0016");
    // Before it started, nothing (but the start itself counts once it exists).
    assert_eq!(total(&r, &prices, OLD, m, t - MS_PER_HOUR), "0.0016");
}

#[test]
fn the_free_tier_covers_750_hours_and_then_charges_per_second() {
    let m = month(2024, 5); // 31 days: 744 hours
    let s = m.start_ms();
    // One t2.micro all month: 744 h, all free.
    let base = UsageRecord::compute(NEW, "i-1", "t2.micro", s, Some(m.end_ms()));
    assert_eq!(total_default(std::slice::from_ref(&base), NEW, m), "0");
    // Plus 6 hours of another: exactly 750 h, still free.
    let t = utc(2024, 5, 20, 0, 0, 0);
    let six = UsageRecord::compute(NEW, "i-2", "t2.micro", t, Some(t + 6 * MS_PER_HOUR));
    assert_eq!(total_default(&[base.clone(), six], NEW, m), "0");
    // One second more is charged: $0.0116 / 3600.
    let over = UsageRecord::compute(
        NEW,
        "i-2",
        "t2.micro",
        t,
        Some(t + 6 * MS_PER_HOUR + MS_PER_SECOND),
    );
    assert_eq!(
        total_default(&[base.clone(), over.clone()], NEW, m),
        "0.0000032222"
    );
    assert_eq!(
        quantities(&[base, over], NEW, m, "BoxUsage:t2.micro"),
        ("750".to_string(), "0.000278".to_string())
    );
}

#[test]
fn t2_micro_and_t3_micro_share_one_allowance_and_other_types_have_none() {
    let m = month(2024, 5);
    let (s, e) = (m.start_ms(), m.end_ms());
    // A t2.micro all month (744 h) and a t3.micro for the last day (24 h). By May 31 00:00
    // 720 h are spent; the other 30 h go at two hours per hour and run out at 15:00.
    let t = utc(2024, 5, 31, 0, 0, 0);
    let r = [
        UsageRecord::compute(NEW, "i-1", "t2.micro", s, Some(e)),
        UsageRecord::compute(NEW, "i-2", "t3.micro", t, Some(e)),
    ];
    let (free, charged) = quantities(&r, NEW, m, "BoxUsage:t3.micro");
    assert_eq!((free.as_str(), charged.as_str()), ("15", "9"));
    let (free, charged) = quantities(&r, NEW, m, "BoxUsage:t2.micro");
    assert_eq!((free.as_str(), charged.as_str()), ("735", "9"));
    assert_eq!(total_default(&r, NEW, m), "0.198"); // 9 × (0.0116 + 0.0104)
                                                    // t3a.micro is not free-tier eligible.
    let r = [UsageRecord::compute(
        NEW,
        "i-1",
        "t3a.micro",
        s,
        Some(s + MS_PER_HOUR),
    )];
    assert_eq!(total_default(&r, NEW, m), "0.0094");
}

#[test]
fn month_boundaries_split_usage_and_reset_the_free_tier() {
    // An old account: an m5.large from Jan 31 12:00 to Feb 1 12:00 is 12 h in each month.
    let s = utc(2024, 1, 31, 12, 0, 0);
    let r = [UsageRecord::compute(
        OLD,
        "i-1",
        "m5.large",
        s,
        Some(s + 24 * MS_PER_HOUR),
    )];
    assert_eq!(total_default(&r, OLD, month(2024, 1)), "1.152");
    assert_eq!(total_default(&r, OLD, month(2024, 2)), "1.152");
    // A 60-second minimum straddling midnight is billed where its seconds fall.
    let s = utc(2024, 1, 31, 23, 59, 30);
    let r = [UsageRecord::compute(
        OLD,
        "i-1",
        "m5.large",
        s,
        Some(s + 10 * MS_PER_SECOND),
    )];
    assert_eq!(total_default(&r, OLD, month(2024, 1)), "0.0008");
    assert_eq!(total_default(&r, OLD, month(2024, 2)), "0.0008");
    // Two t2.micro from Feb 1 to Apr 1 in a new account: every month has its own 750 h.
    let (s, e) = (utc(2024, 2, 1, 0, 0, 0), utc(2024, 4, 1, 0, 0, 0));
    let r = [
        UsageRecord::compute(NEW, "i-1", "t2.micro", s, Some(e)),
        UsageRecord::compute(NEW, "i-2", "t2.micro", s, Some(e)),
    ];
    // February 2024 has 29 days: 1392 h, 642 charged; March: 1488 h, 738 charged.
    assert_eq!(
        quantities(&r, NEW, month(2024, 2), "BoxUsage:t2.micro").1,
        "642"
    );
    assert_eq!(
        quantities(&r, NEW, month(2024, 3), "BoxUsage:t2.micro").1,
        "738"
    );
    assert_eq!(total_default(&r, NEW, month(2024, 2)), "7.4472");
    assert_eq!(total_default(&r, NEW, month(2024, 3)), "8.5608");
}

#[test]
fn the_free_tier_ends_twelve_months_after_sign_up() {
    // NEW was created 2024-01-10 00:00; its free tier ends 2025-01-10 00:00.
    let (s, e) = (utc(2024, 12, 1, 0, 0, 0), utc(2025, 3, 1, 0, 0, 0));
    let r = [UsageRecord::compute(NEW, "i-1", "t2.micro", s, Some(e))];
    assert_eq!(total_default(&r, NEW, month(2024, 12)), "0");
    // January 2025: 9 days (216 h) free, 22 days (528 h) charged.
    assert_eq!(
        quantities(&r, NEW, month(2025, 1), "BoxUsage:t2.micro"),
        ("216".to_string(), "528".to_string())
    );
    assert_eq!(total_default(&r, NEW, month(2025, 1)), "6.1248");
    // February 2025: nothing free.
    assert_eq!(total_default(&r, NEW, month(2025, 2)), "7.7952"); // 672 h × 0.0116
}

#[test]
fn every_account_has_its_own_free_tier() {
    let m = month(2024, 5);
    let (s, e) = (m.start_ms(), m.end_ms());
    let r = [
        UsageRecord::compute(NEW, "i-1", "t2.micro", s, Some(e)),
        UsageRecord::compute(NEW2, "i-2", "t2.micro", s, Some(e)),
        UsageRecord::compute(OLD, "i-3", "t2.micro", s, Some(e)),
    ];
    assert_eq!(total_default(&r, NEW, m), "0");
    assert_eq!(total_default(&r, NEW2, m), "0");
    assert_eq!(total_default(&r, OLD, m), "8.6304"); // 744 × 0.0116
}

#[test]
fn price_overrides_change_the_rates() {
    let m = month(2024, 5);
    let (s, e) = (m.start_ms(), m.end_ms());
    let r = [
        UsageRecord::compute(NEW, "i-1", "t2.micro", s, Some(e)),
        UsageRecord::storage(NEW, "i-1", 8, s, Some(e)),
    ];
    let prices = PriceList::aws_default()
        .with_override("[compute]\n\"t2.micro\" = \"0.02\"\n[free_tier]\nmonths = 0\n")
        .unwrap();
    // 744 × 0.02 + 8 × 0.08
    assert_eq!(total(&r, &prices, NEW, m, e), "15.52");
    let prices = PriceList::aws_default()
        .with_override("[free_tier]\ncompute_hours = 100\nstorage_gb_months = 0\n")
        .unwrap();
    // (744 − 100) × 0.0116 + 0.64
    assert_eq!(total(&r, &prices, NEW, m, e), "8.1104");
}

#[test]
fn storage_is_pro_rated_over_the_seconds_of_the_month() {
    let m = month(2024, 5);
    let (s, e) = (m.start_ms(), m.end_ms());
    // 8 GiB all month in an old account: 8 GB-months.
    let r = [UsageRecord::storage(OLD, "i-1", 8, s, Some(e))];
    assert_eq!(total_default(&r, OLD, m), "0.64");
    // 31 GiB for one day of a 31-day month is one GB-month.
    let r = [UsageRecord::storage(
        OLD,
        "i-1",
        31,
        s,
        Some(s + MS_PER_DAY),
    )];
    assert_eq!(total_default(&r, OLD, m), "0.08");
    // ... and of a 30-day month, 30 GiB for a day.
    let j = month(2024, 6);
    let r = [UsageRecord::storage(
        OLD,
        "i-1",
        30,
        j.start_ms(),
        Some(j.start_ms() + MS_PER_DAY),
    )];
    assert_eq!(total_default(&r, OLD, j), "0.08");
    // Four 8 GiB volumes in a new account: 32 GB-months, 30 free, 2 charged.
    let r: Vec<UsageRecord> = (0..4)
        .map(|k| UsageRecord::storage(NEW, &format!("i-{k}"), 8, s, Some(e)))
        .collect();
    assert_eq!(total_default(&r, NEW, m), "0.16");
    assert_eq!(
        quantities(&r, NEW, m, "EBS:VolumeUsage.gp3"),
        ("30".to_string(), "2".to_string())
    );
}

#[test]
fn public_ipv4_in_use_is_free_tier_idle_is_not() {
    let m = month(2024, 5);
    let (s, e) = (m.start_ms(), m.end_ms());
    let r = [
        UsageRecord::public_ipv4(NEW, "i-1", s, Some(e)),
        UsageRecord::elastic_ip(NEW, "eipalloc-1", false, s, Some(s + 24 * MS_PER_HOUR)),
    ];
    // 744 in-use hours are free; 24 idle hours × $0.005.
    assert_eq!(total_default(&r, NEW, m), "0.12");
    let r = [
        UsageRecord::public_ipv4(OLD, "i-1", s, Some(e)),
        UsageRecord::elastic_ip(OLD, "eipalloc-1", true, s, Some(e)),
    ];
    assert_eq!(total_default(&r, OLD, m), "7.44"); // 2 × 744 × 0.005
}

#[test]
fn a_month_of_one_thousand_instances_is_exact() {
    // 1,000 m5.large × 744 h in an old account: 71,424 USD, to the cent and beyond.
    let m = month(2024, 5);
    let (s, e) = (m.start_ms(), m.end_ms());
    let r: Vec<UsageRecord> = (0..1000)
        .map(|k| UsageRecord::compute(OLD, &format!("i-{k}"), "m5.large", s, Some(e)))
        .collect();
    assert_eq!(total_default(&r, OLD, m), "71424");
}

#[test]
fn records_that_cannot_be_rated_are_refused() {
    let accounts = accounts();
    let prices = PriceList::aws_default();
    let t = utc(2024, 5, 1, 0, 0, 0);
    let bad = [UsageRecord::compute(OLD, "i-1", "x9.huge", t, None)];
    let err = Ledger::new(&bad, &accounts, &prices, "us-east-1")
        .err()
        .unwrap();
    assert!(err.to_string().contains("x9.huge"), "{err}");
    let bad = [UsageRecord::compute("999", "i-1", "t2.micro", t, None)];
    assert!(Ledger::new(&bad, &accounts, &prices, "us-east-1").is_err());
    let bad = [UsageRecord::compute(OLD, "i-1", "t2.micro", t, Some(t - 1))];
    assert!(Ledger::new(&bad, &accounts, &prices, "us-east-1").is_err());
    let twice = [accounts[0].clone(), accounts[0].clone()];
    assert!(Ledger::new(&[], &twice, &prices, "us-east-1").is_err());
}

#[test]
fn usage_records_round_trip_through_json() {
    let r = UsageRecord::elastic_ip(OLD, "eipalloc-1", true, 5, Some(9))
        .with_tags([("Name", "web")])
        .in_zone("us-east-1a");
    let json = serde_json::to_string(&r).unwrap();
    assert!(
        json.contains(r#""kind":{"type":"elastic_ip","in_use":true}"#),
        "{json}"
    );
    let back: UsageRecord = serde_json::from_str(&json).unwrap();
    assert_eq!(back, r);
    let c: UsageRecord = serde_json::from_str(
        r#"{"account_id":"1","resource_id":"i-1","kind":{"type":"compute","instance_type":"t2.micro"},"start_ms":0,"end_ms":null}"#,
    )
    .unwrap();
    assert!(c.tags.is_empty() && c.availability_zone.is_none());
}

// EBS volumes and snapshots.

use crate::calendar::MS_PER_MINUTE;
use gureum_types::VolumeType;

/// `(usage type, free, quantity, amount)` of every line of `account`'s bill for `m`.
fn lines(records: &[UsageRecord], account: &str, m: Month) -> Vec<(String, bool, String, String)> {
    let accounts = accounts();
    let prices = PriceList::aws_default();
    let ledger = Ledger::new(records, &accounts, &prices, "us-east-1").unwrap();
    let bill = ledger
        .monthly_bill(account, m, m.end_ms() + MS_PER_DAY)
        .unwrap();
    bill.lines
        .iter()
        .map(|l| {
            (
                l.usage_type.clone(),
                l.free_tier,
                l.quantity.to_decimal(6),
                l.amount.to_decimal(10),
            )
        })
        .collect()
}

fn line(
    usage_type: &str,
    free: bool,
    quantity: &str,
    amount: &str,
) -> (String, bool, String, String) {
    (
        usage_type.to_string(),
        free,
        quantity.to_string(),
        amount.to_string(),
    )
}

#[test]
fn each_volume_type_has_its_price_and_usage_type() {
    let m = month(2024, 5);
    let (s, e) = (m.start_ms(), m.end_ms());
    let vol = |id: &str, t: VolumeType| UsageRecord::volume(OLD, id, t, 100, s, Some(e));
    let mut r = vec![
        vol("vol-gp2", VolumeType::Gp2),
        vol("vol-gp3", VolumeType::Gp3),
        vol("vol-io1", VolumeType::Io1),
        vol("vol-io2", VolumeType::Io2),
        vol("vol-st1", VolumeType::St1),
        vol("vol-sc1", VolumeType::Sc1),
        vol("vol-std", VolumeType::Standard),
        UsageRecord::snapshot(OLD, "snap-1", 100, s, Some(e)),
    ];
    r.extend(UsageRecord::volume_iops(
        OLD,
        "vol-io1",
        VolumeType::Io1,
        1000,
        s,
        Some(e),
    ));
    // 40,000 IOPS of io2: 32,000 in the first tier, 8,000 in the second.
    r.extend(UsageRecord::volume_iops(
        OLD,
        "vol-io2",
        VolumeType::Io2,
        40_000,
        s,
        Some(e),
    ));
    // gp3 at 4,000 IOPS and 250 MiB/s: 1,000 IOPS and 125 MiB/s beyond what it includes.
    r.extend(UsageRecord::volume_iops(
        OLD,
        "vol-gp3",
        VolumeType::Gp3,
        4000,
        s,
        Some(e),
    ));
    r.extend(UsageRecord::volume_throughput(
        OLD,
        "vol-gp3",
        250,
        s,
        Some(e),
    ));
    assert_eq!(
        lines(&r, OLD, m),
        vec![
            line("EBS:SnapshotUsage", false, "100", "5"),
            line("EBS:VolumeP-IOPS.gp3", false, "1000", "5"),
            line("EBS:VolumeP-IOPS.io2", false, "32000", "2080"),
            line("EBS:VolumeP-IOPS.io2.tier2", false, "8000", "364"),
            line("EBS:VolumeP-IOPS.piops", false, "1000", "65"),
            line("EBS:VolumeP-Throughput.gp3", false, "125", "5"),
            line("EBS:VolumeUsage", false, "100", "5"),
            line("EBS:VolumeUsage.gp2", false, "100", "10"),
            line("EBS:VolumeUsage.gp3", false, "100", "8"),
            line("EBS:VolumeUsage.io2", false, "100", "12.5"),
            line("EBS:VolumeUsage.piops", false, "100", "12.5"),
            line("EBS:VolumeUsage.sc1", false, "100", "1.5"),
            line("EBS:VolumeUsage.st1", false, "100", "4.5"),
        ]
    );
    let accounts = accounts();
    let prices = PriceList::aws_default();
    let ledger = Ledger::new(&r, &accounts, &prices, "us-east-1").unwrap();
    let bill = ledger.monthly_bill(OLD, m, e).unwrap();
    assert!(bill.lines.iter().all(|l| l.service == "EC2 - Other"));
    let describe = |u: &str| {
        let l = bill.lines.iter().find(|l| l.usage_type == u).unwrap();
        (l.description.clone(), l.unit.clone())
    };
    assert_eq!(
        describe("EBS:VolumeUsage.gp2"),
        (
            "$0.1 per GB-month of General Purpose SSD (gp2) provisioned storage".into(),
            "GB-Mo".into()
        )
    );
    assert_eq!(
        describe("EBS:VolumeP-IOPS.piops"),
        (
            "$0.065 per IOPS-month provisioned (io1)".into(),
            "IOPS-Mo".into()
        )
    );
    assert_eq!(describe("EBS:VolumeP-Throughput.gp3").1, "MiBps-Mo");
}

#[test]
fn provisioned_performance_bills_only_what_the_type_does_not_include() {
    let (s, e) = (0, Some(1));
    assert!(UsageRecord::volume_iops(OLD, "v", VolumeType::Gp3, 3000, s, e).is_empty());
    assert!(UsageRecord::volume_iops(OLD, "v", VolumeType::Gp2, 300, s, e).is_empty());
    assert!(UsageRecord::volume_throughput(OLD, "v", 125, s, e).is_none());
    let tiers = |iops| -> Vec<u32> {
        UsageRecord::volume_iops(OLD, "v", VolumeType::Io2, iops, s, e)
            .iter()
            .map(|r| r.kind.units())
            .collect()
    };
    assert_eq!(tiers(100), [100]);
    assert_eq!(tiers(32_000), [32_000]);
    assert_eq!(tiers(64_001), [32_000, 32_000, 1]);
    assert_eq!(tiers(256_000), [32_000, 32_000, 192_000]);
}

#[test]
fn volumes_are_pro_rated_per_second_over_the_calendar_month() {
    let gp2 = |gib, s, e| {
        [UsageRecord::volume(
            OLD,
            "vol-1",
            VolumeType::Gp2,
            gib,
            s,
            Some(e),
        )]
    };
    let m = month(2024, 5);
    let s = m.start_ms();
    // 31 GiB of gp2 for one day of a 31-day month is one GB-month ...
    assert_eq!(total_default(&gp2(31, s, s + MS_PER_DAY), OLD, m), "0.1");
    // ... and of a 30-day month, 30 GiB for a day.
    let (j, js) = (month(2024, 6), month(2024, 6).start_ms());
    assert_eq!(total_default(&gp2(30, js, js + MS_PER_DAY), OLD, j), "0.1");
    // A volume across a month boundary is billed in each month at that month's length.
    let r = gp2(930, js - MS_PER_DAY, js + MS_PER_DAY);
    assert_eq!(total_default(&r, OLD, m), "3"); // 930 / 31 GB-months
    assert_eq!(total_default(&r, OLD, j), "3.1"); // 930 / 30
                                                  // Per second: 44,640 GiB for 90 s of a 31-day month is 1.5 GB-months.
    let r = gp2(44_640, s, s + 90 * MS_PER_SECOND);
    assert_eq!(total_default(&r, OLD, m), "0.15");
}

#[test]
fn a_volume_is_billed_at_least_a_minute_over_its_life() {
    let m = month(2024, 5);
    let t = utc(2024, 5, 10, 8, 0, 0);
    // 44,640 GiB for a minute of a 31-day month is one GB-month: $0.10 of gp2.
    let gp2 =
        |s: i64, e: Option<i64>| UsageRecord::volume(OLD, "vol-1", VolumeType::Gp2, 44_640, s, e);
    for secs in [0, 1, 20, 60] {
        let r = [gp2(t, Some(t + secs * MS_PER_SECOND))];
        assert_eq!(total_default(&r, OLD, m), "0.1", "{secs} s");
    }
    // A modification is not a new start: gp2 for 10 s, then the same size in gp3 until 30 s,
    // is billed 10 s of gp2 and the rest of the minute (50 s) of gp3.
    let r = [
        gp2(t, Some(t + 10 * MS_PER_SECOND)),
        UsageRecord::volume(
            OLD,
            "vol-1",
            VolumeType::Gp3,
            44_640,
            t + 10 * MS_PER_SECOND,
            Some(t + 30 * MS_PER_SECOND),
        ),
    ];
    // 0.1 × 10/60 + 0.08 × 50/60
    assert_eq!(total_default(&r, OLD, m), "0.0833333333");
    // Two volumes each get their minimum; past the minute, billing is per second.
    let other = UsageRecord::volume(OLD, "vol-2", VolumeType::Gp2, 44_640, t, Some(t + 1));
    let r = [gp2(t, Some(t + 1)), other];
    assert_eq!(total_default(&r, OLD, m), "0.2");
    let r = [gp2(t, Some(t + 90 * MS_PER_SECOND))];
    assert_eq!(total_default(&r, OLD, m), "0.15");
    // Provisioned IOPS have their minimum too (io1: 44,640 IOPS for a minute, $0.065).
    let r = UsageRecord::volume_iops(OLD, "vol-1", VolumeType::Io1, 44_640, t, Some(t + 1));
    assert_eq!(total_default(&r, OLD, m), "0.065");
    // An open volume is billed a minute even when rated a second after it was created.
    let accounts = accounts();
    let prices = PriceList::aws_default();
    let r = [gp2(t, None)];
    let ledger = Ledger::new(&r, &accounts, &prices, "us-east-1").unwrap();
    let bill = ledger.monthly_bill(OLD, m, t + MS_PER_SECOND).unwrap();
    assert_eq!(bill.total.to_decimal(10), "0.1");
    // Snapshots and root volumes have no minimum: 44,640 GiB for 6 s is 0.1 GB-month.
    let r = [UsageRecord::snapshot(
        OLD,
        "snap-1",
        44_640,
        t,
        Some(t + 6 * MS_PER_SECOND),
    )];
    assert_eq!(total_default(&r, OLD, m), "0.005");
    let r = [UsageRecord::storage(
        OLD,
        "i-1",
        44_640,
        t,
        Some(t + 6 * MS_PER_SECOND),
    )];
    assert_eq!(total_default(&r, OLD, m), "0.008");
    assert_eq!(MS_PER_MINUTE, crate::rating::MINIMUM_VOLUME_MS);
}

#[test]
fn the_free_tier_covers_gp2_gp3_magnetic_and_a_gigabyte_of_snapshots() {
    let m = month(2024, 5);
    let (s, e) = (m.start_ms(), m.end_ms());
    let d = |day: i64| s + day * MS_PER_DAY;
    // 31 GiB volumes for 10 days each, one after the other: 10 GB-months each, in time
    // order: root gp3, gp2, magnetic; the free 30 run out as the last, a gp3 volume for the
    // month's last day (1 GB-month), starts. Root and gp3 volumes share one usage type.
    // io1 and st1 share nothing with the free tier.
    let r = vec![
        UsageRecord::storage(NEW, "i-1", 31, d(0), Some(d(10))),
        UsageRecord::volume(NEW, "vol-gp2", VolumeType::Gp2, 31, d(10), Some(d(20))),
        UsageRecord::volume(NEW, "vol-std", VolumeType::Standard, 31, d(20), Some(d(30))),
        UsageRecord::volume(NEW, "vol-gp3", VolumeType::Gp3, 31, d(30), Some(e)),
        UsageRecord::volume(NEW, "vol-io1", VolumeType::Io1, 31, d(0), Some(d(10))),
        UsageRecord::volume(NEW, "vol-st1", VolumeType::St1, 31, d(0), Some(d(10))),
        // 2 GiB of snapshots all month: 1 GB-month free, 1 charged.
        UsageRecord::snapshot(NEW, "snap-1", 2, s, Some(e)),
    ];
    assert_eq!(
        lines(&r, NEW, m),
        vec![
            line("EBS:SnapshotUsage", true, "1", "0"),
            line("EBS:SnapshotUsage", false, "1", "0.05"),
            line("EBS:VolumeUsage", true, "10", "0"),
            line("EBS:VolumeUsage.gp2", true, "10", "0"),
            line("EBS:VolumeUsage.gp3", true, "10", "0"),
            line("EBS:VolumeUsage.gp3", false, "1", "0.08"),
            line("EBS:VolumeUsage.piops", false, "10", "1.25"),
            line("EBS:VolumeUsage.st1", false, "10", "0.45"),
        ]
    );
    // The same usage in an account past its first year is all charged.
    let old: Vec<UsageRecord> = r
        .iter()
        .map(|x| UsageRecord {
            account_id: OLD.into(),
            ..x.clone()
        })
        .collect();
    // 0.8 + 1 + 0.5 + 0.08 + 1.25 + 0.45 + 0.1
    assert_eq!(total_default(&old, OLD, m), "4.18");
}

#[test]
fn ebs_usage_types_carry_the_region_prefix_outside_us_east_1() {
    let accounts = accounts();
    let prices = PriceList::aws_default();
    let m = month(2024, 5);
    let (s, e) = (m.start_ms(), m.end_ms());
    let mut r = vec![UsageRecord::snapshot(OLD, "snap-1", 1, s, Some(e))];
    r.extend(UsageRecord::volume_iops(
        OLD,
        "vol-1",
        VolumeType::Io1,
        100,
        s,
        Some(e),
    ));
    let ledger = Ledger::new(&r, &accounts, &prices, "eu-west-1").unwrap();
    let bill = ledger.monthly_bill(OLD, m, e).unwrap();
    let types: Vec<&str> = bill.lines.iter().map(|l| l.usage_type.as_str()).collect();
    assert_eq!(types, ["EU-EBS:SnapshotUsage", "EU-EBS:VolumeP-IOPS.piops"]);
}

#[test]
fn volume_records_round_trip_through_json() {
    let r = UsageRecord::volume(OLD, "vol-1", VolumeType::Io2, 8, 5, Some(9));
    let json = serde_json::to_string(&r).unwrap();
    assert!(
        json.contains(r#""kind":{"type":"volume","volume_type":"io2","gib":8}"#),
        "{json}"
    );
    assert_eq!(serde_json::from_str::<UsageRecord>(&json).unwrap(), r);
    let bad = json.replace("io2", "io9");
    assert!(serde_json::from_str::<UsageRecord>(&bad).is_err());
}
