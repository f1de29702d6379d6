//! TOTP as Better Auth does it: a 32-character random secret whose UTF-8 bytes are the HMAC
//! key (not base32-decoded), HMAC-SHA1, a window of one step either side.

use portcullis::cookies::encode_uri_component;
use portcullis::crypto::random_string;
use subtle::ConstantTimeEq;
use totp_rs::{Algorithm, Secret, TOTP};

/// Better Auth's default `generateRandomString` alphabet: `a-z A-Z 0-9 - _`.
const SECRET_ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_";

/// A fresh TOTP secret: 32 characters, as Better Auth generates them.
pub(crate) fn new_secret() -> String {
    random_string(32, SECRET_ALPHABET)
}

/// The HMAC key of a stored secret: its UTF-8 bytes, or for an imported `base32:` secret the
/// decoded bytes.
fn key_bytes(secret: &str) -> Option<Vec<u8>> {
    match secret.strip_prefix("base32:") {
        Some(b32) => Secret::Encoded(b32.to_ascii_uppercase()).to_bytes().ok(),
        None => Some(secret.as_bytes().to_vec()),
    }
}

/// A TOTP generator for `secret`.
pub(crate) struct Totp {
    inner: TOTP,
    period: u64,
}

impl Totp {
    /// The generator for a stored secret; `None` when an imported secret is not base32.
    pub(crate) fn new(secret: &str, digits: u32, period: u64) -> Option<Self> {
        let key = key_bytes(secret)?;
        let period = period.max(1);
        Some(Self {
            inner: TOTP::new_unchecked(Algorithm::SHA1, digits as usize, 1, period, key),
            period,
        })
    }

    /// The time step of `unix_seconds`.
    pub(crate) fn step(&self, unix_seconds: u64) -> u64 {
        unix_seconds / self.period
    }

    /// The code of time step `step`.
    pub(crate) fn code_at_step(&self, step: u64) -> String {
        self.inner.generate(step * self.period)
    }

    /// The time step whose code `code` is, within one step of `unix_seconds`; compared in
    /// constant time.
    pub(crate) fn matching_step(&self, code: &str, unix_seconds: u64) -> Option<u64> {
        let now = self.step(unix_seconds);
        let mut found = None;
        // Every candidate is compared, whether or not an earlier one matched.
        for step in [now.saturating_sub(1), now, now + 1] {
            let candidate = self.code_at_step(step);
            if bool::from(candidate.as_bytes().ct_eq(code.as_bytes())) {
                found = Some(step);
            }
        }
        found
    }
}

/// `otpauth://totp/<issuer>:<account>?secret=<base32>&issuer=<issuer>&digits=<d>&period=<p>`,
/// byte for byte as Better Auth writes it (`%20` in the label, `+` in the query).
pub(crate) fn uri(secret: &str, issuer: &str, account: &str, digits: u32, period: u64) -> String {
    let b32 = match key_bytes(secret) {
        Some(bytes) => Secret::Raw(bytes).to_encoded().to_string(),
        None => String::new(),
    };
    let issuer_query = serde_urlencoded::to_string([("issuer", issuer)]).unwrap_or_default();
    format!(
        "otpauth://totp/{}:{}?secret={}&{}&digits={}&period={}",
        encode_uri_component(issuer),
        encode_uri_component(account),
        b32.trim_end_matches('='),
        issuer_query,
        digits,
        period
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn secrets_are_32_characters_of_better_auths_alphabet() {
        let s = new_secret();
        assert_eq!(s.len(), 32);
        assert!(s.bytes().all(|b| SECRET_ALPHABET.contains(&b)));
    }

    #[test]
    fn codes_follow_rfc_6238_with_the_secret_bytes_as_key() {
        // RFC 6238 appendix B, SHA-1: the key is the ASCII string "12345678901234567890".
        let t = Totp::new("12345678901234567890", 8, 30).unwrap();
        assert_eq!(t.code_at_step(59 / 30), "94287082");
        assert_eq!(t.code_at_step(1_111_111_109 / 30), "07081804");
        assert_eq!(t.code_at_step(20_000_000_000 / 30), "65353130");
        let six = Totp::new("12345678901234567890", 6, 30).unwrap();
        assert_eq!(six.code_at_step(59 / 30), "287082");
    }

    #[test]
    fn a_code_matches_within_one_step_either_side_only() {
        let t = Totp::new(&new_secret(), 6, 30).unwrap();
        let now = 1_700_000_000;
        let step = t.step(now);
        assert_eq!(t.matching_step(&t.code_at_step(step), now), Some(step));
        assert_eq!(
            t.matching_step(&t.code_at_step(step - 1), now),
            Some(step - 1)
        );
        assert_eq!(
            t.matching_step(&t.code_at_step(step + 1), now),
            Some(step + 1)
        );
        let far = t.code_at_step(step + 3);
        if ![step - 1, step, step + 1]
            .iter()
            .any(|s| t.code_at_step(*s) == far)
        {
            assert_eq!(t.matching_step(&far, now), None);
        }
        assert_eq!(t.matching_step("", now), None);
    }

    #[test]
    fn the_uri_is_better_auths() {
        let uri = uri(
            "12345678901234567890",
            "Better Auth",
            "a@example.com",
            6,
            30,
        );
        assert_eq!(
            uri,
            "otpauth://totp/Better%20Auth:a%40example.com?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Better+Auth&digits=6&period=30"
        );
    }

    #[test]
    fn imported_base32_secrets_are_decoded() {
        let t = Totp::new("base32:gezdgnbvgy3tqojqgezdgnbvgy3tqojq", 8, 30).unwrap();
        assert_eq!(t.code_at_step(59 / 30), "94287082");
        assert!(Totp::new("base32:not base32!", 6, 30).is_none());
    }
}
