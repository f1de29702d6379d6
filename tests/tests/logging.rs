//! Secrets, tokens and passwords never reach the logs, whatever the log level.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use std::io::Write;
use std::sync::{Arc, Mutex};

use portcullis_tests::{TestApp, SECRET};
use serde_json::json;

/// A log sink: everything the subscriber writes, kept in memory.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test]
async fn no_secret_token_or_password_is_logged_even_at_trace_level() {
    let logs = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(logs.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let first_password = "first-Password-4711";
    let second_password = "second-Password-0815";
    let mut app = TestApp::new().await;
    let signed_up = app.sign_up("logged@example.com", first_password).await;
    let token = signed_up.json()["token"].as_str().unwrap().to_owned();
    let cookie = app.jar.header_value().unwrap().to_str().unwrap().to_owned();
    app.sign_in("logged@example.com", "a-wrong-Password-99")
        .await;
    app.sign_in("logged@example.com", first_password).await;
    app.session().await;
    app.post(
        "/change-password",
        json!({ "currentPassword": first_password, "newPassword": second_password, "revokeOtherSessions": true }),
    )
    .await;
    app.post_raw(
        "/sign-in/email",
        Some("application/json"),
        format!("{{\"email\":\"x@y.z\",\"password\":\"{second_password}\""),
    )
    .await;
    app.post("/sign-out", json!({})).await;

    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(
        !text.is_empty(),
        "the capture works: the engine and sqlx log at trace level"
    );
    for secret in [
        SECRET,
        first_password,
        second_password,
        "a-wrong-Password-99",
        &token,
        &cookie,
    ] {
        assert!(!text.contains(secret), "`{secret}` reached the logs");
    }
    let signature = cookie.rsplit('.').next().unwrap();
    assert!(
        !text.contains(signature),
        "a cookie signature reached the logs"
    );
}
