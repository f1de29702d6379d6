//! The `twoFactor` row (one per user) and its reads and writes.

use chrono::{DateTime, Utc};
use portcullis::schema::{DefaultValue, OnDelete};
use portcullis::storage::{FieldKey, Op, Row, StorageError, Store, Value, Where};

/// The logical model name.
pub(crate) const MODEL: &str = "twoFactor";

/// Whether the user has turned two-factor authentication on (a field on `user`).
pub(crate) const TWO_FACTOR_ENABLED: FieldKey<bool> = FieldKey::optional("twoFactorEnabled");

portcullis::record! {
    /// A user's two-factor settings. `secret` and `backup_codes` are as stored (encrypted).
    #[derive(Debug, Clone)]
    pub(crate) struct TwoFactorRow in "twoFactor" {
        pub(crate) id: String = "id",
        pub(crate) secret: String = "secret".hidden().index(),
        pub(crate) backup_codes: String = "backupCodes".hidden(),
        pub(crate) user_id: String = "userId"
            .hidden()
            .index()
            .references("user", "id", OnDelete::Cascade),
        /// `None` on rows older than the field: they count as verified.
        pub(crate) verified: Option<bool> = "verified"
            .server_only()
            .default_value(DefaultValue::Bool(true)),
        pub(crate) failed_verification_count: Option<i64> = "failedVerificationCount"
            .server_only()
            .hidden()
            .default_value(DefaultValue::Int(0)),
        pub(crate) locked_until: Option<DateTime<Utc>> = "lockedUntil".server_only().hidden(),
        // Not in Better Auth: the last TOTP time step accepted, so a code is accepted once.
        // Better Auth ignores the extra column.
        pub(crate) last_totp_step: Option<i64> = "lastTotpStep"
            .server_only()
            .hidden()
            .bigint(),
    }
}

impl TwoFactorRow {
    /// Whether the TOTP secret was confirmed with a code (rows without the field were).
    pub(crate) fn is_verified(&self) -> bool {
        self.verified != Some(false)
    }
}

/// The row of `user_id`.
pub(crate) async fn find(
    db: Store<'_>,
    user_id: &str,
) -> Result<Option<TwoFactorRow>, StorageError> {
    db.find(&[Where::eq("userId", user_id)]).await
}

/// Stores a new secret and backup codes for `user_id`, replacing what was there.
pub(crate) async fn upsert(
    db: Store<'_>,
    user_id: &str,
    secret: &str,
    backup_codes: &str,
    verified: bool,
) -> Result<(), StorageError> {
    let set = Row::new()
        .with("secret", secret)
        .with("backupCodes", backup_codes)
        .with("verified", verified)
        .with("failedVerificationCount", 0i64)
        .with("lockedUntil", Value::Null)
        .with("lastTotpStep", Value::Null);
    let updated = db
        .update_many(MODEL, &[Where::eq("userId", user_id)], set.clone())
        .await?;
    if updated == 0 {
        db.create(MODEL, set.with("userId", user_id)).await?;
    }
    Ok(())
}

/// Marks the secret confirmed.
pub(crate) async fn set_verified(db: Store<'_>, id: &str) -> Result<(), StorageError> {
    update_by_id(db, id, Row::new().with("verified", true)).await
}

async fn update_by_id(db: Store<'_>, id: &str, set: Row) -> Result<(), StorageError> {
    db.update_many(MODEL, &[Where::eq("id", id)], set)
        .await
        .map(|_| ())
}

/// Replaces the backup codes if they are still `expected` (compare-and-set): `false` when
/// another request changed them first.
pub(crate) async fn swap_backup_codes(
    db: Store<'_>,
    id: &str,
    expected: &str,
    new: &str,
) -> Result<bool, StorageError> {
    let n = db
        .update_many(
            MODEL,
            &[Where::eq("id", id), Where::eq("backupCodes", expected)],
            Row::new().with("backupCodes", new),
        )
        .await?;
    Ok(n == 1)
}

/// Replaces the backup codes.
pub(crate) async fn set_backup_codes(
    db: Store<'_>,
    id: &str,
    codes: &str,
) -> Result<(), StorageError> {
    update_by_id(db, id, Row::new().with("backupCodes", codes)).await
}

/// Records that the TOTP code of `step` was used, if no code of that step or a later one
/// was: `false` means the code is a replay. Atomic however many requests race.
pub(crate) async fn claim_totp_step(
    db: Store<'_>,
    id: &str,
    step: u64,
) -> Result<bool, StorageError> {
    let step = i64::try_from(step).unwrap_or(i64::MAX);
    let set = Row::new().with("lastTotpStep", step);
    let later = db
        .update_many(
            MODEL,
            &[
                Where::eq("id", id),
                Where::new("lastTotpStep", Op::Lt, step),
            ],
            set.clone(),
        )
        .await?;
    if later == 1 {
        return Ok(true);
    }
    let first = db
        .update_many(
            MODEL,
            &[Where::eq("id", id), Where::eq("lastTotpStep", Value::Null)],
            set,
        )
        .await?;
    Ok(first == 1)
}

/// Deletes the row of `user_id`.
pub(crate) async fn delete(db: Store<'_>, user_id: &str) -> Result<(), StorageError> {
    db.delete_many(MODEL, &[Where::eq("userId", user_id)])
        .await
        .map(|_| ())
}

/// Records one failed verification: counts it, and locks until `now + duration` when the
/// count reaches `max`.
pub(crate) async fn record_failure(
    db: Store<'_>,
    row: &TwoFactorRow,
    max: i64,
    duration: std::time::Duration,
) -> Result<(), StorageError> {
    // Compare-and-set on the count so racing failures each count.
    let mut seen = row.failed_verification_count;
    for _ in 0..5 {
        let next = seen.unwrap_or(0) + 1;
        let mut set = Row::new().with("failedVerificationCount", next);
        if next >= max {
            let until = portcullis::time::now()
                + chrono::Duration::from_std(duration).unwrap_or(chrono::Duration::minutes(15));
            set = set
                .with("lockedUntil", until)
                .with("failedVerificationCount", 0i64);
        }
        let n = db
            .update_many(
                MODEL,
                &[
                    Where::eq("id", row.id.as_str()),
                    Where::eq("failedVerificationCount", Value::from(seen)),
                ],
                set,
            )
            .await?;
        if n == 1 {
            return Ok(());
        }
        seen = find_by_id(db, &row.id)
            .await?
            .and_then(|r| r.failed_verification_count);
    }
    Ok(())
}

/// Clears the failure count and any lock.
pub(crate) async fn reset_failures(db: Store<'_>, row: &TwoFactorRow) -> Result<(), StorageError> {
    if row.failed_verification_count.unwrap_or(0) == 0 && row.locked_until.is_none() {
        return Ok(());
    }
    let set = Row::new()
        .with("failedVerificationCount", 0i64)
        .with("lockedUntil", Value::Null);
    update_by_id(db, &row.id, set).await
}

async fn find_by_id(db: Store<'_>, id: &str) -> Result<Option<TwoFactorRow>, StorageError> {
    db.find(&[Where::eq("id", id)]).await
}
