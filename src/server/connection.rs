//! What a listener allows a client connection ([`ConnectionSettings`]), for every front:
//! connections are accepted up to a cap per listener (past it, accepted and closed at
//! once, so that clients fail fast instead of waiting in the backlog); an accept error
//! that says the process is out of descriptors or memory (`EMFILE`, `ENFILE`, `ENOBUFS`,
//! `ENOMEM`) backs off instead of spinning; and each accepted connection is [`Guarded`]:
//! its first bytes must arrive within `header_timeout`, and it is closed after
//! `idle_timeout` without a byte from the client.

use std::{
    future::Future,
    io,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use futures_util::Stream;
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::{TcpListener, TcpStream, UnixListener, UnixStream},
    sync::{OwnedSemaphorePermit, Semaphore},
    time::{Instant, Sleep},
};
use tonic::transport::server::Connected;

use crate::{config::ConnectionSettings, metrics::Metrics};

/// Bytes a client must send within `header_timeout`: more than the shortest HTTP/1
/// request line, less than the HTTP/2 preface (24 bytes).
const FIRST_BYTES: usize = 16;
/// Back-off after an accept error that says resources ran out, doubled up to the maximum.
const FIRST_BACKOFF: Duration = Duration::from_millis(10);
const MAX_BACKOFF: Duration = Duration::from_secs(1);

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
/// `settings`; a stream that never ends.
pub fn incoming<L: Accept>(
    listener: L,
    settings: &ConnectionSettings,
    metrics: Arc<Metrics>,
    label: &'static str,
) -> impl Stream<Item = io::Result<Guarded<L::Io>>> + Send + 'static {
    let accepting = Accepting {
        listener,
        slots: Arc::new(Semaphore::new(settings.max_per_listener)),
        header_timeout: settings.header_timeout,
        idle_timeout: settings.idle_timeout,
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
    header_timeout: Duration,
    idle_timeout: Duration,
    metrics: Arc<Metrics>,
    label: &'static str,
}

impl<L: Accept> Accepting<L> {
    /// The next connection within the cap.
    async fn next(&mut self) -> Guarded<L::Io> {
        let mut backoff = FIRST_BACKOFF;
        loop {
            match self.listener.accept().await {
                Ok(io) => match self.slots.clone().try_acquire_owned() {
                    Ok(slot) => {
                        return Guarded::new(io, slot, self.header_timeout, self.idle_timeout);
                    }
                    Err(_) => {
                        self.metrics.connection_refused(self.label, "over_capacity");
                        tracing::debug!(listener = self.label, "Connection refused: at capacity");
                    }
                },
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
}

/// Errors that say the process, not the client, ran out of something.
fn out_of_resources(error: &io::Error) -> bool {
    // EMFILE, ENFILE, ENOBUFS, ENOMEM on Linux.
    matches!(error.raw_os_error(), Some(24 | 23 | 105 | 12))
        || error.kind() == io::ErrorKind::OutOfMemory
}

/// A client connection holding its slot of the listener's cap, with its deadlines: the
/// first bytes within `header_timeout`, then at most `idle_timeout` between bytes read.
/// A missed deadline fails the next read, which makes the HTTP server close the
/// connection.
pub struct Guarded<IO> {
    io: IO,
    _slot: OwnedSemaphorePermit,
    deadline: Pin<Box<Sleep>>,
    /// First bytes still expected before the idle rule applies.
    first_left: usize,
    idle_timeout: Duration,
    last_read: Instant,
}

impl<IO> Guarded<IO> {
    fn new(io: IO, slot: OwnedSemaphorePermit, header: Duration, idle: Duration) -> Self {
        let now = Instant::now();
        Guarded {
            io,
            _slot: slot,
            deadline: Box::pin(tokio::time::sleep_until(now + header)),
            first_left: FIRST_BYTES,
            idle_timeout: idle,
            last_read: now,
        }
    }

    pub fn get_ref(&self) -> &IO {
        &self.io
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Guarded<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let read = buf.filled().len() - before;
                if read > 0 {
                    this.last_read = Instant::now();
                    if this.first_left > 0 {
                        this.first_left = this.first_left.saturating_sub(read);
                        if this.first_left == 0 {
                            let next = this.last_read + this.idle_timeout;
                            this.deadline.as_mut().reset(next);
                        }
                    }
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending => loop {
                if this.deadline.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                // The idle deadline is moved lazily: a read since it was set moves it on.
                let next = this.last_read + this.idle_timeout;
                if this.first_left == 0 && next > Instant::now() {
                    this.deadline.as_mut().reset(next);
                    continue;
                }
                let why = if this.first_left > 0 {
                    "no request within the header timeout"
                } else {
                    "idle for longer than the idle timeout"
                };
                return Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, why)));
            },
            error => error,
        }
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Guarded<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

impl<IO: Connected> Connected for Guarded<IO> {
    type ConnectInfo = IO::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.io.connect_info()
    }
}

/// Serves `router` (HTTP/1.1 and HTTP/2) on the connections of `incoming` until
/// `shutdown` completes, then waits for the requests in flight to finish (the caller
/// bounds how long: see the shutdown grace). An HTTP/1 request head must arrive within
/// `header_timeout`; quiet HTTP/2 connections are PINGed as configured.
pub async fn serve_router<IO>(
    incoming: impl Stream<Item = io::Result<IO>>,
    router: axum::Router,
    settings: &ConnectionSettings,
    shutdown: impl Future<Output = ()>,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
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
        let service = TowerToHyperService::new(router.clone());
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
