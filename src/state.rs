//! What every Check shares: the compiled policy, the verifier with its key caches and the
//! response settings, built once from a validated [`Config`].

use std::sync::Arc;

use crate::{
    config::{Config, HeaderMapping},
    jwt::{RefresherGuard, Verifier},
    metrics::Metrics,
    policy::Policy,
};

/// Shared service state. Cloning is shallow: it bumps one reference count.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    metrics: Arc<Metrics>,
    policy: Policy,
    verifier: Verifier,
    identity_headers: Vec<HeaderMapping>,
    realm: String,
}

impl AppState {
    pub fn new(config: &Config) -> Result<AppState, reqwest::Error> {
        let metrics = Arc::new(Metrics::new());
        Ok(AppState {
            inner: Arc::new(Inner {
                policy: Policy::new(config),
                verifier: Verifier::new(config, metrics.clone())?,
                metrics,
                identity_headers: config.identity_headers.clone(),
                realm: config.realm.clone(),
            }),
        })
    }

    pub fn policy(&self) -> &Policy {
        &self.inner.policy
    }

    pub fn verifier(&self) -> &Verifier {
        &self.inner.verifier
    }

    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    pub fn identity_headers(&self) -> &[HeaderMapping] {
        &self.inner.identity_headers
    }

    pub fn realm(&self) -> &str {
        &self.inner.realm
    }

    /// Starts fetching and refreshing every issuer's keys; they stop when the guard drops.
    pub fn start_key_refresh(&self) -> RefresherGuard {
        self.inner.verifier.spawn_refreshers()
    }
}
