//! Plugin-owned tables are as first-class as the core ones: the schema's defaults are written
//! on every database, database hooks watch them, a model declared once reads and writes
//! typed, and a field a plugin adds to a core model reads typed. Runs on `TEST_BACKEND`.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use http::StatusCode;
use portcullis::schema::{DefaultValue, OnDelete, SchemaPatch};
use portcullis::storage::{
    DbHook, Direction, FieldKey, Model, Query, Record, Row, StorageError, Value, Where,
};
use portcullis::{ApiError, ErrorCode, Plugin};
use portcullis_tests::TestApp;
use serde_json::json;

portcullis::record! {
    /// One entry of a user's ledger: a plugin's own table, every field type in it.
    #[derive(Debug, Clone, PartialEq)]
    struct Entry in "ledgerEntry" {
        id: String = "id",
        user_id: String = "userId".index().references("user", "id", OnDelete::Cascade),
        amount: i64 = "amount",
        note: Option<String> = "note",
        settled: bool = "settled".default_value(DefaultValue::Bool(false)),
        currency: String = "currency".default_value(DefaultValue::Str("EUR".into())),
        meta: Option<serde_json::Value> = "meta",
        created_at: DateTime<Utc> = "createdAt".default_value(DefaultValue::Now),
        settled_at: Option<DateTime<Utc>> = "settledAt",
    }
}

/// The plan a user is on: a field the plugin adds to `user`, with a default.
const PLAN: FieldKey<String> = FieldKey::optional("plan");

/// The plugin under test: its table, a field on `user`, and whatever database hooks a test
/// gives it.
struct Ledger {
    hooks: Mutex<Vec<DbHook>>,
}

impl Ledger {
    fn with_hooks(hooks: Vec<DbHook>) -> Self {
        Self {
            hooks: Mutex::new(hooks),
        }
    }
}

impl Plugin for Ledger {
    fn id(&self) -> &'static str {
        "ledger"
    }

    fn schema(&self) -> SchemaPatch {
        SchemaPatch::default().table(Entry::table()).field(
            "user",
            PLAN.field().default_value(DefaultValue::Str("free".into())),
        )
    }

    fn database_hooks(&self) -> Vec<DbHook> {
        std::mem::take(&mut *self.hooks.lock().unwrap())
    }
}

async fn app_with(hooks: Vec<DbHook>) -> TestApp {
    TestApp::build(|b| b.plugin(Ledger::with_hooks(hooks))).await
}

/// Signs up `email`; the new user's id.
async fn user_id(app: &mut TestApp, email: &str) -> String {
    app.signed_up(email).await["user"]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn entry(user_id: &str, amount: i64) -> Entry {
    Entry {
        id: String::new(),
        user_id: user_id.into(),
        amount,
        note: None,
        settled: false,
        currency: "EUR".into(),
        meta: None,
        created_at: portcullis::time::now(),
        settled_at: None,
    }
}

#[tokio::test]
async fn a_plugin_insert_that_leaves_out_defaulted_fields_gets_the_defaults() {
    let mut app = app_with(Vec::new()).await;
    let user = user_id(&mut app, "ada@example.com").await;
    let before = portcullis::time::now();

    // Through the raw adapter, the path with no hooks: `settled`, `currency` and
    // `createdAt` are NOT NULL with defaults, and are left out.
    let stored = app
        .auth
        .adapter()
        .create(
            "ledgerEntry",
            Row::new()
                .with("userId", user.as_str())
                .with("amount", 5i64),
        )
        .await
        .expect("an insert without the defaulted fields works");
    assert_eq!(stored.get("settled"), Some(&Value::Bool(false)));
    assert_eq!(stored.str("currency"), Some("EUR"));
    let Some(Value::Date(created)) = stored.get("createdAt") else {
        panic!("createdAt is a date: {stored:?}");
    };
    let age = (*created - before).num_seconds().abs();
    assert!(age < 60, "createdAt is now, not {created}");

    // Through the store, too, and read back from the database, not from the insert.
    let id = app
        .auth
        .store()
        .create(
            "ledgerEntry",
            Row::new()
                .with("userId", user.as_str())
                .with("amount", 7i64),
        )
        .await
        .unwrap()
        .str("id")
        .unwrap()
        .to_owned();
    let read: Entry = app
        .auth
        .store()
        .find(&[Where::eq("id", id.as_str())])
        .await
        .unwrap()
        .unwrap();
    assert!(!read.settled);
    assert_eq!(read.currency, "EUR");

    // A value given explicitly is kept, and a required field with no default is refused.
    let given = app
        .auth
        .adapter()
        .create(
            "ledgerEntry",
            Row::new()
                .with("userId", user.as_str())
                .with("amount", 1i64)
                .with("currency", "USD"),
        )
        .await
        .unwrap();
    assert_eq!(given.str("currency"), Some("USD"));
    let missing = app
        .auth
        .adapter()
        .create("ledgerEntry", Row::new().with("userId", user.as_str()))
        .await
        .unwrap_err();
    assert!(
        matches!(missing, StorageError::NotNullViolation),
        "a missing amount is a not-null violation, not {missing:?}"
    );
}

#[tokio::test]
async fn database_hooks_watch_a_plugin_model_like_a_core_one() {
    let log: Arc<Mutex<Vec<String>>> = Arc::default();
    let (l1, l2, l3) = (log.clone(), log.clone(), log.clone());
    let model = Model::new(Entry::MODEL);
    let hooks = vec![
        // Notes are stored trimmed, whoever writes them; negative amounts are refused.
        DbHook::before_create(model.clone(), |mut row: Row, _| async move {
            if let Some(Value::Int(a)) = row.get("amount") {
                if *a < 0 {
                    return Err(ApiError::bad_request(ErrorCode::new(
                        "NEGATIVE_AMOUNT",
                        "Amounts are positive",
                    )));
                }
            }
            if let Some(note) = row.str("note") {
                let trimmed = note.trim().to_owned();
                row.set("note", trimmed);
            }
            Ok(row)
        }),
        DbHook::after_create(model.clone(), move |row: Row, _| {
            l1.lock()
                .unwrap()
                .push(format!("created {}", row.str("note").unwrap_or("-")));
            async { Ok(()) }
        }),
        DbHook::after_update(model.clone(), move |row: Row, _| {
            l2.lock()
                .unwrap()
                .push(format!("updated settled={:?}", row.get("settled")));
            async { Ok(()) }
        }),
        DbHook::after_delete(model, move |row: Row, _| {
            l3.lock()
                .unwrap()
                .push(format!("deleted {:?}", row.get("amount")));
            async { Ok(()) }
        }),
    ];
    let mut app = app_with(hooks).await;
    let user = user_id(&mut app, "ada@example.com").await;
    let store = app.auth.store();

    let mut e = entry(&user, 10);
    e.note = Some("  coffee ".into());
    let stored = store.insert(e).await.unwrap();
    assert_eq!(
        stored.note.as_deref(),
        Some("coffee"),
        "the before hook's row is stored"
    );

    let refused = store.insert(entry(&user, -1)).await.unwrap_err();
    let StorageError::Rejected(refusal) = refused else {
        panic!("a refusing hook's error comes back as Rejected: {refused:?}");
    };
    assert_eq!(refusal.code(), Some("NEGATIVE_AMOUNT"));
    assert_eq!(
        store.count(Entry::MODEL, &[]).await.unwrap(),
        1,
        "nothing was written"
    );

    let by_user = [Where::eq("userId", user.as_str())];
    let n = store
        .update_many(Entry::MODEL, &by_user, Row::new().with("settled", true))
        .await
        .unwrap();
    assert_eq!(n, 1);
    assert_eq!(store.delete_many(Entry::MODEL, &by_user).await.unwrap(), 1);

    assert_eq!(
        *log.lock().unwrap(),
        vec![
            "created coffee".to_owned(),
            "updated settled=Some(Bool(true))".to_owned(),
            "deleted Some(Int(10))".to_owned(),
        ]
    );
}

#[tokio::test]
async fn a_model_declared_once_reads_and_writes_typed() {
    let mut app = app_with(Vec::new()).await;
    let user = user_id(&mut app, "ada@example.com").await;
    let store = app.auth.store();

    let settled_at = portcullis::time::parse("2026-12-01T10:20:30.123Z").unwrap();
    let mut first = entry(&user, 3);
    first.note = Some("tea".into());
    first.settled = true;
    first.meta = Some(json!({ "tags": ["drink"], "n": 1 }));
    first.settled_at = Some(settled_at);
    first.created_at = portcullis::time::parse("2026-12-01T09:00:00.000Z").unwrap();
    let first = store.insert(first).await.unwrap();
    assert_eq!(
        first.id.len(),
        32,
        "an empty id gets the engine's kind of id"
    );

    let mut second = entry(&user, 4);
    second.created_at = portcullis::time::parse("2026-12-02T09:00:00.000Z").unwrap();
    let second = store.insert(second).await.unwrap();

    let found: Entry = store
        .find(&[Where::eq("id", first.id.as_str())])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found, first, "what is read back is what was stored");
    assert_eq!(found.settled_at, Some(settled_at));
    assert_eq!(found.meta, Some(json!({ "tags": ["drink"], "n": 1 })));

    let newest_first: Vec<Entry> = store
        .find_all(&Query {
            filter: vec![Where::eq("userId", user.as_str())],
            sort: Some(("createdAt".into(), Direction::Desc)),
            ..Query::default()
        })
        .await
        .unwrap();
    let ids: Vec<&str> = newest_first.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, [second.id.as_str(), first.id.as_str()]);

    // The table came from the struct: types, nullability, defaults, the reference.
    let table = Entry::table();
    let amount = table.field("amount").unwrap();
    assert!(amount.required);
    assert!(!table.field("note").unwrap().required);
    let ids = table.fields.iter().filter(|f| f.name == "id").count();
    assert_eq!(ids, 1, "the id is the table's own, declared once");
    assert!(table.field("userId").unwrap().references.is_some());

    // The user's rows go when the user does (the reference cascades).
    assert!(
        app.auth.store().delete_user(&user).await.unwrap(),
        "the user is deleted"
    );
    let left: Vec<Entry> = store.find_all(&Query::default()).await.unwrap();
    assert!(
        left.is_empty(),
        "the ledger rows went with the user: {left:?}"
    );
}

#[tokio::test]
async fn a_field_a_plugin_adds_to_users_reads_typed() {
    let mut app = app_with(Vec::new()).await;
    let id = user_id(&mut app, "ada@example.com").await;
    let user = app.auth.store().user_by_id(&id).await.unwrap().unwrap();
    assert_eq!(
        user.get(PLAN).as_deref(),
        Some("free"),
        "the default was written"
    );

    app.auth
        .store()
        .update_user(&id, Row::new().with(PLAN.name(), "pro"))
        .await
        .unwrap();
    let user = app.auth.store().user_by_id(&id).await.unwrap().unwrap();
    assert_eq!(user.get(PLAN).as_deref(), Some("pro"));
    // A key of another type does not read a field that is not of it.
    assert_eq!(user.get(FieldKey::<bool>::optional("plan")), None);

    // And the client sees it as Better Auth would send it.
    let res = app.get("/get-session").await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.json()["user"]["plan"], "pro");
}
