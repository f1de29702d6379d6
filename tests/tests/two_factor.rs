//! Two-factor authentication as a user meets it: enrolling an authenticator app, the sign-in
//! challenge, one-time codes by mail, backup codes, trusted devices, and every way a second
//! factor is refused.
#![allow(clippy::unwrap_used)]

use http::StatusCode;
use portcullis::storage::{Row, Where};
use portcullis_tests::mail::MailSink;
use portcullis_tests::{TestApp, TestResponse, PASSWORD};
use portcullis_two_factor::{TwoFactor, TwoFactorApi, TwoFactorOptions};
use serde_json::{json, Value};

const TWO_FACTOR: &str = "better-auth.two_factor";
const TRUST_DEVICE: &str = "better-auth.trust_device";
const SESSION: &str = "better-auth.session_token";

/// An authenticator app: computes RFC 6238 codes from the `otpauth://` URI, never reusing a
/// time step (servers refuse replays).
struct Authenticator {
    totp: totp_rs::TOTP,
    last_step: Option<u64>,
}

impl Authenticator {
    fn from_uri(uri: &str) -> Self {
        let url = url::Url::parse(uri).unwrap();
        let param = |name: &str| {
            url.query_pairs()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.into_owned())
                .unwrap()
        };
        let key = totp_rs::Secret::Encoded(param("secret"))
            .to_bytes()
            .unwrap();
        let digits = param("digits").parse().unwrap();
        let period = param("period").parse().unwrap();
        Self {
            totp: totp_rs::TOTP::new_unchecked(totp_rs::Algorithm::SHA1, digits, 1, period, key),
            last_step: None,
        }
    }

    fn now_step(&self) -> u64 {
        u64::try_from(chrono::Utc::now().timestamp()).unwrap() / self.totp.step
    }

    /// The code of time step `step`.
    fn at(&self, step: u64) -> String {
        self.totp.generate(step * self.totp.step)
    }

    /// The current step, or the step after the last one used.
    fn next_step(&self) -> u64 {
        match self.last_step {
            Some(last) => self.now_step().max(last + 1),
            None => self.now_step(),
        }
    }

    /// The code of [`Authenticator::next_step`], used up.
    fn next(&mut self) -> String {
        let step = self.next_step();
        self.last_step = Some(step);
        self.at(step)
    }

    /// The code [`Authenticator::next`] would give, without using it up.
    fn peek(&self) -> String {
        self.at(self.next_step())
    }

    /// The code of the step last used (a replay).
    fn last(&self) -> String {
        self.at(self.last_step.unwrap())
    }

    /// A code no step near now has.
    fn wrong(&self) -> String {
        let near: Vec<String> = (0..4)
            .map(|d| self.at((self.now_step() + d).saturating_sub(1)))
            .collect();
        ["000000", "111111", "222222"]
            .into_iter()
            .find(|c| !near.iter().any(|n| n == c))
            .unwrap()
            .to_owned()
    }
}

/// An engine with email-password, two-factor and a mailbox.
async fn app_with(plugin: TwoFactor) -> (TestApp, MailSink) {
    let mail = MailSink::new();
    let sender = mail.clone();
    let app = TestApp::build(move |b| b.plugin(plugin).email_sender(sender)).await;
    (app, mail)
}

/// Two-factor with one-time codes by mail.
async fn app() -> (TestApp, MailSink) {
    app_with(TwoFactor::default().send_otp_by_email(true)).await
}

/// A signed-in user who enrolled an authenticator and confirmed it.
struct Enrolled {
    client: TestApp,
    email: String,
    user_id: String,
    app: Authenticator,
    backup_codes: Vec<String>,
}

async fn enrolled(base: &TestApp, email: &str) -> Enrolled {
    let mut client = base.new_client();
    let user_id = client.signed_up(email).await["user"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let en = client
        .post("/two-factor/enable", json!({ "password": PASSWORD }))
        .await;
    assert_eq!(en.status, StatusCode::OK, "{}", en.text());
    let body = en.json();
    let mut app = Authenticator::from_uri(body["totpURI"].as_str().unwrap());
    let backup_codes: Vec<String> = serde_json::from_value(body["backupCodes"].clone()).unwrap();
    let v = client
        .post("/two-factor/verify-totp", json!({ "code": app.next() }))
        .await;
    assert_eq!(v.status, StatusCode::OK, "{}", v.text());
    Enrolled {
        client,
        email: email.into(),
        user_id,
        app,
        backup_codes,
    }
}

/// A new browser signs in with the password and gets the challenge.
async fn challenged(base: &TestApp, email: &str) -> (TestApp, TestResponse) {
    let mut c = base.new_client();
    let res = c.sign_in(email, PASSWORD).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    assert_eq!(res.json()["twoFactorRedirect"], true, "{}", res.text());
    (c, res)
}

/// A browser that completed a challenge with `trustDevice: true`: its trust cookie.
async fn trusted_device(base: &TestApp, e: &mut Enrolled) -> String {
    let (mut b, _) = challenged(base, &e.email).await;
    let done = b
        .post(
            "/two-factor/verify-totp",
            json!({ "code": e.app.next(), "trustDevice": true }),
        )
        .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.text());
    done.set_cookie(TRUST_DEVICE).unwrap()
}

/// Backdates every verification row whose identifier starts with `prefix`.
async fn expire_verifications(app: &TestApp, prefix: &str) {
    app.auth
        .adapter()
        .update_many(
            "verification",
            &[Where::new(
                "identifier",
                portcullis::storage::Op::StartsWith,
                prefix,
            )],
            Row::new().with("expiresAt", portcullis_tests::seconds_from_now(-1)),
        )
        .await
        .unwrap();
}

async fn session_count(app: &TestApp, user_id: &str) -> u64 {
    app.auth
        .adapter()
        .count("session", &[Where::eq("userId", user_id)])
        .await
        .unwrap()
}

#[tokio::test]
async fn enrolling_an_authenticator_takes_the_password_and_a_first_code() {
    let (base, _) = app().await;
    let mut c = base.new_client();
    let signed_up = c.signed_up("enrol@example.com").await;
    assert_eq!(signed_up["user"]["twoFactorEnabled"], false);

    let wrong = c
        .post(
            "/two-factor/enable",
            json!({ "password": "not-the-password" }),
        )
        .await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST);
    assert_eq!(wrong.code().as_deref(), Some("INVALID_PASSWORD"));

    let en = c
        .post("/two-factor/enable", json!({ "password": PASSWORD }))
        .await;
    assert_eq!(en.status, StatusCode::OK, "{}", en.text());
    let body = en.json();
    let uri = body["totpURI"].as_str().unwrap();
    assert!(
        uri.starts_with("otpauth://totp/Portcullis:enrol%40example.com?secret="),
        "{uri}"
    );
    assert!(
        uri.ends_with("&issuer=Portcullis&digits=6&period=30"),
        "{uri}"
    );
    let codes = body["backupCodes"].as_array().unwrap();
    assert_eq!(codes.len(), 10);
    assert!(codes
        .iter()
        .all(|c| c.as_str().unwrap().len() == 11 && &c.as_str().unwrap()[5..6] == "-"));

    // Not on until a code proves the app has the secret.
    assert_eq!(c.session().await["user"]["twoFactorEnabled"], false);
    let mut app = Authenticator::from_uri(uri);
    let bad = c
        .post("/two-factor/verify-totp", json!({ "code": app.wrong() }))
        .await;
    assert_eq!(bad.status, StatusCode::UNAUTHORIZED);
    assert_eq!(bad.code().as_deref(), Some("INVALID_CODE"));
    assert_eq!(c.session().await["user"]["twoFactorEnabled"], false);

    let old_token = c.session_token().unwrap();
    let ok = c
        .post("/two-factor/verify-totp", json!({ "code": app.next() }))
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text());
    // Turning two-factor on replaces the session.
    let new_token = c.session_token().unwrap();
    assert_ne!(new_token, old_token);
    assert_eq!(ok.json()["token"], new_token.as_str());
    assert_eq!(ok.json()["user"]["twoFactorEnabled"], true);
    let s = c.session().await;
    assert_eq!(s["user"]["twoFactorEnabled"], true);
    let mut stale = base.new_client();
    let stale_cookie = stale.cookie_for_token(&old_token);
    stale.jar.apply(&stale_cookie);
    assert_eq!(
        stale.session().await,
        Value::Null,
        "the old session is gone"
    );

    // Enabling again once confirmed is refused; the URI stays available with the password.
    let again = c
        .post("/two-factor/enable", json!({ "password": PASSWORD }))
        .await;
    assert_eq!(again.code().as_deref(), Some("TOTP_ALREADY_ENABLED"));
    let uri_again = c
        .post("/two-factor/get-totp-uri", json!({ "password": PASSWORD }))
        .await;
    assert_eq!(uri_again.status, StatusCode::OK);
    assert_eq!(uri_again.json()["totpURI"], uri);
    let uri_bad = c
        .post(
            "/two-factor/get-totp-uri",
            json!({ "password": "nope-nope-nope" }),
        )
        .await;
    assert_eq!(uri_bad.code().as_deref(), Some("INVALID_PASSWORD"));
}

#[tokio::test]
async fn the_secret_and_backup_codes_are_encrypted_at_rest() {
    let (base, _) = app().await;
    let e = enrolled(&base, "rest@example.com").await;
    let row = base
        .auth
        .adapter()
        .find_one("twoFactor", &[Where::eq("userId", e.user_id.as_str())])
        .await
        .unwrap()
        .unwrap()
        .to_json();
    let secret = row["secret"].as_str().unwrap();
    let codes = row["backupCodes"].as_str().unwrap();
    assert!(secret.bytes().all(|b| b.is_ascii_hexdigit()));
    assert!(!codes.contains(&e.backup_codes[0]));
    // The plaintext is Better Auth's: a 32-character secret whose bytes are the TOTP key,
    // and a JSON list of the codes.
    let plain = base.auth.secret().decrypt(secret).unwrap();
    assert_eq!(plain.len(), 32);
    assert_eq!(e.app.totp.secret, plain.as_bytes());
    let listed: Vec<String> =
        serde_json::from_str(&base.auth.secret().decrypt(codes).unwrap()).unwrap();
    assert_eq!(listed, e.backup_codes);
    assert_eq!(
        base.auth.api().view_backup_codes(&e.user_id).await.unwrap(),
        e.backup_codes
    );
    // Never in API output.
    let mut c = e.client;
    let user = c.session().await["user"].clone();
    assert!(user.get("secret").is_none() && user.get("backupCodes").is_none());
}

#[tokio::test]
async fn a_password_sign_in_of_a_two_factor_user_is_only_a_challenge() {
    let (base, _) = app().await;
    let mut e = enrolled(&base, "challenge@example.com").await;
    let before = session_count(&base, &e.user_id).await;

    let (mut b, res) = challenged(&base, &e.email).await;
    let body = res.json();
    assert_eq!(
        body,
        json!({ "twoFactorRedirect": true, "twoFactorMethods": ["totp", "otp"] })
    );
    assert!(res.expires_cookie(SESSION), "no live session cookie");
    let tf = res.set_cookie(TWO_FACTOR).unwrap();
    assert!(
        tf.contains("Max-Age=600") && tf.contains("HttpOnly"),
        "{tf}"
    );
    assert_eq!(b.session().await, Value::Null, "not signed in yet");
    assert_eq!(
        session_count(&base, &e.user_id).await,
        before,
        "the sign-in's session was deleted"
    );

    let done = b
        .post("/two-factor/verify-totp", json!({ "code": e.app.next() }))
        .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.text());
    assert_eq!(done.json()["user"]["id"], e.user_id.as_str());
    assert_eq!(done.json()["token"], b.session_token().unwrap().as_str());
    assert!(done.expires_cookie(TWO_FACTOR));
    assert_eq!(b.session().await["user"]["id"], e.user_id.as_str());

    // The challenge cookie is single-use.
    let mut replay = base.new_client();
    replay.jar.apply(&tf);
    let again = replay
        .post("/two-factor/verify-totp", json!({ "code": e.app.next() }))
        .await;
    assert_eq!(again.status, StatusCode::UNAUTHORIZED);
    assert_eq!(again.code().as_deref(), Some("INVALID_TWO_FACTOR_COOKIE"));
}

#[tokio::test]
async fn a_totp_code_is_accepted_once() {
    let (base, _) = app().await;
    let mut e = enrolled(&base, "replay@example.com").await;
    let (mut b, _) = challenged(&base, &e.email).await;
    let code = e.app.next();
    let first = b
        .post("/two-factor/verify-totp", json!({ "code": code }))
        .await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text());

    // The same code (seen over a shoulder) in another challenge, inside its 30 seconds.
    let (mut c, _) = challenged(&base, &e.email).await;
    let replay = c
        .post("/two-factor/verify-totp", json!({ "code": e.app.last() }))
        .await;
    assert_eq!(replay.status, StatusCode::UNAUTHORIZED);
    assert_eq!(replay.code().as_deref(), Some("INVALID_CODE"));
    assert_eq!(c.session().await, Value::Null);
}

#[tokio::test]
async fn verifying_without_a_challenge_or_with_a_forged_one_is_refused() {
    let (base, _) = app().await;
    let mut e = enrolled(&base, "forged@example.com").await;

    let mut nobody = base.new_client();
    let r = nobody
        .post("/two-factor/verify-totp", json!({ "code": "123456" }))
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.code().as_deref(), Some("INVALID_TWO_FACTOR_COOKIE"));
    for path in [
        "/two-factor/verify-otp",
        "/two-factor/verify-backup-code",
        "/two-factor/send-otp",
    ] {
        let r = nobody.post(path, json!({ "code": "123456" })).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(
            r.code().as_deref(),
            Some("INVALID_TWO_FACTOR_COOKIE"),
            "{path}"
        );
    }

    // A challenge id with a made-up signature.
    let (b, res) = challenged(&base, &e.email).await;
    let cookie = res.set_cookie(TWO_FACTOR).unwrap();
    let value = cookie.split(';').next().unwrap().split_once('=').unwrap().1;
    let id = percent_encoding::percent_decode_str(value)
        .decode_utf8()
        .unwrap()
        .rsplit_once('.')
        .unwrap()
        .0
        .to_owned();
    let mut forger = base.new_client();
    forger
        .jar
        .set(TWO_FACTOR, &format!("{id}.{}", "A".repeat(43) + "="));
    let r = forger
        .post("/two-factor/verify-totp", json!({ "code": e.app.next() }))
        .await;
    assert_eq!(r.code().as_deref(), Some("INVALID_TWO_FACTOR_COOKIE"));
    drop(b);
}

#[tokio::test]
async fn a_challenge_cookie_of_another_user_does_not_take_this_users_codes() {
    let (base, _) = app().await;
    let mut alice = enrolled(&base, "alice2fa@example.com").await;
    let mut bob = enrolled(&base, "bob2fa@example.com").await;
    let (_, res) = challenged(&base, &alice.email).await;
    let alice_cookie = res.set_cookie(TWO_FACTOR).unwrap();

    // Bob replays Alice's challenge cookie with his own authenticator.
    let mut mallory = base.new_client();
    mallory.jar.apply(&alice_cookie);
    let r = mallory
        .post("/two-factor/verify-totp", json!({ "code": bob.app.next() }))
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.code().as_deref(), Some("INVALID_CODE"));
    let r = mallory
        .post(
            "/two-factor/verify-backup-code",
            json!({ "code": bob.backup_codes[0] }),
        )
        .await;
    assert_eq!(r.code().as_deref(), Some("INVALID_BACKUP_CODE"));
    assert_eq!(mallory.session().await, Value::Null);
    // Alice's own code still completes her sign-in.
    let ok = mallory
        .post(
            "/two-factor/verify-totp",
            json!({ "code": alice.app.next() }),
        )
        .await;
    assert_eq!(ok.json()["user"]["id"], alice.user_id.as_str());
}

#[tokio::test]
async fn backup_codes_complete_a_sign_in_once_each_and_can_be_replaced() {
    let (base, _) = app().await;
    let mut e = enrolled(&base, "backup@example.com").await;

    let (mut b, _) = challenged(&base, &e.email).await;
    let wrong = b
        .post(
            "/two-factor/verify-backup-code",
            json!({ "code": "aaaaa-bbbbb" }),
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong.code().as_deref(), Some("INVALID_BACKUP_CODE"));
    let ok = b
        .post(
            "/two-factor/verify-backup-code",
            json!({ "code": e.backup_codes[0] }),
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text());
    assert_eq!(b.session().await["user"]["id"], e.user_id.as_str());

    let (mut c, _) = challenged(&base, &e.email).await;
    let reused = c
        .post(
            "/two-factor/verify-backup-code",
            json!({ "code": e.backup_codes[0] }),
        )
        .await;
    assert_eq!(reused.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reused.code().as_deref(), Some("INVALID_BACKUP_CODE"));
    let left = base.auth.api().view_backup_codes(&e.user_id).await.unwrap();
    assert_eq!(left, e.backup_codes[1..].to_vec());

    let bad_pw = e
        .client
        .post(
            "/two-factor/generate-backup-codes",
            json!({ "password": "wrong-password-x" }),
        )
        .await;
    assert_eq!(bad_pw.code().as_deref(), Some("INVALID_PASSWORD"));
    let regen = e
        .client
        .post(
            "/two-factor/generate-backup-codes",
            json!({ "password": PASSWORD }),
        )
        .await;
    assert_eq!(regen.status, StatusCode::OK, "{}", regen.text());
    let fresh: Vec<String> = serde_json::from_value(regen.json()["backupCodes"].clone()).unwrap();
    assert_eq!(fresh.len(), 10);
    let old = c
        .post(
            "/two-factor/verify-backup-code",
            json!({ "code": e.backup_codes[1] }),
        )
        .await;
    assert_eq!(
        old.code().as_deref(),
        Some("INVALID_BACKUP_CODE"),
        "old codes are void"
    );
    let new = c
        .post(
            "/two-factor/verify-backup-code",
            json!({ "code": fresh[0] }),
        )
        .await;
    assert_eq!(new.status, StatusCode::OK, "{}", new.text());
    let _ = e.app.next();
}

#[tokio::test]
async fn a_mailed_one_time_code_completes_the_sign_in() {
    let (base, mail) = app().await;
    let e = enrolled(&base, "otp@example.com").await;
    let (mut b, _) = challenged(&base, &e.email).await;
    let sent = b.post_empty("/two-factor/send-otp").await;
    assert_eq!(sent.status, StatusCode::OK, "{}", sent.text());
    assert_eq!(sent.json(), json!({ "status": true }));
    let msg = mail.wait_for("two-factor-otp", &e.email, 1).await;
    let otp = msg.otp.clone().unwrap();
    assert_eq!(otp.len(), 6);
    assert!(msg.text.contains(&otp) && msg.html.contains(&otp));

    let wrong = if otp == "000000" { "000001" } else { "000000" };
    let r = b
        .post("/two-factor/verify-otp", json!({ "code": wrong }))
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.code().as_deref(), Some("INVALID_CODE"));
    let ok = b
        .post("/two-factor/verify-otp", json!({ "code": otp }))
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text());
    assert_eq!(b.session().await["user"]["id"], e.user_id.as_str());

    // A code is single-use.
    let (mut c, _) = challenged(&base, &e.email).await;
    let r = c
        .post("/two-factor/verify-otp", json!({ "code": otp }))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.code().as_deref(), Some("OTP_HAS_EXPIRED"));
}

#[tokio::test]
async fn an_expired_or_overtried_one_time_code_is_dead() {
    let (base, mail) = app().await;
    let e = enrolled(&base, "otp-expiry@example.com").await;
    let (mut b, _) = challenged(&base, &e.email).await;
    b.post_empty("/two-factor/send-otp").await;
    let otp = mail
        .wait_for("two-factor-otp", &e.email, 1)
        .await
        .otp
        .unwrap();
    expire_verifications(&base, "2fa-otp-").await;
    let r = b
        .post("/two-factor/verify-otp", json!({ "code": otp }))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.code().as_deref(), Some("OTP_HAS_EXPIRED"));

    b.post_empty("/two-factor/send-otp").await;
    let otp = mail
        .wait_for("two-factor-otp", &e.email, 2)
        .await
        .otp
        .unwrap();
    let wrong = if otp == "000000" { "000001" } else { "000000" };
    for _ in 0..5 {
        let r = b
            .post("/two-factor/verify-otp", json!({ "code": wrong }))
            .await;
        assert_eq!(r.code().as_deref(), Some("INVALID_CODE"));
    }
    let r = b
        .post("/two-factor/verify-otp", json!({ "code": otp }))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        r.code().as_deref(),
        Some("TOO_MANY_ATTEMPTS_REQUEST_NEW_CODE")
    );
    assert_eq!(b.session().await, Value::Null);
}

#[tokio::test]
async fn a_challenge_allows_five_wrong_codes_then_ends() {
    let (base, _) = app().await;
    let mut e = enrolled(&base, "budget@example.com").await;
    let (mut b, _) = challenged(&base, &e.email).await;
    let wrong = e.app.wrong();
    for _ in 0..5 {
        let r = b
            .post("/two-factor/verify-totp", json!({ "code": wrong }))
            .await;
        assert_eq!(r.code().as_deref(), Some("INVALID_CODE"));
    }
    let r = b
        .post("/two-factor/verify-totp", json!({ "code": e.app.next() }))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        r.code().as_deref(),
        Some("TOO_MANY_ATTEMPTS_REQUEST_NEW_CODE")
    );
    assert!(r.expires_cookie(TWO_FACTOR));
    let r = b
        .post("/two-factor/verify-totp", json!({ "code": e.app.next() }))
        .await;
    assert_eq!(r.code().as_deref(), Some("INVALID_TWO_FACTOR_COOKIE"));
}

#[tokio::test]
async fn repeated_failures_lock_the_second_factor_for_a_while() {
    let (base, _) = app_with(TwoFactor::default().send_otp_by_email(true).options(|o| {
        o.account_lockout.max_failed_attempts = 3;
    }))
    .await;
    let mut e = enrolled(&base, "lockout@example.com").await;
    let wrong = e.app.wrong();
    // Failures count across challenges.
    for _ in 0..2 {
        let (mut b, _) = challenged(&base, &e.email).await;
        let r = b
            .post("/two-factor/verify-totp", json!({ "code": wrong }))
            .await;
        assert_eq!(r.code().as_deref(), Some("INVALID_CODE"));
        let r = b
            .post("/two-factor/verify-totp", json!({ "code": wrong }))
            .await;
        if r.status == StatusCode::TOO_MANY_REQUESTS {
            break;
        }
    }
    let (mut b, _) = challenged(&base, &e.email).await;
    let r = b
        .post("/two-factor/verify-totp", json!({ "code": e.app.peek() }))
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text());
    assert_eq!(r.code().as_deref(), Some("ACCOUNT_TEMPORARILY_LOCKED"));

    // When the lock runs out, the right code works again.
    base.auth
        .adapter()
        .update_many(
            "twoFactor",
            &[Where::eq("userId", e.user_id.as_str())],
            Row::new().with("lockedUntil", portcullis_tests::seconds_from_now(-1)),
        )
        .await
        .unwrap();
    let r = b
        .post("/two-factor/verify-totp", json!({ "code": e.app.next() }))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
}

#[tokio::test]
async fn a_trusted_device_skips_the_challenge_and_its_cookie_rotates() {
    let (base, _) = app().await;
    let mut e = enrolled(&base, "trust@example.com").await;
    let (mut b, _) = challenged(&base, &e.email).await;
    let done = b
        .post(
            "/two-factor/verify-totp",
            json!({ "code": e.app.next(), "trustDevice": true }),
        )
        .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.text());
    let trust = done.set_cookie(TRUST_DEVICE).unwrap();
    assert!(
        trust.contains("Max-Age=2592000") && trust.contains("HttpOnly"),
        "{trust}"
    );

    // Same browser, later: signs out and in again without a second factor.
    b.post_empty("/sign-out").await;
    let again = b.sign_in(&e.email, PASSWORD).await;
    assert_eq!(again.status, StatusCode::OK);
    assert!(again.json()["token"].is_string(), "{}", again.text());
    assert_eq!(b.session().await["user"]["id"], e.user_id.as_str());
    let rotated = again.set_cookie(TRUST_DEVICE).unwrap();
    assert_ne!(rotated, trust, "the trust cookie is rotated on use");

    // A copy of the old cookie elsewhere is worth nothing.
    let mut thief = base.new_client();
    thief.jar.apply(&trust);
    let r = thief.sign_in(&e.email, PASSWORD).await;
    assert_eq!(r.json()["twoFactorRedirect"], true);
    assert!(r.expires_cookie(TRUST_DEVICE));

    // A trust cookie is bound to its user.
    let mut other = enrolled(&base, "trust-other@example.com").await;
    let mut o = base.new_client();
    o.jar.apply(&rotated);
    let r = o.sign_in(&other.email, PASSWORD).await;
    assert_eq!(r.json()["twoFactorRedirect"], true);
    let _ = other.app.next();
}

#[tokio::test]
async fn disabling_two_factor_takes_the_password_and_forgets_trusted_devices() {
    let (base, _) = app().await;
    let mut e = enrolled(&base, "disable@example.com").await;
    let trust = trusted_device(&base, &mut e).await;

    let bad = e
        .client
        .post(
            "/two-factor/disable",
            json!({ "password": "wrong-password-y" }),
        )
        .await;
    assert_eq!(bad.code().as_deref(), Some("INVALID_PASSWORD"));
    let old_token = e.client.session_token().unwrap();
    let off = e
        .client
        .post("/two-factor/disable", json!({ "password": PASSWORD }))
        .await;
    assert_eq!(off.status, StatusCode::OK, "{}", off.text());
    assert_eq!(off.json(), json!({ "status": true }));
    assert_ne!(
        e.client.session_token().unwrap(),
        old_token,
        "session rotated"
    );
    assert_eq!(e.client.session().await["user"]["twoFactorEnabled"], false);
    let twofactor_rows = base
        .auth
        .adapter()
        .count("twoFactor", &[Where::eq("userId", e.user_id.as_str())])
        .await
        .unwrap();
    assert_eq!(twofactor_rows, 0, "secret and backup codes deleted");

    let mut d = base.new_client();
    let r = d.sign_in(&e.email, PASSWORD).await;
    assert!(r.json()["token"].is_string(), "{}", r.text());

    // Re-enabled later: the device trusted before is not trusted any more.
    let en = e
        .client
        .post("/two-factor/enable", json!({ "password": PASSWORD }))
        .await;
    let mut app = Authenticator::from_uri(en.json()["totpURI"].as_str().unwrap());
    let v = e
        .client
        .post("/two-factor/verify-totp", json!({ "code": app.next() }))
        .await;
    assert_eq!(v.status, StatusCode::OK);
    let mut old_device = base.new_client();
    old_device.jar.apply(&trust);
    let r = old_device.sign_in(&e.email, PASSWORD).await;
    assert_eq!(r.json()["twoFactorRedirect"], true);
}

#[tokio::test]
async fn signing_out_everywhere_forgets_trusted_devices() {
    let (base, _) = app().await;
    let mut e = enrolled(&base, "revoke@example.com").await;
    let trust = trusted_device(&base, &mut e).await;
    let r = e.client.post_empty("/revoke-sessions").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let mut device = base.new_client();
    device.jar.apply(&trust);
    let r = device.sign_in(&e.email, PASSWORD).await;
    assert_eq!(r.json()["twoFactorRedirect"], true);
}

#[tokio::test]
async fn remember_me_false_survives_the_challenge() {
    let (base, _) = app().await;
    let mut e = enrolled(&base, "remember@example.com").await;
    let mut b = base.new_client();
    let r = b
        .post(
            "/sign-in/email",
            json!({ "email": e.email, "password": PASSWORD, "rememberMe": false }),
        )
        .await;
    assert_eq!(r.json()["twoFactorRedirect"], true);
    let done = b
        .post("/two-factor/verify-totp", json!({ "code": e.app.next() }))
        .await;
    let cookie = done.set_cookie(SESSION).unwrap();
    assert!(
        !cookie.contains("Max-Age"),
        "a browser-session cookie: {cookie}"
    );
}

#[tokio::test]
async fn one_time_codes_alone_can_be_the_second_factor() {
    let (base, mail) = app().await;
    let mut c = base.new_client();
    let email = "otp-only@example.com";
    c.signed_up(email).await;
    let en = c
        .post(
            "/two-factor/enable",
            json!({ "password": PASSWORD, "method": "otp" }),
        )
        .await;
    assert_eq!(en.status, StatusCode::OK, "{}", en.text());
    assert_eq!(en.json(), json!({ "method": "otp" }));
    assert_eq!(c.session().await["user"]["twoFactorEnabled"], true);

    let (mut b, res) = challenged(&base, email).await;
    assert_eq!(res.json()["twoFactorMethods"], json!(["otp"]));
    b.post_empty("/two-factor/send-otp").await;
    let otp = mail.wait_for("two-factor-otp", email, 1).await.otp.unwrap();
    let ok = b
        .post("/two-factor/verify-otp", json!({ "code": otp }))
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text());
    let r = b
        .post("/two-factor/verify-totp", json!({ "code": "123456" }))
        .await;
    assert_eq!(r.code().as_deref(), Some("TOTP_NOT_ENABLED"));
}

#[tokio::test]
async fn mail_is_not_a_second_factor_unless_the_application_says_so() {
    // The engine can send mail, but whoever reads the mailbox can also reset the password:
    // one-time codes by mail stay off until asked for.
    let (base, mail) = app_with(TwoFactor::default()).await;
    let mut e = enrolled(&base, "totp-only@example.com").await;
    let (mut b, res) = challenged(&base, &e.email).await;
    assert_eq!(res.json()["twoFactorMethods"], json!(["totp"]));
    let r = b.post_empty("/two-factor/send-otp").await;
    assert_eq!(r.code().as_deref(), Some("OTP_NOT_CONFIGURED"));
    assert!(mail.to("two-factor-otp", &e.email).is_empty());
    let _ = e.app.next();
}

#[tokio::test]
async fn without_a_way_to_send_codes_otp_is_not_offered() {
    let plugin = TwoFactor::default().send_otp_by_email(true);
    let base = TestApp::build(move |b| b.plugin(plugin)).await;
    let mut e = enrolled(&base, "no-mail@example.com").await;
    let (mut b, res) = challenged(&base, &e.email).await;
    assert_eq!(res.json()["twoFactorMethods"], json!(["totp"]));
    let r = b.post_empty("/two-factor/send-otp").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.code().as_deref(), Some("OTP_NOT_CONFIGURED"));
    let _ = e.app.next();
}

#[tokio::test]
async fn an_application_callback_can_deliver_codes() {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(String, String)>();
    let plugin = TwoFactor::default().send_otp(move |d| {
        let tx = tx.clone();
        async move { tx.send((d.user.email, d.otp)).map_err(|e| e.to_string()) }
    });
    let base = TestApp::build(move |b| b.plugin(plugin)).await;
    let e = enrolled(&base, "sms@example.com").await;
    let (mut b, res) = challenged(&base, &e.email).await;
    assert_eq!(res.json()["twoFactorMethods"], json!(["totp", "otp"]));
    b.post_empty("/two-factor/send-otp").await;
    let (to, otp) = rx.recv().await.unwrap();
    assert_eq!(to, e.email);
    let ok = b
        .post("/two-factor/verify-otp", json!({ "code": otp }))
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text());
}

#[tokio::test]
async fn skip_verification_on_enable_turns_two_factor_on_at_once() {
    let (base, _) = app_with(
        TwoFactor::default()
            .send_otp_by_email(true)
            .skip_verification_on_enable(true),
    )
    .await;
    let mut c = base.new_client();
    c.signed_up("skip@example.com").await;
    let en = c
        .post("/two-factor/enable", json!({ "password": PASSWORD }))
        .await;
    assert_eq!(en.status, StatusCode::OK, "{}", en.text());
    assert_eq!(c.session().await["user"]["twoFactorEnabled"], true);
    let (_, res) = challenged(&base, "skip@example.com").await;
    assert_eq!(res.json()["twoFactorMethods"], json!(["totp", "otp"]));
}

#[tokio::test]
async fn management_endpoints_need_a_session() {
    let (base, _) = app().await;
    let mut nobody = base.new_client();
    for path in [
        "/two-factor/enable",
        "/two-factor/disable",
        "/two-factor/get-totp-uri",
        "/two-factor/generate-backup-codes",
    ] {
        let r = nobody.post(path, json!({ "password": PASSWORD })).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{path}: {}", r.text());
    }
    // Server-only endpoints are not routed.
    let r = nobody
        .post("/two-factor/view-backup-codes", json!({ "userId": "x" }))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_plugin_registers_its_rate_limit() {
    let mail = MailSink::new();
    let base = TestApp::build(move |b| {
        b.plugin(TwoFactor::default())
            .email_sender(mail)
            .options(|o| o.rate_limit.enabled = true)
    })
    .await;
    let mut c = base.new_client();
    let statuses: Vec<u16> = {
        let mut v = Vec::new();
        for _ in 0..4 {
            let r = c
                .post("/two-factor/verify-totp", json!({ "code": "123456" }))
                .await;
            v.push(r.status.as_u16());
        }
        v
    };
    assert_eq!(statuses, [401, 401, 401, 429]);
}

/// A third party's plugin, written only against the public plugin API: it watches
/// `/two-factor/verify-totp` from an after hook, and serves a passwordless sign-in of its own
/// (as a magic link would) that two-factor must not challenge.
struct Audit {
    seen: Seen,
}

/// What the audit plugin saw: status, and the user id or error code.
type Seen = std::sync::Arc<std::sync::Mutex<Vec<(u16, Option<String>)>>>;

impl portcullis::Plugin for Audit {
    fn id(&self) -> &'static str {
        "audit"
    }

    fn hooks(&self) -> Vec<portcullis::Hook> {
        let seen = self.seen.clone();
        vec![portcullis::Hook::after(
            portcullis::Matcher::Path("/two-factor/verify-totp".into()),
            move |_ctx, result: Result<portcullis::Reply, portcullis::ApiError>| {
                let seen = seen.clone();
                async move {
                    let entry = match &result {
                        Ok(reply) => (
                            reply.status().as_u16(),
                            reply
                                .json_body()
                                .and_then(|b| b["user"]["id"].as_str())
                                .map(str::to_owned),
                        ),
                        Err(e) => (e.status().as_u16(), e.code().map(str::to_owned)),
                    };
                    seen.lock().unwrap().push(entry);
                    let mut reply = result?;
                    reply
                        .headers_mut()
                        .insert("x-audited", http::HeaderValue::from_static("yes"));
                    Ok(reply)
                }
            },
        )]
    }

    fn endpoints(&self) -> Vec<portcullis::Endpoint> {
        vec![
            portcullis::Endpoint::post("signInTrusted", "/sign-in/trusted-link", link_sign_in)
                .login(),
        ]
    }
}

#[tokio::test]
async fn another_plugin_observes_and_decorates_two_factor_results() {
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let audit = Audit { seen: seen.clone() };
    let base = TestApp::build(move |b| {
        b.plugin(TwoFactor::default().send_otp_by_email(true))
            .plugin(audit)
    })
    .await;
    let mut e = enrolled(&base, "audited@example.com").await;
    let (mut b, _) = challenged(&base, &e.email).await;
    let wrong = b
        .post("/two-factor/verify-totp", json!({ "code": e.app.wrong() }))
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    let ok = b
        .post("/two-factor/verify-totp", json!({ "code": e.app.next() }))
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text());
    assert_eq!(ok.header("x-audited"), Some("yes"));
    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        seen,
        vec![
            (200, Some(e.user_id.clone())),
            (401, Some("INVALID_CODE".to_owned())),
            (200, Some(e.user_id.clone())),
        ],
        "enrolment, the wrong code, the sign-in"
    );

    // Another plugin's sign-in is challenged too (Better Auth challenges only password
    // sign-in), and the other plugin's after hook sees the challenge.
    let mut m = base.new_client();
    let r = m
        .post("/sign-in/trusted-link", json!({ "email": e.email }))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["twoFactorRedirect"], true);
    assert!(m.session().await.is_null());
}

#[tokio::test]
async fn a_user_who_enabled_two_factor_on_better_auth_signs_in_here() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let vector: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("better-auth-two-factor.json")).unwrap(),
    )
    .unwrap();
    let email = vector["email"].as_str().unwrap();
    let password = vector["password"].as_str().unwrap();
    let codes: Vec<String> = serde_json::from_value(vector["backupCodes"].clone()).unwrap();
    let mut app = Authenticator::from_uri(vector["totpURI"].as_str().unwrap());
    let base = TestApp::on_copy_of(&dir.join("better-auth-two-factor.db"), |b| {
        b.plugin(TwoFactor::default().issuer("Vector App"))
    })
    .await;

    let mut c = base.new_client();
    let r = c.sign_in(email, password).await;
    assert_eq!(
        r.json(),
        json!({ "twoFactorRedirect": true, "twoFactorMethods": ["totp"] }),
        "Better Auth's twoFactor row and user flag are read as they are"
    );
    // The secret Better Auth encrypted decrypts here: its code completes the sign-in.
    let ok = c
        .post("/two-factor/verify-totp", json!({ "code": app.next() }))
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text());
    let user_id = ok.json()["user"]["id"].as_str().unwrap().to_owned();
    // So do its backup codes.
    assert_eq!(
        base.auth.api().view_backup_codes(&user_id).await.unwrap(),
        codes
    );
    let mut d = base.new_client();
    d.sign_in(email, password).await;
    let r = d
        .post(
            "/two-factor/verify-backup-code",
            json!({ "code": codes[3] }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    // The URI shown again is the one Better Auth showed.
    let uri = c
        .post("/two-factor/get-totp-uri", json!({ "password": password }))
        .await;
    assert_eq!(uri.json()["totpURI"], vector["totpURI"]);
}

#[tokio::test]
async fn the_cookie_cache_never_carries_a_challenged_sign_in() {
    let mail = MailSink::new();
    let base = TestApp::build(move |b| {
        b.plugin(TwoFactor::default().send_otp_by_email(true))
            .email_sender(mail)
            .options(|o| o.session.cookie_cache.enabled = true)
    })
    .await;
    let mut e = enrolled(&base, "cached@example.com").await;
    let (mut b, res) = challenged(&base, &e.email).await;
    let data = "better-auth.session_data";
    assert!(res.expires_cookie(data), "{:?}", res.set_cookies());
    assert!(
        res.set_cookies()
            .iter()
            .filter(|c| c.starts_with(data))
            .all(|c| c.contains("Max-Age=0")),
        "no live cache cookie or chunk: {:?}",
        res.set_cookies()
    );
    assert_eq!(b.session().await, Value::Null);
    let done = b
        .post("/two-factor/verify-totp", json!({ "code": e.app.next() }))
        .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.text());
    assert!(done
        .set_cookie(data)
        .is_some_and(|c| !c.contains("Max-Age=0")));
    assert_eq!(b.session().await["user"]["twoFactorEnabled"], true);
}

#[tokio::test]
async fn two_right_answers_racing_for_one_challenge_make_one_session() {
    let (base, _) = app().await;
    let e = enrolled(&base, "race@example.com").await;
    let (b, res) = challenged(&base, &e.email).await;
    let cookie = res.set_cookie(TWO_FACTOR).unwrap();
    let mut x = base.new_client();
    let mut y = base.new_client();
    x.jar.apply(&cookie);
    y.jar.apply(&cookie);
    let (rx, ry) = tokio::join!(
        x.post(
            "/two-factor/verify-backup-code",
            json!({ "code": e.backup_codes[0] })
        ),
        y.post(
            "/two-factor/verify-backup-code",
            json!({ "code": e.backup_codes[1] })
        ),
    );
    let ok = [&rx, &ry]
        .iter()
        .filter(|r| r.status == StatusCode::OK)
        .count();
    assert_eq!(ok, 1, "{} / {}", rx.text(), ry.text());
    let before = session_count(&base, &e.user_id).await;
    assert_eq!(before, 2, "the enrolling session and exactly one new one");
    drop(b);
}

#[tokio::test]
async fn an_expired_challenge_is_refused() {
    let (base, _) = app().await;
    let mut e = enrolled(&base, "stale-challenge@example.com").await;
    let (mut b, _) = challenged(&base, &e.email).await;
    expire_verifications(&base, "2fa-").await;
    let r = b
        .post("/two-factor/verify-totp", json!({ "code": e.app.next() }))
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.code().as_deref(), Some("INVALID_TWO_FACTOR_COOKIE"));
}

#[tokio::test]
async fn a_backup_code_checked_with_disable_session_signs_nobody_in() {
    let (base, _) = app().await;
    let mut e = enrolled(&base, "check-only@example.com").await;
    let (mut b, _) = challenged(&base, &e.email).await;
    let r = b
        .post(
            "/two-factor/verify-backup-code",
            json!({ "code": e.backup_codes[0], "disableSession": true }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert!(r.json().get("token").is_none(), "{}", r.text());
    assert_eq!(r.json()["user"]["id"], e.user_id.as_str());
    assert!(r.set_cookie(SESSION).is_none());
    assert_eq!(b.session().await, Value::Null);
    // The code is spent; the challenge is still open for a real second factor.
    let again = b
        .post(
            "/two-factor/verify-backup-code",
            json!({ "code": e.backup_codes[0] }),
        )
        .await;
    assert_eq!(again.code().as_deref(), Some("INVALID_BACKUP_CODE"));
    let ok = b
        .post("/two-factor/verify-totp", json!({ "code": e.app.next() }))
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text());
}

#[tokio::test]
async fn mailed_codes_draw_on_the_challenges_attempt_budget() {
    let (base, mail) = app().await;
    let e = enrolled(&base, "otp-budget@example.com").await;
    let (mut b, _) = challenged(&base, &e.email).await;
    // Asking for a new code after each wrong guess does not buy more guesses.
    for n in 1..=5 {
        b.post_empty("/two-factor/send-otp").await;
        let otp = mail
            .wait_for("two-factor-otp", &e.email, n)
            .await
            .otp
            .unwrap();
        let wrong = if otp == "000000" { "000001" } else { "000000" };
        let r = b
            .post("/two-factor/verify-otp", json!({ "code": wrong }))
            .await;
        assert_eq!(r.code().as_deref(), Some("INVALID_CODE"), "guess {n}");
    }
    b.post_empty("/two-factor/send-otp").await;
    let otp = mail
        .wait_for("two-factor-otp", &e.email, 6)
        .await
        .otp
        .unwrap();
    let r = b
        .post("/two-factor/verify-otp", json!({ "code": otp }))
        .await;
    assert_eq!(
        r.code().as_deref(),
        Some("TOO_MANY_ATTEMPTS_REQUEST_NEW_CODE")
    );
    assert_eq!(b.session().await, Value::Null);
}

#[tokio::test]
async fn a_row_from_before_the_verified_field_finishes_enrolment() {
    let (base, _) = app().await;
    let mut c = base.new_client();
    let id = c.signed_up("legacy-row@example.com").await["user"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let en = c
        .post("/two-factor/enable", json!({ "password": PASSWORD }))
        .await;
    let mut app = Authenticator::from_uri(en.json()["totpURI"].as_str().unwrap());
    base.auth
        .adapter()
        .update_many(
            "twoFactor",
            &[Where::eq("userId", id.as_str())],
            Row::new().with("verified", portcullis::storage::Value::Null),
        )
        .await
        .unwrap();
    let v = c
        .post("/two-factor/verify-totp", json!({ "code": app.next() }))
        .await;
    assert_eq!(v.status, StatusCode::OK, "{}", v.text());
    assert_eq!(c.session().await["user"]["twoFactorEnabled"], true);
}

#[tokio::test]
async fn impossible_options_are_refused_when_the_engine_is_built() {
    let built = portcullis::Auth::builder()
        .secret(portcullis_tests::SECRET)
        .database("sqlite::memory:")
        .plugin(TwoFactor::default().options(|o| o.totp.digits = 12))
        .build()
        .await;
    let err = built.err().unwrap().to_string();
    assert!(err.contains("totp.digits"), "{err}");
}

#[tokio::test]
async fn users_without_a_password_manage_two_factor_only_when_allowed() {
    for allowed in [false, true] {
        let (base, _) = app_with(TwoFactor::default().allow_passwordless(allowed)).await;
        let mut c = base.new_client();
        let id = c.signed_up(&format!("nopw-{allowed}@example.com")).await["user"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        // As if the user had signed up with a magic link or a social provider.
        base.auth
            .adapter()
            .delete_many("account", &[Where::eq("userId", id.as_str())])
            .await
            .unwrap();
        let r = c.post("/two-factor/enable", json!({})).await;
        if allowed {
            assert_eq!(r.status, StatusCode::OK, "{}", r.text());
            assert!(r.json()["totpURI"].is_string());
        } else {
            // Without allowPasswordless Better Auth's schema requires the field.
            assert_eq!(
                r.json()["message"],
                "[body.password] Invalid input: expected string, received undefined"
            );
        }
        // A user who has a password must still give it.
        let mut p = base.new_client();
        p.signed_up(&format!("haspw-{allowed}@example.com")).await;
        let r = p.post("/two-factor/enable", json!({})).await;
        // (Without allowPasswordless the schema already requires the field.)
        let expected = if allowed {
            "INVALID_PASSWORD"
        } else {
            "VALIDATION_ERROR"
        };
        assert_eq!(r.code().as_deref(), Some(expected), "allowed={allowed}");
    }
}

#[tokio::test]
async fn digits_period_and_issuer_are_options() {
    let (base, _) = app_with(TwoFactor::default().issuer("Acme Corp").options(|o| {
        o.totp.digits = 8;
        o.totp.period = 60;
        o.backup_codes.amount = 4;
        o.backup_codes.length = 12;
    }))
    .await;
    let mut c = base.new_client();
    c.signed_up("options@example.com").await;
    let en = c
        .post("/two-factor/enable", json!({ "password": PASSWORD }))
        .await;
    let body = en.json();
    let uri = body["totpURI"].as_str().unwrap();
    assert!(
        uri.starts_with("otpauth://totp/Acme%20Corp:options%40example.com?"),
        "{uri}"
    );
    assert!(
        uri.ends_with("&issuer=Acme+Corp&digits=8&period=60"),
        "{uri}"
    );
    let codes = body["backupCodes"].as_array().unwrap();
    assert_eq!(codes.len(), 4);
    assert!(codes.iter().all(|c| c.as_str().unwrap().len() == 13));
    let code = Authenticator::from_uri(uri).next();
    assert_eq!(code.len(), 8);
    let v = c
        .post("/two-factor/verify-totp", json!({ "code": code }))
        .await;
    assert_eq!(v.status, StatusCode::OK, "{}", v.text());

    // An issuer in the request wins for that enrolment.
    let mut d = base.new_client();
    d.signed_up("options2@example.com").await;
    let en = d
        .post(
            "/two-factor/enable",
            json!({ "password": PASSWORD, "issuer": "Team Space" }),
        )
        .await;
    let uri = en.json()["totpURI"].as_str().unwrap().to_owned();
    assert!(uri.starts_with("otpauth://totp/Team%20Space:"), "{uri}");
}

// --- the second factor on every sign-in path ------------------------------------------------

/// Two-factor with `configure`d options, and email verification that signs the user in.
async fn app_signing_in_by_link(configure: impl FnOnce(&mut TwoFactorOptions)) -> TestApp {
    let mut options = TwoFactorOptions::default();
    configure(&mut options);
    let plugin = TwoFactor::new(options);
    TestApp::build(move |b| {
        b.plugin(plugin)
            .plugin(LinkSignIn)
            .email_sender(MailSink::new())
            .options(|o| o.email_verification.auto_sign_in_after_verification = true)
    })
    .await
}

/// An enrolled user whose address is not verified yet, and a verification link's token.
async fn unverified_two_factor_user(app: &TestApp, email: &str) -> (Enrolled, String) {
    let e = enrolled(app, email).await;
    app.auth
        .store()
        .update_user(&e.user_id, Row::new().with("emailVerified", false))
        .await
        .unwrap();
    let token = app.auth.email_verification_token(email, Some(&e.user_id));
    (e, token)
}

fn assert_no_session_cookie(res: &TestResponse) {
    assert!(
        !res.set_cookies()
            .iter()
            .any(|c| c.starts_with(&format!("{SESSION}=")) && !c.contains("Max-Age=0")),
        "{:?}",
        res.set_cookies()
    );
}

#[tokio::test]
async fn an_email_verification_link_signs_a_two_factor_user_in_only_after_the_second_factor() {
    let app = app_signing_in_by_link(|_| {}).await;
    let (mut e, token) = unverified_two_factor_user(&app, "link@example.com").await;

    let mut browser = app.new_client();
    let res = browser.get(&format!("/verify-email?token={token}")).await;

    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    assert_eq!(res.json()["twoFactorRedirect"], true, "{}", res.text());
    assert_no_session_cookie(&res);
    assert!(res.set_cookie(TWO_FACTOR).is_some());
    assert!(browser.session().await.is_null());
    // The address is verified all the same; the session waits for the code.
    let user = app
        .auth
        .store()
        .user_by_id(&e.user_id)
        .await
        .unwrap()
        .unwrap();
    assert!(user.email_verified);
    let done = browser
        .post("/two-factor/verify-totp", json!({ "code": e.app.next() }))
        .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.text());
    assert_eq!(browser.session().await["user"]["id"], e.user_id.as_str());
}

#[tokio::test]
async fn a_links_redirect_goes_to_the_two_factor_page() {
    for (page, expected) in [
        (None, "/welcome?step=2&twoFactorRedirect=true"),
        (Some("/two-factor"), "/two-factor"),
    ] {
        let app = app_signing_in_by_link(|o| o.two_factor_page = page.map(str::to_owned)).await;
        let (_e, token) = unverified_two_factor_user(&app, "nav@example.com").await;
        let mut browser = app.new_client();
        let res = browser
            .get(&format!(
                "/verify-email?token={token}&callbackURL=%2Fwelcome%3Fstep%3D2"
            ))
            .await;
        assert_eq!(res.status, StatusCode::FOUND, "{}", res.text());
        assert_eq!(res.header("location"), Some(expected));
        assert_no_session_cookie(&res);
        assert!(res.set_cookie(TWO_FACTOR).is_some());
        assert!(browser.session().await.is_null());
    }
}

#[tokio::test]
async fn server_side_sign_ins_are_challenged_alike() {
    let app = app_signing_in_by_link(|_| {}).await;
    let (_e, token) = unverified_two_factor_user(&app, "api@example.com").await;

    let reply = app.auth.api().verify_email(&token).await.unwrap();

    assert!(reply.new_session().is_none());
    assert_eq!(reply.json_body().unwrap()["twoFactorRedirect"], true);
    assert!(!reply
        .set_cookies()
        .any(|c| c.starts_with(&format!("{SESSION}=")) && !c.contains("Max-Age=0")));
}

/// Sign-in endpoints of the application's own (stand-ins for any plugin's: each signs the
/// user named in the body in), at the paths of a plugin's link, a passkey and a social
/// callback.
struct LinkSignIn;

const SIGN_INS: [(&str, &str); 3] = [
    ("customLinkSignIn", "/sign-in/custom-link"),
    ("passkeySignIn", "/passkey/verify-authentication"),
    ("socialCallback", "/callback/:id"),
];

impl portcullis::Plugin for LinkSignIn {
    fn id(&self) -> &'static str {
        "link-sign-in"
    }

    fn endpoints(&self) -> Vec<portcullis::Endpoint> {
        SIGN_INS
            .into_iter()
            .map(|(name, path)| portcullis::Endpoint::post(name, path, link_sign_in).server_only())
            .collect()
    }
}

async fn link_sign_in(ctx: portcullis::Ctx) -> Result<portcullis::Reply, portcullis::ApiError> {
    let email = ctx
        .body_json()
        .and_then(|b| b["email"].as_str())
        .unwrap_or_default();
    let auth = ctx.auth();
    let user = ctx
        .store()
        .user_by_email(email)
        .await?
        .ok_or_else(portcullis::ApiError::unauthorized)?;
    let session = auth
        .create_session(ctx.store(), &ctx, &user.id, false)
        .await?;
    let body = json!({ "token": session.token, "user": user });
    Ok(auth.signed_in_reply(&ctx, body, session, user, false))
}

/// Which of [`SIGN_INS`] hold a sign-in of `email` for the second factor.
async fn challenged_sign_ins(app: &TestApp, email: &str) -> Vec<&'static str> {
    let mut held = Vec::new();
    for (name, _) in SIGN_INS {
        let reply = app
            .auth
            .api()
            .call(
                portcullis::ApiRequest::new(name)
                    .param("id", "github")
                    .body(json!({ "email": email })),
            )
            .await
            .unwrap();
        let challenged = reply.json_body().unwrap()["twoFactorRedirect"] == true;
        assert_eq!(challenged, reply.new_session().is_none(), "{name}");
        if challenged {
            held.push(name);
        }
    }
    held
}

#[tokio::test]
async fn every_sign_in_path_is_challenged_but_passkeys_and_social_by_default() {
    let app = app_signing_in_by_link(|_| {}).await;
    enrolled(&app, "paths@example.com").await;
    assert_eq!(
        challenged_sign_ins(&app, "paths@example.com").await,
        ["customLinkSignIn"]
    );

    let app = app_signing_in_by_link(|o| {
        o.challenge.passkey = true;
        o.challenge.social = true;
    })
    .await;
    enrolled(&app, "paths@example.com").await;
    assert_eq!(
        challenged_sign_ins(&app, "paths@example.com").await,
        ["customLinkSignIn", "passkeySignIn", "socialCallback"]
    );
}

/// Better Auth's behaviour, as an option: only password sign-in is challenged.
#[tokio::test]
async fn challenging_only_password_sign_in_is_an_option() {
    let app = app_signing_in_by_link(|o| o.challenge.password_sign_in_only = true).await;
    let (e, token) = unverified_two_factor_user(&app, "legacy@example.com").await;
    assert!(challenged_sign_ins(&app, "legacy@example.com")
        .await
        .is_empty());
    let mut browser = app.new_client();
    let res = browser.get(&format!("/verify-email?token={token}")).await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(browser.session().await["user"]["id"], e.user_id.as_str());
    let (_, res) = challenged(&app, "legacy@example.com").await;
    assert_eq!(res.json()["twoFactorRedirect"], true);
}
