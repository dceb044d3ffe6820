//! The HTTP check front: the same decisions as the gRPC service, asked over plain HTTP by a
//! proxy, in the proxy's own dialect ([`HttpDialect`]):
//!
//! - `envoy` (Envoy's `http_service`, Istio's `envoyExtAuthzHttp`): the check request *is*
//!   the original request — method, path and `Host`; an allow answers 200 with the
//!   identity headers to set and the managed headers to remove listed in
//!   `x-envoy-auth-headers-to-remove`.
//! - `nginx` (`auth_request`): the subrequest is always a GET to a fixed URI, so the
//!   original method and URI come in `X-Original-Method` and `X-Original-URI` (and the
//!   host in `Host`, which the example configuration sets).
//! - `forwarded` (Caddy `forward_auth`, Traefik `ForwardAuth`): `X-Forwarded-Method`,
//!   `X-Forwarded-Uri` and `X-Forwarded-Host`.
//!
//! In the header dialects a request without its original-request headers (or with one of
//! them twice) is denied `invalid_request`: it is never judged as the subrequest itself.
//! The other way round, a check in the `envoy` dialect that carries another dialect's
//! headers (`X-Original-URI`, `X-Forwarded-Method`…) is a forward-auth proxy asking with
//! the listener left at its default: it is denied `invalid_request` and logged with the
//! fix, never judged as nginx's `GET` subrequest.
//!
//! Envoy's HTTP mode sends the request body (`with_request_body`) as the check's body, and
//! it is read (up to [`MAX_BODY_BYTES`]) for method overrides; forward-auth proxies send
//! none, so a POST's body is unknown there (see `extract`).
//! Those proxies copy named headers from an allow to the upstream request, so an allow
//! answers `authorization` when the credential may go upstream (absent or empty: remove
//! it) and, for `forwarded`, every managed header, empty when it has no value (Caddy 2.6
//! would otherwise write its placeholder text, and a client's copy would survive a proxy
//! that only overwrites). nginx relays only 401 and 403 from `auth_request`, so a 400 is
//! answered as 403 there. The decision is the gRPC service's own, through the same
//! [`AuthorizationService`] (limits, logging and metrics included).

use std::{future::Future, sync::Arc};

use axum::{
    Router,
    body::Body,
    extract::State,
    http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, header},
    response::Response,
};
use futures_util::Stream;
use tokio::io::{AsyncRead, AsyncWrite};
use tonic::Request;

use super::{
    connection::{Tracked, serve_router},
    grpc::AuthorizationService,
};
use crate::{
    config::{ConnectionSettings, HttpDialect},
    extract::{PARTIAL_BODY_HEADER, check_request},
    pb::{
        answering::authorization_server::Authorization,
        auth::{CheckRequest, CheckResponse, check_response::HttpResponse},
    },
    state::AppState,
};

/// Header through which Envoy's HTTP mode removes request headers before the upstream.
pub const HEADERS_TO_REMOVE: &str = "x-envoy-auth-headers-to-remove";
/// The most of a check's body read in the `envoy` dialect; Envoy's `with_request_body`
/// sends far less (`max_request_bytes`), and a longer body is judged as a partial one.
pub const MAX_BODY_BYTES: usize = 1 << 20;
/// Headers of the other dialects: a forward-auth proxy asking the `envoy` dialect.
const OTHER_DIALECTS: &[&str] = &[
    "x-original-uri",
    "x-original-method",
    "x-forwarded-uri",
    "x-forwarded-method",
];
/// What a forward-auth subrequest says of its own body, not of the original request's.
const SUBREQUEST_FRAMING: &[&str] = &["content-length", "transfer-encoding", PARTIAL_BODY_HEADER];

/// Serves HTTP checks in `dialect` on the connections of `incoming` (TCP, or TLS over
/// TCP) until `shutdown` completes.
pub async fn serve<IO>(
    state: AppState,
    incoming: impl Stream<Item = std::io::Result<IO>>,
    dialect: HttpDialect,
    settings: &ConnectionSettings,
    shutdown: impl Future<Output = ()>,
) where
    IO: AsyncRead + AsyncWrite + Tracked + Unpin + Send + 'static,
{
    let managed = state.engine().forwarding.managed.join(", ");
    tracing::info!(
        dialect = ?dialect,
        headers = %managed,
        "HTTP check listener: the proxy must copy each of these headers (and authorization) \
         to the upstream request from an allow, or a client's copy survives"
    );
    let front = Arc::new(Front {
        service: AuthorizationService::new(state.clone()).without_memo(),
        state,
        dialect,
        body_timeout: settings.header_timeout,
    });
    let app = Router::new().fallback(check).with_state(front);
    serve_router(incoming, app, settings, shutdown).await;
}

struct Front {
    service: AuthorizationService,
    state: AppState,
    dialect: HttpDialect,
    /// How long a check's body may take to arrive.
    body_timeout: std::time::Duration,
}

/// The request the proxy asks about.
struct Original<'a> {
    method: &'a str,
    host: &'a str,
    target: &'a str,
}

async fn check(
    State(front): State<Arc<Front>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let envoy = front.dialect == HttpDialect::Envoy;
    if envoy && let Some(other) = OTHER_DIALECTS.iter().find(|h| headers.contains_key(**h)) {
        tracing::warn!(
            header = other,
            "HTTP check in the envoy dialect carries a forward-auth proxy's header: denied \
             invalid_request. If nginx, Caddy or Traefik asks this listener, set \
             server.http_dialect (or --http-dialect) to nginx or forwarded"
        );
        return http_response(denied_invalid(&front).await, front.dialect, &[], None);
    }
    // Repeated headers are joined with "," as Envoy's gRPC mode does, so that two
    // `authorization` headers stay malformed here too.
    let mut joined: Vec<(String, String)> = Vec::with_capacity(headers.keys_len());
    for name in headers.keys() {
        if !envoy && SUBREQUEST_FRAMING.contains(&name.as_str()) {
            continue;
        }
        let values: Vec<&str> = headers
            .get_all(name)
            .iter()
            .map(|v| v.to_str().unwrap_or("\u{fffd}"))
            .collect();
        joined.push((name.as_str().to_owned(), values.join(",")));
    }
    let pairs: Vec<(&str, &str)> = joined
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let mut request = match original(front.dialect, &method, &uri, &headers) {
        Some(o) => check_request(o.method, o.host, o.target, &pairs),
        // No original request to judge: the pipeline denies it `invalid_request`.
        None => CheckRequest::default(),
    };
    if let Some(http) = request
        .attributes
        .as_mut()
        .and_then(|a| a.request.as_mut())
        .and_then(|r| r.http.as_mut())
    {
        if envoy {
            let read = tokio::time::timeout(
                front.body_timeout,
                axum::body::to_bytes(body, MAX_BODY_BYTES),
            );
            match read.await {
                Ok(Ok(bytes)) => http.raw_body = bytes.to_vec(),
                // Longer than Envoy sends, or too slow: judged as a body seen in part.
                _ => {
                    http.headers
                        .insert(PARTIAL_BODY_HEADER.into(), "true".into());
                }
            }
        } else {
            // The proxy sends no body: what the original request's carries is unknown.
            http.size = -1;
        }
    }
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    match front
        .service
        .check(Request::new(request))
        .await
        .map(|r| r.into_inner().into_response())
    {
        Ok(Ok(response)) => http_response(
            response,
            front.dialect,
            &front.state.engine().forwarding.managed,
            authorization,
        ),
        // AuthorizationService always answers a CheckResponse; deny if that ever changes.
        _ => status_only(StatusCode::FORBIDDEN),
    }
}

/// The answer to a check that cannot be judged, through the service (counted and logged).
async fn denied_invalid(front: &Front) -> CheckResponse {
    match front
        .service
        .check(Request::new(CheckRequest::default()))
        .await
        .map(|r| r.into_inner().into_response())
    {
        Ok(Ok(response)) => response,
        _ => CheckResponse::default(),
    }
}

/// The original request in `dialect`, or `None` when the headers carrying it are missing
/// or repeated.
fn original<'a>(
    dialect: HttpDialect,
    method: &'a Method,
    uri: &'a Uri,
    headers: &'a HeaderMap,
) -> Option<Original<'a>> {
    let one = |name: &str| {
        let mut values = headers.get_all(name).iter();
        let value = values.next()?.to_str().ok()?;
        values.next().is_none().then_some(value)
    };
    match dialect {
        HttpDialect::Envoy => Some(Original {
            method: method.as_str(),
            host: one(header::HOST.as_str())
                .or_else(|| uri.authority().map(|a| a.as_str()))
                .unwrap_or(""),
            target: uri.path_and_query().map_or("/", |p| p.as_str()),
        }),
        HttpDialect::Nginx => Some(Original {
            method: one("x-original-method")?,
            host: one(header::HOST.as_str())?,
            target: one("x-original-uri")?,
        }),
        HttpDialect::Forwarded => Some(Original {
            method: one("x-forwarded-method")?,
            host: one("x-forwarded-host")?,
            target: one("x-forwarded-uri")?,
        }),
    }
}

/// The CheckResponse as the HTTP answer the proxy of `dialect` expects.
fn http_response(
    response: CheckResponse,
    dialect: HttpDialect,
    managed: &[String],
    authorization: Option<&str>,
) -> Response {
    let mut headers: Vec<(String, String)> = Vec::new();
    let (status, body) = match response.http_response {
        Some(HttpResponse::OkResponse(ok)) => {
            let set: Vec<(String, String)> = ok
                .headers
                .into_iter()
                .filter_map(|option| option.header)
                .map(|h| (h.key, h.value))
                .collect();
            let strip = ok.headers_to_remove.iter().any(|h| h == "authorization");
            match dialect {
                HttpDialect::Envoy if !ok.headers_to_remove.is_empty() => {
                    headers.push((HEADERS_TO_REMOVE.into(), ok.headers_to_remove.join(",")));
                }
                HttpDialect::Envoy => {}
                HttpDialect::Nginx | HttpDialect::Forwarded => {
                    if dialect == HttpDialect::Forwarded {
                        let unset = managed
                            .iter()
                            .filter(|name| !set.iter().any(|(k, _)| k == *name));
                        headers.extend(unset.map(|name| (name.clone(), String::new())));
                    }
                    match (strip, authorization) {
                        (false, Some(credential)) => {
                            headers.push(("authorization".into(), credential.to_owned()));
                        }
                        _ if dialect == HttpDialect::Forwarded => {
                            headers.push(("authorization".into(), String::new()));
                        }
                        _ => {}
                    }
                }
            }
            headers.extend(set);
            (200, String::new())
        }
        Some(HttpResponse::DeniedResponse(denied)) => {
            let status = denied.status.map_or(403, |s| s.code);
            // nginx's auth_request relays 401 and 403 only (anything else becomes 500).
            let status = match (dialect, status) {
                (HttpDialect::Nginx, 400) => 403,
                (_, status) => status,
            };
            headers.extend(
                denied
                    .headers
                    .into_iter()
                    .filter_map(|option| option.header)
                    .map(|h| (h.key, h.value)),
            );
            (status, denied.body)
        }
        None => return status_only(StatusCode::FORBIDDEN),
    };
    let status = u16::try_from(status)
        .ok()
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::FORBIDDEN);
    let mut builder = Response::builder().status(status);
    for (name, value) in headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            builder = builder.header(name, value);
        }
    }
    builder
        .body(Body::from(body))
        .unwrap_or_else(|_| status_only(StatusCode::FORBIDDEN))
}

fn status_only(status: StatusCode) -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = status;
    response
}

#[cfg(test)]
mod tests;
