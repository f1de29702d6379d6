//! Compact HS256 JSON Web Tokens, as Better Auth's email verification links carry them.
//!
//! Only what that needs: the header is exactly `{"alg":"HS256"}`, the key is the UTF-8 bytes of
//! the secret, and verification checks the signature in constant time before it reads any
//! claim, then `exp` (and `nbf` when present). Tokens with another algorithm, a `crit` header,
//! padding or any malformed part are refused.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::{Map, Value};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Why a token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum JwtError {
    /// Not three base64url parts of JSON objects, or a header other than HS256.
    #[error("malformed token")]
    Malformed,
    /// The signature does not verify under the key.
    #[error("bad signature")]
    BadSignature,
    /// The signature verifies but `exp` has passed.
    #[error("token expired")]
    Expired,
    /// The signature verifies but a claim is missing or not valid yet.
    #[error("invalid claims")]
    InvalidClaims,
}

const HEADER: &str = "eyJhbGciOiJIUzI1NiJ9"; // base64url(`{"alg":"HS256"}`)

fn mac(key: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length, so this cannot fail.
    #[allow(clippy::expect_used)]
    HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length")
}

/// Signs `claims` (a JSON object, keys in the order given) with HS256 under `key`.
pub(crate) fn sign_hs256(key: &[u8], claims: &Map<String, Value>) -> String {
    let payload = serde_json::to_vec(claims).unwrap_or_else(|_| b"{}".to_vec());
    let mut token = String::with_capacity(HEADER.len() + payload.len() * 4 / 3 + 48);
    token.push_str(HEADER);
    token.push('.');
    token.push_str(&URL_SAFE_NO_PAD.encode(payload));
    let mut m = mac(key);
    m.update(token.as_bytes());
    let sig = m.finalize().into_bytes();
    token.push('.');
    token.push_str(&URL_SAFE_NO_PAD.encode(sig));
    token
}

fn decode_part(part: &str) -> Result<Vec<u8>, JwtError> {
    // The no-padding engine refuses `=` and non-canonical trailing bits.
    URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| JwtError::Malformed)
}

/// Verifies an HS256 token under any of `secret`'s keys (the current one first) at `now`:
/// what [`verify_hs256`] answers for the first key whose signature holds, else a bad
/// signature.
pub(crate) fn verify_hs256_any(
    secret: &crate::crypto::Secret,
    token: &str,
    now: i64,
) -> Result<Map<String, Value>, JwtError> {
    let mut last = JwtError::BadSignature;
    for key in secret.texts() {
        match verify_hs256(key.as_bytes(), token, now) {
            // Anything but a bad signature means the signature held (it is checked first),
            // or that the token is no token at all.
            Err(JwtError::BadSignature) => {}
            Err(e @ JwtError::Malformed) => last = e,
            done => return done,
        }
    }
    Err(last)
}

/// Verifies an HS256 token under `key` at `now` (seconds since the epoch) and returns its
/// claims. The signature is checked first, in constant time; then `exp` (required) and `nbf`.
pub(crate) fn verify_hs256(
    key: &[u8],
    token: &str,
    now: i64,
) -> Result<Map<String, Value>, JwtError> {
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::Malformed);
    };
    let header: Value =
        serde_json::from_slice(&decode_part(header)?).map_err(|_| JwtError::Malformed)?;
    let header = header.as_object().ok_or(JwtError::Malformed)?;
    if header.get("alg").and_then(Value::as_str) != Some("HS256") || header.contains_key("crit") {
        return Err(JwtError::Malformed);
    }
    let signature = decode_part(signature)?;
    let signed_len = token.len() - signature_len(token);
    let mut m = mac(key);
    m.update(&token.as_bytes()[..signed_len]);
    m.verify_slice(&signature)
        .map_err(|_| JwtError::BadSignature)?;
    let claims: Value =
        serde_json::from_slice(&decode_part(payload)?).map_err(|_| JwtError::Malformed)?;
    let Value::Object(claims) = claims else {
        return Err(JwtError::Malformed);
    };
    let exp = claims
        .get("exp")
        .and_then(Value::as_f64)
        .ok_or(JwtError::InvalidClaims)?;
    if exp <= now as f64 {
        return Err(JwtError::Expired);
    }
    if let Some(nbf) = claims.get("nbf") {
        if nbf.as_f64().is_none_or(|nbf| nbf > now as f64) {
            return Err(JwtError::InvalidClaims);
        }
    }
    Ok(claims)
}

/// Length of `.signature` at the end of `token`.
fn signature_len(token: &str) -> usize {
    token.rfind('.').map_or(0, |i| token.len() - i)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const KEY: &[u8] = b"a-secret-of-at-least-32-characters!!";

    fn claims(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn header_is_exactly_alg_hs256() {
        assert_eq!(
            URL_SAFE_NO_PAD.decode(HEADER).unwrap(),
            br#"{"alg":"HS256"}"#
        );
    }

    #[test]
    fn round_trips_and_keeps_key_order() {
        let t = sign_hs256(
            KEY,
            &claims(json!({"email": "a@b.co", "iat": 10, "exp": 20})),
        );
        let payload = t.split('.').nth(1).unwrap();
        assert_eq!(
            URL_SAFE_NO_PAD.decode(payload).unwrap(),
            br#"{"email":"a@b.co","iat":10,"exp":20}"#
        );
        let c = verify_hs256(KEY, &t, 15).unwrap();
        assert_eq!(c["email"], "a@b.co");
        assert_eq!(verify_hs256(KEY, &t, 20), Err(JwtError::Expired));
        assert_eq!(
            verify_hs256(b"another-key-of-at-least-32-characters", &t, 15),
            Err(JwtError::BadSignature)
        );
    }

    #[test]
    fn matches_a_token_made_elsewhere() {
        // Made with Python's hmac/hashlib/base64 over the same header and payload.
        let theirs = "eyJhbGciOiJIUzI1NiJ9.eyJlbWFpbCI6ImFAYi5jbyIsImlhdCI6MTAsImV4cCI6MjB9.HL2aOHw0ZhMpexgyqcW04jm8UsdHLo747Lb1FXCPDmc";
        let ours = sign_hs256(
            KEY,
            &claims(json!({"email": "a@b.co", "iat": 10, "exp": 20})),
        );
        assert_eq!(ours, theirs);
    }

    #[test]
    fn refuses_tampering_and_other_algorithms() {
        let t = sign_hs256(KEY, &claims(json!({"email": "a@b.co", "exp": 20})));
        let mut parts: Vec<&str> = t.split('.').collect();
        let other = URL_SAFE_NO_PAD.encode(br#"{"email":"x@b.co","exp":20}"#);
        parts[1] = &other;
        assert_eq!(
            verify_hs256(KEY, &parts.join("."), 1),
            Err(JwtError::BadSignature)
        );
        let none = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#),
            t.split('.').nth(1).unwrap()
        );
        assert_eq!(verify_hs256(KEY, &none, 1), Err(JwtError::Malformed));
        for bad in [
            "",
            "a.b",
            "a.b.c.d",
            "garbage.token.value",
            &format!("{t}="),
        ] {
            assert!(verify_hs256(KEY, bad, 1).is_err(), "{bad}");
        }
        let no_exp = sign_hs256(KEY, &claims(json!({"email": "a@b.co"})));
        assert_eq!(verify_hs256(KEY, &no_exp, 1), Err(JwtError::InvalidClaims));
        let later = sign_hs256(KEY, &claims(json!({"exp": 20, "nbf": 15})));
        assert_eq!(verify_hs256(KEY, &later, 10), Err(JwtError::InvalidClaims));
        assert!(verify_hs256(KEY, &later, 16).is_ok());
    }
}
