//! Email verification: `/send-verification-email`, `/verify-email`, and verification at
//! sign-up and sign-in, as a client sees them.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use http::StatusCode;
use portcullis::email::{RESET_PASSWORD, VERIFY_EMAIL};
use portcullis::Options;
use portcullis_email_password::EmailPassword;
use portcullis_tests::mail::{api_path, query_param, FailingSender, MailSink};
use portcullis_tests::{TestApp, BASE_PATH, BASE_URL, PASSWORD, SECRET};
use serde_json::{json, Map, Value};

async fn app_with(
    plugin: EmailPassword,
    configure: impl FnOnce(&mut Options) + Send + 'static,
) -> (TestApp, MailSink) {
    let mail = MailSink::new();
    let sender = mail.clone();
    let app =
        TestApp::with_email_password(plugin, move |b| b.email_sender(sender).options(configure))
            .await;
    (app, mail)
}

async fn plain_app() -> (TestApp, MailSink) {
    app_with(EmailPassword::default(), |_| {}).await
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn claims(v: Value) -> Map<String, Value> {
    v.as_object().cloned().expect("an object")
}

/// A token signed with the test secret, as Better Auth would sign it.
fn token(payload: Value) -> String {
    portcullis_tests::jwt::sign_hs256(SECRET.as_bytes(), &claims(payload))
}

/// Asks for a verification mail as the signed-in user and returns its token.
async fn mailed_token(app: &mut TestApp, mail: &MailSink, email: &str) -> String {
    let res = app
        .post("/send-verification-email", json!({ "email": email }))
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    let email = email.to_lowercase();
    let n = mail.to(VERIFY_EMAIL, &email).len();
    mail.wait_for(VERIFY_EMAIL, &email, n)
        .await
        .token
        .expect("a token")
}

#[tokio::test]
async fn the_link_carries_a_better_auth_jwt_and_the_callback() {
    let (mut app, mail) = plain_app().await;
    let user = app.signed_up("jwt@example.com").await["user"].clone();

    let res = app
        .post(
            "/send-verification-email",
            json!({ "email": "jwt@example.com", "callbackURL": "/verified?x=1" }),
        )
        .await;

    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.json(), json!({ "status": true }));
    let m = mail.wait_for(VERIFY_EMAIL, "jwt@example.com", 1).await;
    let token = m.token.clone().expect("a token");
    let url = m.url.clone().expect("a link");
    assert_eq!(
        url,
        format!("{BASE_URL}{BASE_PATH}/verify-email?token={token}&callbackURL=%2Fverified%3Fx%3D1")
    );
    assert!(m.text.contains(&url) && m.html.contains(&url.replace('&', "&amp;")));
    // Header exactly {"alg":"HS256"}; payload {email, userId, iat, exp} with a one-hour life.
    assert!(token.starts_with("eyJhbGciOiJIUzI1NiJ9."));
    let c = portcullis_tests::jwt::verify_hs256(SECRET.as_bytes(), &token, now()).unwrap();
    assert_eq!(
        c.keys().collect::<Vec<_>>(),
        ["email", "userId", "iat", "exp"]
    );
    assert_eq!(c["email"], "jwt@example.com");
    assert_eq!(c["userId"], user["id"]);
    assert_eq!(
        c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(),
        3600
    );

    // Without callbackURL the link leads to "/".
    app.post(
        "/send-verification-email",
        json!({ "email": "jwt@example.com" }),
    )
    .await;
    let m = mail.wait_for(VERIFY_EMAIL, "jwt@example.com", 2).await;
    assert!(m.url.unwrap().ends_with("&callbackURL=%2F"));
}

#[tokio::test]
async fn verifying_in_json_mode_marks_the_email_and_answers_user_null() {
    let (mut app, mail) = plain_app().await;
    app.signed_up("json@example.com").await;
    let token = mailed_token(&mut app, &mail, "json@example.com").await;
    let mut fresh = app.new_client();

    let res = fresh.get(&format!("/verify-email?token={token}")).await;

    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    assert_eq!(res.json(), json!({ "status": true, "user": null }));
    // autoSignInAfterVerification is off by default: no session for the fresh client.
    assert!(res.set_cookies().is_empty());
    assert_eq!(app.session().await["user"]["emailVerified"], true);
    // Verifying again is the same success.
    let again = fresh.get(&format!("/verify-email?token={token}")).await;
    assert_eq!(again.json(), json!({ "status": true, "user": null }));
}

#[tokio::test]
async fn auto_sign_in_after_verification_signs_a_fresh_browser_in() {
    let (mut app, mail) = app_with(EmailPassword::default(), |o| {
        o.email_verification.auto_sign_in_after_verification = true
    })
    .await;
    let user = app.signed_up("auto@example.com").await["user"].clone();
    let token = mailed_token(&mut app, &mail, "auto@example.com").await;
    let mut fresh = app.new_client();

    let res = fresh
        .get(&format!(
            "/verify-email?token={token}&callbackURL=%2Fwelcome"
        ))
        .await;

    assert_eq!(res.status, StatusCode::FOUND);
    assert_eq!(res.header("location"), Some("/welcome"));
    assert!(res.set_cookie("better-auth.session_token").is_some());
    let session = fresh.session().await;
    assert_eq!(session["user"]["id"], user["id"]);
    assert_eq!(session["user"]["emailVerified"], true);
    // The signed-in browser that verifies keeps its session (its cookie is refreshed).
    let before = app.session_token();
    let token =
        portcullis_tests::mail::query_param(&mail.messages()[0].url.clone().unwrap(), "token")
            .unwrap();
    let res = app.get(&format!("/verify-email?token={token}")).await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(app.session_token(), before);
}

#[tokio::test]
async fn errors_redirect_to_the_callback_or_answer_401() {
    let (mut app, mail) = plain_app().await;
    app.signed_up("err@example.com").await;
    let good = mailed_token(&mut app, &mail, "err@example.com").await;
    let expired = token(json!({
        "email": "err@example.com", "iat": now() - 7200, "exp": now() - 3600
    }));
    let other_secret = portcullis_tests::jwt::sign_hs256(
        b"some-other-secret-of-at-least-32-chars",
        &claims(json!({ "email": "err@example.com", "iat": now(), "exp": now() + 60 })),
    );
    let mut tampered = good.clone();
    tampered.pop();
    tampered.push(if good.ends_with('A') { 'B' } else { 'A' });

    for (token, code) in [
        (expired.as_str(), "TOKEN_EXPIRED"),
        (other_secret.as_str(), "INVALID_TOKEN"),
        (tampered.as_str(), "INVALID_TOKEN"),
        ("garbage.token.value", "INVALID_TOKEN"),
        ("", "INVALID_TOKEN"),
    ] {
        let res = app.get(&format!("/verify-email?token={token}")).await;
        assert_eq!(res.status, StatusCode::UNAUTHORIZED, "{token}");
        assert_eq!(res.code().as_deref(), Some(code), "{token}");

        let res = app
            .get(&format!("/verify-email?token={token}&callbackURL=%2Fv"))
            .await;
        assert_eq!(res.status, StatusCode::FOUND);
        assert_eq!(res.header("location"), Some(&*format!("/v?error={code}")));

        let res = app
            .get(&format!(
                "/verify-email?token={token}&callbackURL=%2Fv%3Fstep%3D2"
            ))
            .await;
        assert_eq!(
            res.header("location"),
            Some(&*format!("/v?step=2&error={code}"))
        );
    }
    let res = app.get("/verify-email").await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert_eq!(res.code().as_deref(), Some("VALIDATION_ERROR"));
    assert_eq!(app.session().await["user"]["emailVerified"], false);
}

#[tokio::test]
async fn tokens_for_another_purpose_or_user_verify_nothing() {
    let (mut app, mail) = plain_app().await;
    let user = app.signed_up("purpose@example.com").await["user"].clone();

    // A password reset token is no verification token.
    app.post(
        "/request-password-reset",
        json!({ "email": "purpose@example.com" }),
    )
    .await;
    let reset = mail
        .wait_for(RESET_PASSWORD, "purpose@example.com", 1)
        .await
        .token
        .unwrap();
    let res = app.get(&format!("/verify-email?token={reset}")).await;
    assert_eq!(res.code().as_deref(), Some("INVALID_TOKEN"));

    // A change-email token that names no user is refused, as Better Auth 1.7 does.
    let change = token(json!({
        "email": "purpose@example.com", "updateTo": "new@example.com",
        "requestType": "change-email-verification", "iat": now(), "exp": now() + 60
    }));
    let res = app.get(&format!("/verify-email?token={change}")).await;
    assert_eq!(res.code().as_deref(), Some("INVALID_TOKEN"));

    // A token issued to another user id for this email: the account was re-created. Better
    // Auth 1.7.25 answers INVALID_TOKEN (1.7.1 answered INVALID_USER).
    let stale = token(json!({
        "email": "purpose@example.com", "userId": "someone-else",
        "iat": now(), "exp": now() + 60
    }));
    let res = app.get(&format!("/verify-email?token={stale}")).await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    assert_eq!(res.code().as_deref(), Some("INVALID_TOKEN"));

    // No user with that email.
    let nobody = token(json!({ "email": "nobody@example.com", "iat": now(), "exp": now() + 60 }));
    let res = app.get(&format!("/verify-email?token={nobody}")).await;
    assert_eq!(res.code().as_deref(), Some("USER_NOT_FOUND"));

    // A token without userId (as Better Auth 1.7.1 issued them) verifies the email's user.
    let legacy = token(json!({ "email": "purpose@example.com", "iat": now(), "exp": now() + 60 }));
    assert_eq!(app.session().await["user"]["emailVerified"], false);
    let res = app.get(&format!("/verify-email?token={legacy}")).await;
    assert_eq!(res.json(), json!({ "status": true, "user": null }));
    let stored = app
        .auth
        .store()
        .user_by_id(user["id"].as_str().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert!(stored.email_verified);
}

#[tokio::test]
async fn with_a_session_the_email_must_be_the_users_own_and_unverified() {
    let (mut app, mail) = plain_app().await;
    app.signed_up("own@example.com").await;

    let res = app
        .post(
            "/send-verification-email",
            json!({ "email": "someone@example.com" }),
        )
        .await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert_eq!(res.code().as_deref(), Some("EMAIL_MISMATCH"));

    let token = mailed_token(&mut app, &mail, "OWN@example.com").await;
    app.get(&format!("/verify-email?token={token}")).await;
    let res = app
        .post(
            "/send-verification-email",
            json!({ "email": "own@example.com" }),
        )
        .await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        res.json(),
        json!({ "message": "Email is already verified", "code": "EMAIL_ALREADY_VERIFIED" })
    );
}

#[tokio::test]
async fn without_a_session_the_answer_never_tells_whether_the_email_exists() {
    let (mut app, mail) = plain_app().await;
    app.signed_up("verified@example.com").await;
    let token = mailed_token(&mut app, &mail, "verified@example.com").await;
    app.get(&format!("/verify-email?token={token}")).await;
    app.signed_up("pending@example.com").await;
    let mut anonymous = app.new_client();
    let before = mail.messages().len();

    let mut answers = Vec::new();
    for email in [
        "nobody@example.com",
        "verified@example.com",
        "pending@example.com",
    ] {
        let started = std::time::Instant::now();
        let res = anonymous
            .post("/send-verification-email", json!({ "email": email }))
            .await;
        assert!(started.elapsed() >= std::time::Duration::from_millis(500));
        answers.push((res.status, res.json()));
    }

    assert!(answers
        .iter()
        .all(|a| *a == (StatusCode::OK, json!({ "status": true }))));
    let sent = &mail.messages()[before..];
    assert_eq!(sent.len(), 1, "only the unverified user gets mail");
    assert_eq!(sent[0].to.as_str(), "pending@example.com");
}

#[tokio::test]
async fn recipients_must_be_one_plain_address() {
    let (mut app, mail) = plain_app().await;
    app.signed_up("plain@example.com").await;
    let mut anonymous = app.new_client();

    for email in [
        "plain@example.com\r\nBcc: evil@example.com",
        "plain@example.com\nBcc: evil@example.com",
        "plain@example.com,evil@example.com",
        "plain@example.com;evil@example.com",
        "Plain <plain@example.com>",
        "\"Plain\" <plain@example.com>",
        "<plain@example.com>",
    ] {
        for client in [&mut app, &mut anonymous] {
            let res = client
                .post("/send-verification-email", json!({ "email": email }))
                .await;
            assert_eq!(res.status, StatusCode::BAD_REQUEST, "{email:?}");
            assert_eq!(res.code().as_deref(), Some("VALIDATION_ERROR"), "{email:?}");
        }
    }
    assert!(mail.messages().is_empty());
}

#[tokio::test]
async fn without_a_sender_verification_is_not_enabled() {
    let mut app = TestApp::new().await;
    app.signed_up("nosender@example.com").await;

    let res = app
        .post(
            "/send-verification-email",
            json!({ "email": "nosender@example.com" }),
        )
        .await;

    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        res.json(),
        json!({ "message": "Verification email isn't enabled", "code": "VERIFICATION_EMAIL_NOT_ENABLED" })
    );
}

#[tokio::test]
async fn a_sender_that_fails_is_a_500_for_the_signed_in_user() {
    let mut app = TestApp::build(|b| b.email_sender(FailingSender)).await;
    app.signed_up("fails@example.com").await;

    let res = app
        .post(
            "/send-verification-email",
            json!({ "email": "fails@example.com" }),
        )
        .await;

    assert_eq!(res.status, StatusCode::INTERNAL_SERVER_ERROR);
}

#[tokio::test]
async fn send_on_sign_up_mails_the_link_with_the_sign_up_callback() {
    let (mut app, mail) = app_with(EmailPassword::default(), |o| {
        o.email_verification.send_on_sign_up = Some(true)
    })
    .await;

    let res = app
        .post(
            "/sign-up/email",
            json!({ "name": "New", "email": "new@example.com", "password": PASSWORD,
                    "callbackURL": "/dashboard" }),
        )
        .await;

    assert_eq!(res.status, StatusCode::OK);
    assert!(res.json()["token"].is_string(), "signed in as usual");
    let m = mail.wait_for(VERIFY_EMAIL, "new@example.com", 1).await;
    assert_eq!(
        query_param(&m.url.unwrap(), "callbackURL").as_deref(),
        Some("/dashboard")
    );
    // Without sendOnSignUp (and without requireEmailVerification) nothing is sent.
    let (mut quiet, quiet_mail) = plain_app().await;
    quiet.signed_up("quiet@example.com").await;
    assert!(quiet_mail.messages().is_empty());
}

#[tokio::test]
async fn require_email_verification_blocks_sign_in_until_the_link_is_opened() {
    let (mut app, mail) = app_with(
        EmailPassword::default().require_email_verification(true),
        |o| {
            o.email_verification.send_on_sign_in = true;
            o.email_verification.auto_sign_in_after_verification = true;
        },
    )
    .await;

    // Sign-up: no session, and (sendOnSignUp follows requireEmailVerification) a link.
    let res = app.sign_up("strict@example.com", PASSWORD).await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.json()["token"], Value::Null);
    assert!(res.set_cookies().is_empty());
    mail.wait_for(VERIFY_EMAIL, "strict@example.com", 1).await;

    // Sign-in: 403, and a fresh link (sendOnSignIn).
    let res = app.sign_in("strict@example.com", PASSWORD).await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    assert_eq!(
        res.json(),
        json!({ "message": "Email not verified", "code": "EMAIL_NOT_VERIFIED" })
    );
    let m = mail.wait_for(VERIFY_EMAIL, "strict@example.com", 2).await;
    // A wrong password is still a wrong password, and sends nothing.
    let res = app.sign_in("strict@example.com", "wrong-password-1").await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    assert_eq!(mail.to(VERIFY_EMAIL, "strict@example.com").len(), 2);

    let res = app.get(&api_path(&m.url.unwrap())).await;
    assert_eq!(res.status, StatusCode::FOUND);
    assert_eq!(res.header("location"), Some("/"));
    assert_eq!(app.session().await["user"]["emailVerified"], true);
    app.jar.clear();
    let res = app.sign_in("strict@example.com", PASSWORD).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
}

#[tokio::test]
async fn require_email_verification_without_send_on_sign_in_sends_nothing_at_sign_in() {
    let (mut app, mail) = app_with(
        EmailPassword::default().require_email_verification(true),
        |o| o.email_verification.send_on_sign_up = Some(false),
    )
    .await;
    app.sign_up("silent@example.com", PASSWORD).await;

    let res = app.sign_in("silent@example.com", PASSWORD).await;

    assert_eq!(res.status, StatusCode::FORBIDDEN);
    assert!(mail.messages().is_empty());
}

#[tokio::test]
async fn names_are_escaped_in_the_html_part() {
    let (mut app, mail) = plain_app().await;
    app.post(
        "/sign-up/email",
        json!({ "name": "<img src=x onerror=alert(1)> & \"co\"", "email": "xss@example.com",
                "password": PASSWORD }),
    )
    .await;

    let token = mailed_token(&mut app, &mail, "xss@example.com").await;

    let m = mail.to(VERIFY_EMAIL, "xss@example.com").pop().unwrap();
    assert_eq!(m.token.as_deref(), Some(token.as_str()));
    assert!(m
        .html
        .contains("&lt;img src=x onerror=alert(1)&gt; &amp; &quot;co&quot;"));
    assert!(!m.html.contains("<img"));
    assert!(m.text.contains("<img src=x onerror=alert(1)> & \"co\""));
}

#[tokio::test]
async fn an_untrusted_callback_is_refused_before_anything_happens() {
    let (mut app, mail) = plain_app().await;
    app.signed_up("cb@example.com").await;
    let res = app
        .post(
            "/send-verification-email",
            json!({ "email": "cb@example.com", "callbackURL": "https://evil.example/" }),
        )
        .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    assert_eq!(res.code().as_deref(), Some("INVALID_CALLBACK_URL"));
    assert!(mail.messages().is_empty());

    let token = mailed_token(&mut app, &mail, "cb@example.com").await;
    let res = app
        .get(&format!(
            "/verify-email?token={token}&callbackURL=https%3A%2F%2Fevil.example%2F"
        ))
        .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    assert_eq!(res.code().as_deref(), Some("INVALID_CALLBACK_URL"));
    assert_eq!(app.session().await["user"]["emailVerified"], false);
}

#[tokio::test]
async fn the_server_side_api_verifies_too() {
    let (mut app, mail) = plain_app().await;
    app.signed_up("api@example.com").await;
    let headers = app.cookie_headers();
    let api = app.auth.api();

    api.send_verification_email(&headers, "api@example.com", Some("/v"))
        .await
        .unwrap();
    let token = mail
        .wait_for(VERIFY_EMAIL, "api@example.com", 1)
        .await
        .token
        .unwrap();
    let reply = api.verify_email(&token).await.unwrap();
    let err = api.verify_email("garbage").await.unwrap_err();

    assert_eq!(
        reply.json_body(),
        Some(&json!({ "status": true, "user": null }))
    );
    assert_eq!(err.code(), Some("INVALID_TOKEN"));
    assert_eq!(app.session().await["user"]["emailVerified"], true);
}
