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
mod jwks;
mod keyset;
pub(crate) mod memo;
pub(crate) mod token;

use std::{collections::HashMap, sync::Arc};

use jsonwebtoken::{
    Algorithm, AlgorithmFamily, DecodingKey, Header, Validation, errors::ErrorKind,
};
use serde_json::{Map, Value};

use cache::KeyBinding;
pub use cache::TokenCache;
use claims::ClaimRules;
pub use claims::{Confirmation, VerifiedClaims};
use jwks::JwksCache;
pub use jwks::KeyStatus;
pub use keyset::KeySet;
use keyset::VerifyingKey;

use crate::{
    config::{
        Config, DEFAULT_ACCESS_TOKEN_TYPES, EntraVersion, IssuerConfig, IssuerName, ScopeClaim,
        SenderConstraint, TenantAllowList, media_type,
    },
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

struct IssuerVerifier {
    name: Arc<str>,
    leeway_secs: u64,
    /// For a template issuer: the text around `{tenantid}`.
    template: Option<(String, String)>,
    /// One `Validation` per allowed algorithm: jsonwebtoken requires every algorithm of a
    /// `Validation` to belong to the key's family.
    validations: HashMap<Algorithm, Validation>,
    jwks: Option<Arc<JwksCache>>,
    hmac: Option<DecodingKey>,
    /// Accepted JOSE `typ` values; `None`: the defaults, or no `typ` at all.
    require_typ: Option<Vec<String>>,
    allowed_tenants: Option<TenantAllowList>,
    allowed_clients: Option<Vec<String>>,
    /// Whether unbound tokens are accepted.
    sender_constraint: SenderConstraint,
    /// What the issuer accepts, said in words (for `portcullis check`).
    summary: String,
    /// Which claims name the scopes and the calling application.
    rules: ClaimRules,
    /// An Entra issuer: `Some(tenant)`, the tenant a token's `tid` must name (`None`: the
    /// template's, from `iss`).
    entra_tenant: Option<Option<String>>,
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
        let parsed = token::parse(token, self.max_token_bytes)?;
        let (issuer, tenant) = self
            .issuer_for(&parsed.iss)
            .ok_or(DenyReason::UnknownIssuer)?;
        let (claims, binding) = issuer.verify(token, &parsed.header, tenant).await?;
        let claims = Arc::new(claims);
        if self.cache.enabled()
            && let Some(exp) = claims.claims.get("exp").and_then(Value::as_f64)
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

impl IssuerVerifier {
    fn new(config: &IssuerConfig, name: Arc<str>, jwks: Option<Arc<JwksCache>>) -> Self {
        let template = match &config.issuer {
            IssuerName::Exact(_) => None,
            IssuerName::Template { prefix, suffix, .. } => Some((prefix.clone(), suffix.clone())),
        };
        let validations = config
            .algorithms
            .iter()
            .map(|alg| {
                let mut validation = Validation::new(*alg);
                if let IssuerName::Exact(exact) = &config.issuer {
                    validation.set_issuer(&[exact]);
                }
                validation.set_audience(&config.audiences);
                validation.set_required_spec_claims(&["exp", "iss", "aud"]);
                validation.leeway = config.leeway.as_secs();
                validation.validate_exp = true;
                validation.validate_nbf = true;
                validation.validate_aud = true;
                (*alg, validation)
            })
            .collect();
        IssuerVerifier {
            name,
            leeway_secs: config.leeway.as_secs(),
            template,
            validations,
            jwks,
            hmac: config
                .hmac_secret
                .as_ref()
                .map(|secret| DecodingKey::from_secret(&secret.0)),
            require_typ: config.require_typ.clone(),
            allowed_tenants: config.allowed_tenants.clone(),
            allowed_clients: config.allowed_clients.clone(),
            sender_constraint: config.sender_constraint,
            summary: summary(config),
            rules: ClaimRules {
                scope_claim: config.scope_claim.map(ScopeClaim::name),
                client_claim: config.entra.as_ref().map(|e| match e.version {
                    EntraVersion::V1 => "appid",
                    EntraVersion::V2 => "azp",
                }),
                step_up_challenge: config.step_up_challenge,
            },
            entra_tenant: config.entra.as_ref().map(|e| e.tenant.clone()),
        }
    }

    /// Verifies `token` for this issuer; also returns the key that verified it, so that a
    /// cached result can be dropped when that key leaves the key set.
    async fn verify(
        &self,
        token: &str,
        header: &Header,
        iss_tenant: Option<&str>,
    ) -> Result<(VerifiedClaims, Option<KeyBinding>), DenyReason> {
        let alg = header.alg;
        let validation = self
            .validations
            .get(&alg)
            .ok_or(DenyReason::DisallowedAlgorithm)?;
        if !typ_accepted(header.typ.as_deref(), self.require_typ.as_deref()) {
            return Err(DenyReason::WrongTokenType);
        }
        let (claims, binding) = if alg.family() == AlgorithmFamily::Hmac {
            let key = self.hmac.as_ref().ok_or(DenyReason::DisallowedAlgorithm)?;
            (decode(token, key, validation)?, None)
        } else {
            let jwks = self.jwks.as_ref().ok_or(DenyReason::DisallowedAlgorithm)?;
            let (claims, key) = match header.kid.as_deref() {
                Some(kid) => {
                    let keys = jwks.keys(kid).await.into_result()?;
                    let fitting = keys.iter().filter(|key| key.fits(alg));
                    if keys.iter().all(|key| !key.fits(alg)) {
                        return Err(DenyReason::KeyMismatch);
                    }
                    verify_with_any(token, fitting, validation)?
                }
                None => verify_without_kid(jwks, token, alg, validation).await?,
            };
            let binding = KeyBinding {
                jwks: jwks.clone(),
                key,
                kid: header.kid.clone(),
                alg,
            };
            (claims, Some(binding))
        };
        check_lifetime(
            &claims,
            jsonwebtoken::get_current_timestamp(),
            self.leeway_secs,
        )?;
        let claims = VerifiedClaims::read(self.name.clone(), claims, self.rules)?;
        self.check_tenant_and_client(&claims, iss_tenant)?;
        let cnf = &claims.confirmation;
        if !self
            .sender_constraint
            .admits(cnf.jkt.is_some(), cnf.x5t_s256.is_some())
        {
            return Err(DenyReason::SenderConstraintRequired);
        }
        Ok((claims, binding))
    }

    fn check_tenant_and_client(
        &self,
        claims: &VerifiedClaims,
        iss_tenant: Option<&str>,
    ) -> Result<(), DenyReason> {
        let tid = claims.claims.get("tid").and_then(Value::as_str);
        // A template issuer names the tenant, and so does an Entra one: the token's own
        // `tid` must agree.
        let named = match &self.entra_tenant {
            Some(Some(tenant)) => Some(tenant.as_str()),
            Some(None) | None => iss_tenant,
        };
        if (named.is_some() || self.entra_tenant.is_some())
            && !tid.is_some_and(|tid| named.is_some_and(|n| tid.eq_ignore_ascii_case(n)))
        {
            return Err(DenyReason::UnknownIssuer);
        }
        if let Some(TenantAllowList::Only(tenants)) = &self.allowed_tenants {
            let tenant = tid.or(iss_tenant).map(str::to_ascii_lowercase);
            if !tenant.is_some_and(|t| tenants.contains(&t)) {
                return Err(DenyReason::TenantNotAllowed);
            }
        }
        if let Some(clients) = &self.allowed_clients
            && !claims
                .client_id()
                .is_some_and(|c| clients.iter().any(|a| a == c))
        {
            return Err(DenyReason::ClientNotAllowed);
        }
        Ok(())
    }
}

/// An issuer's acceptance rules in one line.
fn summary(config: &IssuerConfig) -> String {
    let algorithms: Vec<String> = config.algorithms.iter().map(|a| format!("{a:?}")).collect();
    let typ = match &config.require_typ {
        None => format!("none or {}", DEFAULT_ACCESS_TOKEN_TYPES.join(" or ")),
        Some(list) => list.join(" or "),
    };
    let mut text = format!(
        "aud {:?}, alg [{}], typ {typ}, leeway {}s",
        config.audiences,
        algorithms.join(", "),
        config.leeway.as_secs()
    );
    if let Some(clients) = &config.allowed_clients {
        text.push_str(&format!(", clients {clients:?}"));
    }
    match &config.allowed_tenants {
        Some(TenantAllowList::Only(tenants)) => text.push_str(&format!(", tenants {tenants:?}")),
        Some(TenantAllowList::Any) => text.push_str(", any tenant"),
        None => {}
    }
    if config.sender_constraint != SenderConstraint::Optional {
        text.push_str(&format!(
            ", sender constraint {}",
            config.sender_constraint.as_str()
        ));
    }
    text
}

/// RFC 8725 §3.11 / RFC 9068: whether the JOSE `typ` marks an access token — one of the
/// issuer's `require_typ` (then a `typ` is required), or else no `typ`, `JWT` or `at+jwt`.
/// Compared case-insensitively, with or without the `application/` prefix.
fn typ_accepted(typ: Option<&str>, required: Option<&[String]>) -> bool {
    let typ = typ.map(media_type);
    match (typ, required) {
        (None, None) => true,
        (None, Some(_)) => false,
        (Some(typ), None) => DEFAULT_ACCESS_TOKEN_TYPES.contains(&typ.as_str()),
        (Some(typ), Some(required)) => required.contains(&typ),
    }
}

/// What jsonwebtoken leaves to us: a token is expired from `exp` + leeway on (it accepts
/// the exact second), and a token issued (`iat`) more than the leeway in the future is
/// not valid yet.
fn check_lifetime(claims: &Map<String, Value>, now: u64, leeway: u64) -> Result<(), DenyReason> {
    let now = now as f64;
    let leeway = leeway as f64;
    if let Some(exp) = claims.get("exp").and_then(Value::as_f64)
        && now >= exp + leeway
    {
        return Err(DenyReason::Expired);
    }
    match claims.get("iat") {
        None => Ok(()),
        Some(iat) => match iat.as_f64() {
            Some(iat) if iat > now + leeway => Err(DenyReason::NotYetValid),
            Some(_) => Ok(()),
            None => Err(DenyReason::MalformedToken),
        },
    }
}

/// A token without `kid`: try every key of the issuer that fits `alg`; returns the claims
/// and the key that verified them.
async fn verify_without_kid(
    jwks: &JwksCache,
    token: &str,
    alg: Algorithm,
    validation: &Validation,
) -> Result<(Map<String, Value>, Arc<VerifyingKey>), DenyReason> {
    let has_candidate = |set: &KeySet| set.candidates(alg).next().is_some();
    if !jwks.usable().is_some_and(|s| has_candidate(&s.keys)) {
        jwks.refresh_on_miss(has_candidate).await;
    }
    let snapshot = jwks.usable().ok_or(DenyReason::KeysUnavailable)?;
    verify_with_any(token, snapshot.keys.candidates(alg), validation)
}

/// Verifies `token` with the first of `keys` its signature verifies with; returns the
/// claims and that key. `UnknownKid` when there is none to try.
fn verify_with_any<'k>(
    token: &str,
    keys: impl Iterator<Item = &'k Arc<VerifyingKey>>,
    validation: &Validation,
) -> Result<(Map<String, Value>, Arc<VerifyingKey>), DenyReason> {
    let mut outcome = Err(DenyReason::UnknownKid);
    for key in keys {
        match decode(token, &key.key, validation) {
            Ok(claims) => return Ok((claims, key.clone())),
            Err(reason) => outcome = Err(reason),
        }
        // Only a signature that does not verify makes another key worth trying.
        if !matches!(outcome, Err(DenyReason::BadSignature)) {
            break;
        }
    }
    outcome
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

#[cfg(test)]
mod tests;
