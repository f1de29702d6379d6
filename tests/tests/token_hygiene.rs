//! Security beyond Better Auth, tokens and sessions: links die together when the password or
//! the address they were mailed for changes, and a sign-in or a password change replaces the
//! session a browser held. Each test is an attack: someone holds a link or a session token
//! from before, and tries it after.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use http::StatusCode;
use portcullis::api::ApiRequest;
use portcullis::callbacks::Delivery;
use portcullis::email::{DELETE_ACCOUNT, RESET_PASSWORD};
use portcullis::Options;
use portcullis_tests::mail::{api_path, Outbox};
use portcullis_tests::{TestApp, TestResponse, BASE_URL, PASSWORD};
use serde_json::{json, Value};

const NEW_PASSWORD: &str = "a-brand-new-password-1";

/// An engine mailing to an outbox, with change-email and mailed account deletion on.
async fn app_with(configure: impl FnOnce(&mut Options) + Send + 'static) -> (TestApp, Outbox) {
    let outbox = Outbox::new();
    let sender = outbox.sender();
    let app = TestApp::build(move |b| {
        b.email_sender(sender).options(|o| {
            o.change_email.enabled = true;
            o.change_email.update_email_without_verification = true;
            o.delete_user.enabled = true;
            o.delete_user.send_delete_account_verification = Some(Delivery::Email);
            configure(o);
        })
    })
    .await;
    (app, outbox)
}

async fn app() -> (TestApp, Outbox) {
    app_with(|_| {}).await
}

/// A reset link mailed to `email` (an attacker reading the mailbox later has it too).
async fn reset_link(app: &mut TestApp, outbox: &Outbox, email: &str) -> String {
    let n = outbox.to(RESET_PASSWORD, email).len() + 1;
    let mut anyone = app.new_client();
    let res = anyone
        .post(
            "/request-password-reset",
            json!({ "email": email, "redirectTo": "/reset" }),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    let m = outbox.wait_for(RESET_PASSWORD, email, n).await;
    m["token"].as_str().unwrap().to_owned()
}

/// A deletion link for `app`'s signed-in user.
async fn deletion_link(app: &mut TestApp, outbox: &Outbox, email: &str) -> String {
    let n = outbox.to(DELETE_ACCOUNT, email).len() + 1;
    let res = app.post("/delete-user", json!({})).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    outbox.wait_for(DELETE_ACCOUNT, email, n).await["url"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Tries a reset link both ways (the GET link and the POST); whether it still works.
async fn reset_link_works(app: &TestApp, token: &str) -> bool {
    let mut attacker = app.new_client();
    let link = attacker
        .get(&format!("/reset-password/{token}?callbackURL=%2Freset"))
        .await;
    let location = link.header("location").unwrap_or_default().to_owned();
    let post = attacker
        .post(
            "/reset-password",
            json!({ "newPassword": "attacker-password-1", "token": token }),
        )
        .await;
    let link_ok = location == format!("{BASE_URL}/reset?token={token}");
    let post_ok = post.status == StatusCode::OK;
    assert_eq!(link_ok, post_ok, "link {location}, post {}", post.text());
    if !post_ok {
        assert_eq!(post.code().as_deref(), Some("INVALID_TOKEN"));
        assert_eq!(location, format!("{BASE_URL}/reset?error=INVALID_TOKEN"));
    }
    post_ok
}

/// The signed-in owner follows a deletion link from before: refused, and the account stays.
async fn assert_deletion_link_dead(app: &mut TestApp, link: &str, email: &str) {
    let res = app.get(&api_path(link)).await;
    assert_eq!(
        res.code().as_deref(),
        Some("INVALID_TOKEN"),
        "{}",
        res.text()
    );
    assert!(user_exists(app, email).await);
}

/// `app`'s user changes the password from `PASSWORD` to `NEW_PASSWORD`.
async fn change_password(app: &mut TestApp) -> TestResponse {
    app.post(
        "/change-password",
        json!({ "currentPassword": PASSWORD, "newPassword": NEW_PASSWORD }),
    )
    .await
}

async fn user_exists(app: &TestApp, email: &str) -> bool {
    app.auth
        .store()
        .user_by_email(email)
        .await
        .unwrap()
        .is_some()
}

#[tokio::test]
async fn a_password_change_ends_outstanding_reset_and_deletion_links() {
    let (mut app, outbox) = app().await;
    app.signed_up("owner@example.com").await;
    let resets = [
        reset_link(&mut app, &outbox, "owner@example.com").await,
        reset_link(&mut app, &outbox, "owner@example.com").await,
    ];
    let deletion = deletion_link(&mut app, &outbox, "owner@example.com").await;

    let res = change_password(&mut app).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());

    for token in &resets {
        assert!(!reset_link_works(&app, token).await);
    }
    assert_deletion_link_dead(&mut app, &deletion, "owner@example.com").await;
    // The new password is the one that works.
    let mut fresh = app.new_client();
    assert_eq!(
        fresh
            .sign_in("owner@example.com", NEW_PASSWORD)
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn an_address_change_ends_the_links_mailed_to_the_old_address() {
    let (mut app, outbox) = app().await;
    app.signed_up("old@example.com").await;
    let reset = reset_link(&mut app, &outbox, "old@example.com").await;
    let deletion = deletion_link(&mut app, &outbox, "old@example.com").await;

    let res = app
        .post("/change-email", json!({ "newEmail": "new@example.com" }))
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    assert!(user_exists(&app, "new@example.com").await);

    assert!(!reset_link_works(&app, &reset).await);
    assert_deletion_link_dead(&mut app, &deletion, "new@example.com").await;
}

#[tokio::test]
async fn a_completed_reset_ends_the_other_links_but_not_other_users_links() {
    let (mut app, outbox) = app().await;
    app.signed_up("victim@example.com").await;
    let mut bystander = app.new_client();
    bystander.signed_up("bystander@example.com").await;
    let used = reset_link(&mut app, &outbox, "victim@example.com").await;
    let spare = reset_link(&mut app, &outbox, "victim@example.com").await;
    let theirs = reset_link(&mut app, &outbox, "bystander@example.com").await;
    let deletion = deletion_link(&mut app, &outbox, "victim@example.com").await;

    let res = app
        .post(
            "/reset-password",
            json!({ "newPassword": NEW_PASSWORD, "token": used }),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());

    assert!(!reset_link_works(&app, &spare).await);
    assert!(!reset_link_works(&app, &used).await);
    assert_deletion_link_dead(&mut app, &deletion, "victim@example.com").await;
    assert!(reset_link_works(&app, &theirs).await);
}

#[tokio::test]
async fn setting_a_first_password_ends_outstanding_reset_links() {
    let (mut app, outbox) = app().await;
    let me = app.signed_up("social@example.com").await;
    let id = me["user"]["id"].as_str().unwrap().to_owned();
    let reset = reset_link(&mut app, &outbox, "social@example.com").await;
    // A user without a password (as after a social sign-in) sets one, server-side.
    app.auth
        .adapter()
        .delete_many(
            "account",
            &[portcullis::storage::Where::eq("userId", id.as_str())],
        )
        .await
        .unwrap();
    let res = app
        .auth
        .api()
        .call(
            ApiRequest::new("setPassword")
                .headers(app.cookie_headers())
                .body(json!({ "newPassword": NEW_PASSWORD })),
        )
        .await;
    assert!(res.is_ok(), "{res:?}");

    assert!(!reset_link_works(&app, &reset).await);
}

/// Session fixation: an attacker plants their own session cookie in the victim's browser (a
/// shared computer, a subdomain that can set cookies), then waits for the victim to sign in.
/// Better Auth keeps the planted session alive; here the sign-in ends it.
#[tokio::test]
async fn signing_in_ends_a_session_planted_or_left_in_the_browser() {
    let (mut attacker, _outbox) = app().await;
    let planted = attacker.signed_up("attacker@example.com").await;
    let planted_token = planted["token"].as_str().unwrap().to_owned();
    let mut victim = attacker.new_client();
    victim.signed_up("victim@example.com").await;
    let own_earlier = victim.jar.clone();
    victim.jar.clear();

    for (name, cookie_jar) in [("planted", attacker.jar.clone()), ("own", own_earlier)] {
        let mut browser = attacker.new_client();
        browser.jar = cookie_jar;
        let before = browser.session().await["session"]["token"].clone();
        assert!(before.is_string(), "{name}");
        let res = browser.sign_in("victim@example.com", PASSWORD).await;
        assert_eq!(res.status, StatusCode::OK, "{name}");
        let after: Value = browser.session().await;
        assert_eq!(after["user"]["email"], "victim@example.com", "{name}");
        assert_ne!(after["session"]["token"], before, "{name}");
        // The session the browser held is gone for whoever else holds its token.
        let mut holder = attacker.new_client();
        let cookie = attacker.cookie_for_token(before.as_str().unwrap());
        holder.set_default_header("cookie", &cookie);
        assert!(holder.session().await.is_null(), "{name}");
    }
    assert!(attacker
        .auth
        .store()
        .session_and_user(&planted_token)
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn better_auths_session_reuse_is_an_option() {
    let (mut app, _outbox) = app_with(|o| {
        o.security.keep_previous_session_on_sign_in = true;
        o.security.keep_session_on_password_change = true;
    })
    .await;
    let first = app.signed_up("legacy@example.com").await;
    let first_token = first["token"].as_str().unwrap().to_owned();
    let second = app.sign_in("legacy@example.com", PASSWORD).await.json();
    assert_ne!(second["token"].as_str(), Some(first_token.as_str()));
    let store = app.auth.store();
    assert!(store
        .session_and_user(&first_token)
        .await
        .unwrap()
        .is_some());

    let res = change_password(&mut app).await;
    assert!(res.json()["token"].is_null());
    assert_eq!(app.session().await["session"]["token"], second["token"]);
}

/// A stolen session token stops working when its owner changes the password, even without
/// `revokeOtherSessions`; the owner's browser moves to the new session, `set-auth-token` and
/// the cookie cache included.
#[tokio::test]
async fn changing_the_password_rotates_the_callers_session() {
    let (mut app, _outbox) = app_with(|o| o.session.cookie_cache.enabled = true).await;
    let me = app.signed_up("rotate@example.com").await;
    let stolen = me["token"].as_str().unwrap().to_owned();
    let mut other_device = app.new_client();
    other_device.sign_in("rotate@example.com", PASSWORD).await;

    let res: TestResponse = change_password(&mut app).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    let token = res.json()["token"].as_str().unwrap().to_owned();
    assert_ne!(token, stolen);
    assert!(res
        .set_cookies()
        .iter()
        .any(|c| c.starts_with("better-auth.session_data=") && !c.contains("Max-Age=0")));

    let mut thief = app.new_client();
    thief.set_default_header("cookie", &app.cookie_for_token(&stolen));
    assert!(thief.session().await.is_null());
    assert_eq!(app.session().await["session"]["token"], token.as_str());
    // Without revokeOtherSessions, other devices stay signed in.
    assert!(!other_device.session().await.is_null());
}

/// A stolen session asks to move the address to the attacker's; the owner notices and changes
/// the password. The link mailed before the change is dead (Better Auth's stays good for its
/// hour).
#[tokio::test]
async fn a_change_email_link_from_before_a_password_change_is_dead() {
    let (mut app, outbox) =
        app_with(|o| o.change_email.update_email_without_verification = false).await;
    app.signed_up("owner2@example.com").await;
    let res = app
        .post(
            "/change-email",
            json!({ "newEmail": "attacker@example.com" }),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    let link = outbox
        .wait_for(portcullis::email::VERIFY_EMAIL, "attacker@example.com", 1)
        .await["url"]
        .as_str()
        .unwrap()
        .to_owned();
    // Links carry their issue time in whole seconds: the change comes in a later second.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let res = change_password(&mut app).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());

    let mut attacker = app.new_client();
    let res = attacker.get(&api_path(&link)).await;
    assert_eq!(res.status, StatusCode::FOUND, "{}", res.text());
    assert_eq!(res.header("location"), Some("/?error=INVALID_TOKEN"));
    assert!(user_exists(&app, "owner2@example.com").await);
    assert!(!user_exists(&app, "attacker@example.com").await);
}

/// Pending two-factor challenges (the password already given) and trusted devices end with a
/// password change too.
#[tokio::test]
async fn a_password_change_ends_pending_challenges_and_trusted_devices() {
    let (mut app, _outbox) = app().await;
    let me = app.signed_up("tf@example.com").await;
    let id = me["user"]["id"].as_str().unwrap().to_owned();
    let store = app.auth.store();
    let now = portcullis::time::now();
    for (identifier, value) in [
        ("2fa-pendingchallenge0001", id.as_str()),
        ("trust-device-sometrusteddevice0", id.as_str()),
        ("2fa-attempts-2fa-pendingchallenge0001", "0"),
    ] {
        store
            .create_verification(&portcullis::storage::Verification {
                id: app.auth.options().ids.generate(),
                identifier: identifier.into(),
                value: value.into(),
                expires_at: now + chrono::Duration::minutes(10),
                created_at: now,
                updated_at: now,
            })
            .await
            .unwrap();
    }
    change_password(&mut app).await;
    let left = |identifier: &'static str| {
        let auth = app.auth.clone();
        async move {
            auth.store()
                .verification_by_identifier(identifier)
                .await
                .unwrap()
                .is_some()
        }
    };
    assert!(!left("2fa-pendingchallenge0001").await);
    assert!(!left("trust-device-sometrusteddevice0").await);
    // Rows whose value is not the user id are not the user's tokens (they expire alone).
    assert!(left("2fa-attempts-2fa-pendingchallenge0001").await);
}
