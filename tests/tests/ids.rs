//! Row ids: Better Auth's 32-character random ids by default, UUIDs when configured.

use http::StatusCode;
use portcullis::storage::IdStrategy;
use portcullis_tests::{TestApp, PASSWORD};

fn is_uuid_v4(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.iter().map(|p| p.len()).eq([8, 4, 4, 4, 12])
        && s.bytes().all(|b| b == b'-' || b.is_ascii_hexdigit())
        && parts[2].starts_with('4')
}

#[tokio::test]
async fn ids_are_32_random_letters_and_digits_by_default() {
    let mut app = TestApp::new().await;

    let body = app.signed_up("ids@example.com").await;

    let user_id = body["user"]["id"].as_str().unwrap();
    assert_eq!(user_id.len(), 32);
    assert!(user_id.bytes().all(|b| b.is_ascii_alphanumeric()));
    let session_id = app.session().await["session"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(session_id.len(), 32);
}

#[tokio::test]
async fn with_uuid_ids_users_sessions_and_accounts_get_uuids() {
    let mut app = TestApp::build(|b| b.options(|o| o.ids = IdStrategy::Uuid)).await;

    let body = app.signed_up("uuid@example.com").await;
    let mut phone = app.new_client();
    assert_eq!(
        phone.sign_in("uuid@example.com", PASSWORD).await.status,
        StatusCode::OK
    );

    let user_id = body["user"]["id"].as_str().unwrap();
    assert!(is_uuid_v4(user_id), "user id {user_id}");
    let session = app.session().await;
    let session_id = session["session"]["id"].as_str().unwrap();
    assert!(is_uuid_v4(session_id), "session id {session_id}");
    let phone_session = phone.session().await;
    assert!(is_uuid_v4(phone_session["session"]["id"].as_str().unwrap()));
    let account = app
        .auth
        .store()
        .credential_account(user_id)
        .await
        .unwrap()
        .unwrap();
    assert!(is_uuid_v4(&account.id), "account id {}", account.id);
    // Session tokens stay Better Auth's 32-character tokens.
    assert_eq!(session["session"]["token"].as_str().unwrap().len(), 32);
}

#[tokio::test]
async fn serial_ids_are_assigned_by_the_database_and_sent_as_strings() {
    let mut app =
        TestApp::build(|b| b.options(|o| o.ids = portcullis::storage::IdStrategy::Serial)).await;
    let first = app.signed_up("serial-1@example.com").await;
    let second = app.new_client().signed_up("serial-2@example.com").await;
    let (a, b) = (
        first["user"]["id"].as_str().unwrap(),
        second["user"]["id"].as_str().unwrap(),
    );
    let (a, b): (i64, i64) = (a.parse().unwrap(), b.parse().unwrap());
    assert!(b > a, "increasing integers, as strings: {first} {second}");
    let session = app.session().await;
    assert_eq!(session["session"]["userId"], first["user"]["id"]);
    assert!(session["session"]["id"]
        .as_str()
        .unwrap()
        .parse::<i64>()
        .is_ok());
    let accounts = app.get("/list-accounts").await.json();
    assert_eq!(accounts[0]["userId"], first["user"]["id"]);
    assert_eq!(accounts[0]["accountId"], first["user"]["id"]);
    assert_eq!(
        app.sign_in("serial-1@example.com", portcullis_tests::PASSWORD)
            .await
            .status,
        http::StatusCode::OK
    );
    let ddl = app
        .auth
        .schema()
        .ddl(portcullis::storage::Dialect::Postgres)
        .join("\n");
    assert!(
        ddl.contains("\"id\" serial not null primary key")
            && ddl.contains("\"userId\" integer not null"),
        "{ddl}"
    );
}
