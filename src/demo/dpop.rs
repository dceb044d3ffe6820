//! A DPoP client's side (RFC 9449 §4): a key pair and the proofs it signs, for the demo
//! walkthrough, the tests and the benches. Nothing here verifies anything: proofs are
//! checked by `binding`.

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, Header};
use serde_json::{Value, json};

use super::keys::{KeyError, SigningKey};

/// A client's proof-of-possession key.
pub struct DpopKey {
    key: SigningKey,
    thumbprint: String,
}

impl DpopKey {
    /// A fresh P-256 key (ES256: what most DPoP clients use).
    pub fn es256() -> Result<DpopKey, KeyError> {
        DpopKey::from_signing_key(SigningKey::es256("dpop")?)
    }

    /// A fresh RSA-2048 key for `alg` (RS256…PS512).
    pub fn rsa(alg: Algorithm) -> Result<DpopKey, KeyError> {
        DpopKey::from_signing_key(SigningKey::rsa("dpop", alg)?)
    }

    /// A fresh Ed25519 key (EdDSA).
    pub fn ed25519() -> Result<DpopKey, KeyError> {
        DpopKey::from_signing_key(SigningKey::ed25519("dpop")?)
    }

    fn from_signing_key(key: SigningKey) -> Result<DpopKey, KeyError> {
        let thumbprint = crate::binding::thumbprint(key.jwk()).ok_or(KeyError::Generate)?;
        Ok(DpopKey { key, thumbprint })
    }

    /// The RFC 7638 thumbprint: what a token bound to this key carries as `cnf.jkt`.
    pub fn thumbprint(&self) -> &str {
        &self.thumbprint
    }

    /// The public JWK.
    pub fn jwk(&self) -> &Value {
        self.key.jwk()
    }

    /// A proof for `method` on `htu` presenting `token` (its `ath`), with a fresh `jti`,
    /// `iat` now, and `nonce` when given.
    pub fn proof(
        &self,
        method: &str,
        htu: &str,
        token: Option<&str>,
        nonce: Option<&str>,
    ) -> Result<String, KeyError> {
        let mut claims = json!({
            "jti": fresh_jti()?,
            "htm": method,
            "htu": htu,
            "iat": jsonwebtoken::get_current_timestamp(),
        });
        if let Some(token) = token {
            claims["ath"] = Value::String(crate::binding::sha256_base64url(token.as_bytes()));
        }
        if let Some(nonce) = nonce {
            claims["nonce"] = Value::String(nonce.to_owned());
        }
        self.sign(&claims)
    }

    /// Signs any claims as a proof (`typ: dpop+jwt`, this key's `alg` and public `jwk`):
    /// for tests that need a proof wrong in one particular way.
    pub fn sign(&self, claims: &Value) -> Result<String, KeyError> {
        let mut header = Header::new(self.key.alg);
        header.typ = Some("dpop+jwt".to_owned());
        header.jwk = Some(serde_json::from_value(self.key.jwk().clone())?);
        self.key.sign_with_header(&header, claims)
    }
}

/// 128 random bits, base64url: a proof's `jti`.
fn fresh_jti() -> Result<String, KeyError> {
    let mut bytes = [0u8; 16];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| KeyError::Generate)?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}
