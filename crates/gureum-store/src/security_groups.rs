//! Security groups, their rules, and instance membership.
//!
//! A rule's protocol is kept as the text AWS answers with (`tcp`, `icmpv6`, `-1`, `47`) and
//! parsed back through [`IpProtocol`] on every read. A row whose protocol does not parse (a
//! hand-edited or corrupted database) is left out of every read, with an error logged: a
//! rule nobody can interpret must admit nothing, and must not take its group's other rules
//! (or the whole firewall) down with it.

use gureum_types::model::SecurityGroupRule;
use gureum_types::IpProtocol;
use rusqlite::{params, Connection, Row};

use crate::Millis;

aggregate! {
    pub trait SecurityGroups {
        /// Insert a group (its registry row must exist). `Ok(false)` if the VPC has one of that name.
        fn insert(&self, g: &GroupRow, now: Millis) -> bool;
        fn of_account(&self, account_id: &str) -> Vec<GroupRow>;
        /// Every rule of every group of the account, in creation order.
        fn rules_of_account(&self, account_id: &str) -> Vec<SecurityGroupRule>;
        /// Every rule on the host (the firewall's view).
        fn all_rules(&self) -> Vec<SecurityGroupRule>;
        fn insert_rule(&self, r: &SecurityGroupRule, now: Millis) -> ();
        /// Rewrite a rule's definition in place (same id, group and direction).
        fn update_rule(&self, r: &SecurityGroupRule) -> ();
        /// Group membership of instances: (instance id, group id), groups in launch order.
        fn memberships(&self) -> Vec<(String, String)>;
        /// Replace an instance's groups.
        fn set_instance_groups(&self, instance_id: &str, groups: &[String]) -> ();
        /// Live (not terminated) instances in a group.
        fn live_members(&self, group_id: &str) -> Vec<String>;
        /// Rules of other groups that reference this group.
        fn referencing_rules(&self, group_id: &str) -> Vec<String>;
    }
}

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

pub(crate) fn insert(c: &Connection, g: &GroupRow, now: Millis) -> rusqlite::Result<bool> {
    let res = c.execute(
        "INSERT INTO security_groups (id, account_id, vpc_id, name, description, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![g.id, g.account_id, g.vpc_id, g.name, g.description, now],
    );
    crate::sqlite::inserted(res)
}

pub(crate) fn of_account(c: &Connection, account_id: &str) -> rusqlite::Result<Vec<GroupRow>> {
    let mut st = c.prepare_cached(
        "SELECT id, account_id, vpc_id, name, description FROM security_groups \
         WHERE account_id = ?1 ORDER BY id",
    )?;
    let rows = st.query_map([account_id], group_row)?;
    rows.collect()
}

/// One rule row; `None` (logged) if its protocol is not one [`IpProtocol`] knows.
fn rule_row(r: &Row) -> rusqlite::Result<Option<SecurityGroupRule>> {
    let id: String = r.get(0)?;
    let raw: String = r.get(4)?;
    let Ok(protocol) = raw.parse::<IpProtocol>() else {
        tracing::error!(
            rule = %id,
            protocol = %raw,
            "security group rule with an unknown protocol left out: it admits nothing"
        );
        return Ok(None);
    };
    Ok(Some(SecurityGroupRule {
        id,
        group_id: r.get(1)?,
        owner_id: r.get(2)?,
        is_egress: r.get(3)?,
        protocol,
        from_port: r.get(5)?,
        to_port: r.get(6)?,
        cidr_ipv4: r.get(7)?,
        cidr_ipv6: r.get(8)?,
        referenced_group_id: r.get(9)?,
        description: r.get(10)?,
    }))
}

/// The rows that parse (see [`rule_row`]).
fn known_rules(
    rows: impl Iterator<Item = rusqlite::Result<Option<SecurityGroupRule>>>,
) -> rusqlite::Result<Vec<SecurityGroupRule>> {
    rows.filter_map(Result::transpose).collect()
}

const RULE_COLS: &str = "id, group_id, account_id, is_egress, protocol, from_port, to_port, \
                         cidr_ipv4, cidr_ipv6, ref_group_id, description";

pub(crate) fn rules_of_account(
    c: &Connection,
    account_id: &str,
) -> rusqlite::Result<Vec<SecurityGroupRule>> {
    let mut st = c.prepare_cached(&format!(
        "SELECT {RULE_COLS} FROM security_group_rules WHERE account_id = ?1 ORDER BY created_at, id"
    ))?;
    let rows = st.query_map([account_id], rule_row)?;
    known_rules(rows)
}

pub(crate) fn all_rules(c: &Connection) -> rusqlite::Result<Vec<SecurityGroupRule>> {
    let mut st = c.prepare_cached(&format!(
        "SELECT {RULE_COLS} FROM security_group_rules ORDER BY created_at, id"
    ))?;
    let rows = st.query_map([], rule_row)?;
    known_rules(rows)
}

pub(crate) fn insert_rule(
    c: &Connection,
    r: &SecurityGroupRule,
    now: Millis,
) -> rusqlite::Result<()> {
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
            r.protocol.to_string(),
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

pub(crate) fn update_rule(c: &Connection, r: &SecurityGroupRule) -> rusqlite::Result<()> {
    c.execute(
        "UPDATE security_group_rules SET protocol = ?2, from_port = ?3, to_port = ?4, \
         cidr_ipv4 = ?5, cidr_ipv6 = ?6, ref_group_id = ?7, description = ?8 WHERE id = ?1",
        params![
            r.id,
            r.protocol.to_string(),
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

pub(crate) fn memberships(c: &Connection) -> rusqlite::Result<Vec<(String, String)>> {
    let mut st = c.prepare_cached(
        "SELECT instance_id, group_id FROM instance_security_groups ORDER BY instance_id, position",
    )?;
    let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    rows.collect()
}

pub(crate) fn set_instance_groups(
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

pub(crate) fn live_members(c: &Connection, group_id: &str) -> rusqlite::Result<Vec<String>> {
    let mut st = c.prepare_cached(
        "SELECT m.instance_id FROM instance_security_groups m JOIN instances i ON i.id = m.instance_id \
         WHERE m.group_id = ?1 AND i.state != 'terminated'",
    )?;
    let rows = st.query_map([group_id], |r| r.get(0))?;
    rows.collect()
}

pub(crate) fn referencing_rules(c: &Connection, group_id: &str) -> rusqlite::Result<Vec<String>> {
    let mut st = c.prepare_cached(
        "SELECT id FROM security_group_rules WHERE ref_group_id = ?1 AND group_id != ?1",
    )?;
    let rows = st.query_map([group_id], |r| r.get(0))?;
    rows.collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sqlite::test_store;
    use crate::{resources, StoreError};

    fn rule(id: &str, protocol: IpProtocol, ports: Option<(i32, i32)>) -> SecurityGroupRule {
        SecurityGroupRule {
            id: id.into(),
            group_id: "sg-1".into(),
            owner_id: "111111111111".into(),
            is_egress: false,
            protocol,
            from_port: ports.map(|p| p.0),
            to_port: ports.map(|p| p.1),
            cidr_ipv4: Some("10.0.0.0/8".into()),
            cidr_ipv6: None,
            referenced_group_id: None,
            description: None,
        }
    }

    #[test]
    fn protocols_round_trip_and_unknown_ones_admit_nothing() {
        let (_dir, store) = test_store();
        let rules = [
            rule("sgr-1", IpProtocol::Tcp, Some((22, 22))),
            rule("sgr-2", IpProtocol::Icmpv6, Some((-1, -1))),
            rule("sgr-3", IpProtocol::Other(47), None),
            rule("sgr-4", IpProtocol::All, None),
            rule("sgr-5", IpProtocol::Icmp, Some((8, -1))),
        ];
        store
            .sql_write(|c| {
                crate::accounts::insert(c, "111111111111", "test", 1)?;
                resources::insert(c, "sg-1", "111111111111", "security-group", 1)?;
                let g = GroupRow {
                    id: "sg-1".into(),
                    account_id: "111111111111".into(),
                    vpc_id: "vpc-1".into(),
                    name: "web".into(),
                    description: "web".into(),
                };
                insert(c, &g, 1)?;
                for r in &rules {
                    resources::insert(c, &r.id, "111111111111", "security-group-rule", 1)?;
                    insert_rule(c, r, 1)?;
                }
                Ok::<_, StoreError>(())
            })
            .unwrap();
        let stored: Vec<(String, String)> = store
            .sql_read(|c| {
                let mut st =
                    c.prepare("SELECT id, protocol FROM security_group_rules ORDER BY id")?;
                let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
                Ok::<_, StoreError>(rows.collect::<rusqlite::Result<_>>()?)
            })
            .unwrap();
        // Kept as AWS answers them (the schema is unchanged: text).
        let texts: Vec<&str> = stored.iter().map(|(_, p)| p.as_str()).collect();
        assert_eq!(texts, ["tcp", "icmpv6", "47", "-1", "icmp"]);
        let read = store
            .sql_read(|c| Ok::<_, StoreError>(rules_of_account(c, "111111111111")?))
            .unwrap();
        assert_eq!(read, rules);

        // A row nobody can interpret is left out of every read, the others stay.
        store
            .sql_write(|c| {
                c.execute(
                    "UPDATE security_group_rules SET protocol = 'ipv6-icmp' WHERE id = 'sgr-2'",
                    [],
                )?;
                Ok::<_, StoreError>(())
            })
            .unwrap();
        for read in [
            store
                .sql_read(|c| Ok::<_, StoreError>(rules_of_account(c, "111111111111")?))
                .unwrap(),
            store
                .sql_read(|c| Ok::<_, StoreError>(all_rules(c)?))
                .unwrap(),
        ] {
            let ids: Vec<&str> = read.iter().map(|r| r.id.as_str()).collect();
            assert_eq!(ids, ["sgr-1", "sgr-3", "sgr-4", "sgr-5"]);
        }
    }
}
