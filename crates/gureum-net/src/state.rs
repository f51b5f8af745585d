//! The elements of the instance-owned sets and maps ([`nft::INSTANCE_SETS`]), mirrored in
//! memory, and the planning of every per-instance change as a diff against them.
//!
//! nftables deletes an element only when told its key, and refuses to add a key that holds
//! another value; so changing an instance's elements needs to know what they are now. The
//! driver keeps a mirror: loaded from the kernel on first use (a restarted server finds what
//! its predecessor left), then updated after every successful transaction. A change is
//! described as the instance's desired [`Facts`]; [`Tracked::plan`] turns them into the
//! elements the instance should own, diffs them with what it owns, and returns the transaction
//! text and the mirror after it (a pure function, unit-tested below and golden-tested). Nothing
//! to change means no transaction at all, so a repeated `attach` or `map_public_ip` costs no
//! process. If a transaction fails, the driver reloads the mirror and plans again once.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::Ipv4Addr;

use serde_json::Value;

use crate::nft::{self, Element, Mapping, INSTANCE_SETS};
use crate::NetError;

/// What the tables should say about one instance (its host veth `V`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Facts {
    /// Attached: its bridge port (anti-spoofing, and the key of its security groups).
    pub port: Option<PortFacts>,
    /// Has security groups (its chains `in_V`/`out_V` exist).
    pub firewalled: bool,
    pub public: Option<Mapping>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PortFacts {
    pub bridge: String,
    pub mac: [u8; 6],
    pub ip: Ipv4Addr,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Tracked {
    /// Whether the instance-owned sets exist at all (any per-instance transaction or the
    /// shared part creates them).
    pub exists: bool,
    /// set name -> element key -> value (`None` for a set). Names are unique across the two
    /// tables.
    pub sets: BTreeMap<&'static str, BTreeMap<String, Option<String>>>,
}

fn q(name: &str) -> String {
    format!("\"{name}\"")
}

fn element(set: &'static str, key: String, value: Option<String>) -> Element {
    let family = INSTANCE_SETS
        .iter()
        .find(|s| s.1 == set)
        .map(|s| s.0)
        .expect("an instance set");
    Element {
        family,
        set,
        key,
        value,
    }
}

/// The nft text of one JSON datum of type `kind`.
fn datum(kind: &str, value: &Value, what: &str) -> Result<String, NetError> {
    if let Some(target) = value.get("jump").and_then(|j| j.get("target")) {
        let target = target
            .as_str()
            .ok_or_else(|| NetError::parse(what, format!("bad verdict {value}")))?;
        return Ok(format!("jump {target}"));
    }
    let text = value
        .as_str()
        .ok_or_else(|| NetError::parse(what, format!("unexpected datum {value}")))?;
    Ok(if kind == "ifname" {
        q(text)
    } else {
        text.to_string()
    })
}

fn key_text(kinds: &[&str], key: &Value, what: &str) -> Result<String, NetError> {
    if kinds.len() == 1 {
        return datum(kinds[0], key, what);
    }
    let parts = key["concat"]
        .as_array()
        .filter(|parts| parts.len() == kinds.len())
        .ok_or_else(|| NetError::parse(what, format!("unexpected key {key}")))?;
    let texts = kinds
        .iter()
        .zip(parts)
        .map(|(kind, part)| datum(kind, part, what))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(texts.join(" . "))
}

impl Tracked {
    /// Read every instance-owned set of both tables (one `nft -j list` each, concurrently).
    pub async fn load(table: &str) -> Result<Tracked, NetError> {
        let lists = INSTANCE_SETS
            .map(|(family, set, _, value)| nft::list_elements(family, table, set, value.is_some()));
        let [a, b, c, d, e, f, g, h, i] = lists;
        let results = tokio::join!(a, b, c, d, e, f, g, h, i);
        let results = [
            results.0, results.1, results.2, results.3, results.4, results.5, results.6, results.7,
            results.8,
        ];
        let mut tracked = Tracked::default();
        for ((_, set, kinds, value_kind), result) in INSTANCE_SETS.iter().zip(results) {
            let Some(elements) = result? else {
                continue;
            };
            if *set == "sg_ports" {
                tracked.exists = true;
            }
            let entries = tracked.sets.entry(set).or_default();
            for (key, value) in elements {
                let key = key_text(kinds, &key, set)?;
                let value = match (value_kind, value) {
                    (Some(kind), Some(value)) => Some(datum(kind, &value, set)?),
                    _ => None,
                };
                entries.insert(key, value);
            }
        }
        Ok(tracked)
    }

    fn get(&self, set: &str, key: &str) -> Option<&Option<String>> {
        self.sets.get(set).and_then(|s| s.get(key))
    }

    fn all(&self) -> impl Iterator<Item = Element> + '_ {
        self.sets.iter().flat_map(|(set, entries)| {
            entries
                .iter()
                .map(move |(k, v)| element(set, k.clone(), v.clone()))
        })
    }

    /// What the tables say about the instance now.
    pub fn facts_of(&self, veth: &str) -> Facts {
        let prefix = format!("{} . ", q(veth));
        let keyed = |set: &str| {
            self.sets.get(set).and_then(|s| {
                s.keys()
                    .find_map(|k| k.strip_prefix(&prefix).map(str::to_string))
            })
        };
        let bridge = self
            .get("ports", &q(veth))
            .cloned()
            .flatten()
            .map(|b| b.trim_matches('"').to_string());
        let mac = keyed("port_mac").and_then(|m| crate::host::parse_mac(&m));
        let ip = keyed("port_ip").and_then(|ip| ip.parse().ok());
        let port = match (bridge, mac, ip) {
            (Some(bridge), Some(mac), Some(ip)) => Some(PortFacts { bridge, mac, ip }),
            _ => None,
        };
        let public = self
            .get("public_by_port", &q(veth))
            .cloned()
            .flatten()
            .and_then(|p| {
                let private = self.get("public_to_private", &p).cloned().flatten()?;
                Some(Mapping {
                    public: p.parse().ok()?,
                    private: private.parse().ok()?,
                })
            });
        Facts {
            port,
            firewalled: self.get("sg_ports", &q(veth)).is_some(),
            public,
        }
    }

    /// The elements an instance with these facts owns.
    fn desired(veth: &str, facts: &Facts) -> BTreeSet<Element> {
        let v = q(veth);
        let mut out = BTreeSet::new();
        if let Some(port) = &facts.port {
            let mac = crate::host::format_mac(port.mac);
            out.insert(element("ports", v.clone(), Some(q(&port.bridge))));
            out.insert(element("port_mac", format!("{v} . {mac}"), None));
            out.insert(element("port_ip", format!("{v} . {}", port.ip), None));
            if facts.firewalled {
                let key = format!("{} . {}", q(&port.bridge), port.ip);
                let jump_in = format!("jump {}", nft::chain_in(veth));
                let jump_out = format!("jump {}", nft::chain_out(veth));
                out.insert(element("sg_ingress", key.clone(), Some(jump_in)));
                out.insert(element("sg_egress", key, Some(jump_out)));
            }
        }
        if facts.firewalled {
            out.insert(element("sg_ports", v.clone(), None));
        }
        if let Some(m) = facts.public {
            let (public, private) = (m.public.to_string(), m.private.to_string());
            out.insert(element(
                "public_to_private",
                public.clone(),
                Some(private.clone()),
            ));
            if m.routable() {
                out.insert(element("private_to_public", private, Some(public.clone())));
            }
            out.insert(element("public_by_port", v, Some(public)));
        }
        out
    }

    /// The elements the instance owns now.
    fn owned(&self, veth: &str) -> BTreeSet<Element> {
        let v = q(veth);
        let prefix = format!("{v} . ");
        let jump_in = Some(format!("jump {}", nft::chain_in(veth)));
        let jump_out = Some(format!("jump {}", nft::chain_out(veth)));
        let public = self.get("public_by_port", &v).cloned().flatten();
        self.all()
            .filter(|e| match e.set {
                "ports" | "port_mac" | "port_ip" | "sg_ports" | "public_by_port" => {
                    e.key == v || e.key.starts_with(&prefix)
                }
                "sg_ingress" => e.value == jump_in,
                "sg_egress" => e.value == jump_out,
                "public_to_private" => Some(&e.key) == public.as_ref(),
                "private_to_public" => e.value.is_some() && e.value == public,
                _ => false,
            })
            .collect()
    }

    /// The transaction that makes the instance's elements match `facts` (with `pre` before the
    /// element changes and `post` after them), and the mirror after it; `None` if there is
    /// nothing to do. Refused if another instance holds the public address (or the private
    /// address's reverse mapping); another instance's stale claim on a dispatch key is removed.
    pub fn plan(
        &self,
        table: &str,
        veth: &str,
        facts: &Facts,
        pre: &str,
        post: &str,
    ) -> Result<Option<(String, Tracked)>, NetError> {
        let owned = self.owned(veth);
        let desired = Tracked::desired(veth, facts);
        let mut delete: Vec<Element> = owned.difference(&desired).cloned().collect();
        let add: Vec<Element> = desired.difference(&owned).cloned().collect();
        for e in &add {
            let Some(value) = self.get(e.set, &e.key) else {
                continue;
            };
            let existing = element(e.set, e.key.clone(), value.clone());
            if owned.contains(&existing) {
                continue;
            }
            match e.set {
                "sg_ingress" | "sg_egress" => delete.push(existing),
                "public_to_private" => {
                    let holder = self
                        .sets
                        .get("public_by_port")
                        .and_then(|s| {
                            s.iter()
                                .find(|(_, p)| p.as_deref() == Some(e.key.as_str()))
                                .map(|(v, _)| v.trim_matches('"').to_string())
                        })
                        .unwrap_or_else(|| "an unknown interface".into());
                    return Err(NetError::PublicIpInUse {
                        public: e.key.parse().expect("rendered from an address"),
                        holder,
                    });
                }
                _ => {
                    return Err(NetError::invalid(
                        format!("{} element {}", e.set, e.key),
                        format!(
                            "already held by another instance ({})",
                            value.as_deref().unwrap_or("")
                        ),
                    ))
                }
            }
        }
        if delete.is_empty() && add.is_empty() && pre.is_empty() && post.is_empty() {
            return Ok(None);
        }
        delete.sort();
        let mut text = String::new();
        let _ = writeln!(text, "# {veth}");
        nft::declare(&mut text, table);
        text.push_str(pre);
        nft::render_elements(&mut text, table, &delete, &add);
        text.push_str(post);

        let mut next = self.clone();
        next.exists = true;
        for e in &delete {
            if let Some(entries) = next.sets.get_mut(e.set) {
                entries.remove(&e.key);
            }
        }
        for e in add {
            next.sets.entry(e.set).or_default().insert(e.key, e.value);
        }
        Ok(Some((text, next)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::firewall::{compile, Peer, Rule};

    fn port(ip: [u8; 4]) -> Option<PortFacts> {
        Some(PortFacts {
            bridge: "grbr1ca94ea5".into(),
            mac: [0x0a, 0x1b, 0x2c, 0x3d, 0x4e, ip[3]],
            ip: ip.into(),
        })
    }

    /// Apply a plan to the mirror, as the driver does after a successful transaction.
    fn step(
        t: &Tracked,
        veth: &str,
        facts: &Facts,
        pre: &str,
        post: &str,
        log: &mut String,
    ) -> Tracked {
        let (text, next) = t.plan("gureum", veth, facts, pre, post).unwrap().unwrap();
        log.push_str(&text);
        assert_eq!(next.facts_of(veth), *facts, "{text}");
        // The same facts again: nothing to do.
        assert!(next.plan("gureum", veth, facts, "", "").unwrap().is_none());
        next
    }

    /// An instance's life as transactions, reviewed in a golden file.
    #[test]
    fn an_instance_life_matches_golden_file() {
        let v = "gr852a573093";
        let mut log = String::new();
        let t = Tracked::default();
        log.push_str("## attach\n");
        let mut facts = Facts {
            port: port([172, 31, 0, 5]),
            ..Facts::default()
        };
        let t = step(&t, v, &facts, "", "", &mut log);
        log.push_str("## set_instance_firewall\n");
        facts.firewalled = true;
        let fw = nft::render_firewall(
            "gureum",
            "i-0123456789abcdef0",
            v,
            &compile(&[Rule::tcp(22, 22, Peer::ANYWHERE)]),
            &compile(&[Rule::all(Peer::ANYWHERE)]),
        );
        let t = step(&t, v, &facts, &fw, "", &mut log);
        log.push_str("## map_public_ip (loopback)\n");
        facts.public = Some(Mapping {
            public: [127, 100, 0, 5].into(),
            private: [172, 31, 0, 5].into(),
        });
        let t = step(&t, v, &facts, "", "", &mut log);
        log.push_str("## map_public_ip (routable)\n");
        facts.public = Some(Mapping {
            public: [198, 51, 100, 7].into(),
            private: [172, 31, 0, 5].into(),
        });
        let t = step(&t, v, &facts, "", "", &mut log);
        log.push_str("## attach with another IP and MAC\n");
        facts.port = port([172, 31, 0, 9]);
        let t = step(&t, v, &facts, "", "", &mut log);
        log.push_str("## detach\n");
        let post = nft::render_remove_firewall("gureum", v);
        let t = step(&t, v, &Facts::default(), "", &post, &mut log);
        assert!(t.sets.values().all(BTreeMap::is_empty), "{t:?}");
        crate::nft::tests::golden("instance.nft", &log);
    }

    #[test]
    fn a_dispatch_key_taken_over_is_removed_from_its_old_holder() {
        let mut log = String::new();
        let firewalled = |ip| Facts {
            port: port(ip),
            firewalled: true,
            public: None,
        };
        let t = step(
            &Tracked::default(),
            "v1",
            &firewalled([10, 0, 0, 5]),
            "",
            "",
            &mut log,
        );
        // v1 is gone from the host without a detach (a crash); v2 gets its address.
        let (text, next) = t
            .plan("t", "v2", &firewalled([10, 0, 0, 5]), "", "")
            .unwrap()
            .unwrap();
        assert!(
            text.contains("delete element inet t sg_ingress { \"grbr1ca94ea5\" . 10.0.0.5 }"),
            "{text}"
        );
        assert_eq!(next.facts_of("v2"), firewalled([10, 0, 0, 5]));
        assert!(
            next.facts_of("v1").firewalled,
            "v1's own elements stay until its detach"
        );
    }

    #[test]
    fn public_addresses_are_exclusive() {
        let mut log = String::new();
        let m = Mapping {
            public: [127, 100, 0, 5].into(),
            private: [10, 0, 0, 5].into(),
        };
        let with = |public| Facts {
            public: Some(public),
            ..Facts::default()
        };
        let t = step(&Tracked::default(), "v1", &with(m), "", "", &mut log);
        let taken = t.plan(
            "t",
            "v2",
            &with(Mapping {
                private: [10, 0, 0, 6].into(),
                ..m
            }),
            "",
            "",
        );
        assert!(
            matches!(&taken, Err(NetError::PublicIpInUse { holder, .. }) if holder == "v1"),
            "{taken:?}"
        );
        let routable = Mapping {
            public: [198, 51, 100, 7].into(),
            ..m
        };
        let t = step(&t, "v1", &with(routable), "", "", &mut log);
        let reverse = t.plan(
            "t",
            "v2",
            &with(Mapping {
                public: [198, 51, 100, 8].into(),
                private: m.private,
            }),
            "",
            "",
        );
        assert!(
            matches!(reverse, Err(NetError::Invalid { .. })),
            "{reverse:?}"
        );
        let t = step(&t, "v1", &Facts::default(), "", "", &mut log);
        assert!(t.sets.values().all(BTreeMap::is_empty));
        assert!(t
            .plan("t", "v1", &Facts::default(), "", "")
            .unwrap()
            .is_none());
    }

    #[test]
    fn elements_read_back_as_they_are_written() {
        let json = |kind: &str, name: &str, types: &str, map: Option<&str>, elem: &str| {
            let map = map
                .map(|m| format!(", \"map\": \"{m}\""))
                .unwrap_or_default();
            format!(
                r#"{{"nftables": [{{"metainfo": {{}}}}, {{"{kind}": {{"name": "{name}", "type": {types}{map}, "elem": {elem}}}}}]}}"#
            )
        };
        let cases = [
            (
                json(
                    "map",
                    "ports",
                    r#""ifname""#,
                    Some("ifname"),
                    r#"[["v1", "br1"]]"#,
                ),
                ("ports", "\"v1\"", Some("\"br1\"")),
            ),
            (
                json(
                    "set",
                    "port_mac",
                    r#"["ifname", "ether_addr"]"#,
                    None,
                    r#"[{"concat": ["v1", "0a:1b:2c:3d:4e:05"]}]"#,
                ),
                ("port_mac", "\"v1\" . 0a:1b:2c:3d:4e:05", None),
            ),
            (
                json(
                    "map",
                    "sg_ingress",
                    r#"["ifname", "ipv4_addr"]"#,
                    Some("verdict"),
                    r#"[[{"concat": ["br1", "10.0.0.5"]}, {"jump": {"target": "in_v1"}}]]"#,
                ),
                ("sg_ingress", "\"br1\" . 10.0.0.5", Some("jump in_v1")),
            ),
        ];
        for (json, (set, key, value)) in cases {
            let (_, _, kinds, value_kind) = INSTANCE_SETS.iter().find(|s| s.1 == set).unwrap();
            let elements = nft::parse_elements(&json).unwrap();
            let (k, v) = &elements[0];
            assert_eq!(key_text(kinds, k, set).unwrap(), key);
            let v = v
                .as_ref()
                .map(|v| datum(value_kind.unwrap(), v, set).unwrap());
            assert_eq!(v.as_deref(), value);
        }
    }
}
