//! `POST /sign-in/email`, as a client sees it.

use http::StatusCode;
use portcullis_tests::{TestApp, PASSWORD};
use serde_json::json;

async fn app_with_user(email: &str) -> TestApp {
    let mut app = TestApp::new().await;
    app.signed_up(email).await;
    app.jar.clear();
    app
}

#[tokio::test]
async fn sign_in_with_the_right_password_starts_a_session() {
    let mut app = app_with_user("ok@example.com").await;

    let res = app.sign_in("OK@example.com", PASSWORD).await;

    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    let body = res.json();
    assert_eq!(body["redirect"], false);
    assert!(body.get("url").is_none());
    assert_eq!(body["user"]["email"], "ok@example.com");
    let token = body["token"].as_str().expect("a token");
    let cookie = res.set_cookie("better-auth.session_token").unwrap();
    assert_eq!(
        cookie,
        format!(
            "{}; Max-Age=604800; Path=/; HttpOnly; SameSite=Lax",
            app.cookie_for_token(token)
        )
    );
    assert_eq!(app.session().await["session"]["token"], token);
}

/// Each sign-in is a new session; a sign-in in a browser that holds one ends it (ASVS 7.2.4,
/// where Better Auth keeps it), and other browsers' sessions live on.
#[tokio::test]
async fn each_sign_in_is_a_new_session_that_replaces_the_browsers() {
    let mut app = app_with_user("many@example.com").await;
    let mut other_browser = app.new_client();
    let kept = other_browser
        .sign_in("many@example.com", PASSWORD)
        .await
        .json();

    let first = app.sign_in("many@example.com", PASSWORD).await.json();
    let second = app.sign_in("many@example.com", PASSWORD).await.json();

    assert_ne!(first["token"], second["token"]);
    let user_id = first["user"]["id"].as_str().unwrap();
    let sessions = app.auth.store().active_sessions(user_id).await.unwrap();
    let tokens: Vec<&str> = sessions.iter().map(|s| s.token.as_str()).collect();
    // The sign-up's session (its browser forgot it), the other browser's, and the second.
    assert_eq!(tokens.len(), 3, "{tokens:?}");
    assert!(!tokens.contains(&first["token"].as_str().unwrap()));
    assert!(tokens.contains(&kept["token"].as_str().unwrap()));
    assert_eq!(app.session().await["session"]["token"], second["token"]);
    assert_eq!(
        other_browser.session().await["session"]["token"],
        kept["token"]
    );
}

#[tokio::test]
async fn wrong_password_and_unknown_email_get_the_same_answer() {
    let mut app = app_with_user("known@example.com").await;

    let wrong_password = app.sign_in("known@example.com", "not-the-password").await;
    let unknown_email = app.sign_in("nobody@example.com", PASSWORD).await;

    for res in [&wrong_password, &unknown_email] {
        assert_eq!(res.status, StatusCode::UNAUTHORIZED);
        assert!(res.set_cookies().is_empty());
    }
    assert_eq!(wrong_password.body, unknown_email.body);
    assert_eq!(
        wrong_password.json(),
        json!({ "message": "Invalid email or password", "code": "INVALID_EMAIL_OR_PASSWORD" })
    );
    assert!(app.jar.is_empty());
}

#[tokio::test]
async fn a_short_password_at_sign_in_is_just_a_wrong_password() {
    let mut app = app_with_user("shortpw@example.com").await;

    let res = app.sign_in("shortpw@example.com", "x").await;

    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    assert_eq!(res.code().as_deref(), Some("INVALID_EMAIL_OR_PASSWORD"));
}

#[tokio::test]
async fn sign_in_with_a_malformed_email_is_invalid_email() {
    let mut app = TestApp::new().await;

    let res = app.sign_in("not-an-email", PASSWORD).await;

    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        res.json(),
        json!({ "message": "Invalid email", "code": "INVALID_EMAIL" })
    );
}

#[tokio::test]
async fn sign_in_with_an_overlong_password_is_refused_before_any_lookup() {
    let mut app = app_with_user("longpw@example.com").await;

    let res = app.sign_in("longpw@example.com", &"p".repeat(129)).await;

    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert_eq!(res.code().as_deref(), Some("PASSWORD_TOO_LONG"));
}

#[tokio::test]
async fn sign_in_with_missing_or_mistyped_fields_is_a_validation_error() {
    let mut app = TestApp::new().await;

    for body in [
        json!({ "email": "a@example.com" }),
        json!({ "password": PASSWORD }),
        json!({ "email": "a@example.com", "password": null }),
        json!({ "email": 1, "password": PASSWORD }),
        json!({ "email": "a@example.com", "password": PASSWORD, "rememberMe": 0 }),
        json!([]),
    ] {
        let res = app.post("/sign-in/email", body.clone()).await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(res.code().as_deref(), Some("VALIDATION_ERROR"), "{body}");
    }
}

#[tokio::test]
async fn sign_in_with_a_callback_url_asks_the_client_to_redirect() {
    let mut app = app_with_user("cb@example.com").await;

    let res = app
        .post(
            "/sign-in/email",
            json!({
                "email": "cb@example.com",
                "password": PASSWORD,
                "callbackURL": "/dashboard",
            }),
        )
        .await;

    // A 200 (not a 3xx) with `redirect`, `url` and a Location header.
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    let body = res.json();
    assert_eq!(body["redirect"], true);
    assert_eq!(body["url"], "/dashboard");
    assert!(body["token"].is_string());
    assert_eq!(res.header("location"), Some("/dashboard"));
    assert!(res.set_cookie("better-auth.session_token").is_some());
    // Keys in Better Auth's order.
    let text = res.text();
    let token = body["token"].as_str().unwrap();
    assert!(
        text.starts_with(&format!(
            r#"{{"redirect":true,"token":"{token}","url":"/dashboard","user":{{"#
        )),
        "{text}"
    );
}

#[tokio::test]
async fn an_empty_callback_url_asks_for_no_redirect() {
    let mut app = app_with_user("emptycb@example.com").await;

    let res = app
        .post(
            "/sign-in/email",
            json!({ "email": "emptycb@example.com", "password": PASSWORD, "callbackURL": "" }),
        )
        .await;

    assert_eq!(res.status, StatusCode::OK);
    let body = res.json();
    assert_eq!(body["redirect"], false);
    assert_eq!(body["url"], "");
    assert_eq!(res.header("location"), None);
}

#[tokio::test]
async fn the_sign_in_answer_has_better_auths_key_order() {
    let mut app = app_with_user("order@example.com").await;

    let res = app.sign_in("order@example.com", PASSWORD).await;

    let token = res.json()["token"].as_str().unwrap().to_owned();
    assert!(
        res.text().starts_with(&format!(
            r#"{{"redirect":false,"token":"{token}","user":{{"#
        )),
        "{}",
        res.text()
    );
}

#[tokio::test]
async fn sign_in_accepts_an_html_form_post() {
    let mut app = app_with_user("form-in@example.com").await;

    let res = app
        .post_raw(
            "/sign-in/email",
            Some("application/x-www-form-urlencoded; charset=UTF-8"),
            "email=form-in%40example.com&password=correct-horse-battery",
        )
        .await;

    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    assert!(app.session_token().is_some());
}

#[tokio::test]
async fn sign_in_with_remember_me_false_is_forgotten_with_the_browser() {
    let mut app = app_with_user("forget@example.com").await;

    let res = app
        .post(
            "/sign-in/email",
            json!({ "email": "forget@example.com", "password": PASSWORD, "rememberMe": false }),
        )
        .await;

    assert_eq!(res.status, StatusCode::OK);
    let session_cookie = res.set_cookie("better-auth.session_token").unwrap();
    assert!(!session_cookie.contains("Max-Age"), "{session_cookie}");
    let marker = res.set_cookie("better-auth.dont_remember").unwrap();
    // The marker is HMAC("true") under the secret: the value Better Auth wrote for this secret.
    assert_eq!(
        marker,
        "better-auth.dont_remember=true.uVUBEA%2BQT4yqzDIwZkj4Ct3tZQrRmcrmqFfOIX%2FClg0%3D; Path=/; HttpOnly; SameSite=Lax"
    );

    // A later remembered sign-in clears the marker.
    let res = app.sign_in("forget@example.com", PASSWORD).await;
    assert!(res.expires_cookie("better-auth.dont_remember"));
    assert!(res
        .set_cookie("better-auth.session_token")
        .unwrap()
        .contains("Max-Age=604800"));
}

#[tokio::test]
async fn signing_in_again_after_sign_out_works() {
    let mut app = app_with_user("again@example.com").await;
    app.sign_in("again@example.com", PASSWORD).await;
    app.post("/sign-out", json!({})).await;
    assert!(app.session().await.is_null());

    let res = app.sign_in("again@example.com", PASSWORD).await;

    assert_eq!(res.status, StatusCode::OK);
    assert!(!app.session().await.is_null());
}
