//! Sender-constrained tokens in the configuration: `sender_constraint` on issuers and
//! routes, and the `dpop` section — proof algorithms, the `iat` window, the replay store
//! (in-process, or Redis shared by every replica) and optional server nonces.

use std::{fmt, time::Duration};

use super::{
    Secret,
    problems::Problems,
    raw::{RawDpop, RawNonce, RawReplay},
    words::{ProofAlgorithm, SenderConstraint},
};

/// Reads a `sender_constraint` field; `optional` when absent.
pub(super) fn sender_constraint(
    field: &str,
    value: Option<&str>,
    problems: &mut Problems,
) -> SenderConstraint {
    match value {
        None => SenderConstraint::default(),
        Some(text) => SenderConstraint::parse(text).unwrap_or_else(|| {
            problems.add(
                format!("{field}.sender_constraint"),
                format!("{text:?} is not one of optional, required, dpop, mtls"),
            );
            SenderConstraint::default()
        }),
    }
}

/// How DPoP proofs are checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DpopSettings {
    /// Accepted proof algorithms, also advertised in the challenge's `algs`.
    pub algorithms: Vec<ProofAlgorithm>,
    /// How old a proof's `iat` may be.
    pub max_age: Duration,
    /// How far in the future a proof's `iat` may be (clocks differ).
    pub max_clock_skew: Duration,
    /// Longer proofs are refused unparsed.
    pub max_proof_bytes: usize,
    pub replay: ReplaySettings,
    /// Server nonces, when required.
    pub nonce: Option<NonceSettings>,
}

/// The default proof algorithms: every asymmetric one (what clients' libraries sign with
/// varies: ES256 most, then RS256, PS256, EdDSA).
pub const DEFAULT_PROOF_ALGORITHMS: &[ProofAlgorithm] = &ProofAlgorithm::ALL;
/// A proof is made for one request, just before it is sent: a minute covers slow networks
/// and queues while keeping what a stolen proof is good for short.
pub const DEFAULT_PROOF_MAX_AGE: Duration = Duration::from_secs(60);
pub const DEFAULT_PROOF_CLOCK_SKEW: Duration = Duration::from_secs(5);
/// A proof holds one public key and a few claims: well under 2 KiB with RSA-4096.
pub const DEFAULT_MAX_PROOF_BYTES: usize = 8 * 1024;
/// Proofs remembered by the in-process replay store: at about 64 bytes each, 6 MiB.
/// Past it (after dropping expired ones) DPoP requests are refused, never let through
/// unchecked.
pub const DEFAULT_REPLAY_MAX_ENTRIES: usize = 100_000;
/// One client key may hold a tenth of the in-process store by default (10,000 proofs: 150
/// requests a second for a minute), so that a busy or misbehaving client is refused on its
/// own while every other client goes on.
pub const DEFAULT_REPLAY_KEY_SHARE: usize = 10;
/// A Redis `SET` on the same network takes well under a millisecond.
pub const DEFAULT_REDIS_TIMEOUT: Duration = Duration::from_millis(250);
pub const DEFAULT_REDIS_KEY_PREFIX: &str = "portcullis:dpop:";
pub const DEFAULT_NONCE_LIFETIME: Duration = Duration::from_secs(300);
/// A nonce secret shorter than this is refused (it keys HMAC-SHA256).
pub const MIN_NONCE_SECRET_BYTES: usize = 32;

impl Default for DpopSettings {
    fn default() -> Self {
        DpopSettings {
            algorithms: DEFAULT_PROOF_ALGORITHMS.to_vec(),
            max_age: DEFAULT_PROOF_MAX_AGE,
            max_clock_skew: DEFAULT_PROOF_CLOCK_SKEW,
            max_proof_bytes: DEFAULT_MAX_PROOF_BYTES,
            replay: ReplaySettings::Memory {
                max_entries: DEFAULT_REPLAY_MAX_ENTRIES,
                per_key: DEFAULT_REPLAY_MAX_ENTRIES / DEFAULT_REPLAY_KEY_SHARE,
            },
            nonce: None,
        }
    }
}

/// Where used proofs are remembered until they are too old to be accepted anyway.
#[derive(Clone, PartialEq, Eq)]
pub enum ReplaySettings {
    /// In this process: complete for one replica only (a proof replayed to another
    /// replica is not seen); `per_key` proofs at most for one client key.
    Memory { max_entries: usize, per_key: usize },
    /// In Redis (or Valkey), shared by every replica.
    Redis {
        url: Secret,
        timeout: Duration,
        key_prefix: String,
    },
}

impl fmt::Debug for ReplaySettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReplaySettings::Memory {
                max_entries,
                per_key,
            } => f
                .debug_struct("Memory")
                .field("max_entries", max_entries)
                .field("per_key", per_key)
                .finish(),
            ReplaySettings::Redis {
                timeout,
                key_prefix,
                ..
            } => f
                .debug_struct("Redis")
                .field("url", &"<redacted>")
                .field("timeout", timeout)
                .field("key_prefix", key_prefix)
                .finish(),
        }
    }
}

/// Stateless server nonces: every replica holding the secret issues and accepts them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NonceSettings {
    pub secret: Secret,
    pub lifetime: Duration,
}

pub(super) fn dpop_settings(raw: &RawDpop, problems: &mut Problems) -> DpopSettings {
    let defaults = DpopSettings::default();
    let algorithms = match &raw.algorithms {
        None => defaults.algorithms,
        Some(names) => {
            if names.is_empty() {
                problems.add("dpop.algorithms", "must not be empty");
            }
            names
                .iter()
                .enumerate()
                .filter_map(|(i, name)| {
                    let parsed = ProofAlgorithm::parse(name);
                    if parsed.is_none() {
                        let all: Vec<&str> = ProofAlgorithm::ALL.iter().map(|a| a.name()).collect();
                        problems.add(
                            format!("dpop.algorithms[{i}]"),
                            format!(
                                "{name:?} is not an asymmetric JWS algorithm; one of {}",
                                all.join(", ")
                            ),
                        );
                    }
                    parsed
                })
                .collect()
        }
    };
    let max_age = problems.duration("dpop.max_age", raw.max_age.as_deref(), defaults.max_age);
    if max_age.is_zero() || max_age > Duration::from_secs(3600) {
        problems.add("dpop.max_age", "must be more than 0 and at most 1h");
    }
    let max_clock_skew = problems.duration(
        "dpop.max_clock_skew",
        raw.max_clock_skew.as_deref(),
        defaults.max_clock_skew,
    );
    if max_clock_skew > Duration::from_secs(300) {
        problems.add("dpop.max_clock_skew", "must be at most 5m");
    }
    let max_proof_bytes = raw.max_proof_bytes.unwrap_or(defaults.max_proof_bytes);
    if max_proof_bytes < 512 {
        problems.add("dpop.max_proof_bytes", "must be at least 512");
    }
    DpopSettings {
        algorithms,
        max_age,
        max_clock_skew,
        max_proof_bytes,
        replay: replay_settings(&raw.replay, problems),
        nonce: raw.nonce.as_ref().and_then(|n| nonce_settings(n, problems)),
    }
}

fn replay_settings(raw: &RawReplay, problems: &mut Problems) -> ReplaySettings {
    let redis_fields = [
        ("redis_url", raw.redis_url.is_some()),
        ("redis_url_env", raw.redis_url_env.is_some()),
        ("redis_timeout", raw.redis_timeout.is_some()),
        ("redis_key_prefix", raw.redis_key_prefix.is_some()),
    ];
    match raw.store.as_deref().unwrap_or("memory") {
        "memory" => {
            for (name, _) in redis_fields.iter().filter(|(_, set)| *set) {
                problems.add(
                    format!("dpop.replay.{name}"),
                    "only applies to `store: redis`",
                );
            }
            let max_entries = raw.max_entries.unwrap_or(DEFAULT_REPLAY_MAX_ENTRIES);
            if max_entries < 1000 {
                problems.add("dpop.replay.max_entries", "must be at least 1000");
            }
            let per_key = raw
                .max_entries_per_key
                .unwrap_or(max_entries / DEFAULT_REPLAY_KEY_SHARE);
            if per_key == 0 || per_key > max_entries {
                problems.add(
                    "dpop.replay.max_entries_per_key",
                    "must be at least 1 and at most max_entries",
                );
            }
            ReplaySettings::Memory {
                max_entries,
                per_key,
            }
        }
        "redis" => {
            for (name, set) in [
                ("max_entries", raw.max_entries.is_some()),
                ("max_entries_per_key", raw.max_entries_per_key.is_some()),
            ] {
                if set {
                    problems.add(
                        format!("dpop.replay.{name}"),
                        "only applies to `store: memory`",
                    );
                }
            }
            let url = match (&raw.redis_url, &raw.redis_url_env) {
                (Some(url), None) => Some(url.clone()),
                (None, Some(name)) => std::env::var(name).ok().or_else(|| {
                    problems.add(
                        "dpop.replay.redis_url_env",
                        format!("environment variable {name} is not set"),
                    );
                    None
                }),
                (None, None) => {
                    problems.add(
                        "dpop.replay",
                        "`store: redis` needs redis_url or redis_url_env",
                    );
                    None
                }
                (Some(_), Some(_)) => {
                    problems.add(
                        "dpop.replay.redis_url_env",
                        "give the Redis URL one way only",
                    );
                    None
                }
            };
            if let Some(url) = &url
                && !(url.starts_with("redis://") || url.starts_with("unix://"))
            {
                let field = if raw.redis_url.is_some() {
                    "dpop.replay.redis_url"
                } else {
                    "dpop.replay.redis_url_env"
                };
                problems.add(
                    field,
                    "must be a redis:// (or unix://) URL; rediss:// (TLS) is not built in",
                );
            }
            let timeout = problems.duration(
                "dpop.replay.redis_timeout",
                raw.redis_timeout.as_deref(),
                DEFAULT_REDIS_TIMEOUT,
            );
            if timeout.is_zero() || timeout > Duration::from_secs(5) {
                problems.add(
                    "dpop.replay.redis_timeout",
                    "must be more than 0 and at most 5s",
                );
            }
            ReplaySettings::Redis {
                url: Secret(url.unwrap_or_default().into_bytes()),
                timeout,
                key_prefix: raw
                    .redis_key_prefix
                    .clone()
                    .unwrap_or_else(|| DEFAULT_REDIS_KEY_PREFIX.to_owned()),
            }
        }
        other => {
            problems.add(
                "dpop.replay.store",
                format!("{other:?} is not one of memory, redis"),
            );
            DpopSettings::default().replay
        }
    }
}

fn nonce_settings(raw: &RawNonce, problems: &mut Problems) -> Option<NonceSettings> {
    let lifetime = problems.duration(
        "dpop.nonce.lifetime",
        raw.lifetime.as_deref(),
        DEFAULT_NONCE_LIFETIME,
    );
    if lifetime < Duration::from_secs(10) || lifetime > Duration::from_secs(24 * 3600) {
        problems.add("dpop.nonce.lifetime", "must be between 10s and 24h");
    }
    let (field, text) = match (&raw.secret_base64_env, &raw.secret_file) {
        (Some(name), None) => (
            "dpop.nonce.secret_base64_env",
            std::env::var(name).map_err(|_| format!("environment variable {name} is not set")),
        ),
        (None, Some(path)) => (
            "dpop.nonce.secret_file",
            std::fs::read_to_string(path).map_err(|e| format!("cannot read {path:?}: {e}")),
        ),
        (None, None) => {
            problems.add(
                "dpop.nonce",
                "needs secret_base64_env or secret_file (a secret every replica shares)",
            );
            return None;
        }
        (Some(_), Some(_)) => {
            problems.add(
                "dpop.nonce.secret_file",
                "give the nonce secret one way only",
            );
            return None;
        }
    };
    let secret = text.and_then(|text| {
        super::secrets::base64_secret(text.trim()).ok_or_else(|| "is not base64".to_owned())
    });
    match secret {
        Ok(bytes) if bytes.len() >= MIN_NONCE_SECRET_BYTES => Some(NonceSettings {
            secret: Secret(bytes),
            lifetime,
        }),
        Ok(_) => {
            problems.add(
                field,
                format!("the secret holds fewer than {MIN_NONCE_SECRET_BYTES} bytes"),
            );
            None
        }
        Err(message) => {
            problems.add(field, message);
            None
        }
    }
}
