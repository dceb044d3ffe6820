//! A parsed JWKS document: the verification keys of one issuer, by `kid`, each with what
//! it may verify. Entries that are malformed, not for signatures (`use`, `key_ops`), HMAC
//! (`oct`: a shared secret never comes from a public URL), of an unknown type, or RSA under
//! 2048 bits are skipped, so one bad entry cannot make the others unusable.

use std::{collections::HashMap, sync::Arc};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{
    Algorithm, AlgorithmFamily, DecodingKey,
    jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, KeyOperations, PublicKeyUse},
};
use serde::Deserialize;

/// RSA keys shorter than this are never used (NIST SP 800-131A).
pub const MIN_RSA_BITS: usize = 2048;

/// Why a JWKS document gave no usable key set.
#[derive(Debug, thiserror::Error)]
pub enum KeySetError {
    #[error("not a JWKS document: {0}")]
    Json(#[from] serde_json::Error),
    #[error("no usable signing key among {0} entries")]
    NoUsableKey(usize),
    #[error("{0} entries, more than the {1} allowed")]
    TooManyKeys(usize, usize),
}

/// A verification key with what it may be used for.
pub struct VerifyingKey {
    pub key: DecodingKey,
    family: AlgorithmFamily,
    /// The JWK's own `alg`, when it declares one.
    alg: Option<Algorithm>,
    curve: Option<EllipticCurve>,
}

impl VerifyingKey {
    /// Whether this key may verify a token signed with `alg`.
    pub fn fits(&self, alg: Algorithm) -> bool {
        alg.family() == self.family
            && self.alg.is_none_or(|own| own == alg)
            && match (alg, &self.curve) {
                (Algorithm::ES256, Some(c)) => *c == EllipticCurve::P256,
                (Algorithm::ES384, Some(c)) => *c == EllipticCurve::P384,
                (Algorithm::EdDSA, Some(c)) => *c == EllipticCurve::Ed25519,
                (_, None) => !matches!(self.family, AlgorithmFamily::Ec | AlgorithmFamily::Ed),
                _ => false,
            }
    }
}

/// The keys of one JWKS document. Several keys may share a `kid` (RFC 7517 §4.5 only asks
/// that they differ in type: an EC and an RSA twin): a token is verified with those that
/// fit its `alg`.
#[derive(Default)]
pub struct KeySet {
    by_kid: HashMap<String, Vec<Arc<VerifyingKey>>>,
    /// Keys without a `kid`, tried for tokens without one.
    anonymous: Vec<Arc<VerifyingKey>>,
}

impl KeySet {
    /// The keys named `kid` (none: an empty slice).
    pub fn get(&self, kid: &str) -> &[Arc<VerifyingKey>] {
        self.by_kid.get(kid).map_or(&[], Vec::as_slice)
    }

    /// Every key that fits `alg`, for a token that names no `kid`.
    pub fn candidates(&self, alg: Algorithm) -> impl Iterator<Item = &Arc<VerifyingKey>> {
        self.by_kid
            .values()
            .flatten()
            .chain(self.anonymous.iter())
            .filter(move |k| k.fits(alg))
    }

    /// Whether `key` — that very key, not an equal one — is in this set.
    pub fn holds(&self, key: &Arc<VerifyingKey>) -> bool {
        self.by_kid
            .values()
            .flatten()
            .chain(self.anonymous.iter())
            .any(|k| Arc::ptr_eq(k, key))
    }

    pub fn len(&self) -> usize {
        self.by_kid.values().map(Vec::len).sum::<usize>() + self.anonymous.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Parses a JWKS document. Entries that are malformed, not for signatures, HMAC
    /// (`oct`: a shared secret never comes from a public URL) or RSA under 2048 bits are
    /// skipped, so one bad entry cannot make the others unusable.
    pub fn parse(document: &[u8], max_keys: usize) -> Result<(KeySet, usize), KeySetError> {
        #[derive(Deserialize)]
        struct Document {
            keys: Vec<serde_json::Value>,
        }
        let doc: Document = serde_json::from_slice(document)?;
        let total = doc.keys.len();
        if total > max_keys {
            return Err(KeySetError::TooManyKeys(total, max_keys));
        }
        let mut set = KeySet::default();
        for entry in doc.keys {
            let Ok(jwk) = serde_json::from_value::<Jwk>(entry) else {
                continue;
            };
            let Some(key) = usable_key(&jwk) else {
                continue;
            };
            match jwk.common.key_id {
                Some(kid) => set.by_kid.entry(kid).or_default().push(Arc::new(key)),
                None => set.anonymous.push(Arc::new(key)),
            }
        }
        if set.is_empty() {
            return Err(KeySetError::NoUsableKey(total));
        }
        let skipped = total - set.len();
        Ok((set, skipped))
    }
}

fn usable_key(jwk: &Jwk) -> Option<VerifyingKey> {
    if matches!(&jwk.common.public_key_use, Some(u) if *u != PublicKeyUse::Signature) {
        return None;
    }
    if let Some(ops) = &jwk.common.key_operations
        && !ops.contains(&KeyOperations::Verify)
    {
        return None;
    }
    let (family, curve) = match &jwk.algorithm {
        AlgorithmParameters::RSA(rsa) => {
            let modulus = URL_SAFE_NO_PAD.decode(rsa.n.trim_end_matches('=')).ok()?;
            let significant = modulus.iter().skip_while(|b| **b == 0).count();
            if significant * 8 < MIN_RSA_BITS {
                return None;
            }
            (AlgorithmFamily::Rsa, None)
        }
        AlgorithmParameters::EllipticCurve(ec) => (AlgorithmFamily::Ec, Some(ec.curve.clone())),
        AlgorithmParameters::OctetKeyPair(okp) => (AlgorithmFamily::Ed, Some(okp.curve.clone())),
        // `oct` (shared secrets) never come from a JWKS; unknown key types are skipped.
        _ => return None,
    };
    let alg = match &jwk.common.key_algorithm {
        None => None,
        Some(declared) => Some(signature_algorithm(*declared)?),
    };
    let key = DecodingKey::from_jwk(jwk).ok()?;
    Some(VerifyingKey {
        key,
        family,
        alg,
        curve,
    })
}

/// A JWK `alg` as a JWS algorithm; `None` for encryption algorithms (never usable here).
fn signature_algorithm(declared: KeyAlgorithm) -> Option<Algorithm> {
    use std::str::FromStr;
    Algorithm::from_str(&format!("{declared:?}")).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demo::SigningKey;
    use serde_json::json;

    fn parse(entries: Vec<serde_json::Value>) -> Result<(KeySet, usize), KeySetError> {
        KeySet::parse(json!({ "keys": entries }).to_string().as_bytes(), 10)
    }

    #[test]
    fn a_key_verifies_only_the_algorithms_it_fits() {
        let rsa = SigningKey::rsa("r", Algorithm::RS256).unwrap();
        let ec = SigningKey::es256("e").unwrap();
        let ed = SigningKey::ed25519("d").unwrap();
        let mut rsa_any_alg = rsa.jwk().clone();
        rsa_any_alg.as_object_mut().unwrap().remove("alg");
        rsa_any_alg["kid"] = json!("r-any");
        let (set, skipped) = parse(vec![
            rsa.jwk().clone(),
            rsa_any_alg,
            ec.jwk().clone(),
            ed.jwk().clone(),
        ])
        .unwrap();
        assert_eq!((set.len(), skipped), (4, 0));
        let fits = |kid: &str, alg| set.get(kid)[0].fits(alg);
        assert!(fits("r", Algorithm::RS256));
        assert!(!fits("r", Algorithm::PS256), "a key's own alg binds it");
        assert!(fits("r-any", Algorithm::PS256));
        assert!(!fits("r-any", Algorithm::ES256));
        assert!(fits("e", Algorithm::ES256));
        assert!(
            !fits("e", Algorithm::ES384),
            "P-256 key cannot verify ES384"
        );
        assert!(fits("d", Algorithm::EdDSA));
        assert!(!fits("d", Algorithm::RS256));
        assert_eq!(set.candidates(Algorithm::RS256).count(), 2);
        assert_eq!(set.candidates(Algorithm::PS256).count(), 1);
    }

    #[test]
    fn twins_under_one_kid_are_both_kept() {
        let rsa = SigningKey::rsa("same", Algorithm::RS256).unwrap();
        let ec = SigningKey::es256("same").unwrap();
        let (set, skipped) = parse(vec![rsa.jwk().clone(), ec.jwk().clone()]).unwrap();
        assert_eq!((set.len(), skipped), (2, 0));
        let fitting = |alg| set.get("same").iter().filter(|k| k.fits(alg)).count();
        assert_eq!(fitting(Algorithm::RS256), 1);
        assert_eq!(fitting(Algorithm::ES256), 1);
        assert_eq!(fitting(Algorithm::EdDSA), 0);
        assert!(set.get("other").is_empty());
    }

    #[test]
    fn documents_without_usable_keys_or_with_too_many_are_refused() {
        assert!(matches!(parse(vec![]), Err(KeySetError::NoUsableKey(0))));
        assert!(matches!(
            parse(vec![json!({"kty": "oct", "k": "c2VjcmV0"})]),
            Err(KeySetError::NoUsableKey(1))
        ));
        let rsa = SigningKey::rsa("r", Algorithm::RS256).unwrap();
        let many = vec![rsa.jwk().clone(); 11];
        assert!(matches!(parse(many), Err(KeySetError::TooManyKeys(11, 10))));
        assert!(KeySet::parse(b"{\"keys\": 5}", 10).is_err());
        assert!(KeySet::parse(b"[]", 10).is_err());
    }
}
