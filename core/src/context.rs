//! The request context an endpoint or hook sees ([`Ctx`]), and what it answers ([`Reply`]).

use std::borrow::Cow;
use std::sync::Arc;

use http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::sync::OnceCell;

use crate::cookies::{append_set_cookie, SetCookie};
use crate::error::{codes, ApiError};
use crate::storage::{SessionAndUser, Store};
use crate::Auth;

/// Everything about one request: the engine, the matched route, input, and the lazily read
/// session. Cheap to clone; hooks and the endpoint share one.
#[derive(Clone)]
pub struct Ctx {
    inner: Arc<CtxInner>,
}

#[derive(Clone)]
pub(crate) struct CtxInner {
    pub(crate) auth: Auth,
    pub(crate) method: Method,
    pub(crate) route: Cow<'static, str>,
    pub(crate) path: String,
    pub(crate) params: Vec<(String, String)>,
    pub(crate) query: Vec<(String, String)>,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Option<serde_json::Value>,
    pub(crate) client_ip: Option<String>,
    pub(crate) via_http: bool,
    pub(crate) session: OnceCell<Option<SessionAndUser>>,
}

impl std::fmt::Debug for Ctx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ctx")
            .field("method", &self.inner.method)
            .field("route", &self.inner.route)
            .finish_non_exhaustive()
    }
}

impl Ctx {
    pub(crate) fn new(inner: CtxInner) -> Self {
        Self {
            inner: Arc::new(inner),
        }
    }

    /// The same context with a new body and/or headers (a before hook's rewrite). The session
    /// is read again if headers changed, since the cookie may have.
    pub(crate) fn rewritten(&self, body: Option<serde_json::Value>, headers: HeaderMap) -> Self {
        let mut inner = (*self.inner).clone();
        if let Some(body) = body {
            inner.body = Some(body);
        }
        if !headers.is_empty() {
            let mut last: Option<HeaderName> = None;
            for (name, value) in headers {
                let name = match name {
                    Some(n) => {
                        inner.headers.remove(&n);
                        last = Some(n.clone());
                        n
                    }
                    None => match &last {
                        Some(n) => n.clone(),
                        None => continue,
                    },
                };
                inner.headers.append(name, value);
            }
            inner.session = OnceCell::new();
        }
        Self {
            inner: Arc::new(inner),
        }
    }

    /// The engine.
    pub fn auth(&self) -> &Auth {
        &self.inner.auth
    }

    /// Typed storage helpers on the engine's database.
    pub fn store(&self) -> Store<'_> {
        self.inner.auth.store()
    }

    /// The HTTP method.
    pub fn method(&self) -> &Method {
        &self.inner.method
    }

    /// The matched endpoint's path pattern (`/reset-password/:token`).
    pub fn route(&self) -> &str {
        &self.inner.route
    }

    /// The request path relative to the base path (`/reset-password/abc`).
    pub fn path(&self) -> &str {
        &self.inner.path
    }

    /// A `:param` of the path.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.inner
            .params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The first value of query parameter `name`.
    pub fn query(&self, name: &str) -> Option<&str> {
        self.inner
            .query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// A query flag as Better Auth coerces it: present and non-empty means true (even
    /// `"false"`).
    pub fn query_flag(&self, name: &str) -> bool {
        self.query(name).is_some_and(|v| !v.is_empty())
    }

    /// Request headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.inner.headers
    }

    /// A request header as text.
    pub fn header(&self, name: impl header::AsHeaderName) -> Option<&str> {
        self.inner.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// A request cookie's value (percent-decoded).
    pub fn cookie(&self, name: &str) -> Option<Cow<'_, str>> {
        crate::cookies::get_cookie(&self.inner.headers, name)
    }

    /// The value of a signed cookie, if present and its signature verifies.
    pub fn signed_cookie(&self, name: &str) -> Option<String> {
        let raw = self.cookie(name)?;
        self.inner.auth.secret().unsign(&raw).map(str::to_owned)
    }

    /// The parsed body, if the request had one.
    pub fn body_json(&self) -> Option<&serde_json::Value> {
        self.inner.body.as_ref()
    }

    /// The body as `T`, or 400 `VALIDATION_ERROR` saying what does not fit.
    pub fn body<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        match &self.inner.body {
            Some(v @ serde_json::Value::Object(_)) => {
                T::deserialize(v).map_err(|e| ApiError::validation(format!("[body] {e}")))
            }
            Some(_) => Err(ApiError::validation(
                "[body] Invalid input: expected object",
            )),
            None => Err(ApiError::validation(
                "[body] Invalid input: expected object, received undefined",
            )),
        }
    }

    /// The body as `T`, treating a missing body as `{}`.
    pub fn body_or_empty<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        match &self.inner.body {
            None => T::deserialize(serde_json::json!({}))
                .map_err(|e| ApiError::validation(format!("[body] {e}"))),
            Some(_) => self.body(),
        }
    }

    /// The public URL of the API, base path included (`https://auth.example.com/api/auth`):
    /// what links in messages start with. It comes from the configured base URL; without
    /// one, from the request's `Host` header (as `http://`).
    pub fn base_url(&self) -> String {
        let options = self.inner.auth.options();
        let origin = match &options.base_url {
            Some(url) => url.clone(),
            None => format!(
                "http://{}",
                self.header(header::HOST).unwrap_or("localhost")
            ),
        };
        format!("{origin}{}", options.base_path)
    }

    /// The client's address as the engine determined it (socket, or a configured header).
    pub fn client_ip(&self) -> Option<&str> {
        self.inner.client_ip.as_deref()
    }

    /// The `User-Agent` header, or `""`.
    pub fn user_agent(&self) -> &str {
        self.header(header::USER_AGENT).unwrap_or("")
    }

    /// Whether the request came over HTTP (rather than a server-side API call).
    pub fn is_http(&self) -> bool {
        self.inner.via_http
    }

    /// The signed session token from the request's session cookie, if it verifies.
    pub fn session_token(&self) -> Option<String> {
        self.signed_cookie(&self.inner.auth.cookies().session_token)
    }

    /// The request's valid (unexpired) session with its user, read once per request.
    pub async fn session(&self) -> Result<Option<SessionAndUser>, ApiError> {
        let found = self
            .inner
            .session
            .get_or_try_init(|| async {
                let Some(token) = self.session_token() else {
                    return Ok(None);
                };
                let found = self.store().session_and_user(&token).await?;
                Ok::<_, ApiError>(found.filter(|s| s.session.expires_at > crate::time::now()))
            })
            .await?;
        Ok(found.clone())
    }

    /// The session, or 401 `UNAUTHORIZED`.
    pub async fn require_session(&self) -> Result<SessionAndUser, ApiError> {
        self.session().await?.ok_or_else(ApiError::unauthorized)
    }

    /// A session younger than `freshAge`, or 401 without a session / 403
    /// `SESSION_NOT_FRESH` with an old one.
    pub async fn require_fresh_session(&self) -> Result<SessionAndUser, ApiError> {
        let s = self.require_session().await?;
        let fresh_age = self.inner.auth.options().session.fresh_age;
        if !fresh_age.is_zero() {
            let age = crate::time::now() - s.session.created_at;
            if age.to_std().unwrap_or_default() >= fresh_age {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    codes::SESSION_NOT_FRESH,
                ));
            }
        }
        Ok(s)
    }
}

/// The body of a [`Reply`].
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    /// JSON (`content-type: application/json`).
    Json(serde_json::Value),
    /// HTML (`content-type: text/html; charset=utf-8`).
    Html(String),
    /// No body.
    Empty,
}

/// What an endpoint answers: status, headers (cookies included) and body, plus the session
/// it created, if any, for after hooks to see.
#[derive(Debug, Clone)]
pub struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Body,
    new_session: Option<Box<SessionAndUser>>,
}

impl Reply {
    /// 200 with a JSON body.
    pub fn json(value: impl Serialize) -> Self {
        match serde_json::to_value(value) {
            Ok(v) => Self::with_body(Body::Json(v)),
            Err(e) => {
                tracing::error!(error = %e, "response did not serialise");
                Self::from_error(&ApiError::internal())
            }
        }
    }

    /// 200 with an HTML body.
    pub fn html(html: impl Into<String>) -> Self {
        Self::with_body(Body::Html(html.into()))
    }

    /// 302 to `location`.
    pub fn redirect(location: &str) -> Self {
        let mut r = Self::with_body(Body::Empty).with_status(StatusCode::FOUND);
        if let Ok(v) = HeaderValue::from_str(location) {
            r.headers.insert(header::LOCATION, v);
        }
        r
    }

    /// This reply turned into a 302 to `location`: its headers (cookies) and the session it
    /// created are kept, its body is dropped.
    pub fn into_redirect(self, location: &str) -> Self {
        let mut redirect = Self::redirect(location);
        let mut last = None;
        for (name, value) in self.headers {
            let name = match name {
                Some(n) => {
                    last = Some(n.clone());
                    n
                }
                None => match &last {
                    Some(n) => n.clone(),
                    None => continue,
                },
            };
            if name != header::LOCATION {
                redirect.headers.append(name, value);
            }
        }
        redirect.new_session = self.new_session;
        redirect
    }

    fn with_body(body: Body) -> Self {
        Self {
            status: StatusCode::OK,
            headers: HeaderMap::new(),
            body,
            new_session: None,
        }
    }

    /// The reply an error renders to.
    pub fn from_error(err: &ApiError) -> Self {
        let mut r = Self::with_body(match err.body() {
            Some(b) => Body::Json(b),
            None => Body::Empty,
        })
        .with_status(err.status());
        for (k, v) in err.headers() {
            r.headers.append(k, v.clone());
        }
        r
    }

    /// Sets the status.
    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// Response headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// Response headers, to change.
    pub fn headers_mut(&mut self) -> &mut HeaderMap {
        &mut self.headers
    }

    /// Adds a `Set-Cookie` (replacing an earlier one of the same name in this reply).
    pub fn set_cookie(&mut self, cookie: &SetCookie) {
        append_set_cookie(&mut self.headers, cookie);
    }

    /// The `Set-Cookie` headers of this reply.
    pub fn set_cookies(&self) -> impl Iterator<Item = &str> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
    }

    /// The body.
    pub fn body(&self) -> &Body {
        &self.body
    }

    /// The JSON body, if it is JSON.
    pub fn json_body(&self) -> Option<&serde_json::Value> {
        match &self.body {
            Body::Json(v) => Some(v),
            _ => None,
        }
    }

    /// Replaces the body with JSON.
    pub fn set_json(&mut self, value: serde_json::Value) {
        self.body = Body::Json(value);
    }

    /// The JSON body as `T`.
    pub fn into_json<T: DeserializeOwned>(self) -> Result<T, ApiError> {
        let value = match self.body {
            Body::Json(v) => v,
            Body::Empty => serde_json::Value::Null,
            Body::Html(_) => return Err(ApiError::internal().with_message("reply is not JSON")),
        };
        serde_json::from_value(value).map_err(|e| {
            tracing::error!(error = %e, "reply does not have the expected shape");
            ApiError::internal()
        })
    }

    /// The session this request created (sign-in, sign-up), for after hooks.
    pub fn new_session(&self) -> Option<&SessionAndUser> {
        self.new_session.as_deref()
    }

    /// Records the session this request created.
    pub fn set_new_session(&mut self, session: Option<SessionAndUser>) {
        self.new_session = session.map(Box::new);
    }

    pub(crate) fn into_parts(self) -> (StatusCode, HeaderMap, Body) {
        (self.status, self.headers, self.body)
    }
}
