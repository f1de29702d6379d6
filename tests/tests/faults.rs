//! Database faults: unreachable at start, lost mid-request, back again. The connection is cut
//! by a TCP proxy the test owns (the database server itself keeps running for other tests).

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use http::{header, Method, Request, StatusCode};
use http_body_util::{BodyExt as _, Full};
use portcullis::Auth;
use portcullis_email_password::EmailPassword;
use portcullis_tests::db::{Backend, TestDb};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

const SECRET: &str = "fault-test-secret-0123456789abcdef0123";

/// Forwards `listen` to `target` until told to stop; stopping also cuts open connections.
struct Proxy {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    async fn start(listen: SocketAddr, target: SocketAddr) -> Self {
        let listener = TcpListener::bind(listen).await.unwrap();
        let (stop, mut stopped) = watch::channel(false);
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            loop {
                tokio::select! {
                    _ = stopped.changed() => break,
                    Ok((mut inbound, _)) = listener.accept() => {
                        conns.spawn(async move {
                            if let Ok(mut outbound) = TcpStream::connect(target).await {
                                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                            }
                        });
                    }
                }
            }
            conns.abort_all();
        });
        Self { stop, task }
    }

    async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

fn target_of(url: &str, default_port: u16) -> SocketAddr {
    let host = portcullis::storage::url_host(url);
    let host = if host.contains(':') {
        host
    } else {
        format!("{host}:{default_port}")
    };
    host.replace("localhost", "127.0.0.1").parse().unwrap()
}

async fn send(
    auth: &Auth,
    method: Method,
    path: &str,
    cookie: Option<&str>,
    body: Option<&str>,
) -> (StatusCode, String, Option<String>) {
    let mut req = Request::builder()
        .method(method)
        .uri(format!("/api/auth{path}"));
    if let Some(c) = cookie {
        req = req.header(header::COOKIE, c);
    }
    if body.is_some() {
        req = req.header(header::CONTENT_TYPE, "application/json");
    }
    let req = req
        .body(Full::new(bytes::Bytes::from(body.unwrap_or("").to_owned())))
        .unwrap();
    let res = auth.handle(req).await;
    let status = res.status();
    let set_cookie = res
        .headers()
        .get(header::SET_COOKIE)
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned());
    let text =
        String::from_utf8(res.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
    (status, text, set_cookie)
}

#[tokio::test]
async fn an_unreachable_database_at_start_names_its_host_and_hides_the_password() {
    let closed = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    for scheme in ["postgres", "mysql"] {
        let url = format!("{scheme}://admin:hunter2-secret@{closed}/db");
        let err = Auth::builder()
            .secret(SECRET)
            .database(&url)
            .build()
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains(&closed.to_string()), "{err}");
        assert!(!err.contains("hunter2"), "the password leaked: {err}");
    }
    let err = Auth::builder()
        .secret(SECRET)
        .database("oracle://x/y")
        .build()
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("sqlite") && err.contains("postgres") && err.contains("mysql"),
        "{err}"
    );
}

#[tokio::test]
async fn a_lost_connection_fails_fast_with_a_code_and_the_pool_recovers() {
    for backend in [Backend::Postgres, Backend::Mysql] {
        let Some(db) = TestDb::new(backend).await else {
            continue;
        };
        let target = target_of(
            db.url(),
            if backend == Backend::Postgres {
                5432
            } else {
                3306
            },
        );
        let listen: SocketAddr = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap()
            .local_addr()
            .unwrap();
        let proxy = Proxy::start(listen, target).await;
        let via_proxy = db.url().replacen(
            &portcullis::storage::url_host(db.url()),
            &listen.to_string(),
            1,
        );
        let auth = Auth::builder()
            .secret(SECRET)
            .database(&via_proxy)
            .plugin(EmailPassword::default())
            .options(|o| o.rate_limit.enabled = false)
            .build()
            .await
            .unwrap();
        auth.migrate().await.unwrap();
        let (status, body, cookie) = send(
            &auth,
            Method::POST,
            "/sign-up/email",
            None,
            Some(r#"{"name":"F","email":"fault@example.com","password":"password-123"}"#),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{backend:?}: {body}");
        let cookie = cookie.unwrap();

        proxy.stop().await;
        let started = Instant::now();
        let (status, body, _) = send(&auth, Method::GET, "/get-session", Some(&cookie), None).await;
        assert_eq!(
            status,
            StatusCode::INTERNAL_SERVER_ERROR,
            "{backend:?}: {body}"
        );
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert!(
            json["code"].is_string(),
            "{backend:?}: a 500 still has a code: {body}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "{backend:?}: answered, not hung"
        );

        let proxy = Proxy::start(listen, target).await;
        let mut recovered = false;
        for _ in 0..20 {
            let (status, body, _) =
                send(&auth, Method::GET, "/get-session", Some(&cookie), None).await;
            if status == StatusCode::OK && body.contains("fault@example.com") {
                recovered = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        assert!(
            recovered,
            "{backend:?}: the pool reconnects once the database is back"
        );
        proxy.stop().await;
    }
}
