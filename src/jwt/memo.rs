//! The encoded allow answers remembered with a verified token, per route: those costly to
//! write again ([`crate::respond`] decides which: a signed identity, the payload or the
//! claims forwarded, a list item left out with a warning). The default answer is written
//! afresh for each Check and never kept here, so a cached token holds no copy of it.
//!
//! Such an answer is a function of the token's claims, the route and the forwarding
//! settings alone, so for a token held in the verified-token cache it is built and encoded
//! once per route and then sent as it is. Routes are told apart by
//! [`crate::policy::Route::id`], unique for the life of the process, so a reloaded
//! configuration (new routes, new ids) never gets an answer built under the old one. A
//! memo lives and dies with its cache entry (`exp`, key rotation, eviction), and holds at
//! most [`MAX_ROUTES`] answers. An answer carrying a signed identity is fresh only until a
//! time its maker gives ([`crate::identity`]), after which it is built again and replaces
//! the old one.

use std::sync::Arc;

use arc_swap::ArcSwapOption;
use prost::bytes::Bytes;

/// How many routes' answers one token remembers; further routes are answered unmemoised.
pub const MAX_ROUTES: usize = 4;

/// One remembered answer: its route, its bytes, and until when (Unix seconds) it may be
/// sent; `u64::MAX` for as long as the token is cached.
type Remembered = (u64, Bytes, u64);

/// Encoded answers by route id. Reads take no lock; adding one copies the few entries.
#[derive(Default)]
pub struct AnswerMemo {
    answers: ArcSwapOption<Vec<Remembered>>,
}

impl AnswerMemo {
    /// The answer remembered for route `route_id` and until when it may be sent.
    pub fn get(&self, route_id: u64) -> Option<(Bytes, u64)> {
        let answers = self.answers.load();
        let answers = answers.as_ref()?;
        answers
            .iter()
            .find(|(id, _, _)| *id == route_id)
            .map(|(_, answer, fresh_until)| (answer.clone(), *fresh_until))
    }

    /// Remembers `answer` for route `route_id` until `fresh_until`, replacing the route's
    /// previous one, unless [`MAX_ROUTES`] other routes are remembered already.
    pub fn remember(&self, route_id: u64, answer: Bytes, fresh_until: u64) {
        // A full memo stays as it is, without copying it on every Check.
        if self
            .answers
            .load()
            .as_ref()
            .is_some_and(|a| a.len() >= MAX_ROUTES && !a.iter().any(|(id, _, _)| *id == route_id))
        {
            return;
        }
        self.answers.rcu(|current| {
            // Sized to what it holds: kept with every cached token.
            let current = current.as_deref().map_or(&[][..], Vec::as_slice);
            let mut answers = Vec::with_capacity(current.len() + 1);
            answers.extend(current.iter().filter(|(id, _, _)| *id != route_id).cloned());
            if answers.len() < MAX_ROUTES {
                answers.push((route_id, answer.clone(), fresh_until));
            }
            Some(Arc::new(answers))
        });
    }
}

/// A copy of the claims starts with no answers: they are a cache, not part of the value.
impl Clone for AnswerMemo {
    fn clone(&self) -> Self {
        AnswerMemo::default()
    }
}

/// Claims compare equal whatever answers they remember.
impl PartialEq for AnswerMemo {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl std::fmt::Debug for AnswerMemo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let routes = self.answers.load().as_ref().map_or(0, |a| a.len());
        f.debug_struct("AnswerMemo")
            .field("routes", &routes)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_per_route_up_to_the_limit_the_latest_of_each() {
        let memo = AnswerMemo::default();
        assert_eq!(memo.get(1), None);
        memo.remember(1, Bytes::from_static(b"one"), 10);
        assert_eq!(memo.get(1), Some((Bytes::from_static(b"one"), 10)));
        // A renewed answer (a fresh signed identity) replaces the stale one.
        memo.remember(1, Bytes::from_static(b"renewed"), 20);
        assert_eq!(memo.get(1), Some((Bytes::from_static(b"renewed"), 20)));
        for id in 2..10 {
            memo.remember(id, Bytes::from(format!("{id}")), u64::MAX);
        }
        assert_eq!(memo.get(4).map(|(a, _)| a), Some(Bytes::from_static(b"4")));
        assert_eq!(memo.get(5), None, "only {MAX_ROUTES} routes are remembered");
        memo.remember(1, Bytes::from_static(b"again"), 30);
        assert_eq!(
            memo.get(1).map(|(_, t)| t),
            Some(30),
            "a full memo still renews"
        );
    }
}
