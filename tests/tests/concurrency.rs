//! Many clients at once: the answers stay the ones a single client would get.

use http::StatusCode;
use portcullis_tests::{TestApp, PASSWORD};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_sign_ups_for_one_email_create_one_user() {
    let app = TestApp::new().await;

    let mut tasks = Vec::new();
    for _ in 0..50 {
        let mut client = app.new_client();
        tasks.push(tokio::spawn(async move {
            client.sign_up("race@example.com", PASSWORD).await.status
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }

    let ok = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    let taken = statuses
        .iter()
        .filter(|s| **s == StatusCode::UNPROCESSABLE_ENTITY)
        .count();
    assert_eq!((ok, taken), (1, 49), "{statuses:?}");
    let user = app
        .auth
        .store()
        .user_by_email("race@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        app.auth.store().accounts_of(&user.id).await.unwrap().len(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_parallel_sign_ups_create_two_hundred_users() {
    let app = TestApp::new().await;
    let mut tasks = Vec::new();
    for i in 0..200 {
        let mut client = app.new_client();
        tasks.push(tokio::spawn(async move {
            client
                .sign_up(&format!("crowd-{i}@example.com"), PASSWORD)
                .await
                .status
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), StatusCode::OK);
    }
    let users = app.auth.adapter().count("user", &[]).await.unwrap();
    let accounts = app.auth.adapter().count("account", &[]).await.unwrap();
    let sessions = app.auth.adapter().count("session", &[]).await.unwrap();
    assert_eq!((users, accounts, sessions), (200, 200, 200));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_parallel_sign_ins_all_succeed() {
    // More sign-ins at once than the per-account throttle lets be in flight (each counts as a
    // failure until it succeeds): this is about the storage under concurrency.
    let mut app = TestApp::build(|b| b.options(|o| o.rate_limit.account.threshold = 100)).await;
    app.signed_up("busy@example.com").await;

    let mut tasks = Vec::new();
    for _ in 0..12 {
        let mut client = app.new_client();
        tasks.push(tokio::spawn(async move {
            let res = client.sign_in("busy@example.com", PASSWORD).await;
            let session = client.session().await;
            (res.status, session.is_null())
        }));
    }

    for t in tasks {
        assert_eq!(t.await.unwrap(), (StatusCode::OK, false));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_sign_ins_upgrading_one_better_auth_hash_all_succeed() {
    let app = TestApp::on_copy_of(&portcullis_tests::better_auth_fixture(), |b| b).await;

    let mut tasks = Vec::new();
    for _ in 0..6 {
        let mut client = app.new_client();
        tasks.push(tokio::spawn(async move {
            client
                .sign_in("vector@example.com", "password123")
                .await
                .status
        }));
    }

    for t in tasks {
        assert_eq!(t.await.unwrap(), StatusCode::OK);
    }
    let account = app
        .auth
        .store()
        .credential_account("tA0fhGFYWAE4HWu1274xydfpakfyYdM2")
        .await
        .unwrap()
        .unwrap();
    assert!(account.password.unwrap().starts_with("$argon2id$"));
}
