//! Any text: `from_xml` returns Ok or a typed error; what parses renders and parses back equal,
//! and encodes (when it has no legacy tag and no NUL in text) to WBXML that decodes equal.
#![no_main]

use eas_wbxml::{Limits, decode, encode, from_xml, to_xml};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(document) = from_xml(text) else { return };
    let xml = to_xml(&document);
    assert_eq!(from_xml(&xml).as_ref(), Ok(&document), "XML round trip differs:\n{xml}");
    if let Ok(bytes) = encode(&document) {
        assert_eq!(
            decode(&bytes, &Limits::default()).as_ref(),
            Ok(&document),
            "WBXML round trip differs"
        );
    }
});
