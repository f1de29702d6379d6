//! Email verification, as Better Auth does it: a stateless HS256 JWT in a link, no database
//! row.
//!
//! - `POST /send-verification-email {email, callbackURL?}` mails
//!   `<base>/verify-email?token=<jwt>&callbackURL=<callbackURL or "/">`. Without a session it
//!   always answers `{"status":true}` after at least 500 ms, and mails only an existing,
//!   unverified user; with a session the email must be the session user's (400
//!   `EMAIL_MISMATCH`) and not verified yet (400 `EMAIL_ALREADY_VERIFIED`).
//! - `GET /verify-email?token&callbackURL?` marks the email verified (between the
//!   `before_email_verification` and `after_email_verification` callbacks), signs the user in
//!   when [`EmailVerificationOptions::auto_sign_in_after_verification`] is on, and redirects
//!   to `callbackURL` (302) or answers `{"status":true,"user":null}`. Errors (`TOKEN_EXPIRED`,
//!   `INVALID_TOKEN`, `USER_NOT_FOUND`, `INVALID_USER`) redirect to `callbackURL?error=CODE`
//!   when there is one, else answer 401.
//!
//! The token's header is `{"alg":"HS256"}`, its payload `{email, userId, iat, exp}`, its key
//! the secret's UTF-8 bytes. Change-email tokens also carry `updateTo` and `requestType`;
//! [`crate::change_email`] serves them.

use std::time::Duration;

use http::StatusCode;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::callbacks::{LinkMail, UserCallback};
use crate::context::{Ctx, Reply};
use crate::cookies::encode_uri_component;
use crate::email::LinkKind;
use crate::error::{codes, ApiError, ErrorCode};
use crate::input::{Shape, Type};
use crate::jwt::JwtError;
use crate::plugin::Endpoint;
use crate::storage::{Row, SessionAndUser, User};
use crate::Auth;

/// Email verification options, with Better Auth's defaults.
#[derive(Debug, Clone)]
#[non_exhaustive]
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
    /// Runs before a link marks an email verified; an error stops it and is the answer.
    pub before_email_verification: Option<UserCallback>,
    /// Runs after a link marked an email verified (also after a verified user's change of
    /// address), with the user as stored.
    pub after_email_verification: Option<UserCallback>,
}

impl Default for EmailVerificationOptions {
    fn default() -> Self {
        Self {
            send_on_sign_up: None,
            send_on_sign_in: false,
            auto_sign_in_after_verification: false,
            expires_in: Duration::from_secs(3600),
            before_email_verification: None,
            after_email_verification: None,
        }
    }
}

/// What a verification token says.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerificationClaims {
    /// The (lowercased) address it verifies.
    pub email: String,
    /// The user it was issued to, when the token names one (Better Auth's older tokens do not).
    pub user_id: Option<String>,
    /// For a change of address: the address to change to.
    pub update_to: Option<String>,
    /// For a change of address: `change-email-confirmation` or `change-email-verification`
    /// (none in Better Auth's older change tokens).
    pub request_type: Option<String>,
    /// When it was issued (`iat`, seconds since the epoch).
    pub issued_at: Option<i64>,
}

/// Why a verification token was refused; each maps to Better Auth's error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
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
    /// The request's session is another user's than the one the token was issued to.
    #[error("invalid user")]
    InvalidUser,
    /// The address a change-email link changes to was taken meanwhile.
    #[error("email taken")]
    EmailTaken,
}

impl VerificationError {
    /// The wire error code.
    pub fn code(self) -> ErrorCode {
        match self {
            Self::Expired => codes::TOKEN_EXPIRED,
            Self::Invalid => codes::INVALID_TOKEN,
            Self::UserNotFound => codes::USER_NOT_FOUND,
            Self::InvalidUser => codes::INVALID_USER,
            Self::EmailTaken => codes::USER_ALREADY_EXISTS_USE_ANOTHER_EMAIL,
        }
    }
}

impl Auth {
    /// A verification token for `email` (lowercased) issued to `user_id`, valid for
    /// `email_verification.expires_in`.
    pub fn email_verification_token(&self, email: &str, user_id: Option<&str>) -> String {
        self.sign_verification_token(email, None, user_id)
    }

    /// A change-email token: `{email, updateTo, requestType, userId}` as Better Auth signs it.
    pub(crate) fn change_email_token(
        &self,
        email: &str,
        update_to: &str,
        request_type: &str,
        user_id: &str,
    ) -> String {
        self.sign_verification_token(email, Some((update_to, request_type)), Some(user_id))
    }

    fn sign_verification_token(
        &self,
        email: &str,
        change: Option<(&str, &str)>,
        user_id: Option<&str>,
    ) -> String {
        let now = chrono::Utc::now().timestamp();
        let ttl = self.options().email_verification.expires_in.as_secs() as i64;
        let mut claims = Map::new();
        claims.insert("email".into(), email.to_lowercase().into());
        if let Some((update_to, request_type)) = change {
            claims.insert("updateTo".into(), update_to.to_lowercase().into());
            claims.insert("requestType".into(), request_type.into());
        }
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
        let claims =
            crate::jwt::verify_hs256_any(self.secret(), token, now).map_err(|e| match e {
                JwtError::Expired => VerificationError::Expired,
                _ => VerificationError::Invalid,
            })?;
        let email = claims
            .get("email")
            .and_then(Value::as_str)
            .filter(|e| crate::validate::is_valid_email(e))
            .ok_or(VerificationError::Invalid)?;
        let text = |key: &str| match claims.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(VerificationError::Invalid),
        };
        Ok(VerificationClaims {
            email: email.to_owned(),
            user_id: text("userId")?,
            update_to: text("updateTo")?.filter(|s| !s.is_empty()),
            request_type: text("requestType")?,
            issued_at: claims.get("iat").and_then(Value::as_i64),
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
        let token = self.email_verification_token(&user.email, Some(&user.id));
        let mail = self.verification_link(ctx, user.clone(), token, callback_url);
        let ttl = self.options().email_verification.expires_in;
        self.mail_link(LinkKind::VerifyEmail, &user.email, &mail, ttl)
            .await
    }

    /// Like [`Auth::send_verification_email`], in the background, so how long the mail
    /// server takes tells a caller nothing (a sign-up that must not reveal whether an account
    /// exists needs that). Failures are logged; without a sender nothing is sent.
    pub fn send_verification_email_in_background(
        &self,
        ctx: &Ctx,
        user: &User,
        callback_url: Option<&str>,
    ) {
        if self.email_sender().is_none() {
            tracing::error!("verification email requested but no email sender is configured");
            return;
        }
        let token = self.email_verification_token(&user.email, Some(&user.id));
        let mail = self.verification_link(ctx, user.clone(), token, callback_url);
        self.mail_verification_in_background(ctx, user.email.clone(), mail);
    }

    /// The `/verify-email` link carrying `token`, leading to `callback_url` (`"/"` when
    /// absent) afterwards, for `user`.
    pub(crate) fn verification_link(
        &self,
        ctx: &Ctx,
        user: User,
        token: String,
        callback_url: Option<&str>,
    ) -> LinkMail {
        let callback = callback_url.filter(|c| !c.is_empty()).unwrap_or("/");
        let url = format!(
            "{}/verify-email?token={token}&callbackURL={}",
            ctx.base_url(),
            encode_uri_component(callback)
        );
        LinkMail {
            user,
            new_email: None,
            url,
            token,
        }
    }
}

pub(crate) fn endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint::post(
            "sendVerificationEmail",
            "/send-verification-email",
            send_verification_email,
        )
        .body_shape(
            Shape::object()
                .field("email", Type::Email)
                .optional_field("callbackURL", Type::String),
        ),
        Endpoint::get("verifyEmail", "/verify-email", verify_email).query_shape(
            Shape::object()
                .field("token", Type::String)
                .optional_field("callbackURL", Type::String),
        ),
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

/// How `/verify-email` refuses a link: 302 to `callback?error=CODE` when the request named a
/// callback, else 401 with the code.
pub(crate) fn refuse(callback: Option<&str>, e: VerificationError) -> Result<Reply, ApiError> {
    let code = e.code();
    match callback {
        Some(cb) => {
            let sep = if cb.contains('?') { '&' } else { '?' };
            Ok(Reply::redirect(&format!("{cb}{sep}error={}", code.code)))
        }
        None => Err(ApiError::new(StatusCode::UNAUTHORIZED, code)),
    }
}

/// How `/verify-email` answers a link it followed: a 302 to the callback (with the reply's
/// cookies) when the request named one, else the reply itself.
pub(crate) fn followed(callback: Option<&str>, reply: Reply) -> Reply {
    match callback {
        Some(cb) => reply.into_redirect(cb),
        None => reply,
    }
}

/// `GET /verify-email?token&callbackURL`.
async fn verify_email(ctx: Ctx) -> Result<Reply, ApiError> {
    let Some(token) = ctx.query("token") else {
        return Err(ApiError::validation(
            "[query.token] Invalid input: expected string, received undefined",
        ));
    };
    let callback = ctx.query("callbackURL").filter(|c| !c.is_empty());
    let auth = ctx.auth();
    let claims = match auth.read_email_verification_token(token) {
        Ok(c) => c,
        Err(e) => return refuse(callback, e),
    };
    if claims.update_to.is_some() {
        return crate::change_email::follow_link(&ctx, claims, callback).await;
    }
    let store = ctx.store();
    let Some(user) = store.user_by_email(&claims.email).await? else {
        return refuse(callback, VerificationError::UserNotFound);
    };
    // A token issued to another user id: the account was deleted and created again.
    if claims.user_id.as_deref().is_some_and(|id| id != user.id) {
        return refuse(callback, VerificationError::Invalid);
    }
    let body = json!({ "status": true, "user": null });
    if user.email_verified {
        return Ok(followed(callback, Reply::json(body)));
    }
    let opts = &auth.options().email_verification;
    if let Some(before) = &opts.before_email_verification {
        before.call(&user, &ctx).await?;
    }
    let Some(user) = store
        .update_user(&user.id, Row::new().with("emailVerified", true))
        .await?
    else {
        return refuse(callback, VerificationError::UserNotFound);
    };
    tracing::info!("email verified");
    if let Some(after) = &opts.after_email_verification {
        after.call(&user, &ctx).await?;
    }
    let mut reply = Reply::json(body);
    if opts.auto_sign_in_after_verification {
        match ctx.sensitive_session().await? {
            Some(current) if current.user.id == user.id => {
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
    Ok(followed(callback, reply))
}
