//! Rate limiting over HTTP, keyed by the client address from `X-Forwarded-For`.

use http::StatusCode;
use portcullis_tests::{TestApp, PASSWORD};
use serde_json::json;

async fn limited_app() -> TestApp {
    TestApp::build(|b| {
        b.options(|o| {
            o.rate_limit.enabled = true;
            o.ip_address_headers = vec!["x-forwarded-for".into()];
        })
    })
    .await
}

#[tokio::test]
async fn the_fourth_sign_in_in_ten_seconds_from_one_address_is_429() {
    let mut app = limited_app().await;
    app.set_default_header("x-forwarded-for", "203.0.113.7");

    for i in 0..3 {
        let res = app.sign_in("nobody@example.com", PASSWORD).await;
        assert_eq!(res.status, StatusCode::UNAUTHORIZED, "attempt {}", i + 1);
    }
    let res = app.sign_in("nobody@example.com", PASSWORD).await;

    assert_eq!(res.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        res.json(),
        json!({ "message": "Too many requests. Please try again later." })
    );
    let retry: u64 = res
        .header("x-retry-after")
        .expect("an X-Retry-After header")
        .parse()
        .expect("whole seconds");
    assert!((1..=10).contains(&retry), "{retry}");
}

#[tokio::test]
async fn another_address_is_not_limited_by_the_first() {
    let mut noisy = limited_app().await;
    noisy.set_default_header("x-forwarded-for", "203.0.113.7");
    for _ in 0..4 {
        noisy.sign_in("nobody@example.com", PASSWORD).await;
    }
    assert_eq!(
        noisy.sign_in("nobody@example.com", PASSWORD).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );

    let mut quiet = noisy.new_client();
    quiet.set_default_header("x-forwarded-for", "198.51.100.2");
    let res = quiet.sign_in("nobody@example.com", PASSWORD).await;

    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    // The limited address can still use other endpoints.
    assert_eq!(noisy.get("/ok").await.status, StatusCode::OK);
}

#[tokio::test]
async fn a_limited_request_does_no_work() {
    let mut app = limited_app().await;
    app.set_default_header("x-forwarded-for", "203.0.113.9");
    for i in 0..3 {
        let email = format!("user{i}@example.com");
        assert_eq!(app.sign_up(&email, PASSWORD).await.status, StatusCode::OK);
    }

    let res = app.sign_up("user3@example.com", PASSWORD).await;

    assert_eq!(res.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(res.set_cookies().is_empty());
    assert!(app
        .auth
        .store()
        .user_by_email("user3@example.com")
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn the_limit_is_not_bypassed_by_spelling_the_path_differently() {
    let mut app = limited_app().await;
    app.set_default_header("x-forwarded-for", "203.0.113.10");
    for _ in 0..3 {
        app.sign_in("nobody@example.com", PASSWORD).await;
    }

    // A trailing slash is a 404, but it is still counted as the same path.
    let res = app
        .post(
            "/sign-in/email/",
            json!({ "email": "nobody@example.com", "password": PASSWORD }),
        )
        .await;

    assert_eq!(res.status, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn a_forwarded_header_with_several_addresses_is_not_trusted() {
    let mut app = limited_app().await;

    // Each request claims a different first hop: without a trusted proxy list the header is
    // ignored, so all of them count against one bucket.
    for i in 0..3 {
        app.set_default_header("x-forwarded-for", &format!("10.0.0.{i}, 203.0.113.1"));
        app.sign_in("nobody@example.com", PASSWORD).await;
    }
    app.set_default_header("x-forwarded-for", "10.0.0.99, 203.0.113.1");
    let res = app.sign_in("nobody@example.com", PASSWORD).await;

    assert_eq!(res.status, StatusCode::TOO_MANY_REQUESTS);
}

/// Counters in the primary database: shared across engines on one database, exact under
/// concurrency, on every database the tests run on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_counters_are_shared_and_exact_under_concurrency() {
    for db in portcullis_tests::db::TestDb::all().await {
        let build = || {
            portcullis::Auth::builder()
                .secret(portcullis_tests::SECRET)
                .database(db.url())
                .options(|o| o.rate_limit.database_storage = true)
                .build()
        };
        let (a, b) = (build().await.unwrap(), build().await.unwrap());
        a.migrate().await.unwrap();
        assert!(
            b.migration_plan().await.unwrap().is_empty(),
            "{:?}: the rateLimit table exists",
            db.backend()
        );
        let store = portcullis::rate_limit::DatabaseStore::new(a.adapter_arc());
        let other = portcullis::rate_limit::DatabaseStore::new(b.adapter_arc());
        use portcullis::rate_limit::RateLimitStore as _;
        let window = std::time::Duration::from_secs(60);
        // Two "processes" share one bucket.
        assert_eq!(store.hit("1.1.1.1|/x", window, 2).await.unwrap(), None);
        assert_eq!(other.hit("1.1.1.1|/x", window, 2).await.unwrap(), None);
        assert!(
            store.hit("1.1.1.1|/x", window, 2).await.unwrap().is_some(),
            "{:?}",
            db.backend()
        );
        // 20 concurrent hits with room for 5: exactly 5 pass.
        let store = std::sync::Arc::new(store);
        let mut tasks = Vec::new();
        for _ in 0..20 {
            let s = store.clone();
            tasks.push(tokio::spawn(
                async move { s.hit("2.2.2.2|/y", window, 5).await },
            ));
        }
        let mut allowed = 0;
        for t in tasks {
            if t.await.unwrap().unwrap().is_none() {
                allowed += 1;
            }
        }
        assert_eq!(allowed, 5, "{:?}", db.backend());
    }
}
