//! The server's connections: accepted, counted and timed here rather than
//! by `axum::serve`, which offers no header-read or idle timeout and no
//! cap, so that no client (slow, idle or many) can use up the process's
//! file descriptors and shut everyone else out.
//!
//! Three tiers, by how many connections are open when one arrives:
//!
//! - up to `max_connections`, it is served: kept alive between requests,
//!   closed when its next request's headers take longer than
//!   `header_read` from their first byte (a new connection's from when it
//!   opened), or when it waits silent for its next request longer than
//!   `idle`;
//! - beyond that, up to `reserve` more are read for one request each
//!   within `header_read`: `/healthz` and `/readyz` are answered as always
//!   (a health check must tell "full" from "down"), anything else gets a
//!   503 that says the server is full, with `Retry-After`;
//! - beyond those, the 503 is written at once, unread, and the connection
//!   closed.
//!
//! A request's own time, from its headers to its answer, is bounded in the
//! router (`limits::bound_time`); a live stream's answer is immediate and
//! the stream then holds its connection busy, so neither timeout here ends
//! it (it is bounded in number instead, `max_streams`).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::ConnectInfo;
use axum::http::Request;

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, watch};
use tokio::time::Instant;
use tower::ServiceExt;

use super::limits;
use crate::config::ConnectionLimits;

/// How long a turned-away connection gets to take its 503 (and what it
/// sent is read and dropped meanwhile, so closing does not reset the
/// connection before the client has read the answer).
const TURN_AWAY_TIME: Duration = Duration::from_secs(2);

/// How long to wait before accepting again when `accept` fails for want
/// of descriptors: a retry at once would spin on the same error.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Serves `app` on `listener` until `shutdown` resolves, then stops
/// accepting, asks every connection to finish its request and close, and
/// waits for them (at most `request` plus `header_read`: a request still
/// running then is cut off).
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let limits = Arc::new(limits);
    let ordinary = Arc::new(Semaphore::new(limits.max_connections));
    let reserve = Arc::new(Semaphore::new(limits.reserve));
    let turning_away = Arc::new(Semaphore::new(ConnectionLimits::TURNING_AWAY));
    // Each connection holds a receiver; when none is left, all are closed.
    let (open_tx, open_rx) = watch::channel(());
    let (stop_tx, stop_rx) = watch::channel(false);
    let full_warned = AtomicI64::new(i64::MIN);
    let mut shutdown = pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    accept_failed(&e).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let tier = if let Ok(permit) = ordinary.clone().try_acquire_owned() {
            Some((Tier::Ordinary, permit))
        } else {
            warn_full(&full_warned, &limits);
            reserve
                .clone()
                .try_acquire_owned()
                .ok()
                .map(|p| (Tier::Reserve, p))
        };
        match tier {
            Some((tier, permit)) => {
                let connection = Connection {
                    peer,
                    tier,
                    app: app.clone(),
                    limits: limits.clone(),
                    stop: stop_rx.clone(),
                    _slot: permit,
                    _open: open_rx.clone(),
                };
                tokio::spawn(connection.run(stream));
            }
            None => match turning_away.clone().try_acquire_owned() {
                Ok(permit) => {
                    let open = open_rx.clone();
                    let max = limits.max_connections;
                    tokio::spawn(async move {
                        turn_away(stream, max).await;
                        drop((permit, open));
                    });
                }
                // Closed unanswered: answering would take descriptors the
                // flood is already short of.
                Err(_) => drop(stream),
            },
        }
    }
    drop(listener);
    drop(open_rx);
    let _ = stop_tx.send(true);
    let grace = limits.request + limits.header_read;
    if tokio::time::timeout(grace, open_tx.closed()).await.is_err() {
        tracing::warn!(
            open = open_tx.receiver_count(),
            "connections still open after the grace period; closing them"
        );
    }
}

/// Says, at most once a minute, that the server is full: a flood or a
/// limit set too low is something the operator must hear of, but not once
/// per connection.
fn warn_full(last: &AtomicI64, limits: &ConnectionLimits) {
    let now = super::state::now_unix();
    let before = last.load(Ordering::Relaxed);
    if now.saturating_sub(before) >= 60
        && last
            .compare_exchange(before, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    {
        tracing::warn!(
            max_connections = limits.max_connections,
            "the server is at its connection limit; new connections get 503 (health checks are still answered)"
        );
    }
}

async fn accept_failed(e: &std::io::Error) {
    use std::io::ErrorKind;
    match e.kind() {
        // The client gave up between its SYN and our accept: nothing to do.
        ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset | ErrorKind::Interrupted => {}
        _ => {
            // EMFILE and ENFILE above all: the connection stays queued
            // until a descriptor is free.
            tracing::error!(error = %e, "cannot accept a connection");
            tokio::time::sleep(ACCEPT_BACKOFF).await;
        }
    }
}

/// Writes a 503 to a connection beyond every tier and closes it.
async fn turn_away(mut stream: TcpStream, max: usize) {
    let body = format!(
        "Jarvis is serving as many connections as it may (max_connections = {max}); try again in a few seconds.\n"
    );
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\nretry-after: {}\r\ncache-control: no-store\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        limits::RETRY_AFTER_SECS,
        body.len()
    );
    let _ = tokio::time::timeout(TURN_AWAY_TIME, async {
        stream.write_all(answer.as_bytes()).await?;
        stream.shutdown().await?;
        // Unread bytes at close make the kernel reset the connection,
        // and a reset can overtake the answer; so read until the client
        // closes (or the time is up).
        let mut sink = [0u8; 1024];
        while stream.read(&mut sink).await? > 0 {}
        Ok::<_, std::io::Error>(())
    })
    .await;
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Tier {
    /// Within `max_connections`.
    Ordinary,
    /// Within the reserve: one request, health checks only.
    Reserve,
}

/// One accepted connection, and what it holds while it is open.
struct Connection {
    peer: SocketAddr,
    tier: Tier,
    app: Router,
    limits: Arc<ConnectionLimits>,
    stop: watch::Receiver<bool>,
    /// Its place under the cap, given back when it closes.
    _slot: OwnedSemaphorePermit,
    /// Tells `serve` it is still open.
    _open: watch::Receiver<()>,
}

impl Connection {
    async fn run(mut self, stream: TcpStream) {
        let activity = Arc::new(Activity::new());
        let io = TokioIo::new(Watched {
            inner: stream,
            activity: activity.clone(),
        });
        let (peer, tier, app) = (self.peer, self.tier, self.app.clone());
        let requests = activity.clone();
        let service = hyper::service::service_fn(move |mut req: Request<Incoming>| {
            let busy = Busy::begin(&requests);
            req.extensions_mut().insert(ConnectInfo(peer));
            let app = app.clone();
            async move {
                let req = req.map(Body::new);
                let response = if tier == Tier::Reserve && !limits::is_health(req.uri().path()) {
                    limits::full(req.uri().path())
                } else {
                    match app.oneshot(req).await {
                        Ok(r) => r,
                        Err(never) => match never {},
                    }
                };
                Ok::<_, Infallible>(response.map(|body| Tracked { body, _busy: busy }))
            }
        });
        let mut builder = http1::Builder::new();
        // hyper's own header-read timeout also runs while a kept-alive
        // connection waits for its next request, which is the idle
        // timeout's to bound: `Activity` times both instead.
        builder
            .header_read_timeout(None)
            .keep_alive(self.tier == Tier::Ordinary);
        let conn = builder.serve_connection(io, service);
        let mut conn = pin!(conn);
        let mut stopping = false;
        loop {
            let deadline = activity.deadline(&self.limits);
            tokio::select! {
                done = conn.as_mut() => {
                    if let Err(e) = done {
                        tracing::debug!(peer = %self.peer, error = %e, "connection ended");
                    }
                    return;
                }
                () = tokio::time::sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => {
                    // A request may have begun while the timer ran.
                    if activity.deadline(&self.limits).is_some_and(|d| d <= Instant::now()) {
                        tracing::debug!(peer = %self.peer, "connection timed out waiting for a request");
                        // Dropping the connection closes it.
                        return;
                    }
                }
                () = activity.changed.notified() => {}
                _ = self.stop.wait_for(|s| *s), if !stopping => {
                    stopping = true;
                    // Idle connections close now, busy ones after their
                    // answer.
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

/// What a connection's timeouts are measured from, shared by its reads
/// (the socket), its requests (the service) and its answers (their
/// bodies). Times are milliseconds since the connection opened.
struct Activity {
    opened: Instant,
    /// Requests whose answer is not finished yet.
    busy: AtomicUsize,
    /// When the connection last became idle (no request in hand).
    idle_since: AtomicU64,
    /// When the first byte of a request not yet whole arrived, or [`NONE`].
    head_since: AtomicU64,
    /// Wakes the connection's timer when any of these change.
    changed: Notify,
}

const NONE: u64 = u64::MAX;

impl Activity {
    fn new() -> Activity {
        Activity {
            opened: Instant::now(),
            busy: AtomicUsize::new(0),
            idle_since: AtomicU64::new(0),
            // A new connection is there to send a request: its headers are
            // timed from the moment it opened, not from their first byte.
            head_since: AtomicU64::new(0),
            changed: Notify::new(),
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(NONE - 1)
    }

    fn at(&self, ms: u64) -> Instant {
        self.opened + Duration::from_millis(ms)
    }

    /// When the connection is to be closed if nothing changes; `None`
    /// while a request is in hand (its time is the request timeout's).
    fn deadline(&self, limits: &ConnectionLimits) -> Option<Instant> {
        if self.busy.load(Ordering::Acquire) > 0 {
            return None;
        }
        match self.head_since.load(Ordering::Acquire) {
            NONE => Some(self.at(self.idle_since.load(Ordering::Acquire)) + limits.idle),
            since => Some(self.at(since) + limits.header_read),
        }
    }

    /// Bytes arrived: while idle, they start a request's headers.
    fn read(&self) {
        if self.busy.load(Ordering::Acquire) == 0
            && self
                .head_since
                .compare_exchange(NONE, self.now(), Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            self.changed.notify_one();
        }
    }
}

/// A request in hand, from its headers until its answer is written (or
/// dropped): the connection is not idle meanwhile.
struct Busy(Arc<Activity>);

impl Busy {
    fn begin(activity: &Arc<Activity>) -> Busy {
        activity.busy.fetch_add(1, Ordering::AcqRel);
        activity.head_since.store(NONE, Ordering::Release);
        activity.changed.notify_one();
        Busy(activity.clone())
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        let a = &self.0;
        a.idle_since.store(a.now(), Ordering::Release);
        if a.busy.fetch_sub(1, Ordering::AcqRel) == 1 {
            a.head_since.store(NONE, Ordering::Release);
        }
        a.changed.notify_one();
    }
}

/// An answer's body, holding its request's [`Busy`] until hyper has
/// written it all (or the client went away) and drops it.
struct Tracked {
    body: Body,
    _busy: Busy,
}

impl http_body::Body for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// The socket, telling [`Activity`] when bytes arrive.
struct Watched {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.read();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
