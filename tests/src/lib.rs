//! Test support for Portcullis' integration tests.
//!
//! [`TestApp`] builds a real [`Auth`] (with the email-password plugin) on a fresh SQLite file
//! in a temporary directory, migrates it, and sends requests through [`Auth::handle`], the
//! same entry point the HTTP adapters use, without a network. Each `TestApp` carries a small
//! [`CookieJar`] that stores what `Set-Cookie` headers say and sends the cookies back, as a
//! browser would; [`TestApp::new_client`] gives a second browser on the same engine.
//!
//! Helpers panic with a message when setup fails: they exist for tests only.

pub mod db;
pub mod jwt;
pub mod mail;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use http::{header, HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode};
use http_body_util::Full;
use portcullis::callbacks::UserCallback;
use portcullis::storage::{Row, Where};
pub use portcullis::testing::{CookieJar, TestResponse};
use portcullis::{Auth, AuthBuilder};
use portcullis_email_password::EmailPassword;
use serde_json::{json, Value};
use tempfile::TempDir;

/// The secret the Better Auth reference server used for the captured test vectors.
pub const SECRET: &str = "portcullis-test-vector-secret-0123456789abcdef";

/// The public origin of test engines (plain http, so cookies carry no `__Secure-` prefix).
pub const BASE_URL: &str = "http://localhost:3000";

/// Where the API is mounted.
pub const BASE_PATH: &str = "/api/auth";

/// A password that passes every default rule.
pub const PASSWORD: &str = "correct-horse-battery";

/// The database Better Auth 1.7.25 created (user `vector@example.com` / `password123`),
/// committed under `tests/fixtures`.
pub fn better_auth_fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/better-auth-created.db")
}

/// An engine on a private SQLite file, and one client (cookie jar) talking to it.
pub struct TestApp {
    /// The engine under test.
    pub auth: Auth,
    /// This client's cookies.
    pub jar: CookieJar,
    /// Headers sent with every request of this client (unless the request sets them).
    pub default_headers: HeaderMap,
    dir: Arc<TempDir>,
    db: Arc<Option<db::TestDb>>,
}

impl std::fmt::Debug for TestApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestApp")
            .field("database", &self.database_url())
            .field("jar", &self.jar)
            .finish_non_exhaustive()
    }
}

/// What a browser on the engine's own origin sends with every request: `Origin: <base URL>`.
fn browser_headers(auth: &Auth) -> HeaderMap {
    let mut h = HeaderMap::new();
    let origin = auth.options().base_url.as_deref().unwrap_or(BASE_URL);
    if let Ok(v) = HeaderValue::from_str(origin) {
        h.insert(header::ORIGIN, v);
    }
    h
}

impl TestApp {
    /// An engine with default options (rate limiting off, so tests may sign up freely).
    pub async fn new() -> Self {
        Self::build(|b| b).await
    }

    /// An engine whose builder `configure` may change: options, more plugins, hooks. The
    /// builder arrives with the secret, base URL, database, rate limiting off and the
    /// email-password plugin already set.
    pub async fn build(configure: impl FnOnce(AuthBuilder) -> AuthBuilder) -> Self {
        Self::build_with(EmailPassword::default(), None, configure).await
    }

    /// Like [`TestApp::build`], with a configured email-password plugin.
    pub async fn with_email_password(
        plugin: EmailPassword,
        configure: impl FnOnce(AuthBuilder) -> AuthBuilder,
    ) -> Self {
        Self::build_with(plugin, None, configure).await
    }

    /// An engine on a copy of the SQLite file at `source` (the original is never opened).
    pub async fn on_copy_of(
        source: &Path,
        configure: impl FnOnce(AuthBuilder) -> AuthBuilder,
    ) -> Self {
        Self::build_with(EmailPassword::default(), Some(source), configure).await
    }

    async fn build_with(
        plugin: EmailPassword,
        source: Option<&Path>,
        configure: impl FnOnce(AuthBuilder) -> AuthBuilder,
    ) -> Self {
        let dir = tempfile::tempdir().expect("create a temporary directory");
        let file = dir.path().join("auth.db");
        if let Some(source) = source {
            std::fs::copy(source, &file).expect("copy the database fixture");
        }
        // A fixture copy is SQLite by nature; everything else runs on TEST_BACKEND.
        let server = match (source, db::Backend::from_env()) {
            (None, Some(backend)) => Some(
                db::TestDb::new(backend)
                    .await
                    .expect("TEST_BACKEND names a database whose TEST_*_URL is not set"),
            ),
            _ => None,
        };
        let url = match &server {
            Some(db) => db.url().to_owned(),
            None => format!("sqlite://{}", file.display()),
        };
        let builder = Auth::builder()
            .secret(SECRET)
            .base_url(BASE_URL)
            .database(url)
            .options(|o| o.rate_limit.enabled = false)
            .plugin(plugin);
        let auth = configure(builder).build().await.expect("build the engine");
        auth.migrate().await.expect("migrate the database");
        let default_headers = browser_headers(&auth);
        Self {
            auth,
            jar: CookieJar::default(),
            default_headers,
            dir: Arc::new(dir),
            db: Arc::new(server),
        }
    }

    /// Another client (an empty cookie jar, the same-origin `Origin` header a browser sends)
    /// on the same engine.
    pub fn new_client(&self) -> Self {
        Self {
            auth: self.auth.clone(),
            jar: CookieJar::default(),
            default_headers: browser_headers(&self.auth),
            dir: self.dir.clone(),
            db: self.db.clone(),
        }
    }

    /// The URL of the database the engine stores into (another engine may open it too).
    pub fn database_url(&self) -> String {
        match self.db.as_ref() {
            Some(db) => db.url().to_owned(),
            None => format!("sqlite://{}", self.dir.path().join("auth.db").display()),
        }
    }

    /// Sends `name: value` with every later request of this client.
    pub fn set_default_header(&mut self, name: &'static str, value: &str) {
        self.default_headers.insert(
            HeaderName::from_static(name),
            HeaderValue::from_str(value).expect("a valid header value"),
        );
    }

    /// A request to `path` under the base path (`"/get-session"`), without a body.
    pub fn request(method: Method, path: &str) -> http::request::Builder {
        Request::builder()
            .method(method)
            .uri(format!("{BASE_PATH}{path}"))
    }

    /// Sends a request through `Auth::handle`, adding this client's cookies (unless the
    /// request has a `Cookie` header) and default headers, and stores the cookies the
    /// response sets.
    pub async fn send(&mut self, req: Request<Full<Bytes>>) -> TestResponse {
        self.jar.send(&self.auth, &self.default_headers, req).await
    }

    /// `GET path` (under the base path).
    pub async fn get(&mut self, path: &str) -> TestResponse {
        let req = Self::request(Method::GET, path)
            .body(Full::default())
            .expect("a valid request");
        self.send(req).await
    }

    /// `POST path` with a JSON body.
    pub async fn post(&mut self, path: &str, body: Value) -> TestResponse {
        self.post_raw(path, Some("application/json"), body.to_string())
            .await
    }

    /// `POST path` with no body at all.
    pub async fn post_empty(&mut self, path: &str) -> TestResponse {
        let req = Self::request(Method::POST, path)
            .body(Full::default())
            .expect("a valid request");
        self.send(req).await
    }

    /// `POST path` with `body` as is, and a `Content-Type` when given.
    pub async fn post_raw(
        &mut self,
        path: &str,
        content_type: Option<&str>,
        body: impl Into<Bytes>,
    ) -> TestResponse {
        let mut builder = Self::request(Method::POST, path);
        if let Some(ct) = content_type {
            builder = builder.header(header::CONTENT_TYPE, ct);
        }
        let req = builder
            .body(Full::new(body.into()))
            .expect("a valid request");
        self.send(req).await
    }

    /// `POST /sign-up/email` with a name, `email` and `password`.
    pub async fn sign_up(&mut self, email: &str, password: &str) -> TestResponse {
        self.post(
            "/sign-up/email",
            json!({ "name": "Test User", "email": email, "password": password }),
        )
        .await
    }

    /// `POST /sign-in/email`.
    pub async fn sign_in(&mut self, email: &str, password: &str) -> TestResponse {
        self.post(
            "/sign-in/email",
            json!({ "email": email, "password": password }),
        )
        .await
    }

    /// Signs up `email` with [`PASSWORD`] and checks it worked; returns the response body.
    pub async fn signed_up(&mut self, email: &str) -> Value {
        let res = self.sign_up(email, PASSWORD).await;
        assert_eq!(res.status, StatusCode::OK, "sign-up failed: {}", res.text());
        res.json()
    }

    /// The `session` object of `GET /get-session`, or `Value::Null` when signed out.
    pub async fn session(&mut self) -> Value {
        let res = self.get("/get-session").await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.text());
        res.json()
    }

    /// The name of the session cookie (`better-auth.session_token`).
    pub fn session_cookie_name(&self) -> String {
        self.auth.cookies().session_token.clone()
    }

    /// The raw token of this client's session cookie (the part before the signature).
    pub fn session_token(&self) -> Option<String> {
        let value = self.jar.get(&self.session_cookie_name())?;
        let decoded = percent_encoding::percent_decode_str(value).decode_utf8_lossy();
        decoded.rsplit_once('.').map(|(token, _)| token.to_owned())
    }

    /// The `Cookie` header that carries session token `token`, signed with the engine's
    /// secret.
    pub fn cookie_for_token(&self, token: &str) -> String {
        let signed = self.auth.secret().sign(token);
        format!(
            "{}={}",
            self.session_cookie_name(),
            portcullis::cookies::encode_uri_component(&signed)
        )
    }

    /// Makes this client's session `age` seconds old (still valid for six days): older than
    /// `fresh_age` for a day or more.
    pub async fn backdate_session(&self, age: i64) {
        let token = self.session_token().expect("a session cookie");
        set_session_times(
            &self.auth,
            &token,
            seconds_from_now(6 * DAY),
            Some(seconds_from_now(-age)),
        )
        .await;
    }

    /// Request headers with just a `Cookie` of this client's cookies (for server-side calls).
    pub fn cookie_headers(&self) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(v) = self.jar.header_value() {
            h.insert(header::COOKIE, v);
        }
        h
    }
}

/// Sets a session's `expiresAt` (and, when given, `createdAt`) directly in the database, to
/// make it old, expired or long-lived without waiting.
pub async fn set_session_times(
    auth: &Auth,
    token: &str,
    expires_at: DateTime<Utc>,
    created_at: Option<DateTime<Utc>>,
) {
    let mut set = Row::new().with("expiresAt", expires_at);
    if let Some(c) = created_at {
        set.set("createdAt", c);
    }
    let n = auth
        .adapter()
        .update_many("session", &[Where::eq("token", token)], set)
        .await
        .expect("update the session");
    assert_eq!(n, 1, "no session with token {token}");
}

/// Records the calls of the [`UserCallback`]s it makes, as `"<label> <email>
/// verified=<emailVerified> stored=<whether the user is still in the database>"`.
#[derive(Debug, Clone, Default)]
pub struct CallLog(Arc<Mutex<Vec<String>>>);

impl CallLog {
    /// A callback that records its calls under `label`, and refuses (403 with `message`,
    /// no code) users whose email starts with `refuse_prefix` when one is given.
    pub fn callback(
        &self,
        label: &'static str,
        refuse: Option<(&'static str, &'static str)>,
    ) -> UserCallback {
        let log = self.0.clone();
        UserCallback::new(move |user, ctx| {
            let log = log.clone();
            async move {
                let stored = ctx.store().user_by_id(&user.id).await?.is_some();
                log.lock().expect("call log lock").push(format!(
                    "{label} {} verified={} stored={stored}",
                    user.email, user.email_verified
                ));
                match refuse {
                    Some((prefix, message)) if user.email.starts_with(prefix) => Err(
                        portcullis::ApiError::without_code(StatusCode::FORBIDDEN, message),
                    ),
                    _ => Ok(()),
                }
            }
        })
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<String> {
        self.0.lock().expect("call log lock").clone()
    }
}

/// Now, shifted by `seconds` (negative for the past).
pub fn seconds_from_now(seconds: i64) -> DateTime<Utc> {
    portcullis::time::now() + chrono::Duration::seconds(seconds)
}

/// One day, in seconds.
pub const DAY: i64 = 86_400;
