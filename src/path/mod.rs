//! Request paths: one canonical spelling, the other readings an upstream may give the same
//! path ([`readings`]), case folding, and the pattern matching routes use. Shared by route
//! validation at load (which requires route paths in canonical form) and route matching per
//! request.
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
//! character, space, raw `\` or `#`; a malformed escape; an escaped control character
//! (`%00`, `%0A`: a regex router ending in `$` matches before a final newline) — in the path
//! or in any reading of it, so a double escape of one (`%250A`) is refused too.
//!
//! **Readings** ([`readings`]): the paths upstreams may derive from the canonical one —
//! escaped separators decoded, `;parameters` dropped, a trailing slash, a format suffix,
//! trailing dots and spaces, a second decoding — each from the catalogue
//! ([`crate::upstream`]). Case folding is the last equivalence: applied by the matcher
//! ([`fold`]), so it costs nothing when neither path nor routes have capitals.

mod readings;

use std::borrow::Cow;

pub use readings::{PathTraits, Readings, readings};

/// Why a path is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathError {
    /// Empty or not starting with `/` (Envoy always sends an origin-form path).
    NotAbsolute,
    /// A malformed escape, a control character (raw or escaped), a space, a raw backslash
    /// or `#`.
    BadEncoding,
    /// More readings than [`readings::MAX_READINGS`]: no real path needs so many.
    TooManyReadings,
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

/// Every byte in its canonical spelling (decoded or escaped), structure untouched: the
/// canonical form before dot segments are resolved.
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
            match CLASS[usize::from(byte)] {
                Class::Plain => out.push(char::from(byte)),
                Class::Refused if byte.is_ascii_control() => return Err(PathError::BadEncoding),
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

/// Escapes (canonical, upper case) of the non-ASCII letters whose simple case mapping is
/// an ASCII letter, and that letter: `İ` and `ı` (dotted capital and dotless small I), `ſ`
/// (long s), `K` (Kelvin sign). Python's `re.IGNORECASE` documents exactly these four.
const ASCII_CASE_PAIRS: [(&str, &str); 4] = [
    ("%C4%B0", "i"),
    ("%C4%B1", "i"),
    ("%C5%BF", "s"),
    ("%E2%84%AA", "k"),
];

/// `path` (canonical) as an upstream that compares letters case-insensitively reads it:
/// ASCII letters in lower case and, with `unicode`, the letters of [`ASCII_CASE_PAIRS`] as
/// their ASCII pair. Route patterns are folded the same way (with `unicode`), so both sides
/// of a comparison agree.
pub fn fold(path: &str, unicode: bool) -> String {
    let mut folded = path.to_owned();
    if unicode && path.contains('%') {
        for (escape, letter) in ASCII_CASE_PAIRS {
            if folded.contains(escape) {
                folded = folded.replace(escape, letter);
            }
        }
    }
    folded.make_ascii_lowercase();
    folded
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
