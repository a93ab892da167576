//! `lux decode`: what LUX would make of raw input, without running anything — the canonical
//! events (or enriched events, with `--reference`) and the dead letters with their reasons, as
//! JSON lines. The tool an operator uses to try a new source's format before deploying it.

use crate::config::LuxConfig;
use lux_decode::Decoder;
use lux_model::{schema, DeadLetter, Format, Payload, RawRecord};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::PathBuf;

/// Options of `lux decode`.
#[derive(Debug, Clone, clap::Args)]
pub struct DecodeArgs {
    /// The input: a file, or `-` for standard input. Text formats hold one record per line;
    /// RADIUS input is packets back to back; binary input is framed by its layout.
    pub input: PathBuf,
    /// The format of the records: auto (sniffs syslog, RADIUS and JSON), syslog, radius, json,
    /// kv or binary.
    #[arg(long, value_parser = parse_format, default_value = "auto")]
    pub format: Format,
    /// The source id the records are decoded as (selects its `[[transform.decode.sources]]` mapping).
    #[arg(long, default_value = "decode")]
    pub source: String,
    /// Enrich the events with the reference data of this CSV directory (prints enriched events).
    #[arg(long, value_name = "DIR")]
    pub reference: Option<PathBuf>,
}

/// Parses `--format` with the names records use in JSON (`auto`, `syslog`, `radius`, ...).
fn parse_format(text: &str) -> Result<Format, String> {
    serde_json::from_value(serde_json::Value::from(text))
        .map_err(|_| format!("unknown format {text:?}: use auto, syslog, radius, json, kv or binary"))
}

/// Counts of one `lux decode` run.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct DecodeSummary {
    pub records: u64,
    pub events: u64,
    pub dead_letters: BTreeMap<String, u64>,
}

pub fn run(
    config: &LuxConfig,
    args: &DecodeArgs,
    subscriber_key: &[u8],
    out: &mut dyn Write,
) -> anyhow::Result<DecodeSummary> {
    let decoder = Decoder::try_new(&config.transform.decode, subscriber_key).map_err(|problems| {
        let list: Vec<String> = problems.iter().map(|p| format!("  {}: {}", p.key, p.message)).collect();
        anyhow::anyhow!("invalid [transform.decode] configuration:\n{}", list.join("\n"))
    })?;
    let reference = match &args.reference {
        Some(dir) => Some(lux_reference::Snapshot::load_csv_dir(dir).map_err(|problems| {
            let list: Vec<String> = problems.iter().map(|p| format!("  {p}")).collect();
            anyhow::anyhow!("the reference data in {} is invalid:\n{}", dir.display(), list.join("\n"))
        })?),
        None => None,
    };
    let mut input = Vec::new();
    if args.input.as_os_str() == "-" {
        std::io::stdin().read_to_end(&mut input)?;
    } else {
        input = std::fs::read(&args.input).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", args.input.display()))?;
    }
    let format = args.format;
    let received_at = chrono::Utc::now().timestamp_millis();
    let mut summary = DecodeSummary::default();
    let records = match decoder.split_records(format, Some(&args.source), &input) {
        Ok(records) => records,
        Err(error) => {
            // The input cannot even be cut into records: one dead letter for all of it.
            summary.records = 1;
            write_dead_letter(out, &args.source, format, received_at, &error, &input, 0, &mut summary)?;
            return Ok(summary);
        }
    };
    for (index, bytes) in records.into_iter().enumerate() {
        summary.records += 1;
        let raw = RawRecord::new(&args.source, format, received_at, None, bytes.to_vec());
        match decoder.decode(&raw) {
            Ok(events) => {
                for event in events {
                    summary.events += 1;
                    let line = match &reference {
                        Some(snapshot) => serde_json::to_string(&snapshot.enrich(event))?,
                        None => serde_json::to_string(&event)?,
                    };
                    writeln!(out, "{line}")?;
                }
            }
            Err(error) => {
                write_dead_letter(out, &args.source, format, received_at, &error, bytes, index, &mut summary)?
            }
        }
    }
    Ok(summary)
}

#[allow(clippy::too_many_arguments)]
fn write_dead_letter(
    out: &mut dyn Write,
    source: &str,
    format: Format,
    received_at: i64,
    error: &lux_decode::DecodeError,
    bytes: &[u8],
    index: usize,
    summary: &mut DecodeSummary,
) -> anyhow::Result<()> {
    *summary.dead_letters.entry(error.reason.as_str().to_owned()).or_default() += 1;
    let letter = DeadLetter {
        schema: schema::DEADLETTER.to_owned(),
        reason: error.reason,
        detail: error.detail.clone(),
        stage: "decode".to_owned(),
        origin: format!("input record {}", index + 1),
        source: Some(source.to_owned()),
        format: Some(format),
        received_at: Some(received_at),
        peer: None,
        payload: Payload(bytes.to_vec()),
    };
    writeln!(out, "{}", serde_json::to_string(&letter)?)?;
    Ok(())
}
