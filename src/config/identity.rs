//! `signed_identity`: the short-lived JWT portcullis signs on allow so that an upstream
//! can verify who called instead of trusting the network — its signing keys (PKCS#8 PEM
//! files, ES256 or EdDSA, the first signing and all published), the header it travels
//! in, its `iss`, `aud`, longest lifetime and claims; and which routes send it.

use std::time::Duration;

use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair,
};
use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{Value, json};

use super::{
    Secret,
    headers::check_header_name,
    problems::Problems,
    raw::{RawIdentityKey, RawSignedIdentity},
    words::IdentityClaim,
};

/// The header the signed identity travels in unless configured.
pub const DEFAULT_HEADER: &str = "x-portcullis-identity";
/// Its `iss` unless configured.
pub const DEFAULT_ISSUER: &str = "portcullis";
/// Its longest lifetime unless configured.
pub const DEFAULT_MAX_LIFETIME: Duration = Duration::from_secs(300);
/// The longest lifetime that may be configured.
pub const MAX_MAX_LIFETIME: Duration = Duration::from_secs(3600);

/// What the signed identity is and which routes send it.
#[derive(Debug, Clone, PartialEq)]
pub struct SignedIdentity {
    /// The first signs; every one is published in the JWKS.
    pub keys: Vec<IdentityKey>,
    /// Lower case.
    pub header: String,
    pub issuer: String,
    pub audience: String,
    /// Its lifetime is the shorter of this and the verified token's remaining one.
    pub max_lifetime: Duration,
    pub claims: Vec<IdentityClaim>,
    /// Every protected route sends it unless it says `signed_identity: false`; otherwise
    /// only routes that say `signed_identity: true`.
    pub every_route: bool,
}

/// One signing key: its `kid` (`None`: its RFC 7638 thumbprint), algorithm, private key
/// (PKCS#8 DER) and public JWK (`kty`, `crv`, `x`, `y`).
#[derive(Debug, Clone, PartialEq)]
pub struct IdentityKey {
    /// The file it was read from (watched for a rotation).
    pub path: std::path::PathBuf,
    pub kid: Option<String>,
    pub algorithm: Algorithm,
    pub der: Secret,
    pub public: Value,
}

/// The `signed_identity` section, its key files read and checked.
pub(super) fn signed_identity(
    raw: Option<&RawSignedIdentity>,
    problems: &mut Problems,
) -> Option<SignedIdentity> {
    let raw = raw?;
    let field = "signed_identity";
    let keys: Vec<IdentityKey> = match raw.keys.as_deref() {
        None | Some([]) => {
            problems.add(
                format!("{field}.keys"),
                "at least one signing key file is required (PKCS#8 PEM, P-256 or Ed25519)",
            );
            Vec::new()
        }
        Some(keys) => keys
            .iter()
            .enumerate()
            .filter_map(|(i, key)| identity_key(&format!("{field}.keys[{i}]"), key, problems))
            .collect(),
    };
    for (i, key) in keys.iter().enumerate() {
        if let Some(kid) = &key.kid
            && keys[..i].iter().any(|k| k.kid.as_ref() == Some(kid))
        {
            problems.add(
                format!("{field}.keys[{i}].kid"),
                format!("{kid:?} is the kid of another key"),
            );
        }
    }
    let header = raw
        .header
        .as_deref()
        .unwrap_or(DEFAULT_HEADER)
        .to_ascii_lowercase();
    check_header_name(problems, &format!("{field}.header"), &header);
    let issuer = raw
        .issuer
        .clone()
        .unwrap_or_else(|| DEFAULT_ISSUER.to_owned());
    if issuer.trim().is_empty() {
        problems.add(format!("{field}.issuer"), "must not be empty");
    }
    let audience = match raw.audience.as_deref().map(str::trim) {
        Some(audience) if !audience.is_empty() => audience.to_owned(),
        _ => {
            problems.add(
                format!("{field}.audience"),
                "is required: the name the upstream checks `aud` against",
            );
            String::new()
        }
    };
    let max_lifetime = problems.duration(
        &format!("{field}.max_lifetime"),
        raw.max_lifetime.as_deref(),
        DEFAULT_MAX_LIFETIME,
    );
    if max_lifetime < Duration::from_secs(10) || max_lifetime > MAX_MAX_LIFETIME {
        problems.add(
            format!("{field}.max_lifetime"),
            "must be between 10s and 1h",
        );
    }
    let claims = match &raw.claims {
        None => IdentityClaim::ALL.to_vec(),
        Some(names) => names
            .iter()
            .enumerate()
            .filter_map(|(i, name)| {
                let claim = IdentityClaim::ALL.into_iter().find(|c| c.name() == name);
                if claim.is_none() {
                    problems.add(
                        format!("{field}.claims[{i}]"),
                        format!("{name:?} is not one of {}", IdentityClaim::NAMES.join(", ")),
                    );
                }
                claim
            })
            .collect(),
    };
    Some(SignedIdentity {
        keys,
        header,
        issuer,
        audience,
        max_lifetime,
        claims,
        every_route: raw.every_route,
    })
}

fn identity_key(field: &str, raw: &RawIdentityKey, problems: &mut Problems) -> Option<IdentityKey> {
    let Some(path) = raw.file.as_deref() else {
        problems.add(format!("{field}.file"), "is required");
        return None;
    };
    let pem = match std::fs::read(path) {
        Ok(pem) => pem,
        Err(e) => {
            problems.add(
                format!("{field}.file"),
                format!("cannot read {path:?}: {e}"),
            );
            return None;
        }
    };
    // Which kind of key the file holds: a P-256 key signs ES256, an Ed25519 key EdDSA.
    // Public keys are derived with aws-lc-rs, not jsonwebtoken's provider, which must not
    // be installed before portcullis's own (`jwt::crypto`).
    let parsed = EncodingKey::from_ec_pem(&pem)
        .ok()
        .and_then(|key| Some((Algorithm::ES256, public_jwk(&key, Algorithm::ES256)?, key)))
        .or_else(|| {
            let key = EncodingKey::from_ed_pem(&pem).ok()?;
            Some((Algorithm::EdDSA, public_jwk(&key, Algorithm::EdDSA)?, key))
        });
    let Some((algorithm, public, key)) = parsed else {
        problems.add(
            format!("{field}.file"),
            format!("{path:?} is not a PKCS#8 PEM private key of curve P-256 (ES256) or Ed25519"),
        );
        return None;
    };
    let kid = match &raw.kid {
        Some(kid) if kid.trim().is_empty() => {
            problems.add(format!("{field}.kid"), "must not be empty (omit it)");
            None
        }
        kid => kid.clone(),
    };
    Some(IdentityKey {
        path: path.into(),
        kid,
        algorithm,
        der: Secret(key.as_bytes().to_vec()),
        public,
    })
}

/// The public JWK of a PKCS#8 private key: P-256 (`EC`) or Ed25519 (`OKP`, PKCS#8 v1 as
/// `openssl genpkey` writes, or v2 with the public key, as aws-lc and rcgen write).
fn public_jwk(key: &EncodingKey, algorithm: Algorithm) -> Option<Value> {
    let b64 = |bytes: &[u8]| URL_SAFE_NO_PAD.encode(bytes);
    if algorithm == Algorithm::EdDSA {
        let pair = Ed25519KeyPair::from_pkcs8(key.as_bytes()).ok()?;
        return Some(json!({"kty": "OKP", "crv": "Ed25519", "x": b64(pair.public_key().as_ref())}));
    }
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, key.as_bytes()).ok()?;
    // Uncompressed point: 0x04 || x || y.
    let (x, y) = pair.public_key().as_ref().get(1..)?.split_at(32);
    Some(json!({"kty": "EC", "crv": "P-256", "x": b64(x), "y": b64(y)}))
}
