use crate::{
    config::{Access, ClaimSource, Config, ConfigError, PathMatch, RequestBody},
    upstream::{Framework, Frameworks},
};

const MINIMAL: &str = r#"
issuers:
  - issuer: https://idp.example.com/
    jwks_uri: https://idp.example.com/jwks.json
    audiences: [api://orders]
routes:
  - name: orders
    path: { prefix: /api/orders }
    require_any:
      - scopes: [Orders.Read]
      - roles: [Orders.Read.All]
  - name: health
    methods: [get]
    path: { exact: /healthz }
    anonymous: true
"#;

fn problems(yaml: &str) -> Vec<String> {
    match Config::from_yaml(yaml, "test.yaml") {
        Err(ConfigError::Invalid { problems, .. }) => {
            problems.iter().map(ToString::to_string).collect()
        }
        Err(other) => vec![other.to_string()],
        Ok(_) => Vec::new(),
    }
}

#[test]
fn minimal_config_gets_documented_defaults() {
    let config = Config::from_yaml(MINIMAL, "test.yaml").unwrap();
    assert_eq!(config.grpc_listen.port(), 9001);
    assert_eq!(config.realm, "portcullis");
    assert_eq!(
        config.issuers[0].algorithms,
        vec![jsonwebtoken::Algorithm::RS256]
    );
    assert_eq!(config.issuers[0].leeway.as_secs(), 60);
    assert_eq!(
        config.routes[0].path,
        PathMatch::Prefix("/api/orders".into())
    );
    assert_eq!(config.routes[1].methods, Some(vec!["GET".to_owned()]));
    assert_eq!(config.routes[1].access, Access::Anonymous);
    assert_eq!(config.identity_headers.len(), 9);
    assert!(
        config
            .identity_headers
            .iter()
            .any(|h| h.header == "x-auth-client-id" && h.claim == ClaimSource::ClientId)
    );
}

#[test]
fn unknown_fields_are_refused_by_name() {
    let yaml = MINIMAL.replace("audiences:", "audience: x\n    audiences:");
    let text = problems(&yaml).join("\n");
    assert!(text.contains("audience"), "{text}");
}

#[test]
fn every_problem_is_listed_with_its_field() {
    let yaml = r#"
server: { grpc_listen: "nowhere" }
jwks: { unknown_kid_cooldown: 30 }
issuers:
  - issuer: https://idp.example.com/
    audiences: []
    algorithms: [none, HS256, RS999]
    leeway: 10m
routes:
  - name: r
    path: { prefix: /api/../admin }
  - name: r
    path: { exact: /x, prefix: /y }
    anonymous: true
    require_any: [{ scopes: ["Orders Read"] }]
"#;
    let all = problems(yaml);
    let expect = [
        "server.grpc_listen",
        "jwks.unknown_kid_cooldown",
        "issuers[0].algorithms[0]: \"none\"",
        "issuers[0].algorithms[2]",
        "issuers[0].algorithms: HS256/384/512 need a secret",
        "issuers[0].audiences",
        "issuers[0].leeway",
        "routes[0].path.prefix: \"/api/../admin\" is not in normalised form; write \"/admin\"",
        "routes[0].require: a route needs",
        "routes[1].path",
        "routes[1]: `anonymous: true` excludes `require` and `require_any`",
    ];
    for field in expect {
        assert!(
            all.iter().any(|p| p.starts_with(field)),
            "missing {field:?} in {all:#?}"
        );
    }
}

#[test]
fn identity_headers_are_checked() {
    let yaml = format!(
        "{MINIMAL}identity_headers:\n  Authorization: sub\n  'bad header': sub\n  x-user: oid\n"
    );
    let all = problems(&yaml);
    assert!(
        all.iter()
            .any(|p| p.starts_with("identity_headers.Authorization")),
        "{all:?}"
    );
    assert!(
        all.iter()
            .any(|p| p.starts_with("identity_headers.bad header")),
        "{all:?}"
    );
    assert_eq!(all.len(), 2, "{all:?}");
}

#[test]
fn syntax_errors_name_the_file() {
    let err = Config::from_yaml("issuers: [", "broken.yaml").unwrap_err();
    assert!(matches!(err, ConfigError::Syntax { .. }));
    assert!(err.to_string().contains("broken.yaml"));
}

#[test]
fn hmac_needs_a_long_enough_secret_from_the_environment() {
    let yaml = MINIMAL.replace(
            "audiences: [api://orders]",
            "audiences: [api://orders]\n    algorithms: [HS256]\n    hmac_secret_env: PORTCULLIS_TEST_SECRET_THAT_IS_NOT_SET",
        );
    let all = problems(&yaml);
    assert!(all.iter().any(|p| p.contains("is not set")), "{all:?}");
}

#[test]
fn go_and_envoy_spellings_are_understood() {
    let yaml = MINIMAL.replace(
        "issuers:",
        "server: { grpc_listen: \":9001\", admin_listen: \"127.0.0.1:9090\" }\njwks: { fetch_timeout: 0.5s }\nissuers:",
    );
    let config = Config::from_yaml(&yaml, "test.yaml").unwrap();
    assert_eq!(config.grpc_listen, "0.0.0.0:9001".parse().unwrap());
    assert_eq!(
        config.jwks.fetch_timeout,
        std::time::Duration::from_millis(500)
    );
}

#[test]
fn plain_http_key_sources_need_loopback_or_an_explicit_opt_in() {
    let http = MINIMAL.replace(
        "https://idp.example.com/jwks.json",
        "http://idp.example.com/jwks.json",
    );
    let all = problems(&http);
    assert!(
        all.iter()
            .any(|p| p.starts_with("issuers[0].jwks_uri") && p.contains("plain HTTP")),
        "{all:?}"
    );
    let opted_in = http.replace(
        "    audiences: [api://orders]",
        "    audiences: [api://orders]\n    insecure_http: true",
    );
    assert!(problems(&opted_in).is_empty());
    for loopback in ["127.0.0.1:8080", "localhost", "[::1]:9000"] {
        let local = MINIMAL.replace(
            "https://idp.example.com/jwks.json",
            &format!("http://{loopback}/jwks.json"),
        );
        assert!(problems(&local).is_empty(), "{loopback}");
    }
    let discovered = MINIMAL
        .replace("    jwks_uri: https://idp.example.com/jwks.json\n", "")
        .replace("https://idp.example.com/", "http://idp.example.com/");
    assert!(
        problems(&discovered)
            .iter()
            .any(|p| p.starts_with("issuers[0].issuer") && p.contains("plain HTTP"))
    );
}

#[test]
fn unknown_methods_and_missing_requirements_are_explained() {
    let yaml = MINIMAL.replace("methods: [get]", "methods: [GTE]");
    let all = problems(&yaml);
    assert!(
        all.iter()
            .any(|p| p.starts_with("routes[1].methods[0]: \"GTE\" is not an HTTP method")),
        "{all:?}"
    );
    let yaml = MINIMAL.replace(
        "    require_any:\n      - scopes: [Orders.Read]\n      - roles: [Orders.Read.All]\n",
        "",
    );
    let all = problems(&yaml).join("\n");
    assert!(all.contains("`require: { token: any }`"), "{all}");
    assert!(!all.contains("{{"), "{all}");
}

#[test]
fn shape_problems_are_all_listed_with_the_file_name() {
    let yaml = "issuers:\n  - issuer: i\n    audience: a\nroutes:\n  - name: r\n    path: /api/b\n";
    let err = Config::from_yaml(yaml, "policy.yaml").unwrap_err();
    let text = err.to_string();
    assert!(text.contains("policy.yaml"), "{text}");
    assert!(
        text.contains("policy.yaml:3:5: issuers[0].audience: unknown field"),
        "{text}"
    );
    assert!(
        text.contains("policy.yaml:6:5: routes[0].path (route \"r\"): invalid type"),
        "{text}"
    );
}

#[test]
fn sender_constraint_and_dpop_problems_are_all_listed() {
    let yaml = MINIMAL
        .replace(
            "    audiences: [api://orders]\n",
            "    audiences: [api://orders]\n    sender_constraint: always\n",
        )
        .replace(
            "    anonymous: true\n",
            "    anonymous: true\n    sender_constraint: dpop\n",
        )
        + r#"dpop:
  algorithms: [ES256, HS256]
  max_age: 0s
  max_clock_skew: 10m
  replay:
    store: redis
    max_entries: 5000
    redis_url: rediss://cache.example.com
  nonce:
    lifetime: 1s
"#;
    let text = problems(&yaml).join("\n");
    for expected in [
        "issuers[0].sender_constraint: \"always\" is not one of optional, required, dpop, mtls",
        "routes[1].sender_constraint: does not apply to `anonymous: true` routes",
        "dpop.algorithms[1]: \"HS256\" is not an asymmetric JWS algorithm",
        "dpop.max_age: must be more than 0",
        "dpop.max_clock_skew: must be at most 5m",
        "dpop.replay.max_entries: only applies to `store: memory`",
        "dpop.replay.redis_url: must be a redis:// (or unix://) URL",
        "dpop.nonce.lifetime: must be between 10s and 24h",
        "dpop.nonce: needs secret_base64_env or secret_file",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
}

#[test]
fn dpop_defaults_check_every_asymmetric_algorithm_with_an_in_process_store() {
    let config = Config::from_yaml(MINIMAL, "test.yaml").unwrap();
    assert_eq!(config.dpop, crate::config::DpopSettings::default());
    assert_eq!(config.dpop.algorithms.len(), 10);
    assert!(matches!(
        config.dpop.replay,
        crate::config::ReplaySettings::Memory {
            max_entries: 100_000,
            per_key: 10_000
        }
    ));
    assert_eq!(
        config.issuers[0].sender_constraint,
        crate::config::SenderConstraint::Optional
    );
    let yaml = MINIMAL.replace(
        "    audiences: [api://orders]\n",
        "    audiences: [api://orders]\n    sender_constraint: mtls\n",
    );
    let config = Config::from_yaml(&yaml, "test.yaml").unwrap();
    assert_eq!(
        config.issuers[0].sender_constraint,
        crate::config::SenderConstraint::Mtls
    );
}

#[test]
fn shape_problems_elsewhere_do_not_make_dpop_or_dynamic_metadata_unknown() {
    let yaml = format!(
        "{MINIMAL}dpop:\n  max_age: 30s\n  replay: {{ store: memory }}\ndynamic_metadata: [route]\nlimits: {{ max_headers: lots }}\n"
    );
    let text = problems(&yaml).join("\n");
    assert!(text.contains("limits.max_headers"), "{text}");
    assert!(!text.contains("unknown field"), "{text}");
    let yaml = format!("{MINIMAL}dpop:\n  max_age: [1]\nlimits: {{ max_headers: lots }}\n");
    assert!(problems(&yaml).join("\n").contains("dpop.max_age"));
}

#[test]
fn upstreams_and_the_request_body_setting_are_checked() {
    let config = Config::from_yaml(MINIMAL, "test.yaml").unwrap();
    assert_eq!(config.upstream, Frameworks::ALL);
    assert_eq!(config.request_body, RequestBody::NotSent);
    assert_eq!(config.routes[0].upstream, None);
    let yaml = format!("{MINIMAL}upstream: rails\nrequest_body: sent\n").replace(
        "path: { prefix: /api/orders }",
        "path: { prefix: /api/orders }\n    upstream: [django, static]",
    );
    let config = Config::from_yaml(&yaml, "test.yaml").unwrap();
    assert_eq!(config.upstream, Frameworks::of(&[Framework::Rails]));
    assert_eq!(config.request_body, RequestBody::Sent);
    assert_eq!(
        config.routes[0].upstream,
        Some(Frameworks::of(&[Framework::Django, Framework::Static]))
    );
    let yaml = format!("{MINIMAL}upstream: [rails, tomcat]\nrequest_body: maybe\n").replace(
        "path: { prefix: /api/orders }",
        "path: { prefix: /api/orders }\n    upstream: []",
    );
    let text = problems(&yaml).join("\n");
    assert!(
        text.contains("upstream[1]: \"tomcat\" is not one of rails,"),
        "{text}"
    );
    assert!(
        text.contains("request_body: \"maybe\" is not one of not_sent, sent"),
        "{text}"
    );
    assert!(
        text.contains("routes[0].upstream: must name at least one framework"),
        "{text}"
    );
}

#[test]
fn step_up_is_read_and_its_mistakes_named() {
    use crate::config::{StepUp, StepUpChallenge};
    let yaml = MINIMAL.replace(
        "      - roles: [Orders.Read.All]\n",
        "      - roles: [Orders.Read.All]\n    step_up: { acr: [urn:mfa, urn:phr], max_age: 15m, auth_contexts: [c1] }\n",
    ) + "  - name: entra\n    path: { prefix: /e }\n    require: { token: any }\n";
    let yaml = yaml.replace(
        "    audiences: [api://orders]\n",
        "    audiences: [api://orders]\n    step_up_challenge: claims\n",
    );
    let config = Config::from_yaml(&yaml, "test.yaml").unwrap();
    assert_eq!(
        config.routes[0].step_up,
        Some(StepUp {
            acr: vec!["urn:mfa".into(), "urn:phr".into()],
            max_age: Some(std::time::Duration::from_secs(900)),
            auth_contexts: vec!["c1".into()],
        })
    );
    assert_eq!(config.routes[2].step_up, None);
    assert_eq!(config.issuers[0].step_up_challenge, StepUpChallenge::Claims);
    let plain = Config::from_yaml(MINIMAL, "test.yaml").unwrap();
    assert_eq!(plain.issuers[0].step_up_challenge, StepUpChallenge::Rfc9470);

    let broken = MINIMAL
        .replace(
            "      - roles: [Orders.Read.All]\n",
            "      - roles: [Orders.Read.All]\n    step_up: { acr: [\"urn mfa\"], max_age: 0s, auth_contexts: [c100] }\n",
        )
        .replace("    anonymous: true\n", "    anonymous: true\n    step_up: {}\n")
        .replace(
            "    audiences: [api://orders]\n",
            "    audiences: [api://orders]\n    step_up_challenge: entra\n",
        );
    let all = problems(&broken).join("\n");
    for expected in [
        "routes[0].step_up.acr[0]",
        "routes[0].step_up.max_age",
        "routes[0].step_up.auth_contexts[0]",
        "\"c100\" is not an Entra authentication context ID (c1 to c99)",
        "routes[1].step_up",
        "does not apply to `anonymous: true` routes",
        "names nothing: give acr, max_age or auth_contexts",
        "issuers[0].step_up_challenge",
    ] {
        assert!(all.contains(expected), "{expected:?} missing in\n{all}");
    }
}
