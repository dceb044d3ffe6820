//! Every token read as its issuer meant it, over real gRPC with keys from a real JWKS
//! server on loopback: key sets shared by several issuers (rotation seen by all, one
//! fetch), ID / refresh / logout tokens refused whatever they carry, JOSE `typ`, `iat`
//! and `exp` boundaries, claim shapes, the calling app under every claim name, and a
//! challenge on every 401 and 403.

mod common;

use common::{World, allowed, denied};
use jsonwebtoken::{Algorithm, Header, get_current_timestamp};
use portcullis::{
    demo::{DEMO_AUDIENCE, SigningKey},
    pb::auth::{CheckResponse, check_response::HttpResponse},
};
use serde_json::{Value, json};

const ISSUERS: usize = 5;

fn outcome(response: &CheckResponse) -> String {
    match &response.http_response {
        Some(HttpResponse::OkResponse(_)) => "allow".into(),
        _ => denied(response).reason,
    }
}

/// Five issuers (as Entra's tenants, or its v1 and v2 issuers) on the demo issuer's one
/// JWKS URL, plus `extra` issuer settings.
fn shared_jwks(issuer: &portcullis::demo::DemoIssuer, extra: &str) -> String {
    let mut yaml = String::from("jwks:\n  unknown_kid_cooldown: 30s\nissuers:\n");
    for n in 0..ISSUERS {
        yaml.push_str(&format!(
            "  - issuer: https://tenant-{n}.example/\n    jwks_uri: {}\n    audiences: [{DEMO_AUDIENCE}]\n{extra}",
            issuer.jwks_uri()
        ));
    }
    yaml.push_str(
        "routes:\n  - name: orders\n    path: { prefix: /api/orders }\n    require: { scopes: [Orders.Read] }\n",
    );
    yaml
}

fn claims_for(n: usize) -> Value {
    let now = get_current_timestamp();
    json!({
        "iss": format!("https://tenant-{n}.example/"), "aud": DEMO_AUDIENCE,
        "scp": "Orders.Read", "sub": "u", "azp": "app", "iat": now, "exp": now + 600,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issuers_sharing_a_key_set_see_a_rotation_together_with_one_fetch() {
    let world = World::start_config(|i| shared_jwks(i, ""))
        .await
        .ready()
        .await;
    assert_eq!(
        world.issuer.jwks_fetches(),
        1,
        "one fetch serves five issuers"
    );
    let old: Vec<String> = (0..ISSUERS).map(|n| world.sign(&claims_for(n))).collect();
    for token in &old {
        assert_eq!(
            outcome(&world.bearer("GET", "/api/orders", token).await),
            "allow"
        );
    }
    let status = world.state.engine().verifier.key_status();
    assert_eq!(status.len(), ISSUERS, "readiness reports every issuer");

    // The identity provider rotates: key-2 signs, key-1 is withdrawn.
    let new_key = SigningKey::rsa("key-2", Algorithm::RS256).unwrap();
    world.issuer.publish(&[&new_key]);
    let new: Vec<String> = (0..ISSUERS)
        .map(|n| new_key.sign(&claims_for(n)).unwrap())
        .collect();
    // Mid-traffic: every issuer's new tokens at once; one fetch serves them all.
    let checks = new
        .iter()
        .map(|token| world.bearer("GET", "/api/orders", token));
    for response in futures_util::future::join_all(checks).await {
        assert_eq!(outcome(&response), "allow");
    }
    assert_eq!(
        world.issuer.jwks_fetches(),
        2,
        "the rotation cost one fetch"
    );
    // The retired key verifies for no issuer, cached verifications included.
    for token in &old {
        assert_eq!(
            outcome(&world.bearer("GET", "/api/orders", token).await),
            "unknown_kid"
        );
    }
    let fresh_old = world.sign(&claims_for(3));
    assert_eq!(
        outcome(&world.bearer("GET", "/api/orders", &fresh_old).await),
        "unknown_kid"
    );
    assert_eq!(
        world.issuer.jwks_fetches(),
        2,
        "inside the cooldown: no more fetches"
    );
}

#[tokio::test]
async fn id_refresh_and_logout_tokens_are_refused_whatever_they_carry() {
    let world = World::start().await.ready().await;
    let base = world.claims(portcullis::demo::Grant::Roles(&["Orders.Read.All"]));
    // Entra ID token of a user assigned an app role: roles, our audience, and a nonce.
    let mut entra_id = base.clone();
    entra_id["nonce"] = json!("n-0S6_WzA2Mj");
    let mut hashed = base.clone();
    hashed["at_hash"] = json!("77QmUPtjPfzWtF2AnpK9RQ");
    let mut code_hash = world.claims(portcullis::demo::Grant::Scopes("Orders.Read"));
    code_hash["c_hash"] = json!("LDktKdoQak3Pk0cnXxCltA");
    let keycloak = |typ: &str| {
        let mut claims = world.claims(portcullis::demo::Grant::Scopes("Orders.Read"));
        claims["typ"] = json!(typ);
        claims
    };
    for claims in [
        entra_id,
        hashed,
        code_hash,
        keycloak("ID"),
        keycloak("Refresh"),
        keycloak("Logout"),
    ] {
        let d = denied(
            &world
                .bearer("GET", "/api/orders", &world.sign(&claims))
                .await,
        );
        assert_eq!(
            (d.status, d.reason.as_str()),
            (401, "not_access_token"),
            "{claims}"
        );
        assert!(d.challenge.unwrap().contains("invalid_token"));
    }
    let bearer = keycloak("Bearer");
    assert_eq!(
        outcome(
            &world
                .bearer("GET", "/api/orders", &world.sign(&bearer))
                .await
        ),
        "allow"
    );
}

#[tokio::test]
async fn jose_typ_iat_and_exp_are_read_strictly() {
    let world = World::start().await.ready().await;
    let claims = world.claims(portcullis::demo::Grant::Scopes("Orders.Read"));
    let with_typ = |typ: Option<&str>| {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some("key-1".into());
        header.typ = typ.map(str::to_owned);
        world.key.sign_with_header(&header, &claims).unwrap()
    };
    for typ in [
        None,
        Some("JWT"),
        Some("at+jwt"),
        Some("application/AT+JWT"),
    ] {
        assert_eq!(
            outcome(&world.bearer("GET", "/api/orders", &with_typ(typ)).await),
            "allow",
            "{typ:?}"
        );
    }
    for typ in ["dpop+jwt", "logout+jwt", "secevent+jwt"] {
        assert_eq!(
            outcome(
                &world
                    .bearer("GET", "/api/orders", &with_typ(Some(typ)))
                    .await
            ),
            "wrong_token_type",
            "{typ}"
        );
    }
    // The demo issuer's leeway is the default 60 s.
    let now = get_current_timestamp() as i64;
    let with = |change: &dyn Fn(&mut Value)| {
        let mut c = claims.clone();
        change(&mut c);
        world.sign(&c)
    };
    let cases = [
        (with(&|c| c["iat"] = json!(now + 3600)), "not_yet_valid"),
        (with(&|c| c["iat"] = json!(now + 30)), "allow"),
        (with(&|c| c["exp"] = json!(now - 60)), "expired"),
        (with(&|c| c["exp"] = json!(now - 50)), "allow"),
    ];
    for (token, expected) in cases {
        assert_eq!(
            outcome(&world.bearer("GET", "/api/orders", &token).await),
            expected
        );
    }
}

#[tokio::test]
async fn claim_shapes_never_split_a_role_or_widen_a_scope() {
    let world = World::start_with(|yaml| {
        yaml.replace(
            "routes:\n",
            "routes:\n  - name: admin\n    path: { prefix: /admin }\n    require_any: [{ roles: [Admin] }, { scopes: [Orders.Read] }]\n",
        )
    })
    .await
    .ready()
    .await;
    let mut one_role = world.claims(portcullis::demo::Grant::Roles(&[]));
    one_role["roles"] = json!("Orders.Viewer Admin");
    let d = denied(&world.bearer("GET", "/admin", &world.sign(&one_role)).await);
    assert_eq!(
        (d.status, d.reason.as_str()),
        (403, "insufficient_permission")
    );
    let mut tabbed = world.claims(portcullis::demo::Grant::Scopes("User.Read\tOrders.Read"));
    tabbed["scp"] = json!("User.Read\tOrders.Read");
    let d = denied(&world.bearer("GET", "/admin", &world.sign(&tabbed)).await);
    assert_eq!(d.reason, "insufficient_permission");
    let mut conflicting = world.claims(portcullis::demo::Grant::Scopes("Orders.Read"));
    conflicting["appid"] = json!("another-app");
    let d = denied(
        &world
            .bearer("GET", "/admin", &world.sign(&conflicting))
            .await,
    );
    assert_eq!((d.status, d.reason.as_str()), (401, "malformed_token"));
}

#[tokio::test]
async fn rfc_9068_client_id_is_the_calling_app_for_allow_lists_and_headers() {
    let world = World::start_with(|yaml| {
        yaml.replace(
            "    algorithms:",
            "    allowed_clients: [svc-reporting, svc-billing]\n    require_typ: [at+jwt]\n    algorithms:",
        )
        .replace(
            "routes:\n",
            "routes:\n  - name: billing\n    path: { prefix: /billing }\n    require: { clients: [svc-billing], scopes: [Orders.Read] }\n",
        )
    })
    .await
    .ready()
    .await;
    // An RFC 9068 client-credentials token: client_id names the caller, no azp/appid.
    let rfc9068 = |client: &str| {
        let now = get_current_timestamp();
        let claims = json!({
            "iss": world.issuer.issuer(), "aud": DEMO_AUDIENCE, "sub": client,
            "client_id": client, "scope": "Orders.Read", "iat": now, "exp": now + 600,
            "jti": "j-1",
        });
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some("key-1".into());
        header.typ = Some("at+jwt".into());
        world.key.sign_with_header(&header, &claims).unwrap()
    };
    let (headers, _) = allowed(
        &world
            .bearer("GET", "/api/orders", &rfc9068("svc-reporting"))
            .await,
    );
    assert_eq!(headers["x-auth-client-id"], "svc-reporting");
    assert_eq!(
        outcome(
            &world
                .bearer("GET", "/billing", &rfc9068("svc-billing"))
                .await
        ),
        "allow"
    );
    // The route names another caller: 403 with a challenge naming the route's scopes.
    let d = denied(
        &world
            .bearer("GET", "/billing", &rfc9068("svc-reporting"))
            .await,
    );
    assert_eq!((d.status, d.reason.as_str()), (403, "condition_failed"));
    assert_eq!(
        d.challenge.as_deref(),
        Some(
            "Bearer realm=\"portcullis-demo\", error=\"insufficient_scope\", error_description=\"The caller does not meet this route's conditions\", scope=\"Orders.Read\""
        )
    );
    // A caller the issuer does not allow at all.
    let d = denied(
        &world
            .bearer("GET", "/api/orders", &rfc9068("svc-unknown"))
            .await,
    );
    assert_eq!((d.status, d.reason.as_str()), (403, "client_not_allowed"));
    assert!(
        d.challenge
            .unwrap()
            .contains("error=\"insufficient_scope\"")
    );
    // require_typ: [at+jwt] refuses a plain JWT from the same issuer.
    let plain = world.sign(&world.claims(portcullis::demo::Grant::Scopes("Orders.Read")));
    assert_eq!(
        outcome(&world.bearer("GET", "/api/orders", &plain).await),
        "wrong_token_type"
    );
}
