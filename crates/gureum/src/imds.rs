//! Wiring of the instance metadata service: a [`MetadataSource`] over the core, and the
//! listener on 169.254.169.254:80, which exists once the network driver has put that address on
//! the instances' bridge (so the service starts when the first network does).

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use gureum_core::Cloud;
use gureum_imds::{ImdsServer, InstanceMetadata, MetadataSource};

/// The address every EC2 instance reaches its metadata at.
pub const IMDS_ADDR: Ipv4Addr = Ipv4Addr::new(169, 254, 169, 254);

struct StoreSource(Cloud);

#[async_trait]
impl MetadataSource for StoreSource {
    async fn instance_by_ip(&self, ip: Ipv4Addr) -> Option<Arc<InstanceMetadata>> {
        let v = match self.0.metadata_by_private_ip(ip).await {
            Ok(Some(v)) => v,
            Ok(None) => return None,
            Err(e) => {
                tracing::warn!(error = %e, "metadata lookup failed");
                return None;
            }
        };
        let i = v.instance;
        Some(Arc::new(InstanceMetadata {
            local_hostname: i.private_dns_name(&v.region),
            local_ipv4: i.private_ip.parse().ok()?,
            public_ipv4: i.public_ip.as_deref().and_then(|p| p.parse().ok()),
            public_hostname: i.public_ip.is_some().then(|| i.public_dns_name(&v.region)),
            availability_zone: i.availability_zone.clone(),
            availability_zone_id: v.availability_zone_id,
            region: v.region,
            reservation_id: i.reservation_id.clone(),
            security_groups: i.security_groups.iter().map(|g| g.1.clone()).collect(),
            security_group_ids: i.security_groups.iter().map(|g| g.0.clone()).collect(),
            public_keys: v.key.into_iter().collect(),
            user_data: v.user_data,
            block_device_mapping: vec![
                ("ami".into(), "/dev/xvda".into()),
                ("root".into(), "/dev/xvda".into()),
            ],
            vpc_id: i.vpc_id.clone(),
            subnet_id: i.subnet_id.clone(),
            subnet_ipv4_cidr_block: v.subnet_cidr,
            vpc_ipv4_cidr_block: v.vpc_cidr,
            account_id: i.owner_id.clone(),
            architecture: i.architecture,
            launch_time: i.launch_time.clone(),
            http_tokens: i.metadata_http_tokens,
            http_endpoint: i.metadata_http_endpoint,
            hop_limit: i.metadata_hop_limit.clamp(1, 64) as u8,
            tags: None,
            instance_id: i.id,
            ami_id: i.image_id,
            ami_launch_index: i.launch_index,
            instance_type: i.instance_type,
            mac: i.mac,
            interface_id: i.network_interface_id,
        }))
    }
}

/// Serve the metadata service as soon as its address exists on this host.
pub fn spawn(cloud: Cloud) {
    tokio::spawn(async move {
        let addr = SocketAddr::from((IMDS_ADDR, 80));
        let listener = loop {
            match tokio::net::TcpListener::bind(addr).await {
                Ok(l) => break l,
                // Not yet on the bridge (no instance network yet): try again shortly.
                Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
            }
        };
        tracing::info!(%addr, "instance metadata service listening");
        let server = ImdsServer::new(Arc::new(StoreSource(cloud)), std::time::SystemTime::now);
        if let Err(e) = server.serve(listener, std::future::pending::<()>()).await {
            tracing::error!(error = %e, "the metadata service stopped");
        }
    });
}
