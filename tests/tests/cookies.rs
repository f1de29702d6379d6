//! Cookies against the values the real Better Auth 1.7.25 server wrote for the same secret
//! (see `/work/scratch/VECTORS.md`): a session cookie issued by either server is accepted by
//! the other.

use http::{header, Method, StatusCode};
use http_body_util::Full;
use portcullis::cookies::encode_uri_component;
use portcullis::crypto::Secret;
use portcullis_tests::{TestApp, PASSWORD, SECRET};
use serde_json::json;

/// The sign-up session: token and the cookie value from Better Auth's `Set-Cookie`.
const SIGN_UP_TOKEN: &str = "EHUGoPK7k4WMrhpaKFcAdbQESiEFhXoB";
const SIGN_UP_COOKIE: &str =
    "EHUGoPK7k4WMrhpaKFcAdbQESiEFhXoB.CuJsm5P7F8uPKBmJZzvreq%2B%2FjcP%2FkkxfJwJziv6omjs%3D";
/// The `rememberMe: false` sign-in session.
const SIGN_IN_TOKEN: &str = "MSnS2kCCROOh6vSrTXG9FFplZa4mZ7J6";
const SIGN_IN_COOKIE: &str =
    "MSnS2kCCROOh6vSrTXG9FFplZa4mZ7J6.JArjlNm7iRyWxsNNcJicPhJXLQP3Yt0j4AzX3kadTgI%3D";
/// The `dont_remember` marker (signed `"true"`).
const DONT_REMEMBER_COOKIE: &str = "true.uVUBEA%2BQT4yqzDIwZkj4Ct3tZQrRmcrmqFfOIX%2FClg0%3D";

fn secret() -> Secret {
    Secret::new(SECRET).expect("the vector secret is long enough")
}

#[test]
fn signing_the_captured_tokens_gives_better_auths_cookie_values() {
    let secret = secret();

    for (token, cookie) in [
        (SIGN_UP_TOKEN, SIGN_UP_COOKIE),
        (SIGN_IN_TOKEN, SIGN_IN_COOKIE),
    ] {
        let signed = secret.sign(token);
        assert_eq!(encode_uri_component(&signed), cookie);
    }
}

#[test]
fn the_dont_remember_marker_matches_better_auths() {
    let signed = secret().sign("true");

    assert_eq!(signed, "true.uVUBEA+QT4yqzDIwZkj4Ct3tZQrRmcrmqFfOIX/Clg0=");
    assert_eq!(encode_uri_component(&signed), DONT_REMEMBER_COOKIE);
}

#[test]
fn better_auths_signed_values_verify_and_tampered_ones_do_not() {
    let secret = secret();

    assert_eq!(
        secret.unsign(
            "EHUGoPK7k4WMrhpaKFcAdbQESiEFhXoB.CuJsm5P7F8uPKBmJZzvreq+/jcP/kkxfJwJziv6omjs="
        ),
        Some(SIGN_UP_TOKEN)
    );
    assert_eq!(
        secret.unsign("true.uVUBEA+QT4yqzDIwZkj4Ct3tZQrRmcrmqFfOIX/Clg0="),
        Some("true")
    );
    // One character of the token changed.
    assert_eq!(
        secret.unsign(
            "EHUGoPK7k4WMrhpaKFcAdbQESiEFhXoC.CuJsm5P7F8uPKBmJZzvreq+/jcP/kkxfJwJziv6omjs="
        ),
        None
    );
    // URL-safe base64 or no padding: not Better Auth's form.
    assert_eq!(
        secret.unsign(
            "EHUGoPK7k4WMrhpaKFcAdbQESiEFhXoB.CuJsm5P7F8uPKBmJZzvreq-_jcP_kkxfJwJziv6omjs="
        ),
        None
    );
    assert_eq!(
        secret
            .unsign("EHUGoPK7k4WMrhpaKFcAdbQESiEFhXoB.CuJsm5P7F8uPKBmJZzvreq+/jcP/kkxfJwJziv6omjs"),
        None
    );
}

#[tokio::test]
async fn the_engines_own_cookies_use_the_same_scheme() {
    let mut app = TestApp::new().await;

    let res = app.signed_up("scheme@example.com").await;

    let token = res["token"].as_str().unwrap();
    let value = app.jar.get("better-auth.session_token").unwrap();
    assert_eq!(
        value,
        encode_uri_component(&secret().sign(token)).into_owned()
    );
}

#[tokio::test]
async fn a_cookie_in_a_quoted_or_encoded_form_is_still_read() {
    let mut app = TestApp::new().await;
    app.signed_up("forms@example.com").await;
    let token = app.session_token().unwrap();
    let signed = secret().sign(&token);

    for cookie in [
        // Not URL-encoded at all.
        format!("better-auth.session_token={signed}"),
        // Quoted, among other cookies.
        format!(
            "theme=dark; better-auth.session_token=\"{}\"; x=1",
            encode_uri_component(&signed)
        ),
    ] {
        let req = TestApp::request(Method::GET, "/get-session")
            .header(header::COOKIE, &cookie)
            .body(Full::default())
            .unwrap();
        let res = app.send(req).await;
        assert_eq!(res.json()["session"]["token"], token, "{cookie}");
    }
}

#[tokio::test]
async fn https_base_urls_get_secure_prefixed_cookies() {
    let mut app = TestApp::build(|b| b.base_url("https://auth.example.com")).await;

    let res = app.sign_up("secure@example.com", PASSWORD).await;

    assert_eq!(res.status, StatusCode::OK);
    let token = res.json()["token"].as_str().unwrap().to_owned();
    let cookie = res
        .set_cookie("__Secure-better-auth.session_token")
        .expect("a __Secure- cookie");
    assert_eq!(
        cookie,
        format!(
            "__Secure-better-auth.session_token={}; Max-Age=604800; Path=/; HttpOnly; Secure; SameSite=Lax",
            encode_uri_component(&secret().sign(&token))
        )
    );
    assert!(res.set_cookie("better-auth.session_token").is_none());
    // The prefixed cookie is the one read back.
    assert_eq!(app.session().await["session"]["token"], token);
    // And sign-out expires it with the same attributes.
    let out = app.post("/sign-out", json!({})).await;
    let expired = out
        .set_cookie("__Secure-better-auth.session_token")
        .unwrap();
    assert_eq!(
        expired,
        "__Secure-better-auth.session_token=; Max-Age=0; Path=/; HttpOnly; Secure; SameSite=Lax"
    );
}

#[tokio::test]
async fn an_unprefixed_cookie_is_ignored_when_cookies_are_secure() {
    let mut secure = TestApp::build(|b| b.base_url("https://auth.example.com")).await;
    secure.signed_up("mixed@example.com").await;
    let token = secure.session_token().unwrap();

    // The right value under the plain name: not the session cookie of an https engine.
    let mut client = secure.new_client();
    client.jar.set(
        "better-auth.session_token",
        &encode_uri_component(&secret().sign(&token)),
    );

    assert!(client.session().await.is_null());
}
