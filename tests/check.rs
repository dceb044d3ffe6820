//! Check decisions over real gRPC against portcullis served in-process, with keys fetched
//! over HTTP from a real JWKS server on loopback.

mod common;

use common::{World, allowed, check_request, denied, with_header};
use jsonwebtoken::{Algorithm, EncodingKey, Header, get_current_timestamp};
use portcullis::{
    demo::{Grant, SigningKey, tamper},
    pb::{
        auth::{CheckRequest, attribute_context::HttpRequest},
        core::{HeaderMap, HeaderValue},
    },
};
use serde_json::json;

const READ: Grant<'static> = Grant::Scopes("Orders.Read");

#[tokio::test]
async fn valid_token_is_allowed_with_identity_headers() {
    let world = World::start().await.ready().await;
    let response = world
        .bearer("GET", "/api/orders/42?expand=lines", &world.token(READ))
        .await;
    let (set, removed) = allowed(&response);
    assert_eq!(set["x-auth-subject"], "demo-subject-AAbbCC");
    assert_eq!(
        set["x-auth-object-id"],
        "11111111-2222-3333-4444-555555555555"
    );
    assert_eq!(set["x-auth-tenant-id"], portcullis::demo::DEMO_TENANT);
    assert_eq!(set["x-auth-client-id"], portcullis::demo::DEMO_CLIENT);
    assert_eq!(set["x-auth-scopes"], "Orders.Read");
    assert_eq!(set["x-auth-issuer"], world.issuer.issuer());
    assert_eq!(
        removed,
        [
            "x-auth-roles",
            "x-auth-binding",
            "x-auth-binding-thumbprint"
        ],
        "a header with no value is removed, not left to the client"
    );
}

#[tokio::test]
async fn app_role_satisfies_scope_or_role_routes() {
    let world = World::start().await.ready().await;
    let token = world.token(Grant::Roles(&["Orders.Read.All"]));
    let (set, removed) = allowed(&world.bearer("GET", "/api/orders", &token).await);
    assert_eq!(set["x-auth-roles"], "Orders.Read.All");
    assert!(removed.contains(&"x-auth-scopes".to_owned()));
    let denied = denied(&world.bearer("POST", "/api/orders", &token).await);
    assert_eq!(
        (denied.status, denied.reason.as_str()),
        (403, "insufficient_permission")
    );
}

#[tokio::test]
async fn anonymous_route_needs_no_token_and_strips_identity_headers() {
    let world = World::start().await.ready().await;
    let (set, removed) = allowed(&world.check("GET", "/healthz", None).await);
    assert!(set.is_empty());
    assert_eq!(removed.len(), 10);
    assert!(
        removed.contains(&"authorization".to_owned()),
        "an anonymous route forwards no unverified credential"
    );
    // Dot segments cannot borrow the anonymous route to reach a protected one.
    let denied = denied(&world.check("GET", "/healthz/../api/orders", None).await);
    assert_eq!(
        (denied.status, denied.reason.as_str()),
        (401, "missing_token")
    );
}

#[tokio::test]
async fn missing_or_malformed_credentials_are_401_with_rfc6750_challenges() {
    let world = World::start().await.ready().await;
    let cases: &[(Option<&str>, &str, Option<&str>)] = &[
        (None, "missing_token", None),
        (Some("Basic dXNlcjpwYXNz"), "unsupported_scheme", None),
        (
            Some("Bearer a b"),
            "malformed_authorization",
            Some("invalid_request"),
        ),
        (
            Some("Bearer"),
            "malformed_authorization",
            Some("invalid_request"),
        ),
        (
            Some("Bearer not-a-jwt"),
            "malformed_token",
            Some("invalid_token"),
        ),
        (
            Some("Bearer a.b.c"),
            "malformed_token",
            Some("invalid_token"),
        ),
    ];
    for (header, reason, error) in cases {
        let d = denied(&world.check("GET", "/api/orders", *header).await);
        assert_eq!(d.status, 401, "{header:?}");
        assert_eq!(d.reason, *reason, "{header:?}");
        let challenge = d.challenge.unwrap();
        assert!(
            challenge.starts_with("Bearer realm=\"portcullis-demo\""),
            "{challenge}"
        );
        match error {
            None => assert!(!challenge.contains("error="), "{challenge}"),
            Some(code) => assert!(
                challenge.contains(&format!("error=\"{code}\"")),
                "{challenge}"
            ),
        }
    }
}

#[tokio::test]
async fn lacking_permission_is_403_naming_the_scopes() {
    let world = World::start().await.ready().await;
    let d = denied(
        &world
            .bearer("DELETE", "/api/orders/1", &world.token(READ))
            .await,
    );
    assert_eq!(
        (d.status, d.reason.as_str()),
        (403, "insufficient_permission")
    );
    let challenge = d.challenge.unwrap();
    assert!(
        challenge.contains("error=\"insufficient_scope\""),
        "{challenge}"
    );
    assert!(
        challenge.ends_with("scope=\"Orders.ReadWrite\""),
        "{challenge}"
    );

    let similar = world.token(Grant::Scopes("Orders.ReadWriteAll Orders.Read.All"));
    let d = denied(&world.bearer("GET", "/api/orders/1", &similar).await);
    assert_eq!(d.reason, "insufficient_permission");
}

#[tokio::test]
async fn unmatched_routes_are_denied_by_default() {
    let world = World::start().await.ready().await;
    for (method, path) in [
        ("GET", "/admin"),
        ("GET", "/api/ordersX"),
        ("OPTIONS", "/api/orders"),
    ] {
        let d = denied(&world.bearer(method, path, &world.token(READ)).await);
        assert_eq!(
            (d.status, d.reason.as_str()),
            (403, "no_route"),
            "{method} {path}"
        );
        assert_eq!(
            d.challenge.as_deref(),
            Some(
                "Bearer realm=\"portcullis-demo\", error=\"insufficient_scope\", error_description=\"No access rule allows this request\""
            )
        );
        // An unauthenticated caller learns nothing about which routes exist.
        let d = denied(&world.check(method, path, None).await);
        assert_eq!((d.status, d.reason.as_str()), (401, "missing_token"));
        assert_eq!(
            d.challenge.as_deref(),
            Some("Bearer realm=\"portcullis-demo\"")
        );
        let forged = portcullis::demo::tamper(&world.token(READ), world.issuer.issuer());
        let d = denied(&world.bearer(method, path, &forged).await);
        assert_eq!((d.status, d.reason.as_str()), (401, "bad_signature"));
    }
}

#[tokio::test]
async fn each_invalid_token_gets_its_typed_reason() {
    let world = World::start().await.ready().await;
    let now = get_current_timestamp() as i64;
    let with = |change: &dyn Fn(&mut serde_json::Value)| {
        let mut claims = world.claims(READ);
        change(&mut claims);
        world.sign(&claims)
    };
    let other_key = SigningKey::rsa("key-1", Algorithm::RS256).unwrap();
    let mut none_header = json!({"alg": "none", "typ": "JWT"});
    let alg_none = format!(
        "{}.",
        with_header(&world.token(READ), &none_header)
            .rsplit_once('.')
            .unwrap()
            .0
    );
    none_header["alg"] = json!("NoNe");
    let alg_none_case = with_header(&world.token(READ), &none_header);
    let hmac_confusion = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &world.claims(READ),
        &EncodingKey::from_secret(b"the RSA public key used as an HMAC secret"),
    )
    .unwrap();
    let mut crit = Header::new(Algorithm::RS256);
    crit.kid = Some("key-1".into());
    crit.crit = Some(vec!["exp".into()]);

    let cases: Vec<(&str, String)> = vec![
        ("expired", with(&|c| c["exp"] = json!(now - 600))),
        ("not_yet_valid", with(&|c| c["nbf"] = json!(now + 600))),
        (
            "unknown_issuer",
            with(&|c| c["iss"] = json!("https://evil.example/")),
        ),
        (
            "wrong_audience",
            with(&|c| c["aud"] = json!("api://another-api")),
        ),
        (
            "wrong_audience",
            with(&|c| c["aud"] = json!(["api://a", "api://b"])),
        ),
        (
            "missing_claim",
            with(&|c| {
                c.as_object_mut().unwrap().remove("exp");
            }),
        ),
        (
            "missing_claim",
            with(&|c| {
                c.as_object_mut().unwrap().remove("aud");
            }),
        ),
        ("malformed_token", with(&|c| c["exp"] = json!("tomorrow"))),
        (
            "not_access_token",
            with(&|c| {
                c.as_object_mut().unwrap().remove("scp");
            }),
        ),
        (
            "bad_signature",
            tamper(&world.token(READ), world.issuer.issuer()),
        ),
        (
            "bad_signature",
            other_key.sign(&world.claims(READ)).unwrap(),
        ),
        ("malformed_token", alg_none),
        ("malformed_token", alg_none_case),
        ("disallowed_algorithm", hmac_confusion),
        (
            "malformed_token",
            world
                .key
                .sign_with_header(&crit, &world.claims(READ))
                .unwrap(),
        ),
    ];
    for (reason, token) in cases {
        let d = denied(&world.bearer("GET", "/api/orders", &token).await);
        assert_eq!(d.reason, reason, "token {token}");
        assert_eq!(d.status, 401);
        assert!(d.challenge.unwrap().contains("error=\"invalid_token\""));
    }

    let multi_audience = with(&|c| c["aud"] = json!(["api://other", "api://portcullis-demo"]));
    allowed(&world.bearer("GET", "/api/orders", &multi_audience).await);
    let within_leeway = with(&|c| c["exp"] = json!(now - 30));
    allowed(&world.bearer("GET", "/api/orders", &within_leeway).await);
}

#[tokio::test]
async fn every_supported_algorithm_verifies_with_the_right_key_only() {
    let world = World::start().await;
    let keys = [
        SigningKey::rsa("ps", Algorithm::PS256).unwrap(),
        SigningKey::es256("es").unwrap(),
        SigningKey::ed25519("ed").unwrap(),
    ];
    world
        .issuer
        .publish(&[&world.key, &keys[0], &keys[1], &keys[2]]);
    let world = world.ready().await;
    for key in &keys {
        let token = key.sign(&world.claims(READ)).unwrap();
        allowed(&world.bearer("GET", "/api/orders", &token).await);
    }
    // An ES256 token naming the RSA key's kid: the key cannot verify that algorithm.
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some("key-1".into());
    let confused = keys[1]
        .sign_with_header(&header, &world.claims(READ))
        .unwrap();
    assert_eq!(
        denied(&world.bearer("GET", "/api/orders", &confused).await).reason,
        "key_mismatch"
    );
}

#[tokio::test]
async fn algorithms_outside_the_issuer_allow_list_are_refused() {
    let world = World::start_with(|y| y.replace("[RS256, PS256, ES256, EdDSA]", "[RS256]"))
        .await
        .ready()
        .await;
    let es = SigningKey::es256("es").unwrap();
    world.issuer.publish(&[&world.key, &es]);
    let token = es.sign(&world.claims(READ)).unwrap();
    let d = denied(&world.bearer("GET", "/api/orders", &token).await);
    assert_eq!(d.reason, "disallowed_algorithm");
}

#[tokio::test]
async fn token_without_kid_is_tried_against_fitting_keys() {
    let world = World::start().await.ready().await;
    let header = Header::new(Algorithm::RS256);
    let token = world
        .key
        .sign_with_header(&header, &world.claims(READ))
        .unwrap();
    allowed(&world.bearer("GET", "/api/orders", &token).await);
    let stranger = SigningKey::rsa("x", Algorithm::RS256).unwrap();
    let token = stranger
        .sign_with_header(&header, &world.claims(READ))
        .unwrap();
    assert_eq!(
        denied(&world.bearer("GET", "/api/orders", &token).await).reason,
        "bad_signature"
    );
}

#[tokio::test]
async fn raw_header_map_form_is_understood_and_duplicates_refused() {
    let world = World::start().await.ready().await;
    let value = format!("Bearer {}", world.token(READ));
    let raw = |count: usize| {
        let mut request = check_request("GET", "/api/orders", &[]);
        let http: &mut HttpRequest = request
            .attributes
            .as_mut()
            .and_then(|a| a.request.as_mut())
            .and_then(|r| r.http.as_mut())
            .unwrap();
        http.header_map = Some(HeaderMap {
            headers: (0..count)
                .map(|_| HeaderValue {
                    key: "authorization".into(),
                    value: String::new(),
                    raw_value: value.clone().into_bytes(),
                })
                .collect(),
        });
        request
    };
    allowed(&world.check_request(raw(1)).await);
    let d = denied(&world.check_request(raw(2)).await);
    assert_eq!(
        (d.status, d.reason.as_str()),
        (401, "malformed_authorization")
    );
    // Envoy joins repeated headers with ',' in the `headers` map.
    let joined = format!("{value},{value}");
    let d = denied(&world.check("GET", "/api/orders", Some(&joined)).await);
    assert_eq!(d.reason, "malformed_authorization");
}

#[tokio::test]
async fn request_without_http_attributes_is_denied_not_errored() {
    let world = World::start().await.ready().await;
    let d = denied(&world.check_request(CheckRequest::default()).await);
    assert_eq!((d.status, d.reason.as_str()), (400, "invalid_request"));
    let d = denied(&world.check("GET", "/api/orders%zz", None).await);
    assert_eq!(d.reason, "invalid_request");
}

#[tokio::test]
async fn audit_mode_allows_what_it_would_deny_and_counts_it() {
    let world = World::start_with(|y| {
        y.replace(
            "  - name: orders-write\n",
            "  - name: orders-write\n    audit: true\n",
        )
    })
    .await
    .ready()
    .await;
    let response = world
        .bearer("DELETE", "/api/orders/1", &world.token(READ))
        .await;
    let (set, _) = allowed(&response);
    assert_eq!(
        set["x-auth-subject"], "demo-subject-AAbbCC",
        "identity still forwarded"
    );
    let metadata = response.dynamic_metadata.unwrap().fields;
    assert_eq!(
        metadata["audit_would_deny"].kind,
        Some(prost_types::value::Kind::StringValue(
            "insufficient_permission".into()
        ))
    );
    let (set, _) = allowed(&world.check("POST", "/api/orders", None).await);
    assert!(set.is_empty(), "no token: allowed, but with no identity");
    let (_, metrics) = world.admin("/metrics").await;
    for reason in ["insufficient_permission", "missing_token"] {
        let line = format!(
            "portcullis_audit_would_deny_total{{route=\"orders-write\",reason=\"{reason}\"}} 1"
        );
        assert!(metrics.contains(&line), "{line} missing in\n{metrics}");
    }
    // Enforced routes stay enforced.
    assert_eq!(
        denied(&world.check("GET", "/api/orders", None).await).reason,
        "missing_token"
    );
}

#[tokio::test]
async fn a_repeated_token_is_answered_per_route_and_per_configuration() {
    let world = World::start().await.ready().await;
    let token = world.token(Grant::Scopes("Orders.Read Orders.ReadWrite"));
    let first = world.bearer("GET", "/api/orders/1", &token).await;
    assert_eq!(first, world.bearer("GET", "/api/orders/1", &token).await);
    let route = |response: &portcullis::pb::auth::CheckResponse| {
        let metadata = response.dynamic_metadata.as_ref().unwrap();
        match &metadata.fields["route"].kind {
            Some(prost_types::value::Kind::StringValue(route)) => route.clone(),
            other => panic!("route metadata: {other:?}"),
        }
    };
    assert_eq!(route(&first), "orders-read");
    let write = world.bearer("POST", "/api/orders", &token).await;
    assert_eq!(
        route(&write),
        "orders-write",
        "another route, its own answer"
    );

    // A reloaded configuration answers with its own headers, for the same token.
    let yaml = format!(
        "{}identity_headers:\n  x-caller: sub\n",
        portcullis::demo::demo_config_yaml(&world.issuer, "127.0.0.1:0".parse().unwrap())
    );
    let config = portcullis::config::Config::from_yaml(&yaml, "reloaded").unwrap();
    world.state.reload(&config).unwrap();
    let (set, removed) = allowed(&world.bearer("GET", "/api/orders/1", &token).await);
    assert_eq!(set["x-caller"], "demo-subject-AAbbCC");
    assert!(!set.contains_key("x-auth-subject"), "{set:?}");
    assert!(removed.is_empty(), "{removed:?}");
}

#[tokio::test]
async fn a_caller_reaches_only_its_own_objects() {
    // OWASP API1 (broken object-level authorisation): `{user}` must be the caller's oid.
    let world = World::start_with(|yaml| {
        format!(
            "{yaml}  - name: my-orders\n    methods: [GET]\n    path: {{ template: '/users/{{user}}/orders/**' }}\n    require:\n      scopes: [Orders.Read]\n      claims: [{{ claim: oid, equals_param: user }}]\n"
        )
    })
    .await
    .ready()
    .await;
    let token = world.token(READ);
    let oid = world.claims(READ)["oid"].as_str().unwrap().to_owned();
    allowed(
        &world
            .bearer("GET", &format!("/users/{oid}/orders/7"), &token)
            .await,
    );
    // Another user's orders, and the caller's id as some upstream reads it but others do
    // not (a trailing dot ASP.NET drops, a double escape): denied.
    for path in [
        "/users/99999999-2222-3333-4444-555555555555/orders/7".to_owned(),
        format!("/users/{oid}./orders/7"),
        format!("/users/{oid}%252e/orders/7"),
    ] {
        let response = world.bearer("GET", &path, &token).await;
        let deny = denied(&response);
        assert_eq!(deny.status, 403, "{path}");
        assert_eq!(deny.reason, "condition_failed", "{path}");
    }
    // Escapes of ordinary characters are the same object.
    let escaped = oid.replacen('1', "%31", 1);
    allowed(
        &world
            .bearer("GET", &format!("/users/{escaped}/orders/7"), &token)
            .await,
    );
}
