//! Bearer tokens, wire-compatible with Better Auth's `bearer` plugin: clients that keep no
//! cookies (mobile apps, servers, the official client with `fetchOptions.auth`) authenticate
//! with `Authorization: Bearer <token>`.
//!
//! - Every answer that sets a live session cookie also carries `set-auth-token:
//!   <token>.<signature>` (the cookie's value, decoded) and lists it in
//!   `Access-Control-Expose-Headers`, so browser code may read it.
//! - A request with `Authorization: Bearer <token>.<signature>` (percent-encoded or not, the
//!   signature in standard or URL-safe base64) is treated as one carrying that session cookie,
//!   on every endpoint a cookie would work on, over HTTP and server-side alike. A bare token
//!   (no signature) is accepted as Better Auth accepts it, unless
//!   [`BearerOptions::require_signature`]. A signature that does not verify is ignored (a
//!   valid cookie on the same request still works).
//!
//! A bearer request carries no cookie of the browser's, so it needs no `Origin` check: a page
//! on another site cannot make the browser send the header.

use std::sync::{Arc, OnceLock};

use http::{header, HeaderMap, HeaderName, HeaderValue};
use portcullis::plugin::Handlers;
use portcullis::{
    ApiError, Before, Ctx, Error, Hook, InitContext, Matcher, Plugin, PluginFactory, Reply,
};
use serde::Deserialize;

/// Options (`[plugin.bearer]`), with Better Auth's defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct BearerOptions {
    /// Accept only signed tokens (`<token>.<signature>`), not the bare session token (false,
    /// as in Better Auth).
    pub require_signature: bool,
}

/// The plugin.
#[derive(Debug, Default)]
pub struct Bearer {
    options: BearerOptions,
    /// The session cookie's wire name, known once the engine's options are.
    session_cookie: Arc<OnceLock<String>>,
}

impl Bearer {
    /// The plugin with `options`.
    pub fn new(options: BearerOptions) -> Self {
        Self {
            options,
            session_cookie: Arc::default(),
        }
    }

    /// Accept only signed tokens.
    pub fn require_signature(mut self, yes: bool) -> Self {
        self.options.require_signature = yes;
        self
    }
}

/// The response header that carries the signed token.
const SET_AUTH_TOKEN: &str = "set-auth-token";

impl Plugin for Bearer {
    fn id(&self) -> &'static str {
        "bearer"
    }

    fn init(&self, ctx: &mut InitContext<'_>) -> Result<(), Error> {
        let options = ctx.options();
        let https = options
            .base_url
            .as_deref()
            .is_some_and(|u| u.starts_with("https://"));
        let jar = portcullis::cookies::CookieJarConfig::new(&options.cookies, https);
        let _ = self.session_cookie.set(jar.session_token);
        Ok(())
    }

    fn hooks(&self) -> Vec<Hook> {
        let on = Handlers::new(Arc::new(self.options.clone()));
        let name = self.session_cookie.clone();
        vec![
            on.before(
                Matcher::Custom(Arc::new(|ctx: &Ctx| {
                    ctx.headers().contains_key(header::AUTHORIZATION)
                })),
                use_bearer_token,
            ),
            // Server-side calls see the endpoint's reply; HTTP answers are looked at last, so
            // that an error answer carrying a refreshed session cookie gets its token too (as
            // Better Auth's does).
            Hook::after(
                Matcher::Any,
                |ctx: Ctx, result: Result<Reply, ApiError>| async move {
                    let mut reply = result?;
                    expose(&mut reply, &ctx.auth().cookies().session_token);
                    Ok(reply)
                },
            ),
            Hook::on_response(move |mut reply: Reply| {
                let name = name.clone();
                async move {
                    if let Some(name) = name.get() {
                        expose(&mut reply, name);
                    }
                    reply
                }
            }),
        ]
    }
}

/// The signed token of an `Authorization` header, if it is a bearer token that verifies.
/// `verify`: check the signature here; without it the session read checks it (once), which
/// is enough when the request has no cookie a bad token could displace.
fn signed_token(ctx: &Ctx, options: &BearerOptions, verify: bool) -> Option<String> {
    let value = ctx.header(header::AUTHORIZATION)?.trim();
    let (scheme, token) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = token.trim();
    let token = if token.contains('%') {
        percent_encoding::percent_decode_str(token)
            .decode_utf8()
            .ok()?
            .into_owned()
    } else {
        token.to_owned()
    };
    let secret = ctx.auth().secret();
    let Some((raw, signature)) = token.rsplit_once('.') else {
        if options.require_signature || token.is_empty() {
            return None;
        }
        return Some(secret.sign(&token));
    };
    // URL-safe base64 and a missing pad are Better Auth's too.
    let mut standard: String = signature
        .chars()
        .map(|c| match c {
            '-' => '+',
            '_' => '/',
            c => c,
        })
        .collect();
    while standard.len() < 44 && standard.len() % 4 != 0 {
        standard.push('=');
    }
    let signed = format!("{raw}.{standard}");
    (!verify || secret.unsign(&signed).is_some()).then_some(signed)
}

/// The request's `Cookie` header with the session cookie set to `signed` (an explicit
/// `Authorization` header wins over a session cookie the request also carries).
fn with_session_cookie(ctx: &Ctx, signed: &str) -> Option<HeaderValue> {
    let name = &ctx.auth().cookies().session_token;
    let mut pairs: Vec<String> = ctx
        .header(header::COOKIE)
        .unwrap_or_default()
        .split(';')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .filter(|p| p.split_once('=').map_or(*p, |(n, _)| n).trim() != name)
        .map(str::to_owned)
        .collect();
    pairs.push(format!(
        "{name}={}",
        portcullis::cookies::encode_uri_component(signed)
    ));
    HeaderValue::from_str(&pairs.join("; ")).ok()
}

async fn use_bearer_token(options: Arc<BearerOptions>, ctx: Ctx) -> Result<Before, ApiError> {
    // With a cookie on the request, a token that does not verify must not displace it.
    let verify = ctx.headers().contains_key(header::COOKIE);
    let Some(signed) = signed_token(&ctx, &options, verify) else {
        return Ok(Before::Continue);
    };
    let Some(cookie) = with_session_cookie(&ctx, &signed) else {
        return Ok(Before::Continue);
    };
    let mut headers = HeaderMap::new();
    headers.insert(header::COOKIE, cookie);
    Ok(Before::Rewrite {
        body: None,
        headers,
    })
}

/// The signed token of the live session cookie `name` that `reply` sets, decoded.
fn session_cookie_set(reply: &Reply, name: &str) -> Option<String> {
    // The last `Set-Cookie` of the name is the one a browser keeps.
    let (value, attributes) = reply
        .set_cookies()
        .filter_map(|c| {
            let (pair, attributes) = c.split_once(';').unwrap_or((c, ""));
            let (n, value) = pair.split_once('=')?;
            (n.trim() == name).then_some((value, attributes))
        })
        .last()?;
    let dead = attributes
        .split(';')
        .any(|a| a.trim().eq_ignore_ascii_case("max-age=0"));
    (!value.is_empty() && !dead).then(|| {
        percent_encoding::percent_decode_str(value)
            .decode_utf8_lossy()
            .into_owned()
    })
}

/// Adds `set-auth-token` (and lists it in `Access-Control-Expose-Headers`) when `reply` sets
/// a live session cookie `name`; once.
fn expose(reply: &mut Reply, name: &str) {
    let Some(token) = session_cookie_set(reply, name) else {
        // A later hook took the session back (a second-factor challenge): no token.
        reply
            .headers_mut()
            .remove(HeaderName::from_static(SET_AUTH_TOKEN));
        return;
    };
    let Ok(value) = HeaderValue::from_str(&token) else {
        return;
    };
    let headers = reply.headers_mut();
    headers.insert(HeaderName::from_static(SET_AUTH_TOKEN), value);
    let exposed = match headers
        .get(header::ACCESS_CONTROL_EXPOSE_HEADERS)
        .and_then(|v| v.to_str().ok())
    {
        Some(list)
            if list
                .split(',')
                .any(|h| h.trim().eq_ignore_ascii_case(SET_AUTH_TOKEN)) =>
        {
            None
        }
        Some(list) if !list.trim().is_empty() => {
            HeaderValue::from_str(&format!("{list}, {SET_AUTH_TOKEN}")).ok()
        }
        _ => Some(HeaderValue::from_static(SET_AUTH_TOKEN)),
    };
    if let Some(v) = exposed {
        headers.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, v);
    }
}

fn from_config(config: &serde_json::Value) -> Result<Arc<dyn Plugin>, Error> {
    let options: BearerOptions = portcullis::plugin::options_from_config("bearer", config)?;
    Ok(Arc::new(Bearer::new(options)))
}

inventory::submit! {
    PluginFactory { name: "bearer", build: from_config }
}
