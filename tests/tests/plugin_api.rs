//! What a plugin author builds with: handlers that get the plugin's state, typed bodies and
//! replies (keys in field order), and error codes that know their status.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use http::StatusCode;
use portcullis::plugin::{Handlers, Json};
use portcullis::storage::{DbHook, DbOp, Model};
use portcullis::{ApiError, ApiRequest, Ctx, Endpoint, ErrorCode, Plugin, Reply};
use portcullis_tests::TestApp;
use serde::{Deserialize, Serialize};
use serde_json::json;

const TOO_MANY: ErrorCode =
    ErrorCode::new("TOO_MANY_COUNTS", "Count at most 10").with_status(StatusCode::CONFLICT);

/// A plugin whose state is a counter its endpoints share.
struct Counter {
    state: Arc<CounterState>,
}

struct CounterState {
    total: AtomicU64,
    step_limit: u64,
    /// Users created, counted by a database hook on the same state.
    users: AtomicU64,
}

#[derive(Deserialize)]
struct Add {
    by: u64,
}

/// Keys in an order serde_json's map would not keep (`zeta` before `alpha`).
#[derive(Serialize)]
struct Total {
    zeta: &'static str,
    total: u64,
    alpha: bool,
}

async fn add(
    state: Arc<CounterState>,
    _ctx: Ctx,
    Json(body): Json<Add>,
) -> Result<Json<Total>, ApiError> {
    if body.by > state.step_limit {
        return Err(TOO_MANY.into());
    }
    let total = state.total.fetch_add(body.by, Ordering::SeqCst) + body.by;
    Ok(Json(Total {
        zeta: "first",
        total,
        alpha: true,
    }))
}

async fn read(state: Arc<CounterState>, _ctx: Ctx) -> Result<Reply, ApiError> {
    Ok(Reply::json(
        json!({ "total": state.total.load(Ordering::SeqCst) }),
    ))
}

impl Plugin for Counter {
    fn id(&self) -> &'static str {
        "counter"
    }

    fn endpoints(&self) -> Vec<Endpoint> {
        let on = Handlers::new(self.state.clone());
        vec![
            on.post("counterAdd", "/counter/add", add),
            on.get("counterRead", "/counter", read),
        ]
    }

    fn database_hooks(&self) -> Vec<DbHook> {
        let on: Handlers<CounterState> = Handlers::new(self.state.clone());
        vec![
            on.after_write(DbOp::Create, Model::USER, |state, _user, _ctx| async move {
                state.users.fetch_add(1, Ordering::SeqCst);
                Ok(())
            }),
            on.before_write(DbOp::Create, Model::USER, |state, user, _ctx| async move {
                // The state decides: no more users than the step limit.
                if state.users.load(Ordering::SeqCst) >= state.step_limit {
                    return Err(TOO_MANY.into());
                }
                Ok(user)
            }),
        ]
    }
}

async fn app() -> TestApp {
    let state = Arc::new(CounterState {
        total: AtomicU64::new(0),
        step_limit: 10,
        users: AtomicU64::new(0),
    });
    TestApp::build(|b| b.plugin(Counter { state })).await
}

#[tokio::test]
async fn handlers_share_the_plugins_state_and_answer_typed_bodies_in_field_order() {
    let mut app = app().await;
    let res = app.post("/counter/add", json!({ "by": 2 })).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    assert_eq!(res.text(), r#"{"zeta":"first","total":2,"alpha":true}"#);

    // The same state over the server-side API, and from the other endpoint.
    let out: serde_json::Value = app
        .auth
        .api()
        .call_json(ApiRequest::new("counterAdd").body(json!({ "by": 3 })))
        .await
        .unwrap();
    assert_eq!(out["total"], 5);
    assert_eq!(app.get("/counter").await.json(), json!({ "total": 5 }));
}

#[tokio::test]
async fn a_body_that_does_not_fit_is_refused_before_the_handler() {
    let mut app = app().await;
    let res = app.post("/counter/add", json!({ "by": "two" })).await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert_eq!(res.code().as_deref(), Some("VALIDATION_ERROR"));
    assert_eq!(app.get("/counter").await.json(), json!({ "total": 0 }));
}

#[tokio::test]
async fn an_error_code_answers_with_its_default_status() {
    let mut app = app().await;
    let res = app.post("/counter/add", json!({ "by": 11 })).await;
    assert_eq!(res.status, StatusCode::CONFLICT);
    assert_eq!(
        res.json(),
        json!({ "message": "Count at most 10", "code": "TOO_MANY_COUNTS" })
    );
    // The engine's own codes carry Better Auth's usual status.
    assert_eq!(
        ApiError::from(portcullis::codes::UNAUTHORIZED).status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn database_hooks_get_the_plugins_state_too() {
    let mut app = app().await;
    app.signed_up("one@example.com").await;
    app.new_client().signed_up("two@example.com").await;
    assert_eq!(app.auth.store().count("user", &[]).await.unwrap(), 2);
    // A state with a lower limit refuses the next sign-up through its before hook.
    let state = Arc::new(CounterState {
        total: AtomicU64::new(0),
        step_limit: 1,
        users: AtomicU64::new(0),
    });
    let mut limited = TestApp::build(|b| {
        b.plugin(Counter {
            state: state.clone(),
        })
    })
    .await;
    limited.signed_up("first@example.com").await;
    let res = limited
        .sign_up("second@example.com", portcullis_tests::PASSWORD)
        .await;
    assert_eq!(res.status, StatusCode::CONFLICT, "{}", res.text());
    assert_eq!(res.code().as_deref(), Some("TOO_MANY_COUNTS"));
    assert_eq!(state.users.load(Ordering::SeqCst), 1);
}
