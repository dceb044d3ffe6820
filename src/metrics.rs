//! Prometheus metrics, served as text on the admin port's `/metrics`. Labels are few and
//! bounded: decision, reason code, route name, issuer name, fetch outcome — never a
//! subject, a token or a path.

use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};

/// Check latency buckets in seconds: 50 µs to 1 s.
const LATENCY_BUCKETS: [f64; 14] = [
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CheckLabels {
    decision: &'static str,
    reason: &'static str,
}

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
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("portcullis");
        let checks = Family::<CheckLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(LATENCY_BUCKETS)
        });
        registry.register(
            "check_duration_seconds",
            "Time to decide one Check, by decision (allow/deny) and deny reason",
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
            "Age of the issuer's current key set (-1: none yet)",
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
        Metrics {
            registry,
            connections_refused,
            audit,
            token_cache_entries,
            token_cache_lookups,
            token_cache_seen: std::sync::Mutex::new((0, 0)),
            checks,
            jwks_fetches,
            jwks_keys,
            jwks_age,
            config_reloads,
        }
    }

    /// One Check decided: `reason` is `"none"` for an allow.
    pub fn check(&self, allowed: bool, reason: &'static str, seconds: f64) {
        let decision = if allowed { "allow" } else { "deny" };
        self.checks
            .get_or_create(&CheckLabels { decision, reason })
            .observe(seconds);
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

    /// Set at scrape time from the caches, so that it is current.
    pub fn jwks_age(&self, issuer: &str, age_seconds: Option<u64>) {
        let age = age_seconds.map_or(-1, |a| i64::try_from(a).unwrap_or(i64::MAX));
        self.jwks_age
            .get_or_create(&IssuerLabels {
                issuer: issuer.to_owned(),
            })
            .set(age);
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
mod tests {
    use super::*;

    #[test]
    fn exposition_carries_observed_values_with_bounded_labels() {
        let metrics = Metrics::new();
        metrics.check(true, "none", 0.0002);
        metrics.check(false, "expired", 0.0001);
        metrics.check(false, "expired", 0.0001);
        metrics.jwks_fetch("https://idp/", "ok");
        metrics.jwks_keys("https://idp/", 2);
        metrics.jwks_age("https://idp/", None);
        metrics.config_reload(false);
        let text = metrics.encode();
        assert!(
            text.contains(
                r#"portcullis_check_duration_seconds_count{decision="deny",reason="expired"} 2"#
            ),
            "{text}"
        );
        assert!(
            text.contains(r#"portcullis_jwks_fetches_total{issuer="https://idp/",outcome="ok"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"portcullis_jwks_keys{issuer="https://idp/"} 2"#),
            "{text}"
        );
        assert!(
            text.contains(r#"portcullis_jwks_age_seconds{issuer="https://idp/"} -1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"portcullis_config_reloads_total{outcome="invalid"} 1"#),
            "{text}"
        );
    }
}
