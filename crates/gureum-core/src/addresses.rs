//! Elastic IP addresses: `AllocateAddress`, `AssociateAddress`, `DisassociateAddress`,
//! `ReleaseAddress` and `DescribeAddresses`, with AWS's semantics and errors.
//!
//! Elastic IPs come from the same public pool as auto-assigned addresses. An associated
//! Elastic IP replaces the instance's auto-assigned address (which is released) and stays
//! through stop and start; the instance's record (`instances.public_ip`) always holds the
//! address it answers on, and the host agent maps it in the kernel (see
//! [`crate::agent::Agent::sync_public_ips`]). Terminating an instance disassociates its Elastic IP.

use gureum_store::addresses::AddressRow;
use gureum_store::Tx;
use gureum_types::model::{Address, Filter, Tag, TagSpecification};
use gureum_types::InstanceState;
use gureum_types::{ApiError, ErrorCode, ResourceId, ResourceKind};

use crate::describe::{self, Describable};
use crate::{tags, Cloud, CoreError, CoreResult, Ctx};
use gureum_ec2::ops::addresses::{Action, Response};

/// AWS's default quota of Elastic IPs per account and region.
pub const MAX_ADDRESSES: usize = 5;

const ADDRESS_FILTERS: &[&str] = &[
    "allocation-id",
    "association-id",
    "domain",
    "instance-id",
    "network-interface-id",
    "network-interface-owner-id",
    "private-ip-address",
    "public-ip",
    "network-border-group",
];

impl Describable for Address {
    fn filter_values(&self, name: &str) -> Option<Vec<String>> {
        let opt = |v: &Option<String>| v.iter().cloned().collect();
        Some(match name {
            "allocation-id" => vec![self.allocation_id.clone()],
            "association-id" => opt(&self.association_id),
            "domain" => vec!["vpc".into()],
            "instance-id" => opt(&self.instance_id),
            "network-interface-id" => opt(&self.network_interface_id),
            "network-interface-owner-id" => opt(&self.network_interface_owner_id),
            "private-ip-address" => opt(&self.private_ip),
            "public-ip" => vec![self.public_ip.clone()],
            "network-border-group" => vec![],
            _ => return None,
        })
    }
    fn tags(&self) -> &[Tag] {
        &self.tags
    }
}

fn allocation_not_found(id: &str) -> CoreError {
    ApiError::new(
        ErrorCode::InvalidAllocationIDNotFound,
        format!("The allocation ID '{id}' does not exist"),
    )
    .into()
}

fn address_not_found(ip: &str) -> CoreError {
    ApiError::new(
        ErrorCode::InvalidAddressNotFound,
        format!("Address '{ip}' not found."),
    )
    .into()
}

/// The account's allocation named by id or by address.
fn find(
    tx: &dyn Tx,
    account: &str,
    allocation_id: Option<&str>,
    public_ip: Option<&str>,
) -> CoreResult<AddressRow> {
    let all = tx.addresses().by_account(account)?;
    if let Some(id) = allocation_id {
        if ResourceId::parse(ResourceKind::ElasticIp, id).is_none() {
            return Err(ApiError::new(
                ErrorCode::InvalidAllocationIDMalformed,
                format!("Invalid id: \"{id}\" (expecting \"eipalloc-...\")"),
            )
            .into());
        }
        return all
            .into_iter()
            .find(|a| a.allocation_id == id)
            .ok_or_else(|| allocation_not_found(id));
    }
    let ip = public_ip.unwrap_or_default();
    all.into_iter()
        .find(|a| a.public_ip == ip)
        .ok_or_else(|| address_not_found(ip))
}

/// Detach the allocation from whatever instance holds it; that instance's public address goes
/// with it (the host agent gives it an auto-assigned one again if it takes one).
fn unlink(tx: &dyn Tx, a: &AddressRow, now: i64) -> CoreResult<()> {
    if let Some(inst) = &a.instance_id {
        tx.instances().clear_public_ip_if(inst, &a.public_ip, now)?;
    }
    tx.addresses()
        .set_association(&a.allocation_id, None, None, now)?;
    Ok(())
}

/// When an instance is terminated its Elastic IP is disassociated. Blocking.
pub(crate) fn release_for_terminated(tx: &dyn Tx, instance_id: &str, now: i64) -> CoreResult<()> {
    if let Some(a) = tx.addresses().of_instance(instance_id)? {
        unlink(tx, &a, now)?;
    }
    Ok(())
}

impl Cloud {
    pub(crate) async fn allocate_address(
        &self,
        account: String,
        address: Option<String>,
        specs: Vec<TagSpecification>,
    ) -> CoreResult<Response> {
        let tags = tags::from_specifications(&specs, ResourceKind::ElasticIp)?;
        let pool = self.public_pool;
        let now = self.clock.now_millis();
        let (public_ip, allocation_id) = self
            .blocking(move |s| {
                s.write(|tx| {
                    if tx.addresses().by_account(&account)?.len() >= MAX_ADDRESSES {
                        return Err(ApiError::new(
                            ErrorCode::AddressLimitExceeded,
                            "The maximum number of addresses has been reached.",
                        )
                        .into());
                    }
                    let used = tx.addresses().public_ips_in_use()?;
                    let n = match &address {
                        Some(a) => {
                            let ip: std::net::Ipv4Addr = a.parse().map_err(|_| {
                                CoreError::Api(ApiError::invalid_value(
                                    "Address",
                                    a,
                                    "Invalid IPv4 address.",
                                ))
                            })?;
                            let n = u32::from(ip);
                            if !(pool.0..=pool.1).contains(&n) || used.contains(&n) {
                                return Err(ApiError::new(
                                    ErrorCode::InvalidParameterValue,
                                    format!("The address {a} is not available in this pool."),
                                )
                                .into());
                            }
                            n
                        }
                        None => (pool.0..=pool.1)
                            .find(|n| !used.contains(n))
                            .ok_or_else(|| {
                                CoreError::Api(ApiError::new(
                                    ErrorCode::AddressLimitExceeded,
                                    "The public address pool is exhausted.",
                                ))
                            })?,
                    };
                    let row = AddressRow {
                        allocation_id: ResourceId::generate(ResourceKind::ElasticIp).to_string(),
                        account_id: account.clone(),
                        public_ip: std::net::Ipv4Addr::from(n).to_string(),
                        instance_id: None,
                        association_id: None,
                        created_at: now,
                    };
                    tx.resources()
                        .insert(&row.allocation_id, &account, "elastic-ip", now)?;
                    tx.addresses().insert(&row)?;
                    tx.tags().put(&account, &row.allocation_id, &tags)?;
                    Ok((row.public_ip, row.allocation_id))
                })
            })
            .await?;
        Ok(Response::AllocateAddress {
            public_ip,
            allocation_id,
            region: self.region.name.clone(),
        })
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn associate_address(
        &self,
        account: String,
        allocation_id: Option<String>,
        public_ip: Option<String>,
        instance_id: Option<String>,
        eni_id: Option<String>,
        private_ip: Option<String>,
        allow_reassociation: bool,
    ) -> CoreResult<Response> {
        let now = self.clock.now_millis();
        let association_id = self
            .blocking(move |s| {
                s.write(|tx| {
                    let a = find(tx, &account, allocation_id.as_deref(), public_ip.as_deref())?;
                    let rows = tx.instances().of_account(&account)?;
                    let target = match (&instance_id, &eni_id) {
                        (Some(id), _) => {
                            if ResourceId::parse(ResourceKind::Instance, id).is_none() {
                                return Err(ApiError::new(
                                    ErrorCode::InvalidInstanceIDMalformed,
                                    format!("Invalid id: \"{id}\""),
                                )
                                .into());
                            }
                            rows.iter().find(|r| &r.id == id).ok_or_else(|| {
                                CoreError::Api(ApiError::new(
                                    ErrorCode::InvalidInstanceIDNotFound,
                                    format!("The instance ID '{id}' does not exist"),
                                ))
                            })?
                        }
                        (None, Some(eni)) => {
                            if ResourceId::parse(ResourceKind::NetworkInterface, eni).is_none() {
                                return Err(ApiError::new(
                                    ErrorCode::InvalidNetworkInterfaceIDMalformed,
                                    format!("Invalid id: \"{eni}\" (expecting \"eni-...\")"),
                                )
                                .into());
                            }
                            rows.iter()
                                .find(|r| &r.eni_id == eni && r.state != InstanceState::Terminated)
                                .ok_or_else(|| {
                                    CoreError::Api(ApiError::new(
                                        ErrorCode::InvalidNetworkInterfaceIDNotFound,
                                        format!("The networkInterface ID '{eni}' does not exist"),
                                    ))
                                })?
                        }
                        (None, None) => return Err(ApiError::missing_parameter("InstanceId").into()),
                    };
                    if matches!(target.state, InstanceState::Terminated | InstanceState::ShuttingDown) {
                        return Err(ApiError::new(
                            ErrorCode::IncorrectInstanceState,
                            format!(
                                "The instance '{}' is not in a valid state for this operation.",
                                target.id
                            ),
                        )
                        .into());
                    }
                    if let Some(p) = &private_ip {
                        if p != &target.private_ip {
                            return Err(ApiError::new(
                                ErrorCode::InvalidParameterValue,
                                format!(
                                    "The private IP address {p} is not associated with the instance {}",
                                    target.id
                                ),
                            )
                            .into());
                        }
                    }
                    if a.instance_id.as_deref() == Some(target.id.as_str()) {
                        return Ok(a.association_id.clone().unwrap_or_default());
                    }
                    if let (Some(_), Some(assoc)) = (&a.instance_id, &a.association_id) {
                        if !allow_reassociation {
                            return Err(ApiError::new(
                                ErrorCode::ResourceAlreadyAssociated,
                                format!(
                                    "resource {} is already associated with associate-id {assoc}",
                                    a.allocation_id
                                ),
                            )
                            .into());
                        }
                    }
                    unlink(tx, &a, now)?;
                    // An instance holds one Elastic IP: a previous one stays allocated, unlinked.
                    if let Some(prev) = tx.addresses().of_instance(&target.id)? {
                        unlink(tx, &prev, now)?;
                    }
                    let assoc = ResourceId::generate(ResourceKind::ElasticIpAssociation).to_string();
                    tx.addresses().set_association(&a.allocation_id, Some(&target.id), Some(&assoc), now)?;
                    tx.instances().set_public_ip(&target.id, &a.public_ip, now)?;
                    Ok(assoc)
                })
            })
            .await?;
        self.wake_agent();
        Ok(Response::AssociateAddress { association_id })
    }

    pub(crate) async fn disassociate_address(
        &self,
        account: String,
        association_id: Option<String>,
        public_ip: Option<String>,
    ) -> CoreResult<Response> {
        let now = self.clock.now_millis();
        self.blocking(move |s| {
            s.write(|tx| {
                let all = tx.addresses().by_account(&account)?;
                let a = match (&association_id, &public_ip) {
                    (Some(assoc), _) => all
                        .into_iter()
                        .find(|a| a.association_id.as_deref() == Some(assoc.as_str()))
                        .ok_or_else(|| {
                            CoreError::Api(ApiError::new(
                                ErrorCode::InvalidAssociationIDNotFound,
                                format!("The association ID '{assoc}' does not exist"),
                            ))
                        })?,
                    (None, Some(ip)) => {
                        let a = all
                            .into_iter()
                            .find(|a| &a.public_ip == ip)
                            .ok_or_else(|| address_not_found(ip))?;
                        if a.association_id.is_none() {
                            return Err(ApiError::new(
                                ErrorCode::InvalidAssociationIDNotFound,
                                format!("The address '{ip}' is not associated"),
                            )
                            .into());
                        }
                        a
                    }
                    (None, None) => return Err(ApiError::missing_parameter("AssociationId").into()),
                };
                unlink(tx, &a, now)
            })
        })
        .await?;
        self.wake_agent();
        Ok(Response::Return)
    }

    pub(crate) async fn release_address(
        &self,
        account: String,
        allocation_id: Option<String>,
        public_ip: Option<String>,
    ) -> CoreResult<Response> {
        let now = self.clock.now_millis();
        self.blocking(move |s| {
            s.write(|tx| {
                let a = find(tx, &account, allocation_id.as_deref(), public_ip.as_deref())?;
                if a.association_id.is_some() {
                    return Err(ApiError::new(
                        ErrorCode::InvalidIPAddressInUse,
                        format!("Address {} is in use.", a.allocation_id),
                    )
                    .into());
                }
                tx.usage()
                    .close(&a.allocation_id, gureum_store::usage::ELASTIC_IP, now)?;
                tx.resources().delete(&account, &a.allocation_id)?;
                Ok(())
            })
        })
        .await?;
        Ok(Response::Return)
    }

    pub(crate) async fn describe_addresses(
        &self,
        account: String,
        public_ips: Vec<String>,
        allocation_ids: Vec<String>,
        filters: Vec<Filter>,
    ) -> CoreResult<Response> {
        describe::validate_filters(&filters, ADDRESS_FILTERS, true)?;
        let addresses = self
            .blocking(move |s| {
                s.read(|c| {
                    let mut tags = c.tags().all_by_resource(&account)?;
                    let rows = c.addresses().by_account(&account)?;
                    let instances = c.instances().of_account(&account)?;
                    Ok(rows
                        .into_iter()
                        .map(|a| {
                            let inst = a
                                .instance_id
                                .as_ref()
                                .and_then(|i| instances.iter().find(|r| &r.id == i));
                            Address {
                                tags: tags.remove(&a.allocation_id).unwrap_or_default(),
                                public_ip: a.public_ip,
                                allocation_id: a.allocation_id,
                                association_id: a.association_id,
                                instance_id: a.instance_id,
                                network_interface_id: inst.map(|r| r.eni_id.clone()),
                                network_interface_owner_id: inst.map(|r| r.account_id.clone()),
                                private_ip: inst.map(|r| r.private_ip.clone()),
                            }
                        })
                        .collect::<Vec<_>>())
                })
            })
            .await?;
        for id in &allocation_ids {
            if ResourceId::parse(ResourceKind::ElasticIp, id).is_none() {
                return Err(ApiError::new(
                    ErrorCode::InvalidAllocationIDMalformed,
                    format!("Invalid id: \"{id}\" (expecting \"eipalloc-...\")"),
                )
                .into());
            }
            if !addresses.iter().any(|a| &a.allocation_id == id) {
                return Err(allocation_not_found(id));
            }
        }
        for ip in &public_ips {
            if !addresses.iter().any(|a| &a.public_ip == ip) {
                return Err(address_not_found(ip));
            }
        }
        let addresses = addresses
            .into_iter()
            .filter(|a| allocation_ids.is_empty() || allocation_ids.contains(&a.allocation_id))
            .filter(|a| public_ips.is_empty() || public_ips.contains(&a.public_ip))
            .filter(|a| describe::matches(a, &filters))
            .collect();
        Ok(Response::DescribeAddresses {
            addresses,
            region: self.region.name.clone(),
        })
    }
}

impl Cloud {
    /// Run one Elastic IP action for the calling account (the dry-run check is
    /// [`Cloud::dispatch`]'s).
    pub(crate) async fn dispatch_addresses(
        &self,
        ctx: &Ctx,
        action: Action,
    ) -> CoreResult<Response> {
        let acct = ctx.account_id.clone();
        Ok(match action {
            Action::AllocateAddress {
                address,
                tag_specifications,
            } => {
                self.allocate_address(acct, address, tag_specifications)
                    .await?
            }
            Action::AssociateAddress {
                allocation_id,
                public_ip,
                instance_id,
                network_interface_id,
                private_ip,
                allow_reassociation,
            } => {
                self.associate_address(
                    acct,
                    allocation_id,
                    public_ip,
                    instance_id,
                    network_interface_id,
                    private_ip,
                    allow_reassociation,
                )
                .await?
            }
            Action::DisassociateAddress {
                association_id,
                public_ip,
            } => {
                self.disassociate_address(acct, association_id, public_ip)
                    .await?
            }
            Action::ReleaseAddress {
                allocation_id,
                public_ip,
            } => self.release_address(acct, allocation_id, public_ip).await?,
            Action::DescribeAddresses {
                public_ips,
                allocation_ids,
                filters,
            } => {
                self.describe_addresses(acct, public_ips, allocation_ids, filters)
                    .await?
            }
        })
    }
}
