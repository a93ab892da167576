//! What the delivery tests share: hand-made reports, a scheduler driven by explicit times, and
//! a small HTTP server on 127.0.0.1 that answers with the statuses it is told and keeps every
//! request it receives.

#![allow(dead_code)]

use lux_model::Millis;
use lux_report::{BuildReport, Period, RenderedReport, ReportConfig, Scheduler};
use std::collections::VecDeque;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

pub const HOUR: Millis = 3_600_000;
pub const MINUTE: Millis = 60_000;

/// 2026-11-26T10:00:00Z.
pub const T0: Millis = 1_795_687_200_000;

/// The report a test's builder makes for `period`: every format names the period.
pub fn report(schedule: &str, period: Period) -> RenderedReport {
    let from = lux_model::format_rfc3339_millis(period.from);
    let stem = format!("lux-report-{schedule}-{}", period.from);
    RenderedReport {
        period,
        title: format!("LUX report from {from}"),
        stem: stem.clone(),
        html: format!(
            "<!doctype html><html><head><title>{stem}</title></head><body><h1>Report é {from}</h1></body></html>"
        ),
        csv: format!("section,key,value\nheadline,period_from,{from}\nheadline,attempts,{}\n", period.from / 1000),
        json: format!("{{\"stem\":\"{stem}\",\"from\":\"{from}\"}}"),
    }
}

/// A builder of [`report`]s that counts its calls.
pub fn builder(calls: Arc<Mutex<Vec<(String, Period)>>>) -> BuildReport {
    Arc::new(move |schedule, period| {
        calls.lock().unwrap().push((schedule.to_owned(), period));
        Ok(report(schedule, period))
    })
}

pub fn config(text: &str) -> ReportConfig {
    let config: ReportConfig = toml::from_str(text).unwrap();
    assert_eq!(config.validate("report"), []);
    config
}

pub fn scheduler(config: &ReportConfig, dir: &Path) -> Scheduler {
    Scheduler::new(config, dir, builder(Arc::default())).unwrap()
}

pub fn tick(scheduler: &mut Scheduler, now: Millis) {
    scheduler.tick(now, &AtomicBool::new(false)).unwrap();
}

/// One request the server received.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// An HTTP/1.1 server answering each request with the next status of its script (200 once
/// the script is spent), one connection at a time.
pub struct HttpServer {
    pub addr: SocketAddr,
    pub requests: Arc<Mutex<Vec<Request>>>,
    pub statuses: Arc<Mutex<VecDeque<u16>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl HttpServer {
    pub fn start(statuses: &[u16]) -> HttpServer {
        HttpServer::start_on("127.0.0.1:0".parse().unwrap(), statuses)
    }

    pub fn start_on(addr: SocketAddr, statuses: &[u16]) -> HttpServer {
        let listener = TcpListener::bind(addr).unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let requests: Arc<Mutex<Vec<Request>>> = Arc::default();
        let statuses = Arc::new(Mutex::new(statuses.iter().copied().collect::<VecDeque<_>>()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (requests, statuses, stop) = (requests.clone(), statuses.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            stream.set_nonblocking(false).unwrap();
                            let _ = serve(stream, &requests, &statuses);
                        }
                        Err(_) => std::thread::sleep(std::time::Duration::from_millis(5)),
                    }
                }
            })
        };
        HttpServer { addr, requests, statuses, stop, thread: Some(thread) }
    }

    pub fn url(&self) -> String {
        format!("http://{}/ingest", self.addr)
    }

    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn serve(
    stream: std::net::TcpStream,
    requests: &Mutex<Vec<Request>>,
    statuses: &Mutex<VecDeque<u16>>,
) -> std::io::Result<()> {
    stream.set_read_timeout(Some(std::time::Duration::from_secs(5)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let mut parts = line.split_whitespace();
        let (method, path) = (parts.next().unwrap_or_default().to_owned(), parts.next().unwrap_or_default().to_owned());
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line)?;
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                headers.push((name.trim().to_owned(), value.trim().to_owned()));
            }
        }
        let length = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.parse::<usize>().ok())
            .unwrap_or(0);
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;
        requests.lock().unwrap().push(Request { method, path, headers, body });
        let status = statuses.lock().unwrap().pop_front().unwrap_or(200);
        let text = format!("status {status}");
        let mut writer = &stream;
        write!(
            writer,
            "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nContent-Type: text/plain\r\n\r\n{text}",
            text.len()
        )?;
        writer.flush()?;
    }
}
