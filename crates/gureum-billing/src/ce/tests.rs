//! Cost Explorer through [`super::handle`], as the HTTP layer will call it: JSON in, status
//! and JSON out.

use serde_json::{json, Value};

use super::handle;
use crate::calendar::{utc, MS_PER_HOUR};
use crate::{Account, Ledger, PriceList, UsageRecord};

const A: &str = "111111111111"; // alice: created 2024-01-10, in her free tier
const B: &str = "222222222222"; // bob: created 2020, no free tier

fn accounts() -> Vec<Account> {
    vec![
        Account {
            id: A.into(),
            name: "alice".into(),
            created_ms: utc(2024, 1, 10, 0, 0, 0),
        },
        Account {
            id: B.into(),
            name: "bob".into(),
            created_ms: utc(2020, 1, 1, 0, 0, 0),
        },
    ]
}

/// Now: 2024-05-20 12:00 UTC.
fn now() -> i64 {
    utc(2024, 5, 20, 12, 0, 0)
}

fn records() -> Vec<UsageRecord> {
    let d = |day: u32, hour: i64| utc(2024, 5, day, hour, 0, 0);
    vec![
        // alice: a t2.micro for 10 days, its root volume (still there), its public IP.
        UsageRecord::compute(A, "i-a1", "t2.micro", d(1, 0), Some(d(11, 0)))
            .with_tags([("Name", "web"), ("env", "prod")])
            .in_zone("us-east-1a"),
        UsageRecord::storage(A, "i-a1", 8, d(1, 0), None)
            .with_tags([("Name", "web"), ("env", "prod")])
            .in_zone("us-east-1a"),
        UsageRecord::public_ipv4(A, "i-a1", d(1, 0), Some(d(11, 0)))
            .with_tags([("Name", "web"), ("env", "prod")]),
        // bob: an m5.large that ran 10 h on the 2nd and has been running since the 3rd,
        // its 20 GiB volume, an idle Elastic IP, and a t3.micro across the month's start.
        UsageRecord::compute(B, "i-b1", "m5.large", d(2, 0), Some(d(2, 10)))
            .with_tags([("Name", "db")]),
        UsageRecord::compute(B, "i-b1", "m5.large", d(3, 0), None).with_tags([("Name", "db")]),
        UsageRecord::storage(B, "i-b1", 20, d(2, 0), None).with_tags([("Name", "db")]),
        UsageRecord::elastic_ip(B, "eipalloc-b", false, d(1, 0), None),
        UsageRecord::compute(
            B,
            "i-b2",
            "t3.micro",
            utc(2024, 4, 30, 22, 0, 0),
            Some(d(1, 2)),
        ),
    ]
}

fn call(op: &str, body: Value) -> (u16, Value) {
    call_at(op, body, now())
}

fn call_at(op: &str, body: Value, now: i64) -> (u16, Value) {
    let records = records();
    let accounts = accounts();
    let prices = PriceList::aws_default();
    let ledger = Ledger::new(&records, &accounts, &prices, "us-east-1").unwrap();
    let reply = handle(
        &ledger,
        &format!("AWSInsightsIndexService.{op}"),
        body.to_string().as_bytes(),
        now,
    );
    (reply.status, serde_json::from_str(&reply.body).unwrap())
}

fn ok(op: &str, body: Value) -> Value {
    let (status, v) = call(op, body);
    assert_eq!(status, 200, "{v}");
    v
}

/// The error code and message of a failed call.
fn err(op: &str, body: Value) -> (String, String) {
    let (status, v) = call(op, body);
    assert_eq!(status, 400, "{v}");
    (
        v["__type"].as_str().unwrap().to_string(),
        v["message"].as_str().unwrap().to_string(),
    )
}

fn may(granularity: &str) -> Value {
    json!({
        "TimePeriod": {"Start": "2024-05-01", "End": "2024-06-01"},
        "Granularity": granularity,
        "Metrics": ["UnblendedCost", "UsageQuantity"],
    })
}

fn with(mut base: Value, key: &str, value: Value) -> Value {
    base[key] = value;
    base
}

/// `(keys joined by " | ", UnblendedCost)` of the groups of the first period.
fn groups(v: &Value) -> Vec<(String, String)> {
    v["ResultsByTime"][0]["Groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            let keys: Vec<&str> = g["Keys"]
                .as_array()
                .unwrap()
                .iter()
                .map(|k| k.as_str().unwrap())
                .collect();
            (
                keys.join(" | "),
                g["Metrics"]["UnblendedCost"]["Amount"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            )
        })
        .collect()
}

fn total_cost(v: &Value, period: usize) -> String {
    v["ResultsByTime"][period]["Total"]["UnblendedCost"]["Amount"]
        .as_str()
        .unwrap()
        .to_string()
}

// bob's May to `now`: m5.large 10 h + 420 h (0.96 + 40.32), the t3.micro's 2 May hours
// (0.0208), 20 GiB for 18.5 of 31 days (0.9548387097), the idle address 468 h (2.34).
// alice's usage is all inside her free tier.
const MAY_TOTAL: &str = "44.5956387097";

#[test]
fn a_month_without_grouping() {
    let v = ok("GetCostAndUsage", may("MONTHLY"));
    let r = &v["ResultsByTime"][0];
    assert_eq!(
        r["TimePeriod"],
        json!({"Start": "2024-05-01", "End": "2024-06-01"})
    );
    assert_eq!(
        r["Total"]["UnblendedCost"],
        json!({"Amount": MAY_TOTAL, "Unit": "USD"})
    );
    // Hours and GB-months added up, as AWS does: 672 instance-hours, 240 + 468 address
    // hours, 8 × 19.5/31 + 20 × 18.5/31 GB-months.
    assert_eq!(r["Total"]["UsageQuantity"]["Unit"], "N/A");
    assert_eq!(r["Total"]["UsageQuantity"]["Amount"], "1396.9677419355");
    assert_eq!(r["Groups"], json!([]));
    assert_eq!(r["Estimated"], true);
    assert_eq!(v["GroupDefinitions"], json!([]));
    assert_eq!(v["DimensionValueAttributes"], json!([]));
    assert!(v.get("NextPageToken").is_none());
}

#[test]
fn days_add_up_to_the_month() {
    let v = ok("GetCostAndUsage", may("DAILY"));
    let days = v["ResultsByTime"].as_array().unwrap();
    assert_eq!(days.len(), 31);
    assert_eq!(
        days[0]["TimePeriod"],
        json!({"Start": "2024-05-01", "End": "2024-05-02"})
    );
    let sum: f64 = (0..31)
        .map(|d| total_cost(&v, d).parse::<f64>().unwrap())
        .sum();
    assert!(
        (sum - MAY_TOTAL.parse::<f64>().unwrap()).abs() < 1e-8,
        "{sum}"
    );
    // Nothing has happened after now.
    assert_eq!(total_cost(&v, 25), "0");
    // The 2nd: m5.large 10 h, the idle address 24 h, the volume 20 GiB for 1/31 month.
    assert_eq!(total_cost(&v, 1), "1.1316129032");
}

#[test]
fn periods_before_this_month_are_final() {
    let body = json!({
        "TimePeriod": {"Start": "2024-04-30", "End": "2024-05-02"},
        "Granularity": "DAILY",
        "Metrics": ["UnblendedCost"],
    });
    let v = ok("GetCostAndUsage", body);
    // bob's t3.micro: 2 h on April 30, 2 h on May 1 (plus the idle address that day).
    assert_eq!(total_cost(&v, 0), "0.0208");
    assert_eq!(v["ResultsByTime"][0]["Estimated"], false);
    assert_eq!(total_cost(&v, 1), "0.1408");
    assert_eq!(v["ResultsByTime"][1]["Estimated"], true);
}

#[test]
fn hourly_periods_use_timestamps() {
    let body = json!({
        "TimePeriod": {"Start": "2024-05-02T00:00:00Z", "End": "2024-05-02T12:00:00Z"},
        "Granularity": "HOURLY",
        "Metrics": ["UnblendedCost"],
        "Filter": {"Dimensions": {"Key": "INSTANCE_TYPE", "Values": ["m5.large"]}},
    });
    // Seen from May 10 (hourly data reaches back 14 days).
    let (status, v) = call_at("GetCostAndUsage", body, utc(2024, 5, 10, 0, 0, 0));
    assert_eq!(status, 200, "{v}");
    let hours = v["ResultsByTime"].as_array().unwrap();
    assert_eq!(hours.len(), 12);
    assert_eq!(
        hours[0]["TimePeriod"],
        json!({"Start": "2024-05-02T00:00:00Z", "End": "2024-05-02T01:00:00Z"})
    );
    assert_eq!(total_cost(&v, 9), "0.096");
    assert_eq!(total_cost(&v, 10), "0");
}

#[test]
fn group_by_service() {
    let v = ok(
        "GetCostAndUsage",
        with(
            may("MONTHLY"),
            "GroupBy",
            json!([{"Type": "DIMENSION", "Key": "SERVICE"}]),
        ),
    );
    assert_eq!(
        groups(&v),
        vec![
            (
                "Amazon Elastic Compute Cloud - Compute".to_string(),
                "41.3008".to_string()
            ),
            (
                "Amazon Virtual Private Cloud".to_string(),
                "2.34".to_string()
            ),
            ("EC2 - Other".to_string(), "0.9548387097".to_string()),
        ]
    );
    assert_eq!(v["ResultsByTime"][0]["Total"], json!({}));
    assert_eq!(
        v["GroupDefinitions"],
        json!([{"Type": "DIMENSION", "Key": "SERVICE"}])
    );
    assert_eq!(
        v["ResultsByTime"][0]["Groups"][0]["Metrics"]["UsageQuantity"]["Unit"],
        "N/A"
    );
    assert_eq!(
        v["ResultsByTime"][0]["Groups"][0]["Metrics"]["UsageQuantity"]["Amount"],
        "672"
    );
}

#[test]
fn group_by_instance_type_and_usage_type() {
    let v = ok(
        "GetCostAndUsage",
        with(
            may("MONTHLY"),
            "GroupBy",
            json!([{"Type": "DIMENSION", "Key": "INSTANCE_TYPE"}, {"Type": "DIMENSION", "Key": "USAGE_TYPE"}]),
        ),
    );
    let g = groups(&v);
    let keys: Vec<&str> = g.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "NoInstanceType | EBS:VolumeUsage.gp3",
            "NoInstanceType | USE1-PublicIPv4:IdleAddress",
            "NoInstanceType | USE1-PublicIPv4:InUseAddress",
            "m5.large | BoxUsage:m5.large",
            "t2.micro | BoxUsage:t2.micro",
            "t3.micro | BoxUsage:t3.micro",
        ]
    );
    // alice's usage is free: zero cost, real quantity.
    assert_eq!(g[4].1, "0");
    let groups = v["ResultsByTime"][0]["Groups"].as_array().unwrap();
    assert_eq!(
        groups[4]["Metrics"]["UsageQuantity"],
        json!({"Amount": "240", "Unit": "Hrs"})
    );
    assert_eq!(groups[0]["Metrics"]["UsageQuantity"]["Unit"], "GB-Mo");
}

#[test]
fn group_by_tag_and_linked_account() {
    let v = ok(
        "GetCostAndUsage",
        with(
            may("MONTHLY"),
            "GroupBy",
            json!([{"Type": "DIMENSION", "Key": "LINKED_ACCOUNT"}, {"Type": "TAG", "Key": "Name"}]),
        ),
    );
    let keys: Vec<String> = groups(&v).into_iter().map(|(k, _)| k).collect();
    assert_eq!(
        keys,
        [
            "111111111111 | Name$web",
            "222222222222 | Name$",
            "222222222222 | Name$db",
        ]
    );
    assert_eq!(
        v["DimensionValueAttributes"],
        json!([
            {"Value": "111111111111", "Attributes": {"description": "alice"}},
            {"Value": "222222222222", "Attributes": {"description": "bob"}},
        ])
    );
    // Cost categories do not exist: everything is in the empty one.
    let v = ok(
        "GetCostAndUsage",
        with(
            may("MONTHLY"),
            "GroupBy",
            json!([{"Type": "COST_CATEGORY", "Key": "Team"}]),
        ),
    );
    assert_eq!(
        groups(&v),
        vec![("Team$".to_string(), MAY_TOTAL.to_string())]
    );
}

#[test]
fn filters() {
    let cost = |filter: Value| {
        total_cost(
            &ok("GetCostAndUsage", with(may("MONTHLY"), "Filter", filter)),
            0,
        )
    };
    let compute = json!({"Dimensions": {"Key": "SERVICE", "Values": ["Amazon Elastic Compute Cloud - Compute"]}});
    assert_eq!(cost(compute.clone()), "41.3008");
    assert_eq!(cost(json!({"Not": compute.clone()})), "3.2948387097");
    assert_eq!(
        cost(
            json!({"And": [compute.clone(), {"Dimensions": {"Key": "INSTANCE_TYPE", "Values": ["t3.micro"]}}]})
        ),
        "0.0208"
    );
    assert_eq!(
        cost(json!({"Or": [
            {"Dimensions": {"Key": "USAGE_TYPE", "Values": ["USE1-PublicIPv4:IdleAddress"]}},
            {"Dimensions": {"Key": "INSTANCE_TYPE", "Values": ["t3.micro", "t2.micro"]}},
        ]})),
        "2.3608"
    );
    assert_eq!(
        cost(json!({"Dimensions": {"Key": "LINKED_ACCOUNT", "Values": [A]}})),
        "0"
    );
    assert_eq!(
        cost(json!({"Dimensions": {"Key": "LINKED_ACCOUNT_NAME", "Values": ["bob"]}})),
        MAY_TOTAL
    );
    assert_eq!(
        cost(json!({"Dimensions": {"Key": "REGION", "Values": ["eu-west-1"]}})),
        "0"
    );
    assert_eq!(
        cost(json!({"Dimensions": {"Key": "INSTANCE_TYPE", "Values": ["NoInstanceType"]}})),
        "3.2948387097"
    );
    // Tags: a value, no value (absent), and the empty value meaning untagged.
    assert_eq!(
        cost(json!({"Tags": {"Key": "Name", "Values": ["db"]}})),
        "42.2348387097"
    );
    assert_eq!(
        cost(json!({"Tags": {"Key": "Name", "MatchOptions": ["ABSENT"]}})),
        "2.3608"
    );
    assert_eq!(
        cost(json!({"Tags": {"Key": "Name", "Values": [""]}})),
        "2.3608"
    );
    assert_eq!(
        cost(
            json!({"Tags": {"Key": "Name", "Values": ["db"], "MatchOptions": ["EQUALS", "CASE_SENSITIVE"]}})
        ),
        "42.2348387097"
    );
    assert_eq!(
        cost(json!({"CostCategories": {"Key": "Team", "Values": ["x"]}})),
        "0"
    );
}

#[test]
fn metric_names_are_matched_without_case_and_echoed() {
    let body = json!({
        "TimePeriod": {"Start": "2024-05-01", "End": "2024-06-01"},
        "Granularity": "MONTHLY",
        "Metrics": ["blendedCost", "AmortizedCost", "NetUnblendedCost", "NormalizedUsageAmount"],
        "Filter": {"Dimensions": {"Key": "INSTANCE_TYPE", "Values": ["m5.large"]}},
    });
    let v = ok("GetCostAndUsage", body);
    let total = &v["ResultsByTime"][0]["Total"];
    assert_eq!(total["blendedCost"]["Amount"], "41.28");
    assert_eq!(total["AmortizedCost"]["Amount"], "41.28");
    assert_eq!(total["NetUnblendedCost"]["Amount"], "41.28");
    // 430 hours of a "large" (factor 4).
    assert_eq!(
        total["NormalizedUsageAmount"],
        json!({"Amount": "1720", "Unit": "N/A"})
    );
}

#[test]
fn validation_errors() {
    let v = |code: &str, message: &str| (code.to_string(), message.to_string());
    let validation = |m: &str| v("ValidationException", m);
    let base = may("MONTHLY");

    let mut b = base.clone();
    b.as_object_mut().unwrap().remove("Granularity");
    assert_eq!(
        err("GetCostAndUsage", b),
        validation("1 validation error detected: Value null at 'granularity' failed to satisfy constraint: Member must not be null")
    );
    assert_eq!(
        err("GetCostAndUsage", with(base.clone(), "Granularity", json!("WEEKLY"))),
        validation("1 validation error detected: Value 'WEEKLY' at 'granularity' failed to satisfy constraint: Member must satisfy enum value set: [DAILY, MONTHLY, HOURLY]")
    );
    let period = |s: &str, e: &str| with(base.clone(), "TimePeriod", json!({"Start": s, "End": e}));
    assert_eq!(
        err("GetCostAndUsage", period("2024-05-01", "2024-05-01")),
        validation("Start date (and hour) should be before end date (and hour)")
    );
    assert_eq!(
        err("GetCostAndUsage", period("2024-5-01", "2024-06-01")).1,
        r"1 validation error detected: Value '2024-5-01' at 'timePeriod.start' failed to satisfy constraint: Member must satisfy regular expression pattern: (\d{4}-\d{2}-\d{2})(T\d{2}:\d{2}:\d{2}Z)?"
    );
    assert_eq!(
        err("GetCostAndUsage", period("2024-02-30", "2024-06-01")).1,
        "Invalid date: 2024-02-30"
    );
    assert_eq!(
        err("GetCostAndUsage", period("2024-05-01", "2024-07-01")),
        validation("end date past the beginning of next month")
    );
    assert!(err("GetCostAndUsage", period("2024-05-21", "2024-06-01"))
        .1
        .contains("after the current date"));
    let mut b = base.clone();
    b.as_object_mut().unwrap().remove("TimePeriod");
    assert_eq!(
        err("GetCostAndUsage", b).1,
        "1 validation error detected: Value null at 'timePeriod' failed to satisfy constraint: Member must not be null"
    );

    let (code, message) = err(
        "GetCostAndUsage",
        with(base.clone(), "Metrics", json!(["Cost"])),
    );
    assert_eq!(code, "ValidationException");
    assert!(message.starts_with("Invalid metric: Cost."), "{message}");
    assert_eq!(
        err("GetCostAndUsage", with(base.clone(), "Metrics", json!([]))).0,
        "ValidationException"
    );

    let group = |g: Value| err("GetCostAndUsage", with(base.clone(), "GroupBy", g));
    assert_eq!(
        group(json!([{"Type": "LINKED_ACCOUNT", "Key": "x"}])),
        validation("Group Definition type is invalid.")
    );
    assert_eq!(
        group(json!([{"Type": "DIMENSION", "Key": ""}])),
        validation(
            "Group Definition is invalid. Both type an key need to be set to a non-empty value."
        )
    );
    let (_, m) = group(json!([{"Type": "DIMENSION", "Key": "RESOURCE_ID"}]));
    assert!(m.starts_with("Group Definition dimension is invalid. Valid values are AZ, INSTANCE_TYPE, LINKED_ACCOUNT"), "{m}");
    let three = json!([
        {"Type": "DIMENSION", "Key": "SERVICE"},
        {"Type": "DIMENSION", "Key": "REGION"},
        {"Type": "TAG", "Key": "Name"},
    ]);
    assert_eq!(group(three).0, "ValidationException");

    let filter = |f: Value| err("GetCostAndUsage", with(base.clone(), "Filter", f));
    assert_eq!(
        filter(json!({"Dimensions": {"Key": "SERVICE", "Values": ["x"]}, "Tags": {"Key": "a", "Values": ["b"]}})),
        validation("Expression has more than one roots. Only one root operator is allowed for each expression: And, Or, Not, Dimensions, Tags, CostCategories")
    );
    assert!(filter(json!({})).1.starts_with("Expression has no root"));
    assert!(filter(json!({"And": []})).1.contains("at least one"));
    assert!(
        filter(json!({"Dimensions": {"Key": "COLOUR", "Values": ["x"]}}))
            .1
            .starts_with("Dimension COLOUR is not allowed")
    );
    assert!(filter(
        json!({"Dimensions": {"Key": "SERVICE", "Values": ["x"], "MatchOptions": ["STARTS_WITH"]}})
    )
    .1
    .starts_with("MatchOptions STARTS_WITH is not supported for Dimensions"));
    assert!(
        filter(json!({"Tags": {"Key": "a", "MatchOptions": ["FUZZY"]}}))
            .1
            .contains("enum value set")
    );

    assert_eq!(
        err(
            "GetCostAndUsage",
            with(base.clone(), "NextPageToken", json!("abc"))
        )
        .0,
        "InvalidNextTokenException"
    );
}

#[test]
fn protocol_errors() {
    let records = records();
    let accounts = accounts();
    let prices = PriceList::aws_default();
    let ledger = Ledger::new(&records, &accounts, &prices, "us-east-1").unwrap();
    let r = handle(
        &ledger,
        "AWSInsightsIndexService.GetReservationCoverage",
        b"{}",
        now(),
    );
    assert_eq!(r.status, 400);
    assert!(
        r.body.contains(r#""__type":"UnknownOperationException""#),
        "{}",
        r.body
    );
    let r = handle(&ledger, "Somebody.GetCostAndUsage", b"{}", now());
    assert!(r.body.contains("UnknownOperationException"));
    let r = handle(
        &ledger,
        "AWSInsightsIndexService.GetCostAndUsage",
        b"{not json",
        now(),
    );
    assert_eq!(r.status, 400);
    assert!(
        r.body.contains(r#""__type":"SerializationException""#),
        "{}",
        r.body
    );
    let r = handle(
        &ledger,
        "AWSInsightsIndexService.GetCostAndUsage",
        br#"{"Metrics": "x"}"#,
        now(),
    );
    assert!(r.body.contains("SerializationException"), "{}", r.body);
    // An empty body is an empty request: the first missing member is reported.
    let r = handle(
        &ledger,
        "AWSInsightsIndexService.GetCostAndUsage",
        b"",
        now(),
    );
    assert!(r.body.contains("Value null at 'timePeriod'"), "{}", r.body);
    assert_eq!(
        super::operation("AWSInsightsIndexService.GetTags"),
        Some("GetTags")
    );
    assert_eq!(super::operation("AWSInsightsIndexService.Nope"), None);
}

fn forecast(start: &str, end: &str, granularity: &str) -> Value {
    json!({
        "TimePeriod": {"Start": start, "End": end},
        "Metric": "UNBLENDED_COST",
        "Granularity": granularity,
        "Filter": {"And": [
            {"Dimensions": {"Key": "LINKED_ACCOUNT", "Values": [B]}},
            {"Dimensions": {"Key": "SERVICE", "Values": ["Amazon Elastic Compute Cloud - Compute"]}},
        ]},
    })
}

#[test]
fn forecast_projects_what_is_running() {
    // bob's m5.large has been running since the 3rd: from today to June 1 is 12 days.
    let v = ok(
        "GetCostForecast",
        forecast("2024-05-20", "2024-06-01", "MONTHLY"),
    );
    assert_eq!(v["Total"], json!({"Amount": "27.648", "Unit": "USD"}));
    let r = &v["ForecastResultsByTime"][0];
    assert_eq!(
        r["TimePeriod"],
        json!({"Start": "2024-05-20", "End": "2024-06-01"})
    );
    assert_eq!(r["MeanValue"], "27.648");
    // The lower bound is what today has already cost: 12 hours.
    assert_eq!(r["PredictionIntervalLowerBound"], "1.152");
    assert_eq!(r["PredictionIntervalUpperBound"], "27.648");
    let v = ok(
        "GetCostForecast",
        forecast("2024-05-20", "2024-05-23", "DAILY"),
    );
    let days = v["ForecastResultsByTime"].as_array().unwrap();
    assert_eq!(days.len(), 3);
    assert_eq!(days[1]["MeanValue"], "2.304");
    assert_eq!(v["Total"]["Amount"], "6.912");
    // Into next month: the free tier and prices apply as they will.
    let v = ok(
        "GetCostForecast",
        forecast("2024-05-20", "2024-07-01", "MONTHLY"),
    );
    assert_eq!(v["ForecastResultsByTime"][1]["MeanValue"], "69.12"); // 720 h × 0.096
}

#[test]
fn forecast_validation() {
    let e = |body: Value| err("GetCostForecast", body);
    assert_eq!(
        e(forecast("2024-05-25", "2024-05-21", "DAILY")).1,
        "Requested Start: 2024-05-25 must be before requested End: 2024-05-21"
    );
    assert!(e(forecast("2024-05-19", "2024-05-21", "DAILY"))
        .1
        .contains("before the current date"));
    assert!(e(forecast("2024-05-20", "2024-05-21", "HOURLY"))
        .1
        .contains("HOURLY"));
    assert!(e(forecast("2024-05-20", "2024-09-01", "DAILY"))
        .1
        .contains("too long"));
    assert!(e(with(
        forecast("2024-05-20", "2024-05-21", "DAILY"),
        "Metric",
        json!("USAGE_QUANTITY")
    ))
    .1
    .contains("GetUsageForecast"));
    assert!(e(with(
        forecast("2024-05-20", "2024-05-21", "DAILY"),
        "Metric",
        json!("Cost")
    ))
    .1
    .contains("enum value set"));
    assert!(e(with(
        forecast("2024-05-20", "2024-05-21", "DAILY"),
        "PredictionIntervalLevel",
        json!(50)
    ))
    .1
    .contains("greater than or equal to 51"));
    // No usage at all matches: nothing to forecast from.
    let none = with(
        forecast("2024-05-20", "2024-05-21", "DAILY"),
        "Filter",
        json!({"Dimensions": {"Key": "INSTANCE_TYPE", "Values": ["c5.large"]}}),
    );
    assert_eq!(
        e(none),
        (
            "DataUnavailableException".to_string(),
            "Insufficient amount of historical data to generate forecast.".to_string()
        )
    );
}

fn dimension_values(dimension: &str, extra: Value) -> Vec<Value> {
    let mut body = json!({
        "TimePeriod": {"Start": "2024-05-01", "End": "2024-06-01"},
        "Dimension": dimension,
    });
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    let v = ok("GetDimensionValues", body);
    assert_eq!(
        v["ReturnSize"],
        v["DimensionValues"].as_array().unwrap().len()
    );
    v["DimensionValues"].as_array().unwrap().clone()
}

#[test]
fn dimension_values_list_what_was_used() {
    let values = |d: &str, extra: Value| -> Vec<String> {
        dimension_values(d, extra)
            .iter()
            .map(|v| v["Value"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        values("SERVICE", json!({})),
        [
            "Amazon Elastic Compute Cloud - Compute",
            "Amazon Virtual Private Cloud",
            "EC2 - Other"
        ]
    );
    assert_eq!(
        values("INSTANCE_TYPE", json!({})),
        ["m5.large", "t2.micro", "t3.micro"]
    );
    assert_eq!(
        values("SERVICE", json!({"SearchString": "ec2"})),
        ["EC2 - Other"]
    );
    assert_eq!(values("AZ", json!({})), ["us-east-1a"]);
    assert_eq!(
        values(
            "INSTANCE_TYPE",
            json!({"Filter": {"Dimensions": {"Key": "LINKED_ACCOUNT", "Values": [A]}}})
        ),
        ["t2.micro"]
    );
    assert_eq!(
        dimension_values("LINKED_ACCOUNT", json!({})),
        vec![
            json!({"Value": A, "Attributes": {"description": "alice"}}),
            json!({"Value": B, "Attributes": {"description": "bob"}}),
        ]
    );
    assert_eq!(
        dimension_values("USAGE_TYPE", json!({"SearchString": "gp3"})),
        vec![json!({"Value": "EBS:VolumeUsage.gp3", "Attributes": {"unit": "GB-Mo"}})]
    );
    // Sorted by cost, the most expensive first, at most one.
    assert_eq!(
        values(
            "INSTANCE_TYPE",
            json!({"SortBy": [{"Key": "UnblendedCost", "SortOrder": "DESCENDING"}], "MaxResults": 1})
        ),
        ["m5.large"]
    );
    assert_eq!(
        values(
            "INSTANCE_TYPE",
            json!({"SortBy": [{"Key": "UnblendedCost", "SortOrder": "ASCENDING"}]})
        ),
        ["t2.micro", "t3.micro", "m5.large"]
    );
    assert!(values("INSTANCE_TYPE", json!({"Context": "RESERVATIONS"})).is_empty());
    // A window without usage has no values.
    let v = ok(
        "GetDimensionValues",
        json!({"TimePeriod": {"Start": "2023-01-01", "End": "2023-02-01"}, "Dimension": "SERVICE"}),
    );
    assert_eq!(v["TotalSize"], 0);

    let e = |body: Value| err("GetDimensionValues", body);
    let period = json!({"Start": "2024-05-01", "End": "2024-06-01"});
    assert!(e(json!({"TimePeriod": period, "Dimension": "COLOUR"}))
        .1
        .contains("enum value set"));
    assert!(e(json!({"TimePeriod": period})).1.contains("'dimension'"));
    assert!(
        e(json!({"TimePeriod": period, "Dimension": "SERVICE", "Context": "X"}))
            .1
            .contains("'context'")
    );
    assert!(e(json!({
        "TimePeriod": period, "Dimension": "SERVICE", "SearchString": "a",
        "SortBy": [{"Key": "UnblendedCost"}],
    }))
    .1
    .contains("not supported when SortBy"));
    assert_eq!(
        e(json!({"TimePeriod": period, "Dimension": "SERVICE", "NextPageToken": "x"})).0,
        "InvalidNextTokenException"
    );
}

#[test]
fn tags_of_the_period() {
    let v = ok(
        "GetTags",
        json!({"TimePeriod": {"Start": "2024-05-01", "End": "2024-06-01"}}),
    );
    assert_eq!(v["Tags"], json!(["Name", "env"]));
    assert_eq!(v["TotalSize"], 2);
    let v = ok(
        "GetTags",
        json!({"TimePeriod": {"Start": "2024-05-01", "End": "2024-06-01"}, "TagKey": "Name"}),
    );
    assert_eq!(v["Tags"], json!(["db", "web"]));
    let v = ok(
        "GetTags",
        json!({
            "TimePeriod": {"Start": "2024-05-01", "End": "2024-06-01"}, "TagKey": "Name",
            "SortBy": [{"Key": "UnblendedCost"}],
        }),
    );
    assert_eq!(v["Tags"], json!(["db", "web"]));
}

#[test]
fn the_report_does_not_depend_on_the_window() {
    // The free tier is worked out per month: a window starting mid-month sees the same
    // per-day figures as the whole month does.
    let whole = ok("GetCostAndUsage", may("DAILY"));
    let part = ok(
        "GetCostAndUsage",
        with(
            may("DAILY"),
            "TimePeriod",
            json!({"Start": "2024-05-10", "End": "2024-05-20"}),
        ),
    );
    for d in 0..10 {
        assert_eq!(total_cost(&part, d), total_cost(&whole, d + 9), "day {d}");
    }
}

#[test]
fn a_past_month_is_final() {
    // Seen from June 10: bob's m5.large ran 10 h + 29 days in May, his volume 30 days, his
    // idle address the whole month.
    let (status, v) = call_at("GetCostAndUsage", may("MONTHLY"), utc(2024, 6, 10, 0, 0, 0));
    assert_eq!(status, 200);
    assert_eq!(v["ResultsByTime"][0]["Estimated"], false);
    assert_eq!(total_cost(&v, 0), "73.0651870968");
    // An hour later nothing about May changes.
    let (_, later) = call_at(
        "GetCostAndUsage",
        may("MONTHLY"),
        utc(2024, 6, 10, 0, 0, 0) + MS_PER_HOUR,
    );
    assert_eq!(later, v);
}

fn call_with(records: &[UsageRecord], op: &str, body: &Value) -> (u16, Value) {
    let accounts = accounts();
    let prices = PriceList::aws_default();
    let ledger = Ledger::new(records, &accounts, &prices, "us-east-1").unwrap();
    let reply = handle(
        &ledger,
        &format!("AWSInsightsIndexService.{op}"),
        body.to_string().as_bytes(),
        now(),
    );
    (reply.status, serde_json::from_str(&reply.body).unwrap())
}

/// Every page of a request, following `NextPageToken`.
fn pages(records: &[UsageRecord], op: &str, body: Value) -> Vec<Value> {
    let mut out = Vec::new();
    let mut body = body;
    loop {
        let (status, v) = call_with(records, op, &body);
        assert_eq!(status, 200, "{v}");
        let token = v.get("NextPageToken").cloned();
        out.push(v);
        match token {
            Some(t) => body["NextPageToken"] = t,
            None => return out,
        }
        assert!(out.len() < 100, "endless paging");
    }
}

#[test]
fn history_reaches_back_as_far_as_aws_keeps_it() {
    // Now is 2024-05-20 12:00.
    let at = |g: &str, start: &str, end: &str| {
        call(
            "GetCostAndUsage",
            json!({"TimePeriod": {"Start": start, "End": end}, "Granularity": g, "Metrics": ["UnblendedCost"]}),
        )
    };
    let refused = |g: &str, start: &str, end: &str| {
        let (status, v) = at(g, start, end);
        assert_eq!(status, 400, "{g} {start}: {v}");
        assert_eq!(v["__type"], "ValidationException");
        v["message"].as_str().unwrap().to_string()
    };
    // HOURLY: from midnight 14 days ago.
    assert_eq!(at("HOURLY", "2024-05-06", "2024-05-07").0, 200);
    assert_eq!(
        refused("HOURLY", "2024-05-05T23:00:00Z", "2024-05-07"),
        "Start date is more than 14 days ago for hourly granularity. Please adjust start date as we support only 14 days of data at hourly granularity."
    );
    assert!(refused("HOURLY", "2000-01-01", "2024-06-01").contains("14 days"));
    // DAILY: this month and the 13 before it.
    assert_eq!(at("DAILY", "2023-04-01", "2023-04-02").0, 200);
    assert!(refused("DAILY", "2023-03-31", "2023-04-02").contains("beyond 14 months"));
    // MONTHLY: 38 months, from the first of a month past 14.
    assert_eq!(at("MONTHLY", "2021-04-01", "2024-06-01").0, 200);
    assert_eq!(at("MONTHLY", "2023-04-15", "2024-06-01").0, 200);
    assert!(refused("MONTHLY", "2021-03-01", "2024-06-01").contains("beyond 38 months"));
    assert_eq!(
        refused("MONTHLY", "2023-03-15", "2024-06-01"),
        "To retrieve data beyond the past 14 months, your start date needs to be the first day of the month."
    );
}

#[test]
fn more_periods_than_a_page_holds_come_in_pages() {
    let body = json!({
        "TimePeriod": {"Start": "2023-04-01", "End": "2024-06-01"},
        "Granularity": "DAILY",
        "Metrics": ["UnblendedCost"],
    });
    let all = pages(&records(), "GetCostAndUsage", body.clone());
    assert_eq!(all.len(), 2);
    let days: Vec<&Value> = all
        .iter()
        .flat_map(|p| p["ResultsByTime"].as_array().unwrap())
        .collect();
    assert_eq!(all[0]["ResultsByTime"].as_array().unwrap().len(), 366);
    assert_eq!(days.len(), 427);
    assert_eq!(days[0]["TimePeriod"]["Start"], "2023-04-01");
    assert_eq!(days[366]["TimePeriod"]["Start"], "2024-04-01");
    assert_eq!(days[426]["TimePeriod"]["End"], "2024-06-01");
    // The second page's days are the days a request for May alone reports.
    let may = ok("GetCostAndUsage", may("DAILY"));
    for d in 0..31 {
        assert_eq!(
            days[396 + d]["Total"]["UnblendedCost"],
            may["ResultsByTime"][d]["Total"]["UnblendedCost"],
            "May {d}"
        );
    }

    // A token belongs to its request.
    let token = all[0]["NextPageToken"].clone();
    let (_, v) = call(
        "GetCostAndUsage",
        with(
            with(body.clone(), "Metrics", json!(["UsageQuantity"])),
            "NextPageToken",
            token,
        ),
    );
    assert_eq!(v["__type"], "RequestChangedException");
    for bad in ["1.9999-0.0", "1.x.y", "garbage"] {
        let (_, v) = call(
            "GetCostAndUsage",
            with(body.clone(), "NextPageToken", json!(bad)),
        );
        assert!(
            v["__type"] == "InvalidNextTokenException" || v["__type"] == "RequestChangedException",
            "{bad}: {v}"
        );
    }
}

/// `n` idle Elastic IPs of bob's for the whole of May, each tagged `Name=<i>`.
fn many_addresses(n: usize) -> Vec<UsageRecord> {
    (0..n)
        .map(|i| {
            UsageRecord::elastic_ip(
                B,
                &format!("eipalloc-{i:05}"),
                false,
                utc(2024, 5, 1, 0, 0, 0),
                None,
            )
            .with_tags([("Name", format!("a{i:05}"))])
        })
        .collect()
}

#[test]
fn more_groups_than_a_page_holds_come_in_pages() {
    // 600 groups a day for the 20 days with usage: 12,000 groups, 5,000 a page, a day split
    // across two pages where one ends.
    let records = many_addresses(600);
    let body = with(
        may("DAILY"),
        "GroupBy",
        json!([{"Type": "TAG", "Key": "Name"}]),
    );
    let all = pages(&records, "GetCostAndUsage", body);
    assert_eq!(all.len(), 3);
    let mut seen = std::collections::BTreeSet::new();
    for p in &all {
        let n: usize = p["ResultsByTime"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["Groups"].as_array().unwrap().len())
            .sum();
        assert!(n <= super::page::MAX_GROUPS_PER_PAGE, "{n}");
        for r in p["ResultsByTime"].as_array().unwrap() {
            for g in r["Groups"].as_array().unwrap() {
                let key = (
                    r["TimePeriod"]["Start"].as_str().unwrap().to_string(),
                    g["Keys"][0].as_str().unwrap().to_string(),
                );
                assert!(seen.insert(key), "a group twice");
            }
        }
    }
    // Until now (the 20th, noon): every address every day.
    assert_eq!(seen.len(), 20 * 600);
    // The first page ends inside day 9: its groups continue on the next page.
    let first = all[0]["ResultsByTime"].as_array().unwrap();
    let second = all[1]["ResultsByTime"].as_array().unwrap();
    assert_eq!(first.last().unwrap()["TimePeriod"], second[0]["TimePeriod"]);

    // One period with more groups than a page.
    let records = many_addresses(super::page::MAX_GROUPS_PER_PAGE + 7);
    let body = with(
        may("MONTHLY"),
        "GroupBy",
        json!([{"Type": "TAG", "Key": "Name"}]),
    );
    let all = pages(&records, "GetCostAndUsage", body);
    let sizes: Vec<usize> = all
        .iter()
        .map(|p| p["ResultsByTime"][0]["Groups"].as_array().unwrap().len())
        .collect();
    assert_eq!(sizes, [super::page::MAX_GROUPS_PER_PAGE, 7]);
    assert_eq!(
        all[1]["ResultsByTime"][0]["Groups"][6]["Keys"][0],
        "Name$a05006"
    );
}

#[test]
fn tags_and_dimension_values_come_in_pages_of_a_thousand() {
    let records = many_addresses(1_500);
    let period = json!({"Start": "2024-05-01", "End": "2024-06-01"});
    let all = pages(
        &records,
        "GetTags",
        json!({"TimePeriod": period, "TagKey": "Name"}),
    );
    let sizes: Vec<(i64, i64)> = all
        .iter()
        .map(|p| {
            (
                p["ReturnSize"].as_i64().unwrap(),
                p["TotalSize"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(sizes, [(1000, 1500), (500, 1500)]);
    assert_eq!(all[1]["Tags"][0], "a01000");
    // With SortBy there are no pages: MaxResults (at most 1,000) is all there is.
    let (_, v) = call_with(
        &records,
        "GetTags",
        &json!({"TimePeriod": period, "TagKey": "Name", "SortBy": [{"Key": "UnblendedCost"}]}),
    );
    assert_eq!(v["ReturnSize"], 1000);
    assert!(v.get("NextPageToken").is_none());
    // Dimension values page the same way (here all fit).
    let all = pages(
        &records,
        "GetDimensionValues",
        json!({"TimePeriod": period, "Dimension": "USAGE_TYPE"}),
    );
    assert_eq!(all.len(), 1);
}

#[test]
fn ebs_usage_is_ec2_other_grouped_by_usage_type() {
    use gureum_types::VolumeType;
    let d = |day: u32| utc(2024, 5, day, 0, 0, 0);
    // bob (no free tier): a 31 GiB io1 volume with 1,000 IOPS for a day, modified to 62 GiB of
    // gp3 for a day, then deleted; a 31 GiB snapshot for a day.
    let mut records = vec![
        UsageRecord::volume(B, "vol-1", VolumeType::Io1, 31, d(1), Some(d(2))),
        UsageRecord::volume(B, "vol-1", VolumeType::Gp3, 62, d(2), Some(d(3))),
        UsageRecord::snapshot(B, "snap-1", 31, d(2), Some(d(3))),
    ];
    records.extend(UsageRecord::volume_iops(
        B,
        "vol-1",
        VolumeType::Io1,
        1000,
        d(1),
        Some(d(2)),
    ));
    let accounts = accounts();
    let prices = PriceList::aws_default();
    let ledger = Ledger::new(&records, &accounts, &prices, "us-east-1").unwrap();
    let body = json!({
        "TimePeriod": {"Start": "2024-05-01", "End": "2024-06-01"},
        "Granularity": "MONTHLY",
        "Metrics": ["UnblendedCost", "UsageQuantity"],
        "GroupBy": [{"Type": "DIMENSION", "Key": "SERVICE"}, {"Type": "DIMENSION", "Key": "USAGE_TYPE"}],
    });
    let reply = handle(
        &ledger,
        "AWSInsightsIndexService.GetCostAndUsage",
        body.to_string().as_bytes(),
        now(),
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    let v: Value = serde_json::from_str(&reply.body).unwrap();
    let got: Vec<(String, String, String, String)> = v["ResultsByTime"][0]["Groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            let m = &g["Metrics"];
            (
                format!(
                    "{} | {}",
                    g["Keys"][0].as_str().unwrap(),
                    g["Keys"][1].as_str().unwrap()
                ),
                m["UnblendedCost"]["Amount"].as_str().unwrap().to_string(),
                m["UsageQuantity"]["Amount"].as_str().unwrap().to_string(),
                m["UsageQuantity"]["Unit"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let row = |k: &str, usd: &str, q: &str, unit: &str| {
        (
            k.to_string(),
            usd.to_string(),
            q.to_string(),
            unit.to_string(),
        )
    };
    assert_eq!(
        got,
        vec![
            row("EC2 - Other | EBS:SnapshotUsage", "0.05", "1", "GB-Mo"),
            // 1,000 IOPS for a day of 31: 1000/31 IOPS-months × $0.065.
            row(
                "EC2 - Other | EBS:VolumeP-IOPS.piops",
                "2.0967741935",
                "32.2580645161",
                "IOPS-Mo"
            ),
            row("EC2 - Other | EBS:VolumeUsage.gp3", "0.16", "2", "GB-Mo"),
            row("EC2 - Other | EBS:VolumeUsage.piops", "0.125", "1", "GB-Mo"),
        ]
    );
}
