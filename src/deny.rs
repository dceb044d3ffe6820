//! The one typed reason for every deny, and how it maps to what the outside world sees:
//! the HTTP status, the RFC 6750 `WWW-Authenticate` error code and description, the gRPC
//! status code, and the stable reason code used as log field, metric label and the
//! `reason` member of the problem+json body. Building the actual response is `respond`'s job.

use std::sync::Arc;

/// Why a request was denied. Every mapping below is an exhaustive `match`, so a new variant
/// does not compile until each of its mappings has been decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DenyReason {
    /// Envoy sent a CheckRequest without HTTP request attributes, or a path that cannot be
    /// normalised (bad percent-encoding, not starting with `/`).
    InvalidRequest,
    /// No `authorization` header at all.
    MissingToken,
    /// An `authorization` header with a scheme other than `Bearer` (RFC 6750: treated as
    /// "no credentials for this scheme", so the challenge carries no error code).
    UnsupportedScheme,
    /// `Bearer` scheme but not exactly one well-formed token (several `authorization`
    /// headers, empty token, spaces or characters outside RFC 6750's b64token).
    MalformedAuthorization,
    /// Not a decodable JWS compact token: wrong segment count, bad base64url or JSON,
    /// duplicate JSON keys, unknown `alg`, an unimplemented header (`crit`, `b64`, `zip`,
    /// `enc`), or claims of the wrong type.
    MalformedToken,
    /// A bearer token longer than `limits.max_token_bytes`, refused unparsed.
    TokenTooLarge,
    /// The token's `iss` matches no configured issuer.
    UnknownIssuer,
    /// The token's `alg` is not in the issuer's allow-list.
    DisallowedAlgorithm,
    /// No key with the token's `kid` in the issuer's JWKS, even after a refresh.
    UnknownKid,
    /// The key named by `kid` cannot verify the token's `alg` (other key type, curve or
    /// declared `alg`).
    KeyMismatch,
    /// The signature does not verify.
    BadSignature,
    /// `exp` is in the past (beyond the leeway).
    Expired,
    /// `nbf` or `iat` is in the future (beyond the leeway).
    NotYetValid,
    /// `aud` names none of the issuer's accepted audiences.
    WrongAudience,
    /// A claim that validation needs (`exp`, `iss`, `aud`) is absent.
    MissingClaim,
    /// The JOSE `typ` is not one the issuer accepts: its `require_typ`, or by default none,
    /// `JWT` or `at+jwt` (so `dpop+jwt`, `logout+jwt`, `secevent+jwt` are refused).
    WrongTokenType,
    /// A valid token whose tenant (`tid`) is not in the issuer's `allowed_tenants`.
    TenantNotAllowed,
    /// A valid token whose calling application (`azp`, `appid`, `client_id` or `cid`) is not
    /// in the issuer's `allowed_clients`.
    ClientNotAllowed,
    /// A valid token that is not an access token: no `scp`, `scope` or `roles`, or an ID
    /// token's claims (`nonce`, `at_hash`, `c_hash`), or a Keycloak ID, refresh or logout
    /// token. Never proof of permission, whatever it carries.
    NotAccessToken,
    /// No route in the policy matches the request (under some reading of it): default deny,
    /// decided after the token was verified.
    NoRoute,
    /// The token is valid but lacks the scopes or app roles the route requires.
    InsufficientPermission,
    /// The token is valid but fails another route condition: token kind, tenant, calling
    /// app, user, or a claim condition.
    ConditionFailed,
    /// The issuer's keys have never been obtained, so no token of it can be checked now.
    KeysUnavailable,
    /// Every Check slot stayed busy for `limits.overload_wait`.
    Overloaded,
    /// Deciding failed unexpectedly (a bug): denied, never allowed.
    Internal,
}

/// A deny decision: the reason plus, for [`DenyReason::InsufficientPermission`], the scopes
/// the route accepts (for the RFC 6750 `scope` attribute). `Arc<str>` because it is the
/// route's precomputed string, shared by every request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deny {
    pub reason: DenyReason,
    pub required_scopes: Option<Arc<str>>,
}

impl From<DenyReason> for Deny {
    fn from(reason: DenyReason) -> Self {
        Deny {
            reason,
            required_scopes: None,
        }
    }
}

/// The RFC 6750 error code in a `WWW-Authenticate: Bearer` challenge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BearerError {
    /// 401 with a challenge but no error code: the request carried no bearer credentials.
    None,
    InvalidRequest,
    InvalidToken,
    InsufficientScope,
}

impl BearerError {
    pub fn code(self) -> Option<&'static str> {
        match self {
            BearerError::None => None,
            BearerError::InvalidRequest => Some("invalid_request"),
            BearerError::InvalidToken => Some("invalid_token"),
            BearerError::InsufficientScope => Some("insufficient_scope"),
        }
    }
}

/// Whose fault a deny is, which is the 4xx / 5xx line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The caller sent something missing, invalid or insufficient.
    Client,
    /// The identity provider could not give us its keys.
    Upstream,
    /// portcullis itself: out of capacity, or a bug.
    Service,
}

impl DenyReason {
    /// Every variant, for table tests and documentation.
    pub const ALL: [DenyReason; 25] = [
        DenyReason::InvalidRequest,
        DenyReason::MissingToken,
        DenyReason::UnsupportedScheme,
        DenyReason::MalformedAuthorization,
        DenyReason::MalformedToken,
        DenyReason::TokenTooLarge,
        DenyReason::UnknownIssuer,
        DenyReason::DisallowedAlgorithm,
        DenyReason::UnknownKid,
        DenyReason::KeyMismatch,
        DenyReason::BadSignature,
        DenyReason::Expired,
        DenyReason::NotYetValid,
        DenyReason::WrongAudience,
        DenyReason::MissingClaim,
        DenyReason::WrongTokenType,
        DenyReason::TenantNotAllowed,
        DenyReason::ClientNotAllowed,
        DenyReason::NotAccessToken,
        DenyReason::NoRoute,
        DenyReason::InsufficientPermission,
        DenyReason::ConditionFailed,
        DenyReason::KeysUnavailable,
        DenyReason::Overloaded,
        DenyReason::Internal,
    ];

    /// Stable machine-readable code: log field `reason`, metric label, problem+json `reason`.
    pub fn code(self) -> &'static str {
        match self {
            DenyReason::InvalidRequest => "invalid_request",
            DenyReason::MissingToken => "missing_token",
            DenyReason::UnsupportedScheme => "unsupported_scheme",
            DenyReason::MalformedAuthorization => "malformed_authorization",
            DenyReason::MalformedToken => "malformed_token",
            DenyReason::TokenTooLarge => "token_too_large",
            DenyReason::UnknownIssuer => "unknown_issuer",
            DenyReason::DisallowedAlgorithm => "disallowed_algorithm",
            DenyReason::UnknownKid => "unknown_kid",
            DenyReason::KeyMismatch => "key_mismatch",
            DenyReason::BadSignature => "bad_signature",
            DenyReason::Expired => "expired",
            DenyReason::NotYetValid => "not_yet_valid",
            DenyReason::WrongAudience => "wrong_audience",
            DenyReason::MissingClaim => "missing_claim",
            DenyReason::WrongTokenType => "wrong_token_type",
            DenyReason::TenantNotAllowed => "tenant_not_allowed",
            DenyReason::ClientNotAllowed => "client_not_allowed",
            DenyReason::NotAccessToken => "not_access_token",
            DenyReason::NoRoute => "no_route",
            DenyReason::InsufficientPermission => "insufficient_permission",
            DenyReason::ConditionFailed => "condition_failed",
            DenyReason::KeysUnavailable => "keys_unavailable",
            DenyReason::Overloaded => "overloaded",
            DenyReason::Internal => "internal",
        }
    }

    /// HTTP status Envoy returns to the client.
    pub fn http_status(self) -> u16 {
        match self {
            DenyReason::InvalidRequest => 400,
            DenyReason::MissingToken
            | DenyReason::UnsupportedScheme
            | DenyReason::MalformedAuthorization
            | DenyReason::MalformedToken
            | DenyReason::TokenTooLarge
            | DenyReason::UnknownIssuer
            | DenyReason::DisallowedAlgorithm
            | DenyReason::UnknownKid
            | DenyReason::KeyMismatch
            | DenyReason::BadSignature
            | DenyReason::Expired
            | DenyReason::NotYetValid
            | DenyReason::WrongAudience
            | DenyReason::MissingClaim
            | DenyReason::WrongTokenType
            | DenyReason::NotAccessToken => 401,
            DenyReason::NoRoute
            | DenyReason::InsufficientPermission
            | DenyReason::ConditionFailed
            | DenyReason::TenantNotAllowed
            | DenyReason::ClientNotAllowed => 403,
            DenyReason::Internal => 500,
            DenyReason::KeysUnavailable | DenyReason::Overloaded => 503,
        }
    }

    /// The RFC 6750 challenge to send, if any. `None` means no `WWW-Authenticate` header:
    /// only for answers that are neither 401 nor 403 (RFC 6750 §3 asks for a challenge
    /// whenever the request's credentials do not enable access).
    pub fn bearer_error(self) -> Option<BearerError> {
        match self {
            DenyReason::MissingToken | DenyReason::UnsupportedScheme => Some(BearerError::None),
            DenyReason::MalformedAuthorization => Some(BearerError::InvalidRequest),
            DenyReason::MalformedToken
            | DenyReason::TokenTooLarge
            | DenyReason::UnknownIssuer
            | DenyReason::DisallowedAlgorithm
            | DenyReason::UnknownKid
            | DenyReason::KeyMismatch
            | DenyReason::BadSignature
            | DenyReason::Expired
            | DenyReason::NotYetValid
            | DenyReason::WrongAudience
            | DenyReason::MissingClaim
            | DenyReason::WrongTokenType
            | DenyReason::NotAccessToken => Some(BearerError::InvalidToken),
            DenyReason::InsufficientPermission
            | DenyReason::NoRoute
            | DenyReason::ConditionFailed
            | DenyReason::TenantNotAllowed
            | DenyReason::ClientNotAllowed => Some(BearerError::InsufficientScope),
            DenyReason::InvalidRequest
            | DenyReason::KeysUnavailable
            | DenyReason::Overloaded
            | DenyReason::Internal => None,
        }
    }

    /// Short static text for the client (`error_description` and problem+json `detail`).
    /// Never contains token contents or configured values.
    pub fn description(self) -> &'static str {
        match self {
            DenyReason::InvalidRequest => "The request could not be interpreted",
            DenyReason::MissingToken => "A bearer access token is required",
            DenyReason::UnsupportedScheme => "Only the Bearer authorization scheme is accepted",
            DenyReason::MalformedAuthorization => {
                "The Authorization header must carry exactly one bearer token"
            }
            DenyReason::MalformedToken => "The access token is malformed",
            DenyReason::TokenTooLarge => "The access token is too large",
            DenyReason::UnknownIssuer => "The access token issuer is not trusted",
            DenyReason::DisallowedAlgorithm => "The access token signing algorithm is not allowed",
            DenyReason::UnknownKid => "The access token signing key is unknown",
            DenyReason::KeyMismatch => "The access token signing key does not fit its algorithm",
            DenyReason::BadSignature => "The access token signature is invalid",
            DenyReason::Expired => "The access token expired",
            DenyReason::NotYetValid => "The access token is not valid yet",
            DenyReason::WrongAudience => "The access token is not meant for this API",
            DenyReason::MissingClaim => "The access token lacks a required claim",
            DenyReason::WrongTokenType => "The token is not of the required type",
            DenyReason::TenantNotAllowed => "The access token tenant is not accepted",
            DenyReason::ClientNotAllowed => "The calling application is not allowed",
            DenyReason::NotAccessToken => "The token is not an access token",
            DenyReason::NoRoute => "No access rule allows this request",
            DenyReason::InsufficientPermission => {
                "The access token lacks the permission this request requires"
            }
            DenyReason::ConditionFailed => "The caller does not meet this route's conditions",
            DenyReason::KeysUnavailable => "Token signing keys are temporarily unavailable",
            DenyReason::Overloaded => "The authorization service is busy; retry shortly",
            DenyReason::Internal => "The request could not be authorized",
        }
    }

    /// The `google.rpc.Code` put in `CheckResponse.status`.
    pub fn grpc_code(self) -> tonic::Code {
        match self.http_status() {
            400 => tonic::Code::InvalidArgument,
            401 => tonic::Code::Unauthenticated,
            403 => tonic::Code::PermissionDenied,
            500 => tonic::Code::Internal,
            _ => tonic::Code::Unavailable,
        }
    }

    /// Whose fault: the 4xx / 5xx line, with 5xx split between us and the IdP.
    pub fn fault(self) -> Fault {
        match self {
            DenyReason::KeysUnavailable => Fault::Upstream,
            DenyReason::Overloaded | DenyReason::Internal => Fault::Service,
            DenyReason::InvalidRequest
            | DenyReason::MissingToken
            | DenyReason::UnsupportedScheme
            | DenyReason::MalformedAuthorization
            | DenyReason::MalformedToken
            | DenyReason::TokenTooLarge
            | DenyReason::UnknownIssuer
            | DenyReason::DisallowedAlgorithm
            | DenyReason::UnknownKid
            | DenyReason::KeyMismatch
            | DenyReason::BadSignature
            | DenyReason::Expired
            | DenyReason::NotYetValid
            | DenyReason::WrongAudience
            | DenyReason::MissingClaim
            | DenyReason::WrongTokenType
            | DenyReason::TenantNotAllowed
            | DenyReason::ClientNotAllowed
            | DenyReason::NotAccessToken
            | DenyReason::NoRoute
            | DenyReason::InsufficientPermission
            | DenyReason::ConditionFailed => Fault::Client,
        }
    }
}

#[cfg(test)]
mod tests;
