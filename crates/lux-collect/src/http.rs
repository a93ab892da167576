//! The HTTP collector (`[[collect.http]]`): an axum server on the collectors' runtime.
//!
//! `POST /v1/records` with `Authorization: Bearer <token>` and a body of newline-delimited
//! records (LF or CRLF; empty lines are skipped) writes one raw record per line, keyed by the
//! sender's IP address. The answer says what became of the records:
//!
//! - `200 {"accepted": N}` once all N records are committed to the raw topic (not before: the
//!   same "acknowledge only what the log holds" rule as RADIUS), so a sender that got no 200
//!   sends again (at-least-once);
//! - `401` for a missing or wrong token (compared in constant time, never logged);
//! - `413` for a body over `max_body` (told by its Content-Length before it is read, or while
//!   it is read);
//! - `503` with `Retry-After` when the listener's queue is full (the log is behind) or the
//!   collector is stopping: nothing of the request was written;
//! - `400` for a body with no record, or one that broke off.
//!
//! A line longer than `max_line` is written cut at that size and counted as `oversized`.
//! `GET /health` answers 200 without a token. Every outcome has its counter. With `tls_cert`
//! and `tls_key` the listener speaks HTTPS (rustls, as the syslog TLS listener); handshakes run
//! in their own tasks, so a slow or broken client holds up no other.
//!
//! Connections are bounded: at most `max_connections` are open at once (one more is closed as
//! soon as it is accepted and counted as `connections_refused`), and one that moves no byte
//! either way for `idle_timeout` is closed and counted as `idle_timeouts`, so half-open, slow
//! and forgotten keep-alive connections cannot pile up and lock out the other senders.

use crate::metrics::ListenerMetrics;
use crate::source::{Frames, QueueError, QueueSender};
use axum::body::Bytes;
use axum::extract::connect_info::Connected;
use axum::extract::{ConnectInfo, DefaultBodyLimit, FromRequest, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::{IncomingStream, Listener};
use axum::Router;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

/// The path records are posted to.
pub const RECORDS_PATH: &str = "/v1/records";
/// Seconds a refused sender is asked to wait (`Retry-After`).
const RETRY_AFTER_SECONDS: &str = "1";

/// What the request handlers of one listener share.
pub(crate) struct HttpShared {
    pub token: Vec<u8>,
    pub max_body: usize,
    pub max_line: usize,
    pub queue: QueueSender,
    pub metrics: Arc<ListenerMetrics>,
}

/// The longest a TLS handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The sender's address, over plain TCP or TLS.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Peer(pub SocketAddr);

impl<L: Listener<Addr = SocketAddr>> Connected<IncomingStream<'_, Guarded<L>>> for Peer {
    fn connect_info(stream: IncomingStream<'_, Guarded<L>>) -> Self {
        Peer(*stream.remote_addr())
    }
}

/// A listener whose connections are bounded in number and closed when idle (see the module
/// docs).
pub(crate) struct Guarded<L> {
    inner: L,
    slots: Arc<Semaphore>,
    idle_timeout: Duration,
    metrics: Arc<ListenerMetrics>,
}

impl<L> Guarded<L> {
    pub(crate) fn new(inner: L, max_connections: usize, idle_timeout: Duration, metrics: Arc<ListenerMetrics>) -> Self {
        Guarded { inner, slots: Arc::new(Semaphore::new(max_connections)), idle_timeout, metrics }
    }
}

impl<L: Listener> Listener for Guarded<L> {
    type Io = GuardedIo<L::Io>;
    type Addr = L::Addr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let (io, addr) = self.inner.accept().await;
            let Ok(slot) = self.slots.clone().try_acquire_owned() else {
                ListenerMetrics::inc(&self.metrics.connections_refused);
                drop(io);
                continue;
            };
            ListenerMetrics::inc(&self.metrics.connections_accepted);
            ListenerMetrics::inc(&self.metrics.connections_open);
            let idle = Box::pin(tokio::time::sleep(self.idle_timeout));
            let io =
                GuardedIo { io, _slot: slot, idle, idle_timeout: self.idle_timeout, metrics: self.metrics.clone() };
            return (io, addr);
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// A connection of a [`Guarded`] listener: holds its slot, and fails with `TimedOut` once no
/// byte moved either way for `idle_timeout`.
pub(crate) struct GuardedIo<Io> {
    io: Io,
    _slot: OwnedSemaphorePermit,
    idle: Pin<Box<tokio::time::Sleep>>,
    idle_timeout: Duration,
    metrics: Arc<ListenerMetrics>,
}

impl<Io> GuardedIo<Io> {
    fn moved(&mut self) {
        let deadline = tokio::time::Instant::now() + self.idle_timeout;
        self.idle.as_mut().reset(deadline);
    }

    /// On `Pending`: whether the connection has been idle too long (counted once).
    fn timed_out(&mut self, cx: &mut Context<'_>) -> bool {
        if self.idle.as_mut().poll(cx).is_ready() {
            ListenerMetrics::inc(&self.metrics.idle_timeouts);
            // Far ahead, so that the other direction's poll does not count it again.
            self.moved();
            return true;
        }
        false
    }
}

fn idle_error() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::TimedOut, "the connection was idle for longer than idle_timeout")
}

impl<Io> Drop for GuardedIo<Io> {
    fn drop(&mut self) {
        self.metrics.connections_open.fetch_sub(1, Ordering::Relaxed);
    }
}

impl<Io: AsyncRead + Unpin> AsyncRead for GuardedIo<Io> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.io).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    self.moved();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending if self.timed_out(cx) => Poll::Ready(Err(idle_error())),
            other => other,
        }
    }
}

impl<Io: AsyncWrite + Unpin> AsyncWrite for GuardedIo<Io> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        match Pin::new(&mut self.io).poll_write(cx, buf) {
            Poll::Ready(Ok(n)) => {
                if n > 0 {
                    self.moved();
                }
                Poll::Ready(Ok(n))
            }
            Poll::Pending if self.timed_out(cx) => Poll::Ready(Err(idle_error())),
            other => other,
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// Accepts TCP connections and hands over those whose TLS handshake succeeded.
pub(crate) struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local_addr: SocketAddr,
}

impl TlsListener {
    /// Starts accepting on `tcp` (inside the runtime); failed handshakes are counted.
    pub(crate) fn new(tcp: TcpListener, acceptor: TlsAcceptor, metrics: Arc<ListenerMetrics>) -> std::io::Result<Self> {
        let local_addr = tcp.local_addr()?;
        let (tx, ready) = mpsc::channel(64);
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    accepted = tcp.accept() => accepted,
                    () = tx.closed() => return, // the server stopped: release the port
                };
                let Ok((stream, peer)) = accepted else {
                    // Out of file descriptors and the like: let it pass.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                let (acceptor, tx, metrics) = (acceptor.clone(), tx.clone(), metrics.clone());
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            let _ = tx.send((tls, peer)).await;
                        }
                        _ => ListenerMetrics::inc(&metrics.tls_handshake_failures),
                    }
                });
            }
        });
        Ok(TlsListener { ready, local_addr })
    }
}

impl Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(connection) => connection,
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local_addr)
    }
}

/// The listener's routes.
pub(crate) fn router(shared: Arc<HttpShared>) -> Router {
    let limit = shared.max_body;
    Router::new()
        .route(RECORDS_PATH, post(post_records))
        .route("/health", get(|| async { "ok\n" }))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(shared)
}

/// Whether `given` equals `expected`, in a time that depends on neither's content.
pub fn same_token(given: &[u8], expected: &[u8]) -> bool {
    let mut difference = given.len() ^ expected.len();
    for (i, byte) in expected.iter().enumerate() {
        difference |= usize::from(given.get(i).copied().unwrap_or(0) ^ byte);
    }
    std::hint::black_box(difference) == 0
}

/// Whether the request carries `Authorization: Bearer <token>` with the listener's token.
fn authorized(headers: &HeaderMap, token: &[u8]) -> bool {
    let Some(value) = headers.get(header::AUTHORIZATION) else { return false };
    let value = value.as_bytes();
    let (scheme, given) = value.split_at(value.len().min(7));
    scheme.eq_ignore_ascii_case(b"bearer ") && same_token(given.trim_ascii(), token)
}

fn refuse(status: StatusCode, message: &str) -> Response {
    (status, format!("{message}\n")).into_response()
}

fn overloaded(metrics: &ListenerMetrics, message: &str) -> Response {
    ListenerMetrics::inc(&metrics.requests_overloaded);
    let mut response = refuse(StatusCode::SERVICE_UNAVAILABLE, message);
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER_SECONDS));
    response
}

/// The body's lines as frames; lines over `max_line` cut (and counted).
fn frames_of(body: &[u8], max_line: usize, metrics: &ListenerMetrics) -> Frames {
    let mut frames = Frames::default();
    for line in body.split(|b| *b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        if line.len() > max_line {
            ListenerMetrics::inc(&metrics.oversized);
        }
        frames.push(line.get(..max_line).unwrap_or(line));
    }
    frames
}

async fn post_records(
    State(shared): State<Arc<HttpShared>>,
    ConnectInfo(Peer(peer)): ConnectInfo<Peer>,
    request: Request,
) -> Response {
    let metrics = &shared.metrics;
    if !authorized(request.headers(), &shared.token) {
        ListenerMetrics::inc(&metrics.requests_unauthorized);
        let mut response =
            refuse(StatusCode::UNAUTHORIZED, "missing or wrong bearer token (Authorization: Bearer ...)");
        response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return response;
    }
    let declared =
        request.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    let too_large = || {
        ListenerMetrics::inc(&metrics.requests_too_large);
        refuse(StatusCode::PAYLOAD_TOO_LARGE, &format!("the body is over the limit of {} bytes", shared.max_body))
    };
    if declared.is_some_and(|length| length > shared.max_body as u64) {
        return too_large();
    }
    let body = match Bytes::from_request(request, &()).await {
        Ok(body) => body,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => return too_large(),
        Err(rejection) => {
            ListenerMetrics::inc(&metrics.requests_bad);
            return refuse(StatusCode::BAD_REQUEST, &format!("cannot read the body: {}", rejection.body_text()));
        }
    };
    let mut frames = frames_of(&body, shared.max_line, metrics);
    drop(body);
    let count = frames.len();
    if count == 0 {
        ListenerMetrics::inc(&metrics.requests_bad);
        return refuse(StatusCode::BAD_REQUEST, "no record in the body (one record per line)");
    }
    let (done, committed) = oneshot::channel();
    frames.done = Some(done);
    match shared.queue.try_send(peer, frames) {
        Ok(()) => ListenerMetrics::add(&metrics.received, count as u64),
        Err(QueueError::Full) => return overloaded(metrics, "the collector is behind: retry later"),
        Err(QueueError::Closed) => return overloaded(metrics, "the collector is stopping: retry later"),
    }
    match committed.await {
        Ok(()) => {
            ListenerMetrics::inc(&metrics.requests_accepted);
            let mut response = format!("{{\"accepted\":{count}}}\n").into_response();
            response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            response
        }
        // The source went away before committing them (stopped or failed): not written.
        Err(_) => overloaded(metrics, "the collector stopped before the records were committed: retry later"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_whole() {
        assert!(same_token(b"s3cret-token", b"s3cret-token"));
        assert!(!same_token(b"s3cret-toke", b"s3cret-token"));
        assert!(!same_token(b"s3cret-token!", b"s3cret-token"));
        assert!(!same_token(b"", b"s3cret-token"));
        assert!(!same_token(b"S3cret-token", b"s3cret-token"));
    }

    #[test]
    fn only_the_bearer_scheme_with_the_token_passes() {
        let with = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
            authorized(&headers, b"tok")
        };
        assert!(with("Bearer tok"));
        assert!(with("bearer  tok "));
        assert!(!with("Basic tok"));
        assert!(!with("Bearer tok2"));
        assert!(!with("Bearer"));
        assert!(!authorized(&HeaderMap::new(), b"tok"));
    }

    #[test]
    fn lines_become_frames_cut_at_max_line() {
        let metrics = ListenerMetrics::default();
        let frames = frames_of(b"one\r\n\ntwo\nthree-is-long\nfour", 5, &metrics);
        let texts: Vec<&[u8]> = frames.frames.iter().map(|&(s, e)| &frames.data[s..e]).collect();
        assert_eq!(texts, [&b"one"[..], b"two", b"three", b"four"]);
        assert_eq!(metrics.get("oversized"), 1);
    }
}
