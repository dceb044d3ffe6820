//! Forward auth that judges the original request, with the real proxies: Debian's nginx
//! (`auth_request`) and Caddy (`forward_auth`) running the example configurations in
//! `examples/proxies/` verbatim (free ports substituted), in front of the framework-like
//! upstream, asking the real portcullis binary in the matching HTTP dialect. Traefik is
//! not packaged here: its ForwardAuth convention (the same `X-Forwarded-*` headers) is
//! checked directly against the `forwarded` dialect.

mod common;

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use common::{
    ChildGuard,
    envoy::{start_portcullis, test_dir},
    external_tool, free_port,
    upstream::Framework,
};
use jsonwebtoken::Algorithm;
use portcullis::demo::{self, DemoIssuer, Grant, SigningKey};
use serde_json::Value;

/// The demo policy plus an anonymous `/public`.
fn policy(issuer: &DemoIssuer, grpc: std::net::SocketAddr) -> String {
    demo::demo_config_yaml(issuer, grpc).replace(
        "routes:\n",
        "routes:\n  - { name: public, path: { prefix: /public }, anonymous: true }\n",
    )
}

/// `examples/proxies/<file>` with the ports replaced: proxy 8000, portcullis 9002, API 8080.
fn example(file: &str, proxy: u16, check: u16, api: u16) -> String {
    let path = format!("{}/examples/proxies/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(path).unwrap();
    for port in ["127.0.0.1:8000", "127.0.0.1:9002", "127.0.0.1:8080"] {
        assert!(
            text.contains(port),
            "{file} no longer listens/points at {port}"
        );
    }
    text.replace("127.0.0.1:8000", &format!("127.0.0.1:{proxy}"))
        .replace("127.0.0.1:9002", &format!("127.0.0.1:{check}"))
        .replace("127.0.0.1:8080", &format!("127.0.0.1:{api}"))
}

struct World {
    key: SigningKey,
    issuer: DemoIssuer,
    dir: PathBuf,
    framework: Framework,
}

impl World {
    async fn start(name: &str) -> World {
        let key = SigningKey::rsa("key-1", Algorithm::RS256).unwrap();
        let issuer = DemoIssuer::start(0, &[&key]).await.unwrap();
        let dir = test_dir(name);
        let framework = Framework::start(&dir).await;
        World {
            key,
            issuer,
            dir,
            framework,
        }
    }

    fn bearer(&self, scopes: &str) -> String {
        let claims = demo::access_token_claims(self.issuer.issuer(), Grant::Scopes(scopes), 600);
        format!("Bearer {}", self.key.sign(&claims).unwrap())
    }

    /// The portcullis binary with its HTTP check listener in `dialect`; its port.
    async fn portcullis(&self, dialect: &str) -> (common::envoy::Portcullis, u16) {
        let http = free_port();
        let listen = format!("127.0.0.1:{http}");
        let dir = self.dir.join(dialect);
        std::fs::create_dir_all(&dir).unwrap();
        let server = start_portcullis(
            &dir,
            |grpc| policy(&self.issuer, grpc),
            &["--http-listen", &listen, "--http-dialect", dialect],
        )
        .await;
        common::wait_for_port(http).await;
        (server, http)
    }
}

struct Reply {
    status: u16,
    challenge: Option<String>,
    body: Value,
}

async fn send(base: &str, method: &str, path: &str, headers: &[(&str, &str)]) -> Reply {
    let client = reqwest::Client::new();
    let mut request = client.request(method.parse().unwrap(), format!("{base}{path}"));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned());
    let text = response.text().await.unwrap_or_default();
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Reply {
        status,
        challenge,
        body,
    }
}

/// What the upstream read for identity header `name` (`HTTP_X_AUTH_…`), empty as absent.
fn identity<'a>(body: &'a Value, name: &str) -> Option<&'a str> {
    body["identity"][name].as_str().filter(|v| !v.is_empty())
}

/// A DPoP-bound token (to a fresh key) through the proxy: its proof names the URI the
/// client used, which reaches portcullis in the proxy's headers; a replay is refused with
/// a DPoP challenge the proxy relays.
async fn dpop_through_the_proxy(world: &World, base: &str, label: &str) {
    let key = demo::DpopKey::es256().unwrap();
    let mut claims =
        demo::access_token_claims(world.issuer.issuer(), Grant::Scopes("Orders.Read"), 600);
    claims["cnf"] = serde_json::json!({ "jkt": key.thumbprint() });
    let token = world.key.sign(&claims).unwrap();
    let target = format!("{base}/api/orders");
    let proof = key.proof("GET", &target, Some(&token), None).unwrap();
    let authorization = format!("DPoP {token}");
    let headers = [("authorization", authorization.as_str()), ("dpop", &proof)];
    let reply = send(base, "GET", "/api/orders", &headers).await;
    assert_eq!(reply.status, 200, "{label}: {}", reply.body);
    assert_eq!(
        identity(&reply.body, "HTTP_X_AUTH_BINDING"),
        Some("dpop"),
        "{label}"
    );
    let replay = send(base, "GET", "/api/orders", &headers).await;
    assert_eq!(replay.status, 401, "{label}");
    let challenge = replay.challenge.unwrap_or_default();
    assert!(
        challenge.starts_with("DPoP ") && challenge.contains("invalid_dpop_proof"),
        "{label}: {challenge}"
    );
}

/// The same end-to-end expectations for every proxy in front of the framework upstream.
async fn proxy_judges_the_original_request(world: &World, base: &str, label: &str) {
    dpop_through_the_proxy(world, base, label).await;
    let reader = world.bearer("Orders.Read");
    // A read with a read token: allowed, identity from the token, spoofs replaced.
    let reply = send(
        base,
        "GET",
        "/api/orders",
        &[
            ("authorization", &reader),
            ("x-auth-subject", "admin"),
            ("x-auth-roles", "Orders.ReadWrite.All"),
            ("x-auth-binding", "dpop"),
            ("x-auth-binding-thumbprint", "forged"),
        ],
    )
    .await;
    assert_eq!(reply.status, 200, "{label}: {}", reply.body);
    assert_eq!(reply.body["resource"], "orders-list", "{label}");
    assert_eq!(
        identity(&reply.body, "HTTP_X_AUTH_SUBJECT"),
        Some("demo-subject-AAbbCC"),
        "{label}"
    );
    assert_eq!(
        identity(&reply.body, "HTTP_X_AUTH_SCOPES"),
        Some("Orders.Read")
    );
    for spoofed in [
        "HTTP_X_AUTH_ROLES",
        "HTTP_X_AUTH_BINDING",
        "HTTP_X_AUTH_BINDING_THUMBPRINT",
    ] {
        assert_eq!(
            identity(&reply.body, spoofed),
            None,
            "{label}: {spoofed} spoof removed"
        );
    }
    assert_eq!(
        reply.body["authorization"].as_str(),
        Some(reader.as_str()),
        "{label}"
    );

    // Writes with a read token: judged as the DELETE it is.
    let hits = world.framework.hits();
    let reply = send(
        base,
        "DELETE",
        "/api/orders/7",
        &[("authorization", &reader)],
    )
    .await;
    assert_eq!(reply.status, 403, "{label}: DELETE");
    let challenge = reply.challenge.unwrap_or_default();
    assert!(
        challenge.contains("error=\"insufficient_scope\"")
            && challenge.contains("scope=\"Orders.ReadWrite\""),
        "{label}: DELETE: {challenge:?}"
    );
    // A proxy sends no body: a POST, which a `_method` in its body could make a GET (read
    // by other rules), is refused (nginx relays 403 for a 400).
    let reply = send(base, "POST", "/api/orders", &[("authorization", &reader)]).await;
    assert_eq!(
        reply.status,
        if label == "nginx" { 403 } else { 400 },
        "{label}: POST"
    );
    // No token: 401 with the bare challenge.
    let reply = send(base, "GET", "/api/orders", &[]).await;
    assert_eq!(reply.status, 401, "{label}");
    assert_eq!(
        reply.challenge.as_deref(),
        Some("Bearer realm=\"portcullis-demo\""),
        "{label}"
    );
    // Path tricks and overrides are judged on the original request too.
    for path in ["/public/..%2Fapi/orders", "/api/orders?_method=DELETE"] {
        let reply = send(base, "POST", path, &[("authorization", &reader)]).await;
        assert!(
            [400, 403].contains(&reply.status),
            "{label}: POST {path}: {}",
            reply.status
        );
    }
    assert_eq!(
        world.framework.hits(),
        hits,
        "{label}: no denied request reached the API"
    );

    // An anonymous route: no identity, and the forged credential does not go on.
    let reply = send(
        base,
        "GET",
        "/public/page",
        &[
            ("authorization", "Bearer forged.token.value"),
            ("x-auth-subject", "admin"),
        ],
    )
    .await;
    assert_eq!(reply.status, 200, "{label}");
    assert_eq!(reply.body["resource"], "public");
    assert_eq!(
        identity(&reply.body, "HTTP_X_AUTH_SUBJECT"),
        None,
        "{label}"
    );
    assert_eq!(
        reply.body["authorization"]
            .as_str()
            .filter(|a| !a.is_empty()),
        None,
        "{label}: the unverified credential stays at the proxy"
    );
}

/// nginx with a main configuration of the test's own that includes the example snippet.
fn start_nginx(nginx: &Path, dir: &Path, snippet: &str) -> ChildGuard {
    let conf_d = dir.join("conf.d");
    std::fs::create_dir_all(&conf_d).unwrap();
    std::fs::write(conf_d.join("portcullis.conf"), snippet).unwrap();
    let d = dir.display();
    let main = format!(
        "daemon off;\nmaster_process off;\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\n\
         events {{}}\nhttp {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  \
         proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  \
         scgi_temp_path {d}/scgi;\n  include {d}/conf.d/*.conf;\n}}\n"
    );
    let conf = dir.join("nginx.conf");
    std::fs::write(&conf, main).unwrap();
    let child = Command::new(nginx)
        .arg("-p")
        .arg(dir)
        .arg("-c")
        .arg(&conf)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    ChildGuard(child)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_auth_request_judges_the_original_request() {
    let Some(nginx) = external_tool("nginx") else {
        return;
    };
    let world = World::start("nginx").await;
    let (_portcullis, check) = world.portcullis("nginx").await;
    let proxy = free_port();
    let snippet = example("nginx.conf", proxy, check, world.framework.port);
    let _nginx = start_nginx(&nginx, &world.dir.join("nginx-run"), &snippet);
    let base = format!("http://127.0.0.1:{proxy}");
    common::wait_for_async(|| async { reqwest::get(format!("{base}/public/x")).await.is_ok() })
        .await;
    proxy_judges_the_original_request(&world, &base, "nginx").await;

    // A misconfigured proxy that does not say what to judge gets a deny, never an allow.
    let direct = format!("http://127.0.0.1:{check}");
    let reply = send(
        &direct,
        "GET",
        "/api/orders",
        &[("authorization", &world.bearer("Orders.Read"))],
    )
    .await;
    assert_eq!(
        reply.status, 403,
        "nginx dialect without X-Original-*: 400 answered as 403"
    );
    assert_eq!(reply.body["reason"], "invalid_request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caddy_forward_auth_judges_the_original_request() {
    let Some(caddy) = external_tool("caddy") else {
        return;
    };
    let world = World::start("caddy").await;
    let (_portcullis, check) = world.portcullis("forwarded").await;
    let proxy = free_port();
    let run = world.dir.join("caddy-run");
    std::fs::create_dir_all(&run).unwrap();
    let caddyfile = run.join("Caddyfile");
    std::fs::write(
        &caddyfile,
        example("Caddyfile", proxy, check, world.framework.port),
    )
    .unwrap();
    let child = Command::new(caddy)
        .args(["run", "--adapter", "caddyfile", "--config"])
        .arg(&caddyfile)
        .env("XDG_CONFIG_HOME", &run)
        .env("XDG_DATA_HOME", &run)
        .env("HOME", &run)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _caddy = ChildGuard(child);
    let base = format!("http://127.0.0.1:{proxy}");
    common::wait_for_async(|| async {
        reqwest::get(format!("{base}/public/x"))
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;
    proxy_judges_the_original_request(&world, &base, "caddy").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traefik_forward_auth_headers_are_read_by_the_forwarded_dialect() {
    let world = World::start("traefik").await;
    let (_portcullis, check) = world.portcullis("forwarded").await;
    let base = format!("http://127.0.0.1:{check}");
    let reader = world.bearer("Orders.Read");
    // As Traefik's ForwardAuth asks: GET to the auth address, the original request in
    // X-Forwarded-Method / -Uri / -Host / -Proto, the client's headers copied.
    let traefik = |method: &'static str, uri: &'static str| {
        [
            ("x-forwarded-method", method),
            ("x-forwarded-uri", uri),
            ("x-forwarded-host", "api.example.com"),
            ("x-forwarded-proto", "https"),
        ]
    };
    let mut headers = traefik("GET", "/api/orders/7").to_vec();
    headers.push(("authorization", &reader));
    let reply = send(&base, "GET", "/", &headers).await;
    assert_eq!(reply.status, 200);
    let mut headers = traefik("DELETE", "/api/orders/7").to_vec();
    headers.push(("authorization", &reader));
    let reply = send(&base, "GET", "/", &headers).await;
    assert_eq!(reply.status, 403);
    assert!(reply.challenge.unwrap().contains("insufficient_scope"));
    // Without the original request's headers: invalid_request, never judged as "GET /".
    let reply = send(&base, "GET", "/api/orders", &[("authorization", &reader)]).await;
    assert_eq!(
        (reply.status, reply.body["reason"].as_str()),
        (400, Some("invalid_request"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_http_check_listener_speaks_tls_with_client_certificates() {
    let world = World::start("http-tls").await;
    let pki = common::Pki::generate("http-tls");
    let http = free_port();
    let tls = format!(
        "  http_listen: 127.0.0.1:{http}\n  http_dialect: forwarded\n  http_tls:\n    cert_file: {}\n    key_file: {}\n    client_ca_file: {}\n",
        pki.path("server.crt"),
        pki.path("server.key"),
        pki.path("ca.crt")
    );
    let _portcullis = start_portcullis(
        &pki.dir,
        |grpc| policy(&world.issuer, grpc).replace("server:\n", &format!("server:\n{tls}")),
        &[],
    )
    .await;
    let ca =
        reqwest::Certificate::from_pem(&std::fs::read(pki.dir.join("ca.crt")).unwrap()).unwrap();
    let client = |identity: Option<reqwest::Identity>| {
        let builder = reqwest::Client::builder()
            .add_root_certificate(ca.clone())
            .resolve(
                "portcullis.internal",
                format!("127.0.0.1:{http}").parse().unwrap(),
            );
        match identity {
            Some(identity) => builder.identity(identity),
            None => builder,
        }
        .build()
        .unwrap()
    };
    let mut pem = std::fs::read(pki.dir.join("envoy-client.crt")).unwrap();
    pem.extend(std::fs::read(pki.dir.join("envoy-client.key")).unwrap());
    let proxy = client(Some(reqwest::Identity::from_pem(&pem).unwrap()));
    let url = format!("https://portcullis.internal:{http}/");
    let ask = |client: &reqwest::Client| {
        client
            .get(&url)
            .header("x-forwarded-method", "GET")
            .header("x-forwarded-uri", "/api/orders")
            .header("x-forwarded-host", "api.example.com")
            .header("authorization", world.bearer("Orders.Read"))
            .send()
    };
    let reply = ask(&proxy).await.unwrap();
    assert_eq!(reply.status(), 200);
    assert_eq!(reply.headers()["x-auth-scopes"], "Orders.Read");
    // Without a client certificate the listener cannot be asked at all.
    assert!(ask(&client(None)).await.is_err());
}

/// A forward-auth proxy asking the listener in its default `envoy` dialect would have its
/// subrequest judged (`GET /auth`): refused instead. And in the `envoy` dialect the check's
/// body is the request's, read for a method override as Envoy's `with_request_body` sends it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_envoy_dialect_refuses_other_dialects_and_reads_the_body() {
    let world = World::start("envoy-dialect").await;
    let (_portcullis, check) = world.portcullis("envoy").await;
    let base = format!("http://127.0.0.1:{check}");
    let writer = world.bearer("Orders.ReadWrite");
    for (name, value) in [
        ("x-original-uri", "/api/orders/7"),
        ("x-original-method", "DELETE"),
        ("x-forwarded-uri", "/api/orders/7"),
        ("x-forwarded-method", "DELETE"),
    ] {
        let reply = send(
            &base,
            "GET",
            "/public/x",
            &[(name, value), ("authorization", &writer)],
        )
        .await;
        assert_eq!(reply.status, 400, "{name}");
        assert_eq!(reply.body["reason"], "invalid_request", "{name}");
    }
    let form = |body: &'static str| {
        reqwest::Client::new()
            .post(format!("{base}/api/orders/7"))
            .header("authorization", &writer)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-envoy-auth-partial-body", "false")
            .body(body)
            .send()
    };
    // A POST /api/orders/7 that its body turns into GET (another route): refused.
    assert_eq!(form("_method=GET").await.unwrap().status(), 400);
    // The same POST without an override is judged as the POST it is.
    assert_eq!(form("note=x").await.unwrap().status(), 200);
}
