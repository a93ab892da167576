//! `ReferenceConfig`: the `[reference]` configuration section, and its validation.

use lux_model::ConfigProblem;
use std::path::PathBuf;

/// Where the reference data (inventory, error catalogue, interventions) comes from (`[reference]`).
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ReferenceConfig {
    /// A directory holding the seven CSV files of the reference data (`regions.csv`, `sites.csv`,
    /// `manufacturers.csv`, `models.csv`, `equipment.csv`, `error_codes.csv`,
    /// `interventions.csv`). Unset: `lux run` uses the demo referential it generates into its
    /// data directory.
    pub dir: Option<PathBuf>,
}

impl ReferenceConfig {
    /// Every problem of this section, with its full dotted key (`prefix` is the section's key,
    /// e.g. `reference`). Whether the files are there and valid is checked by
    /// [`crate::Snapshot::load_csv_dir`], which reports every problem of the data itself.
    pub fn validate(&self, prefix: &str) -> Vec<ConfigProblem> {
        let key = if prefix.is_empty() { "dir".to_owned() } else { format!("{prefix}.dir") };
        let mut problems = Vec::new();
        if let Some(dir) = &self.dir {
            if dir.as_os_str().is_empty() {
                problems.push(ConfigProblem::new(key, "empty path: leave `dir` out to use the demo referential"));
            } else if dir.exists() && !dir.is_dir() {
                problems.push(ConfigProblem::new(
                    key,
                    format!("{} is a file, not a directory of CSV files", dir.display()),
                ));
            }
        }
        problems
    }
}
