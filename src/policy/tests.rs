//! Policy tests: hand-written cases for each kind of condition, and generated policies
//! and requests checked against a deliberately naive reference model.

use super::*;
use crate::config::{Config, PathMatch, RouteConfig, TokenKind};
use proptest::prelude::*;
use serde_json::{Value, json};

const CONFIG: &str = r#"
issuers:
  - issuer: https://idp.example.com/
    jwks_uri: https://idp.example.com/jwks.json
    audiences: [api://orders]
routes:
  - name: health
    path: { exact: /healthz }
    anonymous: true
  - name: orders-write
    methods: [POST, PUT, DELETE]
    path: { prefix: /api/orders }
    require_any:
      - scopes: [Orders.ReadWrite]
      - roles: [Orders.ReadWrite.All]
  - name: orders-read-full
    methods: [GET]
    path: { template: '/api/orders/{id}/history' }
    require_any:
      - scopes: [Orders.ReadFull]
      - roles: [Orders.Read.All]
  - name: orders-read
    methods: [GET]
    path: { prefix: /api/orders }
    require_any:
      - scopes_any: [Orders.Read, Orders.ReadFull, Orders.ReadWrite]
      - roles_any: [Orders.Read.All, Orders.ReadWrite.All]
  - name: reports
    path: { prefix: /api/reports }
    require:
      token: delegated
      tenants: [T1]
    require_any:
      - scopes: [Reports.Read, Orders.Read]
  - name: jobs
    path: { prefix: /api/jobs }
    require:
      token: app
      clients: [batch-app]
      roles: [Jobs.Run]
  - name: admin
    path: { prefix: /admin }
    require:
      users: [alice-oid]
      claims:
        - { claim: acr, one_of: [mfa, phr] }
        - { claim: groups, contains: admins }
        - { claim: email_verified, equals: "true" }
"#;

fn policy() -> Policy {
    Policy::of(&Config::from_yaml(CONFIG, "test").unwrap())
}

fn claims(value: Value) -> VerifiedClaims {
    let Value::Object(map) = value else {
        unreachable!("test claims are objects")
    };
    VerifiedClaims::new("https://idp.example.com/".into(), map).unwrap()
}

fn decide(method: &str, path: &str, token: Value) -> Result<String, DenyReason> {
    let policy = policy();
    let route = policy.route(method, "api", path)?;
    evaluate(route, &claims(token), &[]).map_err(|d| d.reason)?;
    Ok(route.name.to_string())
}

#[test]
fn first_matching_route_wins_and_unmatched_is_denied() {
    let reader = json!({"scp": "Orders.Read"});
    assert_eq!(
        decide("GET", "/api/orders/1", reader.clone()),
        Ok("orders-read".into())
    );
    assert_eq!(
        decide("POST", "/api/orders", reader.clone()),
        Err(DenyReason::InsufficientPermission)
    );
    assert_eq!(
        decide("GET", "/api/other", reader.clone()),
        Err(DenyReason::NoRoute)
    );
    assert_eq!(
        decide("PATCH", "/api/orders", reader),
        Err(DenyReason::NoRoute)
    );
}

#[test]
fn standard_and_full_read_are_separate_permissions() {
    let standard = json!({"scp": "Orders.Read"});
    let full = json!({"scp": "Orders.ReadFull"});
    assert_eq!(
        decide("GET", "/api/orders/7", standard.clone()),
        Ok("orders-read".into())
    );
    assert_eq!(
        decide("GET", "/api/orders/7/history", standard),
        Err(DenyReason::InsufficientPermission)
    );
    assert_eq!(
        decide("GET", "/api/orders/7/history", full),
        Ok("orders-read-full".into())
    );
    let daemon = json!({"roles": ["Orders.Read.All"]});
    assert_eq!(
        decide("GET", "/api/orders/7/history", daemon),
        Ok("orders-read-full".into())
    );
}

#[test]
fn route_conditions_and_alternatives_combine() {
    let user = |tid: &str, scp: &str| json!({"scp": scp, "tid": tid});
    assert_eq!(
        decide(
            "GET",
            "/api/reports",
            user("T1", "Reports.Read Orders.Read")
        ),
        Ok("reports".into())
    );
    assert_eq!(
        decide(
            "GET",
            "/api/reports",
            user("T2", "Reports.Read Orders.Read")
        ),
        Err(DenyReason::ConditionFailed)
    );
    assert_eq!(
        decide("GET", "/api/reports", user("T1", "Reports.Read")),
        Err(DenyReason::InsufficientPermission)
    );
    // An app token with the scopes' names as roles is not a delegated token.
    assert_eq!(
        decide(
            "GET",
            "/api/reports",
            json!({"roles": ["Reports.Read"], "tid": "T1"})
        ),
        Err(DenyReason::ConditionFailed)
    );
}

#[test]
fn app_only_routes_refuse_delegated_tokens() {
    let app = json!({"roles": ["Jobs.Run"], "azp": "batch-app"});
    assert_eq!(decide("POST", "/api/jobs", app), Ok("jobs".into()));
    let user = json!({"roles": ["Jobs.Run"], "scp": "x", "azp": "batch-app"});
    assert_eq!(
        decide("POST", "/api/jobs", user),
        Err(DenyReason::ConditionFailed)
    );
    let other_app = json!({"roles": ["Jobs.Run"], "appid": "other"});
    assert_eq!(
        decide("POST", "/api/jobs", other_app),
        Err(DenyReason::ConditionFailed)
    );
    let no_role = json!({"roles": ["Jobs.Read"], "azp": "batch-app"});
    assert_eq!(
        decide("POST", "/api/jobs", no_role),
        Err(DenyReason::InsufficientPermission)
    );
}

#[test]
fn user_and_claim_conditions() {
    let admin = json!({
        "scp": "x", "oid": "alice-oid", "acr": "mfa", "groups": ["staff", "admins"],
        "email_verified": true
    });
    assert_eq!(decide("GET", "/admin/x", admin.clone()), Ok("admin".into()));
    for (claim, value) in [
        ("oid", json!("bob-oid")),
        ("acr", json!("pwd")),
        ("groups", json!(["staff"])),
        ("groups", json!("staff admin")),
        ("email_verified", json!(false)),
    ] {
        let mut token = admin.clone();
        token[claim] = value;
        assert_eq!(
            decide("GET", "/admin/x", token),
            Err(DenyReason::ConditionFailed),
            "{claim}"
        );
    }
    let mut by_sub = admin.clone();
    by_sub.as_object_mut().unwrap().remove("oid");
    by_sub["sub"] = json!("alice-oid");
    assert_eq!(decide("GET", "/admin/x", by_sub), Ok("admin".into()));
}

#[test]
fn similar_names_never_satisfy() {
    assert_eq!(
        decide(
            "GET",
            "/api/orders",
            json!({"scp": "Orders.Read.All orders.read"})
        ),
        Err(DenyReason::InsufficientPermission)
    );
    assert_eq!(
        decide(
            "GET",
            "/api/orders",
            json!({"scp": "x", "roles": ["Orders.Read"]})
        ),
        Err(DenyReason::InsufficientPermission)
    );
}

#[test]
fn normalised_path_decides_the_route() {
    let p = policy();
    let name = |path: &str| p.route("GET", "h", path).map(|r| r.name.to_string());
    assert_eq!(name("/healthz/../api/orders"), Ok("orders-read".into()));
    assert_eq!(name("/api/%6Frders?x"), Ok("orders-read".into()));
    assert_eq!(
        name("//api//orders/1/./history"),
        Ok("orders-read-full".into())
    );
    assert_eq!(name("/api/orders/1/history/"), Ok("orders-read".into()));
    assert_eq!(name("/api/orders%zz"), Err(DenyReason::InvalidRequest));
}

#[test]
fn insufficient_permission_names_the_accepted_scopes() {
    let p = policy();
    let route = p.route("GET", "h", "/api/orders").unwrap();
    let deny = evaluate(route, &claims(json!({"scp": "Profile.Read"})), &[]).unwrap_err();
    assert_eq!(
        deny.required_scopes.as_deref(),
        Some("Orders.Read Orders.ReadFull Orders.ReadWrite")
    );
}

#[test]
fn explanation_lists_every_condition_with_its_outcome() {
    let p = policy();
    let route = p.route("GET", "h", "/api/reports").unwrap();
    let outcomes = explain(
        route,
        &claims(json!({"scp": "Reports.Read", "tid": "T1"})),
        &[],
    );
    let summary: Vec<(String, bool)> = outcomes
        .iter()
        .map(|o| (o.group.clone(), o.holds))
        .collect();
    assert_eq!(
        summary,
        [
            ("require".to_owned(), true),
            ("require".to_owned(), true),
            ("require_any[0]".to_owned(), false)
        ]
    );
    assert_eq!(
        outcomes[2].description,
        "scopes all of [Reports.Read, Orders.Read]"
    );
}

// === Generated policies against a reference model ===

const SEGMENTS: [&str; 3] = ["a", "b", "ab"];
const SCOPES: [&str; 3] = ["S1", "S2", "S3"];
const METHODS: [&str; 3] = ["GET", "POST", "DELETE"];

/// A generated route: methods (None = all), path kind, path, required scopes (all of).
#[derive(Debug, Clone)]
struct ModelRoute {
    methods: Option<Vec<&'static str>>,
    prefix: bool,
    path: String,
    scopes: Vec<&'static str>,
}

fn path_strategy() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(&SEGMENTS[..]), 0..3)
        .prop_map(|segments| format!("/{}", segments.join("/")))
}

fn route_strategy() -> impl Strategy<Value = ModelRoute> {
    (
        prop::option::of(prop::sample::subsequence(&METHODS[..], 1..=3)),
        any::<bool>(),
        path_strategy(),
        prop::sample::subsequence(&SCOPES[..], 0..=2),
    )
        .prop_map(|(methods, prefix, path, scopes)| ModelRoute {
            methods,
            prefix,
            path,
            scopes,
        })
}

/// The naive model: string operations only, written independently of `path`/`route`.
fn model_decide(
    routes: &[ModelRoute],
    method: &str,
    path: &str,
    scopes: &[&str],
) -> Option<(usize, bool)> {
    let index = routes.iter().position(|r| {
        let method_ok = r.methods.as_ref().is_none_or(|m| m.contains(&method));
        let path_ok = if r.prefix {
            r.path == "/" || path == r.path || path.starts_with(&format!("{}/", r.path))
        } else {
            path == r.path
        };
        method_ok && path_ok
    })?;
    let allowed = routes[index].scopes.iter().all(|s| scopes.contains(s));
    Some((index, allowed))
}

fn policy_of(routes: &[ModelRoute]) -> Policy {
    let mut config = Config::from_yaml(CONFIG, "test").unwrap();
    config.routes = routes
        .iter()
        .enumerate()
        .map(|(i, r)| RouteConfig {
            name: i.to_string(),
            methods: r
                .methods
                .as_ref()
                .map(|m| m.iter().map(|s| s.to_string()).collect()),
            hosts: None,
            path: if r.prefix {
                PathMatch::Prefix(r.path.clone())
            } else {
                PathMatch::Exact(r.path.clone())
            },
            access: Access::Require {
                all: vec![if r.scopes.is_empty() {
                    Condition::Token(TokenKind::Any)
                } else {
                    Condition::Scopes(r.scopes.iter().map(|s| s.to_string()).collect())
                }],
                any: Vec::new(),
            },
            audit: false,
            identity_headers: None,
            tolerates: Default::default(),
            forward_authorization: false,
            sender_constraint: Default::default(),
            upstream: None,
            step_up: None,
            signed_identity: None,
        })
        .collect();
    Policy::of(&config)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn generated_policies_decide_like_the_reference_model(
        routes in prop::collection::vec(route_strategy(), 1..6),
        method in prop::sample::select(&METHODS[..]),
        path in path_strategy(),
        scopes in prop::sample::subsequence(&SCOPES[..], 0..=3),
    ) {
        let policy = policy_of(&routes);
        let token = claims(json!({"scp": scopes.join(" "), "roles": []}));
        let actual = match policy.route(method, "h", &path) {
            Err(reason) => {
                prop_assert_eq!(reason, DenyReason::NoRoute);
                None
            }
            Ok(route) => Some((route.name.parse::<usize>().unwrap(), evaluate(route, &token, &[]).is_ok())),
        };
        prop_assert_eq!(actual, model_decide(&routes, method, &path, &scopes));
    }

    #[test]
    fn dot_segments_never_change_which_route_a_path_reaches(
        routes in prop::collection::vec(route_strategy(), 1..6),
        path in path_strategy(),
        detour in prop::sample::select(&SEGMENTS[..]),
    ) {
        let policy = policy_of(&routes);
        let canonical = policy.route("GET", "h", &path).map(|r| r.name.clone()).ok();
        for variant in [
            format!("/{detour}/..{path}"),
            format!("/.{path}"),
            path.replace('/', "//"),
            format!("{path}?/{detour}"),
        ] {
            let reached = policy.route("GET", "h", &variant).map(|r| r.name.clone()).ok();
            prop_assert_eq!(&reached, &canonical, "{} vs {}", variant, path);
        }
    }
}

/// Route patterns of every kind over a small alphabet, capitals and wildcards included,
/// written as the config file would.
fn pattern_strategy() -> impl Strategy<Value = String> {
    let segment = prop::sample::select(&["a", "B", "b", "ab", "{id}", "*"][..]);
    (
        prop::sample::select(&["exact", "prefix", "template"][..]),
        prop::collection::vec(segment, 0..4),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(kind, segments, slash, rest)| {
            let literal: Vec<&str> = segments
                .iter()
                .map(|s| {
                    if s.starts_with('{') || *s == "*" {
                        "x"
                    } else {
                        s
                    }
                })
                .collect();
            let mut path = format!(
                "/{}",
                if kind == "template" {
                    segments
                } else {
                    literal
                }
                .join("/")
            );
            if kind == "template" && rest {
                path = format!("{}/**", path.trim_end_matches('/'));
            } else if slash && path != "/" {
                path.push('/');
            }
            format!("{{ {kind}: '{path}' }}")
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

    /// The index changes how routes are found, never which: the first route in file
    /// order that matches, for the path as written and in lower case.
    #[test]
    fn the_route_index_finds_what_a_scan_of_every_route_finds(
        patterns in prop::collection::vec(pattern_strategy(), 1..12),
        path in prop::collection::vec(prop::sample::select(&["a", "B", "b", "ab", "x", ""][..]), 0..5),
        folded in any::<bool>(),
    ) {
        let routes: String = patterns
            .iter()
            .enumerate()
            .map(|(i, p)| format!("  - {{ name: r{i}, path: {p}, anonymous: true }}\n"))
            .collect();
        let yaml = format!("issuers: [{{issuer: i, jwks_uri: 'https://i/k', audiences: [a]}}]\nroutes:\n{routes}");
        let Ok(config) = Config::from_yaml(&yaml, "t") else {
            // Shadowed or otherwise refused policies are not served.
            return Ok(());
        };
        let policy = Policy::of(&config);
        let mut path = format!("/{}", path.join("/"));
        if folded {
            path = path.to_ascii_lowercase();
        }
        let scanned = policy.routes().iter().find(|r| r.matches("GET", "h", &path, folded)).map(|r| r.id);
        let indexed = policy.first("GET", "h", &path, folded).map(|r| r.id);
        prop_assert_eq!(indexed, scanned, "{}", path);
    }
}
