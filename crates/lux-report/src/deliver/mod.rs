//! The destinations a report is delivered to: a directory ([`dir`]), an HTTP endpoint
//! ([`http`]) and e-mail over SMTP ([`smtp`]). Each is built once from its config (reading its
//! secrets from the environment, so that a missing one stops the start, not a delivery) and
//! delivers one report per call, blocking, within its timeout; an error says what failed so
//! that the outbox can log it and retry.

pub mod dir;
pub mod http;
pub mod smtp;

use crate::config::{DestinationRef, ReportConfig};
use crate::RenderedReport;
use std::collections::BTreeMap;

/// What a delivery is about: the report and the schedule that made it.
pub struct Delivery<'a> {
    pub schedule: &'a str,
    pub report: &'a RenderedReport,
}

/// A place reports are delivered to.
pub trait Destination: Send {
    /// `dir /var/lib/lux/reports`, `http https://...`, `smtp smtp.example.net`: for logs.
    fn describe(&self) -> String;
    /// Delivers one report; the error is the reason, for the log.
    fn deliver(&self, delivery: &Delivery<'_>) -> Result<(), String>;
}

/// Every destination of `config`, by name.
pub fn destinations(config: &ReportConfig) -> anyhow::Result<BTreeMap<String, Box<dyn Destination>>> {
    let mut out: BTreeMap<String, Box<dyn Destination>> = BTreeMap::new();
    let names = config.dir.iter().map(|d| &d.name).chain(config.http.iter().map(|d| &d.name));
    for name in names.chain(config.smtp.iter().map(|d| &d.name)) {
        let destination: Box<dyn Destination> = match config.destination(name) {
            Some(DestinationRef::Dir(d)) => Box::new(dir::DirDestination::new(d)),
            Some(DestinationRef::Http(d)) => Box::new(http::HttpDestination::new(d)?),
            Some(DestinationRef::Smtp(d)) => Box::new(smtp::SmtpDestination::new(d)?),
            None => continue,
        };
        out.insert(name.clone(), destination);
    }
    Ok(out)
}

/// The value of the environment variable `name`, or an error naming the key that names it.
pub(crate) fn secret_from_env(name: &str, key: &str) -> anyhow::Result<String> {
    match std::env::var(name) {
        Ok(value) if !value.is_empty() => Ok(value),
        Ok(_) => anyhow::bail!("the environment variable {name} (named by {key}) is empty: set it to the secret"),
        Err(_) => anyhow::bail!("the environment variable {name} (named by {key}) is not set: set it to the secret"),
    }
}
