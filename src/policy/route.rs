//! A compiled route: what it matches (method, host, normalised path) and what it requires,
//! with the strings the responses need precomputed once at load.

use std::sync::Arc;

use crate::config::{Access, PathMatch, RouteConfig};

/// One access rule, ready for matching.
#[derive(Debug, Clone)]
pub struct Route {
    pub name: Arc<str>,
    methods: Option<Vec<String>>,
    host: Option<String>,
    path: PathMatch,
    pub access: Access,
    /// Space-separated scopes any requirement accepts, for the RFC 6750 `scope` attribute
    /// of a 403; `None` when the route accepts app roles only.
    pub scope_challenge: Option<Arc<str>>,
}

impl Route {
    pub fn new(config: &RouteConfig) -> Route {
        let mut scopes: Vec<&str> = Vec::new();
        if let Access::RequireAny(requirements) = &config.access {
            for scope in requirements.iter().flat_map(|r| &r.scopes) {
                if !scopes.contains(&scope.as_str()) {
                    scopes.push(scope);
                }
            }
        }
        Route {
            name: Arc::from(config.name.as_str()),
            methods: config.methods.clone(),
            host: config.host.clone(),
            path: config.path.clone(),
            access: config.access.clone(),
            scope_challenge: (!scopes.is_empty()).then(|| Arc::from(scopes.join(" "))),
        }
    }

    /// `path` must already be normalised; `host` is compared without its port and case.
    pub fn matches(&self, method: &str, host: &str, path: &str) -> bool {
        self.methods
            .as_ref()
            .is_none_or(|methods| methods.iter().any(|m| m.eq_ignore_ascii_case(method)))
            && self
                .host
                .as_ref()
                .is_none_or(|wanted| strip_port(host).eq_ignore_ascii_case(wanted))
            && match &self.path {
                PathMatch::Exact(exact) => path == exact,
                PathMatch::Prefix(prefix) => prefix_matches(prefix, path),
            }
    }
}

/// Segment-aware prefix: `/api/orders` matches `/api/orders` and `/api/orders/…` but not
/// `/api/ordersX`; a prefix ending in `/` (such as `/`) matches everything below it.
fn prefix_matches(prefix: &str, path: &str) -> bool {
    match path.strip_prefix(prefix) {
        None => false,
        Some(rest) => rest.is_empty() || prefix.ends_with('/') || rest.starts_with('/'),
    }
}

/// `host:port` -> `host`, leaving IPv6 literals (`[::1]:80` -> `[::1]`) intact.
fn strip_port(host: &str) -> &str {
    match host.rfind(':') {
        Some(colon) if !host[colon..].contains(']') => &host[..colon],
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Requirement;

    fn route(methods: Option<&[&str]>, host: Option<&str>, path: PathMatch) -> Route {
        Route::new(&RouteConfig {
            name: "r".into(),
            methods: methods.map(|m| m.iter().map(|s| s.to_string()).collect()),
            host: host.map(str::to_owned),
            path,
            access: Access::RequireAny(vec![
                Requirement {
                    scopes: vec!["Orders.Read".into()],
                    roles: vec![],
                },
                Requirement {
                    scopes: vec!["Orders.ReadWrite".into(), "Orders.Read".into()],
                    roles: vec!["Orders.Read.All".into()],
                },
            ]),
        })
    }

    #[test]
    fn prefix_is_segment_aware() {
        let r = route(None, None, PathMatch::Prefix("/api/orders".into()));
        assert!(r.matches("GET", "h", "/api/orders"));
        assert!(r.matches("GET", "h", "/api/orders/7"));
        assert!(!r.matches("GET", "h", "/api/ordersX"));
        assert!(!r.matches("GET", "h", "/api"));
        let root = route(None, None, PathMatch::Prefix("/".into()));
        assert!(root.matches("GET", "h", "/anything/at/all"));
    }

    #[test]
    fn exact_method_and_host_must_all_match() {
        let r = route(
            Some(&["GET", "HEAD"]),
            Some("api.example.com"),
            PathMatch::Exact("/healthz".into()),
        );
        assert!(r.matches("GET", "api.example.com", "/healthz"));
        assert!(r.matches("HEAD", "API.example.com:8443", "/healthz"));
        assert!(!r.matches("POST", "api.example.com", "/healthz"));
        assert!(!r.matches("GET", "other.example.com", "/healthz"));
        assert!(!r.matches("GET", "api.example.com", "/healthz/x"));
    }

    #[test]
    fn scope_challenge_lists_each_accepted_scope_once() {
        let r = route(None, None, PathMatch::Exact("/".into()));
        assert_eq!(
            r.scope_challenge.as_deref(),
            Some("Orders.Read Orders.ReadWrite")
        );
    }

    #[test]
    fn ports_are_stripped_from_hosts() {
        assert_eq!(strip_port("a.example:80"), "a.example");
        assert_eq!(strip_port("a.example"), "a.example");
        assert_eq!(strip_port("[::1]:80"), "[::1]");
        assert_eq!(strip_port("[::1]"), "[::1]");
    }
}
