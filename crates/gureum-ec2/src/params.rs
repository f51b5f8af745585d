//! Decoding of an EC2 Query request into [`Params`]: the form's `name=value` pairs, strictly
//! percent-decoded as UTF-8, and the typed accessors action parsers use to take them one by
//! one. Whatever an action does not take is an `UnknownParameter`, as AWS answers.

use std::collections::BTreeMap;

use gureum_types::model::{Filter, Tag, TagSpecification};
use gureum_types::{ApiError, ErrorCode};
use percent_encoding::percent_decode;

/// The largest request body or query string gureum accepts. AWS caps EC2 requests well below
/// this (user data is at most 16 KiB base64), so nothing legitimate is refused.
pub const MAX_REQUEST_BYTES: usize = 1 << 20;

/// Parameters of one request, keyed by their full name (`Filter.1.Value.2`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params {
    map: BTreeMap<String, String>,
}

fn malformed(why: &str) -> ApiError {
    ApiError::new(
        ErrorCode::InvalidParameter,
        format!("malformed query string: {why}"),
    )
}

fn decode_component(raw: &[u8]) -> Result<String, ApiError> {
    // `+` means space in application/x-www-form-urlencoded; decode it before the %-escapes.
    let plus: Vec<u8> = raw
        .iter()
        .map(|&b| if b == b'+' { b' ' } else { b })
        .collect();
    let bytes: Vec<u8> = percent_decode(&plus).collect();
    String::from_utf8(bytes).map_err(|_| {
        ApiError::new(
            ErrorCode::InvalidCharacter,
            "The request contains an invalid character (invalid UTF-8)",
        )
    })
}

impl Params {
    /// Add the pairs of a form-encoded string (a query string or a POST body).
    /// Names that are AWS's signature parameters (`X-Amz-*`) are skipped: they are the
    /// authentication layer's business, not the action's.
    pub fn extend_from_form(&mut self, raw: &[u8]) -> Result<(), ApiError> {
        if raw.len() > MAX_REQUEST_BYTES {
            return Err(ApiError::new(
                ErrorCode::RequestEntityTooLarge,
                "Request entity too large",
            ));
        }
        for pair in raw.split(|&b| b == b'&') {
            if pair.is_empty() {
                continue;
            }
            let (k, v) = match pair.iter().position(|&b| b == b'=') {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, &b""[..]),
            };
            let key = decode_component(k)?;
            if key.is_empty() {
                return Err(malformed("empty parameter name"));
            }
            if key.starts_with("X-Amz-") {
                continue;
            }
            let value = decode_component(v)?;
            self.map.insert(key, value);
        }
        Ok(())
    }

    pub fn from_form(raw: &[u8]) -> Result<Params, ApiError> {
        let mut p = Params::default();
        p.extend_from_form(raw)?;
        Ok(p)
    }

    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Params {
        Params {
            map: pairs
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    /// Every parameter not yet taken, in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.map.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Take a scalar parameter.
    pub fn take(&mut self, name: &str) -> Option<String> {
        self.map.remove(name)
    }

    pub fn required(&mut self, name: &str) -> Result<String, ApiError> {
        match self.take(name) {
            Some(v) if !v.is_empty() => Ok(v),
            _ => Err(ApiError::missing_parameter(name)),
        }
    }

    /// A boolean, as AWS accepts it: `true` or `false`, any case.
    pub fn take_bool(&mut self, name: &str) -> Result<Option<bool>, ApiError> {
        match self.take(name) {
            None => Ok(None),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(Some(true)),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(Some(false)),
            Some(v) => Err(ApiError::invalid_value(name, &v, "Expected a boolean.")),
        }
    }

    pub fn take_i64(&mut self, name: &str) -> Result<Option<i64>, ApiError> {
        match self.take(name) {
            None => Ok(None),
            Some(v) => v
                .parse()
                .map(Some)
                .map_err(|_| ApiError::invalid_value(name, &v, "Expected an integer.")),
        }
    }

    /// `DryRun`, present on every mutating and describing action.
    pub fn take_dry_run(&mut self) -> Result<bool, ApiError> {
        Ok(self.take_bool("DryRun")?.unwrap_or(false))
    }

    /// The indices used under `prefix.` (`Filter.1.Name`, `Filter.3.Value.1` -> [1, 3]),
    /// in numeric order. A non-numeric or zero index is malformed.
    fn indices(&self, prefix: &str) -> Result<Vec<u32>, ApiError> {
        let dotted = format!("{prefix}.");
        let mut out = Vec::new();
        for key in self.map.range(dotted.clone()..) {
            let Some(rest) = key.0.strip_prefix(&dotted) else {
                break;
            };
            let idx = rest.split('.').next().unwrap_or("");
            let n: u32 = idx
                .parse()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| ApiError::unknown_parameter(key.0))?;
            out.push(n);
        }
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }

    /// A list of scalars: `prefix.1`, `prefix.2`, … in index order.
    pub fn take_list(&mut self, prefix: &str) -> Result<Vec<String>, ApiError> {
        let mut out = Vec::new();
        for n in self.indices(prefix)? {
            let key = format!("{prefix}.{n}");
            match self.map.remove(&key) {
                Some(v) => out.push(v),
                // `prefix.1.Something` where a scalar list was expected.
                None => return Err(self.first_unknown_under(&key)),
            }
        }
        Ok(out)
    }

    /// A list of structures: for each index, the sub-parameters under `prefix.N.` as their own
    /// [`Params`], to be taken by the caller and finished.
    pub fn take_struct_list(&mut self, prefix: &str) -> Result<Vec<Params>, ApiError> {
        let mut out = Vec::new();
        for n in self.indices(prefix)? {
            let sub = self.take_struct(&format!("{prefix}.{n}"));
            if sub.map.is_empty() {
                return Err(ApiError::unknown_parameter(&format!("{prefix}.{n}")));
            }
            out.push(sub);
        }
        Ok(out)
    }

    /// One structure: the sub-parameters under `prefix.` as their own [`Params`] (empty when
    /// there are none).
    pub fn take_struct(&mut self, prefix: &str) -> Params {
        let head = format!("{prefix}.");
        let keys: Vec<String> = self
            .map
            .range(head.clone()..)
            .take_while(|(k, _)| k.starts_with(&head))
            .map(|(k, _)| k.clone())
            .collect();
        let mut sub = Params::default();
        for k in keys {
            let v = self.map.remove(&k).unwrap_or_default();
            sub.map.insert(k[head.len()..].to_string(), v);
        }
        sub
    }

    fn first_unknown_under(&self, prefix: &str) -> ApiError {
        let name = self
            .map
            .range(prefix.to_string()..)
            .next()
            .map(|(k, _)| k.as_str())
            .unwrap_or(prefix);
        ApiError::unknown_parameter(name)
    }

    /// `Filter.N.Name` / `Filter.N.Value.M`.
    pub fn take_filters(&mut self) -> Result<Vec<Filter>, ApiError> {
        self.take_struct_list("Filter")?
            .into_iter()
            .map(|mut f| {
                let name = f.take("Name").unwrap_or_default();
                let values = f.take_list("Value")?;
                f.finish_as("Filter")?;
                Ok(Filter { name, values })
            })
            .collect()
    }

    /// `prefix.N.Key` / `prefix.N.Value` (the `Tag.N` lists of CreateTags and friends).
    pub fn take_tags(&mut self, prefix: &str) -> Result<Vec<Tag>, ApiError> {
        self.take_struct_list(prefix)?
            .into_iter()
            .map(|mut t| {
                let key = t.take("Key").unwrap_or_default();
                let value = t.take("Value").unwrap_or_default();
                t.finish_as(prefix)?;
                Ok(Tag { key, value })
            })
            .collect()
    }

    /// `TagSpecification.N.ResourceType` / `TagSpecification.N.Tag.M.Key|Value`.
    pub fn take_tag_specifications(&mut self) -> Result<Vec<TagSpecification>, ApiError> {
        self.take_struct_list("TagSpecification")?
            .into_iter()
            .map(|mut s| {
                let resource_type = s.take("ResourceType").unwrap_or_default();
                let tags = s.take_tags("Tag")?;
                s.finish_as("TagSpecification")?;
                Ok(TagSpecification {
                    resource_type,
                    tags,
                })
            })
            .collect()
    }

    /// Every parameter must have been taken: the first one left is `UnknownParameter`.
    pub fn finish(self) -> Result<(), ApiError> {
        match self.map.into_keys().next() {
            None => Ok(()),
            Some(k) => Err(ApiError::unknown_parameter(&k)),
        }
    }

    fn finish_as(self, parent: &str) -> Result<(), ApiError> {
        match self.map.into_keys().next() {
            None => Ok(()),
            Some(k) => Err(ApiError::unknown_parameter(&format!("{parent}.{k}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_forms_strictly() {
        let p = Params::from_form(b"Action=DescribeKeyPairs&KeyName.1=a+b&KeyName.2=%E2%9C%93")
            .unwrap();
        assert_eq!(p.map["KeyName.1"], "a b");
        assert_eq!(p.map["KeyName.2"], "\u{2713}");
        let e = Params::from_form(b"KeyName.1=%FF").unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidCharacter);
        let e = Params::from_form(b"=x").unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidParameter);
    }

    #[test]
    fn skips_signature_parameters() {
        let p = Params::from_form(b"Action=X&X-Amz-Signature=abc&X-Amz-Date=1").unwrap();
        assert_eq!(p.map.len(), 1);
    }

    #[test]
    fn lists_are_taken_in_numeric_order() {
        let mut p =
            Params::from_pairs([("KeyName.10", "c"), ("KeyName.2", "b"), ("KeyName.1", "a")]);
        assert_eq!(p.take_list("KeyName").unwrap(), vec!["a", "b", "c"]);
        assert!(p.is_empty());
    }

    #[test]
    fn filters_and_tag_specifications() {
        let mut p = Params::from_pairs([
            ("Filter.1.Name", "key-name"),
            ("Filter.1.Value.1", "a*"),
            ("Filter.1.Value.2", "b"),
            ("Filter.2.Name", "tag:env"),
            ("Filter.2.Value.1", "prod"),
            ("TagSpecification.1.ResourceType", "key-pair"),
            ("TagSpecification.1.Tag.1.Key", "Name"),
            ("TagSpecification.1.Tag.1.Value", "demo"),
        ]);
        let f = p.take_filters().unwrap();
        assert_eq!(f.len(), 2);
        assert_eq!(f[0].values, vec!["a*", "b"]);
        assert_eq!(f[1].name, "tag:env");
        let s = p.take_tag_specifications().unwrap();
        assert_eq!(s[0].resource_type, "key-pair");
        assert_eq!(s[0].tags[0].value, "demo");
        p.finish().unwrap();
    }

    #[test]
    fn leftovers_are_unknown_parameters() {
        let mut p = Params::from_pairs([("Filter.1.Name", "x"), ("Filter.1.Bogus", "y")]);
        let e = p.take_filters().unwrap_err();
        assert_eq!(e.code, ErrorCode::UnknownParameter);
        assert!(e.message.contains("Filter.Bogus"), "{}", e.message);
        let p = Params::from_pairs([("Nope", "1")]);
        assert_eq!(
            p.finish().unwrap_err().message,
            "The parameter Nope is not recognized"
        );
        let mut p = Params::from_pairs([("KeyName.x", "1")]);
        assert_eq!(
            p.take_list("KeyName").unwrap_err().code,
            ErrorCode::UnknownParameter
        );
        let mut p = Params::from_pairs([("KeyName.1.Sub", "1")]);
        assert_eq!(
            p.take_list("KeyName").unwrap_err().code,
            ErrorCode::UnknownParameter
        );
    }

    #[test]
    fn booleans_and_integers() {
        let mut p = Params::from_pairs([("DryRun", "TRUE"), ("MaxResults", "x"), ("B", "yes")]);
        assert!(p.take_dry_run().unwrap());
        assert_eq!(
            p.take_i64("MaxResults").unwrap_err().code,
            ErrorCode::InvalidParameterValue
        );
        assert_eq!(
            p.take_bool("B").unwrap_err().code,
            ErrorCode::InvalidParameterValue
        );
    }
}
