//! Step 3 of a Check: find the route a request falls under (first match in file order;
//! none matching is a deny) and decide whether verified claims satisfy it. Scope and role
//! comparison is exact: `Orders.ReadWrite` never satisfies `Orders.Read`.

mod route;

pub use route::Route;

use crate::{
    config::{Access, Config},
    deny::{Deny, DenyReason},
    jwt::VerifiedClaims,
    normalize::normalize_path,
};

/// The compiled routes of one configuration.
#[derive(Debug, Clone)]
pub struct Policy {
    routes: Vec<Route>,
}

impl Policy {
    pub fn new(config: &Config) -> Policy {
        Policy {
            routes: config.routes.iter().map(Route::new).collect(),
        }
    }

    /// The first route matching the request, after path normalisation.
    pub fn route(&self, method: &str, host: &str, raw_path: &str) -> Result<&Route, DenyReason> {
        let path = normalize_path(raw_path).map_err(|_| DenyReason::InvalidRequest)?;
        self.routes
            .iter()
            .find(|route| route.matches(method, host, &path))
            .ok_or(DenyReason::NoRoute)
    }
}

/// Whether `claims` satisfy `route`: any one requirement, each needing all its scopes and
/// all its roles.
pub fn evaluate(route: &Route, claims: &VerifiedClaims) -> Result<(), Deny> {
    let Access::RequireAny(requirements) = &route.access else {
        return Ok(());
    };
    let satisfied = requirements.iter().any(|req| {
        req.scopes.iter().all(|s| claims.has_scope(s))
            && req.roles.iter().all(|r| claims.has_role(r))
    });
    if satisfied {
        Ok(())
    } else {
        Err(Deny {
            reason: DenyReason::InsufficientPermission,
            required_scopes: route.scope_challenge.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    const CONFIG: &str = r#"
issuers:
  - issuer: https://idp.example.com/
    jwks_uri: https://idp.example.com/jwks.json
    audiences: [api://orders]
routes:
  - name: health
    path: { exact: /healthz }
    anonymous: true
  - name: orders-write
    methods: [POST, PUT, DELETE]
    path: { prefix: /api/orders }
    require_any:
      - scopes: [Orders.ReadWrite]
      - roles: [Orders.ReadWrite.All]
  - name: orders-read
    methods: [GET]
    path: { prefix: /api/orders }
    require_any:
      - scopes: [Orders.Read]
      - scopes: [Orders.ReadWrite]
      - roles: [Orders.Read.All]
  - name: reports
    path: { prefix: /api/reports }
    require_any:
      - scopes: [Reports.Read, Orders.Read]
"#;

    fn policy() -> Policy {
        Policy::new(&Config::from_yaml(CONFIG, "test").unwrap())
    }

    fn claims(value: Value) -> VerifiedClaims {
        let Value::Object(map) = value else {
            unreachable!("test claims are objects")
        };
        VerifiedClaims::new("https://idp.example.com/".into(), map).unwrap()
    }

    fn decide(method: &str, path: &str, token: Value) -> Result<&'static str, DenyReason> {
        let policy = policy();
        let route = policy.route(method, "api", path)?;
        evaluate(route, &claims(token)).map_err(|d| d.reason)?;
        Ok(match &*route.name {
            "health" => "health",
            "orders-write" => "orders-write",
            "orders-read" => "orders-read",
            _ => "reports",
        })
    }

    #[test]
    fn first_matching_route_wins_and_unmatched_is_denied() {
        let reader = json!({"scp": "Orders.Read"});
        assert_eq!(
            decide("GET", "/api/orders/1", reader.clone()),
            Ok("orders-read")
        );
        assert_eq!(
            decide("POST", "/api/orders", reader.clone()),
            Err(DenyReason::InsufficientPermission)
        );
        assert_eq!(
            decide("GET", "/api/other", reader.clone()),
            Err(DenyReason::NoRoute)
        );
        assert_eq!(
            decide("PATCH", "/api/orders", reader),
            Err(DenyReason::NoRoute)
        );
    }

    #[test]
    fn scope_or_app_role_and_all_of_within_a_requirement() {
        assert_eq!(
            decide("GET", "/api/orders", json!({"roles": ["Orders.Read.All"]})),
            Ok("orders-read")
        );
        assert_eq!(
            decide("POST", "/api/orders", json!({"scp": "Orders.ReadWrite"})),
            Ok("orders-write")
        );
        assert_eq!(
            decide("GET", "/api/reports", json!({"scp": "Reports.Read"})),
            Err(DenyReason::InsufficientPermission)
        );
        assert_eq!(
            decide(
                "GET",
                "/api/reports",
                json!({"scp": "Reports.Read Orders.Read"})
            ),
            Ok("reports")
        );
    }

    #[test]
    fn similar_names_never_satisfy() {
        assert_eq!(
            decide(
                "GET",
                "/api/orders",
                json!({"scp": "Orders.Read.All orders.read"})
            ),
            Err(DenyReason::InsufficientPermission)
        );
        assert_eq!(
            decide(
                "GET",
                "/api/orders",
                json!({"scp": "x", "roles": ["Orders.Read"]})
            ),
            Err(DenyReason::InsufficientPermission)
        );
    }

    #[test]
    fn normalised_path_decides_the_route() {
        let p = policy();
        assert_eq!(
            &*p.route("GET", "h", "/healthz/../api/orders").unwrap().name,
            "orders-read"
        );
        assert_eq!(
            &*p.route("GET", "h", "/api/%6Frders?x").unwrap().name,
            "orders-read"
        );
        assert_eq!(
            p.route("GET", "h", "/api/orders%zz").unwrap_err(),
            DenyReason::InvalidRequest
        );
    }

    #[test]
    fn insufficient_permission_names_the_accepted_scopes() {
        let p = policy();
        let route = p.route("GET", "h", "/api/orders").unwrap();
        let deny = evaluate(route, &claims(json!({"scp": "Profile.Read"}))).unwrap_err();
        assert_eq!(
            deny.required_scopes.as_deref(),
            Some("Orders.Read Orders.ReadWrite")
        );
    }
}
