//! The invariant of the pipeline: a request is allowed only when every request an upstream
//! may derive from it would be — tested as a property over generated policies and
//! hostile paths against a deliberately naive model of upstream behaviour, plus cases.

use proptest::prelude::*;
use serde_json::{Value, json};

use super::{model::*, *};
use crate::{
    config::{Condition, Config, PathMatch, RouteConfig, TokenKind, Tolerance},
    policy::Policy,
    upstream::{Framework, Frameworks, MethodOverride, Reading},
};

#[derive(Debug, Clone)]
pub(crate) struct ModelRoute {
    methods: Option<Vec<&'static str>>,
    prefix: bool,
    segments: Vec<&'static str>,
    /// `None`: anonymous; `Some(scopes)`: a token with all of these.
    scopes: Option<Vec<&'static str>>,
    tolerant: bool,
}

fn model_matches(r: &ModelRoute, method: &str, path: &(Vec<String>, bool), fold: u8) -> bool {
    let method_ok = r.methods.as_ref().is_none_or(|m| m.contains(&method));
    let literal: Vec<String> = r
        .segments
        .iter()
        .map(|s| {
            if fold > 0 {
                s.to_ascii_lowercase()
            } else {
                (*s).to_owned()
            }
        })
        .collect();
    let (segments, trailing) = path;
    let path_ok = if r.prefix {
        segments.len() >= literal.len() && segments[..literal.len()] == literal[..]
    } else {
        *segments == literal && (!*trailing || literal.is_empty())
    };
    method_ok && path_ok
}

/// Allowed by every upstream reading (the strictest decision).
fn model_allows(
    routes: &[ModelRoute],
    method: &str,
    raw: &str,
    method_override: Option<&'static str>,
    token: Option<&[&str]>,
) -> bool {
    let mut methods = vec![method];
    methods.extend(method_override);
    if methods.contains(&"HEAD") {
        methods.push("GET");
    }
    all_upstreams().into_iter().all(|u| {
        let path = upstream_path(raw, u);
        methods.iter().all(
            |m| match routes.iter().find(|r| model_matches(r, m, &path, u.fold)) {
                None => false,
                Some(ModelRoute { scopes: None, .. }) => true,
                Some(ModelRoute {
                    scopes: Some(needed),
                    ..
                }) => token.is_some_and(|t| needed.iter().all(|s| t.contains(s))),
            },
        )
    })
}

// === Generators ===

const LITERALS: [&str; 3] = ["a", "B", "admin"];
const PIECES: [&str; 29] = [
    "a",
    "b",
    "B",
    "A",
    "admin",
    "ADMIN",
    "..",
    ".",
    "..;",
    "a;x=1",
    "admin;x",
    "%2e%2e",
    "a%2Fb",
    "a%2F..%2Fadmin",
    "a%5C..%5Cadmin",
    "a%3Bx",
    "a;x=%2F..%2Fadmin",
    "admin.json",
    "a.b.c",
    "admin.",
    "admin%20",
    "..%20",
    "adm%C4%B1n",
    "ADM%C4%B0N",
    "%2561dmin",
    "%252e%252e",
    "a%252Fb",
    "%E2%84%AA",
    "b.",
];
pub(crate) const SCOPES: [&str; 2] = ["S1", "S2"];
pub(crate) const METHODS: [&str; 4] = ["GET", "HEAD", "POST", "DELETE"];

fn route_strategy() -> impl Strategy<Value = ModelRoute> {
    (
        prop::option::of(prop::sample::subsequence(&METHODS[..], 1..=3)),
        any::<bool>(),
        prop::collection::vec(prop::sample::select(&LITERALS[..]), 0..3),
        prop::option::of(prop::sample::subsequence(&SCOPES[..], 0..=2)),
        prop::bool::weighted(0.8),
    )
        .prop_map(|(methods, prefix, segments, scopes, tolerant)| ModelRoute {
            methods,
            prefix,
            segments,
            scopes,
            tolerant,
        })
}

/// A few routes, often ending with an anonymous catch-all (where bypasses land).
pub(crate) fn routes_strategy() -> impl Strategy<Value = Vec<ModelRoute>> {
    (prop::collection::vec(route_strategy(), 1..5), any::<bool>()).prop_map(
        |(mut routes, catch_all)| {
            if catch_all {
                routes.push(ModelRoute {
                    methods: None,
                    prefix: true,
                    segments: Vec::new(),
                    scopes: None,
                    tolerant: true,
                });
            }
            routes
        },
    )
}

pub(crate) fn raw_path_strategy() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(prop::sample::select(&PIECES[..]), 0..4),
        any::<bool>(),
    )
        .prop_map(|(pieces, slash)| {
            format!("/{}{}", pieces.join("/"), if slash { "/" } else { "" })
        })
}

/// The secret of the HS256 issuer `i` (audience `a`) of generated configurations.
pub(crate) const SECRET: &[u8] = b"a generated policy's 32-byte-long HMAC secret";

/// A configuration with the generated routes, trusting tokens of issuer `i` for audience
/// `a` signed with [`SECRET`] (HS256: verified with no key fetch).
pub(crate) fn config_of(routes: &[ModelRoute]) -> Config {
    let base = "issuers: [{issuer: i, jwks_uri: 'https://i/k', audiences: [a]}]\nroutes: [{name: x, path: {prefix: /}, anonymous: true}]\n";
    let mut config = Config::from_yaml(base, "test").unwrap();
    config.issuers[0].algorithms = vec![jsonwebtoken::Algorithm::HS256];
    config.issuers[0].jwks = None;
    config.issuers[0].hmac_secret = Some(crate::config::Secret(SECRET.to_vec()));
    config.routes = routes
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let path = format!("/{}", r.segments.join("/"));
            RouteConfig {
                name: i.to_string(),
                methods: r
                    .methods
                    .as_ref()
                    .map(|m| m.iter().map(|s| s.to_string()).collect()),
                hosts: None,
                path: if r.prefix {
                    PathMatch::Prefix(path)
                } else {
                    PathMatch::Exact(path)
                },
                access: match &r.scopes {
                    None => Access::Anonymous,
                    Some(scopes) => Access::Require {
                        all: vec![if scopes.is_empty() {
                            Condition::Token(TokenKind::Any)
                        } else {
                            Condition::Scopes(scopes.iter().map(|s| s.to_string()).collect())
                        }],
                        any: Vec::new(),
                    },
                },
                audit: false,
                identity_headers: None,
                tolerates: Tolerance {
                    encoded_slashes: r.tolerant,
                    path_parameters: r.tolerant,
                    method_override: r.tolerant,
                },
                forward_authorization: false,
                sender_constraint: Default::default(),
                upstream: None,
                step_up: None,
                signed_identity: None,
            }
        })
        .collect();
    config
}

fn policy_of(routes: &[ModelRoute]) -> Policy {
    Policy::of(&config_of(routes))
}

fn claims(value: Value) -> VerifiedClaims {
    let Value::Object(map) = value else {
        unreachable!("test claims are objects")
    };
    VerifiedClaims::new("https://idp.example.com/".into(), map).unwrap()
}

/// The pipeline's decision without the network: resolve, then judge with these claims.
fn allows(
    policy: &Policy,
    method: &str,
    path: &str,
    method_override: Option<&str>,
    token: Option<&VerifiedClaims>,
) -> Result<String, DenyReason> {
    let overrides: Vec<MethodOverride<'_>> = method_override
        .map(|m| MethodOverride {
            method: Some(m.into()),
            by: Frameworks::ALL,
        })
        .into_iter()
        .collect();
    let reached = policy.resolve(&Target {
        overrides: &overrides,
        ..Target::plain(method, "api.example.com", path)
    })?;
    let claims = needs_token(&reached).then(|| token.ok_or(DenyReason::MissingToken.into()));
    judge(&reached, claims)
        .map(|j| j.route.name.to_string())
        .map_err(|(_, deny)| deny.reason)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4096, ..ProptestConfig::default() })]

    /// The invariant: portcullis allows only what every upstream reading allows.
    #[test]
    fn an_allowed_request_is_allowed_under_every_upstream_reading(
        routes in routes_strategy(),
        method in prop::sample::select(&METHODS[..]),
        path in raw_path_strategy(),
        method_override in prop::option::of(prop::sample::select(&["DELETE", "GET", "HEAD"][..])),
        scopes in prop::option::of(prop::sample::subsequence(&SCOPES[..], 0..=2)),
    ) {
        let policy = policy_of(&routes);
        let token = scopes.as_ref().map(|s| claims(json!({"scp": s.join(" ")})));
        let decision = allows(&policy, method, &path, method_override, token.as_ref());
        if decision.is_ok() {
            prop_assert!(
                model_allows(&routes, method, &path, method_override, scopes.as_deref()),
                "portcullis allowed {} {} (override {:?}) on {:?}", method, path, method_override, decision
            );
        }
    }

    /// And it is no stricter than needed for plain requests: a canonical path, its own
    /// method, is decided exactly as the model decides it.
    #[test]
    fn plain_requests_are_decided_as_the_model_decides(
        routes in routes_strategy(),
        method in prop::sample::select(&["GET", "POST", "DELETE"][..]),
        segments in prop::collection::vec(prop::sample::select(&["a", "admin", "pub"][..]), 0..3),
        scopes in prop::option::of(prop::sample::subsequence(&SCOPES[..], 0..=2)),
    ) {
        let policy = policy_of(&routes);
        let path = format!("/{}", segments.join("/"));
        let token = scopes.as_ref().map(|s| claims(json!({"scp": s.join(" ")})));
        let decision = allows(&policy, method, &path, None, token.as_ref());
        // No capitals anywhere: the folded readings are the plain one.
        let capitals = routes.iter().any(|r| r.segments.contains(&"B"));
        if !capitals {
            prop_assert_eq!(
                decision.is_ok(),
                model_allows(&routes, method, &path, None, scopes.as_deref())
            );
        }
    }
}

// === Cases from the issue, on the example policy ===

const EXAMPLE: &str = r#"
issuers: [{issuer: i, jwks_uri: 'https://i/k', audiences: [a]}]
routes:
  - { name: health, methods: [GET], path: { exact: /healthz }, anonymous: true }
  - { name: public, path: { prefix: /public }, anonymous: true }
  - { name: admin-host, hosts: [admin.example.com], path: { prefix: / }, require: { scopes: [Admin] } }
  - { name: export, methods: [GET], path: { exact: /api/orders/export }, require: { scopes: [Orders.Export] } }
  - name: history
    methods: [GET]
    path: { template: "/api/orders/{id}/history" }
    require: { scopes: [Orders.ReadFull] }
  - name: read
    methods: [GET, HEAD]
    path: { prefix: /api/orders }
    require: { scopes_any: [Orders.Read, Orders.ReadFull] }
  - name: write
    methods: [POST, PUT, PATCH, DELETE]
    path: { prefix: /api/orders }
    require: { scopes: [Orders.ReadWrite] }
  - { name: files, methods: [GET], path: { template: "/files/**" }, require: { token: any }, allow_encoded_slashes: true, allow_path_parameters: true }
  - { name: forms, methods: [POST], path: { exact: /forms }, require: { token: any }, allow_method_override: true }
  - { name: admin, path: { prefix: /admin }, require: { scopes: [Admin] } }
  - { name: everything-else, path: { prefix: / }, anonymous: true }
"#;

fn example() -> Policy {
    Policy::of(&Config::from_yaml(EXAMPLE, "test").unwrap())
}

fn reader() -> VerifiedClaims {
    claims(json!({"scp": "Orders.Read"}))
}

#[test]
fn escaped_separators_are_refused_unless_every_route_reached_accepts_them() {
    let p = example();
    for path in [
        "/public/..%2Fadmin/secret",
        "/admin%2Fsecret",
        "/admin%2fsecret",
        "/public/..%5Cadmin",
        "/api/orders/7%2Fhistory",
    ] {
        assert_eq!(
            allows(&p, "GET", path, None, Some(&reader())),
            Err(DenyReason::InvalidRequest),
            "{path}"
        );
    }
    assert_eq!(
        allows(&p, "GET", "/files/a%2Fb", None, Some(&reader())),
        Ok("files".into())
    );
    // Accepted by /files, but decoded it leaves /files for /admin: still judged there.
    assert_eq!(
        allows(&p, "GET", "/files/..%2F..%2Fadmin", None, Some(&reader())),
        Err(DenyReason::InvalidRequest)
    );
}

#[test]
fn path_parameters_case_and_trailing_slashes_reach_the_strict_route() {
    let p = example();
    for path in [
        "/api/orders/7/history;x=1",
        "/api/orders/7/history/",
        "/api/orders/7/HISTORY",
        "/API/ORDERS/7/history",
    ] {
        let decision = allows(&p, "GET", path, None, Some(&reader()));
        assert!(
            matches!(
                decision,
                Err(DenyReason::InsufficientPermission | DenyReason::InvalidRequest)
            ),
            "{path}: {decision:?}"
        );
    }
    assert_eq!(
        allows(&p, "GET", "/public/..;/api/orders", None, None),
        Err(DenyReason::InvalidRequest)
    );
    assert_eq!(
        allows(
            &p,
            "GET",
            "/api/orders/7/history/",
            None,
            Some(&claims(json!({"scp": "Orders.ReadFull"})))
        ),
        Ok("read".into()),
        "the full read may use either route"
    );
}

#[test]
fn head_is_judged_as_get_too() {
    let p = example();
    assert_eq!(
        allows(&p, "HEAD", "/api/orders/7/history", None, Some(&reader())),
        Err(DenyReason::InsufficientPermission)
    );
    assert_eq!(
        allows(&p, "HEAD", "/api/orders/7", None, Some(&reader())),
        Ok("read".into())
    );
}

#[test]
fn method_overrides_are_judged_as_both_methods_and_refused_when_they_disagree() {
    let p = example();
    let reader = reader();
    // DELETE /api/orders/7 is the `write` route too: judged there, denied.
    assert_eq!(
        allows(&p, "POST", "/api/orders/7", Some("DELETE"), Some(&reader)),
        Err(DenyReason::InsufficientPermission)
    );
    // GET /api/orders/7/history is not the route of POST: readings disagree, refused.
    assert_eq!(
        allows(
            &p,
            "POST",
            "/api/orders/7/history",
            Some("GET"),
            Some(&reader)
        ),
        Err(DenyReason::InvalidRequest)
    );
    // /forms accepts overrides, but DELETE /forms reaches the anonymous catch-all, which
    // does not: refused too.
    assert_eq!(
        allows(&p, "POST", "/forms", Some("DELETE"), Some(&reader)),
        Err(DenyReason::InvalidRequest)
    );
}

/// The pipeline's decision for a request with these forwarding, rewrite and override
/// headers (no framework named: every reading applies).
fn allows_with(
    policy: &Policy,
    method: &str,
    path: &str,
    forwarded_hosts: &[&str],
    rewrites: &[&str],
    overrides: &[MethodOverride<'_>],
    token: Option<&VerifiedClaims>,
) -> Result<String, DenyReason> {
    let hosts: Vec<std::borrow::Cow<'_, str>> =
        forwarded_hosts.iter().map(|h| (*h).into()).collect();
    let reached = policy.resolve(&Target {
        forwarded_hosts: &hosts,
        rewrites,
        overrides,
        ..Target::plain(method, "www.example.com", path)
    })?;
    let claims = needs_token(&reached).then(|| token.ok_or(DenyReason::MissingToken.into()));
    judge(&reached, claims)
        .map(|j| j.route.name.to_string())
        .map_err(|(_, deny)| deny.reason)
}

fn unseen() -> MethodOverride<'static> {
    MethodOverride {
        method: None,
        by: Frameworks::ALL,
    }
}

#[test]
fn the_catalogue_s_readings_reach_the_strict_routes() {
    let p = example();
    let reader = reader();
    let admin = claims(json!({"scp": "Admin Orders.Read"}));
    for (path, anonymous_too) in [
        // Format suffixes (Rails, Spring, Symfony).
        ("/api/orders/export.json", false),
        ("/admin.json", true),
        ("/admin.json/", true),
        // Trailing dots and spaces (IIS).
        ("/admin./secret", true),
        ("/admin%20/secret", true),
        ("/api/orders/export%2e", false),
        // Unicode case pairs of ASCII letters (Python re.IGNORECASE, .NET, Java).
        ("/adm%C4%B1n/secret", true),
        ("/ADM%C4%B0N", true),
    ] {
        let decision = allows(&p, "GET", path, None, Some(&reader));
        assert!(
            matches!(decision, Err(DenyReason::InsufficientPermission)),
            "{path}: {decision:?}"
        );
        if anonymous_too {
            assert_eq!(
                allows(&p, "GET", path, None, None),
                Err(DenyReason::MissingToken),
                "{path}"
            );
            assert!(
                allows(&p, "GET", path, None, Some(&admin)).is_ok(),
                "{path}"
            );
        }
    }
    // A double escape whose second decoding reaches another route is refused.
    assert_eq!(
        allows(&p, "GET", "/%2561dmin/secret", None, None),
        Err(DenyReason::InvalidRequest)
    );
    // Control characters never reach a regex router.
    assert_eq!(
        allows(&p, "GET", "/api/orders/export%0a", None, Some(&reader)),
        Err(DenyReason::InvalidRequest)
    );
}

#[test]
fn forwarded_hosts_and_rewrites_are_judged_as_readings() {
    let p = example();
    let reader = reader();
    assert_eq!(
        allows_with(&p, "GET", "/x", &["admin.example.com"], &[], &[], None),
        Err(DenyReason::MissingToken)
    );
    assert_eq!(
        allows_with(
            &p,
            "GET",
            "/x",
            &["admin.example.com"],
            &[],
            &[],
            Some(&reader)
        ),
        Err(DenyReason::InsufficientPermission)
    );
    assert_eq!(
        allows_with(&p, "GET", "/x", &["www.example.com"], &[], &[], None),
        Ok("everything-else".into())
    );
    assert_eq!(
        allows_with(&p, "GET", "/public/x", &[], &["/admin/secret"], &[], None),
        Err(DenyReason::MissingToken)
    );
    assert_eq!(
        allows_with(&p, "GET", "/public/x", &[], &["/public/y"], &[], None),
        Ok("public".into())
    );
}

#[test]
fn an_unseen_override_is_refused_only_where_it_could_change_the_decision() {
    let p = example();
    let writer = claims(json!({"scp": "Orders.ReadWrite"}));
    // POST /api/orders/7 may be GET (read), DELETE (write)…: other routes, refused.
    assert_eq!(
        allows_with(
            &p,
            "POST",
            "/api/orders/7",
            &[],
            &[],
            &[unseen()],
            Some(&writer)
        ),
        Err(DenyReason::InvalidRequest)
    );
    // The anonymous catch-all takes every method: nothing an override can change.
    assert_eq!(
        allows_with(&p, "POST", "/public/upload", &[], &[], &[unseen()], None),
        Ok("public".into())
    );
    // /forms accepts overrides: judged under every method it may become.
    let forms = allows_with(&p, "POST", "/forms", &[], &[], &[unseen()], Some(&writer));
    assert_eq!(
        forms,
        Err(DenyReason::InvalidRequest),
        "GET /forms is the catch-all's"
    );
}

#[test]
fn upstreams_named_drop_the_readings_they_never_give() {
    let yaml = EXAMPLE.replace("routes:\n", "upstream: [express, flask]\nroutes:\n");
    let p = Policy::of(&Config::from_yaml(&yaml, "test").unwrap());
    // Neither reads a format suffix nor trims dots: the catch-all decides.
    assert_eq!(
        allows(&p, "GET", "/admin.json", None, None),
        Ok("everything-else".into())
    );
    assert_eq!(
        allows(&p, "GET", "/admin./x", None, None),
        Ok("everything-else".into())
    );
    // Flask reads `ı` as `i` in a (?i) pattern, Express routes case-insensitively.
    assert_eq!(
        allows(&p, "GET", "/adm%C4%B1n", None, None),
        Err(DenyReason::MissingToken)
    );
    assert_eq!(
        allows(&p, "GET", "/ADMIN", None, None),
        Err(DenyReason::MissingToken)
    );
    // Neither reads a form body's override.
    assert_eq!(
        allows_with(
            &p,
            "POST",
            "/api/orders/7",
            &[],
            &[],
            &[MethodOverride {
                method: None,
                by: Reading::OverrideForm
                    .entry()
                    .frameworks
                    .intersection(Frameworks::of(&[Framework::Rails]))
            }],
            Some(&reader())
        ),
        Err(DenyReason::InsufficientPermission)
    );
}

#[test]
fn shapes_whose_readings_agree_are_not_refused() {
    let p = example();
    for path in [
        "/public/file;v=2",
        "/public/50%25A1",
        "/public/a%2Fb",
        "/public/100%25",
    ] {
        assert_eq!(
            allows(&p, "GET", path, None, None),
            Ok("public".into()),
            "{path}"
        );
    }
    // Double escapes whose second decoding reaches another route are refused.
    assert_eq!(
        allows(&p, "GET", "/public/%252e%252e/admin", None, None),
        Err(DenyReason::InvalidRequest)
    );
}

#[test]
fn unmatched_requests_are_authenticated_before_403() {
    let p = Policy::of(
        &Config::from_yaml(
            "issuers: [{issuer: i, jwks_uri: 'https://i/k', audiences: [a]}]\nroutes: [{name: r, methods: [GET], path: {prefix: /api}, require: {token: any}}]\n",
            "test",
        )
        .unwrap(),
    );
    assert_eq!(
        allows(&p, "GET", "/other", None, None),
        Err(DenyReason::MissingToken)
    );
    assert_eq!(
        allows(&p, "GET", "/other", None, Some(&reader())),
        Err(DenyReason::NoRoute)
    );
}

#[test]
fn look_alike_header_names_are_refused() {
    let managed = vec!["x-auth-roles".to_owned(), "x-jwt-payload".to_owned()];
    let view = |names: Vec<&'static str>| RequestView {
        method: "GET",
        host: "h".into(),
        path: "/",
        credential: Err(DenyReason::MissingToken),
        dpop_proof: None,
        scheme: "https",
        authority: "h",
        certificate: "",
        principal: "",
        context: None,
        overrides: Vec::new(),
        forwarded_hosts: Vec::new(),
        rewrites: Vec::new(),
        underscored: names,
        request_id: "",
        traceparent: None,
        tracestate: None,
    };
    assert_eq!(
        refuse_lookalikes(&view(vec!["x_auth_roles"]), &managed),
        Err(DenyReason::InvalidRequest)
    );
    assert_eq!(
        refuse_lookalikes(&view(vec!["X_Auth-Roles"]), &managed),
        Err(DenyReason::InvalidRequest)
    );
    assert_eq!(
        refuse_lookalikes(&view(vec!["x_jwt_payload"]), &managed),
        Err(DenyReason::InvalidRequest)
    );
    assert_eq!(
        refuse_lookalikes(&view(vec!["x_http_method_override"]), &managed),
        Err(DenyReason::InvalidRequest)
    );
    assert_eq!(
        refuse_lookalikes(&view(vec!["x_trace_id"]), &managed),
        Ok(())
    );
}

/// Object ownership (`equals_param`): the parameter must name the caller's object under
/// every reading of the path an upstream may give it.
#[test]
fn ownership_holds_only_when_every_reading_names_the_callers_object() {
    let yaml = "issuers: [{ issuer: https://idp.example.com/, audiences: [api] }]
routes:
  - name: own-orders
    path: { template: '/api/users/{user}/orders/**' }
    require: { claims: [{ claim: oid, equals_param: user }] }
  - name: tenant-reports
    path: { template: '/t/{tenant}/reports' }
    require: { claims: [{ claim: tid, equals_param: '{tenant}', ignore_case: true }] }
";
    let policy = Policy::of(&Config::from_yaml(yaml, "test").unwrap());
    let decide = |path: &str, claims: Value| -> Result<String, DenyReason> {
        let mut map = claims.as_object().cloned().unwrap_or_default();
        map.insert("scp".into(), json!("Orders.Read"));
        let token = VerifiedClaims::new("https://idp.example.com/".into(), map).unwrap();
        let reached = policy.resolve(&Target::plain("GET", "api.example.com", path))?;
        judge(&reached, Some(Ok(&token)))
            .map(|j| j.route.name.to_string())
            .map_err(|(_, deny)| deny.reason)
    };
    let own = |path: &str, oid: &str| decide(path, json!({ "oid": oid }));
    assert_eq!(own("/api/users/U1/orders/7", "U1"), Ok("own-orders".into()));
    assert_eq!(
        own("/api/users/U2/orders/7", "U1"),
        Err(DenyReason::ConditionFailed)
    );
    // Escapes are decoded as frameworks decode a path parameter.
    assert_eq!(
        own("/api/users/%55%31/orders/7", "U1"),
        Ok("own-orders".into())
    );
    assert_eq!(
        own("/api/users/%C3%A91/orders/7", "é1"),
        Ok("own-orders".into())
    );
    // Case-sensitive unless said otherwise.
    assert_eq!(
        own("/api/users/u1/orders/7", "U1"),
        Err(DenyReason::ConditionFailed)
    );
    // A value some upstream reads differently is no one's: ASP.NET drops the trailing
    // dot, others keep it; a double escape is "%55%31" to most and "U1" to a decoder
    // that decodes twice.
    for oid in ["U1", "U1."] {
        assert!(own("/api/users/U1./orders/7", oid).is_err(), "{oid}");
    }
    for oid in ["U1", "%55%31"] {
        assert!(own("/api/users/%2555%2531/orders/7", oid).is_err(), "{oid}");
    }
    // Without the claim, or with an empty one: denied.
    assert_eq!(
        decide("/api/users/U1/orders/7", json!({})),
        Err(DenyReason::ConditionFailed)
    );
    assert_eq!(own("/api/users//orders/7", ""), Err(DenyReason::NoRoute));
    // ignore_case, for GUIDs.
    let tenant = |path: &str| decide(path, json!({ "tid": "AbC-1" }));
    assert_eq!(tenant("/t/abc-1/reports"), Ok("tenant-reports".into()));
    assert_eq!(tenant("/t/abc-2/reports"), Err(DenyReason::ConditionFailed));
}
