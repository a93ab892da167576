//! `lux topic list` and `lux topic read`: what kcat is for Kafka, for the central log. Reads
//! the embedded log without locking it, so it works while `lux run` writes (on Kafka, it reads
//! committed records as any consumer does).

use lux_log::{CentralLog, StoredRecord};
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

pub fn list(log: &dyn CentralLog, out: &mut dyn Write) -> anyhow::Result<()> {
    writeln!(out, "{:<24} {:>10} {:>12}  end offsets per partition", "topic", "partitions", "records")?;
    for topic in log.topics()? {
        let ends: Vec<String> = topic.end_offsets.iter().map(u64::to_string).collect();
        writeln!(out, "{:<24} {:>10} {:>12}  {}", topic.name, topic.partitions, topic.record_count(), ends.join(","))?;
    }
    Ok(())
}

/// Options of `lux topic read`.
#[derive(Debug, Clone, clap::Args)]
pub struct ReadArgs {
    /// The topic to read (with its prefix, as `lux topic list` shows it).
    pub topic: String,
    /// Keep reading new records as they arrive (stop with Ctrl-C).
    #[arg(long)]
    pub follow: bool,
    /// Read only this partition.
    #[arg(long)]
    pub partition: Option<u32>,
    /// Start at this offset in each partition read.
    #[arg(long, default_value_t = 0)]
    pub offset: u64,
    /// Stop after this many records.
    #[arg(long)]
    pub limit: Option<u64>,
    /// Print each record wrapped with its partition, offset, key and timestamp.
    #[arg(long)]
    pub metadata: bool,
}

/// The record's value as it is stored (LUX's topics hold JSON), or a JSON object describing a
/// value that is not JSON; with `metadata`, wrapped with the record's place in the log.
fn render(record: &StoredRecord, metadata: bool) -> String {
    let value = match std::str::from_utf8(&record.value) {
        Ok(text) if serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok() => text.trim().to_owned(),
        _ => serde_json::json!({ "value_utf8_lossy": String::from_utf8_lossy(&record.value) }).to_string(),
    };
    if !metadata {
        return value;
    }
    let key = record.key.as_ref().map(|k| String::from_utf8_lossy(k).into_owned());
    format!(
        r#"{{"topic":{},"partition":{},"offset":{},"key":{},"timestamp":{},"value":{value}}}"#,
        serde_json::Value::from(record.topic.as_str()),
        record.partition,
        record.offset,
        serde_json::to_string(&key).unwrap_or_else(|_| "null".into()),
        serde_json::Value::from(lux_model::format_rfc3339_millis(record.timestamp_ms)),
    )
}

pub fn read(log: &dyn CentralLog, args: &ReadArgs, stop: &AtomicBool, out: &mut dyn Write) -> anyhow::Result<u64> {
    let info = log.topic(&args.topic)?;
    let partitions: Vec<u32> = match args.partition {
        Some(p) if p < info.partitions => vec![p],
        Some(p) => anyhow::bail!("topic {} has {} partitions; there is no partition {p}", args.topic, info.partitions),
        None => (0..info.partitions).collect(),
    };
    let mut positions: Vec<u64> = partitions.iter().map(|p| args.offset.max(info.start_offsets[*p as usize])).collect();
    let mut printed = 0u64;
    loop {
        let mut progressed = false;
        for (i, partition) in partitions.iter().enumerate() {
            loop {
                let batch = log.fetch(&args.topic, *partition, positions[i], 1000)?;
                if batch.is_empty() {
                    break;
                }
                progressed = true;
                for record in &batch {
                    writeln!(out, "{}", render(record, args.metadata))?;
                    positions[i] = record.offset + 1;
                    printed += 1;
                    if args.limit.is_some_and(|l| printed >= l) {
                        out.flush()?;
                        return Ok(printed);
                    }
                }
            }
        }
        out.flush()?;
        if !args.follow || stop.load(Ordering::Relaxed) {
            return Ok(printed);
        }
        if !progressed {
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}
