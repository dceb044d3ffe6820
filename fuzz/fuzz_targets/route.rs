//! Path normalisation and route matching: never panics, normalisation is idempotent, and
//! a path reaches the same route as its normalised form.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use portcullis::{
    config::Config,
    fuzzing::{Policy, normalize_path},
};

const POLICY: &str = r#"
issuers: [{issuer: "https://idp/", jwks_uri: "https://idp/keys", audiences: [api]}]
routes:
  - { name: health, path: { exact: /healthz }, anonymous: true }
  - { name: item, methods: [GET], path: { template: "/api/orders/{id}" }, require: { scopes: [A] } }
  - { name: files, path: { template: "/files/**" }, require: { token: any } }
  - { name: api, hosts: ["*.example.com"], path: { prefix: /api }, require: { roles: [R] } }
"#;

fuzz_target!(|input: (&str, &str, &str)| {
    static POLICY_CELL: OnceLock<Policy> = OnceLock::new();
    let policy =
        POLICY_CELL.get_or_init(|| Policy::new(&Config::from_yaml(POLICY, "fuzz").unwrap()));
    let (method, host, path) = input;
    if let Ok(normal) = normalize_path(path) {
        assert_eq!(
            normalize_path(&normal).unwrap(),
            normal,
            "normalisation is idempotent"
        );
        let direct = policy.route(method, host, path).map(|r| r.name.clone());
        let via_normal = policy.route(method, host, &normal).map(|r| r.name.clone());
        assert_eq!(direct, via_normal);
    }
});
