//! Randomness, the secret, and HMAC signatures.
//!
//! Random strings follow Better Auth's generator (CSPRNG bytes with rejection sampling over an
//! alphabet), so ids and tokens have the same length and alphabet as theirs.

use std::fmt;

use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::XChaCha20Poly1305;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// Letters and digits: the alphabet of ids, session tokens and reset tokens.
pub const ALPHANUMERIC: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

/// A random string of `len` characters drawn uniformly from `alphabet` (at most 256 symbols).
pub fn random_string(len: usize, alphabet: &[u8]) -> String {
    debug_assert!(!alphabet.is_empty() && alphabet.len() <= 256);
    let n = alphabet.len();
    // Bytes at or above `limit` would make some symbols likelier than others.
    let limit = (256 / n) * n;
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 64];
    let mut rng = rand::rngs::OsRng;
    while out.len() < len {
        rng.fill_bytes(&mut buf);
        for &b in &buf {
            if (b as usize) < limit {
                out.push(alphabet[b as usize % n] as char);
                if out.len() == len {
                    break;
                }
            }
        }
    }
    out
}

/// A 32-character id, Better Auth's default for user, session, account and verification rows.
pub fn generate_id() -> String {
    random_string(32, ALPHANUMERIC)
}

/// The server secret: keys cookie signatures and token MACs. Never printed.
#[derive(Clone)]
pub struct Secret(std::sync::Arc<Keyed>);

/// The secret's text and its HMAC key schedule, computed once: every signed cookie check
/// clones it instead of hashing the key into the inner and outer pads again.
struct Keyed {
    text: Box<str>,
    mac: HmacSha256,
}

impl Keyed {
    fn new(text: String) -> Self {
        // HMAC accepts keys of any length, so this cannot fail.
        #[allow(clippy::expect_used)]
        let mac = <HmacSha256 as Mac>::new_from_slice(text.as_bytes())
            .expect("HMAC takes keys of any length");
        Self {
            text: text.into_boxed_str(),
            mac,
        }
    }
}

impl Secret {
    /// Shortest secret the engine accepts.
    pub const MIN_LEN: usize = 32;

    /// Wraps a secret, refusing one shorter than [`Secret::MIN_LEN`] characters.
    pub fn new(value: impl Into<String>) -> Result<Self, crate::Error> {
        let value: String = value.into();
        if value.chars().count() < Self::MIN_LEN {
            return Err(crate::Error::Config(format!(
                "the secret must be at least {} characters long (got {}); generate one with `portcullis secret`",
                Self::MIN_LEN,
                value.chars().count()
            )));
        }
        Ok(Self(std::sync::Arc::new(Keyed::new(value))))
    }

    /// A fresh random secret of 64 characters.
    pub fn generate() -> Self {
        Self(std::sync::Arc::new(Keyed::new(random_string(
            64,
            ALPHANUMERIC,
        ))))
    }

    /// The secret's text, for storing it where the operator asked.
    pub fn expose(&self) -> &str {
        &self.0.text
    }

    fn mac(&self) -> HmacSha256 {
        self.0.mac.clone()
    }

    /// HMAC-SHA256 of `message` under the secret.
    pub fn hmac(&self, message: &[u8]) -> [u8; 32] {
        let mut mac = self.mac();
        mac.update(message);
        mac.finalize().into_bytes().into()
    }

    /// Checks `tag` against HMAC-SHA256 of `message` in constant time.
    pub fn verify_hmac(&self, message: &[u8], tag: &[u8]) -> bool {
        let mut mac = self.mac();
        mac.update(message);
        mac.verify_slice(tag).is_ok()
    }

    /// `value + "." + base64(HMAC-SHA256(secret, value))`, padded standard base64: the signed
    /// form of Better Auth's signed cookies (before URL-encoding).
    pub fn sign(&self, value: &str) -> String {
        let sig = base64::engine::general_purpose::STANDARD.encode(self.hmac(value.as_bytes()));
        let mut out = String::with_capacity(value.len() + 1 + sig.len());
        out.push_str(value);
        out.push('.');
        out.push_str(&sig);
        out
    }

    /// The value of a signed `value.signature` string, if the signature is exactly Better Auth's
    /// form (44 characters of padded standard base64) and verifies.
    pub fn unsign<'a>(&self, signed: &'a str) -> Option<&'a str> {
        let (value, sig) = signed.rsplit_once('.')?;
        if sig.len() != 44 || !sig.ends_with('=') {
            return None;
        }
        let tag = base64::engine::general_purpose::STANDARD.decode(sig).ok()?;
        self.verify_hmac(value.as_bytes(), &tag).then_some(value)
    }
}

/// Why [`Secret::decrypt`] could not recover a plaintext.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecryptError {
    /// The payload is not lowercase hex of `nonce ‖ ciphertext ‖ tag`.
    #[error("the encrypted value is malformed")]
    Malformed,
    /// Wrong key, or the payload was changed.
    #[error("the encrypted value does not decrypt with this secret")]
    Forged,
    /// The plaintext is not UTF-8.
    #[error("the decrypted value is not text")]
    NotText,
}

impl Secret {
    fn cipher(&self) -> XChaCha20Poly1305 {
        let key: [u8; 32] = Sha256::digest(self.0.text.as_bytes()).into();
        XChaCha20Poly1305::new(&key.into())
    }

    /// Better Auth's `symmetricEncrypt`: XChaCha20-Poly1305 under SHA-256 of the secret,
    /// answered as lowercase hex of `nonce (24 bytes) ‖ ciphertext ‖ tag (16 bytes)`. Values
    /// it encrypts decrypt in Better Auth with the same secret, and the reverse.
    pub fn encrypt(&self, plaintext: &str) -> String {
        let mut nonce = [0u8; 24];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        // Encryption into a Vec fails only past the cipher's length limit (256 GiB).
        #[allow(clippy::expect_used)]
        let sealed = self
            .cipher()
            .encrypt(&nonce.into(), plaintext.as_bytes())
            .expect("plaintext within XChaCha20-Poly1305's length limit");
        let mut out = Vec::with_capacity(nonce.len() + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        hex::encode(out)
    }

    /// The plaintext of a value made by [`Secret::encrypt`] (or Better Auth's
    /// `symmetricEncrypt` with a plain secret).
    pub fn decrypt(&self, encrypted: &str) -> Result<String, DecryptError> {
        let bytes = hex::decode(encrypted).map_err(|_| DecryptError::Malformed)?;
        if bytes.len() < 24 + 16 {
            return Err(DecryptError::Malformed);
        }
        let (nonce, sealed) = bytes.split_at(24);
        let nonce: [u8; 24] = nonce.try_into().map_err(|_| DecryptError::Malformed)?;
        let plain = self
            .cipher()
            .decrypt(&nonce.into(), sealed)
            .map_err(|_| DecryptError::Forged)?;
        String::from_utf8(plain).map_err(|_| DecryptError::NotText)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_strings_have_the_length_and_alphabet_asked_for() {
        let s = random_string(32, ALPHANUMERIC);
        assert_eq!(s.len(), 32);
        assert!(s.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_ne!(s, random_string(32, ALPHANUMERIC));
        let digits = random_string(500, b"0123456789");
        assert!(digits.bytes().all(|b| b.is_ascii_digit()));
        // All ten digits show up in 500 draws unless the generator is broken.
        assert_eq!(
            digits
                .bytes()
                .collect::<std::collections::BTreeSet<_>>()
                .len(),
            10
        );
    }

    #[test]
    fn short_secrets_are_refused_with_a_clear_message() {
        let err = Secret::new("too-short").unwrap_err().to_string();
        assert!(err.contains("at least 32"), "{err}");
        assert!(Secret::new("x".repeat(32)).is_ok());
    }

    #[test]
    fn debug_output_hides_the_secret() {
        let s = Secret::new("a-very-secret-value-that-is-long-enough").unwrap();
        assert!(!format!("{s:?}").contains("very-secret"));
    }

    #[test]
    fn signed_values_round_trip_and_tampering_is_detected() {
        let s = Secret::new("0123456789abcdef0123456789abcdef").unwrap();
        let signed = s.sign("token123");
        assert_eq!(s.unsign(&signed), Some("token123"));
        assert_eq!(s.unsign(&signed.replacen("token123", "token124", 1)), None);
        let other = Secret::new("fedcba9876543210fedcba9876543210").unwrap();
        assert_eq!(other.unsign(&signed), None);
        // Unpadded or URL-safe signatures are not Better Auth's form.
        assert_eq!(s.unsign(signed.trim_end_matches('=')), None);
    }

    #[test]
    fn encrypted_values_round_trip_and_refuse_tampering_and_other_keys() {
        let s = Secret::new("0123456789abcdef0123456789abcdef").unwrap();
        let sealed = s.encrypt("JBSWY3DPEHPK3PXP-secret");
        // 24-byte nonce + 23 bytes + 16-byte tag, as lowercase hex.
        assert_eq!(sealed.len(), 2 * (24 + 23 + 16));
        assert!(sealed
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
        assert_ne!(
            sealed,
            s.encrypt("JBSWY3DPEHPK3PXP-secret"),
            "fresh nonce each time"
        );
        assert_eq!(s.decrypt(&sealed).unwrap(), "JBSWY3DPEHPK3PXP-secret");
        let other = Secret::new("fedcba9876543210fedcba9876543210").unwrap();
        assert!(matches!(other.decrypt(&sealed), Err(DecryptError::Forged)));
        let mut flipped = sealed.into_bytes();
        flipped[60] = if flipped[60] == b'0' { b'1' } else { b'0' };
        let flipped = String::from_utf8(flipped).unwrap();
        assert!(matches!(s.decrypt(&flipped), Err(DecryptError::Forged)));
        assert!(matches!(s.decrypt("zz"), Err(DecryptError::Malformed)));
        assert!(matches!(s.decrypt("abcd"), Err(DecryptError::Malformed)));
    }
}
