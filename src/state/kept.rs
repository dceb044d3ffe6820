//! Deny answers encoded once and then sent as those bytes, like the allows remembered with
//! a cached token ([`crate::jwt::memo`]).
//!
//! A deny is a function of the [`Deny`] (reason, challenge parameters, scheme), the route
//! and the engine's realm and DPoP algorithms alone: nothing from the request or its token
//! is echoed. So every deny after the first of its kind costs a lookup, no building or
//! encoding. The one exception is the nonce challenge (`use_dpop_nonce`), which carries a
//! fresh nonce and is built every time. The kept answers live in the [`crate::state::Engine`]
//! they were built under, so a reloaded configuration starts afresh; they are bounded by
//! the configuration (reasons × routes × the challenges the routes configure), and in any
//! case by [`MAX_KEPT`].

use std::sync::atomic::{AtomicUsize, Ordering};

use dashmap::DashMap;
use prost::bytes::Bytes;

use crate::deny::{Deny, DenyReason};

/// How many encoded denies an engine keeps; beyond, denies are built each time.
pub const MAX_KEPT: usize = 4096;

/// Encoded deny answers by route id (`None`: no route), each with its [`Deny`].
#[derive(Default)]
pub struct KeptDenies {
    by_route: DashMap<Option<u64>, Vec<(Deny, Bytes)>>,
    kept: AtomicUsize,
}

impl KeptDenies {
    /// The encoded answer for `deny` on `route`, made by `encode` the first time.
    pub fn get_or_encode(
        &self,
        route: Option<u64>,
        deny: &Deny,
        encode: impl FnOnce() -> Bytes,
    ) -> Bytes {
        if deny.reason == DenyReason::DpopNonceRequired {
            return encode();
        }
        if let Some(kept) = self.by_route.get(&route)
            && let Some((_, bytes)) = kept.iter().find(|(d, _)| d == deny)
        {
            return bytes.clone();
        }
        let bytes = encode();
        if self.kept.load(Ordering::Relaxed) < MAX_KEPT {
            let mut kept = self.by_route.entry(route).or_default();
            if !kept.iter().any(|(d, _)| d == deny) {
                kept.push((deny.clone(), bytes.clone()));
                self.kept.fetch_add(1, Ordering::Relaxed);
            }
        }
        bytes
    }

    /// How many answers are kept.
    #[cfg(test)]
    pub fn count(&self) -> usize {
        self.kept.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    #[test]
    fn each_kind_is_encoded_once_and_nonce_challenges_every_time() {
        let kept = KeptDenies::default();
        let encoded = Cell::new(0);
        let encode = |text: &'static str| {
            encoded.set(encoded.get() + 1);
            Bytes::from_static(text.as_bytes())
        };
        let missing = Deny::from(DenyReason::MissingToken);
        let forbidden = Deny::from(DenyReason::InsufficientPermission);
        let asked = |dpop| missing.clone().with_dpop(dpop);
        assert_eq!(kept.get_or_encode(Some(1), &missing, || encode("a")), "a");
        assert_eq!(kept.get_or_encode(Some(1), &missing, || encode("x")), "a");
        assert_eq!(kept.get_or_encode(Some(2), &missing, || encode("b")), "b");
        assert_eq!(kept.get_or_encode(None, &missing, || encode("c")), "c");
        assert_eq!(kept.get_or_encode(Some(1), &forbidden, || encode("d")), "d");
        assert_eq!(
            kept.get_or_encode(Some(1), &asked(true), || encode("e")),
            "e"
        );
        assert_eq!(
            kept.get_or_encode(Some(1), &asked(false), || encode("x")),
            "a"
        );
        assert_eq!((encoded.get(), kept.count()), (5, 5));

        let nonce = Deny::from(DenyReason::DpopNonceRequired);
        assert_eq!(kept.get_or_encode(Some(1), &nonce, || encode("n1")), "n1");
        assert_eq!(kept.get_or_encode(Some(1), &nonce, || encode("n2")), "n2");
        assert_eq!((encoded.get(), kept.count()), (7, 5));
    }

    #[test]
    fn beyond_the_bound_denies_are_built_each_time() {
        let kept = KeptDenies::default();
        let deny = Deny::from(DenyReason::MissingToken);
        for route in 0..MAX_KEPT as u64 {
            kept.get_or_encode(Some(route), &deny, Bytes::new);
        }
        let once_more = || kept.get_or_encode(None, &deny, || Bytes::from_static(b"late"));
        assert_eq!(
            (once_more(), kept.count()),
            (Bytes::from_static(b"late"), MAX_KEPT)
        );
        assert_eq!(
            kept.get_or_encode(Some(7), &deny, || Bytes::from_static(b"x")),
            ""
        );
    }
}
