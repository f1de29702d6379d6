//! Drop-in replacement: Portcullis serves a database that Better Auth 1.7.25 created, with its
//! users' passwords and its sessions, under the same secret.
//!
//! The fixture (`tests/fixtures/better-auth-created.db`) holds user `vector@example.com`
//! (password `password123`, a Better Auth scrypt hash), its credential account and two
//! sessions (see `/work/scratch/VECTORS.md`). Tests run on copies of it.

use http::{header, Method, StatusCode};
use http_body_util::Full;
use portcullis_tests::{better_auth_fixture, seconds_from_now, set_session_times, TestApp, DAY};
use serde_json::json;

const EMAIL: &str = "vector@example.com";
const PASSWORD: &str = "password123";
const USER_ID: &str = "tA0fhGFYWAE4HWu1274xydfpakfyYdM2";
const SCRYPT_HASH: &str = "0d9f7c443c058d3e25713b85e5cee0ac:48c1e31fd03a57a56eec06d97c1a3e4b01d5fa92799ee86508aa3bace2f8ff42f56a4516b5461e03af414e58523862d59eeb44d4a770619c63a6e998ad68765a";
/// The sign-up session Better Auth issued, and the cookie value it set for it.
const BA_SESSION_ID: &str = "XLml5s6VMimJPgKrK4GDgvkqvKJZ5E5a";
const BA_TOKEN: &str = "EHUGoPK7k4WMrhpaKFcAdbQESiEFhXoB";
const BA_COOKIE: &str = "better-auth.session_token=EHUGoPK7k4WMrhpaKFcAdbQESiEFhXoB.CuJsm5P7F8uPKBmJZzvreq%2B%2FjcP%2FkkxfJwJziv6omjs%3D";
/// The `rememberMe: false` session and its two cookies.
const BA_BRIEF_TOKEN: &str = "MSnS2kCCROOh6vSrTXG9FFplZa4mZ7J6";
const BA_BRIEF_COOKIES: &str = "better-auth.session_token=MSnS2kCCROOh6vSrTXG9FFplZa4mZ7J6.JArjlNm7iRyWxsNNcJicPhJXLQP3Yt0j4AzX3kadTgI%3D; better-auth.dont_remember=true.uVUBEA%2BQT4yqzDIwZkj4Ct3tZQrRmcrmqFfOIX%2FClg0%3D";

async fn app_on_fixture() -> TestApp {
    TestApp::on_copy_of(&better_auth_fixture(), |b| b).await
}

#[test]
fn the_fixture_file_holds_its_data_without_a_wal_file() {
    let fixture = better_auth_fixture();
    let bytes = std::fs::read(&fixture).expect("the fixture is committed");

    assert!(bytes.starts_with(b"SQLite format 3\0"));
    let wal = fixture.with_extension("db-wal");
    assert!(!wal.exists(), "{} must not be needed", wal.display());
    // The user's email is in the main file itself, not only in a WAL.
    assert!(bytes.windows(EMAIL.len()).any(|w| w == EMAIL.as_bytes()));
}

#[tokio::test]
async fn migrating_a_better_auth_database_changes_no_tables() {
    let app = app_on_fixture().await;

    // `TestApp` migrated once already; a second run has nothing left to do.
    let again = app.auth.migrate().await.unwrap();
    assert!(again.is_empty(), "{again:?}");

    // A fresh copy, migrated for the first time, gets at most indexes.
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("copy.db");
    std::fs::copy(better_auth_fixture(), &copy).unwrap();
    let auth = portcullis::Auth::builder()
        .secret(portcullis_tests::SECRET)
        .database(format!("sqlite://{}", copy.display()))
        .plugin(portcullis_email_password::EmailPassword::default())
        .build()
        .await
        .unwrap();
    let ran = auth.migrate().await.unwrap();
    assert!(
        ran.iter()
            .all(|s| s.to_ascii_lowercase().starts_with("create index")),
        "{ran:?}"
    );
    // Better Auth's rows are all still there.
    let user = auth.store().user_by_email(EMAIL).await.unwrap().unwrap();
    assert_eq!(user.id, USER_ID);
    assert_eq!(user.name, "Vector User");
    assert!(!user.email_verified);
    assert_eq!(
        portcullis::time::format(&user.created_at),
        "2026-11-27T11:58:57.858Z"
    );
}

#[tokio::test]
async fn a_better_auth_user_signs_in_with_their_password() {
    let mut app = app_on_fixture().await;

    let res = app.sign_in(EMAIL, PASSWORD).await;

    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    let body = res.json();
    assert_eq!(body["user"]["id"], USER_ID);
    assert_eq!(body["user"]["name"], "Vector User");
    assert_eq!(body["user"]["createdAt"], "2026-11-27T11:58:57.858Z");
    assert!(!app.session().await.is_null());
}

#[tokio::test]
async fn a_better_auth_password_hash_is_upgraded_to_argon2id_at_sign_in() {
    let mut app = app_on_fixture().await;
    let auth = app.auth.clone();
    let before = auth
        .store()
        .credential_account(USER_ID)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(before.password.as_deref(), Some(SCRYPT_HASH));

    app.sign_in(EMAIL, PASSWORD).await;

    let after = auth
        .store()
        .credential_account(USER_ID)
        .await
        .unwrap()
        .unwrap();
    let hash = after.password.unwrap();
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    assert_eq!(after.id, before.id);
    // The upgraded hash still takes the same password, and only that one.
    let mut again = app.new_client();
    assert_eq!(again.sign_in(EMAIL, PASSWORD).await.status, StatusCode::OK);
    assert_eq!(
        again.sign_in(EMAIL, "password124").await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn a_wrong_password_for_a_better_auth_user_is_refused_and_the_hash_kept() {
    let mut app = app_on_fixture().await;

    let res = app.sign_in(EMAIL, "password124").await;

    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    assert_eq!(res.code().as_deref(), Some("INVALID_EMAIL_OR_PASSWORD"));
    let account = app
        .auth
        .store()
        .credential_account(USER_ID)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(account.password.as_deref(), Some(SCRYPT_HASH));
}

#[tokio::test]
async fn a_session_issued_by_better_auth_authenticates_with_its_cookie() {
    let mut app = app_on_fixture().await;
    // The captured session expires 2026-12-04; keep it alive for this test.
    set_session_times(&app.auth, BA_TOKEN, seconds_from_now(6 * DAY), None).await;

    let req = TestApp::request(Method::GET, "/get-session")
        .header(header::COOKIE, BA_COOKIE)
        .body(Full::default())
        .unwrap();
    let res = app.send(req).await;

    assert_eq!(res.status, StatusCode::OK);
    let body = res.json();
    assert_eq!(body["session"]["id"], BA_SESSION_ID);
    assert_eq!(body["session"]["token"], BA_TOKEN);
    assert_eq!(body["session"]["userId"], USER_ID);
    assert_eq!(body["session"]["userAgent"], "curl/7.88.1");
    assert_eq!(body["session"]["ipAddress"], "");
    assert_eq!(body["session"]["createdAt"], "2026-11-27T11:58:57.861Z");
    assert_eq!(body["user"]["email"], EMAIL);
}

#[tokio::test]
async fn a_better_auth_remember_me_false_session_keeps_its_one_day_life() {
    let mut app = TestApp::on_copy_of(&better_auth_fixture(), |b| {
        b.options(|o| o.session.update_age = std::time::Duration::ZERO)
    })
    .await;
    let expires = seconds_from_now(DAY / 2);
    set_session_times(&app.auth, BA_BRIEF_TOKEN, expires, None).await;

    let req = TestApp::request(Method::GET, "/get-session")
        .header(header::COOKIE, BA_BRIEF_COOKIES)
        .body(Full::default())
        .unwrap();
    let res = app.send(req).await;

    assert_eq!(res.json()["session"]["token"], BA_BRIEF_TOKEN);
    // Its dont_remember cookie verifies, so it is not extended even with updateAge 0.
    assert_eq!(
        res.json()["session"]["expiresAt"],
        portcullis::time::format(&expires)
    );
    assert!(res.set_cookies().is_empty());
}

#[tokio::test]
async fn better_auth_users_can_use_every_endpoint_afterwards() {
    let mut app = app_on_fixture().await;
    app.sign_in(EMAIL, PASSWORD).await;

    let updated = app
        .post("/update-user", json!({ "name": "Vector Two" }))
        .await;
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.text());
    let changed = app
        .post(
            "/change-password",
            json!({ "currentPassword": PASSWORD, "newPassword": "a-new-password-1" }),
        )
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.text());
    // The captured sessions belong to this user: revoke-other-sessions removes them.
    set_session_times(&app.auth, BA_TOKEN, seconds_from_now(DAY), None).await;
    let revoked = app.post("/revoke-other-sessions", json!({})).await;
    assert_eq!(revoked.status, StatusCode::OK);
    assert!(app
        .auth
        .store()
        .session_and_user(BA_TOKEN)
        .await
        .unwrap()
        .is_none());
    assert_eq!(app.session().await["user"]["name"], "Vector Two");
}

#[tokio::test]
async fn signing_up_with_a_better_auth_users_email_is_refused() {
    let mut app = app_on_fixture().await;

    let res = app.sign_up("VECTOR@example.com", "another-password").await;

    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        res.code().as_deref(),
        Some("USER_ALREADY_EXISTS_USE_ANOTHER_EMAIL")
    );
}

#[tokio::test]
async fn new_users_sign_up_into_a_better_auth_database() {
    let mut app = app_on_fixture().await;

    let res = app
        .sign_up("newcomer@example.com", "newcomer-password")
        .await;

    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    assert!(!app.session().await.is_null());
    let mut again = app.new_client();
    assert_eq!(
        again
            .sign_in("newcomer@example.com", "newcomer-password")
            .await
            .status,
        StatusCode::OK
    );
}
