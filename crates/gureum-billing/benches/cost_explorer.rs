//! How fast Cost Explorer answers over a month of 1,000 instances' usage.
//!
//! `cargo bench -p gureum-billing` prints one row per query: the median and slowest of
//! several runs, each run doing everything a request does after the store has read the
//! records (checking them into a `Ledger`, parsing the JSON body, rating, grouping,
//! rendering the JSON answer). The issue's bar is 50 ms for `GetCostAndUsage`.

use std::time::{Duration, Instant};

use gureum_billing::calendar::{utc, MS_PER_HOUR, MS_PER_MINUTE};
use gureum_billing::{ce, Account, Ledger, Month, PriceList, UsageRecord};
use gureum_types::instance_types::CATALOGUE;

const INSTANCES: usize = 1_000;
const ACCOUNTS: usize = 20;
const STARTS_PER_INSTANCE: i64 = 14;
const ELASTIC_IPS: usize = 100;
const RUNS: usize = 25;

/// A deterministic pseudo-random sequence (xorshift), so every run rates the same data.
struct Rng(u64);

impl Rng {
    fn next(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

fn fixture() -> (Vec<Account>, Vec<UsageRecord>, i64) {
    let may = Month::new(2024, 5).unwrap();
    let (start, end) = (may.start_ms(), may.end_ms());
    let accounts: Vec<Account> = (0..ACCOUNTS)
        .map(|a| Account {
            id: format!("{:012}", 100_000_000_000u64 + a as u64),
            name: format!("team-{a}"),
            // Every fourth account is in its first year.
            created_ms: if a % 4 == 0 {
                utc(2024, 2, 1, 0, 0, 0)
            } else {
                utc(2021, 1, 1, 0, 0, 0)
            },
        })
        .collect();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut records = Vec::new();
    for i in 0..INSTANCES {
        let account = &accounts[i % ACCOUNTS].id;
        let id = format!("i-{i:017x}");
        let instance_type = CATALOGUE[i % CATALOGUE.len()].name;
        let tags = [
            ("Name".to_string(), format!("web-{}", i % 10)),
            ("team".to_string(), format!("team-{}", i % 7)),
        ];
        let zone = ["us-east-1a", "us-east-1b", "us-east-1c"][i % 3];
        records.push(
            UsageRecord::storage(account, &id, 8 + 8 * (i as u32 % 12), start, None)
                .with_tags(tags.clone())
                .in_zone(zone),
        );
        // STARTS_PER_INSTANCE running intervals spread over the month, with stops between;
        // every other instance is still running at the end.
        let slot = (end - start) / STARTS_PER_INSTANCE;
        for k in 0..STARTS_PER_INSTANCE {
            let s = start
                + k * slot
                + rng.next(6) as i64 * MS_PER_HOUR
                + rng.next(60) as i64 * MS_PER_MINUTE;
            let run = slot / 2 + rng.next(slot as u64 / 3) as i64;
            let e = (k + 1 < STARTS_PER_INSTANCE || i % 2 == 0).then_some(s + run);
            records.push(
                UsageRecord::compute(account, &id, instance_type, s, e)
                    .with_tags(tags.clone())
                    .in_zone(zone),
            );
            records.push(UsageRecord::public_ipv4(account, &id, s, e).with_tags(tags.clone()));
        }
    }
    for j in 0..ELASTIC_IPS {
        let account = &accounts[j % ACCOUNTS].id;
        let id = format!("eipalloc-{j:017x}");
        let (a, b) = (start + 5 * 24 * MS_PER_HOUR, start + 20 * 24 * MS_PER_HOUR);
        records.push(UsageRecord::elastic_ip(account, &id, false, start, Some(a)));
        records.push(UsageRecord::elastic_ip(account, &id, true, a, Some(b)));
        records.push(UsageRecord::elastic_ip(account, &id, false, b, None));
    }
    (accounts, records, end + MS_PER_HOUR)
}

fn time(runs: usize, mut f: impl FnMut()) -> (Duration, Duration) {
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    times.sort();
    (times[runs / 2], times[runs - 1])
}

fn main() {
    // `cargo test --benches` runs this with `--bench`-less arguments; keep that quick.
    let quick = !std::env::args().any(|a| a == "--bench");
    let runs = if quick { 1 } else { RUNS };
    let (accounts, records, now) = fixture();
    let prices = PriceList::aws_default();
    let month = r#""TimePeriod": {"Start": "2024-05-01", "End": "2024-06-01"}"#;
    let queries: Vec<(&str, &str, String)> = vec![
        ("GetCostAndUsage", "MONTHLY, total", format!(r#"{{{month}, "Granularity": "MONTHLY", "Metrics": ["UnblendedCost", "UsageQuantity"]}}"#)),
        ("GetCostAndUsage", "DAILY by SERVICE", format!(r#"{{{month}, "Granularity": "DAILY", "Metrics": ["UnblendedCost", "UsageQuantity"], "GroupBy": [{{"Type": "DIMENSION", "Key": "SERVICE"}}]}}"#)),
        ("GetCostAndUsage", "DAILY by LINKED_ACCOUNT, INSTANCE_TYPE", format!(r#"{{{month}, "Granularity": "DAILY", "Metrics": ["UnblendedCost", "BlendedCost", "UsageQuantity"], "GroupBy": [{{"Type": "DIMENSION", "Key": "LINKED_ACCOUNT"}}, {{"Type": "DIMENSION", "Key": "INSTANCE_TYPE"}}]}}"#)),
        ("GetCostAndUsage", "MONTHLY by TAG, filtered", format!(r#"{{{month}, "Granularity": "MONTHLY", "Metrics": ["UnblendedCost"], "GroupBy": [{{"Type": "TAG", "Key": "Name"}}], "Filter": {{"Not": {{"Dimensions": {{"Key": "SERVICE", "Values": ["EC2 - Other"]}}}}}}}}"#)),
        ("GetCostAndUsage", "HOURLY 14 days by SERVICE", r#"{"TimePeriod": {"Start": "2024-05-18T00:00:00Z", "End": "2024-06-01T00:00:00Z"}, "Granularity": "HOURLY", "Metrics": ["UnblendedCost"], "GroupBy": [{"Type": "DIMENSION", "Key": "SERVICE"}]}"#.to_string()),
        ("GetDimensionValues", "USAGE_TYPE by cost", format!(r#"{{{month}, "Dimension": "USAGE_TYPE", "SortBy": [{{"Key": "UnblendedCost"}}]}}"#)),
        ("GetCostForecast", "June, DAILY", r#"{"TimePeriod": {"Start": "2024-06-01", "End": "2024-07-01"}, "Metric": "UNBLENDED_COST", "Granularity": "DAILY"}"#.to_string()),
    ];

    println!(
        "{} records ({INSTANCES} instances, {STARTS_PER_INSTANCE} starts each, {ACCOUNTS} accounts), median and slowest of {runs} runs",
        records.len()
    );
    println!(
        "{:<20} {:<40} {:>10} {:>10} {:>9}",
        "operation", "query", "median", "slowest", "bytes"
    );
    let (median, slowest) = time(runs, || {
        Ledger::new(&records, &accounts, &prices, "us-east-1").unwrap();
    });
    println!(
        "{:<20} {:<40} {:>10.2?} {:>10.2?} {:>9}",
        "Ledger::new", "check and resolve the records", median, slowest, "-"
    );
    for (op, label, body) in &queries {
        let target = format!("{}.{op}", ce::TARGET_PREFIX);
        let mut bytes = 0;
        let (median, slowest) = time(runs, || {
            let ledger = Ledger::new(&records, &accounts, &prices, "us-east-1").unwrap();
            let reply = ce::handle(&ledger, &target, body.as_bytes(), now);
            assert_eq!(reply.status, 200, "{label}: {}", reply.body);
            bytes = reply.body.len();
        });
        println!("{op:<20} {label:<40} {median:>10.2?} {slowest:>10.2?} {bytes:>9}");
    }
    let (median, slowest) = time(runs, || {
        let ledger = Ledger::new(&records, &accounts, &prices, "us-east-1").unwrap();
        let bill = ledger
            .monthly_bill(&accounts[1].id, Month::new(2024, 5).unwrap(), now)
            .unwrap();
        assert!(!bill.render_table().is_empty());
    });
    println!(
        "{:<20} {:<40} {:>10.2?} {:>10.2?} {:>9}",
        "monthly_bill", "one account, rendered", median, slowest, "-"
    );
}
