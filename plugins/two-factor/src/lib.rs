//! Two-factor authentication for Portcullis, wire-compatible with Better Auth's `twoFactor`
//! plugin and its `twoFactorClient`.
//!
//! Adding [`TwoFactor`] to the engine gives users:
//! - **TOTP** (authenticator apps): `POST /two-factor/enable` answers an `otpauth://` URI and
//!   backup codes; the first `POST /two-factor/verify-totp` turns two-factor on.
//! - **One-time codes by mail** (or through your own callback): `POST /two-factor/send-otp`,
//!   `POST /two-factor/verify-otp`.
//! - **Backup codes**: `POST /two-factor/verify-backup-code`,
//!   `POST /two-factor/generate-backup-codes`, and the server-side `viewBackupCodes`.
//! - **The sign-in challenge**: a sign-in of a user with two-factor on answers
//!   `{twoFactorRedirect: true, twoFactorMethods: [...]}` instead of a session, and sets the
//!   signed `two_factor` cookie; one of the verify endpoints then creates the session.
//!   `trustDevice: true` remembers the browser for 30 days. Every sign-in path is challenged
//!   (password, magic link, email code, the automatic sign-in of an email-verification link,
//!   any other plugin's), where Better Auth challenges only password sign-in; passkeys and
//!   social sign-in are not, unless [`ChallengeOptions`] says so. A link's sign-in redirects to
//!   [`TwoFactorOptions::two_factor_page`] instead.
//!
//! The TOTP secret and the backup codes are stored encrypted exactly as Better Auth stores
//! them, so a database moves between the two servers with two-factor intact.
//!
//! ```no_run
//! # async fn run() -> Result<(), portcullis::Error> {
//! use portcullis::Auth;
//! use portcullis_email_password::EmailPassword;
//! use portcullis_two_factor::TwoFactor;
//!
//! let auth = Auth::builder()
//!     .secret("a-secret-of-at-least-32-characters!!")
//!     .plugin(EmailPassword::default())
//!     .plugin(TwoFactor::default().issuer("My App"))
//!     .build()
//!     .await?;
//! auth.migrate().await?;
//! # Ok(())
//! # }
//! ```
//!
//! Everything here goes through Portcullis's public plugin API (endpoints, an after hook on
//! the sign-in endpoints, a table, a user field, rate-limit rules), as a third-party plugin
//! would.

mod backup;
mod challenge;
mod options;
mod otp;
mod routes;
mod row;
mod totp;

use std::future::Future;
use std::sync::Arc;

use portcullis::email::EmailTemplate;
use portcullis::schema::DefaultValue;
use portcullis::storage::Record as _;
use portcullis::storage::User;
use portcullis::{
    ApiError, ApiRequest, BoxFuture, Endpoint, Error, ErrorCode, Hook, Plugin, PluginFactory,
    RateRule, SchemaPatch,
};
use serde::{Deserialize, Serialize};

pub use options::{
    AccountLockoutOptions, BackupCodeOptions, BackupCodeStorage, ChallengeOptions, OtpOptions,
    OtpStorage, TotpOptions, TwoFactorOptions,
};

/// The plugin's error codes (Better Auth's `TWO_FACTOR_ERROR_CODES`).
pub mod codes {
    use portcullis::ErrorCode;

    /// One-time codes are not set up on this server.
    pub const OTP_NOT_CONFIGURED: ErrorCode =
        ErrorCode::new("OTP_NOT_CONFIGURED", "OTP is not available");
    /// The one-time code expired, or there is none.
    pub const OTP_HAS_EXPIRED: ErrorCode = ErrorCode::new("OTP_HAS_EXPIRED", "OTP has expired");
    /// The user has no TOTP secret (or has not confirmed it yet).
    pub const TOTP_NOT_ENABLED: ErrorCode = ErrorCode::new("TOTP_NOT_ENABLED", "TOTP not enabled");
    /// `/two-factor/enable` for a user whose TOTP is already confirmed.
    pub const TOTP_ALREADY_ENABLED: ErrorCode =
        ErrorCode::new("TOTP_ALREADY_ENABLED", "TOTP is already enabled");
    /// TOTP is turned off on this server.
    pub const TOTP_NOT_CONFIGURED: ErrorCode =
        ErrorCode::new("TOTP_NOT_CONFIGURED", "TOTP is not available");
    /// Two-factor is off for this user.
    pub const TWO_FACTOR_NOT_ENABLED: ErrorCode =
        ErrorCode::new("TWO_FACTOR_NOT_ENABLED", "Two factor isn't enabled");
    /// The user has no backup codes.
    pub const BACKUP_CODES_NOT_ENABLED: ErrorCode =
        ErrorCode::new("BACKUP_CODES_NOT_ENABLED", "Backup codes aren't enabled");
    /// Not one of the user's unused backup codes.
    pub const INVALID_BACKUP_CODE: ErrorCode =
        ErrorCode::new("INVALID_BACKUP_CODE", "Invalid backup code");
    /// A wrong (or already used) code.
    pub const INVALID_CODE: ErrorCode = ErrorCode::new("INVALID_CODE", "Invalid code");
    /// The challenge's attempt budget is spent.
    pub const TOO_MANY_ATTEMPTS_REQUEST_NEW_CODE: ErrorCode = ErrorCode::new(
        "TOO_MANY_ATTEMPTS_REQUEST_NEW_CODE",
        "Too many attempts. Please request a new code.",
    );
    /// Too many consecutive failures: the account's second factor is locked for a while.
    pub const ACCOUNT_TEMPORARILY_LOCKED: ErrorCode = ErrorCode::new(
        "ACCOUNT_TEMPORARILY_LOCKED",
        "Too many failed verification attempts. Your account is temporarily locked. Please try again later.",
    );
    /// No (valid) `two_factor` challenge cookie and no session.
    pub const INVALID_TWO_FACTOR_COOKIE: ErrorCode =
        ErrorCode::new("INVALID_TWO_FACTOR_COOKIE", "Invalid two factor cookie");

    /// Every code above.
    pub const ALL: &[ErrorCode] = &[
        OTP_NOT_CONFIGURED,
        OTP_HAS_EXPIRED,
        TOTP_NOT_ENABLED,
        TOTP_ALREADY_ENABLED,
        TOTP_NOT_CONFIGURED,
        TWO_FACTOR_NOT_ENABLED,
        BACKUP_CODES_NOT_ENABLED,
        INVALID_BACKUP_CODE,
        INVALID_CODE,
        TOO_MANY_ATTEMPTS_REQUEST_NEW_CODE,
        ACCOUNT_TEMPORARILY_LOCKED,
        INVALID_TWO_FACTOR_COOKIE,
    ];
}

/// A one-time code to deliver: to whom, and the code.
#[derive(Clone)]
pub struct OtpDelivery {
    /// The user signing in (or enrolling).
    pub user: User,
    /// The code, `digits` decimal digits.
    pub otp: String,
}

impl std::fmt::Debug for OtpDelivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OtpDelivery")
            .field("user", &self.user.id)
            .finish_non_exhaustive()
    }
}

/// Delivers one-time codes (Better Auth's `otpOptions.sendOTP`). An error is logged; the
/// client is still told the code was sent, as Better Auth does.
pub type SendOtp = Arc<dyn Fn(OtpDelivery) -> BoxFuture<'static, Result<(), String>> + Send + Sync>;

/// The kind of the one-time code message, as the development outbox records it.
pub const OTP_MESSAGE_KIND: &str = "two-factor-otp";

/// What the plugin's endpoints and hooks share.
pub(crate) struct Shared {
    pub(crate) options: TwoFactorOptions,
    pub(crate) send_otp: Option<SendOtp>,
    pub(crate) otp_template: EmailTemplate,
}

/// The two-factor plugin. `TwoFactor::default()` has Better Auth's defaults: TOTP with 6 digits
/// every 30 seconds, 10 backup codes, a 10-minute challenge, 30-day trusted devices, lock-out
/// after 10 failures. One-time codes are off until [`TwoFactor::send_otp`] gives a way to
/// deliver them, or [`TwoFactor::send_otp_by_email`] turns on mail through the engine's sender.
#[derive(Clone)]
pub struct TwoFactor {
    options: TwoFactorOptions,
    send_otp: Option<SendOtp>,
    otp_template: EmailTemplate,
}

impl Default for TwoFactor {
    fn default() -> Self {
        Self::new(TwoFactorOptions::default())
    }
}

impl std::fmt::Debug for TwoFactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TwoFactor")
            .field("options", &self.options)
            .field("send_otp", &self.send_otp.is_some())
            .finish()
    }
}

impl TwoFactor {
    /// The plugin with `options`.
    pub fn new(options: TwoFactorOptions) -> Self {
        Self {
            options,
            send_otp: None,
            otp_template: default_otp_template(),
        }
    }

    /// The issuer authenticator apps show (the engine's app name by default).
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.options.issuer = Some(issuer.into());
        self
    }

    /// Delivers one-time codes with `f` (an SMS gateway, a push service) instead of mail.
    pub fn send_otp<F, Fut>(mut self, f: F) -> Self
    where
        F: Fn(OtpDelivery) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        self.send_otp = Some(Arc::new(move |d| Box::pin(f(d))));
        self
    }

    /// Mails one-time codes through the engine's email sender (off by default; see
    /// [`OtpOptions::send_by_email`]).
    pub fn send_otp_by_email(mut self, yes: bool) -> Self {
        self.options.otp.send_by_email = yes;
        self
    }

    /// The message one-time codes are mailed in. Placeholders: `{{app_name}}`, `{{name}}`,
    /// `{{email}}`, `{{otp}}`, `{{expires_in_minutes}}`.
    pub fn otp_template(mut self, template: EmailTemplate) -> Self {
        self.otp_template = template;
        self
    }

    /// Turns two-factor on as soon as `/two-factor/enable` answers, without a first code.
    pub fn skip_verification_on_enable(mut self, yes: bool) -> Self {
        self.options.skip_verification_on_enable = yes;
        self
    }

    /// Lets users without a password (social or magic-link sign-up) manage two-factor
    /// without one.
    pub fn allow_passwordless(mut self, yes: bool) -> Self {
        self.options.allow_passwordless = yes;
        self
    }

    /// Changes any other option.
    pub fn options(mut self, f: impl FnOnce(&mut TwoFactorOptions)) -> Self {
        f(&mut self.options);
        self
    }

    fn shared(&self) -> Arc<Shared> {
        Arc::new(Shared {
            options: self.options.clone(),
            send_otp: self.send_otp.clone(),
            otp_template: self.otp_template.clone(),
        })
    }
}

fn default_otp_template() -> EmailTemplate {
    EmailTemplate::new(
        "Your {{app_name}} sign-in code",
        "Hello {{name}},\n\nYour {{app_name}} sign-in code is {{otp}}.\n\nIt expires in {{expires_in_minutes}} minutes. If you are not signing in, someone else knows your password: change it.\n",
        "<!doctype html>\n<html><body style=\"font-family:sans-serif;line-height:1.5\">\n<p>Hello {{name}},</p>\n<p>Your {{app_name}} sign-in code is <strong style=\"font-size:1.4em;letter-spacing:.1em\">{{otp}}</strong>.</p>\n<p>It expires in {{expires_in_minutes}} minutes. If you are not signing in, someone else knows your password: change it.</p>\n</body></html>\n",
    )
}

impl Plugin for TwoFactor {
    fn id(&self) -> &'static str {
        "two-factor"
    }

    fn init(&self, _ctx: &mut portcullis::InitContext<'_>) -> Result<(), Error> {
        self.options.validate().map_err(|message| Error::Plugin {
            plugin: "two-factor",
            message,
        })
    }

    fn schema(&self) -> SchemaPatch {
        let mut t = row::TwoFactorRow::table();
        t.table = self.options.two_factor_table.clone();
        SchemaPatch::default().table(t).field(
            "user",
            row::TWO_FACTOR_ENABLED
                .field()
                .server_only()
                .default_value(DefaultValue::Bool(false)),
        )
    }

    fn endpoints(&self) -> Vec<Endpoint> {
        routes::endpoints(self.shared())
    }

    fn hooks(&self) -> Vec<Hook> {
        challenge::hooks(self.shared())
    }

    fn rate_limits(&self) -> Vec<RateRule> {
        vec![RateRule::prefix(
            "/two-factor/",
            std::time::Duration::from_secs(10),
            3,
        )]
    }

    fn error_codes(&self) -> &'static [ErrorCode] {
        codes::ALL
    }
}

fn from_config(config: &serde_json::Value) -> Result<Arc<dyn Plugin>, Error> {
    let options: TwoFactorOptions = portcullis::plugin::options_from_config("two-factor", config)?;
    Ok(Arc::new(TwoFactor::new(options)))
}

inventory::submit! {
    PluginFactory { name: "two-factor", build: from_config }
}

/// What `/two-factor/enable` answers for TOTP: the URI to show as a QR code and the backup
/// codes to show once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TotpEnrollment {
    /// Always `"totp"`.
    pub method: String,
    /// `otpauth://totp/...`.
    #[serde(rename = "totpURI")]
    pub totp_uri: String,
    /// Fresh backup codes.
    pub backup_codes: Vec<String>,
}

/// What the verify endpoints answer: the session token and the user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verified {
    /// The session's token (none for `verify-backup-code` with `disableSession` during sign-in).
    pub token: Option<String>,
    /// The user.
    pub user: User,
}

/// Server-side calls of the plugin's server-only endpoints.
pub trait TwoFactorApi {
    /// The user's unused backup codes, decrypted (Better Auth's `viewBackupCodes`).
    fn view_backup_codes(
        &self,
        user_id: &str,
    ) -> impl Future<Output = Result<Vec<String>, ApiError>> + Send;
    /// The current TOTP code for a raw secret (Better Auth's `generateTOTP`), for tests and
    /// support tools.
    fn generate_totp(&self, secret: &str) -> impl Future<Output = Result<String, ApiError>> + Send;
}

impl TwoFactorApi for portcullis::Api<'_> {
    fn view_backup_codes(
        &self,
        user_id: &str,
    ) -> impl Future<Output = Result<Vec<String>, ApiError>> + Send {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Out {
            backup_codes: Vec<String>,
        }
        let call = self.call_json::<Out>(
            ApiRequest::new("viewBackupCodes").body(serde_json::json!({ "userId": user_id })),
        );
        async move { call.await.map(|o| o.backup_codes) }
    }

    fn generate_totp(&self, secret: &str) -> impl Future<Output = Result<String, ApiError>> + Send {
        #[derive(Deserialize)]
        struct Out {
            code: String,
        }
        let call = self.call_json::<Out>(
            ApiRequest::new("generateTOTP").body(serde_json::json!({ "secret": secret })),
        );
        async move { call.await.map(|o| o.code) }
    }
}
