//! VPCs and subnets. Every account has a default VPC (`172.31.0.0/16`) with a default
//! subnet per availability zone (`172.31.0.0/20`, `172.31.16.0/20`, `172.31.32.0/20`), an
//! attached internet gateway and a main route table sending `0.0.0.0/0` to it, made the first
//! time the account needs it, as AWS makes them when an account is created. Default VPCs made
//! before gureum had internet gateways are given theirs once (`internet_ready`).
//!
//! `CreateVpc` makes a VPC with its main route table (the local route implied) and its
//! `default` security group; `DeleteVpc` removes those two with it once nothing else is left.
//! The default VPC and its default subnets cannot be deleted here (AWS allows it): their
//! addresses are the host network every account's default VPC shares, and launches without a
//! subnet need them.
//!
//! On the host, all default VPCs share one L2 network ([`DEFAULT_NET`]) and one address
//! space, so every private IP is unique host-wide and the host can reach each of them; the
//! isolation between accounts is the network driver's firewall's job (networking issue).

use std::net::Ipv4Addr;

use gureum_ec2::ops::vpcs::VpcAttribute;
use gureum_ec2::ops::vpcs::{Action, Response};
use gureum_ec2::Page;
use gureum_store::vpcs as db;
use gureum_store::vpcs::{SubnetRow, VpcFlag, VpcRow};
use gureum_store::Tx;
use gureum_types::model::{Filter, Subnet, Tag, TagSpecification, Vpc};
use gureum_types::{ApiError, ErrorCode, ResourceId, ResourceKind, Tenancy};
use ipnet::Ipv4Net;

use crate::describe::{self, Describable};
use crate::host::HostNet;
use crate::routing::{create_main_route_table_tx, default_vpc_internet_tx};
use crate::{tags, Cloud, CoreError, CoreResult, Ctx};

/// AWS's default quotas: VPCs per region (the default VPC included), subnets per VPC.
pub const MAX_VPCS: usize = 5;
pub const MAX_SUBNETS_PER_VPC: usize = 200;

pub const DEFAULT_VPC_CIDR: &str = "172.31.0.0/16";
/// The host network id shared by every account's default VPC.
pub const DEFAULT_NET: &str = "vpc-0000000000000000d";

/// AWS reserves the first four addresses and the last one of every subnet.
pub fn usable_range(cidr: &Ipv4Net) -> (u32, u32) {
    let net = u32::from(cidr.network());
    let bcast = u32::from(cidr.broadcast());
    (net + 4, bcast - 1)
}

pub fn gateway(cidr: &Ipv4Net) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(cidr.network()) + 1)
}

/// The host network of the default VPCs: every /20 of `172.31.0.0/16` with its gateway, so a
/// subnet an account adds to its default VPC (`172.31.48.0/20`, or a smaller one, whose
/// instances then use the enclosing /20's gateway) is on it too. The default subnets are the
/// first three.
pub fn default_host_net() -> HostNet {
    HostNet {
        id: DEFAULT_NET.to_string(),
        subnets: (0..16)
            .map(|i| {
                let cidr: Ipv4Net = format!("172.31.{}.0/20", i * 16).parse().expect("valid");
                (cidr, gateway(&cidr))
            })
            .collect(),
    }
}

impl Describable for Vpc {
    fn filter_values(&self, name: &str) -> Option<Vec<String>> {
        Some(vec![match name {
            "vpc-id" => self.id.clone(),
            // `cidr-block` is not in AWS's list for VPCs, but AWS answers it as `cidr` and
            // Ansible's ec2_vpc_net looks its VPC up by it.
            "cidr" | "cidr-block" | "cidr-block-association.cidr-block" | "cidrBlock" => {
                self.cidr.clone()
            }
            "is-default" | "isDefault" => self.is_default.to_string(),
            "owner-id" => self.owner_id.clone(),
            "state" => self.state.clone(),
            "dhcp-options-id" => "default".into(),
            "instance-tenancy" => self.instance_tenancy.as_str().into(),
            _ => return None,
        }])
    }
    fn tags(&self) -> &[Tag] {
        &self.tags
    }
}

impl Describable for Subnet {
    fn filter_values(&self, name: &str) -> Option<Vec<String>> {
        Some(vec![match name {
            "subnet-id" => self.id.clone(),
            "vpc-id" => self.vpc_id.clone(),
            "cidr-block" | "cidr" | "cidrBlock" => self.cidr.clone(),
            "availability-zone" | "availabilityZone" => self.availability_zone.clone(),
            "availability-zone-id" | "availabilityZoneId" => self.availability_zone_id.clone(),
            "default-for-az" | "defaultForAz" => self.default_for_az.to_string(),
            "map-public-ip-on-launch" => self.map_public_ip_on_launch.to_string(),
            "owner-id" => self.owner_id.clone(),
            "state" => self.state.clone(),
            "available-ip-address-count" => self.available_ip_address_count.to_string(),
            _ => return None,
        }])
    }
    fn tags(&self) -> &[Tag] {
        &self.tags
    }
}

const VPC_FILTERS: &[&str] = &[
    "vpc-id",
    "cidr",
    "cidr-block",
    "cidr-block-association.cidr-block",
    "cidrBlock",
    "is-default",
    "isDefault",
    "owner-id",
    "state",
    "dhcp-options-id",
    "instance-tenancy",
];
const SUBNET_FILTERS: &[&str] = &[
    "subnet-id",
    "vpc-id",
    "cidr-block",
    "cidr",
    "cidrBlock",
    "availability-zone",
    "availabilityZone",
    "availability-zone-id",
    "availabilityZoneId",
    "default-for-az",
    "defaultForAz",
    "map-public-ip-on-launch",
    "owner-id",
    "state",
    "available-ip-address-count",
];

impl Cloud {
    /// Create the account's default VPC, its subnets, internet gateway and main route table
    /// if it has none; give an existing default VPC that predates internet gateways its
    /// gateway and default route. Blocking.
    pub(crate) fn ensure_default_vpc_sync(&self, c: &dyn Tx, account: &str) -> CoreResult<()> {
        let now = self.clock.now_millis();
        if let Some(v) = c.vpcs().vpcs(account)?.into_iter().find(|v| v.is_default) {
            let ready = c
                .vpcs()
                .vpc_attributes(account)?
                .get(&v.id)
                .is_some_and(|a| a.internet_ready);
            if !ready {
                default_vpc_internet_tx(c, account, &v.id, now)?;
            }
            return Ok(());
        }
        let vpc_id = ResourceId::generate(ResourceKind::Vpc).to_string();
        c.resources().insert(&vpc_id, account, "vpc", now)?;
        c.vpcs().insert_vpc(&db::VpcRow {
            id: vpc_id.clone(),
            account_id: account.to_string(),
            cidr: DEFAULT_VPC_CIDR.into(),
            is_default: true,
            created_at: now,
        })?;
        crate::security_groups::create_default_group_tx(c, account, &vpc_id, now)?;
        for (i, zone) in self.region.zones.iter().enumerate() {
            let id = ResourceId::generate(ResourceKind::Subnet).to_string();
            c.resources().insert(&id, account, "subnet", now)?;
            c.vpcs().insert_subnet(&db::SubnetRow {
                id,
                account_id: account.to_string(),
                vpc_id: vpc_id.clone(),
                cidr: format!("172.31.{}.0/20", i * 16),
                az: zone.name.clone(),
                az_id: zone.id.clone(),
                default_for_az: true,
                map_public_ip: true,
                created_at: now,
            })?;
        }
        default_vpc_internet_tx(c, account, &vpc_id, now)?;
        Ok(())
    }

    /// Give every account's default VPC that predates internet gateways its gateway, main
    /// route table and default route (what [`Cloud::ensure_default_vpc`] does lazily per
    /// account), so the host agent maps their public addresses from the first sweep. Run once
    /// when the store is opened. Blocking.
    pub fn repair_default_vpcs_sync(&self) -> CoreResult<usize> {
        let now = self.clock.now_millis();
        self.store.write(|tx| {
            let todo = tx.vpcs().default_vpcs_not_internet_ready()?;
            for (account, vpc) in &todo {
                default_vpc_internet_tx(tx, account, vpc, now)?;
            }
            Ok(todo.len())
        })
    }

    pub(crate) async fn ensure_default_vpc(&self, account: &str) -> CoreResult<()> {
        let (cloud, account) = (self.clone(), account.to_string());
        self.blocking(move |s| s.write(|tx| cloud.ensure_default_vpc_sync(tx, &account)))
            .await
    }

    pub(crate) async fn vpc_models(&self, account: &str) -> CoreResult<(Vec<Vpc>, Vec<Subnet>)> {
        self.ensure_default_vpc(account).await?;
        let account = account.to_string();
        let region = self.region.clone();
        self.blocking(move |s| {
            s.read(|c| {
                let mut tags = c.tags().all_by_resource(&account)?;
                let in_use = c.instances().ips_in_use()?;
                let attrs = c.vpcs().vpc_attributes(&account)?;
                let mut states = c.vpcs().subnet_states(&account)?;
                let vpcs = c
                    .vpcs()
                    .vpcs(&account)?
                    .into_iter()
                    .map(|v| Vpc {
                        tags: tags.remove(&v.id).unwrap_or_default(),
                        instance_tenancy: attrs
                            .get(&v.id)
                            .map_or(Tenancy::Default, |a| a.instance_tenancy),
                        id: v.id,
                        owner_id: v.account_id,
                        cidr: v.cidr,
                        is_default: v.is_default,
                        state: "available".parse().unwrap(),
                    })
                    .collect();
                let subnets = c
                    .vpcs()
                    .subnets(&account)?
                    .into_iter()
                    .map(|s| {
                        let cidr: Ipv4Net = s
                            .cidr
                            .parse()
                            .unwrap_or_else(|_| "0.0.0.0/32".parse().expect("valid"));
                        let (lo, hi) = usable_range(&cidr);
                        let used = in_use
                            .iter()
                            .filter_map(|ip| ip.parse::<Ipv4Addr>().ok())
                            .filter(|ip| cidr.contains(ip))
                            .count() as u32;
                        Subnet {
                            tags: tags.remove(&s.id).unwrap_or_default(),
                            state: states.remove(&s.id).unwrap_or_else(|| "available".into()),
                            available_ip_address_count: (hi + 1 - lo).saturating_sub(used),
                            id: s.id,
                            owner_id: s.account_id,
                            vpc_id: s.vpc_id,
                            cidr: s.cidr,
                            availability_zone_id: region
                                .zones
                                .iter()
                                .find(|z| z.name == s.az)
                                .map(|z| z.id.clone())
                                .unwrap_or(s.az_id),
                            availability_zone: s.az,
                            default_for_az: s.default_for_az,
                            map_public_ip_on_launch: s.map_public_ip,
                        }
                    })
                    .collect();
                Ok((vpcs, subnets))
            })
        })
        .await
    }

    pub(crate) async fn describe_vpcs(
        &self,
        account: String,
        ids: Vec<String>,
        filters: Vec<Filter>,
        page: Page,
    ) -> CoreResult<Response> {
        describe::validate_filters(&filters, VPC_FILTERS, true)?;
        let (vpcs, _) = self.vpc_models(&account).await?;
        let (vpcs, next_token) = select(vpcs, |v| &v.id, &ids, &filters, &page, VPC_IDS)?;
        Ok(Response::DescribeVpcs { vpcs, next_token })
    }

    pub(crate) async fn describe_subnets(
        &self,
        account: String,
        ids: Vec<String>,
        filters: Vec<Filter>,
        page: Page,
    ) -> CoreResult<Response> {
        describe::validate_filters(&filters, SUBNET_FILTERS, true)?;
        let (_, subnets) = self.vpc_models(&account).await?;
        let (subnets, next_token) = select(subnets, |s| &s.id, &ids, &filters, &page, SUBNET_IDS)?;
        Ok(Response::DescribeSubnets {
            subnets,
            next_token,
        })
    }
}

/// An id of `kind` must be well formed (else `malformed`) and name one of the account's
/// resources of that kind (else `not_found`; another account's resource looks the same).
pub(crate) fn check_id(c: &dyn Tx, account: &str, id: &str, e: &IdErrors) -> CoreResult<()> {
    if ResourceId::parse(e.kind, id).is_none() {
        return Err(ApiError::new(e.malformed, format!("Invalid id: \"{id}\"")).into());
    }
    if c.resources().kind_of(account, id)?.as_deref() != Some(e.kind.tag_resource_type()) {
        return Err(ApiError::new(
            e.not_found,
            format!("The {} ID '{id}' does not exist", e.noun),
        )
        .into());
    }
    Ok(())
}

pub(crate) const VPC_IDS: IdErrors = IdErrors {
    kind: ResourceKind::Vpc,
    malformed: ErrorCode::InvalidVpcIDMalformed,
    not_found: ErrorCode::InvalidVpcIDNotFound,
    noun: "vpc",
};
pub(crate) const SUBNET_IDS: IdErrors = IdErrors {
    kind: ResourceKind::Subnet,
    malformed: ErrorCode::InvalidSubnetIDMalformed,
    not_found: ErrorCode::InvalidSubnetIDNotFound,
    noun: "subnet",
};

/// One of the account's VPCs, by id, with AWS's malformed and not-found errors.
pub(crate) fn find_vpc(c: &dyn Tx, account: &str, id: &str) -> CoreResult<VpcRow> {
    check_id(c, account, id, &VPC_IDS)?;
    c.vpcs()
        .vpcs(account)?
        .into_iter()
        .find(|v| v.id == id)
        .ok_or_else(|| CoreError::missing("vpc", id))
}

/// One of the account's subnets, by id, with AWS's malformed and not-found errors.
pub(crate) fn find_subnet(c: &dyn Tx, account: &str, id: &str) -> CoreResult<SubnetRow> {
    check_id(c, account, id, &SUBNET_IDS)?;
    c.vpcs()
        .subnets(account)?
        .into_iter()
        .find(|s| s.id == id)
        .ok_or_else(|| CoreError::missing("subnet", id))
}

/// An IPv4 CIDR parameter, truncated to its network (`10.0.0.5/16` is `10.0.0.0/16`).
pub(crate) fn parse_cidr(param: &str, value: &str) -> CoreResult<Ipv4Net> {
    value.parse::<Ipv4Net>().map(|n| n.trunc()).map_err(|_| {
        ApiError::invalid_value(param, value, "This is not a valid CIDR block.").into()
    })
}

fn dependency(noun: &str, id: &str) -> CoreError {
    ApiError::new(
        ErrorCode::DependencyViolation,
        format!("The {noun} '{id}' has dependencies and cannot be deleted."),
    )
    .into()
}

/// Address ranges AWS refuses as VPC CIDRs.
const RESTRICTED: &[&str] = &["0.0.0.0/8", "127.0.0.0/8", "169.254.0.0/16", "224.0.0.0/3"];

fn subnet_model(s: SubnetRow, tags: Vec<Tag>) -> Subnet {
    let cidr: Ipv4Net = s
        .cidr
        .parse()
        .unwrap_or_else(|_| "0.0.0.0/32".parse().expect("valid"));
    let (lo, hi) = usable_range(&cidr);
    Subnet {
        tags,
        available_ip_address_count: hi + 1 - lo,
        state: "available".parse().unwrap(),
        id: s.id,
        owner_id: s.account_id,
        vpc_id: s.vpc_id,
        cidr: s.cidr,
        availability_zone: s.az,
        availability_zone_id: s.az_id,
        default_for_az: s.default_for_az,
        map_public_ip_on_launch: s.map_public_ip,
    }
}

impl Cloud {
    pub(crate) async fn create_vpc(
        &self,
        account: String,
        cidr_block: String,
        tenancy: Tenancy,
        specs: Vec<TagSpecification>,
    ) -> CoreResult<Response> {
        let net = parse_cidr("cidrBlock", &cidr_block)?;
        if !(16..=28).contains(&net.prefix_len())
            || RESTRICTED.iter().any(|r| {
                r.parse::<Ipv4Net>()
                    .expect("valid")
                    .contains(&net.network())
            })
        {
            return Err(ApiError::new(
                ErrorCode::InvalidVpcRange,
                format!("The CIDR '{cidr_block}' is invalid."),
            )
            .into());
        }
        let tags = tags::from_specifications(&specs, ResourceKind::Vpc)?;
        self.ensure_default_vpc(&account).await?;
        let now = self.clock.now_millis();
        let vpc = self
            .blocking(move |s| {
                s.write(|tx| {
                    if tx.vpcs().vpcs(&account)?.len() >= MAX_VPCS {
                        return Err(ApiError::new(
                            ErrorCode::VpcLimitExceeded,
                            "The maximum number of VPCs has been reached.",
                        )
                        .into());
                    }
                    let id = ResourceId::generate(ResourceKind::Vpc).to_string();
                    tx.resources().insert(&id, &account, "vpc", now)?;
                    tx.vpcs().insert_vpc(&VpcRow {
                        id: id.clone(),
                        account_id: account.clone(),
                        cidr: net.to_string(),
                        is_default: false,
                        created_at: now,
                    })?;
                    tx.vpcs().set_vpc_tenancy(&id, tenancy)?;
                    tx.vpcs().set_vpc_flag(&id, VpcFlag::InternetReady, true)?;
                    crate::security_groups::create_default_group_tx(tx, &account, &id, now)?;
                    create_main_route_table_tx(tx, &account, &id, now)?;
                    tx.tags().put(&account, &id, &tags)?;
                    Ok::<_, CoreError>(Vpc {
                        id,
                        owner_id: account.clone(),
                        cidr: net.to_string(),
                        is_default: false,
                        state: "available".parse().unwrap(),
                        instance_tenancy: tenancy,
                        tags,
                    })
                })
            })
            .await?;
        Ok(Response::CreateVpc(vpc))
    }

    pub(crate) async fn delete_vpc(&self, account: String, vpc_id: String) -> CoreResult<Response> {
        self.ensure_default_vpc(&account).await?;
        self.blocking(move |s| {
            s.write(|tx| {
                let vpc = find_vpc(tx, &account, &vpc_id)?;
                if vpc.is_default {
                    return Err(ApiError::new(
                        ErrorCode::OperationNotPermitted,
                        format!(
                            "The default VPC '{vpc_id}' cannot be deleted in gureum: every account's default VPC shares one host network"
                        ),
                    )
                    .into());
                }
                let groups: Vec<_> = tx.security_groups().of_account(&account)?
                    .into_iter()
                    .filter(|g| g.vpc_id == vpc_id)
                    .collect();
                let tables: Vec<_> = tx.routing().route_tables(&account)?
                    .into_iter()
                    .filter(|t| t.table.vpc_id == vpc_id)
                    .collect();
                if tx.vpcs().subnets(&account)?.iter().any(|s| s.vpc_id == vpc_id)
                    || tx.routing().gateway_of_vpc(&vpc_id)?.is_some()
                    || groups.iter().any(|g| g.name != crate::security_groups::DEFAULT_GROUP)
                    || tables.iter().any(|t| !t.table.is_main)
                    || !tx.vpcs().live_instances_in_vpc(&vpc_id)?.is_empty()
                {
                    return Err(dependency("vpc", &vpc_id));
                }
                // The default group (and its rules' registry rows), the main route table
                // (and its main association's), then the VPC.
                let rules = tx.security_groups().rules_of_account(&account)?;
                for g in &groups {
                    for r in rules.iter().filter(|r| r.group_id == g.id) {
                        tx.resources().delete(&account, &r.id)?;
                    }
                    tx.resources().delete(&account, &g.id)?;
                }
                for t in &tables {
                    if let Some(a) = &t.main_association_id {
                        tx.resources().delete(&account, a)?;
                    }
                    tx.resources().delete(&account, &t.table.id)?;
                }
                tx.resources().delete(&account, &vpc_id)?;
                Ok::<_, CoreError>(())
            })
        })
        .await?;
        Ok(Response::Return)
    }

    pub(crate) async fn describe_vpc_attribute(
        &self,
        account: String,
        vpc_id: String,
        attribute: VpcAttribute,
    ) -> CoreResult<Response> {
        self.ensure_default_vpc(&account).await?;
        let id = vpc_id.clone();
        let value = self
            .blocking(move |s| {
                s.read(|c| {
                    let vpc = find_vpc(c, &account, &vpc_id)?;
                    let attrs = c.vpcs().vpc_attributes(&account)?;
                    let a = attrs
                        .get(&vpc.id)
                        .ok_or_else(|| CoreError::missing("attributes of vpc", &vpc_id))?;
                    Ok::<_, CoreError>(match attribute {
                        VpcAttribute::EnableDnsSupport => a.dns_support,
                        VpcAttribute::EnableDnsHostnames => a.dns_hostnames,
                        VpcAttribute::EnableNetworkAddressUsageMetrics => false,
                    })
                })
            })
            .await?;
        Ok(Response::DescribeVpcAttribute {
            vpc_id: id,
            attribute: attribute.as_str(),
            value,
        })
    }

    pub(crate) async fn modify_vpc_attribute(
        &self,
        account: String,
        vpc_id: String,
        attribute: VpcAttribute,
        value: bool,
    ) -> CoreResult<Response> {
        if attribute == VpcAttribute::EnableNetworkAddressUsageMetrics && value {
            return Err(ApiError::new(
                ErrorCode::UnsupportedOperation,
                "gureum does not publish network address usage metrics",
            )
            .into());
        }
        self.ensure_default_vpc(&account).await?;
        self.blocking(move |s| {
            s.write(|tx| {
                find_vpc(tx, &account, &vpc_id)?;
                match attribute {
                    VpcAttribute::EnableDnsSupport => {
                        tx.vpcs()
                            .set_vpc_flag(&vpc_id, VpcFlag::DnsSupport, value)?
                    }
                    VpcAttribute::EnableDnsHostnames => {
                        tx.vpcs()
                            .set_vpc_flag(&vpc_id, VpcFlag::DnsHostnames, value)?
                    }
                    VpcAttribute::EnableNetworkAddressUsageMetrics => {}
                }
                Ok::<_, CoreError>(())
            })
        })
        .await?;
        Ok(Response::Return)
    }

    pub(crate) async fn create_subnet(
        &self,
        account: String,
        vpc_id: String,
        cidr_block: String,
        az: Option<String>,
        az_id: Option<String>,
        specs: Vec<TagSpecification>,
    ) -> CoreResult<Response> {
        let net = parse_cidr("cidrBlock", &cidr_block)?;
        let range_error = move || -> CoreError {
            ApiError::new(
                ErrorCode::InvalidSubnetRange,
                format!("The CIDR '{net}' is invalid."),
            )
            .into()
        };
        if !(16..=28).contains(&net.prefix_len()) {
            return Err(range_error());
        }
        let zones = &self.region.zones;
        let names = || {
            zones
                .iter()
                .map(|z| z.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let zone = match (&az, &az_id) {
            (Some(_), Some(_)) => {
                return Err(ApiError::new(
                    ErrorCode::InvalidParameterCombination,
                    "Only one of availabilityZone or availabilityZoneId may be specified",
                )
                .into())
            }
            (Some(n), None) => zones.iter().find(|z| &z.name == n).ok_or_else(|| {
                ApiError::invalid_value(
                    "availabilityZone",
                    n,
                    &format!("Subnets can currently only be created in the following availability zones: {}.", names()),
                )
            })?,
            (None, Some(i)) => zones.iter().find(|z| &z.id == i).ok_or_else(|| {
                ApiError::invalid_value(
                    "availabilityZoneId",
                    i,
                    &format!("Subnets can currently only be created in the following availability zones: {}.", names()),
                )
            })?,
            (None, None) => zones
                .first()
                .ok_or_else(|| CoreError::Invariant("a region without zones"))?,
        }
        .clone();
        let tags = tags::from_specifications(&specs, ResourceKind::Subnet)?;
        self.ensure_default_vpc(&account).await?;
        let now = self.clock.now_millis();
        let subnet = self
            .blocking(move |s| {
                s.write(|tx| {
                    let vpc = find_vpc(tx, &account, &vpc_id)?;
                    let vpc_net: Ipv4Net = vpc
                        .cidr
                        .parse()
                        .map_err(|_| CoreError::corrupt("vpc cidr", &vpc.cidr))?;
                    if !vpc_net.contains(&net) {
                        return Err(range_error());
                    }
                    let siblings: Vec<SubnetRow> = tx
                        .vpcs()
                        .subnets(&account)?
                        .into_iter()
                        .filter(|s| s.vpc_id == vpc_id)
                        .collect();
                    let overlaps = |s: &SubnetRow| {
                        s.cidr
                            .parse::<Ipv4Net>()
                            .is_ok_and(|o| o.contains(&net) || net.contains(&o))
                    };
                    if siblings.iter().any(overlaps) {
                        return Err(ApiError::new(
                            ErrorCode::InvalidSubnetConflict,
                            format!("The CIDR '{cidr_block}' conflicts with another subnet"),
                        )
                        .into());
                    }
                    if siblings.len() >= MAX_SUBNETS_PER_VPC {
                        return Err(ApiError::new(
                            ErrorCode::SubnetLimitExceeded,
                            "The maximum number of subnets has been reached.",
                        )
                        .into());
                    }
                    let row = SubnetRow {
                        id: ResourceId::generate(ResourceKind::Subnet).to_string(),
                        account_id: account.clone(),
                        vpc_id: vpc_id.clone(),
                        cidr: net.to_string(),
                        az: zone.name.clone(),
                        az_id: zone.id.clone(),
                        default_for_az: false,
                        map_public_ip: false,
                        created_at: now,
                    };
                    tx.resources().insert(&row.id, &account, "subnet", now)?;
                    tx.vpcs().insert_subnet(&row)?;
                    tx.tags().put(&account, &row.id, &tags)?;
                    Ok(subnet_model(row, tags))
                })
            })
            .await?;
        Ok(Response::CreateSubnet(subnet))
    }

    pub(crate) async fn delete_subnet(
        &self,
        account: String,
        subnet_id: String,
    ) -> CoreResult<Response> {
        self.ensure_default_vpc(&account).await?;
        self.blocking(move |s| {
            s.write(|tx| {
                let subnet = find_subnet(tx, &account, &subnet_id)?;
                if subnet.default_for_az {
                    return Err(ApiError::new(
                        ErrorCode::OperationNotPermitted,
                        format!(
                            "The default subnet '{subnet_id}' cannot be deleted in gureum: launches without a subnet use it"
                        ),
                    )
                    .into());
                }
                if !tx.vpcs().live_instances_in_subnet(&subnet_id)?.is_empty() {
                    return Err(dependency("subnet", &subnet_id));
                }
                // Its explicit route table association goes with it, as on AWS.
                for a in tx.routing().associations(&account)?
                    .into_iter()
                    .filter(|a| a.subnet_id == subnet_id)
                {
                    tx.routing().delete_association(&a.id)?;
                    tx.resources().delete(&account, &a.id)?;
                }
                tx.resources().delete(&account, &subnet_id)?;
                Ok::<_, CoreError>(())
            })
        })
        .await?;
        Ok(Response::Return)
    }

    pub(crate) async fn modify_subnet_attribute(
        &self,
        account: String,
        subnet_id: String,
        map_public_ip: Option<bool>,
    ) -> CoreResult<Response> {
        self.ensure_default_vpc(&account).await?;
        self.blocking(move |s| {
            s.write(|tx| {
                find_subnet(tx, &account, &subnet_id)?;
                if let Some(on) = map_public_ip {
                    tx.vpcs().set_map_public_ip(&subnet_id, on)?;
                }
                Ok::<_, CoreError>(())
            })
        })
        .await?;
        Ok(Response::Return)
    }
}

/// The errors a Describe call answers for requested ids of one kind.
#[derive(Debug, Clone, Copy)]
pub(crate) struct IdErrors {
    pub kind: ResourceKind,
    pub malformed: ErrorCode,
    pub not_found: ErrorCode,
    pub noun: &'static str,
}

/// The requested ids (each well-formed and existing, else AWS's error), then the filters, then
/// one page.
pub(crate) fn select<T: Describable>(
    items: Vec<T>,
    id_of: impl Fn(&T) -> &String,
    ids: &[String],
    filters: &[Filter],
    page: &Page,
    e: IdErrors,
) -> CoreResult<(Vec<T>, Option<String>)> {
    for id in ids {
        if ResourceId::parse(e.kind, id).is_none() {
            return Err(ApiError::new(e.malformed, format!("Invalid id: \"{id}\"")).into());
        }
        if !items.iter().any(|i| id_of(i) == id) {
            return Err(ApiError::new(
                e.not_found,
                format!("The {} ID '{id}' does not exist", e.noun),
            )
            .into());
        }
    }
    let items: Vec<T> = items
        .into_iter()
        .filter(|i| ids.is_empty() || ids.contains(id_of(i)))
        .filter(|i| describe::matches(i, filters))
        .collect();
    Ok(describe::paginate(items, |i| id_of(i).clone(), page)?)
}

impl Cloud {
    /// Run one VPC or subnet action for the calling account (the dry-run check is
    /// [`Cloud::dispatch`]'s).
    pub(crate) async fn dispatch_vpcs(&self, ctx: &Ctx, action: Action) -> CoreResult<Response> {
        let acct = ctx.account_id.clone();
        Ok(match action {
            Action::DescribeVpcs {
                vpc_ids,
                filters,
                page,
            } => self.describe_vpcs(acct, vpc_ids, filters, page).await?,
            Action::DescribeSubnets {
                subnet_ids,
                filters,
                page,
            } => {
                self.describe_subnets(acct, subnet_ids, filters, page)
                    .await?
            }
            Action::CreateVpc {
                cidr_block,
                instance_tenancy,
                tag_specifications,
            } => {
                self.create_vpc(acct, cidr_block, instance_tenancy, tag_specifications)
                    .await?
            }
            Action::DeleteVpc { vpc_id } => self.delete_vpc(acct, vpc_id).await?,
            Action::ModifyVpcAttribute {
                vpc_id,
                attribute,
                value,
            } => {
                self.modify_vpc_attribute(acct, vpc_id, attribute, value)
                    .await?
            }
            Action::DescribeVpcAttribute { vpc_id, attribute } => {
                self.describe_vpc_attribute(acct, vpc_id, attribute).await?
            }
            Action::CreateSubnet {
                vpc_id,
                cidr_block,
                availability_zone,
                availability_zone_id,
                tag_specifications,
            } => {
                self.create_subnet(
                    acct,
                    vpc_id,
                    cidr_block,
                    availability_zone,
                    availability_zone_id,
                    tag_specifications,
                )
                .await?
            }
            Action::DeleteSubnet { subnet_id } => self.delete_subnet(acct, subnet_id).await?,
            Action::ModifySubnetAttribute {
                subnet_id,
                map_public_ip_on_launch,
            } => {
                self.modify_subnet_attribute(acct, subnet_id, map_public_ip_on_launch)
                    .await?
            }
        })
    }
}
