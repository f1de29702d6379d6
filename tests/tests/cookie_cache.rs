//! The cookie cache (`session_data`): written wherever the session cookie is, used by
//! get-session and session-reading endpoints without the database, refused when forged,
//! expired or of another version, bypassed by sensitive endpoints, chunked below 4 KiB, and
//! readable both ways with Better Auth's algorithm (recomputed here independently).

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use http::StatusCode;
use portcullis::schema::{Field, FieldType};
use portcullis::storage::Where;
use portcullis::{
    ApiError, Auth, CookieCacheOptions, CookieCacheStrategy, Ctx, Hook, Matcher, Plugin, Reply,
    SchemaPatch,
};
use portcullis_tests::{TestApp, PASSWORD, SECRET};
use serde_json::{json, Value};
use sha2::Sha256;

const DATA: &str = "better-auth.session_data";
const TOKEN: &str = "better-auth.session_token";

/// A writable `bio` on users and a writable `device` on sessions.
struct Profile;

impl Plugin for Profile {
    fn id(&self) -> &'static str {
        "profile"
    }

    fn schema(&self) -> SchemaPatch {
        SchemaPatch::default()
            .field("user", Field::new("bio", FieldType::String).optional())
            .field(
                "session",
                Field::new("device", FieldType::String).optional(),
            )
    }
}

fn cache_options(strategy: CookieCacheStrategy, max_age: u64) -> CookieCacheOptions {
    let mut o = CookieCacheOptions::default();
    o.enabled = true;
    o.max_age = Duration::from_secs(max_age);
    o.strategy = strategy;
    o
}

async fn app_with(strategy: CookieCacheStrategy, max_age: u64) -> TestApp {
    TestApp::build(move |b| {
        b.plugin(Profile).options(move |o| {
            o.session.cookie_cache = cache_options(strategy, max_age);
            o.delete_user.enabled = true;
        })
    })
    .await
}

async fn compact_app() -> TestApp {
    app_with(CookieCacheStrategy::Compact, 300).await
}

/// Deletes the session row behind the client's cookie, as a revocation elsewhere would.
async fn delete_row(app: &TestApp) {
    let token = app.session_token().unwrap();
    let n = app
        .auth
        .adapter()
        .delete_many("session", &[Where::eq("token", token.as_str())])
        .await
        .unwrap();
    assert_eq!(n, 1);
}

fn now_ms() -> i64 {
    portcullis::time::now().timestamp_millis()
}

fn hmac_b64url(secret: &str, message: &str) -> String {
    let mut m = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    m.update(message.as_bytes());
    URL_SAFE_NO_PAD.encode(m.finalize().into_bytes())
}

/// Better Auth's compact cookie, computed from its source independently of the engine:
/// `base64url(JSON{session: P, expiresAt, signature: base64url(HMAC(JSON{...P, expiresAt}))})`.
fn ba_compact(secret: &str, payload: &Value, expires_at: i64) -> String {
    let mut signed = payload.as_object().unwrap().clone();
    signed.insert("expiresAt".into(), expires_at.into());
    let signature = hmac_b64url(secret, &serde_json::to_string(&signed).unwrap());
    let outer = json!({ "session": payload, "expiresAt": expires_at, "signature": signature });
    URL_SAFE_NO_PAD.encode(serde_json::to_string(&outer).unwrap())
}

/// The payload Better Auth caches for a get-session answer.
fn payload_of(session: &Value) -> Value {
    json!({
        "session": session["session"],
        "user": session["user"],
        "updatedAt": now_ms(),
        "version": "1",
    })
}

fn decode_compact(value: &str) -> Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(value).unwrap()).unwrap()
}

/// The `session_data` value a response set (not a deletion).
fn cache_value(res: &portcullis_tests::TestResponse) -> String {
    let c = res.set_cookie(DATA).expect("a session_data cookie");
    let value = c[DATA.len() + 1..].split(';').next().unwrap().to_owned();
    assert!(!value.is_empty(), "{c}");
    value
}

#[tokio::test]
async fn sign_up_sets_the_cache_and_get_session_answers_from_it() {
    let mut app = compact_app().await;
    let res = app.sign_up("cache@example.com", PASSWORD).await;
    assert_eq!(res.status, StatusCode::OK);
    let cookie = res.set_cookie(DATA).unwrap();
    assert!(
        cookie.ends_with("; Max-Age=300; Path=/; HttpOnly; SameSite=Lax"),
        "{cookie}"
    );
    let before = app.session().await;

    delete_row(&app).await;

    // The cache still answers, and the answer carries no cookie change.
    let res = app.get("/get-session").await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.json()["user"], before["user"]);
    assert_eq!(res.json()["session"]["token"], before["session"]["token"]);
    assert!(res.set_cookies().is_empty(), "{:?}", res.set_cookies());

    // `?disableCookieCache=false` means true (query booleans are coerced): the database says
    // the session is gone, and every session cookie is deleted.
    let res = app.get("/get-session?disableCookieCache=false").await;
    assert_eq!(res.json(), Value::Null);
    assert!(res.expires_cookie(DATA));
    assert!(res.expires_cookie(TOKEN));
    assert!(app.session().await.is_null());
}

#[tokio::test]
async fn the_cache_is_trusted_only_for_max_age() {
    let mut app = app_with(CookieCacheStrategy::Compact, 1).await;
    app.signed_up("short@example.com").await;
    delete_row(&app).await;
    assert!(app.session().await.is_object());

    tokio::time::sleep(Duration::from_millis(1100)).await;

    let res = app.get("/get-session").await;
    assert_eq!(res.json(), Value::Null);
    assert!(res.expires_cookie(DATA));
}

#[tokio::test]
async fn each_strategy_round_trips() {
    for strategy in [
        CookieCacheStrategy::Compact,
        CookieCacheStrategy::Jwt,
        CookieCacheStrategy::Jwe,
    ] {
        let mut app = app_with(strategy, 300).await;
        let res = app.sign_up("round@example.com", PASSWORD).await;
        let value = cache_value(&res);
        match strategy {
            CookieCacheStrategy::Compact => {
                let outer = decode_compact(&value);
                assert_eq!(outer["session"]["user"]["email"], "round@example.com");
                assert_eq!(outer["session"]["version"], "1");
            }
            CookieCacheStrategy::Jwt => {
                assert!(value.starts_with("eyJhbGciOiJIUzI1NiJ9."), "{value}");
            }
            CookieCacheStrategy::Jwe => {
                let parts: Vec<&str> = value.split('.').collect();
                assert_eq!(parts.len(), 5);
                assert!(parts[1].is_empty(), "dir: no encrypted key");
                let header: Value =
                    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
                assert_eq!(header["alg"], "dir");
                assert_eq!(header["enc"], "A256CBC-HS512");
                assert!(header["kid"].is_string());
                assert!(!value.contains("round@example.com"));
            }
            other => panic!("a strategy this test does not know: {other:?}"),
        }
        let before = app.session().await;
        delete_row(&app).await;
        let cached = app.session().await;
        assert_eq!(cached, before, "{strategy:?}");
        assert_eq!(cached["user"]["email"], "round@example.com", "{strategy:?}");
    }
}

#[tokio::test]
async fn our_compact_cookie_verifies_with_better_auths_algorithm() {
    let mut app = compact_app().await;
    let res = app.sign_up("ours@example.com", PASSWORD).await;
    let outer = decode_compact(&cache_value(&res));
    let expires_at = outer["expiresAt"].as_i64().unwrap();
    let mut signed = outer["session"].as_object().unwrap().clone();
    signed.insert("expiresAt".into(), expires_at.into());
    let expected = hmac_b64url(SECRET, &serde_json::to_string(&signed).unwrap());
    assert_eq!(outer["signature"], expected.as_str());
    // Keys in Better Auth's order, the cache good for maxAge.
    let keys: Vec<&String> = outer["session"].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["session", "user", "updatedAt", "version"]);
    let ttl = expires_at - now_ms();
    assert!((295_000..=300_000).contains(&ttl), "{ttl}");
}

#[tokio::test]
async fn a_cookie_made_by_better_auths_algorithm_is_accepted() {
    let mut app = compact_app().await;
    app.signed_up("theirs@example.com").await;
    let session = app.session().await;
    let value = ba_compact(SECRET, &payload_of(&session), now_ms() + 60_000);
    app.jar.set(DATA, &value);
    delete_row(&app).await;

    let res = app.get("/get-session").await;
    assert_eq!(res.json(), session);
    assert!(res.set_cookies().is_empty());
}

#[tokio::test]
async fn a_jwt_made_independently_is_accepted_and_ours_verifies() {
    let mut app = app_with(CookieCacheStrategy::Jwt, 300).await;
    let res = app.sign_up("jwt@example.com", PASSWORD).await;
    let ours = cache_value(&res);
    let (signed, sig) = ours.rsplit_once('.').unwrap();
    assert_eq!(sig, hmac_b64url(SECRET, signed));
    let claims: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(signed.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    let keys: Vec<&String> = claims.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        ["session", "user", "updatedAt", "version", "iat", "exp"]
    );
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        300
    );

    let session = app.session().await;
    let mut payload = payload_of(&session).as_object().unwrap().clone();
    let iat = now_ms() / 1000;
    payload.insert("iat".into(), iat.into());
    payload.insert("exp".into(), (iat + 60).into());
    let body = format!(
        "eyJhbGciOiJIUzI1NiJ9.{}",
        URL_SAFE_NO_PAD.encode(serde_json::to_string(&payload).unwrap())
    );
    let theirs = format!("{body}.{}", hmac_b64url(SECRET, &body));
    app.jar.set(DATA, &theirs);
    delete_row(&app).await;
    assert_eq!(app.session().await, session);
}

#[tokio::test]
async fn forged_expired_or_mismatched_caches_are_ignored_and_deleted() {
    let mut app = compact_app().await;
    app.signed_up("forged@example.com").await;
    let session = app.session().await;
    let good_token = app.jar.get(TOKEN).unwrap().to_owned();
    let payload = payload_of(&session);
    let mut other_token = payload.clone();
    other_token["session"]["token"] = json!("someone-elses-token-0123456789ab");
    let mut renamed = decode_compact(&ba_compact(SECRET, &payload, now_ms() + 60_000));
    renamed["session"]["user"]["name"] = json!("Mallory");
    let cases = [
        (
            "foreign secret",
            ba_compact(
                "another-secret-of-at-least-32-characters",
                &payload,
                now_ms() + 60_000,
            ),
        ),
        (
            "tampered",
            URL_SAFE_NO_PAD.encode(serde_json::to_string(&renamed).unwrap()),
        ),
        ("expired", ba_compact(SECRET, &payload, now_ms() - 1_000)),
        (
            "other session",
            ba_compact(SECRET, &other_token, now_ms() + 60_000),
        ),
        ("garbage", "not-a-cookie-cache".to_owned()),
    ];

    // With the session alive, the database answers and a fresh cache replaces the bad one.
    for (what, value) in &cases {
        app.jar.set(DATA, value);
        let res = app.get("/get-session").await;
        assert_eq!(res.json()["user"]["name"], "Test User", "{what}");
        let fresh = cache_value(&res);
        assert_ne!(&fresh, value, "{what}");
    }

    // With it gone, nothing in a bad cache brings it back, and the cache is deleted.
    delete_row(&app).await;
    for (what, value) in &cases {
        app.jar.set(TOKEN, &good_token);
        app.jar.set(DATA, value);
        let res = app.get("/get-session").await;
        assert_eq!(res.json(), Value::Null, "{what}");
        assert!(res.expires_cookie(DATA), "{what}");
    }
}

/// An engine on the same database as `app`, with other cache options.
async fn same_database(app: &TestApp, options: CookieCacheOptions) -> TestApp {
    let auth = Auth::builder()
        .secret(SECRET)
        .base_url(portcullis_tests::BASE_URL)
        .database(app.database_url())
        .options(move |o| {
            o.rate_limit.enabled = false;
            o.session.cookie_cache = options;
        })
        .plugin(Profile)
        .plugin(portcullis_email_password::EmailPassword::default())
        .build()
        .await
        .unwrap();
    let mut other = app.new_client();
    other.auth = auth;
    other.jar = app.jar.clone();
    other
}

#[tokio::test]
async fn a_version_bump_invalidates_every_cache() {
    let mut app = compact_app().await;
    app.signed_up("version@example.com").await;
    let mut bumped = same_database(&app, {
        let mut o = cache_options(CookieCacheStrategy::Compact, 300);
        o.version = "2".into();
        o
    })
    .await;
    delete_row(&app).await;

    assert!(app.session().await.is_object(), "version 1 still trusts it");
    let res = bumped.get("/get-session").await;
    assert_eq!(res.json(), Value::Null);
    assert!(res.expires_cookie(DATA));
}

#[tokio::test]
async fn remember_me_false_gives_a_cache_cookie_without_max_age() {
    let mut app = compact_app().await;
    app.signed_up("forget@example.com").await;
    let mut browser = app.new_client();
    let res = browser
        .post(
            "/sign-in/email",
            json!({ "email": "forget@example.com", "password": PASSWORD, "rememberMe": false }),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK);
    let cookie = res.set_cookie(DATA).unwrap();
    assert!(!cookie.contains("Max-Age"), "{cookie}");
    // Better Auth's compact cache falls back to 60 s without a Max-Age.
    let ttl = decode_compact(&cache_value(&res))["expiresAt"]
        .as_i64()
        .unwrap()
        - now_ms();
    assert!((55_000..=60_000).contains(&ttl), "{ttl}");
    assert!(browser.session().await.is_object());
}

#[tokio::test]
async fn sign_out_and_revocations_delete_the_cache() {
    let mut app = compact_app().await;
    app.signed_up("out@example.com").await;
    let res = app.post_empty("/sign-out").await;
    assert!(res.expires_cookie(DATA));
    assert!(app.jar.get(DATA).is_none());

    app.sign_in("out@example.com", PASSWORD).await;
    let token = app.session_token().unwrap();
    let res = app.post("/revoke-session", json!({ "token": token })).await;
    assert_eq!(res.status, StatusCode::OK);
    assert!(res.expires_cookie(DATA));

    app.sign_in("out@example.com", PASSWORD).await;
    let res = app.post_empty("/revoke-sessions").await;
    assert_eq!(res.status, StatusCode::OK);
    assert!(res.expires_cookie(DATA));
    assert!(app.session().await.is_null());
}

#[tokio::test]
async fn update_user_and_update_session_rewrite_the_cache() {
    let mut app = compact_app().await;
    app.signed_up("update@example.com").await;
    let res = app.post("/update-user", json!({ "name": "Renamed" })).await;
    assert_eq!(res.status, StatusCode::OK);
    assert!(res.set_cookie(DATA).is_some());
    let res = app
        .post("/update-session", json!({ "device": "laptop" }))
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    assert!(res.set_cookie(DATA).is_some());

    delete_row(&app).await;
    let cached = app.session().await;
    assert_eq!(cached["user"]["name"], "Renamed");
    assert_eq!(cached["session"]["device"], "laptop");

    // A cached session whose row is gone cannot be updated: it fails closed.
    let res = app
        .post("/update-session", json!({ "device": "phone" }))
        .await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    assert_eq!(res.code().as_deref(), Some("FAILED_TO_GET_SESSION"));
    assert!(res.expires_cookie(DATA));
    assert!(res.expires_cookie(TOKEN));
}

#[tokio::test]
async fn session_endpoints_use_the_cache_and_sensitive_ones_read_the_database() {
    let mut app = compact_app().await;
    app.signed_up("sensitive@example.com").await;
    let cookies = app.jar.clone();
    delete_row(&app).await;

    // An ordinary session endpoint trusts the cache...
    let res = app.get("/list-accounts").await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    assert_eq!(res.json().as_array().unwrap().len(), 1);
    // ... unless asked not to.
    let res = app.get("/list-accounts?disableCookieCache=true").await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);

    // Sensitive endpoints always see that the session is gone.
    for (path, body) in [
        ("/revoke-session", json!({ "token": "x" })),
        ("/revoke-sessions", json!({})),
        ("/revoke-other-sessions", json!({})),
        (
            "/change-password",
            json!({ "currentPassword": PASSWORD, "newPassword": "another-good-password" }),
        ),
        ("/verify-password", json!({ "password": PASSWORD })),
        ("/delete-user", json!({})),
        // Its reply rewrites the cache, so a revoked session could renew itself forever.
        ("/update-user", json!({ "name": "Thief" })),
    ] {
        app.jar = cookies.clone();
        let res = app.post(path, body).await;
        assert_eq!(
            res.status,
            StatusCode::UNAUTHORIZED,
            "{path}: {}",
            res.text()
        );
    }
    // The password did not change and the user still exists.
    let mut other = app.new_client();
    assert_eq!(
        other
            .sign_in("sensitive@example.com", PASSWORD)
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_forged_cache_seen_by_a_session_endpoint_is_replaced() {
    let mut app = compact_app().await;
    app.signed_up("endpoint@example.com").await;
    app.jar.set(DATA, "forged");
    let res = app.get("/list-accounts").await;
    assert_eq!(res.status, StatusCode::OK);
    // The database answered and wrote a good cache over the forged one.
    let fresh = cache_value(&res);
    assert_ne!(fresh, "forged");
    delete_row(&app).await;
    assert_eq!(app.get("/list-accounts").await.status, StatusCode::OK);
}

#[tokio::test]
async fn a_large_user_is_cached_in_chunks_under_4096_bytes() {
    let mut app = compact_app().await;
    let bio = "b".repeat(12_000);
    let res = app
        .post(
            "/sign-up/email",
            json!({ "name": "Big", "email": "big@example.com", "password": PASSWORD, "bio": bio }),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    let chunks: Vec<String> = res
        .set_cookies()
        .into_iter()
        .filter(|c| c.starts_with(&format!("{DATA}.")))
        .collect();
    assert!(chunks.len() >= 4, "{chunks:?}");
    for (i, c) in chunks.iter().enumerate() {
        assert!(c.starts_with(&format!("{DATA}.{i}=")), "{c}");
        assert!(c.len() <= 4050, "{} bytes", c.len());
        assert!(c.contains("; Max-Age=300;"), "{c}");
    }
    assert!(res.set_cookie(DATA).is_none(), "no whole cookie as well");

    delete_row(&app).await;
    let cached = app.session().await;
    assert_eq!(cached["user"]["bio"].as_str().unwrap().len(), 12_000);
    assert_eq!(cached["user"]["email"], "big@example.com");

    // Sign-out deletes every chunk the browser holds.
    let res = app.post_empty("/sign-out").await;
    for i in 0..chunks.len() {
        assert!(res.expires_cookie(&format!("{DATA}.{i}")), "chunk {i}");
    }
}

#[tokio::test]
async fn a_cache_that_shrinks_deletes_its_stale_chunks() {
    let mut app = compact_app().await;
    app.post(
        "/sign-up/email",
        json!({ "name": "Big", "email": "shrink@example.com", "password": PASSWORD, "bio": "b".repeat(9_000) }),
    )
    .await;
    assert!(app.jar.get(&format!("{DATA}.0")).is_some());
    let res = app.post("/update-user", json!({ "bio": "short" })).await;
    assert_eq!(res.status, StatusCode::OK);
    assert!(res.set_cookie(DATA).is_some());
    assert!(res.expires_cookie(&format!("{DATA}.0")));
    assert!(res.expires_cookie(&format!("{DATA}.1")));
    assert!(app.jar.get(&format!("{DATA}.0")).is_none());
    delete_row(&app).await;
    assert_eq!(app.session().await["user"]["bio"], "short");
}

#[tokio::test]
async fn an_after_hook_that_drops_the_new_session_leaks_no_cache() {
    // What a two-factor plugin does: sign-in succeeds, its after hook deletes the session and
    // expires the cookies so the client must pass a second factor.
    let mut app = TestApp::build(|b| {
        b.plugin(Profile)
            .options(|o| o.session.cookie_cache = cache_options(CookieCacheStrategy::Compact, 300))
            .hook(Hook::after(
                Matcher::Path("/sign-in/email".into()),
                |ctx: Ctx, result: Result<Reply, ApiError>| async move {
                    let mut reply = result?;
                    if let Some(s) = reply.new_session().cloned() {
                        ctx.store().delete_session(&s.session.token).await?;
                        ctx.auth().expire_session_cookies(&ctx, &mut reply);
                        reply.set_new_session(None);
                    }
                    Ok(reply)
                },
            ))
    })
    .await;
    app.post(
        "/sign-up/email",
        json!({ "name": "Two", "email": "two@example.com", "password": PASSWORD, "bio": "b".repeat(9_000) }),
    )
    .await;
    let mut browser = app.new_client();
    let res = browser.sign_in("two@example.com", PASSWORD).await;
    assert_eq!(res.status, StatusCode::OK);
    for c in res.set_cookies() {
        if c.starts_with(DATA) || c.starts_with(TOKEN) {
            assert!(c.contains("=; Max-Age=0"), "a live cookie leaked: {c}");
        }
    }
    assert!(browser.jar.is_empty(), "{:?}", browser.jar);
}

#[tokio::test]
async fn without_the_option_no_cache_is_written_or_trusted() {
    let mut app = TestApp::new().await;
    let res = app.sign_up("plain@example.com", PASSWORD).await;
    assert!(res.set_cookie(DATA).is_none());
    let session = app.session().await;
    app.jar.set(
        DATA,
        &ba_compact(SECRET, &payload_of(&session), now_ms() + 60_000),
    );
    delete_row(&app).await;
    assert!(app.session().await.is_null());
}

#[tokio::test]
async fn a_revoked_session_cannot_renew_its_cache_through_update_user() {
    let mut app = app_with(CookieCacheStrategy::Compact, 1).await;
    app.signed_up("renew@example.com").await;
    delete_row(&app).await;
    let res = app
        .post("/update-user", json!({ "name": "Still here" }))
        .await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED, "{}", res.text());
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(app.session().await, Value::Null);
    // Nor does the fresh-session list of tokens answer from the cache.
    let mut fresh = compact_app().await;
    fresh.signed_up("list@example.com").await;
    delete_row(&fresh).await;
    let res = fresh.get("/list-sessions").await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED, "{}", res.text());
}

#[tokio::test]
async fn only_real_chunk_names_are_handled_as_chunks() {
    let mut app = compact_app().await;
    // 20,000 names that start like chunks; only name.0 to name.99 are chunks.
    let mut cookie = String::new();
    for i in 0..20_000 {
        cookie.push_str(&format!("{DATA}.{i}x=a; {DATA}.0{i}=b; "));
    }
    cookie.push_str(&format!("{DATA}.5=c"));
    let req = TestApp::request(http::Method::POST, "/sign-out")
        .header(http::header::COOKIE, cookie)
        .body(http_body_util::Full::default())
        .unwrap();
    let res = app.send(req).await;
    let deleted: Vec<String> = res
        .set_cookies()
        .into_iter()
        .filter(|c| c.starts_with(DATA))
        .collect();
    assert_eq!(deleted.len(), 2, "{deleted:?}");
    assert!(deleted
        .iter()
        .any(|c| c.starts_with(&format!("{DATA}.5=;"))));
}
