//! Throughput of the collectors over loopback into the embedded raw topic, with the demo
//! generator's syslog lines as what the senders send.
//!
//! ```text
//! cargo run --release -p lux-collect --example collect_bench -- tcp 2000000 [connections]
//! cargo run --release -p lux-collect --example collect_bench -- tcp-octet 2000000 [connections]
//! cargo run --release -p lux-collect --example collect_bench -- udp 1000000
//! cargo run --release -p lux-collect --example collect_bench -- file 2000000
//! cargo run --release -p lux-collect --example collect_bench -- http 2000000 [connections] [lines per request]
//! ```
//!
//! `tcp` (`tcp-octet`): the connections write newline-framed (octet-counted) lines as fast as the collector takes them; the
//! figure is lines committed to the raw topic per second, from the first byte sent to the last
//! record committed. `udp`: one sender sends datagrams as fast as it can; the figure is
//! datagrams committed per second, with every loss counted (queue overflow and the kernel's
//! own drops) so that sent = written + dropped. `file`: the lines are written to a file first,
//! then tailed from its start: lines committed per second from the collector's start to the
//! last commit. `http`: each connection posts requests of newline-delimited lines (1,000 by
//! default) with keep-alive and waits for each 200 (given once the lines are committed) before
//! the next; lines committed per second. All print the peak resident memory.

use lux_collect::config::ByteSize;
use lux_collect::{CollectConfig, SyslogListenerConfig, SyslogProtocol};
use lux_log::embedded::EmbeddedLog;
use lux_log::{CentralLog, Durability};
use lux_stage::{run_source, RunnerOptions, StageMetrics};
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Distinct generator lines sent over and over.
const DISTINCT_LINES: usize = 50_000;

fn generator_lines() -> anyhow::Result<Vec<Vec<u8>>> {
    let config = lux_generate::GeneratorConfig {
        rate: 20_000.0,
        start: Some(lux_generate::DEFAULT_START.into()),
        ..Default::default()
    };
    let start = config.start_ms()?;
    let network = lux_generate::Network::generate_at(&config, start)?;
    let traffic = lux_generate::Traffic::new(&network, &config, start)?;
    let mut schedule = lux_generate::Schedule::new(&traffic, 0);
    let mut lines = Vec::with_capacity(DISTINCT_LINES);
    while lines.len() < DISTINCT_LINES {
        let (_, batch) = schedule.next_batch(&traffic);
        lines.extend(batch.into_iter().filter(|r| r.format == lux_model::Format::Syslog).map(|r| r.payload));
    }
    lines.truncate(DISTINCT_LINES);
    Ok(lines)
}

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0);
    kib / 1024.0
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mode: &'static str = match args.first().map(String::as_str) {
        Some("udp") => "udp",
        Some("tcp-octet") => "tcp-octet",
        Some("file") => "file",
        Some("http") => "http",
        _ => "tcp",
    };
    let total: usize = args.get(1).and_then(|n| n.parse().ok()).unwrap_or(2_000_000);
    let connections: usize = args.get(2).and_then(|n| n.parse().ok()).unwrap_or(1).max(1);
    let lines = generator_lines()?;
    let mean = lines.iter().map(Vec::len).sum::<usize>() as f64 / lines.len() as f64;
    eprintln!("{} distinct generator lines, {mean:.0} bytes on average", lines.len());
    match mode {
        "file" => return bench_file(&lines, total),
        "http" => {
            let per_request: usize = args.get(3).and_then(|n| n.parse().ok()).unwrap_or(1000).max(1);
            return bench_http(lines, total, connections, per_request);
        }
        _ => {}
    }

    let protocol = if mode == "udp" { SyslogProtocol::Udp } else { SyslogProtocol::Tcp };
    let listener = SyslogListenerConfig {
        protocol,
        listen: "127.0.0.1:0".into(),
        source: "bench".into(),
        receive_buffer: ByteSize(32 << 20),
        ..Default::default()
    };
    let running = run_collector(&CollectConfig { syslog: vec![listener], ..Default::default() })?;
    let addr = running.addr.ok_or_else(|| anyhow::anyhow!("not a listener"))?;

    let started = Instant::now();
    let lines = Arc::new(lines);
    let senders: Vec<_> = (0..connections)
        .map(|c| {
            let lines = lines.clone();
            let count = total / connections + usize::from(c < total % connections);
            std::thread::spawn(move || -> anyhow::Result<usize> {
                if mode == "udp" {
                    let socket = std::net::UdpSocket::bind("127.0.0.1:0")?;
                    for i in 0..count {
                        // A full kernel buffer is a loss the receiver counts; keep sending.
                        let _ = socket.send_to(&lines[(i + c) % lines.len()], addr);
                    }
                } else {
                    let mut stream = std::io::BufWriter::with_capacity(256 << 10, std::net::TcpStream::connect(addr)?);
                    for i in 0..count {
                        let line = &lines[(i + c) % lines.len()];
                        if mode == "tcp-octet" {
                            write!(stream, "{} ", line.len())?;
                            stream.write_all(line)?;
                        } else {
                            stream.write_all(line)?;
                            stream.write_all(b"\n")?;
                        }
                    }
                    stream.flush()?;
                }
                Ok(count)
            })
        })
        .collect();
    let mut sent = 0;
    for sender in senders {
        sent += sender.join().map_err(|_| anyhow::anyhow!("a sender panicked"))??;
    }
    let send_time = started.elapsed();
    // Every line is either written or counted as dropped (by the queue or by the kernel).
    let finished = running.wait_written(sent, Duration::from_secs(3));
    let (metrics, kernel) = (running.metrics.clone(), running.counter("dropped_kernel"));
    println!("{mode}: sent {sent} lines over {connections} connection(s) in {:.2} s", send_time.as_secs_f64());
    let written = running.finish(mode, total, started, finished)?;
    println!(
        "losses counted: dropped_overflow {}, dropped_kernel {kernel}; unaccounted {}",
        metrics.get("dropped_overflow"),
        (sent as u64).saturating_sub(written + metrics.get("dropped_overflow") + kernel),
    );
    Ok(())
}

/// The only collector of a config, run into a fresh embedded raw topic.
struct Running {
    _dir: tempfile::TempDir,
    log: Arc<EmbeddedLog>,
    metrics: Arc<lux_collect::metrics::ListenerMetrics>,
    stage_metrics: Arc<StageMetrics>,
    stop: Arc<AtomicBool>,
    runner: std::thread::JoinHandle<anyhow::Result<()>>,
    addr: Option<std::net::SocketAddr>,
}

fn run_collector(config: &CollectConfig) -> anyhow::Result<Running> {
    let dir = tempfile::tempdir()?;
    let log = Arc::new(EmbeddedLog::open(dir.path(), Durability::Group)?);
    log.ensure_topic("raw", 3)?;
    let mut sources = lux_collect::start(config, "raw")?;
    let source = sources.pop().ok_or_else(|| anyhow::anyhow!("no source"))?;
    let (metrics, addr) = (source.metrics(), source.local_addr());
    let stop = Arc::new(AtomicBool::new(false));
    let stage_metrics = Arc::new(StageMetrics::default());
    let runner = {
        let (log, stop, stage_metrics): (Arc<dyn CentralLog>, _, _) =
            (log.clone(), stop.clone(), stage_metrics.clone());
        let options = RunnerOptions { partitions: 3, ..Default::default() };
        std::thread::spawn(move || run_source(log, Box::new(source), options, stage_metrics, stop))
    };
    Ok(Running { _dir: dir, log, metrics, stage_metrics, stop, runner, addr })
}

impl Running {
    /// A counter of the source, as the runner publishes it (`dropped_kernel`).
    fn counter(&self, name: &str) -> u64 {
        self.stage_metrics.counters().get(name).copied().unwrap_or(0)
    }

    /// Waits until `total` lines are written or counted as dropped (or nothing moves for
    /// `patience`); returns the time of the last progress seen.
    fn wait_written(&self, total: usize, patience: Duration) -> Instant {
        let mut progress = (self.metrics.get("written"), Instant::now());
        loop {
            let written = self.metrics.get("written");
            if written + self.metrics.get("dropped_overflow") + self.counter("dropped_kernel") >= total as u64 {
                return Instant::now();
            }
            if written != progress.0 {
                progress = (written, Instant::now());
            } else if progress.1.elapsed() > patience {
                eprintln!("nothing more arrives after {written} of {total}");
                return progress.1;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Stops the runner, prints the rate and the peak memory; returns the lines written.
    fn finish(self, mode: &str, total: usize, started: Instant, finished: Instant) -> anyhow::Result<u64> {
        self.stop.store(true, Ordering::Relaxed);
        self.runner.join().map_err(|_| anyhow::anyhow!("the runner panicked"))??;
        let written = self.metrics.get("written");
        let raw = self.log.topic("raw")?.record_count();
        let elapsed = finished.duration_since(started).as_secs_f64();
        println!(
            "{mode}: {total} lines; {written} written ({raw} in the raw topic) in {elapsed:.2} s: {:.0} lines/s; peak RSS {:.0} MiB",
            written as f64 / elapsed,
            peak_rss_mib()
        );
        Ok(written)
    }
}

fn bench_file(lines: &[Vec<u8>], total: usize) -> anyhow::Result<()> {
    let logs = tempfile::tempdir()?;
    let path = logs.path().join("equipment.log");
    let mut file = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&path)?);
    for i in 0..total {
        file.write_all(&lines[i % lines.len()])?;
        file.write_all(b"\n")?;
    }
    file.flush()?;
    drop(file);
    let files = lux_collect::FileSourceConfig {
        paths: vec![path.display().to_string()],
        source: "bench".into(),
        ..Default::default()
    };
    let started = Instant::now();
    let running = run_collector(&CollectConfig { files: vec![files], ..Default::default() })?;
    let finished = running.wait_written(total, Duration::from_secs(10));
    running.finish("file", total, started, finished).map(|_| ())
}

/// Posts `body` on a kept-alive connection; returns the status code.
fn post(stream: &mut std::io::BufReader<std::net::TcpStream>, body: &[u8]) -> anyhow::Result<u16> {
    use std::io::BufRead;
    let head = format!(
        "POST /v1/records HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {HTTP_TOKEN}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    // One write: a head and a body in two small writes would wait for a delayed ACK (Nagle).
    let mut request = Vec::with_capacity(head.len() + body.len());
    request.extend_from_slice(head.as_bytes());
    request.extend_from_slice(body);
    stream.get_mut().write_all(&request)?;
    let mut status_line = String::new();
    stream.read_line(&mut status_line)?;
    let status = status_line.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        stream.read_line(&mut line)?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut answer = vec![0u8; length];
    std::io::Read::read_exact(stream, &mut answer)?;
    Ok(status)
}

const HTTP_TOKEN: &str = "bench-token";

fn bench_http(lines: Vec<Vec<u8>>, total: usize, connections: usize, per_request: usize) -> anyhow::Result<()> {
    let listener = lux_collect::HttpListenerConfig {
        listen: "127.0.0.1:0".into(),
        source: "bench".into(),
        token: Some(lux_collect::config::Secret(HTTP_TOKEN.into())),
        ..Default::default()
    };
    let running = run_collector(&CollectConfig { http: vec![listener], ..Default::default() })?;
    let addr = running.addr.ok_or_else(|| anyhow::anyhow!("no address"))?;
    let lines = Arc::new(lines);
    let started = Instant::now();
    let senders: Vec<_> = (0..connections)
        .map(|c| {
            let lines = lines.clone();
            let count = total / connections + usize::from(c < total % connections);
            std::thread::spawn(move || -> anyhow::Result<(usize, usize)> {
                let mut stream = std::io::BufReader::new(std::net::TcpStream::connect(addr)?);
                let (mut sent, mut refused) = (0, 0);
                let mut body = Vec::with_capacity(per_request * 160);
                while sent < count {
                    body.clear();
                    let n = per_request.min(count - sent);
                    for i in sent..sent + n {
                        body.extend_from_slice(&lines[(i * connections + c) % lines.len()]);
                        body.push(b'\n');
                    }
                    match post(&mut stream, &body)? {
                        200 => sent += n,
                        503 => {
                            refused += 1;
                            std::thread::sleep(Duration::from_millis(10));
                        }
                        status => anyhow::bail!("answered {status}"),
                    }
                }
                Ok((sent, refused))
            })
        })
        .collect();
    let mut refused = 0;
    for sender in senders {
        refused += sender.join().map_err(|_| anyhow::anyhow!("a sender panicked"))??.1;
    }
    let finished = running.wait_written(total, Duration::from_secs(10));
    println!("http: {connections} connection(s), {per_request} lines per request, {refused} requests refused (503) and sent again");
    running.finish("http", total, started, finished).map(|_| ())
}
