//! The `portcullis` binary end to end: `serve` on a real port, `migrate`, and how both treat
//! the secret.

mod support;

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use support::*;

fn portcullis(dir: &Path) -> Command {
    server_command(env!("CARGO_BIN_EXE_portcullis"), dir)
}

/// `serve` with the configuration file `toml` in a fresh directory (kept alive by the
/// returned guard).
fn serve_with_config(toml: &str) -> (tempfile::TempDir, Server) {
    let (dir, config) = dir_with_config(toml);
    let mut cmd = portcullis(dir.path());
    cmd.env("PORTCULLIS_SECRET", GOOD_SECRET)
        .env("PORTCULLIS_DATABASE_URL", database_url(dir.path()))
        .env("PORTCULLIS_CONFIG", &config);
    let server = Server::start(cmd, free_port());
    (dir, server)
}

/// `serve` with the configuration file `toml`, run until it exits (it should refuse to start).
fn serve_to_end_with_config(toml: &str) -> Output {
    let (dir, config) = dir_with_config(toml);
    let mut cmd = portcullis(dir.path());
    cmd.env("PORTCULLIS_SECRET", GOOD_SECRET)
        .env("PORTCULLIS_CONFIG", &config)
        .args(["serve", "--port", &free_port().to_string()])
        .args(["--database", &database_url(dir.path())]);
    run_to_end(cmd)
}

#[test]
fn serve_refuses_a_secret_shorter_than_32_characters() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = portcullis(dir.path());
    cmd.env("PORTCULLIS_SECRET", "too-short-a-secret")
        .args(["serve", "--port", &free_port().to_string()])
        .args(["--database", &database_url(dir.path())]);

    let output = run_to_end(cmd);

    assert!(!output.status.success(), "{}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("at least 32 characters"), "{stderr}");
    assert!(stderr.contains("portcullis secret"), "{stderr}");
    assert!(
        !dir.path().join("portcullis.secret").exists(),
        "no secret file is written when a secret is given"
    );
}

#[test]
fn serve_without_a_secret_generates_one_beside_the_database_and_warns() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let mut cmd = portcullis(dir.path());
    cmd.env("PORTCULLIS_DATABASE_URL", database_url(&data));

    let mut server = Server::start(cmd, free_port());
    let output = server.stop();

    let secret_file = data.join("portcullis.secret");
    let secret = std::fs::read_to_string(&secret_file).expect("a generated secret file");
    assert!(secret.trim().len() >= 32, "{secret:?}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&secret_file)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "the secret file is private: {mode:o}");
    }
    assert!(output.contains("PORTCULLIS_SECRET is not set"), "{output}");
    assert!(
        !output.contains(secret.trim()),
        "the secret is never logged"
    );
    assert!(!dir.path().join("portcullis.secret").exists());
}

#[test]
fn the_generated_secret_is_kept_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let url = database_url(dir.path());

    let mut cmd = portcullis(dir.path());
    cmd.env("PORTCULLIS_DATABASE_URL", &url);
    let mut first = Server::start(cmd, free_port());
    let res = http_request(
        first.port,
        "POST",
        "/api/auth/sign-up/email",
        Some(r#"{"name":"R","email":"restart@example.com","password":"restart-password"}"#),
    )
    .unwrap();
    assert_eq!(res.status, 200, "{}", res.body);
    let cookie = res
        .header("set-cookie")
        .and_then(|c| c.split(';').next())
        .expect("a session cookie")
        .to_owned();
    first.stop();
    let secret = std::fs::read_to_string(dir.path().join("portcullis.secret")).unwrap();

    let mut cmd = portcullis(dir.path());
    cmd.env("PORTCULLIS_DATABASE_URL", &url);
    let second = Server::start(cmd, free_port());

    assert_eq!(
        std::fs::read_to_string(dir.path().join("portcullis.secret")).unwrap(),
        secret
    );
    // The session cookie from before the restart still signs in.
    let mut stream = TcpStream::connect(("127.0.0.1", second.port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET /api/auth/get-session HTTP/1.1\r\nHost: x\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).unwrap();
    assert!(raw.contains("restart@example.com"), "{raw}");
}

#[test]
fn serve_answers_the_page_and_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = portcullis(dir.path());
    cmd.env("PORTCULLIS_SECRET", GOOD_SECRET)
        .env("PORTCULLIS_DATABASE_URL", database_url(dir.path()));
    let mut server = Server::start(cmd, free_port());

    let page = http_get(server.port, "/").unwrap();
    assert_eq!(page.status, 200);
    assert!(page
        .header("content-type")
        .is_some_and(|c| c.starts_with("text/html")));
    let csp = page
        .header("content-security-policy")
        .expect("a Content-Security-Policy header");
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert!(
        page.body.to_ascii_lowercase().contains("<html"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("/api/auth"),
        "the page knows the base path"
    );

    let ok = http_get(server.port, "/api/auth/ok").unwrap();
    assert_eq!(ok.status, 200);
    assert_eq!(ok.body, r#"{"ok":true}"#);
    assert_eq!(ok.header("content-type"), Some("application/json"));

    let session = http_get(server.port, "/api/auth/get-session").unwrap();
    assert_eq!(session.status, 200);
    assert_eq!(session.body, "null");

    let missing = http_get(server.port, "/api/auth/nope").unwrap();
    assert_eq!(missing.status, 404);
    let missing = http_get(server.port, "/nope").unwrap();
    assert_eq!(missing.status, 404);

    let output = server.stop();
    assert!(!output.contains(GOOD_SECRET), "the secret is never logged");
    assert!(
        !output.contains("PORTCULLIS_SECRET is not set"),
        "no warning with a secret set: {output}"
    );
}

#[test]
fn migrate_twice_changes_nothing_the_second_time() {
    let dir = tempfile::tempdir().unwrap();
    let url = database_url(dir.path());
    let migrate = || {
        let mut cmd = portcullis(dir.path());
        cmd.env("PORTCULLIS_SECRET", GOOD_SECRET)
            .args(["migrate", "--database", &url]);
        run_to_end(cmd)
    };

    let first = migrate();
    assert!(first.status.success(), "{}", text(&first));
    let created = String::from_utf8_lossy(&first.stdout).to_lowercase();
    for table in ["\"user\"", "\"session\"", "\"account\"", "\"verification\""] {
        assert!(
            created.contains(&format!("create table {table}")),
            "{table} in {created}"
        );
    }

    let second = migrate();
    assert!(second.status.success(), "{}", text(&second));
    // Statements go to stdout, so a second run prints none; stderr says why.
    assert_eq!(String::from_utf8_lossy(&second.stdout).trim(), "");
    let said = String::from_utf8_lossy(&second.stderr);
    assert!(said.contains("up to date"), "{said}");
    assert!(dir.path().join("auth.db").exists());
}

#[test]
fn secret_prints_a_fresh_usable_secret() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = portcullis(dir.path());
    cmd.arg("secret");

    let a = run_to_end(cmd);
    let mut cmd = portcullis(dir.path());
    cmd.arg("secret");
    let b = run_to_end(cmd);

    assert!(a.status.success());
    let (a, b) = (
        String::from_utf8_lossy(&a.stdout).trim().to_owned(),
        String::from_utf8_lossy(&b.stdout).trim().to_owned(),
    );
    assert!(a.len() >= 32, "{a}");
    assert_ne!(a, b);
}

#[test]
fn serve_reports_a_port_already_in_use() {
    let dir = tempfile::tempdir().unwrap();
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let mut cmd = portcullis(dir.path());
    cmd.env("PORTCULLIS_SECRET", GOOD_SECRET)
        .env("PORTCULLIS_DATABASE_URL", database_url(dir.path()))
        .args(["serve", "--port", &port.to_string()]);

    let output = run_to_end(cmd);

    assert!(!output.status.success(), "{}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cannot listen"), "{stderr}");
    assert!(stderr.contains(&port.to_string()), "{stderr}");
}

#[cfg(unix)]
#[test]
fn serve_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = portcullis(dir.path());
    cmd.env("PORTCULLIS_SECRET", GOOD_SECRET)
        .env("PORTCULLIS_DATABASE_URL", database_url(dir.path()));
    let mut server = Server::start(cmd, free_port());
    let mut child = server.child.take().unwrap();

    let sent = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the server did not stop within 15 s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    };

    let output = child.wait_with_output().unwrap();
    assert!(status.success(), "{status}: {}", text(&output));
    assert!(
        http_get(server.port, "/api/auth/ok").is_err(),
        "nothing listens any more"
    );
}

#[test]
fn migrate_needs_no_secret_and_a_dry_run_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let url = database_url(dir.path());
    let migrate = |extra: &[&str]| {
        let mut cmd = portcullis(dir.path());
        cmd.args(["migrate", "--database", &url]).args(extra);
        run_to_end(cmd)
    };

    let dry = migrate(&["--dry-run"]);
    assert!(dry.status.success(), "{}", text(&dry));
    let planned = String::from_utf8_lossy(&dry.stdout).into_owned();
    assert!(planned.contains("create table"), "{planned}");

    // The dry run created nothing: the real run has the same statements to make.
    let real = migrate(&[]);
    assert!(real.status.success(), "{}", text(&real));
    assert_eq!(String::from_utf8_lossy(&real.stdout), planned);
    // Neither run needed a secret, so neither wrote one.
    assert!(
        !dir.path().join("portcullis.secret").exists(),
        "migrate wrote a secret file"
    );
}

#[test]
fn generate_prints_only_sql_on_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = portcullis(dir.path());
    // Log everything: none of it may reach standard output.
    cmd.env("PORTCULLIS_LOG", "trace")
        .args(["generate", "--dialect", "sqlite"]);

    let output = run_to_end(cmd);

    assert!(output.status.success(), "{}", text(&output));
    let sql = String::from_utf8_lossy(&output.stdout);
    assert!(sql.contains("create table"), "{sql}");
    for line in sql.lines().filter(|l| !l.trim().is_empty()) {
        let l = line.trim_start().to_ascii_lowercase();
        assert!(
            l.starts_with("create")
                || l.starts_with("--")
                || l.starts_with(')')
                || l.starts_with('"'),
            "not SQL: {line}"
        );
    }
}

#[test]
fn serve_logs_go_to_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = portcullis(dir.path());
    cmd.env("PORTCULLIS_DATABASE_URL", database_url(dir.path()));
    let mut server = Server::start(cmd, free_port());
    let child = server.child.take().unwrap();
    let mut child = child;
    let _ = child.kill();

    let output = child.wait_with_output().unwrap();

    assert!(
        output.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("PORTCULLIS_SECRET is not set"), "{stderr}");
}

#[test]
fn serve_with_an_outbox_file_mails_reset_links_there_and_logs_no_token() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = dir.path().join("mail/outbox.jsonl");
    let mut cmd = portcullis(dir.path());
    cmd.env("PORTCULLIS_SECRET", GOOD_SECRET)
        .env("PORTCULLIS_DATABASE_URL", database_url(dir.path()))
        .env("OUTBOX_FILE", &outbox);
    let mut server = Server::start(cmd, free_port());

    let res = post_json(
        server.port,
        "/api/auth/sign-up/email",
        r#"{"name":"Ada","email":"ada@example.com","password":"correct-horse-battery"}"#,
    );
    assert_eq!(res.status, 200, "{}", res.body);
    let res = post_json(
        server.port,
        "/api/auth/request-password-reset",
        r#"{"email":"ada@example.com","redirectTo":"/reset"}"#,
    );
    assert_eq!(res.status, 200, "{}", res.body);

    let line = wait_for_line(&outbox, "reset-password");
    let entry: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(entry["to"], "ada@example.com");
    let token = entry["token"].as_str().unwrap();
    let url = entry["url"].as_str().unwrap();
    assert_eq!(
        url,
        format!(
            "http://127.0.0.1:{}/api/auth/reset-password/{token}?callbackURL=%2Freset",
            server.port
        )
    );
    let output = server.stop();
    assert!(
        !output.contains(token),
        "the token is never logged: {output}"
    );
    assert!(output.contains("outbox"), "{output}");
}

#[test]
fn serve_with_the_log_sender_logs_the_kind_and_never_the_link() {
    let (_dir, mut server) = serve_with_config(
        "[email]\nsender = \"log\"\n\n[email_verification]\nsend_on_sign_up = true\n",
    );

    let res = post_json(
        server.port,
        "/api/auth/sign-up/email",
        r#"{"name":"Bo","email":"bo@example.com","password":"correct-horse-battery"}"#,
    );
    assert_eq!(res.status, 200, "{}", res.body);
    std::thread::sleep(Duration::from_millis(300));

    let output = server.stop();
    assert!(output.contains("log sender"), "{output}");
    assert!(output.contains("verify-email"), "{output}");
    assert!(!output.contains("verify-email?token"), "{output}");
    assert!(
        !output.contains("eyJhbGciOiJIUzI1NiJ9"),
        "no token in the logs: {output}"
    );
}

#[test]
fn serve_refuses_an_incomplete_email_configuration() {
    for (toml, expected) in [
        ("[email]\nsender = \"smtp\"\n", "[email.smtp]"),
        ("[email]\nsender = \"outbox\"\n", "outbox_file"),
        ("[email]\nsender = \"pigeon\"\n", "use smtp, outbox, log or none"),
        (
            "[email.smtp]\nhost = \"smtp.example.com\"\nuser = \"u\"\npassword_env = \"PC_TEST_NO_SUCH_VAR\"\nfrom = \"a@example.com\"\n",
            "PC_TEST_NO_SUCH_VAR",
        ),
        (
            "[email.smtp]\nhost = \"smtp.example.com\"\ntls = \"maybe\"\nfrom = \"a@example.com\"\n",
            "use starttls, tls or none",
        ),
    ] {
        let output = serve_to_end_with_config(toml);

        assert!(!output.status.success(), "{toml}: {}", text(&output));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(expected), "{toml}: {stderr}");
    }
}

#[test]
fn serve_writes_the_cookie_cache_when_the_config_enables_it() {
    let (_dir, mut server) = serve_with_config(
        "[session.cookie_cache]\nenabled = true\nmax_age = 120\nstrategy = \"jwt\"\n",
    );

    let res = post_json(
        server.port,
        "/api/auth/sign-up/email",
        r#"{"name":"Cy","email":"cy@example.com","password":"correct-horse-battery"}"#,
    );
    assert_eq!(res.status, 200, "{}", res.body);
    let cache = res
        .headers
        .iter()
        .find(|(n, v)| {
            n.eq_ignore_ascii_case("set-cookie") && v.starts_with("better-auth.session_data=")
        })
        .map(|(_, v)| v.clone())
        .expect("a session_data cookie");
    // An HS256 JWT (its header is {"alg":"HS256"}), trusted for the configured 120 s.
    assert!(
        cache.starts_with("better-auth.session_data=eyJhbGciOiJIUzI1NiJ9."),
        "{cache}"
    );
    assert!(cache.contains("; Max-Age=120;"), "{cache}");
    server.stop();
}

#[test]
fn serve_refuses_an_unknown_cookie_cache_strategy() {
    let output = serve_to_end_with_config("[session.cookie_cache]\nstrategy = \"rot13\"\n");

    assert!(!output.status.success(), "{}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("[session.cookie_cache]"), "{stderr}");
    assert!(stderr.contains("rot13"), "{stderr}");
}

#[test]
fn serve_configures_change_email_and_delete_user_from_the_user_section() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = dir.path().join("outbox.jsonl");
    let config = dir.path().join("auth.toml");
    std::fs::write(
        &config,
        "[user.change_email]\nenabled = true\n\n\
         [user.delete_user]\nenabled = true\nsend_delete_account_verification = true\n\
         delete_token_expires_in = 600\n",
    )
    .unwrap();
    let mut cmd = portcullis(dir.path());
    cmd.env("PORTCULLIS_SECRET", GOOD_SECRET)
        .env("PORTCULLIS_DATABASE_URL", database_url(dir.path()))
        .env("PORTCULLIS_CONFIG", &config)
        .env("OUTBOX_FILE", &outbox);
    let server = Server::start(cmd, free_port());
    let res = post_json(
        server.port,
        "/api/auth/sign-up/email",
        r#"{"name":"Cy","email":"cy@example.com","password":"correct-horse-battery"}"#,
    );
    assert_eq!(res.status, 200, "{}", res.body);
    let cookie = res
        .header("set-cookie")
        .and_then(|c| c.split(';').next())
        .unwrap()
        .to_owned();
    let origin = format!("http://127.0.0.1:{}", server.port);
    let signed_in = [("Cookie", cookie.as_str()), ("Origin", origin.as_str())];

    let res = http_request_with(
        server.port,
        "POST",
        "/api/auth/change-email",
        Some(r#"{"newEmail":"cy2@example.com"}"#),
        &signed_in,
    )
    .unwrap();
    assert_eq!(res.status, 200, "{}", res.body);
    let line = wait_for_line(&outbox, "cy2@example.com");
    let entry: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(entry["kind"], "verify-email");

    let res = http_request_with(
        server.port,
        "POST",
        "/api/auth/delete-user",
        Some("{}"),
        &signed_in,
    )
    .unwrap();
    assert_eq!(res.status, 200, "{}", res.body);
    assert!(res.body.contains("Verification email sent"), "{}", res.body);
    let line = wait_for_line(&outbox, "delete-account");
    let entry: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(entry["to"], "cy@example.com");
}

#[test]
fn serve_throttles_an_account_as_the_config_says() {
    let (_dir, mut server) = serve_with_config("[rate_limit.account]\nthreshold = 2\n");
    let sign_up = post_json(
        server.port,
        "/api/auth/sign-up/email",
        r#"{"name":"Di","email":"di@example.com","password":"correct-horse-battery"}"#,
    );
    assert_eq!(sign_up.status, 200, "{}", sign_up.body);

    let wrong = r#"{"email":"di@example.com","password":"not-the-password"}"#;
    let statuses: Vec<u16> = (0..3)
        .map(|_| post_json(server.port, "/api/auth/sign-in/email", wrong).status)
        .collect();
    // The third attempt is within the per-address limit (3 per 10 s): the account's own
    // threshold of two is what refuses it.
    assert_eq!(statuses, [401, 401, 429]);
    server.stop();
}

/// Rotation from the outside: a session made under the plain secret survives a restart with a
/// new versioned secret (from `PORTCULLIS_SECRETS` or from the file's `secrets`), the plain one
/// kept as the legacy secret; what the rotated server signs uses the new secret.
#[test]
fn serve_rotates_secrets_without_signing_anybody_out() {
    let dir = tempfile::tempdir().unwrap();
    let new_secret = "the-new-secret-after-rotation-0123456789";
    // `plain`: whether the old plain secret is still given.
    let start = |plain: bool, extra: &[(&str, &str)], config: Option<&Path>| {
        let mut cmd = portcullis(dir.path());
        cmd.env("PORTCULLIS_DATABASE_URL", database_url(dir.path()));
        if plain {
            cmd.env("PORTCULLIS_SECRET", GOOD_SECRET);
        }
        for (k, v) in extra {
            cmd.env(k, v);
        }
        if let Some(c) = config {
            cmd.env("PORTCULLIS_CONFIG", c);
        }
        Server::start(cmd, free_port())
    };
    let session_cookie = |res: &HttpResponse| {
        res.headers
            .iter()
            .find(|(n, v)| {
                n.eq_ignore_ascii_case("set-cookie") && v.starts_with("better-auth.session_token=")
            })
            .and_then(|(_, v)| v.split(';').next())
            .unwrap()
            .to_owned()
    };
    let signed_in = |port: u16, cookie: &str| {
        let res = http_request_with(
            port,
            "GET",
            "/api/auth/get-session",
            None,
            &[("Cookie", cookie)],
        )
        .unwrap();
        assert_eq!(res.status, 200);
        res.body.contains("ro@example.com")
    };
    let credentials = r#"{"email":"ro@example.com","password":"correct-horse-battery"}"#;

    let mut before = start(true, &[], None);
    let res = post_json(
        before.port,
        "/api/auth/sign-up/email",
        r#"{"name":"Ro","email":"ro@example.com","password":"correct-horse-battery"}"#,
    );
    assert_eq!(res.status, 200, "{}", res.body);
    let cookie = session_cookie(&res);
    before.stop();

    let config = dir.path().join("rotated.toml");
    std::fs::write(
        &config,
        "secrets = [{ version = 2, value_env = \"NEW_SECRET\" }]\n",
    )
    .unwrap();
    let pair = format!("2:{new_secret}");
    for (env, config) in [
        (("PORTCULLIS_SECRETS", pair.as_str()), None),
        (("NEW_SECRET", new_secret), Some(config.as_path())),
    ] {
        let mut after = start(true, &[env], config);
        assert!(signed_in(after.port, &cookie), "the old session lives on");
        let res = post_json(after.port, "/api/auth/sign-in/email", credentials);
        assert_eq!(res.status, 200, "{}", res.body);
        let new_cookie = session_cookie(&res);
        let output = after.stop();
        assert!(!output.contains(new_secret), "the secret is never logged");

        // Only the new secret: what the rotated server signed works, the old cookie not.
        let mut retired = start(false, &[("PORTCULLIS_SECRETS", pair.as_str())], None);
        assert!(
            signed_in(retired.port, &new_cookie),
            "signed with the new secret"
        );
        assert!(
            !signed_in(retired.port, &cookie),
            "the old secret is retired"
        );
        retired.stop();
    }
}

#[test]
fn serve_refuses_common_passwords_once_the_plugin_is_listed() {
    let (_dir, mut server) =
        serve_with_config("plugins = [\"email-password\", \"compromised-password\"]\n");
    let res = post_json(
        server.port,
        "/api/auth/sign-up/email",
        r#"{"name":"Ci","email":"ci@example.com","password":"iloveyou1"}"#,
    );
    assert_eq!(res.status, 400, "{}", res.body);
    assert!(res.body.contains("PASSWORD_COMPROMISED"), "{}", res.body);
    server.stop();
}
