//! Where used DPoP proofs are remembered, so that each is accepted once: a proof is
//! identified by its key's thumbprint and its `jti` (one client's `jti`s cannot collide
//! with another's), hashed, and kept until its `iat` is too old to be accepted anyway.
//!
//! - In process (default): a bounded map. Complete for one replica only: a proof
//!   replayed to another replica is not seen there.
//! - Redis (or Valkey): `SET key 1 NX PX ttl` — the first replica to store a proof wins,
//!   every other sees it — for horizontally scaled deployments.
//!
//! A store that cannot answer (Redis down or slow, the in-process map full of live
//! proofs) refuses the DPoP request: a proof is never accepted unchecked.

use std::{
    fmt::Write as _,
    sync::Arc,
    time::{Duration, Instant},
};

use aws_lc_rs::digest;
use dashmap::DashMap;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::OnceCell;

use crate::{config::ReplaySettings, deny::DenyReason};

/// A used proof, as stored: the first 16 bytes of SHA-256(thumbprint, `jti`).
pub type ProofId = [u8; 16];

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
            ReplaySettings::Memory { max_entries } => ReplayStore::Memory(MemoryStore {
                seen: DashMap::new(),
                max_entries: *max_entries,
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

    /// Records `id` as used until `expires_at` (Unix seconds). `Ok(true)`: first use;
    /// `Ok(false)`: a replay; `Err`: the store could not tell.
    pub async fn first_use(
        &self,
        id: ProofId,
        now: u64,
        expires_at: u64,
    ) -> Result<bool, DenyReason> {
        match self {
            ReplayStore::Memory(store) => store.first_use(id, now, expires_at),
            ReplayStore::Redis(store) => store.first_use(id, now, expires_at).await,
        }
    }
}

/// The in-process store.
pub struct MemoryStore {
    /// Proof → when it may be forgotten (Unix seconds).
    seen: DashMap<ProofId, u64>,
    max_entries: usize,
}

impl MemoryStore {
    fn first_use(&self, id: ProofId, now: u64, expires_at: u64) -> Result<bool, DenyReason> {
        if self.seen.len() >= self.max_entries {
            self.seen.retain(|_, forget_at| *forget_at > now);
            if self.seen.len() >= self.max_entries {
                tracing::warn!(
                    entries = self.seen.len(),
                    "DPoP replay store full of live proofs: DPoP requests are refused; raise \
                     dpop.replay.max_entries or use a Redis store"
                );
                return Err(DenyReason::ReplayStoreUnavailable);
            }
        }
        match self.seen.entry(id) {
            dashmap::Entry::Occupied(mut entry) => {
                if *entry.get() > now {
                    return Ok(false);
                }
                entry.insert(expires_at);
                Ok(true)
            }
            dashmap::Entry::Vacant(entry) => {
                entry.insert(expires_at);
                Ok(true)
            }
        }
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.seen.len()
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
    async fn first_use(&self, id: ProofId, now: u64, expires_at: u64) -> Result<bool, DenyReason> {
        let started = Instant::now();
        let unavailable = |error: &dyn std::fmt::Display| {
            tracing::warn!(error = %error, "DPoP replay store (Redis) unavailable: DPoP request refused");
            DenyReason::ReplayStoreUnavailable
        };
        let connection = self
            .connection
            .get_or_try_init(|| async {
                let client = redis::Client::open(self.url.as_str())?;
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(self.timeout))
                    .set_response_timeout(Some(self.timeout))
                    .set_number_of_retries(1);
                ConnectionManager::new_lazy_with_config(client, config).map(Arc::new)
            })
            .await
            .map_err(|e| unavailable(&e))?;
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
        let remaining = self.timeout.saturating_sub(started.elapsed());
        match tokio::time::timeout(
            remaining,
            command.query_async::<Option<String>>(&mut connection),
        )
        .await
        {
            Ok(Ok(stored)) => Ok(stored.is_some()),
            Ok(Err(error)) => Err(unavailable(&error)),
            Err(_) => Err(unavailable(&"timed out")),
        }
    }
}
