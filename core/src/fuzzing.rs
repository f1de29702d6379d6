//! Entry points for the fuzz targets (`fuzz/`), feature `fuzzing`: the decoders of values a
//! client sends that are private otherwise. Not an API.

use std::sync::LazyLock;

use crate::cookie_cache::{CookieCache, CookieCacheOptions, CookieCacheStrategy};
use crate::crypto::Secret;

const SECRET: &str = "the-fuzzing-secret-0123456789abcdef0123456789";

static CACHES: LazyLock<Vec<CookieCache>> = LazyLock::new(|| {
    let secret = Secret::rotating(
        [(2, SECRET.to_owned()), (1, format!("{SECRET}-old"))],
        Some(format!("{SECRET}-legacy")),
    )
    .unwrap_or_else(|_| Secret::generate());
    [
        CookieCacheStrategy::Compact,
        CookieCacheStrategy::Jwt,
        CookieCacheStrategy::Jwe,
    ]
    .into_iter()
    .map(|strategy| {
        let options = CookieCacheOptions {
            enabled: true,
            strategy,
            ..CookieCacheOptions::default()
        };
        CookieCache::new(options, secret.clone())
    })
    .collect()
});

/// Decodes `value` as a `session_data` cookie of every strategy (compact, JWT, JWE) at
/// `now_ms`; how many accepted it (only a forged signature could make it more than zero).
pub fn cookie_cache(value: &str, now_ms: i64) -> usize {
    CACHES
        .iter()
        .filter(|c| c.decode(value, now_ms).is_some())
        .count()
}

/// Verifies `token` as an HS256 JWT under the fuzzing secret; whether it verified.
pub fn jwt(token: &str, now: i64) -> bool {
    let secret = Secret::new(SECRET).unwrap_or_else(|_| Secret::generate());
    crate::jwt::verify_hs256_any(&secret, token, now).is_ok()
}

/// Decrypts `value` as a value encrypted under the fuzzing secrets (`$ba$` envelope or hex).
pub fn decrypt(value: &str) -> bool {
    let secret = Secret::rotating([(2, SECRET.to_owned())], Some(format!("{SECRET}-legacy")))
        .unwrap_or_else(|_| Secret::generate());
    secret.decrypt(value).is_ok()
}

static TRUSTED: LazyLock<Option<crate::origin::TrustedOrigins>> = LazyLock::new(|| {
    crate::origin::TrustedOrigins::new(
        Some("https://auth.example.com"),
        &[
            "https://*.example.com".into(),
            "http://localhost:3000".into(),
            "myapp://".into(),
        ],
    )
    .ok()
});

/// Whether `value` passes as a redirect target (`callbackURL`) and as an `Origin`, against a
/// base URL and trusted origins with a wildcard and a custom scheme.
pub fn redirect(value: &str) -> (bool, bool) {
    match &*TRUSTED {
        Some(t) => (t.allows_redirect(value), t.trusts_header(value)),
        None => (false, false),
    }
}
