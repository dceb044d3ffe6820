//! A DPoP proof (RFC 9449 §4.3), checked against the request it came with: a compact JWS
//! of type `dpop+jwt`, signed with an allowed asymmetric algorithm by the public key in
//! its `jwk` header, whose claims name this request's method (`htm`) and URI (`htu`), a
//! recent `iat`, a `jti`, the hash of the access token (`ath`) and, where required, a
//! server nonce. Whether the key is the token's (`cnf.jkt`) is checked here too; whether
//! the `jti` was seen before is the replay store's job.
//!
//! Each failure has its own reason, checked in this order: structure and signature
//! (`invalid_dpop_proof`), key (`dpop_key_mismatch`), method, URI, time, token hash,
//! nonce.

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use serde_json::{Map, Value};

use super::{jwk::ProofKey, jwk::sha256_base64url, nonce::Nonces};
use crate::{
    config::{DpopSettings, ProofAlgorithm, media_type},
    deny::DenyReason,
    extract::canonical_host,
    jwt::token::{REFUSED_HEADER_PARAMETERS, decode_object, segments},
    path::normalize_path,
};

/// Longest `jti` accepted (RFC 9449 suggests 96 bits of randomness: ~16 characters).
const MAX_JTI_BYTES: usize = 256;

/// The proof rules from the configuration.
pub struct Rules {
    algorithms: Vec<ProofAlgorithm>,
    max_age_secs: u64,
    skew_secs: u64,
    max_bytes: usize,
}

/// What the proof must match.
pub struct Expected<'a> {
    /// The token's `cnf.jkt`.
    pub jkt: &'a str,
    pub method: &'a str,
    /// The request URI as [`request_uri`] gives it.
    pub uri: &'a str,
    /// The access token the proof came with.
    pub token: &'a str,
    /// Unix seconds.
    pub now: u64,
    pub nonces: Option<&'a Nonces>,
}

/// A proof that passed every check but replay.
#[derive(Debug, PartialEq, Eq)]
pub struct Proof {
    pub jti: String,
    pub iat: u64,
}

impl Rules {
    pub fn new(settings: &DpopSettings) -> Rules {
        Rules {
            algorithms: settings.algorithms.clone(),
            max_age_secs: settings.max_age.as_secs(),
            skew_secs: settings.max_clock_skew.as_secs(),
            max_bytes: settings.max_proof_bytes,
        }
    }

    /// Until when a proof issued at `iat` could be accepted: how long its `jti` must be
    /// remembered.
    pub fn accepted_until(&self, iat: u64) -> u64 {
        iat.saturating_add(self.max_age_secs)
            .saturating_add(self.skew_secs)
            .saturating_add(1)
    }

    /// Checks `proof` against `expected`.
    pub fn verify(&self, proof: &str, expected: &Expected<'_>) -> Result<Proof, DenyReason> {
        use DenyReason::InvalidDpopProof as Invalid;
        if proof.len() > self.max_bytes {
            return Err(Invalid);
        }
        let [header_b64, payload_b64, signature_b64] = segments(proof).ok_or(Invalid)?;
        let header = json_object(header_b64)?;
        if REFUSED_HEADER_PARAMETERS
            .iter()
            .any(|p| header.contains_key(*p))
        {
            return Err(Invalid);
        }
        let typ = header.get("typ").and_then(Value::as_str).ok_or(Invalid)?;
        if media_type(typ) != "dpop+jwt" {
            return Err(Invalid);
        }
        let alg = header
            .get("alg")
            .and_then(Value::as_str)
            .and_then(ProofAlgorithm::parse)
            .filter(|alg| self.algorithms.contains(alg))
            .ok_or(Invalid)?;
        let key = ProofKey::parse(header.get("jwk").ok_or(Invalid)?).map_err(|_| Invalid)?;
        let signature = URL_SAFE_NO_PAD.decode(signature_b64).map_err(|_| Invalid)?;
        let signed = &proof[..header_b64.len() + 1 + payload_b64.len()];
        if !key.verifies(alg, signed.as_bytes(), &signature) {
            return Err(Invalid);
        }

        let claims = json_object(payload_b64)?;
        let text = |name: &str| claims.get(name).and_then(Value::as_str).ok_or(Invalid);
        let jti = text("jti")?;
        if jti.is_empty() || jti.len() > MAX_JTI_BYTES {
            return Err(Invalid);
        }
        let (htm, htu, ath) = (text("htm")?, text("htu")?, text("ath")?);
        let iat = claims
            .get("iat")
            .and_then(Value::as_f64)
            .filter(|t| t.is_finite() && *t >= 0.0)
            .ok_or(Invalid)? as u64;

        if key.thumbprint != expected.jkt {
            return Err(DenyReason::DpopKeyMismatch);
        }
        if htm != expected.method {
            return Err(DenyReason::DpopMethodMismatch);
        }
        if normalize_htu(htu).as_deref() != Some(expected.uri) {
            return Err(DenyReason::DpopUriMismatch);
        }
        if iat.saturating_add(self.max_age_secs) < expected.now
            || iat > expected.now.saturating_add(self.skew_secs)
        {
            return Err(DenyReason::DpopProofStale);
        }
        if ath != sha256_base64url(expected.token.as_bytes()) {
            return Err(DenyReason::DpopAthMismatch);
        }
        if let Some(nonces) = expected.nonces {
            let nonce = claims.get("nonce").and_then(Value::as_str);
            if !nonce.is_some_and(|n| nonces.accepts(n, expected.now, self.skew_secs)) {
                return Err(DenyReason::DpopNonceRequired);
            }
        }
        Ok(Proof {
            jti: jti.to_owned(),
            iat,
        })
    }
}

/// A base64url JSON object without duplicate members.
fn json_object(segment: &str) -> Result<Map<String, Value>, DenyReason> {
    decode_object(segment).map_err(|_| DenyReason::InvalidDpopProof)
}

/// The request's URI as a proof's `htu` must name it (RFC 9449 §4.3): scheme, host and
/// path as Envoy received them, without query, normalised as [`normalize_htu`] does.
/// `None` when Envoy did not say the scheme or the path cannot be normalised.
pub fn request_uri(scheme: &str, authority: &str, path: &str) -> Option<String> {
    if scheme.is_empty() || authority.is_empty() {
        return None;
    }
    let path = crate::path::split_query(path).0;
    normalize(scheme, authority, if path.is_empty() { "/" } else { path })
}

/// An `htu` with syntax- and scheme-based normalisation (RFC 3986 §6.2.2, §6.2.3):
/// lower-case scheme and host, no default port, an empty path as `/`, escapes and dot
/// segments in the path canonical; query and fragment dropped. `None` for what is not an
/// absolute http(s) URI with a plain host (no user information).
pub fn normalize_htu(htu: &str) -> Option<String> {
    let htu = htu.split_once('#').map_or(htu, |(before, _)| before);
    let htu = htu.split_once('?').map_or(htu, |(before, _)| before);
    let (scheme, rest) = htu.split_once("://")?;
    let (authority, path) = match rest.find('/') {
        Some(slash) => rest.split_at(slash),
        None => (rest, "/"),
    };
    normalize(scheme, authority, path)
}

fn normalize(scheme: &str, authority: &str, path: &str) -> Option<String> {
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "https" => 443,
        "http" => 80,
        _ => return None,
    };
    // A plain host name or address with an optional port, as `extract` accepts a host:
    // lower case, without a trailing dot; the port as a number, left out when default.
    let host = canonical_host(authority).ok().filter(|h| !h.is_empty())?;
    let port = match authority.rsplit_once(':') {
        Some((before, port)) if !authority.starts_with('[') || before.ends_with(']') => {
            Some(port.parse::<u16>().ok()?)
        }
        _ => None,
    };
    let path = normalize_path(path).ok()?;
    Some(match port {
        Some(port) if port != default_port => format!("{scheme}://{host}:{port}{path}"),
        _ => format!("{scheme}://{host}{path}"),
    })
}
