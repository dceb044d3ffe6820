//! The signing keys published at one JWKS (or discovery) URL, fetched over HTTP and kept
//! in memory, shared by every issuer configured with that URL: one fetch serves them all,
//! and a refresh triggered through one of them (a new `kid`) is seen by all of them, so a
//! key the identity provider withdrew stops verifying for every issuer at once.
//!
//! Readers take a snapshot of the current [`KeySet`] (`ArcSwap`, no lock) and verify with
//! it. A token whose `kid` is not in the snapshot triggers a refresh at once — single
//! flight (one fetch at a time; concurrent callers wait for it and then look again) and at
//! most one per `unknown_kid_cooldown` (default 2 s), so a flood of invented `kid`s costs
//! the issuer at most one fetch per cooldown, and can never hold the next fetch off for
//! longer than that: whoever triggers it, the next fetch brings a key rotated in during a
//! flood within one cooldown (an unknown `kid` inside the cooldown is denied at once).
//! The background task ([`JwksCache::start`]) refreshes when the key set's
//! `Cache-Control: max-age` (bounded) or the refresh interval says so, and retries with
//! backoff on failure. A failed fetch keeps the last good key set serving until it is
//! `max_staleness` old; after that the issuer's tokens get `keys_unavailable`.

use std::{
    sync::{
        Arc, Mutex, Weak,
        atomic::{AtomicU32, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use arc_swap::{ArcSwap, ArcSwapOption};
use reqwest::Url;
use tokio::task::JoinHandle;
use tracing::Instrument;

use super::{
    fetch::{FetchError, discover, get_bounded},
    keyset::{KeySet, VerifyingKey},
};
use crate::{
    config::{JwksSettings, JwksSource},
    deny::DenyReason,
    metrics::Metrics,
};

/// First retry delay after a failed fetch, doubled per failure up to [`MAX_RETRY_DELAY`].
const FIRST_RETRY_DELAY: Duration = Duration::from_millis(500);
const MAX_RETRY_DELAY: Duration = Duration::from_secs(60);

/// The keys in use, with when they were fetched.
pub struct Snapshot {
    pub keys: KeySet,
    fetched_at: Instant,
}

/// Outcome of looking a key up, after a refresh if one was allowed.
pub enum Lookup {
    /// The keys of that `kid` (one, or twins of other types).
    Found(Vec<Arc<VerifyingKey>>),
    Unknown,
    /// No usable key set: never fetched, or older than `max_staleness`.
    NoKeys,
}

impl Lookup {
    pub fn into_result(self) -> Result<Vec<Arc<VerifyingKey>>, DenyReason> {
        match self {
            Lookup::Found(keys) => Ok(keys),
            Lookup::Unknown => Err(DenyReason::UnknownKid),
            Lookup::NoKeys => Err(DenyReason::KeysUnavailable),
        }
    }
}

/// What `/readyz` and the metrics report about one issuer's keys.
#[derive(Debug, Clone, serde::Serialize)]
pub struct KeyStatus {
    pub issuer: String,
    /// `fresh`, `stale` (refresh failing, last keys still serving), `expired` (older than
    /// max_staleness: not used) or `missing` (never fetched).
    pub state: &'static str,
    pub keys: usize,
    pub age_seconds: Option<u64>,
    pub consecutive_failures: u32,
    pub last_error: Option<String>,
}

/// The cached keys of one key source and the rules for refreshing them.
pub struct JwksCache {
    /// The issuers configured with this source (logs, metrics; discovery checks the first).
    issuers: Mutex<Vec<Arc<str>>>,
    source: JwksSource,
    /// For discovery: the `jwks_uri` found, until a fetch from it fails.
    resolved: ArcSwapOption<Url>,
    client: reqwest::Client,
    settings: JwksSettings,
    metrics: Arc<Metrics>,
    snapshot: ArcSwapOption<Snapshot>,
    /// Single flight: held for the duration of a fetch.
    fetch_lock: tokio::sync::Mutex<()>,
    /// Milliseconds since `epoch`, plus one, when the last fetch caused by an unknown
    /// `kid` started (0 = never). Only those fetches count toward the cooldown: a periodic
    /// or initial fetch a moment ago must not delay picking up a key rotated since.
    last_miss_fetch_ms: AtomicU64,
    epoch: Instant,
    failures: AtomicU32,
    last_error: Mutex<Option<String>>,
    next_refresh: ArcSwap<Duration>,
    /// The background refresh task, stopped when the cache is dropped.
    refresher: Mutex<Option<JoinHandle<()>>>,
}

// === impl JwksCache ===

impl JwksCache {
    pub fn new(
        issuer: Arc<str>,
        source: JwksSource,
        client: reqwest::Client,
        settings: &JwksSettings,
        metrics: Arc<Metrics>,
    ) -> JwksCache {
        JwksCache {
            issuers: Mutex::new(vec![issuer]),
            source,
            resolved: ArcSwapOption::empty(),
            client,
            settings: settings.clone(),
            metrics,
            snapshot: ArcSwapOption::empty(),
            fetch_lock: tokio::sync::Mutex::new(()),
            last_miss_fetch_ms: AtomicU64::new(0),
            epoch: Instant::now(),
            failures: AtomicU32::new(0),
            last_error: Mutex::new(None),
            next_refresh: ArcSwap::from_pointee(settings.refresh_interval),
            refresher: Mutex::new(None),
        }
    }

    /// Whether a reloaded configuration may keep this cache: same key source (for
    /// discovery, that is the same issuer), same refresh settings.
    pub fn reusable_for(&self, source: &JwksSource, settings: &JwksSettings) -> bool {
        self.source == *source && self.settings == *settings
    }

    pub fn source(&self) -> &JwksSource {
        &self.source
    }

    /// Another issuer configured with this source.
    pub fn add_issuer(&self, issuer: Arc<str>) {
        if let Ok(mut issuers) = self.issuers.lock()
            && !issuers.contains(&issuer)
        {
            issuers.push(issuer);
        }
    }

    /// The issuers of the configuration now using this cache.
    pub fn set_issuers(&self, list: Vec<Arc<str>>) {
        if let Ok(mut issuers) = self.issuers.lock() {
            *issuers = list;
        }
    }

    fn issuers(&self) -> Vec<Arc<str>> {
        self.issuers.lock().map(|i| i.clone()).unwrap_or_default()
    }

    /// Starts the background refresh task (once; later calls do nothing). The task holds
    /// only a weak reference between fetches, so dropping the cache ends it.
    pub fn start(self: &Arc<Self>) {
        let Ok(mut slot) = self.refresher.lock() else {
            return;
        };
        if slot.is_none() {
            *slot = Some(tokio::spawn(refresh_loop(Arc::downgrade(self))));
        }
    }

    /// Whether a key set has been obtained at least once.
    pub fn is_loaded(&self) -> bool {
        self.snapshot.load().is_some()
    }

    /// The current key set, unless there is none or it is older than `max_staleness`.
    pub fn usable(&self) -> Option<Arc<Snapshot>> {
        self.snapshot
            .load_full()
            .filter(|s| s.fetched_at.elapsed() <= self.settings.max_staleness)
    }

    /// Finds the keys named `kid`; on a miss, refreshes once if the cooldown allows and
    /// looks again.
    pub async fn keys(&self, kid: &str) -> Lookup {
        if let Some(snapshot) = self.usable() {
            let keys = snapshot.keys.get(kid);
            if !keys.is_empty() {
                return Lookup::Found(keys.to_vec());
            }
        }
        self.refresh_on_miss(|set| !set.get(kid).is_empty()).await;
        match self.usable() {
            None => Lookup::NoKeys,
            Some(s) => match s.keys.get(kid) {
                [] => Lookup::Unknown,
                keys => Lookup::Found(keys.to_vec()),
            },
        }
    }

    /// Refreshes because a token needed a key the snapshot lacks. `satisfied` tells whether
    /// a snapshot installed meanwhile (by a concurrent caller's fetch) already has it.
    pub async fn refresh_on_miss(&self, satisfied: impl Fn(&KeySet) -> bool) {
        if self.in_cooldown() {
            // Inside the cooldown no new fetch starts, but one already in flight (started by
            // an earlier miss) may bring the key: wait for it rather than deny too early.
            if self.fetch_lock.try_lock().is_err() {
                drop(self.fetch_lock.lock().await);
            }
            return;
        }
        let _flight = self.fetch_lock.lock().await;
        if self.usable().is_some_and(|s| satisfied(&s.keys)) || self.in_cooldown() {
            return;
        }
        self.last_miss_fetch_ms
            .store(self.millis_since_epoch(), Ordering::Release);
        // The caller waited for (or is) the one fetch; failures are logged and counted inside.
        let _ = self.fetch_locked("unknown_kid").await;
    }

    /// Refreshes now (single flight, no cooldown). On success returns when to refresh next:
    /// the response's `max-age` within the configured bounds, or `refresh_interval`.
    pub async fn refresh(&self, cause: &'static str) -> Result<Duration, FetchError> {
        let _flight = self.fetch_lock.lock().await;
        self.fetch_locked(cause).await?;
        Ok(**self.next_refresh.load())
    }

    /// Delay until the next background refresh after one that ended with `outcome`:
    /// the schedule on success, exponential backoff (500 ms doubling to 60 s, with
    /// jitter) on failure.
    fn next_delay(&self, outcome: &Result<Duration, FetchError>) -> Duration {
        match outcome {
            Ok(next) => *next,
            Err(_) => {
                let failures = self.failures.load(Ordering::Acquire).saturating_sub(1);
                let backoff = FIRST_RETRY_DELAY
                    .saturating_mul(2u32.saturating_pow(failures.min(16)))
                    .min(MAX_RETRY_DELAY);
                backoff + jitter(backoff)
            }
        }
    }

    /// The key status as `issuer`, one of the issuers sharing the cache, reports it.
    pub fn status(&self, issuer: &str) -> KeyStatus {
        let snapshot = self.snapshot.load_full();
        let age = snapshot.as_ref().map(|s| s.fetched_at.elapsed());
        let failures = self.failures.load(Ordering::Acquire);
        let state = match age {
            None => "missing",
            Some(age) if age > self.settings.max_staleness => "expired",
            Some(_) if failures > 0 => "stale",
            Some(_) => "fresh",
        };
        KeyStatus {
            issuer: issuer.to_owned(),
            state,
            keys: snapshot.as_ref().map_or(0, |s| s.keys.len()),
            age_seconds: age.map(|a| a.as_secs()),
            consecutive_failures: failures,
            last_error: self.last_error.lock().ok().and_then(|e| e.clone()),
        }
    }

    fn in_cooldown(&self) -> bool {
        match self.last_miss_fetch_ms.load(Ordering::Acquire) {
            0 => false,
            stamp => {
                let since = self.millis_since_epoch().saturating_sub(stamp);
                since < self.settings.unknown_kid_cooldown.as_millis() as u64
            }
        }
    }

    /// Never 0, so that 0 can mean "never".
    fn millis_since_epoch(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64 + 1
    }

    async fn fetch_locked(&self, cause: &'static str) -> Result<(), FetchError> {
        let issuers = self.issuers();
        let names = issuers.join(" ");
        let span = tracing::info_span!("jwks_fetch", issuers = %names, cause);
        match self.fetch(issuers.first()).instrument(span).await {
            Ok((keys, skipped, max_age)) => {
                let count = keys.len();
                let next = max_age.unwrap_or(self.settings.refresh_interval).clamp(
                    self.settings.min_refresh_interval,
                    self.settings.max_refresh_interval,
                );
                tracing::info!(
                    issuers = %names, cause, keys = count, skipped, next_refresh_s = next.as_secs(),
                    "JWKS refreshed"
                );
                self.snapshot.store(Some(Arc::new(Snapshot {
                    keys,
                    fetched_at: Instant::now(),
                })));
                self.next_refresh.store(Arc::new(next));
                self.failures.store(0, Ordering::Release);
                if let Ok(mut last) = self.last_error.lock() {
                    *last = None;
                }
                for issuer in &issuers {
                    self.metrics.jwks_fetch(issuer, "ok");
                    self.metrics.jwks_keys(issuer, count);
                }
                Ok(())
            }
            Err(error) => {
                self.failures.fetch_add(1, Ordering::AcqRel);
                self.resolved.store(None);
                tracing::warn!(
                    issuers = %names, cause, error = %error, keeps_previous = self.usable().is_some(),
                    "JWKS refresh failed"
                );
                if let Ok(mut last) = self.last_error.lock() {
                    *last = Some(error.to_string());
                }
                for issuer in &issuers {
                    self.metrics.jwks_fetch(issuer, error.label());
                }
                Err(error)
            }
        }
    }

    async fn fetch(
        &self,
        issuer: Option<&Arc<str>>,
    ) -> Result<(KeySet, usize, Option<Duration>), FetchError> {
        let url = match &self.source {
            JwksSource::Uri(url) => url.clone(),
            JwksSource::Discovery(discovery) => match self.resolved.load_full() {
                Some(url) => (*url).clone(),
                None => {
                    let limit = self.settings.max_document_bytes;
                    let issuer = issuer.map_or("", |i| &**i);
                    let url = discover(&self.client, discovery, issuer, limit).await?;
                    self.resolved.store(Some(Arc::new(url.clone())));
                    url
                }
            },
        };
        let fetched = get_bounded(&self.client, &url, self.settings.max_document_bytes).await?;
        let (keys, skipped) = KeySet::parse(&fetched.body, self.settings.max_keys)?;
        Ok((keys, skipped, fetched.max_age))
    }
}

impl Drop for JwksCache {
    fn drop(&mut self) {
        if let Ok(mut slot) = self.refresher.lock()
            && let Some(task) = slot.take()
        {
            task.abort();
        }
    }
}

/// First fetch at once, then refresh on schedule, retrying failures with backoff; ends
/// when the cache is gone.
async fn refresh_loop(cache: Weak<JwksCache>) {
    let mut cause = "initial";
    loop {
        let Some(strong) = cache.upgrade() else {
            return;
        };
        let outcome = strong.refresh(cause).await;
        cause = if outcome.is_ok() {
            "scheduled"
        } else {
            "retry"
        };
        let delay = strong.next_delay(&outcome);
        drop(strong);
        tokio::time::sleep(delay).await;
    }
}

/// Up to 10% extra, so that replicas started together do not retry in lockstep.
fn jitter(delay: Duration) -> Duration {
    delay.mul_f64(fastrand::f64() / 10.0)
}
