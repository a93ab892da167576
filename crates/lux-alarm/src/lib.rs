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
//!   count rule raises earlier, the moment a failure brings any open window holding it to the
//!   threshold (early firing: the first such window, by end); an `updated` record gives that
//!   window's final counts when it closes, if they changed, and the windows closing before it
//!   leave the alarm alone. A ratio rule (`threshold_ratio`, `min_events`) raises only when its
//!   window closes: its ratio is not monotone (more successes may still bring it under).
//! - For a given input order, the alarms do not depend on where the watermark stood when each
//!   event came (batching, restarts), with one exception: an alarm cleared by a window that
//!   closes after the failures that would raise the next one (the next raise then waits for
//!   the clear, and is made on the first open window at the threshold by then).
//! - Early firing makes a raise depend on arrival order: across partitions interleaved
//!   differently, an alarm may be raised on a later window than the first one whose final count
//!   reaches the threshold (failures of that window arriving after those of a later one).
//!
//! [`stage::AlarmRouteStage`] and [`stage::AlarmStage`] wrap the engine as the two halves of the
//! alarm stage, which meet in a routed topic keyed by group so that the stage scales out by
//! partition ([`route`] explains how watermarks cross it).

pub mod board;
mod codec;
mod config;
mod engine;
pub mod route;
pub mod stage;
mod window;
pub mod workload;

pub use config::{AlarmConfig, EarlyFiring, Level, RuleConfig, DEFAULT_MIN_EVENTS, MAX_PANES_PER_WINDOW, SEVERITIES};
pub use engine::{
    alarm_key, routed_meta_key, state_is_finished, state_routing_key, AlarmEngine, AlarmStats, EventOutcome,
    InvalidConfig, RuleCounters, RuleStats, GROUP_KEY_PREFIX, META_KEY, PANE_KEY_PREFIX,
};
