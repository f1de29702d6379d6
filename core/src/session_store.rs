//! The session seam. Every read and write of one session row that the engine makes goes
//! through a [`SessionStore`] (`load`, `create`, `touch`, `delete`), and the cookie cache is a
//! layer in front of its reads ([`Auth::load_session`]): the session middleware
//! (`Ctx::session`), get-session, the deferred expiry and extension, sign-in and sign-out all
//! meet here, so the cache logic exists once.
//!
//! Today the store is the primary database ([`DatabaseSessions`], through [`Store`], so
//! database hooks and transactions apply). A secondary store (Redis, as Better Auth's
//! `secondaryStorage`) is a type that implements the same four methods over this one; the
//! methods return `impl Future` and the engine holds the concrete type, so the hot path pays
//! no boxing or dynamic dispatch for the seam. Multi-session operations (list a user's
//! sessions, revoke all of them) stay on [`Store`] until such a layer needs them.

use std::future::Future;

use crate::context::Ctx;
use crate::session::CacheRead;
use crate::storage::{Row, Session, SessionAndUser, StorageError, Store};
use crate::Auth;

/// Where session rows live.
pub(crate) trait SessionStore: Send + Sync {
    /// The session with token `token` and its user, expired or not.
    fn load<'a>(
        &'a self,
        store: Store<'a>,
        token: &'a str,
    ) -> impl Future<Output = Result<Option<SessionAndUser>, StorageError>> + Send + 'a;

    /// Stores a new session.
    fn create<'a>(
        &'a self,
        store: Store<'a>,
        session: &'a Session,
    ) -> impl Future<Output = Result<Session, StorageError>> + Send + 'a;

    /// Sets fields of session `token` (its expiry when extended, an application's fields);
    /// `None` when it is gone.
    fn touch<'a>(
        &'a self,
        store: Store<'a>,
        token: &'a str,
        set: Row,
    ) -> impl Future<Output = Result<Option<Session>, StorageError>> + Send + 'a;

    /// Deletes session `token`; how many rows went.
    fn delete<'a>(
        &'a self,
        store: Store<'a>,
        token: &'a str,
    ) -> impl Future<Output = Result<u64, StorageError>> + Send + 'a;
}

/// Sessions in the primary database, Better Auth's `session` table.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct DatabaseSessions;

impl SessionStore for DatabaseSessions {
    async fn load<'a>(
        &'a self,
        store: Store<'a>,
        token: &'a str,
    ) -> Result<Option<SessionAndUser>, StorageError> {
        store.session_and_user(token).await
    }

    async fn create<'a>(
        &'a self,
        store: Store<'a>,
        session: &'a Session,
    ) -> Result<Session, StorageError> {
        store.create_session(session).await
    }

    async fn touch<'a>(
        &'a self,
        store: Store<'a>,
        token: &'a str,
        set: Row,
    ) -> Result<Option<Session>, StorageError> {
        store.update_session(token, set).await
    }

    async fn delete<'a>(&'a self, store: Store<'a>, token: &'a str) -> Result<u64, StorageError> {
        store.delete_session(token).await
    }
}

/// A session read through the cookie cache layer.
pub(crate) enum Loaded {
    /// The request's cookie cache answered (valid), without a read of the store.
    Cached(SessionAndUser),
    /// The store answered.
    Stored {
        /// The session and user, expired or not.
        found: Option<SessionAndUser>,
        /// The request carries a cache that must be deleted (forged, stale, of another
        /// session, or present while the cache is off).
        stale_cache: bool,
    },
}

impl Auth {
    /// Reads session `token`: from the request's cookie cache when `use_cache` and it is
    /// valid, otherwise from the session store (a stale cache is reported for deletion).
    pub(crate) async fn load_session(
        &self,
        ctx: &Ctx,
        token: &str,
        use_cache: bool,
    ) -> Result<Loaded, StorageError> {
        let stale_cache = match self.read_cookie_cache(ctx, token, use_cache) {
            CacheRead::Hit(s) => return Ok(Loaded::Cached(*s)),
            CacheRead::Invalid => true,
            CacheRead::Absent => false,
        };
        let found = self.sessions().load(ctx.store(), token).await?;
        Ok(Loaded::Stored { found, stale_cache })
    }
}
