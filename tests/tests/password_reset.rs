//! Password reset: `/request-password-reset`, `/reset-password/:token`, `/reset-password`.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use std::sync::{Arc, Mutex};

use http::StatusCode;
use portcullis::email::{RESET_PASSWORD, VERIFY_EMAIL};
use portcullis::storage::{Row, Where};
use portcullis_email_password::EmailPassword;
use portcullis_tests::mail::{api_path, query_param, MailSink};
use portcullis_tests::{seconds_from_now, TestApp, BASE_PATH, BASE_URL, PASSWORD};
use serde_json::{json, Value};

const NEW_PASSWORD: &str = "a-brand-new-password-1";
const ANSWER: &str = "If this email exists in our system, check your email for the reset link";

async fn app_with(plugin: EmailPassword) -> (TestApp, MailSink) {
    let mail = MailSink::new();
    let sender = mail.clone();
    let app = TestApp::with_email_password(plugin, move |b| b.email_sender(sender)).await;
    (app, mail)
}

async fn app() -> (TestApp, MailSink) {
    app_with(EmailPassword::default()).await
}

/// Signs `email` up, asks for a reset and returns the mailed token.
async fn reset_token(app: &mut TestApp, mail: &MailSink, email: &str) -> String {
    if app
        .auth
        .store()
        .user_by_email(email)
        .await
        .unwrap()
        .is_none()
    {
        app.signed_up(email).await;
    }
    let n = mail.to(RESET_PASSWORD, email).len() + 1;
    let res = app
        .post(
            "/request-password-reset",
            json!({ "email": email, "redirectTo": "/reset-done" }),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    mail.wait_for(RESET_PASSWORD, email, n)
        .await
        .token
        .expect("a token")
}

async fn reset(app: &mut TestApp, token: &str, password: &str) -> portcullis_tests::TestResponse {
    app.post(
        "/reset-password",
        json!({ "newPassword": password, "token": token }),
    )
    .await
}

#[tokio::test]
async fn a_request_stores_a_row_and_mails_the_link() {
    let (mut app, mail) = app().await;
    let user = app.signed_up("ada@example.com").await["user"].clone();
    let mut anonymous = app.new_client();

    let res = anonymous
        .post(
            "/request-password-reset",
            json!({ "email": "ADA@example.com", "redirectTo": "/reset-done?x=1" }),
        )
        .await;

    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.json(), json!({ "status": true, "message": ANSWER }));
    let m = mail.wait_for(RESET_PASSWORD, "ada@example.com", 1).await;
    let token = m.token.clone().unwrap();
    assert_eq!(token.len(), 24);
    assert!(token.bytes().all(|b| b.is_ascii_alphanumeric()));
    assert_eq!(
        m.url.clone().unwrap(),
        format!("{BASE_URL}{BASE_PATH}/reset-password/{token}?callbackURL=%2Freset-done%3Fx%3D1")
    );
    assert!(m.text.contains(&m.url.clone().unwrap()));
    assert!(m.subject.contains("password"));
    let row = app
        .auth
        .store()
        .verification_by_identifier(&format!("reset-password:{token}"))
        .await
        .unwrap()
        .expect("a verification row");
    assert_eq!(Value::from(row.value), user["id"]);
    let ttl = (row.expires_at - row.created_at).num_seconds();
    assert_eq!(ttl, 3600);

    // Without redirectTo the link's callbackURL is empty, as in Better Auth.
    anonymous
        .post(
            "/request-password-reset",
            json!({ "email": "ada@example.com" }),
        )
        .await;
    let m = mail.wait_for(RESET_PASSWORD, "ada@example.com", 2).await;
    assert!(m.url.unwrap().ends_with("?callbackURL="));
}

#[tokio::test]
async fn an_unknown_email_gets_the_same_answer_and_no_mail() {
    let (mut app, mail) = app().await;
    app.signed_up("known@example.com").await;
    let mut anonymous = app.new_client();

    let known = anonymous
        .post(
            "/request-password-reset",
            json!({ "email": "known@example.com" }),
        )
        .await;
    let unknown = anonymous
        .post(
            "/request-password-reset",
            json!({ "email": "ghost@example.com" }),
        )
        .await;

    assert_eq!((known.status, &known.body), (unknown.status, &unknown.body));
    mail.wait_for(RESET_PASSWORD, "known@example.com", 1).await;
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert!(mail.to(RESET_PASSWORD, "ghost@example.com").is_empty());
    assert_eq!(mail.messages().len(), 1);
}

#[tokio::test]
async fn the_emailed_link_redirects_with_the_token_or_an_error() {
    let (mut app, mail) = app().await;
    let token = reset_token(&mut app, &mail, "link@example.com").await;
    let mut browser = app.new_client();

    let res = browser
        .get(&format!(
            "/reset-password/{token}?callbackURL=%2Freset-done"
        ))
        .await;
    assert_eq!(res.status, StatusCode::FOUND);
    assert_eq!(
        res.header("location"),
        Some(&*format!("{BASE_URL}/reset-done?token={token}"))
    );

    // The callback's own query is kept; an absolute trusted URL stays absolute.
    let res = browser
        .get(&format!(
            "/reset-password/{token}?callbackURL=%2Freset%3Fstep%3D2%26token%3Dold"
        ))
        .await;
    assert_eq!(
        res.header("location"),
        Some(&*format!("{BASE_URL}/reset?step=2&token={token}"))
    );

    // Opening the link does not use the token up.
    let res = browser
        .get(&format!(
            "/reset-password/{token}?callbackURL=%2Freset-done"
        ))
        .await;
    assert_eq!(res.status, StatusCode::FOUND);

    let res = browser
        .get("/reset-password/not-a-token?callbackURL=%2Freset-done")
        .await;
    assert_eq!(res.status, StatusCode::FOUND);
    assert_eq!(
        res.header("location"),
        Some(&*format!("{BASE_URL}/reset-done?error=INVALID_TOKEN"))
    );

    // An empty callbackURL (a request without redirectTo) goes to the error page.
    let res = browser
        .get(&format!("/reset-password/{token}?callbackURL="))
        .await;
    assert_eq!(
        res.header("location"),
        Some(&*format!("{BASE_URL}{BASE_PATH}/error?error=INVALID_TOKEN"))
    );

    let res = browser.get(&format!("/reset-password/{token}")).await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert_eq!(res.code().as_deref(), Some("VALIDATION_ERROR"));
}

#[tokio::test]
async fn a_reset_changes_the_password_once() {
    let (mut app, mail) = app().await;
    let token = reset_token(&mut app, &mail, "once@example.com").await;
    let mut browser = app.new_client();

    let res = reset(&mut browser, &token, "short").await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert_eq!(res.code().as_deref(), Some("PASSWORD_TOO_SHORT"));
    let res = reset(&mut browser, &token, &"p".repeat(129)).await;
    assert_eq!(res.code().as_deref(), Some("PASSWORD_TOO_LONG"));

    let res = reset(&mut browser, &token, NEW_PASSWORD).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    assert_eq!(res.json(), json!({ "status": true }));
    assert!(res.set_cookies().is_empty(), "a reset signs nobody in");

    let again = reset(&mut browser, &token, "yet-another-password-2").await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        again.json(),
        json!({ "message": "Invalid token", "code": "INVALID_TOKEN" })
    );
    assert_eq!(
        browser.sign_in("once@example.com", PASSWORD).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        browser
            .sign_in("once@example.com", NEW_PASSWORD)
            .await
            .status,
        StatusCode::OK
    );
    // The used link now redirects with an error.
    let res = browser
        .get(&format!("/reset-password/{token}?callbackURL=%2Fr"))
        .await;
    assert_eq!(
        res.header("location"),
        Some(&*format!("{BASE_URL}/r?error=INVALID_TOKEN"))
    );
}

#[tokio::test]
async fn bad_tokens_are_invalid_token() {
    let (mut app, mail) = app().await;
    let token = reset_token(&mut app, &mail, "bad@example.com").await;

    for body in [
        json!({ "newPassword": NEW_PASSWORD }),
        json!({ "newPassword": NEW_PASSWORD, "token": "" }),
        json!({ "newPassword": NEW_PASSWORD, "token": "not-a-real-token" }),
        json!({ "newPassword": NEW_PASSWORD, "token": format!("reset-password:{token}") }),
        json!({ "newPassword": NEW_PASSWORD, "token": token.to_lowercase() }),
    ] {
        let res = app.post("/reset-password", body.clone()).await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(res.code().as_deref(), Some("INVALID_TOKEN"), "{body}");
    }
    let res = app.post("/reset-password", json!({ "token": token })).await;
    assert_eq!(res.code().as_deref(), Some("VALIDATION_ERROR"));
    // The token may come in the query instead.
    let res = app
        .post(
            &format!("/reset-password?token={token}"),
            json!({ "newPassword": NEW_PASSWORD }),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
}

#[tokio::test]
async fn an_expired_token_is_invalid_and_removed() {
    let (mut app, mail) = app().await;
    let token = reset_token(&mut app, &mail, "late@example.com").await;
    let identifier = format!("reset-password:{token}");
    app.auth
        .adapter()
        .update_many(
            "verification",
            &[Where::eq("identifier", identifier.as_str())],
            Row::new().with("expiresAt", seconds_from_now(-1)),
        )
        .await
        .unwrap();

    let res = app
        .get(&format!("/reset-password/{token}?callbackURL=%2Fr"))
        .await;
    assert_eq!(
        res.header("location"),
        Some(&*format!("{BASE_URL}/r?error=INVALID_TOKEN"))
    );
    let res = reset(&mut app, &token, NEW_PASSWORD).await;
    assert_eq!(res.code().as_deref(), Some("INVALID_TOKEN"));
    assert!(app
        .auth
        .store()
        .verification_by_identifier(&identifier)
        .await
        .unwrap()
        .is_none());
    app.jar.clear();
    assert_eq!(
        app.sign_in("late@example.com", PASSWORD).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_verification_token_is_no_reset_token() {
    let (mut app, mail) = app().await;
    app.signed_up("mixed@example.com").await;
    app.post(
        "/send-verification-email",
        json!({ "email": "mixed@example.com" }),
    )
    .await;
    let jwt = mail
        .wait_for(VERIFY_EMAIL, "mixed@example.com", 1)
        .await
        .token
        .unwrap();

    let res = reset(&mut app, &jwt, NEW_PASSWORD).await;
    assert_eq!(res.code().as_deref(), Some("INVALID_TOKEN"));
    let res = app
        .get(&format!("/reset-password/{jwt}?callbackURL=%2Fr"))
        .await;
    assert_eq!(
        res.header("location"),
        Some(&*format!("{BASE_URL}/r?error=INVALID_TOKEN"))
    );
}

#[tokio::test]
async fn a_token_changes_only_its_own_users_password() {
    let (mut app, mail) = app().await;
    let token_a = reset_token(&mut app, &mail, "a@example.com").await;
    app.jar.clear();
    app.signed_up("b@example.com").await;
    app.jar.clear();

    // Signed in as B, a reset with A's token changes A's password, not B's.
    app.sign_in("b@example.com", PASSWORD).await;
    let res = reset(&mut app, &token_a, NEW_PASSWORD).await;
    assert_eq!(res.status, StatusCode::OK);
    app.jar.clear();
    assert_eq!(
        app.sign_in("b@example.com", PASSWORD).await.status,
        StatusCode::OK
    );
    assert_eq!(
        app.sign_in("a@example.com", NEW_PASSWORD).await.status,
        StatusCode::OK
    );
}

/// Better Auth leaves a user's other reset links working after one is used; Portcullis ends
/// them all with the reset (SECURITY.md, "Tokens die together").
#[tokio::test]
async fn a_completed_reset_ends_the_users_other_links() {
    let (mut app, mail) = app().await;
    let first = reset_token(&mut app, &mail, "two@example.com").await;
    let second = reset_token(&mut app, &mail, "two@example.com").await;
    let third = reset_token(&mut app, &mail, "two@example.com").await;
    let other_user = reset_token(&mut app, &mail, "other@example.com").await;
    assert_ne!(first, second);

    assert_eq!(
        reset(&mut app, &second, NEW_PASSWORD).await.status,
        StatusCode::OK
    );
    for dead in [&first, &second, &third] {
        let res = reset(&mut app, dead, "other-password-9").await;
        assert_eq!(res.code().as_deref(), Some("INVALID_TOKEN"), "{dead}");
        let link = app
            .get(&format!("/reset-password/{dead}?callbackURL=%2Freset-done"))
            .await;
        assert_eq!(
            link.header("location"),
            Some(format!("{BASE_URL}/reset-done?error=INVALID_TOKEN").as_str())
        );
    }
    app.jar.clear();
    assert_eq!(
        app.sign_in("two@example.com", NEW_PASSWORD).await.status,
        StatusCode::OK
    );
    // Another user's link is not touched.
    assert_eq!(
        reset(&mut app, &other_user, NEW_PASSWORD).await.status,
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_resets_with_one_token_succeed_exactly_once() {
    let (mut app, mail) = app().await;
    let token = reset_token(&mut app, &mail, "race@example.com").await;

    let mut tasks = Vec::new();
    for i in 0..8 {
        let mut client = app.new_client();
        let token = token.clone();
        tasks.push(tokio::spawn(async move {
            let password = format!("racing-password-{i}");
            let res = reset(&mut client, &token, &password).await;
            (res.status, res.code(), password)
        }));
    }
    let mut winners = Vec::new();
    for t in tasks {
        let (status, code, password) = t.await.unwrap();
        match status {
            StatusCode::OK => winners.push(password),
            StatusCode::BAD_REQUEST => assert_eq!(code.as_deref(), Some("INVALID_TOKEN")),
            other => panic!("unexpected {other}"),
        }
    }

    assert_eq!(winners.len(), 1, "{winners:?}");
    app.jar.clear();
    assert_eq!(
        app.sign_in("race@example.com", &winners[0]).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn sessions_survive_a_reset_unless_revocation_is_on() {
    for revoke in [false, true] {
        let (mut app, mail) =
            app_with(EmailPassword::default().revoke_sessions_on_password_reset(revoke)).await;
        let token = reset_token(&mut app, &mail, "sessions@example.com").await;
        assert!(app.session().await.is_object());

        let mut other = app.new_client();
        assert_eq!(
            reset(&mut other, &token, NEW_PASSWORD).await.status,
            StatusCode::OK
        );

        assert_eq!(app.session().await.is_null(), revoke, "revoke = {revoke}");
    }
}

#[tokio::test]
async fn the_on_password_reset_callback_sees_the_user() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    let plugin = EmailPassword::default().on_password_reset(move |user| {
        let record = record.clone();
        async move { record.lock().unwrap().push(user.email) }
    });
    let (mut app, mail) = app_with(plugin).await;
    let token = reset_token(&mut app, &mail, "hook@example.com").await;
    assert!(seen.lock().unwrap().is_empty());

    reset(&mut app, &token, NEW_PASSWORD).await;
    reset(&mut app, &token, NEW_PASSWORD).await;

    assert_eq!(*seen.lock().unwrap(), ["hook@example.com"]);
}

#[tokio::test]
async fn a_user_without_a_password_gets_one() {
    let (mut app, mail) = app().await;
    let token = reset_token(&mut app, &mail, "social@example.com").await;
    let user = app
        .auth
        .store()
        .user_by_email("social@example.com")
        .await
        .unwrap()
        .unwrap();
    app.auth
        .adapter()
        .delete_many("account", &[Where::eq("userId", user.id.as_str())])
        .await
        .unwrap();

    assert_eq!(
        reset(&mut app, &token, NEW_PASSWORD).await.status,
        StatusCode::OK
    );

    let account = app.auth.store().credential_account(&user.id).await.unwrap();
    assert!(account.and_then(|a| a.password).is_some());
    app.jar.clear();
    assert_eq!(
        app.sign_in("social@example.com", NEW_PASSWORD).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_deleted_user_is_user_not_found() {
    let (mut app, mail) = app().await;
    let token = reset_token(&mut app, &mail, "gone@example.com").await;
    app.auth
        .adapter()
        .delete_many("user", &[Where::eq("email", "gone@example.com")])
        .await
        .unwrap();

    let res = reset(&mut app, &token, NEW_PASSWORD).await;

    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert_eq!(res.code().as_deref(), Some("USER_NOT_FOUND"));
}

#[tokio::test]
async fn recipients_must_be_one_plain_address() {
    let (mut app, mail) = app().await;
    app.signed_up("victim@example.com").await;

    for email in [
        "victim@example.com\r\nBcc: evil@example.com",
        "victim@example.com\nCc: evil@example.com",
        "victim@example.com,evil@example.com",
        "victim@example.com evil@example.com",
        "Victim <victim@example.com>",
        "victim@example.com <evil@example.com>",
    ] {
        let res = app
            .post("/request-password-reset", json!({ "email": email }))
            .await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST, "{email:?}");
        assert_eq!(res.code().as_deref(), Some("VALIDATION_ERROR"), "{email:?}");
    }
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    assert!(mail.messages().is_empty());
}

#[tokio::test]
async fn without_a_sender_reset_is_not_enabled() {
    let mut app = TestApp::new().await;
    app.signed_up("nosender@example.com").await;

    let res = app
        .post(
            "/request-password-reset",
            json!({ "email": "nosender@example.com" }),
        )
        .await;

    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        res.json(),
        json!({ "message": "Reset password isn't enabled", "code": "RESET_PASSWORD_DISABLED" })
    );
}

#[tokio::test]
async fn the_whole_flow_through_the_links() {
    let (mut app, mail) = app().await;
    app.signed_up("flow@example.com").await;
    let mut browser = app.new_client();
    browser
        .post(
            "/request-password-reset",
            json!({ "email": "flow@example.com", "redirectTo": "/reset-done" }),
        )
        .await;
    let m = mail.wait_for(RESET_PASSWORD, "flow@example.com", 1).await;

    let res = browser.get(&api_path(&m.url.unwrap())).await;
    let location = res.header("location").unwrap().to_owned();
    let token = query_param(&location, "token").unwrap();
    let res = reset(&mut browser, &token, NEW_PASSWORD).await;

    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(
        browser
            .sign_in("flow@example.com", NEW_PASSWORD)
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn redirect_targets_must_be_trusted() {
    let (mut app, mail) = app().await;
    let token = reset_token(&mut app, &mail, "redirect@example.com").await;

    let res = app
        .post(
            "/request-password-reset",
            json!({ "email": "redirect@example.com", "redirectTo": "https://evil.example/r" }),
        )
        .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    assert_eq!(res.code().as_deref(), Some("INVALID_REDIRECT_URL"));

    for callback in ["https%3A%2F%2Fevil.example%2Fr", "%2F%2Fevil.example%2Fr"] {
        let res = app
            .get(&format!("/reset-password/{token}?callbackURL={callback}"))
            .await;
        assert_eq!(res.status, StatusCode::FORBIDDEN, "{callback}");
        assert_eq!(res.code().as_deref(), Some("INVALID_CALLBACK_URL"));
    }
    // A trusted absolute URL is kept as it is.
    let res = app
        .get(&format!(
            "/reset-password/{token}?callbackURL=http%3A%2F%2Flocalhost%3A3000%2Fr"
        ))
        .await;
    assert_eq!(
        res.header("location"),
        Some(&*format!("{BASE_URL}/r?token={token}"))
    );
}

#[tokio::test]
async fn the_server_side_api_resets_too() {
    use portcullis_email_password::EmailPasswordApi as _;
    let (mut app, mail) = app().await;
    app.signed_up("api@example.com").await;
    let api = app.auth.api();

    api.request_password_reset("api@example.com", Some("/done"))
        .await
        .unwrap();
    let token = mail
        .wait_for(RESET_PASSWORD, "api@example.com", 1)
        .await
        .token
        .unwrap();
    api.reset_password(&token, NEW_PASSWORD).await.unwrap();
    let err = api.reset_password(&token, NEW_PASSWORD).await.unwrap_err();

    assert_eq!(err.code(), Some("INVALID_TOKEN"));
    app.jar.clear();
    assert_eq!(
        app.sign_in("api@example.com", NEW_PASSWORD).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn reset_and_verification_work_with_database_assigned_ids() {
    let mail = MailSink::new();
    let sender = mail.clone();
    let mut app = TestApp::build(move |b| {
        b.email_sender(sender)
            .options(|o| o.ids = portcullis::storage::IdStrategy::Serial)
    })
    .await;
    let token = reset_token(&mut app, &mail, "serial@example.com").await;
    let row = app
        .auth
        .store()
        .verification_by_identifier(&format!("reset-password:{token}"))
        .await
        .unwrap()
        .unwrap();
    assert!(row.id.parse::<i64>().is_ok(), "{}", row.id);

    assert_eq!(
        reset(&mut app, &token, NEW_PASSWORD).await.status,
        StatusCode::OK
    );
    assert_eq!(
        reset(&mut app, &token, NEW_PASSWORD)
            .await
            .code()
            .as_deref(),
        Some("INVALID_TOKEN")
    );

    app.post(
        "/send-verification-email",
        json!({ "email": "serial@example.com" }),
    )
    .await;
    let m = mail.wait_for(VERIFY_EMAIL, "serial@example.com", 1).await;
    let res = app.get(&api_path(&m.url.unwrap())).await;
    assert_eq!(res.status, StatusCode::FOUND);
    assert_eq!(app.session().await["user"]["emailVerified"], true);
}
