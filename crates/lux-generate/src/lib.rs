//! The deterministic generator of LUX's demo operator: its network (reference data written as
//! the contract's CSV files) and its traffic (syslog RFC 5424 / RFC 3164 lines and RADIUS
//! accounting packets, with injected incidents), all derived from one seed.
//!
//! ```no_run
//! use lux_generate::{GeneratorConfig, Network, Traffic};
//! let cfg = GeneratorConfig::default();
//! let start = cfg.start_ms()?;
//! let network = Network::generate_at(&cfg, start)?;
//! network.write_csv(std::path::Path::new("reference"))?;
//! let traffic = Traffic::new(&network, &cfg, start)?;
//! let first_second = traffic.second(0);
//! # Ok::<(), anyhow::Error>(())
//! ```
//!
//! Used by `lux generate` ([`GenerateArgs`], [`run`]), by `lux run` as the demo source
//! ([`Schedule`]), and by tests and benchmarks.

mod catalogue;
mod cli;
mod config;
mod curve;
mod names;
mod network;
pub mod radius;
pub mod samples;
pub mod source;
mod traffic;

pub use catalogue::{is_failure, lookup as lookup_error_code, ErrorCode, CATALOGUE};
pub use cli::{generate, run, GenerateArgs, Summary};
pub use config::{
    default_start_ms, parse_rfc3339_ms, GeneratorConfig, IncidentConfig, IncidentScope, DEFAULT_START, MAX_EQUIPMENT,
    MAX_RATE, MAX_REGIONS,
};
pub use curve::load_factor;
pub use network::{
    Equipment, EquipmentStatus, EquipmentType, Intervention, InterventionScope, Manufacturer, Model, Network, Region,
    ResolvedIncident, Site, Technology,
};
pub use traffic::{GeneratedRecord, Schedule, Traffic};

use lux_model::ConfigProblem;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Why the generator cannot start.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    /// The configuration has problems (each with its dotted key).
    #[error("invalid generator configuration: {}", describe(.0))]
    InvalidConfig(Vec<ConfigProblem>),
    /// `generator.start` (or `--start`) is not an RFC 3339 time.
    #[error("generator.start: {reason}")]
    BadStart { reason: String },
    /// A configured incident target is not in the generated network.
    #[error("generator.incidents[{index}].target: no {scope} {target:?} in the generated network")]
    UnknownIncidentTarget { index: usize, scope: &'static str, target: String },
}

fn describe(problems: &[ConfigProblem]) -> String {
    problems.iter().map(|p| format!("{}: {}", p.key, p.message)).collect::<Vec<_>>().join("; ")
}

/// Random streams: simulated second `s` uses stream `s`; the network and incident choices use
/// streams from 2^63 up, so they never collide.
pub(crate) const STREAM_NETWORK: u64 = 1 << 63;
pub(crate) const STREAM_INCIDENTS: u64 = STREAM_NETWORK + 1;

/// The random generator of `stream` under `seed` (ChaCha8: portable and reproducible).
pub(crate) fn rng_for(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    rng
}
