//! update-user.

use http::StatusCode;
use serde_json::{json, Value};

use crate::context::{Ctx, Reply};
use crate::error::{codes, ApiError};
use crate::input::Shape;
use crate::plugin::Endpoint;
use crate::storage::Row;

pub(super) fn endpoints() -> Vec<Endpoint> {
    vec![Endpoint::post("updateUser", "/update-user", update_user).body_shape(Shape::record())]
}

/// Fields of `user` that only the engine writes.
const MANAGED: &[&str] = &["id", "email", "emailVerified", "createdAt", "updatedAt"];

/// `POST /update-user`: changes the name, image and client-writable additional fields of the
/// signed-in user. The email cannot change here.
async fn update_user(ctx: Ctx) -> Result<Reply, ApiError> {
    let body = match ctx.body_json() {
        Some(Value::Object(map)) => map.clone(),
        Some(Value::Array(_)) => return Err(ApiError::bad_request(codes::BODY_MUST_BE_AN_OBJECT)),
        _ => {
            return Err(ApiError::validation(
                "[body] Invalid input: expected object",
            ))
        }
    };
    // The reply rewrites the cookie cache: only from the database's word, or a revoked
    // session could renew its cache forever.
    let current = ctx.require_sensitive_session().await?;
    if body.contains_key("email") {
        return Err(ApiError::bad_request(codes::EMAIL_CAN_NOT_BE_UPDATED));
    }
    let auth = ctx.auth();
    let table = auth.schema().table("user").ok_or_else(ApiError::internal)?;
    let mut update = serde_json::Map::new();
    for (key, value) in body {
        if MANAGED.contains(&key.as_str()) {
            continue;
        }
        let Some(field) = table.field(&key) else {
            continue;
        };
        if !field.input {
            let truthy = !matches!(value, Value::Null | Value::Bool(false));
            if truthy {
                return Err(ApiError::bad_request(codes::FIELD_NOT_ALLOWED)
                    .with_message(format!("{key} is not allowed to be set")));
            }
            continue;
        }
        if value.is_null() && field.required {
            return Err(ApiError::validation(format!(
                "[body.{key}] Invalid input: expected a value"
            )));
        }
        update.insert(key, value);
    }
    if update.is_empty() {
        return Err(ApiError::without_code(
            StatusCode::BAD_REQUEST,
            "No fields to update",
        ));
    }
    let set =
        Row::from_json(table, update).map_err(|e| ApiError::validation(format!("[body] {e}")))?;
    let user = ctx
        .store()
        .update_user(&current.user.id, set)
        .await?
        .ok_or_else(|| ApiError::bad_request(codes::USER_NOT_FOUND))?;
    let mut reply = Reply::json(json!({ "status": true }));
    // The cookie cache now carries the new user.
    auth.set_session_cookie(&ctx, &mut reply, &current.session, &user, None);
    Ok(reply)
}
