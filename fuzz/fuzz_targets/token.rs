//! Token parsing up to verification: never panics; accepted tokens have three segments.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|token: &str| {
    if portcullis::fuzzing::parse_token(token, 16 * 1024).is_ok() {
        assert_eq!(token.split('.').count(), 3);
    }
});
