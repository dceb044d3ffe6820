//! Signing keys generated in memory (aws-lc-rs) and tokens signed with them
//! (`jsonwebtoken::encode`), for the demo identity provider and the tests. Nothing here is
//! used to verify anything: verification lives in `jwt` and only ever sees the public
//! JWKs published by [`super::DemoIssuer`].

use aws_lc_rs::{
    encoding::AsDer,
    rand::SystemRandom,
    rsa,
    signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair},
};
use base64::{
    Engine,
    engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD},
};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

/// Why a key could not be generated or a token signed.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("key generation failed")]
    Generate,
    #[error("signing failed: {0}")]
    Sign(#[from] jsonwebtoken::errors::Error),
    #[error("not a JWK: {0}")]
    Jwk(#[from] serde_json::Error),
}

/// A private key with its `kid` and public JWK.
pub struct SigningKey {
    pub kid: String,
    pub alg: Algorithm,
    encoding: EncodingKey,
    jwk: Value,
}

impl SigningKey {
    /// A fresh RSA-2048 key for RS256/384/512 or PS256/384/512.
    pub fn rsa(kid: &str, alg: Algorithm) -> Result<SigningKey, KeyError> {
        let pair = rsa::KeyPair::generate(rsa::KeySize::Rsa2048).map_err(|_| KeyError::Generate)?;
        let pkcs8 = pair.as_der().map_err(|_| KeyError::Generate)?;
        let encoding = EncodingKey::from_rsa_pem(pem("PRIVATE KEY", pkcs8.as_ref()).as_bytes())?;
        let public = pair.public_key();
        let jwk = json!({
            "kty": "RSA", "use": "sig", "alg": format!("{alg:?}"), "kid": kid,
            "n": URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero()),
            "e": URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero()),
        });
        Ok(SigningKey {
            kid: kid.to_owned(),
            alg,
            encoding,
            jwk,
        })
    }

    /// A fresh P-256 key for ES256.
    pub fn es256(kid: &str) -> Result<SigningKey, KeyError> {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .map_err(|_| KeyError::Generate)?;
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref())
            .map_err(|_| KeyError::Generate)?;
        // Uncompressed point: 0x04 || X (32 bytes) || Y (32 bytes).
        let point = pair.public_key().as_ref();
        let (x, y) = point.get(1..).ok_or(KeyError::Generate)?.split_at(32);
        let jwk = json!({
            "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": kid,
            "x": URL_SAFE_NO_PAD.encode(x), "y": URL_SAFE_NO_PAD.encode(y),
        });
        Ok(SigningKey {
            kid: kid.to_owned(),
            alg: Algorithm::ES256,
            encoding: EncodingKey::from_ec_der(pkcs8.as_ref()),
            jwk,
        })
    }

    /// A fresh Ed25519 key for EdDSA.
    pub fn ed25519(kid: &str) -> Result<SigningKey, KeyError> {
        let pair = Ed25519KeyPair::generate().map_err(|_| KeyError::Generate)?;
        let pkcs8 = pair.to_pkcs8().map_err(|_| KeyError::Generate)?;
        let jwk = json!({
            "kty": "OKP", "crv": "Ed25519", "use": "sig", "alg": "EdDSA", "kid": kid,
            "x": URL_SAFE_NO_PAD.encode(pair.public_key().as_ref()),
        });
        Ok(SigningKey {
            kid: kid.to_owned(),
            alg: Algorithm::EdDSA,
            encoding: EncodingKey::from_ed_der(pkcs8.as_ref()),
            jwk,
        })
    }

    /// The public JWK, as a JWKS publishes it.
    pub fn jwk(&self) -> &Value {
        &self.jwk
    }

    /// Signs `claims` with this key's `alg` and `kid`.
    pub fn sign(&self, claims: &Value) -> Result<String, KeyError> {
        let mut header = Header::new(self.alg);
        header.kid = Some(self.kid.clone());
        self.sign_with_header(&header, claims)
    }

    /// Signs with a caller-built header (tests use it for missing `kid`, `crit`, `typ`…).
    pub fn sign_with_header(&self, header: &Header, claims: &Value) -> Result<String, KeyError> {
        // jsonwebtoken settles its process-wide provider at first use: make it portcullis's
        // (which signs exactly as the stock one), so that verification here uses it too.
        crate::jwt::crypto::install();
        Ok(jsonwebtoken::encode(header, claims, &self.encoding)?)
    }
}

fn pem(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let mut text = format!("-----BEGIN {label}-----\n");
    for line in body.as_bytes().chunks(64) {
        text.push_str(&String::from_utf8_lossy(line));
        text.push('\n');
    }
    text.push_str(&format!("-----END {label}-----\n"));
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_publish_verifiable_jwks() {
        for key in [
            SigningKey::rsa("r", Algorithm::RS256).unwrap(),
            SigningKey::rsa("p", Algorithm::PS256).unwrap(),
            SigningKey::es256("e").unwrap(),
            SigningKey::ed25519("d").unwrap(),
        ] {
            let token = key
                .sign(&json!({"sub": "s", "exp": jsonwebtoken::get_current_timestamp() + 60}))
                .unwrap();
            let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(key.jwk().clone()).unwrap();
            let decoding = jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap();
            let mut validation = jsonwebtoken::Validation::new(key.alg);
            validation.validate_aud = false;
            let data = jsonwebtoken::decode::<Value>(&token, &decoding, &validation).unwrap();
            assert_eq!(data.claims["sub"], "s");
            assert_eq!(data.header.kid.as_deref(), Some(key.kid.as_str()));
        }
    }
}
