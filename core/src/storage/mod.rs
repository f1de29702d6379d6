//! Storage: one small generic contract ([`Adapter`]) over schema-described models, and typed
//! helpers for the core models on top ([`Store`]).
//!
//! Adapters speak logical names (`user`, `emailVerified`); they map them to physical tables
//! and columns through the [`Schema`](crate::schema::Schema). Values travel as [`Value`]s in a
//! [`Row`]; code above storage converts rows to and from typed structs with serde.

mod driver;
mod hooks;
mod models;
#[cfg(feature = "mysql")]
mod mysql;
#[cfg(feature = "postgres")]
mod postgres;
mod record;
pub(crate) mod sql;
#[cfg(feature = "sqlite")]
mod sqlite;

use std::fmt;

use chrono::{DateTime, Utc};

pub(crate) use hooks::DbHooks;
pub use hooks::{DbHook, DbOp, Model};
pub use models::{
    Account, Session, SessionAndUser, Store, Tx, User, Verification, CREDENTIAL_PROVIDER,
};

#[cfg(feature = "mysql")]
use mysql::MysqlAdapter;
#[cfg(feature = "postgres")]
use postgres::PostgresAdapter;
#[doc(hidden)]
pub use record::{record_field, take_field};
pub use record::{FieldKey, FieldValue, Record};
pub use sql::Dialect;
#[cfg(feature = "sqlite")]
use sqlite::SqliteAdapter;

use crate::BoxFuture;

/// An error's underlying cause, opaque: whatever the adapter's driver reported.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Errors of the storage layer, by the kinds callers branch on (sqlx's `ErrorKind`, plus the
/// engine's own). The driver's error, when there is one, is kept as an opaque
/// [`source`](std::error::Error::source): no driver crate is part of this contract, so an
/// adapter on any database (or none) can report every kind.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// A unique constraint refused the write (e.g. an email already taken).
    #[error("unique constraint violated")]
    UniqueViolation,
    /// A foreign key refused the write.
    #[error("foreign key constraint violated")]
    ForeignKeyViolation,
    /// A required field was written as null (or left out, with no default).
    #[error("not-null constraint violated")]
    NotNullViolation,
    /// A check constraint refused the write.
    #[error("check constraint violated")]
    CheckViolation,
    /// The model or field is not in the schema, or the adapter cannot do what was asked.
    #[error("unknown model or field: {0}")]
    Unknown(String),
    /// A stored value could not be converted to the schema's type.
    #[error("bad value in {model}.{field}: {reason}")]
    Decode {
        /// Logical model.
        model: String,
        /// Logical field.
        field: String,
        /// What was wrong.
        reason: String,
    },
    /// The database URL is not one this build supports.
    #[error("unsupported database URL scheme `{0}`; supported: sqlite:, postgres:, postgresql:, mysql:, mariadb:")]
    UnsupportedUrl(String),
    /// The URL names a database whose driver this build leaves out (a `portcullis` feature).
    #[error("this build has no {0} driver: enable the `{0}` feature of `portcullis`")]
    DriverNotBuilt(&'static str),
    /// The database could not be reached at start.
    #[error("cannot connect to the database at {host}: {reason}")]
    Connect {
        /// The host (and port) of the URL; never the password.
        host: String,
        /// What went wrong.
        reason: String,
    },
    /// The database could not be reached, or the pool had no connection in time: the write
    /// may be retried.
    #[error("database unavailable: {0}")]
    Unavailable(#[source] BoxError),
    /// The database failed in a way of no other kind.
    #[error("database error: {0}")]
    Backend(#[source] BoxError),
    /// A database hook refused the write; the error is what the client is answered.
    #[error("refused by a database hook: {0}")]
    Rejected(crate::error::ApiError),
}

impl StorageError {
    /// A failure of the database of no more specific kind, with its cause.
    pub fn backend(source: impl Into<BoxError>) -> Self {
        Self::Backend(source.into())
    }

    /// Whether a constraint refused the write (unique, foreign key, not null, check): the
    /// data is wrong, not the database.
    pub fn is_constraint(&self) -> bool {
        matches!(
            self,
            Self::UniqueViolation
                | Self::ForeignKeyViolation
                | Self::NotNullViolation
                | Self::CheckViolation
        )
    }
}

impl From<sqlx::Error> for StorageError {
    fn from(err: sqlx::Error) -> Self {
        match &err {
            sqlx::Error::Database(db) => match db.kind() {
                sqlx::error::ErrorKind::UniqueViolation => Self::UniqueViolation,
                sqlx::error::ErrorKind::ForeignKeyViolation => Self::ForeignKeyViolation,
                sqlx::error::ErrorKind::NotNullViolation => Self::NotNullViolation,
                sqlx::error::ErrorKind::CheckViolation => Self::CheckViolation,
                _ => Self::backend(err),
            },
            sqlx::Error::Io(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Tls(_)
            | sqlx::Error::WorkerCrashed => Self::Unavailable(err.into()),
            _ => Self::backend(err),
        }
    }
}

/// A stored value.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Value {
    /// SQL `NULL`.
    Null,
    /// Text.
    String(String),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A boolean.
    Bool(bool),
    /// A timestamp.
    Date(DateTime<Utc>),
    /// A JSON document.
    Json(serde_json::Value),
}

impl Value {
    /// The value as JSON: dates as Better Auth's ISO strings, non-finite floats as `null`.
    pub fn into_json(self) -> serde_json::Value {
        match self {
            Value::Null => serde_json::Value::Null,
            Value::String(s) => s.into(),
            Value::Int(i) => i.into(),
            Value::Float(f) => {
                serde_json::Number::from_f64(f).map_or(serde_json::Value::Null, Into::into)
            }
            Value::Bool(b) => b.into(),
            Value::Date(d) => crate::time::format(&d).into(),
            Value::Json(j) => j,
        }
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::String(v.to_owned())
    }
}
impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::String(v)
    }
}
impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}
impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Bool(v)
    }
}
impl From<DateTime<Utc>> for Value {
    fn from(v: DateTime<Utc>) -> Self {
        Value::Date(v)
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

/// A row: values under logical field names, in order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Row(Vec<(String, Value)>);

impl IntoIterator for Row {
    type Item = (String, Value);
    type IntoIter = std::vec::IntoIter<(String, Value)>;

    /// Fields and values in order, taken out of the row.
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl Row {
    /// An empty row.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces `field`.
    pub fn set(&mut self, field: impl Into<String>, value: impl Into<Value>) {
        let field = field.into();
        let value = value.into();
        match self.0.iter_mut().find(|(k, _)| *k == field) {
            Some(slot) => slot.1 = value,
            None => self.0.push((field, value)),
        }
    }

    /// An empty row with room for `n` fields.
    pub(crate) fn with_capacity(n: usize) -> Self {
        Self(Vec::with_capacity(n))
    }

    /// Appends a field the row does not have yet (a decoder walking a table's distinct
    /// fields), without [`Row::set`]'s search for an existing one.
    pub(crate) fn push_new(&mut self, field: String, value: Value) {
        debug_assert!(self.get(&field).is_none(), "{field} is already in the row");
        self.0.push((field, value));
    }

    /// Removes `field`, returning its value.
    pub fn remove(&mut self, field: &str) -> Option<Value> {
        let i = self.0.iter().position(|(k, _)| k == field)?;
        Some(self.0.remove(i).1)
    }

    /// Builder form of [`Row::set`].
    pub fn with(mut self, field: impl Into<String>, value: impl Into<Value>) -> Self {
        self.set(field, value);
        self
    }

    /// The value of `field`.
    pub fn get(&self, field: &str) -> Option<&Value> {
        self.0.iter().find(|(k, _)| k == field).map(|(_, v)| v)
    }

    /// The value of `field` when it is text.
    pub fn str(&self, field: &str) -> Option<&str> {
        match self.get(field) {
            Some(Value::String(s)) => Some(s),
            _ => None,
        }
    }

    /// Fields and values in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Whether the row has no fields.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The row as a JSON object (dates as Better Auth's ISO strings), for deserialising into a
    /// typed struct.
    pub fn to_json(&self) -> serde_json::Map<String, serde_json::Value> {
        self.0
            .iter()
            .map(|(k, v)| (k.clone(), v.clone().into_json()))
            .collect()
    }

    /// Deserialises the row into `T`.
    pub fn decode<T: serde::de::DeserializeOwned>(&self, model: &str) -> Result<T, StorageError> {
        serde_json::from_value(serde_json::Value::Object(self.to_json())).map_err(|e| {
            StorageError::Decode {
                model: model.into(),
                field: String::new(),
                reason: e.to_string(),
            }
        })
    }

    /// Builds a row from a JSON object, converting each value to the type its field has in
    /// `table`. Keys the table does not have are an error.
    pub fn from_json(
        table: &crate::schema::Table,
        object: serde_json::Map<String, serde_json::Value>,
    ) -> Result<Self, StorageError> {
        use crate::schema::FieldType;
        let mut row = Row::new();
        for (key, json) in object {
            let field = table
                .field(&key)
                .ok_or_else(|| StorageError::Unknown(format!("{}.{}", table.name, key)))?;
            let bad = |reason: &str| StorageError::Decode {
                model: table.name.clone(),
                field: key.clone(),
                reason: reason.into(),
            };
            let value = match (field.ty, json) {
                (_, serde_json::Value::Null) => Value::Null,
                (FieldType::String, serde_json::Value::String(s)) => Value::String(s),
                (FieldType::Boolean, serde_json::Value::Bool(b)) => Value::Bool(b),
                (FieldType::Number, serde_json::Value::Number(n)) => match n.as_i64() {
                    Some(i) => Value::Int(i),
                    None => Value::Float(n.as_f64().ok_or_else(|| bad("not a number"))?),
                },
                (FieldType::Date, serde_json::Value::String(s)) => {
                    Value::Date(crate::time::parse(&s).ok_or_else(|| bad("not a timestamp"))?)
                }
                (FieldType::Json, j) => Value::Json(j),
                _ => return Err(bad("value does not match the field's type")),
            };
            row.set(key, value);
        }
        Ok(row)
    }
}

/// A comparison in a where-clause.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Op {
    /// `=` (or `IS NULL` against null).
    Eq,
    /// `<>` (or `IS NOT NULL` against null).
    Ne,
    /// `<`.
    Lt,
    /// `<=`.
    Lte,
    /// `>`.
    Gt,
    /// `>=`.
    Gte,
    /// `IN (...)`.
    In,
    /// `NOT IN (...)`.
    NotIn,
    /// Substring match.
    Contains,
    /// Prefix match.
    StartsWith,
    /// Suffix match.
    EndsWith,
}

/// How a condition joins the others: all `And` conditions must hold, and at least one `Or`
/// condition when there are any (Better Auth's semantics).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Connector {
    /// Must hold.
    #[default]
    And,
    /// One of these must hold.
    Or,
}

/// One condition of a where-clause.
#[derive(Debug, Clone, PartialEq)]
pub struct Where {
    /// Logical field name.
    pub field: String,
    /// Comparison.
    pub op: Op,
    /// Right-hand side; a list for `In`/`NotIn`.
    pub values: Vec<Value>,
    /// How it joins the other conditions.
    pub connector: Connector,
}

impl Where {
    /// `field op value`.
    pub fn new(field: &str, op: Op, value: impl Into<Value>) -> Self {
        Self {
            field: field.into(),
            op,
            values: vec![value.into()],
            connector: Connector::And,
        }
    }

    /// `field = value`.
    pub fn eq(field: &str, value: impl Into<Value>) -> Self {
        Self::new(field, Op::Eq, value)
    }

    /// `field IN (values)`.
    pub fn is_in(field: &str, values: Vec<Value>) -> Self {
        Self {
            field: field.into(),
            op: Op::In,
            values,
            connector: Connector::And,
        }
    }

    /// Joins this condition with `OR`.
    pub fn or(mut self) -> Self {
        self.connector = Connector::Or;
        self
    }
}

/// Sort direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Ascending.
    Asc,
    /// Descending.
    Desc,
}

/// A read of many rows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Query {
    /// Conditions.
    pub filter: Vec<Where>,
    /// Sort by a logical field.
    pub sort: Option<(String, Direction)>,
    /// At most this many rows.
    pub limit: Option<u64>,
    /// Skip this many rows first.
    pub offset: Option<u64>,
}

impl Query {
    /// Rows matching `filter`.
    pub fn filter(filter: Vec<Where>) -> Self {
        Self {
            filter,
            ..Self::default()
        }
    }

    /// Sorted by the logical `field`.
    pub fn sort(mut self, field: &str, direction: Direction) -> Self {
        self.sort = Some((field.to_owned(), direction));
        self
    }

    /// At most `n` rows.
    pub fn limit(mut self, n: u64) -> Self {
        self.limit = Some(n);
        self
    }
}

/// A join for [`Adapter::find_one_joined`]: `other` row whose `other_field` equals this row's
/// `local_field`.
#[derive(Debug, Clone, Copy)]
pub struct Join<'a> {
    /// Logical name of the joined model.
    pub model: &'a str,
    /// Field of the primary model.
    pub local_field: &'a str,
    /// Field of the joined model.
    pub foreign_field: &'a str,
}

/// Generic storage over schema-described models: the contract every database adapter fulfils
/// and every plugin uses.
pub trait Adapter: Send + Sync + fmt::Debug {
    /// Inserts `row` (an `id` is generated when absent) and returns it as stored.
    fn create<'a>(&'a self, model: &'a str, row: Row) -> BoxFuture<'a, Result<Row, StorageError>>;

    /// The first row matching `filter`.
    fn find_one<'a>(
        &'a self,
        model: &'a str,
        filter: &'a [Where],
    ) -> BoxFuture<'a, Result<Option<Row>, StorageError>>;

    /// Rows matching the query.
    fn find_many<'a>(
        &'a self,
        model: &'a str,
        query: &'a Query,
    ) -> BoxFuture<'a, Result<Vec<Row>, StorageError>>;

    /// How many rows match.
    fn count<'a>(
        &'a self,
        model: &'a str,
        filter: &'a [Where],
    ) -> BoxFuture<'a, Result<u64, StorageError>>;

    /// Updates the row matching `filter` and returns it as stored, or `None` if none matched.
    fn update<'a>(
        &'a self,
        model: &'a str,
        filter: &'a [Where],
        set: Row,
    ) -> BoxFuture<'a, Result<Option<Row>, StorageError>>;

    /// Updates every matching row; returns how many.
    fn update_many<'a>(
        &'a self,
        model: &'a str,
        filter: &'a [Where],
        set: Row,
    ) -> BoxFuture<'a, Result<u64, StorageError>>;

    /// Deletes every matching row; returns how many.
    fn delete_many<'a>(
        &'a self,
        model: &'a str,
        filter: &'a [Where],
    ) -> BoxFuture<'a, Result<u64, StorageError>>;

    /// Deletes the matching rows (Better Auth's `delete`, which does not report a count).
    fn delete<'a>(
        &'a self,
        model: &'a str,
        filter: &'a [Where],
    ) -> BoxFuture<'a, Result<(), StorageError>> {
        Box::pin(async move { self.delete_many(model, filter).await.map(|_| ()) })
    }

    /// The first row of `model` matching `filter` together with its joined row. The default
    /// makes two reads; adapters override it with one query where that pays (get-session).
    fn find_one_joined<'a>(
        &'a self,
        model: &'a str,
        filter: &'a [Where],
        join: Join<'a>,
    ) -> BoxFuture<'a, Result<Option<(Row, Row)>, StorageError>> {
        Box::pin(async move {
            let Some(row) = self.find_one(model, filter).await? else {
                return Ok(None);
            };
            let Some(key) = row.get(join.local_field).cloned() else {
                return Ok(None);
            };
            let other = self
                .find_one(join.model, &[Where::eq(join.foreign_field, key)])
                .await?;
            Ok(other.map(|o| (row, o)))
        })
    }

    /// Creates missing tables, columns and indexes of the schema; never drops anything.
    /// Returns the statements it ran, or with `dry_run` the ones it would run.
    fn migrate(&self, dry_run: bool) -> BoxFuture<'_, Result<Vec<String>, StorageError>> {
        let _ = dry_run;
        Box::pin(async { Err(StorageError::Unknown("this adapter cannot migrate".into())) })
    }

    /// Starts a transaction. Everything done through the returned handle is committed by
    /// [`Transaction::commit`], and rolled back if the handle is dropped without it.
    fn begin(&self) -> BoxFuture<'_, Result<Box<dyn Transaction>, StorageError>>;
}

/// An open transaction: an [`Adapter`] whose writes land together or not at all.
pub trait Transaction: Adapter {
    /// Commits every write made through this handle.
    fn commit(self: Box<Self>) -> BoxFuture<'static, Result<(), StorageError>>;
}

/// How row ids are generated.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum IdStrategy {
    /// Better Auth's default: 32 random letters and digits.
    #[default]
    Random,
    /// A random (version 4) UUID.
    Uuid,
    /// An integer the database assigns (`autoincrement`, `serial`, `auto_increment`). Ids are
    /// still strings in Rust and in JSON (`"1"`), as Better Auth emits them.
    Serial,
}

impl IdStrategy {
    /// A new id; empty for [`IdStrategy::Serial`], where the database assigns it on insert
    /// (a row written with an empty id gets the database's).
    pub fn generate(&self) -> String {
        match self {
            IdStrategy::Serial => String::new(),
            IdStrategy::Random => crate::crypto::generate_id(),
            IdStrategy::Uuid => {
                use rand::RngCore as _;
                let mut b = [0u8; 16];
                rand::rngs::OsRng.fill_bytes(&mut b);
                b[6] = (b[6] & 0x0f) | 0x40;
                b[8] = (b[8] & 0x3f) | 0x80;
                let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
                format!(
                    "{}-{}-{}-{}-{}",
                    &h[0..8],
                    &h[8..12],
                    &h[12..16],
                    &h[16..20],
                    &h[20..32]
                )
            }
        }
    }
}

/// Adds the schema's default for every field of `table` that `row` leaves out: what every
/// adapter does on create, so a defaulted field may be left out on any database (SQLite's
/// tables, as Better Auth creates them, carry no DDL defaults).
pub fn fill_defaults(table: &crate::schema::Table, row: &mut Row) {
    for f in &table.fields {
        if let Some(default) = &f.default {
            if row.get(&f.name).is_none() {
                row.push_new(f.name.clone(), default.to_value());
            }
        }
    }
}

/// The host (and port) of a database URL, for messages: never the user or password.
pub fn url_host(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if host.is_empty() {
        "localhost".into()
    } else {
        host.into()
    }
}

/// Opens the adapter for a database URL: `sqlite://path`, `sqlite::memory:`,
/// `postgres://user@host/db`, `mysql://user@host/db` (MariaDB too).
pub async fn connect(
    url: &str,
    schema: std::sync::Arc<crate::schema::Schema>,
    ids: IdStrategy,
) -> Result<std::sync::Arc<dyn Adapter>, StorageError> {
    let scheme = url.split(':').next().unwrap_or_default();
    let unreachable = |e: StorageError| match e {
        StorageError::Unavailable(inner) | StorageError::Backend(inner) => StorageError::Connect {
            host: url_host(url),
            reason: connect_reason(inner.as_ref()),
        },
        other => other,
    };
    let adapter: std::sync::Arc<dyn Adapter> = match scheme {
        #[cfg(feature = "sqlite")]
        "sqlite" => std::sync::Arc::new(
            SqliteAdapter::connect(url, schema, ids)
                .await
                .map_err(unreachable)?,
        ),
        #[cfg(feature = "postgres")]
        "postgres" | "postgresql" => std::sync::Arc::new(
            PostgresAdapter::connect(url, schema, ids)
                .await
                .map_err(unreachable)?,
        ),
        #[cfg(feature = "mysql")]
        "mysql" | "mariadb" => std::sync::Arc::new(
            MysqlAdapter::connect(url, schema, ids)
                .await
                .map_err(unreachable)?,
        ),
        #[cfg(not(feature = "sqlite"))]
        "sqlite" => return Err(StorageError::DriverNotBuilt("sqlite")),
        #[cfg(not(feature = "postgres"))]
        "postgres" | "postgresql" => return Err(StorageError::DriverNotBuilt("postgres")),
        #[cfg(not(feature = "mysql"))]
        "mysql" | "mariadb" => return Err(StorageError::DriverNotBuilt("mysql")),
        other => return Err(StorageError::UnsupportedUrl(other.to_owned())),
    };
    Ok(adapter)
}

/// A connection failure in words, without anything from the URL.
fn connect_reason(e: &(dyn std::error::Error + 'static)) -> String {
    let Some(e) = e.downcast_ref::<sqlx::Error>() else {
        return "connection failed".into();
    };
    match e {
        sqlx::Error::Io(io) => io.to_string(),
        sqlx::Error::PoolTimedOut => "timed out".into(),
        sqlx::Error::Database(db) => db.message().to_owned(),
        sqlx::Error::Tls(t) => format!("TLS: {t}"),
        sqlx::Error::Configuration(_) => "the URL is not valid".into(),
        _ => "connection failed".into(),
    }
}

/// What a migration must run for `table`, given the columns and index names the database
/// already has (no columns: the table is missing).
pub(crate) fn plan_table(
    d: Dialect,
    schema: &crate::schema::Schema,
    table: &crate::schema::Table,
    columns: &[String],
    indexes: &[String],
) -> Vec<String> {
    let mut plan = Vec::new();
    if columns.is_empty() {
        plan.push(sql::create_table(d, table, schema));
    } else {
        for f in table
            .fields
            .iter()
            .filter(|f| !columns.iter().any(|c| c == &f.column))
        {
            plan.push(sql::add_column(d, table, f, schema));
        }
    }
    for (name, stmt) in sql::create_indexes(d, table) {
        if !indexes.iter().any(|i| i.eq_ignore_ascii_case(&name)) {
            plan.push(stmt);
        }
    }
    plan
}
