//! LUX collectors: take what network equipment sends (syslog over UDP, TCP and TLS, RADIUS
//! accounting) into the `raw` topic of the central log, without loss and under pressure.
//!
//! [`start`] binds every configured listener on one small tokio runtime and returns one
//! [`CollectSource`] per listener: a `lux_stage::Source` that the runner drives like any other
//! source stage (named `collect-<source id>`), committing what the listener received in atomic
//! batches. Collectors are at-least-once towards the network: RADIUS is answered only once its
//! packet is committed; syslog has no acknowledgement, so what a listener had received but not
//! yet committed when the process is killed is lost (a clean stop commits it first).
//!
//! Memory is bounded per listener (`queue`): TCP readers stop reading when it is full (the
//! senders slow down), UDP datagrams and RADIUS packets that do not fit are dropped and counted
//! (RADIUS is not answered, so the NAS retries). Every refusal has a counter
//! ([`metrics::ListenerMetrics`]), published as the source's counters.

pub mod config;
pub mod metrics;
pub mod radius;
pub mod source;
pub mod syslog_tcp;
pub mod syslog_udp;

pub use config::{CollectConfig, RadiusListenerConfig, SyslogListenerConfig, SyslogProtocol};
pub use source::CollectSource;

use anyhow::Context as _;
use metrics::{ListenerMetrics, RateLimited};
use source::{ListenerParts, SourceSpec};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use syslog_udp::KernelDrops;
use tokio::sync::watch;

/// Pending connections the kernel keeps for a TCP listener (bursts of reconnecting senders).
const TCP_BACKLOG: i32 = 4096;

/// Binds every configured listener and returns their sources (none when nothing is configured).
/// Fails, naming the listener's key, when an address cannot be bound, a TLS certificate or key
/// cannot be read, or a RADIUS secret is missing from the environment.
pub fn start(config: &CollectConfig, raw_topic: &str) -> anyhow::Result<Vec<CollectSource>> {
    if config.is_empty() {
        return Ok(Vec::new());
    }
    let runtime = Arc::new(
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(config.workers.clamp(1, 16))
            .thread_name("lux-collect")
            .enable_all()
            .build()
            .context("cannot start the collectors' network runtime")?,
    );
    let mut sources = Vec::new();
    for (i, listener) in config.syslog.iter().enumerate() {
        let key = format!("collect.syslog[{i}]");
        let source =
            start_syslog(listener, raw_topic, &runtime).with_context(|| format!("{key} ({})", listener.source))?;
        sources.push(source);
    }
    for (i, listener) in config.radius.iter().enumerate() {
        let key = format!("collect.radius[{i}]");
        let source =
            start_radius(listener, raw_topic, &runtime).with_context(|| format!("{key} ({})", listener.source))?;
        sources.push(source);
    }
    Ok(sources)
}

fn listen_address(listen: &str) -> anyhow::Result<SocketAddr> {
    listen.parse().with_context(|| format!("{listen:?} is not an address and port (0.0.0.0:514)"))
}

fn bind_error(error: std::io::Error, addr: SocketAddr, transport: &str) -> anyhow::Error {
    let hint = match error.kind() {
        std::io::ErrorKind::PermissionDenied if addr.port() < 1024 => {
            "; ports below 1024 need root or the CAP_NET_BIND_SERVICE capability (or listen on a port above 1023)"
        }
        std::io::ErrorKind::AddrInUse => {
            "; another process (or another listener) uses it: stop it or choose another port"
        }
        std::io::ErrorKind::AddrNotAvailable => "; this machine has no such address: use one of its own, or 0.0.0.0",
        _ => "",
    };
    anyhow::anyhow!("cannot listen on {addr}/{transport}: {error}{hint}")
}

fn start_syslog(
    listener: &SyslogListenerConfig,
    raw_topic: &str,
    runtime: &Arc<tokio::runtime::Runtime>,
) -> anyhow::Result<CollectSource> {
    let addr = listen_address(&listener.listen)?;
    let protocol = listener.protocol.as_str();
    let metrics = Arc::new(ListenerMetrics::default());
    let (queue, rx) = source::queue(listener.queue.bytes());
    let (shutdown, shutdown_rx) = watch::channel(false);
    let max_frame = usize::try_from(listener.max_frame.bytes()).unwrap_or(usize::MAX);
    let _entered = runtime.enter();
    let (local_addr, kernel_drops) = match listener.protocol {
        SyslogProtocol::Udp => {
            let receive_buffer = usize::try_from(listener.receive_buffer.bytes()).unwrap_or(usize::MAX);
            let (socket, granted) = bind_udp_or_explain(addr, receive_buffer)?;
            let local_addr = socket.local_addr()?;
            let kernel_drops = KernelDrops::for_inode(KernelDrops::inode_of(&socket));
            if granted < receive_buffer {
                tracing::info!(source = %listener.source, asked = receive_buffer, granted, "the kernel granted a smaller UDP receive buffer (raise net.core.rmem_max to absorb larger bursts)");
            }
            let socket = tokio::net::UdpSocket::from_std(socket)?;
            let shared = syslog_udp::UdpShared { max_frame, queue, metrics: metrics.clone(), shutdown: shutdown_rx };
            runtime.spawn(syslog_udp::serve(socket, shared));
            (local_addr, kernel_drops)
        }
        SyslogProtocol::Tcp | SyslogProtocol::Tls => {
            let tls = match listener.protocol {
                SyslogProtocol::Tls => {
                    let (Some(cert), Some(key)) = (&listener.tls_cert, &listener.tls_key) else {
                        anyhow::bail!("protocol = \"tls\" needs tls_cert and tls_key");
                    };
                    Some(tls_acceptor(cert, key)?)
                }
                _ => None,
            };
            let socket = bind_tcp(addr).map_err(|e| bind_error(e, addr, protocol))?;
            let local_addr = socket.local_addr()?;
            let tcp = tokio::net::TcpListener::from_std(socket)?;
            let shared = Arc::new(syslog_tcp::TcpShared {
                source_id: listener.source.clone(),
                max_frame,
                idle_timeout: listener.idle_timeout,
                queue,
                metrics: metrics.clone(),
                shutdown: shutdown_rx,
                tls,
                warn_framing: Mutex::new(RateLimited::new(Duration::from_secs(10))),
                warn_accept: Mutex::new(RateLimited::new(Duration::from_secs(10))),
            });
            runtime.spawn(syslog_tcp::serve(tcp, shared, listener.max_connections));
            (local_addr, KernelDrops::default())
        }
    };
    tracing::info!(source = %listener.source, protocol, address = %local_addr, "syslog collector listening");
    let spec = SourceSpec {
        source_id: listener.source.clone(),
        format: listener.format,
        raw_topic: raw_topic.to_owned(),
        description: format!("syslog {protocol} {local_addr}"),
    };
    let parts =
        ListenerParts { local_addr, rx, metrics, responder: None, shutdown, runtime: runtime.clone(), kernel_drops };
    Ok(CollectSource::new(spec, parts))
}

fn bind_udp_or_explain(addr: SocketAddr, receive_buffer: usize) -> anyhow::Result<(std::net::UdpSocket, usize)> {
    syslog_udp::bind_udp(addr, receive_buffer).map_err(|e| bind_error(e, addr, "udp"))
}

fn bind_tcp(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(TCP_BACKLOG)?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

/// The TLS acceptor of a certificate chain and key in PEM files.
fn tls_acceptor(cert: &Path, key: &Path) -> anyhow::Result<tokio_rustls::TlsAcceptor> {
    use tokio_rustls::rustls;
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<_, _>>())
        .map_err(|e| anyhow::anyhow!("tls_cert {}: cannot read a PEM certificate chain: {e}", cert.display()))?;
    if certs.is_empty() {
        anyhow::bail!(
            "tls_cert {}: no certificate in the file (expected PEM `BEGIN CERTIFICATE` blocks)",
            cert.display()
        );
    }
    let private_key = PrivateKeyDer::from_pem_file(key).map_err(|e| {
        anyhow::anyhow!("tls_key {}: cannot read a PEM private key (PKCS#8, PKCS#1 or SEC1): {e}", key.display())
    })?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(certs, private_key)
        .map_err(|e| anyhow::anyhow!("tls_cert/tls_key {} / {}: {e}", cert.display(), key.display()))?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

fn start_radius(
    listener: &RadiusListenerConfig,
    raw_topic: &str,
    runtime: &Arc<tokio::runtime::Runtime>,
) -> anyhow::Result<CollectSource> {
    let addr = listen_address(&listener.listen)?;
    let clients = radius::Clients::from_config(listener).map_err(anyhow::Error::msg)?;
    let metrics = Arc::new(ListenerMetrics::default());
    let (queue, rx) = source::queue(listener.queue.bytes());
    let (shutdown, shutdown_rx) = watch::channel(false);
    let _entered = runtime.enter();
    let receive_buffer = usize::try_from(listener.receive_buffer.bytes()).unwrap_or(usize::MAX);
    let (socket, _) = bind_udp_or_explain(addr, receive_buffer)?;
    let local_addr = socket.local_addr()?;
    let kernel_drops = KernelDrops::for_inode(KernelDrops::inode_of(&socket));
    let answer_socket = socket.try_clone().context("cannot duplicate the RADIUS socket for answers")?;
    let cache = Arc::new(Mutex::new(radius::RetransmissionCache::new(
        listener.retransmission_cache,
        listener.retransmission_window,
    )));
    let socket = tokio::net::UdpSocket::from_std(socket)?;
    let shared = radius::RadiusShared {
        source_id: listener.source.clone(),
        clients,
        cache: cache.clone(),
        queue,
        metrics: metrics.clone(),
        shutdown: shutdown_rx,
    };
    runtime.spawn(radius::serve(socket, shared));
    tracing::info!(source = %listener.source, address = %local_addr, clients = listener.clients.len(), "RADIUS accounting collector listening");
    let spec = SourceSpec {
        source_id: listener.source.clone(),
        format: lux_model::Format::Radius,
        raw_topic: raw_topic.to_owned(),
        description: format!("radius udp {local_addr}"),
    };
    let parts = ListenerParts {
        local_addr,
        rx,
        metrics,
        responder: Some(radius::Responder::new(answer_socket, cache)),
        shutdown,
        runtime: runtime.clone(),
        kernel_drops,
    };
    Ok(CollectSource::new(spec, parts))
}
