//! Hostile and heavy input: oversized frames, garbage, a broken octet count, a half frame that
//! stalls, a flood of connections, a full queue (TCP back-pressure, UDP overflow) and a stop
//! with records queued. The well-behaved senders' records all land; counters say what was cut,
//! refused or dropped.

mod common;

use common::{text, wait_until, Harness};
use lux_collect::config::ByteSize;
use lux_collect::{CollectConfig, SyslogListenerConfig, SyslogProtocol};
use std::io::{ErrorKind, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(30);

fn tcp(source: &str) -> SyslogListenerConfig {
    SyslogListenerConfig {
        protocol: SyslogProtocol::Tcp,
        listen: "127.0.0.1:0".into(),
        source: source.into(),
        ..Default::default()
    }
}

fn send_lines(addr: SocketAddr, prefix: &str, n: usize) -> Vec<String> {
    let lines: Vec<String> = (0..n).map(|i| format!("<34>1 - good {prefix} {i:05}")).collect();
    let mut stream = TcpStream::connect(addr).unwrap();
    let mut text = String::new();
    for line in &lines {
        text.push_str(line);
        text.push('\n');
    }
    stream.write_all(text.as_bytes()).unwrap();
    lines
}

#[test]
fn hostile_connections_are_cut_closed_and_counted_while_good_senders_all_land() {
    let listener =
        SyslogListenerConfig { max_frame: ByteSize(1024), idle_timeout: Duration::from_secs(3), ..tcp("hostile") };
    let mut harness = Harness::start(&CollectConfig { syslog: vec![listener], ..Default::default() });
    harness.run();
    let addr = harness.addrs[0];
    let good: Vec<_> = (0..3).map(|i| std::thread::spawn(move || send_lines(addr, &format!("s{i}"), 3000))).collect();

    // A newline frame of 5000 bytes, then a normal one on the same connection.
    let mut oversized = TcpStream::connect(addr).unwrap();
    oversized.write_all(&[b'x'; 5000]).unwrap();
    oversized.write_all(b"\n<34>1 - after the oversized frame\n").unwrap();
    // An octet-counted frame of 3000 bytes: cut, its rest skipped, the next frame kept.
    let mut counted = TcpStream::connect(addr).unwrap();
    counted.write_all(format!("3000 {}", "y".repeat(3000)).as_bytes()).unwrap();
    let after = "<34>1 - after the counted";
    counted.write_all(format!("{} {after}", after.len()).as_bytes()).unwrap();
    // Garbage (newline-framed by the detection, as the decoder will see it).
    let mut garbage = TcpStream::connect(addr).unwrap();
    garbage.write_all(b"\xff\xfe\x00garbage\x01\x02\n\x80\x81\n").unwrap();
    // A broken octet count: the connection is closed after its good frame.
    let mut broken = TcpStream::connect(addr).unwrap();
    broken.write_all(b"12 <34>1 - okay!!nonsense\n").unwrap();
    // Half a frame, then silence: closed after idle_timeout (3 s: long enough for the senders of a
    // loaded machine), the half frame counted.
    let mut stalled = TcpStream::connect(addr).unwrap();
    stalled.write_all(b"500 <34>1 - only part of it").unwrap();
    drop((oversized, counted, garbage, broken));

    let lines: Vec<Vec<String>> = good.into_iter().map(|t| t.join().unwrap()).collect();
    let metrics = harness.metrics[0].clone();
    wait_until("the stalled connection to time out", LIMIT, || metrics.get("idle_timeouts") == 1);
    wait_until("every good line", LIMIT, || harness.raw_count() == 9000 + 2 + 2 + 2 + 1);
    harness.stop();
    drop(stalled);

    let records = harness.all_raw();
    for (i, sent) in lines.iter().enumerate() {
        let got: Vec<String> = records.iter().map(text).filter(|t| t.contains(&format!("good s{i} "))).collect();
        assert_eq!(&got, sent, "sender {i}: every line once, in order");
    }
    let texts: Vec<String> = records.iter().map(text).collect();
    assert!(texts.contains(&"x".repeat(1024)), "the oversized newline frame, cut at max_frame");
    assert!(texts.contains(&"y".repeat(1024)), "the oversized counted frame, cut at max_frame");
    assert!(texts.contains(&"<34>1 - after the oversized frame".to_owned()));
    assert!(texts.contains(&"<34>1 - after the counted".to_owned()));
    assert!(texts.contains(&"<34>1 - okay".to_owned()));
    let binary = records.iter().filter(|r| r.payload.0.first() == Some(&0xff) || r.payload.0 == b"\x80\x81").count();
    assert_eq!(binary, 2, "garbage lines are kept as bytes for the decoder to dead-letter");
    assert_eq!(metrics.get("oversized"), 2);
    assert_eq!(metrics.get("framing_errors"), 1);
    assert_eq!(metrics.get("incomplete_frames"), 1);
    assert_eq!(metrics.get("idle_timeouts"), 1);
    assert_eq!(metrics.get("connections_accepted"), 8);
    assert_eq!(metrics.get("connections_open"), 0);
    assert_eq!(metrics.get("written"), records.len() as u64);
}

#[test]
fn excess_connections_are_refused_and_counted_while_open_ones_deliver() {
    let listener = SyslogListenerConfig { max_connections: 10, idle_timeout: Duration::from_secs(20), ..tcp("flood") };
    let mut harness = Harness::start(&CollectConfig { syslog: vec![listener], ..Default::default() });
    harness.run();
    let addr = harness.addrs[0];
    let metrics = harness.metrics[0].clone();
    let mut first = TcpStream::connect(addr).unwrap();
    wait_until("the first connection", LIMIT, || metrics.get("connections_open") == 1);
    let flood: Vec<TcpStream> = (0..300).map(|_| TcpStream::connect(addr).unwrap()).collect();
    wait_until("every flood connection handled", LIMIT, || {
        metrics.get("connections_accepted") + metrics.get("connections_refused") == 301
    });
    assert_eq!(metrics.get("connections_accepted"), 10);
    assert_eq!(metrics.get("connections_refused"), 291);
    let lines: Vec<String> = (0..500).map(|i| format!("<34>1 - first {i}")).collect();
    first.write_all((lines.join("\n") + "\n").as_bytes()).unwrap();
    drop(first);
    wait_until("the open connection's lines", LIMIT, || harness.raw_count() == 500);
    // Once the flood goes away, its slots are free again.
    drop(flood);
    wait_until("the flood connections closed", LIMIT, || metrics.get("connections_open") == 0);
    let later = send_lines(addr, "later", 100);
    wait_until("a later sender's lines", LIMIT, || harness.raw_count() == 600);
    harness.stop();
    let texts: Vec<String> = harness.all_raw().iter().map(text).collect();
    assert_eq!(texts.iter().filter(|t| t.contains("first")).count(), 500);
    assert_eq!(texts.iter().filter(|t| t.contains("good later")).count(), later.len());
}

#[test]
fn a_full_queue_stops_tcp_reading_and_the_sender_waits_then_everything_lands() {
    let listener = SyslogListenerConfig { queue: ByteSize(64 << 10), ..tcp("pressure") };
    let mut harness = Harness::start(&CollectConfig { syslog: vec![listener], ..Default::default() });
    let addr = harness.addrs[0];
    let metrics = harness.metrics[0].clone();
    // The runner is not started: the log takes nothing, the queue fills, the reader stops.
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_nonblocking(true).unwrap();
    let line = format!("<34>1 - {}\n", "p".repeat(200));
    let mut written = 0usize;
    let mut blocked = false;
    let mut rest: &[u8] = &[];
    for _ in 0..(64 << 20) / line.len() {
        match stream.write(line.as_bytes()) {
            Ok(n) if n == line.len() => written += 1,
            Ok(n) => {
                // A partial write: the line is finished once the log catches up.
                rest = &line.as_bytes()[n..];
                written += 1;
                blocked = true;
                break;
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                blocked = true;
                break;
            }
            Err(e) => panic!("write failed: {e}"),
        }
    }
    assert!(blocked, "the sender was never slowed down ({written} lines sent)");
    let queued = metrics.get("received");
    assert!(queued * 200 <= 64 << 10, "{queued} lines queued: more than the queue holds");
    assert!((written as u64) > queued, "the rest waits in the kernel's buffers");
    // The log catches up: everything that was sent lands.
    harness.run();
    stream.set_nonblocking(false).unwrap();
    stream.write_all(rest).unwrap();
    let more: usize = 1000;
    for _ in 0..more {
        stream.write_all(line.as_bytes()).unwrap();
    }
    drop(stream);
    let total = (written + more) as u64;
    wait_until("every line after the pressure", LIMIT, || harness.raw_count() == total);
    harness.stop();
    assert_eq!(metrics.get("received"), total);
    assert_eq!(metrics.get("dropped_overflow"), 0);
}

#[test]
fn udp_overflow_is_counted_and_what_was_queued_lands() {
    let listener = SyslogListenerConfig {
        protocol: SyslogProtocol::Udp,
        listen: "127.0.0.1:0".into(),
        source: "udp-overflow".into(),
        queue: ByteSize(64 << 10),
        ..Default::default()
    };
    let mut harness = Harness::start(&CollectConfig { syslog: vec![listener], ..Default::default() });
    let addr = harness.addrs[0];
    let metrics = harness.metrics[0].clone();
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let datagram = format!("<34>1 - {}", "u".repeat(500));
    let sent = 2000u64;
    for _ in 0..sent {
        socket.send_to(datagram.as_bytes(), addr).unwrap();
    }
    // Every datagram is either queued or counted as dropped (by us or by the kernel).
    let kernel = || harness.metrics[0].get("dropped_kernel");
    wait_until("every datagram accounted for", LIMIT, || {
        metrics.get("received") + metrics.get("dropped_overflow") + kernel() >= sent
    });
    let received = metrics.get("received");
    assert!(received > 0 && received < sent, "{received} of {sent} queued");
    assert!(metrics.get("dropped_overflow") > 0);
    harness.run();
    wait_until("the queued datagrams", LIMIT, || harness.raw_count() == received);
    harness.stop();
    let stage = harness.stage_metrics[0].counters();
    assert_eq!(stage.get("dropped_overflow"), Some(&metrics.get("dropped_overflow")), "published as stage counters");
    assert_eq!(
        stage.get("received").copied().unwrap_or(0)
            + stage["dropped_overflow"]
            + stage.get("dropped_kernel").copied().unwrap_or(0),
        sent
    );
}

#[test]
fn a_stop_commits_what_was_queued() {
    let mut harness = Harness::start(&CollectConfig { syslog: vec![tcp("drain")], ..Default::default() });
    let sent = send_lines(harness.addrs[0], "drain", 5000);
    let metrics = harness.metrics[0].clone();
    wait_until("every line queued", LIMIT, || metrics.get("received") == 5000);
    // Asked to stop before its first poll: the source still commits its queue.
    harness.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    harness.run();
    harness.stop();
    let texts: Vec<String> = harness.all_raw().iter().map(text).collect();
    assert_eq!(texts, sent);
}
