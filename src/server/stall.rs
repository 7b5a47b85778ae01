//! A connection whose answer makes no progress is cut: a client that pipelines requests and never reads the
//! answers would otherwise hold its connection, and hyper's buffers for it,
//! for as long as it likes; hyper's clock covers reading a request head,
//! not writing an answer.
//!
//! [`StallLimit`] wraps the socket: a write (or flush, or shutdown) that has
//! been pending for `limit` without the peer taking a byte fails with
//! `TimedOut`, which ends hyper's connection. The clock runs only while a
//! write waits, and starts again after each one that goes through, so a
//! slow reader that keeps reading is never cut, however long the answer.
//! Reads have no such clock here: hyper keeps reading while a request is
//! served (to see the peer leave), and a broker call may rightly wait for a
//! refresh far longer than `limit`.
//!
//! Written here rather than taken from `tokio-io-timeout`: that crate
//! times reads as well (unused here, and wrong for the reason above), and
//! this is one timer on one side in a few lines, with no new dependency.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// `inner`, whose writes fail once one has waited `limit` for the peer.
pub struct StallLimit<S> {
    inner: S,
    limit: Duration,
    /// Allocated the first time a write waits, then reset and reused.
    timer: Option<Pin<Box<Sleep>>>,
    /// Whether a write is waiting now (the timer runs).
    waiting: bool,
}

impl<S> StallLimit<S> {
    pub fn new(inner: S, limit: Duration) -> StallLimit<S> {
        StallLimit {
            inner,
            limit,
            timer: None,
            waiting: false,
        }
    }

    /// Passes a write's result on, except that one still pending `limit`
    /// after it started waiting becomes `TimedOut`.
    fn watch<T>(&mut self, cx: &mut Context<'_>, polled: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        if polled.is_ready() {
            self.waiting = false;
            return polled;
        }
        let deadline = Instant::now() + self.limit;
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if !self.waiting {
            timer.as_mut().reset(deadline);
            self.waiting = true;
        }
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the peer took none of the answer in time",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for StallLimit<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for StallLimit<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.watch(cx, polled)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.watch(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.inner).poll_flush(cx);
        self.watch(cx, polled)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.watch(cx, polled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const LIMIT: Duration = Duration::from_secs(1);

    #[tokio::test(start_paused = true)]
    async fn a_write_the_peer_never_takes_fails_after_the_limit() {
        let (ours, _peer) = tokio::io::duplex(16);
        let mut stream = StallLimit::new(ours, LIMIT);
        let started = Instant::now();
        let error = stream.write_all(&[0u8; 64]).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), LIMIT);
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_reader_that_keeps_reading_is_never_cut() {
        let (ours, mut peer) = tokio::io::duplex(16);
        let mut stream = StallLimit::new(ours, LIMIT);
        let reader = tokio::spawn(async move {
            let mut taken = Vec::new();
            let mut buffer = [0u8; 8];
            // 8 bytes every 0.9 s: each write waits less than the limit.
            while taken.len() < 256 {
                tokio::time::sleep(Duration::from_millis(900)).await;
                let n = peer.read(&mut buffer).await.unwrap();
                taken.extend_from_slice(&buffer[..n]);
            }
            taken.len()
        });
        stream.write_all(&[1u8; 256]).await.unwrap();
        stream.flush().await.unwrap();
        assert_eq!(reader.await.unwrap(), 256);
    }

    #[tokio::test(start_paused = true)]
    async fn reads_have_no_clock() {
        let (ours, mut peer) = tokio::io::duplex(16);
        let mut stream = StallLimit::new(ours, LIMIT);
        tokio::spawn(async move {
            tokio::time::sleep(LIMIT * 10).await;
            peer.write_all(b"late").await.unwrap();
        });
        let mut buffer = [0u8; 4];
        stream.read_exact(&mut buffer).await.unwrap();
        assert_eq!(&buffer, b"late");
    }
}
