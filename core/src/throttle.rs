//! Per-account throttling of password sign-in, beyond Better Auth's per-address limits.
//!
//! An attacker who rotates client addresses gets three guesses per address every ten seconds
//! from the rate limiter, and as many addresses as they can rent. This counts consecutive failed
//! password checks per *account*, whatever the address: after
//! [`AccountThrottleOptions::threshold`] failures (10) every further attempt must wait, one
//! second after the threshold and twice as long after each further failure, up to
//! [`AccountThrottleOptions::max_delay`] (one hour). An attempt that comes too early is refused
//! with 429 and `X-Retry-After` before the password is hashed, so guessing costs the attacker
//! time and the server nothing. With the defaults an account sees at most about 45 guesses in
//! the first day and 24 a day after, well below NIST SP 800-63B's 100.
//!
//! Throttling must not hand the attacker a lock-out of the owner, so:
//!
//! - an address the account has signed in from before (within
//!   [`AccountThrottleOptions::known_address_for`]) has a budget of its own: failures from
//!   unknown addresses never slow the owner's own address down;
//! - a correct password, or a completed password reset, clears the count;
//! - other ways in (a reset link, passkeys, social sign-in) are not throttled.
//!
//! Every attempt counts as a failure from the moment it starts, in one atomic step with the
//! check, until it succeeds: guesses sent all at once cannot slip past a count none of them
//! has added to yet. (So at most `threshold` sign-ins of one account can be in flight at once,
//! right passwords included; no person signs in that way.)
//!
//! An identifier that names no account is counted exactly like one that does, so the throttle
//! tells nobody which emails exist. Counters live in the rate-limit store (memory or the
//! primary database), so every server process on a database shares them; a store that fails
//! lets the attempt through and logs, as the rate limiter does.

use std::sync::Arc;
use std::time::Duration;

use crate::context::Ctx;
use crate::error::ApiError;
use crate::rate_limit::{Counter, RateLimitStore};

/// Options of the per-account sign-in throttle ([`RateLimitOptions::account`]).
///
/// [`RateLimitOptions::account`]: crate::rate_limit::RateLimitOptions::account
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct AccountThrottleOptions {
    /// Whether accounts are throttled at all (on by default; Better Auth has no such thing).
    pub enabled: bool,
    /// Consecutive failures an account may have before attempts are slowed (10).
    pub threshold: u32,
    /// The longest wait between attempts (one hour).
    pub max_delay: Duration,
    /// A count is forgotten after this long without a failure (one day).
    pub forget_after: Duration,
    /// How long an address the account signed in from keeps a budget of its own (90 days).
    pub known_address_for: Duration,
}

impl Default for AccountThrottleOptions {
    fn default() -> Self {
        Self {
            enabled: true,
            threshold: 10,
            max_delay: Duration::from_secs(3600),
            forget_after: Duration::from_secs(24 * 3600),
            known_address_for: Duration::from_secs(90 * 24 * 3600),
        }
    }
}

/// The per-account throttle of password sign-in ([`Auth::sign_in_throttle`]). A sign-in path
/// asks [`SignInThrottle::begin`] before it checks a password and reports the outcome on the
/// [`PasswordAttempt`] it gets.
///
/// [`Auth::sign_in_throttle`]: crate::Auth::sign_in_throttle
#[derive(Debug)]
pub struct SignInThrottle {
    options: AccountThrottleOptions,
    store: Arc<dyn RateLimitStore>,
}

/// A password check under way, already counted as a failure; report a success with
/// [`PasswordAttempt::succeeded`] ([`PasswordAttempt::failed`] says the other outcome
/// aloud).
#[derive(Debug)]
#[must_use = "report the outcome of the password check"]
pub struct PasswordAttempt<'a> {
    throttle: &'a SignInThrottle,
    account: String,
    client: Option<String>,
    /// The counter this attempt is charged to.
    bucket: Option<String>,
}

fn failures_key(account: &str) -> String {
    format!("signin-fail|{account}")
}

fn address_failures_key(account: &str, client: &str) -> String {
    format!("signin-fail|{account}|{client}")
}

fn known_key(account: &str, client: &str) -> String {
    format!("signin-known|{account}|{client}")
}

impl SignInThrottle {
    pub(crate) fn new(options: AccountThrottleOptions, store: Arc<dyn RateLimitStore>) -> Self {
        Self { options, store }
    }

    /// Before a password check for `account`: the user id when the identifier names a user,
    /// otherwise a stable name of the identifier (`email:<address>`), so that unknown and known
    /// identifiers are throttled alike. Refuses with 429 and `X-Retry-After` while the account
    /// (or, for an address it signed in from before, that address's budget) must wait.
    pub async fn begin(&self, ctx: &Ctx, account: &str) -> Result<PasswordAttempt<'_>, ApiError> {
        let client = ctx.client_ip().filter(|c| !c.is_empty()).map(str::to_owned);
        let mut attempt = PasswordAttempt {
            throttle: self,
            account: account.to_owned(),
            client,
            bucket: None,
        };
        if !self.options.enabled {
            return Ok(attempt);
        }
        let known = match &attempt.client {
            Some(client) => {
                let key = known_key(account, client);
                let found = self.store.counter(&key, self.options.known_address_for);
                self.logged(found.await).flatten().is_some()
            }
            None => false,
        };
        let bucket = match (&attempt.client, known) {
            (Some(client), true) => address_failures_key(account, client),
            _ => failures_key(account),
        };
        // The attempt counts as a failure from the start (until it succeeds), in the same
        // atomic step as the check: attempts sent at once cannot all pass a count that none of
        // them has added to yet.
        let threshold = self.options.threshold;
        let allow = |c: Counter| c.count < threshold || c.since_last >= self.delay(c.count);
        let counted = self
            .store
            .add(&bucket, self.options.forget_after, &allow)
            .await;
        match self.logged(counted) {
            Some(Err(c)) => {
                tracing::info!("sign-in attempt refused: the account is cooling down");
                let wait = self.delay(c.count).saturating_sub(c.since_last);
                Err(crate::rate_limit::too_many_requests(wait))
            }
            Some(Ok(_)) => {
                attempt.bucket = Some(bucket);
                Ok(attempt)
            }
            None => Ok(attempt),
        }
    }

    /// Forgets `account`'s failures (after a completed password reset, say): the count from
    /// unknown addresses; an address's own budget clears when it signs in.
    pub async fn clear(&self, account: &str) {
        if self.options.enabled {
            self.logged(self.store.remove(&failures_key(account)).await);
        }
    }

    /// The wait after `count` consecutive failures (at least the threshold).
    fn delay(&self, count: u32) -> Duration {
        let doublings = count.saturating_sub(self.options.threshold).min(32);
        Duration::from_secs(1u64 << doublings).min(self.options.max_delay)
    }

    fn logged<T>(&self, r: Result<T, crate::storage::StorageError>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(e) => {
                tracing::error!(error = %e, "sign-in throttle store failed; attempt let through");
                None
            }
        }
    }
}

impl PasswordAttempt<'_> {
    /// The password was wrong. Nothing more to count: the attempt was counted as a failure
    /// when it began (dropping it is the same).
    pub fn failed(self) {}

    /// The password was right: the account's counts clear and the address becomes one the
    /// account is known to sign in from.
    pub async fn succeeded(self) {
        let t = self.throttle;
        if self.bucket.is_none() {
            return;
        }
        t.logged(t.store.remove(&failures_key(&self.account)).await);
        if let Some(client) = &self.client {
            let address = address_failures_key(&self.account, client);
            t.logged(t.store.remove(&address).await);
            let known = known_key(&self.account, client);
            let always = |_: Counter| true;
            let added = t.store.add(&known, t.options.known_address_for, &always);
            t.logged(added.await);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_doubles_from_one_second_to_the_cap() {
        let t = SignInThrottle::new(
            AccountThrottleOptions::default(),
            Arc::new(crate::rate_limit::MemoryStore::default()),
        );
        assert_eq!(t.delay(10), Duration::from_secs(1));
        assert_eq!(t.delay(11), Duration::from_secs(2));
        assert_eq!(t.delay(15), Duration::from_secs(32));
        assert_eq!(t.delay(40), Duration::from_secs(3600));
        assert_eq!(t.delay(u32::MAX), Duration::from_secs(3600));
    }
}
