//! LUX QoE: per window of event time (a minute by default) and per dimension value (equipment,
//! site, region, manufacturer, model), the Quality-of-Experience indicators operators follow,
//! written to the `qoe` topic exactly once and, optionally, upserted into PostgreSQL.
//!
//! - [`QoeEngine`]: pure logic, no I/O. Events are counted into tumbling windows per dimension
//!   value; a window is written (one [`lux_model::QoeIndicator`] per value) when the watermark
//!   passes its end, with the alarm stage's out-of-orderness and idleness rules
//!   ([`lux_stage::watermark`]). Events covered by an intervention with `exclude_from_kpi` are
//!   counted apart (`excluded_events`) and in nothing else.
//! - [`stage::QoeStage`]: the engine as a stage: its open windows are state entries committed
//!   with the input offsets and the indicators, so a restart gives the records of an
//!   uninterrupted run.
//! - [`postgres::QoePostgresStage`]: the `qoe` topic upserted into `<schema>.qoe_indicators`,
//!   keyed by (window start, dimension, value). While PostgreSQL is unreachable the records wait
//!   in the stage's state (committed with its offsets) and are retried; a record written twice
//!   changes nothing. The topic is the exactly-once record; the table an idempotent copy.
//! - [`hll::HyperLogLog`]: the distinct affected subscribers (standard error 1.6%).
//!
//! Definitions (counted over events not excluded): attempts are `session_start`,
//! `auth_reject`, `ppp_failure` and `dhcp_failure` events; setup success rate
//! `session_start / attempts`; authentication failure rate `auth_reject / attempts`; drop rate
//! the share of `session_stop` events whose error code the catalogue marks `is_drop`; a short
//! session a stop whose duration (`qoe.duration_attribute`, RADIUS `Acct-Session-Time`) is under
//! `qoe.short_session`; affected subscribers the distinct subscribers of failures
//! (`is_failure`) and drops; top error codes those of failures and drops.
//!
//! Speed, in instructions per event (callgrind, `examples/read_profile.rs`: the benchmark's
//! 5,000 equipment on 500 sites, the five default dimensions, `advance` every 1,000 events):
//! the engine 3,750; writing the changed cells' state entries after each batch 4,498 (19,992
//! when they were JSON, their sketches base64: the cells are binary since format 2, see
//! `engine/cell_entry.rs`, and their keys built without `format!`); the stage's read of an
//! `enriched` record about 22,600 (`EnrichedEvent::from_json_for_indicators`), now the largest
//! part. Wall clock: `cargo bench -p lux-qoe --bench indicators`.

mod config;
mod engine;
pub mod hll;
pub mod postgres;
pub mod stage;

pub use config::{QoeConfig, QoePostgresConfig, DIMENSIONS};
pub use engine::{state_is_finished, EventOutcome, InvalidConfig, QoeCounters, QoeEngine, CELL_KEY_PREFIX, META_KEY};
