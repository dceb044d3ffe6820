//! What every Check shares. The configuration-derived part (policy, verifier, response
//! settings) is an [`Engine`] behind an `ArcSwap`: each Check takes the current engine once
//! and uses it to the end, and a reload swaps in a new one atomically, so in-flight Checks
//! finish on the engine they started with and no lock is ever taken on the request path.

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use arc_swap::ArcSwap;

use crate::{
    binding::SenderBinding,
    config::{Config, Limits, PolicySetConfig, RequestBody, sets::FileReport},
    forwarding::Forwarding,
    jwt::Verifier,
    metrics::Metrics,
    policy::Policies,
};

mod kept;

pub use kept::KeptDenies;

/// Everything derived from one configuration.
pub struct Engine {
    pub limits: Limits,
    /// The main file's routes and every policy file's.
    pub policies: Policies,
    pub verifier: Verifier,
    /// Checks bound tokens' DPoP proofs and client certificates.
    pub binding: SenderBinding,
    pub forwarding: Forwarding,
    pub realm: String,
    /// Whether Envoy sends request bodies.
    pub request_body: RequestBody,
    /// The policy directory and the files loaded from it (the last good version of each),
    /// with what loading each found.
    pub policy_dir: Option<std::path::PathBuf>,
    pub sets: Vec<PolicySetConfig>,
    pub policy_files: Vec<FileReport>,
    /// Deny answers encoded under this engine.
    pub kept_denies: KeptDenies,
}

/// Shared service state. Cloning is shallow: it bumps one reference count.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    metrics: Arc<Metrics>,
    engine: ArcSwap<Engine>,
    /// Stopping: readiness says no, so that traffic goes elsewhere.
    draining: AtomicBool,
}

impl AppState {
    /// Builds the state and starts fetching every issuer's keys in the background.
    pub fn new(config: &Config) -> Result<AppState, reqwest::Error> {
        AppState::build(config, true)
    }

    /// Builds the state for a one-off decision (`portcullis check`): no background key
    /// refresh; a token's keys are fetched when it is verified.
    pub fn offline(config: &Config) -> Result<AppState, reqwest::Error> {
        AppState::build(config, false)
    }

    fn build(config: &Config, refresh: bool) -> Result<AppState, reqwest::Error> {
        let metrics = Arc::new(Metrics::new());
        let engine = Engine::new(config, metrics.clone(), None, refresh)?;
        Ok(AppState {
            inner: Arc::new(Inner {
                metrics,
                engine: ArcSwap::from_pointee(engine),
                draining: AtomicBool::new(false),
            }),
        })
    }

    /// The current engine; hold it for the whole of one Check.
    pub fn engine(&self) -> Arc<Engine> {
        self.inner.engine.load_full()
    }

    /// Marks the replica as stopping: `/readyz` answers 503 from now on.
    pub fn start_draining(&self) {
        self.inner.draining.store(true, Ordering::Release);
    }

    pub fn is_draining(&self) -> bool {
        self.inner.draining.load(Ordering::Acquire)
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.inner.metrics
    }

    /// Swaps in an engine built from `config`. Key caches of issuers whose name, key
    /// source and JWKS settings are unchanged carry over, keys and all, so a reload never
    /// makes tokens wait for a fetch; so does the DPoP replay store, so that a reload
    /// never forgets a used proof.
    pub fn reload(&self, config: &Config) -> Result<(), reqwest::Error> {
        let current = self.engine();
        let engine = Engine::new(config, self.inner.metrics.clone(), Some(&current), true)?;
        self.inner.engine.store(Arc::new(engine));
        Ok(())
    }
}

impl Engine {
    fn new(
        config: &Config,
        metrics: Arc<Metrics>,
        previous: Option<&Engine>,
        refresh: bool,
    ) -> Result<Engine, reqwest::Error> {
        let policies = Policies::new(config);
        metrics.set_max_routes(config.metrics.max_routes);
        let routes: Vec<Arc<str>> = match config.metrics.preseed_routes {
            true => policies
                .all()
                .flat_map(|set| set.policy.routes())
                .map(|r| r.name.clone())
                .collect(),
            false => Vec::new(),
        };
        metrics.prepare_routes(&routes);
        let refused = config
            .policy_files
            .iter()
            .filter(|f| f.problem.is_some())
            .count();
        metrics.policy_files(config.policy_files.len() - refused, refused);
        metrics.prepare_issuers(config.all_issuers().map(|i| i.issuer.as_str()));
        Ok(Engine {
            limits: config.limits.clone(),
            policies,
            verifier: Verifier::new(config, metrics, previous.map(|p| &p.verifier), refresh)?,
            binding: SenderBinding::new(&config.dpop, previous.map(|p| &p.binding)),
            forwarding: Forwarding::new(config),
            realm: config.realm.clone(),
            request_body: config.request_body,
            policy_dir: config.policy_dir.clone(),
            sets: config.sets.clone(),
            policy_files: config.policy_files.clone(),
            kept_denies: KeptDenies::default(),
        })
    }
}
