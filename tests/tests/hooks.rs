//! Hooks: plugins (and the application) running code before and after endpoints.

use std::sync::{Arc, Mutex};

use http::{Method, StatusCode};
use portcullis::{
    ApiError, ApiRequest, Before, Ctx, Endpoint, ErrorCode, Hook, Matcher, Plugin, Reply,
};
use portcullis_email_password::{EmailPasswordApi, SignUpEmail};
use portcullis_tests::{TestApp, PASSWORD};
use serde_json::json;

const DOMAIN_BLOCKED: ErrorCode = ErrorCode::new(
    "EMAIL_DOMAIN_BLOCKED",
    "Sign-ups from this domain are blocked",
);

/// Refuses sign-ups from one domain and adds a field to sign-in answers.
struct DomainGuard {
    blocked: &'static str,
}

impl Plugin for DomainGuard {
    fn id(&self) -> &'static str {
        "domain-guard"
    }

    fn hooks(&self) -> Vec<Hook> {
        let blocked = format!("@{}", self.blocked);
        vec![
            Hook::before(Matcher::Path("/sign-up/email".into()), move |ctx: Ctx| {
                let refused = ctx
                    .body_json()
                    .and_then(|b| b.get("email"))
                    .and_then(|e| e.as_str())
                    .is_some_and(|e| e.to_ascii_lowercase().ends_with(&blocked));
                async move {
                    if refused {
                        return Err(ApiError::new(StatusCode::FORBIDDEN, DOMAIN_BLOCKED));
                    }
                    Ok(Before::Continue)
                }
            }),
            Hook::after(
                Matcher::Path("/sign-in/email".into()),
                |_ctx: Ctx, result: Result<Reply, ApiError>| async move {
                    let mut reply = result?;
                    if let Some(mut body) = reply.json_body().cloned() {
                        body["greeting"] = json!(format!(
                            "Welcome back, {}",
                            body["user"]["name"].as_str().unwrap_or_default()
                        ));
                        reply.set_json(body);
                    }
                    Ok(reply)
                },
            ),
        ]
    }

    fn error_codes(&self) -> &'static [ErrorCode] {
        &[DOMAIN_BLOCKED]
    }
}

async fn guarded_app() -> TestApp {
    TestApp::build(|b| {
        b.plugin(DomainGuard {
            blocked: "spam.example",
        })
    })
    .await
}

#[tokio::test]
async fn a_before_hook_can_refuse_a_sign_up() {
    let mut app = guarded_app().await;

    let res = app.sign_up("someone@SPAM.example", PASSWORD).await;

    assert_eq!(res.status, StatusCode::FORBIDDEN);
    assert_eq!(
        res.json(),
        json!({ "message": "Sign-ups from this domain are blocked", "code": "EMAIL_DOMAIN_BLOCKED" })
    );
    assert!(res.set_cookies().is_empty());
    assert!(app
        .auth
        .store()
        .user_by_email("someone@spam.example")
        .await
        .unwrap()
        .is_none());
    // Other domains are let through.
    assert_eq!(
        app.sign_up("someone@ok.example", PASSWORD).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn an_after_hook_can_add_to_the_sign_in_answer() {
    let mut app = guarded_app().await;
    app.signed_up("greet@example.com").await;

    let res = app.sign_in("greet@example.com", PASSWORD).await;

    assert_eq!(res.status, StatusCode::OK);
    let body = res.json();
    assert_eq!(body["greeting"], "Welcome back, Test User");
    assert!(body["token"].is_string(), "the rest of the answer is kept");
    assert!(res.set_cookie("better-auth.session_token").is_some());
    // Only sign-in is changed.
    let session = app.get("/get-session").await.json();
    assert!(session.get("greeting").is_none());
}

#[tokio::test]
async fn an_after_hook_passes_errors_through() {
    let mut app = guarded_app().await;

    let res = app.sign_in("nobody@example.com", PASSWORD).await;

    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    assert_eq!(res.code().as_deref(), Some("INVALID_EMAIL_OR_PASSWORD"));
}

#[tokio::test]
async fn hooks_also_run_for_server_side_calls() {
    let app = guarded_app().await;

    let refused = app
        .auth
        .api()
        .sign_up_email(SignUpEmail::new("S", "x@spam.example", PASSWORD))
        .await
        .unwrap_err();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert_eq!(refused.code(), Some("EMAIL_DOMAIN_BLOCKED"));

    app.auth
        .api()
        .sign_up_email(SignUpEmail::new("Api", "api@example.com", PASSWORD))
        .await
        .unwrap();
    let signed_in: serde_json::Value = app
        .auth
        .api()
        .call_json(
            ApiRequest::new("signInEmail")
                .body(json!({ "email": "api@example.com", "password": PASSWORD })),
        )
        .await
        .unwrap();
    assert_eq!(signed_in["greeting"], "Welcome back, Api");
}

#[tokio::test]
async fn plugin_error_codes_are_listed_with_the_engines() {
    let app = guarded_app().await;

    let codes: Vec<&str> = app.auth.error_codes().iter().map(|c| c.code).collect();

    assert!(codes.contains(&"EMAIL_DOMAIN_BLOCKED"));
    assert!(codes.contains(&"INVALID_EMAIL_OR_PASSWORD"));
    assert!(codes.contains(&"EMAIL_PASSWORD_SIGN_UP_DISABLED"));
}

// --- order -------------------------------------------------------------------------------

type Log = Arc<Mutex<Vec<String>>>;

fn record(log: &Log, entry: String) {
    log.lock().unwrap_or_else(|e| e.into_inner()).push(entry);
}

fn entries(log: &Log) -> Vec<String> {
    std::mem::take(&mut *log.lock().unwrap_or_else(|e| e.into_inner()))
}

/// Writes down when each of its hooks runs; `with_endpoint` also serves `GET /probe`.
struct Recorder {
    name: &'static str,
    log: Log,
    with_endpoint: bool,
}

impl Plugin for Recorder {
    fn id(&self) -> &'static str {
        self.name
    }

    fn endpoints(&self) -> Vec<Endpoint> {
        if !self.with_endpoint {
            return Vec::new();
        }
        let log = self.log.clone();
        vec![Endpoint::get("probe", "/probe", move |_ctx| {
            record(&log, "endpoint".into());
            async { Ok(Reply::json(json!({ "probed": true }))) }
        })]
    }

    fn hooks(&self) -> Vec<Hook> {
        let name = self.name;
        let (b, a, rq, rs) = (
            self.log.clone(),
            self.log.clone(),
            self.log.clone(),
            self.log.clone(),
        );
        let mut hooks = vec![
            Hook::before(Matcher::Any, move |ctx: Ctx| {
                record(&b, format!("{name}:before {}", ctx.route()));
                async { Ok(Before::Continue) }
            }),
            Hook::after(Matcher::Any, move |ctx: Ctx, result| {
                let outcome = if result.is_ok() { "ok" } else { "err" };
                record(&a, format!("{name}:after {} {outcome}", ctx.route()));
                async { result }
            }),
        ];
        if self.with_endpoint {
            hooks.push(Hook::on_request(move |parts| {
                record(&rq, format!("{name}:request"));
                async { Ok(parts) }
            }));
            hooks.push(Hook::on_response(move |reply| {
                record(&rs, format!("{name}:response"));
                async { reply }
            }));
        }
        hooks
    }
}

async fn recorded_app(log: &Log) -> TestApp {
    let (b, a) = (log.clone(), log.clone());
    let (p1, p2) = (log.clone(), log.clone());
    TestApp::build(move |builder| {
        builder
            .plugin(Recorder {
                name: "first",
                log: p1,
                with_endpoint: true,
            })
            .plugin(Recorder {
                name: "second",
                log: p2,
                with_endpoint: false,
            })
            .hook(Hook::before(Matcher::Any, move |ctx: Ctx| {
                record(&b, format!("app:before {}", ctx.route()));
                async { Ok(Before::Continue) }
            }))
            .hook(Hook::after(Matcher::Any, move |ctx: Ctx, result| {
                record(&a, format!("app:after {}", ctx.route()));
                async { result }
            }))
    })
    .await
}

#[tokio::test]
async fn application_hooks_run_before_plugin_hooks_in_plugin_order() {
    let log: Log = Arc::default();
    let mut app = recorded_app(&log).await;

    let res = app.get("/probe").await;

    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.json(), json!({ "probed": true }));
    assert_eq!(
        entries(&log),
        [
            "first:request",
            "app:before /probe",
            "first:before /probe",
            "second:before /probe",
            "endpoint",
            "app:after /probe",
            "first:after /probe ok",
            "second:after /probe ok",
            "first:response",
        ]
    );
}

#[tokio::test]
async fn after_hooks_see_a_failed_endpoint() {
    let log: Log = Arc::default();
    let mut app = recorded_app(&log).await;

    let res = app.sign_in("nobody@example.com", PASSWORD).await;

    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    let log = entries(&log);
    assert!(
        log.contains(&"first:after /sign-in/email err".to_owned()),
        "{log:?}"
    );
    assert!(
        log.contains(&"second:after /sign-in/email err".to_owned()),
        "{log:?}"
    );
}

#[tokio::test]
async fn server_side_calls_run_before_and_after_hooks_but_not_request_hooks() {
    let log: Log = Arc::default();
    let app = recorded_app(&log).await;

    let reply = app.auth.api().call(ApiRequest::new("probe")).await.unwrap();

    assert_eq!(reply.json_body(), Some(&json!({ "probed": true })));
    assert_eq!(
        entries(&log),
        [
            "app:before /probe",
            "first:before /probe",
            "second:before /probe",
            "endpoint",
            "app:after /probe",
            "first:after /probe ok",
            "second:after /probe ok",
        ]
    );
}

#[tokio::test]
async fn an_unrouted_request_runs_no_endpoint_hooks() {
    let log: Log = Arc::default();
    let mut app = recorded_app(&log).await;

    let res = app.get("/nowhere").await;

    assert_eq!(res.status, StatusCode::NOT_FOUND);
    assert_eq!(entries(&log), ["first:request"]);
}

// --- answering early and rewriting ---------------------------------------------------------

#[tokio::test]
async fn a_before_hook_can_answer_instead_of_the_endpoint() {
    let mut app = TestApp::build(|b| {
        b.hook(Hook::before(Matcher::Path("/ok".into()), |_ctx| async {
            Ok(Before::Respond(
                Reply::json(json!({ "maintenance": true }))
                    .with_status(StatusCode::SERVICE_UNAVAILABLE),
            ))
        }))
    })
    .await;

    let res = app.get("/ok").await;

    assert_eq!(res.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(res.json(), json!({ "maintenance": true }));
}

#[tokio::test]
async fn a_session_answer_stays_uncached_whoever_makes_it() {
    // get-session answers one user's data: `no-store` also when a hook answers in its place.
    let mut early = TestApp::build(|b| {
        b.hook(Hook::before(
            Matcher::Path("/get-session".into()),
            |_ctx| async { Ok(Before::Respond(Reply::json(json!(null)))) },
        ))
    })
    .await;
    let res = early.get("/get-session").await;
    assert_eq!(res.header("cache-control"), Some("no-store"));

    let mut replaced = TestApp::build(|b| {
        b.hook(Hook::after(
            Matcher::Path("/get-session".into()),
            |_ctx, _result| async { Ok(Reply::json(json!({ "replaced": true }))) },
        ))
    })
    .await;
    let res = replaced.get("/get-session").await;
    assert_eq!(res.json(), json!({ "replaced": true }));
    assert_eq!(res.header("cache-control"), Some("no-store"));
}

#[tokio::test]
async fn a_before_hook_can_rewrite_the_body() {
    let mut app = TestApp::build(|b| {
        b.hook(Hook::before(
            Matcher::Custom(Arc::new(|ctx: &Ctx| {
                ctx.method() == Method::POST && ctx.route() == "/sign-up/email"
            })),
            |ctx: Ctx| {
                let mut body = ctx.body_json().cloned().unwrap_or_default();
                if let Some(name) = body.get("name").and_then(|n| n.as_str()) {
                    body["name"] = json!(name.trim());
                }
                async move {
                    Ok(Before::Rewrite {
                        body: Some(body),
                        headers: http::HeaderMap::new(),
                    })
                }
            },
        ))
    })
    .await;

    let res = app
        .post(
            "/sign-up/email",
            json!({ "name": "   Padded   ", "email": "pad@example.com", "password": PASSWORD }),
        )
        .await;

    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    assert_eq!(res.json()["user"]["name"], "Padded");
}

// --- rewriting headers: a bearer-token plugin --------------------------------------------

/// Accepts `Authorization: Bearer <token>` by rewriting it into the session cookie, as Better
/// Auth's bearer plugin does.
struct BearerLike;

impl Plugin for BearerLike {
    fn id(&self) -> &'static str {
        "bearer-like"
    }

    fn hooks(&self) -> Vec<Hook> {
        vec![Hook::before(Matcher::Any, |ctx: Ctx| {
            let auth = ctx.auth().clone();
            let bearer = ctx
                .header(http::header::AUTHORIZATION)
                .and_then(|h| h.strip_prefix("Bearer "))
                .map(str::to_owned);
            async move {
                // Reading the session first caches "no session" for this request; the
                // rewrite must not keep that stale answer.
                let _ = ctx.session().await?;
                let Some(token) = bearer else {
                    return Ok(Before::Continue);
                };
                let cookie = format!(
                    "{}={}",
                    auth.cookies().session_token,
                    portcullis::cookies::encode_uri_component(&auth.secret().sign(&token))
                );
                let mut headers = http::HeaderMap::new();
                headers.insert(
                    http::header::COOKIE,
                    http::HeaderValue::from_str(&cookie).map_err(|_| ApiError::unauthorized())?,
                );
                Ok(Before::Rewrite {
                    body: None,
                    headers,
                })
            }
        })]
    }
}

#[tokio::test]
async fn a_before_hook_can_rewrite_the_cookie_header() {
    let mut browser = TestApp::build(|b| b.plugin(BearerLike)).await;
    let token = browser.signed_up("bearer@example.com").await["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut mobile = browser.new_client();
    mobile.set_default_header("authorization", &format!("Bearer {token}"));

    let session = mobile.get("/get-session").await.json();
    let updated = mobile
        .post("/update-user", json!({ "name": "From Mobile" }))
        .await;

    assert_eq!(session["session"]["token"], token.as_str());
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.text());
    assert_eq!(browser.session().await["user"]["name"], "From Mobile");
}

#[tokio::test]
async fn an_application_after_hook_can_change_a_reply() {
    let mut app = TestApp::build(|b| {
        b.hook(Hook::after(
            Matcher::Path("/get-session".into()),
            |_ctx: Ctx, result: Result<Reply, ApiError>| async move {
                let mut reply = result?;
                if reply.json_body().is_some_and(|b| b.is_null()) {
                    reply.set_json(json!({ "signedIn": false }));
                    reply.headers_mut().insert(
                        http::header::CACHE_CONTROL,
                        http::HeaderValue::from_static("private, max-age=5"),
                    );
                }
                Ok(reply)
            },
        ))
    })
    .await;

    let anonymous = app.get("/get-session").await;
    app.signed_up("after@example.com").await;
    let signed_in = app.get("/get-session").await;

    assert_eq!(anonymous.status, StatusCode::OK);
    assert_eq!(anonymous.json(), json!({ "signedIn": false }));
    assert_eq!(
        anonymous.header("cache-control"),
        Some("private, max-age=5")
    );
    assert_eq!(signed_in.json()["user"]["email"], "after@example.com");
}

#[tokio::test]
async fn an_application_after_hook_can_turn_a_failure_into_an_answer() {
    let mut app = TestApp::build(|b| {
        b.hook(Hook::after(
            Matcher::Path("/sign-in/email".into()),
            |_ctx: Ctx, result: Result<Reply, ApiError>| async move {
                match result {
                    Err(e) if e.code() == Some("INVALID_EMAIL_OR_PASSWORD") => {
                        Ok(Reply::json(json!({ "retry": true })))
                    }
                    other => other,
                }
            },
        ))
    })
    .await;

    let res = app.sign_in("nobody@example.com", PASSWORD).await;

    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.json(), json!({ "retry": true }));
}
