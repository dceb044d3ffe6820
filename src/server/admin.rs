//! The HTTP admin port: `/livez` (the process answers), `/readyz` (every issuer of the
//! main file has had a key set; the body shows each issuer's key state and each policy
//! file's state), `/metrics` (Prometheus) and `/.well-known/jwks.json` (the keys that
//! verify the signed identity, when one is configured). Kept
//! apart from the gRPC port so that a NetworkPolicy can expose it to the kubelet and the
//! metrics scraper only.

use std::future::Future;

use axum::{
    Json, Router,
    extract::State,
    http::{StatusCode, header},
    response::IntoResponse,
    routing::get,
};
use futures_util::Stream;
use serde_json::json;
use tokio::io::{AsyncRead, AsyncWrite};

use super::connection::{Tracked, serve_router};
use crate::{config::ConnectionSettings, state::AppState};

/// Content type of the OpenMetrics text `prometheus-client` writes.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

fn router(state: AppState) -> Router {
    Router::new()
        .route("/livez", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/.well-known/jwks.json", get(jwks))
        .with_state(state)
}

/// Serves the admin endpoints on the connections of `incoming` until `shutdown`
/// completes.
pub async fn serve<IO>(
    state: AppState,
    incoming: impl Stream<Item = std::io::Result<IO>>,
    settings: &ConnectionSettings,
    shutdown: impl Future<Output = ()>,
) where
    IO: AsyncRead + AsyncWrite + Tracked + Unpin + Send + 'static,
{
    serve_router(incoming, router(state), settings, shutdown).await;
}

/// 200 once every issuer has obtained a key set, 503 before and while draining (stopping).
/// An issuer whose refreshes fail later stays ready (its last keys serve until `max_staleness`; then its tokens get
/// 503 `keys_unavailable` while other issuers keep working): taking every replica out of
/// the Service because one identity provider is down would deny everyone.
async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let draining = state.is_draining();
    let ready = !draining && state.engine().verifier.all_keys_loaded();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let engine = state.engine();
    let issuers = engine.verifier.key_status();
    // A refused policy file is reported, not made a reason to be unready: its last good
    // version serves, and every other team's rules with it.
    let policy_files = &engine.policy_files;
    (
        status,
        Json(json!({
            "ready": ready, "draining": draining, "issuers": issuers, "policy_files": policy_files,
        })),
    )
}

/// The public keys of the signed identity: every configured key, the signing one first,
/// so that upstreams verify identities signed before and after a rotation. 404 when no
/// identity is signed.
async fn jwks(State(state): State<AppState>) -> impl IntoResponse {
    match &state.engine().forwarding.identity {
        Some(minter) => (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, "application/jwk-set+json"),
                (header::CACHE_CONTROL, "max-age=300"),
            ],
            minter.jwks().to_owned(),
        ),
        None => (
            StatusCode::NOT_FOUND,
            [
                (header::CONTENT_TYPE, "text/plain"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            "no signed_identity is configured\n".to_owned(),
        ),
    }
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let engine = state.engine();
    for status in engine.verifier.key_status() {
        state.metrics().jwks_age(&status.issuer, status.age_seconds);
    }
    let cache = engine.verifier.token_cache();
    let (hits, misses) = cache.stats();
    state.metrics().token_cache(cache.len(), hits, misses);
    (
        [(header::CONTENT_TYPE, OPENMETRICS)],
        state.metrics().encode(),
    )
}
