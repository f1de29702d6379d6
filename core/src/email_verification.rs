//! Email verification, as Better Auth does it: a stateless HS256 JWT in a link, no database
//! row.
//!
//! - `POST /send-verification-email {email, callbackURL?}` mails
//!   `<base>/verify-email?token=<jwt>&callbackURL=<callbackURL or "/">`. Without a session it
//!   always answers `{"status":true}` after at least 500 ms, and mails only an existing,
//!   unverified user; with a session the email must be the session user's (400
//!   `EMAIL_MISMATCH`) and not verified yet (400 `EMAIL_ALREADY_VERIFIED`).
//! - `GET /verify-email?token&callbackURL?` marks the email verified, signs the user in when
//!   [`EmailVerificationOptions::auto_sign_in_after_verification`] is on, and redirects to
//!   `callbackURL` (302) or answers `{"status":true,"user":null}`. Errors (`TOKEN_EXPIRED`,
//!   `INVALID_TOKEN`, `USER_NOT_FOUND`, `INVALID_USER`) redirect to `callbackURL?error=CODE`
//!   when there is one, else answer 401.
//!
//! The token's header is `{"alg":"HS256"}`, its payload `{email, userId, iat, exp}`, its key
//! the secret's UTF-8 bytes. Change-email tokens (with `updateTo`) are not served here and are
//! refused as `INVALID_TOKEN`.

use std::time::Duration;

use http::StatusCode;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::context::{Ctx, Reply};
use crate::cookies::encode_uri_component;
use crate::email::{Address, Message, VERIFY_EMAIL};
use crate::error::{codes, ApiError, ErrorCode};
use crate::jwt::JwtError;
use crate::plugin::Endpoint;
use crate::storage::{Row, SessionAndUser, User};
use crate::Auth;

/// Email verification options, with Better Auth's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailVerificationOptions {
    /// Mail a verification link at sign-up. `None` (the default) follows the email-password
    /// plugin's `require_email_verification`, as Better Auth does.
    pub send_on_sign_up: Option<bool>,
    /// When sign-in is refused because the email is not verified, mail a new link first.
    pub send_on_sign_in: bool,
    /// Sign the user in when they open the link (off by default).
    pub auto_sign_in_after_verification: bool,
    /// How long a link stays valid (one hour).
    pub expires_in: Duration,
}

impl Default for EmailVerificationOptions {
    fn default() -> Self {
        Self {
            send_on_sign_up: None,
            send_on_sign_in: false,
            auto_sign_in_after_verification: false,
            expires_in: Duration::from_secs(3600),
        }
    }
}

/// What a verification token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerificationClaims {
    /// The (lowercased) address it verifies.
    pub email: String,
    /// The user it was issued to, when the token names one (Better Auth's older tokens do not).
    pub user_id: Option<String>,
}

/// Why a verification token was refused; each maps to Better Auth's error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VerificationError {
    /// `exp` has passed.
    #[error("token expired")]
    Expired,
    /// Not a token of ours, tampered with, or for another purpose.
    #[error("invalid token")]
    Invalid,
    /// No user has the token's email.
    #[error("user not found")]
    UserNotFound,
    /// The user with that email is not the one the token was issued to.
    #[error("invalid user")]
    InvalidUser,
}

impl VerificationError {
    /// The wire error code.
    pub fn code(self) -> ErrorCode {
        match self {
            Self::Expired => codes::TOKEN_EXPIRED,
            Self::Invalid => codes::INVALID_TOKEN,
            Self::UserNotFound => codes::USER_NOT_FOUND,
            Self::InvalidUser => codes::INVALID_USER,
        }
    }
}

impl Auth {
    /// A verification token for `email` (lowercased) issued to `user_id`, valid for
    /// `email_verification.expires_in`.
    pub fn email_verification_token(&self, email: &str, user_id: Option<&str>) -> String {
        let now = chrono::Utc::now().timestamp();
        let ttl = self.options().email_verification.expires_in.as_secs() as i64;
        let mut claims = Map::new();
        claims.insert("email".into(), email.to_lowercase().into());
        if let Some(id) = user_id {
            claims.insert("userId".into(), id.into());
        }
        claims.insert("iat".into(), now.into());
        claims.insert("exp".into(), (now + ttl).into());
        crate::jwt::sign_hs256(self.secret().expose().as_bytes(), &claims)
    }

    /// Checks a verification token's signature and expiry and reads it.
    pub fn read_email_verification_token(
        &self,
        token: &str,
    ) -> Result<VerificationClaims, VerificationError> {
        let now = chrono::Utc::now().timestamp();
        let claims = crate::jwt::verify_hs256(self.secret().expose().as_bytes(), token, now)
            .map_err(|e| match e {
                JwtError::Expired => VerificationError::Expired,
                _ => VerificationError::Invalid,
            })?;
        // Change-email tokens carry `updateTo`/`requestType`; this server does not serve that
        // flow, so they verify nothing here.
        if claims.contains_key("updateTo") || claims.contains_key("requestType") {
            return Err(VerificationError::Invalid);
        }
        let email = claims
            .get("email")
            .and_then(Value::as_str)
            .filter(|e| crate::validate::is_valid_email(e))
            .ok_or(VerificationError::Invalid)?;
        let user_id = match claims.get("userId") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => return Err(VerificationError::Invalid),
        };
        Ok(VerificationClaims {
            email: email.to_owned(),
            user_id,
        })
    }

    /// Mails `user` a verification link leading to `callback_url` (`"/"` when absent), as
    /// sign-up, sign-in and `/send-verification-email` do. 400
    /// `VERIFICATION_EMAIL_NOT_ENABLED` without a sender; 500 when sending fails (logged).
    pub async fn send_verification_email(
        &self,
        ctx: &Ctx,
        user: &User,
        callback_url: Option<&str>,
    ) -> Result<(), ApiError> {
        if self.email_sender().is_none() {
            tracing::error!("verification email requested but no email sender is configured");
            return Err(ApiError::bad_request(codes::VERIFICATION_EMAIL_NOT_ENABLED));
        }
        let to = Address::parse(&user.email).map_err(|_| {
            tracing::warn!(
                "not mailing a verification link: the user's email is not a single plain address"
            );
            ApiError::bad_request(codes::INVALID_EMAIL)
        })?;
        let token = self.email_verification_token(&user.email, Some(&user.id));
        let callback = callback_url.filter(|c| !c.is_empty()).unwrap_or("/");
        let url = format!(
            "{}/verify-email?token={token}&callbackURL={}",
            ctx.base_url(),
            encode_uri_component(callback)
        );
        let opts = &self.options().email;
        let minutes = (self.options().email_verification.expires_in.as_secs() / 60).to_string();
        let (subject, text, html) = opts.templates.verify_email.render(&[
            ("app_name", &opts.app_name),
            ("name", &user.name),
            ("email", &user.email),
            ("url", &url),
            ("expires_in_minutes", &minutes),
        ]);
        let message = Message::new(VERIFY_EMAIL, to, &subject, text, html).with_link(url, token);
        self.send_email(&message)
            .await
            .map_err(|_| ApiError::internal())
    }
}

pub(crate) fn endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint::post(
            "sendVerificationEmail",
            "/send-verification-email",
            send_verification_email,
        ),
        Endpoint::get("verifyEmail", "/verify-email", verify_email),
    ]
}

#[derive(Deserialize)]
struct SendBody {
    email: String,
    #[serde(default, rename = "callbackURL")]
    callback_url: Option<String>,
}

/// The shortest time `/send-verification-email` takes without a session, so the answer's
/// timing does not tell whether the email belongs to an unverified user.
const MIN_ANONYMOUS_DURATION: Duration = Duration::from_millis(500);

/// `POST /send-verification-email`.
async fn send_verification_email(ctx: Ctx) -> Result<Reply, ApiError> {
    let body: SendBody = ctx.body()?;
    if !crate::validate::is_valid_email(&body.email) {
        return Err(ApiError::validation("[body.email] Invalid email address"));
    }
    let auth = ctx.auth();
    if auth.email_sender().is_none() {
        tracing::error!("verification email requested but no email sender is configured");
        return Err(ApiError::bad_request(codes::VERIFICATION_EMAIL_NOT_ENABLED));
    }
    let callback = body.callback_url.as_deref();
    let Some(current) = ctx.session().await? else {
        let started = tokio::time::Instant::now();
        let user = auth
            .store()
            .user_by_email(&body.email.to_lowercase())
            .await?;
        let result = match user {
            Some(user) if !user.email_verified => {
                auth.send_verification_email(&ctx, &user, callback).await
            }
            _ => {
                // The same signing work as for a real user.
                let _ = auth.email_verification_token(&body.email, None);
                Ok(())
            }
        };
        tokio::time::sleep_until(started + MIN_ANONYMOUS_DURATION).await;
        result?;
        return Ok(Reply::json(json!({ "status": true })));
    };
    if current.user.email.to_lowercase() != body.email.to_lowercase() {
        return Err(ApiError::bad_request(codes::EMAIL_MISMATCH));
    }
    if current.user.email_verified {
        return Err(ApiError::bad_request(codes::EMAIL_ALREADY_VERIFIED));
    }
    auth.send_verification_email(&ctx, &current.user, callback)
        .await?;
    Ok(Reply::json(json!({ "status": true })))
}

/// `GET /verify-email?token&callbackURL`.
async fn verify_email(ctx: Ctx) -> Result<Reply, ApiError> {
    let Some(token) = ctx.query("token") else {
        return Err(ApiError::validation(
            "[query.token] Invalid input: expected string, received undefined",
        ));
    };
    let callback = ctx.query("callbackURL").filter(|c| !c.is_empty());
    let fail = |e: VerificationError| -> Result<Reply, ApiError> {
        let code = e.code();
        match callback {
            Some(cb) => {
                let sep = if cb.contains('?') { '&' } else { '?' };
                Ok(Reply::redirect(&format!("{cb}{sep}error={}", code.code)))
            }
            None => Err(ApiError::new(StatusCode::UNAUTHORIZED, code)),
        }
    };
    let auth = ctx.auth();
    let claims = match auth.read_email_verification_token(token) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    let store = ctx.store();
    let Some(user) = store.user_by_email(&claims.email).await? else {
        return fail(VerificationError::UserNotFound);
    };
    if claims.user_id.as_deref().is_some_and(|id| id != user.id) {
        return fail(VerificationError::InvalidUser);
    }
    let done = |mut reply: Reply| -> Reply {
        if let Some(cb) = callback {
            let mut redirect = Reply::redirect(cb);
            for (name, value) in reply.headers_mut().drain() {
                if let Some(name) = name {
                    redirect.headers_mut().append(name, value);
                }
            }
            redirect.set_new_session(reply.new_session().cloned());
            return redirect;
        }
        reply
    };
    let body = json!({ "status": true, "user": null });
    if user.email_verified {
        return Ok(done(Reply::json(body)));
    }
    let Some(user) = store
        .update_user(&user.id, Row::new().with("emailVerified", true))
        .await?
    else {
        return fail(VerificationError::UserNotFound);
    };
    tracing::info!("email verified");
    let mut reply = Reply::json(body);
    if auth
        .options()
        .email_verification
        .auto_sign_in_after_verification
    {
        match ctx.session().await? {
            Some(current) if current.user.email == claims.email => {
                auth.set_session_cookie(&ctx, &mut reply, &current.session, &user, None);
            }
            _ => {
                let session = auth
                    .create_session(store, &ctx, &user.id, false)
                    .await
                    .map_err(|e| {
                        // Better Auth answers 500 here; a database hook's refusal passes.
                        if e.code() == Some(codes::FAILED_TO_CREATE_SESSION.code) {
                            ApiError::new(
                                StatusCode::INTERNAL_SERVER_ERROR,
                                codes::FAILED_TO_CREATE_SESSION,
                            )
                        } else {
                            e
                        }
                    })?;
                auth.set_session_cookie(&ctx, &mut reply, &session, &user, None);
                reply.set_new_session(Some(SessionAndUser { session, user }));
            }
        }
    }
    Ok(done(reply))
}
