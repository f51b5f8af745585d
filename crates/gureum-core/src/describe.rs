//! The Describe machinery every resource reuses: `Filter.N` matching with AWS's `*` and `?`
//! wildcards (and `\` escapes), the tag filters (`tag:<key>`, `tag-key`, `tag-value`), and
//! keyset pagination whose `NextToken` names the last id returned, so a page boundary is
//! stable while other requests create and delete resources.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use gureum_ec2::Page;
use gureum_types::model::{Filter, Tag};
use gureum_types::{ApiError, ErrorCode};

/// Does `value` match `pattern`, where `*` matches any run of characters, `?` exactly one, and
/// `\*`, `\?`, `\\` match the literal character? Case-sensitive, as EC2 filters are.
pub fn wildcard_match(pattern: &str, value: &str) -> bool {
    #[derive(Clone, Copy, PartialEq)]
    enum Tok {
        Lit(char),
        One,
        Any,
    }
    let mut toks = Vec::with_capacity(pattern.len());
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        toks.push(match c {
            '\\' => Tok::Lit(chars.next().unwrap_or('\\')),
            '*' => Tok::Any,
            '?' => Tok::One,
            c => Tok::Lit(c),
        });
    }
    let v: Vec<char> = value.chars().collect();
    // Iterative matcher with single-star backtracking: linear for the patterns people write.
    let (mut p, mut i) = (0usize, 0usize);
    let (mut star, mut star_i) = (None::<usize>, 0usize);
    while i < v.len() {
        match toks.get(p) {
            Some(Tok::Lit(c)) if *c == v[i] => {
                p += 1;
                i += 1;
            }
            Some(Tok::One) => {
                p += 1;
                i += 1;
            }
            Some(Tok::Any) => {
                star = Some(p);
                star_i = i;
                p += 1;
            }
            _ => match star {
                Some(s) => {
                    p = s + 1;
                    star_i += 1;
                    i = star_i;
                }
                None => return false,
            },
        }
    }
    toks[p..].iter().all(|t| *t == Tok::Any)
}

/// What a resource exposes to filtering.
pub trait Describable {
    /// The values of a filter for this resource, or `None` if the filter name is not one this
    /// resource kind supports. Tag filters are handled by the machinery.
    fn filter_values(&self, name: &str) -> Option<Vec<String>>;
    fn tags(&self) -> &[Tag] {
        &[]
    }
}

fn invalid_filter(name: &str) -> ApiError {
    ApiError::new(
        ErrorCode::InvalidParameterValue,
        format!("The filter '{name}' is invalid"),
    )
}

/// Check that every filter name is one the resource kind knows (`known` plus, when
/// `taggable`, the tag filters), before any matching.
pub fn validate_filters(
    filters: &[Filter],
    known: &[&str],
    taggable: bool,
) -> Result<(), ApiError> {
    for f in filters {
        let tag_filter = taggable
            && (f.name == "tag-key" || f.name == "tag-value" || f.name.starts_with("tag:"));
        if !tag_filter && !known.contains(&f.name.as_str()) {
            return Err(invalid_filter(&f.name));
        }
        if f.values.is_empty() {
            return Err(ApiError::new(
                ErrorCode::InvalidParameterValue,
                format!("The filter '{}' requires at least one value", f.name),
            ));
        }
    }
    Ok(())
}

fn any_match(patterns: &[String], values: impl IntoIterator<Item = impl AsRef<str>>) -> bool {
    values
        .into_iter()
        .any(|v| patterns.iter().any(|p| wildcard_match(p, v.as_ref())))
}

/// Does the item pass every filter (AND across filters, OR across a filter's values)?
pub fn matches<T: Describable>(item: &T, filters: &[Filter]) -> bool {
    filters.iter().all(|f| {
        if let Some(key) = f.name.strip_prefix("tag:") {
            any_match(
                &f.values,
                item.tags()
                    .iter()
                    .filter(|t| t.key == key)
                    .map(|t| &t.value),
            )
        } else if f.name == "tag-key" {
            any_match(&f.values, item.tags().iter().map(|t| &t.key))
        } else if f.name == "tag-value" {
            any_match(&f.values, item.tags().iter().map(|t| &t.value))
        } else {
            item.filter_values(&f.name)
                .is_some_and(|vals| any_match(&f.values, vals))
        }
    })
}

/// Keep the items that pass the filters (validated first).
pub fn filter<T: Describable>(
    items: Vec<T>,
    filters: &[Filter],
    known: &[&str],
    taggable: bool,
) -> Result<Vec<T>, ApiError> {
    validate_filters(filters, known, taggable)?;
    Ok(items.into_iter().filter(|i| matches(i, filters)).collect())
}

fn invalid_token() -> ApiError {
    ApiError::new(
        ErrorCode::InvalidPaginationToken,
        "The pagination token is invalid",
    )
}

/// Cut one page from `items`, which must be sorted by `key` ascending and unique in it.
/// The page starts strictly after the token's key, so concurrent inserts and deletes never
/// make a page repeat or skip an item that existed throughout.
pub fn paginate<T>(
    items: Vec<T>,
    key: impl Fn(&T) -> String,
    page: &Page,
) -> Result<(Vec<T>, Option<String>), ApiError> {
    let after = match &page.next_token {
        None => None,
        Some(tok) => {
            let raw = URL_SAFE_NO_PAD.decode(tok).map_err(|_| invalid_token())?;
            let s = String::from_utf8(raw).map_err(|_| invalid_token())?;
            Some(s.strip_prefix("v1:").ok_or_else(invalid_token)?.to_string())
        }
    };
    let mut it: Vec<T> = match &after {
        None => items,
        Some(a) => items
            .into_iter()
            .filter(|i| key(i).as_str() > a.as_str())
            .collect(),
    };
    let Some(max) = page.max_results.map(|m| m as usize) else {
        return Ok((it, None));
    };
    if it.len() <= max {
        return Ok((it, None));
    }
    it.truncate(max);
    let last = key(it.last().expect("max >= 1"));
    Ok((it, Some(URL_SAFE_NO_PAD.encode(format!("v1:{last}")))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        assert!(wildcard_match("*", ""));
        assert!(wildcard_match("a*", "abc"));
        assert!(wildcard_match("*c", "abc"));
        assert!(wildcard_match("a?c", "abc"));
        assert!(!wildcard_match("a?c", "ac"));
        assert!(wildcard_match("a*b*c", "aXbYbZc"));
        assert!(!wildcard_match("a*b*c", "aXbYbZ"));
        assert!(wildcard_match("t2.*", "t2.micro"));
        assert!(!wildcard_match("t2.*", "t3.micro"));
        assert!(wildcard_match("a\\*", "a*"));
        assert!(!wildcard_match("a\\*", "ab"));
        assert!(!wildcard_match("ABC", "abc"), "case-sensitive");
        assert!(wildcard_match("??", "한국"));
    }

    #[derive(Debug)]
    struct Item {
        id: String,
        tags: Vec<Tag>,
    }
    impl Describable for Item {
        fn filter_values(&self, name: &str) -> Option<Vec<String>> {
            (name == "id").then(|| vec![self.id.clone()])
        }
        fn tags(&self) -> &[Tag] {
            &self.tags
        }
    }

    fn item(id: &str, tags: &[(&str, &str)]) -> Item {
        Item {
            id: id.into(),
            tags: tags
                .iter()
                .map(|(k, v)| Tag {
                    key: k.to_string(),
                    value: v.to_string(),
                })
                .collect(),
        }
    }

    fn f(name: &str, values: &[&str]) -> Filter {
        Filter {
            name: name.into(),
            values: values.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn filters_and_or_and_tags() {
        let items = vec![
            item("a1", &[("env", "prod")]),
            item("a2", &[("env", "dev")]),
            item("b1", &[("team", "x")]),
        ];
        let ids = |fs: &[Filter]| -> Vec<String> {
            let kept: Vec<&Item> = items.iter().filter(|i| matches(*i, fs)).collect();
            kept.into_iter().map(|i| i.id.clone()).collect()
        };
        assert_eq!(ids(&[f("id", &["a*"])]), vec!["a1", "a2"]);
        assert_eq!(
            ids(&[f("id", &["a*"]), f("tag:env", &["prod"])]),
            vec!["a1"]
        );
        assert_eq!(ids(&[f("id", &["a1", "b1"])]), vec!["a1", "b1"]);
        assert_eq!(ids(&[f("tag-key", &["team"])]), vec!["b1"]);
        assert_eq!(ids(&[f("tag-value", &["d*"])]), vec!["a2"]);
        let e = filter(items, &[f("bogus", &["x"])], &["id"], true).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidParameterValue);
        assert_eq!(e.message, "The filter 'bogus' is invalid");
    }

    #[test]
    fn pagination_is_keyset_and_stable() {
        let all: Vec<String> = (0..10).map(|i| format!("k{i:02}")).collect();
        let page = |tok: Option<String>, items: Vec<String>| {
            paginate(
                items,
                |s| s.clone(),
                &Page {
                    max_results: Some(4),
                    next_token: tok,
                },
            )
            .unwrap()
        };
        let (p1, t1) = page(None, all.clone());
        assert_eq!(p1, ["k00", "k01", "k02", "k03"]);
        // A concurrent delete of an already-returned item and an insert before the cursor
        // do not shift the next page.
        let mut changed: Vec<String> = all.iter().filter(|s| *s != "k01").cloned().collect();
        changed.insert(0, "j99".into());
        let (p2, t2) = page(t1, changed.clone());
        assert_eq!(p2, ["k04", "k05", "k06", "k07"]);
        let (p3, t3) = page(t2, changed);
        assert_eq!(p3, ["k08", "k09"]);
        assert!(t3.is_none());
        let e = paginate(
            all,
            |s| s.clone(),
            &Page {
                max_results: Some(4),
                next_token: Some("garbage!".into()),
            },
        )
        .unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidPaginationToken);
    }
}
