//! The SQLite adapter on sqlx: Better Auth's SQLite layout (dates as ISO-8601 text, booleans
//! as 1/0), WAL mode, one query for a joined read.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteArguments, SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{
    Arguments as _, Row as _, Sqlite, SqliteConnection, SqlitePool, TypeInfo as _, ValueRef as _,
};

use super::{
    Adapter, Connector, Direction, Join, Op, Query, Row, StorageError, Transaction, Value, Where,
};
use crate::schema::{quote, FieldType, Schema, Table};
use crate::BoxFuture;

/// Storage on a SQLite file (or memory) through sqlx.
#[derive(Debug, Clone)]
pub struct SqliteAdapter {
    pool: SqlitePool,
    schema: Arc<Schema>,
}

impl SqliteAdapter {
    /// Opens (creating if missing) the database at `url`: `sqlite://path/to/file.db`,
    /// `sqlite:file.db` or `sqlite::memory:`.
    pub async fn connect(url: &str, schema: Arc<Schema>) -> Result<Self, StorageError> {
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
            SqlitePoolOptions::new().max_connections((cpus * 2).max(4) as u32)
        }
        .connect_with(options)
        .await?;
        Ok(Self { pool, schema })
    }

    /// The schema this adapter maps names through.
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    async fn run_migrations(&self) -> Result<Vec<String>, StorageError> {
        let mut conn = self.pool.acquire().await?;
        let mut ran = Vec::new();
        for table in self.schema.tables() {
            let existing: Vec<String> =
                sqlx::query(&format!("pragma table_info({})", quote(&table.table)))
                    .fetch_all(&mut *conn)
                    .await?
                    .iter()
                    .map(|r| r.try_get::<String, _>("name"))
                    .collect::<Result<_, _>>()?;
            let mut stmts = Vec::new();
            if existing.is_empty() {
                let cols: Vec<String> = table
                    .fields
                    .iter()
                    .map(|f| crate::schema::sqlite_column_def(f, self.schema.tables()))
                    .collect();
                stmts.push(format!(
                    "create table {} ({})",
                    quote(&table.table),
                    cols.join(", ")
                ));
            } else {
                for f in table
                    .fields
                    .iter()
                    .filter(|f| !existing.contains(&f.column))
                {
                    // SQLite cannot add a NOT NULL column without a default to a table that
                    // may hold rows; the column is added nullable and the engine fills it.
                    let mut def = f.clone();
                    def.required = false;
                    def.unique = false;
                    stmts.push(format!(
                        "alter table {} add column {}",
                        quote(&table.table),
                        crate::schema::sqlite_column_def(&def, self.schema.tables())
                    ));
                }
            }
            let indexes: Vec<String> = sqlx::query_scalar(
                "select name from sqlite_master where type = 'index' and tbl_name = ?",
            )
            .bind(&table.table)
            .fetch_all(&mut *conn)
            .await?;
            for index in crate::schema::sqlite_indexes(table) {
                if !indexes.iter().any(|name| index.contains(&quote(name))) {
                    stmts.push(index);
                }
            }
            for stmt in stmts {
                sqlx::query(&stmt).execute(&mut *conn).await?;
                ran.push(stmt);
            }
        }
        Ok(ran)
    }
}

fn table<'s>(schema: &'s Schema, model: &str) -> Result<&'s Table, StorageError> {
    schema
        .table(model)
        .ok_or_else(|| StorageError::Unknown(model.to_owned()))
}

fn column<'t>(table: &'t Table, field: &str) -> Result<&'t str, StorageError> {
    table
        .field(field)
        .map(|f| f.column.as_str())
        .ok_or_else(|| StorageError::Unknown(format!("{}.{}", table.name, field)))
}

/// SQL text and its arguments, built together so placeholders and values never drift apart.
struct Sql {
    text: String,
    args: Vec<Value>,
}

impl Sql {
    fn new(text: String) -> Self {
        Self {
            text,
            args: Vec::new(),
        }
    }

    fn bind(&mut self, v: Value) {
        self.text.push('?');
        self.args.push(v);
    }

    fn arguments(self) -> Result<(String, SqliteArguments<'static>), StorageError> {
        let mut args = SqliteArguments::default();
        for v in self.args {
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
        Ok((self.text, args))
    }
}

fn select_list(table: &Table, alias: Option<&str>) -> String {
    table
        .fields
        .iter()
        .map(|f| match alias {
            Some(a) => format!("{a}.{}", quote(&f.column)),
            None => quote(&f.column),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn escape_like(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

fn push_condition(
    sql: &mut Sql,
    table: &Table,
    alias: Option<&str>,
    w: &Where,
) -> Result<(), StorageError> {
    let col = match alias {
        Some(a) => format!("{a}.{}", quote(column(table, &w.field)?)),
        None => quote(column(table, &w.field)?),
    };
    let ty = table.field(&w.field).map(|f| f.ty);
    let first = || w.values.first().cloned().unwrap_or(Value::Null);
    let text = |v: Value| match v {
        Value::String(s) => s,
        other => format!("{other:?}"),
    };
    match w.op {
        Op::Eq | Op::Ne if first() == Value::Null => {
            sql.text.push_str(&col);
            sql.text.push_str(if w.op == Op::Eq {
                " is null"
            } else {
                " is not null"
            });
        }
        Op::Eq | Op::Ne | Op::Lt | Op::Lte | Op::Gt | Op::Gte => {
            let op = match w.op {
                Op::Eq => " = ",
                Op::Ne => " <> ",
                Op::Lt => " < ",
                Op::Lte => " <= ",
                Op::Gt => " > ",
                _ => " >= ",
            };
            sql.text.push_str(&col);
            sql.text.push_str(op);
            sql.bind(coerce(first(), ty));
        }
        Op::In | Op::NotIn => {
            if w.values.is_empty() {
                sql.text
                    .push_str(if w.op == Op::In { "1 = 0" } else { "1 = 1" });
                return Ok(());
            }
            sql.text.push_str(&col);
            sql.text
                .push_str(if w.op == Op::In { " in (" } else { " not in (" });
            for (i, v) in w.values.iter().enumerate() {
                if i > 0 {
                    sql.text.push_str(", ");
                }
                sql.bind(coerce(v.clone(), ty));
            }
            sql.text.push(')');
        }
        Op::Contains | Op::StartsWith | Op::EndsWith => {
            let needle = escape_like(&text(first()));
            let pattern = match w.op {
                Op::Contains => format!("%{needle}%"),
                Op::StartsWith => format!("{needle}%"),
                _ => format!("%{needle}"),
            };
            sql.text.push_str(&col);
            sql.text.push_str(" like ");
            sql.bind(Value::String(pattern));
            sql.text.push_str(" escape '\\'");
        }
    }
    Ok(())
}

/// Makes a value comparable with how its field is stored (a date given as text, say).
fn coerce(v: Value, ty: Option<FieldType>) -> Value {
    match (ty, v) {
        (Some(FieldType::Date), Value::String(s)) => match crate::time::parse(&s) {
            Some(d) => Value::Date(d),
            None => Value::String(s),
        },
        (Some(FieldType::Boolean), Value::String(s)) => Value::Bool(s == "true" || s == "1"),
        (_, v) => v,
    }
}

fn push_where(
    sql: &mut Sql,
    table: &Table,
    alias: Option<&str>,
    filter: &[Where],
) -> Result<(), StorageError> {
    if filter.is_empty() {
        return Ok(());
    }
    sql.text.push_str(" where ");
    let ands: Vec<&Where> = filter
        .iter()
        .filter(|w| w.connector == Connector::And)
        .collect();
    let ors: Vec<&Where> = filter
        .iter()
        .filter(|w| w.connector == Connector::Or)
        .collect();
    let mut first = true;
    for w in &ands {
        if !first {
            sql.text.push_str(" and ");
        }
        first = false;
        sql.text.push('(');
        push_condition(sql, table, alias, w)?;
        sql.text.push(')');
    }
    if !ors.is_empty() {
        if !first {
            sql.text.push_str(" and ");
        }
        sql.text.push('(');
        for (i, w) in ors.iter().enumerate() {
            if i > 0 {
                sql.text.push_str(" or ");
            }
            sql.text.push('(');
            push_condition(sql, table, alias, w)?;
            sql.text.push(')');
        }
        sql.text.push(')');
    }
    Ok(())
}

fn decode_row(table: &Table, row: &SqliteRow, offset: usize) -> Result<Row, StorageError> {
    let mut out = Row::new();
    for (i, f) in table.fields.iter().enumerate() {
        let raw = row.try_get_raw(offset + i)?;
        let bad = |reason: String| StorageError::Decode {
            model: table.name.clone(),
            field: f.name.clone(),
            reason,
        };
        let value = if raw.is_null() {
            Value::Null
        } else {
            let storage = raw.type_info().name().to_owned();
            drop(raw);
            let idx = offset + i;
            match (f.ty, storage.as_str()) {
                (FieldType::Boolean, "INTEGER") => {
                    Value::Bool(row.try_get_unchecked::<i64, _>(idx)? != 0)
                }
                (FieldType::Boolean, "TEXT") => {
                    let s = row.try_get_unchecked::<String, _>(idx)?;
                    Value::Bool(s == "true" || s == "1")
                }
                (FieldType::Date, "TEXT") => {
                    let s = row.try_get_unchecked::<String, _>(idx)?;
                    Value::Date(
                        crate::time::parse(&s)
                            .ok_or_else(|| bad(format!("not a timestamp: {s}")))?,
                    )
                }
                (FieldType::Date, "INTEGER") => {
                    let ms = row.try_get_unchecked::<i64, _>(idx)?;
                    Value::Date(
                        chrono::DateTime::from_timestamp_millis(ms)
                            .ok_or_else(|| bad("timestamp out of range".into()))?,
                    )
                }
                (FieldType::Date, "REAL") => {
                    let ms = row.try_get_unchecked::<f64, _>(idx)?;
                    Value::Date(
                        chrono::DateTime::from_timestamp_millis(ms as i64)
                            .ok_or_else(|| bad("timestamp out of range".into()))?,
                    )
                }
                (FieldType::Number, "INTEGER") | (FieldType::String, "INTEGER") => {
                    let i = row.try_get_unchecked::<i64, _>(idx)?;
                    if f.ty == FieldType::String {
                        Value::String(i.to_string())
                    } else {
                        Value::Int(i)
                    }
                }
                (FieldType::Number, "REAL") => Value::Float(row.try_get_unchecked::<f64, _>(idx)?),
                (FieldType::Json, "TEXT") => {
                    let s = row.try_get_unchecked::<String, _>(idx)?;
                    Value::Json(serde_json::from_str(&s).unwrap_or(serde_json::Value::String(s)))
                }
                (_, "TEXT") => {
                    let s = row.try_get_unchecked::<String, _>(idx)?;
                    if f.ty == FieldType::Number {
                        Value::Int(s.parse().map_err(|_| bad(format!("not a number: {s}")))?)
                    } else {
                        Value::String(s)
                    }
                }
                (_, other) => return Err(bad(format!("unexpected storage class {other}"))),
            }
        };
        out.set(f.name.clone(), value);
    }
    Ok(out)
}

fn insert_sql(table: &Table, mut row: Row) -> Result<Sql, StorageError> {
    if row.get("id").is_none() {
        row.set("id", crate::crypto::generate_id());
    }
    let mut cols = Vec::new();
    let mut sql = Sql::new(String::new());
    let mut values = Sql::new(String::new());
    for (k, v) in row.iter() {
        let f = table
            .field(k)
            .ok_or_else(|| StorageError::Unknown(format!("{}.{}", table.name, k)))?;
        cols.push(quote(&f.column));
        if !values.text.is_empty() {
            values.text.push_str(", ");
        }
        values.bind(coerce(v.clone(), Some(f.ty)));
    }
    sql.text = format!(
        "insert into {} ({}) values ({}) returning {}",
        quote(&table.table),
        cols.join(", "),
        values.text,
        select_list(table, None)
    );
    sql.args = values.args;
    Ok(sql)
}

fn update_sql(
    table: &Table,
    filter: &[Where],
    set: &Row,
    returning: bool,
) -> Result<Sql, StorageError> {
    let mut sql = Sql::new(format!("update {} set ", quote(&table.table)));
    for (i, (k, v)) in set.iter().enumerate() {
        let f = table
            .field(k)
            .ok_or_else(|| StorageError::Unknown(format!("{}.{}", table.name, k)))?;
        if i > 0 {
            sql.text.push_str(", ");
        }
        sql.text.push_str(&quote(&f.column));
        sql.text.push_str(" = ");
        sql.bind(coerce(v.clone(), Some(f.ty)));
    }
    push_where(&mut sql, table, None, filter)?;
    if returning {
        sql.text.push_str(" returning ");
        sql.text.push_str(&select_list(table, None));
    }
    Ok(sql)
}

fn select_sql(table: &Table, query: &Query) -> Result<Sql, StorageError> {
    let mut sql = Sql::new(format!(
        "select {} from {}",
        select_list(table, None),
        quote(&table.table)
    ));
    push_where(&mut sql, table, None, &query.filter)?;
    if let Some((field, dir)) = &query.sort {
        sql.text.push_str(&format!(
            " order by {} {}",
            quote(column(table, field)?),
            if *dir == Direction::Asc {
                "asc"
            } else {
                "desc"
            }
        ));
    }
    match (query.limit, query.offset) {
        (Some(l), Some(o)) => sql.text.push_str(&format!(" limit {l} offset {o}")),
        (Some(l), None) => sql.text.push_str(&format!(" limit {l}")),
        (None, Some(o)) => sql.text.push_str(&format!(" limit -1 offset {o}")),
        (None, None) => {}
    }
    Ok(sql)
}

/// Every query, run on whatever executor the caller holds (the pool or a transaction).
macro_rules! adapter_ops {
    (@begin $self:ident, SqliteAdapter) => {
        Box::pin(async move {
            // IMMEDIATE takes the write lock up front, so two transactions never deadlock
            // upgrading from read to write; the busy timeout queues them instead.
            let tx = $self.pool.begin_with("BEGIN IMMEDIATE").await?;
            Ok(Box::new(SqliteTx { tx: tokio::sync::Mutex::new(tx), schema: $self.schema.clone() }) as Box<dyn Transaction>)
        })
    };
    (@migrate $self:ident, SqliteAdapter) => {
        Box::pin($self.run_migrations())
    };
    (@migrate $self:ident, SqliteTx) => {
        Box::pin(async { Err(StorageError::Unknown("migrations do not run inside a transaction".into())) })
    };
    (@begin $self:ident, SqliteTx) => {
        Box::pin(async move { Err(StorageError::Unknown("nested transaction".into())) })
    };
    ($ty:ident, $this:ident, $guard:ident => $lock:expr, $get:expr) => {
        impl Adapter for $ty {
            fn create<'a>(&'a self, model: &'a str, row: Row) -> BoxFuture<'a, Result<Row, StorageError>> {
                Box::pin(async move {
                    let t = table(&self.schema, model)?;
                    let (text, args) = insert_sql(t, row)?.arguments()?;
                    let $this = self;
                    #[allow(unused_mut, unused_variables, clippy::let_unit_value)]
                    let mut $guard = $lock;
                    let r = sqlx::query_with(&text, args).fetch_one($get).await?;
                    decode_row(t, &r, 0)
                })
            }

            fn find_one<'a>(&'a self, model: &'a str, filter: &'a [Where]) -> BoxFuture<'a, Result<Option<Row>, StorageError>> {
                Box::pin(async move {
                    let t = table(&self.schema, model)?;
                    let q = Query { filter: filter.to_vec(), limit: Some(1), ..Query::default() };
                    let (text, args) = select_sql(t, &q)?.arguments()?;
                    let $this = self;
                    #[allow(unused_mut, unused_variables, clippy::let_unit_value)]
                    let mut $guard = $lock;
                    let r = sqlx::query_with(&text, args).fetch_optional($get).await?;
                    r.map(|r| decode_row(t, &r, 0)).transpose()
                })
            }

            fn find_many<'a>(&'a self, model: &'a str, query: &'a Query) -> BoxFuture<'a, Result<Vec<Row>, StorageError>> {
                Box::pin(async move {
                    let t = table(&self.schema, model)?;
                    let (text, args) = select_sql(t, query)?.arguments()?;
                    let $this = self;
                    #[allow(unused_mut, unused_variables, clippy::let_unit_value)]
                    let mut $guard = $lock;
                    let rows = sqlx::query_with(&text, args).fetch_all($get).await?;
                    rows.iter().map(|r| decode_row(t, r, 0)).collect()
                })
            }

            fn count<'a>(&'a self, model: &'a str, filter: &'a [Where]) -> BoxFuture<'a, Result<u64, StorageError>> {
                Box::pin(async move {
                    let t = table(&self.schema, model)?;
                    let mut sql = Sql::new(format!("select count(*) from {}", quote(&t.table)));
                    push_where(&mut sql, t, None, filter)?;
                    let (text, args) = sql.arguments()?;
                    let $this = self;
                    #[allow(unused_mut, unused_variables, clippy::let_unit_value)]
                    let mut $guard = $lock;
                    let n: i64 = sqlx::query_scalar_with(&text, args).fetch_one($get).await?;
                    Ok(n.max(0) as u64)
                })
            }

            fn update<'a>(&'a self, model: &'a str, filter: &'a [Where], set: Row) -> BoxFuture<'a, Result<Option<Row>, StorageError>> {
                Box::pin(async move {
                    let t = table(&self.schema, model)?;
                    if set.is_empty() {
                        let q = Query { filter: filter.to_vec(), limit: Some(1), ..Query::default() };
                        let (text, args) = select_sql(t, &q)?.arguments()?;
                        let $this = self;
                    #[allow(unused_mut, unused_variables, clippy::let_unit_value)]
                    let mut $guard = $lock;
                        let r = sqlx::query_with(&text, args).fetch_optional($get).await?;
                        return r.map(|r| decode_row(t, &r, 0)).transpose();
                    }
                    let (text, args) = update_sql(t, filter, &set, true)?.arguments()?;
                    let $this = self;
                    #[allow(unused_mut, unused_variables, clippy::let_unit_value)]
                    let mut $guard = $lock;
                    let r = sqlx::query_with(&text, args).fetch_optional($get).await?;
                    r.map(|r| decode_row(t, &r, 0)).transpose()
                })
            }

            fn update_many<'a>(&'a self, model: &'a str, filter: &'a [Where], set: Row) -> BoxFuture<'a, Result<u64, StorageError>> {
                Box::pin(async move {
                    let t = table(&self.schema, model)?;
                    if set.is_empty() {
                        return Ok(0);
                    }
                    let (text, args) = update_sql(t, filter, &set, false)?.arguments()?;
                    let $this = self;
                    #[allow(unused_mut, unused_variables, clippy::let_unit_value)]
                    let mut $guard = $lock;
                    Ok(sqlx::query_with(&text, args).execute($get).await?.rows_affected())
                })
            }

            fn delete_many<'a>(&'a self, model: &'a str, filter: &'a [Where]) -> BoxFuture<'a, Result<u64, StorageError>> {
                Box::pin(async move {
                    let t = table(&self.schema, model)?;
                    let mut sql = Sql::new(format!("delete from {}", quote(&t.table)));
                    push_where(&mut sql, t, None, filter)?;
                    let (text, args) = sql.arguments()?;
                    let $this = self;
                    #[allow(unused_mut, unused_variables, clippy::let_unit_value)]
                    let mut $guard = $lock;
                    Ok(sqlx::query_with(&text, args).execute($get).await?.rows_affected())
                })
            }

            fn find_one_joined<'a>(&'a self, model: &'a str, filter: &'a [Where], join: Join<'a>) -> BoxFuture<'a, Result<Option<(Row, Row)>, StorageError>> {
                Box::pin(async move {
                    let t = table(&self.schema, model)?;
                    let j = table(&self.schema, join.model)?;
                    let mut sql = Sql::new(format!(
                        "select {}, {} from {} a join {} b on b.{} = a.{}",
                        select_list(t, Some("a")),
                        select_list(j, Some("b")),
                        quote(&t.table),
                        quote(&j.table),
                        quote(column(j, join.foreign_field)?),
                        quote(column(t, join.local_field)?),
                    ));
                    push_where(&mut sql, t, Some("a"), filter)?;
                    sql.text.push_str(" limit 1");
                    let (text, args) = sql.arguments()?;
                    let $this = self;
                    #[allow(unused_mut, unused_variables, clippy::let_unit_value)]
                    let mut $guard = $lock;
                    let Some(r) = sqlx::query_with(&text, args).fetch_optional($get).await? else {
                        return Ok(None);
                    };
                    Ok(Some((decode_row(t, &r, 0)?, decode_row(j, &r, t.fields.len())?)))
                })
            }

            fn begin(&self) -> BoxFuture<'_, Result<Box<dyn Transaction>, StorageError>> {
                adapter_ops!(@begin self, $ty)
            }

            fn migrate(&self) -> BoxFuture<'_, Result<Vec<String>, StorageError>> {
                adapter_ops!(@migrate self, $ty)
            }
        }
    };
}

adapter_ops!(SqliteAdapter, this, guard => (), &this.pool);

/// A transaction on the SQLite pool.
#[derive(Debug)]
pub(crate) struct SqliteTx {
    tx: tokio::sync::Mutex<sqlx::Transaction<'static, Sqlite>>,
    schema: Arc<Schema>,
}

// The transaction's operations lock its one connection for the duration of each statement.
adapter_ops!(SqliteTx, this, guard => this.tx.lock().await, {
    let conn: &mut SqliteConnection = &mut guard;
    conn
});

impl Transaction for SqliteTx {
    fn commit(self: Box<Self>) -> BoxFuture<'static, Result<(), StorageError>> {
        Box::pin(async move { Ok(self.tx.into_inner().commit().await?) })
    }
}
