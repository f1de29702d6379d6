//! The server-side API: endpoints called from Rust, with the same results as over HTTP.

use http::{header, HeaderMap, HeaderValue, StatusCode};
use portcullis::ApiRequest;
use portcullis_email_password::{EmailPasswordApi, SignInEmail, SignUpEmail};
use portcullis_tests::{TestApp, PASSWORD};
use serde_json::json;

fn cookie_headers(set_cookies: &[&str]) -> HeaderMap {
    let cookie = set_cookies
        .iter()
        .filter_map(|c| c.split(';').next())
        .collect::<Vec<_>>()
        .join("; ");
    let mut h = HeaderMap::new();
    h.insert(
        header::COOKIE,
        HeaderValue::from_str(&cookie).expect("a valid Cookie header"),
    );
    h
}

#[tokio::test]
async fn get_session_without_a_cookie_is_none() {
    let app = TestApp::new().await;

    let session = app.auth.api().get_session(&HeaderMap::new()).await.unwrap();

    assert!(session.is_none());
}

#[tokio::test]
async fn get_session_reads_the_cookie_a_browser_got_over_http() {
    let mut app = TestApp::new().await;
    let signed_up = app.signed_up("browser@example.com").await;

    let session = app
        .auth
        .api()
        .get_session(&app.cookie_headers())
        .await
        .unwrap()
        .expect("a session");

    assert_eq!(session.user.email, "browser@example.com");
    assert_eq!(session.session.token, signed_up["token"].as_str().unwrap());
}

#[tokio::test]
async fn sign_up_and_sign_in_from_rust() {
    let app = TestApp::new().await;
    let api = app.auth.api();

    let up = api
        .sign_up_email(SignUpEmail::new("Rusty", "Rusty@Example.com", PASSWORD))
        .await
        .unwrap();
    let signed_in = api
        .sign_in_email(SignInEmail::new("rusty@example.com", PASSWORD))
        .await
        .unwrap();

    assert_eq!(up.user.email, "rusty@example.com");
    assert!(up.token.is_some());
    assert_eq!(signed_in.user.id, up.user.id);
    assert_ne!(signed_in.token, up.token);
    // The server-side session is a real one: a browser holding its cookie is signed in.
    let mut browser = app.new_client();
    let token = signed_in.token.unwrap();
    browser.jar.apply(&browser.cookie_for_token(&token));
    assert_eq!(browser.session().await["user"]["id"], up.user.id.as_str());
}

#[tokio::test]
async fn server_side_errors_carry_status_and_code() {
    let app = TestApp::new().await;
    let api = app.auth.api();
    api.sign_up_email(SignUpEmail::new("E", "err@example.com", PASSWORD))
        .await
        .unwrap();

    let wrong = api
        .sign_in_email(SignInEmail::new("err@example.com", "wrong-password"))
        .await
        .unwrap_err();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(wrong.code(), Some("INVALID_EMAIL_OR_PASSWORD"));
    assert_eq!(wrong.message(), "Invalid email or password");

    let taken = api
        .sign_up_email(SignUpEmail::new("E", "err@example.com", PASSWORD))
        .await
        .unwrap_err();
    assert_eq!(taken.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(taken.code(), Some("USER_ALREADY_EXISTS_USE_ANOTHER_EMAIL"));

    let short = api
        .sign_up_email(SignUpEmail::new("E", "short@example.com", "short"))
        .await
        .unwrap_err();
    assert_eq!(short.code(), Some("PASSWORD_TOO_SHORT"));

    let unknown = api
        .call(ApiRequest::new("noSuchEndpoint"))
        .await
        .unwrap_err();
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_generic_call_returns_the_cookies_it_set() {
    let app = TestApp::new().await;
    app.auth
        .api()
        .sign_up_email(SignUpEmail::new("C", "cookies@example.com", PASSWORD))
        .await
        .unwrap();

    let reply = app
        .auth
        .api()
        .call(
            ApiRequest::new("signInEmail")
                .body(json!({ "email": "cookies@example.com", "password": PASSWORD })),
        )
        .await
        .unwrap();

    assert_eq!(reply.status(), StatusCode::OK);
    let token = reply.json_body().unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let set_cookies: Vec<&str> = reply.set_cookies().collect();
    assert_eq!(set_cookies.len(), 1);
    assert!(set_cookies[0].starts_with("better-auth.session_token="));
    assert!(reply
        .new_session()
        .is_some_and(|s| s.session.token == token));

    // Those cookies sign in later server-side calls.
    let headers = cookie_headers(&set_cookies);
    let session = app.auth.api().get_session(&headers).await.unwrap().unwrap();
    assert_eq!(session.session.token, token);
    let sessions = app.auth.api().list_sessions(&headers).await.unwrap();
    assert_eq!(sessions.len(), 2);
    app.auth
        .api()
        .update_user(&headers, json!({ "name": "Renamed" }))
        .await
        .unwrap();
    let out = app.auth.api().sign_out(&headers).await.unwrap();
    assert!(out
        .set_cookies()
        .any(|c| c.starts_with("better-auth.session_token=;")));
    assert!(app
        .auth
        .api()
        .get_session(&headers)
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn server_side_calls_that_need_a_session_fail_without_one() {
    let app = TestApp::new().await;

    let err = app
        .auth
        .api()
        .update_user(&HeaderMap::new(), json!({ "name": "x" }))
        .await
        .unwrap_err();

    assert_eq!(err.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(err.code(), Some("UNAUTHORIZED"));
}

#[tokio::test]
async fn revoke_session_from_rust() {
    let mut app = TestApp::new().await;
    app.signed_up("revoke-api@example.com").await;
    let mut phone = app.new_client();
    phone.sign_in("revoke-api@example.com", PASSWORD).await;

    app.auth
        .api()
        .revoke_session(&app.cookie_headers(), &phone.session_token().unwrap())
        .await
        .unwrap();

    assert!(phone.session().await.is_null());
    assert!(!app.session().await.is_null());
}
