//! The request context an endpoint or hook sees ([`Ctx`]), and what it answers ([`Reply`]).

use std::borrow::Cow;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::sync::OnceCell;

use crate::cookies::{append_set_cookie, SetCookie};
use crate::error::{codes, ApiError};
use crate::session_store::{Loaded, SessionStore as _};
use crate::storage::{SessionAndUser, StorageError, Store, Tx};
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
    pub(crate) session: OnceCell<Resolved>,
    pub(crate) sensitive_session: OnceCell<Option<SessionAndUser>>,
    /// What every copy of this request's context shares (a before hook's rewrite included).
    pub(crate) shared: Arc<Shared>,
}

/// The mutable state of one request, shared by its rewritten copies: one allocation.
#[derive(Default)]
pub(crate) struct Shared {
    /// `Set-Cookie`s decided while reading the session, merged into the reply by the
    /// pipeline.
    pending_cookies: Mutex<HeaderMap>,
    /// What the session read left to write (an expired row to delete, a session to extend),
    /// done by the pipeline once the handler and its hooks are through: see
    /// [`Ctx::settle_session`].
    settle: Mutex<Option<Settle>>,
    /// Set when a fresh-session check refused the session it read (Better Auth's middleware
    /// refusing, rather than its handler).
    session_refused: std::sync::atomic::AtomicBool,
    /// Plugins' values for this request: [`Ctx::request_local`].
    locals: Mutex<http::Extensions>,
}

impl Shared {
    fn forget_session_read(&self) {
        self.pending_cookies
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        *self.settle.lock().unwrap_or_else(|e| e.into_inner()) = None;
        self.session_refused
            .store(false, std::sync::atomic::Ordering::Relaxed);
    }
}

/// The writes a session read decided on, kept out of the read itself so that the read never
/// writes (a database hook reading the session inside them, or a handler holding a
/// transaction, would otherwise wait on itself).
#[derive(Debug, Clone)]
pub(crate) enum Settle {
    /// The session row exists but has expired: delete it.
    DeleteExpired(String),
    /// The session is `updateAge` old: extend it and re-set its cookie.
    Extend(Box<SessionAndUser>),
}

/// A session read: what was found, and whether it came from the cookie cache.
#[derive(Clone)]
pub(crate) struct Resolved {
    found: Option<SessionAndUser>,
    from_cache: bool,
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
            inner.sensitive_session = OnceCell::new();
            // What the read of the old cookie decided (its cookies to set, its row to extend
            // or delete) is not for the session the new headers carry.
            self.inner.shared.forget_session_read();
        }
        Self {
            inner: Arc::new(inner),
        }
    }

    /// The engine.
    pub fn auth(&self) -> &Auth {
        &self.inner.auth
    }

    /// Typed storage helpers on the engine's database; database hooks see this request.
    pub fn store(&self) -> Store<'_> {
        self.inner.auth.store_for(Some(self))
    }

    /// Starts a transaction on the engine's database; database hooks see this request, and
    /// after hooks run once it commits.
    pub async fn begin(&self) -> Result<Tx<'_>, StorageError> {
        self.inner.auth.begin_for(Some(self)).await
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

    pub(crate) fn query_pairs(&self) -> &[(String, String)] {
        &self.inner.query
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

    /// The client's address, what a new session records: with address headers configured,
    /// the one address they carry (`None` when none holds exactly one, as Better Auth records
    /// `""`), never the proxy's socket; without them, the socket's. (The rate limiter falls
    /// back to the socket either way.)
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

    /// This request's value of type `T`, made with `T::default()` on first use: what a
    /// plugin's hooks (request hooks and database hooks alike) and endpoint share for the
    /// length of one request, such as the sessions it created. The type is the key: use a
    /// newtype private to your crate (`struct Mine(Mutex<Vec<String>>)`), never a public
    /// type another plugin could name too. A server-side call (`ctx.auth().api()`) made while
    /// handling the request is a request of its own, with its own values.
    pub fn request_local<T: Default + Send + Sync + 'static>(&self) -> Arc<T> {
        let mut locals = self
            .inner
            .shared
            .locals
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(found) = locals.get::<Arc<T>>() {
            return found.clone();
        }
        let made = Arc::new(T::default());
        locals.insert(made.clone());
        made
    }

    /// The signed session token from the request's session cookie, if it verifies.
    pub fn session_token(&self) -> Option<String> {
        self.signed_cookie(&self.inner.auth.cookies().session_token)
    }

    /// The request's valid (unexpired) session with its user, read once per request. With the
    /// cookie cache on, a valid `session_data` cookie answers without a database read (unless
    /// the request says `disableCookieCache`); a stale or forged one is deleted and the
    /// database read instead, and a database read writes a fresh cache.
    pub async fn session(&self) -> Result<Option<SessionAndUser>, ApiError> {
        if let Some(found) = self.inner.sensitive_session.get() {
            return Ok(found.clone());
        }
        let resolved = self
            .inner
            .session
            .get_or_try_init(|| self.resolve_session(true))
            .await?;
        Ok(resolved.found.clone())
    }

    /// The session as the database has it, never from the cookie cache: what sensitive
    /// endpoints (revoking sessions, changing the password, deleting the user) must act on,
    /// so a session revoked elsewhere is gone for them at once. Read once per request.
    pub async fn sensitive_session(&self) -> Result<Option<SessionAndUser>, ApiError> {
        let found = self
            .inner
            .sensitive_session
            .get_or_try_init(|| async {
                if let Some(r) = self.inner.session.get() {
                    if !r.from_cache {
                        return Ok(r.found.clone());
                    }
                }
                self.resolve_session(false).await.map(|r| r.found)
            })
            .await?;
        Ok(found.clone())
    }

    async fn resolve_session(&self, cache_allowed: bool) -> Result<Resolved, ApiError> {
        let Some(token) = self.session_token() else {
            return Ok(Resolved {
                found: None,
                from_cache: false,
            });
        };
        let auth = &self.inner.auth;
        // With the cache off (the default) none of its work is done: this is get-session's
        // hot path.
        let cache_on = auth.cookie_cache().options.enabled;
        let use_cache = cache_allowed && !self.query_flag("disableCookieCache");
        let (read, stale_cache) = match auth.load_session(self, &token, use_cache).await? {
            Loaded::Cached(s) => {
                return Ok(Resolved {
                    found: Some(s),
                    from_cache: true,
                })
            }
            Loaded::Stored { found, stale_cache } => (found, stale_cache),
        };
        if stale_cache {
            for c in auth.cookie_cache_deletions(self) {
                self.add_pending_cookie(&c);
            }
        }
        let now = crate::time::now();
        // Better Auth's session middleware is its get-session: a dead session's row goes and
        // the client is told to drop its cookies, and a session `updateAge` old is extended.
        // The writes wait for `settle_session`.
        let found = match read {
            Some(s) if s.session.expires_at > now => Some(s),
            other => {
                if other.is_some() {
                    self.set_settle(Settle::DeleteExpired(token.clone()));
                }
                if self.inner.via_http {
                    let mut expired = Reply::json(serde_json::Value::Null);
                    auth.expire_session_cookies(self, &mut expired);
                    self.add_pending_cookies_of(&expired);
                }
                None
            }
        };
        if let Some(s) = &found {
            if auth.extension_due(&s.session, now)
                && self.inner.via_http
                && !self.query_flag("disableRefresh")
                && !auth.has_dont_remember(self)
            {
                self.set_settle(Settle::Extend(Box::new(s.clone())));
            }
        }
        if let (true, Some(s)) = (cache_on, &found) {
            if !self.query_flag("disableRefresh") && !auth.has_dont_remember(self) {
                for c in auth.cookie_cache_cookies(self, &s.session, &s.user, false) {
                    self.add_pending_cookie(&c);
                }
            }
        }
        Ok(Resolved {
            found,
            from_cache: false,
        })
    }

    fn set_settle(&self, settle: Settle) {
        *self
            .inner
            .shared
            .settle
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(settle);
    }

    /// Does what the request's session read left to write, once: deletes the expired row it
    /// found, or extends the session it found `updateAge` old and re-sets its cookie (unless the
    /// request removed or replaced that session meanwhile: the update then finds no row). A
    /// failed write is logged; the answer stands.
    ///
    /// Better Auth merges its session middleware's cookies into the endpoint's answer one by
    /// one with `Headers.set`, so an answer (or a handler's error) keeps only the last of them
    /// (the extension's cookie, not the deletion of a stray cache cookie before it), while the
    /// middleware's own refusal (a session not fresh) carries them all.
    pub(crate) async fn settle_session(&self) {
        let answer_ok = !self
            .inner
            .shared
            .session_refused
            .load(std::sync::atomic::Ordering::Relaxed);
        let Some(settle) = self
            .inner
            .shared
            .settle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        else {
            return;
        };
        let store = self.store();
        match settle {
            Settle::DeleteExpired(token) => {
                let deleted = self.inner.auth.sessions().delete(store, &token).await;
                if let Err(e) = deleted {
                    tracing::warn!(error = %e, "could not delete an expired session");
                }
            }
            Settle::Extend(current) => {
                let auth = &self.inner.auth;
                if answer_ok {
                    self.drop_pending_cache_deletions();
                }
                let extended = auth
                    .extend_session(store, &current.session.token, crate::time::now())
                    .await;
                match extended {
                    Ok(Some(session)) => {
                        let mut refreshed = Reply::json(serde_json::Value::Null);
                        auth.set_session_cookie(
                            self,
                            &mut refreshed,
                            &session,
                            &current.user,
                            Some(false),
                        );
                        self.add_pending_cookies_of(&refreshed);
                    }
                    Ok(None) => {}
                    Err(e) => tracing::warn!(error = %e, "could not extend a session"),
                }
            }
        }
    }

    fn drop_pending_cache_deletions(&self) {
        let cache = self.inner.auth.cookies().session_data.clone();
        let mut pending = self
            .inner
            .shared
            .pending_cookies
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let kept: Vec<HeaderValue> = pending
            .get_all(header::SET_COOKIE)
            .iter()
            .filter(|v| !v.as_bytes().starts_with(cache.as_bytes()))
            .cloned()
            .collect();
        pending.remove(header::SET_COOKIE);
        for v in kept {
            pending.append(header::SET_COOKIE, v);
        }
    }

    /// The session, or 401 `UNAUTHORIZED`.
    pub async fn require_session(&self) -> Result<SessionAndUser, ApiError> {
        self.session().await?.ok_or_else(ApiError::unauthorized)
    }

    /// The session as the database has it ([`Ctx::sensitive_session`]), or 401
    /// `UNAUTHORIZED`: Better Auth's `sensitiveSessionMiddleware`.
    pub async fn require_sensitive_session(&self) -> Result<SessionAndUser, ApiError> {
        self.sensitive_session()
            .await?
            .ok_or_else(ApiError::unauthorized)
    }

    /// Adds a `Set-Cookie` the pipeline merges into this request's reply, unless the reply sets
    /// (or deletes) that cookie itself.
    pub(crate) fn add_pending_cookie(&self, cookie: &SetCookie) {
        let mut pending = self
            .inner
            .shared
            .pending_cookies
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        append_set_cookie(&mut pending, cookie);
    }

    /// Adds every `Set-Cookie` of `reply` (one the session read built its cookies on) to the
    /// pending ones, in order.
    fn add_pending_cookies_of(&self, reply: &Reply) {
        let mut pending = self
            .inner
            .shared
            .pending_cookies
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        for v in reply.headers().get_all(header::SET_COOKIE) {
            pending.append(header::SET_COOKIE, v.clone());
        }
    }

    /// Moves the pending cookies into `reply`, before its own: a cookie the reply sets wins,
    /// and a deletion in the reply also drops pending chunks of that cookie.
    pub(crate) fn apply_pending_cookies(&self, reply: &mut Reply) {
        let pending: Vec<HeaderValue> = {
            let mut p = self
                .inner
                .shared
                .pending_cookies
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            let all = p.get_all(header::SET_COOKIE).iter().cloned().collect();
            p.clear();
            all
        };
        if pending.is_empty() {
            return;
        }
        let own: Vec<HeaderValue> = reply
            .headers
            .get_all(header::SET_COOKIE)
            .iter()
            .cloned()
            .collect();
        let name_of = |v: &HeaderValue| -> String {
            let b = v.as_bytes();
            let end = b.iter().position(|&c| c == b'=').unwrap_or(b.len());
            String::from_utf8_lossy(&b[..end]).into_owned()
        };
        let own_names: Vec<String> = own.iter().map(name_of).collect();
        let own_deleted: Vec<String> = own
            .iter()
            .filter(|v| {
                let text = v.to_str().unwrap_or_default();
                text.contains("=;") && text.contains("; Max-Age=0")
            })
            .map(|v| format!("{}.", name_of(v)))
            .collect();
        reply.headers.remove(header::SET_COOKIE);
        for v in pending {
            let n = name_of(&v);
            if own_names.contains(&n) || own_deleted.iter().any(|p| n.starts_with(p.as_str())) {
                continue;
            }
            reply.headers.append(header::SET_COOKIE, v);
        }
        for v in own {
            reply.headers.append(header::SET_COOKIE, v);
        }
    }

    /// A session younger than `freshAge`, or 401 without a session / 403
    /// `SESSION_NOT_FRESH` with an old one.
    pub async fn require_fresh_session(&self) -> Result<SessionAndUser, ApiError> {
        // Fresh-session endpoints (list-sessions answers every session token) take the
        // database's word, not the cookie cache's.
        let s = self.require_sensitive_session().await?;
        let fresh_age = self.inner.auth.options().session.fresh_age;
        if !fresh_age.is_zero() {
            let age = crate::time::now() - s.session.created_at;
            if age.to_std().unwrap_or_default() >= fresh_age {
                self.inner
                    .shared
                    .session_refused
                    .store(true, std::sync::atomic::Ordering::Relaxed);
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    codes::SESSION_NOT_FRESH,
                ));
            }
        }
        Ok(s)
    }
}

const JSON: &str = "application/json";

/// The body of a [`Reply`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
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
    body: Content,
    new_session: Option<Box<SessionAndUser>>,
}

/// A reply's body as it is held: JSON an endpoint answered is serialised once, straight to
/// bytes, and parsed back into a [`Body`] only if a hook or caller looks at it; the response
/// then goes out as those bytes. (Building a `serde_json::Value` for every reply and
/// serialising that cost get-session about a fifth of its CPU.)
#[derive(Debug, Clone)]
enum Content {
    /// Serialised JSON; `parsed` is filled on first look.
    Json {
        bytes: Bytes,
        parsed: std::sync::OnceLock<Body>,
    },
    /// A body held as such.
    Body(Body),
}

/// Reads back JSON this process serialised: without the parser's nesting limit (the value had
/// none when it was built; its depth is bounded by the request parser's limit on what was
/// stored, plus the reply's own levels) and with floats read back exactly.
fn read_back<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    de.disable_recursion_limit();
    let value = T::deserialize(&mut de)?;
    de.end()?;
    Ok(value)
}

impl Content {
    fn body(&self) -> &Body {
        match self {
            Content::Json { bytes, parsed } => parsed.get_or_init(|| {
                Body::Json(read_back(bytes).unwrap_or_else(|e| {
                    // The bytes came out of serde_json, so this does not happen.
                    tracing::error!(error = %e, "a serialised reply did not parse back");
                    serde_json::Value::Null
                }))
            }),
            Content::Body(b) => b,
        }
    }
}

impl Reply {
    /// 200 with a JSON body.
    pub fn json(value: impl Serialize) -> Self {
        let mut reply = Self::with_body(Body::Empty);
        reply.set_json_of(&value);
        reply
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
        // Better Auth's redirects (better-call's) are labelled JSON, with no body.
        r.headers
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(JSON));
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
            body: Content::Body(body),
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
        if err.has_empty_body() {
            // Better Auth (better-call) labels an endpoint's body-less error as JSON.
            r.headers
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(JSON));
        }
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
        self.body.body()
    }

    /// The JSON body, if it is JSON.
    pub fn json_body(&self) -> Option<&serde_json::Value> {
        match self.body() {
            Body::Json(v) => Some(v),
            _ => None,
        }
    }

    /// Replaces the body with JSON.
    pub fn set_json(&mut self, value: serde_json::Value) {
        self.body = Content::Body(Body::Json(value));
    }

    /// Replaces the body with `value` as JSON, serialised now (cheaper than
    /// [`Reply::set_json`] with a `serde_json::Value` built for it). A value that does not
    /// serialise makes the whole reply a plain 500 (headers and cookies set so far dropped).
    pub fn set_json_of(&mut self, value: &impl Serialize) {
        match serde_json::to_vec(value) {
            Ok(bytes) => {
                self.body = Content::Json {
                    bytes: Bytes::from(bytes),
                    parsed: std::sync::OnceLock::new(),
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "response did not serialise");
                *self = Self::from_error(&ApiError::internal());
            }
        }
    }

    /// The JSON body as `T`.
    pub fn into_json<T: DeserializeOwned>(self) -> Result<T, ApiError> {
        let shaped = match self.body {
            Content::Json { bytes, .. } => read_back(&bytes),
            Content::Body(Body::Json(v)) => serde_json::from_value(v),
            Content::Body(Body::Empty) => serde_json::from_value(serde_json::Value::Null),
            Content::Body(Body::Html(_)) => {
                return Err(ApiError::internal().with_message("reply is not JSON"))
            }
        };
        shaped.map_err(|e| {
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

    /// Status, headers and the body's bytes with its content type (`None` for no body).
    pub(crate) fn into_wire(self) -> (StatusCode, HeaderMap, Option<&'static str>, Bytes) {
        let (kind, bytes) = match self.body {
            Content::Json { bytes, .. } => (Some(JSON), bytes),
            Content::Body(Body::Json(v)) => (
                Some(JSON),
                Bytes::from(serde_json::to_vec(&v).unwrap_or_else(|_| b"null".to_vec())),
            ),
            Content::Body(Body::Html(h)) => (Some("text/html; charset=utf-8"), Bytes::from(h)),
            Content::Body(Body::Empty) => (None, Bytes::new()),
        };
        (self.status, self.headers, kind, bytes)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use http_body_util::BodyExt as _;

    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Shape {
        user_id: &'static str,
        tags: Vec<u8>,
        note: Option<&'static str>,
    }

    async fn wire(reply: Reply) -> (StatusCode, Option<String>, Vec<u8>) {
        let res = crate::auth::render(reply);
        let kind = res
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_owned());
        let status = res.status();
        let body = res.into_body().collect().await.unwrap().to_bytes();
        (status, kind, body.to_vec())
    }

    /// A reply built from a serialisable value reads, converts and goes out exactly as one
    /// built from the same value as a `serde_json::Value`.
    #[tokio::test]
    async fn json_replies_read_and_render_like_values() {
        let shape = Shape {
            user_id: "u\"1",
            tags: vec![1, 2],
            note: None,
        };
        let value = serde_json::to_value(&shape).unwrap();
        let lazy = Reply::json(&shape);
        assert_eq!(lazy.json_body(), Some(&value));
        assert_eq!(lazy.body(), &Body::Json(value.clone()));
        let mut eager = Reply::json(serde_json::Value::Null);
        eager.set_json(value.clone());
        assert_eq!(wire(lazy.clone()).await, wire(eager).await);
        let (status, kind, bytes) = wire(lazy.clone()).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(kind.as_deref(), Some("application/json"));
        assert_eq!(
            bytes,
            br#"{"userId":"u\"1","tags":[1,2],"note":null}"#.to_vec()
        );
        // Field order is the struct's, as serde_json's preserve_order keeps it.
        assert_eq!(lazy.into_json::<serde_json::Value>().unwrap(), value);

        // Replacing the body drops the serialised one.
        let mut replaced = Reply::json(&shape);
        replaced.set_json(serde_json::json!({ "replaced": true }));
        assert_eq!(wire(replaced).await.2, br#"{"replaced":true}"#.to_vec());
        let mut again = Reply::html("<p>x</p>");
        again.set_json_of(&shape);
        let (_, kind, bytes) = wire(again).await;
        assert_eq!(kind.as_deref(), Some("application/json"));
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&bytes).unwrap(),
            value
        );
    }

    /// A hook reads back exactly what the endpoint answered: values nested deeper than
    /// serde_json's default parsing limit, and floats to the last digit.
    #[tokio::test]
    async fn replies_read_back_deep_values_and_exact_floats() {
        let mut deep = serde_json::json!("leaf");
        for _ in 0..200 {
            deep = serde_json::json!([deep]);
        }
        let value = serde_json::json!({ "deep": deep, "ratio": 0.1 + 0.2, "tiny": 5e-324 });
        let reply = Reply::json(&value);
        assert_eq!(reply.json_body(), Some(&value));
        assert_eq!(reply.into_json::<serde_json::Value>().unwrap(), value);
    }

    /// What cannot be JSON is a 500 in Better Auth's shape, not a panic or a half body.
    #[tokio::test]
    async fn a_value_that_does_not_serialise_is_a_server_error() {
        let mut map = std::collections::BTreeMap::new();
        map.insert((1, 2), "tuple keys are not JSON");
        let (status, kind, bytes) = wire(Reply::json(&map)).await;
        // Set on a reply that already carries cookies: the 500 carries none of them.
        let mut reply = Reply::json(serde_json::json!({ "ok": true }));
        reply.headers_mut().insert(
            header::SET_COOKIE,
            HeaderValue::from_static("better-auth.session_token=x"),
        );
        reply.set_json_of(&map);
        assert_eq!(reply.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(reply.set_cookies().count(), 0);
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(kind.as_deref(), Some("application/json"));
        let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert!(body["message"].is_string(), "{body}");
    }
}
