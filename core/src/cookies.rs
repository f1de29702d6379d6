//! Cookies as Better Auth writes and reads them.
//!
//! Names are `<prefix>.<name>` (prefix `better-auth` by default), with `__Secure-` in front when
//! the base URL is https. `Set-Cookie` attributes come out in Better Auth's order. Signed values
//! are `value.base64(HMAC)` passed through `encodeURIComponent`.

use std::borrow::Cow;

use http::{header, HeaderMap, HeaderValue};
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// What JavaScript's `encodeURIComponent` leaves alone: `A-Z a-z 0-9 - _ . ! ~ * ' ( )`.
const URI_COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'!')
    .remove(b'~')
    .remove(b'*')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')');

/// Percent-encodes like JavaScript's `encodeURIComponent`.
pub fn encode_uri_component(value: &str) -> Cow<'_, str> {
    utf8_percent_encode(value, URI_COMPONENT).into()
}

/// The `SameSite` attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SameSite {
    /// `SameSite=Lax`, the default.
    #[default]
    Lax,
    /// `SameSite=Strict`.
    Strict,
    /// `SameSite=None` (forces `Secure`).
    None,
}

/// How the engine's cookies are named and which attributes they carry.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CookieOptions {
    /// Name prefix, `better-auth` by default, so the session cookie is
    /// `better-auth.session_token`.
    pub prefix: String,
    /// Forces `Secure` and the `__Secure-` name prefix on or off. By default they are on
    /// exactly when the base URL is https.
    pub secure: Option<bool>,
    /// `Domain=` for cookies shared across subdomains; none by default.
    pub domain: Option<String>,
    /// `SameSite`, `Lax` by default.
    pub same_site: SameSite,
}

impl Default for CookieOptions {
    fn default() -> Self {
        Self {
            prefix: "better-auth".into(),
            secure: None,
            domain: None,
            same_site: SameSite::Lax,
        }
    }
}

/// The resolved names and attributes of the engine's cookies.
#[derive(Debug, Clone)]
pub struct CookieJarConfig {
    secure: bool,
    prefix: String,
    domain: Option<String>,
    same_site: SameSite,
    /// Wire name of the session token cookie.
    pub session_token: String,
    /// Wire name of the cookie cache cookie.
    pub session_data: String,
    /// Wire name of the "don't remember me" marker.
    pub dont_remember: String,
}

impl CookieJarConfig {
    /// Resolves names and attributes; `https` says whether the base URL is https.
    pub fn new(options: &CookieOptions, https: bool) -> Self {
        let secure = options.secure.unwrap_or(https);
        let prefix = format!(
            "{}{}",
            if secure { "__Secure-" } else { "" },
            options.prefix
        );
        Self {
            session_token: format!("{prefix}.session_token"),
            session_data: format!("{prefix}.session_data"),
            dont_remember: format!("{prefix}.dont_remember"),
            secure,
            prefix,
            domain: options.domain.clone(),
            same_site: options.same_site,
        }
    }

    /// The wire name of a cookie called `name` (e.g. `two_factor` →
    /// `better-auth.two_factor`), for plugins with cookies of their own.
    pub fn name(&self, name: &str) -> String {
        format!("{}.{name}", self.prefix)
    }

    /// Whether cookies carry `Secure`.
    pub fn is_secure(&self) -> bool {
        self.secure
    }

    /// A cookie with the engine's default attributes (`HttpOnly; SameSite=Lax; Path=/`, plus
    /// `Secure` and `Domain` where configured).
    pub fn cookie(&self, name: impl Into<String>, value: impl Into<String>) -> SetCookie {
        SetCookie {
            name: name.into(),
            value: value.into(),
            max_age: None,
            domain: self.domain.clone(),
            path: "/".into(),
            http_only: true,
            secure: self.secure || self.same_site == SameSite::None,
            same_site: Some(self.same_site),
        }
    }

    /// A cookie that deletes `name` in the browser: empty value, `Max-Age=0`.
    pub fn expired(&self, name: impl Into<String>) -> SetCookie {
        self.cookie(name, "").max_age(0)
    }
}

/// One `Set-Cookie` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetCookie {
    /// Cookie name.
    pub name: String,
    /// Cookie value, written as is (encode it first if it needs encoding).
    pub value: String,
    /// `Max-Age` in seconds; none makes a browser-session cookie.
    pub max_age: Option<i64>,
    /// `Domain`.
    pub domain: Option<String>,
    /// `Path`.
    pub path: String,
    /// `HttpOnly`.
    pub http_only: bool,
    /// `Secure`.
    pub secure: bool,
    /// `SameSite`.
    pub same_site: Option<SameSite>,
}

impl SetCookie {
    /// Sets `Max-Age`.
    pub fn max_age(mut self, seconds: i64) -> Self {
        self.max_age = Some(seconds);
        self
    }

    /// The header value, attributes in Better Auth's order:
    /// `name=value; Max-Age=N; Domain=…; Path=/; HttpOnly; Secure; SameSite=Lax`.
    pub fn to_header_value(&self) -> String {
        use std::fmt::Write as _;
        let mut s = String::with_capacity(self.name.len() + self.value.len() + 64);
        s.push_str(&self.name);
        s.push('=');
        s.push_str(&self.value);
        if let Some(age) = self.max_age {
            let _ = write!(s, "; Max-Age={age}");
        }
        if let Some(domain) = &self.domain {
            let _ = write!(s, "; Domain={domain}");
        }
        let _ = write!(s, "; Path={}", self.path);
        if self.http_only {
            s.push_str("; HttpOnly");
        }
        if self.secure {
            s.push_str("; Secure");
        }
        match self.same_site {
            Some(SameSite::Lax) => s.push_str("; SameSite=Lax"),
            Some(SameSite::Strict) => s.push_str("; SameSite=Strict"),
            Some(SameSite::None) => s.push_str("; SameSite=None"),
            None => {}
        }
        s
    }
}

/// The value of cookie `name` in the request's `Cookie` headers, as Better Auth reads it: the
/// first occurrence wins, surrounding double quotes are stripped, and a value containing `%` is
/// percent-decoded (an undecodable value is taken as absent).
pub fn get_cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<Cow<'a, str>> {
    for header in headers.get_all(header::COOKIE) {
        let Ok(text) = header.to_str() else { continue };
        for pair in text.split(';') {
            let Some((k, v)) = pair.split_once('=') else {
                continue;
            };
            if k.trim() != name {
                continue;
            }
            let v = v.trim();
            let v = v
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(v);
            if !v.contains('%') {
                return Some(Cow::Borrowed(v));
            }
            return percent_decode_str(v).decode_utf8().ok();
        }
    }
    None
}

/// The value of a cookie that may have been split into chunks (`name.0`, `name.1`, …), as
/// Better Auth's `getChunkedCookie` reads it: the whole cookie if present and non-empty,
/// otherwise the chunks joined in index order.
pub fn get_chunked_cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    if let Some(v) = get_cookie(headers, name).filter(|v| !v.is_empty()) {
        return Some(v.into_owned());
    }
    let chunks = chunk_names(headers, name);
    if chunks.is_empty() {
        return None;
    }
    Some(
        chunks
            .iter()
            .filter_map(|(_, n)| get_cookie(headers, n))
            .collect(),
    )
}

/// Most chunks a chunked cookie may have (Better Auth's limit).
pub const MAX_CHUNKS: usize = 100;

/// The chunks of cookie `name` in the request, `name.0` to `name.99`, in index order. Other
/// names that merely start with `name.` are not chunks, so a request cannot make the engine
/// handle thousands of them.
pub fn chunk_names(headers: &HeaderMap, name: &str) -> Vec<(usize, String)> {
    let prefix = format!("{name}.");
    let mut found = std::collections::BTreeMap::new();
    for n in cookie_names(headers) {
        let Some(index) = n.strip_prefix(&prefix) else {
            continue;
        };
        let canonical = !index.is_empty()
            && index.len() <= 2
            && index.bytes().all(|b| b.is_ascii_digit())
            && (index == "0" || !index.starts_with('0'));
        if let (true, Ok(i)) = (canonical, index.parse::<usize>()) {
            if i < MAX_CHUNKS {
                found.entry(i).or_insert(n);
            }
        }
    }
    found.into_iter().collect()
}

/// Every cookie name present in the request, in order.
pub fn cookie_names(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|h| h.to_str().ok())
        .flat_map(|text| text.split(';'))
        .filter_map(|pair| pair.split_once('=').map(|(k, _)| k.trim().to_owned()))
        .collect()
}

/// Appends `cookie` to `headers` as a `Set-Cookie`. An earlier `Set-Cookie` of the same name is
/// removed first, so one response never both sets and deletes a cookie (the deletion wins). A
/// deletion (empty value, `Max-Age=0`) also removes earlier sets of the cookie's chunks
/// (`name.0`, `name.1`, …), as Better Auth's `expireCookie` does, so no valid value leaks in
/// a response that ends up deleting it.
pub fn append_set_cookie(headers: &mut HeaderMap, cookie: &SetCookie) {
    let prefix = format!("{}=", cookie.name);
    let chunk_prefix = format!("{}.", cookie.name);
    let deletion = cookie.value.is_empty() && cookie.max_age == Some(0);
    if headers.contains_key(header::SET_COOKIE) {
        let kept: Vec<HeaderValue> = headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter(|v| {
                let b = v.as_bytes();
                let same = b.starts_with(prefix.as_bytes());
                let chunk = deletion && b.starts_with(chunk_prefix.as_bytes());
                !same && !chunk
            })
            .cloned()
            .collect();
        headers.remove(header::SET_COOKIE);
        for v in kept {
            headers.append(header::SET_COOKIE, v);
        }
    }
    match HeaderValue::from_str(&cookie.to_header_value()) {
        Ok(v) => {
            headers.append(header::SET_COOKIE, v);
        }
        Err(_) => {
            tracing::warn!(cookie = %cookie.name, "cookie value is not a valid header; not set")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_like_encode_uri_component() {
        assert_eq!(encode_uri_component("a+b/c=d"), "a%2Bb%2Fc%3Dd");
        assert_eq!(encode_uri_component("A-z_0.9!~*'()"), "A-z_0.9!~*'()");
        assert_eq!(encode_uri_component("é "), "%C3%A9%20");
    }

    #[test]
    fn names_get_the_secure_prefix_on_https() {
        let http = CookieJarConfig::new(&CookieOptions::default(), false);
        assert_eq!(http.session_token, "better-auth.session_token");
        let https = CookieJarConfig::new(&CookieOptions::default(), true);
        assert_eq!(https.session_token, "__Secure-better-auth.session_token");
        assert_eq!(https.name("two_factor"), "__Secure-better-auth.two_factor");
        assert!(https
            .cookie("x", "y")
            .to_header_value()
            .contains("; Secure"));
    }

    #[test]
    fn set_cookie_attributes_come_in_better_auths_order() {
        let jar = CookieJarConfig::new(&CookieOptions::default(), false);
        let c = jar
            .cookie("better-auth.session_token", "abc")
            .max_age(604800);
        assert_eq!(
            c.to_header_value(),
            "better-auth.session_token=abc; Max-Age=604800; Path=/; HttpOnly; SameSite=Lax"
        );
        let with_domain = CookieJarConfig::new(
            &CookieOptions {
                domain: Some("example.com".into()),
                ..Default::default()
            },
            true,
        );
        assert_eq!(
            with_domain.expired("n").to_header_value(),
            "n=; Max-Age=0; Domain=example.com; Path=/; HttpOnly; Secure; SameSite=Lax"
        );
    }

    #[test]
    fn reads_cookies_like_better_auth() {
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; b=\"two\"; a=3"),
        );
        h.append(header::COOKIE, HeaderValue::from_static("c=x%2By; d=%ZZ"));
        assert_eq!(get_cookie(&h, "a").as_deref(), Some("1"));
        assert_eq!(get_cookie(&h, "b").as_deref(), Some("two"));
        assert_eq!(get_cookie(&h, "c").as_deref(), Some("x+y"));
        assert_eq!(get_cookie(&h, "missing"), None);
        assert_eq!(cookie_names(&h), ["a", "b", "a", "c", "d"]);
    }

    #[test]
    fn chunked_cookies_are_joined_in_index_order() {
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            HeaderValue::from_static("d.10=k; d.2=c; x=1; d.0=a; d.1=b; d.y=z"),
        );
        assert_eq!(get_chunked_cookie(&h, "d").as_deref(), Some("abck"));
        h.append(header::COOKIE, HeaderValue::from_static("d=whole"));
        assert_eq!(get_chunked_cookie(&h, "d").as_deref(), Some("whole"));
        assert_eq!(get_chunked_cookie(&h, "none"), None);
    }

    #[test]
    fn a_deletion_also_removes_earlier_chunks() {
        let jar = CookieJarConfig::new(&CookieOptions::default(), false);
        let mut h = HeaderMap::new();
        append_set_cookie(&mut h, &jar.cookie("d.0", "v0"));
        append_set_cookie(&mut h, &jar.cookie("d.1", "v1"));
        append_set_cookie(&mut h, &jar.cookie("dx", "keep"));
        append_set_cookie(&mut h, &jar.cookie("d", "whole"));
        append_set_cookie(&mut h, &jar.cookie("d", "again"));
        assert_eq!(h.get_all(header::SET_COOKIE).iter().count(), 4);
        append_set_cookie(&mut h, &jar.expired("d"));
        let all: Vec<_> = h
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect();
        assert_eq!(all.len(), 2, "{all:?}");
        assert!(all[0].starts_with("dx=keep"));
        assert!(all[1].starts_with("d=; Max-Age=0"));
    }

    #[test]
    fn a_deletion_replaces_an_earlier_set_of_the_same_cookie() {
        let jar = CookieJarConfig::new(&CookieOptions::default(), false);
        let mut h = HeaderMap::new();
        append_set_cookie(&mut h, &jar.cookie("s", "v1"));
        append_set_cookie(&mut h, &jar.cookie("t", "v2"));
        append_set_cookie(&mut h, &jar.expired("s"));
        let all: Vec<_> = h.get_all(header::SET_COOKIE).iter().collect();
        assert_eq!(all.len(), 2);
        assert!(all[0].to_str().unwrap().starts_with("t=v2"));
        assert!(all[1].to_str().unwrap().starts_with("s=; Max-Age=0"));
    }
}
