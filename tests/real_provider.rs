//! Against a certified OpenID Provider (npm `oidc-provider`, `tests/idp/`), not one of
//! our own: real client-credentials tokens over HTTP (RFC 9068 `at+jwt`, `client_id`,
//! `scope`, roles as an extra claim), with the issuer configured by discovery alone; the
//! provider's own way of rotating keys, an outage, and an impostor with the same issuer
//! name — over gRPC in process, and through a real Envoy running the shipped config.

mod common;

use std::time::Duration;

use common::{
    InProcess, allowed, denied,
    envoy::{start_envoy, start_portcullis, test_dir},
    external_tool, free_port,
    idp::{Provider, RESOURCE},
    upstream::Framework,
};
use portcullis::pb::auth::CheckRequest;

/// The policy for the provider's API: discovery only (no `jwks_uri`), RFC 9068 typed
/// tokens, three known callers; short refresh timings so that the test sees rotations.
fn policy(issuer: &str) -> String {
    format!(
        r#"server:
  grpc_listen: 127.0.0.1:0
  admin_listen: 127.0.0.1:0
jwks:
  refresh_interval: 2s
  min_refresh_interval: 1s
  unknown_kid_cooldown: 1s
issuers:
  - issuer: "{issuer}"
    audiences: ["{RESOURCE}"]
    require_typ: at+jwt
    allowed_clients: [svc-reader, svc-writer, svc-daemon]
# As through the shipped Envoy configuration, which sends bodies: a bodiless POST has none.
request_body: sent
routes:
  - name: billing
    path: {{ prefix: /billing }}
    require: {{ clients: [svc-writer] }}
  - name: read
    methods: [GET]
    path: {{ prefix: /api/orders }}
    require_any: [{{ scopes: [Orders.Read] }}, {{ roles: [Orders.Read.All] }}]
  - name: write
    methods: [POST]
    path: {{ prefix: /api/orders }}
    require: {{ scopes: [Orders.Write] }}
"#
    )
}

/// The provider's policy served in process.
async fn serve(issuer: &str) -> InProcess {
    InProcess::start(&policy(issuer)).await
}

/// A Check of `method path` with `token` as the bearer credential.
fn bearer(method: &str, path: &str, token: &str) -> CheckRequest {
    common::check_request(
        method,
        path,
        &[("authorization", &format!("Bearer {token}"))],
    )
}

async fn ready(portcullis: &InProcess) -> bool {
    let url = format!("http://{}/readyz", portcullis.server.admin_addr());
    reqwest::get(url).await.is_ok_and(|r| r.status() == 200)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scopes_roles_and_callers_from_real_rfc_9068_tokens() {
    let Some(provider) = Provider::start_fresh("idp-keys").await else {
        return;
    };
    let issuer = provider.issuer.clone();
    let portcullis = serve(&issuer).await;

    let reader = provider.token("svc-reader", Some("Orders.Read")).await;
    let writer = provider
        .token("svc-writer", Some("Orders.Read Orders.Write"))
        .await;
    let daemon = provider.token("svc-daemon", None).await;
    let other = provider.token("svc-other", Some("Orders.Read")).await;

    let (headers, _) = allowed(
        &portcullis
            .check(bearer("GET", "/api/orders/7", &reader))
            .await,
    );
    assert_eq!(
        headers["x-auth-client-id"], "svc-reader",
        "RFC 9068 client_id"
    );
    assert_eq!(headers["x-auth-scopes"], "Orders.Read");
    assert_eq!(headers["x-auth-issuer"], issuer);
    assert_eq!(
        portcullis
            .outcome(bearer("POST", "/api/orders", &reader))
            .await,
        "insufficient_permission"
    );
    assert_eq!(
        portcullis
            .outcome(bearer("POST", "/api/orders", &writer))
            .await,
        "allow"
    );
    let (headers, _) = allowed(
        &portcullis
            .check(bearer("GET", "/api/orders", &daemon))
            .await,
    );
    assert_eq!(
        headers["x-auth-roles"], "Orders.Read.All",
        "roles as an extra claim"
    );
    assert_eq!(
        portcullis
            .outcome(bearer("POST", "/api/orders", &daemon))
            .await,
        "insufficient_permission"
    );
    assert_eq!(
        portcullis
            .outcome(bearer("GET", "/billing/x", &writer))
            .await,
        "allow"
    );
    assert_eq!(
        portcullis
            .outcome(bearer("GET", "/billing/x", &reader))
            .await,
        "condition_failed"
    );
    assert_eq!(
        portcullis
            .outcome(bearer("GET", "/api/orders", &other))
            .await,
        "client_not_allowed"
    );
}

/// The value of parameter `name` in a `WWW-Authenticate` challenge (quoted or not).
fn parameter<'a>(challenge: &'a str, name: &str) -> Option<&'a str> {
    let start = challenge.find(&format!("{name}="))? + name.len() + 1;
    let rest = &challenge[start..];
    Some(match rest.strip_prefix('"') {
        Some(quoted) => &quoted[..quoted.find('"')?],
        None => rest.split([',', ' ']).next()?,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn step_up_challenges_lead_a_real_client_to_a_token_that_passes() {
    let Some(provider) = Provider::start_fresh("idp-step-up-keys").await else {
        return;
    };
    let portcullis = InProcess::start(
        &policy(&provider.issuer)
            .replace("svc-daemon]", "svc-daemon, web-app]")
            .replace(
                "routes:\n",
                r#"routes:
  - name: payments
    path: { prefix: /api/payments }
    require: { scopes: [Orders.Read] }
    step_up: { acr: [urn:portcullis:mfa, urn:portcullis:phr], max_age: 10m }
  - name: refunds
    path: { prefix: /api/refunds }
    require: { scopes: [Orders.Write] }
    step_up: { acr: [urn:portcullis:phr] }
"#,
            ),
    )
    .await;
    let token = provider.user_token(&[]).await;
    // A password sign-in reads orders, and is told how to sign in for payments.
    assert_eq!(
        portcullis
            .outcome(bearer("GET", "/api/orders", &token))
            .await,
        "allow"
    );
    let deny = denied(
        &portcullis
            .check(bearer("GET", "/api/payments/1", &token))
            .await,
    );
    assert_eq!(
        (deny.status, deny.reason.as_str()),
        (401, "insufficient_user_authentication")
    );
    let challenge = deny.challenge.unwrap();
    assert!(
        challenge
            .starts_with("Bearer realm=\"portcullis\", error=\"insufficient_user_authentication\""),
        "{challenge}"
    );
    let acr_values = parameter(&challenge, "acr_values").unwrap();
    let max_age = parameter(&challenge, "max_age").unwrap();
    assert_eq!(
        (acr_values, max_age),
        ("urn:portcullis:mfa urn:portcullis:phr", "600")
    );
    // Stepping up would not help where a scope is missing: that answer comes first.
    assert_eq!(
        portcullis
            .outcome(bearer("POST", "/api/refunds", &token))
            .await,
        "insufficient_permission"
    );

    // The client asks again with the challenge's parameters, as RFC 9470 §4 says.
    let stepped_up = provider
        .user_token(&[("acr_values", acr_values), ("max_age", max_age)])
        .await;
    assert_eq!(
        portcullis
            .outcome(bearer("GET", "/api/payments/1", &stepped_up))
            .await,
        "allow"
    );

    // The right acr from a sign-in an hour old: too old for payments.
    let stale = provider
        .user_token(&[("acr_values", "urn:portcullis:mfa"), ("login_age", "3600")])
        .await;
    let deny = denied(
        &portcullis
            .check(bearer("GET", "/api/payments/1", &stale))
            .await,
    );
    assert_eq!(deny.reason, "insufficient_user_authentication");
    assert_eq!(parameter(&deny.challenge.unwrap(), "max_age"), Some("600"));
    let fresh = provider
        .user_token(&[("acr_values", "urn:portcullis:mfa"), ("max_age", "600")])
        .await;
    assert_eq!(
        portcullis
            .outcome(bearer("GET", "/api/payments/1", &fresh))
            .await,
        "allow"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_providers_rotation_an_outage_and_an_impostor() {
    let Some(node) = Provider::available() else {
        return;
    };
    let port = free_port();
    let issuer = format!("http://127.0.0.1:{port}");
    let keys = test_dir("idp-keys");
    let provider = Provider::start(&node, port, &issuer, &keys, &["k1"]).await;
    let portcullis = serve(&issuer).await;
    let old = provider.token("svc-reader", Some("Orders.Read")).await;
    assert_eq!(
        portcullis.outcome(bearer("GET", "/api/orders", &old)).await,
        "allow"
    );

    // Rotation, the provider's way: a new key publishes and signs, the old one stays.
    drop(provider);
    let provider = Provider::start(&node, port, &issuer, &keys, &["k2", "k1"]).await;
    let new = provider.token("svc-reader", Some("Orders.Read")).await;
    for _ in 0..20 {
        assert_eq!(
            portcullis.outcome(bearer("GET", "/api/orders", &new)).await,
            "allow"
        );
        assert_eq!(
            portcullis.outcome(bearer("GET", "/api/orders", &old)).await,
            "allow"
        );
    }
    // Then the old key is withdrawn: refused once the key set is fetched again.
    drop(provider);
    let provider = Provider::start(&node, port, &issuer, &keys, &["k2"]).await;
    common::wait_for_async(|| async {
        portcullis.outcome(bearer("GET", "/api/orders", &old)).await == "unknown_kid"
    })
    .await;
    assert_eq!(
        portcullis.outcome(bearer("GET", "/api/orders", &new)).await,
        "allow"
    );

    // The provider goes down: cached keys keep serving, readiness holds.
    drop(provider);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        portcullis.outcome(bearer("GET", "/api/orders", &new)).await,
        "allow"
    );
    assert!(
        ready(&portcullis).await,
        "an outage after start keeps the replica ready"
    );
    // It comes back: tokens it issues now are accepted.
    let provider = Provider::start(&node, port, &issuer, &keys, &["k2"]).await;
    let later = provider.token("svc-writer", Some("Orders.Write")).await;
    assert_eq!(
        portcullis
            .outcome(bearer("POST", "/api/orders", &later))
            .await,
        "allow"
    );

    // An impostor: another instance calling itself by the same issuer name, with its own
    // keys (one of them under the same kid).
    let impostor_keys = test_dir("impostor-keys");
    let impostor = Provider::start(&node, free_port(), &issuer, &impostor_keys, &["k2"]).await;
    let forged = impostor.token("svc-writer", Some("Orders.Write")).await;
    assert_eq!(
        portcullis
            .outcome(bearer("POST", "/api/orders", &forged))
            .await,
        "bad_signature"
    );
    let impostor = Provider::start(&node, free_port(), &issuer, &impostor_keys, &["k9"]).await;
    let forged = impostor.token("svc-writer", Some("Orders.Write")).await;
    assert_eq!(
        portcullis
            .outcome(bearer("POST", "/api/orders", &forged))
            .await,
        "unknown_kid"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_envoy_with_the_shipped_config() {
    let (Some(provider), Some(envoy)) = (
        Provider::start_fresh("idp-envoy-keys").await,
        external_tool("envoy"),
    ) else {
        return;
    };
    let issuer = provider.issuer.clone();
    let dir = test_dir("idp-envoy");
    let portcullis = start_portcullis(
        &dir,
        |grpc| {
            policy(&issuer)
                .replace("grpc_listen: 127.0.0.1:0", &format!("grpc_listen: {grpc}"))
                .replace("  admin_listen: 127.0.0.1:0\n", "")
        },
        &[],
    )
    .await;
    let upstream = Framework::start(&dir).await;
    let grpc: u16 = portcullis.grpc.rsplit(':').next().unwrap().parse().unwrap();
    let envoy = start_envoy(&envoy, "front-proxy.yaml", grpc, upstream.port, &[]).await;
    let reader = provider.token("svc-reader", Some("Orders.Read")).await;
    let client = reqwest::Client::new();
    let response = client
        .get(format!("{}/api/orders", envoy.base))
        .bearer_auth(&reader)
        .header("x-test-id", "envoy-read")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let served = &upstream.served()["envoy-read"][0];
    assert_eq!(served["identity"]["HTTP_X_AUTH_CLIENT_ID"], "svc-reader");
    let response = client
        .post(format!("{}/api/orders", envoy.base))
        .bearer_auth(&reader)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let challenge = response.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(challenge.contains("scope=\"Orders.Write\""), "{challenge}");
}
