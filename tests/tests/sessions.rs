//! Sessions: `/get-session`, `/sign-out`, `/list-sessions`, `/revoke-session`,
//! `/revoke-sessions`, `/revoke-other-sessions`.

use std::time::Duration;

use http::{header, Method, StatusCode};
use http_body_util::Full;
use portcullis::storage::Where;
use portcullis::{DbHook, Model};
use portcullis_tests::{seconds_from_now, set_session_times, TestApp, DAY, PASSWORD};
use serde_json::json;

const TOKEN_COOKIE: &str = "better-auth.session_token";

// --- get-session -------------------------------------------------------------------------

#[tokio::test]
async fn get_session_without_a_cookie_is_null() {
    let mut app = TestApp::new().await;

    let res = app.get("/get-session").await;

    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.text(), "null");
    assert_eq!(res.header("cache-control"), Some("no-store"));
    assert_eq!(res.header("pragma"), Some("no-cache"));
    assert!(res.set_cookies().is_empty());
}

#[tokio::test]
async fn get_session_returns_the_session_and_user() {
    let mut app = TestApp::new().await;
    let signed_up = app.signed_up("me@example.com").await;

    let res = app.get("/get-session").await;

    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.header("cache-control"), Some("no-store"));
    let body = res.json();
    assert_eq!(body["user"], signed_up["user"]);
    let session = &body["session"];
    assert_eq!(session["token"], signed_up["token"]);
    assert_eq!(session["userId"], signed_up["user"]["id"]);
    for key in [
        "id",
        "expiresAt",
        "createdAt",
        "updatedAt",
        "ipAddress",
        "userAgent",
    ] {
        assert!(session.get(key).is_some(), "session.{key} missing");
    }
    // A fresh session is not refreshed, so no cookie is re-set.
    assert!(res.set_cookies().is_empty());
}

#[tokio::test]
async fn a_forged_cookie_signature_is_no_session() {
    let mut app = TestApp::new().await;
    app.signed_up("forge@example.com").await;
    let token = app.session_token().unwrap();
    let forger =
        portcullis::crypto::Secret::new("some-other-secret-that-is-long-enough!!").unwrap();
    let forged = portcullis::cookies::encode_uri_component(&forger.sign(&token)).into_owned();

    let mut attacker = app.new_client();
    attacker.jar.set(TOKEN_COOKIE, &forged);
    let res = attacker.get("/get-session").await;

    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.text(), "null");
    assert!(res.set_cookies().is_empty());
    // A bare token without any signature does not work either.
    let mut attacker = app.new_client();
    attacker.jar.set(TOKEN_COOKIE, &token);
    assert!(attacker.session().await.is_null());
}

#[tokio::test]
async fn a_signed_cookie_for_an_unknown_token_is_null_and_expires_the_cookies() {
    let mut app = TestApp::new().await;
    let cookie = app.cookie_for_token("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");

    let req = TestApp::request(Method::GET, "/get-session")
        .header(header::COOKIE, cookie)
        .body(Full::default())
        .unwrap();
    let res = app.send(req).await;

    assert_eq!(res.text(), "null");
    assert!(res.expires_cookie(TOKEN_COOKIE));
}

#[tokio::test]
async fn get_session_extends_a_session_once_it_is_update_age_old() {
    // With updateAge = 0 every get-session refreshes.
    let mut app = TestApp::build(|b| b.options(|o| o.session.update_age = Duration::ZERO)).await;
    let first = app.signed_up("refresh@example.com").await;
    let token = first["token"].as_str().unwrap().to_owned();
    let before = app.session().await["session"]["expiresAt"].clone();
    tokio::time::sleep(Duration::from_millis(20)).await;

    let res = app.get("/get-session").await;

    assert_eq!(res.status, StatusCode::OK);
    let body = res.json();
    let after = &body["session"]["expiresAt"];
    assert!(
        after.as_str().unwrap() > before.as_str().unwrap(),
        "{before} -> {after}"
    );
    let cookie = res.set_cookie(TOKEN_COOKIE).expect("the cookie is re-set");
    assert_eq!(
        cookie,
        format!(
            "{}; Max-Age=604800; Path=/; HttpOnly; SameSite=Lax",
            app.cookie_for_token(&token)
        )
    );
    let stored = app
        .auth
        .store()
        .session_and_user(&token)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(portcullis::time::format(&stored.session.expires_at), *after);
}

#[tokio::test]
async fn a_day_old_session_is_extended_with_the_default_update_age() {
    let mut app = TestApp::new().await;
    app.signed_up("old@example.com").await;
    let token = app.session_token().unwrap();
    // Created two days ago: five days left of seven.
    set_session_times(
        &app.auth,
        &token,
        seconds_from_now(5 * DAY),
        Some(seconds_from_now(-2 * DAY)),
    )
    .await;

    let res = app.get("/get-session").await;

    let expires =
        portcullis::time::parse(res.json()["session"]["expiresAt"].as_str().unwrap()).unwrap();
    assert!(expires > seconds_from_now(7 * DAY - 60), "{expires}");
    assert!(res.set_cookie(TOKEN_COOKIE).is_some());
}

#[tokio::test]
async fn disable_refresh_leaves_the_session_as_is() {
    let mut app = TestApp::build(|b| b.options(|o| o.session.update_age = Duration::ZERO)).await;
    app.signed_up("norefresh@example.com").await;
    let before = app.session().await["session"]["expiresAt"].clone();
    tokio::time::sleep(Duration::from_millis(20)).await;

    let res = app.get("/get-session?disableRefresh=true").await;

    assert_eq!(res.json()["session"]["expiresAt"], before);
    assert!(res.set_cookies().is_empty());
}

#[tokio::test]
async fn a_session_signed_in_without_remember_me_is_never_extended() {
    let mut app = TestApp::build(|b| b.options(|o| o.session.update_age = Duration::ZERO)).await;
    app.signed_up("brief@example.com").await;
    app.post(
        "/sign-in/email",
        json!({ "email": "brief@example.com", "password": PASSWORD, "rememberMe": false }),
    )
    .await;
    let before = app.session().await["session"]["expiresAt"].clone();
    tokio::time::sleep(Duration::from_millis(20)).await;

    let res = app.get("/get-session").await;

    assert_eq!(res.json()["session"]["expiresAt"], before);
    assert!(res.set_cookies().is_empty());
}

#[tokio::test]
async fn an_expired_session_is_null_expires_the_cookies_and_is_deleted() {
    let mut app = TestApp::new().await;
    app.signed_up("expired@example.com").await;
    let token = app.session_token().unwrap();
    set_session_times(&app.auth, &token, seconds_from_now(-1), None).await;

    let res = app.get("/get-session").await;

    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.text(), "null");
    for name in [
        TOKEN_COOKIE,
        "better-auth.session_data",
        "better-auth.dont_remember",
    ] {
        assert!(res.expires_cookie(name), "{name} not expired");
    }
    assert!(app.jar.is_empty());
    assert!(app
        .auth
        .store()
        .session_and_user(&token)
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn post_to_get_session_is_method_not_allowed() {
    let mut app = TestApp::new().await;
    app.signed_up("post@example.com").await;

    let res = app.post("/get-session", json!({})).await;

    assert_eq!(res.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        res.code().as_deref(),
        Some("METHOD_NOT_ALLOWED_DEFER_SESSION_REQUIRED")
    );
}

// --- sign-out ----------------------------------------------------------------------------

#[tokio::test]
async fn sign_out_ends_the_session_and_expires_the_cookies() {
    let mut app = TestApp::new().await;
    app.signed_up("out@example.com").await;
    let token = app.session_token().unwrap();

    let res = app.post("/sign-out", json!({})).await;

    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.json(), json!({ "success": true }));
    assert!(res.expires_cookie(TOKEN_COOKIE));
    assert!(res.expires_cookie("better-auth.dont_remember"));
    assert!(app.session().await.is_null());
    assert!(app
        .auth
        .store()
        .session_and_user(&token)
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn sign_out_without_a_session_still_succeeds() {
    let mut app = TestApp::new().await;

    let res = app.post_empty("/sign-out").await;

    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.json(), json!({ "success": true }));
    assert!(res.expires_cookie(TOKEN_COOKIE));
}

#[tokio::test]
async fn a_stolen_cookie_stops_working_after_sign_out() {
    let mut app = TestApp::new().await;
    app.signed_up("stolen@example.com").await;
    let mut thief = app.new_client();
    thief.jar = app.jar.clone();
    assert!(!thief.session().await.is_null());

    app.post("/sign-out", json!({})).await;

    assert!(thief.session().await.is_null());
}

// --- list-sessions -----------------------------------------------------------------------

#[tokio::test]
async fn list_sessions_lists_the_users_live_sessions() {
    let mut app = TestApp::new().await;
    let me = app.signed_up("lister@example.com").await;
    let mut laptop = app.new_client();
    let laptop_token = laptop.sign_in("lister@example.com", PASSWORD).await.json()["token"].clone();
    // Someone else's sessions never show up.
    let mut stranger = app.new_client();
    stranger.signed_up("stranger@example.com").await;

    let res = app.get("/list-sessions").await;

    assert_eq!(res.status, StatusCode::OK);
    let list = res.json();
    let tokens: Vec<_> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["token"].clone())
        .collect();
    assert_eq!(tokens, vec![me["token"].clone(), laptop_token]);
    assert!(list
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["userId"] == me["user"]["id"]));
}

#[tokio::test]
async fn list_sessions_without_a_session_is_unauthorized() {
    let mut app = TestApp::new().await;

    let res = app.get("/list-sessions").await;

    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        res.json(),
        json!({ "message": "Unauthorized", "code": "UNAUTHORIZED" })
    );
}

#[tokio::test]
async fn list_sessions_needs_a_fresh_session() {
    let mut app =
        TestApp::build(|b| b.options(|o| o.session.fresh_age = Duration::from_millis(1))).await;
    app.signed_up("stale@example.com").await;
    tokio::time::sleep(Duration::from_millis(20)).await;

    let res = app.get("/list-sessions").await;

    assert_eq!(res.status, StatusCode::FORBIDDEN);
    assert_eq!(
        res.json(),
        json!({ "message": "Session is not fresh", "code": "SESSION_NOT_FRESH" })
    );
}

#[tokio::test]
async fn list_sessions_leaves_out_expired_sessions() {
    let mut app = TestApp::new().await;
    app.signed_up("mixed@example.com").await;
    let mut old = app.new_client();
    old.sign_in("mixed@example.com", PASSWORD).await;
    set_session_times(
        &app.auth,
        &old.session_token().unwrap(),
        seconds_from_now(-10),
        None,
    )
    .await;

    let list = app.get("/list-sessions").await.json();

    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["token"], app.session_token().unwrap());
}

// --- revoke-session(s) -------------------------------------------------------------------

#[tokio::test]
async fn revoke_session_ends_another_of_my_sessions() {
    let mut app = TestApp::new().await;
    app.signed_up("revoker@example.com").await;
    let mut phone = app.new_client();
    phone.sign_in("revoker@example.com", PASSWORD).await;
    let phone_token = phone.session_token().unwrap();

    let res = app
        .post("/revoke-session", json!({ "token": phone_token }))
        .await;

    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.json(), json!({ "status": true }));
    assert!(res.set_cookies().is_empty(), "my own cookie stays");
    assert!(phone.session().await.is_null());
    assert!(!app.session().await.is_null());
}

#[tokio::test]
async fn revoking_my_current_session_signs_me_out() {
    let mut app = TestApp::new().await;
    app.signed_up("self@example.com").await;
    let token = app.session_token().unwrap();

    let res = app.post("/revoke-session", json!({ "token": token })).await;

    assert_eq!(res.json(), json!({ "status": true }));
    assert!(res.expires_cookie(TOKEN_COOKIE));
    assert!(app.session().await.is_null());
}

#[tokio::test]
async fn revoke_session_cannot_end_another_users_session() {
    let mut app = TestApp::new().await;
    app.signed_up("attacker@example.com").await;
    let mut victim = app.new_client();
    victim.signed_up("victim@example.com").await;
    let victim_token = victim.session_token().unwrap();

    let res = app
        .post("/revoke-session", json!({ "token": victim_token }))
        .await;

    // The answer does not tell whether the token exists.
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.json(), json!({ "status": true }));
    assert!(!victim.session().await.is_null());
    assert!(app
        .auth
        .store()
        .session_and_user(&victim_token)
        .await
        .unwrap()
        .is_some());
}

#[tokio::test]
async fn revoke_session_needs_a_session_and_a_token() {
    let mut app = TestApp::new().await;

    let res = app.post("/revoke-session", json!({ "token": "x" })).await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);

    app.signed_up("notoken@example.com").await;
    let res = app.post("/revoke-session", json!({})).await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert_eq!(res.code().as_deref(), Some("VALIDATION_ERROR"));
}

#[tokio::test]
async fn revoke_sessions_ends_every_session_of_mine_only() {
    let mut app = TestApp::new().await;
    let me = app.signed_up("all@example.com").await;
    let mut phone = app.new_client();
    phone.sign_in("all@example.com", PASSWORD).await;
    let mut other = app.new_client();
    other.signed_up("bystander@example.com").await;

    let res = app.post("/revoke-sessions", json!({})).await;

    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.json(), json!({ "status": true }));
    assert!(res.expires_cookie(TOKEN_COOKIE));
    assert!(app.session().await.is_null());
    assert!(phone.session().await.is_null());
    assert!(!other.session().await.is_null());
    let user_id = me["user"]["id"].as_str().unwrap();
    assert!(app
        .auth
        .store()
        .active_sessions(user_id)
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn revoke_other_sessions_keeps_only_the_current_one() {
    let mut app = TestApp::new().await;
    let me = app.signed_up("others@example.com").await;
    let mut phone = app.new_client();
    phone.sign_in("others@example.com", PASSWORD).await;
    let mut tablet = app.new_client();
    tablet.sign_in("others@example.com", PASSWORD).await;

    let res = app.post("/revoke-other-sessions", json!({})).await;

    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.json(), json!({ "status": true }));
    assert!(res.set_cookies().is_empty());
    assert!(!app.session().await.is_null());
    assert!(phone.session().await.is_null());
    assert!(tablet.session().await.is_null());
    let user_id = me["user"]["id"].as_str().unwrap();
    let left = app.auth.store().active_sessions(user_id).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].token, me["token"].as_str().unwrap());
}

#[tokio::test]
async fn revoking_without_a_session_is_unauthorized() {
    let mut app = TestApp::new().await;

    for path in ["/revoke-sessions", "/revoke-other-sessions"] {
        let res = app.post(path, json!({})).await;
        assert_eq!(res.status, StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(res.code().as_deref(), Some("UNAUTHORIZED"), "{path}");
    }
}

// --- remember me -------------------------------------------------------------------------

async fn signed_in_without_remember_me(app: &mut TestApp, email: &str) {
    app.signed_up(email).await;
    app.jar.clear();
    let res = app
        .post(
            "/sign-in/email",
            json!({ "email": email, "password": PASSWORD, "rememberMe": false }),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK);
}

#[tokio::test]
async fn update_user_keeps_a_forgettable_session_forgettable() {
    let mut app = TestApp::new().await;
    signed_in_without_remember_me(&mut app, "keep-brief@example.com").await;

    let res = app
        .post("/update-user", json!({ "name": "Still Brief" }))
        .await;

    assert_eq!(res.status, StatusCode::OK);
    let cookie = res.set_cookie(TOKEN_COOKIE).unwrap();
    assert!(!cookie.contains("Max-Age"), "{cookie}");
    assert!(!res.expires_cookie("better-auth.dont_remember"));
    assert!(app.jar.get("better-auth.dont_remember").is_some());
}

#[tokio::test]
async fn change_password_with_revocation_keeps_a_forgettable_session_forgettable() {
    let mut app = TestApp::new().await;
    signed_in_without_remember_me(&mut app, "brief-pw@example.com").await;

    let res = app
        .post(
            "/change-password",
            json!({
                "currentPassword": PASSWORD,
                "newPassword": "a-brand-new-password",
                "revokeOtherSessions": true,
            }),
        )
        .await;

    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    let cookie = res.set_cookie(TOKEN_COOKIE).unwrap();
    assert!(!cookie.contains("Max-Age"), "{cookie}");
    let session = app.session().await;
    let expires =
        portcullis::time::parse(session["session"]["expiresAt"].as_str().unwrap()).unwrap();
    assert!(expires < seconds_from_now(DAY + 60), "one day, not seven");
}

#[tokio::test]
async fn signing_out_a_forgettable_session_clears_its_marker() {
    let mut app = TestApp::new().await;
    signed_in_without_remember_me(&mut app, "brief-out@example.com").await;

    let res = app.post("/sign-out", json!({})).await;

    assert!(res.expires_cookie(TOKEN_COOKIE));
    assert!(res.expires_cookie("better-auth.dont_remember"));
    assert!(app.jar.is_empty());
}

#[tokio::test]
async fn a_forged_remember_me_marker_does_not_stop_refresh() {
    let mut app = TestApp::build(|b| b.options(|o| o.session.update_age = Duration::ZERO)).await;
    app.signed_up("marker@example.com").await;
    app.jar.set("better-auth.dont_remember", "true");
    tokio::time::sleep(Duration::from_millis(20)).await;

    let res = app.get("/get-session").await;

    assert!(res.set_cookie(TOKEN_COOKIE).is_some(), "refreshed anyway");
}

// --- every session read behaves as get-session (Better Auth's session middleware) --------

#[tokio::test]
async fn an_endpoint_needing_a_session_expires_a_dead_sessions_cookies_and_row() {
    let mut app = TestApp::new().await;
    app.signed_up("dead-cookie@example.com").await;
    let token = app.session_token().unwrap();
    set_session_times(&app.auth, &token, seconds_from_now(-60), None).await;

    let res = app.get("/list-accounts").await;

    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    assert!(
        res.expires_cookie(&app.session_cookie_name()),
        "{:?}",
        res.set_cookies()
    );
    let rows = app
        .auth
        .adapter()
        .count("session", &[Where::eq("token", token.as_str())])
        .await
        .unwrap();
    assert_eq!(rows, 0, "the expired row is deleted");
}

#[tokio::test]
async fn an_endpoint_reading_a_day_old_session_extends_it() {
    let mut app = TestApp::new().await;
    app.signed_up("day-old@example.com").await;
    let token = app.session_token().unwrap();
    // Expiring in six days: a day past updateAge.
    set_session_times(&app.auth, &token, seconds_from_now(6 * DAY), None).await;

    let res = app.get("/list-accounts").await;

    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    let cookie = res
        .set_cookie(&app.session_cookie_name())
        .expect("the cookie is re-set");
    assert!(cookie.contains("Max-Age=604800"), "{cookie}");
    let session = app.session().await;
    let expires: chrono::DateTime<chrono::Utc> = session["session"]["expiresAt"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        expires > seconds_from_now(7 * DAY - 60),
        "extended to seven days: {expires}"
    );
}

#[tokio::test]
async fn a_session_hook_that_reads_the_session_does_not_wait_on_itself() {
    // The refresh writes after the handler, so a hook on that write can read the session.
    let mut app = TestApp::build(|b| {
        b.database_hook(DbHook::before_update(
            Model::SESSION,
            |row, ctx| async move {
                if let Some(ctx) = ctx {
                    ctx.session().await?;
                }
                Ok(row)
            },
        ))
    })
    .await;
    app.signed_up("hooked-refresh@example.com").await;
    let token = app.session_token().unwrap();
    set_session_times(&app.auth, &token, seconds_from_now(6 * DAY), None).await;

    let res = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        app.get("/list-accounts"),
    )
    .await
    .expect("the request finishes");

    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    assert!(res.set_cookie(&app.session_cookie_name()).is_some());
}
