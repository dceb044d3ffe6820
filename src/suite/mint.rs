//! The tokens of `token:` cases: minted with keys served on loopback that stand in for
//! every configured issuer's, so that a case's token is verified for real.

use serde_json::{Map, Value, json};

use super::SuiteError;
use crate::{
    config::{Config, EntraVersion, IssuerConfig, IssuerName, JwksSource},
    demo::{DemoIssuer, SigningKey},
};

/// Mints the tokens of `token:` cases, with keys served on loopback that stand in for
/// every configured issuer's.
pub(super) struct Minter {
    issuer: DemoIssuer,
    keys: Vec<SigningKey>,
}

impl Minter {
    pub(super) async fn start() -> Result<Minter, SuiteError> {
        let error = |e: &dyn std::fmt::Display| SuiteError::Issuer(e.to_string());
        let keys = vec![
            SigningKey::rsa("portcullis-test-rs256", jsonwebtoken::Algorithm::RS256)
                .map_err(|e| error(&e))?,
            SigningKey::es256("portcullis-test-es256").map_err(|e| error(&e))?,
            SigningKey::ed25519("portcullis-test-eddsa").map_err(|e| error(&e))?,
        ];
        let refs: Vec<&SigningKey> = keys.iter().collect();
        let issuer = DemoIssuer::start(0, &refs).await.map_err(|e| error(&e))?;
        Ok(Minter { issuer, keys })
    }

    /// `config` with every issuer's keys fetched from the test issuer instead.
    pub(super) fn configured(&self, config: &Config) -> Config {
        let mut config = config.clone();
        let jwks = reqwest::Url::parse(&self.issuer.jwks_uri()).ok();
        let mut replace = |issuer: &mut IssuerConfig| {
            if issuer.jwks.is_some() {
                issuer.jwks = jwks.clone().map(JwksSource::Uri);
            }
        };
        config.issuers.iter_mut().for_each(&mut replace);
        for set in &mut config.sets {
            set.issuers.iter_mut().for_each(&mut replace);
        }
        config
    }

    /// A token with `claims` over the defaults, signed with a key of an algorithm the
    /// issuer it names accepts.
    pub(super) fn mint(
        &self,
        config: &Config,
        claims: Map<String, Value>,
    ) -> Result<String, String> {
        let issuers: Vec<&IssuerConfig> = config.all_issuers().collect();
        let issuer = match claims.get("iss").and_then(Value::as_str) {
            Some(iss) => issuers.iter().find(|i| names(&i.issuer, iss)),
            None => issuers.first(),
        }
        .ok_or("token: no configured issuer has this `iss`")?;
        let now = jsonwebtoken::get_current_timestamp() as i64;
        let mut token =
            json!({ "sub": "portcullis-test", "iat": now, "nbf": now, "exp": now + 600 });
        if let IssuerName::Exact(iss) = &issuer.issuer {
            token["iss"] = json!(iss);
        }
        if let Some(aud) = issuer.audiences.first() {
            token["aud"] = json!(aud);
        }
        // An Entra issuer's tokens say their version and tenant.
        if let Some(entra) = &issuer.entra {
            token["ver"] = json!(match entra.version {
                EntraVersion::V1 => "1.0",
                EntraVersion::V2 => "2.0",
            });
            if let Some(tenant) = &entra.tenant {
                token["tid"] = json!(tenant);
            }
        }
        if let Value::Object(map) = &mut token {
            map.extend(claims);
        }
        let key = self
            .keys
            .iter()
            .find(|k| issuer.algorithms.contains(&k.alg))
            .ok_or("token: the issuer accepts none of RS256, ES256, EdDSA")?;
        key.sign(&token).map_err(|e| e.to_string())
    }
}

/// Whether `iss` is the issuer's (an exact name, or a multi-tenant template's shape).
fn names(issuer: &IssuerName, iss: &str) -> bool {
    match issuer {
        IssuerName::Exact(name) => name == iss,
        IssuerName::Template { prefix, suffix, .. } => {
            iss.len() > prefix.len() + suffix.len()
                && iss.starts_with(prefix.as_str())
                && iss.ends_with(suffix.as_str())
        }
    }
}
