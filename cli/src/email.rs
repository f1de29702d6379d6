//! The `[email]` and `[email_verification]` sections of the configuration, and the sender
//! `serve` uses.
//!
//! ```toml
//! [email]
//! sender = "smtp"            # "smtp", "outbox" (development), "log", or "none"
//! app_name = "Example"
//! outbox_file = "outbox.jsonl"
//!
//! [email.smtp]
//! host = "smtp.example.com"
//! port = 587                 # default: 587 for starttls, 465 for tls, 25 for none
//! tls = "starttls"           # "starttls", "tls" (implicit), or "none" (local servers only)
//! user = "mailer"
//! password_env = "SMTP_PASSWORD"   # the password is read from this environment variable
//! from = "Example <no-reply@example.com>"
//!
//! [email.templates.verify_email]   # also reset_password, change_email_confirmation,
//!                                   # delete_account, existing_account
//! subject = "Confirm your address"
//! text_file = "templates/verify.txt"
//! html_file = "templates/verify.html"
//!
//! [email_verification]
//! send_on_sign_up = true
//! send_on_sign_in = true
//! auto_sign_in_after_verification = true
//! expires_in = 3600
//! ```
//!
//! Without `sender`, an outbox file (`--outbox-file`, `PORTCULLIS_OUTBOX_FILE`, `OUTBOX_FILE`)
//! picks the outbox, an `[email.smtp]` table picks SMTP, and otherwise no mail is sent: the
//! flows that need it answer as Better Auth does without a sender.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use portcullis::email::{EmailSender, EmailTemplate, LogSender, OutboxSender};
use serde::Deserialize;

use crate::CliError;

/// `[email]`.
#[derive(Deserialize, Default, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub(crate) struct EmailFile {
    sender: Option<String>,
    app_name: Option<String>,
    outbox_file: Option<PathBuf>,
    smtp: Option<SmtpFile>,
    #[serde(default)]
    templates: TemplatesFile,
}

#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
struct SmtpFile {
    host: String,
    port: Option<u16>,
    tls: Option<String>,
    user: Option<String>,
    /// The environment variable holding the password (`PORTCULLIS_SMTP_PASSWORD` by default).
    password_env: Option<String>,
    from: String,
    /// Seconds (30).
    timeout: Option<u64>,
    /// PEM files of extra trusted roots (a private CA).
    #[serde(default)]
    root_certificates: Vec<PathBuf>,
}

#[derive(Deserialize, Default, Debug, Clone)]
#[serde(deny_unknown_fields)]
struct TemplatesFile {
    verify_email: Option<TemplateFile>,
    reset_password: Option<TemplateFile>,
    change_email_confirmation: Option<TemplateFile>,
    delete_account: Option<TemplateFile>,
    existing_account: Option<TemplateFile>,
}

#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
struct TemplateFile {
    subject: Option<String>,
    text: Option<String>,
    html: Option<String>,
    text_file: Option<PathBuf>,
    html_file: Option<PathBuf>,
}

/// `[email_verification]`.
#[derive(Deserialize, Default, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub(crate) struct VerificationFile {
    send_on_sign_up: Option<bool>,
    send_on_sign_in: Option<bool>,
    auto_sign_in_after_verification: Option<bool>,
    /// Seconds.
    expires_in: Option<u64>,
}

/// Flags and environment variables that override `[email]`.
#[derive(clap::Args, Debug, Default)]
pub(crate) struct EmailOverrides {
    /// How mail is sent: smtp, outbox, log or none.
    #[arg(long, env = "PORTCULLIS_EMAIL_SENDER")]
    email_sender: Option<String>,
    /// The development outbox file (one JSON line per message); also read from OUTBOX_FILE.
    #[arg(long, env = "PORTCULLIS_OUTBOX_FILE")]
    outbox_file: Option<PathBuf>,
}

/// The resolved mail settings.
#[derive(Debug, Default)]
pub(crate) struct EmailConfig {
    file: EmailFile,
    verification: VerificationFile,
    sender: Option<String>,
    outbox_file: Option<PathBuf>,
    /// Where relative template paths start (the configuration file's folder).
    base_dir: PathBuf,
}

impl EmailConfig {
    pub(crate) fn new(
        file: EmailFile,
        verification: VerificationFile,
        overrides: EmailOverrides,
        base_dir: &Path,
    ) -> Self {
        let outbox_file = overrides
            .outbox_file
            .or_else(|| {
                std::env::var_os("OUTBOX_FILE")
                    .filter(|v| !v.is_empty())
                    .map(PathBuf::from)
            })
            .or_else(|| file.outbox_file.clone());
        Self {
            sender: overrides.email_sender.or_else(|| file.sender.clone()),
            outbox_file,
            file,
            verification,
            base_dir: base_dir.to_owned(),
        }
    }

    /// Applies the verification options, the application name and the templates.
    pub(crate) fn apply(&self, o: &mut portcullis::Options) -> Result<(), CliError> {
        let v = &self.verification;
        if v.send_on_sign_up.is_some() {
            o.email_verification.send_on_sign_up = v.send_on_sign_up;
        }
        if let Some(b) = v.send_on_sign_in {
            o.email_verification.send_on_sign_in = b;
        }
        if let Some(b) = v.auto_sign_in_after_verification {
            o.email_verification.auto_sign_in_after_verification = b;
        }
        if let Some(s) = v.expires_in {
            o.email_verification.expires_in = Duration::from_secs(s);
        }
        if let Some(name) = &self.file.app_name {
            o.email.app_name = name.clone();
        }
        let (t, out) = (&self.file.templates, &mut o.email.templates);
        for (file, template, name) in [
            (&t.verify_email, &mut out.verify_email, "verify_email"),
            (&t.reset_password, &mut out.reset_password, "reset_password"),
            (
                &t.change_email_confirmation,
                &mut out.change_email_confirmation,
                "change_email_confirmation",
            ),
            (&t.delete_account, &mut out.delete_account, "delete_account"),
            (
                &t.existing_account,
                &mut out.existing_account,
                "existing_account",
            ),
        ] {
            if let Some(f) = file {
                self.template(f, template, name)?;
            }
        }
        Ok(())
    }

    fn template(
        &self,
        f: &TemplateFile,
        t: &mut EmailTemplate,
        name: &str,
    ) -> Result<(), CliError> {
        let read = |path: &Path| {
            let path = self.base_dir.join(path);
            std::fs::read_to_string(&path).map_err(|source| CliError::Io {
                context: format!("[email.templates.{name}] cannot read {}", path.display()),
                source,
            })
        };
        if let Some(s) = &f.subject {
            t.subject = s.clone();
        }
        match (&f.text, &f.text_file) {
            (Some(_), Some(_)) => {
                return Err(CliError::Config(format!(
                    "[email.templates.{name}] has both text and text_file"
                )))
            }
            (Some(text), None) => t.text = text.clone(),
            (None, Some(path)) => t.text = read(path)?,
            (None, None) => {}
        }
        match (&f.html, &f.html_file) {
            (Some(_), Some(_)) => {
                return Err(CliError::Config(format!(
                    "[email.templates.{name}] has both html and html_file"
                )))
            }
            (Some(html), None) => t.html = html.clone(),
            (None, Some(path)) => t.html = read(path)?,
            (None, None) => {}
        }
        Ok(())
    }

    /// The sender `serve` uses, or `None` when mail is off.
    pub(crate) fn sender(&self) -> Result<Option<Arc<dyn EmailSender>>, CliError> {
        let kind = match self.sender.as_deref() {
            Some(k) => k.to_owned(),
            None if self.outbox_file.is_some() => "outbox".into(),
            None if self.file.smtp.is_some() => "smtp".into(),
            None => "none".into(),
        };
        let sender: Arc<dyn EmailSender> = match kind.as_str() {
            "none" => {
                tracing::info!(
                    "no email sender configured: email verification and password reset are off"
                );
                return Ok(None);
            }
            "log" => {
                tracing::warn!("email sender `log`: messages are logged, not sent");
                Arc::new(LogSender)
            }
            "outbox" => {
                let path = self.outbox_file.clone().ok_or_else(|| {
                    CliError::Config(
                        "email sender `outbox` needs a file: [email] outbox_file, --outbox-file or OUTBOX_FILE"
                            .into(),
                    )
                })?;
                tracing::warn!(file = %path.display(), "email sender `outbox`: messages (with live tokens) are appended to this file; for development only");
                Arc::new(OutboxSender::new(path))
            }
            "smtp" => Arc::new(self.smtp()?),
            other => {
                return Err(CliError::Config(format!(
                    "[email] sender = \"{other}\": use smtp, outbox, log or none"
                )))
            }
        };
        Ok(Some(sender))
    }

    fn smtp(&self) -> Result<portcullis::email::SmtpSender, CliError> {
        use portcullis::email::{SmtpConfig, SmtpSecurity, SmtpSender};
        let s = self.file.smtp.as_ref().ok_or_else(|| {
            CliError::Config("email sender `smtp` needs an [email.smtp] table".into())
        })?;
        let security = match s.tls.as_deref() {
            None | Some("starttls") => SmtpSecurity::StartTls,
            Some("tls") => SmtpSecurity::Tls,
            Some("none") => {
                tracing::warn!(
                    "[email.smtp] tls = \"none\": mail and credentials travel unencrypted"
                );
                SmtpSecurity::None
            }
            Some(other) => {
                return Err(CliError::Config(format!(
                    "[email.smtp] tls = \"{other}\": use starttls, tls or none"
                )))
            }
        };
        let mut config = SmtpConfig::new(&s.host, &s.from);
        config.port = s.port;
        config.security = security;
        config.username = s.user.clone();
        if s.user.is_some() {
            let var = s
                .password_env
                .clone()
                .unwrap_or_else(|| "PORTCULLIS_SMTP_PASSWORD".into());
            let password = std::env::var(&var).map_err(|_| {
                CliError::Config(format!(
                    "[email.smtp] user is set but the password variable {var} is not"
                ))
            })?;
            config.password = Some(password);
        }
        if let Some(t) = s.timeout {
            config.timeout = Duration::from_secs(t);
        }
        for path in &s.root_certificates {
            let path = self.base_dir.join(path);
            config
                .root_certificates_pem
                .push(std::fs::read(&path).map_err(|source| CliError::Io {
                    context: format!("[email.smtp] cannot read {}", path.display()),
                    source,
                })?);
        }
        SmtpSender::new(&config).map_err(|e| CliError::Config(format!("[email.smtp] {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(toml_text: &str, dir: &Path, overrides: EmailOverrides) -> EmailConfig {
        #[derive(Deserialize)]
        struct File {
            #[serde(default)]
            email: EmailFile,
            #[serde(default)]
            email_verification: VerificationFile,
        }
        let f: File = toml::from_str(toml_text).unwrap();
        EmailConfig::new(f.email, f.email_verification, overrides, dir)
    }

    #[test]
    fn templates_and_verification_options_are_applied() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("verify.html"), "<p>{{url}}</p>").unwrap();
        let c = config(
            r#"
            [email]
            app_name = "Example"
            [email.templates.verify_email]
            subject = "Confirm {{app_name}}"
            text = "Open {{url}}"
            html_file = "verify.html"
            [email.templates.delete_account]
            subject = "Delete?"
            [email.templates.change_email_confirmation]
            text = "Move to {{new_email}}: {{url}}"
            [email_verification]
            send_on_sign_up = false
            send_on_sign_in = true
            auto_sign_in_after_verification = true
            expires_in = 600
            "#,
            dir.path(),
            EmailOverrides::default(),
        );
        let mut o = portcullis::Options::default();
        c.apply(&mut o).unwrap();
        assert_eq!(o.email.app_name, "Example");
        let t = &o.email.templates.verify_email;
        assert_eq!(
            (t.subject.as_str(), t.text.as_str(), t.html.as_str()),
            ("Confirm {{app_name}}", "Open {{url}}", "<p>{{url}}</p>")
        );
        let defaults = portcullis::email::EmailTemplates::default();
        assert_eq!(o.email.templates.reset_password, defaults.reset_password);
        assert_eq!(o.email.templates.delete_account.subject, "Delete?");
        assert_eq!(
            o.email.templates.delete_account.text,
            defaults.delete_account.text
        );
        assert_eq!(
            o.email.templates.change_email_confirmation.text,
            "Move to {{new_email}}: {{url}}"
        );
        let v = &o.email_verification;
        assert_eq!(v.send_on_sign_up, Some(false));
        assert!(v.send_on_sign_in && v.auto_sign_in_after_verification);
        assert_eq!(v.expires_in, Duration::from_secs(600));
    }

    #[test]
    fn a_template_with_both_text_and_text_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let c = config(
            "[email.templates.reset_password]\ntext = \"a\"\ntext_file = \"b.txt\"\n",
            dir.path(),
            EmailOverrides::default(),
        );
        let err = c.apply(&mut portcullis::Options::default()).unwrap_err();
        assert!(err.to_string().contains("both text and text_file"), "{err}");
        let c = config(
            "[email.templates.reset_password]\nhtml_file = \"missing.html\"\n",
            dir.path(),
            EmailOverrides::default(),
        );
        let err = c.apply(&mut portcullis::Options::default()).unwrap_err();
        assert!(err.to_string().contains("missing.html"), "{err}");
    }

    #[test]
    fn the_sender_is_picked_from_flags_then_the_file() {
        let dir = tempfile::tempdir().unwrap();
        if std::env::var_os("OUTBOX_FILE").is_none() {
            let none = config("", dir.path(), EmailOverrides::default());
            assert!(none.sender().unwrap().is_none());
        }
        let flagged = config(
            "[email]\nsender = \"smtp\"\n",
            dir.path(),
            EmailOverrides {
                email_sender: Some("log".into()),
                outbox_file: None,
            },
        );
        assert!(flagged.sender().unwrap().is_some());
        let outbox = config(
            "",
            dir.path(),
            EmailOverrides {
                email_sender: None,
                outbox_file: Some(dir.path().join("o.jsonl")),
            },
        );
        assert!(outbox.sender().unwrap().is_some());
        let smtp = config(
            "[email.smtp]\nhost = \"smtp.example.com\"\nfrom = \"a@example.com\"\n",
            dir.path(),
            EmailOverrides::default(),
        );
        assert!(smtp.sender().unwrap().is_some());
    }
}
