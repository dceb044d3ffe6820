//! A route once validated: what it matches (methods, hosts, a canonical path pattern), what
//! it requires (anonymous, or conditions on the verified claims) and what it tolerates.

use super::{HeaderMapping, PathSegment, SenderConstraint, StepUp};
use crate::upstream::Frameworks;

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
