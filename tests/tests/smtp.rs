//! Real mail: the SMTP sender (lettre) delivers to a local SMTP server (Python's aiosmtpd)
//! started by each test, and the tests follow the links in what arrived.
//!
//! Skipped with a note when aiosmtpd is missing; `REQUIRE_SMTP=1` makes that a failure.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use http::StatusCode;
use portcullis::email::{Address, EmailSender, Message, SmtpSender, RESET_PASSWORD};
use portcullis::Options;
use portcullis_email_password::EmailPassword;
use portcullis_tests::mail::{api_path, link_in, query_param, SinkTls, SmtpSink};
use portcullis_tests::{TestApp, PASSWORD};
use serde_json::{json, Value};

const FROM: &str = "Portcullis Tests <auth@example.com>";

async fn app_with(
    sink: &SmtpSink,
    plugin: EmailPassword,
    configure: impl FnOnce(&mut Options) + Send + 'static,
) -> TestApp {
    let sender = SmtpSender::new(&sink.config(FROM)).expect("an SMTP sender");
    TestApp::with_email_password(plugin, move |b| {
        b.email_sender(sender).options(|o| {
            o.email.app_name = "Test App".into();
            configure(o);
        })
    })
    .await
}

fn header<'a>(message: &'a Value, name: &str) -> Vec<&'a str> {
    message["headers"]
        .as_array()
        .expect("headers")
        .iter()
        .filter(|h| h[0].as_str().is_some_and(|n| n.eq_ignore_ascii_case(name)))
        .filter_map(|h| h[1].as_str())
        .collect()
}

/// Checks what every message must be: from the configured sender, to exactly one recipient,
/// with a text and an HTML part.
fn assert_single_recipient(message: &Value, to: &str) {
    assert_eq!(message["rcpt_tos"], json!([to]), "{message}");
    assert_eq!(message["mail_from"], "auth@example.com");
    assert_eq!(header(message, "To"), [to]);
    assert!(header(message, "Cc").is_empty() && header(message, "Bcc").is_empty());
    assert!(message["text"].is_string() && message["html"].is_string());
}

#[tokio::test]
async fn sign_up_mails_a_link_that_verifies_and_signs_in() {
    let Some(sink) = SmtpSink::start() else {
        return;
    };
    let mut app = app_with(&sink, EmailPassword::default(), |o| {
        o.email_verification.send_on_sign_up = Some(true);
        o.email_verification.auto_sign_in_after_verification = true;
    })
    .await;

    let res = app
        .post(
            "/sign-up/email",
            json!({ "name": "Ada <b>&</b> \"Lovelace\"", "email": "ada@example.com",
                    "password": PASSWORD, "callbackURL": "/welcome" }),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());

    let received = sink.wait_for(1).await;
    let m = &received[0];
    assert_single_recipient(m, "ada@example.com");
    assert_eq!(m["subject"], "Verify your email address for Test App");
    let text = m["text"].as_str().unwrap();
    let html = m["html"].as_str().unwrap();
    assert!(text.contains("Hello Ada <b>&</b> \"Lovelace\","), "{text}");
    assert!(
        html.contains("Hello Ada &lt;b&gt;&amp;&lt;/b&gt; &quot;Lovelace&quot;,"),
        "{html}"
    );
    let link = link_in(text);
    assert_eq!(
        query_param(&link, "callbackURL").as_deref(),
        Some("/welcome")
    );
    assert!(html.contains(&link.replace('&', "&amp;")));

    let mut browser = app.new_client();
    let res = browser.get(&api_path(&link)).await;
    assert_eq!(res.status, StatusCode::FOUND);
    assert_eq!(res.header("location"), Some("/welcome"));
    let session = browser.session().await;
    assert_eq!(session["user"]["email"], "ada@example.com");
    assert_eq!(session["user"]["emailVerified"], true);
}

#[tokio::test]
async fn a_reset_link_from_the_mail_resets_the_password() {
    let Some(sink) = SmtpSink::start() else {
        return;
    };
    let mut app = app_with(&sink, EmailPassword::default(), |_| {}).await;
    app.signed_up("grace@example.com").await;
    let mut browser = app.new_client();

    let res = browser
        .post(
            "/request-password-reset",
            json!({ "email": "grace@example.com", "redirectTo": "/reset-done" }),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK);

    let received = sink.wait_for(1).await;
    assert_single_recipient(&received[0], "grace@example.com");
    assert_eq!(received[0]["subject"], "Reset your Test App password");
    let link = link_in(received[0]["text"].as_str().unwrap());
    let res = browser.get(&api_path(&link)).await;
    assert_eq!(res.status, StatusCode::FOUND);
    let token = query_param(res.header("location").unwrap(), "token").unwrap();
    let res = browser
        .post(
            "/reset-password",
            json!({ "newPassword": "grace-new-password", "token": token }),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    let again = browser
        .post(
            "/reset-password",
            json!({ "newPassword": "grace-newer-password", "token": token }),
        )
        .await;
    assert_eq!(again.code().as_deref(), Some("INVALID_TOKEN"));
    assert_eq!(
        browser
            .sign_in("grace@example.com", "grace-new-password")
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(sink.messages().len(), 1);
}

#[tokio::test]
async fn a_name_with_line_breaks_adds_no_header_and_no_recipient() {
    let Some(sink) = SmtpSink::start() else {
        return;
    };
    let mut app = app_with(&sink, EmailPassword::default(), |o| {
        o.email_verification.send_on_sign_up = Some(true);
        o.email.app_name = "App\r\nBcc: evil@example.com".into();
    })
    .await;

    let res = app
        .post(
            "/sign-up/email",
            json!({ "name": "Eve\r\nBcc: evil@example.com\r\n\r\nfake body",
                    "email": "eve@example.com", "password": PASSWORD }),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK);
    app.post(
        "/request-password-reset",
        json!({ "email": "eve@example.com" }),
    )
    .await;

    let received = sink.wait_for(2).await;
    for m in &received {
        assert_single_recipient(m, "eve@example.com");
        assert!(!m["subject"].as_str().unwrap().contains('\n'));
        assert!(header(m, "Subject")
            .iter()
            .all(|s| !s.contains('\r') && !s.contains('\n')));
    }
    // The subject's control characters are gone; the name stays in the body, as text. (Both
    // mails go out in the background, in either order.)
    assert!(
        received
            .iter()
            .any(|m| m["subject"] == "Verify your email address for AppBcc: evil@example.com"),
        "{received:?}"
    );
}

#[tokio::test]
async fn refused_addresses_never_reach_the_mail_server() {
    let Some(sink) = SmtpSink::start() else {
        return;
    };
    let mut app = app_with(&sink, EmailPassword::default(), |_| {}).await;
    app.signed_up("target@example.com").await;
    let mut anonymous = app.new_client();

    for email in [
        "target@example.com\r\nBcc: evil@example.com",
        "target@example.com\r\n.\r\nMAIL FROM:<x@example.com>",
        "target@example.com,evil@example.com",
        "Target <target@example.com>",
        "target@example.com <evil@example.com>",
    ] {
        for path in ["/request-password-reset", "/send-verification-email"] {
            let res = anonymous.post(path, json!({ "email": email })).await;
            assert_eq!(res.status, StatusCode::BAD_REQUEST, "{path} {email:?}");
        }
        let res = app
            .post(
                "/sign-up/email",
                json!({ "name": "x", "email": email, "password": PASSWORD }),
            )
            .await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST, "sign-up {email:?}");
    }
    // A real request afterwards is the first and only message.
    anonymous
        .post(
            "/request-password-reset",
            json!({ "email": "target@example.com" }),
        )
        .await;
    let received = sink.wait_for(1).await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(sink.messages().len(), 1, "{received:?}");
    assert_single_recipient(&received[0], "target@example.com");
}

#[tokio::test]
async fn the_sender_delivers_to_exactly_the_message_recipient() {
    let Some(sink) = SmtpSink::start() else {
        return;
    };
    let sender = SmtpSender::new(&sink.config(FROM)).unwrap();
    let to = Address::parse("one@example.com").unwrap();
    let message = Message::new(
        RESET_PASSWORD,
        to,
        "Über subject ✓",
        "plain ünïcode body",
        "<p>html body</p>",
    )
    .with_link("https://example.com/x?token=T", "T");

    sender.send(&message).await.expect("delivered");

    let received = sink.wait_for(1).await;
    assert_single_recipient(&received[0], "one@example.com");
    assert_eq!(received[0]["subject"], "Über subject ✓");
    assert_eq!(
        received[0]["text"].as_str().unwrap().trim_end(),
        "plain ünïcode body"
    );
    assert_eq!(
        received[0]["html"].as_str().unwrap().trim_end(),
        "<p>html body</p>"
    );
    assert_eq!(header(&received[0], "From"), [FROM]);
}

#[tokio::test]
async fn an_unreachable_server_is_an_error_not_a_hang() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap();
    let mut config = portcullis::email::SmtpConfig::new("127.0.0.1", FROM);
    config.port = Some(port);
    config.security = portcullis::email::SmtpSecurity::None;
    config.timeout = std::time::Duration::from_secs(5);
    let sender = SmtpSender::new(&config).unwrap();
    let message = Message::new(
        RESET_PASSWORD,
        Address::parse("one@example.com").unwrap(),
        "s",
        "t",
        "h",
    );

    let err = sender.send(&message).await.unwrap_err();

    assert!(
        matches!(err, portcullis::email::EmailError::Transport(_)),
        "{err}"
    );
}

fn probe() -> Message {
    Message::new(
        RESET_PASSWORD,
        Address::parse("tls@example.com").unwrap(),
        "over TLS",
        "text",
        "<p>html</p>",
    )
}

#[tokio::test]
async fn starttls_with_authentication_delivers_and_checks_the_password() {
    let Some(sink) = SmtpSink::start_with(SinkTls::StartTls, Some(("mailer", "s3cret-pw"))) else {
        return;
    };
    let mut config = sink.config(FROM);
    config.username = Some("mailer".into());
    config.password = Some("s3cret-pw".into());

    SmtpSender::new(&config)
        .unwrap()
        .send(&probe())
        .await
        .expect("delivered over STARTTLS");

    let received = sink.wait_for(1).await;
    assert_single_recipient(&received[0], "tls@example.com");
    assert_eq!(received[0]["login"], "mailer");

    config.password = Some("wrong-password".into());
    let err = SmtpSender::new(&config).unwrap().send(&probe()).await;
    assert!(err.is_err());
    assert_eq!(sink.messages().len(), 1);
}

#[tokio::test]
async fn implicit_tls_delivers() {
    let Some(sink) = SmtpSink::start_with(SinkTls::Implicit, None) else {
        return;
    };

    SmtpSender::new(&sink.config(FROM))
        .unwrap()
        .send(&probe())
        .await
        .expect("delivered over implicit TLS");

    assert_single_recipient(&sink.wait_for(1).await[0], "tls@example.com");
}

#[tokio::test]
async fn an_untrusted_certificate_or_a_missing_starttls_is_refused() {
    let Some(tls) = SmtpSink::start_with(SinkTls::StartTls, None) else {
        return;
    };
    let mut untrusted = tls.config(FROM);
    untrusted.root_certificates_pem.clear();
    let err = SmtpSender::new(&untrusted).unwrap().send(&probe()).await;
    assert!(
        err.is_err(),
        "a self-signed certificate must not be accepted"
    );

    // A server that offers no STARTTLS gets nothing in clear from a STARTTLS sender.
    let Some(plain) = SmtpSink::start() else {
        return;
    };
    let mut config = plain.config(FROM);
    config.security = portcullis::email::SmtpSecurity::StartTls;
    let err = SmtpSender::new(&config).unwrap().send(&probe()).await;
    assert!(err.is_err(), "no downgrade to plain text");
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert!(plain.messages().is_empty() && tls.messages().is_empty());
}
