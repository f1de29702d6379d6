//! Database hooks: application and plugin code around every write of a core model, whatever
//! endpoint or plugin makes it (Better Auth's `databaseHooks`).
//!
//! A [`DbHook`] names a [`Model`] (`user`, `session`, `account`, `verification`), an operation
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

use std::future::Future;
use std::sync::{Arc, Mutex};

use super::Row;
use crate::context::Ctx;
use crate::error::ApiError;
use crate::BoxFuture;

/// A core model that database hooks can watch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Model {
    /// `user`.
    User,
    /// `session`.
    Session,
    /// `account`.
    Account,
    /// `verification`.
    Verification,
}

impl Model {
    /// The model's logical name (`"user"`).
    pub fn name(self) -> &'static str {
        match self {
            Model::User => "user",
            Model::Session => "session",
            Model::Account => "account",
            Model::Verification => "verification",
        }
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
/// let trim = DbHook::before_create(Model::User, |mut user, _ctx| async move {
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
    fn before<F, Fut>(model: Model, op: DbOp, f: F) -> Self
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

    fn after<F, Fut>(model: Model, op: DbOp, f: F) -> Self
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
    pub fn before_create<F, Fut>(model: Model, f: F) -> Self
    where
        F: Fn(Row, Option<Ctx>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Row, ApiError>> + Send + 'static,
    {
        Self::before(model, DbOp::Create, f)
    }

    /// Runs before a `model` row is updated: gets the fields being set and returns the fields
    /// to set (changed or not), or an error that refuses the update.
    pub fn before_update<F, Fut>(model: Model, f: F) -> Self
    where
        F: Fn(Row, Option<Ctx>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Row, ApiError>> + Send + 'static,
    {
        Self::before(model, DbOp::Update, f)
    }

    /// Runs before a `model` row is deleted, once per row: gets the row; an error refuses
    /// the delete (of every row the operation would delete).
    pub fn before_delete<F, Fut>(model: Model, f: F) -> Self
    where
        F: Fn(Row, Option<Ctx>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), ApiError>> + Send + 'static,
    {
        let f = Arc::new(f);
        Self::before(model, DbOp::Delete, move |row: Row, ctx| {
            let f = f.clone();
            async move {
                f(row.clone(), ctx).await?;
                Ok(row)
            }
        })
    }

    /// Runs after a `model` row is inserted, with the row as stored.
    pub fn after_create<F, Fut>(model: Model, f: F) -> Self
    where
        F: Fn(Row, Option<Ctx>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), ApiError>> + Send + 'static,
    {
        Self::after(model, DbOp::Create, f)
    }

    /// Runs after a `model` row is updated, with the whole row as stored.
    pub fn after_update<F, Fut>(model: Model, f: F) -> Self
    where
        F: Fn(Row, Option<Ctx>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), ApiError>> + Send + 'static,
    {
        Self::after(model, DbOp::Update, f)
    }

    /// Runs after a `model` row is deleted, once per row, with the row as it was.
    pub fn after_delete<F, Fut>(model: Model, f: F) -> Self
    where
        F: Fn(Row, Option<Ctx>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), ApiError>> + Send + 'static,
    {
        Self::after(model, DbOp::Delete, f)
    }
}

/// The hooks of one model and operation.
struct Slot {
    before: Vec<Arc<BeforeFn>>,
    after: Vec<Arc<AfterFn>>,
}

const EMPTY_SLOT: Slot = Slot {
    before: Vec::new(),
    after: Vec::new(),
};

const SLOTS: usize = 12;

/// Every database hook of an engine, by model and operation.
pub(crate) struct DbHooks {
    slots: [Slot; SLOTS],
}

/// No hooks: what a [`Store`](super::Store) made outside the engine uses.
pub(crate) static NO_HOOKS: DbHooks = DbHooks {
    slots: [EMPTY_SLOT; SLOTS],
};

impl Default for DbHooks {
    fn default() -> Self {
        Self {
            slots: [EMPTY_SLOT; SLOTS],
        }
    }
}

fn index(model: Model, op: DbOp) -> usize {
    let m = match model {
        Model::User => 0,
        Model::Session => 1,
        Model::Account => 2,
        Model::Verification => 3,
    };
    let o = match op {
        DbOp::Create => 0,
        DbOp::Update => 1,
        DbOp::Delete => 2,
    };
    m * 3 + o
}

impl DbHooks {
    pub(crate) fn add(&mut self, hook: DbHook) {
        let slot = &mut self.slots[index(hook.model, hook.op)];
        match hook.when {
            When::Before(f) => slot.before.push(f),
            When::After(f) => slot.after.push(f),
        }
    }

    /// Whether any hook watches this model and operation (the fast path skips everything
    /// else when none does).
    pub(crate) fn any(&self, model: Model, op: DbOp) -> bool {
        let slot = &self.slots[index(model, op)];
        !slot.before.is_empty() || !slot.after.is_empty()
    }

    /// Runs the before hooks on `row`; returns the row to write.
    pub(crate) async fn before(
        &self,
        model: Model,
        op: DbOp,
        mut row: Row,
        ctx: Option<&Ctx>,
    ) -> Result<Row, ApiError> {
        for f in &self.slots[index(model, op)].before {
            row = f(row, ctx.cloned()).await?;
        }
        Ok(row)
    }

    /// Runs the after hooks on `row` now, or queues them on `deferred` (a transaction's,
    /// run when it commits).
    pub(crate) async fn after(
        &self,
        model: Model,
        op: DbOp,
        row: &Row,
        ctx: Option<&Ctx>,
        deferred: Option<&AfterCommit>,
    ) -> Result<(), ApiError> {
        let hooks = &self.slots[index(model, op)].after;
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
