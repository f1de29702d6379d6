//! Rate limiting with Better Auth's algorithm and default rules, in process memory.
//!
//! Per client address and path: at most `max` requests whose gaps are shorter than `window`.
//! Rules are searched in order: configured custom rules, then plugin rules, then the built-in
//! rules for sensitive paths, then the global default.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use http::{HeaderName, HeaderValue, StatusCode};

use crate::error::ApiError;
use crate::plugin::RateRule;

/// Rate-limit configuration.
#[derive(Debug, Clone)]
pub struct RateLimitOptions {
    /// Whether the limiter runs at all.
    pub enabled: bool,
    /// The global window (10 s by default).
    pub window: Duration,
    /// Requests per global window (100 by default).
    pub max: u32,
    /// Rules that take precedence over plugin and built-in rules.
    pub custom_rules: Vec<RateRule>,
}

impl Default for RateLimitOptions {
    fn default() -> Self {
        Self {
            enabled: true,
            window: Duration::from_secs(10),
            max: 100,
            custom_rules: Vec::new(),
        }
    }
}

/// Better Auth's built-in rules for sensitive paths.
pub fn builtin_rules() -> Vec<RateRule> {
    let ten = Duration::from_secs(10);
    let minute = Duration::from_secs(60);
    vec![
        RateRule::prefix("/sign-in", ten, 3),
        RateRule::prefix("/sign-up", ten, 3),
        RateRule::prefix("/change-password", ten, 3),
        RateRule::prefix("/change-email", ten, 3),
        RateRule::exact("/request-password-reset", minute, 3),
        RateRule::exact("/send-verification-email", minute, 3),
        RateRule::prefix("/forget-password", minute, 3),
        RateRule::exact("/email-otp/send-verification-otp", minute, 3),
        RateRule::exact("/email-otp/request-password-reset", minute, 3),
    ]
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    count: u32,
    last: Instant,
}

/// The in-memory limiter.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    rules: Vec<RateRule>,
    default: RateRule,
    longest_window: Duration,
    buckets: Mutex<HashMap<String, Bucket>>,
}

const MESSAGE: &str = "Too many requests. Please try again later.";

impl RateLimiter {
    pub(crate) fn new(options: &RateLimitOptions, plugin_rules: Vec<RateRule>) -> Self {
        let mut rules = options.custom_rules.clone();
        rules.extend(plugin_rules);
        rules.extend(builtin_rules());
        let default = RateRule::prefix("/", options.window, options.max);
        let longest_window = rules
            .iter()
            .map(|r| r.window)
            .chain([default.window])
            .max()
            .unwrap_or(default.window);
        Self {
            rules,
            default,
            longest_window,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Counts one request from `client` to `path` (relative to the base path); 429 when over
    /// the limit.
    pub(crate) fn check(&self, client: &str, path: &str) -> Result<(), ApiError> {
        let path = normalize_path(path);
        let rule = self
            .rules
            .iter()
            .find(|r| r.matches(&path))
            .unwrap_or(&self.default);
        if rule.max == 0 {
            return Ok(());
        }
        let key = format!("{client}|{path}");
        let now = Instant::now();
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if buckets.len() > 100_000 {
            let horizon = self.longest_window;
            buckets.retain(|_, b| now.duration_since(b.last) < horizon);
        }
        let bucket = buckets.entry(key).or_insert(Bucket {
            count: 0,
            last: now,
        });
        if bucket.count > 0 && now.duration_since(bucket.last) >= rule.window {
            bucket.count = 0;
        }
        if bucket.count >= rule.max {
            let retry = (bucket.last + rule.window).saturating_duration_since(now);
            let secs = retry.as_millis().div_ceil(1000).max(1);
            return Err(
                ApiError::without_code(StatusCode::TOO_MANY_REQUESTS, MESSAGE).with_header(
                    HeaderName::from_static("x-retry-after"),
                    HeaderValue::from(secs as u64),
                ),
            );
        }
        bucket.count += 1;
        bucket.last = now;
        Ok(())
    }
}

/// One spelling per path: no repeated or trailing slashes.
fn normalize_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for seg in path.split('/').filter(|s| !s.is_empty()) {
        out.push('/');
        out.push_str(seg);
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_in_allows_three_per_ten_seconds_per_client() {
        let rl = RateLimiter::new(&RateLimitOptions::default(), vec![]);
        for _ in 0..3 {
            rl.check("1.1.1.1", "/sign-in/email").unwrap();
        }
        let err = rl.check("1.1.1.1", "/sign-in/email").unwrap_err();
        assert_eq!(err.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(err.headers()["x-retry-after"], "10");
        assert_eq!(err.code(), None);
        // Another client and another path are unaffected; spellings of the path are not.
        rl.check("2.2.2.2", "/sign-in/email").unwrap();
        rl.check("1.1.1.1", "/get-session").unwrap();
        assert!(rl.check("1.1.1.1", "//sign-in/email/").is_err());
    }

    #[test]
    fn plugin_rules_override_builtin_ones() {
        let rl = RateLimiter::new(
            &RateLimitOptions::default(),
            vec![RateRule::exact(
                "/sign-in/email",
                Duration::from_secs(10),
                5,
            )],
        );
        for _ in 0..5 {
            rl.check("1.1.1.1", "/sign-in/email").unwrap();
        }
        assert!(rl.check("1.1.1.1", "/sign-in/email").is_err());
    }
}
