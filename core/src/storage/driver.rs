//! The [`Adapter`](super::Adapter) implementation every SQL driver shares. A driver module
//! supplies its pool and transaction types (both with `schema` and `ids` fields, the
//! transaction's connection in `tx`), the functions `last_insert_id` (for dialects without
//! `RETURNING`), `prepare` (bind a query's values),
//! `decode_row`, and the methods `begin_tx` and `run_migrations`; this macro writes the rest
//! on top of [`super::sql`]: every adapter operation, transactions (commit, and an immediate
//! rollback on drop), and the refusals of nested transactions and migrations inside one.
//!
//! `sql_adapter!(Adapter, Tx, DIALECT)` sends every query through sqlx.
//! `sql_adapter!(Adapter, Tx, DIALECT, inline_reads)` lets the driver serve point reads
//! (`find_one`, `find_one_joined`) itself through its own [`InlineReads`] implementation on the
//! adapter (transactions always use sqlx, so their reads see their own writes).

use super::sql::Sql;
use super::Row;
use crate::schema::Table;

/// Point reads a driver can serve without sqlx, on the calling thread. The default serves
/// none.
pub(crate) trait InlineReads {
    /// Runs `sql`, a query for at most one row whose columns are those of `tables` one after
    /// the other, and decodes that row into one [`Row`] per table. `None` declines: the caller
    /// then runs the same query through sqlx (which also reports any error).
    fn read_inline<const N: usize>(
        &self,
        sql: &Sql,
        tables: [&Table; N],
    ) -> Option<Option<[Row; N]>> {
        let _ = (sql, tables);
        None
    }
}

macro_rules! sql_adapter {
    ($adapter:ident, $tx:ident, $dialect:expr) => {
        impl $crate::storage::driver::InlineReads for $adapter {}
        $crate::storage::driver::sql_adapter!(@common $adapter, $tx, $dialect);
    };

    ($adapter:ident, $tx:ident, $dialect:expr, inline_reads) => {
        $crate::storage::driver::sql_adapter!(@common $adapter, $tx, $dialect);
    };

    (@common $adapter:ident, $tx:ident, $dialect:expr) => {
        impl $crate::storage::driver::InlineReads for $tx {}

        impl $adapter {
            fn begin_boxed(&self) -> $crate::BoxFuture<'_, Result<Box<dyn $crate::storage::Transaction>, $crate::storage::StorageError>> {
                Box::pin(async move { Ok(Box::new(self.begin_tx().await?) as Box<dyn $crate::storage::Transaction>) })
            }

            fn migrate_boxed(&self, dry_run: bool) -> $crate::BoxFuture<'_, Result<Vec<String>, $crate::storage::StorageError>> {
                Box::pin(self.run_migrations(dry_run))
            }
        }

        impl $tx {
            fn begin_boxed(&self) -> $crate::BoxFuture<'_, Result<Box<dyn $crate::storage::Transaction>, $crate::storage::StorageError>> {
                Box::pin(async { Err($crate::storage::StorageError::Unknown("nested transaction".into())) })
            }

            fn migrate_boxed(&self, _dry_run: bool) -> $crate::BoxFuture<'_, Result<Vec<String>, $crate::storage::StorageError>> {
                Box::pin(async {
                    Err($crate::storage::StorageError::Unknown("migrations do not run inside a transaction".into()))
                })
            }
        }

        $crate::storage::driver::sql_adapter!(@ops $adapter, $dialect, this, guard => (), &this.pool);
        $crate::storage::driver::sql_adapter!(@ops $tx, $dialect, this, guard => this.tx.lock().await,
            &mut **guard.as_mut().ok_or_else(|| $crate::storage::StorageError::Unknown("transaction already finished".into()))?);

        impl $crate::storage::Transaction for $tx {
            fn commit(mut self: Box<Self>) -> $crate::BoxFuture<'static, Result<(), $crate::storage::StorageError>> {
                let tx = self.tx.get_mut().take();
                Box::pin(async move {
                    match tx {
                        Some(tx) => Ok(tx.commit().await?),
                        None => Err($crate::storage::StorageError::Unknown("transaction already finished".into())),
                    }
                })
            }
        }

        impl Drop for $tx {
            /// Rolls back at once when dropped without commit. (sqlx would only queue the
            /// rollback until the connection is next used, leaving its locks held meanwhile.)
            fn drop(&mut self) {
                if let Some(tx) = self.tx.get_mut().take() {
                    if let Ok(handle) = tokio::runtime::Handle::try_current() {
                        handle.spawn(async move {
                            if let Err(e) = tx.rollback().await {
                                tracing::warn!(error = %e, "rollback failed");
                            }
                        });
                    }
                }
            }
        }
    };

    (@ops $ty:ident, $dialect:expr, $this:ident, $guard:ident => $lock:expr, $get:expr) => {
        impl $crate::storage::Adapter for $ty {
            fn create<'a>(&'a self, model: &'a str, mut row: $crate::storage::Row) -> $crate::BoxFuture<'a, Result<$crate::storage::Row, $crate::storage::StorageError>> {
                Box::pin(async move {
                    use $crate::storage::sql;
                    let t = sql::table(&self.schema, model)?;
                    if row.get("id").is_none() {
                        row.set("id", self.ids.generate());
                    }
                    $crate::storage::fill_defaults(t, &mut row);
                    // An empty id (serial ids) is the database's to assign.
                    if row.get("id") == Some(&$crate::storage::Value::String(String::new())) {
                        row.remove("id");
                    }
                    let id = row.get("id").cloned().unwrap_or($crate::storage::Value::Null);
                    let (text, args) = prepare(sql::insert($dialect, t, &row)?)?;
                    let $this = self;
                    #[allow(unused_mut, unused_variables, clippy::let_unit_value)]
                    let mut $guard = $lock;
                    if $dialect.returning() {
                        let r = sqlx::query_with(&text, args).fetch_one($get).await?;
                        return decode_row(t, &r, 0);
                    }
                    let done = sqlx::query_with(&text, args).execute($get).await?;
                    let id = match id {
                        $crate::storage::Value::Null => last_insert_id(&done),
                        id => id,
                    };
                    let q = $crate::storage::Query {
                        filter: vec![$crate::storage::Where::eq("id", id)],
                        limit: Some(1),
                        ..Default::default()
                    };
                    let (text, args) = prepare(sql::select($dialect, t, &q)?)?;
                    let r = sqlx::query_with(&text, args).fetch_one($get).await?;
                    decode_row(t, &r, 0)
                })
            }

            fn find_one<'a>(&'a self, model: &'a str, filter: &'a [$crate::storage::Where]) -> $crate::BoxFuture<'a, Result<Option<$crate::storage::Row>, $crate::storage::StorageError>> {
                Box::pin(async move {
                    use $crate::storage::sql;
                    let t = sql::table(&self.schema, model)?;
                    let q = $crate::storage::Query { filter: filter.to_vec(), limit: Some(1), ..Default::default() };
                    let query = sql::select($dialect, t, &q)?;
                    if let Some(found) = $crate::storage::driver::InlineReads::read_inline(self, &query, [t]) {
                        return Ok(found.map(|[row]| row));
                    }
                    let (text, args) = prepare(query)?;
                    let $this = self;
                    #[allow(unused_mut, unused_variables, clippy::let_unit_value)]
                    let mut $guard = $lock;
                    let r = sqlx::query_with(&text, args).fetch_optional($get).await?;
                    r.map(|r| decode_row(t, &r, 0)).transpose()
                })
            }

            fn find_many<'a>(&'a self, model: &'a str, query: &'a $crate::storage::Query) -> $crate::BoxFuture<'a, Result<Vec<$crate::storage::Row>, $crate::storage::StorageError>> {
                Box::pin(async move {
                    use $crate::storage::sql;
                    let t = sql::table(&self.schema, model)?;
                    let (text, args) = prepare(sql::select($dialect, t, query)?)?;
                    let $this = self;
                    #[allow(unused_mut, unused_variables, clippy::let_unit_value)]
                    let mut $guard = $lock;
                    let rows = sqlx::query_with(&text, args).fetch_all($get).await?;
                    rows.iter().map(|r| decode_row(t, r, 0)).collect()
                })
            }

            fn count<'a>(&'a self, model: &'a str, filter: &'a [$crate::storage::Where]) -> $crate::BoxFuture<'a, Result<u64, $crate::storage::StorageError>> {
                Box::pin(async move {
                    use $crate::storage::sql;
                    let t = sql::table(&self.schema, model)?;
                    let (text, args) = prepare(sql::count($dialect, t, filter)?)?;
                    let $this = self;
                    #[allow(unused_mut, unused_variables, clippy::let_unit_value)]
                    let mut $guard = $lock;
                    let n: i64 = sqlx::query_scalar_with(&text, args).fetch_one($get).await?;
                    Ok(n.max(0) as u64)
                })
            }

            fn update<'a>(&'a self, model: &'a str, filter: &'a [$crate::storage::Where], set: $crate::storage::Row) -> $crate::BoxFuture<'a, Result<Option<$crate::storage::Row>, $crate::storage::StorageError>> {
                Box::pin(async move {
                    use $crate::storage::{sql, Query, Where};
                    let t = sql::table(&self.schema, model)?;
                    let $this = self;
                    #[allow(unused_mut, unused_variables, clippy::let_unit_value)]
                    let mut $guard = $lock;
                    if set.is_empty() || !$dialect.returning() {
                        // Find the row first, then update it by id and read it back.
                        let q = Query { filter: filter.to_vec(), limit: Some(1), ..Default::default() };
                        let (text, args) = prepare(sql::select($dialect, t, &q)?)?;
                        let Some(r) = sqlx::query_with(&text, args).fetch_optional($get).await? else {
                            return Ok(None);
                        };
                        let found = decode_row(t, &r, 0)?;
                        if set.is_empty() {
                            return Ok(Some(found));
                        }
                        let by_id = [Where::eq("id", found.get("id").cloned().unwrap_or($crate::storage::Value::Null))];
                        let (text, args) = prepare(sql::update($dialect, t, &by_id, &set, false)?)?;
                        sqlx::query_with(&text, args).execute($get).await?;
                        let q = Query { filter: by_id.to_vec(), limit: Some(1), ..Default::default() };
                        let (text, args) = prepare(sql::select($dialect, t, &q)?)?;
                        let r = sqlx::query_with(&text, args).fetch_optional($get).await?;
                        return r.map(|r| decode_row(t, &r, 0)).transpose();
                    }
                    let (text, args) = prepare(sql::update($dialect, t, filter, &set, true)?)?;
                    let r = sqlx::query_with(&text, args).fetch_optional($get).await?;
                    r.map(|r| decode_row(t, &r, 0)).transpose()
                })
            }

            fn update_many<'a>(&'a self, model: &'a str, filter: &'a [$crate::storage::Where], set: $crate::storage::Row) -> $crate::BoxFuture<'a, Result<u64, $crate::storage::StorageError>> {
                Box::pin(async move {
                    use $crate::storage::sql;
                    let t = sql::table(&self.schema, model)?;
                    if set.is_empty() {
                        return Ok(0);
                    }
                    let (text, args) = prepare(sql::update($dialect, t, filter, &set, false)?)?;
                    let $this = self;
                    #[allow(unused_mut, unused_variables, clippy::let_unit_value)]
                    let mut $guard = $lock;
                    Ok(sqlx::query_with(&text, args).execute($get).await?.rows_affected())
                })
            }

            fn delete_many<'a>(&'a self, model: &'a str, filter: &'a [$crate::storage::Where]) -> $crate::BoxFuture<'a, Result<u64, $crate::storage::StorageError>> {
                Box::pin(async move {
                    use $crate::storage::sql;
                    let t = sql::table(&self.schema, model)?;
                    let (text, args) = prepare(sql::delete($dialect, t, filter)?)?;
                    let $this = self;
                    #[allow(unused_mut, unused_variables, clippy::let_unit_value)]
                    let mut $guard = $lock;
                    Ok(sqlx::query_with(&text, args).execute($get).await?.rows_affected())
                })
            }

            fn find_one_joined<'a>(&'a self, model: &'a str, filter: &'a [$crate::storage::Where], join: $crate::storage::Join<'a>) -> $crate::BoxFuture<'a, Result<Option<($crate::storage::Row, $crate::storage::Row)>, $crate::storage::StorageError>> {
                Box::pin(async move {
                    use $crate::storage::sql;
                    let t = sql::table(&self.schema, model)?;
                    let j = sql::table(&self.schema, join.model)?;
                    let query = sql::select_joined($dialect, t, j, join.local_field, join.foreign_field, filter)?;
                    if let Some(found) = $crate::storage::driver::InlineReads::read_inline(self, &query, [t, j]) {
                        return Ok(found.map(|[row, joined]| (row, joined)));
                    }
                    let (text, args) = prepare(query)?;
                    let $this = self;
                    #[allow(unused_mut, unused_variables, clippy::let_unit_value)]
                    let mut $guard = $lock;
                    let Some(r) = sqlx::query_with(&text, args).fetch_optional($get).await? else {
                        return Ok(None);
                    };
                    Ok(Some((decode_row(t, &r, 0)?, decode_row(j, &r, t.fields.len())?)))
                })
            }

            fn begin(&self) -> $crate::BoxFuture<'_, Result<Box<dyn $crate::storage::Transaction>, $crate::storage::StorageError>> {
                self.begin_boxed()
            }

            fn migrate(&self, dry_run: bool) -> $crate::BoxFuture<'_, Result<Vec<String>, $crate::storage::StorageError>> {
                self.migrate_boxed(dry_run)
            }
        }
    };
}

pub(crate) use sql_adapter;
