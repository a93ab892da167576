//! The `lux reference` commands: `init` (create or migrate the PostgreSQL tables), `validate`
//! (every problem of a CSV directory or of the PostgreSQL tables, with its place), `show` (the
//! version and row counts), `import` (a CSV directory into the PostgreSQL tables).

use crate::config::{ReferenceConfig, SourceKind};
use crate::pg;
use crate::problem::ReferenceProblem;
use crate::snapshot::{ReferenceError, Snapshot};
use std::io::Write;
use std::path::PathBuf;

/// `lux reference ...`
#[derive(Debug, Clone, PartialEq, Eq, clap::Subcommand)]
pub enum ReferenceCommand {
    /// Create the PostgreSQL schema and tables, or apply the migrations they miss (idempotent).
    Init,
    /// Validate the reference data and print every problem with its place (file and line, or
    /// table and key). Exits non-zero when there is any.
    Validate {
        /// A directory of CSV files to validate (default: the configured source).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Print the version and row counts of the reference data.
    Show {
        /// A directory of CSV files to show (default: the configured source).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Replace the content of the PostgreSQL tables by a CSV directory, in one transaction
    /// (validated first; nothing is written when it has a problem).
    Import {
        /// The directory of CSV files to import.
        #[arg(long)]
        dir: PathBuf,
    },
}

/// Where the data of `validate` and `show` is read from.
enum Target {
    Dir(PathBuf),
    Postgres,
}

fn target(cfg: &ReferenceConfig, dir: &Option<PathBuf>) -> anyhow::Result<Target> {
    match (dir, cfg.source) {
        (Some(dir), _) => Ok(Target::Dir(dir.clone())),
        (None, SourceKind::Postgres) => Ok(Target::Postgres),
        (None, SourceKind::Csv) => match &cfg.dir {
            Some(dir) => Ok(Target::Dir(dir.clone())),
            None => anyhow::bail!("no CSV directory: give --dir or set reference.dir"),
        },
    }
}

/// Reads the target: the version (when the data could be read) and the snapshot or problems.
fn read(cfg: &ReferenceConfig, target: &Target) -> anyhow::Result<(String, Result<Snapshot, Vec<ReferenceProblem>>)> {
    match target {
        Target::Dir(dir) => match Snapshot::load_csv_dir(dir) {
            Ok(s) => Ok((s.version().to_owned(), Ok(s))),
            Err(problems) => Ok((String::new(), Err(problems))),
        },
        Target::Postgres => {
            let mut client = pg::connect(&cfg.postgres.url)?;
            Ok(pg::load(&mut client, &cfg.postgres.schema)?)
        }
    }
}

fn describe(cfg: &ReferenceConfig, target: &Target) -> String {
    match target {
        Target::Dir(dir) => format!("CSV directory {}", dir.display()),
        Target::Postgres => format!("PostgreSQL schema {}", cfg.postgres.schema),
    }
}

fn print_counts(out: &mut dyn Write, s: &Snapshot) -> std::io::Result<()> {
    let c = s.counts();
    writeln!(out, "version        {}", s.version())?;
    for (name, n) in [
        ("regions", c.regions),
        ("sites", c.sites),
        ("manufacturers", c.manufacturers),
        ("models", c.models),
        ("equipment", c.equipment),
        ("error_codes", c.error_codes),
        ("interventions", c.interventions),
    ] {
        writeln!(out, "{name:<14} {n}")?;
    }
    Ok(())
}

/// Runs one `lux reference` command, writing its report to `out`. `Ok(false)`: the data has
/// problems (printed); `Err`: the command could not run (database unreachable, bad arguments).
pub fn run(cfg: &ReferenceConfig, cmd: &ReferenceCommand, out: &mut dyn Write) -> anyhow::Result<bool> {
    match cmd {
        ReferenceCommand::Init => {
            let mut client = pg::connect(&cfg.postgres.url)?;
            let applied = pg::init(&mut client, &cfg.postgres.schema)?;
            if applied.is_empty() {
                writeln!(out, "schema {} is up to date", cfg.postgres.schema)?;
            } else {
                writeln!(out, "schema {}: applied {}", cfg.postgres.schema, applied.join(", "))?;
            }
            Ok(true)
        }
        ReferenceCommand::Validate { dir } => {
            let target = target(cfg, dir)?;
            match read(cfg, &target)? {
                (_, Ok(s)) => {
                    writeln!(out, "{}: valid, version {}", describe(cfg, &target), s.version())?;
                    Ok(true)
                }
                (_, Err(problems)) => {
                    for p in &problems {
                        writeln!(out, "{p}")?;
                    }
                    writeln!(out, "{}: {} problem(s)", describe(cfg, &target), problems.len())?;
                    Ok(false)
                }
            }
        }
        ReferenceCommand::Show { dir } => {
            let target = target(cfg, dir)?;
            writeln!(out, "source         {}", describe(cfg, &target))?;
            match read(cfg, &target)? {
                (_, Ok(s)) => {
                    print_counts(out, &s)?;
                    Ok(true)
                }
                (_, Err(problems)) => {
                    writeln!(out, "invalid: {} problem(s), run `lux reference validate` to list them", problems.len())?;
                    Ok(false)
                }
            }
        }
        ReferenceCommand::Import { dir } => {
            let mut client = pg::connect(&cfg.postgres.url)?;
            match pg::import_csv_dir(&mut client, &cfg.postgres.schema, dir) {
                Ok(counts) => {
                    writeln!(
                        out,
                        "imported {} into schema {}: {} equipment rows, {} interventions, {} error codes",
                        dir.display(),
                        cfg.postgres.schema,
                        counts.equipment,
                        counts.interventions,
                        counts.error_codes
                    )?;
                    Ok(true)
                }
                Err(ReferenceError::Invalid(problems)) => {
                    for p in &problems {
                        writeln!(out, "{p}")?;
                    }
                    writeln!(out, "{}: {} problem(s), nothing imported", dir.display(), problems.len())?;
                    Ok(false)
                }
                Err(e) => Err(e.into()),
            }
        }
    }
}
