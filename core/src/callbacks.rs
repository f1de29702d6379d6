//! Callbacks an application gives the engine: code run around an account change
//! ([`UserCallback`]: Better Auth's `beforeDelete`, `afterEmailVerification`, ...) and the
//! delivery of a link the user must open ([`Delivery`]: Better Auth's
//! `sendChangeEmailConfirmation`, `sendDeleteAccountVerification`).
//!
//! Every callback gets the request's [`Ctx`] (headers, client address, the engine) as Better
//! Auth's get the `Request`.

use std::future::Future;
use std::sync::Arc;

use crate::context::Ctx;
use crate::error::ApiError;
use crate::storage::User;
use crate::BoxFuture;

/// Runs with the user an account change is about. An error from a `before…` callback stops
/// the change and is the request's answer; an error from an `after…` callback is the answer
/// too, though the change has been made (as in Better Auth).
#[derive(Clone)]
pub struct UserCallback(Arc<UserFn>);

type UserFn = dyn Fn(User, Ctx) -> BoxFuture<'static, Result<(), ApiError>> + Send + Sync;

impl UserCallback {
    /// Wraps an async function of the user and the request.
    pub fn new<F, Fut>(f: F) -> Self
    where
        F: Fn(User, Ctx) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), ApiError>> + Send + 'static,
    {
        Self(Arc::new(move |user, ctx| Box::pin(f(user, ctx))))
    }

    /// Runs it.
    pub async fn call(&self, user: &User, ctx: &Ctx) -> Result<(), ApiError> {
        (self.0)(user.clone(), ctx.clone()).await
    }
}

impl std::fmt::Debug for UserCallback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UserCallback")
    }
}

/// A link the application delivers itself: what Better Auth hands its `send…` callbacks.
#[derive(Clone)]
pub struct LinkMail {
    /// The user the link is for, as stored (with the current email).
    pub user: User,
    /// The address asked for, for a change-email confirmation.
    pub new_email: Option<String>,
    /// The link to open. Secret.
    pub url: String,
    /// The token in the link. Secret.
    pub token: String,
}

impl std::fmt::Debug for LinkMail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkMail")
            .field("user", &self.user.id)
            .finish_non_exhaustive()
    }
}

type SendLinkFn = dyn Fn(LinkMail, Ctx) -> BoxFuture<'static, Result<(), ApiError>> + Send + Sync;

/// How the engine delivers a link of a flow that needs one.
#[derive(Clone)]
#[non_exhaustive]
pub enum Delivery {
    /// Mail it through the engine's [`EmailSender`](crate::email::EmailSender) with the flow's
    /// template in [`EmailTemplates`](crate::email::EmailTemplates). The engine refuses to
    /// build when a flow is set to this without a sender.
    Email,
    /// Hand it to the application, which sends it (and may log, queue or refuse it).
    Callback(Arc<SendLinkFn>),
}

impl Delivery {
    /// Delivery by an async function of the link and the request.
    pub fn callback<F, Fut>(f: F) -> Self
    where
        F: Fn(LinkMail, Ctx) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), ApiError>> + Send + 'static,
    {
        Self::Callback(Arc::new(move |mail, ctx| Box::pin(f(mail, ctx))))
    }
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Email => f.write_str("Email"),
            Self::Callback(_) => f.write_str("Callback"),
        }
    }
}
