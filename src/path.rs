//! Request paths: one canonical spelling, the other readings an upstream may give the same
//! path, and the pattern matching routes use. Shared by route validation at load (which
//! requires route paths in canonical form) and route matching per request.
//!
//! **Canonical form** (RFC 3986 §6.2.2, extended so that every spelling a decoding upstream
//! treats as the same path has the same canonical form): the query is dropped; escapes of
//! characters that are ordinary in a segment are decoded (`%61` → `a`, `%2E` → `.`,
//! `%21` → `!`); bytes that may not appear raw in a segment are escaped (`"` → `%22`, raw
//! UTF-8 → `%C3%A9`); escapes of the characters that would change the path's structure if
//! decoded — `%2F`, `%5C`, `%3B`, `%3F`, `%23`, `%25` — stay escaped, in upper case; empty
//! segments are merged (`//`) and dot segments resolved (`/./`, `/../`, never above root).
//!
//! **Refused** (no upstream should be handed it): a path not starting with `/`; a control
//! character, space, raw `\` or `#`; a malformed escape or `%00`; a double escape
//! (`%25` followed by two hex digits, written so or themselves escaped — `%25%36%31` —
//! which a second decoding turns into another byte).
//!
//! **Readings.** Upstreams do not all read a path the same way: many decode `%2F`/`%5C`
//! into separators before routing (static file servers, Spring, ASP.NET Core), Tomcat,
//! Spring and Jetty drop `;parameters` from segments (before or after decoding), and
//! Express, ASP.NET Core and Spring ignore one trailing slash. [`readings`] lists every path
//! such an upstream may derive from the request's, canonical first; the policy decides on
//! the strictest of them. (Case folding is the fourth equivalence: it is applied by the
//! matcher, see `policy`, so it costs nothing when neither path nor routes have capitals.)

use std::borrow::Cow;

/// Why a path is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathError {
    /// Empty or not starting with `/` (Envoy always sends an origin-form path).
    NotAbsolute,
    /// A malformed escape, `%00`, a double escape, a control character, a space, a raw
    /// backslash or `#`.
    BadEncoding,
}

/// What a path contains that some upstreams read as structure.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PathTraits {
    /// `%2F` or `%5C` (any case): a separator to an upstream that decodes before routing.
    pub escaped_separator: bool,
    /// `;` or `%3B`: a path parameter to Tomcat, Spring or Jetty, dropped from the segment.
    pub parameters: bool,
}

impl PathTraits {
    pub fn of(path: &str) -> PathTraits {
        let bytes = path.as_bytes();
        let mut traits = PathTraits::default();
        for (i, &b) in bytes.iter().enumerate() {
            match b {
                b';' => traits.parameters = true,
                b'%' if bytes.len() > i + 2 => match escaped(bytes[i + 1], bytes[i + 2]) {
                    Some(b'/' | b'\\') => traits.escaped_separator = true,
                    Some(b';') => traits.parameters = true,
                    _ => {}
                },
                _ => {}
            }
        }
        traits
    }

    pub fn any(self) -> bool {
        self.escaped_separator || self.parameters
    }
}

/// The path part of a request target (before `?`), and the query (after it, if any).
pub fn split_query(target: &str) -> (&str, Option<&str>) {
    match target.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (target, None),
    }
}

/// The canonical form of an origin-form path (query already removed, or dropped here).
/// Borrows when the path is canonical already, which is the common case.
pub fn normalize_path(raw: &str) -> Result<Cow<'_, str>, PathError> {
    let path = split_query(raw).0;
    if !path.starts_with('/') {
        return Err(PathError::NotAbsolute);
    }
    if is_canonical(path) {
        return Ok(Cow::Borrowed(path));
    }
    let recoded = recode(path)?;
    Ok(Cow::Owned(resolve_segments(&recoded)))
}

/// Every path an upstream may take `path` for: the canonical form first, then the other
/// readings (escaped separators decoded, parameters dropped before or after decoding, one
/// trailing slash dropped), each canonical and listed once.
pub fn readings(path: &str) -> Result<Readings<'_>, PathError> {
    let path = split_query(path).0;
    let canonical = normalize_path(path)?;
    let traits = PathTraits::of(path);
    let mut readings = Readings {
        traits,
        canonical,
        others: Vec::new(),
    };
    if traits.any() {
        // (decode separators, drop raw `;` parameters first, drop `;`/`%3B` parameters after)
        for (separators, before, after) in [
            (true, false, false),
            (false, true, false),
            (false, false, true),
            (false, true, true),
            (true, true, false),
            (true, false, true),
            (true, true, true),
        ] {
            if (separators && !traits.escaped_separator)
                || ((before || after) && !traits.parameters)
            {
                continue;
            }
            let derived = derive(path, separators, before, after);
            let reading = normalize_path(&derived)?.into_owned();
            readings.add(reading);
        }
    }
    let trimmed: Vec<String> = readings
        .iter()
        .filter(|p| p.len() > 1 && p.ends_with('/'))
        .map(|p| p[..p.len() - 1].to_owned())
        .collect();
    for reading in trimmed {
        readings.add(reading);
    }
    Ok(readings)
}

/// The readings of one request path (see [`readings`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Readings<'a> {
    pub traits: PathTraits,
    pub canonical: Cow<'a, str>,
    /// Other readings, none equal to `canonical` or to each other; usually empty.
    pub others: Vec<String>,
}

impl Readings<'_> {
    /// Canonical first.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        std::iter::once(&*self.canonical).chain(self.others.iter().map(String::as_str))
    }

    fn add(&mut self, reading: String) {
        if *self.canonical != reading && !self.others.contains(&reading) {
            self.others.push(reading);
        }
    }
}

/// `path` read as an upstream that decodes `%2F`/`%5C` (`separators`) and drops
/// `;parameters` from each segment before decoding (`before`, raw `;` only, as Tomcat
/// does) or after it (`after`, `;` or `%3B`).
fn derive(path: &str, separators: bool, before: bool, after: bool) -> String {
    let mut out = path.to_owned();
    if before {
        out = drop_parameters(&out, false);
    }
    if separators {
        for escape in ["%2F", "%2f", "%5C", "%5c"] {
            out = out.replace(escape, "/");
        }
    }
    if after {
        out = drop_parameters(&out, true);
    }
    out
}

/// Each segment cut at its first `;` (and, with `escaped`, its first `%3B`).
fn drop_parameters(path: &str, escaped: bool) -> String {
    let segments: Vec<&str> = path
        .split('/')
        .map(|segment| {
            let mut end = segment.find(';').unwrap_or(segment.len());
            if escaped && let Some(at) = segment.to_ascii_uppercase().find("%3B") {
                end = end.min(at);
            }
            &segment[..end]
        })
        .collect();
    segments.join("/")
}

/// How a byte of a path is treated.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Class {
    /// Kept raw (decoded when escaped): unreserved, sub-delims but `;`, `:`, `@`.
    Plain,
    /// `/` and `;`: structure, kept raw.
    Structure,
    /// May not appear raw but is harmless escaped: kept (or put) escaped.
    Escaped,
    /// Refused raw: control characters, space, `\`, `#`.
    Refused,
}

const CLASS: [Class; 256] = {
    let mut table = [Class::Escaped; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = if c.is_ascii_alphanumeric()
            || matches!(
                c,
                b'-' | b'.'
                    | b'_'
                    | b'~'
                    | b'!'
                    | b'$'
                    | b'&'
                    | b'\''
                    | b'('
                    | b')'
                    | b'*'
                    | b'+'
                    | b','
                    | b'='
                    | b':'
                    | b'@'
            ) {
            Class::Plain
        } else if c == b'/' || c == b';' {
            Class::Structure
        } else if c < 0x20 || c == 0x7f || c == b' ' || c == b'\\' || c == b'#' {
            Class::Refused
        } else {
            Class::Escaped
        };
        b += 1;
    }
    table
};

/// True when canonicalisation would change nothing: only plain and structural bytes, no
/// `%`, no empty or dot segment.
fn is_canonical(path: &str) -> bool {
    path.bytes()
        .all(|b| matches!(CLASS[usize::from(b)], Class::Plain | Class::Structure))
        && !path.contains("//")
        && !path
            .split('/')
            .skip(1)
            .any(|segment| segment == "." || segment == "..")
}

/// The byte a `%XY` escape stands for.
fn escaped(hi: u8, lo: u8) -> Option<u8> {
    let hi = (hi as char).to_digit(16)?;
    let lo = (lo as char).to_digit(16)?;
    Some((hi * 16 + lo) as u8)
}

/// Every byte in its canonical spelling (decoded or escaped), structure untouched.
fn recode(path: &str) -> Result<String, PathError> {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let bytes = path.as_bytes();
    let mut out = String::with_capacity(path.len() + 8);
    let push_escaped = |out: &mut String, byte: u8| {
        out.push('%');
        out.push(char::from(HEX[usize::from(byte >> 4)]));
        out.push(char::from(HEX[usize::from(byte & 0xf)]));
    };
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let byte = match (bytes.get(i + 1), bytes.get(i + 2)) {
                (Some(&hi), Some(&lo)) => escaped(hi, lo).ok_or(PathError::BadEncoding)?,
                _ => return Err(PathError::BadEncoding),
            };
            if byte == 0 {
                return Err(PathError::BadEncoding);
            }
            match CLASS[usize::from(byte)] {
                Class::Plain => out.push(char::from(byte)),
                Class::Structure | Class::Escaped | Class::Refused => push_escaped(&mut out, byte),
            }
            i += 3;
        } else {
            match CLASS[usize::from(b)] {
                Class::Plain | Class::Structure => out.push(char::from(b)),
                Class::Escaped => push_escaped(&mut out, b),
                Class::Refused => return Err(PathError::BadEncoding),
            }
            i += 1;
        }
    }
    // A `%25` the canonical form still follows with two hex digits — written so, or
    // spelled with escapes of its own (`%25%36%31`, whose `%36%31` decode to `61`) — is a
    // double escape: a second decoding would make another byte (`%2561` → `%61` → `a`).
    let double = out
        .as_bytes()
        .windows(5)
        .any(|w| w.starts_with(b"%25") && w[3].is_ascii_hexdigit() && w[4].is_ascii_hexdigit());
    if double {
        return Err(PathError::BadEncoding);
    }
    Ok(out)
}

/// Merges empty segments and resolves dot segments (never above the root); keeps one
/// trailing slash.
fn resolve_segments(path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let trailing_slash =
        path.len() > 1 && (path.ends_with('/') || path.ends_with("/.") || path.ends_with("/.."));
    let mut out = String::with_capacity(path.len());
    for segment in &segments {
        out.push('/');
        out.push_str(segment);
    }
    if out.is_empty() || (trailing_slash && !segments.is_empty()) {
        out.push('/');
    }
    out
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
mod tests;
