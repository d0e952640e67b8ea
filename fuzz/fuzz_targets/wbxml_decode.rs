//! Any input: the decoder returns Ok or a typed error, never panics, never allocates without bound.
#![no_main]

use eas_wbxml::{Limits, decode, to_xml};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(document) = decode(data, &Limits::default()) {
        // Exercise the readers and the renderer on whatever decoded.
        let _ = document.root.text();
        let _ = to_xml(&document);
    }
});
