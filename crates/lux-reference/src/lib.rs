//! LUX reference data: the equipment inventory (with its validity over time), models,
//! manufacturers, sites, regions, the error-code catalogue and interventions, loaded from CSV
//! files into a validated, immutable [`Snapshot`], and the as-of join of events with it
//! ([`Snapshot::enrich`]).
//!
//! The file formats are the contract of `docs/reference-and-traffic.md`.

mod config;
mod load;
mod problem;
mod snapshot;

pub use config::ReferenceConfig;
pub use load::FILES;
pub use problem::ReferenceProblem;
pub use snapshot::{Snapshot, TableCounts};
