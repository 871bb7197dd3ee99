//! The connection loop: hyper's HTTP/1.1 server serving warp's filter (HTTP/2
//! is not offered: it would escape the header read timeout), with the limits
//! warp's own server does not expose:
//! - a client must send its request headers within `header_read_timeout` of
//!   their first byte (hyper's timer);
//! - a connection silent for `idle_timeout` while no request of it is being
//!   handled (new and sending nothing, idle between requests) is closed, and
//!   so is one that stops reading our answer; hyper has no such timer;
//! - at most `max_connections` are open at once; further ones wait in the
//!   kernel's accept queue;
//! - on shutdown no new connection is taken and open ones finish the
//!   requests in flight; the connections belong to this loop, so if the
//!   caller gives up waiting and drops it, they are closed with it.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use prometheus::IntGauge;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::{Instant, Sleep};
use tokio_rustls::TlsAcceptor;
use warp::Filter;

tokio::task_local! {
    /// The connecting address, for the requests of the connection being
    /// served on this task (hyper polls them on the connection's task).
    static PEER: std::net::SocketAddr;
}

/// The address of the client whose request is being handled, if known.
pub fn peer_addr() -> Option<std::net::SocketAddr> {
    PEER.try_with(|peer| *peer).ok()
}

pub struct Limits {
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
}

/// Serves (over TLS with `tls`) until `stop` turns true, then waits for
/// open connections to finish their requests (the caller bounds that wait).
/// `open_connections`, if given, counts the connections open at each moment.
pub async fn serve<F>(
    listener: TcpListener,
    routes: F,
    limits: Limits,
    tls: Option<TlsAcceptor>,
    open_connections: Option<IntGauge>,
    mut stop: watch::Receiver<bool>,
) where
    F: Filter<Error = Infallible> + Clone + Send + Sync + 'static,
    F::Extract: warp::Reply,
{
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let mut connections: JoinSet<()> = JoinSet::new();
    loop {
        // Forget connections that have ended.
        while connections.try_join_next().is_some() {}
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
            _ = stop_requested(&mut stop) => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of file descriptors and the like: back off, don't spin.
                    tracing::warn!(error = %err, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop_requested(&mut stop) => break,
        };
        let in_flight = Arc::new(AtomicUsize::new(0));
        let service = Tracked {
            inner: TowerToHyperService::new(warp::service(routes.clone())),
            in_flight: in_flight.clone(),
        };
        let stream = IdleTimeout::new(stream, limits.idle_timeout, in_flight);
        let watcher = graceful.watcher();
        let header_read_timeout = limits.header_read_timeout;
        let tls = tls.clone();
        let open = open_connections.clone().map(Open::new);
        connections.spawn(PEER.scope(peer, async move {
            let _slot = slot;
            let _open = open;
            let Some(tls) = tls else {
                return serve_connection(stream, service, header_read_timeout, watcher).await;
            };
            // The handshake gets the time the headers get: a client that
            // stalls in it is dropped like one that stalls in its headers.
            match tokio::time::timeout(header_read_timeout, tls.accept(stream)).await {
                Ok(Ok(stream)) => {
                    serve_connection(stream, service, header_read_timeout, watcher).await
                }
                Ok(Err(err)) => tracing::debug!(error = %err, "TLS handshake failed"),
                Err(_) => tracing::debug!("TLS handshake timed out"),
            }
        }));
    }
    drop(listener);
    graceful.shutdown().await;
}

/// Serves one connection (plain or TLS) until it ends or, on shutdown, its
/// requests in flight are done.
async fn serve_connection<I, S>(
    stream: I,
    service: S,
    header_read_timeout: Duration,
    watcher: hyper_util::server::graceful::Watcher,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: hyper::service::HttpService<Incoming> + Send + 'static,
    S::Future: Send + 'static,
    S::ResBody: Send + 'static,
    <S::ResBody as hyper::body::Body>::Data: Send,
    <S::ResBody as hyper::body::Body>::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    // HTTP/1 only: the header read timeout is an HTTP/1 setting, and a
    // connection that negotiated HTTP/2 would escape it.
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout)
        .keep_alive(true)
        .serve_connection(TokioIo::new(stream), service);
    if let Err(err) = watcher.watch(connection).await {
        tracing::debug!(error = %err, "connection ended with an error");
    }
}

/// One open connection, counted in a gauge until dropped (when the
/// connection ends, or is aborted with the loop).
struct Open(IntGauge);

impl Open {
    fn new(gauge: IntGauge) -> Open {
        gauge.inc();
        Open(gauge)
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.0.dec();
    }
}

async fn stop_requested(stop: &mut watch::Receiver<bool>) {
    // The guard wait_for returns is not Send; drop it before anything else.
    let _ = stop.wait_for(|stop| *stop).await;
}

/// A service that counts the requests of its connection being handled.
#[derive(Clone)]
struct Tracked<S> {
    inner: S,
    in_flight: Arc<AtomicUsize>,
}

impl<S> hyper::service::Service<hyper::Request<Incoming>> for Tracked<S>
where
    S: hyper::service::Service<hyper::Request<Incoming>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Counted<S::Future>;

    fn call(&self, request: hyper::Request<Incoming>) -> Self::Future {
        Counted {
            _in_flight: InFlight::enter(&self.in_flight),
            inner: self.inner.call(request),
        }
    }
}

pin_project_lite::pin_project! {
    /// A request's future, counted as in flight until it is dropped.
    struct Counted<F> {
        #[pin]
        inner: F,
        _in_flight: InFlight,
    }
}

impl<F: Future> Future for Counted<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        self.project().inner.poll(cx)
    }
}

/// Counts one request as in flight until dropped (also when the client hangs up).
struct InFlight(Arc<AtomicUsize>);

impl InFlight {
    fn enter(counter: &Arc<AtomicUsize>) -> InFlight {
        counter.fetch_add(1, Ordering::SeqCst);
        InFlight(counter.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A socket whose reads fail with `TimedOut` after `idle` without a byte
/// while none of its requests is in flight, and whose writes fail after
/// `idle` without progress.
struct IdleTimeout<S> {
    inner: S,
    idle: Duration,
    last_activity: Instant,
    /// Armed once per connection, and moved only when it fires while there
    /// was activity since it was set: reading the clock on activity is cheap,
    /// moving a timer on every read that would wait is not.
    timer: Pin<Box<Sleep>>,
    in_flight: Arc<AtomicUsize>,
}

impl<S> IdleTimeout<S> {
    fn new(inner: S, idle: Duration, in_flight: Arc<AtomicUsize>) -> Self {
        IdleTimeout {
            inner,
            idle,
            last_activity: Instant::now(),
            timer: Box::pin(tokio::time::sleep(idle)),
            in_flight,
        }
    }

    /// Passes an I/O result through, keeping time: progress pushes the
    /// deadline back, and so does waiting while `waiting_on_us` (a request
    /// of this connection is being handled); otherwise waiting past the
    /// deadline fails with `TimedOut`.
    fn watch<T>(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<T>>,
        waiting_on_us: bool,
    ) -> Poll<io::Result<T>> {
        match polled {
            Poll::Pending if !waiting_on_us => self.poll_expired(cx).map(Err),
            polled => {
                self.last_activity = Instant::now();
                polled
            }
        }
    }

    /// Ready(TimedOut) once `idle` has passed since the last activity;
    /// registers for a wake-up at that moment otherwise.
    fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        loop {
            ready!(self.timer.as_mut().poll(cx));
            let deadline = self.last_activity + self.idle;
            if deadline <= Instant::now() {
                return Poll::Ready(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "connection idle for too long",
                ));
            }
            // There was activity since the timer was set: move it on to the
            // deadline that activity gives.
            self.timer.as_mut().reset(deadline);
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for IdleTimeout<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        let busy = this.in_flight.load(Ordering::SeqCst) > 0;
        this.watch(cx, polled, busy)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for IdleTimeout<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_write(cx, data);
        this.watch(cx, polled, false)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.watch(cx, polled, false)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
