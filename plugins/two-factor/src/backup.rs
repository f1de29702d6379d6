//! Backup codes: `xxxxx-xxxxx` codes over `a-z 0-9 A-Z`, stored as a JSON array, encrypted
//! with the secret by default (Better Auth's format either way).

use portcullis::crypto::{random_string, Secret};
use subtle::ConstantTimeEq;

use crate::options::{BackupCodeOptions, BackupCodeStorage};

const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";

/// Fresh codes: `amount` codes of `length` characters with a dash after the fifth.
pub(crate) fn generate(options: &BackupCodeOptions) -> Vec<String> {
    (0..options.amount)
        .map(|_| {
            let raw = random_string(options.length.max(1), ALPHABET);
            match raw.split_at_checked(5) {
                Some((head, tail)) if !tail.is_empty() => format!("{head}-{tail}"),
                _ => raw,
            }
        })
        .collect()
}

/// The stored form of `codes`.
pub(crate) fn seal(codes: &[String], storage: BackupCodeStorage, secret: &Secret) -> String {
    let json = serde_json::Value::from(codes.to_vec()).to_string();
    match storage {
        BackupCodeStorage::Plain => json,
        BackupCodeStorage::Encrypted => secret.encrypt(&json),
    }
}

/// The codes of a stored value; `None` when it does not decrypt or is not a list of strings.
pub(crate) fn open(
    stored: &str,
    storage: BackupCodeStorage,
    secret: &Secret,
) -> Option<Vec<String>> {
    let json = match storage {
        BackupCodeStorage::Plain => stored.to_owned(),
        BackupCodeStorage::Encrypted => secret.decrypt(stored).ok()?,
    };
    serde_json::from_str(&json).ok()
}

/// The position of `code` among `codes` (exact, case- and dash-sensitive), every code compared
/// in constant time.
pub(crate) fn position(codes: &[String], code: &str) -> Option<usize> {
    let mut found = None;
    for (i, c) in codes.iter().enumerate() {
        if bool::from(c.as_bytes().ct_eq(code.as_bytes())) && found.is_none() {
            found = Some(i);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn codes_have_better_auths_shape() {
        let codes = generate(&BackupCodeOptions::default());
        assert_eq!(codes.len(), 10);
        for c in &codes {
            assert_eq!(c.len(), 11);
            assert_eq!(&c[5..6], "-");
            assert!(c
                .replace('-', "")
                .bytes()
                .all(|b| b.is_ascii_alphanumeric()));
        }
        let short = generate(&BackupCodeOptions {
            amount: 3,
            length: 4,
            ..Default::default()
        });
        assert_eq!(short.len(), 3);
        assert!(short.iter().all(|c| c.len() == 4 && !c.contains('-')));
    }

    #[test]
    fn sealed_codes_open_only_with_the_same_secret() {
        let s = Secret::new("0123456789abcdef0123456789abcdef").unwrap();
        let codes = vec!["abcde-12345".to_owned(), "fghij-67890".to_owned()];
        let sealed = seal(&codes, BackupCodeStorage::Encrypted, &s);
        assert!(!sealed.contains("abcde"));
        assert_eq!(
            open(&sealed, BackupCodeStorage::Encrypted, &s),
            Some(codes.clone())
        );
        let other = Secret::new("fedcba9876543210fedcba9876543210").unwrap();
        assert_eq!(open(&sealed, BackupCodeStorage::Encrypted, &other), None);
        let plain = seal(&codes, BackupCodeStorage::Plain, &s);
        assert_eq!(plain, r#"["abcde-12345","fghij-67890"]"#);
        assert_eq!(
            open(&plain, BackupCodeStorage::Plain, &s),
            Some(codes.clone())
        );
        assert_eq!(position(&codes, "fghij-67890"), Some(1));
        assert_eq!(position(&codes, "FGHIJ-67890"), None);
        assert_eq!(position(&codes, "fghij67890"), None);
    }
}
