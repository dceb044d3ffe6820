//! A connection stream that reports to its connection's state: bytes and requests seen,
//! so that deadlines count requests (not PINGs) and memory budgets apply per connection.

use std::{
    io,
    pin::Pin,
    sync::{Arc, atomic::Ordering},
    task::{Context, Poll},
    time::Duration,
};

use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    sync::OwnedSemaphorePermit,
    time::{Instant, Sleep},
};
use tonic::transport::server::Connected;

use super::{ConnectionState, Tracked};

impl<IO> Tracked for Guarded<IO> {
    fn connection(&self) -> Arc<ConnectionState> {
        self.state.clone()
    }
}

impl<IO> Tracked for tokio_rustls::server::TlsStream<IO>
where
    IO: Tracked,
{
    fn connection(&self) -> Arc<ConnectionState> {
        self.get_ref().0.connection()
    }
}

// === impl Guarded ===

/// A client connection holding its slot of the listener's cap, with its deadlines: a
/// first request within `header_timeout`, then at most `idle_timeout` without a request in
/// flight or begun. A missed deadline, or an eviction, fails the next read, which makes
/// the HTTP server close the connection.
pub struct Guarded<IO> {
    io: IO,
    _slot: OwnedSemaphorePermit,
    state: Arc<ConnectionState>,
    deadline: Pin<Box<Sleep>>,
    idle_timeout: Duration,
}

impl<IO> Guarded<IO> {
    pub(super) fn new(
        io: IO,
        slot: OwnedSemaphorePermit,
        state: Arc<ConnectionState>,
        header: Duration,
        idle: Duration,
    ) -> Self {
        Guarded {
            io,
            _slot: slot,
            state,
            deadline: Box::pin(tokio::time::sleep_until(Instant::now() + header)),
            idle_timeout: idle,
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
        this.state.reader.register(cx.waker());
        if this.state.evicted.load(Ordering::Acquire) {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "closed to make room: no request yet, and a newer connection needed the slot",
            )));
        }
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Pending => loop {
                if this.deadline.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                // The deadline is moved lazily, when it fires.
                let state = &this.state;
                if !state.requested.load(Ordering::Acquire) {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "no request within the header timeout",
                    )));
                }
                let now = Instant::now();
                let next = if state.in_flight.load(Ordering::Acquire) > 0 {
                    now + this.idle_timeout
                } else {
                    state.last_request() + this.idle_timeout
                };
                if next <= now {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "no request for longer than the idle timeout",
                    )));
                }
                this.deadline.as_mut().reset(next);
            },
            ready => ready,
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
