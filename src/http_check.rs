//! Envoy's HTTP ext_authz mode (`http_service`, also how nginx `auth_request`, Traefik
//! ForwardAuth and Istio's `envoyExtAuthzHttp` ask): the proxy sends the original
//! request's method, path and allowed headers to this listener; portcullis answers 200 to
//! allow — with the identity headers to set upstream, and the managed headers to remove
//! listed in `x-envoy-auth-headers-to-remove` — or the deny status with its
//! `WWW-Authenticate` and problem+json body. The decision is the gRPC service's own,
//! through the same [`AuthorizationService`] (limits, logging and metrics included).

use std::{future::Future, sync::Arc};

use axum::{
    Router,
    body::Body,
    extract::State,
    http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, header},
    response::Response,
};
use tokio::net::TcpListener;
use tonic::Request;

use crate::{
    extract::check_request,
    pb::{
        answering::authorization_server::Authorization,
        auth::{CheckResponse, check_response::HttpResponse},
    },
    server::AuthorizationService,
    state::AppState,
};

/// Header through which Envoy's HTTP mode removes request headers before the upstream.
pub const HEADERS_TO_REMOVE: &str = "x-envoy-auth-headers-to-remove";

/// Serves the HTTP check API on `listener` until `shutdown` completes.
pub async fn serve(
    state: AppState,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let managed = state.engine().forwarding.managed.join(", ");
    tracing::info!(
        headers = %managed,
        "HTTP check mode: the proxy must copy each of these headers to the upstream request \
         when the answer sets it (Envoy: allowed_upstream_headers), or a client's copy survives"
    );
    let service = Arc::new(AuthorizationService::new(state).without_memo());
    let app = Router::new().fallback(check).with_state(service);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

async fn check(
    State(service): State<Arc<AuthorizationService>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| uri.authority().map(|a| a.as_str()))
        .unwrap_or("");
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    // Repeated headers are joined with "," as Envoy's gRPC mode does, so that two
    // `authorization` headers stay malformed here too.
    let mut joined: Vec<(String, String)> = Vec::with_capacity(headers.keys_len());
    for name in headers.keys() {
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
    let request = check_request(method.as_str(), host, path, &pairs);
    match service
        .check(Request::new(request))
        .await
        .map(|r| r.into_inner().into_response())
    {
        Ok(Ok(response)) => http_response(response),
        // AuthorizationService always answers a CheckResponse; deny if that ever changes.
        _ => status_only(StatusCode::FORBIDDEN),
    }
}

/// The CheckResponse as the HTTP answer Envoy's HTTP mode expects.
fn http_response(response: CheckResponse) -> Response {
    let (status, headers, body, remove) = match response.http_response {
        Some(HttpResponse::OkResponse(ok)) => {
            (200, ok.headers, String::new(), ok.headers_to_remove)
        }
        Some(HttpResponse::DeniedResponse(denied)) => {
            let status = denied.status.map_or(403, |s| s.code);
            (status, denied.headers, denied.body, Vec::new())
        }
        None => return status_only(StatusCode::FORBIDDEN),
    };
    let status = u16::try_from(status)
        .ok()
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::FORBIDDEN);
    let mut builder = Response::builder().status(status);
    for option in headers {
        let Some(h) = option.header else { continue };
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(h.key.as_bytes()),
            HeaderValue::from_str(&h.value),
        ) {
            builder = builder.header(name, value);
        }
    }
    if !remove.is_empty()
        && let Ok(value) = HeaderValue::from_str(&remove.join(","))
    {
        builder = builder.header(HEADERS_TO_REMOVE, value);
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
