//! The audit log as its users see it, on every database the environment offers (SQLite
//! always; PostgreSQL and MySQL with `TEST_POSTGRES_URL` / `TEST_MYSQL_URL`), written with
//! Portcullis's public test harness only.

use portcullis::deps::http::{header, StatusCode};
use portcullis::storage::{Record as _, Where};
use portcullis::testing::{self, TestClient, TestDatabase};
use portcullis::{Auth, AuthBuilder};
use portcullis_audit_log::{kind, AuditEvent, AuditLog, AuditLogApi};
use portcullis_email_password::EmailPassword;
use portcullis_two_factor::{TwoFactor, TwoFactorApi};
use serde_json::json;

const PASSWORD: &str = "correct-horse-battery";

async fn engine(db: &TestDatabase, configure: impl FnOnce(AuthBuilder) -> AuthBuilder) -> Auth {
    let builder = testing::builder_for(db.url())
        .plugin(EmailPassword::default())
        .plugin(AuditLog::default());
    let auth = configure(builder).build().await.expect("build the engine");
    auth.migrate().await.expect("migrate");
    auth
}

async fn sqlite() -> TestDatabase {
    TestDatabase::new(testing::Backend::Sqlite)
        .await
        .expect("SQLite is always there")
}

fn browser(auth: &Auth, agent: &str) -> TestClient {
    TestClient::new(auth).with_header(header::USER_AGENT, agent)
}

async fn sign_up(client: &mut TestClient, email: &str) {
    let res = client
        .post(
            "/sign-up/email",
            json!({ "email": email, "password": PASSWORD, "name": "Ada" }),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
}

async fn sign_in(client: &mut TestClient, email: &str) -> serde_json::Value {
    let res = client
        .post(
            "/sign-in/email",
            json!({ "email": email, "password": PASSWORD }),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    res.json()
}

async fn sign_out(client: &mut TestClient) {
    let res = client.post("/sign-out", json!({})).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
}

async fn events(client: &mut TestClient) -> Vec<AuditEvent> {
    let res = client.get("/audit-log/list").await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    serde_json::from_slice(&res.body).expect("a list of events")
}

async fn signed_in(auth: &Auth, client: &TestClient) -> portcullis::storage::SessionAndUser {
    auth.api()
        .get_session(&client.headers())
        .await
        .expect("a session read")
        .expect("signed in")
}

/// The kinds, sorted: events of consecutive requests may share a millisecond, so the order
/// among them is the database's.
fn kinds(events: &[AuditEvent]) -> Vec<&str> {
    let mut k: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    k.sort_unstable();
    k
}

#[tokio::test]
async fn sign_ins_and_sign_outs_are_recorded_for_their_user_only() {
    for db in TestDatabase::all().await {
        let auth = engine(&db, |b| b).await;
        let mut ada = browser(&auth, "ada-laptop");
        sign_up(&mut ada, "ada@example.com").await; // sign-up signs in
        sign_out(&mut ada).await;
        sign_in(&mut ada, "ada@example.com").await;

        let mut bob = browser(&auth, "bob-phone");
        sign_up(&mut bob, "bob@example.com").await;

        let seen = events(&mut ada).await;
        assert_eq!(
            kinds(&seen),
            [kind::SIGN_IN, kind::SIGN_IN, kind::SIGN_OUT],
            "{:?}",
            db.backend()
        );
        let session = signed_in(&auth, &ada).await;
        assert!(seen.iter().all(|e| e.user_id == session.user.id));
        assert!(seen
            .iter()
            .all(|e| e.user_agent.as_deref() == Some("ada-laptop")));
        // Newest first: the current session's sign-in is not older than anything else.
        let current = seen
            .iter()
            .find(|e| e.session_id.as_deref() == Some(session.session.id.as_str()))
            .expect("the current session's sign-in");
        assert_eq!(current.kind, kind::SIGN_IN);
        assert!(seen.iter().all(|e| e.created_at <= current.created_at));
        assert!(seen.windows(2).all(|w| w[0].created_at >= w[1].created_at));

        let theirs = events(&mut bob).await;
        assert_eq!(kinds(&theirs), [kind::SIGN_IN], "{:?}", db.backend());
    }
}

#[tokio::test]
async fn a_second_factor_sign_in_is_one_sign_in_and_one_challenge() {
    for db in TestDatabase::all().await {
        let auth = engine(&db, |b| b.plugin(TwoFactor::default())).await;
        let mut ada = browser(&auth, "ada-laptop");
        sign_up(&mut ada, "ada@example.com").await;
        let enabled = ada
            .post("/two-factor/enable", json!({ "password": PASSWORD }))
            .await;
        assert_eq!(enabled.status, StatusCode::OK, "{}", enabled.text());
        let enrollment = enabled.json();
        let uri = enrollment["totpURI"].as_str().expect("a TOTP URI");
        let secret = uri
            .split(['?', '&'])
            .find_map(|p| p.strip_prefix("secret="))
            .expect("the secret in the URI");
        // Better Auth's TOTP key is the secret's text; the URI carries it in base32.
        let key = totp_rs::Secret::Encoded(secret.to_owned())
            .to_bytes()
            .expect("base32");
        let raw = String::from_utf8(key).expect("a text secret");
        let code = auth.api().generate_totp(&raw).await.expect("a code");
        let res = ada
            .post("/two-factor/verify-totp", json!({ "code": code }))
            .await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.text());
        sign_out(&mut ada).await;

        // The password is right: the session it made is taken back for the challenge.
        let challenged = sign_in(&mut ada, "ada@example.com").await;
        assert_eq!(challenged["twoFactorRedirect"], true);
        let backup = enrollment["backupCodes"][0]
            .as_str()
            .expect("a backup code");
        let res = ada
            .post("/two-factor/verify-backup-code", json!({ "code": backup }))
            .await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.text());

        // Sign-up; turning two-factor on (the session is replaced: a new one, the old one
        // ended); sign-out; the challenged password; the sign-in the backup code completed.
        let seen = events(&mut ada).await;
        assert_eq!(
            kinds(&seen),
            [
                kind::SESSION_ENDED,
                kind::SIGN_IN,
                kind::SIGN_IN,
                kind::SIGN_IN,
                kind::SIGN_IN_CHALLENGED,
                kind::SIGN_OUT
            ],
            "{:?}",
            db.backend()
        );
        // The challenged attempt names a session that no longer exists; the completed one,
        // the session the browser holds.
        let session = signed_in(&auth, &ada).await;
        let challenge = seen
            .iter()
            .find(|e| e.kind == kind::SIGN_IN_CHALLENGED)
            .expect("the challenge");
        assert_ne!(
            challenge.session_id.as_deref(),
            Some(session.session.id.as_str())
        );
        assert!(seen.iter().any(|e| e.kind == kind::SIGN_IN
            && e.session_id.as_deref() == Some(session.session.id.as_str())));
    }
}

#[tokio::test]
async fn revoked_sessions_are_ended_and_a_deleted_user_takes_its_events() {
    for db in TestDatabase::all().await {
        let auth = engine(&db, |b| b.options(|o| o.delete_user.enabled = true)).await;
        let mut laptop = browser(&auth, "laptop");
        sign_up(&mut laptop, "ada@example.com").await;
        let mut phone = browser(&auth, "phone");
        sign_in(&mut phone, "ada@example.com").await;

        let res = laptop.post("/revoke-other-sessions", json!({})).await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.text());
        let seen = events(&mut laptop).await;
        assert_eq!(
            kinds(&seen),
            [kind::SESSION_ENDED, kind::SIGN_IN, kind::SIGN_IN],
            "{:?}",
            db.backend()
        );
        // The revocation is attributed to the browser that asked for it.
        let ended = seen
            .iter()
            .find(|e| e.kind == kind::SESSION_ENDED)
            .expect("the revocation");
        assert_eq!(ended.user_agent.as_deref(), Some("laptop"));

        let user_id = seen[0].user_id.clone();
        let res = laptop
            .post("/delete-user", json!({ "password": PASSWORD }))
            .await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.text());
        let left = auth
            .store()
            .count(AuditEvent::MODEL, &[Where::eq("userId", user_id.as_str())])
            .await
            .expect("count events");
        assert_eq!(left, 0, "{:?}", db.backend());
    }
}

#[tokio::test]
async fn the_list_takes_a_limit_and_needs_a_session() {
    let db = sqlite().await;
    let auth = engine(&db, |b| b).await;
    let mut ada = browser(&auth, "ada");
    sign_up(&mut ada, "ada@example.com").await;
    for _ in 0..3 {
        sign_in(&mut ada, "ada@example.com").await;
    }

    let two = ada.get("/audit-log/list?limit=2").await;
    assert_eq!(two.status, StatusCode::OK);
    assert_eq!(two.json().as_array().map(Vec::len), Some(2));
    for bad in ["0", "101", "-1", "two"] {
        let res = ada.get(&format!("/audit-log/list?limit={bad}")).await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST, "limit={bad}");
        assert_eq!(res.code().as_deref(), Some("INVALID_AUDIT_LOG_LIMIT"));
    }

    // The typed server-side call answers what the endpoint does.
    let typed = auth
        .api()
        .audit_events(&ada.headers(), None)
        .await
        .expect("the events");
    assert_eq!(typed, events(&mut ada).await);
    // Four sign-ins, and the three sessions each later sign-in in the browser ended.
    let kinds: Vec<&str> = typed.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds.iter().filter(|k| **k == "sign-in").count(),
        4,
        "{kinds:?}"
    );
    assert_eq!(
        kinds.iter().filter(|k| **k == "session-ended").count(),
        3,
        "{kinds:?}"
    );
    let one = auth
        .api()
        .audit_events(&ada.headers(), Some(1))
        .await
        .expect("one event");
    assert_eq!(one.len(), 1);

    let mut stranger = TestClient::new(&auth);
    let res = stranger.get("/audit-log/list").await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    let err = auth
        .api()
        .audit_events(&stranger.headers(), None)
        .await
        .expect_err("no session");
    assert_eq!(err.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn options_come_from_the_config_file_by_the_plugins_name() {
    let factory = portcullis::plugin::plugin_factories()
        .find(|f| f.name == "audit-log")
        .expect("the plugin registers its factory");
    let plugin =
        (factory.build)(&json!({ "default_limit": 1, "max_limit": 5 })).expect("valid options");
    let auth = testing::builder()
        .plugin(EmailPassword::default())
        .plugin_arc(plugin)
        .build()
        .await
        .expect("build");
    auth.migrate().await.expect("migrate");
    let mut ada = browser(&auth, "ada");
    sign_up(&mut ada, "ada@example.com").await;
    sign_in(&mut ada, "ada@example.com").await;
    assert_eq!(events(&mut ada).await.len(), 1, "default_limit = 1");
    let res = ada.get("/audit-log/list?limit=6").await;
    assert_eq!(res.code().as_deref(), Some("INVALID_AUDIT_LOG_LIMIT"));

    for bad in [
        json!({ "default_limit": 0 }),
        json!({ "max_limt": 5 }),
        json!({ "max_limit": 5000 }),
    ] {
        // An unknown key is refused by the factory; inconsistent values, when the engine
        // is built.
        let built = match (factory.build)(&bad) {
            Err(e) => Err(e),
            Ok(p) => testing::builder().plugin_arc(p).build().await.map(|_| ()),
        };
        assert!(built.is_err(), "{bad} was accepted");
    }
}

#[tokio::test]
async fn a_revoked_session_reads_nothing_even_from_the_cookie_cache() {
    let db = sqlite().await;
    let auth = engine(&db, |b| {
        b.options(|o| {
            o.session.cookie_cache.enabled = true;
        })
    })
    .await;
    let mut laptop = browser(&auth, "laptop");
    sign_up(&mut laptop, "ada@example.com").await;
    let mut stolen = browser(&auth, "somewhere else");
    sign_in(&mut stolen, "ada@example.com").await;
    assert_eq!(events(&mut stolen).await.len(), 2);

    let res = laptop.post("/revoke-other-sessions", json!({})).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    // The revoked browser's cookie cache still says it is signed in; the log does not agree.
    let res = stolen.get("/audit-log/list").await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED, "{}", res.text());
}

#[tokio::test]
async fn a_huge_user_agent_is_stored_cut_short() {
    let db = sqlite().await;
    let auth = engine(&db, |b| b).await;
    let agent = format!("Mozilla/5.0 {}", "x".repeat(4000));
    let mut ada = browser(&auth, &agent);
    sign_up(&mut ada, "ada@example.com").await;
    sign_out(&mut ada).await;
    sign_in(&mut ada, "ada@example.com").await;
    let seen = events(&mut ada).await;
    assert_eq!(seen.len(), 3);
    for e in &seen {
        let stored = e.user_agent.as_deref().expect("an agent");
        assert!(stored.len() <= 512, "{} bytes", stored.len());
        assert!(agent.starts_with(stored));
    }
}
