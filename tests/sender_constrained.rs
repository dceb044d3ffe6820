//! Sender-constrained tokens from a certified OpenID Provider (npm `oidc-provider`,
//! `tests/idp/`): DPoP-bound tokens (RFC 9449) the provider binds to the test client's
//! key after checking its proof, and certificate-bound tokens (RFC 8705) bound to the
//! test client's certificate — checked by portcullis over gRPC in process, and through a
//! real Envoy (plain HTTP for DPoP; client mTLS with `include_peer_certificate` for
//! certificates). Then the replay store shared by two replicas on a real `redis-server`,
//! and what happens when it goes away.

mod common;

use std::time::Duration;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use common::{
    InProcess, allowed, denied,
    envoy::{start_envoy, test_dir},
    external_tool, free_port,
    idp::{Provider, RESOURCE},
    upstream::Framework,
};
use portcullis::{
    demo::{DemoIssuer, DpopKey, Grant, SigningKey},
    pb::auth::{CheckRequest, attribute_context::Peer},
};
use serde_json::{Value, json};

/// Where the API is, as clients address it (the proofs' `htu`).
const HOST: &str = "api.example.com";

/// The provider's API: reading orders takes `Orders.Read`; payments take only DPoP-bound
/// tokens; `/api/cert` only certificate-bound ones.
fn policy(issuer: &str, replay: &str) -> String {
    format!(
        r#"server:
  grpc_listen: 127.0.0.1:0
  admin_listen: 127.0.0.1:0
issuers:
  - issuer: "{issuer}"
    audiences: ["{RESOURCE}"]
    require_typ: at+jwt
routes:
  - name: payments
    path: {{ prefix: /api/payments }}
    sender_constraint: dpop
    require: {{ scopes: [Orders.Read] }}
  - name: cert-only
    path: {{ prefix: /api/cert }}
    sender_constraint: mtls
    require: {{ scopes: [Orders.Read] }}
  - name: read
    methods: [GET]
    path: {{ prefix: /api/orders }}
    require_any: [{{ scopes: [Orders.Read] }}, {{ roles: [Orders.Read.All] }}]
dynamic_metadata: [route, binding]
{replay}"#
    )
}

/// The CheckRequest Envoy sends for `method https://HOST{path}` with these headers and,
/// when given, the client certificate (URL-encoded PEM) of the connection.
fn request(
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    certificate: Option<&str>,
) -> CheckRequest {
    let mut request = portcullis::demo::check_request(method, HOST, path, headers);
    let attributes = request.attributes.as_mut().unwrap();
    let http = attributes.request.as_mut().unwrap().http.as_mut().unwrap();
    http.scheme = "https".into();
    if let Some(pem) = certificate {
        attributes.source = Some(Peer {
            certificate: common::url_encoded(pem),
            ..Default::default()
        });
    }
    request
}

fn url(path: &str) -> String {
    format!("https://{HOST}{path}")
}

/// A DPoP request: `Authorization: DPoP <token>` and the proof.
fn dpop(method: &str, path: &str, token: &str, proof: &str) -> CheckRequest {
    let authorization = format!("DPoP {token}");
    request(
        method,
        path,
        &[("authorization", &authorization), ("dpop", proof)],
        None,
    )
}

fn bearer(method: &str, path: &str, token: &str, certificate: Option<&str>) -> CheckRequest {
    let authorization = format!("Bearer {token}");
    request(
        method,
        path,
        &[("authorization", &authorization)],
        certificate,
    )
}

/// A token's payload, unverified.
fn payload(token: &str) -> Value {
    let part = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

fn sha256_base64url(data: &[u8]) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data);
    URL_SAFE_NO_PAD.encode(digest)
}

/// A self-signed client certificate and its PEM.
fn client_certificate(name: &str) -> (String, Vec<u8>) {
    let certified = rcgen::generate_simple_self_signed(vec![name.to_owned()]).unwrap();
    (certified.cert.pem(), certified.cert.der().to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dpop_bound_tokens_need_a_fresh_proof_of_their_key_on_every_request() {
    let Some(provider) = Provider::start_fresh("idp-dpop").await else {
        return;
    };
    let portcullis = InProcess::start(&policy(&provider.issuer, "")).await;
    let key = DpopKey::es256().unwrap();
    let token = provider.dpop_token(&key).await;
    assert_eq!(
        payload(&token)["cnf"]["jkt"],
        key.thumbprint(),
        "the provider bound the token to the proof's key"
    );
    let proof = |method: &str, path: &str| key.proof(method, &url(path), Some(&token), None);

    // The holder: allowed, with the binding forwarded.
    let first = proof("GET", "/api/orders/7").unwrap();
    let response = portcullis
        .check(dpop("GET", "/api/orders/7", &token, &first))
        .await;
    let (headers, _) = allowed(&response);
    assert_eq!(headers["x-auth-binding"], "dpop");
    assert_eq!(headers["x-auth-binding-thumbprint"], key.thumbprint());
    let metadata = response.dynamic_metadata.unwrap().fields;
    assert!(metadata.contains_key("binding_thumbprint"));
    // Payments take only DPoP-bound tokens: this one.
    let pay = proof("GET", "/api/payments").unwrap();
    assert_eq!(
        portcullis
            .outcome(dpop("GET", "/api/payments", &token, &pay))
            .await,
        "allow"
    );

    // Each way of using it without being its holder, or outside this request.
    let replay = portcullis
        .check(dpop("GET", "/api/orders/7", &token, &first))
        .await;
    let replay = denied(&replay);
    assert_eq!(replay.reason, "dpop_proof_replayed");
    assert_eq!(replay.status, 401);
    let challenge = replay.challenge.unwrap();
    assert!(challenge.starts_with("DPoP "), "{challenge}");
    assert!(
        challenge.contains("error=\"invalid_dpop_proof\""),
        "{challenge}"
    );
    assert!(challenge.contains("algs=\"ES256"), "{challenge}");

    let cases: Vec<(&str, CheckRequest)> = vec![
        (
            "dpop_method_mismatch",
            dpop(
                "GET",
                "/api/orders/7",
                &token,
                &proof("POST", "/api/orders/7").unwrap(),
            ),
        ),
        (
            "dpop_uri_mismatch",
            dpop(
                "GET",
                "/api/orders/7",
                &token,
                &proof("GET", "/api/orders/8").unwrap(),
            ),
        ),
        (
            "dpop_proof_stale",
            dpop(
                "GET",
                "/api/orders/7",
                &token,
                &key.sign(&json!({
                    "jti": "stale-1", "htm": "GET", "htu": url("/api/orders/7"),
                    "iat": jsonwebtoken::get_current_timestamp() - 120,
                    "ath": sha256_base64url(token.as_bytes()),
                }))
                .unwrap(),
            ),
        ),
        (
            "dpop_key_mismatch",
            dpop(
                "GET",
                "/api/orders/7",
                &token,
                &DpopKey::es256()
                    .unwrap()
                    .proof("GET", &url("/api/orders/7"), Some(&token), None)
                    .unwrap(),
            ),
        ),
        (
            "dpop_ath_mismatch",
            dpop(
                "GET",
                "/api/orders/7",
                &token,
                &key.proof("GET", &url("/api/orders/7"), Some("another-token"), None)
                    .unwrap(),
            ),
        ),
        (
            "bound_token_as_bearer",
            bearer("GET", "/api/orders/7", &token, None),
        ),
        (
            "dpop_proof_missing",
            request(
                "GET",
                "/api/orders/7",
                &[("authorization", &format!("DPoP {token}"))],
                None,
            ),
        ),
        (
            "invalid_dpop_proof",
            dpop("GET", "/api/orders/7", &token, &token),
        ),
    ];
    for (reason, request) in cases {
        assert_eq!(portcullis.outcome(request).await, reason);
    }

    // An unbound token from the same provider: fine where binding is optional, refused
    // where the route takes only DPoP-bound tokens (with a DPoP challenge).
    let plain = provider.token("svc-reader", Some("Orders.Read")).await;
    assert!(payload(&plain).get("cnf").is_none());
    assert_eq!(
        portcullis
            .outcome(bearer("GET", "/api/orders/7", &plain, None))
            .await,
        "allow"
    );
    let refused = denied(
        &portcullis
            .check(bearer("GET", "/api/payments", &plain, None))
            .await,
    );
    assert_eq!(refused.reason, "sender_constraint_required");
    assert!(refused.challenge.unwrap().starts_with("DPoP "));
    // An unbound token under the DPoP scheme is not DPoP-bound to the proof's key.
    let plain_proof = key
        .proof("GET", &url("/api/orders/7"), Some(&plain), None)
        .unwrap();
    assert_eq!(
        portcullis
            .outcome(dpop("GET", "/api/orders/7", &plain, &plain_proof))
            .await,
        "dpop_key_mismatch"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_bound_tokens_need_the_certificate_they_are_bound_to() {
    let Some(provider) = Provider::start_fresh("idp-mtls").await else {
        return;
    };
    let portcullis = InProcess::start(&policy(&provider.issuer, "")).await;
    let (mine, mine_der) = client_certificate("client-a");
    let (theirs, _) = client_certificate("client-b");
    let token = provider.mtls_token(&mine).await;
    assert_eq!(
        payload(&token)["cnf"]["x5t#S256"],
        sha256_base64url(&mine_der),
        "the provider bound the token to the certificate"
    );

    let response = portcullis
        .check(bearer("GET", "/api/cert", &token, Some(&mine)))
        .await;
    let (headers, _) = allowed(&response);
    assert_eq!(headers["x-auth-binding"], "mtls");
    assert_eq!(
        headers["x-auth-binding-thumbprint"],
        sha256_base64url(&mine_der)
    );
    assert_eq!(
        portcullis
            .outcome(bearer("GET", "/api/orders/1", &token, Some(&theirs)))
            .await,
        "certificate_mismatch"
    );
    let missing = denied(
        &portcullis
            .check(bearer("GET", "/api/orders/1", &token, None))
            .await,
    );
    assert_eq!(missing.reason, "certificate_missing");
    let challenge = missing.challenge.unwrap();
    assert!(
        challenge.starts_with("Bearer ") && challenge.contains("error=\"invalid_token\""),
        "{challenge}"
    );
    // Payments want DPoP: a certificate-bound token is not that.
    assert_eq!(
        portcullis
            .outcome(bearer("GET", "/api/payments", &token, Some(&mine)))
            .await,
        "sender_constraint_required"
    );
    // And the certificate-only route refuses an unbound token however presented.
    let plain = provider.token("svc-reader", Some("Orders.Read")).await;
    assert_eq!(
        portcullis
            .outcome(bearer("GET", "/api/cert", &plain, Some(&mine)))
            .await,
        "sender_constraint_required"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_envoy_a_stolen_dpop_token_is_useless_without_its_key() {
    let (Some(provider), Some(envoy)) = (
        Provider::start_fresh("idp-dpop-envoy").await,
        external_tool("envoy"),
    ) else {
        return;
    };
    let portcullis = InProcess::start(&policy(&provider.issuer, "")).await;
    let dir = test_dir("dpop-envoy");
    let upstream = Framework::start(&dir).await;
    let envoy = start_envoy(
        &envoy,
        "front-proxy.yaml",
        portcullis.server.grpc_addr().port(),
        upstream.port,
        &[],
    )
    .await;
    let key = DpopKey::es256().unwrap();
    let token = provider.dpop_token(&key).await;
    let target = format!("{}/api/orders/7", envoy.base);
    let client = reqwest::Client::new();
    let send = |proof: Option<String>, scheme: &str, id: &str| {
        let mut request = client
            .get(&target)
            .header("authorization", format!("{scheme} {token}"))
            .header("x-test-id", id);
        if let Some(proof) = proof {
            request = request.header("dpop", proof);
        }
        request.send()
    };
    let proof = key.proof("GET", &target, Some(&token), None).unwrap();
    let response = send(Some(proof.clone()), "DPoP", "holder").await.unwrap();
    assert_eq!(response.status(), 200);
    let served = &upstream.served()["holder"][0];
    assert_eq!(served["identity"]["HTTP_X_AUTH_BINDING"], "dpop");

    // The same request captured and replayed, the token alone, the token with the
    // thief's own key: none reaches the upstream.
    for (proof, scheme, id, reason) in [
        (Some(proof), "DPoP", "replay", "dpop_proof_replayed"),
        (None, "Bearer", "bearer", "bound_token_as_bearer"),
        (
            Some(
                DpopKey::es256()
                    .unwrap()
                    .proof("GET", &target, Some(&token), None)
                    .unwrap(),
            ),
            "DPoP",
            "thief",
            "dpop_key_mismatch",
        ),
    ] {
        let response = send(proof, scheme, id).await.unwrap();
        assert_eq!(response.status(), 401, "{id}");
        assert!(
            response.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("DPoP "),
            "{id}"
        );
        let body: Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
        assert_eq!(body["reason"], reason, "{id}");
        assert!(
            !upstream.served().contains_key(id),
            "{id} reached the upstream"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_envoy_with_client_mtls_a_certificate_bound_token_needs_its_certificate() {
    let (Some(provider), Some(envoy)) = (
        Provider::start_fresh("idp-mtls-envoy").await,
        external_tool("envoy"),
    ) else {
        return;
    };
    let portcullis = InProcess::start(&policy(&provider.issuer, "")).await;
    let pki = common::Pki::generate("client-mtls");
    pki.edge();
    let mine = pki.issue(
        "client-a",
        "client-a.internal",
        rcgen::ExtendedKeyUsagePurpose::ClientAuth,
    );
    pki.issue(
        "client-b",
        "client-b.internal",
        rcgen::ExtendedKeyUsagePurpose::ClientAuth,
    );
    let dir = test_dir("mtls-envoy");
    let upstream = Framework::start(&dir).await;
    let certs = pki.dir.display().to_string();
    let envoy = start_envoy(
        &envoy,
        "front-proxy-client-mtls.yaml",
        portcullis.server.grpc_addr().port(),
        upstream.port,
        &[(portcullis::demo::ENVOY_CERTS_DIR, certs.as_str())],
    )
    .await;
    let pem = |name: &str| std::fs::read_to_string(pki.dir.join(name)).unwrap();
    let token = provider.mtls_token(&pem("client-a.crt")).await;
    assert_eq!(payload(&token)["cnf"]["x5t#S256"], sha256_base64url(&mine));

    let client = |name: &str| {
        let identity = reqwest::Identity::from_pem(
            format!(
                "{}{}",
                pem(&format!("{name}.crt")),
                pem(&format!("{name}.key"))
            )
            .as_bytes(),
        )
        .unwrap();
        reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(pem("ca.crt").as_bytes()).unwrap())
            .identity(identity)
            .resolve("api.internal", ([127, 0, 0, 1], envoy.port).into())
            .build()
            .unwrap()
    };
    let target = format!("https://api.internal:{}/api/orders/1", envoy.port);
    let response = client("client-a")
        .get(&target)
        .bearer_auth(&token)
        .header("x-test-id", "holder")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let served = &upstream.served()["holder"][0];
    assert_eq!(served["identity"]["HTTP_X_AUTH_BINDING"], "mtls");

    // Client B holds a certificate from the same CA, and client A's token.
    let response = client("client-b")
        .get(&target)
        .bearer_auth(&token)
        .header("x-test-id", "thief")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let body: Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
    assert_eq!(body["reason"], "certificate_mismatch");
    assert!(!upstream.served().contains_key("thief"));
}

/// A `redis-server` on a free loopback port, without persistence, stopped when dropped.
struct Redis {
    child: Option<common::ChildGuard>,
    port: u16,
}

impl Redis {
    async fn start(binary: &std::path::Path) -> Redis {
        Redis::start_on(binary, free_port()).await
    }

    async fn start_on(binary: &std::path::Path, port: u16) -> Redis {
        let child = std::process::Command::new(binary)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        common::wait_for_port(port).await;
        Redis {
            child: Some(common::ChildGuard(child)),
            port,
        }
    }

    fn stop(&mut self) {
        self.child.take();
    }
}

/// A token of the demo issuer bound to `key`.
fn bound_token(issuer: &DemoIssuer, signer: &SigningKey, key: &DpopKey) -> String {
    let mut claims =
        portcullis::demo::access_token_claims(issuer.issuer(), Grant::Scopes("Orders.Read"), 600);
    claims["cnf"] = json!({ "jkt": key.thumbprint() });
    signer.sign(&claims).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_sharing_redis_accept_each_proof_once_and_refuse_dpop_when_it_is_down() {
    let Some(binary) = external_tool("redis-server") else {
        return;
    };
    let mut redis = Redis::start(&binary).await;
    let signer = SigningKey::rsa("key-1", jsonwebtoken::Algorithm::RS256).unwrap();
    let issuer = DemoIssuer::start(0, &[&signer]).await.unwrap();
    let yaml = portcullis::demo::demo_config_yaml(&issuer, "127.0.0.1:0".parse().unwrap()).replace(
        "  realm: portcullis-demo\n",
        "  realm: portcullis-demo\n  admin_listen: 127.0.0.1:0\n",
    ) + &format!(
        "dpop:\n  replay:\n    store: redis\n    redis_url: redis://127.0.0.1:{}/0\n    redis_timeout: 300ms\n",
        redis.port
    );
    let a = InProcess::start(&yaml).await;
    let b = InProcess::start(&yaml).await;
    let key = DpopKey::es256().unwrap();
    let token = bound_token(&issuer, &signer, &key);
    let path = "/api/orders/1";

    let proof = key.proof("GET", &url(path), Some(&token), None).unwrap();
    assert_eq!(a.outcome(dpop("GET", path, &token, &proof)).await, "allow");
    // The same proof replayed to the other replica.
    assert_eq!(
        b.outcome(dpop("GET", path, &token, &proof)).await,
        "dpop_proof_replayed"
    );
    let fresh = key.proof("GET", &url(path), Some(&token), None).unwrap();
    assert_eq!(b.outcome(dpop("GET", path, &token, &fresh)).await, "allow");

    // Redis gone: DPoP requests are refused (503, retry later), bearer ones go on.
    redis.stop();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let proof = key.proof("GET", &url(path), Some(&token), None).unwrap();
    let response = a.check(dpop("GET", path, &token, &proof)).await;
    let refused = denied(&response);
    assert_eq!(refused.reason, "replay_store_unavailable");
    assert_eq!(refused.status, 503);
    assert_eq!(
        refused.headers.get("retry-after").map(String::as_str),
        Some("5")
    );
    let plain = issuer_token(&issuer, &signer);
    assert_eq!(a.outcome(bearer("GET", path, &plain, None)).await, "allow");

    // Back: the replicas use it again, from the first request on, whether it comes at once
    // (the connection is remade within the request) or after the background PING did.
    let _redis = Redis::start_on(&binary, redis.port).await;
    let proof = key.proof("GET", &url(path), Some(&token), None).unwrap();
    assert_eq!(a.outcome(dpop("GET", path, &token, &proof)).await, "allow");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let proof = key.proof("GET", &url(path), Some(&token), None).unwrap();
    assert_eq!(b.outcome(dpop("GET", path, &token, &proof)).await, "allow");
}

fn issuer_token(issuer: &DemoIssuer, signer: &SigningKey) -> String {
    signer
        .sign(&portcullis::demo::access_token_claims(
            issuer.issuer(),
            Grant::Scopes("Orders.Read"),
            600,
        ))
        .unwrap()
}

/// The demo policy of `issuer` with `extra` appended and the issuer's lines edited.
fn demo_yaml(issuer: &DemoIssuer, issuer_lines: &str, extra: &str) -> String {
    portcullis::demo::demo_config_yaml(issuer, "127.0.0.1:0".parse().unwrap())
        .replace(
            "  realm: portcullis-demo\n",
            "  realm: portcullis-demo\n  admin_listen: 127.0.0.1:0\n",
        )
        .replace(
            "    algorithms: [RS256, PS256, ES256, EdDSA]\n",
            &format!("    algorithms: [RS256, PS256, ES256, EdDSA]\n{issuer_lines}"),
        )
        + extra
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_issuer_may_require_bound_tokens_and_a_binding_is_never_ignored() {
    let signer = SigningKey::rsa("key-1", jsonwebtoken::Algorithm::RS256).unwrap();
    let issuer = DemoIssuer::start(0, &[&signer]).await.unwrap();
    let path = "/api/orders/1";
    let with_cnf = |cnf: Value| {
        let mut claims = portcullis::demo::access_token_claims(
            issuer.issuer(),
            Grant::Scopes("Orders.Read"),
            600,
        );
        claims["cnf"] = cnf;
        signer.sign(&claims).unwrap()
    };

    // A binding this service cannot check is refused, never read as no binding.
    let optional = InProcess::start(&demo_yaml(&issuer, "", "")).await;
    for (cnf, reason) in [
        (json!({"jwk": {"kty": "EC"}}), "unsupported_binding"),
        (json!({"jkt": "abc", "kid": "k"}), "unsupported_binding"),
        (json!({}), "unsupported_binding"),
        (json!("jkt"), "malformed_token"),
        (json!({"jkt": 7}), "malformed_token"),
    ] {
        let token = with_cnf(cnf.clone());
        assert_eq!(
            optional.outcome(bearer("GET", path, &token, None)).await,
            reason,
            "{cnf}"
        );
    }

    // An issuer whose tokens must be bound: its unbound ones are refused on every route.
    let required =
        InProcess::start(&demo_yaml(&issuer, "    sender_constraint: required\n", "")).await;
    let plain = issuer_token(&issuer, &signer);
    assert_eq!(
        optional.outcome(bearer("GET", path, &plain, None)).await,
        "allow"
    );
    assert_eq!(
        required.outcome(bearer("GET", path, &plain, None)).await,
        "sender_constraint_required"
    );
    let key = DpopKey::es256().unwrap();
    let bound = with_cnf(json!({ "jkt": key.thumbprint() }));
    let proof = key.proof("GET", &url(path), Some(&bound), None).unwrap();
    assert_eq!(
        required.outcome(dpop("GET", path, &bound, &proof)).await,
        "allow"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_server_nonces_a_client_retries_with_the_nonce_it_was_given() {
    let signer = SigningKey::rsa("key-1", jsonwebtoken::Algorithm::RS256).unwrap();
    let issuer = DemoIssuer::start(0, &[&signer]).await.unwrap();
    let secret = test_dir("nonce").join("secret");
    std::fs::write(&secret, URL_SAFE_NO_PAD.encode([42u8; 32])).unwrap();
    let portcullis = InProcess::start(&demo_yaml(
        &issuer,
        "",
        &format!("dpop:\n  nonce:\n    secret_file: {}\n", secret.display()),
    ))
    .await;
    let key = DpopKey::es256().unwrap();
    let mut claims =
        portcullis::demo::access_token_claims(issuer.issuer(), Grant::Scopes("Orders.Read"), 600);
    claims["cnf"] = json!({ "jkt": key.thumbprint() });
    let token = signer.sign(&claims).unwrap();
    let path = "/api/orders/1";

    let first = key.proof("GET", &url(path), Some(&token), None).unwrap();
    let response = portcullis.check(dpop("GET", path, &token, &first)).await;
    let asked = denied(&response);
    assert_eq!(
        (asked.status, asked.reason.as_str()),
        (401, "dpop_nonce_required")
    );
    let challenge = asked.challenge.unwrap();
    assert!(
        challenge.starts_with("DPoP ") && challenge.contains("error=\"use_dpop_nonce\""),
        "{challenge}"
    );
    let nonce = asked.headers["dpop-nonce"].clone();
    let retry = key
        .proof("GET", &url(path), Some(&token), Some(&nonce))
        .unwrap();
    assert_eq!(
        portcullis.outcome(dpop("GET", path, &token, &retry)).await,
        "allow"
    );
    // A nonce of another deployment's secret is no nonce.
    let forged = URL_SAFE_NO_PAD.encode([0u8; 24]);
    let proof = key
        .proof("GET", &url(path), Some(&token), Some(&forged))
        .unwrap();
    assert_eq!(
        portcullis.outcome(dpop("GET", path, &token, &proof)).await,
        "dpop_nonce_required"
    );
}
