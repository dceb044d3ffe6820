//! The one typed reason for every deny, and how it maps to what the outside world sees:
//! the HTTP status, the RFC 6750 `WWW-Authenticate` error code and description, the gRPC
//! status code, and the stable reason code used as log field, metric label and the
//! `reason` member of the problem+json body. Building the actual response is `respond`'s job.
//!
//! Longer than 450 lines on purpose: 42 reasons, each decided in one exhaustive `match`
//! per mapping (code, status, challenge, DPoP scheme, description, fault) in this one
//! file, so that adding a reason is one reviewable change that cannot skip a mapping.

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
    /// The token is valid and permitted, but the sign-in behind it is not the one the
    /// route's `step_up` requires: another `acr`, or an `auth_time` too old or absent
    /// (RFC 9470). Challenged with `acr_values` and `max_age` so the client can get a
    /// better token.
    InsufficientUserAuthentication,
    /// The token is valid and permitted, but lacks claims the route's `step_up` requires
    /// (Entra authentication contexts in `acrs`, or for an issuer challenged with claims,
    /// its `acr`): challenged with an OpenID Connect claims request (`claims=`).
    InsufficientClaims,
    /// A DPoP-bound token (`cnf.jkt`) presented with the `Bearer` scheme (RFC 9449 §7.2):
    /// whoever holds only the token must not be able to use it.
    BoundTokenAsBearer,
    /// The `DPoP` scheme without exactly one `DPoP` proof header.
    DpopProofMissing,
    /// A DPoP proof that is not a well-formed, correctly signed `dpop+jwt`: bad structure,
    /// `typ`, an `alg` outside `dpop.algorithms`, a `jwk` that is not a usable public key
    /// (or has private members), a missing claim, or a signature that does not verify.
    InvalidDpopProof,
    /// The proof's key is not the key the token is bound to (its RFC 7638 thumbprint
    /// differs from `cnf.jkt`), or the token is not DPoP-bound at all.
    DpopKeyMismatch,
    /// The proof's `htm` is not the request's method.
    DpopMethodMismatch,
    /// The proof's `htu` is not the request's URI (scheme, host and path).
    DpopUriMismatch,
    /// The proof's `iat` is outside `dpop.max_age` (or too far in the future).
    DpopProofStale,
    /// The proof's `ath` is not the hash of the access token it came with.
    DpopAthMismatch,
    /// A proof (`jti`, per key) already used within its lifetime.
    DpopProofReplayed,
    /// The proof carries no server nonce, or an expired or foreign one, where
    /// `dpop.nonce` requires one (RFC 9449 §9): the answer carries a fresh `DPoP-Nonce`.
    DpopNonceRequired,
    /// The replay store (Redis) could not be asked in time, or the in-process one is
    /// full: a DPoP request is refused rather than accepted unchecked.
    ReplayStoreUnavailable,
    /// A certificate-bound token (`cnf.x5t#S256`, RFC 8705) with no client certificate on
    /// the connection Envoy saw.
    CertificateMissing,
    /// A certificate-bound token presented over a connection with another certificate.
    CertificateMismatch,
    /// A token whose `cnf` names a binding this service cannot check (`jwk`, `kid`, …):
    /// refused, never accepted as if it were unbound.
    UnsupportedBinding,
    /// An unbound token (or one bound another way) where the issuer or route requires
    /// a sender-constrained one (`sender_constraint`).
    SenderConstraintRequired,
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
    /// For a step-up reason, the challenge's further parameters, already formatted
    /// (`acr_values="…", max_age=…` or `claims="…"`).
    pub step_up: Option<String>,
    /// Challenge with the `DPoP` scheme (RFC 9449 §7.1): the request used it, or the
    /// route or issuer requires a DPoP-bound token. DPoP reasons always do.
    pub dpop: bool,
}

impl Deny {
    /// The same deny, challenged with the `DPoP` scheme.
    pub fn with_dpop(mut self, dpop: bool) -> Deny {
        self.dpop |= dpop;
        self
    }

    /// Whether the challenge uses the `DPoP` scheme.
    pub fn dpop_challenge(&self) -> bool {
        self.dpop || self.reason.dpop_challenge()
    }
}

impl From<DenyReason> for Deny {
    fn from(reason: DenyReason) -> Self {
        Deny {
            reason,
            required_scopes: None,
            step_up: None,
            dpop: false,
        }
    }
}

/// The error code in a `WWW-Authenticate` challenge: RFC 6750 §3.1's, and RFC 9449's
/// `invalid_dpop_proof` (§7.1) and `use_dpop_nonce` (§9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BearerError {
    /// 401 with a challenge but no error code: the request carried no bearer credentials.
    None,
    InvalidRequest,
    InvalidToken,
    InsufficientScope,
    InvalidDpopProof,
    UseDpopNonce,
    /// RFC 9470 §3.
    InsufficientUserAuthentication,
    /// OpenID Connect claims challenge (Entra Conditional Access).
    InsufficientClaims,
}

impl BearerError {
    pub fn code(self) -> Option<&'static str> {
        match self {
            BearerError::None => None,
            BearerError::InvalidRequest => Some("invalid_request"),
            BearerError::InvalidToken => Some("invalid_token"),
            BearerError::InsufficientScope => Some("insufficient_scope"),
            BearerError::InvalidDpopProof => Some("invalid_dpop_proof"),
            BearerError::UseDpopNonce => Some("use_dpop_nonce"),
            BearerError::InsufficientUserAuthentication => Some("insufficient_user_authentication"),
            BearerError::InsufficientClaims => Some("insufficient_claims"),
        }
    }
}

/// Whose fault a deny is, which is the 4xx / 5xx line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The caller sent something missing, invalid or insufficient.
    Client,
    /// A service we depend on failed us: the identity provider's keys, the replay store.
    Upstream,
    /// portcullis itself: out of capacity, or a bug.
    Service,
}

impl DenyReason {
    /// Every variant, for table tests and documentation.
    pub const ALL: [DenyReason; 42] = [
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
        DenyReason::InsufficientUserAuthentication,
        DenyReason::InsufficientClaims,
        DenyReason::BoundTokenAsBearer,
        DenyReason::DpopProofMissing,
        DenyReason::InvalidDpopProof,
        DenyReason::DpopKeyMismatch,
        DenyReason::DpopMethodMismatch,
        DenyReason::DpopUriMismatch,
        DenyReason::DpopProofStale,
        DenyReason::DpopAthMismatch,
        DenyReason::DpopProofReplayed,
        DenyReason::DpopNonceRequired,
        DenyReason::ReplayStoreUnavailable,
        DenyReason::CertificateMissing,
        DenyReason::CertificateMismatch,
        DenyReason::UnsupportedBinding,
        DenyReason::SenderConstraintRequired,
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
            DenyReason::InsufficientUserAuthentication => "insufficient_user_authentication",
            DenyReason::InsufficientClaims => "insufficient_claims",
            DenyReason::BoundTokenAsBearer => "bound_token_as_bearer",
            DenyReason::DpopProofMissing => "dpop_proof_missing",
            DenyReason::InvalidDpopProof => "invalid_dpop_proof",
            DenyReason::DpopKeyMismatch => "dpop_key_mismatch",
            DenyReason::DpopMethodMismatch => "dpop_method_mismatch",
            DenyReason::DpopUriMismatch => "dpop_uri_mismatch",
            DenyReason::DpopProofStale => "dpop_proof_stale",
            DenyReason::DpopAthMismatch => "dpop_ath_mismatch",
            DenyReason::DpopProofReplayed => "dpop_proof_replayed",
            DenyReason::DpopNonceRequired => "dpop_nonce_required",
            DenyReason::ReplayStoreUnavailable => "replay_store_unavailable",
            DenyReason::CertificateMissing => "certificate_missing",
            DenyReason::CertificateMismatch => "certificate_mismatch",
            DenyReason::UnsupportedBinding => "unsupported_binding",
            DenyReason::SenderConstraintRequired => "sender_constraint_required",
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
            | DenyReason::NotAccessToken
            | DenyReason::BoundTokenAsBearer
            | DenyReason::DpopProofMissing
            | DenyReason::InvalidDpopProof
            | DenyReason::DpopKeyMismatch
            | DenyReason::DpopMethodMismatch
            | DenyReason::DpopUriMismatch
            | DenyReason::DpopProofStale
            | DenyReason::DpopAthMismatch
            | DenyReason::DpopProofReplayed
            | DenyReason::DpopNonceRequired
            | DenyReason::CertificateMissing
            | DenyReason::CertificateMismatch
            | DenyReason::UnsupportedBinding
            | DenyReason::SenderConstraintRequired
            | DenyReason::InsufficientUserAuthentication
            | DenyReason::InsufficientClaims => 401,
            DenyReason::NoRoute
            | DenyReason::InsufficientPermission
            | DenyReason::ConditionFailed
            | DenyReason::TenantNotAllowed
            | DenyReason::ClientNotAllowed => 403,
            DenyReason::Internal => 500,
            DenyReason::KeysUnavailable
            | DenyReason::ReplayStoreUnavailable
            | DenyReason::Overloaded => 503,
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
            | DenyReason::NotAccessToken
            | DenyReason::BoundTokenAsBearer
            | DenyReason::DpopKeyMismatch
            | DenyReason::CertificateMissing
            | DenyReason::CertificateMismatch
            | DenyReason::UnsupportedBinding
            | DenyReason::SenderConstraintRequired => Some(BearerError::InvalidToken),
            DenyReason::DpopProofMissing
            | DenyReason::InvalidDpopProof
            | DenyReason::DpopMethodMismatch
            | DenyReason::DpopUriMismatch
            | DenyReason::DpopProofStale
            | DenyReason::DpopAthMismatch
            | DenyReason::DpopProofReplayed => Some(BearerError::InvalidDpopProof),
            DenyReason::DpopNonceRequired => Some(BearerError::UseDpopNonce),
            DenyReason::InsufficientUserAuthentication => {
                Some(BearerError::InsufficientUserAuthentication)
            }
            DenyReason::InsufficientClaims => Some(BearerError::InsufficientClaims),
            DenyReason::InsufficientPermission
            | DenyReason::NoRoute
            | DenyReason::ConditionFailed
            | DenyReason::TenantNotAllowed
            | DenyReason::ClientNotAllowed => Some(BearerError::InsufficientScope),
            DenyReason::InvalidRequest
            | DenyReason::KeysUnavailable
            | DenyReason::ReplayStoreUnavailable
            | DenyReason::Overloaded
            | DenyReason::Internal => None,
        }
    }

    /// Whether the challenge is a `DPoP` one whatever scheme the request used: the
    /// reasons that are about a DPoP proof or a DPoP binding (RFC 9449 §7.1).
    pub fn dpop_challenge(self) -> bool {
        matches!(
            self,
            DenyReason::BoundTokenAsBearer
                | DenyReason::DpopProofMissing
                | DenyReason::InvalidDpopProof
                | DenyReason::DpopKeyMismatch
                | DenyReason::DpopMethodMismatch
                | DenyReason::DpopUriMismatch
                | DenyReason::DpopProofStale
                | DenyReason::DpopAthMismatch
                | DenyReason::DpopProofReplayed
                | DenyReason::DpopNonceRequired
        )
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
            DenyReason::InsufficientUserAuthentication => {
                "A stronger or more recent sign-in is required for this request"
            }
            DenyReason::InsufficientClaims => {
                "The access token lacks claims this request requires; request them and retry"
            }
            DenyReason::BoundTokenAsBearer => {
                "A DPoP-bound access token must be presented with the DPoP scheme and a proof"
            }
            DenyReason::DpopProofMissing => "The DPoP scheme requires exactly one DPoP proof",
            DenyReason::InvalidDpopProof => "The DPoP proof is invalid",
            DenyReason::DpopKeyMismatch => {
                "The DPoP proof key is not the key the token is bound to"
            }
            DenyReason::DpopMethodMismatch => "The DPoP proof is for another HTTP method",
            DenyReason::DpopUriMismatch => "The DPoP proof is for another URI",
            DenyReason::DpopProofStale => "The DPoP proof is too old or not yet valid",
            DenyReason::DpopAthMismatch => "The DPoP proof is for another access token",
            DenyReason::DpopProofReplayed => "The DPoP proof was already used",
            DenyReason::DpopNonceRequired => "The DPoP proof must carry the server's nonce",
            DenyReason::ReplayStoreUnavailable => {
                "DPoP proofs cannot be checked for replay right now; retry shortly"
            }
            DenyReason::CertificateMissing => {
                "The access token is bound to a client certificate, and none was presented"
            }
            DenyReason::CertificateMismatch => {
                "The access token is bound to another client certificate"
            }
            DenyReason::UnsupportedBinding => "The access token's key binding is not supported",
            DenyReason::SenderConstraintRequired => {
                "A sender-constrained (DPoP or certificate-bound) access token is required"
            }
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
            DenyReason::KeysUnavailable | DenyReason::ReplayStoreUnavailable => Fault::Upstream,
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
            | DenyReason::ConditionFailed
            | DenyReason::InsufficientUserAuthentication
            | DenyReason::InsufficientClaims
            | DenyReason::BoundTokenAsBearer
            | DenyReason::DpopProofMissing
            | DenyReason::InvalidDpopProof
            | DenyReason::DpopKeyMismatch
            | DenyReason::DpopMethodMismatch
            | DenyReason::DpopUriMismatch
            | DenyReason::DpopProofStale
            | DenyReason::DpopAthMismatch
            | DenyReason::DpopProofReplayed
            | DenyReason::DpopNonceRequired
            | DenyReason::CertificateMissing
            | DenyReason::CertificateMismatch
            | DenyReason::UnsupportedBinding
            | DenyReason::SenderConstraintRequired => Fault::Client,
        }
    }
}

#[cfg(test)]
mod tests;
