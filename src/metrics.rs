//! Prometheus metrics, served as text on the admin port's `/metrics`. Labels are few and
//! bounded: decision, reason code, route name (the first `metrics.max_routes` routes used,
//! `other` past them), issuer name, fetch outcome — never a subject, a token or a path.
//! Route series appear when a route is first used (or at start, with
//! `metrics.preseed_routes`); the other series alerts use exist from the start at 0 (so
//! that `increase()` sees the first event), a value that does not exist yet is left out
//! rather than given a sentinel, and the standard `process_*` metrics come from `/proc`.

use std::sync::Arc;

use prometheus_client::{
    encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder, text::encode},
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};

use crate::deny::DenyReason;

mod process;

/// Check latency buckets in seconds: 50 µs to 1 s.
const LATENCY_BUCKETS: [f64; 14] = [
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CheckLabels {
    decision: &'static str,
    reason: &'static str,
    route: Name,
}

/// A configured name (route, issuer) as a label value, shared rather than copied.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
struct Name(Arc<str>);

impl EncodeLabelValue for Name {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        EncodeLabelValue::encode(&&*self.0, encoder)
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
    commit: &'static str,
}

/// Outcomes a JWKS fetch is counted under (see `jwt::FetchError::label`).
const FETCH_OUTCOMES: [&str; 7] = [
    "ok",
    "unreachable",
    "timeout",
    "http_status",
    "too_large",
    "discovery",
    "invalid_jwks",
];
/// Listeners and causes a refused connection is counted under.
const LISTENERS: [&str; 4] = ["grpc", "grpc_socket", "http", "admin"];
const REFUSAL_CAUSES: [&str; 3] = ["over_capacity", "out_of_resources", "evicted_pending"];
/// The route label of the routes past `metrics.max_routes`.
const OTHER_ROUTES: &str = "other";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FetchLabels {
    issuer: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct IssuerLabels {
    issuer: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AuditLabels {
    route: String,
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RefusedLabels {
    listener: &'static str,
    cause: &'static str,
}

/// Every metric portcullis exports.
pub struct Metrics {
    registry: Registry,
    checks: Family<CheckLabels, Histogram>,
    jwks_fetches: Family<FetchLabels, Counter>,
    jwks_keys: Family<IssuerLabels, Gauge>,
    jwks_age: Family<IssuerLabels, Gauge>,
    config_reloads: Family<OutcomeLabels, Counter>,
    audit: Family<AuditLabels, Counter>,
    token_cache_entries: Gauge,
    token_cache_lookups: Family<OutcomeLabels, Counter>,
    connections_refused: Family<RefusedLabels, Counter>,
    /// Hits and misses already added to `token_cache_lookups`.
    token_cache_seen: std::sync::Mutex<(u64, u64)>,
    policy_files: Family<StateLabels, Gauge>,
    /// Route names given their own label so far, and how many may be.
    route_labels: std::sync::Mutex<std::collections::HashSet<Arc<str>>>,
    max_routes: std::sync::atomic::AtomicUsize,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: &'static str,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut root = Registry::default();
        root.register_collector(Box::new(process::ProcessCollector));
        let registry = root.sub_registry_with_prefix("portcullis");
        let build_info = Family::<BuildLabels, Gauge>::default();
        registry.register(
            "build_info",
            "The running build: always 1, with the version and commit as labels",
            build_info.clone(),
        );
        build_info
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION"),
                commit: env!("PORTCULLIS_COMMIT"),
            })
            .set(1);
        let checks = Family::<CheckLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(LATENCY_BUCKETS)
        });
        registry.register(
            "check_duration_seconds",
            "Time to decide one Check, by decision (allow/deny), deny reason and route",
            checks.clone(),
        );
        let jwks_fetches = Family::<FetchLabels, Counter>::default();
        registry.register(
            "jwks_fetches",
            "JWKS fetches by issuer and outcome (ok, unreachable, timeout, http_status, too_large, discovery, invalid_jwks)",
            jwks_fetches.clone(),
        );
        let jwks_keys = Family::<IssuerLabels, Gauge>::default();
        registry.register(
            "jwks_keys",
            "Usable keys in the issuer's current key set",
            jwks_keys.clone(),
        );
        let jwks_age = Family::<IssuerLabels, Gauge>::default();
        registry.register(
            "jwks_age_seconds",
            "Age of the issuer's current key set (absent until it has one)",
            jwks_age.clone(),
        );
        let config_reloads = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "config_reloads",
            "Configuration reloads by outcome (ok, invalid)",
            config_reloads.clone(),
        );
        let audit = Family::<AuditLabels, Counter>::default();
        registry.register(
            "audit_would_deny",
            "Requests allowed by an audit-mode route that would have denied them, by route and reason",
            audit.clone(),
        );
        let token_cache_entries = Gauge::default();
        registry.register(
            "token_cache_entries",
            "Verified tokens held in the cache",
            token_cache_entries.clone(),
        );
        let token_cache_lookups = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "token_cache_lookups",
            "Verified-token cache lookups by outcome (hit, miss)",
            token_cache_lookups.clone(),
        );
        let connections_refused = Family::<RefusedLabels, Counter>::default();
        registry.register(
            "connections_refused",
            "Client connections closed at accept, by listener and cause (over_capacity, out_of_resources)",
            connections_refused.clone(),
        );
        for (listener, cause) in LISTENERS
            .iter()
            .flat_map(|l| REFUSAL_CAUSES.iter().map(move |c| (*l, *c)))
        {
            drop(connections_refused.get_or_create(&RefusedLabels { listener, cause }));
        }
        for outcome in ["ok", "invalid"] {
            drop(config_reloads.get_or_create(&OutcomeLabels { outcome }));
        }
        let policy_files = Family::<StateLabels, Gauge>::default();
        registry.register(
            "policy_files",
            "Files of the policy directory by state (loaded: this version serves; refused: broken, its last good version serves)",
            policy_files.clone(),
        );
        for outcome in ["hit", "miss"] {
            drop(token_cache_lookups.get_or_create(&OutcomeLabels { outcome }));
        }
        Metrics {
            registry: root,
            connections_refused,
            audit,
            token_cache_entries,
            token_cache_lookups,
            token_cache_seen: std::sync::Mutex::new((0, 0)),
            policy_files,
            route_labels: std::sync::Mutex::new(std::collections::HashSet::new()),
            max_routes: std::sync::atomic::AtomicUsize::new(usize::MAX),
            checks,
            jwks_fetches,
            jwks_keys,
            jwks_age,
            config_reloads,
        }
    }

    /// One Check decided on `route` (empty when none): `reason` is `"none"` for an allow.
    pub fn check(&self, allowed: bool, reason: &'static str, route: Arc<str>, seconds: f64) {
        let decision = if allowed { "allow" } else { "deny" };
        self.checks
            .get_or_create(&CheckLabels {
                decision,
                reason,
                route: Name(route),
            })
            .observe(seconds);
    }

    /// The label of route `name`: its name for the first `metrics.max_routes` routes that
    /// get one, `other` past them, so that series grow with traffic up to a bound, never
    /// with configuration.
    pub fn route_label(&self, name: &Arc<str>) -> Arc<str> {
        let max = self.max_routes.load(std::sync::atomic::Ordering::Relaxed);
        let Ok(mut labels) = self.route_labels.lock() else {
            return Arc::from(OTHER_ROUTES);
        };
        if labels.contains(name) || labels.len() < max {
            labels.insert(name.clone());
            name.clone()
        } else {
            Arc::from(OTHER_ROUTES)
        }
    }

    /// How many route names may be labels (`metrics.max_routes`).
    pub fn set_max_routes(&self, max: usize) {
        self.max_routes
            .store(max, std::sync::atomic::Ordering::Relaxed);
    }

    /// How many policy files serve this version and how many were refused.
    pub fn policy_files(&self, loaded: usize, refused: usize) {
        for (state, count) in [("loaded", loaded), ("refused", refused)] {
            self.policy_files
                .get_or_create(&StateLabels { state })
                .set(count as i64);
        }
    }

    /// Creates, at 0, the decision series of a configuration's routes (opt-in,
    /// `metrics.preseed_routes`): allowed, denied for a missing token or insufficient
    /// permission; and the requests no route takes.
    pub fn prepare_routes(&self, routes: &[Arc<str>]) {
        let labels: Vec<Arc<str>> = routes.iter().map(|r| self.route_label(r)).collect();
        let series = labels
            .iter()
            .flat_map(|route| {
                [
                    (true, "none"),
                    (false, DenyReason::MissingToken.code()),
                    (false, DenyReason::InsufficientPermission.code()),
                ]
                .map(|(allowed, reason)| (allowed, reason, route.clone()))
            })
            .chain(
                [DenyReason::NoRoute, DenyReason::InvalidRequest]
                    .map(|reason| (false, reason.code(), Arc::from(""))),
            );
        for (allowed, reason, route) in series {
            let decision = if allowed { "allow" } else { "deny" };
            drop(self.checks.get_or_create(&CheckLabels {
                decision,
                reason,
                route: Name(route),
            }));
        }
    }

    /// Creates, at 0, every fetch outcome of each issuer.
    pub fn prepare_issuers<'a>(&self, issuers: impl IntoIterator<Item = &'a str>) {
        for issuer in issuers {
            for outcome in FETCH_OUTCOMES {
                drop(self.jwks_fetches.get_or_create(&FetchLabels {
                    issuer: issuer.to_owned(),
                    outcome,
                }));
            }
        }
    }

    pub fn jwks_fetch(&self, issuer: &str, outcome: &'static str) {
        self.jwks_fetches
            .get_or_create(&FetchLabels {
                issuer: issuer.to_owned(),
                outcome,
            })
            .inc();
    }

    pub fn jwks_keys(&self, issuer: &str, keys: usize) {
        self.jwks_keys
            .get_or_create(&IssuerLabels {
                issuer: issuer.to_owned(),
            })
            .set(keys as i64);
    }

    /// Set at scrape time from the caches, so that it is current; absent while the
    /// issuer has no key set.
    pub fn jwks_age(&self, issuer: &str, age_seconds: Option<u64>) {
        let labels = IssuerLabels {
            issuer: issuer.to_owned(),
        };
        match age_seconds {
            Some(age) => {
                self.jwks_age
                    .get_or_create(&labels)
                    .set(i64::try_from(age).unwrap_or(i64::MAX));
            }
            None => {
                self.jwks_age.remove(&labels);
            }
        }
    }

    pub fn config_reload(&self, ok: bool) {
        let outcome = if ok { "ok" } else { "invalid" };
        self.config_reloads
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }

    /// A connection closed at accept (over the listener's cap), or an accept that failed
    /// for lack of descriptors or memory.
    pub fn connection_refused(&self, listener: &'static str, cause: &'static str) {
        self.connections_refused
            .get_or_create(&RefusedLabels { listener, cause })
            .inc();
    }

    pub fn audit_would_deny(&self, route: &str, reason: &'static str) {
        self.audit
            .get_or_create(&AuditLabels {
                route: route.to_owned(),
                reason,
            })
            .inc();
    }

    /// Brings the token-cache metrics up to date (at scrape time): entries now, and the
    /// hits and misses counted since the last scrape.
    pub fn token_cache(&self, entries: usize, hits: u64, misses: u64) {
        self.token_cache_entries
            .set(i64::try_from(entries).unwrap_or(i64::MAX));
        if let Ok(mut seen) = self.token_cache_seen.lock() {
            let (seen_hits, seen_misses) = &mut *seen;
            for (outcome, now, before) in [("hit", hits, seen_hits), ("miss", misses, seen_misses)]
            {
                self.token_cache_lookups
                    .get_or_create(&OutcomeLabels { outcome })
                    .inc_by(now.saturating_sub(*before));
                *before = now.max(*before);
            }
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        if encode(&mut text, &self.registry).is_err() {
            text.clear();
        }
        text
    }
}

#[cfg(test)]
mod tests;
