//! Cost Explorer's request and response shapes, named as in botocore's `ce` model
//! (`2017-10-25/service-2.json`).
//!
//! Requests are lenient at this layer (every member optional, enums as strings) so that
//! validation can answer with Cost Explorer's own messages; responses serialize exactly the
//! members AWS returns.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `DateInterval`: `Start` inclusive, `End` exclusive, `YYYY-MM-DD` or
/// `YYYY-MM-DDThh:mm:ssZ`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DateInterval {
    #[serde(default)]
    pub start: Option<String>,
    #[serde(default)]
    pub end: Option<String>,
}

/// `Expression`: exactly one of its members.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Expression {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub or: Option<Vec<Expression>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub and: Option<Vec<Expression>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not: Option<Box<Expression>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dimensions: Option<DimensionValues>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<TagValues>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_categories: Option<TagValues>,
}

/// `DimensionValues`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DimensionValues {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_options: Option<Vec<String>>,
}

/// `TagValues` (and `CostCategoryValues`, which has the same members).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TagValues {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_options: Option<Vec<String>>,
}

/// `GroupDefinition`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GroupDefinition {
    #[serde(rename = "Type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

/// `GetCostAndUsageRequest`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetCostAndUsageRequest {
    #[serde(default)]
    pub time_period: Option<DateInterval>,
    #[serde(default)]
    pub granularity: Option<String>,
    #[serde(default)]
    pub filter: Option<Expression>,
    #[serde(default)]
    pub metrics: Option<Vec<String>>,
    #[serde(default)]
    pub group_by: Option<Vec<GroupDefinition>>,
    #[serde(default)]
    pub next_page_token: Option<String>,
}

/// `MetricValue`: an amount as a decimal string and its unit (`USD`, `N/A`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MetricValue {
    pub amount: String,
    pub unit: String,
}

/// `Group`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Group {
    pub keys: Vec<String>,
    pub metrics: BTreeMap<String, MetricValue>,
}

/// `ResultByTime`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ResultByTime {
    pub time_period: DateInterval,
    pub total: BTreeMap<String, MetricValue>,
    pub groups: Vec<Group>,
    pub estimated: bool,
}

/// `DimensionValuesWithAttributes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DimensionValuesWithAttributes {
    pub value: String,
    pub attributes: BTreeMap<String, String>,
}

/// `GetCostAndUsageResponse`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetCostAndUsageResponse {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_page_token: Option<String>,
    pub group_definitions: Vec<GroupDefinition>,
    pub results_by_time: Vec<ResultByTime>,
    pub dimension_value_attributes: Vec<DimensionValuesWithAttributes>,
}

/// `GetCostForecastRequest`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetCostForecastRequest {
    #[serde(default)]
    pub time_period: Option<DateInterval>,
    #[serde(default)]
    pub metric: Option<String>,
    #[serde(default)]
    pub granularity: Option<String>,
    #[serde(default)]
    pub filter: Option<Expression>,
    #[serde(default)]
    pub prediction_interval_level: Option<i64>,
}

/// `ForecastResult`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ForecastResult {
    pub time_period: DateInterval,
    pub mean_value: String,
    pub prediction_interval_lower_bound: String,
    pub prediction_interval_upper_bound: String,
}

/// `GetCostForecastResponse`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetCostForecastResponse {
    pub total: MetricValue,
    pub forecast_results_by_time: Vec<ForecastResult>,
}

/// `SortDefinition`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SortDefinition {
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default)]
    pub sort_order: Option<String>,
}

/// `GetDimensionValuesRequest`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetDimensionValuesRequest {
    #[serde(default)]
    pub search_string: Option<String>,
    #[serde(default)]
    pub time_period: Option<DateInterval>,
    #[serde(default)]
    pub dimension: Option<String>,
    #[serde(default)]
    pub context: Option<String>,
    #[serde(default)]
    pub filter: Option<Expression>,
    #[serde(default)]
    pub sort_by: Option<Vec<SortDefinition>>,
    #[serde(default)]
    pub max_results: Option<i64>,
    #[serde(default)]
    pub next_page_token: Option<String>,
}

/// `GetDimensionValuesResponse`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetDimensionValuesResponse {
    pub dimension_values: Vec<DimensionValuesWithAttributes>,
    pub return_size: i64,
    pub total_size: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_page_token: Option<String>,
}

/// `GetTagsRequest`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetTagsRequest {
    #[serde(default)]
    pub search_string: Option<String>,
    #[serde(default)]
    pub time_period: Option<DateInterval>,
    #[serde(default)]
    pub tag_key: Option<String>,
    #[serde(default)]
    pub filter: Option<Expression>,
    #[serde(default)]
    pub sort_by: Option<Vec<SortDefinition>>,
    #[serde(default)]
    pub max_results: Option<i64>,
    #[serde(default)]
    pub next_page_token: Option<String>,
}

/// `GetTagsResponse`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetTagsResponse {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_page_token: Option<String>,
    pub tags: Vec<String>,
    pub return_size: i64,
    pub total_size: i64,
}
