//! The gRPC front: the `envoy.service.auth.v3.Authorization` implementation, which asks
//! the pipeline ([`crate::check`]) within a bounded number of slots, answers from its
//! verdict ([`crate::respond`]) and records one decision event ([`super::record`]), plus
//! the standard health service (SERVING once every issuer's keys are loaded) and server
//! reflection (v1 and v1alpha, for grpcurl). Every outcome, including a malformed
//! request, is a `CheckResponse`: a gRPC error would let Envoy apply
//! `failure_mode_allow`.

use std::{
    future::Future,
    panic::AssertUnwindSafe,
    sync::Arc,
    time::{Duration, Instant},
};

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

use super::{coalesce::Coalesced, record};
use crate::{
    check::{self, Authentication, Verdict},
    deny::DenyReason,
    pb::{
        self, Answer,
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

/// The tonic service; the decision is [`check::decide`]'s. It bounds how many Checks run
/// at once: past `limits.max_concurrent_checks`, a Check waits up to
/// `limits.overload_wait` for a slot, then is denied `overloaded` (503) — back-pressure
/// with a bounded wait, never an unbounded queue. A panic while deciding (a bug) is turned
/// into an `internal` deny: Envoy always gets a CheckResponse, never a gRPC error it might
/// fail open on.
pub struct AuthorizationService {
    state: AppState,
    slots: Arc<Semaphore>,
    overload_wait: Duration,
    /// Reuse encoded allows ([`crate::jwt::memo`]); off where answers are not sent as
    /// protobuf.
    memo: bool,
}

// === impl AuthorizationService ===

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

    /// Decides and answers one request within a Check slot, and records the decision;
    /// every outcome is a CheckResponse.
    async fn answer(
        &self,
        request: &CheckRequest,
        parent: Option<opentelemetry::Context>,
    ) -> Answer {
        let started = Instant::now();
        let slot = match self.slots.try_acquire() {
            Ok(slot) => Ok(slot),
            Err(_) => tokio::time::timeout(self.overload_wait, self.slots.acquire())
                .await
                .map_err(|_| DenyReason::Overloaded)
                .and_then(|acquired| acquired.map_err(|_| DenyReason::Internal)),
        };
        let _slot = match slot {
            Ok(slot) => slot,
            Err(reason) => return self.failed(reason, started),
        };
        let engine = self.state.engine();
        let decided = async {
            let verdict = check::decide(&engine, request, Authentication::Bearer, parent).await;
            let answer = respond::answer(&engine, &verdict, self.memo);
            record::record(self.state.metrics(), &verdict, started.elapsed());
            answer
        };
        AssertUnwindSafe(decided)
            .catch_unwind()
            .await
            .unwrap_or_else(|_| {
                tracing::error!("Check panicked (a bug); denied");
                self.failed(DenyReason::Internal, started)
            })
    }

    /// The deny for a Check that could not be decided, recorded like any other.
    fn failed(&self, reason: DenyReason, started: Instant) -> Answer {
        let engine = self.state.engine();
        let verdict = Verdict::failed(reason);
        let answer = respond::answer(&engine, &verdict, false);
        record::record(self.state.metrics(), &verdict, started.elapsed());
        answer
    }
}

#[tonic::async_trait]
impl Authorization for AuthorizationService {
    async fn check(&self, request: Request<CheckRequest>) -> Result<Response<Answer>, Status> {
        let parent = telemetry::transport_parent(request.metadata());
        Ok(Response::new(self.answer(request.get_ref(), parent).await))
    }
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
