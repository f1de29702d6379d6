//! Rate limiting over HTTP, keyed by the client address from `X-Forwarded-For`.

use http::StatusCode;
use portcullis_tests::{TestApp, PASSWORD};
use serde_json::json;

async fn limited_app() -> TestApp {
    TestApp::build(|b| {
        b.options(|o| {
            o.rate_limit.enabled = true;
            o.ip_address_headers = vec!["x-forwarded-for".into()];
        })
    })
    .await
}

#[tokio::test]
async fn the_fourth_sign_in_in_ten_seconds_from_one_address_is_429() {
    let mut app = limited_app().await;
    app.set_default_header("x-forwarded-for", "203.0.113.7");

    for i in 0..3 {
        let res = app.sign_in("nobody@example.com", PASSWORD).await;
        assert_eq!(res.status, StatusCode::UNAUTHORIZED, "attempt {}", i + 1);
    }
    let res = app.sign_in("nobody@example.com", PASSWORD).await;

    assert_eq!(res.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        res.json(),
        json!({ "message": "Too many requests. Please try again later." })
    );
    let retry: u64 = res
        .header("x-retry-after")
        .expect("an X-Retry-After header")
        .parse()
        .expect("whole seconds");
    assert!((1..=10).contains(&retry), "{retry}");
}

#[tokio::test]
async fn another_address_is_not_limited_by_the_first() {
    let mut noisy = limited_app().await;
    noisy.set_default_header("x-forwarded-for", "203.0.113.7");
    for _ in 0..4 {
        noisy.sign_in("nobody@example.com", PASSWORD).await;
    }
    assert_eq!(
        noisy.sign_in("nobody@example.com", PASSWORD).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );

    let mut quiet = noisy.new_client();
    quiet.set_default_header("x-forwarded-for", "198.51.100.2");
    let res = quiet.sign_in("nobody@example.com", PASSWORD).await;

    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    // The limited address can still use other endpoints.
    assert_eq!(noisy.get("/ok").await.status, StatusCode::OK);
}

#[tokio::test]
async fn a_limited_request_does_no_work() {
    let mut app = limited_app().await;
    app.set_default_header("x-forwarded-for", "203.0.113.9");
    for i in 0..3 {
        let email = format!("user{i}@example.com");
        assert_eq!(app.sign_up(&email, PASSWORD).await.status, StatusCode::OK);
    }

    let res = app.sign_up("user3@example.com", PASSWORD).await;

    assert_eq!(res.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(res.set_cookies().is_empty());
    assert!(app
        .auth
        .store()
        .user_by_email("user3@example.com")
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn the_limit_is_not_bypassed_by_spelling_the_path_differently() {
    let mut app = limited_app().await;
    app.set_default_header("x-forwarded-for", "203.0.113.10");
    for _ in 0..3 {
        app.sign_in("nobody@example.com", PASSWORD).await;
    }

    // A trailing slash is a 404, but it is still counted as the same path.
    let res = app
        .post(
            "/sign-in/email/",
            json!({ "email": "nobody@example.com", "password": PASSWORD }),
        )
        .await;

    assert_eq!(res.status, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn a_forwarded_header_with_several_addresses_is_not_trusted() {
    let mut app = limited_app().await;

    // Each request claims a different first hop: without a trusted proxy list the header is
    // ignored, so all of them count against one bucket.
    for i in 0..3 {
        app.set_default_header("x-forwarded-for", &format!("10.0.0.{i}, 203.0.113.1"));
        app.sign_in("nobody@example.com", PASSWORD).await;
    }
    app.set_default_header("x-forwarded-for", "10.0.0.99, 203.0.113.1");
    let res = app.sign_in("nobody@example.com", PASSWORD).await;

    assert_eq!(res.status, StatusCode::TOO_MANY_REQUESTS);
}
