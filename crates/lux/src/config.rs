//! The configuration file: one TOML document, every section owned by the component it
//! configures (`[log]`, `[generator]`, `[collect]`, `[reference]`, `[transform]`, `[alarm]`,
//! `[notify]`, `[qoe]`, `[report]`, `[metrics]`), every key
//! defaulted so that `lux run` works with no file at all.
//!
//! Loading reports *every* problem, each with its key and line: syntax errors, unknown keys,
//! wrong types and invalid values. Environment variables `LUX_<SECTION>__<KEY>=value` (double
//! underscore between levels, e.g. `LUX_GENERATOR__RATE=5000`) override keys of the file.

use lux_model::ConfigProblem;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::{Path, PathBuf};

/// The whole configuration of LUX.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct LuxConfig {
    /// The central log: backend, data directory, durability, topics.
    pub log: lux_log::LogConfig,
    /// The demo traffic generator (`lux run` source and `lux generate`).
    pub generator: lux_generate::GeneratorConfig,
    /// The collectors (`lux collect`, and `lux run` when any is configured): syslog, RADIUS and
    /// HTTP listeners and tailed files, writing what equipment sends into the `raw` topic.
    pub collect: lux_collect::CollectConfig,
    /// Reference data used to enrich events.
    pub reference: lux_reference::ReferenceConfig,
    /// The transform stage: decoding and enrichment.
    pub transform: lux_transform::TransformConfig,
    /// The alarm stage: sliding windows and threshold rules.
    pub alarm: lux_alarm::AlarmConfig,
    /// The notifiers (the `alarm-notify` stage: `lux notify`, and `lux run` when any target is
    /// configured): the alarms topic delivered to Prometheus Alertmanager and webhooks.
    pub notify: lux_notify::NotifyConfig,
    /// The QoE stage (`lux qoe`, and `lux run` unless `enabled = false`): per-minute indicators
    /// per equipment, site, region, manufacturer and model into the `qoe` topic, and optionally
    /// into PostgreSQL.
    pub qoe: lux_qoe::QoeConfig,
    /// Reports pushed on a schedule (`lux publish`, and `lux run` when any
    /// `[[report.schedule]]` is configured): the report of the period that just ended, delivered
    /// to directories, HTTP endpoints and e-mail, retried from a durable outbox until delivered.
    pub report: lux_report::ReportConfig,
    /// The Prometheus `/metrics` endpoint of every long-running `lux` process.
    pub metrics: lux_metrics::MetricsConfig,
    /// Options of `lux run` itself: which sources it runs, what it prints.
    pub run: RunConfig,
}

/// Options of `lux run` itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RunConfig {
    /// Run the demo traffic generator as a source (writes into the `raw` topic).
    pub generator: bool,
    /// How often the one-line live summary is printed (`0s` turns it off).
    #[serde(with = "humantime_serde")]
    #[schemars(with = "String")]
    pub summary_interval: std::time::Duration,
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig { generator: true, summary_interval: std::time::Duration::from_secs(5) }
    }
}

impl LuxConfig {
    /// Every semantic problem of the configuration (types are checked while parsing).
    pub fn validate(&self) -> Vec<ConfigProblem> {
        let mut problems = self.log.validate("log");
        problems.extend(self.generator.validate("generator"));
        problems.extend(self.collect.validate("collect"));
        problems.extend(self.reference.validate("reference"));
        problems.extend(self.transform.validate("transform"));
        problems.extend(self.alarm.validate("alarm"));
        problems.extend(self.notify.validate("notify"));
        problems.extend(self.qoe.validate("qoe"));
        problems.extend(self.report.validate("report"));
        problems.extend(self.metrics.validate("metrics"));
        problems
    }
}

/// One problem of a configuration, located.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The dotted key (`alarm.rules[0].window`), empty for a syntax error.
    pub key: String,
    /// 1-based line in the file, when the key is in the file.
    pub line: Option<usize>,
    /// Where the value came from when not from the file (an environment variable).
    pub origin: Option<String>,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, &self.origin) {
            (_, Some(origin)) => write!(f, "{origin}: ")?,
            (Some(line), None) => write!(f, "line {line}: ")?,
            (None, None) => {}
        }
        if !self.key.is_empty() {
            write!(f, "{}: ", self.key)?;
        }
        write!(f, "{}", self.message)
    }
}

/// All the problems of a configuration, with the file they are in.
#[derive(Debug)]
pub struct ConfigErrors {
    pub file: Option<PathBuf>,
    pub problems: Vec<Problem>,
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.file.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "configuration".into());
        writeln!(f, "{name}: {} problem(s)", self.problems.len())?;
        for problem in &self.problems {
            writeln!(f, "  {name}:{problem}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Loads the configuration from `file` (or the defaults), applies `LUX_...__...` overrides
/// from `env`, and validates it.
pub fn load(file: Option<&Path>, env: impl IntoIterator<Item = (String, String)>) -> Result<LuxConfig, ConfigErrors> {
    let fail = |problems| ConfigErrors { file: file.map(Path::to_path_buf), problems };
    let text = match file {
        Some(path) => std::fs::read_to_string(path).map_err(|e| {
            fail(vec![Problem {
                key: String::new(),
                line: None,
                origin: None,
                message: format!("cannot read the file: {e}"),
            }])
        })?,
        None => String::new(),
    };
    parse(&text, env).map_err(fail)
}

/// [`load`] on a string.
pub fn parse(text: &str, env: impl IntoIterator<Item = (String, String)>) -> Result<LuxConfig, Vec<Problem>> {
    let original: toml_edit::ImDocument<String> = text.parse().map_err(|e: toml_edit::TomlError| {
        vec![Problem {
            key: String::new(),
            line: e.span().map(|s| line_of(text, s.start)),
            origin: None,
            message: format!("invalid TOML: {}", e.message()),
        }]
    })?;
    let mut doc = original.clone().into_mut();
    let mut env_keys: Vec<(String, String)> = Vec::new();
    for (name, value) in env {
        if let Some(path) = env_key_path(&name) {
            set_path(&mut doc, &path, parse_env_value(&value));
            env_keys.push((path.join("."), name));
        }
    }
    let locate = |key: &str| -> (Option<usize>, Option<String>) {
        if let Some((_, var)) = env_keys.iter().find(|(k, _)| key == k || key.starts_with(&format!("{k}."))) {
            return (None, Some(format!("environment variable {var}")));
        }
        (find_line(&original, text, key), None)
    };
    let mut problems = Vec::new();
    // Deserialize; on each error, record it, remove the offending key and try again, so that one
    // run reports every unknown key and wrong type.
    for _ in 0..100 {
        let rendered = doc.to_string();
        let deserializer = toml::Deserializer::new(&rendered);
        match serde_path_to_error::deserialize::<_, LuxConfig>(deserializer) {
            Ok(config) => {
                for problem in config.validate() {
                    let (line, origin) = locate(&problem.key);
                    problems.push(Problem { key: problem.key, line, origin, message: problem.message });
                }
                return if problems.is_empty() { Ok(config) } else { Err(problems) };
            }
            Err(error) => {
                let mut path = error.path().to_string();
                let message = error.inner().message().trim().to_owned();
                if let Some(field) = unknown_field(&message) {
                    path = if path == "." || path.is_empty() {
                        field.to_owned()
                    } else if path.ends_with(field) {
                        path
                    } else {
                        format!("{path}.{field}")
                    };
                }
                let (line, origin) = locate(&path);
                let message =
                    if unknown_field(&message).is_some() { format!("unknown key ({message})") } else { message };
                problems.push(Problem { key: path.clone(), line, origin, message });
                if !remove_path(&mut doc, &path) {
                    return Err(problems);
                }
            }
        }
    }
    Err(problems)
}

fn unknown_field(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("unknown field `")?;
    rest.split('`').next()
}

/// `LUX_ALARM__OUT_OF_ORDERNESS` -> `["alarm", "out_of_orderness"]`.
fn env_key_path(name: &str) -> Option<Vec<String>> {
    let rest = name.strip_prefix("LUX_")?;
    if !rest.contains("__") {
        return None;
    }
    Some(rest.split("__").map(|s| s.to_ascii_lowercase()).collect())
}

fn parse_env_value(value: &str) -> toml_edit::Value {
    match value.parse::<toml_edit::Value>() {
        Ok(v) => v,
        Err(_) => toml_edit::Value::from(value),
    }
}

fn set_path(doc: &mut toml_edit::DocumentMut, path: &[String], value: toml_edit::Value) {
    let mut item = doc.as_item_mut();
    for (i, segment) in path.iter().enumerate() {
        if i + 1 == path.len() {
            if let Some(table) = item.as_table_like_mut() {
                table.insert(segment, toml_edit::Item::Value(value));
            }
            return;
        }
        let Some(table) = item.as_table_like_mut() else { return };
        if table.get(segment).is_none() {
            table.insert(segment, toml_edit::Item::Table(toml_edit::Table::new()));
        }
        match table.get_mut(segment) {
            Some(next) => item = next,
            None => return,
        }
    }
}

/// `alarm.rules[0].window` -> segments (`alarm`, `rules`, 0, `window`).
enum Segment {
    Key(String),
    Index(usize),
}

fn segments(path: &str) -> Vec<Segment> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let mut rest = part;
        if let Some(open) = rest.find('[') {
            if open > 0 {
                out.push(Segment::Key(rest[..open].to_owned()));
            }
            rest = &rest[open..];
            while let Some(stripped) = rest.strip_prefix('[') {
                let Some(close) = stripped.find(']') else { break };
                if let Ok(i) = stripped[..close].parse() {
                    out.push(Segment::Index(i));
                }
                rest = &stripped[close + 1..];
            }
        } else if !rest.is_empty() {
            out.push(Segment::Key(rest.to_owned()));
        }
    }
    out
}

fn remove_path(doc: &mut toml_edit::DocumentMut, path: &str) -> bool {
    remove_in_table(doc.as_table_mut(), &segments(path))
}

fn remove_in_table(table: &mut dyn toml_edit::TableLike, segs: &[Segment]) -> bool {
    match segs {
        [Segment::Key(k)] => table.remove(k).is_some(),
        [Segment::Key(k), rest @ ..] => table.get_mut(k).is_some_and(|item| remove_in_item(item, rest)),
        _ => false,
    }
}

fn remove_in_item(item: &mut toml_edit::Item, segs: &[Segment]) -> bool {
    match segs.first() {
        Some(Segment::Index(i)) => {
            let (i, rest) = (*i, &segs[1..]);
            match item {
                toml_edit::Item::ArrayOfTables(a) if rest.is_empty() && i < a.len() => {
                    a.remove(i);
                    true
                }
                toml_edit::Item::ArrayOfTables(a) => a.get_mut(i).is_some_and(|t| remove_in_table(t, rest)),
                toml_edit::Item::Value(toml_edit::Value::Array(a)) if rest.is_empty() && i < a.len() => {
                    a.remove(i);
                    true
                }
                toml_edit::Item::Value(toml_edit::Value::Array(a)) => {
                    a.get_mut(i).and_then(|v| v.as_inline_table_mut()).is_some_and(|t| remove_in_table(t, rest))
                }
                _ => false,
            }
        }
        Some(Segment::Key(_)) => item.as_table_like_mut().is_some_and(|t| remove_in_table(t, segs)),
        None => false,
    }
}

/// The line of the deepest part of `path` that is written in the file.
fn find_line(doc: &toml_edit::ImDocument<String>, text: &str, path: &str) -> Option<usize> {
    let mut best = None;
    let mut table: Option<&dyn toml_edit::TableLike> = Some(doc.as_table());
    let mut tables: Option<&toml_edit::ArrayOfTables> = None;
    let mut values: Option<&toml_edit::Array> = None;
    for seg in segments(path) {
        match seg {
            Segment::Key(k) => {
                let Some((key, item)) = table.and_then(|t| t.get_key_value(&k)) else { break };
                if let Some(span) = key.span().or_else(|| item.span()) {
                    best = Some(line_of(text, span.start));
                }
                table = item.as_table_like();
                tables = item.as_array_of_tables();
                values = item.as_array();
            }
            Segment::Index(i) => {
                if let Some(element) = tables.and_then(|a| a.get(i)) {
                    if let Some(span) = element.span() {
                        best = Some(line_of(text, span.start));
                    }
                    table = Some(element);
                    tables = None;
                    values = None;
                } else if let Some(element) = values.and_then(|a| a.get(i)) {
                    if let Some(span) = element.span() {
                        best = Some(line_of(text, span.start));
                    }
                    table = element.as_inline_table().map(|t| t as &dyn toml_edit::TableLike);
                    tables = None;
                    values = element.as_array();
                } else {
                    break;
                }
            }
        }
    }
    best
}

fn line_of(text: &str, byte: usize) -> usize {
    text.as_bytes()[..byte.min(text.len())].iter().filter(|&&b| b == b'\n').count() + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env() -> Vec<(String, String)> {
        Vec::new()
    }

    #[test]
    fn defaults_are_valid() {
        assert_eq!(parse("", no_env()).unwrap(), LuxConfig::default());
    }

    #[test]
    fn wrong_type_and_unknown_key_are_both_reported_with_lines() {
        let text = "[log]\npartitions = 3\n\n[generator]\nrate = \"fast\"\nsped = 2\n";
        let problems = parse(text, no_env()).unwrap_err();
        assert_eq!(problems.len(), 2, "{problems:?}");
        let rate = problems.iter().find(|p| p.key == "generator.rate").expect("rate reported");
        assert_eq!(rate.line, Some(5));
        assert!(rate.message.contains("invalid type"), "{}", rate.message);
        let sped = problems.iter().find(|p| p.key == "generator.sped").expect("unknown key reported");
        assert_eq!(sped.line, Some(6));
        assert!(sped.message.contains("unknown"), "{}", sped.message);
    }

    #[test]
    fn invalid_values_are_reported_with_lines() {
        let text = "[log]\n\npartitions = 0\n";
        let problems = parse(text, no_env()).unwrap_err();
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].key, "log.partitions");
        assert_eq!(problems[0].line, Some(3));
    }

    #[test]
    fn every_section_names_its_keys_in_full() {
        let text = "[generator]\nrate = 0\n\n[transform.decode]\ntimezone = \"Mars/Olympus\"\n\n[reference]\ndir = \"\"\n\n\
                    [[alarm.rules]]\nname = \"r\"\ngroup_by = [\"site\"]\nwindow = \"25s\"\nslide = \"10s\"\nthreshold = 10\n";
        let problems = parse(text, no_env()).unwrap_err();
        let found: Vec<(&str, Option<usize>)> = problems.iter().map(|p| (p.key.as_str(), p.line)).collect();
        for (key, line) in [
            ("generator.rate", 2),
            ("transform.decode.timezone", 5),
            ("reference.dir", 8),
            ("alarm.rules[0].window", 13),
        ] {
            assert!(found.contains(&(key, Some(line))), "{key} at line {line} not in {found:?}");
        }
    }

    #[test]
    fn the_qoe_section_is_checked_with_keys_and_lines() {
        let text = "[qoe]\nwindow = \"7s\"\ndimensions = [\"site\", \"planet\"]\n\n[qoe.postgres]\nschema = \"Bad\"\n";
        let problems = parse(text, no_env()).unwrap_err();
        let found: Vec<(&str, Option<usize>)> = problems.iter().map(|p| (p.key.as_str(), p.line)).collect();
        for (key, line) in [("qoe.window", 2), ("qoe.dimensions[1]", 3), ("qoe.postgres.schema", 6)] {
            assert!(found.contains(&(key, Some(line))), "{key} at line {line} not in {found:?}");
        }
        let env = vec![("LUX_QOE__POSTGRES__URL".to_owned(), "host=127.0.0.1 dbname=lux".to_owned())];
        let config = parse("[qoe]\nshort_session = \"2m\"\n", env).unwrap();
        assert_eq!(config.qoe.short_session, std::time::Duration::from_secs(120));
        assert_eq!(config.qoe.postgres.url.as_deref(), Some("host=127.0.0.1 dbname=lux"));
    }

    #[test]
    fn collect_listeners_are_parsed_and_their_problems_located() {
        let text = "[[collect.syslog]]\nprotocol = \"tcp\"\nlisten = \"0.0.0.0:6514\"\nsource = \"bras\"\nmax_frame = \"128KiB\"\n\n\
                    [[collect.radius]]\nlisten = \"0.0.0.0:1813\"\nsource = \"nas\"\n\n\
                    [[collect.radius.clients]]\naddress = \"10.0.0.0/8\"\nsecret_env = \"NAS_SECRET\"\n";
        let config = parse(text, no_env()).unwrap();
        assert_eq!(config.collect.syslog[0].max_frame.bytes(), 128 << 10);
        assert_eq!(config.collect.radius[0].clients[0].secret_env.as_deref(), Some("NAS_SECRET"));
        let bad = "[[collect.syslog]]\nprotocol = \"tls\"\nlisten = \"0.0.0.0:6514\"\n\n[[collect.syslog]]\nlisten = \"here\"\n";
        let problems = parse(bad, no_env()).unwrap_err();
        let found: Vec<(&str, Option<usize>)> = problems.iter().map(|p| (p.key.as_str(), p.line)).collect();
        for (key, line) in
            [("collect.syslog[0].tls_cert", 1), ("collect.syslog[1].listen", 6), ("collect.syslog[1].source", 5)]
        {
            assert!(found.contains(&(key, Some(line))), "{key} at line {line} not in {found:?}");
        }
    }

    #[test]
    fn metrics_and_notify_problems_are_located() {
        let text = "[metrics]\nlisten = \"localhost\"\n\n[notify]\nalertmanager = [\"am:9093\"]\n\n\
                    [[notify.webhooks]]\nurl = \"https://hooks.example.net/lux\"\nheaders = { \"X Team\" = \"noc\" }\n";
        let problems = parse(text, no_env()).unwrap_err();
        let found: Vec<(&str, Option<usize>)> = problems.iter().map(|p| (p.key.as_str(), p.line)).collect();
        assert_eq!(
            found,
            [("notify.alertmanager[0]", Some(5)), ("notify.webhooks[0].headers", Some(9)), ("metrics.listen", Some(2))]
        );
        assert!(parse("[metrics]\nlisten = \"\"\n", no_env()).unwrap().metrics.listen_addr().is_none());
    }

    #[test]
    fn syntax_errors_have_a_line() {
        let problems = parse("[log]\npartitions = = 3\n", no_env()).unwrap_err();
        assert_eq!(problems[0].line, Some(2));
    }

    #[test]
    fn environment_overrides_keys() {
        let env = vec![
            ("LUX_LOG__PARTITIONS".to_owned(), "6".to_owned()),
            ("LUX_LOG__TOPIC_PREFIX".to_owned(), "prod.".to_owned()),
            ("LUX_UNRELATED".to_owned(), "x".to_owned()),
        ];
        let config = parse("[log]\npartitions = 2\n", env).unwrap();
        assert_eq!(config.log.partitions, 6);
        assert_eq!(config.log.topic_prefix, "prod.");
        let problems = parse("", vec![("LUX_LOG__PARTITIONS".to_owned(), "lots".to_owned())]).unwrap_err();
        assert_eq!(problems[0].origin.as_deref(), Some("environment variable LUX_LOG__PARTITIONS"));
    }
}
