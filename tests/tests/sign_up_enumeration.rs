//! No enumeration at sign-up: with email verification required, an address that has an
//! account and one that has none get the same status, the same body shape and (measured)
//! similar timing; the owner of the existing account gets a notice, and no second account or
//! password appears.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use std::time::{Duration, Instant};

use http::StatusCode;
use portcullis::email::{EmailError, EmailSender, Message, EXISTING_ACCOUNT, VERIFY_EMAIL};
use portcullis::schema::{DefaultValue, Field, FieldType};
use portcullis::BoxFuture;
use portcullis_email_password::EmailPassword;
use portcullis_tests::mail::MailSink;
use portcullis_tests::{TestApp, PASSWORD};
use serde_json::{json, Value};

/// A mail server that takes its time, as a real one across a network does: a sign-up that
/// waited for it would stand out.
struct SlowMailServer(MailSink);

impl EmailSender for SlowMailServer {
    fn send<'a>(&'a self, message: &'a Message) -> BoxFuture<'a, Result<(), EmailError>> {
        Box::pin(async move {
            tokio::time::sleep(Duration::from_millis(150)).await;
            self.0.send(message).await
        })
    }
}

/// Verification required, mail through a slow server into a mailbox, and two additional
/// user fields: one the client may set, one with a default.
async fn app() -> (TestApp, MailSink) {
    let outbox = MailSink::new();
    let sender = SlowMailServer(outbox.clone());
    let app = TestApp::with_email_password(
        EmailPassword::default().require_email_verification(true),
        move |b| {
            b.email_sender(sender)
                .additional_field("user", Field::new("nickname", FieldType::String).optional())
                .additional_field(
                    "user",
                    Field::new("plan", FieldType::String)
                        .default_value(DefaultValue::Str("free".into()))
                        .server_only(),
                )
        },
    )
    .await;
    (app, outbox)
}

async fn sign_up(app: &TestApp, email: &str, password: &str) -> (StatusCode, Value) {
    let mut browser = app.new_client();
    let res = browser
        .post(
            "/sign-up/email",
            json!({ "name": "Someone", "email": email, "password": password, "nickname": "nick" }),
        )
        .await;
    assert!(
        res.set_cookies().is_empty(),
        "{email}: no session either way"
    );
    (res.status, res.json())
}

/// The JSON's shape: every key with the type of its value, recursively.
fn shape(v: &Value) -> Value {
    match v {
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), shape(v))).collect())
        }
        Value::Array(_) => json!("array"),
        Value::String(_) => json!("string"),
        Value::Number(_) => json!("number"),
        Value::Bool(_) => json!("bool"),
        Value::Null => json!("null"),
    }
}

#[tokio::test]
async fn an_existing_address_gets_a_new_addresss_answer_and_its_owner_a_notice() {
    let (app, outbox) = app().await;
    sign_up(&app, "owner@example.com", PASSWORD).await;
    outbox.wait_for(VERIFY_EMAIL, "owner@example.com", 1).await;

    let (new_status, new_body) = sign_up(&app, "fresh@example.com", "attacker-pass-1").await;
    let (old_status, old_body) = sign_up(&app, "owner@example.com", "attacker-pass-1").await;

    assert_eq!(new_status, StatusCode::OK);
    assert_eq!(old_status, new_status);
    assert_eq!(shape(&old_body), shape(&new_body));
    for body in [&new_body, &old_body] {
        assert!(body["token"].is_null());
        assert_eq!(body["user"]["nickname"], "nick");
        assert_eq!(body["user"]["plan"], "free");
        assert_eq!(body["user"]["emailVerified"], false);
    }
    // The ghost's id names nobody.
    let ghost_id = old_body["user"]["id"].as_str().unwrap();
    assert!(app
        .auth
        .store()
        .user_by_id(ghost_id)
        .await
        .unwrap()
        .is_none());

    // The owner is told; the new address gets its verification link.
    let notice = outbox
        .wait_for(EXISTING_ACCOUNT, "owner@example.com", 1)
        .await;
    assert!(notice.text.contains("owner@example.com"), "{}", notice.text);
    assert!(notice.url.is_none() && notice.token.is_none(), "no link");
    outbox.wait_for(VERIFY_EMAIL, "fresh@example.com", 1).await;
    // One account, its password unchanged: the attacker's password opens nothing.
    assert_eq!(outbox.to(VERIFY_EMAIL, "owner@example.com").len(), 1);
    let mut attacker = app.new_client();
    let res = attacker
        .sign_in("owner@example.com", "attacker-pass-1")
        .await;
    assert_eq!(res.code().as_deref(), Some("INVALID_EMAIL_OR_PASSWORD"));
    let res = attacker.sign_in("owner@example.com", PASSWORD).await;
    assert_eq!(res.code().as_deref(), Some("EMAIL_NOT_VERIFIED"));
}

#[tokio::test]
async fn notices_do_not_flood_the_owners_mailbox() {
    let (app, outbox) = app().await;
    sign_up(&app, "owner@example.com", PASSWORD).await;
    for _ in 0..4 {
        let (status, _) = sign_up(&app, "owner@example.com", "attacker-pass-1").await;
        assert_eq!(status, StatusCode::OK);
    }
    outbox
        .wait_for(EXISTING_ACCOUNT, "owner@example.com", 1)
        .await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(outbox.to(EXISTING_ACCOUNT, "owner@example.com").len(), 1);
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort_unstable();
    v[v.len() / 2]
}

/// The timing, measured: sign-ups of new and of existing addresses, interleaved so the
/// machine's load falls on both alike, have medians within a third of each other. (Waiting
/// for the mail server alone would make new addresses 150 ms slower; the hashing dominates
/// both.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_and_existing_addresses_take_similar_time() {
    let (app, _outbox) = app().await;
    const ROUNDS: usize = 15;
    for i in 0..ROUNDS {
        sign_up(&app, &format!("owner{i}@example.com"), PASSWORD).await;
    }
    let (mut fresh, mut existing) = (Vec::new(), Vec::new());
    for i in 0..ROUNDS {
        let started = Instant::now();
        let (status, _) = sign_up(&app, &format!("new{i}@example.com"), PASSWORD).await;
        fresh.push(started.elapsed());
        assert_eq!(status, StatusCode::OK);
        let started = Instant::now();
        let (status, _) = sign_up(&app, &format!("owner{i}@example.com"), PASSWORD).await;
        existing.push(started.elapsed());
        assert_eq!(status, StatusCode::OK);
    }
    let (fresh, existing) = (median(fresh), median(existing));
    let ratio = fresh.as_secs_f64() / existing.as_secs_f64();
    assert!(
        (0.75..=1.33).contains(&ratio),
        "new {fresh:?}, existing {existing:?}: ratio {ratio:.2}"
    );
}
