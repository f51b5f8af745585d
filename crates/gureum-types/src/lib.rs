//! gureum's shared vocabulary: resource ids, AWS error codes, the region layout and the
//! instance-type catalogue. Pure: no I/O, no async, nothing that needs a host.

pub mod enums;
pub mod error;
pub mod hypervisor;
pub mod ids;
pub mod instance_types;
pub mod model;
pub mod protocol;
pub mod region;
pub mod state;

pub use enums::{
    Architecture, DeviceType, DomainType, HttpEndpoint, HttpTokens, ImageState, ShutdownBehavior,
    SnapshotState, StateReason, StateReasonCode, Tenancy, UnknownValue, VirtualizationType,
    VolumeAttachmentState, VolumeModificationState, VolumeState, VolumeType, WireEnum,
};
pub use error::{ApiError, ErrorCode};
pub use hypervisor::Hypervisor;
pub use ids::{
    AllocationId, ElasticIpAssociationId, ImageId, InstanceId, InternetGatewayId, KeyPairId,
    NetworkInterfaceId, ReservationId, ResourceId, ResourceKind, RouteTableAssociationId,
    RouteTableId, SecurityGroupId, SecurityGroupRuleId, SnapshotId, SubnetId, VolumeId, VpcId,
};
pub use protocol::IpProtocol;
pub use region::Region;
pub use state::InstanceState;
