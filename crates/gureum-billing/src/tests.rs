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
