//! Step 2 of a Check: the routes a request reaches under every reading an upstream may
//! give it (see the module doc of [`crate::policy`]). The frameworks whose readings apply
//! are those of the route the request reaches as Envoy routes it (canonical path, own
//! method and host): that route's `upstream`, or the configuration's.

use std::borrow::Cow;

use smallvec::{SmallVec, smallvec};

use super::Route;
use crate::{
    config::{Access, Config, HeaderMapping, RouteConfig, RouteIndex},
    deny::DenyReason,
    path::{PathTraits, Readings, fold, normalize_path, readings},
    upstream::{Frameworks, MethodOverride, Reading},
};

/// Methods an override whose value portcullis cannot see may name, besides those the
/// routes name: what Rack, Symfony and Spring accept.
const OVERRIDE_METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];
/// A method no route names: stands for every other method an override may name (it
/// reaches exactly the routes that name no methods).
const ANY_OTHER_METHOD: &str = "PORTCULLIS-ANY-OTHER-METHOD";

/// The compiled routes of one configuration.
#[derive(Debug, Clone)]
pub struct Policy {
    routes: Vec<Route>,
    /// The routes by their patterns' leading segments, and by the same folded.
    index: RouteIndex,
    folded_index: RouteIndex,
    /// Some route's path pattern has capitals: every path gets a case-folded reading.
    capitals: bool,
    /// The frameworks of a request that reaches no route.
    upstream: Frameworks,
    /// Every method an unseen override may turn a request into, as far as routes can tell.
    override_methods: Vec<String>,
}

/// The routes one request reaches.
#[derive(Debug)]
pub struct Reached<'p> {
    /// The route of the request as portcullis reads it (canonical path, own method).
    pub primary: Option<&'p Route>,
    /// Every distinct route some reading reaches, `primary` first.
    pub routes: SmallVec<[&'p Route; 4]>,
    /// Some reading reaches no route.
    pub unmatched: bool,
    /// For the routes whose conditions read path parameters: each path (as the upstream
    /// receives it, before any case folding) under which the request reaches the route.
    pub paths: SmallVec<[(u64, String); 1]>,
}

impl Reached<'_> {
    /// A request no route can take (no set governs it).
    pub fn nowhere() -> Self {
        Reached {
            primary: None,
            routes: SmallVec::new(),
            unmatched: true,
            paths: SmallVec::new(),
        }
    }

    /// The paths under which the request reaches `route` (empty for a route that binds
    /// no parameter).
    pub fn paths_of(&self, route: &Route) -> SmallVec<[&str; 2]> {
        paths_of(&self.paths, route)
    }
}

/// Of `paths` (a [`Reached::paths`]), those of `route`.
pub fn paths_of<'a>(paths: &'a [(u64, String)], route: &Route) -> SmallVec<[&'a str; 2]> {
    paths
        .iter()
        .filter(|(id, _)| *id == route.id)
        .map(|(_, path)| path.as_str())
        .collect()
}

/// A reading of the path: the path matched, whether it is case-folded, and the path as
/// the upstream receives it (the same, unless folded).
type PathReading<'a> = (&'a str, bool, &'a str);

/// What the policy needs to know of a request (see [`crate::extract::RequestView`]).
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    pub method: &'a str,
    /// Canonical host.
    pub host: &'a str,
    /// Path without query, as received.
    pub path: &'a str,
    /// Canonical hosts named by forwarding headers (`X-Forwarded-Host`, `Forwarded`…).
    pub forwarded_hosts: &'a [Cow<'a, str>],
    /// Paths named by rewrite headers (`X-Original-URL`…), without query.
    pub rewrites: &'a [&'a str],
    /// Methods the request asks an upstream to use instead of its own.
    pub overrides: &'a [MethodOverride<'a>],
}

impl Target<'_> {
    /// A plain request: no forwarding, rewrite or override headers.
    pub fn plain<'a>(method: &'a str, host: &'a str, path: &'a str) -> Target<'a> {
        Target {
            method,
            host,
            path,
            forwarded_hosts: &[],
            rewrites: &[],
            overrides: &[],
        }
    }
}

impl Policy {
    /// The compiled `routes` (of `config`'s main file, or of one of its policy files),
    /// served by `upstream` where a route names none.
    pub fn new(config: &Config, routes: &[RouteConfig], upstream: Frameworks) -> Policy {
        let global: std::sync::Arc<[HeaderMapping]> =
            std::sync::Arc::from(config.identity_headers.as_slice());
        let routes: Vec<Route> = routes
            .iter()
            .map(|r| Route::new(r, &global, upstream))
            .collect();
        let mut index = RouteIndex::default();
        let mut folded_index = RouteIndex::default();
        for (position, route) in routes.iter().enumerate() {
            index.insert(position, route.pattern(false));
            folded_index.insert(position, route.pattern(true));
        }
        let mut override_methods: Vec<String> =
            OVERRIDE_METHODS.iter().map(|m| (*m).to_owned()).collect();
        for method in routes.iter().filter_map(Route::methods).flatten() {
            if !override_methods.contains(method) {
                override_methods.push(method.clone());
            }
        }
        override_methods.push(ANY_OTHER_METHOD.to_owned());
        Policy {
            capitals: routes.iter().any(Route::has_capitals),
            routes,
            index,
            folded_index,
            upstream,
            override_methods,
        }
    }

    /// The compiled routes of `config`'s main file.
    pub fn of(config: &Config) -> Policy {
        Policy::new(config, &config.routes, config.upstream)
    }

    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// Every route `target` reaches under any reading an upstream may give it (see the
    /// module doc). `InvalidRequest` for a path or a rewrite that cannot be read, and for
    /// an escaped separator, a path parameter, a double escape or a method override whose
    /// readings disagree where some route reached does not accept it.
    pub fn resolve(&self, target: &Target<'_>) -> Result<Reached<'_>, DenyReason> {
        let invalid = |_| DenyReason::InvalidRequest;
        let canonical = normalize_path(target.path).map_err(invalid)?;
        let primary = self.first(target.method, target.host, &canonical, false);
        let frameworks = primary.map_or(self.upstream, |r| r.upstream);
        let mut read = readings(target.path, canonical, frameworks).map_err(invalid)?;
        if frameworks.read(Reading::RewriteHeaders) {
            for rewrite in target.rewrites {
                let rewritten = normalize_path(rewrite).map_err(invalid)?;
                let other = readings(rewrite, rewritten, frameworks).map_err(invalid)?;
                read.traits = read.traits.with(other.traits);
                for path in other.iter() {
                    read.add(path.to_owned()).map_err(invalid)?;
                }
            }
        }
        let mut hosts: SmallVec<[&str; 2]> = smallvec![target.host];
        if frameworks.read(Reading::ForwardedHost) {
            for host in target.forwarded_hosts {
                if !hosts.contains(&&**host) {
                    hosts.push(host);
                }
            }
        }
        let folded = self.folded(&read, frameworks);
        // Each reading, matched as it is or case-folded, with the path it folds.
        let paths: SmallVec<[PathReading<'_>; 4]> = read
            .iter()
            .map(|p| (p, false, p))
            .chain(
                folded
                    .iter()
                    .zip(read.iter())
                    .map(|(f, p)| (f.as_str(), true, p)),
            )
            .collect();
        let mut reached = Reached {
            primary,
            routes: SmallVec::new(),
            unmatched: false,
            paths: SmallVec::new(),
        };
        self.reach(&mut reached, target.method, &hosts, &paths);
        let (asked, unseen) = overrides(target.overrides, frameworks)?;
        let before = (reached.routes.len(), reached.unmatched);
        if let Some(method) = asked {
            self.reach(&mut reached, method, &hosts, &paths);
        }
        if unseen {
            for method in &self.override_methods {
                self.reach(&mut reached, method, &hosts, &paths);
            }
        }
        let overridden =
            asked.is_some() || (unseen && before != (reached.routes.len(), reached.unmatched));
        check_tolerance(&reached, read.traits, overridden)?;
        // Keep the request's own route first: it names the decision in logs.
        if let Some(primary) = reached.primary
            && let Some(at) = reached.routes.iter().position(|r| r.id == primary.id)
        {
            reached.routes[..=at].rotate_right(1);
        }
        Ok(reached)
    }

    /// The first route matching the canonical reading of the request (no other reading):
    /// for explanations and tests.
    pub fn route(&self, method: &str, host: &str, path: &str) -> Result<&Route, DenyReason> {
        let canonical = normalize_path(path).map_err(|_| DenyReason::InvalidRequest)?;
        self.first(method, host, &canonical, false)
            .ok_or(DenyReason::NoRoute)
    }

    /// The readings as a case-insensitive upstream of `frameworks` compares them, when
    /// that can reach other routes (some route or some reading has capitals).
    fn folded(&self, readings: &Readings<'_>, frameworks: Frameworks) -> SmallVec<[String; 2]> {
        let unicode = frameworks.read(Reading::UnicodeCase);
        let fold_case = unicode || frameworks.read(Reading::AsciiCase);
        let capitals = || {
            readings
                .iter()
                .any(|p| p.bytes().any(|b| b.is_ascii_uppercase()))
        };
        if fold_case && (self.capitals || capitals()) {
            readings.iter().map(|p| fold(p, unicode)).collect()
        } else {
            SmallVec::new()
        }
    }

    /// Adds the first route of each host and reading for `method`, and for `GET` when
    /// `method` is `HEAD`.
    fn reach<'p>(
        &'p self,
        reached: &mut Reached<'p>,
        method: &str,
        hosts: &[&str],
        paths: &[PathReading<'_>],
    ) {
        if method.eq_ignore_ascii_case("HEAD") {
            self.reach(reached, "GET", hosts, paths);
        }
        for host in hosts {
            for &(path, folded, original) in paths {
                let Some(route) = self.first(method, host, path, folded) else {
                    reached.unmatched = true;
                    continue;
                };
                if !reached.routes.iter().any(|r| r.id == route.id) {
                    reached.routes.push(route);
                }
                if route.binds_params
                    && !reached
                        .paths
                        .iter()
                        .any(|(id, p)| *id == route.id && p == original)
                {
                    reached.paths.push((route.id, original.to_owned()));
                }
            }
        }
    }

    /// The first route in file order that matches, among those the index files along
    /// `path` (a superset of the routes that match it).
    pub(super) fn first(
        &self,
        method: &str,
        host: &str,
        path: &str,
        folded: bool,
    ) -> Option<&Route> {
        let index = if folded {
            &self.folded_index
        } else {
            &self.index
        };
        index
            .candidates(path)
            .into_iter()
            .filter_map(|position| self.routes.get(position))
            .find(|route| route.matches(method, host, path, folded))
    }
}

/// The override method the frameworks read (they must agree), and whether one of them may
/// read a method portcullis cannot see.
fn overrides<'a>(
    overrides: &'a [MethodOverride<'a>],
    frameworks: Frameworks,
) -> Result<(Option<&'a str>, bool), DenyReason> {
    let mut asked: Option<&str> = None;
    let mut unseen = false;
    for o in overrides
        .iter()
        .filter(|o| !o.by.intersection(frameworks).is_empty())
    {
        match o.method.as_deref() {
            None => unseen = true,
            Some(method) => {
                let token = !method.is_empty() && method.bytes().all(|b| b.is_ascii_alphabetic());
                if !token || asked.is_some_and(|a| !a.eq_ignore_ascii_case(method)) {
                    return Err(DenyReason::InvalidRequest);
                }
                asked = Some(method);
            }
        }
    }
    Ok((asked, unseen))
}

/// Whether every reading reaches the same route, or only anonymous ones: then no shape of
/// the request can change its decision.
fn agree(reached: &Reached<'_>) -> bool {
    match (reached.routes.len(), reached.unmatched) {
        (0, _) | (1, false) => true,
        (_, false) => reached
            .routes
            .iter()
            .all(|r| matches!(r.access, Access::Anonymous)),
        (_, true) => false,
    }
}

/// Escaped separators, path parameters and method overrides pass when their readings
/// agree, or when every route the request reaches accepts them and it reaches no
/// unmatched reading; double escapes only when their readings agree.
fn check_tolerance(
    reached: &Reached<'_>,
    traits: PathTraits,
    method_override: bool,
) -> Result<(), DenyReason> {
    if agree(reached) {
        return Ok(());
    }
    let accepted = |wanted: bool, accepts: fn(&Route) -> bool| {
        !wanted || (!reached.unmatched && reached.routes.iter().all(|r| accepts(r)))
    };
    if !traits.double_escape
        && accepted(traits.escaped_separator, |r| r.tolerates.encoded_slashes)
        && accepted(traits.parameters, |r| r.tolerates.path_parameters)
        && accepted(method_override, |r| r.tolerates.method_override)
    {
        Ok(())
    } else {
        Err(DenyReason::InvalidRequest)
    }
}
