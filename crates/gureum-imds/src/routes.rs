//! The metadata tree: which paths exist for an instance and what each answers.
//!
//! A pure function of the path and the [`InstanceMetadata`], so every listing and value is
//! tested here against golden strings. Conventions follow EC2's service:
//! - a directory answers a listing, one entry a line, no trailing newline, sub-directories
//!   marked with a trailing `/` (`public-keys/` lists `0=name`, as EC2 does);
//! - a directory or leaf may be asked for with or without one trailing `/`
//!   (cloud-init asks for `dynamic/instance-identity` without one);
//! - anything absent is *not listed* and answers 404: a crawler (cloud-init's
//!   `MetadataMaterializer`) fetches every listed entry and fails on any error, so a listing
//!   never names what cannot be fetched. This is also why `public-ipv4`, `public-hostname`,
//!   `public-keys/`, `user-data` and `tags/` appear only when there is something behind them.
//!
//! Deliberate deviations from EC2, kept small:
//! - every dated version serves the same (latest) tree, where EC2 hides categories newer than
//!   the version asked for;
//! - `dynamic/instance-identity/` offers only `document`: gureum holds no AWS signing key, so
//!   `signature`, `pkcs7` and `rsa2048` are 404 rather than signatures nobody could check;
//! - `iam/`, `identity-credentials/`, `spot/`, `autoscaling/` and the like are absent (404), as on
//!   an EC2 instance without those features.

use std::borrow::Cow;
use std::fmt::Write as _;

use crate::InstanceMetadata;

/// Every version EC2 lists at `/`, oldest first, then `latest`.
///
/// The list through `2021-03-23` is EC2's answer as printed in AWS's own capture (`Content-Length:
/// 274` matches it exactly, with no trailing newline); `2021-07-15` is the build that introduced
/// `autoscaling/target-lifecycle-state` in the EC2 user guide's category table.
pub(crate) const VERSIONS: &[&str] = &[
    "1.0",
    "2007-01-19",
    "2007-03-01",
    "2007-08-29",
    "2007-10-10",
    "2007-12-15",
    "2008-02-01",
    "2008-09-01",
    "2009-04-04",
    "2011-01-01",
    "2011-05-01",
    "2012-01-12",
    "2014-02-25",
    "2014-11-05",
    "2015-10-20",
    "2016-04-19",
    "2016-06-30",
    "2016-09-02",
    "2018-03-28",
    "2018-08-17",
    "2018-09-24",
    "2019-10-01",
    "2020-10-27",
    "2021-01-03",
    "2021-03-23",
    "2021-07-15",
    "latest",
];

/// `VERSIONS` joined by newlines, spelled out so `/` costs nothing (a test keeps them in step).
const VERSION_LISTING: &str = "1.0\n2007-01-19\n2007-03-01\n2007-08-29\n2007-10-10\n2007-12-15\n\
2008-02-01\n2008-09-01\n2009-04-04\n2011-01-01\n2011-05-01\n2012-01-12\n2014-02-25\n2014-11-05\n\
2015-10-20\n2016-04-19\n2016-06-30\n2016-09-02\n2018-03-28\n2018-08-17\n2018-09-24\n2019-10-01\n\
2020-10-27\n2021-01-03\n2021-03-23\n2021-07-15\nlatest";

/// The only IMDSv2 API path; `PUT` on it issues a token.
pub(crate) const TOKEN_PATH: &str = "/latest/api/token";

/// What EC2 answers for an EBS-backed AMI.
const AMI_MANIFEST_PATH: &str = "(unknown)";

/// A found resource.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Body<'a> {
    /// `text/plain`: listings, leaf values, the identity document.
    Text(Cow<'a, str>),
    /// `application/octet-stream`: the user data, byte for byte.
    Binary(&'a [u8]),
}

fn text(s: &str) -> Option<Body<'_>> {
    Some(Body::Text(Cow::Borrowed(s)))
}

fn owned<'a>(s: String) -> Option<Body<'a>> {
    Some(Body::Text(Cow::Owned(s)))
}

/// Joins `items` one a line, with no trailing newline.
fn listing<'a, I, S>(items: I) -> Option<Body<'a>>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let mut out = String::new();
    for item in items {
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(item.as_ref());
    }
    owned(out)
}

/// The resource at `path` (the request's path, without query) for this instance, or `None` for
/// EC2's 404.
pub(crate) fn resolve<'a>(md: &'a InstanceMetadata, path: &str) -> Option<Body<'a>> {
    if path == "/" {
        return text(VERSION_LISTING);
    }
    let rest = path.strip_prefix('/')?;
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let (version, rest) = match rest.split_once('/') {
        Some((version, rest)) => (version, Some(rest)),
        None => (rest, None),
    };
    if !VERSIONS.contains(&version) {
        return None;
    }
    match rest {
        None => {
            if md.user_data.is_some() {
                text("dynamic\nmeta-data\nuser-data")
            } else {
                text("dynamic\nmeta-data")
            }
        }
        Some("meta-data") => meta_data_listing(md),
        Some("user-data") => md.user_data.as_deref().map(Body::Binary),
        Some("dynamic") => text("instance-identity/"),
        Some("dynamic/instance-identity") => text("document"),
        Some("dynamic/instance-identity/document") => owned(identity_document(md)),
        Some(rest) => meta_data(md, rest.strip_prefix("meta-data/")?),
    }
}

fn meta_data_listing(md: &InstanceMetadata) -> Option<Body<'_>> {
    let mut out = String::with_capacity(320);
    out.push_str(
        "ami-id\nami-launch-index\nami-manifest-path\nblock-device-mapping/\nevents/\nhostname\n\
instance-action\ninstance-id\ninstance-life-cycle\ninstance-type\nlocal-hostname\nlocal-ipv4\n\
mac\nnetwork/\nplacement/\nprofile",
    );
    if md.public_hostname.is_some() {
        out.push_str("\npublic-hostname");
    }
    if md.public_ipv4.is_some() {
        out.push_str("\npublic-ipv4");
    }
    if !md.public_keys.is_empty() {
        out.push_str("\npublic-keys/");
    }
    out.push_str("\nreservation-id\nsecurity-groups\nservices/");
    if md.tags.is_some() {
        out.push_str("\ntags/");
    }
    owned(out)
}

/// `path` is below `meta-data/`, without a trailing `/`.
fn meta_data<'a>(md: &'a InstanceMetadata, path: &str) -> Option<Body<'a>> {
    match path {
        "ami-id" => text(&md.ami_id),
        "ami-launch-index" => owned(md.ami_launch_index.to_string()),
        "ami-manifest-path" => text(AMI_MANIFEST_PATH),
        "block-device-mapping" => listing(md.block_device_mapping.iter().map(|(name, _)| name)),
        // No scheduled events, ever: both lists are EC2's empty JSON array.
        "events" => text("maintenance/"),
        "events/maintenance" => text("history\nscheduled"),
        "events/maintenance/history" | "events/maintenance/scheduled" => text("[]"),
        "hostname" | "local-hostname" => text(&md.local_hostname),
        "instance-action" => text("none"),
        "instance-id" => text(&md.instance_id),
        "instance-life-cycle" => text("on-demand"),
        "instance-type" => text(&md.instance_type),
        "local-ipv4" => owned(md.local_ipv4.to_string()),
        "mac" => text(&md.mac),
        "network" => text("interfaces/"),
        "network/interfaces" => text("macs/"),
        "network/interfaces/macs" => owned(format!("{}/", md.mac)),
        "placement" => text("availability-zone\navailability-zone-id\nregion"),
        "placement/availability-zone" => text(&md.availability_zone),
        "placement/availability-zone-id" => text(&md.availability_zone_id),
        "placement/region" => text(&md.region),
        "profile" => text("default-hvm"),
        "public-hostname" => md.public_hostname.as_deref().and_then(text),
        "public-ipv4" => md.public_ipv4.map(|ip| ip.to_string()).and_then(owned),
        "public-keys" if !md.public_keys.is_empty() => listing(
            md.public_keys
                .iter()
                .enumerate()
                .map(|(i, (name, _))| format!("{i}={name}")),
        ),
        "reservation-id" => text(&md.reservation_id),
        "security-groups" => listing(&md.security_groups),
        "services" => text("domain\npartition"),
        "services/domain" => text("amazonaws.com"),
        "services/partition" => text("aws"),
        "tags" => md.tags.as_ref().and_then(|_| text("instance/")),
        "tags/instance" => md
            .tags
            .as_ref()
            .and_then(|tags| listing(tags.iter().map(|(k, _)| k))),
        _ => {
            if let Some(name) = path.strip_prefix("block-device-mapping/") {
                lookup(&md.block_device_mapping, name).and_then(text)
            } else if let Some(rest) = path.strip_prefix("network/interfaces/macs/") {
                interface(md, rest)
            } else if let Some(rest) = path.strip_prefix("public-keys/") {
                public_key(md, rest)
            } else if let Some(key) = path.strip_prefix("tags/instance/") {
                lookup(md.tags.as_deref()?, key).and_then(text)
            } else {
                None
            }
        }
    }
}

fn lookup<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// `public-keys/N` lists `openssh-key`; `public-keys/N/openssh-key` is the key.
fn public_key<'a>(md: &'a InstanceMetadata, path: &str) -> Option<Body<'a>> {
    let (index, leaf) = match path.split_once('/') {
        Some((index, leaf)) => (index, Some(leaf)),
        None => (path, None),
    };
    // Canonical decimal only: `00` or `+0` is not key 0.
    if index.is_empty()
        || !index.bytes().all(|b| b.is_ascii_digit())
        || (index.len() > 1 && index.starts_with('0'))
    {
        return None;
    }
    let (_, key) = md.public_keys.get(index.parse::<usize>().ok()?)?;
    match leaf {
        None => text("openssh-key"),
        Some("openssh-key") => text(key),
        Some(_) => None,
    }
}

/// `network/interfaces/macs/<mac>[/<leaf>]` for the instance's one interface.
fn interface<'a>(md: &'a InstanceMetadata, path: &str) -> Option<Body<'a>> {
    let (mac, leaf) = match path.split_once('/') {
        Some((mac, leaf)) => (mac, Some(leaf)),
        None => (path, None),
    };
    if mac != md.mac {
        return None;
    }
    let Some(leaf) = leaf else {
        return interface_listing(md);
    };
    match leaf {
        "device-number" | "network-card" => text("0"),
        "interface-id" => text(&md.interface_id),
        "ipv4-associations" => md.public_ipv4.map(|ip| ip.to_string()).and_then(owned),
        "local-hostname" => text(&md.local_hostname),
        "local-ipv4s" => owned(md.local_ipv4.to_string()),
        "mac" => text(&md.mac),
        "owner-id" => text(&md.account_id),
        "public-hostname" => md.public_hostname.as_deref().and_then(text),
        "public-ipv4s" => md.public_ipv4.map(|ip| ip.to_string()).and_then(owned),
        "security-group-ids" => listing(&md.security_group_ids),
        "security-groups" => listing(&md.security_groups),
        "subnet-id" => text(&md.subnet_id),
        "subnet-ipv4-cidr-block" => text(&md.subnet_ipv4_cidr_block),
        "vpc-id" => text(&md.vpc_id),
        "vpc-ipv4-cidr-block" | "vpc-ipv4-cidr-blocks" => text(&md.vpc_ipv4_cidr_block),
        _ => {
            // `ipv4-associations/<public ip>` is the private address it maps to.
            let public = leaf.strip_prefix("ipv4-associations/")?;
            (md.public_ipv4?.to_string() == public)
                .then(|| md.local_ipv4.to_string())
                .and_then(owned)
        }
    }
}

fn interface_listing(md: &InstanceMetadata) -> Option<Body<'_>> {
    let public = md.public_ipv4.is_some();
    let mut out = String::with_capacity(320);
    out.push_str("device-number\ninterface-id\n");
    if public {
        out.push_str("ipv4-associations/\n");
    }
    out.push_str("local-hostname\nlocal-ipv4s\nmac\nnetwork-card\nowner-id\n");
    if md.public_hostname.is_some() {
        out.push_str("public-hostname\n");
    }
    if public {
        out.push_str("public-ipv4s\n");
    }
    out.push_str(
        "security-group-ids\nsecurity-groups\nsubnet-id\nsubnet-ipv4-cidr-block\nvpc-id\n\
vpc-ipv4-cidr-block\nvpc-ipv4-cidr-blocks",
    );
    owned(out)
}

/// `dynamic/instance-identity/document`, laid out as EC2 lays it out (two-space indent,
/// `"key" : value`, EC2's key order, the fields gureum has no use for as `null`).
pub(crate) fn identity_document(md: &InstanceMetadata) -> String {
    fn json(s: &str) -> String {
        serde_json::Value::from(s).to_string()
    }
    let mut out = String::with_capacity(512);
    let _ = write!(
        out,
        "{{\n  \"accountId\" : {},\n  \"architecture\" : {},\n  \"availabilityZone\" : {},\n  \
\"billingProducts\" : null,\n  \"devpayProductCodes\" : null,\n  \"marketplaceProductCodes\" : null,\n  \
\"imageId\" : {},\n  \"instanceId\" : {},\n  \"instanceType\" : {},\n  \"kernelId\" : null,\n  \
\"pendingTime\" : {},\n  \"privateIp\" : {},\n  \"ramdiskId\" : null,\n  \"region\" : {},\n  \
\"version\" : \"2017-09-30\"\n}}",
        json(&md.account_id),
        json(md.architecture.as_str()),
        json(&md.availability_zone),
        json(&md.ami_id),
        json(&md.instance_id),
        json(&md.instance_type),
        json(&pending_time(&md.launch_time)),
        json(&md.local_ipv4.to_string()),
        json(&md.region),
    );
    out
}

/// RFC 3339 in, EC2's `2016-11-19T16:32:11Z` out (UTC, whole seconds); anything unparsable is
/// passed through unchanged rather than invented.
fn pending_time(launch_time: &str) -> String {
    use time::format_description::well_known::Rfc3339;
    use time::macros::format_description;
    let Ok(t) = time::OffsetDateTime::parse(launch_time, &Rfc3339) else {
        return launch_time.to_owned();
    };
    t.to_offset(time::UtcOffset::UTC)
        .format(format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second]Z"
        ))
        .unwrap_or_else(|_| launch_time.to_owned())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::{Architecture, HttpTokens};
    use std::net::Ipv4Addr;

    pub(crate) fn sample() -> InstanceMetadata {
        InstanceMetadata {
            instance_id: "i-0123456789abcdef0".into(),
            ami_id: "ami-0abcdef1234567890".into(),
            ami_launch_index: 0,
            instance_type: "t2.micro".into(),
            local_hostname: "ip-172-31-16-5.ec2.internal".into(),
            local_ipv4: Ipv4Addr::new(172, 31, 16, 5),
            mac: "02:42:ac:1f:10:05".into(),
            interface_id: "eni-0123456789abcdef0".into(),
            public_ipv4: Some(Ipv4Addr::new(127, 100, 0, 7)),
            public_hostname: Some("ec2-127-100-0-7.compute-1.amazonaws.com".into()),
            availability_zone: "us-east-1a".into(),
            availability_zone_id: "use1-az1".into(),
            region: "us-east-1".into(),
            reservation_id: "r-0123456789abcdef0".into(),
            security_groups: vec!["default".into(), "web".into()],
            security_group_ids: vec!["sg-0000000000000000a".into(), "sg-0000000000000000b".into()],
            public_keys: vec![(
                "demo".into(),
                "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHx demo".into(),
            )],
            user_data: Some(b"#!/bin/sh\necho hi\n".to_vec()),
            block_device_mapping: vec![
                ("ami".into(), "/dev/xvda".into()),
                ("root".into(), "/dev/xvda".into()),
            ],
            vpc_id: "vpc-0123456789abcdef0".into(),
            subnet_id: "subnet-0123456789abcdef0".into(),
            subnet_ipv4_cidr_block: "172.31.16.0/20".into(),
            vpc_ipv4_cidr_block: "172.31.0.0/16".into(),
            account_id: "123456789012".into(),
            architecture: Architecture::X86_64,
            launch_time: "2024-05-06T07:08:09.123+02:00".into(),
            http_tokens: HttpTokens::Optional,
            http_endpoint: crate::HttpEndpoint::Enabled,
            hop_limit: 1,
            tags: Some(vec![
                ("Name".into(), "web-1".into()),
                ("env".into(), "dev".into()),
            ]),
        }
    }

    /// A bare instance: no public address, keys, user data or tags.
    pub(crate) fn bare() -> InstanceMetadata {
        InstanceMetadata {
            public_ipv4: None,
            public_hostname: None,
            public_keys: vec![],
            user_data: None,
            tags: None,
            ..sample()
        }
    }

    fn get(md: &InstanceMetadata, path: &str) -> Option<String> {
        resolve(md, path).map(|body| match body {
            Body::Text(t) => t.into_owned(),
            Body::Binary(b) => format!("<binary {}>", String::from_utf8_lossy(b)),
        })
    }

    #[test]
    fn version_listing_matches_versions_and_aws_length() {
        assert_eq!(VERSION_LISTING, VERSIONS.join("\n"));
        // AWS's published capture (through 2021-03-23) is 274 bytes; we add one version.
        assert_eq!(VERSION_LISTING.len(), 274 + "\n2021-07-15".len());
        assert_eq!(get(&sample(), "/").as_deref(), Some(VERSION_LISTING));
    }

    #[test]
    fn version_roots() {
        let md = sample();
        for path in ["/latest", "/latest/", "/2009-04-04/", "/1.0"] {
            assert_eq!(
                get(&md, path).as_deref(),
                Some("dynamic\nmeta-data\nuser-data"),
                "{path}"
            );
        }
        assert_eq!(
            get(&bare(), "/latest/").as_deref(),
            Some("dynamic\nmeta-data")
        );
        for path in ["/2030-01-01/", "/LATEST/", "//", "/latest//meta-data", ""] {
            assert_eq!(get(&md, path), None, "{path}");
        }
    }

    #[test]
    fn meta_data_listing_full() {
        let want = "ami-id\nami-launch-index\nami-manifest-path\nblock-device-mapping/\nevents/\n\
hostname\ninstance-action\ninstance-id\ninstance-life-cycle\ninstance-type\nlocal-hostname\n\
local-ipv4\nmac\nnetwork/\nplacement/\nprofile\npublic-hostname\npublic-ipv4\npublic-keys/\n\
reservation-id\nsecurity-groups\nservices/\ntags/";
        assert_eq!(get(&sample(), "/latest/meta-data/").as_deref(), Some(want));
        assert_eq!(get(&sample(), "/latest/meta-data").as_deref(), Some(want));
    }

    #[test]
    fn meta_data_listing_bare_names_only_what_exists() {
        let want = "ami-id\nami-launch-index\nami-manifest-path\nblock-device-mapping/\nevents/\n\
hostname\ninstance-action\ninstance-id\ninstance-life-cycle\ninstance-type\nlocal-hostname\n\
local-ipv4\nmac\nnetwork/\nplacement/\nprofile\nreservation-id\nsecurity-groups\nservices/";
        let md = bare();
        assert_eq!(get(&md, "/latest/meta-data/").as_deref(), Some(want));
        for absent in [
            "public-ipv4",
            "public-hostname",
            "public-keys/",
            "public-keys/0/openssh-key",
            "tags/",
            "tags/instance/",
            "tags/instance/Name",
        ] {
            assert_eq!(
                get(&md, &format!("/latest/meta-data/{absent}")),
                None,
                "{absent}"
            );
        }
        assert_eq!(get(&md, "/latest/user-data"), None);
    }

    #[test]
    fn leaves() {
        let md = sample();
        let cases = [
            ("ami-id", "ami-0abcdef1234567890"),
            ("ami-launch-index", "0"),
            ("ami-manifest-path", "(unknown)"),
            ("block-device-mapping/", "ami\nroot"),
            ("block-device-mapping/ami", "/dev/xvda"),
            ("block-device-mapping/root", "/dev/xvda"),
            ("events/", "maintenance/"),
            ("events/maintenance/", "history\nscheduled"),
            ("events/maintenance/scheduled", "[]"),
            ("events/maintenance/history", "[]"),
            ("hostname", "ip-172-31-16-5.ec2.internal"),
            ("instance-action", "none"),
            ("instance-id", "i-0123456789abcdef0"),
            ("instance-id/", "i-0123456789abcdef0"),
            ("instance-life-cycle", "on-demand"),
            ("instance-type", "t2.micro"),
            ("local-hostname", "ip-172-31-16-5.ec2.internal"),
            ("local-ipv4", "172.31.16.5"),
            ("mac", "02:42:ac:1f:10:05"),
            (
                "placement/",
                "availability-zone\navailability-zone-id\nregion",
            ),
            ("placement/availability-zone", "us-east-1a"),
            ("placement/availability-zone-id", "use1-az1"),
            ("placement/region", "us-east-1"),
            ("profile", "default-hvm"),
            ("public-hostname", "ec2-127-100-0-7.compute-1.amazonaws.com"),
            ("public-ipv4", "127.100.0.7"),
            ("public-keys/", "0=demo"),
            ("public-keys/0", "openssh-key"),
            ("public-keys/0/", "openssh-key"),
            (
                "public-keys/0/openssh-key",
                "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHx demo",
            ),
            ("reservation-id", "r-0123456789abcdef0"),
            ("security-groups", "default\nweb"),
            ("services/", "domain\npartition"),
            ("services/domain", "amazonaws.com"),
            ("services/partition", "aws"),
            ("tags/", "instance/"),
            ("tags/instance/", "Name\nenv"),
            ("tags/instance/Name", "web-1"),
            ("tags/instance/env", "dev"),
        ];
        for (path, want) in cases {
            assert_eq!(
                get(&md, &format!("/latest/meta-data/{path}")).as_deref(),
                Some(want),
                "{path}"
            );
        }
    }

    #[test]
    fn network_interface_tree() {
        let md = sample();
        let base = "/latest/meta-data/network/interfaces/macs/02:42:ac:1f:10:05";
        assert_eq!(
            get(&md, "/latest/meta-data/network/").as_deref(),
            Some("interfaces/")
        );
        assert_eq!(
            get(&md, "/latest/meta-data/network/interfaces/").as_deref(),
            Some("macs/")
        );
        assert_eq!(
            get(&md, "/latest/meta-data/network/interfaces/macs/").as_deref(),
            Some("02:42:ac:1f:10:05/")
        );
        let listing = "device-number\ninterface-id\nipv4-associations/\nlocal-hostname\n\
local-ipv4s\nmac\nnetwork-card\nowner-id\npublic-hostname\npublic-ipv4s\nsecurity-group-ids\n\
security-groups\nsubnet-id\nsubnet-ipv4-cidr-block\nvpc-id\nvpc-ipv4-cidr-block\n\
vpc-ipv4-cidr-blocks";
        assert_eq!(get(&md, &format!("{base}/")).as_deref(), Some(listing));
        let cases = [
            ("device-number", "0"),
            ("network-card", "0"),
            ("interface-id", "eni-0123456789abcdef0"),
            ("ipv4-associations/", "127.100.0.7"),
            ("ipv4-associations/127.100.0.7", "172.31.16.5"),
            ("local-hostname", "ip-172-31-16-5.ec2.internal"),
            ("local-ipv4s", "172.31.16.5"),
            ("mac", "02:42:ac:1f:10:05"),
            ("owner-id", "123456789012"),
            ("public-hostname", "ec2-127-100-0-7.compute-1.amazonaws.com"),
            ("public-ipv4s", "127.100.0.7"),
            (
                "security-group-ids",
                "sg-0000000000000000a\nsg-0000000000000000b",
            ),
            ("security-groups", "default\nweb"),
            ("subnet-id", "subnet-0123456789abcdef0"),
            ("subnet-ipv4-cidr-block", "172.31.16.0/20"),
            ("vpc-id", "vpc-0123456789abcdef0"),
            ("vpc-ipv4-cidr-block", "172.31.0.0/16"),
            ("vpc-ipv4-cidr-blocks", "172.31.0.0/16"),
        ];
        for (leaf, want) in cases {
            assert_eq!(
                get(&md, &format!("{base}/{leaf}")).as_deref(),
                Some(want),
                "{leaf}"
            );
        }
        assert_eq!(
            get(&md, &format!("{base}/ipv4-associations/10.0.0.1")),
            None
        );
        assert_eq!(
            get(
                &md,
                "/latest/meta-data/network/interfaces/macs/02:42:ac:1f:10:06/"
            ),
            None
        );

        let bare = bare();
        let listing = "device-number\ninterface-id\nlocal-hostname\nlocal-ipv4s\nmac\n\
network-card\nowner-id\nsecurity-group-ids\nsecurity-groups\nsubnet-id\nsubnet-ipv4-cidr-block\n\
vpc-id\nvpc-ipv4-cidr-block\nvpc-ipv4-cidr-blocks";
        assert_eq!(get(&bare, &format!("{base}/")).as_deref(), Some(listing));
        for absent in ["public-ipv4s", "public-hostname", "ipv4-associations/"] {
            assert_eq!(get(&bare, &format!("{base}/{absent}")), None, "{absent}");
        }
    }

    #[test]
    fn every_listed_entry_is_fetchable() {
        // What cloud-init's crawler does: walk every listing, fetch every entry.
        fn walk(md: &InstanceMetadata, url: &str, seen: &mut usize) {
            let Some(Body::Text(body)) = resolve(md, url) else {
                panic!("{url} is listed but not served");
            };
            *seen += 1;
            if !url.ends_with('/') {
                return;
            }
            for entry in body.lines() {
                let child = match entry.split_once('=') {
                    Some((index, _)) => format!("{url}{index}/openssh-key"),
                    None => format!("{url}{entry}"),
                };
                walk(md, &child, seen);
            }
        }
        for md in [sample(), bare()] {
            let mut seen = 0;
            walk(&md, "/latest/meta-data/", &mut seen);
            walk(&md, "/latest/dynamic/", &mut seen);
            assert!(seen > 40, "{seen}");
        }
    }

    #[test]
    fn public_key_indices_are_canonical() {
        let md = sample();
        for bad in ["1", "00", "+0", "-0", "0x0", "0/other", "0/openssh-key/x"] {
            assert_eq!(
                get(&md, &format!("/latest/meta-data/public-keys/{bad}")),
                None,
                "{bad}"
            );
        }
    }

    #[test]
    fn unknown_paths_are_404() {
        let md = sample();
        for path in [
            "/latest/meta-data/iam/",
            "/latest/meta-data/iam/security-credentials/",
            "/latest/meta-data/nope",
            "/latest/meta-data/ami-id/extra",
            "/latest/meta-data/tags/instance/Nope",
            "/latest/meta-data/block-device-mapping/ebs1",
            "/latest/dynamic/instance-identity/signature",
            "/latest/dynamic/instance-identity/pkcs7",
            "/latest/api/token",
            "/meta-data/",
            "/favicon.ico",
        ] {
            assert_eq!(get(&md, path), None, "{path}");
        }
    }

    #[test]
    fn user_data_is_binary_and_exact() {
        let mut md = sample();
        md.user_data = Some(vec![0, 159, 146, 150, b'\n']);
        assert_eq!(
            resolve(&md, "/latest/user-data"),
            Some(Body::Binary(&[0, 159, 146, 150, b'\n'][..]))
        );
        md.user_data = Some(vec![]);
        assert_eq!(
            resolve(&md, "/latest/user-data"),
            Some(Body::Binary(&[][..]))
        );
    }

    #[test]
    fn dynamic_tree_and_identity_document() {
        let md = sample();
        assert_eq!(
            get(&md, "/latest/dynamic/").as_deref(),
            Some("instance-identity/")
        );
        assert_eq!(
            get(&md, "/latest/dynamic/instance-identity").as_deref(),
            Some("document")
        );
        let want = r#"{
  "accountId" : "123456789012",
  "architecture" : "x86_64",
  "availabilityZone" : "us-east-1a",
  "billingProducts" : null,
  "devpayProductCodes" : null,
  "marketplaceProductCodes" : null,
  "imageId" : "ami-0abcdef1234567890",
  "instanceId" : "i-0123456789abcdef0",
  "instanceType" : "t2.micro",
  "kernelId" : null,
  "pendingTime" : "2024-05-06T05:08:09Z",
  "privateIp" : "172.31.16.5",
  "ramdiskId" : null,
  "region" : "us-east-1",
  "version" : "2017-09-30"
}"#;
        assert_eq!(
            get(&md, "/latest/dynamic/instance-identity/document").as_deref(),
            Some(want)
        );
        let parsed: serde_json::Value = serde_json::from_str(want).unwrap();
        assert_eq!(parsed["instanceId"], "i-0123456789abcdef0");
    }

    #[test]
    fn identity_document_escapes_and_passes_odd_times_through() {
        let mut md = sample();
        md.instance_type = "t2.\"odd\"\n".into();
        md.launch_time = "not a time".into();
        let doc: serde_json::Value = serde_json::from_str(&identity_document(&md)).unwrap();
        assert_eq!(doc["instanceType"], "t2.\"odd\"\n");
        assert_eq!(doc["pendingTime"], "not a time");
        md.launch_time = "2024-01-02T03:04:05Z".into();
        let doc: serde_json::Value = serde_json::from_str(&identity_document(&md)).unwrap();
        assert_eq!(doc["pendingTime"], "2024-01-02T03:04:05Z");
    }
}
