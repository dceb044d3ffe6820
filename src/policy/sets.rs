//! The policy sets of one configuration: the main file's routes (the default, for requests
//! no team file governs), each team file's routes with its scope, and the baseline files
//! that judge every request too. Choosing the team set of a request is an index lookup —
//! by destination principal (exact, or each `/`-prefix of it), by each
//! `context_extensions` pair, by host (exact, or each label suffix) — so its cost does not
//! grow with the number of sets. Of the team sets whose scope a request falls in, the one
//! of the strongest kind governs (principal, then context, then host:
//! [`crate::config::sets::Strength`]); scopes of one kind never overlap (refused at
//! load), so that one is unique.

use std::{collections::HashMap, sync::Arc};

use super::Policy;
use crate::{
    config::{Config, HostMatch, PolicySetConfig, Scope, sets::Pattern},
    deny::{Deny, DenyReason},
    jwt::{Claim, VerifiedClaims},
};

/// One set: its routes, and which tokens it accepts.
#[derive(Debug)]
pub struct PolicySet {
    /// The file's name (`""` for the main file).
    pub name: Arc<str>,
    pub policy: Policy,
    scope: Scope,
    /// Issuers (configured names) whose tokens it accepts.
    issuers: Vec<Arc<str>>,
    /// Audiences a token must name one of; `None`: its issuer's check is enough.
    audiences: Option<Vec<String>>,
}

impl PolicySet {
    /// Whether this set takes the verified token: one of its issuers, one of its audiences.
    pub fn accepts(&self, claims: &VerifiedClaims) -> Result<(), Deny> {
        if !self.issuers.contains(&claims.issuer) {
            return Err(DenyReason::UnknownIssuer.into());
        }
        if let Some(audiences) = &self.audiences {
            let named = |aud: &str| audiences.iter().any(|a| a == aud);
            let ok = match claims.claims.get("aud") {
                Some(Claim::Text(aud)) => named(aud),
                Some(Claim::Json(serde_json::Value::Array(list))) => {
                    list.iter().filter_map(|a| a.as_str()).any(named)
                }
                _ => false,
            };
            if !ok {
                return Err(DenyReason::WrongAudience.into());
            }
        }
        Ok(())
    }
}

/// What the scope index knows of a request.
#[derive(Debug, Clone, Copy, Default)]
pub struct Scoped<'a> {
    /// The destination principal (`attributes.destination.principal`).
    pub principal: &'a str,
    pub context: Option<&'a HashMap<String, String>>,
    /// Canonical host.
    pub host: &'a str,
}

/// Every set of a configuration.
#[derive(Debug)]
pub struct Policies {
    default: Option<PolicySet>,
    teams: Vec<PolicySet>,
    baselines: Vec<PolicySet>,
    index: ScopeIndex,
}

/// The sets that judge one request.
pub struct Selected<'p> {
    /// The team set whose scope the request falls in, else the default; `None`: neither
    /// (a policy directory and no routes in the main file): denied `no_route`.
    pub governing: Option<&'p PolicySet>,
    pub baselines: &'p [PolicySet],
}

impl Policies {
    pub fn new(config: &Config) -> Policies {
        let main_issuers: Vec<Arc<str>> = config
            .issuers
            .iter()
            .map(|i| Arc::from(i.issuer.as_str()))
            .collect();
        let default = (!config.routes.is_empty()).then(|| PolicySet {
            name: Arc::from(""),
            policy: Policy::of(config),
            scope: Scope::default(),
            issuers: main_issuers.clone(),
            audiences: None,
        });
        let set = |file: &PolicySetConfig| PolicySet {
            name: Arc::from(file.name.as_str()),
            policy: Policy::new(
                config,
                &file.routes,
                file.upstream.unwrap_or(config.upstream),
            ),
            scope: file.scope.clone(),
            issuers: main_issuers
                .iter()
                .cloned()
                .chain(file.issuers.iter().map(|i| Arc::from(i.issuer.as_str())))
                .collect(),
            audiences: file.audiences.clone(),
        };
        let (baselines, teams): (Vec<&PolicySetConfig>, Vec<&PolicySetConfig>) =
            config.sets.iter().partition(|s| s.scope.baseline);
        let teams: Vec<PolicySet> = teams.into_iter().map(set).collect();
        Policies {
            index: ScopeIndex::new(&teams),
            default,
            teams,
            baselines: baselines.into_iter().map(set).collect(),
        }
    }

    /// The sets that judge a request scoped so.
    pub fn select(&self, scoped: &Scoped<'_>) -> Selected<'_> {
        let team = if self.teams.is_empty() {
            None
        } else {
            self.index
                .candidates(scoped)
                .into_iter()
                .filter_map(|i| self.teams.get(i))
                .filter(|set| in_scope(&set.scope, scoped))
                .min_by_key(|set| set.scope.strength())
        };
        Selected {
            governing: team.or(self.default.as_ref()),
            baselines: &self.baselines,
        }
    }

    /// Every set (default, teams, baselines).
    pub fn all(&self) -> impl Iterator<Item = &PolicySet> {
        self.default
            .iter()
            .chain(self.teams.iter())
            .chain(self.baselines.iter())
    }
}

/// Whether the request falls in `scope`.
fn in_scope(scope: &Scope, scoped: &Scoped<'_>) -> bool {
    (scope.principals.is_empty() || scope.principals.iter().any(|p| p.matches(scoped.principal)))
        && scope.context.iter().all(|(key, value)| {
            scoped
                .context
                .and_then(|c| c.get(key))
                .is_some_and(|v| v == value)
        })
        && (scope.hosts.is_empty()
            || scope.hosts.iter().any(|h| match h {
                HostMatch::Exact(exact) => scoped.host == exact,
                HostMatch::Suffix(suffix) => {
                    scoped.host.len() > suffix.len() && scoped.host.ends_with(suffix.as_str())
                }
            }))
}

/// The team sets by what their scopes name; a lookup gives a superset of the sets whose
/// scope a request falls in.
#[derive(Debug, Default)]
struct ScopeIndex {
    /// Exact principals, and principal prefixes.
    principals: HashMap<String, Vec<usize>>,
    prefixes: HashMap<String, Vec<usize>>,
    context: HashMap<String, HashMap<String, Vec<usize>>>,
    hosts: HashMap<String, Vec<usize>>,
    /// Host suffixes (`.example.com`).
    suffixes: HashMap<String, Vec<usize>>,
}

impl ScopeIndex {
    fn new(teams: &[PolicySet]) -> ScopeIndex {
        let mut index = ScopeIndex::default();
        for (i, set) in teams.iter().enumerate() {
            let scope = &set.scope;
            // One dimension is enough to find the set: principals first, then context,
            // then hosts (every team scope names at least one).
            if !scope.principals.is_empty() {
                for pattern in &scope.principals {
                    let (map, key) = match pattern {
                        Pattern::Exact(exact) => (&mut index.principals, exact),
                        Pattern::Prefix(prefix) => (&mut index.prefixes, prefix),
                    };
                    map.entry(key.clone()).or_default().push(i);
                }
            } else if let Some((key, value)) = scope.context.iter().next() {
                index
                    .context
                    .entry(key.clone())
                    .or_default()
                    .entry(value.clone())
                    .or_default()
                    .push(i);
            } else {
                for host in &scope.hosts {
                    let (map, key) = match host {
                        HostMatch::Exact(exact) => (&mut index.hosts, exact),
                        HostMatch::Suffix(suffix) => (&mut index.suffixes, suffix),
                    };
                    map.entry(key.clone()).or_default().push(i);
                }
            }
        }
        index
    }

    fn candidates(&self, scoped: &Scoped<'_>) -> Vec<usize> {
        let mut found = Vec::new();
        let mut add = |hits: Option<&Vec<usize>>| found.extend(hits.into_iter().flatten());
        if !scoped.principal.is_empty() {
            add(self.principals.get(scoped.principal));
            // A prefix pattern ends with `/`: try the principal up to each of its `/`s.
            if !self.prefixes.is_empty() {
                for (at, _) in scoped.principal.match_indices('/') {
                    add(self.prefixes.get(&scoped.principal[..=at]));
                }
            }
        }
        if let Some(context) = scoped.context
            && !self.context.is_empty()
        {
            for (key, value) in context {
                add(self.context.get(key).and_then(|values| values.get(value)));
            }
        }
        add(self.hosts.get(scoped.host));
        for (at, _) in scoped.host.match_indices('.') {
            add(self.suffixes.get(&scoped.host[at..]));
        }
        found
    }
}

#[cfg(test)]
mod tests;
