//! Step 2 of a Check: verify a bearer JWT and return its claims, or the typed reason it
//! was refused. The issuer is chosen by the token's `iss` among the configured ones; the
//! token's `alg` must be in that issuer's allow-list; the key comes from that issuer's own
//! JWKS (`jwks`) — never from the token (`jwk`, `jku`, `x5u`, `x5c` are ignored) — or, for
//! HS256/384/512, from the configured secret; signature, `exp` (required), `nbf`, `iss`
//! and `aud` are checked by `jsonwebtoken`. Tokens with a `crit` header are refused, since
//! no extension is understood here.

mod claims;
pub mod jwks;

use std::{collections::HashMap, sync::Arc, time::Duration};

use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, Validation, errors::ErrorKind};
use serde::Deserialize;
use serde_json::{Map, Value};
use tokio::task::JoinHandle;

pub use claims::VerifiedClaims;
pub use jwks::{JwksCache, JwksError, KeySet};

use crate::{
    config::{Config, IssuerConfig, JwksSettings},
    deny::DenyReason,
};

/// Delay before retrying an issuer whose keys could not be fetched yet, doubled up to
/// [`MAX_INITIAL_RETRY`] while it stays unreachable.
const FIRST_INITIAL_RETRY: Duration = Duration::from_millis(500);
const MAX_INITIAL_RETRY: Duration = Duration::from_secs(30);

/// Verifies tokens of every configured issuer.
pub struct Verifier {
    issuers: HashMap<String, IssuerVerifier>,
    settings: JwksSettings,
}

struct IssuerVerifier {
    name: Arc<str>,
    /// One `Validation` per allowed algorithm: jsonwebtoken requires every algorithm of a
    /// `Validation` to belong to the key's family.
    validations: HashMap<Algorithm, Validation>,
    jwks: Option<Arc<JwksCache>>,
    hmac: Option<DecodingKey>,
}

/// The unverified claims read before choosing the issuer. `exp`/`nbf` are looked at too, so
/// that a wrong type is reported as malformed rather than missing (jsonwebtoken treats an
/// unparsable time claim as absent).
#[derive(Deserialize)]
struct ClaimsPeek {
    iss: Option<Value>,
    exp: Option<Value>,
    nbf: Option<Value>,
}

impl Verifier {
    /// Builds the verifier; keys are fetched later (see [`Verifier::spawn_refreshers`]).
    pub fn new(config: &Config) -> Result<Verifier, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(config.jwks.fetch_timeout)
            .connect_timeout(config.jwks.fetch_timeout)
            .user_agent(concat!("portcullis/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let issuers = config
            .issuers
            .iter()
            .map(|issuer| {
                let verifier = IssuerVerifier::new(issuer, &client, &config.jwks);
                (issuer.issuer.clone(), verifier)
            })
            .collect();
        Ok(Verifier {
            issuers,
            settings: config.jwks.clone(),
        })
    }

    /// Verifies `token` and returns its claims.
    pub async fn verify(&self, token: &str) -> Result<VerifiedClaims, DenyReason> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| DenyReason::MalformedToken)?;
        if header.crit.is_some() {
            return Err(DenyReason::MalformedToken);
        }
        let peek: ClaimsPeek = jsonwebtoken::dangerous::insecure_decode_claims(token)
            .map_err(|_| DenyReason::MalformedToken)?;
        if [&peek.exp, &peek.nbf]
            .iter()
            .any(|t| t.as_ref().is_some_and(|v| !v.is_number()))
        {
            return Err(DenyReason::MalformedToken);
        }
        let iss = match peek.iss {
            Some(Value::String(iss)) => iss,
            Some(_) => return Err(DenyReason::MalformedToken),
            None => return Err(DenyReason::MissingClaim),
        };
        let issuer = self.issuers.get(&iss).ok_or(DenyReason::UnknownIssuer)?;
        issuer
            .verify(token, header.alg, header.kid.as_deref())
            .await
    }

    /// Whether every issuer that uses a JWKS has a key set.
    pub fn all_keys_loaded(&self) -> bool {
        self.caches().all(|cache| cache.is_loaded())
    }

    fn caches(&self) -> impl Iterator<Item = &Arc<JwksCache>> {
        self.issuers.values().filter_map(|i| i.jwks.as_ref())
    }

    /// Starts one task per JWKS issuer: fetch now (retrying with backoff until it works),
    /// then refresh every `refresh_interval`. The tasks stop when the returned guard drops.
    pub fn spawn_refreshers(&self) -> RefresherGuard {
        let interval = self.settings.refresh_interval;
        let tasks = self
            .caches()
            .map(|cache| {
                let cache = cache.clone();
                tokio::spawn(async move {
                    let mut retry = FIRST_INITIAL_RETRY;
                    while cache.refresh("initial").await.is_err() {
                        tokio::time::sleep(retry).await;
                        retry = (retry * 2).min(MAX_INITIAL_RETRY);
                    }
                    loop {
                        tokio::time::sleep(interval).await;
                        let _ = cache.refresh("periodic").await;
                    }
                })
            })
            .collect();
        RefresherGuard { tasks }
    }
}

/// Owns the background JWKS refresh tasks; dropping it stops them.
pub struct RefresherGuard {
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for RefresherGuard {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl IssuerVerifier {
    fn new(config: &IssuerConfig, client: &reqwest::Client, settings: &JwksSettings) -> Self {
        let name: Arc<str> = Arc::from(config.issuer.as_str());
        let validations = config
            .algorithms
            .iter()
            .map(|alg| {
                let mut validation = Validation::new(*alg);
                validation.set_issuer(&[&config.issuer]);
                validation.set_audience(&config.audiences);
                validation.set_required_spec_claims(&["exp", "iss", "aud"]);
                validation.leeway = config.leeway.as_secs();
                validation.validate_exp = true;
                validation.validate_nbf = true;
                validation.validate_aud = true;
                (*alg, validation)
            })
            .collect();
        let jwks = config.jwks_uri.as_ref().map(|url| {
            Arc::new(JwksCache::new(
                name.clone(),
                url.clone(),
                client.clone(),
                settings.unknown_kid_cooldown,
            ))
        });
        let hmac = config
            .hmac_secret
            .as_ref()
            .map(|secret| DecodingKey::from_secret(&secret.0));
        IssuerVerifier {
            name,
            validations,
            jwks,
            hmac,
        }
    }

    async fn verify(
        &self,
        token: &str,
        alg: Algorithm,
        kid: Option<&str>,
    ) -> Result<VerifiedClaims, DenyReason> {
        let validation = self
            .validations
            .get(&alg)
            .ok_or(DenyReason::DisallowedAlgorithm)?;
        let claims = if alg.family() == AlgorithmFamily::Hmac {
            let key = self.hmac.as_ref().ok_or(DenyReason::DisallowedAlgorithm)?;
            decode(token, key, validation)?
        } else {
            let jwks = self.jwks.as_ref().ok_or(DenyReason::DisallowedAlgorithm)?;
            match kid {
                Some(kid) => {
                    let key = jwks.key(kid).await.into_result()?;
                    if !key.fits(alg) {
                        return Err(DenyReason::KeyMismatch);
                    }
                    decode(token, &key.key, validation)?
                }
                None => {
                    self.verify_without_kid(jwks, token, alg, validation)
                        .await?
                }
            }
        };
        VerifiedClaims::new(self.name.clone(), claims)
    }

    /// A token without `kid`: try every key of the issuer that fits `alg`.
    async fn verify_without_kid(
        &self,
        jwks: &JwksCache,
        token: &str,
        alg: Algorithm,
        validation: &Validation,
    ) -> Result<Map<String, Value>, DenyReason> {
        let has_candidate = |set: &KeySet| set.candidates(alg).next().is_some();
        if !jwks.snapshot().is_some_and(|set| has_candidate(&set)) {
            jwks.refresh_on_miss(has_candidate).await;
        }
        let set = jwks.snapshot().ok_or(DenyReason::KeysUnavailable)?;
        let mut outcome = Err(DenyReason::UnknownKid);
        for key in set.candidates(alg) {
            outcome = decode(token, &key.key, validation);
            if !matches!(outcome, Err(DenyReason::BadSignature)) {
                break;
            }
        }
        outcome
    }
}

fn decode(
    token: &str,
    key: &DecodingKey,
    validation: &Validation,
) -> Result<Map<String, Value>, DenyReason> {
    jsonwebtoken::decode::<Map<String, Value>>(token, key, validation)
        .map(|data| data.claims)
        .map_err(|error| match error.kind() {
            ErrorKind::InvalidSignature => DenyReason::BadSignature,
            ErrorKind::ExpiredSignature => DenyReason::Expired,
            ErrorKind::ImmatureSignature => DenyReason::NotYetValid,
            ErrorKind::InvalidAudience => DenyReason::WrongAudience,
            ErrorKind::InvalidIssuer => DenyReason::UnknownIssuer,
            ErrorKind::MissingRequiredClaim(_) => DenyReason::MissingClaim,
            ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm => {
                DenyReason::DisallowedAlgorithm
            }
            ErrorKind::InvalidEcdsaKey
            | ErrorKind::InvalidEddsaKey
            | ErrorKind::InvalidRsaKey(_)
            | ErrorKind::InvalidKeyFormat => DenyReason::KeyMismatch,
            _ => DenyReason::MalformedToken,
        })
}
