//! Database hooks: application and plugin code around every write of a model made through a
//! [`Store`](super::Store), whatever endpoint or plugin makes it (Better Auth's
//! `databaseHooks`).
//!
//! A [`DbHook`] names a [`Model`] (a core one, `user`, `session`, `account`, `verification`,
//! or any model a plugin owns), an operation
//! (create, update, delete) and when it runs:
//!
//! - **before** hooks get the data about to be written as a [`Row`] (for an update, only the
//!   fields being set) and return the row to write, changed or not; an `Err` refuses the write
//!   and is what the client receives (in Better Auth's `{message, code}` format). Before-delete
//!   hooks get the row about to be deleted and can only refuse.
//! - **after** hooks get the row as stored (for a delete, as it was). Inside a transaction
//!   ([`Tx`](super::Tx)) they run once it has committed, and never if it rolls back; an `Err`
//!   from one is answered to the client, though the write stays.
//!
//! Both get the request's [`Ctx`] when the write happens while serving a request (over HTTP or
//! the server-side API), `None` otherwise. Plugin hooks ([`Plugin::database_hooks`]) run first,
//! in plugin order, then the application's ([`AuthBuilder::database_hook`]), as in Better Auth.
//!
//! A before hook running inside a transaction runs before it commits: writes it makes itself
//! through [`Ctx::store`] are outside that transaction (and on SQLite wait for it).
//!
//! [`Plugin::database_hooks`]: crate::Plugin::database_hooks
//! [`AuthBuilder::database_hook`]: crate::AuthBuilder::database_hook

use std::borrow::Cow;
use std::future::Future;
use std::sync::{Arc, Mutex};

use super::Row;
use crate::context::Ctx;
use crate::error::ApiError;
use crate::BoxFuture;

/// The model a database hook watches: a core model ([`Model::USER`], [`Model::SESSION`],
/// [`Model::ACCOUNT`], [`Model::VERIFICATION`]) or any model a plugin owns, by its logical
/// name (`Model::new("auditEvent")`, or a [`Record`](super::Record)'s `MODEL`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Model(Cow<'static, str>);

impl Model {
    /// `user`.
    pub const USER: Model = Model(Cow::Borrowed("user"));
    /// `session`.
    pub const SESSION: Model = Model(Cow::Borrowed("session"));
    /// `account`.
    pub const ACCOUNT: Model = Model(Cow::Borrowed("account"));
    /// `verification`.
    pub const VERIFICATION: Model = Model(Cow::Borrowed("verification"));

    /// The model with this logical name.
    pub fn new(name: impl Into<Cow<'static, str>>) -> Self {
        Self(name.into())
    }

    /// The model's logical name (`"user"`).
    pub fn name(&self) -> &str {
        &self.0
    }
}

impl From<&'static str> for Model {
    fn from(name: &'static str) -> Self {
        Self(Cow::Borrowed(name))
    }
}

/// A write that database hooks can surround.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbOp {
    /// A new row.
    Create,
    /// Changed fields of an existing row.
    Update,
    /// A row removed.
    Delete,
}

type BeforeFn = dyn Fn(Row, Option<Ctx>) -> BoxFuture<'static, Result<Row, ApiError>> + Send + Sync;
type AfterFn = dyn Fn(Row, Option<Ctx>) -> BoxFuture<'static, Result<(), ApiError>> + Send + Sync;

enum When {
    Before(Arc<BeforeFn>),
    After(Arc<AfterFn>),
}

/// One database hook: code that runs before or after a create, update or delete of a core
/// model. Added with [`AuthBuilder::database_hook`](crate::AuthBuilder::database_hook) or
/// returned by [`Plugin::database_hooks`](crate::Plugin::database_hooks).
///
/// ```
/// use portcullis::storage::{DbHook, Model};
///
/// // Every new user's name is stored trimmed, whoever creates the user.
/// let trim = DbHook::before_create(Model::USER, |mut user, _ctx| async move {
///     if let Some(name) = user.str("name") {
///         let trimmed = name.trim().to_owned();
///         user.set("name", trimmed);
///     }
///     Ok(user)
/// });
/// # let _ = trim;
/// ```
pub struct DbHook {
    model: Model,
    op: DbOp,
    when: When,
}

impl std::fmt::Debug for DbHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let when = match self.when {
            When::Before(_) => "before",
            When::After(_) => "after",
        };
        f.debug_struct("DbHook")
            .field("model", &self.model)
            .field("op", &self.op)
            .field("when", &when)
            .finish()
    }
}

impl DbHook {
    pub(crate) fn before<F, Fut>(model: Model, op: DbOp, f: F) -> Self
    where
        F: Fn(Row, Option<Ctx>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Row, ApiError>> + Send + 'static,
    {
        Self {
            model,
            op,
            when: When::Before(Arc::new(move |row, ctx| Box::pin(f(row, ctx)))),
        }
    }

    pub(crate) fn after<F, Fut>(model: Model, op: DbOp, f: F) -> Self
    where
        F: Fn(Row, Option<Ctx>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), ApiError>> + Send + 'static,
    {
        Self {
            model,
            op,
            when: When::After(Arc::new(move |row, ctx| Box::pin(f(row, ctx)))),
        }
    }

    /// Runs before a `model` row is inserted: gets the new row and returns the row to insert
    /// (changed or not), or an error that refuses the insert.
    pub fn before_create<F, Fut>(model: impl Into<Model>, f: F) -> Self
    where
        F: Fn(Row, Option<Ctx>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Row, ApiError>> + Send + 'static,
    {
        Self::before(model.into(), DbOp::Create, f)
    }

    /// Runs before a `model` row is updated: gets the fields being set and returns the fields
    /// to set (changed or not), or an error that refuses the update.
    pub fn before_update<F, Fut>(model: impl Into<Model>, f: F) -> Self
    where
        F: Fn(Row, Option<Ctx>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Row, ApiError>> + Send + 'static,
    {
        Self::before(model.into(), DbOp::Update, f)
    }

    /// Runs before a `model` row is deleted, once per row: gets the row; an error refuses
    /// the delete (of every row the operation would delete).
    pub fn before_delete<F, Fut>(model: impl Into<Model>, f: F) -> Self
    where
        F: Fn(Row, Option<Ctx>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), ApiError>> + Send + 'static,
    {
        let f = Arc::new(f);
        Self::before(model.into(), DbOp::Delete, move |row: Row, ctx| {
            let f = f.clone();
            async move {
                f(row.clone(), ctx).await?;
                Ok(row)
            }
        })
    }

    /// Runs after a `model` row is inserted, with the row as stored.
    pub fn after_create<F, Fut>(model: impl Into<Model>, f: F) -> Self
    where
        F: Fn(Row, Option<Ctx>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), ApiError>> + Send + 'static,
    {
        Self::after(model.into(), DbOp::Create, f)
    }

    /// Runs after a `model` row is updated, with the whole row as stored.
    pub fn after_update<F, Fut>(model: impl Into<Model>, f: F) -> Self
    where
        F: Fn(Row, Option<Ctx>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), ApiError>> + Send + 'static,
    {
        Self::after(model.into(), DbOp::Update, f)
    }

    /// Runs after a `model` row is deleted, once per row, with the row as it was.
    pub fn after_delete<F, Fut>(model: impl Into<Model>, f: F) -> Self
    where
        F: Fn(Row, Option<Ctx>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), ApiError>> + Send + 'static,
    {
        Self::after(model.into(), DbOp::Delete, f)
    }
}

/// The hooks of one model and operation.
#[derive(Default)]
struct Slot {
    before: Vec<Arc<BeforeFn>>,
    after: Vec<Arc<AfterFn>>,
}

impl Slot {
    fn is_empty(&self) -> bool {
        self.before.is_empty() && self.after.is_empty()
    }
}

/// Every database hook of an engine, by model and operation: one entry per watched model
/// (a handful), so with no hook registered every check is an empty-list check.
#[derive(Default)]
pub(crate) struct DbHooks {
    models: Vec<(Model, [Slot; 3])>,
}

/// No hooks: what a [`Store`](super::Store) made outside the engine uses.
pub(crate) static NO_HOOKS: DbHooks = DbHooks { models: Vec::new() };

fn op_index(op: DbOp) -> usize {
    match op {
        DbOp::Create => 0,
        DbOp::Update => 1,
        DbOp::Delete => 2,
    }
}

impl DbHooks {
    pub(crate) fn add(&mut self, hook: DbHook) {
        let i = match self.models.iter().position(|(m, _)| *m == hook.model) {
            Some(i) => i,
            None => {
                self.models.push((hook.model, Default::default()));
                self.models.len() - 1
            }
        };
        let slot = &mut self.models[i].1[op_index(hook.op)];
        match hook.when {
            When::Before(f) => slot.before.push(f),
            When::After(f) => slot.after.push(f),
        }
    }

    fn slot(&self, model: &str, op: DbOp) -> Option<&Slot> {
        self.models
            .iter()
            .find(|(m, _)| m.name() == model)
            .map(|(_, slots)| &slots[op_index(op)])
    }

    /// Whether any hook watches this model and operation (the fast path skips everything
    /// else when none does).
    pub(crate) fn any(&self, model: &str, op: DbOp) -> bool {
        self.slot(model, op).is_some_and(|s| !s.is_empty())
    }

    /// Runs the before hooks on `row`; returns the row to write.
    pub(crate) async fn before(
        &self,
        model: &str,
        op: DbOp,
        mut row: Row,
        ctx: Option<&Ctx>,
    ) -> Result<Row, ApiError> {
        if let Some(slot) = self.slot(model, op) {
            for f in &slot.before {
                row = f(row, ctx.cloned()).await?;
            }
        }
        Ok(row)
    }

    /// Runs the after hooks on `row` now, or queues them on `deferred` (a transaction's,
    /// run when it commits).
    pub(crate) async fn after(
        &self,
        model: &str,
        op: DbOp,
        row: &Row,
        ctx: Option<&Ctx>,
        deferred: Option<&AfterCommit>,
    ) -> Result<(), ApiError> {
        let Some(slot) = self.slot(model, op) else {
            return Ok(());
        };
        let hooks = &slot.after;
        match deferred {
            Some(queue) => {
                if !hooks.is_empty() {
                    let mut q = queue.0.lock().unwrap_or_else(|p| p.into_inner());
                    q.extend(hooks.iter().map(|f| (f.clone(), row.clone())));
                }
            }
            None => {
                // All of them run (the write is done); the first error is the answer.
                let mut first_error = None;
                for f in hooks {
                    if let Err(e) = f(row.clone(), ctx.cloned()).await {
                        first_error.get_or_insert(e);
                    }
                }
                if let Some(e) = first_error {
                    return Err(e);
                }
            }
        }
        Ok(())
    }
}

/// After hooks waiting for a transaction to commit.
#[derive(Default)]
pub(crate) struct AfterCommit(Mutex<Vec<(Arc<AfterFn>, Row)>>);

impl AfterCommit {
    /// Runs every queued hook in order (the writes are committed, so none is skipped); the
    /// first error is the answer.
    pub(crate) async fn run(self, ctx: Option<&Ctx>) -> Result<(), ApiError> {
        let queued = self.0.into_inner().unwrap_or_else(|p| p.into_inner());
        let mut first_error = None;
        for (f, row) in queued {
            if let Err(e) = f(row, ctx.cloned()).await {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}
