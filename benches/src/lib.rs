//! Shared pieces of Portcullis's benchmarks.
//!
//! - `benches/get_session.rs` (criterion): the get-session path in process, and its pieces.
//! - `src/bin/load.rs`: the whole-server load bench against the Node reference server and a
//!   bare hyper handler.
//!
//! [`Fixture`] is the in-process setup the criterion bench measures against: an engine on a
//! SQLite file in a temporary directory, with one user signed up over HTTP.

use anyhow::{bail, Context as _};
use bytes::Bytes;
use http::{header, Method, Request, StatusCode};
use http_body_util::{BodyExt as _, Full};
use portcullis::storage::SessionAndUser;
use portcullis::Auth;
use portcullis_email_password::EmailPassword;

/// The secret every bench engine signs with.
pub const SECRET: &str = "bench-secret-0123456789abcdef0123456789";

/// The public origin of the in-process engine (decides cookie names and `Secure`).
pub const BASE_URL: &str = "http://127.0.0.1:3000";

/// An engine on a temporary SQLite file with one signed-up user.
pub struct Fixture {
    /// The engine, configured like `scripts/conformance-server` with the limiter off.
    pub auth: Auth,
    /// The `Cookie` header value that carries the user's signed session cookie.
    pub cookie: String,
    /// The session token (unsigned), as stored.
    pub token: String,
    /// The session and user get-session answers with.
    pub session: SessionAndUser,
    /// Keeps the database directory alive as long as the fixture.
    _dir: tempfile::TempDir,
}

impl std::fmt::Debug for Fixture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fixture")
            .field("auth", &self.auth)
            .finish_non_exhaustive()
    }
}

impl Fixture {
    /// Builds the engine on a fresh SQLite file, migrates it, and signs one user up through
    /// `Auth::handle`, keeping the session cookie it sets. Rate limiting is off.
    pub async fn new() -> anyhow::Result<Self> {
        Self::build(false, false).await
    }

    /// The same with the rate limiter on (a limit no bench reaches), to measure what the
    /// limiter and the request checks cost on the hot path.
    pub async fn with_rate_limiter() -> anyhow::Result<Self> {
        Self::build(true, false).await
    }

    /// The same with the bearer plugin, for get-session by `Authorization: Bearer`.
    pub async fn with_bearer() -> anyhow::Result<Self> {
        Self::build(false, true).await
    }

    async fn build(rate_limited: bool, bearer: bool) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir().context("creating a temporary directory")?;
        let db = dir.path().join("bench.db");
        let auth = Auth::builder()
            .secret(SECRET)
            .base_url(BASE_URL)
            .database(format!("sqlite://{}", db.display()))
            .options(|o| {
                o.rate_limit.enabled = rate_limited;
                o.rate_limit.max = u32::MAX;
            })
            .plugin(EmailPassword::default());
        let auth = if bearer {
            auth.plugin(portcullis_bearer::Bearer::default())
        } else {
            auth
        };
        let auth = auth.build().await.context("building the engine")?;
        auth.migrate().await.context("migrating the database")?;

        let body = serde_json::json!({
            "name": "Bench User",
            "email": "bench@example.com",
            "password": "bench-password-123",
        });
        let req = Request::builder()
            .method(Method::POST)
            .uri("/api/auth/sign-up/email")
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::ORIGIN, BASE_URL)
            .body(Full::new(Bytes::from(serde_json::to_vec(&body)?)))
            .context("building the sign-up request")?;
        let res = auth.handle(req).await;
        if res.status() != StatusCode::OK {
            bail!("sign-up answered {}", res.status());
        }
        let cookie = res
            .headers()
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|v| v.split(';').next())
            .filter(|kv| kv.split_once('=').is_some_and(|(_, v)| !v.is_empty()))
            .collect::<Vec<_>>()
            .join("; ");
        if cookie.is_empty() {
            bail!("sign-up set no session cookie");
        }
        let signed =
            portcullis::cookies::get_cookie(&cookie_headers(&cookie)?, &session_cookie(&auth))
                .context("the sign-up cookie has no session token")?
                .into_owned();
        let token = auth
            .secret()
            .unsign(&signed)
            .context("the session cookie's signature does not verify")?
            .to_owned();
        let session = auth
            .store()
            .session_and_user(&token)
            .await
            .context("reading the session")?
            .context("the new session is not stored")?;

        let fixture = Self {
            auth,
            cookie,
            token,
            session,
            _dir: dir,
        };
        let (status, body) = fixture.get_session().await?;
        let email = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["user"]["email"].as_str().map(str::to_owned));
        if status != StatusCode::OK || email.as_deref() != Some("bench@example.com") {
            bail!(
                "get-session with the cookie answered {status}: {}",
                String::from_utf8_lossy(&body)
            );
        }
        Ok(fixture)
    }

    /// `GET /api/auth/get-session` with the user's cookie, through `Auth::handle`.
    pub fn get_session_request(&self) -> Request<Full<Bytes>> {
        let mut req = Request::new(Full::new(Bytes::new()));
        *req.uri_mut() = http::Uri::from_static("/api/auth/get-session");
        if let Ok(v) = http::HeaderValue::from_str(&self.cookie) {
            req.headers_mut().insert(header::COOKIE, v);
        }
        req
    }

    /// Runs one get-session and returns its status and body.
    pub async fn get_session(&self) -> anyhow::Result<(StatusCode, Bytes)> {
        let res = self.auth.handle(self.get_session_request()).await;
        let status = res.status();
        let body = res.into_body().collect().await?.to_bytes();
        Ok((status, body))
    }
}

/// The bare hyper handler's answer: a fixed small JSON body, the ceiling any endpoint is
/// measured against (the load bench serves it; `instructions bare` counts it).
pub fn bare_response() -> http::Response<Full<Bytes>> {
    let mut res = http::Response::new(Full::new(Bytes::from_static(
        br#"{"ok":true,"message":"bare hyper handler"}"#,
    )));
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    res
}

/// The wire name of the engine's session cookie.
pub fn session_cookie(auth: &Auth) -> String {
    auth.cookies().session_token.clone()
}

/// A header map holding one `Cookie` header.
pub fn cookie_headers(cookie: &str) -> anyhow::Result<http::HeaderMap> {
    let mut h = http::HeaderMap::new();
    h.insert(
        header::COOKIE,
        http::HeaderValue::from_str(cookie).context("the cookie is not a valid header value")?,
    );
    Ok(h)
}
