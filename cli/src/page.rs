//! The server's routes outside the API: a small page at `/` to sign up, sign in, see the
//! session and sign out.

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::Full;
use portcullis::{Auth, HttpResponse};

const INDEX: &str = include_str!("assets/index.html");
const SCRIPT: &str = include_str!("assets/app.js");
const STYLE: &str = include_str!("assets/app.css");

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
                   img-src 'self' data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// Routes one request: the API under the base path, the page and its assets, else 404.
pub(crate) async fn route<B>(auth: Auth, req: Request<B>) -> HttpResponse
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let base = auth.options().base_path.as_str();
    let path = req.uri().path();
    if path
        .strip_prefix(base)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    {
        return auth.handle(req).await;
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return plain(
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "Not Found".into(),
        );
    }
    match path {
        "/" => {
            let html = INDEX.replace("{{BASE_PATH}}", &portcullis::email::html_escape(base));
            plain(StatusCode::OK, "text/html; charset=utf-8", html)
        }
        "/app.js" => plain(
            StatusCode::OK,
            "text/javascript; charset=utf-8",
            SCRIPT.into(),
        ),
        "/app.css" => plain(StatusCode::OK, "text/css; charset=utf-8", STYLE.into()),
        _ => plain(
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "Not Found".into(),
        ),
    }
}

fn plain(status: StatusCode, content_type: &'static str, body: String) -> HttpResponse {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    r
}
