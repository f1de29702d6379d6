//! Mail in tests: an in-memory sender ([`MailSink`]) and a real SMTP server
//! ([`SmtpSink`], Python's aiosmtpd) that the SMTP sender delivers to.
//!
//! Without aiosmtpd the SMTP tests are skipped with a note on stderr; with `REQUIRE_SMTP=1`
//! (CI sets it) they fail instead, saying how to install it.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use portcullis::email::{EmailError, EmailSender, Message};
use portcullis::BoxFuture;
use serde_json::Value;
use tempfile::TempDir;

pub use portcullis::testing::MailSink;

/// A sender that always fails, to test what the endpoints do then.
#[derive(Debug, Clone, Copy, Default)]
pub struct FailingSender;

impl EmailSender for FailingSender {
    fn send<'a>(&'a self, _: &'a Message) -> BoxFuture<'a, Result<(), EmailError>> {
        Box::pin(async { Err(EmailError::Transport("refused by the test".into())) })
    }
}

fn smtp_required() -> bool {
    std::env::var("REQUIRE_SMTP").is_ok_and(|v| v == "1" || v == "true")
}

/// How the test SMTP server protects connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SinkTls {
    /// No TLS.
    Plain,
    /// STARTTLS, required by the server.
    StartTls,
    /// TLS from the first byte.
    Implicit,
}

/// A local SMTP server (aiosmtpd) that writes each message it receives to a JSON file.
/// Stopped when dropped.
#[derive(Debug)]
pub struct SmtpSink {
    /// The port it listens on (127.0.0.1).
    pub port: u16,
    /// Its self-signed certificate (PEM, for `localhost`), when it speaks TLS.
    pub certificate: Option<Vec<u8>>,
    tls: SinkTls,
    mail_dir: PathBuf,
    _dir: TempDir,
    child: Child,
}

/// A self-signed certificate and key for `localhost` in `dir`, made with the openssl tool.
fn self_signed(dir: &Path) -> Option<(PathBuf, PathBuf)> {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let made = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args(["-nodes", "-days", "1", "-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=DNS:localhost"])
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    made.then_some((cert, key))
}

impl SmtpSink {
    /// Starts a plain server, or returns `None` (with a note) when aiosmtpd is not installed
    /// and `REQUIRE_SMTP` is not set.
    pub fn start() -> Option<Self> {
        Self::start_with(SinkTls::Plain, None)
    }

    /// Starts a server speaking `tls` with a fresh self-signed certificate for `localhost`,
    /// and requiring SMTP AUTH with `auth` (user, password) when given.
    pub fn start_with(tls: SinkTls, auth: Option<(&str, &str)>) -> Option<Self> {
        let available = Command::new("python3")
            .args(["-c", "import aiosmtpd"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !available {
            assert!(
                !smtp_required(),
                "REQUIRE_SMTP=1 but Python's aiosmtpd is not installed: pip install aiosmtpd"
            );
            eprintln!("skipped: Python's aiosmtpd is not installed (pip install aiosmtpd)");
            return None;
        }
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("smtp_sink.py");
        let dir = tempfile::tempdir().expect("a temporary directory");
        let mail_dir = dir.path().join("mail");
        let mut extra: Vec<std::ffi::OsString> = Vec::new();
        let mut certificate = None;
        if tls != SinkTls::Plain {
            let Some((cert, key)) = self_signed(dir.path()) else {
                assert!(
                    !smtp_required(),
                    "REQUIRE_SMTP=1 but the openssl tool could not make a test certificate"
                );
                eprintln!("skipped: the openssl tool could not make a test certificate");
                return None;
            };
            certificate = Some(std::fs::read(&cert).expect("read the certificate"));
            let mode = if tls == SinkTls::StartTls {
                "starttls"
            } else {
                "tls"
            };
            extra.extend([mode.into(), cert.into(), key.into()]);
            if let Some((user, password)) = auth {
                extra.extend([user.into(), password.into()]);
            }
        }
        for _ in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .map(|a| a.port())
                .expect("a free port");
            let mut child = Command::new("python3")
                .arg(&script)
                .arg(port.to_string())
                .arg(&mail_dir)
                .args(&extra)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("start the SMTP sink");
            let stdout = child.stdout.take().expect("the sink's stdout");
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let mut line = String::new();
                let _ = BufReader::new(stdout).read_line(&mut line);
                let _ = tx.send(line);
            });
            match rx.recv_timeout(Duration::from_secs(20)) {
                Ok(line) if line.trim() == "ready" => {
                    return Some(Self {
                        port,
                        certificate,
                        tls,
                        mail_dir,
                        _dir: dir,
                        child,
                    });
                }
                _ => {
                    // Port taken between the probe and the bind, or a slow start: try again.
                    let _ = child.kill();
                    let _ = child.wait();
                }
            }
        }
        panic!("the SMTP sink (aiosmtpd) did not start");
    }

    /// The messages received so far, in order: `{mail_from, rcpt_tos, headers, subject, to,
    /// text, html}`.
    pub fn messages(&self) -> Vec<Value> {
        let mut files: Vec<(u64, PathBuf)> = std::fs::read_dir(&self.mail_dir)
            .expect("read the sink's folder")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter_map(|p| {
                let n = p.file_stem()?.to_str()?.parse().ok()?;
                (p.extension()? == "json").then_some((n, p))
            })
            .collect();
        files.sort();
        files
            .into_iter()
            .map(|(_, p)| {
                let text = std::fs::read_to_string(&p).expect("read a received message");
                serde_json::from_str(&text).expect("a JSON record")
            })
            .collect()
    }

    /// Waits (up to 10 s) until at least `n` messages arrived; returns them all.
    pub async fn wait_for(&self, n: usize) -> Vec<Value> {
        for _ in 0..1000 {
            let all = self.messages();
            if all.len() >= n {
                return all;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!(
            "expected {n} message(s), the SMTP server has {:?}",
            self.messages()
        );
    }

    /// An SMTP sender configuration for this server: its TLS mode, its certificate as an
    /// extra trusted root, no credentials.
    pub fn config(&self, from: &str) -> portcullis::email::SmtpConfig {
        use portcullis::email::{SmtpConfig, SmtpSecurity};
        let host = if self.tls == SinkTls::Plain {
            "127.0.0.1"
        } else {
            "localhost"
        };
        let mut c = SmtpConfig::new(host, from);
        c.port = Some(self.port);
        c.security = match self.tls {
            SinkTls::Plain => SmtpSecurity::None,
            SinkTls::StartTls => SmtpSecurity::StartTls,
            SinkTls::Implicit => SmtpSecurity::Tls,
        };
        c.root_certificates_pem.extend(self.certificate.clone());
        c.timeout = Duration::from_secs(10);
        c
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The first `http…` link in `text` (up to whitespace).
pub fn link_in(text: &str) -> String {
    let start = text.find("http").expect("a link in the message");
    text[start..]
        .split_whitespace()
        .next()
        .expect("a link")
        .to_owned()
}

/// The path and query of `url` relative to the API's base path, for `TestApp::get`
/// (`http://localhost:3000/api/auth/verify-email?x` → `/verify-email?x`).
pub fn api_path(url: &str) -> String {
    let prefix = format!("{}{}", crate::BASE_URL, crate::BASE_PATH);
    url.strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("{url} is not under {prefix}"))
        .to_owned()
}

/// A query parameter of a URL (percent-decoded).
pub fn query_param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    let query = query.split('#').next().unwrap_or_default();
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then(|| {
            percent_encoding::percent_decode_str(&v.replace('+', " "))
                .decode_utf8_lossy()
                .into_owned()
        })
    })
}

/// A development outbox ([`OutboxSender`](portcullis::email::OutboxSender)) in a temporary
/// folder, and what it holds: one JSON object per message, `{kind, to, url, token, at}`, in
/// the format the conformance kit reads.
#[derive(Debug)]
pub struct Outbox {
    path: PathBuf,
    _dir: TempDir,
}

impl Default for Outbox {
    fn default() -> Self {
        Self::new()
    }
}

impl Outbox {
    /// An empty outbox.
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        Self {
            path: dir.path().join("outbox.jsonl"),
            _dir: dir,
        }
    }

    /// A sender appending to this outbox.
    pub fn sender(&self) -> portcullis::email::OutboxSender {
        portcullis::email::OutboxSender::new(&self.path)
    }

    /// Every message so far, in order.
    pub fn messages(&self) -> Vec<Value> {
        match std::fs::read_to_string(&self.path) {
            Ok(text) => text
                .lines()
                .map(|l| serde_json::from_str(l).expect("an outbox line is JSON"))
                .collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => panic!("read the outbox: {e}"),
        }
    }

    /// The messages of `kind` to `to`.
    pub fn to(&self, kind: &str, to: &str) -> Vec<Value> {
        self.messages()
            .into_iter()
            .filter(|m| m["kind"] == kind && m["to"] == to)
            .collect()
    }

    /// Waits (up to 5 s) for the `n`th message (1-based) of `kind` to `to`: mail may be sent
    /// in the background.
    pub async fn wait_for(&self, kind: &str, to: &str, n: usize) -> Value {
        for _ in 0..500 {
            if let Some(m) = self.to(kind, to).get(n - 1) {
                return m.clone();
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!(
            "no {kind} message #{n} to {to}; the outbox has {:?}",
            self.messages()
        );
    }

    /// Lets background sends finish (300 ms), then returns every message: for tests that
    /// check nothing more was sent.
    pub async fn settled(&self) -> Vec<Value> {
        tokio::time::sleep(Duration::from_millis(300)).await;
        self.messages()
    }
}

/// Keeps the links an engine hands to the application's delivery callback
/// ([`Delivery::callback`](portcullis::callbacks::Delivery::callback)) instead of mailing them.
#[derive(Debug, Clone, Default)]
pub struct CaughtLinks(Arc<Mutex<Vec<portcullis::callbacks::LinkMail>>>);

impl CaughtLinks {
    /// A delivery that keeps each link here.
    pub fn delivery(&self) -> portcullis::callbacks::Delivery {
        let caught = self.0.clone();
        portcullis::callbacks::Delivery::callback(move |mail, _ctx| {
            let caught = caught.clone();
            async move {
                caught.lock().expect("caught links lock").push(mail);
                Ok(())
            }
        })
    }

    /// Waits (up to 5 s) for the first link: delivery may run in the background.
    pub async fn first(&self) -> portcullis::callbacks::LinkMail {
        for _ in 0..500 {
            if let Some(m) = self.0.lock().expect("caught links lock").first() {
                return m.clone();
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("no link was delivered");
    }
}
