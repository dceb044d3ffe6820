//! The signed identity end to end: portcullis (the binary) signs it on allow, a real Envoy
//! running the shipped `envoy/front-proxy.yaml` carries it, and an upstream that trusts no
//! header verifies it with a stock library (PyJWT, `tests/upstreams/identity_verifier.py`)
//! against portcullis's JWKS — through a client's forged copy, a key rotation and a second
//! replica sharing the keys.

mod common;

use std::{
    path::Path,
    process::{Command, Stdio},
    time::Duration,
};

use common::{
    ChildGuard,
    envoy::{start_envoy, start_portcullis, test_dir},
    external_tool, free_port,
};
use portcullis::demo::{DemoIssuer, Grant, SigningKey, access_token_claims, demo_config_yaml};
use serde_json::Value;

const HEADER: &str = "x-portcullis-identity";

fn write_key(dir: &Path, name: &str, alg: &'static rcgen::SignatureAlgorithm) {
    let pem = rcgen::KeyPair::generate_for(alg).unwrap().serialize_pem();
    std::fs::write(dir.join(name), pem).unwrap();
}

/// The demo policy signing identities on every protected route with `keys` (file names in
/// `dir`, the first signing).
fn config(issuer: &DemoIssuer, grpc: std::net::SocketAddr, dir: &Path, keys: [&str; 2]) -> String {
    let [first, second] = keys.map(|k| dir.join(k).display().to_string());
    format!(
        "{}signed_identity:\n  keys: [{{ file: \"{first}\", kid: {} }}, {{ file: \"{second}\", kid: {} }}]\n  audience: orders-service\n  every_route: true\n",
        demo_config_yaml(issuer, grpc),
        keys[0].trim_end_matches(".pem"),
        keys[1].trim_end_matches(".pem"),
    )
}

/// The verifying upstream on a free port, keys from `jwks`.
async fn start_verifier(python: &Path, jwks: &str) -> (ChildGuard, u16) {
    let port = free_port();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/upstreams/identity_verifier.py");
    let mut child = Command::new(python)
        .arg(script)
        .args([&port.to_string(), jwks, "orders-service", HEADER])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let guard = ChildGuard(child);
    let ready = tokio::task::spawn_blocking(move || {
        use std::io::BufRead;
        let mut lines = std::io::BufReader::new(stdout).lines();
        let ready = lines.next().is_some_and(|l| l.is_ok_and(|l| l == "ready"));
        // Keep reading so that the verifier never writes to a closed pipe.
        std::thread::spawn(move || lines.for_each(drop));
        ready
    });
    let ready = tokio::time::timeout(Duration::from_secs(30), ready).await;
    assert!(matches!(ready, Ok(Ok(true))), "the verifier did not start");
    (guard, port)
}

/// Status and JSON body of a GET through Envoy.
async fn get(base: &str, path: &str, headers: &[(&str, &str)]) -> (u16, Value) {
    let mut request = reqwest::Client::new().get(format!("{base}{path}"));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let body = response.text().await.unwrap();
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_verifies_the_signed_identity_through_forgery_rotation_and_replicas() {
    let (Some(envoy), Some(python)) = (external_tool("envoy"), external_tool("python")) else {
        return;
    };
    let dir = test_dir("signed-identity");
    write_key(&dir, "k1.pem", &rcgen::PKCS_ECDSA_P256_SHA256);
    write_key(&dir, "k2.pem", &rcgen::PKCS_ED25519);
    let key = SigningKey::rsa("idp-1", jsonwebtoken::Algorithm::RS256).unwrap();
    let issuer = DemoIssuer::start(0, &[&key]).await.unwrap();

    // Two replicas with the same key files; the upstream fetches the keys from the second,
    // Envoy asks the first.
    let first_dir = dir.join("first");
    let second_dir = dir.join("second");
    std::fs::create_dir_all(&first_dir).unwrap();
    std::fs::create_dir_all(&second_dir).unwrap();
    let first = start_portcullis(
        &first_dir,
        |g| config(&issuer, g, &dir, ["k1.pem", "k2.pem"]),
        &[],
    )
    .await;
    let second = start_portcullis(
        &second_dir,
        |g| config(&issuer, g, &dir, ["k1.pem", "k2.pem"]),
        &[],
    )
    .await;
    let jwks = format!("http://{}/.well-known/jwks.json", second.admin);
    let (_verifier, upstream) = start_verifier(&python, &jwks).await;
    let grpc: u16 = first.grpc.rsplit(':').next().unwrap().parse().unwrap();
    let envoy = start_envoy(&envoy, "front-proxy.yaml", grpc, upstream, &[]).await;

    let claims = access_token_claims(issuer.issuer(), Grant::Scopes("Orders.Read"), 600);
    let token = key.sign(&claims).unwrap();
    let bearer = format!("Bearer {token}");
    let (status, body) = get(&envoy.base, "/api/orders/7", &[("authorization", &bearer)]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["kid"], "k1", "signed by the first key");
    let verified = &body["claims"];
    assert_eq!(verified["sub"], claims["sub"]);
    assert_eq!(verified["tid"], claims["tid"]);
    assert_eq!(verified["scope"], "Orders.Read");
    assert_eq!(verified["route"], "orders-read");
    assert_eq!(verified["idp"], issuer.issuer());
    let lifetime = verified["exp"].as_u64().unwrap() - verified["iat"].as_u64().unwrap();
    assert!(lifetime <= 300, "{lifetime}");

    // A client's own copy never arrives: replaced on a protected route, removed on an
    // anonymous one (where the upstream then has no identity to verify).
    let forged = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJhZG1pbiJ9.";
    let (status, body) = get(
        &envoy.base,
        "/api/orders/7",
        &[("authorization", &bearer), (HEADER, forged)],
    )
    .await;
    assert_eq!(
        (status, &body["claims"]["sub"]),
        (200, &claims["sub"]),
        "{body}"
    );
    let (status, body) = get(&envoy.base, "/healthz", &[(HEADER, forged)]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("0 identity headers"))
    );

    // Rotation: the Ed25519 key signs now, the P-256 one stays published. Every request
    // across the change verifies (the upstream fetches the keys again for the new kid).
    let rotated = config(
        &issuer,
        first.grpc.parse().unwrap(),
        &dir,
        ["k2.pem", "k1.pem"],
    );
    std::fs::write(first_dir.join("portcullis.yaml"), &rotated).unwrap();
    std::fs::write(
        second_dir.join("portcullis.yaml"),
        config(
            &issuer,
            second.grpc.parse().unwrap(),
            &dir,
            ["k2.pem", "k1.pem"],
        ),
    )
    .unwrap();
    let mut kids = Vec::new();
    for _ in 0..60 {
        let (status, body) = get(&envoy.base, "/api/orders/7", &[("authorization", &bearer)]).await;
        assert_eq!(
            status, 200,
            "every request verifies across the rotation: {body}"
        );
        kids.push(body["kid"].as_str().unwrap().to_owned());
        if kids.last().is_some_and(|k| k == "k2") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        kids.last().map(String::as_str),
        Some("k2"),
        "the new key signs: {kids:?}"
    );
    // The other replica reloads too: the new key first, the old one still published.
    let published = || async {
        let text = reqwest::get(&jwks).await.unwrap().text().await.unwrap();
        let set: Value = serde_json::from_str(&text).unwrap_or_default();
        set["keys"]
            .as_array()
            .map(|keys| {
                keys.iter()
                    .filter_map(|k| k["kid"].as_str())
                    .map(str::to_owned)
                    .collect::<Vec<String>>()
            })
            .unwrap_or_default()
    };
    common::wait_for_async(|| async { published().await == ["k2", "k1"] }).await;

    // A key file replaced in place (a rotated Secret, the config file unchanged) is read
    // again: the published key changes.
    let x_of_k1 = || async {
        let text = reqwest::get(&jwks).await.unwrap().text().await.unwrap();
        let set: Value = serde_json::from_str(&text).unwrap_or_default();
        set["keys"][1]["x"].as_str().unwrap_or_default().to_owned()
    };
    let before = x_of_k1().await;
    write_key(&dir, "k1.pem", &rcgen::PKCS_ECDSA_P256_SHA256);
    common::wait_for_async(|| async { x_of_k1().await != before }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_token_reuses_its_signed_identity_until_half_its_lifetime() {
    let dir = test_dir("signed-identity-memo");
    write_key(&dir, "k1.pem", &rcgen::PKCS_ECDSA_P256_SHA256);
    write_key(&dir, "k2.pem", &rcgen::PKCS_ECDSA_P256_SHA256);
    let key = SigningKey::rsa("idp-1", jsonwebtoken::Algorithm::RS256).unwrap();
    let issuer = DemoIssuer::start(0, &[&key]).await.unwrap();
    let yaml = config(
        &issuer,
        "127.0.0.1:0".parse().unwrap(),
        &dir,
        ["k1.pem", "k2.pem"],
    )
    .replace(
        "  every_route: true\n",
        "  every_route: true\n  max_lifetime: 10s\n",
    )
    .replacen("server:\n", "server:\n  admin_listen: 127.0.0.1:0\n", 1);
    let portcullis = common::InProcess::start(&yaml).await;
    let token = key
        .sign(&access_token_claims(
            issuer.issuer(),
            Grant::Scopes("Orders.Read"),
            600,
        ))
        .unwrap();
    let identity = || async {
        let request = common::check_request(
            "GET",
            "/api/orders/7",
            &[("authorization", &format!("Bearer {token}"))],
        );
        let (headers, _) = common::allowed(&portcullis.check(request).await);
        headers[HEADER].clone()
    };
    // ES256 signatures differ each time: an equal value is the remembered answer.
    let first = identity().await;
    assert_eq!(identity().await, first, "the second Check signs nothing");
    tokio::time::sleep(Duration::from_secs(6)).await;
    let renewed = identity().await;
    assert_ne!(
        renewed, first,
        "past half its 10 s lifetime it is signed again"
    );
    assert_eq!(identity().await, renewed);
}
