use crate::config::{Access, ClaimSource, Config, ConfigError, PathMatch};

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
    assert_eq!(config.identity_headers.len(), 7);
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
