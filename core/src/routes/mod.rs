//! The engine's own features, each a [`Plugin`] the engine registers before the
//! application's: sessions (`/get-session`, `/sign-out`, the list and revoke routes), the
//! signed-in user (`/update-user`), accounts (`/list-accounts`, `/update-session`,
//! `/verify-password`), email verification, change-email, delete-user, and health (`/ok`,
//! `/error`). They go through the same trait, pipeline and registry as any plugin; each reads
//! its section of [`Options`](crate::Options) (`email_verification`, `change_email`,
//! `delete_user`: Better Auth's layout, which sign-in and sign-up read too), and each feature
//! beyond sessions stays off or inert until its options turn it on.

mod account;
mod error_page;
mod session;
mod user;

pub(crate) use account::check_password;
pub use account::PasswordCheck;

use std::sync::Arc;

use crate::context::Reply;
use crate::plugin::{Endpoint, Plugin};

/// One built-in feature: a plugin with an id and its endpoints.
struct Builtin {
    id: &'static str,
    endpoints: fn() -> Vec<Endpoint>,
}

impl Plugin for Builtin {
    fn id(&self) -> &'static str {
        self.id
    }

    fn endpoints(&self) -> Vec<Endpoint> {
        (self.endpoints)()
    }
}

fn health() -> Vec<Endpoint> {
    let mut v = vec![Endpoint::get("ok", "/ok", |_| async {
        Ok(Reply::json(serde_json::json!({ "ok": true })))
    })];
    v.extend(error_page::endpoints());
    v
}

/// The built-in plugins, in the order their endpoints are registered.
pub(crate) fn builtin_plugins() -> Vec<Arc<dyn Plugin>> {
    let builtins = [
        Builtin {
            id: "health",
            endpoints: health,
        },
        Builtin {
            id: "session",
            endpoints: session::endpoints,
        },
        Builtin {
            id: "user",
            endpoints: user::endpoints,
        },
        Builtin {
            id: "account",
            endpoints: account::endpoints,
        },
        Builtin {
            id: "email-verification",
            endpoints: crate::email_verification::endpoints,
        },
        Builtin {
            id: "change-email",
            endpoints: crate::change_email::endpoints,
        },
        Builtin {
            id: "delete-user",
            endpoints: crate::delete_user::endpoints,
        },
    ];
    builtins
        .into_iter()
        .map(|b| Arc::new(b) as Arc<dyn Plugin>)
        .collect()
}
