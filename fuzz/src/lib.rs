//! Checks shared by the fuzz targets: what every document gureum sends a client must be.

use quick_xml::events::Event;
use quick_xml::Reader;

/// XML 1.0's `Char` production: what may appear in a document at all, escaped or not.
fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// Panic unless `doc` is a well-formed XML document a client's parser accepts: only XML
/// characters, balanced elements, and text whose escapes resolve.
pub fn assert_well_formed_xml(doc: &str) {
    if let Some(c) = doc.chars().find(|c| !is_xml_char(*c)) {
        panic!("character {c:?} is not allowed in XML: {doc:?}");
    }
    let mut reader = Reader::from_str(doc);
    let mut depth = 0usize;
    loop {
        match reader.read_event() {
            Ok(Event::Start(_)) => depth += 1,
            Ok(Event::End(_)) => depth -= 1,
            Ok(Event::Text(t)) => {
                if let Err(e) = t.unescape() {
                    panic!("bad text escape ({e}) in {doc:?}");
                }
            }
            Ok(Event::Eof) => break,
            Ok(_) => {}
            Err(e) => panic!("not well-formed XML ({e}): {doc:?}"),
        }
    }
    assert_eq!(depth, 0, "unbalanced XML: {doc:?}");
}
