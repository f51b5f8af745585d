//! Ready-made SSH host keys for first boots ([`HostKeys`]): the binary keeps a pool.

/// A source of ready-made SSH host keys (made ahead of time, each handed out once).
pub trait HostKeys: Send + Sync + 'static {
    /// A set of host keys, if one is ready.
    fn take(&self) -> Option<HostKeySet>;
}

/// The SSH host keys of one instance, as its first boot installs them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostKeySet {
    /// (file name in /etc/ssh such as `ssh_host_ed25519_key`, OpenSSH private key, public key
    /// line).
    pub keys: Vec<(String, Vec<u8>, Vec<u8>)>,
    /// `ssh-keygen -l` of each public key, one line each: the console's fingerprint block.
    pub fingerprints: Vec<u8>,
}
