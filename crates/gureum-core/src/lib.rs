//! gureum's control plane: the services behind every action, independent of HTTP and of the
//! host. [`Cloud`] owns the store, the region and the clock; [`Cloud::dispatch`] runs one
//! parsed [`gureum_ec2::Request`] for one account and returns a [`gureum_ec2::Response`].
//!
//! Modules own one resource each ([`key_pairs`], [`tags`], [`catalogue`], [`accounts`]);
//! [`describe`] is the shared filter and pagination machinery.

pub mod accounts;
pub mod addresses;
pub mod agent;
pub mod catalogue;
pub mod clock;
pub mod console_support;
pub mod describe;
#[cfg(test)]
pub(crate) mod fake;
pub mod firewall;
pub mod host;
pub mod images;
pub mod instances;
pub mod interfaces;
pub mod key_pairs;
#[cfg(test)]
mod lifecycle_tests;
pub mod metadata;
pub mod metering;
pub mod routing;
pub mod security_groups;
pub mod tags;
pub mod tasks;
#[cfg(test)]
mod vpc_tests;
pub mod vpcs;
pub mod warm;

use std::sync::Arc;

use gureum_ec2::{Action, Request, Response};
use gureum_store::{Store, StoreError};
use gureum_types::{ApiError, Region};

pub use agent::Host;
pub use clock::{Clock, SystemClock};

/// The default public pool: loopback addresses of this host, so public IPs work anywhere and
/// nothing leaves the machine.
pub const DEFAULT_PUBLIC_POOL: &str = "127.100.0.0/16";

/// The usable addresses of a pool (network and broadcast addresses excluded for pools larger
/// than a /31).
pub fn pool_bounds(pool: &ipnet::Ipv4Net) -> (u32, u32) {
    let (lo, hi) = (u32::from(pool.network()), u32::from(pool.broadcast()));
    if pool.prefix_len() >= 31 {
        (lo, hi)
    } else {
        (lo + 1, hi - 1)
    }
}

/// Quotas.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Live instances per account (AWS's classic default: 20).
    pub instances_per_account: usize,
    /// Live instances on this host; beyond it launches answer `InsufficientInstanceCapacity`.
    pub instances_per_host: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            instances_per_account: 20,
            instances_per_host: 200,
        }
    }
}

/// Who is calling and under which request id (for logs).
#[derive(Debug, Clone)]
pub struct Ctx {
    pub account_id: String,
    pub request_id: String,
}

/// The errors of the core: an API error for the caller, or a store failure (answered as
/// `InternalError`, logged with its cause, never shown to the client).
#[derive(Debug)]
pub enum CoreError {
    Api(ApiError),
    Store(StoreError),
    Internal(String),
}

impl From<ApiError> for CoreError {
    fn from(e: ApiError) -> Self {
        CoreError::Api(e)
    }
}
impl From<StoreError> for CoreError {
    fn from(e: StoreError) -> Self {
        CoreError::Store(e)
    }
}

impl std::fmt::Display for CoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CoreError::Api(e) => write!(f, "{e}"),
            CoreError::Store(e) => write!(f, "store: {e}"),
            CoreError::Internal(e) => write!(f, "internal: {e}"),
        }
    }
}

impl std::error::Error for CoreError {}

impl CoreError {
    /// What the client sees.
    pub fn to_api(&self) -> ApiError {
        match self {
            CoreError::Api(e) => e.clone(),
            _ => ApiError::internal(),
        }
    }
}

pub type CoreResult<T> = Result<T, CoreError>;

/// The cloud's control plane.
#[derive(Clone)]
pub struct Cloud {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) region: Arc<Region>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) auth_cache: Arc<accounts::AuthCache>,
    pub(crate) host: Option<Arc<Host>>,
    pub(crate) notify: Arc<tokio::sync::Notify>,
    pub(crate) in_flight: Arc<agent::InFlight>,
    /// The host agent's background tasks and their status.
    pub(crate) tasks: Arc<tasks::Tasks>,
    pub(crate) limits: Limits,
    pub(crate) default_hypervisor: gureum_types::Hypervisor,
    pub(crate) key_cache: Arc<AccountCache<Vec<gureum_types::model::KeyPair>>>,
    /// The public IPv4 pool, as inclusive `u32` bounds.
    pub(crate) public_pool: (u32, u32),
    /// The firewall last pushed to the network driver per instance.
    pub(crate) applied_firewalls:
        Arc<std::sync::Mutex<std::collections::HashMap<String, host::Firewall>>>,
    /// The public address last mapped per instance (`None`: mapped to nothing).
    pub(crate) applied_public:
        Arc<std::sync::Mutex<std::collections::HashMap<String, Option<std::net::Ipv4Addr>>>>,
    /// The prices usage is rated with.
    pub(crate) prices: Arc<gureum_billing::PriceList>,
    /// Per account, the usage intervals that can no longer change, converted once.
    pub(crate) usage_cache:
        Arc<std::sync::Mutex<std::collections::HashMap<String, metering::SettledUsage>>>,
    /// Host networks the agent made (non-default ones are removed when unused).
    pub(crate) ensured_nets: Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
    /// Launches setting up on the host at once: one per CPU. A burst of launches then starts
    /// its first guests at once instead of every guest late, behind ten `runc` processes that
    /// outweigh all the guests together (host processes are not in the guests' cgroups).
    pub(crate) launch_slots: Arc<tokio::sync::Semaphore>,
    /// Guests booted ahead of launches (see `warm.rs`); none unless asked for.
    pub(crate) warm: Arc<warm::WarmPool>,
    /// CPU-heavy request work (RSA key generation) running at once: half the CPUs, at least
    /// one. A flood of such requests from one account then queues here, and the other CPUs
    /// stay free for everyone else's requests (the blocking pool alone would run 512 at once).
    pub(crate) cpu_heavy: Arc<tokio::sync::Semaphore>,
    /// Image copies (`CreateImage`) running at once: one. Each reads and writes a whole
    /// root volume; a burst of them from one account then queues (its images stay `pending`)
    /// instead of taking the host's disk from every instance.
    pub(crate) image_copies: Arc<tokio::sync::Semaphore>,
    /// Why a hypervisor cannot run instances on this host (not root, a runtime that failed
    /// to install, no QEMU): launches for it are refused at once instead of left `pending`.
    pub(crate) unavailable: Arc<Unavailable>,
}

/// Why each hypervisor cannot run instances here, if it cannot (`None`: it can, or nobody
/// said otherwise, as in tests that run without a host).
#[derive(Debug, Default, Clone)]
pub struct Unavailable {
    pub containers: Option<String>,
    pub vms: Option<String>,
}

impl Unavailable {
    /// The reason `hypervisor` cannot run instances, if it cannot.
    pub fn reason(&self, hypervisor: gureum_types::Hypervisor) -> Option<&str> {
        use gureum_types::Hypervisor;
        match hypervisor {
            Hypervisor::Vm => self.vms.as_deref().or(self.containers.as_deref()),
            Hypervisor::Container => self.containers.as_deref(),
        }
    }
}

/// An account's cached view and the epoch it belongs to.
type CacheSlot<T> = (u64, Option<Arc<T>>);

/// A per-account cache of a derived view, invalidated by writes. A reader that computed its
/// value before an invalidation does not store it (the epoch moved on), so a stale view is
/// never cached.
pub struct AccountCache<T> {
    inner: std::sync::Mutex<std::collections::HashMap<String, CacheSlot<T>>>,
}

impl<T> Default for AccountCache<T> {
    fn default() -> Self {
        AccountCache {
            inner: Default::default(),
        }
    }
}

impl<T> AccountCache<T> {
    /// The cached value, if any, and the epoch to store a fresh one under.
    pub fn get(&self, account: &str) -> (Option<Arc<T>>, u64) {
        let m = self.inner.lock().expect("cache poisoned");
        match m.get(account) {
            Some((epoch, v)) => (v.clone(), *epoch),
            None => (None, 0),
        }
    }

    pub fn put(&self, account: &str, epoch: u64, value: T) {
        let mut m = self.inner.lock().expect("cache poisoned");
        let e = m.entry(account.to_string()).or_insert((0, None));
        if e.0 == epoch {
            e.1 = Some(Arc::new(value));
        }
    }

    pub fn invalidate(&self, account: &str) {
        let mut m = self.inner.lock().expect("cache poisoned");
        let e = m.entry(account.to_string()).or_insert((0, None));
        e.0 += 1;
        e.1 = None;
    }
}

impl Cloud {
    pub fn new(store: Arc<dyn Store>, region: Region, clock: Arc<dyn Clock>) -> Cloud {
        Cloud {
            store,
            region: Arc::new(region),
            tasks: Arc::new(tasks::Tasks::new(clock.clone())),
            clock,
            auth_cache: Arc::default(),
            host: None,
            notify: Arc::default(),
            in_flight: Arc::default(),
            limits: Limits::default(),
            default_hypervisor: gureum_types::Hypervisor::Container,
            key_cache: Arc::default(),
            public_pool: pool_bounds(&DEFAULT_PUBLIC_POOL.parse().expect("valid")),
            applied_firewalls: Arc::default(),
            applied_public: Arc::default(),
            prices: Arc::new(gureum_billing::PriceList::aws_default()),
            usage_cache: Arc::default(),
            ensured_nets: Arc::default(),
            launch_slots: Arc::new(tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(2, |n| n.get()),
            )),
            warm: Arc::new(warm::WarmPool::new(0)),
            image_copies: Arc::new(tokio::sync::Semaphore::new(1)),
            cpu_heavy: Arc::new(tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1)),
            )),
            unavailable: Arc::default(),
        }
    }

    /// Say which hypervisors cannot run instances here and why: their launches and starts
    /// are refused at once with `InsufficientInstanceCapacity` and the reason.
    pub fn with_unavailable(mut self, unavailable: Unavailable) -> Cloud {
        self.unavailable = Arc::new(unavailable);
        self
    }

    /// Why `hypervisor` cannot run instances on this host, if it cannot.
    pub fn unavailable_reason(&self, hypervisor: gureum_types::Hypervisor) -> Option<String> {
        self.unavailable.reason(hypervisor).map(str::to_string)
    }

    /// Attach the host drivers (without them, instances stay `pending`).
    pub fn with_host(mut self, host: Host) -> Cloud {
        self.host = Some(Arc::new(host));
        self
    }

    /// Where auto-assigned public IPv4 addresses come from.
    pub fn with_public_pool(mut self, pool: ipnet::Ipv4Net) -> Cloud {
        self.public_pool = pool_bounds(&pool);
        self
    }

    /// The hypervisor launches use unless their `gureum:hypervisor` tag asks for another.
    pub fn with_default_hypervisor(mut self, hypervisor: gureum_types::Hypervisor) -> Cloud {
        self.default_hypervisor = hypervisor;
        self
    }

    /// Keep `guests` of the default image booted ahead of launches (see `warm.rs`).
    pub fn with_warm_pool(mut self, guests: usize) -> Cloud {
        self.warm = Arc::new(warm::WarmPool::new(guests));
        self
    }

    pub fn with_limits(mut self, limits: Limits) -> Cloud {
        self.limits = limits;
        self
    }

    pub fn region(&self) -> &Region {
        &self.region
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Run blocking store work off the async executor.
    pub(crate) async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn Store) -> CoreResult<T> + Send + 'static,
    ) -> CoreResult<T> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || f(&*store))
            .await
            .map_err(|e| CoreError::Internal(format!("blocking task failed: {e}")))?
    }

    /// Run CPU-heavy work of a request (see `cpu_heavy`) off the async executor, waiting for
    /// a slot first.
    pub(crate) async fn cpu_bound<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> CoreResult<T> {
        let _slot = self
            .cpu_heavy
            .acquire()
            .await
            .map_err(|e| CoreError::Internal(format!("cpu pool closed: {e}")))?;
        tokio::task::spawn_blocking(f)
            .await
            .map_err(|e| CoreError::Internal(format!("cpu-bound task failed: {e}")))
    }

    /// Run one request for the calling account. A dry run checks the request (and the
    /// caller's permission) and answers `DryRunOperation` without acting.
    pub async fn dispatch(&self, ctx: &Ctx, req: Request) -> CoreResult<Response> {
        if req.dry_run {
            // Every account may call every action on its own resources, so the permission
            // check always passes; the answer is AWS's "would have succeeded".
            return Err(ApiError::dry_run_ok().into());
        }
        let acct = ctx.account_id.clone();
        Ok(match req.action {
            Action::DescribeRegions {
                region_names,
                filters,
            } => catalogue::describe_regions(&self.region, &region_names, &filters)?,
            Action::DescribeAvailabilityZones {
                zone_names,
                zone_ids,
                filters,
            } => catalogue::describe_zones(&self.region, &zone_names, &zone_ids, &filters)?,
            Action::DescribeAccountAttributes { attribute_names } => {
                catalogue::describe_account_attributes(&attribute_names)?
            }
            Action::DescribeInstanceTypes {
                instance_types,
                filters,
                page,
            } => catalogue::describe_instance_types(&instance_types, &filters, &page)?,
            Action::DescribeInstanceTypeOfferings {
                location_type,
                filters,
                page,
            } => catalogue::describe_offerings(&self.region, &location_type, &filters, &page)?,
            Action::CreateKeyPair {
                key_name,
                key_type,
                key_format,
                tag_specifications,
            } => {
                self.create_key_pair(acct, key_name, key_type, key_format, tag_specifications)
                    .await?
            }
            Action::ImportKeyPair {
                key_name,
                public_key_material,
                tag_specifications,
            } => {
                self.import_key_pair(acct, key_name, public_key_material, tag_specifications)
                    .await?
            }
            Action::DescribeKeyPairs {
                key_names,
                key_pair_ids,
                filters,
                include_public_key,
            } => {
                self.describe_key_pairs(acct, key_names, key_pair_ids, filters, include_public_key)
                    .await?
            }
            Action::DeleteKeyPair {
                key_name,
                key_pair_id,
            } => self.delete_key_pair(acct, key_name, key_pair_id).await?,
            Action::CreateTags { resources, tags } => {
                self.create_tags(acct, resources, tags).await?
            }
            Action::DeleteTags { resources, tags } => {
                self.delete_tags(acct, resources, tags).await?
            }
            Action::DescribeTags { filters, page } => {
                self.describe_tags(acct, filters, page).await?
            }
            Action::DescribeImages {
                image_ids,
                owners,
                executable_users,
                filters,
                page,
            } => {
                self.describe_images(acct, image_ids, owners, executable_users, filters, page)
                    .await?
            }
            Action::DeregisterImage { image_id } => self.deregister_image(acct, image_id).await?,
            Action::CopyImage {
                source_image_id,
                source_region,
                name,
                description,
                copy_image_tags,
                tag_specifications,
            } => {
                self.copy_image(
                    acct,
                    images::CopyRequest {
                        source_id: source_image_id,
                        source_region,
                        name,
                        description,
                        copy_tags: copy_image_tags,
                        specs: tag_specifications,
                    },
                )
                .await?
            }
            Action::CreateImage {
                instance_id,
                name,
                description,
                no_reboot,
                tag_specifications,
            } => {
                self.create_image(
                    acct,
                    instance_id,
                    name,
                    description,
                    no_reboot,
                    tag_specifications,
                )
                .await?
            }
            Action::ModifyImageAttribute { image_id, change } => {
                self.modify_image_attribute(acct, image_id, change).await?
            }
            Action::DescribeImageAttribute {
                image_id,
                attribute,
            } => {
                self.describe_image_attribute(acct, image_id, attribute)
                    .await?
            }
            Action::ResetImageAttribute { image_id, .. } => {
                self.reset_image_attribute(acct, image_id).await?
            }
            Action::RunInstances(req) => self.run_instances(acct, *req).await?,
            Action::DescribeInstances {
                instance_ids,
                filters,
                page,
            } => {
                self.describe_instances(acct, instance_ids, filters, page)
                    .await?
            }
            Action::StartInstances { instance_ids } => {
                self.start_instances(acct, instance_ids).await?
            }
            Action::StopInstances {
                instance_ids,
                force,
            } => self.stop_instances(acct, instance_ids, force).await?,
            Action::RebootInstances { instance_ids } => {
                self.reboot_instances(acct, instance_ids).await?
            }
            Action::TerminateInstances { instance_ids } => {
                self.terminate_instances(acct, instance_ids).await?
            }
            Action::DescribeInstanceStatus {
                instance_ids,
                filters,
                include_all_instances,
                page,
            } => {
                self.describe_instance_status(
                    acct,
                    instance_ids,
                    filters,
                    include_all_instances,
                    page,
                )
                .await?
            }
            Action::GetConsoleOutput { instance_id, .. } => {
                self.get_console_output(acct, instance_id).await?
            }
            Action::ModifyInstanceAttribute {
                instance_id,
                change,
            } => {
                self.modify_instance_attribute(acct, instance_id, change)
                    .await?
            }
            Action::DescribeInstanceAttribute {
                instance_id,
                attribute,
            } => {
                self.describe_instance_attribute(acct, instance_id, attribute)
                    .await?
            }
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
            // VPCs, subnets, internet gateways and route tables.
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
            Action::CreateInternetGateway { tag_specifications } => {
                self.create_internet_gateway(acct, tag_specifications)
                    .await?
            }
            Action::DeleteInternetGateway {
                internet_gateway_id,
            } => {
                self.delete_internet_gateway(acct, internet_gateway_id)
                    .await?
            }
            Action::AttachInternetGateway {
                internet_gateway_id,
                vpc_id,
            } => {
                self.attach_internet_gateway(acct, internet_gateway_id, vpc_id)
                    .await?
            }
            Action::DetachInternetGateway {
                internet_gateway_id,
                vpc_id,
            } => {
                self.detach_internet_gateway(acct, internet_gateway_id, vpc_id)
                    .await?
            }
            Action::DescribeInternetGateways {
                internet_gateway_ids,
                filters,
                page,
            } => {
                self.describe_internet_gateways(acct, internet_gateway_ids, filters, page)
                    .await?
            }
            Action::CreateRouteTable {
                vpc_id,
                client_token,
                tag_specifications,
            } => {
                self.create_route_table(acct, vpc_id, client_token, tag_specifications)
                    .await?
            }
            Action::DeleteRouteTable { route_table_id } => {
                self.delete_route_table(acct, route_table_id).await?
            }
            Action::DescribeRouteTables {
                route_table_ids,
                filters,
                page,
            } => {
                self.describe_route_tables(acct, route_table_ids, filters, page)
                    .await?
            }
            Action::PutRoute {
                replace,
                route_table_id,
                destination_cidr_block,
                gateway_id,
            } => {
                self.put_route(
                    acct,
                    replace,
                    route_table_id,
                    destination_cidr_block,
                    gateway_id,
                )
                .await?
            }
            Action::DeleteRoute {
                route_table_id,
                destination_cidr_block,
            } => {
                self.delete_route(acct, route_table_id, destination_cidr_block)
                    .await?
            }
            Action::AssociateRouteTable {
                route_table_id,
                subnet_id,
            } => {
                self.associate_route_table(acct, route_table_id, subnet_id)
                    .await?
            }
            Action::DisassociateRouteTable { association_id } => {
                self.disassociate_route_table(acct, association_id).await?
            }
            Action::ReplaceRouteTableAssociation {
                association_id,
                route_table_id,
            } => {
                self.replace_route_table_association(acct, association_id, route_table_id)
                    .await?
            }
            Action::CreateSecurityGroup {
                group_name,
                description,
                vpc_id,
                tag_specifications,
            } => {
                self.create_security_group(
                    acct,
                    group_name,
                    description,
                    vpc_id,
                    tag_specifications,
                )
                .await?
            }
            Action::DeleteSecurityGroup {
                group_id,
                group_name,
            } => {
                self.delete_security_group(acct, group_id, group_name)
                    .await?
            }
            Action::DescribeSecurityGroups {
                group_ids,
                group_names,
                filters,
                page,
            } => {
                self.describe_security_groups(acct, group_ids, group_names, filters, page)
                    .await?
            }
            Action::AuthorizeSecurityGroup {
                egress,
                group_id,
                group_name,
                permissions,
                tag_specifications,
            } => {
                self.authorize_security_group(
                    acct,
                    egress,
                    group_id,
                    group_name,
                    permissions,
                    tag_specifications,
                )
                .await?
            }
            Action::RevokeSecurityGroup {
                egress,
                group_id,
                group_name,
                permissions,
                rule_ids,
            } => {
                self.revoke_security_group(
                    acct,
                    egress,
                    group_id,
                    group_name,
                    permissions,
                    rule_ids,
                )
                .await?
            }
            Action::DescribeSecurityGroupRules {
                rule_ids,
                filters,
                page,
            } => {
                self.describe_security_group_rules(acct, rule_ids, filters, page)
                    .await?
            }
            Action::ModifySecurityGroupRules { group_id, rules } => {
                self.modify_security_group_rules(acct, group_id, rules)
                    .await?
            }
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

/// Render milliseconds since the epoch as AWS renders timestamps: `2026-11-26T06:21:41.000Z`.
pub fn aws_time(millis: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(millis as i128 * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    t.format(time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    ))
    .unwrap_or_default()
}

#[cfg(test)]
pub(crate) mod testing {
    use super::*;

    /// A cloud on a temporary database with a fixed clock and one account `111111111111`.
    pub fn cloud() -> (tempfile::TempDir, Cloud, Ctx) {
        cloud_with_clock(Arc::new(clock::FixedClock::new(1_764_000_000_000)))
    }

    /// A cloud whose clock the test drives.
    pub fn cloud_with_clock(clock: Arc<clock::FixedClock>) -> (tempfile::TempDir, Cloud, Ctx) {
        let dir = tempfile::tempdir().unwrap();
        let store =
            Arc::new(gureum_store::SqliteStore::open(&dir.path().join("state.db")).unwrap());
        let cloud = Cloud::new(store, Region::new("us-east-1").unwrap(), clock);
        let ctx = Ctx {
            account_id: cloud.create_account_sync("alice").unwrap().0.id,
            request_id: "test".into(),
        };
        (dir, cloud, ctx)
    }

    pub fn other(cloud: &Cloud, name: &str) -> Ctx {
        Ctx {
            account_id: cloud.create_account_sync(name).unwrap().0.id,
            request_id: "test".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    /// CPU-heavy work never runs on more than its slots, however many requests ask at once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn cpu_bound_work_runs_on_a_bounded_pool() {
        let (_dir, cloud, _ctx) = super::testing::cloud();
        let slots = cloud.cpu_heavy.available_permits();
        assert!(slots >= 1);
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..(slots * 4 + 4) {
            let (cloud, running, most) = (cloud.clone(), running.clone(), most.clone());
            tasks.push(tokio::spawn(async move {
                cloud
                    .cpu_bound(move || {
                        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        std::thread::sleep(std::time::Duration::from_millis(20));
                        running.fetch_sub(1, Ordering::SeqCst);
                    })
                    .await
                    .unwrap()
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(most.load(Ordering::SeqCst), slots);
    }

    #[test]
    fn aws_time_format() {
        assert_eq!(super::aws_time(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            super::aws_time(1_764_138_101_123),
            "2025-11-26T06:21:41.123Z"
        );
    }
}
