//! Routing and body parsing: what any request, well-formed or not, gets back.

use http::{header, Method, Request, StatusCode};
use http_body_util::Full;
use portcullis_tests::{TestApp, PASSWORD};
use serde_json::json;

#[tokio::test]
async fn ok_answers_ok_true() {
    let mut app = TestApp::new().await;

    let res = app.get("/ok").await;

    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.text(), r#"{"ok":true}"#);
    assert_eq!(res.header("content-type"), Some("application/json"));
}

async fn send(app: &mut TestApp, method: Method, uri: &str) -> portcullis_tests::TestResponse {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .body(Full::default())
        .expect("a valid request");
    app.send(req).await
}

#[tokio::test]
async fn unknown_paths_are_404_with_an_empty_body() {
    let mut app = TestApp::new().await;

    for uri in [
        "/api/auth/does-not-exist",
        "/api/auth/sign-in",
        "/api/auth/sign-in/email/extra",
        "/api/auth",
        "/api/auth/",
        "/api/authok",
        "/api/auth/OK",
        "/ok",
        "/",
        "/api/ok",
        "/other/api/auth/ok",
    ] {
        let res = send(&mut app, Method::GET, uri).await;
        assert_eq!(res.status, StatusCode::NOT_FOUND, "{uri}");
        assert!(res.body.is_empty(), "{uri}: {}", res.text());
    }
}

#[tokio::test]
async fn a_wrong_method_is_404_not_405() {
    let mut app = TestApp::new().await;

    for (method, uri) in [
        (Method::POST, "/api/auth/ok"),
        (Method::GET, "/api/auth/sign-in/email"),
        (Method::GET, "/api/auth/sign-out"),
        (Method::PUT, "/api/auth/update-user"),
        (Method::DELETE, "/api/auth/get-session"),
        (Method::OPTIONS, "/api/auth/get-session"),
        (Method::POST, "/api/auth/list-sessions"),
    ] {
        let res = send(&mut app, method.clone(), uri).await;
        assert_eq!(res.status, StatusCode::NOT_FOUND, "{method} {uri}");
        assert!(res.body.is_empty(), "{method} {uri}");
    }
}

#[tokio::test]
async fn a_trailing_slash_or_an_empty_segment_is_404() {
    let mut app = TestApp::new().await;

    for uri in [
        "/api/auth/get-session/",
        "/api/auth//get-session",
        "/api/auth/sign-in//email",
        "/api/auth/ok//",
        "/api//auth/ok",
    ] {
        let res = send(&mut app, Method::GET, uri).await;
        assert_eq!(res.status, StatusCode::NOT_FOUND, "{uri}");
        assert!(res.body.is_empty(), "{uri}");
    }
}

#[tokio::test]
async fn a_query_string_does_not_change_the_route() {
    let mut app = TestApp::new().await;

    let res = send(&mut app, Method::GET, "/api/auth/ok?x=1&y").await;

    assert_eq!(res.status, StatusCode::OK);
}

#[tokio::test]
async fn malformed_json_is_bad_request() {
    let mut app = TestApp::new().await;

    for body in [
        "{",
        "{\"email\":",
        "not json",
        "{'single': 'quotes'}",
        "{\"a\":1}}",
    ] {
        let res = app
            .post_raw("/sign-in/email", Some("application/json"), body)
            .await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST, "{body:?}");
        assert_eq!(
            res.json(),
            json!({ "message": "Invalid JSON in request body", "code": "BAD_REQUEST" }),
            "{body:?}"
        );
    }
}

#[tokio::test]
async fn json_with_a_charset_parameter_is_accepted() {
    let mut app = TestApp::new().await;

    let res = app
        .post_raw(
            "/sign-up/email",
            Some("Application/JSON; charset=utf-8"),
            json!({ "name": "C", "email": "charset@example.com", "password": PASSWORD })
                .to_string(),
        )
        .await;

    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
}

#[tokio::test]
async fn a_body_of_another_media_type_is_415() {
    let mut app = TestApp::new().await;

    let res = app
        .post_raw(
            "/sign-in/email",
            Some("text/plain"),
            r#"{"email":"a@example.com","password":"x"}"#,
        )
        .await;

    assert_eq!(res.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(res.code().as_deref(), Some("UNSUPPORTED_MEDIA_TYPE"));
    let message = res.json()["message"].as_str().unwrap().to_owned();
    assert!(message.contains("text/plain"), "{message}");
    assert!(message.contains("application/json"), "{message}");
}

#[tokio::test]
async fn form_bodies_are_only_accepted_where_better_auth_accepts_them() {
    let mut app = TestApp::new().await;
    app.signed_up("formonly@example.com").await;

    let res = app
        .post_raw(
            "/update-user",
            Some("application/x-www-form-urlencoded"),
            "name=Changed",
        )
        .await;

    assert_eq!(res.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(res.code().as_deref(), Some("UNSUPPORTED_MEDIA_TYPE"));
    assert_eq!(app.session().await["user"]["name"], "Test User");
}

#[tokio::test]
async fn a_body_without_a_content_type_is_treated_as_no_body() {
    let mut app = TestApp::new().await;

    let res = app
        .post_raw(
            "/sign-up/email",
            None,
            json!({ "name": "N", "email": "noct@example.com", "password": PASSWORD }).to_string(),
        )
        .await;

    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert_eq!(res.code().as_deref(), Some("VALIDATION_ERROR"));
}

#[tokio::test]
async fn a_body_over_the_limit_is_413() {
    let mut app = TestApp::build(|b| b.options(|o| o.max_body_bytes = 1024)).await;
    let body = json!({
        "name": "Big",
        "email": "big@example.com",
        "password": PASSWORD,
        "image": "x".repeat(2000),
    })
    .to_string();

    // Announced by Content-Length: refused before reading.
    let req = TestApp::request(Method::POST, "/sign-up/email")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CONTENT_LENGTH, body.len())
        .body(Full::from(body.clone()))
        .unwrap();
    let res = app.send(req).await;
    assert_eq!(res.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(res.code().as_deref(), Some("PAYLOAD_TOO_LARGE"));

    // Not announced: counted while reading.
    let res = app
        .post_raw("/sign-up/email", Some("application/json"), body)
        .await;
    assert_eq!(res.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(res.code().as_deref(), Some("PAYLOAD_TOO_LARGE"));

    assert!(app
        .auth
        .store()
        .user_by_email("big@example.com")
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn a_ten_megabyte_password_is_refused_without_hashing() {
    let mut app = TestApp::new().await;
    app.signed_up("huge@example.com").await;
    let huge = "p".repeat(10 * 1024 * 1024);

    for path in ["/sign-up/email", "/sign-in/email"] {
        let res = app
            .post(
                path,
                json!({ "name": "H", "email": "huge@example.com", "password": huge }),
            )
            .await;
        assert_eq!(res.status, StatusCode::PAYLOAD_TOO_LARGE, "{path}");
        assert_eq!(res.code().as_deref(), Some("PAYLOAD_TOO_LARGE"), "{path}");
    }
    let res = app
        .post(
            "/change-password",
            json!({ "currentPassword": huge, "newPassword": PASSWORD }),
        )
        .await;
    assert_eq!(res.status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn a_password_under_the_body_limit_but_over_the_length_limit_is_refused_before_hashing() {
    let mut app = TestApp::new().await;
    app.signed_up("big-pw@example.com").await;
    // 500 KB: fits in a request body, far over 128 characters.
    let big = "q".repeat(500 * 1024);

    let up = app.sign_up("other-big@example.com", &big).await;
    let mut c = app.new_client();
    let in_ = c.sign_in("big-pw@example.com", &big).await;
    let ch = app
        .post(
            "/change-password",
            json!({ "currentPassword": big, "newPassword": "a-brand-new-password" }),
        )
        .await;

    for res in [&up, &in_, &ch] {
        assert_eq!(res.status, StatusCode::BAD_REQUEST);
        assert_eq!(res.code().as_deref(), Some("PASSWORD_TOO_LONG"));
    }
}

#[tokio::test]
async fn deeply_nested_json_is_refused_not_a_crash() {
    let mut app = TestApp::new().await;
    let body = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));

    let res = app
        .post_raw("/sign-in/email", Some("application/json"), body)
        .await;

    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert_eq!(res.code().as_deref(), Some("BAD_REQUEST"));
}

#[tokio::test]
async fn mounted_under_a_prefix_the_engine_sees_paths_relative_to_it() {
    // What axum's `nest_service("/api/auth", auth.service())` passes on.
    let app = TestApp::new().await;
    let nested = |uri: &str| {
        Request::builder()
            .uri(uri)
            .body(Full::<bytes::Bytes>::default())
            .expect("a valid request")
    };

    let ok = app.auth.handle_nested(nested("/ok")).await;
    let full = app.auth.handle_nested(nested("/api/auth/ok")).await;
    let slash = app.auth.handle_nested(nested("/ok/")).await;

    assert_eq!(ok.status(), StatusCode::OK);
    assert_eq!(full.status(), StatusCode::NOT_FOUND);
    assert_eq!(slash.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_custom_base_path_moves_every_route() {
    let app = TestApp::build(|b| b.base_path("/auth/v1/")).await;
    let get = |uri: &str| {
        Request::builder()
            .uri(uri)
            .body(Full::<bytes::Bytes>::default())
            .expect("a valid request")
    };

    assert_eq!(
        app.auth.handle(get("/auth/v1/ok")).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        app.auth.handle(get("/api/auth/ok")).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.auth.handle(get("/auth/v1ok")).await.status(),
        StatusCode::NOT_FOUND
    );
}
