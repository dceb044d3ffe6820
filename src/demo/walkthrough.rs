//! `portcullis demo`: the demo identity provider and policy served on loopback, with a
//! printed walkthrough — the tokens as `export TOKEN_…=` lines, ready-to-paste `grpcurl`
//! commands with a valid token, a daemon token, a token lacking a scope and a tampered
//! one, showing allow and deny, and, given an Envoy in front, `curl` commands through it.

use std::net::SocketAddr;

use super::{
    DemoIssuer, Grant, KeyError, SigningKey, access_token_claims, demo_config_yaml, tamper,
};
use crate::{
    config::{Config, ConfigError},
    server::{ServeError, Server, shutdown_signal},
};

/// Why the demo could not run.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("cannot make the demo signing key: {0}")]
    Key(#[from] KeyError),
    #[error("cannot start the demo identity provider: {0}")]
    Issuer(#[from] std::io::Error),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Serve(#[from] ServeError),
}

/// Starts the demo identity provider (on `issuer_port`, 0 for any) and portcullis on
/// `grpc_listen` / `admin_listen`, prints the walkthrough (with curl commands through
/// `envoy_url` when given), and serves until SIGINT or SIGTERM.
pub async fn run(
    grpc_listen: SocketAddr,
    admin_listen: SocketAddr,
    issuer_port: u16,
    envoy_url: Option<&str>,
) -> Result<(), DemoError> {
    let key = SigningKey::rsa("demo-rs256-1", jsonwebtoken::Algorithm::RS256)?;
    let issuer = DemoIssuer::start(issuer_port, &[&key]).await?;
    let mut config = Config::from_yaml(&demo_config_yaml(&issuer, grpc_listen), "built-in demo")?;
    config.admin_listen = admin_listen;
    let server = Server::start(config, None).await?;

    let iss = issuer.issuer();
    let reader = key.sign(&access_token_claims(
        iss,
        Grant::Scopes("Orders.Read"),
        3600,
    ))?;
    let profile_only = key.sign(&access_token_claims(
        iss,
        Grant::Scopes("Profile.Read"),
        3600,
    ))?;
    let daemon = key.sign(&access_token_claims(
        iss,
        Grant::Roles(&["Orders.Read.All"]),
        3600,
    ))?;
    let tampered = tamper(&reader, iss);
    let grpc = server.grpc_addr();

    println!("portcullis demo");
    println!("  identity provider: {iss} (JWKS {})", issuer.jwks_uri());
    println!("  ext_authz gRPC:    {grpc}");
    println!(
        "  admin HTTP:        http://{}/readyz  /metrics",
        server.admin_addr()
    );
    println!("  policy: GET /api/orders* needs scope Orders.Read or app role Orders.Read.All;");
    println!(
        "          writes need Orders.ReadWrite; /healthz is anonymous; all else is denied.\n"
    );
    println!("# The tokens, for your shell (valid for one hour):");
    for (name, token) in [
        ("TOKEN_READER", &reader),
        ("TOKEN_DAEMON", &daemon),
        ("TOKEN_PROFILE", &profile_only),
        ("TOKEN_TAMPERED", &tampered),
    ] {
        println!("export {name}={token}");
    }
    println!();
    let call = |label: &str, method: &str, path: &str, token: Option<&str>| {
        let headers = token
            .map(|t| format!(r#","headers":{{"authorization":"Bearer {t}"}}"#))
            .unwrap_or_default();
        println!("# {label}");
        println!(
            "grpcurl -plaintext -d '{{\"attributes\":{{\"request\":{{\"http\":{{\"method\":\"{method}\",\"host\":\"api.local\",\"path\":\"{path}\"{headers}}}}}}}}}' {grpc} envoy.service.auth.v3.Authorization/Check\n"
        );
    };
    call(
        "ALLOW: user token with scope Orders.Read",
        "GET",
        "/api/orders/42",
        Some(&reader),
    );
    call(
        "ALLOW: daemon token with app role Orders.Read.All",
        "GET",
        "/api/orders",
        Some(&daemon),
    );
    call(
        "DENY 403 insufficient_scope: token lacks Orders.Read",
        "GET",
        "/api/orders/42",
        Some(&profile_only),
    );
    call(
        "DENY 403 insufficient_scope: reading is not writing",
        "DELETE",
        "/api/orders/42",
        Some(&reader),
    );
    call(
        "DENY 401 invalid_token: payload tampered after signing",
        "GET",
        "/api/orders/42",
        Some(&tampered),
    );
    call("DENY 401: no token", "GET", "/api/orders/42", None);
    println!("# List the services by reflection:\ngrpcurl -plaintext {grpc} list\n");
    if let Some(envoy) = envoy_url {
        let envoy = envoy.trim_end_matches('/');
        println!("# Through Envoy at {envoy}: the upstream sees the identity headers.");
        for (expect, method, path, token) in [
            (200, "GET", "/api/orders/42", Some("TOKEN_READER")),
            (200, "GET", "/api/orders", Some("TOKEN_DAEMON")),
            (403, "GET", "/api/orders/42", Some("TOKEN_PROFILE")),
            (403, "DELETE", "/api/orders/42", Some("TOKEN_READER")),
            (401, "GET", "/api/orders/42", Some("TOKEN_TAMPERED")),
            (401, "GET", "/api/orders/42", None),
            (200, "GET", "/healthz", None),
        ] {
            let header = token
                .map(|t| format!(" -H \"authorization: Bearer ${t}\""))
                .unwrap_or_default();
            println!("# expect {expect}");
            println!("curl -i -X {method}{header} {envoy}{path}");
        }
        println!();
    }
    println!("Tokens are valid for one hour. Press Ctrl-C to stop.");

    Ok(server.run_until(shutdown_signal()).await?)
}
