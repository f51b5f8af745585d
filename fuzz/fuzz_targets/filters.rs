//! Describe filters and pagination: `Filter.N.Name`/`Filter.N.Value.M`, `MaxResults` and
//! `NextToken` decoded as `DescribeInstances` takes them, then `describe::filter` and
//! `describe::paginate` over a fixed set of resources. Beyond not panicking: the wildcard
//! matcher must agree with a plain dynamic-programming matcher, the kept items must be
//! exactly those a direct reading of AWS's rules keeps, and a page must be a sorted run after
//! the token's key, no longer than asked, whose own token names its last item.
#![no_main]

// gureum-core's describe module itself, compiled in here rather than through the crate: the
// crate drags SQLite, RSA and tokio into an instrumented build for one pure module, which
// would take most of CI's fuzzing budget to compile.
#[path = "../../crates/gureum-core/src/describe.rs"]
#[allow(dead_code)]
mod describe;

use describe::{filter, paginate, wildcard_match, Describable};
use gureum_ec2::ops::instances::Action;
use gureum_ec2::Params;
use gureum_types::model::{Filter, Tag};
use gureum_types::ErrorCode;
use libfuzzer_sys::fuzz_target;

const KNOWN: &[&str] = &[
    "instance-id",
    "instance-type",
    "instance-state-name",
    "ip-address",
];

#[derive(Debug, Clone, PartialEq)]
struct Item {
    id: &'static str,
    kind: &'static str,
    state: &'static str,
    ip: Option<&'static str>,
    tags: Vec<Tag>,
}

impl Describable for Item {
    fn filter_values(&self, name: &str) -> Option<Vec<String>> {
        match name {
            "instance-id" => Some(vec![self.id.into()]),
            "instance-type" => Some(vec![self.kind.into()]),
            "instance-state-name" => Some(vec![self.state.into()]),
            "ip-address" => Some(self.ip.iter().map(|s| s.to_string()).collect()),
            _ => None,
        }
    }
    fn tags(&self) -> &[Tag] {
        &self.tags
    }
}

fn item(
    id: &'static str,
    kind: &'static str,
    state: &'static str,
    ip: Option<&'static str>,
    tags: &[(&str, &str)],
) -> Item {
    let tags = tags
        .iter()
        .map(|(k, v)| Tag {
            key: k.to_string(),
            value: v.to_string(),
        })
        .collect();
    Item {
        id,
        kind,
        state,
        ip,
        tags,
    }
}

/// Sorted by id, as the store returns them; tags with wildcard characters, a backslash, an
/// empty key or value, Hangul and a trailing space.
fn items() -> Vec<Item> {
    vec![
        item(
            "i-0000000000000000a",
            "t2.micro",
            "running",
            Some("172.31.0.10"),
            &[("Name", "web-1"), ("env", "prod")],
        ),
        item(
            "i-0000000000000000b",
            "t3.small",
            "stopped",
            None,
            &[("Name", "web-2"), ("env", "")],
        ),
        item(
            "i-0000000000000000c",
            "m5.large",
            "pending",
            Some("172.31.16.4"),
            &[("Name", "db*primary"), ("팀", "한국")],
        ),
        item("i-0000000000000000d", "t2.micro", "terminated", None, &[]),
        item(
            "i-0000000000000000e",
            "c5.xlarge",
            "running",
            Some("10.0.0.5"),
            &[("Name", "a?b\\c"), ("", "empty-key")],
        ),
        item(
            "i-0000000000000000f",
            "t2.nano",
            "shutting-down",
            None,
            &[("Name", "")],
        ),
        item(
            "i-00000000000000010",
            "t4g.micro",
            "running",
            Some("172.31.32.1"),
            &[("env", "dev"), ("env2", "prod")],
        ),
        item(
            "i-00000000000000011",
            "t2.micro",
            "stopping",
            None,
            &[("Name", "web-3 ")],
        ),
    ]
}

/// `*` any run, `?` one character, `\x` the literal `x` (a trailing `\` is itself), by
/// dynamic programming over (pattern token, value position).
fn reference_match(pattern: &str, value: &str) -> bool {
    enum T {
        Lit(char),
        One,
        Any,
    }
    let mut toks = Vec::new();
    let mut it = pattern.chars();
    while let Some(c) = it.next() {
        toks.push(match c {
            '\\' => T::Lit(it.next().unwrap_or('\\')),
            '*' => T::Any,
            '?' => T::One,
            c => T::Lit(c),
        });
    }
    let v: Vec<char> = value.chars().collect();
    // ok[j]: the tokens so far match v[..j].
    let mut ok = vec![false; v.len() + 1];
    ok[0] = true;
    for t in &toks {
        let mut next = vec![false; v.len() + 1];
        for j in 0..=v.len() {
            next[j] = match t {
                T::Any => ok[j] || (j > 0 && next[j - 1]),
                T::One => j > 0 && ok[j - 1],
                T::Lit(c) => j > 0 && ok[j - 1] && v[j - 1] == *c,
            };
        }
        ok = next;
    }
    ok[v.len()]
}

fn reference_keeps(item: &Item, filters: &[Filter]) -> bool {
    let hit = |vals: Vec<String>, f: &Filter| {
        vals.iter()
            .any(|v| f.values.iter().any(|p| reference_match(p, v)))
    };
    filters.iter().all(|f| {
        let tags = &item.tags;
        if let Some(key) = f.name.strip_prefix("tag:") {
            hit(
                tags.iter()
                    .filter(|t| t.key == key)
                    .map(|t| t.value.clone())
                    .collect(),
                f,
            )
        } else if f.name == "tag-key" {
            hit(tags.iter().map(|t| t.key.clone()).collect(), f)
        } else if f.name == "tag-value" {
            hit(tags.iter().map(|t| t.value.clone()).collect(), f)
        } else {
            hit(item.filter_values(&f.name).unwrap_or_default(), f)
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(params) = Params::from_form(data) else {
        return;
    };
    let Ok(req) = gureum_ec2::parse("DescribeInstances", params) else {
        return;
    };
    let (filters, page) = match Action::try_from(req.action) {
        Ok(Action::DescribeInstances { filters, page, .. }) => (filters, page),
        other => panic!("DescribeInstances parsed into {other:?}"),
    };

    // The matcher against the reference, on every pattern against every value in play.
    let all = items();
    let mut values: Vec<String> = filters.iter().flat_map(|f| f.values.clone()).collect();
    for i in &all {
        for name in KNOWN {
            values.extend(i.filter_values(name).unwrap_or_default());
        }
        values.extend(i.tags.iter().flat_map(|t| [t.key.clone(), t.value.clone()]));
    }
    for f in &filters {
        for p in &f.values {
            for v in &values {
                assert_eq!(
                    wildcard_match(p, v),
                    reference_match(p, v),
                    "pattern {p:?} against {v:?}"
                );
            }
        }
    }

    let kept = match filter(all.clone(), &filters, KNOWN, true) {
        Ok(kept) => kept,
        Err(e) => {
            assert_eq!(e.code, ErrorCode::InvalidParameterValue, "{e:?}");
            return;
        }
    };
    let expected: Vec<Item> = all
        .into_iter()
        .filter(|i| reference_keeps(i, &filters))
        .collect();
    assert_eq!(kept, expected, "filters {filters:?}");

    match paginate(kept.clone(), |i| i.id.to_string(), &page) {
        Ok((got, token)) => {
            if let Some(max) = page.max_results {
                assert!(got.len() <= max as usize);
            }
            assert!(
                got.windows(2).all(|w| w[0].id < w[1].id),
                "page out of order"
            );
            // A contiguous run of the kept items.
            let start = kept
                .iter()
                .position(|i| Some(i) == got.first())
                .unwrap_or(kept.len());
            assert_eq!(&kept[start..start + got.len()], &got[..]);
            if let Some(t) = token {
                let last = got.last().expect("a token follows a non-empty page");
                let next = gureum_ec2::Page {
                    max_results: page.max_results,
                    next_token: Some(t),
                };
                let (rest, _) = paginate(kept.clone(), |i| i.id.to_string(), &next)
                    .expect("a token paginate made is valid");
                assert!(rest.iter().all(|i| i.id > last.id));
                assert_eq!(rest.first(), kept.get(start + got.len()));
            }
        }
        Err(e) => assert_eq!(e.code, ErrorCode::InvalidPaginationToken, "{e:?}"),
    }
});
