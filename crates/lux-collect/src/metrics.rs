//! The counters of one collector (listener or tailed files), shared lock-free between its network tasks and its source, and
//! published through `Source::counters` (the live summary and metrics). Every way a record can
//! be refused or lost has its counter: nothing disappears silently.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Counters of one listener.
#[derive(Debug, Default)]
pub struct ListenerMetrics {
    /// Records (frames, datagrams, packets) accepted into the queue.
    pub received: AtomicU64,
    /// Records committed to the raw topic.
    pub written: AtomicU64,
    /// UDP datagrams and RADIUS packets dropped because the queue was full.
    pub dropped_overflow: AtomicU64,
    /// Frames longer than `max_frame`, kept cut at that size.
    pub oversized: AtomicU64,
    /// TCP/TLS: connections closed on a framing error (an octet count that is not one).
    pub framing_errors: AtomicU64,
    /// TCP/TLS: frames left unfinished by a connection that closed or timed out (not written).
    pub incomplete_frames: AtomicU64,
    /// TCP/TLS: connections closed after `idle_timeout` without data.
    pub idle_timeouts: AtomicU64,
    /// TCP/TLS: connections open now (a gauge).
    pub connections_open: AtomicU64,
    /// TCP/TLS: connections accepted since the start.
    pub connections_accepted: AtomicU64,
    /// TCP/TLS: connections refused because `max_connections` were open.
    pub connections_refused: AtomicU64,
    /// TLS: handshakes that failed (bad client, plain TCP on the TLS port, timeout).
    pub tls_handshake_failures: AtomicU64,
    /// Read errors on connections (reset by the peer, ...).
    pub read_errors: AtomicU64,
    /// RADIUS: packets whose Request Authenticator does not match the client's secret.
    pub bad_authenticator: AtomicU64,
    /// RADIUS: packets from an address no `clients` entry matches.
    pub unknown_client: AtomicU64,
    /// RADIUS: datagrams that are not Accounting-Requests or whose lengths are inconsistent.
    pub malformed: AtomicU64,
    /// RADIUS: retransmissions recognised (answered again if already written, else ignored).
    pub retransmissions: AtomicU64,
    /// RADIUS: Accounting-Responses sent.
    pub responses: AtomicU64,
    /// RADIUS: Accounting-Responses the socket refused to send.
    pub response_errors: AtomicU64,
    /// Files: files being tailed now (a gauge).
    pub files_open: AtomicU64,
    /// Files: files opened since the start (found by the patterns, or a rotated file's tail).
    pub files_opened: AtomicU64,
    /// Files: files that left their path while tailed (renamed by rotation, or deleted); their
    /// rest is still read.
    pub rotations: AtomicU64,
    /// Files: files that shrank or were rewritten under their position (copytruncate): read
    /// again from their start.
    pub truncations: AtomicU64,
    /// Files: remembered positions whose file was gone at start (removed while LUX was stopped):
    /// what it had left unread is lost.
    pub files_lost: AtomicU64,
    /// Files: matches left alone because `max_files` were open.
    pub files_skipped: AtomicU64,
    /// Files: last lines written without their newline after `flush_partial_after`.
    pub partial_flushed: AtomicU64,
    /// HTTP: requests answered 200 (their records committed).
    pub requests_accepted: AtomicU64,
    /// HTTP: requests refused with 401 (missing or wrong bearer token).
    pub requests_unauthorized: AtomicU64,
    /// HTTP: requests refused with 413 (body over `max_body`).
    pub requests_too_large: AtomicU64,
    /// HTTP: requests refused with 503 (the queue was full, or the collector was stopping).
    pub requests_overloaded: AtomicU64,
    /// HTTP: requests refused with 400 (no record in the body, or a body that broke off).
    pub requests_bad: AtomicU64,
}

impl ListenerMetrics {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Every counter by name, for `Source::counters`.
    pub fn snapshot(&self) -> Vec<(String, u64)> {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        [
            ("received", get(&self.received)),
            ("written", get(&self.written)),
            ("dropped_overflow", get(&self.dropped_overflow)),
            ("oversized", get(&self.oversized)),
            ("framing_errors", get(&self.framing_errors)),
            ("incomplete_frames", get(&self.incomplete_frames)),
            ("idle_timeouts", get(&self.idle_timeouts)),
            ("connections_open", get(&self.connections_open)),
            ("connections_accepted", get(&self.connections_accepted)),
            ("connections_refused", get(&self.connections_refused)),
            ("tls_handshake_failures", get(&self.tls_handshake_failures)),
            ("read_errors", get(&self.read_errors)),
            ("bad_authenticator", get(&self.bad_authenticator)),
            ("unknown_client", get(&self.unknown_client)),
            ("malformed", get(&self.malformed)),
            ("retransmissions", get(&self.retransmissions)),
            ("responses", get(&self.responses)),
            ("response_errors", get(&self.response_errors)),
            ("files_open", get(&self.files_open)),
            ("files_opened", get(&self.files_opened)),
            ("rotations", get(&self.rotations)),
            ("truncations", get(&self.truncations)),
            ("files_lost", get(&self.files_lost)),
            ("files_skipped", get(&self.files_skipped)),
            ("partial_flushed", get(&self.partial_flushed)),
            ("requests_accepted", get(&self.requests_accepted)),
            ("requests_unauthorized", get(&self.requests_unauthorized)),
            ("requests_too_large", get(&self.requests_too_large)),
            ("requests_overloaded", get(&self.requests_overloaded)),
            ("requests_bad", get(&self.requests_bad)),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value))
        .collect()
    }

    /// One counter by name (tests, summaries); 0 for an unknown name.
    pub fn get(&self, name: &str) -> u64 {
        self.snapshot().into_iter().find(|(n, _)| n == name).map(|(_, v)| v).unwrap_or(0)
    }
}

/// A warning logged at most once per `every`, with the count of the ones held back meanwhile:
/// a flood of bad packets cannot flood the log.
#[derive(Debug)]
pub struct RateLimited {
    every: Duration,
    last: Option<Instant>,
    suppressed: u64,
}

impl RateLimited {
    pub fn new(every: Duration) -> Self {
        RateLimited { every, last: None, suppressed: 0 }
    }

    /// `Some(held back since the last one)` when a warning may be logged now.
    pub fn allow(&mut self) -> Option<u64> {
        let now = Instant::now();
        match self.last {
            Some(last) if now.duration_since(last) < self.every => {
                self.suppressed += 1;
                None
            }
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.suppressed))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limited_warnings_count_what_they_hold_back() {
        let mut limit = RateLimited::new(Duration::from_secs(3600));
        assert_eq!(limit.allow(), Some(0));
        assert_eq!(limit.allow(), None);
        assert_eq!(limit.allow(), None);
        limit.last = Some(Instant::now() - Duration::from_secs(7200));
        assert_eq!(limit.allow(), Some(2));
    }

    #[test]
    fn counters_are_published_by_name() {
        let metrics = ListenerMetrics::default();
        ListenerMetrics::add(&metrics.received, 3);
        ListenerMetrics::inc(&metrics.bad_authenticator);
        assert_eq!(metrics.get("received"), 3);
        assert_eq!(metrics.get("bad_authenticator"), 1);
        assert_eq!(metrics.snapshot().len(), 30);
    }
}
