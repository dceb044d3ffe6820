//! The configuration file exactly as written: plain serde types that refuse unknown fields.
//! Nothing here is checked beyond its YAML shape; `config::Config::try_from` turns a
//! [`RawConfig`] into validated types and reports every problem with its field path.

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default)]
    pub server: RawServer,
    #[serde(default)]
    pub jwks: RawJwks,
    #[serde(default)]
    pub issuers: Vec<RawIssuer>,
    #[serde(default)]
    pub routes: Vec<RawRoute>,
    /// Upstream header name -> claim name; absent means the documented default mapping.
    pub identity_headers: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    pub grpc_listen: Option<String>,
    pub realm: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawJwks {
    pub refresh_interval: Option<String>,
    pub unknown_kid_cooldown: Option<String>,
    pub fetch_timeout: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawIssuer {
    pub issuer: Option<String>,
    pub jwks_uri: Option<String>,
    #[serde(default)]
    pub audiences: Vec<String>,
    pub algorithms: Option<Vec<String>>,
    pub leeway: Option<String>,
    pub hmac_secret_env: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    pub name: Option<String>,
    pub methods: Option<Vec<String>>,
    pub host: Option<String>,
    pub path: Option<RawPath>,
    #[serde(default)]
    pub anonymous: bool,
    pub require_any: Option<Vec<RawRequirement>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPath {
    pub exact: Option<String>,
    pub prefix: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRequirement {
    #[serde(default)]
    pub scopes: Vec<String>,
    #[serde(default)]
    pub roles: Vec<String>,
}
