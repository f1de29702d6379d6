//! Whole requests through `Auth::handle`: the router (dot segments, encodings, unknown
//! paths), the body reader (sizes, content types, JSON, forms, NUL), cookie parsing and the
//! signed-cookie check, the origin and CSRF checks, redirect validation of `callbackURL` and
//! friends, and every endpoint's input validation. Any answer is fine; a panic is a bug, and
//! so is a 500 (nothing here can make the database fail).

#![no_main]

use std::sync::LazyLock;

use arbitrary::Arbitrary;
use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method, Request};
use http_body_util::Full;
use libfuzzer_sys::fuzz_target;
use portcullis::Auth;

/// Paths a fuzzer would take long to spell: every endpoint, and a few near misses.
const PATHS: &[&str] = &[
    "/api/auth/sign-up/email",
    "/api/auth/sign-in/email",
    "/api/auth/sign-out",
    "/api/auth/get-session",
    "/api/auth/list-sessions",
    "/api/auth/revoke-session",
    "/api/auth/revoke-sessions",
    "/api/auth/update-user",
    "/api/auth/change-password",
    "/api/auth/change-email",
    "/api/auth/delete-user",
    "/api/auth/delete-user/callback",
    "/api/auth/request-password-reset",
    "/api/auth/reset-password",
    "/api/auth/reset-password/",
    "/api/auth/send-verification-email",
    "/api/auth/verify-email",
    "/api/auth/list-accounts",
    "/api/auth/ok",
    "/api/auth/error",
    "/api/auth/./sign-in/%2e%2e/get-session",
    "/api/auth//sign-in//email/",
    "/other",
];

const HEADERS: &[&str] = &[
    "content-type",
    "content-length",
    "cookie",
    "origin",
    "referer",
    "sec-fetch-site",
    "sec-fetch-mode",
    "authorization",
    "x-forwarded-for",
    "user-agent",
];

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    method: u8,
    path: u8,
    suffix: &'a str,
    query: &'a str,
    headers: Vec<(u8, &'a str)>,
    body: &'a [u8],
}

struct Engine {
    runtime: tokio::runtime::Runtime,
    auth: Auth,
}

static ENGINE: LazyLock<Engine> = LazyLock::new(|| {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let auth = runtime.block_on(async {
        let auth = Auth::builder()
            .secret("the-fuzzing-secret-0123456789abcdef0123456789")
            .base_url("http://localhost:3000")
            .database("sqlite::memory:")
            .options(|o| {
                o.rate_limit.enabled = false;
                o.rate_limit.account.enabled = false;
                o.session.cookie_cache.enabled = true;
                o.trusted_origins = vec!["https://*.example.com".into(), "myapp://".into()];
                o.delete_user.enabled = true;
                o.change_email.enabled = true;
            })
            .plugin(portcullis_email_password::EmailPassword::default().min_password_length(1))
            .build()
            .await
            .expect("the engine");
        auth.migrate().await.expect("the schema");
        auth
    });
    Engine { runtime, auth }
});

const METHODS: [Method; 5] = [
    Method::GET,
    Method::POST,
    Method::HEAD,
    Method::OPTIONS,
    Method::DELETE,
];

fuzz_target!(|input: Input<'_>| {
    let engine = &*ENGINE;
    let mut uri = format!(
        "{}{}",
        PATHS[usize::from(input.path) % PATHS.len()],
        input.suffix
    );
    if !input.query.is_empty() {
        uri.push('?');
        uri.push_str(input.query);
    }
    let mut builder = Request::builder()
        .method(METHODS[usize::from(input.method) % METHODS.len()].clone())
        .uri(uri);
    for (name, value) in &input.headers {
        let name = HeaderName::from_static(HEADERS[usize::from(*name) % HEADERS.len()]);
        if let Ok(value) = HeaderValue::from_str(value) {
            builder = builder.header(name, value);
        }
    }
    // A URI or header the http crate refuses never reaches a server.
    let Ok(req) = builder.body(Full::new(Bytes::copy_from_slice(input.body))) else {
        return;
    };
    let res = engine.runtime.block_on(engine.auth.handle(req));
    assert_ne!(
        res.status(),
        http::StatusCode::INTERNAL_SERVER_ERROR,
        "{input:?}"
    );
});
