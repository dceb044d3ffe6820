//! A bounded cache of verified tokens, so that a token seen again costs a hash and a map
//! lookup instead of a signature check. Entries are keyed by the whole token and found
//! only by an equal one: two tokens can never share an entry, which a digest key would
//! allow on a collision — a forgery — and which would cost a SHA-256 of every token on
//! every request (0.46 µs for an 820-byte token here, a third of a cached Check). The
//! map's hash only picks the bucket, so it reads just the token's last bytes — its
//! signature, unpredictable to all but the issuer — and length, under SipHash with a
//! per-process random key: only verified tokens are ever inserted, so no one else can
//! choose keys that crowd a bucket. Entries never outlive the token's `exp` (plus the
//! issuer's leeway), and an entry is ignored as soon as the key that verified it is no
//! longer in its issuer's current key set.
//!
//! Bounded without scans: two generations of `DashMap`. Inserts go to the current one;
//! when it holds half the capacity it becomes the previous one and the old previous is
//! dropped whole. A hit in the previous generation is promoted. Memory therefore stays
//! at most `capacity` entries, and a flood of distinct tokens costs O(1) per insert.

use std::{
    hash::{BuildHasher, DefaultHasher, Hasher, RandomState},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use arc_swap::ArcSwap;
use dashmap::DashMap;

use super::{VerifiedClaims, jwks::JwksCache, keyset::VerifyingKey};

/// The key that verified a cached token, to notice when it leaves the key set.
#[derive(Clone)]
pub struct KeyBinding {
    pub jwks: Arc<JwksCache>,
    pub key: Arc<VerifyingKey>,
}

#[derive(Clone)]
struct Entry {
    claims: Arc<VerifiedClaims>,
    /// Unix seconds after which the entry is dead: `exp` + leeway.
    expires_at: u64,
    key: Option<KeyBinding>,
}

impl Entry {
    fn still_valid(&self, now: u64) -> bool {
        now < self.expires_at
            && self.key.as_ref().is_none_or(|binding| {
                binding
                    .jwks
                    .usable()
                    .is_some_and(|snapshot| snapshot.keys.holds(&binding.key))
            })
    }
}

/// Verified tokens and their entries, bucketed by [`TailHash`].
type Map = DashMap<Arc<str>, Entry, TailHash>;

struct Generations {
    current: Arc<Map>,
    previous: Arc<Map>,
}

/// How many trailing bytes of a token choose its bucket: a quarter of the shortest
/// signature in use (ES256, 86 characters) is still 192 random bits.
const HASHED_TAIL: usize = 32;

/// Hashes a token by its last [`HASHED_TAIL`] bytes and its length (see the module doc).
#[derive(Clone, Default)]
struct TailHash(RandomState);

impl BuildHasher for TailHash {
    type Hasher = TailHasher;

    fn build_hasher(&self) -> TailHasher {
        TailHasher(self.0.build_hasher())
    }
}

struct TailHasher(DefaultHasher);

impl Hasher for TailHasher {
    fn write(&mut self, bytes: &[u8]) {
        let tail = bytes
            .get(bytes.len().saturating_sub(HASHED_TAIL)..)
            .unwrap_or(bytes);
        self.0.write(tail);
        self.0.write_usize(bytes.len());
    }

    fn finish(&self) -> u64 {
        self.0.finish()
    }
}

/// The cache; `capacity` 0 disables it.
pub struct TokenCache {
    generations: ArcSwap<Generations>,
    half: usize,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl TokenCache {
    pub fn new(capacity: usize) -> TokenCache {
        TokenCache {
            generations: ArcSwap::from_pointee(Generations {
                current: Arc::new(Map::default()),
                previous: Arc::new(Map::default()),
            }),
            half: capacity / 2,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    pub fn enabled(&self) -> bool {
        self.half > 0
    }

    /// Claims of `token`, verified earlier and still valid now.
    pub fn get(&self, token: &str, now: u64) -> Option<Arc<VerifiedClaims>> {
        let generations = self.generations.load();
        let found = match generations.current.get(token) {
            Some(entry) => Some(entry.clone()),
            None => {
                let promoted = generations
                    .previous
                    .get(token)
                    .map(|e| (e.key().clone(), e.value().clone()));
                promoted.map(|(key, entry)| {
                    generations.current.insert(key, entry.clone());
                    entry
                })
            }
        };
        match found.filter(|entry| entry.still_valid(now)) {
            Some(entry) => {
                self.hits.fetch_add(1, Ordering::Relaxed);
                Some(entry.claims)
            }
            None => {
                self.misses.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }

    /// Remembers the verified `claims` of `token` until `expires_at` (unix seconds).
    pub fn insert(
        &self,
        token: &str,
        claims: Arc<VerifiedClaims>,
        expires_at: u64,
        binding: Option<KeyBinding>,
    ) {
        if !self.enabled() {
            return;
        }
        let generations = self.generations.load();
        if generations.current.len() >= self.half {
            let rotated = Arc::new(Generations {
                current: Arc::new(Map::default()),
                previous: generations.current.clone(),
            });
            // Lost races just mean another thread rotated first.
            let _ = self.generations.compare_and_swap(&*generations, rotated);
        }
        self.generations.load().current.insert(
            Arc::from(token),
            Entry {
                claims,
                expires_at,
                key: binding,
            },
        );
    }

    /// Entries held now (both generations).
    pub fn len(&self) -> usize {
        let generations = self.generations.load();
        generations.current.len() + generations.previous.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// (hits, misses) since start.
    pub fn stats(&self) -> (u64, u64) {
        (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims() -> Arc<VerifiedClaims> {
        let serde_json::Value::Object(map) = json!({"scp": "A"}) else {
            unreachable!("an object")
        };
        Arc::new(VerifiedClaims::new("i".into(), map).unwrap())
    }

    #[test]
    fn entries_expire_with_the_token() {
        let cache = TokenCache::new(100);
        cache.insert("a.b.c", claims(), 1000, None);
        assert!(cache.get("a.b.c", 999).is_some());
        assert!(cache.get("a.b.c", 1000).is_none());
        assert!(cache.get("a.b.d", 0).is_none());
        assert!(cache.get("a.b.c ", 0).is_none(), "only the very same token");
        assert_eq!(cache.stats(), (1, 3));
    }

    #[test]
    fn size_stays_bounded_under_a_flood_of_distinct_tokens() {
        let cache = TokenCache::new(100);
        for i in 0..10_000 {
            cache.insert(&format!("token-{i}"), claims(), u64::MAX, None);
            assert!(cache.len() <= 100, "{} entries", cache.len());
        }
        // The most recent tokens are still there, the oldest are gone.
        assert!(cache.get("token-9999", 0).is_some());
        assert!(cache.get("token-0", 0).is_none());
    }

    #[test]
    fn tokens_sharing_their_last_bytes_are_still_told_apart() {
        let cache = TokenCache::new(100);
        let tail = "s".repeat(HASHED_TAIL);
        cache.insert(&format!("a.b.{tail}"), claims(), u64::MAX, None);
        assert!(cache.get(&format!("a.b.{tail}"), 0).is_some());
        assert!(cache.get(&format!("x.y.{tail}"), 0).is_none());
        assert!(cache.get(&format!("a.c.{tail}"), 0).is_none());
    }

    #[test]
    fn a_disabled_cache_remembers_nothing() {
        let cache = TokenCache::new(0);
        cache.insert("a.b.c", claims(), u64::MAX, None);
        assert!(cache.get("a.b.c", 0).is_none());
        assert!(cache.is_empty());
    }
}
