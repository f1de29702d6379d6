//! Errors: what an endpoint answers ([`ApiError`]) and what building the engine can fail with
//! ([`Error`]).
//!
//! Every error an endpoint returns renders as Better Auth does: a JSON body `{"message", "code"}`
//! with the HTTP status of the error. Error codes are declared as [`ErrorCode`] constants, by the
//! engine in [`codes`] and by each plugin for its own.

use std::borrow::Cow;

use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};

/// A machine-readable error code with its default human message and HTTP status, e.g.
/// `INVALID_EMAIL` (400). Plugins declare theirs as `const`s; `ApiError::from(CODE)` answers
/// with the code's default status, [`ApiError::new`] with another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ErrorCode {
    /// The code as it appears on the wire (`"code"` in the JSON body).
    pub code: &'static str,
    /// The default message (`"message"` in the JSON body).
    pub message: &'static str,
    /// The status an error with this code is answered with unless its call site says
    /// otherwise.
    pub status: StatusCode,
}

impl ErrorCode {
    /// Declares an error code answered 400 by default. Plugins use this for their own
    /// `const`s.
    pub const fn new(code: &'static str, message: &'static str) -> Self {
        Self {
            code,
            message,
            status: StatusCode::BAD_REQUEST,
        }
    }

    /// The same code with another default status.
    pub const fn with_status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }
}

impl From<ErrorCode> for ApiError {
    /// The error with the code's default status and message.
    fn from(code: ErrorCode) -> Self {
        ApiError::new(code.status, code)
    }
}

/// The error codes of Better Auth's core (`BASE_ERROR_CODES`) plus the router's own.
pub mod codes {
    use super::ErrorCode;

    use http::StatusCode;

    macro_rules! codes {
        ($($name:ident => $msg:literal $(@ $status:ident)?,)*) => {
            $(
                #[doc = $msg]
                pub const $name: ErrorCode = ErrorCode::new(stringify!($name), $msg)
                    $(.with_status(StatusCode::$status))?;
            )*
            /// Every code in this module, for listing and lookups.
            pub const ALL: &[ErrorCode] = &[$($name),*];
        };
    }

    codes! {
        USER_NOT_FOUND => "User not found" @ NOT_FOUND,
        FAILED_TO_CREATE_USER => "Failed to create user" @ UNPROCESSABLE_ENTITY,
        FAILED_TO_CREATE_SESSION => "Failed to create session" @ INTERNAL_SERVER_ERROR,
        FAILED_TO_UPDATE_USER => "Failed to update user" @ INTERNAL_SERVER_ERROR,
        FAILED_TO_GET_SESSION => "Failed to get session" @ INTERNAL_SERVER_ERROR,
        INVALID_PASSWORD => "Invalid password",
        INVALID_EMAIL => "Invalid email",
        INVALID_EMAIL_OR_PASSWORD => "Invalid email or password" @ UNAUTHORIZED,
        INVALID_USER => "Invalid user",
        INVALID_TOKEN => "Invalid token",
        TOKEN_EXPIRED => "Token expired",
        EMAIL_NOT_VERIFIED => "Email not verified" @ FORBIDDEN,
        PASSWORD_TOO_SHORT => "Password too short",
        PASSWORD_TOO_LONG => "Password too long",
        USER_ALREADY_EXISTS => "User already exists." @ UNPROCESSABLE_ENTITY,
        USER_ALREADY_EXISTS_USE_ANOTHER_EMAIL => "User already exists. Use another email." @ UNPROCESSABLE_ENTITY,
        EMAIL_CAN_NOT_BE_UPDATED => "Email can not be updated",
        CREDENTIAL_ACCOUNT_NOT_FOUND => "Credential account not found",
        CHANGE_EMAIL_DISABLED => "Change email is disabled",
        FAILED_TO_GET_USER_INFO => "Failed to get user info",
        SESSION_EXPIRED => "Session expired. Re-authenticate to perform this action." @ UNAUTHORIZED,
        ACCOUNT_NOT_FOUND => "Account not found",
        SESSION_NOT_FRESH => "Session is not fresh" @ FORBIDDEN,
        VERIFICATION_EMAIL_NOT_ENABLED => "Verification email isn't enabled",
        EMAIL_ALREADY_VERIFIED => "Email is already verified",
        EMAIL_MISMATCH => "Email mismatch",
        FAILED_TO_CREATE_VERIFICATION => "Unable to create verification" @ INTERNAL_SERVER_ERROR,
        INVALID_ORIGIN => "Invalid origin" @ FORBIDDEN,
        MISSING_OR_NULL_ORIGIN => "Missing or null Origin" @ FORBIDDEN,
        INVALID_CALLBACK_URL => "Invalid callbackURL" @ FORBIDDEN,
        INVALID_REDIRECT_URL => "Invalid redirectURL" @ FORBIDDEN,
        INVALID_ERROR_CALLBACK_URL => "Invalid errorCallbackURL" @ FORBIDDEN,
        INVALID_NEW_USER_CALLBACK_URL => "Invalid newUserCallbackURL" @ FORBIDDEN,
        CROSS_SITE_NAVIGATION_LOGIN_BLOCKED => "Cross-site navigation login blocked. This request appears to be a CSRF attack." @ FORBIDDEN,
        FIELD_NOT_ALLOWED => "Field not allowed to be set",
        VALIDATION_ERROR => "Validation Error",
        MISSING_FIELD => "Field is required",
        METHOD_NOT_ALLOWED_DEFER_SESSION_REQUIRED => "POST method requires deferSessionRefresh to be enabled in session config",
        BODY_MUST_BE_AN_OBJECT => "Body must be an object",
        PASSWORD_ALREADY_SET => "User already has a password set",
        BAD_REQUEST => "Bad request",
        UNSUPPORTED_MEDIA_TYPE => "Unsupported media type" @ UNSUPPORTED_MEDIA_TYPE,
        PAYLOAD_TOO_LARGE => "Request body is too large" @ PAYLOAD_TOO_LARGE,
        UNAUTHORIZED => "Unauthorized" @ UNAUTHORIZED,
        NOT_FOUND => "Not found" @ NOT_FOUND,
        INTERNAL_SERVER_ERROR => "Internal server error" @ INTERNAL_SERVER_ERROR,
    }
}

/// What an endpoint answers when it fails: a status, a code and a message.
///
/// Renders as `{"message": …, "code": …}` (message first, as Better Auth writes it). A few Better
/// Auth errors have no code, or no body at all; [`ApiError::without_code`] and
/// [`ApiError::empty`] build those.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{status}: {message}")]
pub struct ApiError {
    status: StatusCode,
    code: Option<Cow<'static, str>>,
    message: Cow<'static, str>,
    empty_body: bool,
    headers: Option<Box<HeaderMap>>,
}

impl ApiError {
    /// An error with `code`'s code and default message.
    pub fn new(status: StatusCode, code: ErrorCode) -> Self {
        Self {
            status,
            code: Some(Cow::Borrowed(code.code)),
            message: Cow::Borrowed(code.message),
            empty_body: false,
            headers: None,
        }
    }

    /// 400 with `code`.
    pub fn bad_request(code: ErrorCode) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code)
    }

    /// 401 `UNAUTHORIZED`, what endpoints that need a session answer without one.
    pub fn unauthorized() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, codes::UNAUTHORIZED)
    }

    /// 500 `INTERNAL_SERVER_ERROR`. The cause is logged by the caller, never sent.
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            codes::INTERNAL_SERVER_ERROR,
        )
    }

    /// 400 `VALIDATION_ERROR` with a message naming what is wrong.
    pub fn validation(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, codes::VALIDATION_ERROR).with_message(message)
    }

    /// An error whose body is `{"message": …}` with no `code`, as a few Better Auth errors are.
    pub fn without_code(status: StatusCode, message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            status,
            code: None,
            message: message.into(),
            empty_body: false,
            headers: None,
        }
    }

    /// An error with an empty body, e.g. Better Auth's 404 for an unknown route.
    pub fn empty(status: StatusCode) -> Self {
        Self {
            empty_body: true,
            ..Self::without_code(status, "")
        }
    }

    /// Replaces the message, keeping status and code.
    pub fn with_message(mut self, message: impl Into<Cow<'static, str>>) -> Self {
        self.message = message.into();
        self
    }

    /// Replaces the code.
    pub fn with_code(mut self, code: impl Into<Cow<'static, str>>) -> Self {
        self.code = Some(code.into());
        self
    }

    /// Adds a response header (for example `X-Retry-After` on a 429).
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers
            .get_or_insert_with(Default::default)
            .append(name, value);
        self
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The error code, if the error has one.
    pub fn code(&self) -> Option<&str> {
        self.code.as_deref()
    }

    /// The human message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Headers that go out with the error.
    pub fn headers(&self) -> &HeaderMap {
        static EMPTY: std::sync::OnceLock<HeaderMap> = std::sync::OnceLock::new();
        self.headers
            .as_deref()
            .unwrap_or_else(|| EMPTY.get_or_init(HeaderMap::new))
    }

    /// Whether the body is empty rather than `{message, code}`.
    pub fn has_empty_body(&self) -> bool {
        self.empty_body
    }

    /// The JSON body as Better Auth writes it (`message` first), or `None` for an empty body.
    pub fn body(&self) -> Option<serde_json::Value> {
        if self.empty_body {
            return None;
        }
        let mut map = serde_json::Map::new();
        map.insert("message".into(), self.message.as_ref().into());
        if let Some(code) = &self.code {
            map.insert("code".into(), code.as_ref().into());
        }
        Some(serde_json::Value::Object(map))
    }
}

impl From<crate::storage::StorageError> for ApiError {
    /// A database hook's refusal is answered as the hook made it; any other storage error is
    /// logged and answered 500.
    fn from(err: crate::storage::StorageError) -> Self {
        Self::from_storage(err, "storage error", Self::internal())
    }
}

impl ApiError {
    /// What a client is answered when a write fails: a database hook's refusal as the hook
    /// made it; any other storage error is logged as `what` and answered with `otherwise`.
    pub fn from_storage(
        err: crate::storage::StorageError,
        what: &'static str,
        otherwise: ApiError,
    ) -> ApiError {
        match err {
            crate::storage::StorageError::Rejected(refusal) => refusal,
            other => {
                tracing::error!(error = %other, "{what}");
                otherwise
            }
        }
    }
}

/// Errors of building, configuring or starting the engine (never of a request).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration is not usable; the message says what to change.
    #[error("configuration: {0}")]
    Config(String),
    /// The database could not be reached or prepared.
    #[error(transparent)]
    Storage(#[from] crate::storage::StorageError),
    /// A plugin refused to start.
    #[error("plugin `{plugin}`: {message}")]
    Plugin {
        /// The plugin's id.
        plugin: &'static str,
        /// What went wrong.
        message: String,
    },
}
