//! The driver's one error type, [`NetError`].
//!
//! Messages are lower-case without a trailing period and name the host resource involved, so
//! a log line alone tells an operator what to look at.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

/// Everything the network driver can fail with.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// The name prefix cannot give interface names that fit IFNAMSIZ or cannot be told apart
    /// from another prefix's names.
    #[error("invalid name prefix {prefix:?}: {why}")]
    InvalidPrefix { prefix: String, why: &'static str },

    /// A caller-supplied value (id, address, subnet) is unusable.
    #[error("invalid {what}: {why}")]
    Invalid { what: String, why: String },

    /// `attach` names a VPC whose bridge `ensure_vpc` has not made.
    #[error("vpc {vpc_id} has no bridge ({bridge}) on this host")]
    VpcNotFound { vpc_id: String, bridge: String },

    /// `remove_vpc` while instances are still plugged into the bridge.
    #[error("vpc {vpc_id} still has interfaces on its bridge: {ports:?}")]
    VpcInUse { vpc_id: String, ports: Vec<String> },

    /// A subnet overlaps a route the host already has on another interface; adding it would
    /// hijack the host's own traffic (or another VPC's), so nothing was changed.
    #[error("subnet {cidr} overlaps the host route {route} on {dev}")]
    CidrConflict {
        cidr: Ipv4Net,
        route: Ipv4Net,
        dev: String,
    },

    /// The deterministic interface name is taken by a resource of another owner (a hash
    /// collision, or a name made by someone else).
    #[error("interface {ifname} belongs to {found:?}, not {wanted}")]
    NameCollision {
        ifname: String,
        wanted: String,
        found: String,
    },

    /// `map_public_ip` with an address another instance's interface already has.
    #[error("public address {public} is already mapped to the instance on {holder}")]
    PublicIpInUse { public: Ipv4Addr, holder: String },

    /// The instance has no host-side veth (for `counters`).
    #[error("instance {instance_id} is not attached")]
    NotAttached { instance_id: String },

    /// An `ip`/`nft` invocation failed.
    #[error("{program} failed ({status}): {stderr}")]
    Command {
        program: String,
        status: String,
        stderr: String,
    },

    /// A system call or file operation failed.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },

    /// `ip -j` printed something this driver does not understand.
    #[error("unexpected output of {what}: {why}")]
    Parse { what: String, why: String },

    /// An operation failed and undoing its partial work failed too; both are kept so neither
    /// cause is lost.
    #[error("{error}; cleaning up also failed: {cleanup}")]
    CleanupFailed {
        error: Box<NetError>,
        cleanup: Box<NetError>,
    },
}

impl NetError {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> NetError {
        NetError::Io {
            context: context.into(),
            source,
        }
    }

    pub(crate) fn invalid(what: impl Into<String>, why: impl Into<String>) -> NetError {
        NetError::Invalid {
            what: what.into(),
            why: why.into(),
        }
    }

    pub(crate) fn parse(what: impl Into<String>, why: impl Into<String>) -> NetError {
        NetError::Parse {
            what: what.into(),
            why: why.into(),
        }
    }
}

/// `addr` must be a usable host address of `net` (not its network or broadcast address).
pub(crate) fn check_host_addr(what: &str, addr: Ipv4Addr, net: Ipv4Net) -> Result<(), NetError> {
    if !net.contains(&addr) {
        return Err(NetError::invalid(what, format!("{addr} is outside {net}")));
    }
    if net.prefix_len() <= 30 && (addr == net.network() || addr == net.broadcast()) {
        return Err(NetError::invalid(
            what,
            format!("{addr} is the network or broadcast address of {net}"),
        ));
    }
    Ok(())
}
