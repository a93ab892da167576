//! Live reload and the PostgreSQL source, against the real PostgreSQL on 127.0.0.1:5432 (set
//! `LUX_TEST_POSTGRES_URL` to use another): migrations, import, content versions equal across
//! sources, an intervention inserted while a handle is live is seen within 2 seconds, a bad row
//! keeps the old snapshot and is named by table and key; CSV file changes are reloaded, bad
//! files rejected. Each PostgreSQL test uses its own schema `lux_test_<random>`, dropped at the end.

mod common;

use common::*;
use lux_model::{EquipmentKey, Outcome};
use lux_reference::cli::{self, ReferenceCommand};
use lux_reference::{pg, ReferenceConfig, ReferenceError, ReferenceHandle, Snapshot, SourceKind};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn url() -> String {
    std::env::var("LUX_TEST_POSTGRES_URL").unwrap_or_else(|_| "host=127.0.0.1 user=postgres dbname=test".to_owned())
}

/// A schema of its own for one test, dropped (with the handle's watcher stopped) at the end.
struct TestSchema {
    name: String,
    stop: Arc<AtomicBool>,
    handles: Vec<ReferenceHandle>,
}

impl TestSchema {
    fn new() -> TestSchema {
        static N: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
        let name =
            format!("lux_test_{}_{}_{}", std::process::id(), nanos % 1_000_000, N.fetch_add(1, Ordering::Relaxed));
        TestSchema { name, stop: Arc::new(AtomicBool::new(false)), handles: Vec::new() }
    }

    fn config(&self) -> ReferenceConfig {
        let mut cfg = ReferenceConfig { source: SourceKind::Postgres, ..ReferenceConfig::default() };
        cfg.postgres.url = url();
        cfg.postgres.schema = self.name.clone();
        cfg
    }

    fn client(&self) -> postgres::Client {
        pg::connect(&url()).unwrap_or_else(|e| panic!("{e}"))
    }

    /// The schema, migrated, holding the good fixture.
    fn with_good_fixture(&self) -> postgres::Client {
        let mut c = self.client();
        pg::init(&mut c, &self.name).unwrap_or_else(|e| panic!("{e}"));
        let f = Fixture::new(&good_files());
        pg::import_csv_dir(&mut c, &self.name, f.path()).unwrap_or_else(|e| panic!("{e}"));
        c
    }

    fn start(&mut self) -> ReferenceHandle {
        let h = ReferenceHandle::start(&self.config(), std::path::Path::new("/nonexistent"), Arc::clone(&self.stop))
            .unwrap_or_else(|e| panic!("{e}"));
        self.handles.push(h.clone());
        h
    }
}

impl Drop for TestSchema {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for h in &self.handles {
            h.join();
        }
        if let Ok(mut c) = pg::connect(&url()) {
            let _ = c.batch_execute(&format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.name));
        }
    }
}

/// When the live tests' events happen.
const AT: &str = "2026-02-01T10:00:00Z";

/// The intervention an event of OLT olt-lyo002-01 at [`AT`] is joined with.
fn maintenance(h: &ReferenceHandle) -> Option<String> {
    h.enrich(event(EquipmentKey::Hostname, "olt-lyo002-01", AT, None, Outcome::Info))
        .maintenance
        .map(|m| m.intervention_id.to_string())
}

/// Waits up to `limit` for `done`; the time it took, or `None`.
fn wait_for(limit: Duration, mut done: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if done() {
            return Some(start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

#[test]
fn init_is_idempotent_and_import_gives_the_same_version_as_the_csv_files() {
    let t = TestSchema::new();
    let mut c = t.client();
    let applied = pg::init(&mut c, &t.name).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(applied, ["0001_tables", "0002_notify"]);
    assert!(pg::init(&mut c, &t.name).unwrap_or_else(|e| panic!("{e}")).is_empty(), "second init: nothing to do");
    let versions: i64 = c
        .query_one(&format!("SELECT count(*) FROM \"{}\".schema_migrations", t.name), &[])
        .and_then(|r| r.try_get(0))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(versions, 2);

    let f = Fixture::new(&good_files());
    let counts = pg::import_csv_dir(&mut c, &t.name, f.path()).unwrap_or_else(|e| panic!("{e}"));
    let from_csv = load_good();
    assert_eq!(counts, from_csv.counts());
    let from_pg = pg::load_snapshot(&mut c, &t.name).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(from_pg.counts(), from_csv.counts());
    assert_eq!(from_pg.version(), from_csv.version(), "same content, same version, whichever source");
    // The same joins.
    let ev =
        || event(EquipmentKey::Hostname, "bng-par001-01", "2026-01-20T05:00:00Z", Some("RADIUS-TC-2"), Outcome::Info);
    let (a, b) = (from_pg.enrich(ev()), from_csv.enrich(ev()));
    assert_eq!(a, b);
    assert_eq!(a.maintenance.map(|m| m.intervention_id.clone()).as_deref(), Some("INT-REG"));

    // A re-import replaces the content (one transaction), an invalid directory imports nothing.
    let mut files = good_files();
    files.insert("sites.csv", format!("{SITES}NCE-003,PACA,Nice,Nice\n"));
    let bad = Fixture::new(&files);
    match pg::import_csv_dir(&mut c, &t.name, bad.path()) {
        Err(ReferenceError::Invalid(p)) => {
            assert_eq!(p.len(), 1, "{}", display(&p));
            assert_eq!(
                (p[0].file.as_str(), p[0].line, p[0].column.as_deref()),
                ("sites.csv", Some(4), Some("region_id"))
            );
        }
        other => panic!("expected invalid, got {other:?}"),
    }
    let after = pg::load_snapshot(&mut c, &t.name).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(after.version(), from_csv.version(), "nothing imported");
}

#[test]
fn an_intervention_inserted_while_live_is_seen_within_two_seconds() {
    let mut t = TestSchema::new();
    let mut c = t.with_good_fixture();
    let handle = t.start();
    let v1 = handle.current().version().to_owned();
    assert_eq!(v1, load_good().version());
    assert_eq!(maintenance(&handle), None);

    c.batch_execute(&format!(
        "INSERT INTO \"{}\".interventions VALUES ('INT-LIVE', 'equipment', 'OLT-LYO-1', 'corrective', \
         '2026-02-01T09:00:00Z', NULL, NULL, NULL, true, false)",
        t.name
    ))
    .unwrap_or_else(|e| panic!("{e}"));
    let took = wait_for(Duration::from_secs(2), || maintenance(&handle).is_some());
    assert!(took.is_some(), "not seen within 2 s: {:?}", handle.stats());
    assert_eq!(maintenance(&handle).as_deref(), Some("INT-LIVE"));
    // Before its start, the event is not in it.
    let before =
        handle.enrich(event(EquipmentKey::Hostname, "olt-lyo002-01", "2026-02-01T08:59:59Z", None, Outcome::Info));
    assert_eq!(before.maintenance, None);
    let stats = handle.stats();
    assert_eq!((stats.reloads_ok, stats.reloads_rejected), (1, 0));
    assert_ne!(stats.version, v1);
    assert_eq!(stats.counts.interventions, 4);
    assert_eq!(stats.source, format!("postgres:{}", t.name));
    // The enriched event records the new version.
    assert_eq!(
        &*handle.enrich(event(EquipmentKey::Hostname, "x", AT, None, Outcome::Info)).reference.version,
        stats.version
    );
}

#[test]
fn a_bad_row_keeps_the_old_snapshot_and_is_named_by_table_and_key() {
    let mut t = TestSchema::new();
    let mut c = t.with_good_fixture();
    let handle = t.start();
    let v1 = handle.current().version().to_owned();
    c.batch_execute(&format!(
        "INSERT INTO \"{}\".interventions VALUES ('INT-BAD', 'site', 'NOWHERE', 'planned', \
         '2026-02-01T09:00:00Z', '2026-02-01T10:00:00Z', NULL, NULL, false, false)",
        t.name
    ))
    .unwrap_or_else(|e| panic!("{e}"));
    let took = wait_for(Duration::from_secs(2), || handle.stats().reloads_rejected == 1);
    assert!(took.is_some(), "not rejected within 2 s: {:?}", handle.stats());
    let stats = handle.stats();
    assert_eq!((stats.reloads_ok, stats.reloads_rejected, stats.version.as_str()), (0, 1, v1.as_str()));
    let error = stats.last_error.unwrap_or_default();
    let place =
        format!("{}.interventions[intervention_id=INT-BAD]: column target_id: unknown site \"NOWHERE\"", t.name);
    assert!(error.contains(&place), "{error}");
    assert!(error.contains(&format!("(not in table {}.sites)", t.name)), "{error}");
    assert_eq!(handle.current().version(), v1, "old snapshot in place");

    // The same problem from `pg::load` and from `lux reference validate`.
    let problems = match pg::load(&mut c, &t.name) {
        Ok((_, Err(p))) => p,
        other => panic!("expected problems, got {:?}", other.map(|(v, r)| (v, r.map(|s| s.counts())))),
    };
    assert_eq!(problems.len(), 1);
    let p = &problems[0];
    assert_eq!(
        (p.file.as_str(), p.line, p.key.as_deref(), p.column.as_deref()),
        (format!("{}.interventions", t.name).as_str(), None, Some("intervention_id=INT-BAD"), Some("target_id"))
    );
    let mut out = Vec::new();
    let ok =
        cli::run(&t.config(), &ReferenceCommand::Validate { dir: None }, &mut out).unwrap_or_else(|e| panic!("{e}"));
    let text = String::from_utf8_lossy(&out);
    assert!(!ok);
    assert!(text.contains(&place) && text.contains("1 problem(s)"), "{text}");

    // Fixing it swaps in the fixed version.
    c.batch_execute(&format!(
        "UPDATE \"{}\".interventions SET target_id = 'PAR-001' WHERE intervention_id = 'INT-BAD'",
        t.name
    ))
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(wait_for(Duration::from_secs(2), || handle.stats().reloads_ok == 1).is_some(), "{:?}", handle.stats());
    assert_eq!(handle.current().counts().interventions, 4);
}

#[test]
fn equipment_rows_are_keyed_by_id_and_validity_start() {
    let t = TestSchema::new();
    let mut c = t.with_good_fixture();
    // A second open-ended row for OLT-LYO-1 overlaps the first: named by its key.
    c.batch_execute(&format!(
        "INSERT INTO \"{}\".equipment VALUES ('OLT-LYO-1', 'olt-lyo002-01', NULL, NULL, 'MA5800', 'LYO-002', \
         'in_service', '2026-03-01T00:00:00Z', NULL)",
        t.name
    ))
    .unwrap_or_else(|e| panic!("{e}"));
    let problems = match pg::load_snapshot(&mut c, &t.name) {
        Err(ReferenceError::Invalid(p)) => p,
        other => panic!("expected invalid, got {other:?}"),
    };
    let text = display(&problems);
    assert!(
        text.contains(&format!(
            "{}.equipment[equipment_id=OLT-LYO-1, valid_from=2026-03-01T00:00:00.000Z]: column valid_from: equipment \"OLT-LYO-1\" is valid twice at the same time: its interval overlaps row equipment_id=OLT-LYO-1, valid_from=-infinity",
            t.name
        )),
        "{text}"
    );
}

#[test]
fn cli_init_import_show() {
    let t = TestSchema::new();
    let cfg = t.config();
    let run = |cmd: ReferenceCommand| {
        let mut out = Vec::new();
        let ok = cli::run(&cfg, &cmd, &mut out).unwrap_or_else(|e| panic!("{e}"));
        (ok, String::from_utf8_lossy(&out).into_owned())
    };
    let (ok, text) = run(ReferenceCommand::Init);
    assert!(ok && text.contains("applied 0001_tables, 0002_notify"), "{text}");
    let (ok, text) = run(ReferenceCommand::Init);
    assert!(ok && text.contains("up to date"), "{text}");
    let f = Fixture::new(&good_files());
    let (ok, text) = run(ReferenceCommand::Import { dir: f.path().to_path_buf() });
    assert!(ok && text.contains("5 equipment rows, 3 interventions, 3 error codes"), "{text}");
    let (ok, text) = run(ReferenceCommand::Show { dir: None });
    assert!(ok, "{text}");
    assert!(text.contains(&format!("version        {}", load_good().version())), "{text}");
    assert!(text.contains("equipment      5\n") && text.contains("regions        2\n"), "{text}");
}

#[test]
fn csv_changes_are_reloaded_and_bad_files_rejected() {
    let f = Fixture::new(&good_files());
    let stop = Arc::new(AtomicBool::new(false));
    let cfg = ReferenceConfig { dir: Some(f.path().to_path_buf()), ..ReferenceConfig::default() };
    let handle = ReferenceHandle::start(&cfg, std::path::Path::new("/unused"), Arc::clone(&stop))
        .unwrap_or_else(|e| panic!("{e}"));
    let v1 = handle.current().version().to_owned();
    assert_eq!(maintenance(&handle), None);

    let path = f.path().join("interventions.csv");
    let good = format!("{INTERVENTIONS}INT-NEW,equipment,OLT-LYO-1,planned,2026-02-01T09:00:00Z,,,,false,false\n");
    std::fs::write(&path, &good).unwrap_or_else(|e| panic!("{e}"));
    assert!(wait_for(Duration::from_secs(5), || maintenance(&handle).is_some()).is_some(), "{:?}", handle.stats());
    assert_eq!(maintenance(&handle).as_deref(), Some("INT-NEW"));
    let v2 = handle.current().version().to_owned();
    assert_ne!(v2, v1);

    // A bad line: rejected with its file and line, the previous version kept.
    std::fs::write(&path, format!("{good}INT-X,site,NOWHERE,planned,,,,,false,false\n"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        wait_for(Duration::from_secs(5), || handle.stats().reloads_rejected == 1).is_some(),
        "{:?}",
        handle.stats()
    );
    let stats = handle.stats();
    assert_eq!((stats.reloads_ok, stats.version.as_str()), (1, v2.as_str()));
    let error = stats.last_error.unwrap_or_default();
    assert!(
        error.contains("interventions.csv:6: column target_id: unknown site \"NOWHERE\" (not in sites.csv)"),
        "{error}"
    );
    assert_eq!(maintenance(&handle).as_deref(), Some("INT-NEW"));

    stop.store(true, Ordering::Relaxed);
    handle.join();
}

#[test]
fn start_fails_on_invalid_data_and_unknown_tables() {
    let mut files = good_files();
    files.insert("models.csv", format!("{MODELS}X,nobody,X,bng,core\n"));
    let f = Fixture::new(&files);
    let cfg = ReferenceConfig { dir: Some(f.path().to_path_buf()), watch: false, ..ReferenceConfig::default() };
    match ReferenceHandle::start(&cfg, std::path::Path::new("/unused"), Arc::new(AtomicBool::new(false))) {
        Err(ReferenceError::Invalid(p)) => assert_eq!(
            p[0].to_string(),
            "models.csv:4: column manufacturer_id: unknown manufacturer \"nobody\" (not in manufacturers.csv)"
        ),
        other => panic!("expected invalid, got {other:?}"),
    }
    let t = TestSchema::new();
    match ReferenceHandle::start(&t.config(), std::path::Path::new("/unused"), Arc::new(AtomicBool::new(false))) {
        Err(ReferenceError::Postgres(e)) => assert!(e.contains("does not exist"), "{e}"),
        other => panic!("expected a PostgreSQL error, got {other:?}"),
    }
    // A fixed handle serves a snapshot as is.
    let h = ReferenceHandle::fixed(Snapshot::empty());
    assert_eq!(h.stats().version, "empty");
}

#[test]
fn config_of_the_sources() {
    let cfg = ReferenceConfig::default();
    assert_eq!(
        (cfg.source, cfg.postgres.schema.as_str(), cfg.poll_interval),
        (SourceKind::Csv, "lux", Duration::from_secs(30))
    );
    assert_eq!(cfg.postgres.url, "host=127.0.0.1 user=postgres dbname=test");
    let mut bad = ReferenceConfig::default();
    bad.postgres.schema = "Lux; drop".into();
    bad.postgres.url = " ".into();
    bad.poll_interval = Duration::from_millis(10);
    let keys: Vec<String> = bad.validate("reference").into_iter().map(|p| p.key).collect();
    assert_eq!(keys, ["reference.postgres.url", "reference.postgres.schema", "reference.poll_interval"]);
    let parsed: ReferenceConfig = serde_json::from_str(
        r#"{"source": "postgres", "poll_interval": "5s", "postgres": {"schema": "ref", "url": "host=db"}}"#,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (parsed.source, parsed.poll_interval, parsed.postgres.schema.as_str()),
        (SourceKind::Postgres, Duration::from_secs(5), "ref")
    );
    assert!(parsed.validate("reference").is_empty());
    assert!(serde_json::from_str::<ReferenceConfig>(r#"{"source": "mysql"}"#).is_err());
}
