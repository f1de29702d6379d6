//! Fields plugins add to the user table: migrated, accepted at sign-up and update-user when
//! clients may write them, refused when not, and kept out of answers when hidden.

use http::StatusCode;
use portcullis::schema::{Field, FieldType};
use portcullis::{Plugin, SchemaPatch};
use portcullis_tests::{TestApp, PASSWORD};
use serde_json::json;

/// Adds a writable `nickname`, a server-only `role`, a numeric `age` and a hidden
/// `recoveryHint` to every user.
struct Profile;

impl Plugin for Profile {
    fn id(&self) -> &'static str {
        "profile"
    }

    fn schema(&self) -> SchemaPatch {
        SchemaPatch::default()
            .field("user", Field::new("nickname", FieldType::String).optional())
            .field(
                "user",
                Field::new("role", FieldType::String)
                    .optional()
                    .server_only(),
            )
            .field("user", Field::new("age", FieldType::Number).optional())
            .field(
                "user",
                Field::new("recoveryHint", FieldType::String)
                    .optional()
                    .hidden(),
            )
            .field(
                "session",
                Field::new("deviceSecret", FieldType::String)
                    .optional()
                    .hidden(),
            )
    }
}

/// Adds a field every sign-up must fill in.
struct Required;

impl Plugin for Required {
    fn id(&self) -> &'static str {
        "required"
    }

    fn schema(&self) -> SchemaPatch {
        SchemaPatch::default().field("user", Field::new("favoriteColor", FieldType::String))
    }
}

async fn profile_app() -> TestApp {
    TestApp::build(|b| b.plugin(Profile)).await
}

#[tokio::test]
async fn sign_up_stores_additional_fields_clients_may_write() {
    let mut app = profile_app().await;

    let res = app
        .post(
            "/sign-up/email",
            json!({
                "name": "Nick",
                "email": "nick@example.com",
                "password": PASSWORD,
                "nickname": "nicky",
                "age": 42,
            }),
        )
        .await;

    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    let user = &res.json()["user"];
    assert_eq!(user["nickname"], "nicky");
    assert_eq!(user["age"], 42);
    let session = app.session().await;
    assert_eq!(session["user"]["nickname"], "nicky");
}

#[tokio::test]
async fn sign_up_ignores_server_only_fields() {
    let mut app = profile_app().await;

    let res = app
        .post(
            "/sign-up/email",
            json!({
                "name": "Eve",
                "email": "eve@example.com",
                "password": PASSWORD,
                "role": "admin",
            }),
        )
        .await;

    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    assert!(res.json()["user"]["role"].is_null());
    let stored = app
        .auth
        .store()
        .user_by_email("eve@example.com")
        .await
        .unwrap()
        .unwrap();
    assert!(stored.extra.get("role").is_none_or(|r| r.is_null()));
}

#[tokio::test]
async fn sign_up_with_a_mistyped_additional_field_is_a_validation_error() {
    let mut app = profile_app().await;

    let res = app
        .post(
            "/sign-up/email",
            json!({
                "name": "Typo",
                "email": "typo@example.com",
                "password": PASSWORD,
                "age": "forty-two",
            }),
        )
        .await;

    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert_eq!(res.code().as_deref(), Some("VALIDATION_ERROR"));
    assert!(app
        .auth
        .store()
        .user_by_email("typo@example.com")
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn a_required_additional_field_must_be_sent_at_sign_up() {
    let mut app = TestApp::build(|b| b.plugin(Required)).await;

    let missing = app.sign_up("color@example.com", PASSWORD).await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        missing.json(),
        json!({ "message": "favoriteColor is required", "code": "MISSING_FIELD" })
    );

    let res = app
        .post(
            "/sign-up/email",
            json!({
                "name": "C",
                "email": "color@example.com",
                "password": PASSWORD,
                "favoriteColor": "teal",
            }),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    assert_eq!(res.json()["user"]["favoriteColor"], "teal");
}

#[tokio::test]
async fn update_user_changes_writable_additional_fields() {
    let mut app = profile_app().await;
    app.signed_up("upd-extra@example.com").await;

    let res = app
        .post("/update-user", json!({ "nickname": "new-nick", "age": 7 }))
        .await;

    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    let user = &app.session().await["user"];
    assert_eq!(user["nickname"], "new-nick");
    assert_eq!(user["age"], 7);
}

#[tokio::test]
async fn update_user_refuses_to_set_a_server_only_field() {
    let mut app = profile_app().await;
    app.signed_up("escalate@example.com").await;

    let res = app.post("/update-user", json!({ "role": "admin" })).await;

    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        res.json(),
        json!({ "message": "role is not allowed to be set", "code": "FIELD_NOT_ALLOWED" })
    );
    let stored = app
        .auth
        .store()
        .user_by_email("escalate@example.com")
        .await
        .unwrap()
        .unwrap();
    assert!(stored.extra.get("role").is_none_or(|r| r.is_null()));
}

#[tokio::test]
async fn hidden_fields_never_reach_clients() {
    let mut app = profile_app().await;
    let signed_up = app.signed_up("hidden@example.com").await;
    let user_id = signed_up["user"]["id"].as_str().unwrap();
    let token = app.session_token().unwrap();
    // Set by the server, e.g. by the plugin that owns them.
    let auth = app.auth.clone();
    let adapter = auth.adapter();
    adapter
        .update_many(
            "user",
            &[portcullis::storage::Where::eq("id", user_id)],
            portcullis::storage::Row::new().with("recoveryHint", "the-hint"),
        )
        .await
        .unwrap();
    adapter
        .update_many(
            "session",
            &[portcullis::storage::Where::eq("token", token.as_str())],
            portcullis::storage::Row::new().with("deviceSecret", "the-device-secret"),
        )
        .await
        .unwrap();

    let session = app.get("/get-session").await;
    let list = app.get("/list-sessions").await;
    let signed_in = app
        .new_client()
        .sign_in("hidden@example.com", PASSWORD)
        .await;
    let from_api = app
        .auth
        .api()
        .get_session(&app.cookie_headers())
        .await
        .unwrap()
        .unwrap();

    for (what, text) in [
        ("get-session", session.text()),
        ("list-sessions", list.text()),
        ("sign-in", signed_in.text()),
        ("api get_session", serde_json::to_string(&from_api).unwrap()),
    ] {
        assert!(!text.contains("the-hint"), "{what}: {text}");
        assert!(!text.contains("recoveryHint"), "{what}: {text}");
        assert!(!text.contains("the-device-secret"), "{what}: {text}");
    }
    // Visible fields are still there.
    assert!(session.json()["user"].get("nickname").is_some());
    // The value is stored, for the server to read.
    let row = adapter
        .find_one("user", &[portcullis::storage::Where::eq("id", user_id)])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        row.get("recoveryHint"),
        Some(&portcullis::storage::Value::String("the-hint".into()))
    );
}

#[tokio::test]
async fn adding_a_plugin_later_adds_its_columns_to_an_existing_database() {
    let mut app = TestApp::new().await;
    app.signed_up("before@example.com").await;
    let db = app.database_url();

    let auth = portcullis::Auth::builder()
        .secret(portcullis_tests::SECRET)
        .database(db)
        .plugin(portcullis_email_password::EmailPassword::default())
        .plugin(Profile)
        .build()
        .await
        .unwrap();
    let ran = auth.migrate().await.unwrap();

    assert!(ran.iter().any(|s| s.contains("nickname")), "{ran:?}");
    assert!(auth.migrate().await.unwrap().is_empty());
    let old = auth
        .store()
        .user_by_email("before@example.com")
        .await
        .unwrap()
        .unwrap();
    assert!(old.extra.get("nickname").is_some_and(|v| v.is_null()));
}

#[tokio::test]
async fn server_only_fields_get_their_default_at_sign_up() {
    let mut app = TestApp::build(|b| {
        b.additional_field(
            "user",
            Field::new("plan", FieldType::String)
                .server_only()
                .default_value(portcullis::schema::DefaultValue::Str("free".into())),
        )
        .additional_field(
            "user",
            Field::new("credits", FieldType::Number)
                .default_value(portcullis::schema::DefaultValue::Int(10)),
        )
    })
    .await;

    let res = app
        .post(
            "/sign-up/email",
            json!({
                "name": "Plan",
                "email": "plan@example.com",
                "password": PASSWORD,
                "plan": "enterprise",
            }),
        )
        .await;

    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    let user = &res.json()["user"];
    assert_eq!(user["plan"], "free", "the client cannot choose it");
    assert_eq!(user["credits"], 10);
    let session = app.session().await;
    assert_eq!(session["user"]["plan"], "free");
}
