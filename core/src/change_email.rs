//! Changing a user's email address, as Better Auth 1.7 does it (`user.changeEmail`).
//!
//! `POST /change-email {newEmail, callbackURL?}` (signed in) answers `{"status":true}` and,
//! when [`ChangeEmailOptions::enabled`]:
//!
//! 1. a user whose address is not verified, with
//!    [`update_email_without_verification`](ChangeEmailOptions::update_email_without_verification):
//!    the address changes at once and a verification link goes to the new one;
//! 2. a verified user, with
//!    [`send_change_email_confirmation`](ChangeEmailOptions::send_change_email_confirmation)
//!    and an email sender: a confirmation link goes to the **current** address; opening it
//!    mails a verification link to the new one;
//! 3. otherwise, with an email sender: a verification link goes to the new address.
//!
//! Opening the verification link (`/verify-email`, token with `requestType:
//! "change-email-verification"`) changes the address and keeps `emailVerified` as it was. An
//! address that belongs to another user gets the same `{"status":true}` and no mail, so the
//! answer does not tell whether it is taken; mail is sent in the background for the same
//! reason.
//!
//! Errors: 400 `CHANGE_EMAIL_DISABLED`; 400 `{"message":"Email is the same"}`; 400
//! `{"message":"Verification email isn't enabled"}` when no flow applies; 400
//! `VALIDATION_ERROR` for an address that is not one plain address (CR/LF, lists).
//!
//! The links are the stateless JWTs of [`crate::email_verification`], bound to the user id:
//! a link only works while the user's address is still the one it was issued for, so a used
//! verification link is refused (`INVALID_TOKEN`), and a session of another user opening it
//! gets `INVALID_USER`.

use http::StatusCode;
use serde::Deserialize;
use serde_json::json;

use crate::callbacks::{Delivery, LinkMail};
use crate::context::{Ctx, Reply};
use crate::email::LinkKind;
use crate::email_verification::{followed, refuse, VerificationClaims, VerificationError};
use crate::error::{codes, ApiError};
use crate::input::{Shape, Type};
use crate::plugin::Endpoint;
use crate::storage::{Row, StorageError, User};
use crate::Auth;

/// The `requestType` of the link to the current address.
const CONFIRMATION: &str = "change-email-confirmation";
/// The `requestType` of the link to the new address.
const VERIFICATION: &str = "change-email-verification";

/// Options of `/change-email` (Better Auth's `user.changeEmail`); off by default.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ChangeEmailOptions {
    /// Serve `/change-email` at all.
    pub enabled: bool,
    /// Ask a verified user to confirm from the current address first (Better Auth's
    /// `sendChangeEmailConfirmation`). Needs an email sender either way: the second link is
    /// a verification mail to the new address.
    pub send_change_email_confirmation: Option<Delivery>,
    /// Change the address of a user whose address is not verified at once, without a link.
    pub update_email_without_verification: bool,
}

pub(crate) fn endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint::post("changeEmail", "/change-email", change_email).body_shape(
            Shape::object()
                .field("newEmail", Type::Email)
                .optional_field("callbackURL", Type::String),
        ),
    ]
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ChangeBody {
    new_email: String,
    #[serde(default, rename = "callbackURL")]
    callback_url: Option<String>,
}

fn no_flow() -> ApiError {
    tracing::error!("change-email: no email sender, and no flow without one applies");
    ApiError::without_code(StatusCode::BAD_REQUEST, "Verification email isn't enabled")
}

/// `POST /change-email`.
async fn change_email(ctx: Ctx) -> Result<Reply, ApiError> {
    let body: ChangeBody = ctx.body()?;
    if !crate::validate::is_valid_email(&body.new_email) {
        return Err(ApiError::validation(
            "[body.newEmail] Invalid email address",
        ));
    }
    let current = ctx.require_sensitive_session().await?;
    let auth = ctx.auth();
    let opts = &auth.options().change_email;
    if !opts.enabled {
        return Err(ApiError::bad_request(codes::CHANGE_EMAIL_DISABLED));
    }
    let new_email = body.new_email.to_lowercase();
    let user = &current.user;
    if new_email == user.email {
        return Err(ApiError::without_code(
            StatusCode::BAD_REQUEST,
            "Email is the same",
        ));
    }
    // Which flow applies is decided before the address is looked up, so that a taken
    // address and a free one get the same answer whatever the configuration.
    let can_update_directly = !user.email_verified && opts.update_email_without_verification;
    let can_send_verification = auth.email_sender().is_some();
    let confirmation = opts
        .send_change_email_confirmation
        .clone()
        .filter(|_| can_send_verification && user.email_verified);
    if !can_update_directly && confirmation.is_none() && !can_send_verification {
        return Err(no_flow());
    }
    let done = || Reply::json(json!({ "status": true }));
    let store = ctx.store();
    if store.user_by_email(&new_email).await?.is_some() {
        // The same signing work as the other answers.
        let _ = auth.change_email_token(&user.email, &new_email, CONFIRMATION, &user.id);
        tracing::info!("change-email asked for an address that is taken");
        return Ok(done());
    }
    let callback = body.callback_url.as_deref();

    if can_update_directly {
        let set = Row::new().with("email", new_email.as_str());
        let updated = match change_address(&ctx, &user.id, set).await {
            Ok(Some(u)) => u,
            Ok(None) => return Err(ApiError::unauthorized()),
            // Taken between the look-up and the write: the same answer as above.
            Err(StorageError::UniqueViolation) => return Ok(done()),
            Err(e) => return Err(e.into()),
        };
        tracing::info!("email changed without verification");
        let mut reply = done();
        auth.set_session_cookie(&ctx, &mut reply, &current.session, &updated, None);
        if can_send_verification {
            let token = auth.email_verification_token(&new_email, Some(&user.id));
            let mail = auth.verification_link(&ctx, updated, token, callback);
            auth.mail_verification_in_background(&ctx, new_email, mail);
        }
        return Ok(reply);
    }

    if let Some(delivery) = confirmation {
        let token = auth.change_email_token(&user.email, &new_email, CONFIRMATION, &user.id);
        let mut mail = auth.verification_link(&ctx, user.clone(), token, callback);
        mail.new_email = Some(new_email);
        auth.deliver_link_in_background(
            &ctx,
            delivery,
            LinkKind::ChangeEmailConfirmation,
            user.email.clone(),
            mail,
            auth.options().email_verification.expires_in,
        );
        return Ok(done());
    }

    auth.send_change_verification(&ctx, user.clone(), &new_email, callback);
    Ok(done())
}

/// Writes the user's new address (`set`) and, in the same transaction, ends the reset and
/// deletion links mailed to the old one.
async fn change_address(ctx: &Ctx, user_id: &str, set: Row) -> Result<Option<User>, StorageError> {
    let tx = ctx.begin().await?;
    let in_tx = tx.store();
    let Some(updated) = in_tx.update_user(user_id, set).await? else {
        return Ok(None);
    };
    in_tx.revoke_user_tokens(user_id).await?;
    tx.commit().await?;
    Ok(Some(updated))
}

impl Auth {
    /// Mails verification link `mail` to `to` in the background, so how long the mail server
    /// takes tells a caller nothing. Failures are logged.
    pub(crate) fn mail_verification_in_background(&self, ctx: &Ctx, to: String, mail: LinkMail) {
        let ttl = self.options().email_verification.expires_in;
        self.deliver_link_in_background(ctx, Delivery::Email, LinkKind::VerifyEmail, to, mail, ttl);
    }

    /// Mails (in the background) the link that moves `user` to `new_email`, to that address.
    fn send_change_verification(
        &self,
        ctx: &Ctx,
        mut user: User,
        new_email: &str,
        callback: Option<&str>,
    ) {
        let token = self.change_email_token(&user.email, new_email, VERIFICATION, &user.id);
        user.email = new_email.to_owned();
        let mail = self.verification_link(ctx, user, token, callback);
        self.mail_verification_in_background(ctx, new_email.to_owned(), mail);
    }
}

/// `/verify-email` with a change-email token (`updateTo` set).
pub(crate) async fn follow_link(
    ctx: &Ctx,
    claims: VerificationClaims,
    callback: Option<&str>,
) -> Result<Reply, ApiError> {
    let (Some(user_id), Some(new_email)) = (claims.user_id.as_deref(), claims.update_to) else {
        return refuse(callback, VerificationError::Invalid);
    };
    let auth = ctx.auth();
    let store = ctx.store();
    let Some(user) = store.user_by_id(user_id).await? else {
        return refuse(callback, VerificationError::UserNotFound);
    };
    // Issued for an address the user no longer has: used already, or overtaken.
    if user.email.to_lowercase() != claims.email {
        return refuse(callback, VerificationError::Invalid);
    }
    // Issued before the password last changed: whoever asked for it may have been in a
    // session the change (or a reset) was meant to end.
    if let (Some(issued), Some(account)) =
        (claims.issued_at, store.credential_account(&user.id).await?)
    {
        if account.updated_at.timestamp() > issued {
            return refuse(callback, VerificationError::Invalid);
        }
    }
    let session = ctx.sensitive_session().await?;
    if session.as_ref().is_some_and(|s| s.user.id != user.id) {
        return refuse(callback, VerificationError::InvalidUser);
    }

    match claims.request_type.as_deref() {
        Some(CONFIRMATION) => {
            if auth.email_sender().is_some() {
                auth.send_change_verification(ctx, user, &new_email, callback);
            }
            Ok(followed(callback, Reply::json(json!({ "status": true }))))
        }
        // Better Auth's older tokens (no `requestType`) change the address at once and ask
        // to verify the new one.
        request_type => {
            let legacy = request_type != Some(VERIFICATION);
            let verified = user.email_verified && !legacy;
            let set = Row::new()
                .with("email", new_email.as_str())
                .with("emailVerified", verified);
            let updated = match change_address(ctx, &user.id, set).await {
                Ok(Some(u)) => u,
                Ok(None) => return refuse(callback, VerificationError::UserNotFound),
                Err(StorageError::UniqueViolation) => {
                    return refuse(callback, VerificationError::EmailTaken)
                }
                Err(e) => return Err(e.into()),
            };
            tracing::info!("email changed");
            if verified {
                if let Some(after) = &auth.options().email_verification.after_email_verification {
                    after.call(&updated, ctx).await?;
                }
            }
            if legacy && auth.email_sender().is_some() {
                let token = auth.email_verification_token(&new_email, Some(&updated.id));
                let mail = auth.verification_link(ctx, updated.clone(), token, callback);
                auth.mail_verification_in_background(ctx, new_email, mail);
            }
            let mut reply = Reply::json(json!({ "status": true, "user": updated }));
            if let Some(current) = &session {
                auth.set_session_cookie(ctx, &mut reply, &current.session, &updated, None);
            }
            Ok(followed(callback, reply))
        }
    }
}
