//! The engine's own endpoints: sessions, the signed-in user, health.

mod account;
mod error_page;
mod session;
mod user;

pub(crate) use account::check_password;
pub use account::PasswordCheck;

use crate::context::Reply;
use crate::plugin::Endpoint;

pub(crate) fn core_endpoints() -> Vec<Endpoint> {
    let mut v = vec![Endpoint::get("ok", "/ok", |_| async {
        Ok(Reply::json(serde_json::json!({ "ok": true })))
    })];
    v.extend(session::endpoints());
    v.extend(error_page::endpoints());
    v.extend(user::endpoints());
    v.extend(account::endpoints());
    v.extend(crate::email_verification::endpoints());
    v.extend(crate::change_email::endpoints());
    v.extend(crate::delete_user::endpoints());
    v
}
