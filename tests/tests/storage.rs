//! The adapter contract, run on every configured database: SQLite always, PostgreSQL and
//! MySQL/MariaDB when `TEST_POSTGRES_URL` / `TEST_MYSQL_URL` are set (see `portcullis_tests::db`).

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use std::sync::Arc;

use chrono::{Duration, Utc};
use portcullis::schema::{Field, FieldType, OnDelete, Schema, SchemaPatch, Table};
use portcullis::storage::{
    self, Adapter, Connector, Direction, IdStrategy, Op, Query, Row, StorageError, Value, Where,
};
use portcullis_tests::db::{Backend, TestDb};

/// The core schema plus a plugin-style table that exercises every field type.
fn schema() -> Arc<Schema> {
    let mut s = Schema::core();
    let things = Table::new(
        "thing",
        vec![
            Field::new("label", FieldType::String).index(),
            Field::new("rank", FieldType::Number),
            Field::new("active", FieldType::Boolean),
            Field::new("seenAt", FieldType::Date).optional(),
            Field::new("meta", FieldType::Json).optional(),
            Field::new("userId", FieldType::String)
                .optional()
                .references("user", "id", OnDelete::Cascade),
        ],
    );
    s.merge("test", SchemaPatch::default().table(things))
        .unwrap();
    Arc::new(s)
}

async fn adapter(db: &TestDb) -> Arc<dyn Adapter> {
    let a = storage::connect(db.url(), schema(), IdStrategy::Random)
        .await
        .unwrap();
    a.migrate(false).await.unwrap();
    a
}

fn user_row(email: &str) -> Row {
    let now = portcullis::time::now();
    Row::new()
        .with("name", "Ada")
        .with("email", email)
        .with("emailVerified", false)
        .with("createdAt", now)
        .with("updatedAt", now)
}

fn thing(label: &str, rank: i64, active: bool) -> Row {
    Row::new()
        .with("label", label)
        .with("rank", rank)
        .with("active", active)
}

async fn seed_things(a: &dyn Adapter) {
    for (label, rank, active) in [
        ("alpha", 1, true),
        ("beta", 2, false),
        ("gamma", 3, true),
        ("100%_sure", 4, false),
        ("delta", 5, true),
    ] {
        a.create("thing", thing(label, rank, active)).await.unwrap();
    }
}

async fn labels(a: &dyn Adapter, filter: Vec<Where>) -> Vec<String> {
    let q = Query {
        filter,
        sort: Some(("rank".into(), Direction::Asc)),
        ..Query::default()
    };
    a.find_many("thing", &q)
        .await
        .unwrap()
        .iter()
        .map(|r| match r.get("label") {
            Some(Value::String(s)) => s.clone(),
            other => panic!("label: {other:?}"),
        })
        .collect()
}

#[tokio::test]
async fn create_and_read_back_every_type() {
    for db in TestDb::all().await {
        let a = adapter(&db).await;
        let seen = portcullis::time::now();
        let created = a
            .create(
                "thing",
                thing("typed", 42, true)
                    .with("seenAt", seen)
                    .with("meta", Value::Json(serde_json::json!({"k": [1, 2]}))),
            )
            .await
            .unwrap();
        let id = created.get("id").cloned().unwrap();
        assert!(
            matches!(&id, Value::String(s) if s.len() == 32),
            "{:?}: {id:?}",
            db.backend()
        );
        let found = a
            .find_one("thing", &[Where::eq("id", id)])
            .await
            .unwrap()
            .unwrap();
        assert_eq!(found, created, "{:?}", db.backend());
        assert_eq!(found.get("rank"), Some(&Value::Int(42)));
        assert_eq!(found.get("active"), Some(&Value::Bool(true)));
        assert_eq!(
            found.get("seenAt"),
            Some(&Value::Date(seen)),
            "{:?}: millisecond dates round-trip",
            db.backend()
        );
        assert_eq!(
            found.get("meta"),
            Some(&Value::Json(serde_json::json!({"k": [1, 2]})))
        );
        assert_eq!(found.get("userId"), Some(&Value::Null));
    }
}

#[tokio::test]
async fn every_where_operator_filters_as_documented() {
    for db in TestDb::all().await {
        let a = adapter(&db).await;
        seed_things(a.as_ref()).await;
        let b = db.backend();
        assert_eq!(
            labels(a.as_ref(), vec![Where::eq("label", "beta")]).await,
            ["beta"],
            "{b:?} eq"
        );
        assert_eq!(
            labels(a.as_ref(), vec![Where::new("rank", Op::Ne, 1)])
                .await
                .len(),
            4,
            "{b:?} ne"
        );
        assert_eq!(
            labels(a.as_ref(), vec![Where::new("rank", Op::Lt, 2)]).await,
            ["alpha"],
            "{b:?} lt"
        );
        assert_eq!(
            labels(a.as_ref(), vec![Where::new("rank", Op::Lte, 2)]).await,
            ["alpha", "beta"]
        );
        assert_eq!(
            labels(a.as_ref(), vec![Where::new("rank", Op::Gt, 4)]).await,
            ["delta"],
            "{b:?} gt"
        );
        assert_eq!(
            labels(a.as_ref(), vec![Where::new("rank", Op::Gte, 4)]).await,
            ["100%_sure", "delta"]
        );
        assert_eq!(
            labels(
                a.as_ref(),
                vec![Where::is_in("label", vec!["gamma".into(), "alpha".into()])]
            )
            .await,
            ["alpha", "gamma"],
            "{b:?} in"
        );
        let not_in = Where {
            op: Op::NotIn,
            ..Where::is_in("rank", vec![Value::Int(1), Value::Int(2), Value::Int(3)])
        };
        assert_eq!(
            labels(a.as_ref(), vec![not_in]).await,
            ["100%_sure", "delta"],
            "{b:?} not in"
        );
        assert!(
            labels(a.as_ref(), vec![Where::is_in("label", vec![])])
                .await
                .is_empty(),
            "{b:?} empty in"
        );
        assert_eq!(
            labels(a.as_ref(), vec![Where::new("label", Op::Contains, "amm")]).await,
            ["gamma"]
        );
        assert_eq!(
            labels(a.as_ref(), vec![Where::new("label", Op::StartsWith, "de")]).await,
            ["delta"]
        );
        assert_eq!(
            labels(a.as_ref(), vec![Where::new("label", Op::EndsWith, "ta")]).await,
            ["beta", "delta"]
        );
        // LIKE wildcards in the needle are literal.
        assert_eq!(
            labels(a.as_ref(), vec![Where::new("label", Op::Contains, "%_")]).await,
            ["100%_sure"],
            "{b:?}"
        );
        assert!(
            labels(a.as_ref(), vec![Where::new("label", Op::StartsWith, "_")])
                .await
                .is_empty()
        );
        // AND conditions all hold; OR conditions need one.
        assert_eq!(
            labels(
                a.as_ref(),
                vec![Where::eq("active", true), Where::new("rank", Op::Gt, 1)]
            )
            .await,
            ["gamma", "delta"]
        );
        let either = vec![
            Where::eq("label", "alpha").or(),
            Where::eq("label", "beta").or(),
        ];
        assert_eq!(
            labels(a.as_ref(), either).await,
            ["alpha", "beta"],
            "{b:?} or"
        );
        let mixed = vec![
            Where::eq("active", true),
            Where::eq("rank", 1).or(),
            Where::eq("rank", 5).or(),
        ];
        assert_eq!(
            labels(a.as_ref(), mixed).await,
            ["alpha", "delta"],
            "{b:?} and+or"
        );
        assert_eq!(Where::eq("x", 1).or().connector, Connector::Or);
        assert_eq!(
            labels(a.as_ref(), vec![Where::eq("seenAt", Value::Null)])
                .await
                .len(),
            5,
            "{b:?} is null"
        );
    }
}

#[tokio::test]
async fn sort_limit_offset_and_count() {
    for db in TestDb::all().await {
        let a = adapter(&db).await;
        seed_things(a.as_ref()).await;
        let q = Query {
            sort: Some(("rank".into(), Direction::Desc)),
            limit: Some(2),
            offset: Some(1),
            ..Query::default()
        };
        let rows = a.find_many("thing", &q).await.unwrap();
        let ranks: Vec<_> = rows
            .iter()
            .map(|r| r.get("rank").cloned().unwrap())
            .collect();
        assert_eq!(ranks, [Value::Int(4), Value::Int(3)], "{:?}", db.backend());
        let only_offset = Query {
            sort: Some(("rank".into(), Direction::Asc)),
            offset: Some(3),
            ..Query::default()
        };
        assert_eq!(
            a.find_many("thing", &only_offset).await.unwrap().len(),
            2,
            "{:?}",
            db.backend()
        );
        assert_eq!(a.count("thing", &[]).await.unwrap(), 5);
        assert_eq!(
            a.count("thing", &[Where::eq("active", true)])
                .await
                .unwrap(),
            3
        );
    }
}

#[tokio::test]
async fn updates_and_deletes_report_what_they_touched() {
    for db in TestDb::all().await {
        let a = adapter(&db).await;
        seed_things(a.as_ref()).await;
        let b = db.backend();
        let updated = a
            .update(
                "thing",
                &[Where::eq("label", "beta")],
                Row::new().with("rank", 20).with("active", true),
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (updated.get("rank"), updated.get("active")),
            (Some(&Value::Int(20)), Some(&Value::Bool(true))),
            "{b:?}"
        );
        // Updating the field the filter matches on still returns the row.
        let renamed = a
            .update(
                "thing",
                &[Where::eq("label", "gamma")],
                Row::new().with("label", "GAMMA"),
            )
            .await
            .unwrap();
        assert_eq!(
            renamed.and_then(|r| r.get("label").cloned()),
            Some(Value::String("GAMMA".into())),
            "{b:?}"
        );
        assert!(a
            .update(
                "thing",
                &[Where::eq("label", "nope")],
                Row::new().with("rank", 1)
            )
            .await
            .unwrap()
            .is_none());
        assert_eq!(
            a.update_many(
                "thing",
                &[Where::eq("active", true)],
                Row::new().with("rank", 0)
            )
            .await
            .unwrap(),
            4,
            "{b:?}"
        );
        assert_eq!(
            a.delete_many("thing", &[Where::eq("rank", 0)])
                .await
                .unwrap(),
            4,
            "{b:?}"
        );
        a.delete("thing", &[Where::eq("label", "100%_sure")])
            .await
            .unwrap();
        assert_eq!(a.count("thing", &[]).await.unwrap(), 0, "{b:?}");
    }
}

#[tokio::test]
async fn unique_violations_and_cascades_behave_alike() {
    for db in TestDb::all().await {
        let a = adapter(&db).await;
        let b = db.backend();
        let user = a.create("user", user_row("dup@example.com")).await.unwrap();
        let err = a
            .create("user", user_row("dup@example.com"))
            .await
            .unwrap_err();
        assert!(matches!(err, StorageError::UniqueViolation), "{b:?}: {err}");
        let uid = user.get("id").cloned().unwrap();
        a.create("thing", thing("owned", 1, true).with("userId", uid.clone()))
            .await
            .unwrap();
        let orphan = a
            .create(
                "thing",
                thing("orphan", 1, true).with("userId", "no-such-user"),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(orphan, StorageError::ForeignKeyViolation),
            "{b:?}: {orphan}"
        );
        a.delete("user", &[Where::eq("id", uid)]).await.unwrap();
        assert_eq!(
            a.count("thing", &[]).await.unwrap(),
            0,
            "{b:?}: deleting a user cascades"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_commit_together_or_not_at_all() {
    for db in TestDb::all().await {
        let a = adapter(&db).await;
        let b = db.backend();
        let tx = a.begin().await.unwrap();
        tx.create("thing", thing("kept-1", 1, true)).await.unwrap();
        tx.create("thing", thing("kept-2", 2, true)).await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(a.count("thing", &[]).await.unwrap(), 2, "{b:?}");

        let tx = a.begin().await.unwrap();
        tx.create("thing", thing("lost", 3, true)).await.unwrap();
        assert_eq!(
            tx.count("thing", &[]).await.unwrap(),
            3,
            "{b:?}: a transaction sees its own writes"
        );
        drop(tx);
        assert_eq!(
            a.count("thing", &[]).await.unwrap(),
            2,
            "{b:?}: dropped without commit rolls back"
        );
    }
}

#[tokio::test]
async fn joined_read_returns_the_session_with_its_user() {
    for db in TestDb::all().await {
        let a = adapter(&db).await;
        let user = a
            .create("user", user_row("join@example.com"))
            .await
            .unwrap();
        let now = Utc::now();
        let session = Row::new()
            .with("token", "tok-123")
            .with("expiresAt", now + Duration::days(7))
            .with("createdAt", now)
            .with("updatedAt", now)
            .with("ipAddress", "")
            .with("userAgent", "")
            .with("userId", user.get("id").cloned().unwrap());
        a.create("session", session).await.unwrap();
        let join = storage::Join {
            model: "user",
            local_field: "userId",
            foreign_field: "id",
        };
        let (s, u) = a
            .find_one_joined("session", &[Where::eq("token", "tok-123")], join)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            s.get("token"),
            Some(&Value::String("tok-123".into())),
            "{:?}",
            db.backend()
        );
        assert_eq!(
            u.get("email"),
            Some(&Value::String("join@example.com".into()))
        );
        assert!(a
            .find_one_joined("session", &[Where::eq("token", "nope")], join)
            .await
            .unwrap()
            .is_none());
    }
}

/// Read-your-writes for get-session's read: a session written (and committed) is found by the
/// very next joined read, and one deleted is gone from it, on every backend and on both kinds of
/// runtime (SQLite serves these reads on the calling thread, apart from its writer).
async fn sessions_are_read_right_after_they_are_written() {
    for db in TestDb::all().await {
        let a = adapter(&db).await;
        let b = db.backend();
        let user = a.create("user", user_row("ryw@example.com")).await.unwrap();
        let user_id = user.get("id").cloned().unwrap();
        let join = storage::Join {
            model: "user",
            local_field: "userId",
            foreign_field: "id",
        };
        for i in 0..40 {
            let token = format!("ryw-{i}");
            let now = Utc::now();
            let session = Row::new()
                .with("token", token.as_str())
                .with("expiresAt", now + Duration::days(7))
                .with("createdAt", now)
                .with("updatedAt", now)
                .with("userId", user_id.clone());
            let filter = [Where::eq("token", token.as_str())];
            if i % 2 == 0 {
                a.create("session", session).await.unwrap();
            } else {
                let tx = a.begin().await.unwrap();
                tx.create("session", session).await.unwrap();
                assert!(
                    a.find_one_joined("session", &filter, join)
                        .await
                        .unwrap()
                        .is_none(),
                    "{b:?}: not committed yet"
                );
                tx.commit().await.unwrap();
            }
            let (s, u) = a
                .find_one_joined("session", &filter, join)
                .await
                .unwrap()
                .unwrap_or_else(|| panic!("{b:?}: session {i} not read back"));
            assert_eq!(s.str("token"), Some(token.as_str()), "{b:?}");
            assert_eq!(u.str("email"), Some("ryw@example.com"), "{b:?}");
            a.delete("session", &filter).await.unwrap();
            assert!(
                a.find_one("session", &filter).await.unwrap().is_none(),
                "{b:?}: session {i} still read after its deletion"
            );
        }
    }
}

#[tokio::test]
async fn sessions_are_read_right_after_they_are_written_single_threaded() {
    sessions_are_read_right_after_they_are_written().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_are_read_right_after_they_are_written_multi_threaded() {
    sessions_are_read_right_after_they_are_written().await;
}

#[tokio::test]
async fn migrate_twice_changes_nothing_and_fills_in_missing_columns() {
    for db in TestDb::all().await {
        let a = storage::connect(db.url(), schema(), IdStrategy::Random)
            .await
            .unwrap();
        let first = a.migrate(false).await.unwrap();
        assert!(
            first.iter().any(|s| s.starts_with("create table")),
            "{:?}",
            db.backend()
        );
        assert_eq!(
            a.migrate(true).await.unwrap(),
            Vec::<String>::new(),
            "{:?}: nothing left to do",
            db.backend()
        );
        assert_eq!(a.migrate(false).await.unwrap(), Vec::<String>::new());

        // A later plugin version adds a field: only that column (and its index) is added.
        let mut grown = (*schema()).clone();
        grown
            .merge(
                "test-2",
                SchemaPatch::default().field(
                    "thing",
                    Field::new("color", FieldType::String).optional().index(),
                ),
            )
            .unwrap();
        let b = storage::connect(db.url(), Arc::new(grown), IdStrategy::Random)
            .await
            .unwrap();
        let plan = b.migrate(true).await.unwrap();
        assert_eq!(plan.len(), 2, "{:?}: {plan:?}", db.backend());
        assert!(
            plan[0].contains("add column") && plan[0].contains("color"),
            "{plan:?}"
        );
        b.migrate(false).await.unwrap();
        assert!(b.migrate(true).await.unwrap().is_empty());
        b.create("thing", thing("colored", 1, true).with("color", "red"))
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn uuid_ids_when_configured() {
    for db in TestDb::all().await {
        let a = storage::connect(db.url(), schema(), IdStrategy::Uuid)
            .await
            .unwrap();
        a.migrate(false).await.unwrap();
        let row = a.create("thing", thing("u", 1, true)).await.unwrap();
        let Some(Value::String(id)) = row.get("id") else {
            panic!("no id")
        };
        assert_eq!(id.len(), 36, "{:?}: {id}", db.backend());
        assert_eq!(&id[14..15], "4");
    }
}

#[tokio::test]
async fn skipped_backends_are_reported_not_silently_passed() {
    // Documentation by test: a backend is only absent from `all()` when its URL is unset.
    let all = TestDb::all().await;
    assert_eq!(all[0].backend(), Backend::Sqlite);
    for b in [Backend::Postgres, Backend::Mysql] {
        let var = if b == Backend::Postgres {
            "TEST_POSTGRES_URL"
        } else {
            "TEST_MYSQL_URL"
        };
        assert_eq!(
            all.iter().any(|d| d.backend() == b),
            std::env::var(var).is_ok(),
            "{b:?}"
        );
    }
}

/// A plugin whose account field the sign-up cannot fill: the account insert fails after the
/// user insert succeeded inside the same transaction.
struct BrokenAccounts;

impl portcullis::Plugin for BrokenAccounts {
    fn id(&self) -> &'static str {
        "broken-accounts"
    }
    fn schema(&self) -> SchemaPatch {
        SchemaPatch::default().field("account", Field::new("tenant", FieldType::String))
    }
}

#[tokio::test]
async fn a_sign_up_that_fails_halfway_leaves_nothing_behind() {
    let mut app = portcullis_tests::TestApp::build(|b| b.plugin(BrokenAccounts)).await;
    let res = app
        .sign_up("halfway@example.com", portcullis_tests::PASSWORD)
        .await;
    assert_eq!(
        res.status,
        http::StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        res.text()
    );
    assert_eq!(res.json()["code"], "FAILED_TO_CREATE_USER");
    let db = app.auth.adapter();
    for model in ["user", "account", "session"] {
        assert_eq!(
            db.count(model, &[]).await.unwrap(),
            0,
            "{model}: the transaction rolled back"
        );
    }
    assert!(res.set_cookie("better-auth.session_token").is_none());
}
