//! Method overrides: the methods a request asks an upstream to serve it as instead of its
//! own — a method-override header, a `_method` query parameter, a `_method` field of a form
//! body or member of a JSON body — each with the frameworks that read it
//! ([`crate::upstream`]). PHP rewrites parameter names before Laravel or Symfony sees them
//! (`.method` and ` _method` are `_method`), so names are also read as PHP reads them. A
//! body that Envoy did not send, or sent in part, gives an override whose method is
//! unknown, for the frameworks that would read one from it.

use std::borrow::Cow;

use crate::upstream::{Framework, Frameworks, MethodOverride, Reading};

/// Request headers by which frameworks let a client replace the method: Express
/// `method-override`, Rack, Laravel, Symfony, ASP.NET Core.
pub const METHOD_OVERRIDE_HEADERS: &[&str] = &[
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
];
/// The query parameter, form field and JSON member frameworks read as a method override
/// (compared without regard to case, so Slim's `_METHOD` is one too).
pub const METHOD_OVERRIDE_PARAMETER: &str = "_method";

/// What portcullis knows of the request body, from the CheckRequest.
#[derive(Debug, Default, Clone, Copy)]
pub struct Body<'a> {
    /// The bytes Envoy sent (`with_request_body`), possibly none.
    pub bytes: &'a [u8],
    pub content_type: Option<&'a str>,
    pub content_length: Option<&'a str>,
    pub transfer_encoding: bool,
    /// `x-envoy-auth-partial-body`: `true` when Envoy sent only the first bytes. Envoy
    /// marks every body it buffers, so the mark counts only on a body it sent.
    pub partial: Option<&'a str>,
    /// The CheckRequest's `size`: -1 when the front knows the body was not sent (a
    /// forward-auth proxy's subrequest).
    pub size: i64,
    /// The configuration says Envoy sends every body (`request_body: sent`): an empty
    /// body is no body.
    pub sent: bool,
}

/// The override of a method-override header.
pub fn from_header(value: &str) -> MethodOverride<'_> {
    MethodOverride {
        method: Some(Cow::Borrowed(value.trim())),
        by: Reading::OverrideHeaders.entry().frameworks,
    }
}

/// The overrides of a query string's `_method` parameters.
pub fn from_query<'a>(query: &'a str, out: &mut Vec<MethodOverride<'a>>) {
    from_pairs(query, Reading::OverrideQuery.entry().frameworks, out);
}

/// The overrides a POST's body may carry: parsed when Envoy sent it whole, of unknown
/// method when some framework would parse a body portcullis has not seen.
pub fn from_body<'a>(method: &str, body: Body<'a>, out: &mut Vec<MethodOverride<'a>>) {
    // Every framework reads a body override on POST only.
    if !method.eq_ignore_ascii_case("POST") {
        return;
    }
    let Some(kind) = Kind::of(body.content_type) else {
        return;
    };
    let by = kind.readers();
    if body.bytes.is_empty() {
        // No body: said by its length (Envoy checks it against the body), or by Envoy
        // sending none where it sends every body.
        let length = body.content_length.map(str::trim);
        let none = body.size != -1
            && (length == Some("0") || (body.sent && length.is_none() && !body.transfer_encoding));
        if !none {
            out.push(unseen(by));
        }
        return;
    }
    if body
        .partial
        .is_some_and(|p| p.trim().eq_ignore_ascii_case("true"))
    {
        out.push(unseen(by));
        return;
    }
    match kind {
        Kind::Form | Kind::Untyped => match std::str::from_utf8(body.bytes) {
            Ok(text) => from_pairs(text, by, out),
            Err(_) => {
                let text = String::from_utf8_lossy(body.bytes);
                let mut found = Vec::new();
                from_pairs(&text, by, &mut found);
                out.extend(found.into_iter().map(owned));
            }
        },
        Kind::Multipart => from_multipart(body.bytes, body.content_type.unwrap_or(""), by, out),
        Kind::Json => from_json(body.bytes, by, out),
    }
}

/// How a framework parses a POST body, by its content type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `application/x-www-form-urlencoded`.
    Form,
    /// `multipart/form-data` (and Rack's other multipart types).
    Multipart,
    /// `application/json`, `…+json`.
    Json,
    /// No content type: Rack parses such a POST as a form.
    Untyped,
}

impl Kind {
    /// `None` for a content type no framework reads an override from (`text/plain`…).
    fn of(content_type: Option<&str>) -> Option<Kind> {
        let Some(content_type) = content_type else {
            return Some(Kind::Untyped);
        };
        let media = content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match media.as_str() {
            "" => Some(Kind::Untyped),
            "application/x-www-form-urlencoded" => Some(Kind::Form),
            m if m.starts_with("multipart/") => Some(Kind::Multipart),
            m if m.ends_with("+json") || m.contains("/json") => Some(Kind::Json),
            _ => None,
        }
    }

    /// The frameworks that read an override from such a body.
    fn readers(self) -> Frameworks {
        match self {
            Kind::Form | Kind::Multipart => Reading::OverrideForm.entry().frameworks,
            Kind::Json => Reading::OverrideJson.entry().frameworks,
            Kind::Untyped => Frameworks::of(&[Framework::Rails]),
        }
    }
}

/// An override some of `by` may read, whose method portcullis cannot see.
fn unseen<'a>(by: Frameworks) -> MethodOverride<'a> {
    MethodOverride { method: None, by }
}

fn owned<'b>(o: MethodOverride<'_>) -> MethodOverride<'b> {
    MethodOverride {
        method: o.method.map(|m| Cow::Owned(m.into_owned())),
        by: o.by,
    }
}

/// The `_method` parameters of `name=value&…` text (a query or a urlencoded body; `;`
/// separates too, as Rack 2 reads it).
fn from_pairs<'a>(text: &'a str, by: Frameworks, out: &mut Vec<MethodOverride<'a>>) {
    for pair in text.split(['&', ';']) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let Some((readers, array)) = override_name(&form_decoded(name), by) else {
            continue;
        };
        out.push(if array {
            unseen(readers)
        } else {
            MethodOverride {
                method: Some(match form_decoded(value) {
                    Cow::Borrowed(v) => Cow::Borrowed(v.trim()),
                    Cow::Owned(v) => Cow::Owned(v.trim().to_owned()),
                }),
                by: readers,
            }
        });
    }
}

/// Which of `by` read the parameter `name` (decoded) as a method override, and whether
/// they read it as an array (`_method[]`: its method is then unknown here).
fn override_name(name: &str, by: Frameworks) -> Option<(Frameworks, bool)> {
    if name.eq_ignore_ascii_case(METHOD_OVERRIDE_PARAMETER) {
        return Some((by, false));
    }
    let (php, array) = php_name(name);
    if !php.eq_ignore_ascii_case(METHOD_OVERRIDE_PARAMETER) {
        return None;
    }
    // `_method[…]` is an array to every parser; `.method`, ` _method` are `_method` to PHP.
    let readers = match name.get(..METHOD_OVERRIDE_PARAMETER.len()) {
        Some(head) if head.eq_ignore_ascii_case(METHOD_OVERRIDE_PARAMETER) => by,
        _ => by.intersection(Reading::PhpParameterNames.entry().frameworks),
    };
    (!readers.is_empty()).then_some((readers, array))
}

/// A parameter name as PHP registers it: leading spaces dropped, ` ` and `.` turned into
/// `_` up to the first `[`; `name[…]` is an array named `name`, and a `[` never closed is
/// turned into `_` itself (PHP manual, "Variables From External Sources").
fn php_name(name: &str) -> (String, bool) {
    let name = name.trim_start_matches(' ');
    let mut out = String::with_capacity(name.len());
    for (at, c) in name.char_indices() {
        match c {
            ' ' | '.' => out.push('_'),
            '[' if name[at..].contains(']') => return (out, true),
            '[' => {
                out.push('_');
                out.push_str(&name[at + 1..]);
                return (out, false);
            }
            c => out.push(c),
        }
    }
    (out, false)
}

/// `application/x-www-form-urlencoded` decoding: `+` is a space, `%XY` a byte.
fn form_decoded(text: &str) -> Cow<'_, str> {
    if text.contains('+') {
        Cow::Owned(super::percent_decoded(&text.replace('+', " ")).into_owned())
    } else {
        super::percent_decoded(text)
    }
}

/// The `_method` fields of a `multipart/form-data` body (RFC 7578). Anything this cannot
/// read for certain — no boundary, no final delimiter, a part without headers, an
/// RFC 2231 `name*` — is an override of unknown method.
fn from_multipart<'a>(
    body: &'a [u8],
    content_type: &str,
    by: Frameworks,
    out: &mut Vec<MethodOverride<'a>>,
) {
    let Some(boundary) = boundary(content_type) else {
        out.push(unseen(by));
        return;
    };
    let delimiter = format!("--{boundary}");
    let text = String::from_utf8_lossy(body);
    let mut parts = text.split(delimiter.as_str());
    parts.next(); // the preamble
    let mut closed = false;
    for part in parts {
        if part.starts_with("--") {
            closed = true;
            break;
        }
        let part = part.strip_prefix("\r\n").unwrap_or(part);
        let Some((headers, content)) = part.split_once("\r\n\r\n") else {
            out.push(unseen(by));
            return;
        };
        let Some(name) = headers.lines().find_map(disposition_name) else {
            continue;
        };
        let Some(name) = name else {
            out.push(unseen(by));
            return;
        };
        if let Some((readers, array)) = override_name(name, by) {
            let value = content.strip_suffix("\r\n").unwrap_or(content).trim();
            out.push(if array {
                unseen(readers)
            } else {
                MethodOverride {
                    method: Some(Cow::Owned(value.to_owned())),
                    by: readers,
                }
            });
        }
    }
    if !closed {
        out.push(unseen(by));
    }
}

/// The `boundary` parameter of a multipart content type.
fn boundary(content_type: &str) -> Option<&str> {
    content_type.split(';').skip(1).find_map(|param| {
        let (key, value) = param.split_once('=')?;
        key.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| value.trim().trim_matches('"'))
            .filter(|b| !b.is_empty())
    })
}

/// The field name of a `Content-Disposition` header line: `None` for another header,
/// `Some(None)` when the name cannot be read for certain.
fn disposition_name(line: &str) -> Option<Option<&str>> {
    let (header, value) = line.split_once(':')?;
    if !header.trim().eq_ignore_ascii_case("content-disposition") {
        return None;
    }
    let mut name = None;
    for param in value.split(';').skip(1) {
        let Some((key, value)) = param.split_once('=') else {
            continue;
        };
        match key.trim().to_ascii_lowercase().as_str() {
            "name" if name.is_none() => name = Some(value.trim().trim_matches('"')),
            "name" | "name*" => return Some(None),
            _ => {}
        }
    }
    Some(name)
}

/// The `_method` member of a JSON body: a string, or each string of an array (Express's
/// `method-override` takes an array's first). A body that is not JSON is an override of
/// unknown method: a laxer parser upstream may still read one.
fn from_json<'a>(body: &'a [u8], by: Frameworks, out: &mut Vec<MethodOverride<'a>>) {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
        out.push(unseen(by));
        return;
    };
    let Some(object) = value.as_object() else {
        return;
    };
    for (key, value) in object {
        if !key.eq_ignore_ascii_case(METHOD_OVERRIDE_PARAMETER) {
            continue;
        }
        let methods = match value {
            serde_json::Value::Array(items) => items.iter().filter_map(|v| v.as_str()).collect(),
            other => other.as_str().into_iter().collect::<Vec<_>>(),
        };
        for method in methods {
            out.push(MethodOverride {
                method: Some(Cow::Owned(method.trim().to_owned())),
                by,
            });
        }
    }
}

#[cfg(test)]
mod tests;
