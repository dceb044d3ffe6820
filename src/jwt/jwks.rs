//! One issuer's signing keys, fetched from its JWKS URL and kept in memory.
//!
//! Readers take a snapshot of the current [`KeySet`] (`ArcSwap`, no lock) and verify with
//! it. A token whose `kid` is not in the snapshot triggers a refresh at once — single
//! flight (one fetch at a time; concurrent callers wait for it and then look again) and at
//! most one per `unknown_kid_cooldown`, so a flood of invented `kid`s costs the issuer at
//! most one fetch per cooldown (an unknown `kid` inside the cooldown is denied at once). A refresh that fails keeps the last good key set serving.
//! The periodic refresh is driven from outside (see `jwt::Verifier::spawn_refreshers`).

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use arc_swap::ArcSwapOption;
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{
    Algorithm, AlgorithmFamily, DecodingKey,
    jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, KeyOperations, PublicKeyUse},
};
use serde::Deserialize;

use crate::deny::DenyReason;

/// Largest JWKS document accepted; real ones are a few KiB.
pub const MAX_JWKS_BYTES: usize = 1024 * 1024;
/// RSA keys shorter than this are never used (NIST SP 800-131A).
pub const MIN_RSA_BITS: usize = 2048;

/// Why a JWKS fetch produced no usable key set.
#[derive(Debug, thiserror::Error)]
pub enum JwksError {
    #[error("request failed: {0}")]
    Http(#[from] reqwest::Error),
    #[error("HTTP status {0}")]
    Status(reqwest::StatusCode),
    #[error("document larger than {MAX_JWKS_BYTES} bytes")]
    TooLarge,
    #[error("not a JWKS document: {0}")]
    Json(#[from] serde_json::Error),
    #[error("no usable signing key among {0} entries")]
    NoUsableKey(usize),
}

/// A verification key with what it may be used for.
pub struct VerifyingKey {
    pub key: DecodingKey,
    family: AlgorithmFamily,
    /// The JWK's own `alg`, when it declares one.
    alg: Option<Algorithm>,
    curve: Option<EllipticCurve>,
}

impl VerifyingKey {
    /// Whether this key may verify a token signed with `alg`.
    pub fn fits(&self, alg: Algorithm) -> bool {
        alg.family() == self.family
            && self.alg.is_none_or(|own| own == alg)
            && match (alg, &self.curve) {
                (Algorithm::ES256, Some(c)) => *c == EllipticCurve::P256,
                (Algorithm::ES384, Some(c)) => *c == EllipticCurve::P384,
                (Algorithm::EdDSA, Some(c)) => *c == EllipticCurve::Ed25519,
                (_, None) => !matches!(self.family, AlgorithmFamily::Ec | AlgorithmFamily::Ed),
                _ => false,
            }
    }
}

/// The keys of one JWKS document.
#[derive(Default)]
pub struct KeySet {
    by_kid: HashMap<String, Arc<VerifyingKey>>,
    /// Keys without a `kid`, tried for tokens without one.
    anonymous: Vec<Arc<VerifyingKey>>,
}

impl KeySet {
    pub fn get(&self, kid: &str) -> Option<&Arc<VerifyingKey>> {
        self.by_kid.get(kid)
    }

    /// Every key that fits `alg`, for a token that names no `kid`.
    pub fn candidates(&self, alg: Algorithm) -> impl Iterator<Item = &Arc<VerifyingKey>> {
        self.by_kid
            .values()
            .chain(self.anonymous.iter())
            .filter(move |k| k.fits(alg))
    }

    pub fn len(&self) -> usize {
        self.by_kid.len() + self.anonymous.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Parses a JWKS document. Entries that are malformed, not for signatures, HMAC
    /// (`oct`: a shared secret never comes from a public URL) or RSA under 2048 bits are
    /// skipped, so one bad entry cannot make the others unusable.
    pub fn parse(document: &[u8]) -> Result<(KeySet, usize), JwksError> {
        #[derive(Deserialize)]
        struct Document {
            keys: Vec<serde_json::Value>,
        }
        let doc: Document = serde_json::from_slice(document)?;
        let total = doc.keys.len();
        let mut set = KeySet::default();
        for entry in doc.keys {
            let Ok(jwk) = serde_json::from_value::<Jwk>(entry) else {
                continue;
            };
            let Some(key) = usable_key(&jwk) else {
                continue;
            };
            match jwk.common.key_id {
                Some(kid) => {
                    set.by_kid.insert(kid, Arc::new(key));
                }
                None => set.anonymous.push(Arc::new(key)),
            }
        }
        if set.is_empty() {
            return Err(JwksError::NoUsableKey(total));
        }
        let skipped = total - set.len();
        Ok((set, skipped))
    }
}

fn usable_key(jwk: &Jwk) -> Option<VerifyingKey> {
    if matches!(&jwk.common.public_key_use, Some(u) if *u != PublicKeyUse::Signature) {
        return None;
    }
    if let Some(ops) = &jwk.common.key_operations
        && !ops.contains(&KeyOperations::Verify)
    {
        return None;
    }
    let (family, curve) = match &jwk.algorithm {
        AlgorithmParameters::RSA(rsa) => {
            let modulus = URL_SAFE_NO_PAD.decode(rsa.n.trim_end_matches('=')).ok()?;
            let significant = modulus.iter().skip_while(|b| **b == 0).count();
            if significant * 8 < MIN_RSA_BITS {
                return None;
            }
            (AlgorithmFamily::Rsa, None)
        }
        AlgorithmParameters::EllipticCurve(ec) => (AlgorithmFamily::Ec, Some(ec.curve.clone())),
        AlgorithmParameters::OctetKeyPair(okp) => (AlgorithmFamily::Ed, Some(okp.curve.clone())),
        // `oct` (shared secrets) never come from a JWKS; unknown key types are skipped.
        _ => return None,
    };
    let alg = match &jwk.common.key_algorithm {
        None => None,
        Some(declared) => Some(signature_algorithm(*declared)?),
    };
    let key = DecodingKey::from_jwk(jwk).ok()?;
    Some(VerifyingKey {
        key,
        family,
        alg,
        curve,
    })
}

/// A JWK `alg` as a JWS algorithm; `None` for encryption algorithms (never usable here).
fn signature_algorithm(declared: KeyAlgorithm) -> Option<Algorithm> {
    use std::str::FromStr;
    Algorithm::from_str(&format!("{declared:?}")).ok()
}

/// Outcome of looking a key up, after a refresh if one was allowed.
pub enum Lookup {
    Found(Arc<VerifyingKey>),
    Unknown,
    /// The issuer's keys have never been obtained.
    NoKeys,
}

/// The cached keys of one issuer and the rules for refreshing them.
pub struct JwksCache {
    issuer: Arc<str>,
    url: reqwest::Url,
    client: reqwest::Client,
    keys: ArcSwapOption<KeySet>,
    cooldown: Duration,
    /// Single flight: held for the duration of a fetch.
    fetch_lock: tokio::sync::Mutex<()>,
    /// Milliseconds since `epoch`, plus one, when the last fetch caused by an unknown
    /// `kid` started (0 = never). Only those fetches count toward the cooldown: a periodic
    /// or initial fetch a moment ago must not delay picking up a key rotated since.
    last_miss_fetch_ms: AtomicU64,
    epoch: Instant,
}

impl JwksCache {
    pub fn new(
        issuer: Arc<str>,
        url: reqwest::Url,
        client: reqwest::Client,
        cooldown: Duration,
    ) -> JwksCache {
        JwksCache {
            issuer,
            url,
            client,
            keys: ArcSwapOption::empty(),
            cooldown,
            fetch_lock: tokio::sync::Mutex::new(()),
            last_miss_fetch_ms: AtomicU64::new(0),
            epoch: Instant::now(),
        }
    }

    /// Whether a key set has been obtained at least once.
    pub fn is_loaded(&self) -> bool {
        self.keys.load().is_some()
    }

    /// The current snapshot, if any.
    pub fn snapshot(&self) -> Option<Arc<KeySet>> {
        self.keys.load_full()
    }

    /// Finds the key named `kid`; on a miss, refreshes once if the cooldown allows and
    /// looks again.
    pub async fn key(&self, kid: &str) -> Lookup {
        if let Some(set) = &*self.keys.load()
            && let Some(key) = set.get(kid)
        {
            return Lookup::Found(key.clone());
        }
        self.refresh_on_miss(|set| set.get(kid).is_some()).await;
        match &*self.keys.load() {
            None => Lookup::NoKeys,
            Some(set) => set.get(kid).cloned().map_or(Lookup::Unknown, Lookup::Found),
        }
    }

    /// Refreshes because a token needed a key the snapshot lacks. `satisfied` tells whether
    /// a snapshot installed meanwhile (by a concurrent caller's fetch) already has it.
    pub async fn refresh_on_miss(&self, satisfied: impl Fn(&KeySet) -> bool) {
        if self.in_cooldown() {
            return;
        }
        let _flight = self.fetch_lock.lock().await;
        if self.keys.load().as_deref().is_some_and(&satisfied) || self.in_cooldown() {
            return;
        }
        self.last_miss_fetch_ms
            .store(self.millis_since_epoch(), Ordering::Release);
        // The caller waited for (or is) the one fetch; failures are logged inside.
        let _ = self.fetch_locked("unknown_kid").await;
    }

    /// Periodic or initial refresh: ignores the cooldown but still single-flight.
    pub async fn refresh(&self, cause: &'static str) -> Result<usize, JwksError> {
        let _flight = self.fetch_lock.lock().await;
        self.fetch_locked(cause).await
    }

    fn in_cooldown(&self) -> bool {
        match self.last_miss_fetch_ms.load(Ordering::Acquire) {
            0 => false,
            stamp => {
                let since = self.millis_since_epoch().saturating_sub(stamp);
                since < self.cooldown.as_millis() as u64
            }
        }
    }

    /// Never 0, so that 0 can mean "never".
    fn millis_since_epoch(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64 + 1
    }

    async fn fetch_locked(&self, cause: &'static str) -> Result<usize, JwksError> {
        match self.fetch().await {
            Ok((set, skipped)) => {
                let count = set.len();
                tracing::info!(
                    issuer = %self.issuer, cause, keys = count, skipped,
                    "JWKS refreshed"
                );
                self.keys.store(Some(Arc::new(set)));
                Ok(count)
            }
            Err(error) => {
                tracing::warn!(
                    issuer = %self.issuer, cause, error = %error, keeps_previous = self.is_loaded(),
                    "JWKS refresh failed"
                );
                Err(error)
            }
        }
    }

    async fn fetch(&self) -> Result<(KeySet, usize), JwksError> {
        let mut response = self
            .client
            .get(self.url.clone())
            .header(
                reqwest::header::ACCEPT,
                "application/json, application/jwk-set+json",
            )
            .send()
            .await?;
        if !response.status().is_success() {
            return Err(JwksError::Status(response.status()));
        }
        if response.content_length().unwrap_or(0) > MAX_JWKS_BYTES as u64 {
            return Err(JwksError::TooLarge);
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await? {
            if body.len() + chunk.len() > MAX_JWKS_BYTES {
                return Err(JwksError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        KeySet::parse(&body)
    }
}

impl Lookup {
    pub fn into_result(self) -> Result<Arc<VerifyingKey>, DenyReason> {
        match self {
            Lookup::Found(key) => Ok(key),
            Lookup::Unknown => Err(DenyReason::UnknownKid),
            Lookup::NoKeys => Err(DenyReason::KeysUnavailable),
        }
    }
}
