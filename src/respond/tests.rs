use super::*;
use crate::binding::SenderBinding;
use crate::pb::auth::OkHttpResponse;
use crate::{
    config::{Config, DEFAULT_IDENTITY_HEADERS},
    policy::Policy,
};
use serde_json::json;
use std::sync::Arc;

const CONFIG: &str = "issuers: [{issuer: i, jwks_uri: 'https://i/k', audiences: [a]}]
routes:
  - {name: r, path: {prefix: /r}, require: {token: any}}
  - {name: own, path: {prefix: /own}, require: {token: any}, identity_headers: {x-own: sub}}
  - {name: open, path: {prefix: /}, anonymous: true}
identity_headers: {x-sub: sub, x-scopes: scopes, x-roles: roles, x-client: client_id, x-level: level, x-groups: groups}
";

/// The route named `name` and the forwarding of `CONFIG` plus `extra` top-level YAML.
fn setup(name: &str, extra: &str) -> (Route, Forwarding) {
    let config = Config::from_yaml(&format!("{CONFIG}{extra}"), "t").unwrap();
    let policy = Policy::of(&config);
    let route = policy
        .routes()
        .iter()
        .find(|r| &*r.name == name)
        .unwrap()
        .clone();
    (route, Forwarding::new(&config))
}

fn claims(value: serde_json::Value) -> VerifiedClaims {
    let serde_json::Value::Object(map) = value else {
        unreachable!("test claims are objects")
    };
    VerifiedClaims::new("https://idp/".into(), map).unwrap()
}

/// The allow as Envoy reads it: its bytes decoded with the generated types.
fn allow(
    route: &Route,
    claims: Option<&VerifiedClaims>,
    forwarding: &Forwarding,
    audit: Option<DenyReason>,
) -> CheckResponse {
    CheckResponse::decode(super::allow(route, claims, forwarding, audit).encoded).unwrap()
}

fn ok(resp: &CheckResponse) -> &OkHttpResponse {
    match &resp.http_response {
        Some(HttpResponse::OkResponse(ok)) => ok,
        other => panic!("expected allow, got {other:?}"),
    }
}

fn set_headers(ok: &OkHttpResponse) -> Vec<(String, String)> {
    let mut v: Vec<_> = ok
        .headers
        .iter()
        .map(|h| {
            let hv = h.header.as_ref().unwrap();
            assert_eq!(
                h.append_action,
                HeaderAppendAction::OverwriteIfExistsOrAdd as i32
            );
            (hv.key.clone(), hv.value.clone())
        })
        .collect();
    v.sort();
    v
}

#[test]
fn allow_sets_present_claims_and_removes_every_other_managed_header() {
    let (route, forwarding) = setup("r", "");
    let c = claims(json!({
        "sub": "user-1", "scp": "A B", "azp": "app", "level": 3, "groups": ["g1", "g2"]
    }));
    let resp = allow(&route, Some(&c), &forwarding, None);
    let ok = ok(&resp);
    assert_eq!(
        set_headers(ok),
        [
            ("x-client".to_owned(), "app".to_owned()),
            ("x-groups".to_owned(), "g1 g2".to_owned()),
            ("x-level".to_owned(), "3".to_owned()),
            ("x-scopes".to_owned(), "A B".to_owned()),
            ("x-sub".to_owned(), "user-1".to_owned()),
        ]
    );
    // x-own is another route's header: a client must not smuggle it here either.
    assert_eq!(ok.headers_to_remove, ["x-roles", "x-own"]);
    assert_eq!(resp.status.unwrap().code, 0);
}

#[test]
fn route_override_replaces_the_global_mapping() {
    let (route, forwarding) = setup("own", "");
    let resp = allow(
        &route,
        Some(&claims(json!({"sub": "u", "scp": "A"}))),
        &forwarding,
        None,
    );
    let ok = ok(&resp);
    assert_eq!(set_headers(ok), [("x-own".to_owned(), "u".to_owned())]);
    assert!(ok.headers_to_remove.contains(&"x-sub".to_owned()));
}

#[test]
fn payload_header_and_authorization_stripping() {
    let (route, forwarding) = setup(
        "r",
        "payload_header: X-JWT-Payload\nstrip_authorization: true\n",
    );
    let c = claims(json!({"sub": "u", "scp": "A"}));
    let resp = allow(&route, Some(&c), &forwarding, None);
    let ok = ok(&resp);
    let payload = set_headers(ok)
        .into_iter()
        .find(|(k, _)| k == "x-jwt-payload")
        .unwrap()
        .1;
    let decoded: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    assert_eq!(decoded, json!({"sub": "u", "scp": "A"}));
    assert!(ok.headers_to_remove.contains(&"authorization".to_owned()));
}

#[test]
fn control_characters_are_never_forwarded() {
    let (route, forwarding) = setup("r", "");
    let c = claims(json!({"sub": "evil\r\nx-admin: true", "scp": "A"}));
    let resp = allow(&route, Some(&c), &forwarding, None);
    let ok = ok(&resp);
    assert!(ok.headers_to_remove.contains(&"x-sub".to_owned()));
    assert!(!set_headers(ok).iter().any(|(k, _)| k == "x-sub"));
}

#[test]
fn anonymous_allow_removes_every_identity_header_and_the_unverified_credential() {
    let config = Config::from_yaml(
        "issuers: [{issuer: i, jwks_uri: 'https://i/k', audiences: [a]}]\nroutes: [{name: r, path: {prefix: /r}, anonymous: true}, {name: f, path: {prefix: /f}, anonymous: true, forward_authorization: true}]",
        "t",
    )
    .unwrap();
    let policy = Policy::of(&config);
    let resp = allow(&policy.routes()[0], None, &Forwarding::new(&config), None);
    let ok = ok(&resp);
    assert!(ok.headers.is_empty());
    let mut expected: Vec<&str> = DEFAULT_IDENTITY_HEADERS.iter().map(|(h, _)| *h).collect();
    expected.push("authorization");
    assert_eq!(ok.headers_to_remove, expected);
    let resp = allow(&policy.routes()[1], None, &Forwarding::new(&config), None);
    assert!(
        !self::ok(&resp)
            .headers_to_remove
            .contains(&"authorization".to_owned()),
        "forward_authorization keeps it"
    );
}

#[test]
fn list_items_holding_a_separator_are_left_out() {
    let (route, forwarding) = setup("r", "");
    let c = claims(json!({
        "sub": "u", "roles": ["Orders.Viewer Admin", "Reader", "a,b"],
        "scp": "A", "groups": ["g 1", "g2"]
    }));
    let resp = allow(&route, Some(&c), &forwarding, None);
    let set = set_headers(ok(&resp));
    assert!(
        set.contains(&("x-roles".to_owned(), "Reader".to_owned())),
        "{set:?}"
    );
    assert!(
        set.contains(&("x-groups".to_owned(), "g2".to_owned())),
        "{set:?}"
    );
}

#[test]
fn scope_strings_are_forwarded_one_space_apart_without_separator_items() {
    let (route, forwarding) = setup("r", "");
    for (scp, header) in [
        ("A B", Some("A B")),
        (" A  B ", Some("A B")),
        ("A,B C", Some("C")),
        ("A\tB", None),
        ("  ", None),
        ("", None),
    ] {
        let c = claims(json!({"sub": "u", "scp": scp}));
        let set = set_headers(ok(&allow(&route, Some(&c), &forwarding, None)));
        let scopes = set.iter().find(|(name, _)| name == "x-scopes");
        assert_eq!(scopes.map(|(_, v)| v.as_str()), header, "{scp:?}");
    }
}

#[test]
fn dynamic_metadata_carries_identity_claims_and_audit() {
    let (route, forwarding) = setup(
        "r",
        "metadata_claims: true\ndynamic_metadata: [route, subject, tenant_id]\n",
    );
    let c = claims(json!({"sub": "u", "tid": "t", "scp": "A", "n": 5, "nested": {"x": [true]}}));
    let resp = allow(
        &route,
        Some(&c),
        &forwarding,
        Some(DenyReason::InsufficientPermission),
    );
    let fields = resp.dynamic_metadata.unwrap().fields;
    let text = |k: &str| match &fields[k].kind {
        Some(Kind::StringValue(s)) => s.clone(),
        other => panic!("{k}: {other:?}"),
    };
    assert_eq!(text("route"), "r");
    assert_eq!(text("subject"), "u");
    assert_eq!(text("tenant_id"), "t");
    assert_eq!(text("audit_would_deny"), "insufficient_permission");
    let Some(Kind::StructValue(claims)) = &fields["claims"].kind else {
        panic!("claims is a struct")
    };
    assert_eq!(claims.fields["n"].kind, Some(Kind::NumberValue(5.0)));
    assert!(matches!(
        claims.fields["nested"].kind,
        Some(Kind::StructValue(_))
    ));
    let (route, forwarding) = setup("r", "");
    let fields = allow(&route, Some(&c), &forwarding, None)
        .dynamic_metadata
        .unwrap()
        .fields;
    assert!(
        !fields.contains_key("claims"),
        "the whole payload is opt-in"
    );
    assert!(fields.contains_key("tenant_id"));
}

#[test]
fn deny_carries_status_challenge_and_problem_body() {
    let resp = deny(
        &DenyReason::Expired.into(),
        "api",
        &SenderBinding::new(&Default::default(), None),
        Some("orders"),
    );
    let Some(HttpResponse::DeniedResponse(denied)) = &resp.http_response else {
        panic!("expected deny");
    };
    assert_eq!(denied.status.as_ref().unwrap().code, 401);
    let challenge = denied
        .headers
        .iter()
        .find(|h| h.header.as_ref().unwrap().key == "www-authenticate")
        .unwrap();
    assert_eq!(
        challenge.header.as_ref().unwrap().value,
        "Bearer realm=\"api\", error=\"invalid_token\", error_description=\"The access token expired\""
    );
    let body: serde_json::Value = serde_json::from_str(&denied.body).unwrap();
    assert_eq!(body["reason"], "expired");
    assert_eq!(body["status"], 401);
    assert_eq!(
        resp.status.unwrap().code,
        tonic::Code::Unauthenticated as i32
    );
}

#[test]
fn challenges_follow_rfc_6750() {
    let none = www_authenticate(&DenyReason::MissingToken.into(), "r", "ES256").unwrap();
    assert_eq!(none, "Bearer realm=\"r\"");
    let scope = www_authenticate(
        &Deny {
            required_scopes: Some(Arc::from("Orders.Read Orders.ReadWrite")),
            ..DenyReason::InsufficientPermission.into()
        },
        "r",
        "ES256",
    )
    .unwrap();
    assert!(scope.contains("error=\"insufficient_scope\""), "{scope}");
    assert!(
        scope.ends_with("scope=\"Orders.Read Orders.ReadWrite\""),
        "{scope}"
    );
    let no_route = www_authenticate(&DenyReason::NoRoute.into(), "r", "ES256").unwrap();
    assert!(
        no_route.contains("error=\"insufficient_scope\""),
        "{no_route}"
    );
    assert_eq!(
        www_authenticate(&DenyReason::InvalidRequest.into(), "r", "ES256"),
        None
    );
    assert_eq!(
        www_authenticate(&DenyReason::KeysUnavailable.into(), "r", "ES256"),
        None
    );
}

#[test]
fn step_up_challenges_carry_their_parameters_in_either_scheme() {
    let step_up = Deny {
        step_up: Some("acr_values=\"urn:mfa urn:phr\", max_age=600".to_owned()),
        ..DenyReason::InsufficientUserAuthentication.into()
    };
    assert_eq!(
        www_authenticate(&step_up, "r", "ES256").unwrap(),
        "Bearer realm=\"r\", error=\"insufficient_user_authentication\", \
         error_description=\"A stronger or more recent sign-in is required for this request\", \
         acr_values=\"urn:mfa urn:phr\", max_age=600"
    );
    // RFC 9449 §7.1: a DPoP request's challenge uses the DPoP scheme, same parameters.
    let dpop = www_authenticate(&step_up.with_dpop(true), "r", "ES256").unwrap();
    assert!(
        dpop.starts_with("DPoP realm=\"r\", error=\"insufficient_user_authentication\""),
        "{dpop}"
    );
    assert!(
        dpop.ends_with("acr_values=\"urn:mfa urn:phr\", max_age=600, algs=\"ES256\""),
        "{dpop}"
    );
}

#[test]
fn keys_unavailable_asks_to_retry() {
    let resp = deny(
        &DenyReason::KeysUnavailable.into(),
        "r",
        &SenderBinding::new(&Default::default(), None),
        None,
    );
    let Some(HttpResponse::DeniedResponse(denied)) = &resp.http_response else {
        panic!("expected deny");
    };
    assert_eq!(denied.status.as_ref().unwrap().code, 503);
    assert!(denied.headers.iter().any(|h| {
        let h = h.header.as_ref().unwrap();
        h.key == "retry-after" && h.value == RETRY_AFTER_SECONDS
    }));
}

#[test]
fn dpop_requests_and_reasons_get_rfc_9449_challenges() {
    let proof =
        www_authenticate(&DenyReason::DpopProofReplayed.into(), "r", "ES256 PS256").unwrap();
    assert_eq!(
        proof,
        "DPoP realm=\"r\", error=\"invalid_dpop_proof\", error_description=\"The DPoP proof \
         was already used\", algs=\"ES256 PS256\""
    );
    // A token problem on a request made with the DPoP scheme: a DPoP challenge too.
    let expired = www_authenticate(
        &Deny::from(DenyReason::Expired).with_dpop(true),
        "r",
        "ES256",
    )
    .unwrap();
    assert!(
        expired.starts_with("DPoP realm=\"r\", error=\"invalid_token\""),
        "{expired}"
    );
    assert!(expired.ends_with("algs=\"ES256\""), "{expired}");
    // Certificate binding problems are bearer ones (RFC 8705 §3).
    let certificate =
        www_authenticate(&DenyReason::CertificateMismatch.into(), "r", "ES256").unwrap();
    assert!(certificate.starts_with("Bearer "), "{certificate}");
    assert!(!certificate.contains("algs"), "{certificate}");
}

#[test]
fn dynamic_metadata_carries_only_the_fields_asked_for() {
    let c = claims(json!({"sub": "s", "tid": "t", "azp": "app", "scp": "A", "cnf": {"jkt": "k"}}));
    let keys = |extra: &str| {
        let (route, forwarding) = setup("r", extra);
        let mut keys: Vec<String> = allow(&route, Some(&c), &forwarding, None)
            .dynamic_metadata
            .map(|m| m.fields.into_keys().collect())
            .unwrap_or_default();
        keys.sort();
        keys
    };
    assert_eq!(
        keys(""),
        ["client_id", "route", "tenant_id"],
        "by default what the shipped access logs read"
    );
    assert_eq!(
        keys(&format!(
            "dynamic_metadata: [{}]\n",
            MetadataFields::NAMES.join(", ")
        )),
        [
            "binding",
            "binding_thumbprint",
            "client_id",
            "issuer",
            "roles",
            "route",
            "scopes",
            "subject",
            "tenant_id"
        ]
    );
    assert_eq!(
        keys("dynamic_metadata: [route, client_id]\n"),
        ["client_id", "route"]
    );
    assert!(
        keys("dynamic_metadata: []\n").is_empty(),
        "no metadata at all"
    );
    let problems =
        match Config::from_yaml(&format!("{CONFIG}dynamic_metadata: [route, claims]\n"), "t") {
            Err(crate::config::ConfigError::Invalid { problems, .. }) => problems,
            other => panic!("expected a refusal, got {other:?}"),
        };
    assert_eq!(problems[0].field, "dynamic_metadata[1]");
}

#[tokio::test]
async fn kept_denies_are_the_denies_built_for_their_route_and_kind() {
    let config = Config::from_yaml(CONFIG, "t").unwrap();
    let state = crate::state::AppState::offline(&config).unwrap();
    let engine = state.engine();
    let route = |name: &str| {
        engine
            .policies
            .all()
            .flat_map(|set| set.policy.routes())
            .find(|r| &*r.name == name)
            .unwrap()
    };
    let scoped = Deny {
        required_scopes: Some("Orders.Read".into()),
        ..DenyReason::InsufficientPermission.into()
    };
    let cases = [
        (Some(route("r")), Deny::from(DenyReason::Expired)),
        (Some(route("own")), Deny::from(DenyReason::Expired)),
        (None, Deny::from(DenyReason::Expired)),
        (
            Some(route("r")),
            Deny::from(DenyReason::Expired).with_dpop(true),
        ),
        (Some(route("r")), scoped),
    ];
    // Twice round: the second answers come from what the first kept.
    for round in 0..2 {
        for (route, refused) in &cases {
            let built = deny(
                refused,
                &engine.realm,
                &engine.binding,
                route.map(|r| &*r.name),
            );
            let Answer::Encoded(sent) = denied(&engine, refused, *route, true) else {
                panic!("a deny is sent encoded");
            };
            assert_eq!(CheckResponse::decode(sent).unwrap(), built, "round {round}");
        }
        assert_eq!(engine.kept_denies.count(), cases.len());
    }
}
