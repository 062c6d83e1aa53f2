//! The accept loop and per-connection limits.
//!
//! `axum::serve` keeps a connection open for as long as the client likes: an idle
//! keep-alive connection, or one that sends its header a byte at a time (slowloris),
//! holds a file descriptor for ever, and enough of them starve real clients. hyper's own
//! header timeout starts when the connection starts waiting for a request, so it cannot
//! give idle keep-alive connections a longer limit than slow headers; each connection
//! therefore gets a small watchdog that knows which phase it is in:
//!
//! * idle (just accepted, or its last response sent): closed after `idle_timeout`;
//! * reading a request header (bytes arrived, no request yet): closed after
//!   `header_read_timeout` from the first byte;
//! * handling a request: `request_timeout` (in the router) bounds it.
//!
//! At most `max_connections` are open at once, so a flood cannot use up the process's
//! file descriptors (the database and outbound deliveries need some too). At the limit
//! the loop stops accepting (new clients wait in the kernel's backlog) and asks
//! connections idle for a second or more to close: a keep-alive connection or one
//! that has sent nothing yet makes room for a client with a request to send.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::Uri;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, watch};
use tokio::time::Instant;

use super::AppState;

/// How long connections may stay idle or take to send a request header.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// From the first byte of a request to the end of its header.
    pub header_read_timeout: Duration,
    /// With no request in progress and no byte of the next one received.
    pub idle_timeout: Duration,
    /// Connections open at once; at the limit, accepting waits and idle ones close.
    pub max_connections: usize,
}

/// A connection idle this long is closed to make room when the limit is reached; a
/// client that connected to send a request sends it well within this.
const EVICTABLE_AFTER: Duration = Duration::from_secs(1);

/// How often, while at the limit, idle connections are asked again to make room.
const PRESSURE_INTERVAL: Duration = Duration::from_millis(250);

/// How often the log says that the limit was reached, at most.
const LIMIT_LOG_INTERVAL: Duration = Duration::from_secs(60);

/// A socket the daemon serves: plain HTTP, or HTTPS when it has an acceptor.
pub struct Listener {
    pub tcp: TcpListener,
    pub tls: Option<tokio_rustls::TlsAcceptor>,
}

/// The client's address as the socket saw it, in every request's extensions (the
/// network policy reads it, with `X-Forwarded-For` from trusted proxies).
#[derive(Debug, Clone, Copy)]
pub struct PeerAddr(pub SocketAddr);

/// Whether the request came over TLS to this daemon, in every request's extensions
/// (the console marks its cookie `Secure` then).
#[derive(Debug, Clone, Copy)]
pub struct Encrypted(pub bool);

/// What every accept loop shares: the connection allowance, the signal to make room,
/// and the shutdown channels.
#[derive(Clone)]
struct Shared {
    app: Router,
    limits: ConnectionLimits,
    state: Arc<AppState>,
    permits: Arc<Semaphore>,
    pressure: Arc<Notify>,
    stop: watch::Receiver<()>,
    done: watch::Receiver<()>,
}

/// Serves `app` on every listener until `shutdown` resolves, then lets running
/// requests finish (the caller bounds how long) and returns once every connection is
/// closed. The listeners share one `max_connections` allowance.
pub async fn serve(
    listeners: Vec<Listener>,
    app: Router,
    limits: ConnectionLimits,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    // Dropped senders tell connections to shut down; `closed` tells us they all have.
    let (stop_tx, stop_rx) = watch::channel(());
    let (done_tx, done_rx) = watch::channel(());
    let shared = Shared {
        app,
        limits,
        state,
        permits: Arc::new(Semaphore::new(limits.max_connections.max(1))),
        pressure: Arc::new(Notify::new()),
        stop: stop_rx,
        done: done_rx,
    };
    let loops: Vec<_> = listeners
        .into_iter()
        .map(|l| tokio::spawn(accept_loop(l, shared.clone())))
        .collect();
    drop(shared);
    shutdown.await;
    // One signal for all: accept loops stop accepting, connections finish what they run.
    drop(stop_tx);
    for l in loops {
        let _ = l.await;
    }
    done_tx.closed().await;
}

/// Accepts on one listener until the server stops; each connection runs on its own task.
async fn accept_loop(listener: Listener, shared: Shared) {
    let mut stop = shared.stop.clone();
    let mut logged: Option<Instant> = None;
    let limits = shared.limits;
    loop {
        let permit = match Arc::clone(&shared.permits).try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                shared.state.metrics.connection_limit_hit();
                if logged.is_none_or(|at| at.elapsed() >= LIMIT_LOG_INTERVAL) {
                    logged = Some(Instant::now());
                    tracing::warn!(
                        max_connections = limits.max_connections,
                        "connection limit reached: closing idle connections, new ones wait"
                    );
                }
                tokio::select! {
                    p = make_room(&shared.permits, &shared.pressure) => match p {
                        Some(p) => p,
                        None => return,
                    },
                    _ = stop.changed() => return,
                }
            }
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.tcp.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors and the like: accepting again at once
                    // would spin; connection-level errors (a reset before accept) are
                    // harmless and retried immediately.
                    if !is_connection_error(&e) {
                        tracing::error!(error = %e, "cannot accept connections");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                    continue;
                }
            },
            _ = stop.changed() => return,
        };
        let lifetime = Lifetime {
            stop: shared.stop.clone(),
            pressure: Arc::clone(&shared.pressure),
            _done: shared.done.clone(),
            _permit: permit,
        };
        let (app, state) = (shared.app.clone(), Arc::clone(&shared.state));
        match &listener.tls {
            None => {
                tokio::spawn(connection(
                    stream, peer, false, app, limits, state, lifetime,
                ));
            }
            Some(acceptor) => {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    // The handshake is bounded like a request header: a client that
                    // opens a TLS connection and stalls holds a descriptor too.
                    let handshake = acceptor.accept(stream);
                    match tokio::time::timeout(limits.header_read_timeout, handshake).await {
                        Ok(Ok(tls)) => {
                            connection(tls, peer, true, app, limits, state, lifetime).await
                        }
                        Ok(Err(e)) => {
                            state.metrics.connection_closed("tls_handshake_failed");
                            tracing::debug!(error = %e, %peer, "TLS handshake failed");
                        }
                        Err(_) => {
                            state.metrics.connection_closed("tls_handshake_timeout");
                        }
                    }
                });
            }
        }
    }
}

/// Asks idle connections to close until one has, and returns its permit (`None` once
/// the semaphore is closed, which it never is).
async fn make_room(permits: &Arc<Semaphore>, pressure: &Notify) -> Option<OwnedSemaphorePermit> {
    loop {
        pressure.notify_waiters();
        tokio::select! {
            p = Arc::clone(permits).acquire_owned() => return p.ok(),
            () = tokio::time::sleep(PRESSURE_INTERVAL) => {}
        }
    }
}

/// What ties a connection to the server: the signals it listens to, and what it
/// holds until it closes.
struct Lifetime {
    /// Changes (its sender dropped) when the server shuts down.
    stop: watch::Receiver<()>,
    /// Notified while the server is at `max_connections`.
    pressure: Arc<Notify>,
    /// Held so the server knows when every connection has closed.
    _done: watch::Receiver<()>,
    /// One of `max_connections`, given back on close.
    _permit: OwnedSemaphorePermit,
}

fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// Which phase a connection is in, for its watchdog.
#[derive(Debug, Clone, Copy)]
enum Phase {
    Idle(Instant),
    Header(Instant),
    Busy,
}

/// A connection's phase, shared by its socket, its requests and its watchdog. A
/// change of phase does not wake the watchdog (that was two or three wake-ups and
/// timer re-registrations per request): the watchdog never sleeps past the earliest
/// deadline any later phase could have (see [`next_check`]), and looks again then.
struct Activity {
    phase: Mutex<Phase>,
}

impl Activity {
    fn set(&self, phase: Phase) {
        if let Ok(mut p) = self.phase.lock() {
            *p = phase;
        }
    }

    fn phase(&self) -> Phase {
        self.phase.lock().map_or(Phase::Busy, |p| *p)
    }

    /// Bytes arrived: an idle connection starts its header clock.
    fn received(&self) {
        if let Ok(mut p) = self.phase.lock()
            && matches!(*p, Phase::Idle(_))
        {
            *p = Phase::Header(Instant::now());
        }
    }
}

/// Marks the connection idle again when dropped, i.e. when hyper has sent the whole
/// response body (or given up on it).
struct BusyGuard(Arc<Activity>);

impl Drop for BusyGuard {
    fn drop(&mut self) {
        self.0.set(Phase::Idle(Instant::now()));
    }
}

async fn connection<S>(
    stream: S,
    peer: SocketAddr,
    tls: bool,
    app: Router,
    limits: ConnectionLimits,
    state: Arc<AppState>,
    lifetime: Lifetime,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    // `_done` and `_permit` are bound (not `_`) so they live until the connection ends.
    let Lifetime {
        mut stop,
        pressure,
        _done,
        _permit,
    } = lifetime;
    let _open = OpenGauge::new(Arc::clone(&state));
    let activity = Arc::new(Activity {
        phase: Mutex::new(Phase::Idle(Instant::now())),
    });
    let io = TokioIo::new(Watched {
        inner: stream,
        activity: Arc::clone(&activity),
    });
    let service = hyper::service::service_fn({
        let activity = Arc::clone(&activity);
        move |req: Request<Incoming>| {
            activity.set(Phase::Busy);
            let guard = BusyGuard(Arc::clone(&activity));
            let mut req = req.map(Body::new);
            normalize_path(req.uri_mut());
            req.extensions_mut().insert(PeerAddr(peer));
            req.extensions_mut().insert(Encrypted(tls));
            let app = app.clone();
            async move {
                let resp = tower::ServiceExt::oneshot(app, req).await?;
                // The guard lives as long as the body hyper is still sending.
                Ok::<_, std::convert::Infallible>(resp.map(|body| {
                    Body::new(body.map_frame(move |frame| {
                        let _sending = &guard;
                        frame
                    }))
                }))
            }
        }
    });
    let conn = hyper::server::conn::http1::Builder::new().serve_connection(io, service);
    tokio::pin!(conn);
    let mut stopping = false;
    let watchdog = tokio::time::sleep_until(next_check(activity.phase(), limits, Instant::now()));
    tokio::pin!(watchdog);
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                return;
            }
            () = watchdog.as_mut() => {
                // Only the deadline of the phase the connection is in now can close it.
                let now = Instant::now();
                let phase = activity.phase();
                if let Some((at, reason)) = deadline_of(phase, limits)
                    && now >= at
                {
                    state.metrics.connection_closed(reason);
                    tracing::debug!(reason, "closing a connection");
                    // Dropping the connection closes the socket.
                    return;
                }
                watchdog.as_mut().reset(next_check(phase, limits, now));
            }
            () = pressure.notified() => {
                if let Phase::Idle(since) = activity.phase()
                    && since.elapsed() >= EVICTABLE_AFTER
                {
                    state.metrics.connection_closed("idle_at_limit");
                    tracing::debug!("closing an idle connection to make room");
                    return;
                }
            }
            _ = stop.changed(), if !stopping => {
                // Idle connections close now; a running request finishes first.
                stopping = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

/// When the watchdog of a connection in `phase` at `now` looks again: at its
/// deadline, or sooner if a later phase could bring the deadline forward. A phase
/// entered at `t >= now` has its deadline at `t` plus a timeout, so no deadline can
/// come before `now` plus the shorter timeout.
fn next_check(phase: Phase, limits: ConnectionLimits, now: Instant) -> Instant {
    let soonest = now + limits.idle_timeout.min(limits.header_read_timeout);
    deadline_of(phase, limits).map_or(soonest, |(at, _)| at.min(soonest))
}

/// Counts the connection in `scim_bridge_connections_open` while it lives.
struct OpenGauge(Arc<AppState>);

impl OpenGauge {
    fn new(state: Arc<AppState>) -> Self {
        state.metrics.connection_open(true);
        Self(state)
    }
}

impl Drop for OpenGauge {
    fn drop(&mut self) {
        self.0.metrics.connection_open(false);
    }
}

/// When a connection in `phase` is closed, and the reason counted in `/metrics`.
fn deadline_of(phase: Phase, limits: ConnectionLimits) -> Option<(Instant, &'static str)> {
    match phase {
        Phase::Idle(since) => Some((since + limits.idle_timeout, "idle_timeout")),
        Phase::Header(since) => Some((since + limits.header_read_timeout, "header_timeout")),
        Phase::Busy => None,
    }
}

/// Clients that build URLs from a tenant URL pasted with a trailing slash send
/// `/scim/v2/entra//Users`; others add a trailing slash. Empty path segments never mean
/// anything here (no id or name is empty), so repeated slashes collapse and a trailing
/// slash goes, before routing. Percent-encoded slashes (`%2F`) are data and stay.
pub(crate) fn normalize_path(uri: &mut Uri) {
    let path = uri.path();
    if !path.contains("//") && (path.len() <= 1 || !path.ends_with('/')) {
        return;
    }
    let mut clean = String::with_capacity(path.len());
    for segment in path.split('/').filter(|s| !s.is_empty()) {
        clean.push('/');
        clean.push_str(segment);
    }
    if clean.is_empty() {
        clean.push('/');
    }
    if let Some(query) = uri.query() {
        clean.push('?');
        clean.push_str(query);
    }
    let mut parts = uri.clone().into_parts();
    // The segments came from a valid path, so this parses; if it somehow did not, the
    // request is routed as it came.
    let Ok(pq) = clean.parse() else {
        return;
    };
    parts.path_and_query = Some(pq);
    if let Ok(new) = Uri::from_parts(parts) {
        *uri = new;
    }
}

/// The client stream (TCP or TLS), telling the watchdog when bytes arrive.
struct Watched<S> {
    inner: S,
    activity: Arc<Activity>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.received();
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::{ConnectionLimits, Instant, Phase, deadline_of, next_check, normalize_path};
    use axum::http::Uri;
    use std::time::Duration;

    /// The watchdog is not woken when the phase changes, so it must never sleep past
    /// a deadline that a phase entered after it fell asleep could have.
    #[test]
    fn the_watchdog_never_sleeps_past_a_later_phase_deadline() {
        let s = Duration::from_secs;
        for (idle, header) in [(s(60), s(10)), (s(5), s(30)), (s(7), s(7))] {
            let limits = ConnectionLimits {
                header_read_timeout: header,
                idle_timeout: idle,
                max_connections: 1,
            };
            let now = Instant::now();
            for phase in [
                Phase::Idle(now - s(3)),
                Phase::Header(now - s(2)),
                Phase::Busy,
            ] {
                let check = next_check(phase, limits, now);
                assert!(check > now);
                if let Some((at, _)) = deadline_of(phase, limits) {
                    assert!(check <= at, "{phase:?}");
                }
                // A request that starts (or a connection that goes idle) any time
                // from now on: its deadline is not before the check.
                for later in [Phase::Idle(now), Phase::Header(now)] {
                    if let Some((at, _)) = deadline_of(later, limits) {
                        assert!(check <= at, "{phase:?} then {later:?}");
                    }
                }
            }
        }
    }

    fn norm(s: &str) -> String {
        let mut u: Uri = s.parse().unwrap();
        normalize_path(&mut u);
        u.to_string()
    }

    #[test]
    fn slashes_collapse_and_trailing_ones_go() {
        assert_eq!(norm("/scim/v2/entra/Users/"), "/scim/v2/entra/Users");
        assert_eq!(norm("/scim/v2/entra//Users"), "/scim/v2/entra/Users");
        assert_eq!(
            norm("//scim//v2/entra/Users//?a=b/"),
            "/scim/v2/entra/Users?a=b/"
        );
        assert_eq!(norm("/"), "/");
        assert_eq!(norm("//"), "/");
        assert_eq!(norm("/Groups/IP%2FIT"), "/Groups/IP%2FIT");
        assert_eq!(norm("/healthz"), "/healthz");
    }
}
