//! The host seam: what the core needs from a host, as traits, and the types that cross it.
//!
//! The core depends on these traits only; each driver crate implements one of them for its
//! own driver type (`gureum-runtime`: [`Compute`] for runc system containers, `gureum-vm`:
//! [`Compute`] for QEMU VMs, `gureum-net`: [`Network`] for bridges, veths, taps and nftables,
//! `gureum-ebs`: [`Volumes`] for EBS volumes' and snapshots' bytes; the binary:
//! [`HostImages`] for images made from snapshots),
//! and the binary hands the drivers to the core. Tests plug in fakes. The shape is Cloud
//! Hypervisor's `hypervisor` crate: one trait, several backends behind it, and
//! [`ByHypervisor`] to put two compute backends behind one [`Compute`].
//!
//! Pure: no I/O, no processes, nothing that needs a host.

mod block;
mod compute;
mod error;
mod images;
mod keys;
mod network;
mod router;
pub mod wire;

pub use block::{VolumeAttachment, Volumes};
pub use compute::{Compute, GuestFile, GuestSpec, GuestState, WarmGuest};
pub use error::{HostError, HostResult};
pub use gureum_types::{Hypervisor, IpProtocol};
pub use images::{HostImages, ImportedImage};
pub use keys::{HostKeySet, HostKeys};
pub use network::{Firewall, FirewallPeer, FirewallRule, HostNet, Network, Nic, TAP_DIR};
pub use router::ByHypervisor;
