//! What forwarding and rewrite headers tell an upstream: the hosts of `X-Forwarded-Host`,
//! `Forwarded: host=` (RFC 7239), `X-Original-Host` and `X-Host`, and the paths of
//! `X-Original-URL` and `X-Rewrite-URL`. Frameworks behind a proxy take the host or path
//! from them ([`crate::upstream`]), so they are judged as readings of the request; each
//! value must be a plain host or an origin-form path, or the request is refused.

use std::borrow::Cow;

use super::canonical_host;
use crate::{deny::DenyReason, path::split_query};

/// Headers whose value frameworks take for the request's host.
pub const FORWARDED_HOST_HEADERS: &[&str] = &["x-forwarded-host", "x-original-host", "x-host"];
/// The RFC 7239 header, whose `host=` parameters frameworks take for the host.
pub const FORWARDED: &str = "forwarded";
/// Headers whose value frameworks take for the request's path.
pub const REWRITE_HEADERS: &[&str] = &["x-original-url", "x-rewrite-url"];

/// Each comma-separated host of a forwarded-host header (Express takes the first, Rack
/// the last: every one is a reading), canonical.
pub fn hosts<'a>(value: &'a str, out: &mut Vec<Cow<'a, str>>) -> Result<(), DenyReason> {
    for host in value.split(',').map(str::trim).filter(|h| !h.is_empty()) {
        push(canonical_host(host)?, out);
    }
    Ok(())
}

/// Each `host=` parameter of a `Forwarded` header, canonical (quoted or not).
pub fn forwarded_hosts<'a>(value: &'a str, out: &mut Vec<Cow<'a, str>>) -> Result<(), DenyReason> {
    for pair in value.split([',', ';']) {
        let Some((key, host)) = pair.split_once('=') else {
            continue;
        };
        if !key.trim().eq_ignore_ascii_case("host") {
            continue;
        }
        let host = host.trim();
        let host = match host.strip_prefix('"') {
            Some(quoted) => quoted.strip_suffix('"').ok_or(DenyReason::InvalidRequest)?,
            None => host,
        };
        push(canonical_host(host)?, out);
    }
    Ok(())
}

fn push<'a>(host: Cow<'a, str>, out: &mut Vec<Cow<'a, str>>) {
    if !host.is_empty() && !out.contains(&host) {
        out.push(host);
    }
}

/// The path of a rewrite header's request target (origin form, or the path of an
/// absolute URL), without its query.
pub fn rewrite(value: &str) -> Result<&str, DenyReason> {
    let value = value.trim();
    let target = if value.starts_with('/') {
        value
    } else {
        let (_, rest) = value.split_once("://").ok_or(DenyReason::InvalidRequest)?;
        rest.find('/').map_or("/", |at| &rest[at..])
    };
    Ok(split_query(target).0)
}
