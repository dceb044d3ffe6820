//! Steps 2 and 4 of a Check: find the routes a request falls under, and decide whether
//! verified claims satisfy a route. Scope and role comparison is exact:
//! `Orders.ReadWrite` never satisfies `Orders.Read`.
//!
//! **The request the upstream serves is the request judged.** Routes are first-match in
//! file order, but an upstream may read the request in more than one way: it may decode
//! `%2F`, drop `;parameters` or a trailing slash ([`crate::path::readings`]), route
//! case-insensitively, answer `HEAD` with its `GET` handler, or honour a method override.
//! [`Policy::resolve`] therefore returns every route the request reaches under any of
//! those readings, and the check step allows only when each of them allows: the decision
//! is the strictest of the decisions for every request the upstream may see.
//! Escaped separators, path parameters and method overrides are refused outright
//! (`invalid_request`) unless every route reached accepts them (`allow_*` on the route).

mod route;
mod rules;

use std::sync::Arc;

use smallvec::SmallVec;

pub use route::Route;
pub use rules::describe;

use crate::{
    config::{Access, Condition, Config, HeaderMapping, RouteIndex},
    deny::{Deny, DenyReason},
    jwt::VerifiedClaims,
    path::{PathTraits, readings},
};

/// The compiled routes of one configuration.
#[derive(Debug, Clone)]
pub struct Policy {
    routes: Vec<Route>,
    /// The routes by their patterns' leading segments, and by the same in lower case.
    index: RouteIndex,
    folded_index: RouteIndex,
    /// Some route's path pattern has capitals: every path gets a case-folded reading.
    capitals: bool,
}

/// The routes one request reaches.
#[derive(Debug)]
pub struct Reached<'p> {
    /// The route of the request as portcullis reads it (canonical path, own method).
    pub primary: Option<&'p Route>,
    /// Every distinct route some reading reaches, `primary` first.
    pub routes: SmallVec<[&'p Route; 4]>,
    /// Some reading reaches no route.
    pub unmatched: bool,
}

/// What the policy needs to know of a request (see [`crate::extract::RequestView`]).
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    pub method: &'a str,
    /// Canonical host.
    pub host: &'a str,
    /// Path without query, as received.
    pub path: &'a str,
    pub method_override: Option<&'a str>,
}

impl Policy {
    pub fn new(config: &Config) -> Policy {
        let global: Arc<[HeaderMapping]> = Arc::from(config.identity_headers.as_slice());
        let routes: Vec<Route> = config
            .routes
            .iter()
            .map(|r| Route::new(r, &global))
            .collect();
        let mut index = RouteIndex::default();
        let mut folded_index = RouteIndex::default();
        for (position, route) in routes.iter().enumerate() {
            index.insert(position, route.pattern(false));
            folded_index.insert(position, route.pattern(true));
        }
        Policy {
            capitals: routes.iter().any(Route::has_capitals),
            routes,
            index,
            folded_index,
        }
    }

    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// Every route `target` reaches under any reading an upstream may give it (see the
    /// module doc). `InvalidRequest` for a path that cannot be read, and for an escaped
    /// separator, a path parameter or a method override that some route reached does not
    /// accept (or that reaches no route).
    pub fn resolve(&self, target: &Target<'_>) -> Result<Reached<'_>, DenyReason> {
        let readings = readings(target.path).map_err(|_| DenyReason::InvalidRequest)?;
        let fold = self.capitals
            || readings
                .iter()
                .any(|p| p.bytes().any(|b| b.is_ascii_uppercase()));
        let folded: SmallVec<[String; 2]> = if fold {
            readings.iter().map(str::to_ascii_lowercase).collect()
        } else {
            SmallVec::new()
        };
        let paths: SmallVec<[(&str, bool); 4]> = readings
            .iter()
            .map(|p| (p, false))
            .chain(folded.iter().map(|p| (p.as_str(), true)))
            .collect();
        let mut reached = Reached {
            primary: self.first(target.method, target.host, &readings.canonical, false),
            routes: SmallVec::new(),
            unmatched: false,
        };
        self.reach(&mut reached, target.method, target.host, &paths);
        if target.method.eq_ignore_ascii_case("HEAD") {
            self.reach(&mut reached, "GET", target.host, &paths);
        }
        check_tolerance(&reached, readings.traits, target.method_override.is_some())?;
        if let Some(method) = target.method_override {
            if method.is_empty() || !method.bytes().all(|b| b.is_ascii_alphabetic()) {
                return Err(DenyReason::InvalidRequest);
            }
            self.reach(&mut reached, method, target.host, &paths);
            if method.eq_ignore_ascii_case("HEAD") {
                self.reach(&mut reached, "GET", target.host, &paths);
            }
            check_tolerance(&reached, readings.traits, true)?;
        }
        // Keep the request's own route first: it names the decision in logs.
        if let Some(primary) = reached.primary
            && let Some(at) = reached.routes.iter().position(|r| r.id == primary.id)
        {
            reached.routes[..=at].rotate_right(1);
        }
        Ok(reached)
    }

    /// The first route matching the canonical reading of the request (no other reading):
    /// for explanations and tests.
    pub fn route(&self, method: &str, host: &str, path: &str) -> Result<&Route, DenyReason> {
        let readings = readings(path).map_err(|_| DenyReason::InvalidRequest)?;
        self.first(method, host, &readings.canonical, false)
            .ok_or(DenyReason::NoRoute)
    }

    /// Adds the first route of each reading (`(path, folded)`) for `method` to `reached`.
    fn reach<'p>(
        &'p self,
        reached: &mut Reached<'p>,
        method: &str,
        host: &str,
        paths: &[(&str, bool)],
    ) {
        for &(path, folded) in paths {
            match self.first(method, host, path, folded) {
                Some(route) if !reached.routes.iter().any(|r| r.id == route.id) => {
                    reached.routes.push(route);
                }
                Some(_) => {}
                None => reached.unmatched = true,
            }
        }
    }

    /// The first route in file order that matches, among those the index files along
    /// `path` (a superset of the routes that match it).
    fn first(&self, method: &str, host: &str, path: &str, folded: bool) -> Option<&Route> {
        let index = if folded {
            &self.folded_index
        } else {
            &self.index
        };
        index
            .candidates(path)
            .into_iter()
            .filter_map(|position| self.routes.get(position))
            .find(|route| route.matches(method, host, path, folded))
    }
}

/// Escaped separators, path parameters and method overrides pass only when every route
/// the request reaches accepts them, and it reaches no unmatched reading.
fn check_tolerance(
    reached: &Reached<'_>,
    traits: PathTraits,
    method_override: bool,
) -> Result<(), DenyReason> {
    let accepted = |wanted: bool, accepts: fn(&Route) -> bool| {
        !wanted || (!reached.unmatched && reached.routes.iter().all(|r| accepts(r)))
    };
    if accepted(traits.escaped_separator, |r| r.tolerates.encoded_slashes)
        && accepted(traits.parameters, |r| r.tolerates.path_parameters)
        && accepted(method_override, |r| r.tolerates.method_override)
    {
        Ok(())
    } else {
        Err(DenyReason::InvalidRequest)
    }
}

/// Whether `claims` satisfy `route`: its `sender_constraint`, every condition of
/// `require`, and every condition of at least one `require_any` alternative.
pub fn evaluate(route: &Route, claims: &VerifiedClaims) -> Result<(), Deny> {
    let Access::Require { all, any } = &route.access else {
        return Ok(());
    };
    let cnf = &claims.confirmation;
    if !route
        .sender_constraint
        .admits(cnf.jkt.is_some(), cnf.x5t_s256.is_some())
    {
        return Err(Deny::from(DenyReason::SenderConstraintRequired)
            .with_dpop(route.sender_constraint.asks_for_dpop()));
    }
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
            dpop: false,
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
