//! Steps 3 and 5 of a Check: find the route a request falls under (first match in file
//! order, after path normalisation; none matching is a deny), and decide whether verified
//! claims satisfy it. Scope and role comparison is exact: `Orders.ReadWrite` never
//! satisfies `Orders.Read`.

mod route;
mod rules;

use std::sync::Arc;

pub use route::Route;
pub use rules::describe;

use crate::{
    config::{Access, Condition, Config, HeaderMapping},
    deny::{Deny, DenyReason},
    jwt::VerifiedClaims,
    path::normalize_path,
};

/// The compiled routes of one configuration.
#[derive(Debug, Clone)]
pub struct Policy {
    routes: Vec<Route>,
}

impl Policy {
    pub fn new(config: &Config) -> Policy {
        let global: Arc<[HeaderMapping]> = Arc::from(config.identity_headers.as_slice());
        Policy {
            routes: config
                .routes
                .iter()
                .map(|r| Route::new(r, &global))
                .collect(),
        }
    }

    pub fn routes(&self) -> &[Route] {
        &self.routes
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

/// Whether `claims` satisfy `route`: every condition of `require`, and every condition of
/// at least one `require_any` alternative.
pub fn evaluate(route: &Route, claims: &VerifiedClaims) -> Result<(), Deny> {
    let Access::Require { all, any } = &route.access else {
        return Ok(());
    };
    let failed = all.iter().find(|c| !rules::holds(c, claims));
    let failed_any = !any.is_empty()
        && !any
            .iter()
            .any(|alternative| alternative.iter().all(|c| rules::holds(c, claims)));
    let permission = match (failed, failed_any) {
        (None, false) => return Ok(()),
        (Some(condition), _) => rules::is_permission(condition),
        (None, true) => any.iter().flatten().any(rules::is_permission),
    };
    Err(if permission {
        Deny {
            reason: DenyReason::InsufficientPermission,
            required_scopes: route.scope_challenge.clone(),
        }
    } else {
        DenyReason::ConditionFailed.into()
    })
}

/// One condition's outcome, for `portcullis check`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConditionOutcome {
    /// `require` or `require_any[i]`.
    pub group: String,
    pub description: String,
    pub holds: bool,
}

/// Every condition of `route` with its outcome for `claims`.
pub fn explain(route: &Route, claims: &VerifiedClaims) -> Vec<ConditionOutcome> {
    let Access::Require { all, any } = &route.access else {
        return Vec::new();
    };
    let outcome = |group: String, condition: &Condition| ConditionOutcome {
        group,
        description: describe(condition),
        holds: rules::holds(condition, claims),
    };
    let mut outcomes: Vec<ConditionOutcome> =
        all.iter().map(|c| outcome("require".into(), c)).collect();
    for (i, alternative) in any.iter().enumerate() {
        outcomes.extend(
            alternative
                .iter()
                .map(|c| outcome(format!("require_any[{i}]"), c)),
        );
    }
    outcomes
}

#[cfg(test)]
mod tests;
