//! Serde for the vocabulary's own text forms: a type of `gureum-types` that parses from and
//! displays as its wire text (`IpProtocol`, `InstanceState`, `Hypervisor`, …) crosses a
//! JSON seam as that text (`#[serde(with = "gureum_host_api::wire::text")]`), so the types
//! crate needs no serde of its own and the text is the one the API and the store use.

/// `#[serde(with = "text")]` for a `Display + FromStr` value.
pub mod text {
    use std::fmt::Display;
    use std::str::FromStr;

    use serde::{de, Deserialize, Deserializer, Serializer};

    pub fn serialize<T: Display, S: Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(v)
    }

    pub fn deserialize<'de, T, D>(d: D) -> Result<T, D::Error>
    where
        T: FromStr,
        T::Err: Display,
        D: Deserializer<'de>,
    {
        let s = String::deserialize(d)?;
        s.parse().map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use crate::{Firewall, FirewallPeer, FirewallRule, HostNet, IpProtocol};

    /// What a control plane sends a host agent survives JSON unchanged.
    #[test]
    fn firewalls_and_host_nets_round_trip_through_json() {
        let fw = Firewall {
            ingress: vec![
                FirewallRule {
                    protocol: IpProtocol::Tcp,
                    ports: Some((22, 22)),
                    peer: FirewallPeer::Cidr("0.0.0.0/0".parse().unwrap()),
                },
                FirewallRule {
                    protocol: "47".parse().unwrap(),
                    ports: None,
                    peer: FirewallPeer::Members(vec!["172.31.0.5".parse().unwrap()]),
                },
            ],
            egress: vec![FirewallRule {
                protocol: IpProtocol::All,
                ports: None,
                peer: FirewallPeer::Cidr("0.0.0.0/0".parse().unwrap()),
            }],
        };
        let text = serde_json::to_string(&fw).unwrap();
        assert!(text.contains(r#""protocol":"tcp""#), "{text}");
        assert_eq!(serde_json::from_str::<Firewall>(&text).unwrap(), fw);
        let net = HostNet {
            id: "vpc-1".into(),
            subnets: vec![("10.0.1.0/24".parse().unwrap(), "10.0.1.1".parse().unwrap())],
        };
        let text = serde_json::to_string(&net).unwrap();
        assert_eq!(serde_json::from_str::<HostNet>(&text).unwrap(), net);
    }
}
