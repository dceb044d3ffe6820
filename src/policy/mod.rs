//! Steps 2 and 4 of a Check: find the routes a request falls under, and decide whether
//! verified claims satisfy a route. Scope and role comparison is exact:
//! `Orders.ReadWrite` never satisfies `Orders.Read`.
//!
//! **The request the upstream serves is the request judged.** Routes are first-match in
//! file order, but an upstream may read the request in more than one way: every reading of
//! the catalogue ([`crate::upstream`]) that the frameworks serving the request give — other
//! paths ([`crate::path::readings`]), case folding, other hosts, other methods.
//! [`Policy::resolve`] therefore returns every route the request reaches under any of
//! those readings, and the check step allows only when each of them allows: the decision
//! is the strictest of the decisions for every request the upstream may see. Escaped
//! separators, path parameters, double escapes and method overrides are refused
//! (`invalid_request`) when their readings disagree — reach different routes, not all
//! anonymous — unless every route reached accepts them (`allow_*` on the route).

mod resolve;
mod route;
mod rules;
mod sets;
mod step_up;

pub use resolve::{Policy, Reached, Target, paths_of};
pub use route::Route;
pub use rules::describe;
pub use sets::{Policies, PolicySet, Scoped};

use crate::{
    config::{Access, Condition},
    deny::{Deny, DenyReason},
    jwt::VerifiedClaims,
};

/// Whether `claims` satisfy `route`: its `sender_constraint`, every condition of
/// `require`, every condition of at least one `require_any` alternative, then its
/// `step_up` (a client stepping up must not be sent on to a 403). `paths` are
/// the paths under which the request reaches the route ([`Reached::paths_of`]), which
/// conditions on path parameters read.
pub fn evaluate(route: &Route, claims: &VerifiedClaims, paths: &[&str]) -> Result<(), Deny> {
    let Access::Require { all, any } = &route.access else {
        return Ok(());
    };
    let cnf = claims.confirmation();
    if !route
        .sender_constraint
        .admits(cnf.jkt.is_some(), cnf.x5t_s256.is_some())
    {
        return Err(Deny::from(DenyReason::SenderConstraintRequired)
            .with_dpop(route.sender_constraint.asks_for_dpop()));
    }
    let failed = all.iter().find(|c| !rules::holds(c, claims, paths));
    let failed_any = !any.is_empty()
        && !any
            .iter()
            .any(|alternative| alternative.iter().all(|c| rules::holds(c, claims, paths)));
    let permission = match (failed, failed_any) {
        (None, false) => {
            return route
                .step_up
                .as_ref()
                .map_or(Ok(()), |s| step_up::check(s, claims));
        }
        (Some(condition), _) => rules::is_permission(condition),
        (None, true) => any.iter().flatten().any(rules::is_permission),
    };
    Err(if permission {
        Deny {
            required_scopes: route.scope_challenge.clone(),
            ..DenyReason::InsufficientPermission.into()
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

/// Every condition of `route` (and of its `step_up`) with its outcome for `claims` (and
/// `paths`, as for [`evaluate`]).
pub fn explain(route: &Route, claims: &VerifiedClaims, paths: &[&str]) -> Vec<ConditionOutcome> {
    let Access::Require { all, any } = &route.access else {
        return Vec::new();
    };
    let outcome = |group: String, condition: &Condition| ConditionOutcome {
        group,
        description: describe(condition),
        holds: rules::holds(condition, claims, paths),
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
    if let Some(step_up) = &route.step_up {
        outcomes.extend(step_up::explain(step_up, claims));
    }
    outcomes
}

#[cfg(test)]
mod tests;
