//! The plugin's endpoints, all `POST` with JSON bodies as the client sends them.

use std::sync::Arc;

use http::StatusCode;
use portcullis::password::PasswordCheck;
use portcullis::plugin::Handlers;
use portcullis::storage::{Row, Session, SessionAndUser, User};
use portcullis::{codes as core, ApiError, Ctx, Endpoint, Reply};
use portcullis::{Shape, Type};
use serde::Deserialize;
use serde_json::json;

use crate::challenge::{self, check_lock, record_failure, Attempt, Verifier};
use crate::row::{self, TwoFactorRow};
use crate::{backup, codes, otp, totp, Shared, TotpEnrollment, Verified};

type S = Arc<Shared>;

pub(crate) fn endpoints(shared: S) -> Vec<Endpoint> {
    let on = Handlers::new(shared.clone());
    // Better Auth's schemas: `password` is optional only with allowPasswordless.
    let password = |shape: Shape| {
        if shared.options.allow_passwordless {
            shape.optional_field("password", Type::String)
        } else {
            shape.field("password", Type::String)
        }
    };
    let code = || Shape::object().field("code", Type::String);
    vec![
        on.post("enableTwoFactor", "/two-factor/enable", enable)
            .body_shape(
                password(Shape::object())
                    .field("method", Type::OneOf(&["otp", "totp"]))
                    .optional_field("issuer", Type::String),
            ),
        on.post("disableTwoFactor", "/two-factor/disable", disable)
            .body_shape(password(Shape::object())),
        on.post("getTOTPURI", "/two-factor/get-totp-uri", get_totp_uri)
            .body_shape(password(Shape::object())),
        on.post("verifyTOTP", "/two-factor/verify-totp", verify_totp)
            .body_shape(code().optional_field("trustDevice", Type::Boolean)),
        on.post("sendTwoFactorOTP", "/two-factor/send-otp", send_otp)
            .body_shape(
                Shape::object()
                    .optional()
                    .optional_field("trustDevice", Type::Boolean),
            ),
        on.post("verifyTwoFactorOTP", "/two-factor/verify-otp", verify_otp)
            .body_shape(code().optional_field("trustDevice", Type::Boolean)),
        on.post(
            "verifyBackupCode",
            "/two-factor/verify-backup-code",
            verify_backup_code,
        )
        .body_shape(
            code()
                .optional_field("disableSession", Type::Boolean)
                .optional_field("trustDevice", Type::Boolean),
        ),
        on.post(
            "generateBackupCodes",
            "/two-factor/generate-backup-codes",
            generate_backup_codes,
        )
        .body_shape(password(Shape::object())),
        on.post(
            "viewBackupCodes",
            "/two-factor/view-backup-codes",
            view_backup_codes,
        )
        .server_only(),
        on.post("generateTOTP", "/totp/generate", generate_totp)
            .server_only(),
    ]
}

fn internal(what: &str, e: impl std::fmt::Display) -> ApiError {
    tracing::error!(error = %e, "{what}");
    ApiError::internal()
}

fn totp_not_configured() -> ApiError {
    ApiError::bad_request(codes::TOTP_NOT_CONFIGURED).with_message("totp isn't configured")
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct PasswordBody {
    password: Option<String>,
}

/// The password rule of the management endpoints: the user's password is required, unless
/// `allowPasswordless` is on and the user has none. 400 `INVALID_PASSWORD` otherwise.
async fn confirm_password(
    ctx: &Ctx,
    shared: &Shared,
    user_id: &str,
    password: Option<&str>,
) -> Result<(), ApiError> {
    let wrong = || ApiError::bad_request(core::INVALID_PASSWORD);
    if shared.options.allow_passwordless {
        let has_password = ctx
            .store()
            .credential_account(user_id)
            .await?
            .and_then(|a| a.password)
            .is_some();
        if !has_password {
            return Ok(());
        }
    }
    let password = password.ok_or_else(wrong)?;
    // Better Auth refuses an over-long password before hashing it (its default
    // maxPasswordLength, in UTF-16 units, as the core's verify-password counts).
    if password.encode_utf16().count() > 128 {
        return Err(ApiError::bad_request(core::PASSWORD_TOO_LONG));
    }
    match ctx.auth().verify_user_password(user_id, password).await? {
        PasswordCheck::Matches => Ok(()),
        PasswordCheck::Wrong | PasswordCheck::NoPassword => Err(wrong()),
    }
}

/// What [`switch_and_rotate`] also does to the user's `twoFactor` row.
enum RowChange<'a> {
    /// Nothing.
    Keep,
    /// Marks the secret with this row id confirmed.
    Verify(&'a str),
    /// Deletes the row, and every trusted device with it (two-factor off).
    Delete,
}

/// Turns two-factor on or off for the signed-in user and replaces their session (Better
/// Auth rotates it on every such change), all in one transaction. A session already gone
/// from the database (revoked while a cookie cache still vouched for it) is refused rather
/// than exchanged for a new one.
async fn switch_and_rotate(
    ctx: &Ctx,
    current: &SessionAndUser,
    enabled: bool,
    row_change: RowChange<'_>,
) -> Result<(Session, User, bool), ApiError> {
    let auth = ctx.auth();
    let dont_remember = auth.has_dont_remember(ctx);
    let tx = ctx.begin().await?;
    let store = tx.store();
    if ctx
        .auth()
        .delete_session(store, &current.session.token)
        .await?
        != 1
    {
        return Err(ApiError::unauthorized());
    }
    let user = store
        .update_user(
            &current.user.id,
            Row::new().with(row::TWO_FACTOR_ENABLED.name(), enabled),
        )
        .await?
        .ok_or_else(ApiError::unauthorized)?;
    match row_change {
        RowChange::Keep => {}
        RowChange::Verify(id) => row::set_verified(tx.store(), id).await?,
        RowChange::Delete => {
            row::delete(tx.store(), &user.id).await?;
            challenge::forget_devices(store, &user.id, None).await?;
        }
    }
    let mut session = auth
        .create_session(store, ctx, &user.id, dont_remember)
        .await?;
    if !enabled {
        // Better Auth's disable makes the new session from the old one: it keeps the address
        // and user agent the session was signed in with.
        let keep = Row::new()
            .with("ipAddress", current.session.ip_address.clone())
            .with("userAgent", current.session.user_agent.clone());
        if let Some(s) = ctx
            .auth()
            .update_session(store, &session.token, keep)
            .await?
        {
            session = s;
        }
    }
    tx.commit().await?;
    tracing::info!(user = %user.id, enabled, "two-factor switched");
    Ok((session, user, dont_remember))
}

fn issuer(ctx: &Ctx, shared: &Shared, requested: Option<String>) -> String {
    requested
        .filter(|s| !s.is_empty())
        .or_else(|| shared.options.issuer.clone())
        .unwrap_or_else(|| ctx.auth().options().email.app_name.clone())
}

fn open_secret(ctx: &Ctx, row: &TwoFactorRow) -> Result<String, ApiError> {
    ctx.auth().secret().decrypt(&row.secret).map_err(|e| {
        internal(
            "the TOTP secret does not decrypt with this server's secret",
            e,
        )
    })
}

fn open_codes(ctx: &Ctx, shared: &Shared, row: &TwoFactorRow) -> Result<Vec<String>, ApiError> {
    backup::open(
        &row.backup_codes,
        shared.options.backup_codes.store,
        ctx.auth().secret(),
    )
    .ok_or_else(|| internal("backup codes do not decrypt", "undecodable backup codes"))
}

fn new_codes(ctx: &Ctx, shared: &Shared) -> (Vec<String>, String) {
    let codes = backup::generate(&shared.options.backup_codes);
    let sealed = backup::seal(
        &codes,
        shared.options.backup_codes.store,
        ctx.auth().secret(),
    );
    (codes, sealed)
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum Method {
    Totp,
    Otp,
}

#[derive(Deserialize)]
struct EnableBody {
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    method: Option<Method>,
    #[serde(default)]
    issuer: Option<String>,
}

/// `POST /two-factor/enable {password, method?, issuer?}`.
async fn enable(shared: S, ctx: Ctx) -> Result<Reply, ApiError> {
    let body: EnableBody = ctx.body()?;
    let current = ctx.require_session().await?;
    confirm_password(&ctx, &shared, &current.user.id, body.password.as_deref()).await?;
    let auth = ctx.auth();
    if matches!(body.method, Some(Method::Otp)) {
        if !shared.otp_available(auth) {
            return Err(ApiError::bad_request(codes::OTP_NOT_CONFIGURED));
        }
        let (session, user, dont_remember) =
            switch_and_rotate(&ctx, &current, true, RowChange::Keep).await?;
        let body = json!({ "method": "otp" });
        return Ok(auth.signed_in_reply(&ctx, body, session, user, dont_remember));
    }
    if shared.options.totp.disable {
        return Err(totp_not_configured());
    }
    let user = &current.user;
    if row::find(ctx.store(), &user.id)
        .await?
        .is_some_and(|r| r.is_verified())
    {
        return Err(ApiError::bad_request(codes::TOTP_ALREADY_ENABLED));
    }
    let secret = totp::new_secret();
    let (codes, sealed) = new_codes(&ctx, &shared);
    let skip = shared.options.skip_verification_on_enable;
    row::upsert(
        ctx.store(),
        &user.id,
        &auth.secret().encrypt(&secret),
        &sealed,
        skip,
    )
    .await?;
    let t = &shared.options.totp;
    let uri = totp::uri(
        &secret,
        &issuer(&ctx, &shared, body.issuer),
        &user.email,
        t.digits,
        t.period,
    );
    let out = TotpEnrollment {
        method: "totp".into(),
        totp_uri: uri,
        backup_codes: codes,
    };
    if skip && !challenge::two_factor_enabled(user) {
        let (session, user, dont_remember) =
            switch_and_rotate(&ctx, &current, true, RowChange::Keep).await?;
        return Ok(auth.signed_in_reply(&ctx, out, session, user, dont_remember));
    }
    Ok(Reply::json(out))
}

/// `POST /two-factor/disable {password}`: two-factor off, secret and backup codes deleted,
/// every trusted device forgotten, session rotated.
async fn disable(shared: S, ctx: Ctx) -> Result<Reply, ApiError> {
    let body: PasswordBody = ctx.body_or_empty()?;
    // Better Auth's sensitive session: the database's word, never the cookie cache.
    let current = ctx.require_sensitive_session().await?;
    confirm_password(&ctx, &shared, &current.user.id, body.password.as_deref()).await?;
    let (session, user, dont_remember) =
        switch_and_rotate(&ctx, &current, false, RowChange::Delete).await?;
    let auth = ctx.auth();
    let mut reply = auth.signed_in_reply(
        &ctx,
        json!({ "status": true }),
        session,
        user,
        dont_remember,
    );
    challenge::expire_trust_cookie(&ctx, &mut reply);
    Ok(reply)
}

/// `POST /two-factor/get-totp-uri {password}`.
async fn get_totp_uri(shared: S, ctx: Ctx) -> Result<Reply, ApiError> {
    let body: PasswordBody = ctx.body_or_empty()?;
    let current = ctx.require_session().await?;
    if shared.options.totp.disable {
        return Err(totp_not_configured());
    }
    // Better Auth's order: the user's TOTP row, then the password.
    let row = row::find(ctx.store(), &current.user.id)
        .await?
        .ok_or_else(|| ApiError::bad_request(codes::TOTP_NOT_ENABLED))?;
    confirm_password(&ctx, &shared, &current.user.id, body.password.as_deref()).await?;
    let secret = open_secret(&ctx, &row)?;
    let t = &shared.options.totp;
    // Better Auth names the app here even when the plugin has an issuer; authenticator apps
    // would then show two issuers for one secret, so the plugin's issuer is used throughout.
    let uri = totp::uri(
        &secret,
        &issuer(&ctx, &shared, None),
        &current.user.email,
        t.digits,
        t.period,
    );
    Ok(Reply::json(json!({ "totpURI": uri })))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CodeBody {
    code: String,
    #[serde(default)]
    trust_device: Option<bool>,
    #[serde(default)]
    disable_session: Option<bool>,
}

/// The lock-out check (for a user with a `twoFactor` row) and the attempt of a pending
/// sign-in; nothing for a session. Every factor draws on the challenge's one budget.
async fn start_attempt(
    ctx: &Ctx,
    shared: &Shared,
    who: &Verifier,
    row: Option<&TwoFactorRow>,
) -> Result<Option<Attempt>, ApiError> {
    match who {
        Verifier::Challenge { identifier, .. } => {
            if let Some(row) = row {
                check_lock(ctx, shared, row).await?;
            }
            Attempt::take(ctx, identifier).await.map(Some)
        }
        Verifier::Session(_) => Ok(None),
    }
}

/// How a verification attempt ended.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// The code was right.
    Passed,
    /// The code was wrong.
    Failed,
    /// Neither: a server error, an expired code. It costs no attempt.
    Uncounted,
}

impl From<bool> for Outcome {
    fn from(passed: bool) -> Self {
        if passed {
            Self::Passed
        } else {
            Self::Failed
        }
    }
}

/// Settles an attempt and counts the outcome against (or for) the lock-out. `row` is the
/// user's `twoFactor` row, when there is one.
async fn finish_attempt(
    ctx: &Ctx,
    shared: &Shared,
    attempt: Option<Attempt>,
    row: Option<&TwoFactorRow>,
    outcome: Outcome,
) -> Result<(), ApiError> {
    let Some(attempt) = attempt else {
        return Ok(());
    };
    attempt.settle(ctx, outcome == Outcome::Failed).await?;
    match (outcome, row) {
        (Outcome::Failed, Some(row)) => record_failure(ctx, shared, row).await,
        (Outcome::Passed, Some(row)) => Ok(row::reset_failures(ctx.store(), row).await?),
        _ => Ok(()),
    }
}

/// `POST /two-factor/verify-totp {code, trustDevice?}`: completes a pending sign-in, or with
/// a session confirms the secret (turning two-factor on at the first code).
async fn verify_totp(shared: S, ctx: Ctx) -> Result<Reply, ApiError> {
    if shared.options.totp.disable {
        return Err(totp_not_configured());
    }
    let body: CodeBody = ctx.body()?;
    let who = Verifier::of(&ctx).await?;
    let auth = ctx.auth();
    let row = row::find(ctx.store(), &who.user().id)
        .await?
        .filter(|r| r.is_verified() || !who.is_challenge())
        .ok_or_else(|| ApiError::bad_request(codes::TOTP_NOT_ENABLED))?;
    let attempt = start_attempt(&ctx, &shared, &who, Some(&row)).await?;
    let accepted = match totp_matches(&ctx, &shared, &row, body.code.trim()).await {
        Ok(accepted) => accepted,
        Err(e) => {
            // A server error costs the user no attempt.
            finish_attempt(&ctx, &shared, attempt, Some(&row), Outcome::Uncounted).await?;
            return Err(e);
        }
    };
    finish_attempt(&ctx, &shared, attempt, Some(&row), Outcome::from(accepted)).await?;
    if !accepted {
        return Err(ApiError::new(StatusCode::UNAUTHORIZED, codes::INVALID_CODE));
    }
    if let Verifier::Session(current) = &who {
        // Enrolment: the first code confirms the secret. Rows Better Auth wrote before the
        // field existed count as confirmed for sign-in, but still finish enrolment here.
        if row.verified != Some(true) {
            if challenge::two_factor_enabled(&current.user) {
                row::set_verified(ctx.store(), &row.id).await?;
            } else {
                let (session, user, dont_remember) =
                    switch_and_rotate(&ctx, current, true, RowChange::Verify(&row.id)).await?;
                // Better Auth answers the pre-rotation token and user here; the new ones are
                // what the cookie now carries, so they are what is answered.
                let out = Verified {
                    token: Some(session.token.clone()),
                    user: user.clone(),
                };
                return Ok(auth.signed_in_reply(&ctx, out, session, user, dont_remember));
            }
        }
    }
    who.complete(&ctx, &shared, body.trust_device == Some(true))
        .await
}

/// Whether `code` is the user's current TOTP code, never accepted before. A code is good
/// once: its time step must be later than the last one accepted.
async fn totp_matches(
    ctx: &Ctx,
    shared: &Shared,
    row: &TwoFactorRow,
    code: &str,
) -> Result<bool, ApiError> {
    let secret = open_secret(ctx, row)?;
    let t = &shared.options.totp;
    let generator = totp::Totp::new(&secret, t.digits, t.period)
        .ok_or_else(|| internal("stored TOTP secret is unusable", "bad base32"))?;
    let now = u64::try_from(portcullis::time::now().timestamp()).unwrap_or(0);
    match generator.matching_step(code, now) {
        Some(step) => Ok(row::claim_totp_step(ctx.store(), &row.id, step).await?),
        None => Ok(false),
    }
}

/// `POST /two-factor/send-otp`: mails (or hands to the callback) a one-time code for the
/// pending sign-in or the session.
async fn send_otp(shared: S, ctx: Ctx) -> Result<Reply, ApiError> {
    let auth = ctx.auth();
    if !shared.otp_available(auth) {
        return Err(
            ApiError::bad_request(codes::OTP_NOT_CONFIGURED).with_message("otp isn't configured")
        );
    }
    let who = Verifier::of(&ctx).await?;
    let o = &shared.options.otp;
    let code = otp::new_code(o.digits);
    let stored = otp::seal(&code, o.store, auth.secret());
    let v = challenge::verification(
        &ctx,
        format!("2fa-otp-{}", who.otp_key()),
        format!("{stored}:0"),
        challenge::from_now(o.period * 60),
    );
    ctx.store().create_verification(&v).await?;
    shared.deliver_otp(auth, who.user(), &code).await;
    Ok(Reply::json(json!({ "status": true })))
}

/// `POST /two-factor/verify-otp {code, trustDevice?}`.
async fn verify_otp(shared: S, ctx: Ctx) -> Result<Reply, ApiError> {
    let body: CodeBody = ctx.body()?;
    let who = Verifier::of(&ctx).await?;
    let auth = ctx.auth();
    let row = row::find(ctx.store(), &who.user().id).await?;
    let attempt = start_attempt(&ctx, &shared, &who, row.as_ref()).await?;
    let checked = otp_matches(&ctx, &shared, &who, body.code.trim()).await;
    let outcome = match &checked {
        Ok(passed) => Outcome::from(*passed),
        Err(_) => Outcome::Uncounted,
    };
    finish_attempt(&ctx, &shared, attempt, row.as_ref(), outcome).await?;
    if !checked? {
        return Err(ApiError::new(StatusCode::UNAUTHORIZED, codes::INVALID_CODE));
    }
    if !challenge::two_factor_enabled(who.user()) {
        let Verifier::Session(current) = &who else {
            return Err(challenge::no_session());
        };
        let (session, user, dont_remember) =
            switch_and_rotate(&ctx, current, true, RowChange::Keep).await?;
        let out = Verified {
            token: Some(session.token.clone()),
            user: user.clone(),
        };
        return Ok(auth.signed_in_reply(&ctx, out, session, user, dont_remember));
    }
    who.complete(&ctx, &shared, body.trust_device == Some(true))
        .await
}

/// Whether `code` is the pending one-time code of this verification. The code is consumed;
/// a wrong guess puts it back with one try fewer. 400 `OTP_HAS_EXPIRED` without a live code,
/// 400 `TOO_MANY_ATTEMPTS_REQUEST_NEW_CODE` once its tries are spent.
async fn otp_matches(
    ctx: &Ctx,
    shared: &Shared,
    who: &Verifier,
    code: &str,
) -> Result<bool, ApiError> {
    let auth = ctx.auth();
    let store = ctx.store();
    let identifier = format!("2fa-otp-{}", who.otp_key());
    let expired = || ApiError::bad_request(codes::OTP_HAS_EXPIRED);
    let pending = store
        .verification_by_identifier(&identifier)
        .await?
        .ok_or_else(expired)?;
    if !store.consume_verification(&pending).await? || pending.expires_at <= portcullis::time::now()
    {
        return Err(expired());
    }
    let o = &shared.options.otp;
    let (stored, tries) = otp::split_value(&pending.value);
    if tries >= o.allowed_attempts {
        return Err(ApiError::bad_request(
            codes::TOO_MANY_ATTEMPTS_REQUEST_NEW_CODE,
        ));
    }
    if otp::matches(stored, code, o.store, auth.secret()) {
        return Ok(true);
    }
    let mut retry = pending.clone();
    retry.id = auth.options().ids.generate();
    retry.value = format!("{stored}:{}", tries.saturating_add(1));
    store.create_verification(&retry).await?;
    Ok(false)
}

/// `POST /two-factor/verify-backup-code {code, disableSession?, trustDevice?}`: each code
/// works once.
async fn verify_backup_code(shared: S, ctx: Ctx) -> Result<Reply, ApiError> {
    let body: CodeBody = ctx.body()?;
    let who = Verifier::of(&ctx).await?;
    let row = row::find(ctx.store(), &who.user().id)
        .await?
        .ok_or_else(|| ApiError::bad_request(codes::BACKUP_CODES_NOT_ENABLED))?;
    let attempt = start_attempt(&ctx, &shared, &who, Some(&row)).await?;
    let used = use_backup_code(&ctx, &shared, &row, body.code.trim()).await;
    let outcome = match &used {
        Ok(passed) => Outcome::from(*passed),
        Err(_) => Outcome::Uncounted,
    };
    finish_attempt(&ctx, &shared, attempt, Some(&row), outcome).await?;
    if !used? {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            codes::INVALID_BACKUP_CODE,
        ));
    }
    if body.disable_session == Some(true) {
        let mut out = serde_json::Map::new();
        if let Verifier::Session(s) = &who {
            out.insert("token".into(), s.session.token.clone().into());
        }
        out.insert("user".into(), json!(who.user()));
        return Ok(Reply::json(out));
    }
    who.complete(&ctx, &shared, body.trust_device == Some(true))
        .await
}

/// Strikes `code` off the user's backup codes: `false` when it is not one of them, 409 when
/// another request changed the codes at the same moment.
async fn use_backup_code(
    ctx: &Ctx,
    shared: &Shared,
    row: &TwoFactorRow,
    code: &str,
) -> Result<bool, ApiError> {
    let auth = ctx.auth();
    let mut codes = open_codes(ctx, shared, row)?;
    let Some(i) = backup::position(&codes, code) else {
        return Ok(false);
    };
    codes.remove(i);
    let sealed = backup::seal(&codes, shared.options.backup_codes.store, auth.secret());
    if !row::swap_backup_codes(ctx.store(), &row.id, &row.backup_codes, &sealed).await? {
        return Err(ApiError::without_code(
            StatusCode::CONFLICT,
            "Failed to verify backup code. Please try again.",
        ));
    }
    Ok(true)
}

/// `POST /two-factor/generate-backup-codes {password}`: replaces every backup code.
async fn generate_backup_codes(shared: S, ctx: Ctx) -> Result<Reply, ApiError> {
    let body: PasswordBody = ctx.body_or_empty()?;
    let current = ctx.require_session().await?;
    // Better Auth's order: whether two-factor is on, then the password.
    let not_enabled = || ApiError::bad_request(codes::TWO_FACTOR_NOT_ENABLED);
    if !challenge::two_factor_enabled(&current.user) {
        return Err(not_enabled());
    }
    confirm_password(&ctx, &shared, &current.user.id, body.password.as_deref()).await?;
    let row = row::find(ctx.store(), &current.user.id)
        .await?
        .ok_or_else(not_enabled)?;
    let (codes, sealed) = new_codes(&ctx, &shared);
    row::set_backup_codes(ctx.store(), &row.id, &sealed).await?;
    Ok(Reply::json(json!({ "status": true, "backupCodes": codes })))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UserIdBody {
    user_id: serde_json::Value,
}

/// Server-side `viewBackupCodes {userId}`: the user's unused backup codes.
async fn view_backup_codes(shared: S, ctx: Ctx) -> Result<Reply, ApiError> {
    let body: UserIdBody = ctx.body()?;
    let user_id = match body.user_id {
        serde_json::Value::String(s) => s,
        other => other.to_string(),
    };
    let row = row::find(ctx.store(), &user_id)
        .await?
        .ok_or_else(|| ApiError::bad_request(codes::BACKUP_CODES_NOT_ENABLED))?;
    let codes = backup::open(
        &row.backup_codes,
        shared.options.backup_codes.store,
        ctx.auth().secret(),
    )
    .ok_or_else(|| ApiError::bad_request(codes::INVALID_BACKUP_CODE))?;
    Ok(Reply::json(json!({ "status": true, "backupCodes": codes })))
}

#[derive(Deserialize)]
struct SecretBody {
    secret: String,
}

/// Server-side `generateTOTP {secret}`: the current code of a raw secret.
async fn generate_totp(shared: S, ctx: Ctx) -> Result<Reply, ApiError> {
    if shared.options.totp.disable {
        return Err(totp_not_configured());
    }
    let body: SecretBody = ctx.body()?;
    let t = &shared.options.totp;
    let generator = totp::Totp::new(&body.secret, t.digits, t.period)
        .ok_or_else(|| ApiError::validation("[body.secret] not a usable secret"))?;
    let now = u64::try_from(portcullis::time::now().timestamp()).unwrap_or(0);
    Ok(Reply::json(
        json!({ "code": generator.code_at_step(generator.step(now)) }),
    ))
}
