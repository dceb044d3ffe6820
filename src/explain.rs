//! `portcullis check`: explains one decision offline by running the service's own
//! pipeline ([`check::decide`]) on the request and formatting its [`Verdict`] — the
//! route it matched (and any other route a reading of it reaches), each condition with
//! pass/fail, the decision, and what Envoy would be told (headers to set and remove, or
//! the deny status and challenge). Claims either come from a token verified for real
//! (its issuer's JWKS is fetched), or are taken unverified from a token or a JSON
//! document, which the report says in capitals.

use std::{fmt::Write, sync::Arc};

use serde_json::{Map, Value, json};

use crate::{
    check::{self, Authentication, Verdict},
    config::Access,
    deny::Deny,
    extract::check_request,
    jwt::VerifiedClaims,
    pb::auth::check_response::HttpResponse,
    policy, respond,
    state::Engine,
};

/// Where the claims of the explained request come from.
pub enum Credentials {
    None,
    /// A token to verify fully (signature, issuer, audience, lifetime, allow-lists).
    Token(String),
    /// A token whose claims are used as they are: signature and validation are skipped.
    UnverifiedToken(String),
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
    /// The same for tools (`portcullis check --output json`).
    pub json: Value,
    pub allowed: bool,
}

pub async fn explain(engine: &Engine, request: &Request<'_>, credentials: Credentials) -> Report {
    let mut text = String::new();
    let _ = writeln!(
        text,
        "request:  {} {} (host {:?})",
        request.method, request.path, request.host
    );
    let (authorization, authentication, unverified) = match credentials {
        Credentials::None => (None, Authentication::Bearer, false),
        Credentials::Token(token) => {
            let _ = describe_token(&mut text, engine, &token);
            (
                Some(format!("Bearer {token}")),
                Authentication::Bearer,
                false,
            )
        }
        Credentials::UnverifiedToken(token) => {
            let claims = describe_token(&mut text, engine, &token).unwrap_or_default();
            (None, given(claims), true)
        }
        Credentials::Unverified(claims) => (None, given(claims), true),
    };
    let headers: Vec<(&str, &str)> = authorization
        .iter()
        .map(|a| ("authorization", a.as_str()))
        .collect();
    let check = check_request(request.method, request.host, request.path, &headers);
    let verdict = check::decide(engine, &check, authentication, None).await;
    describe(&mut text, engine, &verdict, unverified);
    let allowed = verdict.outcome.is_ok();
    answer(&mut text, engine, &verdict);
    let json = summary(engine, request, &verdict, unverified);
    Report {
        text,
        json,
        allowed,
    }
}

/// The decision as data: the routes, each condition, the answer Envoy would get.
fn summary(
    engine: &Engine,
    request: &Request<'_>,
    verdict: &Verdict<'_>,
    unverified: bool,
) -> Value {
    let conditions: Vec<Value> = match verdict.verified() {
        None => Vec::new(),
        Some(claims) => verdict
            .reached
            .iter()
            .flat_map(|route| {
                let paths = policy::paths_of(&verdict.paths, route);
                policy::explain(route, claims, &paths)
                    .into_iter()
                    .map(|o| json!({ "route": &*route.name, "group": o.group, "condition": o.description, "holds": o.holds }))
                    .collect::<Vec<_>>()
            })
            .collect(),
    };
    let mut out = json!({
        "request": { "method": request.method, "host": request.host, "path": request.path },
        "route": verdict.primary.map(|r| &*r.name),
        "reached": verdict.reached.iter().map(|r| &*r.name).collect::<Vec<_>>(),
        "token": match (&verdict.claims, unverified) {
            (None, _) => "none",
            (Some(_), true) => "unverified",
            (Some(Ok(_)), false) => "verified",
            (Some(Err(_)), false) => "refused",
        },
        "conditions": conditions,
        "decision": if verdict.outcome.is_ok() { "allow" } else { "deny" },
        "reason": verdict.outcome.as_ref().err().map(|d| d.reason.code()),
        "audit_would_deny": verdict.outcome.as_ref().ok().copied().flatten().map(|w| w.code()),
    });
    if let Ok(response) = respond::answer(engine, verdict, false).into_response() {
        match response.http_response {
            Some(HttpResponse::OkResponse(ok)) => {
                out["status"] = json!(200);
                let set: Map<String, Value> = ok
                    .headers
                    .iter()
                    .filter_map(|h| h.header.as_ref())
                    .map(|h| (h.key.clone(), json!(h.value)))
                    .collect();
                out["headers"] = json!({ "set": set, "removed": ok.headers_to_remove });
            }
            Some(HttpResponse::DeniedResponse(denied)) => {
                out["status"] = json!(denied.status.map_or(403, |s| s.code));
                let headers: Map<String, Value> = denied
                    .headers
                    .iter()
                    .filter_map(|h| h.header.as_ref())
                    .map(|h| (h.key.clone(), json!(h.value)))
                    .collect();
                out["headers"] = json!({ "response": headers });
            }
            None => {}
        }
    }
    out
}

/// Claims taken as they are, as the pipeline would read a verified token's.
pub(crate) fn given(claims: Map<String, Value>) -> Authentication {
    let issuer = claims
        .get("iss")
        .and_then(Value::as_str)
        .unwrap_or("(none)")
        .to_owned();
    let claims = VerifiedClaims::new(issuer.into(), claims)
        .map(Arc::new)
        .map_err(Deny::from);
    Authentication::Given(claims)
}

/// What the token says about itself (read without verifying it), beside what its issuer
/// accepts: the first thing to look at when a token is refused. Its claims, when
/// readable.
fn describe_token(text: &mut String, engine: &Engine, token: &str) -> Option<Map<String, Value>> {
    let header = jsonwebtoken::decode_header(token);
    let claims = jsonwebtoken::dangerous::insecure_decode_claims::<Map<String, Value>>(token);
    let (Ok(header), Ok(claims)) = (header, claims) else {
        let _ = writeln!(text, "token:    not a readable JWT");
        return None;
    };
    let now = jsonwebtoken::get_current_timestamp() as i64;
    let time = |name: &str| {
        let at = claims.get(name)?.as_i64()?;
        Some(format!("{name} {at} ({})", relative(at - now)))
    };
    let iss = claims.get("iss").and_then(Value::as_str).unwrap_or("");
    let mut parts = vec![
        format!("iss {iss:?}"),
        format!(
            "aud {}",
            claims.get("aud").map_or("(none)".into(), Value::to_string)
        ),
        format!("kid {:?}", header.kid.as_deref().unwrap_or("(none)")),
        format!("alg {:?}", header.alg),
        format!("typ {}", header.typ.as_deref().unwrap_or("(none)")),
    ];
    parts.extend(["exp", "nbf", "iat"].iter().filter_map(|n| time(n)));
    let _ = writeln!(text, "token:    {}", parts.join(", "));
    if let Some(cnf) = claims.get("cnf") {
        let _ = writeln!(
            text,
            "bound:    cnf {cnf}: sent as Bearer here; through Envoy it needs its DPoP proof \
             (`jkt`) or client certificate (`x5t#S256`)"
        );
    }
    let _ = writeln!(text, "issuer:   {}", engine.verifier.describe(iss));
    Some(claims)
}

/// A signed number of seconds from now in words: "now", "in 4m10s", "10m0s ago".
fn relative(delta: i64) -> String {
    let secs = delta.unsigned_abs();
    let span = format!("{}m{}s", secs / 60, secs % 60);
    match delta {
        0 => "now".to_owned(),
        1.. => format!("in {span}"),
        _ => format!("{span} ago"),
    }
}

/// The routes, the token and each condition.
fn describe(text: &mut String, engine: &Engine, verdict: &Verdict<'_>, unverified: bool) {
    if let Some(route) = verdict.primary {
        let routes = engine
            .policies
            .all()
            .map(|set| set.policy.routes())
            .find(|routes| routes.iter().any(|r| r.id == route.id))
            .unwrap_or_default();
        let position = routes.iter().position(|r| r.id == route.id).unwrap_or(0);
        let _ = writeln!(
            text,
            "route:    {} (first match, route {} of {}){}",
            route.name,
            position + 1,
            routes.len(),
            if route.audit {
                ", AUDIT MODE: denies are only logged"
            } else {
                ""
            }
        );
    }
    let others: Vec<&str> = verdict
        .reached
        .iter()
        .filter(|r| verdict.primary.is_none_or(|p| p.id != r.id))
        .map(|r| &*r.name)
        .collect();
    if !others.is_empty() {
        let _ = writeln!(
            text,
            "also:     {} (as an upstream may read the request; each must allow it)",
            others.join(", ")
        );
    }
    if !verdict.reached.is_empty()
        && verdict
            .reached
            .iter()
            .all(|r| matches!(r.access, Access::Anonymous))
    {
        let _ = writeln!(text, "access:   anonymous: no token needed");
    }
    match &verdict.claims {
        Some(_) if unverified => {
            let _ = writeln!(
                text,
                "token:    NOT VERIFIED: claims taken as given; signature, issuer, audience and lifetime were not checked"
            );
        }
        Some(Ok(_)) => {
            let _ = writeln!(
                text,
                "token:    verified (signature, issuer, audience, lifetime)"
            );
        }
        _ => {}
    }
    let Some(claims) = verdict.verified() else {
        return;
    };
    let _ = writeln!(
        text,
        "scopes:   [{}]",
        claims.scopes().collect::<Vec<_>>().join(", ")
    );
    let _ = writeln!(
        text,
        "roles:    [{}]",
        claims.roles().collect::<Vec<_>>().join(", ")
    );
    let protected: Vec<_> = verdict
        .reached
        .iter()
        .filter(|r| !matches!(r.access, Access::Anonymous))
        .collect();
    for route in &protected {
        if protected.len() > 1 {
            let _ = writeln!(text, "  route {}:", route.name);
        }
        for outcome in policy::explain(route, claims, &policy::paths_of(&verdict.paths, route)) {
            let mark = if outcome.holds { "pass" } else { "FAIL" };
            let _ = writeln!(
                text,
                "  [{mark}] {}: {}",
                outcome.group, outcome.description
            );
        }
    }
}

/// The decision and what Envoy would be told.
fn answer(text: &mut String, engine: &Engine, verdict: &Verdict<'_>) {
    match &verdict.outcome {
        Ok(Some(would)) => {
            let _ = writeln!(
                text,
                "audit:    would DENY {} {} if enforced",
                would.http_status(),
                would.code()
            );
        }
        Ok(None) => {}
        Err(deny) => {
            let _ = writeln!(
                text,
                "decision: DENY {} {}",
                deny.reason.http_status(),
                deny.reason.code()
            );
        }
    }
    let response = match respond::answer(engine, verdict, false).into_response() {
        Ok(response) => response,
        Err(_) => return,
    };
    match &response.http_response {
        Some(HttpResponse::OkResponse(ok)) => {
            let _ = writeln!(text, "decision: ALLOW");
            let _ = writeln!(text, "headers set for the upstream:");
            for header in ok.headers.iter().filter_map(|h| h.header.as_ref()) {
                let _ = writeln!(text, "  {}: {}", header.key, header.value);
            }
            let _ = writeln!(text, "headers removed: {}", ok.headers_to_remove.join(", "));
        }
        Some(HttpResponse::DeniedResponse(denied)) => {
            for header in denied.headers.iter().filter_map(|h| h.header.as_ref()) {
                let _ = writeln!(text, "  {}: {}", header.key, header.value);
            }
            let _ = writeln!(text, "  body: {}", denied.body);
        }
        None => {}
    }
}

#[cfg(test)]
mod tests;
