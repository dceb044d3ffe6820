//! A compiled route: what it matches (methods, hosts, canonical path pattern, and the same
//! pattern case-folded), what it requires, which identity headers it sends, and the
//! strings its responses need, precomputed once at load.

use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};

use crate::{
    config::{
        Access, Condition, HeaderMapping, HostMatch, PathMatch, RouteConfig, SenderConstraint,
        StepUp, Tolerance,
    },
    path::{PathSegment, fold as fold_path, prefix_matches, template_matches},
    upstream::Frameworks,
};

static NEXT_ROUTE_ID: AtomicU64 = AtomicU64::new(1);

/// One access rule, ready for matching.
#[derive(Debug, Clone)]
pub struct Route {
    /// Unique for the life of the process (a reloaded configuration's routes get new
    /// ids), so that what is remembered per route never outlives the route.
    pub id: u64,
    pub name: Arc<str>,
    methods: Option<Vec<String>>,
    hosts: Option<Vec<HostMatch>>,
    path: PathMatch,
    /// `path` in lower case, for upstreams that route case-insensitively.
    folded: PathMatch,
    pub access: Access,
    /// Dry run: would-be denies are allowed, logged and counted.
    pub audit: bool,
    /// The identity headers this route sets (its own override, or the global mapping).
    pub identity_headers: Arc<[HeaderMapping]>,
    /// Space-separated scopes the route accepts, for the RFC 6750 `scope` attribute of a
    /// 403; `None` when no condition names a scope.
    pub scope_challenge: Option<Arc<str>>,
    /// Request shapes refused by default that this route accepts.
    pub tolerates: Tolerance,
    /// Anonymous route: the client's `authorization` header goes upstream unverified.
    pub forward_authorization: bool,
    /// Whether only sender-constrained tokens are accepted here.
    pub sender_constraint: SenderConstraint,
    /// The frameworks that may serve the requests this route matches.
    pub upstream: Frameworks,
    /// Its label in metrics, chosen on first use (`metrics::Metrics::route_label`).
    pub metric_label: std::sync::OnceLock<Arc<str>>,
    /// Some condition compares a path parameter with a claim: the paths under which the
    /// request reaches this route are kept for it ([`super::Reached::paths`]).
    pub binds_params: bool,
    /// The sign-in a token must show here ([`super::step_up`]).
    pub step_up: Option<StepUp>,
    /// Whether allows here carry the signed identity; `None`: as configured for every
    /// route ([`crate::identity`]).
    pub signed_identity: Option<bool>,
}

impl Route {
    pub fn new(
        config: &RouteConfig,
        global_headers: &Arc<[HeaderMapping]>,
        upstream: Frameworks,
    ) -> Route {
        let mut scopes: Vec<&str> = Vec::new();
        let mut binds_params = false;
        if let Access::Require { all, any } = &config.access {
            for condition in all.iter().chain(any.iter().flatten()) {
                binds_params |= matches!(condition, Condition::ClaimEqualsParam { .. });
                if let Condition::Scopes(names) | Condition::ScopesAny(names) = condition {
                    for name in names {
                        if !scopes.contains(&name.as_str()) {
                            scopes.push(name);
                        }
                    }
                }
            }
        }
        Route {
            id: NEXT_ROUTE_ID.fetch_add(1, Ordering::Relaxed),
            name: Arc::from(config.name.as_str()),
            methods: config.methods.clone(),
            hosts: config.hosts.clone(),
            path: config.path.clone(),
            folded: fold(&config.path),
            access: config.access.clone(),
            audit: config.audit,
            identity_headers: config
                .identity_headers
                .as_ref()
                .map_or_else(|| global_headers.clone(), |own| Arc::from(own.as_slice())),
            scope_challenge: (!scopes.is_empty()).then(|| Arc::from(scopes.join(" "))),
            tolerates: config.tolerates,
            forward_authorization: config.forward_authorization,
            sender_constraint: config.sender_constraint,
            upstream: config.upstream.unwrap_or(upstream),
            metric_label: std::sync::OnceLock::new(),
            binds_params,
            step_up: config.step_up.clone(),
            signed_identity: config.signed_identity,
        }
    }

    /// The methods the route matches; `None` for every method.
    pub fn methods(&self) -> Option<&Vec<String>> {
        self.methods.as_ref()
    }

    /// Whether the route's path pattern has capital letters (then a case-folding upstream
    /// may reach it with a path in another case).
    pub fn has_capitals(&self) -> bool {
        self.path != self.folded
    }

    /// The path pattern, as written or in lower case.
    pub fn pattern(&self, folded: bool) -> &PathMatch {
        if folded { &self.folded } else { &self.path }
    }

    /// `host` must be canonical ([`crate::extract::canonical_host`]) and `path` canonical
    /// ([`crate::path`]); with `folded`, `path` is in lower case and compared with the
    /// route's pattern in lower case.
    pub fn matches(&self, method: &str, host: &str, path: &str, folded: bool) -> bool {
        self.methods
            .as_ref()
            .is_none_or(|methods| methods.iter().any(|m| m.eq_ignore_ascii_case(method)))
            && self.hosts.as_ref().is_none_or(|hosts| {
                hosts.iter().any(|wanted| match wanted {
                    HostMatch::Exact(exact) => host == exact,
                    HostMatch::Suffix(suffix) => {
                        host.len() > suffix.len() && host.ends_with(suffix.as_str())
                    }
                })
            })
            && match self.pattern(folded) {
                PathMatch::Exact(exact) => path == exact,
                PathMatch::Prefix(prefix) => prefix_matches(prefix, path),
                PathMatch::Template { segments, .. } => template_matches(segments, path),
            }
    }
}

/// A path pattern as a case-insensitive upstream compares it (see [`fold_path`]).
fn fold(path: &PathMatch) -> PathMatch {
    match path {
        PathMatch::Exact(p) => PathMatch::Exact(fold_path(p, true)),
        PathMatch::Prefix(p) => PathMatch::Prefix(fold_path(p, true)),
        PathMatch::Template { pattern, segments } => PathMatch::Template {
            pattern: fold_path(pattern, true),
            segments: segments
                .iter()
                .map(|s| match s {
                    PathSegment::Literal(l) => PathSegment::Literal(fold_path(l, true)),
                    other => other.clone(),
                })
                .collect(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn route(matcher: &str) -> Route {
        let yaml = format!(
            "issuers: [{{issuer: i, jwks_uri: 'https://i/k', audiences: [a]}}]\nroutes:\n  - {{ name: r, {matcher}, require_any: [{{scopes: [Orders.Read]}}, {{scopes_any: [Orders.ReadWrite, Orders.Read], roles: [Orders.Read.All]}}] }}\n"
        );
        let config = Config::from_yaml(&yaml, "t").unwrap();
        Route::new(
            &config.routes[0],
            &Arc::from(config.identity_headers.as_slice()),
            Frameworks::ALL,
        )
    }

    #[test]
    fn prefix_is_segment_aware() {
        let r = route("path: { prefix: /api/orders }");
        assert!(r.matches("GET", "h", "/api/orders", false));
        assert!(r.matches("GET", "h", "/api/orders/7", false));
        assert!(!r.matches("GET", "h", "/api/ordersX", false));
        assert!(!r.matches("GET", "h", "/api", false));
    }

    #[test]
    fn method_host_and_template_must_all_match() {
        let r = route(
            "methods: [GET, HEAD], hosts: [api.example.com, '*.example.org'], path: { template: '/orders/{id}' }",
        );
        assert!(r.matches("GET", "api.example.com", "/orders/7", false));
        assert!(r.matches("head", "api.example.com", "/orders/7", false));
        assert!(r.matches("GET", "eu.api.example.org", "/orders/7", false));
        assert!(
            !r.matches("GET", "example.org", "/orders/7", false),
            "*.x needs a label before .x"
        );
        assert!(!r.matches("POST", "api.example.com", "/orders/7", false));
        assert!(!r.matches("GET", "other.example.com", "/orders/7", false));
        assert!(!r.matches("GET", "api.example.com", "/orders/7/lines", false));
    }

    #[test]
    fn scope_challenge_lists_each_accepted_scope_once() {
        let r = route("path: { exact: / }");
        assert_eq!(
            r.scope_challenge.as_deref(),
            Some("Orders.Read Orders.ReadWrite")
        );
    }

    #[test]
    fn folded_matching_compares_lower_case() {
        let r = route("path: { template: '/API/Orders/{id}/History' }");
        assert!(r.has_capitals());
        assert!(r.matches("GET", "h", "/API/Orders/7/History", false));
        assert!(!r.matches("GET", "h", "/api/orders/7/history", false));
        assert!(r.matches("GET", "h", "/api/orders/7/history", true));
        assert!(!route("path: { prefix: /api }").has_capitals());
    }
}
