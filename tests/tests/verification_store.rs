//! `Store`'s verification helpers on every configured database: newest row by identifier,
//! exact identifiers, and a consume that exactly one of many racing callers wins.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use std::sync::Arc;

use portcullis::schema::Schema;
use portcullis::storage::{self, Adapter, IdStrategy, Store, Verification};
use portcullis_tests::db::TestDb;
use portcullis_tests::seconds_from_now;

async fn adapter(db: &TestDb, schema: Arc<Schema>) -> Arc<dyn Adapter> {
    let a = storage::connect(db.url(), schema, IdStrategy::Random)
        .await
        .unwrap();
    a.migrate(false).await.unwrap();
    a
}

fn row(identifier: &str, value: &str, age_seconds: i64, ttl_seconds: i64) -> Verification {
    let created = seconds_from_now(-age_seconds);
    Verification {
        id: portcullis::crypto::generate_id(),
        identifier: identifier.into(),
        value: value.into(),
        expires_at: seconds_from_now(ttl_seconds),
        created_at: created,
        updated_at: created,
    }
}

#[tokio::test]
async fn newest_row_by_exact_identifier() {
    for db in TestDb::all().await {
        let schema = Arc::new(Schema::core());
        let a = adapter(&db, schema.clone()).await;
        let store = Store::new(a.as_ref(), &schema);
        store
            .create_verification(&row("reset-password:AbC", "old", 60, 3600))
            .await
            .unwrap();
        store
            .create_verification(&row("reset-password:AbC", "new", 1, 3600))
            .await
            .unwrap();
        store
            .create_verification(&row("reset-password:other", "x", 0, 3600))
            .await
            .unwrap();

        let found = store
            .verification_by_identifier("reset-password:AbC")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(found.value, "new", "{:?}", db.backend());
        // MySQL's default collation would match this; the store does not.
        assert!(store
            .verification_by_identifier("reset-password:abc")
            .await
            .unwrap()
            .is_none());
        assert!(store
            .verification_by_identifier("reset-password:missing")
            .await
            .unwrap()
            .is_none());

        // Consuming the newest row removes the older one with the same identifier too.
        assert!(store.consume_verification(&found).await.unwrap());
        assert!(!store.consume_verification(&found).await.unwrap());
        assert!(store
            .verification_by_identifier("reset-password:AbC")
            .await
            .unwrap()
            .is_none());
        assert!(store
            .verification_by_identifier("reset-password:other")
            .await
            .unwrap()
            .is_some());
    }
}

#[tokio::test]
async fn expired_rows_are_swept() {
    for db in TestDb::all().await {
        let schema = Arc::new(Schema::core());
        let a = adapter(&db, schema.clone()).await;
        let store = Store::new(a.as_ref(), &schema);
        store
            .create_verification(&row("a", "1", 7200, -3600))
            .await
            .unwrap();
        store
            .create_verification(&row("b", "2", 0, 3600))
            .await
            .unwrap();

        assert_eq!(store.delete_expired_verifications().await.unwrap(), 1);
        assert!(store
            .verification_by_identifier("a")
            .await
            .unwrap()
            .is_none());
        assert!(store
            .verification_by_identifier("b")
            .await
            .unwrap()
            .is_some());
        assert_eq!(store.delete_verifications("b").await.unwrap(), 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_consumers_in_transactions_win_exactly_once() {
    for db in TestDb::all().await {
        let schema = Arc::new(Schema::core());
        let a = adapter(&db, schema.clone()).await;
        let v = row("reset-password:race", "user", 0, 3600);
        Store::new(a.as_ref(), &schema)
            .create_verification(&v)
            .await
            .unwrap();

        let mut tasks = Vec::new();
        for _ in 0..8 {
            let (a, schema, v) = (a.clone(), schema.clone(), v.clone());
            tasks.push(tokio::spawn(async move {
                let tx = a.begin().await.unwrap();
                let won = Store::new(tx.as_ref(), &schema)
                    .consume_verification(&v)
                    .await
                    .unwrap();
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                tx.commit().await.unwrap();
                won
            }));
        }
        let mut wins = 0;
        for t in tasks {
            wins += usize::from(t.await.unwrap());
        }
        assert_eq!(wins, 1, "{:?}", db.backend());
    }
}
