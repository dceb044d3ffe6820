//! The paths an upstream may derive from a canonical path: each derivation is a catalogue
//! reading ([`crate::upstream`]) applied where some framework that may serve the request
//! reads so, and readings are derived from readings until nothing new appears — an
//! upstream may decode `%2F` *and* drop `;parameters` *and* a format suffix. Every reading
//! is itself in canonical form; a reading that cannot be read (an escaped control
//! character after a second decoding) refuses the whole request.

use std::borrow::Cow;

use super::{PathError, escaped, recode, resolve_segments, split_query};
use crate::upstream::{Frameworks, Reading};

/// More readings than this refuse the request: a real path has a handful.
pub const MAX_READINGS: usize = 64;

/// What a path contains that some upstreams read as structure, and that is refused when
/// the readings it gives disagree (see `policy`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PathTraits {
    /// `%2F` or `%5C`: a separator to an upstream that decodes before routing.
    pub escaped_separator: bool,
    /// `;` or `%3B`: a path parameter to Tomcat, Spring or Jetty, dropped from the segment.
    pub parameters: bool,
    /// `%25` followed by an escape's two hex digits: another byte to a second decoding.
    pub double_escape: bool,
}

impl PathTraits {
    /// The traits of a canonical path (escapes upper case).
    pub fn of(path: &str) -> PathTraits {
        PathTraits {
            escaped_separator: path.contains("%2F") || path.contains("%5C"),
            parameters: path.contains(';') || path.contains("%3B"),
            double_escape: double_escapes(path).next().is_some(),
        }
    }

    pub fn with(self, other: PathTraits) -> PathTraits {
        PathTraits {
            escaped_separator: self.escaped_separator || other.escaped_separator,
            parameters: self.parameters || other.parameters,
            double_escape: self.double_escape || other.double_escape,
        }
    }
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

    /// Adds a path (canonical) unless it is one already.
    pub fn add(&mut self, reading: String) -> Result<(), PathError> {
        if *self.canonical != reading && !self.others.contains(&reading) {
            if self.others.len() + 1 >= MAX_READINGS {
                return Err(PathError::TooManyReadings);
            }
            self.others.push(reading);
        }
        Ok(())
    }
}

/// Every path an upstream of `frameworks` may take the request path `raw` for: its
/// canonical form `canonical` first, then each reading derived by the catalogue's path
/// readings, closed under derivation. Readings are derived both from the path as received
/// and from its resolved form (dot segments removed), because an upstream may decode before
/// it resolves (`/a%2Fb/../admin` is `/a/admin` to it) or after Envoy resolved them.
pub fn readings<'a>(
    raw: &str,
    canonical: Cow<'a, str>,
    frameworks: Frameworks,
) -> Result<Readings<'a>, PathError> {
    let raw = split_query(raw).0;
    // The common case, in one pass: nothing any reading could change.
    let derivable = raw.bytes().any(|b| matches!(b, b'%' | b';' | b'.'))
        || (raw.len() > 1 && raw.ends_with('/'));
    if !derivable && *canonical == *raw {
        return Ok(Readings {
            traits: PathTraits::default(),
            canonical,
            others: Vec::new(),
        });
    }
    let received: Cow<'_, str> = if *canonical == *raw {
        Cow::Borrowed(raw)
    } else {
        Cow::Owned(recode(raw)?)
    };
    let traits = PathTraits::of(&received);
    // The common case: a canonical path no reading changes.
    if *received == *canonical && derive(&received, frameworks).is_empty() {
        return Ok(Readings {
            traits,
            canonical,
            others: Vec::new(),
        });
    }
    let mut forms: Vec<String> = vec![received.into_owned()];
    let mut readings = Readings {
        traits,
        canonical,
        others: Vec::new(),
    };
    if *readings.canonical != forms[0] {
        forms.push(readings.canonical.to_string());
    }
    let mut next = 0;
    while let Some(form) = forms.get(next) {
        for derived in derive(form, frameworks) {
            let unresolved = recode(&derived)?;
            let resolved = resolve_segments(&unresolved);
            readings.add(resolved.clone())?;
            for form in [unresolved, resolved] {
                if !forms.contains(&form) {
                    if forms.len() >= 2 * MAX_READINGS {
                        return Err(PathError::TooManyReadings);
                    }
                    forms.push(form);
                }
            }
        }
        next += 1;
    }
    Ok(readings)
}

/// The paths one step of each applicable reading makes of `path` (recoded, resolved or
/// not); they are recoded and resolved by the caller.
fn derive(path: &str, frameworks: Frameworks) -> Vec<String> {
    let mut out = Vec::new();
    let reads = |reading| frameworks.read(reading);
    if reads(Reading::EscapedSeparators) && (path.contains("%2F") || path.contains("%5C")) {
        out.push(path.replace("%2F", "/").replace("%5C", "/"));
    }
    if reads(Reading::PathParameters) && (path.contains(';') || path.contains("%3B")) {
        // Before decoding (Tomcat: raw `;` only) and after it (`;` or `%3B`).
        out.push(drop_parameters(path, false));
        out.push(drop_parameters(path, true));
    }
    if reads(Reading::TrailingSlash) && path.len() > 1 && path.ends_with('/') {
        out.push(path[..path.len() - 1].to_owned());
    }
    if reads(Reading::FormatSuffix) {
        let last = path.rfind('/').map_or(0, |at| at + 1);
        for (dot, _) in path[last..].match_indices('.').filter(|(at, _)| *at > 0) {
            out.push(path[..last + dot].to_owned());
        }
    }
    let trailing_dot_or_space = |s: &str| s.ends_with('.') || s.ends_with("%20");
    if reads(Reading::TrailingDotsSpaces) && path.split('/').any(trailing_dot_or_space) {
        // A segment of dots and spaces only may end empty, or be a dot segment (`..%20`).
        for dot_segments in [false, true] {
            let trimmed: Vec<&str> = path
                .split('/')
                .map(|s| trim_dots_and_spaces(s, dot_segments))
                .collect();
            let trimmed = trimmed.join("/");
            if trimmed != path && !out.contains(&trimmed) {
                out.push(trimmed);
            }
        }
    }
    if reads(Reading::DoubleDecoding) && double_escapes(path).next().is_some() {
        let mut decoded = String::with_capacity(path.len());
        let mut from = 0;
        for at in double_escapes(path) {
            decoded.push_str(&path[from..at]);
            decoded.push('%');
            from = at + 3;
        }
        decoded.push_str(&path[from..]);
        out.push(decoded);
    }
    out
}

/// Where `%25` is followed by two hex digits: what a second decoding turns into an escape.
fn double_escapes(path: &str) -> impl Iterator<Item = usize> + '_ {
    let bytes = path.as_bytes();
    path.match_indices("%25").map(|(at, _)| at).filter(move |&at| {
        matches!((bytes.get(at + 3), bytes.get(at + 4)), (Some(&hi), Some(&lo)) if escaped(hi, lo).is_some())
    })
}

/// A segment without the dots and (escaped) spaces that end it, as Win32 path
/// normalisation reads it; with `dot_segments`, a segment of dots and spaces only is read
/// as `.` or `..`.
fn trim_dots_and_spaces(segment: &str, dot_segments: bool) -> &str {
    if segment == "." || segment == ".." {
        return segment;
    }
    let mut trimmed = segment;
    loop {
        let shorter = trimmed
            .strip_suffix('.')
            .or_else(|| trimmed.strip_suffix("%20"));
        match shorter {
            Some(s) => trimmed = s,
            None => break,
        }
    }
    if dot_segments && trimmed.is_empty() && !segment.is_empty() {
        let dots = segment.bytes().filter(|&b| b == b'.').count();
        return match dots {
            0 => "",
            1 => ".",
            _ => "..",
        };
    }
    trimmed
}

/// Each segment cut at its first `;` (and, with `escaped`, its first `%3B`).
fn drop_parameters(path: &str, escaped: bool) -> String {
    let segments: Vec<&str> = path
        .split('/')
        .map(|segment| {
            let mut end = segment.find(';').unwrap_or(segment.len());
            if escaped && let Some(at) = segment.find("%3B") {
                end = end.min(at);
            }
            &segment[..end]
        })
        .collect();
    segments.join("/")
}
