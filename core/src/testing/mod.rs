//! A harness for testing plugins (feature `testing`, for dev-dependencies only): an engine on
//! a private in-memory database, a client with a cookie jar that talks to it as a browser on
//! the app's own origin would, and a mail sink that keeps every message. Its helpers panic on
//! a test's mistakes, as test code should; none of it belongs in a production build.
//!
//! ```
//! # async fn run() -> Result<(), portcullis::Error> {
//! use portcullis::testing::{MailSink, TestClient};
//!
//! let mail = MailSink::new();
//! let auth = portcullis::testing::builder()
//!     // .plugin(MyPlugin::default())
//!     .email_sender(mail.clone())
//!     .build()
//!     .await?;
//! auth.migrate().await?;
//!
//! let mut client = TestClient::new(&auth);
//! let res = client.get("/ok").await;
//! assert_eq!(res.status, http::StatusCode::OK);
//! assert!(mail.messages().is_empty());
//! # Ok(())
//! # }
//! # tokio::runtime::Runtime::new().unwrap().block_on(run()).unwrap();
//! ```

mod database;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Method, Request, StatusCode};
use http_body_util::Full;

use crate::email::{EmailError, EmailSender, Message};
use crate::{Auth, AuthBuilder, BoxFuture};

pub use database::{Backend, TestDatabase};

/// The base URL test engines answer for; [`TestClient`] sends it as `Origin`.
pub const BASE_URL: &str = "http://localhost:3000";

/// A builder with what a test needs set: a fresh random secret, [`BASE_URL`], a private in-memory
/// SQLite database, and rate limiting off (tests sign up freely). Add plugins, hooks and
/// options, build, then `migrate()`. (The in-memory database needs the `sqlite` feature; a
/// build without it uses [`builder_for`].)
pub fn builder() -> AuthBuilder {
    builder_for("sqlite::memory:")
}

/// Like [`builder`], on `database` (a [`TestDatabase`]'s URL, say): the same suite on
/// PostgreSQL and MySQL as on SQLite.
pub fn builder_for(database: &str) -> AuthBuilder {
    Auth::builder()
        // Random per engine: test code pointed at a real database by mistake still signs
        // nothing anyone else could.
        .secret(crate::crypto::random_string(
            48,
            b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
        ))
        .base_url(BASE_URL)
        .database(database)
        .options(|o| o.rate_limit.enabled = false)
}

/// One client of a test engine: it keeps the cookies the engine sets and sends them back,
/// with the `Origin` of the engine's base URL, as a browser on the app's page does.
#[derive(Debug, Clone)]
pub struct TestClient {
    auth: Auth,
    jar: CookieJar,
    headers: HeaderMap,
}

impl TestClient {
    /// A client with no cookies, sending `Origin: <base URL>`.
    pub fn new(auth: &Auth) -> Self {
        let origin = auth.options().base_url.as_deref().unwrap_or(BASE_URL);
        let mut headers = HeaderMap::new();
        if let Ok(v) = HeaderValue::from_str(origin) {
            headers.insert(header::ORIGIN, v);
        }
        Self {
            auth: auth.clone(),
            jar: CookieJar::default(),
            headers,
        }
    }

    /// This client sends `name: value` with every request (`User-Agent`, `X-Forwarded-For`
    /// behind a trusted proxy), replacing what it sent before under that name.
    ///
    /// # Panics
    ///
    /// When `value` cannot be a header value: a test's mistake.
    pub fn with_header(mut self, name: header::HeaderName, value: &str) -> Self {
        match HeaderValue::from_str(value) {
            Ok(v) => self.headers.insert(name, v),
            Err(e) => panic!("not a header value for {name}: {e}"),
        };
        self
    }

    /// `GET path` (under the base path: `/get-session`).
    pub async fn get(&mut self, path: &str) -> TestResponse {
        self.send(Method::GET, path, None).await
    }

    /// `POST path` with a JSON body.
    pub async fn post(&mut self, path: &str, body: serde_json::Value) -> TestResponse {
        self.send(Method::POST, path, Some(body)).await
    }

    /// Sends a request with this client's cookies and `Origin`, and keeps the cookies the
    /// answer sets (a cookie set empty or with `Max-Age=0` is dropped).
    ///
    /// # Panics
    ///
    /// When `path` cannot be part of a URI: a test's mistake, not the engine's answer.
    pub async fn send(
        &mut self,
        method: Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> TestResponse {
        let uri = format!("{}{}", self.auth.options().base_path, path);
        let mut req = Request::builder().method(method).uri(uri);
        let bytes = match body {
            Some(json) => {
                req = req.header(header::CONTENT_TYPE, "application/json");
                Bytes::from(json.to_string())
            }
            None => Bytes::new(),
        };
        match req.body(Full::new(bytes)) {
            Ok(req) => self.request(req).await,
            Err(e) => panic!("not a valid request for {path}: {e}"),
        }
    }

    /// Sends a request built by hand (a form post, a raw body), adding this client's headers
    /// and cookies where the request has none of its own, and keeps the cookies the answer
    /// sets.
    pub async fn request(&mut self, req: Request<Full<Bytes>>) -> TestResponse {
        self.jar.send(&self.auth, &self.headers, req).await
    }

    /// This client's cookies.
    pub fn jar(&self) -> &CookieJar {
        &self.jar
    }

    /// This client's cookies, to change by hand.
    pub fn jar_mut(&mut self) -> &mut CookieJar {
        &mut self.jar
    }

    /// The headers a server-side call on behalf of this client carries (its cookies and the
    /// headers it sends), for `auth.api()` calls such as `get_session`.
    pub fn headers(&self) -> HeaderMap {
        let mut h = self.headers.clone();
        if let Some(v) = self.jar.header_value() {
            h.insert(header::COOKIE, v);
        }
        h
    }
}

/// A browser's cookie store, reduced to what tests need: name → value, in the order set.
/// A `Set-Cookie` with `Max-Age=0` or an empty value deletes the cookie.
#[derive(Debug, Clone, Default)]
pub struct CookieJar {
    cookies: Vec<(String, String)>,
}

impl CookieJar {
    /// Sends `req` through [`Auth::handle`] as the browser holding these cookies: `headers`
    /// and the `Cookie` header are added where the request has none of its own, and the
    /// cookies the answer sets are kept.
    pub async fn send(
        &mut self,
        auth: &Auth,
        headers: &HeaderMap,
        mut req: Request<Full<Bytes>>,
    ) -> TestResponse {
        for (name, value) in headers {
            if !req.headers().contains_key(name) {
                req.headers_mut().insert(name.clone(), value.clone());
            }
        }
        if !req.headers().contains_key(header::COOKIE) {
            if let Some(cookie) = self.header_value() {
                req.headers_mut().insert(header::COOKIE, cookie);
            }
        }
        let res = TestResponse::read(auth.handle(req).await).await;
        self.store(&res.headers);
        res
    }

    /// Applies every `Set-Cookie` of a response.
    pub fn store(&mut self, headers: &HeaderMap) {
        for v in headers.get_all(header::SET_COOKIE) {
            if let Ok(text) = v.to_str() {
                self.apply(text);
            }
        }
    }

    /// Applies one `Set-Cookie` header value.
    pub fn apply(&mut self, set_cookie: &str) {
        let mut parts = set_cookie.split(';');
        let Some((name, value)) = parts.next().and_then(|p| p.split_once('=')) else {
            return;
        };
        let (name, value) = (name.trim().to_owned(), value.trim().to_owned());
        let deleted = value.is_empty()
            || parts.any(|a| {
                a.trim()
                    .strip_prefix("Max-Age=")
                    .and_then(|n| n.parse::<i64>().ok())
                    .is_some_and(|n| n <= 0)
            });
        self.cookies.retain(|(n, _)| *n != name);
        if !deleted {
            self.cookies.push((name, value));
        }
    }

    /// Sets a cookie by hand (as a browser holding it already would).
    pub fn set(&mut self, name: &str, value: &str) {
        self.cookies.retain(|(n, _)| n != name);
        self.cookies.push((name.to_owned(), value.to_owned()));
    }

    /// The stored value of `name`, as the server wrote it (still URL-encoded).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.cookies
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Forgets every cookie.
    pub fn clear(&mut self) {
        self.cookies.clear();
    }

    /// Whether the jar holds no cookie.
    pub fn is_empty(&self) -> bool {
        self.cookies.is_empty()
    }

    /// The `Cookie` request header for the stored cookies, if any.
    pub fn header_value(&self) -> Option<HeaderValue> {
        if self.cookies.is_empty() {
            return None;
        }
        let text = self
            .cookies
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        HeaderValue::from_str(&text).ok()
    }
}

/// What a [`TestClient`] got back.
#[derive(Debug, Clone)]
pub struct TestResponse {
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The body.
    pub body: Bytes,
}

impl TestResponse {
    /// Reads what [`Auth::handle`] answered, body and all.
    pub async fn read(res: crate::HttpResponse) -> Self {
        let (parts, body) = res.into_parts();
        let body = http_body_util::BodyExt::collect(body)
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        Self {
            status: parts.status,
            headers: parts.headers,
            body,
        }
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON (`null` for an empty body).
    ///
    /// # Panics
    ///
    /// When the body is not JSON, showing it.
    pub fn json(&self) -> serde_json::Value {
        if self.body.is_empty() {
            return serde_json::Value::Null;
        }
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.text()))
    }

    /// The `code` of an error body (`{message, code}`).
    pub fn code(&self) -> Option<String> {
        self.json()
            .get("code")
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned)
    }

    /// A response header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Every `Set-Cookie` header.
    pub fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_owned))
            .collect()
    }

    /// The `Set-Cookie` header for cookie `name`, if the response sets it.
    pub fn set_cookie(&self, name: &str) -> Option<String> {
        let prefix = format!("{name}=");
        self.set_cookies()
            .into_iter()
            .find(|c| c.starts_with(&prefix))
    }

    /// Whether the response deletes cookie `name` (empty value, `Max-Age=0`).
    pub fn expires_cookie(&self, name: &str) -> bool {
        self.set_cookie(name)
            .is_some_and(|c| c.starts_with(&format!("{name}=;")) && c.contains("Max-Age=0"))
    }
}

/// An [`EmailSender`] that keeps every message, for tests to read. Clones share one
/// mailbox.
#[derive(Debug, Clone, Default)]
pub struct MailSink {
    sent: Arc<Mutex<Vec<Message>>>,
}

impl MailSink {
    /// An empty mailbox.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every message so far, oldest first.
    pub fn messages(&self) -> Vec<Message> {
        self.sent.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The messages of `kind` (`"verify-email"`, `"reset-password"`, a plugin's own) sent to
    /// `to`, oldest first.
    pub fn to(&self, kind: &str, to: &str) -> Vec<Message> {
        self.messages()
            .into_iter()
            .filter(|m| m.kind == kind && m.to.as_str() == to)
            .collect()
    }

    /// Waits (up to 5 s) for the `n`th message (1-based) of `kind` to `to`, for mail sent in
    /// the background.
    ///
    /// # Panics
    ///
    /// When it does not come, listing what did.
    pub async fn wait_for(&self, kind: &str, to: &str, n: usize) -> Message {
        for _ in 0..500 {
            if let Some(m) = self.to(kind, to).get(n.saturating_sub(1)) {
                return m.clone();
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!(
            "no {kind} message #{n} to {to}; sent: {:?}",
            self.messages()
        );
    }
}

impl EmailSender for MailSink {
    fn send<'a>(&'a self, message: &'a Message) -> BoxFuture<'a, Result<(), EmailError>> {
        self.sent
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(message.clone());
        Box::pin(async { Ok(()) })
    }
}
