//! Secret rotation: a new secret signs and encrypts; the older ones (versioned, or the plain
//! secret from before) still verify and decrypt, so nobody is signed out and nothing stored is
//! lost; a secret that is dropped stops verifying. On cookies, the JWE cookie cache, two-factor
//! rows and verification links.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use http::StatusCode;
use portcullis::storage::Where;
use portcullis::{Auth, CookieCacheStrategy};
use portcullis_email_password::EmailPassword;
use portcullis_tests::{TestApp, PASSWORD, SECRET};
use portcullis_two_factor::TwoFactor;
use serde_json::json;

const V2: &str = "the-second-secret-of-this-test-0123456789";
const V3: &str = "the-third-secret-of-this-test-01234567890";

/// Which secrets an engine has.
#[derive(Clone, Copy)]
enum Secrets {
    /// The plain test secret only (as before any rotation).
    Plain,
    /// Version 2 current, the plain one kept as legacy.
    Rotated,
    /// Version 3 current, version 2 and the legacy one kept.
    RotatedTwice,
    /// Version 3 only: every earlier secret retired.
    Retired,
}

/// An engine on `app`'s database with `secrets`, two-factor and the JWE cookie cache; a client
/// of it holding `app`'s cookies.
async fn engine(app: &TestApp, secrets: Secrets) -> TestApp {
    let builder = Auth::builder()
        .base_url(portcullis_tests::BASE_URL)
        .database(app.database_url())
        .options(|o| {
            o.rate_limit.enabled = false;
            o.session.cookie_cache.enabled = true;
            o.session.cookie_cache.strategy = CookieCacheStrategy::Jwe;
        })
        .plugin(EmailPassword::default())
        .plugin(TwoFactor::default());
    let builder = match secrets {
        Secrets::Plain => builder.secret(SECRET),
        Secrets::Rotated => builder.secrets([(2, V2)]).secret(SECRET),
        Secrets::RotatedTwice => builder.secrets([(3, V3), (2, V2)]).secret(SECRET),
        Secrets::Retired => builder.secrets([(3, V3)]),
    };
    let mut client = app.new_client();
    client.auth = builder.build().await.unwrap();
    client.jar = app.jar.clone();
    client
}

async fn first_engine() -> TestApp {
    let base = TestApp::new().await;
    // The tables of every plugin the engines use.
    let first = engine(&base, Secrets::Plain).await;
    first.auth.migrate().await.unwrap();
    first
}

/// The session cookie a browser holds in `app`'s jar.
fn session_cookie(app: &TestApp) -> String {
    app.jar.get(&app.session_cookie_name()).unwrap().to_owned()
}

#[tokio::test]
async fn sessions_signed_before_a_rotation_live_on_until_the_secret_is_retired() {
    let mut before = first_engine().await;
    let token = before.signed_up("rotate@example.com").await["token"]
        .as_str()
        .unwrap()
        .to_owned();

    for secrets in [Secrets::Rotated, Secrets::RotatedTwice] {
        let mut after = engine(&before, secrets).await;
        after.jar.clear();
        after.set_default_header("cookie", &before.cookie_for_token(&token));
        assert_eq!(after.session().await["session"]["token"], token.as_str());
    }
    // New cookies are signed with the newest secret.
    let mut after = engine(&before, Secrets::RotatedTwice).await;
    after.jar.clear();
    after.sign_in("rotate@example.com", PASSWORD).await;
    let new_token = after.session().await["session"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let signed = portcullis::crypto::Secret::new(V3)
        .unwrap()
        .sign(&new_token);
    assert_eq!(
        session_cookie(&after),
        portcullis::cookies::encode_uri_component(&signed)
    );

    let mut retired = engine(&before, Secrets::Retired).await;
    retired.jar.clear();
    retired.set_default_header("cookie", &before.cookie_for_token(&token));
    assert!(retired.session().await.is_null());
}

/// The JWE cookie cache written under the old secret still answers after the rotation (the
/// session row is gone, so only the cache can answer), and not once the secret is retired.
#[tokio::test]
async fn the_cookie_cache_written_before_a_rotation_still_decrypts() {
    let mut before = first_engine().await;
    before.signed_up("cache@example.com").await;
    assert!(before.jar.get("better-auth.session_data").is_some());
    before
        .auth
        .adapter()
        .delete_many("session", &[])
        .await
        .unwrap();

    let mut after = engine(&before, Secrets::RotatedTwice).await;
    assert_eq!(after.session().await["user"]["email"], "cache@example.com");
    let mut retired = engine(&before, Secrets::Retired).await;
    assert!(retired.session().await.is_null());
}

/// A TOTP secret stored before the rotation (bare hex under the plain secret) and one stored
/// after it (`$ba$2$…`) both still work after a second rotation.
#[tokio::test]
async fn two_factor_rows_from_before_and_after_a_rotation_decrypt() {
    let before = first_engine().await;
    let mut users = Vec::new();
    for (email, secrets) in [
        ("old@example.com", Secrets::Plain),
        ("new@example.com", Secrets::Rotated),
    ] {
        let mut client = engine(&before, secrets).await;
        client.jar.clear();
        let id = client.signed_up(email).await["user"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let res = client
            .post("/two-factor/enable", json!({ "password": PASSWORD }))
            .await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.text());
        let uri = res.json()["totpURI"].as_str().unwrap().to_owned();
        users.push((email, id, uri));
    }
    let stored = |id: &str| {
        let auth = before.auth.clone();
        let id = id.to_owned();
        async move {
            auth.adapter()
                .find_one("twoFactor", &[Where::eq("userId", id.as_str())])
                .await
                .unwrap()
                .unwrap()
                .str("secret")
                .unwrap()
                .to_owned()
        }
    };
    assert!(!stored(&users[0].1).await.starts_with("$ba$"));
    assert!(stored(&users[1].1).await.starts_with("$ba$2$"));

    for (email, _, uri) in &users {
        let mut browser = engine(&before, Secrets::RotatedTwice).await;
        browser.jar.clear();
        let res = browser.sign_in(email, PASSWORD).await;
        assert_eq!(res.status, StatusCode::OK);
        // Not enrolled until a first code: verifying it proves the secret decrypted.
        let code = totp_now(uri);
        let res = browser
            .post("/two-factor/verify-totp", json!({ "code": code }))
            .await;
        assert_eq!(res.status, StatusCode::OK, "{email}: {}", res.text());
    }
}

/// The current code of an `otpauth://` URI.
fn totp_now(uri: &str) -> String {
    let url = url::Url::parse(uri).unwrap();
    let secret = url
        .query_pairs()
        .find(|(k, _)| k == "secret")
        .unwrap()
        .1
        .into_owned();
    let key = totp_rs::Secret::Encoded(secret).to_bytes().unwrap();
    totp_rs::TOTP::new_unchecked(totp_rs::Algorithm::SHA1, 6, 1, 30, key)
        .generate_current()
        .unwrap()
}

#[tokio::test]
async fn verification_links_mailed_before_a_rotation_still_work() {
    let mut before = first_engine().await;
    let id = before.signed_up("verify@example.com").await["user"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let token = before
        .auth
        .email_verification_token("verify@example.com", Some(&id));

    let mut retired = engine(&before, Secrets::Retired).await;
    let res = retired.get(&format!("/verify-email?token={token}")).await;
    assert_eq!(
        res.code().as_deref(),
        Some("INVALID_TOKEN"),
        "{}",
        res.text()
    );

    let mut after = engine(&before, Secrets::RotatedTwice).await;
    let res = after.get(&format!("/verify-email?token={token}")).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    let user = after.auth.store().user_by_id(&id).await.unwrap().unwrap();
    assert!(user.email_verified);
}
