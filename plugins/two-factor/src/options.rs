//! The plugin's options, with Better Auth's defaults. They deserialize from the stand-alone
//! server's configuration (`[plugins.two-factor]`), in snake_case.

use serde::Deserialize;

/// Options of [`TwoFactor`](crate::TwoFactor).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct TwoFactorOptions {
    /// The issuer in TOTP URIs (what authenticator apps show); the engine's app name when
    /// unset.
    pub issuer: Option<String>,
    /// The physical name of the plugin's table (`twoFactor`).
    pub two_factor_table: String,
    /// TOTP.
    pub totp: TotpOptions,
    /// One-time codes sent by mail or a callback.
    pub otp: OtpOptions,
    /// Backup codes.
    pub backup_codes: BackupCodeOptions,
    /// Turn two-factor on at `/two-factor/enable`, without a first code (false).
    pub skip_verification_on_enable: bool,
    /// Users without a password manage two-factor without one (false).
    pub allow_passwordless: bool,
    /// Lifetime of a sign-in challenge and its `two_factor` cookie, in seconds (600).
    pub two_factor_cookie_max_age: u64,
    /// How long a trusted device skips the challenge, in seconds (30 days).
    pub trust_device_max_age: u64,
    /// Lock-out after repeated failures.
    pub account_lockout: AccountLockoutOptions,
    /// Which sign-ins the second factor is asked for.
    pub challenge: ChallengeOptions,
    /// Where a challenged sign-in that came by a link (email verification, a magic link) is
    /// sent: the application's page that asks for the second factor (`/two-factor`). Unset:
    /// the link's own destination, with `twoFactorRedirect=true` added to its query.
    pub two_factor_page: Option<String>,
}

/// Which sign-ins the second factor is asked for. By default every sign-in of a two-factor
/// user is challenged, by whatever plugin it comes (password, magic link, email code, the
/// automatic sign-in of an email-verification link, a plugin of the application's own), except
/// passkeys (multi-factor by themselves) and social sign-in (the provider's own second factor
/// applies), each of which has a switch. Better Auth challenges only password sign-in.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct ChallengeOptions {
    /// Challenge only `/sign-in/email`, `/sign-in/username` and `/sign-in/phone-number`, as
    /// Better Auth does: a two-factor user who signs in by a link or a code gets a full session
    /// from one factor.
    pub password_sign_in_only: bool,
    /// Challenge passkey sign-in too.
    pub passkey: bool,
    /// Challenge social sign-in (OAuth callbacks, ID tokens) too.
    pub social: bool,
}

impl TwoFactorOptions {
    /// Refuses values that cannot work (checked when the engine is built).
    pub fn validate(&self) -> Result<(), String> {
        const TEN_YEARS: u64 = 10 * 366 * 24 * 3600;
        let checks = [
            (
                matches!(self.totp.digits, 6..=8),
                "totp.digits must be 6, 7 or 8",
            ),
            (
                (1..=300).contains(&self.totp.period),
                "totp.period must be 1 to 300 seconds",
            ),
            (
                (4..=10).contains(&self.otp.digits),
                "otp.digits must be 4 to 10",
            ),
            (
                (1..=1440).contains(&self.otp.period),
                "otp.period must be 1 to 1440 minutes",
            ),
            (
                (1..=100).contains(&self.backup_codes.amount),
                "backup_codes.amount must be 1 to 100",
            ),
            (
                (6..=64).contains(&self.backup_codes.length),
                "backup_codes.length must be 6 to 64",
            ),
            (
                (1..=TEN_YEARS).contains(&self.two_factor_cookie_max_age),
                "two_factor_cookie_max_age must be 1 second to 10 years",
            ),
            (
                (1..=TEN_YEARS).contains(&self.trust_device_max_age),
                "trust_device_max_age must be 1 second to 10 years",
            ),
            (
                self.account_lockout.max_failed_attempts >= 1
                    && self.account_lockout.duration_seconds <= TEN_YEARS,
                "account_lockout needs max_failed_attempts >= 1 and a duration up to 10 years",
            ),
        ];
        match checks.iter().find(|(ok, _)| !ok) {
            Some((_, message)) => Err((*message).to_owned()),
            None => Ok(()),
        }
    }
}

impl Default for TwoFactorOptions {
    fn default() -> Self {
        Self {
            issuer: None,
            two_factor_table: "twoFactor".into(),
            totp: TotpOptions::default(),
            otp: OtpOptions::default(),
            backup_codes: BackupCodeOptions::default(),
            skip_verification_on_enable: false,
            allow_passwordless: false,
            two_factor_cookie_max_age: 600,
            trust_device_max_age: 30 * 24 * 3600,
            account_lockout: AccountLockoutOptions::default(),
            challenge: ChallengeOptions::default(),
            two_factor_page: None,
        }
    }
}

/// TOTP (RFC 6238 with HMAC-SHA1, as authenticator apps expect).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct TotpOptions {
    /// Digits per code: 6 or 8 (6).
    pub digits: u32,
    /// Seconds per code (30).
    pub period: u64,
    /// Turns TOTP off (the TOTP endpoints answer `TOTP_NOT_CONFIGURED`).
    pub disable: bool,
}

impl Default for TotpOptions {
    fn default() -> Self {
        Self {
            digits: 6,
            period: 30,
            disable: false,
        }
    }
}

/// How one-time codes are kept in the verification table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum OtpStorage {
    /// As they are (Better Auth's default).
    #[default]
    Plain,
    /// SHA-256, base64url without padding.
    Hashed,
    /// Encrypted with the secret.
    Encrypted,
}

/// One-time codes.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct OtpOptions {
    /// Lifetime of a code, in minutes (3).
    pub period: u64,
    /// Digits per code (6).
    pub digits: usize,
    /// Wrong tries before a code is dead (5).
    pub allowed_attempts: u32,
    /// How codes are stored.
    pub store: OtpStorage,
    /// Mail codes with the engine's email sender when no callback is given (false, as in
    /// Better Auth, where codes need an explicit `sendOTP`). With neither, one-time codes are
    /// off. Turn it on knowingly: whoever reads the user's mail then holds a second factor,
    /// and mail is also how passwords are reset.
    pub send_by_email: bool,
}

impl Default for OtpOptions {
    fn default() -> Self {
        Self {
            period: 3,
            digits: 6,
            allowed_attempts: 5,
            store: OtpStorage::Plain,
            send_by_email: false,
        }
    }
}

/// How backup codes are kept in the `twoFactor` row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum BackupCodeStorage {
    /// Encrypted with the secret (Better Auth's default).
    #[default]
    Encrypted,
    /// As JSON text.
    Plain,
}

/// Backup codes.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct BackupCodeOptions {
    /// How many (10).
    pub amount: usize,
    /// Characters per code, before the dash is inserted (10: `xxxxx-xxxxx`).
    pub length: usize,
    /// How they are stored.
    pub store: BackupCodeStorage,
}

impl Default for BackupCodeOptions {
    fn default() -> Self {
        Self {
            amount: 10,
            length: 10,
            store: BackupCodeStorage::Encrypted,
        }
    }
}

/// Lock-out of the second factor after consecutive failures across challenges.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct AccountLockoutOptions {
    /// On (true).
    pub enabled: bool,
    /// Consecutive failures that lock (10).
    pub max_failed_attempts: i64,
    /// How long the lock lasts, in seconds (900).
    pub duration_seconds: u64,
}

impl Default for AccountLockoutOptions {
    fn default() -> Self {
        Self {
            enabled: true,
            max_failed_attempts: 10,
            duration_seconds: 900,
        }
    }
}
