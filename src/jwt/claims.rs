//! What a verified token says about its caller: the claim set, plus the delegated scopes,
//! app roles and calling application read once for the policy step — and whether it is an
//! access token at all.
//!
//! Read as each issuer means them: `scp`/`scope` as a string is split on U+0020 only (a
//! tab or NBSP is part of a name); `roles` as a string is one role, never split; the
//! calling application is `azp` (OIDC, Entra v2), `appid` (Entra v1), `client_id`
//! (RFC 9068) or `cid` (Okta), and where several are present they must agree. Names
//! compare exactly.

use std::{borrow::Cow, sync::Arc};

use serde_json::{Map, Value};

use super::memo::AnswerMemo;
use crate::deny::DenyReason;

/// The claims of a token whose signature, issuer, audience and lifetime were verified.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedClaims {
    /// The configured issuer the token was verified against.
    pub issuer: Arc<str>,
    pub claims: Map<String, Value>,
    /// Delegated permissions: `scp` (Entra, Okta) and `scope` (RFC 9068), string with
    /// space-separated names or array of names.
    pub scopes: Vec<String>,
    /// Application permissions: `roles` (Entra app roles), array of names.
    pub roles: Vec<String>,
    /// The calling application (see the module doc).
    pub client: Option<String>,
    /// What the token is bound to (`cnf`), checked on every request by `binding`.
    pub confirmation: Confirmation,
    /// The allow answers already encoded for this token, by route.
    pub answers: AnswerMemo,
}

impl VerifiedClaims {
    /// Reads scopes, roles and the calling application. Refuses what is not an access
    /// token, whatever it carries: a token with no `scp`, `scope` or `roles`, one with
    /// the claims only ID tokens have (`nonce`, `at_hash`, `c_hash`), and Keycloak's ID,
    /// refresh and logout tokens (`typ` claim).
    pub fn new(issuer: Arc<str>, claims: Map<String, Value>) -> Result<Self, DenyReason> {
        let permissions = ["scp", "scope", "roles"]
            .iter()
            .any(|c| claims.contains_key(*c));
        let id_token = ID_TOKEN_CLAIMS.iter().any(|c| claims.contains_key(*c));
        let other_kind = claims
            .get("typ")
            .and_then(Value::as_str)
            .is_some_and(|typ| NOT_ACCESS_TYPES.iter().any(|t| typ.eq_ignore_ascii_case(t)));
        if !permissions || id_token || other_kind {
            return Err(DenyReason::NotAccessToken);
        }
        let mut scopes = scope_names(claims.get("scp"))?;
        for extra in scope_names(claims.get("scope"))? {
            if !scopes.contains(&extra) {
                scopes.push(extra);
            }
        }
        let roles = match claims.get("roles") {
            Some(Value::String(role)) if !role.is_empty() => vec![role.clone()],
            Some(Value::String(_)) => Vec::new(),
            other => array_names(other)?,
        };
        let client = calling_app(&claims)?;
        let confirmation = Confirmation::read(claims.get("cnf"))?;
        Ok(VerifiedClaims {
            issuer,
            claims,
            scopes,
            roles,
            client,
            confirmation,
            answers: AnswerMemo::default(),
        })
    }

    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }

    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }

    /// The calling application (`azp`, `appid`, `client_id` or `cid`).
    pub fn client_id(&self) -> Option<&str> {
        self.client.as_deref()
    }

    /// A claim as text: a string as it is, a number or boolean printed; `None` when the
    /// claim is absent or of another type.
    pub fn text(&self, name: &str) -> Option<Cow<'_, str>> {
        match self.claims.get(name)? {
            Value::String(s) => Some(Cow::Borrowed(s)),
            Value::Number(n) => Some(Cow::Owned(n.to_string())),
            Value::Bool(b) => Some(Cow::Owned(b.to_string())),
            _ => None,
        }
    }
}

/// The key a token is bound to (RFC 7800 `cnf`): a DPoP key's RFC 7638 thumbprint
/// (RFC 9449 `jkt`) and/or a client certificate's SHA-256 thumbprint (RFC 8705
/// `x5t#S256`), both base64url. Both `None`: an unbound (bearer) token.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Confirmation {
    pub jkt: Option<String>,
    pub x5t_s256: Option<String>,
}

impl Confirmation {
    /// Reads `cnf`. A member this service cannot check (`jwk`, `jwe`, `jku`, `kid`, …)
    /// makes the token `unsupported_binding`: a binding is never ignored.
    fn read(cnf: Option<&Value>) -> Result<Confirmation, DenyReason> {
        let members = match cnf {
            None => return Ok(Confirmation::default()),
            Some(Value::Object(members)) => members,
            Some(_) => return Err(DenyReason::MalformedToken),
        };
        let mut confirmation = Confirmation::default();
        for (name, value) in members {
            let slot = match name.as_str() {
                "jkt" => &mut confirmation.jkt,
                "x5t#S256" => &mut confirmation.x5t_s256,
                _ => return Err(DenyReason::UnsupportedBinding),
            };
            match value {
                Value::String(thumbprint) if !thumbprint.is_empty() => {
                    *slot = Some(thumbprint.clone());
                }
                _ => return Err(DenyReason::MalformedToken),
            }
        }
        if confirmation.is_unbound() {
            return Err(DenyReason::UnsupportedBinding);
        }
        Ok(confirmation)
    }

    pub fn is_unbound(&self) -> bool {
        self.jkt.is_none() && self.x5t_s256.is_none()
    }

    /// The binding methods, as the `binding` identity header and metadata name them.
    pub fn methods(&self) -> &'static str {
        match (&self.jkt, &self.x5t_s256) {
            (Some(_), Some(_)) => "dpop mtls",
            (Some(_), None) => "dpop",
            (None, Some(_)) => "mtls",
            (None, None) => "",
        }
    }

    /// The thumbprint of the key the token is bound to (the DPoP key's first).
    pub fn thumbprint(&self) -> Option<&str> {
        self.jkt.as_deref().or(self.x5t_s256.as_deref())
    }
}

/// Claims only ID tokens carry (OpenID Connect Core §2, §3.1.3.6, §3.3.2.11).
const ID_TOKEN_CLAIMS: &[&str] = &["nonce", "at_hash", "c_hash"];
/// Keycloak's `typ` claim for tokens that are not access tokens (access tokens: `Bearer`).
const NOT_ACCESS_TYPES: &[&str] = &["ID", "Refresh", "Logout", "Offline"];
/// Claims naming the calling application, in the order they are read.
const CLIENT_CLAIMS: &[&str] = &["azp", "appid", "client_id", "cid"];

/// Scopes: a string of names separated by U+0020 (RFC 6749 §3.3), or an array of names.
fn scope_names(value: Option<&Value>) -> Result<Vec<String>, DenyReason> {
    match value {
        Some(Value::String(s)) => Ok(s
            .split(' ')
            .filter(|name| !name.is_empty())
            .map(str::to_owned)
            .collect()),
        other => array_names(other),
    }
}

/// An array of strings, each one name; absent or null is none; anything else is malformed.
fn array_names(value: Option<&Value>) -> Result<Vec<String>, DenyReason> {
    match value {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| {
                item.as_str()
                    .map(str::to_owned)
                    .ok_or(DenyReason::MalformedToken)
            })
            .collect(),
        Some(_) => Err(DenyReason::MalformedToken),
    }
}

/// The calling application; claims that name it must be strings and agree.
fn calling_app(claims: &Map<String, Value>) -> Result<Option<String>, DenyReason> {
    let mut found: Option<&str> = None;
    for name in CLIENT_CLAIMS {
        match claims.get(*name) {
            None | Some(Value::Null) => {}
            Some(Value::String(client)) => match found {
                Some(seen) if seen != client => return Err(DenyReason::MalformedToken),
                _ => found = Some(client),
            },
            Some(_) => return Err(DenyReason::MalformedToken),
        }
    }
    Ok(found.map(str::to_owned))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(value: Value) -> Result<VerifiedClaims, DenyReason> {
        let Value::Object(map) = value else {
            unreachable!("test claims are objects")
        };
        VerifiedClaims::new("https://idp/".into(), map)
    }

    #[test]
    fn scopes_come_from_scp_or_scope_in_string_or_array_form() {
        let c = claims(json!({"scp": "Orders.Read  Orders.Write"})).unwrap();
        assert_eq!(c.scopes, ["Orders.Read", "Orders.Write"]);
        let c = claims(json!({"scope": ["a", "b"], "scp": "a"})).unwrap();
        assert_eq!(c.scopes, ["a", "b"]);
        let c = claims(json!({"roles": ["Orders.Read.All"]})).unwrap();
        assert!(c.has_role("Orders.Read.All") && c.scopes.is_empty());
    }

    #[test]
    fn claim_shapes_are_read_as_issuers_mean_them() {
        // (claims, scopes, roles)
        let cases: &[(Value, &[&str], &[&str])] = &[
            (
                json!({"scp": "User.Read\tOrders.Read"}),
                &["User.Read\tOrders.Read"],
                &[],
            ),
            (
                json!({"scp": "User.Read\u{a0}Orders.Read"}),
                &["User.Read\u{a0}Orders.Read"],
                &[],
            ),
            (json!({"scope": " a  b "}), &["a", "b"], &[]),
            (
                json!({"roles": "Orders.Viewer Admin"}),
                &[],
                &["Orders.Viewer Admin"],
            ),
            (json!({"roles": ""}), &[], &[]),
            (json!({"roles": ["A B", "C"]}), &[], &["A B", "C"]),
        ];
        for (value, scopes, roles) in cases {
            let c = claims(value.clone()).unwrap();
            assert_eq!(c.scopes, *scopes, "{value}");
            assert_eq!(c.roles, *roles, "{value}");
        }
        let tabbed = claims(json!({"scp": "User.Read\tOrders.Read"})).unwrap();
        assert!(!tabbed.has_scope("Orders.Read") && !tabbed.has_scope("User.Read"));
        let split = claims(json!({"roles": "Orders.Viewer Admin"})).unwrap();
        assert!(!split.has_role("Admin"));
    }

    #[test]
    fn id_refresh_and_logout_tokens_are_never_access_tokens() {
        let refused = [
            json!({"sub": "u", "nonce": "n", "aud": "client", "roles": ["Admin"]}),
            json!({"scp": "a", "at_hash": "h"}),
            json!({"scp": "a", "c_hash": "h"}),
            json!({"scope": "openid", "typ": "ID"}),
            json!({"scope": "openid", "typ": "Refresh"}),
            json!({"scope": "openid", "typ": "logout"}),
            json!({"scope": "openid", "typ": "Offline"}),
        ];
        for value in refused {
            assert_eq!(
                claims(value.clone()),
                Err(DenyReason::NotAccessToken),
                "{value}"
            );
        }
        assert!(claims(json!({"scope": "openid", "typ": "Bearer"})).is_ok());
    }

    #[test]
    fn matching_is_exact() {
        let c = claims(json!({"scp": "Orders.ReadWrite", "roles": ["Admin"]})).unwrap();
        assert!(!c.has_scope("Orders.Read"));
        assert!(!c.has_scope("orders.readwrite"));
        assert!(!c.has_role("admin"));
        assert!(c.has_scope("Orders.ReadWrite"));
    }

    #[test]
    fn id_tokens_and_malformed_permission_claims_are_refused() {
        assert_eq!(
            claims(json!({"sub": "u", "nonce": "n", "aud": "client"})),
            Err(DenyReason::NotAccessToken)
        );
        assert_eq!(claims(json!({"scp": 7})), Err(DenyReason::MalformedToken));
        assert_eq!(
            claims(json!({"roles": [1]})),
            Err(DenyReason::MalformedToken)
        );
    }

    #[test]
    fn the_calling_app_has_one_name_whichever_claim_carries_it() {
        for claim in ["azp", "appid", "client_id", "cid"] {
            let c = claims(json!({"scp": "x", claim: "app-1"})).unwrap();
            assert_eq!(c.client_id(), Some("app-1"), "{claim}");
        }
        let agreeing = claims(json!({"scp": "x", "azp": "app", "appid": "app"})).unwrap();
        assert_eq!(agreeing.client_id(), Some("app"));
        for disagreeing in [
            json!({"scp": "x", "azp": "app-2", "appid": "app-1"}),
            json!({"scp": "x", "azp": "app-2", "client_id": "app-1"}),
            json!({"scp": "x", "azp": 7}),
        ] {
            assert_eq!(
                claims(disagreeing.clone()),
                Err(DenyReason::MalformedToken),
                "{disagreeing}"
            );
        }
    }
}
