//! The HTTP API driven as an attacker would: cross-site requests riding a victim's cookie,
//! login CSRF, and redirect targets that try to leave the site. Each test tries several
//! payloads of one attack class.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use http::{header, HeaderValue, Method, StatusCode};
use portcullis_tests::{TestApp, BASE_URL, PASSWORD};
use serde_json::json;

const EVIL: &str = "https://evil.example.com";

/// A signed-in victim, and an attacker's request builder that replays the victim's cookies.
async fn victim() -> TestApp {
    let mut app =
        TestApp::build(|b| b.options(|o| o.trusted_origins.push("https://*.partner.test".into())))
            .await;
    app.signed_up("victim@example.com").await;
    app
}

async fn post_as(
    app: &mut TestApp,
    path: &str,
    headers: &[(&'static str, &str)],
    body: serde_json::Value,
) -> portcullis_tests::TestResponse {
    let mut req = TestApp::request(Method::POST, path)
        .header(header::CONTENT_TYPE, "application/json")
        .body(http_body_util::Full::new(bytes::Bytes::from(
            body.to_string(),
        )))
        .unwrap();
    for (k, v) in headers {
        req.headers_mut()
            .insert(*k, HeaderValue::from_str(v).unwrap());
    }
    app.send(req).await
}

#[tokio::test]
async fn a_cross_site_post_carrying_the_session_cookie_changes_nothing() {
    let mut app = victim().await;
    app.default_headers.remove(header::ORIGIN);
    let attempts: &[(&[(&str, &str)], &str)] = &[
        (&[("origin", EVIL)], "INVALID_ORIGIN"),
        (
            &[("origin", "https://example.com.evil.com")],
            "INVALID_ORIGIN",
        ),
        (
            &[("origin", "http://localhost:3000.evil.com")],
            "INVALID_ORIGIN",
        ),
        (&[("origin", "http://localhost:3001")], "INVALID_ORIGIN"),
        (&[("origin", "https://localhost:3000")], "INVALID_ORIGIN"),
        (
            &[("referer", "https://evil.example.com/page")],
            "INVALID_ORIGIN",
        ),
        (
            &[("referer", "http://localhost:3000@evil.example.com/")],
            "INVALID_ORIGIN",
        ),
        (&[("origin", "null")], "MISSING_OR_NULL_ORIGIN"),
        (
            &[("origin", "null"), ("sec-fetch-site", "cross-site")],
            "MISSING_OR_NULL_ORIGIN",
        ),
        (&[], "MISSING_OR_NULL_ORIGIN"),
    ];
    for (headers, code) in attempts {
        for path in [
            "/update-user",
            "/sign-out",
            "/revoke-sessions",
            "/change-password",
        ] {
            let body = json!({ "name": "Pwned", "currentPassword": PASSWORD, "newPassword": "pwned-password-1" });
            let res = post_as(&mut app, path, headers, body).await;
            assert_eq!(
                res.status,
                StatusCode::FORBIDDEN,
                "{path} {headers:?}: {}",
                res.text()
            );
            assert_eq!(res.json()["code"], *code, "{path} {headers:?}");
        }
    }
    app.set_default_header("origin", BASE_URL);
    let session = app.session().await;
    assert_eq!(
        session["user"]["name"], "Test User",
        "nothing changed: {session}"
    );
    // The real origin, a trusted wildcard origin, and a hidden same-origin Origin pass.
    for headers in [
        vec![("origin", BASE_URL)],
        vec![("origin", "https://shop.partner.test")],
        vec![("referer", "http://localhost:3000/settings")],
        vec![("origin", "null"), ("sec-fetch-site", "same-origin")],
    ] {
        app.default_headers.remove(header::ORIGIN);
        let res = post_as(
            &mut app,
            "/update-user",
            &headers,
            json!({ "name": "Legit" }),
        )
        .await;
        assert_eq!(res.status, StatusCode::OK, "{headers:?}: {}", res.text());
    }
}

#[tokio::test]
async fn login_csrf_is_refused_but_non_browser_clients_sign_in() {
    let app = victim().await;
    let mut attacker = app.new_client();
    attacker.default_headers.clear();
    let creds = json!({ "email": "victim@example.com", "password": PASSWORD });
    let refused: &[(&[(&str, &str)], &str)] = &[
        (
            &[
                ("sec-fetch-site", "cross-site"),
                ("sec-fetch-mode", "navigate"),
                ("sec-fetch-dest", "document"),
            ],
            "CROSS_SITE_NAVIGATION_LOGIN_BLOCKED",
        ),
        (&[("origin", EVIL)], "INVALID_ORIGIN"),
        (&[("sec-fetch-mode", "cors")], "MISSING_OR_NULL_ORIGIN"),
        (
            &[
                ("sec-fetch-site", "cross-site"),
                ("sec-fetch-mode", "cors"),
                ("origin", EVIL),
            ],
            "INVALID_ORIGIN",
        ),
        (
            &[("referer", "https://evil.example.com/login")],
            "INVALID_ORIGIN",
        ),
    ];
    for path in ["/sign-in/email", "/sign-up/email"] {
        for (headers, code) in refused {
            let mut body = creds.clone();
            body["name"] = json!("X");
            let res = post_as(&mut attacker, path, headers, body).await;
            assert_eq!(
                res.status,
                StatusCode::FORBIDDEN,
                "{path} {headers:?}: {}",
                res.text()
            );
            assert_eq!(res.json()["code"], *code, "{path} {headers:?}");
            assert!(res.set_cookie("better-auth.session_token").is_none());
        }
    }
    // curl, a server or a mobile app: no cookie, no Origin, no Sec-Fetch-*.
    let res = post_as(&mut attacker, "/sign-in/email", &[], creds.clone()).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    // A same-site browser sign-in.
    let res = post_as(
        &mut app.new_client(),
        "/sign-in/email",
        &[
            ("sec-fetch-site", "same-origin"),
            ("sec-fetch-mode", "cors"),
        ],
        creds,
    )
    .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
}

#[tokio::test]
async fn redirect_targets_cannot_leave_the_site() {
    let mut app = victim().await;
    let escapes = [
        "https://evil.example.com/cb",
        "//evil.example.com/cb",
        "/\\evil.example.com",
        "\\\\evil.example.com",
        "https:\\\\evil.example.com",
        "https:evil.example.com",
        "evil.example.com",
        "/%2F%2Fevil.example.com",
        "/%5C%5Cevil.example.com",
        "http://localhost:3000@evil.example.com/",
        "http://evil.example.com#@localhost:3000",
        "http://localhost:3000.evil.example.com/",
        "javascript:alert(document.cookie)",
        "data:text/html,<script>alert(1)</script>",
        "/ok\r\nSet-Cookie: a=b",
    ];
    for (field, code) in [
        ("callbackURL", "INVALID_CALLBACK_URL"),
        ("redirectTo", "INVALID_REDIRECT_URL"),
        ("errorCallbackURL", "INVALID_ERROR_CALLBACK_URL"),
        ("newUserCallbackURL", "INVALID_NEW_USER_CALLBACK_URL"),
    ] {
        for target in escapes {
            let mut body = json!({ "email": "victim@example.com", "password": PASSWORD });
            body[field] = json!(target);
            let res = app.post("/sign-in/email", body).await;
            assert_eq!(
                res.status,
                StatusCode::FORBIDDEN,
                "{field}={target:?}: {}",
                res.text()
            );
            assert_eq!(res.json()["code"], code, "{field}={target:?}");
            assert!(res.header("location").is_none());
        }
    }
    // In the query too, on any endpoint.
    let res = app
        .get(&format!(
            "/get-session?callbackURL={}",
            portcullis::cookies::encode_uri_component(EVIL)
        ))
        .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    // A non-string target is a 400, not a crash (Better Auth's words, without a code).
    let res = app
        .post(
            "/sign-in/email",
            json!({ "email": "victim@example.com", "password": PASSWORD, "callbackURL": 42 }),
        )
        .await;
    assert_eq!(
        (res.status, res.json()),
        (
            StatusCode::BAD_REQUEST,
            json!({ "message": "Invalid callbackURL: expected a string" })
        )
    );
    // What stays on the site passes, and sign-in echoes it.
    for ok in [
        "/dashboard",
        "/a/b?c=d#e",
        "http://localhost:3000/welcome",
        "https://shop.partner.test/thanks",
    ] {
        let res = app
            .post(
                "/sign-in/email",
                json!({ "email": "victim@example.com", "password": PASSWORD, "callbackURL": ok }),
            )
            .await;
        assert_eq!(res.status, StatusCode::OK, "{ok}: {}", res.text());
        assert_eq!(res.json()["url"], ok);
        assert_eq!(res.header("location"), Some(ok));
    }
}

#[tokio::test]
async fn server_side_calls_are_not_origin_checked_but_the_checks_can_be_configured_off() {
    let app = victim().await;
    let cookie = app.jar.header_value().unwrap();
    let mut headers = http::HeaderMap::new();
    headers.insert(header::COOKIE, cookie.clone());
    // auth.api() runs without the HTTP-only middleware, as in Better Auth.
    app.auth
        .api()
        .update_user(&headers, json!({ "name": "From the server" }))
        .await
        .unwrap();

    let mut open = TestApp::build(|b| b.options(|o| o.security.disable_csrf_check = true)).await;
    open.signed_up("open@example.com").await;
    open.default_headers.clear();
    let res = post_as(
        &mut open,
        "/update-user",
        &[("origin", EVIL)],
        json!({ "name": "x" }),
    )
    .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
}

#[tokio::test]
async fn a_bad_trusted_origin_in_the_configuration_is_refused_at_start() {
    let err = portcullis::Auth::builder()
        .secret(portcullis_tests::SECRET)
        .options(|o| o.trusted_origins.push("javascript:".into()))
        .build()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("javascript:"), "{err}");
}

#[tokio::test]
async fn the_error_page_escapes_what_it_shows_and_forbids_scripts() {
    let mut app = TestApp::new().await;
    let res = app
        .get("/error?error=%3Cscript%3Ealert(1)%3C%2Fscript%3E&error_description=%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E")
        .await;
    assert_eq!(res.status, StatusCode::OK);
    let html = res.text();
    assert!(
        !html.contains("<script>") && !html.contains("<img"),
        "{html}"
    );
    assert!(
        html.contains("UNKNOWN"),
        "a code outside [A-Za-z0-9_'-] is shown as UNKNOWN"
    );
    assert!(html.contains("&lt;img src=x onerror=alert(1)&gt;"));
    let csp = res.header("content-security-policy").unwrap();
    assert!(
        csp.contains("default-src 'none'") && !csp.contains("script-src"),
        "{csp}"
    );
    let ok = app.get("/error?error=state_mismatch").await;
    assert!(ok.text().contains("state_mismatch"));
}

#[tokio::test]
async fn cookies_shared_across_subdomains_work_from_a_sibling_app() {
    // auth.example.com serves auth; app.example.com is the front end.
    let mut auth_site = TestApp::build(|b| {
        b.base_url("https://auth.example.com").options(|o| {
            o.cookies.domain = Some("example.com".into());
            o.trusted_origins.push("https://*.example.com".into());
        })
    })
    .await;
    let res = auth_site.sign_up("sub@example.com", PASSWORD).await;
    let set = res
        .set_cookie("__Secure-better-auth.session_token")
        .unwrap();
    assert!(
        set.contains("; Domain=example.com") && set.contains("; Secure"),
        "{set}"
    );

    // The browser sends the cookie to the auth server from the sibling app's page.
    let mut from_app = auth_site.new_client();
    from_app.jar = auth_site.jar.clone();
    from_app.set_default_header("origin", "https://app.example.com");
    let res = from_app
        .post("/update-user", json!({ "name": "From the app" }))
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    assert_eq!(from_app.session().await["user"]["name"], "From the app");
    // A look-alike domain is not a sibling.
    from_app.set_default_header("origin", "https://app.example.com.evil.net");
    let res = from_app.post("/update-user", json!({ "name": "x" })).await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
}
