//! The Check pipeline, once: extract → route → verify → evaluate, giving a [`Verdict`].
//! Every front (gRPC, HTTP check) and `portcullis check` call [`decide`]; the answer is
//! built from the verdict by [`crate::respond`], the decision event recorded from it by
//! the front.
//!
//! A request may reach several routes (the readings an upstream may give it, see
//! [`crate::policy`]); it is allowed only when every one of them allows it. A request that
//! reaches a protected route, or no route, is authenticated first, so that an
//! unauthenticated caller learns nothing about which routes exist: no credentials → 401,
//! a token that fails verification → 401 `invalid_token`, a valid token → the policy's
//! answer (403 for no route).

use std::sync::Arc;

use smallvec::SmallVec;
use tracing::Instrument;

use crate::{
    binding::Presented,
    config::Access,
    deny::{Deny, DenyReason},
    extract::{METHOD_OVERRIDE_HEADERS, RequestView, extract},
    jwt::VerifiedClaims,
    pb::auth::CheckRequest,
    policy::{PolicySet, Reached, Route, Scoped, Target, evaluate},
    state::Engine,
    telemetry,
};

/// How the pipeline learns who the caller is.
pub enum Authentication {
    /// Verify the request's bearer token: what the service does.
    Bearer,
    /// Take these claims as they are (`portcullis check --claims` / `--no-verify`).
    Given(Result<Arc<VerifiedClaims>, Deny>),
}

/// What the pipeline decided for one request, and everything the answer, the decision
/// event and `portcullis check` need to know about it.
#[derive(Debug)]
pub struct Verdict<'a> {
    /// Envoy's request id (`x-request-id`).
    pub request_id: &'a str,
    /// The route of the request as it reads (canonical path, its own method), if any.
    pub primary: Option<&'a Route>,
    /// Every route the request reached under any reading, `primary` first.
    pub reached: SmallVec<[&'a Route; 4]>,
    /// The paths under which it reached the routes that read path parameters
    /// ([`Reached::paths`]).
    pub paths: SmallVec<[(u64, String); 1]>,
    /// The routes of baseline policy files it reached (each judged it too).
    pub baseline: SmallVec<[&'a Route; 2]>,
    /// The route the decision is about: the one that allowed (its identity headers go
    /// upstream), the one that denied, or the request's own.
    pub route: Option<&'a Route>,
    /// The outcome of authentication, when the request needed it.
    pub claims: Option<Result<Arc<VerifiedClaims>, Deny>>,
    /// Allowed — with what an audit-mode route would have denied — or denied.
    pub outcome: Result<Option<DenyReason>, Deny>,
    /// The Check's span (disabled when traces are not exported).
    pub span: tracing::Span,
}

impl<'a> Verdict<'a> {
    /// The verdict of a Check that could not be decided (overload, a bug).
    pub fn failed(reason: DenyReason) -> Verdict<'a> {
        Verdict::refused(reason, tracing::Span::none())
    }

    /// A request refused before any route was looked at.
    fn refused(reason: DenyReason, span: tracing::Span) -> Verdict<'a> {
        Verdict {
            request_id: "",
            primary: None,
            reached: SmallVec::new(),
            paths: SmallVec::new(),
            baseline: SmallVec::new(),
            route: None,
            claims: None,
            outcome: Err(reason.into()),
            span,
        }
    }

    /// The verified claims, when authentication succeeded.
    pub fn verified(&self) -> Option<&Arc<VerifiedClaims>> {
        self.claims.as_ref().and_then(|c| c.as_ref().ok())
    }
}

/// Decides one request on `engine`. `parent` is the trace context the transport carried
/// (gRPC metadata); without one, the Check's span continues the request headers' trace.
pub async fn decide<'a>(
    engine: &'a Engine,
    request: &'a CheckRequest,
    authentication: Authentication,
    parent: Option<opentelemetry::Context>,
) -> Verdict<'a> {
    let span = telemetry::check_span();
    let view = match extract(request, engine.limits.max_headers, engine.request_body) {
        Ok(view) => view,
        Err(reason) => {
            telemetry::continue_trace(&span, parent, None, None);
            return Verdict::refused(reason, span);
        }
    };
    telemetry::continue_trace(&span, parent, view.traceparent, view.tracestate);
    let decided = route_and_judge(engine, &view, authentication)
        .instrument(span.clone())
        .await;
    Verdict {
        request_id: view.request_id,
        primary: decided.primary,
        reached: decided.reached,
        paths: decided.paths,
        baseline: decided.baseline,
        route: decided.route,
        claims: decided.claims,
        outcome: decided.outcome,
        span,
    }
}

/// The verdict's decision, before the request's identity and span are added.
struct Decided<'a> {
    primary: Option<&'a Route>,
    reached: SmallVec<[&'a Route; 4]>,
    paths: SmallVec<[(u64, String); 1]>,
    baseline: SmallVec<[&'a Route; 2]>,
    route: Option<&'a Route>,
    claims: Option<Result<Arc<VerifiedClaims>, Deny>>,
    outcome: Outcome,
}

/// Allowed (with the reason an audit-mode route would have denied, if any), or denied.
type Outcome = Result<Option<DenyReason>, Deny>;

impl<'a> Decided<'a> {
    fn refused(reason: DenyReason) -> Decided<'a> {
        Decided {
            primary: None,
            reached: SmallVec::new(),
            paths: SmallVec::new(),
            baseline: SmallVec::new(),
            route: None,
            claims: None,
            outcome: Err(reason.into()),
        }
    }
}

/// Steps 2 to 4: the sets that judge the request (the team file whose scope it falls in,
/// else the main file's routes, and every baseline file), the routes it reaches in each,
/// authentication where one of them needs it, and the strictest judgement of all.
async fn route_and_judge<'a>(
    engine: &'a Engine,
    view: &RequestView<'_>,
    authentication: Authentication,
) -> Decided<'a> {
    if let Err(reason) = refuse_lookalikes(view, &engine.forwarding.managed) {
        return Decided::refused(reason);
    }
    let selected = engine.policies.select(&Scoped {
        principal: view.principal,
        context: view.context,
        host: &view.host,
    });
    let target = Target {
        method: view.method,
        host: &view.host,
        path: view.path,
        forwarded_hosts: &view.forwarded_hosts,
        rewrites: &view.rewrites,
        overrides: &view.overrides,
    };
    // The governing set's routes first (none reached when no set governs: denied
    // `no_route` after authentication), then each baseline's.
    let mut judged: SmallVec<[(Option<&PolicySet>, Reached<'a>); 2]> = SmallVec::new();
    if selected.governing.is_none() {
        judged.push((None, Reached::nowhere()));
    }
    for set in selected.governing.into_iter().chain(selected.baselines) {
        match set.policy.resolve(&target) {
            Ok(reached) => judged.push((Some(set), reached)),
            Err(reason) => return Decided::refused(reason),
        }
    }
    // Claims given as they are (`portcullis check` without a token to verify) skip what
    // verification would have checked, which a set's issuers and audiences are part of.
    let verified = matches!(authentication, Authentication::Bearer);
    let claims = if judged.iter().any(|(_, reached)| needs_token(reached)) {
        Some(match authentication {
            Authentication::Given(claims) => claims,
            Authentication::Bearer => authenticate(engine, view).await.map_err(Deny::from),
        })
    } else {
        None
    };
    // A request made with the DPoP scheme is answered with DPoP challenges (RFC 9449 §7.1).
    let dpop = view.credential.is_ok_and(|c| c.dpop);
    let mut outcome: Option<(Option<&'a Route>, Outcome)> = None;
    for (set, reached) in &judged {
        let for_set = needs_token(reached).then(|| {
            claims
                .as_ref()
                .map(|c| c.as_deref().map_err(Deny::clone))
                .unwrap_or_else(|| Err(DenyReason::Internal.into()))
                .and_then(|claims| match set {
                    Some(set) if verified => set.accepts(claims).map(|()| claims),
                    _ => Ok(claims),
                })
        });
        let (route, result) = match judge(reached, for_set) {
            Ok(judgement) => (Some(judgement.route), Ok(judgement.audit)),
            Err((route, deny)) => (route.or(reached.primary), Err(deny.with_dpop(dpop))),
        };
        outcome = match (outcome, result) {
            // The governing set's answer names the decision, unless another set denies.
            (None, result) => Some((route, result)),
            (Some((_, Ok(_))), Err(deny)) => Some((route, Err(deny))),
            (Some((first, Ok(None))), Ok(Some(would))) => Some((first, Ok(Some(would)))),
            (kept, _) => kept,
        };
    }
    let (route, outcome) = outcome.unwrap_or((None, Err(DenyReason::NoRoute.into())));
    let mut judged = judged.into_iter();
    let governing = judged.next().map(|(_, reached)| reached);
    let baseline = judged.flat_map(|(_, reached)| reached.routes).collect();
    let (primary, reached, paths) = governing.map_or_else(
        || (None, SmallVec::new(), SmallVec::new()),
        |r| (r.primary, r.routes, r.paths),
    );
    Decided {
        primary,
        reached,
        paths,
        baseline,
        route,
        claims,
        outcome,
    }
}

/// Steps 3 and 3b: the token verified, then its binding to the sender (a DPoP proof, the
/// client certificate) checked for this request.
async fn authenticate(
    engine: &Engine,
    view: &RequestView<'_>,
) -> Result<Arc<VerifiedClaims>, DenyReason> {
    let credential = view.credential?;
    let claims = engine.verifier.verify(credential.token).await?;
    engine
        .binding
        .check(
            claims.confirmation(),
            &Presented {
                dpop_scheme: credential.dpop,
                token: credential.token,
                proof: view.dpop_proof,
                method: view.method,
                scheme: view.scheme,
                authority: view.authority,
                path: view.path,
                certificate: view.certificate,
            },
        )
        .await?;
    Ok(claims)
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
            Ok(claims) => evaluate(route, claims, &reached.paths_of(route)),
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

/// A 403 on a route names the scopes the route accepts (RFC 6750 §3.1), whatever
/// condition failed; a route that takes only DPoP-bound tokens challenges with `DPoP`.
fn challenge_for(route: &Route, mut deny: Deny) -> Deny {
    if deny.reason.http_status() == 403 && deny.required_scopes.is_none() {
        deny.required_scopes = route.scope_challenge.clone();
    }
    deny.with_dpop(route.sender_constraint.asks_for_dpop())
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

#[cfg(any(test, fuzzing))]
pub(crate) mod model;
#[cfg(test)]
pub(crate) mod tests;
