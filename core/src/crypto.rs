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

/// The server secret: keys cookie signatures, token MACs and encryption. Never printed.
///
/// One secret, or several with versions (Better Auth's `secrets: [{version, value}]`): the
/// first, the current one, signs and encrypts; every one still verifies and decrypts, so a
/// rotation signs nobody out and leaves stored values readable. Encrypted values carry Better
/// Auth's envelope `$ba$<version>$<hex>` when the secret has versions, bare hex when it has
/// none; a bare-hex value (written before versions were introduced) decrypts with the
/// unversioned legacy secret.
#[derive(Clone)]
pub struct Secret(std::sync::Arc<Keys>);

struct Keys {
    /// The current key first, then older ones.
    keys: Vec<Keyed>,
    /// The plain secret from before versions, kept to read what it encrypted and signed.
    legacy: Option<Keyed>,
}

/// One secret's text, version and HMAC key schedule, computed once: every signed cookie check
/// clones it instead of hashing the key into the inner and outer pads again.
struct Keyed {
    version: Option<u32>,
    text: Box<str>,
    mac: HmacSha256,
}

impl Keyed {
    fn new(version: Option<u32>, text: String) -> Self {
        // HMAC accepts keys of any length, so this cannot fail.
        #[allow(clippy::expect_used)]
        let mac = <HmacSha256 as Mac>::new_from_slice(text.as_bytes())
            .expect("HMAC takes keys of any length");
        Self {
            version,
            text: text.into_boxed_str(),
            mac,
        }
    }
}

fn check_length(value: &str) -> Result<(), crate::Error> {
    if value.chars().count() < Secret::MIN_LEN {
        return Err(crate::Error::Config(format!(
            "the secret must be at least {} characters long (got {}); generate one with `portcullis secret`",
            Secret::MIN_LEN,
            value.chars().count()
        )));
    }
    Ok(())
}

impl Secret {
    /// Shortest secret the engine accepts.
    pub const MIN_LEN: usize = 32;

    /// Wraps a secret, refusing one shorter than [`Secret::MIN_LEN`] characters.
    pub fn new(value: impl Into<String>) -> Result<Self, crate::Error> {
        let value: String = value.into();
        check_length(&value)?;
        Ok(Self::single(value))
    }

    fn single(value: String) -> Self {
        Self(std::sync::Arc::new(Keys {
            keys: vec![Keyed::new(None, value)],
            legacy: None,
        }))
    }

    /// Versioned secrets, the current one first (Better Auth's `secrets`), and the plain
    /// secret from before (`legacy`), if any. Refuses an empty list, a repeated version and a
    /// secret shorter than [`Secret::MIN_LEN`].
    pub fn rotating(
        versions: impl IntoIterator<Item = (u32, String)>,
        legacy: Option<String>,
    ) -> Result<Self, crate::Error> {
        let mut keys: Vec<Keyed> = Vec::new();
        for (version, value) in versions {
            check_length(&value)?;
            if keys.iter().any(|k| k.version == Some(version)) {
                return Err(crate::Error::Config(format!(
                    "secret version {version} is given twice"
                )));
            }
            keys.push(Keyed::new(Some(version), value));
        }
        if keys.is_empty() {
            return Err(crate::Error::Config("no secret configured".into()));
        }
        let legacy = legacy
            .map(|l| check_length(&l).map(|()| Keyed::new(None, l)))
            .transpose()?;
        Ok(Self(std::sync::Arc::new(Keys { keys, legacy })))
    }

    /// A fresh random secret of 64 characters.
    pub fn generate() -> Self {
        Self::single(random_string(64, ALPHANUMERIC))
    }

    fn current(&self) -> &Keyed {
        // Both constructors make at least one key.
        &self.0.keys[0]
    }

    /// Every key, the current one first, then older ones, then the legacy one.
    fn all(&self) -> impl Iterator<Item = &Keyed> {
        self.0.keys.iter().chain(self.0.legacy.as_ref())
    }

    /// The current secret's text, for storing it where the operator asked.
    pub fn expose(&self) -> &str {
        &self.current().text
    }

    /// The text of every secret that still verifies, the current one first.
    pub(crate) fn texts(&self) -> impl Iterator<Item = &str> {
        self.all().map(|k| &*k.text)
    }

    /// The current secret's version (`None` for a plain secret).
    pub fn version(&self) -> Option<u32> {
        self.current().version
    }

    /// HMAC-SHA256 of `message` under the current secret.
    pub fn hmac(&self, message: &[u8]) -> [u8; 32] {
        let mut mac = self.current().mac.clone();
        mac.update(message);
        mac.finalize().into_bytes().into()
    }

    /// Checks `tag` against HMAC-SHA256 of `message` under any of the secrets, each in constant
    /// time.
    pub fn verify_hmac(&self, message: &[u8], tag: &[u8]) -> bool {
        self.all().any(|k| {
            let mut mac = k.mac.clone();
            mac.update(message);
            mac.verify_slice(tag).is_ok()
        })
    }

    /// `value + "." + base64(HMAC-SHA256(secret, value))`, padded standard base64: the signed
    /// form of Better Auth's signed cookies (before URL-encoding), under the current secret.
    pub fn sign(&self, value: &str) -> String {
        let sig = base64::engine::general_purpose::STANDARD.encode(self.hmac(value.as_bytes()));
        let mut out = String::with_capacity(value.len() + 1 + sig.len());
        out.push_str(value);
        out.push('.');
        out.push_str(&sig);
        out
    }

    /// The value of a signed `value.signature` string, if the signature is exactly Better Auth's
    /// form (44 characters of padded standard base64) and verifies under any of the secrets.
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
    /// The value names a secret version the engine no longer has.
    #[error("the encrypted value is under a secret version that is no longer configured")]
    RetiredKey,
}

/// Better Auth's envelope of a value encrypted under a versioned secret.
const ENVELOPE: &str = "$ba$";

fn cipher(key: &Keyed) -> XChaCha20Poly1305 {
    let key: [u8; 32] = Sha256::digest(key.text.as_bytes()).into();
    XChaCha20Poly1305::new(&key.into())
}

impl Secret {
    /// Better Auth's `symmetricEncrypt`: XChaCha20-Poly1305 under SHA-256 of the current
    /// secret, as lowercase hex of `nonce (24 bytes) ‖ ciphertext ‖ tag (16 bytes)`, wrapped as
    /// `$ba$<version>$<hex>` when the secret has a version. Values it encrypts decrypt in
    /// Better Auth with the same secrets, and the reverse.
    pub fn encrypt(&self, plaintext: &str) -> String {
        let key = self.current();
        let mut nonce = [0u8; 24];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        // Encryption into a Vec fails only past the cipher's length limit (256 GiB).
        #[allow(clippy::expect_used)]
        let sealed = cipher(key)
            .encrypt(&nonce.into(), plaintext.as_bytes())
            .expect("plaintext within XChaCha20-Poly1305's length limit");
        let mut out = Vec::with_capacity(nonce.len() + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        match key.version {
            Some(v) => format!("{ENVELOPE}{v}${}", hex::encode(out)),
            None => hex::encode(out),
        }
    }

    /// The plaintext of a value made by [`Secret::encrypt`] (or Better Auth's
    /// `symmetricEncrypt`): an envelope with the key of its version, bare hex with the legacy
    /// (or any unversioned) secret.
    pub fn decrypt(&self, encrypted: &str) -> Result<String, DecryptError> {
        if let Some(rest) = encrypted.strip_prefix(ENVELOPE) {
            let (version, hex) = rest.split_once('$').ok_or(DecryptError::Malformed)?;
            // Digits only, no leading zero (Better Auth writes the version as a number).
            let canonical = !version.is_empty()
                && version.bytes().all(|b| b.is_ascii_digit())
                && (version == "0" || !version.starts_with('0'));
            if !canonical {
                return Err(DecryptError::Malformed);
            }
            let version: u32 = version.parse().map_err(|_| DecryptError::Malformed)?;
            let key = self
                .0
                .keys
                .iter()
                .find(|k| k.version == Some(version))
                .ok_or(DecryptError::RetiredKey)?;
            return open(key, hex);
        }
        let mut last = DecryptError::Forged;
        for key in self.all().filter(|k| k.version.is_none()) {
            match open(key, encrypted) {
                Ok(plain) => return Ok(plain),
                Err(e) => last = e,
            }
        }
        Err(last)
    }
}

fn open(key: &Keyed, hex_text: &str) -> Result<String, DecryptError> {
    let bytes = hex::decode(hex_text).map_err(|_| DecryptError::Malformed)?;
    if bytes.len() < 24 + 16 {
        return Err(DecryptError::Malformed);
    }
    let (nonce, sealed) = bytes.split_at(24);
    let nonce: [u8; 24] = nonce.try_into().map_err(|_| DecryptError::Malformed)?;
    let plain = cipher(key)
        .decrypt(&nonce.into(), sealed)
        .map_err(|_| DecryptError::Forged)?;
    String::from_utf8(plain).map_err(|_| DecryptError::NotText)
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

    const V2: &str = "second-secret-0123456789abcdef0123456789";
    const V1: &str = "first-secret-0123456789abcdef01234567890";
    const LEGACY: &str = "legacy-secret-0123456789abcdef0123456789";

    fn rotated() -> Secret {
        Secret::rotating(
            [(2, V2.to_owned()), (1, V1.to_owned())],
            Some(LEGACY.into()),
        )
        .unwrap()
    }

    /// Values Better Auth 1.7.25's `symmetricEncrypt` made with `{keys: {2: V2, 1: V1},
    /// currentVersion: 2, legacySecret: LEGACY}` and with the plain `LEGACY` (run against the
    /// conformance kit's `better-auth/crypto`; it also decrypted `$ba$2$` values made here).
    #[test]
    fn better_auths_envelopes_and_bare_hex_decrypt() {
        let s = rotated();
        let v2 = "$ba$2$22759f56bb5b4a77f5d6bb2da16b0128433c0bfd23e4d624a73bb3897790c7ebe266024703bf49741d89024a028b3e90853b4a488414282b";
        let legacy = "97c77402a8ad6c7c0a7ad05bd5a2f04b01983041a7c3bbd7f3666c49ba3d49cc39d8bf12b968af2deb0d573090eef76cf576c89a9e02af37";
        assert_eq!(s.decrypt(v2).unwrap(), "JBSWY3DPEHPK3PXP");
        assert_eq!(s.decrypt(legacy).unwrap(), "legacy-plaintext");
        assert_eq!(
            Secret::new(LEGACY).unwrap().decrypt(legacy).unwrap(),
            "legacy-plaintext"
        );
    }

    #[test]
    fn the_newest_secret_signs_and_encrypts_and_older_ones_still_read() {
        let s = rotated();
        let sealed = s.encrypt("plain");
        assert!(sealed.starts_with("$ba$2$"), "{sealed}");
        assert_eq!(s.decrypt(&sealed).unwrap(), "plain");
        let by_v1 = Secret::rotating([(1, V1.to_owned())], None)
            .unwrap()
            .encrypt("old");
        assert!(by_v1.starts_with("$ba$1$"));
        assert_eq!(s.decrypt(&by_v1).unwrap(), "old");
        // A version that was retired is refused, not tried with other keys.
        let only_v2 = Secret::rotating([(2, V2.to_owned())], None).unwrap();
        assert!(matches!(
            only_v2.decrypt(&by_v1),
            Err(DecryptError::RetiredKey)
        ));
        for odd in [
            "$ba$x$00",
            "$ba$02$00",
            "$ba$+2$00",
            "$ba$-1$00",
            "$ba$$00",
            "$ba$2",
        ] {
            assert!(
                matches!(s.decrypt(odd), Err(DecryptError::Malformed)),
                "{odd}"
            );
        }

        // Signatures: the current secret signs; every secret verifies.
        let signed = s.sign("token");
        assert_eq!(signed, Secret::new(V2).unwrap().sign("token"));
        for old in [V1, LEGACY] {
            let by_old = Secret::new(old).unwrap().sign("token");
            assert_eq!(s.unsign(&by_old), Some("token"));
            assert_eq!(only_v2.unsign(&by_old), None);
        }
    }

    #[test]
    fn rotation_refuses_repeated_versions_short_secrets_and_nothing() {
        assert!(Secret::rotating([(1, V1.to_owned()), (1, V2.to_owned())], None).is_err());
        assert!(Secret::rotating([(1, "short".to_owned())], None).is_err());
        assert!(Secret::rotating(Vec::<(u32, String)>::new(), None).is_err());
        assert!(Secret::rotating([(1, V1.to_owned())], Some("short".into())).is_err());
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
