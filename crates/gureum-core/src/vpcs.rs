//! VPCs and subnets. Every account has a default VPC (`172.31.0.0/16`) with a default
//! subnet per availability zone (`172.31.0.0/20`, `172.31.16.0/20`, `172.31.32.0/20`), made
//! the first time the account needs it, as AWS makes them when an account is created.
//!
//! On the host, all default VPCs share one L2 network ([`DEFAULT_NET`]) and one address
//! space, so every private IP is unique host-wide and the host can reach each of them; the
//! isolation between accounts is the network driver's firewall's job (networking issue).

use std::net::Ipv4Addr;

use gureum_ec2::{Page, Response};
use gureum_store::{resources, tags as tag_db, vpcs as db};
use gureum_types::model::{Filter, Subnet, Tag, Vpc};
use gureum_types::{ApiError, ErrorCode, ResourceId, ResourceKind};
use ipnet::Ipv4Net;

use crate::describe::{self, Describable};
use crate::host::HostNet;
use crate::{Cloud, CoreResult};

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

/// The host network of the default VPCs: the three default subnets with their gateways.
pub fn default_host_net() -> HostNet {
    HostNet {
        id: DEFAULT_NET.to_string(),
        subnets: (0..3)
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
            "cidr" | "cidr-block-association.cidr-block" | "cidrBlock" => self.cidr.clone(),
            "is-default" | "isDefault" => self.is_default.to_string(),
            "owner-id" => self.owner_id.clone(),
            "state" => self.state.clone(),
            "dhcp-options-id" => "default".into(),
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
            "state" => "available".into(),
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
    "cidr-block-association.cidr-block",
    "cidrBlock",
    "is-default",
    "isDefault",
    "owner-id",
    "state",
    "dhcp-options-id",
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
    /// Create the account's default VPC and subnets if it has none. Blocking.
    pub(crate) fn ensure_default_vpc_sync(
        &self,
        c: &gureum_store::rusqlite::Transaction,
        account: &str,
    ) -> CoreResult<()> {
        if db::vpcs(c, account)?.iter().any(|v| v.is_default) {
            return Ok(());
        }
        let now = self.clock.now_millis();
        let vpc_id = ResourceId::generate(ResourceKind::Vpc).to_string();
        resources::insert(c, &vpc_id, account, "vpc", now)?;
        db::insert_vpc(
            c,
            &db::VpcRow {
                id: vpc_id.clone(),
                account_id: account.to_string(),
                cidr: DEFAULT_VPC_CIDR.into(),
                is_default: true,
                created_at: now,
            },
        )?;
        crate::security_groups::create_default_group_tx(c, account, &vpc_id, now)?;
        for (i, zone) in self.region.zones.iter().enumerate() {
            let id = ResourceId::generate(ResourceKind::Subnet).to_string();
            resources::insert(c, &id, account, "subnet", now)?;
            db::insert_subnet(
                c,
                &db::SubnetRow {
                    id,
                    account_id: account.to_string(),
                    vpc_id: vpc_id.clone(),
                    cidr: format!("172.31.{}.0/20", i * 16),
                    az: zone.name.clone(),
                    az_id: zone.id.clone(),
                    default_for_az: true,
                    map_public_ip: true,
                    created_at: now,
                },
            )?;
        }
        Ok(())
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
                let mut tags = tag_db::all_by_resource(c, &account)?;
                let in_use = gureum_store::instances::ips_in_use(c)?;
                let vpcs = db::vpcs(c, &account)?
                    .into_iter()
                    .map(|v| Vpc {
                        tags: tags.remove(&v.id).unwrap_or_default(),
                        id: v.id,
                        owner_id: v.account_id,
                        cidr: v.cidr,
                        is_default: v.is_default,
                        state: "available".into(),
                    })
                    .collect();
                let subnets = db::subnets(c, &account)?
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
        let ids_of = IdErrors {
            kind: ResourceKind::Vpc,
            malformed: ErrorCode::InvalidVpcIDMalformed,
            not_found: ErrorCode::InvalidVpcIDNotFound,
            noun: "vpc",
        };
        let (vpcs, next_token) = select(vpcs, |v| &v.id, &ids, &filters, &page, ids_of)?;
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
        let ids_of = IdErrors {
            kind: ResourceKind::Subnet,
            malformed: ErrorCode::InvalidSubnetIDMalformed,
            not_found: ErrorCode::InvalidSubnetIDNotFound,
            noun: "subnet",
        };
        let (subnets, next_token) = select(subnets, |s| &s.id, &ids, &filters, &page, ids_of)?;
        Ok(Response::DescribeSubnets {
            subnets,
            next_token,
        })
    }
}

/// The errors a Describe call answers for requested ids of one kind.
struct IdErrors {
    kind: ResourceKind,
    malformed: ErrorCode,
    not_found: ErrorCode,
    noun: &'static str,
}

/// The requested ids (each well-formed and existing, else AWS's error), then the filters, then
/// one page.
fn select<T: Describable>(
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
