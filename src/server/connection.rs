//! What a listener allows a client connection ([`ConnectionSettings`]), for every front.
//!
//! - **A cap, and a share of it for connections that have not asked anything yet.**
//!   Connections are accepted up to `max_per_listener` (past it, accepted and closed at
//!   once, so that clients fail fast instead of waiting in the backlog). At most half of
//!   them may be *pending* — open, but without a first request: when the pending share is
//!   full, the oldest pending connection is closed to make room for the new one. A client
//!   that opens connections and says nothing can therefore never hold the slots that
//!   working clients (Envoy, a probe) need: those leave the pending share with their first
//!   request within milliseconds.
//! - **Deadlines that count requests, not bytes.** A connection must send its first
//!   complete request (HTTP/1 head, HTTP/2 stream) within `header_timeout` — the HTTP/2
//!   preface alone is not one — and is closed after `idle_timeout` without a request in
//!   flight or begun: PING frames and other chatter do not keep it open.
//! - **Out of descriptors**: an accept error that says the process is out of descriptors
//!   or memory (`EMFILE`, `ENFILE`, `ENOBUFS`, `ENOMEM`) backs off instead of spinning.
//!
//! Each accepted connection is [`Guarded`]: it holds its slots and the deadlines, and
//! shares a [`ConnectionState`] with the request layers of its front ([`Tracked`]), which
//! report its requests ([`ConnectionState::request_started`]) and draw its request-body
//! budget (`super::budget`).

use std::{
    collections::VecDeque,
    future::Future,
    io,
    sync::{
        Arc, Mutex, Weak,
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
    },
    time::Duration,
};

use futures_util::{Stream, task::AtomicWaker};
use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::{TcpListener, TcpStream, UnixListener, UnixStream},
    sync::{OwnedSemaphorePermit, Semaphore},
    time::Instant,
};

use crate::{config::ConnectionSettings, metrics::Metrics};

mod guarded;
pub use guarded::Guarded;

/// Back-off after an accept error that says resources ran out, doubled up to the maximum.
const FIRST_BACKOFF: Duration = Duration::from_millis(10);
const MAX_BACKOFF: Duration = Duration::from_secs(1);
/// How long a new connection waits for the pending slot of the connection it evicted.
const EVICTION_WAIT: Duration = Duration::from_millis(100);

/// A listener portcullis accepts connections on.
pub trait Accept: Send + 'static {
    type Io: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    fn accept(&mut self) -> impl Future<Output = io::Result<Self::Io>> + Send;
}

impl Accept for TcpListener {
    type Io = TcpStream;

    async fn accept(&mut self) -> io::Result<TcpStream> {
        let (stream, _) = TcpListener::accept(self).await?;
        // Without TCP_NODELAY, a response split over several segments waits for the
        // peer's delayed ACK (Nagle): about 40 ms added to Checks with large headers.
        let _ = stream.set_nodelay(true);
        Ok(stream)
    }
}

impl Accept for UnixListener {
    type Io = UnixStream;

    async fn accept(&mut self) -> io::Result<UnixStream> {
        Ok(UnixListener::accept(self).await?.0)
    }
}

/// The connections of `listener` (named `label` in logs and metrics), each guarded by
/// `settings`, at most `cap` at once; a stream that never ends. `body_budget` is what each
/// connection's request bodies may hold at once (bytes).
pub fn incoming<L: Accept>(
    listener: L,
    settings: &ConnectionSettings,
    cap: usize,
    body_budget: usize,
    metrics: Arc<Metrics>,
    label: &'static str,
) -> impl Stream<Item = io::Result<Guarded<L::Io>>> + Send + 'static {
    let cap = cap.max(2);
    let accepting = Accepting {
        listener,
        slots: Arc::new(Semaphore::new(cap)),
        pending: Arc::new(Semaphore::new(cap / 2)),
        waiting: VecDeque::new(),
        header_timeout: settings.header_timeout,
        idle_timeout: settings.idle_timeout,
        body_budget,
        metrics,
        label,
    };
    futures_util::stream::unfold(accepting, |mut accepting| async move {
        let connection = accepting.next().await;
        Some((Ok(connection), accepting))
    })
}

struct Accepting<L> {
    listener: L,
    slots: Arc<Semaphore>,
    /// Slots of connections that have not sent a first request yet.
    pending: Arc<Semaphore>,
    /// Those connections, oldest first (entries of connections gone, or no longer
    /// pending, are skipped when met).
    waiting: VecDeque<Weak<ConnectionState>>,
    header_timeout: Duration,
    idle_timeout: Duration,
    body_budget: usize,
    metrics: Arc<Metrics>,
    label: &'static str,
}

impl<L: Accept> Accepting<L> {
    /// The next connection within the cap.
    async fn next(&mut self) -> Guarded<L::Io> {
        let mut backoff = FIRST_BACKOFF;
        loop {
            match self.listener.accept().await {
                Ok(io) => {
                    let Ok(slot) = self.slots.clone().try_acquire_owned() else {
                        self.refuse("over_capacity");
                        continue;
                    };
                    let Some(pending) = self.pending_slot().await else {
                        self.refuse("over_capacity");
                        continue;
                    };
                    let state = Arc::new(ConnectionState::new(self.body_budget, pending));
                    self.waiting.push_back(Arc::downgrade(&state));
                    return Guarded::new(io, slot, state, self.header_timeout, self.idle_timeout);
                }
                Err(error) if out_of_resources(&error) => {
                    self.metrics
                        .connection_refused(self.label, "out_of_resources");
                    tracing::warn!(
                        listener = self.label, error = %error, retry_in_ms = backoff.as_millis() as u64,
                        "Cannot accept connections: out of file descriptors or memory"
                    );
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
                // A connection that failed before it was accepted (reset, aborted).
                Err(error) => {
                    tracing::debug!(listener = self.label, error = %error, "Accept failed")
                }
            }
        }
    }

    /// A pending slot: a free one, or the one of the oldest connection still without a
    /// request, which is closed for it.
    async fn pending_slot(&mut self) -> Option<OwnedSemaphorePermit> {
        if let Ok(slot) = self.pending.clone().try_acquire_owned() {
            return Some(slot);
        }
        while let Some(oldest) = self.waiting.pop_front() {
            if let Some(state) = oldest.upgrade()
                && state.evict()
            {
                self.metrics
                    .connection_refused(self.label, "evicted_pending");
                tracing::debug!(
                    listener = self.label,
                    "Closed the oldest connection without a request"
                );
                break;
            }
        }
        tokio::time::timeout(EVICTION_WAIT, self.pending.clone().acquire_owned())
            .await
            .ok()?
            .ok()
    }

    fn refuse(&self, cause: &'static str) {
        self.metrics.connection_refused(self.label, cause);
        tracing::debug!(listener = self.label, cause, "Connection refused");
    }
}

/// Errors that say the process, not the client, ran out of something.
fn out_of_resources(error: &io::Error) -> bool {
    // EMFILE, ENFILE, ENOBUFS, ENOMEM on Linux.
    matches!(error.raw_os_error(), Some(24 | 23 | 105 | 12))
        || error.kind() == io::ErrorKind::OutOfMemory
}

// === impl ConnectionState ===

/// What one client connection has done, shared by its [`Guarded`] IO and the request
/// layers of its front.
pub struct ConnectionState {
    epoch: Instant,
    /// A first request arrived.
    requested: AtomicBool,
    /// Requests begun and not answered yet.
    in_flight: AtomicUsize,
    /// Milliseconds since `epoch` of the last request begun or ended.
    last_request_ms: AtomicU64,
    /// Closed to make room: the next read fails.
    evicted: AtomicBool,
    /// The connection's reader, woken when it is evicted.
    reader: AtomicWaker,
    /// Its pending slot, given back at the first request.
    pending: Mutex<Option<OwnedSemaphorePermit>>,
    /// Bytes of request bodies this connection may hold at once.
    pub body_budget: Arc<Semaphore>,
    pub body_budget_bytes: usize,
}

impl ConnectionState {
    fn new(body_budget: usize, pending: OwnedSemaphorePermit) -> ConnectionState {
        ConnectionState {
            epoch: Instant::now(),
            requested: AtomicBool::new(false),
            in_flight: AtomicUsize::new(0),
            last_request_ms: AtomicU64::new(0),
            evicted: AtomicBool::new(false),
            reader: AtomicWaker::new(),
            pending: Mutex::new(Some(pending)),
            body_budget: Arc::new(Semaphore::new(body_budget)),
            body_budget_bytes: body_budget,
        }
    }

    /// A request began on this connection: it is no longer pending, and not idle until
    /// the returned guard is dropped (the request answered).
    pub fn request_started(self: &Arc<Self>) -> RequestGuard {
        if !self.requested.swap(true, Ordering::AcqRel)
            && let Ok(mut pending) = self.pending.lock()
        {
            pending.take();
        }
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.touch();
        RequestGuard(self.clone())
    }

    /// Marks a pending connection evicted and wakes its reader; false when it sent a
    /// request meanwhile.
    fn evict(&self) -> bool {
        if self.requested.load(Ordering::Acquire) {
            return false;
        }
        self.evicted.store(true, Ordering::Release);
        self.reader.wake();
        true
    }

    fn touch(&self) {
        let now = self.epoch.elapsed().as_millis() as u64;
        self.last_request_ms.store(now, Ordering::Release);
    }

    fn last_request(&self) -> Instant {
        self.epoch + Duration::from_millis(self.last_request_ms.load(Ordering::Acquire))
    }
}

/// A request in flight on a connection.
pub struct RequestGuard(Arc<ConnectionState>);

impl Drop for RequestGuard {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
        self.0.touch();
    }
}

/// An IO stream that knows its connection's state: a [`Guarded`] connection, or TLS over
/// one.
pub trait Tracked {
    fn connection(&self) -> Arc<ConnectionState>;
}

/// Serves `router` (HTTP/1.1 and HTTP/2) on the connections of `incoming` until
/// `shutdown` completes, then waits for the requests in flight to finish (the caller
/// bounds how long: see the shutdown grace). Each request is reported to its connection's
/// state; quiet HTTP/2 connections are PINGed as configured.
pub async fn serve_router<IO>(
    incoming: impl Stream<Item = io::Result<IO>>,
    router: axum::Router,
    settings: &ConnectionSettings,
    shutdown: impl Future<Output = ()>,
) where
    IO: AsyncRead + AsyncWrite + Tracked + Unpin + Send + 'static,
{
    use futures_util::StreamExt;
    use hyper_util::{
        rt::{TokioExecutor, TokioIo, TokioTimer},
        server::{conn::auto::Builder, graceful::GracefulShutdown},
        service::TowerToHyperService,
    };
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(settings.header_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(settings.max_streams_per_connection)
        .keep_alive_interval(settings.http2_keepalive_interval)
        .keep_alive_timeout(settings.http2_keepalive_timeout);
    let graceful = GracefulShutdown::new();
    let mut incoming = std::pin::pin!(incoming);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let io = tokio::select! {
            next = incoming.next() => match next {
                Some(Ok(io)) => io,
                Some(Err(_)) => continue,
                None => break,
            },
            () = &mut shutdown => break,
        };
        let builder = builder.clone();
        let state = io.connection();
        let service = TowerToHyperService::new(router.clone().layer(axum::middleware::from_fn(
            move |request, next: axum::middleware::Next| {
                let guard = state.request_started();
                async move {
                    let response = next.run(request).await;
                    drop(guard);
                    response
                }
            },
        )));
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let connection = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
            let _ = watcher.watch(connection).await;
        });
    }
    graceful.shutdown().await;
}

#[cfg(test)]
mod tests;
