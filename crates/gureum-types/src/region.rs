//! The region this cloud serves and its three availability zones (`<region>a`, `b`, `c`).

/// The region layout. AWS zone ids (`use1-az1`) are derived from the region name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Region {
    pub name: String,
    pub zones: Vec<Zone>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Zone {
    /// `us-east-1a`
    pub name: String,
    /// `use1-az1`
    pub id: String,
}

impl Region {
    /// Region names look like `us-east-1`: lower-case words and a trailing number.
    pub fn new(name: &str) -> Option<Region> {
        let parts: Vec<&str> = name.split('-').collect();
        let valid = parts.len() >= 3
            && parts.iter().all(|p| !p.is_empty())
            && parts[..parts.len() - 1]
                .iter()
                .all(|p| p.bytes().all(|b| b.is_ascii_lowercase()))
            && parts[parts.len() - 1].bytes().all(|b| b.is_ascii_digit());
        if !valid {
            return None;
        }
        // AWS's zone-id prefix: first letters of the words plus the number (us-east-1 -> use1).
        let short: String = parts[..parts.len() - 2]
            .iter()
            .map(|p| p.to_string())
            .chain(
                parts[parts.len() - 2..parts.len() - 1]
                    .iter()
                    .map(|p| p[..1].to_string()),
            )
            .collect::<String>()
            + parts[parts.len() - 1];
        let zones = ["a", "b", "c"]
            .iter()
            .enumerate()
            .map(|(i, l)| Zone {
                name: format!("{name}{l}"),
                id: format!("{short}-az{}", i + 1),
            })
            .collect();
        Some(Region {
            name: name.to_string(),
            zones,
        })
    }

    /// The public endpoint AWS would give this region (reported by `DescribeRegions`).
    pub fn endpoint(&self) -> String {
        format!("ec2.{}.amazonaws.com", self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zones_follow_aws_naming() {
        let r = Region::new("us-east-1").unwrap();
        assert_eq!(r.zones[0].name, "us-east-1a");
        assert_eq!(r.zones[0].id, "use1-az1");
        assert_eq!(r.zones[2].name, "us-east-1c");
        let r = Region::new("eu-west-2").unwrap();
        assert_eq!(r.zones[1].id, "euw2-az2");
        assert!(Region::new("mars").is_none());
        assert!(Region::new("US-east-1").is_none());
    }
}
