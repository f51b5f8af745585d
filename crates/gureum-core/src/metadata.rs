//! What the instance metadata service serves about an instance, looked up by the private
//! address a request came from (the network driver's anti-spoofing binds that address to the
//! instance's own interface).

use std::net::Ipv4Addr;

use gureum_types::model::Instance;

use crate::instances::instance_model;
use crate::{Cloud, CoreResult};

/// An instance with what only the metadata service needs.
#[derive(Debug, Clone)]
pub struct MetadataView {
    pub instance: Instance,
    pub user_data: Option<Vec<u8>>,
    /// (key name, OpenSSH public key line)
    pub key: Option<(String, String)>,
    pub subnet_cidr: String,
    pub vpc_cidr: String,
    pub availability_zone_id: String,
    pub region: String,
}

impl Cloud {
    pub async fn metadata_by_private_ip(&self, ip: Ipv4Addr) -> CoreResult<Option<MetadataView>> {
        let region = self.region.clone();
        self.blocking(move |s| {
            s.read(|c| {
                let Some(r) = c.instances().by_private_ip(&ip.to_string())? else {
                    return Ok(None);
                };
                let tags = c
                    .tags()
                    .all_by_resource(&r.account_id)?
                    .remove(&r.id)
                    .unwrap_or_default();
                let subnet_cidr = c
                    .vpcs()
                    .subnets(&r.account_id)?
                    .into_iter()
                    .find(|s| s.id == r.subnet_id)
                    .map(|s| s.cidr)
                    .unwrap_or_default();
                let vpc_cidr = c
                    .vpcs()
                    .vpcs(&r.account_id)?
                    .into_iter()
                    .find(|v| v.id == r.vpc_id)
                    .map(|v| v.cidr)
                    .unwrap_or_default();
                let az_id = region
                    .zones
                    .iter()
                    .find(|z| z.name == r.az)
                    .map(|z| z.id.clone())
                    .unwrap_or_default();
                let mut instance = instance_model(&r, tags);
                instance.security_groups = Cloud::instance_groups_tx(c, &r.account_id)?
                    .remove(&r.id)
                    .unwrap_or_default();
                Ok(Some(MetadataView {
                    instance,
                    user_data: r.user_data.clone(),
                    key: r.key_name.clone().zip(r.public_key.clone()),
                    subnet_cidr,
                    vpc_cidr,
                    availability_zone_id: az_id,
                    region: region.name.clone(),
                }))
            })
        })
        .await
    }
}
