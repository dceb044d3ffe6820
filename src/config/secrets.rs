//! Shared secrets in the configuration: an issuer's HMAC secret (from an environment
//! variable, as base64, or from a file such as a mounted Kubernetes Secret), and the
//! base64 form the DPoP nonce secret is given in too.

use jsonwebtoken::{Algorithm, AlgorithmFamily};

use super::{Secret, problems::Problems, raw::RawIssuer};

/// HMAC secrets shorter than the hash output make brute force easier (RFC 7518 §3.2).
const MIN_HMAC_SECRET_BYTES: usize = 32;

/// The HMAC secret, from exactly one of: an environment variable holding it as UTF-8
/// (`hmac_secret_env`) or as base64 (`hmac_secret_base64_env`, for binary secrets), or a
/// file holding its raw bytes (`hmac_secret_file`, e.g. a mounted Kubernetes Secret).
pub(super) fn hmac_secret(
    field: &str,
    raw: &RawIssuer,
    algorithms: &[Algorithm],
    problems: &mut Problems,
) -> Option<Secret> {
    let uses_hmac = algorithms
        .iter()
        .any(|a| a.family() == AlgorithmFamily::Hmac);
    let sources = [
        ("hmac_secret_env", raw.hmac_secret_env.as_ref()),
        (
            "hmac_secret_base64_env",
            raw.hmac_secret_base64_env.as_ref(),
        ),
        ("hmac_secret_file", raw.hmac_secret_file.as_ref()),
    ];
    let given: Vec<(&str, &String)> = sources
        .iter()
        .filter_map(|(name, value)| value.map(|v| (*name, v)))
        .collect();
    let (name, value) = match (given.as_slice(), uses_hmac) {
        ([], false) => return None,
        ([], true) => {
            problems.add(
                format!("{field}.algorithms"),
                "HS256/384/512 need a secret: hmac_secret_env, hmac_secret_base64_env or \
                 hmac_secret_file (HMAC is never used without a configured secret)",
            );
            return None;
        }
        ([(name, _), ..], false) => {
            problems.add(
                format!("{field}.{name}"),
                "is set but no HS256/384/512 algorithm is allowed",
            );
            return None;
        }
        ([(name, value)], true) => (*name, *value),
        ([_, (name, _), ..], true) => {
            problems.add(
                format!("{field}.{name}"),
                "give the HMAC secret one way only",
            );
            return None;
        }
    };
    let at = format!("{field}.{name}");
    let secret = match name {
        "hmac_secret_file" => {
            std::fs::read(value).map_err(|e| format!("cannot read {value:?}: {e}"))
        }
        _ => std::env::var(value)
            .map_err(|_| format!("environment variable {value} is not set"))
            .and_then(|text| match name {
                "hmac_secret_base64_env" => base64_secret(&text)
                    .ok_or_else(|| format!("environment variable {value} is not base64")),
                _ => Ok(text.into_bytes()),
            }),
    };
    match secret {
        Ok(bytes) if bytes.len() >= MIN_HMAC_SECRET_BYTES => Some(Secret(bytes)),
        Ok(_) => {
            problems.add(
                at,
                format!("the secret holds fewer than {MIN_HMAC_SECRET_BYTES} bytes"),
            );
            None
        }
        Err(message) => {
            problems.add(at, message);
            None
        }
    }
}

/// Standard or URL-safe base64, padded or not.
pub(super) fn base64_secret(text: &str) -> Option<Vec<u8>> {
    use base64::{
        Engine,
        engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD},
    };
    let text = text.trim();
    STANDARD
        .decode(text)
        .or_else(|_| URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')))
        .ok()
}
