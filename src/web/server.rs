//! The HTTP/1.1 connections under the dashboard (hyper): at most `max_connections` at once (the
//! rest wait in the kernel's backlog), a request head of at most [`MAX_HEAD`] bytes and
//! [`MAX_HEADERS`] fields that must arrive within the client timeout (slow or idle clients are
//! cut), writes that fail once the client has not read for that long, and a shutdown that lets
//! answers under way finish for a bounded time. Serves a `Router`; knows nothing of pages.

use super::tls::Peer;
use crate::config::Limits;
use axum::extract::ConnectInfo;
use axum::serve::Listener;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::{pin, Pin};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{watch, Semaphore};
use tower::ServiceExt;

/// Bytes of a request head (request line and header fields) read at most: a longer head is
/// answered 431 (or 414 for a long target) and the connection closed.
pub const MAX_HEAD: usize = 32 * 1024;
/// Header fields in a request at most (431 beyond).
pub const MAX_HEADERS: usize = 64;
/// How long answers under way may take to finish once shutdown begins.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// The warning that the connection cap is reached, at most this often.
const CAP_WARNING_EVERY: Duration = Duration::from_secs(60);

/// What connections are told.
#[derive(Clone, Copy, PartialEq)]
enum Phase {
    Serving,
    /// Finish the answer under way, then close.
    Closing,
    /// Close now.
    Closed,
}

/// Serves `router` on every connection `listener` gives until `shutdown` completes, then lets
/// the connections finish their answers for [`SHUTDOWN_GRACE`] at most.
pub async fn run<L>(
    mut listener: L,
    router: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()>
where
    L: Listener<Addr = SocketAddr>,
{
    let slots = u32::try_from(limits.max_connections.max(1)).unwrap_or(u32::MAX);
    let permits = Arc::new(Semaphore::new(slots as usize));
    let (phase, _) = watch::channel(Phase::Serving);
    let mut warned: Option<Instant> = None;
    let mut shutdown = pin!(shutdown);
    loop {
        if permits.available_permits() == 0
            && warned.is_none_or(|t| t.elapsed() > CAP_WARNING_EVERY)
        {
            tracing::warn!(
                "web: {slots} connections open ([web] max_connections): new clients wait"
            );
            warned = Some(Instant::now());
        }
        let permit = tokio::select! {
            p = Arc::clone(&permits).acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (io, peer) = tokio::select! {
            c = listener.accept() => c,
            () = &mut shutdown => break,
        };
        let router = router.clone();
        let phase = phase.subscribe();
        tokio::spawn(async move {
            connection(io, peer, router, limits, phase).await;
            drop(permit);
        });
    }
    drop(listener);
    let _ = phase.send(Phase::Closing);
    let all_closed = permits.acquire_many(slots);
    let mut all_closed = pin!(all_closed);
    if tokio::time::timeout(SHUTDOWN_GRACE, &mut all_closed)
        .await
        .is_err()
    {
        tracing::warn!(
            "web: {} connection(s) still open {} s after shutdown began: closing them",
            slots as usize - permits.available_permits(),
            SHUTDOWN_GRACE.as_secs()
        );
        let _ = phase.send(Phase::Closed);
        let _ = all_closed.await;
    }
    Ok(())
}

/// One client's connection, served until it closes, breaks a limit, or shutdown ends it.
async fn connection<I>(
    io: I,
    peer: SocketAddr,
    router: Router,
    limits: Limits,
    mut phase: watch::Receiver<Phase>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = router.map_request(move |mut req: axum::http::Request<Incoming>| {
        req.extensions_mut().insert(ConnectInfo(Peer(peer)));
        req
    });
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.client_timeout)
        .max_header_size(MAX_HEAD)
        .max_buf_size(MAX_HEAD)
        .max_headers(MAX_HEADERS);
    let io = TokioIo::new(Stalled::new(io, limits.client_timeout));
    let mut conn = pin!(http.serve_connection(io, TowerToHyperService::new(service)));
    loop {
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!(%peer, "web: connection closed: {e}");
                }
                return;
            }
            changed = phase.changed() => {
                let now = match changed {
                    Ok(()) => *phase.borrow_and_update(),
                    Err(_) => Phase::Closed,
                };
                match now {
                    Phase::Serving => {}
                    Phase::Closing => conn.as_mut().graceful_shutdown(),
                    Phase::Closed => return,
                }
            }
        }
    }
}

/// A connection whose writes fail once they have waited `limit` for the client to read (a
/// client that asks for a large answer and stops reading cannot hold its connection).
struct Stalled<T> {
    io: T,
    limit: Duration,
    waiting: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<T> Stalled<T> {
    fn new(io: T, limit: Duration) -> Self {
        Self {
            io,
            limit,
            waiting: None,
        }
    }

    /// Passes a write's outcome on; a write still pending after `limit` becomes an error.
    fn bounded<R>(
        &mut self,
        cx: &mut Context<'_>,
        poll: Poll<io::Result<R>>,
    ) -> Poll<io::Result<R>> {
        if poll.is_ready() {
            self.waiting = None;
            return poll;
        }
        let limit = self.limit;
        let timer = self
            .waiting
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("the client read nothing for {} s", limit.as_secs()),
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Stalled<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Stalled<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let poll = Pin::new(&mut this.io).poll_write(cx, buf);
        this.bounded(cx, poll)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let poll = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        this.bounded(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let poll = Pin::new(&mut this.io).poll_flush(cx);
        this.bounded(cx, poll)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let poll = Pin::new(&mut this.io).poll_shutdown(cx);
        this.bounded(cx, poll)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test(start_paused = true)]
    async fn a_write_the_peer_never_reads_fails_after_the_limit() {
        let (ours, mut theirs) = tokio::io::duplex(64);
        let mut s = Stalled::new(ours, Duration::from_secs(10));
        // fits the pipe
        s.write_all(&[1; 64]).await.unwrap();
        let started = tokio::time::Instant::now();
        let e = s.write_all(&[2; 64]).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), Duration::from_secs(10));
        // a reader that keeps up is never cut, however long it all takes
        let mut s = Stalled::new(s.io, Duration::from_secs(10));
        let mut buf = [0; 64];
        theirs.read_exact(&mut buf).await.unwrap();
        let reader = tokio::spawn(async move {
            let mut got = 0;
            while got < 64 * 20 {
                tokio::time::sleep(Duration::from_secs(5)).await;
                got += theirs.read(&mut buf).await.unwrap();
            }
            got
        });
        for _ in 0..20 {
            s.write_all(&[3; 64]).await.unwrap();
        }
        assert_eq!(reader.await.unwrap(), 64 * 20);
    }
}
