//! The bridge between the network tasks and the runner: a queue bounded in bytes, and the
//! [`CollectSource`] that drains it into the raw topic.
//!
//! Network tasks push [`Batch`]es (the frames one read or one burst of datagrams brought, from
//! one sender); each batch holds permits of the queue's byte budget until the source is done
//! with it, so the memory of a listener stays under its `queue` size whatever the input rate.
//! A TCP reader awaits the budget (it stops reading and the sender slows down); UDP and RADIUS
//! try it and count what does not fit.
//!
//! The source keeps the batches it emitted until their commit: `committed()` releases them,
//! sends the RADIUS answers of their packets and tells the HTTP requests whose records are all in; a commit that did not happen (the instance was
//! fenced) emits the same records again. On stop, `stop_intake` closes the listener and the
//! runner drains what was queued before it exits.

use crate::metrics::ListenerMetrics;
use crate::radius::Responder;
use lux_model::{format_rfc3339_millis, Format, RawRecord};
use lux_stage::{Context, Source, SourcePoll};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot, watch, OwnedSemaphorePermit, Semaphore, TryAcquireError};

/// Bookkeeping bytes counted per frame on top of its payload.
const FRAME_OVERHEAD: usize = 64;
/// How long an empty poll waits for the first batch before handing back to the runner.
const IDLE_WAIT: Duration = Duration::from_millis(100);
/// How long a stopping source waits for its listener tasks to hand over what they read.
const DRAIN_LIMIT: Duration = Duration::from_secs(5);

/// The answer owed to a RADIUS client once its packet is committed.
#[derive(Debug, Clone)]
pub struct Ack {
    /// The retransmission-cache key of the request.
    pub key: crate::radius::RequestKey,
    /// The Accounting-Response to send.
    pub response: [u8; 20],
}

/// Frames received from one sender, with the budget they hold.
#[derive(Debug)]
pub struct Batch {
    pub peer: SocketAddr,
    /// The frames' bytes, one after the other.
    pub data: Vec<u8>,
    /// Each frame's range in `data`.
    pub frames: Vec<(usize, usize)>,
    /// RADIUS: the answer of each frame (same order); empty for syslog.
    pub acks: Vec<Ack>,
    /// HTTP: told once every frame of the batch is committed (the request is answered then).
    pub done: Option<oneshot::Sender<()>>,
    _permit: Option<OwnedSemaphorePermit>,
}

impl Batch {
    /// Tells whoever waits for the batch (an HTTP request) that all of it is committed.
    fn committed(mut self) {
        if let Some(done) = self.done.take() {
            let _ = done.send(());
        }
    }
}

/// Frames being gathered before they are queued.
#[derive(Debug, Default)]
pub struct Frames {
    pub data: Vec<u8>,
    pub frames: Vec<(usize, usize)>,
    pub acks: Vec<Ack>,
    pub done: Option<oneshot::Sender<()>>,
}

impl Frames {
    pub fn push(&mut self, frame: &[u8]) {
        let start = self.data.len();
        self.data.extend_from_slice(frame);
        self.frames.push((start, self.data.len()));
    }

    pub fn len(&self) -> usize {
        self.frames.len()
    }

    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// The queue budget these frames take.
    pub fn cost(&self) -> usize {
        self.data.len() + self.frames.len() * FRAME_OVERHEAD
    }
}

/// Why a batch was not queued.
#[derive(Debug, PartialEq, Eq)]
pub enum QueueError {
    /// The byte budget is spent: the log is behind.
    Full,
    /// The source is gone (shutting down).
    Closed,
}

/// The network side of a listener's queue.
#[derive(Debug, Clone)]
pub struct QueueSender {
    tx: mpsc::UnboundedSender<Batch>,
    budget: Arc<Semaphore>,
    capacity: u32,
}

/// Creates a queue holding at most `capacity` bytes of frames.
pub fn queue(capacity: u64) -> (QueueSender, mpsc::UnboundedReceiver<Batch>) {
    let capacity = u32::try_from(capacity).unwrap_or(u32::MAX).min(Semaphore::MAX_PERMITS as u32);
    let (tx, rx) = mpsc::unbounded_channel();
    (QueueSender { tx, budget: Arc::new(Semaphore::new(capacity as usize)), capacity }, rx)
}

impl QueueSender {
    fn permits(&self, frames: &Frames) -> u32 {
        u32::try_from(frames.cost()).unwrap_or(u32::MAX).clamp(1, self.capacity)
    }

    fn batch(peer: SocketAddr, frames: Frames, permit: OwnedSemaphorePermit) -> Batch {
        Batch {
            peer,
            data: frames.data,
            frames: frames.frames,
            acks: frames.acks,
            done: frames.done,
            _permit: Some(permit),
        }
    }

    /// Queues the frames, waiting for room (TCP: the sender waits with us).
    pub async fn send(&self, peer: SocketAddr, frames: Frames) -> Result<(), QueueError> {
        let permit =
            self.budget.clone().acquire_many_owned(self.permits(&frames)).await.map_err(|_| QueueError::Closed)?;
        self.tx.send(Self::batch(peer, frames, permit)).map_err(|_| QueueError::Closed)
    }

    /// Queues the frames if there is room now (UDP, RADIUS).
    pub fn try_send(&self, peer: SocketAddr, frames: Frames) -> Result<(), QueueError> {
        let permit = match self.budget.clone().try_acquire_many_owned(self.permits(&frames)) {
            Ok(permit) => permit,
            Err(TryAcquireError::NoPermits) => return Err(QueueError::Full),
            Err(TryAcquireError::Closed) => return Err(QueueError::Closed),
        };
        self.tx.send(Self::batch(peer, frames, permit)).map_err(|_| QueueError::Closed)
    }

    /// Whether the source is gone.
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }
}

/// What a collect source writes and how.
#[derive(Debug, Clone)]
pub struct SourceSpec {
    /// The configured source id (`bras-syslog`); the stage is named `collect-<id>`.
    pub source_id: String,
    pub format: Format,
    pub raw_topic: String,
    /// What the listener is, for logs: `syslog tcp 0.0.0.0:514`.
    pub description: String,
}

/// One listener as a source stage: drains its queue into the raw topic.
pub struct CollectSource {
    name: String,
    spec: SourceSpec,
    local_addr: SocketAddr,
    rx: mpsc::UnboundedReceiver<Batch>,
    /// Batches taken from the queue and not yet committed, oldest first.
    held: VecDeque<Batch>,
    /// Frames of `held[0]` already committed.
    committed_frame: usize,
    /// Where the next frame to emit is: (index in `held`, frame index).
    emit_at: (usize, usize),
    metrics: Arc<ListenerMetrics>,
    responder: Option<Responder>,
    shutdown: watch::Sender<bool>,
    handle: tokio::runtime::Handle,
    /// Keeps the network runtime alive while any source of it is.
    _runtime: Arc<tokio::runtime::Runtime>,
    kernel_drops: crate::syslog_udp::KernelDrops,
    /// The formatted reception time of the current poll, reused by its records.
    stamp: (i64, String),
    /// When `stop_intake` was called.
    draining_since: Option<Instant>,
    /// The listener tasks ended without being asked to (they logged why).
    listener_failed: bool,
}

/// What [`CollectSource::new`] needs of a started listener.
pub(crate) struct ListenerParts {
    pub local_addr: SocketAddr,
    pub rx: mpsc::UnboundedReceiver<Batch>,
    pub metrics: Arc<ListenerMetrics>,
    pub responder: Option<Responder>,
    pub shutdown: watch::Sender<bool>,
    pub runtime: Arc<tokio::runtime::Runtime>,
    pub kernel_drops: crate::syslog_udp::KernelDrops,
}

impl CollectSource {
    pub(crate) fn new(spec: SourceSpec, parts: ListenerParts) -> CollectSource {
        CollectSource {
            name: format!("collect-{}", spec.source_id),
            spec,
            local_addr: parts.local_addr,
            rx: parts.rx,
            held: VecDeque::new(),
            committed_frame: 0,
            emit_at: (0, 0),
            metrics: parts.metrics,
            responder: parts.responder,
            shutdown: parts.shutdown,
            handle: parts.runtime.handle().clone(),
            _runtime: parts.runtime,
            kernel_drops: parts.kernel_drops,
            stamp: (i64::MIN, String::new()),
            listener_failed: false,
            draining_since: None,
        }
    }

    /// The address the listener is bound to (its actual port when configured with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The configured source id.
    pub fn source_id(&self) -> &str {
        &self.spec.source_id
    }

    /// What the listener is (`syslog tcp 0.0.0.0:514`).
    pub fn description(&self) -> &str {
        &self.spec.description
    }

    /// The listener's counters (shared: they move while the listener runs).
    pub fn metrics(&self) -> Arc<ListenerMetrics> {
        self.metrics.clone()
    }

    fn next_batch(&mut self, wait: bool) -> bool {
        let received = match self.rx.try_recv() {
            Ok(batch) => Some(batch),
            Err(mpsc::error::TryRecvError::Empty) if wait => {
                let rx = &mut self.rx;
                self.handle.block_on(async { tokio::time::timeout(IDLE_WAIT, rx.recv()).await.ok().flatten() })
            }
            Err(mpsc::error::TryRecvError::Empty) => None,
            Err(mpsc::error::TryRecvError::Disconnected) => {
                self.listener_failed = !*self.shutdown.borrow();
                None
            }
        };
        match received {
            Some(batch) => {
                self.held.push_back(batch);
                true
            }
            None => false,
        }
    }

    fn stamp(&mut self, now_ms: i64) -> &str {
        if self.stamp.0 != now_ms {
            self.stamp = (now_ms, format_rfc3339_millis(now_ms));
        }
        &self.stamp.1
    }
}

/// The JSON of raw records, written by hand: what stays the same for the frames of a batch
/// (source, format, reception time, peer) is rendered once, and each payload is escaped with a
/// scan that copies clean 8-byte words whole. The output is byte for byte what serde_json
/// makes of a [`RawRecord`] (a test holds it to that).
pub(crate) struct RawJson {
    /// `{"schema":...,"peer":"...","payload":{"text":"`
    prefix: Vec<u8>,
    source: String,
    format: Format,
    received_at: i64,
    peer: Option<String>,
}

impl RawJson {
    /// `peer`: the sender's `ip:port`, `None` for records not received from the network (files).
    pub(crate) fn new(source: &str, format: Format, received_at: (i64, &str), peer: Option<&str>) -> RawJson {
        let mut prefix = Vec::with_capacity(160);
        prefix.extend_from_slice(b"{\"schema\":");
        write_json_str(&mut prefix, lux_model::schema::RAW);
        prefix.extend_from_slice(b",\"source\":");
        write_json_str(&mut prefix, source);
        prefix.extend_from_slice(b",\"format\":");
        write_json_str(&mut prefix, format.as_str());
        prefix.extend_from_slice(b",\"received_at\":");
        write_json_str(&mut prefix, received_at.1);
        if let Some(peer) = peer {
            prefix.extend_from_slice(b",\"peer\":");
            write_json_str(&mut prefix, peer);
        }
        prefix.extend_from_slice(b",\"payload\":{\"text\":\"");
        RawJson { prefix, source: source.to_owned(), format, received_at: received_at.0, peer: peer.map(str::to_owned) }
    }

    /// The record of one payload.
    pub(crate) fn record(&self, payload: &[u8]) -> Vec<u8> {
        match std::str::from_utf8(payload) {
            Ok(text) => {
                let mut out = Vec::with_capacity(self.prefix.len() + payload.len() + payload.len() / 8 + 4);
                out.extend_from_slice(&self.prefix);
                escape_json_into(&mut out, text.as_bytes());
                out.extend_from_slice(b"\"}}");
                out
            }
            // Not UTF-8: base64, as `Payload` serialises it (rare: no fast path).
            Err(_) => {
                let record =
                    RawRecord::new(&self.source, self.format, self.received_at, self.peer.clone(), payload.to_vec());
                serde_json::to_vec(&record).unwrap_or_default()
            }
        }
    }
}

fn write_json_str(out: &mut Vec<u8>, text: &str) {
    out.push(b'"');
    escape_json_into(out, text.as_bytes());
    out.push(b'"');
}

/// Whether a byte of a JSON string must be escaped.
#[inline(always)]
fn needs_escape(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\'
}

/// The bytes of a little-endian word that may need escaping, as their high bits: bytes below
/// 0x20 (`hasless`), `"` and `\\` (`haszero` of the word xor them). The lowest flagged byte
/// is exact; a borrow may flag a clean byte above it, so each is checked again.
#[inline(always)]
fn escape_candidates(word: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let control = word.wrapping_sub(0x20 * ONES) & !word;
    let quote = word ^ (u64::from(b'"') * ONES);
    let backslash = word ^ (u64::from(b'\\') * ONES);
    (control | (quote.wrapping_sub(ONES) & !quote) | (backslash.wrapping_sub(ONES) & !backslash)) & HIGH
}

/// Appends the JSON escape of UTF-8 text (without quotes), exactly as serde_json writes it.
/// Clean 8-byte words are copied whole; in the others only the flagged bytes are looked at.
fn escape_json_into(out: &mut Vec<u8>, bytes: &[u8]) {
    let mut clean_from = 0;
    let mut escape_at = |out: &mut Vec<u8>, at: usize| {
        let b = bytes.get(at).copied().unwrap_or(0);
        if needs_escape(b) {
            out.extend_from_slice(bytes.get(clean_from..at).unwrap_or_default());
            push_escape(out, b);
            clean_from = at + 1;
        }
    };
    let words = bytes.chunks_exact(8);
    let tail_start = bytes.len() - words.remainder().len();
    for (n, word) in words.enumerate() {
        let mut candidates = escape_candidates(u64::from_le_bytes(word.try_into().unwrap_or_default()));
        while candidates != 0 {
            escape_at(out, n * 8 + (candidates.trailing_zeros() / 8) as usize);
            candidates &= candidates - 1;
        }
    }
    for at in tail_start..bytes.len() {
        escape_at(out, at);
    }
    out.extend_from_slice(bytes.get(clean_from..).unwrap_or_default());
}

fn push_escape(out: &mut Vec<u8>, b: u8) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    match b {
        b'"' => out.extend_from_slice(b"\\\""),
        b'\\' => out.extend_from_slice(b"\\\\"),
        b'\n' => out.extend_from_slice(b"\\n"),
        b'\r' => out.extend_from_slice(b"\\r"),
        b'\t' => out.extend_from_slice(b"\\t"),
        0x08 => out.extend_from_slice(b"\\b"),
        0x0c => out.extend_from_slice(b"\\f"),
        _ => out.extend_from_slice(&[b'\\', b'u', b'0', b'0', HEX[usize::from(b >> 4)], HEX[usize::from(b & 0xf)]]),
    }
}

impl Source for CollectSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn outputs(&self) -> Vec<String> {
        vec![self.spec.raw_topic.clone()]
    }

    fn restore(&mut self, _state: Vec<(Vec<u8>, Vec<u8>)>) -> anyhow::Result<()> {
        // Nothing is kept in the log's state; frames emitted but not committed (a fenced
        // commit) are emitted again.
        self.emit_at = (0, self.committed_frame);
        Ok(())
    }

    fn poll(&mut self, ctx: &mut Context, max_records: usize) -> anyhow::Result<SourcePoll> {
        let now_ms = ctx.now_wall_ms;
        self.stamp(now_ms);
        let mut emitted = 0usize;
        let mut waited = false;
        while emitted < max_records.max(1) {
            let (batch_index, frame_index) = self.emit_at;
            let Some(batch) = self.held.get(batch_index) else {
                let wait = emitted == 0 && !waited;
                waited |= wait;
                if self.next_batch(wait) {
                    continue;
                }
                break;
            };
            if frame_index >= batch.frames.len() {
                self.emit_at = (batch_index + 1, 0);
                continue;
            }
            let peer = batch.peer.to_string();
            let key = batch.peer.ip().to_string();
            let json = RawJson::new(&self.spec.source_id, self.spec.format, (now_ms, &self.stamp.1), Some(&peer));
            let take = (batch.frames.len() - frame_index).min(max_records.max(1) - emitted);
            for &(start, end) in batch.frames.get(frame_index..frame_index + take).unwrap_or_default() {
                let payload = batch.data.get(start..end).unwrap_or_default();
                ctx.emit(&self.spec.raw_topic, key.as_bytes(), now_ms, json.record(payload));
                ctx.received(now_ms);
            }
            emitted += take;
            self.emit_at = (batch_index, frame_index + take);
        }
        if emitted > 0 {
            return Ok(SourcePoll::Ready);
        }
        if let Some(since) = self.draining_since {
            // After stop_intake: the listener tasks hand over what they read, then end.
            let done = self.rx.is_closed() && self.rx.is_empty();
            return Ok(if done || since.elapsed() > DRAIN_LIMIT { SourcePoll::Finished } else { SourcePoll::Ready });
        }
        if self.listener_failed {
            anyhow::bail!(
                "collector {}: the listener ({}) stopped; its error is logged above",
                self.spec.source_id,
                self.spec.description
            );
        }
        Ok(SourcePoll::Idle(Duration::ZERO))
    }

    fn committed(&mut self) {
        let (batch_index, frame_index) = self.emit_at;
        let mut written = 0u64;
        let mut answered: Vec<Ack> = Vec::new();
        for (i, batch) in self.held.iter().enumerate().take(batch_index + 1) {
            let from = if i == 0 { self.committed_frame } else { 0 };
            let to = if i == batch_index { frame_index } else { batch.frames.len() };
            if to > from {
                written += (to - from) as u64;
                answered.extend(batch.acks.get(from..to).unwrap_or_default().iter().cloned());
            }
        }
        ListenerMetrics::add(&self.metrics.written, written);
        if let Some(responder) = &self.responder {
            responder.answer(&answered, &self.metrics);
        }
        // Release the batches wholly committed (their queue budget with them).
        let done = batch_index.min(self.held.len());
        self.held.drain(..done).for_each(Batch::committed);
        self.committed_frame = frame_index;
        self.emit_at = (0, frame_index);
        if self.held.front().is_some_and(|b| self.committed_frame >= b.frames.len()) {
            if let Some(batch) = self.held.pop_front() {
                batch.committed();
            }
            self.committed_frame = 0;
            self.emit_at = (0, 0);
        }
    }

    fn counters(&self) -> Vec<(String, u64)> {
        let mut counters = self.metrics.snapshot();
        if let Some(drops) = self.kernel_drops.get() {
            counters.push(("dropped_kernel".into(), drops));
        }
        counters
    }

    fn stop_intake(&mut self) -> bool {
        // Closes the listener: TCP readers stop, UDP sockets close; what is queued is drained.
        let _ = self.shutdown.send(true);
        self.draining_since = Some(Instant::now());
        true
    }
}

impl Drop for CollectSource {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn borrowed_records_serialise_exactly_as_raw_records() {
        let payloads: Vec<Vec<u8>> = vec![
            b"<34>1 2026-01-05T00:00:00Z bras-1 ppp - - - session up".to_vec(),
            b"quote \" backslash \\ tab \t newline \n nul \0 del \x7f".to_vec(),
            "accents \u{e9}\u{e8} and \u{1F600}".as_bytes().to_vec(),
            vec![0xff, 0xfe, 0x00, 0x41],
            Vec::new(),
        ];
        let ms = 1_767_571_200_123;
        let stamp = format_rfc3339_millis(ms);
        let mut payloads = payloads;
        payloads.push((0u8..=0x7f).collect());
        payloads.push((0u8..=0x7f).rev().cycle().take(1000).collect());
        payloads.push(b"0123456789abcdef\"0123456789abcdef\\".to_vec());
        for peer in [Some("10.0.0.1:514"), None] {
            let json = RawJson::new("bras-syslog", Format::Syslog, (ms, &stamp), peer);
            for payload in &payloads {
                let ours = json.record(payload);
                let reference =
                    RawRecord::new("bras-syslog", Format::Syslog, ms, peer.map(str::to_owned), payload.clone());
                assert_eq!(String::from_utf8_lossy(&ours), serde_json::to_string(&reference).unwrap());
                let back: RawRecord = serde_json::from_slice(&ours).unwrap();
                assert_eq!(back, reference);
            }
        }
    }

    #[test]
    fn the_queue_refuses_past_its_budget_and_frees_it_when_batches_drop() {
        let (tx, mut rx) = queue(1000);
        let peer: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let frames = |n: usize| {
            let mut f = Frames::default();
            f.push(&vec![b'x'; n]);
            f
        };
        assert_eq!(tx.try_send(peer, frames(600)), Ok(()));
        assert_eq!(tx.try_send(peer, frames(600)), Err(QueueError::Full));
        let batch = rx.try_recv().unwrap();
        assert_eq!(batch.data.len(), 600);
        assert_eq!(tx.try_send(peer, frames(600)), Err(QueueError::Full), "the budget is held until the batch drops");
        drop(batch);
        assert_eq!(tx.try_send(peer, frames(600)), Ok(()));
        assert_eq!(
            tx.try_send(peer, frames(5000)),
            Err(QueueError::Full),
            "a batch over the budget waits for all of it"
        );
        drop(rx);
        assert!(tx.is_closed());
    }
}
