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
    sync::Semaphore,
};
use tokio_stream::Stream;
use tonic::{Request, Response, Status};
use tonic_health::{
    ServingStatus,
    pb::health_server::HealthServer,
    server::{HealthReporter, HealthService},
};

use super::{budget::BudgetLayer, coalesce::Coalesced, connection::Tracked, record};
use crate::{
    check::{self, Authentication, Verdict},
    config::ConnectionSettings,
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
/// Largest health or reflection request decoded: theirs are a few bytes.
const SMALL_MESSAGE_BYTES: usize = 64 * 1024;
/// HTTP/2 flow-control windows: what a client can send before portcullis reads it, per
/// stream and per connection. A Check's body waiting for budget waits there.
const STREAM_WINDOW: u32 = 256 * 1024;
const CONNECTION_WINDOW: u32 = 512 * 1024;
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
    /// Keep costly allows ([`crate::jwt::memo`]) and denies encoded for reuse; off where
    /// answers are not sent as protobuf.
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
    /// kept encoded for it, as it would only be decoded again.
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

/// The standard health service, one for every gRPC listener: `portcullis.liveness` is
/// SERVING while the process answers; `""` and the Authorization service become SERVING
/// once every issuer has keys, and NOT_SERVING again when the server starts draining.
#[derive(Clone)]
pub struct Health {
    reporter: HealthReporter,
    service: HealthServer<HealthService>,
}

impl Health {
    pub async fn new() -> Health {
        let reporter = HealthReporter::new();
        let service = HealthServer::new(HealthService::from_health_reporter(reporter.clone()));
        reporter
            .set_service_status(LIVENESS_SERVICE, ServingStatus::Serving)
            .await;
        for name in ["", AUTHORIZATION_SERVICE] {
            reporter
                .set_service_status(name, ServingStatus::NotServing)
                .await;
        }
        Health { reporter, service }
    }

    /// Reports SERVING once every issuer of `state` has keys (unless draining by then).
    pub async fn watch_readiness(self, state: AppState) {
        while !state.engine().verifier.all_keys_loaded() {
            tokio::time::sleep(READINESS_POLL).await;
        }
        if state.is_draining() {
            return;
        }
        self.set(ServingStatus::Serving).await;
        tracing::info!("Every issuer has signing keys: reporting SERVING");
    }

    /// Reports NOT_SERVING, so that clients that health-check stop sending.
    pub async fn draining(&self) {
        self.set(ServingStatus::NotServing).await;
    }

    async fn set(&self, status: ServingStatus) {
        for name in ["", AUTHORIZATION_SERVICE] {
            self.reporter.set_service_status(name, status).await;
        }
    }
}

/// Serves Authorization, health and reflection on the connections of `incoming` (TCP, a
/// Unix socket, or TLS over TCP: see [`super::connection`]) until `shutdown` completes,
/// then lets the Checks in flight finish (the caller bounds how long). Every request goes
/// through `budget` ([`super::budget`]).
pub async fn serve<I, IO>(
    state: AppState,
    incoming: I,
    health: &Health,
    settings: &ConnectionSettings,
    budget: BudgetLayer,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error>
where
    I: Stream<Item = std::io::Result<IO>> + Send + 'static,
    IO: AsyncRead + AsyncWrite + Tracked + Unpin + Send + 'static,
{
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection_v1 = reflection()
        .build_v1()
        .map_err(|e| tracing::error!(error = %e, "Reflection v1 unavailable"))
        .ok()
        .map(|s| s.max_decoding_message_size(SMALL_MESSAGE_BYTES));
    let reflection_v1alpha = reflection()
        .build_v1alpha()
        .map_err(|e| tracing::error!(error = %e, "Reflection v1alpha unavailable"))
        .ok()
        .map(|s| s.max_decoding_message_size(SMALL_MESSAGE_BYTES));

    let limits = state.engine().limits.clone();
    // Every CheckRequest Envoy can send is decoded, so that it gets a CheckResponse.
    let authorization = AuthorizationServer::new(AuthorizationService::new(state))
        .max_decoding_message_size(limits.max_check_request_bytes);
    tonic::transport::Server::builder()
        .max_concurrent_streams(Some(settings.max_streams_per_connection))
        .initial_stream_window_size(Some(STREAM_WINDOW))
        .initial_connection_window_size(Some(CONNECTION_WINDOW))
        .http2_keepalive_interval(settings.http2_keepalive_interval)
        .http2_keepalive_timeout(Some(settings.http2_keepalive_timeout))
        .layer(budget)
        .add_service(authorization)
        .add_service(
            health
                .service
                .clone()
                .max_decoding_message_size(SMALL_MESSAGE_BYTES),
        )
        .add_optional_service(reflection_v1)
        .add_optional_service(reflection_v1alpha)
        .serve_with_incoming_shutdown(incoming.map_ok(Coalesced), shutdown)
        .await
}
