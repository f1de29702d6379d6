//! Encrypted JSON Web Tokens (JWE compact form), as Better Auth's `symmetricEncodeJWT` makes
//! them for the `jwe` cookie cache.
//!
//! Only what that needs: key management `dir`, content encryption `A256CBC-HS512` (RFC 7518
//! §5.2.5: AES-256-CBC with PKCS#7 padding, authenticated by HMAC-SHA-512 truncated to 32
//! bytes). The 64-byte key comes from HKDF-SHA-256 over the secret with a purpose-specific salt
//! and Better Auth's fixed info string; the header's `kid` is the key's RFC 7638 thumbprint.
//! Decryption checks the tag in constant time before it decrypts, then `exp` and `nbf` with
//! jose's 15-second clock tolerance.

use aes::cipher::block_padding::Pkcs7;
use aes::cipher::{BlockDecryptMut as _, BlockEncryptMut as _, KeyIvInit as _};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use rand::RngCore as _;
use serde_json::{Map, Value};
use sha2::{Digest as _, Sha256, Sha512};
use subtle::ConstantTimeEq as _;

type Aes256CbcEnc = cbc::Encryptor<aes::Aes256>;
type Aes256CbcDec = cbc::Decryptor<aes::Aes256>;

/// Better Auth's HKDF `info`.
const INFO: &[u8] = b"BetterAuth.js Generated Encryption Key";

/// Clock tolerance of Better Auth's `jwtDecrypt`, in seconds.
const CLOCK_TOLERANCE: i64 = 15;

/// Why a token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum JweError {
    /// Not five base64url parts, or a header this module does not handle.
    #[error("malformed token")]
    Malformed,
    /// The `kid` names another key, or the tag does not verify.
    #[error("token does not decrypt under this key")]
    BadKey,
    /// The token decrypts but `exp` has passed (beyond the tolerance).
    #[error("token expired")]
    Expired,
    /// The token decrypts but its claims are not an object, or `nbf` is in the future.
    #[error("invalid claims")]
    InvalidClaims,
}

/// A 64-byte `A256CBC-HS512` key derived from a secret, with its thumbprint.
#[derive(Clone)]
pub(crate) struct JweKey {
    key: [u8; 64],
    kid: String,
}

impl std::fmt::Debug for JweKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JweKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl JweKey {
    /// Better Auth's key for `salt` (`"better-auth-session"` for the cookie cache):
    /// HKDF-SHA-256(ikm = secret, salt, info = "BetterAuth.js Generated Encryption Key", 64).
    pub(crate) fn derive(secret: &str, salt: &str) -> Self {
        let mut key = [0u8; 64];
        let hk = hkdf::Hkdf::<Sha256>::new(Some(salt.as_bytes()), secret.as_bytes());
        // 64 bytes is far below HKDF-SHA-256's limit of 255 * 32, so this cannot fail.
        if hk.expand(INFO, &mut key).is_err() {
            tracing::error!("HKDF refused a 64-byte output");
        }
        // RFC 7638: the members of an `oct` JWK in lexicographic order, no whitespace.
        let jwk = format!(r#"{{"k":"{}","kty":"oct"}}"#, URL_SAFE_NO_PAD.encode(key));
        let kid = URL_SAFE_NO_PAD.encode(Sha256::digest(jwk.as_bytes()));
        Self { key, kid }
    }

    fn mac_key(&self) -> &[u8] {
        &self.key[..32]
    }

    fn enc_key(&self) -> &[u8] {
        &self.key[32..]
    }

    fn tag(&self, aad: &[u8], iv: &[u8], ciphertext: &[u8]) -> [u8; 32] {
        // HMAC takes keys of any length, so this cannot fail.
        #[allow(clippy::expect_used)]
        let mut m =
            Hmac::<Sha512>::new_from_slice(self.mac_key()).expect("HMAC takes keys of any length");
        m.update(aad);
        m.update(iv);
        m.update(ciphertext);
        m.update(&((aad.len() as u64) * 8).to_be_bytes());
        let full = m.finalize().into_bytes();
        let mut tag = [0u8; 32];
        tag.copy_from_slice(&full[..32]);
        tag
    }

    /// Encrypts `claims` (keys in the order given) with header
    /// `{"alg":"dir","enc":"A256CBC-HS512","kid":…}`.
    pub(crate) fn encrypt(&self, claims: &Map<String, Value>) -> String {
        let header = format!(
            r#"{{"alg":"dir","enc":"A256CBC-HS512","kid":"{}"}}"#,
            self.kid
        );
        let aad = URL_SAFE_NO_PAD.encode(header);
        let mut iv = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut iv);
        let plaintext = serde_json::to_vec(claims).unwrap_or_else(|_| b"{}".to_vec());
        let ciphertext = match Aes256CbcEnc::new_from_slices(self.enc_key(), &iv) {
            Ok(c) => c.encrypt_padded_vec_mut::<Pkcs7>(&plaintext),
            // Key and IV have fixed, correct lengths.
            Err(_) => Vec::new(),
        };
        let tag = self.tag(aad.as_bytes(), &iv, &ciphertext);
        format!(
            "{aad}..{}.{}.{}",
            URL_SAFE_NO_PAD.encode(iv),
            URL_SAFE_NO_PAD.encode(&ciphertext),
            URL_SAFE_NO_PAD.encode(tag)
        )
    }

    /// Decrypts a token made by [`JweKey::encrypt`] (or Better Auth) at `now` (seconds since
    /// the epoch) and returns its claims.
    pub(crate) fn decrypt(&self, token: &str, now: i64) -> Result<Map<String, Value>, JweError> {
        let parts: Vec<&str> = token.split('.').collect();
        let [header_b64, encrypted_key, iv, ciphertext, tag] = parts[..] else {
            return Err(JweError::Malformed);
        };
        let decode = |s: &str| URL_SAFE_NO_PAD.decode(s).map_err(|_| JweError::Malformed);
        let header: Value =
            serde_json::from_slice(&decode(header_b64)?).map_err(|_| JweError::Malformed)?;
        let header = header.as_object().ok_or(JweError::Malformed)?;
        let str_of = |k: &str| header.get(k).and_then(Value::as_str);
        if str_of("alg") != Some("dir")
            || str_of("enc") != Some("A256CBC-HS512")
            || header.contains_key("zip")
            || header.contains_key("crit")
            || !encrypted_key.is_empty()
        {
            return Err(JweError::Malformed);
        }
        if header
            .get("kid")
            .is_some_and(|k| k.as_str() != Some(&self.kid))
        {
            return Err(JweError::BadKey);
        }
        let (iv, ciphertext, tag) = (decode(iv)?, decode(ciphertext)?, decode(tag)?);
        if iv.len() != 16 || tag.len() != 32 {
            return Err(JweError::Malformed);
        }
        let expected = self.tag(header_b64.as_bytes(), &iv, &ciphertext);
        if !bool::from(expected.ct_eq(&tag[..])) {
            return Err(JweError::BadKey);
        }
        let plaintext = Aes256CbcDec::new_from_slices(self.enc_key(), &iv)
            .map_err(|_| JweError::Malformed)?
            .decrypt_padded_vec_mut::<Pkcs7>(&ciphertext)
            .map_err(|_| JweError::BadKey)?;
        let Ok(Value::Object(claims)) = serde_json::from_slice(&plaintext) else {
            return Err(JweError::InvalidClaims);
        };
        if let Some(exp) = claims.get("exp") {
            let exp = exp.as_f64().ok_or(JweError::InvalidClaims)?;
            if exp <= (now - CLOCK_TOLERANCE) as f64 {
                return Err(JweError::Expired);
            }
        }
        if let Some(nbf) = claims.get("nbf") {
            if nbf
                .as_f64()
                .is_none_or(|nbf| nbf > (now + CLOCK_TOLERANCE) as f64)
            {
                return Err(JweError::InvalidClaims);
            }
        }
        Ok(claims)
    }
}

/// A random (version 4) UUID in its usual text form, for `jti`.
pub(crate) fn random_uuid() -> String {
    let mut b = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SECRET: &str = "a-secret-of-at-least-32-characters!!";

    fn claims(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn key_derivation_matches_an_independent_computation() {
        // Computed with Python's cryptography HKDF(SHA256, 64, salt, info) and hashlib.
        let key = JweKey::derive(SECRET, "better-auth-session");
        assert_eq!(
            URL_SAFE_NO_PAD.encode(key.key),
            "NeD-xwQW5k7L16bF9LeRWi07btYlQGlSXPUahtEY6PXaLssgbNlGBHH7MMTl2a7DssAIM0tiITLdl3CyVaA9rw"
        );
        assert_eq!(key.kid, "I70QUZjiaJK51NuIco3AWJDCttPNxRDyO3bBdmgvFDQ");
    }

    #[test]
    fn round_trips_and_refuses_other_keys_and_tampering() {
        let key = JweKey::derive(SECRET, "better-auth-session");
        let t = key.encrypt(&claims(json!({"a": 1, "exp": 100})));
        assert_eq!(t.split('.').count(), 5);
        assert_eq!(key.decrypt(&t, 50).unwrap()["a"], 1);
        // jose's 15-second tolerance.
        assert!(key.decrypt(&t, 110).is_ok());
        assert_eq!(key.decrypt(&t, 115), Err(JweError::Expired));
        let other = JweKey::derive("another-secret-of-at-least-32-chars", "better-auth-session");
        assert_eq!(other.decrypt(&t, 50), Err(JweError::BadKey));
        let mut parts: Vec<String> = t.split('.').map(str::to_owned).collect();
        let mut ct = URL_SAFE_NO_PAD.decode(&parts[3]).unwrap();
        ct[0] ^= 1;
        parts[3] = URL_SAFE_NO_PAD.encode(ct);
        assert_eq!(key.decrypt(&parts.join("."), 50), Err(JweError::BadKey));
        for bad in ["", "a.b.c.d", "a.b.c.d.e", &format!("{t}.x")] {
            assert!(key.decrypt(bad, 50).is_err(), "{bad}");
        }
    }

    #[test]
    fn decrypts_a_token_made_elsewhere() {
        // Made with Python's cryptography (AES-256-CBC, HMAC-SHA-512) over the header
        // {"alg":"dir","enc":"A256CBC-HS512","kid":"I70QUZjiaJK51NuIco3AWJDCttPNxRDyO3bBdmgvFDQ"}
        // and the payload {"hello":"world","exp":4102444800}, IV 00..0f, as jose lays them out.
        let token = "eyJhbGciOiJkaXIiLCJlbmMiOiJBMjU2Q0JDLUhTNTEyIiwia2lkIjoiSTcwUVVaamlhSks1MU51SWNvM0FXSkRDdHRQTnhSRHlPM2JCZG1ndkZEUSJ9..AAECAwQFBgcICQoLDA0ODw.NRGMrH7euKaSHK9qoL6e-meWAu-o9fOoSI36rszGUtxk9eWLu4ns3-fnhT7C4X4X.2h3lqp1K-x5mfyorZlvIRTWuwNpLw936Kye1yl5Ql7U";
        let key = JweKey::derive(SECRET, "better-auth-session");
        let c = key.decrypt(token, 1_800_000_000).unwrap();
        assert_eq!(c["hello"], "world");
    }

    #[test]
    fn uuids_have_the_v4_shape() {
        let u = random_uuid();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert!(matches!(&u[19..20], "8" | "9" | "a" | "b"));
    }
}
