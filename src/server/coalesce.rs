//! The connection wrapper that lets HTTP/2 coalesce responses into fewer writes.
//!
//! On a connection that reports vectored writes, the `h2` crate keeps every DATA payload
//! of 256 bytes or more out of its write buffer (to chain it into a `writev`) and stops
//! buffering further frames until that payload is written. An allow response carries
//! headers to set, headers to remove and dynamic metadata, so it is usually larger than
//! 256 bytes, and every Check then cost its own system call (measured: 1.9 writes per
//! Check against 0.8 for an empty answer). Over loopback a write is the most expensive
//! thing a Check does, as the kernel also delivers the segment to the reader.
//!
//! [`Coalesced`] reports no vectored writes, so `h2` copies payloads under 1 KiB into its
//! buffer and sends many responses (and their trailers) in one `write`.

use std::{
    io,
    pin::Pin,
    task::{Context, Poll},
};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tonic::transport::server::Connected;

use super::{budget::ConnectionInfo, connection::Tracked};

/// An IO stream that is the same in every way except that it reports no vectored writes.
#[derive(Debug)]
pub struct Coalesced<IO>(pub IO);

impl<IO: AsyncRead + Unpin> AsyncRead for Coalesced<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Coalesced<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        false
    }
}

/// What the gRPC server puts in each request's extensions: the connection's state, for the
/// request layers (`super::budget`).
impl<IO: Tracked> Connected for Coalesced<IO> {
    type ConnectInfo = ConnectionInfo;

    fn connect_info(&self) -> ConnectionInfo {
        ConnectionInfo(self.0.connection())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn passes_bytes_both_ways_and_reports_no_vectored_writes() {
        let (near, mut far) = tokio::io::duplex(64);
        let mut near = Coalesced(near);
        assert!(!near.is_write_vectored());
        near.write_all(b"ping").await.unwrap();
        let mut got = [0u8; 4];
        far.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"ping");
        far.write_all(b"pong").await.unwrap();
        near.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"pong");
    }
}
