//! The URLs an issuer's keys and discovery document are fetched from: https, or plain
//! HTTP only on loopback or where the issuer says `insecure_http: true`.

use super::problems::Problems;

/// An http(s) URL for keys or discovery. Plain HTTP only on loopback, or with the
/// issuer's explicit `insecure_http: true`: anyone on the path could otherwise serve
/// their own keys and forge tokens.
pub(super) fn http_url(
    insecure_http: bool,
    field: &str,
    text: &str,
    problems: &mut Problems,
) -> Option<reqwest::Url> {
    match reqwest::Url::parse(text) {
        Ok(url) if url.scheme() == "https" && url.host().is_some() => Some(url),
        Ok(url) if url.scheme() == "http" && (insecure_http || is_loopback(&url)) => Some(url),
        Ok(url) if url.scheme() == "http" && url.host().is_some() => {
            problems.add(
                field,
                format!(
                    "{text:?} uses plain HTTP: anyone on the path could serve their own keys \
                     and forge tokens; use https, or set `insecure_http: true` on the issuer"
                ),
            );
            None
        }
        _ => {
            problems.add(field, format!("{text:?} is not an http(s) URL"));
            None
        }
    }
}

/// `localhost`, 127.0.0.0/8 or `::1`.
fn is_loopback(url: &reqwest::Url) -> bool {
    let host = url.host_str().unwrap_or("");
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || bare
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}
