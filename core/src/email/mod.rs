//! Outgoing mail: the [`EmailSender`] trait, the [`Message`] it sends, templates, and three
//! senders: SMTP ([`SmtpSender`], cargo feature `smtp`), a development outbox that appends
//! one JSON line per message to a file ([`OutboxSender`]), and a logging sender
//! ([`LogSender`]).
//!
//! Every message goes to exactly one recipient, an [`Address`] that was checked to be a
//! single plain address: no display name, no list, no CR/LF or other control characters.
//! The text and HTML parts come from [`EmailTemplate`]s the application may replace; values
//! put into the HTML part (names, links) are HTML-escaped.
//!
//! Tokens, links and one-time codes are secrets: [`Message`]'s `Debug` output hides them and
//! no sender logs them.

mod outbox;
#[cfg(feature = "smtp")]
mod smtp;
mod template;

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

pub use outbox::OutboxSender;
#[cfg(feature = "smtp")]
pub use smtp::{SmtpConfig, SmtpSecurity, SmtpSender};
pub use template::{html_escape, EmailTemplate, EmailTemplates};

use crate::callbacks::{Delivery, LinkMail};
use crate::context::Ctx;
use crate::error::{codes, ApiError};
use crate::BoxFuture;

/// Why a message could not be built or sent.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EmailError {
    /// The recipient (or sender) is not a single plain address.
    #[error("not a single plain email address")]
    InvalidAddress,
    /// The sender is misconfigured.
    #[error("email configuration: {0}")]
    Config(String),
    /// The mail server refused the message or could not be reached.
    #[error("mail transport: {0}")]
    Transport(String),
    /// Writing the outbox failed.
    #[error("outbox: {0}")]
    Io(#[from] std::io::Error),
}

/// A single, plain email address (`user@example.com`): what Better Auth's email validator
/// accepts, at most 254 characters. Display names (`Name <a@b.c>`), lists (`a@b.c,d@e.f`),
/// whitespace and control characters (CR, LF) are refused, so an address can never add a
/// header or a second recipient.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Address(String);

impl Address {
    /// Longest address accepted (RFC 5321's path limit less the angle brackets).
    pub const MAX_LEN: usize = 254;

    /// Checks `value` and wraps it.
    pub fn parse(value: &str) -> Result<Self, EmailError> {
        if value.len() > Self::MAX_LEN || !crate::validate::is_valid_email(value) {
            return Err(EmailError::InvalidAddress);
        }
        Ok(Self(value.to_owned()))
    }

    /// The address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Address({})", self.0)
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a message is for, as the outbox records it (`"verify-email"`, `"reset-password"`).
/// Plugins name their own kinds (`"magic-link"`, `"two-factor-otp"`).
pub type MessageKind = Cow<'static, str>;

/// The kind of an email verification message.
pub const VERIFY_EMAIL: &str = "verify-email";
/// The kind of a password reset message.
pub const RESET_PASSWORD: &str = "reset-password";
/// The kind of the message to the current address that confirms an email change.
pub const CHANGE_EMAIL_CONFIRMATION: &str = "change-email-confirmation";
/// The kind of the message that confirms the deletion of an account.
pub const DELETE_ACCOUNT: &str = "delete-account";
/// The kind of the notice to an account's owner that someone tried to sign up with its
/// address.
pub const EXISTING_ACCOUNT: &str = "existing-account";

/// One message to one recipient: subject, plain-text and HTML parts, and, for the outbox and
/// the application's own senders, its kind and the link, token or code it carries.
#[derive(Clone)]
pub struct Message {
    /// The single recipient.
    pub to: Address,
    /// Subject line (control characters are removed when it is built).
    pub subject: String,
    /// The plain-text part.
    pub text: String,
    /// The HTML part.
    pub html: String,
    /// What it is for.
    pub kind: MessageKind,
    /// The link it carries, if any. Secret.
    pub url: Option<String>,
    /// The token in the link, if any. Secret.
    pub token: Option<String>,
    /// A one-time code, if any. Secret.
    pub otp: Option<String>,
}

impl Message {
    /// A message of `kind` to `to` with the given parts; no link, token or code yet.
    pub fn new(
        kind: impl Into<MessageKind>,
        to: Address,
        subject: &str,
        text: impl Into<String>,
        html: impl Into<String>,
    ) -> Self {
        Self {
            to,
            subject: subject.chars().filter(|c| !c.is_control()).collect(),
            text: text.into(),
            html: html.into(),
            kind: kind.into(),
            url: None,
            token: None,
            otp: None,
        }
    }

    /// Records the link and the token in it.
    pub fn with_link(mut self, url: impl Into<String>, token: impl Into<String>) -> Self {
        self.url = Some(url.into());
        self.token = Some(token.into());
        self
    }

    /// Records a one-time code.
    pub fn with_otp(mut self, otp: impl Into<String>) -> Self {
        self.otp = Some(otp.into());
        self
    }
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Message")
            .field("kind", &self.kind)
            .field("to", &self.to)
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

/// Sends messages. Object-safe: the engine holds one as `Arc<dyn EmailSender>`.
///
/// Implementations send to `message.to` only, and never log the link, token or code.
pub trait EmailSender: Send + Sync + 'static {
    /// Sends one message.
    fn send<'a>(&'a self, message: &'a Message) -> BoxFuture<'a, Result<(), EmailError>>;
}

impl<T: EmailSender + ?Sized> EmailSender for Arc<T> {
    fn send<'a>(&'a self, message: &'a Message) -> BoxFuture<'a, Result<(), EmailError>> {
        (**self).send(message)
    }
}

/// A sender that only logs that a message of some kind went to a recipient (never its link,
/// token or code). For development, and for servers that must not send mail.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogSender;

impl EmailSender for LogSender {
    fn send<'a>(&'a self, message: &'a Message) -> BoxFuture<'a, Result<(), EmailError>> {
        Box::pin(async move {
            tracing::info!(
                kind = %message.kind,
                to = %message.to,
                subject = %message.subject,
                "email not sent (log sender)"
            );
            Ok(())
        })
    }
}

/// Mail settings of the engine: the sender (none: flows that need mail are turned off),
/// the templates, and the application name the templates show.
#[derive(Clone)]
#[non_exhaustive]
pub struct EmailOptions {
    /// The sender; set it with `AuthBuilder::email_sender`.
    pub sender: Option<Arc<dyn EmailSender>>,
    /// Subjects and bodies of the messages.
    pub templates: EmailTemplates,
    /// The name templates call the application by (`{{app_name}}`).
    pub app_name: String,
}

impl Default for EmailOptions {
    fn default() -> Self {
        Self {
            sender: None,
            templates: EmailTemplates::default(),
            app_name: "Portcullis".into(),
        }
    }
}

impl fmt::Debug for EmailOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmailOptions")
            .field("sender", &self.sender.as_ref().map(|_| "EmailSender"))
            .field("app_name", &self.app_name)
            .finish_non_exhaustive()
    }
}

impl crate::AuthBuilder {
    /// Sends mail (verification links, reset links) through `sender`. Without one, the flows
    /// that need mail answer as Better Auth does when it has no sender configured.
    pub fn email_sender(self, sender: impl EmailSender) -> Self {
        self.email_sender_arc(Arc::new(sender))
    }

    /// Like [`AuthBuilder::email_sender`](crate::AuthBuilder::email_sender), with a sender
    /// already behind an `Arc`.
    pub fn email_sender_arc(self, sender: Arc<dyn EmailSender>) -> Self {
        self.options(|o| o.email.sender = Some(sender))
    }
}

impl crate::Auth {
    /// The configured sender, if any.
    pub fn email_sender(&self) -> Option<&dyn EmailSender> {
        self.options().email.sender.as_deref()
    }

    /// Sends `message` with the configured sender. Failures are logged (without the link)
    /// and returned; without a sender this is a configuration error.
    pub async fn send_email(&self, message: &Message) -> Result<(), EmailError> {
        let Some(sender) = self.email_sender() else {
            return Err(EmailError::Config("no email sender configured".into()));
        };
        match sender.send(message).await {
            Ok(()) => {
                tracing::debug!(kind = %message.kind, "email sent");
                Ok(())
            }
            Err(e) => {
                tracing::error!(kind = %message.kind, error = %e, "email could not be sent");
                Err(e)
            }
        }
    }

    /// Mails link `mail` of `kind` to `to`, rendered from the kind's template: `{{name}}` is
    /// the user's name, `{{email}}` the recipient, `{{new_email}}` the address asked for (if
    /// any). 400 `INVALID_EMAIL` when `to` is not a single plain address (nothing is sent);
    /// 500 when sending fails or there is no sender (logged).
    pub(crate) async fn mail_link(
        &self,
        kind: LinkKind,
        to: &str,
        mail: &LinkMail,
        expires_in: std::time::Duration,
    ) -> Result<(), ApiError> {
        let address = Address::parse(to).map_err(|_| {
            tracing::warn!(
                kind = kind.name(),
                "not mailing a link: the address is not a single plain address"
            );
            ApiError::bad_request(codes::INVALID_EMAIL)
        })?;
        let opts = &self.options().email;
        let minutes = (expires_in.as_secs() / 60).to_string();
        let (subject, text, html) = kind.template(&opts.templates).render(&[
            ("app_name", &opts.app_name),
            ("name", &mail.user.name),
            ("email", to),
            ("new_email", mail.new_email.as_deref().unwrap_or_default()),
            ("url", &mail.url),
            ("expires_in_minutes", &minutes),
        ]);
        let message = Message::new(kind.name(), address, &subject, text, html)
            .with_link(mail.url.clone(), mail.token.clone());
        self.send_email(&message)
            .await
            .map_err(|_| ApiError::internal())
    }

    /// Delivers link `mail` as `delivery` says: mailed to `to` (see
    /// [`mail_link`](Self::mail_link)) or handed to the application's callback.
    pub(crate) async fn deliver_link(
        &self,
        ctx: &Ctx,
        delivery: &Delivery,
        kind: LinkKind,
        to: &str,
        mail: LinkMail,
        expires_in: std::time::Duration,
    ) -> Result<(), ApiError> {
        match delivery {
            Delivery::Email => self.mail_link(kind, to, &mail, expires_in).await,
            Delivery::Callback(send) => send(mail, ctx.clone()).await,
        }
    }

    /// [`deliver_link`](Self::deliver_link) in a background task, so how long delivery takes
    /// tells a caller nothing. Failures are logged.
    pub(crate) fn deliver_link_in_background(
        &self,
        ctx: &Ctx,
        delivery: Delivery,
        kind: LinkKind,
        to: String,
        mail: LinkMail,
        expires_in: std::time::Duration,
    ) {
        let (auth, ctx) = (self.clone(), ctx.clone());
        tokio::spawn(async move {
            if let Err(e) = auth
                .deliver_link(&ctx, &delivery, kind, &to, mail, expires_in)
                .await
            {
                tracing::error!(kind = kind.name(), error = %e, "a link could not be delivered");
            }
        });
    }
}

/// At most one [`EXISTING_ACCOUNT`] notice per account in this time, however many sign-ups
/// try its address: a notice is no way to flood someone's mailbox.
const EXISTING_ACCOUNT_NOTICE_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);

impl crate::Auth {
    /// Tells `user`, by mail in the background, that someone tried to sign up with their
    /// address (template [`EmailTemplates::existing_account`]), at most once an hour per
    /// account. A sign-up that answers an existing address as it answers a new one (so that it
    /// reveals nothing) calls this where the new account would have been made. Without an
    /// email sender, nothing is sent.
    pub fn notify_existing_account(&self, user: &crate::storage::User) {
        if self.email_sender().is_none() {
            return;
        }
        let (auth, user) = (self.clone(), user.clone());
        tokio::spawn(async move {
            let key = format!("notice-existing-account|{}", user.id);
            let counters = auth.counters();
            match counters.hit(&key, EXISTING_ACCOUNT_NOTICE_EVERY, 1).await {
                Ok(None) => {}
                Ok(Some(_)) => {
                    tracing::debug!("existing-account notice skipped: one was sent lately");
                    return;
                }
                Err(e) => tracing::warn!(error = %e, "notice counter failed; sending anyway"),
            }
            let Ok(to) = Address::parse(&user.email) else {
                return;
            };
            let opts = &auth.options().email;
            let (subject, text, html) = opts.templates.existing_account.render(&[
                ("app_name", &opts.app_name),
                ("name", &user.name),
                ("email", &user.email),
            ]);
            let message = Message::new(EXISTING_ACCOUNT, to, &subject, text, html);
            let _ = auth.send_email(&message).await;
        });
    }
}

/// The engine's link messages: each has its kind and its template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LinkKind {
    /// [`VERIFY_EMAIL`], also for a change of address: the link goes to the new address.
    VerifyEmail,
    /// [`CHANGE_EMAIL_CONFIRMATION`], to the current address.
    ChangeEmailConfirmation,
    /// [`DELETE_ACCOUNT`].
    DeleteAccount,
}

impl LinkKind {
    fn name(self) -> &'static str {
        match self {
            Self::VerifyEmail => VERIFY_EMAIL,
            Self::ChangeEmailConfirmation => CHANGE_EMAIL_CONFIRMATION,
            Self::DeleteAccount => DELETE_ACCOUNT,
        }
    }

    fn template(self, templates: &EmailTemplates) -> &EmailTemplate {
        match self {
            Self::VerifyEmail => &templates.verify_email,
            Self::ChangeEmailConfirmation => &templates.change_email_confirmation,
            Self::DeleteAccount => &templates.delete_account,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_single_and_plain() {
        assert_eq!(
            Address::parse("a.b+c@example.com").unwrap().as_str(),
            "a.b+c@example.com"
        );
        for bad in [
            "a@example.com\r\nBcc: evil@example.com",
            "a@example.com\nX: y",
            "a@example.com,b@example.com",
            "a@example.com;b@example.com",
            "A <a@example.com>",
            "<a@example.com>",
            "\"a\"@example.com",
            " a@example.com",
            "a@example.com ",
            "",
            &format!("{}@example.com", "a".repeat(250)),
        ] {
            assert!(Address::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn debug_hides_links_tokens_and_codes() {
        let m = Message::new(
            VERIFY_EMAIL,
            Address::parse("a@example.com").unwrap(),
            "Hi\r\nBcc: x@example.com",
            "t",
            "h",
        )
        .with_link("https://x.test/verify?token=SECRET1", "SECRET1")
        .with_otp("SECRET2");
        let shown = format!("{m:?}");
        assert!(!shown.contains("SECRET"), "{shown}");
        assert_eq!(m.subject, "HiBcc: x@example.com");
    }
}
