//! `lux generate`: writes the reference data and a stretch of traffic to files, stdout or the
//! network (syslog over UDP/TCP, RADIUS over UDP), paced in wall-clock time when asked.

use crate::config::GeneratorConfig;
use crate::network::Network;
use crate::traffic::{GeneratedRecord, Schedule, Traffic};
use anyhow::{bail, Context};
use lux_model::Format;
use std::fmt;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::net::{TcpStream, ToSocketAddrs, UdpSocket};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Flags of `lux generate` (they override the `[generator]` section).
#[derive(Debug, Clone, PartialEq, clap::Args)]
pub struct GenerateArgs {
    /// Seed of the network and the traffic (overrides `generator.seed`).
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// Start of simulated time, RFC 3339 (default: `generator.start`, else 2026-01-05T00:00:00Z).
    #[arg(long, value_name = "RFC3339")]
    pub start: Option<String>,
    /// Simulated time to generate (`60s`, `10m`, `1h`).
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// Mean records per second (overrides `generator.rate`).
    #[arg(long, value_name = "N")]
    pub rate: Option<f64>,
    /// Directory to write `reference/*.csv`, `syslog.log`, `radius.bin` and `incidents.json` to.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Write the syslog lines to standard output.
    #[arg(long)]
    pub stdout: bool,
    /// Send syslog lines as UDP datagrams to this address (`127.0.0.1:5514`).
    #[arg(long, value_name = "ADDR")]
    pub syslog_udp: Option<String>,
    /// Send syslog lines over one TCP connection to this address, newline-framed.
    #[arg(long, value_name = "ADDR")]
    pub syslog_tcp: Option<String>,
    /// With `--syslog-tcp`: frame messages with RFC 6587 octet counting instead of newlines.
    #[arg(long, requires = "syslog_tcp")]
    pub octet_counting: bool,
    /// Send RADIUS Accounting-Request packets as UDP datagrams to this address.
    #[arg(long, value_name = "ADDR")]
    pub radius_udp: Option<String>,
    /// Pace output in wall-clock time at the configured rate (implied by network outputs).
    #[arg(long)]
    pub realtime: bool,
}

impl Default for GenerateArgs {
    fn default() -> Self {
        GenerateArgs {
            seed: None,
            start: None,
            duration: Duration::from_secs(60),
            rate: None,
            out: None,
            stdout: false,
            syslog_udp: None,
            syslog_tcp: None,
            octet_counting: false,
            radius_udp: None,
            realtime: false,
        }
    }
}

/// What a `lux generate` run produced.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    pub rfc5424_records: u64,
    pub rfc3164_records: u64,
    pub radius_records: u64,
    /// Records whose error code the catalogue counts as a failure.
    pub failures: u64,
    /// Records sent after the next second's records started (out of order).
    pub late_records: u64,
    /// Datagrams the network refused (nobody listening...).
    pub send_errors: u64,
    pub simulated: Duration,
    pub elapsed: Duration,
    /// How far behind schedule output fell at worst (realtime only).
    pub max_lag: Duration,
}

impl Summary {
    pub fn records(&self) -> u64 {
        self.rfc5424_records + self.rfc3164_records + self.radius_records
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        write!(
            f,
            "generated {} records over {} of simulated time: {} syslog RFC 5424, {} syslog RFC 3164, {} RADIUS; \
             {} failures, {} late; {:.1}s wall clock, {:.0} records/s",
            self.records(),
            humantime::format_duration(self.simulated),
            self.rfc5424_records,
            self.rfc3164_records,
            self.radius_records,
            self.failures,
            self.late_records,
            self.elapsed.as_secs_f64(),
            self.records() as f64 / secs,
        )?;
        if !self.max_lag.is_zero() {
            write!(f, "; at worst {} ms behind schedule", self.max_lag.as_millis())?;
        }
        if self.send_errors > 0 {
            write!(f, "; {} datagrams refused", self.send_errors)?;
        }
        Ok(())
    }
}

fn udp_to(addr: &str) -> anyhow::Result<UdpSocket> {
    let target = addr
        .to_socket_addrs()
        .with_context(|| format!("cannot resolve {addr:?}"))?
        .next()
        .with_context(|| format!("{addr:?} resolves to no address"))?;
    let local = if target.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" };
    let socket = UdpSocket::bind(local).context("cannot open a UDP socket")?;
    socket.connect(target).with_context(|| format!("cannot address UDP datagrams to {target}"))?;
    Ok(socket)
}

struct Outputs {
    syslog_file: Option<BufWriter<File>>,
    radius_file: Option<BufWriter<File>>,
    stdout: Option<BufWriter<std::io::Stdout>>,
    syslog_udp: Option<UdpSocket>,
    syslog_tcp: Option<BufWriter<TcpStream>>,
    octet_counting: bool,
    radius_udp: Option<UdpSocket>,
}

impl Outputs {
    fn emit(&mut self, record: &GeneratedRecord, summary: &mut Summary) -> anyhow::Result<()> {
        match record.format {
            Format::Radius => {
                summary.radius_records += 1;
                if let Some(f) = &mut self.radius_file {
                    f.write_all(&record.payload).context("cannot write radius.bin")?;
                }
                if let Some(s) = &self.radius_udp {
                    if s.send(&record.payload).is_err() {
                        summary.send_errors += 1;
                    }
                }
            }
            _ => {
                if is_rfc5424(&record.payload) {
                    summary.rfc5424_records += 1;
                } else {
                    summary.rfc3164_records += 1;
                }
                if let Some(f) = &mut self.syslog_file {
                    f.write_all(&record.payload).and_then(|_| f.write_all(b"\n")).context("cannot write syslog.log")?;
                }
                if let Some(out) = &mut self.stdout {
                    out.write_all(&record.payload)
                        .and_then(|_| out.write_all(b"\n"))
                        .context("cannot write to stdout")?;
                }
                if let Some(s) = &self.syslog_udp {
                    if s.send(&record.payload).is_err() {
                        summary.send_errors += 1;
                    }
                }
                if let Some(tcp) = &mut self.syslog_tcp {
                    let result = if self.octet_counting {
                        write!(tcp, "{} ", record.payload.len()).and_then(|_| tcp.write_all(&record.payload))
                    } else {
                        tcp.write_all(&record.payload).and_then(|_| tcp.write_all(b"\n"))
                    };
                    result.context("syslog TCP connection failed")?;
                }
            }
        }
        if record.is_failure() {
            summary.failures += 1;
        }
        Ok(())
    }

    /// Pushes buffered bytes out (before sleeping, so that receivers see records on time).
    fn flush(&mut self) -> anyhow::Result<()> {
        if let Some(out) = &mut self.stdout {
            out.flush().context("cannot write to stdout")?;
        }
        if let Some(tcp) = &mut self.syslog_tcp {
            tcp.flush().context("syslog TCP connection failed")?;
        }
        Ok(())
    }

    fn finish(&mut self) -> anyhow::Result<()> {
        self.flush()?;
        if let Some(f) = &mut self.syslog_file {
            f.flush().context("cannot write syslog.log")?;
        }
        if let Some(f) = &mut self.radius_file {
            f.flush().context("cannot write radius.bin")?;
        }
        Ok(())
    }
}

/// Whether a syslog line is RFC 5424 (`<PRI>1 `) rather than RFC 3164.
fn is_rfc5424(line: &[u8]) -> bool {
    let head = &line[..line.len().min(8)];
    head.iter().position(|&b| b == b'>').is_some_and(|i| head.get(i + 1..i + 3) == Some(b"1 "))
}

/// `lux generate`: generates as `args` says and prints a summary to stderr.
pub fn run(cfg: GeneratorConfig, args: &GenerateArgs) -> anyhow::Result<()> {
    let summary = generate(cfg, args)?;
    eprintln!("lux generate: {summary}");
    Ok(())
}

/// The work of [`run`], returning the summary instead of printing it.
pub fn generate(mut cfg: GeneratorConfig, args: &GenerateArgs) -> anyhow::Result<Summary> {
    if let Some(seed) = args.seed {
        cfg.seed = seed;
    }
    if let Some(rate) = args.rate {
        cfg.rate = rate;
    }
    if let Some(start) = &args.start {
        cfg.start = Some(start.clone());
    }
    let problems = cfg.validate("generator");
    if !problems.is_empty() {
        let list: Vec<String> = problems.iter().map(|p| format!("  {}: {}", p.key, p.message)).collect();
        bail!("invalid generator configuration:\n{}", list.join("\n"));
    }
    if args.duration.is_zero() {
        bail!("--duration must be longer than 0s");
    }
    let network_output = args.syslog_udp.is_some() || args.syslog_tcp.is_some() || args.radius_udp.is_some();
    if args.out.is_none() && !args.stdout && !network_output {
        bail!("nothing to write: give --out DIR, --stdout, --syslog-udp, --syslog-tcp or --radius-udp");
    }
    let realtime = args.realtime || network_output;
    let start_ms = cfg.start_ms()?;
    let network = Network::generate_at(&cfg, start_ms)?;
    let traffic = Traffic::new(&network, &cfg, start_ms)?;

    let mut outputs = Outputs {
        syslog_file: None,
        radius_file: None,
        stdout: args.stdout.then(|| BufWriter::with_capacity(1 << 16, std::io::stdout())),
        syslog_udp: args.syslog_udp.as_deref().map(udp_to).transpose()?,
        syslog_tcp: match &args.syslog_tcp {
            Some(addr) => {
                let stream =
                    TcpStream::connect(addr).with_context(|| format!("cannot connect to syslog TCP {addr:?}"))?;
                let _ = stream.set_nodelay(true);
                Some(BufWriter::with_capacity(1 << 16, stream))
            }
            None => None,
        },
        octet_counting: args.octet_counting,
        radius_udp: args.radius_udp.as_deref().map(udp_to).transpose()?,
    };
    if let Some(dir) = &args.out {
        let reference = dir.join("reference");
        network.write_csv(&reference).with_context(|| format!("cannot write {}", reference.display()))?;
        let incidents = serde_json::to_vec_pretty(traffic.incidents()).context("cannot serialise incidents")?;
        let path = dir.join("incidents.json");
        std::fs::write(&path, incidents).with_context(|| format!("cannot write {}", path.display()))?;
        let create = |name: &str| -> anyhow::Result<BufWriter<File>> {
            let path = dir.join(name);
            let file = File::create(&path).with_context(|| format!("cannot create {}", path.display()))?;
            Ok(BufWriter::with_capacity(1 << 16, file))
        };
        outputs.syslog_file = Some(create("syslog.log")?);
        outputs.radius_file = Some(create("radius.bin")?);
    }

    let duration_ms = i64::try_from(args.duration.as_millis()).unwrap_or(i64::MAX);
    let end_ms = start_ms.saturating_add(duration_ms);
    let seconds = u64::try_from(duration_ms.saturating_add(999) / 1000).unwrap_or(0);
    let mut summary = Summary { simulated: args.duration, ..Summary::default() };
    // The wall clock starts with the first record out (not while the first second is generated).
    let mut began: Option<Instant> = None;
    let mut last_warning: Option<Instant> = None;
    let mut pace = |record: &GeneratedRecord, outputs: &mut Outputs, summary: &mut Summary| -> anyhow::Result<()> {
        if record.event_time_ms >= end_ms {
            return Ok(());
        }
        if record.send_time_ms >= record.event_time_ms.div_euclid(1000) * 1000 + 1000 {
            summary.late_records += 1;
        }
        let began = *began.get_or_insert_with(Instant::now);
        if realtime {
            let due = began + Duration::from_millis(u64::try_from(record.send_time_ms - start_ms).unwrap_or(0));
            let now = Instant::now();
            if due > now + Duration::from_millis(1) {
                outputs.flush()?;
                std::thread::sleep(due - now);
            } else if now > due {
                let lag = now - due;
                summary.max_lag = summary.max_lag.max(lag);
                if lag > Duration::from_secs(1) && last_warning.is_none_or(|w| w.elapsed() > Duration::from_secs(5)) {
                    eprintln!(
                        "lux generate: {} ms behind schedule at simulated {}",
                        lag.as_millis(),
                        lux_model::format_rfc3339_millis(record.send_time_ms)
                    );
                    last_warning = Some(Instant::now());
                }
            }
        }
        outputs.emit(record, summary)
    };
    // A producer thread generates up to two seconds ahead, so that generating a second never
    // delays the records due at its beginning.
    std::thread::scope(|scope| -> anyhow::Result<()> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<GeneratedRecord>>(2);
        let traffic = &traffic;
        scope.spawn(move || {
            let mut schedule = Schedule::new(traffic, 0);
            for _ in 0..seconds {
                let (_, batch) = schedule.next_batch(traffic);
                if tx.send(batch).is_err() {
                    return;
                }
            }
            let _ = tx.send(schedule.drain());
        });
        for batch in rx {
            for record in &batch {
                pace(record, &mut outputs, &mut summary)?;
            }
        }
        Ok(())
    })?;
    outputs.finish()?;
    summary.elapsed = began.map(|b| b.elapsed()).unwrap_or_default();
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc5424_lines_are_told_from_rfc3164_lines() {
        assert!(is_rfc5424(b"<134>1 2026-01-05T00:00:00.000Z bng-par001-01 bng - SESSION_START -"));
        assert!(is_rfc5424(b"<7>1 x"));
        assert!(!is_rfc5424(b"<187>Jan  5 10:00:00 cpe-par001-00042 4711: %DHCP-3-NOOFFER: x"));
        assert!(!is_rfc5424(b"<18"));
        assert!(!is_rfc5424(b""));
    }
}
