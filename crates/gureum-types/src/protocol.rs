//! The IP protocol of a security-group rule ([`IpProtocol`]): parsed once, where a request
//! or a stored record comes in, so that everything after (the firewall above all) matches
//! on a closed set of meanings instead of comparing strings.
//!
//! What AWS accepts and answers (EC2 API reference, `IpPermission.IpProtocol`): the names
//! `tcp`, `udp`, `icmp`, `icmpv6`, or a protocol number 0–255, and `-1` for every protocol.
//! The numbers of the four named protocols (6, 17, 1, 58) are the same rule as the names,
//! and `DescribeSecurityGroups` answers with the name (a rule authorised as `6` is described
//! as `tcp`; Terraform's provider relies on it, hashicorp/terraform-provider-aws#9569).
//! Any other number is that one protocol on every port ("allows traffic on all ports,
//! regardless of any port range you specify"), and is answered as the number. `all` is
//! accepted as another spelling of `-1`, names in any case.

use std::fmt;
use std::str::FromStr;

use crate::error::{ApiError, ErrorCode};

/// One security-group rule's protocol. [`IpProtocol::Other`] is one specific protocol
/// number, never "every protocol": only [`IpProtocol::All`] means that.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IpProtocol {
    /// 6; ports are a range.
    Tcp,
    /// 17; ports are a range.
    Udp,
    /// 1; "ports" are the ICMP type and code (-1 for all).
    Icmp,
    /// 58, ICMP for IPv6; "ports" are its type and code (-1 for all).
    Icmpv6,
    /// `-1`: every protocol, every port.
    All,
    /// Any other protocol number (never 1, 6, 17 or 58, which have their own variants;
    /// use [`IpProtocol::from_number`]), every port.
    Other(u8),
}

impl IpProtocol {
    /// The rule for protocol number `n`: the named variant for 1, 6, 17 and 58.
    pub fn from_number(n: u8) -> IpProtocol {
        match n {
            1 => IpProtocol::Icmp,
            6 => IpProtocol::Tcp,
            17 => IpProtocol::Udp,
            58 => IpProtocol::Icmpv6,
            n => IpProtocol::Other(n),
        }
    }

    /// The IANA protocol number; `None` for [`IpProtocol::All`].
    pub fn number(self) -> Option<u8> {
        match self {
            IpProtocol::Tcp => Some(6),
            IpProtocol::Udp => Some(17),
            IpProtocol::Icmp => Some(1),
            IpProtocol::Icmpv6 => Some(58),
            IpProtocol::All => None,
            IpProtocol::Other(n) => Some(n),
        }
    }

    /// Whether a rule of this protocol has a port range (tcp, udp) or an ICMP type and code
    /// (icmp, icmpv6). For the others AWS ignores any ports given.
    pub fn has_ports(self) -> bool {
        match self {
            IpProtocol::Tcp | IpProtocol::Udp | IpProtocol::Icmp | IpProtocol::Icmpv6 => true,
            IpProtocol::All | IpProtocol::Other(_) => false,
        }
    }

    /// A short name for people (the console): `TCP`, `UDP`, `ICMP`, `ICMPv6`, `All`, or
    /// `Protocol 47`.
    pub fn label(self) -> String {
        match self {
            IpProtocol::Tcp => "TCP".into(),
            IpProtocol::Udp => "UDP".into(),
            IpProtocol::Icmp => "ICMP".into(),
            IpProtocol::Icmpv6 => "ICMPv6".into(),
            IpProtocol::All => "All".into(),
            IpProtocol::Other(n) => format!("Protocol {n}"),
        }
    }

    /// EC2's error for a protocol it does not know; `raw` as the client sent it.
    pub fn unknown(raw: &str) -> ApiError {
        ApiError::new(
            ErrorCode::InvalidParameterValue,
            format!("Invalid value '{raw}' for IP protocol. Unknown protocol."),
        )
    }
}

impl FromStr for IpProtocol {
    type Err = ApiError;

    /// A protocol as a client or the store spells it: a name in any case, `-1`/`all`, or
    /// a number 0–255 (decimal digits only: no sign, no spaces).
    fn from_str(raw: &str) -> Result<IpProtocol, ApiError> {
        let lower = raw.to_ascii_lowercase();
        Ok(match lower.as_str() {
            "tcp" => IpProtocol::Tcp,
            "udp" => IpProtocol::Udp,
            "icmp" => IpProtocol::Icmp,
            "icmpv6" => IpProtocol::Icmpv6,
            "-1" | "all" => IpProtocol::All,
            digits if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) => digits
                .parse::<u8>()
                .map(IpProtocol::from_number)
                .map_err(|_| IpProtocol::unknown(raw))?,
            _ => return Err(IpProtocol::unknown(raw)),
        })
    }
}

/// As AWS answers it (`ipProtocol`), and as the store keeps it.
impl fmt::Display for IpProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IpProtocol::Tcp => f.write_str("tcp"),
            IpProtocol::Udp => f.write_str("udp"),
            IpProtocol::Icmp => f.write_str("icmp"),
            IpProtocol::Icmpv6 => f.write_str("icmpv6"),
            IpProtocol::All => f.write_str("-1"),
            IpProtocol::Other(n) => write!(f, "{n}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<IpProtocol, ApiError> {
        s.parse()
    }

    #[test]
    fn names_and_their_numbers_are_one_protocol() {
        for (names, want) in [
            (&["tcp", "TCP", "Tcp", "6", "006"][..], IpProtocol::Tcp),
            (&["udp", "UDP", "17"][..], IpProtocol::Udp),
            (&["icmp", "ICMP", "1", "01"][..], IpProtocol::Icmp),
            (
                &["icmpv6", "ICMPv6", "ICMPV6", "58"][..],
                IpProtocol::Icmpv6,
            ),
            (&["-1", "all", "ALL"][..], IpProtocol::All),
        ] {
            for name in names {
                assert_eq!(p(name).unwrap(), want, "{name}");
            }
        }
    }

    #[test]
    fn other_numbers_are_that_protocol_only() {
        for (raw, n) in [
            ("0", 0),
            ("2", 2),
            ("47", 47),
            ("50", 50),
            ("132", 132),
            ("255", 255),
        ] {
            assert_eq!(p(raw).unwrap(), IpProtocol::Other(n), "{raw}");
            assert_eq!(p(raw).unwrap().number(), Some(n));
            assert!(!p(raw).unwrap().has_ports());
        }
        assert_eq!(IpProtocol::All.number(), None);
    }

    #[test]
    fn rendered_as_aws_answers_and_parsed_back() {
        for (raw, shown) in [
            ("TCP", "tcp"),
            ("6", "tcp"),
            ("17", "udp"),
            ("1", "icmp"),
            ("58", "icmpv6"),
            ("all", "-1"),
            ("-1", "-1"),
            ("47", "47"),
            ("0", "0"),
        ] {
            let proto = p(raw).unwrap();
            assert_eq!(proto.to_string(), shown, "{raw}");
            assert_eq!(p(shown).unwrap(), proto, "{shown}");
        }
        for n in 0..=255u8 {
            let proto = IpProtocol::from_number(n);
            assert_eq!(proto.number(), Some(n));
            assert_eq!(p(&proto.to_string()).unwrap(), proto);
        }
    }

    #[test]
    fn unknown_values_get_aws_error() {
        for raw in [
            "",
            "256",
            "1000",
            "-2",
            "+6",
            " 6",
            "6 ",
            "tcp6",
            "icmp6",
            "ipv6-icmp",
            "gre",
            "*",
            "0x6",
            "-0",
        ] {
            let e = p(raw).unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidParameterValue, "{raw:?}");
            assert_eq!(
                e.message,
                format!("Invalid value '{raw}' for IP protocol. Unknown protocol.")
            );
        }
    }

    #[test]
    fn labels() {
        assert_eq!(IpProtocol::Icmpv6.label(), "ICMPv6");
        assert_eq!(IpProtocol::Other(47).label(), "Protocol 47");
        assert_eq!(IpProtocol::All.label(), "All");
    }
}
