//! Per-account throttling of password sign-in: an attacker who rotates client addresses is
//! one attacker to the account, and cannot use the throttle to lock the owner out.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use std::time::Duration;

use http::StatusCode;
use portcullis::email::RESET_PASSWORD;
use portcullis::Options;
use portcullis_email_password::EmailPassword;
use portcullis_tests::mail::Outbox;
use portcullis_tests::{TestApp, TestResponse, PASSWORD};
use serde_json::json;

const VICTIM: &str = "victim@example.com";

/// An engine that takes the client address from `x-forwarded-for` (so a test can be many
/// clients), with `configure` applied.
async fn app_with(configure: impl FnOnce(&mut Options) + Send + 'static) -> (TestApp, Outbox) {
    let outbox = Outbox::new();
    let sender = outbox.sender();
    let app = TestApp::build(move |b| {
        b.email_sender(sender).options(|o| {
            o.ip_address_headers = vec!["x-forwarded-for".into()];
            configure(o);
        })
    })
    .await;
    (app, outbox)
}

/// `app` with the victim signed up from the owner's address, 203.0.113.1.
async fn with_victim(configure: impl FnOnce(&mut Options) + Send + 'static) -> (TestApp, Outbox) {
    let (mut app, outbox) = app_with(configure).await;
    app.set_default_header("x-forwarded-for", "203.0.113.1");
    app.signed_up(VICTIM).await;
    // The owner signs in from home once: an address the account is known to use.
    assert_eq!(app.sign_in(VICTIM, PASSWORD).await.status, StatusCode::OK);
    (app, outbox)
}

/// A client at `ip`.
fn client_at(app: &TestApp, ip: &str) -> TestApp {
    let mut c = app.new_client();
    c.set_default_header("x-forwarded-for", ip);
    c
}

/// One sign-in attempt from a new address each time (`n` picks it).
async fn attempt_from(app: &TestApp, n: u32, email: &str, password: &str) -> TestResponse {
    let ip = format!("198.51.{}.{}", n / 250, n % 250 + 1);
    client_at(app, &ip).sign_in(email, password).await
}

fn retry_after(res: &TestResponse) -> u64 {
    res.header("x-retry-after").unwrap().parse().unwrap()
}

/// Ten wrong guesses, each from another address.
async fn ten_failures(app: &TestApp, email: &str, from: u32) {
    for n in from..from + 10 {
        let res = attempt_from(app, n, email, "wrong-guess-123").await;
        assert_eq!(
            res.status,
            StatusCode::UNAUTHORIZED,
            "guess {n}: {}",
            res.text()
        );
    }
}

#[tokio::test]
async fn rotating_addresses_is_one_attacker_to_the_account() {
    let (app, _outbox) = with_victim(|_| {}).await;
    ten_failures(&app, VICTIM, 0).await;

    // The eleventh attempt, from yet another address, waits, whatever the password: the
    // answer does not depend on the password, so it tells the attacker nothing.
    for (n, password) in [(100, "wrong-guess-123"), (101, PASSWORD)] {
        let res = attempt_from(&app, n, VICTIM, password).await;
        assert_eq!(res.status, StatusCode::TOO_MANY_REQUESTS, "{}", res.text());
        assert_eq!(
            res.json(),
            json!({ "message": "Too many requests. Please try again later." })
        );
        assert_eq!(retry_after(&res), 1);
        assert!(res.set_cookies().is_empty());
    }
}

#[tokio::test]
async fn the_wait_grows_with_each_further_failure() {
    let (app, _outbox) = with_victim(|o| o.rate_limit.account.threshold = 3).await;
    for n in 0..3 {
        attempt_from(&app, n, VICTIM, "wrong-guess-123").await;
    }
    let first = attempt_from(&app, 10, VICTIM, "wrong-guess-123").await;
    assert_eq!(first.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(retry_after(&first), 1);

    tokio::time::sleep(Duration::from_millis(1100)).await;
    let allowed = attempt_from(&app, 11, VICTIM, "wrong-guess-123").await;
    assert_eq!(allowed.status, StatusCode::UNAUTHORIZED);
    let second = attempt_from(&app, 12, VICTIM, "wrong-guess-123").await;
    assert_eq!(second.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(retry_after(&second), 2);
}

#[tokio::test]
async fn the_owners_own_address_still_signs_in() {
    let (app, _outbox) = with_victim(|_| {}).await;
    ten_failures(&app, VICTIM, 0).await;
    assert_eq!(
        attempt_from(&app, 50, VICTIM, PASSWORD).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );

    let mut home = client_at(&app, "203.0.113.1");
    let res = home.sign_in(VICTIM, PASSWORD).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    // An attacker behind the owner's address has that address's budget only, and it is
    // throttled the same way.
    let mut shared = client_at(&app, "203.0.113.1");
    for _ in 0..10 {
        let res = shared.sign_in(VICTIM, "wrong-guess-123").await;
        assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    }
    let res = shared.sign_in(VICTIM, PASSWORD).await;
    assert_eq!(res.status, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn a_success_clears_the_count() {
    let (app, _outbox) = with_victim(|_| {}).await;
    for n in 0..9 {
        attempt_from(&app, n, VICTIM, "wrong-guess-123").await;
    }
    let mut home = client_at(&app, "203.0.113.1");
    assert_eq!(home.sign_in(VICTIM, PASSWORD).await.status, StatusCode::OK);
    ten_failures(&app, VICTIM, 20).await;
    assert_eq!(
        attempt_from(&app, 40, VICTIM, PASSWORD).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test]
async fn a_completed_reset_ends_the_wait() {
    let (app, outbox) = with_victim(|_| {}).await;
    ten_failures(&app, VICTIM, 0).await;

    let mut traveller = client_at(&app, "192.0.2.77");
    traveller
        .post("/request-password-reset", json!({ "email": VICTIM }))
        .await;
    let token = outbox.wait_for(RESET_PASSWORD, VICTIM, 1).await["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let res = traveller
        .post(
            "/reset-password",
            json!({ "newPassword": "a-new-password-77", "token": token }),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    let res = traveller.sign_in(VICTIM, "a-new-password-77").await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
}

/// Unknown emails are throttled exactly as real accounts are: the throttle is no oracle.
#[tokio::test]
async fn an_email_without_an_account_is_throttled_alike() {
    let (app, _outbox) = with_victim(|_| {}).await;
    let mut answers = Vec::new();
    for email in [VICTIM, "nobody@example.com"] {
        let mut seen = Vec::new();
        for n in 0..12 {
            let res = attempt_from(&app, n, email, "wrong-guess-123").await;
            seen.push((
                res.status,
                res.json(),
                res.header("x-retry-after").map(str::to_owned),
            ));
        }
        answers.push(seen);
    }
    assert_eq!(answers[0], answers[1]);
    assert_eq!(answers[0][10].0, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn better_auths_unthrottled_sign_in_is_an_option() {
    let (app, _outbox) = with_victim(|o| o.rate_limit.account.enabled = false).await;
    ten_failures(&app, VICTIM, 0).await;
    ten_failures(&app, VICTIM, 10).await;
    let res = attempt_from(&app, 99, VICTIM, PASSWORD).await;
    assert_eq!(res.status, StatusCode::OK);
}

/// With counters in the database, every server process on it sees the same count.
#[tokio::test]
async fn servers_sharing_a_database_share_the_count() {
    let configure = |o: &mut Options| o.rate_limit.database_storage = true;
    let (app, _outbox) = with_victim(configure).await;
    let other = portcullis::Auth::builder()
        .secret(portcullis_tests::SECRET)
        .base_url(portcullis_tests::BASE_URL)
        .database(app.database_url())
        .options(|o| {
            o.rate_limit.enabled = false;
            o.ip_address_headers = vec!["x-forwarded-for".into()];
            configure(o);
        })
        .plugin(EmailPassword::default())
        .build()
        .await
        .unwrap();
    let mut other_app = app.new_client();
    other_app.auth = other;

    for n in 0..5 {
        attempt_from(&app, n, VICTIM, "wrong-guess-123").await;
        attempt_from(&other_app, n + 100, VICTIM, "wrong-guess-123").await;
    }
    for server in [&app, &other_app] {
        let res = attempt_from(server, 200, VICTIM, PASSWORD).await;
        assert_eq!(res.status, StatusCode::TOO_MANY_REQUESTS);
    }
}

/// Guesses sent all at once are counted as they start: exactly `threshold` reach the password
/// check, whatever the concurrency (with counters in memory and in the database).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_guesses_is_counted_before_any_is_checked() {
    for database_storage in [false, true] {
        let (app, _outbox) =
            with_victim(move |o| o.rate_limit.database_storage = database_storage).await;
        let mut tasks = Vec::new();
        for n in 0..40 {
            let app = app.new_client();
            tasks.push(tokio::spawn(async move {
                attempt_from(&app, n, VICTIM, "wrong-guess-123")
                    .await
                    .status
            }));
        }
        let mut checked = 0;
        for t in tasks {
            match t.await.unwrap() {
                StatusCode::UNAUTHORIZED => checked += 1,
                StatusCode::TOO_MANY_REQUESTS => {}
                other => panic!("{other}"),
            }
        }
        assert_eq!(checked, 10, "database storage: {database_storage}");
    }
}
