//! Posted forms as ordered name/value pairs: repeated names (`id=…&id=…`, one per table row
//! or per rule) keep their order, which serde-style decoding would not.

#[derive(Debug, Clone, Default)]
pub struct FormData(pub Vec<(String, String)>);

impl FormData {
    pub fn parse(body: &[u8]) -> FormData {
        FormData(
            form_urlencoded::parse(body)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The first value of `name`, trimmed, or "".
    pub fn text(&self, name: &str) -> String {
        self.get(name).unwrap_or("").trim().to_string()
    }

    /// Whether a checkbox was ticked.
    pub fn checked(&self, name: &str) -> bool {
        matches!(self.get(name), Some("on" | "1" | "true" | "yes"))
    }

    /// Every value of `name`, in order.
    pub fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_names_keep_order() {
        let f = FormData::parse(b"id=i-2&id=i-1&x=+a+b+&ok=on&name=a%26b");
        assert_eq!(f.all("id"), vec!["i-2", "i-1"]);
        assert_eq!(f.text("x"), "a b");
        assert!(f.checked("ok"));
        assert!(!f.checked("nope"));
        assert_eq!(f.get("name"), Some("a&b"));
    }
}
