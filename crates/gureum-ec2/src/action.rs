//! Typed EC2 actions: every supported operation, named exactly as AWS names it, parsed from
//! [`Params`] before anything runs. A variant's fields are the request's parameters after
//! syntactic validation; semantic checks (does the key exist, is the name taken) are the
//! core's. Parsing consumes every parameter it knows, so leftovers become `UnknownParameter`.

use base64::Engine;
use gureum_types::model::{Filter, Tag, TagSpecification};
use gureum_types::{ApiError, ErrorCode};

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

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Only the configured region exists; `AllRegions` changes nothing.
    DescribeRegions {
        region_names: Vec<String>,
        filters: Vec<Filter>,
    },
    DescribeAvailabilityZones {
        zone_names: Vec<String>,
        zone_ids: Vec<String>,
        filters: Vec<Filter>,
    },
    DescribeAccountAttributes {
        attribute_names: Vec<String>,
    },
    DescribeInstanceTypes {
        instance_types: Vec<String>,
        filters: Vec<Filter>,
        page: Page,
    },
    DescribeInstanceTypeOfferings {
        /// `region`, `availability-zone` or `availability-zone-id`.
        location_type: String,
        filters: Vec<Filter>,
        page: Page,
    },
    CreateKeyPair {
        key_name: String,
        /// `rsa` (default) or `ed25519`.
        key_type: String,
        /// `pem` (default) or `ppk`.
        key_format: String,
        tag_specifications: Vec<TagSpecification>,
    },
    ImportKeyPair {
        key_name: String,
        /// The public key file's bytes (the transport's base64 already removed).
        public_key_material: Vec<u8>,
        tag_specifications: Vec<TagSpecification>,
    },
    DescribeKeyPairs {
        key_names: Vec<String>,
        key_pair_ids: Vec<String>,
        filters: Vec<Filter>,
        include_public_key: bool,
    },
    /// Exactly one of the two is given; the core checks which one matches.
    DeleteKeyPair {
        key_name: Option<String>,
        key_pair_id: Option<String>,
    },
    CreateTags {
        resources: Vec<String>,
        tags: Vec<Tag>,
    },
    /// A tag with no value deletes the key whatever its value; with a value, only if it matches.
    DeleteTags {
        resources: Vec<String>,
        tags: Vec<DeleteTag>,
    },
    DescribeTags {
        filters: Vec<Filter>,
        page: Page,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteTag {
    pub key: String,
    pub value: Option<String>,
}

impl Action {
    /// The AWS operation name.
    pub fn name(&self) -> &'static str {
        match self {
            Action::DescribeRegions { .. } => "DescribeRegions",
            Action::DescribeAvailabilityZones { .. } => "DescribeAvailabilityZones",
            Action::DescribeAccountAttributes { .. } => "DescribeAccountAttributes",
            Action::DescribeInstanceTypes { .. } => "DescribeInstanceTypes",
            Action::DescribeInstanceTypeOfferings { .. } => "DescribeInstanceTypeOfferings",
            Action::CreateKeyPair { .. } => "CreateKeyPair",
            Action::ImportKeyPair { .. } => "ImportKeyPair",
            Action::DescribeKeyPairs { .. } => "DescribeKeyPairs",
            Action::DeleteKeyPair { .. } => "DeleteKeyPair",
            Action::CreateTags { .. } => "CreateTags",
            Action::DeleteTags { .. } => "DeleteTags",
            Action::DescribeTags { .. } => "DescribeTags",
        }
    }

    /// Whether the action changes state (and so must never run on a dry run).
    pub fn is_mutating(&self) -> bool {
        matches!(
            self,
            Action::CreateKeyPair { .. }
                | Action::ImportKeyPair { .. }
                | Action::DeleteKeyPair { .. }
                | Action::CreateTags { .. }
                | Action::DeleteTags { .. }
        )
    }
}

/// Every action name gureum implements, for `docs/COMPATIBILITY.md` and its test.
pub const SUPPORTED_ACTIONS: &[&str] = &[
    "CreateKeyPair",
    "CreateTags",
    "DeleteKeyPair",
    "DeleteTags",
    "DescribeAccountAttributes",
    "DescribeAvailabilityZones",
    "DescribeInstanceTypeOfferings",
    "DescribeInstanceTypes",
    "DescribeKeyPairs",
    "DescribeRegions",
    "DescribeTags",
    "ImportKeyPair",
];

fn take_page(p: &mut Params, min: i64, max: i64) -> Result<Page, ApiError> {
    let max_results = match p.take_i64("MaxResults")? {
        None => None,
        Some(n) if (min..=max).contains(&n) => Some(n as u32),
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

fn one_of(name: &str, value: String, allowed: &[&str]) -> Result<String, ApiError> {
    if allowed.contains(&value.as_str()) {
        Ok(value)
    } else {
        Err(ApiError::new(
            ErrorCode::InvalidParameterValue,
            format!(
                "Value ({value}) for parameter {name} is invalid. Valid values are: {}",
                allowed.join(", ")
            ),
        ))
    }
}

/// Parse a request's parameters (without `Action` and `Version`) into a typed [`Request`].
pub fn parse(action: &str, mut p: Params) -> Result<Request, ApiError> {
    let dry_run = p.take_dry_run()?;
    let action = match action {
        "DescribeRegions" => {
            let region_names = p.take_list("RegionName")?;
            let filters = p.take_filters()?;
            p.take_bool("AllRegions")?;
            Action::DescribeRegions {
                region_names,
                filters,
            }
        }
        "DescribeAvailabilityZones" => {
            let zone_names = p.take_list("ZoneName")?;
            let zone_ids = p.take_list("ZoneId")?;
            let filters = p.take_filters()?;
            p.take_bool("AllAvailabilityZones")?;
            Action::DescribeAvailabilityZones {
                zone_names,
                zone_ids,
                filters,
            }
        }
        "DescribeAccountAttributes" => Action::DescribeAccountAttributes {
            attribute_names: p.take_list("AttributeName")?,
        },
        "DescribeInstanceTypes" => {
            let instance_types = p.take_list("InstanceType")?;
            let filters = p.take_filters()?;
            let page = take_page(&mut p, 5, 100)?;
            p.take_bool("IncludeUnsupportedInRegion")?;
            Action::DescribeInstanceTypes {
                instance_types,
                filters,
                page,
            }
        }
        "DescribeInstanceTypeOfferings" => {
            let location_type = one_of(
                "LocationType",
                p.take("LocationType").unwrap_or_else(|| "region".into()),
                &["region", "availability-zone", "availability-zone-id"],
            )?;
            let filters = p.take_filters()?;
            let page = take_page(&mut p, 5, 1000)?;
            Action::DescribeInstanceTypeOfferings {
                location_type,
                filters,
                page,
            }
        }
        "CreateKeyPair" => {
            let key_name = p.required("KeyName")?;
            let key_type = one_of(
                "KeyType",
                p.take("KeyType").unwrap_or_else(|| "rsa".into()),
                &["rsa", "ed25519"],
            )?;
            let key_format = one_of(
                "KeyFormat",
                p.take("KeyFormat").unwrap_or_else(|| "pem".into()),
                &["pem", "ppk"],
            )?;
            Action::CreateKeyPair {
                key_name,
                key_type,
                key_format,
                tag_specifications: p.take_tag_specifications()?,
            }
        }
        "ImportKeyPair" => {
            let key_name = p.required("KeyName")?;
            let material = p.required("PublicKeyMaterial")?;
            let public_key_material = base64::engine::general_purpose::STANDARD
                .decode(material.trim())
                .map_err(|_| {
                    ApiError::new(
                        ErrorCode::InvalidParameterValue,
                        "Value for parameter PublicKeyMaterial is invalid. Invalid base64 encoding",
                    )
                })?;
            Action::ImportKeyPair {
                key_name,
                public_key_material,
                tag_specifications: p.take_tag_specifications()?,
            }
        }
        "DescribeKeyPairs" => Action::DescribeKeyPairs {
            key_names: p.take_list("KeyName")?,
            key_pair_ids: p.take_list("KeyPairId")?,
            filters: p.take_filters()?,
            include_public_key: p.take_bool("IncludePublicKey")?.unwrap_or(false),
        },
        "DeleteKeyPair" => {
            let key_name = p.take("KeyName").filter(|s| !s.is_empty());
            let key_pair_id = p.take("KeyPairId").filter(|s| !s.is_empty());
            if key_name.is_none() && key_pair_id.is_none() {
                return Err(ApiError::new(
                    ErrorCode::MissingParameter,
                    "The request must contain the parameter KeyName or KeyPairId",
                ));
            }
            Action::DeleteKeyPair {
                key_name,
                key_pair_id,
            }
        }
        "CreateTags" => {
            let resources = p.take_list("ResourceId")?;
            if resources.is_empty() {
                return Err(ApiError::missing_parameter("ResourceId"));
            }
            let tags = p.take_tags("Tag")?;
            if tags.is_empty() {
                return Err(ApiError::missing_parameter("Tag"));
            }
            Action::CreateTags { resources, tags }
        }
        "DeleteTags" => {
            let resources = p.take_list("ResourceId")?;
            if resources.is_empty() {
                return Err(ApiError::missing_parameter("ResourceId"));
            }
            let tags = p
                .take_struct_list("Tag")?
                .into_iter()
                .map(|mut t| {
                    let key = t.take("Key").unwrap_or_default();
                    let value = t.take("Value");
                    t.finish()?;
                    Ok(DeleteTag { key, value })
                })
                .collect::<Result<_, ApiError>>()?;
            Action::DeleteTags { resources, tags }
        }
        "DescribeTags" => Action::DescribeTags {
            filters: p.take_filters()?,
            page: take_page(&mut p, 5, 1000)?,
        },
        other => {
            return Err(ApiError::new(
                ErrorCode::InvalidAction,
                format!("The action {other} is not valid for this web service."),
            ))
        }
    };
    p.finish()?;
    Ok(Request { action, dry_run })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_form(form: &str) -> Result<Request, ApiError> {
        let mut p = Params::from_form(form.as_bytes()).unwrap();
        let action = p.take("Action").unwrap();
        p.take("Version");
        parse(&action, p)
    }

    #[test]
    fn describe_key_pairs_as_the_cli_sends_it() {
        let r = parse_form(
            "Action=DescribeKeyPairs&Version=2016-11-15&KeyName.1=a&KeyName.2=b\
             &Filter.1.Name=key-type&Filter.1.Value.1=rsa&IncludePublicKey=true",
        )
        .unwrap();
        assert!(!r.dry_run);
        let Action::DescribeKeyPairs {
            key_names,
            filters,
            include_public_key,
            ..
        } = r.action
        else {
            panic!("wrong action")
        };
        assert_eq!(key_names, vec!["a", "b"]);
        assert_eq!(filters[0].name, "key-type");
        assert!(include_public_key);
    }

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
    fn create_key_pair_validates_enums_and_required_names() {
        assert_eq!(
            parse_form("Action=CreateKeyPair").unwrap_err().code,
            ErrorCode::MissingParameter
        );
        assert_eq!(
            parse_form("Action=CreateKeyPair&KeyName=k&KeyType=dsa")
                .unwrap_err()
                .code,
            ErrorCode::InvalidParameterValue
        );
        let r = parse_form("Action=CreateKeyPair&KeyName=k&DryRun=true").unwrap();
        assert!(r.dry_run);
        assert!(r.action.is_mutating());
    }

    #[test]
    fn max_results_bounds() {
        let e = parse_form("Action=DescribeInstanceTypes&MaxResults=4").unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidParameterValue);
        parse_form("Action=DescribeInstanceTypes&MaxResults=5").unwrap();
    }

    #[test]
    fn import_key_pair_decodes_base64() {
        let r = parse_form("Action=ImportKeyPair&KeyName=k&PublicKeyMaterial=c3NoLXJzYQ%3D%3D")
            .unwrap();
        let Action::ImportKeyPair {
            public_key_material,
            ..
        } = r.action
        else {
            panic!()
        };
        assert_eq!(public_key_material, b"ssh-rsa");
        assert_eq!(
            parse_form("Action=ImportKeyPair&KeyName=k&PublicKeyMaterial=!!")
                .unwrap_err()
                .code,
            ErrorCode::InvalidParameterValue
        );
    }

    #[test]
    fn supported_actions_all_parse() {
        for name in SUPPORTED_ACTIONS {
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
        for a in super::SUPPORTED_ACTIONS {
            assert!(doc.contains(&format!("| `{a}` |")), "{a} missing from docs/COMPATIBILITY.md");
        }
    }
}
