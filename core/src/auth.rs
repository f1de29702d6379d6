//! The engine: options, the builder, and the request pipeline.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Full};
use tokio::sync::OnceCell;

use crate::context::{Ctx, CtxInner, Reply};
use crate::cookies::{CookieJarConfig, CookieOptions};
use crate::crypto::Secret;
use crate::error::{codes, ApiError, ErrorCode};
use crate::password::{Argon2Params, PasswordHasher};
use crate::plugin::{Before, Endpoint, HookKind, InitContext, Matcher, Plugin};
use crate::rate_limit::{RateLimitOptions, RateLimiter};
use crate::router::Router;
use crate::schema::Schema;
use crate::storage::{Adapter, DbHooks, StorageError, Store, Tx};
use crate::Error;

/// Session lifetimes.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SessionOptions {
    /// How long a session lives (7 days by default); also the cookie's `Max-Age`.
    pub expires_in: Duration,
    /// How old a session gets before get-session extends it (1 day by default).
    pub update_age: Duration,
    /// Sessions younger than this are "fresh" (1 day by default; zero disables the check).
    pub fresh_age: Duration,
    /// Lifetime of sessions created with `rememberMe: false` (1 day, fixed in Better Auth).
    pub dont_remember_expires_in: Duration,
    /// The cookie cache (`session_data`): off by default.
    pub cookie_cache: crate::cookie_cache::CookieCacheOptions,
}

impl Default for SessionOptions {
    fn default() -> Self {
        Self {
            expires_in: Duration::from_secs(7 * 24 * 3600),
            update_age: Duration::from_secs(24 * 3600),
            fresh_age: Duration::from_secs(24 * 3600),
            dont_remember_expires_in: Duration::from_secs(24 * 3600),
            cookie_cache: Default::default(),
        }
    }
}

/// Security switches. Every defence is on by default; each switch turns one off, for the
/// server that truly needs Better Auth's old behaviour (SECURITY.md says what each costs).
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct SecurityOptions {
    /// Skips the Origin/CSRF check of state-changing requests (only for a server that no
    /// browser talks to).
    pub disable_csrf_check: bool,
    /// Skips the validation of redirect targets (`callbackURL` and the like).
    pub disable_origin_check: bool,
    /// Keeps the session a request carried when it signs in again (Better Auth's behaviour).
    /// By default a sign-in, of the same user or another, ends the session the browser held,
    /// so a session token fixed or stolen before the sign-in is worthless after it (OWASP
    /// ASVS 7.2.4).
    pub keep_previous_session_on_sign_in: bool,
    /// Keeps the current session token through `/change-password` without
    /// `revokeOtherSessions` (Better Auth's behaviour). By default the caller's session is
    /// replaced by a new one (new cookie, new `set-auth-token`), so a copy of the old token
    /// stops working with the old password.
    pub keep_session_on_password_change: bool,
}

/// Engine options. Plugins have options of their own.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Options {
    /// The public origin (`https://auth.example.com`); decides `Secure` cookies and is always
    /// a trusted origin.
    pub base_url: Option<String>,
    /// Where the API is mounted (`/api/auth`).
    pub base_path: String,
    /// Session lifetimes.
    pub session: SessionOptions,
    /// Cookie names and attributes.
    pub cookies: CookieOptions,
    /// Origins trusted besides the base URL's.
    pub trusted_origins: Vec<String>,
    /// Rate limiting.
    pub rate_limit: RateLimitOptions,
    /// Headers to take the client address from (e.g. `x-forwarded-for` behind a proxy). Empty
    /// by default: the socket address is used.
    pub ip_address_headers: Vec<String>,
    /// Largest request body accepted, in bytes (1 MiB by default).
    pub max_body_bytes: usize,
    /// argon2id parameters for new password hashes.
    pub argon2: Argon2Params,
    /// How many password hashes may run at once (one per core by default).
    pub hash_concurrency: usize,
    /// How new row ids are made (Better Auth's 32-character random ids by default).
    pub ids: crate::storage::IdStrategy,
    /// Table and column names, and fields the application adds to core tables.
    pub schema: crate::schema::SchemaOptions,
    /// Outgoing mail: the sender, the templates, the application's name.
    pub email: crate::email::EmailOptions,
    /// Email verification (`/send-verification-email`, `/verify-email`).
    pub email_verification: crate::email_verification::EmailVerificationOptions,
    /// Origin/CSRF and redirect checks.
    pub security: SecurityOptions,
    /// Users deleting their own account (`/delete-user`); off by default.
    pub delete_user: crate::delete_user::DeleteUserOptions,
    /// Users changing their email address (`/change-email`); off by default.
    pub change_email: crate::change_email::ChangeEmailOptions,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            base_url: None,
            base_path: "/api/auth".into(),
            session: SessionOptions::default(),
            cookies: CookieOptions::default(),
            trusted_origins: Vec::new(),
            rate_limit: RateLimitOptions::default(),
            ip_address_headers: Vec::new(),
            max_body_bytes: 1024 * 1024,
            argon2: Argon2Params::default(),
            hash_concurrency: std::thread::available_parallelism().map_or(1, |n| n.get()),
            ids: crate::storage::IdStrategy::default(),
            schema: crate::schema::SchemaOptions::default(),
            email: crate::email::EmailOptions::default(),
            email_verification: Default::default(),
            security: SecurityOptions::default(),
            delete_user: Default::default(),
            change_email: Default::default(),
        }
    }
}

enum Database {
    Url(String),
    Adapter(Arc<dyn Adapter>),
}

/// Builds an [`Auth`]: secret, database, options and plugins.
pub struct AuthBuilder {
    options: Options,
    secret: Option<Result<Secret, Error>>,
    secrets: Vec<(u32, String)>,
    database: Database,
    plugins: Vec<Arc<dyn Plugin>>,
    hooks: Vec<crate::plugin::Hook>,
    db_hooks: Vec<crate::storage::DbHook>,
}

impl AuthBuilder {
    /// The signing secret (at least 32 characters).
    pub fn secret(mut self, secret: impl Into<String>) -> Self {
        self.secret = Some(Secret::new(secret));
        self
    }

    /// Versioned secrets, for rotation (Better Auth's `secrets: [{version, value}]`): the
    /// first is the current one, which signs and encrypts; the others (and a plain
    /// [`AuthBuilder::secret`], kept as the legacy secret) still verify and decrypt. To rotate,
    /// put a new version first and keep the old ones until what they signed has expired.
    pub fn secrets<S: Into<String>>(
        mut self,
        versions: impl IntoIterator<Item = (u32, S)>,
    ) -> Self {
        self.secrets = versions.into_iter().map(|(v, s)| (v, s.into())).collect();
        self
    }

    /// The public origin, e.g. `https://auth.example.com`.
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.options.base_url = Some(url.into().trim_end_matches('/').to_owned());
        self
    }

    /// Where the API is mounted; `/api/auth` by default.
    pub fn base_path(mut self, path: impl Into<String>) -> Self {
        self.options.base_path = path.into().trim_end_matches('/').to_owned();
        self
    }

    /// The database URL (`sqlite://auth.db`, `sqlite::memory:`).
    pub fn database(mut self, url: impl Into<String>) -> Self {
        self.database = Database::Url(url.into());
        self
    }

    /// A storage adapter built elsewhere.
    pub fn adapter(mut self, adapter: Arc<dyn Adapter>) -> Self {
        self.database = Database::Adapter(adapter);
        self
    }

    /// Adds a plugin. Plugins run in the order added.
    pub fn plugin(mut self, plugin: impl Plugin) -> Self {
        self.plugins.push(Arc::new(plugin));
        self
    }

    /// Adds a plugin already behind an `Arc` (e.g. one built by name).
    pub fn plugin_arc(mut self, plugin: Arc<dyn Plugin>) -> Self {
        self.plugins.push(plugin);
        self
    }

    /// Adds a field to a core table (`user` or `session`), as Better Auth's
    /// `user.additionalFields`.
    pub fn additional_field(mut self, table: &str, field: crate::schema::Field) -> Self {
        match self
            .options
            .schema
            .additional_fields
            .iter_mut()
            .find(|(t, _)| t == table)
        {
            Some((_, fields)) => fields.push(field),
            None => self
                .options
                .schema
                .additional_fields
                .push((table.to_owned(), vec![field])),
        }
        self
    }

    /// Adds an application hook without writing a plugin: before/after an endpoint (see
    /// [`Hook`](crate::Hook)), or on raw HTTP requests and responses. Application hooks run
    /// before plugin hooks, in the order added.
    ///
    /// ```
    /// use portcullis::{ApiError, Auth, Before, Ctx, Hook, Matcher, Reply};
    ///
    /// let builder = Auth::builder()
    ///     // Trims the name of every sign-up before the endpoint reads it.
    ///     .hook(Hook::before(Matcher::Path("/sign-up/email".into()), |ctx: Ctx| {
    ///         let mut body = ctx.body_json().cloned().unwrap_or_default();
    ///         if let Some(name) = body.get("name").and_then(|n| n.as_str()) {
    ///             body["name"] = name.trim().into();
    ///         }
    ///         async move { Ok(Before::Rewrite { body: Some(body), headers: Default::default() }) }
    ///     }))
    ///     // Adds a field to every successful sign-in answer.
    ///     .hook(Hook::after(
    ///         Matcher::Path("/sign-in/email".into()),
    ///         |_ctx: Ctx, result: Result<Reply, ApiError>| async move {
    ///             let mut reply = result?;
    ///             if let Some(mut body) = reply.json_body().cloned() {
    ///                 body["welcome"] = true.into();
    ///                 reply.set_json(body);
    ///             }
    ///             Ok(reply)
    ///         },
    ///     ));
    /// # let _ = builder;
    /// ```
    pub fn hook(mut self, hook: crate::plugin::Hook) -> Self {
        self.hooks.push(hook);
        self
    }

    /// Adds a database hook without writing a plugin: code that runs before or after every
    /// create, update or delete of a core model, whichever endpoint makes it (Better Auth's
    /// `databaseHooks`). Application hooks run after plugin hooks. See
    /// [`DbHook`](crate::storage::DbHook).
    pub fn database_hook(mut self, hook: crate::storage::DbHook) -> Self {
        self.db_hooks.push(hook);
        self
    }

    /// Changes options in place.
    pub fn options(mut self, f: impl FnOnce(&mut Options)) -> Self {
        f(&mut self.options);
        self
    }

    /// The merged schema of the engine, its plugins and the configuration, without connecting
    /// to a database: what `portcullis generate` prints.
    pub fn schema(&self) -> Result<Schema, Error> {
        let mut schema = Schema::core();
        for plugin in &self.plugins {
            schema.merge(plugin.id(), plugin.schema())?;
        }
        if self.options.rate_limit.database_storage {
            schema.merge(
                "rate-limit",
                crate::schema::SchemaPatch::default()
                    .table(crate::rate_limit::DatabaseStore::table()),
            )?;
        }
        schema.apply(&self.options.schema)?;
        if self.options.ids == crate::storage::IdStrategy::Serial {
            schema.use_serial_ids();
        }
        Ok(schema)
    }

    /// Builds the engine: resolves options, merges plugin schemas, connects the database.
    /// It does not create tables; call [`Auth::migrate`] for that.
    pub async fn build(self) -> Result<Auth, Error> {
        let mut options = self.options;
        let secret = match (self.secret, self.secrets.is_empty()) {
            (plain, true) => {
                plain.ok_or_else(|| Error::Config("no secret configured".into()))??
            }
            (legacy, false) => {
                let legacy = legacy.transpose()?.map(|s| s.expose().to_owned());
                Secret::rotating(self.secrets, legacy)?
            }
        };
        let mut schema = Schema::core();
        let mut endpoints = Vec::new();
        let mut hooks = self.hooks;
        let mut plugin_rules = Vec::new();
        let mut error_codes: Vec<ErrorCode> = codes::ALL.to_vec();
        let mut db_hooks = DbHooks::default();
        let mut password_checks = Vec::new();
        // The engine's own features first, through the same trait as every plugin.
        let builtins = crate::routes::builtin_plugins();
        for plugin in builtins.iter().chain(&self.plugins) {
            plugin.init(&mut InitContext {
                options: &mut options,
            })?;
            schema.merge(plugin.id(), plugin.schema())?;
            endpoints.extend(plugin.endpoints());
            hooks.extend(plugin.hooks());
            plugin
                .database_hooks()
                .into_iter()
                .for_each(|h| db_hooks.add(h));
            plugin_rules.extend(plugin.rate_limits());
            error_codes.extend_from_slice(plugin.error_codes());
            password_checks.extend(plugin.password_checks());
        }
        // The application's database hooks run last, as Better Auth runs its options' hooks.
        self.db_hooks.into_iter().for_each(|h| db_hooks.add(h));
        if options.rate_limit.database_storage {
            schema.merge(
                "rate-limit",
                crate::schema::SchemaPatch::default()
                    .table(crate::rate_limit::DatabaseStore::table()),
            )?;
        }
        schema.apply(&options.schema)?;
        if options.ids == crate::storage::IdStrategy::Serial {
            schema.use_serial_ids();
        }
        let mut router = Router::default();
        for (i, e) in endpoints.iter().enumerate() {
            if !e.server_only {
                router.add(e, i).map_err(Error::Config)?;
            }
        }
        let schema = Arc::new(schema);
        let db = match self.database {
            Database::Adapter(a) => a,
            Database::Url(url) => {
                crate::storage::connect(&url, schema.clone(), options.ids).await?
            }
        };
        let https = options
            .base_url
            .as_deref()
            .is_some_and(|u| u.starts_with("https://"));
        let cookies = CookieJarConfig::new(&options.cookies, https);
        let cookie_cache = crate::cookie_cache::CookieCache::new(
            options.session.cookie_cache.clone(),
            secret.clone(),
        );
        let trusted = crate::origin::TrustedOrigins::new(
            options.base_url.as_deref(),
            &options.trusted_origins,
        )?;
        let hasher = PasswordHasher::new(options.argon2, options.hash_concurrency)
            .map_err(|e| Error::Config(e.to_string()))?;
        let counters = crate::rate_limit::store_for(&options.rate_limit, &db);
        let rate_limiter = options
            .rate_limit
            .enabled
            .then(|| RateLimiter::new(&options.rate_limit, plugin_rules, counters.clone()));
        let throttle = crate::throttle::SignInThrottle::new(
            options.rate_limit.account.clone(),
            counters.clone(),
        );
        let mut pipeline = Pipeline::default();
        for h in hooks {
            match h.kind {
                HookKind::Before(f) => pipeline.before.push((h.matcher, f)),
                HookKind::After(f) => pipeline.after.push((h.matcher, f)),
                HookKind::Request(f) => pipeline.request.push(f),
                HookKind::Response(f) => pipeline.response.push(f),
            }
        }
        Ok(Auth {
            inner: Arc::new(AuthInner {
                options,
                secret,
                cookies,
                cookie_cache,
                sessions: crate::session_store::DatabaseSessions,
                schema,
                db,
                hasher,
                router,
                endpoints,
                pipeline,
                db_hooks,
                rate_limiter,
                throttle,
                counters,
                password_checks,
                error_codes,
                plugins: self.plugins,
                trusted,
            }),
        })
    }
}

#[derive(Default)]
struct Pipeline {
    before: Vec<(Matcher, Arc<crate::plugin::BeforeFn>)>,
    after: Vec<(Matcher, Arc<crate::plugin::AfterFn>)>,
    request: Vec<Arc<crate::plugin::RequestFn>>,
    response: Vec<Arc<crate::plugin::ResponseFn>>,
}

pub(crate) struct AuthInner {
    options: Options,
    secret: Secret,
    cookies: CookieJarConfig,
    cookie_cache: crate::cookie_cache::CookieCache,
    sessions: crate::session_store::DatabaseSessions,
    schema: Arc<Schema>,
    db: Arc<dyn Adapter>,
    hasher: PasswordHasher,
    router: Router,
    endpoints: Vec<Endpoint>,
    pipeline: Pipeline,
    db_hooks: DbHooks,
    rate_limiter: Option<RateLimiter>,
    throttle: crate::throttle::SignInThrottle,
    /// The rate-limit store: the limiter's, the throttle's and other counters.
    counters: Arc<dyn crate::rate_limit::RateLimitStore>,
    /// The plugins' checks of new passwords.
    password_checks: Vec<crate::plugin::PasswordCheck>,
    error_codes: Vec<ErrorCode>,
    plugins: Vec<Arc<dyn Plugin>>,
    trusted: crate::origin::TrustedOrigins,
}

/// The authentication engine. Cheap to clone; every clone is the same engine.
#[derive(Clone)]
pub struct Auth {
    inner: Arc<AuthInner>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("base_path", &self.inner.options.base_path)
            .field(
                "plugins",
                &self
                    .inner
                    .plugins
                    .iter()
                    .map(|p| p.id())
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// The response type of the engine's HTTP entry points.
pub type HttpResponse = Response<Full<Bytes>>;

impl Auth {
    /// Starts building an engine.
    pub fn builder() -> AuthBuilder {
        AuthBuilder {
            options: Options::default(),
            secret: None,
            secrets: Vec::new(),
            database: Database::Url("sqlite::memory:".into()),
            plugins: Vec::new(),
            hooks: Vec::new(),
            db_hooks: Vec::new(),
        }
    }

    /// The resolved options.
    pub fn options(&self) -> &Options {
        &self.inner.options
    }

    /// The signing secret.
    pub fn secret(&self) -> &Secret {
        &self.inner.secret
    }

    /// Cookie names and attributes.
    pub fn cookies(&self) -> &CookieJarConfig {
        &self.inner.cookies
    }

    pub(crate) fn cookie_cache(&self) -> &crate::cookie_cache::CookieCache {
        &self.inner.cookie_cache
    }

    /// The session store every session read and write goes through.
    pub(crate) fn sessions(&self) -> &crate::session_store::DatabaseSessions {
        &self.inner.sessions
    }

    /// The merged schema.
    pub fn schema(&self) -> &Schema {
        &self.inner.schema
    }

    /// The storage adapter.
    pub fn adapter(&self) -> &dyn Adapter {
        self.inner.db.as_ref()
    }

    /// The storage adapter, shared (for stores that outlive a borrow, e.g. a rate-limit store).
    pub fn adapter_arc(&self) -> Arc<dyn Adapter> {
        self.inner.db.clone()
    }

    /// Typed helpers for the core models on the engine's database, outside any request
    /// (database hooks get no context; while serving one, use [`Ctx::store`]).
    pub fn store(&self) -> Store<'_> {
        self.store_for(None)
    }

    pub(crate) fn store_for<'a>(&'a self, ctx: Option<&'a Ctx>) -> Store<'a> {
        Store::with_hooks(
            self.inner.db.as_ref(),
            &self.inner.schema,
            &self.inner.db_hooks,
            ctx,
            None,
        )
    }

    /// Starts a transaction outside any request (while serving one, use [`Ctx::begin`]).
    /// Writes through [`Tx::store`] land together at [`Tx::commit`], or not at all.
    pub async fn begin(&self) -> Result<Tx<'_>, StorageError> {
        self.begin_for(None).await
    }

    pub(crate) async fn begin_for<'a>(
        &'a self,
        ctx: Option<&'a Ctx>,
    ) -> Result<Tx<'a>, StorageError> {
        let tx = self.inner.db.begin().await?;
        Ok(Tx::new(tx, &self.inner.schema, &self.inner.db_hooks, ctx))
    }

    pub(crate) fn counters(&self) -> &Arc<dyn crate::rate_limit::RateLimitStore> {
        &self.inner.counters
    }

    /// Runs the plugins' checks of a new password ([`Plugin::password_checks`]), in plugin
    /// order; the first refusal is the answer. Every endpoint that sets a password calls it
    /// just before hashing the new one.
    /// The checks see the password as it is hashed and compared: NFKC-normalised, so a
    /// look-alike spelling (fullwidth letters) of a listed password is the listed password.
    pub async fn check_new_password(&self, ctx: &Ctx, password: &str) -> Result<(), ApiError> {
        if self.inner.password_checks.is_empty() {
            return Ok(());
        }
        let normalized = crate::password::nfkc(password);
        for check in &self.inner.password_checks {
            check(ctx.clone(), normalized.clone()).await?;
        }
        Ok(())
    }

    /// The per-account throttle that every password sign-in path goes through.
    pub fn sign_in_throttle(&self) -> &crate::throttle::SignInThrottle {
        &self.inner.throttle
    }

    /// The password hasher.
    pub fn password_hasher(&self) -> &PasswordHasher {
        &self.inner.hasher
    }

    /// The plugins, in order.
    pub fn plugins(&self) -> impl Iterator<Item = &dyn Plugin> {
        self.inner.plugins.iter().map(|p| p.as_ref())
    }

    /// Every error code the engine and its plugins declare.
    pub fn error_codes(&self) -> &[ErrorCode] {
        &self.inner.error_codes
    }

    /// Every endpoint (HTTP and server-only).
    pub fn endpoints(&self) -> &[Endpoint] {
        &self.inner.endpoints
    }

    /// Creates missing tables, columns and indexes for the engine and its plugins. Never drops
    /// anything; safe to run at every start. Returns the statements it ran.
    pub async fn migrate(&self) -> Result<Vec<String>, Error> {
        Ok(self.inner.db.migrate(false).await?)
    }

    /// What [`Auth::migrate`] would run, without running it.
    pub async fn migration_plan(&self) -> Result<Vec<String>, Error> {
        Ok(self.inner.db.migrate(true).await?)
    }

    /// The origins this server trusts (its own and the configured ones), for plugins that
    /// validate redirect targets of their own.
    pub fn trusted_origins(&self) -> &crate::origin::TrustedOrigins {
        &self.inner.trusted
    }

    /// The server-side API: every endpoint as a Rust call, through the same hooks.
    pub fn api(&self) -> crate::api::Api<'_> {
        crate::api::Api::new(self)
    }

    pub(crate) fn endpoint_by_name(&self, name: &str) -> Option<&Endpoint> {
        self.inner.endpoints.iter().find(|e| e.name == name)
    }

    /// Handles an HTTP request whose path includes the base path (`/api/auth/get-session`).
    /// Anything outside the base path answers 404.
    pub async fn handle<B>(&self, req: Request<B>) -> HttpResponse
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let req = with_dot_segments_resolved(req);
        let base = self.inner.options.base_path.as_str();
        match req.uri().path().strip_prefix(base) {
            Some(rest) if rest.starts_with('/') => {
                let rest = rest.to_owned();
                self.handle_relative(req, rest).await
            }
            _ => not_found(),
        }
    }

    /// Handles a request whose path is already relative to the base path (`/get-session`), as
    /// when mounted with axum's `nest_service`.
    pub async fn handle_nested<B>(&self, req: Request<B>) -> HttpResponse
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let req = with_dot_segments_resolved(req);
        let path = req.uri().path().to_owned();
        if !path.starts_with('/') {
            return not_found();
        }
        self.handle_relative(req, path).await
    }

    async fn handle_relative<B>(&self, req: Request<B>, path: String) -> HttpResponse
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let (mut parts, body) = req.into_parts();
        // Whatever of the body the answer leaves unread is drained, so the answer reaches a
        // client still sending it (see `Unread`).
        let declared = parts
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let mut body = Unread::new(body, declared);
        let peer = parts.extensions.get::<crate::ip::ClientAddr>().map(|a| a.0);
        let ip_headers = &self.inner.options.ip_address_headers;
        // What a session records: with address headers configured, only what they say (`""`
        // when none holds one address, as Better Auth records), never the proxy's socket
        // address. The rate limiter still falls back to the socket, so a request without the
        // header is not unlimited.
        let recorded_ip = crate::ip::client_ip(
            &parts.headers,
            ip_headers,
            peer.filter(|_| ip_headers.is_empty()),
        );

        if let Some(limiter) = &self.inner.rate_limiter {
            let socket_ip = || peer.map(|p| crate::ip::normalize(p.ip()));
            let key = recorded_ip.clone().or_else(socket_ip);
            let key = key.as_deref().unwrap_or("unknown");
            if let Err(e) = limiter.check(key, &path).await {
                return render(Reply::from_error(&e));
            }
        }
        for hook in &self.inner.pipeline.request {
            match hook(parts).await {
                Ok(p) => parts = p,
                Err(reply) => return render(reply),
            }
        }
        let started = std::time::Instant::now();
        let Some((index, params)) = self.inner.router.find(&parts.method, &path) else {
            return not_found();
        };
        let endpoint = &self.inner.endpoints[index];
        let body = match read_body(
            &mut body,
            &parts.headers,
            &parts.method,
            endpoint,
            self.inner.options.max_body_bytes,
        )
        .await
        {
            Ok(b) => b,
            Err(e) => return render(Reply::from_error(&e)),
        };
        let query = parts.uri.query().map(parse_query).unwrap_or_default();
        let checked = crate::origin::Checked {
            method: &parts.method,
            headers: &parts.headers,
            body: body.as_ref(),
            query: &query,
            login: endpoint.login,
        };
        if let Err(e) =
            crate::origin::check(&self.inner.trusted, &self.inner.options.security, checked)
        {
            return render(Reply::from_error(&e));
        }
        let ctx = Ctx::new(CtxInner {
            auth: self.clone(),
            method: parts.method,
            route: endpoint.path.clone(),
            path,
            params: params
                .into_iter()
                .map(|(k, v)| {
                    (
                        k,
                        percent_encoding::percent_decode_str(&v)
                            .decode_utf8_lossy()
                            .into_owned(),
                    )
                })
                .collect(),
            query,
            headers: parts.headers,
            body,
            client_ip: recorded_ip,
            via_http: true,
            session: OnceCell::new(),
            sensitive_session: OnceCell::new(),
            shared: Default::default(),
        });
        let method = ctx.method().clone();
        let mut reply = match self.run(ctx.clone(), endpoint).await {
            Ok(r) => r,
            Err(e) => {
                // An error answer carries the session read's cookies too: a request with a
                // dead session cookie is told to drop it, whatever the endpoint answers.
                let mut r = Reply::from_error(&e);
                ctx.apply_pending_cookies(&mut r);
                if endpoint.no_store {
                    set_no_store(r.headers_mut());
                }
                r
            }
        };
        for hook in &self.inner.pipeline.response {
            reply = hook(reply).await;
        }
        // The route pattern, never the path: a path can carry a token (/reset-password/:token).
        tracing::debug!(
            method = %method,
            route = %endpoint.path,
            status = reply.status().as_u16(),
            elapsed_us = started.elapsed().as_micros() as u64,
            "request"
        );
        render(reply)
    }

    /// Runs an endpoint with its before and after hooks: the pipeline HTTP and the server-side
    /// API share.
    pub(crate) async fn run(&self, mut ctx: Ctx, endpoint: &Endpoint) -> Result<Reply, ApiError> {
        for (matcher, hook) in &self.inner.pipeline.before {
            if !matcher.matches(&ctx) {
                continue;
            }
            match hook(ctx.clone()).await? {
                Before::Continue => {}
                Before::Respond(mut reply) => {
                    ctx.settle_session().await;
                    ctx.apply_pending_cookies(&mut reply);
                    if endpoint.no_store {
                        set_no_store_unless_set(reply.headers_mut());
                    }
                    return Ok(reply);
                }
                Before::Rewrite { body, headers } => ctx = ctx.rewritten(body, headers),
            }
        }
        let checked = crate::input::check(
            endpoint.body_shape.as_deref(),
            endpoint.query_shape.as_deref(),
            ctx.body_json(),
            ctx.query_pairs(),
            ctx.is_http(),
        );
        let checked = checked.and_then(|()| {
            if ctx.is_http()
                && matches!(*ctx.method(), Method::GET | Method::HEAD | Method::OPTIONS)
            {
                crate::origin::check_query_redirects(
                    &self.inner.trusted,
                    &self.inner.options.security,
                    ctx.query_pairs(),
                )
            } else {
                Ok(())
            }
        });
        let mut result = match checked {
            Ok(()) => (endpoint.handler)(ctx.clone()).await,
            Err(e) => Err(e),
        };
        // The session read's writes, now that the handler holds no transaction (again below,
        // for a session an after hook reads first).
        ctx.settle_session().await;
        if let Ok(reply) = &mut result {
            // Cookies the session read decided on (a stale cache to delete, a fresh one).
            ctx.apply_pending_cookies(reply);
            if endpoint.no_store {
                set_no_store(reply.headers_mut());
            }
        }
        // A sign-in, before after hooks can take it back (a second-factor challenge does):
        // the browser's previous session ends once the request succeeds either way.
        let signed_in = match &result {
            Ok(reply) => reply.new_session().map(|s| s.session.token.clone()),
            Err(_) => None,
        };
        for (matcher, hook) in &self.inner.pipeline.after {
            if matcher.matches(&ctx) {
                result = hook(ctx.clone(), result).await;
            }
        }
        if let (Some(new), true) = (signed_in, result.is_ok()) {
            self.end_replaced_session(&ctx, &new).await;
        }
        ctx.settle_session().await;
        if let Ok(reply) = &mut result {
            ctx.apply_pending_cookies(reply);
            // Again for a reply an after hook made in place of the endpoint's, unless the
            // hook chose its own caching.
            if endpoint.no_store {
                set_no_store_unless_set(reply.headers_mut());
            }
        }
        result
    }

    /// Ends the session the request's cookie names when a sign-in replaced it with `new`
    /// (unless `security.keep_previous_session_on_sign_in`). A failure is logged: the sign-in
    /// itself has succeeded.
    async fn end_replaced_session(&self, ctx: &Ctx, new: &str) {
        if self.inner.options.security.keep_previous_session_on_sign_in {
            return;
        }
        let Some(old) = ctx.session_token().filter(|old| old != new) else {
            return;
        };
        match self.delete_session(ctx.store(), &old).await {
            Ok(n) if n > 0 => tracing::debug!("sign-in ended the session the request held"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "could not end the session a sign-in replaced"),
        }
    }

    pub(crate) fn api_ctx(
        &self,
        endpoint: &Endpoint,
        method: Method,
        body: Option<serde_json::Value>,
        query: Vec<(String, String)>,
        params: Vec<(String, String)>,
        headers: HeaderMap,
    ) -> Ctx {
        let client_ip =
            crate::ip::client_ip(&headers, &self.inner.options.ip_address_headers, None);
        Ctx::new(CtxInner {
            auth: self.clone(),
            method,
            route: endpoint.path.clone(),
            path: endpoint.path.to_string(),
            params,
            query,
            headers,
            body,
            client_ip,
            via_http: false,
            session: OnceCell::new(),
            sensitive_session: OnceCell::new(),
            shared: Default::default(),
        })
    }
}

/// The request with its path's dot segments resolved (the query kept), so that request hooks,
/// the rate limiter and the router all see the one path Better Auth's router would.
fn with_dot_segments_resolved<B>(req: Request<B>) -> Request<B> {
    let Cow::Owned(path) = resolve_dot_segments(req.uri().path()) else {
        return req;
    };
    let (mut parts, body) = req.into_parts();
    let path_and_query = match parts.uri.query() {
        Some(q) => format!("{path}?{q}"),
        None => path,
    };
    let mut uri = parts.uri.clone().into_parts();
    if let Ok(pq) = http::uri::PathAndQuery::try_from(path_and_query) {
        uri.path_and_query = Some(pq);
        if let Ok(u) = http::Uri::from_parts(uri) {
            parts.uri = u;
        }
    }
    Request::from_parts(parts, body)
}

/// The path with `.` and `..` segments (also percent-encoded) resolved, as a WHATWG URL parser
/// resolves them before Better Auth's router sees the path.
fn resolve_dot_segments(path: &str) -> Cow<'_, str> {
    let is_dot = |s: &str| s == "." || s.eq_ignore_ascii_case("%2e");
    let is_dot_dot = |s: &str| {
        s == ".."
            || s.eq_ignore_ascii_case(".%2e")
            || s.eq_ignore_ascii_case("%2e.")
            || s.eq_ignore_ascii_case("%2e%2e")
    };
    if !path.split('/').any(|s| is_dot(s) || is_dot_dot(s)) {
        return Cow::Borrowed(path);
    }
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    let mut out: Vec<&str> = Vec::with_capacity(segments.len());
    for (i, seg) in segments.iter().enumerate() {
        let last = i + 1 == segments.len();
        if is_dot(seg) {
            if last {
                out.push("");
            }
        } else if is_dot_dot(seg) {
            out.pop();
            if last {
                out.push("");
            }
        } else {
            out.push(seg);
        }
    }
    Cow::Owned(format!("/{}", out.join("/")))
}

/// `Cache-Control: no-store` and `Pragma: no-cache`, for endpoints that answer secrets.
fn set_no_store(h: &mut HeaderMap) {
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

fn set_no_store_unless_set(h: &mut HeaderMap) {
    if !h.contains_key(header::CACHE_CONTROL) {
        set_no_store(h);
    }
}

fn not_found() -> HttpResponse {
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = StatusCode::NOT_FOUND;
    r
}

fn parse_query(q: &str) -> Vec<(String, String)> {
    serde_urlencoded::from_str(q).unwrap_or_default()
}

/// A request body that may go unread: when it is dropped with data still to come (the
/// answer was decided before the body was needed: a 429, a 404, a 413 on its declared length),
/// the rest is read and discarded in the background, up to [`Unread::DRAIN_BYTES`] and
/// [`Unread::DRAIN_TIME`], at most 64 bodies at once, and not when the declared length is
/// already past the bound. Closing a connection with unread data in the socket makes the
/// kernel reset it, and a client still uploading (a browser, `fetch`) then sees the reset
/// instead of the answer; draining lets the answer arrive and the connection live on. Past
/// the bounds the body is dropped, and the connection with it.
struct Unread<B: http_body::Body<Data = Bytes> + Send + 'static> {
    state: Reading<B>,
    /// The declared length: a body longer than a drain reads is not drained at all.
    declared: Option<u64>,
}

/// At most this many bodies drain at once; past it the connection is simply closed.
static DRAINS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(64);

enum Reading<B> {
    /// Not touched (kept unboxed: most requests have no body to read at all).
    Untouched(B),
    /// Partly read.
    Started(std::pin::Pin<Box<B>>),
    /// Read to its end.
    Done,
}

impl<B: http_body::Body<Data = Bytes> + Send + 'static> Unread<B> {
    /// The most a drain reads.
    const DRAIN_BYTES: usize = 64 * 1024 * 1024;
    /// The longest a drain waits for the client.
    const DRAIN_TIME: Duration = Duration::from_secs(10);

    fn new(body: B, declared: Option<u64>) -> Self {
        Self {
            state: Reading::Untouched(body),
            declared,
        }
    }

    /// Reads the body whole, or up to `limit` bytes (`Ok(None)`: over the limit, the rest left
    /// to the drain).
    async fn read(&mut self, limit: usize) -> Result<Option<Bytes>, B::Error> {
        if let Reading::Untouched(_) = self.state {
            if let Reading::Untouched(b) = std::mem::replace(&mut self.state, Reading::Done) {
                self.state = Reading::Started(Box::pin(b));
            }
        }
        let Reading::Started(body) = &mut self.state else {
            return Ok(Some(Bytes::new()));
        };
        let mut out = bytes::BytesMut::new();
        while let Some(frame) = body.frame().await {
            if let Ok(data) = frame?.into_data() {
                if out.len() + data.len() > limit {
                    return Ok(None);
                }
                out.extend_from_slice(&data);
            }
        }
        self.state = Reading::Done;
        Ok(Some(out.freeze()))
    }
}

impl<B: http_body::Body<Data = Bytes> + Send + 'static> Drop for Unread<B> {
    fn drop(&mut self) {
        let mut body = match std::mem::replace(&mut self.state, Reading::Done) {
            Reading::Untouched(b) if !b.is_end_stream() => Box::pin(b),
            Reading::Started(b) if !b.is_end_stream() => b,
            _ => return,
        };
        if self.declared.is_some_and(|n| n > Self::DRAIN_BYTES as u64) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let Ok(permit) = DRAINS.try_acquire() else {
            tracing::debug!("too many bodies draining; this connection is closed instead");
            return;
        };
        runtime.spawn(async move {
            let _permit = permit;
            let drain = async {
                let mut read = 0usize;
                while let Some(Ok(frame)) = body.frame().await {
                    if let Ok(data) = frame.into_data() {
                        read += data.len();
                        if read > Self::DRAIN_BYTES {
                            break;
                        }
                    }
                }
            };
            if tokio::time::timeout(Self::DRAIN_TIME, drain).await.is_err() {
                tracing::debug!("an unread request body was not drained in time");
            }
        });
    }
}

async fn read_body<B>(
    body: &mut Unread<B>,
    headers: &HeaderMap,
    method: &Method,
    endpoint: &Endpoint,
    limit: usize,
) -> Result<Option<serde_json::Value>, ApiError>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    if method == Method::GET || method == Method::HEAD {
        return Ok(None);
    }
    let too_large = || ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, codes::PAYLOAD_TOO_LARGE);
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let bytes = match body.read(limit).await {
        Ok(Some(bytes)) => bytes,
        Ok(None) => return Err(too_large()),
        Err(e) => {
            let e: Box<dyn std::error::Error + Send + Sync> = e.into();
            tracing::debug!(error = %e, "request body could not be read");
            return Err(ApiError::new(StatusCode::BAD_REQUEST, codes::BAD_REQUEST)
                .with_message("Request body could not be read"));
        }
    };
    if bytes.is_empty() {
        return Ok(None);
    }
    let Some(content_type) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        // Better Auth over HTTP drops a body without a content type.
        return Ok(None);
    };
    let media = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let body = match media.as_str() {
        // A byte-order mark is skipped, as JavaScript's body reader does.
        "application/json" => serde_json::from_slice(
            bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes),
        )
        .map_err(|_| {
            ApiError::new(StatusCode::BAD_REQUEST, codes::BAD_REQUEST)
                .with_message("Invalid JSON in request body")
        })?,
        "application/x-www-form-urlencoded" if endpoint.accepts_form => {
            let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&bytes)
                .map_err(|_| ApiError::validation("[body] Invalid form body"))?;
            let mut map = serde_json::Map::new();
            for (k, v) in pairs {
                map.entry(k).or_insert(serde_json::Value::String(v));
            }
            serde_json::Value::Object(map)
        }
        _ => {
            let allowed = if endpoint.accepts_form {
                "application/x-www-form-urlencoded, application/json"
            } else {
                "application/json"
            };
            let shown: String = content_type
                .chars()
                .filter(|c| !c.is_control())
                .take(100)
                .collect();
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                codes::UNSUPPORTED_MEDIA_TYPE,
            )
            .with_message(format!(
                "Content-Type \"{shown}\" is not allowed. Allowed types: {allowed}"
            )));
        }
    };
    // Not every database stores NUL in text (PostgreSQL refuses it): refuse it at the door,
    // so every backend answers alike.
    if contains_nul(&body) {
        return Err(ApiError::validation(
            "[body] Text may not contain NUL characters",
        ));
    }
    Ok(Some(body))
}

fn contains_nul(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::String(s) => s.contains('\0'),
        serde_json::Value::Array(a) => a.iter().any(contains_nul),
        serde_json::Value::Object(o) => o.iter().any(|(k, v)| k.contains('\0') || contains_nul(v)),
        _ => false,
    }
}

/// Turns a reply into an HTTP response.
pub(crate) fn render(reply: Reply) -> HttpResponse {
    let (status, mut headers, content_type, bytes) = reply.into_wire();
    if let Some(kind) = content_type {
        headers
            .entry(header::CONTENT_TYPE)
            .or_insert(HeaderValue::from_static(kind));
    }
    let mut r = Response::new(Full::new(bytes));
    *r.status_mut() = status;
    *r.headers_mut() = headers;
    r
}

#[cfg(test)]
mod dot_segment_tests {
    use super::resolve_dot_segments;

    #[test]
    fn dot_segments_resolve_as_a_url_parser_resolves_them() {
        for (given, want) in [
            ("/api/auth/get-session", "/api/auth/get-session"),
            ("/api/auth/./get-session", "/api/auth/get-session"),
            ("/api/auth/x/../get-session", "/api/auth/get-session"),
            ("/api/auth/%2e/get-session", "/api/auth/get-session"),
            ("/api/auth/x/%2E%2e/get-session", "/api/auth/get-session"),
            ("/api/auth/../../../etc", "/etc"),
            ("/api/auth/.", "/api/auth/"),
            ("/api/auth/x/..", "/api/auth/"),
            ("/..", "/"),
            ("/api/auth/...", "/api/auth/..."),
        ] {
            assert_eq!(resolve_dot_segments(given), want, "{given}");
        }
    }
}
