//! Compromised passwords refused at sign-up, change and reset: from the shipped list, from an
//! application's list file, and from a range API that answers as Have I Been Pwned's does
//! (a local server: the real one is not reachable from tests), which only ever sees a
//! five-character prefix of the password's SHA-1.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::Full;
use portcullis::testing::{builder, MailSink, TestClient};
use portcullis::Auth;
use portcullis_compromised_password::{CompromisedPassword, CompromisedPasswordOptions};
use portcullis_email_password::EmailPassword;
use serde_json::{json, Value};
use sha1::{Digest, Sha1};

const GOOD: &str = "correct-horse-battery";
const LEAKED: &str = "a-very-leaked-password-7";
const PADDING_ONLY: &str = "padded-but-never-seen-9";

async fn engine(plugin: CompromisedPassword) -> (Auth, MailSink) {
    let mail = MailSink::new();
    let auth = builder()
        .plugin(EmailPassword::default())
        .plugin(plugin)
        .email_sender(mail.clone())
        .build()
        .await
        .unwrap();
    auth.migrate().await.unwrap();
    (auth, mail)
}

async fn sign_up(auth: &Auth, email: &str, password: &str) -> portcullis::testing::TestResponse {
    TestClient::new(auth)
        .post(
            "/sign-up/email",
            json!({ "name": "Pat", "email": email, "password": password }),
        )
        .await
}

fn assert_compromised(res: &portcullis::testing::TestResponse) {
    assert_eq!(res.status, StatusCode::BAD_REQUEST, "{}", res.text());
    assert_eq!(
        res.json(),
        json!({
            "message": "The password you entered has been compromised. Please choose a different password.",
            "code": "PASSWORD_COMPROMISED"
        })
    );
}

fn sha1_upper(s: &str) -> String {
    hex::encode_upper(Sha1::digest(s.as_bytes()))
}

/// What the range API server saw: each request's path and `Add-Padding` header.
type Seen = Arc<Mutex<Vec<(String, Option<String>)>>>;

/// A server answering `GET /range/<prefix>` as Have I Been Pwned does: `SUFFIX:COUNT` lines,
/// `LEAKED` seen 42 times, `PADDING_ONLY` present with count 0 (as padding entries are), and
/// filler. Returns its base URL.
async fn range_api(seen: Seen) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let handler = move |req: http::Request<hyper::body::Incoming>| {
        let seen = seen.clone();
        async move {
            let path = req.uri().path().to_owned();
            let padding = req
                .headers()
                .get("add-padding")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            seen.lock().unwrap().push((path.clone(), padding));
            let prefix = path.trim_start_matches("/range/");
            let mut lines = vec!["0018A45C4D1DEF81644B54AB7F969B88D65:1".to_owned()];
            for (password, count) in [(LEAKED, 42), (PADDING_ONLY, 0)] {
                let hash = sha1_upper(password);
                if hash.starts_with(prefix) {
                    lines.push(format!("{}:{count}", &hash[5..]));
                }
            }
            lines.push("FFFFF0000000000000000000000000000AB:0".to_owned());
            Response::new(Full::new(Bytes::from(lines.join("\r\n"))))
        }
    };
    tokio::spawn(portcullis::adapters::hyper::serve(
        listener,
        handler,
        std::future::pending(),
    ));
    format!("http://127.0.0.1:{port}/range/")
}

#[tokio::test]
async fn common_passwords_are_refused_at_sign_up_change_and_reset() {
    let (auth, mail) = engine(CompromisedPassword::default()).await;
    for common in ["football", "Football", "QWERTYUIOP"] {
        assert_compromised(&sign_up(&auth, "pat@example.com", common).await);
    }
    assert!(auth
        .store()
        .user_by_email("pat@example.com")
        .await
        .unwrap()
        .is_none());
    let res = sign_up(&auth, "pat@example.com", GOOD).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());

    let mut pat = TestClient::new(&auth);
    pat.post(
        "/sign-in/email",
        json!({ "email": "pat@example.com", "password": GOOD }),
    )
    .await;
    let res = pat
        .post(
            "/change-password",
            json!({ "currentPassword": GOOD, "newPassword": "trustno1" }),
        )
        .await;
    assert_compromised(&res);

    pat.post(
        "/request-password-reset",
        json!({ "email": "pat@example.com" }),
    )
    .await;
    let token = mail
        .wait_for(portcullis::email::RESET_PASSWORD, "pat@example.com", 1)
        .await
        .token
        .unwrap();
    let reset = |password: &str| json!({ "newPassword": password, "token": token.clone() });
    assert_compromised(&pat.post("/reset-password", reset("superman")).await);
    // The refusal used nothing up: the link still sets a good password.
    let res = pat
        .post("/reset-password", reset("a-brand-new-password-1"))
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
}

#[tokio::test]
async fn an_applications_own_list_is_refused_too() {
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("banned.txt");
    std::fs::write(&list, "our-company-2026\n\nAcme-Rocks-Forever\n").unwrap();
    let (auth, _) = engine(CompromisedPassword::default().list_file(&list)).await;
    assert_compromised(&sign_up(&auth, "a@example.com", "Our-Company-2026").await);
    assert_compromised(&sign_up(&auth, "a@example.com", "acme-rocks-forever").await);
    let res = sign_up(&auth, "a@example.com", "our-company-2027").await;
    assert_eq!(res.status, StatusCode::OK);

    // A list that cannot be read stops the engine from starting, with the reason.
    let err = builder()
        .plugin(EmailPassword::default())
        .plugin(CompromisedPassword::default().list_file(dir.path().join("missing.txt")))
        .build()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("missing.txt"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_range_api_sees_only_a_prefix_and_its_counts_decide() {
    let seen: Seen = Arc::default();
    let base = range_api(seen.clone()).await;
    let (auth, _) = engine(CompromisedPassword::default().range_api(&base)).await;

    assert_compromised(&sign_up(&auth, "leak@example.com", LEAKED).await);
    let res = sign_up(&auth, "pad@example.com", PADDING_ONLY).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    let res = sign_up(&auth, "good@example.com", GOOD).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());

    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 3);
    for ((path, padding), password) in seen.iter().zip([LEAKED, PADDING_ONLY, GOOD]) {
        assert_eq!(path, &format!("/range/{}", &sha1_upper(password)[..5]));
        assert_eq!(padding.as_deref(), Some("true"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_range_api_refuses_unless_told_to_fail_open() {
    // A port nobody listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}/range/", closed.local_addr().unwrap());
    drop(closed);

    let (auth, _) = engine(CompromisedPassword::default().range_api(&base)).await;
    let res = sign_up(&auth, "down@example.com", GOOD).await;
    assert_eq!(res.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        res.json(),
        json!({ "message": "Failed to check password. Please try again later." })
    );
    assert!(auth
        .store()
        .user_by_email("down@example.com")
        .await
        .unwrap()
        .is_none());

    let (auth, _) = engine(
        CompromisedPassword::default()
            .range_api(&base)
            .fail_open(true),
    )
    .await;
    assert_eq!(
        sign_up(&auth, "down@example.com", GOOD).await.status,
        StatusCode::OK
    );
    // The shipped list still applies.
    assert_compromised(&sign_up(&auth, "other@example.com", "football").await);
}

#[tokio::test]
async fn one_word_in_the_plugin_list_enables_it_and_options_come_by_name() {
    let factory = portcullis::plugin::plugin_factories()
        .find(|f| f.name == "compromised-password")
        .expect("the plugin registers its factory");
    let plugin = (factory.build)(&Value::Null).unwrap();
    assert_eq!(plugin.id(), "compromised-password");
    let auth = builder()
        .plugin(EmailPassword::default())
        .plugin_arc(plugin)
        .build()
        .await
        .unwrap();
    auth.migrate().await.unwrap();
    assert_compromised(&sign_up(&auth, "one@example.com", "baseball").await);

    let unknown = (factory.build)(&json!({ "range": "x" }));
    assert!(unknown.is_err());
    let options: CompromisedPasswordOptions =
        serde_json::from_value(json!({ "common_list": false, "message": "Pick another" })).unwrap();
    let (auth, _) = engine(CompromisedPassword::new(options)).await;
    assert_eq!(
        sign_up(&auth, "two@example.com", "baseball").await.status,
        StatusCode::OK
    );
}

/// A look-alike spelling (fullwidth letters) is stored and compared as its NFKC form, so it
/// is the listed password it looks like.
#[tokio::test]
async fn look_alike_spellings_of_a_listed_password_are_refused() {
    let (auth, _) = engine(CompromisedPassword::default()).await;
    assert_compromised(&sign_up(&auth, "wide@example.com", "ｐａｓｓｗｏｒｄ１２３").await);
}

/// An answer that is not a range list (a captive portal's page, a redirect) is no answer:
/// the password is refused as when the API is down, not let through as never seen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_that_is_not_a_range_list_counts_as_no_answer() {
    for (status, body) in [
        (200, "<html><body>Sign in to the Wi-Fi</body></html>"),
        (200, ""),
        (302, ""),
    ] {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(portcullis::adapters::hyper::serve(
            listener,
            move |_req: http::Request<hyper::body::Incoming>| async move {
                let mut res = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
                *res.status_mut() = StatusCode::from_u16(status).unwrap();
                if status == 302 {
                    res.headers_mut().insert(
                        http::header::LOCATION,
                        http::HeaderValue::from_static("http://127.0.0.1:9/range/00000"),
                    );
                }
                res
            },
            std::future::pending(),
        ));
        let base = format!("http://127.0.0.1:{port}/range/");
        let (auth, _) = engine(CompromisedPassword::default().range_api(&base)).await;
        let res = sign_up(&auth, "junk@example.com", GOOD).await;
        assert_eq!(
            res.status,
            StatusCode::INTERNAL_SERVER_ERROR,
            "{status} {body:?}"
        );
    }
}
