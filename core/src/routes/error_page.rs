//! `GET /error`: the page a browser lands on when a redirect flow fails and the app named no
//! error URL of its own.

use http::{header, HeaderValue};

use crate::context::{Ctx, Reply};
use crate::email::html_escape;
use crate::error::ApiError;
use crate::plugin::Endpoint;

/// The Content-Security-Policy of every HTML page the engine serves: no scripts at all.
const HTML_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

pub(super) fn endpoints() -> Vec<Endpoint> {
    vec![Endpoint::get("error", "/error", error_page)]
}

/// An error code as Better Auth accepts it in this page: `[A-Za-z0-9_'-]+`, else `UNKNOWN`.
fn sanitize_code(code: Option<&str>) -> &str {
    match code {
        Some(c)
            if !c.is_empty()
                && c.chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || "_'-".contains(ch)) =>
        {
            c
        }
        _ => "UNKNOWN",
    }
}

async fn error_page(ctx: Ctx) -> Result<Reply, ApiError> {
    let code = sanitize_code(ctx.query("error"));
    let description = ctx.query("error_description").unwrap_or("");
    let html = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Sign-in error</title>\
         <style>body{{font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem}}code{{background:#eee;padding:.1rem .3rem}}</style>\
         </head><body><h1>Something went wrong</h1><p>Error: <code>{}</code></p><p>{}</p></body></html>\n",
        html_escape(code),
        html_escape(description)
    );
    let mut reply = Reply::html(html);
    let h = reply.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(HTML_CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    Ok(reply)
}

#[cfg(test)]
mod tests {
    use super::sanitize_code;

    #[test]
    fn only_plain_codes_are_shown() {
        assert_eq!(sanitize_code(Some("state_mismatch")), "state_mismatch");
        assert_eq!(sanitize_code(Some("<script>")), "UNKNOWN");
        assert_eq!(sanitize_code(Some("")), "UNKNOWN");
        assert_eq!(sanitize_code(None), "UNKNOWN");
    }
}
