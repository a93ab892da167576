//! `ReferenceProblem`: one thing wrong with the reference data, located by file, line and column.

/// One problem found while loading reference data: `equipment.csv:42: column valid_to: ...`
/// for a CSV file, `lux.interventions[intervention_id=INT-7]: column target_id: ...` for a
/// PostgreSQL table.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReferenceProblem {
    /// The file name (`equipment.csv`), or for PostgreSQL the table (`lux.equipment`).
    pub file: String,
    /// The 1-based line of the row (the header is line 1), when the problem is in a row of a file.
    pub line: Option<u64>,
    /// The primary key of the row (`equipment_id=BNG-1, valid_from=...`), when the problem is in
    /// a row of a PostgreSQL table.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The column concerned, when there is one.
    pub column: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl ReferenceProblem {
    pub fn new(file: &str, line: Option<u64>, column: Option<&str>, message: impl Into<String>) -> Self {
        ReferenceProblem {
            file: file.to_owned(),
            line,
            key: None,
            column: column.map(str::to_owned),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for ReferenceProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(key) = &self.key {
            write!(f, "[{key}]")?;
        }
        f.write_str(": ")?;
        if let Some(column) = &self.column {
            write!(f, "column {column}: ")?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for ReferenceProblem {}
