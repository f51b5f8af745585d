//! A small XML writer for EC2 responses: elements appended to one `String`, text escaped in
//! one pass. EC2's responses are shallow and written once, so a streaming writer over a
//! string beats building a tree.
//!
//! Text comes from clients (names, tag values, and the parameters quoted in error messages),
//! and XML 1.0 cannot carry every character even escaped: a NUL or other C0 control in a
//! response makes every client's parser reject the whole document. Such characters are
//! written as U+FFFD; a carriage return as `&#13;`, which parsers would otherwise turn into
//! a line feed.

/// Append `text` to `out` escaped for element content, with what XML cannot carry replaced
/// (see above). One pass over the bytes: in a `str` the only characters outside XML 1.0's
/// `Char` production are the C0 controls other than tab, line feed and carriage return, and
/// U+FFFE and U+FFFF (UTF-8 `EF BF BE`/`EF BF BF`; surrogates cannot occur). Runs of plain
/// text are copied whole, so a value with nothing to escape costs one scan and one copy.
fn escape_into(out: &mut String, text: &str) {
    let bytes = text.as_bytes();
    let mut plain = 0; // start of the run not yet copied
    let mut i = 0;
    // The scan for the next byte that may need work is a table lookup per byte, which the
    // compiler keeps tight; the rare bytes it stops at are sorted out below.
    while let Some(n) = bytes[i..].iter().position(|&b| SPECIAL[b as usize]) {
        i += n;
        let (replacement, len): (&str, usize) = match bytes[i] {
            b'<' => ("&lt;", 1),
            b'>' => ("&gt;", 1),
            b'&' => ("&amp;", 1),
            b'"' => ("&quot;", 1),
            b'\'' => ("&apos;", 1),
            b'\r' => ("&#13;", 1),
            0xEF if bytes.get(i + 1) == Some(&0xBF)
                && matches!(bytes.get(i + 2), Some(0xBE | 0xBF)) =>
            {
                ("\u{FFFD}", 3)
            }
            // Another character beginning with 0xEF: kept.
            0xEF => {
                i += 1;
                continue;
            }
            // The C0 controls XML cannot carry (the table leaves out tab and line feed).
            _ => ("\u{FFFD}", 1),
        };
        // `plain..i` ends before an ASCII byte or the lead byte of a whole character, so both
        // ends are character boundaries.
        out.push_str(&text[plain..i]);
        out.push_str(replacement);
        i += len;
        plain = i;
    }
    out.push_str(&text[plain..]);
}

/// The bytes `escape_into` must look at: markup characters, carriage return, the C0 controls
/// other than tab and line feed, and 0xEF (the lead byte of U+FFFE and U+FFFF).
static SPECIAL: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 0x20 {
        t[b] = b != b'\t' as usize && b != b'\n' as usize;
        b += 1;
    }
    t[b'<' as usize] = true;
    t[b'>' as usize] = true;
    t[b'&' as usize] = true;
    t[b'"' as usize] = true;
    t[b'\'' as usize] = true;
    t[0xEF] = true;
    t
};

/// The namespace every EC2 response carries.
pub const EC2_NS: &str = "http://ec2.amazonaws.com/doc/2016-11-15/";

pub struct Xml {
    buf: String,
}

impl Xml {
    /// Start `<{root} xmlns="{ns}">` with the XML declaration.
    pub fn document(root: &str, ns: &str) -> Xml {
        let mut buf = String::with_capacity(1024);
        buf.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<");
        buf.push_str(root);
        buf.push_str(" xmlns=\"");
        buf.push_str(ns);
        buf.push_str("\">");
        Xml { buf }
    }

    /// A bare element tree with no declaration (for error envelopes' inner use and tests).
    pub fn fragment() -> Xml {
        Xml { buf: String::new() }
    }

    pub fn open(&mut self, tag: &str) -> &mut Self {
        self.buf.push('<');
        self.buf.push_str(tag);
        self.buf.push('>');
        self
    }

    pub fn close(&mut self, tag: &str) -> &mut Self {
        self.buf.push_str("</");
        self.buf.push_str(tag);
        self.buf.push('>');
        self
    }

    /// `<tag>text</tag>`, text escaped.
    pub fn leaf(&mut self, tag: &str, text: &str) -> &mut Self {
        self.open(tag);
        escape_into(&mut self.buf, text);
        self.close(tag)
    }

    pub fn leaf_display(&mut self, tag: &str, v: impl std::fmt::Display) -> &mut Self {
        self.leaf(tag, &v.to_string())
    }

    pub fn leaf_opt(&mut self, tag: &str, text: Option<&str>) -> &mut Self {
        if let Some(t) = text {
            self.leaf(tag, t);
        }
        self
    }

    pub fn bool(&mut self, tag: &str, v: bool) -> &mut Self {
        self.leaf(tag, if v { "true" } else { "false" })
    }

    /// `<tag><item>…</item>…</tag>` with each item written by `f`.
    pub fn set<T>(&mut self, tag: &str, items: &[T], mut f: impl FnMut(&mut Xml, &T)) -> &mut Self {
        self.open(tag);
        for it in items {
            self.open("item");
            f(self, it);
            self.close("item");
        }
        self.close(tag)
    }

    /// `<tag><item>v</item>…</tag>` for scalar lists.
    pub fn values<T: std::fmt::Display>(&mut self, tag: &str, items: &[T]) -> &mut Self {
        self.set(tag, items, |x, v| {
            escape_into(&mut x.buf, &v.to_string());
        })
    }

    /// Finish the document by closing its root.
    pub fn finish(mut self, root: &str) -> String {
        self.close(root);
        self.buf
    }

    pub fn into_string(self) -> String {
        self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_text() {
        let mut x = Xml::document("R", EC2_NS);
        x.leaf("a", "<&>\"'");
        x.values("s", &["1", "2"]);
        assert_eq!(
            x.finish("R"),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<R xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\">\
             <a>&lt;&amp;&gt;&quot;&apos;</a><s><item>1</item><item>2</item></s></R>"
        );
    }

    #[test]
    fn characters_near_the_replaced_ones_are_kept() {
        let mut x = Xml::fragment();
        // U+FFFD, U+FFEF, U+FFFE, U+EFBF, U+FFFF at the very end, then a 4-byte character.
        x.leaf("a", "\u{FFFD}\u{FFEF}\u{FFFE}\u{EFBF}x\u{FFFF}");
        x.leaf("b", "\u{1F600}'");
        x.leaf("c", "");
        assert_eq!(
            x.into_string(),
            "<a>\u{FFFD}\u{FFEF}\u{FFFD}\u{EFBF}x\u{FFFD}</a><b>\u{1F600}&apos;</b><c></c>"
        );
    }

    /// Found by fuzz/query: a NUL from a parameter name reached an error message verbatim.
    #[test]
    fn characters_xml_cannot_carry_are_replaced() {
        let mut x = Xml::fragment();
        x.leaf("a", "n\0u\u{1}l\u{1b}&\r\n\t\u{FFFE}\u{FFFF}한");
        x.values("s", &["\u{8}"]);
        assert_eq!(
            x.into_string(),
            "<a>n\u{FFFD}u\u{FFFD}l\u{FFFD}&amp;&#13;\n\t\u{FFFD}\u{FFFD}한</a>\
             <s><item>\u{FFFD}</item></s>"
        );
    }
}
