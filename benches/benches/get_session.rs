//! The get-session path in process, and its pieces.
//!
//! `cargo bench -p portcullis-benches --bench get_session`
//!
//! - `get_session/handle`: `Auth::handle(GET /api/auth/get-session)` with a valid cookie:
//!   routing, cookie parse and signature check, the joined session+user read from a SQLite
//!   file, and the JSON response.
//! - `get_session/handle_rate_limited`: the same with the rate limiter on (and the request
//!   checks, which always run): what they add to the hot path.
//! - `get_session/no_cookie` and `no_cookie_rate_limited`: get-session without a cookie (no
//!   database), without and with the limiter: the limiter's cost alone.
//! - `get_session/store_read`: the joined session+user read alone.
//! - `cookie/verify_signature`: the HMAC-SHA256 check of the signed token alone.
//! - `cookie/read_and_verify`: finding the cookie in the `Cookie` header, then the check.
//! - `json/render`: the session+user serialised to the response body, as get-session does it.

use std::hint::black_box;
use std::time::Duration;

use criterion::Criterion;
use portcullis::Reply;
use portcullis_benches::{cookie_headers, session_cookie, Fixture};

fn benches(
    c: &mut Criterion,
    rt: &tokio::runtime::Runtime,
    fx: &Fixture,
    limited: &Fixture,
) -> anyhow::Result<()> {
    let mut g = c.benchmark_group("get_session");
    g.bench_function("handle", |b| {
        b.to_async(rt).iter(|| async {
            let res = fx.auth.handle(fx.get_session_request()).await;
            black_box(res)
        })
    });
    g.bench_function("handle_rate_limited", |b| {
        b.to_async(rt).iter(|| async {
            let res = limited.auth.handle(limited.get_session_request()).await;
            black_box(res)
        })
    });
    // Without a cookie the answer needs no database: the difference between these two is
    // what the limiter and the request checks add, without the read's noise around it.
    let anonymous = || {
        let mut req = http::Request::new(http_body_util::Full::new(bytes::Bytes::new()));
        *req.uri_mut() = http::Uri::from_static("/api/auth/get-session");
        req
    };
    g.bench_function("no_cookie", |b| {
        b.to_async(rt)
            .iter(|| async { black_box(fx.auth.handle(anonymous()).await) })
    });
    g.bench_function("no_cookie_rate_limited", |b| {
        b.to_async(rt)
            .iter(|| async { black_box(limited.auth.handle(anonymous()).await) })
    });
    g.bench_function("store_read", |b| {
        b.to_async(rt).iter(|| async {
            let found = fx.auth.store().session_and_user(&fx.token).await;
            black_box(found.ok().flatten())
        })
    });
    g.finish();

    let headers = cookie_headers(&fx.cookie)?;
    let name = session_cookie(&fx.auth);
    let signed = portcullis::cookies::get_cookie(&headers, &name)
        .ok_or_else(|| anyhow::anyhow!("no session cookie in the fixture's Cookie header"))?
        .into_owned();
    let secret = fx.auth.secret();
    let mut g = c.benchmark_group("cookie");
    g.bench_function("verify_signature", |b| {
        b.iter(|| black_box(secret.unsign(black_box(&signed)).is_some()))
    });
    g.bench_function("read_and_verify", |b| {
        b.iter(|| {
            let raw = portcullis::cookies::get_cookie(black_box(&headers), &name);
            black_box(raw.and_then(|raw| secret.unsign(&raw).map(str::to_owned)))
        })
    });
    g.finish();

    let mut g = c.benchmark_group("json");
    g.bench_function("render", |b| {
        // `Reply::json` serialises to the response bytes there and then; nothing is left
        // for rendering but handing them to hyper.
        b.iter(|| black_box(Reply::json(black_box(&fx.session))))
    });
    g.finish();
    Ok(())
}

fn run() -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let fx = rt.block_on(Fixture::new())?;
    let limited = rt.block_on(Fixture::with_rate_limiter())?;
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    benches(&mut c, &rt, &fx, &limited)?;
    c.final_summary();
    Ok(())
}

fn main() {
    if let Err(e) = run() {
        eprintln!("get_session bench: {e:#}");
        std::process::exit(1);
    }
}
