//! The SSH connection's TCP socket: no Nagle delay, and every read acknowledged at once.
//!
//! OpenSSH's server leaves Nagle's algorithm on for a session without a terminal: a small
//! packet it sends (a channel's confirmation) waits while an earlier one is not
//! acknowledged. Linux delays a lone acknowledgement up to 40 ms. Both meet right after
//! login: the server announces its host keys (`hostkeys-00@openssh.com`) as the client
//! opens its first channels, and the confirmation then waited 40 ms for the client's
//! acknowledgement of the announcement, a stall measured on every command of a re-pull.
//! So after each read that brings data, the socket is told to acknowledge now
//! (`TCP_QUICKACK`, which Linux forgets after a while, hence each time).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// A TCP stream whose reads are acknowledged at once.
pub(super) struct QuickAck(TcpStream);

impl QuickAck {
    /// `stream`, with Nagle's algorithm off (small requests go out at once).
    pub(super) fn new(stream: TcpStream) -> Self {
        if let Err(e) = stream.set_nodelay(true) {
            tracing::warn!("cannot set TCP_NODELAY on the SSH connection: {e}");
        }
        Self(stream)
    }
}

impl AsyncRead for QuickAck {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.0).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            ack_now(&self.0);
        }
        r
    }
}

#[cfg(target_os = "linux")]
fn ack_now(s: &TcpStream) {
    // Best effort: an acknowledgement 40 ms late is slow, not wrong.
    let _ = socket2::SockRef::from(s).set_tcp_quickack(true);
}

#[cfg(not(target_os = "linux"))]
fn ack_now(_: &TcpStream) {}

impl AsyncWrite for QuickAck {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}
