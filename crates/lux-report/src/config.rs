//! The `[report]` config section: the report schedules (`[[report.schedule]]`), the places
//! reports are delivered to (`[[report.dir]]`, `[[report.http]]`, `[[report.smtp]]`), and how a
//! failed delivery is retried (`[report.retry]`).

use crate::schedule::{Every, Timing};
use lux_model::{config_key, ConfigProblem};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

/// Reports pushed to upstream users on a schedule (inside `lux run`, or alone with
/// `lux publish`): each schedule builds the report of the period that just ended and delivers
/// it to its destinations, retrying a failed delivery from a durable outbox in the data
/// directory (`<data_dir>/report/`). Times are UTC.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ReportConfig {
    /// The schedules (`[[report.schedule]]`). Empty: no report is pushed, and `lux run` runs no
    /// scheduler.
    pub schedule: Vec<ScheduleConfig>,
    /// Directories the report files are written to (`[[report.dir]]`).
    pub dir: Vec<DirDestination>,
    /// HTTP endpoints each report is POSTed to (`[[report.http]]`).
    pub http: Vec<HttpDestination>,
    /// E-mail over SMTP (`[[report.smtp]]`): the HTML report as the body, the CSV attached.
    pub smtp: Vec<SmtpDestination>,
    /// How a failed build or delivery is retried.
    pub retry: RetryConfig,
    /// Most missed runs of one schedule caught up at start (LUX was down at their times): the
    /// latest ones; older ones are logged as skipped.
    pub max_catch_up: u32,
}

impl Default for ReportConfig {
    fn default() -> Self {
        ReportConfig {
            schedule: Vec::new(),
            dir: Vec::new(),
            http: Vec::new(),
            smtp: Vec::new(),
            retry: RetryConfig::default(),
            max_catch_up: 24,
        }
    }
}

/// One schedule: when it runs, which period its report covers, where it goes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ScheduleConfig {
    /// The schedule's name (letters, digits, `-`, `_`): in logs, metrics, the outbox and the
    /// e-mail subject.
    pub name: String,
    /// `hour`, `day` or `week` (ISO weeks, from Monday): runs once per such period, `offset`
    /// after it ends, and covers the period that just ended. Set this or `cron`.
    pub every: Option<Every>,
    /// How long after the end of the period an `every` schedule runs (`5m`, `6h`): leave the QoE
    /// stage time to write the period's last minutes (its `out_of_orderness` and more). Must be
    /// less than the period. Default: `5m`.
    #[serde(with = "humantime_serde")]
    #[schemars(with = "Option<String>")]
    pub offset: Option<Duration>,
    /// A cron expression in UTC (`0 6 * * 1-5`: 06:00 on weekdays; 5 fields, or 6 with
    /// seconds first; `@daily` and the like), instead of `every`. Needs `period`.
    pub cron: Option<String>,
    /// The period a run covers: the last complete `hour`, `day` or `week` before the run's
    /// scheduled time. Defaults to `every`.
    pub period: Option<Every>,
    /// The names of the destinations (`[[report.dir]]`, `[[report.http]]`, `[[report.smtp]]`)
    /// each report is delivered to.
    pub destinations: Vec<String>,
}

/// A directory the report files are written to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct DirDestination {
    /// The destination's name, as schedules list it.
    pub name: String,
    /// The directory (created if missing). Each format is a file `<stem>.<format>`
    /// (`lux-report-day-2026-11-26.html`), written to a temporary file and renamed, so that a
    /// reader never sees half a report; a report delivered again replaces its files.
    pub path: PathBuf,
    /// The formats written: `html`, `csv`, `json`.
    pub formats: Vec<Format>,
}

impl Default for DirDestination {
    fn default() -> Self {
        DirDestination { name: String::new(), path: PathBuf::new(), formats: Format::ALL.to_vec() }
    }
}

/// An HTTP endpoint each report is POSTed to: any 2xx status is delivered, anything else
/// (or no answer within `timeout`) is retried.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct HttpDestination {
    /// The destination's name, as schedules list it.
    pub name: String,
    /// The URL (`https://bi.example.net/ingest/lux`). Each request also carries the headers
    /// `X-Lux-Report` (the report's stem: the same report delivered twice has the same one),
    /// `X-Lux-Period-From` and `X-Lux-Period-To` (RFC 3339).
    pub url: String,
    /// The body: the report as `json` (`application/json`), `html` or `csv`.
    pub format: Format,
    /// The environment variable holding a bearer token, sent as `Authorization: Bearer ...`
    /// (read at start; never logged).
    pub bearer_token_env: Option<String>,
    /// Extra HTTP headers (`{ "X-Team" = "bi" }`).
    pub headers: BTreeMap<String, String>,
    /// Longest wait for one request (connect, send, response).
    #[serde(with = "humantime_serde")]
    #[schemars(with = "String")]
    pub timeout: Duration,
}

impl Default for HttpDestination {
    fn default() -> Self {
        HttpDestination {
            name: String::new(),
            url: String::new(),
            format: Format::Json,
            bearer_token_env: None,
            headers: BTreeMap::new(),
            timeout: Duration::from_secs(30),
        }
    }
}

/// E-mail over SMTP: one message to every address of `to`, the HTML report as its body and the
/// `attach` formats as attachments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct SmtpDestination {
    /// The destination's name, as schedules list it.
    pub name: String,
    /// The SMTP server's host name (also the name its TLS certificate is checked against).
    pub host: String,
    /// The server's port. Default: 587 with `starttls`, 465 with `tls`, 25 with `none`.
    pub port: Option<u16>,
    /// `starttls` (upgrade after connecting; the usual submission port 587), `tls` (TLS from
    /// the start; port 465) or `none` (plain text: only for a relay on the same host or network).
    pub tls: SmtpTls,
    /// A PEM file of extra CA certificates trusted for the server's certificate (an internal
    /// CA), besides Mozilla's roots.
    pub ca_file: Option<PathBuf>,
    /// The user name to authenticate with; none: no authentication.
    pub username: Option<String>,
    /// The environment variable holding the password (read at start; never logged). Needed
    /// with `username`.
    pub password_env: Option<String>,
    /// The sender (`LUX <lux@example.net>`).
    pub from: String,
    /// The recipients (`["noc@example.net", "Managers <managers@example.net>"]`).
    pub to: Vec<String>,
    /// The subject: `{title}` is the report's title, `{schedule}` the schedule's name, `{stem}`
    /// the report's stem, `{from}` and `{to}` the period's bounds (RFC 3339).
    pub subject: String,
    /// The formats attached as files `<stem>.<format>`: `csv`, `json`, `html`.
    pub attach: Vec<Format>,
    /// Longest wait for one step of the SMTP conversation.
    #[serde(with = "humantime_serde")]
    #[schemars(with = "String")]
    pub timeout: Duration,
}

impl Default for SmtpDestination {
    fn default() -> Self {
        SmtpDestination {
            name: String::new(),
            host: String::new(),
            port: None,
            tls: SmtpTls::Starttls,
            ca_file: None,
            username: None,
            password_env: None,
            from: String::new(),
            to: Vec::new(),
            subject: "{title}".to_owned(),
            attach: vec![Format::Csv],
            timeout: Duration::from_secs(60),
        }
    }
}

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain text.
    None,
    /// Plain text upgraded with STARTTLS (refused if the server does not offer it).
    Starttls,
    /// TLS from the first byte (SMTPS).
    Tls,
}

impl SmtpTls {
    pub fn default_port(self) -> u16 {
        match self {
            SmtpTls::None => 25,
            SmtpTls::Starttls => 587,
            SmtpTls::Tls => 465,
        }
    }
}

/// A format of a rendered report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Html,
    Csv,
    Json,
}

impl Format {
    pub const ALL: [Format; 3] = [Format::Html, Format::Csv, Format::Json];

    /// The file extension.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Html => "html",
            Format::Csv => "csv",
            Format::Json => "json",
        }
    }

    /// The media type.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Html => "text/html; charset=utf-8",
            Format::Csv => "text/csv; charset=utf-8",
            Format::Json => "application/json",
        }
    }

    /// The report in this format.
    pub fn of(self, report: &crate::RenderedReport) -> &str {
        match self {
            Format::Html => &report.html,
            Format::Csv => &report.csv,
            Format::Json => &report.json,
        }
    }
}

/// Retries of a failed build or delivery: the wait starts at `first`, doubles after each
/// failure up to `max`; after `attempts` attempts the delivery is marked failed in the outbox
/// (logged at error level, counted with `outcome="failed"`) and no longer tried.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RetryConfig {
    /// The wait after the first failure.
    #[serde(with = "humantime_serde")]
    #[schemars(with = "String")]
    pub first: Duration,
    /// The longest wait between two attempts.
    #[serde(with = "humantime_serde")]
    #[schemars(with = "String")]
    pub max: Duration,
    /// Attempts of one delivery (the first included) before it is marked failed.
    pub attempts: u32,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig { first: Duration::from_secs(30), max: Duration::from_secs(3600), attempts: 12 }
    }
}

impl RetryConfig {
    /// The wait after the `failures`-th failure (1 for the first).
    pub fn backoff(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(32);
        self.first.saturating_mul(1u32 << doublings.min(31)).min(self.max)
    }
}

/// A destination of any kind, by name.
#[derive(Debug, Clone, Copy)]
pub enum DestinationRef<'a> {
    Dir(&'a DirDestination),
    Http(&'a HttpDestination),
    Smtp(&'a SmtpDestination),
}

impl DestinationRef<'_> {
    /// `dir <path>`, `http <url>`, `smtp <host>`: for logs.
    pub fn describe(&self) -> String {
        match self {
            DestinationRef::Dir(d) => format!("dir {}", d.path.display()),
            DestinationRef::Http(d) => format!("http {}", d.url),
            DestinationRef::Smtp(d) => format!("smtp {}", d.host),
        }
    }
}

impl ReportConfig {
    /// Whether any schedule is configured (else no scheduler runs).
    pub fn is_empty(&self) -> bool {
        self.schedule.is_empty()
    }

    /// The destination named `name`.
    pub fn destination(&self, name: &str) -> Option<DestinationRef<'_>> {
        if let Some(d) = self.dir.iter().find(|d| d.name == name) {
            return Some(DestinationRef::Dir(d));
        }
        if let Some(d) = self.http.iter().find(|d| d.name == name) {
            return Some(DestinationRef::Http(d));
        }
        self.smtp.iter().find(|d| d.name == name).map(DestinationRef::Smtp)
    }

    /// Every problem, keyed under `prefix` (`report`).
    pub fn validate(&self, prefix: &str) -> Vec<ConfigProblem> {
        let mut problems = Vec::new();
        let mut names = BTreeSet::new();
        let mut check_destination_name = |problems: &mut Vec<ConfigProblem>, key: String, name: &str| {
            check_name(problems, &key, name);
            if !name.is_empty() && !names.insert(name.to_owned()) {
                problems
                    .push(ConfigProblem::new(key, format!("{name:?} names two destinations: give each its own name")));
            }
        };
        for (i, dir) in self.dir.iter().enumerate() {
            let key = format!("{}[{i}]", config_key(prefix, "dir"));
            check_destination_name(&mut problems, format!("{key}.name"), &dir.name);
            if dir.path.as_os_str().is_empty() {
                problems.push(ConfigProblem::new(format!("{key}.path"), "is empty: set the directory reports go to"));
            }
            if dir.formats.is_empty() {
                problems.push(ConfigProblem::new(format!("{key}.formats"), "is empty: list html, csv or json"));
            }
        }
        for (i, http) in self.http.iter().enumerate() {
            let key = format!("{}[{i}]", config_key(prefix, "http"));
            check_destination_name(&mut problems, format!("{key}.name"), &http.name);
            check_url(&mut problems, format!("{key}.url"), &http.url);
            for name in http.headers.keys() {
                let valid = !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b));
                if !valid {
                    problems.push(ConfigProblem::new(
                        format!("{key}.headers"),
                        format!("{name:?} is not an HTTP header name (letters, digits, `-`, `_`)"),
                    ));
                }
            }
            if http.bearer_token_env.as_deref().is_some_and(str::is_empty) {
                problems.push(ConfigProblem::new(format!("{key}.bearer_token_env"), "is empty: name a variable"));
            }
            if http.timeout.is_zero() {
                problems.push(ConfigProblem::new(format!("{key}.timeout"), "must be more than 0s"));
            }
        }
        for (i, smtp) in self.smtp.iter().enumerate() {
            let key = format!("{}[{i}]", config_key(prefix, "smtp"));
            check_destination_name(&mut problems, format!("{key}.name"), &smtp.name);
            if smtp.host.trim().is_empty() || smtp.host.contains(['/', ' ', ':']) {
                problems.push(ConfigProblem::new(
                    format!("{key}.host"),
                    format!("{:?} is not a host name (`smtp.example.net`, no scheme or port)", smtp.host),
                ));
            }
            if smtp.port == Some(0) {
                problems.push(ConfigProblem::new(format!("{key}.port"), "must be 1 to 65535"));
            }
            if smtp.from.parse::<lettre::message::Mailbox>().is_err() {
                problems.push(ConfigProblem::new(
                    format!("{key}.from"),
                    format!("{:?} is not an e-mail address (`LUX <lux@example.net>`)", smtp.from),
                ));
            }
            if smtp.to.is_empty() {
                problems.push(ConfigProblem::new(format!("{key}.to"), "is empty: list the recipients"));
            }
            for (j, to) in smtp.to.iter().enumerate() {
                if to.parse::<lettre::message::Mailbox>().is_err() {
                    problems.push(ConfigProblem::new(
                        format!("{key}.to[{j}]"),
                        format!("{to:?} is not an e-mail address (`noc@example.net`)"),
                    ));
                }
            }
            match (&smtp.username, &smtp.password_env) {
                (Some(_), None) => problems.push(ConfigProblem::new(
                    format!("{key}.password_env"),
                    "is missing: with a username, name the environment variable holding the password",
                )),
                (None, Some(_)) => problems.push(ConfigProblem::new(
                    format!("{key}.username"),
                    "is missing: password_env is set, but a password needs a user name",
                )),
                _ => {}
            }
            if smtp.subject.trim().is_empty() {
                problems.push(ConfigProblem::new(format!("{key}.subject"), "is empty"));
            }
            if smtp.timeout.is_zero() {
                problems.push(ConfigProblem::new(format!("{key}.timeout"), "must be more than 0s"));
            }
        }
        let mut schedule_names = BTreeSet::new();
        for (i, schedule) in self.schedule.iter().enumerate() {
            let key = format!("{}[{i}]", config_key(prefix, "schedule"));
            check_name(&mut problems, &format!("{key}.name"), &schedule.name);
            if !schedule.name.is_empty() && !schedule_names.insert(schedule.name.as_str()) {
                problems.push(ConfigProblem::new(
                    format!("{key}.name"),
                    format!("{:?} names two schedules: give each its own name", schedule.name),
                ));
            }
            if let Err(problem) = Timing::of(schedule, &key) {
                problems.push(problem);
            }
            if schedule.destinations.is_empty() {
                problems.push(ConfigProblem::new(
                    format!("{key}.destinations"),
                    "is empty: list where the reports go (names of [[report.dir]], [[report.http]] or [[report.smtp]])",
                ));
            }
            let mut seen = BTreeSet::new();
            for (j, name) in schedule.destinations.iter().enumerate() {
                if self.destination(name).is_none() {
                    problems.push(ConfigProblem::new(
                        format!("{key}.destinations[{j}]"),
                        format!("{name:?} is not the name of a [[report.dir]], [[report.http]] or [[report.smtp]]"),
                    ));
                } else if !seen.insert(name.as_str()) {
                    problems.push(ConfigProblem::new(
                        format!("{key}.destinations[{j}]"),
                        format!("{name:?} is listed twice"),
                    ));
                }
            }
        }
        let retry = config_key(prefix, "retry");
        if self.retry.first < Duration::from_millis(10) {
            problems.push(ConfigProblem::new(config_key(&retry, "first"), "must be at least 10ms"));
        }
        if self.retry.max < self.retry.first {
            problems.push(ConfigProblem::new(config_key(&retry, "max"), "must be at least retry.first"));
        }
        if self.retry.attempts == 0 {
            problems.push(ConfigProblem::new(config_key(&retry, "attempts"), "must be at least 1"));
        }
        problems
    }
}

fn check_name(problems: &mut Vec<ConfigProblem>, key: &str, name: &str) {
    let valid =
        !name.is_empty() && name.len() <= 64 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b));
    if !valid {
        problems.push(ConfigProblem::new(key, format!("{name:?} is not a name: 1 to 64 letters, digits, `-` or `_`")));
    }
}

fn check_url(problems: &mut Vec<ConfigProblem>, key: String, url: &str) {
    let rest = url.strip_prefix("http://").or_else(|| url.strip_prefix("https://"));
    if !rest.is_some_and(|r| !r.is_empty() && !r.starts_with('/') && !r.contains(char::is_whitespace)) {
        problems.push(ConfigProblem::new(key, format!("{url:?} is not an http:// or https:// URL with a host")));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> ReportConfig {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn a_valid_config_has_no_problem() {
        assert!(ReportConfig::default().validate("report").is_empty());
        let config = parse(
            r#"
            [[schedule]]
            name = "daily"
            every = "day"
            offset = "6h"
            destinations = ["archive", "bi", "managers"]

            [[schedule]]
            name = "weekdays"
            cron = "0 7 * * 1-5"
            period = "day"
            destinations = ["archive"]

            [[dir]]
            name = "archive"
            path = "/var/lib/lux/reports"
            formats = ["html", "csv", "json"]

            [[http]]
            name = "bi"
            url = "https://bi.example.net/ingest"
            bearer_token_env = "BI_TOKEN"

            [[smtp]]
            name = "managers"
            host = "smtp.example.net"
            username = "lux"
            password_env = "LUX_SMTP_PASSWORD"
            from = "LUX <lux@example.net>"
            to = ["noc@example.net", "Managers <managers@example.net>"]
            "#,
        );
        assert_eq!(config.validate("report"), []);
    }

    #[test]
    fn problems_name_their_keys() {
        let config = parse(
            r#"
            max_catch_up = 3
            [[schedule]]
            name = "daily"
            cron = "61 * * * *"
            period = "hour"
            destinations = ["nowhere", "archive", "archive"]

            [[schedule]]
            name = "daily"
            destinations = []

            [[dir]]
            name = "archive"
            path = ""
            formats = []

            [[http]]
            name = "archive"
            url = "bi.example.net"
            headers = { "X Bad" = "v" }

            [[smtp]]
            name = "mail"
            host = "smtp://smtp.example.net"
            username = "lux"
            from = "not an address"
            to = ["ok@example.net", "@@"]

            [retry]
            attempts = 0
            "#,
        );
        let keys: Vec<String> = config.validate("report").into_iter().map(|p| p.key).collect();
        assert_eq!(
            keys,
            [
                "report.dir[0].path",
                "report.dir[0].formats",
                "report.http[0].name",
                "report.http[0].url",
                "report.http[0].headers",
                "report.smtp[0].host",
                "report.smtp[0].from",
                "report.smtp[0].to[1]",
                "report.smtp[0].password_env",
                "report.schedule[0].cron",
                "report.schedule[0].destinations[0]",
                "report.schedule[0].destinations[2]",
                "report.schedule[1].name",
                "report.schedule[1].every",
                "report.schedule[1].destinations",
                "report.retry.attempts",
            ]
        );
    }

    #[test]
    fn backoff_doubles_up_to_the_maximum() {
        let retry = RetryConfig { first: Duration::from_secs(1), max: Duration::from_secs(5), attempts: 9 };
        let waits: Vec<u64> = (1..=5).map(|n| retry.backoff(n).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 5, 5]);
        assert_eq!(retry.backoff(200), Duration::from_secs(5));
    }
}
