//! Syslog over UDP (RFC 5426): one datagram, one record.
//!
//! The socket asks the kernel for a large receive buffer (SO_RCVBUF) to absorb bursts. The
//! datagrams of a burst from one sender are queued together; those that find the queue full are
//! dropped and counted (`dropped_overflow`), never buffered without bound. Datagrams the kernel
//! itself dropped (its buffer was full) are read from `/proc/net/udp` and published as
//! `dropped_kernel`, so that every loss is counted.

use crate::metrics::ListenerMetrics;
use crate::source::{Frames, QueueError, QueueSender};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;
use tokio::sync::watch;

/// Largest UDP payload.
const MAX_DATAGRAM: usize = 65_535;
/// Most datagrams (and bytes) queued as one batch.
const BATCH_DATAGRAMS: usize = 256;
const BATCH_BYTES: usize = 256 << 10;

/// Binds a UDP socket with the requested receive buffer; returns it with the buffer size the
/// kernel granted.
pub(crate) fn bind_udp(addr: SocketAddr, receive_buffer: usize) -> std::io::Result<(std::net::UdpSocket, usize)> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if receive_buffer > 0 {
        // The kernel caps it at net.core.rmem_max; a refusal is not fatal.
        let _ = socket.set_recv_buffer_size(receive_buffer);
    }
    socket.bind(&addr.into())?;
    socket.set_nonblocking(true)?;
    let granted = socket.recv_buffer_size().unwrap_or(0);
    Ok((socket.into(), granted))
}

/// Strips what senders add after a syslog message in a datagram: trailing LF, CR and NUL.
fn trim_datagram(datagram: &[u8]) -> &[u8] {
    let end = datagram.iter().rposition(|b| !matches!(b, b'\n' | b'\r' | b'\0')).map(|i| i + 1).unwrap_or(0);
    datagram.get(..end).unwrap_or_default()
}

/// What a UDP listener needs.
pub(crate) struct UdpShared {
    pub max_frame: usize,
    pub queue: QueueSender,
    pub metrics: Arc<ListenerMetrics>,
    pub shutdown: watch::Receiver<bool>,
}

/// Receives datagrams until shutdown.
pub(crate) async fn serve(socket: UdpSocket, shared: UdpShared) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let mut shutdown = shared.shutdown.clone();
    let metrics = &shared.metrics;
    loop {
        let received = tokio::select! {
            received = socket.recv_from(&mut buf) => received,
            _ = shutdown.changed() => return,
        };
        let Ok((n, mut peer)) = received else {
            // ICMP errors and the like: nothing was lost.
            continue;
        };
        let mut frames = Frames::default();
        let push = |frames: &mut Frames, datagram: &[u8]| {
            let datagram = trim_datagram(datagram);
            if datagram.len() > shared.max_frame {
                ListenerMetrics::inc(&metrics.oversized);
                frames.push(datagram.get(..shared.max_frame).unwrap_or_default());
            } else if !datagram.is_empty() {
                frames.push(datagram);
            }
        };
        push(&mut frames, buf.get(..n).unwrap_or_default());
        // Take the rest of a burst without waiting, one batch per run of the same sender.
        while frames.len() < BATCH_DATAGRAMS && frames.data.len() < BATCH_BYTES {
            let Ok((n, next_peer)) = socket.try_recv_from(&mut buf) else { break };
            if next_peer != peer {
                if enqueue(&shared, peer, std::mem::take(&mut frames)) == Err(QueueError::Closed) {
                    return;
                }
                peer = next_peer;
            }
            push(&mut frames, buf.get(..n).unwrap_or_default());
        }
        if enqueue(&shared, peer, frames) == Err(QueueError::Closed) {
            return;
        }
    }
}

fn enqueue(shared: &UdpShared, peer: SocketAddr, frames: Frames) -> Result<(), QueueError> {
    let count = frames.len() as u64;
    if count == 0 {
        return Ok(());
    }
    match shared.queue.try_send(peer, frames) {
        Ok(()) => {
            ListenerMetrics::add(&shared.metrics.received, count);
            Ok(())
        }
        Err(QueueError::Full) => {
            ListenerMetrics::add(&shared.metrics.dropped_overflow, count);
            Ok(())
        }
        Err(QueueError::Closed) => Err(QueueError::Closed),
    }
}

/// The kernel's count of datagrams dropped on one socket (the `drops` column of
/// `/proc/net/udp` and `/proc/net/udp6`, found by the socket's inode), read at most once a
/// second. `None` where it cannot be read (not Linux, not a UDP listener).
#[derive(Debug, Clone, Default)]
pub struct KernelDrops {
    inode: Option<u64>,
    cache: Arc<Mutex<Option<(Instant, u64)>>>,
}

impl KernelDrops {
    /// For the socket with this inode (`None`: nothing to read).
    pub fn for_inode(inode: Option<u64>) -> KernelDrops {
        KernelDrops { inode, cache: Arc::default() }
    }

    /// The inode of a socket, from its file descriptor.
    #[cfg(unix)]
    pub fn inode_of(socket: &impl std::os::fd::AsRawFd) -> Option<u64> {
        let link = std::fs::read_link(format!("/proc/self/fd/{}", socket.as_raw_fd())).ok()?;
        let text = link.to_str()?;
        text.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()
    }

    #[cfg(not(unix))]
    pub fn inode_of<T>(_socket: &T) -> Option<u64> {
        None
    }

    pub fn get(&self) -> Option<u64> {
        let inode = self.inode?;
        let mut cache = self.cache.lock().ok()?;
        if let Some((at, drops)) = *cache {
            if at.elapsed() < Duration::from_secs(1) {
                return Some(drops);
            }
        }
        let drops = ["/proc/net/udp", "/proc/net/udp6"]
            .iter()
            .filter_map(|path| std::fs::read_to_string(path).ok())
            .find_map(|table| drops_of(&table, inode))?;
        *cache = Some((Instant::now(), drops));
        Some(drops)
    }
}

/// The `drops` column of the row of `/proc/net/udp` whose inode is `inode`.
fn drops_of(table: &str, inode: u64) -> Option<u64> {
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        // sl local rem st tx:rx tr:when retrnsmt uid timeout inode ref pointer drops
        (fields.get(9)?.parse::<u64>().ok()? == inode).then(|| fields.get(12)?.parse().ok())?
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datagram_trailers_are_trimmed() {
        assert_eq!(trim_datagram(b"<34>hello\n"), b"<34>hello");
        assert_eq!(trim_datagram(b"<34>hello\r\n\0"), b"<34>hello");
        assert_eq!(trim_datagram(b"\n\n"), b"");
        assert_eq!(trim_datagram(b"a\nb"), b"a\nb");
    }

    #[test]
    fn kernel_drops_are_read_by_inode() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n\
                     1: 0100007F:14EB 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 123456 2 0000000000000000 42\n\
                     2: 0100007F:14EC 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 777 2 0000000000000000 0\n";
        assert_eq!(drops_of(table, 123456), Some(42));
        assert_eq!(drops_of(table, 777), Some(0));
        assert_eq!(drops_of(table, 1), None);
    }

    #[test]
    fn a_bound_socket_has_its_kernel_drop_counter() {
        let (socket, granted) = bind_udp("127.0.0.1:0".parse().unwrap(), 1 << 20).unwrap();
        assert!(granted > 0);
        let drops = KernelDrops::for_inode(KernelDrops::inode_of(&socket));
        assert_eq!(drops.get(), Some(0));
    }
}
