//! The PostgreSQL adapter on sqlx: `timestamptz` dates, native booleans, `jsonb`.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, Utc};
use sqlx::postgres::{PgArguments, PgPool, PgPoolOptions, PgRow};
use sqlx::{Arguments as _, Postgres, Row as _, TypeInfo as _, ValueRef as _};

use super::driver::sql_adapter;
use super::sql::{Dialect, Sql};
use super::{IdStrategy, Row, StorageError, Value};
use crate::schema::{FieldType, Schema, Table};

const D: Dialect = Dialect::Postgres;

/// Storage on PostgreSQL through sqlx.
#[derive(Debug, Clone)]
pub(super) struct PostgresAdapter {
    pool: PgPool,
    schema: Arc<Schema>,
    ids: IdStrategy,
}

/// A transaction on the PostgreSQL pool.
#[derive(Debug)]
pub(super) struct PostgresTx {
    tx: tokio::sync::Mutex<Option<sqlx::Transaction<'static, Postgres>>>,
    schema: Arc<Schema>,
    ids: IdStrategy,
}

impl PostgresAdapter {
    /// Connects to `url` (`postgres://user:pass@host:5432/db`).
    pub(super) async fn connect(
        url: &str,
        schema: Arc<Schema>,
        ids: IdStrategy,
    ) -> Result<Self, StorageError> {
        // One direct connection first: the pool would retry until its timeout and report
        // only that, where this reports the cause (refused, unknown host, bad password).
        let options: sqlx::postgres::PgConnectOptions = url.parse()?;
        sqlx::Connection::close(
            <sqlx::PgConnection as sqlx::Connection>::connect_with(&options).await?,
        )
        .await?;
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options)
            .await?;
        Ok(Self { pool, schema, ids })
    }

    async fn begin_tx(&self) -> Result<PostgresTx, StorageError> {
        let tx = self.pool.begin().await?;
        Ok(PostgresTx {
            tx: tokio::sync::Mutex::new(Some(tx)),
            schema: self.schema.clone(),
            ids: self.ids,
        })
    }

    async fn run_migrations(&self, dry_run: bool) -> Result<Vec<String>, StorageError> {
        let mut conn = self.pool.acquire().await?;
        let mut plan = Vec::new();
        for table in self.schema.tables() {
            let columns: Vec<String> = sqlx::query_scalar(
                "select column_name::text from information_schema.columns where table_schema = current_schema() and table_name = $1",
            )
            .bind(&table.table)
            .fetch_all(&mut *conn)
            .await?;
            let indexes: Vec<String> = sqlx::query_scalar(
                "select indexname::text from pg_indexes where schemaname = current_schema() and tablename = $1",
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
            let mut tx = sqlx::Connection::begin(&mut *conn).await?;
            for stmt in &plan {
                sqlx::query(stmt).execute(&mut *tx).await?;
            }
            tx.commit().await?;
        }
        Ok(plan)
    }
}

/// PostgreSQL inserts with `RETURNING`; this is never needed.
fn last_insert_id(_: &sqlx::postgres::PgQueryResult) -> Value {
    Value::Null
}

fn prepare(sql: Sql) -> Result<(String, PgArguments), StorageError> {
    let mut args = PgArguments::default();
    for (v, ty) in sql.args {
        let r = match (v, ty) {
            (Value::Null, FieldType::String) => args.add(Option::<String>::None),
            (Value::Null, FieldType::Number) => args.add(Option::<i64>::None),
            (Value::Null, FieldType::Boolean) => args.add(Option::<bool>::None),
            (Value::Null, FieldType::Date) => args.add(Option::<DateTime<Utc>>::None),
            (Value::Null, FieldType::Json) => {
                args.add(Option::<sqlx::types::Json<serde_json::Value>>::None)
            }
            (Value::String(s), FieldType::Json) => {
                args.add(sqlx::types::Json(serde_json::Value::String(s)))
            }
            (Value::String(s), _) => args.add(s),
            (Value::Int(i), FieldType::String) => args.add(i.to_string()),
            (Value::Int(i), _) => args.add(i),
            (Value::Float(f), _) => args.add(f),
            (Value::Bool(b), _) => args.add(b),
            (Value::Date(d), _) => args.add(d),
            (Value::Json(j), _) => args.add(sqlx::types::Json(j)),
        };
        r.map_err(StorageError::Backend)?;
    }
    Ok((sql.text, args))
}

fn decode_row(table: &Table, row: &PgRow, offset: usize) -> Result<Row, StorageError> {
    let mut out = Row::with_capacity(table.fields.len());
    for (i, f) in table.fields.iter().enumerate() {
        let idx = offset + i;
        let bad = |reason: String| StorageError::Decode {
            model: table.name.clone(),
            field: f.name.clone(),
            reason,
        };
        let raw = row.try_get_raw(idx)?;
        let pg_type = if raw.is_null() {
            "NULL".to_owned()
        } else {
            raw.type_info().name().to_owned()
        };
        let value = match pg_type.as_str() {
            "NULL" => Value::Null,
            "TEXT" | "VARCHAR" | "BPCHAR" | "NAME" => {
                let s: String = row.try_get(idx)?;
                match f.ty {
                    FieldType::String => Value::String(s),
                    FieldType::Date => Value::Date(
                        crate::time::parse(&s)
                            .ok_or_else(|| bad(format!("not a timestamp: {s}")))?,
                    ),
                    FieldType::Number => {
                        Value::Int(s.parse().map_err(|_| bad(format!("not a number: {s}")))?)
                    }
                    FieldType::Boolean => Value::Bool(matches!(s.as_str(), "true" | "1")),
                    FieldType::Json => Value::Json(
                        serde_json::from_str(&s).unwrap_or(serde_json::Value::String(s)),
                    ),
                }
            }
            "BOOL" => Value::Bool(row.try_get(idx)?),
            "INT2" | "INT4" | "INT8" => {
                let n: i64 = match pg_type.as_str() {
                    "INT2" => i64::from(row.try_get::<i16, _>(idx)?),
                    "INT4" => i64::from(row.try_get::<i32, _>(idx)?),
                    _ => row.try_get::<i64, _>(idx)?,
                };
                match f.ty {
                    FieldType::String => Value::String(n.to_string()),
                    FieldType::Boolean => Value::Bool(n != 0),
                    FieldType::Date => Value::Date(
                        DateTime::from_timestamp_millis(n)
                            .ok_or_else(|| bad("timestamp out of range".into()))?,
                    ),
                    _ => Value::Int(n),
                }
            }
            "FLOAT4" => Value::Float(f64::from(row.try_get::<f32, _>(idx)?)),
            "FLOAT8" => Value::Float(row.try_get(idx)?),
            "TIMESTAMPTZ" => Value::Date(row.try_get::<DateTime<Utc>, _>(idx)?),
            "TIMESTAMP" => Value::Date(row.try_get::<NaiveDateTime, _>(idx)?.and_utc()),
            "JSON" | "JSONB" => Value::Json(
                row.try_get::<sqlx::types::Json<serde_json::Value>, _>(idx)?
                    .0,
            ),
            other => return Err(bad(format!("unsupported column type {other}"))),
        };
        out.push_new(f.name.clone(), value);
    }
    Ok(out)
}

sql_adapter!(PostgresAdapter, PostgresTx, D);
