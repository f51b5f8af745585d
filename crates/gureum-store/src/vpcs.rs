//! VPCs and subnets.

use gureum_types::Tenancy;
use rusqlite::{params, Connection, Row};

use crate::instances::text_enum;
use crate::Millis;

aggregate! {
    pub trait Vpcs {
        fn insert_vpc(&self, v: &VpcRow) -> ();
        fn insert_subnet(&self, s: &SubnetRow) -> ();
        fn vpcs(&self, account_id: &str) -> Vec<VpcRow>;
        fn subnets(&self, account_id: &str) -> Vec<SubnetRow>;
        fn all_subnets(&self) -> Vec<SubnetRow>;
        /// The attributes of the account's VPCs, keyed by VPC id.
        fn vpc_attributes(&self, account_id: &str) -> std::collections::HashMap<String, VpcAttributes>;
        fn set_vpc_flag(&self, vpc_id: &str, flag: VpcFlag, on: bool) -> ();
        fn set_vpc_tenancy(&self, vpc_id: &str, tenancy: Tenancy) -> ();
        /// Every account's default VPC that has not been given its internet gateway yet:
        /// (account, VPC id).
        fn default_vpcs_not_internet_ready(&self) -> Vec<(String, String)>;
        /// The state of each of the account's subnets, keyed by subnet id.
        fn subnet_states(&self, account_id: &str) -> std::collections::HashMap<String, String>;
        fn set_map_public_ip(&self, subnet_id: &str, on: bool) -> ();
        /// Ids of the live (not terminated) instances in a subnet.
        fn live_instances_in_subnet(&self, subnet_id: &str) -> Vec<String>;
        /// Ids of the live (not terminated) instances in a VPC.
        fn live_instances_in_vpc(&self, vpc_id: &str) -> Vec<String>;
        /// The ids of every account's default VPC (they share one host network).
        fn default_vpc_ids(&self) -> std::collections::HashSet<String>;
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VpcRow {
    pub id: String,
    pub account_id: String,
    pub cidr: String,
    pub is_default: bool,
    pub created_at: Millis,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubnetRow {
    pub id: String,
    pub account_id: String,
    pub vpc_id: String,
    pub cidr: String,
    pub az: String,
    pub az_id: String,
    pub default_for_az: bool,
    pub map_public_ip: bool,
    pub created_at: Millis,
}

pub(crate) fn insert_vpc(c: &Connection, v: &VpcRow) -> rusqlite::Result<()> {
    c.execute(
        "INSERT INTO vpcs (id, account_id, cidr, is_default, created_at) VALUES (?1,?2,?3,?4,?5)",
        params![v.id, v.account_id, v.cidr, v.is_default, v.created_at],
    )?;
    Ok(())
}

pub(crate) fn insert_subnet(c: &Connection, s: &SubnetRow) -> rusqlite::Result<()> {
    c.execute(
        "INSERT INTO subnets (id, account_id, vpc_id, cidr, az, az_id, default_for_az, map_public_ip, created_at) \
         VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9)",
        params![s.id, s.account_id, s.vpc_id, s.cidr, s.az, s.az_id, s.default_for_az, s.map_public_ip, s.created_at],
    )?;
    Ok(())
}

fn vpc_row(r: &Row) -> rusqlite::Result<VpcRow> {
    Ok(VpcRow {
        id: r.get(0)?,
        account_id: r.get(1)?,
        cidr: r.get(2)?,
        is_default: r.get(3)?,
        created_at: r.get(4)?,
    })
}

fn subnet_row(r: &Row) -> rusqlite::Result<SubnetRow> {
    Ok(SubnetRow {
        id: r.get(0)?,
        account_id: r.get(1)?,
        vpc_id: r.get(2)?,
        cidr: r.get(3)?,
        az: r.get(4)?,
        az_id: r.get(5)?,
        default_for_az: r.get(6)?,
        map_public_ip: r.get(7)?,
        created_at: r.get(8)?,
    })
}

pub(crate) fn vpcs(c: &Connection, account_id: &str) -> rusqlite::Result<Vec<VpcRow>> {
    let mut st = c.prepare_cached(
        "SELECT id, account_id, cidr, is_default, created_at FROM vpcs WHERE account_id = ?1 ORDER BY id",
    )?;
    let rows = st.query_map([account_id], vpc_row)?;
    rows.collect()
}

pub(crate) fn subnets(c: &Connection, account_id: &str) -> rusqlite::Result<Vec<SubnetRow>> {
    let mut st = c.prepare_cached(
        "SELECT id, account_id, vpc_id, cidr, az, az_id, default_for_az, map_public_ip, created_at \
         FROM subnets WHERE account_id = ?1 ORDER BY id",
    )?;
    let rows = st.query_map([account_id], subnet_row)?;
    rows.collect()
}

pub(crate) fn all_subnets(c: &Connection) -> rusqlite::Result<Vec<SubnetRow>> {
    let mut st = c.prepare_cached(
        "SELECT id, account_id, vpc_id, cidr, az, az_id, default_for_az, map_public_ip, created_at \
         FROM subnets ORDER BY id",
    )?;
    let rows = st.query_map([], subnet_row)?;
    rows.collect()
}

/// The VPC attributes beyond [`VpcRow`] (migrations 4 and 5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VpcAttributes {
    /// The `instance_tenancy` column's text (`default`, `dedicated`).
    pub instance_tenancy: Tenancy,
    pub dns_support: bool,
    pub dns_hostnames: bool,
    /// Whether a default VPC has been given its internet gateway and default route.
    pub internet_ready: bool,
}

pub(crate) fn vpc_attributes(
    c: &Connection,
    account_id: &str,
) -> rusqlite::Result<std::collections::HashMap<String, VpcAttributes>> {
    let mut st = c.prepare_cached(
        "SELECT id, instance_tenancy, dns_support, dns_hostnames, internet_ready FROM vpcs \
         WHERE account_id = ?1",
    )?;
    let rows = st.query_map([account_id], |r| {
        Ok((
            r.get::<_, String>(0)?,
            VpcAttributes {
                instance_tenancy: text_enum(r, 1)?,
                dns_support: r.get(2)?,
                dns_hostnames: r.get(3)?,
                internet_ready: r.get(4)?,
            },
        ))
    })?;
    rows.collect()
}

/// A VPC attribute that can be set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VpcFlag {
    DnsSupport,
    DnsHostnames,
    InternetReady,
}

pub(crate) fn set_vpc_flag(
    c: &Connection,
    vpc_id: &str,
    flag: VpcFlag,
    on: bool,
) -> rusqlite::Result<()> {
    let column = match flag {
        VpcFlag::DnsSupport => "dns_support",
        VpcFlag::DnsHostnames => "dns_hostnames",
        VpcFlag::InternetReady => "internet_ready",
    };
    c.execute(
        &format!("UPDATE vpcs SET {column} = ?2 WHERE id = ?1"),
        params![vpc_id, on],
    )?;
    Ok(())
}

pub(crate) fn set_vpc_tenancy(
    c: &Connection,
    vpc_id: &str,
    tenancy: Tenancy,
) -> rusqlite::Result<()> {
    c.execute(
        "UPDATE vpcs SET instance_tenancy = ?2 WHERE id = ?1",
        params![vpc_id, tenancy.as_str()],
    )?;
    Ok(())
}

pub(crate) fn default_vpcs_not_internet_ready(
    c: &Connection,
) -> rusqlite::Result<Vec<(String, String)>> {
    let mut st = c.prepare_cached(
        "SELECT account_id, id FROM vpcs WHERE is_default = 1 AND internet_ready = 0 ORDER BY id",
    )?;
    let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    rows.collect()
}

pub(crate) fn subnet_states(
    c: &Connection,
    account_id: &str,
) -> rusqlite::Result<std::collections::HashMap<String, String>> {
    let mut st = c.prepare_cached("SELECT id, state FROM subnets WHERE account_id = ?1")?;
    let rows = st.query_map([account_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
    rows.collect()
}

pub(crate) fn set_map_public_ip(c: &Connection, subnet_id: &str, on: bool) -> rusqlite::Result<()> {
    c.execute(
        "UPDATE subnets SET map_public_ip = ?2 WHERE id = ?1",
        params![subnet_id, on],
    )?;
    Ok(())
}

pub(crate) fn live_instances_in_subnet(
    c: &Connection,
    subnet_id: &str,
) -> rusqlite::Result<Vec<String>> {
    let mut st = c.prepare_cached(
        "SELECT id FROM instances WHERE subnet_id = ?1 AND state != 'terminated' ORDER BY id",
    )?;
    let rows = st.query_map([subnet_id], |r| r.get(0))?;
    rows.collect()
}

pub(crate) fn live_instances_in_vpc(c: &Connection, vpc_id: &str) -> rusqlite::Result<Vec<String>> {
    let mut st = c.prepare_cached(
        "SELECT id FROM instances WHERE vpc_id = ?1 AND state != 'terminated' ORDER BY id",
    )?;
    let rows = st.query_map([vpc_id], |r| r.get(0))?;
    rows.collect()
}

pub(crate) fn default_vpc_ids(
    c: &Connection,
) -> rusqlite::Result<std::collections::HashSet<String>> {
    let mut st = c.prepare_cached("SELECT id FROM vpcs WHERE is_default")?;
    let rows = st.query_map([], |r| r.get::<_, String>(0))?;
    rows.collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StoreError;

    /// The tenancy column keeps the text every data dir has (`default`, `dedicated`), and a
    /// text that names no tenancy is a read error, never a default.
    #[test]
    fn tenancy_column_keeps_its_text() {
        let (_dir, store) = crate::sqlite::test_store();
        let a = "123456789012";
        store
            .sql_write(|tx| {
                crate::accounts::insert(tx, a, "a", 0)?;
                for id in ["vpc-1", "vpc-2"] {
                    crate::resources::insert(tx, id, a, "vpc", 0)?;
                    insert_vpc(
                        tx,
                        &VpcRow {
                            id: id.into(),
                            account_id: a.into(),
                            cidr: "10.0.0.0/16".into(),
                            is_default: false,
                            created_at: 0,
                        },
                    )?;
                }
                set_vpc_tenancy(tx, "vpc-2", Tenancy::Dedicated)?;
                Ok::<_, StoreError>(())
            })
            .unwrap();
        let texts = store
            .sql_read(|c| {
                let mut st = c.prepare("SELECT instance_tenancy FROM vpcs ORDER BY id")?;
                let rows = st.query_map([], |r| r.get::<_, String>(0))?;
                Ok::<_, StoreError>(rows.collect::<Result<Vec<_>, _>>()?)
            })
            .unwrap();
        assert_eq!(texts, ["default", "dedicated"]);
        let attrs = store
            .sql_read(|c| Ok::<_, StoreError>(vpc_attributes(c, a)?))
            .unwrap();
        assert_eq!(attrs["vpc-1"].instance_tenancy, Tenancy::Default);
        assert_eq!(attrs["vpc-2"].instance_tenancy, Tenancy::Dedicated);
        for bad in ["Dedicated", "shared"] {
            store
                .sql_write(|tx| {
                    tx.execute(
                        "UPDATE vpcs SET instance_tenancy = ?1 WHERE id = 'vpc-1'",
                        [bad],
                    )?;
                    Ok::<_, StoreError>(())
                })
                .unwrap();
            assert!(
                store
                    .sql_read(|c| Ok::<_, StoreError>(vpc_attributes(c, a)?))
                    .is_err(),
                "{bad}"
            );
        }
    }
}
