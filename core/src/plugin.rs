//! The plugin API: what a plugin contributes, and the types it builds its contributions from.
//!
//! A plugin is any `Send + Sync` type implementing [`Plugin`]. It returns [`Endpoint`]s
//! (method, path, handler), [`Hook`]s (before/after an endpoint, or on the raw request and
//! response), a [`SchemaPatch`] for the tables and fields it stores, [`RateRule`]s and its
//! [`ErrorCode`]s. First-party plugins use nothing else, so a third-party plugin can do
//! anything they do.

use std::borrow::Cow;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, Method};

use crate::context::{Ctx, Reply};
use crate::error::{ApiError, ErrorCode};
use crate::schema::SchemaPatch;
use crate::{BoxFuture, Error, Options};

/// A unit of functionality plugged into the engine. Object-safe: the engine holds plugins as
/// `Arc<dyn Plugin>`.
pub trait Plugin: Send + Sync + 'static {
    /// A stable, unique id (`"email-password"`).
    fn id(&self) -> &'static str;

    /// Runs once while the engine is built; may adjust the options (add trusted origins, say).
    fn init(&self, ctx: &mut InitContext<'_>) -> Result<(), Error> {
        let _ = ctx;
        Ok(())
    }

    /// Tables the plugin owns and fields it adds to other tables.
    fn schema(&self) -> SchemaPatch {
        SchemaPatch::default()
    }

    /// The endpoints the plugin serves.
    fn endpoints(&self) -> Vec<Endpoint> {
        Vec::new()
    }

    /// Hooks around endpoints (its own or any other plugin's) and around raw requests.
    fn hooks(&self) -> Vec<Hook> {
        Vec::new()
    }

    /// Hooks around writes of the core models (Better Auth's `init().options.databaseHooks`).
    /// They run before the application's, in plugin order.
    fn database_hooks(&self) -> Vec<crate::storage::DbHook> {
        Vec::new()
    }

    /// Rate-limit rules for its paths; they take precedence over the built-in rules.
    fn rate_limits(&self) -> Vec<RateRule> {
        Vec::new()
    }

    /// The error codes its endpoints answer with, for documentation and `Auth::error_codes`.
    fn error_codes(&self) -> &'static [ErrorCode] {
        &[]
    }

    /// Checks of every new password (at sign-up, a change, a reset, a first password), run
    /// where the password is about to be hashed: an error refuses the password and is the
    /// answer (Better Auth's plugins wrap the hasher for this).
    fn password_checks(&self) -> Vec<PasswordCheck> {
        Vec::new()
    }
}

/// A check of a new password ([`Plugin::password_checks`]): given the request and the
/// password, `Ok(())` to accept it. Endpoints run every check through
/// [`Auth::check_new_password`](crate::Auth::check_new_password).
pub type PasswordCheck =
    Arc<dyn Fn(Ctx, String) -> BoxFuture<'static, Result<(), ApiError>> + Send + Sync>;

/// What [`Plugin::init`] may read and change.
pub struct InitContext<'a> {
    pub(crate) options: &'a mut Options,
}

impl InitContext<'_> {
    /// The engine's options as configured so far.
    pub fn options(&self) -> &Options {
        self.options
    }

    /// Trusts another origin for redirects and origin checks.
    pub fn add_trusted_origin(&mut self, origin: impl Into<String>) {
        self.options.trusted_origins.push(origin.into());
    }
}

type HandlerFn = dyn Fn(Ctx) -> BoxFuture<'static, Result<Reply, ApiError>> + Send + Sync;

/// One endpoint: a name (its key in the server-side API), HTTP method(s), a path under the
/// base path (with `:param` segments), and an async handler.
#[derive(Clone)]
pub struct Endpoint {
    pub(crate) name: Cow<'static, str>,
    pub(crate) methods: Vec<Method>,
    pub(crate) path: Cow<'static, str>,
    pub(crate) handler: Arc<HandlerFn>,
    pub(crate) accepts_form: bool,
    pub(crate) login: bool,
    pub(crate) server_only: bool,
    pub(crate) no_store: bool,
    pub(crate) body_shape: Option<Arc<crate::input::Shape>>,
    pub(crate) query_shape: Option<Arc<crate::input::Shape>>,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("name", &self.name)
            .field("methods", &self.methods)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Endpoint {
    /// An endpoint answering `methods` at `path` with `handler`. `name` is its key in the
    /// server-side API (Better Auth's camelCase name, e.g. `signInEmail`).
    pub fn new<F, Fut>(
        name: impl Into<Cow<'static, str>>,
        methods: &[Method],
        path: impl Into<Cow<'static, str>>,
        handler: F,
    ) -> Self
    where
        F: Fn(Ctx) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Reply, ApiError>> + Send + 'static,
    {
        Self {
            name: name.into(),
            methods: methods.to_vec(),
            path: path.into(),
            handler: Arc::new(move |ctx| Box::pin(handler(ctx))),
            accepts_form: false,
            body_shape: None,
            query_shape: None,
            login: false,
            server_only: false,
            no_store: false,
        }
    }

    /// A `GET` endpoint.
    pub fn get<F, Fut>(
        name: impl Into<Cow<'static, str>>,
        path: impl Into<Cow<'static, str>>,
        handler: F,
    ) -> Self
    where
        F: Fn(Ctx) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Reply, ApiError>> + Send + 'static,
    {
        Self::new(name, &[Method::GET], path, handler)
    }

    /// A `POST` endpoint.
    pub fn post<F, Fut>(
        name: impl Into<Cow<'static, str>>,
        path: impl Into<Cow<'static, str>>,
        handler: F,
    ) -> Self
    where
        F: Fn(Ctx) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Reply, ApiError>> + Send + 'static,
    {
        Self::new(name, &[Method::POST], path, handler)
    }

    /// Also accepts `application/x-www-form-urlencoded` bodies (HTML form posts).
    pub fn accept_form(mut self) -> Self {
        self.accepts_form = true;
        self
    }

    /// Marks a sign-in or sign-up endpoint: a browser request to it (one with `Sec-Fetch-*`,
    /// `Origin` or `Referer` headers) must come from a trusted origin and must not be a
    /// cross-site navigation, even without cookies, so no other site can sign a visitor into
    /// an attacker's account. Clients without those headers (servers, apps) are unaffected.
    pub fn login(mut self) -> Self {
        self.login = true;
        self
    }

    /// What the body must look like (Better Auth's zod schema for it): checked after the
    /// before hooks and before the handler, refused with zod's messages (400
    /// `VALIDATION_ERROR`). See [`Shape`](crate::Shape).
    pub fn body_shape(mut self, shape: crate::input::Shape) -> Self {
        self.body_shape = Some(Arc::new(shape));
        self
    }

    /// What the query must look like, checked after the body.
    pub fn query_shape(mut self, shape: crate::input::Shape) -> Self {
        self.query_shape = Some(Arc::new(shape));
        self
    }

    /// Reachable only through the server-side API, never over HTTP.
    pub fn server_only(mut self) -> Self {
        self.server_only = true;
        self
    }

    /// Answers carry `Cache-Control: no-store` and `Pragma: no-cache`.
    pub fn no_store(mut self) -> Self {
        self.no_store = true;
        self
    }

    /// The endpoint's API name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The endpoint's path pattern.
    pub fn path(&self) -> &str {
        &self.path
    }
}

/// A typed JSON body or reply. As a handler's last argument (see [`Handlers`]) it is the
/// request body deserialised (a body that does not fit is answered 400 `VALIDATION_ERROR`
/// before the handler runs); as what a handler returns, a 200 whose JSON is `T` serialised,
/// keys in field order (so a struct with Better Auth's key order answers with it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Json<T>(pub T);

/// What a handler may return: a [`Reply`] as it is, or [`Json`] of anything `Serialize`.
pub trait IntoReply {
    /// The reply to answer with.
    fn into_reply(self) -> Reply;
}

impl IntoReply for Reply {
    fn into_reply(self) -> Reply {
        self
    }
}

impl<T: serde::Serialize> IntoReply for Json<T> {
    fn into_reply(self) -> Reply {
        Reply::json(self.0)
    }
}

/// An endpoint handler of a plugin whose state is `S`: an async function of the state and
/// the request, `(Arc<S>, Ctx)`, or of the state, the request and its typed body,
/// `(Arc<S>, Ctx, Json<B>)`, returning `Result<impl IntoReply, ApiError>`. `M` only tells
/// the two forms apart; it is inferred.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an endpoint handler for state `{S}`",
    note = "a handler is an async fn(Arc<{S}>, Ctx) or async fn(Arc<{S}>, Ctx, Json<Body>) returning Result<Reply or Json<T>, ApiError>"
)]
pub trait Handler<S, M>: Send + Sync + 'static {
    /// Runs the handler.
    fn call(&self, state: Arc<S>, ctx: Ctx) -> BoxFuture<'static, Result<Reply, ApiError>>;
}

/// Marks the `(Arc<S>, Ctx)` form of [`Handler`].
#[derive(Debug)]
pub enum StateAndCtx {}

/// Marks the `(Arc<S>, Ctx, Json<B>)` form of [`Handler`].
#[derive(Debug)]
pub struct StateCtxAndBody<B>(std::marker::PhantomData<fn() -> B>);

impl<S, F, Fut, R> Handler<S, StateAndCtx> for F
where
    S: Send + Sync + 'static,
    F: Fn(Arc<S>, Ctx) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<R, ApiError>> + Send + 'static,
    R: IntoReply,
{
    fn call(&self, state: Arc<S>, ctx: Ctx) -> BoxFuture<'static, Result<Reply, ApiError>> {
        let fut = self(state, ctx);
        Box::pin(async move { fut.await.map(IntoReply::into_reply) })
    }
}

impl<S, F, Fut, R, B> Handler<S, StateCtxAndBody<B>> for F
where
    S: Send + Sync + 'static,
    F: Fn(Arc<S>, Ctx, Json<B>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<R, ApiError>> + Send + 'static,
    R: IntoReply,
    B: serde::de::DeserializeOwned + Send + 'static,
{
    fn call(&self, state: Arc<S>, ctx: Ctx) -> BoxFuture<'static, Result<Reply, ApiError>> {
        let body = ctx.body_or_empty::<B>();
        let fut = body.map(|body| self(state, ctx, Json(body)));
        Box::pin(async move { fut?.await.map(IntoReply::into_reply) })
    }
}

/// Builds a plugin's endpoints and hooks around its state: each function gets `Arc<S>` as
/// its first argument, so nothing is cloned into closures by hand.
///
/// ```
/// use std::sync::Arc;
/// use portcullis::plugin::{Handlers, Json};
/// use portcullis::{ApiError, Ctx, Endpoint};
///
/// struct Greeter { greeting: String }
///
/// #[derive(serde::Deserialize)]
/// struct Hello { name: String }
///
/// #[derive(serde::Serialize)]
/// struct Greeting { message: String }
///
/// async fn hello(state: Arc<Greeter>, _ctx: Ctx, Json(body): Json<Hello>) -> Result<Json<Greeting>, ApiError> {
///     Ok(Json(Greeting { message: format!("{}, {}", state.greeting, body.name) }))
/// }
///
/// let on = Handlers::new(Greeter { greeting: "Hello".into() });
/// let endpoints: Vec<Endpoint> = vec![on.post("hello", "/hello", hello)];
/// # let _ = endpoints;
/// ```
#[derive(Debug)]
pub struct Handlers<S> {
    state: Arc<S>,
}

impl<S> Clone for Handlers<S> {
    fn clone(&self) -> Self {
        Self {
            state: self.state.clone(),
        }
    }
}

impl<S: Send + Sync + 'static> Handlers<S> {
    /// Handlers around `state` (a value, or an `Arc` the plugin already holds).
    pub fn new(state: impl Into<Arc<S>>) -> Self {
        Self {
            state: state.into(),
        }
    }

    /// The state, shared.
    pub fn state(&self) -> &Arc<S> {
        &self.state
    }

    /// An endpoint answering `methods` at `path` (see [`Endpoint::new`]).
    pub fn endpoint<M>(
        &self,
        name: impl Into<Cow<'static, str>>,
        methods: &[Method],
        path: impl Into<Cow<'static, str>>,
        handler: impl Handler<S, M>,
    ) -> Endpoint {
        let state = self.state.clone();
        Endpoint::new(name, methods, path, move |ctx| {
            handler.call(state.clone(), ctx)
        })
    }

    /// A `GET` endpoint.
    pub fn get<M>(
        &self,
        name: impl Into<Cow<'static, str>>,
        path: impl Into<Cow<'static, str>>,
        handler: impl Handler<S, M>,
    ) -> Endpoint {
        self.endpoint(name, &[Method::GET], path, handler)
    }

    /// A `POST` endpoint.
    pub fn post<M>(
        &self,
        name: impl Into<Cow<'static, str>>,
        path: impl Into<Cow<'static, str>>,
        handler: impl Handler<S, M>,
    ) -> Endpoint {
        self.endpoint(name, &[Method::POST], path, handler)
    }

    /// A before hook (see [`Hook::before`]) that gets the state.
    pub fn before<F, Fut>(&self, matcher: Matcher, f: F) -> Hook
    where
        F: Fn(Arc<S>, Ctx) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Before, ApiError>> + Send + 'static,
    {
        let state = self.state.clone();
        Hook::before(matcher, move |ctx| f(state.clone(), ctx))
    }

    /// An after hook (see [`Hook::after`]) that gets the state.
    pub fn after<F, Fut>(&self, matcher: Matcher, f: F) -> Hook
    where
        F: Fn(Arc<S>, Ctx, Result<Reply, ApiError>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Reply, ApiError>> + Send + 'static,
    {
        let state = self.state.clone();
        Hook::after(matcher, move |ctx, result| f(state.clone(), ctx, result))
    }

    /// A database hook before each `op` of a `model` row (see [`DbHook`]) that gets the
    /// state: it returns the row to write (for a delete, the row it was given; only its
    /// `Err` matters there), or an error that refuses the write.
    ///
    /// [`DbHook`]: crate::storage::DbHook
    pub fn before_write<F, Fut>(
        &self,
        op: crate::storage::DbOp,
        model: impl Into<crate::storage::Model>,
        f: F,
    ) -> crate::storage::DbHook
    where
        F: Fn(Arc<S>, crate::storage::Row, Option<Ctx>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<crate::storage::Row, ApiError>> + Send + 'static,
    {
        let state = self.state.clone();
        crate::storage::DbHook::before(model.into(), op, move |row, ctx| f(state.clone(), row, ctx))
    }

    /// A database hook after each `op` of a `model` row (see [`DbHook`]) that gets the
    /// state, with the row as stored (for a delete, as it was).
    ///
    /// [`DbHook`]: crate::storage::DbHook
    pub fn after_write<F, Fut>(
        &self,
        op: crate::storage::DbOp,
        model: impl Into<crate::storage::Model>,
        f: F,
    ) -> crate::storage::DbHook
    where
        F: Fn(Arc<S>, crate::storage::Row, Option<Ctx>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), ApiError>> + Send + 'static,
    {
        let state = self.state.clone();
        crate::storage::DbHook::after(model.into(), op, move |row, ctx| f(state.clone(), row, ctx))
    }
}

/// Which endpoints a before/after hook applies to, by path pattern (`/sign-in/email`).
#[derive(Clone)]
#[non_exhaustive]
pub enum Matcher {
    /// Every endpoint.
    Any,
    /// Endpoints whose path pattern is exactly this.
    Path(Cow<'static, str>),
    /// Endpoints whose path pattern is one of these.
    Paths(Vec<Cow<'static, str>>),
    /// Endpoints whose path pattern starts with this.
    Prefix(Cow<'static, str>),
    /// Decided by a function of the request context.
    Custom(Arc<dyn Fn(&Ctx) -> bool + Send + Sync>),
}

impl Matcher {
    pub(crate) fn matches(&self, ctx: &Ctx) -> bool {
        let route = ctx.route();
        match self {
            Matcher::Any => true,
            Matcher::Path(p) => route == p,
            Matcher::Paths(ps) => ps.iter().any(|p| route == p),
            Matcher::Prefix(p) => route.starts_with(p.as_ref()),
            Matcher::Custom(f) => f(ctx),
        }
    }
}

/// What a before hook decides.
#[derive(Debug)]
#[non_exhaustive]
pub enum Before {
    /// Run the endpoint as is.
    Continue,
    /// Answer with this instead of running the endpoint (and later hooks).
    Respond(Reply),
    /// Run the endpoint with changed input: a new body and/or extra headers (replacing
    /// headers of the same name, e.g. a rewritten `Cookie`).
    Rewrite {
        /// The body to use instead, if any.
        body: Option<serde_json::Value>,
        /// Headers to set on the request.
        headers: HeaderMap,
    },
}

pub(crate) type BeforeFn =
    dyn Fn(Ctx) -> BoxFuture<'static, Result<Before, ApiError>> + Send + Sync;
pub(crate) type AfterFn = dyn Fn(Ctx, Result<Reply, ApiError>) -> BoxFuture<'static, Result<Reply, ApiError>>
    + Send
    + Sync;
pub(crate) type RequestFn = dyn Fn(http::request::Parts) -> BoxFuture<'static, Result<http::request::Parts, Reply>>
    + Send
    + Sync;
pub(crate) type ResponseFn = dyn Fn(Reply) -> BoxFuture<'static, Reply> + Send + Sync;

pub(crate) enum HookKind {
    Before(Arc<BeforeFn>),
    After(Arc<AfterFn>),
    Request(Arc<RequestFn>),
    Response(Arc<ResponseFn>),
}

/// A hook: code that runs around endpoints or around raw HTTP requests.
///
/// Order, as in Better Auth: request hooks (HTTP only) → before hooks → endpoint → after hooks
/// → response hooks (HTTP only). Hooks run in plugin order; hooks added on the builder run
/// before plugin hooks.
pub struct Hook {
    pub(crate) matcher: Matcher,
    pub(crate) kind: HookKind,
}

impl Hook {
    /// Runs before matching endpoints; may answer early, fail, or rewrite the input.
    pub fn before<F, Fut>(matcher: Matcher, f: F) -> Self
    where
        F: Fn(Ctx) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Before, ApiError>> + Send + 'static,
    {
        Self {
            matcher,
            kind: HookKind::Before(Arc::new(move |ctx| Box::pin(f(ctx)))),
        }
    }

    /// Runs after matching endpoints (also when they failed); sees the result so far and
    /// returns the result to answer with.
    pub fn after<F, Fut>(matcher: Matcher, f: F) -> Self
    where
        F: Fn(Ctx, Result<Reply, ApiError>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Reply, ApiError>> + Send + 'static,
    {
        Self {
            matcher,
            kind: HookKind::After(Arc::new(move |ctx, r| Box::pin(f(ctx, r)))),
        }
    }

    /// Runs on every HTTP request under the base path before routing; may change the request
    /// head (`Ok`) or answer at once (`Err`). Not run for server-side API calls.
    pub fn on_request<F, Fut>(f: F) -> Self
    where
        F: Fn(http::request::Parts) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<http::request::Parts, Reply>> + Send + 'static,
    {
        Self {
            matcher: Matcher::Any,
            kind: HookKind::Request(Arc::new(move |p| Box::pin(f(p)))),
        }
    }

    /// Runs on every HTTP response of a routed request; may change it. Not run for
    /// server-side API calls.
    pub fn on_response<F, Fut>(f: F) -> Self
    where
        F: Fn(Reply) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Reply> + Send + 'static,
    {
        Self {
            matcher: Matcher::Any,
            kind: HookKind::Response(Arc::new(move |r| Box::pin(f(r)))),
        }
    }
}

/// A rate-limit rule: at most `max` requests per `window` from one client on matching paths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateRule {
    /// The path (relative to the base path) or path prefix.
    pub path: Cow<'static, str>,
    /// Whether `path` is a prefix rather than an exact path.
    pub prefix: bool,
    /// The window.
    pub window: Duration,
    /// Requests allowed per window; 0 disables limiting on these paths.
    pub max: u32,
}

impl RateRule {
    /// A rule for exactly `path`.
    pub fn exact(path: impl Into<Cow<'static, str>>, window: Duration, max: u32) -> Self {
        Self {
            path: path.into(),
            prefix: false,
            window,
            max,
        }
    }

    /// A rule for every path starting with `prefix`.
    pub fn prefix(prefix: impl Into<Cow<'static, str>>, window: Duration, max: u32) -> Self {
        Self {
            path: prefix.into(),
            prefix: true,
            window,
            max,
        }
    }

    pub(crate) fn matches(&self, path: &str) -> bool {
        if self.prefix {
            path.starts_with(self.path.as_ref())
        } else {
            path == self.path
        }
    }
}

/// A named plugin constructor, registered with [`inventory`] so the stand-alone server can
/// build plugins listed by name in its configuration file.
pub struct PluginFactory {
    /// The name used in configuration (`"email-password"`).
    pub name: &'static str,
    /// Builds the plugin from its configuration table (JSON; `null` when absent).
    pub build: fn(&serde_json::Value) -> Result<Arc<dyn Plugin>, Error>,
}

inventory::collect!(PluginFactory);

/// Every plugin factory linked into this binary.
pub fn plugin_factories() -> impl Iterator<Item = &'static PluginFactory> {
    inventory::iter::<PluginFactory>.into_iter()
}

/// A factory's options from its configuration (`[plugin.<name>]`, as JSON): the defaults
/// when there is none, otherwise `T` deserialized from it, a mistake named after `plugin`.
pub fn options_from_config<T: serde::de::DeserializeOwned + Default>(
    plugin: &'static str,
    config: &serde_json::Value,
) -> Result<T, Error> {
    if config.is_null() {
        return Ok(T::default());
    }
    T::deserialize(config).map_err(|e| Error::Plugin {
        plugin,
        message: e.to_string(),
    })
}

/// Builds the plugin registered as `name` with `config`.
pub fn build_plugin(name: &str, config: &serde_json::Value) -> Result<Arc<dyn Plugin>, Error> {
    plugin_factories()
        .find(|f| f.name == name)
        .ok_or_else(|| {
            let known: Vec<&str> = plugin_factories().map(|f| f.name).collect();
            Error::Config(format!(
                "unknown plugin `{name}`; plugins in this build: {}",
                known.join(", ")
            ))
        })
        .and_then(|f| (f.build)(config))
}
