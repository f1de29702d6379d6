//! HS256 JWTs as Better Auth signs its verification and change-email links, written here from
//! RFC 7515 so the tests check the engine's tokens against an implementation of their own.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::{Map, Value};
use sha2::Sha256;

fn mac(key: &[u8], signing_input: &str) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(signing_input.as_bytes());
    mac
}

/// `claims` signed with `key`, header `{"alg":"HS256"}` (as `jose` writes it for Better Auth).
pub fn sign_hs256(key: &[u8], claims: &Map<String, Value>) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256"}"#);
    let payload = URL_SAFE_NO_PAD.encode(Value::Object(claims.clone()).to_string());
    let input = format!("{header}.{payload}");
    let signature = URL_SAFE_NO_PAD.encode(mac(key, &input).finalize().into_bytes());
    format!("{input}.{signature}")
}

/// The claims of `token` if its HS256 signature verifies with `key` and it has not expired at
/// `now` (seconds); `None` otherwise.
pub fn verify_hs256(key: &[u8], token: &str, now: i64) -> Option<Map<String, Value>> {
    let (input, signature) = token.rsplit_once('.')?;
    let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
    mac(key, input).verify_slice(&signature).ok()?;
    let (_, payload) = input.split_once('.')?;
    let claims: Map<String, Value> =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
    let exp = claims.get("exp").and_then(Value::as_i64);
    exp.is_none_or(|exp| exp > now).then_some(claims)
}
