//! Whether an earlier route makes a later one unreachable: routes match first-wins, so a
//! later route whose every request an earlier route also matches can never apply, and is
//! almost always a mistake in rule order. The check is conservative: it answers `true`
//! only when it is certain.

use super::{HostMatch, PathMatch, RouteConfig};
use crate::path::{PathSegment, prefix_matches, template_base, template_matches};

/// True when every request `later` matches is matched by `earlier` first.
pub(super) fn covers(earlier: &RouteConfig, later: &RouteConfig) -> bool {
    methods_cover(earlier.methods.as_deref(), later.methods.as_deref())
        && hosts_cover(earlier.hosts.as_deref(), later.hosts.as_deref())
        && path_covers(&earlier.path, &later.path)
}

fn methods_cover(earlier: Option<&[String]>, later: Option<&[String]>) -> bool {
    match (earlier, later) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(e), Some(l)) => l.iter().all(|m| e.contains(m)),
    }
}

fn hosts_cover(earlier: Option<&[HostMatch]>, later: Option<&[HostMatch]>) -> bool {
    match (earlier, later) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(e), Some(l)) => l
            .iter()
            .all(|host| e.iter().any(|cover| host_covers(cover, host))),
    }
}

fn host_covers(cover: &HostMatch, host: &HostMatch) -> bool {
    match (cover, host) {
        (HostMatch::Exact(c), HostMatch::Exact(h)) => c == h,
        (HostMatch::Suffix(c), HostMatch::Exact(h)) => h.ends_with(c.as_str()),
        (HostMatch::Suffix(c), HostMatch::Suffix(h)) => h.ends_with(c.as_str()),
        (HostMatch::Exact(_), HostMatch::Suffix(_)) => false,
    }
}

/// A template that is literals followed by `**` matches exactly what a prefix does.
fn as_prefix(path: &PathMatch) -> Option<String> {
    match path {
        PathMatch::Prefix(p) => Some(p.clone()),
        PathMatch::Template { segments, .. }
            if matches!(segments.last(), Some(PathSegment::Rest))
                && segments[..segments.len() - 1]
                    .iter()
                    .all(|s| matches!(s, PathSegment::Literal(_))) =>
        {
            Some(template_base(segments))
        }
        _ => None,
    }
}

fn path_covers(earlier: &PathMatch, later: &PathMatch) -> bool {
    if let Some(prefix) = as_prefix(earlier) {
        return match later {
            PathMatch::Exact(path) | PathMatch::Prefix(path) => prefix_matches(&prefix, path),
            PathMatch::Template { segments, .. } => {
                let base = template_base(segments);
                prefix_matches(&prefix, &base)
            }
        };
    }
    match (earlier, later) {
        (PathMatch::Exact(e), PathMatch::Exact(l)) => e == l,
        (PathMatch::Template { segments, .. }, PathMatch::Exact(l)) => {
            template_matches(segments, l)
        }
        (PathMatch::Template { segments: e, .. }, PathMatch::Template { segments: l, .. }) => {
            e == l
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests;
