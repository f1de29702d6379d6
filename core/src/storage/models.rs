//! Typed core models and the helpers that read and write them through any [`Adapter`].

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Map;

use super::hooks::{AfterCommit, DbHooks, DbOp};
use super::{Adapter, Direction, Join, Op, Query, Row, StorageError, Transaction, Value, Where};
use crate::context::Ctx;
use crate::time::serde_iso;

/// A user, as stored and as sent to clients (`{id, name, email, emailVerified, image,
/// createdAt, updatedAt, ...additional fields}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    /// Display name.
    pub name: String,
    /// Email, lowercased.
    pub email: String,
    /// Whether the email has been verified.
    pub email_verified: bool,
    /// Avatar URL.
    pub image: Option<String>,
    /// Creation time.
    #[serde(with = "serde_iso")]
    pub created_at: DateTime<Utc>,
    /// Last update time.
    #[serde(with = "serde_iso")]
    pub updated_at: DateTime<Utc>,
    /// Fields added by plugins or configuration. A key that names one of the fields above
    /// is not serialised: the typed field is the user's.
    #[serde(flatten, serialize_with = "user_extra")]
    pub extra: Map<String, serde_json::Value>,
    /// Row id. Serialised last, after the added fields, where Better Auth's adapter puts it.
    pub id: String,
    /// Added fields that are never sent to clients (`returned: false`).
    #[serde(skip)]
    pub hidden: Map<String, serde_json::Value>,
}

/// A session (`{id, token, userId, expiresAt, createdAt, updatedAt, ipAddress, userAgent}`).
/// The raw token is part of it, as in Better Auth's output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Session {
    /// When the session stops being valid.
    #[serde(with = "serde_iso")]
    pub expires_at: DateTime<Utc>,
    /// The 32-character session token (the cookie carries its signed form).
    pub token: String,
    /// Creation time (freshness is measured from it).
    #[serde(with = "serde_iso")]
    pub created_at: DateTime<Utc>,
    /// Last refresh.
    #[serde(with = "serde_iso")]
    pub updated_at: DateTime<Utc>,
    /// Client address at creation, `""` when unknown.
    pub ip_address: Option<String>,
    /// Client user agent at creation, `""` when absent.
    pub user_agent: Option<String>,
    /// Owner.
    pub user_id: String,
    /// Fields added by plugins or configuration. A key that names one of the fields above
    /// is not serialised: the typed field is the session's.
    #[serde(flatten, serialize_with = "session_extra")]
    pub extra: Map<String, serde_json::Value>,
    /// Row id. Serialised last, after the added fields, where Better Auth's adapter puts it.
    pub id: String,
    /// Added fields that are never sent to clients (`returned: false`).
    #[serde(skip)]
    pub hidden: Map<String, serde_json::Value>,
}

/// A session with its user, what get-session answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionAndUser {
    /// The session.
    pub session: Session,
    /// Its user.
    pub user: User,
}

impl User {
    /// A field a plugin or the application added to users, by its typed key: `None` when the
    /// row does not have it (or not with the key's type).
    pub fn get<T: super::FieldValue>(&self, key: super::FieldKey<T>) -> Option<T> {
        key.read(&self.extra).or_else(|| key.read(&self.hidden))
    }

    /// The wire names of the user's own fields (everything else is in `extra`).
    pub const FIELDS: [&'static str; 7] = [
        "id",
        "name",
        "email",
        "emailVerified",
        "image",
        "createdAt",
        "updatedAt",
    ];
}

impl Session {
    /// A field a plugin or the application added to sessions, by its typed key: `None` when
    /// the row does not have it (or not with the key's type).
    pub fn get<T: super::FieldValue>(&self, key: super::FieldKey<T>) -> Option<T> {
        key.read(&self.extra).or_else(|| key.read(&self.hidden))
    }

    /// The wire names of the session's own fields (everything else is in `extra`).
    pub const FIELDS: [&'static str; 8] = [
        "id",
        "expiresAt",
        "token",
        "createdAt",
        "updatedAt",
        "ipAddress",
        "userAgent",
        "userId",
    ];
}

/// Serialises the added fields, leaving out any named like one of the model's own: serde
/// would write such a key twice, and a reader keeping the first or the last would disagree.
fn extra_without<S: serde::Serializer>(
    extra: &Map<String, serde_json::Value>,
    own: &[&str],
    s: S,
) -> Result<S::Ok, S::Error> {
    s.collect_map(extra.iter().filter(|(k, _)| !own.contains(&k.as_str())))
}

fn user_extra<S: serde::Serializer>(
    extra: &Map<String, serde_json::Value>,
    s: S,
) -> Result<S::Ok, S::Error> {
    extra_without(extra, &User::FIELDS, s)
}

fn session_extra<S: serde::Serializer>(
    extra: &Map<String, serde_json::Value>,
    s: S,
) -> Result<S::Ok, S::Error> {
    extra_without(extra, &Session::FIELDS, s)
}

/// Reads a core model's fields out of a [`Row`] by moving them, with the checks its serde
/// form makes (a required field present and not null, each of its type), without a JSON round
/// trip. Fields the model does not name go to `extra` as JSON. Timestamps keep millisecond
/// precision, as the stored ISO text does.
struct FromRow {
    model: &'static str,
    extra: Map<String, serde_json::Value>,
}

impl FromRow {
    fn new(model: &'static str) -> Self {
        Self {
            model,
            extra: Map::new(),
        }
    }

    fn bad(&self, field: &str, reason: &str) -> StorageError {
        StorageError::Decode {
            model: self.model.into(),
            field: field.into(),
            reason: reason.into(),
        }
    }

    fn required<T>(&self, field: &str, value: Option<T>) -> Result<T, StorageError> {
        value.ok_or_else(|| self.bad(field, "missing"))
    }

    // A `Value::Json` holding the right kind is accepted too (a `json`/`jsonb` column on
    // PostgreSQL decodes to one whatever the field's type), as the serde form did.

    fn string(&self, field: &str, value: Value) -> Result<String, StorageError> {
        match value {
            Value::String(s) | Value::Json(serde_json::Value::String(s)) => Ok(s),
            _ => Err(self.bad(field, "not text")),
        }
    }

    fn optional_string(&self, field: &str, value: Value) -> Result<Option<String>, StorageError> {
        match value {
            Value::Null | Value::Json(serde_json::Value::Null) => Ok(None),
            other => self.string(field, other).map(Some),
        }
    }

    fn boolean(&self, field: &str, value: Value) -> Result<bool, StorageError> {
        match value {
            Value::Bool(b) | Value::Json(serde_json::Value::Bool(b)) => Ok(b),
            _ => Err(self.bad(field, "not a boolean")),
        }
    }

    /// A stored timestamp to millisecond precision (what the serde form's ISO text kept);
    /// one given as text, at the precision the text has.
    fn date(&self, field: &str, value: Value) -> Result<DateTime<Utc>, StorageError> {
        let t = match value {
            Value::Date(t) => DateTime::from_timestamp_millis(t.timestamp_millis()),
            Value::String(s) | Value::Json(serde_json::Value::String(s)) => crate::time::parse(&s),
            _ => None,
        };
        t.ok_or_else(|| self.bad(field, "not a timestamp"))
    }

    fn other(&mut self, field: String, value: Value) {
        self.extra.insert(field, value.into_json());
    }
}

impl User {
    fn from_row(row: Row) -> Result<Self, StorageError> {
        let mut d = FromRow::new("user");
        let (mut id, mut name, mut email, mut verified) = (None, None, None, None);
        let (mut image, mut created, mut updated) = (None, None, None);
        for (field, value) in row {
            match field.as_str() {
                "id" => id = Some(d.string(&field, value)?),
                "name" => name = Some(d.string(&field, value)?),
                "email" => email = Some(d.string(&field, value)?),
                "emailVerified" => verified = Some(d.boolean(&field, value)?),
                "image" => image = d.optional_string(&field, value)?,
                "createdAt" => created = Some(d.date(&field, value)?),
                "updatedAt" => updated = Some(d.date(&field, value)?),
                _ => d.other(field, value),
            }
        }
        Ok(Self {
            id: d.required("id", id)?,
            name: d.required("name", name)?,
            email: d.required("email", email)?,
            email_verified: d.required("emailVerified", verified)?,
            image,
            created_at: d.required("createdAt", created)?,
            updated_at: d.required("updatedAt", updated)?,
            extra: d.extra,
            hidden: Map::new(),
        })
    }
}

impl Session {
    fn from_row(row: Row) -> Result<Self, StorageError> {
        let mut d = FromRow::new("session");
        let (mut id, mut token, mut user_id, mut expires) = (None, None, None, None);
        let (mut created, mut updated, mut ip, mut agent) = (None, None, None, None);
        for (field, value) in row {
            match field.as_str() {
                "id" => id = Some(d.string(&field, value)?),
                "token" => token = Some(d.string(&field, value)?),
                "userId" => user_id = Some(d.string(&field, value)?),
                "expiresAt" => expires = Some(d.date(&field, value)?),
                "createdAt" => created = Some(d.date(&field, value)?),
                "updatedAt" => updated = Some(d.date(&field, value)?),
                "ipAddress" => ip = d.optional_string(&field, value)?,
                "userAgent" => agent = d.optional_string(&field, value)?,
                _ => d.other(field, value),
            }
        }
        Ok(Self {
            id: d.required("id", id)?,
            expires_at: d.required("expiresAt", expires)?,
            token: d.required("token", token)?,
            created_at: d.required("createdAt", created)?,
            updated_at: d.required("updatedAt", updated)?,
            ip_address: ip,
            user_agent: agent,
            user_id: d.required("userId", user_id)?,
            extra: d.extra,
            hidden: Map::new(),
        })
    }
}

/// A linked account: a password (`providerId = "credential"`) or a social provider.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Account {
    /// Row id.
    pub id: String,
    /// The provider's id for the user; the user id for credential accounts.
    pub account_id: String,
    /// `credential`, `github`, `google`, ...
    pub provider_id: String,
    /// Owner.
    pub user_id: String,
    /// OAuth access token.
    pub access_token: Option<String>,
    /// OAuth refresh token.
    pub refresh_token: Option<String>,
    /// OpenID id token.
    pub id_token: Option<String>,
    /// Access token expiry.
    #[serde(default, with = "serde_iso::option")]
    pub access_token_expires_at: Option<DateTime<Utc>>,
    /// Refresh token expiry.
    #[serde(default, with = "serde_iso::option")]
    pub refresh_token_expires_at: Option<DateTime<Utc>>,
    /// Granted scopes, comma-separated.
    pub scope: Option<String>,
    /// Password hash (credential accounts only). Never sent to clients.
    pub password: Option<String>,
    /// Creation time.
    #[serde(with = "serde_iso")]
    pub created_at: DateTime<Utc>,
    /// Last update time.
    #[serde(with = "serde_iso")]
    pub updated_at: DateTime<Utc>,
    /// Fields added by plugins or configuration.
    #[serde(flatten)]
    pub extra: Map<String, serde_json::Value>,
}

impl Account {
    /// A new password account for `user_id` (`providerId = "credential"`, `accountId` = the
    /// user id, as Better Auth stores it) holding `hash`.
    pub fn credential(id: String, user_id: &str, hash: String) -> Self {
        let now = crate::time::now();
        Self {
            id,
            account_id: user_id.to_owned(),
            provider_id: CREDENTIAL_PROVIDER.to_owned(),
            user_id: user_id.to_owned(),
            access_token: None,
            refresh_token: None,
            id_token: None,
            access_token_expires_at: None,
            refresh_token_expires_at: None,
            scope: None,
            password: Some(hash),
            created_at: now,
            updated_at: now,
            extra: Map::new(),
        }
    }
}

/// A verification row: a purpose-bound value (`identifier`) with an expiry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Verification {
    /// Row id.
    pub id: String,
    /// What it verifies, e.g. `reset-password:<token>`.
    pub identifier: String,
    /// The value bound to it, e.g. a user id.
    pub value: String,
    /// Expiry.
    #[serde(with = "serde_iso")]
    pub expires_at: DateTime<Utc>,
    /// Creation time.
    #[serde(with = "serde_iso")]
    pub created_at: DateTime<Utc>,
    /// Last update time.
    #[serde(with = "serde_iso")]
    pub updated_at: DateTime<Utc>,
}

/// Typed reads and writes of the core models over any adapter (the pool or a transaction).
///
/// Every write goes through the engine's database hooks ([`DbHook`](super::DbHook)). Get one
/// from [`Ctx::store`] while serving a request (hooks then see the request),
/// [`Tx::store`] inside a transaction, or [`Auth::store`](crate::Auth::store) elsewhere.
#[derive(Clone, Copy)]
pub struct Store<'a> {
    db: &'a dyn Adapter,
    schema: &'a crate::schema::Schema,
    hooks: &'a DbHooks,
    ctx: Option<&'a Ctx>,
    deferred: Option<&'a AfterCommit>,
}

/// The provider id of password accounts.
pub const CREDENTIAL_PROVIDER: &str = "credential";

impl<'a> Store<'a> {
    /// Typed helpers over `db`, mapping through `schema`, with no database hooks (for tools
    /// and tests that use an adapter without an engine).
    pub fn new(db: &'a dyn Adapter, schema: &'a crate::schema::Schema) -> Self {
        Self {
            db,
            schema,
            hooks: &super::hooks::NO_HOOKS,
            ctx: None,
            deferred: None,
        }
    }

    pub(crate) fn with_hooks(
        db: &'a dyn Adapter,
        schema: &'a crate::schema::Schema,
        hooks: &'a DbHooks,
        ctx: Option<&'a Ctx>,
        deferred: Option<&'a AfterCommit>,
    ) -> Self {
        Self {
            db,
            schema,
            hooks,
            ctx,
            deferred,
        }
    }

    /// The adapter underneath, for models of a plugin's own (no database hooks run there).
    pub fn adapter(&self) -> &'a dyn Adapter {
        self.db
    }

    /// Inserts `row` into `model` (any model of the schema, a plugin's own included) through
    /// the database hooks; the row as stored. Fields the row leaves out get the schema's
    /// defaults, on every database, and an `id` is generated when the row has none.
    pub async fn create(&self, model: &str, row: Row) -> Result<Row, StorageError> {
        self.insert_row(model, row).await
    }

    /// The first `model` row matching `filter`.
    pub async fn find_one(
        &self,
        model: &str,
        filter: &[Where],
    ) -> Result<Option<Row>, StorageError> {
        self.db.find_one(model, filter).await
    }

    /// The `model` rows matching `query`.
    pub async fn find_many(&self, model: &str, query: &Query) -> Result<Vec<Row>, StorageError> {
        self.db.find_many(model, query).await
    }

    /// How many `model` rows match `filter`.
    pub async fn count(&self, model: &str, filter: &[Where]) -> Result<u64, StorageError> {
        self.db.count(model, filter).await
    }

    /// Sets `set` on the `model` row matching `filter`, through the database hooks; the row
    /// as stored, or `None` when none matched.
    pub async fn update(
        &self,
        model: &str,
        filter: &[Where],
        set: Row,
    ) -> Result<Option<Row>, StorageError> {
        self.update_row(model, filter, set).await
    }

    /// Sets `set` on every `model` row matching `filter`, through the database hooks; how
    /// many rows changed. With update hooks registered for `model`, the before hooks see
    /// `set` once, the rows are then updated one by one (by id), and each gets its after
    /// hooks; without, it is one statement.
    pub async fn update_many(
        &self,
        model: &str,
        filter: &[Where],
        set: Row,
    ) -> Result<u64, StorageError> {
        if !self.hooks.any(model, DbOp::Update) {
            return self.db.update_many(model, filter, set).await;
        }
        let rows = self
            .db
            .find_many(model, &Query::filter(filter.to_vec()))
            .await?;
        let set = self
            .hooks
            .before(model, DbOp::Update, set, self.ctx)
            .await
            .map_err(StorageError::Rejected)?;
        let mut updated = 0;
        let mut first_error = None;
        for row in rows {
            let Some(id) = row.get("id").cloned() else {
                continue;
            };
            // The filter again, so a row changed in between so it no longer matches stays.
            let mut by_id = filter.to_vec();
            by_id.push(Where::eq("id", id));
            if let Some(stored) = self.db.update(model, &by_id, set.clone()).await? {
                updated += 1;
                if let Err(e) = self.after(model, DbOp::Update, &stored).await {
                    first_error.get_or_insert(e);
                }
            }
        }
        first_error.map_or(Ok(updated), Err)
    }

    /// Deletes every `model` row matching `filter`, through the database hooks; how many.
    pub async fn delete_many(&self, model: &str, filter: &[Where]) -> Result<u64, StorageError> {
        self.delete_rows(model, filter).await
    }

    /// Inserts a plugin's record through the database hooks (defaults filled, an empty `id`
    /// generated); the record as stored.
    pub async fn insert<R: super::Record>(&self, record: R) -> Result<R, StorageError> {
        R::from_row(self.insert_row(R::MODEL, record.into_row()).await?)
    }

    /// The first record matching `filter`.
    pub async fn find<R: super::Record>(
        &self,
        filter: &[Where],
    ) -> Result<Option<R>, StorageError> {
        self.db
            .find_one(R::MODEL, filter)
            .await?
            .map(R::from_row)
            .transpose()
    }

    /// The records matching `query`.
    pub async fn find_all<R: super::Record>(&self, query: &Query) -> Result<Vec<R>, StorageError> {
        self.db
            .find_many(R::MODEL, query)
            .await?
            .into_iter()
            .map(R::from_row)
            .collect()
    }

    /// Inserts `row` into `model` through the hooks; the row as stored.
    async fn insert_row(&self, model: &str, row: Row) -> Result<Row, StorageError> {
        if !self.hooks.any(model, DbOp::Create) {
            return self.db.create(model, row).await;
        }
        let row = self
            .hooks
            .before(model, DbOp::Create, row, self.ctx)
            .await
            .map_err(StorageError::Rejected)?;
        let stored = self.db.create(model, row).await?;
        self.after(model, DbOp::Create, &stored).await?;
        Ok(stored)
    }

    /// Updates the `model` row matching `filter` through the hooks; the row as stored.
    async fn update_row(
        &self,
        model: &str,
        filter: &[Where],
        set: Row,
    ) -> Result<Option<Row>, StorageError> {
        if !self.hooks.any(model, DbOp::Update) {
            return self.db.update(model, filter, set).await;
        }
        let set = self
            .hooks
            .before(model, DbOp::Update, set, self.ctx)
            .await
            .map_err(StorageError::Rejected)?;
        let stored = self.db.update(model, filter, set).await?;
        if let Some(row) = &stored {
            self.after(model, DbOp::Update, row).await?;
        }
        Ok(stored)
    }

    /// Deletes the `model` rows matching `filter` through the hooks; how many. With delete
    /// hooks the rows are read first, so each hook sees the row it is about; then each is
    /// deleted by id, so a row another caller deleted in between gets no after hook from this
    /// call, and a row that appeared in between is not deleted unseen.
    async fn delete_rows(&self, model: &str, filter: &[Where]) -> Result<u64, StorageError> {
        if !self.hooks.any(model, DbOp::Delete) {
            return self.db.delete_many(model, filter).await;
        }
        let rows = self
            .db
            .find_many(model, &Query::filter(filter.to_vec()))
            .await?;
        for row in &rows {
            self.hooks
                .before(model, DbOp::Delete, row.clone(), self.ctx)
                .await
                .map_err(StorageError::Rejected)?;
        }
        let mut deleted = 0;
        let mut first_error = None;
        for row in &rows {
            let Some(id) = row.get("id").cloned() else {
                continue;
            };
            if self.db.delete_many(model, &[Where::eq("id", id)]).await? == 1 {
                deleted += 1;
                // Every deleted row gets its after hooks, even when one of them fails.
                if let Err(e) = self.after(model, DbOp::Delete, row).await {
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(deleted),
        }
    }

    async fn after(&self, model: &str, op: DbOp, row: &Row) -> Result<(), StorageError> {
        self.hooks
            .after(model, op, row, self.ctx, self.deferred)
            .await
            .map_err(StorageError::Rejected)
    }

    fn row_of<T: Serialize>(&self, model: &str, value: &T) -> Result<Row, StorageError> {
        self.row_with(model, value, &Map::new())
    }

    /// The row for a new `value`: its fields, its hidden fields, and the defaults of fields it
    /// leaves out.
    fn row_with<T: Serialize>(
        &self,
        model: &str,
        value: &T,
        hidden: &Map<String, serde_json::Value>,
    ) -> Result<Row, StorageError> {
        let table = self
            .schema
            .table(model)
            .ok_or_else(|| StorageError::Unknown(model.into()))?;
        let mut map = match serde_json::to_value(value) {
            Ok(serde_json::Value::Object(map)) => map,
            Ok(_) | Err(_) => return Err(StorageError::Unknown(format!("{model}: not an object"))),
        };
        map.extend(hidden.iter().map(|(k, v)| (k.clone(), v.clone())));
        for f in &table.fields {
            if let (false, Some(default)) = (map.contains_key(&f.name), &f.default) {
                map.insert(f.name.clone(), default.to_json());
            }
        }
        Row::from_json(table, map)
    }

    /// Moves fields declared `returned: false` out of `extra`, so serialising never sends them.
    fn hide(
        &self,
        model: &str,
        extra: &mut Map<String, serde_json::Value>,
        hidden: &mut Map<String, serde_json::Value>,
    ) {
        let Some(table) = self.schema.table(model) else {
            return;
        };
        for f in table.fields.iter().filter(|f| !f.returned) {
            if let Some(v) = extra.remove(&f.name) {
                hidden.insert(f.name.clone(), v);
            }
        }
    }

    fn user(&self, row: Row) -> Result<User, StorageError> {
        let mut u = User::from_row(row)?;
        self.hide("user", &mut u.extra, &mut u.hidden);
        Ok(u)
    }

    fn session(&self, row: Row) -> Result<Session, StorageError> {
        let mut s = Session::from_row(row)?;
        self.hide("session", &mut s.extra, &mut s.hidden);
        Ok(s)
    }

    /// Inserts a user.
    pub async fn create_user(&self, user: &User) -> Result<User, StorageError> {
        let row = self.row_with("user", user, &user.hidden)?;
        self.user(self.insert_row("user", row).await?)
    }

    /// The user with `id`.
    pub async fn user_by_id(&self, id: &str) -> Result<Option<User>, StorageError> {
        let row = self.db.find_one("user", &[Where::eq("id", id)]).await?;
        row.map(|r| self.user(r)).transpose()
    }

    /// The user with `email` (compared as stored: lowercase it first).
    pub async fn user_by_email(&self, email: &str) -> Result<Option<User>, StorageError> {
        let row = self
            .db
            .find_one("user", &[Where::eq("email", email)])
            .await?;
        row.map(|r| self.user(r)).transpose()
    }

    /// Updates fields of a user (and `updatedAt`); returns the user as stored.
    pub async fn update_user(&self, id: &str, mut set: Row) -> Result<Option<User>, StorageError> {
        if set.get("updatedAt").is_none() {
            set.set("updatedAt", crate::time::now());
        }
        let row = self.update_row("user", &[Where::eq("id", id)], set).await?;
        row.map(|r| self.user(r)).transpose()
    }

    /// Inserts an account.
    pub async fn create_account(&self, account: &Account) -> Result<Account, StorageError> {
        let row = self.row_of("account", account)?;
        self.insert_row("account", row).await?.decode("account")
    }

    /// The user's password account (`providerId = credential`, `accountId = userId`).
    pub async fn credential_account(&self, user_id: &str) -> Result<Option<Account>, StorageError> {
        let row = self
            .db
            .find_one(
                "account",
                &[
                    Where::eq("userId", user_id),
                    Where::eq("providerId", CREDENTIAL_PROVIDER),
                    Where::eq("accountId", user_id),
                ],
            )
            .await?;
        row.map(|r| r.decode("account")).transpose()
    }

    /// All accounts of a user.
    pub async fn accounts_of(&self, user_id: &str) -> Result<Vec<Account>, StorageError> {
        let q = Query::filter(vec![Where::eq("userId", user_id)]);
        let rows = self.db.find_many("account", &q).await?;
        rows.iter().map(|r| r.decode("account")).collect()
    }

    /// Replaces the password hash of the user's credential account.
    pub async fn set_password(&self, account_id: &str, hash: &str) -> Result<(), StorageError> {
        let set = Row::new()
            .with("password", hash)
            .with("updatedAt", crate::time::now());
        self.update_row("account", &[Where::eq("id", account_id)], set)
            .await?;
        Ok(())
    }

    /// Inserts a session.
    pub async fn create_session(&self, session: &Session) -> Result<Session, StorageError> {
        let row = self.row_with("session", session, &session.hidden)?;
        self.session(self.insert_row("session", row).await?)
    }

    /// The session with `token` and its user, in one read. Expired sessions are returned too;
    /// callers check `expiresAt`.
    pub async fn session_and_user(
        &self,
        token: &str,
    ) -> Result<Option<SessionAndUser>, StorageError> {
        let join = Join {
            model: "user",
            local_field: "userId",
            foreign_field: "id",
        };
        let found = self
            .db
            .find_one_joined("session", &[Where::eq("token", token)], join)
            .await?;
        found
            .map(|(s, u)| {
                Ok(SessionAndUser {
                    session: self.session(s)?,
                    user: self.user(u)?,
                })
            })
            .transpose()
    }

    /// The user's sessions that have not expired, oldest first.
    pub async fn active_sessions(&self, user_id: &str) -> Result<Vec<Session>, StorageError> {
        let q = Query {
            filter: vec![
                Where::eq("userId", user_id),
                Where::new("expiresAt", Op::Gt, crate::time::now()),
            ],
            // Oldest first. Better Auth asks for no order and gets the database's own: insertion
            // order on SQLite, which is this order, but the primary key's (random ids) on MySQL.
            sort: Some(("createdAt".into(), Direction::Asc)),
            ..Query::default()
        };
        let rows = self.db.find_many("session", &q).await?;
        rows.into_iter().map(|r| self.session(r)).collect()
    }

    /// Updates a session's fields by token; returns it as stored.
    pub async fn update_session(
        &self,
        token: &str,
        set: Row,
    ) -> Result<Option<Session>, StorageError> {
        let row = self
            .update_row("session", &[Where::eq("token", token)], set)
            .await?;
        row.map(|r| self.session(r)).transpose()
    }

    /// Deletes the session with `token`.
    pub async fn delete_session(&self, token: &str) -> Result<u64, StorageError> {
        self.delete_rows("session", &[Where::eq("token", token)])
            .await
    }

    /// Deletes the session with `token` if it belongs to `user_id`.
    pub async fn delete_session_of(&self, user_id: &str, token: &str) -> Result<u64, StorageError> {
        let filter = [Where::eq("token", token), Where::eq("userId", user_id)];
        self.delete_rows("session", &filter).await
    }

    /// Deletes every session of a user, except the one with token `keep` when given.
    pub async fn delete_user_sessions(
        &self,
        user_id: &str,
        keep: Option<&str>,
    ) -> Result<u64, StorageError> {
        let mut filter = vec![Where::eq("userId", user_id)];
        if let Some(token) = keep {
            filter.push(Where::new("token", Op::Ne, token));
        }
        self.delete_rows("session", &filter).await
    }

    /// Deletes a user with its sessions and accounts; whether the user existed. Run it in a
    /// transaction ([`Tx`]), so a refusal part-way deletes nothing.
    pub async fn delete_user(&self, user_id: &str) -> Result<bool, StorageError> {
        let owned = [Where::eq("userId", user_id)];
        self.delete_rows("session", &owned).await?;
        self.delete_rows("account", &owned).await?;
        let deleted = self
            .delete_rows("user", &[Where::eq("id", user_id)])
            .await?;
        Ok(deleted > 0)
    }

    /// Inserts a verification row.
    pub async fn create_verification(
        &self,
        verification: &Verification,
    ) -> Result<Verification, StorageError> {
        let row = self.row_of("verification", verification)?;
        self.insert_row("verification", row)
            .await?
            .decode("verification")
    }

    /// The newest verification row with exactly `identifier` (expired or not: callers check
    /// `expiresAt`).
    pub async fn verification_by_identifier(
        &self,
        identifier: &str,
    ) -> Result<Option<Verification>, StorageError> {
        let q = Query {
            filter: vec![Where::eq("identifier", identifier)],
            sort: Some(("createdAt".into(), Direction::Desc)),
            limit: Some(1),
            offset: None,
        };
        let rows = self.db.find_many("verification", &q).await?;
        let found: Option<Verification> =
            rows.first().map(|r| r.decode("verification")).transpose()?;
        // MySQL compares text case-insensitively by default: only the exact identifier counts,
        // so a token with its letters' case changed is no token on any database.
        Ok(found.filter(|v| v.identifier == identifier))
    }

    /// Consumes a verification row: deletes it and answers whether this call was the one
    /// that deleted it (`true` exactly once however many callers race for the same row).
    /// Other rows with the same identifier are deleted too, so an older one cannot be
    /// replayed. Run it inside the transaction whose writes the row authorises.
    pub async fn consume_verification(
        &self,
        verification: &Verification,
    ) -> Result<bool, StorageError> {
        let deleted = self
            .delete_rows(
                "verification",
                &[
                    Where::eq("id", verification.id.as_str()),
                    Where::eq("identifier", verification.identifier.as_str()),
                ],
            )
            .await?;
        if deleted != 1 {
            return Ok(false);
        }
        self.delete_verifications(&verification.identifier).await?;
        Ok(true)
    }

    /// Deletes every verification row with `identifier`; returns how many.
    pub async fn delete_verifications(&self, identifier: &str) -> Result<u64, StorageError> {
        self.delete_rows("verification", &[Where::eq("identifier", identifier)])
            .await
    }

    /// Deletes every verification row matching `filter` (a plugin's family of rows, say);
    /// returns how many.
    pub async fn delete_verifications_where(&self, filter: &[Where]) -> Result<u64, StorageError> {
        self.delete_rows("verification", filter).await
    }

    /// Deletes the user's outstanding password-reset and account-deletion links, pending
    /// two-factor challenges and trusted devices (verification rows `reset-password:*`,
    /// `delete-account-*`, `2fa-*`, `trust-device-*` whose value is the user id); returns how
    /// many. The engine runs it, in the same transaction, whenever a password
    /// is reset, changed or set and whenever the email changes: a link mailed before the change
    /// must not act after it. A plugin that changes those things should run it too.
    pub async fn revoke_user_tokens(&self, user_id: &str) -> Result<u64, StorageError> {
        let mut filter = vec![Where::eq("value", user_id)];
        filter.extend(
            USER_TOKEN_PREFIXES
                .iter()
                .map(|p| Where::new("identifier", Op::StartsWith, *p).or()),
        );
        self.delete_rows("verification", &filter).await
    }

    /// Deletes every verification row that has expired; returns how many.
    pub async fn delete_expired_verifications(&self) -> Result<u64, StorageError> {
        self.delete_rows(
            "verification",
            &[Where::new("expiresAt", Op::Lt, crate::time::now())],
        )
        .await
    }
}

/// Identifier prefixes of the verification rows that act for a user on the strength of the
/// account's present password and address, with the user id as their value: password-reset
/// links (`reset-password:<token>`), account-deletion links (`delete-account-<token>`), and
/// the two-factor plugin's pending sign-in challenges (`2fa-<id>`, a password already given)
/// and trusted devices (`trust-device-<id>`). [`Store::revoke_user_tokens`] deletes them.
const USER_TOKEN_PREFIXES: [&str; 4] = [
    "reset-password:",
    "delete-account-",
    "2fa-",
    "trust-device-",
];

/// A transaction whose writes go through the engine's database hooks: before hooks run as
/// each write is made, after hooks once [`Tx::commit`] has committed (never, if the
/// transaction is dropped and so rolled back). Get one from [`Ctx::begin`] or
/// [`Auth::begin`](crate::Auth::begin).
pub struct Tx<'a> {
    inner: Box<dyn Transaction>,
    schema: &'a crate::schema::Schema,
    hooks: &'a DbHooks,
    ctx: Option<&'a Ctx>,
    deferred: AfterCommit,
}

impl std::fmt::Debug for Tx<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tx").finish_non_exhaustive()
    }
}

impl<'a> Tx<'a> {
    pub(crate) fn new(
        inner: Box<dyn Transaction>,
        schema: &'a crate::schema::Schema,
        hooks: &'a DbHooks,
        ctx: Option<&'a Ctx>,
    ) -> Self {
        Self {
            inner,
            schema,
            hooks,
            ctx,
            deferred: AfterCommit::default(),
        }
    }

    /// Typed helpers for the core models inside this transaction.
    pub fn store(&self) -> Store<'_> {
        Store::with_hooks(
            self.inner.as_ref(),
            self.schema,
            self.hooks,
            self.ctx,
            Some(&self.deferred),
        )
    }

    /// The transaction as an adapter, for models of a plugin's own.
    pub fn adapter(&self) -> &dyn Adapter {
        self.inner.as_ref()
    }

    /// Commits every write, then runs the after hooks they queued, in order. An after hook's
    /// error is returned (as [`StorageError::Rejected`]) though the writes stay committed.
    pub async fn commit(self) -> Result<(), StorageError> {
        self.inner.commit().await?;
        self.deferred
            .run(self.ctx)
            .await
            .map_err(StorageError::Rejected)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn at(s: &str) -> Value {
        Value::Date(crate::time::parse(s).unwrap())
    }

    fn user_row() -> Row {
        Row::new()
            .with("id", "u1")
            .with("name", "Ada")
            .with("email", "ada@example.com")
            .with("emailVerified", true)
            .with("image", Value::Null)
            .with("createdAt", at("2026-11-27T09:34:31.049Z"))
            .with("updatedAt", "2026-11-27T10:00:00.5+01:00")
            .with("twoFactorEnabled", false)
            .with("plan", Value::Int(3))
    }

    fn session_row() -> Row {
        Row::new()
            .with("id", "s1")
            .with("expiresAt", at("2026-12-04T09:34:31.049123Z"))
            .with("token", "t0k3n")
            .with("createdAt", at("2026-11-27T09:34:31Z"))
            .with("updatedAt", at("2026-11-27T09:34:31Z"))
            .with("ipAddress", "127.0.0.1")
            .with("userAgent", Value::Null)
            .with("userId", "u1")
            .with("activeOrganizationId", Value::Null)
    }

    /// The direct decoders agree with the serde form of the models (the JSON round trip they
    /// replace) on rows it accepts, and refuse what it refuses.
    #[test]
    fn rows_decode_as_the_serde_form_does() {
        let direct = User::from_row(user_row()).unwrap();
        assert_eq!(direct, user_row().decode::<User>("user").unwrap());
        assert_eq!(direct.image, None);
        assert_eq!(direct.extra["plan"], serde_json::json!(3));
        assert_eq!(direct.extra["twoFactorEnabled"], serde_json::json!(false));
        assert_eq!(
            crate::time::format(&direct.updated_at),
            "2026-11-27T09:00:00.500Z"
        );

        let direct = Session::from_row(session_row()).unwrap();
        assert_eq!(direct, session_row().decode::<Session>("session").unwrap());
        // Millisecond precision, as the stored ISO text has it.
        assert_eq!(
            crate::time::format(&direct.expires_at),
            "2026-12-04T09:34:31.049Z"
        );
        assert_eq!(direct.expires_at.timestamp_subsec_nanos(), 49_000_000);
        assert_eq!(direct.user_agent, None);
        assert_eq!(
            direct.extra["activeOrganizationId"],
            serde_json::Value::Null
        );

        // Without the optional fields at all.
        let mut row = user_row();
        row.remove("image");
        assert_eq!(User::from_row(row).unwrap().image, None);
    }

    /// A `json`/`jsonb` column decodes to `Value::Json` whatever the field's type; holding
    /// the right kind, it reads as the serde form read it.
    #[test]
    fn json_values_of_the_right_kind_decode() {
        use serde_json::json;
        let row = user_row()
            .with("name", Value::Json(json!("Ada")))
            .with("emailVerified", Value::Json(json!(true)))
            .with("image", Value::Json(json!(null)))
            .with("createdAt", Value::Json(json!("2026-11-27T09:34:31.049Z")));
        let direct = User::from_row(row.clone()).unwrap();
        assert_eq!(direct, row.decode::<User>("user").unwrap());
        assert_eq!(direct.name, "Ada");
        assert!(direct.email_verified);
        let wrong = user_row().with("emailVerified", Value::Json(json!("true")));
        assert!(User::from_row(wrong).is_err());
        // A timestamp given as text keeps the text's precision, as before.
        let row = session_row().with("expiresAt", "2026-12-04T09:34:31.049123Z");
        let direct = Session::from_row(row.clone()).unwrap();
        assert_eq!(direct.expires_at.timestamp_subsec_micros(), 49_123);
        assert_eq!(direct, row.decode::<Session>("session").unwrap());
    }

    /// An added field named like one of the model's own is not sent twice: the typed field
    /// is what goes out, and the reply reads back.
    #[test]
    fn extra_fields_never_shadow_the_models_own() {
        let mut both = SessionAndUser {
            session: Session::from_row(session_row()).unwrap(),
            user: User::from_row(user_row()).unwrap(),
        };
        both.user
            .extra
            .insert("name".into(), serde_json::json!("Mallory"));
        both.session
            .extra
            .insert("token".into(), serde_json::json!("other"));
        let text = serde_json::to_string(&both).unwrap();
        assert_eq!(text.matches("\"name\"").count(), 1, "{text}");
        assert_eq!(text.matches("\"token\"").count(), 1, "{text}");
        let back: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back["user"]["name"], "Ada");
        assert_eq!(back["session"]["token"], "t0k3n");
        assert_eq!(back["user"]["plan"], 3);
        let reply = crate::context::Reply::json(&both);
        let typed: SessionAndUser = reply.into_json().unwrap();
        assert_eq!(typed.user.name, "Ada");
    }

    #[test]
    fn rows_the_models_cannot_hold_are_decode_errors() {
        let broken: Vec<(&str, Row)> = vec![
            ("missing id", {
                let mut r = user_row();
                r.remove("id");
                r
            }),
            ("null email", user_row().with("email", Value::Null)),
            ("number as name", user_row().with("name", Value::Int(7))),
            ("text as boolean", user_row().with("emailVerified", "yes")),
            ("bad timestamp", user_row().with("createdAt", "yesterday")),
            ("number as image", user_row().with("image", Value::Int(1))),
        ];
        for (why, row) in broken {
            assert!(
                row.decode::<User>("user").is_err(),
                "{why}: the serde form accepts it"
            );
            let err = User::from_row(row).unwrap_err();
            assert!(
                matches!(&err, StorageError::Decode { model, .. } if model == "user"),
                "{why}: {err:?}"
            );
        }
        let mut row = session_row();
        row.remove("expiresAt");
        assert!(matches!(
            Session::from_row(row),
            Err(StorageError::Decode { field, .. }) if field == "expiresAt"
        ));
        let row = session_row().with("token", Value::Bool(true));
        assert!(Session::from_row(row).is_err());
    }
}
