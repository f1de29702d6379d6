//! One-time codes: made, stored in a verification row as `<stored>:<attempts>` (Better Auth's
//! format), delivered by mail or the application's callback.

use base64::Engine as _;
use portcullis::crypto::{random_string, Secret};
use portcullis::email::{Address, Message};
use portcullis::storage::User;
use portcullis::Auth;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::options::OtpStorage;
use crate::{OtpDelivery, Shared, OTP_MESSAGE_KIND};

/// A fresh code of `digits` decimal digits.
pub(crate) fn new_code(digits: usize) -> String {
    random_string(digits.max(1), b"0123456789")
}

fn hash(code: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(code.as_bytes()))
}

/// The stored form of `code`.
pub(crate) fn seal(code: &str, storage: OtpStorage, secret: &Secret) -> String {
    match storage {
        OtpStorage::Plain => code.to_owned(),
        OtpStorage::Hashed => hash(code),
        OtpStorage::Encrypted => secret.encrypt(code),
    }
}

/// Whether `code` is the one whose stored form is `stored`, in constant time.
pub(crate) fn matches(stored: &str, code: &str, storage: OtpStorage, secret: &Secret) -> bool {
    let expected = match storage {
        OtpStorage::Plain => stored.to_owned(),
        OtpStorage::Hashed => return bool::from(stored.as_bytes().ct_eq(hash(code).as_bytes())),
        OtpStorage::Encrypted => match secret.decrypt(stored) {
            Ok(plain) => plain,
            Err(_) => return false,
        },
    };
    bool::from(expected.as_bytes().ct_eq(code.as_bytes()))
}

/// Splits a verification value `<stored>:<attempts>`.
pub(crate) fn split_value(value: &str) -> (&str, u32) {
    match value.rsplit_once(':') {
        Some((stored, n)) => (stored, n.parse().unwrap_or(u32::MAX)),
        None => (value, 0),
    }
}

impl Shared {
    /// Whether one-time codes can be delivered on this engine.
    pub(crate) fn otp_available(&self, auth: &Auth) -> bool {
        self.send_otp.is_some() || (self.options.otp.send_by_email && auth.email_sender().is_some())
    }

    /// Delivers `otp` to `user`. Failures are logged, never shown to the client.
    pub(crate) async fn deliver_otp(&self, auth: &Auth, user: &User, otp: &str) {
        if let Some(send) = &self.send_otp {
            let delivery = OtpDelivery {
                user: user.clone(),
                otp: otp.to_owned(),
            };
            if let Err(e) = send(delivery).await {
                tracing::error!(user = %user.id, error = %e, "two-factor code could not be delivered");
            }
            return;
        }
        let to = match Address::parse(&user.email) {
            Ok(to) => to,
            Err(e) => {
                tracing::error!(user = %user.id, error = %e, "two-factor code not mailed: bad address");
                return;
            }
        };
        let app_name = &auth.options().email.app_name;
        let minutes = self.options.otp.period.to_string();
        let (subject, text, html) = self.otp_template.render(&[
            ("app_name", app_name),
            ("name", &user.name),
            ("email", &user.email),
            ("otp", otp),
            ("expires_in_minutes", &minutes),
        ]);
        let message = Message::new(OTP_MESSAGE_KIND, to, &subject, text, html).with_otp(otp);
        // `send_email` logs a failure itself.
        let _ = auth.send_email(&message).await;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn every_storage_matches_the_right_code_only() {
        let s = Secret::new("0123456789abcdef0123456789abcdef").unwrap();
        for storage in [OtpStorage::Plain, OtpStorage::Hashed, OtpStorage::Encrypted] {
            let stored = seal("123456", storage, &s);
            assert!(matches(&stored, "123456", storage, &s), "{storage:?}");
            assert!(!matches(&stored, "123457", storage, &s), "{storage:?}");
            assert!(!matches(&stored, "", storage, &s), "{storage:?}");
            assert!(
                !stored.contains(':'),
                "stored form never contains the separator"
            );
        }
        // SHA-256 of "123456", base64url without padding.
        assert_eq!(
            seal("123456", OtpStorage::Hashed, &s),
            "jZae727K08KaOmKSgOaGzww_XVqGr_PKEgIMkjrcbJI"
        );
    }

    #[test]
    fn values_split_into_code_and_attempts() {
        assert_eq!(split_value("123456:0"), ("123456", 0));
        assert_eq!(split_value("123456:4"), ("123456", 4));
        assert_eq!(split_value("123456:x").1, u32::MAX);
        assert_eq!(new_code(6).len(), 6);
        assert!(new_code(8).bytes().all(|b| b.is_ascii_digit()));
    }
}
