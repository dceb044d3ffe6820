//! Every problem with the *shape* of a configuration file at once: when the file does not
//! deserialize as a whole, it is read as plain YAML and each section, issuer and route is
//! deserialized on its own, so that each mistake is reported with its field path
//! (`routes[2].path: expected a mapping …`) instead of only the first one serde meets.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::{
    FieldProblem,
    raw::{
        OneOrMany, RawDpop, RawIssuer, RawJwks, RawLimits, RawMetrics, RawRoute, RawScope,
        RawServer,
    },
};

/// The top-level fields of a configuration file.
const FIELDS: &[&str] = &[
    "server",
    "jwks",
    "issuers",
    "routes",
    "identity_headers",
    "payload_header",
    "strip_authorization",
    "metadata_claims",
    "dynamic_metadata",
    "limits",
    "dpop",
    "upstream",
    "request_body",
    "policy_dir",
    "metrics",
];

/// Each shape problem of `document` (YAML already parsed), with its field path.
pub(super) fn problems(document: &Value) -> Vec<FieldProblem> {
    let mut problems = Vec::new();
    let Some(top) = document.as_object() else {
        problems.push(problem(
            "",
            "the file must be a mapping of sections (issuers, routes, …)",
        ));
        return problems;
    };
    for (key, value) in top {
        match key.as_str() {
            "server" => check::<RawServer>(key, value, &mut problems),
            "jwks" => check::<RawJwks>(key, value, &mut problems),
            "limits" => check::<RawLimits>(key, value, &mut problems),
            "dpop" => check::<RawDpop>(key, value, &mut problems),
            "metrics" => check::<RawMetrics>(key, value, &mut problems),
            "dynamic_metadata" => check::<Vec<String>>(key, value, &mut problems),
            "upstream" => check::<OneOrMany>(key, value, &mut problems),
            "issuers" => each::<RawIssuer>(key, value, &mut problems),
            "routes" => each::<RawRoute>(key, value, &mut problems),
            "identity_headers" => check::<BTreeMap<String, String>>(key, value, &mut problems),
            "payload_header" | "request_body" | "policy_dir" => {
                check::<String>(key, value, &mut problems)
            }
            "strip_authorization" | "metadata_claims" => check::<bool>(key, value, &mut problems),
            other => problems.push(problem(
                other,
                format!("unknown field, expected one of {}", FIELDS.join(", ")),
            )),
        }
    }
    problems
}

/// The top-level fields of a policy file (a policy directory's).
const POLICY_FILE_FIELDS: &[&str] = &["scope", "audiences", "issuers", "upstream", "routes"];

/// Each shape problem of a policy file's `document`, with its field path.
pub(super) fn policy_file_problems(document: &Value) -> Vec<FieldProblem> {
    let mut problems = Vec::new();
    let Some(top) = document.as_object() else {
        problems.push(problem("", "a policy file is a mapping: scope, routes, …"));
        return problems;
    };
    for (key, value) in top {
        match key.as_str() {
            "scope" => check::<RawScope>(key, value, &mut problems),
            "audiences" => check::<Vec<String>>(key, value, &mut problems),
            "upstream" => check::<OneOrMany>(key, value, &mut problems),
            "issuers" => each::<RawIssuer>(key, value, &mut problems),
            "routes" => each::<RawRoute>(key, value, &mut problems),
            other => problems.push(problem(
                other,
                format!(
                    "unknown field, expected one of {}",
                    POLICY_FILE_FIELDS.join(", ")
                ),
            )),
        }
    }
    problems
}

/// `document` with what `problems` found broken taken out, so that the rest can be
/// validated in the same pass: a broken issuer or route is replaced by a placeholder that
/// validates (keeping the others' indices, hence their field paths and lines), any other
/// broken section is removed. Also the broken places, whose validation problems are not
/// the user's ([`under`]).
pub(super) fn salvaged(document: &Value, problems: &[FieldProblem]) -> (Value, Vec<String>) {
    let mut salvaged = document.clone();
    // An unknown key is only dropped: the rest of its section is still checked.
    let mut broken: Vec<String> = Vec::new();
    for problem in problems
        .iter()
        .filter(|p| p.message.starts_with("unknown field"))
    {
        if let Some((parent, key)) = problem.field.rsplit_once('.')
            && let Some(Value::Object(map)) = pointer(&mut salvaged, parent)
        {
            map.remove(key);
            broken.push(problem.field.clone());
        }
    }
    let remaining = match salvaged.as_object().map(|top| top.contains_key("scope")) {
        Some(true) => policy_file_problems(&salvaged),
        _ => self::problems(&salvaged),
    };
    for problem in &remaining {
        let place = problem
            .field
            .split('.')
            .next()
            .unwrap_or_default()
            .to_owned();
        if broken.contains(&place) {
            continue;
        }
        let item = place
            .strip_suffix(']')
            .and_then(|p| p.split_once('['))
            .and_then(|(list, i)| Some((list.to_owned(), i.parse::<usize>().ok()?)));
        match item {
            Some((list, i)) if list == "routes" || list == "issuers" => {
                if let Some(slot) = salvaged.get_mut(&list).and_then(|l| l.get_mut(i)) {
                    *slot = placeholder(&list, i);
                }
            }
            _ => {
                if let Some(top) = salvaged.as_object_mut() {
                    top.remove(&place);
                }
            }
        }
        broken.push(place);
    }
    (salvaged, broken)
}

/// The value at a field path (`server.connections`, `routes[2].require`).
fn pointer<'a>(document: &'a mut Value, field: &str) -> Option<&'a mut Value> {
    let mut at = document;
    for part in field.split('.') {
        let (key, indices) = part
            .split_once('[')
            .map_or((part, ""), |(k, rest)| (k, rest));
        if !key.is_empty() {
            at = at.get_mut(key)?;
        }
        for index in indices.split('[').filter(|i| !i.is_empty()) {
            at = at.get_mut(index.trim_end_matches(']').parse::<usize>().ok()?)?;
        }
    }
    Some(at)
}

/// An issuer or route that validates and can collide with nothing.
fn placeholder(list: &str, i: usize) -> Value {
    if list == "routes" {
        json!({ "name": format!("portcullis-placeholder-{i}"), "path": { "exact": format!("/.portcullis-placeholder/{i}") }, "anonymous": true })
    } else {
        let host = format!("https://placeholder-{i}.invalid");
        json!({ "issuer": format!("{host}/"), "jwks_uri": format!("{host}/jwks"), "audiences": ["placeholder"] })
    }
}

/// Whether `field` is in (or is) one of the `broken` places.
pub(super) fn under(field: &str, broken: &[String]) -> bool {
    broken.iter().any(|place| {
        field
            .strip_prefix(place.as_str())
            .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
    })
}

/// A list whose elements are checked one by one.
fn each<T: DeserializeOwned>(field: &str, value: &Value, problems: &mut Vec<FieldProblem>) {
    match value.as_array() {
        Some(items) => {
            for (i, item) in items.iter().enumerate() {
                check::<T>(&format!("{field}[{i}]"), item, problems);
            }
        }
        None => problems.push(problem(field, "expected a list")),
    }
}

fn check<T: DeserializeOwned>(field: &str, value: &Value, problems: &mut Vec<FieldProblem>) {
    if let Err(error) = serde_path_to_error::deserialize::<_, T>(value) {
        let path = error.path().to_string();
        let at = match path.as_str() {
            "." | "" => field.to_owned(),
            inner if inner.starts_with('[') => format!("{field}{inner}"),
            inner => format!("{field}.{inner}"),
        };
        problems.push(problem(&at, plain(&error.into_inner().to_string())));
    }
}

fn problem(field: &str, message: impl Into<String>) -> FieldProblem {
    FieldProblem {
        field: field.to_owned(),
        message: message.into(),
        at: None,
        route: None,
    }
}

/// serde's wording, said for the person editing the file.
fn plain(message: &str) -> String {
    message
        .replace(
            "expected struct RawPath",
            "expected a mapping: { exact: /x }, { prefix: /x } or { template: /x/{id} }",
        )
        .replace(
            "expected struct RawRequirement",
            "expected a mapping of conditions (scopes, roles, token, …)",
        )
        .replace(
            "expected struct RawClaimCondition",
            "expected { claim: c, equals | one_of | contains: … }",
        )
        .replace(
            "expected struct RawEntra",
            "expected { tenant: …, client_id: … }",
        )
        .replace(
            "expected struct RawTls",
            "expected { cert_file: …, key_file: … }",
        )
        .replace(
            "expected struct RawConnections",
            "expected a mapping of connection settings",
        )
        .replace("expected struct Raw", "expected a mapping of ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(yaml: &str) -> Vec<String> {
        let document: Value = serde_saphyr::from_str(yaml).unwrap();
        problems(&document)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn every_shape_problem_is_listed_with_its_field_path() {
        let all = listed(
            "server: { grpc_listen: \":9001\", bogus: 1 }\nissuers:\n  - issuer: i\n    audience: a\n  - issuer: j\n    audiences: x\nroutes:\n  - name: a\n    path: /api/b\n  - name: b\n    path: { exact: /x }\n    require: [token]\nextra: 1\n",
        );
        for expected in [
            "server.bogus: unknown field `bogus`",
            "issuers[0].audience: unknown field `audience`",
            "issuers[1].audiences: invalid type: string \"x\", expected a sequence",
            "routes[0].path: invalid type: string \"/api/b\", expected a mapping: { exact: /x }",
            "routes[1].require",
            "extra: unknown field",
        ] {
            assert!(
                all.iter().any(|p| p.starts_with(expected)),
                "{expected:?} missing in {all:#?}"
            );
        }
    }
}
