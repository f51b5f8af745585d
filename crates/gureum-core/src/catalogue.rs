//! What the cloud offers, independent of any account: the region and its zones, account
//! attributes, and the instance-type catalogue with its offerings.

use gureum_ec2::ops::catalogue::{Action, Response};
use gureum_ec2::Page;
use gureum_types::instance_types::{InstanceTypeInfo, CATALOGUE};
use gureum_types::model::Filter;
use gureum_types::region::Zone;
use gureum_types::{ApiError, ErrorCode, Region};

use crate::describe::{self, Describable};
use crate::{Cloud, CoreResult};

impl Describable for Region {
    fn filter_values(&self, name: &str) -> Option<Vec<String>> {
        Some(vec![match name {
            "region-name" => self.name.clone(),
            "endpoint" => self.endpoint(),
            "opt-in-status" => "opt-in-not-required".into(),
            _ => return None,
        }])
    }
}

pub fn describe_regions(
    region: &Region,
    names: &[String],
    filters: &[Filter],
) -> Result<Response, ApiError> {
    // Only the region this cloud serves exists here (AWS lists every enabled region).
    if let Some(bad) = names.iter().find(|n| **n != region.name) {
        return Err(ApiError::new(
            ErrorCode::InvalidParameterValue,
            format!("Invalid region: {bad}"),
        ));
    }
    let regions = describe::filter(
        vec![region.clone()],
        filters,
        &["region-name", "endpoint", "opt-in-status"],
        false,
    )?;
    Ok(Response::DescribeRegions(regions))
}

struct ZoneView<'a>(&'a Zone, &'a str);

impl Describable for ZoneView<'_> {
    fn filter_values(&self, name: &str) -> Option<Vec<String>> {
        let (z, region) = (self.0, self.1);
        Some(vec![match name {
            "zone-name" => z.name.clone(),
            "zone-id" => z.id.clone(),
            "region-name" | "group-name" => region.to_string(),
            "state" => "available".into(),
            "zone-type" => "availability-zone".into(),
            "opt-in-status" => "opt-in-not-required".into(),
            "message" | "parent-zone-id" | "parent-zone-name" | "group-long-name" => {
                return Some(vec![])
            }
            _ => return None,
        }])
    }
}

const ZONE_FILTERS: &[&str] = &[
    "zone-name",
    "zone-id",
    "region-name",
    "group-name",
    "group-long-name",
    "state",
    "zone-type",
    "opt-in-status",
    "message",
    "parent-zone-id",
    "parent-zone-name",
];

pub fn describe_zones(
    region: &Region,
    names: &[String],
    ids: &[String],
    filters: &[Filter],
) -> Result<Response, ApiError> {
    for n in names {
        if !region.zones.iter().any(|z| &z.name == n) {
            return Err(ApiError::new(
                ErrorCode::InvalidParameterValue,
                format!("The zone '{n}' does not exist."),
            ));
        }
    }
    for n in ids {
        if !region.zones.iter().any(|z| &z.id == n) {
            return Err(ApiError::new(
                ErrorCode::InvalidParameterValue,
                format!("The zone ID '{n}' does not exist."),
            ));
        }
    }
    describe::validate_filters(filters, ZONE_FILTERS, false)?;
    let zones = region
        .zones
        .iter()
        .filter(|z| names.is_empty() || names.contains(&z.name))
        .filter(|z| ids.is_empty() || ids.contains(&z.id))
        .filter(|z| describe::matches(&ZoneView(z, &region.name), filters))
        .cloned()
        .collect();
    Ok(Response::DescribeAvailabilityZones {
        region: region.name.clone(),
        zones,
    })
}

/// The account attributes AWS reports, with EC2's default quotas.
const ACCOUNT_ATTRIBUTES: &[(&str, &str)] = &[
    ("supported-platforms", "VPC"),
    // The default VPC arrives with the instances issue.
    ("default-vpc", "none"),
    ("max-instances", "20"),
    ("vpc-max-security-groups-per-interface", "5"),
    ("max-elastic-ips", "5"),
    ("vpc-max-elastic-ips", "5"),
];

pub fn describe_account_attributes(names: &[String]) -> Result<Response, ApiError> {
    if let Some(bad) = names
        .iter()
        .find(|n| !ACCOUNT_ATTRIBUTES.iter().any(|(a, _)| a == n))
    {
        return Err(ApiError::new(
            ErrorCode::InvalidParameterValue,
            format!("Value ({bad}) for parameter attributeName is invalid. Unknown attribute name"),
        ));
    }
    Ok(Response::DescribeAccountAttributes(
        ACCOUNT_ATTRIBUTES
            .iter()
            .filter(|(a, _)| names.is_empty() || names.iter().any(|n| n == a))
            .map(|(a, v)| (a.to_string(), vec![v.to_string()]))
            .collect(),
    ))
}

struct TypeView(usize, &'static InstanceTypeInfo);

impl Describable for TypeView {
    fn filter_values(&self, name: &str) -> Option<Vec<String>> {
        self.1.filter_values(name)
    }
}

pub fn describe_instance_types(
    names: &[String],
    filters: &[Filter],
    page: &Page,
) -> Result<Response, ApiError> {
    let missing: Vec<&str> = names
        .iter()
        .filter(|n| !CATALOGUE.iter().any(|t| t.name == n.as_str()))
        .map(|n| n.as_str())
        .collect();
    if !missing.is_empty() {
        return Err(ApiError::new(
            ErrorCode::InvalidInstanceType,
            format!(
                "The following supplied instance types do not exist: [{}]",
                missing.join(", ")
            ),
        ));
    }
    // A filter name is valid if the catalogue knows it (every type answers the same names).
    for f in filters {
        if CATALOGUE
            .first()
            .is_some_and(|t| t.filter_values(&f.name).is_none())
        {
            return Err(ApiError::new(
                ErrorCode::InvalidParameterValue,
                format!("The filter '{}' is invalid", f.name),
            ));
        }
    }
    let items: Vec<TypeView> = CATALOGUE
        .iter()
        .enumerate()
        .filter(|(_, t)| names.is_empty() || names.iter().any(|n| n == t.name))
        .map(|(i, t)| TypeView(i, t))
        .filter(|v| describe::matches(v, filters))
        .collect();
    // Keyset over the catalogue's order (family, then size), which is what people expect.
    let (items, next_token) = describe::paginate(items, |v| format!("{:05}", v.0), page)?;
    Ok(Response::DescribeInstanceTypes {
        types: items.into_iter().map(|v| v.1).collect(),
        next_token,
    })
}

struct Offering(&'static str, String, String);

impl Describable for Offering {
    fn filter_values(&self, name: &str) -> Option<Vec<String>> {
        match name {
            "instance-type" => Some(vec![self.0.to_string()]),
            "location" => Some(vec![self.2.clone()]),
            _ => None,
        }
    }
}

pub fn describe_offerings(
    region: &Region,
    location_type: &str,
    filters: &[Filter],
    page: &Page,
) -> Result<Response, ApiError> {
    let locations: Vec<String> = match location_type {
        "availability-zone" => region.zones.iter().map(|z| z.name.clone()).collect(),
        "availability-zone-id" => region.zones.iter().map(|z| z.id.clone()).collect(),
        _ => vec![region.name.clone()],
    };
    let mut items = Vec::new();
    for loc in &locations {
        for t in CATALOGUE {
            items.push(Offering(t.name, location_type.to_string(), loc.clone()));
        }
    }
    let items = describe::filter(items, filters, &["instance-type", "location"], false)?;
    let keyed: Vec<(String, Offering)> = items
        .into_iter()
        .enumerate()
        .map(|(i, o)| (format!("{i:06}"), o))
        .collect();
    let (page_items, next_token) = describe::paginate(keyed, |(k, _)| k.clone(), page)?;
    Ok(Response::DescribeInstanceTypeOfferings {
        offerings: page_items
            .into_iter()
            .map(|(_, o)| (o.0, o.1, o.2))
            .collect(),
        next_token,
    })
}

impl Cloud {
    /// Run one catalogue action (the same for every account; the dry-run check is
    /// [`Cloud::dispatch`]'s).
    pub(crate) fn dispatch_catalogue(&self, action: Action) -> CoreResult<Response> {
        Ok(match action {
            Action::DescribeRegions {
                region_names,
                filters,
            } => describe_regions(&self.region, &region_names, &filters)?,
            Action::DescribeAvailabilityZones {
                zone_names,
                zone_ids,
                filters,
            } => describe_zones(&self.region, &zone_names, &zone_ids, &filters)?,
            Action::DescribeAccountAttributes { attribute_names } => {
                describe_account_attributes(&attribute_names)?
            }
            Action::DescribeInstanceTypes {
                instance_types,
                filters,
                page,
            } => describe_instance_types(&instance_types, &filters, &page)?,
            Action::DescribeInstanceTypeOfferings {
                location_type,
                filters,
                page,
            } => describe_offerings(&self.region, &location_type, &filters, &page)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(name: &str, v: &str) -> Filter {
        Filter {
            name: name.into(),
            values: vec![v.into()],
        }
    }

    #[test]
    fn zones_and_regions() {
        let r = Region::new("us-east-1").unwrap();
        let Response::DescribeAvailabilityZones { zones, .. } =
            describe_zones(&r, &[], &[], &[f("zone-name", "*b")]).unwrap()
        else {
            panic!()
        };
        assert_eq!(zones.len(), 1);
        assert_eq!(zones[0].name, "us-east-1b");
        assert!(describe_zones(&r, &["us-east-1z".into()], &[], &[]).is_err());
        assert!(describe_regions(&r, &["eu-west-1".into()], &[]).is_err());
    }

    #[test]
    fn instance_types_filters_and_errors() {
        if CATALOGUE.is_empty() {
            return;
        }
        let Response::DescribeInstanceTypes { types, .. } =
            describe_instance_types(&[], &[f("free-tier-eligible", "true")], &Page::default())
                .unwrap()
        else {
            panic!()
        };
        let mut names: Vec<&str> = types.iter().map(|t| t.name).collect();
        names.sort();
        assert_eq!(names, ["t2.micro", "t3.micro"]);
        let e = describe_instance_types(&["t9.huge".into()], &[], &Page::default()).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidInstanceType);
        // Pages of 5 cover the catalogue exactly once.
        let mut seen = Vec::new();
        let mut token = None;
        loop {
            let Response::DescribeInstanceTypes { types, next_token } = describe_instance_types(
                &[],
                &[],
                &Page {
                    max_results: Some(5),
                    next_token: token,
                },
            )
            .unwrap() else {
                panic!()
            };
            seen.extend(types.iter().map(|t| t.name));
            token = next_token;
            if token.is_none() {
                break;
            }
        }
        assert_eq!(seen.len(), CATALOGUE.len());
    }
}
