//! The server-side API: every endpoint, plugins' included, as a Rust call through the same
//! before/after hooks as HTTP (but without rate limiting and request/response hooks, as in
//! Better Auth).

use std::borrow::Cow;

use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::context::Reply;
use crate::error::{codes, ApiError};
use crate::storage::{Session, SessionAndUser};
use crate::Auth;

/// A call of one endpoint by its API name (`signInEmail`, `getSession`, ...).
#[derive(Debug, Clone)]
pub struct ApiRequest {
    name: Cow<'static, str>,
    method: Option<Method>,
    body: Option<serde_json::Value>,
    query: Vec<(String, String)>,
    params: Vec<(String, String)>,
    headers: HeaderMap,
}

impl ApiRequest {
    /// A call of the endpoint named `name`.
    pub fn new(name: impl Into<Cow<'static, str>>) -> Self {
        Self {
            name: name.into(),
            method: None,
            body: None,
            query: Vec::new(),
            params: Vec::new(),
            headers: HeaderMap::new(),
        }
    }

    /// The body, serialised to JSON.
    pub fn body(mut self, body: impl Serialize) -> Self {
        self.body = serde_json::to_value(body).ok();
        self
    }

    /// Adds a query parameter.
    pub fn query(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.query.push((key.into(), value.into()));
        self
    }

    /// Sets a path parameter (`token` of `/reset-password/:token`).
    pub fn param(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.params.push((key.into(), value.into()));
        self
    }

    /// Uses these request headers (the cookie, above all).
    pub fn headers(mut self, headers: HeaderMap) -> Self {
        self.headers = headers;
        self
    }

    /// Adds one header.
    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.append(name, value);
        self
    }

    /// Picks the method for endpoints that answer several (the first one by default).
    pub fn method(mut self, method: Method) -> Self {
        self.method = Some(method);
        self
    }
}

/// Server-side calls on an [`Auth`]. Get one with [`Auth::api`].
#[derive(Debug, Clone, Copy)]
pub struct Api<'a> {
    auth: &'a Auth,
}

impl<'a> Api<'a> {
    pub(crate) fn new(auth: &'a Auth) -> Self {
        Self { auth }
    }

    /// Calls an endpoint and returns the full reply (status, headers with `Set-Cookie`, body).
    /// An error status comes back as `Err`.
    pub async fn call(&self, req: ApiRequest) -> Result<Reply, ApiError> {
        let endpoint = self.auth.endpoint_by_name(&req.name).ok_or_else(|| {
            ApiError::new(StatusCode::NOT_FOUND, codes::NOT_FOUND)
                .with_message(format!("no endpoint named `{}`", req.name))
        })?;
        let method = req
            .method
            .or_else(|| endpoint.methods.first().cloned())
            .unwrap_or(Method::GET);
        let ctx = self.auth.api_ctx(
            endpoint,
            method,
            req.body,
            req.query,
            req.params,
            req.headers,
        );
        let reply = self.auth.run(ctx, endpoint).await?;
        if reply.status().is_client_error() || reply.status().is_server_error() {
            return Err(error_from_reply(&reply));
        }
        Ok(reply)
    }

    /// Calls an endpoint and decodes its JSON body as `T`.
    pub async fn call_json<T: DeserializeOwned>(&self, req: ApiRequest) -> Result<T, ApiError> {
        self.call(req).await?.into_json()
    }

    /// The session the `Cookie` in `headers` names, with its user; `None` without one.
    pub async fn get_session(
        &self,
        headers: &HeaderMap,
    ) -> Result<Option<SessionAndUser>, ApiError> {
        self.call_json(ApiRequest::new("getSession").headers(headers.clone()))
            .await
    }

    /// Signs the session out; the reply carries the cookie deletions.
    pub async fn sign_out(&self, headers: &HeaderMap) -> Result<Reply, ApiError> {
        self.call(ApiRequest::new("signOut").headers(headers.clone()))
            .await
    }

    /// The signed-in user's live sessions.
    pub async fn list_sessions(&self, headers: &HeaderMap) -> Result<Vec<Session>, ApiError> {
        self.call_json(ApiRequest::new("listSessions").headers(headers.clone()))
            .await
    }

    /// Revokes one of the signed-in user's sessions by token.
    pub async fn revoke_session(&self, headers: &HeaderMap, token: &str) -> Result<(), ApiError> {
        self.call(
            ApiRequest::new("revokeSession")
                .headers(headers.clone())
                .body(serde_json::json!({ "token": token })),
        )
        .await
        .map(|_| ())
    }

    /// Mails a verification link to `email` (the signed-in user's, when `headers` carry a
    /// session cookie), leading to `callback_url` afterwards.
    pub async fn send_verification_email(
        &self,
        headers: &HeaderMap,
        email: &str,
        callback_url: Option<&str>,
    ) -> Result<(), ApiError> {
        let mut body = serde_json::json!({ "email": email });
        if let Some(cb) = callback_url {
            body["callbackURL"] = cb.into();
        }
        self.call(
            ApiRequest::new("sendVerificationEmail")
                .headers(headers.clone())
                .body(body),
        )
        .await
        .map(|_| ())
    }

    /// Verifies an email with the token from a verification link. The reply carries the
    /// session cookie when `autoSignInAfterVerification` signed the user in.
    pub async fn verify_email(&self, token: &str) -> Result<Reply, ApiError> {
        self.call(ApiRequest::new("verifyEmail").query("token", token))
            .await
    }

    /// Asks to change the signed-in user's email address to `new_email` (see
    /// [`crate::change_email`]); the link, when one is mailed, leads to `callback_url`.
    pub async fn change_email(
        &self,
        headers: &HeaderMap,
        new_email: &str,
        callback_url: Option<&str>,
    ) -> Result<Reply, ApiError> {
        let mut body = serde_json::json!({ "newEmail": new_email });
        if let Some(cb) = callback_url {
            body["callbackURL"] = cb.into();
        }
        self.call(
            ApiRequest::new("changeEmail")
                .headers(headers.clone())
                .body(body),
        )
        .await
    }

    /// Deletes the signed-in user's account, or mails the link that does (see
    /// [`crate::delete_user`]); `body` is `{password?, token?, callbackURL?}`. The reply
    /// carries the cookie deletions.
    pub async fn delete_user(
        &self,
        headers: &HeaderMap,
        body: serde_json::Value,
    ) -> Result<Reply, ApiError> {
        self.call(
            ApiRequest::new("deleteUser")
                .headers(headers.clone())
                .body(body),
        )
        .await
    }

    /// Changes the signed-in user's name, image or additional fields.
    pub async fn update_user(
        &self,
        headers: &HeaderMap,
        fields: serde_json::Value,
    ) -> Result<(), ApiError> {
        self.call(
            ApiRequest::new("updateUser")
                .headers(headers.clone())
                .body(fields),
        )
        .await
        .map(|_| ())
    }
}

fn error_from_reply(reply: &Reply) -> ApiError {
    let body = reply.json_body();
    let message = body
        .and_then(|b| b.get("message"))
        .and_then(|m| m.as_str())
        .unwrap_or_default()
        .to_owned();
    let code = body
        .and_then(|b| b.get("code"))
        .and_then(|c| c.as_str())
        .map(str::to_owned);
    let mut err = match code {
        Some(code) => ApiError::new(reply.status(), codes::BAD_REQUEST)
            .with_code(code)
            .with_message(message),
        None if body.is_some() => ApiError::without_code(reply.status(), message),
        None => ApiError::empty(reply.status()),
    };
    for (k, v) in reply.headers() {
        err = err.with_header(k.clone(), v.clone());
    }
    err
}
