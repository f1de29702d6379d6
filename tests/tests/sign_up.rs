//! `POST /sign-up/email`, as a client sees it.

use http::StatusCode;
use portcullis_tests::{TestApp, PASSWORD};
use serde_json::json;

#[tokio::test]
async fn sign_up_creates_the_user_and_signs_them_in() {
    let mut app = TestApp::new().await;

    let res = app
        .post(
            "/sign-up/email",
            json!({ "name": "Ada", "email": "Ada@Example.com", "password": PASSWORD }),
        )
        .await;

    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    let body = res.json();
    let token = body["token"].as_str().expect("a session token");
    assert_eq!(token.len(), 32);
    assert!(token.bytes().all(|b| b.is_ascii_alphanumeric()));
    let user = &body["user"];
    assert_eq!(user["email"], "ada@example.com", "email is lowercased");
    assert_eq!(user["name"], "Ada");
    assert_eq!(user["emailVerified"], false);
    assert!(user["image"].is_null());
    assert!(user.get("password").is_none());
    // The cookie carries the same token, signed.
    let cookie = res
        .set_cookie("better-auth.session_token")
        .expect("a session cookie");
    assert_eq!(
        cookie,
        format!(
            "{}; Max-Age=604800; Path=/; HttpOnly; SameSite=Lax",
            app.cookie_for_token(token)
        )
    );
    assert_eq!(app.session_token().as_deref(), Some(token));
    // And it is a live session.
    let session = app.session().await;
    assert_eq!(session["session"]["token"], token);
    assert_eq!(session["user"]["id"], user["id"]);
}

#[tokio::test]
async fn sign_up_stores_a_credential_account_with_a_hash_not_the_password() {
    let mut app = TestApp::new().await;

    let body = app.signed_up("hash@example.com").await;

    let user_id = body["user"]["id"].as_str().expect("an id");
    let store = app.auth.store();
    let user = store
        .user_by_email("hash@example.com")
        .await
        .unwrap()
        .expect("the user row");
    assert_eq!(user.id, user_id);
    let account = store
        .credential_account(user_id)
        .await
        .unwrap()
        .expect("a credential account");
    assert_eq!(account.provider_id, "credential");
    assert_eq!(account.account_id, user_id);
    let hash = account.password.expect("a password hash");
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    assert!(!hash.contains(PASSWORD));
    let sessions = store.active_sessions(user_id).await.unwrap();
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0].token, body["token"].as_str().unwrap());
}

#[tokio::test]
async fn signing_up_twice_with_one_email_is_refused() {
    let mut app = TestApp::new().await;
    app.signed_up("twice@example.com").await;

    let mut other = app.new_client();
    let res = other.sign_up("TWICE@example.com", "another-password").await;

    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        res.json(),
        json!({
            "message": "User already exists. Use another email.",
            "code": "USER_ALREADY_EXISTS_USE_ANOTHER_EMAIL"
        })
    );
    assert!(res.set_cookies().is_empty());
}

#[tokio::test]
async fn sign_up_with_a_malformed_email_is_a_validation_error() {
    let mut app = TestApp::new().await;

    for email in [
        "not-an-email",
        "a@b",
        "a b@example.com",
        "",
        "x@example.com\r\n",
    ] {
        let res = app.sign_up(email, PASSWORD).await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST, "{email:?}");
        assert_eq!(res.code().as_deref(), Some("VALIDATION_ERROR"), "{email:?}");
    }
    assert!(app
        .auth
        .store()
        .user_by_email("not-an-email")
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn sign_up_without_a_required_field_is_a_validation_error() {
    let mut app = TestApp::new().await;

    for body in [
        json!({ "email": "a@example.com", "password": PASSWORD }),
        json!({ "name": "A", "password": PASSWORD }),
        json!({ "name": "A", "email": "a@example.com" }),
        json!({}),
    ] {
        let res = app.post("/sign-up/email", body.clone()).await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(res.code().as_deref(), Some("VALIDATION_ERROR"), "{body}");
    }
}

#[tokio::test]
async fn sign_up_with_a_field_of_the_wrong_type_is_a_validation_error() {
    let mut app = TestApp::new().await;

    for body in [
        json!({ "name": "A", "email": "a@example.com", "password": 12345678 }),
        json!({ "name": null, "email": "a@example.com", "password": PASSWORD }),
        json!({ "name": "A", "email": ["a@example.com"], "password": PASSWORD }),
        json!({ "name": "A", "email": "a@example.com", "password": PASSWORD, "rememberMe": "no" }),
        json!({ "name": "A", "email": "a@example.com", "password": PASSWORD, "image": 7 }),
        json!(["A", "a@example.com", PASSWORD]),
        json!("a string"),
        json!(null),
    ] {
        let res = app.post("/sign-up/email", body.clone()).await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(res.code().as_deref(), Some("VALIDATION_ERROR"), "{body}");
    }
}

#[tokio::test]
async fn sign_up_without_a_body_is_a_validation_error() {
    let mut app = TestApp::new().await;

    let res = app.post_empty("/sign-up/email").await;

    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert_eq!(res.code().as_deref(), Some("VALIDATION_ERROR"));
}

#[tokio::test]
async fn password_length_limits_count_utf16_code_units_like_javascript() {
    let mut app = TestApp::new().await;

    // 7 code units: too short.
    let res = app.sign_up("short@example.com", "1234567").await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        res.json(),
        json!({ "message": "Password too short", "code": "PASSWORD_TOO_SHORT" })
    );
    // 129 code units: too long.
    let res = app.sign_up("long@example.com", &"x".repeat(129)).await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        res.json(),
        json!({ "message": "Password too long", "code": "PASSWORD_TOO_LONG" })
    );
    // 65 emoji are 65 characters but 130 UTF-16 code units: too long for JavaScript.
    let res = app
        .sign_up("emoji-long@example.com", &"😀".repeat(65))
        .await;
    assert_eq!(res.code().as_deref(), Some("PASSWORD_TOO_LONG"));
    // 4 emoji are 4 characters but 8 code units: long enough.
    let res = app.sign_up("emoji-ok@example.com", &"😀".repeat(4)).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    // Exactly 8 and exactly 128 pass.
    let mut c = app.new_client();
    assert_eq!(
        c.sign_up("eight@example.com", "12345678").await.status,
        StatusCode::OK
    );
    let mut c = app.new_client();
    let res = c.sign_up("max@example.com", &"y".repeat(128)).await;
    assert_eq!(res.status, StatusCode::OK);
}

#[tokio::test]
async fn email_verified_and_id_in_the_sign_up_body_are_ignored() {
    let mut app = TestApp::new().await;

    let res = app
        .post(
            "/sign-up/email",
            json!({
                "name": "Mallory",
                "email": "mallory@example.com",
                "password": PASSWORD,
                "emailVerified": true,
                "id": "chosen-by-the-client",
                "createdAt": "2000-01-01T00:00:00.000Z",
            }),
        )
        .await;

    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    let user = &res.json()["user"];
    assert_eq!(user["emailVerified"], false);
    assert_ne!(user["id"], "chosen-by-the-client");
    assert_ne!(user["createdAt"], "2000-01-01T00:00:00.000Z");
    let stored = app
        .auth
        .store()
        .user_by_email("mallory@example.com")
        .await
        .unwrap()
        .unwrap();
    assert!(!stored.email_verified);
    assert_ne!(stored.id, "chosen-by-the-client");
    assert!(app
        .auth
        .store()
        .user_by_id("chosen-by-the-client")
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn sign_up_accepts_an_html_form_post() {
    let mut app = TestApp::new().await;

    let res = app
        .post_raw(
            "/sign-up/email",
            Some("application/x-www-form-urlencoded"),
            "name=Form+User&email=form%40example.com&password=correct-horse-battery",
        )
        .await;

    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    assert_eq!(res.json()["user"]["email"], "form@example.com");
    assert_eq!(res.json()["user"]["name"], "Form User");
    assert!(app.session_token().is_some());
}

#[tokio::test]
async fn sign_up_with_remember_me_false_sets_a_browser_session_cookie() {
    let mut app = TestApp::new().await;

    let res = app
        .post(
            "/sign-up/email",
            json!({
                "name": "Brief",
                "email": "brief@example.com",
                "password": PASSWORD,
                "rememberMe": false,
            }),
        )
        .await;

    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    let token = res.json()["token"].as_str().unwrap().to_owned();
    let cookie = res.set_cookie("better-auth.session_token").unwrap();
    assert_eq!(
        cookie,
        format!(
            "{}; Path=/; HttpOnly; SameSite=Lax",
            app.cookie_for_token(&token)
        ),
        "no Max-Age: the cookie ends with the browser"
    );
    let marker = res.set_cookie("better-auth.dont_remember").unwrap();
    assert!(
        marker.starts_with("better-auth.dont_remember=true."),
        "{marker}"
    );
    assert!(!marker.contains("Max-Age"));
    // The session lives one day, not seven.
    let session = app.session().await;
    let expires =
        portcullis::time::parse(session["session"]["expiresAt"].as_str().unwrap()).unwrap();
    let created =
        portcullis::time::parse(session["session"]["createdAt"].as_str().unwrap()).unwrap();
    assert_eq!((expires - created).num_seconds(), 86_400);
}

#[tokio::test]
async fn sign_up_with_an_image_returns_it() {
    let mut app = TestApp::new().await;

    let res = app
        .post(
            "/sign-up/email",
            json!({
                "name": "Pic",
                "email": "pic@example.com",
                "password": PASSWORD,
                "image": "https://example.com/a.png",
            }),
        )
        .await;

    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.json()["user"]["image"], "https://example.com/a.png");
}
