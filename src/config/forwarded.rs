//! What an allow forwards from the verified claims: identity header mappings (header ←
//! claim or derived value) and the fields of Envoy dynamic metadata.

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
/// Envoy work on every request (docs/src/measurements.md measures it), so a deployment that
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

/// What the shipped Envoy access logs read (`route`, `client_id`, `tenant_id`): each field
/// costs Envoy work on every allow, so the others are opt-in.
impl Default for MetadataFields {
    fn default() -> Self {
        MetadataFields::ROUTE
            .with(MetadataFields::CLIENT_ID)
            .with(MetadataFields::TENANT_ID)
    }
}
