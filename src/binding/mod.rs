//! Step 3b of a Check: a verified token's binding to its sender, checked on every
//! request (never cached with the token). A token is bound by its `cnf` claim:
//!
//! - `jkt` (DPoP, RFC 9449): the request must use the `DPoP` scheme with one `DPoP`
//!   proof signed by the key of that thumbprint, for this method and URI, recent, for
//!   this token, and not seen before ([`dpop`], [`replay`]);
//! - `x5t#S256` (RFC 8705): the client certificate Envoy saw on the connection
//!   (`attributes.source.certificate`, with `include_peer_certificate: true`) must have
//!   that SHA-256 thumbprint.
//!
//! A bound token presented any other way is refused, whatever the issuer's or route's
//! `sender_constraint` (which only decides whether unbound tokens are accepted, in `jwt`
//! and `policy`).

mod dpop;
mod jwk;
mod nonce;
mod replay;

use std::sync::Arc;

use rustls_pki_types::{CertificateDer, pem::PemObject};

use crate::{
    config::{DpopSettings, ReplaySettings},
    deny::DenyReason,
    extract::percent_decoded,
    jwt::Confirmation,
};
#[cfg(fuzzing)]
pub use dpop::normalize_htu;
use dpop::request_uri;
pub use jwk::sha256_base64url;
use nonce::Nonces;
use replay::ReplayStore;

/// The RFC 7638 thumbprint of a public JWK, `None` when it is not one a proof may carry.
pub fn thumbprint(jwk: &serde_json::Value) -> Option<String> {
    jwk::ProofKey::parse(jwk).ok().map(|key| key.thumbprint)
}

/// How the request presented its token, and what a binding is checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Presented<'a> {
    /// The token came with the `DPoP` authorization scheme (else `Bearer`).
    pub dpop_scheme: bool,
    pub token: &'a str,
    /// The `DPoP` header: `None` when absent, `Err` when there were several.
    pub proof: Option<Result<&'a str, DenyReason>>,
    pub method: &'a str,
    /// `:scheme`, `:authority` and `:path` as Envoy received them.
    pub scheme: &'a str,
    pub authority: &'a str,
    pub path: &'a str,
    /// The client certificate Envoy saw, URL-encoded PEM; empty when none.
    pub certificate: &'a str,
}

/// Checks sender bindings; one per configuration, the replay store shared across
/// reloads while its settings stay the same.
pub struct SenderBinding {
    rules: dpop::Rules,
    replay: Arc<ReplayStore>,
    replay_settings: ReplaySettings,
    nonces: Option<Nonces>,
    /// Accepted proof algorithms, space-separated, for the challenge's `algs`.
    algs: String,
}

impl SenderBinding {
    /// The binding checker for `settings`; the replay store of `previous` is kept when
    /// it is configured the same way (a reload must not forget used proofs).
    pub fn new(settings: &DpopSettings, previous: Option<&SenderBinding>) -> SenderBinding {
        let replay = match previous {
            Some(previous) if previous.replay_settings == settings.replay => {
                previous.replay.clone()
            }
            _ => Arc::new(ReplayStore::new(&settings.replay)),
        };
        let algs: Vec<&str> = settings.algorithms.iter().map(|a| a.name()).collect();
        SenderBinding {
            rules: dpop::Rules::new(settings),
            replay,
            replay_settings: settings.replay.clone(),
            nonces: settings.nonce.as_ref().map(Nonces::new),
            algs: algs.join(" "),
        }
    }

    /// The accepted proof algorithms, space-separated.
    pub fn algs(&self) -> &str {
        &self.algs
    }

    /// A fresh server nonce, when nonces are required.
    pub fn fresh_nonce(&self) -> Option<String> {
        let nonces = self.nonces.as_ref()?;
        Some(nonces.issue(jsonwebtoken::get_current_timestamp()))
    }

    /// Whether the token bound by `cnf` was presented by its holder.
    pub async fn check(
        &self,
        cnf: &Confirmation,
        presented: &Presented<'_>,
    ) -> Result<(), DenyReason> {
        if let Some(expected) = &cnf.x5t_s256 {
            let thumbprint = certificate_thumbprint(presented.certificate)?;
            if &thumbprint != expected {
                return Err(DenyReason::CertificateMismatch);
            }
        }
        match (&cnf.jkt, presented.dpop_scheme) {
            (None, false) => Ok(()),
            (Some(_), false) => Err(DenyReason::BoundTokenAsBearer),
            (None, true) => Err(DenyReason::DpopKeyMismatch),
            (Some(jkt), true) => self.check_proof(jkt, presented).await,
        }
    }

    async fn check_proof(&self, jkt: &str, presented: &Presented<'_>) -> Result<(), DenyReason> {
        let proof = presented.proof.ok_or(DenyReason::DpopProofMissing)??;
        let uri = request_uri(presented.scheme, presented.authority, presented.path)
            .ok_or(DenyReason::DpopUriMismatch)?;
        let now = jsonwebtoken::get_current_timestamp();
        let verified = self.rules.verify(
            proof,
            &dpop::Expected {
                jkt,
                method: presented.method,
                uri: &uri,
                token: presented.token,
                now,
                nonces: self.nonces.as_ref(),
            },
        )?;
        let id = replay::proof_id(jkt, &verified.jti);
        let until = self.rules.accepted_until(verified.iat);
        let key = replay::key_id(jkt);
        match self
            .replay
            .first_use(key, id, verified.iat, now, until)
            .await?
        {
            true => Ok(()),
            false => Err(DenyReason::DpopProofReplayed),
        }
    }
}

/// A proof checked against a fixed request with the default rules: what the fuzz target
/// drives (`--cfg fuzzing` only).
#[cfg(fuzzing)]
pub fn fuzz_proof(proof: &str) -> Result<(), DenyReason> {
    let rules = dpop::Rules::new(&DpopSettings::default());
    let expected = dpop::Expected {
        jkt: "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I",
        method: "GET",
        uri: "https://resource.example.org/protectedresource",
        token: "Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU",
        now: 1_562_262_618,
        nonces: None,
    };
    rules.verify(proof, &expected).map(|_| ())
}

/// The RFC 8705 §3.1 thumbprint of the certificate Envoy passes (URL-encoded PEM): the
/// base64url SHA-256 of its DER. `certificate_missing` when there is none.
fn certificate_thumbprint(certificate: &str) -> Result<String, DenyReason> {
    if certificate.is_empty() {
        return Err(DenyReason::CertificateMissing);
    }
    // What is not a well-formed PEM certificate once decoded (a bad escape, bytes that
    // are not UTF-8, another PEM section first) fails, as a certificate of another key
    // would.
    let pem = percent_decoded(certificate);
    let der = CertificateDer::from_pem_slice(pem.trim().as_bytes())
        .map_err(|_| DenyReason::CertificateMismatch)?;
    Ok(sha256_base64url(&der))
}

#[cfg(test)]
mod tests;
