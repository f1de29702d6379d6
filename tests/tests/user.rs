//! The signed-in user: `/update-user` and `/change-password`.

use http::StatusCode;
use portcullis_tests::{TestApp, PASSWORD};
use serde_json::json;

const TOKEN_COOKIE: &str = "better-auth.session_token";

// --- update-user -------------------------------------------------------------------------

#[tokio::test]
async fn update_user_changes_name_and_image() {
    let mut app = TestApp::new().await;
    let me = app.signed_up("upd@example.com").await;
    let token = me["token"].as_str().unwrap();

    let res = app
        .post(
            "/update-user",
            json!({ "name": "New Name", "image": "https://example.com/me.png" }),
        )
        .await;

    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    assert_eq!(res.json(), json!({ "status": true }));
    // The session cookie is re-set with the same value.
    assert_eq!(
        res.set_cookie(TOKEN_COOKIE).unwrap(),
        format!(
            "{}; Max-Age=604800; Path=/; HttpOnly; SameSite=Lax",
            app.cookie_for_token(token)
        )
    );
    let user = &app.session().await["user"];
    assert_eq!(user["name"], "New Name");
    assert_eq!(user["image"], "https://example.com/me.png");
    assert_eq!(user["email"], "upd@example.com");
    assert!(user["updatedAt"].as_str().unwrap() >= me["user"]["updatedAt"].as_str().unwrap());
}

#[tokio::test]
async fn update_user_with_a_null_image_clears_it() {
    let mut app = TestApp::new().await;
    app.post(
        "/sign-up/email",
        json!({
            "name": "Pic",
            "email": "clear@example.com",
            "password": PASSWORD,
            "image": "https://example.com/a.png",
        }),
    )
    .await;

    let res = app.post("/update-user", json!({ "image": null })).await;

    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    assert!(app.session().await["user"]["image"].is_null());
    let stored = app
        .auth
        .store()
        .user_by_email("clear@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.image, None);
    assert_eq!(stored.name, "Pic");
}

#[tokio::test]
async fn update_user_cannot_change_the_email() {
    let mut app = TestApp::new().await;
    app.signed_up("fixed@example.com").await;

    let res = app
        .post(
            "/update-user",
            json!({ "name": "X", "email": "other@example.com" }),
        )
        .await;

    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        res.json(),
        json!({ "message": "Email can not be updated", "code": "EMAIL_CAN_NOT_BE_UPDATED" })
    );
    let user = &app.session().await["user"];
    assert_eq!(user["email"], "fixed@example.com");
    assert_eq!(user["name"], "Test User");
}

#[tokio::test]
async fn update_user_with_nothing_to_update_has_no_code() {
    let mut app = TestApp::new().await;
    app.signed_up("nothing@example.com").await;

    for body in [
        json!({}),
        json!({ "emailVerified": true }),
        json!({ "id": "x" }),
    ] {
        let res = app.post("/update-user", body.clone()).await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(
            res.json(),
            json!({ "message": "No fields to update" }),
            "{body}"
        );
    }
    assert_eq!(app.session().await["user"]["emailVerified"], false);
}

#[tokio::test]
async fn update_user_with_an_array_body_is_refused() {
    let mut app = TestApp::new().await;
    app.signed_up("array@example.com").await;

    let res = app.post("/update-user", json!([{ "name": "x" }])).await;

    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        res.json(),
        json!({
            "message": "[body] Invalid input: expected record, received array",
            "code": "VALIDATION_ERROR"
        })
    );
}

#[tokio::test]
async fn update_user_with_a_mistyped_name_is_a_validation_error() {
    let mut app = TestApp::new().await;
    app.signed_up("typed@example.com").await;

    for body in [json!({ "name": 42 }), json!({ "name": null })] {
        let res = app.post("/update-user", body.clone()).await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(res.code().as_deref(), Some("VALIDATION_ERROR"), "{body}");
    }
    assert_eq!(app.session().await["user"]["name"], "Test User");
}

#[tokio::test]
async fn update_user_without_a_session_is_unauthorized() {
    let mut app = TestApp::new().await;

    let res = app.post("/update-user", json!({ "name": "Ghost" })).await;

    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    assert_eq!(res.code().as_deref(), Some("UNAUTHORIZED"));
}

#[tokio::test]
async fn update_user_only_changes_the_signed_in_user() {
    let mut app = TestApp::new().await;
    app.signed_up("one@example.com").await;
    let mut other = app.new_client();
    other.signed_up("two@example.com").await;

    app.post("/update-user", json!({ "name": "Renamed" })).await;

    assert_eq!(other.session().await["user"]["name"], "Test User");
}

// --- change-password ---------------------------------------------------------------------

#[tokio::test]
async fn change_password_replaces_the_password() {
    let mut app = TestApp::new().await;
    let me = app.signed_up("chpw@example.com").await;

    let res = app
        .post(
            "/change-password",
            json!({ "currentPassword": PASSWORD, "newPassword": "a-brand-new-password" }),
        )
        .await;

    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    let body = res.json();
    assert_eq!(body["user"]["id"], me["user"]["id"]);
    // The caller stays signed in, on a new session: the old token is dead (where Better Auth
    // keeps it), the new one arrives as a cookie and in the body.
    let new_token = body["token"].as_str().expect("a new session token");
    assert_ne!(Some(new_token), me["token"].as_str());
    assert_eq!(app.session().await["session"]["token"], new_token);
    let mut old_cookie = app.new_client();
    let old = app.cookie_for_token(me["token"].as_str().unwrap());
    old_cookie.set_default_header("cookie", &old);
    assert!(old_cookie.session().await.is_null());
    let mut fresh = app.new_client();
    let old = fresh.sign_in("chpw@example.com", PASSWORD).await;
    assert_eq!(old.status, StatusCode::UNAUTHORIZED);
    assert_eq!(old.code().as_deref(), Some("INVALID_EMAIL_OR_PASSWORD"));
    let new = fresh
        .sign_in("chpw@example.com", "a-brand-new-password")
        .await;
    assert_eq!(new.status, StatusCode::OK);
}

#[tokio::test]
async fn change_password_with_the_wrong_current_password_is_refused() {
    let mut app = TestApp::new().await;
    app.signed_up("wrongpw@example.com").await;

    let res = app
        .post(
            "/change-password",
            json!({ "currentPassword": "not-my-password", "newPassword": "a-brand-new-password" }),
        )
        .await;

    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        res.json(),
        json!({ "message": "Invalid password", "code": "INVALID_PASSWORD" })
    );
    let mut fresh = app.new_client();
    assert_eq!(
        fresh.sign_in("wrongpw@example.com", PASSWORD).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn change_password_checks_the_new_passwords_length() {
    let mut app = TestApp::new().await;
    app.signed_up("lenpw@example.com").await;

    let short = app
        .post(
            "/change-password",
            json!({ "currentPassword": PASSWORD, "newPassword": "short" }),
        )
        .await;
    let long = app
        .post(
            "/change-password",
            json!({ "currentPassword": PASSWORD, "newPassword": "z".repeat(129) }),
        )
        .await;

    assert_eq!(short.status, StatusCode::BAD_REQUEST);
    assert_eq!(short.code().as_deref(), Some("PASSWORD_TOO_SHORT"));
    assert_eq!(long.status, StatusCode::BAD_REQUEST);
    assert_eq!(long.code().as_deref(), Some("PASSWORD_TOO_LONG"));
}

#[tokio::test]
async fn change_password_without_a_password_account_is_credential_account_not_found() {
    let mut app = TestApp::new().await;
    let me = app.signed_up("nocred@example.com").await;
    // As for a user who only ever signed in with a social provider.
    let user_id = me["user"]["id"].as_str().unwrap();
    app.auth
        .adapter()
        .delete_many(
            "account",
            &[portcullis::storage::Where::eq("userId", user_id)],
        )
        .await
        .unwrap();

    let res = app
        .post(
            "/change-password",
            json!({ "currentPassword": PASSWORD, "newPassword": "a-brand-new-password" }),
        )
        .await;

    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        res.json(),
        json!({ "message": "Credential account not found", "code": "CREDENTIAL_ACCOUNT_NOT_FOUND" })
    );
}

#[tokio::test]
async fn change_password_with_revoke_other_sessions_issues_a_new_session() {
    let mut app = TestApp::new().await;
    let me = app.signed_up("revokepw@example.com").await;
    let old_token = me["token"].as_str().unwrap().to_owned();
    let mut phone = app.new_client();
    phone.sign_in("revokepw@example.com", PASSWORD).await;

    let res = app
        .post(
            "/change-password",
            json!({
                "currentPassword": PASSWORD,
                "newPassword": "a-brand-new-password",
                "revokeOtherSessions": true,
            }),
        )
        .await;

    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    let new_token = res.json()["token"]
        .as_str()
        .expect("a new token")
        .to_owned();
    assert_ne!(new_token, old_token);
    assert_eq!(
        res.set_cookie(TOKEN_COOKIE).unwrap(),
        format!(
            "{}; Max-Age=604800; Path=/; HttpOnly; SameSite=Lax",
            app.cookie_for_token(&new_token)
        )
    );
    // I am still signed in, on the new session; every other session is gone.
    assert_eq!(app.session().await["session"]["token"], new_token);
    assert!(phone.session().await.is_null());
    let user_id = me["user"]["id"].as_str().unwrap();
    let sessions = app.auth.store().active_sessions(user_id).await.unwrap();
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0].token, new_token);
    // The old password no longer works.
    let mut fresh = app.new_client();
    assert_eq!(
        fresh.sign_in("revokepw@example.com", PASSWORD).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn change_password_needs_a_session_and_both_passwords() {
    let mut app = TestApp::new().await;

    let res = app
        .post(
            "/change-password",
            json!({ "currentPassword": PASSWORD, "newPassword": "a-brand-new-password" }),
        )
        .await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);

    app.signed_up("fields@example.com").await;
    let res = app
        .post(
            "/change-password",
            json!({ "newPassword": "a-brand-new-password" }),
        )
        .await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert_eq!(res.code().as_deref(), Some("VALIDATION_ERROR"));
}
