//! The public key in a DPoP proof's `jwk` header: read strictly (public members only, a
//! supported key type and size), its RFC 7638 thumbprint, and signature verification with
//! aws-lc-rs.
//!
//! Proof keys come from clients, one per client or per session, so they are parsed for
//! each proof and never enter the process-wide store of issuer keys
//! (`jwt::crypto`), which they would crowd out.

use aws_lc_rs::{
    digest,
    signature::{self, RsaPublicKeyComponents, UnparsedPublicKey, VerificationAlgorithm},
};
use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use serde_json::Value;

use crate::config::ProofAlgorithm;

/// Members that only a private or symmetric key has: a proof carrying one is refused
/// (RFC 9449 §4.3 asks for a public key; the client leaked its private one).
const PRIVATE_MEMBERS: &[&str] = &["d", "p", "q", "dp", "dq", "qi", "oth", "k"];
/// RSA moduli accepted, in bits (aws-lc-rs verifies 2048 to 8192).
const RSA_BITS: std::ops::RangeInclusive<usize> = 2048..=8192;

/// A proof's public key, ready to verify, with its thumbprint.
#[derive(Debug)]
pub struct ProofKey {
    material: Material,
    /// RFC 7638 SHA-256 thumbprint, base64url: what `cnf.jkt` names.
    pub thumbprint: String,
}

#[derive(Debug)]
enum Material {
    /// Uncompressed point `04 || x || y`.
    P256(Vec<u8>),
    P384(Vec<u8>),
    Ed25519(Vec<u8>),
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
    },
}

/// Why a `jwk` was refused (all map to `invalid_dpop_proof`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadKey;

impl ProofKey {
    /// Reads a `jwk` header value.
    pub fn parse(jwk: &Value) -> Result<ProofKey, BadKey> {
        let Value::Object(members) = jwk else {
            return Err(BadKey);
        };
        if PRIVATE_MEMBERS.iter().any(|m| members.contains_key(*m)) {
            return Err(BadKey);
        }
        let text = |name: &str| members.get(name).and_then(Value::as_str).ok_or(BadKey);
        let bytes = |name: &str| URL_SAFE_NO_PAD.decode(text(name)?).map_err(|_| BadKey);
        let (material, canonical) = match text("kty")? {
            "EC" => {
                let (crv, x, y) = (text("crv")?, bytes("x")?, bytes("y")?);
                let size = match crv {
                    "P-256" => 32,
                    "P-384" => 48,
                    _ => return Err(BadKey),
                };
                if x.len() != size || y.len() != size {
                    return Err(BadKey);
                }
                let point = [&[4u8][..], &x, &y].concat();
                let material = if size == 32 {
                    Material::P256(point)
                } else {
                    Material::P384(point)
                };
                (
                    material,
                    canonical_json(&[
                        ("crv", crv),
                        ("kty", "EC"),
                        ("x", text("x")?),
                        ("y", text("y")?),
                    ]),
                )
            }
            "OKP" => {
                let (crv, x) = (text("crv")?, bytes("x")?);
                if crv != "Ed25519" || x.len() != 32 {
                    return Err(BadKey);
                }
                (
                    Material::Ed25519(x),
                    canonical_json(&[("crv", crv), ("kty", "OKP"), ("x", text("x")?)]),
                )
            }
            "RSA" => {
                let (n, e) = (bytes("n")?, bytes("e")?);
                let significant = n.iter().skip_while(|b| **b == 0).count() * 8;
                if !RSA_BITS.contains(&significant) || e.is_empty() || e.len() > 8 {
                    return Err(BadKey);
                }
                (
                    Material::Rsa { n, e },
                    canonical_json(&[("e", text("e")?), ("kty", "RSA"), ("n", text("n")?)]),
                )
            }
            _ => return Err(BadKey),
        };
        Ok(ProofKey {
            material,
            thumbprint: sha256_base64url(canonical.as_bytes()),
        })
    }

    /// Whether `signature` over `message` verifies with this key under `alg`; `false`
    /// also when the algorithm does not fit the key.
    pub fn verifies(&self, alg: ProofAlgorithm, message: &[u8], signature: &[u8]) -> bool {
        use ProofAlgorithm as A;
        let fixed = |algorithm: &'static dyn VerificationAlgorithm, key: &[u8]| {
            UnparsedPublicKey::new(algorithm, key)
                .verify(message, signature)
                .is_ok()
        };
        match (&self.material, alg) {
            (Material::P256(point), A::ES256) => fixed(&signature::ECDSA_P256_SHA256_FIXED, point),
            (Material::P384(point), A::ES384) => fixed(&signature::ECDSA_P384_SHA384_FIXED, point),
            (Material::Ed25519(x), A::EdDSA | A::Ed25519) => fixed(&signature::ED25519, x),
            (Material::Rsa { n, e }, rsa) => {
                let params = match rsa {
                    A::RS256 => &signature::RSA_PKCS1_2048_8192_SHA256,
                    A::RS384 => &signature::RSA_PKCS1_2048_8192_SHA384,
                    A::RS512 => &signature::RSA_PKCS1_2048_8192_SHA512,
                    A::PS256 => &signature::RSA_PSS_2048_8192_SHA256,
                    A::PS384 => &signature::RSA_PSS_2048_8192_SHA384,
                    A::PS512 => &signature::RSA_PSS_2048_8192_SHA512,
                    _ => return false,
                };
                RsaPublicKeyComponents { n, e }
                    .verify(params, message, signature)
                    .is_ok()
            }
            _ => false,
        }
    }
}

/// RFC 7638 §3: the required members in lexicographic order, no whitespace; values
/// written as JSON strings.
fn canonical_json(members: &[(&str, &str)]) -> String {
    let fields: Vec<String> = members
        .iter()
        .map(|(name, value)| format!("\"{name}\":{}", Value::String((*value).to_owned())))
        .collect();
    format!("{{{}}}", fields.join(","))
}

/// Base64url (no padding) of the SHA-256 of `data`: `jkt`, `ath` and `x5t#S256` alike.
pub fn sha256_base64url(data: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, data))
}
