//! get-session, sign-out, and listing and revoking sessions.

use http::{Method, StatusCode};
use serde::Deserialize;
use serde_json::json;

use crate::context::{Ctx, Reply};
use crate::error::{codes, ApiError};
use crate::input::{Shape, Type};
use crate::plugin::Endpoint;
use crate::session_store::{Loaded, SessionStore as _};

pub(super) fn endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint::new(
            "getSession",
            &[Method::GET, Method::POST],
            "/get-session",
            get_session,
        )
        .no_store(),
        Endpoint::post("signOut", "/sign-out", sign_out).body_shape(
            Shape::object()
                .optional()
                .optional_field("callbackURL", Type::String)
                .optional_field("disableRedirect", Type::Boolean)
                .optional_field("state", Type::String),
        ),
        Endpoint::get("listSessions", "/list-sessions", list_sessions),
        Endpoint::post("revokeSession", "/revoke-session", revoke_session)
            .body_shape(Shape::object().field("token", Type::String)),
        Endpoint::post("revokeSessions", "/revoke-sessions", revoke_sessions),
        Endpoint::post(
            "revokeOtherSessions",
            "/revoke-other-sessions",
            revoke_other_sessions,
        ),
    ]
}

fn failed_to_get_session(err: impl std::fmt::Display) -> ApiError {
    tracing::error!(error = %err, "get-session failed");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        codes::FAILED_TO_GET_SESSION,
    )
}

/// `GET /get-session`: the session and its user, or `null`. A valid cookie cache answers
/// without a database read (unless `disableCookieCache`); a stale one is deleted. Extends the
/// session once it is `updateAge` old, unless the client asked not to be remembered or sent
/// `disableRefresh`; otherwise re-writes the cookie cache.
async fn get_session(ctx: Ctx) -> Result<Reply, ApiError> {
    if ctx.method() == Method::POST {
        return Err(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            codes::METHOD_NOT_ALLOWED_DEFER_SESSION_REQUIRED,
        ));
    }
    let auth = ctx.auth();
    let Some(token) = ctx.session_token() else {
        return Ok(Reply::json(serde_json::Value::Null));
    };
    let loaded = auth
        .load_session(&ctx, &token, !ctx.query_flag("disableCookieCache"))
        .await
        .map_err(failed_to_get_session)?;
    let (found, stale_cache) = match loaded {
        Loaded::Cached(cached) => return Ok(Reply::json(&cached)),
        Loaded::Stored { found, stale_cache } => (found, stale_cache),
    };
    let mut reply = Reply::json(serde_json::Value::Null);
    if stale_cache {
        for c in auth.cookie_cache_deletions(&ctx) {
            reply.set_cookie(&c);
        }
    }
    let store = ctx.store();
    let now = crate::time::now();
    let mut current = match found {
        Some(s) if s.session.expires_at > now => s,
        other => {
            if other.is_some() {
                if let Err(e) = auth.sessions().delete(store, &token).await {
                    tracing::warn!(error = %e, "could not delete an expired session");
                }
            }
            auth.expire_session_cookies(&ctx, &mut reply);
            return Ok(reply);
        }
    };
    let dont_remember = auth.has_dont_remember(&ctx);
    if ctx.query_flag("disableRefresh") || dont_remember {
        reply.set_json_of(&current);
        return Ok(reply);
    }
    if !auth.extension_due(&current.session, now) {
        auth.set_cookie_cache(&ctx, &mut reply, &current.session, &current.user, false);
        reply.set_json_of(&current);
        return Ok(reply);
    }
    let failed = || ApiError::new(StatusCode::UNAUTHORIZED, codes::FAILED_TO_GET_SESSION);
    let refused = match auth.extend_session(store, &token, now).await {
        Ok(Some(session)) => {
            current.session = session;
            None
        }
        Ok(None) => Some(failed()),
        Err(e) => Some(ApiError::from_storage(
            e,
            "session refresh failed",
            failed(),
        )),
    };
    if let Some(e) = refused {
        let mut reply = Reply::from_error(&e);
        auth.expire_session_cookies(&ctx, &mut reply);
        return Ok(reply);
    }
    auth.set_session_cookie(
        &ctx,
        &mut reply,
        &current.session,
        &current.user,
        Some(false),
    );
    reply.set_json_of(&current);
    Ok(reply)
}

/// `POST /sign-out`: deletes the session the cookie names (if any) and expires the cookies.
async fn sign_out(ctx: Ctx) -> Result<Reply, ApiError> {
    if let Some(token) = ctx.session_token() {
        ctx.auth().sessions().delete(ctx.store(), &token).await?;
    }
    let mut reply = Reply::json(json!({ "success": true }));
    ctx.auth().expire_session_cookies(&ctx, &mut reply);
    Ok(reply)
}

/// `GET /list-sessions`: the user's live sessions (needs a fresh session).
async fn list_sessions(ctx: Ctx) -> Result<Reply, ApiError> {
    let current = ctx.require_fresh_session().await?;
    let sessions = ctx.store().active_sessions(&current.user.id).await?;
    Ok(Reply::json(sessions))
}

#[derive(Deserialize)]
struct RevokeBody {
    token: String,
}

/// `POST /revoke-session {token}`: deletes one of the user's own sessions.
async fn revoke_session(ctx: Ctx) -> Result<Reply, ApiError> {
    let body: RevokeBody = ctx.body()?;
    let current = ctx.require_sensitive_session().await?;
    ctx.store()
        .delete_session_of(&current.user.id, &body.token)
        .await?;
    let mut reply = Reply::json(json!({ "status": true }));
    if body.token == current.session.token {
        ctx.auth().expire_session_cookies(&ctx, &mut reply);
    }
    Ok(reply)
}

/// `POST /revoke-sessions`: deletes every session of the user, this one included.
async fn revoke_sessions(ctx: Ctx) -> Result<Reply, ApiError> {
    let current = ctx.require_sensitive_session().await?;
    ctx.store()
        .delete_user_sessions(&current.user.id, None)
        .await?;
    let mut reply = Reply::json(json!({ "status": true }));
    ctx.auth().expire_session_cookies(&ctx, &mut reply);
    Ok(reply)
}

/// `POST /revoke-other-sessions`: deletes every session of the user but this one.
async fn revoke_other_sessions(ctx: Ctx) -> Result<Reply, ApiError> {
    let current = ctx.require_sensitive_session().await?;
    ctx.store()
        .delete_user_sessions(&current.user.id, Some(&current.session.token))
        .await?;
    Ok(Reply::json(json!({ "status": true })))
}
