//! In-process cost of a Check (extract → route → verify → evaluate → respond), beside the
//! floor: the bare `jsonwebtoken` verification of the same token with the same key; and
//! the DPoP path (a bound token with a fresh proof each time) beside the bearer one.
//! `cargo bench --bench check`; docs/src/measurements.md records the runs.

use std::{hint::black_box, sync::Arc};

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use portcullis::{
    config::Config,
    demo::{self, DemoIssuer, DpopKey, Grant, SigningKey},
    pb::auth::CheckRequest,
    server,
    state::AppState,
};
use serde_json::Value;

fn request(token: Option<&str>) -> CheckRequest {
    let bearer = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = bearer
        .iter()
        .map(|b| ("authorization", b.as_str()))
        .collect();
    demo::check_request("GET", "api.local", "/api/orders/42", &headers)
}

struct Setup {
    state: AppState,
    issuer: DemoIssuer,
    tokens: Vec<(String, SigningKey)>,
}

/// The demo policy with RS256 and ES256 keys; `cache_entries` 0 disables the token cache.
fn setup(runtime: &tokio::runtime::Runtime, cache_entries: usize) -> Setup {
    setup_with_routes(runtime, cache_entries, 0)
}

/// The same, with `extra` template routes (`/svcN/items/{id}`) before the demo's own, so
/// that the request's route comes after all of them.
fn setup_with_routes(
    runtime: &tokio::runtime::Runtime,
    cache_entries: usize,
    extra: usize,
) -> Setup {
    setup_with(runtime, cache_entries, extra, "")
}

/// The same, with `more` appended to the configuration.
fn setup_with(
    runtime: &tokio::runtime::Runtime,
    cache_entries: usize,
    extra: usize,
    more: &str,
) -> Setup {
    runtime.block_on(async {
        let rsa = SigningKey::rsa("rs", Algorithm::RS256).unwrap();
        let ec = SigningKey::es256("es").unwrap();
        let issuer = DemoIssuer::start(0, &[&rsa, &ec]).await.unwrap();
        let routes: String = (0..extra)
            .map(|i| {
                format!(
                    "  - name: svc-{i}\n    methods: [GET]\n    path: {{ template: '/svc{i}/items/{{id}}' }}\n    require: {{ scopes: [Svc{i}.Read] }}\n"
                )
            })
            .collect();
        let yaml = format!(
            "{}limits:\n  token_cache_entries: {cache_entries}\n{more}",
            demo::demo_config_yaml(&issuer, "127.0.0.1:0".parse().unwrap())
                .replacen("routes:\n", &format!("routes:\n{routes}"), 1)
        );
        let state = AppState::new(&Config::from_yaml(&yaml, "bench").unwrap()).unwrap();
        while !state.engine().verifier.all_keys_loaded() {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        let claims = demo::access_token_claims(issuer.issuer(), Grant::Scopes("Orders.Read"), 3600);
        let tokens = vec![
            (rsa.sign(&claims).unwrap(), rsa),
            (ec.sign(&claims).unwrap(), ec),
        ];
        Setup {
            state,
            issuer,
            tokens,
        }
    })
}

/// A main file with the demo issuer and no routes, and a policy directory of `n` team
/// files, team `i` scoped to `spiffe://cluster.local/ns/team{i}/*` with 9 template routes
/// and the orders route the benchmark's request takes.
fn setup_with_sets(runtime: &tokio::runtime::Runtime, n: usize) -> (Setup, std::path::PathBuf) {
    let mut setup = setup(runtime, 10_000);
    let dir =
        std::env::temp_dir().join(format!("portcullis-bench-sets-{n}-{}", std::process::id()));
    let policies = dir.join("policies");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&policies).unwrap();
    for i in 0..n {
        let mut text =
            format!("scope: {{ principals: ['spiffe://cluster.local/ns/team{i}/*'] }}\nroutes:\n");
        for j in 0..9 {
            text.push_str(&format!(
                "  - {{ name: r{j}, methods: [GET], path: {{ template: '/svc{j}/items/{{id}}' }}, require: {{ scopes: [Svc.Read] }} }}\n"
            ));
        }
        text.push_str("  - { name: orders, methods: [GET], path: { prefix: /api/orders }, require: { scopes: [Orders.Read] } }\n");
        std::fs::write(policies.join(format!("team{i}.yaml")), text).unwrap();
    }
    let main = format!(
        "issuers:\n  - issuer: \"{}\"\n    jwks_uri: \"{}\"\n    audiences: [\"{}\"]\n    algorithms: [RS256, ES256]\nlimits:\n  token_cache_entries: 10000\npolicy_dir: {}\n",
        setup.issuer.issuer(),
        setup.issuer.jwks_uri(),
        demo::DEMO_AUDIENCE,
        policies.display()
    );
    std::fs::write(dir.join("portcullis.yaml"), main).unwrap();
    let config = Config::load_with_sets(&dir.join("portcullis.yaml"), None, &[]).unwrap();
    setup.state = runtime.block_on(async {
        let state = AppState::new(&config).unwrap();
        while !state.engine().verifier.all_keys_loaded() {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        state
    });
    (setup, dir)
}

/// Whether `state` allows `req`: what a benchmark measures must be the path it names.
fn allows(runtime: &tokio::runtime::Runtime, state: &AppState, req: &CheckRequest) -> bool {
    let answer = runtime
        .block_on(server::answer(state, req))
        .into_response()
        .unwrap();
    matches!(
        answer.http_response,
        Some(portcullis::pb::auth::check_response::HttpResponse::OkResponse(_))
    )
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let cached = setup(&runtime, 10_000);
    let uncached = setup(&runtime, 0);
    let mut group = c.benchmark_group("check");

    let rs256 = request(Some(&cached.tokens[0].0));
    group.bench_function("cached_token", |b| {
        b.to_async(&runtime)
            .iter(|| async { black_box(server::answer(&cached.state, &rs256).await) })
    });
    for (name, index) in [("uncached_rs256", 0), ("uncached_es256", 1)] {
        let req = request(Some(&uncached.tokens[index].0));
        group.bench_function(name, |b| {
            b.to_async(&runtime)
                .iter(|| async { black_box(server::answer(&uncached.state, &req).await) })
        });
    }
    // The deny paths: no token, a tampered payload (signature checked and refused), and
    // a key the issuer never published (after the first refresh, refused within the
    // unknown-kid cooldown without a fetch).
    let stranger = SigningKey::rsa("never-published", Algorithm::RS256).unwrap();
    let claims =
        demo::access_token_claims(cached.issuer.issuer(), Grant::Scopes("Orders.Read"), 3600);
    for (name, req) in [
        ("deny_missing_token", request(None)),
        (
            "deny_bad_signature",
            request(Some(&demo::tamper(
                &cached.tokens[0].0,
                cached.issuer.issuer(),
            ))),
        ),
        (
            "deny_unknown_kid",
            request(Some(&stranger.sign(&claims).unwrap())),
        ),
    ] {
        group.bench_function(name, |b| {
            b.to_async(&runtime)
                .iter(|| async { black_box(server::answer(&cached.state, &req).await) })
        });
    }
    group.finish();

    // The signed identity: minted and signed on every Check when the token is not cached
    // (the verification's cost plus a signature), remembered with a cached token.
    let mut group = c.benchmark_group("signed_identity");
    let keys = std::env::temp_dir().join(format!("portcullis-bench-keys-{}", std::process::id()));
    std::fs::create_dir_all(&keys).unwrap();
    for (name, alg) in [
        ("es256", &rcgen::PKCS_ECDSA_P256_SHA256),
        ("eddsa", &rcgen::PKCS_ED25519),
    ] {
        let file = keys.join(format!("{name}.pem"));
        let pem = rcgen::KeyPair::generate_for(alg).unwrap().serialize_pem();
        std::fs::write(&file, pem).unwrap();
        let section = format!(
            "signed_identity:\n  keys: [{{ file: \"{}\" }}]\n  audience: orders\n  every_route: true\n",
            file.display()
        );
        for (cache, entries) in [("uncached_rs256", 0), ("cached_token", 10_000)] {
            let setup = setup_with(&runtime, entries, 0, &section);
            let req = request(Some(&setup.tokens[0].0));
            group.bench_function(format!("{cache}_signed_{name}"), |b| {
                b.to_async(&runtime)
                    .iter(|| async { black_box(server::answer(&setup.state, &req).await) })
            });
        }
    }
    group.finish();

    // Cost against the number of routes, the request's route after all of them.
    let mut group = c.benchmark_group("routes");
    for extra in [10, 100, 1_000, 10_000] {
        let setup = setup_with_routes(&runtime, 10_000, extra);
        let req = request(Some(&setup.tokens[0].0));
        group.bench_function(format!("cached_token_after_{extra}_routes"), |b| {
            b.to_async(&runtime)
                .iter(|| async { black_box(server::answer(&setup.state, &req).await) })
        });
    }
    group.finish();

    // Cost against the number of issuers (cache off, so the issuer is looked up each
    // time): N exact issuers sharing the demo's keys and N multi-tenant templates before
    // the demo's own; a valid token of the demo issuer, and an `iss` nobody configured
    // (which is compared with every template before it is refused).
    let mut group = c.benchmark_group("issuers");
    for n in [10, 100, 1_000] {
        let setup = setup_with(&runtime, 0, 0, "");
        let jwks = setup.issuer.jwks_uri();
        let extra: String = (0..n)
            .map(|i| {
                format!(
                    "  - issuer: \"https://idp{i}.example.com/\"\n    jwks_uri: \"{jwks}\"\n    audiences: [\"{aud}\"]\n  - issuer: \"https://login{i}.example.com/{{tenantid}}/v2.0\"\n    jwks_uri: \"{jwks}\"\n    audiences: [\"{aud}\"]\n    allowed_tenants: [\"*\"]\n",
                    aud = demo::DEMO_AUDIENCE
                )
            })
            .collect();
        let yaml = format!(
            "{}limits:\n  token_cache_entries: 0\n",
            demo::demo_config_yaml(&setup.issuer, "127.0.0.1:0".parse().unwrap()).replacen(
                "issuers:\n",
                &format!("issuers:\n{extra}"),
                1
            )
        );
        let state = runtime.block_on(async {
            let state = AppState::new(&Config::from_yaml(&yaml, "bench").unwrap()).unwrap();
            while !state.engine().verifier.all_keys_loaded() {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            state
        });
        let valid = request(Some(&setup.tokens[0].0));
        let mut stranger = demo::access_token_claims(
            "https://nobody.example.com/",
            Grant::Scopes("Orders.Read"),
            3600,
        );
        stranger["tid"] = serde_json::json!("t");
        let unknown = request(Some(&setup.tokens[0].1.sign(&stranger).unwrap()));
        for (req, allowed) in [(&valid, true), (&unknown, false)] {
            assert_eq!(allows(&runtime, &state, req), allowed, "{n} issuers");
        }
        for (name, req) in [
            (format!("uncached_rs256_{n}_issuers"), &valid),
            (format!("deny_unknown_issuer_{n}_issuers"), &unknown),
        ] {
            group.bench_function(name, |b| {
                b.to_async(&runtime)
                    .iter(|| async { black_box(server::answer(&state, req).await) })
            });
        }
    }
    group.finish();

    // DPoP: a cached token bound to an ES256 key, with a new proof on every request (made
    // outside the measurement), against the same token's bearer path above. The replay
    // store is sized for every proof the run makes.
    let mut group = c.benchmark_group("dpop");
    let dpop = setup_with(
        &runtime,
        10_000,
        0,
        "dpop:\n  replay:\n    max_entries: 50000000\n",
    );
    let path = "/api/orders/42";
    let htu = format!("https://api.local{path}");
    for (name, key) in [
        ("cached_token_es256_proof", DpopKey::es256().unwrap()),
        ("cached_token_eddsa_proof", DpopKey::ed25519().unwrap()),
        (
            "cached_token_ps256_proof",
            DpopKey::rsa(Algorithm::PS256).unwrap(),
        ),
    ] {
        let mut claims =
            demo::access_token_claims(dpop.issuer.issuer(), Grant::Scopes("Orders.Read"), 3600);
        claims["cnf"] = serde_json::json!({ "jkt": key.thumbprint() });
        let token = dpop.tokens[0].1.sign(&claims).unwrap();
        let authorization = format!("DPoP {token}");
        let fresh = || {
            let proof = key.proof("GET", &htu, Some(&token), None).unwrap();
            demo::check_request(
                "GET",
                "api.local",
                path,
                &[
                    ("authorization", &authorization),
                    ("dpop", &proof),
                    ("x-forwarded-proto", "https"),
                ],
            )
        };
        // What is measured is the allow.
        assert!(allows(&runtime, &dpop.state, &fresh()), "{name}");
        let state = &dpop.state;
        group.bench_function(name, |b| {
            b.to_async(&runtime).iter_batched(
                fresh,
                |req| async move { black_box(server::answer(state, &req).await) },
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();

    // Cost against the number of policy files (10 routes each, scoped by workload): a
    // Check of the last team's workload behind 1 and 1,000 files; and loading and
    // applying a directory of 1,000 files (what a reload does).
    let mut group = c.benchmark_group("policy_sets");
    for n in [1, 1_000] {
        let (setup, dir) = setup_with_sets(&runtime, n);
        let mut req = request(Some(&setup.tokens[0].0));
        if let Some(attributes) = req.attributes.as_mut() {
            attributes.destination = Some(portcullis::pb::auth::attribute_context::Peer {
                principal: format!("spiffe://cluster.local/ns/team{}/sa/api", n - 1),
                ..Default::default()
            });
        }
        assert!(allows(&runtime, &setup.state, &req), "{n} sets");
        group.bench_function(format!("cached_token_behind_{n}_sets"), |b| {
            b.to_async(&runtime)
                .iter(|| async { black_box(server::answer(&setup.state, &req).await) })
        });
        if n == 1_000 {
            group.sample_size(10);
            let main = dir.join("portcullis.yaml");
            group.bench_function("load_and_apply_1000_files", |b| {
                b.iter(|| {
                    let config = Config::load_with_sets(&main, None, &[]).unwrap();
                    runtime.block_on(async { setup.state.reload(&config).unwrap() });
                })
            });
        }
    }
    group.finish();

    // The floor: jsonwebtoken alone, same tokens, same keys, same checks.
    let mut group = c.benchmark_group("jsonwebtoken");
    for (name, index) in [("rs256", 0), ("es256", 1)] {
        let (token, key) = &uncached.tokens[index];
        let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(key.jwk().clone()).unwrap();
        let decoding = Arc::new(DecodingKey::from_jwk(&jwk).unwrap());
        let mut validation = Validation::new(key.alg);
        validation.set_audience(&[demo::DEMO_AUDIENCE]);
        group.bench_function(name, |b| {
            b.iter(|| {
                black_box(jsonwebtoken::decode::<serde_json::Map<String, Value>>(
                    token,
                    &decoding,
                    &validation,
                ))
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
