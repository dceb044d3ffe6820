//! What a verified token says about its caller: the claim set, plus the delegated scopes
//! and app roles read once into sets the policy step compares against.

use std::sync::Arc;

use serde_json::{Map, Value};

use crate::{deny::DenyReason, memo::AnswerMemo};

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
    /// The allow answers already encoded for this token, by route.
    pub answers: AnswerMemo,
}

impl VerifiedClaims {
    /// Reads scopes and roles; refuses a token that carries neither claim, because only an
    /// access token is proof of permission (an ID token has neither).
    pub fn new(issuer: Arc<str>, claims: Map<String, Value>) -> Result<Self, DenyReason> {
        let has_any = ["scp", "scope", "roles"]
            .iter()
            .any(|c| claims.contains_key(*c));
        if !has_any {
            return Err(DenyReason::NotAccessToken);
        }
        let mut scopes = names(claims.get("scp"))?;
        for extra in names(claims.get("scope"))? {
            if !scopes.contains(&extra) {
                scopes.push(extra);
            }
        }
        let roles = names(claims.get("roles"))?;
        Ok(VerifiedClaims {
            issuer,
            claims,
            scopes,
            roles,
            answers: AnswerMemo::default(),
        })
    }

    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }

    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }

    /// The calling application: `azp` (OIDC, Entra v2) or else `appid` (Entra v1).
    pub fn client_id(&self) -> Option<&str> {
        ["azp", "appid"]
            .iter()
            .find_map(|c| self.claims.get(*c).and_then(Value::as_str))
    }
}

/// A space-separated string or an array of strings; anything else is malformed.
fn names(value: Option<&Value>) -> Result<Vec<String>, DenyReason> {
    match value {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(s.split_whitespace().map(str::to_owned).collect()),
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
    fn client_id_prefers_azp_then_appid() {
        let v2 = claims(json!({"scp": "x", "azp": "app-2", "appid": "app-1"})).unwrap();
        assert_eq!(v2.client_id(), Some("app-2"));
        let v1 = claims(json!({"scp": "x", "appid": "app-1"})).unwrap();
        assert_eq!(v1.client_id(), Some("app-1"));
    }
}
