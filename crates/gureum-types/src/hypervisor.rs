//! The hypervisors an instance can run on, parsed from the text that names them (the
//! `gureum:hypervisor` tag, `gureum up --hypervisor`, the instance record's column).

use std::fmt;
use std::str::FromStr;

/// What runs an instance's guest on its host.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Hypervisor {
    /// A runc system container booting the image's systemd; launches run on it unless told
    /// otherwise (`gureum up --hypervisor`, the `gureum:hypervisor` tag).
    #[default]
    Container,
    /// A QEMU virtual machine.
    Vm,
}

impl Hypervisor {
    /// Every hypervisor, in the order messages list them.
    pub const ALL: [Hypervisor; 2] = [Hypervisor::Container, Hypervisor::Vm];

    /// Its name in tags, flags and the store (`container`, `vm`): stored text, never to change.
    pub fn as_str(self) -> &'static str {
        match self {
            Hypervisor::Container => "container",
            Hypervisor::Vm => "vm",
        }
    }

    /// The hypervisor named `text`, if it names one (exactly; names are lower-case).
    pub fn parse(text: &str) -> Option<Hypervisor> {
        Hypervisor::ALL.into_iter().find(|h| h.as_str() == text)
    }
}

impl fmt::Display for Hypervisor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not a hypervisor's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown hypervisor {0:?}: use container or vm")]
pub struct UnknownHypervisor(pub String);

impl FromStr for Hypervisor {
    type Err = UnknownHypervisor;

    fn from_str(s: &str) -> Result<Hypervisor, UnknownHypervisor> {
        Hypervisor::parse(s).ok_or_else(|| UnknownHypervisor(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_nothing_else_parses() {
        for h in Hypervisor::ALL {
            assert_eq!(h.as_str().parse::<Hypervisor>(), Ok(h));
        }
        // The stored texts of existing data dirs.
        assert_eq!(Hypervisor::parse("container"), Some(Hypervisor::Container));
        assert_eq!(Hypervisor::parse("vm"), Some(Hypervisor::Vm));
        for bad in ["", "VM", "Container", "xen", "vm "] {
            assert_eq!(Hypervisor::parse(bad), None, "{bad:?}");
        }
        assert_eq!(
            "kvm".parse::<Hypervisor>().unwrap_err().to_string(),
            "unknown hypervisor \"kvm\": use container or vm"
        );
    }
}
