//! LUX alarms: event-time sliding windows over enriched events and threshold rules with a
//! raise / update / clear lifecycle. Pure logic, no I/O: the `lux` stage runner reads the
//! `enriched` topic, calls [`AlarmEngine::on_event`] and [`AlarmEngine::advance`], and commits the
//! returned [`lux_model::Alarm`]s, its input offsets and [`AlarmEngine::take_changes`] atomically.
//!
//! - Windows are cut into panes of one `slide`: per (rule, group) the engine keeps pane counts,
//!   never the events, so state is proportional to groups x panes.
//! - Each input partition has a watermark (its highest event time minus `out_of_orderness`); the
//!   engine's watermark is the lowest over partitions that are not idle. An event older than its
//!   partition's watermark is late: counted, never added. The alarms therefore do not depend on
//!   how partitions interleave.
//! - A window `[end - window, end)` is evaluated once the watermark reaches `end`.
//!
//! [`stage::AlarmRouteStage`] and [`stage::AlarmStage`] wrap the engine as the two halves of the
//! alarm stage, which meet in a routed topic keyed by group so that the stage scales out by
//! partition ([`route`] explains how watermarks cross it).

pub mod board;
mod config;
mod engine;
pub mod route;
pub mod stage;
mod window;

pub use config::{AlarmConfig, Level, RuleConfig, DEFAULT_MIN_EVENTS, MAX_PANES_PER_WINDOW, SEVERITIES};
pub use engine::{
    alarm_key, routed_meta_key, state_is_finished, AlarmEngine, AlarmStats, EventOutcome, InvalidConfig, RuleCounters,
    RuleStats, GROUP_KEY_PREFIX, META_KEY,
};
