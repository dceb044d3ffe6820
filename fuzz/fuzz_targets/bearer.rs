//! Bearer extraction from an arbitrary `authorization` value: never panics, and whatever
//! it accepts is a non-empty RFC 6750 b64token.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|value: &str| {
    if let Ok(token) = portcullis::fuzzing::bearer_token(Some(value)) {
        assert!(!token.is_empty());
        assert!(!token.contains([' ', ',', '\t', '\r', '\n']));
    }
});
