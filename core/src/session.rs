//! Creating sessions and writing their cookies, as Better Auth does.

use crate::context::{Ctx, Reply};
use crate::crypto::{random_string, ALPHANUMERIC};
use crate::error::{codes, ApiError};
use crate::storage::{Session, SessionAndUser, Store, User};
use crate::Auth;

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
        store.create_session(&session).await.map_err(|e| {
            ApiError::from_storage(
                e,
                "failed to create session",
                ApiError::bad_request(codes::FAILED_TO_CREATE_SESSION),
            )
        })
    }

    /// Sets the signed session cookie for `session` on `reply`. With `dont_remember` (or a
    /// `dont_remember` cookie already on the request) the cookie has no `Max-Age` and the
    /// signed `dont_remember` marker is set; a remembered sign-in clears an old marker.
    pub fn set_session_cookie(
        &self,
        ctx: &Ctx,
        reply: &mut Reply,
        session: &Session,
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
            if ctx.cookie(&jar.dont_remember).is_some() {
                reply.set_cookie(&jar.expired(jar.dont_remember.clone()));
            }
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
    /// chunks the request carried) and the `dont_remember` marker.
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
        reply.set_cookie(&jar.expired(jar.session_data.clone()));
        // Chunks the browser holds, and chunks this very response was about to set.
        let chunk_prefix = format!("{}.", jar.session_data);
        let queued = reply
            .set_cookies()
            .filter_map(|c| c.split_once('=').map(|(name, _)| name.to_owned()))
            .collect::<Vec<_>>();
        for name in crate::cookies::cookie_names(ctx.headers())
            .into_iter()
            .chain(queued)
        {
            if name.starts_with(&chunk_prefix) {
                reply.set_cookie(&jar.expired(name));
            }
        }
    }

    /// The reply of a successful sign-in or sign-up: `body`, the session cookie, and the new
    /// session recorded for after hooks.
    pub fn signed_in_reply(
        &self,
        ctx: &Ctx,
        body: serde_json::Value,
        session: Session,
        user: User,
        dont_remember: bool,
    ) -> Reply {
        let mut reply = Reply::json(body);
        self.set_session_cookie(ctx, &mut reply, &session, Some(dont_remember));
        reply.set_new_session(Some(SessionAndUser { session, user }));
        reply
    }
}
