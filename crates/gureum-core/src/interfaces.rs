//! `DescribeNetworkInterfaces`: every live instance's primary interface (gureum instances have
//! exactly one, made and deleted with the instance), with its addresses, groups and public
//! association as AWS shows them.

use gureum_ec2::ops::interfaces::{Action, Response};
use gureum_ec2::Page;
use gureum_types::model::{Filter, NetworkInterface, PublicAssociation, Tag};
use gureum_types::{ApiError, ErrorCode, ResourceId, ResourceKind};
use gureum_types::{HttpEndpoint, HttpTokens, InstanceState};

use crate::describe::{self, Describable};
use crate::instances::instance_model;
use crate::{Cloud, CoreResult, Ctx};

const INTERFACE_FILTERS: &[&str] = &[
    "network-interface-id",
    "attachment.instance-id",
    "attachment.instance-owner-id",
    "attachment.status",
    "attachment.attachment-id",
    "attachment.device-index",
    "subnet-id",
    "vpc-id",
    "availability-zone",
    "private-ip-address",
    "addresses.private-ip-address",
    "addresses.primary",
    "association.public-ip",
    "association.allocation-id",
    "association.association-id",
    "association.ip-owner-id",
    "group-id",
    "group-name",
    "status",
    "mac-address",
    "owner-id",
    "private-dns-name",
    "interface-type",
    "requester-managed",
    "source-dest-check",
    "description",
];

impl Describable for NetworkInterface {
    fn filter_values(&self, name: &str) -> Option<Vec<String>> {
        let assoc = |f: fn(&PublicAssociation) -> Option<String>| {
            self.association.as_ref().and_then(f).into_iter().collect()
        };
        Some(match name {
            "network-interface-id" => vec![self.id.clone()],
            "attachment.instance-id" => vec![self.instance_id.clone()],
            "attachment.instance-owner-id" | "owner-id" => vec![self.owner_id.clone()],
            "attachment.status" => vec![self.attachment_status.clone()],
            "attachment.attachment-id" => vec![self.id.replacen("eni-", "eni-attach-", 1)],
            "attachment.device-index" => vec!["0".into()],
            "subnet-id" => vec![self.subnet_id.clone()],
            "vpc-id" => vec![self.vpc_id.clone()],
            "availability-zone" => vec![self.availability_zone.clone()],
            "private-ip-address" | "addresses.private-ip-address" => {
                vec![self.private_ip.clone()]
            }
            "addresses.primary" => vec!["true".into()],
            "association.public-ip" => assoc(|a| Some(a.public_ip.clone())),
            "association.allocation-id" => assoc(|a| a.allocation_id.clone()),
            "association.association-id" => assoc(|a| a.association_id.clone()),
            "association.ip-owner-id" => assoc(|a| Some(a.ip_owner_id.clone())),
            "group-id" => self.groups.iter().map(|g| g.0.clone()).collect(),
            "group-name" => self.groups.iter().map(|g| g.1.clone()).collect(),
            "status" => vec![self.status.clone()],
            "mac-address" => vec![self.mac.clone()],
            "private-dns-name" => vec![self.private_dns_name.clone()],
            "interface-type" => vec!["interface".into()],
            "requester-managed" => vec!["false".into()],
            "source-dest-check" => vec!["true".into()],
            "description" => vec![String::new()],
            _ => return None,
        })
    }
    fn tags(&self) -> &[Tag] {
        &self.tags
    }
}

impl Cloud {
    pub(crate) async fn describe_network_interfaces(
        &self,
        account: String,
        ids: Vec<String>,
        filters: Vec<Filter>,
        page: Page,
    ) -> CoreResult<Response> {
        describe::validate_filters(&filters, INTERFACE_FILTERS, true)?;
        let rows = self.instance_rows_with_groups(&account).await?;
        let acct = account.clone();
        let eips = self
            .blocking(move |s| s.read(|c| Ok(c.addresses().by_account(&acct)?)))
            .await?;
        let region = self.region.name.clone();
        let interfaces: Vec<NetworkInterface> = rows
            .into_iter()
            .filter(|(r, _, _)| r.state != InstanceState::Terminated)
            .map(|(r, _, groups)| {
                let eip = eips
                    .iter()
                    .find(|a| a.instance_id.as_deref() == Some(r.id.as_str()));
                let i = instance_model(&r, vec![]);
                let association = i.public_ip.clone().map(|ip| PublicAssociation {
                    public_dns_name: i.public_dns_name(&region),
                    public_ip: ip,
                    ip_owner_id: match eip {
                        Some(_) => r.account_id.clone(),
                        None => "amazon".into(),
                    },
                    allocation_id: eip.map(|a| a.allocation_id.clone()),
                    association_id: eip.and_then(|a| a.association_id.clone()),
                });
                NetworkInterface {
                    id: r.eni_id.clone(),
                    owner_id: r.account_id.clone(),
                    subnet_id: r.subnet_id.clone(),
                    vpc_id: r.vpc_id.clone(),
                    availability_zone: r.az.clone(),
                    mac: i.mac.clone(),
                    private_dns_name: i.private_dns_name(&region),
                    private_ip: r.private_ip.clone(),
                    status: "in-use".into(),
                    instance_id: r.id.clone(),
                    attachment_status: if r.state == InstanceState::ShuttingDown {
                        "detaching".into()
                    } else {
                        "attached".into()
                    },
                    attach_time: i.launch_time.clone(),
                    delete_on_termination: true,
                    groups,
                    association,
                    tags: vec![],
                }
            })
            .collect();
        let ids_of = crate::vpcs::IdErrors {
            kind: ResourceKind::NetworkInterface,
            malformed: ErrorCode::InvalidNetworkInterfaceIDMalformed,
            not_found: ErrorCode::InvalidNetworkInterfaceIDNotFound,
            noun: "networkInterface",
        };
        let (interfaces, next_token) =
            crate::vpcs::select(interfaces, |n| &n.id, &ids, &filters, &page, ids_of)?;
        Ok(Response::DescribeNetworkInterfaces {
            interfaces,
            next_token,
        })
    }

    /// `ModifyInstanceMetadataOptions`: the instance's metadata service settings, effective at
    /// once (the metadata server reads them per request).
    pub(crate) async fn modify_instance_metadata_options(
        &self,
        account: String,
        instance_id: String,
        http_tokens: Option<HttpTokens>,
        http_endpoint: Option<HttpEndpoint>,
        hop_limit: Option<u32>,
    ) -> CoreResult<Response> {
        let rows = self.instance_rows(&account).await?;
        if ResourceId::parse(ResourceKind::Instance, &instance_id).is_none() {
            return Err(ApiError::new(
                ErrorCode::InvalidInstanceIDMalformed,
                format!("Invalid id: \"{instance_id}\""),
            )
            .into());
        }
        let Some((r, _)) = rows.into_iter().find(|(r, _)| r.id == instance_id) else {
            return Err(ApiError::new(
                ErrorCode::InvalidInstanceIDNotFound,
                format!("The instance ID '{instance_id}' does not exist"),
            )
            .into());
        };
        if r.state == InstanceState::Terminated {
            return Err(ApiError::new(
                ErrorCode::IncorrectInstanceState,
                format!("The instance '{instance_id}' is not in a valid state for this operation."),
            )
            .into());
        }
        let tokens = http_tokens.unwrap_or(r.md_http_tokens);
        let endpoint = http_endpoint.unwrap_or(r.md_http_endpoint);
        let hop = hop_limit.unwrap_or(r.md_hop_limit);
        let id = instance_id.clone();
        self.blocking(move |s| {
            s.write(|tx| {
                tx.instances()
                    .set_metadata_options(&id, tokens, endpoint, hop)?;
                Ok(())
            })
        })
        .await?;
        Ok(Response::ModifyInstanceMetadataOptions {
            instance_id,
            http_tokens: tokens,
            http_endpoint: endpoint,
            hop_limit: hop,
        })
    }
}

impl Cloud {
    /// Run one network interface or metadata options action for the calling account (the dry-run check is
    /// [`Cloud::dispatch`]'s).
    pub(crate) async fn dispatch_interfaces(
        &self,
        ctx: &Ctx,
        action: Action,
    ) -> CoreResult<Response> {
        let acct = ctx.account_id.clone();
        Ok(match action {
            Action::DescribeNetworkInterfaces { ids, filters, page } => {
                self.describe_network_interfaces(acct, ids, filters, page)
                    .await?
            }
            Action::ModifyInstanceMetadataOptions {
                instance_id,
                http_tokens,
                http_endpoint,
                hop_limit,
            } => {
                self.modify_instance_metadata_options(
                    acct,
                    instance_id,
                    http_tokens,
                    http_endpoint,
                    hop_limit,
                )
                .await?
            }
        })
    }
}
