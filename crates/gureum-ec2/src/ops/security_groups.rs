//! Security groups and their rules: `CreateSecurityGroup`, `DeleteSecurityGroup`,
//! `DescribeSecurityGroups`, `AuthorizeSecurityGroupIngress`/`Egress`,
//! `RevokeSecurityGroupIngress`/`Egress`, `DescribeSecurityGroupRules`,
//! `ModifySecurityGroupRules`.

use gureum_types::model::{Filter, SecurityGroup, SecurityGroupRule, Tag, TagSpecification};
use gureum_types::{ApiError, ErrorCode, IpProtocol};

use crate::action::{take_page, Page};
use crate::ops::{Op, Resource};
use crate::params::Params;
use crate::render::tag_set;
use crate::xml::Xml;

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    CreateSecurityGroup {
        group_name: String,
        description: String,
        vpc_id: Option<String>,
        tag_specifications: Vec<TagSpecification>,
    },
    /// By id or name (a name means the default VPC's group of that name).
    DeleteSecurityGroup {
        group_id: Option<String>,
        group_name: Option<String>,
    },
    DescribeSecurityGroups {
        group_ids: Vec<String>,
        group_names: Vec<String>,
        filters: Vec<Filter>,
        page: Page,
    },
    /// `AuthorizeSecurityGroupIngress` / `AuthorizeSecurityGroupEgress`.
    AuthorizeSecurityGroup {
        egress: bool,
        group_id: Option<String>,
        group_name: Option<String>,
        permissions: Vec<Permission>,
        tag_specifications: Vec<TagSpecification>,
    },
    /// `RevokeSecurityGroupIngress` / `RevokeSecurityGroupEgress`.
    RevokeSecurityGroup {
        egress: bool,
        group_id: Option<String>,
        group_name: Option<String>,
        permissions: Vec<Permission>,
        rule_ids: Vec<String>,
    },
    DescribeSecurityGroupRules {
        rule_ids: Vec<String>,
        filters: Vec<Filter>,
        page: Page,
    },
    /// Change rules in place, by id.
    ModifySecurityGroupRules {
        group_id: String,
        rules: Vec<(String, RuleUpdate)>,
    },
}

/// `ModifySecurityGroupRules`' new definition of one rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleUpdate {
    /// As in [`Permission`].
    pub protocol: IpProtocol,
    pub from_port: Option<i32>,
    pub to_port: Option<i32>,
    pub cidr_ipv4: Option<String>,
    pub cidr_ipv6: Option<String>,
    pub referenced_group_id: Option<String>,
    pub description: Option<String>,
}

/// One IP permission of an authorize or revoke call, normalised: the protocol parsed, ports
/// absent for `-1` and other protocol numbers (every port).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permission {
    pub protocol: IpProtocol,
    pub from_port: Option<i32>,
    pub to_port: Option<i32>,
    /// (CIDR, description)
    pub ipv4_ranges: Vec<(String, Option<String>)>,
    pub ipv6_ranges: Vec<(String, Option<String>)>,
    pub groups: Vec<GroupRef>,
}

/// A security group named by a rule, by id or (in the default VPC) by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupRef {
    pub group_id: Option<String>,
    pub group_name: Option<String>,
    pub description: Option<String>,
}

#[derive(Debug, Clone)]
pub enum Response {
    CreateSecurityGroup {
        group_id: String,
        owner_id: String,
        region: String,
        tags: Vec<Tag>,
    },
    DeleteSecurityGroup {
        group_id: String,
    },
    DescribeSecurityGroups {
        groups: Vec<SecurityGroup>,
        region: String,
        next_token: Option<String>,
    },
    /// `AuthorizeSecurityGroup*`: the rules added.
    RulesAdded(Vec<SecurityGroupRule>),
    DescribeSecurityGroupRules {
        rules: Vec<SecurityGroupRule>,
        next_token: Option<String>,
    },
    /// `RevokeSecurityGroup*`, `ModifySecurityGroupRules`: `<return>true</return>`.
    Return,
}

impl Resource for Action {
    type Response = Response;

    const OPS: &'static [Op<Action>] = &[
        Op::write("CreateSecurityGroup", |p| {
            Ok(Action::CreateSecurityGroup {
                group_name: p.required("GroupName")?,
                description: p.required("GroupDescription")?,
                vpc_id: p.take("VpcId").filter(|v| !v.is_empty()),
                tag_specifications: p.take_tag_specifications()?,
            })
        }),
        Op::write("DeleteSecurityGroup", |p| {
            let group_id = p.take("GroupId").filter(|v| !v.is_empty());
            let group_name = p.take("GroupName").filter(|v| !v.is_empty());
            if group_id.is_none() && group_name.is_none() {
                return Err(ApiError::new(
                    ErrorCode::MissingParameter,
                    "The request must contain the parameter groupName or groupId",
                ));
            }
            Ok(Action::DeleteSecurityGroup {
                group_id,
                group_name,
            })
        }),
        Op::read("DescribeSecurityGroups", |p| {
            Ok(Action::DescribeSecurityGroups {
                group_ids: p.take_list("GroupId")?,
                group_names: p.take_list("GroupName")?,
                filters: p.take_filters()?,
                page: take_page(p, 5, 1000)?,
            })
        }),
        Op::write("AuthorizeSecurityGroupIngress", |p| {
            parse_authorize(p, false)
        }),
        Op::write("AuthorizeSecurityGroupEgress", |p| parse_authorize(p, true)),
        Op::write("RevokeSecurityGroupIngress", |p| parse_revoke(p, false)),
        Op::write("RevokeSecurityGroupEgress", |p| parse_revoke(p, true)),
        Op::read("DescribeSecurityGroupRules", |p| {
            Ok(Action::DescribeSecurityGroupRules {
                rule_ids: p.take_list("SecurityGroupRuleId")?,
                filters: p.take_filters()?,
                page: take_page(p, 5, 1000)?,
            })
        }),
        Op::write("ModifySecurityGroupRules", |p| {
            let group_id = p.required("GroupId")?;
            let mut rules = Vec::new();
            for mut r in p.take_struct_list("SecurityGroupRule")? {
                let id = r
                    .take("SecurityGroupRuleId")
                    .ok_or_else(|| ApiError::missing_parameter("SecurityGroupRuleId"))?;
                let mut def = r.take_struct("SecurityGroupRule");
                let raw = def
                    .take("IpProtocol")
                    .ok_or_else(|| ApiError::missing_parameter("IpProtocol"))?;
                let from = port("FromPort", def.take_i64("FromPort")?)?;
                let to = port("ToPort", def.take_i64("ToPort")?)?;
                let (protocol, from_port, to_port) = finish_permission(&raw, from, to)?;
                let update = RuleUpdate {
                    protocol,
                    from_port,
                    to_port,
                    cidr_ipv4: def.take("CidrIpv4"),
                    cidr_ipv6: def.take("CidrIpv6"),
                    referenced_group_id: def.take("ReferencedGroupId"),
                    description: def.take("Description"),
                };
                def.take("PrefixListId");
                def.finish()?;
                r.finish()?;
                let peers = [
                    update.cidr_ipv4.is_some(),
                    update.cidr_ipv6.is_some(),
                    update.referenced_group_id.is_some(),
                ];
                if peers.iter().filter(|b| **b).count() != 1 {
                    return Err(ApiError::new(
                        ErrorCode::InvalidParameterCombination,
                        "Exactly one of CidrIpv4, CidrIpv6, PrefixListId or ReferencedGroupId must be specified",
                    ));
                }
                rules.push((id, update));
            }
            if rules.is_empty() {
                return Err(ApiError::missing_parameter("SecurityGroupRule"));
            }
            Ok(Action::ModifySecurityGroupRules { group_id, rules })
        }),
    ];

    fn name(&self) -> &'static str {
        match self {
            Action::CreateSecurityGroup { .. } => "CreateSecurityGroup",
            Action::DeleteSecurityGroup { .. } => "DeleteSecurityGroup",
            Action::DescribeSecurityGroups { .. } => "DescribeSecurityGroups",
            Action::AuthorizeSecurityGroup { egress: false, .. } => "AuthorizeSecurityGroupIngress",
            Action::AuthorizeSecurityGroup { egress: true, .. } => "AuthorizeSecurityGroupEgress",
            Action::RevokeSecurityGroup { egress: false, .. } => "RevokeSecurityGroupIngress",
            Action::RevokeSecurityGroup { egress: true, .. } => "RevokeSecurityGroupEgress",
            Action::DescribeSecurityGroupRules { .. } => "DescribeSecurityGroupRules",
            Action::ModifySecurityGroupRules { .. } => "ModifySecurityGroupRules",
        }
    }
}

fn parse_authorize(p: &mut Params, egress: bool) -> Result<Action, ApiError> {
    let (group_id, group_name) = take_group(p, egress)?;
    let permissions = take_permissions(p)?;
    Ok(Action::AuthorizeSecurityGroup {
        egress,
        group_id,
        group_name,
        permissions,
        tag_specifications: p.take_tag_specifications()?,
    })
}

fn parse_revoke(p: &mut Params, egress: bool) -> Result<Action, ApiError> {
    let (group_id, group_name) = take_group(p, egress)?;
    let rule_ids = p.take_list("SecurityGroupRuleId")?;
    let permissions = take_permissions(p)?;
    if permissions.is_empty() && rule_ids.is_empty() {
        return Err(ApiError::missing_parameter("IpPermissions"));
    }
    Ok(Action::RevokeSecurityGroup {
        egress,
        group_id,
        group_name,
        permissions,
        rule_ids,
    })
}

fn take_group(p: &mut Params, egress: bool) -> Result<(Option<String>, Option<String>), ApiError> {
    let id = p.take("GroupId").filter(|v| !v.is_empty());
    // Egress rules exist only in VPCs, where groups are named by id.
    let name = if egress {
        None
    } else {
        p.take("GroupName").filter(|v| !v.is_empty())
    };
    if id.is_none() && name.is_none() {
        return Err(ApiError::new(
            ErrorCode::MissingParameter,
            "The request must contain the parameter groupName or groupId",
        ));
    }
    Ok((id, name))
}

fn port(name: &str, v: Option<i64>) -> Result<Option<i32>, ApiError> {
    match v {
        None => Ok(None),
        Some(n) if (-1..=65535).contains(&n) => Ok(Some(n as i32)),
        Some(n) => Err(ApiError::invalid_value(
            name,
            &n.to_string(),
            "Ports must be between -1 and 65535.",
        )),
    }
}

/// A permission's protocol and ports as AWS keeps them: tcp and udp need both ports (`-1`
/// and `-1` meaning every port); icmp and icmpv6 take a type and code, each `-1` (every one)
/// when absent; `-1` and any other protocol number cover every port, whatever was given.
fn finish_permission(
    raw: &str,
    from: Option<i32>,
    to: Option<i32>,
) -> Result<(IpProtocol, Option<i32>, Option<i32>), ApiError> {
    let protocol: IpProtocol = raw.parse()?;
    match protocol {
        IpProtocol::All | IpProtocol::Other(_) => Ok((protocol, None, None)),
        IpProtocol::Tcp | IpProtocol::Udp => match (from, to) {
            (Some(f), Some(t)) if f >= 0 && t >= f => Ok((protocol, Some(f), Some(t))),
            (Some(-1), Some(-1)) => Ok((protocol, Some(0), Some(65535))),
            _ => Err(ApiError::new(
                ErrorCode::InvalidParameterValue,
                "Invalid value 'Must specify both from and to ports with TCP/UDP.' for portRange",
            )),
        },
        IpProtocol::Icmp | IpProtocol::Icmpv6 => {
            Ok((protocol, Some(from.unwrap_or(-1)), Some(to.unwrap_or(-1))))
        }
    }
}

/// Both forms of an authorize/revoke call: `IpPermissions.N.*`, and the shorthand
/// (`IpProtocol`, `FromPort`, `ToPort`, `CidrIp`, `SourceSecurityGroupName`).
fn take_permissions(p: &mut Params) -> Result<Vec<Permission>, ApiError> {
    let mut out = Vec::new();
    for mut perm in p.take_struct_list("IpPermissions")? {
        let raw = perm
            .take("IpProtocol")
            .ok_or_else(|| ApiError::missing_parameter("IpProtocol"))?;
        let from = port("FromPort", perm.take_i64("FromPort")?)?;
        let to = port("ToPort", perm.take_i64("ToPort")?)?;
        let (protocol, from_port, to_port) = finish_permission(&raw, from, to)?;
        let mut ipv4_ranges = Vec::new();
        for mut r in perm.take_struct_list("IpRanges")? {
            let cidr = r
                .take("CidrIp")
                .ok_or_else(|| ApiError::missing_parameter("CidrIp"))?;
            ipv4_ranges.push((cidr, r.take("Description")));
            r.finish()?;
        }
        let mut ipv6_ranges = Vec::new();
        for mut r in perm.take_struct_list("Ipv6Ranges")? {
            let cidr = r
                .take("CidrIpv6")
                .ok_or_else(|| ApiError::missing_parameter("CidrIpv6"))?;
            ipv6_ranges.push((cidr, r.take("Description")));
            r.finish()?;
        }
        let mut groups = Vec::new();
        for mut g in perm.take_struct_list("Groups")? {
            groups.push(GroupRef {
                group_id: g.take("GroupId"),
                group_name: g.take("GroupName"),
                description: g.take("Description"),
            });
            g.take("UserId");
            g.take("VpcId");
            g.finish()?;
        }
        perm.take_struct_list("PrefixListIds")?;
        perm.finish()?;
        out.push(Permission {
            protocol,
            from_port,
            to_port,
            ipv4_ranges,
            ipv6_ranges,
            groups,
        });
    }
    let proto = p.take("IpProtocol");
    let cidr = p.take("CidrIp");
    let source = p.take("SourceSecurityGroupName");
    p.take("SourceSecurityGroupOwnerId");
    let from = port("FromPort", p.take_i64("FromPort")?)?;
    let to = port("ToPort", p.take_i64("ToPort")?)?;
    if proto.is_some() || cidr.is_some() || source.is_some() {
        if !out.is_empty() {
            return Err(ApiError::new(
                ErrorCode::InvalidParameterCombination,
                "The parameter 'ipPermissions' may not be used in combination with 'ipProtocol'",
            ));
        }
        // The shorthand: a group name alone means all traffic from that group.
        let raw = proto.unwrap_or_else(|| "-1".into());
        let (protocol, from_port, to_port) = finish_permission(&raw, from, to)?;
        out.push(Permission {
            protocol,
            from_port,
            to_port,
            ipv4_ranges: cidr.into_iter().map(|c| (c, None)).collect(),
            ipv6_ranges: vec![],
            groups: source
                .into_iter()
                .map(|n| GroupRef {
                    group_name: Some(n),
                    ..Default::default()
                })
                .collect(),
        });
    }
    Ok(out)
}

fn sg_arn(region: &str, owner: &str, id: &str) -> String {
    format!("arn:aws:ec2:{region}:{owner}:security-group/{id}")
}

fn rule_xml(x: &mut Xml, r: &SecurityGroupRule) {
    x.leaf("securityGroupRuleId", &r.id)
        .leaf("groupId", &r.group_id)
        .leaf("groupOwnerId", &r.owner_id)
        .bool("isEgress", r.is_egress)
        .leaf_display("ipProtocol", r.protocol)
        .leaf_display("fromPort", r.from_port.unwrap_or(-1))
        .leaf_display("toPort", r.to_port.unwrap_or(-1));
    x.leaf_opt("cidrIpv4", r.cidr_ipv4.as_deref())
        .leaf_opt("cidrIpv6", r.cidr_ipv6.as_deref());
    if let Some(g) = &r.referenced_group_id {
        x.open("referencedGroupInfo")
            .leaf("groupId", g)
            .leaf("userId", &r.owner_id)
            .close("referencedGroupInfo");
    }
    x.leaf_opt("description", r.description.as_deref());
    x.open("tagSet").close("tagSet");
}

/// `ipPermissions` / `ipPermissionsEgress`: rules grouped by protocol and ports, as AWS
/// shows them.
fn permissions_xml(x: &mut Xml, tag: &str, rules: &[&SecurityGroupRule]) {
    let mut keys: Vec<(IpProtocol, Option<i32>, Option<i32>)> = Vec::new();
    for r in rules {
        let k = (r.protocol, r.from_port, r.to_port);
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    x.set(tag, &keys, |x, (proto, from, to)| {
        let same: Vec<&&SecurityGroupRule> = rules
            .iter()
            .filter(|r| r.protocol == *proto && r.from_port == *from && r.to_port == *to)
            .collect();
        x.leaf_display("ipProtocol", proto);
        if let (Some(f), Some(t)) = (from, to) {
            x.leaf_display("fromPort", f).leaf_display("toPort", t);
        }
        x.open("groups");
        for r in same.iter().filter(|r| r.referenced_group_id.is_some()) {
            x.open("item")
                .leaf("userId", &r.owner_id)
                .leaf("groupId", r.referenced_group_id.as_deref().unwrap_or(""));
            x.leaf_opt("description", r.description.as_deref());
            x.close("item");
        }
        x.close("groups").open("ipRanges");
        for r in same.iter().filter(|r| r.cidr_ipv4.is_some()) {
            x.open("item")
                .leaf("cidrIp", r.cidr_ipv4.as_deref().unwrap_or(""));
            x.leaf_opt("description", r.description.as_deref());
            x.close("item");
        }
        x.close("ipRanges").open("ipv6Ranges");
        for r in same.iter().filter(|r| r.cidr_ipv6.is_some()) {
            x.open("item")
                .leaf("cidrIpv6", r.cidr_ipv6.as_deref().unwrap_or(""));
            x.leaf_opt("description", r.description.as_deref());
            x.close("item");
        }
        x.close("ipv6Ranges")
            .open("prefixListIds")
            .close("prefixListIds");
    });
}

impl Response {
    pub(crate) fn write(&self, x: &mut Xml) {
        match self {
            Response::CreateSecurityGroup {
                group_id,
                owner_id,
                region,
                tags,
            } => {
                x.bool("return", true).leaf("groupId", group_id);
                tag_set(x, tags);
                x.leaf("securityGroupArn", &sg_arn(region, owner_id, group_id));
            }
            Response::DeleteSecurityGroup { group_id } => {
                x.bool("return", true).leaf("groupId", group_id);
            }
            Response::DescribeSecurityGroups {
                groups,
                region,
                next_token,
            } => {
                x.set("securityGroupInfo", groups, |x, g| {
                    x.leaf("ownerId", &g.owner_id)
                        .leaf("groupId", &g.id)
                        .leaf("groupName", &g.name)
                        .leaf("groupDescription", &g.description)
                        .leaf("vpcId", &g.vpc_id);
                    let ingress: Vec<&SecurityGroupRule> =
                        g.rules.iter().filter(|r| !r.is_egress).collect();
                    let egress: Vec<&SecurityGroupRule> =
                        g.rules.iter().filter(|r| r.is_egress).collect();
                    permissions_xml(x, "ipPermissions", &ingress);
                    permissions_xml(x, "ipPermissionsEgress", &egress);
                    tag_set(x, &g.tags);
                    x.leaf("securityGroupArn", &sg_arn(region, &g.owner_id, &g.id));
                });
                x.leaf_opt("nextToken", next_token.as_deref());
            }
            Response::RulesAdded(rules) => {
                x.bool("return", true);
                x.set("securityGroupRuleSet", rules, rule_xml);
            }
            Response::DescribeSecurityGroupRules { rules, next_token } => {
                x.set("securityGroupRuleSet", rules, rule_xml);
                x.leaf_opt("nextToken", next_token.as_deref());
            }
            Response::Return => {
                x.bool("return", true);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::action::parse_form;

    /// The one permission of an `AuthorizeSecurityGroupIngress` with `perm` appended.
    fn authorize(perm: &str) -> Result<(IpProtocol, Option<i32>, Option<i32>), ApiError> {
        let r = parse_form(&format!(
            "Action=AuthorizeSecurityGroupIngress&GroupId=sg-1\
             &IpPermissions.1.IpRanges.1.CidrIp=10.0.0.0/8{perm}"
        ))?;
        match r.action.try_into() {
            Ok(Action::AuthorizeSecurityGroup { permissions, .. }) => {
                assert_eq!(permissions.len(), 1);
                let p = &permissions[0];
                Ok((p.protocol, p.from_port, p.to_port))
            }
            Ok(other) => panic!("{other:?}"),
            Err(other) => panic!("{other:?}"),
        }
    }

    #[test]
    fn permission_protocols_parse_into_their_type() {
        let cases = [
            (
                "tcp&IpPermissions.1.FromPort=22&IpPermissions.1.ToPort=22",
                IpProtocol::Tcp,
                Some(22),
                Some(22),
            ),
            (
                "6&IpPermissions.1.FromPort=22&IpPermissions.1.ToPort=23",
                IpProtocol::Tcp,
                Some(22),
                Some(23),
            ),
            (
                "UDP&IpPermissions.1.FromPort=-1&IpPermissions.1.ToPort=-1",
                IpProtocol::Udp,
                Some(0),
                Some(65535),
            ),
            (
                "icmp&IpPermissions.1.FromPort=8&IpPermissions.1.ToPort=-1",
                IpProtocol::Icmp,
                Some(8),
                Some(-1),
            ),
            ("1", IpProtocol::Icmp, Some(-1), Some(-1)),
            // ICMPv6's type and code are optional: absent, every one.
            ("icmpv6", IpProtocol::Icmpv6, Some(-1), Some(-1)),
            (
                "58&IpPermissions.1.FromPort=128&IpPermissions.1.ToPort=0",
                IpProtocol::Icmpv6,
                Some(128),
                Some(0),
            ),
            (
                "-1&IpPermissions.1.FromPort=22&IpPermissions.1.ToPort=22",
                IpProtocol::All,
                None,
                None,
            ),
            ("all", IpProtocol::All, None, None),
            // Another number: that protocol on every port, whatever ports were given.
            (
                "47&IpPermissions.1.FromPort=22&IpPermissions.1.ToPort=22",
                IpProtocol::Other(47),
                None,
                None,
            ),
            ("0", IpProtocol::Other(0), None, None),
            ("255", IpProtocol::Other(255), None, None),
        ];
        for (proto, want, from, to) in cases {
            let got = authorize(&format!("&IpPermissions.1.IpProtocol={proto}"));
            assert_eq!(got, Ok((want, from, to)), "{proto}");
        }
        // The shorthand form parses the same way.
        let r = parse_form(
            "Action=AuthorizeSecurityGroupIngress&GroupName=web&IpProtocol=58&CidrIp=0.0.0.0/0",
        )
        .unwrap();
        let Ok(Action::AuthorizeSecurityGroup { permissions, .. }) = r.action.try_into() else {
            panic!("not an authorize")
        };
        assert_eq!(permissions[0].protocol, IpProtocol::Icmpv6);
    }

    #[test]
    fn unknown_permission_protocols_get_aws_error() {
        for proto in ["256", "-2", "tcp6", "ipv6-icmp", "gre", "", "6.0"] {
            let e = authorize(&format!(
                "&IpPermissions.1.IpProtocol={proto}&IpPermissions.1.FromPort=1&IpPermissions.1.ToPort=2"
            ))
            .unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidParameterValue, "{proto}");
            assert_eq!(
                e.message,
                format!("Invalid value '{proto}' for IP protocol. Unknown protocol."),
            );
        }
        let e = parse_form(
            "Action=ModifySecurityGroupRules&GroupId=sg-1&SecurityGroupRule.1.SecurityGroupRuleId=sgr-1\
             &SecurityGroupRule.1.SecurityGroupRule.IpProtocol=icmp7\
             &SecurityGroupRule.1.SecurityGroupRule.CidrIpv4=10.0.0.0/8",
        )
        .unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidParameterValue);
    }
}
