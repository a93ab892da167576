//! The JSON format: the [`ReportModel`] itself, pretty-printed.

use crate::{ReportError, ReportModel};

pub fn render_json(model: &ReportModel) -> Result<String, ReportError> {
    let mut text = serde_json::to_string_pretty(model)
        .map_err(|e| ReportError::Render { format: "json", detail: e.to_string() })?;
    text.push('\n');
    Ok(text)
}
