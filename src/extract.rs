//! Step 1 of a Check: read what the decision needs from Envoy's `CheckRequest` — method,
//! host, path and the bearer token — borrowing from the request, copying nothing. Works
//! with both ways Envoy can send headers (`headers` map, or `header_map` when the filter
//! sets `encode_raw_headers: true`).

use crate::{deny::DenyReason, pb::auth::CheckRequest};

/// The parts of an HTTP request that authorization looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestView<'a> {
    pub method: &'a str,
    pub host: &'a str,
    /// As sent by Envoy: may carry a query string; normalised by the policy step.
    pub path: &'a str,
    /// The raw `authorization` header value, if any.
    pub authorization: Option<&'a str>,
}

/// Extracts the request view, or `InvalidRequest` when Envoy sent no HTTP attributes or
/// more than `max_headers` headers, or `MalformedAuthorization` when `header_map`
/// carries several `authorization` headers.
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
    let authorization = match &http.header_map {
        Some(map) if http.headers.is_empty() => {
            let mut found = map
                .headers
                .iter()
                .filter(|h| h.key.eq_ignore_ascii_case("authorization"));
            let first = found.next();
            if found.next().is_some() {
                return Err(DenyReason::MalformedAuthorization);
            }
            match first {
                None => None,
                Some(h) if h.raw_value.is_empty() => Some(h.value.as_str()),
                Some(h) => Some(
                    std::str::from_utf8(&h.raw_value)
                        .map_err(|_| DenyReason::MalformedAuthorization)?,
                ),
            }
        }
        _ => http.headers.get("authorization").map(String::as_str),
    };
    Ok(RequestView {
        method: &http.method,
        host: &http.host,
        path: &http.path,
        authorization,
    })
}

/// The CheckRequest Envoy would send for `method host path` with these (lower-case)
/// headers: how the HTTP check mode and the tools enter the same pipeline.
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

/// RFC 6750 §2.1: `Bearer` (any case), one or more spaces, one b64token. `Ok(None)` when
/// there is no header; `UnsupportedScheme` for another scheme; `MalformedAuthorization`
/// for anything else, including two headers joined by Envoy with `,`.
pub fn bearer_token(authorization: Option<&str>) -> Result<&str, DenyReason> {
    let value = authorization
        .ok_or(DenyReason::MissingToken)?
        .trim_matches(|c| c == ' ' || c == '\t');
    if value.is_empty() {
        return Err(DenyReason::MissingToken);
    }
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
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
    Ok(token)
}

/// `b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`
fn is_b64token(token: &str) -> bool {
    let body = token.trim_end_matches('=');
    !body.is_empty() && body.bytes().all(|b| B64TOKEN[usize::from(b)])
}

/// The b64token alphabet as a table: this runs over every byte of every token.
const B64TOKEN: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] =
            c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~' | b'+' | b'/');
        b += 1;
    }
    table
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pb::{
        auth::{
            AttributeContext,
            attribute_context::{HttpRequest, Request},
        },
        core::{HeaderMap, HeaderValue},
    };

    fn request(http: HttpRequest) -> CheckRequest {
        CheckRequest {
            attributes: Some(AttributeContext {
                request: Some(Request {
                    time: None,
                    http: Some(http),
                }),
                ..Default::default()
            }),
        }
    }

    #[test]
    fn reads_method_host_path_and_header_map_form() {
        let mut http = HttpRequest {
            method: "GET".into(),
            host: "api.example.com".into(),
            path: "/api/orders?x=1".into(),
            ..Default::default()
        };
        http.headers
            .insert("authorization".into(), "Bearer abc".into());
        let req = request(http.clone());
        let view = extract(&req, 100).unwrap();
        assert_eq!(view.method, "GET");
        assert_eq!(view.host, "api.example.com");
        assert_eq!(view.path, "/api/orders?x=1");
        assert_eq!(view.authorization, Some("Bearer abc"));

        http.headers.clear();
        http.header_map = Some(HeaderMap {
            headers: vec![HeaderValue {
                key: "authorization".into(),
                value: String::new(),
                raw_value: b"Bearer raw".to_vec(),
            }],
        });
        let req = request(http);
        assert_eq!(
            extract(&req, 100).unwrap().authorization,
            Some("Bearer raw")
        );
    }

    #[test]
    fn two_raw_authorization_headers_are_malformed() {
        let header = HeaderValue {
            key: "Authorization".into(),
            value: "Bearer a".into(),
            raw_value: Vec::new(),
        };
        let req = request(HttpRequest {
            header_map: Some(HeaderMap {
                headers: vec![header.clone(), header],
            }),
            ..Default::default()
        });
        assert_eq!(extract(&req, 100), Err(DenyReason::MalformedAuthorization));
    }

    #[test]
    fn too_many_headers_are_an_invalid_request() {
        let mut http = HttpRequest::default();
        for i in 0..11 {
            http.headers.insert(format!("x-{i}"), "v".into());
        }
        let req = request(http);
        assert_eq!(extract(&req, 10), Err(DenyReason::InvalidRequest));
        assert!(extract(&req, 11).is_ok());
    }

    #[test]
    fn missing_http_attributes_are_an_invalid_request() {
        assert_eq!(
            extract(&CheckRequest::default(), 100),
            Err(DenyReason::InvalidRequest)
        );
    }

    #[test]
    fn bearer_scheme_is_case_insensitive_and_exactly_one_token() {
        assert_eq!(bearer_token(Some("Bearer a.b.c")), Ok("a.b.c"));
        assert_eq!(bearer_token(Some("bearer   a.b.c ")), Ok("a.b.c"));
        assert_eq!(
            bearer_token(Some("BEARER a-b_c~d+e/f==")),
            Ok("a-b_c~d+e/f==")
        );
        let cases = [
            (None, DenyReason::MissingToken),
            (Some(""), DenyReason::MissingToken),
            (Some("Basic dXNlcjpwYXNz"), DenyReason::UnsupportedScheme),
            (Some("Bearer"), DenyReason::MalformedAuthorization),
            (Some("Bearer "), DenyReason::MalformedAuthorization),
            (Some("Bearer a b"), DenyReason::MalformedAuthorization),
            (
                Some("Bearer a.b.c,Bearer d.e.f"),
                DenyReason::MalformedAuthorization,
            ),
            (Some("Bearer,Bearer x"), DenyReason::MalformedAuthorization),
            (Some("Bearer a\"b"), DenyReason::MalformedAuthorization),
            (Some("Bearer ===="), DenyReason::MalformedAuthorization),
            (Some("Bearer\ta.b.c"), DenyReason::UnsupportedScheme),
        ];
        for (header, reason) in cases {
            assert_eq!(bearer_token(header), Err(reason), "{header:?}");
        }
    }
}
