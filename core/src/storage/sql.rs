//! SQL text for the three dialects, built from the schema: queries with their arguments, and
//! DDL. Drivers only bind, execute and decode; everything about SQL shape lives here.

use super::{Connector, Direction, Op, Query, Row, StorageError, Value, Where};
use crate::schema::{DefaultValue, Field, FieldType, Schema, Table};

/// A SQL dialect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// SQLite (dates as ISO-8601 text, booleans as 1/0), as Better Auth's Kysely adapter
    /// writes them.
    Sqlite,
    /// PostgreSQL (`timestamptz`, `boolean`).
    Postgres,
    /// MySQL and MariaDB (`timestamp(3)`, `boolean`, `varchar(255)` for keys).
    Mysql,
}

impl Dialect {
    /// Quotes an identifier.
    pub fn quote(self, ident: &str) -> String {
        let mut out = String::with_capacity(ident.len() + 2);
        self.push_quoted(&mut out, ident);
        out
    }

    /// Appends `ident`, quoted, to `out` (no allocation of its own: queries are built on
    /// every request).
    fn push_quoted(self, out: &mut String, ident: &str) {
        let q = match self {
            Dialect::Mysql => '`',
            _ => '"',
        };
        out.push(q);
        if ident.contains(q) {
            for c in ident.chars() {
                if c == q {
                    out.push(q);
                }
                out.push(c);
            }
        } else {
            out.push_str(ident);
        }
        out.push(q);
    }

    /// Whether `INSERT`/`UPDATE ... RETURNING` is available.
    pub fn returning(self) -> bool {
        !matches!(self, Dialect::Mysql)
    }

    /// The dialect's name as the CLI spells it.
    pub fn name(self) -> &'static str {
        match self {
            Dialect::Sqlite => "sqlite",
            Dialect::Postgres => "postgres",
            Dialect::Mysql => "mysql",
        }
    }

    /// Parses a dialect name (`sqlite`, `postgres`/`postgresql`/`pg`, `mysql`/`mariadb`).
    pub fn parse(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "sqlite" => Some(Dialect::Sqlite),
            "postgres" | "postgresql" | "pg" => Some(Dialect::Postgres),
            "mysql" | "mariadb" => Some(Dialect::Mysql),
            _ => None,
        }
    }
}

/// SQL text and its arguments, built together so placeholders and values never drift apart.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Sql {
    pub(crate) dialect: Dialect,
    pub(crate) text: String,
    /// Each argument with the type of the column it meets, so a `NULL` can be typed.
    pub(crate) args: Vec<(Value, FieldType)>,
}

impl Sql {
    pub(crate) fn new(dialect: Dialect, text: impl Into<String>) -> Self {
        Self {
            dialect,
            text: text.into(),
            args: Vec::new(),
        }
    }

    pub(crate) fn push(&mut self, s: &str) {
        self.text.push_str(s);
    }

    pub(crate) fn bind(&mut self, v: Value, ty: FieldType) {
        self.args.push((v, ty));
        match self.dialect {
            Dialect::Postgres => {
                self.text.push('$');
                self.text.push_str(&self.args.len().to_string());
            }
            _ => self.text.push('?'),
        }
    }
}

pub(crate) fn table<'s>(schema: &'s Schema, model: &str) -> Result<&'s Table, StorageError> {
    schema
        .table(model)
        .ok_or_else(|| StorageError::Unknown(model.to_owned()))
}

fn field<'t>(table: &'t Table, name: &str) -> Result<&'t Field, StorageError> {
    table
        .field(name)
        .ok_or_else(|| StorageError::Unknown(format!("{}.{}", table.name, name)))
}

/// Makes a value comparable with how its field is stored (a date given as text, say).
pub(crate) fn coerce(v: Value, ty: FieldType) -> Value {
    match (ty, v) {
        (FieldType::Date, Value::String(s)) => match crate::time::parse(&s) {
            Some(d) => Value::Date(d),
            None => Value::String(s),
        },
        (FieldType::Boolean, Value::String(s)) => Value::Bool(s == "true" || s == "1"),
        (FieldType::Boolean, Value::Int(i)) => Value::Bool(i != 0),
        (FieldType::Number, Value::String(s)) => match s.parse::<i64>() {
            Ok(i) => Value::Int(i),
            Err(_) => Value::String(s),
        },
        (_, v) => v,
    }
}

fn push_column_ref(out: &mut String, d: Dialect, alias: Option<&str>, column: &str) {
    if let Some(a) = alias {
        out.push_str(a);
        out.push('.');
    }
    d.push_quoted(out, column);
}

fn column_ref(d: Dialect, alias: Option<&str>, column: &str) -> String {
    let mut out = String::new();
    push_column_ref(&mut out, d, alias, column);
    out
}

pub(crate) fn select_list(d: Dialect, table: &Table, alias: Option<&str>) -> String {
    let mut out = String::with_capacity(table.fields.len() * 16);
    push_select_list(&mut out, d, table, alias);
    out
}

fn push_select_list(out: &mut String, d: Dialect, table: &Table, alias: Option<&str>) {
    for (i, f) in table.fields.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        push_column_ref(out, d, alias, &f.column);
    }
}

fn escape_like(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

/// The type a field's values are bound as: a serial id is an integer in the database.
fn bind_type(f: &Field) -> FieldType {
    if f.serial {
        FieldType::Number
    } else {
        f.ty
    }
}

fn push_condition(
    sql: &mut Sql,
    table: &Table,
    alias: Option<&str>,
    w: &Where,
) -> Result<(), StorageError> {
    let f = field(table, &w.field)?;
    let col = column_ref(sql.dialect, alias, &f.column);
    let first = || w.values.first().cloned().unwrap_or(Value::Null);
    match w.op {
        Op::Eq | Op::Ne if w.values.first().is_none_or(|v| *v == Value::Null) => {
            sql.push(&col);
            sql.push(if w.op == Op::Eq {
                " is null"
            } else {
                " is not null"
            });
        }
        Op::Eq | Op::Ne | Op::Lt | Op::Lte | Op::Gt | Op::Gte => {
            sql.push(&col);
            sql.push(match w.op {
                Op::Eq => " = ",
                Op::Ne => " <> ",
                Op::Lt => " < ",
                Op::Lte => " <= ",
                Op::Gt => " > ",
                _ => " >= ",
            });
            sql.bind(coerce(first(), bind_type(f)), bind_type(f));
        }
        Op::In | Op::NotIn => {
            if w.values.is_empty() {
                sql.push(if w.op == Op::In { "1 = 0" } else { "1 = 1" });
                return Ok(());
            }
            sql.push(&col);
            sql.push(if w.op == Op::In { " in (" } else { " not in (" });
            for (i, v) in w.values.iter().enumerate() {
                if i > 0 {
                    sql.push(", ");
                }
                sql.bind(coerce(v.clone(), bind_type(f)), bind_type(f));
            }
            sql.push(")");
        }
        Op::Contains | Op::StartsWith | Op::EndsWith => {
            let needle = match first() {
                Value::String(s) => escape_like(&s),
                other => escape_like(&format!("{other:?}")),
            };
            let pattern = match w.op {
                Op::Contains => format!("%{needle}%"),
                Op::StartsWith => format!("{needle}%"),
                _ => format!("%{needle}"),
            };
            sql.push(&col);
            sql.push(" like ");
            sql.bind(Value::String(pattern), FieldType::String);
            // MySQL reads the backslash in a string literal as an escape itself.
            sql.push(if sql.dialect == Dialect::Mysql {
                " escape '\\\\'"
            } else {
                " escape '\\'"
            });
        }
    }
    Ok(())
}

/// Appends ` where ...`: every `And` condition, and at least one `Or` condition if any.
pub(crate) fn push_where(
    sql: &mut Sql,
    table: &Table,
    alias: Option<&str>,
    filter: &[Where],
) -> Result<(), StorageError> {
    if filter.is_empty() {
        return Ok(());
    }
    sql.push(" where ");
    let mut first = true;
    for w in filter.iter().filter(|w| w.connector == Connector::And) {
        if !first {
            sql.push(" and ");
        }
        first = false;
        sql.push("(");
        push_condition(sql, table, alias, w)?;
        sql.push(")");
    }
    let ors: Vec<&Where> = filter
        .iter()
        .filter(|w| w.connector == Connector::Or)
        .collect();
    if !ors.is_empty() {
        if !first {
            sql.push(" and ");
        }
        sql.push("(");
        for (i, w) in ors.iter().enumerate() {
            if i > 0 {
                sql.push(" or ");
            }
            sql.push("(");
            push_condition(sql, table, alias, w)?;
            sql.push(")");
        }
        sql.push(")");
    }
    Ok(())
}

/// `insert ... [returning ...]`. The row must already carry its id (unless ids are serial).
pub(crate) fn insert(d: Dialect, table: &Table, row: &Row) -> Result<Sql, StorageError> {
    let mut cols = Vec::new();
    let mut values = Sql::new(d, "");
    for (k, v) in row.iter() {
        let f = field(table, k)?;
        cols.push(d.quote(&f.column));
        if !values.args.is_empty() {
            values.push(", ");
        }
        values.bind(coerce(v.clone(), bind_type(f)), bind_type(f));
    }
    let mut text = format!(
        "insert into {} ({}) values ({})",
        d.quote(&table.table),
        cols.join(", "),
        values.text
    );
    if d.returning() {
        text.push_str(" returning ");
        text.push_str(&select_list(d, table, None));
    }
    Ok(Sql {
        dialect: d,
        text,
        args: values.args,
    })
}

pub(crate) fn update(
    d: Dialect,
    table: &Table,
    filter: &[Where],
    set: &Row,
    returning: bool,
) -> Result<Sql, StorageError> {
    let mut sql = Sql::new(d, format!("update {} set ", d.quote(&table.table)));
    for (i, (k, v)) in set.iter().enumerate() {
        let f = field(table, k)?;
        if i > 0 {
            sql.push(", ");
        }
        sql.push(&d.quote(&f.column));
        sql.push(" = ");
        sql.bind(coerce(v.clone(), bind_type(f)), bind_type(f));
    }
    push_where(&mut sql, table, None, filter)?;
    if returning && d.returning() {
        sql.push(" returning ");
        sql.push(&select_list(d, table, None));
    }
    Ok(sql)
}

pub(crate) fn select(d: Dialect, table: &Table, query: &Query) -> Result<Sql, StorageError> {
    let mut sql = Sql::new(
        d,
        format!(
            "select {} from {}",
            select_list(d, table, None),
            d.quote(&table.table)
        ),
    );
    push_where(&mut sql, table, None, &query.filter)?;
    if let Some((name, dir)) = &query.sort {
        let f = field(table, name)?;
        sql.push(&format!(
            " order by {} {}",
            d.quote(&f.column),
            if *dir == Direction::Asc {
                "asc"
            } else {
                "desc"
            }
        ));
    }
    match (query.limit, query.offset) {
        (Some(l), Some(o)) => sql.push(&format!(" limit {l} offset {o}")),
        (Some(l), None) => sql.push(&format!(" limit {l}")),
        (None, Some(o)) => match d {
            Dialect::Sqlite => sql.push(&format!(" limit -1 offset {o}")),
            Dialect::Postgres => sql.push(&format!(" offset {o}")),
            Dialect::Mysql => sql.push(&format!(" limit 18446744073709551615 offset {o}")),
        },
        (None, None) => {}
    }
    Ok(sql)
}

pub(crate) fn count(d: Dialect, table: &Table, filter: &[Where]) -> Result<Sql, StorageError> {
    let mut sql = Sql::new(d, format!("select count(*) from {}", d.quote(&table.table)));
    push_where(&mut sql, table, None, filter)?;
    Ok(sql)
}

pub(crate) fn delete(d: Dialect, table: &Table, filter: &[Where]) -> Result<Sql, StorageError> {
    let mut sql = Sql::new(d, format!("delete from {}", d.quote(&table.table)));
    push_where(&mut sql, table, None, filter)?;
    Ok(sql)
}

/// One row of `primary` with its `joined` row: `select a.*, b.* ... join ... limit 1`.
pub(crate) fn select_joined(
    d: Dialect,
    primary: &Table,
    joined: &Table,
    local_field: &str,
    foreign_field: &str,
    filter: &[Where],
) -> Result<Sql, StorageError> {
    // Built on every get-session: one buffer, no intermediate strings.
    let columns = primary.fields.len() + joined.fields.len();
    let mut text = String::with_capacity(64 + columns * 24);
    text.push_str("select ");
    push_select_list(&mut text, d, primary, Some("a"));
    text.push_str(", ");
    push_select_list(&mut text, d, joined, Some("b"));
    text.push_str(" from ");
    d.push_quoted(&mut text, &primary.table);
    text.push_str(" a join ");
    d.push_quoted(&mut text, &joined.table);
    text.push_str(" b on b.");
    d.push_quoted(&mut text, &field(joined, foreign_field)?.column);
    text.push_str(" = a.");
    d.push_quoted(&mut text, &field(primary, local_field)?.column);
    let mut sql = Sql::new(d, text);
    push_where(&mut sql, primary, Some("a"), filter)?;
    sql.push(" limit 1");
    Ok(sql)
}

// ------------------------------------------------------------------------------------ DDL

/// The column type of `f` in dialect `d`.
pub(crate) fn column_type(d: Dialect, f: &Field) -> &'static str {
    let key = f.name == "id" || f.references.is_some();
    if f.serial {
        return match (d, f.name == "id") {
            (Dialect::Sqlite, _) => "integer",
            (Dialect::Postgres, true) => "serial",
            (Dialect::Postgres, false) => "integer",
            (Dialect::Mysql, _) => "int",
        };
    }
    match (d, f.ty) {
        (Dialect::Sqlite, FieldType::String | FieldType::Json) => "text",
        (Dialect::Sqlite, FieldType::Number | FieldType::Boolean) => "integer",
        (Dialect::Sqlite, FieldType::Date) => "date",
        (Dialect::Postgres, FieldType::String) => "text",
        (Dialect::Postgres, FieldType::Number) if f.bigint => "bigint",
        (Dialect::Postgres, FieldType::Number) => "integer",
        (Dialect::Postgres, FieldType::Boolean) => "boolean",
        (Dialect::Postgres, FieldType::Date) => "timestamptz",
        (Dialect::Postgres, FieldType::Json) => "jsonb",
        (Dialect::Mysql, FieldType::String) if key => "varchar(36)",
        (Dialect::Mysql, FieldType::String) if f.unique || f.index || f.sortable => "varchar(255)",
        (Dialect::Mysql, FieldType::String) => "text",
        (Dialect::Mysql, FieldType::Number) if f.bigint => "bigint",
        (Dialect::Mysql, FieldType::Number) => "integer",
        (Dialect::Mysql, FieldType::Boolean) => "boolean",
        (Dialect::Mysql, FieldType::Date) => "timestamp(3)",
        (Dialect::Mysql, FieldType::Json) => "json",
    }
}

fn default_sql(d: Dialect, f: &Field) -> Option<String> {
    // Better Auth's SQLite DDL carries no defaults; the engine always writes every value.
    if d == Dialect::Sqlite {
        return None;
    }
    match f.default.as_ref()? {
        DefaultValue::Now => Some(match d {
            Dialect::Mysql => "CURRENT_TIMESTAMP(3)".into(),
            _ => "CURRENT_TIMESTAMP".into(),
        }),
        DefaultValue::Bool(b) => Some(if *b { "true".into() } else { "false".into() }),
        DefaultValue::Int(i) => Some(i.to_string()),
        DefaultValue::Str(s) => Some(format!("'{}'", s.replace('\'', "''"))),
    }
}

/// A column definition (`"email" text not null unique`), with an inline reference where the
/// dialect enforces one.
pub(crate) fn column_def(d: Dialect, f: &Field, schema: &Schema) -> String {
    let mut s = format!("{} {}", d.quote(&f.column), column_type(d, f));
    if f.name == "id" {
        s.push_str(match (f.serial, d) {
            (true, Dialect::Sqlite) => " primary key autoincrement",
            (true, Dialect::Mysql) => " not null auto_increment primary key",
            _ => " not null primary key",
        });
        return s;
    }
    if let Some(def) = default_sql(d, f) {
        s.push_str(" default ");
        s.push_str(&def);
    }
    if f.required {
        s.push_str(" not null");
    }
    if f.unique {
        s.push_str(" unique");
    }
    if d != Dialect::Mysql {
        if let Some(r) = reference_sql(d, f, schema) {
            s.push(' ');
            s.push_str(&r);
        }
    }
    s
}

fn reference_sql(d: Dialect, f: &Field, schema: &Schema) -> Option<String> {
    let r = f.references.as_ref()?;
    let (table, column) = match schema.table(&r.model) {
        Some(t) => (
            t.table.clone(),
            t.field(&r.field)
                .map_or_else(|| r.field.clone(), |f| f.column.clone()),
        ),
        None => (r.model.clone(), r.field.clone()),
    };
    Some(format!(
        "references {} ({}) on delete {}",
        d.quote(&table),
        d.quote(&column),
        r.on_delete.sql()
    ))
}

/// `create table` for one table.
pub(crate) fn create_table(d: Dialect, t: &Table, schema: &Schema) -> String {
    let mut parts: Vec<String> = t.fields.iter().map(|f| column_def(d, f, schema)).collect();
    if d == Dialect::Mysql {
        // InnoDB ignores inline REFERENCES; only table-level constraints are enforced.
        for f in &t.fields {
            if let Some(r) = reference_sql(d, f, schema) {
                parts.push(format!("foreign key ({}) {r}", d.quote(&f.column)));
            }
        }
    }
    format!("create table {} ({})", d.quote(&t.table), parts.join(", "))
}

/// The name of the index on `t.f`, as Better Auth names it (`session_userId_idx`).
pub(crate) fn index_name(t: &Table, f: &Field) -> String {
    format!("{}_{}_idx", t.table, f.column)
}

/// `create index` statements for the indexed (non-unique) fields of a table.
pub(crate) fn create_indexes(d: Dialect, t: &Table) -> Vec<(String, String)> {
    t.fields
        .iter()
        .filter(|f| f.index && !f.unique)
        .map(|f| {
            let name = index_name(t, f);
            let stmt = format!(
                "create index {} on {} ({})",
                d.quote(&name),
                d.quote(&t.table),
                d.quote(&f.column)
            );
            (name, stmt)
        })
        .collect()
}

/// `alter table ... add column` for a field missing from a live table. The column is added
/// nullable (without its unique constraint) when the table may hold rows, since a `NOT NULL`
/// column without a default cannot be added to them.
pub(crate) fn add_column(d: Dialect, t: &Table, f: &Field, schema: &Schema) -> String {
    let mut relaxed = f.clone();
    if relaxed.default.is_none() {
        relaxed.required = false;
    }
    relaxed.unique = false;
    format!(
        "alter table {} add column {}",
        d.quote(&t.table),
        column_def(d, &relaxed, schema)
    )
}

/// The whole schema as DDL for `d`: every table, then its indexes, referenced tables first.
pub(crate) fn ddl(d: Dialect, schema: &Schema) -> Vec<String> {
    let mut out = Vec::new();
    for t in schema.tables() {
        out.push(create_table(d, t, schema));
        out.extend(create_indexes(d, t).into_iter().map(|(_, s)| s));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_quoted_with_their_quotes_doubled() {
        assert_eq!(Dialect::Sqlite.quote("user"), "\"user\"");
        assert_eq!(Dialect::Postgres.quote("we\"ird"), "\"we\"\"ird\"");
        assert_eq!(Dialect::Mysql.quote("we`ird\""), "`we``ird\"`");
        assert_eq!(Dialect::Sqlite.quote("ünï\"\""), "\"ünï\"\"\"\"\"");
        let t = Table::new("t", vec![Field::new("a\"b", FieldType::String)]);
        assert_eq!(
            select_list(Dialect::Sqlite, &t, Some("x")),
            "x.\"id\", x.\"a\"\"b\""
        );
        assert_eq!(select_list(Dialect::Mysql, &t, None), "`id`, `a\"b`");
    }
}
