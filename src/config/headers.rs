//! Header names a configuration gives portcullis to set upstream (identity headers,
//! the payload header): valid HTTP names, never one that routes, frames or authenticates
//! a request, and the claim each one carries.

use super::{ClaimSource, HeaderMapping, problems::Problems};

/// Headers an identity mapping may never set: routing, framing and the credential itself.
const RESERVED_HEADERS: &[&str] = &[
    "authorization",
    "host",
    "content-length",
    "content-type",
    "transfer-encoding",
    "connection",
    "te",
    "upgrade",
    "cookie",
    "dpop",
];

/// Validates a `header: claim` map (global `identity_headers` or a route's).
pub(super) fn header_mappings(
    field: &str,
    map: &std::collections::BTreeMap<String, String>,
    problems: &mut Problems,
) -> Vec<HeaderMapping> {
    map.iter()
        .filter_map(|(header, claim)| {
            let at = format!("{field}.{header}");
            let name = header.to_ascii_lowercase();
            if !check_header_name(problems, &at, &name) {
                None
            } else if claim.trim().is_empty() {
                problems.add(at, "needs a claim name");
                None
            } else {
                Some(header_mapping(&name, claim))
            }
        })
        .collect()
}

/// A header portcullis may set: a valid name, and not one that routes, frames or
/// authenticates the request.
pub(super) fn check_header_name(problems: &mut Problems, field: &str, name: &str) -> bool {
    if !is_header_name(name) {
        problems.add(field, "is not a valid HTTP header name");
        false
    } else if RESERVED_HEADERS.contains(&name) {
        problems.add(field, "may not be set from a claim");
        false
    } else {
        true
    }
}

pub(super) fn header_mapping(header: &str, claim: &str) -> HeaderMapping {
    let claim = match claim {
        "scopes" => ClaimSource::Scopes,
        "roles" => ClaimSource::Roles,
        "client_id" => ClaimSource::ClientId,
        "binding" => ClaimSource::Binding,
        "binding_thumbprint" => ClaimSource::BindingThumbprint,
        other => ClaimSource::Claim(other.to_owned()),
    };
    HeaderMapping {
        header: header.to_owned(),
        claim,
    }
}

/// RFC 9110 token characters, lower case only (HTTP/2 header names are lower case).
fn is_header_name(name: &str) -> bool {
    !name.is_empty()
        && name.bytes().all(|b| {
            b.is_ascii_lowercase()
                || b.is_ascii_digit()
                || matches!(
                    b,
                    b'!' | b'#'
                        | b'$'
                        | b'%'
                        | b'&'
                        | b'\''
                        | b'*'
                        | b'+'
                        | b'-'
                        | b'.'
                        | b'^'
                        | b'_'
                        | b'`'
                        | b'|'
                        | b'~'
                )
        })
}
