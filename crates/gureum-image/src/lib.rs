//! gureum-image: the root filesystems behind gureum's AMIs, and the agent every instance runs.
//!
//! This crate owns three things:
//!
//! - **Builds** ([`ImageCache::build`]): a [`Recipe`] (`debian-12`, `debian-11`, `ubuntu-22.04`,
//!   `ubuntu-18.04`) becomes a small server root filesystem built with `mmdebstrap
//!   --variant=apt` from a Debian or Ubuntu mirror: systemd as init, openssh-server, sudo,
//!   python3 (+yaml), curl, iproute2, an editor, apt with the distribution's sources, a locked
//!   login user with passwordless sudo, no SSH host keys, an empty `/etc/machine-id`, no docs,
//!   and the guest agent enabled. Units that make no sense in an instance (DHCP/ifupdown,
//!   wait-online, gettys on tty1..6, timesyncd, apt-daily, e2scrub, fstrim) are masked: the host
//!   configures the network interface before the instance boots.
//! - **The cache** ([`ImageCache`], default root [`DEFAULT_CACHE_DIR`]): each build lives under
//!   `<root>/builds/<key>/<build-id>/` with its read-only `rootfs/`, a `manifest` of installed
//!   package versions (`dpkg-query -W`) and `image.meta`. The key ([`cache_key`]) hashes the
//!   recipe definition (suite, packages, hooks), the mirror, the architecture, the customisation
//!   script and the guest agent. **A build is reused until [`BuildOptions::refresh`] is set:
//!   [`ImageCache::lookup`] never touches the network**, so a fresh gureum data dir finds the
//!   image of an earlier run in well under a second. A refresh makes a *new* build id and
//!   switches the key's `current` link to it; older builds stay on disk because running
//!   instances and registered AMIs may still use them as an overlayfs lowerdir
//!   ([`ImageCache::remove_build`] deletes one explicitly).
//! - **Imports** ([`ImageCache::import`]): a rootfs tarball (`.tar`, `.tar.gz`, `.tar.zst`, …)
//!   or a disk image (qcow2 or raw, with an MBR/GPT partition table or a bare filesystem) becomes
//!   a root filesystem directory; the partition holding `/etc/os-release` and an init is found
//!   automatically.
//! - **The guest agent** ([`guest`]): a POSIX `sh` script plus systemd units, installed in built
//!   images and injected by the host into imported ones. Every boot it sets the hostname, makes
//!   sure the login user exists and installs the key pair; on an instance's first boot it
//!   generates SSH host keys, prints their fingerprints on the console the way EC2 instances do,
//!   and runs user-data once (scripts, a `#cloud-config` subset, MIME multipart, gzip).
//!
//! Building and importing need root (mmdebstrap's root mode, `chroot`, loop mounts) and run
//! every child that mounts something inside a private mount and PID namespace (`unshare`) tied
//! to the caller's life (`setpriv --pdeathsig`), so a build or import killed with `kill -9`
//! leaves no mounts, loop devices or processes behind.
//!
//! The Ubuntu recipes are defined but **untested**: the machine this was written on reaches
//! only Debian's mirror. They need a reachable Ubuntu mirror (pass `mirror` unless
//! archive.ubuntu.com is reachable; arm64 needs ports.ubuntu.com) and Ubuntu's archive keyring
//! at `/usr/share/keyrings/ubuntu-archive-keyring.gpg`. A build tries `apt-get install
//! ubuntu-keyring` when it is missing, but Debian 12's archive does not carry that package:
//! on a Debian 12 host, copy the keyring there from an Ubuntu system or a newer Debian.
//!
//! Instances are containers today, so images carry no kernel; a VM driver will need one.

mod build;
mod cache;
mod disk;
pub mod guest;
mod import;
mod progress;
mod recipe;
mod rootfs;
mod sys;

pub use cache::{cache_key, image_name, BuiltImage, ImageCache, DEFAULT_CACHE_DIR};
pub use disk::{detect_format, Compression, ImageFormat};
pub use progress::ProgressMode;
pub use recipe::{recipe, recipes, Distro, Recipe};
pub use sys::{is_root, which};

use std::path::PathBuf;

/// How [`ImageCache::build`] runs.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// The package mirror to build from instead of the recipe's default (e.g. a local
    /// apt-cacher-ng or an internal mirror). The image's apt sources point at it too.
    pub mirror: Option<String>,
    /// Build even if a finished build with the same key is cached. Without it a cached build is
    /// reused as is, however old: there is no network check.
    pub refresh: bool,
    /// How progress is reported (on stderr).
    pub progress: ProgressMode,
}

/// Everything that can go wrong building, caching or importing an image.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0} needs root")]
    NeedsRoot(&'static str),
    #[error(
        "{tool} is missing and could not be installed with apt-get install {package}: {detail}"
    )]
    ToolMissing {
        tool: String,
        package: String,
        detail: String,
    },
    #[error("{what} failed ({status}): {detail}")]
    Command {
        what: String,
        status: String,
        detail: String,
    },
    #[error("cache entry {path} is unreadable: {detail}")]
    CorruptCache { path: PathBuf, detail: String },
    #[error("{path} is not a rootfs tarball or a disk image (expected .tar, .tar.gz, .tar.zst, qcow2 or raw)")]
    UnrecognizedFormat { path: PathBuf },
    #[error("{path} is truncated: {detail}")]
    Truncated { path: PathBuf, detail: String },
    #[error("{path} holds no root filesystem: {detail}")]
    NoRootFilesystem { path: PathBuf, detail: String },
    #[error("{path} is not supported: {detail}")]
    Unsupported { path: PathBuf, detail: String },
    #[error("import destination {0} already exists")]
    DestinationExists(PathBuf),
    #[error("the built root filesystem is incomplete: {0}")]
    BadBuild(String),
}

impl ImageError {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> ImageError {
        ImageError::Io {
            context: context.into(),
            source,
        }
    }
}

/// Adds a description of what was being done to an `io::Error`.
pub(crate) trait IoContext<T> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T, ImageError>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T, ImageError> {
        self.map_err(|e| ImageError::io(context(), e))
    }
}
