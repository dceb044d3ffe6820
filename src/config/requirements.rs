//! What a route requires, validated: `anonymous`, or `require` (every condition) and
//! `require_any` (alternatives) — scopes, app roles, token kind, tenants, calling apps,
//! users and claim conditions, including `equals_param` bound to its template segment.

use super::{
    Access, Condition, PathMatch, TokenKind,
    problems::Problems,
    raw::{RawClaimCondition, RawRequirement, RawRoute},
};

pub(super) fn access(field: &str, raw: &RawRoute, problems: &mut Problems) -> Option<Access> {
    let has_rules = raw.require.is_some() || raw.require_any.is_some();
    if raw.anonymous {
        if has_rules {
            problems.add(
                field.to_owned(),
                "`anonymous: true` excludes `require` and `require_any`",
            );
            return None;
        }
        return Some(Access::Anonymous);
    }
    if !has_rules {
        problems.add(
            format!("{field}.require"),
            "a route needs `require` and/or `require_any` (e.g. `require: { token: any }` for \
             any valid access token), or `anonymous: true`",
        );
        return None;
    }
    let all = match &raw.require {
        None => Vec::new(),
        Some(req) => conditions(&format!("{field}.require"), req, problems),
    };
    let any = match &raw.require_any {
        None => Vec::new(),
        Some(list) if list.is_empty() => {
            problems.add(format!("{field}.require_any"), "must not be empty");
            Vec::new()
        }
        Some(list) => list
            .iter()
            .enumerate()
            .map(|(j, req)| conditions(&format!("{field}.require_any[{j}]"), req, problems))
            .collect(),
    };
    Some(Access::Require { all, any })
}

fn conditions(field: &str, raw: &RawRequirement, problems: &mut Problems) -> Vec<Condition> {
    let mut out = Vec::new();
    let mut names = |key: &str, list: &Option<Vec<String>>, scope: bool| {
        let list = list.as_ref()?;
        if list.is_empty() {
            problems.add(format!("{field}.{key}"), "must not be empty");
        }
        let checked = list
            .iter()
            .enumerate()
            .map(|(k, name)| {
                let bare = if scope { bare_scope(name) } else { name.trim() };
                let ok = if scope {
                    is_scope_token(bare)
                } else {
                    is_name(bare)
                };
                if !ok {
                    problems.add(
                        format!("{field}.{key}[{k}]"),
                        format!("{name:?} is not a valid name (printable, no spaces or quotes)"),
                    );
                }
                bare.to_owned()
            })
            .collect::<Vec<_>>();
        Some(checked)
    };
    let scopes = names("scopes", &raw.scopes, true).map(Condition::Scopes);
    let scopes_any = names("scopes_any", &raw.scopes_any, true).map(Condition::ScopesAny);
    let roles = names("roles", &raw.roles, false).map(Condition::Roles);
    let roles_any = names("roles_any", &raw.roles_any, false).map(Condition::RolesAny);
    let tenants = names("tenants", &raw.tenants, false)
        .map(|t| Condition::Tenants(t.iter().map(|t| t.to_ascii_lowercase()).collect()));
    let clients = names("clients", &raw.clients, false).map(Condition::Clients);
    let users = names("users", &raw.users, false).map(Condition::Users);
    out.extend(
        [
            scopes, scopes_any, roles, roles_any, tenants, clients, users,
        ]
        .into_iter()
        .flatten(),
    );
    if let Some(kind) = &raw.token {
        match kind.as_str() {
            "any" => out.push(Condition::Token(TokenKind::Any)),
            "delegated" => out.push(Condition::Token(TokenKind::Delegated)),
            "app" => out.push(Condition::Token(TokenKind::App)),
            other => problems.add(
                format!("{field}.token"),
                format!("{other:?} is not one of any, delegated, app"),
            ),
        }
    }
    for (k, claim) in raw.claims.iter().flatten().enumerate() {
        if let Some(condition) = claim_condition(&format!("{field}.claims[{k}]"), claim, problems) {
            out.push(condition);
        }
    }
    if out.is_empty() {
        problems.add(field.to_owned(), "needs at least one condition");
    }
    out
}

fn claim_condition(
    field: &str,
    raw: &RawClaimCondition,
    problems: &mut Problems,
) -> Option<Condition> {
    let Some(claim) = raw.claim.as_ref().filter(|c| !c.trim().is_empty()) else {
        problems.add(format!("{field}.claim"), "is required (the claim name)");
        return None;
    };
    let claim = claim.clone();
    if raw.ignore_case && raw.equals_param.is_none() {
        problems.add(
            format!("{field}.ignore_case"),
            "only applies to `equals_param`",
        );
    }
    match (&raw.equals, &raw.one_of, &raw.contains, &raw.equals_param) {
        (Some(value), None, None, None) => Some(Condition::ClaimEquals {
            claim,
            value: value.clone(),
        }),
        (None, Some(values), None, None) if !values.is_empty() => Some(Condition::ClaimOneOf {
            claim,
            values: values.clone(),
        }),
        (None, None, Some(value), None) => Some(Condition::ClaimContains {
            claim,
            value: value.clone(),
        }),
        // The segment is the template's, found once the route's path is known.
        (None, None, None, Some(param)) => Some(Condition::ClaimEqualsParam {
            claim,
            param: param
                .trim()
                .trim_start_matches('{')
                .trim_end_matches('}')
                .to_owned(),
            segment: usize::MAX,
            ignore_case: raw.ignore_case,
        }),
        _ => {
            problems.add(
                field,
                "needs exactly one of `equals`, `one_of` (non-empty), `contains` or \
                 `equals_param`",
            );
            None
        }
    }
}

/// Points each `equals_param` condition of `access` at its parameter's segment of the
/// route's template, or reports a parameter the template does not have.
pub(super) fn bind_params(
    field: &str,
    path: Option<&PathMatch>,
    access: &mut Access,
    problems: &mut Problems,
) {
    let Access::Require { all, any } = access else {
        return;
    };
    let pattern = match path {
        Some(PathMatch::Template { pattern, .. }) => Some(pattern.as_str()),
        _ => None,
    };
    for condition in all.iter_mut().chain(any.iter_mut().flatten()) {
        let Condition::ClaimEqualsParam { param, segment, .. } = condition else {
            continue;
        };
        let wanted = format!("{{{param}}}");
        match pattern.and_then(|p| p.split('/').skip(1).position(|part| part == wanted)) {
            Some(at) => *segment = at,
            None => problems.add(
                format!("{field}.require"),
                format!(
                    "`equals_param: {param}`: the route's path must be a template with a \
                     `{wanted}` segment"
                ),
            ),
        }
    }
}

/// `api://<client-id>/Orders.Read` (as app registrations show a scope) -> `Orders.Read`,
/// the form tokens carry. A bare name is returned as it is.
pub(super) fn bare_scope(name: &str) -> &str {
    let name = name.trim();
    if name.contains("://") {
        name.rsplit('/').next().unwrap_or(name)
    } else {
        name
    }
}

/// RFC 6750 §3 `scope-token`: it is quoted into `WWW-Authenticate`, so no `"` or backslash.
fn is_scope_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
}

fn is_name(name: &str) -> bool {
    !name.is_empty() && !name.chars().any(|c| c.is_whitespace() || c.is_control())
}
