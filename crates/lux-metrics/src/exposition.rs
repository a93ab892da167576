//! The Prometheus text exposition format, version 0.0.4: metric families with their `# HELP` and
//! `# TYPE` lines, samples with escaped label values, histograms as cumulative `_bucket` series
//! with `_sum` and `_count`. Samples of one family are kept together whatever order collectors
//! add them in.

use std::collections::HashMap;
use std::fmt::Write as _;

/// The type of a metric family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

struct Family {
    kind: Kind,
    help: String,
    samples: String,
}

/// A scrape's families being written.
#[derive(Default)]
pub struct Exposition {
    families: HashMap<String, Family>,
    /// Family names in the order first written.
    order: Vec<String>,
}

/// A label value escaped for the text format: `\` as `\\`, `"` as `\"`, a line feed as `\n`.
pub fn escape_label_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// A `# HELP` text escaped: `\` as `\\`, a line feed as `\n`.
pub fn escape_help(text: &str) -> String {
    text.replace('\\', "\\\\").replace('\n', "\\n")
}

/// A metric or label name made valid (`[a-zA-Z_:][a-zA-Z0-9_:]*`): every other character
/// becomes `_`, and a leading digit is prefixed with `_`.
pub fn sanitize_name(name: &str) -> String {
    let mut out: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == ':' { c } else { '_' }).collect();
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

/// A sample value: integers exactly, `+Inf`/`-Inf`/`NaN` as the format spells them.
fn format_value(value: f64) -> String {
    if value.is_nan() {
        "NaN".to_owned()
    } else if value.is_infinite() {
        if value > 0.0 { "+Inf" } else { "-Inf" }.to_owned()
    } else {
        format!("{value}")
    }
}

fn write_labels(out: &mut String, labels: &[(&str, &str)], extra: Option<(&str, &str)>) {
    if labels.is_empty() && extra.is_none() {
        return;
    }
    out.push('{');
    for (i, (name, value)) in labels.iter().copied().chain(extra).enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "{}=\"{}\"", sanitize_name(name), escape_label_value(value));
    }
    out.push('}');
}

impl Exposition {
    pub fn new() -> Exposition {
        Exposition::default()
    }

    /// The family `name` (sanitized), created with `kind` and `help` on first use; with its name.
    fn family(&mut self, name: &str, kind: Kind, help: &str) -> (String, &mut Family) {
        let name = sanitize_name(name);
        if !self.families.contains_key(&name) {
            self.order.push(name.clone());
        }
        let family = self.families.entry(name.clone()).or_insert_with(|| Family {
            kind,
            help: help.to_owned(),
            samples: String::new(),
        });
        (name, family)
    }

    /// Declares a family with no sample yet (so that its HELP and TYPE lines are there even
    /// while nothing is counted).
    pub fn declare(&mut self, name: &str, kind: Kind, help: &str) {
        self.family(name, kind, help);
    }

    /// One sample of a counter or gauge family `name` (declared by its first sample).
    pub fn sample(&mut self, name: &str, kind: Kind, help: &str, labels: &[(&str, &str)], value: f64) {
        let (mut line, family) = self.family(name, kind, help);
        write_labels(&mut line, labels, None);
        let _ = writeln!(line, " {}", format_value(value));
        family.samples.push_str(&line);
    }

    /// One histogram: `buckets` are (upper bound, cumulative count) in increasing order; the
    /// `+Inf` bucket is `count`.
    pub fn histogram(
        &mut self,
        name: &str,
        help: &str,
        labels: &[(&str, &str)],
        buckets: &[(f64, u64)],
        count: u64,
        sum: f64,
    ) {
        let (base, family) = self.family(name, Kind::Histogram, help);
        let mut lines = String::new();
        for &(le, cumulative) in buckets.iter().chain(std::iter::once(&(f64::INFINITY, count))) {
            let _ = write!(lines, "{base}_bucket");
            write_labels(&mut lines, labels, Some(("le", &format_value(le))));
            let _ = writeln!(lines, " {cumulative}");
        }
        let _ = write!(lines, "{base}_sum");
        write_labels(&mut lines, labels, None);
        let _ = writeln!(lines, " {}", format_value(sum));
        let _ = write!(lines, "{base}_count");
        write_labels(&mut lines, labels, None);
        let _ = writeln!(lines, " {count}");
        family.samples.push_str(&lines);
    }

    /// The text of every family, in the order first written.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for name in &self.order {
            let Some(family) = self.families.get(name) else { continue };
            let _ = writeln!(out, "# HELP {name} {}", escape_help(&family.help));
            let _ = writeln!(out, "# TYPE {name} {}", family.kind.as_str());
            out.push_str(&family.samples);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_and_help_are_escaped() {
        assert_eq!(escape_label_value(r#"a\b"c"#), r#"a\\b\"c"#);
        assert_eq!(escape_label_value("line\nnext"), "line\\nnext");
        assert_eq!(escape_help("back\\slash\nnew"), "back\\\\slash\\nnew");
        assert_eq!(sanitize_name("dead_letters.bad-value"), "dead_letters_bad_value");
        assert_eq!(sanitize_name("9lives"), "_9lives");
    }

    #[test]
    fn families_are_contiguous_with_help_and_type() {
        let mut out = Exposition::new();
        let help = "Records read.";
        out.sample("lux_records_total", Kind::Counter, help, &[("stage", "transform")], 5.0);
        out.sample("lux_lag", Kind::Gauge, "Lag.", &[], 2.0);
        out.sample("lux_records_total", Kind::Counter, help, &[("stage", "site=\"A\"\n")], 7.0);
        out.declare("lux_empty_total", Kind::Counter, "Nothing yet.");
        assert_eq!(
            out.render(),
            "# HELP lux_records_total Records read.\n# TYPE lux_records_total counter\n\
             lux_records_total{stage=\"transform\"} 5\nlux_records_total{stage=\"site=\\\"A\\\"\\n\"} 7\n\
             # HELP lux_lag Lag.\n# TYPE lux_lag gauge\nlux_lag 2\n\
             # HELP lux_empty_total Nothing yet.\n# TYPE lux_empty_total counter\n"
        );
    }

    #[test]
    fn histograms_have_cumulative_buckets_sum_and_count() {
        let mut out = Exposition::new();
        out.histogram("lux_commit_seconds", "Commit latency.", &[("stage", "a")], &[(0.01, 3), (0.1, 4)], 5, 0.75);
        assert_eq!(
            out.render(),
            "# HELP lux_commit_seconds Commit latency.\n# TYPE lux_commit_seconds histogram\n\
             lux_commit_seconds_bucket{stage=\"a\",le=\"0.01\"} 3\nlux_commit_seconds_bucket{stage=\"a\",le=\"0.1\"} 4\n\
             lux_commit_seconds_bucket{stage=\"a\",le=\"+Inf\"} 5\nlux_commit_seconds_sum{stage=\"a\"} 0.75\n\
             lux_commit_seconds_count{stage=\"a\"} 5\n"
        );
        assert_eq!(format_value(1e21), "1000000000000000000000");
    }
}
