//! The SQLite adapter on sqlx: Better Auth's SQLite layout (dates as ISO-8601 text, booleans
//! as 1/0), WAL mode, one query for a joined read.
//!
//! sqlx runs each SQLite connection on a thread of its own and hands every query over to it and
//! the rows back: two cross-thread wake-ups per query, which cost far more than an indexed read.
//! So on a database file, point reads outside a transaction (`find_one`, `find_one_joined`: the
//! read behind every get-session) run on the calling thread instead, through a few read-only
//! `rusqlite` connections to the same file (`InlineReader`). In WAL mode a reader never waits
//! for the writer and sees every committed write; reads inside a transaction still go through
//! the transaction's connection. Both paths bind and decode through the same functions
//! (`bound`, `decode_value`), so they return identical rows.

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use sqlx::sqlite::{
    SqliteArguments, SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{Arguments as _, Row as _, Sqlite, SqlitePool, TypeInfo as _, ValueRef as _};

use super::driver::{sql_adapter, InlineReads};
use super::sql::{Dialect, Sql};
use super::{IdStrategy, Row, StorageError, Value};
use crate::schema::{Field, FieldType, Schema, Table};

const D: Dialect = Dialect::Sqlite;

/// Storage on a SQLite file (or memory) through sqlx, with point reads on a file served on the
/// calling thread (see the module documentation).
#[derive(Debug, Clone)]
pub(super) struct SqliteAdapter {
    pool: SqlitePool,
    schema: Arc<Schema>,
    ids: IdStrategy,
    /// Read-only connections for point reads; `None` for an in-memory database (only its one
    /// connection sees it) or when they could not be opened.
    reader: Option<Arc<InlineReader>>,
}

/// A transaction on the SQLite pool.
#[derive(Debug)]
pub(super) struct SqliteTx {
    tx: tokio::sync::Mutex<Option<sqlx::Transaction<'static, Sqlite>>>,
    schema: Arc<Schema>,
    ids: IdStrategy,
}

impl SqliteAdapter {
    /// Opens (creating if missing) the database at `url`: `sqlite://path/to/file.db`,
    /// `sqlite:file.db` or `sqlite::memory:`.
    pub(super) async fn connect(
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
        let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
        let connections = (cpus * 2).max(4);
        let path = options.get_filename().to_path_buf();
        let pool = if memory {
            SqlitePoolOptions::new()
                .max_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
        } else {
            // No ping before every acquire: a SQLite connection is a file handle and a worker
            // thread in this process, not a socket that can die while idle, and sqlx still
            // pings it when it goes back to the pool. The ping was a third round trip to the
            // connection's worker thread on every query (~14% of get-session's throughput).
            SqlitePoolOptions::new()
                .max_connections(connections as u32)
                .test_before_acquire(false)
        }
        .connect_with(options)
        .await?;
        // The pool has opened the file (and set WAL mode) by now. A custom VFS is the one case
        // where a second, plain connection might not see the file the same way: leave it all
        // to sqlx.
        let custom_vfs = url
            .split_once('?')
            .is_some_and(|(_, q)| q.split('&').any(|kv| kv.starts_with("vfs=")));
        let reader = if memory || custom_vfs {
            None
        } else {
            match InlineReader::open(path, connections) {
                Ok(reader) => Some(Arc::new(reader)),
                Err(e) => {
                    tracing::warn!(error = %e, "no read-only SQLite connection; every read goes through sqlx");
                    None
                }
            }
        };
        Ok(Self {
            pool,
            schema,
            ids,
            reader,
        })
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

/// A value bound as SQLite stores it (Better Auth's layout: booleans as 1/0, dates as
/// ISO-8601 text, JSON as text). Both read paths bind through this.
#[derive(Debug, Clone, PartialEq)]
enum Bound<'v> {
    Null,
    Text(Cow<'v, str>),
    Int(i64),
    Real(f64),
}

fn bound(v: &Value) -> Bound<'_> {
    match v {
        Value::Null => Bound::Null,
        Value::String(s) => Bound::Text(Cow::Borrowed(s)),
        Value::Int(i) => Bound::Int(*i),
        Value::Float(f) => Bound::Real(*f),
        Value::Bool(b) => Bound::Int(i64::from(*b)),
        Value::Date(d) => Bound::Text(Cow::Owned(crate::time::format(d))),
        Value::Json(j) => Bound::Text(Cow::Owned(j.to_string())),
    }
}

impl rusqlite::ToSql for Bound<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(ToSqlOutput::Borrowed(match self {
            Bound::Null => ValueRef::Null,
            Bound::Text(s) => ValueRef::Text(s.as_bytes()),
            Bound::Int(i) => ValueRef::Integer(*i),
            Bound::Real(f) => ValueRef::Real(*f),
        }))
    }
}

fn prepare(sql: Sql) -> Result<(String, SqliteArguments<'static>), StorageError> {
    let mut args = SqliteArguments::default();
    for (v, _) in &sql.args {
        let r = match bound(v) {
            Bound::Null => args.add(Option::<String>::None),
            Bound::Text(s) => args.add(s.into_owned()),
            Bound::Int(i) => args.add(i),
            Bound::Real(f) => args.add(f),
        };
        r.map_err(StorageError::Backend)?;
    }
    Ok((sql.text, args))
}

/// A stored value by its storage class, as either read path found it.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Stored<'r> {
    Null,
    Integer(i64),
    Real(f64),
    Text(&'r str),
    Blob,
}

impl Stored<'_> {
    fn class(self) -> &'static str {
        match self {
            Stored::Null => "NULL",
            Stored::Integer(_) => "INTEGER",
            Stored::Real(_) => "REAL",
            Stored::Text(_) => "TEXT",
            Stored::Blob => "BLOB",
        }
    }
}

/// Decodes by the stored value's storage class, so rows Better Auth wrote (or a hand edit)
/// read back whatever their class.
fn decode_value(table: &Table, f: &Field, stored: Stored<'_>) -> Result<Value, StorageError> {
    let bad = |reason: String| StorageError::Decode {
        model: table.name.clone(),
        field: f.name.clone(),
        reason,
    };
    Ok(match (f.ty, stored) {
        (_, Stored::Null) => Value::Null,
        (FieldType::Boolean, Stored::Integer(i)) => Value::Bool(i != 0),
        (FieldType::Boolean, Stored::Text(s)) => Value::Bool(matches!(s, "true" | "1")),
        (FieldType::Date, Stored::Text(s)) => {
            Value::Date(crate::time::parse(s).ok_or_else(|| bad(format!("not a timestamp: {s}")))?)
        }
        // Milliseconds since the epoch, read as a float as SQLite converts them.
        (FieldType::Date, Stored::Integer(_) | Stored::Real(_)) => {
            let ms = match stored {
                Stored::Integer(i) => i as f64,
                Stored::Real(f) => f,
                _ => 0.0,
            };
            Value::Date(
                chrono::DateTime::from_timestamp_millis(ms as i64)
                    .ok_or_else(|| bad("timestamp out of range".into()))?,
            )
        }
        (FieldType::Number, Stored::Integer(i)) => Value::Int(i),
        (FieldType::Number, Stored::Real(f)) => Value::Float(f),
        (FieldType::Number, Stored::Text(s)) => {
            Value::Int(s.parse().map_err(|_| bad(format!("not a number: {s}")))?)
        }
        (FieldType::String, Stored::Integer(i)) => Value::String(i.to_string()),
        (FieldType::Json, Stored::Text(s)) => Value::Json(
            serde_json::from_str(s).unwrap_or_else(|_| serde_json::Value::String(s.to_owned())),
        ),
        (FieldType::String, Stored::Text(s)) => Value::String(s.to_owned()),
        (_, other) => return Err(bad(format!("unexpected storage class {}", other.class()))),
    })
}

/// The fields of `table`, from the columns `offset..` of a row read by either path.
fn decode_fields<'r, E: From<StorageError>>(
    table: &Table,
    offset: usize,
    mut column: impl FnMut(usize) -> Result<Stored<'r>, E>,
) -> Result<Row, E> {
    let mut out = Row::with_capacity(table.fields.len());
    for (i, f) in table.fields.iter().enumerate() {
        let value = decode_value(table, f, column(offset + i)?)?;
        out.push_new(f.name.clone(), value);
    }
    Ok(out)
}

fn decode_row(table: &Table, row: &SqliteRow, offset: usize) -> Result<Row, StorageError> {
    decode_fields(table, offset, |idx| {
        let raw = row.try_get_raw(idx)?;
        if raw.is_null() {
            return Ok(Stored::Null);
        }
        let class = raw.type_info().name().to_owned();
        Ok(match class.as_str() {
            "INTEGER" => Stored::Integer(row.try_get_unchecked::<i64, _>(idx)?),
            "REAL" => Stored::Real(row.try_get_unchecked::<f64, _>(idx)?),
            "TEXT" => Stored::Text(row.try_get_unchecked::<&str, _>(idx)?),
            _ => Stored::Blob,
        })
    })
}

/// Why a read on the calling thread was declined (it then goes through sqlx, which reports any
/// error the usual way).
#[derive(Debug, thiserror::Error)]
enum InlineError {
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("stored text is not UTF-8")]
    Utf8,
}

/// Read-only connections to the database file, used one at a time on the calling thread and
/// kept for the next read (each with its cache of prepared statements).
struct InlineReader {
    path: PathBuf,
    idle: Mutex<Vec<rusqlite::Connection>>,
    /// How many idle connections to keep; a burst past that opens and closes extra ones.
    keep: usize,
}

impl std::fmt::Debug for InlineReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InlineReader")
            .field("path", &self.path)
            .field("keep", &self.keep)
            .finish_non_exhaustive()
    }
}

impl InlineReader {
    /// Opens the first connection now, so a file that cannot be read this way is found at
    /// start and not on every read.
    fn open(path: PathBuf, keep: usize) -> Result<Self, rusqlite::Error> {
        let first = Self::connect(&path)?;
        Ok(Self {
            path,
            idle: Mutex::new(vec![first]),
            keep,
        })
    }

    fn connect(path: &Path) -> Result<rusqlite::Connection, rusqlite::Error> {
        use rusqlite::OpenFlags;
        let conn = rusqlite::Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        // Never wait on the calling thread: a WAL reader is only ever busy in rare moments
        // (another connection recovering the WAL index), and then sqlx serves the read.
        conn.busy_timeout(Duration::ZERO)?;
        Ok(conn)
    }

    /// Runs `sql` on an idle connection (or a new one) and decodes its first row.
    fn read<const N: usize>(
        &self,
        sql: &Sql,
        tables: [&Table; N],
    ) -> Result<Option<[Row; N]>, InlineError> {
        let idle = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let conn = match idle {
            Some(conn) => conn,
            None => Self::connect(&self.path)?,
        };
        let found = query_one(&conn, sql, tables);
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < self.keep {
            idle.push(conn);
        }
        found
    }
}

/// One row of `sql` through rusqlite; the statement is reset (ending its read transaction)
/// before this returns.
fn query_one<const N: usize>(
    conn: &rusqlite::Connection,
    sql: &Sql,
    tables: [&Table; N],
) -> Result<Option<[Row; N]>, InlineError> {
    let mut stmt = conn.prepare_cached(&sql.text)?;
    let mut rows = stmt.query(rusqlite::params_from_iter(
        sql.args.iter().map(|(v, _)| bound(v)),
    ))?;
    let Some(row) = rows.next()? else {
        return Ok(None);
    };
    let mut out: [Row; N] = std::array::from_fn(|_| Row::new());
    let mut offset = 0;
    for (slot, table) in out.iter_mut().zip(tables) {
        *slot = decode_fields(table, offset, |idx| {
            use rusqlite::types::ValueRef;
            Ok::<_, InlineError>(match row.get_ref(idx)? {
                ValueRef::Null => Stored::Null,
                ValueRef::Integer(i) => Stored::Integer(i),
                ValueRef::Real(f) => Stored::Real(f),
                ValueRef::Text(t) => {
                    Stored::Text(std::str::from_utf8(t).map_err(|_| InlineError::Utf8)?)
                }
                ValueRef::Blob(_) => Stored::Blob,
            })
        })?;
        offset += table.fields.len();
    }
    Ok(Some(out))
}

impl InlineReads for SqliteAdapter {
    fn read_inline<const N: usize>(
        &self,
        sql: &Sql,
        tables: [&Table; N],
    ) -> Option<Option<[Row; N]>> {
        let reader = self.reader.as_ref()?;
        // Plainly inline, blocking the tokio worker for the few microseconds of an indexed
        // read. Not `tokio::task::block_in_place`: that hands the worker's scheduler to
        // another thread on every call (a blocking-pool hand-off and wake-up, the very cost
        // this path avoids); measured, it got about half of plain inline's get-session
        // throughput (benches/README.md). It would also need a fallback on a current-thread
        // runtime, where it panics.
        match reader.read(sql, tables) {
            Ok(found) => Some(found),
            Err(e) => {
                tracing::debug!(error = %e, "read on the calling thread declined; reading through sqlx");
                None
            }
        }
    }
}

sql_adapter!(SqliteAdapter, SqliteTx, D, inline_reads);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::SchemaPatch;
    use crate::storage::sql;
    use crate::storage::{Adapter as _, Op, Query, Where};

    /// The core tables, and `thing` with a field of every type.
    fn schema() -> Arc<Schema> {
        let mut s = Schema::core();
        let thing = Table::new(
            "thing",
            vec![
                Field::new("label", FieldType::String).optional(),
                Field::new("rank", FieldType::Number).optional(),
                Field::new("active", FieldType::Boolean).optional(),
                Field::new("seenAt", FieldType::Date).optional(),
                Field::new("meta", FieldType::Json).optional(),
            ],
        );
        s.merge("test", SchemaPatch::default().table(thing))
            .unwrap();
        Arc::new(s)
    }

    async fn file_adapter(dir: &tempfile::TempDir) -> SqliteAdapter {
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let a = SqliteAdapter::connect(&url, schema(), IdStrategy::Random)
            .await
            .unwrap();
        // `thing` without column types (no affinity), so each value keeps the storage class
        // it is written with: every class in every field, as hand edits or other writers leave
        // them.
        sqlx::query(r#"create table thing (id, label, rank, active, "seenAt", meta)"#)
            .execute(&a.pool)
            .await
            .unwrap();
        a.migrate(false).await.unwrap();
        a
    }

    /// What the sqlx path reads for `sql`.
    async fn through_sqlx<const N: usize>(
        a: &SqliteAdapter,
        sql: &Sql,
        tables: [&Table; N],
    ) -> Result<Option<Vec<Row>>, String> {
        let (text, args) = prepare(sql.clone()).unwrap();
        let row = sqlx::query_with(&text, args)
            .fetch_optional(&a.pool)
            .await
            .unwrap();
        let Some(row) = row else { return Ok(None) };
        let mut out = Vec::new();
        let mut offset = 0;
        for t in tables {
            out.push(decode_row(t, &row, offset).map_err(|e| e.to_string())?);
            offset += t.fields.len();
        }
        Ok(Some(out))
    }

    /// What the calling-thread path reads for `sql`; a decline is reported as its error.
    fn inline<const N: usize>(
        a: &SqliteAdapter,
        sql: &Sql,
        tables: [&Table; N],
    ) -> Result<Option<Vec<Row>>, String> {
        let reader = a.reader.as_ref().expect("a file database has a reader");
        match reader.read(sql, tables) {
            Ok(found) => Ok(found.map(Vec::from)),
            Err(InlineError::Storage(e)) => Err(e.to_string()),
            Err(e) => panic!("the inline read failed: {e}"),
        }
    }

    #[tokio::test]
    async fn both_paths_decode_every_type_and_storage_class_alike() {
        let dir = tempfile::tempdir().unwrap();
        let a = file_adapter(&dir).await;
        let user = a
            .create(
                "user",
                Row::new()
                    .with("name", "Ada")
                    .with("email", "ada@example.com")
                    .with("emailVerified", true)
                    .with("createdAt", crate::time::now())
                    .with("updatedAt", crate::time::now()),
            )
            .await
            .unwrap();
        let typed = Row::new()
            .with("id", "typed")
            .with("label", "Ada ✓ \"quoted\" 'and' %_")
            .with("rank", 42)
            .with("active", true)
            .with("seenAt", crate::time::now())
            .with(
                "meta",
                Value::Json(serde_json::json!({"a": [1, 2.5, "x"], "b": null, "c": true})),
            );
        a.create("thing", typed).await.unwrap();
        a.create("thing", Row::new().with("id", "nulls"))
            .await
            .unwrap();
        let odd = [
            // label, rank, active, seenAt, meta: every storage class the decoder accepts
            "('int-label', 7, 2.5, 'true', 1700000000123, 'not json')",
            "('empty', '', '-17', '1', 1700000000123.9, '[1,\"x\"]')",
            "('extremes', 'x', 9223372036854775807, 5, '2024-01-02 03:04:05.678', '\"s\"')",
            "('min', 'y', -9223372036854775808, 0, '2024-01-02T03:04:05+02:00', 'null')",
            "('false-text', 'z', 0.0, 'false', '1700000000123', '{}')",
            "('int-bool', 'w', -1, 'yes', -1.5, ' [ ] ')",
            // and the ones it refuses, with the same error on both paths
            "('bad-number', 'v', 'abc', 1, null, null)",
            "('bad-date', 'u', 1, 1, 'yesterday', null)",
            "('blob-date', 't', 1, 1, x'00ff', null)",
            "('real-bool', 's', 1, 0.5, null, null)",
            "('int-json', 'r', 1, 1, null, 3)",
            "('huge-date', 'q', 1, 1, 1e300, null)",
        ];
        for values in odd {
            sqlx::query(&format!(
                r#"insert into thing (id, label, rank, active, "seenAt", meta) values {values}"#
            ))
            .execute(&a.pool)
            .await
            .unwrap();
        }

        let thing = a.schema.table("thing").unwrap();
        let ids: Vec<String> = sqlx::query_scalar("select id from thing")
            .fetch_all(&a.pool)
            .await
            .unwrap();
        assert_eq!(ids.len(), 14);
        let mut refused = 0;
        for id in &ids {
            let q = Query {
                filter: vec![Where::eq("id", id.as_str())],
                limit: Some(1),
                ..Query::default()
            };
            let sql = sql::select(D, thing, &q).unwrap();
            let expected = through_sqlx(&a, &sql, [thing]).await;
            assert_eq!(inline(&a, &sql, [thing]), expected, "row {id}");
            // And through the adapter, which reads inline and falls back to sqlx on an error.
            let found = a
                .find_one("thing", &q.filter)
                .await
                .map_err(|e| e.to_string());
            assert_eq!(
                found,
                expected.map(|r| r.map(|mut r| r.remove(0))),
                "row {id}"
            );
            refused += usize::from(found.is_err());
        }
        assert_eq!(refused, 6, "the six bad rows are refused");

        // Filters binding a value of every type.
        let at = crate::time::parse("2024-01-01T00:00:00Z").unwrap();
        let filters = [
            vec![Where::eq("label", "Ada ✓ \"quoted\" 'and' %_")],
            vec![Where::eq("label", Value::Null)],
            vec![Where::eq("rank", 42)],
            vec![Where::eq("rank", Value::Float(2.5))],
            vec![Where::eq("active", true)],
            vec![
                Where::new("seenAt", Op::Gt, at),
                Where::eq("meta", "not json"),
            ],
            vec![Where::eq("meta", Value::Json(serde_json::json!([1, "x"])))],
            vec![Where::is_in("id", vec!["nulls".into(), "nope".into()])],
            vec![Where::new("label", Op::StartsWith, "Ada")],
            vec![Where::eq("id", "missing")],
        ];
        for filter in filters {
            let q = Query {
                filter,
                limit: Some(1),
                ..Query::default()
            };
            let sql = sql::select(D, thing, &q).unwrap();
            let expected = through_sqlx(&a, &sql, [thing]).await;
            assert!(expected.is_ok(), "{:?}", q.filter);
            assert_eq!(inline(&a, &sql, [thing]), expected, "{:?}", q.filter);
        }

        // The joined read behind get-session.
        let now = crate::time::now();
        a.create(
            "session",
            Row::new()
                .with("token", "tok")
                .with("expiresAt", now)
                .with("createdAt", now)
                .with("updatedAt", now)
                .with("ipAddress", Value::Null)
                .with("userAgent", "agent")
                .with("userId", user.get("id").cloned().unwrap()),
        )
        .await
        .unwrap();
        let (s, u) = (
            a.schema.table("session").unwrap(),
            a.schema.table("user").unwrap(),
        );
        for token in ["tok", "other"] {
            let sql =
                sql::select_joined(D, s, u, "userId", "id", &[Where::eq("token", token)]).unwrap();
            let expected = through_sqlx(&a, &sql, [s, u]).await;
            assert_eq!(inline(&a, &sql, [s, u]), expected, "{token}");
            assert_eq!(expected.unwrap().is_some(), token == "tok");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reads_see_committed_writes_and_transactions_see_their_own() {
        let dir = tempfile::tempdir().unwrap();
        let a = file_adapter(&dir).await;
        let thing = a.schema.table("thing").unwrap();
        let by_id = |id: &str| {
            let q = Query {
                filter: vec![Where::eq("id", id)],
                limit: Some(1),
                ..Query::default()
            };
            sql::select(D, thing, &q).unwrap()
        };
        let filter = |id: &str| vec![Where::eq("id", id)];
        for i in 0..50 {
            let id = format!("w{i}");
            a.create("thing", Row::new().with("id", id.as_str()).with("rank", i))
                .await
                .unwrap();
            // Served on this thread, and the write just made is there.
            let found = a.read_inline(&by_id(&id), [thing]).expect("served inline");
            assert_eq!(found.unwrap()[0].get("rank"), Some(&Value::Int(i)));
        }
        a.update("thing", &filter("w3"), Row::new().with("rank", 300))
            .await
            .unwrap();
        let found = a.find_one("thing", &filter("w3")).await.unwrap().unwrap();
        assert_eq!(found.get("rank"), Some(&Value::Int(300)));

        async fn seen(db: &dyn crate::storage::Adapter, id: &str) -> bool {
            let filter = [Where::eq("id", id)];
            db.find_one("thing", &filter).await.unwrap().is_some()
        }
        let tx = a.begin().await.unwrap();
        tx.create("thing", Row::new().with("id", "in-tx"))
            .await
            .unwrap();
        tx.delete_many("thing", &filter("w4")).await.unwrap();
        assert!(seen(&*tx, "in-tx").await && !seen(&*tx, "w4").await);
        // Outside the transaction, nothing of it yet; all of it once committed.
        assert!(!seen(&a, "in-tx").await && seen(&a, "w4").await);
        tx.commit().await.unwrap();
        assert!(seen(&a, "in-tx").await && !seen(&a, "w4").await);
    }

    /// The workspace builds its bundled SQLite without the process-wide page-cache group and
    /// memory statistics (`.cargo/config.toml`): each put a mutex on every read that the
    /// runtime's workers contended for. Fails if that setting is lost.
    #[test]
    fn sqlite_is_built_without_its_global_read_mutexes() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        let mut stmt = conn.prepare("pragma compile_options").unwrap();
        let options: Vec<String> = stmt
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(
            !options.iter().any(|o| o == "ENABLE_MEMORY_MANAGEMENT"),
            "{options:?}"
        );
        assert!(
            options.iter().any(|o| o == "DEFAULT_MEMSTATUS=0"),
            "{options:?}"
        );
    }

    #[tokio::test]
    async fn an_in_memory_database_reads_through_sqlx() {
        let a = SqliteAdapter::connect("sqlite::memory:", schema(), IdStrategy::Random)
            .await
            .unwrap();
        assert!(a.reader.is_none());
        a.migrate(false).await.unwrap();
        a.create("thing", Row::new().with("id", "m").with("rank", 1))
            .await
            .unwrap();
        let found = a
            .find_one("thing", &[Where::eq("id", "m")])
            .await
            .unwrap()
            .unwrap();
        assert_eq!(found.get("rank"), Some(&Value::Int(1)));
    }
}
