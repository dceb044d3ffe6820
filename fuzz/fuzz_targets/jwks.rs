//! JWKS parsing of arbitrary bytes: an error or a key set within the limit, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|document: &[u8]| {
    if let Ok((keys, skipped)) = portcullis::fuzzing::KeySet::parse(document, 100) {
        assert!(keys.len() + skipped <= 100);
    }
});
