//! An axum app that embeds Portcullis: the auth API under `/api/auth` (the official Better Auth
//! client talks to it unchanged) and a route, `/me`, that only signed-in users reach.
//!
//! ```sh
//! PORTCULLIS_SECRET=$(cargo run -q -p portcullis-cli -- secret) cargo run -p portcullis-example-axum
//! ```

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use portcullis::{Auth, ClientAddr};
use portcullis_email_password::EmailPassword;

/// The app: auth mounted with `nest_service`, plus a protected route. Each request carries
/// its peer address as a `ClientAddr`, so rate limits count per client, not for everyone at
/// once.
fn app(auth: Auth) -> Router {
    Router::new()
        .nest_service("/api/auth", auth.service())
        .route("/me", get(me))
        .with_state(auth)
        .layer(axum::middleware::from_fn(client_addr))
}

/// Copies axum's connection info into the request as the engine's `ClientAddr`.
async fn client_addr(mut req: Request, next: Next) -> Response {
    if let Some(ConnectInfo(addr)) = req.extensions().get::<ConnectInfo<SocketAddr>>().copied() {
        req.extensions_mut().insert(ClientAddr(addr));
    }
    next.run(req).await
}

/// Who am I? 401 without a session.
async fn me(State(auth): State<Auth>, headers: HeaderMap) -> impl IntoResponse {
    match auth.api().get_session(&headers).await {
        Ok(Some(s)) => {
            (StatusCode::OK, Json(serde_json::json!({ "user": s.user }))).into_response()
        }
        Ok(None) => StatusCode::UNAUTHORIZED.into_response(),
        Err(e) => (e.status(), e.message().to_owned()).into_response(),
    }
}

async fn build(secret: String, database: &str) -> Result<Auth, portcullis::Error> {
    let auth = Auth::builder()
        .secret(secret)
        .base_url("http://127.0.0.1:3001")
        .database(database)
        .plugin(EmailPassword::default())
        .build()
        .await?;
    auth.migrate().await?;
    Ok(auth)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let secret = std::env::var("PORTCULLIS_SECRET")
        .map_err(|_| "set PORTCULLIS_SECRET (e.g. `portcullis secret`)")?;
    let auth = build(secret, "sqlite://example-axum.db").await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3001").await?;
    println!("listening on http://127.0.0.1:3001 (auth under /api/auth, protected route /me)");
    axum::serve(
        listener,
        app(auth).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::{header, Request};
    use http_body_util::BodyExt as _;
    use tower::ServiceExt as _;

    async fn send(app: &Router, req: Request<Body>) -> (StatusCode, HeaderMap, serde_json::Value) {
        let res = app.clone().oneshot(req).await.unwrap();
        let (parts, body) = res.into_parts();
        let bytes = body.collect().await.unwrap().to_bytes();
        let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
        (parts.status, parts.headers, json)
    }

    #[tokio::test]
    async fn axum_mounts_the_engine_and_guards_a_route_with_its_session() {
        let auth = build(
            "an-example-secret-that-is-long-enough!".into(),
            "sqlite::memory:",
        )
        .await
        .unwrap();
        let app = app(auth);

        let (status, _, _) = send(&app, Request::get("/me").body(Body::empty()).unwrap()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);

        let peer = SocketAddr::from(([10, 1, 2, 3], 50000));
        let sign_up = Request::post("/api/auth/sign-up/email")
            .extension(ConnectInfo(peer))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(
                r#"{"name":"Ada","email":"ada@example.com","password":"correct-horse-1"}"#,
            ))
            .unwrap();
        let (status, headers, body) = send(&app, sign_up).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let cookie = headers[header::SET_COOKIE]
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned();

        let me = Request::get("/me")
            .header(header::COOKIE, &cookie)
            .body(Body::empty())
            .unwrap();
        let (status, _, body) = send(&app, me).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["user"]["email"], "ada@example.com");

        let session = Request::get("/api/auth/get-session")
            .header(header::COOKIE, &cookie)
            .body(Body::empty())
            .unwrap();
        let (_, _, body) = send(&app, session).await;
        assert_eq!(
            body["session"]["ipAddress"], "10.1.2.3",
            "the peer address reached the engine"
        );

        let (status, _, body) = send(
            &app,
            Request::get("/api/auth/ok").body(Body::empty()).unwrap(),
        )
        .await;
        assert_eq!(
            (status, body),
            (StatusCode::OK, serde_json::json!({ "ok": true }))
        );
    }
}
