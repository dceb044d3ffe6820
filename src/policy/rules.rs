//! Conditions on verified claims: whether each holds, and how to describe it. The same
//! `holds` serves the hot path ([`super::evaluate`]) and the explanation
//! ([`super::explain`]), so what `portcullis check` prints is what the service decides.

use serde_json::Value;

use crate::{
    config::{Condition, TokenKind},
    jwt::{Claim, VerifiedClaims},
};

/// Whether `claims` satisfy `condition`; `paths`, the paths under which the request
/// reaches the route, for conditions on its path parameters.
pub fn holds(condition: &Condition, claims: &VerifiedClaims, paths: &[&str]) -> bool {
    match condition {
        Condition::Scopes(names) => names.iter().all(|s| claims.has_scope(s)),
        Condition::ScopesAny(names) => names.iter().any(|s| claims.has_scope(s)),
        Condition::Roles(names) => names.iter().all(|r| claims.has_role(r)),
        Condition::RolesAny(names) => names.iter().any(|r| claims.has_role(r)),
        Condition::Token(TokenKind::Any) => true,
        Condition::Token(TokenKind::Delegated) => claims.scopes().next().is_some(),
        Condition::Token(TokenKind::App) => {
            claims.scopes().next().is_none() && claims.roles().next().is_some()
        }
        Condition::Tenants(tenants) => claims
            .text("tid")
            .is_some_and(|tid| tenants.iter().any(|t| t.eq_ignore_ascii_case(&tid))),
        Condition::Clients(clients) => claims
            .client_id()
            .is_some_and(|client| clients.iter().any(|c| c == client)),
        Condition::Users(users) => ["oid", "sub"]
            .iter()
            .filter_map(|claim| claims.text(claim))
            .any(|id| users.iter().any(|u| *u == id)),
        Condition::ClaimEquals { claim, value } => {
            claims.text(claim).is_some_and(|v| v == value.as_str())
        }
        Condition::ClaimOneOf { claim, values } => claims
            .text(claim)
            .is_some_and(|v| values.iter().any(|w| *w == v)),
        Condition::ClaimContains { claim, value } => match claims.claims.get(claim) {
            Some(Claim::Json(Value::Array(items))) => {
                items.iter().any(|i| i.as_str() == Some(value))
            }
            Some(Claim::Text(s)) => s.split_whitespace().any(|part| part == value),
            _ => false,
        },
        Condition::ClaimEqualsParam {
            claim,
            segment,
            ignore_case,
            ..
        } => {
            let Some(expected) = claims.text(claim).filter(|v| !v.is_empty()) else {
                return false;
            };
            // Every reading must name the caller's object: one that names another (a
            // trailing dot, a double escape, a format suffix) is denied.
            !paths.is_empty()
                && paths.iter().all(|path| {
                    param(path, *segment).is_some_and(|value| match ignore_case {
                        true => value.eq_ignore_ascii_case(&expected),
                        false => value == expected,
                    })
                })
        }
    }
}

/// Segment `segment` of `path` (0 is the first after the leading `/`), percent-decoded
/// once as frameworks decode a path parameter; `None` if it is missing or does not
/// decode to UTF-8.
fn param(path: &str, segment: usize) -> Option<String> {
    let raw = path.split('/').nth(segment + 1)?;
    percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .ok()
        .map(|value| value.into_owned())
}

/// Whether a failure of `condition` is about permissions (scopes or app roles), which
/// RFC 6750 answers with `insufficient_scope`.
pub fn is_permission(condition: &Condition) -> bool {
    matches!(
        condition,
        Condition::Scopes(_)
            | Condition::ScopesAny(_)
            | Condition::Roles(_)
            | Condition::RolesAny(_)
    )
}

/// A one-line description for explanations.
pub fn describe(condition: &Condition) -> String {
    let list = |names: &[String]| names.join(", ");
    match condition {
        Condition::Scopes(n) => format!("scopes all of [{}]", list(n)),
        Condition::ScopesAny(n) => format!("scopes any of [{}]", list(n)),
        Condition::Roles(n) => format!("app roles all of [{}]", list(n)),
        Condition::RolesAny(n) => format!("app roles any of [{}]", list(n)),
        Condition::Token(TokenKind::Any) => "any valid access token".to_owned(),
        Condition::Token(TokenKind::Delegated) => "a delegated (user) token: has scopes".to_owned(),
        Condition::Token(TokenKind::App) => "an application token: app roles, no scope".to_owned(),
        Condition::Tenants(t) => format!("tenant (tid) one of [{}]", list(t)),
        Condition::Clients(c) => format!("calling app (azp/appid) one of [{}]", list(c)),
        Condition::Users(u) => format!("user (oid/sub) one of [{}]", list(u)),
        Condition::ClaimEquals { claim, value } => format!("claim {claim} equals {value:?}"),
        Condition::ClaimOneOf { claim, values } => {
            format!("claim {claim} one of [{}]", list(values))
        }
        Condition::ClaimContains { claim, value } => format!("claim {claim} contains {value:?}"),
        Condition::ClaimEqualsParam {
            claim,
            param,
            ignore_case,
            ..
        } => format!(
            "claim {claim} equals path parameter {{{param}}}{}",
            if *ignore_case { " (ignoring case)" } else { "" }
        ),
    }
}
