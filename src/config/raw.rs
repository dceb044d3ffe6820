//! The configuration file exactly as written: plain serde types that refuse unknown fields.
//! Nothing here is checked beyond its YAML shape; `config::Config::try_from` turns a
//! [`RawConfig`] into validated types and reports every problem with its field path.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;

use super::schema;

/// portcullis configuration (portcullis.yaml): the listeners, the identity providers
/// whose access tokens are accepted, and the routes with what each requires. Every
/// setting is described in config/example.yaml and docs/src/reference/configuration.md.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[schemars(title = "portcullis configuration")]
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
    /// Header that carries the whole verified payload (base64url JSON) upstream.
    pub payload_header: Option<String>,
    /// Remove the `authorization` header before the request goes upstream.
    #[serde(default)]
    pub strip_authorization: bool,
    /// Put the whole verified payload in Envoy's dynamic metadata (`claims`); off by
    /// default because it roughly doubles the response Envoy has to process.
    pub metadata_claims: Option<bool>,
    /// The dynamic metadata fields an allow carries (default: route, client_id, tenant_id).
    #[schemars(transform = schema::metadata_fields)]
    pub dynamic_metadata: Option<Vec<String>>,
    #[serde(default)]
    pub limits: RawLimits,
    /// How DPoP proofs (RFC 9449) are checked.
    #[serde(default)]
    pub dpop: RawDpop,
    /// The frameworks that serve the protected API (`rails`, `django`, `flask`, `express`,
    /// `laravel`, `symfony`, `spring`, `aspnet`, `static`, or `all`, the default): requests
    /// are judged under every reading of these (docs/src/security-model.md).
    pub upstream: Option<OneOrMany>,
    /// `sent` when Envoy sends request bodies with each check (`with_request_body`), else
    /// `not_sent` (the default).
    #[schemars(transform = schema::request_body)]
    pub request_body: Option<String>,
    /// A directory of policy files, each scoped to the workloads it governs (flag
    /// `--policy-dir`).
    pub policy_dir: Option<String>,
    #[serde(default)]
    pub metrics: RawMetrics,
    /// A JWT signed by portcullis on allow, for upstreams to verify.
    pub signed_identity: Option<RawSignedIdentity>,
}

/// What `/metrics` carries.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSignedIdentity {
    /// Signing key files (PKCS#8 PEM, P-256 or Ed25519): the first signs, all are
    /// published.
    #[schemars(required)]
    pub keys: Option<Vec<RawIdentityKey>>,
    /// Default `x-portcullis-identity`.
    pub header: Option<String>,
    /// `iss`, default `portcullis`.
    pub issuer: Option<String>,
    /// `aud`: the name the upstream checks.
    #[schemars(required)]
    pub audience: Option<String>,
    /// Default 5m; never past the verified token's `exp`.
    #[schemars(transform = schema::duration)]
    pub max_lifetime: Option<String>,
    /// Default: all of them.
    #[schemars(transform = schema::identity_claims)]
    pub claims: Option<Vec<String>>,
    /// Every protected route sends it unless it says `signed_identity: false`.
    #[serde(default)]
    pub every_route: bool,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawIdentityKey {
    #[schemars(required)]
    pub file: Option<String>,
    /// Default: the key's RFC 7638 thumbprint.
    pub kid: Option<String>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawMetrics {
    /// Create each route's decision series at 0 at start, not at its first use.
    #[serde(default)]
    pub preseed_routes: bool,
    /// Routes given their own `route` label; past them, `other`.
    pub max_routes: Option<usize>,
}

/// One file of the policy directory: what it governs, and its rules.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[schemars(title = "portcullis policy file")]
#[serde(deny_unknown_fields)]
pub struct RawPolicyFile {
    /// The requests this file's routes judge.
    #[schemars(required)]
    pub scope: Option<RawScope>,
    /// Accepted `aud` values: a token must name one of them (on top of its issuer's).
    pub audiences: Option<Vec<String>>,
    /// This file's own issuers, besides the main file's.
    #[serde(default)]
    pub issuers: Vec<RawIssuer>,
    /// The frameworks that serve these routes (default: the main file's `upstream`).
    pub upstream: Option<OneOrMany>,
    #[serde(default)]
    pub routes: Vec<RawRoute>,
}

/// The requests a policy file governs: all of what it names must hold.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawScope {
    /// Applies to every request, beside the file that governs it.
    #[serde(default)]
    pub baseline: bool,
    /// Destination principals (the workload's SPIFFE ID, as Istio sends it); a trailing
    /// `*` matches any rest.
    pub principals: Option<Vec<String>>,
    /// `context_extensions` the Envoy route sets.
    pub context_extensions: Option<BTreeMap<String, String>>,
    /// Request hosts, exact or `*.example.com`.
    #[schemars(transform = schema::hosts)]
    pub hosts: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawDpop {
    /// Proof signing algorithms accepted (asymmetric only).
    #[schemars(transform = schema::proof_algorithms)]
    pub algorithms: Option<Vec<String>>,
    /// How old a proof's `iat` may be.
    #[schemars(transform = schema::duration)]
    pub max_age: Option<String>,
    /// How far in the future a proof's `iat` may be.
    #[schemars(transform = schema::duration)]
    pub max_clock_skew: Option<String>,
    pub max_proof_bytes: Option<usize>,
    #[serde(default)]
    pub replay: RawReplay,
    /// Require server-issued nonces in proofs (RFC 9449 §9).
    pub nonce: Option<RawNonce>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawReplay {
    /// `memory` (one replica) or `redis` (shared by every replica).
    #[schemars(transform = schema::replay_store)]
    pub store: Option<String>,
    /// In-process store: proofs remembered at most.
    pub max_entries: Option<usize>,
    /// In-process store: proofs of one client key remembered at most (its share).
    pub max_entries_per_key: Option<usize>,
    pub redis_url: Option<String>,
    /// Environment variable holding the Redis URL (when it carries a password).
    pub redis_url_env: Option<String>,
    #[schemars(transform = schema::duration)]
    pub redis_timeout: Option<String>,
    pub redis_key_prefix: Option<String>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawNonce {
    /// Environment variable holding the base64 secret every replica shares.
    pub secret_base64_env: Option<String>,
    /// File holding that secret (base64).
    pub secret_file: Option<String>,
    /// How long a nonce stays valid.
    #[schemars(transform = schema::duration)]
    pub lifetime: Option<String>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawLimits {
    pub max_token_bytes: Option<usize>,
    pub max_headers: Option<usize>,
    pub max_concurrent_checks: Option<usize>,
    #[schemars(transform = schema::duration)]
    pub overload_wait: Option<String>,
    pub token_cache_entries: Option<usize>,
    pub max_check_request_bytes: Option<usize>,
    pub max_request_bytes_in_flight: Option<usize>,
    pub max_request_bytes_per_connection: Option<usize>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    pub grpc_listen: Option<String>,
    pub grpc_socket: Option<String>,
    pub http_listen: Option<String>,
    /// How the HTTP check listener reads the original request: envoy, nginx, forwarded.
    #[schemars(transform = schema::http_dialect)]
    pub http_dialect: Option<String>,
    /// TLS (and mTLS) on the HTTP check listener.
    pub http_tls: Option<RawTls>,
    pub admin_listen: Option<String>,
    pub realm: Option<String>,
    pub tls: Option<RawTls>,
    /// What each listener allows a client connection.
    #[serde(default)]
    pub connections: RawConnections,
    /// How long a stop waits for Checks in flight.
    #[schemars(transform = schema::duration)]
    pub shutdown_grace: Option<String>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawConnections {
    pub max_per_listener: Option<usize>,
    #[schemars(transform = schema::duration)]
    pub header_timeout: Option<String>,
    #[schemars(transform = schema::duration)]
    pub idle_timeout: Option<String>,
    #[schemars(transform = schema::duration)]
    pub tls_handshake_timeout: Option<String>,
    #[schemars(transform = schema::duration)]
    pub http2_keepalive_interval: Option<String>,
    #[schemars(transform = schema::duration)]
    pub http2_keepalive_timeout: Option<String>,
    pub max_streams_per_connection: Option<u32>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawTls {
    pub cert_file: Option<String>,
    pub key_file: Option<String>,
    pub client_ca_file: Option<String>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawJwks {
    #[schemars(transform = schema::duration)]
    pub refresh_interval: Option<String>,
    #[schemars(transform = schema::duration)]
    pub min_refresh_interval: Option<String>,
    #[schemars(transform = schema::duration)]
    pub max_refresh_interval: Option<String>,
    #[schemars(transform = schema::duration)]
    pub unknown_kid_cooldown: Option<String>,
    #[schemars(transform = schema::duration)]
    pub fetch_timeout: Option<String>,
    #[schemars(transform = schema::duration)]
    pub max_staleness: Option<String>,
    pub max_document_bytes: Option<usize>,
    pub max_keys: Option<usize>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawIssuer {
    /// Shorthand for Microsoft Entra ID; excludes `issuer`, `jwks_uri` and `audiences`.
    pub entra: Option<RawEntra>,
    pub issuer: Option<String>,
    pub jwks_uri: Option<String>,
    pub audiences: Option<Vec<String>>,
    #[schemars(transform = schema::jwt_algorithms)]
    pub algorithms: Option<Vec<String>>,
    #[schemars(transform = schema::duration)]
    pub leeway: Option<String>,
    pub hmac_secret_env: Option<String>,
    pub hmac_secret_base64_env: Option<String>,
    pub hmac_secret_file: Option<String>,
    pub require_typ: Option<OneOrMany>,
    /// Accept plain-HTTP key and discovery URLs on hosts that are not loopback.
    #[serde(default)]
    pub insecure_http: bool,
    pub allowed_tenants: Option<Vec<String>>,
    pub allowed_clients: Option<Vec<String>>,
    /// `optional` (default), `required`, `dpop` or `mtls`.
    #[schemars(transform = schema::sender_constraint)]
    pub sender_constraint: Option<String>,
    /// The claim this issuer puts delegated scopes in: `scp` or `scope` (default: whichever
    /// a token carries, never both; `scp` for `entra`).
    #[schemars(transform = schema::scope_claim)]
    pub scope_claim: Option<String>,
    /// How a route's unmet `step_up` is challenged: `rfc9470` (default) or `claims`
    /// (default for `entra`).
    #[schemars(transform = schema::step_up_challenge)]
    pub step_up_challenge: Option<String>,
}

/// A value written either alone or as a list.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn to_vec(&self) -> Vec<String> {
        match self {
            OneOrMany::One(one) => vec![one.clone()],
            OneOrMany::Many(many) => many.clone(),
        }
    }
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawEntra {
    pub tenant: Option<String>,
    pub client_id: Option<String>,
    pub app_id_uri: Option<String>,
    pub token_versions: Option<Vec<String>>,
    pub instance: Option<String>,
    pub v1_instance: Option<String>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    #[schemars(required)]
    pub name: Option<String>,
    #[schemars(transform = schema::methods)]
    pub methods: Option<Vec<String>>,
    #[schemars(transform = schema::hosts)]
    pub hosts: Option<Vec<String>>,
    #[schemars(required)]
    pub path: Option<RawPath>,
    #[serde(default)]
    pub anonymous: bool,
    #[serde(default)]
    pub audit: bool,
    /// Conditions that must all hold.
    pub require: Option<RawRequirement>,
    /// Alternatives of which at least one must hold.
    pub require_any: Option<Vec<RawRequirement>>,
    pub identity_headers: Option<BTreeMap<String, String>>,
    /// Accept `%2F`/`%5C` in the path (refused by default).
    #[serde(default)]
    pub allow_encoded_slashes: bool,
    /// Accept `;` path parameters (refused by default).
    #[serde(default)]
    pub allow_path_parameters: bool,
    /// Accept a method-override header or `_method` parameter (refused by default).
    #[serde(default)]
    pub allow_method_override: bool,
    /// On an anonymous route, pass the client's `authorization` header on unverified.
    #[serde(default)]
    pub forward_authorization: bool,
    /// `optional` (default), `required`, `dpop` or `mtls`.
    #[schemars(transform = schema::sender_constraint)]
    pub sender_constraint: Option<String>,
    /// The frameworks that serve this route's requests (default: the file's `upstream`).
    pub upstream: Option<OneOrMany>,
    /// The sign-in the token must show: `acr`, `max_age`, Entra `auth_contexts`.
    pub step_up: Option<RawStepUp>,
    /// Send (or not) the signed identity on this route (default: `every_route`).
    pub signed_identity: Option<bool>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawStepUp {
    /// Accepted `acr` values, in order of preference.
    pub acr: Option<Vec<String>>,
    /// Longest time since `auth_time`.
    #[schemars(transform = schema::duration)]
    pub max_age: Option<String>,
    /// Entra authentication context IDs (`c1`…`c99`) the `acrs` claim must list.
    #[schemars(transform = schema::auth_contexts)]
    pub auth_contexts: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawPath {
    pub exact: Option<String>,
    pub prefix: Option<String>,
    pub template: Option<String>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRequirement {
    pub scopes: Option<Vec<String>>,
    pub scopes_any: Option<Vec<String>>,
    pub roles: Option<Vec<String>>,
    pub roles_any: Option<Vec<String>>,
    #[schemars(transform = schema::token_kind)]
    pub token: Option<String>,
    pub tenants: Option<Vec<String>>,
    pub clients: Option<Vec<String>>,
    pub users: Option<Vec<String>>,
    pub claims: Option<Vec<RawClaimCondition>>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawClaimCondition {
    #[schemars(required)]
    pub claim: Option<String>,
    pub equals: Option<String>,
    pub one_of: Option<Vec<String>>,
    pub contains: Option<String>,
    /// A parameter of the route's path template (`user` for `{user}`) whose value must be
    /// the claim's: object ownership (`/users/{user}/orders` for the caller's `oid`).
    pub equals_param: Option<String>,
    /// With `equals_param`: compare ignoring ASCII case (tenant and object GUIDs).
    #[serde(default)]
    pub ignore_case: bool,
}
