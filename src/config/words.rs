//! The words configuration fields accept — HTTP methods, `sender_constraint`, DPoP proof
//! algorithms, `step_up_challenge`, the signed identity's claims — each with its names:
//! what validation parses and what the JSON Schema lists ([`super::schema`]). A leaf:
//! it depends on no other part of the configuration.

/// Methods a route may name: RFC 9110's, PATCH (RFC 5789) and WebDAV's (RFC 4918, 3253,
/// 5323). Anything else is a typo (`GTE`) that would make the route never match.
pub const KNOWN_METHODS: &[&str] = &[
    "GET",
    "HEAD",
    "POST",
    "PUT",
    "PATCH",
    "DELETE",
    "OPTIONS",
    "TRACE",
    "CONNECT",
    "PROPFIND",
    "PROPPATCH",
    "MKCOL",
    "COPY",
    "MOVE",
    "LOCK",
    "UNLOCK",
    "REPORT",
    "SEARCH",
];

/// Which proof of possession a token must be bound to. Whatever the setting, a bound
/// token (any `cnf`) is always checked against its binding; this says whether an
/// unbound one is accepted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SenderConstraint {
    /// Unbound tokens are accepted (bound ones are still checked).
    #[default]
    Optional,
    /// DPoP-bound or certificate-bound.
    Required,
    /// DPoP-bound (RFC 9449 `cnf.jkt`).
    Dpop,
    /// Certificate-bound (RFC 8705 `cnf.x5t#S256`).
    Mtls,
}

impl SenderConstraint {
    pub const ALL: [SenderConstraint; 4] = [
        SenderConstraint::Optional,
        SenderConstraint::Required,
        SenderConstraint::Dpop,
        SenderConstraint::Mtls,
    ];

    pub fn parse(text: &str) -> Option<SenderConstraint> {
        match text {
            "optional" => Some(SenderConstraint::Optional),
            "required" => Some(SenderConstraint::Required),
            "dpop" => Some(SenderConstraint::Dpop),
            "mtls" => Some(SenderConstraint::Mtls),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SenderConstraint::Optional => "optional",
            SenderConstraint::Required => "required",
            SenderConstraint::Dpop => "dpop",
            SenderConstraint::Mtls => "mtls",
        }
    }

    /// Whether a token bound by DPoP (`dpop`) and/or a certificate (`mtls`) satisfies it.
    pub fn admits(self, dpop: bool, mtls: bool) -> bool {
        match self {
            SenderConstraint::Optional => true,
            SenderConstraint::Required => dpop || mtls,
            SenderConstraint::Dpop => dpop,
            SenderConstraint::Mtls => mtls,
        }
    }

    /// Whether a client refused by it should be told to use DPoP.
    pub fn asks_for_dpop(self) -> bool {
        matches!(self, SenderConstraint::Required | SenderConstraint::Dpop)
    }
}

/// A JWS algorithm a DPoP proof may be signed with: asymmetric only (RFC 9449 §4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProofAlgorithm {
    ES256,
    ES384,
    RS256,
    RS384,
    RS512,
    PS256,
    PS384,
    PS512,
    /// Ed25519 under its RFC 8037 name.
    EdDSA,
    /// Ed25519 under its fully specified name (RFC 9864), as oidc-provider offers it.
    Ed25519,
}

impl ProofAlgorithm {
    pub const ALL: [ProofAlgorithm; 10] = [
        ProofAlgorithm::ES256,
        ProofAlgorithm::ES384,
        ProofAlgorithm::RS256,
        ProofAlgorithm::RS384,
        ProofAlgorithm::RS512,
        ProofAlgorithm::PS256,
        ProofAlgorithm::PS384,
        ProofAlgorithm::PS512,
        ProofAlgorithm::EdDSA,
        ProofAlgorithm::Ed25519,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ProofAlgorithm::ES256 => "ES256",
            ProofAlgorithm::ES384 => "ES384",
            ProofAlgorithm::RS256 => "RS256",
            ProofAlgorithm::RS384 => "RS384",
            ProofAlgorithm::RS512 => "RS512",
            ProofAlgorithm::PS256 => "PS256",
            ProofAlgorithm::PS384 => "PS384",
            ProofAlgorithm::PS512 => "PS512",
            ProofAlgorithm::EdDSA => "EdDSA",
            ProofAlgorithm::Ed25519 => "Ed25519",
        }
    }

    /// The algorithm a proof header's `alg` names, exactly as registered.
    pub fn parse(name: &str) -> Option<ProofAlgorithm> {
        ProofAlgorithm::ALL.into_iter().find(|a| a.name() == name)
    }
}

/// How an issuer's clients are told what sign-in a route needs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum StepUpChallenge {
    /// RFC 9470: `error="insufficient_user_authentication"` with `acr_values` and
    /// `max_age`. Authentication contexts, which only a claims request can name, still
    /// get a claims challenge.
    #[default]
    Rfc9470,
    /// An OpenID Connect claims request (`error="insufficient_claims"`, `claims=` base64
    /// JSON) naming every unmet `acr` and `acrs` value, as MSAL clients expect; the
    /// default for `entra` issuers.
    Claims,
}

impl StepUpChallenge {
    pub const NAMES: [&'static str; 2] = ["rfc9470", "claims"];
}

/// A claim of the signed identity, taken from the verified token or the decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentityClaim {
    /// `sub`.
    Subject,
    /// `oid` (Entra's object id).
    ObjectId,
    /// `tid`.
    TenantId,
    /// `azp`: the calling application, as read for `client_id`.
    Client,
    /// `scope`: the delegated scopes, space-separated.
    Scopes,
    /// `roles`: the app roles.
    Roles,
    /// `route`: the route that allowed.
    Route,
    /// `idp`: the verified token's issuer.
    IdentityProvider,
    /// `token_id`: the verified token's `jti` (Entra: `uti`), naming it without copying it.
    TokenId,
}

impl IdentityClaim {
    pub const ALL: [IdentityClaim; 9] = [
        IdentityClaim::Subject,
        IdentityClaim::ObjectId,
        IdentityClaim::TenantId,
        IdentityClaim::Client,
        IdentityClaim::Scopes,
        IdentityClaim::Roles,
        IdentityClaim::Route,
        IdentityClaim::IdentityProvider,
        IdentityClaim::TokenId,
    ];
    pub const NAMES: [&'static str; 9] = [
        "sub", "oid", "tid", "azp", "scope", "roles", "route", "idp", "token_id",
    ];

    /// The claim's name in the signed identity and in the configuration.
    pub fn name(self) -> &'static str {
        match self {
            IdentityClaim::Subject => "sub",
            IdentityClaim::ObjectId => "oid",
            IdentityClaim::TenantId => "tid",
            IdentityClaim::Client => "azp",
            IdentityClaim::Scopes => "scope",
            IdentityClaim::Roles => "roles",
            IdentityClaim::Route => "route",
            IdentityClaim::IdentityProvider => "idp",
            IdentityClaim::TokenId => "token_id",
        }
    }
}
