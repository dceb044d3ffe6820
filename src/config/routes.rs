//! Validation of one `routes[i]` entry: what it matches (methods, hosts, a normalised path
//! pattern) and what it requires (`anonymous`, or `require` and/or `require_any`).

use super::{
    HostMatch, PathMatch, PathSegment, RouteConfig, Tolerance,
    headers::header_mappings,
    problems::Problems,
    raw::{OneOrMany, RawPath, RawRoute},
    requirements,
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
    let mut access = requirements::access(field, raw, problems);
    if let Some(access) = access.as_mut() {
        requirements::bind_params(field, path.as_ref(), access, problems);
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

#[cfg(test)]
mod tests;
