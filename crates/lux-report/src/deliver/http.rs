//! An HTTP destination: the report is POSTed in one format (JSON by default) with the
//! configured headers; any 2xx status is delivered, anything else (another status, no
//! connection, no answer within the timeout) fails with the status and the start of the body.

use super::{Delivery, Destination};
use crate::config::{self, Format};
use lux_model::format_rfc3339_millis;

pub struct HttpDestination {
    url: String,
    format: Format,
    headers: Vec<(String, String)>,
    agent: ureq::Agent,
}

impl HttpDestination {
    /// Reads the bearer token from its environment variable (an error when it is not set).
    pub fn new(config: &config::HttpDestination) -> anyhow::Result<HttpDestination> {
        let mut headers: Vec<(String, String)> = config.headers.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        if let Some(var) = &config.bearer_token_env {
            let key = format!("report.http {:?} bearer_token_env", config.name);
            let token = super::secret_from_env(var, &key)?;
            headers.push(("Authorization".to_owned(), format!("Bearer {token}")));
        }
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(config.timeout))
            .http_status_as_error(false)
            .user_agent(concat!("lux/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Ok(HttpDestination { url: config.url.clone(), format: config.format, headers, agent })
    }
}

impl Destination for HttpDestination {
    fn describe(&self) -> String {
        format!("http {}", self.url)
    }

    fn deliver(&self, delivery: &Delivery<'_>) -> Result<(), String> {
        let report = delivery.report;
        let mut request = self
            .agent
            .post(&self.url)
            .header("Content-Type", self.format.content_type())
            .header("X-Lux-Report", report.stem.as_str())
            .header("X-Lux-Schedule", delivery.schedule)
            .header("X-Lux-Period-From", format_rfc3339_millis(report.period.from).as_str())
            .header("X-Lux-Period-To", format_rfc3339_millis(report.period.to).as_str());
        for (name, value) in &self.headers {
            request = request.header(name.as_str(), value.as_str());
        }
        match request.send(self.format.of(report).as_bytes()) {
            Ok(mut response) => {
                let status = response.status().as_u16();
                if (200..300).contains(&status) {
                    return Ok(());
                }
                let text = response.body_mut().with_config().limit(2048).read_to_string().unwrap_or_default();
                let text: String = text.chars().take(300).collect();
                Err(format!("HTTP status {status}: {}", text.trim()))
            }
            Err(error) => Err(error.to_string()),
        }
    }
}
