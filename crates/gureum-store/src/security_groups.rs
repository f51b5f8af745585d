//! Security groups, their rules, and instance membership.

use gureum_types::model::SecurityGroupRule;
use rusqlite::{params, Connection, Row};

use crate::Millis;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRow {
    pub id: String,
    pub account_id: String,
    pub vpc_id: String,
    pub name: String,
    pub description: String,
}

fn group_row(r: &Row) -> rusqlite::Result<GroupRow> {
    Ok(GroupRow {
        id: r.get(0)?,
        account_id: r.get(1)?,
        vpc_id: r.get(2)?,
        name: r.get(3)?,
        description: r.get(4)?,
    })
}

/// Insert a group (its registry row must exist). `Ok(false)` if the VPC has one of that name.
pub fn insert(c: &Connection, g: &GroupRow, now: Millis) -> rusqlite::Result<bool> {
    let res = c.execute(
        "INSERT INTO security_groups (id, account_id, vpc_id, name, description, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![g.id, g.account_id, g.vpc_id, g.name, g.description, now],
    );
    crate::inserted(res)
}

pub fn of_account(c: &Connection, account_id: &str) -> rusqlite::Result<Vec<GroupRow>> {
    let mut st = c.prepare_cached(
        "SELECT id, account_id, vpc_id, name, description FROM security_groups \
         WHERE account_id = ?1 ORDER BY id",
    )?;
    let rows = st.query_map([account_id], group_row)?;
    rows.collect()
}

fn rule_row(r: &Row) -> rusqlite::Result<SecurityGroupRule> {
    Ok(SecurityGroupRule {
        id: r.get(0)?,
        group_id: r.get(1)?,
        owner_id: r.get(2)?,
        is_egress: r.get(3)?,
        protocol: r.get(4)?,
        from_port: r.get(5)?,
        to_port: r.get(6)?,
        cidr_ipv4: r.get(7)?,
        cidr_ipv6: r.get(8)?,
        referenced_group_id: r.get(9)?,
        description: r.get(10)?,
    })
}

const RULE_COLS: &str = "id, group_id, account_id, is_egress, protocol, from_port, to_port, \
                         cidr_ipv4, cidr_ipv6, ref_group_id, description";

/// Every rule of every group of the account, in creation order.
pub fn rules_of_account(
    c: &Connection,
    account_id: &str,
) -> rusqlite::Result<Vec<SecurityGroupRule>> {
    let mut st = c.prepare_cached(&format!(
        "SELECT {RULE_COLS} FROM security_group_rules WHERE account_id = ?1 ORDER BY created_at, id"
    ))?;
    let rows = st.query_map([account_id], rule_row)?;
    rows.collect()
}

/// Every rule on the host (the firewall's view).
pub fn all_rules(c: &Connection) -> rusqlite::Result<Vec<SecurityGroupRule>> {
    let mut st = c.prepare_cached(&format!(
        "SELECT {RULE_COLS} FROM security_group_rules ORDER BY created_at, id"
    ))?;
    let rows = st.query_map([], rule_row)?;
    rows.collect()
}

pub fn insert_rule(c: &Connection, r: &SecurityGroupRule, now: Millis) -> rusqlite::Result<()> {
    c.execute(
        &format!(
            "INSERT INTO security_group_rules ({RULE_COLS}, created_at) \
             VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12)"
        ),
        params![
            r.id,
            r.group_id,
            r.owner_id,
            r.is_egress,
            r.protocol,
            r.from_port,
            r.to_port,
            r.cidr_ipv4,
            r.cidr_ipv6,
            r.referenced_group_id,
            r.description,
            now
        ],
    )?;
    Ok(())
}

/// Rewrite a rule's definition in place (same id, group and direction).
pub fn update_rule(c: &Connection, r: &SecurityGroupRule) -> rusqlite::Result<()> {
    c.execute(
        "UPDATE security_group_rules SET protocol = ?2, from_port = ?3, to_port = ?4, \
         cidr_ipv4 = ?5, cidr_ipv6 = ?6, ref_group_id = ?7, description = ?8 WHERE id = ?1",
        params![
            r.id,
            r.protocol,
            r.from_port,
            r.to_port,
            r.cidr_ipv4,
            r.cidr_ipv6,
            r.referenced_group_id,
            r.description
        ],
    )?;
    Ok(())
}

/// Group membership of instances: (instance id, group id), groups in launch order.
pub fn memberships(c: &Connection) -> rusqlite::Result<Vec<(String, String)>> {
    let mut st = c.prepare_cached(
        "SELECT instance_id, group_id FROM instance_security_groups ORDER BY instance_id, position",
    )?;
    let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    rows.collect()
}

/// Replace an instance's groups.
pub fn set_instance_groups(
    c: &Connection,
    instance_id: &str,
    groups: &[String],
) -> rusqlite::Result<()> {
    c.execute(
        "DELETE FROM instance_security_groups WHERE instance_id = ?1",
        [instance_id],
    )?;
    for (i, g) in groups.iter().enumerate() {
        c.execute(
            "INSERT INTO instance_security_groups (instance_id, group_id, position) VALUES (?1, ?2, ?3)",
            params![instance_id, g, i as i64],
        )?;
    }
    Ok(())
}

/// Live (not terminated) instances in a group.
pub fn live_members(c: &Connection, group_id: &str) -> rusqlite::Result<Vec<String>> {
    let mut st = c.prepare_cached(
        "SELECT m.instance_id FROM instance_security_groups m JOIN instances i ON i.id = m.instance_id \
         WHERE m.group_id = ?1 AND i.state != 'terminated'",
    )?;
    let rows = st.query_map([group_id], |r| r.get(0))?;
    rows.collect()
}

/// Rules of other groups that reference this group.
pub fn referencing_rules(c: &Connection, group_id: &str) -> rusqlite::Result<Vec<String>> {
    let mut st = c.prepare_cached(
        "SELECT id FROM security_group_rules WHERE ref_group_id = ?1 AND group_id != ?1",
    )?;
    let rows = st.query_map([group_id], |r| r.get(0))?;
    rows.collect()
}
