//! RADIUS accounting over UDP (RFC 2866).
//!
//! Each Accounting-Request is checked (lengths, code), its client looked up by source address
//! (the most specific `clients` entry), and its Request Authenticator verified with that
//! client's secret: MD5(Code + Identifier + Length + 16 zero octets + Attributes + Secret). A
//! packet that fails gets no answer, a counter and a rate-limited warning naming the client.
//!
//! A good packet is queued and remembered as pending in a bounded cache keyed by (client
//! address, identifier, Request Authenticator). Its Accounting-Response (code 5, Response
//! Authenticator = MD5(5 + Identifier + 20 + Request Authenticator + Secret)) is sent only once
//! the packet is committed to the raw topic ([`Responder::answer`], called from
//! `Source::committed`). A retransmission of a committed packet is answered again without being
//! written twice; one of a pending packet is ignored (its answer comes with the commit). When the
//! queue is full the packet is not answered: the NAS retries.
//!
//! The cache lives in memory: after a restart, a retransmission of a packet written before it is
//! written again (at-least-once towards the network, as the design says).

use crate::config::{IpNetwork, RadiusListenerConfig};
use crate::metrics::{ListenerMetrics, RateLimited};
use crate::source::{Ack, Frames, QueueError, QueueSender};
use md5::{Digest, Md5};
use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;
use tokio::sync::watch;

pub const ACCOUNTING_REQUEST: u8 = 4;
pub const ACCOUNTING_RESPONSE: u8 = 5;
pub const HEADER_LEN: usize = 20;
/// Largest RADIUS packet (RFC 2865 3).
pub const MAX_PACKET: usize = 4096;

/// A request as retransmissions repeat it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RequestKey {
    pub client: SocketAddr,
    pub identifier: u8,
    pub authenticator: [u8; 16],
}

/// The clients of a listener, most specific network first.
#[derive(Clone)]
pub struct Clients {
    entries: Vec<(IpNetwork, Vec<u8>)>,
}

impl Clients {
    /// From config, with each secret resolved (from the environment where configured).
    pub fn from_config(config: &RadiusListenerConfig) -> Result<Clients, String> {
        let mut entries = Vec::new();
        for client in &config.clients {
            let network = IpNetwork::parse(&client.address)?;
            entries.push((network, client.resolve_secret()?));
        }
        entries.sort_by_key(|(network, _)| std::cmp::Reverse(network.prefix));
        Ok(Clients { entries })
    }

    /// The matching client's network and secret.
    pub fn lookup(&self, ip: IpAddr) -> Option<(&IpNetwork, &[u8])> {
        self.entries.iter().find(|(net, _)| net.contains(ip)).map(|(net, secret)| (net, secret.as_slice()))
    }
}

/// Why a datagram is not a usable Accounting-Request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformed {
    TooShort,
    NotAccountingRequest(u8),
    BadLength(u16),
}

/// The packet (without padding past its Length field), or why it is unusable.
pub fn check_packet(datagram: &[u8]) -> Result<&[u8], Malformed> {
    if datagram.len() < HEADER_LEN {
        return Err(Malformed::TooShort);
    }
    let code = datagram.first().copied().unwrap_or(0);
    if code != ACCOUNTING_REQUEST {
        return Err(Malformed::NotAccountingRequest(code));
    }
    let length = u16::from_be_bytes([datagram.get(2).copied().unwrap_or(0), datagram.get(3).copied().unwrap_or(0)]);
    let len = usize::from(length);
    if !(HEADER_LEN..=MAX_PACKET).contains(&len) || len > datagram.len() {
        return Err(Malformed::BadLength(length));
    }
    datagram.get(..len).ok_or(Malformed::BadLength(length))
}

fn authenticator_of(packet: &[u8]) -> [u8; 16] {
    let mut auth = [0u8; 16];
    if let Some(bytes) = packet.get(4..HEADER_LEN) {
        auth.copy_from_slice(bytes);
    }
    auth
}

/// Whether the Request Authenticator of a checked packet matches `secret`.
pub fn verify_request(packet: &[u8], secret: &[u8]) -> bool {
    let mut md5 = Md5::new();
    md5.update(packet.get(..4).unwrap_or_default());
    md5.update([0u8; 16]);
    md5.update(packet.get(HEADER_LEN..).unwrap_or_default());
    md5.update(secret);
    let expected: [u8; 16] = md5.finalize().into();
    // Not secret-dependent timing in a way that helps: the expected value changes per packet.
    expected == authenticator_of(packet)
}

/// The Accounting-Response to a checked request (no attributes).
pub fn response_to(packet: &[u8], secret: &[u8]) -> [u8; 20] {
    let identifier = packet.get(1).copied().unwrap_or(0);
    let mut response = [0u8; 20];
    response[0] = ACCOUNTING_RESPONSE;
    response[1] = identifier;
    response[2..4].copy_from_slice(&(HEADER_LEN as u16).to_be_bytes());
    let mut md5 = Md5::new();
    md5.update(&response[..4]);
    md5.update(authenticator_of(packet));
    md5.update(secret);
    let auth: [u8; 16] = md5.finalize().into();
    response[4..].copy_from_slice(&auth);
    response
}

/// What the cache knows of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// Queued, not committed yet.
    Pending,
    /// Committed; this is its answer.
    Answered([u8; 20]),
}

/// Recent requests, bounded in count and age.
#[derive(Debug)]
pub struct RetransmissionCache {
    capacity: usize,
    window: Duration,
    entries: HashMap<RequestKey, (Seen, Instant)>,
    order: VecDeque<(RequestKey, Instant)>,
}

impl RetransmissionCache {
    pub fn new(capacity: usize, window: Duration) -> Self {
        RetransmissionCache { capacity: capacity.max(1), window, entries: HashMap::new(), order: VecDeque::new() }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn get(&mut self, key: &RequestKey) -> Option<Seen> {
        self.expire(Instant::now());
        self.entries.get(key).map(|(seen, _)| *seen)
    }

    pub fn insert(&mut self, key: RequestKey, seen: Seen) {
        let now = Instant::now();
        self.expire(now);
        self.entries.insert(key, (seen, now));
        self.order.push_back((key, now));
        while self.entries.len() > self.capacity {
            let Some((old, at)) = self.order.pop_front() else { break };
            if self.entries.get(&old).is_some_and(|(_, t)| *t == at) {
                self.entries.remove(&old);
            }
        }
    }

    /// Marks a request answered (inserting it again if it was evicted meanwhile).
    pub fn answered(&mut self, key: RequestKey, response: [u8; 20]) {
        match self.entries.get_mut(&key) {
            Some((seen, _)) => *seen = Seen::Answered(response),
            None => self.insert(key, Seen::Answered(response)),
        }
    }

    pub fn remove(&mut self, key: &RequestKey) {
        self.entries.remove(key);
    }

    fn expire(&mut self, now: Instant) {
        while let Some((key, at)) = self.order.front().copied() {
            if now.duration_since(at) < self.window && self.order.len() <= self.capacity.saturating_mul(2) {
                break;
            }
            self.order.pop_front();
            if self.entries.get(&key).is_some_and(|(_, t)| *t == at) {
                self.entries.remove(&key);
            }
        }
    }
}

/// Sends the answers of committed packets (from the runner's thread).
pub struct Responder {
    socket: std::net::UdpSocket,
    cache: Arc<Mutex<RetransmissionCache>>,
}

impl Responder {
    pub(crate) fn new(socket: std::net::UdpSocket, cache: Arc<Mutex<RetransmissionCache>>) -> Responder {
        Responder { socket, cache }
    }

    /// Marks the packets answered and sends their Accounting-Responses.
    pub fn answer(&self, acks: &[Ack], metrics: &ListenerMetrics) {
        if acks.is_empty() {
            return;
        }
        if let Ok(mut cache) = self.cache.lock() {
            for ack in acks {
                cache.answered(ack.key, ack.response);
            }
        }
        for ack in acks {
            match self.socket.send_to(&ack.response, ack.key.client) {
                Ok(_) => ListenerMetrics::inc(&metrics.responses),
                Err(_) => ListenerMetrics::inc(&metrics.response_errors),
            }
        }
    }
}

/// What a RADIUS listener needs.
pub(crate) struct RadiusShared {
    pub source_id: String,
    pub clients: Clients,
    pub cache: Arc<Mutex<RetransmissionCache>>,
    pub queue: QueueSender,
    pub metrics: Arc<ListenerMetrics>,
    pub shutdown: watch::Receiver<bool>,
}

/// Rate-limited warnings of a RADIUS listener.
struct Warnings {
    bad_authenticator: RateLimited,
    unknown_client: RateLimited,
}

/// Receives Accounting-Requests until shutdown.
pub(crate) async fn serve(socket: UdpSocket, shared: RadiusShared) {
    let mut buf = vec![0u8; MAX_PACKET + 1];
    let mut shutdown = shared.shutdown.clone();
    let mut warnings = Warnings {
        bad_authenticator: RateLimited::new(Duration::from_secs(10)),
        unknown_client: RateLimited::new(Duration::from_secs(10)),
    };
    loop {
        let received = tokio::select! {
            received = socket.recv_from(&mut buf) => received,
            _ = shutdown.changed() => return,
        };
        let Ok((n, peer)) = received else { continue };
        let datagram = buf.get(..n).unwrap_or_default();
        match handle_request(datagram, peer, &shared, &mut warnings) {
            Handled::Answer(response) => {
                if socket.try_send_to(&response, peer).is_ok() {
                    ListenerMetrics::inc(&shared.metrics.responses);
                } else {
                    ListenerMetrics::inc(&shared.metrics.response_errors);
                }
            }
            Handled::Closed => return,
            Handled::Done => {}
        }
    }
}

enum Handled {
    Done,
    /// A retransmission of a committed packet: answer it again now.
    Answer([u8; 20]),
    Closed,
}

fn handle_request(datagram: &[u8], peer: SocketAddr, shared: &RadiusShared, warnings: &mut Warnings) -> Handled {
    let metrics = &shared.metrics;
    let packet = match check_packet(datagram) {
        Ok(packet) => packet,
        Err(_) => {
            ListenerMetrics::inc(&metrics.malformed);
            return Handled::Done;
        }
    };
    let Some((network, secret)) = shared.clients.lookup(peer.ip()) else {
        ListenerMetrics::inc(&metrics.unknown_client);
        if let Some(held_back) = warnings.unknown_client.allow() {
            tracing::warn!(source = %shared.source_id, client = %peer.ip(), held_back, "RADIUS packet from an address no collect.radius.clients entry matches: dropped; add the NAS with its secret");
        }
        return Handled::Done;
    };
    if !verify_request(packet, secret) {
        ListenerMetrics::inc(&metrics.bad_authenticator);
        if let Some(held_back) = warnings.bad_authenticator.allow() {
            tracing::warn!(
                source = %shared.source_id,
                client = %peer.ip(),
                entry = %format!("{}/{}", network.address, network.prefix),
                held_back,
                "RADIUS Request Authenticator does not match the client's secret: not answered; check the shared secret on both sides"
            );
        }
        return Handled::Done;
    }
    let key = RequestKey {
        client: peer,
        identifier: packet.get(1).copied().unwrap_or(0),
        authenticator: authenticator_of(packet),
    };
    let Ok(mut cache) = shared.cache.lock() else { return Handled::Done };
    match cache.get(&key) {
        Some(Seen::Answered(response)) => {
            ListenerMetrics::inc(&metrics.retransmissions);
            return Handled::Answer(response);
        }
        Some(Seen::Pending) => {
            ListenerMetrics::inc(&metrics.retransmissions);
            return Handled::Done;
        }
        None => {}
    }
    let mut frames = Frames::default();
    frames.push(packet);
    frames.acks.push(Ack { key, response: response_to(packet, secret) });
    // Remembered before it is queued: the source may commit it before this returns.
    cache.insert(key, Seen::Pending);
    match shared.queue.try_send(peer, frames) {
        Ok(()) => {
            ListenerMetrics::inc(&metrics.received);
            Handled::Done
        }
        Err(error) => {
            cache.remove(&key);
            match error {
                QueueError::Full => {
                    ListenerMetrics::inc(&metrics.dropped_overflow);
                    Handled::Done
                }
                QueueError::Closed => Handled::Closed,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(identifier: u8, secret: &[u8]) -> Vec<u8> {
        let mut attrs = lux_generate::radius::Attributes::with_capacity(64);
        attrs.integer(40, 1).octets(1, b"alice").octets(44, b"sess-1");
        attrs.into_accounting_request(identifier, secret)
    }

    #[test]
    fn authenticators_are_verified_and_answers_computed() {
        let packet = request(7, b"testing123");
        let checked = check_packet(&packet).unwrap();
        assert!(verify_request(checked, b"testing123"));
        assert!(!verify_request(checked, b"wrong"));
        let response = response_to(checked, b"testing123");
        assert_eq!(response[0], ACCOUNTING_RESPONSE);
        assert_eq!(response[1], 7);
        assert_eq!(&response[2..4], &[0, 20]);
        let mut md5 = Md5::new();
        md5.update([5, 7, 0, 20]);
        md5.update(&packet[4..20]);
        md5.update(b"testing123");
        assert_eq!(&response[4..], md5.finalize().as_slice());
    }

    #[test]
    fn malformed_datagrams_are_told_apart() {
        assert_eq!(check_packet(&[4; 10]), Err(Malformed::TooShort));
        let mut packet = request(1, b"s");
        packet[0] = 1;
        assert_eq!(check_packet(&packet), Err(Malformed::NotAccountingRequest(1)));
        let mut packet = request(1, b"s");
        packet[2] = 0xff;
        assert!(matches!(check_packet(&packet), Err(Malformed::BadLength(_))));
        let mut padded = request(1, b"s");
        let len = padded.len();
        padded.extend_from_slice(&[0; 8]);
        assert_eq!(check_packet(&padded).unwrap().len(), len, "padding past Length is ignored");
    }

    #[test]
    fn the_most_specific_client_applies() {
        let config = RadiusListenerConfig {
            clients: vec![
                crate::config::RadiusClientConfig {
                    address: "10.0.0.0/8".into(),
                    secret: Some(crate::config::Secret("wide".into())),
                    secret_env: None,
                },
                crate::config::RadiusClientConfig {
                    address: "10.1.2.3".into(),
                    secret: Some(crate::config::Secret("narrow".into())),
                    secret_env: None,
                },
            ],
            ..Default::default()
        };
        let clients = Clients::from_config(&config).unwrap();
        assert_eq!(clients.lookup("10.1.2.3".parse().unwrap()).unwrap().1, b"narrow");
        assert_eq!(clients.lookup("10.9.9.9".parse().unwrap()).unwrap().1, b"wide");
        assert!(clients.lookup("192.0.2.1".parse().unwrap()).is_none());
    }

    #[test]
    fn the_cache_is_bounded_and_remembers_answers() {
        let mut cache = RetransmissionCache::new(3, Duration::from_secs(60));
        let key = |i: u8| RequestKey { client: "127.0.0.1:1".parse().unwrap(), identifier: i, authenticator: [i; 16] };
        for i in 0..5 {
            cache.insert(key(i), Seen::Pending);
        }
        assert_eq!(cache.len(), 3);
        assert_eq!(cache.get(&key(0)), None);
        assert_eq!(cache.get(&key(4)), Some(Seen::Pending));
        cache.answered(key(4), [9; 20]);
        assert_eq!(cache.get(&key(4)), Some(Seen::Answered([9; 20])));
        cache.answered(key(0), [1; 20]);
        assert_eq!(cache.get(&key(0)), Some(Seen::Answered([1; 20])), "an evicted request answered is remembered");
        assert_eq!(cache.len(), 3);

        let mut short = RetransmissionCache::new(10, Duration::ZERO);
        short.insert(key(1), Seen::Pending);
        assert_eq!(short.get(&key(1)), None, "entries older than the window are forgotten");
    }
}
