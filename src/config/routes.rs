//! Validation of one `routes[i]` entry: what it matches (methods, hosts, a normalised path
//! pattern) and what it requires (`anonymous`, or `require` and/or `require_any`).

use super::{
    Access, Condition, HostMatch, PathMatch, PathSegment, RouteConfig, TokenKind, Tolerance,
    headers::header_mappings,
    problems::Problems,
    raw::{OneOrMany, RawClaimCondition, RawPath, RawRequirement, RawRoute},
    words::KNOWN_METHODS,
};
use crate::{
    path::normalize_path,
    upstream::{Framework, Frameworks},
};

pub(super) fn validate_route(
    field: &str,
    raw: &RawRoute,
    problems: &mut Problems,
) -> Option<RouteConfig> {
    let name = match raw.name.as_deref().map(str::trim) {
        Some(n) if !n.is_empty() => n.to_owned(),
        _ => {
            problems.add(
                format!("{field}.name"),
                "is required (it names the route in logs and metrics)",
            );
            String::new()
        }
    };
    let methods = raw.methods.as_ref().map(|methods| {
        if methods.is_empty() {
            problems.add(
                format!("{field}.methods"),
                "must not be empty (omit it to match every method)",
            );
        }
        methods
            .iter()
            .enumerate()
            .map(|(j, m)| {
                let upper = m.trim().to_ascii_uppercase();
                if !KNOWN_METHODS.contains(&upper.as_str()) {
                    problems.add(
                        format!("{field}.methods[{j}]"),
                        format!(
                            "{m:?} is not an HTTP method this route could ever see (one of {})",
                            KNOWN_METHODS.join(", ")
                        ),
                    );
                }
                upper
            })
            .collect::<Vec<_>>()
    });
    let hosts = raw.hosts.as_ref().map(|hosts| {
        if hosts.is_empty() {
            problems.add(
                format!("{field}.hosts"),
                "must not be empty (omit it to match every host)",
            );
        }
        hosts
            .iter()
            .enumerate()
            .filter_map(|(j, h)| host_match(&format!("{field}.hosts[{j}]"), h, problems))
            .collect::<Vec<_>>()
    });
    let path = match &raw.path {
        None => {
            problems.add(
                format!("{field}.path"),
                "is required: { exact: /x }, { prefix: /x } or { template: /x/{id} }",
            );
            None
        }
        Some(p) => path_match(&format!("{field}.path"), p, problems),
    };
    let mut access = access(field, raw, problems);
    if let Some(access) = access.as_mut() {
        bind_params(field, path.as_ref(), access, problems);
    }
    if raw.forward_authorization && !raw.anonymous {
        problems.add(
            format!("{field}.forward_authorization"),
            "only applies to `anonymous: true` routes (protected routes forward the verified \
             token unless `strip_authorization` is set)",
        );
    }
    let sender_constraint =
        super::binding::sender_constraint(field, raw.sender_constraint.as_deref(), problems);
    if raw.anonymous && sender_constraint != super::SenderConstraint::Optional {
        problems.add(
            format!("{field}.sender_constraint"),
            "does not apply to `anonymous: true` routes (they verify no token)",
        );
    }
    let step_up = super::step_up::step_up(field, raw.step_up.as_ref(), raw.anonymous, problems);
    if raw.anonymous && raw.signed_identity == Some(true) {
        problems.add(
            format!("{field}.signed_identity"),
            "does not apply to `anonymous: true` routes (they verify no token)",
        );
    }
    let identity_headers = raw
        .identity_headers
        .as_ref()
        .map(|map| header_mappings(&format!("{field}.identity_headers"), map, problems));
    Some(RouteConfig {
        name,
        methods,
        hosts,
        path: path?,
        access: access?,
        audit: raw.audit,
        identity_headers,
        tolerates: Tolerance {
            encoded_slashes: raw.allow_encoded_slashes,
            path_parameters: raw.allow_path_parameters,
            method_override: raw.allow_method_override,
        },
        forward_authorization: raw.forward_authorization,
        sender_constraint,
        upstream: raw
            .upstream
            .as_ref()
            .map(|names| upstream(&format!("{field}.upstream"), names, problems)),
        step_up,
        signed_identity: raw.signed_identity,
    })
}

pub(super) fn host_match(field: &str, host: &str, problems: &mut Problems) -> Option<HostMatch> {
    let lower = host.trim().to_ascii_lowercase();
    let (wildcard, name) = match lower.strip_prefix("*.") {
        Some(rest) => (true, rest),
        None => (false, lower.as_str()),
    };
    let valid = !name.is_empty()
        && name.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    if !valid {
        problems.add(
            field,
            format!("{host:?} is not a host name or *.wildcard (no port)"),
        );
        return None;
    }
    Some(if wildcard {
        HostMatch::Suffix(format!(".{name}"))
    } else {
        HostMatch::Exact(name.to_owned())
    })
}

fn path_match(field: &str, raw: &RawPath, problems: &mut Problems) -> Option<PathMatch> {
    match (&raw.exact, &raw.prefix, &raw.template) {
        (Some(exact), None, None) => {
            normalised(&format!("{field}.exact"), exact, problems).map(PathMatch::Exact)
        }
        (None, Some(prefix), None) => {
            normalised(&format!("{field}.prefix"), prefix, problems).map(PathMatch::Prefix)
        }
        (None, None, Some(template)) => {
            path_template(&format!("{field}.template"), template, problems)
        }
        _ => {
            problems.add(
                field,
                "needs exactly one of `exact`, `prefix` or `template`",
            );
            None
        }
    }
}

fn normalised(field: &str, path: &str, problems: &mut Problems) -> Option<String> {
    match normalize_path(path) {
        Ok(normal) if normal == path && !path.contains('?') && !path.contains('#') => {
            Some(path.to_owned())
        }
        Ok(normal) => {
            problems.add(
                field,
                format!("{path:?} is not in normalised form; write {normal:?}"),
            );
            None
        }
        Err(_) => {
            problems.add(
                field,
                format!("{path:?} must start with / and be a valid path"),
            );
            None
        }
    }
}

fn path_template(field: &str, pattern: &str, problems: &mut Problems) -> Option<PathMatch> {
    let literal_form = pattern.replace(['{', '}', '*'], "x");
    normalised(field, &literal_form, problems)?;
    let parts: Vec<&str> = pattern.split('/').skip(1).collect();
    let mut segments = Vec::with_capacity(parts.len());
    for (k, part) in parts.iter().enumerate() {
        let segment = match *part {
            "**" if k + 1 == parts.len() => PathSegment::Rest,
            "**" => {
                problems.add(field, "`**` may only be the last segment");
                return None;
            }
            "*" => PathSegment::One,
            p if p.starts_with('{') && p.ends_with('}') && p.len() > 2 => PathSegment::One,
            p if p.contains(['{', '}', '*']) => {
                problems.add(
                    field,
                    format!("segment {p:?}: use a whole segment `{{name}}`, `*` or a final `**`"),
                );
                return None;
            }
            p => PathSegment::Literal(p.to_owned()),
        };
        segments.push(segment);
    }
    if segments
        .iter()
        .all(|s| matches!(s, PathSegment::Literal(_)))
    {
        problems.add(
            field,
            "has no `{name}`, `*` or `**`: use `exact` or `prefix`",
        );
        return None;
    }
    Some(PathMatch::Template {
        pattern: pattern.to_owned(),
        segments,
    })
}

fn access(field: &str, raw: &RawRoute, problems: &mut Problems) -> Option<Access> {
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
fn bind_params(
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

#[cfg(test)]
mod tests;

/// The frameworks a `upstream:` field names (one, or a list).
pub(super) fn upstream(field: &str, names: &OneOrMany, problems: &mut Problems) -> Frameworks {
    let listed = matches!(names, OneOrMany::Many(_));
    let names = names.to_vec();
    if names.is_empty() {
        problems.add(field, "must name at least one framework (or `all`)");
    }
    names.iter().enumerate().fold(
        Frameworks::of(&[]),
        |set, (i, name)| match Frameworks::named(name.trim()) {
            Some(named) => set.union(named),
            None => {
                problems.add(
                    if listed {
                        format!("{field}[{i}]")
                    } else {
                        field.to_owned()
                    },
                    format!(
                        "{name:?} is not one of {}, all",
                        Framework::EVERY.map(Framework::name).join(", ")
                    ),
                );
                set
            }
        },
    )
}
