//! `/delete-user` confirmed by an emailed link, `/delete-user/callback`, and the
//! `before_delete`/`after_delete` callbacks, as a client sees them; mail is read from the
//! development outbox.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use http::StatusCode;
use portcullis::callbacks::Delivery;
use portcullis::email::{DELETE_ACCOUNT, RESET_PASSWORD, VERIFY_EMAIL};
use portcullis::storage::{Row, Where};
use portcullis::{ApiError, Options};
use portcullis_tests::mail::{api_path, CaughtLinks, Outbox};
use portcullis_tests::{
    seconds_from_now, CallLog, TestApp, TestResponse, BASE_PATH, BASE_URL, DAY, PASSWORD,
};
use serde_json::{json, Value};

/// An engine whose mail goes to an outbox, with delete-user on, confirmed by mail.
async fn app_with(configure: impl FnOnce(&mut Options) + Send + 'static) -> (TestApp, Outbox) {
    let outbox = Outbox::new();
    let sender = outbox.sender();
    let app = TestApp::build(move |b| {
        b.email_sender(sender).options(|o| {
            o.delete_user.enabled = true;
            o.delete_user.send_delete_account_verification = Some(Delivery::Email);
            configure(o);
        })
    })
    .await;
    (app, outbox)
}

async fn mailed_app() -> (TestApp, Outbox) {
    app_with(|_| {}).await
}

fn text(m: &Value, key: &str) -> String {
    m[key].as_str().unwrap().to_owned()
}

async fn user_exists(app: &TestApp, email: &str) -> bool {
    app.auth
        .store()
        .user_by_email(email)
        .await
        .unwrap()
        .is_some()
}

/// Asks for a deletion link as `app`'s user and returns the mail.
async fn ask(app: &mut TestApp, outbox: &Outbox, email: &str, body: Value) -> Value {
    let n = outbox.to(DELETE_ACCOUNT, email).len() + 1;
    let res = app.post("/delete-user", body).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    assert_eq!(
        res.json(),
        json!({ "success": true, "message": "Verification email sent" })
    );
    outbox.wait_for(DELETE_ACCOUNT, email, n).await
}

fn assert_invalid_token(res: &TestResponse) {
    assert_eq!(res.status, StatusCode::NOT_FOUND, "{}", res.text());
    assert_eq!(
        res.json(),
        json!({ "message": "Invalid token", "code": "INVALID_TOKEN" })
    );
}

#[tokio::test]
async fn the_link_deletes_everything_and_redirects() {
    let (mut app, outbox) = mailed_app().await;
    let id = app.signed_up("bye@example.com").await["user"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut other_device = app.new_client();
    other_device.sign_in("bye@example.com", PASSWORD).await;

    let m = ask(
        &mut app,
        &outbox,
        "bye@example.com",
        json!({ "callbackURL": "/bye" }),
    )
    .await;

    // Nothing is deleted yet; the link and the row are Better Auth's.
    assert!(user_exists(&app, "bye@example.com").await);
    let token = text(&m, "token");
    assert_eq!(token.len(), 32);
    assert!(token
        .bytes()
        .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase()));
    assert_eq!(
        text(&m, "url"),
        format!("{BASE_URL}{BASE_PATH}/delete-user/callback?token={token}&callbackURL=%2Fbye")
    );
    let row = app
        .auth
        .store()
        .verification_by_identifier(&format!("delete-account-{token}"))
        .await
        .unwrap()
        .expect("a verification row");
    assert_eq!(row.value, id);
    let ttl = (row.expires_at - row.created_at).num_seconds();
    assert!((86_399..=86_401).contains(&ttl), "{ttl}");

    let res = app.get(&api_path(&text(&m, "url"))).await;

    assert_eq!(res.status, StatusCode::FOUND, "{}", res.text());
    assert_eq!(res.header("location"), Some("/bye"));
    assert!(res.expires_cookie("better-auth.session_token"));
    assert!(!user_exists(&app, "bye@example.com").await);
    for model in ["session", "account", "verification"] {
        assert_eq!(
            app.auth.adapter().count(model, &[]).await.unwrap(),
            0,
            "{model}"
        );
    }
    assert!(app.session().await.is_null());
    assert!(other_device.session().await.is_null());
}

#[tokio::test]
async fn without_a_callback_the_link_answers_json() {
    let (mut app, outbox) = mailed_app().await;
    app.signed_up("json@example.com").await;
    let m = ask(&mut app, &outbox, "json@example.com", json!({})).await;
    assert!(text(&m, "url").ends_with("&callbackURL=%2F"));

    let res = app
        .get(&format!(
            "/delete-user/callback?token={}",
            text(&m, "token")
        ))
        .await;

    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(
        res.json(),
        json!({ "success": true, "message": "User deleted" })
    );
    assert!(res.expires_cookie("better-auth.session_token"));
    assert!(!user_exists(&app, "json@example.com").await);
}

#[tokio::test]
async fn the_token_also_works_in_the_body_of_delete_user() {
    let (mut app, outbox) = mailed_app().await;
    app.signed_up("body@example.com").await;
    let m = ask(&mut app, &outbox, "body@example.com", json!({})).await;

    let res = app
        .post("/delete-user", json!({ "token": text(&m, "token") }))
        .await;

    assert_eq!(
        res.json(),
        json!({ "success": true, "message": "User deleted" })
    );
    assert!(res.expires_cookie("better-auth.session_token"));
    assert!(!user_exists(&app, "body@example.com").await);
}

#[tokio::test]
async fn the_password_is_checked_first_and_a_link_is_sent_all_the_same() {
    let (mut app, outbox) = mailed_app().await;
    app.signed_up("pw@example.com").await;

    let res = app
        .post("/delete-user", json!({ "password": "wrong-password-1" }))
        .await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert_eq!(res.code().as_deref(), Some("INVALID_PASSWORD"));
    let res = app
        .post(
            "/delete-user",
            json!({ "password": "wrong-password-1", "token": "x".repeat(32) }),
        )
        .await;
    assert_eq!(res.code().as_deref(), Some("INVALID_PASSWORD"));
    assert!(outbox.settled().await.is_empty());

    // The right password does not skip the confirmation (Better Auth's order).
    ask(
        &mut app,
        &outbox,
        "pw@example.com",
        json!({ "password": PASSWORD }),
    )
    .await;
    assert!(user_exists(&app, "pw@example.com").await);
}

#[tokio::test]
async fn a_stale_session_still_gets_a_link_and_may_use_it() {
    let (mut app, outbox) = mailed_app().await;
    app.signed_up("old@example.com").await;
    app.backdate_session(2 * DAY).await;

    let m = ask(&mut app, &outbox, "old@example.com", json!({})).await;
    let res = app.get(&api_path(&text(&m, "url"))).await;

    assert_eq!(res.status, StatusCode::FOUND);
    assert!(!user_exists(&app, "old@example.com").await);
}

#[tokio::test]
async fn the_link_needs_the_same_users_session() {
    let (mut app, outbox) = mailed_app().await;
    app.signed_up("owner@example.com").await;
    let m = ask(&mut app, &outbox, "owner@example.com", json!({})).await;
    let path = api_path(&text(&m, "url"));

    // Signed out: Better Auth's 404 FAILED_TO_GET_USER_INFO; the token is not spent.
    let res = app.new_client().get(&path).await;
    assert_eq!(res.status, StatusCode::NOT_FOUND);
    assert_eq!(res.code().as_deref(), Some("FAILED_TO_GET_USER_INFO"));
    assert!(user_exists(&app, "owner@example.com").await);

    // Another user's session: refused, and the token is spent (as Better Auth's consume).
    let mut other = app.new_client();
    other.signed_up("other@example.com").await;
    assert_invalid_token(&other.get(&path).await);
    assert!(user_exists(&app, "owner@example.com").await);
    assert!(user_exists(&app, "other@example.com").await);
    assert_invalid_token(&app.get(&path).await);
    assert!(user_exists(&app, "owner@example.com").await);
}

#[tokio::test]
async fn expired_reused_and_foreign_tokens_delete_nothing() {
    let (mut app, outbox) = mailed_app().await;
    app.signed_up("keep@example.com").await;

    // Expired.
    let m = ask(&mut app, &outbox, "keep@example.com", json!({})).await;
    let identifier = format!("delete-account-{}", text(&m, "token"));
    app.auth
        .adapter()
        .update_many(
            "verification",
            &[Where::eq("identifier", identifier.as_str())],
            Row::new().with("expiresAt", seconds_from_now(-1)),
        )
        .await
        .unwrap();
    assert_invalid_token(&app.get(&api_path(&text(&m, "url"))).await);
    assert!(app
        .auth
        .store()
        .verification_by_identifier(&identifier)
        .await
        .unwrap()
        .is_none());

    // Tokens for another purpose: a verification JWT, a reset token, a made-up one.
    app.post(
        "/send-verification-email",
        json!({ "email": "keep@example.com" }),
    )
    .await;
    let verify = text(
        &outbox.wait_for(VERIFY_EMAIL, "keep@example.com", 1).await,
        "token",
    );
    app.post(
        "/request-password-reset",
        json!({ "email": "keep@example.com" }),
    )
    .await;
    let reset = text(
        &outbox.wait_for(RESET_PASSWORD, "keep@example.com", 1).await,
        "token",
    );
    for token in [
        verify.as_str(),
        reset.as_str(),
        "0123456789abcdefghijklmnopqrstuv",
    ] {
        assert_invalid_token(
            &app.get(&format!("/delete-user/callback?token={token}"))
                .await,
        );
        assert_invalid_token(&app.post("/delete-user", json!({ "token": token })).await);
    }
    assert!(user_exists(&app, "keep@example.com").await);

    // And a deletion token is nothing elsewhere.
    let m = ask(&mut app, &outbox, "keep@example.com", json!({})).await;
    let token = text(&m, "token");
    let res = app
        .post(
            "/reset-password",
            json!({ "newPassword": "another-password-1", "token": token }),
        )
        .await;
    assert_eq!(res.code().as_deref(), Some("INVALID_TOKEN"));
    let res = app.get(&format!("/verify-email?token={token}")).await;
    assert_eq!(res.code().as_deref(), Some("INVALID_TOKEN"));

    // Used once: the account goes. The same address signed up again cannot reuse it.
    let res = app.get(&api_path(&text(&m, "url"))).await;
    assert_eq!(res.status, StatusCode::FOUND);
    app.jar.clear();
    app.signed_up("keep@example.com").await;
    assert_invalid_token(&app.get(&api_path(&text(&m, "url"))).await);
    assert!(user_exists(&app, "keep@example.com").await);
}

#[tokio::test]
async fn of_two_racing_links_one_deletes() {
    let (mut app, outbox) = mailed_app().await;
    app.signed_up("race@example.com").await;
    let m = ask(&mut app, &outbox, "race@example.com", json!({})).await;
    let path = api_path(&text(&m, "url"));
    let (mut a, mut b) = (app.new_client(), app.new_client());
    a.jar = app.jar.clone();
    b.jar = app.jar.clone();

    let (ra, rb) = tokio::join!(a.get(&path), b.get(&path));

    let wins = [&ra, &rb]
        .iter()
        .filter(|r| r.status == StatusCode::FOUND)
        .count();
    assert_eq!(wins, 1, "{} / {}", ra.text(), rb.text());
    assert!([&ra, &rb]
        .iter()
        .all(|r| r.status == StatusCode::FOUND || r.status == StatusCode::NOT_FOUND));
    assert!(!user_exists(&app, "race@example.com").await);
}

#[tokio::test]
async fn refusals_before_anything_happens() {
    // Off: the callback answers 404 NOT_FOUND.
    let mut off = TestApp::new().await;
    off.signed_up("off@example.com").await;
    let res = off.get("/delete-user/callback?token=abc").await;
    assert_eq!(res.status, StatusCode::NOT_FOUND);
    assert_eq!(
        res.json(),
        json!({ "message": "Not found", "code": "NOT_FOUND" })
    );
    // Without a session the session check comes first, as in Better Auth.
    let res = off.new_client().post("/delete-user", json!({})).await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);

    let (mut app, outbox) = mailed_app().await;
    app.signed_up("refuse@example.com").await;
    let m = ask(&mut app, &outbox, "refuse@example.com", json!({})).await;
    let token = text(&m, "token");
    // An untrusted callback, in the link or in the request for one.
    let res = app
        .get(&format!(
            "/delete-user/callback?token={token}&callbackURL=https%3A%2F%2Fevil.example%2F"
        ))
        .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    assert_eq!(res.code().as_deref(), Some("INVALID_CALLBACK_URL"));
    let res = app
        .post("/delete-user", json!({ "callbackURL": "//evil.example" }))
        .await;
    assert_eq!(res.code().as_deref(), Some("INVALID_CALLBACK_URL"));
    // No token.
    let res = app.get("/delete-user/callback").await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert_eq!(res.code().as_deref(), Some("VALIDATION_ERROR"));
    // No session for the request.
    let res = app.new_client().post("/delete-user", json!({})).await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    assert_eq!(outbox.settled().await.len(), 1);
    assert!(user_exists(&app, "refuse@example.com").await);
    // The link still works.
    let res = app
        .get(&format!("/delete-user/callback?token={token}"))
        .await;
    assert_eq!(res.status, StatusCode::OK);
}

#[tokio::test]
async fn the_link_may_go_through_the_applications_callback() {
    let caught = CaughtLinks::default();
    let delivery = caught.delivery();
    let (mut app, outbox) = app_with(move |o| {
        o.delete_user.send_delete_account_verification = Some(delivery);
        o.delete_user.delete_token_expires_in = std::time::Duration::from_secs(600);
    })
    .await;
    let id = app.signed_up("cb@example.com").await["user"]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let res = app
        .post("/delete-user", json!({ "callbackURL": "/x" }))
        .await;
    assert_eq!(res.json()["message"], "Verification email sent");

    let mail = caught.first().await;
    assert_eq!(mail.user.id, id);
    assert!(mail
        .url
        .ends_with(&format!("?token={}&callbackURL=%2Fx", mail.token)));
    assert!(outbox.settled().await.is_empty());
    let row = app
        .auth
        .store()
        .verification_by_identifier(&format!("delete-account-{}", mail.token))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((row.expires_at - row.created_at).num_seconds(), 600);
    let res = app.get(&api_path(&mail.url)).await;
    assert_eq!(res.header("location"), Some("/x"));
}

#[tokio::test]
async fn a_delivery_error_is_the_answer() {
    let (mut app, _outbox) = app_with(|o| {
        o.delete_user.send_delete_account_verification =
            Some(Delivery::callback(|_mail, _ctx| async {
                Err(ApiError::without_code(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Mail is down",
                ))
            }));
    })
    .await;
    app.signed_up("down@example.com").await;
    let res = app.post("/delete-user", json!({})).await;
    assert_eq!(res.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(res.json(), json!({ "message": "Mail is down" }));

    // Mailed without an email sender: a 500, and the account stays.
    let mut app = TestApp::build(|b| {
        b.options(|o| {
            o.delete_user.enabled = true;
            o.delete_user.send_delete_account_verification = Some(Delivery::Email);
        })
    })
    .await;
    app.signed_up("nosender@example.com").await;
    let res = app.post("/delete-user", json!({})).await;
    assert_eq!(res.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(user_exists(&app, "nosender@example.com").await);
}

#[tokio::test]
async fn before_delete_may_refuse_and_after_delete_sees_the_user() {
    let log = CallLog::default();
    let before = log.callback("before", Some(("admin", "Admins stay")));
    let after = log.callback("after", None);
    let (mut app, outbox) = app_with(move |o| {
        o.delete_user.before_delete = Some(before);
        o.delete_user.after_delete = Some(after);
    })
    .await;

    let mut admin = app.new_client();
    admin.signed_up("admin@example.com").await;
    let m = ask(&mut admin, &outbox, "admin@example.com", json!({})).await;
    let res = admin.get(&api_path(&text(&m, "url"))).await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    assert_eq!(res.json(), json!({ "message": "Admins stay" }));
    assert!(res.set_cookies().is_empty());
    assert!(user_exists(&app, "admin@example.com").await);
    assert!(admin.session().await.is_object());

    app.signed_up("user@example.com").await;
    let m = ask(&mut app, &outbox, "user@example.com", json!({})).await;
    app.get(&api_path(&text(&m, "url"))).await;
    assert_eq!(
        log.calls(),
        [
            "before admin@example.com verified=false stored=true",
            "before user@example.com verified=false stored=true",
            "after user@example.com verified=false stored=false"
        ]
    );

    // The callbacks run for a deletion without a link too.
    let after = log.callback("after", None);
    let mut direct = TestApp::build(move |b| {
        b.options(move |o| {
            o.delete_user.enabled = true;
            o.delete_user.after_delete = Some(after);
        })
    })
    .await;
    direct.signed_up("direct@example.com").await;
    let res = direct
        .post("/delete-user", json!({ "password": PASSWORD }))
        .await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(
        log.calls().last().unwrap(),
        "after direct@example.com verified=false stored=false"
    );
}

#[tokio::test]
async fn the_server_side_api_asks_for_the_link_and_deletes_with_its_token() {
    let (mut app, outbox) = mailed_app().await;
    app.signed_up("api@example.com").await;
    let headers = app.cookie_headers();
    let api = app.auth.api();

    let asked = api.delete_user(&headers, json!({})).await.unwrap();
    assert_eq!(
        asked.json_body().unwrap()["message"],
        "Verification email sent"
    );
    let token = text(
        &outbox.wait_for(DELETE_ACCOUNT, "api@example.com", 1).await,
        "token",
    );
    let wrong = api
        .delete_user(&headers, json!({ "token": "x".repeat(32) }))
        .await
        .unwrap_err();
    assert_eq!(wrong.code(), Some("INVALID_TOKEN"));

    let done = api
        .delete_user(&headers, json!({ "token": token }))
        .await
        .unwrap();

    assert_eq!(done.json_body().unwrap()["message"], "User deleted");
    assert!(done
        .set_cookies()
        .any(|c| c.starts_with("better-auth.session_token=;")));
    assert!(!user_exists(&app, "api@example.com").await);
}

#[tokio::test]
async fn an_after_delete_failure_is_answered_with_the_cookies_expired() {
    let log = CallLog::default();
    let after = log.callback("after", Some(("audit", "Audit log unavailable")));
    let mut app = TestApp::build(move |b| {
        b.options(move |o| {
            o.delete_user.enabled = true;
            o.delete_user.after_delete = Some(after);
        })
    })
    .await;
    app.signed_up("audit@example.com").await;
    let res = app
        .post("/delete-user", json!({ "password": PASSWORD }))
        .await;
    // The hook's error is the answer, but the account is gone, and so are its cookies.
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    assert_eq!(res.json(), json!({ "message": "Audit log unavailable" }));
    assert!(!user_exists(&app, "audit@example.com").await);
    assert!(
        res.expires_cookie(&app.session_cookie_name()),
        "{:?}",
        res.set_cookies()
    );
    assert!(app.jar.get(&app.session_cookie_name()).is_none());
}
