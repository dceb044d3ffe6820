//! Configuration as validated types. The YAML file is read into [`raw::RawConfig`] (its exact
//! shape, unknown fields refused) and converted by `validate` into [`Config`]: durations
//! parsed, URLs parsed, algorithms resolved, routes and header names checked. Every problem
//! is reported with its field path, not only the first. This module is plain data: the
//! request steps (`jwt`, `policy`, `respond`) build their runtime structures from it.

mod access;
mod binding;
mod duration;
mod errors;
mod forwarded;
mod headers;
mod identity;
mod issuers;
mod limits;
mod load;
mod locate;
mod problems;
mod raw;
mod requirements;
mod route_index;
mod routes;
mod schema;
mod secrets;
pub mod sets;
mod shadow;
mod shape;
mod step_up;
mod urls;
mod validate;
mod words;

use std::{fmt, net::SocketAddr, path::PathBuf, time::Duration};

use jsonwebtoken::Algorithm;

use crate::upstream::Frameworks;

pub use crate::path::PathSegment;
pub use access::{Access, Condition, HostMatch, PathMatch, RouteConfig, TokenKind, Tolerance};
pub use binding::{DpopSettings, NonceSettings, ReplaySettings};
pub use duration::parse_duration;
pub use errors::{ConfigError, FieldProblem};
pub use forwarded::{ClaimSource, HeaderMapping, MetadataFields};
pub use identity::{IdentityKey, SignedIdentity};
pub(crate) use issuers::media_type;
pub use issuers::{ENTRA_INSTANCE, ENTRA_V1_INSTANCE};
pub use limits::*;
pub(crate) use route_index::RouteIndex;
pub use sets::{PolicySetConfig, Scope};
pub use step_up::StepUp;
pub use validate::parse_listen;
pub use words::{IdentityClaim, ProofAlgorithm, SenderConstraint, StepUpChallenge};

/// Default gRPC listen address of `portcullis serve` (all interfaces, as a container needs).
pub const DEFAULT_GRPC_LISTEN: &str = "0.0.0.0:9001";
/// Default HTTP admin address: `/readyz`, `/livez`, `/metrics`.
pub const DEFAULT_ADMIN_LISTEN: &str = "0.0.0.0:9090";
/// The placeholder of a multi-tenant issuer template, replaced by the token's `tid`.
pub const TENANT_PLACEHOLDER: &str = "{tenantid}";
/// Default `WWW-Authenticate` realm.
pub const DEFAULT_REALM: &str = "portcullis";
/// Default clock-skew allowance for `exp` and `nbf`: one minute, as jsonwebtoken and most
/// IdP client libraries use.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(60);
/// Largest accepted leeway: anything longer stops being "small" and keeps revoked or
/// expired tokens alive.
pub const MAX_LEEWAY: Duration = Duration::from_secs(300);
/// Background JWKS refresh period. Issuers publish new keys well ahead of using them
/// (Entra: weeks), and unknown `kid`s trigger an immediate refresh anyway.
pub const DEFAULT_REFRESH_INTERVAL: Duration = Duration::from_secs(3600);
/// Bounds applied to a JWKS response's `Cache-Control: max-age`: an issuer cannot make us
/// poll more often than the minimum, nor wait longer than the maximum.
pub const DEFAULT_MIN_REFRESH_INTERVAL: Duration = Duration::from_secs(60);
pub const DEFAULT_MAX_REFRESH_INTERVAL: Duration = Duration::from_secs(24 * 3600);
/// How long the last good key set keeps serving while the issuer cannot be reached: long
/// enough to ride out an identity-provider outage, short enough that keys the issuer has
/// withdrawn stop being trusted.
pub const DEFAULT_MAX_STALENESS: Duration = Duration::from_secs(24 * 3600);
/// Minimum time between two JWKS fetches triggered by unknown `kid`s for one key source:
/// a flood of invented `kid`s costs the identity provider at most one fetch per period per
/// replica, and cannot hold a key rotated in during the flood off for longer than that
/// (the next fetch, whoever triggers it, brings it).
pub const DEFAULT_UNKNOWN_KID_COOLDOWN: Duration = Duration::from_secs(2);
/// Time limit of one JWKS HTTP fetch, connect to last byte.
pub const DEFAULT_FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// The algorithm allow-list when an issuer names none: what Entra, Auth0, Okta and Keycloak
/// sign access tokens with by default.
pub const DEFAULT_ALGORITHMS: &[Algorithm] = &[Algorithm::RS256];

/// JOSE `typ` values that mark an access token when an issuer names none (compared in
/// lower case, without `application/`; a token without `typ` is accepted too): RFC 9068's
/// `at+jwt`, and `JWT`, which Entra, Keycloak and Auth0 put in access tokens. Any other
/// type (`dpop+jwt`, `logout+jwt`, `secevent+jwt`, …) is another kind of token.
pub const DEFAULT_ACCESS_TOKEN_TYPES: &[&str] = &["jwt", "at+jwt"];

/// Upstream identity headers set on allow when the file has no `identity_headers`.
pub const DEFAULT_IDENTITY_HEADERS: &[(&str, &str)] = &[
    ("x-auth-subject", "sub"),
    ("x-auth-object-id", "oid"),
    ("x-auth-tenant-id", "tid"),
    ("x-auth-client-id", "client_id"),
    ("x-auth-scopes", "scopes"),
    ("x-auth-roles", "roles"),
    ("x-auth-issuer", "iss"),
    ("x-auth-binding", "binding"),
    ("x-auth-binding-thumbprint", "binding_thumbprint"),
];

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub grpc_listen: SocketAddr,
    /// Also serve gRPC (plaintext) on this Unix domain socket: the cheaper hop for a
    /// sidecar sharing the pod with Envoy.
    pub grpc_socket: Option<PathBuf>,
    /// Also serve HTTP checks on this address: Envoy's HTTP ext_authz mode
    /// (`http_service`), or a forward-auth proxy's (see [`HttpDialect`]).
    pub http_listen: Option<SocketAddr>,
    /// How the HTTP check listener learns the original request.
    pub http_dialect: HttpDialect,
    /// TLS (and mTLS) on the HTTP check listener; plaintext when `None`.
    pub http_tls: Option<TlsFiles>,
    pub admin_listen: SocketAddr,
    /// TLS (and mTLS) on the gRPC listener; plaintext when `None`.
    pub tls: Option<TlsFiles>,
    pub realm: String,
    pub jwks: JwksSettings,
    pub issuers: Vec<IssuerConfig>,
    pub routes: Vec<RouteConfig>,
    pub identity_headers: Vec<HeaderMapping>,
    /// Header carrying the whole verified payload as base64url JSON, if any.
    pub payload_header: Option<String>,
    /// Remove `authorization` before the request goes upstream.
    pub strip_authorization: bool,
    /// Whether dynamic metadata carries the whole verified payload (`claims`).
    pub metadata_claims: bool,
    /// The identity fields an allow's dynamic metadata carries.
    pub dynamic_metadata: MetadataFields,
    pub limits: Limits,
    /// What each listener allows a client connection.
    pub connections: ConnectionSettings,
    /// How long a stop waits for Checks in flight before closing what is left.
    pub shutdown_grace: Duration,
    /// How DPoP proofs are checked.
    pub dpop: DpopSettings,
    /// The frameworks that may serve a request no route names otherwise.
    pub upstream: Frameworks,
    /// Whether Envoy sends request bodies in the CheckRequest.
    pub request_body: RequestBody,
    /// The directory of scoped policy files, if any.
    pub policy_dir: Option<PathBuf>,
    /// The policy sets loaded from it (see [`sets`]).
    pub sets: Vec<PolicySetConfig>,
    /// What loading each of its files found.
    pub policy_files: Vec<sets::FileReport>,
    /// What `/metrics` carries.
    pub metrics: MetricsSettings,
    /// The JWT signed on allow for upstreams to verify, when configured.
    pub signed_identity: Option<SignedIdentity>,
}

/// What `/metrics` carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsSettings {
    /// Create route series at start (else at first use).
    pub preseed_routes: bool,
    /// Routes given their own label.
    pub max_routes: usize,
}

/// A thousand routes' series are tens of thousands of lines: enough to tell the busy
/// routes apart, bounded whatever the configuration holds.
pub const DEFAULT_MAX_ROUTE_LABELS: usize = 1000;

/// Whether Envoy sends request bodies with the CheckRequest (`with_request_body`, Istio's
/// `includeRequestBodyInCheck`). A POST's form or JSON body may carry a method override
/// (`_method`) that some frameworks honour; when it is not sent, only a `Content-Length:
/// 0` shows a POST has none.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum RequestBody {
    /// Bodies are not sent (the safe assumption): an unseen body may carry an override.
    #[default]
    NotSent,
    /// Every body is sent, whole or marked partial: an empty body is no body.
    Sent,
}

impl RequestBody {
    pub const NAMES: &[&str] = &["not_sent", "sent"];

    pub fn parse(text: &str) -> Option<RequestBody> {
        match text {
            "not_sent" => Some(RequestBody::NotSent),
            "sent" => Some(RequestBody::Sent),
            _ => None,
        }
    }
}

/// How a proxy hands the HTTP check listener the request to judge.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum HttpDialect {
    /// Envoy's `http_service`: the check request is the original request (method, path,
    /// `Host`); removals go back in `x-envoy-auth-headers-to-remove`.
    #[default]
    Envoy,
    /// nginx `auth_request`: the subrequest is always a GET; the original method and URI
    /// come in `X-Original-Method` and `X-Original-URI`, the host in `Host`.
    Nginx,
    /// Caddy `forward_auth`, Traefik `ForwardAuth`: `X-Forwarded-Method`,
    /// `X-Forwarded-Uri`, `X-Forwarded-Host` (and `X-Forwarded-Proto`).
    Forwarded,
}

impl HttpDialect {
    pub fn parse(text: &str) -> Option<HttpDialect> {
        match text {
            "envoy" => Some(HttpDialect::Envoy),
            "nginx" => Some(HttpDialect::Nginx),
            "forwarded" => Some(HttpDialect::Forwarded),
            _ => None,
        }
    }
}

/// PEM files for the gRPC listener's TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    /// When set, clients must present a certificate issued by this CA (mTLS).
    pub client_ca_file: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwksSettings {
    /// Refresh period when the JWKS response has no `Cache-Control: max-age`.
    pub refresh_interval: Duration,
    pub min_refresh_interval: Duration,
    pub max_refresh_interval: Duration,
    pub unknown_kid_cooldown: Duration,
    pub fetch_timeout: Duration,
    pub max_staleness: Duration,
    pub max_document_bytes: usize,
    pub max_keys: usize,
}

impl Default for JwksSettings {
    fn default() -> Self {
        JwksSettings {
            refresh_interval: DEFAULT_REFRESH_INTERVAL,
            min_refresh_interval: DEFAULT_MIN_REFRESH_INTERVAL,
            max_refresh_interval: DEFAULT_MAX_REFRESH_INTERVAL,
            unknown_kid_cooldown: DEFAULT_UNKNOWN_KID_COOLDOWN,
            fetch_timeout: DEFAULT_FETCH_TIMEOUT,
            max_staleness: DEFAULT_MAX_STALENESS,
            max_document_bytes: DEFAULT_MAX_DOCUMENT_BYTES,
            max_keys: DEFAULT_MAX_KEYS,
        }
    }
}

/// One trusted token issuer.
#[derive(Clone)]
pub struct IssuerConfig {
    /// The `iss` tokens must carry.
    pub issuer: IssuerName,
    /// Where the signing keys are published; `None` only for an HMAC-only issuer.
    pub jwks: Option<JwksSource>,
    /// Accepted `aud` values (a token must name at least one).
    pub audiences: Vec<String>,
    /// Allowed `alg` values; never `none`, HMAC only with `hmac_secret`.
    pub algorithms: Vec<Algorithm>,
    pub leeway: Duration,
    /// Shared secret for HS256/384/512, read from the environment at load.
    pub hmac_secret: Option<Secret>,
    /// Accepted JOSE `typ` values (lower case, without `application/`, e.g. `at+jwt` for
    /// RFC 9068 access tokens); `None` accepts [`DEFAULT_ACCESS_TOKEN_TYPES`] and no `typ`.
    pub require_typ: Option<Vec<String>>,
    /// Tenants (`tid`) accepted; required for a template issuer.
    pub allowed_tenants: Option<TenantAllowList>,
    /// Calling applications (`azp`, else `appid`) accepted; `None` accepts any.
    pub allowed_clients: Option<Vec<String>>,
    /// Keys (or discovery) over plain HTTP from a host that is not loopback, said
    /// explicitly: anyone on the path could then forge tokens.
    pub insecure_http: bool,
    /// Whether this issuer's tokens must be sender-constrained (bound ones are always
    /// checked against their binding).
    pub sender_constraint: SenderConstraint,
    /// The one claim delegated scopes are read from; `None`: whichever a token carries
    /// (a token with both is refused).
    pub scope_claim: Option<ScopeClaim>,
    /// An Entra ID issuer (from an `entra:` entry): its token version and tenant.
    pub entra: Option<EntraToken>,
    /// How an unmet route `step_up` is challenged for this issuer's tokens.
    pub step_up_challenge: StepUpChallenge,
}

/// The claim of an issuer's delegated scopes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScopeClaim {
    /// `scp` (Entra, Okta).
    Scp,
    /// `scope` (RFC 9068: Keycloak, Auth0, Ping, oidc-provider…).
    Scope,
}

impl ScopeClaim {
    pub fn name(self) -> &'static str {
        match self {
            ScopeClaim::Scp => "scp",
            ScopeClaim::Scope => "scope",
        }
    }
}

/// What an Entra ID issuer's tokens say of themselves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntraToken {
    pub version: EntraVersion,
    /// The tenant the issuer names (lower case); `None` for a multi-tenant template, whose
    /// tenant is the one in the token's `iss`. Either way the token's `tid` must be it.
    pub tenant: Option<String>,
}

/// An Entra ID token version: each names the calling application in its own claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntraVersion {
    /// `https://sts.windows.net/{tid}/` tokens: the caller is `appid`.
    V1,
    /// `https://login.microsoftonline.com/{tid}/v2.0` tokens: the caller is `azp`.
    V2,
}

impl fmt::Debug for IssuerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuerConfig")
            .field("issuer", &self.issuer.as_str())
            .field("jwks", &self.jwks)
            .field("audiences", &self.audiences)
            .field("algorithms", &self.algorithms)
            .field("leeway", &self.leeway)
            .field("hmac_secret", &self.hmac_secret)
            .field("require_typ", &self.require_typ)
            .field("allowed_tenants", &self.allowed_tenants)
            .field("allowed_clients", &self.allowed_clients)
            .field("insecure_http", &self.insecure_http)
            .field("sender_constraint", &self.sender_constraint)
            .finish()
    }
}

/// The `iss` an issuer's tokens carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IssuerName {
    Exact(String),
    /// Multi-tenant: `prefix{tenantid}suffix`, where the tenant must equal the token's `tid`.
    Template {
        template: String,
        prefix: String,
        suffix: String,
    },
}

impl IssuerName {
    /// The configured text, as logs and metrics name the issuer.
    pub fn as_str(&self) -> &str {
        match self {
            IssuerName::Exact(name) => name,
            IssuerName::Template { template, .. } => template,
        }
    }
}

/// Where an issuer's JWKS is found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwksSource {
    Uri(reqwest::Url),
    /// The issuer's OpenID discovery document, whose `jwks_uri` names the JWKS.
    Discovery(reqwest::Url),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TenantAllowList {
    /// `["*"]`: every tenant, said explicitly.
    Any,
    /// Lower-case tenant ids.
    Only(Vec<String>),
}

/// Secret bytes that never appear in `Debug` output or logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub Vec<u8>);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}
