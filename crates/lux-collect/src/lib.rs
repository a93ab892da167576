//! LUX collectors: take what network equipment sends (syslog over UDP, TCP and TLS, RADIUS
//! accounting, HTTP) and the log files it writes into the `raw` topic of the central log,
//! without loss and under pressure.
//!
//! [`start`] binds every configured listener on one small tokio runtime and returns one
//! [`Collector`] per listener and per `[[collect.files]]` entry: a `lux_stage::Source` that the
//! runner drives like any other source stage (named `collect-<source id>`), committing what the
//! collector received in atomic batches. Tailed files ([`files`]) are read on the runner's
//! thread, their positions committed with their lines (exactly once across restarts).
//! Network collectors are at-least-once: RADIUS is answered only once its packet is
//! committed, HTTP requests once their records are; syslog has no acknowledgement, so
//! what a listener had received but not yet committed when the process is killed is lost (a
//! clean stop commits it first).
//!
//! Memory is bounded per listener (`queue`): TCP readers stop reading when it is full (the
//! senders slow down), UDP datagrams and RADIUS packets that do not fit are dropped and counted
//! (RADIUS is not answered, so the NAS retries), HTTP requests are refused with 503. Files are
//! read only as fast as the log takes their lines. Every refusal has a counter
//! ([`metrics::ListenerMetrics`]), published as the source's counters.

pub mod config;
pub mod files;
pub mod http;
pub mod metrics;
pub mod radius;
pub mod source;
pub mod syslog_tcp;
pub mod syslog_udp;

pub use config::{
    CollectConfig, FileSourceConfig, HttpListenerConfig, RadiusListenerConfig, SyslogListenerConfig, SyslogProtocol,
};
pub use files::FileSource;
pub use source::CollectSource;

use anyhow::Context as _;
use lux_stage::{Context, Source, SourcePoll};
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

/// One configured collector as a source stage: a network listener or tailed files.
pub enum Collector {
    /// Syslog, RADIUS or HTTP: network tasks feed a bounded queue that the source drains.
    Listener(CollectSource),
    /// Tailed files, read by the source itself.
    Files(FileSource),
}

impl Collector {
    fn source(&self) -> &dyn Source {
        match self {
            Collector::Listener(source) => source,
            Collector::Files(source) => source,
        }
    }

    fn source_mut(&mut self) -> &mut dyn Source {
        match self {
            Collector::Listener(source) => source,
            Collector::Files(source) => source,
        }
    }

    /// The address a listener is bound to (its actual port when configured with port 0);
    /// `None` for files.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        match self {
            Collector::Listener(source) => Some(source.local_addr()),
            Collector::Files(_) => None,
        }
    }

    /// The configured source id.
    pub fn source_id(&self) -> &str {
        match self {
            Collector::Listener(source) => source.source_id(),
            Collector::Files(source) => source.source_id(),
        }
    }

    /// What it is (`syslog tcp 0.0.0.0:514`, `files /var/log/olt/*.log`).
    pub fn description(&self) -> String {
        match self {
            Collector::Listener(source) => source.description().to_owned(),
            Collector::Files(source) => source.description(),
        }
    }

    /// Its counters (shared: they move while it runs).
    pub fn metrics(&self) -> Arc<ListenerMetrics> {
        match self {
            Collector::Listener(source) => source.metrics(),
            Collector::Files(source) => source.metrics(),
        }
    }
}

impl Source for Collector {
    fn name(&self) -> &str {
        self.source().name()
    }
    fn outputs(&self) -> Vec<String> {
        self.source().outputs()
    }
    fn restore(&mut self, state: Vec<(Vec<u8>, Vec<u8>)>) -> anyhow::Result<()> {
        self.source_mut().restore(state)
    }
    fn poll(&mut self, ctx: &mut Context, max_records: usize) -> anyhow::Result<SourcePoll> {
        self.source_mut().poll(ctx, max_records)
    }
    fn committed(&mut self) {
        self.source_mut().committed()
    }
    fn counters(&self) -> Vec<(String, u64)> {
        self.source().counters()
    }
    fn stop_intake(&mut self) -> bool {
        self.source_mut().stop_intake()
    }
}

/// Binds every configured listener and returns the collectors (none when nothing is
/// configured). Fails, naming the collector's key, when an address cannot be bound, a TLS
/// certificate or key cannot be read, or a secret (RADIUS, HTTP token) cannot be read.
pub fn start(config: &CollectConfig, raw_topic: &str) -> anyhow::Result<Vec<Collector>> {
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
        sources.push(Collector::Listener(source));
    }
    for (i, listener) in config.radius.iter().enumerate() {
        let key = format!("collect.radius[{i}]");
        let source =
            start_radius(listener, raw_topic, &runtime).with_context(|| format!("{key} ({})", listener.source))?;
        sources.push(Collector::Listener(source));
    }
    for (i, listener) in config.http.iter().enumerate() {
        let key = format!("collect.http[{i}]");
        let source =
            start_http(listener, raw_topic, &runtime).with_context(|| format!("{key} ({})", listener.source))?;
        sources.push(Collector::Listener(source));
    }
    for files in &config.files {
        tracing::info!(source = %files.source, paths = ?files.paths, "file collector configured");
        sources.push(Collector::Files(FileSource::new(files, raw_topic)));
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

fn start_http(
    listener: &HttpListenerConfig,
    raw_topic: &str,
    runtime: &Arc<tokio::runtime::Runtime>,
) -> anyhow::Result<CollectSource> {
    let addr = listen_address(&listener.listen)?;
    let token = listener.resolve_token().map_err(anyhow::Error::msg)?;
    let tls = match (&listener.tls_cert, &listener.tls_key) {
        (Some(cert), Some(key)) => Some(tls_acceptor(cert, key)?),
        _ => None,
    };
    let metrics = Arc::new(ListenerMetrics::default());
    let (queue, rx) = source::queue(listener.queue.bytes());
    let (shutdown, mut shutdown_rx) = watch::channel(false);
    let _entered = runtime.enter();
    let socket = bind_tcp(addr).map_err(|e| bind_error(e, addr, "tcp"))?;
    let local_addr = socket.local_addr()?;
    let tcp = tokio::net::TcpListener::from_std(socket)?;
    let shared = Arc::new(http::HttpShared {
        token: token.0.into_bytes(),
        max_body: usize::try_from(listener.max_body.bytes()).unwrap_or(usize::MAX),
        max_line: usize::try_from(listener.max_line.bytes()).unwrap_or(usize::MAX).max(1),
        queue,
        metrics: metrics.clone(),
    });
    let service = http::router(shared).into_make_service_with_connect_info::<http::Peer>();
    let stopped = async move {
        let _ = shutdown_rx.wait_for(|stop| *stop).await;
    };
    let source_id = listener.source.clone();
    let scheme = if tls.is_some() { "https" } else { "http" };
    let (max_connections, idle_timeout) = (listener.max_connections, listener.idle_timeout);
    match tls {
        None => {
            let guarded = http::Guarded::new(tcp, max_connections, idle_timeout, metrics.clone());
            runtime.spawn(async move {
                if let Err(error) = axum::serve(guarded, service).with_graceful_shutdown(stopped).await {
                    tracing::error!(source = %source_id, %error, "the HTTP listener stopped");
                }
            });
        }
        Some(acceptor) => {
            let tls_listener = http::TlsListener::new(tcp, acceptor, metrics.clone())?;
            let guarded = http::Guarded::new(tls_listener, max_connections, idle_timeout, metrics.clone());
            runtime.spawn(async move {
                if let Err(error) = axum::serve(guarded, service).with_graceful_shutdown(stopped).await {
                    tracing::error!(source = %source_id, %error, "the HTTPS listener stopped");
                }
            });
        }
    }
    tracing::info!(source = %listener.source, address = %local_addr, scheme, "HTTP collector listening");
    let spec = SourceSpec {
        source_id: listener.source.clone(),
        format: listener.format,
        raw_topic: raw_topic.to_owned(),
        description: format!("{scheme} {local_addr}{}", http::RECORDS_PATH),
    };
    let parts = ListenerParts {
        local_addr,
        rx,
        metrics,
        responder: None,
        shutdown,
        runtime: runtime.clone(),
        kernel_drops: KernelDrops::default(),
    };
    Ok(CollectSource::new(spec, parts))
}
