//! AWS enumerations that travel as text (`InstanceInitiatedShutdownBehavior`, `HttpTokens`,
//! `ImageState`, `VolumeType`, …): each a closed Rust enum, parsed once where a request or a
//! stored record comes in and matched exhaustively after. The names and the texts are
//! botocore's EC2 model's (`service-2.json`, the shape named in each enum's doc); the text is
//! also what the store keeps, so it never changes.
//!
//! Parsing is exact (AWS's spelling, case included). What a client is told for a bad value is
//! the API layer's business ([`UnknownValue`] carries no AWS code): each call site keeps the
//! message EC2 gives there.

use std::fmt;

/// A closed AWS enumeration: its values, and the text of each.
pub trait WireEnum: Copy + Eq + Sized + 'static {
    /// What the enumeration is (`shutdown behavior`), for [`UnknownValue`]'s message.
    const WHAT: &'static str;
    /// Every value, in the order EC2's error messages list them.
    const ALL: &'static [Self];

    /// The text AWS sends and answers, and the store keeps.
    fn as_str(self) -> &'static str;

    /// The value spelt exactly `text`, if any.
    fn parse(text: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|v| v.as_str() == text)
    }

    /// Every value's text, comma-separated, as EC2's "Valid values are" messages list them.
    fn valid_values() -> String {
        let texts: Vec<&str> = Self::ALL.iter().map(|v| v.as_str()).collect();
        texts.join(", ")
    }
}

/// A text that names no value of an enumeration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {text:?}")]
pub struct UnknownValue {
    pub what: &'static str,
    pub text: String,
}

/// Parse `text` as `T` exactly, with [`UnknownValue`] otherwise.
pub fn parse_wire<T: WireEnum>(text: &str) -> Result<T, UnknownValue> {
    T::parse(text).ok_or_else(|| UnknownValue {
        what: T::WHAT,
        text: text.to_string(),
    })
}

/// Declares an enumeration: the enum, its [`WireEnum`] texts, `as_str`, `Display` and
/// `FromStr`. The order of the variants is the order of [`WireEnum::ALL`].
macro_rules! wire_enum {
    (
        $(#[$doc:meta])*
        pub enum $name:ident ($what:literal) {
            $( $(#[$vdoc:meta])* $variant:ident = $text:literal, )+
        }
    ) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vdoc])* $variant, )+
        }

        impl $name {
            /// The text AWS sends and answers, and the store keeps.
            pub fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $text, )+
                }
            }
        }

        impl WireEnum for $name {
            const WHAT: &'static str = $what;
            const ALL: &'static [$name] = &[$( $name::$variant, )+];

            fn as_str(self) -> &'static str {
                $name::as_str(self)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                // `pad`, so widths and alignment (`{:<10}`) apply as they do to the text.
                f.pad(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = UnknownValue;

            fn from_str(text: &str) -> Result<$name, UnknownValue> {
                parse_wire(text)
            }
        }
    };
}

wire_enum! {
    /// What an instance does when its operating system shuts down (`ShutdownBehavior`,
    /// `InstanceInitiatedShutdownBehavior`).
    #[derive(Default)]
    pub enum ShutdownBehavior ("shutdown behavior") {
        /// The default, as EC2's: an instance that shuts itself down stops.
        #[default]
        Stop = "stop",
        Terminate = "terminate",
    }
}

wire_enum! {
    /// Whether IMDSv2 session tokens are required (`HttpTokensState`).
    #[derive(Default)]
    pub enum HttpTokens ("http tokens state") {
        /// The default: what `RunInstances` gives when the request says nothing.
        #[default]
        Optional = "optional",
        Required = "required",
    }
}

wire_enum! {
    /// Whether the instance metadata service answers at all (`InstanceMetadataEndpointState`;
    /// listed enabled first, as EC2's messages do).
    #[derive(Default)]
    pub enum HttpEndpoint ("metadata endpoint state") {
        #[default]
        Enabled = "enabled",
        Disabled = "disabled",
    }
}

wire_enum! {
    /// An image's state (`ImageState`).
    #[derive(Default)]
    pub enum ImageState ("image state") {
        #[default]
        Pending = "pending",
        Available = "available",
        Invalid = "invalid",
        Deregistered = "deregistered",
        Transient = "transient",
        Failed = "failed",
        Error = "error",
        Disabled = "disabled",
    }
}

wire_enum! {
    /// A processor architecture (`ArchitectureValues`).
    pub enum Architecture ("architecture") {
        I386 = "i386",
        X86_64 = "x86_64",
        Arm64 = "arm64",
        X86_64Mac = "x86_64_mac",
        Arm64Mac = "arm64_mac",
    }
}

wire_enum! {
    /// How an image or instance is virtualised (`VirtualizationType`).
    pub enum VirtualizationType ("virtualization type") {
        Hvm = "hvm",
        Paravirtual = "paravirtual",
    }
}

wire_enum! {
    /// What an image's or instance's root device is (`DeviceType`).
    pub enum DeviceType ("root device type") {
        Ebs = "ebs",
        InstanceStore = "instance-store",
    }
}

wire_enum! {
    /// An EBS volume type (`VolumeType`).
    #[derive(Default)]
    pub enum VolumeType ("volume type") {
        Standard = "standard",
        Io1 = "io1",
        Io2 = "io2",
        Gp2 = "gp2",
        Sc1 = "sc1",
        St1 = "st1",
        /// The default, as EC2's today.
        #[default]
        Gp3 = "gp3",
    }
}

wire_enum! {
    /// An EBS volume's state (`VolumeState`).
    #[derive(Default)]
    pub enum VolumeState ("volume state") {
        #[default]
        Creating = "creating",
        Available = "available",
        InUse = "in-use",
        Deleting = "deleting",
        Deleted = "deleted",
        Error = "error",
    }
}

wire_enum! {
    /// The state of a volume's attachment to an instance (`VolumeAttachmentState`). `Busy`:
    /// a detach the guest holds up (its file system is still mounted).
    pub enum VolumeAttachmentState ("volume attachment state") {
        Attaching = "attaching",
        Attached = "attached",
        Detaching = "detaching",
        Detached = "detached",
        Busy = "busy",
    }
}

wire_enum! {
    /// An EBS snapshot's state (`SnapshotState`).
    #[derive(Default)]
    pub enum SnapshotState ("snapshot state") {
        #[default]
        Pending = "pending",
        Completed = "completed",
        Error = "error",
        Recoverable = "recoverable",
        Recovering = "recovering",
    }
}

wire_enum! {
    /// The state of a `ModifyVolume` (`VolumeModificationState`).
    pub enum VolumeModificationState ("volume modification state") {
        Modifying = "modifying",
        Optimizing = "optimizing",
        Completed = "completed",
        Failed = "failed",
    }
}

wire_enum! {
    /// Where an instance runs in tenancy terms (`Tenancy`).
    pub enum Tenancy ("tenancy") {
        Default = "default",
        Dedicated = "dedicated",
        Host = "host",
    }
}

wire_enum! {
    /// Whether an Elastic IP is for VPC or EC2-Classic (`DomainType`).
    pub enum DomainType ("domain") {
        Vpc = "vpc",
        Standard = "standard",
    }
}

wire_enum! {
    /// The code of an instance's `StateReason` (the codes EC2's API reference lists).
    pub enum StateReasonCode ("state reason code") {
        ServerInsufficientInstanceCapacity = "Server.InsufficientInstanceCapacity",
        ServerInternalError = "Server.InternalError",
        ServerScheduledStop = "Server.ScheduledStop",
        ServerSpotInstanceShutdown = "Server.SpotInstanceShutdown",
        ServerSpotInstanceTermination = "Server.SpotInstanceTermination",
        ClientInstanceInitiatedShutdown = "Client.InstanceInitiatedShutdown",
        ClientInstanceTerminated = "Client.InstanceTerminated",
        ClientInternalError = "Client.InternalError",
        ClientInvalidSnapshotNotFound = "Client.InvalidSnapshot.NotFound",
        ClientUserInitiatedHibernate = "Client.UserInitiatedHibernate",
        ClientUserInitiatedShutdown = "Client.UserInitiatedShutdown",
        ClientVolumeLimitExceeded = "Client.VolumeLimitExceeded",
    }
}

/// Why an instance made its last state change (`StateReason`): a code and EC2's message,
/// which starts with the code (`Client.UserInitiatedShutdown: User initiated shutdown`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateReason {
    pub code: StateReasonCode,
    pub message: String,
}

impl StateReason {
    /// The reason with `code` and EC2's message for it: the code, `: ` and `detail`.
    pub fn new(code: StateReasonCode, detail: impl fmt::Display) -> StateReason {
        StateReason {
            code,
            message: format!("{code}: {detail}"),
        }
    }

    /// `Client.UserInitiatedShutdown`: stopped or terminated through the API.
    pub fn user_initiated_shutdown() -> StateReason {
        StateReason::new(
            StateReasonCode::ClientUserInitiatedShutdown,
            "User initiated shutdown",
        )
    }

    /// `Client.InstanceInitiatedShutdown`: the guest shut itself down.
    pub fn instance_initiated_shutdown() -> StateReason {
        StateReason::new(
            StateReasonCode::ClientInstanceInitiatedShutdown,
            "Instance initiated shutdown",
        )
    }

    /// `Server.InternalError`, with what went wrong.
    pub fn internal_error(detail: impl fmt::Display) -> StateReason {
        StateReason::new(StateReasonCode::ServerInternalError, detail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trips<T: WireEnum + fmt::Debug>() {
        for &v in T::ALL {
            assert_eq!(T::parse(v.as_str()), Some(v));
            assert_eq!(parse_wire::<T>(v.as_str()), Ok(v));
            // Exact spelling only.
            assert_eq!(T::parse(&v.as_str().to_ascii_uppercase()), None, "{v:?}");
        }
        assert_eq!(T::parse(""), None);
    }

    #[test]
    fn every_enum_round_trips_exactly() {
        round_trips::<ShutdownBehavior>();
        round_trips::<HttpTokens>();
        round_trips::<HttpEndpoint>();
        round_trips::<ImageState>();
        round_trips::<Architecture>();
        round_trips::<VirtualizationType>();
        round_trips::<DeviceType>();
        round_trips::<VolumeType>();
        round_trips::<VolumeState>();
        round_trips::<VolumeAttachmentState>();
        round_trips::<SnapshotState>();
        round_trips::<VolumeModificationState>();
        round_trips::<Tenancy>();
        round_trips::<DomainType>();
        round_trips::<StateReasonCode>();
    }

    /// The texts are botocore's, in the order EC2's messages list them.
    #[test]
    fn texts_are_aws() {
        assert_eq!(ShutdownBehavior::valid_values(), "stop, terminate");
        assert_eq!(HttpTokens::valid_values(), "optional, required");
        assert_eq!(HttpEndpoint::valid_values(), "enabled, disabled");
        assert_eq!(DomainType::valid_values(), "vpc, standard");
        assert_eq!(
            VolumeState::valid_values(),
            "creating, available, in-use, deleting, deleted, error"
        );
        assert_eq!(
            VolumeAttachmentState::valid_values(),
            "attaching, attached, detaching, detached, busy"
        );
        assert_eq!(
            SnapshotState::valid_values(),
            "pending, completed, error, recoverable, recovering"
        );
        assert_eq!(
            VolumeType::valid_values(),
            "standard, io1, io2, gp2, sc1, st1, gp3"
        );
        assert_eq!(
            Architecture::valid_values(),
            "i386, x86_64, arm64, x86_64_mac, arm64_mac"
        );
        // Displayed as the text, widths included (`gureum image ls` pads its columns).
        assert_eq!(format!("{:<10}|", ImageState::Failed), "failed    |");
        assert_eq!(
            "gp4".parse::<VolumeType>().unwrap_err().to_string(),
            "unknown volume type \"gp4\""
        );
    }

    #[test]
    fn state_reasons_start_with_their_code() {
        assert_eq!(
            StateReason::user_initiated_shutdown().message,
            "Client.UserInitiatedShutdown: User initiated shutdown"
        );
        assert_eq!(
            StateReason::instance_initiated_shutdown().message,
            "Client.InstanceInitiatedShutdown: Instance initiated shutdown"
        );
        let r = StateReason::internal_error("boom");
        assert_eq!(r.code.as_str(), "Server.InternalError");
        assert_eq!(r.message, "Server.InternalError: boom");
    }
}
