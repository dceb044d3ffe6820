//! Where used DPoP proofs are remembered, so that each is accepted once: a proof is
//! identified by its key's thumbprint and its `jti` (one client's `jti`s cannot collide
//! with another's), hashed, and kept until its `iat` is too old to be accepted anyway.
//!
//! - In process (default): a bounded map, with a bounded share for each client key, so
//!   that one client making proofs faster than they expire is refused on its own while the
//!   others go on. Complete for one replica only: a proof replayed to another replica is
//!   not seen there. Nor are proofs used before the process started: those (`iat` before
//!   the start) are refused, so that a restart does not reopen them to a replay.
//! - Redis (or Valkey): `SET key 1 NX PX ttl` — the first replica to store a proof wins,
//!   every other sees it — for horizontally scaled deployments. A background PING every
//!   second keeps the connection (re)made, so that the first DPoP request after Redis
//!   comes back finds it ready; a command that fails on a connection dropped meanwhile is
//!   tried once more within the timeout.
//!
//! A store that cannot answer (Redis down or slow, the in-process map or a key's share of
//! it full of live proofs) refuses the DPoP request: a proof is never accepted unchecked.

use std::{
    collections::HashMap,
    fmt::Write as _,
    sync::{
        Arc, Weak,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use aws_lc_rs::digest;
use dashmap::DashMap;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::OnceCell;

use crate::{config::ReplaySettings, deny::DenyReason};

/// A used proof, as stored: the first 16 bytes of SHA-256(thumbprint, `jti`).
pub type ProofId = [u8; 16];
/// A client key, as the in-process store counts its share: the first 16 bytes of
/// SHA-256(thumbprint).
pub type KeyId = [u8; 16];

/// How often the Redis connection is checked (and remade when it dropped).
const REDIS_PING_INTERVAL: Duration = Duration::from_secs(1);

pub fn key_id(thumbprint: &str) -> KeyId {
    proof_id(thumbprint, "")
}

pub fn proof_id(thumbprint: &str, jti: &str) -> ProofId {
    let mut context = digest::Context::new(&digest::SHA256);
    context.update(thumbprint.as_bytes());
    context.update(b"\n");
    context.update(jti.as_bytes());
    let mut id = [0u8; 16];
    id.copy_from_slice(&context.finish().as_ref()[..16]);
    id
}

pub enum ReplayStore {
    Memory(MemoryStore),
    Redis(RedisStore),
}

impl ReplayStore {
    pub fn new(settings: &ReplaySettings) -> ReplayStore {
        match settings {
            ReplaySettings::Memory {
                max_entries,
                per_key,
            } => ReplayStore::Memory(MemoryStore {
                seen: DashMap::new(),
                entries: AtomicUsize::new(0),
                max_entries: *max_entries,
                per_key: *per_key,
                started_at: jsonwebtoken::get_current_timestamp(),
            }),
            ReplaySettings::Redis {
                url,
                timeout,
                key_prefix,
            } => ReplayStore::Redis(RedisStore {
                url: String::from_utf8_lossy(&url.0).into_owned(),
                timeout: *timeout,
                key_prefix: key_prefix.clone(),
                connection: OnceCell::new(),
            }),
        }
    }

    /// Records proof `id` of client key `key`, issued at `iat`, as used until `expires_at`
    /// (Unix seconds). `Ok(true)`: first use; `Ok(false)`: a replay; `Err`: the store could
    /// not tell, or (in process) the proof predates the store.
    pub async fn first_use(
        &self,
        key: KeyId,
        id: ProofId,
        iat: u64,
        now: u64,
        expires_at: u64,
    ) -> Result<bool, DenyReason> {
        match self {
            ReplayStore::Memory(store) => store.first_use(key, id, iat, now, expires_at),
            ReplayStore::Redis(store) => store.first_use(id, now, expires_at).await,
        }
    }
}

/// The in-process store.
pub struct MemoryStore {
    /// Each client key's proofs → when each may be forgotten (Unix seconds).
    seen: DashMap<KeyId, HashMap<ProofId, u64>>,
    /// Proofs held, over every key.
    entries: AtomicUsize,
    max_entries: usize,
    /// Proofs one key may hold.
    per_key: usize,
    /// When the store was made (Unix seconds): earlier proofs may have been used with a
    /// store that is gone.
    started_at: u64,
}

impl MemoryStore {
    fn first_use(
        &self,
        key: KeyId,
        id: ProofId,
        iat: u64,
        now: u64,
        expires_at: u64,
    ) -> Result<bool, DenyReason> {
        if iat < self.started_at {
            tracing::debug!("DPoP proof issued before this replica started: refused");
            return Err(DenyReason::DpopProofStale);
        }
        if self.entries.load(Ordering::Acquire) >= self.max_entries {
            self.seen.retain(|_, proofs| {
                self.forget_expired(proofs, now);
                !proofs.is_empty()
            });
            if self.entries.load(Ordering::Acquire) >= self.max_entries {
                tracing::warn!(
                    entries = self.max_entries,
                    "DPoP replay store full of live proofs: DPoP requests are refused; raise \
                     dpop.replay.max_entries or use a Redis store"
                );
                return Err(DenyReason::ReplayStoreUnavailable);
            }
        }
        let mut proofs = self.seen.entry(key).or_default();
        if proofs.get(&id).is_some_and(|forget_at| *forget_at > now) {
            return Ok(false);
        }
        if proofs.len() >= self.per_key {
            self.forget_expired(&mut proofs, now);
            if proofs.len() >= self.per_key {
                tracing::warn!(
                    share = self.per_key,
                    "DPoP replay store: one client key holds its whole share of live proofs; its \
                     DPoP requests are refused, other clients' go on (dpop.replay.max_entries_per_key)"
                );
                return Err(DenyReason::ReplayStoreUnavailable);
            }
        }
        if proofs.insert(id, expires_at).is_none() {
            self.entries.fetch_add(1, Ordering::AcqRel);
        }
        Ok(true)
    }

    fn forget_expired(&self, proofs: &mut HashMap<ProofId, u64>, now: u64) {
        let before = proofs.len();
        proofs.retain(|_, forget_at| *forget_at > now);
        self.entries
            .fetch_sub(before - proofs.len(), Ordering::AcqRel);
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.load(Ordering::Acquire)
    }
}

/// The shared store on Redis.
pub struct RedisStore {
    url: String,
    timeout: Duration,
    key_prefix: String,
    /// Made on first use (inside the runtime); reconnects by itself after a failure.
    connection: OnceCell<Arc<ConnectionManager>>,
}

impl RedisStore {
    async fn connection(&self) -> Result<&Arc<ConnectionManager>, redis::RedisError> {
        self.connection
            .get_or_try_init(|| async {
                let client = redis::Client::open(self.url.as_str())?;
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(self.timeout))
                    .set_response_timeout(Some(self.timeout))
                    .set_number_of_retries(1);
                let manager = Arc::new(ConnectionManager::new_lazy_with_config(client, config)?);
                tokio::spawn(keep_alive(Arc::downgrade(&manager), self.timeout));
                Ok(manager)
            })
            .await
    }

    async fn first_use(&self, id: ProofId, now: u64, expires_at: u64) -> Result<bool, DenyReason> {
        let started = Instant::now();
        let unavailable = |error: &dyn std::fmt::Display| {
            tracing::warn!(error = %error, "DPoP replay store (Redis) unavailable: DPoP request refused");
            DenyReason::ReplayStoreUnavailable
        };
        let connection = self.connection().await.map_err(|e| unavailable(&e))?;
        let mut key = String::with_capacity(self.key_prefix.len() + 2 * id.len());
        key.push_str(&self.key_prefix);
        for byte in id {
            // Writing to a String cannot fail.
            let _ = write!(key, "{byte:02x}");
        }
        let ttl_ms = expires_at.saturating_sub(now).max(1).saturating_mul(1000);
        let mut command = redis::cmd("SET");
        command.arg(&key).arg(1).arg("NX").arg("PX").arg(ttl_ms);
        let mut connection = (**connection).clone();
        // Once more when the first try found the connection dropped (the manager is
        // making a new one), within the same time limit.
        let mut last = None;
        for _ in 0..2 {
            let remaining = self.timeout.saturating_sub(started.elapsed());
            match tokio::time::timeout(
                remaining,
                command.query_async::<Option<String>>(&mut connection),
            )
            .await
            {
                Ok(Ok(stored)) => return Ok(stored.is_some()),
                Ok(Err(error)) if error.is_connection_dropped() || error.is_io_error() => {
                    last = Some(error.to_string());
                }
                Ok(Err(error)) => return Err(unavailable(&error)),
                Err(_) => return Err(unavailable(&"timed out")),
            }
        }
        Err(unavailable(&last.unwrap_or_default()))
    }
}

/// PINGs Redis every [`REDIS_PING_INTERVAL`] while the store lives, so that a dropped
/// connection is made again before a DPoP request needs it.
async fn keep_alive(manager: Weak<ConnectionManager>, timeout: Duration) {
    let mut was_down = false;
    loop {
        tokio::time::sleep(REDIS_PING_INTERVAL).await;
        let Some(manager) = manager.upgrade() else {
            return;
        };
        let mut connection = (*manager).clone();
        drop(manager);
        let ping = redis::cmd("PING");
        let up = matches!(
            tokio::time::timeout(timeout, ping.query_async::<String>(&mut connection)).await,
            Ok(Ok(_))
        );
        if up && was_down {
            tracing::info!("DPoP replay store (Redis) reachable again");
        }
        was_down = !up;
    }
}
