//! Syslog over TCP (RFC 6587) and over TLS (RFC 5425).
//!
//! Each connection's framing is detected from its first bytes: digits followed by a space mean
//! octet counting (`123 <34>1 ...`), anything else newline-delimited frames. Frames longer than
//! `max_frame` are cut at that size and counted (`oversized`); in octet-counting mode the rest of
//! such a frame is skipped, and a count that is not one (no digits, more than 9 digits, no space
//! after them) closes the connection (`framing_errors`). Garbage never panics; it becomes
//! newline-delimited records for the decoder to dead-letter.
//!
//! A reader that cannot queue its frames (the log is behind) stops reading until it can, so the
//! kernel's window fills and the sender slows down. Idle connections are closed after
//! `idle_timeout`; at most `max_connections` are open, further ones are closed at once and counted.
//!
//! Memory: besides the listener's queue, each connection holds its read buffer (4 KiB, growing
//! to 64 KiB while its sender bursts, shrinking back once idle) and at most one unfinished
//! frame (`max_frame`): at most `max_connections` x (64 KiB + `max_frame`) in all.

use crate::metrics::{ListenerMetrics, RateLimited};
use crate::source::{Frames, QueueError, QueueSender};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

/// Most digits of an octet count (999,999,999 bytes).
const MAX_COUNT_DIGITS: usize = 9;
/// Smallest and largest read sizes of a connection (it adapts to its sender's pace).
const MIN_READ: usize = 4 << 10;
const MAX_READ: usize = 64 << 10;

/// How a connection's frames are delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// Not known yet: the first bytes decide.
    Unknown,
    /// `MSG-LEN SP SYSLOG-MSG` (RFC 6587 3.4.1).
    OctetCounting,
    /// Frames end with LF (RFC 6587 3.4.2); a CR before it is removed.
    Newline,
}

/// A connection whose octet counting went wrong: it cannot be resynchronised.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad octet count {found:?} (expected 1 to {MAX_COUNT_DIGITS} digits and a space)")]
pub struct FramingError {
    /// The first bytes where a count was expected.
    pub found: String,
}

/// Splits a connection's byte stream into frames.
#[derive(Debug)]
pub struct Framer {
    framing: Framing,
    max_frame: usize,
    /// Bytes read and not yet parsed (the start of a frame).
    buf: Vec<u8>,
    /// Octet counting: bytes of a cut frame still to skip.
    skip: usize,
    /// Newline: a cut frame's rest is being skipped up to its LF.
    discarding: bool,
    /// Frames cut at `max_frame` so far.
    pub oversized: u64,
    read_size: usize,
}

impl Framer {
    pub fn new(max_frame: usize) -> Framer {
        Framer {
            framing: Framing::Unknown,
            max_frame: max_frame.max(1),
            buf: Vec::new(),
            skip: 0,
            discarding: false,
            oversized: 0,
            read_size: MIN_READ,
        }
    }

    pub fn framing(&self) -> Framing {
        self.framing
    }

    /// The buffer to read into, with room for the next read.
    pub fn read_buffer(&mut self) -> &mut Vec<u8> {
        if self.buf.is_empty() && self.buf.capacity() > 2 * self.read_size {
            // An idle connection does not keep a burst's buffer.
            self.buf = Vec::new();
        }
        self.buf.reserve(self.read_size);
        &mut self.buf
    }

    /// Adapts the next read's size to how much this one brought.
    pub fn note_read(&mut self, n: usize) {
        if n >= self.read_size {
            self.read_size = (self.read_size * 2).min(MAX_READ);
        } else if n < self.read_size / 4 {
            self.read_size = (self.read_size / 2).max(MIN_READ);
        }
    }

    /// Whether a frame has been started and not finished.
    pub fn has_partial_frame(&self) -> bool {
        !self.buf.is_empty() || self.skip > 0
    }

    /// Feeds bytes (instead of reading into [`Framer::read_buffer`]) and parses them.
    pub fn feed(&mut self, bytes: &[u8], out: &mut Frames) -> Result<(), FramingError> {
        self.buf.extend_from_slice(bytes);
        self.parse(out)
    }

    /// Moves every complete frame of the buffer to `out`.
    pub fn parse(&mut self, out: &mut Frames) -> Result<(), FramingError> {
        let mut start = 0;
        let result = self.parse_from(&mut start, out);
        self.buf.drain(..start.min(self.buf.len()));
        result
    }

    fn parse_from(&mut self, start: &mut usize, out: &mut Frames) -> Result<(), FramingError> {
        loop {
            let avail = self.buf.get(*start..).unwrap_or_default();
            if avail.is_empty() {
                return Ok(());
            }
            if self.skip > 0 {
                let n = self.skip.min(avail.len());
                self.skip -= n;
                *start += n;
                continue;
            }
            match self.framing {
                Framing::Unknown => {
                    let digits = avail.iter().take(MAX_COUNT_DIGITS + 1).take_while(|b| b.is_ascii_digit()).count();
                    if digits == avail.len() && digits <= MAX_COUNT_DIGITS {
                        return Ok(()); // only digits so far: wait for what follows them
                    }
                    let counted = (1..=MAX_COUNT_DIGITS).contains(&digits) && avail.get(digits) == Some(&b' ');
                    self.framing = if counted { Framing::OctetCounting } else { Framing::Newline };
                }
                Framing::Newline => {
                    if self.discarding {
                        match memchr::memchr(b'\n', avail) {
                            Some(i) => {
                                *start += i + 1;
                                self.discarding = false;
                            }
                            None => *start += avail.len(),
                        }
                        continue;
                    }
                    match memchr::memchr(b'\n', avail) {
                        Some(i) => {
                            let line = avail.get(..i).unwrap_or_default();
                            let line = line.strip_suffix(b"\r").unwrap_or(line);
                            if line.len() > self.max_frame {
                                out.push(line.get(..self.max_frame).unwrap_or(line));
                                self.oversized += 1;
                            } else if !line.is_empty() {
                                out.push(line);
                            }
                            *start += i + 1;
                        }
                        None => {
                            if avail.len() > self.max_frame {
                                out.push(avail.get(..self.max_frame).unwrap_or(avail));
                                self.oversized += 1;
                                self.discarding = true;
                                *start += avail.len();
                            }
                            return Ok(());
                        }
                    }
                }
                Framing::OctetCounting => {
                    // Some senders end frames with LF (or NUL) anyway: tolerated between frames.
                    if matches!(avail.first(), Some(b'\n' | b'\r' | b'\0')) {
                        *start += 1;
                        continue;
                    }
                    let digits = avail.iter().take(MAX_COUNT_DIGITS + 1).take_while(|b| b.is_ascii_digit()).count();
                    if digits == avail.len() && digits <= MAX_COUNT_DIGITS {
                        return Ok(());
                    }
                    if digits == 0 || digits > MAX_COUNT_DIGITS || avail.get(digits) != Some(&b' ') {
                        let shown = avail.get(..avail.len().min(16)).unwrap_or_default();
                        return Err(FramingError { found: String::from_utf8_lossy(shown).into_owned() });
                    }
                    let length: usize = std::str::from_utf8(avail.get(..digits).unwrap_or_default())
                        .ok()
                        .and_then(|s| s.parse().ok())
                        .unwrap_or(0);
                    let body = avail.get(digits + 1..).unwrap_or_default();
                    let keep = length.min(self.max_frame);
                    if body.len() < keep {
                        return Ok(()); // the frame is not all here yet
                    }
                    if keep > 0 {
                        out.push(body.get(..keep).unwrap_or_default());
                    }
                    if length > keep {
                        self.oversized += 1;
                        self.skip = length - keep;
                    }
                    *start += digits + 1 + keep;
                }
            }
        }
    }

    /// At the end of the stream: a last newline-delimited frame without its LF is a frame; an
    /// unfinished octet-counted frame is not (returns `true`: one incomplete frame).
    pub fn finish(&mut self, out: &mut Frames) -> bool {
        let rest = std::mem::take(&mut self.buf);
        let skipping = std::mem::take(&mut self.skip) > 0;
        let discarding = std::mem::take(&mut self.discarding);
        match self.framing {
            Framing::Newline | Framing::Unknown if !discarding => {
                let line = rest.strip_suffix(b"\r").unwrap_or(&rest);
                if !line.is_empty() {
                    out.push(line);
                }
                false
            }
            Framing::OctetCounting => {
                let blank = rest.iter().all(|b| matches!(b, b'\n' | b'\r' | b'\0'));
                skipping || !blank
            }
            _ => false,
        }
    }
}

/// What every connection of a listener shares.
pub(crate) struct TcpShared {
    pub source_id: String,
    pub max_frame: usize,
    pub idle_timeout: Duration,
    pub queue: QueueSender,
    pub metrics: Arc<ListenerMetrics>,
    pub shutdown: watch::Receiver<bool>,
    pub tls: Option<tokio_rustls::TlsAcceptor>,
    pub warn_framing: Mutex<RateLimited>,
    pub warn_accept: Mutex<RateLimited>,
}

/// Accepts connections until shutdown; each one is served by its own task.
pub(crate) async fn serve(listener: TcpListener, shared: Arc<TcpShared>, max_connections: usize) {
    let slots = Arc::new(Semaphore::new(max_connections));
    let mut shutdown = shared.shutdown.clone();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.changed() => break,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors and the like: wait a little instead of spinning.
                if let Some(held_back) = shared.warn_accept.lock().ok().and_then(|mut w| w.allow()) {
                    tracing::warn!(source = %shared.source_id, %error, held_back, "cannot accept a connection; raise the open-files limit (ulimit -n) or lower max_connections");
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            ListenerMetrics::inc(&shared.metrics.connections_refused);
            drop(stream);
            continue;
        };
        ListenerMetrics::inc(&shared.metrics.connections_accepted);
        ListenerMetrics::inc(&shared.metrics.connections_open);
        let shared = shared.clone();
        tokio::spawn(async move {
            match &shared.tls {
                None => read_frames(stream, peer, &shared).await,
                Some(acceptor) => {
                    let handshake = tokio::time::timeout(shared.idle_timeout, acceptor.accept(stream)).await;
                    match handshake {
                        Ok(Ok(tls)) => read_frames(tls, peer, &shared).await,
                        Ok(Err(error)) => {
                            ListenerMetrics::inc(&shared.metrics.tls_handshake_failures);
                            tracing::debug!(source = %shared.source_id, %peer, %error, "TLS handshake failed");
                        }
                        Err(_) => ListenerMetrics::inc(&shared.metrics.tls_handshake_failures),
                    }
                }
            }
            shared.metrics.connections_open.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
            drop(slot);
        });
    }
}

/// Reads one connection's frames into the queue until it closes, times out, breaks its framing
/// or the listener shuts down.
async fn read_frames<S: AsyncRead + Unpin>(mut stream: S, peer: SocketAddr, shared: &TcpShared) {
    let mut framer = Framer::new(shared.max_frame);
    let mut shutdown = shared.shutdown.clone();
    let metrics = &shared.metrics;
    loop {
        if *shutdown.borrow() {
            return;
        }
        let read = tokio::select! {
            read = tokio::time::timeout(shared.idle_timeout, stream.read_buf(framer.read_buffer())) => read,
            _ = shutdown.changed() => return,
        };
        let mut frames = Frames::default();
        let mut close = false;
        match read {
            Err(_) => {
                ListenerMetrics::inc(&metrics.idle_timeouts);
                if framer.has_partial_frame() {
                    ListenerMetrics::inc(&metrics.incomplete_frames);
                }
                return;
            }
            Ok(Err(_)) => {
                ListenerMetrics::inc(&metrics.read_errors);
                if framer.has_partial_frame() {
                    ListenerMetrics::inc(&metrics.incomplete_frames);
                }
                return;
            }
            Ok(Ok(0)) => {
                if framer.finish(&mut frames) {
                    ListenerMetrics::inc(&metrics.incomplete_frames);
                }
                close = true;
            }
            Ok(Ok(n)) => {
                framer.note_read(n);
                if let Err(error) = framer.parse(&mut frames) {
                    ListenerMetrics::inc(&metrics.framing_errors);
                    if let Some(held_back) = shared.warn_framing.lock().ok().and_then(|mut w| w.allow()) {
                        tracing::warn!(source = %shared.source_id, %peer, %error, held_back, "closing a syslog connection whose octet counting is broken");
                    }
                    close = true;
                }
            }
        }
        let oversized = std::mem::take(&mut framer.oversized);
        ListenerMetrics::add(&metrics.oversized, oversized);
        if !frames.is_empty() {
            let count = frames.len() as u64;
            let sent = tokio::select! {
                sent = shared.queue.send(peer, frames) => sent,
                _ = shutdown.changed() => Err(QueueError::Closed),
            };
            match sent {
                Ok(()) => ListenerMetrics::add(&metrics.received, count),
                Err(_) => return,
            }
        }
        if close {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames_of(framer: &mut Framer, chunks: &[&[u8]]) -> (Vec<String>, Result<(), FramingError>) {
        let mut out = Frames::default();
        let mut result = Ok(());
        for chunk in chunks {
            result = framer.feed(chunk, &mut out);
            if result.is_err() {
                break;
            }
        }
        let texts = out.frames.iter().map(|&(s, e)| String::from_utf8_lossy(&out.data[s..e]).into_owned()).collect();
        (texts, result)
    }

    #[test]
    fn newline_frames_split_anywhere_come_out_whole() {
        let mut framer = Framer::new(1024);
        let (frames, result) = frames_of(&mut framer, &[b"<34>one\r\n<3", b"4>two\n\n<34>thr", b"ee\n"]);
        assert_eq!(result, Ok(()));
        assert_eq!(frames, ["<34>one", "<34>two", "<34>three"]);
        assert_eq!(framer.framing(), Framing::Newline);
        assert!(!framer.has_partial_frame());
    }

    #[test]
    fn octet_counting_is_detected_and_split_anywhere() {
        let stream = b"11 <34>1 hello7 <34>bye\n5 x y z";
        for split in 0..stream.len() {
            let mut framer = Framer::new(1024);
            let (frames, result) = frames_of(&mut framer, &[&stream[..split], &stream[split..]]);
            assert_eq!(result, Ok(()));
            assert_eq!(frames, ["<34>1 hello", "<34>bye", "x y z"], "split at {split}");
            assert_eq!(framer.framing(), Framing::OctetCounting);
        }
    }

    #[test]
    fn a_line_starting_with_digits_is_newline_framed() {
        let mut framer = Framer::new(1024);
        let (frames, _) = frames_of(&mut framer, &[b"2026", b"-01-05 bras-1 up\n12345\n"]);
        assert_eq!(frames, ["2026-01-05 bras-1 up", "12345"]);
        assert_eq!(framer.framing(), Framing::Newline);
    }

    #[test]
    fn oversized_newline_frames_are_cut_and_the_connection_goes_on() {
        let mut framer = Framer::new(10);
        let long = [b'a'; 25];
        let (frames, result) = frames_of(&mut framer, &[b"short\n", &long, &long, b"\nnext\n"]);
        assert_eq!(result, Ok(()));
        assert_eq!(frames, ["short", "aaaaaaaaaa", "next"]);
        assert_eq!(framer.oversized, 1);
    }

    #[test]
    fn oversized_octet_frames_are_cut_and_their_rest_skipped() {
        let mut framer = Framer::new(10);
        let (frames, result) = frames_of(&mut framer, &[b"3 abc30 0123456789", b"abcdefghijABCDEFGHIJ2 ok"]);
        assert_eq!(result, Ok(()));
        assert_eq!(frames, ["abc", "0123456789", "ok"]);
        assert_eq!(framer.oversized, 1);
    }

    #[test]
    fn a_broken_octet_count_is_a_framing_error() {
        for garbage in [&b"3 abcxyz"[..], b"3 abc1234567890 x", b"3 abc12x"] {
            let mut framer = Framer::new(100);
            let (frames, result) = frames_of(&mut framer, &[garbage]);
            assert_eq!(frames, ["abc"]);
            assert!(result.is_err(), "{:?}", String::from_utf8_lossy(garbage));
        }
    }

    #[test]
    fn the_end_of_the_stream_keeps_a_last_line_and_counts_a_half_frame() {
        let mut framer = Framer::new(100);
        let mut out = Frames::default();
        framer.feed(b"one\ntwo", &mut out).unwrap();
        assert!(!framer.finish(&mut out));
        assert_eq!(out.len(), 2);

        let mut framer = Framer::new(100);
        let mut out = Frames::default();
        framer.feed(b"10 abc", &mut out).unwrap();
        assert!(framer.has_partial_frame());
        assert!(framer.finish(&mut out), "a half octet-counted frame is incomplete");
        assert!(out.is_empty());
    }

    #[test]
    fn garbage_never_panics_and_memory_stays_bounded() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        for _ in 0..2000 {
            let mut framer = Framer::new(64);
            let mut out = Frames::default();
            for _ in 0..rng.gen_range(1..20) {
                let len = rng.gen_range(0..200);
                let alphabet = b"0123456789 \n\r<>abc\0\xff";
                let chunk: Vec<u8> = (0..len).map(|_| alphabet[rng.gen_range(0..alphabet.len())]).collect();
                if framer.feed(&chunk, &mut out).is_err() {
                    break;
                }
                assert!(framer.buf.len() <= 64 + MAX_COUNT_DIGITS + 1 + 200, "{}", framer.buf.len());
            }
            framer.finish(&mut out);
            assert!(out.frames.iter().all(|&(s, e)| e - s <= 64));
        }
    }
}
