//! Password reset by email, wire-compatible with Better Auth:
//!
//! - `POST /request-password-reset {email, redirectTo?}` stores a verification row
//!   `reset-password:<24-character token>` (value: the user id, one hour by default) and mails
//!   `<base>/reset-password/<token>?callbackURL=<redirectTo>`. The answer is the same whether
//!   or not the email exists, and an unknown email costs the same lookups.
//! - `GET /reset-password/:token?callbackURL=` redirects (302) to `callbackURL` (resolved
//!   against the base URL) with `?token=`, or with `?error=INVALID_TOKEN` when the token is
//!   unknown or expired. It does not use the token up.
//! - `POST /reset-password {newPassword, token}` consumes the row and sets the password in
//!   one transaction; of two requests racing with one token exactly one succeeds.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use portcullis::crypto::{random_string, ALPHANUMERIC};
use portcullis::email::{Address, Message, RESET_PASSWORD};
use portcullis::plugin::Handlers;
use portcullis::storage::{Account, Verification};
use portcullis::validate::is_valid_email;
use portcullis::{codes as core, ApiError, Ctx, Endpoint, Reply};
use portcullis::{Shape, Type};
use serde::Deserialize;
use serde_json::json;

use crate::routes::{check_length, hash_failed};
use crate::{codes, EmailPasswordOptions, OnPasswordReset};

/// What the reset endpoints share.
pub(crate) struct Reset {
    pub(crate) opts: Arc<EmailPasswordOptions>,
    pub(crate) on_password_reset: Option<OnPasswordReset>,
    /// When expired verification rows were last swept (seconds since the epoch).
    last_sweep: AtomicI64,
}

/// Expired rows are swept at most this often.
const SWEEP_EVERY_SECS: i64 = 60;

/// The answer to every reset request, known email or not.
const REQUESTED: &str = "If this email exists in our system, check your email for the reset link";

pub(crate) fn endpoints(
    opts: Arc<EmailPasswordOptions>,
    on_password_reset: Option<OnPasswordReset>,
) -> Vec<Endpoint> {
    let shared = Arc::new(Reset {
        opts,
        on_password_reset,
        last_sweep: AtomicI64::new(0),
    });
    let on = Handlers::new(shared);
    vec![
        on.post(
            "requestPasswordReset",
            "/request-password-reset",
            request_password_reset,
        )
        .body_shape(
            Shape::object()
                .field("email", Type::Email)
                .optional_field("redirectTo", Type::String),
        ),
        Endpoint::get(
            "requestPasswordResetCallback",
            "/reset-password/:token",
            reset_password_callback,
        )
        .query_shape(Shape::object().field("callbackURL", Type::String)),
        on.post("resetPassword", "/reset-password", reset_password)
            .body_shape(
                Shape::object()
                    .field("newPassword", Type::String)
                    .optional_field("token", Type::String),
            )
            .query_shape(
                Shape::object()
                    .optional()
                    .optional_field("token", Type::String),
            ),
    ]
}

fn identifier(token: &str) -> String {
    format!("reset-password:{token}")
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RequestBody {
    email: String,
    #[serde(default)]
    redirect_to: Option<String>,
}

/// `POST /request-password-reset`.
async fn request_password_reset(shared: Arc<Reset>, ctx: Ctx) -> Result<Reply, ApiError> {
    let body: RequestBody = ctx.body()?;
    if !is_valid_email(&body.email) {
        return Err(ApiError::validation("[body.email] Invalid email address"));
    }
    let auth = ctx.auth();
    if auth.email_sender().is_none() {
        tracing::error!("password reset requested but no email sender is configured");
        return Err(ApiError::bad_request(codes::RESET_PASSWORD_DISABLED));
    }
    let store = ctx.store();
    let answer = || Reply::json(json!({ "status": true, "message": REQUESTED }));
    sweep_expired(&ctx, &shared).await;
    let Some(user) = store.user_by_email(&body.email.to_lowercase()).await? else {
        // The same work as for a real user: a token and a verification lookup.
        let _ = random_string(24, ALPHANUMERIC);
        store
            .verification_by_identifier("dummy-verification-token")
            .await?;
        tracing::info!("password reset requested for an unknown email");
        return Ok(answer());
    };
    let token = random_string(24, ALPHANUMERIC);
    let now = portcullis::time::now();
    let ttl = Duration::from_secs(shared.opts.reset_password_token_expires_in);
    let row = Verification {
        id: auth.options().ids.generate(),
        identifier: identifier(&token),
        value: user.id.clone(),
        expires_at: now + ttl,
        created_at: now,
        updated_at: now,
    };
    store.create_verification(&row).await.map_err(|e| {
        ApiError::from_storage(
            e,
            "could not store a password reset token",
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                core::FAILED_TO_CREATE_VERIFICATION,
            ),
        )
    })?;
    let callback = body
        .redirect_to
        .as_deref()
        .map(portcullis::cookies::encode_uri_component)
        .unwrap_or_default();
    let url = format!(
        "{}/reset-password/{token}?callbackURL={callback}",
        ctx.base_url()
    );
    let Ok(to) = Address::parse(&user.email) else {
        tracing::warn!("not mailing a reset link: the user's email is not a single plain address");
        return Ok(answer());
    };
    let email = &auth.options().email;
    let minutes = (ttl.as_secs() / 60).to_string();
    let (subject, text, html) = email.templates.reset_password.render(&[
        ("app_name", &email.app_name),
        ("name", &user.name),
        ("email", &user.email),
        ("url", &url),
        ("expires_in_minutes", &minutes),
    ]);
    let message = Message::new(RESET_PASSWORD, to, &subject, text, html).with_link(url, token);
    // Sent in the background: how long the mail server takes must not tell a caller whether
    // the email exists. Failures are logged.
    let auth = auth.clone();
    tokio::spawn(async move {
        let _ = auth.send_email(&message).await;
    });
    Ok(answer())
}

/// Deletes expired verification rows, at most once a minute.
async fn sweep_expired(ctx: &Ctx, shared: &Reset) {
    let now = portcullis::time::now().timestamp();
    let last = shared.last_sweep.load(Ordering::Relaxed);
    if now - last < SWEEP_EVERY_SECS
        || shared
            .last_sweep
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
    {
        return;
    }
    match ctx.store().delete_expired_verifications().await {
        Ok(n) if n > 0 => tracing::debug!(rows = n, "expired verification rows deleted"),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "could not delete expired verification rows"),
    }
}

/// `callback` resolved against the API's base URL, with `key=value` set in its query (as
/// `URL.searchParams.set` does: replacing an earlier `key`).
fn redirect_target(ctx: &Ctx, callback: &str, key: &str, value: &str) -> Result<String, ApiError> {
    let base = url::Url::parse(&ctx.base_url())
        .map_err(|_| ApiError::internal().with_message("the base URL is not a URL"))?;
    let mut target = base
        .join(callback)
        .map_err(|_| ApiError::new(StatusCode::FORBIDDEN, core::INVALID_CALLBACK_URL))?;
    let mut pairs: Vec<(String, String)> = target
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    match pairs.iter().position(|(k, _)| k == key) {
        Some(i) => {
            pairs[i].1 = value.to_owned();
            let mut seen = false;
            pairs.retain(|(k, _)| {
                if k != key {
                    return true;
                }
                let keep = !seen;
                seen = true;
                keep
            });
        }
        None => pairs.push((key.to_owned(), value.to_owned())),
    }
    target.query_pairs_mut().clear().extend_pairs(pairs);
    Ok(target.into())
}

/// `GET /reset-password/:token?callbackURL=`.
async fn reset_password_callback(ctx: Ctx) -> Result<Reply, ApiError> {
    let Some(callback) = ctx.query("callbackURL") else {
        return Err(ApiError::validation(
            "[query.callbackURL] Invalid input: expected string, received undefined",
        ));
    };
    let token = ctx.param("token").unwrap_or_default();
    let invalid = |ctx: &Ctx| -> Result<Reply, ApiError> {
        // Better Auth sends an empty callbackURL to its own error page.
        let target = if callback.is_empty() {
            format!("{}/error?error=INVALID_TOKEN", ctx.base_url())
        } else {
            redirect_target(ctx, callback, "error", "INVALID_TOKEN")?
        };
        Ok(Reply::redirect(&target))
    };
    if token.is_empty() || callback.is_empty() {
        return invalid(&ctx);
    }
    let row = ctx
        .store()
        .verification_by_identifier(&identifier(token))
        .await?;
    match row {
        Some(row) if row.expires_at >= portcullis::time::now() => Ok(Reply::redirect(
            &redirect_target(&ctx, callback, "token", token)?,
        )),
        _ => invalid(&ctx),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ResetBody {
    new_password: String,
    #[serde(default)]
    token: Option<String>,
}

fn invalid_token() -> ApiError {
    ApiError::bad_request(core::INVALID_TOKEN)
}

/// `POST /reset-password`.
async fn reset_password(shared: Arc<Reset>, ctx: Ctx) -> Result<Reply, ApiError> {
    let body: ResetBody = ctx.body()?;
    let token = body
        .token
        .filter(|t| !t.is_empty())
        .or_else(|| {
            ctx.query("token")
                .filter(|t| !t.is_empty())
                .map(str::to_owned)
        })
        .ok_or_else(invalid_token)?;
    check_length(&shared.opts, &body.new_password)?;
    let auth = ctx.auth();
    let store = ctx.store();
    // A cheap look first, so a made-up token costs no password hashing.
    let row = store
        .verification_by_identifier(&identifier(&token))
        .await?
        .ok_or_else(invalid_token)?;
    if row.expires_at < portcullis::time::now() {
        store.delete_verifications(&row.identifier).await?;
        return Err(invalid_token());
    }
    let Some(user) = store.user_by_id(&row.value).await? else {
        store.delete_verifications(&row.identifier).await?;
        return Err(ApiError::bad_request(core::USER_NOT_FOUND));
    };
    auth.check_new_password(&ctx, &body.new_password).await?;
    let hash = auth
        .password_hasher()
        .hash(&body.new_password)
        .await
        .map_err(hash_failed)?;

    // Token, password and (optionally) the revocation commit together. Deleting the row is
    // the race gate: only one transaction deletes it.
    let tx = ctx.begin().await?;
    let in_tx = tx.store();
    if !in_tx.consume_verification(&row).await? {
        return Err(invalid_token());
    }
    // Every other reset (and deletion) link of the user dies with this one.
    in_tx.revoke_user_tokens(&user.id).await?;
    match in_tx.credential_account(&user.id).await? {
        Some(account) => in_tx.set_password(&account.id, &hash).await?,
        None => {
            let account = Account::credential(auth.options().ids.generate(), &user.id, hash);
            in_tx.create_account(&account).await?;
        }
    }
    if shared.opts.revoke_sessions_on_password_reset {
        in_tx.delete_user_sessions(&user.id, None).await?;
    }
    tx.commit().await?;
    tracing::info!("password reset");
    // The owner proved the mailbox: a throttle an attacker ran up is over.
    auth.sign_in_throttle().clear(&user.id).await;
    if let Some(callback) = &shared.on_password_reset {
        callback(user).await;
    }
    Ok(Reply::json(json!({ "status": true })))
}
