//! DPoP proof checking from arbitrary bytes, and `htu` normalisation: never panics; a
//! proof is only ever accepted with a valid signature (which random input never has,
//! except the seed itself), and a normalised `htu` is an absolute http(s) URI.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &str| {
    let _ = portcullis::fuzzing::dpop_proof(input);
    if let Some(uri) = portcullis::fuzzing::normalize_htu(input) {
        assert!(
            uri.starts_with("http://") || uri.starts_with("https://"),
            "{uri}"
        );
        assert_eq!(
            portcullis::fuzzing::normalize_htu(&uri).as_deref(),
            Some(uri.as_str())
        );
    }
});
