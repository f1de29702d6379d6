//! Password semantics shared with Better Auth: passwords compare after NFKC normalisation,
//! before and after a Better Auth hash is upgraded to argon2id.

use http::StatusCode;
use portcullis::storage::{Row, Where};
use portcullis_tests::TestApp;

/// Fullwidth letters and digits, as a Japanese input method types them; NFKC turns them into
/// `password123`.
const FULLWIDTH: &str = "ｐａｓｓｗｏｒｄ１２３";
const ASCII: &str = "password123";
/// `é` composed (NFC) and decomposed (NFD).
const COMPOSED: &str = "caf\u{e9}-password";
const DECOMPOSED: &str = "cafe\u{301}-password";

async fn set_better_auth_hash(app: &TestApp, user_id: &str, password: &str) {
    let hash =
        portcullis::password::scrypt_hash_with_salt(password, "0d9f7c443c058d3e25713b85e5cee0ac")
            .expect("a scrypt hash");
    app.auth
        .adapter()
        .update_many(
            "account",
            &[Where::eq("userId", user_id)],
            Row::new().with("password", hash),
        )
        .await
        .expect("store the Better Auth hash");
}

#[tokio::test]
async fn a_better_auth_password_keeps_working_in_every_equivalent_form_after_the_upgrade() {
    let mut app = TestApp::new().await;
    let user = app.signed_up("ime@example.com").await;
    let user_id = user["user"]["id"].as_str().unwrap();
    // The account as Better Auth left it: a scrypt hash of the fullwidth password.
    set_better_auth_hash(&app, user_id, FULLWIDTH).await;

    // Better Auth accepts both forms; the first sign-in upgrades the hash...
    let mut c = app.new_client();
    assert_eq!(
        c.sign_in("ime@example.com", FULLWIDTH).await.status,
        StatusCode::OK
    );
    let account = app
        .auth
        .store()
        .credential_account(user_id)
        .await
        .unwrap()
        .unwrap();
    assert!(account.password.unwrap().starts_with("$argon2id$"));

    // ...and both forms still work afterwards.
    for form in [ASCII, FULLWIDTH] {
        let mut c = app.new_client();
        assert_eq!(
            c.sign_in("ime@example.com", form).await.status,
            StatusCode::OK,
            "{form}"
        );
    }
}

#[tokio::test]
async fn composed_and_decomposed_accents_are_one_password() {
    let mut app = TestApp::new().await;
    assert_eq!(
        app.sign_up("accent@example.com", COMPOSED).await.status,
        StatusCode::OK
    );

    let mut c = app.new_client();
    let res = c.sign_in("accent@example.com", DECOMPOSED).await;

    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
}

#[tokio::test]
async fn normalisation_does_not_make_different_passwords_equal() {
    let mut app = TestApp::new().await;
    app.sign_up("distinct@example.com", COMPOSED).await;

    let mut c = app.new_client();
    let res = c.sign_in("distinct@example.com", "cafe-password").await;

    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn change_password_accepts_the_current_password_in_any_equivalent_form() {
    let mut app = TestApp::new().await;
    app.sign_up("change-form@example.com", FULLWIDTH).await;

    let res = app
        .post(
            "/change-password",
            serde_json::json!({ "currentPassword": ASCII, "newPassword": DECOMPOSED }),
        )
        .await;

    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    let mut c = app.new_client();
    assert_eq!(
        c.sign_in("change-form@example.com", COMPOSED).await.status,
        StatusCode::OK
    );
}
