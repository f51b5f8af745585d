//! Cost Explorer's `Filter` expressions: validated once, then evaluated per record.
//!
//! Owned here: the checks AWS applies to an `Expression` (one root operator per node,
//! known dimension keys, the match options `GetCostAndUsage` allows) and the evaluation of
//! the compiled tree against a record's dimension values and tags. A record's values do
//! not change over time, so a filter is decided once per record, not per period.

use super::error::CeError;
use super::model::{DimensionValues, Expression, TagValues};
use crate::usage::{Dimension, RecordView};

const MATCH_OPTIONS: &[&str] = &[
    "EQUALS",
    "ABSENT",
    "STARTS_WITH",
    "ENDS_WITH",
    "CONTAINS",
    "CASE_SENSITIVE",
    "CASE_INSENSITIVE",
    "GREATER_THAN_OR_EQUAL",
];

/// A checked filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Filter {
    And(Vec<Filter>),
    Or(Vec<Filter>),
    Not(Box<Filter>),
    Dimension {
        dimension: Dimension,
        values: Vec<String>,
    },
    /// A tag or a cost category: `key` with one of `values`, or (`absent`) without `key`.
    Tag {
        key: String,
        values: Vec<String>,
        absent: bool,
        cost_category: bool,
    },
}

impl Filter {
    pub fn compile(e: &Expression) -> Result<Filter, CeError> {
        let roots = [
            e.and.is_some(),
            e.or.is_some(),
            e.not.is_some(),
            e.dimensions.is_some(),
            e.tags.is_some(),
            e.cost_categories.is_some(),
        ]
        .iter()
        .filter(|present| **present)
        .count();
        if roots > 1 {
            return Err(CeError::validation(
                "Expression has more than one roots. Only one root operator is allowed for each expression: And, Or, Not, Dimensions, Tags, CostCategories",
            ));
        }
        if let Some(list) = &e.and {
            return Ok(Filter::And(compile_list(list, "And")?));
        }
        if let Some(list) = &e.or {
            return Ok(Filter::Or(compile_list(list, "Or")?));
        }
        if let Some(inner) = &e.not {
            return Ok(Filter::Not(Box::new(Filter::compile(inner)?)));
        }
        if let Some(d) = &e.dimensions {
            return compile_dimension(d);
        }
        if let Some(t) = &e.tags {
            return compile_tag(t, false);
        }
        if let Some(c) = &e.cost_categories {
            return compile_tag(c, true);
        }
        Err(CeError::validation(
            "Expression has no root. One root operator is required for each expression: And, Or, Not, Dimensions, Tags, CostCategories",
        ))
    }

    pub fn matches(&self, r: &RecordView<'_>) -> bool {
        match self {
            Filter::And(list) => list.iter().all(|f| f.matches(r)),
            Filter::Or(list) => list.iter().any(|f| f.matches(r)),
            Filter::Not(f) => !f.matches(r),
            Filter::Dimension { dimension, values } => {
                let v = dimension.value_or_placeholder(r);
                values.iter().any(|x| *x == v)
            }
            Filter::Tag {
                key,
                values,
                absent,
                cost_category,
            } => {
                // gureum has no cost categories: every record lacks every one.
                let value = if *cost_category {
                    None
                } else {
                    r.record.tag(key)
                };
                match value {
                    None => *absent || values.iter().any(String::is_empty),
                    Some(v) => values.iter().any(|x| x == v) || (values.is_empty() && !*absent),
                }
            }
        }
    }
}

fn compile_list(list: &[Expression], op: &str) -> Result<Vec<Filter>, CeError> {
    if list.is_empty() {
        return Err(CeError::validation(format!(
            "{op} expression must contain at least one expression"
        )));
    }
    list.iter().map(Filter::compile).collect()
}

fn check_options(options: &[String], allowed: &[&str], what: &str) -> Result<(), CeError> {
    for o in options {
        if !MATCH_OPTIONS.contains(&o.as_str()) {
            return Err(CeError::not_in_enum(
                "filter.matchOptions",
                o,
                MATCH_OPTIONS,
            ));
        }
        if !allowed.contains(&o.as_str()) {
            return Err(CeError::validation(format!(
                "MatchOptions {o} is not supported for {what}. Supported MatchOptions are {}",
                allowed.join(", ")
            )));
        }
    }
    Ok(())
}

fn compile_dimension(d: &DimensionValues) -> Result<Filter, CeError> {
    let key = d.key.as_deref().unwrap_or_default();
    let Some(dimension) = Dimension::parse(key) else {
        return Err(CeError::validation(format!(
            "Dimension {key} is not allowed. Valid values are {}",
            crate::usage::GROUP_BY_DIMENSIONS
                .iter()
                .map(|d| d.name())
                .chain([
                    "USAGE_TYPE_GROUP",
                    "SERVICE_CODE",
                    "LINKED_ACCOUNT_NAME",
                    "RESOURCE_ID"
                ])
                .collect::<Vec<_>>()
                .join(", ")
        )));
    };
    check_options(
        d.match_options.as_deref().unwrap_or_default(),
        &["EQUALS", "CASE_SENSITIVE"],
        "Dimensions",
    )?;
    Ok(Filter::Dimension {
        dimension,
        values: d.values.clone().unwrap_or_default(),
    })
}

fn compile_tag(t: &TagValues, cost_category: bool) -> Result<Filter, CeError> {
    let what = if cost_category {
        "CostCategories"
    } else {
        "Tags"
    };
    let Some(key) = t.key.as_deref().filter(|k| !k.is_empty()) else {
        return Err(CeError::validation(format!("{what} key must not be empty")));
    };
    let options = t.match_options.as_deref().unwrap_or_default();
    check_options(options, &["EQUALS", "ABSENT", "CASE_SENSITIVE"], what)?;
    Ok(Filter::Tag {
        key: key.to_string(),
        values: t.values.clone().unwrap_or_default(),
        absent: options.iter().any(|o| o == "ABSENT"),
        cost_category,
    })
}
