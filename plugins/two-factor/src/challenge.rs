//! The sign-in challenge: the after hook that turns any sign-in of a two-factor user (but
//! passkeys and social sign-in, by default) into `{twoFactorRedirect: true}`, or for a link's
//! redirect into one to the two-factor page, the signed `two_factor` cookie that names the pending
//! challenge, trusted devices, per-challenge attempt budgets and the account lock-out.

use std::sync::Arc;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use http::{header, HeaderValue, StatusCode};
use portcullis::cookies::SetCookie;
use portcullis::crypto::random_string;
use portcullis::storage::{Op, SessionAndUser, Store, User, Verification, Where};
use portcullis::{codes as core, ApiError, Ctx, Hook, Matcher, Reply};
use serde_json::json;

use crate::options::ChallengeOptions;
use crate::row::{self, TwoFactorRow};
use crate::{codes, Shared};

/// Base name of the challenge cookie.
const TWO_FACTOR_COOKIE: &str = "two_factor";
/// Base name of the trusted-device cookie.
const TRUST_DEVICE_COOKIE: &str = "trust_device";
/// Prefix of trusted-device verification rows.
const TRUST_PREFIX: &str = "trust-device-";
/// Wrong TOTP or backup codes one challenge tolerates (a constant in Better Auth).
const ATTEMPTS_PER_CHALLENGE: u32 = 5;
/// Better Auth's default random-string alphabet.
const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_";

/// The password sign-in endpoints, the only ones Better Auth challenges.
const PASSWORD_SIGN_IN: [&str; 3] = [
    "/sign-in/email",
    "/sign-in/username",
    "/sign-in/phone-number",
];

/// Passkey sign-in (Better Auth's passkey plugin's routes).
fn is_passkey(route: &str) -> bool {
    route.starts_with("/passkey/") || route == "/sign-in/passkey"
}

/// Social sign-in: OAuth callbacks, an ID token at `/sign-in/social`, one-tap.
fn is_social(route: &str) -> bool {
    route.starts_with("/callback/")
        || route.starts_with("/oauth2/callback/")
        || route == "/sign-in/social"
        || route == "/sign-in/oauth2"
        || route == "/one-tap/callback"
}

/// Whether a new session made at `route` waits for the second factor (when its user has
/// two-factor on). The plugin's own endpoints complete a challenge or replace a session the
/// user already has, and are never challenged.
fn is_challenged(options: &ChallengeOptions, route: &str) -> bool {
    if options.password_sign_in_only {
        return PASSWORD_SIGN_IN.contains(&route);
    }
    if route.starts_with("/two-factor/") {
        return false;
    }
    if is_passkey(route) {
        return options.passkey;
    }
    if is_social(route) {
        return options.social;
    }
    true
}

pub(crate) fn hooks(shared: Arc<Shared>) -> Vec<Hook> {
    let options = shared.options.challenge.clone();
    let on = portcullis::plugin::Handlers::new(shared);
    vec![
        on.after(
            Matcher::Custom(Arc::new(move |ctx: &Ctx| {
                is_challenged(&options, ctx.route())
            })),
            intercept_sign_in,
        ),
        Hook::after(
            Matcher::Paths(vec![
                "/revoke-sessions".into(),
                "/revoke-other-sessions".into(),
            ]),
            forget_devices_on_revoke,
        ),
    ]
}

/// 401 `INVALID_TWO_FACTOR_COOKIE`.
pub(crate) fn invalid_cookie() -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, codes::INVALID_TWO_FACTOR_COOKIE)
}

/// `err` with a `Set-Cookie` that deletes the challenge cookie.
fn dropping_challenge(ctx: &Ctx, err: ApiError) -> ApiError {
    let jar = ctx.auth().cookies();
    let expired = jar.expired(jar.name(TWO_FACTOR_COOKIE));
    match HeaderValue::from_str(&expired.to_header_value()) {
        Ok(v) => err.with_header(header::SET_COOKIE, v),
        Err(_) => err,
    }
}

pub(crate) fn two_factor_enabled(user: &User) -> bool {
    user.get(row::TWO_FACTOR_ENABLED) == Some(true)
}

/// A verification row of this plugin, created now.
pub(crate) fn verification(
    ctx: &Ctx,
    identifier: String,
    value: String,
    expires_at: DateTime<Utc>,
) -> Verification {
    let now = portcullis::time::now();
    Verification {
        id: ctx.auth().options().ids.generate(),
        identifier,
        value,
        expires_at,
        created_at: now,
        updated_at: now,
    }
}

/// `now + s` seconds; the options are validated to at most ten years, so this cannot overflow.
pub(crate) fn from_now(s: u64) -> DateTime<Utc> {
    let now = portcullis::time::now();
    now.checked_add_signed(chrono::Duration::seconds(i64::try_from(s).unwrap_or(0)))
        .unwrap_or(now)
}

async fn intercept_sign_in(
    shared: Arc<Shared>,
    ctx: Ctx,
    result: Result<Reply, ApiError>,
) -> Result<Reply, ApiError> {
    let mut reply = result?;
    let Some(new) = reply.new_session().cloned() else {
        return Ok(reply);
    };
    if !two_factor_enabled(&new.user) {
        return Ok(reply);
    }
    let auth = ctx.auth();
    let jar = auth.cookies();
    let user_id = new.user.id.as_str();

    if let Some(rotated) = rotate_trusted_device(&ctx, &shared, user_id).await? {
        tracing::debug!(user = %user_id, "trusted device: two-factor challenge skipped");
        reply.set_cookie(&rotated);
        return Ok(reply);
    }
    if ctx.cookie(&jar.name(TRUST_DEVICE_COOKIE)).is_some() {
        reply.set_cookie(&jar.expired(jar.name(TRUST_DEVICE_COOKIE)));
    }

    // Take back the session the sign-in made: nothing may treat the user as signed in
    // before the second factor.
    let store = ctx.store();
    ctx.auth().delete_session(store, &new.session.token).await?;
    auth.expire_session_token_cookies(&ctx, &mut reply);
    reply.set_new_session(None);
    // The sign-in's `Location` (when it had a callbackURL) stays, as in Better Auth: on a
    // 200 no client follows it.

    let identifier = format!("2fa-{}", random_string(20, ALPHABET));
    let expires_at = from_now(shared.options.two_factor_cookie_max_age);
    store
        .create_verification(&verification(
            &ctx,
            identifier.clone(),
            new.user.id.clone(),
            expires_at,
        ))
        .await?;
    store
        .create_verification(&verification(
            &ctx,
            attempts_identifier(&identifier),
            "0".into(),
            expires_at,
        ))
        .await?;
    let max_age = i64::try_from(shared.options.two_factor_cookie_max_age).unwrap_or(600);
    reply.set_cookie(
        &auth
            .signed_cookie(jar.name(TWO_FACTOR_COOKIE), &identifier)
            .max_age(max_age),
    );

    let mut methods = Vec::new();
    if !shared.options.totp.disable {
        let row = row::find(ctx.store(), user_id).await?;
        if row.is_some_and(|r| r.is_verified()) {
            methods.push("totp");
        }
    }
    if shared.otp_available(auth) {
        methods.push("otp");
    }
    tracing::debug!(user = %user_id, route = %ctx.route(), "sign-in held for the second factor");
    // A sign-in by a link is a navigation: no client reads a JSON body, so it goes to the
    // page that asks for the second factor (the `two_factor` cookie set either way).
    if reply.status().is_redirection() {
        let target = match &shared.options.two_factor_page {
            Some(page) => page.clone(),
            None => {
                let location = reply
                    .headers()
                    .get(header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("/");
                with_query_flag(location, "twoFactorRedirect=true")
            }
        };
        return Ok(reply.into_redirect(&target));
    }
    reply.set_json(json!({ "twoFactorRedirect": true, "twoFactorMethods": methods }));
    Ok(reply)
}

/// `url` with `pair` added to its query (before any fragment).
fn with_query_flag(url: &str, pair: &str) -> String {
    let (rest, fragment) = match url.split_once('#') {
        Some((r, f)) => (r, Some(f)),
        None => (url, None),
    };
    let sep = if rest.contains('?') { '&' } else { '?' };
    let mut out = format!("{rest}{sep}{pair}");
    if let Some(f) = fragment {
        out.push('#');
        out.push_str(f);
    }
    out
}

/// Whether `id` has the shape of a challenge id (`2fa-` and 20 random characters).
fn is_challenge_id(id: &str) -> bool {
    id.strip_prefix("2fa-")
        .is_some_and(|rest| rest.len() == 20 && rest.bytes().all(|b| ALPHABET.contains(&b)))
}

fn attempts_identifier(challenge: &str) -> String {
    format!("2fa-attempts-{challenge}")
}

/// `base64url(HMAC(secret, userId + "!" + trustId))`, the tag in a trusted-device cookie.
fn trust_tag(ctx: &Ctx, user_id: &str, trust_id: &str) -> String {
    let mac = ctx
        .auth()
        .secret()
        .hmac(format!("{user_id}!{trust_id}").as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac)
}

/// The trust id of the request's trusted-device cookie, if it is signed and bound to
/// `user_id`.
fn trusted_id(ctx: &Ctx, user_id: &str) -> Option<String> {
    let value = ctx.signed_cookie(&ctx.auth().cookies().name(TRUST_DEVICE_COOKIE))?;
    let (tag, trust_id) = value.split_once('!')?;
    // Under any of the secrets, so a rotation forgets no trusted device.
    let tag = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(tag)
        .ok()?;
    let message = format!("{user_id}!{trust_id}");
    ctx.auth()
        .secret()
        .verify_hmac(message.as_bytes(), &tag)
        .then(|| trust_id.to_owned())
}

/// A new trusted-device record for `user_id` and the cookie that carries it.
pub(crate) async fn trust_device(
    ctx: &Ctx,
    shared: &Shared,
    user_id: &str,
) -> Result<SetCookie, ApiError> {
    let trust_id = format!("{TRUST_PREFIX}{}", random_string(32, ALPHABET));
    let expires_at = from_now(shared.options.trust_device_max_age);
    ctx.store()
        .create_verification(&verification(
            ctx,
            trust_id.clone(),
            user_id.into(),
            expires_at,
        ))
        .await?;
    let value = format!("{}!{trust_id}", trust_tag(ctx, user_id, &trust_id));
    let max_age = i64::try_from(shared.options.trust_device_max_age).unwrap_or(i64::MAX);
    let jar = ctx.auth().cookies();
    Ok(ctx
        .auth()
        .signed_cookie(jar.name(TRUST_DEVICE_COOKIE), &value)
        .max_age(max_age))
}

/// When the request comes from a device `user_id` trusted: retires that trust record and
/// answers the cookie of a new one (rotation on every use). `None` when it does not.
async fn rotate_trusted_device(
    ctx: &Ctx,
    shared: &Shared,
    user_id: &str,
) -> Result<Option<SetCookie>, ApiError> {
    let Some(trust_id) = trusted_id(ctx, user_id) else {
        return Ok(None);
    };
    let store = ctx.store();
    let Some(record) = store.verification_by_identifier(&trust_id).await? else {
        return Ok(None);
    };
    if record.value != user_id || record.expires_at <= portcullis::time::now() {
        store.delete_verifications(&trust_id).await?;
        return Ok(None);
    }
    // One use per record, however many sign-ins race with the same cookie.
    if !store.consume_verification(&record).await? {
        return Ok(None);
    }
    trust_device(ctx, shared, user_id).await.map(Some)
}

/// Forgets every device `user_id` trusted, except `keep`, through `store` (the request's or a
/// transaction's, so database hooks see it).
pub(crate) async fn forget_devices(
    store: Store<'_>,
    user_id: &str,
    keep: Option<&str>,
) -> Result<(), ApiError> {
    let mut filter = vec![
        Where::new("identifier", Op::StartsWith, TRUST_PREFIX),
        Where::eq("value", user_id),
    ];
    if let Some(keep) = keep {
        filter.push(Where::new("identifier", Op::Ne, keep));
    }
    store.delete_verifications_where(&filter).await?;
    Ok(())
}

/// The expired trusted-device cookie, when the request has one.
pub(crate) fn expire_trust_cookie(ctx: &Ctx, reply: &mut Reply) {
    let jar = ctx.auth().cookies();
    let name = jar.name(TRUST_DEVICE_COOKIE);
    if ctx.cookie(&name).is_some() {
        reply.set_cookie(&jar.expired(name));
    }
}

/// "Sign out everywhere" also ends trusted devices: `/revoke-sessions` forgets all of them,
/// `/revoke-other-sessions` all but the requesting one.
async fn forget_devices_on_revoke(
    ctx: Ctx,
    result: Result<Reply, ApiError>,
) -> Result<Reply, ApiError> {
    let mut reply = result?;
    let Some(current) = ctx.session().await? else {
        return Ok(reply);
    };
    let user_id = current.user.id.as_str();
    if ctx.route() == "/revoke-other-sessions" {
        let keep = trusted_id(&ctx, user_id);
        forget_devices(ctx.store(), user_id, keep.as_deref()).await?;
    } else {
        forget_devices(ctx.store(), user_id, None).await?;
        expire_trust_cookie(&ctx, &mut reply);
    }
    Ok(reply)
}

/// Who is verifying: a signed-in user (enrolment, re-verification) or a pending sign-in.
pub(crate) enum Verifier {
    /// A session: no challenge cookie needed, no attempt budget, no lock-out.
    Session(Box<SessionAndUser>),
    /// A pending sign-in, named by the `two_factor` cookie.
    Challenge {
        /// `2fa-<random>`.
        identifier: String,
        /// The user signing in.
        user: Box<User>,
    },
}

impl Verifier {
    /// The request's session, else its valid challenge, else 401 `INVALID_TWO_FACTOR_COOKIE`.
    pub(crate) async fn of(ctx: &Ctx) -> Result<Self, ApiError> {
        if let Some(session) = ctx.session().await? {
            return Ok(Self::Session(Box::new(session)));
        }
        let jar = ctx.auth().cookies();
        // Only a challenge id: never an OTP, attempts or trust row another cookie could name.
        let identifier = ctx
            .signed_cookie(&jar.name(TWO_FACTOR_COOKIE))
            .filter(|id| is_challenge_id(id))
            .ok_or_else(invalid_cookie)?;
        let store = ctx.store();
        let challenge = store
            .verification_by_identifier(&identifier)
            .await?
            .filter(|v| v.expires_at > portcullis::time::now())
            .ok_or_else(invalid_cookie)?;
        let user = store
            .user_by_id(&challenge.value)
            .await?
            .ok_or_else(invalid_cookie)?;
        Ok(Self::Challenge {
            identifier,
            user: Box::new(user),
        })
    }

    /// The user being verified.
    pub(crate) fn user(&self) -> &User {
        match self {
            Self::Session(s) => &s.user,
            Self::Challenge { user, .. } => user,
        }
    }

    /// What one-time codes of this verification are filed under.
    pub(crate) fn otp_key(&self) -> String {
        match self {
            Self::Session(s) => format!("{}!{}", s.user.id, s.session.id),
            Self::Challenge { identifier, .. } => identifier.clone(),
        }
    }

    /// Whether this is a pending sign-in.
    pub(crate) fn is_challenge(&self) -> bool {
        matches!(self, Self::Challenge { .. })
    }

    /// The second factor checked out: for a session, its token and user; for a challenge,
    /// the challenge is consumed and the session is created, with a trusted-device cookie
    /// when asked.
    pub(crate) async fn complete(
        self,
        ctx: &Ctx,
        shared: &Shared,
        trust: bool,
    ) -> Result<Reply, ApiError> {
        let (identifier, user) = match self {
            Self::Session(s) => {
                return Ok(Reply::json(
                    json!({ "token": s.session.token, "user": s.user }),
                ));
            }
            Self::Challenge { identifier, user } => (identifier, *user),
        };
        let auth = ctx.auth();
        let store = ctx.store();
        let consumed = match store.verification_by_identifier(&identifier).await? {
            Some(v) if v.value == user.id => store.consume_verification(&v).await?,
            _ => false,
        };
        if !consumed {
            return Err(dropping_challenge(ctx, invalid_cookie()));
        }
        let dont_remember = auth.has_dont_remember(ctx);
        let session = auth
            .create_session(store, ctx, &user.id, dont_remember)
            .await?;
        let body = json!({ "token": session.token, "user": user });
        let mut reply = auth.signed_in_reply(ctx, body, session, user.clone(), dont_remember);
        let jar = auth.cookies();
        reply.set_cookie(&jar.expired(jar.name(TWO_FACTOR_COOKIE)));
        if trust {
            reply.set_cookie(&trust_device(ctx, shared, &user.id).await?);
            reply.set_cookie(&jar.expired(jar.dont_remember.clone()));
        }
        tracing::info!(user = %user.id, "two-factor sign-in completed");
        Ok(reply)
    }
}

/// One try out of a challenge's budget; give it back with [`Attempt::settle`].
pub(crate) struct Attempt {
    identifier: String,
    count: u32,
    expires_at: DateTime<Utc>,
}

impl Attempt {
    /// Takes a try from the challenge `identifier`. Tries are serialised: a request racing
    /// another one of the same challenge is refused. When the budget is spent the challenge
    /// ends (400 `TOO_MANY_ATTEMPTS_REQUEST_NEW_CODE`).
    pub(crate) async fn take(ctx: &Ctx, identifier: &str) -> Result<Self, ApiError> {
        let store = ctx.store();
        let key = attempts_identifier(identifier);
        let row = store
            .verification_by_identifier(&key)
            .await?
            .filter(|v| v.expires_at > portcullis::time::now())
            .ok_or_else(invalid_cookie)?;
        if !store.consume_verification(&row).await? {
            return Err(invalid_cookie());
        }
        let count = row.value.parse::<u32>().unwrap_or(u32::MAX);
        if count >= ATTEMPTS_PER_CHALLENGE {
            store.delete_verifications(identifier).await?;
            return Err(dropping_challenge(
                ctx,
                ApiError::bad_request(codes::TOO_MANY_ATTEMPTS_REQUEST_NEW_CODE),
            ));
        }
        Ok(Self {
            identifier: key,
            count,
            expires_at: row.expires_at,
        })
    }

    /// Puts the budget back, one try smaller when `failed`.
    pub(crate) async fn settle(self, ctx: &Ctx, failed: bool) -> Result<(), ApiError> {
        let count = if failed { self.count + 1 } else { self.count };
        ctx.store()
            .create_verification(&verification(
                ctx,
                self.identifier,
                count.to_string(),
                self.expires_at,
            ))
            .await?;
        Ok(())
    }
}

/// 429 `ACCOUNT_TEMPORARILY_LOCKED` while the user's second factor is locked; an expired
/// lock is lifted.
pub(crate) async fn check_lock(
    ctx: &Ctx,
    shared: &Shared,
    row: &TwoFactorRow,
) -> Result<(), ApiError> {
    if !shared.options.account_lockout.enabled {
        return Ok(());
    }
    match row.locked_until {
        Some(until) if until > portcullis::time::now() => Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            codes::ACCOUNT_TEMPORARILY_LOCKED,
        )),
        Some(_) => {
            row::reset_failures(ctx.store(), row).await?;
            Ok(())
        }
        None => Ok(()),
    }
}

/// Counts a failed verification against the lock-out.
pub(crate) async fn record_failure(
    ctx: &Ctx,
    shared: &Shared,
    row: &TwoFactorRow,
) -> Result<(), ApiError> {
    let lockout = &shared.options.account_lockout;
    if lockout.enabled {
        row::record_failure(
            ctx.store(),
            row,
            lockout.max_failed_attempts,
            std::time::Duration::from_secs(lockout.duration_seconds),
        )
        .await?;
    }
    Ok(())
}

/// 400 `FAILED_TO_CREATE_SESSION`, for a code that would enable two-factor without a session.
pub(crate) fn no_session() -> ApiError {
    ApiError::bad_request(core::FAILED_TO_CREATE_SESSION)
}
