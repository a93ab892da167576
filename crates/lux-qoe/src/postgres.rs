//! The PostgreSQL sink of the indicators (`qoe-postgres`): reads the `qoe` topic and upserts each
//! record into `<schema>.qoe_indicators`, keyed by (window start, dimension, value).
//!
//! Semantics: the `qoe` topic is the exactly-once record of the indicators; the table is an
//! idempotent copy, written at least once. Each record read becomes a pending write, a state
//! entry `pending/<window start>/<dimension>/<value>` committed with the record's offset; it is
//! deleted once its upsert is committed in PostgreSQL. While PostgreSQL is unreachable the
//! pending writes wait (in memory and in the committed state, so neither a restart nor a crash
//! loses them) and are retried with a growing pause (up to 30 s); past `MAX_PENDING` of them the
//! stage stops reading until they are written, and the topic keeps the rest. A crash between
//! the upsert and the commit writes a record twice: the upsert makes that, and a replay of the
//! whole topic, leave the table unchanged.

use crate::QoePostgresConfig;
use lux_log::StoredRecord;
use lux_model::QoeIndicator;
use lux_reference::pg::{connect_client, describe, migrate, Migration, MigrationSet};
use lux_stage::{Context, Processor, TopicPartition};
use postgres::Client;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The sink's migrations, recorded in `<schema>.qoe_schema_migrations`.
pub const MIGRATIONS: MigrationSet = MigrationSet {
    component: "qoe",
    table: "qoe_schema_migrations",
    lock: 0x006c_7578_5f71_6f65, // "lux_qoe"
    migrations: &[Migration {
        version: 1,
        name: "qoe_indicators",
        sql: include_str!("../migrations/0001_qoe_indicators.sql"),
    }],
};

/// Pending writes past which the stage stops reading until PostgreSQL takes them.
pub const MAX_PENDING: usize = 100_000;
const PENDING_PREFIX: &str = "pending/";
const MAX_BACKOFF_MS: i64 = 30_000;

/// Connects to `url` and applies the sink's migrations to `schema`. Returns the client and the
/// migrations applied now.
pub fn init(url: &str, schema: &str) -> Result<(Client, Vec<String>), String> {
    let mut client = connect_client(url)?;
    let applied = migrate(&mut client, schema, &MIGRATIONS)?;
    Ok((client, applied))
}

/// `pending/<partition>/<window start>/<dimension>/<value>`: a record's key in the `qoe` topic
/// decides its partition, so one (window, dimension, value) has one entry.
fn pending_key(partition: u32, indicator: &QoeIndicator) -> String {
    format!("{PENDING_PREFIX}{partition}/{}/{}/{}", indicator.window_start, indicator.dimension, indicator.value)
}

fn upsert_sql(schema: &str) -> String {
    const COLUMNS: [&str; 25] = [
        "window_start",
        "window_end",
        "dimension",
        "value",
        "events",
        "attempts",
        "setup_successes",
        "setup_success_rate",
        "auth_failures",
        "auth_failure_rate",
        "stops",
        "drops",
        "drop_rate",
        "short_sessions",
        "short_session_ratio",
        "failures",
        "affected_subscribers",
        "subscriber_sketch",
        "duration_count",
        "duration_sum_s",
        "duration_min_s",
        "duration_max_s",
        "duration_buckets",
        "top_error_codes",
        "excluded_events",
    ];
    let values: Vec<String> = (1..=COLUMNS.len())
        .map(|i| match i {
            1 | 2 => format!("'epoch'::timestamptz + ${i}::bigint * interval '1 millisecond'"),
            24 => format!("${i}::text::jsonb"),
            _ => format!("${i}"),
        })
        .collect();
    let updates: Vec<String> = COLUMNS.iter().skip(4).map(|c| format!("{c} = EXCLUDED.{c}")).collect();
    format!(
        "INSERT INTO \"{schema}\".qoe_indicators ({}) VALUES ({}) \
         ON CONFLICT (window_start, dimension, value) DO UPDATE SET window_end = EXCLUDED.window_end, {}",
        COLUMNS.join(", "),
        values.join(", "),
        updates.join(", ")
    )
}

fn int(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Upserts `indicators` in one transaction.
pub fn upsert<'a>(
    client: &mut Client,
    schema: &str,
    indicators: impl IntoIterator<Item = &'a QoeIndicator>,
) -> Result<(), String> {
    let err = |e: postgres::Error| describe("qoe upsert", &e);
    let mut tx = client.transaction().map_err(err)?;
    let statement = tx.prepare(&upsert_sql(schema)).map_err(err)?;
    for q in indicators {
        let d = &q.durations;
        let buckets: Vec<i64> = d.buckets.iter().map(|&b| int(b)).collect();
        let codes = serde_json::to_string(&q.top_error_codes).map_err(|e| format!("qoe upsert: {e}"))?;
        tx.execute(
            &statement,
            &[
                &q.window_start,
                &q.window_end,
                &q.dimension,
                &q.value,
                &int(q.events),
                &int(q.attempts),
                &int(q.setup_successes),
                &q.setup_success_rate,
                &int(q.auth_failures),
                &q.auth_failure_rate,
                &int(q.stops),
                &int(q.drops),
                &q.drop_rate,
                &int(q.short_sessions),
                &q.short_session_ratio,
                &int(q.failures),
                &int(q.affected_subscribers),
                &q.subscriber_sketch,
                &int(d.count),
                &int(d.sum_s),
                &d.min_s.map(int),
                &d.max_s.map(int),
                &buckets,
                &codes,
                &int(q.excluded_events),
            ],
        )
        .map_err(err)?;
    }
    tx.commit().map_err(err)
}

/// A pending write: the partition its state entry lives with, and the record.
struct Pending {
    partition: u32,
    indicator: QoeIndicator,
}

/// The PostgreSQL sink stage (see the module docs).
pub struct QoePostgresStage {
    name: String,
    url: String,
    schema: String,
    qoe_topic: String,
    deadletter_topic: String,
    client: Option<Client>,
    /// Keyed like the table: the latest record of a key replaces an older one.
    pending: BTreeMap<String, Pending>,
    /// Wall time before which no write is tried (after a failure), and the pause after the next.
    retry_at: i64,
    backoff_ms: i64,
    stop: Arc<AtomicBool>,
    written: u64,
    failed_writes: u64,
    bad_records: u64,
}

impl QoePostgresStage {
    /// A sink to the configured database; `None` when `qoe.postgres.url` is not set.
    pub fn new(
        config: &QoePostgresConfig,
        qoe_topic: &str,
        deadletter_topic: &str,
        stop: Arc<AtomicBool>,
    ) -> Option<Self> {
        Some(QoePostgresStage {
            name: "qoe-postgres".to_owned(),
            url: config.url.clone()?,
            schema: config.schema.clone(),
            qoe_topic: qoe_topic.to_owned(),
            deadletter_topic: deadletter_topic.to_owned(),
            client: None,
            pending: BTreeMap::new(),
            retry_at: 0,
            backoff_ms: 500,
            stop,
            written: 0,
            failed_writes: 0,
            bad_records: 0,
        })
    }

    /// The same stage under another consumer group (its offsets and state).
    pub fn with_group(mut self, name: &str) -> Self {
        self.name = name.to_owned();
        self
    }

    /// Tries to write every pending record (connecting and migrating first when needed).
    fn write(&mut self) -> Result<(), String> {
        if self.client.as_mut().is_none_or(|c| c.is_closed()) {
            let (client, applied) = init(&self.url, &self.schema)?;
            if !applied.is_empty() {
                tracing::info!(schema = %self.schema, migrations = ?applied, "qoe table migrated");
            }
            self.client = Some(client);
        }
        let Some(client) = self.client.as_mut() else { return Err("not connected".into()) };
        let result = upsert(client, &self.schema, self.pending.values().map(|p| &p.indicator));
        if result.is_err() {
            // A broken connection is rebuilt at the next try.
            self.client = None;
        }
        result
    }

    /// One try, if due: the written entries' state deleted, or the next try scheduled.
    fn flush(&mut self, ctx: &mut Context) {
        if self.pending.is_empty() || ctx.now_wall_ms < self.retry_at {
            return;
        }
        match self.write() {
            Ok(()) => {
                if self.failed_writes > 0 && self.backoff_ms > 500 {
                    tracing::info!(records = self.pending.len(), "qoe indicators written to PostgreSQL again");
                }
                self.written += self.pending.len() as u64;
                for (key, pending) in std::mem::take(&mut self.pending) {
                    ctx.set_state(pending.partition, key.into_bytes(), None);
                }
                self.backoff_ms = 500;
                self.retry_at = 0;
            }
            Err(error) => {
                self.failed_writes += 1;
                tracing::warn!(
                    %error,
                    pending = self.pending.len(),
                    retry_in_ms = self.backoff_ms,
                    "qoe indicators not written to PostgreSQL; kept and retried (nothing is lost)"
                );
                self.retry_at = ctx.now_wall_ms.saturating_add(self.backoff_ms);
                self.backoff_ms = (self.backoff_ms * 2).min(MAX_BACKOFF_MS);
            }
        }
    }
}

impl Processor for QoePostgresStage {
    fn name(&self) -> &str {
        &self.name
    }

    fn inputs(&self) -> Vec<String> {
        vec![self.qoe_topic.clone()]
    }

    fn outputs(&self) -> Vec<String> {
        vec![self.deadletter_topic.clone()]
    }

    fn restore(&mut self, _partitions: &[TopicPartition], state: Vec<(Vec<u8>, Vec<u8>)>) -> anyhow::Result<()> {
        self.pending.clear();
        self.retry_at = 0;
        for (key, value) in state {
            let shown = String::from_utf8_lossy(&key).into_owned();
            let partition = shown
                .strip_prefix(PENDING_PREFIX)
                .and_then(|rest| rest.split_once('/'))
                .and_then(|(p, _)| p.parse::<u32>().ok())
                .ok_or_else(|| anyhow::anyhow!("unknown qoe-postgres state entry {shown:?}"))?;
            let indicator: QoeIndicator = serde_json::from_slice(&value)
                .map_err(|e| anyhow::anyhow!("qoe-postgres state entry {shown:?} is not a QoE indicator: {e}"))?;
            self.pending.insert(shown, Pending { partition, indicator });
        }
        Ok(())
    }

    fn process(&mut self, record: &StoredRecord, ctx: &mut Context) -> anyhow::Result<()> {
        match serde_json::from_slice::<QoeIndicator>(&record.value) {
            Ok(indicator) => {
                let key = pending_key(record.partition, &indicator);
                ctx.set_state(record.partition, key.clone().into_bytes(), Some(record.value.clone()));
                self.pending.insert(key, Pending { partition: record.partition, indicator });
            }
            Err(error) => {
                self.bad_records += 1;
                let detail = format!("not a LUX QoE indicator: {error}");
                ctx.emit_bad_record(&self.deadletter_topic, &self.name, record, detail)?;
            }
        }
        Ok(())
    }

    fn end_batch(&mut self, ctx: &mut Context) -> anyhow::Result<()> {
        self.flush(ctx);
        // Back-pressure: past MAX_PENDING, no more reading until PostgreSQL takes them.
        while self.pending.len() > MAX_PENDING && !self.stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(100));
            ctx.now_wall_ms = ctx.now_wall_ms.saturating_add(100);
            self.flush(ctx);
        }
        Ok(())
    }

    fn gauge(&self) -> Option<(&'static str, u64)> {
        Some(("pending qoe writes", self.pending.len() as u64))
    }

    fn counters(&self) -> Vec<(String, u64)> {
        vec![
            ("rows_written".to_owned(), self.written),
            ("failed_writes".to_owned(), self.failed_writes),
            ("bad_records".to_owned(), self.bad_records),
        ]
    }
}
