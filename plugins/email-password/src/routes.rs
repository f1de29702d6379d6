//! The plugin's endpoints.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{header, HeaderValue, StatusCode};
use portcullis::plugin::Handlers;
use portcullis::storage::{Account, StorageError, User};
use portcullis::validate::is_valid_email;
use portcullis::{codes as core, ApiError, Ctx, Endpoint, Reply};
use portcullis::{Shape, Type};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::{codes, EmailPasswordOptions};

type Opts = Arc<EmailPasswordOptions>;

pub(crate) fn endpoints(opts: Opts) -> Vec<Endpoint> {
    let sign_ups = Handlers::new(Arc::new(SignUp {
        opts: opts.clone(),
        account_writes: WriteClock::default(),
    }));
    let on = Handlers::new(opts);
    vec![
        sign_ups
            .post("signUpEmail", "/sign-up/email", sign_up)
            .accept_form()
            .login()
            .body_shape(
                Shape::object_and_record()
                    .field("name", Type::String)
                    .field("email", Type::Email)
                    .field("password", Type::NonEmptyString)
                    .optional_field("image", Type::String)
                    .optional_field("callbackURL", Type::String)
                    .optional_field("rememberMe", Type::Boolean),
            ),
        on.post("signInEmail", "/sign-in/email", sign_in)
            .accept_form()
            .login()
            .body_shape(
                Shape::object()
                    .field("email", Type::String)
                    .field("password", Type::String)
                    .optional_field("callbackURL", Type::String)
                    .optional_field("rememberMe", Type::Boolean),
            ),
        on.post("changePassword", "/change-password", change_password)
            .body_shape(
                Shape::object()
                    .field("newPassword", Type::String)
                    .field("currentPassword", Type::String)
                    .optional_field("revokeOtherSessions", Type::Boolean),
            ),
        on.post("setPassword", "/set-password", set_password)
            .server_only(),
    ]
}

/// JavaScript string length, which is what Better Auth's limits count.
fn js_len(s: &str) -> usize {
    s.encode_utf16().count()
}

pub(crate) fn check_length(opts: &EmailPasswordOptions, password: &str) -> Result<(), ApiError> {
    let len = js_len(password);
    if len < opts.min_password_length {
        return Err(ApiError::bad_request(core::PASSWORD_TOO_SHORT));
    }
    if len > opts.max_password_length {
        return Err(ApiError::bad_request(core::PASSWORD_TOO_LONG));
    }
    Ok(())
}

pub(crate) fn hash_failed(e: impl std::fmt::Display) -> ApiError {
    tracing::error!(error = %e, "password hashing failed");
    ApiError::internal()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SignUpBody {
    name: String,
    email: String,
    password: String,
    #[serde(default)]
    image: Option<String>,
    #[serde(default, rename = "callbackURL")]
    callback_url: Option<String>,
    #[serde(default)]
    remember_me: Option<bool>,
}

/// Fields core sign-up sets itself; anything else the client sends must be a declared,
/// client-writable additional field of `user`.
const CORE_USER_FIELDS: &[&str] = &User::FIELDS;

fn additional_fields(ctx: &Ctx) -> Result<serde_json::Map<String, Value>, ApiError> {
    let table = ctx
        .auth()
        .schema()
        .table("user")
        .ok_or_else(ApiError::internal)?;
    let body = ctx.body_json().and_then(Value::as_object);
    let mut out = serde_json::Map::new();
    for field in table
        .fields
        .iter()
        .filter(|f| !CORE_USER_FIELDS.contains(&f.name.as_str()))
    {
        let value = body
            .and_then(|b| b.get(&field.name))
            .filter(|_| field.input);
        match value {
            Some(v) => {
                out.insert(field.name.clone(), v.clone());
            }
            // A field with a default is filled in when the row is created.
            None if field.required && field.input && field.default.is_none() => {
                return Err(ApiError::bad_request(core::MISSING_FIELD)
                    .with_message(format!("{} is required", field.name)));
            }
            None => {}
        }
    }
    Ok(out)
}

/// The sign-up endpoint's state.
struct SignUp {
    opts: Opts,
    /// How long writing a new account takes lately.
    account_writes: WriteClock,
}

/// A moving average of how long something takes (an eighth of each new sample), so that the
/// answer for an address that has an account can take as long as making one would.
#[derive(Default)]
struct WriteClock {
    micros: AtomicU64,
}

impl WriteClock {
    fn record(&self, took: Duration) {
        let sample = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        // Lost updates under contention only lose a sample.
        let old = self.micros.load(Ordering::Relaxed);
        let new = if old == 0 {
            sample
        } else {
            old - old / 8 + sample / 8
        };
        self.micros.store(new, Ordering::Relaxed);
    }

    /// The average; before the first sample, a typical write's few milliseconds, so that a
    /// process that has made no account yet does not answer existing addresses at once.
    fn average(&self) -> Duration {
        match self.micros.load(Ordering::Relaxed) {
            0 => Duration::from_millis(5),
            micros => Duration::from_micros(micros),
        }
    }
}

/// `POST /sign-up/email`.
async fn sign_up(state: Arc<SignUp>, ctx: Ctx) -> Result<Reply, ApiError> {
    let opts = &state.opts;
    if !opts.enabled || opts.disable_sign_up {
        return Err(ApiError::bad_request(
            codes::EMAIL_PASSWORD_SIGN_UP_DISABLED,
        ));
    }
    let body: SignUpBody = ctx.body()?;
    if !is_valid_email(&body.email) {
        return Err(ApiError::validation("[body.email] Invalid email address"));
    }
    check_length(opts, &body.password)?;
    let extra = additional_fields(&ctx)?;
    let email = body.email.to_lowercase();
    let auth = ctx.auth();
    let hasher = auth.password_hasher();
    let signs_in = opts.auto_sign_in && !opts.require_email_verification;

    if let Some(existing) = ctx.store().user_by_email(&email).await? {
        if signs_in {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                core::USER_ALREADY_EXISTS_USE_ANOTHER_EMAIL,
            ));
        }
        // Without auto sign-in, answering "exists" would reveal the account: spend the
        // hashing time, tell the owner instead (in the background, as a new account's mail
        // goes), and answer as for a new user, with an id that exists nowhere.
        auth.check_new_password(&ctx, &body.password).await?;
        hasher.hash(&body.password).await.map_err(hash_failed)?;
        // As long as writing the account would have taken (measured on real sign-ups).
        tokio::time::sleep(state.account_writes.average()).await;
        auth.notify_existing_account(&existing);
        let ghost = ghost_user(&ctx, body.name, email, body.image, extra)?;
        return Ok(Reply::json(json!({ "token": null, "user": ghost })));
    }

    auth.check_new_password(&ctx, &body.password).await?;
    let hash = hasher.hash(&body.password).await.map_err(hash_failed)?;
    let writing = Instant::now();
    let user = new_user(&ctx, body.name, email, body.image, extra);

    // User, account and session land together or not at all.
    let tx = ctx.begin().await?;
    let store = tx.store();
    let user = store.create_user(&user).await.map_err(|e| match e {
        StorageError::Rejected(refusal) => refusal,
        StorageError::UniqueViolation => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            core::USER_ALREADY_EXISTS_USE_ANOTHER_EMAIL,
        ),
        StorageError::Decode { .. } | StorageError::Unknown(_) => {
            ApiError::validation(format!("[body] {e}"))
        }
        other => {
            tracing::error!(error = %other, "failed to create user");
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                core::FAILED_TO_CREATE_USER,
            )
        }
    })?;
    // Built after the insert: with serial ids the user's id is known only now.
    let account = Account::credential(auth.options().ids.generate(), &user.id, hash);
    store.create_account(&account).await.map_err(|e| {
        ApiError::from_storage(
            e,
            "failed to create credential account",
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                core::FAILED_TO_CREATE_USER,
            ),
        )
    })?;
    let dont_remember = body.remember_me == Some(false);
    let session = if signs_in {
        Some(
            auth.create_session(store, &ctx, &user.id, dont_remember)
                .await?,
        )
    } else {
        None
    };
    tx.commit().await?;

    let send_on_sign_up = auth
        .options()
        .email_verification
        .send_on_sign_up
        .unwrap_or(opts.require_email_verification);
    if send_on_sign_up && auth.email_sender().is_some() {
        // The account exists now; a mail that fails is logged, and the user can ask again. In
        // the background: the mail server's time must not set this answer apart from the
        // one for an address that already has an account.
        auth.send_verification_email_in_background(&ctx, &user, body.callback_url.as_deref());
    }
    if !signs_in {
        state.account_writes.record(writing.elapsed());
    }

    let Some(session) = session else {
        return Ok(Reply::json(json!({ "token": null, "user": user })));
    };
    let body = json!({ "token": session.token, "user": user });
    Ok(auth.signed_in_reply(&ctx, body, session, user, dont_remember))
}

/// The user a sign-up of a new address would have answered with, for an address that has an
/// account already: the same fields, the additional ones with their defaults and as the
/// database would give them back, and an id that exists nowhere.
fn ghost_user(
    ctx: &Ctx,
    name: String,
    email: String,
    image: Option<String>,
    extra: serde_json::Map<String, Value>,
) -> Result<User, ApiError> {
    let auth = ctx.auth();
    let table = auth.schema().table("user").ok_or_else(ApiError::internal)?;
    let mut row = portcullis::storage::Row::from_json(table, extra)
        .map_err(|e| ApiError::validation(format!("[body] {e}")))?;
    portcullis::storage::fill_defaults(table, &mut row);
    let mut extra = row.to_json();
    extra.retain(|k, _| {
        !CORE_USER_FIELDS.contains(&k.as_str())
            && table.fields.iter().any(|f| f.name == *k && f.returned)
    });
    Ok(new_user(ctx, name, email, image, extra))
}

/// A user as sign-up makes one, with a fresh id, unverified, created now.
fn new_user(
    ctx: &Ctx,
    name: String,
    email: String,
    image: Option<String>,
    extra: serde_json::Map<String, Value>,
) -> User {
    let now = portcullis::time::now();
    User {
        id: ctx.auth().options().ids.generate(),
        name,
        email,
        email_verified: false,
        image,
        created_at: now,
        updated_at: now,
        extra,
        hidden: Default::default(),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SignInBody {
    email: String,
    password: String,
    #[serde(default, rename = "callbackURL")]
    callback_url: Option<String>,
    #[serde(default)]
    remember_me: Option<bool>,
}

fn invalid_credentials() -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, core::INVALID_EMAIL_OR_PASSWORD)
}

/// `POST /sign-in/email`. A wrong password, an unknown email and a user without a password
/// all answer 401 `INVALID_EMAIL_OR_PASSWORD` after the same hashing work.
async fn sign_in(opts: Opts, ctx: Ctx) -> Result<Reply, ApiError> {
    if !opts.enabled {
        return Err(ApiError::bad_request(codes::EMAIL_PASSWORD_DISABLED));
    }
    let body: SignInBody = ctx.body()?;
    if !is_valid_email(&body.email) {
        return Err(ApiError::bad_request(core::INVALID_EMAIL));
    }
    if js_len(&body.password) > opts.max_password_length {
        return Err(ApiError::bad_request(core::PASSWORD_TOO_LONG));
    }
    let auth = ctx.auth();
    let store = ctx.store();
    let hasher = auth.password_hasher();
    let email = body.email.to_lowercase();

    let user = store.user_by_email(&email).await?;
    // Failures count per account across every client address; an email without an account
    // is counted the same way, so the throttle tells nobody which emails exist.
    let throttled = match &user {
        Some(u) => u.id.clone(),
        None => format!("email:{email}"),
    };
    let attempt = auth.sign_in_throttle().begin(&ctx, &throttled).await?;
    let account = match &user {
        Some(u) => store.credential_account(&u.id).await?,
        None => None,
    };
    let (Some(user), Some((account_id, hash))) =
        (user, account.and_then(|a| a.password.map(|p| (a.id, p))))
    else {
        hasher
            .verify_dummy(&body.password)
            .await
            .map_err(hash_failed)?;
        attempt.failed();
        return Err(invalid_credentials());
    };
    let verified = hasher
        .verify(&hash, &body.password)
        .await
        .map_err(hash_failed)?;
    if !verified.ok {
        tracing::debug!(user = %user.id, "sign-in refused: wrong password");
        attempt.failed();
        return Err(invalid_credentials());
    }
    attempt.succeeded().await;
    if verified.needs_rehash {
        match hasher.hash(&body.password).await {
            Ok(new_hash) => {
                if let Err(e) = store.set_password(&account_id, &new_hash).await {
                    tracing::warn!(error = %e, "could not upgrade a password hash");
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not upgrade a password hash"),
        }
    }
    if opts.require_email_verification && !user.email_verified {
        if auth.options().email_verification.send_on_sign_in && auth.email_sender().is_some() {
            if let Err(e) = auth
                .send_verification_email(&ctx, &user, body.callback_url.as_deref())
                .await
            {
                tracing::warn!(error = %e, "verification email at sign-in failed");
            }
        }
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            core::EMAIL_NOT_VERIFIED,
        ));
    }
    let dont_remember = body.remember_me == Some(false);
    let session = auth
        .create_session(store, &ctx, &user.id, dont_remember)
        .await?;
    // Better Auth's answer, in its key order: `url` only when sent, and an empty one asks for
    // no redirect.
    let redirect_to = body.callback_url.as_deref().filter(|u| !u.is_empty());
    let mut out = serde_json::Map::new();
    out.insert("redirect".into(), redirect_to.is_some().into());
    out.insert("token".into(), session.token.clone().into());
    if let Some(url) = &body.callback_url {
        out.insert("url".into(), url.clone().into());
    }
    out.insert("user".into(), json!(user));
    let mut reply = auth.signed_in_reply(&ctx, out, session, user, dont_remember);
    if let Some(url) = redirect_to.and_then(|u| HeaderValue::from_str(u).ok()) {
        reply.headers_mut().insert(header::LOCATION, url);
    }
    Ok(reply)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ChangePasswordBody {
    new_password: String,
    current_password: String,
    #[serde(default)]
    revoke_other_sessions: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SetPasswordBody {
    new_password: String,
}

/// `setPassword` (server-side only, as in Better Auth; `POST /set-password` is 404 over HTTP):
/// gives a user who signed up without one (a social sign-in, say) a password. A user who
/// already has one gets 400 `PASSWORD_ALREADY_SET`: changing it needs the current password.
async fn set_password(opts: Opts, ctx: Ctx) -> Result<Reply, ApiError> {
    let body: SetPasswordBody = ctx.body()?;
    let current = ctx.require_sensitive_session().await?;
    check_length(&opts, &body.new_password)?;
    let auth = ctx.auth();
    let existing = ctx.store().credential_account(&current.user.id).await?;
    if existing.as_ref().is_some_and(|a| a.password.is_some()) {
        return Err(ApiError::bad_request(core::PASSWORD_ALREADY_SET));
    }
    auth.check_new_password(&ctx, &body.new_password).await?;
    let hash = auth
        .password_hasher()
        .hash(&body.new_password)
        .await
        .map_err(hash_failed)?;
    let tx = ctx.begin().await?;
    let in_tx = tx.store();
    match existing {
        Some(account) => in_tx.set_password(&account.id, &hash).await?,
        None => {
            let account =
                Account::credential(auth.options().ids.generate(), &current.user.id, hash);
            in_tx.create_account(&account).await?;
        }
    }
    in_tx.revoke_user_tokens(&current.user.id).await?;
    tx.commit().await?;
    Ok(Reply::json(json!({ "status": true })))
}

/// `POST /change-password`. The password changes, outstanding reset and deletion links die,
/// and the caller's session is replaced by a new one (unless
/// `security.keep_session_on_password_change`, Better Auth's behaviour); with
/// `revokeOtherSessions` every other session of the user ends too. All of it commits together.
async fn change_password(opts: Opts, ctx: Ctx) -> Result<Reply, ApiError> {
    let body: ChangePasswordBody = ctx.body()?;
    let current = ctx.require_sensitive_session().await?;
    check_length(&opts, &body.new_password)?;
    if js_len(&body.current_password) > opts.max_password_length {
        return Err(ApiError::bad_request(core::PASSWORD_TOO_LONG));
    }
    let auth = ctx.auth();
    let store = ctx.store();
    let hasher = auth.password_hasher();
    let account = store
        .credential_account(&current.user.id)
        .await?
        .filter(|a| a.password.is_some())
        .ok_or_else(|| ApiError::bad_request(core::CREDENTIAL_ACCOUNT_NOT_FOUND))?;
    let stored = account.password.as_deref().unwrap_or_default();
    let verified = hasher
        .verify(stored, &body.current_password)
        .await
        .map_err(hash_failed)?;
    if !verified.ok {
        return Err(ApiError::bad_request(core::INVALID_PASSWORD));
    }
    auth.check_new_password(&ctx, &body.new_password).await?;
    let new_hash = hasher.hash(&body.new_password).await.map_err(hash_failed)?;
    let revoke_others = body.revoke_other_sessions == Some(true);
    let rotate = revoke_others || !auth.options().security.keep_session_on_password_change;
    let tx = ctx.begin().await?;
    let in_tx = tx.store();
    in_tx.set_password(&account.id, &new_hash).await?;
    in_tx.revoke_user_tokens(&current.user.id).await?;
    if !rotate {
        tx.commit().await?;
        return Ok(Reply::json(json!({ "token": null, "user": current.user })));
    }
    if revoke_others {
        in_tx.delete_user_sessions(&current.user.id, None).await?;
    } else {
        auth.delete_session(in_tx, &current.session.token).await?;
    }
    let dont_remember = auth.has_dont_remember(&ctx);
    let session = auth
        .create_session(in_tx, &ctx, &current.user.id, dont_remember)
        .await?;
    tx.commit().await?;
    let out = json!({ "token": session.token, "user": current.user });
    let mut reply = Reply::json(out);
    auth.set_session_cookie(&ctx, &mut reply, &session, &current.user, None);
    Ok(reply)
}
