//! A route's `step_up`: whether the sign-in behind a verified token is the one the route
//! needs, and the challenge that tells the client how to get a better token — RFC 9470's
//! `insufficient_user_authentication` with `acr_values` and `max_age`, or an OpenID
//! Connect claims request (`insufficient_claims`, `claims=` base64 JSON) as Microsoft
//! Entra Conditional Access and MSAL use for authentication contexts.

use base64::{Engine as _, engine::general_purpose::STANDARD};
use jsonwebtoken::get_current_timestamp;
use serde_json::{Map, Value, json};

use super::ConditionOutcome;
use crate::{
    config::{StepUp, StepUpChallenge},
    deny::{Deny, DenyReason},
    jwt::{Claim, VerifiedClaims},
};

/// What of a route's `step_up` a token meets.
struct Met<'a> {
    acr: bool,
    age: bool,
    /// Authentication contexts the token's `acrs` does not list, in the route's order.
    missing_contexts: Vec<&'a str>,
}

fn met<'a>(step_up: &'a StepUp, claims: &VerifiedClaims, now: u64) -> Met<'a> {
    let acr = step_up.acr.is_empty()
        || claims
            .claims
            .get("acr")
            .and_then(Claim::as_str)
            .is_some_and(|acr| step_up.acr.iter().any(|a| a == acr));
    let age = step_up.max_age.is_none_or(|max_age| {
        auth_time(claims).is_some_and(|at| now.saturating_sub(at) <= max_age.as_secs())
    });
    let listed = |id: &str| match claims.claims.get("acrs") {
        Some(Claim::Json(Value::Array(items))) => items.iter().any(|i| i.as_str() == Some(id)),
        Some(Claim::Text(s)) => s == id,
        _ => false,
    };
    Met {
        acr,
        age,
        missing_contexts: step_up
            .auth_contexts
            .iter()
            .map(String::as_str)
            .filter(|id| !listed(id))
            .collect(),
    }
}

/// `auth_time` in whole seconds (a JSON number; a fraction is cut).
fn auth_time(claims: &VerifiedClaims) -> Option<u64> {
    let value = claims.claims.get("auth_time")?;
    value
        .as_u64()
        .or_else(|| value.as_f64().filter(|t| *t >= 0.0).map(|t| t as u64))
}

/// Whether `claims` meet `step_up`; if not, the challenge that asks for what is missing.
pub fn check(step_up: &StepUp, claims: &VerifiedClaims) -> Result<(), Deny> {
    let met = met(step_up, claims, get_current_timestamp());
    if met.acr && met.age && met.missing_contexts.is_empty() {
        return Ok(());
    }
    let mut parameters = Vec::new();
    let claims_request = !met.missing_contexts.is_empty()
        || (!met.acr && claims.step_up_challenge == StepUpChallenge::Claims);
    let reason = if claims_request {
        let mut wanted = Map::new();
        if let Some(first) = met.missing_contexts.first() {
            wanted.insert("acrs".into(), json!({"essential": true, "value": first}));
        }
        if !met.acr {
            wanted.insert(
                "acr".into(),
                json!({"essential": true, "values": step_up.acr}),
            );
        }
        let request = json!({ "access_token": wanted }).to_string();
        parameters.push(format!("claims=\"{}\"", STANDARD.encode(request)));
        DenyReason::InsufficientClaims
    } else {
        if !step_up.acr.is_empty() {
            parameters.push(format!("acr_values=\"{}\"", step_up.acr.join(" ")));
        }
        DenyReason::InsufficientUserAuthentication
    };
    if let Some(max_age) = step_up.max_age.filter(|_| !met.age || !claims_request) {
        parameters.push(format!("max_age={}", max_age.as_secs()));
    }
    Err(Deny {
        step_up: Some(parameters.join(", ")),
        ..Deny::from(reason)
    })
}

/// Each requirement of `step_up` with whether `claims` meet it, for `portcullis check`.
pub fn explain(step_up: &StepUp, claims: &VerifiedClaims) -> Vec<ConditionOutcome> {
    let met = met(step_up, claims, get_current_timestamp());
    let outcome = |description: String, holds: bool| ConditionOutcome {
        group: "step_up".into(),
        description,
        holds,
    };
    let mut outcomes = Vec::new();
    if !step_up.acr.is_empty() {
        outcomes.push(outcome(
            format!("acr one of [{}]", step_up.acr.join(", ")),
            met.acr,
        ));
    }
    if let Some(max_age) = step_up.max_age {
        outcomes.push(outcome(
            format!("signed in (auth_time) at most {}s ago", max_age.as_secs()),
            met.age,
        ));
    }
    for id in &step_up.auth_contexts {
        outcomes.push(outcome(
            format!("authentication context {id} in acrs"),
            !met.missing_contexts.contains(&id.as_str()),
        ));
    }
    outcomes
}

#[cfg(test)]
mod tests;
