//! Policy sets: the files of a policy directory (`policy_dir`, `--policy-dir`), each owned
//! by a team and scoped to the requests it governs — destination principals (the
//! workload's SPIFFE ID, as Istio sends it), Envoy route `context_extensions`, hosts — and
//! baseline files that apply to every request. Each file is validated on its own, and a
//! broken one (invalid, or scoped so that it could govern a request another team's file
//! governs) keeps its last good version while the others load ([`load_dir`]).

use std::{
    collections::BTreeMap,
    fmt,
    path::{Path, PathBuf},
};

use super::{
    ConfigError, HostMatch, IssuerConfig, RouteConfig, locate,
    problems::Problems,
    raw::{RawPolicyFile, RawScope},
    routes::{host_match, upstream},
    shape,
    validate::{validate_issuers, validate_routes},
};
use crate::upstream::Frameworks;

/// One policy file, validated.
#[derive(Debug, Clone)]
pub struct PolicySetConfig {
    /// The file's name without its extension: names the set in logs, and prefixes its
    /// routes' names (`orders/read`).
    pub name: String,
    pub path: PathBuf,
    pub scope: Scope,
    /// Accepted `aud` values, beside the issuer's own check; `None`: the issuer's.
    pub audiences: Option<Vec<String>>,
    /// The set's own issuers (it also accepts the main file's).
    pub issuers: Vec<IssuerConfig>,
    pub upstream: Option<Frameworks>,
    pub routes: Vec<RouteConfig>,
}

/// The requests a set governs: every dimension it names must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    pub baseline: bool,
    pub principals: Vec<Pattern>,
    pub context: BTreeMap<String, String>,
    pub hosts: Vec<HostMatch>,
}

/// A principal: exact, or a prefix ending with `/` (written with a trailing `/*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pattern {
    Exact(String),
    Prefix(String),
}

impl Pattern {
    pub fn matches(&self, principal: &str) -> bool {
        match self {
            Pattern::Exact(exact) => principal == exact,
            Pattern::Prefix(prefix) => principal.starts_with(prefix.as_str()),
        }
    }

    /// Whether some principal matches both.
    fn meets(&self, other: &Pattern) -> bool {
        match (self, other) {
            (Pattern::Exact(a), b) | (b, Pattern::Exact(a)) => b.matches(a),
            (Pattern::Prefix(a), Pattern::Prefix(b)) => {
                a.starts_with(b.as_str()) || b.starts_with(a.as_str())
            }
        }
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pattern::Exact(exact) => f.write_str(exact),
            Pattern::Prefix(prefix) => write!(f, "{prefix}*"),
        }
    }
}

/// How firmly a scope names its requests, strongest first: the destination workload's
/// identity (the workload that serves the request), the Envoy route's
/// `context_extensions` (the proxy's configuration), the host (which the client writes).
/// A request in the scopes of several team files is governed by the one of the strongest
/// kind: a meshed client that sends `Host: shop.example.com` to the orders workload is
/// judged by the orders file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Strength {
    Principal,
    Context,
    Host,
}

impl Scope {
    /// The strongest kind of name this scope gives its requests.
    pub fn strength(&self) -> Strength {
        if !self.principals.is_empty() {
            Strength::Principal
        } else if !self.context.is_empty() {
            Strength::Context
        } else {
            Strength::Host
        }
    }

    /// Whether both scopes could govern one request: of the same strength, and some
    /// request could fall in both (conservatively: when in doubt, yes).
    pub fn conflicts_with(&self, other: &Scope) -> bool {
        !self.baseline
            && !other.baseline
            && self.strength() == other.strength()
            && self.overlaps(other)
    }

    /// Whether a request could fall in both scopes (conservatively: when in doubt, yes).
    pub fn overlaps(&self, other: &Scope) -> bool {
        let principals = self.principals.is_empty()
            || other.principals.is_empty()
            || self
                .principals
                .iter()
                .any(|a| other.principals.iter().any(|b| a.meets(b)));
        let context = self
            .context
            .iter()
            .all(|(key, value)| other.context.get(key).is_none_or(|v| v == value));
        let hosts = self.hosts.is_empty()
            || other.hosts.is_empty()
            || self
                .hosts
                .iter()
                .any(|a| other.hosts.iter().any(|b| hosts_meet(a, b)));
        principals && context && hosts
    }
}

/// Whether some host matches both patterns.
fn hosts_meet(a: &HostMatch, b: &HostMatch) -> bool {
    match (a, b) {
        (HostMatch::Exact(x), HostMatch::Exact(y)) => x == y,
        (HostMatch::Exact(host), HostMatch::Suffix(suffix))
        | (HostMatch::Suffix(suffix), HostMatch::Exact(host)) => {
            host.len() > suffix.len() && host.ends_with(suffix.as_str())
        }
        (HostMatch::Suffix(x), HostMatch::Suffix(y)) => {
            x.ends_with(y.as_str()) || y.ends_with(x.as_str())
        }
    }
}

/// Parses and validates one policy file's text; `origin` names it in problems.
pub fn parse_file(path: &Path, text: &str) -> Result<PolicySetConfig, ConfigError> {
    let origin = path.display().to_string();
    let mut problems = Problems::default();
    let raw: RawPolicyFile = match serde_saphyr::from_str(text) {
        Ok(raw) => raw,
        Err(error) => {
            let Ok(document) = serde_saphyr::from_str::<serde_json::Value>(text) else {
                return Err(super::errors::syntax(&error, &origin));
            };
            let shape = shape::policy_file_problems(&document);
            if shape.is_empty() {
                return Err(super::errors::syntax(&error, &origin));
            }
            // One pass: what did deserialize is validated too (below), and the problems
            // of the broken places are the shape's.
            let (salvaged, broken) = shape::salvaged(&document, &shape);
            problems.extend(shape);
            problems.skip_under(broken);
            serde_json::from_value(salvaged).unwrap_or_default()
        }
    };
    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let scope = scope(raw.scope.as_ref(), &mut problems);
    if raw.routes.is_empty() {
        problems.add("routes", "at least one route is required");
    }
    let mut routes = validate_routes("routes", &raw.routes, &mut problems);
    for route in &mut routes {
        route.name = format!("{name}/{}", route.name);
    }
    let audiences = raw.audiences.clone();
    if audiences.as_ref().is_some_and(Vec::is_empty) {
        problems.add(
            "audiences",
            "must not be empty (omit it to take the issuer's)",
        );
    }
    let set = PolicySetConfig {
        issuers: validate_issuers("issuers", &raw.issuers, &mut problems),
        upstream: raw
            .upstream
            .as_ref()
            .map(|names| upstream("upstream", names, &mut problems)),
        name,
        path: path.to_owned(),
        scope,
        audiences,
        routes,
    };
    problems
        .into_result()
        .map_err(|problems| ConfigError::Invalid {
            path: origin,
            problems: locate::located(problems, text),
        })?;
    Ok(set)
}

fn scope(raw: Option<&RawScope>, problems: &mut Problems) -> Scope {
    let Some(raw) = raw else {
        problems.add(
            "scope",
            "is required: principals, context_extensions and/or hosts, or `baseline: true`",
        );
        return Scope::default();
    };
    let principals: Vec<Pattern> = raw
        .principals
        .iter()
        .flatten()
        .enumerate()
        .filter_map(|(i, text)| {
            let text = text.trim();
            let pattern = match text.strip_suffix('*') {
                Some(prefix) if prefix.ends_with('/') && !prefix.contains('*') => {
                    Pattern::Prefix(prefix.to_owned())
                }
                None if !text.is_empty() && !text.contains('*') => Pattern::Exact(text.to_owned()),
                _ => {
                    problems.add(
                        format!("scope.principals[{i}]"),
                        format!(
                            "{text:?} is not a principal, or a prefix ending in `/*` \
                             (spiffe://cluster.local/ns/orders/*)"
                        ),
                    );
                    return None;
                }
            };
            Some(pattern)
        })
        .collect();
    let hosts: Vec<HostMatch> = raw
        .hosts
        .iter()
        .flatten()
        .enumerate()
        .filter_map(|(i, host)| host_match(&format!("scope.hosts[{i}]"), host, problems))
        .collect();
    let scope = Scope {
        baseline: raw.baseline,
        principals,
        context: raw.context_extensions.clone().unwrap_or_default(),
        hosts,
    };
    let names_something =
        !scope.principals.is_empty() || !scope.context.is_empty() || !scope.hosts.is_empty();
    match (scope.baseline, names_something) {
        (true, true) => problems.add(
            "scope",
            "a baseline applies to every request: it names no principals, context_extensions or hosts",
        ),
        (false, false) => problems.add(
            "scope",
            "must name principals, context_extensions and/or hosts (or say `baseline: true`); \
             the main file's routes judge what no file governs",
        ),
        _ => {}
    }
    scope
}

/// What loading a policy directory found, file by file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FileReport {
    pub path: PathBuf,
    /// `None`: loaded; else why this version was refused (the last good one, if any,
    /// keeps serving).
    pub problem: Option<String>,
}

/// Loads every `.yaml`/`.yml` file of `dir` (hidden files and Kubernetes' `..data`
/// directories skipped). A file that cannot be read, parsed or validated, whose issuers
/// another file (or the main one, `main_issuers`) also configures, or whose scope could
/// govern a request another team file's governs ([`Scope::conflicts_with`]), is reported and replaced by its version in `previous`
/// (the sets loaded last time), if any. Files load in name order; of two overlapping
/// files, the one that loaded before (or sorts first) keeps its place.
pub fn load_dir(
    dir: &Path,
    previous: &[PolicySetConfig],
    main_issuers: &[IssuerConfig],
) -> Result<(Vec<PolicySetConfig>, Vec<FileReport>), ConfigError> {
    let entries = std::fs::read_dir(dir).map_err(|source| ConfigError::Io {
        path: dir.display().to_string(),
        source,
    })?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            !name.starts_with('.')
                && matches!(
                    path.extension().and_then(|e| e.to_str()),
                    Some("yaml" | "yml")
                )
                && path.is_file()
        })
        .collect();
    paths.sort();
    let mut sets: Vec<PolicySetConfig> = Vec::new();
    let mut reports = Vec::new();
    // Files loaded last time keep their place first, so that a new file cannot push one
    // out by sorting before it.
    paths.sort_by_key(|path| !previous.iter().any(|p| &p.path == path));
    for path in paths {
        let fresh = std::fs::read_to_string(&path)
            .map_err(|error| error.to_string())
            .and_then(|text| parse_file(&path, &text).map_err(|error| error.to_string()))
            .and_then(|set| conflicts(&set, &sets, main_issuers).map_or(Ok(set), Err));
        match fresh {
            Ok(set) => {
                reports.push(FileReport {
                    path,
                    problem: None,
                });
                sets.push(set);
            }
            Err(problem) => {
                if let Some(last) = previous.iter().find(|p| p.path == path)
                    && conflicts(last, &sets, main_issuers).is_none()
                {
                    sets.push(last.clone());
                }
                reports.push(FileReport {
                    path,
                    problem: Some(problem),
                });
            }
        }
    }
    Ok((sets, reports))
}

/// Policy files, or directories of them, checked on their own (without the main file,
/// so issuers are not compared with its): each file's problems, and overlaps between
/// the files given together.
pub fn check_paths(paths: &[PathBuf]) -> Vec<FileReport> {
    let mut reports = Vec::new();
    let mut loaded: Vec<PolicySetConfig> = Vec::new();
    for path in paths {
        if path.is_dir() {
            match load_dir(path, &[], &[]) {
                Ok((sets, found)) => {
                    loaded.extend(sets);
                    reports.extend(found);
                }
                Err(error) => reports.push(FileReport {
                    path: path.clone(),
                    problem: Some(error.to_string()),
                }),
            }
            continue;
        }
        let checked = std::fs::read_to_string(path)
            .map_err(|error| format!("{}: {error}", path.display()))
            .and_then(|text| parse_file(path, &text).map_err(|error| error.to_string()))
            .and_then(|set| conflicts(&set, &loaded, &[]).map_or(Ok(set), Err));
        reports.push(FileReport {
            path: path.clone(),
            problem: checked.as_ref().err().cloned(),
        });
        loaded.extend(checked.ok());
    }
    reports
}

/// Why `set` cannot join `loaded`: a team scope that conflicts with another's, or an
/// issuer another file, or the main file, configures.
fn conflicts(
    set: &PolicySetConfig,
    loaded: &[PolicySetConfig],
    main_issuers: &[IssuerConfig],
) -> Option<String> {
    if let Some(issuer) = set
        .issuers
        .iter()
        .find(|i| main_issuers.iter().any(|m| m.issuer == i.issuer))
    {
        return Some(format!(
            "{}: issuer {:?} is configured by the main file already",
            set.path.display(),
            issuer.issuer.as_str()
        ));
    }
    for other in loaded {
        if set.scope.conflicts_with(&other.scope) {
            return Some(format!(
                "{}: its scope could govern requests {} governs: scopes of team files must not overlap",
                set.path.display(),
                other.path.display()
            ));
        }
        if let Some(issuer) = set
            .issuers
            .iter()
            .find(|i| other.issuers.iter().any(|o| o.issuer == i.issuer))
        {
            return Some(format!(
                "{}: issuer {:?} is also configured by {}",
                set.path.display(),
                issuer.issuer.as_str(),
                other.path.display()
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests;
