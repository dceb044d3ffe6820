//! Shared test harness: a real identity provider on loopback (`DemoIssuer`), portcullis
//! started in-process through the library's own `Server::start` on 127.0.0.1:0, and a
//! real tonic client calling it. Everything a `World` starts stops when it is dropped.

#![allow(dead_code)]

pub mod envoy;
pub mod idp;
pub mod upstream;

use std::{collections::HashMap, net::SocketAddr, time::Duration};

use portcullis::{
    config::Config,
    demo::{self, DemoIssuer, Grant, SigningKey},
    pb::auth::{
        CheckRequest, CheckResponse, authorization_client::AuthorizationClient,
        check_response::HttpResponse,
    },
    server::Server,
    state::AppState,
};
use serde_json::Value;
use tonic::transport::Channel;

/// `yaml` with `from` replaced by `to`; `from` must be there (an edit that silently does
/// nothing would test the defaults instead).
pub fn edited(yaml: &str, from: &str, to: &str) -> String {
    assert!(
        yaml.contains(from),
        "the configuration no longer has {from:?}"
    );
    yaml.replace(from, to)
}

/// Upper bound for anything a test waits for (readiness, a server to come up).
pub const WAIT: Duration = Duration::from_secs(10);

pub struct World {
    pub issuer: DemoIssuer,
    pub key: SigningKey,
    pub state: AppState,
    pub addr: SocketAddr,
    /// The HTTP admin port (`/readyz`, `/metrics`).
    pub admin_addr: SocketAddr,
    client: AuthorizationClient<Channel>,
    _server: Server,
}

impl World {
    /// The demo policy and issuer, with an RS256 key.
    pub async fn start() -> World {
        World::start_with(|yaml| yaml).await
    }

    /// Like [`World::start`], with the demo YAML edited first.
    pub async fn start_with(edit: impl FnOnce(String) -> String) -> World {
        World::start_config(|issuer| {
            edit(demo::demo_config_yaml(
                issuer,
                "127.0.0.1:0".parse().unwrap(),
            ))
        })
        .await
    }

    /// A world whose whole configuration is written by `make`, given the issuer.
    pub async fn start_config(make: impl FnOnce(&DemoIssuer) -> String) -> World {
        let key = SigningKey::rsa("key-1", jsonwebtoken::Algorithm::RS256).unwrap();
        let issuer = DemoIssuer::start(0, &[&key]).await.unwrap();
        let mut config = Config::from_yaml(&make(&issuer), "test").unwrap();
        config.grpc_listen = "127.0.0.1:0".parse().unwrap();
        config.admin_listen = "127.0.0.1:0".parse().unwrap();
        let server = Server::start(config, None).await.unwrap();
        let addr = server.grpc_addr();
        let client = AuthorizationClient::connect(format!("http://{addr}"))
            .await
            .unwrap();
        World {
            issuer,
            key,
            state: server.state().clone(),
            addr,
            admin_addr: server.admin_addr(),
            client,
            _server: server,
        }
    }

    /// Waits until every issuer has keys (what the health service reports as SERVING).
    pub async fn ready(self) -> World {
        wait_for(|| self.state.engine().verifier.all_keys_loaded()).await;
        self
    }

    /// A token from the demo issuer, signed with the world's key.
    pub fn token(&self, grant: Grant<'_>) -> String {
        self.sign(&demo::access_token_claims(self.issuer.issuer(), grant, 600))
    }

    pub fn sign(&self, claims: &Value) -> String {
        self.key.sign(claims).unwrap()
    }

    /// Claims of a valid demo token, for tests that alter one claim.
    pub fn claims(&self, grant: Grant<'_>) -> Value {
        demo::access_token_claims(self.issuer.issuer(), grant, 600)
    }

    /// One Check over gRPC with an optional `authorization` header.
    pub async fn check(
        &self,
        method: &str,
        path: &str,
        authorization: Option<&str>,
    ) -> CheckResponse {
        let headers: Vec<(&str, &str)> = authorization
            .map(|a| ("authorization", a))
            .into_iter()
            .collect();
        self.check_request(check_request(method, path, &headers))
            .await
    }

    pub async fn check_request(&self, request: CheckRequest) -> CheckResponse {
        self.client
            .clone()
            .check(request)
            .await
            .expect("portcullis always answers a CheckResponse")
            .into_inner()
    }

    pub async fn bearer(&self, method: &str, path: &str, token: &str) -> CheckResponse {
        self.check(method, path, Some(&format!("Bearer {token}")))
            .await
    }

    /// `GET /api/orders` with each token, all at once; the responses in token order.
    pub async fn concurrent_checks(&self, tokens: Vec<String>) -> Vec<CheckResponse> {
        let tasks: Vec<_> = tokens
            .into_iter()
            .map(|token| {
                let mut client = self.client.clone();
                let request = check_request(
                    "GET",
                    "/api/orders",
                    &[("authorization", &format!("Bearer {token}"))],
                );
                tokio::spawn(async move { client.check(request).await.unwrap().into_inner() })
            })
            .collect();
        let mut responses = Vec::with_capacity(tasks.len());
        for task in tasks {
            responses.push(task.await.unwrap());
        }
        responses
    }

    /// GET on the admin port: status and body.
    pub async fn admin(&self, path: &str) -> (u16, String) {
        let url = format!("http://{}{path}", self.admin_addr);
        let response = reqwest::get(url).await.unwrap();
        let status = response.status().as_u16();
        (status, response.text().await.unwrap())
    }
}

pub async fn wait_for(mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not met within {WAIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub fn check_request(method: &str, path: &str, headers: &[(&str, &str)]) -> CheckRequest {
    demo::check_request(method, "api.local", path, headers)
}

/// portcullis started in process on a whole configuration (its listen addresses as
/// written, e.g. `127.0.0.1:0`) with a gRPC client, once every issuer has keys.
pub struct InProcess {
    pub server: Server,
    client: AuthorizationClient<Channel>,
}

impl InProcess {
    pub async fn start(yaml: &str) -> InProcess {
        let config = Config::from_yaml(yaml, "test").unwrap();
        InProcess::serving(Server::start(config, None).await.unwrap()).await
    }

    async fn serving(server: Server) -> InProcess {
        let client = AuthorizationClient::connect(format!("http://{}", server.grpc_addr()))
            .await
            .unwrap();
        wait_for(|| server.state().engine().verifier.all_keys_loaded()).await;
        InProcess { server, client }
    }

    pub async fn check(&self, request: CheckRequest) -> CheckResponse {
        self.client
            .clone()
            .check(request)
            .await
            .unwrap()
            .into_inner()
    }

    /// `allow`, or the deny reason.
    pub async fn outcome(&self, request: CheckRequest) -> String {
        let response = self.check(request).await;
        match &response.http_response {
            Some(HttpResponse::OkResponse(_)) => "allow".into(),
            _ => denied(&response).reason,
        }
    }
}

/// portcullis started in process on a configuration file and the policy directory it
/// names (listening on loopback ports of its own), once every issuer has keys.
pub struct InProcessSets {
    inner: InProcess,
}

impl InProcessSets {
    pub async fn start(path: &std::path::Path) -> InProcessSets {
        InProcessSets::serve(path, false).await
    }

    /// Also re-reads the file and the directory every 50 ms, as `serve` does.
    pub async fn watching(path: &std::path::Path) -> InProcessSets {
        InProcessSets::serve(path, true).await
    }

    async fn serve(path: &std::path::Path, watch: bool) -> InProcessSets {
        let mut config = Config::load_with_sets(path, None, &[]).unwrap();
        let listen_in_file = (config.grpc_listen, config.admin_listen);
        config.grpc_listen = "127.0.0.1:0".parse().unwrap();
        config.admin_listen = "127.0.0.1:0".parse().unwrap();
        let watch = watch.then(|| portcullis::server::Watch {
            path: path.to_owned(),
            policy_dir: None,
            interval: Duration::from_millis(50),
            listen_in_file,
        });
        let server = Server::start(config, watch).await.unwrap();
        InProcessSets {
            inner: InProcess::serving(server).await,
        }
    }

    pub fn grpc_addr(&self) -> SocketAddr {
        self.inner.server.grpc_addr()
    }

    pub async fn check(&self, request: CheckRequest) -> CheckResponse {
        self.inner.check(request).await
    }

    pub async fn outcome(&self, request: CheckRequest) -> String {
        self.inner.outcome(request).await
    }

    /// GET on the admin port: status and body.
    pub async fn admin(&self, path: &str) -> (u16, String) {
        let url = format!("http://{}{path}", self.inner.server.admin_addr());
        let response = reqwest::get(url).await.unwrap();
        let status = response.status().as_u16();
        (status, response.text().await.unwrap())
    }
}

/// `text` with every byte but RFC 3986's unreserved characters as `%XY`: how Envoy passes
/// a client certificate, and how a TLS-terminating proxy forwards one.
pub fn url_encoded(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// What a denied response says: HTTP status, problem+json `reason`, `WWW-Authenticate`.
#[derive(Debug)]
pub struct Denied {
    pub status: i32,
    pub reason: String,
    pub challenge: Option<String>,
    pub headers: HashMap<String, String>,
}

pub fn denied(response: &CheckResponse) -> Denied {
    let Some(HttpResponse::DeniedResponse(denied)) = &response.http_response else {
        panic!("expected a deny, got {response:?}");
    };
    let headers: HashMap<String, String> = denied
        .headers
        .iter()
        .filter_map(|h| h.header.as_ref())
        .map(|h| (h.key.clone(), h.value.clone()))
        .collect();
    let body: Value = serde_json::from_str(&denied.body).unwrap();
    assert_eq!(
        headers.get("content-type").map(String::as_str),
        Some("application/problem+json")
    );
    Denied {
        status: denied.status.as_ref().map_or(0, |s| s.code),
        reason: body["reason"].as_str().unwrap_or_default().to_owned(),
        challenge: headers.get("www-authenticate").cloned(),
        headers,
    }
}

/// The identity headers an allow sets, and the ones it removes.
pub fn allowed(response: &CheckResponse) -> (HashMap<String, String>, Vec<String>) {
    let Some(HttpResponse::OkResponse(ok)) = &response.http_response else {
        panic!("expected an allow, got {response:?}");
    };
    assert_eq!(response.status.as_ref().map(|s| s.code), Some(0));
    let set = ok
        .headers
        .iter()
        .filter_map(|h| h.header.as_ref())
        .map(|h| (h.key.clone(), h.value.clone()))
        .collect();
    (set, ok.headers_to_remove.clone())
}

/// Splits a compact JWS and re-joins it with a replaced header (base64url JSON).
pub fn with_header(token: &str, header: &Value) -> String {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    let (_, rest) = token.split_once('.').unwrap();
    format!("{}.{rest}", URL_SAFE_NO_PAD.encode(header.to_string()))
}

/// A real external tool (Envoy, grpcurl, nginx, Caddy) for the end-to-end tests:
/// `$NAME_BIN` (upper case, e.g. `ENVOY_BIN`), else the project's `.venv/bin`, else `PATH`
/// (and `/usr/sbin`). When it is
/// missing the test is skipped with a message — unless `PORTCULLIS_REQUIRE_E2E` is set
/// (the README test command sets it), in which case it fails.
pub fn external_tool(name: &str) -> Option<std::path::PathBuf> {
    let from_env = std::env::var_os(format!("{}_BIN", name.to_ascii_uppercase())).map(Into::into);
    let in_venv = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(".venv/bin")
        .join(name);
    // Debian installs daemons such as nginx in /usr/sbin, which a user's PATH may lack.
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .chain([std::path::PathBuf::from("/usr/sbin")])
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    });
    let found = from_env
        .into_iter()
        .chain(in_venv.is_file().then_some(in_venv))
        .chain(on_path)
        .next();
    if found.is_none() {
        assert!(
            std::env::var_os("PORTCULLIS_REQUIRE_E2E").is_none(),
            "{name} not found ($NAME_BIN, .venv/bin or PATH) and PORTCULLIS_REQUIRE_E2E is set"
        );
        eprintln!("SKIPPED: {name} not found; run the README test command to install it");
    }
    found
}

/// The project's `.venv` Python, which holds the test-only packages (`needs` names them,
/// for the message). When it is missing the test is skipped with a message — unless
/// `PORTCULLIS_REQUIRE_E2E` is set, in which case it fails.
pub fn venv_python(needs: &str) -> Option<std::path::PathBuf> {
    let python = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    if python.is_file() {
        return Some(python);
    }
    assert!(
        std::env::var_os("PORTCULLIS_REQUIRE_E2E").is_none(),
        ".venv/bin/python (with {needs}) missing: run scripts/test.sh"
    );
    eprintln!("SKIPPED: no .venv with {needs}");
    None
}

/// A free TCP port on 127.0.0.1 (bound, then released for a child process to take).
/// Sends SIGTERM to `child`, as Kubernetes or Ctrl-C in a script would stop it.
pub fn sigterm(child: &std::process::Child) {
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -TERM {}", child.id());
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap()
}

/// A child process killed (and reaped) when dropped, so a failing test leaves nothing behind.
pub struct ChildGuard(pub std::process::Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits until the async `condition` is true.
pub async fn wait_for_async<F, Fut>(mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    while !condition().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not met within {WAIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until something accepts connections on 127.0.0.1:`port`.
pub async fn wait_for_port(port: u16) {
    wait_for_async(|| async move {
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
    })
    .await;
}

/// Waits until GET `url` answers 200.
pub async fn wait_until_ok(url: &str) {
    wait_for_async(|| async {
        reqwest::get(url)
            .await
            .is_ok_and(|r| r.status().is_success())
    })
    .await;
}

/// Waits until GET `url` answers a body containing `needle`.
pub async fn wait_for_text(url: &str, needle: &str) {
    wait_for_async(|| async {
        match reqwest::get(url).await {
            Ok(response) => response.text().await.is_ok_and(|t| t.contains(needle)),
            Err(_) => false,
        }
    })
    .await;
}

/// A test PKI written to a directory: `ca.crt`, the portcullis server certificate
/// (`server.crt`/`server.key`, DNS name `portcullis.internal`) and Envoy's client
/// certificate (`envoy-client.crt`/`envoy-client.key`). Generated per test, never committed.
pub struct Pki {
    pub dir: std::path::PathBuf,
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
}

impl Pki {
    pub fn generate(name: &str) -> Pki {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
        let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("pki-{name}-{}", free_port()));
        std::fs::create_dir_all(&dir).unwrap();
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "portcullis test CA");
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca = params.self_signed(&key).unwrap();
        std::fs::write(dir.join("ca.crt"), ca.pem()).unwrap();
        let pki = Pki {
            dir,
            issuer: rcgen::Issuer::new(params, key),
        };
        pki.issue(
            "server",
            "portcullis.internal",
            rcgen::ExtendedKeyUsagePurpose::ServerAuth,
        );
        pki.issue(
            "envoy-client",
            "envoy.internal",
            rcgen::ExtendedKeyUsagePurpose::ClientAuth,
        );
        pki
    }

    /// Writes `<name>.crt` and `<name>.key` for `dns`, signed by the CA; returns the DER.
    pub fn issue(&self, name: &str, dns: &str, usage: rcgen::ExtendedKeyUsagePurpose) -> Vec<u8> {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec![dns.to_owned()]).unwrap();
        params.extended_key_usages = vec![usage];
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        std::fs::write(self.dir.join(format!("{name}.key")), key.serialize_pem()).unwrap();
        std::fs::write(self.dir.join(format!("{name}.crt")), cert.pem()).unwrap();
        cert.der().to_vec()
    }

    /// The files `envoy/front-proxy-client-mtls.yaml` reads besides: the API's server
    /// certificate (`edge.crt`/`edge.key`, DNS name `api.internal`) and the CA of client
    /// certificates (`client-ca.crt`, this CA: issue clients with [`Pki::issue`]).
    pub fn edge(&self) {
        self.issue(
            "edge",
            "api.internal",
            rcgen::ExtendedKeyUsagePurpose::ServerAuth,
        );
        std::fs::copy(self.dir.join("ca.crt"), self.dir.join("client-ca.crt")).unwrap();
    }

    pub fn path(&self, file: &str) -> String {
        self.dir.join(file).display().to_string()
    }
}
