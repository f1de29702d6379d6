//! get-session through a real hyper server, N times over one keep-alive connection, in one
//! process on one thread: a steady workload for instruction counters, whose counts repeat
//! whatever else the machine is doing (wall-clock benches on a shared machine do not).
//!
//! ```sh
//! cargo build --release -p portcullis-benches --bin instructions
//! valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.out \
//!     target/release/instructions portcullis 20000
//! callgrind_annotate /tmp/cg.out | head -60
//! ```
//!
//! `portcullis` serves `GET /api/auth/get-session` with a signed-in user's cookie, on a
//! SQLite file (the load bench's scenario); `bearer-plugin` the same with the bearer plugin
//! loaded; `bearer` sends the session as `Authorization: Bearer` instead of the cookie; `bare` serves the load bench's bare hyper handler
//! (a fixed JSON body) through the same `serve` loop. Subtract a run with N = 0 for the fixed
//! set-up cost; the difference over N is the instructions per request, client included (the
//! client writes one fixed request and reads the response by its `content-length`).
//! The request carries what the load bench's wrk script sends: cookie, `Origin` and
//! `X-Forwarded-For`.

use std::time::Duration;

use anyhow::{bail, Context as _};
use portcullis_benches::{bare_response, Fixture, BASE_URL};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const USAGE: &str = "usage: instructions (portcullis|bearer-plugin|bearer|bare) N";

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(which), Some(n)) = (args.next(), args.next()) else {
        bail!("{USAGE}");
    };
    let n: u64 = n.parse().context(USAGE)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let shutdown = async move {
            let _ = stopped.await;
        };
        let credentials = match which.as_str() {
            "portcullis" | "bearer-plugin" | "bearer" => {
                let fx = match which.as_str() {
                    "portcullis" => Fixture::new().await?,
                    _ => Fixture::with_bearer().await?,
                };
                let credentials = if which == "bearer" {
                    format!("Authorization: Bearer {}", fx.auth.secret().sign(&fx.token))
                } else {
                    format!("Cookie: {}", fx.cookie)
                };
                let auth = fx.auth.clone();
                tokio::spawn(async move {
                    let _keep = fx;
                    let handler = move |req| {
                        let auth = auth.clone();
                        async move { auth.handle(req).await }
                    };
                    portcullis::adapters::hyper::serve(listener, handler, shutdown).await
                });
                credentials
            }
            "bare" => {
                tokio::spawn(portcullis::adapters::hyper::serve(
                    listener,
                    |_req| async { bare_response() },
                    shutdown,
                ));
                "Cookie: better-auth.session_token=not-a-session".to_owned()
            }
            _ => bail!("{USAGE}"),
        };
        let request = format!(
            "GET /api/auth/get-session HTTP/1.1\r\nHost: {addr}\r\n{credentials}\r\n\
             Origin: {BASE_URL}\r\nX-Forwarded-For: 240.0.0.1\r\n\r\n"
        );
        let mut conn = tokio::net::TcpStream::connect(addr).await?;
        conn.set_nodelay(true)?;
        let mut buf = Vec::with_capacity(8192);
        let mut bytes = 0usize;
        for _ in 0..n {
            conn.write_all(request.as_bytes()).await?;
            bytes += read_response(&mut conn, &mut buf).await?;
        }
        let _ = stop.send(());
        tokio::time::sleep(Duration::from_millis(10)).await;
        println!("{which}: {n} requests, {bytes} response bytes");
        Ok(())
    })
}

/// Reads one response (head and a `content-length` body); its size. Anything but 200 is an
/// error, so a broken fixture never passes for a fast one.
async fn read_response(
    conn: &mut tokio::net::TcpStream,
    buf: &mut Vec<u8>,
) -> anyhow::Result<usize> {
    buf.clear();
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = std::str::from_utf8(&buf[..end]).context("response head")?;
            if !head.starts_with("HTTP/1.1 200") {
                bail!("unexpected response: {head}");
            }
            let len: usize = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().ok())?
                })
                .context("no content-length")?;
            let total = end + 4 + len;
            while buf.len() < total {
                read_more(conn, buf).await?;
            }
            return Ok(total);
        }
        read_more(conn, buf).await?;
    }
}

async fn read_more(conn: &mut tokio::net::TcpStream, buf: &mut Vec<u8>) -> anyhow::Result<()> {
    let mut chunk = [0u8; 4096];
    let got = conn.read(&mut chunk).await?;
    if got == 0 {
        bail!("connection closed");
    }
    buf.extend_from_slice(&chunk[..got]);
    Ok(())
}
