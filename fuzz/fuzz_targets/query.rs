//! The EC2 Query decoder, as `gureum up` runs it on a request body: `Params::extend_from_form`,
//! then `Action`/`Version` taken and `gureum_ec2::parse` for the named action (any of them;
//! the seed corpus has a real boto3 body for each). Errors must render as well-formed XML.
#![no_main]

use gureum_ec2::{error_document, Params};
use gureum_fuzz::assert_well_formed_xml;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The server reads the query string and then the body into one `Params`; a `\n` (never
    // in a form) splits the input into the two.
    let (query, body) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (&b""[..], data),
    };
    let mut params = Params::default();
    let decoded = params
        .extend_from_form(query)
        .and_then(|()| params.extend_from_form(body));
    if let Err(e) = decoded {
        assert_well_formed_xml(&error_document(&e, "fuzz"));
        return;
    }
    let Some(action) = params.take("Action").filter(|a| !a.is_empty()) else {
        return;
    };
    params.take("Version");
    match gureum_ec2::parse(&action, params) {
        Ok(req) => assert_eq!(req.action.name(), action, "parsed into another action"),
        Err(e) => assert_well_formed_xml(&error_document(&e, "fuzz")),
    }
});
