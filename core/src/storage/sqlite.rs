//! The SQLite adapter on sqlx: Better Auth's SQLite layout (dates as ISO-8601 text, booleans
//! as 1/0), WAL mode, one query for a joined read.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteArguments, SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{Arguments as _, Row as _, Sqlite, SqlitePool, TypeInfo as _, ValueRef as _};

use super::driver::sql_adapter;
use super::sql::{Dialect, Sql};
use super::{IdStrategy, Row, StorageError, Value};
use crate::schema::{FieldType, Schema, Table};

const D: Dialect = Dialect::Sqlite;

/// Storage on a SQLite file (or memory) through sqlx.
#[derive(Debug, Clone)]
pub struct SqliteAdapter {
    pool: SqlitePool,
    schema: Arc<Schema>,
    ids: IdStrategy,
}

/// A transaction on the SQLite pool.
#[derive(Debug)]
pub struct SqliteTx {
    tx: tokio::sync::Mutex<Option<sqlx::Transaction<'static, Sqlite>>>,
    schema: Arc<Schema>,
    ids: IdStrategy,
}

impl SqliteAdapter {
    /// Opens (creating if missing) the database at `url`: `sqlite://path/to/file.db`,
    /// `sqlite:file.db` or `sqlite::memory:`.
    pub async fn connect(
        url: &str,
        schema: Arc<Schema>,
        ids: IdStrategy,
    ) -> Result<Self, StorageError> {
        let memory = url.contains(":memory:") || url.contains("mode=memory");
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(if memory {
                SqliteJournalMode::Memory
            } else {
                SqliteJournalMode::Wal
            })
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        // An in-memory database lives in its connection: keep exactly one, forever.
        let pool = if memory {
            SqlitePoolOptions::new()
                .max_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
        } else {
            let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
            // No ping before every acquire: a SQLite connection is a file handle and a worker
            // thread in this process, not a socket that can die while idle, and sqlx still
            // pings it when it goes back to the pool. The ping was a third round trip to the
            // connection's worker thread on every query (~14% of get-session's throughput).
            SqlitePoolOptions::new()
                .max_connections((cpus * 2).max(4) as u32)
                .test_before_acquire(false)
        }
        .connect_with(options)
        .await?;
        Ok(Self { pool, schema, ids })
    }

    async fn begin_tx(&self) -> Result<SqliteTx, StorageError> {
        // IMMEDIATE takes the write lock up front, so two transactions never deadlock
        // upgrading from read to write; the busy timeout queues them instead.
        let tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        Ok(SqliteTx {
            tx: tokio::sync::Mutex::new(Some(tx)),
            schema: self.schema.clone(),
            ids: self.ids,
        })
    }

    async fn run_migrations(&self, dry_run: bool) -> Result<Vec<String>, StorageError> {
        let mut conn = self.pool.acquire().await?;
        let mut plan = Vec::new();
        for table in self.schema.tables() {
            let columns: Vec<String> =
                sqlx::query(&format!("pragma table_info({})", D.quote(&table.table)))
                    .fetch_all(&mut *conn)
                    .await?
                    .iter()
                    .map(|r| r.try_get::<String, _>("name"))
                    .collect::<Result<_, _>>()?;
            let indexes: Vec<String> = sqlx::query_scalar(
                "select name from sqlite_master where type = 'index' and tbl_name = ?",
            )
            .bind(&table.table)
            .fetch_all(&mut *conn)
            .await?;
            plan.extend(super::plan_table(
                D,
                &self.schema,
                table,
                &columns,
                &indexes,
            ));
        }
        if !dry_run {
            for stmt in &plan {
                sqlx::query(stmt).execute(&mut *conn).await?;
            }
        }
        Ok(plan)
    }
}

/// The rowid SQLite assigned to the row just inserted (inserts use `RETURNING`; kept for
/// completeness).
fn last_insert_id(done: &sqlx::sqlite::SqliteQueryResult) -> Value {
    Value::Int(done.last_insert_rowid())
}

fn prepare(sql: Sql) -> Result<(String, SqliteArguments<'static>), StorageError> {
    let mut args = SqliteArguments::default();
    for (v, _) in sql.args {
        let r = match v {
            Value::Null => args.add(Option::<String>::None),
            Value::String(s) => args.add(s),
            Value::Int(i) => args.add(i),
            Value::Float(f) => args.add(f),
            Value::Bool(b) => args.add(i64::from(b)),
            Value::Date(d) => args.add(crate::time::format(&d)),
            Value::Json(j) => args.add(j.to_string()),
        };
        r.map_err(|e| StorageError::Database(sqlx::Error::Encode(e)))?;
    }
    Ok((sql.text, args))
}

/// Decodes by the stored value's storage class, so rows Better Auth wrote (or a hand edit)
/// read back whatever their class.
fn decode_row(table: &Table, row: &SqliteRow, offset: usize) -> Result<Row, StorageError> {
    let mut out = Row::new();
    for (i, f) in table.fields.iter().enumerate() {
        let idx = offset + i;
        let bad = |reason: String| StorageError::Decode {
            model: table.name.clone(),
            field: f.name.clone(),
            reason,
        };
        let raw = row.try_get_raw(idx)?;
        let class = if raw.is_null() {
            "NULL".to_owned()
        } else {
            raw.type_info().name().to_owned()
        };
        let text = || row.try_get_unchecked::<String, _>(idx);
        let value = match (f.ty, class.as_str()) {
            (_, "NULL") => Value::Null,
            (FieldType::Boolean, "INTEGER") => {
                Value::Bool(row.try_get_unchecked::<i64, _>(idx)? != 0)
            }
            (FieldType::Boolean, "TEXT") => Value::Bool(matches!(text()?.as_str(), "true" | "1")),
            (FieldType::Date, "TEXT") => {
                let s = text()?;
                Value::Date(
                    crate::time::parse(&s).ok_or_else(|| bad(format!("not a timestamp: {s}")))?,
                )
            }
            (FieldType::Date, "INTEGER" | "REAL") => {
                let ms = row.try_get_unchecked::<f64, _>(idx)?;
                Value::Date(
                    chrono::DateTime::from_timestamp_millis(ms as i64)
                        .ok_or_else(|| bad("timestamp out of range".into()))?,
                )
            }
            (FieldType::Number, "INTEGER") => Value::Int(row.try_get_unchecked::<i64, _>(idx)?),
            (FieldType::Number, "REAL") => Value::Float(row.try_get_unchecked::<f64, _>(idx)?),
            (FieldType::Number, "TEXT") => {
                let s = text()?;
                Value::Int(s.parse().map_err(|_| bad(format!("not a number: {s}")))?)
            }
            (FieldType::String, "INTEGER") => {
                Value::String(row.try_get_unchecked::<i64, _>(idx)?.to_string())
            }
            (FieldType::Json, "TEXT") => {
                let s = text()?;
                Value::Json(serde_json::from_str(&s).unwrap_or(serde_json::Value::String(s)))
            }
            (FieldType::String, "TEXT") => Value::String(text()?),
            (_, other) => return Err(bad(format!("unexpected storage class {other}"))),
        };
        out.set(f.name.clone(), value);
    }
    Ok(out)
}

sql_adapter!(SqliteAdapter, SqliteTx, D);
