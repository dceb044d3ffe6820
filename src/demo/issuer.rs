//! A small real identity provider on loopback: serves a JWKS document and an OpenID
//! discovery document over HTTP, counts every fetch, and can publish a new key set at any
//! moment (key rotation). `portcullis demo` runs one; the tests use it as the issuer whose
//! keys rotate, disappear or fail.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
};

use arc_swap::ArcSwap;
use axum::{Json, Router, extract::State, http::StatusCode, response::IntoResponse, routing::get};
use serde_json::{Value, json};
use tokio::{net::TcpListener, task::JoinHandle};

use super::SigningKey;

/// Path of the JWKS document.
pub const JWKS_PATH: &str = "/jwks.json";

#[derive(Clone)]
struct Shared {
    issuer: Arc<str>,
    keys: Arc<ArcSwap<Vec<Value>>>,
    jwks_fetches: Arc<AtomicUsize>,
    failing: Arc<AtomicBool>,
}

/// A running demo issuer; stops serving when dropped.
pub struct DemoIssuer {
    shared: Shared,
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl DemoIssuer {
    /// Binds 127.0.0.1 on `port` (0 picks a free one) and publishes `keys`.
    pub async fn start(port: u16, keys: &[&SigningKey]) -> std::io::Result<DemoIssuer> {
        let listener = TcpListener::bind(("127.0.0.1", port)).await?;
        let addr = listener.local_addr()?;
        let shared = Shared {
            issuer: Arc::from(format!("http://{addr}/")),
            keys: Arc::new(ArcSwap::from_pointee(Vec::new())),
            jwks_fetches: Arc::new(AtomicUsize::new(0)),
            failing: Arc::new(AtomicBool::new(false)),
        };
        let app = Router::new()
            .route(JWKS_PATH, get(jwks))
            .route("/.well-known/openid-configuration", get(discovery))
            .with_state(shared.clone());
        let task = tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, app).await {
                tracing::error!(error = %error, "Demo issuer stopped");
            }
        });
        let issuer = DemoIssuer { shared, addr, task };
        issuer.publish(keys);
        Ok(issuer)
    }

    /// The `iss` value of this issuer's tokens (`http://127.0.0.1:PORT/`).
    pub fn issuer(&self) -> &str {
        &self.shared.issuer
    }

    pub fn jwks_uri(&self) -> String {
        format!("http://{}{JWKS_PATH}", self.addr)
    }

    /// Replaces the published key set (rotation: publish new and old, later only new).
    pub fn publish(&self, keys: &[&SigningKey]) {
        let jwks = keys.iter().map(|k| k.jwk().clone()).collect();
        self.shared.keys.store(Arc::new(jwks));
    }

    /// While `true`, the JWKS endpoint answers 503 (the issuer is "down").
    pub fn set_failing(&self, failing: bool) {
        self.shared.failing.store(failing, Ordering::SeqCst);
    }

    /// How many times the JWKS document was requested.
    pub fn jwks_fetches(&self) -> usize {
        self.shared.jwks_fetches.load(Ordering::SeqCst)
    }
}

impl Drop for DemoIssuer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn jwks(State(shared): State<Shared>) -> impl IntoResponse {
    shared.jwks_fetches.fetch_add(1, Ordering::SeqCst);
    if shared.failing.load(Ordering::SeqCst) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"error": "down"})),
        );
    }
    let keys = shared.keys.load_full();
    (StatusCode::OK, Json(json!({ "keys": *keys })))
}

async fn discovery(State(shared): State<Shared>) -> Json<Value> {
    let base = shared.issuer.trim_end_matches('/');
    Json(json!({
        "issuer": &*shared.issuer,
        "jwks_uri": format!("{base}{JWKS_PATH}"),
        "id_token_signing_alg_values_supported": ["RS256"],
    }))
}
