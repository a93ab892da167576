//! The `/metrics` HTTP endpoint: axum on a current-thread tokio runtime of its own thread, so
//! that scrapes never take a stage's thread. It stops when the process's stop flag is set.

use crate::Registry;
use anyhow::Context as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The content type of the text exposition format.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A running endpoint.
pub struct MetricsServer {
    addr: SocketAddr,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl MetricsServer {
    /// The address it listens on (with the port chosen when `:0` was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Waits for the endpoint to stop (after the stop flag was set).
    pub fn join(mut self) {
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Binds `listen` now (so that a taken port is reported at once) and serves `GET /metrics`
/// from `registry` until `stop` is set.
pub fn serve(listen: SocketAddr, registry: Arc<Registry>, stop: Arc<AtomicBool>) -> anyhow::Result<MetricsServer> {
    let listener =
        std::net::TcpListener::bind(listen).with_context(|| format!("cannot listen for /metrics on {listen}"))?;
    listener.set_nonblocking(true).context("cannot make the /metrics socket non-blocking")?;
    let addr = listener.local_addr().context("the /metrics socket has no address")?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .context("cannot start the /metrics runtime")?;
    let thread = std::thread::Builder::new().name("lux-metrics".into()).spawn(move || {
        runtime.block_on(async move {
            let listener = match tokio::net::TcpListener::from_std(listener) {
                Ok(listener) => listener,
                Err(error) => {
                    tracing::error!(%error, %addr, "cannot serve /metrics");
                    return;
                }
            };
            let app = axum::Router::new().route(
                "/metrics",
                axum::routing::get(move || {
                    let registry = registry.clone();
                    async move { ([(axum::http::header::CONTENT_TYPE, CONTENT_TYPE)], registry.render()) }
                }),
            );
            let shutdown = async move {
                while !stop.load(Ordering::Relaxed) {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            };
            if let Err(error) = axum::serve(listener, app).with_graceful_shutdown(shutdown).await {
                tracing::error!(%error, %addr, "the /metrics endpoint stopped");
            }
        })
    })?;
    Ok(MetricsServer { addr, thread: Some(thread) })
}
