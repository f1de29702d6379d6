//! Answers decided before the request body is read (413 on a declared length, 429, 404) reach
//! a client that is still uploading, over a real socket: the server drains what it did not
//! read instead of closing on it (which makes the kernel reset the connection, and the client
//! see the reset rather than the answer). The connection stays usable afterwards.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use portcullis::Auth;
use portcullis_tests::TestApp;

/// The engine behind the real hyper server on a free port; the port.
async fn serve(auth: Auth) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(portcullis::adapters::hyper::serve(
        listener,
        move |req| {
            let auth = auth.clone();
            async move { auth.handle(req).await }
        },
        std::future::pending(),
    ));
    port
}

/// One response read off `stream`: its status line and body.
fn read_response(stream: &mut TcpStream) -> std::io::Result<(String, String)> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&buf).into_owned();
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body)?;
    let status = head.lines().next().unwrap_or_default().to_owned();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

/// Sends `head` and a body of `len` bytes (chunked when `chunked`) the way a browser does,
/// the whole body whatever the server says, while reading the answer. Returns the answer
/// and how the upload went; then asks `GET /ok` on the same connection.
fn upload(port: u16, head: &str, len: usize, chunked: bool) -> UploadOutcome {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut writer = stream.try_clone().unwrap();
    let head = head.to_owned();
    let sending = std::thread::spawn(move || -> std::io::Result<()> {
        writer.write_all(head.as_bytes())?;
        let chunk = vec![b'x'; 64 * 1024];
        let mut left = len;
        while left > 0 {
            let n = left.min(chunk.len());
            if chunked {
                writer.write_all(format!("{n:x}\r\n").as_bytes())?;
                writer.write_all(&chunk[..n])?;
                writer.write_all(b"\r\n")?;
            } else {
                writer.write_all(&chunk[..n])?;
            }
            left -= n;
        }
        if chunked {
            writer.write_all(b"0\r\n\r\n")?;
        }
        writer.flush()
    });
    let answer = read_response(&mut stream);
    let upload = sending.join().unwrap();
    let next = upload.as_ref().ok().and_then(|()| {
        stream
            .write_all(b"GET /api/auth/ok HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .ok()?;
        read_response(&mut stream).ok()
    });
    UploadOutcome {
        answer,
        upload,
        next,
    }
}

#[derive(Debug)]
struct UploadOutcome {
    answer: std::io::Result<(String, String)>,
    upload: std::io::Result<()>,
    next: Option<(String, String)>,
}

impl UploadOutcome {
    fn assert_answered(&self, status: &str, code: Option<&str>) {
        let (line, body) = self.answer.as_ref().expect("the answer arrives");
        assert!(line.starts_with(&format!("HTTP/1.1 {status}")), "{line}");
        if let Some(code) = code {
            assert!(body.contains(&format!("\"code\":\"{code}\"")), "{body}");
        }
        assert!(self.upload.is_ok(), "the upload is not cut off: {self:?}");
        let (next, _) = self.next.as_ref().expect("the connection lives on");
        assert!(next.starts_with("HTTP/1.1 200"), "{next}");
    }
}

fn post_head(path: &str, len: Option<usize>) -> String {
    let length = match len {
        Some(n) => format!("Content-Length: {n}\r\n"),
        None => "Transfer-Encoding: chunked\r\n".to_owned(),
    };
    format!(
        "POST /api/auth{path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n{length}\r\n"
    )
}

const MIB: usize = 1024 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_16_mib_body_gets_413_at_once_and_the_connection_survives() {
    let app = TestApp::new().await;
    let port = serve(app.auth.clone()).await;
    let outcome = tokio::task::spawn_blocking(move || {
        upload(
            port,
            &post_head("/sign-up/email", Some(16 * MIB)),
            16 * MIB,
            false,
        )
    })
    .await
    .unwrap();
    outcome.assert_answered("413", Some("PAYLOAD_TOO_LARGE"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunked_body_past_the_limit_gets_413_and_the_connection_survives() {
    let app = TestApp::new().await;
    let port = serve(app.auth.clone()).await;
    let outcome = tokio::task::spawn_blocking(move || {
        upload(port, &post_head("/sign-up/email", None), 4 * MIB, true)
    })
    .await
    .unwrap();
    outcome.assert_answered("413", Some("PAYLOAD_TOO_LARGE"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limited_upload_gets_its_429() {
    let app = TestApp::build(|b| b.options(|o| o.rate_limit.enabled = true)).await;
    let port = serve(app.auth.clone()).await;
    let outcome = tokio::task::spawn_blocking(move || {
        // Three sign-in attempts are the per-address limit; the fourth is refused unread.
        for _ in 0..3 {
            let small = r#"{"email":"a@example.com","password":"x"}"#;
            let head = post_head("/sign-in/email", Some(small.len()));
            let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
            s.write_all(format!("{head}{small}").as_bytes()).unwrap();
            read_response(&mut s).unwrap();
        }
        upload(
            port,
            &post_head("/sign-in/email", Some(900 * 1024)),
            900 * 1024,
            false,
        )
    })
    .await
    .unwrap();
    outcome.assert_answered("429", None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_to_no_endpoint_gets_its_404() {
    let app = TestApp::new().await;
    let port = serve(app.auth.clone()).await;
    let outcome = tokio::task::spawn_blocking(move || {
        upload(
            port,
            &post_head("/no-such-endpoint", Some(2 * MIB)),
            2 * MIB,
            false,
        )
    })
    .await
    .unwrap();
    outcome.assert_answered("404", None);
}
