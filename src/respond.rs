//! Step 4 of a Check: turn the decision into Envoy's `CheckResponse`.
//!
//! Allow: every configured identity header is either set from the verified claims
//! (`OVERWRITE_IF_EXISTS_OR_ADD`, so a client-sent copy is replaced, never appended to) or,
//! when there is no value to set, listed in `headers_to_remove` (so a client-sent copy
//! never reaches the upstream). A header is never both set and removed: Envoy applies
//! removals after mutations. Dynamic metadata carries the route and caller identity for
//! Envoy access logs and RBAC (namespace `envoy.filters.http.ext_authz`).
//!
//! Deny: the status from `DenyReason`, an RFC 6750 `WWW-Authenticate: Bearer` challenge
//! where one applies, and an RFC 9457 `application/problem+json` body with the stable
//! reason code. Nothing from the token is ever echoed.

use prost_types::{ListValue, Struct, Value as PbValue, value::Kind};
use serde_json::Value;

use crate::{
    config::{ClaimSource, HeaderMapping},
    deny::{Deny, DenyReason},
    jwt::VerifiedClaims,
    pb::{
        auth::{CheckResponse, DeniedHttpResponse, OkHttpResponse, check_response::HttpResponse},
        core::{HeaderValue, HeaderValueOption, header_value_option::HeaderAppendAction},
        envoy::r#type::v3::HttpStatus,
        google::rpc::Status,
    },
};

/// Longest claim value forwarded as a header; longer ones are dropped, not truncated.
pub const MAX_HEADER_VALUE_BYTES: usize = 8 * 1024;
/// Seconds a client is told to wait when keys are unavailable.
pub const RETRY_AFTER_SECONDS: &str = "5";

/// Allows the request. `claims` is `None` on anonymous routes: then every identity header
/// is removed.
pub fn allow(
    route: &str,
    claims: Option<&VerifiedClaims>,
    mappings: &[HeaderMapping],
) -> CheckResponse {
    let mut headers = Vec::with_capacity(mappings.len());
    let mut headers_to_remove = Vec::new();
    for mapping in mappings {
        let value = claims
            .and_then(|c| claim_value(c, &mapping.claim))
            .filter(|v| is_safe_header_value(v));
        match value {
            Some(value) => headers.push(header(&mapping.header, value)),
            None => headers_to_remove.push(mapping.header.clone()),
        }
    }
    let mut metadata = vec![("route", string(route))];
    if let Some(claims) = claims {
        metadata.push(("issuer", string(&claims.issuer)));
        for (key, claim) in [
            ("subject", "sub"),
            ("tenant_id", "tid"),
            ("object_id", "oid"),
        ] {
            if let Some(Value::String(v)) = claims.claims.get(claim) {
                metadata.push((key, string(v)));
            }
        }
        if let Some(client) = claims.client_id() {
            metadata.push(("client_id", string(client)));
        }
        metadata.push(("scopes", list(&claims.scopes)));
        metadata.push(("roles", list(&claims.roles)));
    }
    CheckResponse {
        status: Some(Status {
            code: tonic::Code::Ok as i32,
            message: String::new(),
            details: Vec::new(),
        }),
        dynamic_metadata: Some(object(metadata)),
        http_response: Some(HttpResponse::OkResponse(OkHttpResponse {
            headers,
            headers_to_remove,
            ..Default::default()
        })),
    }
}

/// Denies the request. `route` is the matched route's name, when one matched.
pub fn deny(deny: &Deny, realm: &str, route: Option<&str>) -> CheckResponse {
    let reason = deny.reason;
    let status = reason.http_status();
    let mut headers = vec![
        header("content-type", "application/problem+json".to_owned()),
        header("cache-control", "no-store".to_owned()),
    ];
    if let Some(challenge) = www_authenticate(deny, realm) {
        headers.push(header("www-authenticate", challenge));
    }
    if reason == DenyReason::KeysUnavailable {
        headers.push(header("retry-after", RETRY_AFTER_SECONDS.to_owned()));
    }
    let body = serde_json::json!({
        "type": "about:blank",
        "title": status_title(status),
        "status": status,
        "detail": reason.description(),
        "reason": reason.code(),
    });
    let mut metadata = vec![("reason", string(reason.code()))];
    if let Some(route) = route {
        metadata.push(("route", string(route)));
    }
    CheckResponse {
        status: Some(Status {
            code: reason.grpc_code() as i32,
            message: reason.code().to_owned(),
            details: Vec::new(),
        }),
        dynamic_metadata: Some(object(metadata)),
        http_response: Some(HttpResponse::DeniedResponse(DeniedHttpResponse {
            status: Some(HttpStatus {
                code: i32::from(status),
            }),
            headers,
            body: body.to_string(),
        })),
    }
}

/// The RFC 6750 §3 challenge, or `None` for reasons that are not about the token.
pub fn www_authenticate(deny: &Deny, realm: &str) -> Option<String> {
    let error = deny.reason.bearer_error()?;
    let mut challenge = format!("Bearer realm=\"{realm}\"");
    if let Some(code) = error.code() {
        challenge.push_str(&format!(
            ", error=\"{code}\", error_description=\"{}\"",
            deny.reason.description()
        ));
    }
    if let Some(scopes) = &deny.required_scopes {
        challenge.push_str(&format!(", scope=\"{scopes}\""));
    }
    Some(challenge)
}

fn status_title(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        503 => "Service Unavailable",
        _ => "Error",
    }
}

/// The text a header gets from a claim, or `None` when the claim is absent, empty or not
/// representable as one header value.
fn claim_value(claims: &VerifiedClaims, source: &ClaimSource) -> Option<String> {
    let text = match source {
        ClaimSource::Scopes => claims.scopes.join(" "),
        ClaimSource::Roles => claims.roles.join(" "),
        ClaimSource::ClientId => claims.client_id()?.to_owned(),
        ClaimSource::Claim(name) => match claims.claims.get(name)? {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Array(items) => {
                let parts: Option<Vec<&str>> = items.iter().map(Value::as_str).collect();
                parts?.join(" ")
            }
            Value::Null | Value::Object(_) => return None,
        },
    };
    (!text.is_empty()).then_some(text)
}

/// No control characters (CR/LF header injection, NUL) and a sane length.
fn is_safe_header_value(value: &str) -> bool {
    value.len() <= MAX_HEADER_VALUE_BYTES && !value.chars().any(char::is_control)
}

fn header(key: &str, value: String) -> HeaderValueOption {
    HeaderValueOption {
        header: Some(HeaderValue {
            key: key.to_owned(),
            value,
            raw_value: Vec::new(),
        }),
        append_action: HeaderAppendAction::OverwriteIfExistsOrAdd as i32,
        ..Default::default()
    }
}

fn string(s: &str) -> PbValue {
    PbValue {
        kind: Some(Kind::StringValue(s.to_owned())),
    }
}

fn list(items: &[String]) -> PbValue {
    PbValue {
        kind: Some(Kind::ListValue(ListValue {
            values: items.iter().map(|s| string(s)).collect(),
        })),
    }
}

fn object(fields: Vec<(&str, PbValue)>) -> Struct {
    Struct {
        fields: fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DEFAULT_IDENTITY_HEADERS;
    use serde_json::json;
    use std::sync::Arc;

    fn mappings() -> Vec<HeaderMapping> {
        let yaml = "issuers: [{issuer: i, jwks_uri: 'https://i/k', audiences: [a]}]\n\
                    routes: [{name: r, path: {prefix: /}, anonymous: true}]\n\
                    identity_headers: {x-sub: sub, x-scopes: scopes, x-roles: roles, x-client: client_id, x-level: level, x-groups: groups}";
        crate::config::Config::from_yaml(yaml, "t")
            .unwrap()
            .identity_headers
    }

    fn claims(value: serde_json::Value) -> VerifiedClaims {
        let serde_json::Value::Object(map) = value else {
            unreachable!("test claims are objects")
        };
        VerifiedClaims::new("https://idp/".into(), map).unwrap()
    }

    fn ok(resp: &CheckResponse) -> &OkHttpResponse {
        match &resp.http_response {
            Some(HttpResponse::OkResponse(ok)) => ok,
            other => panic!("expected allow, got {other:?}"),
        }
    }

    fn set_headers(ok: &OkHttpResponse) -> Vec<(String, String)> {
        let mut v: Vec<_> = ok
            .headers
            .iter()
            .map(|h| {
                let hv = h.header.as_ref().unwrap();
                assert_eq!(
                    h.append_action,
                    HeaderAppendAction::OverwriteIfExistsOrAdd as i32
                );
                (hv.key.clone(), hv.value.clone())
            })
            .collect();
        v.sort();
        v
    }

    #[test]
    fn allow_sets_present_claims_and_removes_the_rest() {
        let c = claims(json!({
            "sub": "user-1", "scp": "A B", "azp": "app", "level": 3,
            "groups": ["g1", "g2"]
        }));
        let resp = allow("r", Some(&c), &mappings());
        let ok = ok(&resp);
        assert_eq!(
            set_headers(ok),
            [
                ("x-client".to_owned(), "app".to_owned()),
                ("x-groups".to_owned(), "g1 g2".to_owned()),
                ("x-level".to_owned(), "3".to_owned()),
                ("x-scopes".to_owned(), "A B".to_owned()),
                ("x-sub".to_owned(), "user-1".to_owned()),
            ]
        );
        assert_eq!(ok.headers_to_remove, ["x-roles"]);
        assert_eq!(resp.status.unwrap().code, 0);
    }

    #[test]
    fn control_characters_are_never_forwarded() {
        let c = claims(json!({"sub": "evil\r\nx-admin: true", "scp": "A"}));
        let resp = allow("r", Some(&c), &mappings());
        let ok = ok(&resp);
        assert!(ok.headers_to_remove.contains(&"x-sub".to_owned()));
        assert!(!set_headers(ok).iter().any(|(k, _)| k == "x-sub"));
    }

    #[test]
    fn anonymous_allow_removes_every_identity_header() {
        let defaults: Vec<HeaderMapping> =
            crate::config::Config::from_yaml(
                "issuers: [{issuer: i, jwks_uri: 'https://i/k', audiences: [a]}]\nroutes: [{name: r, path: {prefix: /}, anonymous: true}]",
                "t",
            )
            .unwrap()
            .identity_headers;
        let resp = allow("r", None, &defaults);
        let ok = ok(&resp);
        assert!(ok.headers.is_empty());
        assert_eq!(ok.headers_to_remove.len(), DEFAULT_IDENTITY_HEADERS.len());
    }

    #[test]
    fn deny_carries_status_challenge_and_problem_body() {
        let resp = deny(&DenyReason::Expired.into(), "api", Some("orders"));
        let Some(HttpResponse::DeniedResponse(denied)) = &resp.http_response else {
            panic!("expected deny");
        };
        assert_eq!(denied.status.as_ref().unwrap().code, 401);
        let challenge = denied
            .headers
            .iter()
            .find(|h| h.header.as_ref().unwrap().key == "www-authenticate")
            .unwrap();
        assert_eq!(
            challenge.header.as_ref().unwrap().value,
            "Bearer realm=\"api\", error=\"invalid_token\", error_description=\"The access token expired\""
        );
        let body: serde_json::Value = serde_json::from_str(&denied.body).unwrap();
        assert_eq!(body["reason"], "expired");
        assert_eq!(body["status"], 401);
        assert_eq!(
            resp.status.unwrap().code,
            tonic::Code::Unauthenticated as i32
        );
    }

    #[test]
    fn challenges_follow_rfc_6750() {
        let none = www_authenticate(&DenyReason::MissingToken.into(), "r").unwrap();
        assert_eq!(none, "Bearer realm=\"r\"");
        let scope = www_authenticate(
            &Deny {
                reason: DenyReason::InsufficientPermission,
                required_scopes: Some(Arc::from("Orders.Read Orders.ReadWrite")),
            },
            "r",
        )
        .unwrap();
        assert!(scope.contains("error=\"insufficient_scope\""), "{scope}");
        assert!(
            scope.ends_with("scope=\"Orders.Read Orders.ReadWrite\""),
            "{scope}"
        );
        assert_eq!(www_authenticate(&DenyReason::NoRoute.into(), "r"), None);
    }

    #[test]
    fn keys_unavailable_asks_to_retry() {
        let resp = deny(&DenyReason::KeysUnavailable.into(), "r", None);
        let Some(HttpResponse::DeniedResponse(denied)) = &resp.http_response else {
            panic!("expected deny");
        };
        assert_eq!(denied.status.as_ref().unwrap().code, 503);
        assert!(denied.headers.iter().any(|h| {
            let h = h.header.as_ref().unwrap();
            h.key == "retry-after" && h.value == RETRY_AFTER_SECONDS
        }));
    }
}
