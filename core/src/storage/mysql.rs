//! The MySQL and MariaDB adapter on sqlx: `timestamp(3)` dates, `boolean`, `varchar(255)` keys.
//! MySQL has no `UPDATE ... RETURNING`, so writes are read back by id.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::mysql::{MySqlArguments, MySqlPool, MySqlPoolOptions, MySqlRow};
use sqlx::{Arguments as _, MySql, Row as _, TypeInfo as _, ValueRef as _};

use super::driver::sql_adapter;
use super::sql::{Dialect, Sql};
use super::{IdStrategy, Row, StorageError, Value};
use crate::schema::{FieldType, Schema, Table};

const D: Dialect = Dialect::Mysql;

/// Storage on MySQL or MariaDB through sqlx.
#[derive(Debug, Clone)]
pub(super) struct MysqlAdapter {
    pool: MySqlPool,
    schema: Arc<Schema>,
    ids: IdStrategy,
}

/// A transaction on the MySQL pool.
#[derive(Debug)]
pub(super) struct MysqlTx {
    tx: tokio::sync::Mutex<Option<sqlx::Transaction<'static, MySql>>>,
    schema: Arc<Schema>,
    ids: IdStrategy,
}

impl MysqlAdapter {
    /// Connects to `url` (`mysql://user:pass@host:3306/db`; `mariadb://` works too).
    pub(super) async fn connect(
        url: &str,
        schema: Arc<Schema>,
        ids: IdStrategy,
    ) -> Result<Self, StorageError> {
        let url = match url.strip_prefix("mariadb:") {
            Some(rest) => format!("mysql:{rest}"),
            None => url.to_owned(),
        };
        // One direct connection first: the pool would retry until its timeout and report
        // only that, where this reports the cause (refused, unknown host, bad password).
        let options: sqlx::mysql::MySqlConnectOptions = url.parse()?;
        sqlx::Connection::close(
            <sqlx::MySqlConnection as sqlx::Connection>::connect_with(&options).await?,
        )
        .await?;
        let pool = MySqlPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options)
            .await?;
        Ok(Self { pool, schema, ids })
    }

    async fn begin_tx(&self) -> Result<MysqlTx, StorageError> {
        let tx = self.pool.begin().await?;
        Ok(MysqlTx {
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
                "select cast(column_name as char) from information_schema.columns where table_schema = database() and table_name = ?",
            )
            .bind(&table.table)
            .fetch_all(&mut *conn)
            .await?;
            let indexes: Vec<String> = sqlx::query_scalar(
                "select distinct cast(index_name as char) from information_schema.statistics where table_schema = database() and table_name = ?",
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
            // MySQL commits DDL implicitly; statements run one by one.
            for stmt in &plan {
                sqlx::query(stmt).execute(&mut *conn).await?;
            }
        }
        Ok(plan)
    }
}

/// The id MySQL assigned to the row just inserted (serial ids).
fn last_insert_id(done: &sqlx::mysql::MySqlQueryResult) -> Value {
    Value::Int(done.last_insert_id() as i64)
}

fn prepare(sql: Sql) -> Result<(String, MySqlArguments), StorageError> {
    let mut args = MySqlArguments::default();
    for (v, ty) in sql.args {
        let r = match (v, ty) {
            (Value::Null, FieldType::Number) => args.add(Option::<i64>::None),
            (Value::Null, FieldType::Boolean) => args.add(Option::<bool>::None),
            (Value::Null, FieldType::Date) => args.add(Option::<DateTime<Utc>>::None),
            (Value::Null, _) => args.add(Option::<String>::None),
            (Value::String(s), _) => args.add(s),
            (Value::Int(i), FieldType::String) => args.add(i.to_string()),
            (Value::Int(i), _) => args.add(i),
            (Value::Float(f), _) => args.add(f),
            (Value::Bool(b), _) => args.add(b),
            (Value::Date(d), _) => args.add(d),
            (Value::Json(j), _) => args.add(j.to_string()),
        };
        r.map_err(StorageError::Backend)?;
    }
    Ok((sql.text, args))
}

fn decode_row(table: &Table, row: &MySqlRow, offset: usize) -> Result<Row, StorageError> {
    let mut out = Row::with_capacity(table.fields.len());
    for (i, f) in table.fields.iter().enumerate() {
        let idx = offset + i;
        let bad = |reason: String| StorageError::Decode {
            model: table.name.clone(),
            field: f.name.clone(),
            reason,
        };
        let raw = row.try_get_raw(idx)?;
        let my_type = if raw.is_null() {
            "NULL".to_owned()
        } else {
            raw.type_info().name().to_owned()
        };
        let binary = matches!(
            my_type.as_str(),
            "BLOB" | "TINYBLOB" | "MEDIUMBLOB" | "LONGBLOB" | "VARBINARY" | "BINARY"
        );
        // Text without a character set (MariaDB's JSON, binary collations) arrives as bytes.
        let text = || -> Result<String, StorageError> {
            if binary {
                String::from_utf8(row.try_get::<Vec<u8>, _>(idx)?)
                    .map_err(|_| bad("not UTF-8 text".into()))
            } else {
                Ok(row.try_get::<String, _>(idx)?)
            }
        };
        let value = match (f.ty, my_type.as_str()) {
            (_, "NULL") => Value::Null,
            (FieldType::Boolean, _) => Value::Bool(row.try_get::<bool, _>(idx)?),
            (FieldType::Date, "TIMESTAMP" | "DATETIME" | "DATE") => {
                Value::Date(row.try_get::<DateTime<Utc>, _>(idx)?)
            }
            (FieldType::Date, _) => {
                let s = text()?;
                Value::Date(
                    crate::time::parse(&s).ok_or_else(|| bad(format!("not a timestamp: {s}")))?,
                )
            }
            (FieldType::Number, "FLOAT" | "DOUBLE" | "DECIMAL") => {
                Value::Float(row.try_get::<f64, _>(idx)?)
            }
            (FieldType::Number, _) => Value::Int(row.try_get::<i64, _>(idx)?),
            (FieldType::String, "TINYINT" | "SMALLINT" | "MEDIUMINT" | "INT" | "BIGINT") => {
                Value::String(row.try_get::<i64, _>(idx)?.to_string())
            }
            (FieldType::String, _) => Value::String(text()?),
            (FieldType::Json, "JSON") => Value::Json(
                row.try_get::<sqlx::types::Json<serde_json::Value>, _>(idx)?
                    .0,
            ),
            (FieldType::Json, _) => {
                let s = text()?;
                Value::Json(serde_json::from_str(&s).unwrap_or(serde_json::Value::String(s)))
            }
        };
        out.push_new(f.name.clone(), value);
    }
    Ok(out)
}

sql_adapter!(MysqlAdapter, MysqlTx, D);
