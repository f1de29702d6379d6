//! Database hooks: application and plugin code around every write of a core model, whichever
//! endpoint makes it (Better Auth's `databaseHooks`).

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use std::sync::{Arc, Mutex};

use http::StatusCode;
use portcullis::email::RESET_PASSWORD;
use portcullis::schema::{Field, FieldType, SchemaPatch};
use portcullis::storage::{DbHook, DbOp, Model, Row};
use portcullis::{ApiError, ApiRequest, Ctx, ErrorCode, Plugin};
use portcullis_tests::mail::MailSink;
use portcullis_tests::{seconds_from_now, set_session_times, TestApp, DAY, PASSWORD};
use serde_json::json;

const SIGN_UP_CLOSED: ErrorCode = ErrorCode::new("SIGN_UP_CLOSED", "Sign-ups are closed");

fn closed() -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, SIGN_UP_CLOSED)
}

type Log = Arc<Mutex<Vec<String>>>;

fn entries(log: &Log) -> Vec<String> {
    log.lock().unwrap().clone()
}

/// How a hook saw its call: `label field=value ctx=<route or none>`.
fn seen(label: &str, row: &Row, field: &str, ctx: Option<&Ctx>) -> String {
    let value = row.str(field).unwrap_or("-");
    let ctx = ctx.map_or("none".to_owned(), |c| c.route().to_owned());
    format!("{label} {field}={value} ctx={ctx}")
}

/// An after hook on `op` of `model` that records what it saw under `label`.
fn recorder(op: DbOp, model: Model, log: &Log, label: &'static str, field: &'static str) -> DbHook {
    let log = log.clone();
    let record = move |row: Row, ctx: Option<Ctx>| {
        log.lock()
            .unwrap()
            .push(seen(label, &row, field, ctx.as_ref()));
        async { Ok(()) }
    };
    match op {
        DbOp::Create => DbHook::after_create(model, record),
        DbOp::Update => DbHook::after_update(model, record),
        DbOp::Delete => DbHook::after_delete(model, record),
    }
}

/// A 400 with a code of the test's own.
fn refusal(code: &'static str, message: &'static str) -> ApiError {
    ApiError::bad_request(ErrorCode::new(code, message))
}

/// Signs `email` up on `app`; the session token.
async fn signed_up_token(app: &mut TestApp, email: &str) -> String {
    app.signed_up(email).await["token"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn count(app: &TestApp, model: &str) -> u64 {
    app.auth.adapter().count(model, &[]).await.unwrap()
}

// --- create ------------------------------------------------------------------------------

#[tokio::test]
async fn a_before_create_hook_changes_the_stored_user_and_the_answer() {
    let mut app = TestApp::build(|b| {
        b.database_hook(DbHook::before_create(
            Model::USER,
            |mut user, _ctx| async move {
                let name = format!("{}!", user.str("name").unwrap_or_default());
                user.set("name", name);
                Ok(user)
            },
        ))
    })
    .await;

    let res = app
        .post(
            "/sign-up/email",
            json!({ "name": "Ann", "email": "ann@example.com", "password": PASSWORD }),
        )
        .await;

    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    assert_eq!(res.json()["user"]["name"], "Ann!");
    assert_eq!(app.session().await["user"]["name"], "Ann!");
}

#[tokio::test]
async fn a_before_create_hook_can_refuse_a_sign_up_and_nothing_is_written() {
    let mut app = TestApp::build(|b| {
        b.database_hook(DbHook::before_create(Model::USER, |_user, _ctx| async {
            Err(closed())
        }))
    })
    .await;

    let res = app.sign_up("refused@example.com", PASSWORD).await;

    assert_eq!(res.status, StatusCode::FORBIDDEN);
    assert_eq!(
        res.json(),
        json!({ "message": "Sign-ups are closed", "code": "SIGN_UP_CLOSED" })
    );
    assert!(res.set_cookies().is_empty());
    assert_eq!(count(&app, "user").await, 0);
    assert_eq!(count(&app, "account").await, 0);
    assert_eq!(count(&app, "session").await, 0);
}

#[tokio::test]
async fn refusing_the_account_rolls_back_the_user_and_skips_its_after_hooks() {
    let log: Log = Arc::default();
    let mut app = TestApp::build(|b| {
        b.database_hook(DbHook::before_create(Model::ACCOUNT, |_a, _ctx| async {
            Err(closed())
        }))
        .database_hook(recorder(DbOp::Create, Model::USER, &log, "user", "email"))
    })
    .await;

    let res = app.sign_up("halfway@example.com", PASSWORD).await;

    assert_eq!(res.status, StatusCode::FORBIDDEN);
    assert_eq!(res.code().as_deref(), Some("SIGN_UP_CLOSED"));
    assert_eq!(
        count(&app, "user").await,
        0,
        "the user insert is rolled back"
    );
    assert_eq!(count(&app, "account").await, 0);
    assert_eq!(count(&app, "session").await, 0);
    assert!(
        entries(&log).is_empty(),
        "no after hook for a rolled-back row"
    );
    // Nothing is left to block a later sign-up with the same email.
    let mut open = TestApp::build(|b| b).await;
    assert_eq!(
        open.sign_up("halfway@example.com", PASSWORD).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn sign_up_creates_user_account_and_session_in_that_order_after_commit() {
    let log: Log = Arc::default();
    let visible: Arc<Mutex<Vec<bool>>> = Arc::default();
    let mut app = TestApp::build(|b| {
        let seen_user = visible.clone();
        b.database_hook(recorder(DbOp::Create, Model::USER, &log, "user", "email"))
            .database_hook(recorder(
                DbOp::Create,
                Model::ACCOUNT,
                &log,
                "account",
                "providerId",
            ))
            .database_hook(recorder(
                DbOp::Create,
                Model::SESSION,
                &log,
                "session",
                "ipAddress",
            ))
            // Reads through another connection: it sees the user only once committed.
            .database_hook(DbHook::after_create(Model::USER, move |user, ctx| {
                let seen_user = seen_user.clone();
                async move {
                    let ctx = ctx.ok_or_else(ApiError::internal)?;
                    let id = user.str("id").unwrap_or_default().to_owned();
                    let found = ctx.store().user_by_id(&id).await?.is_some();
                    seen_user.lock().unwrap().push(found);
                    Ok(())
                }
            }))
    })
    .await;

    let res = app.sign_up("order@example.com", PASSWORD).await;

    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    assert_eq!(
        entries(&log),
        [
            "user email=order@example.com ctx=/sign-up/email",
            "account providerId=credential ctx=/sign-up/email",
            "session ipAddress= ctx=/sign-up/email",
        ]
    );
    assert_eq!(*visible.lock().unwrap(), [true]);
}

#[tokio::test]
async fn an_after_create_session_hook_sees_the_session_of_a_sign_in() {
    let log: Log = Arc::default();
    let mut app = TestApp::build(|b| {
        b.database_hook(recorder(
            DbOp::Create,
            Model::SESSION,
            &log,
            "session",
            "token",
        ))
    })
    .await;
    app.signed_up("watched@example.com").await;
    log.lock().unwrap().clear();

    let res = app.sign_in("watched@example.com", PASSWORD).await;

    assert_eq!(res.status, StatusCode::OK);
    let token = res.json()["token"].as_str().unwrap().to_owned();
    assert_eq!(
        entries(&log),
        [format!("session token={token} ctx=/sign-in/email")]
    );
}

#[tokio::test]
async fn a_refused_session_fails_the_sign_in_with_the_hooks_error() {
    let mut app = TestApp::build(|b| {
        b.database_hook(DbHook::before_create(Model::SESSION, |s, ctx| async move {
            // Sign-up may create a session; sign-in may not.
            match ctx.as_ref().map(Ctx::route) {
                Some("/sign-in/email") => Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    ErrorCode::new("BANNED_USER", "You have been banned"),
                )),
                _ => Ok(s),
            }
        }))
    })
    .await;
    app.signed_up("banned@example.com").await;
    app.jar.clear();

    let res = app.sign_in("banned@example.com", PASSWORD).await;

    assert_eq!(res.status, StatusCode::FORBIDDEN);
    assert_eq!(
        res.json(),
        json!({ "message": "You have been banned", "code": "BANNED_USER" })
    );
    assert!(res.set_cookies().is_empty());
    assert_eq!(count(&app, "session").await, 1, "only sign-up's session");
}

#[tokio::test]
async fn a_failing_after_hook_is_answered_but_the_write_stays() {
    let mut app = TestApp::build(|b| {
        b.database_hook(DbHook::after_create(Model::USER, |_u, _ctx| async {
            Err(ApiError::internal().with_message("welcome mail failed"))
        }))
    })
    .await;

    let res = app.sign_up("committed@example.com", PASSWORD).await;

    assert_eq!(res.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        res.json(),
        json!({ "message": "welcome mail failed", "code": "INTERNAL_SERVER_ERROR" })
    );
    assert_eq!(count(&app, "user").await, 1);
    assert_eq!(count(&app, "account").await, 1);
}

// --- update ------------------------------------------------------------------------------

#[tokio::test]
async fn a_before_update_hook_changes_what_update_user_stores() {
    let log: Log = Arc::default();
    let fields = log.clone();
    let mut app = TestApp::build(|b| {
        b.database_hook(DbHook::before_update(Model::USER, move |mut set, _ctx| {
            let keys: Vec<&str> = set.iter().map(|(k, _)| k).collect();
            fields.lock().unwrap().push(keys.join(","));
            async move {
                if let Some(name) = set.str("name") {
                    let upper = name.to_uppercase();
                    set.set("name", upper);
                }
                Ok(set)
            }
        }))
    })
    .await;
    app.signed_up("upper@example.com").await;

    let res = app
        .post("/update-user", json!({ "name": "shouting" }))
        .await;

    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    assert_eq!(app.session().await["user"]["name"], "SHOUTING");
    // The hook sees only what is being set.
    assert_eq!(entries(&log), ["name,updatedAt"]);
}

#[tokio::test]
async fn a_before_update_hook_can_refuse_update_user() {
    let mut app = TestApp::build(|b| {
        b.database_hook(DbHook::before_update(Model::USER, |_set, _ctx| async {
            Err(refusal("NAME_LOCKED", "Names cannot change"))
        }))
    })
    .await;
    app.signed_up("locked@example.com").await;

    let res = app.post("/update-user", json!({ "name": "Other" })).await;

    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        res.json(),
        json!({ "message": "Names cannot change", "code": "NAME_LOCKED" })
    );
    assert_eq!(app.session().await["user"]["name"], "Test User");
}

#[tokio::test]
async fn a_session_refresh_is_a_session_update() {
    let log: Log = Arc::default();
    let mut app = TestApp::build(|b| {
        b.database_hook(recorder(
            DbOp::Update,
            Model::SESSION,
            &log,
            "refresh",
            "token",
        ))
    })
    .await;
    let token = signed_up_token(&mut app, "refresh@example.com").await;
    set_session_times(&app.auth, &token, seconds_from_now(6 * DAY), None).await;

    let res = app.get("/get-session").await;

    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(
        entries(&log),
        [format!("refresh token={token} ctx=/get-session")]
    );
}

#[tokio::test]
async fn a_refused_session_refresh_answers_the_hooks_error() {
    let mut app = TestApp::build(|b| {
        b.database_hook(DbHook::before_update(Model::SESSION, |_set, _ctx| async {
            Err(ApiError::unauthorized().with_message("refresh refused"))
        }))
    })
    .await;
    let token = signed_up_token(&mut app, "norefresh@example.com").await;
    set_session_times(&app.auth, &token, seconds_from_now(6 * DAY), None).await;

    let res = app.get("/get-session").await;

    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    assert_eq!(res.json()["message"], "refresh refused");
    assert!(res.expires_cookie("better-auth.session_token"));
}

#[tokio::test]
async fn hooks_outside_a_request_get_no_context() {
    let log: Log = Arc::default();
    let mut app = TestApp::build(|b| {
        b.database_hook(recorder(DbOp::Update, Model::USER, &log, "update", "name"))
    })
    .await;
    let id = app.signed_up("direct@example.com").await["user"]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    app.auth
        .store()
        .update_user(&id, Row::new().with("name", "Direct"))
        .await
        .unwrap();

    assert_eq!(entries(&log), ["update name=Direct ctx=none"]);
}

// --- delete ------------------------------------------------------------------------------

#[tokio::test]
async fn sign_out_runs_the_session_delete_hooks() {
    let log: Log = Arc::default();
    let before = log.clone();
    let mut app = TestApp::build(|b| {
        b.database_hook(DbHook::before_delete(Model::SESSION, move |row, ctx| {
            let entry = seen("before", &row, "token", ctx.as_ref());
            before.lock().unwrap().push(entry);
            async { Ok(()) }
        }))
        .database_hook(recorder(
            DbOp::Delete,
            Model::SESSION,
            &log,
            "after",
            "token",
        ))
    })
    .await;
    let token = signed_up_token(&mut app, "bye@example.com").await;

    let res = app.post_empty("/sign-out").await;

    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(
        entries(&log),
        [
            format!("before token={token} ctx=/sign-out"),
            format!("after token={token} ctx=/sign-out"),
        ]
    );
}

#[tokio::test]
async fn a_before_delete_hook_can_keep_a_session() {
    let mut app = TestApp::build(|b| {
        b.database_hook(DbHook::before_delete(Model::SESSION, |_row, _ctx| async {
            Err(refusal("SESSION_PINNED", "This session cannot end"))
        }))
    })
    .await;
    app.signed_up("pinned@example.com").await;

    let res = app.post("/revoke-sessions", json!({})).await;

    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert_eq!(res.code().as_deref(), Some("SESSION_PINNED"));
    assert_eq!(app.session().await["user"]["email"], "pinned@example.com");
}

#[tokio::test]
async fn delete_user_is_all_or_nothing_under_a_refusing_hook() {
    let mut app = TestApp::build(|b| {
        b.options(|o| o.delete_user.enabled = true)
            .database_hook(DbHook::before_delete(Model::USER, |_row, _ctx| async {
                Err(refusal("USER_PROTECTED", "This user cannot be deleted"))
            }))
    })
    .await;
    app.signed_up("keep@example.com").await;

    let res = app
        .post("/delete-user", json!({ "password": PASSWORD }))
        .await;

    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert_eq!(res.code().as_deref(), Some("USER_PROTECTED"));
    // Sessions and accounts were deleted before the user was refused: rolled back too.
    assert_eq!(count(&app, "session").await, 1);
    assert_eq!(count(&app, "account").await, 1);
    assert_eq!(app.session().await["user"]["email"], "keep@example.com");
}

// --- verification rows -------------------------------------------------------------------

#[tokio::test]
async fn password_reset_runs_the_verification_hooks() {
    let log: Log = Arc::default();
    let mail = MailSink::new();
    let sender = mail.clone();
    let mut app = TestApp::build(|b| {
        b.email_sender(sender)
            .database_hook(recorder(
                DbOp::Create,
                Model::VERIFICATION,
                &log,
                "created",
                "value",
            ))
            .database_hook(recorder(
                DbOp::Delete,
                Model::VERIFICATION,
                &log,
                "deleted",
                "value",
            ))
    })
    .await;
    let id = app.signed_up("reset@example.com").await["user"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let asked = app
        .post(
            "/request-password-reset",
            json!({ "email": "reset@example.com" }),
        )
        .await;
    assert_eq!(asked.status, StatusCode::OK);
    let token = mail
        .wait_for(RESET_PASSWORD, "reset@example.com", 1)
        .await
        .token
        .unwrap();

    let res = app
        .post(
            "/reset-password",
            json!({ "newPassword": "another-good-password", "token": token }),
        )
        .await;

    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    assert_eq!(
        entries(&log),
        [
            format!("created value={id} ctx=/request-password-reset"),
            format!("deleted value={id} ctx=/reset-password"),
        ]
    );
}

#[tokio::test]
async fn a_refused_verification_row_fails_the_reset_request() {
    let mail = MailSink::new();
    let sender = mail.clone();
    let mut app = TestApp::build(|b| {
        b.email_sender(sender).database_hook(DbHook::before_create(
            Model::VERIFICATION,
            |_row, _ctx| async {
                Err(ApiError::new(StatusCode::TOO_MANY_REQUESTS, SIGN_UP_CLOSED))
            },
        ))
    })
    .await;
    app.signed_up("noreset@example.com").await;

    let res = app
        .post(
            "/request-password-reset",
            json!({ "email": "noreset@example.com" }),
        )
        .await;

    assert_eq!(res.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(res.code().as_deref(), Some("SIGN_UP_CLOSED"));
    assert_eq!(count(&app, "verification").await, 0);
    assert!(mail.messages().is_empty());
}

// --- plugins -----------------------------------------------------------------------------

/// Gives every new user a `role`, as Better Auth's admin plugin does through its
/// `init().options.databaseHooks`.
struct Roles {
    log: Log,
}

impl Plugin for Roles {
    fn id(&self) -> &'static str {
        "roles"
    }

    fn schema(&self) -> SchemaPatch {
        SchemaPatch::default().field(
            "user",
            Field::new("role", FieldType::String)
                .optional()
                .server_only(),
        )
    }

    fn database_hooks(&self) -> Vec<DbHook> {
        let log = self.log.clone();
        vec![DbHook::before_create(Model::USER, move |mut user, _ctx| {
            log.lock().unwrap().push("plugin".into());
            async move {
                user.set("role", "member");
                Ok(user)
            }
        })]
    }
}

#[tokio::test]
async fn a_plugin_contributes_database_hooks_that_run_before_the_applications() {
    let log: Log = Arc::default();
    let app_log = log.clone();
    let mut app = TestApp::build(|b| {
        b.plugin(Roles { log: log.clone() })
            .database_hook(DbHook::before_create(Model::USER, move |user, _ctx| {
                app_log
                    .lock()
                    .unwrap()
                    .push(format!("app sees role={}", user.str("role").unwrap_or("-")));
                async move { Ok(user) }
            }))
    })
    .await;

    let res = app.sign_up("member@example.com", PASSWORD).await;

    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    assert_eq!(res.json()["user"]["role"], "member");
    assert_eq!(entries(&log), ["plugin", "app sees role=member"]);
}

#[tokio::test]
async fn server_side_calls_run_database_hooks_with_their_context() {
    let log: Log = Arc::default();
    let is_http: Arc<Mutex<Vec<bool>>> = Arc::default();
    let http_seen = is_http.clone();
    let app = TestApp::build(|b| {
        b.database_hook(recorder(DbOp::Create, Model::USER, &log, "user", "email"))
            .database_hook(DbHook::after_create(Model::USER, move |_row, ctx| {
                http_seen
                    .lock()
                    .unwrap()
                    .extend(ctx.as_ref().map(Ctx::is_http));
                async { Ok(()) }
            }))
    })
    .await;

    let res = app
        .auth
        .api()
        .call(ApiRequest::new("signUpEmail").body(json!({
            "name": "Server",
            "email": "server@example.com",
            "password": PASSWORD,
        })))
        .await;

    assert!(res.is_ok(), "{res:?}");
    assert_eq!(
        entries(&log),
        ["user email=server@example.com ctx=/sign-up/email"]
    );
    assert_eq!(*is_http.lock().unwrap(), [false]);
}

#[tokio::test]
async fn a_failing_after_hook_does_not_stop_the_others_and_each_deleted_row_is_reported_once() {
    let log: Log = Arc::default();
    let mut app = TestApp::build(|b| {
        b.database_hook(DbHook::after_delete(Model::SESSION, |_row, _ctx| async {
            Err(refusal("AUDIT_DOWN", "Audit log unavailable"))
        }))
        .database_hook(recorder(
            DbOp::Delete,
            Model::SESSION,
            &log,
            "after",
            "userId",
        ))
    })
    .await;
    app.signed_up("many@example.com").await;
    let mut second = app.new_client();
    second.sign_in("many@example.com", PASSWORD).await;
    let mut third = app.new_client();
    third.sign_in("many@example.com", PASSWORD).await;
    assert_eq!(count(&app, "session").await, 3);

    let res = app.post_empty("/revoke-sessions").await;

    // The first hook's error is the answer; the sessions are gone and the second hook saw
    // each of them exactly once.
    assert_eq!(res.code().as_deref(), Some("AUDIT_DOWN"));
    assert_eq!(count(&app, "session").await, 0);
    assert_eq!(entries(&log).len(), 3, "{:?}", entries(&log));
}
