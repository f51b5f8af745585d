//! The Cost Explorer operations gureum answers: `GetCostAndUsage`, `GetCostForecast`,
//! `GetDimensionValues` and `GetTags`.
//!
//! Owned here: each operation's validation (in the order and, where AWS's wording is
//! known, with the messages Cost Explorer uses), the grouping of rated usage into
//! `ResultsByTime`, and the forecast model. Rating itself is [`Ledger::rate`]'s.
//!
//! How far back `GetCostAndUsage` reaches, as AWS documents Cost Explorer's data: HOURLY
//! for the last [`HOURLY_DAYS`] days (from midnight UTC, 14 days ago), DAILY for the current
//! month and the 13 before it ([`DAILY_MONTHS`]), MONTHLY for [`MONTHLY_MONTHS`] months (AWS's
//! multi-year data, which needs an opt-in there and is simply on here), a start older than
//! 14 months being the first of a month. Beyond that is a `ValidationException`. With the end
//! at most the start of next month, a request has at most about 1,100 periods, and its
//! results come in pages ([`super::page`]); one page is rated at a time, over as many periods
//! as keep its cells (periods × groups) under [`CELL_BUDGET`]. What one request computes and
//! holds is therefore bounded by the page, whatever the period asked for.
//!
//! Deliberate deviations from AWS, each because gureum has the data AWS lacks or lacks
//! the machinery AWS has:
//! - hourly data needs no opt-in, and is not limited to EC2 or to a number of usage records;
//! - page sizes are gureum's own (AWS does not document its);
//! - the forecast is not statistical: the mean assumes everything running now keeps
//!   running to the end of the period (free tier included), the lower bound assumes
//!   everything stops now, the upper bound equals the mean;
//! - cost categories do not exist: grouping by one puts everything under `Name$`.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::error::{CeError, CeErrorCode};
use super::filter::Filter;
use super::model::*;
use super::page::{self, MAX_GROUPS_PER_PAGE, MAX_RESULTS_PER_PAGE, MAX_VALUES_PER_PAGE};
use crate::amount::Usd;
use crate::calendar::{
    add_months, floor_day, format_date, format_datetime, parse_ce_date, DateError, Month,
    MS_PER_DAY,
};
use crate::rating::{Cell, Ledger, Periods};
use crate::usage::{Dimension, GROUP_BY_DIMENSIONS};

/// The metric names `GetCostAndUsage` accepts (matched without regard to case).
pub const METRICS: &[&str] = &[
    "AmortizedCost",
    "BlendedCost",
    "NetAmortizedCost",
    "NetUnblendedCost",
    "NormalizedUsageAmount",
    "UnblendedCost",
    "UsageQuantity",
];

/// botocore's `Metric` enum, which `GetCostForecast` takes.
const FORECAST_METRICS: &[&str] = &[
    "BLENDED_COST",
    "UNBLENDED_COST",
    "AMORTIZED_COST",
    "NET_UNBLENDED_COST",
    "NET_AMORTIZED_COST",
    "USAGE_QUANTITY",
    "NORMALIZED_USAGE_AMOUNT",
];

const GRANULARITIES: &[&str] = &["DAILY", "MONTHLY", "HOURLY"];

/// HOURLY reaches back this many days (from today's midnight, UTC).
pub const HOURLY_DAYS: i64 = 14;
/// DAILY reaches back this many calendar months, the current one included.
pub const DAILY_MONTHS: i64 = 14;
/// MONTHLY reaches back this many calendar months, the current one included.
pub const MONTHLY_MONTHS: i64 = 38;
/// The most report cells (periods × groups) one rating pass holds: about 8 MB.
pub const CELL_BUDGET: usize = 100_000;
const DATE_PATTERN: &str = r"(\d{4}-\d{2}-\d{2})(T\d{2}:\d{2}:\d{2}Z)?";

/// What a metric measures. Without reservations, savings plans, credits or an
/// organisation, every cost metric equals the unblended cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Measured {
    Cost,
    Usage,
    Normalized,
}

fn measured(canonical: &str) -> Measured {
    match canonical {
        "UsageQuantity" => Measured::Usage,
        "NormalizedUsageAmount" => Measured::Normalized,
        _ => Measured::Cost,
    }
}

fn metric_value(m: Measured, cell: &Cell, unit: &str) -> MetricValue {
    let (amount, unit) = match m {
        Measured::Cost => (cell.cost.to_decimal(10), "USD"),
        Measured::Usage => (cell.quantity.to_decimal(10), unit),
        Measured::Normalized => (cell.normalized.to_decimal(10), unit),
    };
    MetricValue {
        amount,
        unit: unit.to_string(),
    }
}

/// A checked `TimePeriod`: `[start, end)`, and the dates as the caller wrote them.
struct Period {
    start: i64,
    end: i64,
    start_text: String,
    end_text: String,
}

fn parse_date(text: &Option<String>, member: &str) -> Result<(String, i64), CeError> {
    let Some(text) = text else {
        return Err(CeError::missing(member));
    };
    match parse_ce_date(text) {
        Ok((ms, _)) => Ok((text.clone(), ms)),
        Err(DateError::Pattern) => Err(CeError::validation(format!(
            "1 validation error detected: Value '{text}' at '{member}' failed to satisfy constraint: Member must satisfy regular expression pattern: {DATE_PATTERN}"
        ))),
        Err(DateError::Invalid) => Err(CeError::validation(format!("Invalid date: {text}"))),
    }
}

fn parse_period(tp: &Option<DateInterval>) -> Result<Period, CeError> {
    let Some(tp) = tp else {
        return Err(CeError::missing("timePeriod"));
    };
    let (start_text, start) = parse_date(&tp.start, "timePeriod.start")?;
    let (end_text, end) = parse_date(&tp.end, "timePeriod.end")?;
    Ok(Period {
        start,
        end,
        start_text,
        end_text,
    })
}

fn parse_granularity(g: &Option<String>) -> Result<Periods, CeError> {
    match g.as_deref() {
        None => Err(CeError::missing("granularity")),
        Some("DAILY") => Ok(Periods::Daily),
        Some("MONTHLY") => Ok(Periods::Monthly),
        Some("HOURLY") => Ok(Periods::Hourly),
        Some(other) => Err(CeError::not_in_enum("granularity", other, GRANULARITIES)),
    }
}

fn compile_filter(f: &Option<Expression>) -> Result<Option<Filter>, CeError> {
    f.as_ref().map(Filter::compile).transpose()
}

/// How far back `periods` reach at `now` (see the module's documentation).
fn check_history(period: &Period, periods: Periods, now: i64) -> Result<(), CeError> {
    let this_month = Month::of(now).start_ms();
    let fourteen_months = add_months(this_month, -(DAILY_MONTHS - 1));
    match periods {
        Periods::Hourly if period.start < floor_day(now) - HOURLY_DAYS * MS_PER_DAY => {
            // AWS's wording.
            Err(CeError::validation(
                "Start date is more than 14 days ago for hourly granularity. Please adjust start date as we support only 14 days of data at hourly granularity.",
            ))
        }
        Periods::Daily if period.start < fourteen_months => Err(CeError::validation(
            "Historical data beyond 14 months is available at MONTHLY granularity only. Please adjust start date or use MONTHLY granularity.",
        )),
        Periods::Monthly if period.start < add_months(this_month, -(MONTHLY_MONTHS - 1)) => {
            Err(CeError::validation(
                "Historical data beyond 38 months is not available. Please adjust start date.",
            ))
        }
        Periods::Monthly
            if period.start < fourteen_months
                && period.start != Month::of(period.start).start_ms() =>
        {
            // AWS's wording.
            Err(CeError::validation(
                "To retrieve data beyond the past 14 months, your start date needs to be the first day of the month.",
            ))
        }
        _ => Ok(()),
    }
}

fn invalid_token() -> CeError {
    CeError::new(
        CeErrorCode::InvalidNextTokenException,
        "The NextPageToken is invalid. Try again without a pagination token.",
    )
}

/// One way of grouping: a dimension, a tag key or a cost category name.
#[derive(Debug, Clone, PartialEq, Eq)]
enum GroupKey {
    Dimension(Dimension),
    Tag(String),
    CostCategory(String),
}

fn parse_group_by(defs: &[GroupDefinition]) -> Result<Vec<GroupKey>, CeError> {
    if defs.len() > 2 {
        return Err(CeError::validation(
            "You can group by at most 2 group definitions (dimensions, tag keys or cost categories)",
        ));
    }
    defs.iter()
        .map(|d| {
            let (Some(kind), Some(key)) = (d.kind.as_deref(), d.key.as_deref()) else {
                return Err(invalid_group());
            };
            if kind.is_empty() || key.is_empty() {
                return Err(invalid_group());
            }
            match kind {
                "DIMENSION" => match Dimension::parse(key).filter(|d| d.groupable()) {
                    Some(d) => Ok(GroupKey::Dimension(d)),
                    None => Err(CeError::validation(format!(
                        "Group Definition dimension is invalid. Valid values are {}",
                        GROUP_BY_DIMENSIONS
                            .iter()
                            .map(|d| d.name())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))),
                },
                "TAG" => Ok(GroupKey::Tag(key.to_string())),
                "COST_CATEGORY" => Ok(GroupKey::CostCategory(key.to_string())),
                _ => Err(CeError::validation("Group Definition type is invalid.")),
            }
        })
        .collect()
}

fn invalid_group() -> CeError {
    // AWS's own wording, typo included.
    CeError::validation(
        "Group Definition is invalid. Both type an key need to be set to a non-empty value.",
    )
}

/// Canonical metric names for the requested ones, matched without regard to case; the
/// response keys keep the caller's spelling.
fn parse_metrics(metrics: &Option<Vec<String>>) -> Result<Vec<(String, Measured)>, CeError> {
    let Some(metrics) = metrics else {
        return Err(CeError::missing("metrics"));
    };
    if metrics.is_empty() {
        return Err(CeError::validation(
            "Metrics must contain at least one metric",
        ));
    }
    metrics
        .iter()
        .map(
            |m| match METRICS.iter().find(|c| c.eq_ignore_ascii_case(m)) {
                Some(c) => Ok((m.clone(), measured(c))),
                None => Err(CeError::validation(format!(
                    "Invalid metric: {m}. Valid metrics are {}",
                    METRICS.join(", ")
                ))),
            },
        )
        .collect()
}

/// Interns the group keys of records: one id per distinct combination of values.
struct Groups<'a> {
    ids: HashMap<Vec<Cow<'a, str>>, u32>,
    keys: Vec<Vec<Cow<'a, str>>>,
    units: Vec<&'static str>,
}

impl<'a> Groups<'a> {
    fn new() -> Groups<'a> {
        Groups {
            ids: HashMap::new(),
            keys: Vec::new(),
            units: Vec::new(),
        }
    }

    fn id(&mut self, key: Vec<Cow<'a, str>>, unit: &'static str) -> u32 {
        if let Some(id) = self.ids.get(&key) {
            return *id;
        }
        let id = self.keys.len() as u32;
        self.keys.push(key.clone());
        self.units.push(unit);
        self.ids.insert(key, id);
        id
    }
}

fn group_value<'a>(ledger: &'a Ledger<'a>, i: usize, key: &GroupKey) -> Cow<'a, str> {
    match key {
        GroupKey::Dimension(d) => d.value_or_placeholder(&ledger.view(i)),
        GroupKey::Tag(k) => Cow::Owned(format!("{k}${}", ledger.records[i].tag(k).unwrap_or(""))),
        GroupKey::CostCategory(k) => Cow::Owned(format!("{k}$")),
    }
}

fn render_period(ms: i64, hourly: bool) -> String {
    if hourly {
        format_datetime(ms)
    } else {
        format_date(ms)
    }
}

impl Ledger<'_> {
    /// `GetCostAndUsage` at `now`.
    pub fn get_cost_and_usage(
        &self,
        req: &GetCostAndUsageRequest,
        now: i64,
    ) -> Result<GetCostAndUsageResponse, CeError> {
        let period = parse_period(&req.time_period)?;
        let periods = parse_granularity(&req.granularity)?;
        if period.start >= period.end {
            return Err(CeError::validation(
                "Start date (and hour) should be before end date (and hour)",
            ));
        }
        if period.start > now {
            return Err(CeError::validation(format!(
                "Start date {} is after the current date. The start date must be equal to or no later than the current date",
                period.start_text
            )));
        }
        if period.end > Month::of(now).end_ms() {
            return Err(CeError::validation(
                "end date past the beginning of next month",
            ));
        }
        check_history(&period, periods, now)?;
        let metrics = parse_metrics(&req.metrics)?;
        let group_defs = req.group_by.clone().unwrap_or_default();
        let group_keys = parse_group_by(&group_defs)?;
        let filter = compile_filter(&req.filter)?;
        let fingerprint = page::fingerprint(&GetCostAndUsageRequest {
            next_page_token: None,
            ..req.clone()
        });
        let [first, mut skip] = page::position::<2>(req.next_page_token.as_deref(), fingerprint)?;
        let bounds = periods.bounds(period.start, period.end);
        if first >= bounds.len() {
            return Err(invalid_token());
        }

        // Every record's group, once: how many groups there are decides how many periods a
        // rating pass may cover (its cells are periods × groups).
        let by_usage_type = group_keys.contains(&GroupKey::Dimension(Dimension::UsageType));
        let mut groups = Groups::new();
        let group_of: Vec<Option<u32>> = (0..self.records.len())
            .map(|i| {
                let (s, e) = self.billed_interval(i, now);
                if s.max(period.start) >= e.min(period.end) {
                    return None;
                }
                if filter.as_ref().is_some_and(|f| !f.matches(&self.view(i))) {
                    return None;
                }
                let key: Vec<Cow<'_, str>> =
                    group_keys.iter().map(|k| group_value(self, i, k)).collect();
                Some(groups.id(key, self.class_of(i).unit))
            })
            .collect();
        let per_pass = (CELL_BUDGET / groups.keys.len().max(1)).clamp(1, MAX_RESULTS_PER_PAGE);

        let hourly = periods == Periods::Hourly;
        let current_month = Month::of(now).start_ms();
        let mut results: Vec<ResultByTime> = Vec::new();
        let mut room = MAX_GROUPS_PER_PAGE;
        let mut next = None;
        let mut p = first;
        'page: while p < bounds.len() {
            let last = (p + per_pass).min(bounds.len());
            let rated = self.rate(bounds[p].0, bounds[last - 1].1, periods, now, &mut |i| {
                group_of[i]
            });
            let mut per_period: Vec<Vec<(u32, Cell)>> = vec![Vec::new(); last - p];
            for (q, g, cell) in rated.cells() {
                per_period[q as usize].push((g, *cell));
            }
            drop(rated);
            for (q, mut cells) in (p..last).zip(per_period) {
                if results.len() == MAX_RESULTS_PER_PAGE || (room == 0 && !group_keys.is_empty()) {
                    next = Some((q, 0));
                    break 'page;
                }
                let (start, end) = bounds[q];
                let mut total = BTreeMap::new();
                let mut out_groups = Vec::new();
                if group_keys.is_empty() {
                    let mut sum = Cell::default();
                    for (_, c) in &cells {
                        sum += *c;
                    }
                    for (name, m) in &metrics {
                        total.insert(name.clone(), metric_value(*m, &sum, "N/A"));
                    }
                } else {
                    cells.sort_by(|a, b| groups.keys[a.0 as usize].cmp(&groups.keys[b.0 as usize]));
                    let left = cells.len().saturating_sub(skip);
                    if left > room {
                        next = Some((q, skip + room));
                    }
                    for (g, cell) in cells.into_iter().skip(skip).take(room) {
                        let unit = if by_usage_type {
                            groups.units[g as usize]
                        } else {
                            "N/A"
                        };
                        out_groups.push(Group {
                            keys: groups.keys[g as usize]
                                .iter()
                                .map(|k| k.to_string())
                                .collect(),
                            metrics: metrics
                                .iter()
                                .map(|(name, m)| (name.clone(), metric_value(*m, &cell, unit)))
                                .collect(),
                        });
                    }
                    room -= out_groups.len();
                }
                skip = 0;
                results.push(ResultByTime {
                    time_period: DateInterval {
                        start: Some(render_period(start, hourly)),
                        end: Some(render_period(end, hourly)),
                    },
                    total,
                    groups: out_groups,
                    estimated: end > current_month,
                });
                if next.is_some() {
                    break 'page;
                }
            }
            p = last;
        }

        let mut attributes = Vec::new();
        if let Some(pos) = group_keys
            .iter()
            .position(|k| *k == GroupKey::Dimension(Dimension::LinkedAccount))
        {
            let ids: BTreeSet<&str> = groups.keys.iter().map(|k| k[pos].as_ref()).collect();
            for id in ids {
                if let Some(a) = self.accounts.iter().find(|a| a.id == id) {
                    attributes.push(DimensionValuesWithAttributes {
                        value: a.id.clone(),
                        attributes: BTreeMap::from([("description".to_string(), a.name.clone())]),
                    });
                }
            }
        }
        Ok(GetCostAndUsageResponse {
            next_page_token: next.map(|(p, g)| page::token(&[p, g], fingerprint)),
            group_definitions: group_defs,
            results_by_time: results,
            dimension_value_attributes: attributes,
        })
    }

    /// `GetCostForecast` at `now`.
    pub fn get_cost_forecast(
        &self,
        req: &GetCostForecastRequest,
        now: i64,
    ) -> Result<GetCostForecastResponse, CeError> {
        let period = parse_period(&req.time_period)?;
        let Some(metric) = req.metric.as_deref() else {
            return Err(CeError::missing("metric"));
        };
        if !FORECAST_METRICS.contains(&metric) {
            return Err(CeError::not_in_enum("metric", metric, FORECAST_METRICS));
        }
        if matches!(metric, "USAGE_QUANTITY" | "NORMALIZED_USAGE_AMOUNT") {
            return Err(CeError::validation(format!(
                "Metric {metric} is not supported by GetCostForecast; use GetUsageForecast for usage metrics"
            )));
        }
        let periods = parse_granularity(&req.granularity)?;
        if periods == Periods::Hourly {
            return Err(CeError::validation(
                "HOURLY granularity is not supported for forecasts. Use DAILY or MONTHLY",
            ));
        }
        if period.start >= period.end {
            return Err(CeError::validation(format!(
                "Requested Start: {} must be before requested End: {}",
                period.start_text, period.end_text
            )));
        }
        let today = floor_day(now);
        if period.start < today {
            return Err(CeError::validation(format!(
                "Start date {} is before the current date. The start date must be equal to or later than the current date",
                period.start_text
            )));
        }
        let (limit, what) = match periods {
            Periods::Daily => (add_months(today, 3), "3 months for DAILY"),
            _ => (
                add_months(Month::of(now).end_ms(), 12),
                "12 months for MONTHLY",
            ),
        };
        if period.end > limit {
            return Err(CeError::validation(format!(
                "The forecast period is too long: forecasts cover at most {what} granularity"
            )));
        }
        if let Some(level) = req.prediction_interval_level {
            if !(51..=99).contains(&level) {
                let bound = if level < 51 {
                    "greater than or equal to 51"
                } else {
                    "less than or equal to 99"
                };
                return Err(CeError::validation(format!(
                    "1 validation error detected: Value '{level}' at 'predictionIntervalLevel' failed to satisfy constraint: Member must have value {bound}"
                )));
            }
        }
        let filter = compile_filter(&req.filter)?;
        let mut keep = |i: usize| match &filter {
            Some(f) if !f.matches(&self.view(i)) => None,
            _ => Some(0),
        };
        let has_history =
            (0..self.records.len()).any(|i| self.records[i].start_ms <= now && keep(i).is_some());
        if !has_history {
            return Err(CeError::new(
                CeErrorCode::DataUnavailableException,
                "Insufficient amount of historical data to generate forecast.",
            ));
        }
        // Mean: what is running now keeps running to the end of the period.
        let projected = self.rate(period.start, period.end, periods, period.end, &mut keep);
        // Lower bound: everything stops now.
        let actual = self.rate(period.start, period.end, periods, now, &mut keep);
        let bounds = periods.bounds(period.start, period.end);
        let (projected, actual) = (projected.per_period(), actual.per_period());
        let mut total = Usd::ZERO;
        let mut results = Vec::with_capacity(bounds.len());
        for (p, (start, end)) in bounds.iter().enumerate() {
            let mean = projected[p].cost;
            let low = actual[p].cost.min(mean);
            total += mean;
            results.push(ForecastResult {
                time_period: DateInterval {
                    start: Some(format_date(*start)),
                    end: Some(format_date(*end)),
                },
                mean_value: mean.to_decimal(10),
                prediction_interval_lower_bound: low.to_decimal(10),
                prediction_interval_upper_bound: mean.to_decimal(10),
            });
        }
        Ok(GetCostForecastResponse {
            total: MetricValue {
                amount: total.to_decimal(10),
                unit: "USD".to_string(),
            },
            forecast_results_by_time: results,
        })
    }

    /// `GetDimensionValues` at `now`: the values of a dimension among the usage of the
    /// period, with their attributes (an account's name, a usage type's unit).
    pub fn get_dimension_values(
        &self,
        req: &GetDimensionValuesRequest,
        now: i64,
    ) -> Result<GetDimensionValuesResponse, CeError> {
        let period = parse_period(&req.time_period)?;
        let Some(name) = req.dimension.as_deref() else {
            return Err(CeError::missing("dimension"));
        };
        let Some(dimension) = Dimension::parse(name) else {
            let all: Vec<&str> = DIMENSION_NAMES.to_vec();
            return Err(CeError::not_in_enum("dimension", name, &all));
        };
        if period.start >= period.end {
            return Err(CeError::validation(
                "Start date (and hour) should be before end date (and hour)",
            ));
        }
        let context = req.context.as_deref().unwrap_or("COST_AND_USAGE");
        const CONTEXTS: &[&str] = &["COST_AND_USAGE", "RESERVATIONS", "SAVINGS_PLANS"];
        if !CONTEXTS.contains(&context) {
            return Err(CeError::not_in_enum("context", context, CONTEXTS));
        }
        let sort = parse_sort(
            &req.sort_by,
            &req.search_string,
            &req.next_page_token,
            req.max_results,
        )?;
        let fingerprint = page::fingerprint(&GetDimensionValuesRequest {
            next_page_token: None,
            ..req.clone()
        });
        let [offset] = page::position::<1>(req.next_page_token.as_deref(), fingerprint)?;
        let filter = compile_filter(&req.filter)?;
        let search = req.search_string.as_deref().unwrap_or("").to_lowercase();

        let mut values: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        let mut value_ids: HashMap<String, u32> = HashMap::new();
        let mut names: Vec<String> = Vec::new();
        if context == "COST_AND_USAGE" {
            let cells = self.rate(period.start, period.end, Periods::Whole, now, &mut |i| {
                let view = self.view(i);
                if filter.as_ref().is_some_and(|f| !f.matches(&view)) {
                    return None;
                }
                let value = dimension.value(&view)?;
                if !search.is_empty() && !value.to_lowercase().contains(&search) {
                    return None;
                }
                if let Some(id) = value_ids.get(value.as_ref()) {
                    return Some(*id);
                }
                let mut attrs = BTreeMap::new();
                match dimension {
                    Dimension::LinkedAccount => {
                        attrs.insert("description".to_string(), view.account.name.clone());
                    }
                    Dimension::UsageType | Dimension::UsageTypeGroup => {
                        attrs.insert("unit".to_string(), view.class.unit.to_string());
                    }
                    _ => {}
                }
                let id = names.len() as u32;
                names.push(value.to_string());
                value_ids.insert(value.to_string(), id);
                values.insert(value.into_owned(), attrs);
                Some(id)
            });
            // Only values with usage in the period are listed.
            let totals = cells.per_group();
            let used = |id: u32| totals.get(id as usize).is_some_and(|c| c.used);
            values.retain(|v, _| used(value_ids[v]));
            if let Some(sort) = sort {
                let mut ordered: Vec<(String, BTreeMap<String, String>)> =
                    values.into_iter().collect();
                ordered.sort_by(|a, b| {
                    let ca = totals[value_ids[&a.0] as usize];
                    let cb = totals[value_ids[&b.0] as usize];
                    let ord = sort.key(&ca).cmp(&sort.key(&cb));
                    let ord = if sort.descending { ord.reverse() } else { ord };
                    ord.then_with(|| a.0.cmp(&b.0))
                });
                let total = ordered.len() as i64;
                ordered.truncate(sort.max_results);
                let out: Vec<DimensionValuesWithAttributes> = ordered
                    .into_iter()
                    .map(|(value, attributes)| DimensionValuesWithAttributes { value, attributes })
                    .collect();
                return Ok(GetDimensionValuesResponse {
                    return_size: out.len() as i64,
                    total_size: total,
                    dimension_values: out,
                    next_page_token: None,
                });
            }
        }
        let total = values.len();
        let out: Vec<DimensionValuesWithAttributes> = values
            .into_iter()
            .skip(offset)
            .take(MAX_VALUES_PER_PAGE)
            .map(|(value, attributes)| DimensionValuesWithAttributes { value, attributes })
            .collect();
        let end = offset + out.len();
        Ok(GetDimensionValuesResponse {
            return_size: out.len() as i64,
            total_size: total as i64,
            dimension_values: out,
            next_page_token: (end < total).then(|| page::token(&[end], fingerprint)),
        })
    }

    /// `GetTags` at `now`: the tag keys of the period's usage, or the values of one key.
    pub fn get_tags(&self, req: &GetTagsRequest, now: i64) -> Result<GetTagsResponse, CeError> {
        let period = parse_period(&req.time_period)?;
        if period.start >= period.end {
            return Err(CeError::validation(
                "Start date (and hour) should be before end date (and hour)",
            ));
        }
        let sort = parse_sort(
            &req.sort_by,
            &req.search_string,
            &req.next_page_token,
            req.max_results,
        )?;
        let fingerprint = page::fingerprint(&GetTagsRequest {
            next_page_token: None,
            ..req.clone()
        });
        let [offset] = page::position::<1>(req.next_page_token.as_deref(), fingerprint)?;
        let filter = compile_filter(&req.filter)?;
        let search = req.search_string.as_deref().unwrap_or("").to_lowercase();
        let mut found: BTreeMap<String, Cell> = BTreeMap::new();
        let mut ids: Vec<Vec<String>> = Vec::new();
        let cells = self.rate(period.start, period.end, Periods::Whole, now, &mut |i| {
            let view = self.view(i);
            if filter.as_ref().is_some_and(|f| !f.matches(&view)) {
                return None;
            }
            let names: Vec<String> = match req.tag_key.as_deref() {
                Some(key) => view
                    .record
                    .tag(key)
                    .map(str::to_string)
                    .into_iter()
                    .collect(),
                None => view.record.tags.iter().map(|(k, _)| k.clone()).collect(),
            };
            let names: Vec<String> = names
                .into_iter()
                .filter(|n| search.is_empty() || n.to_lowercase().contains(&search))
                .collect();
            if names.is_empty() {
                return None;
            }
            ids.push(names);
            Some(ids.len() as u32 - 1)
        });
        for (g, c) in cells
            .per_group()
            .into_iter()
            .enumerate()
            .filter(|(_, c)| c.used)
        {
            for name in &ids[g] {
                *found.entry(name.clone()).or_default() += c;
            }
        }
        let total = found.len() as i64;
        let mut next = None;
        let tags: Vec<String> = match sort {
            None => {
                let tags: Vec<String> = found
                    .into_keys()
                    .skip(offset)
                    .take(MAX_VALUES_PER_PAGE)
                    .collect();
                let end = offset + tags.len();
                if (end as i64) < total {
                    next = Some(page::token(&[end], fingerprint));
                }
                tags
            }
            Some(sort) => {
                let mut v: Vec<(String, Cell)> = found.into_iter().collect();
                v.sort_by(|a, b| {
                    let ord = sort.key(&a.1).cmp(&sort.key(&b.1));
                    let ord = if sort.descending { ord.reverse() } else { ord };
                    ord.then_with(|| a.0.cmp(&b.0))
                });
                v.truncate(sort.max_results);
                v.into_iter().map(|(k, _)| k).collect()
            }
        };
        Ok(GetTagsResponse {
            next_page_token: next,
            return_size: tags.len() as i64,
            total_size: total,
            tags,
        })
    }
}

const DIMENSION_NAMES: &[&str] = &[
    "AZ",
    "INSTANCE_TYPE",
    "LINKED_ACCOUNT",
    "LINKED_ACCOUNT_NAME",
    "OPERATION",
    "PURCHASE_TYPE",
    "REGION",
    "SERVICE",
    "SERVICE_CODE",
    "USAGE_TYPE",
    "USAGE_TYPE_GROUP",
    "RECORD_TYPE",
    "OPERATING_SYSTEM",
    "TENANCY",
    "SCOPE",
    "PLATFORM",
    "SUBSCRIPTION_ID",
    "LEGAL_ENTITY_NAME",
    "DEPLOYMENT_OPTION",
    "DATABASE_ENGINE",
    "CACHE_ENGINE",
    "INSTANCE_TYPE_FAMILY",
    "BILLING_ENTITY",
    "RESERVATION_ID",
    "RESOURCE_ID",
    "RIGHTSIZING_TYPE",
    "SAVINGS_PLANS_TYPE",
    "SAVINGS_PLAN_ARN",
    "PAYMENT_OPTION",
    "AGREEMENT_END_DATE_TIME_AFTER",
    "AGREEMENT_END_DATE_TIME_BEFORE",
    "INVOICING_ENTITY",
    "ANOMALY_TOTAL_IMPACT_ABSOLUTE",
    "ANOMALY_TOTAL_IMPACT_PERCENTAGE",
];

/// A checked `SortBy` (one definition) with its `MaxResults`.
struct Sort {
    measured: Measured,
    descending: bool,
    max_results: usize,
}

impl Sort {
    fn key(&self, c: &Cell) -> i128 {
        match self.measured {
            Measured::Cost => c.cost.raw(),
            Measured::Usage => c.quantity.raw(),
            Measured::Normalized => c.normalized.raw(),
        }
    }
}

fn parse_sort(
    sort_by: &Option<Vec<SortDefinition>>,
    search: &Option<String>,
    token: &Option<String>,
    max_results: Option<i64>,
) -> Result<Option<Sort>, CeError> {
    if let Some(n) = max_results {
        if n < 1 {
            return Err(CeError::validation(format!(
                "1 validation error detected: Value '{n}' at 'maxResults' failed to satisfy constraint: Member must have value greater than or equal to 1"
            )));
        }
        if n > 1000 {
            return Err(CeError::validation(
                "MaxResults must be less than or equal to 1000",
            ));
        }
    }
    let Some(defs) = sort_by.as_ref().filter(|d| !d.is_empty()) else {
        return Ok(None);
    };
    if search.as_deref().is_some_and(|s| !s.is_empty())
        || token.as_deref().is_some_and(|t| !t.is_empty())
    {
        return Err(CeError::validation(
            "SearchString and NextPageToken are not supported when SortBy is specified",
        ));
    }
    if defs.len() > 1 {
        return Err(CeError::validation(
            "Only one SortBy definition is supported",
        ));
    }
    let d = &defs[0];
    let Some(key) = d.key.as_deref() else {
        return Err(CeError::missing("sortBy.key"));
    };
    let Some(canonical) = METRICS.iter().find(|m| m.eq_ignore_ascii_case(key)) else {
        return Err(CeError::validation(format!(
            "Invalid SortBy key: {key}. Valid keys are {}",
            METRICS.join(", ")
        )));
    };
    let descending = match d.sort_order.as_deref() {
        None | Some("DESCENDING") => true,
        Some("ASCENDING") => false,
        Some(other) => {
            return Err(CeError::not_in_enum(
                "sortBy.sortOrder",
                other,
                &["ASCENDING", "DESCENDING"],
            ))
        }
    };
    Ok(Some(Sort {
        measured: measured(canonical),
        descending,
        max_results: max_results.unwrap_or(1000) as usize,
    }))
}
