//! The app's own binary finds the audit-log plugin by the name in its configuration file
//! alone, and serves it.

#[path = "../../../cli/tests/support/mod.rs"]
mod support;

use support::*;

const CONFIG: &str = r#"
plugins = ["email-password", "two-factor", "audit-log"]

[plugin.audit-log]
default_limit = 1
"#;

fn my_server(dir: &std::path::Path) -> std::process::Command {
    server_command(env!("CARGO_BIN_EXE_my-auth-server"), dir)
}

#[test]
fn generate_includes_the_plugins_table() {
    let (dir, config) = dir_with_config(CONFIG);
    let mut cmd = my_server(dir.path());
    cmd.env("PORTCULLIS_CONFIG", &config)
        .args(["generate", "--dialect", "postgres"]);
    let output = run_to_end(cmd);
    assert!(output.status.success(), "{}", text(&output));
    let sql = String::from_utf8_lossy(&output.stdout);
    assert!(sql.contains("\"auditEvent\""), "{sql}");
    assert!(sql.contains("\"twoFactor\""), "{sql}");
}

#[test]
fn serve_records_and_lists_sign_ins_with_the_configured_limit() {
    let (dir, config) = dir_with_config(CONFIG);
    let mut cmd = my_server(dir.path());
    cmd.env("PORTCULLIS_SECRET", GOOD_SECRET)
        .env("PORTCULLIS_DATABASE_URL", database_url(dir.path()))
        .env("PORTCULLIS_CONFIG", &config);
    let mut server = Server::start(cmd, free_port());
    let port = server.port;
    let origin = format!("http://127.0.0.1:{port}");

    let signed_up = http_request_with(
        port,
        "POST",
        "/api/auth/sign-up/email",
        Some(r#"{"email":"ada@example.com","password":"correct-horse-battery","name":"Ada"}"#),
        &[("Origin", &origin)],
    )
    .expect("sign-up answers");
    assert_eq!(signed_up.status, 200, "{}", signed_up.body);
    let cookie_of = |res: &support::HttpResponse| {
        res.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("set-cookie"))
            .filter_map(|(_, v)| v.split(';').next())
            .collect::<Vec<_>>()
            .join("; ")
    };
    let cookie = cookie_of(&signed_up);

    // A second sign-in in the same browser.
    let signed_in = http_request_with(
        port,
        "POST",
        "/api/auth/sign-in/email",
        Some(r#"{"email":"ada@example.com","password":"correct-horse-battery"}"#),
        &[("Origin", &origin), ("Cookie", &cookie)],
    )
    .expect("sign-in answers");
    assert_eq!(signed_in.status, 200, "{}", signed_in.body);
    // The sign-in ended the browser's first session: the new cookie is the one that works.
    let cookie = cookie_of(&signed_in);

    let list = |path: &str| -> Vec<serde_json::Value> {
        let res = http_request_with(
            port,
            "GET",
            path,
            None,
            &[("Origin", &origin), ("Cookie", &cookie)],
        )
        .expect("the list answers");
        assert_eq!(res.status, 200, "{}", res.body);
        serde_json::from_str(&res.body).expect("a JSON list")
    };

    // default_limit = 1, from the file: the newest event, the end of the session the second
    // sign-in replaced.
    let events = list("/api/auth/audit-log/list");
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["kind"], "session-ended");

    let three = list("/api/auth/audit-log/list?limit=3");
    let kinds: Vec<&str> = three.iter().filter_map(|e| e["kind"].as_str()).collect();
    assert_eq!(kinds, ["session-ended", "sign-in", "sign-in"]);

    let output = server.stop();
    assert!(!output.contains(GOOD_SECRET), "the secret is never logged");
}
