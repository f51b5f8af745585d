//! The naming scheme: which host resource belongs to which VPC or instance, under which prefix.
//!
//! Every host resource the driver makes carries the driver's prefix (`gr` in production, a
//! random `gt<3 hex>` per test), so several drivers can share a host and each can find and
//! remove exactly its own resources. Names are a pure function of the prefix and the id:
//!
//! | resource                 | name                                  | example (`gr`)            |
//! |--------------------------|---------------------------------------|---------------------------|
//! | VPC bridge               | `<prefix>br<8 hex of fnv1a64(vpc id)>`     | `grbr1ca94ea5`      |
//! | instance host-side veth  | `<prefix><10 hex of fnv1a64(instance id)>` | `gr852a573093`      |
//! | instance netns           | `<prefix>-<instance id>` (in `/run/netns`) | `gr-i-0123456789abcdef0` |
//! | instance-side veth       | `eth0` inside the namespace           |                           |
//! | nftables table           | `inet gureum` for `gr`, `inet gureum_<prefix>` otherwise |  |
//!
//! The hex digits are the high bits of the 64-bit FNV-1a hash of the id's bytes (high 32 bits
//! for bridges, high 40 for veths). Interface names must fit IFNAMSIZ (15 bytes), hence a hash
//! and a prefix of at most 5 characters. A hash is not reversible, so each bridge and veth also
//! carries its owner's id as its `ifalias` (`/sys/class/net/<name>/ifalias`): listing recovers
//! ids from it, and a collision (the name exists with another owner's alias) is detected and
//! refused instead of silently sharing an interface.
//!
//! Prefixes are `[a-z][a-z0-9]{0,4}`; names of two different prefixes never match each other's
//! patterns: the patterns have lengths `prefix + 10` (bridges, where `r` is not a hex digit, and
//! veths) and namespaces use `-`, which no prefix contains.

use crate::NetError;

/// The production prefix.
pub const DEFAULT_PREFIX: &str = "gr";
/// The production nftables table (family `inet`).
pub const DEFAULT_TABLE: &str = "gureum";
/// Longest prefix whose names still fit IFNAMSIZ: 15 - 10 characters of suffix.
pub const MAX_PREFIX_LEN: usize = 5;
/// Longest instance or VPC id accepted (ids become file names under `/run/netns`).
pub const MAX_ID_LEN: usize = 64;

const BRIDGE_HEX: usize = 8;
const VETH_HEX: usize = 10;

/// Names of one driver's host resources.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Names {
    prefix: String,
}

impl Names {
    pub fn new(prefix: &str) -> Result<Names, NetError> {
        let bad = |why| NetError::InvalidPrefix {
            prefix: prefix.to_string(),
            why,
        };
        if prefix.is_empty() || prefix.len() > MAX_PREFIX_LEN {
            return Err(bad("must be 1 to 5 characters, so names fit IFNAMSIZ"));
        }
        if !prefix.starts_with(|c: char| c.is_ascii_lowercase()) {
            return Err(bad("must start with a lower-case letter"));
        }
        if !prefix
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        {
            return Err(bad("only lower-case letters and digits are allowed"));
        }
        Ok(Names {
            prefix: prefix.to_string(),
        })
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The nftables table (family `inet`) this prefix owns.
    pub fn table(&self) -> String {
        if self.prefix == DEFAULT_PREFIX {
            DEFAULT_TABLE.to_string()
        } else {
            format!("{DEFAULT_TABLE}_{}", self.prefix)
        }
    }

    pub fn bridge(&self, vpc_id: &str) -> String {
        let hash = fnv1a64(vpc_id.as_bytes()) >> (64 - 4 * BRIDGE_HEX);
        format!("{}br{hash:0width$x}", self.prefix, width = BRIDGE_HEX)
    }

    pub fn veth(&self, instance_id: &str) -> String {
        let hash = fnv1a64(instance_id.as_bytes()) >> (64 - 4 * VETH_HEX);
        format!("{}{hash:0width$x}", self.prefix, width = VETH_HEX)
    }

    pub fn netns(&self, instance_id: &str) -> String {
        format!("{}-{instance_id}", self.prefix)
    }

    /// The bridge's MAC: fixed, so that it does not follow the lowest port MAC as instances come
    /// and go (which would make every instance's ARP entry for the gateway stale). Locally
    /// administered, unicast; the prefix is hashed in so that two drivers' bridges for the same
    /// VPC id differ.
    pub fn bridge_mac(&self, vpc_id: &str) -> [u8; 6] {
        let h = fnv1a64(format!("{}/{vpc_id}", self.prefix).as_bytes()).to_be_bytes();
        [0x02, 0x67, h[0], h[1], h[2], h[3]]
    }

    pub fn is_bridge(&self, ifname: &str) -> bool {
        ifname
            .strip_prefix(self.prefix.as_str())
            .and_then(|rest| rest.strip_prefix("br"))
            .is_some_and(|hex| is_hex(hex, BRIDGE_HEX))
    }

    pub fn is_veth(&self, ifname: &str) -> bool {
        ifname
            .strip_prefix(self.prefix.as_str())
            .is_some_and(|hex| is_hex(hex, VETH_HEX))
    }

    /// The instance id of a namespace name of this prefix.
    pub fn instance_of_netns<'a>(&self, netns: &'a str) -> Option<&'a str> {
        netns
            .strip_prefix(self.prefix.as_str())
            .and_then(|rest| rest.strip_prefix('-'))
            .filter(|id| validate_id("instance id", id).is_ok())
    }
}

/// Ids become file names and interface aliases: keep them to a safe alphabet.
pub fn validate_id(what: &str, id: &str) -> Result<(), NetError> {
    if id.is_empty() || id.len() > MAX_ID_LEN {
        return Err(NetError::invalid(
            what,
            format!("{id:?} must be 1 to {MAX_ID_LEN} characters"),
        ));
    }
    if !id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(NetError::invalid(
            what,
            format!("{id:?} may contain only letters, digits, '-' and '_'"),
        ));
    }
    Ok(())
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// 64-bit FNV-1a: tiny, stable forever (names must not change between versions), and well
/// enough spread for ids that are themselves random.
fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_deterministic_and_fit_ifnamsiz() {
        let n = Names::new("gr").unwrap();
        assert_eq!(n.bridge("vpc-0123456789abcdef0"), "grbr1ca94ea5");
        assert_eq!(n.veth("i-0123456789abcdef0"), "gr852a573093");
        assert_eq!(n.netns("i-0123456789abcdef0"), "gr-i-0123456789abcdef0");
        assert_eq!(n.table(), "gureum");
        let long = Names::new("gt1ab").unwrap();
        assert_eq!(long.table(), "gureum_gt1ab");
        assert!(long.bridge("vpc-x").len() <= 15);
        assert!(long.veth("i-x").len() <= 15);
    }

    #[test]
    fn fnv_matches_reference_vectors() {
        // Published FNV-1a 64 test vectors.
        assert_eq!(fnv1a64(b""), 0xcbf29ce484222325);
        assert_eq!(fnv1a64(b"a"), 0xaf63dc4c8601ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x85944171f73967e8);
    }

    #[test]
    fn patterns_recognise_own_names_only() {
        let gr = Names::new("gr").unwrap();
        let gt = Names::new("gt123").unwrap();
        let gra = Names::new("gra").unwrap();
        for n in [&gr, &gt, &gra] {
            let br = n.bridge("vpc-1");
            let veth = n.veth("i-1");
            assert!(n.is_bridge(&br) && !n.is_veth(&br), "{br}");
            assert!(n.is_veth(&veth) && !n.is_bridge(&veth), "{veth}");
            for other in [&gr, &gt, &gra] {
                if other != n {
                    assert!(!other.is_bridge(&br) && !other.is_veth(&br));
                    assert!(!other.is_bridge(&veth) && !other.is_veth(&veth));
                    assert_eq!(other.instance_of_netns(&n.netns("i-1")), None);
                }
            }
        }
        assert_eq!(gr.instance_of_netns("gr-i-1"), Some("i-1"));
        assert_eq!(gr.instance_of_netns("gr-"), None);
        assert!(!gr.is_veth("eth0") && !gr.is_bridge("grbr"));
    }

    #[test]
    fn bad_prefixes_and_ids_are_refused() {
        for p in ["", "toolong", "Gr", "1gr", "g-r", "g_r"] {
            assert!(Names::new(p).is_err(), "{p:?}");
        }
        for id in ["", "i/1", "../x", "i 1", "i.1"] {
            assert!(validate_id("id", id).is_err(), "{id:?}");
        }
        assert!(validate_id("id", &"x".repeat(65)).is_err());
        validate_id("id", "i-0123456789abcdef0").unwrap();
    }

    #[test]
    fn bridge_mac_is_local_unicast() {
        let mac = Names::new("gr").unwrap().bridge_mac("vpc-1");
        assert_eq!(mac[0] & 0x03, 0x02);
    }
}
