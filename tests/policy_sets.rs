//! Scoped policy sets, as a platform team runs them: one portcullis for a mesh, a policy
//! directory with one file per team (scoped by the destination workload's SPIFFE ID, an
//! Envoy route's `context_extensions`, or hosts) and a platform baseline. Checks are
//! shaped as an Istio sidecar sends them; a broken team file keeps its last good version
//! while another team's change applies; overlapping scopes are refused naming both files.

mod common;

use std::path::Path;

use common::{InProcessSets, check_request, denied, envoy::test_dir};
use jsonwebtoken::Algorithm;
use portcullis::{
    demo::{self, DemoIssuer, Grant, SigningKey},
    pb::auth::{CheckRequest, attribute_context::Peer},
};
use serde_json::json;

const ORDERS: &str = "spiffe://cluster.local/ns/orders/sa/orders-api";
const BILLING: &str = "spiffe://cluster.local/ns/billing/sa/billing-api";

/// The platform's baseline: a valid token from our issuers for everything but health.
const PLATFORM: &str = "scope: { baseline: true }
routes:
  - name: health
    path: { exact: /healthz }
    anonymous: true
  - name: token
    path: { prefix: / }
    require: { token: any }
";

const ORDERS_FILE: &str = "scope:
  principals: ['spiffe://cluster.local/ns/orders/*']
audiences: [api://orders]
routes:
  - name: health
    path: { exact: /healthz }
    anonymous: true
  - name: items
    methods: [GET]
    path: { prefix: /api/items }
    require: { scopes: [Orders.Read] }
";

const BILLING_FILE: &str = "scope:
  principals: ['spiffe://cluster.local/ns/billing/sa/billing-api']
audiences: [api://billing]
routes:
  - name: items
    methods: [GET]
    path: { prefix: /api/items }
    require: { scopes: [Billing.Read] }
";

/// The main file: the shared issuer (accepting both APIs' audiences; each team file
/// narrows it to its own), no routes of its own: a request no file governs is denied.
fn main_file(issuer: &DemoIssuer, dir: &Path) -> String {
    format!(
        "issuers:\n  - issuer: \"{}\"\n    jwks_uri: \"{}\"\n    audiences: [api://orders, api://billing]\npolicy_dir: {}\n",
        issuer.issuer(),
        issuer.jwks_uri(),
        dir.display()
    )
}

/// A CheckRequest as an Istio sidecar in front of `principal` sends it.
fn sidecar(principal: &str, method: &str, path: &str, token: Option<&str>) -> CheckRequest {
    let authorization = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = authorization
        .iter()
        .map(|a| ("authorization", a.as_str()))
        .collect();
    let mut request = demo::check_request(
        method,
        "orders.orders.svc.cluster.local:8080",
        path,
        &headers,
    );
    if let Some(attributes) = request.attributes.as_mut() {
        attributes.source = Some(Peer {
            principal: "spiffe://cluster.local/ns/frontend/sa/web".into(),
            ..Default::default()
        });
        attributes.destination = Some(Peer {
            principal: principal.into(),
            ..Default::default()
        });
    }
    request
}

struct Tokens {
    orders_read: String,
    billing_read: String,
    /// `Orders.Read` but issued for the billing API.
    orders_scope_for_billing: String,
}

fn tokens(key: &SigningKey, issuer: &DemoIssuer) -> Tokens {
    let token = |scope: &str, aud: &str| {
        let mut claims = demo::access_token_claims(issuer.issuer(), Grant::Scopes(scope), 600);
        claims["aud"] = json!(aud);
        key.sign(&claims).unwrap()
    };
    Tokens {
        orders_read: token("Orders.Read", "api://orders"),
        billing_read: token("Billing.Read", "api://billing"),
        orders_scope_for_billing: token("Orders.Read", "api://billing"),
    }
}

async fn setup(name: &str, files: &[(&str, &str)]) -> (SigningKey, DemoIssuer, std::path::PathBuf) {
    let key = SigningKey::rsa("key-1", Algorithm::RS256).unwrap();
    let issuer = DemoIssuer::start(0, &[&key]).await.unwrap();
    let dir = test_dir(name);
    let policies = dir.join("policies");
    std::fs::create_dir_all(&policies).unwrap();
    for (file, text) in files {
        std::fs::write(policies.join(file), text).unwrap();
    }
    std::fs::write(dir.join("portcullis.yaml"), main_file(&issuer, &policies)).unwrap();
    (key, issuer, dir)
}

#[tokio::test]
async fn each_workload_is_judged_by_its_teams_file_and_the_baseline() {
    let files = [
        ("platform.yaml", PLATFORM),
        ("orders.yaml", ORDERS_FILE),
        ("billing.yaml", BILLING_FILE),
    ];
    let (key, issuer, dir) = setup("sets-judged", &files).await;
    let tokens = tokens(&key, &issuer);
    let portcullis = InProcessSets::start(&dir.join("portcullis.yaml")).await;
    let outcome = |principal: &str, path: &str, token: Option<&str>| {
        portcullis.outcome(sidecar(principal, "GET", path, token))
    };

    // The same path, two workloads, two teams' rules.
    assert_eq!(
        outcome(ORDERS, "/api/items/1", Some(&tokens.orders_read)).await,
        "allow"
    );
    assert_eq!(
        outcome(BILLING, "/api/items/1", Some(&tokens.orders_read)).await,
        "wrong_audience",
        "a token for the orders API is refused by billing's file"
    );
    assert_eq!(
        outcome(BILLING, "/api/items/1", Some(&tokens.billing_read)).await,
        "allow"
    );
    assert_eq!(
        outcome(
            ORDERS,
            "/api/items/1",
            Some(&tokens.orders_scope_for_billing)
        )
        .await,
        "wrong_audience",
        "the orders file accepts tokens for its own API only"
    );
    assert_eq!(
        outcome(ORDERS, "/api/items/1", Some(&tokens.billing_read)).await,
        "wrong_audience"
    );
    // The namespace pattern takes every workload of the namespace.
    assert_eq!(
        outcome(
            "spiffe://cluster.local/ns/orders/sa/worker",
            "/api/items",
            Some(&tokens.orders_read)
        )
        .await,
        "allow"
    );
    // Orders' health route is anonymous, and so is the baseline's.
    assert_eq!(outcome(ORDERS, "/healthz", None).await, "allow");
    // Billing has no health route: its file denies, whatever the baseline allows.
    assert_eq!(
        outcome(BILLING, "/healthz", Some(&tokens.billing_read)).await,
        "no_route"
    );
    // A workload no file governs, and a request without a principal: the main file has
    // no routes, so they reach none.
    for principal in ["spiffe://cluster.local/ns/payments/sa/api", ""] {
        assert_eq!(
            outcome(principal, "/api/items/1", Some(&tokens.orders_read)).await,
            "no_route",
            "{principal:?}"
        );
    }
    // The deny carries the governing route's challenge.
    let response = portcullis
        .check(sidecar(ORDERS, "GET", "/api/items/1", None))
        .await;
    assert_eq!(denied(&response).status, 401);
}

#[tokio::test]
async fn a_baseline_denies_what_a_team_file_would_allow() {
    let open = "scope: { principals: ['spiffe://cluster.local/ns/docs/sa/site'] }
routes:
  - name: public
    path: { prefix: / }
    anonymous: true
";
    let files = [("platform.yaml", PLATFORM), ("docs.yaml", open)];
    let (key, issuer, dir) = setup("sets-baseline", &files).await;
    let tokens = tokens(&key, &issuer);
    let portcullis = InProcessSets::start(&dir.join("portcullis.yaml")).await;
    let docs = "spiffe://cluster.local/ns/docs/sa/site";
    assert_eq!(
        portcullis
            .outcome(sidecar(docs, "GET", "/guide", None))
            .await,
        "missing_token",
        "the platform requires a token everywhere but /healthz"
    );
    assert_eq!(
        portcullis
            .outcome(sidecar(docs, "GET", "/guide", Some(&tokens.orders_read)))
            .await,
        "allow"
    );
    assert_eq!(
        portcullis
            .outcome(sidecar(docs, "GET", "/healthz", None))
            .await,
        "allow"
    );
}

#[tokio::test]
async fn context_extensions_and_hosts_scope_files_and_a_team_may_bring_its_issuer() {
    let team_key = SigningKey::rsa("team-key", Algorithm::RS256).unwrap();
    let team_issuer = DemoIssuer::start(0, &[&team_key]).await.unwrap();
    let catalog = format!(
        "scope: {{ context_extensions: {{ service: catalog }} }}
issuers:
  - issuer: \"{}\"
    jwks_uri: \"{}\"
    audiences: [api://catalog]
routes:
  - name: read
    path: {{ prefix: /catalog }}
    require: {{ scopes: [Catalog.Read] }}
",
        team_issuer.issuer(),
        team_issuer.jwks_uri()
    );
    let shop = "scope: { hosts: [shop.example.com] }
routes:
  - name: read
    path: { prefix: /catalog }
    require: { scopes: [Orders.Read] }
";
    let files = [("catalog.yaml", catalog.as_str()), ("shop.yaml", shop)];
    let (key, issuer, dir) = setup("sets-context", &files).await;
    let tokens = tokens(&key, &issuer);
    let mut claims =
        demo::access_token_claims(team_issuer.issuer(), Grant::Scopes("Catalog.Read"), 600);
    claims["aud"] = json!("api://catalog");
    let team_token = team_key.sign(&claims).unwrap();
    let portcullis = InProcessSets::start(&dir.join("portcullis.yaml")).await;

    let with_context = |host: &str, token: &str, service: Option<&str>| {
        let authorization = format!("Bearer {token}");
        let mut request = demo::check_request(
            "GET",
            host,
            "/catalog/1",
            &[("authorization", &authorization)],
        );
        if let (Some(attributes), Some(service)) = (request.attributes.as_mut(), service) {
            attributes
                .context_extensions
                .insert("service".into(), service.into());
        }
        request
    };
    assert_eq!(
        portcullis
            .outcome(with_context("api.local", &team_token, Some("catalog")))
            .await,
        "allow",
        "the catalog team's own issuer"
    );
    assert_eq!(
        portcullis
            .outcome(with_context(
                "api.local",
                &tokens.orders_read,
                Some("catalog")
            ))
            .await,
        "insufficient_permission"
    );
    assert_eq!(
        portcullis
            .outcome(with_context("api.local", &team_token, Some("search")))
            .await,
        "no_route",
        "another route's context governs nothing here"
    );
    assert_eq!(
        portcullis
            .outcome(with_context(
                "shop.example.com:443",
                &tokens.orders_read,
                None
            ))
            .await,
        "allow"
    );
    assert_eq!(
        portcullis
            .outcome(with_context("shop.example.com", &team_token, None))
            .await,
        "unknown_issuer",
        "the catalog team's issuer is the catalog file's only"
    );
    // In both scopes: the Envoy route's context outranks the host the client wrote.
    assert_eq!(
        portcullis
            .outcome(with_context(
                "shop.example.com",
                &team_token,
                Some("catalog")
            ))
            .await,
        "allow"
    );
}

#[tokio::test]
async fn a_broken_file_keeps_its_last_good_version_while_another_teams_change_applies() {
    let files = [("orders.yaml", ORDERS_FILE), ("billing.yaml", BILLING_FILE)];
    let (key, issuer, dir) = setup("sets-reload", &files).await;
    let tokens = tokens(&key, &issuer);
    let portcullis = InProcessSets::watching(&dir.join("portcullis.yaml")).await;
    let policies = dir.join("policies");
    let outcome = |principal: &str, path: &str, token: &str| {
        portcullis.outcome(sidecar(principal, "GET", path, Some(token)))
    };
    assert_eq!(
        outcome(BILLING, "/api/invoices", &tokens.billing_read).await,
        "no_route"
    );

    // Orders breaks its file (a typo); billing adds a route at the same time.
    let broken = common::edited(ORDERS_FILE, "require: { scopes:", "require: { scope:");
    std::fs::write(policies.join("orders.yaml"), broken).unwrap();
    let billing = format!(
        "{BILLING_FILE}  - name: invoices\n    methods: [GET]\n    path: {{ prefix: /api/invoices }}\n    require: {{ scopes: [Billing.Read] }}\n"
    );
    std::fs::write(policies.join("billing.yaml"), billing).unwrap();
    common::wait_for_async(|| async {
        outcome(BILLING, "/api/invoices", &tokens.billing_read).await == "allow"
    })
    .await;
    assert_eq!(
        outcome(ORDERS, "/api/items/1", &tokens.orders_read).await,
        "allow",
        "orders' last good version still serves"
    );
    let (status, body) = portcullis.admin("/readyz").await;
    assert_eq!(
        status, 200,
        "a refused policy file does not make the replica unready: {body}"
    );
    let report: serde_json::Value = serde_json::from_str(&body).unwrap();
    let files = report["policy_files"].as_array().unwrap();
    let orders = files
        .iter()
        .find(|f| {
            f["path"]
                .as_str()
                .is_some_and(|p| p.ends_with("orders.yaml"))
        })
        .unwrap();
    let problem = orders["problem"].as_str().unwrap();
    assert!(
        problem.contains("orders.yaml:") && problem.contains("scope"),
        "{problem}"
    );
    let (_, metrics) = portcullis.admin("/metrics").await;
    assert!(
        metrics.contains("portcullis_policy_files{state=\"refused\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("portcullis_policy_files{state=\"loaded\"} 1"),
        "{metrics}"
    );

    // Fixed: the new version applies.
    let fixed = common::edited(ORDERS_FILE, "[Orders.Read]", "[Orders.Read, Orders.Audit]");
    std::fs::write(policies.join("orders.yaml"), fixed).unwrap();
    common::wait_for_async(|| async {
        portcullis
            .admin("/metrics")
            .await
            .1
            .contains("portcullis_policy_files{state=\"refused\"} 0")
    })
    .await;
    assert_eq!(
        outcome(ORDERS, "/api/items/1", &tokens.orders_read).await,
        "insufficient_permission"
    );
}

#[tokio::test]
async fn validate_names_each_broken_file_with_its_line_and_both_files_of_an_overlap() {
    let overlap = "scope:\n  principals: ['spiffe://cluster.local/ns/orders/sa/orders-api']\nroutes:\n  - name: all\n    path: { prefix: / }\n    anonymous: true\n";
    let typo = "scope: { hosts: [a.example.com] }\nroutes:\n  - name: r\n    path: { prefix: / }\n    require: { scopes: [A] }\n    methods: [GTE]\n";
    let files = [
        ("orders.yaml", ORDERS_FILE),
        ("orders-admin.yaml", overlap),
        ("typo.yaml", typo),
        ("billing.yaml", BILLING_FILE),
    ];
    let (_key, _issuer, dir) = setup("sets-validate", &files).await;
    let validate = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
            .args(["validate", "--config"])
            .arg(dir.join("portcullis.yaml"))
            .output()
            .unwrap()
    };
    let output = validate();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!output.status.success(), "{text}");
    let policies = dir.join("policies");
    // Files load in name order: billing, orders-admin, orders, typo. orders-admin came
    // first, so orders (same workload) is the one refused, naming both.
    let orders = format!("{}", policies.join("orders.yaml").display());
    let admin = format!("{}", policies.join("orders-admin.yaml").display());
    assert!(
        text.lines()
            .any(|l| l.contains(&orders) && l.contains(&admin) && l.contains("overlap")),
        "{text}"
    );
    assert!(
        text.contains(&format!("{}:6", policies.join("typo.yaml").display())),
        "the typo's file and line:\n{text}"
    );
    let billing = policies.join("billing.yaml");
    assert!(
        text.contains(&format!("{}: valid", billing.display())),
        "{text}"
    );
    // Without the broken files, the directory validates.
    std::fs::remove_file(policies.join("typo.yaml")).unwrap();
    std::fs::remove_file(policies.join("orders-admin.yaml")).unwrap();
    let output = validate();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test]
async fn route_series_follow_traffic_and_stop_at_the_cap() {
    // 10,000 routes: a scrape before any request stays small (no series per route).
    let key = SigningKey::rsa("key-1", Algorithm::RS256).unwrap();
    let issuer = DemoIssuer::start(0, &[&key]).await.unwrap();
    let mut yaml = format!(
        "server: {{ grpc_listen: 127.0.0.1:0, admin_listen: 127.0.0.1:0 }}\nissuers:\n  - issuer: \"{}\"\n    jwks_uri: \"{}\"\n    audiences: [\"{}\"]\nmetrics: {{ max_routes: 3 }}\nroutes:\n",
        issuer.issuer(),
        issuer.jwks_uri(),
        demo::DEMO_AUDIENCE
    );
    for i in 0..10_000 {
        yaml.push_str(&format!(
            "  - {{ name: r{i}, path: {{ prefix: /r{i}/ }}, anonymous: true }}\n"
        ));
    }
    let portcullis = common::InProcess::start(&yaml).await;
    let scrape = || async {
        let url = format!("http://{}/metrics", portcullis.server.admin_addr());
        reqwest::get(url).await.unwrap().text().await.unwrap()
    };
    let before = scrape().await;
    assert!(
        before.len() < 64 * 1024,
        "{} bytes before any request",
        before.len()
    );
    for i in 0..5 {
        let outcome = portcullis
            .outcome(check_request("GET", &format!("/r{i}/x"), &[]))
            .await;
        assert_eq!(outcome, "allow");
    }
    eprintln!(
        "scrape before any request: {} bytes, {} lines",
        before.len(),
        before.lines().count()
    );
    let after = scrape().await;
    let allowed = |route: &str| {
        format!(
            "portcullis_check_duration_seconds_count{{decision=\"allow\",reason=\"none\",route=\"{route}\"}}"
        )
    };
    for route in ["r0", "r1", "r2"] {
        assert!(
            after.contains(&format!("{} 1", allowed(route))),
            "{route}:\n{after}"
        );
    }
    assert!(
        after.contains(&format!("{} 2", allowed("other"))),
        "{after}"
    );
    assert!(!after.contains("route=\"r3\""), "past the cap: other");
    // Opting in seeds every route's series at start: the old size.
    let seeded = common::InProcess::start(&common::edited(
        &yaml,
        "metrics: { max_routes: 3 }",
        "metrics: { preseed_routes: true, max_routes: 20000 }",
    ))
    .await;
    let url = format!("http://{}/metrics", seeded.server.admin_addr());
    let seeded = reqwest::get(url).await.unwrap().text().await.unwrap();
    eprintln!(
        "preseeded scrape: {} bytes, {} lines",
        seeded.len(),
        seeded.lines().count()
    );
    assert!(
        seeded.len() > 10 * before.len(),
        "{} vs {}",
        seeded.len(),
        before.len()
    );
}

/// An HTTP service on a free loopback port that answers every request with its name.
async fn named_upstream(name: &'static str) -> (u16, tokio::task::JoinHandle<std::io::Result<()>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = axum::Router::new().fallback(move || async move { name });
    (
        port,
        tokio::spawn(async move { axum::serve(listener, app).await }),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envoy_routes_select_their_teams_file_through_context_extensions() {
    let Some(envoy) = common::external_tool("envoy") else {
        return;
    };
    // The standalone-Envoy example as shipped: its envoy.yaml, its two teams' files and
    // the platform baseline, on loopback.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let example = root.join("k8s/examples/standalone-envoy");
    let read = |path: std::path::PathBuf| std::fs::read_to_string(path).unwrap();
    let files = [
        ("shipping.yaml", read(example.join("shipping.yaml"))),
        ("returns.yaml", read(example.join("returns.yaml"))),
        (
            "platform.yaml",
            read(root.join("k8s/components/policy-directory/platform.yaml")),
        ),
    ];
    let files: Vec<(&str, &str)> = files.iter().map(|(n, t)| (*n, t.as_str())).collect();
    let (key, issuer, dir) = setup("sets-envoy", &files).await;
    let main = common::edited(
        &std::fs::read_to_string(dir.join("portcullis.yaml")).unwrap(),
        "audiences: [api://orders, api://billing]",
        "audiences: [api://shipping, api://returns]",
    );
    std::fs::write(dir.join("portcullis.yaml"), main).unwrap();
    let portcullis = InProcessSets::start(&dir.join("portcullis.yaml")).await;
    let (shipping, _shipping_task) = named_upstream("shipping").await;
    let (returns, _returns_task) = named_upstream("returns").await;
    let returns_port = format!("port_value: {returns} ");
    let envoy = common::envoy::start_envoy_yaml(
        &envoy,
        &read(example.join("envoy.yaml")),
        portcullis.grpc_addr().port(),
        shipping,
        &[
            ("portcullis.portcullis.svc.cluster.local", "127.0.0.1"),
            ("shipping.shipping.svc.cluster.local", "127.0.0.1"),
            ("returns.returns.svc.cluster.local", "127.0.0.1"),
            ("port_value: 8081 ", &returns_port),
        ],
    )
    .await;
    let token = |scope: &str, aud: &str| {
        let mut claims = demo::access_token_claims(issuer.issuer(), Grant::Scopes(scope), 600);
        claims["aud"] = json!(aud);
        key.sign(&claims).unwrap()
    };
    let track = token("Shipping.Track", "api://shipping");
    let request = token("Returns.Request", "api://returns");
    let client = reqwest::Client::new();
    let get = |path: &str, token: Option<&str>| {
        let mut builder = client.get(format!("{}{path}", envoy.base));
        if let Some(token) = token {
            builder = builder.bearer_auth(token);
        }
        async move {
            let response = builder.send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.text().await.unwrap())
        }
    };
    assert_eq!(
        get("/shipping/parcels/7", Some(&track)).await,
        (200, "shipping".into())
    );
    assert_eq!(
        get("/returns/requests/7", Some(&request)).await,
        (200, "returns".into())
    );
    // Each route's Checks are judged by its team's file: the other team's token is for
    // another API, and the same scope on another route is not enough.
    for (path, token) in [
        ("/returns/requests/7", &track),
        ("/shipping/parcels/7", &request),
    ] {
        let (status, body) = get(path, Some(token)).await;
        assert_eq!(status, 401, "{body}");
        assert!(body.contains("wrong_audience"), "{body}");
    }
    let (status, body) = get("/shipping/labels", Some(&track)).await;
    assert_eq!(status, 403, "GET: no such route: {body}");
    // The platform's baseline: a token everywhere.
    assert_eq!(get("/shipping/parcels/7", None).await.0, 401);
    // A path of no team's route: checked, and no file governs it.
    let (status, body) = get("/admin", Some(&track)).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("no_route"), "{body}");
    assert_eq!(get("/envoy-health", None).await.0, 200);
}
