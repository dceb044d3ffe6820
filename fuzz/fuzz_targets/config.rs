//! Config parsing and validation of arbitrary YAML: an error or a config, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let _ = portcullis::config::Config::from_yaml(text, "fuzz");
});
