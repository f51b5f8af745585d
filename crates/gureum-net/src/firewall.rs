//! Security groups as the driver sees them: an instance's [`Firewall`] (the union of the rules
//! of all its groups) and its compilation into nftables set elements.
//!
//! A rule list is not evaluated rule by rule in the kernel. Each direction compiles into four
//! interval sets of disjoint boxes, so a new connection costs four set lookups whatever the
//! number of rules:
//!
//! | set       | key                                             | from rules with |
//! |-----------|-------------------------------------------------|-----------------|
//! | `…_l4`    | `ipv4_addr . inet_proto . inet_service`         | `Tcp`, `Udp`    |
//! | `…_icmp`  | `ipv4_addr . icmp_type . icmp_code`             | `Icmp`          |
//! | `…_proto` | `ipv4_addr . inet_proto`                        | `Number`        |
//! | `…_all`   | `ipv4_addr`                                     | `All`           |
//!
//! `Icmpv6` rules compile to nothing: the networks are IPv4 only (the bridge table drops every
//! IPv6 frame, and every peer is an IPv4 address), so there is no ICMPv6 to admit. Matching
//! IPv4 packets whose protocol field says 58 instead would admit something no ICMPv6 rule
//! means; matching everything would be the bug this type exists to prevent.
//!
//! The address is the peer's: the source for ingress, the destination for egress. The kernel's
//! concatenated-range sets refuse overlapping elements, so [`compile`] turns the union of the
//! rules' boxes into disjoint boxes first (and merges what can be merged), which also makes the
//! result independent of rule order and duplicates.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use crate::NetError;

/// What the instance may receive (`ingress`) and send (`egress`). Connection tracking makes it
/// stateful: replies to an allowed connection are always allowed, in both directions.
///
/// `Firewall::default()` is an empty group: no ingress and no egress. EC2's default group is
/// `ingress: [from the group's members]`, `egress: [Rule::all(Peer::ANYWHERE)]`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Firewall {
    pub ingress: Vec<Rule>,
    pub egress: Vec<Rule>,
}

impl Firewall {
    /// Everything allowed both ways (a group with `-1` to and from `0.0.0.0/0`).
    pub fn open() -> Firewall {
        Firewall {
            ingress: vec![Rule::all(Peer::ANYWHERE)],
            egress: vec![Rule::all(Peer::ANYWHERE)],
        }
    }
}

/// One permission, as in an EC2 security group rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub proto: Proto,
    /// `Tcp`/`Udp`: first and last port, inclusive (`None`: all ports).
    /// `Icmp`: `(type, code)` as EC2's `FromPort`/`ToPort`, each 0..=255, the code
    /// [`ICMP_ANY_CODE`] for every code of the type (`None`: every type and code).
    /// `Icmpv6`: the same, for ICMPv6 types and codes.
    /// `Number` and `All`: must be `None`.
    pub ports: Option<(u16, u16)>,
    /// The source of ingress traffic, the destination of egress traffic.
    pub peer: Peer,
}

/// EC2's `ToPort = -1` of an ICMP rule: every code of the type.
pub const ICMP_ANY_CODE: u16 = u16::MAX;

/// The protocol a rule admits. Each variant is one meaning, and only `All` admits more than
/// one protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Proto {
    Tcp,
    Udp,
    Icmp,
    /// ICMP for IPv6 (58): admits nothing on gureum's IPv4-only networks (see the module docs).
    Icmpv6,
    /// One IP protocol by number, every packet of it (EC2's `IpProtocol` `47`, say): matched
    /// in the kernel as `meta l4proto 47`.
    Number(u8),
    /// Every protocol (EC2's `-1`).
    All,
}

/// Who a rule admits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Peer {
    /// An address block (`0.0.0.0/0` for anywhere).
    Cidr(Ipv4Net),
    /// A referenced security group: the private IPs of its members' interfaces, resolved by
    /// the caller (and set again when membership changes). Traffic that reaches the instance
    /// through a public address is not matched by it (as in EC2), except for the hairpin
    /// deviation documented in [`crate::nft`].
    Group(Vec<Ipv4Addr>),
}

impl Peer {
    pub const ANYWHERE: Peer = Peer::Cidr(match Ipv4Net::new(Ipv4Addr::UNSPECIFIED, 0) {
        Ok(net) => net,
        Err(_) => unreachable!(),
    });
}

impl Rule {
    pub fn tcp(from: u16, to: u16, peer: Peer) -> Rule {
        Rule {
            proto: Proto::Tcp,
            ports: Some((from, to)),
            peer,
        }
    }

    pub fn udp(from: u16, to: u16, peer: Peer) -> Rule {
        Rule {
            proto: Proto::Udp,
            ports: Some((from, to)),
            peer,
        }
    }

    /// Every ICMP type and code.
    pub fn icmp(peer: Peer) -> Rule {
        Rule {
            proto: Proto::Icmp,
            ports: None,
            peer,
        }
    }

    /// Every protocol.
    pub fn all(peer: Peer) -> Rule {
        Rule {
            proto: Proto::All,
            ports: None,
            peer,
        }
    }
}

/// An inclusive range of one dimension.
pub(crate) type Span = (u32, u32);

/// One direction of a firewall as disjoint boxes, ready to become set elements.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Compiled {
    /// `[peer address, protocol number, port]`
    pub l4: Vec<[Span; 3]>,
    /// `[peer address, icmp type, icmp code]`
    pub icmp: Vec<[Span; 3]>,
    /// `[peer address, protocol number]`
    pub proto: Vec<[Span; 2]>,
    /// `[peer address]`
    pub all: Vec<[Span; 1]>,
}

impl Compiled {
    /// Number of set elements.
    pub fn len(&self) -> usize {
        self.l4.len() + self.icmp.len() + self.proto.len() + self.all.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

const IPPROTO_TCP: u32 = 6;
const IPPROTO_UDP: u32 = 17;

/// Check every rule of both directions.
pub fn validate(firewall: &Firewall) -> Result<(), NetError> {
    for (direction, rules) in [("ingress", &firewall.ingress), ("egress", &firewall.egress)] {
        for (i, rule) in rules.iter().enumerate() {
            validate_rule(rule).map_err(|why| {
                NetError::invalid(format!("{direction} rule {} ({rule:?})", i + 1), why)
            })?;
        }
    }
    Ok(())
}

fn validate_rule(rule: &Rule) -> Result<(), String> {
    match (rule.proto, rule.ports) {
        (Proto::Tcp | Proto::Udp, Some((from, to))) if from > to => {
            Err(format!("port range {from}-{to} is reversed"))
        }
        (Proto::Icmp | Proto::Icmpv6, Some((kind, _))) if kind > 255 => {
            Err(format!("icmp type {kind} > 255"))
        }
        (Proto::Icmp | Proto::Icmpv6, Some((_, code))) if code > 255 && code != ICMP_ANY_CODE => {
            Err(format!("icmp code {code} > 255"))
        }
        (Proto::All, Some(_)) => Err("a rule for all protocols takes no ports".into()),
        (Proto::Number(n), Some(_)) => Err(format!("a rule for protocol {n} takes no ports")),
        _ => Ok(()),
    }
}

/// The rules of one direction as disjoint boxes. Pure; validate first.
pub fn compile(rules: &[Rule]) -> Compiled {
    let mut l4 = Vec::new();
    let mut icmp = Vec::new();
    let mut numbered = Vec::new();
    let mut all = Vec::new();
    for rule in rules {
        let peers: Vec<Span> = match &rule.peer {
            Peer::Cidr(net) => {
                let net = net.trunc();
                vec![(u32::from(net.network()), u32::from(net.broadcast()))]
            }
            Peer::Group(members) => members
                .iter()
                .map(|ip| (u32::from(*ip), u32::from(*ip)))
                .collect(),
        };
        for peer in peers {
            match rule.proto {
                Proto::Tcp | Proto::Udp => {
                    let proto = if rule.proto == Proto::Tcp {
                        IPPROTO_TCP
                    } else {
                        IPPROTO_UDP
                    };
                    let (from, to) = rule.ports.unwrap_or((0, u16::MAX));
                    l4.push(vec![(proto, proto), (u32::from(from), u32::from(to)), peer]);
                }
                Proto::Icmp => {
                    let (kinds, codes) = match rule.ports {
                        None => ((0, 255), (0, 255)),
                        Some((kind, ICMP_ANY_CODE)) => {
                            ((u32::from(kind), u32::from(kind)), (0, 255))
                        }
                        Some((kind, code)) => (
                            (u32::from(kind), u32::from(kind)),
                            (u32::from(code), u32::from(code)),
                        ),
                    };
                    icmp.push(vec![kinds, codes, peer]);
                }
                // No IPv6 on the networks: nothing to admit (see the module docs).
                Proto::Icmpv6 => {}
                Proto::Number(n) => numbered.push(vec![(u32::from(n), u32::from(n)), peer]),
                Proto::All => all.push(vec![peer]),
            }
        }
    }
    // The sweep goes protocol, port, then address: security groups have few distinct ports
    // and many peers, so this order splits least. The sets' key order puts the address first.
    let mut compiled = Compiled {
        l4: union(&l4).into_iter().map(|b| [b[2], b[0], b[1]]).collect(),
        icmp: union(&icmp)
            .into_iter()
            .map(|b| [b[2], b[0], b[1]])
            .collect(),
        proto: union(&numbered).into_iter().map(|b| [b[1], b[0]]).collect(),
        all: union(&all).into_iter().map(|b| [b[0]]).collect(),
    };
    compiled.l4.sort_unstable();
    compiled.icmp.sort_unstable();
    compiled.proto.sort_unstable();
    compiled
}

/// The union of boxes (each a list of inclusive spans, all of the same dimension) as disjoint
/// boxes, sorted. A sweep over the first dimension: between two consecutive boundaries (a
/// box's start or the point after its end) the set of covering boxes is constant, so the
/// union there is the first span times the union of the covering boxes' remaining spans;
/// neighbouring slices with equal remainders are merged.
pub(crate) fn union(boxes: &[Vec<Span>]) -> Vec<Vec<Span>> {
    let Some(first) = boxes.first() else {
        return Vec::new();
    };
    if first.len() == 1 {
        let mut spans: Vec<Span> = boxes.iter().map(|b| b[0]).collect();
        spans.sort_unstable();
        let mut merged: Vec<Span> = Vec::new();
        for (start, end) in spans {
            match merged.last_mut() {
                Some(last) if u64::from(start) <= u64::from(last.1) + 1 => {
                    last.1 = last.1.max(end);
                }
                _ => merged.push((start, end)),
            }
        }
        return merged.into_iter().map(|s| vec![s]).collect();
    }

    // Boundaries as u64 so that "after u32::MAX" is representable.
    let mut bounds: Vec<u64> = boxes
        .iter()
        .flat_map(|b| [u64::from(b[0].0), u64::from(b[0].1) + 1])
        .collect();
    bounds.sort_unstable();
    bounds.dedup();
    let mut order: Vec<usize> = (0..boxes.len()).collect();
    order.sort_unstable_by_key(|&i| boxes[i][0].0);
    let mut next = 0;
    let mut active: Vec<usize> = Vec::new();
    // (start, end, union of the remaining dimensions)
    let mut slices: Vec<(u64, u64, Vec<Vec<Span>>)> = Vec::new();
    for window in bounds.windows(2) {
        let (lo, hi) = (window[0], window[1] - 1);
        while next < order.len() && u64::from(boxes[order[next]][0].0) <= lo {
            active.push(order[next]);
            next += 1;
        }
        active.retain(|&i| u64::from(boxes[i][0].1) >= lo);
        if active.is_empty() {
            continue;
        }
        let rest: Vec<Vec<Span>> = active.iter().map(|&i| boxes[i][1..].to_vec()).collect();
        let rest = union(&rest);
        match slices.last_mut() {
            Some(last) if last.1 + 1 == lo && last.2 == rest => last.1 = hi,
            _ => slices.push((lo, hi, rest)),
        }
    }
    let mut out = Vec::new();
    for (lo, hi, rest) in slices {
        let span = (lo as u32, hi as u32);
        for tail in rest {
            let mut b = Vec::with_capacity(tail.len() + 1);
            b.push(span);
            b.extend(tail);
            out.push(b);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// xorshift64: deterministic boxes without a dependency.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self, bound: u32) -> u32 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % u64::from(bound)) as u32
        }
    }

    /// Every point of the boxes.
    fn points(boxes: &[Vec<Span>]) -> BTreeSet<Vec<u32>> {
        fn expand(spans: &[Span], point: &mut Vec<u32>, out: &mut BTreeSet<Vec<u32>>) {
            match spans.split_first() {
                None => {
                    out.insert(point.clone());
                }
                Some((&(lo, hi), rest)) => {
                    for x in lo..=hi {
                        point.push(x);
                        expand(rest, point, out);
                        point.pop();
                    }
                }
            }
        }
        let mut out = BTreeSet::new();
        for b in boxes {
            expand(b, &mut Vec::new(), &mut out);
        }
        out
    }

    #[test]
    fn union_is_disjoint_and_covers_exactly_the_input() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for dims in 1..=3 {
            for round in 0..300 {
                let n = 1 + rng.next(8) as usize;
                let boxes: Vec<Vec<Span>> = (0..n)
                    .map(|_| {
                        (0..dims)
                            .map(|_| {
                                let a = rng.next(10);
                                let b = rng.next(10);
                                (a.min(b), a.max(b))
                            })
                            .collect()
                    })
                    .collect();
                let out = union(&boxes);
                let want = points(&boxes);
                let got: Vec<BTreeSet<Vec<u32>>> = out
                    .iter()
                    .map(|b| points(std::slice::from_ref(b)))
                    .collect();
                let total: usize = got.iter().map(BTreeSet::len).sum();
                let all: BTreeSet<Vec<u32>> = got.into_iter().flatten().collect();
                assert_eq!(all, want, "dims {dims} round {round}: {boxes:?} -> {out:?}");
                assert_eq!(total, all.len(), "overlap: {boxes:?} -> {out:?}");
            }
        }
    }

    #[test]
    fn union_merges_and_handles_the_extremes() {
        let full = (0, u32::MAX);
        assert_eq!(union(&[vec![full], vec![(5, 9)]]), vec![vec![full]]);
        assert_eq!(
            union(&[vec![(0, 4)], vec![(5, 9)], vec![(11, 12)]]),
            vec![vec![(0, 9)], vec![(11, 12)]]
        );
        // Adjacent address slices with the same ports merge into one element.
        assert_eq!(
            union(&[vec![(0, 4), (80, 80)], vec![(5, u32::MAX), (80, 80)]]),
            vec![vec![full, (80, 80)]]
        );
        assert!(union(&[]).is_empty());
    }

    #[test]
    fn rules_compile_to_their_sets() {
        let web: Ipv4Net = "10.1.0.0/16".parse().unwrap();
        let a = Ipv4Addr::new(172, 31, 0, 7);
        let compiled = compile(&[
            Rule::tcp(80, 80, Peer::Cidr(web)),
            Rule::tcp(80, 80, Peer::Cidr(web)), // duplicate
            Rule {
                proto: Proto::Udp,
                ports: None,
                peer: Peer::Group(vec![a]),
            },
            Rule {
                proto: Proto::Icmp,
                ports: Some((8, ICMP_ANY_CODE)),
                peer: Peer::ANYWHERE,
            },
            Rule {
                proto: Proto::Icmp,
                ports: Some((3, 4)),
                peer: Peer::Group(vec![]),
            },
            Rule::all(Peer::Cidr("192.168.1.5/24".parse().unwrap())),
        ]);
        let web = (
            u32::from(Ipv4Addr::new(10, 1, 0, 0)),
            u32::from(Ipv4Addr::new(10, 1, 255, 255)),
        );
        let a = (u32::from(a), u32::from(a));
        assert_eq!(
            compiled.l4,
            vec![[web, (6, 6), (80, 80)], [a, (17, 17), (0, 65535)]]
        );
        // An empty group admits nobody.
        assert_eq!(compiled.icmp, vec![[(0, u32::MAX), (8, 8), (0, 255)]]);
        // The CIDR is truncated to its network.
        let net = u32::from(Ipv4Addr::new(192, 168, 1, 0));
        assert_eq!(compiled.all, vec![[(net, net + 255)]]);
        assert_eq!(compiled.len(), 4);
        assert!(compile(&[]).is_empty());
    }

    #[test]
    fn bad_rules_are_refused() {
        let bad = [
            Rule::tcp(90, 80, Peer::ANYWHERE),
            Rule {
                proto: Proto::Icmp,
                ports: Some((256, 0)),
                peer: Peer::ANYWHERE,
            },
            Rule {
                proto: Proto::Icmp,
                ports: Some((3, 256)),
                peer: Peer::ANYWHERE,
            },
            Rule {
                proto: Proto::All,
                ports: Some((1, 2)),
                peer: Peer::ANYWHERE,
            },
        ];
        for rule in bad {
            let firewall = Firewall {
                ingress: vec![],
                egress: vec![rule.clone()],
            };
            assert!(validate(&firewall).is_err(), "{rule:?}");
        }
        validate(&Firewall::open()).unwrap();
        validate(&Firewall {
            ingress: vec![Rule {
                proto: Proto::Icmp,
                ports: Some((3, ICMP_ANY_CODE)),
                peer: Peer::ANYWHERE,
            }],
            egress: vec![],
        })
        .unwrap();
    }
}
