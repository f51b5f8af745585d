//! The API error vocabulary: every AWS error code gureum answers with, its HTTP status, and
//! [`ApiError`], the one error type that crosses from the core to the protocol layer.
//!
//! Codes are those of the EC2 API reference ("Error codes for the Amazon EC2 API"); the HTTP
//! statuses are those AWS answers with (client errors 400, authentication 401/403, dry runs 412).

use std::fmt;

/// An AWS error code. The string form (see [`ErrorCode::as_str`]) is what clients match on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    // Authentication and authorisation.
    AuthFailure,
    SignatureDoesNotMatch,
    RequestExpired,
    MissingAuthenticationToken,
    IncompleteSignature,
    UnauthorizedOperation,
    DryRunOperation,
    OptInRequired,
    // The request itself.
    InvalidAction,
    MissingAction,
    MissingParameter,
    InvalidParameter,
    InvalidParameterValue,
    InvalidParameterCombination,
    UnknownParameter,
    UnsupportedOperation,
    InvalidPaginationToken,
    InvalidFilter,
    InvalidRequest,
    InvalidID,
    InvalidCharacter,
    RequestEntityTooLarge,
    // Key pairs.
    InvalidKeyPairDuplicate,
    InvalidKeyPairNotFound,
    InvalidKeyPairFormat,
    InvalidKeyFormat,
    // Tags.
    TagLimitExceeded,
    // Regions, zones and instance types.
    InvalidRegionNotFound,
    InvalidZoneNotFound,
    InvalidInstanceType,
    // Images, instances and their networks.
    InvalidAMIIDNotFound,
    InvalidAMIIDMalformed,
    InvalidAMIIDUnavailable,
    InvalidAMINameDuplicate,
    InvalidAMINameMalformed,
    InvalidInstanceIDNotFound,
    InvalidInstanceIDMalformed,
    IncorrectInstanceState,
    IncorrectState,
    OperationNotPermitted,
    InstanceLimitExceeded,
    InsufficientInstanceCapacity,
    IdempotentParameterMismatch,
    InvalidSubnetIDNotFound,
    InvalidSubnetIDMalformed,
    InvalidVpcIDNotFound,
    InvalidVpcIDMalformed,
    InvalidIPAddressInUse,
    InvalidBlockDeviceMapping,
    InvalidUserIDMalformed,
    InvalidInstanceAttributeValue,
    InvalidGroupNotFound,
    InvalidGroupDuplicate,
    InvalidAllocationIDNotFound,
    InvalidAllocationIDMalformed,
    InvalidAddressNotFound,
    InvalidAddressIDNotFound,
    InvalidAssociationIDNotFound,
    AddressLimitExceeded,
    InvalidNetworkInterfaceIDNotFound,
    InvalidNetworkInterfaceIDMalformed,
    ResourceAlreadyAssociated,
    CannotDelete,
    DependencyViolation,
    InvalidPermissionDuplicate,
    InvalidPermissionNotFound,
    RulesPerSecurityGroupLimitExceeded,
    InvalidSecurityGroupRuleIdNotFound,
    // VPCs, subnets, internet gateways and route tables.
    InvalidVpcRange,
    InvalidSubnetRange,
    InvalidSubnetConflict,
    InvalidInternetGatewayIDNotFound,
    InvalidInternetGatewayIdMalformed,
    InvalidRouteTableIDNotFound,
    InvalidRouteTableIdMalformed,
    InvalidRouteNotFound,
    InvalidGatewayIDNotFound,
    RouteAlreadyExists,
    GatewayNotAttached,
    VpcLimitExceeded,
    SubnetLimitExceeded,
    InternetGatewayLimitExceeded,
    RouteTableLimitExceeded,
    RouteLimitExceeded,
    // EBS volumes and snapshots.
    InvalidVolumeNotFound,
    InvalidVolumeIDMalformed,
    InvalidVolumeZoneMismatch,
    VolumeInUse,
    VolumeLimitExceeded,
    InsufficientVolumeCapacity,
    InvalidSnapshotNotFound,
    InvalidSnapshotIDMalformed,
    InvalidSnapshotInUse,
    SnapshotLimitExceeded,
    InvalidAttachmentNotFound,
    IncorrectModificationState,
    // Server side.
    InternalError,
    Unavailable,
    RequestLimitExceeded,
}

impl ErrorCode {
    /// The code exactly as AWS spells it.
    pub fn as_str(self) -> &'static str {
        use ErrorCode::*;
        match self {
            AuthFailure => "AuthFailure",
            SignatureDoesNotMatch => "SignatureDoesNotMatch",
            RequestExpired => "RequestExpired",
            MissingAuthenticationToken => "MissingAuthenticationToken",
            IncompleteSignature => "IncompleteSignature",
            UnauthorizedOperation => "UnauthorizedOperation",
            DryRunOperation => "DryRunOperation",
            OptInRequired => "OptInRequired",
            InvalidAction => "InvalidAction",
            MissingAction => "MissingAction",
            MissingParameter => "MissingParameter",
            InvalidParameter => "InvalidParameter",
            InvalidParameterValue => "InvalidParameterValue",
            InvalidParameterCombination => "InvalidParameterCombination",
            UnknownParameter => "UnknownParameter",
            UnsupportedOperation => "UnsupportedOperation",
            InvalidPaginationToken => "InvalidPaginationToken",
            InvalidFilter => "InvalidFilter",
            InvalidRequest => "InvalidRequest",
            InvalidID => "InvalidID",
            InvalidCharacter => "InvalidCharacter",
            RequestEntityTooLarge => "RequestEntityTooLarge",
            InvalidKeyPairDuplicate => "InvalidKeyPair.Duplicate",
            InvalidKeyPairNotFound => "InvalidKeyPair.NotFound",
            InvalidKeyPairFormat => "InvalidKeyPair.Format",
            InvalidKeyFormat => "InvalidKey.Format",
            TagLimitExceeded => "TagLimitExceeded",
            InvalidRegionNotFound => "InvalidRegion.NotFound",
            InvalidZoneNotFound => "InvalidZone.NotFound",
            InvalidInstanceType => "InvalidInstanceType",
            InvalidAMIIDNotFound => "InvalidAMIID.NotFound",
            InvalidAMIIDMalformed => "InvalidAMIID.Malformed",
            InvalidAMIIDUnavailable => "InvalidAMIID.Unavailable",
            InvalidAMINameDuplicate => "InvalidAMIName.Duplicate",
            InvalidAMINameMalformed => "InvalidAMIName.Malformed",
            InvalidInstanceIDNotFound => "InvalidInstanceID.NotFound",
            InvalidInstanceIDMalformed => "InvalidInstanceID.Malformed",
            IncorrectInstanceState => "IncorrectInstanceState",
            IncorrectState => "IncorrectState",
            OperationNotPermitted => "OperationNotPermitted",
            InstanceLimitExceeded => "InstanceLimitExceeded",
            InsufficientInstanceCapacity => "InsufficientInstanceCapacity",
            IdempotentParameterMismatch => "IdempotentParameterMismatch",
            InvalidSubnetIDNotFound => "InvalidSubnetID.NotFound",
            InvalidSubnetIDMalformed => "InvalidSubnetID.Malformed",
            InvalidVpcIDNotFound => "InvalidVpcID.NotFound",
            InvalidVpcIDMalformed => "InvalidVpcID.Malformed",
            InvalidIPAddressInUse => "InvalidIPAddress.InUse",
            InvalidBlockDeviceMapping => "InvalidBlockDeviceMapping",
            InvalidUserIDMalformed => "InvalidUserID.Malformed",
            InvalidInstanceAttributeValue => "InvalidInstanceAttributeValue",
            InvalidGroupNotFound => "InvalidGroup.NotFound",
            InvalidGroupDuplicate => "InvalidGroup.Duplicate",
            InvalidAllocationIDNotFound => "InvalidAllocationID.NotFound",
            InvalidAllocationIDMalformed => "InvalidAllocationID.Malformed",
            InvalidAddressNotFound => "InvalidAddress.NotFound",
            InvalidAddressIDNotFound => "InvalidAddressID.NotFound",
            InvalidAssociationIDNotFound => "InvalidAssociationID.NotFound",
            AddressLimitExceeded => "AddressLimitExceeded",
            InvalidNetworkInterfaceIDNotFound => "InvalidNetworkInterfaceID.NotFound",
            InvalidNetworkInterfaceIDMalformed => "InvalidNetworkInterfaceID.Malformed",
            ResourceAlreadyAssociated => "Resource.AlreadyAssociated",
            CannotDelete => "CannotDelete",
            DependencyViolation => "DependencyViolation",
            InvalidPermissionDuplicate => "InvalidPermission.Duplicate",
            InvalidPermissionNotFound => "InvalidPermission.NotFound",
            RulesPerSecurityGroupLimitExceeded => "RulesPerSecurityGroupLimitExceeded",
            InvalidSecurityGroupRuleIdNotFound => "InvalidSecurityGroupRuleId.NotFound",
            InvalidVpcRange => "InvalidVpc.Range",
            InvalidSubnetRange => "InvalidSubnet.Range",
            InvalidSubnetConflict => "InvalidSubnet.Conflict",
            InvalidInternetGatewayIDNotFound => "InvalidInternetGatewayID.NotFound",
            InvalidInternetGatewayIdMalformed => "InvalidInternetGatewayId.Malformed",
            InvalidRouteTableIDNotFound => "InvalidRouteTableID.NotFound",
            InvalidRouteTableIdMalformed => "InvalidRouteTableId.Malformed",
            InvalidRouteNotFound => "InvalidRoute.NotFound",
            InvalidGatewayIDNotFound => "InvalidGatewayID.NotFound",
            RouteAlreadyExists => "RouteAlreadyExists",
            GatewayNotAttached => "Gateway.NotAttached",
            VpcLimitExceeded => "VpcLimitExceeded",
            SubnetLimitExceeded => "SubnetLimitExceeded",
            InternetGatewayLimitExceeded => "InternetGatewayLimitExceeded",
            RouteTableLimitExceeded => "RouteTableLimitExceeded",
            RouteLimitExceeded => "RouteLimitExceeded",
            InvalidVolumeNotFound => "InvalidVolume.NotFound",
            InvalidVolumeIDMalformed => "InvalidVolumeID.Malformed",
            InvalidVolumeZoneMismatch => "InvalidVolume.ZoneMismatch",
            VolumeInUse => "VolumeInUse",
            VolumeLimitExceeded => "VolumeLimitExceeded",
            InsufficientVolumeCapacity => "InsufficientVolumeCapacity",
            InvalidSnapshotNotFound => "InvalidSnapshot.NotFound",
            InvalidSnapshotIDMalformed => "InvalidSnapshotID.Malformed",
            InvalidSnapshotInUse => "InvalidSnapshot.InUse",
            SnapshotLimitExceeded => "SnapshotLimitExceeded",
            InvalidAttachmentNotFound => "InvalidAttachment.NotFound",
            IncorrectModificationState => "IncorrectModificationState",
            InternalError => "InternalError",
            Unavailable => "Unavailable",
            RequestLimitExceeded => "RequestLimitExceeded",
        }
    }

    /// The HTTP status AWS answers this code with.
    pub fn http_status(self) -> u16 {
        use ErrorCode::*;
        match self {
            AuthFailure => 401,
            SignatureDoesNotMatch
            | UnauthorizedOperation
            | OptInRequired
            | MissingAuthenticationToken => 403,
            IncompleteSignature => 400,
            DryRunOperation => 412,
            RequestEntityTooLarge => 413,
            InternalError | InsufficientInstanceCapacity | InsufficientVolumeCapacity => 500,
            Unavailable | RequestLimitExceeded => 503,
            _ => 400,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error answered to an API client: an AWS code and a message in AWS's wording.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
        }
    }

    pub fn missing_parameter(name: &str) -> Self {
        Self::new(
            ErrorCode::MissingParameter,
            format!("The request must contain the parameter {name}"),
        )
    }

    pub fn invalid_value(name: &str, value: &str, why: &str) -> Self {
        Self::new(
            ErrorCode::InvalidParameterValue,
            format!("Value ({value}) for parameter {name} is invalid. {why}"),
        )
    }

    pub fn unknown_parameter(name: &str) -> Self {
        Self::new(
            ErrorCode::UnknownParameter,
            format!("The parameter {name} is not recognized"),
        )
    }

    pub fn dry_run_ok() -> Self {
        Self::new(
            ErrorCode::DryRunOperation,
            "Request would have succeeded, but DryRun flag is set.",
        )
    }

    pub fn internal() -> Self {
        Self::new(ErrorCode::InternalError, "An internal error has occurred")
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_follow_aws() {
        assert_eq!(ErrorCode::AuthFailure.http_status(), 401);
        assert_eq!(ErrorCode::SignatureDoesNotMatch.http_status(), 403);
        assert_eq!(ErrorCode::DryRunOperation.http_status(), 412);
        assert_eq!(ErrorCode::InvalidKeyPairNotFound.http_status(), 400);
        assert_eq!(ErrorCode::InternalError.http_status(), 500);
        assert_eq!(
            ErrorCode::InvalidKeyPairDuplicate.as_str(),
            "InvalidKeyPair.Duplicate"
        );
        // AWS's own inconsistent spellings, pinned.
        assert_eq!(
            ErrorCode::InvalidRouteTableIdMalformed.as_str(),
            "InvalidRouteTableId.Malformed"
        );
        assert_eq!(
            ErrorCode::InvalidRouteTableIDNotFound.as_str(),
            "InvalidRouteTableID.NotFound"
        );
        assert_eq!(
            ErrorCode::ResourceAlreadyAssociated.as_str(),
            "Resource.AlreadyAssociated"
        );
        assert_eq!(ErrorCode::GatewayNotAttached.http_status(), 400);
    }
}
