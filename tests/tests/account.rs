//! Account management: `/list-accounts`, `/update-session`, `/verify-password`, `/delete-user`.

use http::StatusCode;
use portcullis::schema::{Field, FieldType};
use portcullis_tests::{TestApp, DAY, PASSWORD};
use serde_json::json;

#[tokio::test]
async fn list_accounts_shows_the_credential_account_without_secrets() {
    let mut app = TestApp::new().await;
    let user = app.signed_up("accounts@example.com").await;
    let res = app.get("/list-accounts").await;
    assert_eq!(res.status, StatusCode::OK);
    let list = res.json();
    assert_eq!(list.as_array().unwrap().len(), 1);
    let account = &list[0];
    assert_eq!(account["providerId"], "credential");
    assert_eq!(account["accountId"], user["user"]["id"]);
    assert_eq!(account["scopes"], json!([]));
    for hidden in ["password", "accessToken", "refreshToken", "idToken"] {
        assert!(account.get(hidden).is_none(), "{hidden} leaked: {account}");
    }
    assert_eq!(
        app.new_client().get("/list-accounts").await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn update_session_changes_declared_fields_only() {
    let mut app = TestApp::build(|b| {
        b.additional_field(
            "session",
            Field::new("device", FieldType::String).optional(),
        )
        .additional_field(
            "session",
            Field::new("trusted", FieldType::Boolean)
                .optional()
                .server_only(),
        )
    })
    .await;
    app.signed_up("session-fields@example.com").await;
    let res = app
        .post("/update-session", json!({ "device": "laptop" }))
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    assert_eq!(res.json()["session"]["device"], "laptop");
    assert_eq!(app.session().await["session"]["device"], "laptop");

    let res = app
        .post("/update-session", json!({ "trusted": true }))
        .await;
    assert_eq!(
        (res.status, res.code().as_deref()),
        (StatusCode::BAD_REQUEST, Some("FIELD_NOT_ALLOWED"))
    );
    let res = app
        .post("/update-session", json!({ "token": "mine-now" }))
        .await;
    assert_eq!(res.json(), json!({ "message": "No fields to update" }));
    // Better Auth's schema for the body is a record: zod refuses an array before the handler.
    let res = app.post("/update-session", json!([1])).await;
    assert_eq!(
        res.json(),
        json!({
            "message": "[body] Invalid input: expected record, received array",
            "code": "VALIDATION_ERROR"
        })
    );
}

#[tokio::test]
async fn verify_password_checks_the_signed_in_users_password() {
    let mut app = TestApp::new().await;
    app.signed_up("verify-pw@example.com").await;
    let ok = app
        .post("/verify-password", json!({ "password": PASSWORD }))
        .await;
    assert_eq!(
        (ok.status, ok.json()),
        (StatusCode::OK, json!({ "status": true }))
    );
    let wrong = app
        .post(
            "/verify-password",
            json!({ "password": "not-the-password" }),
        )
        .await;
    assert_eq!(
        (wrong.status, wrong.code().as_deref()),
        (StatusCode::BAD_REQUEST, Some("INVALID_PASSWORD"))
    );
    let anon = app
        .new_client()
        .post("/verify-password", json!({ "password": PASSWORD }))
        .await;
    assert_eq!(anon.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn delete_user_is_off_unless_enabled() {
    let mut app = TestApp::new().await;
    app.signed_up("keep@example.com").await;
    let res = app
        .post("/delete-user", json!({ "password": PASSWORD }))
        .await;
    assert_eq!(res.status, StatusCode::NOT_FOUND);
    assert!(res.text().is_empty());
    assert!(app.session().await["user"].is_object());
}

#[tokio::test]
async fn delete_user_with_the_password_removes_everything_and_kills_old_cookies() {
    let mut app = TestApp::build(|b| b.options(|o| o.delete_user.enabled = true)).await;
    app.signed_up("gone@example.com").await;
    let mut other_device = app.new_client();
    other_device.sign_in("gone@example.com", PASSWORD).await;

    let wrong = app
        .post("/delete-user", json!({ "password": "wrong-password-1" }))
        .await;
    assert_eq!(wrong.code().as_deref(), Some("INVALID_PASSWORD"));

    let old_cookie = app.jar.clone();
    let res = app
        .post("/delete-user", json!({ "password": PASSWORD }))
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    assert_eq!(
        res.json(),
        json!({ "success": true, "message": "User deleted" })
    );
    assert!(res.expires_cookie("better-auth.session_token"));
    assert!(app
        .auth
        .store()
        .user_by_email("gone@example.com")
        .await
        .unwrap()
        .is_none());
    assert_eq!(app.auth.adapter().count("account", &[]).await.unwrap(), 0);
    assert_eq!(app.auth.adapter().count("session", &[]).await.unwrap(), 0);
    let mut replay = app.new_client();
    replay.jar = old_cookie;
    assert!(replay.session().await.is_null());
    assert!(
        other_device.session().await.is_null(),
        "every session of the user ends"
    );
    assert_eq!(
        app.sign_in("gone@example.com", PASSWORD).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn delete_user_without_a_password_needs_a_fresh_session() {
    let mut app = TestApp::build(|b| b.options(|o| o.delete_user.enabled = true)).await;
    app.signed_up("stale@example.com").await;
    app.backdate_session(2 * DAY).await;
    let res = app.post("/delete-user", json!({})).await;
    assert_eq!(
        (res.status, res.code().as_deref()),
        (StatusCode::BAD_REQUEST, Some("SESSION_EXPIRED"))
    );

    let mut fresh = app.new_client();
    fresh.sign_in("stale@example.com", PASSWORD).await;
    let res = fresh.post("/delete-user", json!({})).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
}

#[tokio::test]
async fn set_password_is_server_side_only_and_never_replaces_a_password() {
    use portcullis::ApiRequest;
    let mut app = TestApp::new().await;
    app.signed_up("has-password@example.com").await;
    // Not routed over HTTP, as in Better Auth.
    let over_http = app
        .post(
            "/set-password",
            json!({ "newPassword": "another-password-1" }),
        )
        .await;
    assert_eq!(over_http.status, StatusCode::NOT_FOUND);
    // Server-side, a user who has a password keeps it.
    let headers = app.cookie_headers();
    let err = app
        .auth
        .api()
        .call(
            ApiRequest::new("setPassword")
                .headers(headers.clone())
                .body(json!({ "newPassword": "another-password-1" })),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("PASSWORD_ALREADY_SET"));

    // A user without a password account (as after a social sign-in) gets one.
    let user = app
        .auth
        .store()
        .user_by_email("has-password@example.com")
        .await
        .unwrap()
        .unwrap();
    app.auth
        .adapter()
        .delete_many(
            "account",
            &[portcullis::storage::Where::eq("userId", user.id.as_str())],
        )
        .await
        .unwrap();
    let short = app
        .auth
        .api()
        .call(
            ApiRequest::new("setPassword")
                .headers(headers.clone())
                .body(json!({ "newPassword": "short" })),
        )
        .await
        .unwrap_err();
    assert_eq!(short.code(), Some("PASSWORD_TOO_SHORT"));
    app.auth
        .api()
        .call(
            ApiRequest::new("setPassword")
                .headers(headers)
                .body(json!({ "newPassword": "a-new-password-2" })),
        )
        .await
        .unwrap();
    let mut fresh = app.new_client();
    assert_eq!(
        fresh
            .sign_in("has-password@example.com", "a-new-password-2")
            .await
            .status,
        StatusCode::OK
    );
}
