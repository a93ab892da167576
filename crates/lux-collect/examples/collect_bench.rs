//! Throughput of the collectors over loopback into the embedded raw topic, with the demo
//! generator's syslog lines as what the senders send.
//!
//! ```text
//! cargo run --release -p lux-collect --example collect_bench -- tcp 2000000 [connections]
//! cargo run --release -p lux-collect --example collect_bench -- tcp-octet 2000000 [connections]
//! cargo run --release -p lux-collect --example collect_bench -- udp 1000000
//! ```
//!
//! `tcp` (`tcp-octet`): the connections write newline-framed (octet-counted) lines as fast as the collector takes them; the
//! figure is lines committed to the raw topic per second, from the first byte sent to the last
//! record committed. `udp`: one sender sends datagrams as fast as it can; the figure is
//! datagrams committed per second, with every loss counted (queue overflow and the kernel's
//! own drops) so that sent = written + dropped. Both print the peak resident memory.

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
        _ => "tcp",
    };
    let total: usize = args.get(1).and_then(|n| n.parse().ok()).unwrap_or(2_000_000);
    let connections: usize = args.get(2).and_then(|n| n.parse().ok()).unwrap_or(1).max(1);
    let lines = generator_lines()?;
    let mean = lines.iter().map(Vec::len).sum::<usize>() as f64 / lines.len() as f64;
    eprintln!("{} distinct generator lines, {mean:.0} bytes on average", lines.len());

    let dir = tempfile::tempdir()?;
    let log = Arc::new(EmbeddedLog::open(dir.path(), Durability::Group)?);
    log.ensure_topic("raw", 3)?;
    let protocol = if mode == "udp" { SyslogProtocol::Udp } else { SyslogProtocol::Tcp };
    let listener = SyslogListenerConfig {
        protocol,
        listen: "127.0.0.1:0".into(),
        source: "bench".into(),
        receive_buffer: ByteSize(32 << 20),
        ..Default::default()
    };
    let mut sources = lux_collect::start(&CollectConfig { syslog: vec![listener], ..Default::default() }, "raw")?;
    let source = sources.pop().ok_or_else(|| anyhow::anyhow!("no source"))?;
    let addr = source.local_addr().ok_or_else(|| anyhow::anyhow!("not a listener"))?;
    let metrics = source.metrics();
    let stop = Arc::new(AtomicBool::new(false));
    let stage_metrics = Arc::new(StageMetrics::default());
    let runner = {
        let (log, stop, stage_metrics): (Arc<dyn CentralLog>, _, _) =
            (log.clone(), stop.clone(), stage_metrics.clone());
        let options = RunnerOptions { partitions: 3, ..Default::default() };
        std::thread::spawn(move || run_source(log, Box::new(source), options, stage_metrics, stop))
    };

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
    let kernel = || stage_metrics.counters().get("dropped_kernel").copied().unwrap_or(0);
    let mut progress = (metrics.get("written"), Instant::now());
    let finished = loop {
        let written = metrics.get("written");
        if written + metrics.get("dropped_overflow") + kernel() >= sent as u64 {
            break Instant::now();
        }
        if written != progress.0 {
            progress = (written, Instant::now());
        } else if progress.1.elapsed() > Duration::from_secs(3) {
            eprintln!("nothing more arrives after {written} of {sent}");
            break progress.1;
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    let elapsed = finished.duration_since(started);
    stop.store(true, Ordering::Relaxed);
    runner.join().map_err(|_| anyhow::anyhow!("the runner panicked"))??;
    let written = metrics.get("written");
    let raw = log.topic("raw")?.record_count();
    println!(
        "{mode}: sent {sent} lines over {connections} connection(s) in {:.2} s; {written} written ({raw} in the raw topic) in {:.2} s: {:.0} lines/s",
        send_time.as_secs_f64(),
        elapsed.as_secs_f64(),
        written as f64 / elapsed.as_secs_f64()
    );
    println!(
        "losses counted: dropped_overflow {}, dropped_kernel {}; unaccounted {}; peak RSS {:.0} MiB",
        metrics.get("dropped_overflow"),
        kernel(),
        (sent as u64).saturating_sub(written + metrics.get("dropped_overflow") + kernel()),
        peak_rss_mib()
    );
    Ok(())
}
