//! Refuses compromised passwords, as Better Auth's `haveIBeenPwned` plugin does, and more.
//!
//! Every new password (sign-up, change, reset, a first password; the engine runs the check
//! through [`Plugin::password_checks`] just before hashing) is looked up:
//!
//! 1. in a list of common passwords shipped with the plugin (the 49 233 most common ones of
//!    zxcvbn's list, compared without regard to case) and, optionally, in a file of the
//!    application's own (one password per line: a larger public list, an organisation's
//!    banned words);
//! 2. when a range API is configured, in Have I Been Pwned's corpus, with k-anonymity: only
//!    the first five hexadecimal characters of the password's SHA-1 are sent, with
//!    `Add-Padding: true`, and the answer's suffixes are compared here.
//!
//! A listed password is refused with 400 `PASSWORD_COMPROMISED` (Better Auth's code and
//! message). When the range API cannot be reached in time the password is refused with 500,
//! as Better Auth does, unless [`CompromisedPasswordOptions::fail_open`].
//!
//! Off unless enabled: one word in the stand-alone server's plugin list,
//!
//! ```toml
//! plugins = ["email-password", "compromised-password"]
//!
//! [plugin.compromised-password]          # optional
//! range_api = "https://api.pwnedpasswords.com/range/"
//! list_file = "/etc/portcullis/banned-passwords.txt"
//! ```
//!
//! or `.plugin(CompromisedPassword::default())` in Rust.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, LazyLock, OnceLock};
use std::time::Duration;

use http::StatusCode;
use portcullis::plugin::PasswordCheck;
use portcullis::{ApiError, BoxFuture, Error, ErrorCode, InitContext, Plugin, PluginFactory};
use serde::Deserialize;
use sha1::{Digest, Sha1};

/// The plugin's error codes (Better Auth's).
pub mod codes {
    use portcullis::ErrorCode;

    /// The password is in a list of compromised or common passwords.
    pub const PASSWORD_COMPROMISED: ErrorCode = ErrorCode::new(
        "PASSWORD_COMPROMISED",
        "The password you entered has been compromised. Please choose a different password.",
    );

    /// Every code above.
    pub const ALL: &[ErrorCode] = &[PASSWORD_COMPROMISED];
}

/// Options, with their defaults. They deserialize from `[plugin.compromised-password]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct CompromisedPasswordOptions {
    /// Look passwords up in the shipped list of common passwords (true).
    pub common_list: bool,
    /// A file of more passwords to refuse, one per line (compared without regard to case).
    pub list_file: Option<PathBuf>,
    /// The range API's base URL, to which the five-character prefix is appended
    /// (`https://api.pwnedpasswords.com/range/`); no network check when unset.
    pub range_api: Option<String>,
    /// How long the range API may take, in seconds (5).
    pub timeout_secs: u64,
    /// Accept a password the range API could not check (false: refuse it with 500, as Better
    /// Auth does).
    pub fail_open: bool,
    /// The refusal's message instead of Better Auth's (its `customPasswordCompromisedMessage`).
    pub message: Option<String>,
}

impl Default for CompromisedPasswordOptions {
    fn default() -> Self {
        Self {
            common_list: true,
            list_file: None,
            range_api: None,
            timeout_secs: 5,
            fail_open: false,
            message: None,
        }
    }
}

/// The plugin.
#[derive(Debug, Default)]
pub struct CompromisedPassword {
    options: CompromisedPasswordOptions,
    checker: OnceLock<Arc<Checker>>,
}

impl CompromisedPassword {
    /// The plugin with `options`.
    pub fn new(options: CompromisedPasswordOptions) -> Self {
        Self {
            options,
            checker: OnceLock::new(),
        }
    }

    /// Also asks the range API at `base_url` (`https://api.pwnedpasswords.com/range/`).
    pub fn range_api(mut self, base_url: impl Into<String>) -> Self {
        self.options.range_api = Some(base_url.into());
        self
    }

    /// Also refuses the passwords in the file at `path`, one per line.
    pub fn list_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.options.list_file = Some(path.into());
        self
    }

    /// Accepts a password the range API could not check, instead of refusing it.
    pub fn fail_open(mut self, yes: bool) -> Self {
        self.options.fail_open = yes;
        self
    }
}

/// The shipped list, read once per process.
static COMMON: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    include_str!("../data/common-passwords.txt")
        .lines()
        .filter(|l| !l.is_empty())
        .collect()
});

#[derive(Debug)]
struct Checker {
    common: bool,
    extra: HashSet<String>,
    range: Option<RangeApi>,
    fail_open: bool,
    message: Option<String>,
}

#[derive(Debug)]
struct RangeApi {
    client: reqwest::Client,
    base: String,
}

/// Why the range API gave no answer. Never carries the password or its hash.
#[derive(Debug, thiserror::Error)]
enum RangeError {
    #[error("the range API could not be reached: {0}")]
    Unreachable(#[from] reqwest::Error),
    #[error("the range API answered {0}")]
    Status(u16),
    #[error("the range API's answer is not a list of counts")]
    Malformed,
}

impl RangeApi {
    /// How often the corpus has seen `password` (0 when never, or only as padding).
    /// The most of an answer that is read: a padded real one is about 40 KB.
    const MAX_ANSWER: usize = 256 * 1024;

    async fn count(&self, password: &str) -> Result<u64, RangeError> {
        let digest = hex::encode_upper(Sha1::digest(password.as_bytes()));
        let (prefix, suffix) = digest.split_at(5);
        let mut res = self
            .client
            .get(format!("{}{prefix}", self.base))
            .header("Add-Padding", "true")
            .send()
            .await
            .map_err(reqwest::Error::without_url)?;
        if !res.status().is_success() {
            return Err(RangeError::Status(res.status().as_u16()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = res.chunk().await.map_err(reqwest::Error::without_url)? {
            if body.len() + chunk.len() > Self::MAX_ANSWER {
                return Err(RangeError::Malformed);
            }
            body.extend_from_slice(&chunk);
        }
        let body = String::from_utf8(body).map_err(|_| RangeError::Malformed)?;
        // Every line `<35 hex digits>:<count>`, and at least one: anything else (a captive
        // portal's page, a wrong URL) is no answer, not "never seen".
        let mut found = None;
        let mut lines = 0;
        for line in body.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let (s, count) = line.split_once(':').ok_or(RangeError::Malformed)?;
            let count: u64 = count.trim().parse().map_err(|_| RangeError::Malformed)?;
            if s.len() != 35 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(RangeError::Malformed);
            }
            if s.eq_ignore_ascii_case(suffix) {
                found = Some(count);
            }
            lines += 1;
        }
        if lines == 0 {
            return Err(RangeError::Malformed);
        }
        Ok(found.unwrap_or(0))
    }
}

impl Checker {
    fn build(options: &CompromisedPasswordOptions) -> Result<Self, Error> {
        let config = |message: String| Error::Plugin {
            plugin: "compromised-password",
            message,
        };
        let extra = match &options.list_file {
            Some(path) => std::fs::read_to_string(path)
                .map_err(|e| config(format!("cannot read {}: {e}", path.display())))?
                .lines()
                .map(|l| l.trim().to_lowercase())
                .filter(|l| !l.is_empty())
                .collect(),
            None => HashSet::new(),
        };
        let range = match &options.range_api {
            Some(base) => {
                if !base.starts_with("https://") && !base.starts_with("http://") {
                    return Err(config(format!("range_api is not an http(s) URL: {base}")));
                }
                if base.starts_with("http://") {
                    tracing::warn!(
                        "range_api is plain http: whoever is on the way can make every password pass"
                    );
                }
                let timeout = Duration::from_secs(options.timeout_secs.max(1));
                let client = reqwest::Client::builder()
                    .timeout(timeout)
                    .connect_timeout(timeout)
                    .redirect(reqwest::redirect::Policy::none())
                    .user_agent("Portcullis password checker")
                    .build()
                    .map_err(|e| config(format!("cannot make the HTTP client: {e}")))?;
                Some(RangeApi {
                    client,
                    base: base.clone(),
                })
            }
            None => None,
        };
        Ok(Self {
            common: options.common_list,
            extra,
            range,
            fail_open: options.fail_open,
            message: options.message.clone(),
        })
    }

    fn refusal(&self) -> ApiError {
        let err = ApiError::bad_request(codes::PASSWORD_COMPROMISED);
        match &self.message {
            Some(m) => err.with_message(m.clone()),
            None => err,
        }
    }

    async fn check(&self, password: &str) -> Result<(), ApiError> {
        let folded = password.to_lowercase();
        if (self.common && COMMON.contains(folded.as_str())) || self.extra.contains(&folded) {
            tracing::info!("a new password was refused: it is on a list of common passwords");
            return Err(self.refusal());
        }
        let Some(range) = &self.range else {
            return Ok(());
        };
        match range.count(password).await {
            Ok(0) => Ok(()),
            Ok(_) => {
                tracing::info!("a new password was refused: the range API has seen it");
                Err(self.refusal())
            }
            Err(e) if self.fail_open => {
                tracing::warn!(error = %e, "password not checked against the range API; accepted");
                Ok(())
            }
            Err(e) => {
                tracing::error!(error = %e, "password not checked against the range API; refused");
                Err(ApiError::without_code(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Failed to check password. Please try again later.",
                ))
            }
        }
    }
}

impl Plugin for CompromisedPassword {
    fn id(&self) -> &'static str {
        "compromised-password"
    }

    fn init(&self, _ctx: &mut InitContext<'_>) -> Result<(), Error> {
        if self.checker.get().is_none() {
            let checker = Arc::new(Checker::build(&self.options)?);
            let _ = self.checker.set(checker);
        }
        Ok(())
    }

    fn password_checks(&self) -> Vec<PasswordCheck> {
        let Some(checker) = self.checker.get().cloned() else {
            return Vec::new();
        };
        let check: PasswordCheck = Arc::new(move |_ctx, password: String| {
            let checker = checker.clone();
            Box::pin(async move { checker.check(&password).await }) as BoxFuture<'static, _>
        });
        vec![check]
    }

    fn error_codes(&self) -> &'static [ErrorCode] {
        codes::ALL
    }
}

fn from_config(config: &serde_json::Value) -> Result<Arc<dyn Plugin>, Error> {
    let options: CompromisedPasswordOptions =
        portcullis::plugin::options_from_config("compromised-password", config)?;
    Ok(Arc::new(CompromisedPassword::new(options)))
}

inventory::submit! {
    PluginFactory { name: "compromised-password", build: from_config }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_list_is_whole_and_folded_lookups_find_it() {
        assert_eq!(COMMON.len(), 49_233);
        for common in ["password", "football", "trustno1", "qwertyuiop"] {
            assert!(COMMON.contains(common), "{common}");
        }
        assert!(!COMMON.contains("correct-horse-battery"));
    }
}
