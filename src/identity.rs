//! Part of step 5 (respond): the signed identity — a short-lived JWT portcullis signs on
//! allow, carrying who called (from the verified token) and which route allowed it, for
//! an upstream to verify against portcullis's published keys instead of trusting the
//! network; and that JWKS. Its lifetime never passes the verified token's `exp` nor
//! `max_lifetime`; an answer carrying one is remembered only for half its lifetime
//! ([`Minter::fresh_until`]), so the upstream always gets a token with time left.

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Map, Value};

use crate::{
    binding::thumbprint,
    config::{Access, IdentityClaim, SignedIdentity},
    jwt::{Claim, VerifiedClaims},
    policy::Route,
};

/// Signs identities with the first configured key; publishes every key.
pub struct Minter {
    header: Header,
    key: EncodingKey,
    config: SignedIdentity,
    /// The public keys, serialised once.
    jwks: String,
}

impl std::fmt::Debug for Minter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Minter")
            .field("kid", &self.header.kid)
            .field("header", &self.config.header)
            .finish()
    }
}

impl Minter {
    /// `None` without a signing key (validation refuses such a configuration).
    pub fn new(config: &SignedIdentity) -> Option<Minter> {
        let signing = config.keys.first()?;
        let key = match signing.algorithm {
            Algorithm::EdDSA => EncodingKey::from_ed_der(&signing.der.0),
            _ => EncodingKey::from_ec_der(&signing.der.0),
        };
        // Each key as published: its kid (given, or its RFC 7638 thumbprint), use, alg.
        let published: Vec<Value> = config
            .keys
            .iter()
            .map(|k| {
                let mut jwk = k.public.clone();
                let kid = k.kid.clone().or_else(|| thumbprint(&k.public));
                if let Value::Object(members) = &mut jwk {
                    members.insert("kid".into(), kid.into());
                    members.insert("use".into(), "sig".into());
                    let alg = match k.algorithm {
                        Algorithm::EdDSA => "EdDSA",
                        _ => "ES256",
                    };
                    members.insert("alg".into(), alg.into());
                }
                jwk
            })
            .collect();
        let mut header = Header::new(signing.algorithm);
        header.kid = published
            .first()
            .and_then(|jwk| jwk["kid"].as_str())
            .map(str::to_owned);
        Some(Minter {
            header,
            key,
            config: config.clone(),
            jwks: serde_json::json!({ "keys": published }).to_string(),
        })
    }

    /// The signing key files, the first signing: a change to one is a rotation, applied
    /// by reloading the configuration.
    pub fn key_files(&self) -> impl Iterator<Item = &std::path::Path> {
        self.config.keys.iter().map(|k| k.path.as_path())
    }

    /// The header the identity travels in.
    pub fn header_name(&self) -> &str {
        &self.config.header
    }

    /// The JWKS an upstream verifies with (`/.well-known/jwks.json` on the admin port).
    pub fn jwks(&self) -> &str {
        &self.jwks
    }

    /// Whether allows on `route` carry the identity: routes that verify a token, as the
    /// route says or else as `every_route` says.
    pub fn signs(&self, route: &Route) -> bool {
        !matches!(route.access, Access::Anonymous)
            && route.signed_identity.unwrap_or(self.config.every_route)
    }

    /// When the identity expires if minted at `now` for `claims`: `max_lifetime` from now,
    /// never after the verified token's `exp`.
    fn expiry(&self, now: u64, claims: &VerifiedClaims) -> u64 {
        let longest = now.saturating_add(self.config.max_lifetime.as_secs());
        // `exp` is a JSON number, integral or not (verification read it as such).
        let exp = claims.claims.get("exp").and_then(|exp| {
            exp.as_u64()
                .or_else(|| exp.as_f64().map(|seconds| seconds.max(0.0) as u64))
        });
        exp.map_or(longest, |exp| exp.min(longest))
    }

    /// Until when an answer carrying an identity minted at `now` may be sent again: half
    /// its lifetime.
    pub fn fresh_until(&self, now: u64, claims: &VerifiedClaims) -> u64 {
        let expiry = self.expiry(now, claims);
        now + expiry.saturating_sub(now) / 2
    }

    /// The signed identity of `claims` allowed on `route`, minted at `now`; `None` if
    /// signing failed (logged; the header is then removed, never sent unsigned).
    pub fn mint(&self, route: &Route, claims: &VerifiedClaims, now: u64) -> Option<String> {
        let mut payload = Map::new();
        payload.insert("iss".into(), self.config.issuer.clone().into());
        payload.insert("aud".into(), self.config.audience.clone().into());
        payload.insert("iat".into(), now.into());
        payload.insert("exp".into(), self.expiry(now, claims).into());
        for claim in &self.config.claims {
            let value: Option<Value> = match claim {
                IdentityClaim::Subject => claims.claims.get("sub").map(Claim::to_value),
                IdentityClaim::ObjectId => claims.claims.get("oid").map(Claim::to_value),
                IdentityClaim::TenantId => claims.claims.get("tid").map(Claim::to_value),
                IdentityClaim::Client => claims.client_id().map(Value::from),
                IdentityClaim::Scopes => {
                    let scopes: Vec<&str> = claims.scopes().collect();
                    (!scopes.is_empty()).then(|| scopes.join(" ").into())
                }
                IdentityClaim::Roles => {
                    let roles: Vec<&str> = claims.roles().collect();
                    (!roles.is_empty()).then(|| roles.into())
                }
                IdentityClaim::Route => Some(route.name.to_string().into()),
                IdentityClaim::IdentityProvider => Some(claims.issuer.to_string().into()),
                IdentityClaim::TokenId => ["jti", "uti"]
                    .iter()
                    .find_map(|name| claims.claims.get(name))
                    .map(Claim::to_value),
            };
            if let Some(value) = value.filter(|v| !v.is_null()) {
                payload.insert(claim.name().into(), value);
            }
        }
        jsonwebtoken::encode(&self.header, &payload, &self.key)
            .inspect_err(|error| tracing::error!(%error, "Signing the identity failed"))
            .ok()
    }
}

#[cfg(test)]
mod tests;
