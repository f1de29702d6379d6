//! Running a Portcullis server binary in tests: the process, a real port, HTTP/1.1 by hand.
//! Shared by the `portcullis` binary's tests and by binaries built on `portcullis_cli::main()`
//! elsewhere in the workspace (included with `#[path]`).

#![allow(dead_code)]

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub(crate) const GOOD_SECRET: &str = "an-integration-test-secret-of-enough-length";

/// Environment variables the binary reads; none may leak in from the environment running the
/// tests.
pub(crate) const ENV_VARS: &[&str] = &[
    "PORTCULLIS_SECRET",
    "BETTER_AUTH_SECRET",
    "PORTCULLIS_SECRETS",
    "BETTER_AUTH_SECRETS",
    "PORTCULLIS_CONFIG",
    "PORTCULLIS_HOST",
    "PORTCULLIS_PORT",
    "PORTCULLIS_DATABASE_URL",
    "PORTCULLIS_URL",
    "PORTCULLIS_TRUSTED_ORIGINS",
    "PORTCULLIS_IP_HEADERS",
    "PORTCULLIS_RATE_LIMIT",
    "PORTCULLIS_SECRET_FILE",
    "PORTCULLIS_LOG",
    "BETTER_AUTH_URL",
    "PORTCULLIS_EMAIL_SENDER",
    "PORTCULLIS_OUTBOX_FILE",
    "OUTBOX_FILE",
    "PORTCULLIS_SMTP_PASSWORD",
];

/// The server binary at `bin`, run in `dir` with none of the environment's settings.
pub(crate) fn server_command(bin: &str, dir: &Path) -> Command {
    let mut cmd = Command::new(bin);
    for var in ENV_VARS {
        cmd.env_remove(var);
    }
    cmd.current_dir(dir)
        .env("PORTCULLIS_LOG", "info")
        .stdin(Stdio::null());
    cmd
}

pub(crate) fn database_url(dir: &Path) -> String {
    format!("sqlite://{}", dir.join("auth.db").display())
}

pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A running server, killed when dropped (also when a test fails half-way).
pub(crate) struct Server {
    pub(crate) child: Option<Child>,
    pub(crate) port: u16,
}

impl Server {
    pub(crate) fn start(mut cmd: Command, port: u16) -> Self {
        let child = cmd
            .args(["serve", "--port", &port.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start portcullis serve");
        let mut server = Self {
            child: Some(child),
            port,
        };
        server.wait_until_ready();
        server
    }

    fn wait_until_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(res) = http_get(self.port, "/api/auth/ok") {
                if res.status == 200 {
                    return;
                }
            }
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    let output = self.stop();
                    panic!("the server exited early ({status}):\n{output}");
                }
            }
            assert!(
                Instant::now() < deadline,
                "the server did not answer within 30 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills the server and returns everything it printed.
    pub(crate) fn stop(&mut self) -> String {
        let Some(mut child) = self.child.take() else {
            return String::new();
        };
        let _ = child.kill();
        let output = child.wait_with_output().expect("collect the server output");
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub(crate) struct HttpResponse {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: String,
}

impl HttpResponse {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One HTTP/1.1 request over a fresh connection.
pub(crate) fn http_request(
    port: u16,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> std::io::Result<HttpResponse> {
    http_request_with(port, method, path, body, &[])
}

/// [`http_request`] with extra request headers.
pub(crate) fn http_request_with(
    port: u16,
    method: &str,
    path: &str,
    body: Option<&str>,
    headers: &[(&str, &str)],
) -> std::io::Result<HttpResponse> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut request =
        format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    if let Some(body) = body {
        request.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    request.push_str("\r\n");
    request.push_str(body.unwrap_or_default());
    stream.write_all(request.as_bytes())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| std::io::Error::other(format!("no end of headers in {text:?}")))?;
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("no status line in {head:?}")))?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Ok(HttpResponse {
        status,
        headers,
        body: body.to_owned(),
    })
}

pub(crate) fn http_get(port: u16, path: &str) -> std::io::Result<HttpResponse> {
    http_request(port, "GET", path, None)
}

pub(crate) fn run_to_end(mut cmd: Command) -> Output {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start portcullis");
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().expect("poll portcullis").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("portcullis did not exit within 60 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().expect("collect the output")
}

pub(crate) fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

pub(crate) fn post_json(port: u16, path: &str, body: &str) -> HttpResponse {
    http_request(port, "POST", path, Some(body)).expect("a response")
}

/// A fresh directory holding `auth.toml` with `toml` in it.
pub(crate) fn dir_with_config(toml: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let config = dir.path().join("auth.toml");
    std::fs::write(&config, toml).expect("write the configuration");
    (dir, config)
}

/// Waits (up to 10 s) for `path` to hold a line containing `needle`; returns that line.
pub(crate) fn wait_for_line(path: &Path, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(text) = std::fs::read_to_string(path) {
            if let Some(line) = text.lines().find(|l| l.contains(needle)) {
                return line.to_owned();
            }
        }
        assert!(
            Instant::now() < deadline,
            "no line with {needle} in {}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
