//! Better Auth's cookie cache: the `session_data` cookie that carries a signed (or encrypted)
//! copy of the session and its user, so most session reads need no database.
//!
//! The payload is `{session, user, updatedAt, version}`. Three encodings, all keyed by the
//! server secret and readable by a Better Auth server with the same secret:
//!
//! - **compact** (default): `base64url(JSON{session: payload, expiresAt, signature})`, the
//!   signature being `base64url(HMAC-SHA-256(secret, JSON{...payload, expiresAt}))`. Better
//!   Auth checks it over its own re-serialisation of what it parsed (ISO dates revived and
//!   written back with milliseconds), so both sides write and check that canonical form.
//! - **jwt**: an HS256 JWT of the payload plus `iat` and `exp`.
//! - **jwe**: `dir` / `A256CBC-HS512` with a key derived by HKDF from the secret
//!   (see [`crate::jwe`]), plus `iat`, `exp` and `jti`.
//!
//! Lifetimes copy Better Auth, quirks included: the cache lives `maxAge`; a `rememberMe: false`
//! session gets a cookie without `Max-Age` and a cache that expires after 60 s (compact) or
//! 300 s (jwt, jwe).

use std::str::FromStr;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{Map, Value};

use crate::crypto::Secret;
use crate::jwe::JweKey;
use crate::storage::{Session, SessionAndUser, User};

/// How the `session_data` cookie is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum CookieCacheStrategy {
    /// base64url JSON with an HMAC-SHA-256 signature (Better Auth's default).
    #[default]
    Compact,
    /// An HS256 JSON Web Token signed with the secret.
    Jwt,
    /// An encrypted JSON Web Token (`dir`, `A256CBC-HS512`); the content is not readable by the
    /// client.
    Jwe,
}

/// A strategy name that is not `compact`, `jwt` or `jwe`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown cookie cache strategy {0:?} (expected compact, jwt or jwe)")]
pub struct UnknownStrategy(pub String);

impl FromStr for CookieCacheStrategy {
    type Err = UnknownStrategy;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "compact" => Ok(Self::Compact),
            "jwt" => Ok(Self::Jwt),
            "jwe" => Ok(Self::Jwe),
            other => Err(UnknownStrategy(other.to_owned())),
        }
    }
}

/// `session.cookieCache`: keep a signed copy of the session in a cookie so that reading the
/// session does not hit the database until the copy expires.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CookieCacheOptions {
    /// Off by default.
    pub enabled: bool,
    /// How long a cached copy is trusted (5 minutes by default); also the cookie's `Max-Age`.
    /// A session revoked elsewhere stays visible through a cache for up to this long (except
    /// to sensitive endpoints, which always read the database).
    pub max_age: Duration,
    /// The encoding, `compact` by default.
    pub strategy: CookieCacheStrategy,
    /// Caches of another version are ignored: change it to invalidate every cache at once
    /// (`"1"` by default).
    pub version: String,
    /// Better Auth's stateless `refreshCache` (re-issue the cache before it expires without a
    /// database read). Better Auth turns it off whenever a database is configured, and so does
    /// this engine, which always has one: setting it only logs a warning.
    pub refresh_cache: Option<Duration>,
}

impl Default for CookieCacheOptions {
    fn default() -> Self {
        Self {
            enabled: false,
            max_age: Duration::from_secs(300),
            strategy: CookieCacheStrategy::Compact,
            version: "1".into(),
            refresh_cache: None,
        }
    }
}

/// The salt Better Auth derives the cookie cache's encryption key with.
const JWE_SALT: &str = "better-auth-session";

/// A decoded cache: the payload and when the cache itself expires.
#[derive(Debug, Clone)]
pub(crate) struct Decoded {
    pub(crate) session: SessionAndUser,
    pub(crate) version: String,
    /// Milliseconds since the epoch.
    pub(crate) expires_at_ms: i64,
}

/// The resolved cookie cache: options and keys.
#[derive(Debug, Clone)]
pub(crate) struct CookieCache {
    pub(crate) options: CookieCacheOptions,
    secret: Secret,
    /// One key per secret, the current one first.
    jwe: Vec<JweKey>,
}

impl CookieCache {
    pub(crate) fn new(options: CookieCacheOptions, secret: Secret) -> Self {
        if options.enabled && options.refresh_cache.is_some() {
            tracing::warn!(
                "session.cookie_cache.refresh_cache is for stateless setups; with a database it is disabled"
            );
        }
        let jwe = secret
            .texts()
            .map(|text| JweKey::derive(text, JWE_SALT))
            .collect();
        Self {
            options,
            secret,
            jwe,
        }
    }

    /// `Max-Age` of the cookie, in seconds.
    pub(crate) fn max_age_secs(&self) -> i64 {
        self.options.max_age.as_secs().max(1) as i64
    }

    /// The payload Better Auth caches: `{session, user, updatedAt, version}`.
    fn payload(&self, session: &Session, user: &User, now_ms: i64) -> Map<String, Value> {
        let mut p = Map::new();
        p.insert(
            "session".into(),
            serde_json::to_value(session).unwrap_or(Value::Null),
        );
        p.insert(
            "user".into(),
            serde_json::to_value(user).unwrap_or(Value::Null),
        );
        p.insert("updatedAt".into(), now_ms.into());
        p.insert("version".into(), self.options.version.clone().into());
        p
    }

    /// The cookie value for `session` and `user` at `now_ms`.
    pub(crate) fn encode(
        &self,
        session: &Session,
        user: &User,
        dont_remember: bool,
        now_ms: i64,
    ) -> String {
        let payload = self.payload(session, user, now_ms);
        // Better Auth computes these from the cookie's maxAge, which a `rememberMe: false`
        // cookie lacks: compact then falls back to 60 s, the JWT forms to 300 s.
        let max_age = if dont_remember {
            None
        } else {
            Some(self.max_age_secs())
        };
        match self.options.strategy {
            CookieCacheStrategy::Compact => {
                let expires_at = now_ms + max_age.unwrap_or(60) * 1000;
                let payload = Value::Object(payload);
                let signature = self.compact_signature(&payload, expires_at);
                let mut outer = Map::new();
                outer.insert("session".into(), payload);
                outer.insert("expiresAt".into(), expires_at.into());
                outer.insert("signature".into(), signature.into());
                URL_SAFE_NO_PAD.encode(js_stringify(&Value::Object(outer)))
            }
            CookieCacheStrategy::Jwt | CookieCacheStrategy::Jwe => {
                let iat = now_ms.div_euclid(1000);
                let mut claims = payload;
                claims.insert("iat".into(), iat.into());
                claims.insert("exp".into(), (iat + max_age.unwrap_or(300)).into());
                if self.options.strategy == CookieCacheStrategy::Jwt {
                    crate::jwt::sign_hs256(self.secret.expose().as_bytes(), &claims)
                } else {
                    claims.insert("jti".into(), crate::jwe::random_uuid().into());
                    match self.jwe.first() {
                        Some(key) => key.encrypt(&claims),
                        None => String::new(),
                    }
                }
            }
        }
    }

    /// `base64url(HMAC-SHA-256(secret, JSON{...payload, expiresAt}))` over the canonical JSON.
    fn compact_signature(&self, payload: &Value, expires_at: i64) -> String {
        let mut signed = payload.as_object().cloned().unwrap_or_default();
        signed.insert("expiresAt".into(), expires_at.into());
        let text = js_stringify(&Value::Object(signed));
        URL_SAFE_NO_PAD.encode(self.secret.hmac(text.as_bytes()))
    }

    /// Decodes and authenticates a cookie value (any of the strategy's forms Better Auth
    /// writes); `None` if it does not verify or does not hold a session payload. Whether it
    /// fits the request (token, version, expiry) is for the caller to check.
    pub(crate) fn decode(&self, value: &str, now_ms: i64) -> Option<Decoded> {
        let now_s = now_ms.div_euclid(1000);
        let (payload, expires_at_ms) = match self.options.strategy {
            CookieCacheStrategy::Compact => self.decode_compact(value)?,
            CookieCacheStrategy::Jwt => {
                let claims = crate::jwt::verify_hs256_any(&self.secret, value, now_s).ok()?;
                let exp = exp_ms(&claims, now_ms);
                (claims, exp)
            }
            CookieCacheStrategy::Jwe => {
                // The token names its key (`kid`); a key that is not it refuses at once.
                let claims = self
                    .jwe
                    .iter()
                    .find_map(|key| key.decrypt(value, now_s).ok())?;
                let exp = exp_ms(&claims, now_ms);
                (claims, exp)
            }
        };
        parse_payload(payload, expires_at_ms)
    }

    fn decode_compact(&self, value: &str) -> Option<(Map<String, Value>, i64)> {
        let bytes = URL_SAFE_NO_PAD.decode(value.trim_end_matches('=')).ok()?;
        let Value::Object(mut outer) = serde_json::from_slice(&bytes).ok()? else {
            return None;
        };
        let expires_at = outer.get("expiresAt")?.as_f64()?;
        let signature = outer.get("signature")?.as_str()?;
        let tag = URL_SAFE_NO_PAD
            .decode(signature.trim_end_matches('='))
            .ok()?;
        let Some(Value::Object(payload)) = outer.remove("session") else {
            return None;
        };
        let mut signed = payload.clone();
        signed.insert("expiresAt".into(), outer.get("expiresAt")?.clone());
        let text = js_stringify(&Value::Object(signed));
        if !self.secret.verify_hmac(text.as_bytes(), &tag) {
            return None;
        }
        Some((payload, expires_at as i64))
    }
}

/// The `exp` claim in milliseconds; a token without one counts as already expired.
fn exp_ms(claims: &Map<String, Value>, now_ms: i64) -> i64 {
    claims
        .get("exp")
        .and_then(Value::as_f64)
        .map_or(now_ms - 1, |e| (e * 1000.0) as i64)
}

/// Checks the payload's shape as Better Auth's schema does: a session and a user object,
/// a numeric `updatedAt`, an optional string `version` (`"1"` when absent).
fn parse_payload(mut p: Map<String, Value>, expires_at_ms: i64) -> Option<Decoded> {
    p.get("updatedAt")?.as_f64()?;
    let version = match p.get("version") {
        None => "1".to_owned(),
        Some(Value::String(v)) => v.clone(),
        Some(_) => return None,
    };
    let session: Session = serde_json::from_value(p.remove("session")?).ok()?;
    let user: User = serde_json::from_value(p.remove("user")?).ok()?;
    Some(Decoded {
        session: SessionAndUser { session, user },
        version,
        expires_at_ms,
    })
}

/// `JSON.stringify(JSON.parse(text, reviveDates))` as Better Auth computes it before checking
/// a compact signature: ISO-8601 UTC strings become `toISOString()` form (milliseconds),
/// integer-like keys come first in ascending order (JavaScript's property order), integral
/// floats lose their `.0`.
pub(crate) fn js_stringify(v: &Value) -> String {
    let mut out = String::new();
    write_js(v, &mut out);
    out
}

fn write_js(v: &Value, out: &mut String) {
    match v {
        Value::Null | Value::Bool(_) => out.push_str(&v.to_string()),
        Value::Number(n) => match n.as_f64() {
            Some(f) if !n.is_i64() && !n.is_u64() && f.fract() == 0.0 && f.abs() < 1e21 => {
                out.push_str(&format!("{f:.0}"))
            }
            _ => out.push_str(&n.to_string()),
        },
        Value::String(s) => {
            let revived = revive_date(s);
            out.push_str(&Value::String(revived.unwrap_or_else(|| s.clone())).to_string())
        }
        Value::Array(a) => {
            out.push('[');
            for (i, item) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_js(item, out);
            }
            out.push(']');
        }
        Value::Object(m) => {
            let mut index_keys: Vec<(u32, &String)> = m
                .keys()
                .filter_map(|k| array_index(k).map(|i| (i, k)))
                .collect();
            index_keys.sort_unstable_by_key(|(i, _)| *i);
            let ordered = index_keys
                .into_iter()
                .map(|(_, k)| k)
                .chain(m.keys().filter(|k| array_index(k).is_none()));
            out.push('{');
            for (i, k) in ordered.enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                write_js(&m[k.as_str()], out);
            }
            out.push('}');
        }
    }
}

/// A canonical array index (`"0"`, `"17"`, never `"01"`), which JavaScript orders first.
fn array_index(k: &str) -> Option<u32> {
    if k.is_empty() || (k.len() > 1 && k.starts_with('0')) || !k.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    k.parse::<u32>().ok().filter(|&i| i != u32::MAX)
}

/// Better Auth's `reviveDate`: `YYYY-MM-DDTHH:MM:SS[.f+]Z` that is a real date, in
/// `toISOString()` form.
fn revive_date(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let shape = b.len() >= 20
        && b.last() == Some(&b'Z')
        && b[..19].iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            _ => c.is_ascii_digit(),
        })
        && match &b[19..b.len() - 1] {
            [] => true,
            [b'.', rest @ ..] => !rest.is_empty() && rest.iter().all(u8::is_ascii_digit),
            _ => false,
        };
    if !shape {
        return None;
    }
    let t = chrono::DateTime::parse_from_rfc3339(s).ok()?;
    Some(crate::time::format(&t.with_timezone(&chrono::Utc)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stringifies_as_javascript_does_after_reviving_dates() {
        let v: Value = serde_json::from_str(
            r#"{"b":1,"10":true,"2":null,"a":"2024-01-02T03:04:05Z","c":"2024-01-02T03:04:05.123456Z","d":"2024-13-02T03:04:05Z","e":2.0,"f":[1.5,"x\n"]}"#,
        )
        .unwrap();
        assert_eq!(
            js_stringify(&v),
            r#"{"2":null,"10":true,"b":1,"a":"2024-01-02T03:04:05.000Z","c":"2024-01-02T03:04:05.123Z","d":"2024-13-02T03:04:05Z","e":2,"f":[1.5,"x\n"]}"#
        );
        assert_eq!(array_index("01"), None);
        assert_eq!(array_index("4294967295"), None);
        assert_eq!(array_index("4294967294"), Some(4294967294));
    }

    #[test]
    fn strategies_parse_by_name() {
        assert_eq!("jwe".parse(), Ok(CookieCacheStrategy::Jwe));
        assert!("base64".parse::<CookieCacheStrategy>().is_err());
    }
}
