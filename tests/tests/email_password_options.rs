//! The email-password plugin's options, as clients see their effect.

use http::StatusCode;
use portcullis_email_password::EmailPassword;
use portcullis_tests::{TestApp, PASSWORD};
use serde_json::json;

#[tokio::test]
async fn disabled_sign_up_refuses_new_users_but_signs_in_existing_ones() {
    let mut open = TestApp::new().await;
    open.signed_up("existing@example.com").await;
    // The same database, served with sign-up turned off.
    let auth = portcullis::Auth::builder()
        .secret(portcullis_tests::SECRET)
        .base_url(portcullis_tests::BASE_URL)
        .database(open.database_url())
        .plugin(EmailPassword::default().disable_sign_up())
        .build()
        .await
        .unwrap();
    let mut closed = open.new_client();
    closed.auth = auth;

    let res = closed.sign_up("new@example.com", PASSWORD).await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        res.json(),
        json!({
            "message": "Email and password sign up is not enabled",
            "code": "EMAIL_PASSWORD_SIGN_UP_DISABLED"
        })
    );
    assert_eq!(
        closed
            .sign_in("existing@example.com", PASSWORD)
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_disabled_plugin_refuses_sign_in() {
    let mut app = TestApp::with_email_password(
        EmailPassword::default().options(|o| o.enabled = false),
        |b| b,
    )
    .await;

    let res = app.sign_in("a@example.com", PASSWORD).await;

    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert_eq!(res.code().as_deref(), Some("EMAIL_PASSWORD_DISABLED"));
}

#[tokio::test]
async fn without_auto_sign_in_sign_up_creates_no_session() {
    let mut app =
        TestApp::with_email_password(EmailPassword::default().auto_sign_in(false), |b| b).await;

    let res = app.sign_up("manual@example.com", PASSWORD).await;

    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    let body = res.json();
    assert!(body["token"].is_null());
    assert_eq!(body["user"]["email"], "manual@example.com");
    assert!(res.set_cookies().is_empty());
    assert!(app.session().await.is_null());
    let user_id = body["user"]["id"].as_str().unwrap();
    assert!(app
        .auth
        .store()
        .active_sessions(user_id)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        app.sign_in("manual@example.com", PASSWORD).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn without_auto_sign_in_a_taken_email_is_not_revealed() {
    let mut app =
        TestApp::with_email_password(EmailPassword::default().auto_sign_in(false), |b| b).await;
    let first = app.sign_up("quiet@example.com", PASSWORD).await.json();

    let second = app
        .sign_up("quiet@example.com", "some-other-password")
        .await;

    // Same shape as a new account, with an id that belongs to nobody.
    assert_eq!(second.status, StatusCode::OK);
    let body = second.json();
    assert!(body["token"].is_null());
    assert_eq!(body["user"]["email"], "quiet@example.com");
    assert_ne!(body["user"]["id"], first["user"]["id"]);
    let ghost = body["user"]["id"].as_str().unwrap();
    assert!(app.auth.store().user_by_id(ghost).await.unwrap().is_none());
    // The first password still works, the second does not.
    assert_eq!(
        app.sign_in("quiet@example.com", "some-other-password")
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn with_required_verification_unverified_users_cannot_sign_in() {
    let mut app = TestApp::with_email_password(
        EmailPassword::default().require_email_verification(true),
        |b| b,
    )
    .await;
    let up = app.sign_up("unverified@example.com", PASSWORD).await;
    assert_eq!(up.status, StatusCode::OK);
    assert!(
        up.json()["token"].is_null(),
        "no session before verification"
    );

    let res = app.sign_in("unverified@example.com", PASSWORD).await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    assert_eq!(
        res.json(),
        json!({ "message": "Email not verified", "code": "EMAIL_NOT_VERIFIED" })
    );
    assert!(res.set_cookies().is_empty());
    // A wrong password is still just a wrong password.
    let res = app
        .sign_in("unverified@example.com", "wrong-password")
        .await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);

    // Once verified, sign-in works.
    app.auth
        .adapter()
        .update_many(
            "user",
            &[portcullis::storage::Where::eq(
                "email",
                "unverified@example.com",
            )],
            portcullis::storage::Row::new().with("emailVerified", true),
        )
        .await
        .unwrap();
    assert_eq!(
        app.sign_in("unverified@example.com", PASSWORD).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn custom_password_lengths_apply_to_sign_up_and_change_password() {
    let mut app = TestApp::with_email_password(
        EmailPassword::default()
            .min_password_length(12)
            .max_password_length(20),
        |b| b,
    )
    .await;

    assert_eq!(
        app.sign_up("len@example.com", "eleven-char")
            .await
            .code()
            .as_deref(),
        Some("PASSWORD_TOO_SHORT")
    );
    assert_eq!(
        app.sign_up("len@example.com", "twenty-one-characters")
            .await
            .code()
            .as_deref(),
        Some("PASSWORD_TOO_LONG")
    );
    let ok = app.sign_up("len@example.com", "twelve-chars").await;
    assert_eq!(ok.status, StatusCode::OK);
    let res = app
        .post(
            "/change-password",
            json!({ "currentPassword": "twelve-chars", "newPassword": "short-one" }),
        )
        .await;
    assert_eq!(res.code().as_deref(), Some("PASSWORD_TOO_SHORT"));
}
