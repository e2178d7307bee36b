//! The HTTP/1 server under the router: our own accept loop, so that slow or idle connections
//! cannot hold file descriptors forever and starve `/healthz` and the webhook.
//!
//! - **Connection limit.** A permit of a semaphore is taken *before* `accept`, so beyond
//!   `max_connections` new connections wait in the kernel's listen backlog: they cost this
//!   process no descriptor, and are served in turn as slots free up (a client that gives up
//!   first just sees a connect timeout). Closing them at once instead would need an `accept`
//!   (a descriptor) each and would turn a short wait into an error.
//! - **Idle timeout.** A connection with no request in progress and no byte received since
//!   its last response (or since it was accepted) is closed after `idle_timeout`.
//! - **Header-read timeout.** Once the first byte of a request arrives, the whole head must be
//!   in within `header_read_timeout`, or the connection is closed.
//!
//! Both timeouts are kept by a watchdog in each connection's task rather than by hyper's
//! `header_read_timeout`: hyper starts that one timer when it begins waiting for a head, so it
//! counts idle time and header time as one (hyper#3828) and cannot give the two limits. The
//! watchdog sees bytes through `Watched` and requests through `Tracked`; [`Phase`] holds
//! the rules, with time passed in.
//!
//! A request in progress is governed by `request_timeout` (the router's timeout layer), never
//! by these: a slow database is not an idle connection.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tower::ServiceExt;

/// The connection-level limits (`header_read_timeout`, `idle_timeout`, `max_connections`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// From the first byte of a request to its last header byte.
    pub header_read_timeout: Duration,
    /// With no request in progress and no byte received.
    pub idle_timeout: Duration,
    /// Connections open at once; more wait in the listen backlog.
    pub max_connections: usize,
}

/// Serves `router` on `listener` until `stop` turns true, then stops accepting, asks every
/// connection to finish its request in progress and close, and returns once all have.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    mut stop: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let mut full_warned: Option<Instant> = None;
    loop {
        let permit = match slots.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                // One line per minute at most: under attack this would otherwise flood too.
                let now = Instant::now();
                if full_warned.is_none_or(|t| now.duration_since(t) >= Duration::from_secs(60)) {
                    full_warned = Some(now);
                    tracing::warn!(
                        max_connections = limits.max_connections,
                        "connection limit reached; new connections wait in the listen backlog"
                    );
                }
                tokio::select! {
                    permit = slots.clone().acquire_owned() => match permit {
                        Ok(permit) => permit,
                        Err(_) => break,
                    },
                    _ = stop.wait_for(|s| *s) => break,
                }
            }
        };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.wait_for(|s| *s) => break,
        };
        match accepted {
            Ok((stream, _peer)) => {
                tokio::spawn(connection(
                    stream,
                    router.clone(),
                    limits,
                    stop.clone(),
                    permit,
                ));
            }
            Err(e) => accept_failed(&e).await,
        }
    }
    // Closing the listening socket now: new connections are refused, not left in a backlog
    // nobody will read.
    drop(listener);
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    let _ = slots.acquire_many(all).await;
}

/// As hyper 0.14 and axum do: a descriptor shortage (`EMFILE`) is likely to pass once some
/// connections close, so wait a little instead of spinning on `accept`.
async fn accept_failed(e: &io::Error) {
    if matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %e, "accept failed; retrying in 1 s");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

async fn connection(
    stream: TcpStream,
    router: Router,
    limits: Limits,
    mut stop: watch::Receiver<bool>,
    permit: OwnedSemaphorePermit,
) {
    let watch = Arc::new(Watch {
        phase: Mutex::new(Phase::new(Instant::now())),
        head_begun: tokio::sync::Notify::new(),
    });
    let io = TokioIo::new(Watched {
        stream,
        watch: watch.clone(),
    });
    let service = Tracked {
        router,
        watch: watch.clone(),
    };
    let mut http = hyper::server::conn::http1::Builder::new();
    // The watchdog below keeps the header-read timeout (see the module docs).
    http.header_read_timeout(None);
    let conn = http.serve_connection(io, service);
    tokio::pin!(conn);
    crate::metrics::connection_opened();
    let mut stopping = false;
    // While a request is in progress there is no deadline; look again this often.
    let recheck = limits.header_read_timeout.min(limits.idle_timeout);
    let closed_by = loop {
        let wake = watch
            .lock()
            .deadline(&limits)
            .unwrap_or_else(|| Instant::now() + recheck);
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    // Client mistakes and resets: never above debug, or a flood of them floods
                    // the log.
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                break "done";
            }
            // The first byte of a head brings the deadline forward: compute it again.
            () = watch.head_begun.notified() => {}
            () = tokio::time::sleep_until(wake.into()) => {
                if let Some(why) = watch.lock().expired(&limits, Instant::now()) {
                    // Dropping the connection closes the socket. Nothing is in progress on
                    // it, so nothing is lost.
                    tracing::debug!(reason = why.as_str(), "closing connection");
                    break why.as_str();
                }
            }
            _ = stop.wait_for(|s| *s), if !stopping => {
                stopping = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    };
    crate::metrics::connection_closed(closed_by);
    drop(permit);
}

/// A connection's [`Phase`], shared by its socket, its service and its watchdog.
struct Watch {
    phase: Mutex<Phase>,
    /// Wakes the watchdog when a request head begins.
    head_begun: tokio::sync::Notify,
}

impl Watch {
    fn lock(&self) -> std::sync::MutexGuard<'_, Phase> {
        self.phase.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Why the watchdog closed a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// No request and no byte for `idle_timeout`.
    Idle,
    /// A request head begun but not finished within `header_read_timeout`.
    HeaderRead,
}

impl Expiry {
    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Expiry::Idle => "idle_timeout",
            Expiry::HeaderRead => "header_read_timeout",
        }
    }
}

/// Where a connection stands between requests: the rules of both timeouts, with time passed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Phase {
    /// Requests handed to the router and not yet answered.
    in_flight: u32,
    /// When the connection was accepted or its last request answered.
    ready_since: Instant,
    /// The first byte received since `ready_since`: the next request's head has begun.
    first_byte: Option<Instant>,
}

impl Phase {
    /// A connection accepted at `now`.
    pub fn new(now: Instant) -> Self {
        Self {
            in_flight: 0,
            ready_since: now,
            first_byte: None,
        }
    }

    /// Bytes arrived at `now`. True when they begin a request head (the deadline moved).
    pub fn received(&mut self, now: Instant) -> bool {
        let begins = self.in_flight == 0 && self.first_byte.is_none();
        if begins {
            self.first_byte = Some(now);
        }
        begins
    }

    /// A complete head was handed to the router.
    pub fn request_started(&mut self) {
        self.in_flight = self.in_flight.saturating_add(1);
    }

    /// The router answered (or the request was abandoned) at `now`.
    pub fn request_finished(&mut self, now: Instant) {
        self.in_flight = self.in_flight.saturating_sub(1);
        if self.in_flight == 0 {
            self.ready_since = now;
            self.first_byte = None;
        }
    }

    /// When the connection is due to be closed, or `None` while a request is in progress.
    pub fn deadline(&self, limits: &Limits) -> Option<Instant> {
        if self.in_flight > 0 {
            return None;
        }
        Some(match self.first_byte {
            Some(first) => first + limits.header_read_timeout,
            None => self.ready_since + limits.idle_timeout,
        })
    }

    /// Whether, at `now`, the connection is to be closed, and why.
    pub fn expired(&self, limits: &Limits, now: Instant) -> Option<Expiry> {
        let deadline = self.deadline(limits)?;
        (now >= deadline).then_some(if self.first_byte.is_some() {
            Expiry::HeaderRead
        } else {
            Expiry::Idle
        })
    }
}

/// The socket, noting in the connection's [`Phase`] when bytes arrive.
struct Watched {
    stream: TcpStream,
    watch: Arc<Watch>,
}

impl AsyncRead for Watched {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let result = Pin::new(&mut this.stream).poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(())))
            && buf.filled().len() > before
            && this.watch.lock().received(Instant::now())
        {
            this.watch.head_begun.notify_one();
        }
        result
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

/// The router as hyper calls it, marking each request's start and end in the [`Phase`].
#[derive(Clone)]
struct Tracked {
    router: Router,
    watch: Arc<Watch>,
}

/// Marks the request finished when dropped, so an abandoned request counts too.
struct Finished(Arc<Watch>);

impl Drop for Finished {
    fn drop(&mut self) {
        self.0.lock().request_finished(Instant::now());
    }
}

impl hyper::service::Service<Request<Incoming>> for Tracked {
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        self.watch.lock().request_started();
        let finished = Finished(self.watch.clone());
        let answer = self.router.clone().oneshot(request.map(Body::new));
        Box::pin(async move {
            let response = answer.await;
            drop(finished);
            response
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        header_read_timeout: Duration::from_secs(10),
        idle_timeout: Duration::from_secs(30),
        max_connections: 8,
    };

    fn s(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn a_connection_that_sends_nothing_is_idle_until_the_idle_timeout() {
        let t0 = Instant::now();
        let phase = Phase::new(t0);
        assert_eq!(phase.deadline(&LIMITS), Some(t0 + s(30)));
        assert_eq!(phase.expired(&LIMITS, t0 + s(29)), None);
        assert_eq!(phase.expired(&LIMITS, t0 + s(30)), Some(Expiry::Idle));
    }

    #[test]
    fn the_first_byte_starts_the_header_read_timeout_and_later_bytes_do_not_extend_it() {
        let t0 = Instant::now();
        let mut phase = Phase::new(t0);
        assert!(phase.received(t0 + s(25)));
        assert!(!phase.received(t0 + s(33)));
        assert_eq!(phase.deadline(&LIMITS), Some(t0 + s(35)));
        assert_eq!(phase.expired(&LIMITS, t0 + s(34)), None);
        assert_eq!(phase.expired(&LIMITS, t0 + s(35)), Some(Expiry::HeaderRead));
    }

    #[test]
    fn a_request_in_progress_has_no_deadline_and_its_end_restarts_the_idle_clock() {
        let t0 = Instant::now();
        let mut phase = Phase::new(t0);
        phase.received(t0 + s(1));
        phase.request_started();
        // Body bytes of the request in progress are not the next request's head.
        assert!(!phase.received(t0 + s(2)));
        assert_eq!(phase.deadline(&LIMITS), None);
        assert_eq!(phase.expired(&LIMITS, t0 + s(1000)), None);
        phase.request_finished(t0 + s(100));
        assert_eq!(phase.deadline(&LIMITS), Some(t0 + s(130)));
        assert_eq!(phase.expired(&LIMITS, t0 + s(130)), Some(Expiry::Idle));
        assert!(phase.received(t0 + s(120)));
        assert_eq!(phase.deadline(&LIMITS), Some(t0 + s(130)));
        assert_eq!(
            phase.expired(&LIMITS, t0 + s(130)),
            Some(Expiry::HeaderRead)
        );
    }
}
