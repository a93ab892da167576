//! An e-mail destination over SMTP (`lettre`, blocking, rustls): one message to every
//! recipient, `multipart/mixed` with the HTML report as the body and the `attach` formats as
//! files `<stem>.<format>`. The connection is plain, upgraded with STARTTLS, or TLS from the
//! start; the password comes from an environment variable and is never logged.

use super::{Delivery, Destination};
use crate::config::{self, Format, SmtpTls};
use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::message::{Attachment, Body, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{Message, SmtpTransport, Transport as _};
use lux_model::format_rfc3339_millis;

pub struct SmtpDestination {
    host: String,
    port: u16,
    from: Mailbox,
    to: Vec<Mailbox>,
    subject: String,
    attach: Vec<Format>,
    transport: SmtpTransport,
}

impl SmtpDestination {
    /// Reads the password from its environment variable and the CA file (errors when either
    /// is missing or unreadable).
    pub fn new(config: &config::SmtpDestination) -> anyhow::Result<SmtpDestination> {
        let name = &config.name;
        let port = config.port.unwrap_or(config.tls.default_port());
        let from = config.from.parse::<Mailbox>().map_err(|e| anyhow::anyhow!("report.smtp {name:?} from: {e}"))?;
        let to = config
            .to
            .iter()
            .map(|to| to.parse::<Mailbox>().map_err(|e| anyhow::anyhow!("report.smtp {name:?} to {to:?}: {e}")))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let tls = match config.tls {
            SmtpTls::None => Tls::None,
            mode => {
                let mut params = TlsParameters::builder(config.host.clone());
                if let Some(path) = &config.ca_file {
                    let pem = std::fs::read(path).map_err(|e| {
                        anyhow::anyhow!("report.smtp {name:?} ca_file: cannot read {}: {e}", path.display())
                    })?;
                    let certs = Certificate::from_pem(&pem).map_err(|e| {
                        anyhow::anyhow!("report.smtp {name:?} ca_file: {} is not PEM certificates: {e}", path.display())
                    })?;
                    params = params.add_root_certificate(certs);
                }
                let params = params.build_rustls().map_err(|e| anyhow::anyhow!("report.smtp {name:?}: TLS: {e}"))?;
                if mode == SmtpTls::Tls {
                    Tls::Wrapper(params)
                } else {
                    Tls::Required(params)
                }
            }
        };
        let mut builder =
            SmtpTransport::builder_dangerous(config.host.as_str()).port(port).tls(tls).timeout(Some(config.timeout));
        if let (Some(user), Some(var)) = (&config.username, &config.password_env) {
            let password = super::secret_from_env(var, &format!("report.smtp {name:?} password_env"))?;
            builder = builder.credentials(Credentials::new(user.clone(), password));
        }
        Ok(SmtpDestination {
            host: config.host.clone(),
            port,
            from,
            to,
            subject: config.subject.clone(),
            attach: config.attach.clone(),
            transport: builder.build(),
        })
    }

    /// The message of `delivery`.
    pub fn message(&self, delivery: &Delivery<'_>) -> Result<Message, String> {
        let report = delivery.report;
        let mut builder = Message::builder().from(self.from.clone()).subject(subject(&self.subject, delivery));
        for to in &self.to {
            builder = builder.to(to.clone());
        }
        let mut body = MultiPart::mixed()
            .singlepart(SinglePart::builder().header(ContentType::TEXT_HTML).body(report.html.clone()));
        for format in &self.attach {
            let content_type = ContentType::parse(format.content_type()).map_err(|e| e.to_string())?;
            let file = format!("{}.{}", report.stem, format.extension());
            // Base64, so that the file arrives byte for byte (text parts get CRLF line endings).
            let bytes = Body::new_with_encoding(format.of(report).as_bytes().to_vec(), ContentTransferEncoding::Base64)
                .map_err(|_| "cannot encode the attachment".to_owned())?;
            body = body.singlepart(Attachment::new(file).body(bytes, content_type));
        }
        builder.multipart(body).map_err(|e| format!("cannot build the e-mail: {e}"))
    }
}

/// The subject template with its fields replaced.
fn subject(template: &str, delivery: &Delivery<'_>) -> String {
    let report = delivery.report;
    template
        .replace("{title}", &report.title)
        .replace("{schedule}", delivery.schedule)
        .replace("{stem}", &report.stem)
        .replace("{from}", &format_rfc3339_millis(report.period.from))
        .replace("{to}", &format_rfc3339_millis(report.period.to))
}

impl Destination for SmtpDestination {
    fn describe(&self) -> String {
        format!("smtp {}:{}", self.host, self.port)
    }

    fn deliver(&self, delivery: &Delivery<'_>) -> Result<(), String> {
        let message = self.message(delivery)?;
        match self.transport.send(&message) {
            Ok(_) => Ok(()),
            Err(error) => {
                // lettre's message is short ("permanent error (550)"); its source says why.
                let mut text = error.to_string();
                let mut source = std::error::Error::source(&error);
                while let Some(cause) = source {
                    text.push_str(&format!(": {cause}"));
                    source = cause.source();
                }
                Err(text)
            }
        }
    }
}
