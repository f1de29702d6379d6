//! SMTP delivery with lettre (tokio, rustls).

use std::fmt;
use std::time::Duration;

use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport as _, Tokio1Executor};

use super::{EmailError, EmailSender, Message};
use crate::BoxFuture;

/// How the connection to the mail server is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SmtpSecurity {
    /// Plain connection upgraded with STARTTLS, which is required (port 587).
    #[default]
    StartTls,
    /// TLS from the first byte ("implicit TLS", SMTPS, port 465).
    Tls,
    /// No encryption at all. Only for a mail server on the same machine (a local relay, a
    /// test server): credentials and messages travel in clear.
    None,
}

impl SmtpSecurity {
    /// The usual port for this kind of connection.
    pub fn default_port(self) -> u16 {
        match self {
            SmtpSecurity::StartTls => 587,
            SmtpSecurity::Tls => 465,
            SmtpSecurity::None => 25,
        }
    }
}

/// Where and how to send mail.
#[derive(Clone)]
#[non_exhaustive]
pub struct SmtpConfig {
    /// The mail server's host name (also the name its certificate must carry).
    pub host: String,
    /// Its port; `None` for the usual port of `security`.
    pub port: Option<u16>,
    /// STARTTLS, implicit TLS, or (local servers only) none.
    pub security: SmtpSecurity,
    /// User name for SMTP AUTH, if the server wants one.
    pub username: Option<String>,
    /// Password for SMTP AUTH. Never printed.
    pub password: Option<String>,
    /// The sender, `no-reply@example.com` or `Example <no-reply@example.com>`.
    pub from: String,
    /// How long one connection or command may take (30 s by default).
    pub timeout: Duration,
    /// Extra trusted root certificates (PEM), e.g. a private CA of an internal relay. The
    /// bundled web PKI roots are always trusted.
    pub root_certificates_pem: Vec<Vec<u8>>,
}

impl SmtpConfig {
    /// STARTTLS to `host` on its usual port, sending as `from`, no authentication.
    pub fn new(host: impl Into<String>, from: impl Into<String>) -> Self {
        Self {
            host: host.into(),
            port: None,
            security: SmtpSecurity::default(),
            username: None,
            password: None,
            from: from.into(),
            timeout: Duration::from_secs(30),
            root_certificates_pem: Vec::new(),
        }
    }
}

impl fmt::Debug for SmtpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("from", &self.from)
            .finish_non_exhaustive()
    }
}

/// Sends messages through an SMTP server, one connection per message, each to its single
/// recipient (the envelope names exactly that address).
#[derive(Clone)]
pub struct SmtpSender {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl fmt::Debug for SmtpSender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpSender")
            .field("from", &self.from.email.to_string())
            .finish_non_exhaustive()
    }
}

fn transport_err(e: impl fmt::Display) -> EmailError {
    EmailError::Transport(e.to_string())
}

impl SmtpSender {
    /// A sender for `config`. Checks the configuration; connects only when sending.
    pub fn new(config: &SmtpConfig) -> Result<Self, EmailError> {
        if config.host.is_empty() || config.host.chars().any(|c| c.is_whitespace()) {
            return Err(EmailError::Config(
                "SMTP host is empty or not a host name".into(),
            ));
        }
        if config.from.chars().any(char::is_control) {
            return Err(EmailError::Config(
                "the from address has control characters".into(),
            ));
        }
        let from: Mailbox = config
            .from
            .parse()
            .map_err(|_| EmailError::Config(format!("`{}` is not a from address", config.from)))?;
        let tls = || -> Result<TlsParameters, EmailError> {
            let mut b = TlsParameters::builder(config.host.clone());
            for pem in &config.root_certificates_pem {
                let cert = Certificate::from_pem(pem)
                    .map_err(|e| EmailError::Config(format!("root certificate: {e}")))?;
                b = b.add_root_certificate(cert);
            }
            b.build_rustls()
                .map_err(|e| EmailError::Config(format!("TLS: {e}")))
        };
        let tls = match config.security {
            SmtpSecurity::StartTls => Tls::Required(tls()?),
            SmtpSecurity::Tls => Tls::Wrapper(tls()?),
            SmtpSecurity::None => Tls::None,
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&config.host)
            .port(config.port.unwrap_or(config.security.default_port()))
            .tls(tls)
            .timeout(Some(config.timeout));
        match (&config.username, &config.password) {
            (Some(user), Some(password)) => {
                builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
            }
            (None, None) => {}
            _ => {
                return Err(EmailError::Config(
                    "SMTP authentication needs both a user name and a password".into(),
                ))
            }
        }
        Ok(Self {
            transport: builder.build(),
            from,
        })
    }

    fn build(&self, message: &Message) -> Result<lettre::Message, EmailError> {
        // `Address` already refused lists, display names and control characters; parse it
        // into lettre's own type all the same, and name it alone in the envelope.
        let to: lettre::Address = message
            .to
            .as_str()
            .parse()
            .map_err(|_| EmailError::InvalidAddress)?;
        let envelope =
            lettre::address::Envelope::new(Some(self.from.email.clone()), vec![to.clone()])
                .map_err(transport_err)?;
        lettre::Message::builder()
            .from(self.from.clone())
            .to(Mailbox::new(None, to))
            .subject(message.subject.as_str())
            .envelope(envelope)
            .multipart(MultiPart::alternative_plain_html(
                message.text.clone(),
                message.html.clone(),
            ))
            .map_err(transport_err)
    }
}

impl EmailSender for SmtpSender {
    fn send<'a>(&'a self, message: &'a Message) -> BoxFuture<'a, Result<(), EmailError>> {
        Box::pin(async move {
            let email = self.build(message)?;
            self.transport.send(email).await.map_err(transport_err)?;
            tracing::info!(kind = %message.kind, "email handed to the SMTP server");
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::email::{Address, RESET_PASSWORD};

    #[test]
    fn configuration_is_checked_and_the_password_never_shown() {
        let mut c = SmtpConfig::new("smtp.example.com", "Example <no-reply@example.com>");
        c.username = Some("user".into());
        c.password = Some("hunter2-secret".into());
        assert!(!format!("{c:?}").contains("hunter2"));
        assert!(SmtpSender::new(&c).is_ok());
        c.security = SmtpSecurity::Tls;
        assert!(SmtpSender::new(&c).is_ok());
        c.password = None;
        assert!(matches!(SmtpSender::new(&c), Err(EmailError::Config(_))));
        let bad_from = SmtpConfig::new("smtp.example.com", "no-reply@example.com\r\nBcc: x@y.z");
        assert!(SmtpSender::new(&bad_from).is_err());
        assert!(SmtpSender::new(&SmtpConfig::new("", "a@example.com")).is_err());
    }

    #[test]
    fn messages_have_one_recipient_and_both_parts() {
        let mut c = SmtpConfig::new("localhost", "App <app@example.com>");
        c.security = SmtpSecurity::None;
        let s = SmtpSender::new(&c).unwrap();
        let m = Message::new(
            RESET_PASSWORD,
            Address::parse("to@example.com").unwrap(),
            "Subject",
            "plain body",
            "<p>html body</p>",
        );
        let built = s.build(&m).unwrap();
        assert_eq!(built.envelope().to().len(), 1);
        assert_eq!(built.envelope().to()[0].to_string(), "to@example.com");
        let raw = String::from_utf8(built.formatted()).unwrap();
        assert!(raw.contains("To: to@example.com\r\n"), "{raw}");
        assert!(raw.contains("multipart/alternative"));
        assert!(raw.contains("text/plain") && raw.contains("text/html"));
    }
}
