//! Request paths: normalisation and pattern matching, shared by route validation at load
//! (which also proves routes reachable) and route matching per request. Normalisation
//! gives every path one canonical spelling, so that it can reach a route only under it:
//! query string and fragment dropped, `%XX` escapes of unreserved characters decoded
//! (RFC 3986 §6.2.2.2), empty segments merged (`//`), dot segments resolved (`/./`,
//! `/../`, never above the root). Escapes of reserved characters (`%2F`, `%3F`, …) stay
//! escaped, upper-cased, so they can never turn into separators.

use std::borrow::Cow;

/// Why a path cannot be normalised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathError {
    /// Empty or not starting with `/` (Envoy always sends an origin-form path).
    NotAbsolute,
    /// A `%` not followed by two hex digits, or a control character.
    BadEncoding,
}

/// Normalises an origin-form request path. Borrows when the path is already canonical,
/// which is the common case.
pub fn normalize_path(raw: &str) -> Result<Cow<'_, str>, PathError> {
    let path = match raw.find(['?', '#']) {
        Some(end) => &raw[..end],
        None => raw,
    };
    if !path.starts_with('/') {
        return Err(PathError::NotAbsolute);
    }
    if path.bytes().any(|b| b.is_ascii_control() || b == b' ') {
        return Err(PathError::BadEncoding);
    }
    if is_canonical(path) {
        return Ok(Cow::Borrowed(path));
    }
    let decoded = decode_unreserved(path)?;
    let mut segments: Vec<&str> = Vec::new();
    for segment in decoded.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let trailing_slash = decoded.len() > 1
        && (decoded.ends_with('/') || decoded.ends_with("/.") || decoded.ends_with("/.."));
    let mut out = String::with_capacity(decoded.len());
    for segment in &segments {
        out.push('/');
        out.push_str(segment);
    }
    if out.is_empty() || (trailing_slash && !segments.is_empty()) {
        out.push('/');
    }
    Ok(Cow::Owned(out))
}

/// True when normalisation would change nothing: no `%`, no empty or dot segment.
fn is_canonical(path: &str) -> bool {
    !path.contains('%')
        && !path.contains("//")
        && !path
            .split('/')
            .skip(1)
            .any(|segment| segment == "." || segment == "..")
}

fn decode_unreserved(path: &str) -> Result<String, PathError> {
    let bytes = path.as_bytes();
    let mut out = String::with_capacity(path.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hi = bytes.get(i + 1).and_then(|b| (*b as char).to_digit(16));
            let lo = bytes.get(i + 2).and_then(|b| (*b as char).to_digit(16));
            let (Some(hi), Some(lo)) = (hi, lo) else {
                return Err(PathError::BadEncoding);
            };
            let byte = (hi * 16 + lo) as u8;
            if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
                out.push(byte as char);
            } else {
                out.push('%');
                out.push(char::from(b"0123456789ABCDEF"[(byte >> 4) as usize]));
                out.push(char::from(b"0123456789ABCDEF"[(byte & 0xf) as usize]));
            }
            i += 3;
        } else {
            // Copy the run up to the next '%' unchanged (it may hold multi-byte UTF-8).
            let end = path[i..].find('%').map_or(path.len(), |n| i + n);
            out.push_str(&path[i..end]);
            i = end;
        }
    }
    Ok(out)
}

/// One segment of a path template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathSegment {
    Literal(String),
    /// `{name}` or `*`: exactly one non-empty segment.
    One,
    /// `**`, last only: zero or more segments.
    Rest,
}

/// Segment-aware prefix: `/api/orders` matches `/api/orders` and `/api/orders/…` but not
/// `/api/ordersX`; a prefix ending in `/` (such as `/`) matches everything below it.
pub fn prefix_matches(prefix: &str, path: &str) -> bool {
    match path.strip_prefix(prefix) {
        None => false,
        Some(rest) => rest.is_empty() || prefix.ends_with('/') || rest.starts_with('/'),
    }
}

/// Whether a normalised `path` fits the template `segments`.
pub fn template_matches(segments: &[PathSegment], path: &str) -> bool {
    let mut parts = path.split('/').skip(1);
    for segment in segments {
        match segment {
            PathSegment::Rest => return true,
            PathSegment::One => {
                if parts.next().is_none_or(str::is_empty) {
                    return false;
                }
            }
            PathSegment::Literal(literal) => {
                if parts.next() != Some(literal.as_str()) {
                    return false;
                }
            }
        }
    }
    parts.next().is_none()
}

/// The path made of a template's leading literal segments: every path the template
/// matches lies at or below it.
pub fn template_base(segments: &[PathSegment]) -> String {
    let mut base = String::new();
    for segment in segments {
        match segment {
            PathSegment::Literal(literal) => {
                base.push('/');
                base.push_str(literal);
            }
            PathSegment::One | PathSegment::Rest => break,
        }
    }
    if base.is_empty() {
        base.push('/');
    }
    base
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(p: &str) -> Result<String, PathError> {
        normalize_path(p).map(Cow::into_owned)
    }

    #[test]
    fn canonical_paths_are_borrowed_unchanged() {
        for p in ["/", "/api/orders", "/api/orders/", "/a.b/c..d/.e"] {
            assert!(
                matches!(normalize_path(p), Ok(Cow::Borrowed(q)) if q == p),
                "{p}"
            );
        }
    }

    #[test]
    fn query_and_fragment_are_ignored() {
        assert_eq!(norm("/api/orders?x=/admin").unwrap(), "/api/orders");
        assert_eq!(norm("/api#frag").unwrap(), "/api");
    }

    #[test]
    fn dot_segments_and_slashes_cannot_escape_a_route() {
        assert_eq!(norm("/public/../admin").unwrap(), "/admin");
        assert_eq!(norm("/public/./x").unwrap(), "/public/x");
        assert_eq!(norm("//admin").unwrap(), "/admin");
        assert_eq!(norm("/../../admin").unwrap(), "/admin");
        assert_eq!(norm("/a/b/..").unwrap(), "/a/");
        assert_eq!(norm("/..").unwrap(), "/");
        assert_eq!(norm("/a//").unwrap(), "/a/");
    }

    #[test]
    fn unreserved_escapes_are_decoded_reserved_ones_kept() {
        assert_eq!(norm("/%61dmin").unwrap(), "/admin");
        assert_eq!(norm("/public/%2e%2e/admin").unwrap(), "/admin");
        assert_eq!(norm("/public/%2E%2E/admin").unwrap(), "/admin");
        assert_eq!(norm("/a%2fb").unwrap(), "/a%2Fb");
        assert_eq!(norm("/caf%C3%A9").unwrap(), "/caf%C3%A9");
    }

    #[test]
    fn prefixes_match_whole_segments() {
        assert!(prefix_matches("/api/orders", "/api/orders"));
        assert!(prefix_matches("/api/orders", "/api/orders/7"));
        assert!(!prefix_matches("/api/orders", "/api/ordersX"));
        assert!(prefix_matches("/", "/anything"));
        assert!(prefix_matches("/api/", "/api/x"));
    }

    #[test]
    fn templates_match_segment_by_segment() {
        use PathSegment::{Literal, One, Rest};
        let item = [Literal("orders".into()), One];
        assert!(template_matches(&item, "/orders/7"));
        assert!(!template_matches(&item, "/orders"));
        assert!(!template_matches(&item, "/orders/"));
        assert!(!template_matches(&item, "/orders/7/lines"));
        let files = [Literal("files".into()), Rest];
        assert!(template_matches(&files, "/files"));
        assert!(template_matches(&files, "/files/a/b/c"));
        assert!(!template_matches(&files, "/filesX/a"));
        let nested = [Literal("a".into()), One, Literal("b".into()), Rest];
        assert!(template_matches(&nested, "/a/1/b/2"));
        assert_eq!(template_base(&nested), "/a");
        assert_eq!(template_base(&[One]), "/");
    }

    #[test]
    fn broken_paths_are_refused() {
        assert_eq!(norm(""), Err(PathError::NotAbsolute));
        assert_eq!(norm("api"), Err(PathError::NotAbsolute));
        assert_eq!(norm("/a%zz"), Err(PathError::BadEncoding));
        assert_eq!(norm("/a%4"), Err(PathError::BadEncoding));
        assert_eq!(norm("/a\r\nb"), Err(PathError::BadEncoding));
    }
}
