//! Portcullis: a plugin-driven authentication engine that speaks the Better Auth protocol.
//!
//! The official Better Auth client works against it unchanged, and it stores data in Better
//! Auth's schema, so an app can move its auth server to Rust and keep its front end, its
//! database and its signed-in users.
//!
//! The engine ([`Auth`]) routes requests through a registry of [`Plugin`]s. Each plugin
//! contributes [`Endpoint`]s, [`Hook`]s, database hooks ([`DbHook`]), schema ([`SchemaPatch`]),
//! rate-limit rules and error codes. An application adds hooks of both kinds on the builder
//! ([`AuthBuilder::hook`], [`AuthBuilder::database_hook`]) without writing a plugin. The engine
//! registers its own features as built-in plugins on the same trait, before the application's:
//! sessions (`/get-session`, `/sign-out`, `/list-sessions`, `/revoke-session(s)`,
//! `/revoke-other-sessions`), `/update-user`, accounts, email verification, `/change-email`,
//! `/delete-user` and `/ok`; sign-up and sign-in come from plugins such as
//! `portcullis-email-password`.
//!
//! ```no_run
//! # async fn run() -> Result<(), portcullis::Error> {
//! use portcullis::Auth;
//!
//! let auth = Auth::builder()
//!     .secret("a-secret-of-at-least-32-characters!!")
//!     .base_url("http://localhost:3000")
//!     .database("sqlite://auth.db")
//!     // .plugin(portcullis_email_password::EmailPassword::default())
//!     .build()
//!     .await?;
//! auth.migrate().await?;
//!
//! // Over HTTP: `auth.handle(request)`, `auth.service()` for axum's `nest_service`, or
//! // `portcullis::adapters::hyper::serve`. From Rust, through the same hooks:
//! let headers = http::HeaderMap::new();
//! let session = auth.api().get_session(&headers).await;
//! # let _ = session;
//! # Ok(())
//! # }
//! ```
//!
//! Writing a plugin: the authoring guide is `docs/plugins.md` in the repository (every snippet
//! in it compiled and run as a test of the example plugin `examples/audit-log`); what a plugin
//! compiles against is listed there and in ARCHITECTURE.md.
//!
//! Invariants: the engine knows no web framework (adapters translate at the edge); plugins
//! reach it only through this public API; storage never sees a plaintext password; every
//! endpoint is reachable over HTTP and as a server-side call through the same hooks.

#[cfg(not(any(feature = "sqlite", feature = "postgres", feature = "mysql")))]
compile_error!(
    "portcullis needs at least one database driver: features `sqlite`, `postgres`, `mysql`"
);

pub mod adapters;
pub mod api;
mod auth;
pub mod callbacks;
pub mod change_email;
pub mod context;
mod cookie_cache;
pub mod cookies;
pub mod crypto;
pub mod delete_user;
pub mod email;
pub mod email_verification;
pub mod error;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod input;
mod ip;
mod jwe;
mod jwt;
mod origin;
pub mod password;
pub mod plugin;
pub mod rate_limit;
mod router;
mod routes;
pub mod schema;
mod session;
mod session_store;
pub mod storage;
#[cfg(feature = "testing")]
pub mod testing;
pub mod throttle;
pub mod time;
pub mod validate;

use std::future::Future;
use std::pin::Pin;

pub use api::{Api, ApiRequest};
pub use auth::{Auth, AuthBuilder, HttpResponse, Options, SecurityOptions, SessionOptions};
pub use context::{Body, Ctx, Reply};
pub use cookie_cache::{CookieCacheOptions, CookieCacheStrategy, UnknownStrategy};
pub use error::{codes, ApiError, Error, ErrorCode};
pub use input::{Shape, Type};
pub use ip::ClientAddr;
pub use plugin::{Before, Endpoint, Hook, InitContext, Matcher, Plugin, PluginFactory, RateRule};
pub use schema::SchemaPatch;
pub use storage::{DbHook, Model};

/// A boxed, sendable future: what object-safe async methods in this crate return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The crates a plugin's code meets in Portcullis's own signatures, re-exported at the
/// versions the engine uses, so a plugin may depend on `portcullis` alone: [`http`] (requests,
/// headers, statuses), [`serde`] and [`serde_json`] (bodies; derive with
/// `#[serde(crate = "portcullis::deps::serde")]`), [`chrono`] (timestamps in rows),
/// [`tracing`] (logs) and [`inventory`] (registering a [`PluginFactory`]).
pub mod deps {
    pub use chrono;
    pub use http;
    pub use inventory;
    pub use serde;
    pub use serde_json;
    pub use tracing;
}
