//! The gRPC front: the `envoy.service.auth.v3.Authorization` implementation, which runs
//! the Check pipeline ([`crate::check`]) within a bounded number of slots and logs one
//! decision event, plus the standard health service (SERVING once every issuer's keys are
//! loaded) and server reflection (v1 and v1alpha, for grpcurl). Every outcome, including
//! a malformed request, is a `CheckResponse`: a gRPC error would let Envoy apply
//! `failure_mode_allow`.

use std::{future::Future, panic::AssertUnwindSafe, sync::Arc, time::Duration};

use futures_util::{FutureExt, TryStreamExt};
use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::TcpListener,
    sync::Semaphore,
};
use tokio_stream::Stream;
use tonic::{
    Request, Response, Status,
    transport::server::{Connected, TcpIncoming},
};
use tonic_health::ServingStatus;
use tracing::Instrument;

use crate::{
    answer::Answer,
    check::{Decision, check},
    coalesce::Coalesced,
    deny::{Deny, DenyReason, Fault},
    pb::{
        self,
        answering::authorization_server::{Authorization, AuthorizationServer},
        auth::CheckRequest,
    },
    respond,
    state::AppState,
    telemetry,
};

/// Fully qualified name of the ext_authz service, as health checks name it.
pub const AUTHORIZATION_SERVICE: &str = "envoy.service.auth.v3.Authorization";
/// Health-service name that is SERVING while the process answers, whatever the
/// identity providers do: for liveness probes (the standard `""` is readiness).
pub const LIVENESS_SERVICE: &str = "portcullis.liveness";
/// How often readiness is re-checked until every issuer has keys.
const READINESS_POLL: Duration = Duration::from_millis(100);

/// The tonic service; all logic is in [`check`]. It bounds how many Checks run at once:
/// past `limits.max_concurrent_checks`, a Check waits up to `limits.overload_wait` for a
/// slot, then is denied `overloaded` (503) — back-pressure with a bounded wait, never an
/// unbounded queue. A panic while deciding (a bug) is turned into an `internal` deny:
/// Envoy always gets a CheckResponse, never a gRPC error it might fail open on.
pub struct AuthorizationService {
    state: AppState,
    slots: Arc<Semaphore>,
    overload_wait: Duration,
    /// Reuse encoded allows ([`crate::memo`]); off where answers are not sent as protobuf.
    memo: bool,
}

impl AuthorizationService {
    pub fn new(state: AppState) -> Self {
        let limits = state.engine().limits.clone();
        AuthorizationService {
            state,
            slots: Arc::new(Semaphore::new(limits.max_concurrent_checks)),
            overload_wait: limits.overload_wait,
            memo: true,
        }
    }

    /// For a front that reads the answers as messages (the HTTP check API): nothing is
    /// kept encoded, as it would only be decoded again.
    pub fn without_memo(self) -> Self {
        AuthorizationService {
            memo: false,
            ..self
        }
    }

    /// Decides one request within a Check slot; every outcome is a CheckResponse.
    async fn decide_guarded(&self, request: &CheckRequest) -> (Answer, Decision) {
        let slot = match self.slots.try_acquire() {
            Ok(slot) => Ok(slot),
            Err(_) => tokio::time::timeout(self.overload_wait, self.slots.acquire())
                .await
                .map_err(|_| DenyReason::Overloaded)
                .and_then(|acquired| acquired.map_err(|_| DenyReason::Internal)),
        };
        let outcome = match slot {
            Ok(_slot) => {
                AssertUnwindSafe(check(&self.state, request, self.memo))
                    .catch_unwind()
                    .await
            }
            Err(reason) => return failed(&self.state, reason),
        };
        outcome.unwrap_or_else(|_| {
            tracing::error!("Check panicked (a bug); denied");
            failed(&self.state, DenyReason::Internal)
        })
    }
}

/// The deny for a Check that could not be decided.
fn failed(state: &AppState, reason: DenyReason) -> (Answer, Decision) {
    let response = respond::deny(&Deny::from(reason), &state.engine().realm, None).into();
    (response, Decision::failed(reason))
}

#[tonic::async_trait]
impl Authorization for AuthorizationService {
    async fn check(&self, request: Request<CheckRequest>) -> Result<Response<Answer>, Status> {
        let started = std::time::Instant::now();
        let span = if telemetry::tracing_enabled() {
            check_span(&request)
        } else {
            tracing::Span::none()
        };
        let request = request.get_ref();
        let (response, decision) = self.decide_guarded(request).instrument(span.clone()).await;
        let request_id = request
            .attributes
            .as_ref()
            .and_then(|a| a.request.as_ref())
            .and_then(|r| r.http.as_ref())
            .map_or("", |h| h.id.as_str());
        record(&self.state, &span, &decision, request_id, started.elapsed());
        Ok(Response::new(response))
    }
}

/// The one decision event per Check (log line, metrics, span fields).
fn record(
    state: &AppState,
    span: &tracing::Span,
    decision: &Decision,
    request_id: &str,
    elapsed: std::time::Duration,
) {
    let route = decision.route.as_deref().unwrap_or("");
    let issuer = decision.issuer.as_deref().unwrap_or("");
    let subject_hash = decision.subject_hash.as_deref().unwrap_or("");
    let latency_us = elapsed.as_micros() as u64;
    let reason = decision
        .result
        .as_ref()
        .err()
        .map_or("none", |d| d.reason.code());
    let allowed = decision.result.is_ok();
    state
        .metrics()
        .check(allowed, reason, elapsed.as_secs_f64());
    span.record("route", route);
    span.record("decision", if allowed { "allow" } else { "deny" });
    span.record("reason", reason);
    match (&decision.result, decision.audit) {
        (Ok(()), Some(would)) => {
            state.metrics().audit_would_deny(route, would.code());
            tracing::warn!(
                decision = "allow",
                audit_would_deny = would.code(),
                route,
                issuer,
                subject_hash,
                request_id,
                latency_us,
                "Check allowed by an audit-mode route that would deny it"
            );
        }
        (Ok(()), None) => tracing::info!(
            decision = "allow",
            route,
            issuer,
            subject_hash,
            request_id,
            latency_us,
            "Check allowed"
        ),
        // A client's bad token is routine (info); keys we cannot get are ours to fix (warn).
        (Err(deny), _) if deny.reason.fault() == Fault::Upstream => tracing::warn!(
            decision = "deny",
            reason,
            status = deny.reason.http_status(),
            route,
            issuer,
            request_id,
            latency_us,
            "Check denied: identity provider keys unavailable"
        ),
        (Err(deny), _) => tracing::info!(
            decision = "deny",
            reason,
            status = deny.reason.http_status(),
            route,
            issuer,
            subject_hash,
            request_id,
            latency_us,
            "Check denied"
        ),
    }
}

/// The span of one Check, continuing the caller's trace: Envoy's `traceparent` in the
/// gRPC metadata, else the one in the HTTP request's headers.
fn check_span(request: &Request<CheckRequest>) -> tracing::Span {
    let span = tracing::info_span!(
        "check",
        otel.kind = "server",
        route = tracing::field::Empty,
        decision = tracing::field::Empty,
        reason = tracing::field::Empty,
    );
    let headers = request
        .get_ref()
        .attributes
        .as_ref()
        .and_then(|a| a.request.as_ref())
        .and_then(|r| r.http.as_ref())
        .map(|h| &h.headers);
    let metadata = telemetry::MetadataCarrier(request.metadata());
    match headers {
        Some(headers) => {
            telemetry::continue_trace(&span, &[&metadata, &telemetry::HeaderCarrier(headers)])
        }
        None => telemetry::continue_trace(&span, &[&metadata]),
    }
    span
}

/// Serves Authorization, health and reflection on `listener` (plaintext) until
/// `shutdown` completes.
pub async fn serve(
    state: AppState,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error> {
    // Without TCP_NODELAY, a response split over several segments waits for the peer's
    // delayed ACK (Nagle): about 40 ms added to Checks with large headers.
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    serve_incoming(state, incoming, shutdown).await
}

/// Serves Authorization, health and reflection on the connections of `incoming` (plain
/// TCP, or TLS streams from [`crate::tls::TlsState::incoming`]) until `shutdown` completes.
pub async fn serve_incoming<I, IO, IE>(
    state: AppState,
    incoming: I,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error>
where
    I: Stream<Item = Result<IO, IE>> + Send + 'static,
    IO: AsyncRead + AsyncWrite + Connected + Unpin + Send + 'static,
    IE: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_service_status(LIVENESS_SERVICE, ServingStatus::Serving)
        .await;
    health
        .set_service_status("", ServingStatus::NotServing)
        .await;
    health
        .set_service_status(AUTHORIZATION_SERVICE, ServingStatus::NotServing)
        .await;
    let readiness_state = state.clone();
    let readiness = tokio::spawn(async move {
        while !readiness_state.engine().verifier.all_keys_loaded() {
            tokio::time::sleep(READINESS_POLL).await;
        }
        health.set_service_status("", ServingStatus::Serving).await;
        health
            .set_service_status(AUTHORIZATION_SERVICE, ServingStatus::Serving)
            .await;
        tracing::info!("Every issuer has signing keys: reporting SERVING");
    });

    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection_v1 = reflection()
        .build_v1()
        .map_err(|e| tracing::error!(error = %e, "Reflection v1 unavailable"))
        .ok();
    let reflection_v1alpha = reflection()
        .build_v1alpha()
        .map_err(|e| tracing::error!(error = %e, "Reflection v1alpha unavailable"))
        .ok();

    let streams = u32::try_from(state.engine().limits.max_concurrent_checks).unwrap_or(u32::MAX);
    let result = tonic::transport::Server::builder()
        .max_concurrent_streams(Some(streams))
        .add_service(AuthorizationServer::new(AuthorizationService::new(state)))
        .add_service(health_service)
        .add_optional_service(reflection_v1)
        .add_optional_service(reflection_v1alpha)
        .serve_with_incoming_shutdown(incoming.map_ok(Coalesced), shutdown)
        .await;
    readiness.abort();
    result
}
