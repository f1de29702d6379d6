//! An existing database laid out differently (Better Auth's `modelName`, `fields` and
//! `usePlural`): every endpoint works through the renamed tables and columns.

use http::StatusCode;
use portcullis::schema::ModelOptions;
use portcullis_tests::{TestApp, PASSWORD};
use serde_json::json;

fn renamed(o: &mut portcullis::Options) {
    o.schema.use_plural = true;
    o.schema.models.insert(
        "user".into(),
        ModelOptions::default()
            .table("app_users")
            .column("email", "email_address")
            .column("emailVerified", "is_verified")
            .column("createdAt", "created_at"),
    );
    o.schema.models.insert(
        "session".into(),
        ModelOptions::default()
            .column("userId", "user_id")
            .column("token", "session_token")
            .column("expiresAt", "expires_at"),
    );
    o.schema.models.insert(
        "account".into(),
        ModelOptions::default()
            .column("userId", "owner")
            .column("password", "password_hash"),
    );
}

#[tokio::test]
async fn every_endpoint_works_on_renamed_tables_and_columns() {
    let mut app = TestApp::build(|b| b.options(renamed)).await;

    let up = app.signed_up("renamed@example.com").await;
    let user_id = up["user"]["id"].as_str().unwrap().to_owned();
    assert_eq!(up["user"]["email"], "renamed@example.com");

    let mut phone = app.new_client();
    assert_eq!(
        phone.sign_in("renamed@example.com", PASSWORD).await.status,
        StatusCode::OK
    );
    let session = app.session().await;
    assert_eq!(session["user"]["id"], user_id.as_str());
    assert_eq!(session["session"]["userId"], user_id.as_str());

    let list = app.get("/list-sessions").await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.text());
    assert_eq!(list.json().as_array().unwrap().len(), 2);

    let upd = app.post("/update-user", json!({ "name": "Renamed" })).await;
    assert_eq!(upd.status, StatusCode::OK, "{}", upd.text());

    let changed = app
        .post(
            "/change-password",
            json!({ "currentPassword": PASSWORD, "newPassword": "a-brand-new-password" }),
        )
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.text());

    let revoked = app.post("/revoke-other-sessions", json!({})).await;
    assert_eq!(revoked.status, StatusCode::OK, "{}", revoked.text());
    assert!(phone.session().await.is_null());

    let out = app.post("/sign-out", json!({})).await;
    assert_eq!(out.status, StatusCode::OK);
    assert!(app.session().await.is_null());
    let again = app
        .sign_in("renamed@example.com", "a-brand-new-password")
        .await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text());
    assert_eq!(app.session().await["user"]["name"], "Renamed");
}

#[tokio::test]
async fn the_renamed_tables_are_the_ones_created() {
    let app = TestApp::build(|b| b.options(renamed)).await;

    let ddl = app.auth.migration_plan().await.unwrap();
    assert!(ddl.is_empty(), "{ddl:?}");
    let schema = app.auth.schema();
    let user = schema.table("user").unwrap();
    assert_eq!(user.table, "app_users");
    assert_eq!(user.field("email").unwrap().column, "email_address");
    assert_eq!(schema.table("session").unwrap().table, "sessions");
    assert_eq!(schema.table("verification").unwrap().table, "verifications");
}

#[tokio::test]
async fn expired_sessions_on_renamed_tables_are_cleaned_up() {
    let mut app = TestApp::build(|b| b.options(renamed)).await;
    app.signed_up("exp-renamed@example.com").await;
    let token = app.session_token().unwrap();
    portcullis_tests::set_session_times(
        &app.auth,
        &token,
        portcullis_tests::seconds_from_now(-5),
        None,
    )
    .await;

    let res = app.get("/get-session").await;

    assert_eq!(res.text(), "null");
    assert!(app
        .auth
        .store()
        .session_and_user(&token)
        .await
        .unwrap()
        .is_none());
}
