//! Account management: `/list-accounts`, `/update-session`, `/verify-password`.

use http::StatusCode;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::context::{Ctx, Reply};
use crate::error::{codes, ApiError};
use crate::input::{Shape, Type};
use crate::plugin::Endpoint;
use crate::storage::Row;
use crate::Auth;

pub(super) fn endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint::get("listUserAccounts", "/list-accounts", list_accounts),
        Endpoint::post("updateSession", "/update-session", update_session)
            .body_shape(Shape::record()),
        Endpoint::post("verifyPassword", "/verify-password", verify_password)
            .body_shape(Shape::object().field("password", Type::String)),
    ]
}

/// `GET /list-accounts`: the user's linked accounts, without tokens or password.
async fn list_accounts(ctx: Ctx) -> Result<Reply, ApiError> {
    let current = ctx.require_session().await?;
    let accounts = ctx.store().accounts_of(&current.user.id).await?;
    let out: Vec<Value> = accounts
        .into_iter()
        .map(|a| {
            let scopes: Vec<&str> = a
                .scope
                .as_deref()
                .map(|s| {
                    s.split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .collect()
                })
                .unwrap_or_default();
            // Better Auth's key order: the row's fields as its adapter reads them (added
            // fields after the core ones, `id` last), then `scopes`.
            let mut map = serde_json::Map::new();
            map.insert("accountId".into(), a.account_id.into());
            map.insert("providerId".into(), a.provider_id.into());
            map.insert("userId".into(), a.user_id.into());
            map.insert(
                "createdAt".into(),
                crate::time::format(&a.created_at).into(),
            );
            map.insert(
                "updatedAt".into(),
                crate::time::format(&a.updated_at).into(),
            );
            map.extend(a.extra);
            map.insert("id".into(), a.id.into());
            map.insert("scopes".into(), json!(scopes));
            Value::Object(map)
        })
        .collect();
    Ok(Reply::json(out))
}

/// `POST /update-session`: changes the client-writable additional fields of the session.
async fn update_session(ctx: Ctx) -> Result<Reply, ApiError> {
    let Some(Value::Object(body)) = ctx.body_json().cloned() else {
        return Err(ApiError::bad_request(codes::BODY_MUST_BE_AN_OBJECT));
    };
    let current = ctx.require_session().await?;
    let auth = ctx.auth();
    let table = auth
        .schema()
        .table("session")
        .ok_or_else(ApiError::internal)?;
    const MANAGED: &[&str] = &[
        "id",
        "token",
        "userId",
        "expiresAt",
        "createdAt",
        "updatedAt",
        "ipAddress",
        "userAgent",
    ];
    let mut update = serde_json::Map::new();
    for (key, value) in body {
        match table.field(&key) {
            Some(f) if f.input && !MANAGED.contains(&key.as_str()) => {
                update.insert(key, value);
            }
            Some(f)
                if !f.input
                    && !MANAGED.contains(&key.as_str())
                    && !matches!(value, Value::Null | Value::Bool(false)) =>
            {
                return Err(ApiError::bad_request(codes::FIELD_NOT_ALLOWED)
                    .with_message(format!("{key} is not allowed to be set")));
            }
            _ => {}
        }
    }
    if update.is_empty() {
        return Err(ApiError::without_code(
            StatusCode::BAD_REQUEST,
            "No fields to update",
        ));
    }
    let mut set =
        Row::from_json(table, update).map_err(|e| ApiError::validation(format!("[body] {e}")))?;
    set.set("updatedAt", crate::time::now());
    let Some(session) = ctx
        .auth()
        .update_session(ctx.store(), &current.session.token, set)
        .await?
    else {
        // A cached session whose row is gone was revoked: fail closed, as Better Auth does.
        let mut reply = Reply::from_error(&ApiError::new(
            StatusCode::UNAUTHORIZED,
            codes::FAILED_TO_GET_SESSION,
        ));
        auth.expire_session_cookies(&ctx, &mut reply);
        return Ok(reply);
    };
    let mut reply = Reply::json(json!({ "session": session }));
    auth.set_session_cookie(&ctx, &mut reply, &session, &current.user, None);
    Ok(reply)
}

#[derive(Deserialize)]
struct PasswordBody {
    password: String,
}

/// Checks `password` against the user's credential account: 400 `CREDENTIAL_ACCOUNT_NOT_FOUND`
/// without one, 400 `INVALID_PASSWORD` when it does not match.
pub(crate) async fn check_password(
    ctx: &Ctx,
    user_id: &str,
    password: &str,
) -> Result<(), ApiError> {
    match ctx.auth().verify_user_password(user_id, password).await? {
        PasswordCheck::Matches => Ok(()),
        PasswordCheck::Wrong => Err(ApiError::bad_request(codes::INVALID_PASSWORD)),
        PasswordCheck::NoPassword => {
            Err(ApiError::bad_request(codes::CREDENTIAL_ACCOUNT_NOT_FOUND))
        }
    }
}

/// The outcome of [`Auth::verify_user_password`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordCheck {
    /// The password is the user's.
    Matches,
    /// The user has a password and this is not it.
    Wrong,
    /// The user has no password (signed up through a social provider, a magic link, ...).
    NoPassword,
}

impl Auth {
    /// Checks `password` against the password of `user_id`'s credential account, off the
    /// async workers. For endpoints that ask for the password again before a sensitive change.
    pub async fn verify_user_password(
        &self,
        user_id: &str,
        password: &str,
    ) -> Result<PasswordCheck, ApiError> {
        let Some(hash) = self
            .store()
            .credential_account(user_id)
            .await?
            .and_then(|a| a.password)
        else {
            return Ok(PasswordCheck::NoPassword);
        };
        let verified = self
            .password_hasher()
            .verify(&hash, password)
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "password verification failed");
                ApiError::internal()
            })?;
        Ok(if verified.ok {
            PasswordCheck::Matches
        } else {
            PasswordCheck::Wrong
        })
    }
}

/// `POST /verify-password {password}`: whether the signed-in user's password is this one.
async fn verify_password(ctx: Ctx) -> Result<Reply, ApiError> {
    let body: PasswordBody = ctx.body()?;
    // The session first, as Better Auth's middleware runs before its handler.
    let current = ctx.require_sensitive_session().await?;
    if body.password.encode_utf16().count() > 128 {
        return Err(ApiError::bad_request(codes::PASSWORD_TOO_LONG));
    }
    check_password(&ctx, &current.user.id, &body.password).await?;
    Ok(Reply::json(json!({ "status": true })))
}
