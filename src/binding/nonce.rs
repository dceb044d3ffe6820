//! Server nonces for DPoP proofs (RFC 9449 §9), stateless: a nonce is the time it was
//! issued and an HMAC-SHA256 tag over it, so every replica holding the configured secret
//! issues and accepts the same nonces, and none has to remember them.

use aws_lc_rs::{constant_time, hmac};
use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};

use crate::config::NonceSettings;

/// Bytes of the tag kept: 128 bits.
const TAG_BYTES: usize = 16;

pub struct Nonces {
    key: hmac::Key,
    lifetime_secs: u64,
}

impl Nonces {
    pub fn new(settings: &NonceSettings) -> Nonces {
        Nonces {
            key: hmac::Key::new(hmac::HMAC_SHA256, &settings.secret.0),
            lifetime_secs: settings.lifetime.as_secs(),
        }
    }

    /// A nonce issued at `now` (Unix seconds).
    pub fn issue(&self, now: u64) -> String {
        let issued = now.to_be_bytes();
        let tag = hmac::sign(&self.key, &issued);
        let mut bytes = issued.to_vec();
        bytes.extend_from_slice(&tag.as_ref()[..TAG_BYTES]);
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// Whether `nonce` was issued by a replica holding the secret, at most `lifetime` ago
    /// (and not later than `now` plus `skew`).
    pub fn accepts(&self, nonce: &str, now: u64, skew: u64) -> bool {
        let Ok(bytes) = URL_SAFE_NO_PAD.decode(nonce) else {
            return false;
        };
        let Some((issued, tag)) = bytes.split_first_chunk::<8>() else {
            return false;
        };
        let expected = hmac::sign(&self.key, issued);
        if tag.len() != TAG_BYTES
            || constant_time::verify_slices_are_equal(&expected.as_ref()[..TAG_BYTES], tag).is_err()
        {
            return false;
        }
        let issued = u64::from_be_bytes(*issued);
        issued <= now.saturating_add(skew) && now.saturating_sub(issued) <= self.lifetime_secs
    }
}
