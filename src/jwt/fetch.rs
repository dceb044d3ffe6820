//! HTTP for keys: bounded GETs of a JWKS or OpenID discovery document, and the
//! `Cache-Control: max-age` that tells when to fetch again.

use std::time::Duration;

use reqwest::{StatusCode, Url, header};
use serde::Deserialize;

use super::keyset::KeySetError;

/// Why a fetch produced no usable key set. `label` is the metric label of each.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("request failed: {}", chain(.0))]
    Http(#[from] reqwest::Error),
    #[error("HTTP status {0}")]
    Status(StatusCode),
    #[error("document larger than {0} bytes")]
    TooLarge(usize),
    #[error("discovery document unusable: {0}")]
    Discovery(String),
    #[error(transparent)]
    KeySet(#[from] KeySetError),
}

impl FetchError {
    pub fn label(&self) -> &'static str {
        match self {
            FetchError::Http(e) if e.is_timeout() => "timeout",
            FetchError::Http(_) => "unreachable",
            FetchError::Status(_) => "http_status",
            FetchError::TooLarge(_) => "too_large",
            FetchError::Discovery(_) => "discovery",
            FetchError::KeySet(_) => "invalid_jwks",
        }
    }
}

/// A fetched document and how long its server says it stays fresh.
pub struct Fetched {
    pub body: Vec<u8>,
    pub max_age: Option<Duration>,
}

/// GETs `url`, refusing non-2xx answers and bodies over `limit` bytes (checked while
/// reading, so a huge or endless body costs at most that much memory).
pub async fn get_bounded(
    client: &reqwest::Client,
    url: &Url,
    limit: usize,
) -> Result<Fetched, FetchError> {
    let mut response = client
        .get(url.clone())
        .header(header::ACCEPT, "application/json, application/jwk-set+json")
        .send()
        .await?;
    if !response.status().is_success() {
        return Err(FetchError::Status(response.status()));
    }
    if response.content_length().unwrap_or(0) > limit as u64 {
        return Err(FetchError::TooLarge(limit));
    }
    let max_age = response
        .headers()
        .get(header::CACHE_CONTROL)
        .and_then(|v| v.to_str().ok())
        .and_then(max_age);
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > limit {
            return Err(FetchError::TooLarge(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Fetched { body, max_age })
}

/// Reads the `jwks_uri` from an OpenID Provider's discovery document, after checking that
/// the document speaks for `issuer` (OpenID Connect Discovery 1.0 §4.3).
pub async fn discover(
    client: &reqwest::Client,
    url: &Url,
    issuer: &str,
    limit: usize,
) -> Result<Url, FetchError> {
    #[derive(Deserialize)]
    struct Discovery {
        issuer: String,
        jwks_uri: String,
    }
    let fetched = get_bounded(client, url, limit).await?;
    let doc: Discovery =
        serde_json::from_slice(&fetched.body).map_err(|e| FetchError::Discovery(e.to_string()))?;
    if doc.issuer != issuer {
        return Err(FetchError::Discovery(format!(
            "it names issuer {:?}",
            doc.issuer
        )));
    }
    let jwks =
        Url::parse(&doc.jwks_uri).map_err(|e| FetchError::Discovery(format!("jwks_uri: {e}")))?;
    if !matches!(jwks.scheme(), "http" | "https") {
        return Err(FetchError::Discovery("jwks_uri is not http(s)".into()));
    }
    if url.scheme() == "https" && jwks.scheme() == "http" {
        return Err(FetchError::Discovery(
            "jwks_uri downgrades to plain HTTP".into(),
        ));
    }
    Ok(jwks)
}

/// An error and every cause below it, as one line: "error sending request …: client
/// error (Connect): tcp connect error: Connection refused (os error 111)".
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// `max-age=N` from a `Cache-Control` value; `no-cache`/`no-store` count as 0.
pub fn max_age(cache_control: &str) -> Option<Duration> {
    cache_control
        .split(',')
        .map(str::trim)
        .find_map(|directive| {
            let lower = directive.to_ascii_lowercase();
            if lower == "no-cache" || lower == "no-store" {
                return Some(Duration::ZERO);
            }
            let value = lower.strip_prefix("max-age=")?;
            value
                .trim_matches('"')
                .parse::<u64>()
                .ok()
                .map(Duration::from_secs)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_max_age_among_other_directives() {
        assert_eq!(
            max_age("public, max-age=3600"),
            Some(Duration::from_secs(3600))
        );
        assert_eq!(
            max_age("Max-Age=\"60\", must-revalidate"),
            Some(Duration::from_secs(60))
        );
        assert_eq!(max_age("no-store"), Some(Duration::ZERO));
        assert_eq!(max_age("public"), None);
        assert_eq!(max_age("max-age=soon"), None);
    }
}
