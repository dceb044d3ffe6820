//! Step 1 of a Check: read what the decision needs from Envoy's `CheckRequest` in one
//! visit — method, canonical host, path and query, the access token (RFC 6750 §2.1
//! `Bearer`, or RFC 9449 §7.1 `DPoP` with its `DPoP` proof header), the scheme, authority
//! and client certificate a sender binding is checked against, the method overrides of
//! headers, query and body (`overrides`), the hosts and paths of forwarding and rewrite
//! headers (`forwarded`), header names that only differ from significant ones by `_`, the
//! request id and the W3C trace context — borrowing from the request. Works with both
//! ways Envoy sends headers (`headers` map, or `header_map` when the filter sets
//! `encode_raw_headers: true`).
//!
//! The host is validated here, because an upstream may read a spelling the policy would
//! not match (`admin.example.com.`, `a@admin.example.com`, two `Host` headers joined as
//! `a,b`): only an RFC 3986 reg-name (letters, digits, `-`, `_`, dots), an IPv4 address
//! or a bracketed IPv6 address, with an optional numeric port, is accepted.

mod forwarded;
mod overrides;

use std::borrow::Cow;

pub use forwarded::{FORWARDED, FORWARDED_HOST_HEADERS, REWRITE_HEADERS};
pub use overrides::METHOD_OVERRIDE_HEADERS;

use crate::{
    config::RequestBody, deny::DenyReason, path::split_query, pb::auth::CheckRequest,
    upstream::MethodOverride,
};

/// Envoy's mark on a request body it buffered for the check (`with_request_body`).
pub const PARTIAL_BODY_HEADER: &str = "x-envoy-auth-partial-body";

/// An access token and the scheme it came with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Credential<'a> {
    pub token: &'a str,
    /// `DPoP` (RFC 9449 §7.1) rather than `Bearer`.
    pub dpop: bool,
}

/// The parts of an HTTP request that authorization looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestView<'a> {
    pub method: &'a str,
    /// Lower case, without port or trailing dot; empty when the request named none.
    pub host: Cow<'a, str>,
    /// The path as Envoy sent it, without the query; canonicalised by the policy step.
    pub path: &'a str,
    /// The access token, or why the request has none to offer (`missing_token`,
    /// `unsupported_scheme`, `malformed_authorization`): only a protected route cares.
    pub credential: Result<Credential<'a>, DenyReason>,
    /// The `DPoP` proof header: `Err` when there were several.
    pub dpop_proof: Option<Result<&'a str, DenyReason>>,
    /// `:scheme` and `:authority` as Envoy received them (for a proof's `htu`).
    pub scheme: &'a str,
    pub authority: &'a str,
    /// The client certificate Envoy saw on the connection (URL-encoded PEM), if any.
    pub certificate: &'a str,
    /// The destination principal (an Istio sidecar's workload SPIFFE ID), if any.
    pub principal: &'a str,
    /// The `context_extensions` of the Envoy route, if any.
    pub context: Option<&'a std::collections::HashMap<String, String>>,
    /// The methods the request asks an upstream to use instead of its own, each with the
    /// frameworks that read it.
    pub overrides: Vec<MethodOverride<'a>>,
    /// Hosts named by forwarding headers, canonical.
    pub forwarded_hosts: Vec<Cow<'a, str>>,
    /// Paths named by rewrite headers, without query.
    pub rewrites: Vec<&'a str>,
    /// Header names containing `_`: CGI, WSGI, Rack and PHP read `x_auth_roles` as
    /// `X-Auth-Roles`, so the check step refuses those that stand for a managed header.
    pub underscored: Vec<&'a str>,
    /// Envoy's request id (`x-request-id`), for the decision event.
    pub request_id: &'a str,
    /// W3C trace context in the request headers, for the Check's span.
    pub traceparent: Option<&'a str>,
    pub tracestate: Option<&'a str>,
}

/// Extracts the request view. `InvalidRequest` when Envoy sent no HTTP attributes, more
/// than `max_headers` headers, or a host (own or forwarded) that is not a plain host name
/// or address, or a rewrite header that is not a path.
pub fn extract(
    request: &CheckRequest,
    max_headers: usize,
    body: RequestBody,
) -> Result<RequestView<'_>, DenyReason> {
    let http = request
        .attributes
        .as_ref()
        .and_then(|a| a.request.as_ref())
        .and_then(|r| r.http.as_ref())
        .ok_or(DenyReason::InvalidRequest)?;
    let raw_count = http.header_map.as_ref().map_or(0, |m| m.headers.len());
    if http.headers.len().max(raw_count) > max_headers {
        return Err(DenyReason::InvalidRequest);
    }
    let (path, query) = split_query(&http.path);
    let attributes = request.attributes.as_ref();
    let certificate = attributes
        .and_then(|a| a.source.as_ref())
        .map_or("", |peer| peer.certificate.as_str());
    let principal = attributes
        .and_then(|a| a.destination.as_ref())
        .map_or("", |peer| peer.principal.as_str());
    let context = attributes
        .map(|a| &a.context_extensions)
        .filter(|c| !c.is_empty());
    let mut view = RequestView {
        method: &http.method,
        host: canonical_host(&http.host)?,
        path,
        credential: Err(DenyReason::MissingToken),
        dpop_proof: None,
        scheme: &http.scheme,
        authority: &http.host,
        certificate,
        principal,
        context,
        overrides: Vec::new(),
        forwarded_hosts: Vec::new(),
        rewrites: Vec::new(),
        underscored: Vec::new(),
        request_id: &http.id,
        traceparent: None,
        tracestate: None,
    };
    let mut scan = Scan {
        authorization: None,
        body: overrides::Body {
            bytes: if http.raw_body.is_empty() {
                http.body.as_bytes()
            } else {
                &http.raw_body
            },
            size: http.size,
            sent: body == RequestBody::Sent,
            ..Default::default()
        },
    };
    match &http.header_map {
        Some(map) if http.headers.is_empty() => {
            for header in &map.headers {
                view.visit(&mut scan, &header.key, || {
                    if header.raw_value.is_empty() {
                        Ok(header.value.as_str())
                    } else {
                        std::str::from_utf8(&header.raw_value)
                            .map_err(|_| DenyReason::MalformedAuthorization)
                    }
                })?;
            }
        }
        _ => {
            for (name, value) in &http.headers {
                view.visit(&mut scan, name, || Ok(value.as_str()))?;
            }
        }
    }
    if let Some(query) = query {
        overrides::from_query(query, &mut view.overrides);
    }
    overrides::from_body(view.method, scan.body, &mut view.overrides);
    let authorization = scan.authorization;
    view.credential = match authorization {
        None => Err(DenyReason::MissingToken),
        Some(value) => value.and_then(|value| credential(Some(value))),
    };
    Ok(view)
}

/// What the header visit gathers besides the view.
struct Scan<'a> {
    authorization: Option<Result<&'a str, DenyReason>>,
    body: overrides::Body<'a>,
}

impl<'a> RequestView<'a> {
    /// Reads one header; `value` is only decoded for the headers the view keeps. A second
    /// `authorization` header makes the credential malformed.
    fn visit(
        &mut self,
        scan: &mut Scan<'a>,
        name: &'a str,
        value: impl FnOnce() -> Result<&'a str, DenyReason>,
    ) -> Result<(), DenyReason> {
        let is = |wanted: &str| name.eq_ignore_ascii_case(wanted);
        let text =
            |value: Result<&'a str, DenyReason>| value.map_err(|_| DenyReason::InvalidRequest);
        if is("authorization") {
            scan.authorization = Some(match scan.authorization {
                None => value(),
                Some(_) => Err(DenyReason::MalformedAuthorization),
            });
        } else if is("content-type") {
            scan.body.content_type = Some(text(value())?);
        } else if is("content-length") {
            scan.body.content_length = Some(text(value())?);
        } else if is("transfer-encoding") {
            scan.body.transfer_encoding = true;
        } else if is(PARTIAL_BODY_HEADER) {
            scan.body.partial = Some(text(value())?);
        } else if FORWARDED_HOST_HEADERS.iter().any(|h| is(h)) {
            forwarded::hosts(text(value())?, &mut self.forwarded_hosts)?;
        } else if is(FORWARDED) {
            forwarded::forwarded_hosts(text(value())?, &mut self.forwarded_hosts)?;
        } else if REWRITE_HEADERS.iter().any(|h| is(h)) {
            self.rewrites.push(forwarded::rewrite(text(value())?)?);
        } else if is("dpop") {
            self.dpop_proof = Some(match self.dpop_proof {
                None => value().map_err(|_| DenyReason::InvalidDpopProof),
                Some(_) => Err(DenyReason::InvalidDpopProof),
            });
        } else if name.eq_ignore_ascii_case("traceparent") {
            self.traceparent = value().ok();
        } else if name.eq_ignore_ascii_case("tracestate") {
            self.tracestate = value().ok();
        } else if METHOD_OVERRIDE_HEADERS.iter().any(|h| is(h)) {
            self.overrides.push(overrides::from_header(text(value())?));
        } else if name.contains('_') {
            self.underscored.push(name);
        }
        Ok(())
    }
}

/// The host as routes compare it: lower case, without the port and one trailing dot.
/// Refuses anything but a reg-name of letters, digits, `-` and `_` in dot-separated
/// labels, or a bracketed IPv6 address, each with an optional port of 1–5 digits.
pub fn canonical_host(authority: &str) -> Result<Cow<'_, str>, DenyReason> {
    if authority.is_empty() {
        return Ok(Cow::Borrowed(""));
    }
    let (name, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (address, after) = rest.split_once(']').ok_or(DenyReason::InvalidRequest)?;
        address
            .parse::<std::net::Ipv6Addr>()
            .map_err(|_| DenyReason::InvalidRequest)?;
        let port = match after {
            "" => None,
            after => Some(after.strip_prefix(':').ok_or(DenyReason::InvalidRequest)?),
        };
        (&authority[..address.len() + 2], port)
    } else {
        match authority.split_once(':') {
            Some((name, port)) => (name, Some(port)),
            None => (authority, None),
        }
    };
    if let Some(port) = port
        && (port.is_empty()
            || port.len() > 5
            || !port.bytes().all(|b| b.is_ascii_digit())
            || port.parse::<u32>().map_or(true, |p| p > 65_535))
    {
        return Err(DenyReason::InvalidRequest);
    }
    if name.starts_with('[') {
        return Ok(lower(name));
    }
    let name = name.strip_suffix('.').unwrap_or(name);
    let valid = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    if !valid {
        return Err(DenyReason::InvalidRequest);
    }
    Ok(lower(name))
}

fn lower(text: &str) -> Cow<'_, str> {
    if text.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(text.to_ascii_lowercase())
    } else {
        Cow::Borrowed(text)
    }
}

/// `%XY` escapes decoded, as frameworks read a query parameter (`%5Fmethod` is `_method`)
/// and as Envoy URL-encodes a client certificate; a malformed escape is kept
/// as it is, bytes that are not UTF-8 become U+FFFD.
pub(crate) fn percent_decoded(text: &str) -> Cow<'_, str> {
    percent_encoding::percent_decode_str(text).decode_utf8_lossy()
}

/// The CheckRequest Envoy would send for `method host path` with these (lower-case)
/// headers: how the HTTP check mode and the tools enter the same pipeline. The scheme (a
/// DPoP proof's `htu` names it) is the one `x-forwarded-proto` names, if exactly one.
pub fn check_request(
    method: &str,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> CheckRequest {
    use crate::pb::auth::{
        AttributeContext,
        attribute_context::{HttpRequest, Request},
    };
    CheckRequest {
        attributes: Some(AttributeContext {
            request: Some(Request {
                time: None,
                http: Some(HttpRequest {
                    method: method.into(),
                    host: host.into(),
                    path: path.into(),
                    scheme: headers
                        .iter()
                        .find(|(name, _)| *name == "x-forwarded-proto")
                        .map(|(_, value)| value.to_ascii_lowercase())
                        .filter(|value| matches!(value.as_str(), "http" | "https"))
                        .unwrap_or_default(),
                    headers: headers
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                    ..Default::default()
                }),
            }),
            ..Default::default()
        }),
    }
}

/// RFC 6750 §2.1: `Bearer` (any case), one or more spaces, one b64token — or the same with
/// RFC 9449's `DPoP` scheme. `MissingToken` when there is no header; `UnsupportedScheme`
/// for another scheme; `MalformedAuthorization` for anything else, including two headers
/// joined by Envoy with `,`.
pub fn credential(authorization: Option<&str>) -> Result<Credential<'_>, DenyReason> {
    let value = authorization
        .ok_or(DenyReason::MissingToken)?
        .trim_matches(|c| c == ' ' || c == '\t');
    if value.is_empty() {
        return Err(DenyReason::MissingToken);
    }
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    let dpop = scheme.eq_ignore_ascii_case("dpop");
    if !dpop && !scheme.eq_ignore_ascii_case("bearer") {
        return Err(if scheme.contains(',') {
            DenyReason::MalformedAuthorization
        } else {
            DenyReason::UnsupportedScheme
        });
    }
    let token = rest.trim_start_matches(' ');
    if token.is_empty() || !is_b64token(token) {
        return Err(DenyReason::MalformedAuthorization);
    }
    Ok(Credential { token, dpop })
}

/// `b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`. Every byte
/// of every token passes here, so the test is written without an early exit or a table,
/// which lets the compiler check many bytes per instruction.
fn is_b64token(token: &str) -> bool {
    let body = token.trim_end_matches('=');
    !body.is_empty() && body.bytes().fold(true, |ok, c| ok & is_b64token_byte(c))
}

fn is_b64token_byte(c: u8) -> bool {
    let letter = (c | 0x20).wrapping_sub(b'a') < 26;
    let digit = c.wrapping_sub(b'0') < 10;
    letter
        | digit
        | (c == b'-')
        | (c == b'.')
        | (c == b'_')
        | (c == b'~')
        | (c == b'+')
        | (c == b'/')
}

#[cfg(test)]
mod tests;
