//! `/change-email` and the links it mails, as a client sees them: the mail is read from the
//! development outbox (and, once, from a real SMTP server).

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use http::StatusCode;
use portcullis::callbacks::Delivery;
use portcullis::email::{SmtpSender, CHANGE_EMAIL_CONFIRMATION, VERIFY_EMAIL};
use portcullis::storage::Row;
use portcullis::Options;
use portcullis_tests::mail::{api_path, link_in, query_param, CaughtLinks, Outbox, SmtpSink};
use portcullis_tests::{CallLog, TestApp, BASE_PATH, BASE_URL, PASSWORD, SECRET};
use serde_json::{json, Map, Value};

/// An engine whose mail goes to an outbox, with change-email on and `configure` applied.
async fn app_with(configure: impl FnOnce(&mut Options) + Send + 'static) -> (TestApp, Outbox) {
    let outbox = Outbox::new();
    let sender = outbox.sender();
    let app = TestApp::build(move |b| {
        b.email_sender(sender).options(|o| {
            o.change_email.enabled = true;
            configure(o);
        })
    })
    .await;
    (app, outbox)
}

/// Signs `email` up in `app`; returns the user id.
async fn user_id(app: &mut TestApp, email: &str) -> String {
    app.signed_up(email).await["user"]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Signs `email` up in `app` and marks the address verified; returns the user id.
async fn verified_user(app: &mut TestApp, email: &str) -> String {
    let id = user_id(app, email).await;
    app.auth
        .store()
        .update_user(&id, Row::new().with("emailVerified", true))
        .await
        .unwrap();
    id
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn claims(token: &str) -> Map<String, Value> {
    portcullis_tests::jwt::verify_hs256(SECRET.as_bytes(), token, now()).unwrap()
}

/// A token signed with the test secret, as Better Auth would sign it.
fn signed(payload: Value) -> String {
    portcullis_tests::jwt::sign_hs256(SECRET.as_bytes(), payload.as_object().unwrap())
}

fn text(m: &Value, key: &str) -> String {
    m[key].as_str().unwrap().to_owned()
}

async fn change(app: &mut TestApp, body: Value) -> portcullis_tests::TestResponse {
    app.post("/change-email", body).await
}

async fn stored_email(app: &TestApp, id: &str) -> (String, bool) {
    let u = app.auth.store().user_by_id(id).await.unwrap().unwrap();
    (u.email, u.email_verified)
}

#[tokio::test]
async fn it_is_off_unless_enabled_and_needs_a_session() {
    let outbox = Outbox::new();
    let sender = outbox.sender();
    let mut app = TestApp::build(move |b| b.email_sender(sender)).await;
    app.signed_up("off@example.com").await;

    let res = change(&mut app, json!({ "newEmail": "new@example.com" })).await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        res.json(),
        json!({ "message": "Change email is disabled", "code": "CHANGE_EMAIL_DISABLED" })
    );

    let mut anonymous = app.new_client();
    let res = change(&mut anonymous, json!({ "newEmail": "new@example.com" })).await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    assert!(outbox.settled().await.is_empty());
}

#[tokio::test]
async fn a_verified_user_gets_a_link_at_the_new_address_that_changes_it() {
    let (mut app, outbox) = app_with(|_| {}).await;
    let id = verified_user(&mut app, "old@example.com").await;

    let res = change(
        &mut app,
        json!({ "newEmail": "New@Example.com", "callbackURL": "/changed" }),
    )
    .await;

    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    assert_eq!(res.json(), json!({ "status": true }));
    assert_eq!(
        stored_email(&app, &id).await,
        ("old@example.com".into(), true)
    );
    let m = outbox.wait_for(VERIFY_EMAIL, "new@example.com", 1).await;
    let token = text(&m, "token");
    assert_eq!(
        text(&m, "url"),
        format!("{BASE_URL}{BASE_PATH}/verify-email?token={token}&callbackURL=%2Fchanged")
    );
    let c = claims(&token);
    assert_eq!(
        c.keys().collect::<Vec<_>>(),
        ["email", "updateTo", "requestType", "userId", "iat", "exp"]
    );
    assert_eq!(c["email"], "old@example.com");
    assert_eq!(c["updateTo"], "new@example.com");
    assert_eq!(c["requestType"], "change-email-verification");
    assert_eq!(c["userId"], id.as_str());
    assert!(outbox.to(VERIFY_EMAIL, "old@example.com").is_empty());

    // Opened in another browser: the address changes, stays verified, no session is made.
    let mut phone = app.new_client();
    let res = phone.get(&api_path(&text(&m, "url"))).await;
    assert_eq!(res.status, StatusCode::FOUND, "{}", res.text());
    assert_eq!(res.header("location"), Some("/changed"));
    assert!(res.set_cookies().is_empty());
    assert_eq!(
        stored_email(&app, &id).await,
        ("new@example.com".into(), true)
    );
    assert_eq!(app.session().await["user"]["email"], "new@example.com");
    assert_eq!(
        app.new_client()
            .sign_in("new@example.com", PASSWORD)
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        app.new_client()
            .sign_in("old@example.com", PASSWORD)
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );

    // The link works once: the address it was issued for is gone.
    let again = phone.get(&api_path(&text(&m, "url"))).await;
    assert_eq!(
        again.header("location"),
        Some("/changed?error=INVALID_TOKEN")
    );
    let again = phone.get(&format!("/verify-email?token={token}")).await;
    assert_eq!(again.status, StatusCode::UNAUTHORIZED);
    assert_eq!(again.code().as_deref(), Some("INVALID_TOKEN"));
}

#[tokio::test]
async fn in_json_mode_the_verification_link_answers_the_user_and_refreshes_the_cookie() {
    let (mut app, outbox) = app_with(|_| {}).await;
    let id = verified_user(&mut app, "json-old@example.com").await;
    change(&mut app, json!({ "newEmail": "json-new@example.com" })).await;
    let m = outbox
        .wait_for(VERIFY_EMAIL, "json-new@example.com", 1)
        .await;
    assert!(text(&m, "url").ends_with("&callbackURL=%2F"));

    let res = app
        .get(&format!("/verify-email?token={}", text(&m, "token")))
        .await;

    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    let body = res.json();
    assert_eq!(body["status"], true);
    assert_eq!(body["user"]["id"], id.as_str());
    assert_eq!(body["user"]["email"], "json-new@example.com");
    assert_eq!(body["user"]["emailVerified"], true);
    assert!(res
        .set_cookie("better-auth.session_token")
        .is_some_and(|c| c.contains("Max-Age=604800")));
}

#[tokio::test]
async fn with_confirmation_the_current_address_must_agree_first() {
    let (mut app, outbox) = app_with(|o| {
        o.change_email.send_change_email_confirmation = Some(Delivery::Email);
        o.email.app_name = "Acme".into();
    })
    .await;
    let id = verified_user(&mut app, "first@example.com").await;

    let res = change(
        &mut app,
        json!({ "newEmail": "second@example.com", "callbackURL": "/step" }),
    )
    .await;
    assert_eq!(res.json(), json!({ "status": true }));

    let m = outbox
        .wait_for(CHANGE_EMAIL_CONFIRMATION, "first@example.com", 1)
        .await;
    let token = text(&m, "token");
    assert_eq!(
        text(&m, "url"),
        format!("{BASE_URL}{BASE_PATH}/verify-email?token={token}&callbackURL=%2Fstep")
    );
    let c = claims(&token);
    assert_eq!(c["email"], "first@example.com");
    assert_eq!(c["updateTo"], "second@example.com");
    assert_eq!(c["requestType"], "change-email-confirmation");
    assert_eq!(c["userId"], id.as_str());
    assert!(outbox.to(VERIFY_EMAIL, "second@example.com").is_empty());

    // Confirming changes nothing yet, and mails the new address.
    let res = app.get(&api_path(&text(&m, "url"))).await;
    assert_eq!(res.status, StatusCode::FOUND);
    assert_eq!(res.header("location"), Some("/step"));
    assert_eq!(
        stored_email(&app, &id).await,
        ("first@example.com".into(), true)
    );
    let v = outbox.wait_for(VERIFY_EMAIL, "second@example.com", 1).await;
    assert_eq!(
        claims(&text(&v, "token"))["requestType"],
        "change-email-verification"
    );
    assert!(text(&v, "url").ends_with("&callbackURL=%2Fstep"));
    // In JSON mode the confirmation answers {status: true}.
    let res = app.get(&format!("/verify-email?token={token}")).await;
    assert_eq!(res.json(), json!({ "status": true }));

    let res = app.get(&api_path(&text(&v, "url"))).await;
    assert_eq!(res.status, StatusCode::FOUND);
    assert_eq!(
        stored_email(&app, &id).await,
        ("second@example.com".into(), true)
    );
    // The confirmation link is spent once the address changed.
    let res = app.get(&format!("/verify-email?token={token}")).await;
    assert_eq!(res.code().as_deref(), Some("INVALID_TOKEN"));
}

#[tokio::test]
async fn the_confirmation_may_go_through_the_applications_callback() {
    let caught = CaughtLinks::default();
    let delivery = caught.delivery();
    let (mut app, outbox) = app_with(move |o| {
        o.change_email.send_change_email_confirmation = Some(delivery);
    })
    .await;
    let id = verified_user(&mut app, "cb-old@example.com").await;

    change(&mut app, json!({ "newEmail": "cb-new@example.com" })).await;

    let mail = caught.first().await;
    assert_eq!(mail.user.id, id);
    assert_eq!(mail.user.email, "cb-old@example.com");
    assert_eq!(mail.new_email.as_deref(), Some("cb-new@example.com"));
    assert_eq!(
        mail.url,
        format!(
            "{BASE_URL}{BASE_PATH}/verify-email?token={}&callbackURL=%2F",
            mail.token
        )
    );
    assert!(outbox.settled().await.is_empty(), "the callback sends it");
    let res = app.get(&api_path(&mail.url)).await;
    assert_eq!(res.status, StatusCode::FOUND);
    outbox.wait_for(VERIFY_EMAIL, "cb-new@example.com", 1).await;
}

#[tokio::test]
async fn an_unverified_user_may_change_at_once_and_verify_the_new_address() {
    let (mut app, outbox) =
        app_with(|o| o.change_email.update_email_without_verification = true).await;
    let id = user_id(&mut app, "now-old@example.com").await;

    let res = change(
        &mut app,
        json!({ "newEmail": "now-new@example.com", "callbackURL": "/v" }),
    )
    .await;

    assert_eq!(res.json(), json!({ "status": true }));
    assert!(res.set_cookie("better-auth.session_token").is_some());
    assert_eq!(
        stored_email(&app, &id).await,
        ("now-new@example.com".into(), false)
    );
    assert_eq!(app.session().await["user"]["email"], "now-new@example.com");
    let m = outbox
        .wait_for(VERIFY_EMAIL, "now-new@example.com", 1)
        .await;
    let c = claims(&text(&m, "token"));
    assert_eq!(
        c.keys().collect::<Vec<_>>(),
        ["email", "userId", "iat", "exp"]
    );
    assert_eq!(c["email"], "now-new@example.com");
    let res = app.new_client().get(&api_path(&text(&m, "url"))).await;
    assert_eq!(res.header("location"), Some("/v"));
    assert_eq!(
        stored_email(&app, &id).await,
        ("now-new@example.com".into(), true)
    );
}

#[tokio::test]
async fn an_unverified_user_without_direct_change_gets_a_link_and_stays_unverified() {
    let (mut app, outbox) = app_with(|_| {}).await;
    let id = user_id(&mut app, "u-old@example.com").await;
    change(&mut app, json!({ "newEmail": "u-new@example.com" })).await;
    assert_eq!(
        stored_email(&app, &id).await,
        ("u-old@example.com".into(), false)
    );
    let m = outbox.wait_for(VERIFY_EMAIL, "u-new@example.com", 1).await;
    let res = app
        .get(&format!("/verify-email?token={}", text(&m, "token")))
        .await;
    assert_eq!(res.json()["user"]["emailVerified"], false);
    assert_eq!(
        stored_email(&app, &id).await,
        ("u-new@example.com".into(), false)
    );
}

#[tokio::test]
async fn a_taken_address_gets_the_same_answer_and_no_mail() {
    for direct in [false, true] {
        let (mut app, outbox) =
            app_with(move |o| o.change_email.update_email_without_verification = direct).await;
        app.new_client().signed_up("taken@example.com").await;
        let id = user_id(&mut app, "asker@example.com").await;

        let res = change(&mut app, json!({ "newEmail": "TAKEN@example.com" })).await;

        assert_eq!(res.status, StatusCode::OK);
        assert_eq!(res.json(), json!({ "status": true }));
        assert!(res.set_cookies().is_empty());
        assert!(outbox.settled().await.is_empty(), "direct={direct}");
        assert_eq!(
            stored_email(&app, &id).await,
            ("asker@example.com".into(), false)
        );
    }
}

#[tokio::test]
async fn the_same_address_is_refused_without_a_code() {
    let (mut app, outbox) = app_with(|_| {}).await;
    app.signed_up("same@example.com").await;
    let res = change(&mut app, json!({ "newEmail": "SAME@example.com" })).await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert_eq!(res.json(), json!({ "message": "Email is the same" }));
    assert!(outbox.settled().await.is_empty());
}

#[tokio::test]
async fn without_a_sender_only_the_direct_change_is_possible() {
    let mut app = TestApp::build(|b| b.options(|o| o.change_email.enabled = true)).await;
    let id = verified_user(&mut app, "nosend@example.com").await;
    let res = change(&mut app, json!({ "newEmail": "elsewhere@example.com" })).await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        res.json(),
        json!({ "message": "Verification email isn't enabled" })
    );
    // The answer is the same for a taken address: nothing is looked up first.
    app.new_client().signed_up("other@example.com").await;
    let res = change(&mut app, json!({ "newEmail": "other@example.com" })).await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        stored_email(&app, &id).await,
        ("nosend@example.com".into(), true)
    );

    let mut app = TestApp::build(|b| {
        b.options(|o| {
            o.change_email.enabled = true;
            o.change_email.update_email_without_verification = true;
        })
    })
    .await;
    app.signed_up("direct@example.com").await;
    let res = change(&mut app, json!({ "newEmail": "direct2@example.com" })).await;
    assert_eq!(res.json(), json!({ "status": true }));
    assert_eq!(app.session().await["user"]["email"], "direct2@example.com");
}

#[tokio::test]
async fn addresses_that_are_not_one_plain_address_are_refused_and_never_mailed() {
    let (mut app, outbox) =
        app_with(|o| o.change_email.update_email_without_verification = true).await;
    let id = user_id(&mut app, "plain@example.com").await;
    for bad in [
        "a@x.com\r\nBcc: evil@y.com",
        "a@x.com\nX: y",
        "a@x.com,b@y.com",
        "a@x.com;b@y.com",
        "Name <a@x.com>",
        " a@x.com",
        "",
    ] {
        let res = change(&mut app, json!({ "newEmail": bad })).await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST, "{bad:?}");
        assert_eq!(res.code().as_deref(), Some("VALIDATION_ERROR"), "{bad:?}");
    }
    let res = change(&mut app, json!({ "newEmail": ["a@x.com", "b@y.com"] })).await;
    assert_eq!(res.code().as_deref(), Some("VALIDATION_ERROR"));
    assert!(outbox.settled().await.is_empty());
    assert_eq!(
        stored_email(&app, &id).await,
        ("plain@example.com".into(), false)
    );
}

#[tokio::test]
async fn an_untrusted_callback_is_refused_before_anything_happens() {
    let (mut app, outbox) = app_with(|_| {}).await;
    verified_user(&mut app, "cbk@example.com").await;
    let res = change(
        &mut app,
        json!({ "newEmail": "cbk2@example.com", "callbackURL": "https://evil.example/x" }),
    )
    .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    assert_eq!(res.code().as_deref(), Some("INVALID_CALLBACK_URL"));
    assert!(outbox.settled().await.is_empty());
}

#[tokio::test]
async fn links_for_another_user_or_no_user_change_nothing() {
    let (mut app, outbox) = app_with(|_| {}).await;
    let a = verified_user(&mut app, "a@example.com").await;
    let mut b_client = app.new_client();
    let b = verified_user(&mut b_client, "b@example.com").await;
    change(&mut app, json!({ "newEmail": "a-new@example.com" })).await;
    let link = text(
        &outbox.wait_for(VERIFY_EMAIL, "a-new@example.com", 1).await,
        "token",
    );

    // A's link opened in B's browser.
    let res = b_client.get(&format!("/verify-email?token={link}")).await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    assert_eq!(res.code().as_deref(), Some("INVALID_USER"));
    let res = b_client
        .get(&format!("/verify-email?token={link}&callbackURL=%2Fdone"))
        .await;
    assert_eq!(res.header("location"), Some("/done?error=INVALID_USER"));

    let forged = |payload: Value| format!("/verify-email?token={}", signed(payload));
    let change_claims = |email: &str, user: &str| {
        json!({ "email": email, "updateTo": "x@example.com",
                "requestType": "change-email-verification", "userId": user,
                "iat": now(), "exp": now() + 600 })
    };
    for (path, code) in [
        // B's id with A's address: the token is not B's.
        (forged(change_claims("a@example.com", &b)), "INVALID_TOKEN"),
        (
            forged(change_claims("a@example.com", "no-such-user")),
            "USER_NOT_FOUND",
        ),
        // Better Auth 1.7 refuses change tokens that name no user.
        (
            forged(
                json!({ "email": "a@example.com", "updateTo": "x@example.com",
                           "requestType": "change-email-verification",
                           "iat": now(), "exp": now() + 600 }),
            ),
            "INVALID_TOKEN",
        ),
        (
            forged(
                json!({ "email": "a@example.com", "updateTo": "x@example.com",
                           "requestType": "change-email-verification", "userId": a,
                           "iat": now() - 7200, "exp": now() - 3600 }),
            ),
            "TOKEN_EXPIRED",
        ),
    ] {
        let res = app.new_client().get(&path).await;
        assert_eq!(res.status, StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(res.code().as_deref(), Some(code), "{path}");
    }
    assert_eq!(stored_email(&app, &a).await, ("a@example.com".into(), true));
    assert_eq!(stored_email(&app, &b).await, ("b@example.com".into(), true));
    assert!(outbox.to(VERIFY_EMAIL, "x@example.com").is_empty());

    // A's own link still works in A's browser.
    let res = app.get(&format!("/verify-email?token={link}")).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
}

#[tokio::test]
async fn an_address_taken_before_the_link_is_opened_stays_with_its_owner() {
    let (mut app, outbox) = app_with(|_| {}).await;
    let id = verified_user(&mut app, "slow@example.com").await;
    change(&mut app, json!({ "newEmail": "race@example.com" })).await;
    let m = outbox.wait_for(VERIFY_EMAIL, "race@example.com", 1).await;
    app.new_client().signed_up("race@example.com").await;

    let res = app
        .get(&format!("/verify-email?token={}", text(&m, "token")))
        .await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        res.code().as_deref(),
        Some("USER_ALREADY_EXISTS_USE_ANOTHER_EMAIL")
    );
    assert_eq!(
        stored_email(&app, &id).await,
        ("slow@example.com".into(), true)
    );
}

#[tokio::test]
async fn legacy_change_tokens_change_at_once_and_ask_to_verify() {
    let (mut app, outbox) = app_with(|_| {}).await;
    let id = verified_user(&mut app, "legacy@example.com").await;
    let token = signed(
        json!({ "email": "legacy@example.com", "updateTo": "legacy2@example.com",
                               "userId": id, "iat": now(), "exp": now() + 600 }),
    );
    let res = app.get(&format!("/verify-email?token={token}")).await;
    assert_eq!(res.json()["user"]["email"], "legacy2@example.com");
    assert_eq!(
        stored_email(&app, &id).await,
        ("legacy2@example.com".into(), false)
    );
    let m = outbox
        .wait_for(VERIFY_EMAIL, "legacy2@example.com", 1)
        .await;
    assert_eq!(claims(&text(&m, "token"))["email"], "legacy2@example.com");
}

#[tokio::test]
async fn verification_callbacks_run_around_the_change() {
    let log = CallLog::default();
    let before = log.callback("before", Some(("refused", "Not this one")));
    let after = log.callback("after", None);
    let (mut app, outbox) = app_with(move |o| {
        o.email_verification.before_email_verification = Some(before);
        o.email_verification.after_email_verification = Some(after);
    })
    .await;
    // A plain verification runs both, around marking the address.
    app.signed_up("cb@example.com").await;
    app.post(
        "/send-verification-email",
        json!({ "email": "cb@example.com" }),
    )
    .await;
    let m = outbox.wait_for(VERIFY_EMAIL, "cb@example.com", 1).await;
    let res = app.get(&api_path(&text(&m, "url"))).await;
    assert_eq!(res.status, StatusCode::FOUND);
    assert_eq!(
        log.calls(),
        [
            "before cb@example.com verified=false stored=true",
            "after cb@example.com verified=true stored=true"
        ]
    );

    // A verified user's change of address runs the after-callback only.
    change(&mut app, json!({ "newEmail": "cb2@example.com" })).await;
    let m = outbox.wait_for(VERIFY_EMAIL, "cb2@example.com", 1).await;
    app.get(&api_path(&text(&m, "url"))).await;
    assert_eq!(
        log.calls()[2..],
        ["after cb2@example.com verified=true stored=true"]
    );

    // A before-callback error is the answer, and the address stays unverified.
    let mut refused = app.new_client();
    let id = user_id(&mut refused, "refused@example.com").await;
    refused
        .post(
            "/send-verification-email",
            json!({ "email": "refused@example.com" }),
        )
        .await;
    let m = outbox
        .wait_for(VERIFY_EMAIL, "refused@example.com", 1)
        .await;
    let res = refused
        .get(&format!("/verify-email?token={}", text(&m, "token")))
        .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    assert_eq!(res.json(), json!({ "message": "Not this one" }));
    assert_eq!(
        stored_email(&app, &id).await,
        ("refused@example.com".into(), false)
    );
}

#[tokio::test]
async fn the_server_side_api_changes_email_too() {
    let (mut app, outbox) = app_with(|_| {}).await;
    verified_user(&mut app, "api-old@example.com").await;
    let reply = app
        .auth
        .api()
        .change_email(&app.cookie_headers(), "api-new@example.com", Some("/x"))
        .await
        .unwrap();
    assert_eq!(reply.json_body(), Some(&json!({ "status": true })));
    let m = outbox
        .wait_for(VERIFY_EMAIL, "api-new@example.com", 1)
        .await;
    assert_eq!(
        query_param(&text(&m, "url"), "callbackURL").as_deref(),
        Some("/x")
    );
}

#[tokio::test]
async fn the_confirmation_travels_through_real_smtp() {
    let Some(sink) = SmtpSink::start() else {
        return;
    };
    let sender = SmtpSender::new(&sink.config("Auth <auth@example.com>")).unwrap();
    let mut app = TestApp::build(move |b| {
        b.email_sender(sender).options(|o| {
            o.change_email.enabled = true;
            o.change_email.send_change_email_confirmation = Some(Delivery::Email);
            o.email.app_name = "Smtp App".into();
        })
    })
    .await;
    let id = verified_user(&mut app, "smtp-old@example.com").await;

    change(&mut app, json!({ "newEmail": "smtp-new@example.com" })).await;

    let received = sink.wait_for(1).await;
    let m = &received[0];
    assert_eq!(m["rcpt_tos"], json!(["smtp-old@example.com"]));
    assert_eq!(
        m["subject"],
        "Confirm the new email address of your Smtp App account"
    );
    let body = m["text"].as_str().unwrap();
    assert!(
        body.contains("from smtp-old@example.com to smtp-new@example.com"),
        "{body}"
    );
    let res = app.get(&api_path(&link_in(body))).await;
    assert_eq!(res.status, StatusCode::FOUND);

    let received = sink.wait_for(2).await;
    let m = &received[1];
    assert_eq!(m["rcpt_tos"], json!(["smtp-new@example.com"]));
    let res = app
        .new_client()
        .get(&api_path(&link_in(m["text"].as_str().unwrap())))
        .await;
    assert_eq!(res.status, StatusCode::FOUND);
    assert_eq!(
        stored_email(&app, &id).await,
        ("smtp-new@example.com".into(), true)
    );
}
