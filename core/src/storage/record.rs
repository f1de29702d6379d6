//! The typed model path: a plugin declares a struct once ([`record!`](crate::record)) and gets
//! its [`Table`] and its [`Row`] conversion, read without a JSON round trip; and typed keys
//! ([`FieldKey`]) for the fields a plugin adds to the core models.

use std::marker::PhantomData;

use chrono::{DateTime, Utc};

use super::{Row, StorageError, Value};
use crate::schema::{Field, FieldType, Table};

/// A Rust type a field can hold: its schema type, whether it is required, and its conversion
/// to and from a stored [`Value`]. Implemented for `String`, `bool`, `i64`, `f64`,
/// `DateTime<Utc>`, `serde_json::Value` (a JSON field) and `Option<T>` of those (an optional
/// field).
pub trait FieldValue: Sized {
    /// The field's type in the schema.
    const TYPE: FieldType;
    /// Whether the field is `NOT NULL` (every type but `Option<T>`).
    const REQUIRED: bool = true;

    /// The value to store.
    fn into_value(self) -> Value;

    /// The stored value as this type; `Err` says what was wrong.
    fn from_value(value: Value) -> Result<Self, &'static str>;
}

impl FieldValue for String {
    const TYPE: FieldType = FieldType::String;

    fn into_value(self) -> Value {
        Value::String(self)
    }

    fn from_value(value: Value) -> Result<Self, &'static str> {
        match value {
            Value::String(s) | Value::Json(serde_json::Value::String(s)) => Ok(s),
            Value::Null => Err("missing"),
            _ => Err("not text"),
        }
    }
}

impl FieldValue for bool {
    const TYPE: FieldType = FieldType::Boolean;

    fn into_value(self) -> Value {
        Value::Bool(self)
    }

    fn from_value(value: Value) -> Result<Self, &'static str> {
        match value {
            Value::Bool(b) | Value::Json(serde_json::Value::Bool(b)) => Ok(b),
            // MySQL's `boolean` is a tinyint, and a JSON document may hold 0/1.
            Value::Int(0) => Ok(false),
            Value::Int(1) => Ok(true),
            Value::Null => Err("missing"),
            _ => Err("not a boolean"),
        }
    }
}

impl FieldValue for i64 {
    const TYPE: FieldType = FieldType::Number;

    fn into_value(self) -> Value {
        Value::Int(self)
    }

    fn from_value(value: Value) -> Result<Self, &'static str> {
        match value {
            Value::Int(i) => Ok(i),
            Value::Json(serde_json::Value::Number(n)) => n.as_i64().ok_or("not an integer"),
            Value::Float(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Ok(f as i64),
            Value::Null => Err("missing"),
            _ => Err("not an integer"),
        }
    }
}

impl FieldValue for f64 {
    const TYPE: FieldType = FieldType::Number;

    fn into_value(self) -> Value {
        Value::Float(self)
    }

    fn from_value(value: Value) -> Result<Self, &'static str> {
        match value {
            Value::Float(f) => Ok(f),
            Value::Int(i) => Ok(i as f64),
            Value::Json(serde_json::Value::Number(n)) => n.as_f64().ok_or("not a number"),
            Value::Null => Err("missing"),
            _ => Err("not a number"),
        }
    }
}

impl FieldValue for DateTime<Utc> {
    const TYPE: FieldType = FieldType::Date;

    fn into_value(self) -> Value {
        Value::Date(self)
    }

    /// To millisecond precision, as Better Auth stores and sends timestamps.
    fn from_value(value: Value) -> Result<Self, &'static str> {
        let t = match value {
            Value::Date(t) => DateTime::from_timestamp_millis(t.timestamp_millis()),
            Value::String(s) | Value::Json(serde_json::Value::String(s)) => crate::time::parse(&s),
            Value::Null => return Err("missing"),
            _ => None,
        };
        t.ok_or("not a timestamp")
    }
}

impl FieldValue for serde_json::Value {
    const TYPE: FieldType = FieldType::Json;

    fn into_value(self) -> Value {
        Value::Json(self)
    }

    fn from_value(value: Value) -> Result<Self, &'static str> {
        match value {
            Value::Json(j) => Ok(j),
            // SQLite and MySQL may hand a JSON column back as its text.
            Value::String(s) => serde_json::from_str(&s).map_err(|_| "not JSON"),
            other => Ok(other.into_json()),
        }
    }
}

impl<T: FieldValue> FieldValue for Option<T> {
    const TYPE: FieldType = T::TYPE;
    const REQUIRED: bool = false;

    fn into_value(self) -> Value {
        self.map_or(Value::Null, T::into_value)
    }

    fn from_value(value: Value) -> Result<Self, &'static str> {
        match value {
            Value::Null | Value::Json(serde_json::Value::Null) => Ok(None),
            other => T::from_value(other).map(Some),
        }
    }
}

/// A model a plugin owns, declared once: its logical name, its [`Table`], and its conversion
/// to and from a [`Row`]. Declare one with [`record!`](crate::record); read and write it with
/// [`Store::insert`](super::Store::insert), [`Store::find`](super::Store::find) and
/// [`Store::find_all`](super::Store::find_all), through the database hooks like any core
/// model.
pub trait Record: Sized + Send + Sync + 'static {
    /// The model's logical name (`"auditEvent"`).
    const MODEL: &'static str;

    /// The model's table: every field but the implicit `id`, typed from the struct.
    fn table() -> Table;

    /// The record as a row to insert. An empty `id` is left out, so the adapter assigns one.
    fn into_row(self) -> Row;

    /// The record from a stored row, by moving its fields out (no JSON in between).
    fn from_row(row: Row) -> Result<Self, StorageError>;
}

/// Reads one field out of a row for [`Record::from_row`]: a missing field counts as null, so
/// an optional field may be absent and a required one is refused as missing.
#[doc(hidden)]
pub fn take_field<T: FieldValue>(
    row: &mut Row,
    model: &str,
    field: &str,
) -> Result<T, StorageError> {
    let value = row.remove(field).unwrap_or(Value::Null);
    T::from_value(value).map_err(|reason| StorageError::Decode {
        model: model.into(),
        field: field.into(),
        reason: reason.into(),
    })
}

/// A typed name for a field a plugin adds to a core model (`twoFactorEnabled` on `user`):
/// declare it once as a `const`, build its schema [`Field`] from it, and read it off a
/// [`User`](super::User) or [`Session`](super::Session) with `get`.
///
/// ```
/// use portcullis::storage::FieldKey;
///
/// /// Whether the user has turned two-factor authentication on.
/// pub const TWO_FACTOR_ENABLED: FieldKey<bool> = FieldKey::optional("twoFactorEnabled");
///
/// let field = TWO_FACTOR_ENABLED.field(); // an optional boolean, for a `SchemaPatch`
/// assert!(!field.required);
/// ```
pub struct FieldKey<T> {
    name: &'static str,
    required: bool,
    ty: PhantomData<fn() -> T>,
}

impl<T> Clone for FieldKey<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for FieldKey<T> {}

impl<T> std::fmt::Debug for FieldKey<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("FieldKey").field(&self.name).finish()
    }
}

impl<T: FieldValue> FieldKey<T> {
    /// The key of a required field named `name` (its logical name).
    pub const fn new(name: &'static str) -> Self {
        Self {
            name,
            required: T::REQUIRED,
            ty: PhantomData,
        }
    }

    /// The key of an optional (nullable) field named `name`.
    pub const fn optional(name: &'static str) -> Self {
        Self {
            name,
            required: false,
            ty: PhantomData,
        }
    }

    /// The field's logical name.
    pub const fn name(self) -> &'static str {
        self.name
    }

    /// The field's schema declaration (name, type, whether it is required) for
    /// [`SchemaPatch::field`](crate::schema::SchemaPatch::field); chain the other settings.
    pub fn field(self) -> Field {
        let f = Field::new(self.name, T::TYPE);
        if self.required {
            f
        } else {
            f.optional()
        }
    }

    /// The field's value in an added-fields map (`User::extra`, say); `None` when it is
    /// absent, null, or not of the key's type.
    pub(crate) fn read(self, extra: &serde_json::Map<String, serde_json::Value>) -> Option<T> {
        let value = match (T::TYPE, extra.get(self.name)?) {
            (_, serde_json::Value::Null) => return None,
            (FieldType::Date, serde_json::Value::String(s)) => Value::Date(crate::time::parse(s)?),
            (_, j) => Value::Json(j.clone()),
        };
        T::from_value(value).ok()
    }
}

/// A field of a [`record!`](crate::record) struct, for its table: the name and the type's
/// schema type and nullability.
#[doc(hidden)]
pub fn record_field<T: FieldValue>(name: &'static str) -> Field {
    FieldKey::<T>::new(name).field()
}

/// Declares a plugin's model once: a struct, its [`Record`] impl (logical model name, table,
/// row conversion) and nothing else. Each field names its logical (wire and database) name,
/// and may chain [`Field`] settings (`.index()`, `.unique()`, `.references(..)`,
/// `.default_value(..)`, `.hidden()`, ...) after it. The field `id` is the row's id: it must
/// be there, as `String`, and is not part of the table (every table has one).
///
/// ```
/// use chrono::{DateTime, Utc};
/// use portcullis::schema::{DefaultValue, OnDelete};
/// use portcullis::storage::Record as _;
///
/// portcullis::record! {
///     /// One entry of a user's audit log.
///     #[derive(Debug, Clone, serde::Serialize)]
///     pub struct AuditEvent in "auditEvent" {
///         /// Row id.
///         pub id: String = "id",
///         /// Whose event it is.
///         pub user_id: String = "userId"
///             .index()
///             .references("user", "id", OnDelete::Cascade),
///         /// What happened (`sign-in`, `sign-out`).
///         pub kind: String = "kind",
///         /// The client's address, when known.
///         pub ip_address: Option<String> = "ipAddress",
///         /// When it happened.
///         pub created_at: DateTime<Utc> = "createdAt"
///             .default_value(DefaultValue::Now),
///     }
/// }
///
/// let table = AuditEvent::table();
/// assert_eq!(table.name, "auditEvent");
/// assert!(table.field("ipAddress").is_some_and(|f| !f.required));
/// ```
#[macro_export]
macro_rules! record {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident in $model:literal {
            $(
                $(#[$fmeta:meta])*
                $fvis:vis $field:ident : $ty:ty = $column:literal
                    $( . $setting:ident ( $($arg:expr),* $(,)? ) )*
            ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        $vis struct $name {
            $( $(#[$fmeta])* $fvis $field : $ty, )*
        }

        impl $crate::storage::Record for $name {
            const MODEL: &'static str = $model;

            fn table() -> $crate::schema::Table {
                let mut fields = ::std::vec::Vec::new();
                $(
                    if $column != "id" {
                        fields.push(
                            $crate::storage::record_field::<$ty>($column)
                                $( . $setting ( $($arg),* ) )*
                        );
                    }
                )*
                $crate::schema::Table::new($model, fields)
            }

            fn into_row(self) -> $crate::storage::Row {
                let mut row = $crate::storage::Row::new();
                $(
                    let value = $crate::storage::FieldValue::into_value(self.$field);
                    let empty_id = $column == "id"
                        && value == $crate::storage::Value::String(::std::string::String::new());
                    if !empty_id {
                        row.set($column, value);
                    }
                )*
                row
            }

            fn from_row(
                mut row: $crate::storage::Row,
            ) -> ::std::result::Result<Self, $crate::storage::StorageError> {
                ::std::result::Result::Ok(Self {
                    $( $field: $crate::storage::take_field::<$ty>(&mut row, $model, $column)?, )*
                })
            }
        }
    };
}
