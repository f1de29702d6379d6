//! Bearer tokens as a cookie-less client meets them: `set-auth-token` on every answer that sets
//! a live session cookie, and `Authorization: Bearer` in every spelling Better Auth accepts,
//! over HTTP and server-side; forged and junk tokens are nobody.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use http::{header, HeaderMap, HeaderValue, StatusCode};
use portcullis::testing::{builder, TestClient, TestResponse};
use portcullis::Auth;
use portcullis_bearer::Bearer;
use portcullis_email_password::EmailPassword;
use serde_json::{json, Value};

const PASSWORD: &str = "correct-horse-battery";

async fn engine(bearer: Bearer) -> Auth {
    let auth = builder()
        .plugin(EmailPassword::default())
        .plugin(bearer)
        .build()
        .await
        .unwrap();
    auth.migrate().await.unwrap();
    auth
}

/// Signs `email` up in a fresh browser; its sign-up answer.
async fn signed_up(auth: &Auth, email: &str) -> TestResponse {
    let res = TestClient::new(auth)
        .post(
            "/sign-up/email",
            json!({ "name": "Bea", "email": email, "password": PASSWORD }),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    res
}

/// A request from a client that keeps no cookies, with `authorization`.
async fn with_bearer(
    auth: &Auth,
    authorization: &str,
    path: &str,
    body: Option<Value>,
) -> TestResponse {
    let mut client = TestClient::new(auth).with_header(header::AUTHORIZATION, authorization);
    match body {
        Some(b) => client.post(path, b).await,
        None => client.get(path).await,
    }
}

fn session_cookie_value(res: &TestResponse) -> String {
    let cookie = res.set_cookie("better-auth.session_token").unwrap();
    let value = cookie
        .split(';')
        .next()
        .unwrap()
        .split_once('=')
        .unwrap()
        .1
        .to_owned();
    percent_decode(&value)
}

fn percent_decode(s: &str) -> String {
    s.replace("%2B", "+")
        .replace("%2F", "/")
        .replace("%3D", "=")
}

#[tokio::test]
async fn answers_that_set_a_session_cookie_expose_the_signed_token() {
    let auth = engine(Bearer::default()).await;
    let up = signed_up(&auth, "bea@example.com").await;
    let token = up.header("set-auth-token").unwrap().to_owned();
    assert_eq!(token, session_cookie_value(&up));
    assert_eq!(
        token.rsplit_once('.').unwrap().0,
        up.json()["token"].as_str().unwrap()
    );
    assert_eq!(
        up.header("access-control-expose-headers"),
        Some("set-auth-token")
    );

    let mut browser = TestClient::new(&auth);
    let res = browser
        .post(
            "/sign-in/email",
            json!({ "email": "bea@example.com", "password": PASSWORD }),
        )
        .await;
    assert_eq!(
        res.header("set-auth-token").map(str::to_owned),
        Some(session_cookie_value(&res))
    );
    // Answers that set no live session cookie carry none: a get-session, a sign-out.
    assert!(browser
        .get("/get-session")
        .await
        .header("set-auth-token")
        .is_none());
    let out = browser.post("/sign-out", json!({})).await;
    assert_eq!(out.status, StatusCode::OK);
    assert!(out.header("set-auth-token").is_none());
}

#[tokio::test]
async fn every_spelling_of_a_signed_token_authenticates_every_endpoint() {
    let auth = engine(Bearer::default()).await;
    let up = signed_up(&auth, "spell@example.com").await;
    let signed = up.header("set-auth-token").unwrap().to_owned();
    let raw = up.json()["token"].as_str().unwrap().to_owned();
    let (_, sig) = signed.rsplit_once('.').unwrap();
    let url_safe = sig.replace('+', "-").replace('/', "_");
    let spellings = [
        format!("Bearer {signed}"),
        format!("bearer {signed}"),
        format!(
            "BEARER {}",
            portcullis::cookies::encode_uri_component(&signed)
        ),
        format!("Bearer {raw}.{}", url_safe.trim_end_matches('=')),
        format!("Bearer {raw}"),
    ];
    for authorization in &spellings {
        let s = with_bearer(&auth, authorization, "/get-session", None).await;
        assert_eq!(
            s.json()["session"]["token"],
            raw.as_str(),
            "{authorization}"
        );
        let list = with_bearer(&auth, authorization, "/list-sessions", None).await;
        assert_eq!(list.status, StatusCode::OK, "{authorization}");
    }
    // A state-changing call, from a client with no cookies.
    let res = with_bearer(
        &auth,
        &spellings[0],
        "/update-user",
        Some(json!({ "name": "Renamed" })),
    )
    .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    let s = with_bearer(&auth, &spellings[0], "/get-session", None).await;
    assert_eq!(s.json()["user"]["name"], "Renamed");

    // Server-side calls read the header too.
    let mut headers = HeaderMap::new();
    headers.insert(
        header::AUTHORIZATION,
        HeaderValue::from_str(&spellings[0]).unwrap(),
    );
    let s = auth.api().get_session(&headers).await.unwrap();
    assert_eq!(s.map(|s| s.session.token), Some(raw));
}

#[tokio::test]
async fn forged_and_junk_tokens_are_nobody_and_a_valid_cookie_still_works() {
    let auth = engine(Bearer::default()).await;
    let up = signed_up(&auth, "forge@example.com").await;
    let raw = up.json()["token"].as_str().unwrap().to_owned();
    for forged in [
        format!("Bearer {raw}.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="),
        "Bearer not-a-session".to_owned(),
        "Bearer ".to_owned(),
        format!("Basic {raw}"),
        format!("Bearer {raw}.%ZZ"),
    ] {
        let s = with_bearer(&auth, &forged, "/get-session", None).await;
        assert!(s.json().is_null(), "{forged}: {}", s.text());
    }
    // A forged bearer header beside a valid cookie: the cookie decides.
    let mut browser = TestClient::new(&auth);
    browser
        .post(
            "/sign-in/email",
            json!({ "email": "forge@example.com", "password": PASSWORD }),
        )
        .await;
    let mut browser = browser.with_header(header::AUTHORIZATION, "Bearer forged.token");
    let s = browser.get("/get-session").await;
    assert_eq!(s.json()["user"]["email"], "forge@example.com");
}

#[tokio::test]
async fn requiring_a_signature_refuses_the_bare_token() {
    let auth = engine(Bearer::default().require_signature(true)).await;
    let up = signed_up(&auth, "strict@example.com").await;
    let raw = up.json()["token"].as_str().unwrap().to_owned();
    let signed = up.header("set-auth-token").unwrap().to_owned();
    let bare = with_bearer(&auth, &format!("Bearer {raw}"), "/get-session", None).await;
    assert!(bare.json().is_null());
    let ok = with_bearer(&auth, &format!("Bearer {signed}"), "/get-session", None).await;
    assert_eq!(ok.json()["session"]["token"], raw.as_str());
}

#[tokio::test]
async fn signing_out_with_a_bearer_token_ends_that_session() {
    let auth = engine(Bearer::default()).await;
    let up = signed_up(&auth, "out@example.com").await;
    let signed = up.header("set-auth-token").unwrap().to_owned();
    let authorization = format!("Bearer {signed}");
    let out = with_bearer(&auth, &authorization, "/sign-out", Some(json!({}))).await;
    assert_eq!(out.json(), json!({ "success": true }));
    let s = with_bearer(&auth, &authorization, "/get-session", None).await;
    assert!(s.json().is_null());
}
