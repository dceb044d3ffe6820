//! No false allow behind real frameworks: the catalogue of upstream readings
//! (`portcullis readings`) tried against the real thing. Small applications on Django and
//! Flask (PyPI), Express (npm), Rails (Debian's ruby-rails), Symfony and Laravel (Debian's
//! php-symfony-* and php-laravel-framework) — each with an admin area, an admin host, an
//! export and a history endpoint beside broader read routes, configured as their
//! documentation shows a deployment behind a proxy — sit behind a real Envoy with the
//! shipped `envoy/front-proxy.yaml` (and `front-proxy-http.yaml` for two of them), and
//! behind the same Envoy with its protections off (nothing removed before the upstream,
//! every header sent to portcullis), where portcullis's judgement alone must hold. For every
//! catalogue entry, hostile requests must reach no handler the caller may not reach; the
//! legitimate requests of an over-blocking corpus must reach theirs, never refused.

mod common;

use std::collections::HashMap;

use common::{
    envoy::{lax, shipped, start_envoy_yaml, start_portcullis, test_dir},
    external_tool, free_port,
    upstream::{App, Framework, send},
};
use jsonwebtoken::Algorithm;
use portcullis::demo::{self, DemoIssuer, Grant, SigningKey};
use serde_json::Value;

/// The policy: the admin host first, reads broader than the export and history beside
/// them, an anonymous catch-all where spellings that escape a route land.
fn policy(issuer: &DemoIssuer, grpc: std::net::SocketAddr) -> String {
    format!(
        r#"server:
  grpc_listen: "{grpc}"
issuers:
  - issuer: "{iss}"
    jwks_uri: "{jwks}"
    audiences: ["{aud}"]
request_body: sent
routes:
  - {{ name: admin-host, hosts: [admin.example.com], path: {{ prefix: / }}, require: {{ scopes: [Admin] }} }}
  - {{ name: public, path: {{ prefix: /public }}, anonymous: true }}
  - {{ name: admin, path: {{ prefix: /admin }}, require: {{ scopes: [Admin] }} }}
  - {{ name: orders-export, methods: [GET, HEAD], path: {{ exact: /api/orders/export }}, require: {{ scopes: [Orders.Export] }} }}
  - {{ name: orders-history, methods: [GET, HEAD], path: {{ template: "/api/orders/{{id}}/history" }}, require: {{ scopes: [Orders.ReadFull] }} }}
  - {{ name: orders-read, methods: [GET, HEAD], path: {{ prefix: /api/orders }}, require: {{ scopes_any: [Orders.Read, Orders.ReadFull] }} }}
  - {{ name: orders-create, methods: [POST], path: {{ exact: /api/orders }}, require: {{ scopes: [Orders.Create] }} }}
  - {{ name: orders-delete, methods: [DELETE], path: {{ prefix: /api/orders }}, require: {{ scopes: [Orders.Delete] }} }}
  - {{ name: everything-else, path: {{ prefix: / }}, anonymous: true }}
"#,
        iss = issuer.issuer(),
        jwks = issuer.jwks_uri(),
        aud = demo::DEMO_AUDIENCE,
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Caller {
    Anonymous,
    Reader,
    Creator,
    FullReader,
}

/// The handlers each caller may reach.
fn permitted(caller: Caller) -> &'static [&'static str] {
    match caller {
        Caller::Anonymous => &["public"],
        Caller::Reader => &["public", "order", "orders-list"],
        Caller::Creator => &["public", "order-created"],
        Caller::FullReader => &["public", "order", "orders-list", "orders-history"],
    }
}

/// One raw request.
struct Request {
    /// The catalogue entry (or refusal) it tries.
    class: &'static str,
    method: &'static str,
    target: &'static str,
    headers: Vec<(&'static str, &'static str)>,
    body: Vec<u8>,
    caller: Caller,
}

fn request(
    class: &'static str,
    method: &'static str,
    target: &'static str,
    caller: Caller,
) -> Request {
    Request {
        class,
        method,
        target,
        headers: Vec::new(),
        body: Vec::new(),
        caller,
    }
}

impl Request {
    fn with(mut self, name: &'static str, value: &'static str) -> Request {
        self.headers.push((name, value));
        self
    }

    fn body(mut self, content_type: Option<&'static str>, body: &[u8]) -> Request {
        if let Some(content_type) = content_type {
            self.headers.push(("content-type", content_type));
        }
        self.body = body.to_vec();
        self
    }
}

const FORM: Option<&str> = Some("application/x-www-form-urlencoded");
const JSON: Option<&str> = Some("application/json");
const MULTIPART: Option<&str> = Some("multipart/form-data; boundary=XX");
const MULTIPART_DELETE: &[u8] =
    b"--XX\r\nContent-Disposition: form-data; name=\"_method\"\r\n\r\nDELETE\r\n--XX--\r\n";

/// Hostile requests, at least one per catalogue entry and refusal: none may reach a
/// handler its caller may not reach.
fn attacks() -> Vec<Request> {
    use Caller::*;
    let long_form = {
        let mut body = format!("pad={}", "x".repeat(70_000)).into_bytes();
        body.extend_from_slice(b"&_method=DELETE");
        body
    };
    vec![
        // escaped_separators, path_parameters, trailing_slash, ascii_case, head_as_get
        request(
            "escaped_separators",
            "GET",
            "/public/..%2Fadmin/secret",
            Anonymous,
        ),
        request("escaped_separators", "GET", "/admin%2Fsecret", Anonymous),
        request(
            "path_parameters",
            "GET",
            "/public/..;/admin/secret",
            Anonymous,
        ),
        request(
            "path_parameters",
            "GET",
            "/api/orders/7/history;x=1",
            Reader,
        ),
        request("trailing_slash", "GET", "/api/orders/7/history/", Reader),
        request("trailing_slash", "GET", "/api/orders/export/", Reader),
        request("ascii_case", "GET", "/ADMIN/secret", Anonymous),
        request("ascii_case", "GET", "/api/orders/7/HISTORY", Reader),
        request("head_as_get", "HEAD", "/api/orders/7/history", Reader),
        // format_suffix
        request("format_suffix", "GET", "/api/orders/export.json", Reader),
        request("format_suffix", "GET", "/admin.json", Anonymous),
        request("format_suffix", "GET", "/api/orders/7/history.json", Reader),
        // trailing_dots_spaces, control characters (refused)
        request("trailing_dots_spaces", "GET", "/admin./secret", Anonymous),
        request("trailing_dots_spaces", "GET", "/admin%20/secret", Anonymous),
        request(
            "trailing_dots_spaces",
            "GET",
            "/api/orders/export%2e",
            Reader,
        ),
        request("control_characters", "GET", "/api/orders/export%0a", Reader),
        request(
            "control_characters",
            "GET",
            "/api/orders/7/history%0A",
            Reader,
        ),
        // unicode_case
        request("unicode_case", "GET", "/adm%C4%B1n/secret", Anonymous),
        request("unicode_case", "GET", "/ADM%C4%B0N", Anonymous),
        // double_decoding
        request("double_decoding", "GET", "/%2561dmin/secret", Anonymous),
        // override_headers, override_query, php_parameter_names
        request("override_headers", "POST", "/api/orders/7", Anonymous)
            .with("x-http-method-override", "DELETE"),
        request(
            "override_headers",
            "POST",
            "/api/orders/7/history",
            Anonymous,
        )
        .with("x-http-method-override", "GET"),
        request(
            "override_query",
            "POST",
            "/api/orders/7/history?_method=GET",
            Anonymous,
        ),
        request(
            "php_parameter_names",
            "POST",
            "/api/orders/7/history?.method=GET",
            Anonymous,
        ),
        request(
            "php_parameter_names",
            "POST",
            "/api/orders/7/history?+_method=GET",
            Anonymous,
        ),
        request(
            "php_parameter_names",
            "POST",
            "/api/orders/7?%20_method=DELETE",
            Anonymous,
        ),
        // override_form, override_json (and a body longer than Envoy sends)
        request("override_form", "POST", "/api/orders/7/history", Anonymous)
            .body(FORM, b"_method=GET"),
        request("override_form", "POST", "/api/orders/7", Creator)
            .body(FORM, b"a=1&_method=DELETE"),
        request("override_form", "POST", "/api/orders/7", Anonymous).body(None, b"_method=DELETE"),
        request("override_form", "POST", "/api/orders/7", Anonymous)
            .body(MULTIPART, MULTIPART_DELETE),
        request("override_form", "POST", "/api/orders/7", Creator).body(FORM, &long_form),
        request("override_json", "POST", "/api/orders/7/history", Anonymous)
            .body(JSON, br#"{"_method": "GET"}"#),
        request("override_json", "POST", "/api/orders/7", Creator).body(
            Some("application/vnd.api+json"),
            br#"{"x": 1, "_method": "DELETE"}"#,
        ),
        // forwarded_host
        request("forwarded_host", "GET", "/x", Anonymous)
            .with("host", "www.example.com")
            .with("x-forwarded-host", "admin.example.com"),
        request("forwarded_host", "GET", "/public/x", Reader)
            .with("x-forwarded-host", "www.example.com, admin.example.com"),
        request("forwarded_host", "GET", "/x", Anonymous)
            .with("forwarded", "host=admin.example.com;proto=https"),
        // rewrite_headers
        request("rewrite_headers", "GET", "/public/x", Anonymous)
            .with("x-original-url", "/admin/secret"),
        request("rewrite_headers", "GET", "/public/x", Reader)
            .with("x-rewrite-url", "/api/orders/7/history"),
    ]
}

/// Legitimate requests that must reach their handler (the handler named, or any handler
/// but never a refusal by portcullis): the over-blocking corpus.
fn legitimate() -> Vec<(Request, Option<&'static str>)> {
    use Caller::*;
    vec![
        (
            request("control", "GET", "/api/orders/7", Reader),
            Some("order"),
        ),
        (
            request("control", "GET", "/api/orders", Reader),
            Some("orders-list"),
        ),
        (request("control", "HEAD", "/api/orders/7", Reader), None),
        (
            request("control", "GET", "/api/orders/7/history", FullReader),
            Some("orders-history"),
        ),
        (
            request("control", "GET", "/public/page", Anonymous),
            Some("public"),
        ),
        (
            request("control", "POST", "/api/orders", Creator),
            Some("order-created"),
        ),
        (
            request("control", "POST", "/api/orders", Creator).body(FORM, b"name=x&method=card"),
            Some("order-created"),
        ),
        (
            request("control", "POST", "/api/orders", Creator).body(JSON, br#"{"name": "x"}"#),
            Some("order-created"),
        ),
        (
            request("control", "POST", "/api/orders", Creator).with("content-length", "0"),
            Some("order-created"),
        ),
        // Matrix parameters, a literal `%`, Unicode, dots and suffixes where every reading
        // agrees.
        (request("legit", "GET", "/public/file;v=2", Anonymous), None),
        (request("legit", "GET", "/public/50%25A1", Anonymous), None),
        (request("legit", "GET", "/public/100%25", Anonymous), None),
        (
            request("legit", "GET", "/public/caf%C3%A9", Anonymous),
            None,
        ),
        (
            request("legit", "GET", "/public/%E4%B8%AD%E6%96%87", Anonymous),
            None,
        ),
        (
            request("legit", "GET", "/public/adm%C4%B1n", Anonymous),
            None,
        ),
        (
            request("legit", "GET", "/public/report.v2.pdf", Anonymous),
            None,
        ),
        (request("legit", "GET", "/public/dir./x", Anonymous), None),
        (request("legit", "GET", "/public/a%2Fb", Anonymous), None),
        (request("legit", "GET", "/api/orders/7.json", Reader), None),
        (
            request("legit", "GET", "/api/orders?sort=name&page=2", Reader),
            Some("orders-list"),
        ),
        // Overrides and forwarding headers that change nothing.
        (
            request("legit", "POST", "/public/form", Anonymous).body(FORM, b"_method=PUT"),
            None,
        ),
        (
            request("legit", "POST", "/public/upload", Anonymous).body(MULTIPART, MULTIPART_DELETE),
            None,
        ),
        (
            request("legit", "POST", "/public/form", Anonymous)
                .with("x-http-method-override", "PUT"),
            None,
        ),
        (
            request("legit", "GET", "/public/page", Anonymous)
                .with("x-forwarded-host", "www.example.com"),
            None,
        ),
    ]
}

struct Tokens(HashMap<Caller, String>);

impl Tokens {
    fn new(key: &SigningKey, issuer: &DemoIssuer) -> Tokens {
        let sign = |scopes| {
            key.sign(&demo::access_token_claims(
                issuer.issuer(),
                Grant::Scopes(scopes),
                600,
            ))
            .unwrap()
        };
        Tokens(HashMap::from([
            (Caller::Reader, sign("Orders.Read")),
            (Caller::Creator, sign("Orders.Create")),
            (Caller::FullReader, sign("Orders.ReadFull")),
        ]))
    }

    fn header(&self, caller: Caller) -> Option<String> {
        self.0.get(&caller).map(|t| format!("Bearer {t}"))
    }
}

/// Was this answer a refusal by portcullis (its problem+json body names a reason)?
fn refused(status: u16, body: &str) -> bool {
    matches!(status, 400 | 401 | 403) && body.contains("\"reason\"")
}

/// Sends every attack and legitimate request through `envoy` to `framework`; returns the
/// number of legitimate requests that got through.
async fn holds(envoy_port: u16, framework: &Framework, tokens: &Tokens, label: &str) -> usize {
    let mut sent: HashMap<String, (Caller, &'static str)> = HashMap::new();
    let send_one = |request: &Request, id: &str| {
        let bearer = tokens.header(request.caller);
        let mut headers: Vec<(&str, &str)> = request.headers.clone();
        headers.push(("x-test-id", id));
        if let Some(bearer) = &bearer {
            headers.push(("authorization", bearer));
        }
        let (method, target, body) = (request.method, request.target, request.body.clone());
        let headers: Vec<(String, String)> = headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        async move {
            let headers: Vec<(&str, &str)> = headers
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_str()))
                .collect();
            send(envoy_port, method, target, &headers, &body).await
        }
    };
    for (i, attack) in attacks().into_iter().enumerate() {
        let id = format!("{label}-attack-{i}");
        let reply = send_one(&attack, &id).await;
        assert!(
            reply.status != 0 && reply.status < 500,
            "{label}: {} {} {:?}: status {}",
            attack.method,
            attack.target,
            attack.headers,
            reply.status
        );
        sent.insert(id, (attack.caller, attack.class));
    }
    let mut passed = 0;
    let served = |framework: &Framework| framework.served();
    for (i, (request, resource)) in legitimate().into_iter().enumerate() {
        let id = format!("{label}-legit-{i}");
        let reply = send_one(&request, &id).await;
        assert!(
            !refused(reply.status, &reply.body) && reply.status != 0,
            "{label}: legitimate {} {} {:?} was refused: {} {}",
            request.method,
            request.target,
            request.headers,
            reply.status,
            reply.body
        );
        if let Some(resource) = resource {
            let log = served(framework);
            let record = log.get(&id).and_then(|r| r.first());
            assert_eq!(
                record.map(|r| r["resource"].clone()),
                Some(Value::from(resource)),
                "{label}: {} {} reached {record:?} ({})",
                request.method,
                request.target,
                reply.status
            );
        }
        sent.insert(id, (request.caller, request.class));
        passed += 1;
    }
    for (id, records) in served(framework) {
        let Some((caller, class)) = sent.get(&id) else {
            continue;
        };
        for record in records {
            if let Some(resource) = record["resource"].as_str() {
                assert!(
                    permitted(*caller).contains(&resource),
                    "{label}: {id} ({class}, {caller:?}) reached {resource} as {} {} on {}",
                    record["method"],
                    record["test_id"],
                    record["host"]
                );
            }
        }
    }
    passed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_frameworks_never_serve_what_the_policy_denies() {
    let Some(envoy_bin) = external_tool("envoy") else {
        return;
    };
    let key = SigningKey::rsa("key-1", Algorithm::RS256).unwrap();
    let issuer = DemoIssuer::start(0, &[&key]).await.unwrap();
    let dir = test_dir("frameworks");
    let http = free_port();
    let http_listen = format!("127.0.0.1:{http}");
    let portcullis = start_portcullis(
        &dir,
        |grpc| policy(&issuer, grpc),
        &["--http-listen", &http_listen],
    )
    .await;
    let grpc: u16 = portcullis.grpc.rsplit(':').next().unwrap().parse().unwrap();
    let tokens = Tokens::new(&key, &issuer);
    let grpc_yaml = shipped("front-proxy.yaml");
    let lax_yaml = lax(&grpc_yaml);
    let http_yaml = shipped("front-proxy-http.yaml");
    let http_port = format!("port_value: {http} ");
    let http_paths = [("port_value: 9002 ", http_port.as_str())];
    let mut tried = 0;
    for app in App::FRAMEWORKS {
        let Some(framework) = Framework::start_app(app, &dir).await else {
            continue;
        };
        let label = format!("{app:?}");
        for (variant, yaml) in [("", &grpc_yaml), ("-lax", &lax_yaml)] {
            let envoy = start_envoy_yaml(&envoy_bin, yaml, grpc, framework.port, &[]).await;
            let passed = holds(
                envoy.port,
                &framework,
                &tokens,
                &format!("{label}{variant}"),
            )
            .await;
            assert_eq!(passed, legitimate().len());
        }
        // Envoy's HTTP check mode sends the body as the check's own.
        if matches!(app, App::Django | App::Laravel) {
            let envoy =
                start_envoy_yaml(&envoy_bin, &http_yaml, grpc, framework.port, &http_paths).await;
            holds(
                envoy.port,
                &framework,
                &tokens,
                &format!("{label}-http-mode"),
            )
            .await;
        }
        tried += 1;
    }
    assert!(tried > 0 || std::env::var_os("PORTCULLIS_REQUIRE_E2E").is_none());
}
