//! Step 3 of a Check: verify a bearer JWT and return its claims, or the typed reason it
//! was refused. The issuer is chosen by the token's `iss` among the configured ones (an
//! exact name, or a multi-tenant `{tenantid}` template whose tenant must equal the
//! token's `tid`); the token's `alg` must be in that issuer's allow-list and its `typ`
//! must be the required one, if any; the key comes from that issuer's own JWKS (`jwks`)
//! — never from the token (`jwk`, `jku`, `x5u`, `x5c` are ignored) — or, for
//! HS256/384/512, from the configured secret; signature, `exp` (required), `nbf`, `iss`
//! and `aud` are checked by `jsonwebtoken`; then the issuer's tenant and client
//! allow-lists. Structural checks come first (`token`): size, three segments, no
//! duplicate JSON keys, no unimplemented JOSE extension (`crit`, `b64`, `zip`, `enc`).

mod cache;
mod claims;
pub(crate) mod crypto;
mod fetch;
mod issuer;
mod jwks;
mod keyset;
pub(crate) mod memo;
pub(crate) mod token;

use std::{collections::HashMap, sync::Arc};

pub use cache::TokenCache;
pub use claims::{Claim, Confirmation, VerifiedClaims};
use issuer::IssuerVerifier;
use jwks::JwksCache;
pub use jwks::KeyStatus;
#[cfg(fuzzing)]
pub use keyset::KeySet;

use crate::{
    config::{Config, IssuerName},
    deny::DenyReason,
    metrics::Metrics,
};

/// Verifies tokens of every configured issuer.
pub struct Verifier {
    max_token_bytes: usize,
    cache: TokenCache,
    exact: HashMap<String, Arc<IssuerVerifier>>,
    templates: Vec<Arc<IssuerVerifier>>,
    caches: Vec<Arc<JwksCache>>,
    /// The first `gating` caches serve the main file's issuers: readiness waits for them
    /// (a policy file's issuer down at start keeps only that file's tokens out).
    gating: usize,
}

// === impl Verifier ===

impl Verifier {
    /// Builds the verifier and, with `refresh`, starts each issuer's background key
    /// refresh (without it, keys are fetched only when a token needs them). Caches of
    /// `previous` (the verifier of the configuration being replaced) are kept where they
    /// still fit, keys included.
    pub fn new(
        config: &Config,
        metrics: Arc<Metrics>,
        previous: Option<&Verifier>,
        refresh: bool,
    ) -> Result<Verifier, reqwest::Error> {
        crypto::install();
        let client = reqwest::Client::builder()
            .timeout(config.jwks.fetch_timeout)
            .connect_timeout(config.jwks.fetch_timeout)
            .user_agent(concat!("portcullis/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let mut verifier = Verifier {
            max_token_bytes: config.limits.max_token_bytes,
            cache: TokenCache::new(config.limits.token_cache_entries),
            exact: HashMap::new(),
            templates: Vec::new(),
            caches: Vec::new(),
            gating: usize::MAX,
        };
        for (position, issuer) in config.all_issuers().enumerate() {
            if position == config.issuers.len() {
                verifier.gating = verifier.caches.len();
            }
            let name: Arc<str> = Arc::from(issuer.issuer.as_str());
            if issuer.insecure_http {
                tracing::warn!(
                    issuer = %name,
                    "insecure_http: this issuer's keys may be fetched over plain HTTP, where \
                     anyone on the path could serve their own and forge tokens"
                );
            }
            // One key cache per key source, shared by every issuer configured with it: a
            // rotation seen through one is seen by all (Entra serves one key set to every
            // tenant and token version).
            let jwks = issuer.jwks.as_ref().map(|source| {
                if let Some(shared) = verifier.caches.iter().find(|c| c.source() == source) {
                    shared.add_issuer(name.clone());
                    return shared.clone();
                }
                let kept = previous.and_then(|p| {
                    p.caches
                        .iter()
                        .find(|c| c.reusable_for(source, &config.jwks))
                        .cloned()
                });
                let cache = match kept {
                    Some(kept) => {
                        kept.set_issuers(vec![name.clone()]);
                        kept
                    }
                    None => Arc::new(JwksCache::new(
                        name.clone(),
                        source.clone(),
                        client.clone(),
                        &config.jwks,
                        metrics.clone(),
                    )),
                };
                if refresh {
                    cache.start();
                }
                verifier.caches.push(cache.clone());
                cache
            });
            let built = Arc::new(IssuerVerifier::new(issuer, name, jwks));
            match &issuer.issuer {
                IssuerName::Exact(exact) => {
                    verifier.exact.insert(exact.clone(), built);
                }
                IssuerName::Template { .. } => verifier.templates.push(built),
            }
        }
        Ok(verifier)
    }

    /// Verifies `token` and returns its claims — from the cache of verified tokens when it
    /// was verified before and is still valid. A cache hit completes without suspending;
    /// the verification (which may wait for a key fetch) is boxed, so that the future of
    /// every Check stays small.
    pub async fn verify(&self, token: &str) -> Result<Arc<VerifiedClaims>, DenyReason> {
        if token.len() > self.max_token_bytes {
            return Err(DenyReason::TokenTooLarge);
        }
        if self.cache.enabled()
            && let Some(claims) = self.cache.get(token, jsonwebtoken::get_current_timestamp())
        {
            return Ok(claims);
        }
        Box::pin(self.verify_uncached(token)).await
    }

    async fn verify_uncached(&self, token: &str) -> Result<Arc<VerifiedClaims>, DenyReason> {
        let token::ParsedToken {
            header,
            iss,
            claims,
        } = token::parse(token, self.max_token_bytes)?;
        let (issuer, tenant) = self.issuer_for(&iss).ok_or(DenyReason::UnknownIssuer)?;
        let (claims, binding) = issuer.verify(token, header, claims, tenant).await?;
        let claims = Arc::new(claims);
        if self.cache.enabled()
            && let Some(exp) = claims.claims.get("exp").and_then(Claim::as_f64)
        {
            let expires_at = (exp.max(0.0) as u64).saturating_add(issuer.leeway_secs);
            self.cache
                .insert(token, claims.clone(), expires_at, binding);
        }
        Ok(claims)
    }

    /// The verified-token cache, for metrics.
    pub fn token_cache(&self) -> &TokenCache {
        &self.cache
    }

    /// The issuer whose name matches `iss`, and for a template the tenant it names.
    fn issuer_for<'a>(&self, iss: &'a str) -> Option<(&IssuerVerifier, Option<&'a str>)> {
        if let Some(exact) = self.exact.get(iss) {
            return Some((exact, None));
        }
        self.templates.iter().find_map(|issuer| {
            let (prefix, suffix) = issuer.template.as_ref()?;
            let tenant = iss
                .strip_prefix(prefix.as_str())?
                .strip_suffix(suffix.as_str())?;
            let plausible = !tenant.is_empty() && !tenant.contains(['/', '?', '#']);
            plausible.then_some((issuer.as_ref(), Some(tenant)))
        })
    }

    /// What the issuer a token naming `iss` would be checked by accepts (audiences,
    /// algorithms, `typ`, leeway, allow-lists), or the configured issuer names when none
    /// matches: what `portcullis check` shows beside the token.
    pub fn describe(&self, iss: &str) -> String {
        match self.issuer_for(iss) {
            Some((issuer, _)) => format!("{:?} accepts {}", &*issuer.name, issuer.summary),
            None => {
                let names: Vec<&str> = self
                    .exact
                    .values()
                    .chain(&self.templates)
                    .map(|i| &*i.name)
                    .collect();
                format!("no configured issuer has this iss; configured: {names:?}")
            }
        }
    }

    /// Whether every issuer that uses a JWKS has obtained a key set (readiness).
    pub fn all_keys_loaded(&self) -> bool {
        self.caches
            .iter()
            .take(self.gating)
            .all(|cache| cache.is_loaded())
    }

    /// Each JWKS issuer's key status, for `/readyz` and metrics.
    pub fn key_status(&self) -> Vec<KeyStatus> {
        self.exact
            .values()
            .chain(&self.templates)
            .filter_map(|issuer| Some(issuer.jwks.as_ref()?.status(&issuer.name)))
            .collect()
    }
}

// === impl IssuerVerifier ===

#[cfg(test)]
mod tests;
