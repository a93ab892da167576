//! The file collector on real files written, appended, rotated (rename + create, copytruncate),
//! deleted and garbled while it runs, and across stops and SIGKILLs of the process that runs
//! it, on the embedded log and on Kafka: the raw topic must hold every line exactly once, in the
//! order of each file.

mod common;

use common::{raw_count_in, raw_records_in, text, wait_until, Harness, PARTITIONS};
use lux_collect::config::{ByteSize, ReadFrom};
use lux_collect::{CollectConfig, FileSourceConfig};
use lux_model::RawRecord;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(60);

fn files_config(pattern: &Path) -> FileSourceConfig {
    FileSourceConfig {
        paths: vec![pattern.display().to_string()],
        source: "olt-files".into(),
        poll_interval: Duration::from_millis(50),
        rotate_wait: Duration::from_millis(500),
        flush_partial_after: Duration::ZERO,
        ..Default::default()
    }
}

fn collect(files: FileSourceConfig) -> CollectConfig {
    CollectConfig { files: vec![files], ..Default::default() }
}

fn append(path: &Path, text: &str) {
    let mut file = OpenOptions::new().create(true).append(true).open(path).unwrap();
    file.write_all(text.as_bytes()).unwrap();
}

/// `n` numbered lines, each with its newline.
fn lines(tag: &str, from: usize, n: usize) -> Vec<String> {
    (from..from + n).map(|i| format!("<34>1 2026-01-05T00:00:00Z olt-1 gpon - - - {tag} line {i:07}")).collect()
}

fn write_lines(path: &Path, lines: &[String]) {
    let mut text = String::with_capacity(lines.len() * 64);
    for line in lines {
        text.push_str(line);
        text.push('\n');
    }
    append(path, &text);
}

/// The texts of the records keyed by `key`, in their order in the log.
fn texts_of_key(records: &[Vec<RawRecord>], key_records: &[Vec<Vec<u8>>], key: &str) -> Vec<String> {
    records
        .iter()
        .zip(key_records)
        .flat_map(|(partition, keys)| partition.iter().zip(keys).filter(|(_, k)| k.as_slice() == key.as_bytes()))
        .map(|(record, _)| text(record))
        .collect()
}

/// Every record's key, per partition, as the raw records are.
fn keys_in(dir: &Path) -> Vec<Vec<Vec<u8>>> {
    use lux_log::CentralLog;
    let reader = lux_log::embedded::EmbeddedLog::open_reader(dir).unwrap();
    (0..PARTITIONS)
        .map(|p| {
            let mut keys = Vec::new();
            loop {
                let batch = reader.fetch(common::RAW, p, keys.len() as u64, 100_000).unwrap();
                if batch.is_empty() {
                    break;
                }
                keys.extend(batch.into_iter().map(|r| r.key.unwrap_or_default()));
            }
            keys
        })
        .collect()
}

fn key_of(path: &Path) -> String {
    path.display().to_string()
}

#[test]
fn appends_new_files_and_both_rotations_land_every_line_once_in_order() {
    let logs = tempfile::tempdir().unwrap();
    let (a, b) = (logs.path().join("a.log"), logs.path().join("b.log"));
    let mut expected_a = lines("a", 0, 1000);
    write_lines(&a, &expected_a);
    let config = collect(files_config(&logs.path().join("*.log")));
    let mut harness = Harness::start(&config);
    harness.run();
    let metrics = harness.metrics[0].clone();
    wait_until("a.log's first lines", LIMIT, || harness.raw_count() == 1000);

    // Appends, a line written in two halves, and a file created while running.
    let more = lines("a", 1000, 500);
    write_lines(&a, &more);
    expected_a.extend(more);
    append(&a, "<34>1 - half a line");
    write_lines(&b, &lines("b", 0, 300));
    let mut expected_b = lines("b", 0, 300);
    wait_until("the appends and b.log", LIMIT, || harness.raw_count() == 1800);
    append(&a, " and its end\n");
    expected_a.push("<34>1 - half a line and its end".into());
    wait_until("the completed line", LIMIT, || harness.raw_count() == 1801);

    // Rename + create: a.log's tail (written after the rename, as a writer that has not
    // reopened yet does) is read before the new a.log's lines.
    let tail = lines("a", 1500, 200);
    std::fs::rename(&a, logs.path().join("a.log.1")).unwrap();
    write_lines(&logs.path().join("a.log.1"), &tail);
    expected_a.extend(tail);
    let fresh = lines("a-new", 0, 400);
    write_lines(&a, &fresh);
    expected_a.extend(fresh);

    // copytruncate: b.log copied away (not matched) and truncated, then written from its start.
    wait_until("the rotation", LIMIT, || harness.raw_count() == 2401);
    std::fs::copy(&b, logs.path().join("b.log.1")).unwrap();
    File::create(&b).unwrap();
    wait_until("the truncation noticed", LIMIT, || metrics.get("truncations") == 1);
    let after = lines("b-after", 0, 100);
    write_lines(&b, &after);
    expected_b.extend(after);
    wait_until("every line", LIMIT, || harness.raw_count() == 2501);
    wait_until("the rotated file closed", LIMIT, || metrics.get("files_open") == 2);
    harness.stop();

    let records = harness.raw_records();
    let keys = keys_in(harness.dir.path());
    assert_eq!(texts_of_key(&records, &keys, &key_of(&a)), expected_a, "a.log and its rotation");
    assert_eq!(texts_of_key(&records, &keys, &key_of(&b)), expected_b, "b.log and its truncation");
    for record in records.iter().flatten() {
        assert_eq!(record.source, "olt-files");
        assert_eq!(record.format, lux_model::Format::Auto);
        assert_eq!(record.peer, None);
    }
    assert_eq!(metrics.get("received"), 2501);
    assert_eq!(metrics.get("written"), 2501);
    assert_eq!(metrics.get("rotations"), 1);
    assert_eq!(metrics.get("truncations"), 1);
    assert_eq!(metrics.get("files_opened"), 3, "a.log, b.log, the new a.log");
    assert_eq!(metrics.get("oversized"), 0);
}

#[test]
fn a_stop_mid_file_and_a_restart_resume_exactly_with_rotations_while_stopped() {
    let logs = tempfile::tempdir().unwrap();
    let app = logs.path().join("app.log");
    let mut expected = lines("app", 0, 300_000);
    write_lines(&app, &expected);
    let config = collect(files_config(&app));
    let mut harness = Harness::start(&config);
    harness.run();
    wait_until("the first lines", LIMIT, || harness.raw_count() >= 20_000);
    let mut harness = harness.restart(&config);
    let at_stop = harness.raw_count();
    assert!(at_stop < 300_000, "stopped mid-file ({at_stop} of 300000 read)");
    // While stopped: more lines, then app.log rotated away (found again by its inode).
    let more = lines("app", 300_000, 1000);
    write_lines(&app, &more);
    expected.extend(more);
    std::fs::rename(&app, logs.path().join("app.log.1")).unwrap();
    let fresh = lines("app-new", 0, 1000);
    write_lines(&app, &fresh);
    expected.extend(fresh);
    harness.run();
    wait_until("every line", LIMIT, || harness.raw_count() == expected.len() as u64);
    let metrics = harness.metrics[0].clone();
    wait_until("the rotated file closed", LIMIT, || metrics.get("files_open") == 1);
    harness.stop();
    let records = harness.raw_records();
    let keys = keys_in(harness.dir.path());
    let got = texts_of_key(&records, &keys, &key_of(&app));
    assert_eq!(got.len(), expected.len());
    let first = got.iter().zip(&expected).position(|(g, e)| g != e);
    assert!(
        first.is_none(),
        "the lines differ from what was written: {:?}",
        first.map(|i| (i, &got[i], &expected[i], got.iter().position(|g| *g == expected[i])))
    );
    assert_eq!(metrics.get("files_lost"), 0);
}

#[test]
fn hostile_files_garbage_huge_lines_and_a_file_deleted_while_read() {
    let logs = tempfile::tempdir().unwrap();
    let garbage = logs.path().join("garbage.log");
    // Binary garbage lines, NULs, lone CRs and invalid UTF-8, and two huge lines.
    let mut bytes = Vec::new();
    bytes.extend_from_slice(b"\xff\xfe\x00\x01binary\x80\x81\n");
    bytes.extend_from_slice(b"\r\n\n\n");
    bytes.extend_from_slice(&vec![b'x'; 300_000]);
    bytes.extend_from_slice(b"\n<34>1 - after the huge line\n");
    bytes.extend_from_slice(&vec![b'y'; 5000]);
    bytes.extend_from_slice(b"\n");
    std::fs::write(&garbage, &bytes).unwrap();
    let doomed = logs.path().join("doomed.log");
    let doomed_lines = lines("doomed", 0, 200_000);
    write_lines(&doomed, &doomed_lines);
    let files = FileSourceConfig { max_line: ByteSize(4096), ..files_config(&logs.path().join("*.log")) };
    let mut harness = Harness::start(&collect(files));
    harness.run();
    let metrics = harness.metrics[0].clone();
    wait_until("the first lines", LIMIT, || harness.raw_count() > 0);
    std::fs::remove_file(&doomed).unwrap();
    wait_until("every line", LIMIT, || harness.raw_count() == 200_004);
    wait_until("the deleted file closed", LIMIT, || metrics.get("files_open") == 1);
    harness.stop();
    let records = harness.raw_records();
    let keys = keys_in(harness.dir.path());
    assert_eq!(texts_of_key(&records, &keys, &key_of(&doomed)), doomed_lines, "the deleted file is read to its end");
    let got: Vec<&RawRecord> = records
        .iter()
        .zip(&keys)
        .flat_map(|(p, k)| p.iter().zip(k))
        .filter(|(_, k)| k.as_slice() == key_of(&garbage).as_bytes())
        .map(|(r, _)| r)
        .collect();
    let payloads: Vec<&[u8]> = got.iter().map(|r| r.payload.0.as_slice()).collect();
    assert_eq!(payloads.len(), 4, "{payloads:?}");
    assert_eq!(payloads[0], b"\xff\xfe\x00\x01binary\x80\x81");
    assert_eq!(payloads[1], vec![b'x'; 4096].as_slice(), "cut at max_line");
    assert_eq!(payloads[2], b"<34>1 - after the huge line");
    assert_eq!(payloads[3], vec![b'y'; 4096].as_slice());
    assert_eq!(metrics.get("oversized"), 2);
    assert_eq!(metrics.get("rotations"), 1);
}

#[test]
fn a_partial_last_line_is_flushed_after_the_idle_time_and_read_from_end_skips_the_past() {
    let logs = tempfile::tempdir().unwrap();
    let old = logs.path().join("old.log");
    write_lines(&old, &lines("old", 0, 100));
    let files = FileSourceConfig {
        flush_partial_after: Duration::from_millis(300),
        read_from: ReadFrom::End,
        ..files_config(&logs.path().join("*.log"))
    };
    let mut harness = Harness::start(&collect(files));
    harness.run();
    let metrics = harness.metrics[0].clone();
    wait_until("old.log opened", LIMIT, || metrics.get("files_opened") == 1);
    append(&old, "<34>1 - new line\n<34>1 - no newline yet");
    // A file created later is read from its start whatever read_from says.
    write_lines(&logs.path().join("new.log"), &lines("new", 0, 10));
    wait_until("the partial line flushed", LIMIT, || metrics.get("partial_flushed") == 1);
    wait_until("every record", LIMIT, || harness.raw_count() == 12);
    harness.stop();
    let texts: Vec<String> = harness.all_raw().iter().map(text).collect();
    assert!(texts.contains(&"<34>1 - new line".to_string()));
    assert!(texts.contains(&"<34>1 - no newline yet".to_string()));
    assert!(!texts.iter().any(|t| t.contains("old line")), "read_from = end skips what was there");
}

/// Runs the file collector of `LUX_TEST_CHILD_PATTERN` into the log in `LUX_TEST_CHILD_DATA`
/// until killed: the child process of the SIGKILL test.
#[test]
#[ignore = "a child process of sigkilled_collectors_neither_lose_nor_duplicate_a_line"]
fn child_collector() {
    let (Some(data), Some(pattern)) =
        (std::env::var_os("LUX_TEST_CHILD_DATA"), std::env::var_os("LUX_TEST_CHILD_PATTERN"))
    else {
        return;
    };
    use lux_log::CentralLog;
    let log = std::sync::Arc::new(
        lux_log::embedded::EmbeddedLog::open(Path::new(&data), lux_log::Durability::Group).unwrap(),
    );
    log.ensure_topic(common::RAW, PARTITIONS).unwrap();
    let config = collect(files_config(Path::new(&pattern)));
    let source = lux_collect::start(&config, common::RAW).unwrap().pop().unwrap();
    let options = lux_stage::RunnerOptions { partitions: PARTITIONS, max_batch: 500, ..Default::default() };
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let log: std::sync::Arc<dyn CentralLog> = log;
    lux_stage::run_source(log, Box::new(source), options, Default::default(), stop).unwrap();
}

fn spawn_child(data: &Path, pattern: &Path) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_collector", "--ignored", "--nocapture"])
        .env("LUX_TEST_CHILD_DATA", data)
        .env("LUX_TEST_CHILD_PATTERN", pattern)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

#[test]
fn sigkilled_collectors_neither_lose_nor_duplicate_a_line() {
    use rand::{Rng, SeedableRng};
    let seed: u64 = std::env::var("LUX_KILL_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos().into()).unwrap_or(7)
    });
    eprintln!("kill moments from LUX_KILL_SEED={seed}");
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let logs = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let app: PathBuf = logs.path().join("app.log");
    let mut expected = Vec::new();
    let mut written = 0;
    for round in 0..6 {
        // Lines written while the collector runs or not, and a rotation every other round.
        let new = lines("app", written, 40_000);
        written += new.len();
        write_lines(&app, &new);
        expected.extend(new);
        if round % 2 == 1 {
            // Rotated while the collector is down or about to start, a new file in its place.
            std::fs::rename(&app, logs.path().join(format!("app.log.{round}"))).unwrap();
            let new = lines("app", written, 5000);
            written += new.len();
            write_lines(&app, &new);
            expected.extend(new);
        }
        let mut child = spawn_child(data.path(), &app);
        let before = raw_count_in(data.path());
        // Killed at a random moment after it has made some progress (or found nothing new).
        let wait = Duration::from_millis(rng.gen_range(50..400));
        wait_until("the child's progress", LIMIT, || {
            raw_count_in(data.path()) > before || child.try_wait().unwrap().is_some()
        });
        std::thread::sleep(wait);
        child.kill().unwrap();
        child.wait().unwrap();
    }
    let mut child = spawn_child(data.path(), &app);
    wait_until("every line", LIMIT, || raw_count_in(data.path()) >= expected.len() as u64);
    // A little longer: a duplicate would show as more records than lines.
    std::thread::sleep(Duration::from_millis(500));
    child.kill().unwrap();
    child.wait().unwrap();
    let records = raw_records_in(data.path());
    let keys = keys_in(data.path());
    let got = texts_of_key(&records, &keys, &key_of(&app));
    assert_eq!(got.len(), expected.len(), "records for {} lines (seed {seed})", expected.len());
    let first = got.iter().zip(&expected).position(|(g, e)| g != e);
    assert!(first.is_none(), "the lines differ (seed {seed}) from line {first:?}");
}

/// The same positions on the Kafka backend (a tansu broker, which `scripts/test` installs):
/// they live in the stage's changelog topic, written in the transaction of the lines they cover.
#[test]
fn positions_are_committed_with_the_lines_on_kafka_too() {
    use lux_log::kafka::{testing::TansuBroker, KafkaLog};
    use lux_log::CentralLog;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let broker = TansuBroker::start().unwrap_or_else(|problem| panic!("{problem}"));
    let logs = tempfile::tempdir().unwrap();
    let app = logs.path().join("app.log");
    let mut expected = lines("app", 0, 20_000);
    write_lines(&app, &expected);
    let config = collect(files_config(&app));
    let mut committed = 0;
    for (round, wait_for) in [(0, 4_000u64), (1, 0)] {
        if round == 1 {
            let more = lines("app", 20_000, 2_000);
            write_lines(&app, &more);
            expected.extend(more);
        }
        let log = Arc::new(KafkaLog::connect(&broker.config(), "t.").unwrap_or_else(|e| panic!("connect: {e}")));
        log.ensure_topic(common::RAW, PARTITIONS).unwrap();
        let source = lux_collect::start(&config, common::RAW).unwrap().pop().unwrap();
        let metrics = source.metrics();
        let stop = Arc::new(AtomicBool::new(false));
        let runner = {
            let (log, stop): (Arc<dyn CentralLog>, _) = (log.clone(), stop.clone());
            let options = lux_stage::RunnerOptions { partitions: PARTITIONS, ..Default::default() };
            std::thread::spawn(move || lux_stage::run_source(log, Box::new(source), options, Default::default(), stop))
        };
        // Round 1 writes what round 0 left: the counters are the new process's.
        let target = if wait_for > 0 { wait_for } else { expected.len() as u64 - committed };
        wait_until("lines committed", LIMIT, || metrics.get("written") >= target || runner.is_finished());
        stop.store(true, Ordering::Relaxed);
        runner.join().unwrap().unwrap();
        if round == 0 {
            committed = metrics.get("written");
            assert!(committed < 20_000, "stopped mid-file");
        } else {
            let mut got = Vec::new();
            for partition in 0..PARTITIONS {
                let mut from = log.topic(common::RAW).unwrap().start_offsets[partition as usize];
                loop {
                    let batch = log.fetch(common::RAW, partition, from, 10_000).unwrap();
                    let Some(last) = batch.last() else { break };
                    from = last.offset + 1;
                    got.extend(batch.iter().map(|r| text(&serde_json::from_slice::<RawRecord>(&r.value).unwrap())));
                }
            }
            assert_eq!(got.len(), expected.len(), "every line once across the restart");
            assert!(got == expected, "in order");
        }
    }
}
