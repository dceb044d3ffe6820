//! A small real identity provider on loopback: serves a JWKS document and OpenID discovery
//! documents over HTTP, counts every request, and can be scripted to rotate keys, fail
//! (500/503), hang, answer garbage or a huge body, or change `Cache-Control`.
//! `portcullis demo` runs one; the tests use it as an issuer that misbehaves on demand.
//!
//! Paths: `…/jwks.json` and `…/keys` (Entra's `/{tenant}/discovery/v2.0/keys` form) serve
//! the JWKS; `…/.well-known/openid-configuration` serves a discovery document whose
//! `issuer` is the URL before that suffix (this issuer's own name at the root).

use std::sync::{
    Arc, Mutex,
    atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering},
};

use arc_swap::ArcSwap;
use axum::{
    Router,
    extract::State,
    http::{StatusCode, Uri, header},
    response::{IntoResponse, Response},
};
use serde_json::{Value, json};
use tokio::{net::TcpListener, task::JoinHandle};

use super::SigningKey;

/// Path of the JWKS document at the root.
pub const JWKS_PATH: &str = "/jwks.json";
const DISCOVERY_SUFFIX: &str = "/.well-known/openid-configuration";

/// How the JWKS endpoint answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Behaviour {
    /// The published key set.
    Serve = 0,
    /// `503 Service Unavailable`.
    Unavailable = 1,
    /// `500 Internal Server Error`.
    ServerError = 2,
    /// Accepts the request and never answers.
    Hang = 3,
    /// `200` with a body that is not JSON.
    Garbage = 4,
    /// `200` with a 4 MiB body.
    Huge = 5,
}

#[derive(Clone)]
struct Shared {
    issuer: Arc<str>,
    base: Arc<str>,
    keys: Arc<ArcSwap<Vec<Value>>>,
    behaviour: Arc<AtomicU8>,
    cache_control: Arc<Mutex<Option<String>>>,
    jwks_fetches: Arc<AtomicUsize>,
    discovery_fetches: Arc<AtomicUsize>,
    /// Milliseconds every JWKS answer waits first (a distant identity provider).
    delay_ms: Arc<AtomicU64>,
}

/// A running demo issuer; stops serving when dropped.
pub struct DemoIssuer {
    shared: Shared,
    task: JoinHandle<()>,
}

impl DemoIssuer {
    /// Binds 127.0.0.1 on `port` (0 picks a free one) and publishes `keys`.
    pub async fn start(port: u16, keys: &[&SigningKey]) -> std::io::Result<DemoIssuer> {
        let listener = TcpListener::bind(("127.0.0.1", port)).await?;
        let addr = listener.local_addr()?;
        let shared = Shared {
            issuer: Arc::from(format!("http://{addr}/")),
            base: Arc::from(format!("http://{addr}")),
            keys: Arc::new(ArcSwap::from_pointee(Vec::new())),
            behaviour: Arc::new(AtomicU8::new(Behaviour::Serve as u8)),
            cache_control: Arc::new(Mutex::new(None)),
            jwks_fetches: Arc::new(AtomicUsize::new(0)),
            discovery_fetches: Arc::new(AtomicUsize::new(0)),
            delay_ms: Arc::new(AtomicU64::new(0)),
        };
        let app = Router::new().fallback(route).with_state(shared.clone());
        let task = tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, app).await {
                tracing::error!(error = %error, "Demo issuer stopped");
            }
        });
        let issuer = DemoIssuer { shared, task };
        issuer.publish(keys);
        Ok(issuer)
    }

    /// The `iss` value of this issuer's tokens (`http://127.0.0.1:PORT/`).
    pub fn issuer(&self) -> &str {
        &self.shared.issuer
    }

    /// `http://127.0.0.1:PORT`, to build other paths on (Entra-shaped issuers).
    pub fn base_url(&self) -> &str {
        &self.shared.base
    }

    pub fn jwks_uri(&self) -> String {
        format!("{}{JWKS_PATH}", self.shared.base)
    }

    /// Replaces the published key set (rotation: publish new and old, later only new).
    pub fn publish(&self, keys: &[&SigningKey]) {
        let jwks = keys.iter().map(|k| k.jwk().clone()).collect();
        self.shared.keys.store(Arc::new(jwks));
    }

    /// Publishes raw JWKS entries, for tests of malformed or unusable keys.
    pub fn publish_raw(&self, entries: Vec<Value>) {
        self.shared.keys.store(Arc::new(entries));
    }

    pub fn set_behaviour(&self, behaviour: Behaviour) {
        self.shared
            .behaviour
            .store(behaviour as u8, Ordering::SeqCst);
    }

    /// `Cache-Control` sent with the JWKS (`None`: no header).
    pub fn set_cache_control(&self, value: Option<&str>) {
        if let Ok(mut slot) = self.shared.cache_control.lock() {
            *slot = value.map(str::to_owned);
        }
    }

    /// Makes every JWKS answer wait `delay` first, as a distant identity provider would.
    pub fn set_delay(&self, delay: std::time::Duration) {
        let millis = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        self.shared.delay_ms.store(millis, Ordering::SeqCst);
    }

    /// How many times a JWKS document was requested (whatever the answer).
    pub fn jwks_fetches(&self) -> usize {
        self.shared.jwks_fetches.load(Ordering::SeqCst)
    }

    /// How many times a discovery document was requested.
    pub fn discovery_fetches(&self) -> usize {
        self.shared.discovery_fetches.load(Ordering::SeqCst)
    }
}

impl Drop for DemoIssuer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn route(State(shared): State<Shared>, uri: Uri) -> Response {
    let path = uri.path();
    if let Some(prefix) = path.strip_suffix(DISCOVERY_SUFFIX) {
        shared.discovery_fetches.fetch_add(1, Ordering::SeqCst);
        let issuer = if prefix.is_empty() {
            shared.issuer.to_string()
        } else {
            format!("{}{prefix}", shared.base)
        };
        let body = json!({
            "issuer": issuer,
            "jwks_uri": format!("{}{prefix}{JWKS_PATH}", shared.base),
            "id_token_signing_alg_values_supported": ["RS256"],
        });
        return json_response(body.to_string(), None);
    }
    if !(path.ends_with(JWKS_PATH) || path.ends_with("/keys")) {
        return StatusCode::NOT_FOUND.into_response();
    }
    shared.jwks_fetches.fetch_add(1, Ordering::SeqCst);
    let delay = shared.delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
    }
    let cache_control = shared.cache_control.lock().ok().and_then(|c| c.clone());
    match shared.behaviour.load(Ordering::SeqCst) {
        b if b == Behaviour::Unavailable as u8 => StatusCode::SERVICE_UNAVAILABLE.into_response(),
        b if b == Behaviour::ServerError as u8 => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        b if b == Behaviour::Hang as u8 => std::future::pending().await,
        b if b == Behaviour::Garbage as u8 => json_response("<html>not json</html>".into(), None),
        b if b == Behaviour::Huge as u8 => {
            let filler = "x".repeat(4 * 1024 * 1024);
            json_response(json!({ "keys": [], "padding": filler }).to_string(), None)
        }
        _ => {
            let keys = shared.keys.load_full();
            json_response(json!({ "keys": *keys }).to_string(), cache_control)
        }
    }
}

fn json_response(body: String, cache_control: Option<String>) -> Response {
    let mut response = ([(header::CONTENT_TYPE, "application/json")], body).into_response();
    if let Some(value) = cache_control.and_then(|v| v.parse().ok()) {
        response.headers_mut().insert(header::CACHE_CONTROL, value);
    }
    response
}
