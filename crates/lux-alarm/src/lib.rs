//! LUX alarms: event-time sliding windows over enriched events and threshold rules with a
//! raise / update / clear lifecycle. Pure logic, no I/O: the `lux` stage runner reads the
//! `enriched` topic, calls [`AlarmEngine::on_event`] and [`AlarmEngine::advance`], and commits the
//! returned [`lux_model::Alarm`]s, its input offsets and [`AlarmEngine::take_changes`] atomically.
//!
//! - Windows are cut into panes of one `slide`: per (rule, group) the engine keeps pane counts,
//!   never the events, so state is proportional to groups x panes.
//! - Each input partition has a watermark (its highest event time minus `out_of_orderness`); the
//!   engine's watermark is the lowest over partitions that are not idle. An event older than its
//!   partition's watermark by at most `allowed_lateness` still updates the windows kept for it
//!   (the latest closed one is evaluated again); one further behind is late: counted, never
//!   added, and written unchanged to the `late` topic by the route stage.
//! - A window `[end - window, end)` is evaluated (closed) once the watermark reaches `end`. A
//!   count rule raises earlier, the moment an event brings the window the watermark closes next
//!   to its threshold (early firing); an `updated` record gives the window's final counts when
//!   it closes, if they changed. A ratio rule (`threshold_ratio`, `min_events`) raises when its
//!   window closes.
//! - With no allowed lateness, the alarms do not depend on how partitions interleave, up to the
//!   counts of an early `raised` record (merged with its window's final `updated` record, equal).
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
