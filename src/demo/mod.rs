//! A self-contained world for `portcullis demo` ([`run`]) and the tests: an identity
//! provider on loopback ([`DemoIssuer`]) with in-memory keys ([`SigningKey`]), a demo
//! policy, and tokens shaped like Microsoft Entra ID v2.0 access tokens.

mod dpop;
mod issuer;
mod keys;
mod walkthrough;

use std::net::SocketAddr;

use jsonwebtoken::get_current_timestamp;
use serde_json::{Value, json};

pub use dpop::DpopKey;
pub use issuer::{Behaviour, DemoIssuer, JWKS_PATH};
pub use keys::{KeyError, SigningKey};
pub use walkthrough::{DemoError, run};

/// The audience (App ID URI) of the demo API.
pub const DEMO_AUDIENCE: &str = "api://portcullis-demo";
/// Tenant id put in demo tokens.
pub const DEMO_TENANT: &str = "7d5a1c9e-0000-4000-8000-00000000demo";
/// Client id of the demo calling application.
pub const DEMO_CLIENT: &str = "5f0c4a2b-0000-4000-8000-0000000client";

/// The demo policy: health is anonymous, reading orders needs `Orders.Read` (or the app
/// role `Orders.Read.All`), writing needs `Orders.ReadWrite` (or `Orders.ReadWrite.All`).
pub fn demo_config_yaml(issuer: &DemoIssuer, grpc_listen: SocketAddr) -> String {
    format!(
        r#"server:
  grpc_listen: "{grpc_listen}"
  realm: portcullis-demo
jwks:
  unknown_kid_cooldown: 2s
issuers:
  - issuer: "{issuer}"
    jwks_uri: "{jwks}"
    audiences: ["{DEMO_AUDIENCE}"]
    algorithms: [RS256, PS256, ES256, EdDSA]
request_body: sent
routes:
  - name: health
    path: {{ exact: /healthz }}
    anonymous: true
  - name: orders-read
    methods: [GET, HEAD]
    path: {{ prefix: /api/orders }}
    require_any:
      - scopes: [Orders.Read]
      - roles: [Orders.Read.All]
  - name: orders-write
    methods: [POST, PUT, PATCH, DELETE]
    path: {{ prefix: /api/orders }}
    require_any:
      - scopes: [Orders.ReadWrite]
      - roles: [Orders.ReadWrite.All]
"#,
        issuer = issuer.issuer(),
        jwks = issuer.jwks_uri(),
    )
}

/// What a demo token grants.
#[derive(Debug, Clone, Copy)]
pub enum Grant<'a> {
    /// A delegated (user) token with these space-separated scopes in `scp`.
    Scopes(&'a str),
    /// An application token with these app roles in `roles`.
    Roles(&'a [&'a str]),
}

/// Claims shaped like an Entra ID v2.0 access token, valid from now for `lifetime_secs`.
pub fn access_token_claims(issuer: &str, grant: Grant<'_>, lifetime_secs: i64) -> Value {
    let now = get_current_timestamp() as i64;
    let mut claims = json!({
        "iss": issuer,
        "aud": DEMO_AUDIENCE,
        "iat": now,
        "nbf": now,
        "exp": now + lifetime_secs,
        "sub": "demo-subject-AAbbCC",
        "oid": "11111111-2222-3333-4444-555555555555",
        "tid": DEMO_TENANT,
        "azp": DEMO_CLIENT,
        "ver": "2.0",
    });
    match grant {
        Grant::Scopes(scopes) => claims["scp"] = json!(scopes),
        Grant::Roles(roles) => {
            claims["roles"] = json!(roles);
            claims["sub"] = json!(DEMO_CLIENT);
        }
    }
    claims
}

/// Replaces the payload of a signed token with one granting more: the signature no longer
/// matches, so it must be refused.
pub fn tamper(token: &str, issuer: &str) -> String {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    let forged = access_token_claims(issuer, Grant::Scopes("Orders.Read Orders.ReadWrite"), 3600);
    let mut parts = token.splitn(3, '.');
    let header = parts.next().unwrap_or_default();
    let _payload = parts.next();
    let signature = parts.next().unwrap_or_default();
    format!(
        "{header}.{}.{signature}",
        URL_SAFE_NO_PAD.encode(forged.to_string())
    )
}

/// The ports `envoy/*.yaml` are written with: listener, portcullis, upstream API, admin.
pub const ENVOY_CONFIG_PORTS: [u16; 4] = [10000, 9001, 8080, 9901];

/// Paths the shipped Envoy configurations use, which tests and tools replace.
pub const ENVOY_CERTS_DIR: &str = "/etc/envoy/certs";
pub const ENVOY_GRPC_SOCKET: &str = "/run/portcullis/grpc.sock";

/// An `envoy/*.yaml` file with its ports replaced by `ports` (same order as
/// [`ENVOY_CONFIG_PORTS`]; a file may lack some, e.g. the Unix-socket one has no
/// portcullis port) and the given paths replaced, for running the shipped configuration
/// on loopback. `None` when a port appears more than once.
pub fn envoy_config(yaml: &str, ports: [u16; 4], paths: &[(&str, &str)]) -> Option<String> {
    let mut out = yaml.to_owned();
    for (from, to) in ENVOY_CONFIG_PORTS.iter().zip(ports) {
        let needle = format!("port_value: {from} ");
        if out.matches(&needle).count() > 1 {
            return None;
        }
        out = out.replace(&needle, &format!("port_value: {to} "));
    }
    for (from, to) in paths {
        out = out.replace(from, to);
    }
    Some(out)
}

/// A CheckRequest as Envoy sends it for `method host path` with these (lower-case)
/// headers: for tests, benchmarks and tools.
pub fn check_request(
    method: &str,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> crate::pb::auth::CheckRequest {
    crate::extract::check_request(method, host, path, headers)
}
