//! The Check pipeline, once: extract → route → verify → evaluate → respond. Every front
//! (gRPC, HTTP check) calls [`check`]; none repeats a step.
//!
//! A request may reach several routes (the readings an upstream may give it, see
//! [`crate::policy`]); it is allowed only when every one of them allows it. A request that
//! reaches a protected route, or no route, is authenticated first, so that an
//! unauthenticated caller learns nothing about which routes exist: no credentials → 401,
//! a token that fails verification → 401 `invalid_token`, a valid token → the policy's
//! answer (403 for no route).

use std::sync::Arc;

use crate::{
    answer::{self, Answer},
    config::Access,
    deny::{Deny, DenyReason},
    extract::{METHOD_OVERRIDE_HEADERS, RequestView, bearer_token, extract},
    jwt::VerifiedClaims,
    pb::auth::CheckRequest,
    policy::{Reached, Route, Target, evaluate},
    respond,
    state::{AppState, Engine},
    telemetry,
};

/// The outcome of one Check, for logging and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub route: Option<Arc<str>>,
    pub issuer: Option<Arc<str>>,
    pub result: Result<(), Deny>,
    /// On an audit-mode route: what would have been denied (the request was allowed).
    pub audit: Option<DenyReason>,
    /// [`telemetry::subject_hash`] of `sub`, when decision events are logged.
    pub subject_hash: Option<String>,
}

/// An allow on no route, until the pipeline says more.
impl Default for Decision {
    fn default() -> Decision {
        Decision {
            route: None,
            issuer: None,
            result: Ok(()),
            audit: None,
            subject_hash: None,
        }
    }
}

impl Decision {
    /// A deny decided before any route was looked at.
    pub fn failed(reason: DenyReason) -> Decision {
        Decision {
            result: Err(reason.into()),
            ..Decision::default()
        }
    }
}

/// Runs the whole pipeline for one request, on the engine current when it starts. With
/// `memo`, a plain allow for a cached token is encoded once per route and then reused
/// ([`crate::memo`]).
pub async fn check(state: &AppState, request: &CheckRequest, memo: bool) -> (Answer, Decision) {
    let engine = state.engine();
    let mut decision = Decision::default();
    let memo = memo && engine.verifier.token_cache().enabled();
    let response = match decide(&engine, request, &mut decision, memo).await {
        Ok(response) => response,
        Err(deny) => {
            let response = respond::deny(&deny, &engine.realm, decision.route.as_deref());
            decision.result = Err(deny);
            response.into()
        }
    };
    (response, decision)
}

async fn decide(
    engine: &Engine,
    request: &CheckRequest,
    decision: &mut Decision,
    memo: bool,
) -> Result<Answer, Deny> {
    let view = extract(request, engine.limits.max_headers)?;
    refuse_lookalikes(&view, &engine.forwarding.managed)?;
    let reached = engine.policy.resolve(&Target {
        method: view.method,
        host: &view.host,
        path: view.path,
        method_override: view.method_override,
    })?;
    decision.route = reached.primary.map(|r| r.name.clone());
    let claims = if needs_token(&reached) {
        let claims = authenticate(engine, view.authorization).await;
        if let Ok(claims) = &claims {
            decision.issuer = Some(claims.issuer.clone());
            if tracing::enabled!(tracing::Level::INFO) {
                decision.subject_hash = claims
                    .claims
                    .get("sub")
                    .and_then(serde_json::Value::as_str)
                    .map(telemetry::subject_hash);
            }
        }
        Some(claims)
    } else {
        None
    };
    let judged = judge(
        &reached,
        claims.as_ref().map(|c| c.as_deref().map_err(Deny::clone)),
    );
    let route = match judged {
        Ok(judgement) => judgement,
        Err((route, deny)) => {
            decision.route = route.map(|r| r.name.clone());
            return Err(deny);
        }
    };
    decision.route = Some(route.route.name.clone());
    decision.audit = route.audit;
    let claims = claims.and_then(Result::ok);
    Ok(match (route.audit, claims) {
        (None, Some(claims)) if memo => answer::allow(route.route, &claims, &engine.forwarding),
        (audit, claims) => {
            respond::allow(route.route, claims.as_deref(), &engine.forwarding, audit).into()
        }
    })
}

/// Whether the request reaches a protected route, or no route: then it is authenticated.
fn needs_token(reached: &Reached<'_>) -> bool {
    reached.unmatched || reached.routes.iter().any(|r| !is_anonymous(r))
}

fn is_anonymous(route: &Route) -> bool {
    matches!(route.access, Access::Anonymous)
}

/// The route whose answer an allowed request gets, and what an audit-mode route would
/// have denied.
#[derive(Debug)]
struct Judgement<'p> {
    route: &'p Route,
    audit: Option<DenyReason>,
}

/// The strictest of the decisions of every route the request reached, given the outcome
/// of authentication (`None` when it was not needed). A deny names the route that denied.
fn judge<'p>(
    reached: &Reached<'p>,
    claims: Option<Result<&VerifiedClaims, Deny>>,
) -> Result<Judgement<'p>, (Option<&'p Route>, Deny)> {
    let claims = match claims {
        None if !needs_token(reached) => {
            let route = reached.primary.ok_or((None, DenyReason::Internal.into()))?;
            return Ok(Judgement { route, audit: None });
        }
        None => Err(Deny::from(DenyReason::Internal)),
        Some(claims) => claims,
    };
    let mut governing: Option<&Route> = None;
    let mut audit: Option<DenyReason> = None;
    for &route in reached.routes.iter().filter(|r| !is_anonymous(r)) {
        let outcome = match &claims {
            Ok(claims) => evaluate(route, claims),
            Err(deny) => Err(deny.clone()),
        };
        match outcome {
            Ok(()) => {}
            Err(deny) if route.audit => {
                audit.get_or_insert(deny.reason);
            }
            Err(deny) => return Err((Some(route), challenge_for(route, deny))),
        }
        governing.get_or_insert(route);
    }
    if reached.unmatched {
        return Err((None, claims.err().unwrap_or(DenyReason::NoRoute.into())));
    }
    let route = governing.ok_or((None, DenyReason::Internal.into()))?;
    Ok(Judgement { route, audit })
}

async fn authenticate(
    engine: &Engine,
    authorization: Option<&str>,
) -> Result<Arc<VerifiedClaims>, Deny> {
    let token = bearer_token(authorization)?;
    Ok(engine.verifier.verify(token).await?)
}

/// A 403 on a route names the scopes the route accepts (RFC 6750 §3.1), whatever
/// condition failed.
fn challenge_for(route: &Route, mut deny: Deny) -> Deny {
    if deny.reason.http_status() == 403 && deny.required_scopes.is_none() {
        deny.required_scopes = route.scope_challenge.clone();
    }
    deny
}

/// Refuses a header whose name is a managed identity header or a method-override header
/// spelled with `_` for `-`: CGI, WSGI, Rack and PHP upstreams read both the same way, and
/// Envoy cannot remove the look-alike.
fn refuse_lookalikes(view: &RequestView<'_>, managed: &[String]) -> Result<(), DenyReason> {
    let spoofs = |name: &&str| {
        let dashed = name.to_ascii_lowercase().replace('_', "-");
        managed.contains(&dashed) || METHOD_OVERRIDE_HEADERS.contains(&dashed.as_str())
    };
    if view.underscored.iter().any(spoofs) {
        return Err(DenyReason::InvalidRequest);
    }
    Ok(())
}

#[cfg(test)]
mod tests;
