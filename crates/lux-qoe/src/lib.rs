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
//! Speed (`cargo bench -p lux-qoe --bench indicators`: 5,000 equipment on 500 sites, the five
//! default dimensions, batches of 1,000 events; 2-core VM at load 6, noisy): 95 k events/s per
//! core (70 to 137 k) with the changed cells serialised after each batch as the stage does,
//! 281 k (218 to 360 k) without, in the same run: the state of the open cells, JSON with their
//! sketches, written after every batch, costs two thirds of the time. Below the transform
//! stage's rate: the first thing to improve (a binary state encoding, fewer writes of the large
//! region and model cells).

mod config;
mod engine;
pub mod hll;
pub mod postgres;
pub mod stage;

pub use config::{QoeConfig, QoePostgresConfig, DIMENSIONS};
pub use engine::{state_is_finished, EventOutcome, InvalidConfig, QoeCounters, QoeEngine, CELL_KEY_PREFIX, META_KEY};
