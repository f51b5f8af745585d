//! Domain records shared by the core (which produces them) and the protocol layer (which
//! renders them): what an account owns, as the API shows it.

/// A 12-digit AWS account id.
pub type AccountId = String;

/// A tag on a resource.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tag {
    pub key: String,
    pub value: String,
}

/// One `Filter.N` of a Describe call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    pub name: String,
    pub values: Vec<String>,
}

/// One `TagSpecification.N` of a create call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagSpecification {
    pub resource_type: String,
    pub tags: Vec<Tag>,
}

/// A key pair as `DescribeKeyPairs` shows it. The private key is never stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPair {
    pub id: String,
    pub name: String,
    pub fingerprint: String,
    /// `rsa` or `ed25519` (`ecdsa` for imported ECDSA keys, a gureum extension).
    pub key_type: String,
    pub public_key: String,
    /// RFC 3339 with milliseconds, UTC, as AWS renders `CreateTime`.
    pub create_time: String,
    pub tags: Vec<Tag>,
}

/// A row of `DescribeTags`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagDescription {
    pub resource_id: String,
    pub resource_type: String,
    pub key: String,
    pub value: String,
}

/// An account: the owner of every resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: AccountId,
    pub name: String,
    pub create_time: String,
}

/// An access key pair of an account. The secret is needed to verify signatures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessKey {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub account_id: AccountId,
}
