//! The schema model: tables and fields the engine and its plugins store.
//!
//! The core tables (`user`, `session`, `account`, `verification`) have Better Auth's exact
//! columns. Plugins add tables and fields with a [`SchemaPatch`]; [`Schema::merge`] folds them
//! in. Logical names (the ones code uses) map to physical table and column names, so a database
//! laid out differently can still be served.

/// The type of a field, as Better Auth's schema names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FieldType {
    /// Text.
    String,
    /// An integer (or a float where the value has a fraction).
    Number,
    /// `true`/`false`; SQLite stores 1/0.
    Boolean,
    /// A timestamp; SQLite stores ISO-8601 text with milliseconds, as Better Auth does.
    Date,
    /// Any JSON value, stored as text.
    Json,
}

/// What happens to a row when the row it references is deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum OnDelete {
    /// Delete this row too.
    Cascade,
    /// Set the referencing column to null.
    SetNull,
    /// Refuse the delete.
    Restrict,
    /// Do nothing.
    NoAction,
}

impl OnDelete {
    pub(crate) fn sql(self) -> &'static str {
        match self {
            OnDelete::Cascade => "cascade",
            OnDelete::SetNull => "set null",
            OnDelete::Restrict => "restrict",
            OnDelete::NoAction => "no action",
        }
    }
}

/// A foreign key: this field holds `model.field`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// Logical name of the referenced table.
    pub model: String,
    /// Logical name of the referenced field.
    pub field: String,
    /// Behaviour on delete of the referenced row.
    pub on_delete: OnDelete,
}

/// A database-side default for a column.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DefaultValue {
    /// The current time (`CURRENT_TIMESTAMP`).
    Now,
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// Text.
    Str(String),
}

impl DefaultValue {
    /// The value written by the engine when a row is created without the field.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            DefaultValue::Now => crate::time::format(&crate::time::now()).into(),
            DefaultValue::Bool(b) => (*b).into(),
            DefaultValue::Int(i) => (*i).into(),
            DefaultValue::Str(s) => s.clone().into(),
        }
    }

    /// The value the storage layer writes when a row is created without the field.
    pub fn to_value(&self) -> crate::storage::Value {
        use crate::storage::Value;
        match self {
            DefaultValue::Now => Value::Date(crate::time::now()),
            DefaultValue::Bool(b) => Value::Bool(*b),
            DefaultValue::Int(i) => Value::Int(*i),
            DefaultValue::Str(s) => Value::String(s.clone()),
        }
    }
}

/// One field of a table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// Logical name, as code and JSON use it (`emailVerified`).
    pub name: String,
    /// Physical column name; the logical name unless remapped.
    pub column: String,
    /// The field's type.
    pub ty: FieldType,
    /// Whether the column is `NOT NULL`.
    pub required: bool,
    /// Whether values are unique.
    pub unique: bool,
    /// Whether an index is created for it.
    pub index: bool,
    /// Foreign key, if any.
    pub references: Option<Reference>,
    /// Whether the field appears in API output (`returned` in Better Auth).
    pub returned: bool,
    /// Whether clients may set it (`input` in Better Auth).
    pub input: bool,
    /// Database-side default.
    pub default: Option<DefaultValue>,
    /// Whether it is sorted on (MySQL then gives strings a bounded `varchar`).
    pub sortable: bool,
    /// Whether a number needs 64 bits.
    pub bigint: bool,
    /// Whether the column holds a database-assigned integer id (or a reference to one) though
    /// the field is a string in Rust and JSON: see `IdStrategy::Serial`.
    pub serial: bool,
}

impl Field {
    /// A required field of type `ty`.
    pub fn new(name: &str, ty: FieldType) -> Self {
        Self {
            name: name.into(),
            column: name.into(),
            ty,
            required: true,
            unique: false,
            index: false,
            references: None,
            returned: true,
            input: true,
            default: None,
            sortable: false,
            bigint: false,
            serial: false,
        }
    }

    /// Gives the column a database-side default.
    pub fn default_value(mut self, value: DefaultValue) -> Self {
        self.default = Some(value);
        self
    }

    /// Marks the field as sorted on.
    pub fn sortable(mut self) -> Self {
        self.sortable = true;
        self
    }

    /// Stores a number in 64 bits.
    pub fn bigint(mut self) -> Self {
        self.bigint = true;
        self
    }

    /// Makes the field nullable.
    pub fn optional(mut self) -> Self {
        self.required = false;
        self
    }

    /// Adds a unique constraint.
    pub fn unique(mut self) -> Self {
        self.unique = true;
        self
    }

    /// Adds an index.
    pub fn index(mut self) -> Self {
        self.index = true;
        self
    }

    /// Makes it a foreign key to `model.field`.
    pub fn references(mut self, model: &str, field: &str, on_delete: OnDelete) -> Self {
        self.references = Some(Reference {
            model: model.into(),
            field: field.into(),
            on_delete,
        });
        self
    }

    /// Stores the field in a column with another name.
    pub fn column(mut self, column: &str) -> Self {
        self.column = column.into();
        self
    }

    /// Keeps the field out of API output.
    pub fn hidden(mut self) -> Self {
        self.returned = false;
        self
    }

    /// Refuses the field in client input.
    pub fn server_only(mut self) -> Self {
        self.input = false;
        self
    }
}

/// A table: its logical name, its physical name and its fields (the `id` primary key first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    /// Logical name (`user`).
    pub name: String,
    /// Physical table name; the logical name unless remapped.
    pub table: String,
    /// Fields, `id` first.
    pub fields: Vec<Field>,
}

impl Table {
    /// A table with a string `id` primary key and the given fields.
    pub fn new(name: &str, fields: Vec<Field>) -> Self {
        let mut all = vec![Field::new("id", FieldType::String)];
        all.extend(fields);
        Self {
            name: name.into(),
            table: name.into(),
            fields: all,
        }
    }

    /// The field with logical name `name`.
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }
}

/// What a plugin adds to the schema: tables of its own and fields on existing tables.
#[derive(Debug, Clone, Default)]
pub struct SchemaPatch {
    /// New tables.
    pub tables: Vec<Table>,
    /// Extra fields on existing tables, as `(logical table name, field)`.
    pub fields: Vec<(String, Field)>,
}

impl SchemaPatch {
    /// Adds a table.
    pub fn table(mut self, table: Table) -> Self {
        self.tables.push(table);
        self
    }

    /// Adds `field` to the existing table `table` (e.g. `user`).
    pub fn field(mut self, table: &str, field: Field) -> Self {
        self.fields.push((table.into(), field));
        self
    }
}

/// Physical names for one model.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ModelOptions {
    /// The table's name in the database (Better Auth's `modelName`).
    pub model_name: Option<String>,
    /// Column names by logical field name (Better Auth's `fields`).
    pub fields: std::collections::BTreeMap<String, String>,
}

impl ModelOptions {
    /// The model's table is `table` (Better Auth's `modelName`).
    pub fn table(mut self, table: impl Into<String>) -> Self {
        self.model_name = Some(table.into());
        self
    }

    /// The logical `field` is stored in column `column` (an entry of Better Auth's `fields`).
    pub fn column(mut self, field: impl Into<String>, column: impl Into<String>) -> Self {
        self.fields.insert(field.into(), column.into());
        self
    }
}

/// How the schema maps onto an existing database, and what the application adds to it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SchemaOptions {
    /// Table names in the plural (`users`, `sessions`), as Better Auth's `usePlural`.
    pub use_plural: bool,
    /// Per-model names, by logical model name (`user`).
    pub models: std::collections::BTreeMap<String, ModelOptions>,
    /// Fields the application adds to core tables (`user`, `session`), by table.
    pub additional_fields: Vec<(String, Vec<Field>)>,
}

/// The merged schema: core tables plus everything plugins added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schema {
    tables: Vec<Table>,
}

impl Schema {
    /// Better Auth's four core tables with their exact columns.
    pub fn core() -> Self {
        use FieldType::*;
        let user = Table::new(
            "user",
            vec![
                Field::new("name", String).sortable(),
                Field::new("email", String).unique(),
                Field::new("emailVerified", Boolean),
                Field::new("image", String).optional(),
                Field::new("createdAt", Date).default_value(DefaultValue::Now),
                Field::new("updatedAt", Date).default_value(DefaultValue::Now),
            ],
        );
        let session = Table::new(
            "session",
            vec![
                Field::new("expiresAt", Date),
                Field::new("token", String).unique(),
                Field::new("createdAt", Date).default_value(DefaultValue::Now),
                Field::new("updatedAt", Date),
                Field::new("ipAddress", String).optional(),
                Field::new("userAgent", String).optional(),
                Field::new("userId", String)
                    .references("user", "id", OnDelete::Cascade)
                    .index(),
            ],
        );
        let account = Table::new(
            "account",
            vec![
                Field::new("accountId", String),
                Field::new("providerId", String),
                Field::new("userId", String)
                    .references("user", "id", OnDelete::Cascade)
                    .index(),
                Field::new("accessToken", String).optional().hidden(),
                Field::new("refreshToken", String).optional().hidden(),
                Field::new("idToken", String).optional().hidden(),
                Field::new("accessTokenExpiresAt", Date).optional(),
                Field::new("refreshTokenExpiresAt", Date).optional(),
                Field::new("scope", String).optional(),
                Field::new("password", String).optional().hidden(),
                Field::new("createdAt", Date).default_value(DefaultValue::Now),
                Field::new("updatedAt", Date),
            ],
        );
        let verification = Table::new(
            "verification",
            vec![
                Field::new("identifier", String).index(),
                Field::new("value", String),
                Field::new("expiresAt", Date),
                Field::new("createdAt", Date).default_value(DefaultValue::Now),
                Field::new("updatedAt", Date).default_value(DefaultValue::Now),
            ],
        );
        Self {
            tables: vec![user, session, account, verification],
        }
    }

    /// Folds a plugin's patch in. A field or table that already exists with the same name is
    /// an error, so two plugins never silently fight over one column.
    pub fn merge(&mut self, plugin: &str, patch: SchemaPatch) -> Result<(), crate::Error> {
        let conflict = |what: String| crate::Error::Config(format!("plugin `{plugin}`: {what}"));
        for table in patch.tables {
            if self.table(&table.name).is_some() {
                return Err(conflict(format!("table `{}` already exists", table.name)));
            }
            for (i, f) in table.fields.iter().enumerate() {
                if table.fields[..i].iter().any(|g| g.name == f.name) {
                    return Err(conflict(format!(
                        "table `{}` lists field `{}` twice (`id` is added by `Table::new`)",
                        table.name, f.name
                    )));
                }
            }
            self.tables.push(table);
        }
        for (table_name, field) in patch.fields {
            let table = self
                .tables
                .iter_mut()
                .find(|t| t.name == table_name)
                .ok_or_else(|| conflict(format!("adds a field to unknown table `{table_name}`")))?;
            if table.field(&field.name).is_some() {
                return Err(conflict(format!(
                    "field `{}.{}` already exists",
                    table_name, field.name
                )));
            }
            table.fields.push(field);
        }
        Ok(())
    }

    /// Applies names and additional fields from the configuration: custom table names,
    /// custom column names, plural table names, and fields the application adds to core
    /// tables. Runs after plugins have merged, so it can rename their tables too.
    pub fn apply(&mut self, options: &SchemaOptions) -> Result<(), crate::Error> {
        let mut extra = SchemaPatch::default();
        for (table, fields) in &options.additional_fields {
            for f in fields {
                extra = extra.field(table, f.clone());
            }
        }
        self.merge("configuration", extra)?;
        for t in &mut self.tables {
            let model = options.models.get(&t.name);
            if let Some(name) = model.and_then(|m| m.model_name.as_ref()) {
                t.table = name.clone();
            } else if options.use_plural {
                t.table = format!("{}s", t.name);
            }
            if let Some(m) = model {
                for (field, column) in &m.fields {
                    let f = t
                        .fields
                        .iter_mut()
                        .find(|f| &f.name == field)
                        .ok_or_else(|| {
                            crate::Error::Config(format!(
                                "schema: `{}` has no field `{field}` to rename",
                                t.name
                            ))
                        })?;
                    f.column = column.clone();
                }
            }
        }
        Ok(())
    }

    /// Makes every `id` and every reference to an `id` a database-assigned integer.
    pub fn use_serial_ids(&mut self) {
        for t in &mut self.tables {
            for f in &mut t.fields {
                if f.name == "id" || f.references.as_ref().is_some_and(|r| r.field == "id") {
                    f.serial = true;
                }
            }
        }
    }

    /// The table with logical name `name`.
    pub fn table(&self, name: &str) -> Option<&Table> {
        self.tables.iter().find(|t| t.name == name)
    }

    /// All tables, in creation order (referenced tables first).
    pub fn tables(&self) -> &[Table] {
        &self.tables
    }

    /// `CREATE TABLE` and `CREATE INDEX` statements for `dialect`, as Better Auth's migrator
    /// writes them.
    pub fn ddl(&self, dialect: crate::storage::Dialect) -> Vec<String> {
        crate::storage::sql::ddl(dialect, self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A plugin table that names a field twice is refused at build time, before a row could
    /// carry two values under one name.
    #[test]
    fn a_table_listing_a_field_twice_is_refused() {
        let mut schema = Schema::core();
        let twice = Table::new(
            "gadget",
            vec![
                Field::new("id", FieldType::String),
                Field::new("label", FieldType::String),
            ],
        );
        let err = schema
            .merge("gadgets", SchemaPatch::default().table(twice))
            .expect_err("a duplicate field must be refused");
        assert!(err.to_string().contains("`id` twice"), "{err}");
        let once = Table::new("gadget", vec![Field::new("label", FieldType::String)]);
        schema
            .merge("gadgets", SchemaPatch::default().table(once))
            .expect("distinct fields merge");
    }

    /// `schema/sqlite.sql` is what the engine creates for the default plugin set (which adds no
    /// tables); it must never drift from the generator. `UPDATE_SCHEMA=1` rewrites it.
    #[test]
    fn schema_folder_matches_the_generator() {
        use crate::storage::Dialect;
        for d in [Dialect::Sqlite, Dialect::Postgres, Dialect::Mysql] {
            let generated: String = Schema::core()
                .ddl(d)
                .iter()
                .map(|s| format!("{s};\n"))
                .collect();
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join(format!("../schema/{}.sql", d.name()));
            if std::env::var_os("UPDATE_SCHEMA").is_some() {
                std::fs::write(&path, &generated).unwrap();
            }
            let committed = std::fs::read_to_string(&path).unwrap_or_default();
            assert_eq!(
                committed, generated,
                "schema/{}.sql drifted from the generator; run UPDATE_SCHEMA=1 cargo test -p portcullis schema",
                d.name()
            );
        }
    }

    #[test]
    fn core_ddl_is_better_auths() {
        let ddl = Schema::core().ddl(crate::storage::Dialect::Sqlite);
        assert_eq!(
            ddl[0],
            r#"create table "user" ("id" text not null primary key, "name" text not null, "email" text not null unique, "emailVerified" integer not null, "image" text, "createdAt" date not null, "updatedAt" date not null)"#
        );
        assert!(ddl.contains(&r#"create table "session" ("id" text not null primary key, "expiresAt" date not null, "token" text not null unique, "createdAt" date not null, "updatedAt" date not null, "ipAddress" text, "userAgent" text, "userId" text not null references "user" ("id") on delete cascade)"#.to_owned()));
    }

    #[test]
    fn plugins_cannot_redefine_fields_or_tables() {
        let mut s = Schema::core();
        let dup = SchemaPatch::default().field("user", Field::new("email", FieldType::String));
        assert!(s.merge("p", dup).is_err());
        let ok = SchemaPatch::default().field(
            "user",
            Field::new("twoFactorEnabled", FieldType::Boolean).optional(),
        );
        s.merge("p", ok).unwrap();
        assert!(s.table("user").unwrap().field("twoFactorEnabled").is_some());
        assert!(s
            .merge(
                "q",
                SchemaPatch::default().table(Table::new("user", vec![]))
            )
            .is_err());
    }
}
