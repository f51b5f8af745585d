//! Resource ids: `key-`, `ami-`, `i-`, … followed by 17 lower-case hex digits, as AWS issues
//! them today (AWS still accepts the older 8-digit form on input, and so do we).
//!
//! [`ResourceId`] is a well-formed id of any kind (tags name any resource); [`InstanceId`],
//! [`VolumeId`] and the other typed ids are well-formed ids of one kind, so a function that
//! wants an instance's id cannot be handed a volume's, nor a string nobody checked. Parsing
//! answers `None` for a malformed id: what a client is told (`InvalidInstanceID.Malformed`,
//! `InvalidVolumeID.Malformed`, …, each with EC2's message) is the caller's business.

use std::fmt;

/// The kinds of resource gureum issues ids for, with their AWS prefix and `resource-type` name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResourceKind {
    KeyPair,
    Image,
    Instance,
    Reservation,
    SecurityGroup,
    SecurityGroupRule,
    Vpc,
    Subnet,
    InternetGateway,
    RouteTable,
    NetworkInterface,
    ElasticIp,
    ElasticIpAssociation,
    RouteTableAssociation,
    Volume,
    Snapshot,
}

impl ResourceKind {
    pub const ALL: [ResourceKind; 16] = [
        ResourceKind::KeyPair,
        ResourceKind::Image,
        ResourceKind::Instance,
        ResourceKind::Reservation,
        ResourceKind::SecurityGroup,
        ResourceKind::SecurityGroupRule,
        ResourceKind::Vpc,
        ResourceKind::Subnet,
        ResourceKind::InternetGateway,
        ResourceKind::RouteTable,
        ResourceKind::NetworkInterface,
        ResourceKind::ElasticIp,
        ResourceKind::ElasticIpAssociation,
        ResourceKind::RouteTableAssociation,
        ResourceKind::Volume,
        ResourceKind::Snapshot,
    ];

    /// The id prefix, without the dash.
    pub fn prefix(self) -> &'static str {
        use ResourceKind::*;
        match self {
            KeyPair => "key",
            Image => "ami",
            Instance => "i",
            Reservation => "r",
            SecurityGroup => "sg",
            SecurityGroupRule => "sgr",
            Vpc => "vpc",
            Subnet => "subnet",
            InternetGateway => "igw",
            RouteTable => "rtb",
            NetworkInterface => "eni",
            ElasticIp => "eipalloc",
            ElasticIpAssociation => "eipassoc",
            RouteTableAssociation => "rtbassoc",
            Volume => "vol",
            Snapshot => "snap",
        }
    }

    /// The `resource-type` that `DescribeTags` reports and `TagSpecification` names.
    pub fn tag_resource_type(self) -> &'static str {
        use ResourceKind::*;
        match self {
            KeyPair => "key-pair",
            Image => "image",
            Instance => "instance",
            Reservation => "reservation",
            SecurityGroup => "security-group",
            SecurityGroupRule => "security-group-rule",
            Vpc => "vpc",
            Subnet => "subnet",
            InternetGateway => "internet-gateway",
            RouteTable => "route-table",
            NetworkInterface => "network-interface",
            ElasticIp => "elastic-ip",
            ElasticIpAssociation => "elastic-ip-association",
            RouteTableAssociation => "route-table-association",
            Volume => "volume",
            Snapshot => "snapshot",
        }
    }

    pub fn from_tag_resource_type(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.tag_resource_type() == s)
    }

    /// The kind an id names, judged by its prefix alone.
    pub fn of_id(id: &str) -> Option<Self> {
        let (prefix, _) = id.split_once('-')?;
        Self::ALL.into_iter().find(|k| k.prefix() == prefix)
    }
}

/// A well-formed resource id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResourceId(String);

impl ResourceId {
    /// A fresh random id of this kind.
    pub fn generate(kind: ResourceKind) -> Self {
        let n: u128 = rand::random();
        // 17 hex digits = 68 bits.
        let hex = format!("{:017x}", n & ((1u128 << 68) - 1));
        ResourceId(format!("{}-{}", kind.prefix(), hex))
    }

    /// Parse an id of the expected kind: the prefix, a dash and 8 or 17 lower-case hex digits.
    pub fn parse(kind: ResourceKind, s: &str) -> Option<Self> {
        let rest = s.strip_prefix(kind.prefix())?.strip_prefix('-')?;
        let hex_ok = (rest.len() == 8 || rest.len() == 17)
            && rest
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        hex_ok.then(|| ResourceId(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn kind(&self) -> ResourceKind {
        ResourceKind::of_id(&self.0).expect("a parsed id has a known prefix")
    }
}

impl fmt::Display for ResourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Declares typed ids: each a [`ResourceId`] of the one kind named, with `generate`, `parse`,
/// `as_str`, `Display` and the conversions to `String` and `ResourceId`.
macro_rules! kind_ids {
    ( $( $(#[$doc:meta])* $name:ident = $kind:ident; )+ ) => {
        $(
            $(#[$doc])*
            #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
            pub struct $name(String);

            impl $name {
                /// The kind every id of this type names.
                pub const KIND: ResourceKind = ResourceKind::$kind;

                /// A fresh random id.
                pub fn generate() -> Self {
                    $name(ResourceId::generate(Self::KIND).0)
                }

                /// `s` if it is a well-formed id of this kind (see [`ResourceId::parse`]).
                pub fn parse(s: &str) -> Option<Self> {
                    ResourceId::parse(Self::KIND, s).map(|id| $name(id.0))
                }

                pub fn as_str(&self) -> &str {
                    &self.0
                }
            }

            impl fmt::Display for $name {
                fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str(&self.0)
                }
            }

            impl AsRef<str> for $name {
                fn as_ref(&self) -> &str {
                    &self.0
                }
            }

            impl From<$name> for String {
                fn from(id: $name) -> String {
                    id.0
                }
            }

            impl From<$name> for ResourceId {
                fn from(id: $name) -> ResourceId {
                    ResourceId(id.0)
                }
            }
        )+

        #[cfg(test)]
        mod kind_id_tests {
            use super::*;

            /// Every typed id generates ids of its kind that parse back, and refuses
            /// another kind's.
            #[test]
            fn typed_ids_are_their_kind() {
                $(
                    let id = $name::generate();
                    assert_eq!($name::parse(id.as_str()), Some(id.clone()));
                    assert_eq!(ResourceId::from(id.clone()).kind(), $name::KIND);
                    assert_eq!(id.to_string(), String::from(id.clone()));
                    let other = if $name::KIND == ResourceKind::KeyPair {
                        ResourceKind::Image
                    } else {
                        ResourceKind::KeyPair
                    };
                    assert_eq!($name::parse(ResourceId::generate(other).as_str()), None);
                    assert_eq!($name::parse(&id.as_str().to_ascii_uppercase()), None);
                )+
            }
        }
    };
}

kind_ids! {
    /// `key-…`
    KeyPairId = KeyPair;
    /// `ami-…`
    ImageId = Image;
    /// `i-…`
    InstanceId = Instance;
    /// `r-…`
    ReservationId = Reservation;
    /// `sg-…`
    SecurityGroupId = SecurityGroup;
    /// `sgr-…`
    SecurityGroupRuleId = SecurityGroupRule;
    /// `vpc-…`
    VpcId = Vpc;
    /// `subnet-…`
    SubnetId = Subnet;
    /// `igw-…`
    InternetGatewayId = InternetGateway;
    /// `rtb-…`
    RouteTableId = RouteTable;
    /// `eni-…`
    NetworkInterfaceId = NetworkInterface;
    /// `eipalloc-…`, an Elastic IP's `AllocationId`.
    AllocationId = ElasticIp;
    /// `eipassoc-…`, an Elastic IP's `AssociationId`.
    ElasticIpAssociationId = ElasticIpAssociation;
    /// `rtbassoc-…`
    RouteTableAssociationId = RouteTableAssociation;
    /// `vol-…`
    VolumeId = Volume;
    /// `snap-…`
    SnapshotId = Snapshot;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_parse_back() {
        for kind in ResourceKind::ALL {
            let id = ResourceId::generate(kind);
            assert_eq!(id.as_str().len(), kind.prefix().len() + 1 + 17);
            assert_eq!(ResourceId::parse(kind, id.as_str()), Some(id.clone()));
            assert_eq!(id.kind(), kind);
        }
    }

    #[test]
    fn malformed_ids_are_refused() {
        let k = ResourceKind::KeyPair;
        assert!(ResourceId::parse(k, "key-0123abcd").is_some());
        assert!(ResourceId::parse(k, "key-0123456789abcdef0").is_some());
        for bad in [
            "key-",
            "key-0123",
            "key-0123456789ABCDEF0",
            "ami-0123456789abcdef0",
            "key0123456789abcdef0",
            "key-0123456789abcdefg",
        ] {
            assert!(ResourceId::parse(k, bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn kinds_round_trip_through_resource_type() {
        for kind in ResourceKind::ALL {
            assert_eq!(
                ResourceKind::from_tag_resource_type(kind.tag_resource_type()),
                Some(kind)
            );
        }
    }
}
