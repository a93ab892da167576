//! Append + commit throughput of the embedded log, in wall-clock time and in CPU time (which
//! other processes on a shared machine disturb much less).
//!
//! `cargo run --release -p lux-log --example throughput -- [RECORDS] [BATCH] [group|fsync] [RUNS]`
//!
//! Commits `RECORDS` records of 200 bytes (keys of 5,000 pieces of equipment, 3 partitions) in
//! commits of `BATCH` records, each also moving an input offset and a state entry, with
//! `commit_ref` on one prepared batch (so that only the log is measured, not building records).
//! Prints each run and the medians.

use lux_log::embedded::{EmbeddedLog, EmbeddedOptions};
use lux_log::{CentralLog, Commit, Durability};
use std::time::Instant;

/// User + system CPU time of this process so far, in seconds (from /proc/self/stat).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after_name = stat.rsplit(')').next().unwrap_or_default();
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    // Fields 14 and 15 of stat (utime, stime) are the 12th and 13th after the name.
    (ticks(11) + ticks(12)) / 100.0
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let records: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(3_000_000);
    let batch: u64 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(1_000);
    let durability = match args.get(3).map(String::as_str) {
        Some("fsync") => Durability::Fsync,
        _ => Durability::Group,
    };
    let runs: usize = args.get(4).and_then(|a| a.parse().ok()).unwrap_or(5);
    let commit = Commit::sample(batch);
    let (mut walls, mut cpus) = (Vec::new(), Vec::new());
    for run in 0..runs {
        let dir = tempfile::tempdir_in("target").expect("temp dir");
        let log = EmbeddedLog::open_with(dir.path(), EmbeddedOptions::new(durability)).expect("open");
        log.ensure_topic("raw", 3).expect("topic");
        log.ensure_topic("enriched", 3).expect("topic");
        let (started, cpu) = (Instant::now(), cpu_seconds());
        for _ in 0..records / batch {
            log.commit_ref(&commit).expect("commit");
        }
        let (wall, cpu) = (started.elapsed().as_secs_f64(), cpu_seconds() - cpu);
        let done = (records / batch * batch) as f64;
        println!(
            "run {run}: {:.0} records/s wall, {:.0} records per CPU second ({:.2} s, {:.2} s CPU)",
            done / wall,
            done / cpu,
            wall,
            cpu
        );
        walls.push(done / wall);
        cpus.push(done / cpu);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!(
        "median: {:.0} records/s wall, {:.0} records per CPU second ({runs} runs of {records} records, commits of {batch}, {durability:?})",
        median(&mut walls),
        median(&mut cpus)
    );
}
