//! Rate limiting with Better Auth's algorithm and default rules.
//!
//! Per client address and path: at most `max` requests whose gaps are shorter than `window`.
//! Rules are searched in order: configured custom rules, then plugin rules, then the built-in
//! rules for sensitive paths, then the global default. Counters live in a [`RateLimitStore`]:
//! process memory by default ([`MemoryStore`]); a store shared by several server processes
//! (Redis, the database) implements the same trait.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::BoxFuture;

use http::{HeaderName, HeaderValue, StatusCode};

use crate::error::ApiError;
use crate::plugin::RateRule;

/// Where rate-limit counters live. Implementations count atomically: two concurrent hits on
/// one key are two hits.
pub trait RateLimitStore: Send + Sync + std::fmt::Debug {
    /// Counts one request under `key`: `Ok(None)` when allowed, `Ok(Some(wait))` when over
    /// `max` requests in `window` (retry after `wait`). Errors mean the store is unreachable.
    fn hit<'a>(
        &'a self,
        key: &'a str,
        window: Duration,
        max: u32,
    ) -> BoxFuture<'a, Result<Option<Duration>, crate::storage::StorageError>>;

    /// Counter `key` (the per-account sign-in throttle's), unless it is absent or has not
    /// changed for `ttl`.
    fn counter<'a>(
        &'a self,
        key: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<Option<Counter>, crate::storage::StorageError>>;

    /// Adds one to counter `key`, starting from zero when it is absent or has not changed for
    /// `ttl`, unless `allow` refuses the counter as it stands; one atomic step, so two
    /// concurrent calls each see the other's addition. Answers the new count, or (`Err`) the
    /// counter `allow` refused. An absent counter is always added to.
    fn add<'a>(
        &'a self,
        key: &'a str,
        ttl: Duration,
        allow: &'a Gate<'a>,
    ) -> BoxFuture<'a, Result<Result<u32, Counter>, crate::storage::StorageError>>;

    /// Forgets counter `key`.
    fn remove<'a>(
        &'a self,
        key: &'a str,
    ) -> BoxFuture<'a, Result<(), crate::storage::StorageError>>;
}

/// Whether [`RateLimitStore::add`] may add to a counter as it stands.
pub type Gate<'g> = dyn Fn(Counter) -> bool + Send + Sync + 'g;

/// A counter of a [`RateLimitStore`]: its count and how long ago it last changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counter {
    /// The count.
    pub count: u32,
    /// Time since the last change.
    pub since_last: Duration,
}

/// Counters in this process's memory: the default, right for a single server process.
#[derive(Debug, Default)]
pub struct MemoryStore {
    buckets: Mutex<HashMap<String, Bucket>>,
    counters: Mutex<Counters>,
}

/// The counters, and when forgotten ones were last swept out.
#[derive(Debug, Default)]
struct Counters {
    map: HashMap<String, Kept>,
    swept: Option<Instant>,
}

impl Counters {
    /// Past this many counters, forgotten ones are swept (at most every ten seconds) and no
    /// new counter is kept while the map stays this large.
    const CAP: usize = 100_000;

    fn sweep(&mut self, now: Instant) {
        if self.map.len() < Self::CAP
            || self
                .swept
                .is_some_and(|t| now.duration_since(t) < Duration::from_secs(10))
        {
            return;
        }
        self.map.retain(|_, k| now.duration_since(k.last) < k.ttl);
        self.swept = Some(now);
    }
}

/// A counter in memory, with the lifetime it was last added with.
#[derive(Debug, Clone, Copy)]
struct Kept {
    count: u32,
    last: Instant,
    ttl: Duration,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl MemoryStore {
    /// Forgets buckets older than this, once the map grows large.
    const HORIZON: Duration = Duration::from_secs(3600);

    fn hit_now(&self, key: &str, window: Duration, max: u32) -> Option<Duration> {
        let now = Instant::now();
        let mut buckets = lock(&self.buckets);
        if buckets.len() > 100_000 {
            buckets.retain(|_, b| now.duration_since(b.last) < Self::HORIZON.max(window));
        }
        let bucket = buckets.entry(key.to_owned()).or_insert(Bucket {
            count: 0,
            last: now,
        });
        if bucket.count > 0 && now.duration_since(bucket.last) >= window {
            bucket.count = 0;
        }
        if bucket.count >= max {
            return Some((bucket.last + window).saturating_duration_since(now));
        }
        bucket.count += 1;
        bucket.last = now;
        None
    }

    fn counter_now(&self, key: &str, ttl: Duration) -> Option<Counter> {
        let kept = *lock(&self.counters).map.get(key)?;
        let since_last = kept.last.elapsed();
        (since_last < ttl).then_some(Counter {
            count: kept.count,
            since_last,
        })
    }

    fn add_now(&self, key: &str, ttl: Duration, allow: &Gate<'_>) -> Result<u32, Counter> {
        let now = Instant::now();
        let mut counters = lock(&self.counters);
        counters.sweep(now);
        if counters.map.len() >= Counters::CAP && !counters.map.contains_key(key) {
            tracing::warn!("too many counters in memory; a new one is not kept");
            return Ok(1);
        }
        let kept = counters.map.entry(key.to_owned()).or_insert(Kept {
            count: 0,
            last: now,
            ttl,
        });
        if now.duration_since(kept.last) >= kept.ttl {
            kept.count = 0;
        }
        if kept.count > 0 {
            let seen = Counter {
                count: kept.count,
                since_last: now.duration_since(kept.last),
            };
            if !allow(seen) {
                return Err(seen);
            }
        }
        kept.count = kept.count.saturating_add(1);
        kept.last = now;
        kept.ttl = ttl;
        Ok(kept.count)
    }
}

impl RateLimitStore for MemoryStore {
    fn hit<'a>(
        &'a self,
        key: &'a str,
        window: Duration,
        max: u32,
    ) -> BoxFuture<'a, Result<Option<Duration>, crate::storage::StorageError>> {
        let result = self.hit_now(key, window, max);
        Box::pin(async move { Ok(result) })
    }

    fn counter<'a>(
        &'a self,
        key: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<Option<Counter>, crate::storage::StorageError>> {
        let result = self.counter_now(key, ttl);
        Box::pin(async move { Ok(result) })
    }

    fn add<'a>(
        &'a self,
        key: &'a str,
        ttl: Duration,
        allow: &'a Gate<'a>,
    ) -> BoxFuture<'a, Result<Result<u32, Counter>, crate::storage::StorageError>> {
        let result = self.add_now(key, ttl, allow);
        Box::pin(async move { Ok(result) })
    }

    fn remove<'a>(
        &'a self,
        key: &'a str,
    ) -> BoxFuture<'a, Result<(), crate::storage::StorageError>> {
        lock(&self.counters).map.remove(key);
        Box::pin(async { Ok(()) })
    }
}

/// Counters in the primary database (Better Auth's `rateLimit` table: `key` unique, `count`,
/// `lastRequest` in ms), shared by every server process on that database. Each hit is a
/// compare-and-set on the row (`update … where key = ? and count = ? and lastRequest = ?`),
/// retried on conflict, so concurrent hits are counted exactly on every database without
/// locks or transactions.
#[derive(Debug)]
pub struct DatabaseStore {
    db: Arc<dyn crate::storage::Adapter>,
    /// Updates of one key from this process take turns (by one of 256 shards of the key's
    /// hash), so a burst of requests on one key does not spend its retries racing itself;
    /// other processes are met by the compare-and-set.
    turns: Vec<tokio::sync::Mutex<()>>,
    /// Seeded per store, so nobody can aim keys at one shard.
    shards: std::collections::hash_map::RandomState,
}

impl DatabaseStore {
    /// Counters in `db`, which must have the `rateLimit` table
    /// ([`RateLimitOptions::database_storage`] adds it to the schema).
    pub fn new(db: Arc<dyn crate::storage::Adapter>) -> Self {
        Self {
            db,
            turns: (0..256).map(|_| tokio::sync::Mutex::new(())).collect(),
            shards: std::collections::hash_map::RandomState::new(),
        }
    }

    async fn turn(&self, key: &str) -> tokio::sync::MutexGuard<'_, ()> {
        use std::hash::BuildHasher;
        // One seed per store: a key always takes the same shard of this store.
        let shard = (self.shards.hash_one(key) % self.turns.len() as u64) as usize;
        self.turns[shard].lock().await
    }

    /// The table's schema.
    pub fn table() -> crate::schema::Table {
        use crate::schema::{Field, FieldType, Table};
        Table::new(
            "rateLimit",
            vec![
                Field::new("key", FieldType::String).unique(),
                Field::new("count", FieldType::Number),
                Field::new("lastRequest", FieldType::Number).bigint(),
            ],
        )
    }

    async fn hit_db(
        &self,
        key: &str,
        window: Duration,
        max: u32,
    ) -> Result<Option<Duration>, crate::storage::StorageError> {
        let window_ms = i64::try_from(window.as_millis()).unwrap_or(i64::MAX);
        let _turn = self.turn(key).await;
        self.compare_and_set(key, |found, now| match found {
            Some((count, last)) if now.saturating_sub(last) < window_ms => {
                if count >= i64::from(max) {
                    let wait = (last.saturating_add(window_ms) - now).max(0) as u64;
                    Step::Done(Some(Duration::from_millis(wait)))
                } else {
                    Step::Write(count + 1, None)
                }
            }
            _ => Step::Write(1, None),
        })
        .await
    }

    async fn counter_db(
        &self,
        key: &str,
        ttl: Duration,
    ) -> Result<Option<Counter>, crate::storage::StorageError> {
        use crate::storage::Where;
        let Some(row) = self
            .db
            .find_one("rateLimit", &[Where::eq("key", key)])
            .await?
        else {
            return Ok(None);
        };
        let (count, last) = (int_of(&row, "count"), int_of(&row, "lastRequest"));
        let now = chrono::Utc::now().timestamp_millis();
        let since_last = Duration::from_millis(now.saturating_sub(last).max(0) as u64);
        Ok((since_last < ttl).then_some(Counter {
            count: u32::try_from(count).unwrap_or(u32::MAX),
            since_last,
        }))
    }

    async fn add_db(
        &self,
        key: &str,
        ttl: Duration,
        allow: &Gate<'_>,
    ) -> Result<Result<u32, Counter>, crate::storage::StorageError> {
        let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
        let _turn = self.turn(key).await;
        self.compare_and_set(key, |found, now| {
            let next = match found {
                Some((count, last)) if now.saturating_sub(last) < ttl_ms => {
                    let seen = Counter {
                        count: u32::try_from(count).unwrap_or(u32::MAX),
                        since_last: Duration::from_millis(now.saturating_sub(last).max(0) as u64),
                    };
                    if count > 0 && !allow(seen) {
                        return Step::Done(Err(seen));
                    }
                    count.saturating_add(1)
                }
                _ => 1,
            };
            Step::Write(next, Ok(u32::try_from(next).unwrap_or(u32::MAX)))
        })
        .await
    }

    /// Updates counter `key` by compare-and-set (`update … where key = ? and count = ? and
    /// lastRequest = ?`, or an insert when there is no row), retried on conflict, so concurrent
    /// updates are counted exactly on every database without locks or transactions. `decide`
    /// sees the row's `(count, lastRequest)` and the time, in ms.
    async fn compare_and_set<T>(
        &self,
        key: &str,
        decide: impl Fn(Option<(i64, i64)>, i64) -> Step<T>,
    ) -> Result<T, crate::storage::StorageError> {
        use crate::storage::{Row, StorageError, Where};
        for attempt in 0..64 {
            if attempt > 0 {
                // Someone else counted first: let them finish, then read again.
                tokio::task::yield_now().await;
            }
            let now = chrono::Utc::now().timestamp_millis();
            let row = self
                .db
                .find_one("rateLimit", &[Where::eq("key", key)])
                .await?;
            let found = row
                .as_ref()
                .map(|r| (int_of(r, "count"), int_of(r, "lastRequest")));
            let (next, answer) = match decide(found, now) {
                Step::Done(answer) => return Ok(answer),
                Step::Write(next, answer) => (next, answer),
            };
            let Some((count, last)) = found else {
                let fresh = Row::new()
                    .with("key", key)
                    .with("count", next)
                    .with("lastRequest", now);
                match self.db.create("rateLimit", fresh).await {
                    Ok(_) => return Ok(answer),
                    Err(StorageError::UniqueViolation) => continue,
                    Err(e) => return Err(e),
                }
            };
            let expected = [
                Where::eq("key", key),
                Where::eq("count", count),
                Where::eq("lastRequest", last),
            ];
            let set = Row::new().with("count", next).with("lastRequest", now);
            if self.db.update_many("rateLimit", &expected, set).await? == 1 {
                return Ok(answer);
            }
        }
        Err(StorageError::Unknown(
            "rate-limit counter under contention".into(),
        ))
    }
}

/// What [`DatabaseStore::compare_and_set`] does with a counter: write a new count, or leave
/// it; either way with the answer.
enum Step<T> {
    Write(i64, T),
    Done(T),
}

fn int_of(row: &crate::storage::Row, field: &str) -> i64 {
    match row.get(field) {
        Some(crate::storage::Value::Int(i)) => *i,
        _ => 0,
    }
}

impl RateLimitStore for DatabaseStore {
    fn hit<'a>(
        &'a self,
        key: &'a str,
        window: Duration,
        max: u32,
    ) -> BoxFuture<'a, Result<Option<Duration>, crate::storage::StorageError>> {
        Box::pin(self.hit_db(key, window, max))
    }

    fn counter<'a>(
        &'a self,
        key: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<Option<Counter>, crate::storage::StorageError>> {
        Box::pin(self.counter_db(key, ttl))
    }

    fn add<'a>(
        &'a self,
        key: &'a str,
        ttl: Duration,
        allow: &'a Gate<'a>,
    ) -> BoxFuture<'a, Result<Result<u32, Counter>, crate::storage::StorageError>> {
        Box::pin(self.add_db(key, ttl, allow))
    }

    fn remove<'a>(
        &'a self,
        key: &'a str,
    ) -> BoxFuture<'a, Result<(), crate::storage::StorageError>> {
        use crate::storage::Where;
        Box::pin(async move {
            self.db
                .delete_many("rateLimit", &[Where::eq("key", key)])
                .await
                .map(|_| ())
        })
    }
}

/// Rate-limit configuration.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RateLimitOptions {
    /// Whether the limiter runs at all.
    pub enabled: bool,
    /// The global window (10 s by default).
    pub window: Duration,
    /// Requests per global window (100 by default).
    pub max: u32,
    /// Rules that take precedence over plugin and built-in rules.
    pub custom_rules: Vec<RateRule>,
    /// Where counters live; process memory when `None` (unless `database_storage`).
    pub store: Option<Arc<dyn RateLimitStore>>,
    /// Keep counters in the primary database (the `rateLimit` table), shared by every server
    /// process on it.
    pub database_storage: bool,
    /// Per-account throttling of password sign-in, with its counters in the same store. On
    /// even when `enabled` is off, which is about the per-address limits.
    pub account: crate::throttle::AccountThrottleOptions,
}

impl Default for RateLimitOptions {
    fn default() -> Self {
        Self {
            enabled: true,
            window: Duration::from_secs(10),
            max: 100,
            custom_rules: Vec::new(),
            store: None,
            database_storage: false,
            account: Default::default(),
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

/// The limiter: rules over a store.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    rules: Vec<RateRule>,
    default: RateRule,
    store: Arc<dyn RateLimitStore>,
}

const MESSAGE: &str = "Too many requests. Please try again later.";

impl RateLimiter {
    pub(crate) fn new(
        options: &RateLimitOptions,
        plugin_rules: Vec<RateRule>,
        store: Arc<dyn RateLimitStore>,
    ) -> Self {
        let mut rules = options.custom_rules.clone();
        rules.extend(plugin_rules);
        rules.extend(builtin_rules());
        Self {
            rules,
            default: RateRule::prefix("/", options.window, options.max),
            store,
        }
    }

    /// Counts one request from `client` to `path` (relative to the base path); 429 when over
    /// the limit. A store that fails lets the request through (and says so in the log): an
    /// outage of the counter store must not take sign-in down with it.
    pub(crate) async fn check(&self, client: &str, path: &str) -> Result<(), ApiError> {
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
        match self.store.hit(&key, rule.window, rule.max).await {
            Ok(None) => Ok(()),
            Ok(Some(wait)) => Err(too_many_requests(wait)),
            Err(e) => {
                tracing::error!(error = %e, "rate-limit store failed; request let through");
                Ok(())
            }
        }
    }
}

/// Better Auth's 429 answer, with the wait in whole seconds (at least one).
pub(crate) fn too_many_requests(wait: Duration) -> ApiError {
    let secs = wait.as_millis().div_ceil(1000).max(1);
    ApiError::without_code(StatusCode::TOO_MANY_REQUESTS, MESSAGE).with_header(
        HeaderName::from_static("x-retry-after"),
        HeaderValue::from(u64::try_from(secs).unwrap_or(u64::MAX)),
    )
}

/// The store the options choose: the configured one, else the primary database with
/// `database_storage`, else process memory.
pub(crate) fn store_for(
    options: &RateLimitOptions,
    db: &Arc<dyn crate::storage::Adapter>,
) -> Arc<dyn RateLimitStore> {
    match &options.store {
        Some(store) => store.clone(),
        None if options.database_storage => Arc::new(DatabaseStore::new(db.clone())),
        None => Arc::new(MemoryStore::default()),
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

    fn memory() -> Arc<dyn RateLimitStore> {
        Arc::new(MemoryStore::default())
    }

    #[tokio::test]
    async fn sign_in_allows_three_per_ten_seconds_per_client() {
        let rl = RateLimiter::new(&RateLimitOptions::default(), vec![], memory());
        for _ in 0..3 {
            rl.check("1.1.1.1", "/sign-in/email").await.unwrap();
        }
        let err = rl.check("1.1.1.1", "/sign-in/email").await.unwrap_err();
        assert_eq!(err.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(err.headers()["x-retry-after"], "10");
        assert_eq!(err.code(), None);
        // Another client and another path are unaffected; spellings of the path are not.
        rl.check("2.2.2.2", "/sign-in/email").await.unwrap();
        rl.check("1.1.1.1", "/get-session").await.unwrap();
        assert!(rl.check("1.1.1.1", "//sign-in/email/").await.is_err());
    }

    #[tokio::test]
    async fn plugin_rules_override_builtin_ones() {
        let rl = RateLimiter::new(
            &RateLimitOptions::default(),
            vec![RateRule::exact(
                "/sign-in/email",
                Duration::from_secs(10),
                5,
            )],
            memory(),
        );
        for _ in 0..5 {
            rl.check("1.1.1.1", "/sign-in/email").await.unwrap();
        }
        assert!(rl.check("1.1.1.1", "/sign-in/email").await.is_err());
    }

    /// A store that always fails: requests go through rather than fail.
    #[derive(Debug)]
    struct Broken;

    fn down<'a, T: 'a>() -> BoxFuture<'a, Result<T, crate::storage::StorageError>> {
        Box::pin(async { Err(crate::storage::StorageError::Unknown("down".into())) })
    }

    impl RateLimitStore for Broken {
        fn hit<'a>(
            &'a self,
            _: &'a str,
            _: Duration,
            _: u32,
        ) -> BoxFuture<'a, Result<Option<Duration>, crate::storage::StorageError>> {
            down()
        }

        fn counter<'a>(
            &'a self,
            _: &'a str,
            _: Duration,
        ) -> BoxFuture<'a, Result<Option<Counter>, crate::storage::StorageError>> {
            down()
        }

        fn add<'a>(
            &'a self,
            _: &'a str,
            _: Duration,
            _: &'a Gate<'a>,
        ) -> BoxFuture<'a, Result<Result<u32, Counter>, crate::storage::StorageError>> {
            down()
        }

        fn remove<'a>(
            &'a self,
            _: &'a str,
        ) -> BoxFuture<'a, Result<(), crate::storage::StorageError>> {
            down()
        }
    }

    #[tokio::test]
    async fn a_failing_store_fails_open() {
        let rl = RateLimiter::new(&RateLimitOptions::default(), vec![], Arc::new(Broken));
        for _ in 0..10 {
            rl.check("1.1.1.1", "/sign-in/email").await.unwrap();
        }
    }
}
