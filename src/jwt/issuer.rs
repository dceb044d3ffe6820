//! One configured issuer's verification: its name or tenant template, allowed algorithms,
//! accepted `typ`, keys (JWKS or HMAC secret), lifetime with leeway, and its tenant and
//! calling-app allow-lists, applied to a token the structural checks let through.

use std::{collections::HashMap, sync::Arc};

use jsonwebtoken::{
    Algorithm, AlgorithmFamily, DecodingKey, Header, Validation, errors::ErrorKind,
};
use serde::de::IgnoredAny;

use super::{
    cache::KeyBinding,
    claims::{Claim, ClaimRules, Claims, VerifiedClaims},
    jwks::JwksCache,
    keyset::{KeySet, VerifyingKey},
};
use crate::{
    config::{
        DEFAULT_ACCESS_TOKEN_TYPES, EntraVersion, IssuerConfig, IssuerName, ScopeClaim,
        SenderConstraint, TenantAllowList, media_type,
    },
    deny::DenyReason,
};

pub(super) struct IssuerVerifier {
    pub(super) name: Arc<str>,
    pub(super) leeway_secs: u64,
    /// For a template issuer: the text around `{tenantid}`.
    pub(super) template: Option<(String, String)>,
    /// One `Validation` per allowed algorithm: jsonwebtoken requires every algorithm of a
    /// `Validation` to belong to the key's family.
    pub(super) validations: HashMap<Algorithm, Validation>,
    pub(super) jwks: Option<Arc<JwksCache>>,
    pub(super) hmac: Option<DecodingKey>,
    /// Accepted JOSE `typ` values; `None`: the defaults, or no `typ` at all.
    pub(super) require_typ: Option<Vec<String>>,
    pub(super) allowed_tenants: Option<TenantAllowList>,
    pub(super) allowed_clients: Option<Vec<String>>,
    /// Whether unbound tokens are accepted.
    pub(super) sender_constraint: SenderConstraint,
    /// What the issuer accepts, said in words (for `portcullis check`).
    pub(super) summary: String,
    /// Which claims name the scopes and the calling application.
    pub(super) rules: ClaimRules,
    /// An Entra issuer: `Some(tenant)`, the tenant a token's `tid` must name (`None`: the
    /// template's, from `iss`).
    pub(super) entra_tenant: Option<Option<String>>,
}
impl IssuerVerifier {
    pub(super) fn new(config: &IssuerConfig, name: Arc<str>, jwks: Option<Arc<JwksCache>>) -> Self {
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

    /// Verifies `token`, whose `header` and `claims` [`super::token::parse`] read, for this
    /// issuer; also returns the key that verified it, so that a cached result can be
    /// dropped when that key leaves the key set.
    pub(super) async fn verify(
        &self,
        token: &str,
        header: Header,
        claims: Claims,
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
        let binding = if alg.family() == AlgorithmFamily::Hmac {
            let key = self.hmac.as_ref().ok_or(DenyReason::DisallowedAlgorithm)?;
            decode(token, key, validation)?;
            None
        } else {
            let jwks = self.jwks.as_ref().ok_or(DenyReason::DisallowedAlgorithm)?;
            let key = match header.kid.as_deref() {
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
            Some(KeyBinding {
                jwks: jwks.clone(),
                key,
            })
        };
        check_lifetime(
            &claims,
            jsonwebtoken::get_current_timestamp(),
            self.leeway_secs,
        )?;
        let claims = VerifiedClaims::read(self.name.clone(), claims, self.rules)?;
        self.check_tenant_and_client(&claims, iss_tenant)?;
        let cnf = claims.confirmation();
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
        let tid = claims.claims.get("tid").and_then(Claim::as_str);
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
pub(super) fn typ_accepted(typ: Option<&str>, required: Option<&[String]>) -> bool {
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
pub(super) fn check_lifetime(claims: &Claims, now: u64, leeway: u64) -> Result<(), DenyReason> {
    let now = now as f64;
    let leeway = leeway as f64;
    if let Some(exp) = claims.get("exp").and_then(Claim::as_f64)
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

/// A token without `kid`: try every key of the issuer that fits `alg`; returns the key
/// that verified it.
async fn verify_without_kid(
    jwks: &JwksCache,
    token: &str,
    alg: Algorithm,
    validation: &Validation,
) -> Result<Arc<VerifyingKey>, DenyReason> {
    let has_candidate = |set: &KeySet| set.candidates(alg).next().is_some();
    if !jwks.usable().is_some_and(|s| has_candidate(&s.keys)) {
        jwks.refresh_on_miss(has_candidate).await;
    }
    let snapshot = jwks.usable().ok_or(DenyReason::KeysUnavailable)?;
    verify_with_any(token, snapshot.keys.candidates(alg), validation)
}

/// Verifies `token` with the first of `keys` its signature verifies with; returns that
/// key. `UnknownKid` when there is none to try.
fn verify_with_any<'k>(
    token: &str,
    keys: impl Iterator<Item = &'k Arc<VerifyingKey>>,
    validation: &Validation,
) -> Result<Arc<VerifyingKey>, DenyReason> {
    let mut outcome = Err(DenyReason::UnknownKid);
    for key in keys {
        match decode(token, &key.key, validation) {
            Ok(()) => return Ok(key.clone()),
            Err(reason) => outcome = Err(reason),
        }
        // Only a signature that does not verify makes another key worth trying.
        if !matches!(outcome, Err(DenyReason::BadSignature)) {
            break;
        }
    }
    outcome
}

/// jsonwebtoken's verification of `token`: signature, algorithm and the standard claims
/// under `validation`. The claims themselves were read by `parse` from the same bytes, so
/// they are not built again here (`IgnoredAny`).
fn decode(token: &str, key: &DecodingKey, validation: &Validation) -> Result<(), DenyReason> {
    jsonwebtoken::decode::<IgnoredAny>(token, key, validation)
        .map(|_| ())
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
