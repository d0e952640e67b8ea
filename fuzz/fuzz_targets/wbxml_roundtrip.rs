//! Whatever decodes re-encodes to bytes that decode to the same document (unless it holds
//! decode-only legacy tags), re-encoding is stable, and the XML rendering parses back equal.
#![no_main]

use eas_wbxml::{EncodeError, Limits, decode, encode, from_xml, to_xml};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    let Ok(document) = decode(data, &limits) else { return };
    match encode(&document) {
        Ok(bytes) => {
            let again = decode(&bytes, &limits).expect("our own encoding decodes");
            assert_eq!(again, document, "decode(encode(decode(input))) differs");
            assert_eq!(encode(&again).expect("re-encodes"), bytes, "re-encoding is not stable");
        }
        Err(EncodeError::LegacyTag { .. }) => {}
        Err(error) => panic!("a decoded document failed to encode: {error}"),
    }
    let xml = to_xml(&document);
    assert_eq!(from_xml(&xml).as_ref(), Ok(&document), "XML round trip differs:\n{xml}");
});
