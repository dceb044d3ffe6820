//! The request portcullis judges is the request the upstream serves: hostile requests of
//! every class the "no false allow" issue names, sent as raw HTTP through a real Envoy to
//! real upstreams — Python's static file server (decodes `%2F`) and a WSGI app on
//! `wsgiref` that routes like the most lenient frameworks (`tests/upstreams/framework.py`)
//! — with the shipped Envoy configurations, and again behind an Envoy configured the lax
//! way (Istio-like defaults: escaped slashes kept, underscores allowed, every header sent
//! to the authorizer), where portcullis alone must hold. No protected resource may be
//! served and no spoofed identity may arrive.

mod common;

use std::{
    collections::HashMap,
    path::Path,
    process::{Command, Stdio},
};

use common::{
    ChildGuard,
    envoy::{Envoy, lax, shipped, start_envoy_yaml, start_portcullis, test_dir},
    external_tool, free_port,
    upstream::{self, Framework, Reply},
};
use jsonwebtoken::Algorithm;
use portcullis::demo::{self, DemoIssuer, Grant, SigningKey};
use serde_json::{Value, json};

/// The policy under test: an anonymous catch-all, where escaped requests land.
fn policy(issuer: &DemoIssuer, grpc: std::net::SocketAddr) -> String {
    format!(
        r#"server:
  grpc_listen: "{grpc}"
issuers:
  - issuer: "{iss}"
    jwks_uri: "{jwks}"
    audiences: ["{aud}"]
payload_header: x-jwt-payload
request_body: sent
routes:
  - {{ name: public, path: {{ prefix: /public }}, anonymous: true }}
  - {{ name: admin-host, hosts: [admin.example.com], path: {{ prefix: / }}, require: {{ scopes: [Admin] }} }}
  - {{ name: admin, path: {{ prefix: /admin }}, require: {{ scopes: [Admin] }} }}
  - name: orders-history
    methods: [GET]
    path: {{ template: "/api/orders/{{id}}/history" }}
    require: {{ scopes: [Orders.ReadFull] }}
  - name: orders-read
    methods: [GET, HEAD]
    path: {{ prefix: /api/orders }}
    require_any:
      - scopes_any: [Orders.Read, Orders.ReadFull]
      - roles: [Orders.Read.All]
  - {{ name: orders-create, methods: [POST], path: {{ exact: /api/orders }}, require: {{ scopes: [Orders.Create] }} }}
  - {{ name: orders-delete, methods: [DELETE], path: {{ prefix: /api/orders }}, require: {{ scopes: [Orders.Delete] }} }}
  - {{ name: everything-else, path: {{ prefix: / }}, anonymous: true }}
"#,
        iss = issuer.issuer(),
        jwks = issuer.jwks_uri(),
        aud = demo::DEMO_AUDIENCE,
    )
}

/// What each kind of caller may reach on the framework upstream.
fn permitted(caller: Caller) -> &'static [&'static str] {
    match caller {
        Caller::Anonymous => &["public"],
        Caller::Reader => &["public", "order", "orders-list"],
        Caller::Creator => &["public", "order-created"],
        Caller::FullReader => &["public", "order", "orders-list", "orders-history"],
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Caller {
    Anonymous,
    Reader,
    Creator,
    FullReader,
}

/// One raw HTTP/1.1 request: method, target, headers (a `host` header is added unless
/// given), caller.
struct Attack {
    method: &'static str,
    target: &'static str,
    headers: Vec<(&'static str, &'static str)>,
    body: &'static [u8],
    caller: Caller,
}

fn attack(method: &'static str, target: &'static str, caller: Caller) -> Attack {
    Attack {
        method,
        target,
        headers: Vec::new(),
        body: b"",
        caller,
    }
}

impl Attack {
    fn with(mut self, name: &'static str, value: &'static str) -> Attack {
        self.headers.push((name, value));
        self
    }

    fn body(mut self, content_type: &'static str, body: &'static [u8]) -> Attack {
        self.body = body;
        self.with("content-type", content_type)
    }
}

/// Every class of the issue; each is a request the policy must not let through.
fn attacks() -> Vec<Attack> {
    use Caller::*;
    vec![
        // 1. Escaped separators.
        attack("GET", "/admin%2Fsecret", Anonymous),
        attack("GET", "/admin%2fsecret", Anonymous),
        attack("GET", "/public/..%2Fadmin/secret", Anonymous),
        attack("GET", "/public/..%5Cadmin/secret", Anonymous),
        attack("GET", "/api/orders/7%2Fhistory", Reader),
        attack("GET", "/x/..%2F..%2Fapi/orders", Anonymous),
        // 2. Path parameters and framework equivalences.
        attack("GET", "/api/orders/7/history;x=1", Reader),
        attack("GET", "/api/orders/7/history/", Reader),
        attack("GET", "/api/orders/7/HISTORY", Reader),
        attack("GET", "/API/ORDERS/7/History", Reader),
        attack("GET", "/public/..;/api/orders", Anonymous),
        attack("GET", "/public;x=/../api/orders", Anonymous),
        attack("GET", "/ADMIN/secret", Anonymous),
        // 3. HEAD and method overrides.
        attack("HEAD", "/api/orders/7/history", Reader),
        attack("POST", "/api/orders", Creator).with("x-http-method-override", "DELETE"),
        attack("POST", "/api/orders", Creator).with("x-http-method", "DELETE"),
        attack("POST", "/api/orders", Creator).with("x-method-override", "DELETE"),
        attack("POST", "/api/orders?_method=DELETE", Creator),
        attack("POST", "/api/orders?%5Fmethod=DELETE", Creator),
        // 4. Host spellings.
        attack("GET", "/", Anonymous).with("host", "admin.example.com."),
        attack("GET", "/", Anonymous).with("host", "ADMIN.example.com"),
        attack("GET", "/", Anonymous).with("host", "www.example.com:80@admin.example.com"),
        attack("GET", "/", Anonymous).with("host", "admin%2eexample.com"),
        attack("GET", "/", Anonymous)
            .with("host", "www.example.com")
            .with("host", "admin.example.com"),
        attack("GET", "/", Anonymous).with("host", "admin.example.com:80:80"),
        attack("GET", "http://admin.example.com/", Anonymous),
        // 5. Identity spoofing (checked on what arrives, below).
        attack("GET", "/api/orders/7", Reader)
            .with("x_auth_roles", "Admin")
            .with("x_auth_subject", "admin"),
        attack("GET", "/api/orders/7", Reader).with("x-auth_roles", "Admin"),
        attack("GET", "/api/orders/7", Reader).with("x-auth-roles", "Admin"),
        attack("GET", "/api/orders/7", Reader).with("x-jwt-payload", "eyJzY3AiOiJBZG1pbiJ9"),
        attack("GET", "/public/page", Anonymous)
            .with("x-auth-subject", "admin")
            .with("x_auth_scopes", "Admin"),
        // 6. The catalogue's other readings (tests/frameworks.rs tries them on real
        // frameworks): format suffixes, trailing dots and spaces, control characters,
        // Unicode case pairs, double escapes, overrides in the body and PHP's names,
        // forwarded hosts, rewrite headers.
        attack("GET", "/admin.json", Anonymous),
        attack("GET", "/api/orders/7/history.json", Reader),
        attack("GET", "/admin./secret", Anonymous),
        attack("GET", "/admin%20/secret", Anonymous),
        attack("GET", "/api/orders/7/history%0a", Reader),
        attack("GET", "/adm%C4%B1n/secret", Anonymous),
        attack("GET", "/%2561dmin/secret", Anonymous),
        attack("POST", "/api/orders", Creator)
            .body("application/x-www-form-urlencoded", b"_method=DELETE"),
        attack("POST", "/api/orders/7/history", Anonymous)
            .body("application/json", b"{\"_method\":\"GET\"}"),
        attack("POST", "/api/orders?.method=DELETE", Creator),
        attack("GET", "/x", Anonymous).with("x-forwarded-host", "admin.example.com"),
        attack("GET", "/x", Anonymous).with("forwarded", "host=admin.example.com"),
        attack("GET", "/public/page", Anonymous).with("x-original-url", "/admin/secret"),
        attack("GET", "/public/page", Reader).with("x-rewrite-url", "/api/orders/7/history"),
    ]
}

/// Requests that must get through (so that the attacks' denials mean something).
fn controls() -> Vec<(Attack, &'static str)> {
    use Caller::*;
    vec![
        (attack("GET", "/api/orders/7", Reader), "order"),
        (attack("GET", "/api/orders", Reader), "orders-list"),
        (attack("HEAD", "/api/orders/7", Reader), "order"),
        (attack("POST", "/api/orders", Creator), "order-created"),
        (
            attack("GET", "/api/orders/7/history", FullReader),
            "orders-history",
        ),
        (attack("GET", "/public/page", Anonymous), "public"),
    ]
}

/// Sends one raw HTTP/1.1 request without a body.
async fn send(port: u16, method: &str, target: &str, headers: &[(&str, &str)]) -> Reply {
    upstream::send(port, method, target, headers, b"").await
}

struct Upstreams {
    framework: Framework,
    static_port: u16,
    _files: ChildGuard,
}

/// The WSGI framework app and Python's static file server over a tree with a secret.
async fn start_upstreams(dir: &Path) -> Upstreams {
    let root = dir.join("static");
    for (file, text) in [
        ("public/index.html", "public page\n"),
        ("admin/secret", "TOP SECRET\n"),
    ] {
        let path = root.join(file);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    let framework = Framework::start(dir).await;
    let static_port = free_port();
    let files = Command::new("python3")
        .args(["-m", "http.server", "--bind", "127.0.0.1", "--directory"])
        .arg(&root)
        .arg(static_port.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3 runs http.server");
    let upstreams = Upstreams {
        framework,
        static_port,
        _files: ChildGuard(files),
    };
    common::wait_for_port(static_port).await;
    upstreams
}

struct Tokens(HashMap<Caller, String>);

impl Tokens {
    fn new(key: &SigningKey, issuer: &DemoIssuer) -> Tokens {
        let sign = |grant, roles: Option<Value>| {
            let mut claims = demo::access_token_claims(issuer.issuer(), grant, 600);
            if let Some(roles) = roles {
                claims["roles"] = roles;
            }
            key.sign(&claims).unwrap()
        };
        Tokens(HashMap::from([
            // The reader's app roles include one whose name holds a space: "... Admin".
            (
                Caller::Reader,
                sign(
                    Grant::Scopes("Orders.Read"),
                    Some(json!(["Orders.Viewer Admin"])),
                ),
            ),
            (Caller::Creator, sign(Grant::Scopes("Orders.Create"), None)),
            (
                Caller::FullReader,
                sign(Grant::Scopes("Orders.ReadFull"), None),
            ),
        ]))
    }

    fn header(&self, caller: Caller) -> Option<String> {
        self.0.get(&caller).map(|t| format!("Bearer {t}"))
    }
}

/// Sends the attacks and controls through `envoy` to the framework upstream and checks
/// what was served and which identity arrived.
async fn framework_holds(envoy: &Envoy, upstreams: &Upstreams, tokens: &Tokens, label: &str) {
    let mut expectations: HashMap<String, Caller> = HashMap::new();
    for (i, attack) in attacks().into_iter().enumerate() {
        let id = format!("{label}-attack-{i}");
        let bearer = tokens.header(attack.caller);
        let mut headers: Vec<(&str, &str)> = attack.headers.clone();
        headers.push(("x-test-id", &id));
        if let Some(bearer) = &bearer {
            headers.push(("authorization", bearer));
        }
        let reply = upstream::send(
            envoy.port,
            attack.method,
            attack.target,
            &headers,
            attack.body,
        )
        .await;
        assert!(
            reply.status != 0 && reply.status != 500,
            "{label}: {} {} {:?}: status {}",
            attack.method,
            attack.target,
            attack.headers,
            reply.status
        );
        expectations.insert(id, attack.caller);
    }
    // A spoof through an anonymous route with a forged credential.
    let id = format!("{label}-forged");
    let reply = send(
        envoy.port,
        "GET",
        "/public/page",
        &[
            ("authorization", "Bearer forged.token.here"),
            ("x-test-id", &id),
        ],
    )
    .await;
    assert_eq!(reply.status, 200, "{label}: anonymous route");
    expectations.insert(id.clone(), Caller::Anonymous);

    for (i, (control, resource)) in controls().into_iter().enumerate() {
        let id = format!("{label}-control-{i}");
        let bearer = tokens.header(control.caller);
        let mut headers = vec![("x-test-id", id.as_str())];
        if let Some(bearer) = &bearer {
            headers.push(("authorization", bearer));
        }
        let reply = send(envoy.port, control.method, control.target, &headers).await;
        assert_eq!(
            reply.status, 200,
            "{label}: control {} {} must be allowed: {}",
            control.method, control.target, reply.body
        );
        let record: Value =
            serde_json::from_str(&upstreams.framework.served()[&id][0].to_string()).unwrap();
        assert_eq!(
            record["resource"], resource,
            "{label}: control {}",
            control.target
        );
    }

    let log = upstreams.framework.served();
    for (id, caller) in &expectations {
        for record in log.get(id).into_iter().flatten() {
            if let Some(resource) = record["resource"].as_str() {
                assert!(
                    permitted(*caller).contains(&resource),
                    "{label}: {id} ({caller:?}) reached {resource} as {}",
                    record["method"]
                );
            }
            let identity = record["identity"].to_string();
            assert!(
                !identity.contains("Admin") && !identity.contains("\"admin\""),
                "{label}: {id}: spoofed identity arrived: {identity}"
            );
            if *caller == Caller::Anonymous {
                assert_eq!(record["identity"], json!({}), "{label}: {id}");
                assert_eq!(record["authorization"], Value::Null, "{label}: {id}");
            }
            if let Some(payload) = record["jwt_payload"].as_str() {
                assert_ne!(payload, "eyJzY3AiOiJBZG1pbiJ9", "{label}: {id}");
            }
        }
    }
    // The reader's role "Orders.Viewer Admin" never reads as two roles.
    let reader = &log[&format!("{label}-control-0")][0];
    assert_eq!(
        reader["identity"].get("HTTP_X_AUTH_ROLES"),
        None,
        "{reader}"
    );
    assert_eq!(reader["identity"]["HTTP_X_AUTH_SCOPES"], "Orders.Read");
}

/// The static file server holds a secret under /admin, which only a token with `Admin`
/// may read; the escaped spellings must never return it.
async fn static_server_holds(envoy: &Envoy, label: &str) {
    for target in [
        "/admin%2Fsecret",
        "/admin%2fsecret",
        "/public/..%2Fadmin/secret",
        "/public/..%2fadmin%2fsecret",
        "/public/%2e%2e%2Fadmin/secret",
        "/x/..%2F..%2Fadmin/secret",
        "/ADMIN/secret",
        "/admin/secret",
        "/admin;x/secret",
    ] {
        let reply = send(envoy.port, "GET", target, &[]).await;
        assert!(
            !reply.body.contains("TOP SECRET"),
            "{label}: {target} served the secret ({})",
            reply.status
        );
        assert!(
            [400, 401, 403, 404].contains(&reply.status),
            "{label}: {target}: {}",
            reply.status
        );
    }
    let reply = send(envoy.port, "GET", "/public/index.html", &[]).await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (200, "public page\n"),
        "{label}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_requests_never_reach_what_the_policy_denies() {
    let Some(envoy_bin) = external_tool("envoy") else {
        return;
    };
    let key = SigningKey::rsa("key-1", Algorithm::RS256).unwrap();
    let issuer = DemoIssuer::start(0, &[&key]).await.unwrap();
    let dir = test_dir("no-false-allow");
    let http = free_port();
    let http_listen = format!("127.0.0.1:{http}");
    let portcullis = start_portcullis(
        &dir,
        |grpc| policy(&issuer, grpc),
        &["--http-listen", &http_listen],
    )
    .await;
    let grpc: u16 = portcullis.grpc.rsplit(':').next().unwrap().parse().unwrap();
    let upstreams = start_upstreams(&dir).await;
    let tokens = Tokens::new(&key, &issuer);

    let grpc_yaml = shipped("front-proxy.yaml");
    let http_yaml = shipped("front-proxy-http.yaml");
    let http_port = format!("port_value: {http} ");
    let http_paths = [("port_value: 9002 ", http_port.as_str())];
    for (label, yaml, paths) in [
        ("shipped", grpc_yaml.clone(), &[][..]),
        ("lax", lax(&grpc_yaml), &[][..]),
        ("http-mode", http_yaml, &http_paths[..]),
    ] {
        let envoy =
            start_envoy_yaml(&envoy_bin, &yaml, grpc, upstreams.framework.port, paths).await;
        framework_holds(&envoy, &upstreams, &tokens, label).await;
        if label == "shipped" {
            // The access log prints the path portcullis judged, not a client's header.
            let reply = send(
                envoy.port,
                "GET",
                "/public/real",
                &[("x-envoy-original-path", "/forged/path")],
            )
            .await;
            assert_eq!(reply.status, 200);
            common::wait_for(|| {
                std::fs::read_to_string(&envoy.log)
                    .is_ok_and(|l| l.contains("\"GET /public/real\""))
            })
            .await;
            let log = std::fs::read_to_string(&envoy.log).unwrap();
            assert!(!log.contains("/forged/path"), "{log}");
        }
        let envoy = start_envoy_yaml(&envoy_bin, &yaml, grpc, upstreams.static_port, paths).await;
        static_server_holds(&envoy, label).await;
    }
}
