//! Step 1 of a Check: read what the decision needs from Envoy's `CheckRequest` in one
//! visit — method, canonical host, path and query, the access token (RFC 6750 §2.1
//! `Bearer`, or RFC 9449 §7.1 `DPoP` with its `DPoP` proof header), the scheme, authority
//! and client certificate a sender binding is checked against, a method override, header names that only differ from significant ones by `_`, the
//! request id and the W3C trace context — borrowing from the request. Works with both
//! ways Envoy sends headers (`headers` map, or `header_map` when the filter sets
//! `encode_raw_headers: true`).
//!
//! The host is validated here, because an upstream may read a spelling the policy would
//! not match (`admin.example.com.`, `a@admin.example.com`, two `Host` headers joined as
//! `a,b`): only an RFC 3986 reg-name (letters, digits, `-`, `_`, dots), an IPv4 address
//! or a bracketed IPv6 address, with an optional numeric port, is accepted.

use std::borrow::Cow;

use crate::{deny::DenyReason, path::split_query, pb::auth::CheckRequest};

/// Request headers (and the query parameter) by which frameworks let a client replace the
/// method: Express `method-override`, Rails/Rack, Laravel, Symfony, ASP.NET, Spring's
/// `HiddenHttpMethodFilter` (`_method`).
pub const METHOD_OVERRIDE_HEADERS: &[&str] = &[
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
];
/// The query parameter (and form field) frameworks read as a method override.
pub const METHOD_OVERRIDE_PARAMETER: &str = "_method";

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
    /// The method a client asked the upstream to use instead (a method-override header or
    /// `_method` query parameter).
    pub method_override: Option<&'a str>,
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
/// than `max_headers` headers, a host that is not a plain host name or address, or
/// conflicting method overrides.
pub fn extract(request: &CheckRequest, max_headers: usize) -> Result<RequestView<'_>, DenyReason> {
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
    let certificate = request
        .attributes
        .as_ref()
        .and_then(|a| a.source.as_ref())
        .map_or("", |peer| peer.certificate.as_str());
    let mut view = RequestView {
        method: &http.method,
        host: canonical_host(&http.host)?,
        path,
        credential: Err(DenyReason::MissingToken),
        dpop_proof: None,
        scheme: &http.scheme,
        authority: &http.host,
        certificate,
        method_override: None,
        underscored: Vec::new(),
        request_id: &http.id,
        traceparent: None,
        tracestate: None,
    };
    let mut authorization: Option<Result<&str, DenyReason>> = None;
    match &http.header_map {
        Some(map) if http.headers.is_empty() => {
            for header in &map.headers {
                view.visit(&mut authorization, &header.key, || {
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
                view.visit(&mut authorization, name, || Ok(value.as_str()))?;
            }
        }
    }
    if let Some(query) = query {
        for (name, value) in query
            .split('&')
            .map(|p| p.split_once('=').unwrap_or((p, "")))
        {
            if percent_decoded(name) == METHOD_OVERRIDE_PARAMETER {
                view.set_override(value)?;
            }
        }
    }
    view.credential = match authorization {
        None => Err(DenyReason::MissingToken),
        Some(value) => value.and_then(|value| credential(Some(value))),
    };
    Ok(view)
}

impl<'a> RequestView<'a> {
    /// Reads one header; `value` is only decoded for the headers the view keeps. A second
    /// `authorization` header makes the credential malformed.
    fn visit(
        &mut self,
        authorization: &mut Option<Result<&'a str, DenyReason>>,
        name: &'a str,
        value: impl FnOnce() -> Result<&'a str, DenyReason>,
    ) -> Result<(), DenyReason> {
        if name.eq_ignore_ascii_case("authorization") {
            *authorization = Some(match authorization {
                None => value(),
                Some(_) => Err(DenyReason::MalformedAuthorization),
            });
        } else if name.eq_ignore_ascii_case("dpop") {
            self.dpop_proof = Some(match self.dpop_proof {
                None => value().map_err(|_| DenyReason::InvalidDpopProof),
                Some(_) => Err(DenyReason::InvalidDpopProof),
            });
        } else if name.eq_ignore_ascii_case("traceparent") {
            self.traceparent = value().ok();
        } else if name.eq_ignore_ascii_case("tracestate") {
            self.tracestate = value().ok();
        } else if METHOD_OVERRIDE_HEADERS
            .iter()
            .any(|h| name.eq_ignore_ascii_case(h))
        {
            self.set_override(value().map_err(|_| DenyReason::InvalidRequest)?)?;
        } else if name.contains('_') {
            self.underscored.push(name);
        }
        Ok(())
    }

    /// Several overrides must agree, or the request is refused.
    fn set_override(&mut self, value: &'a str) -> Result<(), DenyReason> {
        let value = value.trim();
        match self.method_override {
            Some(seen) if !seen.eq_ignore_ascii_case(value) => Err(DenyReason::InvalidRequest),
            _ => {
                self.method_override = Some(value);
                Ok(())
            }
        }
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

/// `%XY` escapes decoded, as frameworks read a query parameter name (`%5Fmethod` is
/// `_method`) and as Envoy URL-encodes a client certificate; a malformed escape is kept
/// as it is, bytes that are not UTF-8 become U+FFFD.
pub(crate) fn percent_decoded(text: &str) -> Cow<'_, str> {
    if !text.contains('%') {
        return Cow::Borrowed(text);
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let decoded = (bytes[i] == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match decoded {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
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
