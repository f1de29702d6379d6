//! Creating sessions and writing their cookies, as Better Auth does.

use crate::context::{Ctx, Reply};
use crate::cookies::SetCookie;
use crate::crypto::{random_string, ALPHANUMERIC};
use crate::error::{codes, ApiError};
use crate::session_store::SessionStore as _;
use crate::storage::{Row, Session, SessionAndUser, StorageError, Store, User};
use crate::Auth;
use chrono::{DateTime, Utc};

/// Better Auth's per-cookie byte ceiling for a serialised `Set-Cookie` (Safari's ~4093 floor,
/// less a margin).
const MAX_COOKIE_SIZE: usize = 4050;

/// Most chunks a cookie is split into.
use crate::cookies::MAX_CHUNKS;

/// What the request's cookie cache says.
#[derive(Debug)]
pub(crate) enum CacheRead {
    /// A valid cache of this session.
    Hit(Box<SessionAndUser>),
    /// No cache, or one not to be used.
    Absent,
    /// A cache that is forged, expired, of another session or version: delete it.
    Invalid,
}

impl Auth {
    /// A new session row for `user_id`, stored through `store` (the pool or a transaction).
    /// `dont_remember` makes it a one-day session whose cookie dies with the browser.
    pub async fn create_session(
        &self,
        store: Store<'_>,
        ctx: &Ctx,
        user_id: &str,
        dont_remember: bool,
    ) -> Result<Session, ApiError> {
        let now = crate::time::now();
        let opts = &self.options().session;
        let lifetime = if dont_remember {
            opts.dont_remember_expires_in
        } else {
            opts.expires_in
        };
        let session = Session {
            id: self.options().ids.generate(),
            expires_at: now + lifetime,
            token: random_string(32, ALPHANUMERIC),
            created_at: now,
            updated_at: now,
            ip_address: Some(ctx.client_ip().unwrap_or_default().to_owned()),
            user_agent: Some(ctx.user_agent().to_owned()),
            user_id: user_id.to_owned(),
            extra: Default::default(),
            hidden: Default::default(),
        };
        self.sessions().create(store, &session).await.map_err(|e| {
            ApiError::from_storage(
                e,
                "failed to create session",
                ApiError::bad_request(codes::FAILED_TO_CREATE_SESSION),
            )
        })
    }

    /// Sets the signed session cookie for `session` on `reply`, and the cookie cache of
    /// `session` and `user` when it is enabled. With `dont_remember` (or a `dont_remember`
    /// cookie already on the request) the cookies have no `Max-Age` and the signed
    /// `dont_remember` marker is set; a remembered sign-in clears an old marker.
    pub fn set_session_cookie(
        &self,
        ctx: &Ctx,
        reply: &mut Reply,
        session: &Session,
        user: &User,
        dont_remember: Option<bool>,
    ) {
        let jar = self.cookies();
        let dont_remember = dont_remember.unwrap_or_else(|| self.has_dont_remember(ctx));
        let mut cookie = self.signed_cookie(jar.session_token.clone(), &session.token);
        if dont_remember {
            reply.set_cookie(&cookie);
            reply.set_cookie(&self.signed_cookie(jar.dont_remember.clone(), "true"));
        } else {
            cookie.max_age = Some(self.options().session.expires_in.as_secs() as i64);
            reply.set_cookie(&cookie);
            // Only a marker this server signed; a forged or garbled one is left alone, as
            // Better Auth leaves it.
            if self.has_dont_remember(ctx) {
                reply.set_cookie(&jar.expired(jar.dont_remember.clone()));
            }
        }
        for c in self.cookie_cache_cookies(ctx, session, user, dont_remember) {
            reply.set_cookie(&c);
        }
    }

    /// The `Set-Cookie`s that write the cookie cache of `session` and `user` (none when the
    /// cache is off): first the deletion of every `session_data` cookie and chunk the request
    /// carried, then the value, split into `session_data.0`, `.1`, … when one cookie would
    /// pass Better Auth's 4050-byte limit. A value that needs more than 100 chunks is not
    /// cached at all.
    pub(crate) fn cookie_cache_cookies(
        &self,
        ctx: &Ctx,
        session: &Session,
        user: &User,
        dont_remember: bool,
    ) -> Vec<SetCookie> {
        let cache = self.cookie_cache();
        if !cache.options.enabled {
            return Vec::new();
        }
        let jar = self.cookies();
        let name = &jar.session_data;
        let mut out: Vec<SetCookie> = Vec::new();
        if crate::cookies::get_cookie(ctx.headers(), name).is_some() {
            out.push(jar.expired(name.clone()));
        }
        for (_, n) in crate::cookies::chunk_names(ctx.headers(), name) {
            out.push(jar.expired(n));
        }
        let now_ms = crate::time::now().timestamp_millis();
        let value = cache.encode(session, user, dont_remember, now_ms);
        let mut template = jar.cookie(String::new(), String::new());
        if !dont_remember {
            template.max_age = Some(cache.max_age_secs());
        }
        let named = |name: String, value: &str| SetCookie {
            name,
            value: value.to_owned(),
            ..template.clone()
        };
        // Sized against the longest chunk name, as Better Auth does.
        let overhead = named(format!("{name}.{}", MAX_CHUNKS - 1), "")
            .to_header_value()
            .len();
        let chunk_size = MAX_COOKIE_SIZE.saturating_sub(overhead);
        let count = if chunk_size == 0 {
            usize::MAX
        } else {
            value.len().div_ceil(chunk_size)
        };
        if count <= 1 {
            out.push(named(name.clone(), &value));
        } else if count > MAX_CHUNKS {
            tracing::warn!(
                bytes = value.len(),
                "the session is too large for the cookie cache even in chunks; not cached"
            );
        } else {
            // The value is ASCII (base64url or a JWT), so byte offsets are char boundaries.
            for (i, chunk) in value.as_bytes().chunks(chunk_size).enumerate() {
                let chunk = std::str::from_utf8(chunk).unwrap_or_default();
                out.push(named(format!("{name}.{i}"), chunk));
            }
        }
        out
    }

    /// Writes a fresh cookie cache for `session` and `user` on `reply` (nothing when the cache
    /// is off), keeping the session cookie as it is.
    pub fn set_cookie_cache(
        &self,
        ctx: &Ctx,
        reply: &mut Reply,
        session: &Session,
        user: &User,
        dont_remember: bool,
    ) {
        for c in self.cookie_cache_cookies(ctx, session, user, dont_remember) {
            reply.set_cookie(&c);
        }
    }

    /// The `Set-Cookie`s that delete the cookie cache: `session_data` and every chunk of it
    /// the request carried.
    pub(crate) fn cookie_cache_deletions(&self, ctx: &Ctx) -> Vec<SetCookie> {
        let jar = self.cookies();
        let mut out = vec![jar.expired(jar.session_data.clone())];
        for (_, name) in crate::cookies::chunk_names(ctx.headers(), &jar.session_data) {
            out.push(jar.expired(name));
        }
        out
    }

    /// Whether `session` is `updateAge` old at `now`: due to be extended.
    pub(crate) fn extension_due(&self, session: &Session, now: DateTime<Utc>) -> bool {
        let opts = &self.options().session;
        session.expires_at - opts.expires_in + opts.update_age <= now
    }

    /// Sets fields of session `token` through the engine's session store (what a plugin
    /// uses rather than writing the row itself, so a session layer sees every change);
    /// `None` when the session is gone.
    pub async fn update_session(
        &self,
        store: Store<'_>,
        token: &str,
        set: Row,
    ) -> Result<Option<Session>, StorageError> {
        self.sessions().touch(store, token, set).await
    }

    /// Deletes session `token` through the engine's session store (a sign-out, a session a
    /// plugin takes back); how many rows went.
    pub async fn delete_session(&self, store: Store<'_>, token: &str) -> Result<u64, StorageError> {
        self.sessions().delete(store, token).await
    }

    /// Extends session `token` by `expiresIn` from `now`; `None` when the row is gone.
    pub(crate) async fn extend_session(
        &self,
        store: Store<'_>,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Session>, StorageError> {
        let set = Row::new()
            .with("expiresAt", now + self.options().session.expires_in)
            .with("updatedAt", now);
        self.update_session(store, token, set).await
    }

    /// Reads the request's cookie cache for session `token`. `use_it` false (the request
    /// asked for `disableCookieCache`, or the caller needs the database's word) still
    /// authenticates a present cache, so a forged or stale one gets deleted.
    /// With the cache off (the default) it only looks for a stray cache cookie in the Cookie
    /// header (one substring test: it is on get-session's hot path), which it reports invalid.
    pub(crate) fn read_cookie_cache(&self, ctx: &Ctx, token: &str, use_it: bool) -> CacheRead {
        let cache = self.cookie_cache();
        if !cache.options.enabled {
            // Better Auth deletes a cache cookie it is not configured to read. One substring
            // test on the Cookie header keeps the cache-off read free of the cache's work.
            let stray = ctx
                .headers()
                .get(http::header::COOKIE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.contains(self.cookies().session_data.as_str()));
            return if stray {
                CacheRead::Invalid
            } else {
                CacheRead::Absent
            };
        }
        let Some(raw) =
            crate::cookies::get_chunked_cookie(ctx.headers(), &self.cookies().session_data)
        else {
            return CacheRead::Absent;
        };
        let now_ms = crate::time::now().timestamp_millis();
        let Some(decoded) = cache.decode(&raw, now_ms) else {
            tracing::debug!("cookie cache does not verify; deleting it");
            return CacheRead::Invalid;
        };
        if !use_it {
            return CacheRead::Absent;
        }
        let s = &decoded.session.session;
        let valid = s.token == token
            && s.user_id == decoded.session.user.id
            && decoded.version == cache.options.version
            && decoded.expires_at_ms >= now_ms
            && s.expires_at.timestamp_millis() >= now_ms;
        if valid {
            CacheRead::Hit(Box::new(decoded.session))
        } else {
            CacheRead::Invalid
        }
    }

    /// A cookie with the engine's attributes whose value is `value` signed with the secret
    /// (Better Auth's `setSignedCookie`): read it back with [`Ctx::signed_cookie`].
    pub fn signed_cookie(&self, name: impl Into<String>, value: &str) -> crate::cookies::SetCookie {
        let signed = self.secret().sign(value);
        let value = crate::cookies::encode_uri_component(&signed).into_owned();
        self.cookies().cookie(name, value)
    }

    /// Whether the request carries a valid `dont_remember` marker (the user signed in with
    /// `rememberMe: false`).
    pub fn has_dont_remember(&self, ctx: &Ctx) -> bool {
        ctx.signed_cookie(&self.cookies().dont_remember).as_deref() == Some("true")
    }

    /// Expires every session cookie on `reply`: the token, the cookie cache (and any of its
    /// chunks the request carried or this reply set) and the `dont_remember` marker.
    pub fn expire_session_cookies(&self, ctx: &Ctx, reply: &mut Reply) {
        self.expire_session_token_cookies(ctx, reply);
        let jar = self.cookies();
        reply.set_cookie(&jar.expired(jar.dont_remember.clone()));
    }

    /// Expires the session token and the cookie cache (with its chunks), keeping the
    /// `dont_remember` marker: for a plugin that takes back a session a sign-in just made
    /// (two-factor) and will make another for the same sign-in.
    pub fn expire_session_token_cookies(&self, ctx: &Ctx, reply: &mut Reply) {
        let jar = self.cookies();
        reply.set_cookie(&jar.expired(jar.session_token.clone()));
        for c in self.cookie_cache_deletions(ctx) {
            reply.set_cookie(&c);
        }
    }

    /// The reply of a successful sign-in or sign-up: `body`, the session cookie, and the new
    /// session recorded for after hooks.
    pub fn signed_in_reply(
        &self,
        ctx: &Ctx,
        body: impl serde::Serialize,
        session: Session,
        user: User,
        dont_remember: bool,
    ) -> Reply {
        let mut reply = Reply::json(body);
        self.set_session_cookie(ctx, &mut reply, &session, &user, Some(dont_remember));
        reply.set_new_session(Some(SessionAndUser { session, user }));
        reply
    }
}
