//! Step-up requirements: a route's `step_up` (which sign-in the token must show — an
//! `acr`, a recent `auth_time`, Entra authentication contexts in `acrs`) and an issuer's
//! `step_up_challenge` (how a client is told to get a better token: RFC 9470's
//! `insufficient_user_authentication`, or an OpenID Connect claims request as Entra's
//! Conditional Access answers it, `insufficient_claims`).

use std::time::Duration;

use super::{problems::Problems, raw::RawStepUp, words::StepUpChallenge};

/// What a route demands of the sign-in behind a token, on top of its `require`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepUp {
    /// Accepted `acr` values in the operator's order of preference (sent in that order as
    /// the challenge's `acr_values`); empty: any.
    pub acr: Vec<String>,
    /// Longest time since `auth_time`; `None`: any age.
    pub max_age: Option<Duration>,
    /// Entra authentication context IDs (`c1`…`c99`) the token's `acrs` must all list.
    pub auth_contexts: Vec<String>,
}

/// The issuer's `step_up_challenge`, `default` when not given.
pub(super) fn challenge(
    field: &str,
    value: Option<&str>,
    default: StepUpChallenge,
    problems: &mut Problems,
) -> StepUpChallenge {
    match value {
        None => default,
        Some("rfc9470") => StepUpChallenge::Rfc9470,
        Some("claims") => StepUpChallenge::Claims,
        Some(other) => {
            problems.add(
                format!("{field}.step_up_challenge"),
                format!("{other:?} is not rfc9470 or claims"),
            );
            default
        }
    }
}

/// A route's `step_up`; `anonymous` routes verify no token, so none applies there.
pub(super) fn step_up(
    field: &str,
    raw: Option<&RawStepUp>,
    anonymous: bool,
    problems: &mut Problems,
) -> Option<StepUp> {
    let raw = raw?;
    let field = format!("{field}.step_up");
    if anonymous {
        problems.add(
            &field,
            "does not apply to `anonymous: true` routes (they verify no token)",
        );
    }
    let acr = raw.acr.clone().unwrap_or_default();
    if raw.acr.as_ref().is_some_and(Vec::is_empty) {
        problems.add(format!("{field}.acr"), "must not be empty (omit it)");
    }
    for (i, value) in acr.iter().enumerate() {
        // Sent back in a quoted-string challenge parameter.
        if value.is_empty() || value.contains(['"', '\\', ' ']) || value.contains(char::is_control)
        {
            problems.add(
                format!("{field}.acr[{i}]"),
                format!("{value:?} is not an acr value (no spaces, quotes or backslashes)"),
            );
        }
    }
    let max_age = raw.max_age.as_deref().map(|text| {
        let age = problems.duration(&format!("{field}.max_age"), Some(text), Duration::ZERO);
        if age < Duration::from_secs(1) {
            problems.add(format!("{field}.max_age"), "must be at least 1s");
        }
        age
    });
    let auth_contexts = raw.auth_contexts.clone().unwrap_or_default();
    if raw.auth_contexts.as_ref().is_some_and(Vec::is_empty) {
        problems.add(
            format!("{field}.auth_contexts"),
            "must not be empty (omit it)",
        );
    }
    for (i, id) in auth_contexts.iter().enumerate() {
        if !is_auth_context(id) {
            problems.add(
                format!("{field}.auth_contexts[{i}]"),
                format!("{id:?} is not an Entra authentication context ID (c1 to c99)"),
            );
        }
    }
    if acr.is_empty() && max_age.is_none() && auth_contexts.is_empty() {
        problems.add(&field, "names nothing: give acr, max_age or auth_contexts");
    }
    Some(StepUp {
        acr,
        max_age,
        auth_contexts,
    })
}

/// Entra's authentication context IDs: `c1` to `c99`.
fn is_auth_context(id: &str) -> bool {
    id.strip_prefix('c')
        .filter(|n| !n.starts_with('0') && n.chars().all(|c| c.is_ascii_digit()))
        .and_then(|n| n.parse::<u8>().ok())
        .is_some_and(|n| (1..=99).contains(&n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authentication_context_ids_are_c1_to_c99() {
        for id in ["c1", "c9", "c10", "c99"] {
            assert!(is_auth_context(id), "{id}");
        }
        for id in ["c0", "c01", "c100", "C1", "c", "1", "c1 ", "c+1"] {
            assert!(!is_auth_context(id), "{id}");
        }
    }
}
