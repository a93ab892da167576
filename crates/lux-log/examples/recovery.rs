//! Recovery time of the embedded log after a SIGKILL, with about 1 GB of log.
//!
//! `cargo run --release -p lux-log --example recovery -- [DIR] [GB] [RUNS]`
//!
//! A child process appends and commits batches of 2,000 records of 200 bytes to two topics of 3
//! partitions (`group` durability) until the data directory holds `GB` gigabytes; it is then
//! killed with SIGKILL (in the middle of whatever it was doing) and the log is opened again,
//! timed. Each further run lets a new child write ~50 MB more before killing it. Prints every
//! open time and the median. The page cache is warm, as it is after a process crash.

use lux_log::embedded::{EmbeddedLog, EmbeddedOptions};
use lux_log::{CentralLog, Commit, Durability, OutputRecord, StateChange};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn size_of(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => size_of(&e.path()),
            _ => e.metadata().map(|m| m.len()).unwrap_or(0),
        })
        .sum()
}

/// The child: commits forever.
fn write(dir: &Path) -> ! {
    let log = EmbeddedLog::open_with(dir, EmbeddedOptions::new(Durability::Group)).expect("open");
    log.ensure_topic("raw", 3).expect("topic");
    log.ensure_topic("enriched", 3).expect("topic");
    let value = vec![b'x'; 200];
    let mut i = 0u64;
    loop {
        let outputs = (0..2_000u64)
            .map(|n| OutputRecord {
                topic: if n % 2 == 0 { "raw" } else { "enriched" }.into(),
                key: format!("cpe-{:05}", (i + n) % 5_000).into_bytes(),
                timestamp_ms: (i + n) as i64,
                value: value.clone(),
                decoded: None,
            })
            .collect();
        i += 2_000;
        let state =
            vec![StateChange { partition: 0, key: b"position".to_vec(), value: Some(i.to_string().into_bytes()) }];
        log.commit(Commit { group: "bench".into(), outputs, state, ..Default::default() }).expect("commit");
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("write") {
        write(Path::new(&args[2]));
    }
    let dir = PathBuf::from(args.get(1).cloned().unwrap_or_else(|| "target/recovery-bench".into()));
    let gb: f64 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(1.0);
    let runs: usize = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(5);
    let _ = std::fs::remove_dir_all(&dir);
    let exe = std::env::current_exe().expect("own path");
    let mut times = Vec::new();
    let mut target = (gb * 1e9) as u64;
    for run in 0..runs {
        let mut child = Command::new(&exe).arg("write").arg(&dir).spawn().expect("spawn the writer");
        while size_of(&dir) < target {
            std::thread::sleep(Duration::from_millis(20));
        }
        child.kill().expect("SIGKILL");
        let _ = child.wait();
        let size = size_of(&dir);
        let started = Instant::now();
        let log = EmbeddedLog::open_with(&dir, EmbeddedOptions::new(Durability::Group)).expect("recovery");
        let elapsed = started.elapsed();
        let records: u64 = log.topics().expect("topics").iter().map(|t| t.record_count()).sum();
        drop(log);
        println!(
            "run {run}: {:.2} GB, {records} records: opened in {:.1} ms",
            size as f64 / 1e9,
            elapsed.as_secs_f64() * 1e3
        );
        times.push(elapsed);
        target = size + 50_000_000;
    }
    times.sort();
    println!("median open time after SIGKILL: {:.1} ms ({} runs)", times[times.len() / 2].as_secs_f64() * 1e3, runs);
}
