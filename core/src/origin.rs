//! Origin and CSRF checks, and redirect-target validation, as Better Auth applies them to HTTP
//! requests (not to server-side API calls).
//!
//! - A state-changing request that carries any cookie must name a trusted `Origin` (or
//!   `Referer`): 403 `MISSING_OR_NULL_ORIGIN` / `INVALID_ORIGIN` otherwise.
//! - Sign-in and sign-up endpoints (marked [`Endpoint::login`](crate::Endpoint::login)) without
//!   cookies refuse cross-site navigations (403 `CROSS_SITE_NAVIGATION_LOGIN_BLOCKED`) and, when
//!   the request shows any browser marker (`Sec-Fetch-*`, `Origin`, `Referer`), require a trusted
//!   origin. Clients without those markers (curl, servers, mobile apps) may sign in.
//! - `callbackURL`, `redirectTo`, `errorCallbackURL` and `newUserCallbackURL` (body or query) must
//!   be a same-site relative path or a URL on a trusted origin. URLs are parsed with a WHATWG URL
//!   parser, never compared by string prefix.
//!
//! Trusted origins are the base URL's origin plus the configured list: exact origins
//! (`https://app.example.com`), wildcards (`*.example.com`, `https://*.example.com`), and custom
//! schemes for mobile apps (`myapp://`).

use http::{header, HeaderMap, Method, StatusCode};
use url::Url;

use crate::error::{codes, ApiError, ErrorCode};

/// The redirect fields Better Auth validates, with the error each one gets.
const REDIRECT_FIELDS: &[(&str, ErrorCode)] = &[
    ("callbackURL", codes::INVALID_CALLBACK_URL),
    ("redirectTo", codes::INVALID_REDIRECT_URL),
    ("errorCallbackURL", codes::INVALID_ERROR_CALLBACK_URL),
    ("newUserCallbackURL", codes::INVALID_NEW_USER_CALLBACK_URL),
];

#[derive(Debug, Clone, PartialEq, Eq)]
enum Pattern {
    /// An http(s) origin, serialised (`https://example.com:8443`).
    Exact(String),
    /// A wildcard over the host (and scheme, when given).
    Glob {
        scheme: Option<String>,
        host: String,
    },
    /// A custom scheme, with an optional prefix for what follows `scheme://`.
    Custom { scheme: String, rest: String },
}

/// The set of origins the server trusts.
#[derive(Debug, Clone, Default)]
pub struct TrustedOrigins {
    patterns: Vec<Pattern>,
}

/// Schemes that can run code or read local files: never trusted, whatever the configuration.
const DANGEROUS_SCHEMES: &[&str] = &["javascript", "data", "vbscript", "file", "blob"];

impl TrustedOrigins {
    /// Trusts `base_url`'s origin (when given) and every entry of `list`. Entries that are not
    /// valid origins or patterns are refused.
    pub fn new(base_url: Option<&str>, list: &[String]) -> Result<Self, crate::Error> {
        let mut patterns = Vec::new();
        for entry in base_url
            .into_iter()
            .map(str::to_owned)
            .chain(list.iter().cloned())
        {
            let entry = entry.trim();
            if entry.is_empty() {
                continue;
            }
            patterns.push(parse_pattern(entry).ok_or_else(|| {
                crate::Error::Config(format!(
                    "trusted origin `{entry}` is not an origin, a wildcard or a custom scheme"
                ))
            })?);
        }
        Ok(Self { patterns })
    }

    /// Whether an absolute URL (or origin) is on a trusted origin.
    pub fn trusts(&self, url: &Url) -> bool {
        let scheme = url.scheme();
        if DANGEROUS_SCHEMES.contains(&scheme) {
            return false;
        }
        // `https://trusted@evil` and `https://evil@trusted` alike are refused: no credentials
        // in a redirect target.
        if !url.username().is_empty() || url.password().is_some() {
            return false;
        }
        let special = scheme == "http" || scheme == "https";
        self.patterns.iter().any(|p| match p {
            Pattern::Exact(origin) => special && url.origin().ascii_serialization() == *origin,
            Pattern::Glob { scheme: s, host } => {
                special
                    && s.as_deref().is_none_or(|s| s == scheme)
                    && url.host_str().is_some_and(|h| {
                        let target = match url.port() {
                            Some(port) => format!("{h}:{port}"),
                            None => h.to_owned(),
                        };
                        glob(host, &target)
                    })
            }
            Pattern::Custom { scheme: s, rest } => {
                !special && s == scheme && {
                    let after = &url.as_str()[scheme.len() + 1..];
                    let after = after.strip_prefix("//").unwrap_or(after);
                    !after.split('/').any(|seg| seg == ".." || seg == ".")
                        && after.starts_with(rest.as_str())
                }
            }
        })
    }

    /// Whether the value of an `Origin` or `Referer` header names a trusted origin.
    pub fn trusts_header(&self, value: &str) -> bool {
        Url::parse(value).is_ok_and(|u| self.trusts(&u))
    }

    /// Whether `value` may be used as a redirect target: a relative path on this site, or a URL
    /// on a trusted origin.
    pub fn allows_redirect(&self, value: &str) -> bool {
        if value.starts_with('/') {
            return is_safe_relative(value);
        }
        if value.chars().any(|c| c.is_control() || c == '\\') {
            return false;
        }
        // Anything else must be absolute: "evil.com" or "//evil.com" are not same-site paths.
        match Url::parse(value) {
            Ok(u) => self.trusts(&u),
            Err(_) => false,
        }
    }
}

/// A relative redirect that stays on this site: `/path`, never `//host`, no backslashes, no
/// control characters, no encoded slashes a later decoding could turn into `//`.
fn is_safe_relative(value: &str) -> bool {
    let lower = value.to_ascii_lowercase();
    value.starts_with('/')
        && !value.starts_with("//")
        && !value.contains('\\')
        && !value.chars().any(char::is_control)
        && !lower.contains("%2f")
        && !lower.contains("%5c")
        && !lower.contains("%00")
}

fn parse_pattern(entry: &str) -> Option<Pattern> {
    let lower = entry.to_ascii_lowercase();
    if lower.contains('*') || lower.contains('?') {
        let (scheme, host) = match lower.split_once("://") {
            Some((s, h)) => (Some(s.to_owned()), h.trim_end_matches('/').to_owned()),
            None => (None, lower.trim_end_matches('/').to_owned()),
        };
        if host.is_empty() || host.contains('/') || host.contains('@') {
            return None;
        }
        if scheme
            .as_deref()
            .is_some_and(|s| s != "http" && s != "https")
        {
            return None;
        }
        return Some(Pattern::Glob { scheme, host });
    }
    let url = Url::parse(entry).ok()?;
    let scheme = url.scheme();
    if DANGEROUS_SCHEMES.contains(&scheme) {
        return None;
    }
    if scheme == "http" || scheme == "https" {
        return url
            .host_str()
            .map(|_| Pattern::Exact(url.origin().ascii_serialization()));
    }
    let after = &entry[scheme.len() + 1..];
    let rest = after.strip_prefix("//").unwrap_or(after).to_owned();
    Some(Pattern::Custom {
        scheme: scheme.to_owned(),
        rest,
    })
}

/// `*` matches any run of characters, `?` exactly one; anchored at both ends.
fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (
        pattern.chars().collect(),
        text.to_ascii_lowercase().chars().collect(),
    );
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// Where a request is checked: what the pipeline knows before the endpoint runs.
pub(crate) struct Checked<'a> {
    pub(crate) method: &'a Method,
    pub(crate) headers: &'a HeaderMap,
    pub(crate) body: Option<&'a serde_json::Value>,
    pub(crate) query: &'a [(String, String)],
    pub(crate) login: bool,
}

fn forbidden(code: ErrorCode) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, code)
}

/// The origin and redirect checks for one HTTP request.
pub(crate) fn check(
    trusted: &TrustedOrigins,
    options: &crate::auth::SecurityOptions,
    req: Checked<'_>,
) -> Result<(), ApiError> {
    let safe_method = matches!(*req.method, Method::GET | Method::HEAD | Method::OPTIONS);
    if !safe_method && !options.disable_csrf_check {
        let has_cookie = req.headers.contains_key(header::COOKIE);
        let fetch_site = header_str(req.headers, "sec-fetch-site");
        let fetch_mode = header_str(req.headers, "sec-fetch-mode");
        let browser_marked = fetch_site.is_some()
            || fetch_mode.is_some()
            || req.headers.contains_key("sec-fetch-dest")
            || req.headers.contains_key(header::ORIGIN)
            || req.headers.contains_key(header::REFERER);
        if req.login
            && !has_cookie
            && fetch_site == Some("cross-site")
            && fetch_mode == Some("navigate")
        {
            return Err(forbidden(codes::CROSS_SITE_NAVIGATION_LOGIN_BLOCKED));
        }
        if has_cookie || (req.login && browser_marked) {
            check_origin(trusted, req.headers, fetch_site)?;
        }
    }
    if options.disable_origin_check {
        return Ok(());
    }
    for (field, code) in REDIRECT_FIELDS {
        let in_body = req.body.and_then(|b| b.get(*field));
        let in_query = req
            .query
            .iter()
            .find(|(k, _)| k == field)
            .map(|(_, v)| v.as_str());
        if let Some(v) = in_body {
            match v {
                serde_json::Value::Null => {}
                serde_json::Value::String(s) => {
                    if !s.is_empty() && !trusted.allows_redirect(s) {
                        return Err(forbidden(*code));
                    }
                }
                _ => {
                    // Better Auth answers this one without a code.
                    return Err(ApiError::without_code(
                        StatusCode::BAD_REQUEST,
                        // (`redirectTo` is named redirectURL there.)
                        format!(
                            "Invalid {}: expected a string",
                            if *field == "redirectTo" {
                                "redirectURL"
                            } else {
                                field
                            }
                        ),
                    ));
                }
            }
        }
        // A GET's query targets are checked after the input shapes (Better Auth's
        // per-endpoint origin check runs after zod): see `check_query_redirects`.
        if let Some(s) = in_query.filter(|_| !safe_method) {
            if !s.is_empty() && !trusted.allows_redirect(s) {
                return Err(forbidden(*code));
            }
        }
    }
    Ok(())
}

/// The redirect targets in a GET's query (every value of a repeated key), checked once the
/// endpoint's input shapes passed.
pub(crate) fn check_query_redirects(
    trusted: &TrustedOrigins,
    options: &crate::auth::SecurityOptions,
    query: &[(String, String)],
) -> Result<(), ApiError> {
    if options.disable_origin_check {
        return Ok(());
    }
    for (field, code) in REDIRECT_FIELDS {
        for (_, s) in query.iter().filter(|(k, _)| k == field) {
            if !s.is_empty() && !trusted.allows_redirect(s) {
                return Err(forbidden(*code));
            }
        }
    }
    Ok(())
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

fn check_origin(
    trusted: &TrustedOrigins,
    headers: &HeaderMap,
    fetch_site: Option<&str>,
) -> Result<(), ApiError> {
    let origin = header_str(headers, header::ORIGIN.as_str());
    let claimed = match origin {
        Some(o) if !o.is_empty() && o != "null" => Some(o),
        // A same-origin request whose Origin the browser hid: Sec-Fetch-Site vouches for it.
        Some("null") if fetch_site == Some("same-origin") => return Ok(()),
        _ => header_str(headers, header::REFERER.as_str()).filter(|r| !r.is_empty()),
    };
    match claimed {
        None => Err(forbidden(codes::MISSING_OR_NULL_ORIGIN)),
        Some(value) if trusted.trusts_header(value) => Ok(()),
        Some(_) => Err(forbidden(codes::INVALID_ORIGIN)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trusted() -> TrustedOrigins {
        TrustedOrigins::new(
            Some("https://app.example.com"),
            &[
                "*.partner.test".into(),
                "http://localhost:5173".into(),
                "myapp://".into(),
                "exp://expo.dev/@me/".into(),
            ],
        )
        .unwrap()
    }

    #[test]
    fn exact_wildcard_and_custom_scheme_origins() {
        let t = trusted();
        for ok in [
            "https://app.example.com",
            "https://app.example.com:443/x",
            "https://a.partner.test",
            "http://b.c.partner.test",
            "http://localhost:5173/cb",
            "myapp://callback",
            "exp://expo.dev/@me/home",
        ] {
            assert!(t.trusts_header(ok), "{ok}");
        }
        for bad in [
            "https://evil.example.com",
            "http://app.example.com",
            "https://app.example.com:8443",
            "https://app.example.com.evil.com",
            "https://partner.test.evil.com",
            "https://evilpartner.test",
            "http://localhost:5174",
            "otherapp://callback",
            "exp://expo.dev/@other/home",
            "exp://expo.dev/@me/../@other",
            "javascript:alert(1)",
            "null",
            "",
        ] {
            assert!(!t.trusts_header(bad), "{bad}");
        }
    }

    #[test]
    fn redirects_must_stay_on_site_or_on_trusted_origins() {
        let t = trusted();
        for ok in [
            "/dashboard",
            "/a/b?c=d#e",
            "https://app.example.com/welcome",
            "myapp://done",
        ] {
            assert!(t.allows_redirect(ok), "{ok}");
        }
        for bad in [
            "//evil.com",
            "/\\evil.com",
            "\\\\evil.com",
            "https:\\\\evil.com",
            "https://evil.com",
            "evil.com",
            "https://app.example.com@evil.com",
            "https://user:pw@app.example.com/",
            "/%2F%2Fevil.com",
            "/%5c%5cevil.com",
            "/x\r\nLocation: https://evil.com",
            "javascript:alert(document.cookie)",
            "data:text/html,<script>alert(1)</script>",
            "https://app.example.com.evil.com/",
            "https://xn--pp-example-8ib.com/",
            " https://evil.com",
            "https:evil.com",
        ] {
            assert!(!t.allows_redirect(bad), "{bad:?}");
        }
    }

    #[test]
    fn dangerous_or_malformed_trusted_origins_are_refused() {
        for bad in [
            "javascript:",
            "data:text/html",
            "*.com/path",
            "ftp://*.x.com",
            "not a url",
        ] {
            assert!(TrustedOrigins::new(None, &[bad.into()]).is_err(), "{bad}");
        }
    }

    #[test]
    fn glob_is_anchored() {
        assert!(glob("*.a.com", "x.a.com"));
        assert!(!glob("*.a.com", "x.a.com.b"));
        assert!(glob("a?c", "abc"));
        assert!(!glob("a?c", "abbc"));
    }
}
