//! Token parsing up to verification: never panics; accepted tokens have three segments,
//! and the claims read are the payload's JSON object, member for member.
#![no_main]

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|token: &str| {
    if let Ok(parsed) = portcullis::fuzzing::parse_token(token, 16 * 1024) {
        let segments: Vec<&str> = token.split('.').collect();
        assert_eq!(segments.len(), 3);
        let payload = URL_SAFE_NO_PAD.decode(segments[1]).expect("a payload read is base64url");
        let object: serde_json::Value =
            serde_json::from_slice(&payload).expect("a payload read is JSON");
        assert_eq!(serde_json::to_value(&parsed.claims).expect("claims serialize"), object);
    }
});
