//! Security groups: AWS's semantics for groups and rules (a default group per VPC that admits
//! its own members and allows all egress; default deny for everything else inbound; rules by
//! CIDR or by group; AWS's duplicate, not-found and limit errors), and which instances are in
//! which groups. Enforcement is the network driver's: every change wakes the host agent, which
//! pushes each running instance's effective rules to the kernel.

use std::collections::HashMap;

use gureum_ec2::ops::security_groups::{Action, Response};
use gureum_ec2::ops::security_groups::{GroupRef, Permission, RuleUpdate};
use gureum_ec2::Page;
use gureum_store::security_groups::GroupRow;
use gureum_store::Tx;
use gureum_types::model::{Filter, SecurityGroup, SecurityGroupRule, Tag, TagSpecification};
use gureum_types::{ApiError, ErrorCode, IpProtocol, ResourceId, ResourceKind};
use ipnet::{Ipv4Net, Ipv6Net};

use crate::describe::{self, Describable};
use crate::{tags, Cloud, CoreError, CoreResult, Ctx};

/// AWS's default quota of rules per group and direction.
pub const MAX_RULES_PER_DIRECTION: usize = 60;
pub const DEFAULT_GROUP: &str = "default";

type TagsById = HashMap<String, Vec<Tag>>;

fn group_not_found(what: &str) -> CoreError {
    ApiError::new(
        ErrorCode::InvalidGroupNotFound,
        format!("The security group '{what}' does not exist"),
    )
    .into()
}

fn new_rule(group: &GroupRow, egress: bool, protocol: IpProtocol) -> SecurityGroupRule {
    SecurityGroupRule {
        id: ResourceId::generate(ResourceKind::SecurityGroupRule).to_string(),
        group_id: group.id.clone(),
        owner_id: group.account_id.clone(),
        is_egress: egress,
        protocol,
        from_port: None,
        to_port: None,
        cidr_ipv4: None,
        cidr_ipv6: None,
        referenced_group_id: None,
        description: None,
    }
}

/// Create a group with AWS's default egress rule (all traffic to 0.0.0.0/0). Blocking.
pub(crate) fn create_group_tx(
    tx: &dyn Tx,
    account: &str,
    vpc_id: &str,
    name: &str,
    description: &str,
    now: i64,
) -> CoreResult<GroupRow> {
    let g = GroupRow {
        id: ResourceId::generate(ResourceKind::SecurityGroup).to_string(),
        account_id: account.to_string(),
        vpc_id: vpc_id.to_string(),
        name: name.to_string(),
        description: description.to_string(),
    };
    tx.resources()
        .insert(&g.id, account, "security-group", now)?;
    if !tx.security_groups().insert(&g, now)? {
        return Err(ApiError::new(
            ErrorCode::InvalidGroupDuplicate,
            format!("The security group '{name}' already exists for VPC '{vpc_id}'"),
        )
        .into());
    }
    let mut egress = new_rule(&g, true, IpProtocol::All);
    egress.cidr_ipv4 = Some("0.0.0.0/0".into());
    tx.resources()
        .insert(&egress.id, account, "security-group-rule", now)?;
    tx.security_groups().insert_rule(&egress, now)?;
    Ok(g)
}

/// The default group of a new VPC: members reach each other, everything egresses.
pub(crate) fn create_default_group_tx(
    tx: &dyn Tx,
    account: &str,
    vpc_id: &str,
    now: i64,
) -> CoreResult<()> {
    let g = create_group_tx(
        tx,
        account,
        vpc_id,
        DEFAULT_GROUP,
        "default VPC security group",
        now,
    )?;
    let mut own = new_rule(&g, false, IpProtocol::All);
    own.referenced_group_id = Some(g.id.clone());
    tx.resources()
        .insert(&own.id, account, "security-group-rule", now)?;
    tx.security_groups().insert_rule(&own, now)?;
    Ok(())
}

impl Describable for SecurityGroup {
    fn filter_values(&self, name: &str) -> Option<Vec<String>> {
        let rules = |egress: bool| self.rules.iter().filter(move |r| r.is_egress == egress);
        let field = |egress: bool,
                     f: &dyn Fn(&SecurityGroupRule) -> Option<String>|
         -> Vec<String> { rules(egress).filter_map(f).collect() };
        Some(match name {
            "group-name" => vec![self.name.clone()],
            "group-id" => vec![self.id.clone()],
            "vpc-id" => vec![self.vpc_id.clone()],
            "description" => vec![self.description.clone()],
            "owner-id" => vec![self.owner_id.clone()],
            n => {
                let (egress, rest) = match n.strip_prefix("egress.ip-permission.") {
                    Some(r) => (true, r),
                    None => (false, n.strip_prefix("ip-permission.")?),
                };
                match rest {
                    "protocol" => field(egress, &|r| Some(r.protocol.to_string())),
                    "from-port" => field(egress, &|r| r.from_port.map(|p| p.to_string())),
                    "to-port" => field(egress, &|r| r.to_port.map(|p| p.to_string())),
                    "cidr" => field(egress, &|r| r.cidr_ipv4.clone()),
                    "ipv6-cidr" => field(egress, &|r| r.cidr_ipv6.clone()),
                    "group-id" => field(egress, &|r| r.referenced_group_id.clone()),
                    "user-id" => field(egress, &|r| Some(r.owner_id.clone())),
                    _ => return None,
                }
            }
        })
    }
    fn tags(&self) -> &[Tag] {
        &self.tags
    }
}

struct RuleView(SecurityGroupRule, Vec<Tag>);

impl Describable for RuleView {
    fn filter_values(&self, name: &str) -> Option<Vec<String>> {
        Some(vec![match name {
            "group-id" => self.0.group_id.clone(),
            "security-group-rule-id" => self.0.id.clone(),
            _ => return None,
        }])
    }
    fn tags(&self) -> &[Tag] {
        &self.1
    }
}

const GROUP_FILTERS: &[&str] = &[
    "group-name",
    "group-id",
    "vpc-id",
    "description",
    "owner-id",
    "ip-permission.protocol",
    "ip-permission.from-port",
    "ip-permission.to-port",
    "ip-permission.cidr",
    "ip-permission.ipv6-cidr",
    "ip-permission.group-id",
    "ip-permission.user-id",
    "egress.ip-permission.protocol",
    "egress.ip-permission.from-port",
    "egress.ip-permission.to-port",
    "egress.ip-permission.cidr",
    "egress.ip-permission.ipv6-cidr",
    "egress.ip-permission.group-id",
    "egress.ip-permission.user-id",
];

/// Resolve a group named by id (any VPC of the account) or by name (the default VPC).
fn resolve(
    groups: &[GroupRow],
    default_vpc: &str,
    id: Option<&str>,
    name: Option<&str>,
) -> CoreResult<GroupRow> {
    if let Some(id) = id {
        if ResourceId::parse(ResourceKind::SecurityGroup, id).is_none() {
            return Err(ApiError::new(
                ErrorCode::InvalidParameterValue,
                format!("Invalid id: \"{id}\" (expecting \"sg-...\")"),
            )
            .into());
        }
        return groups
            .iter()
            .find(|g| g.id == id)
            .cloned()
            .ok_or_else(|| group_not_found(id));
    }
    let name = name.unwrap_or_default();
    groups
        .iter()
        .find(|g| g.name == name && g.vpc_id == default_vpc)
        .cloned()
        .ok_or_else(|| group_not_found(name))
}

fn default_vpc_of(tx: &dyn Tx, account: &str) -> CoreResult<String> {
    tx.vpcs()
        .vpcs(account)?
        .into_iter()
        .find(|v| v.is_default)
        .map(|v| v.id)
        .ok_or_else(|| CoreError::Invariant("an account without a default VPC"))
}

/// Expand permissions into rules (one per CIDR or group), validating sources.
fn expand(
    group: &GroupRow,
    egress: bool,
    perms: &[Permission],
    groups: &[GroupRow],
    default_vpc: &str,
) -> CoreResult<Vec<SecurityGroupRule>> {
    let mut out = Vec::new();
    for p in perms {
        let base = |r: &mut SecurityGroupRule| {
            r.from_port = p.from_port;
            r.to_port = p.to_port;
        };
        if p.ipv4_ranges.is_empty() && p.ipv6_ranges.is_empty() && p.groups.is_empty() {
            return Err(ApiError::new(
                ErrorCode::InvalidParameterValue,
                "The request must contain at least one source or destination: a CIDR range or a security group",
            )
            .into());
        }
        for (cidr, desc) in &p.ipv4_ranges {
            let net: Ipv4Net = cidr.parse().map_err(|_| {
                CoreError::Api(ApiError::new(
                    ErrorCode::InvalidParameterValue,
                    format!("CIDR block {cidr} is malformed"),
                ))
            })?;
            let mut r = new_rule(group, egress, p.protocol);
            base(&mut r);
            r.cidr_ipv4 = Some(net.trunc().to_string());
            r.description = desc.clone();
            out.push(r);
        }
        for (cidr, desc) in &p.ipv6_ranges {
            let net: Ipv6Net = cidr.parse().map_err(|_| {
                CoreError::Api(ApiError::new(
                    ErrorCode::InvalidParameterValue,
                    format!("CIDR block {cidr} is malformed"),
                ))
            })?;
            let mut r = new_rule(group, egress, p.protocol);
            base(&mut r);
            r.cidr_ipv6 = Some(net.trunc().to_string());
            r.description = desc.clone();
            out.push(r);
        }
        for GroupRef {
            group_id,
            group_name,
            description,
        } in &p.groups
        {
            let g = resolve(
                groups,
                default_vpc,
                group_id.as_deref(),
                group_name.as_deref(),
            )?;
            let mut r = new_rule(group, egress, p.protocol);
            base(&mut r);
            r.referenced_group_id = Some(g.id);
            r.description = description.clone();
            out.push(r);
        }
    }
    Ok(out)
}

fn describe_rule(r: &SecurityGroupRule) -> String {
    let peer = r
        .cidr_ipv4
        .clone()
        .or(r.cidr_ipv6.clone())
        .or(r.referenced_group_id.clone())
        .unwrap_or_default();
    let proto = match r.protocol {
        IpProtocol::All => "ALL".to_string(),
        p => p.to_string().to_uppercase(),
    };
    format!(
        "peer: {peer}, {proto}, from port: {}, to port: {}, ALLOW",
        r.from_port.unwrap_or(-1),
        r.to_port.unwrap_or(-1)
    )
}

impl Cloud {
    fn models_tx(c: &dyn Tx, account: &str) -> CoreResult<(Vec<SecurityGroup>, TagsById)> {
        let mut tags = c.tags().all_by_resource(account)?;
        let mut rules: HashMap<String, Vec<SecurityGroupRule>> = HashMap::new();
        for r in c.security_groups().rules_of_account(account)? {
            rules.entry(r.group_id.clone()).or_default().push(r);
        }
        let groups = c
            .security_groups()
            .of_account(account)?
            .into_iter()
            .map(|g| SecurityGroup {
                rules: rules.remove(&g.id).unwrap_or_default(),
                tags: tags.remove(&g.id).unwrap_or_default(),
                id: g.id,
                owner_id: g.account_id,
                vpc_id: g.vpc_id,
                name: g.name,
                description: g.description,
            })
            .collect();
        Ok((groups, tags))
    }

    pub(crate) async fn create_security_group(
        &self,
        account: String,
        name: String,
        description: String,
        vpc_id: Option<String>,
        specs: Vec<TagSpecification>,
    ) -> CoreResult<Response> {
        if name.len() > 255 || description.len() > 255 {
            return Err(ApiError::new(
                ErrorCode::InvalidParameterValue,
                "Group names and descriptions are at most 255 characters",
            )
            .into());
        }
        if name.starts_with("sg-") {
            return Err(ApiError::new(
                ErrorCode::InvalidParameterValue,
                "Group names may not be in the format sg-*",
            )
            .into());
        }
        let tags = tags::from_specifications(&specs, ResourceKind::SecurityGroup)?;
        self.ensure_default_vpc(&account).await?;
        let now = self.clock.now_millis();
        let acct = account.clone();
        let g = self
            .blocking(move |s| {
                s.write(|tx| {
                    let vpc = match vpc_id {
                        Some(v) => {
                            if !tx.vpcs().vpcs(&acct)?.iter().any(|x| x.id == v) {
                                return Err(ApiError::new(
                                    ErrorCode::InvalidVpcIDNotFound,
                                    format!("The vpc ID '{v}' does not exist"),
                                )
                                .into());
                            }
                            v
                        }
                        None => default_vpc_of(tx, &acct)?,
                    };
                    let g = create_group_tx(tx, &acct, &vpc, &name, &description, now)?;
                    tx.tags().put(&acct, &g.id, &tags)?;
                    Ok((g, tags))
                })
            })
            .await?;
        Ok(Response::CreateSecurityGroup {
            group_id: g.0.id,
            owner_id: account,
            region: self.region.name.clone(),
            tags: g.1,
        })
    }

    pub(crate) async fn delete_security_group(
        &self,
        account: String,
        id: Option<String>,
        name: Option<String>,
    ) -> CoreResult<Response> {
        self.ensure_default_vpc(&account).await?;
        let gid = self
            .blocking(move |s| {
                s.write(|tx| {
                    let groups = tx.security_groups().of_account(&account)?;
                    let dv = default_vpc_of(tx, &account)?;
                    let g = resolve(&groups, &dv, id.as_deref(), name.as_deref())?;
                    if g.name == DEFAULT_GROUP {
                        return Err(ApiError::new(
                            ErrorCode::CannotDelete,
                            format!("the specified group: \"{}\" name: \"default\" cannot be deleted by a user", g.id),
                        )
                        .into());
                    }
                    if !tx.security_groups().live_members(&g.id)?.is_empty() || !tx.security_groups().referencing_rules(&g.id)?.is_empty() {
                        return Err(ApiError::new(
                            ErrorCode::DependencyViolation,
                            format!("resource {} has a dependent object", g.id),
                        )
                        .into());
                    }
                    tx.resources().delete(&account, &g.id)?;
                    Ok(g.id)
                })
            })
            .await?;
        Ok(Response::DeleteSecurityGroup { group_id: gid })
    }

    pub(crate) async fn describe_security_groups(
        &self,
        account: String,
        ids: Vec<String>,
        names: Vec<String>,
        filters: Vec<Filter>,
        page: Page,
    ) -> CoreResult<Response> {
        describe::validate_filters(&filters, GROUP_FILTERS, true)?;
        self.ensure_default_vpc(&account).await?;
        let acct = account.clone();
        let (groups, default_vpc) = self
            .blocking(move |s| {
                s.read(|c| Ok((Self::models_tx(c, &acct)?.0, default_vpc_of(c, &acct)?)))
            })
            .await?;
        for id in &ids {
            if !groups.iter().any(|g| &g.id == id) {
                return Err(group_not_found(id));
            }
        }
        for n in &names {
            if !groups
                .iter()
                .any(|g| &g.name == n && g.vpc_id == default_vpc)
            {
                return Err(group_not_found(n));
            }
        }
        let items: Vec<SecurityGroup> = groups
            .into_iter()
            .filter(|g| ids.is_empty() || ids.contains(&g.id))
            .filter(|g| names.is_empty() || (names.contains(&g.name) && g.vpc_id == default_vpc))
            .filter(|g| describe::matches(g, &filters))
            .collect();
        let (groups, next_token) = describe::paginate(items, |g| g.id.clone(), &page)?;
        Ok(Response::DescribeSecurityGroups {
            groups,
            region: self.region.name.clone(),
            next_token,
        })
    }

    pub(crate) async fn authorize_security_group(
        &self,
        account: String,
        egress: bool,
        id: Option<String>,
        name: Option<String>,
        perms: Vec<Permission>,
        specs: Vec<TagSpecification>,
    ) -> CoreResult<Response> {
        let rule_tags = tags::from_specifications(&specs, ResourceKind::SecurityGroupRule)?;
        self.ensure_default_vpc(&account).await?;
        let now = self.clock.now_millis();
        let added = self
            .blocking(move |s| {
                s.write(|tx| {
                    let groups = tx.security_groups().of_account(&account)?;
                    let dv = default_vpc_of(tx, &account)?;
                    let g = resolve(&groups, &dv, id.as_deref(), name.as_deref())?;
                    let new = expand(&g, egress, &perms, &groups, &dv)?;
                    let existing: Vec<SecurityGroupRule> = tx
                        .security_groups()
                        .rules_of_account(&account)?
                        .into_iter()
                        .filter(|r| r.group_id == g.id && r.is_egress == egress)
                        .collect();
                    for (i, r) in new.iter().enumerate() {
                        if existing
                            .iter()
                            .chain(&new[..i])
                            .any(|e| e.same_permission(r))
                        {
                            return Err(ApiError::new(
                                ErrorCode::InvalidPermissionDuplicate,
                                format!(
                                    "the specified rule \"{}\" already exists",
                                    describe_rule(r)
                                ),
                            )
                            .into());
                        }
                    }
                    if existing.len() + new.len() > MAX_RULES_PER_DIRECTION {
                        return Err(ApiError::new(
                            ErrorCode::RulesPerSecurityGroupLimitExceeded,
                            "The maximum number of rules per security group has been reached.",
                        )
                        .into());
                    }
                    for r in &new {
                        tx.resources()
                            .insert(&r.id, &account, "security-group-rule", now)?;
                        tx.security_groups().insert_rule(r, now)?;
                        tx.tags().put(&account, &r.id, &rule_tags)?;
                    }
                    Ok(new)
                })
            })
            .await?;
        self.wake_agent();
        Ok(Response::RulesAdded(added))
    }

    pub(crate) async fn revoke_security_group(
        &self,
        account: String,
        egress: bool,
        id: Option<String>,
        name: Option<String>,
        perms: Vec<Permission>,
        rule_ids: Vec<String>,
    ) -> CoreResult<Response> {
        self.ensure_default_vpc(&account).await?;
        self.blocking(move |s| {
            s.write(|tx| {
                let groups = tx.security_groups().of_account(&account)?;
                let dv = default_vpc_of(tx, &account)?;
                let g = resolve(&groups, &dv, id.as_deref(), name.as_deref())?;
                let existing: Vec<SecurityGroupRule> = tx
                    .security_groups()
                    .rules_of_account(&account)?
                    .into_iter()
                    .filter(|r| r.group_id == g.id && r.is_egress == egress)
                    .collect();
                let mut doomed = Vec::new();
                for rid in &rule_ids {
                    match existing.iter().find(|r| &r.id == rid) {
                        Some(r) => doomed.push(r.id.clone()),
                        None => {
                            return Err(ApiError::new(
                                ErrorCode::InvalidSecurityGroupRuleIdNotFound,
                                format!("The security group rule ID '{rid}' does not exist"),
                            )
                            .into())
                        }
                    }
                }
                for r in expand(&g, egress, &perms, &groups, &dv)? {
                    match existing.iter().find(|e| e.same_permission(&r)) {
                        Some(e) => doomed.push(e.id.clone()),
                        None => {
                            return Err(ApiError::new(
                                ErrorCode::InvalidPermissionNotFound,
                                "The specified rule does not exist in this security group.",
                            )
                            .into())
                        }
                    }
                }
                for rid in doomed {
                    tx.resources().delete(&account, &rid)?;
                }
                Ok(())
            })
        })
        .await?;
        self.wake_agent();
        Ok(Response::Return)
    }

    /// `ModifySecurityGroupRules`: each named rule of the group gets a new definition, all or
    /// nothing.
    pub(crate) async fn modify_security_group_rules(
        &self,
        account: String,
        group_id: String,
        updates: Vec<(String, RuleUpdate)>,
    ) -> CoreResult<Response> {
        self.ensure_default_vpc(&account).await?;
        self.blocking(move |s| {
            s.write(|tx| {
                let groups = tx.security_groups().of_account(&account)?;
                let dv = default_vpc_of(tx, &account)?;
                let g = resolve(&groups, &dv, Some(&group_id), None)?;
                let mut rules: Vec<SecurityGroupRule> = tx
                    .security_groups()
                    .rules_of_account(&account)?
                    .into_iter()
                    .filter(|r| r.group_id == g.id)
                    .collect();
                for (rid, u) in &updates {
                    let Some(i) = rules.iter().position(|r| &r.id == rid) else {
                        return Err(ApiError::new(
                            ErrorCode::InvalidSecurityGroupRuleIdNotFound,
                            format!("The security group rule ID '{rid}' does not exist"),
                        )
                        .into());
                    };
                    let perm = Permission {
                        protocol: u.protocol,
                        from_port: u.from_port,
                        to_port: u.to_port,
                        ipv4_ranges: u
                            .cidr_ipv4
                            .iter()
                            .map(|c| (c.clone(), u.description.clone()))
                            .collect(),
                        ipv6_ranges: u
                            .cidr_ipv6
                            .iter()
                            .map(|c| (c.clone(), u.description.clone()))
                            .collect(),
                        groups: u
                            .referenced_group_id
                            .iter()
                            .map(|id| GroupRef {
                                group_id: Some(id.clone()),
                                group_name: None,
                                description: u.description.clone(),
                            })
                            .collect(),
                    };
                    let old = &rules[i];
                    let mut new = expand(&g, old.is_egress, &[perm], &groups, &dv)?
                        .pop()
                        .ok_or_else(|| CoreError::Invariant("a permission expanded to no rule"))?;
                    new.id = old.id.clone();
                    if rules.iter().any(|e| {
                        e.id != new.id && e.is_egress == new.is_egress && e.same_permission(&new)
                    }) {
                        return Err(ApiError::new(
                            ErrorCode::InvalidPermissionDuplicate,
                            format!(
                                "the specified rule \"{}\" already exists",
                                describe_rule(&new)
                            ),
                        )
                        .into());
                    }
                    tx.security_groups().update_rule(&new)?;
                    rules[i] = new;
                }
                Ok(())
            })
        })
        .await?;
        self.wake_agent();
        Ok(Response::Return)
    }

    pub(crate) async fn describe_security_group_rules(
        &self,
        account: String,
        rule_ids: Vec<String>,
        filters: Vec<Filter>,
        page: Page,
    ) -> CoreResult<Response> {
        describe::validate_filters(&filters, &["group-id", "security-group-rule-id"], true)?;
        self.ensure_default_vpc(&account).await?;
        let acct = account.clone();
        let (rules, mut tags) = self
            .blocking(move |s| {
                s.read(|c| {
                    Ok((
                        c.security_groups().rules_of_account(&acct)?,
                        c.tags().all_by_resource(&acct)?,
                    ))
                })
            })
            .await?;
        for rid in &rule_ids {
            if !rules.iter().any(|r| &r.id == rid) {
                return Err(ApiError::new(
                    ErrorCode::InvalidSecurityGroupRuleIdNotFound,
                    format!("The security group rule ID '{rid}' does not exist"),
                )
                .into());
            }
        }
        let mut items: Vec<RuleView> = rules
            .into_iter()
            .filter(|r| rule_ids.is_empty() || rule_ids.contains(&r.id))
            .map(|r| {
                let t = tags.remove(&r.id).unwrap_or_default();
                RuleView(r, t)
            })
            .filter(|v| describe::matches(v, &filters))
            .collect();
        items.sort_by(|a, b| a.0.id.cmp(&b.0.id));
        let (items, next_token) = describe::paginate(items, |v| v.0.id.clone(), &page)?;
        Ok(Response::DescribeSecurityGroupRules {
            rules: items.into_iter().map(|v| v.0).collect(),
            next_token,
        })
    }

    /// Resolve launch groups (ids, or names in the default VPC) for an instance of `account` in
    /// `vpc_id`; the VPC's default group when none is named. Within an open transaction.
    pub(crate) fn launch_groups_tx(
        c: &dyn Tx,
        account: &str,
        vpc_id: &str,
        subnet_id: &str,
        ids: &[String],
        names: &[String],
    ) -> CoreResult<Vec<String>> {
        let groups = c.security_groups().of_account(account)?;
        let dv = default_vpc_of(c, account)?;
        if !names.is_empty() && vpc_id != dv {
            return Err(ApiError::new(
                ErrorCode::InvalidParameterCombination,
                "The parameter groupName cannot be used with the parameter subnet",
            )
            .into());
        }
        let mut out = Vec::new();
        for id in ids {
            let g = resolve(&groups, &dv, Some(id), None)?;
            if g.vpc_id != vpc_id {
                return Err(ApiError::new(
                    ErrorCode::InvalidParameter,
                    format!(
                        "Security group {id} and subnet {subnet_id} belong to different networks."
                    ),
                )
                .into());
            }
            out.push(g.id);
        }
        for n in names {
            out.push(resolve(&groups, &dv, None, Some(n))?.id);
        }
        if out.is_empty() {
            let default = groups
                .iter()
                .find(|g| g.vpc_id == vpc_id && g.name == DEFAULT_GROUP)
                .ok_or_else(|| group_not_found(DEFAULT_GROUP))?;
            out.push(default.id.clone());
        }
        out.dedup();
        Ok(out)
    }

    /// (group id, name) of every instance's groups, for the account.
    pub(crate) fn instance_groups_tx(
        c: &dyn Tx,
        account: &str,
    ) -> CoreResult<HashMap<String, Vec<(String, String)>>> {
        let names: HashMap<String, String> = c
            .security_groups()
            .of_account(account)?
            .into_iter()
            .map(|g| (g.id, g.name))
            .collect();
        let mut out: HashMap<String, Vec<(String, String)>> = HashMap::new();
        for (iid, gid) in c.security_groups().memberships()? {
            if let Some(n) = names.get(&gid) {
                out.entry(iid).or_default().push((gid, n.clone()));
            }
        }
        Ok(out)
    }
}

impl Cloud {
    /// Run one security group action for the calling account (the dry-run check is
    /// [`Cloud::dispatch`]'s).
    pub(crate) async fn dispatch_security_groups(
        &self,
        ctx: &Ctx,
        action: Action,
    ) -> CoreResult<Response> {
        let acct = ctx.account_id.clone();
        Ok(match action {
            Action::CreateSecurityGroup {
                group_name,
                description,
                vpc_id,
                tag_specifications,
            } => {
                self.create_security_group(
                    acct,
                    group_name,
                    description,
                    vpc_id,
                    tag_specifications,
                )
                .await?
            }
            Action::DeleteSecurityGroup {
                group_id,
                group_name,
            } => {
                self.delete_security_group(acct, group_id, group_name)
                    .await?
            }
            Action::DescribeSecurityGroups {
                group_ids,
                group_names,
                filters,
                page,
            } => {
                self.describe_security_groups(acct, group_ids, group_names, filters, page)
                    .await?
            }
            Action::AuthorizeSecurityGroup {
                egress,
                group_id,
                group_name,
                permissions,
                tag_specifications,
            } => {
                self.authorize_security_group(
                    acct,
                    egress,
                    group_id,
                    group_name,
                    permissions,
                    tag_specifications,
                )
                .await?
            }
            Action::RevokeSecurityGroup {
                egress,
                group_id,
                group_name,
                permissions,
                rule_ids,
            } => {
                self.revoke_security_group(
                    acct,
                    egress,
                    group_id,
                    group_name,
                    permissions,
                    rule_ids,
                )
                .await?
            }
            Action::DescribeSecurityGroupRules {
                rule_ids,
                filters,
                page,
            } => {
                self.describe_security_group_rules(acct, rule_ids, filters, page)
                    .await?
            }
            Action::ModifySecurityGroupRules { group_id, rules } => {
                self.modify_security_group_rules(acct, group_id, rules)
                    .await?
            }
        })
    }
}
