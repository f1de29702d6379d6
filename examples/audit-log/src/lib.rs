//! An audit log for Portcullis: every sign-in and sign-out of a user, with the client's
//! address and user agent, listed for the signed-in user at `GET /audit-log/list`.
//!
//! It is a third-party plugin in all but location: it depends on `portcullis` alone and uses
//! only its public plugin API, and it is the example the plugin authoring guide
//! (`docs/plugins.md`) is written from. What it shows:
//!
//! - **a table of its own**, declared once with [`portcullis::record!`] ([`AuditEvent`]):
//!   the schema, the row conversion and the migration come from that one declaration;
//! - **database hooks** on the core `session` model: a sign-in is a new session row,
//!   whichever plugin made it (a password, the second factor, a magic link), and a sign-out
//!   or revocation is a deleted one. An endpoint hook on `/sign-in/email` would miss every
//!   other way in;
//! - **request-local state** ([`Ctx::request_local`]) to tell a sign-in from a session that
//!   was created and taken back in the same request: what the two-factor plugin does when a
//!   password is right but the second factor is still due ([`kind::SIGN_IN_CHALLENGED`]);
//! - **an endpoint** on typed handlers ([`Handlers`]) with plugin state, and **a typed
//!   server-side call** ([`AuditLogApi`]);
//! - **options from the config file**: `plugins = ["email-password", "audit-log"]` and
//!   `[plugin.audit-log]` in `auth.toml` (see [`AuditLogOptions`]).
//!
//! ```no_run
//! # async fn run() -> Result<(), portcullis::Error> {
//! use portcullis::Auth;
//! use portcullis_audit_log::AuditLog;
//!
//! let auth = Auth::builder()
//!     .secret(std::env::var("PORTCULLIS_SECRET").unwrap_or_default())
//!     // .plugin(portcullis_email_password::EmailPassword::default())
//!     .plugin(AuditLog::default())
//!     .build()
//!     .await?;
//! auth.migrate().await?; // creates the auditEvent table
//! # Ok(())
//! # }
//! ```

#[doc = include_str!("../../../docs/plugins.md")]
pub mod guide {}

use std::future::Future;
use std::sync::{Arc, Mutex};

use portcullis::deps::chrono::{DateTime, Utc};
use portcullis::deps::http::HeaderMap;
use portcullis::deps::serde::{Deserialize, Serialize};
use portcullis::deps::{inventory, tracing};
use portcullis::plugin::{Handlers, Json};
use portcullis::schema::{DefaultValue, OnDelete};
use portcullis::storage::{DbHook, Direction, Model, Query, Record as _, Row, StorageError, Where};
use portcullis::{
    ApiError, ApiRequest, Ctx, Endpoint, Error, ErrorCode, Plugin, PluginFactory, RateRule,
    SchemaPatch,
};

/// The plugin's name in the config file's `plugins = [...]` (and its id).
pub const NAME: &str = "audit-log";

/// The largest `max_limit` the options accept.
pub const MAX_LIMIT_CEILING: u64 = 1000;

/// User agents are stored up to this many bytes (cut at a character boundary): a client
/// cannot make an event too large to store.
const USER_AGENT_MAX_BYTES: usize = 512;

/// The kinds of event the log records.
pub mod kind {
    /// A new session: a completed sign-in (or sign-up), whichever plugin made it, or a
    /// session the engine issues in place of the current one (turning two-factor on does;
    /// the old one's end is a [`SESSION_ENDED`]).
    pub const SIGN_IN: &str = "sign-in";
    /// A sign-in whose session was taken back in the request that made it: the first factor
    /// was right and a second factor is due (the two-factor plugin's challenge). The
    /// completed sign-in, if it comes, is a [`SIGN_IN`] of its own.
    pub const SIGN_IN_CHALLENGED: &str = "sign-in-challenged";
    /// The user signed out (`/sign-out`).
    pub const SIGN_OUT: &str = "sign-out";
    /// Any other end of a session: revoked (by the user or a password change or reset),
    /// replaced (a new sign-in in the same browser ends the session it held) or deleted when
    /// it was found expired.
    pub const SESSION_ENDED: &str = "session-ended";
}

/// The plugin's error codes.
pub mod codes {
    use portcullis::deps::http::StatusCode;
    use portcullis::ErrorCode;

    /// `limit` is not a whole number between 1 and the configured maximum.
    pub const INVALID_LIMIT: ErrorCode = ErrorCode::new(
        "INVALID_AUDIT_LOG_LIMIT",
        "limit must be a whole number between 1 and the maximum",
    )
    .with_status(StatusCode::BAD_REQUEST);

    /// Every code above.
    pub const ALL: &[ErrorCode] = &[INVALID_LIMIT];
}

portcullis::record! {
    /// One event in a user's audit log: a row of the plugin's `auditEvent` table, and what
    /// `GET /audit-log/list` answers (camelCase keys, ISO timestamps).
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(crate = "portcullis::deps::serde", rename_all = "camelCase")]
    pub struct AuditEvent in "auditEvent" {
        /// The event's id.
        pub id: String = "id",
        /// Whose event it is; the user's events go when the user does.
        pub user_id: String = "userId"
            .index()
            .references("user", "id", OnDelete::Cascade),
        /// What happened: one of [`kind`].
        pub kind: String = "kind",
        /// The session it is about (no reference: the session row goes, the event stays).
        pub session_id: Option<String> = "sessionId".index(),
        /// The client's address, when known.
        pub ip_address: Option<String> = "ipAddress",
        /// The client's user agent.
        pub user_agent: Option<String> = "userAgent",
        /// When it happened.
        #[serde(with = "portcullis::time::serde_iso")]
        pub created_at: DateTime<Utc> = "createdAt".default_value(DefaultValue::Now),
    }
}

/// The plugin's options, also its `[plugin.audit-log]` table in `auth.toml`:
///
/// ```toml
/// plugins = ["email-password", "audit-log"]
///
/// [plugin.audit-log]
/// default_limit = 50
/// max_limit = 200
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(crate = "portcullis::deps::serde", default, deny_unknown_fields)]
#[non_exhaustive]
pub struct AuditLogOptions {
    /// How many events `GET /audit-log/list` answers without a `limit` (20).
    pub default_limit: u64,
    /// The largest `limit` it accepts (100; at most [`MAX_LIMIT_CEILING`]).
    pub max_limit: u64,
}

impl Default for AuditLogOptions {
    fn default() -> Self {
        Self {
            default_limit: 20,
            max_limit: 100,
        }
    }
}

impl AuditLogOptions {
    fn validate(&self) -> Result<(), String> {
        if !(1..=MAX_LIMIT_CEILING).contains(&self.max_limit) {
            return Err(format!(
                "max_limit ({}) must be between 1 and {MAX_LIMIT_CEILING}",
                self.max_limit
            ));
        }
        if !(1..=self.max_limit).contains(&self.default_limit) {
            return Err(format!(
                "default_limit ({}) must be between 1 and max_limit ({})",
                self.default_limit, self.max_limit
            ));
        }
        Ok(())
    }
}

/// The audit-log plugin.
#[derive(Debug, Clone, Default)]
pub struct AuditLog {
    options: AuditLogOptions,
}

impl AuditLog {
    /// The plugin with `options`.
    pub fn new(options: AuditLogOptions) -> Self {
        Self { options }
    }

    /// Changes the options.
    pub fn options(mut self, f: impl FnOnce(&mut AuditLogOptions)) -> Self {
        f(&mut self.options);
        self
    }
}

impl Plugin for AuditLog {
    fn id(&self) -> &'static str {
        NAME
    }

    fn init(&self, _ctx: &mut portcullis::InitContext<'_>) -> Result<(), Error> {
        self.options.validate().map_err(|message| Error::Plugin {
            plugin: NAME,
            message,
        })
    }

    fn schema(&self) -> SchemaPatch {
        SchemaPatch::default().table(AuditEvent::table())
    }

    fn endpoints(&self) -> Vec<Endpoint> {
        let on = Handlers::new(self.options.clone());
        vec![on
            .get("listAuditEvents", "/audit-log/list", list)
            .no_store()]
    }

    fn database_hooks(&self) -> Vec<DbHook> {
        vec![
            DbHook::after_create(Model::SESSION, |session, ctx| async move {
                session_created(session, ctx).await;
                Ok(())
            }),
            DbHook::after_delete(Model::SESSION, |session, ctx| async move {
                session_deleted(session, ctx).await;
                Ok(())
            }),
        ]
    }

    fn rate_limits(&self) -> Vec<RateRule> {
        // A read of one's own events: generous, but not a free scraper.
        vec![RateRule::prefix(
            "/audit-log/",
            std::time::Duration::from_secs(10),
            30,
        )]
    }

    fn error_codes(&self) -> &'static [ErrorCode] {
        codes::ALL
    }
}

/// The sessions created while serving one request, with the id of the sign-in event each
/// was recorded as: kept with [`Ctx::request_local`], in a type private to this crate so no
/// other plugin reaches it.
#[derive(Default)]
struct CreatedHere(Mutex<Vec<(String, String)>>);

impl CreatedHere {
    fn push(&self, session_id: &str, event_id: String) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((session_id.to_owned(), event_id));
    }

    /// The sign-in event of `session_id` if that session was created in this request.
    fn take(&self, session_id: &str) -> Option<String> {
        let mut created = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let i = created.iter().position(|(s, _)| s == session_id)?;
        Some(created.swap_remove(i).1)
    }
}

fn user_agent(agent: Option<&str>) -> Option<String> {
    let agent = agent.filter(|a| !a.is_empty())?;
    let mut end = agent.len().min(USER_AGENT_MAX_BYTES);
    while !agent.is_char_boundary(end) {
        end -= 1;
    }
    Some(agent[..end].to_owned())
}

fn event(kind: &str, user_id: &str, session_id: Option<&str>) -> AuditEvent {
    AuditEvent {
        id: String::new(), // the engine generates it
        user_id: user_id.to_owned(),
        kind: kind.to_owned(),
        session_id: session_id.map(str::to_owned),
        ip_address: None,
        user_agent: None,
        created_at: portcullis::time::now(),
    }
}

/// A new session row: a sign-in. The session row carries the client's address and agent.
async fn session_created(session: Row, ctx: Option<Ctx>) {
    let (Some(ctx), Some(id), Some(user_id)) = (ctx, session.str("id"), session.str("userId"))
    else {
        // Outside a request (a tool writing sessions through `auth.store()`) a database hook
        // gets no context, and so no store to write to: such sessions are not recorded.
        return;
    };
    let mut e = event(kind::SIGN_IN, user_id, Some(id));
    e.ip_address = session.str("ipAddress").map(str::to_owned);
    e.user_agent = user_agent(session.str("userAgent"));
    match ctx.store().insert(e).await {
        Ok(stored) => ctx.request_local::<CreatedHere>().push(id, stored.id),
        // The sign-in stands: an audit log that can refuse sign-ins is an outage waiting.
        Err(err) => tracing::warn!(error = %err, "audit-log: could not record a sign-in"),
    }
}

/// A deleted session row: a sign-out, a revocation, or a sign-in taken back.
async fn session_deleted(session: Row, ctx: Option<Ctx>) {
    let (Some(ctx), Some(id), Some(user_id)) = (ctx, session.str("id"), session.str("userId"))
    else {
        return;
    };
    let store = ctx.store();
    if let Some(event_id) = ctx.request_local::<CreatedHere>().take(id) {
        let taken_back = Row::new().with("kind", kind::SIGN_IN_CHALLENGED);
        let filter = [Where::eq("id", event_id.as_str())];
        if let Err(err) = store
            .update_many(AuditEvent::MODEL, &filter, taken_back)
            .await
        {
            tracing::warn!(error = %err, "audit-log: could not record a challenged sign-in");
        }
        return;
    }
    let kind = if ctx.route() == "/sign-out" {
        kind::SIGN_OUT
    } else {
        kind::SESSION_ENDED
    };
    let mut e = event(kind, user_id, Some(id));
    e.ip_address = ctx.client_ip().map(str::to_owned);
    e.user_agent = user_agent(Some(ctx.user_agent()));
    match store.insert(e).await {
        Ok(_) => {}
        // The user is being deleted with its sessions: its events go with it.
        Err(StorageError::ForeignKeyViolation) => {}
        Err(err) => tracing::warn!(error = %err, "audit-log: could not record a session end"),
    }
}

/// `GET /audit-log/list?limit=N`: the signed-in user's events, newest first.
async fn list(options: Arc<AuditLogOptions>, ctx: Ctx) -> Result<Json<Vec<AuditEvent>>, ApiError> {
    // The database's word, never the cookie cache's: a session revoked elsewhere must not
    // go on reading where its owner signs in from.
    let signed_in = ctx.require_sensitive_session().await?;
    let limit = match ctx.query("limit") {
        None => options.default_limit,
        Some(text) => text
            .parse::<u64>()
            .ok()
            .filter(|n| (1..=options.max_limit).contains(n))
            .ok_or_else(|| ApiError::from(codes::INVALID_LIMIT))?,
    };
    let query = Query::filter(vec![Where::eq("userId", signed_in.user.id.as_str())])
        .sort("createdAt", Direction::Desc)
        .limit(limit);
    let events = ctx.store().find_all::<AuditEvent>(&query).await?;
    Ok(Json(events))
}

/// The plugin's server-side calls, on `auth.api()`.
pub trait AuditLogApi {
    /// The events of the user whose session `headers` carry (a browser's cookies), newest
    /// first: `GET /audit-log/list` from Rust, through the same hooks. `None` takes the
    /// configured default limit. Without a session: 401 `UNAUTHORIZED`.
    fn audit_events(
        &self,
        headers: &HeaderMap,
        limit: Option<u64>,
    ) -> impl Future<Output = Result<Vec<AuditEvent>, ApiError>> + Send;
}

impl AuditLogApi for portcullis::Api<'_> {
    fn audit_events(
        &self,
        headers: &HeaderMap,
        limit: Option<u64>,
    ) -> impl Future<Output = Result<Vec<AuditEvent>, ApiError>> + Send {
        let mut request = ApiRequest::new("listAuditEvents").headers(headers.clone());
        if let Some(n) = limit {
            request = request.query("limit", n.to_string());
        }
        self.call_json::<Vec<AuditEvent>>(request)
    }
}

fn from_config(config: &portcullis::deps::serde_json::Value) -> Result<Arc<dyn Plugin>, Error> {
    let options: AuditLogOptions = portcullis::plugin::options_from_config(NAME, config)?;
    Ok(Arc::new(AuditLog::new(options)))
}

inventory::submit! {
    PluginFactory { name: NAME, build: from_config }
}
