//! `portcullis check`: explains one decision offline, with the same code the service runs
//! — the matched route, each condition with pass/fail, the decision, and what Envoy would
//! be told (headers to set and remove, or the deny status and challenge). Claims either
//! come from a token verified for real (its issuer's JWKS is fetched), or are taken
//! unverified from a token or a JSON document, which the report says in capitals.

use std::fmt::Write;

use serde_json::{Map, Value};

use crate::{
    config::Access,
    deny::{Deny, DenyReason},
    jwt::VerifiedClaims,
    pb::auth::{CheckResponse, check_response::HttpResponse},
    policy::{self, Route},
    respond,
    state::Engine,
};

/// Where the claims of the explained request come from.
pub enum Credentials {
    None,
    /// A token to verify fully (signature, issuer, audience, lifetime, allow-lists).
    Token(String),
    /// Claims to use as they are: signature and validation are skipped.
    Unverified(Map<String, Value>),
}

/// The request to explain.
pub struct Request<'a> {
    pub method: &'a str,
    pub host: &'a str,
    pub path: &'a str,
}

/// The report, and whether the request would be allowed.
pub struct Report {
    pub text: String,
    pub allowed: bool,
}

pub async fn explain(engine: &Engine, request: &Request<'_>, credentials: Credentials) -> Report {
    let mut text = String::new();
    let _ = writeln!(
        text,
        "request:  {} {} (host {:?})",
        request.method, request.path, request.host
    );
    let route = match crate::extract::canonical_host(request.host)
        .and_then(|host| engine.policy.route(request.method, &host, request.path))
    {
        Ok(route) => route,
        Err(reason) => return finish(text, engine, None, Err(reason.into())),
    };
    let position = engine
        .policy
        .routes()
        .iter()
        .position(|r| r.name == route.name)
        .unwrap_or(0);
    let _ = writeln!(
        text,
        "route:    {} (first match, route {} of {}){}",
        route.name,
        position + 1,
        engine.policy.routes().len(),
        if route.audit {
            ", AUDIT MODE: denies are only logged"
        } else {
            ""
        }
    );
    if matches!(route.access, Access::Anonymous) {
        let _ = writeln!(text, "access:   anonymous: no token needed");
        let response = respond::allow(route, None, &engine.forwarding, None);
        return finish(text, engine, Some(route), Ok(response));
    }
    let claims = match credentials {
        Credentials::None => Err(Deny::from(DenyReason::MissingToken)),
        Credentials::Token(token) => {
            let verified = engine.verifier.verify(&token).await;
            if verified.is_ok() {
                let _ = writeln!(
                    text,
                    "token:    verified (signature, issuer, audience, lifetime)"
                );
            }
            verified.map_err(Deny::from)
        }
        Credentials::Unverified(map) => {
            let _ = writeln!(
                text,
                "token:    NOT VERIFIED: claims taken as given; signature, issuer, audience and lifetime were not checked"
            );
            let issuer = map.get("iss").and_then(Value::as_str).unwrap_or("(none)");
            VerifiedClaims::new(issuer.into(), map.clone())
                .map(std::sync::Arc::new)
                .map_err(Deny::from)
        }
    };
    let claims = match claims {
        Ok(claims) => claims,
        Err(deny) => {
            let result = audit_or(&mut text, route, engine, None, deny);
            return finish(text, engine, Some(route), result);
        }
    };
    let _ = writeln!(text, "scopes:   [{}]", claims.scopes.join(", "));
    let _ = writeln!(text, "roles:    [{}]", claims.roles.join(", "));
    for outcome in policy::explain(route, &claims) {
        let mark = if outcome.holds { "pass" } else { "FAIL" };
        let _ = writeln!(
            text,
            "  [{mark}] {}: {}",
            outcome.group, outcome.description
        );
    }
    let result = match policy::evaluate(route, &claims) {
        Ok(()) => Ok(respond::allow(
            route,
            Some(&claims),
            &engine.forwarding,
            None,
        )),
        Err(deny) => audit_or(&mut text, route, engine, Some(&claims), deny),
    };
    finish(text, engine, Some(route), result)
}

/// An audit-mode route allows what it would deny; the report says what.
fn audit_or(
    text: &mut String,
    route: &Route,
    engine: &Engine,
    claims: Option<&VerifiedClaims>,
    deny: Deny,
) -> Result<CheckResponse, Deny> {
    if route.audit {
        let _ = writeln!(
            text,
            "audit:    would DENY {} {} if enforced",
            deny.reason.http_status(),
            deny.reason.code()
        );
        Ok(respond::allow(
            route,
            claims,
            &engine.forwarding,
            Some(deny.reason),
        ))
    } else {
        Err(deny)
    }
}

fn finish(
    mut text: String,
    engine: &Engine,
    route: Option<&Route>,
    result: Result<CheckResponse, Deny>,
) -> Report {
    let response = match result {
        Ok(response) => response,
        Err(deny) => {
            let _ = writeln!(
                text,
                "decision: DENY {} {}",
                deny.reason.http_status(),
                deny.reason.code()
            );
            respond::deny(&deny, &engine.realm, route.map(|r| &*r.name))
        }
    };
    let allowed = match &response.http_response {
        Some(HttpResponse::OkResponse(ok)) => {
            let _ = writeln!(text, "decision: ALLOW");
            let _ = writeln!(text, "headers set for the upstream:");
            for header in ok.headers.iter().filter_map(|h| h.header.as_ref()) {
                let _ = writeln!(text, "  {}: {}", header.key, header.value);
            }
            let _ = writeln!(text, "headers removed: {}", ok.headers_to_remove.join(", "));
            true
        }
        Some(HttpResponse::DeniedResponse(denied)) => {
            for header in denied.headers.iter().filter_map(|h| h.header.as_ref()) {
                let _ = writeln!(text, "  {}: {}", header.key, header.value);
            }
            let _ = writeln!(text, "  body: {}", denied.body);
            false
        }
        None => false,
    };
    Report { text, allowed }
}
