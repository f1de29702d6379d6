//! Email and password sign-up and sign-in for Portcullis, wire-compatible with Better Auth's
//! `emailAndPassword`.
//!
//! Endpoints: `POST /sign-up/email`, `POST /sign-in/email` (both also take HTML form posts),
//! `POST /change-password`, and password reset by email: `POST /request-password-reset`,
//! `GET /reset-password/:token`, `POST /reset-password` (served when the engine has an email
//! sender, see `AuthBuilder::email_sender`). New passwords are hashed with argon2id off the async workers;
//! hashes written by Better Auth (scrypt) verify and are upgraded to argon2id at the next
//! successful sign-in.
//!
//! ```no_run
//! # async fn run() -> Result<(), portcullis::Error> {
//! use portcullis::Auth;
//! use portcullis_email_password::{EmailPassword, EmailPasswordApi, SignUpEmail};
//!
//! let auth = Auth::builder()
//!     .secret("a-secret-of-at-least-32-characters!!")
//!     .plugin(EmailPassword::default().min_password_length(10))
//!     .build()
//!     .await?;
//! auth.migrate().await?;
//! let signed_up = auth
//!     .api()
//!     .sign_up_email(SignUpEmail::new("Ada", "ada@example.com", "correct horse battery"))
//!     .await;
//! # let _ = signed_up;
//! # Ok(())
//! # }
//! ```

mod reset;
mod routes;

use std::future::Future;
use std::sync::Arc;

use portcullis::storage::User;
use portcullis::{
    ApiError, ApiRequest, BoxFuture, Endpoint, Error, ErrorCode, Plugin, PluginFactory,
};
use serde::{Deserialize, Serialize};

/// Error codes this plugin answers with besides the engine's own.
pub mod codes {
    use portcullis::ErrorCode;

    /// Sign-up is turned off.
    pub const EMAIL_PASSWORD_SIGN_UP_DISABLED: ErrorCode = ErrorCode::new(
        "EMAIL_PASSWORD_SIGN_UP_DISABLED",
        "Email and password sign up is not enabled",
    );
    /// Email and password sign-in is turned off.
    pub const EMAIL_PASSWORD_DISABLED: ErrorCode = ErrorCode::new(
        "EMAIL_PASSWORD_DISABLED",
        "Email and password is not enabled",
    );
    /// Password reset was asked for, but the engine has no email sender.
    pub const RESET_PASSWORD_DISABLED: ErrorCode =
        ErrorCode::new("RESET_PASSWORD_DISABLED", "Reset password isn't enabled");
}

/// Options, with Better Auth's defaults.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct EmailPasswordOptions {
    /// Sign-in and sign-up are served at all.
    pub enabled: bool,
    /// Refuse new sign-ups (existing users still sign in).
    pub disable_sign_up: bool,
    /// Shortest password, in UTF-16 code units as Better Auth counts (8).
    pub min_password_length: usize,
    /// Longest password (128).
    pub max_password_length: usize,
    /// Sign the user in right after sign-up (true).
    pub auto_sign_in: bool,
    /// Refuse sign-in until the email is verified (false). Also decides whether sign-up mails
    /// a verification link, unless `Options::email_verification.send_on_sign_up` says.
    pub require_email_verification: bool,
    /// How long a password reset link stays valid, in seconds (3600).
    pub reset_password_token_expires_in: u64,
    /// A password reset ends every session of the user (false).
    pub revoke_sessions_on_password_reset: bool,
}

impl Default for EmailPasswordOptions {
    fn default() -> Self {
        Self {
            enabled: true,
            disable_sign_up: false,
            min_password_length: 8,
            max_password_length: 128,
            auto_sign_in: true,
            require_email_verification: false,
            reset_password_token_expires_in: 3600,
            revoke_sessions_on_password_reset: false,
        }
    }
}

/// Called after a password reset committed, with the user whose password changed.
pub type OnPasswordReset = Arc<dyn Fn(User) -> BoxFuture<'static, ()> + Send + Sync>;

/// The email and password plugin.
#[derive(Clone, Default)]
pub struct EmailPassword {
    options: EmailPasswordOptions,
    on_password_reset: Option<OnPasswordReset>,
}

impl std::fmt::Debug for EmailPassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmailPassword")
            .field("options", &self.options)
            .field("on_password_reset", &self.on_password_reset.is_some())
            .finish()
    }
}

impl EmailPassword {
    /// The plugin with `options`.
    pub fn new(options: EmailPasswordOptions) -> Self {
        Self {
            options,
            on_password_reset: None,
        }
    }

    /// Changes any option.
    pub fn options(mut self, f: impl FnOnce(&mut EmailPasswordOptions)) -> Self {
        f(&mut self.options);
        self
    }

    /// How long password reset links stay valid.
    pub fn reset_password_token_expires_in(mut self, ttl: std::time::Duration) -> Self {
        self.options.reset_password_token_expires_in = ttl.as_secs();
        self
    }

    /// Whether a password reset ends every session of the user.
    pub fn revoke_sessions_on_password_reset(mut self, yes: bool) -> Self {
        self.options.revoke_sessions_on_password_reset = yes;
        self
    }

    /// Runs `f` after each password reset (for a notification mail, an audit log...).
    pub fn on_password_reset<F, Fut>(mut self, f: F) -> Self
    where
        F: Fn(User) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.on_password_reset = Some(Arc::new(move |user| Box::pin(f(user))));
        self
    }

    /// Shortest accepted password.
    pub fn min_password_length(mut self, n: usize) -> Self {
        self.options.min_password_length = n;
        self
    }

    /// Longest accepted password.
    pub fn max_password_length(mut self, n: usize) -> Self {
        self.options.max_password_length = n;
        self
    }

    /// Whether sign-up signs the user in.
    pub fn auto_sign_in(mut self, yes: bool) -> Self {
        self.options.auto_sign_in = yes;
        self
    }

    /// Refuses new sign-ups.
    pub fn disable_sign_up(mut self) -> Self {
        self.options.disable_sign_up = true;
        self
    }

    /// Refuses sign-in of users whose email is not verified.
    pub fn require_email_verification(mut self, yes: bool) -> Self {
        self.options.require_email_verification = yes;
        self
    }
}

impl Plugin for EmailPassword {
    fn id(&self) -> &'static str {
        "email-password"
    }

    fn endpoints(&self) -> Vec<Endpoint> {
        let options = Arc::new(self.options.clone());
        let mut endpoints = routes::endpoints(options.clone());
        endpoints.extend(reset::endpoints(options, self.on_password_reset.clone()));
        endpoints
    }

    fn error_codes(&self) -> &'static [ErrorCode] {
        &[
            codes::EMAIL_PASSWORD_SIGN_UP_DISABLED,
            codes::EMAIL_PASSWORD_DISABLED,
            codes::RESET_PASSWORD_DISABLED,
        ]
    }
}

fn from_config(config: &serde_json::Value) -> Result<Arc<dyn Plugin>, Error> {
    let options: EmailPasswordOptions =
        portcullis::plugin::options_from_config("email-password", config)?;
    Ok(Arc::new(EmailPassword::new(options)))
}

inventory::submit! {
    PluginFactory { name: "email-password", build: from_config }
}

/// The body of `POST /sign-up/email`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignUpEmail {
    /// Display name.
    pub name: String,
    /// Email address.
    pub email: String,
    /// Password.
    pub password: String,
    /// Avatar URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Where a verification link leads.
    #[serde(
        default,
        rename = "callbackURL",
        skip_serializing_if = "Option::is_none"
    )]
    pub callback_url: Option<String>,
    /// `false` makes a one-day session whose cookie dies with the browser.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remember_me: Option<bool>,
}

impl SignUpEmail {
    /// A sign-up with name, email and password.
    pub fn new(name: &str, email: &str, password: &str) -> Self {
        Self {
            name: name.into(),
            email: email.into(),
            password: password.into(),
            image: None,
            callback_url: None,
            remember_me: None,
        }
    }
}

/// The body of `POST /sign-in/email`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignInEmail {
    /// Email address.
    pub email: String,
    /// Password.
    pub password: String,
    /// Where the client should go after signing in (sent back as `url`).
    #[serde(
        default,
        rename = "callbackURL",
        skip_serializing_if = "Option::is_none"
    )]
    pub callback_url: Option<String>,
    /// `false` makes a one-day session whose cookie dies with the browser.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remember_me: Option<bool>,
}

impl SignInEmail {
    /// A sign-in with email and password.
    pub fn new(email: &str, password: &str) -> Self {
        Self {
            email: email.into(),
            password: password.into(),
            callback_url: None,
            remember_me: None,
        }
    }
}

/// What sign-up, sign-in and change-password answer: the session token (none when no
/// session was created) and the user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignedIn {
    /// The new session's token.
    pub token: Option<String>,
    /// The user.
    pub user: portcullis::storage::User,
}

/// Typed server-side calls of this plugin's endpoints. For the cookies (the full reply), call
/// `auth.api().call(ApiRequest::new("signInEmail").body(..))` instead.
pub trait EmailPasswordApi {
    /// `POST /sign-up/email`.
    fn sign_up_email(
        &self,
        body: SignUpEmail,
    ) -> impl Future<Output = Result<SignedIn, ApiError>> + Send;
    /// `POST /sign-in/email`.
    fn sign_in_email(
        &self,
        body: SignInEmail,
    ) -> impl Future<Output = Result<SignedIn, ApiError>> + Send;
    /// `POST /request-password-reset`: mails a reset link when `email` has an account; the
    /// answer is the same either way.
    fn request_password_reset(
        &self,
        email: &str,
        redirect_to: Option<&str>,
    ) -> impl Future<Output = Result<(), ApiError>> + Send;
    /// `POST /reset-password`: sets `new_password` with the token from a reset link.
    fn reset_password(
        &self,
        token: &str,
        new_password: &str,
    ) -> impl Future<Output = Result<(), ApiError>> + Send;
}

impl EmailPasswordApi for portcullis::Api<'_> {
    fn sign_up_email(
        &self,
        body: SignUpEmail,
    ) -> impl Future<Output = Result<SignedIn, ApiError>> + Send {
        self.call_json(ApiRequest::new("signUpEmail").body(body))
    }

    fn sign_in_email(
        &self,
        body: SignInEmail,
    ) -> impl Future<Output = Result<SignedIn, ApiError>> + Send {
        self.call_json(ApiRequest::new("signInEmail").body(body))
    }

    fn request_password_reset(
        &self,
        email: &str,
        redirect_to: Option<&str>,
    ) -> impl Future<Output = Result<(), ApiError>> + Send {
        let mut body = serde_json::json!({ "email": email });
        if let Some(r) = redirect_to {
            body["redirectTo"] = r.into();
        }
        let call = self.call(ApiRequest::new("requestPasswordReset").body(body));
        async move { call.await.map(|_| ()) }
    }

    fn reset_password(
        &self,
        token: &str,
        new_password: &str,
    ) -> impl Future<Output = Result<(), ApiError>> + Send {
        let body = serde_json::json!({ "newPassword": new_password, "token": token });
        let call = self.call(ApiRequest::new("resetPassword").body(body));
        async move { call.await.map(|_| ()) }
    }
}
