//! The route index: which routes could match a path, found by walking its leading
//! segments, so a Check costs the same against ten routes or ten thousand, and the
//! load-time shadow check compares a route only with the earlier routes that could
//! cover it.
//!
//! Every route is filed under the literal segments its path pattern starts with (all of
//! an exact path's, all of a prefix's, a template's up to its first `{name}`, `*` or
//! `**`). A route can only match a path whose first segments are those, so the routes
//! filed along the path's walk from the root are a superset of the routes that match it:
//! the policy still tests each candidate in file order, and first match keeps its meaning
//! exactly. A route that covers another (`shadow`) is filed along the other's walk too. Routes filed at the root (`prefix: /`, a template starting with
//! `{tenant}`) are candidates for every path.

use std::collections::HashMap;

use smallvec::SmallVec;

use super::PathMatch;
use crate::path::PathSegment;

/// A segment trie of route positions (indices into the policy's routes, ascending).
#[derive(Debug, Clone, Default)]
pub struct RouteIndex {
    routes: Vec<usize>,
    /// Hashed with `foldhash` rather than SipHash: a request's segments are only looked
    /// up here, never inserted (the trie is built from the configuration), so no client
    /// can crowd a bucket, and every Check hashes a few segments.
    children: HashMap<Box<str>, RouteIndex, foldhash::fast::RandomState>,
}

impl RouteIndex {
    /// Files the route at `position` (added in ascending order) under its pattern's
    /// leading literal segments.
    pub fn insert(&mut self, position: usize, pattern: &PathMatch) {
        let mut node = self;
        for segment in literal_segments(pattern) {
            node = node.children.entry(segment.into()).or_default();
        }
        node.routes.push(position);
    }

    /// The positions of every route that could match `path`, ascending.
    pub fn candidates(&self, path: &str) -> SmallVec<[usize; 8]> {
        self.walk(path.split('/').skip(1))
    }

    /// The positions of every route filed along `segments` from the root, ascending.
    fn walk<'s>(&self, segments: impl Iterator<Item = &'s str>) -> SmallVec<[usize; 8]> {
        let mut found: SmallVec<[usize; 8]> = SmallVec::new();
        let mut node = self;
        found.extend_from_slice(&node.routes);
        let mut multiple = false;
        for segment in segments {
            let Some(child) = node.children.get(segment) else {
                break;
            };
            node = child;
            multiple |= !node.routes.is_empty() && !found.is_empty();
            found.extend_from_slice(&node.routes);
        }
        if multiple {
            found.sort_unstable();
        }
        found
    }

    /// The positions of the routes filed along `pattern`'s own literal segments: every
    /// route that could cover it.
    pub fn covering_candidates(&self, pattern: &PathMatch) -> SmallVec<[usize; 8]> {
        self.walk(literal_segments(pattern).into_iter())
    }
}

/// The literal segments every path a pattern matches starts with.
fn literal_segments(pattern: &PathMatch) -> Vec<&str> {
    match pattern {
        PathMatch::Exact(exact) => exact.split('/').skip(1).collect(),
        // Segment-aware: `/api/orders` and `/api/orders/` both need `api`, `orders`.
        PathMatch::Prefix(prefix) => {
            let mut segments: Vec<&str> = prefix.split('/').skip(1).collect();
            if segments.last() == Some(&"") {
                segments.pop();
            }
            segments
        }
        PathMatch::Template { segments, .. } => segments
            .iter()
            .map_while(|s| match s {
                PathSegment::Literal(literal) => Some(literal.as_str()),
                PathSegment::One | PathSegment::Rest => None,
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(patterns: &[PathMatch]) -> RouteIndex {
        let mut index = RouteIndex::default();
        for (position, pattern) in patterns.iter().enumerate() {
            index.insert(position, pattern);
        }
        index
    }

    #[test]
    fn candidates_are_the_routes_along_the_path_in_file_order() {
        let index = index(&[
            PathMatch::Prefix("/api/orders".into()),
            PathMatch::Exact("/healthz".into()),
            PathMatch::Prefix("/".into()),
            PathMatch::Prefix("/api/".into()),
            PathMatch::Exact("/api/orders/7".into()),
        ]);
        assert_eq!(index.candidates("/api/orders/7").as_slice(), &[0, 2, 3, 4]);
        assert_eq!(index.candidates("/api/orders").as_slice(), &[0, 2, 3]);
        assert_eq!(index.candidates("/api/ordersX").as_slice(), &[2, 3]);
        assert_eq!(index.candidates("/healthz").as_slice(), &[1, 2]);
        assert_eq!(index.candidates("/other").as_slice(), &[2]);
    }
}
