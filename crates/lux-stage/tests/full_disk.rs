//! The runner on a full disk: a source's commits fail with `DiskFull`, the runner keeps the
//! batch and retries; once space is freed every record is in the log exactly once.
//!
//! Needs root (to mount a 4 MiB tmpfs); skipped with a message otherwise.

use lux_log::embedded::{EmbeddedLog, EmbeddedOptions};
use lux_log::{CentralLog, Durability};
use lux_stage::*;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Records of 1 KiB numbered from 0, its position kept in its state.
struct Big {
    next: u64,
    end: u64,
}

impl Source for Big {
    fn name(&self) -> &str {
        "big"
    }
    fn outputs(&self) -> Vec<String> {
        vec!["in".into()]
    }
    fn restore(&mut self, _: Vec<(Vec<u8>, Vec<u8>)>) -> anyhow::Result<()> {
        Ok(())
    }
    fn poll(&mut self, ctx: &mut Context, max: usize) -> anyhow::Result<SourcePoll> {
        let upto = (self.next + max as u64).min(self.end);
        for i in self.next..upto {
            ctx.emit("in", i.to_string().as_bytes(), 0, format!("{i:08}{}", "x".repeat(1016)).into_bytes());
        }
        self.next = upto;
        ctx.set_state(0, b"next".to_vec(), Some(self.next.to_string().into_bytes()));
        Ok(if self.next == self.end { SourcePoll::Finished } else { SourcePoll::Ready })
    }
}

#[test]
fn a_full_disk_pauses_a_source_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=4m", "tmpfs"])
        .arg(dir.path())
        .output()
        .is_ok_and(|o| o.status.success());
    if !mounted {
        eprintln!("SKIPPED a_full_disk_pauses_a_source_and_loses_nothing: cannot mount a tmpfs (needs root)");
        return;
    }
    struct Unmount<'a>(&'a std::path::Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(self.0).status();
        }
    }
    let _unmount = Unmount(dir.path());
    let filler = dir.path().join("filler");
    std::fs::write(&filler, vec![0u8; 2 << 20]).unwrap();
    let options = EmbeddedOptions { segment_bytes: 256 << 10, ..EmbeddedOptions::new(Durability::Group) };
    let log: Arc<dyn CentralLog> = Arc::new(EmbeddedLog::open_with(&dir.path().join("data"), options).unwrap());
    let metrics = Arc::new(StageMetrics::default());
    let stop = Arc::new(AtomicBool::new(false));
    let end = 3_000u64;
    let runner = {
        let (log, metrics, stop) = (log.clone(), metrics.clone(), stop.clone());
        let options = RunnerOptions { max_batch: 100, ..Default::default() };
        std::thread::spawn(move || run_source(log, Box::new(Big { next: 0, end }), options, metrics, stop))
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while metrics.commit_failures.load(Ordering::Relaxed) == 0 {
        assert!(Instant::now() < deadline && !runner.is_finished(), "the disk never filled");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::fs::remove_file(&filler).unwrap();
    runner.join().unwrap().unwrap();
    let info = log.topic("in").unwrap();
    let mut seen = Vec::new();
    for p in 0..info.partitions {
        for r in log.fetch("in", p, 0, 10_000).unwrap() {
            seen.push(std::str::from_utf8(&r.value[..8]).unwrap().parse::<u64>().unwrap());
        }
    }
    seen.sort_unstable();
    assert_eq!(seen, (0..end).collect::<Vec<_>>(), "every record exactly once");
    assert_eq!(metrics.snapshot().records_out, end);
}
