//! Credential extraction from an arbitrary `authorization` value: never panics, and
//! whatever it accepts (`Bearer` or `DPoP`) is a non-empty RFC 6750 b64token.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|value: &str| {
    if let Ok(credential) = portcullis::fuzzing::credential(Some(value)) {
        let token = credential.token;
        assert!(!token.is_empty());
        assert!(!token.contains([' ', ',', '\t', '\r', '\n']));
    }
});
