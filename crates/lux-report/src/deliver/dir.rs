//! A directory destination: each format of the report is written as `<stem>.<format>`,
//! atomically (a temporary file in the same directory, synced, then renamed over the final
//! name), so that a reader never sees half a report and a report delivered again simply
//! replaces its files.

use super::{Delivery, Destination};
use crate::config::{self, Format};
use std::io::Write as _;
use std::path::{Path, PathBuf};

pub struct DirDestination {
    path: PathBuf,
    formats: Vec<Format>,
}

impl DirDestination {
    pub fn new(config: &config::DirDestination) -> DirDestination {
        DirDestination { path: config.path.clone(), formats: config.formats.clone() }
    }
}

impl Destination for DirDestination {
    fn describe(&self) -> String {
        format!("dir {}", self.path.display())
    }

    fn deliver(&self, delivery: &Delivery<'_>) -> Result<(), String> {
        std::fs::create_dir_all(&self.path).map_err(|e| format!("cannot create {}: {e}", self.path.display()))?;
        let report = delivery.report;
        if !is_file_stem(&report.stem) {
            return Err(format!("the report's stem {:?} is not a file name", report.stem));
        }
        for format in &self.formats {
            let path = self.path.join(format!("{}.{}", report.stem, format.extension()));
            write_atomically(&path, format.of(report).as_bytes())
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        }
        Ok(())
    }
}

/// A name that stays in its directory: no separator, not `.`/`..`, not hidden, not empty.
pub(crate) fn is_file_stem(stem: &str) -> bool {
    !stem.is_empty() && !stem.starts_with('.') && !stem.contains(['/', '\\', '\0'])
}

/// Writes `bytes` to `path` through a temporary file in the same directory, synced and renamed,
/// then syncs the directory: after a crash the file is either the old one or the new one.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().ok_or_else(|| std::io::Error::other("no file name"))?;
    let mut temp_name = std::ffi::OsString::from(".");
    temp_name.push(name);
    temp_name.push(".tmp");
    let temp = dir.join(temp_name);
    let result = (|| {
        let mut file = std::fs::File::create(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&temp, path)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}
