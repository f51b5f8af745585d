//! Parsing a request: [`parse`] takes the dry-run flag, finds the action by name in the
//! resources' tables ([`crate::ops`]), runs its parser, and refuses what is left
//! (`UnknownParameter`). A variant's fields are the request's parameters after syntactic
//! validation; semantic checks (does the key exist, is the name taken) are the core's. The
//! parsing helpers the resources share (pagination, enumerations, base64) live here.

use base64::Engine;
use gureum_types::{ApiError, ErrorCode, WireEnum};

use crate::ops::parse_action;
pub use crate::ops::{supported_actions, Action};
use crate::params::Params;

/// A parsed request: the action and whether it is a dry run.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub action: Action,
    pub dry_run: bool,
}

/// Pagination parameters of a Describe call that supports them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Page {
    pub max_results: Option<u32>,
    pub next_token: Option<String>,
}

/// Parse a request's parameters (without `Action` and `Version`) into a typed [`Request`].
pub fn parse(action: &str, mut p: Params) -> Result<Request, ApiError> {
    let dry_run = p.take_dry_run()?;
    let action = parse_action(action, &mut p).unwrap_or_else(|| {
        Err(ApiError::new(
            ErrorCode::InvalidAction,
            format!("The action {action} is not valid for this web service."),
        ))
    })?;
    p.finish()?;
    Ok(Request { action, dry_run })
}

pub(crate) fn take_page(p: &mut Params, min: i64, max: i64) -> Result<Page, ApiError> {
    take_page_with(p, min, max, false)
}

/// As [`take_page`], for the calls whose documentation says a `MaxResults` above the maximum
/// returns the maximum (`DescribeVolumes`: "if you specify a value larger than 500, only 500
/// items are returned"; the AWS CLI sends 1000 to it).
pub(crate) fn take_page_clamped(p: &mut Params, min: i64, max: i64) -> Result<Page, ApiError> {
    take_page_with(p, min, max, true)
}

fn take_page_with(p: &mut Params, min: i64, max: i64, clamp: bool) -> Result<Page, ApiError> {
    let max_results = match p.take_i64("MaxResults")? {
        None => None,
        Some(n) if (min..=max).contains(&n) => Some(n as u32),
        Some(n) if clamp && n > max => Some(max as u32),
        Some(n) => {
            return Err(ApiError::new(
                ErrorCode::InvalidParameterValue,
                format!(
                    "Value ( {n} ) for parameter maxResults is invalid. \
                     Parameter must be between {min} and {max}."
                ),
            ))
        }
    };
    Ok(Page {
        max_results,
        next_token: p.take("NextToken").filter(|t| !t.is_empty()),
    })
}

pub(crate) fn one_of(name: &str, value: String, allowed: &[&str]) -> Result<String, ApiError> {
    if allowed.contains(&value.as_str()) {
        Ok(value)
    } else {
        Err(not_one_of(name, &value, &allowed.join(", ")))
    }
}

/// Parameter `name` as one of the values of an AWS enumeration, spelt exactly; EC2's message
/// listing the valid values otherwise.
pub(crate) fn one_of_enum<T: WireEnum>(name: &str, value: &str) -> Result<T, ApiError> {
    T::parse(value).ok_or_else(|| not_one_of(name, value, &T::valid_values()))
}

fn not_one_of(name: &str, value: &str, valid: &str) -> ApiError {
    ApiError::new(
        ErrorCode::InvalidParameterValue,
        format!("Value ({value}) for parameter {name} is invalid. Valid values are: {valid}"),
    )
}

pub(crate) fn required_list(p: &mut Params, name: &str) -> Result<Vec<String>, ApiError> {
    let v = p.take_list(name)?;
    if v.is_empty() {
        return Err(ApiError::missing_parameter(&format!("{name}s")));
    }
    Ok(v)
}

pub(crate) fn positive(name: &str, v: Option<i64>) -> Result<Option<u32>, ApiError> {
    match v {
        None => Ok(None),
        Some(n) if n >= 0 && n <= u32::MAX as i64 => Ok(Some(n as u32)),
        Some(n) => Err(ApiError::invalid_value(
            name,
            &n.to_string(),
            "Expected a non-negative integer.",
        )),
    }
}

pub(crate) fn decode_base64(name: &str, v: &str) -> Result<Vec<u8>, ApiError> {
    // AWS accepts user data with or without padding and with line breaks.
    let cleaned: String = v.chars().filter(|c| !c.is_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(&cleaned)
        .or_else(|_| {
            base64::engine::general_purpose::STANDARD_NO_PAD.decode(cleaned.trim_end_matches('='))
        })
        .map_err(|_| {
            ApiError::new(
                ErrorCode::InvalidParameterValue,
                format!("Invalid BASE64 encoding of user data for parameter {name}"),
            )
        })
}

/// Parse a whole form as a client sends it (`Action` and `Version` included).
#[cfg(test)]
pub(crate) fn parse_form(form: &str) -> Result<Request, ApiError> {
    let mut p = Params::from_form(form.as_bytes()).unwrap();
    let action = p.take("Action").unwrap();
    p.take("Version");
    parse(&action, p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_actions_and_parameters() {
        assert_eq!(
            parse_form("Action=LaunchRockets").unwrap_err().code,
            ErrorCode::InvalidAction
        );
        let e = parse_form("Action=DescribeKeyPairs&Bogus=1").unwrap_err();
        assert_eq!(e.code, ErrorCode::UnknownParameter);
        assert_eq!(e.message, "The parameter Bogus is not recognized");
    }

    #[test]
    fn max_results_bounds() {
        let e = parse_form("Action=DescribeInstanceTypes&MaxResults=4").unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidParameterValue);
        parse_form("Action=DescribeInstanceTypes&MaxResults=5").unwrap();
    }

    #[test]
    fn supported_actions_all_parse() {
        for name in supported_actions() {
            let e = parse(name, Params::default());
            if let Err(e) = e {
                assert_ne!(e.code, ErrorCode::InvalidAction, "{name}");
            }
        }
    }
}

#[cfg(test)]
mod compatibility_doc {
    /// docs/COMPATIBILITY.md must list every supported action.
    #[test]
    fn every_supported_action_is_documented() {
        let doc = include_str!("../../../docs/COMPATIBILITY.md");
        for a in super::supported_actions() {
            assert!(
                doc.contains(&format!("| `{a}` |")),
                "{a} missing from docs/COMPATIBILITY.md"
            );
        }
    }
}
