//! Property tests: whatever a client posts to sign-up and sign-in, the engine answers with a
//! client error or success, never a server error and never a panic.
//!
//! Case counts are modest: a case that reaches password hashing costs tens of milliseconds.

use bytes::Bytes;
use http::{header, HeaderValue, Method, StatusCode};
use http_body_util::Full;
use portcullis_tests::{TestApp, TestResponse, PASSWORD};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{json, Map, Value};

const PATHS: [&str; 2] = ["/sign-up/email", "/sign-in/email"];

fn runner(cases: u32) -> TestRunner {
    TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    })
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
}

/// Any JSON value, with keys sign-up and sign-in read showing up often.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,40}".prop_map(Value::String),
        email().prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(vec![
            "name", "email", "password", "rememberMe", "callbackURL", "image",
            "emailVerified", "id", "createdAt", "token", "__proto__",
        ])
        .prop_map(str::to_owned),
        1 => ".{0,12}",
    ]
}

fn email() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9._+-]{1,12}@[a-z0-9-]{1,10}\\.[a-z]{2,4}",
        Just("fuzz@example.com".to_owned()),
        ".{0,20}@.{0,20}",
    ]
}

/// Bodies shaped like a sign-up or sign-in, with each field sometimes wrong.
fn near_valid_body() -> impl Strategy<Value = Value> {
    let field = |good: BoxedStrategy<Value>| {
        prop_oneof![
            6 => good,
            1 => Just(Value::Null),
            1 => json_value(),
        ]
    };
    (
        field(".{0,30}".prop_map(Value::String).boxed()),
        field(email().prop_map(Value::String).boxed()),
        field(
            prop_oneof![
                ".{0,7}".prop_map(Value::String),
                ".{8,20}".prop_map(Value::String),
                ".{129,140}".prop_map(Value::String),
            ]
            .boxed(),
        ),
        prop::option::of(field(any::<bool>().prop_map(Value::Bool).boxed())),
        prop::option::of(field(".{0,30}".prop_map(Value::String).boxed())),
    )
        .prop_map(|(name, email, password, remember, callback)| {
            let mut m = Map::new();
            m.insert("name".into(), name);
            m.insert("email".into(), email);
            m.insert("password".into(), password);
            if let Some(r) = remember {
                m.insert("rememberMe".into(), r);
            }
            if let Some(c) = callback {
                m.insert("callbackURL".into(), c);
            }
            Value::Object(m)
        })
}

fn content_type() -> impl Strategy<Value = Option<HeaderValue>> {
    prop_oneof![
        Just(None),
        prop::sample::select(vec![
            "application/json",
            "application/json; charset=utf-8",
            "APPLICATION/JSON",
            "application/x-www-form-urlencoded",
            "text/plain",
            "multipart/form-data; boundary=x",
            "application/json;",
            ";",
            "",
        ])
        .prop_map(|s| Some(HeaderValue::from_static(s))),
        "[ -~]{0,40}".prop_map(|s| HeaderValue::from_str(&s).ok()),
        prop::collection::vec(0x80u8..=0xff, 1..10).prop_map(|b| HeaderValue::from_bytes(&b).ok()),
    ]
}

async fn post(
    app: &TestApp,
    path: &str,
    content_type: Option<HeaderValue>,
    body: Bytes,
) -> TestResponse {
    let mut client = app.new_client();
    let mut req = TestApp::request(Method::POST, path)
        .body(Full::new(body))
        .expect("a valid request");
    if let Some(ct) = content_type {
        req.headers_mut().insert(header::CONTENT_TYPE, ct);
    }
    client.send(req).await
}

fn check(res: &TestResponse, what: &str) -> Result<(), TestCaseError> {
    prop_assert!(
        !res.status.is_server_error(),
        "{what} got {}: {}",
        res.status,
        res.text()
    );
    prop_assert!(
        res.status.is_success() || res.status.is_client_error(),
        "{what} got {}",
        res.status
    );
    if res.status.is_client_error() && !res.body.is_empty() {
        let body: Value = serde_json::from_slice(&res.body)
            .map_err(|e| TestCaseError::fail(format!("{what}: error body is not JSON: {e}")))?;
        prop_assert!(body["message"].is_string(), "{what}: {body}");
    }
    Ok(())
}

#[test]
fn random_json_bodies_never_cause_a_server_error() {
    let rt = runtime();
    let app = rt.block_on(TestApp::new());
    let strategy = (prop::sample::select(PATHS.to_vec()), json_value());

    runner(64)
        .run(&strategy, |(path, body)| {
            let res = rt.block_on(post(
                &app,
                path,
                Some(HeaderValue::from_static("application/json")),
                Bytes::from(body.to_string()),
            ));
            check(&res, &format!("{path} {body}"))
        })
        .unwrap();
}

#[tokio::test]
async fn nul_characters_are_refused_alike_on_every_database() {
    let mut app = TestApp::new().await;
    let res = app
        .post(
            "/sign-up/email",
            serde_json::json!({"name": "a\u{0}b", "email": "nul@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert_eq!(res.json()["code"], "VALIDATION_ERROR");
    assert!(app
        .auth
        .store()
        .user_by_email("nul@example.com")
        .await
        .unwrap()
        .is_none());
}

#[test]
fn near_valid_bodies_never_cause_a_server_error() {
    let rt = runtime();
    let app = rt.block_on(async {
        let mut app = TestApp::new().await;
        app.signed_up("fuzz@example.com").await;
        app
    });
    let strategy = (prop::sample::select(PATHS.to_vec()), near_valid_body());

    runner(64)
        .run(&strategy, |(path, body)| {
            let res = rt.block_on(post(
                &app,
                path,
                Some(HeaderValue::from_static("application/json")),
                Bytes::from(body.to_string()),
            ));
            check(&res, &format!("{path} {body}"))?;
            if res.status == StatusCode::OK {
                prop_assert!(res.json()["user"]["id"].is_string());
                prop_assert!(res.set_cookie("better-auth.session_token").is_some());
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn random_bytes_with_random_content_types_never_cause_a_server_error() {
    let rt = runtime();
    let app = rt.block_on(TestApp::new());
    let body = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..300).prop_map(Bytes::from),
        ".{0,200}".prop_map(Bytes::from),
        // Form-looking bodies, which the two endpoints accept.
        prop::collection::vec(("[a-zA-Z%+&=]{0,10}", "[a-zA-Z0-9%+&=@.]{0,20}"), 0..5).prop_map(
            |pairs| {
                Bytes::from(
                    pairs
                        .into_iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                        .join("&"),
                )
            }
        ),
    ];
    let strategy = (prop::sample::select(PATHS.to_vec()), content_type(), body);

    runner(64)
        .run(&strategy, |(path, ct, body)| {
            let what = format!("{path} {ct:?} {body:?}");
            let res = rt.block_on(post(&app, path, ct, body));
            check(&res, &what)
        })
        .unwrap();
}

#[test]
fn a_valid_form_sign_up_works_for_any_name_without_nul() {
    let rt = runtime();
    let app = rt.block_on(TestApp::new());
    let counter = std::cell::Cell::new(0u32);

    runner(16)
        .run(&"[^\\x00]{1,40}", |name| {
            counter.set(counter.get() + 1);
            let email = format!("form{}@example.com", counter.get());
            let body = format!(
                "name={}&email={}&password={PASSWORD}",
                portcullis::cookies::encode_uri_component(&name),
                portcullis::cookies::encode_uri_component(&email),
            );
            let res = rt.block_on(post(
                &app,
                "/sign-up/email",
                Some(HeaderValue::from_static(
                    "application/x-www-form-urlencoded",
                )),
                Bytes::from(body),
            ));
            prop_assert_eq!(res.status, StatusCode::OK, "{}", res.text());
            let body = res.json();
            prop_assert_eq!(body["user"]["name"].as_str(), Some(name.as_str()));
            Ok(())
        })
        .unwrap();
}

#[test]
fn random_methods_and_paths_never_cause_a_server_error() {
    let rt = runtime();
    let app = rt.block_on(TestApp::new());
    let methods = prop_oneof![
        Just(http::Method::GET),
        Just(http::Method::POST),
        Just(http::Method::PUT),
        Just(http::Method::DELETE),
        Just(http::Method::OPTIONS),
        Just(http::Method::PATCH),
    ];
    let paths = prop_oneof![
        "/api/auth(/[a-z%2F.:_-]{0,12}){0,4}/?",
        "/api/auth/(sign-in|sign-up|reset-password|get-session|ok|error)(/[^?# ]{0,20})?",
        "[/a-zA-Z0-9%._~-]{0,40}",
    ];
    runner(64)
        .run(
            &(methods, paths, "[a-z=&%0-9]{0,30}"),
            |(method, path, query)| {
                let uri = format!("{path}?{query}");
                let Ok(req) = http::Request::builder()
                    .method(method)
                    .uri(uri.as_str())
                    .body(http_body_util::Full::new(Bytes::new()))
                else {
                    return Ok(());
                };
                let res = rt.block_on(app.auth.handle(req));
                prop_assert!(!res.status().is_server_error(), "{uri} -> {}", res.status());
                Ok(())
            },
        )
        .unwrap();
}
