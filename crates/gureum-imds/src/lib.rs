//! The EC2 instance metadata service (IMDS) that gureum's instances reach at
//! `http://169.254.169.254/`.
//!
//! The crate knows nothing of the rest of gureum: it asks a [`MetadataSource`] (which the binary
//! implements over the store) for the instance behind a connection's source address, and answers
//! IMDSv1 (`GET`) and IMDSv2 (`PUT /latest/api/token`, then `GET` with
//! `X-aws-ec2-metadata-token`) the way EC2 does. [`ImdsServer::serve`] runs it on a listener the
//! caller bound (`169.254.169.254:80` on the host bridge in production, `127.0.0.1:0` in tests).
//!
//! Modules:
//! - `routes`: the metadata tree — paths, listings, leaf values, the
//!   identity document — as a pure function of an [`InstanceMetadata`];
//! - `token`: IMDSv2 session tokens (HMAC-bound to the instance and their expiry) and TTL parsing;
//! - `server`: the HTTP/1.1 front end (hyper), the access rules and the per-connection IP TTL.
//!
//! Who is asking is decided by the TCP connection's source address only (the network driver's
//! anti-spoofing guarantees a packet's source address belongs to the interface it arrived on);
//! no header (`X-Forwarded-For` included) is ever trusted for identity.

mod routes;
mod server;
mod token;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

pub use server::{ImdsServer, TtlObserver};
pub use token::{parse_token_ttl, MAX_TOKEN_TTL_SECONDS};

/// Where the metadata comes from: the binary implements this over its store.
#[async_trait::async_trait]
pub trait MetadataSource: Send + Sync + 'static {
    /// The instance whose private IPv4 address is `ip`, or `None`.
    ///
    /// The network driver's anti-spoofing guarantees that a packet's source address belongs to
    /// the interface it came from, so the source address of the TCP connection identifies the
    /// instance. Called once per request: keep it cheap (an in-memory map, or a cache in front of
    /// the store); the `Arc` lets an implementation hand out a cached record without copying it.
    async fn instance_by_ip(&self, ip: Ipv4Addr) -> Option<Arc<InstanceMetadata>>;

    /// The instance behind a connection from `peer` that arrived on the local address `local`.
    ///
    /// The default ignores `local` and asks [`instance_by_ip`](Self::instance_by_ip). An
    /// implementation whose VPCs may reuse the same private addresses overrides it, telling the
    /// VPCs apart by the local address the connection arrived on (for example one listener port
    /// per bridge, each DNATed from `169.254.169.254:80`).
    async fn instance_for_connection(
        &self,
        peer: Ipv4Addr,
        local: SocketAddr,
    ) -> Option<Arc<InstanceMetadata>> {
        let _ = local;
        self.instance_by_ip(peer).await
    }
}

/// The instance's processor architecture (`ArchitectureValues`), served as its text.
pub use gureum_types::Architecture;
/// `HttpTokens` of the instance's metadata options: with `Optional`, IMDSv1 (no token) and
/// IMDSv2 both work (a token that is sent must still be valid); with `Required`, every read
/// needs a valid IMDSv2 token. `HttpEndpoint`: `Disabled` forbids every request.
pub use gureum_types::{HttpEndpoint, HttpTokens};

/// Everything IMDS shows one instance. Values are served as given; the comments say what EC2
/// shows there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstanceMetadata {
    /// `i-…`
    pub instance_id: String,
    /// `ami-…`
    pub ami_id: String,
    /// The instance's index within its RunInstances call, from 0.
    pub ami_launch_index: u32,
    /// `t2.micro`, …
    pub instance_type: String,
    /// The private DNS name, e.g. `ip-172-31-16-5.ec2.internal`: served as `hostname`,
    /// `local-hostname` and the interface's `local-hostname`.
    pub local_hostname: String,
    /// The primary private IPv4 address.
    pub local_ipv4: Ipv4Addr,
    /// The primary interface's MAC address, lower-case, colon-separated.
    pub mac: String,
    /// The primary interface's id, `eni-…`.
    pub interface_id: String,
    /// The public IPv4 address, if the instance has one (`public-ipv4` is absent otherwise).
    pub public_ipv4: Option<Ipv4Addr>,
    /// The public DNS name, if the instance has one.
    pub public_hostname: Option<String>,
    /// `us-east-1a`, …
    pub availability_zone: String,
    /// `use1-az1`, …
    pub availability_zone_id: String,
    /// `us-east-1`, …
    pub region: String,
    /// `r-…`
    pub reservation_id: String,
    /// Security group names (`security-groups`), in the instance's order.
    pub security_groups: Vec<String>,
    /// Security group ids (`sg-…`), in the same order.
    pub security_group_ids: Vec<String>,
    /// `(key name, OpenSSH public key line)`, served as `public-keys/N`; EC2 has at most one.
    pub public_keys: Vec<(String, String)>,
    /// The user data, decoded from the base64 of RunInstances; `None` when there is none.
    pub user_data: Option<Vec<u8>>,
    /// `(name, device)`, e.g. `("ami", "/dev/xvda")`, `("root", "/dev/xvda")`.
    pub block_device_mapping: Vec<(String, String)>,
    /// `vpc-…`
    pub vpc_id: String,
    /// `subnet-…`
    pub subnet_id: String,
    /// The subnet's IPv4 CIDR block, e.g. `172.31.16.0/20`.
    pub subnet_ipv4_cidr_block: String,
    /// The VPC's primary IPv4 CIDR block, e.g. `172.31.0.0/16`.
    pub vpc_ipv4_cidr_block: String,
    /// The owning account, 12 digits.
    pub account_id: String,
    /// `x86_64`, `arm64`, …
    pub architecture: Architecture,
    /// When the instance was launched, RFC 3339 (served as the identity document's
    /// `pendingTime`, normalised to whole seconds in UTC).
    pub launch_time: String,
    /// `HttpTokens`.
    pub http_tokens: HttpTokens,
    /// `HttpEndpoint`.
    pub http_endpoint: HttpEndpoint,
    /// `HttpPutResponseHopLimit` (1..=64): the IP TTL of the token response.
    pub hop_limit: u8,
    /// The instance's tags when `InstanceMetadataTags` is `enabled` (`tags/instance/`), `None`
    /// when it is disabled (the default).
    pub tags: Option<Vec<(String, String)>>,
}
