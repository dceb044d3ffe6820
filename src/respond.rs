//! Step 5 of a Check: the one way from a [`Verdict`] to the [`Answer`] Envoy applies.
//!
//! Allow: every header any route may inject is either set from the verified claims
//! (`OVERWRITE_IF_EXISTS_OR_ADD`, so a client-sent copy is replaced, never appended to) or,
//! when there is no value to set on this route, listed in `headers_to_remove` (so a
//! client-sent copy never reaches the upstream). A header is never both set and removed:
//! Envoy applies removals after mutations. Optionally the whole verified payload travels
//! as base64url JSON, and `authorization` is removed. Dynamic metadata carries the route,
//! the caller identity and the verified claims for Envoy access logs and RBAC (namespace
//! `envoy.filters.http.ext_authz`).
//!
//! Deny: the status from `DenyReason`, an RFC 6750 `WWW-Authenticate: Bearer` challenge
//! where one applies, and an RFC 9457 `application/problem+json` body with the stable
//! reason code. Nothing from the token is ever echoed, so a deny is encoded once per
//! kind and route and then sent as those bytes ([`crate::state::KeptDenies`]).

use std::borrow::Cow;

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use prost::{Message, bytes::Bytes};
use prost_types::{ListValue, Struct, Value as PbValue, value::Kind};
use serde_json::Value;
use smallvec::SmallVec;

mod wire;

use self::wire::{Header, Meta};
use crate::{
    binding::SenderBinding,
    check::Verdict,
    config::{Access, ClaimSource, MetadataFields},
    deny::{Deny, DenyReason},
    forwarding::Forwarding,
    jwt::{Claim, VerifiedClaims},
    pb::{
        Answer,
        auth::{CheckResponse, DeniedHttpResponse, check_response::HttpResponse},
        core::{HeaderValue, HeaderValueOption, header_value_option::HeaderAppendAction},
        envoy::r#type::v3::HttpStatus,
        google::rpc::Status,
    },
    policy::Route,
    state::Engine,
};

/// Longest claim value forwarded as a header; longer ones are dropped, not truncated.
pub const MAX_HEADER_VALUE_BYTES: usize = 8 * 1024;
/// Seconds a client is told to wait when keys are unavailable or the service is busy.
pub const RETRY_AFTER_SECONDS: &str = "5";

/// The answer to `verdict`. An allow is written straight to bytes ([`wire`]); with `memo`,
/// one that is costly to write again (a signed identity, the payload or the claims
/// forwarded) is kept with a token held in the verified-token cache and then sent as those
/// bytes ([`crate::jwt::memo`]); so is a deny, per kind and route
/// ([`crate::state::KeptDenies`]).
pub fn answer(engine: &Engine, verdict: &Verdict<'_>, memo: bool) -> Answer {
    match (&verdict.outcome, verdict.route) {
        (Err(refused), route) => denied(engine, refused, route, memo),
        (Ok(audit), Some(route)) => {
            let claims = verdict.verified();
            match (audit, claims) {
                (None, Some(claims)) if memo && engine.verifier.token_cache().enabled() => {
                    remembered_allow(route, claims, &engine.forwarding)
                }
                (audit, claims) => Answer::Encoded(
                    allow(route, claims.map(|c| &**c), &engine.forwarding, *audit).encoded,
                ),
            }
        }
        // An allow always names its route; deny if that ever changes.
        (Ok(_), None) => denied(engine, &DenyReason::Internal.into(), None, memo),
    }
}

/// The deny for `refused` on `route`: kept encoded with `memo`, built otherwise.
fn denied(engine: &Engine, refused: &Deny, route: Option<&Route>, memo: bool) -> Answer {
    let build = || {
        deny(
            refused,
            &engine.realm,
            &engine.binding,
            route.map(|r| &*r.name),
        )
    };
    if !memo {
        return build().into();
    }
    Answer::Encoded(
        engine
            .kept_denies
            .get_or_encode(route.map(|r| r.id), refused, || {
                Bytes::from(build().encode_to_vec())
            }),
    )
}

/// The allow for `claims` on `route`, remembered with the claims after the first time
/// when it is worth keeping — one carrying a signed identity until half of that
/// identity's lifetime has passed. Only plain allows are remembered (an audited one
/// carries its would-be reason).
fn remembered_allow(route: &Route, claims: &VerifiedClaims, forwarding: &Forwarding) -> Answer {
    let signer = forwarding.identity.as_ref().filter(|m| m.signs(route));
    let now = signer.map(|_| jsonwebtoken::get_current_timestamp());
    if let Some((encoded, fresh_until)) = claims.answers.get(route.id)
        && now.is_none_or(|now| now < fresh_until)
    {
        return Answer::Encoded(encoded);
    }
    let allow = allow(route, Some(claims), forwarding, None);
    if allow.keep {
        let fresh_until = match (signer, now) {
            (Some(signer), Some(now)) => signer.fresh_until(now, claims),
            _ => u64::MAX,
        };
        claims
            .answers
            .remember(route.id, allow.encoded.clone(), fresh_until);
    }
    Answer::Encoded(allow.encoded)
}

/// An encoded allow, and whether it is worth keeping with a cached token: writing it again
/// would sign an identity, serialise the payload or the claims, or report a left-out list
/// item again. The default answer — identity headers and metadata read from the claims —
/// is not: it is written again for each Check, so that a cached token holds no copy of it.
struct Allow {
    encoded: Bytes,
    keep: bool,
}

/// Allows the request on `route`. `claims` is `None` on anonymous routes (and for an
/// audited route whose token failed): then every managed header is removed. `audit` is
/// the reason an audit-mode route would have denied.
fn allow(
    route: &Route,
    claims: Option<&VerifiedClaims>,
    forwarding: &Forwarding,
    audit: Option<DenyReason>,
) -> Allow {
    // On the stack: an allow is written for every Check, and these are dropped with it.
    let mut keep = false;
    let mut headers: SmallVec<[Header<'_>; 12]> = SmallVec::new();
    if let Some(claims) = claims {
        for mapping in route.identity_headers.iter() {
            let (value, dropped) = claim_value(claims, &mapping.claim);
            if dropped > 0 {
                tracing::warn!(
                    header = mapping.header,
                    dropped,
                    "Claim values containing a space or comma left out of an identity header"
                );
                keep = true;
            }
            if let Some(value) = value.filter(|v| is_safe_header_value(v)) {
                headers.push(Header {
                    name: &mapping.header,
                    value,
                });
            }
        }
        if let Some(name) = &forwarding.payload_header
            && let Ok(json) = serde_json::to_vec(&claims.claims)
        {
            keep = true;
            let encoded = URL_SAFE_NO_PAD.encode(json);
            if encoded.len() <= MAX_HEADER_VALUE_BYTES {
                headers.push(Header {
                    name,
                    value: Cow::Owned(encoded),
                });
            }
        }
        if let Some(signer) = forwarding.identity.as_ref().filter(|m| m.signs(route))
            && let Some(token) = signer.mint(route, claims, jsonwebtoken::get_current_timestamp())
        {
            keep = true;
            headers.push(Header {
                name: signer.header_name(),
                value: Cow::Owned(token),
            });
        }
    }
    let mut removals: SmallVec<[&str; 12]> = forwarding
        .managed
        .iter()
        .map(String::as_str)
        .filter(|name| !headers.iter().any(|h| h.name == *name))
        .collect();
    // An anonymous route verified nothing: the client's credential must not reach the
    // upstream looking like a checked one, unless the route says so.
    let anonymous = matches!(route.access, Access::Anonymous) && !route.forward_authorization;
    if forwarding.strip_authorization || anonymous {
        removals.push("authorization");
    }

    let fields = forwarding.metadata;
    let mut metadata: SmallVec<[(&str, Meta<'_>); 12]> = SmallVec::new();
    if fields.contains(MetadataFields::ROUTE) {
        metadata.push(("route", Meta::Text(&route.name)));
    }
    if let Some(reason) = audit {
        metadata.push(("audit_would_deny", Meta::Text(reason.code())));
    }
    if let Some(claims) = claims {
        if fields.contains(MetadataFields::ISSUER) {
            metadata.push(("issuer", Meta::Text(&claims.issuer)));
        }
        for (field, key, claim) in [
            (MetadataFields::SUBJECT, "subject", "sub"),
            (MetadataFields::TENANT_ID, "tenant_id", "tid"),
            (MetadataFields::OBJECT_ID, "object_id", "oid"),
        ] {
            if fields.contains(field)
                && let Some(Claim::Text(v)) = claims.claims.get(claim)
            {
                metadata.push((key, Meta::Text(v)));
            }
        }
        if let Some(client) = claims
            .client_id()
            .filter(|_| fields.contains(MetadataFields::CLIENT_ID))
        {
            metadata.push(("client_id", Meta::Text(client)));
        }
        if let Some(thumbprint) = claims
            .confirmation()
            .thumbprint()
            .filter(|_| fields.contains(MetadataFields::BINDING))
        {
            metadata.push(("binding", Meta::Text(claims.confirmation().methods())));
            metadata.push(("binding_thumbprint", Meta::Text(thumbprint)));
        }
        if fields.contains(MetadataFields::SCOPES) {
            metadata.push(("scopes", Meta::Value(list(claims.scopes()))));
        }
        if fields.contains(MetadataFields::ROLES) {
            metadata.push(("roles", Meta::Value(list(claims.roles()))));
        }
        if forwarding.metadata_claims {
            keep = true;
            metadata.push((
                "claims",
                Meta::Value(PbValue {
                    kind: Some(Kind::StructValue(pb_struct(claims.claims.iter()))),
                }),
            ));
        }
    }
    Allow {
        encoded: wire::allow(&headers, &removals, &metadata),
        keep,
    }
}

/// Denies the request. `route` is the matched route's name, when one matched; `binding`
/// names the accepted DPoP proof algorithms and issues nonces.
fn deny(deny: &Deny, realm: &str, binding: &SenderBinding, route: Option<&str>) -> CheckResponse {
    let reason = deny.reason;
    let status = reason.http_status();
    let mut headers = vec![
        header("content-type", "application/problem+json".to_owned()),
        header("cache-control", "no-store".to_owned()),
    ];
    if let Some(challenge) = www_authenticate(deny, realm, binding.algs()) {
        headers.push(header("www-authenticate", challenge));
    }
    if reason == DenyReason::DpopNonceRequired
        && let Some(nonce) = binding.fresh_nonce()
    {
        headers.push(header("dpop-nonce", nonce));
    }
    if matches!(
        reason,
        DenyReason::KeysUnavailable | DenyReason::ReplayStoreUnavailable | DenyReason::Overloaded
    ) {
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

/// The RFC 6750 §3 challenge — or RFC 9449 §7.1's `DPoP` one, naming the accepted proof
/// algorithms `dpop_algs`, for a DPoP request or reason — or `None` for reasons that are
/// not about the token.
pub fn www_authenticate(deny: &Deny, realm: &str, dpop_algs: &str) -> Option<String> {
    let error = deny.reason.bearer_error()?;
    let scheme = if deny.dpop_challenge() {
        "DPoP"
    } else {
        "Bearer"
    };
    let mut challenge = format!("{scheme} realm=\"{realm}\"");
    if let Some(code) = error.code() {
        challenge.push_str(&format!(
            ", error=\"{code}\", error_description=\"{}\"",
            deny.reason.description()
        ));
    }
    if let Some(scopes) = &deny.required_scopes {
        challenge.push_str(&format!(", scope=\"{scopes}\""));
    }
    if let Some(step_up) = &deny.step_up {
        challenge.push_str(", ");
        challenge.push_str(step_up);
    }
    if deny.dpop_challenge() {
        challenge.push_str(&format!(", algs=\"{dpop_algs}\""));
    }
    Some(challenge)
}

fn status_title(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Error",
    }
}

/// The text a header gets from a claim, or `None` when the claim is absent, empty or not
/// representable as one header value; and how many list items were left out. Lists are
/// space-separated; an item containing a space or a comma would read as several items to
/// whoever splits the header (on spaces, or on commas as HTTP lists are), so it is left
/// out.
fn claim_value<'a>(
    claims: &'a VerifiedClaims,
    source: &ClaimSource,
) -> (Option<Cow<'a, str>>, usize) {
    let (text, dropped) = match source {
        ClaimSource::Scopes => match claims.scope_text() {
            // Names already one space apart, none holding a comma: the value as it is.
            Some(names) if is_plain_list(names) => (Some(Cow::Borrowed(names)), 0),
            _ => list_value(claims.scopes()),
        },
        ClaimSource::Roles => list_value(claims.roles()),
        ClaimSource::ClientId => (claims.client_id().map(Cow::Borrowed), 0),
        ClaimSource::Binding => (Some(Cow::Borrowed(claims.confirmation().methods())), 0),
        ClaimSource::BindingThumbprint => {
            (claims.confirmation().thumbprint().map(Cow::Borrowed), 0)
        }
        ClaimSource::Claim(name) => match claims.claims.get(name) {
            Some(Claim::Json(Value::Array(items))) if items.iter().all(Value::is_string) => {
                list_value(items.iter().filter_map(Value::as_str))
            }
            Some(claim) => (claim.text(), 0),
            None => (None, 0),
        },
    };
    (text.filter(|t| !t.is_empty()), dropped)
}

/// Whether `names` is already what [`list_value`] would make of its items split on
/// U+0020: non-empty names one space apart, none holding a comma.
fn is_plain_list(names: &str) -> bool {
    !names.starts_with(' ')
        && !names.ends_with(' ')
        && !names.contains("  ")
        && !names.contains(',')
}

/// Items joined by one space (one item is borrowed as it is), leaving out and counting
/// those that hold a separator.
fn list_value<'a>(items: impl Iterator<Item = &'a str>) -> (Option<Cow<'a, str>>, usize) {
    let mut text = Cow::Borrowed("");
    let mut dropped = 0usize;
    for item in items {
        if item.contains([' ', ',']) {
            dropped += 1;
        } else if text.is_empty() {
            text = Cow::Borrowed(item);
        } else {
            let joined = text.to_mut();
            joined.push(' ');
            joined.push_str(item);
        }
    }
    (Some(text), dropped)
}

/// No control characters (CR/LF header injection, NUL, C1 controls) and a sane length.
fn is_safe_header_value(value: &str) -> bool {
    value.len() <= MAX_HEADER_VALUE_BYTES
        && if value.is_ascii() {
            // What almost every value is, checked a byte at a time without decoding.
            !value.bytes().any(|b| b.is_ascii_control())
        } else {
            !value.chars().any(char::is_control)
        }
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

/// A claim as a protobuf `Value`.
fn pb_claim(claim: Claim<'_>) -> PbValue {
    match claim {
        Claim::Text(text) => string(text),
        Claim::Json(value) => pb_value(value),
    }
}

/// A JSON value as a protobuf `Value` (JSON numbers become doubles, as in `Struct`).
fn pb_value(value: &Value) -> PbValue {
    let kind = match value {
        Value::Null => Kind::NullValue(0),
        Value::Bool(b) => Kind::BoolValue(*b),
        Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or_default()),
        Value::String(s) => Kind::StringValue(s.clone()),
        Value::Array(items) => Kind::ListValue(ListValue {
            values: items.iter().map(pb_value).collect(),
        }),
        Value::Object(map) => Kind::StructValue(pb_struct(
            map.iter()
                .map(|(k, v)| (Cow::Borrowed(&**k), Claim::Json(v))),
        )),
    };
    PbValue { kind: Some(kind) }
}

/// A JSON object's members as a protobuf `Struct`, read in place (no copy of the claims
/// first).
fn pb_struct<'a>(members: impl Iterator<Item = (Cow<'a, str>, Claim<'a>)>) -> Struct {
    Struct {
        fields: members
            .map(|(k, v)| (k.into_owned(), pb_claim(v)))
            .collect(),
    }
}

fn string(s: &str) -> PbValue {
    PbValue {
        kind: Some(Kind::StringValue(s.to_owned())),
    }
}

fn list<'a>(items: impl Iterator<Item = &'a str>) -> PbValue {
    PbValue {
        kind: Some(Kind::ListValue(ListValue {
            values: items.map(string).collect(),
        })),
    }
}

fn object(fields: Vec<(&str, PbValue)>) -> Struct {
    Struct {
        fields: fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
    }
}

#[cfg(test)]
mod tests;
