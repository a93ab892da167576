//! LUX reference data: the equipment inventory (with its validity over time), models,
//! manufacturers, sites, regions, the error-code catalogue and interventions, loaded from CSV
//! files or PostgreSQL into a validated, immutable [`Snapshot`]; the as-of join of events with it
//! ([`Snapshot::enrich`]); live reload behind a [`ReferenceHandle`]; and the `lux reference`
//! commands ([`cli`]).
//!
//! The file formats are the contract of `docs/reference-and-traffic.md`; the PostgreSQL tables
//! and the reload are described in `docs/reference-data.md`.

pub mod cli;
mod config;
mod enrichment;
mod handle;
mod index;
mod load;
pub mod pg;
mod problem;
mod snapshot;

pub use config::{PostgresConfig, ReferenceConfig, SourceKind};
pub use enrichment::{EnrichedRecord, Enrichment, Equipment};
pub use handle::{ReferenceHandle, ReferenceStats};
pub use load::FILES;
pub use problem::ReferenceProblem;
pub use snapshot::{ReferenceError, Snapshot, TableCounts};
