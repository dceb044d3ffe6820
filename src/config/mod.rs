//! Configuration as validated types. The YAML file is read into [`raw::RawConfig`] (its exact
//! shape, unknown fields refused) and converted by `validate` into [`Config`]: durations
//! parsed, URLs parsed, algorithms resolved, routes and header names checked. Every problem
//! is reported with its field path, not only the first. This module is plain data: the
//! request steps (`jwt`, `policy`, `respond`) build their runtime structures from it.

mod binding;
mod duration;
mod headers;
mod identity;
mod issuers;
mod locate;
mod problems;
mod raw;
mod route_index;
mod routes;
mod schema;
pub mod sets;
mod shadow;
mod shape;
mod step_up;
mod validate;
mod words;

use std::{
    fmt,
    net::SocketAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use jsonwebtoken::Algorithm;

use crate::upstream::Frameworks;

pub use crate::path::PathSegment;
pub use binding::{DpopSettings, NonceSettings, ReplaySettings};
pub use duration::parse_duration;
pub use identity::{IdentityKey, SignedIdentity};
pub(crate) use issuers::media_type;
pub use issuers::{ENTRA_INSTANCE, ENTRA_V1_INSTANCE};
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

/// What every listener (gRPC over TCP, TLS or a Unix socket, HTTP check, admin) allows a
/// client connection, so that idle, slow or abandoned connections cannot hold the
/// service: Envoy's own connections are long-lived and busy, and unaffected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionSettings {
    /// Connections open at once per listener; more are accepted and closed at once.
    pub max_per_listener: usize,
    /// Time for a new connection's first bytes (the HTTP/2 preface, an HTTP/1 request
    /// head) to arrive.
    pub header_timeout: Duration,
    /// A connection the client sends nothing on for this long is closed.
    pub idle_timeout: Duration,
    /// Time for a TLS handshake to complete.
    pub tls_handshake_timeout: Duration,
    /// HTTP/2 PING interval on quiet connections (detects dead peers); `None`: no pings.
    pub http2_keepalive_interval: Option<Duration>,
    /// How long a PING may go unanswered before the connection is closed.
    pub http2_keepalive_timeout: Duration,
    /// HTTP/2 streams (requests) open at once on one connection; Envoy opens another
    /// connection when it needs more.
    pub max_streams_per_connection: u32,
}

/// Envoy opens a few long-lived HTTP/2 connections per worker: thousands cover a large
/// fleet, and the cap bounds the file descriptors a flood can take. At start it is lowered
/// to what the process's open-files limit leaves (see `server`).
pub const DEFAULT_MAX_CONNECTIONS_PER_LISTENER: usize = 4096;
/// gRPC's usual per-connection stream limit: Envoy's pool opens another connection past it,
/// and one client connection cannot have a thousand requests decoded at once.
pub const DEFAULT_MAX_STREAMS_PER_CONNECTION: u32 = 100;
/// Generous for any real client on a network, short for a connection that says nothing.
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Envoy's pooled connections carry Checks, or answer keepalive PINGs, well within it.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(300);
pub const DEFAULT_TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// gRPC's own guidance: PING a quiet connection every minute, give up after 20 s.
pub const DEFAULT_HTTP2_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(60);
pub const DEFAULT_HTTP2_KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);
/// Well under Kubernetes' 30 s termination grace (which also covers the preStop sleep):
/// Checks take milliseconds, so what is still open after this is stuck.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

impl Default for ConnectionSettings {
    fn default() -> Self {
        ConnectionSettings {
            max_per_listener: DEFAULT_MAX_CONNECTIONS_PER_LISTENER,
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            tls_handshake_timeout: DEFAULT_TLS_HANDSHAKE_TIMEOUT,
            http2_keepalive_interval: Some(DEFAULT_HTTP2_KEEPALIVE_INTERVAL),
            http2_keepalive_timeout: DEFAULT_HTTP2_KEEPALIVE_TIMEOUT,
            max_streams_per_connection: DEFAULT_MAX_STREAMS_PER_CONNECTION,
        }
    }
}

/// Resource limits on what a request or an identity provider can make portcullis do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Longer bearer tokens are refused unparsed (`token_too_large`).
    pub max_token_bytes: usize,
    /// A CheckRequest with more raw headers than this is refused (`invalid_request`).
    pub max_headers: usize,
    /// Checks decided at once; more wait up to `overload_wait`, then get 503 `overloaded`.
    pub max_concurrent_checks: usize,
    pub overload_wait: Duration,
    /// Verified tokens remembered (0 disables the cache).
    pub token_cache_entries: usize,
    /// Largest CheckRequest decoded (gRPC); at least what Envoy may send, so that every
    /// request Envoy can send gets a CheckResponse.
    pub max_check_request_bytes: usize,
    /// CheckRequest bytes held at once, over every connection (the process's memory
    /// budget for request bodies).
    pub max_request_bytes_in_flight: usize,
    /// CheckRequest bytes one connection may have held at once.
    pub max_request_bytes_per_connection: usize,
}

/// Access tokens are a few KiB; 16 KiB leaves room for large group claims while keeping
/// the work an attacker can force per request small.
pub const DEFAULT_MAX_TOKEN_BYTES: usize = 16 * 1024;
/// Envoy itself allows 100 request headers by default.
pub const DEFAULT_MAX_HEADERS: usize = 256;
/// Enough for a busy replica; past it, waiting requests are answered quickly instead of
/// queueing without bound.
pub const DEFAULT_MAX_CONCURRENT_CHECKS: usize = 1024;
pub const DEFAULT_OVERLOAD_WAIT: Duration = Duration::from_millis(100);
/// Verified tokens remembered: an entry is about 5.6 KiB (the token, its claims, a kept
/// answer and map overhead, measured), so at most about 56 MiB however many distinct
/// tokens arrive.
pub const DEFAULT_TOKEN_CACHE_ENTRIES: usize = 10_000;
/// Envoy accepts request headers up to 8 MiB (`max_request_headers_kb`) and sends them
/// all in a CheckRequest; 16 MiB also leaves room for a buffered body.
pub const DEFAULT_MAX_CHECK_REQUEST_BYTES: usize = 16 * 1024 * 1024;
/// Real CheckRequests are kilobytes (with a 64 KiB body, under 100 KiB): 64 MiB is
/// hundreds of them at once, and bounds what clients can make the process hold.
pub const DEFAULT_MAX_REQUEST_BYTES_IN_FLIGHT: usize = 64 * 1024 * 1024;
/// One largest CheckRequest and room for ordinary ones beside it.
pub const DEFAULT_MAX_REQUEST_BYTES_PER_CONNECTION: usize = 20 * 1024 * 1024;
/// Largest JWKS or discovery document accepted; real ones are a few KiB.
pub const DEFAULT_MAX_DOCUMENT_BYTES: usize = 1024 * 1024;
/// Most keys one JWKS may contribute; real ones hold a handful.
pub const DEFAULT_MAX_KEYS: usize = 100;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_token_bytes: DEFAULT_MAX_TOKEN_BYTES,
            max_headers: DEFAULT_MAX_HEADERS,
            max_concurrent_checks: DEFAULT_MAX_CONCURRENT_CHECKS,
            overload_wait: DEFAULT_OVERLOAD_WAIT,
            token_cache_entries: DEFAULT_TOKEN_CACHE_ENTRIES,
            max_check_request_bytes: DEFAULT_MAX_CHECK_REQUEST_BYTES,
            max_request_bytes_in_flight: DEFAULT_MAX_REQUEST_BYTES_IN_FLIGHT,
            max_request_bytes_per_connection: DEFAULT_MAX_REQUEST_BYTES_PER_CONNECTION,
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

/// Standard or URL-safe base64, padded or not.
fn base64_secret(text: &str) -> Option<Vec<u8>> {
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

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// One access rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteConfig {
    pub name: String,
    /// Upper-case methods; `None` matches every method.
    pub methods: Option<Vec<String>>,
    /// `None` matches every host.
    pub hosts: Option<Vec<HostMatch>>,
    pub path: PathMatch,
    pub access: Access,
    /// Dry run: a request this route would deny is allowed, and logged and counted.
    pub audit: bool,
    /// Replaces the global `identity_headers` on this route.
    pub identity_headers: Option<Vec<HeaderMapping>>,
    /// Request shapes refused by default that this route accepts.
    pub tolerates: Tolerance,
    /// On an anonymous route: pass the client's `authorization` header on, unverified
    /// (by default it is removed, so the upstream never mistakes it for a checked one).
    pub forward_authorization: bool,
    /// Whether this route takes only sender-constrained tokens (on top of its issuer's).
    pub sender_constraint: SenderConstraint,
    /// The frameworks that serve this route's requests, when the route names them.
    pub upstream: Option<Frameworks>,
    /// The sign-in the token must show on this route.
    pub step_up: Option<StepUp>,
    /// Whether this route sends the signed identity; `None`: as `every_route` says.
    pub signed_identity: Option<bool>,
}

/// Request shapes that upstreams read in more than one way, refused unless every route the
/// request may reach accepts them. Accepting one never loosens the decision: the request
/// is still judged under every reading (see [`crate::path`]).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tolerance {
    /// `%2F` / `%5C` in the path.
    pub encoded_slashes: bool,
    /// `;` (or `%3B`) path parameters.
    pub path_parameters: bool,
    /// `X-HTTP-Method-Override`, `X-HTTP-Method`, `X-Method-Override` or `_method`.
    pub method_override: bool,
}

/// A host name pattern, lower case, compared without the port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostMatch {
    Exact(String),
    /// `*.example.com`: any name ending in `.example.com` (one label or more before it).
    Suffix(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathMatch {
    /// The normalised path equals this.
    Exact(String),
    /// Segment-aware prefix: `/api/orders` matches `/api/orders` and `/api/orders/7`,
    /// never `/api/ordersX`.
    Prefix(String),
    /// `/api/orders/{id}`: `{name}` or `*` is one non-empty segment, a final `**` any rest.
    Template {
        pattern: String,
        segments: Vec<PathSegment>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// No token needed; identity headers are still stripped.
    Anonymous,
    /// A valid access token for which every condition of `all` holds and, when `any` is
    /// not empty, every condition of at least one of its alternatives.
    Require {
        all: Vec<Condition>,
        any: Vec<Vec<Condition>>,
    },
}

/// One thing a token must satisfy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// Every listed scope (bare names).
    Scopes(Vec<String>),
    /// At least one listed scope.
    ScopesAny(Vec<String>),
    /// Every listed app role.
    Roles(Vec<String>),
    /// At least one listed app role.
    RolesAny(Vec<String>),
    /// The kind of token.
    Token(TokenKind),
    /// `tid` is one of these (lower case).
    Tenants(Vec<String>),
    /// The calling app (`azp`, else `appid`) is one of these.
    Clients(Vec<String>),
    /// `oid` or `sub` is one of these.
    Users(Vec<String>),
    /// A claim's value (string, number or boolean, as text) equals this.
    ClaimEquals { claim: String, value: String },
    /// A claim's value (as text) is one of these.
    ClaimOneOf { claim: String, values: Vec<String> },
    /// A claim that is an array (or space-separated string) contains this.
    ClaimContains { claim: String, value: String },
    /// A claim's value (as text) is the value of the path template's parameter `param`,
    /// segment `segment` of the path (0 is the first), percent-decoded, under every reading
    /// of the path that reaches the route.
    ClaimEqualsParam {
        claim: String,
        param: String,
        segment: usize,
        ignore_case: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// Any valid access token.
    Any,
    /// Delegated: acting for a user, carries scopes (`scp`/`scope`).
    Delegated,
    /// Application: a daemon acting as itself, carries `roles` and no scope.
    App,
}

/// Sets upstream header `header` from `claim` on allow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderMapping {
    /// Lower-case header name.
    pub header: String,
    pub claim: ClaimSource,
}

/// Where a header's value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimSource {
    /// Delegated scopes from `scp` or `scope`, space-separated.
    Scopes,
    /// App roles from `roles`, space-separated.
    Roles,
    /// The calling application: `azp` (Entra v2, OIDC) or else `appid` (Entra v1).
    ClientId,
    /// How the token is bound to its sender: `dpop`, `mtls` (or both, space-separated);
    /// nothing for an unbound token.
    Binding,
    /// The key the token is bound to: `cnf.jkt` for DPoP, else `cnf.x5t#S256`.
    BindingThumbprint,
    /// Any other top-level claim: strings as they are, numbers and booleans printed,
    /// arrays of strings space-separated.
    Claim(String),
}

/// The identity fields an allow puts in Envoy's dynamic metadata, as a set. Each costs
/// Envoy work on every request (docs/performance.md measures it), so a deployment that
/// reads none of them in access logs or RBAC can leave them out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetadataFields(u16);

impl MetadataFields {
    /// Every field, by its metadata key (`binding` also brings `binding_thumbprint`), in
    /// the order of their bits below.
    pub const NAMES: [&'static str; 9] = [
        "route",
        "issuer",
        "subject",
        "tenant_id",
        "object_id",
        "client_id",
        "binding",
        "scopes",
        "roles",
    ];

    pub const ROUTE: MetadataFields = MetadataFields(1);
    pub const ISSUER: MetadataFields = MetadataFields(1 << 1);
    pub const SUBJECT: MetadataFields = MetadataFields(1 << 2);
    pub const TENANT_ID: MetadataFields = MetadataFields(1 << 3);
    pub const OBJECT_ID: MetadataFields = MetadataFields(1 << 4);
    pub const CLIENT_ID: MetadataFields = MetadataFields(1 << 5);
    pub const BINDING: MetadataFields = MetadataFields(1 << 6);
    pub const SCOPES: MetadataFields = MetadataFields(1 << 7);
    pub const ROLES: MetadataFields = MetadataFields(1 << 8);
    pub const ALL: MetadataFields = MetadataFields((1 << Self::NAMES.len()) - 1);
    pub const NONE: MetadataFields = MetadataFields(0);

    /// The field named `name`, if it is one.
    pub fn named(name: &str) -> Option<MetadataFields> {
        let position = Self::NAMES.iter().position(|n| *n == name)?;
        Some(MetadataFields(1 << position))
    }

    pub fn with(self, other: MetadataFields) -> MetadataFields {
        MetadataFields(self.0 | other.0)
    }

    pub fn contains(self, field: MetadataFields) -> bool {
        self.0 & field.0 == field.0
    }
}

impl Default for MetadataFields {
    fn default() -> Self {
        MetadataFields::ALL
    }
}

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid: {message}")]
    Syntax { path: String, message: String },
    #[error("config file {path} is not valid:\n{}", format_problems(path, .problems))]
    Invalid {
        path: String,
        problems: Vec<FieldProblem>,
    },
}

/// One invalid value, named by its field path (`issuers[0].audiences`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldProblem {
    pub field: String,
    pub message: String,
    /// The line and column of the field in the file (1-based), when it could be found.
    pub at: Option<(usize, usize)>,
    /// The name of the route the field is in, if any.
    pub route: Option<String>,
}

impl fmt::Display for FieldProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// One problem a line, as `file:line: field: message` (the form editors and CI
/// annotations read).
fn format_problems(path: &str, problems: &[FieldProblem]) -> String {
    let lines: Vec<String> = problems
        .iter()
        .map(|p| {
            let at = p.at.map_or(String::new(), |(line, column)| {
                format!("{path}:{line}:{column}: ")
            });
            let route = p
                .route
                .as_ref()
                .map_or(String::new(), |name| format!(" (route {name:?})"));
            format!("  - {at}{}{route}: {}", p.field, p.message)
        })
        .collect();
    lines.join("\n")
}

impl Config {
    /// The main file's issuers, then every policy file's.
    pub fn all_issuers(&self) -> impl Iterator<Item = &IssuerConfig> {
        self.issuers
            .iter()
            .chain(self.sets.iter().flat_map(|set| set.issuers.iter()))
    }

    /// The main file's routes, then every policy file's.
    pub fn all_routes(&self) -> impl Iterator<Item = &RouteConfig> {
        self.routes
            .iter()
            .chain(self.sets.iter().flat_map(|set| set.routes.iter()))
    }

    /// Reads the main file `path` and the policy directory — `policy_dir` when given, else
    /// the one the file names, if any — each broken policy file replaced by its version in
    /// `previous` (the sets loaded last time) and reported in `policy_files`.
    pub fn load_with_sets(
        path: &Path,
        policy_dir: Option<&Path>,
        previous: &[PolicySetConfig],
    ) -> Result<Config, ConfigError> {
        let mut config = Config::load(path)?;
        if let Some(dir) = policy_dir {
            config.policy_dir = Some(dir.to_owned());
        }
        if let Some(dir) = &config.policy_dir {
            let (loaded, reports) = sets::load_dir(dir, previous, &config.issuers)?;
            for report in reports.iter().filter_map(|r| r.problem.as_ref()) {
                tracing::error!(problem = %report, "Policy file refused; its last good version (if any) keeps serving");
            }
            config.sets = loaded;
            config.policy_files = reports;
        }
        Ok(config)
    }

    /// Reads, parses and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: shown.clone(),
            source,
        })?;
        Config::from_yaml(&text, &shown)
    }

    /// The JSON Schema of the configuration file's shape (generated from the types the
    /// file is read into), for editors and CI linters: `portcullis config-schema`, and
    /// `config/portcullis.schema.json` in the repository. Values are validated further
    /// when the file is loaded (durations, URLs, listen addresses, cross-field rules).
    /// With `policy_file`, the schema of a policy directory's files
    /// (`config/policy-file.schema.json`).
    pub fn json_schema(policy_file: bool) -> String {
        let schema = match policy_file {
            false => schemars::schema_for!(raw::RawConfig),
            true => schemars::schema_for!(raw::RawPolicyFile),
        };
        let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
        text.push('\n');
        text
    }

    /// Parses and validates YAML text; `origin` names it in error messages. A file that
    /// is not YAML is a syntax error (with line and column); a file whose shape is wrong
    /// gets every shape problem listed at once, each with its field path.
    pub fn from_yaml(text: &str, origin: &str) -> Result<Config, ConfigError> {
        let invalid = |problems| ConfigError::Invalid {
            path: origin.to_owned(),
            problems: locate::located(problems, text),
        };
        let raw: raw::RawConfig = match serde_saphyr::from_str(text) {
            Ok(raw) => raw,
            Err(first) => {
                let Ok(document) = serde_saphyr::from_str::<serde_json::Value>(text) else {
                    return Err(syntax(&first, origin));
                };
                let mut problems = shape::problems(&document);
                if problems.is_empty() {
                    return Err(syntax(&first, origin));
                }
                // One pass: the values of what did deserialize are checked too.
                let (salvaged, broken) = shape::salvaged(&document, &problems);
                if let Ok(raw) = serde_json::from_value::<raw::RawConfig>(salvaged)
                    && let Err(more) = validate::validate(raw)
                {
                    problems.extend(
                        more.into_iter()
                            .filter(|p| !shape::under(&p.field, &broken)),
                    );
                }
                return Err(invalid(problems));
            }
        };
        validate::validate(raw).map_err(invalid)
    }
}

/// A YAML error in our words: where, and what (a key given twice is named as such).
fn syntax(error: &serde_saphyr::Error, origin: &str) -> ConfigError {
    let message = error.to_string().replace("<input>", origin).replace(
        ", set DuplicateKeyPolicy in Options if acceptable",
        " (a key may be given once)",
    );
    ConfigError::Syntax {
        path: origin.to_owned(),
        message,
    }
}
