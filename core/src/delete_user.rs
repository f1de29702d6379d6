//! Users deleting their own account, as Better Auth 1.7 does it (`user.deleteUser`).
//!
//! `POST /delete-user {password?, token?, callbackURL?}` (signed in), checked in Better Auth's
//! order:
//!
//! 1. a `password` must be the user's (400 `CREDENTIAL_ACCOUNT_NOT_FOUND` /
//!    `INVALID_PASSWORD`);
//! 2. a `token` from a deletion link deletes the account (404 `INVALID_TOKEN` when it is not
//!    a live token issued to this user);
//! 3. with [`DeleteUserOptions::send_delete_account_verification`], nothing is deleted yet: a
//!    link `<base>/delete-user/callback?token=…&callbackURL=…` is delivered and the answer is
//!    `{"success":true,"message":"Verification email sent"}`;
//! 4. otherwise, without a password, the session must be younger than `fresh_age` (400
//!    `SESSION_EXPIRED`), and the account is deleted.
//!
//! `GET /delete-user/callback?token&callbackURL?` (signed in as the same user) deletes the
//! account and redirects to `callbackURL`, or answers `{"success":true,"message":"User
//! deleted"}`. The token is a verification row `delete-account-<32 chars of [0-9a-z]>` whose
//! value is the user id, valid for `delete_token_expires_in` and good for one deletion: it is
//! consumed in the transaction that deletes the user's sessions, accounts and the user.
//!
//! Off unless [`DeleteUserOptions::enabled`]: `/delete-user` answers 404 with an empty body,
//! the callback 404 `NOT_FOUND`.

use std::time::Duration;

use http::StatusCode;
use serde::Deserialize;
use serde_json::json;

use crate::callbacks::{Delivery, LinkMail, UserCallback};
use crate::context::{Ctx, Reply};
use crate::cookies::encode_uri_component;
use crate::crypto::random_string;
use crate::email::LinkKind;
use crate::error::{codes, ApiError};
use crate::input::{Shape, Type};
use crate::plugin::Endpoint;
use crate::storage::{User, Verification};

/// Options of `/delete-user` (Better Auth's `user.deleteUser`); off by default.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct DeleteUserOptions {
    /// Serve `/delete-user` and its callback at all.
    pub enabled: bool,
    /// Confirm every deletion by a link first (Better Auth's
    /// `sendDeleteAccountVerification`).
    pub send_delete_account_verification: Option<Delivery>,
    /// How long a deletion link stays valid (one day).
    pub delete_token_expires_in: Duration,
    /// Runs before an account is deleted; an error keeps it and is the answer.
    pub before_delete: Option<UserCallback>,
    /// Runs after an account was deleted.
    pub after_delete: Option<UserCallback>,
}

impl Default for DeleteUserOptions {
    fn default() -> Self {
        Self {
            enabled: false,
            send_delete_account_verification: None,
            delete_token_expires_in: Duration::from_secs(24 * 3600),
            before_delete: None,
            after_delete: None,
        }
    }
}

/// The alphabet of deletion tokens: Better Auth's `"0-9", "a-z"`.
const TOKEN_ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";

fn identifier(token: &str) -> String {
    format!("delete-account-{token}")
}

pub(crate) fn endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint::post("deleteUser", "/delete-user", delete_user).body_shape(
            Shape::object()
                .optional_field("callbackURL", Type::String)
                .optional_field("password", Type::String)
                .optional_field("token", Type::String),
        ),
        Endpoint::get(
            "deleteUserCallback",
            "/delete-user/callback",
            delete_user_callback,
        )
        .query_shape(
            Shape::object()
                .field("token", Type::String)
                .optional_field("callbackURL", Type::String),
        ),
    ]
}

#[derive(Deserialize, Default)]
struct DeleteBody {
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    token: Option<String>,
    #[serde(default, rename = "callbackURL")]
    callback_url: Option<String>,
}

fn deleted() -> Reply {
    Reply::json(json!({ "success": true, "message": "User deleted" }))
}

/// `POST /delete-user`.
async fn delete_user(ctx: Ctx) -> Result<Reply, ApiError> {
    // Better Auth validates the body, then requires the session, then checks the option.
    let body: DeleteBody = ctx.body_or_empty()?;
    let current = ctx.require_sensitive_session().await?;
    let auth = ctx.auth();
    let opts = &auth.options().delete_user;
    if !opts.enabled {
        tracing::error!("delete-user is disabled; enable it in the options");
        return Err(ApiError::empty(StatusCode::NOT_FOUND));
    }
    let password = body.password.as_deref().filter(|p| !p.is_empty());
    if let Some(password) = password {
        if password.encode_utf16().count() > 128 {
            return Err(ApiError::bad_request(codes::PASSWORD_TOO_LONG));
        }
        crate::routes::check_password(&ctx, &current.user.id, password).await?;
    }
    if let Some(token) = body.token.as_deref().filter(|t| !t.is_empty()) {
        let after_error = delete_with_token(&ctx, &current.user, token).await?;
        return deleted_reply(&ctx, after_error);
    }
    if let Some(delivery) = &opts.send_delete_account_verification {
        let token = random_string(32, TOKEN_ALPHABET);
        let now = crate::time::now();
        let row = Verification {
            id: auth.options().ids.generate(),
            identifier: identifier(&token),
            value: current.user.id.clone(),
            expires_at: now + opts.delete_token_expires_in,
            created_at: now,
            updated_at: now,
        };
        ctx.store().create_verification(&row).await.map_err(|e| {
            tracing::error!(error = %e, "could not store a deletion token");
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                codes::FAILED_TO_CREATE_VERIFICATION,
            )
        })?;
        let callback = body.callback_url.as_deref().filter(|c| !c.is_empty());
        let url = format!(
            "{}/delete-user/callback?token={token}&callbackURL={}",
            ctx.base_url(),
            encode_uri_component(callback.unwrap_or("/"))
        );
        let mail = LinkMail {
            user: current.user.clone(),
            new_email: None,
            url,
            token,
        };
        auth.deliver_link(
            &ctx,
            delivery,
            LinkKind::DeleteAccount,
            &current.user.email,
            mail,
            opts.delete_token_expires_in,
        )
        .await?;
        return Ok(Reply::json(
            json!({ "success": true, "message": "Verification email sent" }),
        ));
    }
    if password.is_none() {
        let fresh_age = auth.options().session.fresh_age;
        let age = (crate::time::now() - current.session.created_at)
            .to_std()
            .unwrap_or_default();
        if !fresh_age.is_zero() && age >= fresh_age {
            return Err(ApiError::bad_request(codes::SESSION_EXPIRED));
        }
    }
    let after_error = delete_account(&ctx, &current.user, None).await?;
    deleted_reply(&ctx, after_error)
}

/// `GET /delete-user/callback?token&callbackURL`.
async fn delete_user_callback(ctx: Ctx) -> Result<Reply, ApiError> {
    let Some(token) = ctx.query("token") else {
        return Err(ApiError::validation(
            "[query.token] Invalid input: expected string, received undefined",
        ));
    };
    let auth = ctx.auth();
    if !auth.options().delete_user.enabled {
        tracing::error!("delete-user is disabled; enable it in the options");
        return Err(ApiError::new(StatusCode::NOT_FOUND, codes::NOT_FOUND));
    }
    let Some(current) = ctx.sensitive_session().await? else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            codes::FAILED_TO_GET_USER_INFO,
        ));
    };
    let after_error = delete_with_token(&ctx, &current.user, token).await?;
    let reply = deleted_reply(&ctx, after_error)?;
    Ok(match ctx.query("callbackURL").filter(|c| !c.is_empty()) {
        Some(cb) => reply.into_redirect(cb),
        None => reply,
    })
}

fn invalid_token() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, codes::INVALID_TOKEN)
}

/// Deletes `user` with deletion token `token`: 404 `INVALID_TOKEN` unless it is a live token
/// issued to this user. An expired token, or one of another user, is used up all the same
/// (as Better Auth's consume does).
async fn delete_with_token(
    ctx: &Ctx,
    user: &User,
    token: &str,
) -> Result<Option<ApiError>, ApiError> {
    let store = ctx.store();
    let Some(row) = store.verification_by_identifier(&identifier(token)).await? else {
        return Err(invalid_token());
    };
    if row.value != user.id || row.expires_at < crate::time::now() {
        store.delete_verifications(&row.identifier).await?;
        return Err(invalid_token());
    }
    delete_account(ctx, user, Some(&row)).await
}

/// Runs `before_delete`, then deletes the user's sessions, accounts and the user in one
/// transaction (consuming `token` in it, when given: of two requests racing with one token
/// exactly one deletes), then runs `after_delete`. `Err` when nothing was deleted; `Ok(Some)`
/// with the error of a hook that failed after the deletion committed.
async fn delete_account(
    ctx: &Ctx,
    user: &User,
    token: Option<&Verification>,
) -> Result<Option<ApiError>, ApiError> {
    let auth = ctx.auth();
    let opts = &auth.options().delete_user;
    if let Some(before) = &opts.before_delete {
        before.call(user, ctx).await?;
    }
    let tx = ctx.begin().await?;
    let store = tx.store();
    if let Some(row) = token {
        if !store.consume_verification(row).await? {
            return Err(invalid_token());
        }
    }
    store.delete_user(&user.id).await?;
    // From the commit on, the account is gone whatever a hook says afterwards: its error is
    // still the answer, but with the session cookies expired (see `deleted_reply`).
    let mut after_error = match tx.commit().await {
        Ok(()) => None,
        Err(crate::storage::StorageError::Rejected(e)) => Some(e),
        Err(e) => return Err(e.into()),
    };
    tracing::info!(user = %user.id, "user deleted");
    if let (None, Some(after)) = (&after_error, &opts.after_delete) {
        after_error = after.call(user, ctx).await.err();
    }
    Ok(after_error)
}

/// The answer once the account is deleted: `{success, message}` with every session cookie
/// expired, or the error a hook raised after the deletion, with the same cookies expired.
fn deleted_reply(ctx: &Ctx, after_error: Option<ApiError>) -> Result<Reply, ApiError> {
    let mut reply = deleted();
    ctx.auth().expire_session_cookies(ctx, &mut reply);
    match after_error {
        None => Ok(reply),
        Some(mut e) => {
            for c in reply.set_cookies() {
                if let Ok(v) = http::HeaderValue::from_str(c) {
                    e = e.with_header(http::header::SET_COOKIE, v);
                }
            }
            Err(e)
        }
    }
}
