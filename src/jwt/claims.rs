//! What a verified token says about its caller: the claim set ([`Claims`], kept compactly
//! with every cached token), and the delegated scopes, app roles and calling application
//! the policy step reads from it — checked once, when the token is read, and read in place
//! from the claims after that — and whether it is an access token at all.
//!
//! Read as each issuer means them ([`ClaimRules`]): delegated scopes from one claim only —
//! the issuer's (`scp` for Entra and Okta, `scope` for RFC 9068 issuers), or, where the
//! configuration names none, whichever the token carries (a token with both is refused:
//! a second claim never widens the first); as a string split on U+0020 only (a tab or
//! NBSP is part of a name); `roles` as a string is one role, never split; the calling
//! application is `azp` (OIDC, Entra v2), `appid` (Entra v1), `client_id` (RFC 9068) or
//! `cid` (Okta), and where several are present they must agree — an Entra issuer reads
//! only its token version's own (`azp` in v2.0 tokens, `appid` in v1.0). Names compare
//! exactly.

use std::{borrow::Cow, sync::Arc};

use serde_json::{Map, Value};

use super::memo::AnswerMemo;
use crate::{config::StepUpChallenge, deny::DenyReason};

mod set;

pub use set::{Claim, Claims, Member};

/// The claims of a token whose signature, issuer, audience and lifetime were verified.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedClaims {
    /// The configured issuer the token was verified against.
    pub issuer: Arc<str>,
    pub claims: Claims,
    /// The claim holding the delegated permissions: `scp` (Entra, Okta) or `scope` (RFC
    /// 9068), a string of space-separated names or an array of names. Scopes, roles and
    /// the calling application are read from the claims when asked for, not copied: the
    /// claims are kept with every cached token.
    scope_claim: &'static str,
    /// The claim naming the calling application (see the module doc), if any does.
    client_claim: Option<&'static str>,
    /// What the token is bound to (`cnf`), checked on every request by `binding`; `None`
    /// for a bearer token, the most common kind, which so costs no room for it.
    bound: Option<Box<Confirmation>>,
    /// The allow answers already encoded for this token, by route.
    pub answers: AnswerMemo,
    /// How the issuer's clients are told to step up ([`crate::policy`]).
    pub step_up_challenge: StepUpChallenge,
}

/// How one issuer's tokens name their delegated scopes and calling application.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClaimRules {
    /// The scope claim: `Some("scp")` or `Some("scope")`; `None`: whichever is present.
    pub scope_claim: Option<&'static str>,
    /// The one claim naming the calling application (Entra: by token version); `None`:
    /// any of [`CLIENT_CLAIMS`], which must agree.
    pub client_claim: Option<&'static str>,
    /// The issuer's form of step-up challenge.
    pub step_up_challenge: StepUpChallenge,
}

impl VerifiedClaims {
    /// [`VerifiedClaims::read`] with no issuer-specific rules.
    pub fn new(issuer: Arc<str>, claims: Map<String, Value>) -> Result<Self, DenyReason> {
        VerifiedClaims::read(issuer, Claims::from(claims), ClaimRules::default())
    }

    /// Reads scopes, roles and the calling application as `rules` say. Refuses what is
    /// not an access token, whatever it carries: a token with no `scp`, `scope` or
    /// `roles`, and one with a mark of another kind of token ([`NOT_ACCESS_TOKEN_MARKS`]).
    pub fn read(issuer: Arc<str>, claims: Claims, rules: ClaimRules) -> Result<Self, DenyReason> {
        let has = |name: &str| claims.get(name).is_some();
        let permissions = ["scp", "scope", "roles"].into_iter().any(has);
        if let Some(mark) = NOT_ACCESS_TOKEN_MARKS
            .iter()
            .find(|mark| mark.found(&claims))
        {
            tracing::debug!(claim = mark.claim, kind = mark.why, "Not an access token");
            return Err(DenyReason::NotAccessToken);
        }
        if !permissions {
            return Err(DenyReason::NotAccessToken);
        }
        let scope_claim = match rules.scope_claim {
            Some(claim) => claim,
            None if has("scp") && has("scope") => {
                return Err(DenyReason::MalformedToken);
            }
            None if has("scp") => "scp",
            None => "scope",
        };
        for names in [scope_claim, "roles"] {
            match claims.get(names) {
                None | Some(Claim::Text(_) | Claim::Json(Value::Null)) => {}
                Some(Claim::Json(Value::Array(items))) if items.iter().all(Value::is_string) => {}
                Some(_) => return Err(DenyReason::MalformedToken),
            }
        }
        let client_claim = match (calling_app(&claims)?, rules.client_claim) {
            (client, None) => client,
            (_, Some(own)) => {
                Some(own).filter(|own| claims.get(own).and_then(Claim::as_str).is_some())
            }
        };
        let confirmation = Confirmation::read(claims.get("cnf"))?;
        Ok(VerifiedClaims {
            issuer,
            claims,
            scope_claim,
            client_claim,
            bound: (!confirmation.is_unbound()).then(|| Box::new(confirmation)),
            answers: AnswerMemo::default(),
            step_up_challenge: rules.step_up_challenge,
        })
    }

    /// The delegated permissions: the scope claim split on U+0020, or its array's items.
    pub fn scopes(&self) -> Names<'_> {
        match self.claims.get(self.scope_claim) {
            Some(Claim::Text(names)) => Names::Split(names.split(' ')),
            Some(Claim::Json(Value::Array(items))) => Names::Items(items.iter()),
            _ => Names::One(None),
        }
    }

    /// The application permissions: `roles`, an array of names or one name as a string.
    pub fn roles(&self) -> Names<'_> {
        match self.claims.get("roles") {
            Some(Claim::Text(role)) => Names::One(Some(role)),
            Some(Claim::Json(Value::Array(items))) => Names::Items(items.iter()),
            _ => Names::One(None),
        }
    }

    /// What the token is bound to (`cnf`).
    pub fn confirmation(&self) -> &Confirmation {
        static UNBOUND: Confirmation = Confirmation {
            jkt: None,
            x5t_s256: None,
        };
        self.bound.as_deref().unwrap_or(&UNBOUND)
    }

    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes().any(|s| s == scope)
    }

    pub fn has_role(&self, role: &str) -> bool {
        self.roles().any(|r| r == role)
    }

    /// The calling application (`azp`, `appid`, `client_id` or `cid`).
    pub fn client_id(&self) -> Option<&str> {
        self.claims.get(self.client_claim?)?.as_str()
    }

    /// A claim as text ([`Claim::text`]); `None` when the claim is absent.
    pub fn text(&self, name: &str) -> Option<Cow<'_, str>> {
        self.claims.get(name)?.text()
    }

    /// The scope claim when it is a string, as the token wrote it.
    pub fn scope_text(&self) -> Option<&str> {
        self.claims.get(self.scope_claim)?.as_str()
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
    fn read(cnf: Option<Claim<'_>>) -> Result<Confirmation, DenyReason> {
        let members = match cnf {
            None => return Ok(Confirmation::default()),
            Some(Claim::Json(Value::Object(members))) => members,
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

/// A mark of a token that is not an access token, whatever else it carries.
pub struct Mark {
    pub claim: &'static str,
    /// `None`: the claim's presence is the mark; else the (string) values that are.
    pub values: Option<&'static [&'static str]>,
    /// Whose tokens carry it, and what it marks (for the identity provider guide).
    pub why: &'static str,
}

impl Mark {
    fn found(&self, claims: &Claims) -> bool {
        match (claims.get(self.claim), self.values) {
            (None, _) => false,
            (Some(_), None) => true,
            (Some(value), Some(values)) => value
                .as_str()
                .is_some_and(|v| values.iter().any(|m| v.eq_ignore_ascii_case(m))),
        }
    }
}

/// The marks of ID tokens, refresh, logout and security-event tokens of the issuers
/// portcullis is used with.
pub const NOT_ACCESS_TOKEN_MARKS: &[Mark] = &[
    Mark {
        claim: "nonce",
        values: None,
        why: "ID tokens (OpenID Connect Core §2; Entra, Okta, Auth0, Google, Keycloak)",
    },
    Mark {
        claim: "at_hash",
        values: None,
        why: "ID tokens issued with an access token (OIDC Core §3.1.3.6, §3.3.2.11)",
    },
    Mark {
        claim: "c_hash",
        values: None,
        why: "ID tokens issued with a code (OIDC Core §3.3.2.11)",
    },
    Mark {
        claim: "s_hash",
        values: None,
        why: "ID tokens carrying the state hash (FAPI 1.0 Advanced §5.1)",
    },
    Mark {
        claim: "events",
        values: None,
        why: "security event and back-channel logout tokens (RFC 8417 §2.2, OIDC Back-Channel Logout §2.4)",
    },
    Mark {
        claim: "typ",
        values: Some(&["ID", "Refresh", "Logout", "Offline", "Serialized-ID"]),
        why: "Keycloak's ID, refresh, logout and offline tokens (its access tokens say `Bearer`)",
    },
    Mark {
        claim: "token_use",
        values: Some(&["id", "refresh"]),
        why: "Amazon Cognito ID tokens (its access tokens say `access`)",
    },
];

/// Claims naming the calling application, in the order they are read.
const CLIENT_CLAIMS: &[&str] = &["azp", "appid", "client_id", "cid"];

/// The names of a scope or role claim, read in place: a string of names separated by
/// U+0020 (RFC 6749 §3.3; runs of spaces name nothing), an array of names (checked to be
/// strings when the token was read), or one name (a `roles` string, never split).
pub enum Names<'a> {
    Split(std::str::Split<'a, char>),
    Items(std::slice::Iter<'a, Value>),
    One(Option<&'a str>),
}

impl<'a> Iterator for Names<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        match self {
            Names::Split(names) => names.find(|name| !name.is_empty()),
            Names::Items(items) => items.find_map(Value::as_str),
            Names::One(name) => name.take().filter(|name| !name.is_empty()),
        }
    }
}

/// The claim naming the calling application; claims that name it must be strings and
/// agree, and the first of them is read.
fn calling_app(claims: &Claims) -> Result<Option<&'static str>, DenyReason> {
    let mut found: Option<(&'static str, &str)> = None;
    for name in CLIENT_CLAIMS {
        match claims.get(name) {
            None | Some(Claim::Json(Value::Null)) => {}
            Some(Claim::Text(client)) => match found {
                Some((_, seen)) if seen != client => return Err(DenyReason::MalformedToken),
                Some(_) => {}
                None => found = Some((name, client)),
            },
            Some(_) => return Err(DenyReason::MalformedToken),
        }
    }
    Ok(found.map(|(name, _)| name))
}

#[cfg(test)]
mod tests;
